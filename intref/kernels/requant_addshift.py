"""Requantization by one add and one arithmetic shift: the ``add-shift`` paths of ``Requantize``
and ``ResidualAdd``, used where a load-time bound leaves room in int64 for the rounding constant.

``kernels.requant_fast`` rounds an int64 product ``p = x * m`` from its floor decomposition
``p = q * 2**s + r`` with a handful of comparisons on ``r``. When ``|p| + 2**(s-1) <= 2**63 - 1`` the
single-rounding dialects are one addition before the shift instead (``H = 2**(s-1)``, s >= 1):

| dialect   | result                                   | why                                        |
|-----------|------------------------------------------|--------------------------------------------|
| floor     | p >> s                                   |                                            |
| half_up   | (p + H) >> s                             | carries into q exactly when r >= H         |
| half_even | (p + (H - 1) + ((p >> s) & 1)) >> s      | r + H - 1 carries when r > H; the tie r = H carries only with q odd |
| half_away | (p + (H - 1) + (p > 0)) >> s             | the tie carries only for p > 0             |

and for ``s = 0`` every dialect gives ``p`` (the per-channel constants are 0 there). Every
intermediate is within ``[-|p|, |p| + H] ⊂ int64`` by the REQUIRE. ``double_round`` has two
thresholds and keeps the comparison paths.

The same rounding finishes the ``split32`` product (``kernels.requant_split``): with
``x * m = C * 2**32 + Bl`` (``|C| < 2**62 + 2**31``, ``0 <= Bl < 2**32``) and ``s >= 34``, the low
word only matters through whether it is zero, so it is folded into bit 0 of ``C`` as a sticky
bit, ``C' = C | (Bl != 0)``, and ``round(x * m / 2**s) = round(C' / 2**(s - 32))``: with
``t = s - 32 >= 2`` the bit moved is below the half bit ``t - 1``; a nonzero ``Bl`` makes the
remainder strictly between two multiples of ``2**32`` and ``C' mod 2**t`` odd, which compares
with the (even) ``2**(t-1)`` the same way and is never a tie; the sign of ``C'`` is the sign of
``x * m``; and ``C' >> t = C >> t``. ``|C'| + 2**(t-1) <= 2**62 + 2**31 + 2**61 < 2**63``.
tests/kernels/test_requant_addshift.py pins both paths to the general kernel at their bounds.
"""

from __future__ import annotations

import numpy as np

from ..inttypes import INT64_MAX, IntType
from .requant import fit_to_type
from .requant_split import SPLIT_BITS, split_product_proven

ADDSHIFT_ROUNDINGS = ("floor", "half_up", "half_even", "half_away")
MIN_SPLIT_ADDSHIFT_SHIFT = SPLIT_BITS + 2
_LOW = np.int64((1 << SPLIT_BITS) - 1)


def addshift_proven(x_magnitude: int, multipliers, shifts, rounding: str) -> bool:
    """True when ``|x| <= x_magnitude`` proves ``|x * m| + 2**(s-1) <= 2**63 - 1`` for every channel,
    every shift is 0..62 and the dialect is a single rounding."""
    m = np.ravel(multipliers).tolist()
    s = np.ravel(shifts).tolist()
    half = 1 << (max(s) - 1) if max(s) > 0 else 0
    return (rounding in ADDSHIFT_ROUNDINGS and 0 <= min(s) and max(s) <= 62
            and x_magnitude * max(max(m), -min(m)) + half <= INT64_MAX)


def split_addshift_proven(x_magnitude: int, multipliers, shifts, rounding: str) -> bool:
    """``split_product_proven`` with every shift at least 34 and a single-rounding dialect."""
    return (rounding in ADDSHIFT_ROUNDINGS and split_product_proven(x_magnitude, multipliers, shifts)
            and min(np.ravel(shifts).tolist()) >= MIN_SPLIT_ADDSHIFT_SHIFT)


