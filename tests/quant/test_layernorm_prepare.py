"""prepare_layernorm: the guard shift (auto and explicit), exact bias_int, out_scale, and every
rejection path."""

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest

from intref.errors import DtypeError, RangeError, ShapeError
from intref.kernels.layernorm import i_layernorm
from intref.quant.layernorm import (
    floor_div_sqrt,
    layernorm_error_bound,
    prepare_layernorm,
)
import intref.spec.layernorm as spec
from intref.inttypes import INT64_MAX
from intref.spec.layernorm import LayerNormParams
from intref.spec.layernorm_bounds import variance_bound
from intref.testing import assert_identical


def decimal_bias(beta, gamma, channels):
    """floor(beta / gamma / (sqrt(C) / 2**30)) with 120 significant digits (an independent oracle)."""
    with localcontext() as ctx:
        ctx.prec = 120
        value = Decimal(beta) / Decimal(gamma) * (1 << 30) / Decimal(channels).sqrt()
        return int(value.to_integral_value(rounding="ROUND_FLOOR"))


# ---------------------------------------------------------------- guard shift

@pytest.mark.parametrize("channels,bits,expected", [
    (768, 22, 0), (768, 16, 0), (768, 32, 6), (1024, 32, 6), (4096, 32, 7), (2, 63, 33), (3, 40, 10),
    (1, 63, 0), (4096, 40, 15),
])
def test_auto_shift_is_the_smallest_provably_safe_one(channels, bits, expected):
    p = prepare_layernorm(np.ones(channels), np.zeros(channels), input_bits=bits)
    assert p.shift == expected
    assert variance_bound(channels, bits, p.shift) <= INT64_MAX
    assert p.shift == 0 or variance_bound(channels, bits, p.shift - 1) > INT64_MAX


