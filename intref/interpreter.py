"""Run a graph on integer feeds: in topological order, call, fit to the declared type, record.

    values = checked feeds + stored tensors
    for each step:  outputs = step.run(inputs)
                    each output: check its shape, fit it to its declared type under the
                    overflow policy, store it in its storage dtype
                    release every value no later step reads (not with trace=True)
    return the graph outputs (every value with trace=True)

Overflow policy (per run): ``check`` raises ``OverflowCheckError`` naming the node, the first
element index and its exact value; ``saturate`` clamps; ``wrap`` keeps the low bits (two's
complement). It applies where a value meets its declared type; ops that clamp by definition
(Requantize, ResidualAdd, ISoftmax) clamp inside the op as their attributes say.
"""

from __future__ import annotations

import sys
from time import perf_counter
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from . import _checks
from .errors import FeedError, IntrefError, format_index
from .graph import Graph, Step, ValueInfo
from .heap import keep_freed_pages
from .inttypes import OVERFLOW_MODES, IntType
from .kernels.requant import fit_to_type
from .ops import REGISTRY
from .ops.base import Context


def run(graph: Graph, feeds: Mapping[str, np.ndarray], *, overflow: str = "check", trace: bool = False,
        verbose: bool = False, log=None, overrides: Mapping[str, np.ndarray] = None, progress=None,
        profile: list = None, fuse: bool = True) -> dict:
    """Run ``graph`` on ``feeds`` (name -> integer array). Returns the outputs, or every value.

    ``overrides`` (node output name -> array) replaces a node's result by a given one before any
    later node reads it: "what does this node compute from the hardware's (or a reference's) own
    upstream values". Each override must have the value's shape and fit its declared type.
    ``progress`` (an ``intref.progress.Progress``, or any callable) hears ``("run", done, total, node)``
    after each node. ``profile``: a list that receives one ``(step, seconds)`` per node, the op
    call and the fit of its outputs (``intref.plan.format_profile`` prints it); a fused chain is one
    entry. ``fuse``: run the graph's fused chains (``intref.fusion``, ``intref.fusion_attention``: the
    same values, bit for bit) where no value inside one is asked for (``trace``, ``verbose``,
    ``overrides``).

    The first call in a process sets glibc's malloc to keep freed pages (``intref.heap``;
    ``INTREF_MALLOC=system`` opts out).
    """
    if overflow not in OVERFLOW_MODES:
        raise IntrefError(f"overflow={overflow!r} is not one of {', '.join(OVERFLOW_MODES)}")
    keep_freed_pages()   # once per process: NumPy's temporaries reuse pages instead of faulting (intref.heap)
    log = log or (lambda line: print(line, file=sys.stderr))
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {o.name for node in graph.nodes for o in node.outputs})
    if unknown:
        raise FeedError(f"overrides name no node output: {unknown[:5]}")
    values, bindings = check_feeds(graph, feeds)
    graph.check_storage()
    values.update({name: t.data for name, t in graph.tensors.items()})
    inside, tails = fused_chains(graph, fuse and not trace and not verbose, overrides)
    released = {} if trace else last_reads(graph, tails)
    for number, step in enumerate(graph.steps, 1):
        if step.node.name in inside:       # computed by its chain, at the chain's last node
            if progress is not None:
                progress("run", number, len(graph.steps), step.node.name)
            continue
        start = perf_counter() if profile is not None else 0.0
        chain = tails.get(step.node.name)
        if chain is not None:
            results = _run_fused(graph, chain, values, overflow)
        else:
            results = run_node(graph, step, [values[name] for name in step.node.inputs], overflow,
                               overrides=overrides)
        for info, array in zip(step.node.outputs, results):
            values[info.name] = array
            _check_shape(step.node.name, info.name, array, graph.values[info.name].shape, bindings)
            if verbose:
                log(describe(step.node.name, step.node.op, info.name, info.type, values[info.name]))
        for name in released.get(number - 1, ()):
            values.pop(name, None)      # a value made inside a fused chain was never stored
        if profile is not None:
            profile.append((chain or step, perf_counter() - start))
        if progress is not None:
            progress("run", number, len(graph.steps), step.node.name)
    graph.check_storage()   # a file rewritten during the run: its values are not returned
    if trace:
        return {name: values[name] for name in values if name not in graph.tensors}
    return {name: values[name] for name in graph.outputs}


