"""Fuzz the loader: mutated graph.json documents, corrupted .npy files (in directory and zip bundles)
and corrupted zip archives.

Property: ``intref.load`` either succeeds or raises an ``IntrefError`` subclass (never another
exception), and its peak traced allocation stays below ``MEMORY_BOUND`` (a valid load peaks near
60 KiB; the mutations declare tensors of up to 2^62 elements, which must fail before allocating).
"""

import ast
import copy
import hashlib
import io
import json
import os
import pickle
import tempfile
import tracemalloc
import zipfile

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import intref
from intref import GraphBuilder
from intref.errors import IntrefError
from intref.ops import REGISTRY
from intref.quant import prepare_gelu, prepare_layernorm, prepare_softmax

MEMORY_BOUND = 4 << 20


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


def fuzz_graph():
    """Every op, small tensors (plain int8, int22, int4-packed), symbols, per-channel attributes."""
    width = 4
    b = GraphBuilder("fuzz", symbols={"batch": 2, "seq": 6})
    ids = b.input("ids", "int32", ["batch", "seq"], range=(0, 9))
    mask = b.input("mask", "int8", ["batch", "seq"], range=(0, 1))
    table = b.tensor("table", (np.arange(40) % 23 - 11).astype(np.int8).reshape(10, width), scale=0.1)
    x = b.add("Embedding", [ids, table], "int8", name="embed")
    pos = b.add("PositionIds", [ids], "int32", name="pos", attributes={"mode": "arange"})
    p = b.add("Embedding", [pos, b.tensor("pos_table", np.ones((6, width), np.int8))], "int8", name="pos_embed")
    x = b.add("ResidualAdd", [x, p], "int16", name="sum", attributes={
        "multiplier_a": 1 << 30, "shift_a": 30, "multiplier_b": [1 << 30] * width, "shift_b": 31})
    ln = prepare_layernorm(np.ones(width), np.zeros(width), input_bits=16)
    x = b.add("ILayerNorm", [x], "int32", name="ln", attributes={"shift": ln.shift, "bias_int": list(ln.bias_int)})
    zq = add_token_group_branch(b, x, width)
    x = b.add("Requantize", [x], "int8", name="ln_q", attributes={"multiplier": 1 << 30, "shift": 40},
              scale=[0.1] * width)
    w = b.tensor("w", (np.arange(3 * width * width) % 16 - 8).astype(np.int8).reshape(3 * width, width), "int4",
                 layout="int4_packed")
    bias = b.tensor("bias", np.arange(3 * width, dtype=np.int32) - 6, "int22")
    qkv = b.add("Linear", [x, w, bias], "int32", name="qkv")
    qkv = b.add("Requantize", [qkv], "int8", name="qkv_q", attributes={"multiplier": 1 << 30, "shift": 33,
                                                                         "rounding": "floor"})
    heads = []
    for i in range(3):
        part = b.add("Slice", [qkv], "int8", name=f"part{i}", attributes={"axis": 2, "start": i * width,
                                                                           "end": (i + 1) * width})
        heads.append(b.add("SplitHeads", [part], "int8", name=f"split{i}", attributes={"heads": 2}))
    scores = b.add("MatMul", heads[:2], "int32", name="scores", attributes={"transpose_b": True})
    additive = b.add("PaddingMask", [mask], "int32", name="additive", attributes={"fill": -(1 << 20)})
    sm = prepare_softmax(0.05, input_bits=32)
    probs = b.add("ISoftmax", [scores, additive], "uint8", name="probs",
                  attributes={k: getattr(sm, k) for k in ("x0_int", "b_int", "c_int", "exp_multiplier", "exp_shift")})
    context = b.add("MatMul", [probs, heads[2]], "int32", name="context")
    context = b.add("Requantize", [context], "int16", name="context_q", attributes={"multiplier": 1 << 30, "shift": 34})
    merged = b.add("MergeHeads", [context], "int16", name="merged")
    g = prepare_gelu(0.01, input_bits=16)
    act = b.add("IGelu", [merged], "int64", name="gelu", attributes={"b_int": g.b_int, "c_int": g.c_int,
                                                                     "shift_int": g.shift_int})
    cls = b.add("Gather", [act], "int64", name="cls", attributes={"axis": 1, "index": 0})
    grid = b.add("Reshape", [cls], "int64", name="grid", attributes={"shape": ["batch", 2, -1]})
    b.add("Transpose", [grid], "int64", name="out", attributes={"perm": [0, 2, 1]})
    b.add("MaskedMeanPool", [x, mask], "int8", name="pooled")
    b.add("RelativeBuckets", [ids], "int8", name="rel", attributes={"buckets": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]})
    b.output("out", "pooled", "rel", zq)
    return b.build(producer={"name": "fuzz"}, metadata={"variant": "fuzz"})


