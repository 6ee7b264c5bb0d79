"""The RTL flow of examples/rtl: intref golden vectors -> Icarus Verilog -> intref verify.

A slice of the flow runs here (640 rows: 10,240 vectors per Requantize node, the exhaustive int16
i-GELU sweep, the 64 x 64 x 64 dot tile); ``make -C examples/rtl`` runs the full 102,400-vector one.
Tests that simulate skip, saying why, when ``iverilog`` (or cocotb, or yosys) is not installed; the
vector generators are checked everywhere.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

RTL_DIR = Path(__file__).resolve().parents[2] / "examples" / "rtl"
ROWS = 640


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


flow = _load("rtl_run_flow", RTL_DIR / "run_flow.py")
blocks = flow.blocks

needs_iverilog = pytest.mark.skipif(flow.find_iverilog() is None,
                                    reason=f"iverilog / vvp not on PATH: the RTL flow needs them ({flow.INSTALL_HINT})")


# ---- the vectors (no simulator needed) ------------------------------------------------------------

def test_tie_values_are_exact_ties_and_cover_every_class():
    classes = set()
    for multiplier, shift in blocks.CHANNELS:
        for x in blocks.tie_values(multiplier, shift):
            v = x * multiplier
            assert v % (1 << shift) == 1 << (shift - 1), (x, multiplier, shift)
            k = v >> shift
            if -128 <= k <= 127:
                classes.add(("+" if v > 0 else "-", k & 1))
    assert classes == {("+", 0), ("+", 1), ("-", 0), ("-", 1)}


def test_default_run_has_100k_vectors_per_node_with_extremes_and_every_tie_class():
    x = blocks.requant_feeds(flow.DEFAULT_ROWS)["x"]
    assert x.dtype == np.int32 and x.size >= 100_000
    assert x.min() == -(1 << 31) and x.max() == (1 << 31) - 1
    assert all(count > 0 for count in blocks.tie_classes(x).values())
    assert len(blocks.REQUANT_NODES) * x.size >= 600_000


def test_gelu_sweep_is_exhaustive():
    q = blocks.gelu_feeds()["q"]
    assert q.dtype == np.int16 and np.array_equal(q, np.arange(-32768, 32768))


# ---- the simulated flow ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("rtl")


@needs_iverilog
@pytest.mark.parametrize("block, vectors", [("requantize", 6 * 16 * ROWS), ("gelu", 1 << 16), ("dot", 64 * 64)])
def test_rtl_matches_golden_bit_exact(out, block, vectors):
    result = flow.run_block(flow.find_iverilog(), block, out, ROWS)
    assert result["exit_code"] == 0, result["report"]
    assert result["vectors"] == vectors
    assert "result: MATCH (exit 0)" in result["report"] and " 0 mismatch" in result["report"]
    assert (out / block / "verify.xml").is_file()


@needs_iverilog
@pytest.mark.parametrize("define", sorted(flow.FAULTS))
def test_wrong_rtl_is_caught_and_explained(out, define):
    result = flow.run_block(flow.find_iverilog(), "requantize", out, ROWS, defines=(define,),
                            name=f"fault_{define.lower()}")
    assert result["exit_code"] == 1, result["report"]
    report = result["report"]
    assert "first divergent node: y_half_even (Requantize)" in report
    assert "(5 match, 1 mismatch)" in report                  # only the faulty instance differs
    hint = next(line.strip() for line in report.splitlines() if line.strip().startswith("hint:"))
    assert flow.FAULTS[define] in hint


@needs_iverilog
def test_flow_command_runs_and_says_so(tmp_path):
    """The one command (what ``make -C examples/rtl`` runs), on the smallest blocks."""
    code = flow.main(["--rows", "64", "--out", str(tmp_path), "--blocks", "gelu", "--no-faults", "--no-cocotb",
                      "--no-synth"])
    assert code == 0


@needs_iverilog
def test_synthesizable():
    yosys = shutil.which("yosys")
    if yosys is None:
        pytest.skip("yosys not on PATH: the synthesis check needs it (apt-get install yosys)")
    assert int(flow.synthesize(yosys, "requantize", {"ROUNDING": '"half_even"', "SATURATE": 1})) > 0


@needs_iverilog
def test_cocotb_testbench(out):
    try:
        from cocotb_tools.runner import get_runner
    except ImportError:
        pytest.skip("cocotb (>= 2.0, cocotb_tools.runner) is not installed: pip install cocotb")
    sys.path.insert(0, str(RTL_DIR / "cocotb"))
    import cocotb_flow

    for node in ("y_half_even", "y_wrap"):
        passed, log = cocotb_flow.run_node(get_runner, RTL_DIR, out / "cocotb", node, 64)
        assert passed, log.read_text()[-4000:]
    assert cocotb_flow.fault_caught(get_runner, RTL_DIR, out / "cocotb", 64)
