"""Requantization estimated in float64 and proven per element: the ``float64 near-tie`` path.

The integer paths spend 8 to 13 int64 passes on an element (a 95-bit product takes two words). This
path computes the same quotient in float64, keeps the estimate wherever an error bound proves that
rounding it gives the exact integer, and hands any block holding an element it cannot prove to the
exact integer path (the node's planned one). The result is the integer kernel's, bit for bit; the
float is a cheaper way to find it, never an approximation of it.

    c = m * 2**-s        exact: |m| <= 2**31 needs at most 32 significant bits and 2**-s is a normal
                         float64 for s <= 127
    y = fl(fl(x) * c)    two IEEE operations

Error. Each operation rounds once, with a relative error of at most one ulp, 2u = 2**-52, in any
rounding mode, so ``|y - x*c| <= |x*c| * (4u + 4u**2) < |x*c| * 2**-50.99``. No underflow: ``x`` is 0
or ``|x| >= 1``, and ``|c| >= 2**-127`` unless ``m = 0`` (then ``y = 0``, exact).

Rounding. ``r = rint(y)`` is the integer nearest ``y`` and ``d = |y - r|`` is computed exactly
(Sterbenz: ``r/2 <= y <= 2r`` whenever ``r != 0``); in another rounding mode ``r`` is an integer within
1 of ``y`` and ``d`` is within 2**-53 of the true distance, far inside the margin below. If ``|y|`` is
at most ``B`` and ``EPS = tie_margin(B) >= B * 2**-48`` (eight times the error for every ``|x*c| <= B *
(1 + 2**-50)``), then ``d < 1/2 - EPS`` gives ``|x*c - r| < 1/2``: ``r`` is the one integer nearest
``x*c``, which is ``round(x*c)`` in every half dialect (half_even, half_up, half_away differ only at
ties, and ``x*c`` is not one). ``d >= 1/2 - EPS`` marks the element "near a tie"; floor and double_round
are not nearest-integer roundings and never take this path.

``Requantize`` (saturating into ``[lo, hi]``, ``L = 2**bits >= max(-lo, hi + 1)``, ``B = 2L``): where
``|y| > 2L``, ``|x*c| > 2L * (1 - 2**-50) > L + 1``, so ``round(x*c)`` is beyond the type on ``y``'s
side, and so is ``r``: the clamp gives the same bound. Any input magnitude.

``ResidualAdd`` (each branch rounded on its own, then added): a branch's ``|x*c|`` is bounded by its
input TYPE's magnitude times ``max|c|`` (``B``); the branch is proven when ``B <= 2**44`` (so
``EPS <= 2**-4``), and then both rounded branches are integers below ``2**45`` whose float64 sum is exact.
A branch whose every ``m`` is a multiple of ``2**s`` is an integer ``x * (m >> s)`` with no rounding at all
(``exact_branch``): it is converted, multiplied only when the factor is not 1, and never checked.

tests/kernels/test_requant_float.py pins both kernels to the general one on exact ties, on the
neighbours of ties where a float64 product misrounds, at ``|x|`` up to ``2**63 - 1`` and at the
``B = 2**44`` boundary; the ops plan the path only where ``float_requantize_proven`` /
``float_branch_proven`` hold.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..inttypes import IntType

NEAREST_ROUNDINGS = ("half_even", "half_up", "half_away")
MAX_BRANCH_MAGNITUDE = 1 << 44
_ERROR_BITS = 48                    # EPS = B * 2**-48 for a magnitude bound B (module docstring)


def float_requantize_proven(rounding: str, overflow: str, shifts) -> bool:
    """``Requantize``'s proof: a nearest-integer dialect, a saturating fit, every shift <= 127. (Its
    output has at most 32 bits, the op's own limit, so ``EPS <= 2**-14``: near-tie blocks stay rare.)"""
    return rounding in NEAREST_ROUNDINGS and overflow == "saturate" and max(np.ravel(shifts).tolist()) <= 127


def float_branch_proven(x_magnitude: int, multipliers, shifts, rounding: str) -> bool:
    """A ``ResidualAdd`` branch's proof: the requantize one (without the fit) and
    ``|x| * max|m| / 2**min(s) <= 2**44`` for ``|x| <= x_magnitude``."""
    m, s = np.ravel(multipliers).tolist(), np.ravel(shifts).tolist()
    return (rounding in NEAREST_ROUNDINGS and max(s) <= 127
            and x_magnitude * max(max(m), -min(m)) <= MAX_BRANCH_MAGNITUDE << min(s))


def exact_branch(multipliers, shifts) -> bool:
    """Every ``m`` a multiple of ``2**s``: ``x * m / 2**s`` is the integer ``x * (m >> s)``, no rounding.
    A per-tensor value pairs with each channel of the other."""
    m, s = np.broadcast_arrays(np.asarray(multipliers, dtype=np.int64), np.asarray(shifts, dtype=np.int64))
    return all(mi % (1 << si) == 0 for mi, si in zip(m.ravel().tolist(), s.ravel().tolist()))   # per channel


def scale_float64(multipliers, shifts) -> np.ndarray:
    """``m * 2**-s`` as float64, exactly (module docstring), in the constants' shape."""
    return np.ldexp(np.asarray(multipliers, dtype=np.int64).astype(np.float64), -np.asarray(shifts, dtype=np.int64))


def tie_margin(magnitude_bound: int) -> float:
    """``EPS``: the smallest power of two at least ``magnitude_bound * 2**-48`` (module docstring)."""
    return float(np.ldexp(1.0, max(int(magnitude_bound).bit_length() - _ERROR_BITS, -1074)))