def _base_files():
    with tempfile.TemporaryDirectory() as folder:
        intref.save(fuzz_graph(), os.path.join(folder, "b"))
        root = os.path.join(folder, "b")
        files = {"graph.json": open(os.path.join(root, "graph.json"), "rb").read()}
        for name in sorted(os.listdir(os.path.join(root, "tensors"))):
            files[f"tensors/{name}"] = open(os.path.join(root, "tensors", name), "rb").read()
    return files


BASE = _base_files()
BASE_DOC = json.loads(BASE["graph.json"])
TENSOR_FILES = sorted(name for name in BASE if name.startswith("tensors/"))


def write_bundle(folder, files, fmt):
    """Write ``files`` ({member: bytes}) as a directory or a zip bundle under ``folder``; return its path."""
    if fmt == "zip":
        path = os.path.join(folder, "b.zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        return path
    path = os.path.join(folder, "b")
    os.makedirs(os.path.join(path, "tensors"))
    for name, data in files.items():
        with open(os.path.join(path, name), "wb") as stream:
            stream.write(data)
    return path


def assert_load_is_safe(files, fmt):
    """Load the bundle: success or an IntrefError, within the memory bound. Any other exception fails."""
    with tempfile.TemporaryDirectory() as folder:
        assert_load_path_is_safe(write_bundle(folder, files, fmt))


def assert_load_path_is_safe(path):
    tracemalloc.start()
    try:
        try:
            intref.load(path)
        except IntrefError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"peak allocation {peak} bytes"


# --- graph.json mutations ------------------------------------------------------------------------------

def json_paths(value, prefix=()):
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from json_paths(item, prefix + (key,))


PATHS = [p for p in json_paths(BASE_DOC) if p]
NAMES = sorted({item for p in PATHS for item in [p[-1]] if isinstance(item, str)} |
               {n["name"] for n in BASE_DOC["nodes"]} | {t["name"] for t in BASE_DOC["tensors"]})

EXTREME_INTS = st.sampled_from([0, -1, 1, 2, 63, 64, -(1 << 31), 1 << 31, (1 << 31) + 1, 1 << 62, (1 << 63) - 1,
                                1 << 63, -(1 << 63) - 1, 1 << 64, 10 ** 30])
SCALARS = (st.none() | st.booleans() | EXTREME_INTS | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=8) | st.sampled_from(NAMES) | st.sampled_from(["int4", "uint64", "int0", "seq", "batch"]))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=6) | st.sampled_from(NAMES), inner, max_size=3), max_leaves=6)
HUGE_SHAPES = st.lists(st.sampled_from([0, 1, 7, 1 << 20, 1 << 31]), min_size=0, max_size=5)


def _parent(doc, path):
    target = doc
    for key in path[:-1]:
        target = target[key]
    return target


ATTRIBUTE_PATHS = [("nodes", i, "attributes", key) for i, node in enumerate(BASE_DOC["nodes"])
                   for key in node["attributes"]]
TYPE_PATHS = [p for p in PATHS if p[-1] == "type"]
SIZE_PATHS = [p for p in PATHS if p[0] == "symbols" or "range" in p]
TYPE_NAMES = st.builds(lambda u, bits: f"{u}int{bits}", st.sampled_from(["", "u"]), st.integers(1, 64))


