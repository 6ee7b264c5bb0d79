"""graph.json, format versions 1 and 2: parse and validate a document into the parts of a ``Graph``.

The schema is written down in ``docs/format.md``. Every check here raises ``SchemaError`` naming
``graph.json`` and the field path (``nodes[3].attributes.shift: expected an int, got str``); a
document that is not an intref graph at all (wrong ``format``, unsupported ``format_version``,
unparseable JSON) raises ``BundleFormatError``. Graph-level checks (names resolve, no cycles, op
legality) are left to ``intref.graph.Graph``. The text level (strict JSON) is ``bundle.jsonio``; the
writer side is ``bundle.write``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from .metadata import check_metadata
from ..errors import BundleFormatError, RangeError, SchemaError, UnsafePathError
from ..graph import NAME, SYMBOL, Node, ValueInfo
from ..inttypes import INT64_MAX, INT64_MIN, IntType
from ..ops import REGISTRY
from ..ops.base import plain_ints_within
from .npy import SCALES_LAYOUT

FILE = "graph.json"
FORMAT = "intref-graph"
FORMAT_VERSION = 2                  # what ``save`` writes
FORMAT_VERSIONS = (1, 2)            # what ``load`` reads; 2 added ``scales`` (a version-1 document may not use it)
TOP_REQUIRED = ("format", "format_version", "producer", "name", "symbols", "inputs", "outputs", "tensors", "nodes")
TOP_OPTIONAL = ("quantization", "scales", "metadata")
MAX_SCALES = 1 << 31
TENSOR_FILE = re.compile(r"tensors/[A-Za-z0-9_.\-]+\.npy")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
OP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
LAYOUTS = ("plain", "int4_packed")
MAX_RANK = 32
MAX_DIM = 1 << 31
MAX_GRAPH_NAME = 200
MAX_ATTRIBUTE_STRING = 256
MAX_METADATA_DEPTH = 64
_ARTICLE = {"int": "an int", "bool": "a bool", "str": "a string", "list": "a list", "object": "an object",
            "number": "a number"}


@dataclass(frozen=True)
class TensorEntry:
    """One ``tensors[i]`` entry: what the file must hold (read by ``bundle.npy``)."""

    name: str
    type: IntType
    shape: Tuple[int, ...]
    file: str
    sha256: str
    layout: str


@dataclass(frozen=True)
class ScaleFile:
    """graph.json's ``scales``: the bundle's float64 scale file, ``[count]`` finite values that
    ``quantization`` entries slice (read by ``bundle.npy`` with the tensor files' checks)."""

    file: str
    sha256: str
    count: int
    name: str = "scales"
    type: str = "float64"
    layout: str = SCALES_LAYOUT

    @property
    def shape(self) -> Tuple[int]:
        return (self.count,)


@dataclass(frozen=True)
class ScaleSlice:
    """A ``quantization`` scale written as ``{"offset": o, "count": n}``: values ``o .. o+n-1`` of the scale file."""

    offset: int
    count: int


@dataclass(frozen=True)
class GraphDocument:
    """A validated graph.json: everything a ``Graph`` needs except the tensor data."""

    name: str
    producer: Mapping[str, str]
    symbols: Mapping[str, int]
    inputs: Tuple[ValueInfo, ...]
    outputs: Tuple[str, ...]
    tensors: Tuple[TensorEntry, ...]
    nodes: Tuple[Node, ...]
    quantization: Mapping[str, dict]
    metadata: Mapping[str, object]
    scales: Optional[ScaleFile] = None


# --- field helpers ---------------------------------------------------------------------------------

def _fail(field: str, message: str):
    raise SchemaError(message, path=FILE, field=field)


def json_kind(value) -> str:
    """The JSON kind of a parsed value, as messages name it."""
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "object"}.get(
        type(value), type(value).__name__)


def _expect(field: str, value, kind: str):
    ok = {"int": lambda v: type(v) is int, "bool": lambda v: type(v) is bool, "str": lambda v: type(v) is str,
          "list": lambda v: type(v) is list, "object": lambda v: type(v) is dict,
          "number": lambda v: type(v) in (int, float)}[kind](value)
    if not ok:
        _fail(field, f"expected {_ARTICLE[kind]}, got {json_kind(value)}")
    return value


