"""int4 packing: two signed 4-bit values per byte along the last axis.

Nibble order: element ``2i`` goes in the LOW nibble (bits 0-3) of byte ``i``, element ``2i+1`` in
the HIGH nibble (bits 4-7); each nibble holds the value's 4-bit two's complement:

    byte[i] = (q[2i] & 0xF) | ((q[2i+1] & 0xF) << 4)

Example: ``[-1, 2]`` packs to ``0x2F`` (low nibble 0xF = -1, high nibble 0x2 = 2) and ``[3, -8]``
to ``0x83``. An odd last-axis length ``n`` is padded with a zero HIGH nibble in the last byte
(``[5]`` packs to ``0x05``); ``unpack_int4(packed, n)`` drops it again.

Storage, not quantization: the bundle's ``int4_packed`` tensor files and the golden vectors'
packed ``.bin`` files both go through ``pack_nibbles`` / ``split_nibbles``. ``intref.quant``
re-exports ``pack_int4`` and ``unpack_int4`` (their documented home).
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import RangeError, ShapeError, format_index

INT4_MIN, INT4_MAX = -8, 7


def pack_int4(q) -> np.ndarray:
    """Pack integers in [-8, 7] two per byte along the last axis; ``(..., n) -> (..., ceil(n/2))`` uint8.

    ``q`` is any integer array (not bool, float or uint64) of at least one dimension; a value
    outside [-8, 7] raises RangeError naming its index.
    """
    q = _checks.int_array("pack_int4", "q", q)
    if q.ndim == 0:
        raise ShapeError("pack_int4: q is 0-d; expected at least one dimension (pairs along the last axis)",
                         argument="q")
    _checks.require_range("pack_int4", "q", q, INT4_MIN, INT4_MAX, "int4")
    return pack_nibbles(q.astype(np.int8).view(np.uint8) & np.uint8(0x0F))  # exact: in [-8, 7]; its 4 low bits


def pack_nibbles(nibbles: np.ndarray) -> np.ndarray:
    """uint8 codes 0..15 ``(..., n)`` two per byte along the last axis: ``(..., ceil(n/2))`` uint8,
    element ``2i`` in the low nibble of byte ``i``, an odd length padded with a zero high nibble."""
    if nibbles.shape[-1] % 2:
        pad = np.zeros(nibbles.shape[:-1] + (1,), dtype=np.uint8)
        nibbles = np.concatenate([nibbles, pad], axis=-1)
    return nibbles[..., 0::2] | (nibbles[..., 1::2] << np.uint8(4))  # high nibble: 0xF << 4 = 0xF0 fits


def split_nibbles(packed: np.ndarray) -> np.ndarray:
    """The inverse of ``pack_nibbles`` before the padding is dropped: ``(..., m)`` uint8 bytes as
    ``(..., 2m)`` uint8 codes 0..15, low nibble first."""
    return np.stack([packed & np.uint8(0x0F), packed >> np.uint8(4)], axis=-1).reshape(packed.shape[:-1] + (-1,))


def unpack_int4(packed, n=None) -> np.ndarray:
    """Unpack ``(..., m)`` uint8 bytes into ``(..., n)`` int8 values in [-8, 7] (inverse of ``pack_int4``).

    ``n`` is the original last-axis length: ``2m`` (the default) or ``2m - 1``, in which case the
    last byte's high nibble is the padding and must be 0 (RangeError naming the byte otherwise).
    """
    packed = _checks.int_array("unpack_int4", "packed", packed)
    _checks.require_dtype("unpack_int4", "packed", packed, (np.uint8,))
    if packed.ndim == 0:
        raise ShapeError("unpack_int4: packed is 0-d; expected at least one dimension", argument="packed")
    width = packed.shape[-1]
    n = 2 * width if n is None else _checks.require_int("unpack_int4", "n", n, max(2 * width - 1, 0), 2 * width)
    if n < 2 * width:
        _require_zero_padding(packed)
    return np.ascontiguousarray(sign_extend_nibble(split_nibbles(packed))[..., :n])


def sign_extend_nibble(nibble: np.ndarray) -> np.ndarray:
    """uint8 nibbles 0..15 as int8 values -8..7: ``(v ^ 8) - 8`` (two's complement of 4 bits)."""
    return (nibble ^ np.uint8(8)).astype(np.int8) - np.int8(8)     # (v ^ 8) in [0, 15]: fits int8


def _require_zero_padding(packed: np.ndarray) -> None:
    high = packed[..., -1] >> np.uint8(4)
    if high.any():
        index = _checks.first_index(high != 0) + (packed.shape[-1] - 1,)
        raise RangeError(f"unpack_int4: packed{format_index(index)} = {int(packed[index]):#04x} has a non-zero "
                         f"high (padding) nibble, but n={2 * packed.shape[-1] - 1} says it is padding",
                         argument="packed", index=index, value=int(packed[index]))