@st.composite
def legal_but_odd(draw):
    """A value of the right JSON kind, chosen to reach the ops' own checks: extreme ints, odd lists, types."""
    kind = draw(st.sampled_from(["attribute", "attribute", "type", "size"]))
    if kind == "attribute":
        value = draw(EXTREME_INTS | st.integers(-70, 70) | st.lists(EXTREME_INTS | st.integers(-9, 9), max_size=5))
        return "replace", draw(st.sampled_from(ATTRIBUTE_PATHS)), value
    if kind == "type":
        return "replace", draw(st.sampled_from(TYPE_PATHS)), draw(TYPE_NAMES)
    return "replace", draw(st.sampled_from(SIZE_PATHS)), draw(EXTREME_INTS | st.integers(0, 40))


@st.composite
def mutation(draw):
    """One edit of the document: (kind, path, value)."""
    kind = draw(st.sampled_from(["replace", "replace", "delete", "duplicate", "rename", "cycle", "shape", "insert",
                                 "odd", "odd", "odd"]))
    if kind == "odd":
        return draw(legal_but_odd())
    path = draw(st.sampled_from(PATHS))
    if kind == "replace":
        return kind, path, draw(JSON_VALUES)
    if kind == "rename":
        return kind, path, draw(st.sampled_from(NAMES))
    if kind == "shape":
        return kind, ("tensors", draw(st.integers(0, len(BASE_DOC["tensors"]) - 1)), "shape"), draw(HUGE_SHAPES)
    if kind == "cycle":
        first, later = sorted(draw(st.lists(st.integers(0, len(BASE_DOC["nodes"]) - 1), min_size=2, max_size=2,
                                            unique=True)))
        return kind, ("nodes", first, "inputs", 0), BASE_DOC["nodes"][later]["outputs"][0]["name"]
    if kind == "insert":
        return kind, path, (draw(st.text(min_size=1, max_size=6) | st.sampled_from(NAMES)), draw(JSON_VALUES))
    return kind, path, None


def apply_mutation(doc, edit):
    kind, path, value = edit
    try:
        parent = _parent(doc, path)
        key = path[-1]
        if kind == "delete":
            del parent[key]
        elif kind == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif kind == "insert" and isinstance(parent[key], dict):
            parent[key][value[0]] = value[1]
        elif kind in ("replace", "rename", "cycle", "shape"):
            parent[key] = value
    except (KeyError, IndexError, TypeError):
        pass   # an earlier edit removed the place this one points at: the edit does nothing


@settings(max_examples=600)
@given(edits=st.lists(mutation(), min_size=1, max_size=3), fmt=st.sampled_from(["dir", "zip"]))
def test_mutated_graph_json_never_crashes_or_allocates(edits, fmt):
    doc = copy.deepcopy(BASE_DOC)
    for edit in edits:
        apply_mutation(doc, edit)
    files = dict(BASE, **{"graph.json": json.dumps(doc).encode()})
    assert_load_is_safe(files, fmt)


@settings(max_examples=100)
@given(cut=st.integers(0, len(BASE["graph.json"])), position=st.integers(0, len(BASE["graph.json"]) - 1),
       byte=st.integers(1, 255), fmt=st.sampled_from(["dir", "zip"]))
def test_corrupted_graph_json_bytes_never_crash(cut, position, byte, fmt):
    raw = bytearray(BASE["graph.json"])
    raw[position] ^= byte
    assert_load_is_safe(dict(BASE, **{"graph.json": bytes(raw[:cut])}), fmt)
    assert_load_is_safe(dict(BASE, **{"graph.json": bytes(raw)}), fmt)


# --- .npy corruptions ------------------------------------------------------------------------------------

def _npy(array, **options):
    stream = io.BytesIO()
    np.save(stream, array, **options)
    return stream.getvalue()


