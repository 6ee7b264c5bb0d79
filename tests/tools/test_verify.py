"""intref verify: an unmodified dump matches in every format; each injected hardware fault is
reported exactly (node, first index, values, hint, exit 1); --isolate tells the one locally wrong
node from the ones its error propagated to; --tolerance; JUnit XML; the CLI's exit codes."""

import os
import pathlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from intref import GraphBuilder, load
from intref.cli import main as cli_main
from intref.golden import npy_bytes, write_golden
from intref.interpreter import fit
from intref.inttypes import IntType
from intref.kernels import requantize
from intref.models.demo import token_batch
from intref.golden.vectors import Layout, encode_bin, encode_text
from intref.verify import verify
from intref.verify.report import LOCALLY_CORRECT, MATCH, MISMATCH, NOT_DUMPED

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEMO = ROOT / "golden" / "demo-ibert.zip"
FORMATS = ("npy", "bin", "hex", "mem")
# 4*k + 2 are exact ties of x * 2**30 / 2**32 = x / 4; 1000 and -1000 saturate int8
TIE_FEED = np.array([[1, 2, 3, 6, -2, -6, 10, -10], [5, 7, 14, -14, 1000, -1000, 0, 4]], dtype=np.int32)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo bundle's golden set for two random token sequences: (golden dir, manifest, graph)."""
    graph = load(DEMO)
    ids, mask = token_batch(np.random.default_rng(7), 2, 8)
    out = tmp_path_factory.mktemp("demo") / "golden"
    manifest = write_golden(graph, {"input_ids": ids, "attention_mask": mask}, out,
                            bundle_path=os.path.relpath(DEMO, out))
    return out, manifest, graph


@pytest.fixture(scope="module")
def ties(tmp_path_factory):
    """One Requantize by 2**30 / 2**32 (= x / 4), half_even, saturate: exact ties and saturation."""
    b = GraphBuilder("ties")
    x = b.input("x", "int32", [2, 8])
    b.output(b.add("Requantize", [x], "int8", name="y", attributes={"multiplier": 1 << 30, "shift": 32}))
    graph = b.build()
    out = tmp_path_factory.mktemp("ties") / "golden"
    return out, write_golden(graph, {"x": TIE_FEED}, out), graph


def golden_value(case, name):
    golden_dir, manifest, _ = case
    return np.load(golden_dir / manifest["tensors"][name]["files"]["npy"], allow_pickle=False)


def put(case, hw, name, array, fmt="npy", flat=False):
    """Write ``array`` as the hardware's dump of tensor ``name`` in format ``fmt``."""
    entry = case[1]["tensors"][name]
    t, layout = IntType.parse(entry["type"]), Layout.from_json(entry.get("layout", case[1]["layout"]))
    rel = entry["files"]["npy"][:-len(".npy")] + "." + fmt
    path = hw / (os.path.basename(rel) if flat else rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"npy": lambda: npy_bytes(array, t), "bin": lambda: encode_bin(array, t, layout),
            "hex": lambda: encode_text(array, t, layout).encode(), "mem": lambda: encode_text(array, t, layout).encode()}
    path.write_bytes(data[fmt]())
    return path