def fused_chains(graph: Graph, fuse: bool, overrides: Mapping[str, np.ndarray]):
    """``(names computed inside a chain, {last node name: chain})`` for the chains this run fuses:
    none unless ``fuse``, and none whose values an override replaces."""
    if not fuse:
        return frozenset(), {}
    chains = [chain for chain in graph.chains
              if not any(info.name in overrides for step in chain.steps for info in step.node.outputs)]
    return (frozenset(name for chain in chains for name in chain.names[:-1]),
            {chain.names[-1]: chain for chain in chains})


def last_reads(graph: Graph, tails: Mapping[str, object]) -> dict:
    """``{step index: names}``: the values the run may drop once that step has run, because no later
    step reads them. A node inside a fused chain reads its inputs when the chain runs, at its last
    node (``tails``, from ``fused_chains``). Graph outputs and stored tensors are kept; a value nobody
    reads goes right after the step that made it. Dropping them lets NumPy reuse their memory for
    the next temporaries: a base model at 1 x 512 otherwise holds every layer's scores to the end,
    and its heap grows and faults in fresh pages on every run."""
    index = {step.node.name: i for i, step in enumerate(graph.steps)}
    at = {name: index[chain.names[-1]] for chain in tails.values() for name in chain.names}
    last = {}
    for i, step in enumerate(graph.steps):
        when = at.get(step.node.name, i)
        for info in step.node.outputs:
            last.setdefault(info.name, when)
        for name in step.node.inputs:
            last[name] = max(last.get(name, when), when)
    keep = set(graph.outputs) | set(graph.tensors)
    released = {}
    for name, i in last.items():
        if name not in keep:
            released.setdefault(i, []).append(name)
    return released


def _run_fused(graph: Graph, chain, values: dict, overflow: str) -> Tuple[np.ndarray, ...]:
    """The chain's last output; an error inside it is raised again by the unfused nodes, so that it
    names the node and the index as a run without fusion would."""
    try:
        return (chain.run(values),)
    except IntrefError:
        inner = dict(values)
        for step in chain.steps:
            results = run_node(graph, step, [inner[name] for name in step.node.inputs], overflow)
            inner.update((info.name, array) for info, array in zip(step.node.outputs, results))
        return results


def run_node(graph: Graph, step: Step, inputs: Sequence[np.ndarray], overflow: str, *,
             attributes: Optional[Mapping[str, object]] = None,
             overrides: Optional[Mapping[str, np.ndarray]] = None) -> Tuple[np.ndarray, ...]:
    """One node of ``run``: call it on ``inputs`` and fit each output to its declared type under
    ``overflow``. ``overrides`` (output name -> array) replaces an output by a given one, checked
    against its type. ``attributes`` re-prepares the node with some attributes replaced (verify's
    hints: "would another rounding dialect have produced the dump?")."""
    prepared = step.prepared
    if attributes:
        prepared = REGISTRY[step.node.op].prepare(Context(step.node.name, graph.symbols), {**step.attrs, **attributes},
                                                  tuple(graph.values[name] for name in step.node.inputs),
                                                  tuple(info.type for info in step.node.outputs))
    fitted = []
    for info, array in zip(step.node.outputs, prepared.run(*inputs)):
        where = f"node {step.node.name!r} output {info.name!r}"
        if overrides and info.name in overrides:
            array = _override(info, overrides[info.name], where)   # checked against the type: no scan needed
        elif prepared.outputs_in_type:
            fitted.append(array.astype(info.type.storage, copy=False))   # proven at load time (ops.base.Prepared)
            continue
        fitted.append(fit(array, info.type, overflow, where=where))
    return tuple(fitted)


