"""The execution plan a graph compiles at load time, and the per-node profile of a run.

Each op's ``prepare`` picks, once per node, the fastest kernel path that the node's input TYPES
(and its stored tensors) prove exact for every legal input, and records it in
``Prepared.path``: for GEMMs ``float32 x1 -> int32`` (one sgemm over the whole K),
``float32 K-chunks of C``, ``float64``, ``int64`` or ``scan`` (the general data-scanned kernel);
for requantization ``int64 add-shift`` (the product plus half a unit fits int64: one add, one
shift), ``int64`` (the product fits int64), ``split32 add-shift`` / ``split32`` (two int64 words)
or ``split95`` (the general 95-bit product), and for a per-tensor ``Requantize`` of an 8- or 16-bit
input ``table (N entries, by <path>)`` (that path's result for every value of the type, read back by
index); for the softmax ``exp table (N entries)`` (exp codes read from a table built at load time)
or ``i-exp``; ``IGelu`` and ``ILayerNorm`` say
``output proven in <type>`` when every output of every legal input lies in the declared type, and the
interpreter then skips its min/max scan of that output (``Prepared.outputs_in_type``). Types, not the analysed ranges, carry the proofs
because every value the interpreter holds fits its type (overrides included) while an override
may leave an analysed range.

The plan also holds the graph's fused chains (``graph.chains``): row chains (``intref.fusion``), a
``Linear`` whose one BLAS call is exact and the elementwise ops after it, run block by block on exact
integers carried in float64 (an ``IGelu``'s path says whether it is carried in float64 or int64); and
fused attentions (``intref.fusion_attention``), scores > softmax > context with the scores and the
probabilities carried in float32.

``intref inspect`` prints ``plan_summary``; ``intref inspect --plan`` and ``intref run
--profile`` print one line per node, and one per chain.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import List, NamedTuple, Sequence, Tuple

from .graph import Graph


class PlanEntry(NamedTuple):
    node: str
    op: str
    path: str


def plan(graph: Graph) -> Tuple[PlanEntry, ...]:
    """Every node in execution order with the path its plan chose ("" for single-path ops)."""
    return tuple(PlanEntry(step.node.name, step.node.op, step.prepared.path) for step in graph.steps)


def plan_summary(graph: Graph) -> List[str]:
    """One line per op that has several paths: how many nodes took each."""
    counts = defaultdict(Counter)
    for entry in plan(graph):
        if entry.path:
            counts[entry.op][entry.path] += 1
    lines = [f"{op}: " + ", ".join(f"{path} x{n}" for path, n in paths.most_common())
             for op, paths in sorted(counts.items())]
    kinds = Counter(chain.node.op for chain in graph.chains)
    if kinds:
        lines.append(f"fused chains: {len(graph.chains)} (" +
                     ", ".join(f"{kind} x{n}" for kind, n in kinds.most_common()) + ")")
    return lines


def format_plan(graph: Graph) -> List[str]:
    """One line per node, then one per fused chain with its nodes' paths."""
    return ([f"{e.node:<32} {e.op:<12} {e.path or '-'}" for e in plan(graph)]
            + [f"{chain.node.name}  {chain.node.op}  {chain.prepared.path}" for chain in graph.chains])


def format_profile(timings: Sequence[tuple]) -> List[str]:
    """The ``profile`` list of ``intref.run``: per op type (total, share, nodes), then per node; a
    fused chain is one timed entry, followed by its nodes marked ``fused``."""
    total = sum(seconds for _, seconds in timings) or 1e-12
    by_op, nodes = Counter(), Counter()
    for step, seconds in timings:
        by_op[step.node.op] += seconds
        nodes[step.node.op] += 1
    width = max([14] + [len(op) for op in by_op])                       # "Fused(Linear>...)" names are long
    lines = [f"total {total * 1e3:.1f} ms over {len(timings)} nodes", f"{'op':<{width}} {'ms':>9} {'share':>6} nodes"]
    lines += [f"{op:<{width}} {s * 1e3:>9.2f} {s / total:>6.1%} {nodes[op]:>5}" for op, s in by_op.most_common()]
    lines.append(f"{'node':<32} {'op':<12} {'ms':>8}  path")
    for step, seconds in timings:
        lines.append(f"{step.node.name:<32} {step.node.op:<12} {seconds * 1e3:>8.2f}  {step.prepared.path or '-'}")
        lines += [f"  {member.node.name:<30} {member.node.op:<12} {'fused':>8}  {member.prepared.path or '-'}"
                  for member in getattr(step, "steps", ())]     # a fused chain's nodes
    return lines
