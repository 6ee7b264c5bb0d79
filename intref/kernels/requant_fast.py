"""Requantization in plain int64: the fast path of ``kernels.requant``, used where a load-time
bound proves the product ``x * m`` fits int64.

The general kernel (``rounding.mul_shift_round``) forms every product as a 95-bit word pair,
because an int64 ``x`` times a 32-bit multiplier can need 95 bits. When the node's input type
bounds ``|x| <= X`` and ``X * max|m| <= 2**63 - 1`` (``int64_product_proven``), the product ``p``
is an exact int64 and, with ``s <= 62``, the rounding reads off the floor decomposition

    p = q * 2**s + r,   q = p >> s (floor),   0 <= r < 2**s,   result = q + inc,  inc in {0, 1}

where ``inc`` is 1 exactly when the dialect rounds up (toward +infinity), H = 2**(s-1):

| dialect       | inc                                                       |
|---------------|-----------------------------------------------------------|
| floor         | 0                                                         |
| half_up       | r >= H                                                    |
| half_even     | r > H, or r == H and q odd                                |
| half_away     | r > H, or r == H and p > 0                                |
| double_round  | s <= 31: half_up; s > 31: r >= H - 2**30 (p >= 0), r >= H + 2**30 (p < 0) |

(For ``s = 0``, ``r = 0`` and no dialect increments; H is taken as 1.) The double_round rule is the
sign-magnitude one of ``kernels.rounding`` rewritten on the floor quotient: for ``p < 0`` and
``r > 0`` the magnitude rounds up when ``2**s - r > T`` with ``T = H - 2**30``, which is when the
signed result stays at ``q``. Every intermediate is an int64: ``|p| <= 2**63 - 1``, ``r = p & (2**s - 1)``
(two's complement), ``q + inc <= 2**62`` for ``s >= 1``, ``H + 2**30 <= 2**62``. The result is identical to the general path
(tests/kernels/test_requant_fast.py pins both sides of the proof boundary).
"""

from __future__ import annotations

import numpy as np

from ..inttypes import INT64_MAX, IntType
from .requant import fit_to_type

MAX_FAST_SHIFT = 62


def int64_product_proven(x_magnitude: int, multipliers, shifts) -> bool:
    """True when ``|x| <= x_magnitude`` proves every ``x * m`` an int64 and every shift <= 62."""
    m = np.ravel(multipliers).tolist()           # Python ints (per-channel tuples: one C-level pass)
    m_max = max(max(m), -min(m))
    return x_magnitude * m_max <= INT64_MAX and max(np.ravel(shifts).tolist()) <= MAX_FAST_SHIFT


def round_product_int64(x: np.ndarray, m: np.ndarray, s: np.ndarray, rounding: str) -> np.ndarray:
    """``round(x * m / 2**s)`` as a new int64 array, by dialect ``rounding`` (module table).

    REQUIRE (the caller's load-time proof): ``|x * m| <= 2**63 - 1`` for every element and
    ``0 <= s <= 62``; ``m`` and ``s`` are int64 scalars or per-channel arrays on the last axis.
    """
    p = np.multiply(x, m, dtype=np.int64)               # exact by the REQUIRE
    q = np.right_shift(p, s)                              # floor(p / 2**s)
    if rounding == "floor":
        return q
    in_place = p if p.shape == q.shape else None          # p may be narrower than q (per-channel s)
    r = np.bitwise_and(p, np.left_shift(np.int64(1), s) - 1, out=in_place)   # p mod 2**s: 0 <= r < 2**s
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s, 1) - 1), np.int64(1))
    if rounding == "half_up":
        q += r >= half
    elif rounding == "half_even":
        q += (r > half) | ((r == half) & ((q & 1) == 1))
    elif rounding == "half_away":
        q += (r > half) | ((r == half) & _product_positive(x, m))
    elif rounding == "double_round":
        wide = s > 31
        step = np.int64(1 << 30)
        threshold = np.where(_product_positive(x, m) | (r == 0), half - step, half + step)
        q += np.where(wide, r >= threshold, r >= half)
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    return q


def _product_positive(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``x * m > 0`` elementwise, without forming the product again."""
    return ((x > 0) & (m > 0)) | ((x < 0) & (m < 0))


def requantize_int64(x: np.ndarray, m, s, *, rounding: str, out_type: IntType, overflow: str,
                     where: str = "requantize") -> np.ndarray:
    """``requantize`` on the int64 path: same result, same errors (``OverflowCheckError`` with the
    exact value under ``check``). REQUIRE ``int64_product_proven`` for ``x``'s bound, ``m`` and ``s``."""
    value = round_product_int64(x, np.asarray(m, np.int64), np.asarray(s, np.int64), rounding)
    return fit_to_type(value, out_type, overflow, where)


def add_requantized_int64(a: np.ndarray, b: np.ndarray, consts_a, consts_b, *, rounding: str,
                          out_type: IntType, overflow: str) -> np.ndarray:
    """``add_requantized`` on the int64 path: each branch rounded on its own, added, fit once.

    REQUIRE ``int64_product_proven`` for each branch and each rounded branch below 2**62 (the
    op's analysis refuses graphs where it is not), so the int64 sum is exact.
    """
    total = round_product_int64(a, *(np.asarray(c, np.int64) for c in consts_a), rounding)
    total += round_product_int64(b, *(np.asarray(c, np.int64) for c in consts_b), rounding)
    return fit_to_type(total, out_type, overflow, "add_requantized")
