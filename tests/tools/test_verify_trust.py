"""intref verify never reports a MATCH it did not check (issue 8): one fault-injection test per
class. Every file of the dump that names a tensor is compared, in every format; the hardware's
feeds/ come first; a dump that compared nothing or less than the set holds is not a match; the
golden set itself is refused as a dump; stray and near-miss files are reported; a golden tensor
edited with its manifest entry is caught by re-deriving it; valid uint64 data and non-zero
padding are read for what they are; --isolate says when an upstream dump is to blame; the text
and the JUnit report count the same testcases; the report streams and shows progress on a
terminal only."""

import io
import json
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from intref import GraphBuilder, save
from intref.cli import main as cli_main
from intref.golden import npy_bytes, write_golden
from intref.golden.vectors import Layout, encode_bin, encode_text
from intref.inttypes import IntType
from intref.verify import VerifyInputError, verify
from intref.progress import Progress
from intref.verify.report import BAD_DUMP, FEEDS, LOCALLY_WRONG, MATCH, MISMATCH, NOT_DUMPED

FEED = np.array([[1, 2, 3, 6, -2, -6, 10, -10], [5, 7, 14, -14, 100, -100, 0, 4]], dtype=np.int32)
INT16 = IntType.parse("int16")


def tiny_graph():
    b = GraphBuilder("tiny")
    x = b.input("x", "int32", [2, 8])
    y = b.add("Requantize", [x], "int16", name="y", attributes={"multiplier": 1 << 30, "shift": 30})
    b.output(b.add("Requantize", [y], "int8", name="z", attributes={"multiplier": 1 << 30, "shift": 32}))
    return b.build()


@pytest.fixture
def golden(tmp_path):
    """A private golden set of the tiny graph (every format), its bundle beside it."""
    save(tiny_graph(), tmp_path / "tiny.zip")
    write_golden(tiny_graph(), {"x": FEED}, tmp_path / "golden", bundle_path="../tiny.zip")
    return tmp_path / "golden"


def full_dump(golden, hw, formats=("npy",)):
    """A correct hardware dump of every tensor of the set in ``formats``."""
    for fmt in formats:
        for name in ("x", "y", "z"):
            (hw / "tensors").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(golden / "tensors" / f"{name}.{fmt}", hw / "tensors" / f"{name}.{fmt}")
    return hw


def value(golden, name):
    return np.load(golden / "tensors" / f"{name}.npy")


def tensor(report, name):
    (t,) = [t for t in report.tensors if t.name == name]
    return t


# --- every file of a tensor, in every format --------------------------------------------------------

def test_a_corrupted_hex_beside_an_intact_npy_is_a_mismatch(golden, tmp_path):
    hw = full_dump(golden, tmp_path / "hw", ("npy", "hex"))
    bad = value(golden, "y").copy()
    bad[1, 3] += 1
    (hw / "tensors" / "y.hex").write_text(encode_text(bad, INT16))
    report = verify(golden, hw)
    y = tensor(report, "y")
    assert (y.status, y.file, y.files) == (MISMATCH, "tensors/y.hex", ("tensors/y.npy", "tensors/y.hex"))
    assert y.first.index == (1, 3) and report.exit_code == 1
    assert "disagree with each other: tensors/y.npy matches, tensors/y.hex differs" in y.note
    assert "<- tensors/y.npy, tensors/y.hex: mismatch" in report.to_text()
    assert verify(golden, hw, formats="npy").exit_code == 0                 # --format restricts, and says so
    assert "tensors/y.hex (format hex not selected)" in verify(golden, hw, formats="npy").to_text()


def test_a_corrupted_bin_beside_an_intact_npy_is_bad_input(golden, tmp_path):
    hw = full_dump(golden, tmp_path / "hw", ("npy",))
    (hw / "tensors" / "y.bin").write_bytes(encode_bin(value(golden, "y"), INT16)[:-2])
    report = verify(golden, hw)
    assert (tensor(report, "y").status, report.exit_code) == (BAD_DUMP, 2)
    assert tensor(report, "y").files == ("tensors/y.npy", "tensors/y.bin")


