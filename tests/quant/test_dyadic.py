"""quant.dyadic reproduces I-BERT's batch_frexp (frexp + Decimal ROUND_HALF_UP mantissa) exactly."""

import decimal
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.errors import RangeError
from intref.quant.dyadic import dyadic, dyadic_value


def batch_frexp_transcribed(real: float):
    """I-BERT batch_frexp for one value, from its description (notes section 2.5): frexp, then
    Decimal(m * 2**31).quantize(1, ROUND_HALF_UP), shift = 31 - e."""
    mantissa, exponent = math.frexp(real)
    scaled = decimal.Decimal(mantissa * (1 << 31))
    m_int = int(scaled.quantize(decimal.Decimal("1"), rounding=decimal.ROUND_HALF_UP))
    return m_int, 31 - exponent


FINITE = st.floats(min_value=-(2.0 ** 31) * (1 - 2 ** -53), max_value=(2.0 ** 31) * (1 - 2 ** -53),
                   allow_nan=False, allow_infinity=False, allow_subnormal=False)


@given(FINITE)
def test_equals_batch_frexp(real):
    assert dyadic(real) == batch_frexp_transcribed(real)


def test_mantissa_ties_round_away_from_zero():
    for k in (1 << 30, (1 << 30) + 1, (1 << 31) - 2):
        for exponent in (-20, 0, 5):
            real = math.ldexp(k + 0.5, exponent - 31)  # mantissa * 2**31 == k + 1/2 exactly
            assert dyadic(real) == (k + 1, 31 - exponent)
            assert dyadic(-real) == (-(k + 1), 31 - exponent)
            assert dyadic(real) == batch_frexp_transcribed(real)


def test_mantissa_may_round_up_to_two_to_the_31():
    real = (2 ** 31 - 0.5) / 2 ** 31  # mantissa * 2**31 = 2**31 - 1/2 -> 2**31, kept as I-BERT keeps it
    assert dyadic(real) == (1 << 31, 31)


def test_zero_and_signs():
    assert dyadic(0.0) == (0, 31)
    assert dyadic(0.5) == (1 << 30, 31)
    assert dyadic(-0.25) == (-(1 << 30), 32)


def test_array_form_equals_scalar_form():
    rng = np.random.default_rng(3)
    reals = np.concatenate([rng.uniform(-4, 4, 500), 10.0 ** rng.uniform(-9, 2, 497), [0.0, 1.0, -1.0, 0.5]])
    reals = reals.reshape(143, 7)
    multipliers, shifts = dyadic(reals)
    assert multipliers.dtype == np.int64 and shifts.dtype == np.int64 and multipliers.shape == (143, 7)
    for index in np.ndindex(*multipliers.shape):
        assert (int(multipliers[index]), int(shifts[index])) == dyadic(float(reals[index]))


@given(st.floats(min_value=1e-12, max_value=1e6))
def test_relative_error_at_most_two_to_the_minus_31(real):
    m, shift = dyadic(real)
    assert 1 << 30 <= abs(m) <= 1 << 31
    assert abs(dyadic_value(m, shift) - real) <= real * 2.0 ** -31


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), 2.0 ** 31, -(2.0 ** 40)])
def test_rejects_non_finite_or_too_large(bad):
    with pytest.raises(RangeError, match="real"):
        dyadic(bad)
    with pytest.raises(RangeError) as info:
        dyadic(np.array([[0.5, 0.5], [0.5, bad]]))
    assert info.value.index == (1, 1)
