"""The bundle's scale file (format version 2, docs/format.md section 4.6): per-channel scale lists
longer than 16 values are written once each to ``tensors/quantization.scales.npy`` (float64) and
sliced by graph.json; every defect of that file or of a slice raises an error naming it."""

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

import intref
from intref import GraphBuilder
from intref.bundle.quantization import SCALES_INLINE_MAX
from intref.errors import IntrefError, SchemaError, TensorFileError

WIDTH = 20            # above SCALES_INLINE_MAX: the scale lists of width 20 go to the file
SCALES = "tensors/quantization.scales.npy"


def scaled_graph():
    """fc (Linear) -> fc_q (per-channel Requantize); fc's and bias's scales are the same 20 values,
    fc_q's are 20 others, w's are 4 (inline)."""
    assert WIDTH > SCALES_INLINE_MAX
    b = GraphBuilder("scaled", symbols={"batch": 2})
    x = b.input("x", "int8", ["batch", 4])
    acc = [0.001 * (i + 1) for i in range(WIDTH)]
    w = b.tensor("w", np.ones((WIDTH, 4), np.int8), scale=0.1)
    bias = b.tensor("bias", np.arange(WIDTH, dtype=np.int32), scale=acc)
    y = b.add("Linear", [x, w, bias], "int32", name="fc", scale=acc)
    b.add("Requantize", [y], "int8", name="fc_q", attributes={"multiplier": 1 << 30, "shift": 31},
          scale=[1.0 / 3 + i for i in range(WIDTH)])
    b.output("fc_q")
    return b.build(producer={"name": "tests"})


@pytest.fixture
def bundle(tmp_path):
    path = tmp_path / "b"
    intref.save(scaled_graph(), path)
    return path


def read_doc(path):
    return json.loads((path / "graph.json").read_text())


def edit(path, change):
    doc = read_doc(path)
    change(doc)
    (path / "graph.json").write_text(json.dumps(doc))


def npy_bytes(array) -> bytes:
    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


def replace_scales(path, raw: bytes, *, count=None):
    (path / SCALES).write_bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    edit(path, lambda d: d["scales"].update(sha256=digest, **({} if count is None else {"count": count})))


def expect(path, cls, *fragments):
    with pytest.raises(IntrefError) as info:
        intref.load(path)
    assert type(info.value) is cls, f"{type(info.value).__name__}: {info.value}"
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


@pytest.mark.parametrize("fmt", ["dir", "zip"])
def test_long_lists_go_to_the_file_once_and_load_back_bit_for_bit(tmp_path, fmt):
    graph = scaled_graph()
    path = tmp_path / ("b.zip" if fmt == "zip" else "b")
    intref.save(graph, path)
    if fmt == "zip":
        with zipfile.ZipFile(path) as archive:
            doc = json.loads(archive.read("graph.json"))
            values = np.load(io.BytesIO(archive.read(SCALES)))
    else:
        doc, values = read_doc(path), np.load(path / SCALES)
    q = doc["quantization"]
    assert doc["format_version"] == 2 and doc["scales"]["file"] == SCALES and doc["scales"]["count"] == 2 * WIDTH
    assert q["fc"]["scale"] == q["bias"]["scale"] == {"offset": 0, "count": WIDTH}     # equal lists share a slice
    assert q["fc_q"]["scale"] == {"offset": WIDTH, "count": WIDTH}
    assert q["w"]["scale"] == 0.1                                                      # short: inline
    assert values.dtype == np.dtype("<f8") and values[WIDTH:].tolist() == graph.quantization["fc_q"]["scale"]
    loaded = intref.load(path)
    assert dict(loaded.quantization) == dict(graph.quantization)
    assert all(type(s) is float for s in loaded.quantization["fc_q"]["scale"])
    assert intref.dequantize(loaded, "fc_q", np.ones((1, WIDTH), np.int8)).tolist() == \
        [graph.quantization["fc_q"]["scale"]]


def test_short_lists_only_write_no_scale_file(tmp_path):
    b = GraphBuilder("short")
    x = b.input("x", "int8", [1, SCALES_INLINE_MAX])
    b.add("Requantize", [x], "int8", name="y", attributes={"multiplier": 1 << 30, "shift": 31},
          scale=[0.5] * SCALES_INLINE_MAX)
    b.output("y")
    intref.save(b.build(), tmp_path / "b")
    doc = read_doc(tmp_path / "b")
    assert "scales" not in doc and doc["quantization"]["y"]["scale"] == [0.5] * SCALES_INLINE_MAX
    assert not (tmp_path / "b" / "tensors").exists()


def test_a_version_1_document_still_loads(tmp_path):
    b = GraphBuilder("old")
    x = b.input("x", "int8", [1, 4])
    b.add("Requantize", [x], "int8", name="y", attributes={"multiplier": 1 << 30, "shift": 31}, scale=0.5)
    b.output("y")
    intref.save(b.build(), tmp_path / "b")
    edit(tmp_path / "b", lambda d: d.update(format_version=1))
    assert intref.load(tmp_path / "b").quantization["y"] == {"scale": 0.5}


def test_a_version_1_document_may_not_use_the_scale_file(bundle):
    edit(bundle, lambda d: d.update(format_version=1))
    expect(bundle, SchemaError, "scales: needs format_version 2")


def test_missing_scale_file(bundle):
    (bundle / SCALES).unlink()
    expect(bundle, TensorFileError, SCALES, "cannot be read")


