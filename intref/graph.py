"""The in-memory graph and its load-time analysis.

A ``Graph`` is built from its parts (by ``intref.bundle.load``, by ``intref.build``, or by hand)
and analysed once, at construction:

1. names: every node, graph input, tensor and node output has a unique, well-formed name;
2. order: nodes are put in topological order (stable: file order where it is already legal);
3. use: every graph input and tensor is read by a node, every node contributes to an output;
4. per node, in order: the op exists, its inputs and attributes fit its schema, and its
   ``prepare`` checks types, shapes and int64 safety, builds the kernel params and derives the
   shape and worst-case range of every output (range analysis);
5. declared output shapes must equal the inferred ones; a declared type narrower than the
   worst-case range is legal (hardware may use narrow accumulators) and is listed in
   ``graph.may_overflow``: the run's overflow policy decides what happens if it really does, and
   since ``wrap`` may give any value of the type, the value's range becomes the whole type.

Every defect raises a specific ``GraphError`` subclass naming the node or value.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Optional, Tuple

import numpy as np

from .errors import (ArgumentError, AttributeError_, CycleError, DuplicateNameError, GraphError,
                     MissingValueError, RangeAnalysisError, RangeError, SchemaError, ShapeError,
                     ShapeMismatchError, TypeMismatchError, UnknownOpError, UnusedValueError)
from .inttypes import IntType
from .ops import REGISTRY
from .ops.base import Context, Prepared, Shape, Value

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,199}")
SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class ValueInfo:
    """A named runtime tensor: a graph input or a node output.

    ``shape`` may be ``None`` for node outputs (then it is inferred); ``range`` optionally narrows
    a graph input's legal values within its type (token ids: ``(0, vocab - 1)``).
    """

    name: str
    type: IntType
    shape: Optional[Shape] = None
    range: Optional[Tuple[int, int]] = None


@dataclass(frozen=True)
class Tensor:
    """A stored constant. ``data`` holds its values in the type's storage dtype (read-only);
    ``layout`` says how it is stored on disk (``plain`` or ``int4_packed``). ``source`` is set when
    ``data`` maps a file that may still change (a directory bundle): an object whose ``check()``
    raises if the file is no longer what was loaded (``intref.bundle.mapped.FileStamp``)."""

    name: str
    type: IntType
    data: np.ndarray
    layout: str = "plain"
    source: Optional[object] = field(default=None, compare=False, repr=False)

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(int(d) for d in self.data.shape)


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: Tuple[str, ...]
    outputs: Tuple[ValueInfo, ...]
    attributes: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One node ready to run: its parsed attributes and the op's prepared function."""

    node: Node
    attrs: Mapping[str, object]
    prepared: Prepared


class Graph:
    """A validated integer graph, ready to run (``intref.run``)."""

    def __init__(self, *, name: str, inputs, outputs, nodes, tensors=(), symbols=None, quantization=None,
                 metadata=None, producer=None):
        self.name = name
        tensors = tuple(tensors)
        self.symbols: Mapping[str, int] = MappingProxyType(dict(symbols or {}))
        self.inputs: Tuple[ValueInfo, ...] = tuple(inputs)
        self.outputs: Tuple[str, ...] = tuple(outputs)
        self.tensors: Mapping[str, Tensor] = MappingProxyType({t.name: t for t in tensors})
        self.quantization = MappingProxyType(dict(quantization or {}))
        self.metadata = MappingProxyType(dict(metadata or {}))
        self.producer = MappingProxyType(dict(producer or {}))
        if len(self.tensors) != len(tensors):
            raise DuplicateNameError("two tensors share a name")
        self.steps, self.values, self.may_overflow = _analyse(self, tuple(nodes))
        from .fusion import find_chains      # the plan's fused chains (they read the analysed graph)
        from .fusion_attention import find_attention
        self.chains = find_chains(self) + find_attention(self)

    @property
    def nodes(self) -> Tuple[Node, ...]:
        """The nodes in execution (topological) order."""
        return tuple(step.node for step in self.steps)

    def check_storage(self) -> None:
        """Raise ``TensorFileError`` if a memory-mapped tensor file changed since it was loaded (the
        interpreter calls this before and after every run: a changed file never gives silently
        different values, and a truncated one is reported before it is read)."""
        for tensor in self.tensors.values():
            if tensor.source is not None:
                tensor.source.check()



