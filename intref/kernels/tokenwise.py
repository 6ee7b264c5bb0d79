"""Token-wise dynamic quantization: twins of ``intref.spec.tokenwise``, bit for bit.

    token_scale       t = max(1, ceil(max|x| / Q)) per row of the last axis      (..., 1) int64
    token_reciprocal  k = bit_length(t - 1); m = floor((2**30 + 1) * 2**k / t); s = 30 + k
    token_quantize    q = clamp(round(x * m / 2**s), -Q, Q)                      int<bits>
    token_requantize  y = fit(round(acc * t * M / 2**shift) + bias)              int<bits> / uint<bits>

Widths (see the spec): ``max|x| <= 2**31`` in int64; ``(2**30 + 1) * 2**k < 2**61`` for ``t <= 2**30``;
``|x * m| < 2**62``; ``acc * t`` int64 (checked); ``acc * t * M`` up to 95 bits, formed exactly by
``kernels.rounding.mul_shift_round``. Integer arithmetic only; ``bit_length`` is a five-step binary
search on shifts, the divisions are exact floor divisions of non-negative int64 values.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import RangeError, ShapeError, format_index
from ..inttypes import IntType
from ..spec import tokenwise as spec
from ..inttypes import MAX_SHIFT, OVERFLOW_MODES
from ..spec.rounding import ROUNDING_MODES, rshift_round
from .requant import fit_to_type, wrap_low_bits
from .rounding import mul_shift_round

INT64_MAX = (1 << 63) - 1


def token_scale(x, *, bits: int = 8) -> np.ndarray:
    """``t = max(1, ceil(max|x| / Q))`` over the last axis of int32-valued ``x``; shape ``(..., 1)``, int64."""
    q_max = _qmax("token_scale", bits)
    x = _int32_values("token_scale", "x", x)
    if x.ndim == 0:
        raise RangeError("token_scale: x is 0-d; expected rows along the last axis", argument="x")
    if x.shape[-1] == 0:
        return np.ones(x.shape[:-1] + (1,), dtype=np.int64)
    wide = x.astype(np.int64)
    a = np.maximum(wide.max(axis=-1, keepdims=True), -wide.min(axis=-1, keepdims=True))   # 0 <= a <= 2**31
    return np.maximum((a + (q_max - 1)) // q_max, 1)


def token_reciprocal(t) -> tuple:
    """``(m, s)`` int64 arrays of ``t``'s shape with ``m / 2**s ~= 1 / t`` (TOSA ``reciprocal_scale``)."""
    t = _scale("token_reciprocal", t)
    k = bit_length(t - 1)
    return (np.int64((1 << 30) + 1) << k) // t, k + 30      # (2**30 + 1) * 2**k < 2**61


def bit_length(v: np.ndarray) -> np.ndarray:
    """Python's ``int.bit_length`` of non-negative int64 values below ``2**32``, elementwise."""
    k = np.zeros(v.shape, dtype=np.int64)
    rest = v.astype(np.int64)
    for width in (16, 8, 4, 2, 1):
        high = rest >= (1 << width)
        k += np.where(high, width, 0)
        rest = np.where(high, rest >> width, rest)
    return k + (rest > 0)


def token_quantize(x, t, *, bits: int = 8, rounding: str = "half_even") -> np.ndarray:
    """``q = clamp(round(x * m / 2**s), -Q, Q)``, ``(m, s) = token_reciprocal(t)``; ``t`` broadcasts on
    the last axis (``(..., 1)``). Returns ``int<bits>`` values in its storage dtype (int8 / int16)."""
    q_max = _qmax("token_quantize", bits)
    _checks.require_choice("token_quantize", "rounding", rounding, ROUNDING_MODES)
    x = _int32_values("token_quantize", "x", x)
    m, s = token_reciprocal(_fits_shape("token_quantize", t, x.shape))
    q = mul_shift_round(x.astype(np.int64), m, s, rounding).value()        # |x * m| < 2**62
    return np.clip(q, -q_max, q_max).astype(IntType(bits).storage)