def test_match_lines_name_every_file_compared(golden, tmp_path):
    hw = full_dump(golden, tmp_path / "hw", ("npy", "bin", "hex", "mem"))
    report = verify(golden, hw)
    assert report.exit_code == 0
    assert tensor(report, "z").files == tuple(f"tensors/z.{f}" for f in ("npy", "bin", "hex", "mem"))
    assert "z <- tensors/z.npy, tensors/z.bin, tensors/z.hex, tensors/z.mem" in report.to_text()


# --- feeds first ------------------------------------------------------------------------------------

def test_the_hardware_feeds_are_compared_and_reported_first(golden, tmp_path):
    hw = full_dump(golden, tmp_path / "hw")
    no_feeds = verify(golden, hw)
    assert no_feeds.exit_code == 0 and no_feeds.feeds.tensors[0].status == NOT_DUMPED
    assert "feeds" in no_feeds.to_text().splitlines()[3] and "not checked: the dump has no feeds/" in no_feeds.to_text()
    (hw / "feeds").mkdir()
    wrong = FEED.copy()
    wrong[0, 0] = 9
    (hw / "feeds" / "x.npy").write_bytes(npy_bytes(wrong, IntType.parse("int32")))
    report = verify(golden, hw)
    assert report.feeds.name == FEEDS and report.feeds.tensors[0].status == MISMATCH
    assert report.exit_code == 1 and report.first_divergent_node == "feeds"
    text = report.to_text().splitlines()
    assert "MISMATCH" in text[3] and "feed x int32 [2, 8] <- feeds/x.npy" in text[3]
    (hw / "feeds" / "x.npy").write_bytes(npy_bytes(FEED, IntType.parse("int32")))
    assert verify(golden, hw).feeds.tensors[0].status == MATCH


# --- nothing compared, a partial dump, the golden dir, stray files ------------------------------------

def test_a_dump_of_only_the_feeds_compares_nothing_and_is_not_a_match(golden, tmp_path):
    (tmp_path / "hw" / "feeds").mkdir(parents=True)
    shutil.copyfile(golden / "feeds" / "x.npy", tmp_path / "hw" / "feeds" / "x.npy")
    report = verify(golden, tmp_path / "hw")
    assert report.counts["compared"] == 0 and report.exit_code == 2 and report.verdict == "NOT VERIFIED"
    assert "not verified: no tensor was compared" in report.to_text()


def test_a_partial_dump_is_not_a_match_unless_the_subset_is_asked_for(golden, tmp_path, capsys):
    hw = full_dump(golden, tmp_path / "hw")
    (hw / "tensors" / "z.npy").unlink()
    report = verify(golden, hw)
    assert (report.exit_code, report.verdict, report.missing) == (2, "NOT VERIFIED", ("z",))
    assert "not verified: 1 of the 3 tensors the golden set holds were not dumped (z)" in report.to_text()
    assert verify(golden, hw, only=["x", "y"]).exit_code == 0
    assert cli_main(["verify", str(golden), str(hw), "--only", "[xy]"]) == 0
    assert cli_main(["verify", str(golden), str(hw), "--only", "nothing*"]) == 2
    assert "--only 'nothing*' selects no tensor" in capsys.readouterr().err


