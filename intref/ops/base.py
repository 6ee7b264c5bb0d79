"""The op interface: how an op declares its schema and prepares one node at load time.

An op is declared once: its input names (a trailing ``?`` marks an optional input), its output
names and its attribute schema. At load time the graph analysis calls ``prepare`` once per node
with what it knows about the inputs (integer type, symbolic shape, worst-case range, and the data
when the input is a stored tensor). ``prepare`` checks everything that can be checked before any
data arrives (types, shapes, attribute legality, int64 safety of the kernel's intermediates),
builds the kernel's frozen params, and returns:

- one ``Result`` per output: its shape (ints and symbols such as ``"seq"``) and worst-case range;
- ``run``: a pure function from the input arrays to the output arrays. It holds no state that
  changes between calls and never writes into its inputs; only the interpreter stores values.

Errors raised by ``prepare`` are ``GraphError`` subclasses that name the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Tuple, Union

import numpy as np

from ..errors import AttributeError_, GraphError, ShapeMismatchError, TypeMismatchError
from ..inttypes import IntType

Dim = Union[int, str]
Shape = Tuple[Dim, ...]
REQUIRED = object()


@dataclass(frozen=True)
class Attr:
    """An attribute's schema.

    kind: ``int``, ``bool``, ``str``, ``ints`` (a list of ints), ``int_or_ints`` (per tensor or per
    channel), ``dims`` (a list of ints and symbol names). ``lo``/``hi`` bound every int;
    ``choices`` lists the legal values of a ``str`` (or ``int``).
    """

    kind: str
    default: object = REQUIRED
    choices: tuple = ()
    lo: Optional[int] = None
    hi: Optional[int] = None
    doc: str = ""

    def kind_mismatch(self, value) -> Optional[str]:
        """``None`` when ``value`` is of this attribute's kind, else ``"expected <kind>, got <kind>"``.

        The one definition of the kinds: the bundle schema checks graph.json's values with it (and
        names the JSON field), ``Op.parse_attributes`` checks any builder's values (and names the node)."""
        if _KIND_TESTS[self.kind](value):
            return None
        return f"expected {KIND_NAMES[self.kind]}, got {value_kind(value)}"


@dataclass(frozen=True)
class Value:
    """What load-time analysis knows about one input of a node."""

    name: str
    type: IntType
    shape: Shape
    lo: int
    hi: int
    data: Optional[np.ndarray] = None  # the stored tensor's values, for constant inputs

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class Context:
    """What ``prepare`` may know besides its inputs: the node's name (for errors) and the largest
    size each symbolic dimension may take (declared by the graph; feeds are checked against it)."""

    node: str
    symbols: Mapping[str, int]

    def dim_max(self, dim: Dim) -> int:
        return dim if isinstance(dim, int) else self.symbols[dim]

    def fail(self, cls, message: str):
        """Raise ``cls`` (a ``GraphError`` subclass) naming this node."""
        raise cls(message, node=self.node)


@dataclass(frozen=True)
class Result:
    """What ``prepare`` derives for one output: shape and worst-case range ``[lo, hi]``."""

    shape: Shape
    lo: int
    hi: int


