"""Fused attention: ``MatMul`` (scores) -> ``ISoftmax`` -> ``MatMul`` (context), block by block, with the
scores and the probabilities held in float32 between them.

Unfused, a base-size layer at 1 x 512 converts 3.1 million scores from the sgemm's float32 to int32,
reads them into int64 for the softmax, writes the probabilities as uint16, converts them back to
float32 for the next sgemm, and runs that sgemm in two K-chunks because the probabilities' TYPE
(uint9) allows 511 where the softmax never gives more than ``output_max`` (256). Fused, each block of
rows goes

    s = Q_block @ K^T          float32, exact integers (the bound below)
    p = softmax(s)             the ISoftmax carrier: j = max(row) - s in float32, exact; then the
                               table path's own steps on j (``softmax_from_distances``)
    out_block = p @ V          float32, exact: p is in [0, output_max] BY CONSTRUCTION, since nothing
                               can override a value inside a chain, so the sgemm's bound uses it

and the only integers written are the context's. Each is the unfused value, bit for bit:

- the scores GEMM is planned from its operand TYPES (``kernels.gemm_plan``): ``|s| <= B`` with
  ``B = max|a| * max|b| * K <= 2**23``, so every partial sum is exact in float32 and so is each row's
  ``max(row) - s <= 2 * B <= 2**24``; ``B`` also lies inside the scores' declared type, so the
  unfused run's overflow policy never acts on a score;
- the softmax reads the same integers: a padding mask (0 or the scores' minimum) sets the masked
  scores to that minimum in float32 (``ISoftmax``'s carrier says why the table index stays the
  integer kernel's), and a block under any other mask value (an additive bias) takes the op's
  integer path; rows are independent, so a block of rows (of one or of several heads) gives the
  rows of the whole;
- the context GEMM's plan takes ``output_max`` for the probabilities' magnitude, and its result
  bound lies inside the context's declared type (so again no overflow policy acts).

Found once, at load time (``find_attention``): the scores and the probabilities each have that one
reader and are not graph outputs, every operand is at least 3-D with the same leading axes (no
broadcast batch), the softmax has its table path and no causal mask, and the bounds above hold. A
run fuses them under the same rule as the row chains (``intref.fusion``: not with ``trace``,
``verbose``, ``fuse=False`` or an override of a value inside). tests/graph/test_fusion_attention.py
pins fused to unfused runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .fusion import Chain, ChainPath, sole_readers
from .graph import Graph, Step
from .kernels.gemm import FLOAT32_EXACT
from .kernels.gemm_plan import GemmPlan, matmul_planned, plan_gemm, type_magnitude

# One float32 block of scores: 512 KB (the fastest of 256 KB to 4 MB at 1 x 512 in a scratch
# prototype: 15.8 ms a layer against 16.4 at 256 KB and 17.2 at 2 MB; 21.4 ms unfused).
ATTENTION_BLOCK_BYTES = 1 << 19


@dataclass(frozen=True)
class AttentionChain(Chain):
    """``steps``: the scores ``MatMul``, the ``ISoftmax`` and the context ``MatMul``; ``context_plan``:
    the context GEMM's plan from the probabilities' proven range. ``names`` and ``node`` are
    ``intref.fusion.Chain``'s, for the interpreter and the profile."""

    context_plan: GemmPlan
    context_path: str

    @property
    def prepared(self) -> ChainPath:
        scores, softmax, _ = self.steps
        return ChainPath(f"fused attention, float32 carried: scores {scores.prepared.path}; "
                         f"{softmax.prepared.path}; context {self.context_path} "
                         f"(probabilities proven in [0, {softmax.attrs['output_max']}])")

    def run(self, values: dict) -> np.ndarray:
        return run_attention(self, values)


def find_attention(graph: Graph) -> Tuple[AttentionChain, ...]:
    """Every scores > softmax > context triple of the graph that fuses (module docstring)."""
    sole = sole_readers(graph)

    def only_reader(step: Step, op: str) -> Optional[Step]:
        """The ``op`` step that reads ``step``'s value, once and as its first input, or None."""
        (value,) = [info.name for info in step.node.outputs]
        reader = sole.get(value)
        return reader if reader is not None and reader.node.op == op and reader.node.inputs[0] == value else None

    chains = []
    for scores in graph.steps:
        if scores.node.op != "MatMul":
            continue
        softmax = only_reader(scores, "ISoftmax")
        context = softmax and only_reader(softmax, "MatMul")
        if context is None or softmax.prepared.carrier is None:
            continue
        plan = _context_plan(graph, scores, softmax, context)
        if plan is not None:
            chains.append(AttentionChain((scores, softmax, context), *plan))
    return tuple(chains)