def test_the_golden_dir_or_a_folder_of_it_is_refused_as_a_dump(golden, capsys):
    for hw in (golden, golden / "tensors", golden / "tensors" / ".." / "feeds"):
        with pytest.raises(VerifyInputError, match="is the golden set .* or a folder inside it"):
            verify(golden, hw)
    assert cli_main(["verify", str(golden), str(golden)]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("stray, reason", [
    ("tensors/Z.NPY", "wrong case: the manifest's file is tensors/z.npy"),
    ("tensors/z.NPY", "wrong case: the manifest's file is tensors/z.npy"),
    ("run1/tensors/z.npy", "in the wrong folder: a dump of that name is read from tensors/z.npy"),
    ("tensors/zz.hex", "matches no tensor of the manifest"),
])
def test_a_file_that_claims_no_tensor_is_reported_and_not_a_match(golden, tmp_path, stray, reason):
    hw = full_dump(golden, tmp_path / "hw")
    (hw / stray).parent.mkdir(parents=True, exist_ok=True)
    (hw / stray).write_bytes(b"junk")
    report = verify(golden, hw)
    assert report.unclaimed_files == ((stray, reason),)
    assert report.exit_code == 2 and f"  {stray}: {reason}" in report.to_text()
    assert "not verified: 1 dump file(s) name no tensor of the golden set" in report.to_text()


def test_other_files_are_listed_without_failing_the_run(golden, tmp_path):
    hw = full_dump(golden, tmp_path / "hw")
    (hw / "sim.log").write_text("ok\n")
    report = verify(golden, hw)
    assert report.unclaimed_files == (("sim.log", "not a dump file"),) and report.exit_code == 0
    assert "  sim.log: not a dump file" in report.to_text()


# --- the golden set is tied to its bundle and feeds ---------------------------------------------------

def rewrite(golden, name, array):
    """Edit a golden tensor and its manifest entry together (a consistent forgery)."""
    (golden / "tensors" / f"{name}.npy").write_bytes(npy_bytes(array, INT16))
    for fmt in ("hex", "mem", "bin"):
        (golden / "tensors" / f"{name}.{fmt}").unlink()
    path = golden / "manifest.json"
    document = json.loads(path.read_text())
    import hashlib
    document["tensors"][name]["sha256"] = hashlib.sha256(array.astype("<i2").tobytes()).hexdigest()
    document["tensors"][name]["files"] = {"npy": f"tensors/{name}.npy"}
    path.write_text(json.dumps(document))


def test_a_golden_tensor_edited_with_its_manifest_entry_is_detected(golden, tmp_path, capsys):
    forged = value(golden, "y").copy()
    forged[0, 0] += 1
    rewrite(golden, "y", forged)
    hw = full_dump(golden, tmp_path / "hw")
    shutil.copyfile(golden / "tensors" / "y.npy", hw / "tensors" / "y.npy")   # the hardware "agrees"
    with pytest.raises(VerifyInputError, match=r"tensors\['y'\].sha256: .* the bundle run on the golden feeds "
                                               r"derives .*: the golden set was modified"):
        verify(golden, hw)
    assert cli_main(["verify", str(golden), str(hw)]) == 2
    assert "golden set was modified" in capsys.readouterr().err
    assert verify(golden, hw, rederive=False).exit_code == 0    # without re-deriving, the forgery is trusted
    assert "not re-derived" in verify(golden, hw, rederive=False).to_text()


def test_an_edited_golden_feed_is_detected(golden, tmp_path):
    (golden / "feeds" / "x.npy").write_bytes(npy_bytes(FEED + 1, IntType.parse("int32")))
    with pytest.raises(VerifyInputError, match=r"feeds\['x'\].sha256 .*: the feed was modified"):
        verify(golden, full_dump(golden, tmp_path / "hw"))


def test_a_manifest_shape_that_disagrees_with_the_graph_is_rejected(golden, tmp_path):
    path = golden / "manifest.json"
    document = json.loads(path.read_text())
    document["tensors"]["y"]["shape"] = [16]
    path.write_text(json.dumps(document))
    hw = full_dump(golden, tmp_path / "hw")
    for rederive in (True, False):
        with pytest.raises(VerifyInputError, match=r"tensors\['y'\].shape: shape \[16\] disagrees with the graph's "
                                                   r"shape \[2, 8\]"):
            verify(golden, hw, rederive=rederive)


# --- valid data is never called bad; padding is never ignored ---------------------------------------

@pytest.fixture
def wide(tmp_path):
    """A golden set of a uint64 graph input holding values at and above 2**63."""
    b = GraphBuilder("wide")
    u = b.input("u", "uint64", [4])
    b.output(b.add("Reshape", [u], "uint64", name="v", attributes={"shape": [2, 2]}))
    graph = b.build()
    save(graph, tmp_path / "wide.zip")
    feed = np.array([0, 2 ** 63, 2 ** 64 - 1, 12345], dtype=np.uint64)
    write_golden(graph, {"u": feed}, tmp_path / "golden", bundle_path="../wide.zip", formats=("npy", "hex", "bin"))
    return tmp_path / "golden"


@pytest.mark.parametrize("fmt", ["hex", "bin"])
def test_uint64_at_and_above_2_63_reads_back(wide, tmp_path, fmt):
    hw = tmp_path / "hw" / "tensors"
    hw.mkdir(parents=True)
    for name in ("u", "v"):
        shutil.copyfile(wide / "tensors" / f"{name}.{fmt}", hw / f"{name}.{fmt}")
    report = verify(wide, hw.parent)
    assert report.exit_code == 0 and report.counts["compared"] == 2, report.to_text()


def test_non_zero_padding_lanes_are_reported(tmp_path):
    save(tiny_graph(), tmp_path / "tiny.zip")
    write_golden(tiny_graph(), {"x": FEED}, tmp_path / "golden", bundle_path="../tiny.zip",
                 formats=("hex",), layout=Layout(lanes=3))
    hw = full_dump(tmp_path / "golden", tmp_path / "hw", ("hex",))
    lines = (hw / "tensors" / "z.hex").read_text().splitlines()
    assert lines[-1][:4] == "0000"
    lines[-1] = "05" + lines[-1][2:]                 # 16 elements, 3 lanes: lanes 1 and 2 of the last word pad
    (hw / "tensors" / "z.hex").write_text("\n".join(lines) + "\n")
    report = verify(tmp_path / "golden", hw)
    assert tensor(report, "z").status == BAD_DUMP and report.exit_code == 2
    assert "padding lane 2 of the last word is 0x5" in tensor(report, "z").error


def test_a_non_zero_int4_padding_nibble_is_reported(tmp_path):
    b = GraphBuilder("nibbles")
    x = b.input("x", "int4", [3])
    b.output(b.add("Reshape", [x], "int4", name="y", attributes={"shape": [3]}))
    save(b.build(), tmp_path / "n.zip")
    write_golden(b.build(), {"x": np.array([1, -2, 3], np.int8)}, tmp_path / "golden", bundle_path="../n.zip",
                 formats=("bin",), layout=Layout(int4_packed=True))
    hw = full_dump_named(tmp_path / "golden", tmp_path / "hw", ("x", "y"), "bin")
    data = bytearray((hw / "tensors" / "y.bin").read_bytes())
    data[-1] |= 0x70
    (hw / "tensors" / "y.bin").write_bytes(bytes(data))
    report = verify(tmp_path / "golden", hw)
    assert tensor(report, "y").status == BAD_DUMP and "padding nibble" in tensor(report, "y").error


def full_dump_named(golden, hw, names, fmt):
    (hw / "tensors").mkdir(parents=True)
    for name in names:
        shutil.copyfile(golden / "tensors" / f"{name}.{fmt}", hw / "tensors" / f"{name}.{fmt}")
    return hw


# --- --isolate wording; the text and JUnit agree --------------------------------------------------------

def test_isolation_says_when_an_upstream_dump_is_to_blame(golden, tmp_path):
    hw = full_dump(golden, tmp_path / "hw")
    bad_y = value(golden, "y").copy()
    bad_y[0, 0] += 40                                  # the dump of y is bad; z (computed from the true y) matches
    (hw / "tensors" / "y.npy").write_bytes(npy_bytes(bad_y, INT16))
    report = verify(golden, hw, isolate=True)
    z = next(n for n in report.nodes if n.name == "z")
    assert z.status == MATCH and z.isolation.status == LOCALLY_WRONG
    assert ("its output matches the golden, but differs from its re-run on the hardware inputs y; the dumped "
            "input(s) y differ from the golden, so the upstream dump is likely bad") in report.to_text()


def junit_counts(report, path):
    report.to_junit(path)
    suite = ET.parse(path).getroot().find("testsuite")
    cases = suite.findall("testcase")
    counted = {kind: sum(1 for c in cases if c.find(kind) is not None) for kind in ("failure", "error", "skipped")}
    assert counted == {"failure": int(suite.get("failures")), "error": int(suite.get("errors")),
                       "skipped": int(suite.get("skipped"))} and len(cases) == int(suite.get("tests"))
    return (f"testcases: {suite.get('tests')} ({suite.get('failures')} failure(s), {suite.get('errors')} error(s), "
            f"{suite.get('skipped')} skipped), as in the JUnit report")


@pytest.mark.parametrize("scenario", ["match", "partial", "mismatch", "bad dump", "stray", "isolated"])
def test_text_summary_and_junit_counts_agree(golden, tmp_path, scenario):
    hw = full_dump(golden, tmp_path / "hw")
    options = {}
    if scenario == "partial":
        (hw / "tensors" / "z.npy").unlink()
    elif scenario in ("mismatch", "isolated"):
        bad = value(golden, "y").copy()
        bad[0, 0] += 40
        (hw / "tensors" / "y.npy").write_bytes(npy_bytes(bad, INT16))
        options = {"isolate": scenario == "isolated"}
    elif scenario == "bad dump":
        (hw / "tensors" / "z.hex").write_text("zz\n")
    elif scenario == "stray":
        (hw / "tensors" / "Y.npy").write_bytes(b"")
    report = verify(golden, hw, **options)
    line = junit_counts(report, tmp_path / "v.xml")
    assert line in report.to_text()
    verdict = ET.parse(tmp_path / "v.xml").getroot().find("testsuite/properties/property[@name='verdict']")
    assert verdict.get("value") == report.verdict
    suite = ET.parse(tmp_path / "v.xml").getroot().find("testsuite")
    assert (report.exit_code == 0) == (suite.get("failures") == suite.get("errors") == "0")


# --- streaming and progress ---------------------------------------------------------------------------

def test_the_report_streams_node_by_node_and_equals_the_text(golden, tmp_path):
    hw = full_dump(golden, tmp_path / "hw")
    seen = []

    class Stream(io.StringIO):
        def write(self, text):
            seen.append(text)
            return super().write(text)

    stream = Stream()
    report = verify(golden, hw, stream=stream)
    assert stream.getvalue() == report.to_text()
    assert len(seen) >= 2 + len(report.nodes)          # header, then one write per node, then the summary


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal_and_not_when_quiet(golden, tmp_path):
    hw = full_dump(golden, tmp_path / "hw")
    for stream, enabled in ((io.StringIO(), None), (Terminal(), False)):
        verify(golden, hw, progress=Progress("verify", stream=stream, enabled=enabled))
        assert stream.getvalue() == ""
    terminal = Terminal()
    verify(golden, hw, progress=Progress("verify", stream=terminal))
    shown = terminal.getvalue()
    assert "intref verify: compare 2/2 z" in shown and " MB/s" in shown
    assert shown.endswith("\n")                      # the line is ended, not left for the next prompt


def test_cli_quiet_and_piped_runs_show_no_progress(golden, tmp_path, capsys):
    hw = full_dump(golden, tmp_path / "hw")
    assert cli_main(["verify", str(golden), str(hw), "--quiet"]) == 0
    out = capsys.readouterr()
    assert out.err == "" and "result: MATCH (exit 0)" in out.out
