"""intref.golden and ``intref golden``: the manifest names every tensor with its role, producer,
consumers, type, shape and a sha256 of its canonical bytes; every file decodes back to the run's
values in every layout (lanes and lane order, tiles, int4 packing, checked by hand on tiny
tensors); --nodes, --constants include/exclude/only; bad options are refused with a named
GoldenError; writing is deterministic; the CLI exits 0 or 2, never with a traceback."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import intref
from intref.build import GraphBuilder
from intref.bundle import graph_sha256, save
from intref.cli import main
from intref.golden import GoldenError, write_golden
from intref.inttypes import IntType
from intref.quant import dyadic
from intref.testing import assert_identical
from intref.golden.vectors import Layout, decode_bin, decode_text

ROOT = Path(__file__).resolve().parents[2]
X = np.array([[-128, -1, 0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11, 12, 127]], dtype=np.int8)
W8 = np.arange(-16, 16, dtype=np.int8).reshape(4, 8) * 3
W4 = np.array([[1, -8, 7, 0, 2, -3, 4, -5]] * 4, dtype=np.int8)
BIAS = np.array([100, -100, 0, 7], dtype=np.int32)


def tiny_graph(int4: bool = False):
    """x int8 [batch, 8] -> Linear (int8 or int4-packed [4, 8] weight, int32 bias) -> Requantize int8."""
    b = GraphBuilder("tiny", symbols={"batch": 4})
    x = b.input("x", "int8", ["batch", 8])
    weight = (b.tensor("lin.weight", W4, "int4", layout="int4_packed") if int4
              else b.tensor("lin.weight", W8, "int8"))
    acc = b.add("Linear", [x, weight, b.tensor("lin.bias", BIAS, "int32")], "int32", name="lin")
    m, s = dyadic(1 / 16)
    b.output(b.add("Requantize", [acc], "int8", name="y", attributes={"multiplier": m, "shift": s}))
    return b.build()


@pytest.fixture(scope="module")
def graph():
    return tiny_graph()


def expected_values(graph, feeds):
    values = {name: t.data for name, t in graph.tensors.items()}
    values.update(intref.run(graph, feeds, trace=True))
    return values


def files_in(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_manifest_fields_roles_producers_and_consumers(graph, tmp_path):
    manifest = write_golden(graph, {"x": X}, tmp_path / "case", bundle_path="../tiny.zip")
    assert json.loads((tmp_path / "case" / "manifest.json").read_text()) == manifest
    assert (manifest["format"], manifest["format_version"], manifest["intref_version"]) == \
        ("intref-golden", 1, intref.__version__)
    assert manifest["graph"] == {"name": "tiny", "sha256": graph_sha256(graph)}
    assert (manifest["bundle"], manifest["overflow"], manifest["constants"]) == ("../tiny.zip", "check", "include")
    assert manifest["formats"] == ["npy", "hex", "mem", "bin"] and manifest["layout"] == Layout().to_json()
    assert [(n["name"], n["op"], n["inputs"], n["outputs"]) for n in manifest["nodes"]] == [
        ("lin", "Linear", ["x", "lin.weight", "lin.bias"], ["lin"]), ("y", "Requantize", ["lin"], ["y"])]
    assert manifest["nodes"][1]["attributes"] == dict(zip(("multiplier", "shift"), dyadic(1 / 16)))
    roles = {name: (e["role"], e["producer"], e["consumers"]) for name, e in manifest["tensors"].items()}
    assert roles == {"x": ("graph_input", None, ["lin"]), "lin.weight": ("constant", None, ["lin"]),
                     "lin.bias": ("constant", None, ["lin"]), "lin": ("intermediate", "lin", ["y"]),
                     "y": ("graph_output", "y", [])}
    entry = manifest["tensors"]["lin"]
    assert (entry["type"], entry["bits"], entry["signed"], entry["shape"]) == ("int32", 32, True, [2, 4])
    feed_file = tmp_path / "case" / "feeds" / "x.npy"
    assert manifest["feeds"] == {"x": {"file": "feeds/x.npy", "sha256": hashlib.sha256(feed_file.read_bytes()).hexdigest()}}
    listed = {"manifest.json", "feeds/x.npy"} | {p for e in manifest["tensors"].values() for p in e["files"].values()}
    assert set(files_in(tmp_path / "case")) == listed and len(listed) == 2 + 5 * 4


def test_sha256_is_over_canonical_bytes_whatever_the_formats_and_layout(graph, tmp_path):
    plain = write_golden(graph, {"x": X}, tmp_path / "a", formats=["npy"])
    packed = write_golden(graph, {"x": X}, tmp_path / "b", formats=["hex", "bin"],
                          layout=Layout(lanes=16, lane_order="msb_first", tile=(2, 4)))
    values = expected_values(graph, {"x": X})
    for name, entry in plain["tensors"].items():
        storage = IntType.parse(entry["type"]).storage.newbyteorder("<")
        canonical = np.ascontiguousarray(values[name], dtype=storage).tobytes()
        assert entry["sha256"] == packed["tensors"][name]["sha256"] == hashlib.sha256(canonical).hexdigest(), name


@pytest.mark.parametrize("layout", [Layout(), Layout(lanes=16), Layout(lanes=3, lane_order="msb_first"),
                                    Layout(lanes=4, tile=(2, 4))], ids=["plain", "lanes16", "lanes3-msb", "tiles"])
def test_every_file_decodes_back_to_the_run(graph, tmp_path, layout):
    manifest = write_golden(graph, {"x": X}, tmp_path / "case", layout=layout)
    values = expected_values(graph, {"x": X})
    for name, entry in manifest["tensors"].items():
        t, shape, own = IntType.parse(entry["type"]), tuple(entry["shape"]), Layout.from_json(entry["layout"])
        path = {fmt: tmp_path / "case" / file for fmt, file in entry["files"].items()}
        assert_identical(np.load(path["npy"], allow_pickle=False), values[name], context=f"{name}.npy")
        for fmt in ("hex", "mem"):
            decoded = decode_text(path[fmt].read_text(), t, shape, own, source=str(path[fmt]))
            assert_identical(decoded, values[name], context=f"{name}.{fmt}")
        assert_identical(decode_bin(path["bin"].read_bytes(), t, shape, own), values[name], context=f"{name}.bin")
    assert (tmp_path / "case" / "tensors" / "x.mem").read_text().startswith("// x: int8 shape [2, 8]")


def test_lanes_put_16_int8_on_a_line_lane_0_rightmost_or_leftmost(graph, tmp_path):
    write_golden(graph, {"x": X}, tmp_path / "lsb", formats=["hex"], layout=Layout(lanes=16))
    write_golden(graph, {"x": X}, tmp_path / "msb", formats=["hex"], layout=Layout(lanes=16, lane_order="msb_first"))
    assert (tmp_path / "lsb" / "tensors" / "x.hex").read_text() == "7f0c0b0a09080706050403020100ff80\n"
    assert (tmp_path / "msb" / "tensors" / "x.hex").read_text() == "80ff000102030405060708090a0b0c7f\n"
    lin = (tmp_path / "lsb" / "tensors" / "lin.hex").read_text()   # 8 int32 in a 16-lane word
    assert len(lin) == 16 * 8 + 1 and lin.startswith("0" * 64)     # the 8 padding lanes are the high ones
    bias = (tmp_path / "msb" / "tensors" / "lin.bias.hex").read_text()
    assert bias == "00000064" + "ffffff9c" + "00000000" + "00000007" + "0" * 96 + "\n"


def test_tiles_order_the_last_two_axes_where_the_tile_divides_them(graph, tmp_path):
    manifest = write_golden(graph, {"x": X}, tmp_path / "case", formats=["hex", "bin"], layout=Layout(tile=(2, 4)))
    hex_x = (tmp_path / "case" / "tensors" / "x.hex").read_text().split()
    assert hex_x == ["80", "ff", "00", "01", "06", "07", "08", "09", "02", "03", "04", "05", "0a", "0b", "0c", "7f"]
    assert (tmp_path / "case" / "tensors" / "x.bin").read_bytes() == bytes(int(h, 16) for h in hex_x)
    assert manifest["tensors"]["x"]["layout"]["tile"] == [2, 4]
    assert manifest["tensors"]["lin.bias"]["layout"]["tile"] is None      # 1-D: row-major
    assert manifest["layout"]["tile"] == [2, 4]
    hex_bias = (tmp_path / "case" / "tensors" / "lin.bias.hex").read_text().split()
    assert hex_bias == ["00000064", "ffffff9c", "00000000", "00000007"]


def test_int4_packing_puts_two_int4_weights_in_a_byte_low_nibble_first(tmp_path):
    graph = tiny_graph(int4=True)
    manifest = write_golden(graph, {"x": X}, tmp_path / "case", formats=["hex", "bin"], layout=Layout(int4_packed=True))
    weight = manifest["tensors"]["lin.weight"]
    assert (weight["type"], weight["layout"]["int4_packed"]) == ("int4", True)
    packed = (tmp_path / "case" / "tensors" / "lin.weight.bin").read_bytes()
    assert len(packed) == 16 and packed[:4] == bytes([0x81, 0x07, 0xD2, 0xB4])   # 1,-8 | 7,0 | 2,-3 | 4,-5
    assert (tmp_path / "case" / "tensors" / "lin.weight.hex").read_text().split()[:4] == ["1", "8", "7", "0"]
    assert_identical(decode_bin(packed, IntType(4), (4, 8), Layout(int4_packed=True)), W4)
    assert manifest["tensors"]["x"]["layout"]["int4_packed"] is False              # int8: one byte each
    assert (tmp_path / "case" / "tensors" / "x.bin").read_bytes() == X.tobytes()


def test_nodes_glob_selects_the_nodes_and_their_tensors(graph, tmp_path):
    manifest = write_golden(graph, {"x": X}, tmp_path / "case", formats=["npy"], nodes=["l?n*"])
    assert [n["name"] for n in manifest["nodes"]] == ["lin"]
    assert sorted(manifest["tensors"]) == ["lin", "lin.bias", "lin.weight", "x"]
    assert manifest["tensors"]["lin"]["consumers"] == ["y"]                   # consumers among all nodes
    with pytest.raises(GoldenError, match="'nope\\*' matches no node"):
        write_golden(graph, {"x": X}, tmp_path / "other", nodes=["y", "nope*"])
    assert not (tmp_path / "other").exists()


def test_constants_exclude_lists_them_without_files(graph, tmp_path):
    full = write_golden(graph, {"x": X}, tmp_path / "full", formats=["npy", "hex"])
    manifest = write_golden(graph, {"x": X}, tmp_path / "case", formats=["npy", "hex"], constants="exclude")
    assert manifest["constants"] == "exclude"
    for name in ("lin.weight", "lin.bias"):
        entry = manifest["tensors"][name]
        assert entry["role"] == "constant" and entry["files"] == {}
        assert {k: v for k, v in entry.items() if k != "files"} == \
            {k: v for k, v in full["tensors"][name].items() if k != "files"}
        assert not list((tmp_path / "case").rglob(f"{name}.*"))
    assert manifest["tensors"]["lin"]["files"] == {"npy": "tensors/lin.npy", "hex": "tensors/lin.hex"}
    assert set(files_in(tmp_path / "case")) == {"manifest.json", "feeds/x.npy"} | {
        f"tensors/{n}.{f}" for n in ("x", "lin", "y") for f in ("npy", "hex")}


def test_constants_only_writes_the_stored_tensors_without_a_run(graph, tmp_path):
    full = write_golden(graph, {"x": X}, tmp_path / "full", formats=["npy", "bin"])
    manifest = write_golden(graph, None, tmp_path / "weights", formats=["npy", "bin"], constants="only")
    assert (manifest["constants"], manifest["feeds"]) == ("only", {})
    assert sorted(manifest["tensors"]) == ["lin.bias", "lin.weight"]
    assert [n["name"] for n in manifest["nodes"]] == ["lin", "y"]             # attributes hardware also loads
    for name, entry in manifest["tensors"].items():
        assert entry == full["tensors"][name]                                 # same files, same sha256
    assert set(files_in(tmp_path / "weights")) == {"manifest.json"} | {
        f"tensors/lin.{p}.{f}" for p in ("weight", "bias") for f in ("npy", "bin")}
    assert_identical(np.load(tmp_path / "weights" / "tensors" / "lin.weight.npy"), W8)
    with pytest.raises(GoldenError, match="give no feeds"):
        write_golden(graph, {"x": X}, tmp_path / "refused", constants="only")


@pytest.mark.parametrize("options, message", [
    ({"formats": ["npy", "vhdl"]}, "choose from npy, hex, mem, bin"),
    ({"formats": []}, "choose from"),
    ({"formats": ["hex", "hex"]}, "given twice"),
    ({"constants": "some"}, "constants='some'"),
    ({"overflow": "ignore"}, "overflow='ignore'"),
    ({"layout": Layout(lanes=0)}, "lanes=0"),
    ({"layout": Layout(lane_order="middle")}, "lane_order='middle'"),
    ({"layout": Layout(tile=(0, 4))}, "tile="),
    ({"layout": Layout(tile=(2, 4, 1))}, "tile="),
    ({"metadata": {"seed": np.int64(3)}}, "metadata is not plain JSON"),
])
def test_bad_options_are_refused_by_name(graph, tmp_path, options, message):
    with pytest.raises(GoldenError, match=message):
        write_golden(graph, {"x": X}, tmp_path / "case", **options)
    assert not (tmp_path / "case").exists() or not any((tmp_path / "case").rglob("*"))


def test_a_non_empty_output_directory_is_refused_and_left_alone(graph, tmp_path):
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "keep.txt").write_text("mine")
    with pytest.raises(GoldenError, match="must be new or empty"):
        write_golden(graph, {"x": X}, tmp_path / "case")
    assert files_in(tmp_path / "case") == {"keep.txt": b"mine"}
    (tmp_path / "file").write_text("x")
    with pytest.raises(GoldenError, match="must be new or empty"):
        write_golden(graph, {"x": X}, tmp_path / "file")


def test_writing_is_deterministic(graph, tmp_path):
    for out in ("a", "b"):
        write_golden(graph, {"x": X}, tmp_path / out, layout=Layout(lanes=4, tile=(2, 4)), metadata={"case": "t"})
    first, second = files_in(tmp_path / "a"), files_in(tmp_path / "b")
    assert first == second and len(first) == 22


@pytest.fixture
def bundle_and_feed(graph, tmp_path):
    save(graph, tmp_path / "tiny.zip")
    np.save(tmp_path / "x.npy", X)
    return str(tmp_path / "tiny.zip"), f"x={tmp_path / 'x.npy'}"


def test_cli_writes_a_golden_set(bundle_and_feed, tmp_path, capsys):
    bundle, feed = bundle_and_feed
    out = tmp_path / "sets" / "case"
    assert main(["golden", bundle, "--feed", feed, "--out", str(out), "--format", "npy,hex", "--lanes", "16",
                 "--lane-order", "msb_first", "--constants", "exclude"]) == 0
    assert "wrote 3 of 5 tensors of 2 nodes (npy, hex; constants: exclude)" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["bundle"] == "../../tiny.zip" and manifest["layout"]["lanes"] == 16
    assert (out / "tensors" / "x.hex").read_text() == "80ff000102030405060708090a0b0c7f\n"
    assert main(["golden", bundle, "--out", str(tmp_path / "weights"), "--constants", "only", "--format", "npy"]) == 0
    assert sorted(json.loads((tmp_path / "weights" / "manifest.json").read_text())["tensors"]) == ["lin.bias", "lin.weight"]


@pytest.mark.parametrize("extra, message", [
    (["--format", "npy,vhdl"], "formats ['npy', 'vhdl']: choose from"),
    (["--nodes", "nope*"], "--nodes 'nope*' matches no node"),
    (["--tile", "2by4"], "--tile '2by4': expected MxN"),
    (["--lanes", "0"], "lanes=0"),
    (["--constants", "only"], "give no feeds"),
])
def test_cli_bad_options_exit_2_with_a_named_error(bundle_and_feed, tmp_path, capsys, extra, message):
    bundle, feed = bundle_and_feed
    assert main(["golden", bundle, "--feed", feed, "--out", str(tmp_path / "case")] + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("intref golden: error: ") and message in err
    assert not (tmp_path / "case").exists()


def test_cli_refuses_a_non_empty_directory_a_missing_feed_and_a_missing_bundle(bundle_and_feed, tmp_path, capsys):
    bundle, feed = bundle_and_feed
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    assert main(["golden", bundle, "--feed", feed, "--out", str(tmp_path / "full")]) == 2
    assert "must be new or empty" in capsys.readouterr().err
    assert main(["golden", bundle, "--out", str(tmp_path / "nofeed")]) == 2
    assert "missing ['x']" in capsys.readouterr().err
    assert main(["golden", str(tmp_path / "absent.zip"), "--feed", feed, "--out", str(tmp_path / "c")]) == 2
    assert "absent.zip" in capsys.readouterr().err


def test_cli_process_exits_2_without_a_traceback(bundle_and_feed, tmp_path):
    bundle, feed = bundle_and_feed
    result = subprocess.run([sys.executable, "-m", "intref", "golden", bundle, "--feed", feed, "--out",
                             str(tmp_path / "case"), "--format", "verilog"], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "intref golden: error: formats ['verilog']" in result.stderr
