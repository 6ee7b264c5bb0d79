"""Fused row chains: a ``Linear`` and the elementwise ops after it, run block of rows by block of rows
on exact integers carried in float64, with no integer array in between.

A base-size layer spends as many NumPy passes converting between its ops as computing in them: the
GEMM's float result becomes int32, a requantization converts it back to float64 to estimate its
quotient, the i-GELU converts its input to int64, and so on. A chain

    Linear -> op -> op ... (each op the only reader of the value before it)

skips those conversions. The ``Linear`` hands over its BLAS result (``Prepared.gemm``, exact integers
in float32 or float64); each block of rows is converted to float64 once (``Linear``'s ``carrier``: the
sums plus the bias, all below 2**53), passed through each op's ``carrier`` (the op on exact integers
held in float64, under the same proofs as the op's ``float64 near-tie`` path, or its integer kernel:
``ILayerNorm``'s, whose normalization group is a row, as a block's rows are),
and written once in the last op's storage dtype. A block where a carrier cannot prove its result (an
element near a rounding tie) is recomputed by the ops' integer paths, from the ``Linear``'s integer
sums (``Prepared.epilogue``) through each op's ``run``. Either way each value is the one the unfused
ops give, bit for bit, because:

- every op in a chain is elementwise or treats rows on its own (``kernels.blocks``), so a block of
  rows gives the rows of the whole array;
- every carrier returns its op's exact output values or None (tests/graph/test_fusion.py pins whole
  chains to the unfused run on both sides of the proofs, with ties forced; each op's float64 form
  has its own kernel test);
- no intermediate needs the run's overflow policy: the ``Linear`` offers a ``gemm`` only when its
  type bound proves every sum inside its declared type, and the ops after it fit their own outputs
  (``Prepared.outputs_in_type``).

Chains are found once, at load time (``find_chains``): a value is carried only when its one reader is
the next op of the chain, it is not a graph output, and the reader's other inputs have its shape or
broadcast on the last axis. A run fuses them unless it must show the values in between: ``trace``,
``verbose``, an override of a chain's value, or ``fuse=False`` (``intref.run``). ``intref inspect
--plan`` lists the chains and ``intref run --profile`` times each as one entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .graph import Graph, Node, Step
from .kernels.blocks import broadcast_on_last_axis_only, rows_per_block


# One float64 block of a chain: 256 KB. A chain's ops keep two or three such arrays live, and at
# 1 MB (the unfused ops' best) they spill out of L2: the base model at 1 x 128 ran 0.256 s against
# 0.253 s at 256 KB, 0.254 s at 512 KB, 0.261 s at 128 KB (min of 5 whole runs each).
CHAIN_BLOCK_BYTES = 1 << 18


@dataclass(frozen=True)
class ChainPath:
    path: str


@dataclass(frozen=True)
class Chain:
    """A ``Linear`` (``steps[0]``) and the ops carried after it. ``node`` and ``prepared`` let a run's
    profile list the chain as one entry (``intref.plan.format_profile``)."""

    steps: Tuple[Step, ...]

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(step.node.name for step in self.steps)

    @property
    def node(self) -> Node:
        return Node(name="+".join(self.names), op="Fused(" + ">".join(s.node.op for s in self.steps) + ")",
                    inputs=(), outputs=self.steps[-1].node.outputs)

    @property
    def prepared(self) -> ChainPath:
        return ChainPath("fused rows, float64 carried: " + "; ".join(s.prepared.path or "-" for s in self.steps))

    def run(self, values: dict) -> np.ndarray:
        return run_chain(self, values)


def sole_readers(graph: Graph) -> Dict[str, Step]:
    """``{value: step}`` for every value that is not a graph output and is read exactly once, by that
    step: the values a fused chain may carry without storing them."""
    readers: Dict[str, List[Step]] = {}
    for step in graph.steps:
        for name in step.node.inputs:             # a step reading a value twice is two reads
            readers.setdefault(name, []).append(step)
    outputs = set(graph.outputs)
    return {name: steps[0] for name, steps in readers.items() if len(steps) == 1 and name not in outputs}


def find_chains(graph: Graph) -> Tuple[Chain, ...]:
    """Every maximal chain of the graph (module docstring), in execution order of their heads."""
    sole = sole_readers(graph)
    chains = []
    for head in graph.steps:
        if head.prepared.gemm is None:
            continue
        members = [head]
        while True:
            (value,) = [info.name for info in members[-1].node.outputs]
            reader = sole.get(value)
            if reader is None or not _carries(graph, reader, value):
                break
            members.append(reader)
        if len(members) > 1:
            chains.append(Chain(tuple(members)))
    return tuple(chains)


def _carries(graph: Graph, step: Step, value: str) -> bool:
    """Whether ``step`` can take ``value`` as a fused chain's carried block: it has a carrier, reads
    ``value`` as its first input and nowhere else, keeps its shape, and its other inputs have that
    shape or broadcast on the last axis only."""
    if step.prepared.carrier is None or step.node.inputs[0] != value or len(step.node.outputs) != 1:
        return False
    shape = graph.values[value].shape
    if graph.values[step.node.outputs[0].name].shape != shape:
        return False
    return all(graph.values[name].shape == shape or broadcast_on_last_axis_only(graph.values[name].shape, shape)
               for name in step.node.inputs[1:])


def run_chain(chain: Chain, values: dict) -> np.ndarray:
    """The chain's last output, in its storage dtype, from the values its ops read."""
    head = chain.steps[0]
    x = values[head.node.inputs[0]]
    raw = head.prepared.gemm(x)                                   # [rows, n]
    rows, n = raw.shape
    shape = x.shape[:-1] + (n,)
    others = [[_rows(values[name], shape) for name in step.node.inputs[1:]] for step in chain.steps[1:]]
    out = np.empty((rows, n), dtype=chain.steps[-1].node.outputs[0].type.storage)
    step_rows = rows_per_block(n, CHAIN_BLOCK_BYTES)
    for start in range(0, rows, step_rows):
        block = slice(start, start + step_rows)
        extras = [[a[block] if full else a for full, a in inputs] for inputs in others]
        out[block] = _carried_block(chain, raw[block], extras)
    return out.reshape(shape)


def _rows(array: np.ndarray, shape: tuple):
    """``(full, rows)``: an input of the chain's ``shape`` as ``[rows, n]``, one that broadcasts on the
    last axis only (``_carries``) as its last axis (a 0-d one as it is), passed whole to each block."""
    if array.shape == shape:
        return True, array.reshape(-1, shape[-1])
    return False, (array.reshape(array.shape[-1:]) if array.ndim else array)


def _carried_block(chain: Chain, raw: np.ndarray, extras: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """One block through the carriers; through the integer paths if one of them returns None."""
    y = chain.steps[0].prepared.carrier(raw)
    for step, inputs in zip(chain.steps[1:], extras):
        y = step.prepared.carrier(y, *inputs)
        if y is None:
            return integer_block(chain, raw, extras)
    return y


def integer_block(chain: Chain, raw: np.ndarray, extras: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """One block through the ops' own integer paths (each op's ``run``, as the unfused interpreter
    calls it), from the ``Linear``'s integer sums."""
    v = chain.steps[0].prepared.epilogue(raw)
    for step, inputs in zip(chain.steps[1:], extras):
        (v,) = step.prepared.run(v, *inputs)
        v = v.astype(step.node.outputs[0].type.storage, copy=False)
    return v
