"""graph.json's ``quantization`` section and the scale file (format version 2): parsing, resolving the
slices once the file is read, the channel-count check, and, for the writer, packing long scale lists.

A ``quantization`` entry's ``scale`` is a finite number, a list of them, or ``{"offset": o, "count": n}``:
values ``o .. o+n-1`` of the float64 file that the top-level ``scales`` names (``docs/format.md``
sections 4.5 and 4.6). Every defect raises ``SchemaError`` naming the field; the file itself is read
and checked by ``bundle.npy`` (layout ``SCALES_LAYOUT``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

import numpy as np

from .fields import SHA256_HEX, tensor_file
from .fields import at as _at, expect as _expect, fail as _fail, fields as _fields, int_in as _int
from .npy import SCALES_LAYOUT

MAX_SCALES = 1 << 31
SCALES_INLINE_MAX = 16           # longer scale lists are written to the scale file


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


def parse_scales(value, version: int, tensors) -> ScaleFile:
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


def parse_quantization(value, names, scales: Optional[ScaleFile] = None) -> dict:
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


def pack_scales(quantization: Mapping[str, dict]) -> Tuple[Optional[np.ndarray], dict]:
    """``(values, slices)``: the scale file's float64 ``values`` (None when no list is longer than
    ``SCALES_INLINE_MAX``) and, per quantization name written as a slice, its ``ScaleSlice``. Equal
    lists (bit for bit) share one slice. Deterministic: names in sorted order."""
    chunks, at, slices, total = [], {}, {}, 0
    for name in sorted(quantization):
        scale = quantization[name]["scale"]
        if not isinstance(scale, (list, tuple, np.ndarray)) or len(scale) <= SCALES_INLINE_MAX:
            continue
        array = np.asarray(scale, dtype=np.float64).reshape(-1)
        key = array.tobytes()
        if key not in at:
            at[key] = total
            chunks.append(array)
            total += array.size
        slices[name] = ScaleSlice(at[key], array.size)
    return (np.concatenate(chunks) if chunks else None), slices
