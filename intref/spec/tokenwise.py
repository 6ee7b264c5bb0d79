"""Token-wise dynamic activation quantization with integers only: the normative definitions.

ZeroQuant quantizes each token (each row of the last axis) with its own scale ``max|x| / 127``,
found at run time, and keeps that scale as an FP16 number. Here the per-token scale is an integer
``t``, counted in units of the input's static scale ``S``, and every step is an integer formula:

    token_scale        a = max over the row of |x[c]|                 0 <= a <= 2**31
                       t = max(1, ceil(a / Q))                        Q = 2**(bits-1) - 1;  1 <= t <= 2**29
                       (ceil(a / Q) = floor((a + Q - 1) / Q): a division by the constant Q, exact)
    token_reciprocal   k = bit_length(t - 1)                          t <= 2**k < 2t (k = 0 for t = 1)
                       m = floor((2**30 + 1) * 2**k / t)              2**30 <= m < 2**31
                       s = 30 + k                                     30 <= s <= 59
                       (TOSA ``reciprocal_scale``, the AVG_POOL2D reciprocal: m / 2**s ~= 1 / t)
    token_quantize     q[c] = clamp(rshift_round(x[c] * m, s, rounding), -Q, Q)
                       |x * m| < 2**31 * 2**31 = 2**62
    token_requantize   y = fit(rshift_round(acc * t * M, shift, rounding) + bias)
                       for an accumulator ``acc`` of products of ``q`` (real unit ``t * S * S_w``):
                       ``acc * t`` (REQUIRE |acc * t| <= 2**63 - 1) is in units of ``S * S_w``, and the
                       static dyadic ``M / 2**shift ~= S * S_w / S_out`` brings it to ``S_out``;
                       ``M * acc * t`` needs up to 95 bits and is formed exactly.

The real value of ``q`` is ``q * t * S``: ``t * S >= a * S / Q`` is the token's scale, at most one
input unit coarser than ZeroQuant's ``max|x| / Q`` (exact when Q divides a). Because
``|x| / t <= Q`` and ``m / 2**s = (1 + 2**-30) / t - d`` with ``0 <= d < 2**-s``, ``|x * m / 2**s|
<= Q * (1 + 2**-30) < Q + 1/2``, so with ``t = token_scale(row)`` the clamp never acts; it decides
only when ``t`` comes from elsewhere (a hardware dump fed back by ``verify --isolate``). ``q`` equals
``round(x / t)`` except within ``Q * 2**-30`` of a tie, where the reciprocal's ``+2**-30`` decides:
the spec is the multiplier form, not the division.

Widths: ``x`` int32 (REQUIRE), ``a`` 32 bits unsigned, ``t`` at most 30 bits unsigned (bits >= 4),
``m`` 31 bits unsigned, ``x * m`` 63 bits signed, ``q`` int<bits>; ``acc * t`` int64.
Input REQUIREs: ``4 <= bits <= 16``; ``1 <= t <= 2**30`` wherever ``t`` is an argument.
"""

from __future__ import annotations

from ..inttypes import MAX_SHIFT, OVERFLOW_MODES, IntType
from .requant import fit_to_type
from .rounding import ROUNDING_MODES, rshift_round

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT64_MAX = (1 << 63) - 1
SCALE_MAX = 1 << 30
BITS_MIN, BITS_MAX = 4, 16


def qmax(bits: int) -> int:
    """``Q = 2**(bits-1) - 1``: the largest magnitude of the symmetric quantized range [-Q, Q]."""
    if not BITS_MIN <= bits <= BITS_MAX:
        raise ValueError(f"bits={bits} is outside {BITS_MIN}..{BITS_MAX}")
    return (1 << (bits - 1)) - 1


def token_scale(row: list, *, bits: int = 8) -> int:
    """``t = max(1, ceil(max|row| / Q))`` for one row of int32 values (an empty row gives 1)."""
    q_max = qmax(bits)
    _require_int32_row(row)
    a = max((abs(v) for v in row), default=0)
    return max(1, (a + q_max - 1) // q_max)


def token_reciprocal(t: int) -> tuple:
    """``(m, s)`` with ``m / 2**s ~= 1 / t``: TOSA ``reciprocal_scale`` (module docstring)."""
    _require_scale(t)
    k = (t - 1).bit_length()
    return (((1 << 30) + 1) << k) // t, 30 + k


def token_quantize(row: list, t: int, *, bits: int = 8, rounding: str = "half_even") -> list:
    """``q[c] = clamp(round(row[c] * m / 2**s), -Q, Q)`` with ``(m, s) = token_reciprocal(t)``."""
    q_max = qmax(bits)
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"unknown rounding {rounding!r}")
    _require_int32_row(row)
    m, s = token_reciprocal(t)
    return [min(max(rshift_round(v * m, s, rounding), -q_max), q_max) for v in row]   # |v * m| < 2**62


def token_requantize(acc: int, t: int, multiplier: int, shift: int, *, bias: int = 0, rounding: str = "half_even",
                     bits: int = 8, signed: bool = True, overflow: str = "saturate") -> int:
    """``fit(round(acc * t * multiplier / 2**shift) + bias)`` into ``int<bits>``/``uint<bits>``.

    REQUIRE ``1 <= t <= 2**30``, ``|acc * t| <= 2**63 - 1``, ``|multiplier| <= 2**31``,
    ``0 <= shift <= 127``, ``bias`` int32, ``1 <= bits <= 32``. ``overflow``: saturate, wrap or check
    (``RequantizeOverflow``), as ``spec.requant.requantize``.
    """
    _require_scale(t)
    widened = acc * t
    if abs(widened) > INT64_MAX:
        raise ValueError(f"|acc * t| = {abs(widened)} exceeds 2**63 - 1")
    if abs(multiplier) > 1 << 31 or not 0 <= shift <= MAX_SHIFT:
        raise ValueError(f"multiplier={multiplier} or shift={shift} breaks a REQUIRE of requantize")
    if not INT32_MIN <= bias <= INT32_MAX:
        raise ValueError(f"bias={bias} is not an int32 value")
    if not 1 <= bits <= 32 or rounding not in ROUNDING_MODES or overflow not in OVERFLOW_MODES:
        raise ValueError(f"bits={bits}, rounding={rounding!r} or overflow={overflow!r} is not legal")
    return fit_to_type(rshift_round(widened * multiplier, shift, rounding) + bias, IntType(bits, signed), overflow)


def _require_scale(t: int) -> None:
    if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= SCALE_MAX:
        raise ValueError(f"token scale t={t!r} is not an int in [1, 2**30]")


def _require_int32_row(row: list) -> None:
    for c, v in enumerate(row):
        if isinstance(v, bool) or not isinstance(v, int) or not INT32_MIN <= v <= INT32_MAX:
            raise ValueError(f"row[{c}] = {v!r} is not an int32 value")
