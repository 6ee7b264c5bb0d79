"""Every way a bundle can be wrong, each built on disk from a valid bundle, each raising one specific
``IntrefError`` subclass whose message names the file, field or node."""

import json
import os
import pickle
import struct
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

import intref
from intref import GraphBuilder
from intref.errors import (AttributeError_, BundleFormatError, CycleError, DuplicateNameError, GraphError,
                           IntrefError, MissingValueError, RangeAnalysisError, SchemaError, ShapeMismatchError,
                           TensorFileError, TypeMismatchError, UnknownOpError, UnsafePathError, UnusedValueError)

# nodes: 0 embed, 1 fc, 2 fc_q; tensors: 0 table (int8 [10, 7]), 1 w (int4 [4, 7], packed), 2 bias (int22 [4])


def small_graph():
    b = GraphBuilder("small", symbols={"seq": 8})
    ids = b.input("ids", "int32", [1, "seq"], range=(0, 9))
    table = b.tensor("table", np.arange(-35, 35, dtype=np.int8).reshape(10, 7), scale=0.1)
    x = b.add("Embedding", [ids, table], "int8", name="embed")
    w = b.tensor("w", (np.arange(28).reshape(4, 7) % 16 - 8).astype(np.int8), "int4", layout="int4_packed")
    bias = b.tensor("bias", np.array([-(1 << 21), -5, 5, (1 << 21) - 1], dtype=np.int32), "int22")
    y = b.add("Linear", [x, w, bias], "int32", name="fc")
    b.add("Requantize", [y], "int8", name="fc_q", attributes={"multiplier": [1 << 30] * 4, "shift": 40},
          scale=[0.1, 0.2, 0.3, 0.4])
    b.output("fc_q")
    return b.build(producer={"name": "tests"})


@pytest.fixture
def bundle(tmp_path):
    path = tmp_path / "b"
    intref.save(small_graph(), path)
    return path


def read_doc(path):
    return json.loads((path / "graph.json").read_text())


def edit(path, change):
    doc = read_doc(path)
    change(doc)
    (path / "graph.json").write_text(json.dumps(doc))


def replace_file(path, name, raw, *, update_sha=True):
    (path / "tensors" / name).write_bytes(raw)
    if update_sha:
        import hashlib
        digest = hashlib.sha256(raw).hexdigest()
        edit(path, lambda d: [t.update(sha256=digest) for t in d["tensors"] if t["file"] == f"tensors/{name}"])


def npy_bytes(array, **options):
    import io
    stream = io.BytesIO()
    np.save(stream, array, **options)
    return stream.getvalue()


def expect(path, cls, *fragments):
    with pytest.raises(IntrefError) as info:
        intref.load(path)
    assert type(info.value) is cls, f"{type(info.value).__name__}: {info.value}"
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"
    return info.value


def test_the_small_graph_is_valid(bundle):
    loaded = intref.load(bundle)
    assert [n.name for n in loaded.nodes] == ["embed", "fc", "fc_q"]
    assert list(loaded.tensors) == ["table", "w", "bias"]


# --- not a bundle ------------------------------------------------------------------------------------

def test_missing_graph_json(bundle):
    os.remove(bundle / "graph.json")
    expect(bundle, BundleFormatError, "graph.json: cannot be read")


def test_graph_json_that_is_a_directory(bundle):
    os.remove(bundle / "graph.json")
    os.mkdir(bundle / "graph.json")
    expect(bundle, BundleFormatError, "graph.json: is not a regular file")


def test_neither_directory_nor_zip(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"PK not really")
    expect(tmp_path / "model.bin", BundleFormatError, "model.bin: neither a bundle directory nor a zip file")
    expect(tmp_path / "absent", BundleFormatError, "absent: no such file or directory")