def round_shift_in_place(p: np.ndarray, s: np.ndarray, rounding: str) -> np.ndarray:
    """``round(p / 2**s)`` by the module table, written into ``p`` (an int64 array the caller owns;
    a copy when per-channel ``s`` widens it) and returned. ``s``: an int64 scalar or per-channel
    array on the last axis, 0..62.
    REQUIRE ``|p| + 2**(s-1) <= 2**63 - 1`` elementwise and ``rounding`` in ``ADDSHIFT_ROUNDINGS``."""
    shape = np.broadcast_shapes(np.shape(p), np.shape(s))
    if np.shape(p) != shape:
        p = np.broadcast_to(p, shape).copy()
    positive = s > 0
    half = np.where(positive, np.left_shift(np.int64(1), np.maximum(s, 1) - 1), np.int64(0))
    if rounding == "half_up":
        p += half
    elif rounding == "half_even":
        p += np.right_shift(p, s) & positive.astype(np.int64)      # q's low bit (0 where s = 0)
        p += np.maximum(half - 1, 0)
    elif rounding == "half_away":
        p += (p > 0) & positive
        p += np.maximum(half - 1, 0)
    elif rounding != "floor":
        raise ValueError(f"add-shift rounding: {rounding!r} is not one of {ADDSHIFT_ROUNDINGS}")
    p >>= s
    return p


def saturate_or_wrap(value: np.ndarray, out_type: IntType, overflow: str) -> np.ndarray:
    """``kernels.requant.fit_to_type`` for a fresh int64 ``value`` this module owns: the clamp in place."""
    if overflow == "saturate":
        np.clip(value, out_type.lo, out_type.hi, out=value)
        return value.astype(out_type.storage)
    return fit_to_type(value, out_type, overflow, "requantize")


def requantize_addshift(x: np.ndarray, m, s, *, rounding: str, out_type: IntType, overflow: str) -> np.ndarray:
    """``requantize`` on the add-shift path. REQUIRE ``addshift_proven`` for ``x``'s bound, ``m``, ``s``."""
    p = np.multiply(x, np.asarray(m, np.int64), dtype=np.int64)       # exact by the REQUIRE
    return saturate_or_wrap(round_shift_in_place(p, np.asarray(s, np.int64), rounding), out_type, overflow)


def add_requantized_addshift(a: np.ndarray, b: np.ndarray, consts_a, consts_b, *, rounding: str,
                             out_type: IntType, overflow: str) -> np.ndarray:
    """``add_requantized`` with both branches on the add-shift path; REQUIRE ``addshift_proven`` for
    each and each rounded branch below 2**62 (the op's analysis), so the int64 sum is exact."""
    first, second = (round_shift_in_place(np.multiply(x, np.asarray(m, np.int64), dtype=np.int64),
                                          np.asarray(s, np.int64), rounding)
                     for x, (m, s) in ((a, consts_a), (b, consts_b)))
    shape = np.broadcast_shapes(first.shape, second.shape)
    total = first if first.shape == shape else np.broadcast_to(first, shape).copy()
    total += second                                                  # |each| < 2**62: exact
    return saturate_or_wrap(total, out_type, overflow)


def round_product_split_addshift(x: np.ndarray, m, s, rounding: str) -> np.ndarray:
    """``round(x * m / 2**s)`` as a new int64 array, on the split32 words with the sticky bit
    (module docstring). REQUIRE ``split_addshift_proven`` for ``x``'s bound, ``m`` and ``s``."""
    m = np.asarray(m, np.int64)
    x = np.asarray(x, dtype=np.int64)
    low = np.multiply(x & _LOW, m, dtype=np.int64)                   # B: |B| < 2**63
    c = np.multiply(x >> SPLIT_BITS, m, dtype=np.int64)
    c += low >> SPLIT_BITS                                           # C: |C| < 2**62 + 2**31
    low &= _LOW                                                      # Bl
    c |= low != 0                                                    # the sticky bit
    return round_shift_in_place(c, np.asarray(s, np.int64) - SPLIT_BITS, rounding)   # t = s - 32 in 2..62


def requantize_split_addshift(x: np.ndarray, m, s, *, rounding: str, out_type: IntType, overflow: str) -> np.ndarray:
    """``requantize`` on the split32 add-shift path. REQUIRE ``split_addshift_proven`` for ``x``'s
    bound, ``m`` and ``s``."""
    return saturate_or_wrap(round_product_split_addshift(x, m, s, rounding), out_type, overflow)