def _at(field: str, key) -> str:
    return f"{field}[{key}]" if isinstance(key, int) else (f"{field}.{key}" if field else key)


def _fields(field: str, value, required, optional=()) -> dict:
    """``value`` must be an object holding every ``required`` key, and no key outside both lists."""
    _expect(field or "(top level)", value, "object")
    for key in value:
        if key not in required and key not in optional:
            _fail(_at(field, key[:100]), f"unknown field (allowed: {', '.join(tuple(required) + tuple(optional))})")
    for key in required:
        if key not in value:
            _fail(_at(field, key), "required field is missing")
    return value


def _int(field: str, value, lo: int, hi: int) -> int:
    _expect(field, value, "int")
    if not lo <= value <= hi:
        _fail(field, f"{value} is outside [{lo}, {hi}]")
    return value


def _name(field: str, value) -> str:
    _expect(field, value, "str")
    if not NAME.fullmatch(value):
        _fail(field, f"{value[:220]!r} is not a legal name (1..200 of A-Z a-z 0-9 _ . : -, not starting with . : -)")
    return value


def _type(field: str, value) -> IntType:
    _expect(field, value, "str")
    try:
        return IntType.parse(value)
    except RangeError:
        _fail(field, f"{value[:40]!r} is not an integer type (int1..int64, uint1..uint64)")


def _shape(field: str, value, symbols: Mapping[str, int], *, allow_symbols: bool) -> tuple:
    _expect(field, value, "list")
    if len(value) > MAX_RANK:
        _fail(field, f"rank {len(value)} is above the maximum {MAX_RANK}")
    dims = []
    for i, dim in enumerate(value):
        if allow_symbols and type(dim) is str:
            if dim not in symbols:
                _fail(_at(field, i), f"{dim[:70]!r} is not a declared symbol (declared: {sorted(symbols)})")
            dims.append(dim)
        elif allow_symbols and type(dim) is not int:
            _fail(_at(field, i), f"expected an int or a symbol name, got {json_kind(dim)}")
        else:
            dims.append(_int(_at(field, i), dim, 0, MAX_DIM))
    return tuple(dims)


# --- the document ----------------------------------------------------------------------------------

def check_format(doc) -> None:
    """``BundleFormatError`` unless ``doc`` is an intref graph of a version this code reads."""
    if type(doc) is not dict:
        raise BundleFormatError(f"the top level is {json_kind(doc)}, not an object", path=FILE)
    if doc.get("format") != FORMAT:
        raise BundleFormatError(f"format is {str(doc.get('format'))[:80]!r}, expected {FORMAT!r}", path=FILE,
                                field="format")
    version = doc.get("format_version")
    if type(version) is not int or version not in FORMAT_VERSIONS:
        raise BundleFormatError(f"unsupported format_version {str(version)[:40]!r}; this intref reads "
                                f"{' and '.join(map(str, FORMAT_VERSIONS))}", path=FILE, field="format_version")


def parse_document(doc) -> GraphDocument:
    """Validate a parsed graph.json and return its parts (tensors not yet read)."""
    check_format(doc)
    _fields("", doc, TOP_REQUIRED, TOP_OPTIONAL)
    producer, name = _producer(doc["producer"]), _graph_name(doc["name"])
    symbols = _symbols(doc["symbols"])
    inputs = tuple(_input(_at("inputs", i), v, symbols) for i, v in enumerate(_expect("inputs", doc["inputs"], "list")))
    _check_symbols_used(symbols, inputs)
    outputs = tuple(_name(_at("outputs", i), v) for i, v in enumerate(_expect("outputs", doc["outputs"], "list")))
    tensors = _tensors(doc["tensors"])
    nodes = tuple(_node(_at("nodes", i), v, symbols) for i, v in enumerate(_expect("nodes", doc["nodes"], "list")))
    names = {v.name for v in inputs} | {t.name for t in tensors} | {o.name for n in nodes for o in n.outputs}
    scales = _scales(doc["scales"], doc["format_version"], tensors) if "scales" in doc else None
    quantization = _quantization(doc.get("quantization", {}), names, scales)
    metadata = _expect("metadata", doc.get("metadata", {}), "object")
    _check_depth("metadata", metadata, 0)
    check_metadata(metadata, frozenset(t.name for t in tensors))
    return GraphDocument(name, producer, symbols, inputs, outputs, tensors, nodes, quantization, metadata, scales)


