"""Requantization of wide inputs in two int64 words: the ``split32`` path of ``kernels.requant``,
used where a load-time bound proves the words fit and every shift is at least 32.

The general kernel (``rounding.mul_shift_round``) forms ``|x| * |m|`` as a 95-bit word pair in
uint64 sign-magnitude, at about twenty array passes. When ``|x| <= X`` with
``((X >> 32) + 1) * max|m| <= 2**62`` (an int54 GELU output times a 31-bit multiplier, say) and
``32 <= s <= 94``, the signed product splits on the low 32 bits of ``x`` instead:

    xl = x & (2**32 - 1)          0 <= xl < 2**32
    xh = x >> 32                  floor;  x = xh * 2**32 + xl,  |xh| <= (X >> 32) + 1
    B  = xl * m                   |B| < 2**32 * 2**31 = 2**63        (int64, exact)
    C  = xh * m + (B >> 32)       |C| <= 2**62 + 2**31 < 2**63        (int64, exact)
    Bl = B & (2**32 - 1)          x * m = C * 2**32 + Bl,  0 <= Bl < 2**32

With ``t = s - 32`` the floor quotient is ``q = C >> t`` (adding ``Bl < 2**32`` never carries past
a multiple of ``2**s``), and the remainder ``r = (x * m) mod 2**s`` is the word pair
``(C & (2**t - 1), Bl)``. Each dialect then increments ``q`` exactly as in ``kernels.requant_fast``
(``r`` against ``H = 2**(s-1)``, ``H -+ 2**30`` for ``double_round``), comparing word pairs
lexicographically: a threshold ``T < 2**94`` is the pair ``(T >> 32, T & (2**32 - 1))``. The result
``q + inc`` is an exact int64 (``|q| <= |C|``). tests/kernels/test_requant_split.py pins it to the
general kernel on both sides of the proof.
"""

from __future__ import annotations

import numpy as np

from ..inttypes import IntType
from .requant import fit_to_type

SPLIT_BITS = 32
MAX_SPLIT_SHIFT = 94
_LOW = np.int64((1 << SPLIT_BITS) - 1)


def split_product_proven(x_magnitude: int, multipliers, shifts) -> bool:
    """True when ``|x| <= x_magnitude`` proves both words int64 and every shift in 32..94."""
    m = np.ravel(multipliers).tolist()
    s = np.ravel(shifts).tolist()
    return (((x_magnitude >> SPLIT_BITS) + 1) * max(max(m), -min(m)) <= 1 << 62 and max(m) <= 1 << 31
            and -min(m) <= 1 << 31 and min(s) >= SPLIT_BITS and max(s) <= MAX_SPLIT_SHIFT)


def _pair_at_least(high, low, t_high, t_low):
    """``(high, low) >= (t_high, t_low)`` for word pairs with ``0 <= low, t_low < 2**32``."""
    return (high > t_high) | ((high == t_high) & (low >= t_low))


def _threshold_pair(s: np.ndarray, minus: int):
    """``2**(s-1) - minus`` as a word pair, for ``32 <= s <= 94`` and ``|minus| <= 2**30``."""
    t = s - SPLIT_BITS                                 # 0..62
    at_32 = t == 0                                    # H = 2**31: all in the low word
    high = np.where(at_32, 0, np.left_shift(np.int64(1), np.maximum(t, 1) - 1))
    low = np.where(at_32, np.int64(1 << 31), np.int64(0)) - minus
    borrow = low < 0                                  # H - 2**30 with H >= 2**32: borrow from the high word
    return high - borrow, low + borrow * np.int64(1 << 32)   # H + 2**30 <= 3 * 2**30: no carry


def round_product_split(x: np.ndarray, m: np.ndarray, s: np.ndarray, rounding: str) -> np.ndarray:
    """``round(x * m / 2**s)`` as a new int64 array, by dialect ``rounding`` (module docstring).

    REQUIRE (the caller's load-time proof, ``split_product_proven``): ``|x| <= X`` with
    ``((X >> 32) + 1) * |m| <= 2**62``, ``|m| <= 2**31`` and ``32 <= s <= 94``; ``m`` and ``s``
    int64 scalars or per-channel arrays on the last axis.
    """
    x = np.asarray(x, dtype=np.int64)
    b = np.multiply(x & _LOW, m, dtype=np.int64)                   # |B| < 2**63
    c = np.multiply(x >> SPLIT_BITS, m, dtype=np.int64)
    c += b >> SPLIT_BITS                                           # |C| < 2**63
    b &= _LOW                                                      # Bl
    t = s - SPLIT_BITS
    q = c >> t
    if rounding == "floor":
        return q
    c &= np.left_shift(np.int64(1), t) - 1                         # the remainder's high word
    if rounding == "double_round":
        positive = ((x > 0) & (m > 0)) | ((x < 0) & (m < 0)) | ((c == 0) & (b == 0))
        low_t = _threshold_pair(s, 1 << 30)
        high_t = _threshold_pair(s, -(1 << 30))
        q += np.where(positive, _pair_at_least(c, b, *low_t), _pair_at_least(c, b, *high_t))
        return q
    h_high, h_low = _threshold_pair(s, 0)
    above = _pair_at_least(c, b, h_high, h_low)
    if rounding == "half_up":
        q += above
        return q
    tie = (c == h_high) & (b == h_low)
    if rounding == "half_even":
        q += above & (~tie | ((q & 1) == 1))
    elif rounding == "half_away":
        q += above & (~tie | (((x > 0) & (m > 0)) | ((x < 0) & (m < 0))))
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    return q


def requantize_split(x: np.ndarray, m, s, *, rounding: str, out_type: IntType, overflow: str,
                     where: str = "requantize") -> np.ndarray:
    """``requantize`` on the split path: same result, same errors as the general kernel.
    REQUIRE ``split_product_proven`` for ``x``'s bound, ``m`` and ``s``."""
    value = round_product_split(x, np.asarray(m, np.int64), np.asarray(s, np.int64), rounding)
    return fit_to_type(value, out_type, overflow, where)
