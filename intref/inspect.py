"""``intref inspect``: what a bundle holds, in one screen.

Inputs and outputs with types, shapes and ranges; op counts; parameter count and stored bytes by
type; the integer types of every value; the weight quantization scheme read from the metadata;
which variant of a model the bundle is (for example HF-faithful with the stale hidden-state scale,
or the intended per-layer scales); and any value whose declared type is narrower than its
worst-case range; the kernel paths the load-time plan chose (``intref.plan``).
"""

from __future__ import annotations

from collections import Counter

from .graph import Graph
from .inspect_schemes import describe_schemes
from .plan import plan_summary


def _shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _scale(graph: Graph, name: str) -> str:
    entry = graph.quantization.get(name)
    if entry is None:
        return ""
    scale = entry["scale"]
    return f"scale {scale:.6g}" if isinstance(scale, float) else f"scale per channel ({len(scale)})"


def variant(graph: Graph) -> str:
    meta = graph.metadata
    if "stale_hidden_scale" not in meta:
        return str(meta.get("variant", "not stated"))
    if meta["stale_hidden_scale"]:
        text = "reference-faithful: every layer believes the embedding output's scale (HF #26738 reproduced)"
    else:
        text = "intended pipeline: each layer uses its true input scale"
    return f"{text}; softmax output 0..{meta.get('softmax_output_max', '?')}; constants: {meta.get('derivation', '?')}"


def weight_scheme(graph: Graph) -> str:
    kinds = Counter()
    for name, tensor in graph.tensors.items():
        if not name.endswith((".weight", ".table")) and tensor.data.ndim != 2:
            continue
        entry = graph.quantization.get(name, {})
        granularity = "per channel" if isinstance(entry.get("scale"), list) else "per tensor"
        kinds[f"{tensor.type} {granularity}" + (" (int4 packed)" if tensor.layout == "int4_packed" else "")] += 1
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items())) or "none"


def describe(graph: Graph, source: str = "") -> str:
    lines = []
    add = lines.append
    if source:
        add(f"bundle       {source}")
    producer = ", ".join(f"{k} {v}" for k, v in graph.producer.items())
    add(f"graph        {graph.name}: {len(graph.nodes)} nodes, {len(graph.tensors)} tensors ({producer})")
    add(f"variant      {variant(graph)}")
    add("symbols      " + (", ".join(f"{k} <= {v}" for k, v in graph.symbols.items()) or "none"))
    for i, info in enumerate(graph.inputs):
        rng = f"range [{info.range[0]}, {info.range[1]}]" if info.range else ""
        add(f"{'inputs' if i == 0 else '':<12} {info.name:<22} {info.type.name:<7} {_shape(info.shape):<22} {rng}")
    for i, name in enumerate(graph.outputs):
        value = graph.values[name]
        add(f"{'outputs' if i == 0 else '':<12} {name:<22} {value.type.name:<7} {_shape(value.shape):<22} "
            f"{_scale(graph, name)}")
    ops = Counter(node.op for node in graph.nodes)
    add("ops          " + ", ".join(f"{op} {n}" for op, n in ops.most_common()))
    params = sum(t.data.size for t in graph.tensors.values())
    stored = sum(t.data.nbytes if t.layout == "plain" else (t.data.size + 1) // 2 for t in graph.tensors.values())
    by_type = Counter()
    for t in graph.tensors.values():
        by_type[t.type.name] += t.data.size
    add(f"parameters   {params:,} in {len(graph.tensors)} tensors, {stored:,} bytes stored ("
        + ", ".join(f"{k} {v:,}" for k, v in sorted(by_type.items())) + ")")
    add(f"weights      {weight_scheme(graph)}")
    lines.extend(describe_schemes(graph))     # each GEMM layer's scheme (intref/inspect_schemes.py)
    widths = Counter(graph.values[n].type for n in graph.values if n not in graph.tensors)
    ordered = sorted(widths.items(), key=lambda kv: (not kv[0].signed, kv[0].bits))
    add("bit widths   " + ", ".join(f"{t.name} x{n}" for t, n in ordered))
    add("may overflow " + (", ".join(graph.may_overflow) if graph.may_overflow else "none (every declared type holds "
                                                                                     "its worst case)"))
    for i, line in enumerate(plan_summary(graph)):
        add(f"{'plan' if i == 0 else '':<12} {line}")
    return "\n".join(lines)
