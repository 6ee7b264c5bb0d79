"""The softmax's exp requantization on the int64 path equals the general 95-bit path wherever
``int64_exp_product_proven`` holds, on both sides of the proof and for every shift 0..127."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.kernels.rounding import mul_shift_round
from intref.kernels.softmax import int64_exp_product_proven, rounded_exp_product
from intref.spec.softmax import EXP_ROUNDING_MODES, SoftmaxParams


def params(c_int, multiplier, rounding, b_int=0, x0_int=-1):
    return SoftmaxParams(x0_int=x0_int, b_int=b_int, c_int=c_int, exp_clamp=0, exp_multiplier=multiplier,
                         exp_shift=40, exp_bits=32, exp_rounding=rounding, output_bits=8, output_max=256,
                         input_bits=8, exp_scale=1.0, out_scale=1.0)


def general(p, prm, right):
    return mul_shift_round(p, np.int64(prm.exp_multiplier), right, prm.exp_rounding).value()


def sample(p_hi: int, rng) -> tuple:
    """Every p in [0, p_hi] edge, random p, against every shift 0..127."""
    p = np.array([0, 1, 2, p_hi, p_hi - 1, p_hi // 2, p_hi // 2 + 1] + list(rng.integers(0, p_hi + 1, 16)),
                 dtype=np.int64).clip(0, p_hi)
    right = np.arange(128, dtype=np.int64)
    return np.broadcast_arrays(p[:, None], right[None, :])


@pytest.mark.parametrize("rounding", EXP_ROUNDING_MODES)
def test_both_sides_of_the_proof(rounding):
    c = (1 << 31) + 12345                          # x0_int = -1, b_int = 0: every p is c_int
    edge = ((1 << 62) - 1) // c                    # the largest multiplier with c * m < 2**62
    rng = np.random.default_rng(0)
    for m, proven in ((edge, True), (edge + 1, False), (1 << 30, True), (0, True)):
        prm = params(c, m, rounding)
        assert int64_exp_product_proven(prm) == proven
        p, right = sample(c, rng)
        np.testing.assert_array_equal(rounded_exp_product(p, prm, right), general(p, prm, right))


@given(st.integers(0, 1 << 40), st.integers(0, 1 << 31), st.sampled_from(EXP_ROUNDING_MODES),
       st.integers(-(1 << 20), 1 << 20), st.integers(-(1 << 16), -1), st.integers(0, 2**32 - 1))
def test_rounded_exp_product_equals_the_general_kernel(c_int, multiplier, rounding, b_int, x0_int, seed):
    prm = params(c_int, multiplier, rounding, b_int, x0_int)
    p, right = sample(max(prm.poly_range()[1], 0), np.random.default_rng(seed))
    np.testing.assert_array_equal(rounded_exp_product(p, prm, right), general(p, prm, right))
