"""Each GEMM layer's quantization scheme, read from the graph itself (for ``intref inspect``).

For every ``Linear`` and ``GroupLinear`` node: the weight's bits, its grouping and the activation
mode, e.g. ``ffn.fc1  w4 in-groups of 64, act token``:

- ``GroupLinear``: input-dimension groups of its ``group_size``.
- ``Linear``: from the weight's scale in the quantization metadata: one scale (``per tensor``), one
  per row (``per channel``), or runs of equal scales over consecutive rows (``out-groups of R rows``,
  ZeroQuant's convention); ``scale not recorded`` when the metadata has none.
- activation: ``token`` when the node's input comes from a ``TokenQuantize`` node, else ``static``.
- the build-time weight quantization (``weights by gptq``), when ``metadata.weight_quant`` records
  it for the node's weight (``intref convert ptq`` does; ``bundle/metadata.py``).
"""

from __future__ import annotations

from .graph import Graph


def _row_grouping(scale) -> str:
    if scale is None:
        return "scale not recorded"
    if not isinstance(scale, list) or len(set(scale)) == 1:
        return "per tensor"
    runs, count = [], 1
    for previous, current in zip(scale, scale[1:]):
        if current == previous:
            count += 1
        else:
            runs.append(count)
            count = 1
    runs.append(count)
    if len(runs) == len(scale):
        return "per channel"
    return f"out-groups of {runs[0]} rows" if len(set(runs)) == 1 else f"{len(runs)} out-groups"


def layer_schemes(graph: Graph) -> list:
    """``(node name, description)`` for every Linear and GroupLinear node, in execution order."""
    producers = {info.name: node.op for node in graph.nodes for info in node.outputs}
    methods = graph.metadata.get("weight_quant", {})
    out = []
    for step in graph.steps:
        node = step.node
        if node.op not in ("Linear", "GroupLinear"):
            continue
        weight = graph.tensors.get(node.inputs[1])
        bits = f"w{weight.type.bits}" if weight is not None else "w?"
        if node.op == "GroupLinear":
            grouping = f"in-groups of {step.attrs['group_size']}"
        else:
            grouping = _row_grouping(graph.quantization.get(node.inputs[1], {}).get("scale"))
        act = "token" if producers.get(node.inputs[0]) == "TokenQuantize" else "static"
        method = f", weights by {methods[node.inputs[1]]}" if node.inputs[1] in methods else ""
        out.append((node.name, f"{bits} {grouping}, act {act}{method}"))
    return out


def describe_schemes(graph: Graph) -> list:
    """The ``inspect`` lines: one per GEMM layer (``none`` when the graph has none)."""
    rows = layer_schemes(graph)
    if not rows:
        return ["layers       none"]
    width = max(len(name) for name, _ in rows)
    return [f"{'layers' if i == 0 else '':<12} {name:<{width}}  {text}" for i, (name, text) in enumerate(rows)]