def token_requantize(acc, t, multiplier, shift, *, bias=None, rounding: str = "half_even", bits: int = 8,
                     signed: bool = True, overflow: str = "saturate") -> np.ndarray:
    """``y = fit(round(acc * t * multiplier / 2**shift) + bias)``; ``t`` broadcasts on the last axis,
    ``multiplier``/``shift``/``bias`` are per tensor or one per channel of the last axis.

    REQUIRE ``|acc * t| <= 2**63 - 1`` (RangeError naming the index otherwise); the rest as
    ``kernels.requant.requantize``. Returns the output type's storage dtype.
    """
    where = "token_requantize"
    _checks.require_choice(where, "rounding", rounding, ROUNDING_MODES)
    _checks.require_choice(where, "overflow", overflow, OVERFLOW_MODES)
    out_type = IntType(_checks.require_int(where, "bits", bits, 1, 32), signed)
    acc = _checks.int_array(where, "acc", acc).astype(np.int64, copy=False)
    t = _fits_shape(where, _scale(where, t), acc.shape)
    channels = acc.shape[-1] if acc.ndim else 1
    m = _checks.channel_param(where, "multiplier", multiplier, channels, -(1 << 31), 1 << 31)
    s = _checks.channel_param(where, "shift", shift, channels, 0, MAX_SHIFT)
    b = _checks.channel_param(where, "bias", 0 if bias is None else bias, channels, spec.INT32_MIN, spec.INT32_MAX)
    _require_product_fits(acc, t)
    rounded = mul_shift_round(acc * t, m, s, rounding)
    if overflow == "wrap":                                   # exact modulo 2**64, then the low bits
        return wrap_low_bits(rounded.low64 + b, out_type).astype(out_type.storage)
    value = rounded.value() + b                              # exact below the 2**62 cap, sign kept above

    def exact_at(index):                                     # the exact value, only to word an error
        at = [int(np.broadcast_to(v, acc.shape)[index]) for v in (acc, t, m, s, b)]
        return rshift_round(at[0] * at[1] * at[2], at[3], rounding) + at[4]
    return fit_to_type(value, out_type, overflow, where, exact_at=exact_at)


def _require_product_fits(acc: np.ndarray, t: np.ndarray) -> None:
    """RangeError unless ``|acc * t| <= 2**63 - 1`` everywhere: ``|acc| <= floor((2**63 - 1) / t)``."""
    limit = INT64_MAX // t
    bad = (acc > limit) | (acc < -limit)
    if bad.any():
        index = _checks.first_index(bad)
        a, scale = int(acc[index]), int(np.broadcast_to(t, acc.shape)[index])
        raise RangeError(f"token_requantize: acc{format_index(index)} * t = {a} * {scale} = {a * scale} leaves "
                         f"[-(2**63 - 1), 2**63 - 1]", argument="acc", index=index, value=a)


def _fits_shape(where: str, t, shape) -> np.ndarray:
    """``t`` must broadcast to ``shape`` without growing it (one scale per row: ``(..., 1)``)."""
    t = np.asarray(t)
    try:
        fits = np.broadcast_shapes(t.shape, shape) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"{where}: t has shape {t.shape}, which does not broadcast to {tuple(shape)}", argument="t")
    return t


def _qmax(where: str, bits) -> int:
    bits = _checks.require_int(where, "bits", bits, spec.BITS_MIN, spec.BITS_MAX)
    return (1 << (bits - 1)) - 1


def _int32_values(where: str, name: str, x) -> np.ndarray:
    x = _checks.int_array(where, name, x)
    _checks.require_range(where, name, x, spec.INT32_MIN, spec.INT32_MAX, "int32")
    return x


def _scale(where: str, t) -> np.ndarray:
    t = _checks.int_array(where, "t", t)
    _checks.require_range(where, "t", t, 1, spec.SCALE_MAX, "a token scale")
    return t.astype(np.int64)