def _analyse(graph: Graph, nodes: Tuple[Node, ...]):
    _check_names(graph, nodes)
    ordered = _topological_order(graph, nodes)
    _check_use(graph, ordered)
    values = {}
    for info in graph.inputs:
        lo, hi = info.range if info.range is not None else (info.type.lo, info.type.hi)
        values[info.name] = Value(info.name, info.type, tuple(info.shape), lo, hi)
    for t in graph.tensors.values():
        lo, hi = (int(t.data.min()), int(t.data.max())) if t.data.size else (0, 0)
        if t.data.dtype != t.type.storage or not t.type.lo <= lo <= hi <= t.type.hi:
            raise TypeMismatchError(f"tensor {t.name!r} of type {t.type} holds {t.data.dtype} values in "
                                    f"[{lo}, {hi}]; expected {t.type.storage} values in [{t.type.lo}, {t.type.hi}]",
                                    node=t.name)
        values[t.name] = Value(t.name, t.type, t.shape, lo, hi, data=t.data)
    steps, may_overflow = [], []
    for node in ordered:
        step, outs = _prepare_node(node, values, graph.symbols)
        for info, value in outs:
            lo, hi = value.lo, value.hi
            if lo < info.type.lo or hi > info.type.hi:  # the run's policy decides; wrap may give any value
                may_overflow.append(info.name)
                lo, hi = info.type.lo, info.type.hi
            values[info.name] = Value(info.name, info.type, value.shape, lo, hi)
        steps.append(step)
    return tuple(steps), MappingProxyType(values), tuple(may_overflow)


def _prepare_node(node: Node, values, symbols):
    op = REGISTRY.get(node.op)
    if op is None:
        raise UnknownOpError(f"unknown op {node.op!r}; known ops: {', '.join(sorted(REGISTRY))}", node=node.name)
    lo, hi = op.input_count_range()
    if not lo <= len(node.inputs) <= hi:
        raise GraphError(f"{op.name} takes {lo}..{hi} inputs ({', '.join(op.inputs)}), got {len(node.inputs)}",
                         node=node.name)
    if len(node.outputs) != len(op.outputs):
        raise GraphError(f"{op.name} has {len(op.outputs)} outputs ({', '.join(op.outputs)}), "
                         f"the node declares {len(node.outputs)}", node=node.name)
    attrs = MappingProxyType(op.parse_attributes(node.name, node.attributes))
    inputs = tuple(values[name] for name in node.inputs)
    try:
        ctx = Context(node.name, symbols)
        prepared = op.prepare(ctx, dict(attrs), inputs, tuple(o.type for o in node.outputs))
    except RangeError as exc:  # a kernel's params refused the ranges (int64 safety): name the node
        raise RangeAnalysisError(str(exc), node=node.name) from exc
    except ShapeError as exc:  # e.g. a per-channel attribute whose length is not the channel count
        raise ShapeMismatchError(str(exc), node=node.name) from exc
    except ArgumentError as exc:
        raise AttributeError_(str(exc), node=node.name) from exc
    outs = []
    for info, result in zip(node.outputs, prepared.results):
        if info.shape is not None and tuple(info.shape) != tuple(result.shape):
            raise ShapeMismatchError(f"output {info.name!r} is declared with shape {list(info.shape)} but "
                                     f"{op.name} gives {list(result.shape)}", node=node.name)
        outs.append((info, Value(info.name, info.type, tuple(result.shape), result.lo, result.hi)))
    return Step(node, attrs, prepared), outs


