"""Golden-vector encodings for hardware: ``.hex`` / ``.mem`` text and ``.bin`` bytes, both ways.

Text (``$readmemh``-ready): one word a line, lowercase hex, no ``0x``. Each element is written in
two's complement at its declared width rounded up to whole nibbles (``int22`` -> 6 digits, the
24-bit two's complement; ``int4`` -> 1 digit; ``uint9`` -> 3 digits). A ``Layout`` may put several
elements on a line (``lanes``: 16 x int8 = one 128-bit word), with lane 0 in the least
significant digits (``lsb_first``, the usual bus order: element ``i`` in bits
``[w*(i+1)-1 : w*i]``) or the most significant (``msb_first``). The last word of a tensor whose
size is not a multiple of ``lanes`` is padded with zero lanes. Elements go in row-major order, or
in ``tile`` order: for a tile ``(tm, tn)`` over the last two axes, tiles in row-major order and
elements row-major inside each tile. ``.mem`` is the same text behind a ``//`` comment header
naming the tensor, its type, shape and layout.

Binary: little-endian at the storage width (``int22`` as 4-byte int32), row-major; with
``Layout(int4_packed=True)`` two int4 elements per byte, element ``2i`` in the low nibble.

Decoders check everything and raise ``VectorFormatError`` naming the file and line or byte: a
wrong digit count, a non-hex character, too few or too many words, a value outside the type, a
file size that does not match.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import numpy as np

from .._checks import first_outside
from ..errors import IntrefError
from ..bundle.int4 import pack_nibbles, split_nibbles
from ..inttypes import IntType


MAX_LANES = 1 << 12     # elements per text line: a 4096-lane bus (262144 bits at 64 bits a lane)


class VectorFormatError(IntrefError):
    """A hardware dump (hex, mem, bin or npy) cannot be decoded into the declared tensor."""


@dataclass(frozen=True)
class Layout:
    lanes: int = 1                          # elements per text line
    lane_order: str = "lsb_first"           # lane 0 in the least (or most) significant digits
    tile: Optional[Tuple[int, int]] = None  # tile order over the last two axes
    int4_packed: bool = False               # .bin: two int4 per byte (low nibble first)

    def to_json(self) -> dict:
        data = asdict(self)
        data["tile"] = list(self.tile) if self.tile else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Layout":
        tile = data.get("tile")
        return cls(int(data.get("lanes", 1)), str(data.get("lane_order", "lsb_first")),
                   tuple(int(t) for t in tile) if tile else None, bool(data.get("int4_packed", False)))


def digits(t: IntType) -> int:
    """Hex digits per element: the declared width rounded up to whole nibbles."""
    return (t.bits + 3) // 4


def element_order(shape, layout: Layout) -> np.ndarray:
    """Flat row-major indices in the order the elements are written."""
    index = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)
    if layout.tile is None:
        return index.ravel()
    tm, tn = layout.tile
    if len(shape) < 2 or shape[-2] % tm or shape[-1] % tn:
        raise VectorFormatError(f"tile {layout.tile} does not divide the last two axes of shape {list(shape)}")
    lead, m, n = shape[:-2], shape[-2], shape[-1]
    tiled = index.reshape(lead + (m // tm, tm, n // tn, tn))
    k = len(lead)
    return tiled.transpose(*range(k), k, k + 2, k + 1, k + 3).ravel()


def _codes(array: np.ndarray, t: IntType) -> np.ndarray:
    """Two's complement at the nibble-rounded width, as uint64 codes."""
    mask = (1 << (4 * digits(t))) - 1
    return (array.astype(np.int64).astype(np.uint64)) & np.uint64(mask)


def encode_text(array: np.ndarray, t: IntType, layout: Layout = Layout()) -> str:
    width = digits(t)
    codes = _codes(np.asarray(array).ravel()[element_order(np.shape(array), layout)], t)
    pad = (-codes.size) % layout.lanes
    codes = np.concatenate([codes, np.zeros(pad, np.uint64)]).reshape(-1, layout.lanes)
    if layout.lane_order == "lsb_first":
        codes = codes[:, ::-1]
    fmt = f"{{:0{width}x}}"
    return "".join("".join(fmt.format(int(c)) for c in row) + "\n" for row in codes)