@dataclass(frozen=True)
class Prepared:
    """``path`` names the kernel path the node's plan chose at load time (``intref inspect`` and
    ``intref run --profile`` show it); empty for ops with a single path. ``outputs_in_type``: the
    op proved, from its input TYPES (which bound every value the interpreter can pass, overrides
    included), that every output value lies in its declared output type; the interpreter then
    converts the outputs to their storage dtype without scanning them for the overflow policy
    (nothing can be out of the type). IGelu and ILayerNorm, where it is a proof, say so in ``path``;
    Requantize, ResidualAdd and ISoftmax fit their results to the type by definition and always set it."""

    results: Tuple[Result, ...]
    run: Callable[..., Tuple[np.ndarray, ...]]
    path: str = ""
    outputs_in_type: bool = False
    # Fused row chains (``intref.fusion``). ``carrier(x, *others)``: the op on one block of rows whose
    # first input holds exact integers in any dtype (float64 between fused ops), returning its exact
    # output values (float64 or the storage dtype) or None where a proof fails on this block (the chain
    # then runs the block's integer path). Set only where the op's result never needs the run's
    # overflow policy. ``gemm`` (``Linear``): the BLAS result of a whole input, exact integers in float,
    # with ``epilogue(raw rows)`` the integer rows ``run`` returns and ``carrier(raw rows)`` them as float64.
    # ``ISoftmax``'s carrier has the fused attention's contract instead (``intref.fusion_attention``):
    # ``carrier(scores in float32, mask block or None)``, the probabilities in an integer dtype.
    carrier: Optional[Callable[..., Optional[np.ndarray]]] = None
    gemm: Optional[Callable[[np.ndarray], np.ndarray]] = None
    epilogue: Optional[Callable[[np.ndarray], np.ndarray]] = None


class Op:
    """Base class of the ops; subclasses set the class attributes and implement ``prepare``."""

    name: str = ""
    inputs: Tuple[str, ...] = ()
    outputs: Tuple[str, ...] = ("y",)
    attributes: Mapping[str, Attr] = {}

    def prepare(self, ctx: Context, attrs: dict, inputs: Tuple[Value, ...],
                out_types: Tuple[IntType, ...]) -> Prepared:
        raise NotImplementedError

    # --- schema checks, run by the graph analysis before ``prepare`` ---

    def input_count_range(self) -> Tuple[int, int]:
        required = sum(1 for n in self.inputs if not n.endswith("?"))
        return required, len(self.inputs)

    def parse_attributes(self, node: str, given: Mapping[str, object]) -> dict:
        """Validate ``given`` against the schema and fill in defaults."""
        unknown = sorted(set(given) - set(self.attributes))
        if unknown:
            raise AttributeError_(f"{self.name} has no attribute {unknown[0]!r} (known: "
                                  f"{', '.join(sorted(self.attributes)) or 'none'})", node=node)
        parsed = {}
        for key, spec in self.attributes.items():
            if key not in given:
                if spec.default is REQUIRED:
                    raise AttributeError_(f"{self.name} requires attribute {key!r}", node=node)
                parsed[key] = spec.default
                continue
            parsed[key] = _check_attr(node, self.name, key, spec, given[key])
        return parsed


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_ints(v) -> bool:
    return plain_ints_within(v) or (isinstance(v, (list, tuple)) and all(_is_int(x) for x in v))


def plain_ints_within(values, lo=None, hi=None) -> bool:
    """True when ``values`` is a list or tuple of plain Python ints (``type(v) is int``: no bool)
    all within ``[lo, hi]`` (a bound of None is open). Checked by C-level ``map``/``min``/``max``, not
    one element at a time in Python: the fast answer for long per-channel lists. False says only
    "not this fast case": the caller then checks element by element and names the offender."""
    if type(values) not in (list, tuple) or not set(map(type, values)) <= {int}:
        return False
    return not values or ((lo is None or min(values) >= lo) and (hi is None or max(values) <= hi))


KIND_NAMES = {"int": "an int", "bool": "a bool", "str": "a string", "ints": "a list of ints",
              "int_or_ints": "an int or a list of ints", "dims": "a list of ints and symbol names"}
_KIND_TESTS = {"int": _is_int, "bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str),
               "ints": _is_ints, "int_or_ints": lambda v: _is_int(v) or _is_ints(v),
               "dims": lambda v: isinstance(v, (list, tuple)) and all(_is_int(x) or isinstance(x, str) for x in v)}


