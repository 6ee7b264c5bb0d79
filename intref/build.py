"""``GraphBuilder``: construct an integer graph node by node.

    b = GraphBuilder("tiny", symbols={"batch": 8, "seq": 32})
    ids = b.input("input_ids", "int32", ["batch", "seq"], range=(0, 999))
    table = b.tensor("word_table", table_int8, scale=0.02)
    x = b.add("Embedding", [ids, table], "int8", name="word", scale=0.02)
    b.output(x)
    graph = b.build(producer={"name": "my-exporter"})

Each ``add`` appends one node with one output (named after the node unless ``out_name`` says
otherwise) and returns that output's name. ``scale=`` records the real scale of a value in the
graph's quantization metadata (a float, or one per channel of the last axis); it is never read by
an op. ``build`` validates the whole graph (``intref.graph.Graph``) and raises the first defect.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .errors import DuplicateNameError, SchemaError, TypeMismatchError
from .graph import Graph, Node, Tensor, ValueInfo
from .inttypes import IntType, smallest_type


def _type(t) -> IntType:
    return t if isinstance(t, IntType) else IntType.parse(t)


def scale_entry(scale, axis: int = -1) -> dict:
    """The quantization metadata of one value: ``{"scale": s}``, or ``{"scale": [..], "axis": a}``
    with one scale per index of axis ``a`` (-1 for activations, 0 for the rows of a weight)."""
    array = np.asarray(scale, dtype=np.float64)
    if array.ndim == 0:
        return {"scale": float(array)}
    if array.ndim != 1:
        raise SchemaError(f"a scale must be a float or a 1-D per-channel list, got shape {array.shape}")
    return {"scale": [float(v) for v in array], "axis": int(axis)}


class GraphBuilder:
    def __init__(self, name: str, *, symbols: Optional[dict] = None):
        self.name = name
        self.symbols = dict(symbols or {})
        self.inputs, self.outputs, self.nodes, self.tensors = [], [], [], []
        self.quantization = {}
        self._names = set()

    def _claim(self, name: str) -> str:
        if name in self._names:
            raise DuplicateNameError(f"{name!r} is already used in graph {self.name!r}", node=name)
        self._names.add(name)
        return name

    def _record_scale(self, name: str, scale, axis: int = -1) -> None:
        if scale is not None:
            self.quantization[name] = scale_entry(scale, axis)

    def input(self, name: str, type, shape: Sequence, *, range=None, scale=None) -> str:
        """Declare a graph input: integer ``type`` (``"int8"`` or an ``IntType``), shape of ints and
        symbols, optional legal ``range`` (lo, hi) within the type."""
        rng = None if range is None else (int(range[0]), int(range[1]))
        self.inputs.append(ValueInfo(self._claim(name), _type(type), tuple(shape), rng))
        self._record_scale(name, scale)
        return name

    def tensor(self, name: str, data: np.ndarray, type=None, *, layout: str = "plain", scale=None,
               scale_axis: int = -1) -> str:
        """Store a constant. ``type`` defaults to int4 for the ``int4_packed`` layout, else to the
        dtype's own type (int8 data -> int8). A value outside the type is refused
        (``TypeMismatchError``), never wrapped. Per-channel ``scale`` runs along ``scale_axis``
        (0 for the output rows of an ``[N, K]`` weight)."""
        data = np.asarray(data)
        if data.dtype.kind not in "iu":
            raise SchemaError(f"tensor {name!r}: data must be an integer array, got {data.dtype}")
        if type is None:
            type = IntType(4) if layout == "int4_packed" else IntType(data.dtype.itemsize * 8, data.dtype.kind == "i")
        t = _type(type)
        if data.size and not t.lo <= int(data.min()) <= int(data.max()) <= t.hi:
            raise TypeMismatchError(f"tensor {name!r}: values in [{int(data.min())}, {int(data.max())}] do not fit "
                                    f"{t} [{t.lo}, {t.hi}]", node=name)
        stored = np.ascontiguousarray(data.astype(t.storage))   # exact: every value fits
        stored.setflags(write=False)
        self.tensors.append(Tensor(self._claim(name), t, stored, layout))
        self._record_scale(name, scale, scale_axis)
        return name

    def add(self, op: str, inputs: Sequence[str], out_type, *, name: str, attributes: Optional[dict] = None,
            out_name: Optional[str] = None, scale=None) -> str:
        """Append a node ``name`` running ``op`` on ``inputs``; its one output is ``out_name``
        (default: the node's name) of integer type ``out_type``. Returns the output name."""
        output = name if out_name is None else out_name
        if output != name:
            self._claim(name)
        self._claim(output)
        info = ValueInfo(output, _type(out_type))
        self.nodes.append(Node(name, op, tuple(inputs), (info,), dict(attributes or {})))
        self._record_scale(output, scale)
        return output

    def output(self, *names: str) -> None:
        self.outputs.extend(names)

    def build(self, *, producer: Optional[dict] = None, metadata: Optional[dict] = None) -> Graph:
        from ._version import __version__
        producer = dict(producer or {"name": "intref.build"})
        producer.setdefault("intref_version", __version__)
        return Graph(name=self.name, inputs=self.inputs, outputs=self.outputs, nodes=self.nodes,
                     tensors=self.tensors, symbols=self.symbols, quantization=self.quantization,
                     metadata=metadata or {}, producer=producer)


def type_for_range(lo: int, hi: int) -> IntType:
    """The narrowest integer type that holds ``[lo, hi]`` (unsigned when ``lo >= 0``)."""
    return smallest_type(lo, hi)
