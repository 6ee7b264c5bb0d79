"""Requantization kernel: twin of ``intref.spec.requantize.requantize``, bit for bit.

``y = fit(round(x * multiplier / 2**shift))`` elementwise, with ``multiplier`` and ``shift`` per
tensor (scalars) or per channel (length ``C`` arrays broadcast on the last axis of ``x``).

Widths: ``x`` int64 (any integer dtype is widened first), ``|multiplier| <= 2**31``, so the product
needs up to 95 bits; ``kernels.rounding.mul_shift_round`` forms it exactly from 32-bit words and
never rounds it before the single rounding step. Output: ``int<bits>``/``uint<bits>`` stored in
the smallest NumPy dtype that holds it.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import OverflowCheckError, format_index
from ..inttypes import IntType
from ..spec.requantize import OVERFLOW_MODES
from ..spec.rounding import ROUNDING_MODES
from .rounding import mul_shift_round

_WHERE = "requantize"


def requantize(x, multiplier, shift, *, rounding: str = "half_even", bits: int = 8, signed: bool = True,
               overflow: str = "saturate") -> np.ndarray:
    """Round ``x * multiplier / 2**shift`` by ``rounding`` and fit it into ``int<bits>``/``uint<bits>``.

    Arguments:
      x           integer array (any dtype up to int64; uint64 is refused).
      multiplier  int or int array of shape ``()``/``(C,)``, ``|multiplier| <= 2**31``.
      shift       int or int array of shape ``()``/``(C,)``, ``0 <= shift <= 63``.
      rounding    ``half_even`` | ``half_up`` | ``double_round`` | ``half_away`` | ``floor``
                  (see ``intref.spec.rounding``).
      bits        output width, 1..32; ``signed`` picks ``int<bits>`` or ``uint<bits>``.
      overflow    ``saturate`` (clamp), ``wrap`` (keep the low ``bits`` bits, two's complement) or
                  ``check`` (raise ``OverflowCheckError`` naming the first index and exact value).

    Returns an array of ``x``'s shape in the output type's storage dtype (int8/16/32, uint8/16/32).
    """
    _checks.require_choice(_WHERE, "rounding", rounding, ROUNDING_MODES)
    _checks.require_choice(_WHERE, "overflow", overflow, OVERFLOW_MODES)
    bits = _checks.require_int(_WHERE, "bits", bits, 1, 32)
    out_type = IntType(bits, signed)
    x = _checks.int_array(_WHERE, "x", x)
    channels = x.shape[-1] if x.ndim else 1
    m = _checks.channel_param(_WHERE, "multiplier", multiplier, channels, -(1 << 31), 1 << 31)
    s = _checks.channel_param(_WHERE, "shift", shift, channels, 0, 63)

    rounded = mul_shift_round(x.astype(np.int64, copy=False), m, s, rounding)
    if overflow == "wrap":
        result = wrap_low_bits(rounded.low64, out_type)
    else:
        value = rounded.value()
        if overflow == "check":
            raise_if_outside(value, out_type, _WHERE, lambda index: _exact(x, m, s, index, rounding))
        result = np.clip(value, out_type.lo, out_type.hi)
    return result.astype(out_type.storage)


def wrap_low_bits(low64: np.ndarray, out_type: IntType) -> np.ndarray:
    """Reduce int64 values (the exact result modulo 2**64) to ``out_type`` by two's complement."""
    mask = np.int64((1 << out_type.bits) - 1) if out_type.bits < 64 else np.int64(-1)
    low = low64 & mask
    if out_type.signed and out_type.bits < 64:
        low = np.where(low > out_type.hi, low - np.int64(1 << out_type.bits), low)
    return low


def raise_if_outside(value: np.ndarray, out_type: IntType, where: str, exact_at=None) -> None:
    """Raise ``OverflowCheckError`` at the first element of ``value`` outside ``out_type``.

    ``exact_at(index)`` may supply the exact value for the message where ``value`` holds a capped
    magnitude (``|value| >= 2**62``).
    """
    outside = (value < out_type.lo) | (value > out_type.hi)
    if not outside.any():
        return
    index = _checks.first_index(outside)
    exact = exact_at(index) if exact_at is not None else int(value[index])
    raise OverflowCheckError(
        f"{where}: value {exact} at index {format_index(index)} is outside {out_type} "
        f"[{out_type.lo}, {out_type.hi}] (overflow='check')",
        where=where, index=index, value=exact, lo=out_type.lo, hi=out_type.hi)


def _exact(x, m, s, index, rounding) -> int:
    """The exact rounded value at one index, from the spec (used only to word an error)."""
    from ..spec.rounding import rshift_round

    channel = index[-1] if index else 0
    m_c = int(m) if m.ndim == 0 else int(m[channel])
    s_c = int(s) if s.ndim == 0 else int(s[channel])
    return rshift_round(int(x[index]) * m_c, s_c, rounding)
