"""graph.json field checks shared by ``bundle.schema`` and ``bundle.quantization``: each raises
``SchemaError`` naming ``graph.json`` and the field path (``nodes[3].attributes.shift: expected an
int, got str``), or ``UnsafePathError`` for a file reference that could leave the bundle."""

from __future__ import annotations

import re

from ..errors import SchemaError, UnsafePathError

FILE = "graph.json"
TENSOR_FILE = re.compile(r"tensors/[A-Za-z0-9_.\-]+\.npy")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_ARTICLE = {"int": "an int", "bool": "a bool", "str": "a string", "list": "a list", "object": "an object",
            "number": "a number"}


def fail(field: str, message: str):
    raise SchemaError(message, path=FILE, field=field)


def json_kind(value) -> str:
    """The JSON kind of a parsed value, as messages name it."""
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "object"}.get(
        type(value), type(value).__name__)


def expect(field: str, value, kind: str):
    ok = {"int": lambda v: type(v) is int, "bool": lambda v: type(v) is bool, "str": lambda v: type(v) is str,
          "list": lambda v: type(v) is list, "object": lambda v: type(v) is dict,
          "number": lambda v: type(v) in (int, float)}[kind](value)
    if not ok:
        fail(field, f"expected {_ARTICLE[kind]}, got {json_kind(value)}")
    return value


def at(field: str, key) -> str:
    return f"{field}[{key}]" if isinstance(key, int) else (f"{field}.{key}" if field else key)


def fields(field: str, value, required, optional=()) -> dict:
    """``value`` must be an object holding every ``required`` key, and no key outside both lists."""
    expect(field or "(top level)", value, "object")
    for key in value:
        if key not in required and key not in optional:
            fail(at(field, key[:100]), f"unknown field (allowed: {', '.join(tuple(required) + tuple(optional))})")
    for key in required:
        if key not in value:
            fail(at(field, key), "required field is missing")
    return value


def int_in(field: str, value, lo: int, hi: int) -> int:
    expect(field, value, "int")
    if not lo <= value <= hi:
        fail(field, f"{value} is outside [{lo}, {hi}]")
    return value


def tensor_file(field: str, value) -> str:
    """A tensor file reference: ``UnsafePathError`` if it could leave the bundle, else the pattern."""
    expect(field, value, "str")
    parts = re.split(r"[/\\]", value)
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value) or ".." in parts or "\x00" in value:
        raise UnsafePathError(f"{value[:200]!r} would leave the bundle (absolute path or ..)", path=FILE, field=field)
    if not TENSOR_FILE.fullmatch(value):
        fail(field, f"{value[:200]!r} does not match {TENSOR_FILE.pattern}")
    return value