def _check_depth(field: str, value, depth: int) -> None:
    if depth > MAX_METADATA_DEPTH:
        _fail(field, f"nested more than {MAX_METADATA_DEPTH} levels deep")
    items = value.items() if type(value) is dict else enumerate(value) if type(value) is list else ()
    for key, item in items:
        _check_depth(_at(field, key), item, depth + 1)


def _graph_name(value) -> str:
    _expect("name", value, "str")
    if not 1 <= len(value) <= MAX_GRAPH_NAME or not value.isprintable():
        _fail("name", f"must be 1..{MAX_GRAPH_NAME} printable characters")
    return value


def _producer(value) -> dict:
    _expect("producer", value, "object")
    if "name" not in value:
        _fail("producer.name", "required field is missing")
    for key, item in value.items():
        _expect(_at("producer", key), item, "str")
    if not value["name"]:
        _fail("producer.name", "must not be empty")
    return dict(value)


def _symbols(value) -> dict:
    _expect("symbols", value, "object")
    for symbol, size in value.items():
        if not SYMBOL.fullmatch(symbol):
            _fail(_at("symbols", symbol[:70]), "not a legal symbol name (A-Z a-z 0-9 _, not starting with a digit)")
        _int(_at("symbols", symbol), size, 1, MAX_DIM)
    return dict(value)


def _check_symbols_used(symbols, inputs) -> None:
    used = {d for info in inputs for d in info.shape if isinstance(d, str)}
    for symbol in symbols:
        if symbol not in used:
            _fail(_at("symbols", symbol), "declared but used by no graph input's shape")


def _input(field: str, value, symbols) -> ValueInfo:
    _fields(field, value, ("name", "type", "shape"), ("range",))
    name, int_type = _name(_at(field, "name"), value["name"]), _type(_at(field, "type"), value["type"])
    shape = _shape(_at(field, "shape"), value["shape"], symbols, allow_symbols=True)
    bounds = None
    if "range" in value:
        where = _at(field, "range")
        if type(value["range"]) is not list or len(value["range"]) != 2:
            _fail(where, f"expected a list [lo, hi], got {json_kind(value['range'])}")
        lo, hi = (_int(_at(where, i), v, int_type.lo, int_type.hi) for i, v in enumerate(value["range"]))
        if lo > hi:
            _fail(where, f"lo {lo} is above hi {hi}")
        bounds = (lo, hi)
    return ValueInfo(name, int_type, shape, bounds)


def _tensors(value) -> Tuple[TensorEntry, ...]:
    entries, files = [], {}
    for i, item in enumerate(_expect("tensors", value, "list")):
        entry = _tensor(_at("tensors", i), item)
        if entry.file.lower() in files:
            first = files[entry.file.lower()]
            _fail(_at(_at("tensors", i), "file"), f"{entry.file!r} is already the file of tensors[{first}] "
                                                   f"(names must differ, ignoring case)")
        files[entry.file.lower()] = i
        entries.append(entry)
    return tuple(entries)


def _tensor(field: str, value) -> TensorEntry:
    _fields(field, value, ("name", "type", "shape", "file", "sha256", "layout"))
    name, int_type = _name(_at(field, "name"), value["name"]), _type(_at(field, "type"), value["type"])
    shape = _shape(_at(field, "shape"), value["shape"], {}, allow_symbols=False)
    file = tensor_file(_at(field, "file"), value["file"])
    sha = _expect(_at(field, "sha256"), value["sha256"], "str")
    if not SHA256_HEX.fullmatch(sha):
        _fail(_at(field, "sha256"), "expected 64 lowercase hex digits")
    layout = _expect(_at(field, "layout"), value["layout"], "str")
    if layout not in LAYOUTS:
        _fail(_at(field, "layout"), f"{layout[:40]!r} is not one of {list(LAYOUTS)}")
    if layout == "int4_packed" and (int_type != IntType(4) or not shape):
        _fail(_at(field, "layout"), f"int4_packed needs type int4 and rank >= 1, got {int_type} of rank {len(shape)}")
    return TensorEntry(name, int_type, shape, file, sha, layout)