def test_missing_scale_member_of_a_zip(tmp_path):
    intref.save(scaled_graph(), tmp_path / "b.zip")
    with zipfile.ZipFile(tmp_path / "b.zip") as src, zipfile.ZipFile(tmp_path / "c.zip", "w") as dst:
        for info in src.infolist():
            if info.filename != SCALES:
                dst.writestr(info, src.read(info.filename))
    expect(tmp_path / "c.zip", TensorFileError, SCALES, "missing from the zip")


@pytest.mark.parametrize("array, message", [
    (np.ones(2 * WIDTH, np.float32), "a scale file holds little-endian float64"),
    (np.ones(2 * WIDTH, np.int64), "a scale file holds little-endian float64"),
    (np.ones(2 * WIDTH, ">f8"), "a scale file holds little-endian float64"),
    (np.ones(2 * WIDTH + 1), f"shape [{2 * WIDTH + 1}] in the file"),
    (np.ones((2, WIDTH)), f"shape [2, {WIDTH}] in the file"),
])
def test_wrong_dtype_or_shape(bundle, array, message):
    replace_scales(bundle, npy_bytes(array))
    expect(bundle, TensorFileError, SCALES, message)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scale(bundle, bad):
    values = np.load(bundle / SCALES)
    values[WIDTH + 3] = bad
    replace_scales(bundle, npy_bytes(values))
    expect(bundle, TensorFileError, SCALES, f"element [{WIDTH + 3}]", "is not finite")


def test_sha256_mismatch(bundle):
    values = np.load(bundle / SCALES)
    values[0] *= 2
    (bundle / SCALES).write_bytes(npy_bytes(values))
    expect(bundle, TensorFileError, SCALES, "sha256")


def test_truncated_scale_file(bundle):
    raw = (bundle / SCALES).read_bytes()
    replace_scales(bundle, raw[:-8])
    expect(bundle, TensorFileError, SCALES, "truncated or padded")


@pytest.mark.parametrize("change, field, message", [
    (lambda d: d["scales"].pop("sha256"), "scales.sha256", "required field is missing"),
    (lambda d: d["scales"].update(extra=1), "scales.extra", "unknown field"),
    (lambda d: d["scales"].update(count=0), "scales.count", "outside [1,"),
    (lambda d: d["scales"].update(count="40"), "scales.count", "expected an int"),
    (lambda d: d["scales"].update(file="tensors/W.npy"), "scales.file", "already the file of tensors[0]"),
    (lambda d: d["scales"].update(file="../s.npy"), "scales.file", "would leave the bundle"),
    (lambda d: d["scales"].update(sha256="ABC"), "scales.sha256", "64 lowercase hex"),
    (lambda d: d.pop("scales"), "quantization.bias.scale", "no top-level scales"),
    (lambda d: d["quantization"]["fc"]["scale"].update(offset=2 * WIDTH), "quantization.fc.scale.offset",
     "outside [0, 39]"),
    (lambda d: d["quantization"]["fc_q"]["scale"].update(count=WIDTH + 1), "quantization.fc_q.scale.count",
     f"outside [1, {WIDTH}]"),
    (lambda d: d["quantization"]["fc"]["scale"].update(offset=-1), "quantization.fc.scale.offset", "outside"),
    (lambda d: d["quantization"]["fc"]["scale"].pop("count"), "quantization.fc.scale.count", "missing"),
    (lambda d: d["quantization"]["fc"]["scale"].update(step=1), "quantization.fc.scale.step", "unknown field"),
    (lambda d: d["quantization"]["fc"]["scale"].update(count=WIDTH - 1), "quantization.fc.scale",
     f"{WIDTH - 1} per-channel scales"),
])
def test_bad_scales_fields(bundle, change, field, message):
    edit(bundle, change)
    with pytest.raises(IntrefError) as info:
        intref.load(bundle)
    assert f"{field}:" in str(info.value) and message in str(info.value), str(info.value)


# --- metadata.weight_quant (read by intref inspect) ------------------------------------------------------

def test_weight_quant_metadata_round_trips_and_reaches_inspect(tmp_path):
    from intref.convert.ptq.weight_quant import WEIGHT_QUANTS
    from intref.bundle.metadata import WEIGHT_QUANT_METHODS
    from intref.inspect_schemes import layer_schemes
    assert WEIGHT_QUANT_METHODS == WEIGHT_QUANTS              # the loader's list is the converter's
    graph = scaled_graph()
    b = GraphBuilder("m")
    x = b.input("x", "int8", [1, 4])
    b.add("Linear", [x, b.tensor("w", np.ones((3, 4), np.int8), scale=0.1)], "int32", name="fc")
    b.output("fc")
    intref.save(b.build(metadata={"weight_quant": {"w": "gptq"}}), tmp_path / "b")
    loaded = intref.load(tmp_path / "b")
    assert loaded.metadata["weight_quant"] == {"w": "gptq"}
    assert layer_schemes(loaded) == [("fc", "w8 per tensor, act static, weights by gptq")]
    assert layer_schemes(graph) == [("fc", "w8 per tensor, act static")]       # not recorded: not shown


@pytest.mark.parametrize("value, field, message", [
    ({"nope": "gptq"}, "metadata.weight_quant.nope", "names no stored tensor"),
    ({"w": "rtn"}, "metadata.weight_quant.w", "'rtn' is not a weight quantization method (known: max, mse"),
    ({"w": 4}, "metadata.weight_quant.w", "is not a weight quantization method"),
    (["w", "gptq"], "metadata.weight_quant", "expected an object"),
])
def test_bad_weight_quant_metadata(bundle, value, field, message):
    edit(bundle, lambda d: d["metadata"].update(weight_quant=value))
    expect(bundle, SchemaError, f"{field}: ", message)
