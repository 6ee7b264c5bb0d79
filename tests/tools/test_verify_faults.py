"""intref verify on bad input: every defect of a hardware dump (truncated, empty, wrong width,
garbage, wrong dtype, pickled, unreadable), of the golden set (tampered file, manifest defects) or
of the bundle (not the one the set was written from) gives exit 2 and a message naming the file
(and line, byte or field), never a traceback and never a match."""

import json
import os
import pickle
import shutil

import numpy as np
import pytest

from intref import GraphBuilder, save
from intref.cli import main as cli_main
from intref.golden import write_golden
from intref.verify import VerifyInputError, verify
from intref.verify.report import BAD_DUMP, MATCH, MISMATCH

FEED = np.array([[1, 2, 3, 6, -2, -6, 10, -10], [5, 7, 14, -14, 1000, -1000, 0, 4]], dtype=np.int32)


def tiny_graph(multiplier=1 << 30):
    b = GraphBuilder("tiny")
    x = b.input("x", "int32", [2, 8])
    y = b.add("Requantize", [x], "int16", name="y", attributes={"multiplier": multiplier, "shift": 30})
    b.output(b.add("Requantize", [y], "int8", name="z", attributes={"multiplier": 1 << 30, "shift": 32}))
    return b.build()


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A golden set in every format, with its bundle beside it (the manifest's relative path)."""
    root = tmp_path_factory.mktemp("tiny")
    save(tiny_graph(), root / "tiny.zip")
    write_golden(tiny_graph(), {"x": FEED}, root / "golden", bundle_path="../tiny.zip")
    return root


@pytest.fixture
def golden(case, tmp_path):
    """A private copy of the golden set (for tests that damage it)."""
    shutil.copytree(case, tmp_path / "case")
    return tmp_path / "case" / "golden"


def hw_with(case, tmp_path, name, data: bytes, fmt):
    """A hardware dir holding a correct ``x`` and ``name`` dumped as ``data``."""
    hw = tmp_path / "hw"
    (hw / "tensors").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(case / "golden" / "tensors" / "x.npy", hw / "tensors" / "x.npy")
    (hw / "tensors" / f"{name}.{fmt}").write_bytes(data)
    return hw


def golden_bytes(case, name, fmt):
    return (case / "golden" / "tensors" / f"{name}.{fmt}").read_bytes()


def assert_bad_dump(report, name, *fragments):
    """Exit 2; ``name`` is a bad dump (never a match) whose message holds every fragment."""
    assert report.exit_code == 2 and report.verdict == "BAD INPUT"
    (t,) = [t for t in report.tensors if t.name == name]
    assert t.status == BAD_DUMP and t.comparison is None
    node = next(n for n in report.nodes if any(x is t for x in n.tensors))
    assert node.status == BAD_DUMP and node.status != MATCH
    for fragment in fragments:
        assert fragment in t.error, t.error
    assert "BAD DUMP" in report.to_text() and "result: BAD INPUT (exit 2)" in report.to_text()
    return t


# --- hardware dumps that cannot be decoded -----------------------------------------------------

def cut(data: bytes, count: int) -> bytes:
    return data[:-count]


def edit_line(data: bytes, index: int, change) -> bytes:
    lines = data.splitlines()
    lines[index] = change(lines[index])
    return b"\n".join(lines) + b"\n"


def npy_of(array) -> bytes:
    import io
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


BAD_DUMPS = {
    "truncated hex": ("hex", lambda d: cut(d, 5), ["y.hex", "15 words, expected 16"]),
    "truncated mem": ("mem", lambda d: cut(d, 5), ["y.mem", "15 words, expected 16"]),
    "truncated bin": ("bin", lambda d: cut(d, 1), ["y.bin", "31 bytes, expected 32", "truncated"]),
    "padded bin": ("bin", lambda d: d + b"\0\0", ["y.bin", "34 bytes, expected 32", "too long"]),
    "truncated npy": ("npy", lambda d: cut(d, 2), ["y.npy", "truncated or padded"]),
    "empty hex": ("hex", lambda d: b"", ["y.hex", "0 words, expected 16"]),
    "empty bin": ("bin", lambda d: b"", ["y.bin", "0 bytes, expected 32"]),
    "empty npy": ("npy", lambda d: b"", ["y.npy", "not a .npy file"]),
    "wrong-width hex": ("hex", lambda d: edit_line(d, 2, lambda line: b"0" + line),
                        ["y.hex", "line 3:", "is not 4 hex digits"]),
    "int8 width for int16": ("hex", lambda d: b"".join(line[2:] + b"\n" for line in d.splitlines()),
                             ["y.hex", "line 1:", "is not 4 hex digits"]),
    "non-hex text": ("hex", lambda d: d.replace(b"\n", b"\nzz!?\n", 1)[:-7],
                     ["y.hex", "line 2:", "'zz!?'"]),
    "binary garbage in hex": ("hex", lambda d: b"\x93\xff\x00garbage", ["y.hex", "line 1: byte 0 (0x93) is not ASCII"]),
    "garbage npy": ("npy", lambda d: os.urandom(64).replace(b"\x93", b"\x00"), ["y.npy", "not a .npy file"]),
    "wrong-dtype npy": ("npy", lambda d: npy_of(np.zeros((2, 8), np.int32)), ["y.npy", "dtype <i4 (int32)", "<i2"]),
    "float npy": ("npy", lambda d: npy_of(np.zeros((2, 8), np.float32)), ["y.npy", "'<f4'", "not a little-endian"]),
    "wrong-shape npy": ("npy", lambda d: npy_of(np.zeros((8, 2, 1), np.int16)), ["y.npy", "shape [8, 2, 1]"]),
    "pickled npy": ("npy", lambda d: npy_of(np.array([{"a": 1}] * 16, dtype=object).reshape(2, 8)),
                    ["y.npy", "object dtype", "pickle"]),
    "a pickle": ("npy", lambda d: pickle.dumps(np.zeros((2, 8), np.int16)), ["y.npy", "a pickle"]),
}


@pytest.mark.parametrize("defect", sorted(BAD_DUMPS))
def test_undecodable_dump_is_bad_input(case, tmp_path, defect):
    fmt, damage, fragments = BAD_DUMPS[defect]
    data = damage(golden_bytes(case, "y", fmt))
    hw = hw_with(case, tmp_path, "y", data, fmt)
    report = verify(case / "golden", hw)
    t = assert_bad_dump(report, "y", *fragments)
    assert t.error.startswith(str(hw / "tensors" / f"y.{fmt}")) and t.file == f"tensors/y.{fmt}"
    assert [x.status for x in report.tensors if x.name == "x"] == [MATCH]     # the rest is still compared


def test_value_outside_the_type_in_a_wider_container(case, tmp_path):
    big = np.zeros((2, 8), np.int32)
    big[1, 2] = (1 << 21) + 5                                # int22 holds [-2**21, 2**21 - 1]
    b = GraphBuilder("wide")
    x = b.input("x", "int32", [2, 8])
    b.output(b.add("Requantize", [x], "int22", name="y", attributes={"multiplier": 1 << 30, "shift": 30}))
    graph = b.build()
    write_golden(graph, {"x": FEED}, tmp_path / "golden")
    hw = tmp_path / "hw"
    hw.mkdir()
    np.save(hw / "y.npy", big)
    report = verify(tmp_path / "golden", hw, bundle=graph)
    assert_bad_dump(report, "y", "y.npy", "element [1, 2] = 2097157 is outside int22")
    (hw / "y.npy").unlink()
    (hw / "y.bin").write_bytes(big.astype("<i4").tobytes())
    assert_bad_dump(verify(tmp_path / "golden", hw, bundle=graph), "y", "y.bin", "element 10 = 2097157")


def test_unreadable_dump(case, tmp_path):
    hw = hw_with(case, tmp_path, "z", b"", "hex")
    (hw / "tensors" / "z.hex").unlink()
    (hw / "tensors" / "z.hex").mkdir()                      # a directory where a file should be
    assert_bad_dump(verify(case / "golden", hw), "z", "z.hex", "is not a regular file")


def test_bad_input_outranks_a_mismatch(case, tmp_path):
    hw = hw_with(case, tmp_path, "z", b"7f\n", "hex")
    np.save(hw / "tensors" / "y.npy", np.ones((2, 8), np.int16))
    report = verify(case / "golden", hw)
    assert [t.status for t in report.tensors] == [MATCH, MISMATCH, BAD_DUMP]
    assert report.exit_code == 2 and report.first_divergent_node == "y"


@pytest.mark.parametrize("defect", ["truncated bin", "pickled npy", "binary garbage in hex"])
def test_cli_bad_dump_exit_2_without_traceback(case, tmp_path, capsys, defect):
    fmt, damage, fragments = BAD_DUMPS[defect]
    hw = hw_with(case, tmp_path, "y", damage(golden_bytes(case, "y", fmt)), fmt)
    assert cli_main(["verify", str(case / "golden"), str(hw)]) == 2
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err and fragments[-1] in out.out


# --- the golden set, its bundle, the options ------------------------------------------------------

def expect_input_error(golden_dir, hw_dir, *fragments, capsys=None, **options):
    with pytest.raises(VerifyInputError) as info:
        verify(golden_dir, hw_dir, **options)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return str(info.value)


def test_tampered_golden_file(golden, tmp_path, capsys):
    y = np.load(golden / "tensors" / "y.npy")
    y[0, 0] += 1
    np.save(golden / "tensors" / "y.npy", y)
    hw = tmp_path / "hw"
    hw.mkdir()
    np.save(hw / "y.npy", y)                                 # the hardware "agrees" with the tampered file
    expect_input_error(golden, hw, str(golden / "tensors" / "y.npy"), "sha256", "tensors['y'].sha256",
                       "the golden value was modified")
    assert cli_main(["verify", str(golden), str(hw)]) == 2
    err = capsys.readouterr().err
    assert "golden value was modified" in err and "Traceback" not in err


def test_unreadable_golden_file(golden, tmp_path):
    (golden / "tensors" / "y.npy").write_bytes(b"\x93NUMPY\x01\x00")
    hw = tmp_path / "hw"
    hw.mkdir()
    np.save(hw / "y.npy", np.zeros((2, 8), np.int16))
    expect_input_error(golden, hw, "golden file", str(golden / "tensors" / "y.npy"), "truncated .npy header")


def test_wrong_bundle(case, tmp_path, capsys):
    other = tmp_path / "other.zip"
    save(tiny_graph(multiplier=(1 << 30) + 1), other)
    hw = hw_with(case, tmp_path, "y", golden_bytes(case, "y", "npy"), "npy")
    expect_input_error(case / "golden", hw, str(other), "graph sha256", "not the bundle of this golden set",
                       bundle=other)
    expect_input_error(case / "golden", hw, "graph sha256", bundle=tiny_graph(multiplier=3))
    assert verify(case / "golden", hw, bundle=case / "tiny.zip", only="y").exit_code == 0
    assert cli_main(["verify", str(case / "golden"), str(hw), "--bundle", str(other)]) == 2
    assert "not the bundle of this golden set" in capsys.readouterr().err


def test_missing_or_broken_bundle(golden, tmp_path):
    hw = hw_with(golden.parent, tmp_path, "y", (golden / "tensors" / "y.npy").read_bytes(), "npy")
    os.unlink(golden.parent / "tiny.zip")
    expect_input_error(golden, hw, "tiny.zip", "cannot be loaded", "no such file")
    (golden.parent / "tiny.zip").write_bytes(b"PK\x03\x04 not really")
    expect_input_error(golden, hw, "tiny.zip", "cannot be loaded")


def edit_manifest(golden, change):
    path = golden / "manifest.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


MANIFEST_DEFECTS = {
    "format": (lambda m: m.update(format="something-else"), "format: must be 'intref-golden'"),
    "version": (lambda m: m.update(format_version=2), "format_version: must be 1"),
    "no tensors": (lambda m: m.pop("tensors"), "tensors: missing"),
    "graph sha": (lambda m: m["graph"].update(sha256="abc"), "graph.sha256: must be 64 lowercase hex digits"),
    "overflow": (lambda m: m.update(overflow="explode"), "overflow: 'explode' is not one of"),
    "type": (lambda m: m["tensors"]["y"].update(type="int99"), "tensors['y'].type: "),
    "bits": (lambda m: m["tensors"]["y"].update(bits=8), "tensors['y'].bits: 8 contradicts type int16"),
    "shape": (lambda m: m["tensors"]["y"].update(shape=[2, "8"]), "tensors['y'].shape: must be a list of ints"),
    "escaping file": (lambda m: m["tensors"]["y"]["files"].update(npy="../../etc/y.npy"),
                      "tensors['y'].files.npy: '../../etc/y.npy' is not a relative path"),
    "role": (lambda m: m["tensors"]["y"].update(role="weights"), "tensors['y'].role: 'weights' is not one of"),
    "layout": (lambda m: m["layout"].update(lanes=0), "layout.lanes: must be an int from 1 to 4096, got 0"),
    "absurd lanes": (lambda m: m["tensors"]["y"]["layout"].update(lanes=10 ** 12),
                     "tensors['y'].layout.lanes: must be an int from 1 to 4096, got 1000000000000"),
    "node op": (lambda m: m["nodes"][0].update(op="MatMul"), "nodes: node 'y' is not the graph's node"),
    "node twice": (lambda m: m["nodes"].append(m["nodes"][0]), "nodes[2].name: node 'y' is listed twice"),
    "type vs graph": (lambda m: m["tensors"]["y"].update(type="int32", bits=32),
                      "tensors['y'].type: type int32 is not the graph's type"),
    "no bundle": (lambda m: m.update(bundle=None), "bundle: null: the golden set names no bundle"),
}


@pytest.mark.parametrize("defect", sorted(MANIFEST_DEFECTS))
def test_manifest_defect_names_the_field(golden, tmp_path, defect):
    change, fragment = MANIFEST_DEFECTS[defect]
    edit_manifest(golden, change)
    hw = tmp_path / "hw"
    hw.mkdir()
    np.save(hw / "y.npy", np.zeros((2, 8), np.int16))
    message = expect_input_error(golden, hw, fragment)
    assert str(golden / "manifest.json") in message or "tiny.zip" in message


def test_manifest_missing_or_not_json(golden, tmp_path):
    hw = tmp_path / "hw"
    hw.mkdir()
    (golden / "manifest.json").write_text('{"format": "intref-golden", "format": 1}')
    expect_input_error(golden, hw, "manifest.json", "duplicate key 'format'")
    (golden / "manifest.json").write_bytes(b"\xff\xfe")
    expect_input_error(golden, hw, "manifest.json", "not valid JSON")
    (golden / "manifest.json").unlink()
    expect_input_error(golden, hw, "manifest.json", "cannot be read")
    expect_input_error(tmp_path / "nowhere", hw, "nowhere", "is not a directory")


def test_hardware_dir_missing_or_empty(case, tmp_path, capsys):
    expect_input_error(case / "golden", tmp_path / "nowhere", "nowhere", "is not a directory")
    (tmp_path / "hw").mkdir()
    (tmp_path / "hw" / "Y.NPY.npy").write_bytes(b"")
    expect_input_error(case / "golden", tmp_path / "hw", "holds no dump of any tensor", "tensors/x.npy or x.npy",
                       "files that match no tensor: Y.NPY.npy")
    assert cli_main(["verify", str(case / "golden"), str(tmp_path / "hw")]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("options, fragment", [
    (dict(tolerance=-1), "tolerance must be an integer >= 0"),
    (dict(tolerance=1.5), "tolerance must be an integer >= 0"),
    (dict(tolerance=True), "tolerance must be an integer >= 0"),
    (dict(formats=["npy", "txt"]), "formats ['npy', 'txt']: choose from npy, bin, hex, mem"),
    (dict(formats=[]), "formats []"),
])
def test_bad_options(case, tmp_path, options, fragment):
    hw = hw_with(case, tmp_path, "y", golden_bytes(case, "y", "npy"), "npy")
    expect_input_error(case / "golden", hw, fragment, **options)