def tensor_file(field: str, value) -> str:
    """A tensor file reference: ``UnsafePathError`` if it could leave the bundle, else the pattern."""
    _expect(field, value, "str")
    parts = re.split(r"[/\\]", value)
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value) or ".." in parts or "\x00" in value:
        raise UnsafePathError(f"{value[:200]!r} would leave the bundle (absolute path or ..)", path=FILE, field=field)
    if not TENSOR_FILE.fullmatch(value):
        _fail(field, f"{value[:200]!r} does not match {TENSOR_FILE.pattern}")
    return value


def _node(field: str, value, symbols) -> Node:
    _fields(field, value, ("name", "op", "inputs", "outputs"), ("attributes",))
    name = _name(_at(field, "name"), value["name"])
    op = _expect(_at(field, "op"), value["op"], "str")
    if not OP_NAME.fullmatch(op):
        _fail(_at(field, "op"), f"{op[:70]!r} is not a legal op name (a letter, then letters, digits, _)")
    where = _at(field, "inputs")
    inputs = tuple(_name(_at(where, i), v) for i, v in enumerate(_expect(where, value["inputs"], "list")))
    where = _at(field, "outputs")
    outputs = tuple(_node_output(_at(where, i), v, symbols)
                    for i, v in enumerate(_expect(where, value["outputs"], "list")))
    attributes = _attributes(_at(field, "attributes"), value.get("attributes", {}), op)
    return Node(name, op, inputs, outputs, attributes)


def _node_output(field: str, value, symbols) -> ValueInfo:
    _fields(field, value, ("name", "type"), ("shape",))
    shape = None
    if "shape" in value:
        shape = _shape(_at(field, "shape"), value["shape"], symbols, allow_symbols=True)
    return ValueInfo(_name(_at(field, "name"), value["name"]), _type(_at(field, "type"), value["type"]), shape)


def _attributes(field: str, value, op: str) -> dict:
    """Attribute values: int (int64), bool, string, or a list of ints and strings. Where the op and
    the attribute are known, the JSON kind must also fit the attribute's declared kind."""
    _expect(field, value, "object")
    schema = REGISTRY[op].attributes if op in REGISTRY else {}
    parsed = {}
    for key, item in value.items():
        where = _at(field, key)
        if not ATTRIBUTE_NAME.fullmatch(key):
            _fail(where, "not a legal attribute name (A-Z a-z 0-9 _, not starting with a digit)")
        parsed[key] = _attribute_value(where, item)
        mismatch = schema[key].kind_mismatch(item) if key in schema else None
        if mismatch:
            _fail(where, mismatch)
    return parsed


def _attribute_value(field: str, value):
    kind = json_kind(value)
    if kind == "int":
        return _int(field, value, INT64_MIN, INT64_MAX)
    if kind == "str" and len(value) > MAX_ATTRIBUTE_STRING:
        _fail(field, f"a string of {len(value)} characters (at most {MAX_ATTRIBUTE_STRING})")
    if kind in ("bool", "str"):
        return value
    if kind != "list":
        _fail(field, f"expected an int, bool, string or list of ints and strings, got {kind}")
    if plain_ints_within(value, INT64_MIN, INT64_MAX):
        return tuple(value)
    for i, item in enumerate(value):
        if type(item) is int:
            _int(_at(field, i), item, INT64_MIN, INT64_MAX)
        elif type(item) is not str or len(item) > MAX_ATTRIBUTE_STRING:
            _fail(_at(field, i), f"expected an int or a string of at most {MAX_ATTRIBUTE_STRING} characters, "
                                 f"got {json_kind(item)}")
    return tuple(value)


