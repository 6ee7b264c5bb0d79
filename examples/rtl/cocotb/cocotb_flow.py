"""Build rtl/requantize.v once per Requantize node of blocks.requant_graph() and run the cocotb
testbench (test_requantize.py) on it, through cocotb's Python runner (no makefiles).

    run_node(get_runner, rtl_dir, out, node, rows, rounding=None)   -> (passed, log file)
    run_all(get_runner, rtl_dir, out, rows)                         -> (all passed, summary)

``rounding`` overrides the dialect the DUT is built with (the node keeps its own): the negative
check builds a half_up DUT for the half_even node and expects the test to fail.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import blocks  # noqa: E402


def _results(xml: Path):
    """(tests, failed) from cocotb's results.xml."""
    from xml.etree import ElementTree
    tests = failed = 0
    for suite in ElementTree.parse(xml).getroot().iter("testsuite"):
        for case in suite.iter("testcase"):
            tests += 1
            failed += any(child.tag in ("failure", "error") for child in case)
    return tests, failed


def run_node(get_runner, rtl_dir: Path, out: Path, node: str, rows: int, rounding=None):
    """Build the DUT for ``node`` (dialect ``rounding`` if given) and run the test; (passed, log path)."""
    node_rounding, overflow = blocks.REQUANT_NODES[node]
    work = out / node if rounding is None else out / f"{node}_built_{rounding}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    runner = get_runner("icarus")
    parameters = {"ROUNDING": f'"{rounding or node_rounding}"', "SATURATE": int(overflow == "saturate")}
    runner.build(sources=[rtl_dir / "rtl" / "requantize.v"], hdl_toplevel="requantize", parameters=parameters,
                 build_dir=work / "sim_build", always=True, timescale=("1ns", "1ps"),
                 log_file=work / "build.log")
    root = str(Path(__import__("intref").__file__).resolve().parent.parent)
    for path in (str(HERE), root):        # the runner hands the simulator this process's sys.path
        if path not in sys.path:
            sys.path.insert(0, path)
    env = {"RTL_NODE": node, "RTL_ROWS": str(rows), "RTL_OUT": str(work / "case")}
    xml = work / "results.xml"
    try:
        runner.test(test_module="test_requantize", hdl_toplevel="requantize", build_dir=work / "sim_build",
                    test_dir=work, extra_env=env, log_file=work / "test.log", results_xml=str(xml))
    except SystemExit:      # under pytest, cocotb's runner exits when a cocotb test fails
        pass
    tests, failed = _results(xml) if xml.is_file() else (0, 0)
    return tests > 0 and failed == 0, work / "test.log"


TIE_HINT = "exactly: a tie, which rounding='half_even' sends to"


def fault_caught(get_runner, rtl_dir: Path, out: Path, rows: int) -> bool:
    """A half_up DUT for the half_even node: the test must fail, and assert_bit_exact say it was a tie."""
    passed, log = run_node(get_runner, rtl_dir, out, "y_half_even", rows, rounding="half_up")
    return not passed and TIE_HINT in log.read_text()


def run_all(get_runner, rtl_dir: Path, out: Path, rows: int):
    """Every node, then the half_up fault; (all as expected, one-line summary)."""
    outcomes = {node: run_node(get_runner, rtl_dir, out, node, rows)[0] for node in blocks.REQUANT_NODES}
    failed = [n for n, ok in outcomes.items() if not ok]
    caught = fault_caught(get_runner, rtl_dir, out, rows)
    summary = (f"{len(outcomes) - len(failed)} of {len(outcomes)} Requantize nodes bit exact, "
               f"{rows * len(blocks.CHANNELS)} vectors each (assert_bit_exact and intref.verify)"
               + (f"; FAILED: {', '.join(failed)}" if failed else "")
               + f"; half_up DUT for the half_even node {'caught as a tie' if caught else 'NOT caught'}")
    return not failed and caught, summary
