"""spec.softmax: hand-worked vectors, exact bounds of SoftmaxParams, and every rejection path."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.errors import DtypeError, RangeError, ShapeError
import intref.spec.softmax as spec
from intref.spec.softmax import SoftmaxParams

# x0_int = -4, b_int = 8, c_int = 20, n = 2; e = round(exp_int / 8) into int8 (top 127).
TOY = SoftmaxParams(x0_int=-4, b_int=8, c_int=20, exp_clamp=2, exp_multiplier=1, exp_shift=3, exp_bits=8,
                    exp_rounding="half_even", output_bits=8, output_max=255, input_bits=8, exp_scale=1.0,
                    out_scale=1 / 256)
# prepare_softmax(0.1): the reference coefficients at a coarse scale.
COARSE = SoftmaxParams(x0_int=-7, b_int=27, c_int=279, exp_clamp=30, exp_multiplier=1968898441, exp_shift=54,
                       exp_bits=16, exp_rounding="half_even", output_bits=8, output_max=255, input_bits=32,
                       exp_scale=3.3355454914271836e-12, out_scale=1 / 256)


def params(**changes):
    return dataclasses.replace(TOY, **changes)


# --- hand-worked vectors ---

@pytest.mark.parametrize("x, exp_int", [
    (0, 80),        # z 0, r 0:  p = 20,                    20 * 2**2
    (-1, 52),       # z 0, r -1: p = (-1 + 8) * -1 + 20 = 13, 13 * 4
    (-2, 32),       # r -2: p = 6 * -2 + 20 = 8
    (-3, 20),       # r -3: p = 5 * -3 + 20 = 5
    (-4, 40),       # z 1, r 0: 20 * 2
    (-5, 26),       # z 1, r -1: 13 * 2
    (-8, 20),       # z 2 = n, r 0: 20 * 1
    (-100, 20),     # clamped to n * x0_int = -8
    (-128, 20),
])
def test_i_exp_toy_by_hand(x, exp_int):
    assert spec.i_exp(x, TOY) == exp_int


@pytest.mark.parametrize("x, exp_int", [
    (0, 279 << 30), (-1, 253 << 30),        # (-1 + 27) * -1 + 279 = 253
    (-7, 279 << 29), (-10, 207 << 29),      # z 1, r -3: 24 * -3 + 279 = 207
    (-210, 279), (-211, 279), (-(1 << 31), 279),   # clamped to 30 * -7
])
def test_i_exp_coarse_reference_by_hand(x, exp_int):
    assert spec.i_exp(x, COARSE) == exp_int


def test_exp_code_rounding_by_hand():
    # exp_int / 8 for x = 0, -1, -2, -3, -4, -5, -8: 10, 6.5, 4, 2.5, 5, 3.25, 2.5
    xs = (0, -1, -2, -3, -4, -5, -8)
    codes = {rounding: [params(exp_rounding=rounding).exp_code(spec.exp_poly(r, TOY), z)
                        for z, r in (spec.exp_range_reduce(x, TOY) for x in xs)]
             for rounding in ("half_even", "half_up", "floor")}
    assert codes == {"half_even": [10, 6, 4, 2, 5, 3, 2], "half_up": [10, 7, 4, 3, 5, 3, 3],
                     "floor": [10, 6, 4, 2, 5, 3, 2]}


def test_i_softmax_toy_by_hand():
    # x = [0, -1, -4, -100] -> e = [10, 6, 5, 2], sum 23, factor = 2**32 // 23 = 186737708,
    # out = e * factor >> 24 = [111.3, 66.8, 55.7, 22.3] floored
    assert spec.i_softmax([3, 2, -1, -97], TOY) == [111, 66, 55, 22]
    # half_up: e = [10, 7, 5, 3], sum 25, factor 171798691 -> [102.4, 71.7, 51.2, 30.7]
    assert spec.i_softmax([3, 2, -1, -97], params(exp_rounding="half_up")) == [102, 71, 51, 30]


def test_i_softmax_edge_rows():
    assert spec.i_softmax([], TOY) == []
    assert spec.i_softmax([5], TOY) == [255]                      # 10 * (2**32 // 10) >> 24 = 255.99..
    assert spec.i_softmax([-128, 127], TOY) == [42, 213]          # e = [2, 10], factor 2**32 // 12: 42.7, 213.3


def test_equal_entries_give_equal_outputs_and_exact_quarters():
    # e = 10 each, sum 40, factor = 107374182, 10 * factor = 1073741820 < 2**30 -> 63
    assert spec.i_softmax([7, 7, 7, 7], TOY) == [63] * 4


def test_power_of_two_sum_reaches_2_pow_output_bits_and_output_max_clamps():
    p16 = params(exp_multiplier=2, exp_shift=2)                   # e(0) = 80 * 2 / 4 = 40; e(-8) = 10
    assert spec.i_softmax([0, -128], p16) == [204, 51]            # 40 / 50, 10 / 50 of 256, floored
    p8 = params(exp_multiplier=1, exp_shift=2, c_int=16)          # e(0) = 16 * 4 / 4 = 16: a power of two
    assert p8.exp_code(16, 0) == 16
    assert spec.i_softmax([0], params(exp_multiplier=1, exp_shift=2, c_int=16, output_max=256)) == [256]
    assert spec.i_softmax([0], p8) == [255]                       # 256 clamped to output_max 255


def test_sum_zero_row_gives_zeros():
    zero = params(exp_multiplier=0)
    assert zero.max_row_length() is None
    assert spec.i_softmax([1, 2, 3, -128], zero) == [0, 0, 0, 0]
    tiny = params(exp_shift=255)                                  # every e rounds to 0
    assert spec.i_softmax([0, 0], tiny) == [0, 0]


# --- exact bounds ---

@given(st.integers(-300, -1), st.integers(-700, 700), st.integers(-(1 << 20), 1 << 20), st.integers(0, 5),
       st.integers(2, 12))
def test_poly_range_and_remainder_range_are_exact(x0_int, b_int, c_int, exp_clamp, input_bits):
    p = params(x0_int=x0_int, b_int=b_int, c_int=c_int, exp_clamp=exp_clamp, input_bits=input_bits)
    lowest = -((1 << input_bits) - 1)
    reached = {spec.exp_range_reduce(x, p)[1] for x in range(lowest, 1)}
    r_lo, r_hi = p.remainder_range()
    assert reached == set(range(r_lo, r_hi + 1))
    polys = [(r + b_int) * r + c_int for r in reached]
    assert p.poly_range() == (min(polys), max(polys))
    assert p.exp_int_max() == max(spec.exp_unfolded(x, p) for x in range(lowest, 1))


@pytest.mark.parametrize("p", [TOY, COARSE, params(b_int=-30, c_int=500), params(exp_bits=12, exp_shift=0)])
def test_max_row_length_is_exact(p):
    """A worst-case row of max_row_length entries sums to <= 2**32; one entry more passes 2**32."""
    limit = p.max_row_length()
    codes = [p.exp_code(spec.exp_poly(r, p), z) for z, r in (spec.exp_range_reduce(x, p) for x in range(-4095, 1))]
    e0, e_top = codes[-1], max(codes)
    assert e0 + (limit - 1) * e_top <= 1 << 32 < e0 + limit * e_top


def test_output_range_and_exp_code_max():
    assert TOY.output_range() == (0, 255) and params(output_max=256).output_range() == (0, 256)
    assert COARSE.exp_code_max() == 32767 and TOY.exp_code_max() == 127


def test_exp_code_saturates_at_the_top_code_and_folds_negative_shifts_exactly():
    assert params(exp_shift=0).exp_code(10 ** 30, 0) == 127
    assert params(exp_shift=0).exp_code(0, 0) == 0
    assert params(exp_shift=0, exp_bits=32).exp_code(5, 0) == 20     # shift 0 - 2 + 0: 5 * 2**2, exact
    assert params(exp_shift=0, exp_bits=32).exp_code(5, 1) == 10
    assert params(exp_shift=0, exp_bits=32).exp_code(5, 2) == 5


def test_double_round_is_refused_because_folding_would_change_it():
    """p = 2**30 + 1, m = 1, effective shift 32 (s = 45, n = 30, z = 17): double rounding the
    folded product p * m gives 1, double rounding exp_int * m gives 0, single rounding gives 0 both ways."""
    unfolded = ((1 << 30) + 1) << 13
    assert ((1 << 30) + 1 + (1 << 31) + (1 << 30)) >> 32 == 1 != (unfolded + (1 << 44) + (1 << 30)) >> 45
    with pytest.raises(RangeError, match="exp_rounding"):
        params(exp_clamp=30, exp_shift=45, exp_rounding="double_round", exp_bits=32, x0_int=-694)
    single = params(exp_clamp=30, exp_shift=45, exp_rounding="half_up", exp_bits=32, x0_int=-694)
    assert single.exp_code((1 << 30) + 1, 17) == 0 == (unfolded + (1 << 44)) >> 45


# --- rejection paths ---

def test_i_exp_rejects_bad_inputs():
    with pytest.raises(RangeError, match=r"q = 1 is outside \[-128, 0\]"):
        spec.i_exp(1, TOY)
    with pytest.raises(RangeError):
        spec.i_exp(-129, TOY)
    for bad in (True, -1.0, "0"):
        with pytest.raises(DtypeError):
            spec.i_exp(bad, TOY)
    with pytest.raises(DtypeError):
        spec.i_exp(0, "params")


def test_i_exp_rejects_params_whose_exp_int_leaves_int64():
    wide = params(exp_clamp=62, c_int=2)                          # exp_int_max = 2**63
    with pytest.raises(RangeError, match="outside int64") as info:
        spec.i_exp(0, wide)
    assert info.value.argument == "params"
    # e = min(2**63 / 8, 127) twice: 127 * (2**32 // 254) = 2147483640 -> 127
    assert spec.i_softmax([0, 0], wide) == [127, 127]


def test_i_softmax_rejects_bad_rows():
    with pytest.raises(RangeError) as info:
        spec.i_softmax([0, 1, 128], TOY)
    assert info.value.index == (2,) and info.value.value == 128 and info.value.argument == "row"
    assert "row[2] = 128" in str(info.value)
    with pytest.raises(DtypeError) as info:
        spec.i_softmax([0, 1.0], TOY)
    assert info.value.index == (1,)
    with pytest.raises(DtypeError):
        spec.i_softmax([False], TOY)
    with pytest.raises(DtypeError):
        spec.i_softmax([0], None)
    short = params(exp_bits=32, exp_shift=0, exp_multiplier=1 << 24)   # e(0) = 80 * 2**24 -> 3 entries
    assert short.max_row_length() == 3
    assert len(spec.i_softmax([0, 0, 0], short)) == 3
    with pytest.raises(ShapeError, match="max_row_length"):
        spec.i_softmax([0, 0, 0, 0], short)


@pytest.mark.parametrize("field, value, error", [
    ("x0_int", 0, RangeError), ("x0_int", 5, RangeError), ("x0_int", 1 << 63, RangeError),
    ("x0_int", -1.0, DtypeError), ("b_int", True, DtypeError), ("c_int", -(1 << 63) - 1, RangeError),
    ("exp_clamp", -1, RangeError), ("exp_clamp", 63, RangeError),
    ("exp_multiplier", -1, RangeError), ("exp_multiplier", (1 << 31) + 1, RangeError),
    ("exp_shift", -1, RangeError), ("exp_shift", 256, RangeError),
    ("exp_bits", 1, RangeError), ("exp_bits", 33, RangeError),
    ("exp_rounding", "nearest", RangeError), ("exp_rounding", None, RangeError),
    ("output_bits", 0, RangeError), ("output_bits", 32, RangeError),
    ("output_max", 0, RangeError), ("output_max", 257, RangeError), ("output_max", 255.0, DtypeError),
    ("input_bits", 1, RangeError), ("input_bits", 64, RangeError),
    ("exp_scale", float("nan"), RangeError), ("exp_scale", (1.0, 2.0), ShapeError),
    ("out_scale", float("inf"), RangeError),
])
def test_params_reject_each_bad_field(field, value, error):
    with pytest.raises(error) as info:
        params(**{field: value})
    assert info.value.argument == field


@pytest.mark.parametrize("changes, name", [
    ({"x0_int": -(1 << 40), "b_int": -(1 << 63) + 1, "input_bits": 63, "exp_clamp": 62}, "r + b_int"),
    ({"x0_int": -(1 << 40), "b_int": 1 << 30, "input_bits": 63, "exp_clamp": 62}, "(r + b_int) * r"),
    ({"x0_int": -(1 << 20), "b_int": 0, "c_int": (1 << 63) - 10, "input_bits": 3, "exp_clamp": 1},
     "(r + b_int) * r + c_int"),
])
def test_params_reject_polynomials_that_leave_int64(changes, name):
    with pytest.raises(RangeError, match="outside int64") as info:
        params(**changes)
    assert info.value.argument == name


def test_params_accept_the_int64_edge():
    """With int2 inputs r >= -3 and p <= c + 9 = 2**63 - 1: legal (int3 above is not; the bound is exact)."""
    edge = params(x0_int=-(1 << 20), b_int=0, c_int=(1 << 63) - 10, input_bits=2, exp_clamp=1)
    assert edge.poly_range() == ((1 << 63) - 10, (1 << 63) - 1)
