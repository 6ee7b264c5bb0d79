"""The spec's rounding dialects against independent oracles.

- ``Fraction`` arithmetic for the four nearest/floor dialects (no shifts, no bit tricks);
- an independent transcription of gemmlowp's SaturatingRoundingDoublingHighMul and
  RoundingDivideByPOT (TFLite's default MultiplyByQuantizedMultiplier) for ``double_round``;
- the tie table of notes/kernels-sota-and-targets.md section 7, case by case.
"""

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.quant.dyadic import dyadic
from intref.spec.requant import requantize
from intref.spec.rounding import ROUNDING_MODES, div_round_half_even, rshift_round

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def fraction_round(v: Fraction, mode: str) -> int:
    """Reference rounding of an exact rational, written from the dialects' definitions."""
    floor = math.floor(v)
    frac = v - floor
    if mode == "floor":
        return floor
    if frac != Fraction(1, 2):
        return floor + (frac > Fraction(1, 2))
    if mode == "half_up":
        return floor + 1
    if mode == "half_away":
        return floor + 1 if v > 0 else floor
    if mode == "half_even":
        return floor + (floor % 2)
    raise ValueError(mode)


@given(st.integers(-(1 << 94), 1 << 94), st.integers(0, 100), st.sampled_from(["floor", "half_up", "half_away", "half_even"]))
def test_single_rounding_dialects_equal_fraction_rounding(v, shift, mode):
    assert rshift_round(v, shift, mode) == fraction_round(Fraction(v, 1 << shift), mode)


def test_exact_ties_every_shift():
    for shift in range(1, 70):
        for k in (-3, -2, -1, 0, 1, 2, 3, 1 << 40):
            v = (2 * k + 1) << (shift - 1)  # v / 2**shift == k + 1/2 exactly
            for mode in ("floor", "half_up", "half_away", "half_even"):
                assert rshift_round(v, shift, mode) == fraction_round(Fraction(v, 1 << shift), mode), (shift, k, mode)


# --- gemmlowp, transcribed from its documented semantics (fixedpoint.h), int32 in and out ---

def gemmlowp_srdhm(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul: (a*b + nudge) / 2**31, C division (truncation)."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    total = ab + nudge
    quotient = abs(total) // (1 << 31)
    return quotient if total >= 0 else -quotient


def gemmlowp_rdbpot(x: int, exponent: int) -> int:
    """RoundingDivideByPOT: round half away from zero of x / 2**exponent."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def tflite_multiply_by_quantized_multiplier(x: int, m: int, exponent: int) -> int:
    """TFLite default: left shift for positive exponents, then SRDHM, then RDBPOT."""
    left, right = max(exponent, 0), max(-exponent, 0)
    return gemmlowp_rdbpot(gemmlowp_srdhm(x * (1 << left), m), right)


@given(st.integers(INT32_MIN, INT32_MAX), st.integers(0, INT32_MAX), st.integers(-31, 0))
def test_double_round_equals_gemmlowp_for_right_shifts(x, m, exponent):
    shift = 31 - exponent  # our (m, shift) meaning of TFLite's (m, exponent)
    assert rshift_round(x * m, shift, "double_round") == tflite_multiply_by_quantized_multiplier(x, m, exponent)


@given(st.integers(-(1 << 20), 1 << 20), st.integers(0, INT32_MAX), st.integers(1, 10))
def test_double_round_equals_gemmlowp_for_left_shifts(x, m, left):
    assert rshift_round(x * m, 31 - left, "double_round") == tflite_multiply_by_quantized_multiplier(x, m, left)


@given(st.integers(INT32_MIN, INT32_MAX), st.integers(INT32_MIN + 1, -1), st.integers(-31, 0))
def test_double_round_equals_gemmlowp_for_negative_multipliers(x, m, exponent):
    assert rshift_round(x * m, 31 - exponent, "double_round") == tflite_multiply_by_quantized_multiplier(x, m, exponent)


def test_double_round_differs_from_gemmlowp_only_at_its_saturating_product():
    # gemmlowp saturates INT32_MIN * INT32_MIN to INT32_MAX; the exact product rounds to 2**31.
    assert rshift_round(INT32_MIN * INT32_MIN, 31, "double_round") == 1 << 31
    assert gemmlowp_srdhm(INT32_MIN, INT32_MIN) == INT32_MAX


def test_double_rounding_really_is_double():
    # notes section 7: x = 1, M = 0.3 gives 1 under double rounding (0.3 -> 0.6 -> 1 would be wrong
    # for single rounding, which gives 0).
    m, shift = dyadic(0.3)
    assert shift > 31
    assert requantize(1, m, shift, rounding="double_round") == tflite_multiply_by_quantized_multiplier(1, m, 31 - shift)
    assert requantize(1, m, shift, rounding="half_up") == 0


# --- the tie table, notes/kernels-sota-and-targets.md section 7 ---
# columns: exact half-away, gemmlowp double, TFLite single (half_up), I-BERT (half_even), floor
TIE_TABLE = [
    # (x, M,    half_away, double_round, half_up, half_even, floor)
    (3, 0.5, 2, 2, 2, 2, 1),       # 1.5
    (-3, 0.5, -2, -1, -1, -2, -2),  # -1.5
    (5, 0.5, 3, 3, 3, 2, 2),       # 2.5
    (-6, 0.25, -2, -2, -1, -2, -2),  # -1.5
    (-10, 0.25, -3, -3, -2, -2, -3),  # -2.5
]


@pytest.mark.parametrize("row", TIE_TABLE, ids=lambda row: f"{row[0]}*{row[1]}")
def test_tie_table(row):
    x, real, *expected = row
    m, shift = dyadic(real)  # M = 1/2 -> (2**30, 31); M = 1/4 -> (2**30, 32): double rounding applies
    modes = ("half_away", "double_round", "half_up", "half_even", "floor")
    got = [requantize(x, m, shift, rounding=mode) for mode in modes]
    assert got == list(expected), dict(zip(modes, got))
    assert [rshift_round(x * m, shift, mode) for mode in modes] == list(expected)


def test_gemmlowp_is_half_up_at_shift_31_and_half_away_beyond():
    m, shift = dyadic(0.5)
    assert shift == 31 and tflite_multiply_by_quantized_multiplier(-3, m, 0) == -1  # half up
    m, shift = dyadic(0.25)
    assert shift == 32 and tflite_multiply_by_quantized_multiplier(-6, m, -1) == -2  # half away


@given(st.integers(-(1 << 70), 1 << 70), st.integers(1, (1 << 40)))
def test_div_round_half_even_equals_python_round_of_fraction(n, d):
    assert div_round_half_even(n, d) == round(Fraction(n, d))  # Python rounds Fractions half to even


def test_every_mode_is_named_and_shift_zero_is_identity():
    assert set(ROUNDING_MODES) == {"half_even", "half_up", "double_round", "half_away", "floor"}
    for mode in ROUNDING_MODES:
        for v in (-5, -1, 0, 1, 7):
            assert rshift_round(v, 0, mode) == v
    with pytest.raises(ValueError):
        rshift_round(1, -1, "floor")