def _with_header(raw, descr=None, shape=None):
    """The file with its header rewritten (descr and/or shape), the data bytes kept; a file whose header
    an earlier corruption broke is returned unchanged."""
    header_length = int.from_bytes(raw[8:10], "little")
    try:
        fields = ast.literal_eval(raw[10:10 + header_length].decode("latin1"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return raw
    if not isinstance(fields, dict):
        return raw
    fields.update({k: v for k, v in (("descr", descr), ("shape", shape)) if v is not None})
    text = repr(fields)
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    return raw[:8] + len(text).to_bytes(2, "little") + text.encode("latin1") + raw[10 + header_length:]


CORRUPTIONS = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 400)),
    st.tuples(st.just("flip"), st.tuples(st.integers(0, 400), st.integers(1, 255))),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("descr"), st.sampled_from(["|i1", "|u1", "<i2", ">i4", "<u8", "<f4", "|O", "|b1", "<i4",
                                                 "<U3", "|V4"])),
    st.tuples(st.just("shape"), st.lists(st.sampled_from([0, 1, 2, 3, 12, 1 << 31, 1 << 62]), max_size=3)),
    st.tuples(st.just("pickle"), st.sampled_from(["object_array", "raw_pickle"])),
    st.tuples(st.just("empty"), st.none()),
    st.tuples(st.just("random"), st.binary(max_size=300)),
)


def corrupt(raw, corruption):
    kind, arg = corruption
    if kind == "truncate":
        return raw[:arg]
    if kind == "flip":
        data = bytearray(raw)
        if data:
            data[arg[0] % len(data)] ^= arg[1]
        return bytes(data)
    if kind == "append":
        return raw + arg
    if kind == "descr":
        return _with_header(raw, descr=arg)
    if kind == "shape":
        return _with_header(raw, shape=tuple(arg))
    if kind == "pickle":
        array = np.array([{"x": 1}, None], dtype=object)
        return _npy(array, allow_pickle=True) if arg == "object_array" else pickle.dumps(array)
    if kind == "empty":
        return b""
    return arg


@settings(max_examples=400)
@given(file=st.sampled_from(TENSOR_FILES), corruptions=st.lists(CORRUPTIONS, min_size=1, max_size=2),
       update_sha=st.booleans(), fmt=st.sampled_from(["dir", "zip"]))
def test_corrupted_tensor_files_never_crash_or_allocate(file, corruptions, update_sha, fmt):
    raw = BASE[file]
    for corruption in corruptions:
        raw = corrupt(raw, corruption)
    files = dict(BASE, **{file: raw})
    if update_sha:   # let the corruption reach the checks behind the hash: dtype, shape, values, int4 padding
        doc = copy.deepcopy(BASE_DOC)
        for entry in doc["tensors"]:
            if entry["file"] == file:
                entry["sha256"] = hashlib.sha256(raw).hexdigest()
        files["graph.json"] = json.dumps(doc).encode()
    assert_load_is_safe(files, fmt)


def test_the_fuzz_base_bundle_is_valid_in_both_containers():
    for fmt in ("dir", "zip"):
        with tempfile.TemporaryDirectory() as folder:
            graph = intref.load(write_bundle(folder, BASE, fmt))
            assert {node.op for node in graph.nodes} == set(REGISTRY)
            assert [t.layout for t in graph.tensors.values()] == ["plain", "plain", "int4_packed", "plain", "plain",
                                                                       "int4_packed", "plain"]


# --- corrupted zip archives -------------------------------------------------------------------------------

def _zip_bytes(files, compression):
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return stream.getvalue()


ZIPS = {"stored": _zip_bytes(BASE, zipfile.ZIP_STORED), "deflated": _zip_bytes(BASE, zipfile.ZIP_DEFLATED)}


@settings(max_examples=150)
@given(kind=st.sampled_from(sorted(ZIPS)), flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)),
                                                          max_size=4), cut=st.none() | st.integers(0, 1 << 20))
def test_corrupted_zip_archives_never_crash_or_allocate(kind, flips, cut):
    raw = bytearray(ZIPS[kind])
    for position, byte in flips:
        raw[position % len(raw)] ^= byte
    if cut is not None:
        raw = raw[:cut % (len(raw) + 1)]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "b.zip")
        with open(path, "wb") as stream:
            stream.write(bytes(raw))
        assert_load_path_is_safe(path)
