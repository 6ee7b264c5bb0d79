"""Vectorized exact rounding of ``x * m / 2**s`` and ``n / d``: twins of ``intref.spec.rounding``.

``mul_shift_round`` is the one place where a product wider than 64 bits is formed. It works in
sign-magnitude: ``U = |x| * |m|`` is split into 32-bit words, ``U = UH * 2**32 + UL``, so that

    |x| <= 2**63, |m| <= 2**31   =>   UH <= 2**62 + 2**31 < 2**63,  UL < 2**32,  U <= 2**94

and every partial product fits uint64 (``(|x| >> 32) * |m| <= 2**62``, ``(|x| & 0xffffffff) * |m|
< 2**63``). The quotient ``Q = floor(U / 2**s)`` and the remainder ``R = U mod 2**s`` are then
read off the two words, and each dialect's rounding becomes "add 1 to the magnitude when ``R``
passes a threshold":

| dialect       | product >= 0            | product < 0             |
|---------------|-------------------------|-------------------------|
| half_even     | R > H, or R == H and Q odd (both signs)           |
| half_away     | R >= H                  | R >= H                  |
| half_up       | R >= H                  | R > H                   |
| floor         | never                   | R > 0                   |
| double_round  | R >= T                  | R > T                   |

with ``H = 2**(s-1)`` and, for ``double_round`` with ``s > 31``, ``T = 2**(s-1) - 2**30`` (for
``s <= 31`` it is ``half_up``). The signed result is ``sign * (Q + increment)``. All arithmetic is
uint64 and exact; nothing passes through a float.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_U64 = np.uint64
_MASK32 = _U64(0xFFFFFFFF)
MAGNITUDE_CAP = 1 << 62  # results with |value| >= 2**62 are reported as this magnitude


class RoundedProduct(NamedTuple):
    """A rounded ``x * m / 2**s``.

    ``negative``: the product is negative. ``magnitude``: ``|result|`` as int64, capped at
    ``2**62`` (exact below the cap). ``low64``: the exact signed result modulo ``2**64`` as int64,
    for wrapping to any width of at most 64 bits.
    """

    negative: np.ndarray
    magnitude: np.ndarray
    low64: np.ndarray

    def value(self) -> np.ndarray:
        """The signed result as int64; exact wherever ``|result| < 2**62``."""
        return np.where(self.negative, -self.magnitude, self.magnitude)


def abs_u64(x: np.ndarray) -> np.ndarray:
    """``|x|`` of an int64 array as uint64, exact for every int64 (``|-2**63| = 2**63``)."""
    u = x.astype(_U64)  # two's-complement reinterpretation, modulo 2**64
    return np.where(x < 0, ~u + _U64(1), u)


def _pair_gt(rh, rl, th, tl):
    return (rh > th) | ((rh == th) & (rl > tl))


def _pair_eq(rh, rl, th, tl):
    return (rh == th) & (rl == tl)


def mul_shift_round(x: np.ndarray, m: np.ndarray, s: np.ndarray, rounding: str) -> RoundedProduct:
    """Exact ``round(x * m / 2**s)`` by dialect ``rounding``, elementwise with broadcasting.

    REQUIRE (checked by the callers) ``x``: int64; ``|m| <= 2**31``; ``0 <= s <= 127``.
    For ``s >= 96`` the result equals the one for ``s = 96`` because ``U <= 2**94 < 2**95``.
    """
    x, m, s = np.broadcast_arrays(np.asarray(x, np.int64), np.asarray(m, np.int64), np.asarray(s, np.int64))
    if x.ndim == 0:  # NumPy scalars warn on uint64 wraparound (which is intended here): use 1-d
        return RoundedProduct(*(part.reshape(()) for part in mul_shift_round(x.reshape(1), m.reshape(1),
                                                                              s.reshape(1), rounding)))
    s = np.minimum(s, 96).astype(_U64)
    negative = (x < 0) != (m < 0)
    ux, um = abs_u64(x), abs_u64(m)
    low = (ux & _MASK32) * um                       # < 2**63
    uh = (ux >> _U64(32)) * um + (low >> _U64(32))  # <= 2**62 + 2**31
    ul = low & _MASK32

    small = s <= _U64(32)
    s_lo = np.minimum(s, _U64(32))                  # shift amounts kept inside 0..63 for NumPy
    s_hi = np.clip(s, _U64(32), _U64(95)) - _U64(32)    # 63 stands for 64: UH < 2**63
    # Quotient: modulo 2**64 when s <= 32 (the exact value when it fits), exact when s > 32.
    q = np.where(small, (uh << (_U64(32) - s_lo)) + (ul >> s_lo), uh >> s_hi)
    huge = small & ((uh >> (_U64(30) + s_lo)) != _U64(0))   # Q >= 2**62
    # Remainder as a word pair (rh, rl): rh is zero when s <= 32.
    rh = np.where(small, _U64(0), uh & ((_U64(1) << s_hi) - _U64(1)))
    rl = np.where(small, ul & ((_U64(1) << s_lo) - _U64(1)), ul)
    increment = _increment(rounding, negative, q, rh, rl, s, small)

    q = q + increment.astype(_U64)
    magnitude = np.where(huge, _U64(MAGNITUDE_CAP), np.minimum(q, _U64(MAGNITUDE_CAP))).astype(np.int64)
    low64 = np.where(negative, ~q + _U64(1), q).astype(np.int64)
    return RoundedProduct(negative, magnitude, low64)


def _threshold(s, small, minus):
    """The word pair (th, tl) of ``2**(s-1) - minus``; ``minus`` is 0 or ``2**30`` (used only for
    ``s > 31``). For ``s = 0`` the half reads as 1, which no remainder (always 0) reaches."""
    half_exp = np.maximum(s, _U64(1)) - _U64(1)                       # 0..95
    th = np.where(small, _U64(0), _U64(1) << (np.maximum(half_exp, _U64(32)) - _U64(32)))
    tl = np.where(small, _U64(1) << np.minimum(half_exp, _U64(31)), _U64(0))
    if minus:
        # 2**(s-1) - 2**30 = (2**(s-33) - 1) * 2**32 + 3 * 2**30 when s > 32
        th = np.where(small, th, th - _U64(1))
        tl = np.where(small, tl - _U64(minus), _U64(3 << 30))
    return th, tl


def _increment(rounding, negative, q, rh, rl, s, small):
    if rounding == "floor":
        return negative & ((rh != _U64(0)) | (rl != _U64(0)))
    if rounding == "double_round":
        th, tl = _threshold(s, small, minus=1 << 30)
        gt, eq = _pair_gt(rh, rl, th, tl), _pair_eq(rh, rl, th, tl)
        double = gt | (eq & ~negative)
        half_up = _increment("half_up", negative, q, rh, rl, s, small)
        return np.where(s > _U64(31), double, half_up)
    th, tl = _threshold(s, small, minus=0)
    gt, eq = _pair_gt(rh, rl, th, tl), _pair_eq(rh, rl, th, tl)
    if rounding == "half_even":
        return gt | (eq & ((q & _U64(1)) == _U64(1)))
    if rounding == "half_away":
        return gt | eq
    if rounding == "half_up":
        return gt | (eq & ~negative)
    raise ValueError(f"unknown rounding {rounding!r}")


def rshift_round(v: np.ndarray, s, rounding: str) -> np.ndarray:
    """``round(v / 2**s)`` of an int64 array: ``mul_shift_round`` with ``m = 1``; exact, int64."""
    return mul_shift_round(v, np.int64(1), s, rounding).value()


def div_round_half_even(n: np.ndarray, d) -> np.ndarray:
    """Nearest integer to ``n / d`` (int64 ``n``), ties to even; twin of the spec function.

    REQUIRE ``0 < d < 2**62``, so that ``2 * remainder < 2 * d`` fits int64.
    """
    quotient, remainder = np.divmod(n, d)
    twice = 2 * remainder
    return quotient + ((twice > d) | ((twice == d) & ((quotient & 1) == 1)))