def _override(info: ValueInfo, array, where: str) -> np.ndarray:
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iu" or array.dtype == np.uint64:
        raise FeedError(f"override of {where}: expected an integer ndarray, got {getattr(array, 'dtype', type(array))}")
    bad = _checks.first_outside(array, info.type.lo, info.type.hi)
    if bad is not None:
        raise FeedError(f"override of {where}: element {format_index(bad)} = {int(array[bad])} is outside {info.type}")
    return array


def fit(array: np.ndarray, out_type: IntType, overflow: str, *, where: str) -> np.ndarray:
    """``array`` as ``out_type``'s storage dtype, applying the overflow policy to values outside it."""
    if array.dtype == out_type.storage:
        if np.iinfo(array.dtype).bits == out_type.bits:
            return array  # every value of the storage dtype is a value of the type
        if array.size and out_type.lo <= array.min() and array.max() <= out_type.hi:
            return array  # already inside the type: nothing to clamp, wrap or report, no int64 copy
    return fit_to_type(array.astype(np.int64, copy=False), out_type, overflow, where)


def check_feeds(graph: Graph, feeds: Mapping[str, np.ndarray]):
    """Validate the feeds against the graph inputs; return (values, symbol bindings)."""
    if not isinstance(feeds, Mapping):
        raise FeedError(f"feeds must be a mapping of input name to array, got {type(feeds).__name__}")
    expected = {info.name: info for info in graph.inputs}
    missing = sorted(set(expected) - set(feeds))
    unexpected = sorted(set(feeds) - set(expected))
    if missing or unexpected:
        raise FeedError(f"feeds do not match the graph inputs: missing {missing}, unexpected {unexpected} "
                        f"(inputs: {sorted(expected)})")
    values, bindings = {}, {}
    for name, info in expected.items():
        values[name] = _check_feed(info, feeds[name], bindings, graph.symbols)
    return values, bindings


def _check_feed(info: ValueInfo, array, bindings: dict, symbols) -> np.ndarray:
    where = f"feed {info.name!r}"
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iu":
        kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise FeedError(f"{where}: expected an integer ndarray of type {info.type}, got {kind}")
    if len(array.shape) != len(info.shape):
        raise FeedError(f"{where}: rank {array.ndim} (shape {list(array.shape)}), expected shape {list(info.shape)}")
    for axis, (dim, size) in enumerate(zip(info.shape, array.shape)):
        if isinstance(dim, str):
            bound = bindings.setdefault(dim, size)
            if bound != size:
                raise FeedError(f"{where}: axis {axis} ({dim!r}) has size {size} but {dim!r} = {bound} elsewhere")
            if not 1 <= size <= symbols[dim]:  # the analysis assumes 1 <= size <= the declared maximum
                raise FeedError(f"{where}: axis {axis} ({dim!r}) has size {size}, "
                                + (f"above the graph's maximum {symbols[dim]}" if size else "but a symbol is >= 1"))
        elif dim != size:
            raise FeedError(f"{where}: axis {axis} has size {size}, expected {dim}")
    lo, hi = info.range if info.range is not None else (info.type.lo, info.type.hi)
    bad = _checks.first_outside(array, lo, hi)
    if bad is not None:
        raise FeedError(f"{where}: element {format_index(bad)} = {int(array[bad])} is outside the declared "
                        f"range [{lo}, {hi}] of {info.type}")
    return array.astype(info.type.storage, copy=False)


def _check_shape(node: str, name: str, array: np.ndarray, shape, bindings: dict) -> None:
    expected = tuple(bindings.get(d, d) if isinstance(d, str) else d for d in shape)
    if array.shape != expected:
        raise IntrefError(  # an op broke its own shape inference: an intref bug, never silent
            f"node {node!r}: output {name!r} has shape {list(array.shape)}, analysis said {list(expected)}")


def describe(node: str, op: str, name: str, out_type: IntType, array: np.ndarray) -> str:
    """The verbose line: node, op, value, type, shape, [min, max]."""
    lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
    return f"{node:<28} {op:<12} {name:<28} {out_type.name:<7} {str(list(array.shape)):<18} [{lo}, {hi}]"
