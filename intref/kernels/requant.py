"""Requantization kernel: twin of ``intref.spec.requant.requantize``, bit for bit.

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
from ..errors import OverflowCheckError, ShapeError, format_index
from ..inttypes import IntType
from ..inttypes import MAX_SHIFT, OVERFLOW_MODES
from ..spec.rounding import ROUNDING_MODES
from .rounding import MAGNITUDE_CAP, mul_shift_round

_WHERE = "requantize"


def requantize(x, multiplier, shift, *, rounding: str = "half_even", bits: int = 8, signed: bool = True,
               overflow: str = "saturate") -> np.ndarray:
    """Round ``x * multiplier / 2**shift`` by ``rounding`` and fit it into ``int<bits>``/``uint<bits>``.

    Arguments:
      x           integer array (any dtype up to int64; uint64 is refused).
      multiplier  int or int array of shape ``()``/``(C,)``, ``|multiplier| <= 2**31``.
      shift       int or int array of shape ``()``/``(C,)``, ``0 <= shift <= 127``.
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
    s = _checks.channel_param(_WHERE, "shift", shift, channels, 0, MAX_SHIFT)

    rounded = mul_shift_round(x.astype(np.int64, copy=False), m, s, rounding)
    if overflow == "wrap":  # the capped magnitude cannot be wrapped; the exact low 64 bits can
        return wrap_low_bits(rounded.low64, out_type).astype(out_type.storage)
    return fit_to_type(rounded.value(), out_type, overflow, _WHERE,
                       exact_at=lambda index: _exact(x, m, s, index, rounding))


def add_requantized(a, b, multiplier_a, shift_a, multiplier_b, shift_b, *, rounding: str = "half_even",
                    bits: int = 8, signed: bool = True, overflow: str = "saturate") -> np.ndarray:
    """Residual add, twin of ``spec.requant.add_requantized``: each branch requantized on its
    own (exactly, as ``requantize``), the two added in int64, then fit to ``int<bits>`` once.

    ``a`` and ``b`` broadcast against each other; the per-channel multipliers and shifts index the
    last axis of the broadcast shape. REQUIRE |each rounded branch| < 2**62 (so the int64 sum is
    exact); a branch beyond that raises ``RangeError`` naming the index.
    """
    where = "add_requantized"
    _checks.require_choice(where, "rounding", rounding, ROUNDING_MODES)
    _checks.require_choice(where, "overflow", overflow, OVERFLOW_MODES)
    out_type = IntType(_checks.require_int(where, "bits", bits, 1, 32), signed)
    a, b = _checks.int_array(where, "a", a), _checks.int_array(where, "b", b)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"{where}: a {a.shape} and b {b.shape} do not broadcast", argument="b") from None
    channels = shape[-1] if shape else 1
    total = np.zeros(shape, dtype=np.int64)
    for name, x, m, s in (("a", a, multiplier_a, shift_a), ("b", b, multiplier_b, shift_b)):
        m = _checks.channel_param(where, f"multiplier_{name}", m, channels, -(1 << 31), 1 << 31)
        s = _checks.channel_param(where, f"shift_{name}", s, channels, 0, MAX_SHIFT)
        branch = mul_shift_round(np.broadcast_to(x, shape).astype(np.int64), m, s, rounding)
        _checks.require_range(where, f"rounded {name}", branch.magnitude, 0, MAGNITUDE_CAP - 1,
                              "each requantized branch must stay below 2**62")
        total += branch.value()
    return fit_to_type(total, out_type, overflow, where)


def fit_to_type(value: np.ndarray, out_type: IntType, overflow: str, where: str, exact_at=None) -> np.ndarray:
    """Exact int64 ``value`` as ``out_type``'s storage dtype: clamp (saturate), wrap, or raise (check)."""
    if overflow == "check":
        raise_if_outside(value, out_type, where, exact_at)
    elif overflow == "saturate":
        value = np.clip(value, out_type.lo, out_type.hi)
    else:
        value = wrap_low_bits(value, out_type)
    return value.astype(out_type.storage)


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
