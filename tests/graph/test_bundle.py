"""Bundle round trip: a graph using every op, saved as a directory and as a zip, loads to the same
graph, runs to the same bits, and saves again to byte-identical files."""

import hashlib
import json
import os
import zipfile

import numpy as np
import pytest

import intref
from intref import GraphBuilder
from intref.bundle.npy import file_array
from intref.bundle.write import tensor_file_names
from intref.errors import BundleError, BundleFormatError, SchemaError, TensorFileError
from intref.graph import Tensor
from intref.inttypes import IntType
from intref.ops import REGISTRY
from intref.ops.base import REQUIRED
from intref.quant import dyadic, pack_int4, prepare_gelu, prepare_layernorm, prepare_softmax, quantize_symmetric
from intref.testing import assert_identical

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "format.md")


def _attention(b, x, width, heads, mask):
    """QKV through one int4-packed Linear, heads split, causal masked softmax, heads merged."""
    rng = np.random.default_rng(11)
    q4, scale4 = quantize_symmetric(rng.normal(size=(3 * width, width)), 4, axis=0)
    qkv_w = b.tensor("attention.qkv.weight", q4, "int4", layout="int4_packed")
    qkv = b.add("Linear", [x, qkv_w], "int32", name="qkv", scale=scale4.reshape(-1) * 0.01)
    m, s = dyadic(1 / 64)
    qkv = b.add("Requantize", [qkv], "int8", name="qkv_q", attributes={"multiplier": m, "shift": s})
    parts = []
    for i, name in enumerate("qkv"):
        part = b.add("Slice", [qkv], "int8", name=f"slice_{name}",
                     attributes={"axis": -1, "start": i * width, "end": (i + 1) * width})
        parts.append(b.add("SplitHeads", [part], "int8", name=f"split_{name}", attributes={"heads": heads}))
    scores = b.add("MatMul", [parts[0], parts[1]], "int32", name="scores", attributes={"transpose_b": True})
    m, s = dyadic(1 / 32)
    scores = b.add("Requantize", [scores], "int16", name="scores_q",
                   attributes={"multiplier": m, "shift": s, "rounding": "floor"})
    additive = b.add("PaddingMask", [mask], "int32", name="padding_mask", attributes={"fill": -30000})
    sm = prepare_softmax(0.05, input_bits=16)
    attrs = {k: getattr(sm, k) for k in ("x0_int", "b_int", "c_int", "exp_clamp", "exp_multiplier", "exp_shift",
                                          "exp_bits", "exp_rounding", "output_bits", "output_max")}
    probs = b.add("ISoftmax", [scores, additive], "uint8", name="softmax", attributes={**attrs, "causal": True},
                  scale=sm.out_scale)
    context = b.add("MatMul", [probs, parts[2]], "int32", name="context")
    m, s = dyadic(1 / 256)
    context = b.add("Requantize", [context], "int8", name="context_q",
                    attributes={"multiplier": m, "shift": s, "overflow": "wrap"})
    return b.add("MergeHeads", [context], "int8", name="merge_heads")