@pytest.mark.parametrize("raw, fragment", [
    (b'{"format": "intref-graph", ', "not valid JSON"),
    (b'{"format": "intref-graph", "format": "intref-graph"}', "duplicate key 'format'"),
    (b'{"format": NaN}', "NaN is not JSON"),
    (b'{"format": 1e999}', "does not fit a float64"),
    (b'{"format": "intref-graph", "q": {"s": [0.5, 0.25, -1e309]}}', "number -1e309 does not fit"),   # in a list
    (b'{"format": "intref-graph", "q": [[1, "a", 2.5e400, null]]}', "number 2.5e400 does not fit"),  # mixed, nested
    (b'{"format": "intref-graph", "m": {"a": {"b": 1' + b"0" * 400 + b'.0}}}', "does not fit a float64"),
    ('{"format": "é"}'.encode("latin1"), "not valid JSON"),
    (b"[1, 2]", "the top level is list, not an object"),
    (b'{"format": "onnx", "format_version": 1}', "format: format is 'onnx', expected 'intref-graph'"),
    (b'{"format_version": 1}', "format: format is 'None'"),
    (b'{"format": "intref-graph", "format_version": 3}',
     "format_version: unsupported format_version '3'; this intref reads 1 and 2"),
    (b'{"format": "intref-graph", "format_version": "1"}', "unsupported format_version '1'"),
    (b'{"format": "intref-graph", "format_version": true}', "unsupported format_version 'True'"),
    (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
])
def test_unreadable_or_foreign_graph_json(bundle, raw, fragment):
    (bundle / "graph.json").write_bytes(raw)
    expect(bundle, BundleFormatError, "graph.json", fragment)


# --- schema: every field checked, the message names graph.json and the field path --------------------

def _set(path, value):
    def change(doc):
        *parents, last = path
        target = doc
        for key in parents:
            target = target[key]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return change


DELETE = object()
SCHEMA_CASES = [
    (("nodes",), DELETE, "nodes: required field is missing"),
    (("extra",), 1, "extra: unknown field (allowed: format, format_version"),
    (("producer",), "me", "producer: expected an object, got str"),
    (("producer", "name"), DELETE, "producer.name: required field is missing"),
    (("producer", "version"), 2, "producer.version: expected a string, got int"),
    (("name",), "", "name: must be 1..200 printable characters"),
    (("symbols", "seq"), True, "symbols.seq: expected an int, got bool"),
    (("symbols", "seq"), 0, "symbols.seq: 0 is outside [1, 2147483648]"),
    (("symbols", "9x"), 3, "symbols.9x: not a legal symbol name"),
    (("symbols", "extra"), 3, "symbols.extra: declared but used by no graph input"),
    (("inputs", 0, "type"), "int99", "inputs[0].type: 'int99' is not an integer type"),
    (("inputs", 0, "shape"), [1, "len"], "inputs[0].shape[1]: 'len' is not a declared symbol"),
    (("inputs", 0, "shape"), [-1, "seq"], "inputs[0].shape[0]: -1 is outside [0, 2147483648]"),
    (("inputs", 0, "shape"), [1.0, "seq"], "inputs[0].shape[0]: expected an int or a symbol name, got float"),
    (("inputs", 0, "shape"), [1] * 33 + ["seq"], "inputs[0].shape: rank 34 is above the maximum 32"),
    (("inputs", 0, "shape"), DELETE, "inputs[0].shape: required field is missing"),
    (("inputs", 0, "range"), [5, 2], "inputs[0].range: lo 5 is above hi 2"),
    (("inputs", 0, "range"), [0, 1 << 40], "inputs[0].range[1]: 1099511627776 is outside [-2147483648, 2147483647]"),
    (("inputs", 0, "range"), {"lo": 0}, "inputs[0].range: expected a list [lo, hi], got object"),
    (("inputs", 0, "name"), "a b", "inputs[0].name: 'a b' is not a legal name"),
    (("inputs", 0, "dtype"), "int8", "inputs[0].dtype: unknown field"),
    (("outputs",), [3], "outputs[0]: expected a string, got int"),
    (("tensors", 0, "file"), "tensors/a b.npy", "tensors[0].file: 'tensors/a b.npy' does not match"),
    (("tensors", 0, "file"), "weights/table.npy", "tensors[0].file: 'weights/table.npy' does not match"),
    (("tensors", 1, "file"), "tensors/TABLE.npy", "tensors[1].file: 'tensors/TABLE.npy' is already the file of "
                                                  "tensors[0]"),
    (("tensors", 0, "sha256"), "AB" * 32, "tensors[0].sha256: expected 64 lowercase hex digits"),
    (("tensors", 0, "layout"), "packed", "tensors[0].layout: 'packed' is not one of ['plain', 'int4_packed']"),
    (("tensors", 0, "layout"), "int4_packed", "tensors[0].layout: int4_packed needs type int4"),
    (("tensors", 0, "layout"), DELETE, "tensors[0].layout: required field is missing"),
    (("tensors", 0, "shape"), ["seq", 7], "tensors[0].shape[0]: expected an int, got str"),
    (("tensors", 0, "shape"), [(1 << 31) + 1, 7], "tensors[0].shape[0]: 2147483649 is outside [0, 2147483648]"),
    (("nodes", 0, "op"), DELETE, "nodes[0].op: required field is missing"),
    (("nodes", 0, "op"), "Not an op!", "nodes[0].op: 'Not an op!' is not a legal op name"),
    (("nodes", 0, "inputs"), "ids", "nodes[0].inputs: expected a list, got str"),
    (("nodes", 0, "outputs", 0, "shape"), ["len"], "nodes[0].outputs[0].shape[0]: 'len' is not a declared symbol"),
    (("nodes", 0, "outputs", 0, "type"), 8, "nodes[0].outputs[0].type: expected a string, got int"),
    (("nodes", 2, "attributes", "shift"), "8", "nodes[2].attributes.shift: expected an int or a list of ints, got str"),
    (("nodes", 2, "attributes", "shift"), 8.0, "nodes[2].attributes.shift: expected an int, bool, string or list"),
    (("nodes", 2, "attributes", "shift"), None, "nodes[2].attributes.shift: expected an int, bool, string or list "
                                                "of ints and strings, got null"),
    (("nodes", 2, "attributes", "shift"), 1 << 70, "nodes[2].attributes.shift: 1180591620717411303424 is outside"),
    (("nodes", 2, "attributes", "multiplier"), [[1]], "nodes[2].attributes.multiplier[0]: expected an int or a string"),
    (("nodes", 2, "attributes", "multiplier"), [1, "x"], "nodes[2].attributes.multiplier: expected an int or a list "
                                                         "of ints, got list of int/str"),
    (("nodes", 2, "attributes", "multiplier"), [1, 2, True, 4], "nodes[2].attributes.multiplier[2]: expected an int "
                                                                "or a string of at most 256 characters, got bool"),
    (("nodes", 2, "attributes", "multiplier"), [1, 1 << 70, 2, 3], "nodes[2].attributes.multiplier[1]: "
                                                                   "1180591620717411303424 is outside"),
    (("nodes", 2, "attributes", "rounding"), True, "nodes[2].attributes.rounding: expected a string, got bool"),
    (("nodes", 2, "attributes", "bad-name"), 1, "nodes[2].attributes.bad-name: not a legal attribute name"),
    (("nodes", 2, "attributes"), [], "nodes[2].attributes: expected an object, got list"),
    (("quantization", "ghost"), {"scale": 1.0}, "quantization.ghost: names no graph input, tensor or node output"),
    (("quantization", "table", "scale"), "0.1", "quantization.table.scale: expected a number, got str"),
    (("quantization", "table", "scale"), 10 ** 400, "quantization.table.scale: 1000000000000000000000000000000000000000"
                                                    " is not a finite float64"),
    (("quantization", "table", "axis"), -1, "quantization.table.axis: an axis applies only to a list"),
    (("quantization", "fc_q", "scale"), [], "quantization.fc_q.scale: an empty list of scales"),
    (("quantization", "fc_q", "scale"), [0.1, 0.2, "0.3", 0.4], "quantization.fc_q.scale[2]: expected a number, got str"),
    (("quantization", "fc_q", "scale"), [0.1, 10 ** 400, 0.3, 0.4], "quantization.fc_q.scale[1]: 1000000000"),
    (("quantization", "fc_q", "axis"), 7, "quantization.fc_q.axis: axis 7 is outside a value of shape"),
    (("quantization", "fc_q", "axis"), 0, "quantization.fc_q.scale: 4 per-channel scales, but"),
    (("quantization", "fc_q", "zero_point"), 0, "quantization.fc_q.zero_point: unknown field"),
    (("quantization", "fc_q", "scale"), [0.1] * 3, "quantization.fc_q.scale: 3 per-channel scales, but the value's "
                                                   "shape is [1, 'seq', 4]"),
    (("metadata",), [1], "metadata: expected an object, got list"),
    (("metadata", "deep"), json.loads("[" * 70 + "]" * 70), "metadata.deep" + "[0]" * 64 + ": nested more than 64 "
                                                                                       "levels deep"),
]


@pytest.mark.parametrize("path, value, message", SCHEMA_CASES, ids=[m.split(":")[0] for _, _, m in SCHEMA_CASES])
def test_schema_defects_name_the_field(bundle, path, value, message):
    edit(bundle, _set(path, value))
    error = expect(bundle, SchemaError, f"graph.json: {message}")
    assert error.path == "graph.json" and message.startswith(error.field)


def test_brief_example_message_for_an_int_attribute(tmp_path):
    b = GraphBuilder("ln", symbols={"seq": 4})
    x = b.input("x", "int16", ["seq", 3])
    b.add("ILayerNorm", [x], "int32", name="ln", attributes={"shift": 0, "bias_int": [0, 0, 0]})
    b.output("ln")
    intref.save(b.build(), tmp_path / "b")
    edit(tmp_path / "b", _set(("nodes", 0, "attributes", "shift"), "2"))
    expect(tmp_path / "b", SchemaError, "graph.json: nodes[0].attributes.shift: expected an int, got str")


# --- tensor files --------------------------------------------------------------------------------------

TABLE = np.arange(-35, 35, dtype=np.int8).reshape(10, 7)


def _v2_header(length):
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", length) + b" " * length


def _bad_padding(raw):
    raw = bytearray(raw)
    raw[-1] |= 0x10          # the last byte's high nibble is the padding of an odd last axis (7)
    return bytes(raw)


TENSOR_CASES = [
    ("table.npy", lambda raw: raw[:-1], "tensors/table.npy: the file has 197 bytes; header 128 + data 70 = 198"),
    ("table.npy", lambda raw: raw + b"\0", "the file has 199 bytes; header 128 + data 70 = 198 expected"),
    ("table.npy", lambda raw: b"", "tensors/table.npy: not a .npy file"),
    ("table.npy", lambda raw: npy_bytes(TABLE.astype(np.int16)), "dtype <i2 in the file, but tensor 'table' of "
                                                                  "type int8 (plain) is stored as |i1"),
    ("table.npy", lambda raw: npy_bytes(TABLE.T.copy()), "shape [7, 10] in the file, but tensor 'table' (plain) "
                                                          "needs [10, 7]"),
    ("table.npy", lambda raw: npy_bytes(np.asfortranarray(TABLE)), "fortran_order is True"),
    ("table.npy", lambda raw: npy_bytes(np.array([{"a": 1}] * 70, dtype=object).reshape(10, 7), allow_pickle=True),
     "object dtype '|O' (a pickle): never loaded"),
    ("table.npy", lambda raw: pickle.dumps(TABLE), "a pickle: the file does not start with the .npy magic"),
    ("table.npy", lambda raw: npy_bytes(TABLE.astype(np.float32)), "dtype '<f4' is not a little-endian integer"),
    ("table.npy", lambda raw: npy_bytes(np.zeros((10, 7), dtype=[("a", "i1")])), "structured dtype"),
    ("table.npy", lambda raw: raw[:6] + b"\x09\x00" + raw[8:], ".npy version 9.0 is not 1.0, 2.0 or 3.0"),
    ("table.npy", lambda raw: _v2_header(20000), ".npy header of 20000 bytes (at most 10000)"),
    ("table.npy", lambda raw: raw.replace(b"'fortran_order'", b"'fortran_ordeR'"), "exactly descr, fortran_order"),
    ("table.npy", lambda raw: raw.replace(b"{'descr'", b"[{'descr'"), "not a Python literal dictionary"),
    ("bias.npy", lambda raw: npy_bytes(np.array([0, 1, 1 << 22, 2], dtype=np.int32)),
     "tensors/bias.npy: element [2] = 4194304 is outside int22 [-2097152, 2097151]"),
    ("bias.npy", lambda raw: npy_bytes(np.array([0, 1, 2, 3], dtype=">i4")), "dtype '>i4' is not a little-endian"),
    ("w.npy", _bad_padding, "tensors/w.npy: int4 padding: unpack_int4: packed[3, 3] = 0x1"),
    ("w.npy", lambda raw: npy_bytes(np.zeros((4, 4), dtype=np.int8)), "dtype |i1 in the file, but tensor 'w' of "
                                                                      "type int4 (int4_packed) is stored as |u1"),
    ("w.npy", lambda raw: npy_bytes(np.zeros((4, 7), dtype=np.uint8)), "shape [4, 7] in the file, but tensor 'w' "
                                                                       "(int4_packed) needs [4, 4]"),
]


@pytest.mark.parametrize("name, corrupt, message", TENSOR_CASES,
                         ids=[f"{i}-{c[0]}" for i, c in enumerate(TENSOR_CASES)])
def test_tensor_file_defects(bundle, name, corrupt, message):
    replace_file(bundle, name, corrupt((bundle / "tensors" / name).read_bytes()))
    expect(bundle, TensorFileError, message)


def test_sha256_mismatch_and_verify_hashes_false(bundle):
    raw = bytearray((bundle / "tensors" / "table.npy").read_bytes())
    raw[-1] ^= 0x01
    replace_file(bundle, "table.npy", bytes(raw), update_sha=False)
    expect(bundle, TensorFileError, "tensors/table.npy: sha256", "does not match graph.json's")
    loaded = intref.load(bundle, verify_hashes=False)
    assert int(loaded.tensors["table"].data[-1, -1]) == 34 ^ 1


def test_missing_tensor_file_and_a_directory_in_its_place(bundle):
    os.remove(bundle / "tensors" / "w.npy")
    expect(bundle, TensorFileError, "tensors/w.npy: cannot be read")
    os.mkdir(bundle / "tensors" / "w.npy")
    expect(bundle, TensorFileError, "tensors/w.npy: is not a regular file")


def test_huge_declared_shape_fails_the_size_check_without_allocating(bundle):
    edit(bundle, _set(("tensors", 0, "shape"), [1 << 31, 1 << 31]))
    tracemalloc.start()
    try:
        expect(bundle, TensorFileError, "tensors/table.npy: shape [10, 7] in the file")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


# --- paths that would leave the bundle -------------------------------------------------------------------

@pytest.mark.parametrize("file", ["tensors/../../outside.npy", "../table.npy", "/etc/passwd", "\\\\server\\x.npy",
                                  "C:/x.npy", "tensors/..\\..\\x.npy"])
def test_file_reference_leaving_the_bundle(bundle, file):
    edit(bundle, _set(("tensors", 0, "file"), file))
    expect(bundle, UnsafePathError, "graph.json: tensors[0].file:", "would leave the bundle")


def test_symlink_escaping_the_directory(bundle, tmp_path):
    outside = tmp_path / "outside.npy"
    outside.write_bytes((bundle / "tensors" / "table.npy").read_bytes())   # a valid file, but outside
    os.remove(bundle / "tensors" / "table.npy")
    os.symlink(outside, bundle / "tensors" / "table.npy")
    expect(bundle, UnsafePathError, "tensors/table.npy: resolves outside the bundle directory")


def test_symlinked_graph_json_escaping_the_directory(bundle, tmp_path):
    os.replace(bundle / "graph.json", tmp_path / "graph.json")
    os.symlink(tmp_path / "graph.json", bundle / "graph.json")
    expect(bundle, UnsafePathError, "graph.json: resolves outside the bundle directory")


def test_symlink_inside_the_directory_is_followed(bundle):
    os.replace(bundle / "tensors" / "table.npy", bundle / "table-data.npy")
    os.symlink(os.path.join("..", "table-data.npy"), bundle / "tensors" / "table.npy")
    assert intref.load(bundle).tensors["table"].data.tolist() == TABLE.tolist()


# --- zip bundles -------------------------------------------------------------------------------------------

def zip_of(directory, target, *, compression=zipfile.ZIP_STORED, extra=(), rename=None):
    with zipfile.ZipFile(target, "w", compression) as archive:
        for name in ["graph.json"] + [f"tensors/{n}" for n in sorted(os.listdir(directory / "tensors"))]:
            archive.write(directory / name, (rename or {}).get(name, name))
        for name, data in extra:
            archive.writestr(name, data)
    return target


def patch_member(path, name, *, file_size=None, compress_size=None, flag_bits=None, method=None):
    """Overwrite fields of ``name``'s local and central headers in place (both agree afterwards)."""
    with zipfile.ZipFile(path) as archive:
        info, start = archive.getinfo(name), archive.start_dir
    raw = bytearray(open(path, "rb").read())
    central = raw.index(b"PK\x01\x02" + raw[start + 4:start + 6], start)
    while raw[central + 46:central + 46 + len(name)] != name.encode():
        n, m, k = struct.unpack("<HHH", raw[central + 28:central + 34])
        central += 46 + n + m + k
    for header, base in ((info.header_offset, 6), (central, 8)):   # local / central header field offsets
        for value, offset, fmt in ((flag_bits, 0, "<H"), (method, 2, "<H"), (compress_size, 12, "<I"),
                                   (file_size, 16, "<I")):
            if value is not None:
                struct.pack_into(fmt, raw, header + base + offset, value)
    open(path, "wb").write(bytes(raw))


def test_zip_member_whose_declared_size_does_not_match(bundle, tmp_path):
    path = zip_of(bundle, tmp_path / "b.zip")
    patch_member(path, "tensors/table.npy", file_size=198 + 20000, compress_size=198 + 20000)
    expect(path, TensorFileError, "tensors/table.npy: the zip member declares 20198 bytes; tensor 'table' "
                                  "needs 70 bytes of data plus a .npy header")


def test_zip_bomb_declaring_a_huge_consistent_size_is_refused_before_decompressing(bundle, tmp_path):
    edit(bundle, _set(("tensors", 0, "shape"), [1 << 15, 1 << 15]))
    path = zip_of(bundle, tmp_path / "b.zip", compression=zipfile.ZIP_DEFLATED)
    patch_member(path, "tensors/table.npy", file_size=(1 << 30) + 128)
    tracemalloc.start()
    try:
        expect(path, TensorFileError, "tensors/table.npy: the zip member declares 1073741952 bytes from",
               "the archive cannot hold that")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_zip_stored_member_whose_sizes_disagree(bundle, tmp_path):
    path = zip_of(bundle, tmp_path / "b.zip")
    patch_member(path, "tensors/table.npy", compress_size=10)
    expect(path, TensorFileError, "tensors/table.npy: the zip member declares 198 bytes from 10 compressed")


def test_zip_encrypted_or_unknown_compression(bundle, tmp_path):
    path = zip_of(bundle, tmp_path / "b.zip")
    patch_member(path, "tensors/w.npy", flag_bits=0x1)
    expect(path, TensorFileError, "tensors/w.npy: the zip member is encrypted")
    path = zip_of(bundle, tmp_path / "c.zip")
    patch_member(path, "graph.json", method=99)
    expect(path, BundleFormatError, "graph.json: zip compression method 99")


def test_zip_corrupt_member_data_fails_its_crc(bundle, tmp_path):
    path = zip_of(bundle, tmp_path / "b.zip")
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo("tensors/table.npy").header_offset + 30 + len("tensors/table.npy") + 150
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    expect(path, TensorFileError, "tensors/table.npy: cannot be read from the zip", "CRC")


def test_zip_missing_members_and_unsafe_or_duplicate_names(bundle, tmp_path):
    path = zip_of(bundle, tmp_path / "a.zip", rename={"tensors/bias.npy": "bias.npy"})
    expect(path, TensorFileError, "tensors/bias.npy: missing from the zip")
    path = zip_of(bundle, tmp_path / "b.zip", rename={"graph.json": "model/graph.json"})
    expect(path, BundleFormatError, "no graph.json at the root of the zip (found 'model/graph.json'")
    path = zip_of(bundle, tmp_path / "c.zip", extra=[("../evil.txt", b"x")])
    expect(path, UnsafePathError, "zip member '../evil.txt' would leave the bundle")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # zipfile warns about the duplicate name it is told to write
        path = zip_of(bundle, tmp_path / "d.zip", extra=[("graph.json", b"{}")])
    expect(path, BundleFormatError, "the zip holds 'graph.json' twice")


# --- graph-level errors, reached through graph.json edits ------------------------------------------------

def _add_input(doc):
    doc["inputs"].append({"name": "extra", "type": "int8", "shape": [2]})


GRAPH_CASES = [
    (_set(("nodes", 2, "op"), "Softmax2"), UnknownOpError,
     ["node 'fc_q': unknown op 'Softmax2'; known ops: Embedding, Gather, GroupLinear, IGelu", "Requantize",
      "Transpose"]),
    (_set(("nodes", 1, "name"), "embed"), DuplicateNameError, ["node 'embed': two nodes are named 'embed'"]),
    (_set(("nodes", 1, "outputs", 0, "name"), "table"), DuplicateNameError, ["node 'table':", "'table' has the same "
                                                                             "name as a tensor"]),
    (_set(("nodes", 1, "inputs", 0), "ghost"), MissingValueError, ["node 'fc': input 'ghost' is not a graph input"]),
    (_set(("outputs",), ["ghost"]), MissingValueError, ["node 'ghost': graph output 'ghost' is not produced"]),
    (_set(("nodes", 0, "inputs", 0), "fc_q"), CycleError, ["node 'embed': nodes form a cycle", "['fc_q']"]),
    (_add_input, UnusedValueError, ["node 'extra': graph input 'extra' is never used"]),
    (_set(("outputs",), ["fc"]), UnusedValueError, ["node 'fc_q': no output of node 'fc_q' reaches a graph output"]),
    (_set(("nodes", 2, "outputs", 0, "type"), "int64"), TypeMismatchError, ["node 'fc_q': requantized output type "
                                                                            "int64 is wider than 32 bits"]),
    (_set(("nodes", 1, "outputs", 0, "shape"), [1, "seq", 5]), ShapeMismatchError,
     ["node 'fc': output 'fc' is declared with shape [1, 'seq', 5] but Linear gives [1, 'seq', 4]"]),
    (_set(("nodes", 2, "attributes", "shift"), 199), AttributeError_, ["node 'fc_q': Requantize attribute 'shift' = 199 "
                                                                       "is outside [0, 127]"]),
    (_set(("nodes", 2, "attributes", "multiplier"), [1, 1 << 30, 1 << 32, -1]), AttributeError_,
     ["node 'fc_q': Requantize attribute 'multiplier' = 4294967296 is outside [-2147483648, 2147483648]"]),
    (_set(("nodes", 2, "attributes", "gain"), 2), AttributeError_, ["node 'fc_q': Requantize has no attribute 'gain'"]),
    (_set(("nodes", 2, "attributes", "multiplier"), DELETE), AttributeError_, ["node 'fc_q': Requantize requires "
                                                                               "attribute 'multiplier'"]),
    (_set(("inputs", 0, "range"), [0, 20]), RangeAnalysisError, ["node 'embed': ids 'ids' may take values in [0, 20] "
                                                                 "but the table has rows 0..9"]),
    (_set(("nodes", 1, "inputs"), ["embed", "w", "bias", "bias"]), GraphError, ["node 'fc': Linear takes 2..3 inputs"]),
]


@pytest.mark.parametrize("change, cls, fragments", GRAPH_CASES,
                         ids=[f"{i}-{c[1].__name__}" for i, c in enumerate(GRAPH_CASES)])
def test_graph_errors_through_graph_json(bundle, change, cls, fragments):
    edit(bundle, change)
    error = expect(bundle, cls, "graph.json: ", *fragments)
    assert error.node and f"node {error.node!r}" in str(error)
