"""graph.json, format versions 1 and 2: parse and validate a document into the parts of a ``Graph``.

The schema is written down in ``docs/format.md`` (the quantization section and the scale file:
``bundle.quantization``; the field helpers: ``bundle.fields``). Every check here raises ``SchemaError`` naming
``graph.json`` and the field path (``nodes[3].attributes.shift: expected an int, got str``); a
document that is not an intref graph at all (wrong ``format``, unsupported ``format_version``,
unparseable JSON) raises ``BundleFormatError``. Graph-level checks (names resolve, no cycles, op
legality) are left to ``intref.graph.Graph``. The text level (strict JSON) is ``bundle.jsonio``; the
writer side is ``bundle.write``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from .metadata import check_metadata
from ..errors import BundleFormatError, RangeError
from ..graph import NAME, SYMBOL, Node, ValueInfo
from ..inttypes import INT64_MAX, INT64_MIN, IntType
from ..ops import REGISTRY
from ..ops.base import plain_ints_within
from .fields import FILE, SHA256_HEX, json_kind, tensor_file
from .fields import at as _at, expect as _expect, fail as _fail, fields as _fields, int_in as _int
from .quantization import ScaleFile, parse_quantization, parse_scales

FORMAT = "intref-graph"
FORMAT_VERSION = 2                  # what ``save`` writes
FORMAT_VERSIONS = (1, 2)            # what ``load`` reads; 2 added ``scales`` (a version-1 document may not use it)
TOP_REQUIRED = ("format", "format_version", "producer", "name", "symbols", "inputs", "outputs", "tensors", "nodes")
TOP_OPTIONAL = ("quantization", "scales", "metadata")
OP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
LAYOUTS = ("plain", "int4_packed")
MAX_RANK = 32
MAX_DIM = 1 << 31
MAX_GRAPH_NAME = 200
MAX_ATTRIBUTE_STRING = 256
MAX_METADATA_DEPTH = 64


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
    scales = parse_scales(doc["scales"], doc["format_version"], tensors) if "scales" in doc else None
    quantization = parse_quantization(doc.get("quantization", {}), names, scales)
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