def _check_names(graph: Graph, nodes) -> None:
    seen = {}
    for symbol, size in graph.symbols.items():
        if not isinstance(symbol, str) or not SYMBOL.fullmatch(symbol) or isinstance(size, bool) \
                or not isinstance(size, int) or not 1 <= size <= 1 << 31:
            raise SchemaError(f"symbol {symbol!r}: needs a legal name and a maximum size in 1..2**31, got {size!r}")

    def claim(name, what):
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise SchemaError(f"{what} name {name!r} is not a legal name (letters, digits, _ . : -; at most 200)")
        if name in seen:
            raise DuplicateNameError(f"{what} {name!r} has the same name as a {seen[name]}", node=name)
        seen[name] = what

    for info in graph.inputs:
        claim(info.name, "graph input")
        for d in info.shape or ():
            if isinstance(d, str) and d not in graph.symbols:
                raise SchemaError(f"graph input {info.name!r}: dimension {d!r} is not a declared symbol "
                                  f"(declared: {sorted(graph.symbols)})")
            if not isinstance(d, str) and (isinstance(d, bool) or not isinstance(d, int) or d < 0):
                raise SchemaError(f"graph input {info.name!r}: dimension {d!r} is not a size >= 0 or a symbol")
        if info.range is not None and not info.type.lo <= info.range[0] <= info.range[1] <= info.type.hi:
            raise TypeMismatchError(f"graph input {info.name!r}: range {list(info.range)} is not within "
                                    f"{info.type} [{info.type.lo}, {info.type.hi}]", node=info.name)
        if info.shape is None:
            raise SchemaError(f"graph input {info.name!r} needs a shape")
    for name in graph.tensors:
        claim(name, "tensor")
    node_names = set()
    for node in nodes:
        if node.name in node_names:
            raise DuplicateNameError(f"two nodes are named {node.name!r}", node=node.name)
        if not isinstance(node.name, str) or not NAME.fullmatch(node.name):
            raise SchemaError(f"node name {node.name!r} is not a legal name")
        node_names.add(node.name)
        for info in node.outputs:
            claim(info.name, f"output of node {node.name!r}")
    if len(set(graph.outputs)) != len(graph.outputs):
        raise DuplicateNameError("a graph output is listed twice")
    for name in graph.outputs:
        if name not in seen:
            raise MissingValueError(f"graph output {name!r} is not produced by any node or input", node=name)


def _topological_order(graph: Graph, nodes) -> Tuple[Node, ...]:
    producer = {info.name: node for node in nodes for info in node.outputs}
    available = {info.name for info in graph.inputs} | set(graph.tensors)
    for node in nodes:
        for name in node.inputs:
            if name not in available and name not in producer:
                raise MissingValueError(f"input {name!r} is not a graph input, tensor or node output", node=node.name)
    # Kahn's algorithm with a heap of file positions: always the first ready node in file order (a legal
    # file order is kept as it is), in O(nodes * log(nodes) + edges).
    waiting = [{name for name in node.inputs if name not in available} for node in nodes]
    readers = {}
    for index, names in enumerate(waiting):
        for name in names:
            readers.setdefault(name, []).append(index)
    ready = [index for index, names in enumerate(waiting) if not names]
    heapq.heapify(ready)
    ordered = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        ordered.append(node)
        for info in node.outputs:
            for index in readers.pop(info.name, ()):
                waiting[index].discard(info.name)
                if not waiting[index]:
                    heapq.heappush(ready, index)
    if len(ordered) < len(nodes):
        stuck = next(index for index, names in enumerate(waiting) if names)
        raise CycleError(f"nodes form a cycle (e.g. through {nodes[stuck].name!r}, which waits for "
                         f"{[i for i in nodes[stuck].inputs if i in waiting[stuck]]})", node=nodes[stuck].name)
    return tuple(ordered)


def _check_use(graph: Graph, ordered) -> None:
    needed = set(graph.outputs)
    for node in reversed(ordered):
        if any(info.name in needed for info in node.outputs):
            needed.update(node.inputs)
        else:
            raise UnusedValueError(f"no output of node {node.name!r} reaches a graph output", node=node.name)
    for name in list(graph.tensors) + [info.name for info in graph.inputs]:
        if name not in needed:
            what = "tensor" if name in graph.tensors else "graph input"
            raise UnusedValueError(f"{what} {name!r} is never used", node=name)


def dequantize(graph: Graph, name: str, array: np.ndarray) -> np.ndarray:
    """Real values of ``array`` (value ``name`` of ``graph``) for people: ``array * scale``.

    The scale comes from the graph's quantization metadata (per tensor, or per channel along the
    entry's ``axis``, default the last). This is the one place a float touches a runtime value,
    and it is never fed back.
    """
    entry = graph.quantization.get(name)
    if entry is None:
        raise MissingValueError(f"value {name!r} has no scale in the graph's quantization metadata", node=name)
    real = np.asarray(array).astype(np.float64)
    scale = np.asarray(entry["scale"], dtype=np.float64)
    if scale.ndim:
        shape = [1] * real.ndim
        shape[entry.get("axis", -1)] = scale.size
        scale = scale.reshape(shape)
    return real * scale