def value_kind(value) -> str:
    """A value's kind as messages name it (JSON's names): int, bool, str, float, null, object, or
    ``list of int/str`` naming the kinds of a list's items."""
    if isinstance(value, (list, tuple)):
        return f"list of {'/'.join(sorted({value_kind(v) for v in value}))}" if value else "list"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if _is_int(value):
        return "int"
    if value is None:
        return "null"
    return {float: "float", str: "str", dict: "object"}.get(type(value), type(value).__name__)


def _check_attr(node, op, key, spec: Attr, value):
    where = f"{op} attribute {key!r}"
    mismatch = spec.kind_mismatch(value)
    if mismatch:
        raise AttributeError_(f"{where}: {mismatch}"[:300], node=node)

    def bounded(v):
        if (spec.lo is not None and v < spec.lo) or (spec.hi is not None and v > spec.hi):
            raise AttributeError_(f"{where} = {v} is outside [{spec.lo}, {spec.hi}]", node=node)
        return int(v)

    if spec.choices and value not in spec.choices:
        raise AttributeError_(f"{where} = {value!r} is not one of {list(spec.choices)}", node=node)
    if spec.kind in ("bool", "str"):
        return value
    if _is_int(value):
        return bounded(value)
    if spec.kind == "dims":
        return tuple(v if isinstance(v, str) else int(v) for v in value)
    if plain_ints_within(value, spec.lo, spec.hi):
        return tuple(value)
    return tuple(bounded(v) for v in value)


# --- helpers shared by the ops ---------------------------------------------------------------------

def require_type(node: str, what: str, value: Value, *, signed=None, max_bits: int = 64, min_bits: int = 1) -> None:
    """Require ``value``'s integer type to have the given signedness and a width within bounds."""
    t = value.type
    if (signed is not None and t.signed != signed) or not min_bits <= t.bits <= max_bits:
        want = {True: "signed ", False: "unsigned ", None: ""}[signed]
        raise TypeMismatchError(f"{what} {value.name!r} has type {t}; expected a {want}type of "
                                f"{min_bits}..{max_bits} bits", node=node)


def require_rank(node: str, what: str, value: Value, lo: int, hi: int = 64) -> None:
    if not lo <= value.rank <= hi:
        raise ShapeMismatchError(f"{what} {value.name!r} has rank {value.rank} (shape {list(value.shape)}); "
                                 f"expected rank {lo}..{hi}", node=node)


def same_dim(a: Dim, b: Dim) -> bool:
    """Two dims are known equal: equal ints or the same symbol."""
    return a == b and type(a) is type(b)


def broadcast_dims(node: str, a: Shape, b: Shape) -> Shape:
    """NumPy broadcasting of symbolic shapes: dims must be equal or one of them 1."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if same_dim(x, y) or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ShapeMismatchError(f"shapes {list(a)} and {list(b)} do not broadcast (axis -{i}: {x} vs {y})",
                                     node=node)
    return tuple(reversed(out))


def channel_count(node: str, what: str, value: Value) -> int:
    """The concrete length of ``value``'s last axis (per-channel parameters need it known)."""
    if value.rank == 0 or not isinstance(value.shape[-1], int):
        raise ShapeMismatchError(f"{what} {value.name!r} needs a concrete last axis, has shape "
                                 f"{list(value.shape)}", node=node)
    return value.shape[-1]


def per_channel(node: str, key: str, value, channels: int):
    """An ``int_or_ints`` attribute as an int or a tuple of exactly ``channels`` ints (another length
    does not fit the input's last axis: ``ShapeMismatchError``)."""
    if isinstance(value, tuple) and len(value) not in (1, channels):
        raise ShapeMismatchError(f"attribute {key!r} has {len(value)} values; expected 1 or {channels} "
                                 f"(one per channel of the last axis)", node=node)
    if isinstance(value, tuple) and len(value) == 1:
        return value[0]
    return value


def reraise_as_graph_error(node: str, exc: Exception, cls=GraphError):
    """Turn a kernel or params error raised while preparing a node into a ``GraphError`` naming it."""
    raise cls(str(exc), node=node) from exc