def copy_golden(case, hw, names, fmt="npy"):
    golden_dir, manifest, _ = case
    for name in names:
        rel = manifest["tensors"][name]["files"][fmt]
        (hw / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(golden_dir / rel, hw / rel)


def only_mismatch(report):
    """The one mismatching tensor of the report (asserting there is exactly one)."""
    bad = [t for t in report.tensors if t.status == MISMATCH]
    assert len(bad) == 1, [t.name for t in bad]
    return bad[0]


# --- unmodified data ----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_unmodified_dump_matches_in_every_format(demo, tmp_path, fmt):
    names = list(demo[1]["tensors"])
    copy_golden(demo, tmp_path, names, fmt)
    report = verify(demo[0], tmp_path, formats=[fmt])
    assert report.exit_code == 0
    assert report.counts["compared"] == len(names) and report.counts[MISMATCH] == 0
    assert report.first_divergent_node is None
    assert [n.name for n in report.nodes] == [n["name"] for n in demo[1]["nodes"]]
    assert all(n.status == MATCH for n in report.nodes)
    assert {t.file.rsplit(".", 1)[1] for t in report.tensors} == {fmt}
    assert "result: MATCH (exit 0)" in report.to_text()


def test_lanes_and_tiles_are_read_per_tensor(tmp_path):
    ids, mask = token_batch(np.random.default_rng(1), 2, 8)
    golden = tmp_path / "golden"
    write_golden(load(DEMO), {"input_ids": ids, "attention_mask": mask}, golden, formats=("hex", "bin", "mem"),
                 layout=Layout(lanes=4, lane_order="msb_first", tile=(4, 8)), nodes=["layer0.q*"],
                 bundle_path=os.path.relpath(DEMO, golden))
    for fmt in ("hex", "bin", "mem"):
        report = verify(golden, golden, formats=[fmt])
        assert (report.exit_code, report.counts["compared"], report.counts[MISMATCH]) == (0, 6, 0)   # emb.out, weight, bias, 3 outputs


def test_golden_dir_verifies_against_itself(demo):
    report = verify(demo[0], demo[0])
    assert (report.exit_code, report.counts["compared"], report.unclaimed_files) == (0, len(demo[1]["tensors"]), ())


def test_a_flat_dump_and_a_partial_dump_are_found(demo, tmp_path):
    put(demo, tmp_path, "layer0.q", golden_value(demo, "layer0.q"), "hex", flat=True)
    report = verify(demo[0], tmp_path)
    (result,) = [t for t in report.tensors if t.status != NOT_DUMPED]
    assert (result.name, result.status, result.file) == ("layer0.q", MATCH, "layer0.q.hex")
    assert report.counts[NOT_DUMPED] == len(demo[1]["tensors"]) - 1 and report.exit_code == 0


def test_formats_restrict_and_order_the_search(demo, tmp_path):
    put(demo, tmp_path, "layer0.q", golden_value(demo, "layer0.q"), "hex")
    put(demo, tmp_path, "layer0.q", golden_value(demo, "layer0.q") + 1, "npy")
    assert verify(demo[0], tmp_path).exit_code == 1                      # npy first: the wrong one
    assert verify(demo[0], tmp_path, formats=["hex", "npy"]).exit_code == 0
    assert verify(demo[0], tmp_path, formats="hex").exit_code == 0


def test_a_file_that_matches_no_tensor_is_noted(demo, tmp_path):
    put(demo, tmp_path, "layer0.q", golden_value(demo, "layer0.q"))
    (tmp_path / "tensors" / "layer0_q_typo.hex").write_text("00\n")
    report = verify(demo[0], tmp_path)
    assert report.unclaimed_files == ("tensors/layer0_q_typo.hex",)
    assert "match no tensor of the manifest: tensors/layer0_q_typo.hex" in report.to_text()


# --- injected faults: right node, right index, right hint, exit 1 -------------------------------

def test_one_flipped_bit(demo, tmp_path):
    scores = golden_value(demo, "layer0.scores")
    bad = scores.copy()
    bad[0, 1, 2, 3] ^= np.int32(1 << 12)
    put(demo, tmp_path, "layer0.scores", bad)
    copy_golden(demo, tmp_path, ["layer0.q.heads", "layer0.probs"])      # neighbours match
    report = verify(demo[0], tmp_path)
    assert report.exit_code == 1 and report.first_divergent_node == "layer0.scores"
    t = only_mismatch(report)
    first = t.first
    assert first.index == (0, 1, 2, 3)
    assert (first.expected, first.got) == (int(scores[0, 1, 2, 3]), int(bad[0, 1, 2, 3]))
    assert first.differing_bits == 1 << 12
    assert first.expected_hex == f"0x{int(scores[0, 1, 2, 3]) & 0xFFFFFFFF:08x}"
    assert (t.mismatches, t.comparison.compared, t.max_abs_difference) == (1, scores.size, 4096)
    assert t.hint == "one flipped bit: element [0, 1, 2, 3] differs only in bit 12; every other element matches"
    text = report.to_text()
    assert "first divergent node: layer0.scores (MatMul)" in text
    assert "differing bits 0x00001000 (bit 12)" in text


def test_ties_rounded_half_up_where_the_graph_says_half_even(ties, tmp_path):
    hw = requantize(TIE_FEED, 1 << 30, 32, rounding="half_up", bits=8)
    put(ties, tmp_path, "y", hw)
    report = verify(ties[0], tmp_path, bundle=ties[2])
    t = only_mismatch(report)
    expected = golden_value(ties, "y")
    differ = np.argwhere(hw != expected)
    assert report.exit_code == 1 and report.first_divergent_node == "y"
    assert t.first.index == tuple(differ[0]) == (0, 1)                  # x = 2: 0.5 -> 0 (even), 1 (up)
    assert (t.first.expected, t.first.got) == (0, 1)
    assert t.mismatches == len(differ) == 4                          # 2, -6, 10, -14 (of 8 ties)
    assert t.hint.startswith("ties rounded half_up where the graph says half_even: re-running node 'y' with "
                             "rounding=half_up reproduces the dump exactly; every difference is ±1 at an exact tie")


def test_rounding_off_ties_is_not_called_a_tie(ties, tmp_path):
    put(ties, tmp_path, "y", requantize(TIE_FEED, 1 << 30, 32, rounding="floor", bits=8))
    t = only_mismatch(verify(ties[0], tmp_path, bundle=ties[2]))
    assert t.hint.startswith("rounding floor where the graph says half_even: re-running node 'y' with rounding=floor")


def test_wrap_instead_of_saturate(ties, tmp_path):
    put(ties, tmp_path, "y", requantize(TIE_FEED, 1 << 30, 32, bits=8, overflow="wrap"))
    report = verify(ties[0], tmp_path, bundle=ties[2])
    t = only_mismatch(report)
    assert t.first.index == (1, 4) and (t.first.expected, t.first.got) == (127, -6)     # 1000 / 4 = 250
    assert t.mismatches == 2
    assert t.hint == ("values wrapped (two's complement) where the graph says overflow=saturate: re-running node "
                      "'y' with overflow=wrap reproduces the dump exactly")


def test_byte_swapped_bin(demo, tmp_path):
    golden = golden_value(demo, "layer0.q.linear")
    path = tmp_path / "layer0.q.linear.bin"
    path.write_bytes(golden.astype(">i4").tobytes())
    t = only_mismatch(verify(demo[0], tmp_path))
    assert t.name == "layer0.q.linear" and t.file == "layer0.q.linear.bin" and t.first.index == (0, 0, 0)
    assert t.first.got == int(golden[0, 0, 0].byteswap())
    assert t.hint.startswith("byte order: the dump equals the golden with the bytes of every 4-byte word swapped")


@pytest.mark.parametrize("name, fmt", [("layer0.q", "hex"), ("layer0.scores", "npy"), ("layer0.q.linear", "bin")])
def test_transposed_tensor(demo, tmp_path, name, fmt):
    golden = golden_value(demo, name)
    transposed = np.ascontiguousarray(np.swapaxes(golden, -1, -2))
    if fmt == "npy" and transposed.shape != golden.shape:
        transposed = transposed.reshape(golden.shape)
    put(demo, tmp_path, name, transposed, fmt)
    report = verify(demo[0], tmp_path)
    t = only_mismatch(report)
    first = tuple(np.argwhere(golden != transposed.reshape(golden.shape))[0])
    assert report.first_divergent_node == name and t.first.index == first
    swapped = list(golden.shape[:-2]) + [golden.shape[-1], golden.shape[-2]]
    assert t.hint.startswith(f"transposed layout: read as {swapped} and transposed back, the dump equals the golden")


def test_transposed_npy_with_its_own_shape(demo, tmp_path):
    golden = golden_value(demo, "layer0.q")
    put(demo, tmp_path, "layer0.q", np.ascontiguousarray(np.swapaxes(golden, -1, -2)))
    t = only_mismatch(verify(demo[0], tmp_path))
    assert t.note.startswith("its shape [2, 64, 8] swaps the last two axes")
    assert t.hint.startswith("transposed layout")


def test_constant_offset(demo, tmp_path):
    put(demo, tmp_path, "layer0.k.linear", golden_value(demo, "layer0.k.linear") + np.int32(7))
    t = only_mismatch(verify(demo[0], tmp_path))
    assert t.name == "layer0.k.linear" and t.first.index == (0, 0, 0) and t.mismatches == t.comparison.compared
    assert t.hint == "constant offset: got - expected = +7 on every element (a zero point added or missed?)"


def test_narrow_datapath(demo, tmp_path):
    golden = golden_value(demo, "layer0.q.linear")
    put(demo, tmp_path, "layer0.q.linear", golden.astype(np.int16).astype(np.int32), "hex")
    t = only_mismatch(verify(demo[0], tmp_path))
    assert t.hint.startswith("narrow datapath: the dump equals the golden wrapped to int16")


def test_noise_has_no_simple_pattern(demo, tmp_path):
    golden = golden_value(demo, "layer0.q.linear")
    noisy = golden + np.random.default_rng(1).integers(-3, 4, golden.shape).astype(np.int32)
    put(demo, tmp_path, "layer0.q.linear", noisy)
    t = only_mismatch(verify(demo[0], tmp_path))
    differ = int(np.count_nonzero(noisy != golden))
    assert t.hint.startswith(f"no simple pattern: {differ} of {golden.size} elements differ")
    assert t.max_abs_difference == 3 and t.fraction == type(t.fraction)(differ, golden.size)


# --- isolation --------------------------------------------------------------------------------

def propagate(case, corrupt: str, change):
    """Every node output after corrupting ``corrupt`` and re-running everything downstream of it."""
    _, manifest, graph = case
    values = {name: golden_value(case, name) for name in manifest["tensors"]}
    values[corrupt] = change(values[corrupt].copy())
    changed = {corrupt}
    for step in graph.steps:
        if any(name in changed for name in step.node.inputs):
            results = step.prepared.run(*(values[name] for name in step.node.inputs))
            for info, array in zip(step.node.outputs, results):
                values[info.name] = fit(array, info.type, manifest["overflow"], where=info.name)
                changed.add(info.name)
    return values, changed


def test_isolate_finds_the_one_locally_wrong_node(demo, tmp_path):
    def corrupt(a):
        a[1, 3, 5] += 40000
        return a

    values, changed = propagate(demo, "layer0.q.linear", corrupt)
    for node in demo[1]["nodes"]:
        for name in node["outputs"]:
            put(demo, tmp_path, name, values[name])
    report = verify(demo[0], tmp_path, isolate=True)
    assert report.exit_code == 1
    assert report.first_divergent_node == "layer0.q.linear"
    assert report.locally_wrong == ("layer0.q.linear",)
    mismatching = [n for n in report.nodes if n.status == MISMATCH]
    assert len(mismatching) > 20                            # the error spread through both layers
    assert all(n.isolation.status == LOCALLY_CORRECT for n in mismatching[1:])
    wrong = mismatching[0].isolation
    assert wrong.tensor == "layer0.q.linear" and wrong.comparison.first.index == (1, 3, 5)
    assert "locally wrong nodes: layer0.q.linear" in report.to_text()
    plain = verify(demo[0], tmp_path)
    assert plain.locally_wrong == () and plain.first_divergent_node == "layer0.q.linear"


def test_isolate_blames_a_rounding_bug_on_its_own_node(ties, tmp_path):
    x = TIE_FEED.copy()
    x[0, 0] = 3                                              # a wrong input ...
    put(ties, tmp_path, "x", x)
    put(ties, tmp_path, "y", requantize(x, 1 << 30, 32, rounding="half_up", bits=8))   # ... and a wrong rounding
    report = verify(ties[0], tmp_path, bundle=ties[2], isolate=True)
    assert report.locally_wrong == ("y",)
    assert report.nodes[0].isolation.hint.startswith("ties rounded half_up where the graph says half_even")


def test_isolate_does_not_rerun_on_inputs_outside_the_analysed_range(demo, tmp_path):
    mask = golden_value(demo, "attention_mask").copy()
    mask[0, 0] = 5                                          # attention_mask is declared in [0, 1]
    put(demo, tmp_path, "attention_mask", mask)
    copy_golden(demo, tmp_path, ["attn_mask"])
    report = verify(demo[0], tmp_path, isolate=True)
    node = next(n for n in report.nodes if n.name == "attn_mask")
    assert node.isolation.status == "not isolated" and "holds 5 at [0, 0], outside the range [0, 1]" in \
        node.isolation.detail
    assert report.exit_code == 1 and report.first_divergent_node == "attn_mask"


# --- tolerance, JUnit, CLI ------------------------------------------------------------------------

def test_tolerance_accepts_differences_up_to_n(demo, tmp_path):
    golden = golden_value(demo, "layer0.q.linear")
    off = golden.copy()
    off[0, 0, :3] += np.array([1, -1, 2], dtype=np.int32)
    put(demo, tmp_path, "layer0.q.linear", off)
    strict, one, two = (verify(demo[0], tmp_path, tolerance=n) for n in (0, 1, 2))
    assert (strict.exit_code, one.exit_code, two.exit_code) == (1, 1, 0)
    assert only_mismatch(strict).mismatches == 3
    t = only_mismatch(one)
    assert t.mismatches == 1 and t.first.index == (0, 0, 2) and t.comparison.differing == 3
    assert "within ±2" in two.to_text() and "3 element(s) differ, all within the tolerance" in two.to_text()


def test_junit_has_one_testcase_per_node(demo, tmp_path):
    hw = tmp_path / "hw"
    bad = golden_value(demo, "layer0.scores").copy()
    bad[0, 1, 2, 3] ^= np.int32(1 << 12)
    put(demo, hw, "layer0.scores", bad)
    copy_golden(demo, hw, ["layer0.q", "layer0.probs"])
    (hw / "tensors" / "layer0.k.hex").write_text("zz\n")
    report = verify(demo[0], hw)
    report.to_junit(tmp_path / "verify.xml")
    root = ET.parse(tmp_path / "verify.xml").getroot()
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [n["name"] for n in demo[1]["nodes"]]
    assert suite.get("tests") == str(len(cases))
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    errored = {c.get("name"): c.find("error") for c in cases if c.find("error") is not None}
    assert list(failed) == ["layer0.scores"] and list(errored) == ["layer0.k"]
    assert "[0, 1, 2, 3]" in failed["layer0.scores"].get("message")
    assert "one flipped bit" in failed["layer0.scores"].get("message")
    assert errored["layer0.k"].get("message").endswith("tensors/layer0.k.hex: 1 words, expected 1024 for shape "
                                                      "[2, 8, 64] (1 per line)")
    skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
    assert len(skipped) == len(cases) - 4 and int(suite.get("skipped")) == len(skipped)
    assert (suite.get("failures"), suite.get("errors")) == ("1", "1")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "intref", "verify", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)


