"""How the five rounding dialects disagree and what bias each adds (notebooks/requant.ipynb's claims).

With the multiplier ``2**-k`` (``dyadic`` gives ``m = 2**30``, ``s = 30 + k``) and ``x`` over whole
periods of ``2**k`` symmetric about 0, every figure is an exact rational, checked with integers:

    bias = mean(y - x / 2**k):  half_even 0, half_away 0, half_up 2**-(k+1), floor -(1 - 2**-k) / 2,
                                double_round 2**-(k+1) (as half_up, but not at the same inputs)
    disagreement with half_up:  half_even 2**-(k+1) (ties with an even floor), half_away 2**-(k+1)
                                (negative ties), double_round 2**-k for k >= 2 (s > 31: positive x one
                                below a tie round up, negative ties round down), 0 for k <= 1
"""

from fractions import Fraction

import numpy as np
import pytest

from intref.kernels import requantize
from intref.quant import dyadic
from intref.spec.rounding import ROUNDING_MODES


def _dialects(k):
    x = np.arange(-(2 ** (k + 6)), 2 ** (k + 6), dtype=np.int64)          # 2**7 whole periods
    m, s = dyadic(2.0 ** -k)
    assert (m, s) == (2 ** 30, 30 + k)
    return x, {mode: requantize(x, m, s, rounding=mode, bits=32).astype(np.int64) for mode in ROUNDING_MODES}


def _bias(x, y, k) -> Fraction:
    return Fraction(int(np.sum(y * 2 ** k - x)), x.size * 2 ** k)


@pytest.mark.parametrize("k", range(0, 9))
def test_bias_of_each_dialect_is_exact(k):
    x, y = _dialects(k)
    tie = Fraction(1, 2 ** (k + 1)) if k else Fraction(0)
    assert _bias(x, y["half_even"], k) == 0 and _bias(x, y["half_away"], k) == 0
    assert _bias(x, y["half_up"], k) == tie and _bias(x, y["double_round"], k) == tie
    assert _bias(x, y["floor"], k) == -(1 - Fraction(1, 2 ** k)) / 2


@pytest.mark.parametrize("k", range(1, 9))
def test_disagreement_rates_with_half_up(k):
    x, y = _dialects(k)

    def rate(mode):
        return Fraction(int(np.count_nonzero(y[mode] != y["half_up"])), x.size)

    assert rate("half_even") == Fraction(1, 2 ** (k + 1)) and rate("half_away") == Fraction(1, 2 ** (k + 1))
    assert rate("double_round") == (Fraction(1, 2 ** k) if k >= 2 else 0)
    below_tie = (x >= 0) & (x % 2 ** k == 2 ** (k - 1) - 1)
    if k >= 2:      # double rounding's real error: more than half a unit at inputs one below a tie
        assert np.all(y["double_round"][below_tie] == y["half_up"][below_tie] + 1)


def test_with_a_calibrated_multiplier_only_exact_ties_split_the_single_roundings_and_double_round_moves_a_window():
    """m = 1431655765 (about 2/3 * 2**31), s = 40, every x in [-2**20, 2**20): the single-rounding
    dialects differ only where x * m / 2**s is an exact tie, and double_round differs from half_up
    exactly where the fraction lies within 2**(30-s) below a tie (x >= 0) or at / above one (x < 0):
    a window of width 2**-10 of each period, hit by about that fraction of the outputs."""
    m, s = 1431655765, 40
    x = np.arange(-(2 ** 20), 2 ** 20, dtype=np.int64)
    y = {mode: requantize(x, m, s, rounding=mode, bits=32).astype(np.int64) for mode in ROUNDING_MODES}
    frac = (x * m) % 2 ** s                          # |x * m| < 2**51: exact in int64
    half, window = 2 ** (s - 1), 2 ** 30
    ties = frac == half
    for mode in ("half_even", "half_away"):
        assert np.all(ties[y[mode] != y["half_up"]])
    moved = np.where(x >= 0, (frac >= half - window) & (frac < half), (frac >= half) & (frac < half + window))
    assert np.array_equal(y["double_round"] != y["half_up"], moved)
    assert 2.0 ** (29 - s) < np.mean(moved) < 2.0 ** (31 - s)     # measured 1.30e-3; the window is 2**-10