def _scales(value, version: int, tensors) -> ScaleFile:
    """The top-level ``scales`` (format version 2): ``file`` (a tensor-file path no tensor uses),
    ``sha256`` and ``count`` (1..2**31 float64 values)."""
    if version < 2:
        _fail("scales", f"needs format_version 2 (the document says {version})")
    _fields("scales", value, ("file", "sha256", "count"))
    file = tensor_file("scales.file", value["file"])
    for i, entry in enumerate(tensors):
        if entry.file.lower() == file.lower():
            _fail("scales.file", f"{file!r} is already the file of tensors[{i}] (names must differ, ignoring case)")
    sha = _expect("scales.sha256", value["sha256"], "str")
    if not SHA256_HEX.fullmatch(sha):
        _fail("scales.sha256", "expected 64 lowercase hex digits")
    return ScaleFile(file, sha, _int("scales.count", value["count"], 1, MAX_SCALES))


def _scale_slice(field: str, value, scales: Optional[ScaleFile]) -> ScaleSlice:
    _fields(field, value, ("offset", "count"))
    if scales is None:
        _fail(field, "a slice of the scale file, but the document has no top-level scales")
    offset = _int(_at(field, "offset"), value["offset"], 0, scales.count - 1)
    count = _int(_at(field, "count"), value["count"], 1, scales.count - offset)
    return ScaleSlice(offset, count)


def _quantization(value, names, scales: Optional[ScaleFile] = None) -> dict:
    _expect("quantization", value, "object")
    parsed = {}
    for name, entry in value.items():
        field = _at("quantization", name[:220])
        if name not in names:
            _fail(field, "names no graph input, tensor or node output")
        _fields(field, entry, ("scale",), ("axis",))
        scale = entry["scale"]
        if type(scale) is dict:
            parsed_scale = _scale_slice(_at(field, "scale"), scale, scales)
        elif type(scale) is list:
            if not scale:
                _fail(_at(field, "scale"), "an empty list of scales")
            if set(map(type, scale)) == {float} and all(map(math.isfinite, scale)):
                parsed_scale = list(scale)      # the common case, checked in C; else one by one, naming the index
            else:
                parsed_scale = [_finite(_at(_at(field, "scale"), i), s) for i, s in enumerate(scale)]
        else:
            parsed_scale = _finite(_at(field, "scale"), scale)
        parsed[name] = {"scale": parsed_scale}
        if "axis" in entry:
            axis = _int(_at(field, "axis"), entry["axis"], -64, 63)
            if type(scale) not in (list, dict):
                _fail(_at(field, "axis"), "an axis applies only to a list (or slice) of per-channel scales")
            parsed[name]["axis"] = axis
    return parsed


def _finite(field: str, value) -> float:
    _expect(field, value, "number")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float64
        number = math.inf
    if not math.isfinite(number):
        _fail(field, f"{str(value)[:40]} is not a finite float64")
    return number


def resolve_scales(quantization: Mapping[str, dict], values) -> dict:
    """``quantization`` with every ``ScaleSlice`` replaced by its list of Python floats from ``values``
    (the scale file's float64 array, already checked finite and of the declared count)."""
    out = {}
    for name, entry in quantization.items():
        scale = entry["scale"]
        if isinstance(scale, ScaleSlice):
            entry = {**entry, "scale": values[scale.offset:scale.offset + scale.count].tolist()}
        out[name] = entry
    return out


def check_quantization_shapes(quantization: Mapping[str, dict], values) -> None:
    """A per-channel scale list has 1 entry or one per element of the value's concrete ``axis``
    (default -1, the last)."""
    for name, entry in quantization.items():
        scale = entry["scale"]
        if not isinstance(scale, list):
            continue
        shape, axis = values[name].shape, entry.get("axis", -1)
        if not -len(shape) <= axis < len(shape):
            _fail(_at(_at("quantization", name), "axis"), f"axis {axis} is outside a value of shape {list(shape)}")
        if len(scale) == 1:
            continue
        dim: Optional[object] = shape[axis]
        if not isinstance(dim, int) or dim != len(scale):
            _fail(_at(_at("quantization", name), "scale"), f"{len(scale)} per-channel scales, but the value's shape "
                                                            f"is {list(shape)} (its axis {axis} must have {len(scale)})")