def _context_plan(graph: Graph, scores: Step, softmax: Step, context: Step) -> Optional[Tuple[GemmPlan, str]]:
    """The context GEMM's float32 plan and its description, or None where the triple does not fuse
    (module docstring)."""
    values = graph.values
    a, b = (values[name] for name in scores.node.inputs)
    v = values[context.node.inputs[1]]
    s_type, c_type = (values[step.node.outputs[0].name].type for step in (scores, context))
    lead = a.shape[:-2]
    if len(a.shape) < 3 or b.shape[:-2] != lead or v.shape[:-2] != lead:
        return None
    def dim(d):                          # a symbol's largest value
        return d if isinstance(d, int) else graph.symbols[d]

    k_scores = dim(a.shape[-1])
    score_bound = type_magnitude(a.type.lo, a.type.hi) * type_magnitude(b.type.lo, b.type.hi) * k_scores
    if 2 * score_bound > FLOAT32_EXACT or score_bound > min(s_type.hi, -s_type.lo):
        return None
    keys_axis = -1 if context.attrs["transpose_b"] else -2
    k_context = dim(v.shape[keys_axis])
    product = softmax.attrs["output_max"] * type_magnitude(v.type.lo, v.type.hi)
    plan = plan_gemm(product, product * k_context, k_context, product * k_context)
    if plan.path != "float32" or product * k_context > min(c_type.hi, -c_type.lo):
        return None
    return plan, plan.describe(k_context)


def run_attention(chain: AttentionChain, values: dict) -> np.ndarray:
    """The context, in its storage dtype, from the values the three ops read."""
    scores, softmax, context = chain.steps
    a, b = (values[name] for name in scores.node.inputs)
    q = a.astype(np.float32)
    k = (np.swapaxes(b, -1, -2) if scores.attrs["transpose_b"] else b).astype(np.float32)    # [..., d, keys]
    v = values[context.node.inputs[1]]
    v = (np.swapaxes(v, -1, -2) if context.attrs["transpose_b"] else v).astype(np.float32)   # [..., keys, dv]
    mask = values[softmax.node.inputs[1]] if len(softmax.node.inputs) > 1 else None
    *lead, queries, _ = q.shape
    keys = k.shape[-1]
    if mask is not None and np.any(mask):    # its own shape, 1 on the axes it broadcasts over
        mask = mask.reshape((1,) * (len(lead) + 2 - mask.ndim) + mask.shape)
    else:
        mask = None
    out = np.empty((*lead, queries, v.shape[-1]), dtype=context.node.outputs[0].type.storage)
    heads_per_block, rows = _blocking(lead[-1], queries, keys)
    for outer in np.ndindex(*lead[:-1]):
        for h in range(0, lead[-1], heads_per_block):
            heads = outer + (slice(h, h + heads_per_block),)
            for r in range(0, queries, rows):
                block = heads + (slice(r, r + rows),)
                s = np.matmul(q[block], k[heads])                              # float32 [G, R, keys]
                p = softmax.prepared.carrier(s, None if mask is None else mask[_on(mask.shape, block)])
                out[block] = matmul_planned(p.astype(np.float32), v[heads], chain.context_plan)
    return out


def _on(shape: tuple, block: tuple) -> tuple:
    """``block``'s index on an array of ``shape`` that broadcasts to the scores: on an axis of length 1
    an integer index takes its one entry and a slice keeps it whole, so the block has the scores
    block's rank and broadcasts to it as the whole mask does."""
    return tuple(index if n != 1 else (0 if isinstance(index, int) else slice(None))
                 for n, index in zip(shape, block))


def _blocking(heads: int, queries: int, keys: int) -> Tuple[int, int]:
    """``(heads, query rows)`` per block: whole heads while one holds at most ``ATTENTION_BLOCK_BYTES``
    of float32 scores, else row blocks of one head."""
    per_head = queries * keys * 4
    if per_head <= ATTENTION_BLOCK_BYTES:
        return max(1, min(heads, ATTENTION_BLOCK_BYTES // max(per_head, 1))), max(queries, 1)
    return 1, max(1, ATTENTION_BLOCK_BYTES // (keys * 4))
