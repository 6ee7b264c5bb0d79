"""graph.json as text: strict parsing and the canonical writing.

Parsing is strict so that two readers can never see two different documents in one file: UTF-8
only, no duplicate keys, no ``NaN``/``Infinity``, no number that overflows float64 (each raises
``BundleFormatError``). Writing is canonical so that one document always gives the same bytes:
two-space indentation, one key per line in the order the document holds them, a list of scalars on
one line, ASCII only (``\\uXXXX`` escapes), floats as Python's shortest round-trip ``repr``, a final
newline.
"""

from __future__ import annotations

import json
import math

from ..errors import BundleFormatError

FILE = "graph.json"


def parse_json(raw: bytes, path: str = FILE):
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity, no float overflow to inf.

    Floats are parsed by the C scanner's own ``float`` (a Python hook per number costs more than
    the parse); a literal that overflowed is then an ``inf`` in the result (NaN and Infinity are
    refused while parsing), found by ``holds_infinity``, and only then is the text parsed again with
    a per-number hook, which names the offending literal."""
    document = _parse(raw, path, strict_floats=False)
    return _parse(raw, path, strict_floats=True) if holds_infinity(document) else document


def holds_infinity(document) -> bool:
    """Whether an infinite float lies anywhere in a parsed document (C-level passes over each
    container: a long list of numbers is never walked element by element in Python)."""
    pending = [[document]]          # containers only (the document itself may be a bare number)
    while pending:
        value = pending.pop()
        items = list(value.values()) if type(value) is dict else value
        kinds = set(map(type, items))
        if float in kinds:
            floats = items if kinds == {float} else [item for item in items if type(item) is float]
            if not all(map(math.isfinite, floats)):
                return True
        if dict in kinds or list in kinds:
            pending.extend(item for item in items if type(item) in (dict, list))
    return False


def _parse(raw: bytes, path: str, *, strict_floats: bool):
    def pairs(items):
        seen = {}
        for key, value in items:
            if key in seen:
                raise _Reject(f"duplicate key {key!r} in one object")
            seen[key] = value
        return seen

    def number(text):
        value = float(text)
        if not math.isfinite(value):
            raise _Reject(f"number {text[:40]} does not fit a float64")
        return value

    def constant(text):
        raise _Reject(f"{text} is not JSON")

    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=pairs, parse_float=number if strict_floats else float,
                          parse_constant=constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError and _Reject are ValueErrors
        raise BundleFormatError(f"not valid JSON: {exc}"[:500], path=path) from None


class _Reject(ValueError):
    pass


def dumps_canonical(document) -> bytes:
    """The canonical text of a JSON document (see the module docstring)."""
    return (_dump(document, "") + "\n").encode("ascii")


def _dump(value, indent: str) -> str:
    inner = indent + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{_scalar(key)}: {_dump(item, inner)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list):
        kinds = set(map(type, value))
        if kinds <= {int} or (kinds <= {float} and all(map(math.isfinite, value))):
            # int.__repr__ and float.__repr__ are exactly what json.dumps writes for plain ints and
            # finite floats (bool's type is bool, never int): one C-level pass for long per-channel lists
            return "[" + ", ".join(map(repr, value)) + "]"
        if not any(isinstance(item, (dict, list)) for item in value):
            return "[" + ", ".join(_scalar(item) for item in value) + "]"
        return "[\n" + ",\n".join(inner + _dump(item, inner) for item in value) + "\n" + indent + "]"
    return _scalar(value)


def _scalar(value) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=False)
