"""cocotb testbench for rtl/requantize.v, driven by intref's golden output through its Python API.

The run (cocotb_flow.py) builds the DUT with the rounding dialect and overflow of one Requantize node
of blocks.requant_graph() and tells this module which node (environment below). The test

1. builds the graph and its feeds (blocks.py) and writes the golden set with
   ``intref.golden.write_golden`` (the same files ``intref golden`` writes);
2. drives one element per clock: x, the channel's multiplier and shift;
3. collects y as it leaves the pipeline and demands it equal intref bit for bit twice:
   ``intref.testing.assert_bit_exact(port, intref.kernels.requantize, ...)`` (its failure message
   names the first differing index, both values in hex, the inputs there, and says when the input was
   an exact tie), and ``intref.verify.verify`` on the dump written as the manifest names it.

Environment: RTL_NODE (a key of blocks.REQUANT_NODES), RTL_ROWS (rows of 16 inputs), RTL_OUT (a new
directory for the golden set and the dump).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import blocks  # noqa: E402

from intref.golden import write_golden  # noqa: E402
from intref.kernels import requantize  # noqa: E402
from intref.testing import assert_bit_exact  # noqa: E402
from intref.verify import verify  # noqa: E402

LATENCY_LIMIT = 16      # clocks the pipeline may take before the test calls it hung


@cocotb.test()
async def requantize_matches_intref(dut):
    node = os.environ["RTL_NODE"]
    rounding, overflow = blocks.REQUANT_NODES[node]
    rows, out = int(os.environ["RTL_ROWS"]), Path(os.environ["RTL_OUT"])
    graph, feeds = blocks.requant_graph(), blocks.requant_feeds(rows)
    write_golden(graph, feeds, out / "golden", formats=("hex", "npy"))

    x = feeds["x"]
    multipliers = np.array([m for m, _ in blocks.CHANNELS], dtype=np.int64)
    shifts = np.array([s for _, s in blocks.CHANNELS], dtype=np.int64)
    flat_x = x.ravel()
    channel = np.arange(flat_x.size) % len(blocks.CHANNELS)

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    got = []

    async def collect():
        while len(got) < flat_x.size:
            await RisingEdge(dut.clk)
            if dut.out_valid.value == 1:
                got.append(dut.y.value.to_signed())

    collector = cocotb.start_soon(collect())
    dut.in_valid.value = 0
    for i in range(flat_x.size):
        await FallingEdge(dut.clk)
        dut.x.value = int(flat_x[i])
        dut.multiplier.value = int(multipliers[channel[i]])
        dut.shift.value = int(shifts[channel[i]])
        dut.in_valid.value = 1
    await FallingEdge(dut.clk)
    dut.in_valid.value = 0
    for _ in range(LATENCY_LIMIT):
        if len(got) == flat_x.size:
            break
        await RisingEdge(dut.clk)
    collector.cancel()
    assert len(got) == flat_x.size, f"{len(got)} of {flat_x.size} results left the pipeline"

    simulated = np.array(got, dtype=np.int64).reshape(x.shape)
    dut._log.info("%s: %d vectors simulated; comparing with intref", node, simulated.size)
    assert_bit_exact(lambda *args, **kwargs: simulated, requantize, x, multipliers, shifts,
                     rounding=rounding, bits=8, signed=True, overflow=overflow)

    hw = out / "hw"
    hw.mkdir(parents=True, exist_ok=True)
    (hw / f"{node}.hex").write_text(blocks.hex_words(simulated.ravel(), 8))
    report = verify(out / "golden", hw, formats=["hex"], bundle=graph)
    dut._log.info("intref verify:\n%s", report.to_text())
    assert report.exit_code == 0, report.to_text()