def test_cli_exit_codes(demo, tmp_path):
    ok, flipped, broken = tmp_path / "ok", tmp_path / "flipped", tmp_path / "broken"
    copy_golden(demo, ok, ["layer0.q", "layer0.scores"], "hex")
    bad = golden_value(demo, "layer0.scores").copy()
    bad[0, 0, 0, 0] ^= np.int32(1)
    put(demo, flipped, "layer0.scores", bad, "mem")
    copy_golden(demo, broken, ["layer0.q"], "hex")
    path = broken / "tensors" / "layer0.q.hex"
    path.write_bytes(path.read_bytes()[:-3])                   # truncated
    results = [run_cli(demo[0], hw, "--junit", tmp_path / f"{hw.name}.xml") for hw in (ok, flipped, broken)]
    assert [r.returncode for r in results] == [0, 1, 2]
    assert all("Traceback" not in r.stdout + r.stderr for r in results)
    assert "result: MATCH (exit 0)" in results[0].stdout
    assert "first divergent node: layer0.scores (MatMul)" in results[1].stdout
    assert "tensors/layer0.q.hex: 1023 words, expected 1024" in results[2].stdout and "BAD INPUT (exit 2)" in results[2].stdout
    assert all((tmp_path / f"{name}.xml").is_file() for name in ("ok", "flipped", "broken"))


