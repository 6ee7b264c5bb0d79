"""The NumPy safetensors reader (intref/convert/ptq/safetensors.py): equal to the ``safetensors``
package on every dtype both know (and on the real MiniLM checkpoint when installed), and a specific
``SafetensorsError`` naming file and field for every header that lies, found before allocation."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given, strategies as st

from intref.convert.ptq.safetensors import DTYPES, read_safetensors
from intref.errors import IntrefError, SafetensorsError

NUMPY_CODES = [c for c in DTYPES if c != "BF16"]


def write_raw(path, header: dict, data: bytes, *, length=None):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def valid_file(path):
    """Two tensors: a float32 [2, 3] at [0, 24) and an int8 [4] at [24, 28)."""
    header = {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "I8", "shape": [4], "data_offsets": [24, 28]}}
    data = np.arange(6, dtype="<f4").tobytes() + np.array([-1, 2, -3, 4], np.int8).tobytes()
    return write_raw(path, header, data), header, data


def test_reads_a_hand_written_file(tmp_path):
    path, _, _ = valid_file(tmp_path / "m.safetensors")
    out = read_safetensors(path)
    assert list(out) == ["a", "b"]
    assert out["a"].dtype == np.float32 and out["a"].shape == (2, 3)
    np.testing.assert_array_equal(out["a"], np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(out["b"], np.array([-1, 2, -3, 4], np.int8))
    out["a"][0, 0] = 7.0                  # writable, owned arrays


@given(st.lists(st.tuples(st.sampled_from(NUMPY_CODES), st.lists(st.integers(0, 4), max_size=3)),
                min_size=1, max_size=5), st.integers(0, 2**31))
def test_equals_the_safetensors_package(tmp_path_factory, specs, seed):
    save_file = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not installed").save_file
    rng = np.random.default_rng(seed)
    tensors = {}
    for i, (code, shape) in enumerate(specs):
        dtype = np.dtype(DTYPES[code])
        raw = rng.integers(0, 256, size=int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8)
        array = raw.view(dtype).reshape(shape) if dtype != np.bool_ else (raw > 127).reshape(shape)
        tensors[f"t{i}"] = array.astype(dtype.newbyteorder("="))
    path = tmp_path_factory.mktemp("st") / "x.safetensors"
    save_file(tensors, str(path), metadata={"format": "np"})
    from safetensors.numpy import load_file
    expected, got = load_file(str(path)), read_safetensors(path)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name].dtype == expected[name].dtype and got[name].shape == expected[name].shape
        assert got[name].tobytes() == expected[name].tobytes()


def test_bf16_widens_exactly_to_float32(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    st_torch = pytest.importorskip("safetensors.torch", reason="the safetensors package is not installed")
    x = torch.randn(5, 7, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    st_torch.save_file({"x": x}, str(tmp_path / "b.safetensors"))
    got = read_safetensors(tmp_path / "b.safetensors")["x"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x.float().numpy())


def test_the_real_minilm_checkpoint_matches_the_package():
    minilm = pytest.importorskip("intref.convert.minilm")
    load_file = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not installed").load_file
    try:
        path = minilm.minilm_path() / "model.safetensors"
    except minilm.MissingResource as error:
        pytest.skip(str(error))
    expected, got = load_file(str(path)), read_safetensors(path)
    assert list(got) == list(read_safetensors(path)) and sorted(got) == sorted(expected) and len(got) == 104
    for name in expected:
        assert got[name].dtype == expected[name].dtype and np.array_equal(got[name], expected[name]), name


# --- headers that lie ----------------------------------------------------------------------------

def _entry(**change):
    entry = {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    entry.update(change)
    return entry


LIES = [
    # (case, header change for tensor "a", field the error names, words it says)
    ("unknown dtype", _entry(dtype="F8_E4M3"), "header['a'].dtype", "not a supported dtype"),
    ("negative dim", _entry(shape=[-2, 3]), "header['a'].shape", "non-negative"),
    ("bool dim", _entry(shape=[True, 3]), "header['a'].shape", "non-negative"),
    ("float dim", _entry(shape=[2.0, 3]), "header['a'].shape", "non-negative"),
    ("shape too big", _entry(shape=[4, 3]), "header['a'].data_offsets", "need 48"),
    ("huge shape", _entry(shape=[2**40, 2**40]), "header['a'].data_offsets", "need"),
    ("three offsets", _entry(data_offsets=[0, 12, 24]), "header['a'].data_offsets", "two non-negative"),
    ("reversed offsets", _entry(data_offsets=[24, 0]), "header['a'].data_offsets", "begin 24 > end 0"),
    ("offset past the data", _entry(shape=[3, 3], data_offsets=[0, 36]), "header['b'].data_offsets", "overlaps"),
    ("extra key", {**_entry(), "strides": [3, 1]}, "header['a']", "expected exactly"),
    ("missing key", {"dtype": "F32", "shape": [2, 3]}, "header['a']", "expected exactly"),
    ("not an object", [0, 24], "header['a']", "expected an object"),
]


@pytest.mark.parametrize("case, entry, field, words", LIES, ids=[case for case, *_ in LIES])
def test_a_lying_entry_names_its_field(tmp_path, case, entry, field, words):
    _, header, data = valid_file(tmp_path / "ok.safetensors")
    path = write_raw(tmp_path / "bad.safetensors", {**header, "a": entry}, data)
    with pytest.raises(SafetensorsError, match=words) as info:
        read_safetensors(path)
    assert info.value.path == str(path) and info.value.field == field and str(path) in str(info.value)


def test_holes_overlaps_and_trailing_bytes(tmp_path):
    _, header, data = valid_file(tmp_path / "ok.safetensors")
    hole = {**header, "b": {"dtype": "I8", "shape": [3], "data_offsets": [25, 28]}}
    with pytest.raises(SafetensorsError, match="hole at byte 24") as info:
        read_safetensors(write_raw(tmp_path / "hole.safetensors", hole, data))
    assert info.value.field == "header['b'].data_offsets"
    overlap = {**header, "b": {"dtype": "I8", "shape": [4], "data_offsets": [20, 24]}}
    with pytest.raises(SafetensorsError, match="overlaps"):
        read_safetensors(write_raw(tmp_path / "overlap.safetensors", overlap, data))
    with pytest.raises(SafetensorsError, match="file holds 29 data bytes") as info:
        read_safetensors(write_raw(tmp_path / "trailing.safetensors", header, data + b"\0"))
    assert info.value.field == "data"
    with pytest.raises(SafetensorsError, match="end at byte 28 of the data buffer but the file holds 27"):
        read_safetensors(write_raw(tmp_path / "short.safetensors", header, data[:-1]))


def test_header_length_and_json_defects(tmp_path):
    _, header, data = valid_file(tmp_path / "ok.safetensors")
    raw_len = len(json.dumps(header))
    for length in (raw_len + len(data) + 1, 2**63, 2**64 - 1):
        with pytest.raises(SafetensorsError, match="declared") as info:
            read_safetensors(write_raw(tmp_path / "len.safetensors", header, data, length=length))
        assert info.value.field == "header length"
    (tmp_path / "tiny.safetensors").write_bytes(b"\x01\x00")
    with pytest.raises(SafetensorsError, match="fewer than the 8"):
        read_safetensors(tmp_path / "tiny.safetensors")
    bodies = {b"[1, 2]": "expected a JSON object", b"{not json": "not valid UTF-8 JSON",
              b'{"a": 1, "a": 2}': "appears twice", b'{"\xff": 1}': "not valid UTF-8 JSON",
              b'{"__metadata__": {"k": 1}}': "object of strings", b"[" * 100000: "not valid UTF-8 JSON"}
    for body, words in bodies.items():
        path = tmp_path / "j.safetensors"
        path.write_bytes(struct.pack("<Q", len(body)) + body)
        with pytest.raises(SafetensorsError, match=words):
            read_safetensors(path)
    with pytest.raises(SafetensorsError, match="no such file"):
        read_safetensors(tmp_path / "absent.safetensors")


@given(st.data())
def test_any_corruption_is_an_intref_error_or_a_faithful_read(tmp_path_factory, data):
    """Flip, insert or delete bytes anywhere in a valid file: the reader either raises
    SafetensorsError or returns tensors whose bytes all lie in the file (nothing invented)."""
    path, _, _ = valid_file(tmp_path_factory.mktemp("fz") / "ok.safetensors")
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if action == "set":
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "insert":
            raw.insert(at, data.draw(st.integers(0, 255)))
        elif len(raw) > 1:
            del raw[at]
    path.write_bytes(bytes(raw))
    try:
        out = read_safetensors(path)
    except IntrefError as error:
        assert isinstance(error, SafetensorsError) and error.path == str(path)
        return
    assert sum(a.nbytes for a in out.values()) <= len(raw)
