"""Exact bounds of the integer LayerNorm (build and load time; Python ints): the proofs behind
``LayerNormParams``' ERROR_IF (row sum and variance inside int64) and its ``output_range``. The
derivation of the normalised range is in ``intref.spec.layernorm``'s module docstring.
"""

from __future__ import annotations

from ..inttypes import INT64_MAX

FACTOR_NUMERATOR = 1 << 31   # factor = floor(2**31 / std): norm ~ 2**30 * y / std


def row_sum_bound(channels: int, input_bits: int) -> int:
    """``max |sum(q)|`` over rows of ``channels`` values of ``int<input_bits>``: ``C * 2**(b-1)``."""
    return channels << (input_bits - 1)


def variance_bound(channels: int, input_bits: int, shift: int) -> int:
    """A proven upper bound on ``var = sum(floor(y / 2**shift)**2)`` over every legal row.

    ``mean`` is the rounded mean of integers in ``[lo, hi]``, so it lies in ``[lo, hi]`` too and
    ``|y| <= hi - lo = R = 2**b - 1``; then ``|floor(y / 2**s)| <= ceil(R / 2**s)`` and
    ``var <= C * ceil(R / 2**s)**2`` (and ``var == 0`` when ``C == 1``). Exact Python ints. It
    bounds every term separately, so for wide inputs it is about 4x (4.5x for ``C = 3``) above the
    true maximum (about ``C * R**2 / 4**(s+1)``, half the row at each end): ``min_safe_shift`` may
    pick one guard bit (rarely two) more than a sharper analysis would.
    """
    if channels == 1:
        return 0                                          # a lone value is its own mean: y == 0
    spread = (1 << input_bits) - 1
    largest = (spread + (1 << shift) - 1) >> shift        # ceil(R / 2**s)
    return channels * largest * largest


def min_safe_shift(channels: int, input_bits: int) -> int:
    """The smallest ``shift`` with ``variance_bound(channels, input_bits, shift) <= INT64_MAX``."""
    shift = 0
    while variance_bound(channels, input_bits, shift) > INT64_MAX:
        shift += 1
    return shift


def normalized_range(channels: int, input_bits: int, shift: int) -> tuple[int, int]:
    """``(lo, hi)`` of ``norm = floor(y * factor / 2)`` over every legal row (module docstring).

    ``y * factor`` lies in ``[-min(2**31, R * 2**(31-s)), min(2**32 - 2**(31-s), R * 2**(31-s))]``
    for ``s <= 31`` (the extremes sit at ``r = 1``), and is 0 for ``s >= 32`` or ``C == 1``.
    """
    if channels == 1 or shift > 31:
        return 0, 0
    spread = (1 << input_bits) - 1
    unit = FACTOR_NUMERATOR >> shift                      # factor at r = 1
    most_negative = min(FACTOR_NUMERATOR, spread * unit)
    most_positive = min(2 * FACTOR_NUMERATOR - unit, spread * unit)
    return -((most_negative + 1) >> 1), most_positive >> 1