def test_auto_shift_is_safe_on_the_widest_rows():
    # kernel == spec (Python ints, no wrap) on extreme rows at the auto shift
    for channels, bits in [(768, 32), (64, 48), (2, 63)]:
        p = prepare_layernorm(np.ones(channels), np.zeros(channels), input_bits=bits)
        lo, hi = p.input_range()
        q = np.array([[lo, hi] * (channels // 2), [hi] + [lo] * (channels - 1)], dtype=np.int64)
        want = np.array([spec.i_layernorm([int(v) for v in row], p) for row in q], dtype=np.int64)
        assert_identical(i_layernorm(q, p), want)


def test_explicit_shift_is_kept_when_safe_and_rejected_when_not():
    assert prepare_layernorm(np.ones(768), np.zeros(768), shift=7).shift == 7     # a trained shift
    assert prepare_layernorm(np.ones(768), np.zeros(768), input_bits=32, shift=np.int64(6)).shift == 6
    with pytest.raises(RangeError, match="smallest safe shift is 6") as info:
        prepare_layernorm(np.ones(768), np.zeros(768), input_bits=32, shift=5)
    assert info.value.argument == "shift"


@pytest.mark.parametrize("shift,error", [(-1, RangeError), (63, RangeError), (True, DtypeError),
                                         (2.0, DtypeError), ("fixed", DtypeError), (None, DtypeError)])
def test_rejects_malformed_shift(shift, error):
    with pytest.raises(error):
        prepare_layernorm(np.ones(4), np.zeros(4), shift=shift)


# ---------------------------------------------------------------- constants

def test_bias_int_is_exact_where_float_floor_is_not():
    # beta = fl(sqrt(3) / 2**30): beta / gamma / (sqrt(3) / 2**30) is just below 1 in exact
    # arithmetic, but float64 evaluates it to 1.0.
    beta, gamma = 1.6130980174698654e-09, 1.0
    assert math.floor(beta / gamma / (math.sqrt(3) / 2 ** 30)) == 1
    p = prepare_layernorm([gamma] * 3, [beta, -beta, 0.0])
    assert p.bias_int == (0, -1, 0)
    assert p.bias_int[:2] == (decimal_bias(beta, gamma, 3), decimal_bias(-beta, gamma, 3))


def test_bias_int_matches_a_high_precision_oracle():
    rng = np.random.default_rng(7)
    for channels in (1, 3, 4, 768, 1000):
        gamma = rng.choice([-1.0, 1.0], channels) * 10.0 ** rng.uniform(-4, 2, channels)
        beta = rng.normal(0.0, 3.0, channels) * 10.0 ** rng.uniform(-6, 1, channels)
        p = prepare_layernorm(gamma, beta)
        assert p.bias_int == tuple(decimal_bias(b, g, channels) for g, b in zip(gamma, beta))
        unit = math.sqrt(channels) / 2 ** 30
        assert p.out_scale == tuple(unit * g for g in gamma)
        assert p.channels == channels and p.input_bits == 22 and isinstance(p, LayerNormParams)


def test_floor_div_sqrt_on_exact_squares_and_signs():
    assert floor_div_sqrt(Fraction(6), 4) == 3 and floor_div_sqrt(Fraction(-6), 4) == -3
    assert floor_div_sqrt(Fraction(7), 4) == 3 and floor_div_sqrt(Fraction(-7), 4) == -4
    assert floor_div_sqrt(Fraction(0), 5) == 0
    assert floor_div_sqrt(Fraction(1, 3), 1) == 0 and floor_div_sqrt(Fraction(-1, 3), 1) == -1
    for k in range(1, 200):                                   # k * sqrt(2) is irrational: never exact
        t = Fraction(k)
        assert floor_div_sqrt(t, 2) == math.isqrt(k * k // 2)
        assert floor_div_sqrt(-t, 2) == -math.isqrt(k * k // 2) - 1


def test_error_bound_is_infinite_only_for_rows_below_E():
    p = prepare_layernorm(np.ones(4), np.zeros(4), input_bits=16, shift=0)
    q = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [-30000, 30000, 5, 7]], dtype=np.int16)
    bound = layernorm_error_bound(q, p)
    assert np.isinf(bound[0]).all() and np.isinf(bound[1]).all()   # T = 0 and T = 0.87 <= E = 2
    assert np.isfinite(bound[2]).all() and (bound[2] > 0).all()


# ---------------------------------------------------------------- rejection paths

def test_rejects_zero_gamma_naming_the_channel():
    with pytest.raises(RangeError) as info:
        prepare_layernorm([1.0, 0.5, 0.0, 0.0], [0.0] * 4)
    assert info.value.argument == "gamma" and info.value.index == (2,)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", ["gamma", "beta"])
def test_rejects_non_finite_values_naming_the_index(name, bad):
    values = {"gamma": [1.0, 1.0, 1.0], "beta": [0.0, 0.0, 0.0]}
    values[name][1] = bad
    with pytest.raises(RangeError) as info:
        prepare_layernorm(values["gamma"], values["beta"])
    assert info.value.argument == name and info.value.index == (1,)


def test_rejects_gamma_and_beta_of_different_lengths():
    with pytest.raises(ShapeError):
        prepare_layernorm([1.0, 1.0, 1.0], [0.0, 0.0])


@pytest.mark.parametrize("gamma", [[], [[1.0, 1.0]], 1.0])
def test_rejects_non_vectors(gamma):
    with pytest.raises(ShapeError):
        prepare_layernorm(gamma, np.zeros(np.shape(gamma)))


@pytest.mark.parametrize("gamma", [[True, False], [1 + 1j, 1.0], ["a", "b"], np.array([1.0, None])])
def test_rejects_non_real_values(gamma):
    with pytest.raises(DtypeError):
        prepare_layernorm(gamma, [0.0, 0.0])


@pytest.mark.parametrize("bits,error", [(1, RangeError), (64, RangeError), (22.0, DtypeError)])
def test_rejects_a_bad_input_width(bits, error):
    with pytest.raises(error):
        prepare_layernorm([1.0, 1.0], [0.0, 0.0], input_bits=bits)


def test_rejects_an_input_width_whose_row_sum_leaves_int64():
    with pytest.raises(RangeError) as info:
        prepare_layernorm([1.0] * 3, [0.0] * 3, input_bits=63)
    assert info.value.argument == "input_bits"


def test_rejects_a_bias_that_pushes_the_output_out_of_int64():
    with pytest.raises(RangeError) as info:
        prepare_layernorm([1.0, 1e-300], [0.0, 1.0])
    assert info.value.argument == "bias_int" and info.value.index == (1,)