def test_cli_options(demo, tmp_path, capsys):
    golden = golden_value(demo, "layer0.q.linear")
    put(demo, tmp_path, "layer0.q.linear", golden + np.int32(1), "bin")
    args = ["verify", str(demo[0]), str(tmp_path)]
    assert cli_main(args) == 1
    assert cli_main(args + ["--tolerance", "1"]) == 0
    assert cli_main(args + ["--format", "hex,npy"]) == 2                # nothing dumped in those formats
    assert cli_main(args + ["--isolate", "--bundle", str(DEMO)]) == 1
    assert cli_main(args + ["--tolerance", "-1"]) == 2
    err = capsys.readouterr().err
    assert "holds no dump of any tensor" in err and "tolerance must be an integer >= 0" in err


def test_constants_written_without_files_come_from_the_bundle(tmp_path):
    graph = load(DEMO)
    ids, mask = token_batch(np.random.default_rng(3), 1, 4)
    golden = tmp_path / "golden"
    manifest = write_golden(graph, {"input_ids": ids, "attention_mask": mask}, golden, nodes=["layer0.q*"],
                            constants="exclude", bundle_path=os.path.relpath(DEMO, golden))
    assert manifest["tensors"]["layer0.q.linear.weight"]["files"] == {}
    weight = graph.tensors["layer0.q.linear.weight"].data
    hw = tmp_path / "hw"
    hw.mkdir()
    np.save(hw / "layer0.q.linear.weight.npy", weight)
    report = verify(golden, hw)
    (t,) = [t for t in report.tensors if t.status != NOT_DUMPED]
    assert (t.name, t.relation, t.status, report.exit_code) == ("layer0.q.linear.weight", "input", MATCH, 0)
    bad = weight.copy()
    bad[3, 4] ^= np.int8(2)
    np.save(hw / "layer0.q.linear.weight.npy", bad)
    t = only_mismatch(verify(golden, hw))
    assert t.first.index == (3, 4) and t.hint.startswith("one flipped bit")


@pytest.mark.parametrize("delta", [1, -1])
def test_shift_off_by_one(ties, tmp_path, delta):
    put(ties, tmp_path, "y", requantize(TIE_FEED, 1 << 30, 32 + delta, bits=8))
    t = only_mismatch(verify(ties[0], tmp_path, bundle=ties[2]))
    assert t.hint == (f"shift off by {delta:+d}: re-running node 'y' with every shift {delta:+d} (shift={32 + delta}) "
                      f"reproduces the dump exactly (the hardware divides by 2**(shift{delta:+d}))")


def test_a_shift_off_by_two_is_not_called_off_by_one(ties, tmp_path):
    put(ties, tmp_path, "y", requantize(TIE_FEED, 1 << 30, 34, bits=8))
    assert not only_mismatch(verify(ties[0], tmp_path, bundle=ties[2])).hint.startswith("shift off by")