def decode_text(text: str, t: IntType, shape, layout: Layout = Layout(), *, source: str = "") -> np.ndarray:
    width, where = digits(t), source or "text"
    size = int(np.prod(shape, dtype=np.int64))
    lines = [(i + 1, line.strip()) for i, line in enumerate(text.splitlines())]
    lines = [(n, line) for n, line in lines if line and not line.startswith("//")]
    words = -(-size // layout.lanes)
    if len(lines) != words:
        raise VectorFormatError(f"{where}: {len(lines)} words, expected {words} for shape {list(shape)} "
                                f"({layout.lanes} per line)")
    codes = []
    for number, line in lines:
        if len(line) != width * layout.lanes or any(c not in "0123456789abcdefABCDEF" for c in line):
            raise VectorFormatError(f"{where}: line {number}: {line[:40]!r} is not {width * layout.lanes} hex digits")
        fields = [int(line[i:i + width], 16) for i in range(0, len(line), width)]
        codes.extend(fields[::-1] if layout.lane_order == "lsb_first" else fields)
    values = _from_codes(np.array(codes[:size], dtype=np.uint64), t, 4 * width, where)
    out = np.empty(size, dtype=np.int64)
    out[element_order(tuple(shape), layout)] = values
    return out.reshape(shape).astype(t.storage)


def _from_codes(codes: np.ndarray, t: IntType, width_bits: int, where: str) -> np.ndarray:
    """Codes of ``width_bits`` bits back to values; the padding bits above the type must be the
    sign extension (signed) or zero (unsigned), else the value is outside the type."""
    if t.signed:
        values = np.where(codes >= np.uint64(1 << (width_bits - 1)),
                          codes.astype(np.int64) - np.int64(1 << width_bits) if width_bits < 64 else codes.astype(np.int64),
                          codes.astype(np.int64))
    else:
        values = codes.astype(np.int64)
    _require_in_type(values, t, where)
    return values


def _require_in_type(values: np.ndarray, t: IntType, where: str) -> None:
    """``VectorFormatError`` naming the first element (of the flat ``values``) outside ``t``."""
    bad = first_outside(values, t.lo, t.hi)
    if bad is not None:
        raise VectorFormatError(f"{where}: element {bad[0]} = {int(values[bad])} is outside {t} [{t.lo}, {t.hi}]")


def encode_bin(array: np.ndarray, t: IntType, layout: Layout = Layout()) -> bytes:
    flat = np.asarray(array).ravel()[element_order(np.shape(array), layout)]
    if layout.int4_packed:
        return pack_nibbles(_codes(flat, t).astype(np.uint8)).tobytes()
    return flat.astype(t.storage.newbyteorder("<")).tobytes()


def decode_bin(data: bytes, t: IntType, shape, layout: Layout = Layout(), *, source: str = "") -> np.ndarray:
    where = source or "bin"
    size = int(np.prod(shape, dtype=np.int64))
    if layout.int4_packed:
        expected = (size + 1) // 2
        if len(data) != expected:
            raise VectorFormatError(f"{where}: {len(data)} bytes, expected {expected} (int4 packed, {size} elements)")
        raw = np.frombuffer(data, dtype=np.uint8)
        codes = split_nibbles(raw)[:size].astype(np.uint64)
        values = _from_codes(codes, t, 4, where)
    else:
        itemsize = t.storage.itemsize
        if len(data) != size * itemsize:
            raise VectorFormatError(f"{where}: {len(data)} bytes, expected {size * itemsize} "
                                    f"({size} x {itemsize}-byte little-endian {t.storage})")
        values = np.frombuffer(data, dtype=t.storage.newbyteorder("<")).astype(np.int64)
        _require_in_type(values, t, where)
    out = np.empty(size, dtype=np.int64)
    out[element_order(tuple(shape), layout)] = values
    return out.reshape(shape).astype(t.storage)


def mem_header(name: str, t: IntType, shape, layout: Layout) -> str:
    return (f"// {name}: {t} shape {list(shape)}, {digits(t)} hex digits per element, "
            f"{layout.lanes} per line ({layout.lane_order}), "
            f"{'tiles ' + str(list(layout.tile)) if layout.tile else 'row-major'}\n")
