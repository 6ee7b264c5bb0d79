"""The command line as a new user and an attacker meet it (issue 8): no traceback for any bad input
(exit 2 and one line naming the path or option), no allocation a feed header merely declares, help
on every option, ``--version``, ``run`` as careful with its output directory as ``golden``, options
that select nothing said so, and progress only on a terminal."""

import argparse
import io
import os
import struct
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from intref._version import __version__
from intref.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "golden" / "demo-ibert.zip"
FEEDS = ROOT / "golden" / "demo-ibert" / "ordinary" / "feeds"
FEED_ARGS = ["--feed", f"input_ids={FEEDS / 'input_ids.npy'}", "--feed", f"attention_mask={FEEDS / 'attention_mask.npy'}"]


def one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def npy_header_only(path, shape, descr="<i4"):
    """A .npy file whose header declares ``shape`` and which holds no data at all."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}".encode("latin1")
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    return path


# --- discoverability ---------------------------------------------------------------------------------------

def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"intref {__version__}"


def _actions(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, path + (name,))
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_and_positional_argument_has_help():
    undocumented = [(" ".join(path), action.option_strings or action.dest) for path, action in _actions(build_parser())
                    if not (action.help or "").strip()]
    assert undocumented == []
    assert len(list(_actions(build_parser()))) > 40


# --- bad feeds and output paths: exit 2, one line, no allocation -------------------------------------------

def test_a_feed_whose_header_declares_a_trillion_elements_is_refused_without_allocating(tmp_path, capsys):
    huge = npy_header_only(tmp_path / "huge.npy", (10 ** 6, 10 ** 6))
    tracemalloc.start()
    try:
        code = main(["run", str(BUNDLE), "--feed", f"input_ids={huge}", "--feed",
                     f"attention_mask={FEEDS / 'attention_mask.npy'}", "--out", str(tmp_path / "out")])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and peak < 64 << 20
    one_line_error(capsys, "--feed input_ids=", "huge.npy", "4000000000000", "truncated or padded")


@pytest.mark.parametrize("content, fragment", [(b"", "not a .npy file"), (b"\x80\x04K\x01.", "a pickle"),
                                               (b"\x93NUMPY\x01\x00\xff", "truncated .npy header")])
def test_empty_or_foreign_feed_files(tmp_path, capsys, content, fragment):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(content)
    assert main(["run", str(BUNDLE), "--feed", f"input_ids={bad}", "--feed",
                 f"attention_mask={FEEDS / 'attention_mask.npy'}", "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "--feed input_ids=", "bad.npy", fragment)


def test_a_missing_feed_file(tmp_path, capsys):
    assert main(["run", str(BUNDLE), "--feed", f"input_ids={tmp_path / 'nowhere.npy'}",
                 "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "nowhere.npy", "cannot be read")


def test_feeds_are_mapped_not_copied():
    from intref.cli import parse_feeds
    feeds = parse_feeds([f"input_ids={FEEDS / 'input_ids.npy'}"])
    assert isinstance(feeds["input_ids"], np.memmap) and not feeds["input_ids"].flags.writeable
    np.testing.assert_array_equal(feeds["input_ids"], np.load(FEEDS / "input_ids.npy"))


@pytest.mark.parametrize("command", ["run", "golden"])
def test_an_out_that_is_a_file_or_cannot_be_created(tmp_path, capsys, command):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, fragment in ((afile, "afile"), (afile / "sub", "afile/sub")):
        assert main([command, str(BUNDLE), *FEED_ARGS, "--out", str(out)]) == 2
        one_line_error(capsys, fragment)
    assert afile.read_text() == "x"


def test_run_refuses_a_non_empty_output_directory_unless_forced(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["run", str(BUNDLE), *FEED_ARGS, "--out", str(out)]) == 2
    one_line_error(capsys, "--out", "not empty", "--force")
    assert sorted(os.listdir(out)) == ["keep.txt"]
    assert main(["run", str(BUNDLE), *FEED_ARGS, "--out", str(out), "--force"]) == 0
    assert sorted(os.listdir(out)) == ["keep.txt", "last_hidden_state.npy"]


def test_golden_lanes_beyond_any_bus_is_refused_at_once(tmp_path, capsys):
    tracemalloc.start()
    try:
        code = main(["golden", str(BUNDLE), *FEED_ARGS, "--out", str(tmp_path / "g"), "--lanes", "100000000"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and peak < 64 << 20
    one_line_error(capsys, "lanes=100000000", "4096")
    assert not (tmp_path / "g").exists()


# --- options that select nothing -----------------------------------------------------------------------------

def test_golden_options_that_select_nothing_say_so(tmp_path, capsys):
    assert main(["golden", str(BUNDLE), *FEED_ARGS, "--out", str(tmp_path / "t"), "--tile", "1000x1000",
                 "--int4-packed", "--format", "npy,bin", "--lanes", "4", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "--tile 1000x1000 divides the last two axes of no written tensor" in err
    assert "--int4-packed: no written tensor has at most 4 bits" in err
    assert "--lanes 4: only .hex and .mem files have lanes" in err
    assert main(["golden", str(BUNDLE), *FEED_ARGS, "--out", str(tmp_path / "n"), "--nodes", "no_such*"]) == 2
    one_line_error(capsys, "--nodes 'no_such*' matches no node")
    assert main(["golden", str(BUNDLE), *FEED_ARGS, "--out", str(tmp_path / "ok"), "--tile", "4x4",
                 "--quiet"]) == 0
    assert "note" not in capsys.readouterr().err


# --- progress ------------------------------------------------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal, quiet, shown", [(True, False, True), (True, True, False), (False, False, False)])
def test_golden_progress_only_on_a_terminal_and_not_with_quiet(tmp_path, monkeypatch, capsys, terminal, quiet,
                                                                 shown):
    stream = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    args = ["golden", str(BUNDLE), *FEED_ARGS, "--out", str(tmp_path / "g")] + ["--quiet"] * quiet
    assert main(args) == 0
    text = stream.getvalue()
    if shown:   # the last redraw of each phase is always drawn: nodes run, tensors encoded, bytes written + rate
        assert "\rintref golden: run 62/62" in text and "encode 91/91" in text
        assert "write " in text and " MB/s" in text and text.endswith("\n")
    else:
        assert text == ""


def test_progress_redraws_at_most_every_interval():
    from intref.progress import Progress
    clock = iter([0.0, 0.05, 0.1, 0.3, 0.31, 0.32])
    stream = Terminal()
    progress = Progress("golden", stream=stream, clock=lambda: next(clock))
    for done in range(1, 6):
        progress("write", done, 5, f"f{done}", nbytes=1_000_000)
    progress.close()
    lines = stream.getvalue().split("\r")[1:]
    assert [line.split()[3] for line in lines] == ["1/5", "3/5", "5/5"]   # 0.05 skipped, 0.31 skipped, last drawn
    assert "5.0 MB" in lines[-1] and "MB/s" in lines[-1] and stream.getvalue().endswith("\n")


# --- install hints ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["convert", "hf-ibert", "m", "-o", "x.zip"],
                                     ["crosscheck", "hf-ibert", "m", "--text", "t.txt"]])
def test_install_hint_names_a_command_that_works_from_a_checkout(monkeypatch, capsys, command):
    monkeypatch.setitem(sys.modules, "transformers", None)    # as if the hf extra were not installed
    monkeypatch.setitem(sys.modules, "torch", None)
    for name in [n for n in sys.modules if n.startswith("intref.convert.hf_ibert")]:
        monkeypatch.delitem(sys.modules, name)
    assert main(command) == 2
    err = one_line_error(capsys, "pip install '.[hf]'")
    assert "intref[hf]" not in err