def add_token_group_branch(b, x, width):
    """The ZeroQuant ops off an int32 value: TokenScale -> TokenQuantize -> GroupLinear (int4-packed,
    two input groups) -> TokenRequantize with a bias. Returns the int8 output's name."""
    t = b.add("TokenScale", [x], "int32", name="zq.scale")
    q = b.add("TokenQuantize", [x, t], "int8", name="zq.q", attributes={"rounding": "half_up"})
    w = b.tensor("zq.w", (np.arange(4 * width) % 16 - 8).astype(np.int8).reshape(4, width), "int4", layout="int4_packed")
    m = b.tensor("zq.m", np.array([[1 << 31, 1 << 30]] * 4, np.uint32), "uint32")
    acc = b.add("GroupLinear", [q, w, m], "int32", name="zq.acc", attributes={"group_size": width // 2, "shift": 31})
    bias = b.tensor("zq.bias", np.arange(4, dtype=np.int32) - 2, "int32")
    return b.add("TokenRequantize", [acc, t, bias], "int8", name="zq.y", attributes={"multiplier": 1 << 30, "shift": 40})


def build_every_op_graph():
    """A one-layer encoder with a classifier head: every registered op, int4-packed and int22 tensors,
    per-channel attributes and scales, symbols, metadata."""
    rng = np.random.default_rng(7)
    width, heads, vocab, hidden = 16, 2, 50, 32
    b = GraphBuilder("every-op", symbols={"batch": 4, "seq": 12})
    ids = b.input("input_ids", "int32", ["batch", "seq"], range=(0, vocab - 1))
    mask = b.input("attention_mask", "int8", ["batch", "seq"], range=(0, 1))
    word = b.tensor("embeddings.word", rng.integers(-127, 127, (vocab, width), dtype=np.int8), scale=0.02)
    pos_table = b.tensor("embeddings:position", rng.integers(-127, 127, (16, width), dtype=np.int8), scale=0.01)
    x = b.add("Embedding", [ids, word], "int8", name="word_embed")
    pos = b.add("PositionIds", [ids], "int32", name="position_ids",
                attributes={"mode": "padding_aware", "padding_idx": 1})
    p = b.add("Embedding", [pos, pos_table], "int8", name="position_embed")
    m, s = dyadic(0.5)
    x = b.add("ResidualAdd", [x, p], "int16", name="embed_sum",
              attributes={"multiplier_a": m, "shift_a": s, "multiplier_b": m, "shift_b": s - 1})
    ln = prepare_layernorm(np.linspace(0.5, 1.5, width), np.linspace(-0.2, 0.2, width), input_bits=16)
    x = b.add("ILayerNorm", [x], "int32", name="ln0", attributes={"shift": ln.shift, "bias_int": list(ln.bias_int)},
              scale=list(ln.out_scale))
    zq = add_token_group_branch(b, x, width)                      # the ZeroQuant ops, off the int32 LayerNorm
    mults, shifts = dyadic(np.full(width, 2.0 ** -24) * np.linspace(0.5, 1.0, width))
    x = b.add("Requantize", [x], "int8", name="ln0_q", attributes={
        "multiplier": [int(v) for v in mults], "shift": [int(v) for v in shifts], "rounding": "half_up"})
    merged = _attention(b, x, width, heads, mask)
    w1, _ = quantize_symmetric(rng.normal(size=(hidden, width)), 8, axis=0)
    fc1_b = b.tensor("ffn.fc1.bias", rng.integers(-(1 << 21), 1 << 21, hidden, dtype=np.int32), "int22")
    h = b.add("Linear", [merged, b.tensor("ffn.fc1.weight", w1), fc1_b], "int32", name="fc1")
    gelu = prepare_gelu(0.01, input_bits=32)
    h = b.add("IGelu", [h], "int64", name="gelu", attributes={
        "b_int": gelu.b_int, "c_int": gelu.c_int, "shift_int": gelu.shift_int, "guard_shift": gelu.guard_shift})
    m, s = dyadic(2.0 ** -20)
    h = b.add("Requantize", [h], "int8", name="gelu_q", attributes={"multiplier": m, "shift": s})
    w2, _ = quantize_symmetric(rng.normal(size=(width, hidden)), 8, axis=0)
    out = b.add("Linear", [h, b.tensor("ffn.fc2.weight", w2)], "int32", name="fc2")
    m, s = dyadic(1 / 128)
    out = b.add("ResidualAdd", [out, x], "int8", name="residual",
                attributes={"multiplier_a": m, "shift_a": s, "multiplier_b": 1, "shift_b": 0})
    cls = b.add("Gather", [out], "int8", name="cls", attributes={"axis": 1, "index": 0})
    grid = b.add("Reshape", [cls], "int8", name="reshape", attributes={"shape": ["batch", 4, -1]})
    b.add("Transpose", [grid], "int8", name="transpose", attributes={"perm": [0, 2, 1]})
    b.add("MaskedMeanPool", [out, mask], "int8", name="pooled")
    b.add("RelativeBuckets", [ids], "int8", name="rel_buckets", attributes={"buckets": list(range(23))})
    b.output("transpose", "softmax", "pooled", "rel_buckets", zq)
    return b.build(producer={"name": "tests/graph", "version": "1"},
                   metadata={"variant": "hf-faithful", "layers": 1, "notes": {"z": [1.5, None, True], "a": "é"}})


def feeds_for(seed, batch, seq):
    rng = np.random.default_rng(seed)
    mask = (rng.random((batch, seq)) > 0.25).astype(np.int8)
    mask[:, 0] = 1
    return {"input_ids": rng.integers(0, 50, (batch, seq)).astype(np.int32), "attention_mask": mask}


@pytest.fixture(scope="module")
def graph():
    return build_every_op_graph()


def bundle_files(path):
    """Every file of a bundle (directory or zip) as {member name: bytes}."""
    if os.path.isdir(path):
        found = {}
        for folder, _, names in os.walk(path):
            for name in names:
                full = os.path.join(folder, name)
                with open(full, "rb") as stream:
                    found[os.path.relpath(full, path).replace(os.sep, "/")] = stream.read()
        return found
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def normalized_attributes(node):
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in node.attributes.items()}


def assert_same_graph(loaded, original):
    assert loaded.name == original.name
    assert dict(loaded.symbols) == dict(original.symbols)
    assert loaded.inputs == original.inputs
    assert loaded.outputs == original.outputs
    assert [n.name for n in loaded.nodes] == [n.name for n in original.nodes]
    for a, b in zip(loaded.nodes, original.nodes):
        assert (a.op, a.inputs, a.outputs) == (b.op, b.inputs, b.outputs)
        assert normalized_attributes(a) == normalized_attributes(b), a.name
    assert list(loaded.tensors) == list(original.tensors)
    for name, tensor in original.tensors.items():
        got = loaded.tensors[name]
        assert (got.type, got.layout) == (tensor.type, tensor.layout)
        assert_identical(got.data, tensor.data, context=name)
    assert dict(loaded.quantization) == dict(original.quantization)
    assert dict(loaded.metadata) == dict(original.metadata)
    assert dict(loaded.producer) == dict(original.producer)


def test_the_round_trip_graph_uses_every_registered_op(graph):
    assert {node.op for node in graph.nodes} == set(REGISTRY)
    assert graph.tensors["attention.qkv.weight"].layout == "int4_packed"
    assert graph.tensors["ffn.fc1.bias"].type.name == "int22"


@pytest.mark.parametrize("fmt", ["dir", "zip"])
def test_round_trip_gives_the_same_graph_and_the_same_bits(graph, tmp_path, fmt):
    path = tmp_path / ("bundle.zip" if fmt == "zip" else "bundle")
    intref.save(graph, path)
    assert os.path.isdir(path) == (fmt == "dir")
    loaded = intref.load(path)
    assert_same_graph(loaded, graph)
    for seed, (batch, seq) in enumerate([(1, 1), (2, 7), (4, 12)]):
        feeds = feeds_for(seed, batch, seq)
        expected = intref.run(graph, feeds)
        got = intref.run(loaded, feeds)
        assert sorted(got) == sorted(expected) == ["pooled", "rel_buckets", "softmax", "transpose", "zq.y"]
        for name in expected:
            assert_identical(got[name], expected[name], context=f"{fmt} {name} seed {seed}")


@pytest.mark.parametrize("fmt", ["dir", "zip"])
def test_save_load_save_is_byte_identical(graph, tmp_path, fmt):
    suffix = ".zip" if fmt == "zip" else ""
    first, second, third = (tmp_path / f"{n}{suffix}" for n in ("first", "second", "third"))
    intref.save(graph, first)
    intref.save(intref.load(first), second)
    intref.save(intref.load(second), third)
    if fmt == "zip":
        assert first.read_bytes() == second.read_bytes() == third.read_bytes()
    files = bundle_files(first)
    assert files == bundle_files(second) == bundle_files(third)
    assert sorted(files) == ["graph.json"] + sorted(f"tensors/{n}.npy" for n in [
        "attention.qkv.weight", "embeddings.word", "embeddings_position", "ffn.fc1.bias", "ffn.fc1.weight",
        "ffn.fc2.weight", "quantization.scales", "zq.bias", "zq.m", "zq.w"])


def test_directory_and_zip_hold_the_same_files(graph, tmp_path):
    intref.save(graph, tmp_path / "d", fmt="dir")
    intref.save(graph, tmp_path / "z.bin", fmt="zip")
    assert zipfile.is_zipfile(tmp_path / "z.bin")
    assert bundle_files(tmp_path / "d") == bundle_files(tmp_path / "z.bin")


def test_directory_tensors_are_memory_mapped_and_read_only(graph, tmp_path):
    intref.save(graph, tmp_path / "b")
    loaded = intref.load(tmp_path / "b")
    for name, tensor in loaded.tensors.items():
        assert not tensor.data.flags.writeable, name
        with pytest.raises(ValueError):
            tensor.data[(0,) * tensor.data.ndim] = 0
        if tensor.layout == "plain":
            base = tensor.data if isinstance(tensor.data, np.memmap) else tensor.data.base
            assert isinstance(tensor.data, np.memmap) or type(base).__name__ == "mmap", name
        assert tensor.data.dtype == tensor.type.storage


def test_zip_tensors_are_read_only(graph, tmp_path):
    intref.save(graph, tmp_path / "b.zip")
    for name, tensor in intref.load(tmp_path / "b.zip").tensors.items():
        assert not tensor.data.flags.writeable, name
        assert tensor.data.dtype == tensor.type.storage


def test_zip_members_are_stored_in_a_fixed_order_date_and_mode(graph, tmp_path):
    intref.save(graph, tmp_path / "b.zip")
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        infos = archive.infolist()
        document = json.loads(archive.read("graph.json"))
    assert [i.filename for i in infos] == ["graph.json"] + [t["file"] for t in document["tensors"]] + \
        [document["scales"]["file"]]      # the scale file last
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.external_attr >> 16 == 0o100644
        assert info.create_system == 3


def test_tensor_files_hold_little_endian_storage_and_packed_int4(graph, tmp_path):
    intref.save(graph, tmp_path / "b")
    document = json.loads((tmp_path / "b" / "graph.json").read_text())
    entries = {t["name"]: t for t in document["tensors"]}
    for name, entry in entries.items():
        raw = (tmp_path / "b" / entry["file"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(raw).hexdigest()
        assert raw[:8] == b"\x93NUMPY\x01\x00"
    bias = np.load(tmp_path / "b" / entries["ffn.fc1.bias"]["file"], allow_pickle=False)
    assert bias.dtype.str == "<i4" and entries["ffn.fc1.bias"]["type"] == "int22"
    packed = np.load(tmp_path / "b" / entries["attention.qkv.weight"]["file"], allow_pickle=False)
    assert packed.dtype == np.uint8 and packed.shape == (48, 8)
    assert entries["attention.qkv.weight"]["shape"] == [48, 16]
    assert_identical(packed, pack_int4(graph.tensors["attention.qkv.weight"].data))


def test_graph_json_is_canonical_text(graph, tmp_path):
    intref.save(graph, tmp_path / "b")
    raw = (tmp_path / "b" / "graph.json").read_bytes()
    text = raw.decode("ascii")
    assert text.endswith("}\n") and "\t" not in text
    document = json.loads(text)
    assert list(document) == ["format", "format_version", "producer", "name", "symbols", "inputs", "outputs",
                              "tensors", "nodes", "quantization", "scales", "metadata"]
    assert (document["format"], document["format_version"]) == ("intref-graph", 2)
    for node in document["nodes"]:
        assert list(node) == ["name", "op", "inputs", "outputs", "attributes"]
        assert list(node["attributes"]) == sorted(node["attributes"])
    assert list(document["metadata"]["notes"]) == ["a", "z"]
    assert document["metadata"]["notes"]["a"] == "é" and "\\u00e9" in text
    assert document["quantization"]["qkv"]["axis"] == -1
    assert '"shape": [48, 16],' in text     # a list of scalars stays on one line
    scale = graph.quantization["ln0"]["scale"]
    assert document["quantization"]["ln0"]["scale"] == scale   # floats round-trip exactly (repr)


def test_tensor_file_names_are_sanitized_and_unique_ignoring_case():
    files = tensor_file_names(["a:b", "A_b", "a_b", "a_b-2", "x.y-z"])
    assert files == {"a:b": "tensors/a_b.npy", "A_b": "tensors/A_b-2.npy", "a_b": "tensors/a_b-3.npy",
                     "a_b-2": "tensors/a_b-2-2.npy", "x.y-z": "tensors/x.y-z.npy"}
    assert tensor_file_names(["A_b", "a:b"]) == {"A_b": "tensors/A_b.npy", "a:b": "tensors/a_b-2.npy"}


def test_a_deflated_zip_made_by_another_tool_loads_the_same(graph, tmp_path):
    intref.save(graph, tmp_path / "d")
    with zipfile.ZipFile(tmp_path / "other.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(bundle_files(tmp_path / "d").items(), reverse=True):
            archive.writestr(name, data)
    loaded = intref.load(tmp_path / "other.zip")
    assert_same_graph(loaded, graph)
    feeds = feeds_for(3, 2, 5)
    assert_identical(intref.run(loaded, feeds)["transpose"], intref.run(graph, feeds)["transpose"])


def test_save_chooses_the_format_by_suffix_and_refuses_others(graph, tmp_path):
    intref.save(graph, str(tmp_path / "x.zip"))
    assert zipfile.is_zipfile(tmp_path / "x.zip")
    intref.save(graph, tmp_path / "x.zip.d")
    assert (tmp_path / "x.zip.d" / "graph.json").is_file()
    with pytest.raises(BundleFormatError, match="fmt='tar'"):
        intref.save(graph, tmp_path / "y", fmt="tar")
    assert not (tmp_path / "y").exists()


def test_save_refuses_a_non_empty_directory_and_overwrites_a_zip(graph, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(BundleError, match="not empty"):
        intref.save(graph, tmp_path / "busy")
    assert sorted(os.listdir(tmp_path / "busy")) == ["keep.txt"]
    (tmp_path / "old.zip").write_bytes(b"stale")
    intref.save(graph, tmp_path / "old.zip")
    assert_same_graph(intref.load(tmp_path / "old.zip"), graph)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_the_writer_refuses_tensor_data_outside_its_type():
    # Graph(...) refuses such a tensor already; the writer checks again rather than write a bad file
    bad = Tensor("w", IntType(4), np.array([[1, 2, 3], [4, 5, 9]], dtype=np.int8))
    with pytest.raises(TensorFileError, match=r"tensors/w\.npy: tensor 'w' holds values in \[1, 9\], outside int4"):
        file_array(bad, "tensors/w.npy")
    floats = Tensor("f", IntType(8), np.zeros(3, dtype=np.float32))
    with pytest.raises(TensorFileError, match="holds float32 data, not integers"):
        file_array(floats, "tensors/f.npy")
    assert file_array(Tensor("i", IntType(22), np.array([-5, 7], dtype=np.int32)), "x").dtype.str == "<i4"


def test_save_refuses_a_graph_that_load_would_refuse(tmp_path):
    b = GraphBuilder("unused-symbol", symbols={"seq": 8, "unused": 3})
    x = b.input("x", "int8", [1, "seq"])
    b.add("Reshape", [x], "int8", name="y", attributes={"shape": ["seq", 1]})
    b.output("y")
    with pytest.raises(SchemaError, match=r"graph\.json: symbols\.unused: declared but used by no graph input"):
        intref.save(b.build(), tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_save_refuses_per_channel_scales_that_do_not_match_the_last_axis(tmp_path):
    b = GraphBuilder("row-scales")
    x = b.input("x", "int8", [2, 3])
    w = b.tensor("w", np.ones((4, 3), dtype=np.int8), scale=[0.1, 0.2, 0.3, 0.4])   # per row: axis 0, not -1
    b.add("Linear", [x, w], "int32", name="y")
    b.output("y")
    with pytest.raises(SchemaError, match=r"quantization\.w\.scale: 4 per-channel scales, but the value's shape "
                                          r"is \[4, 3\]"):
        intref.save(b.build(), tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_load_accepts_path_objects_and_strings(graph, tmp_path):
    intref.save(graph, tmp_path / "b.zip")
    assert intref.load(str(tmp_path / "b.zip")).name == intref.load(tmp_path / "b.zip").name == "every-op"


_KIND = {"int": "int", "bool": "bool", "str": "string", "ints": "list of ints", "int_or_ints": "int or list of ints",
         "dims": "list of ints and symbols"}


def _bound(value, default):
    if value is None:
        return default
    powers = {sign * (1 << k): f"{'-' if sign < 0 else ''}2^{k}" for k in range(16, 64) for sign in (1, -1)}
    return powers.get(value, str(value))


def _attribute_cell(name, spec):
    parts = [_KIND[spec.kind]]
    if spec.default is REQUIRED:
        parts.append("required")
    else:
        default = spec.default
        parts.append("default " + (json.dumps(default) if isinstance(default, (bool, str)) else str(default)))
    if spec.lo is not None or spec.hi is not None:
        parts.append(f"in [{_bound(spec.lo, '-inf')}, {_bound(spec.hi, 'inf')}]")
    if spec.choices:
        parts.append("one of " + ", ".join(f'"{c}"' for c in spec.choices))
    return f"`{name}`: " + ", ".join(parts)


def op_table_row(op):
    """The docs/format.md row of one op, generated from its declaration in the registry."""
    ports = ", ".join(f"`{p.rstrip('?')}`" + (" (optional)" if p.endswith("?") else "") for p in op.inputs)
    attributes = "<br>".join(_attribute_cell(k, a) for k, a in op.attributes.items()) or "none"
    return f"| `{op.name}` | {ports} | {', '.join(f'`{o}`' for o in op.outputs)} | {attributes} |"


def test_format_doc_op_table_is_generated_from_the_registry():
    with open(DOCS, encoding="utf-8") as stream:
        section = stream.read().split("## 6. Ops", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows == [op_table_row(REGISTRY[name]) for name in sorted(REGISTRY)]


def test_the_complete_example_in_the_format_doc_loads_and_runs_as_documented(tmp_path):
    with open(DOCS, encoding="utf-8") as stream:
        section = stream.read().split("## 9. A complete example", 1)[1]
    (tmp_path / "tensors").mkdir()
    (tmp_path / "graph.json").write_text(section.split("```json\n", 1)[1].split("```", 1)[0])
    np.save(tmp_path / "tensors" / "fc.weight.npy", np.array([[0xE1, 0xC3], [0x65, 0x89], [0x10, 0x32]], np.uint8))
    np.save(tmp_path / "tensors" / "fc.bias.npy", np.array([10, -20, 30], dtype="<i4"))
    assert (tmp_path / "tensors" / "fc.weight.npy").stat().st_size == 134
    assert (tmp_path / "tensors" / "fc.bias.npy").stat().st_size == 140
    graph = intref.load(tmp_path)
    assert graph.tensors["fc.weight"].data.tolist() == [[1, -2, 3, -4], [5, 6, -7, -8], [0, 1, 2, 3]]
    got = intref.run(graph, {"x": np.array([[1, 2, 3, 4], [-128, 127, 0, 5]], dtype=np.int8)})
    assert_identical(got["fc_q"], np.array([[0, -1, 2], [-5, 2, 6]], dtype=np.int8))
    intref.save(graph, tmp_path / "again")
    assert (tmp_path / "again" / "graph.json").read_bytes() == (tmp_path / "graph.json").read_bytes()