def as_float64(x: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """``x``'s integers as float64: ``x`` itself when it is float64 and ``overwrite`` allows writing it,
    else a new array."""
    return x if overwrite and x.dtype == np.float64 else x.astype(np.float64)


def multiply_float64(x: np.ndarray, c: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """``fl(fl(x) * c)`` as a new float64 array of the broadcast shape: a per-channel ``c`` widens a
    last axis of 1 (a ``ResidualAdd``'s ``b``). Converted first, then multiplied in place where the
    shape stays (1.5x faster than NumPy's mixed-type multiply per channel). ``overwrite``: a float64
    ``x`` may be that array (a fused chain's own temporary, ``intref.fusion``)."""
    y = as_float64(x, overwrite)
    if np.ndim(c) == 0 or (y.ndim and y.shape[-1] == np.shape(c)[-1]):
        y *= c
        return y
    return y * c


def rounded_estimate(x: np.ndarray, c: np.ndarray, eps: Optional[float], overwrite: bool = False):
    """``(r, proven)``: ``r = rint(fl(fl(x) * c))`` as float64 and whether every element is at least
    ``EPS`` away from a tie (then ``r == round(x * c)`` wherever ``|x * c|`` is within the bound ``eps``
    was made for). ``eps=None`` takes the bound from this array: every ``|y| <= max|r| + 1``.
    ``x``: any integer array; ``c``: a float64 scalar or per-channel array."""
    y = multiply_float64(x, c, overwrite)
    r = np.rint(y)
    if not r.size:
        return r, True
    if eps is None:
        eps = tie_margin(int(max(r.max(), -r.min())) + 1)
    y -= r                                   # exact (Sterbenz), |y| <= 1
    return r, max(float(y.max()), -float(y.min())) < 0.5 - eps   # two reads: cheaper than |y| and a read


def requantized_float(x: np.ndarray, c: np.ndarray, eps: float, out_type: IntType,
                      overwrite: bool = False) -> Optional[np.ndarray]:
    """``Requantize`` with saturation into ``out_type`` as float64 integers, or None when some
    element is near a tie (the caller then runs the exact integer path). ``x``: integers held in any
    integer or float dtype (a fused chain's float64 carrier, ``intref.fusion``); written only with
    ``overwrite`` (``multiply_float64``).
    REQUIRE ``float_requantize_proven`` and ``eps = tie_margin(2**(out_type.bits + 1))``."""
    r, proven = rounded_estimate(x, c, eps, overwrite)
    if not proven:
        return None
    np.clip(r, out_type.lo, out_type.hi, out=r)
    return r


def requantize_float(x: np.ndarray, c: np.ndarray, eps: float, out_type: IntType,
                     exact: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``Requantize`` with saturation into ``out_type``: the float64 estimate where proven, else
    ``exact(x)`` (the node's integer path) for the whole array. REQUIRE ``float_requantize_proven``
    and ``eps = tie_margin(2**(out_type.bits + 1))``."""
    r = requantized_float(x, c, eps, out_type)
    return exact(x) if r is None else r.astype(out_type.storage)


def branch_float(x: np.ndarray, c, eps: float, exact: bool, overwrite: bool = False):
    """One ``ResidualAdd`` branch as float64 integers and whether it is proven (``exact``: the
    multiple-of-``2**s`` case, no rounding and nothing to check; ``c`` is then None for a factor of 1).
    ``overwrite``: as in ``multiply_float64``."""
    if exact:                                # an integer below 2**45: exact
        if c is None:
            return as_float64(x, overwrite), True
        return multiply_float64(x, c, overwrite), True
    return rounded_estimate(x, c, eps, overwrite)


def branch_constants(multipliers, shifts) -> tuple:
    """``(c, eps, exact)`` for ``branch_float``, ``eps`` None: each block's own bound (``rounded_estimate``),
    as the type's bound would flag every few thousand elements. REQUIRE ``float_branch_proven``."""
    c = scale_float64(multipliers, shifts)
    exact = exact_branch(multipliers, shifts)
    return (None if exact and np.all(c == 1.0) else c), None, exact


def added_requantized_float(a: np.ndarray, b: np.ndarray, branch_a, branch_b, out_type: IntType,
                            overwrite: bool = False) -> Optional[np.ndarray]:
    """``ResidualAdd`` with saturation as float64 integers: both branches estimated, added (exact below
    2**53), clamped; None when a branch is not proven. ``a``, ``b``: integers in any integer or float
    dtype; ``b`` is not written, ``a`` only with ``overwrite``. ``branch_*``: ``branch_constants(...)`` of each. REQUIRE ``float_branch_proven``
    for both and a saturating fit."""
    first, proven = branch_float(a, *branch_a, overwrite=overwrite)
    if proven:
        second, proven = branch_float(b, *branch_b)
    if not proven:
        return None
    first += second                          # a has the output's shape; b may broadcast to it
    np.clip(first, out_type.lo, out_type.hi, out=first)
    return first


def add_requantized_float(a: np.ndarray, b: np.ndarray, branch_a, branch_b, out_type: IntType,
                          exact: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """``added_requantized_float`` as ``out_type``'s storage, or ``exact(a, b)`` for the whole array
    when a branch is not proven."""
    r = added_requantized_float(a, b, branch_a, branch_b, out_type)
    return exact(a, b) if r is None else r.astype(out_type.storage)
