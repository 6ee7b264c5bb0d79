"""kernels.softmax equals spec.softmax bit for bit, folds the exp requantization exactly, returns the
documented dtypes, and refuses every broken precondition."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from intref.errors import DtypeError, RangeError, ShapeError
import intref.kernels.softmax as kernel
from intref.quant.softmax import prepare_softmax
import intref.spec.softmax as spec
from intref.spec.rounding import rshift_round
from intref.spec.softmax import EXP_ROUNDING_MODES
from intref.spec.softmax import SoftmaxParams
from intref.testing import assert_identical
from intref.testing.twins import assert_equals_spec, spec_softmax

from intref.inttypes import INT64_MAX


@st.composite
def direct_params(draw):
    """SoftmaxParams built from integers, over the whole legal range of every field; the shift is
    often calibrated so that e(0) lands near the top code (else most rows would sum to 0)."""
    output_bits = draw(st.one_of(st.sampled_from([8, 1, 31]), st.integers(1, 31)))
    top = 1 << output_bits
    exp_clamp = draw(st.one_of(st.sampled_from([30, 0, 62]), st.integers(0, 62)))
    c_int = draw(st.one_of(st.integers(1, 1 << 60), st.sampled_from([2792114, (1 << 33) + 7, 1, 0]),
                           st.integers(-(1 << 40), 0)))
    multiplier = draw(st.one_of(st.integers(1, 1 << 31), st.sampled_from([1 << 30, 1 << 31, 1, 0])))
    exp_bits = draw(st.one_of(st.sampled_from([16, 2, 32]), st.integers(2, 32)))
    calibrated = max(c_int, 1).bit_length() + multiplier.bit_length() + exp_clamp - exp_bits + 1
    exp_shift = draw(st.sampled_from(["calibrated"] * 3 + ["any", "around_clamp", "edge"]).flatmap(lambda kind: {
        "calibrated": st.integers(calibrated - 3, calibrated + 3), "any": st.integers(0, 255),
        "around_clamp": st.integers(exp_clamp - 3, exp_clamp + 3), "edge": st.sampled_from([0, 96, 127, 255])}[kind]))
    return SoftmaxParams(
        x0_int=draw(st.one_of(st.sampled_from([-1, -2, -694]), st.integers(-(1 << 20), -1))),
        b_int=draw(st.one_of(st.sampled_from([0, 2707, -5]), st.integers(-(1 << 21), 1 << 21))),
        c_int=c_int, exp_clamp=exp_clamp, exp_multiplier=multiplier, exp_shift=min(max(exp_shift, 0), 255),
        exp_bits=exp_bits, exp_rounding=draw(st.sampled_from(EXP_ROUNDING_MODES)), output_bits=output_bits,
        output_max=draw(st.one_of(st.sampled_from([top, top - 1, 1]), st.integers(1, top))),
        input_bits=draw(st.one_of(st.sampled_from([8, 16, 32, 63, 2]), st.integers(2, 63))),
        exp_scale=1.0, out_scale=2.0 ** -output_bits)


prepared_params = st.builds(
    prepare_softmax, st.floats(1e-6, 1.0), coefficients=st.sampled_from(["reference", "paper"]),
    exp_clamp=st.sampled_from([30, 20, 5]), exp_bits=st.sampled_from([16, 8, 24]),
    exp_rounding=st.sampled_from(EXP_ROUNDING_MODES), output_bits=st.sampled_from([8, 9, 16]),
    input_bits=st.sampled_from([16, 22, 32, 63]))
any_params = st.one_of(direct_params(), prepared_params)


@st.composite
def rows_for(draw, params, max_rows=4, max_len=24):
    """An int64 array whose last axis holds rows: uniform values, int<B> extremes (masked-like),
    values near the row max at the interesting distances (z, r boundaries), ties and one-hot rows."""
    lo, hi = -(1 << (params.input_bits - 1)), (1 << (params.input_bits - 1)) - 1
    limit = params.max_row_length() or max_len
    length = draw(st.integers(1, min(limit, max_len)))
    shape = (draw(st.integers(1, max_rows)), length)
    center = draw(st.integers(lo, hi))
    reach = -params.x0_int * (params.exp_clamp + 2)
    near = st.integers(max(lo, center - reach), center)
    elements = st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, center]), near)
    kind = draw(st.sampled_from(["mixed", "ties", "one_hot"]))
    if kind == "ties":
        return np.full(shape, center, dtype=np.int64)
    if kind == "one_hot":
        row = np.full(shape, lo, dtype=np.int64)
        row[:, draw(st.integers(0, length - 1))] = hi
        return row
    return draw(hnp.arrays(np.int64, shape, elements=elements))


def check_softmax(q, params, axis=-1):
    got = kernel.i_softmax(q, params, axis=axis)
    assert got.dtype == np.dtype(np.uint8 if params.output_max < 256 else np.uint16 if params.output_max < 65536
                                 else np.uint32)
    assert_equals_spec(got, spec_softmax(q, params, axis),
                       context=f"i_softmax(axis={axis}, {params})")
    return got


# --- kernel == spec ---

@given(st.data(), any_params)
def test_i_softmax_equals_spec(data, params):
    check_softmax(data.draw(rows_for(params)), params)


@given(st.data(), prepared_params, st.integers(0, 2))
def test_i_softmax_equals_spec_on_every_axis(data, params, axis):
    rows = data.draw(rows_for(params, max_rows=6, max_len=6))
    shape = list(rows.shape) + [2]
    cube = np.moveaxis(np.stack([rows, rows[::-1]], axis=-1).reshape(shape), 1, axis)
    got = check_softmax(cube, params, axis=axis)
    assert_identical(got, kernel.i_softmax(cube, params, axis=axis - 3))


@given(st.data(), any_params)
def test_i_exp_equals_spec(data, params):
    q = data.draw(hnp.arrays(np.int64, hnp.array_shapes(max_dims=3, max_side=5),
                             elements=st.one_of(st.integers(-(1 << (params.input_bits - 1)), 0),
                                                st.sampled_from([0, -1, params.x0_int, params.x0_int + 1]))))
    q = np.maximum(q, -(1 << (params.input_bits - 1)))
    if params.exp_int_max() > INT64_MAX:
        with pytest.raises(RangeError):
            kernel.i_exp(q, params)
        with pytest.raises(RangeError):
            spec.i_exp(0, params)
        return
    got = kernel.i_exp(q, params)
    expected = np.array([spec.i_exp(int(v), params) for v in q.ravel()], dtype=np.int64).reshape(q.shape)
    assert_identical(got, expected)


SWEEP_PARAMS = [prepare_softmax(1e-3, input_bits=16), prepare_softmax(0.02, coefficients="paper", input_bits=16),
                prepare_softmax(3e-5, input_bits=16, exp_rounding="floor"),
                prepare_softmax(0.9, input_bits=16, exp_clamp=40, exp_requant_scale=1e-12, exp_rounding="half_up")]


@pytest.mark.parametrize("params", SWEEP_PARAMS)
def test_every_int16_input_exhaustively(params):
    """i_exp of all 32769 non-positive int16 values, and i_softmax of every row [0, x]."""
    x = np.arange(-(1 << 15), 1, dtype=np.int16)
    assert_identical(kernel.i_exp(x, params), np.array([spec.i_exp(v, params) for v in x.tolist()], np.int64))
    rows = np.stack([np.zeros_like(x), x], axis=-1)
    expected = np.array([spec.i_softmax([0, v], params) for v in x.tolist()], dtype=np.uint8)
    assert_identical(kernel.i_softmax(rows, params), expected)
    with pytest.raises(RangeError):
        kernel.i_exp(np.arange(0, 1 << 15, dtype=np.int16), params)


# --- the folded requantization equals the unfolded one, in Python ints ---

@pytest.mark.parametrize("exp_shift", [0, 1, 17, 29, 30, 31, 45, 67, 95, 96, 97, 127, 128, 200, 255])
@pytest.mark.parametrize("rounding", EXP_ROUNDING_MODES)
def test_folded_exp_code_equals_unfolded_python_ints(exp_shift, rounding):
    """The kernel's folded e equals the spec's exp_code and clamp(round(exp_int * m / 2**s)) formed
    whole in Python ints, for every allowed dialect. Effective shifts from -30 to 255, so both
    branches run."""
    params = dataclasses.replace(prepare_softmax(1e-5), exp_shift=exp_shift, exp_rounding=rounding, exp_bits=32)
    n, p_hi, top = params.exp_clamp, params.poly_range()[1], params.exp_code_max()
    ps = [0, 1, 2, 3, 1 << 16, (1 << 30) + 1, p_hi - 1, p_hi] + list(range(5, 4000, 397))
    p_grid, z_grid = np.meshgrid(np.array(ps, np.int64), np.arange(n + 1, dtype=np.int64), indexing="ij")
    for m in (1, 3, (1 << 30) + 1, 1 << 31):
        folded = dataclasses.replace(params, exp_multiplier=m)
        got = kernel.exp_code_folded(z_grid, p_grid, folded)
        expected = np.array([[folded.exp_code(p, z) for z in range(n + 1)] for p in ps], dtype=np.int64)
        assert_identical(got, expected, context=f"spec: m={m} s={exp_shift} {rounding}")
        unfolded = [[min(rshift_round((p << (n - z)) * m, exp_shift, rounding), top) for z in range(n + 1)]
                     for p in ps]
        assert_identical(got, np.array(unfolded, np.int64), context=f"unfolded: m={m} s={exp_shift} {rounding}")


def test_mul_pow2_saturating_matches_python_ints():
    p = np.array([0, 1, 2, 5, 1000, 1 << 20, (1 << 31) - 1, 1 << 40, INT64_MAX >> 1], np.int64)
    for m in (0, 1, 7, 1 << 30, 1 << 31):
        for top in (1, 127, 32767, (1 << 31) - 1):
            for left in (0, 1, 5, 31, 32, 62):
                got = kernel.mul_pow2_saturating(p, m, np.full(p.shape, left, np.int64), np.int64(top))
                expected = np.array([min((v * m) << left, top) for v in p.tolist()], np.int64)
                assert_identical(got, expected, context=f"m={m} top={top} left={left}")


# --- documented results and dtypes ---

def test_one_hot_gives_255_not_256_with_reference_settings():
    for output_max in (255, 256):
        params = prepare_softmax(1e-3, output_max=output_max)
        assert params.exp_code(params.c_int, 0) == 32767             # factor 131076, 32767 * 131076 = 2**32 - 4
        row = np.array([[12, -(1 << 31), -40000, -(1 << 31)]], np.int32)
        expected = np.array([[255, 0, 0, 0]], np.uint8 if output_max == 255 else np.uint16)
        assert_identical(kernel.i_softmax(row, params), expected)


def test_power_of_two_top_code_reaches_2_pow_output_bits():
    params = prepare_softmax(1e-3, exp_requant_scale=1 / 16384, output_max=256)
    assert params.exp_code(params.c_int, 0) == 16384
    row = np.array([0, -(1 << 31), -(1 << 31)], np.int64)
    assert_identical(kernel.i_softmax(row, params), np.array([256, 0, 0], np.uint16))
    clamped = dataclasses.replace(params, output_max=255)
    assert_identical(kernel.i_softmax(row, clamped), np.array([255, 0, 0], np.uint8))


def test_row_summing_to_one_gives_the_full_factor():
    """e = [1, 0]: factor = 2**32 itself, out = 2**32 >> 24 = 256 (kept by output_max 256)."""
    params = SoftmaxParams(x0_int=-4, b_int=8, c_int=20, exp_clamp=2, exp_multiplier=1, exp_shift=7, exp_bits=8,
                           exp_rounding="half_even", output_bits=8, output_max=256, input_bits=8, exp_scale=1.0,
                           out_scale=1 / 256)                         # e(0) = round(80 / 128) = 1, e(-8) = 0
    rows = np.array([[0, -128], [-128, 0], [5, 5]], np.int8)
    assert_identical(kernel.i_softmax(rows, params), np.array([[256, 0], [0, 256], [128, 128]], np.uint16))


def test_sum_zero_rows_give_zeros():
    params = prepare_softmax(1e-3, exp_requant_scale=4.0)               # exp(0) = 1 -> 0.25 -> code 0
    assert params.max_row_length() is None
    assert_identical(kernel.i_softmax(np.array([[5, 5], [0, -9]], np.int16), params), np.zeros((2, 2), np.uint8))


@pytest.mark.parametrize("output_max, dtype", [(1, np.uint8), (255, np.uint8), (256, np.uint16),
                                               (65535, np.uint16), (65536, np.uint32), (1 << 31, np.uint32)])
def test_output_dtype_is_the_smallest_holding_output_max(output_max, dtype):
    params = prepare_softmax(1e-3, output_bits=31, output_max=output_max)
    got = kernel.i_softmax(np.array([0, 0], np.int64), params)     # e = 32767 twice, factor 65538
    assert got.dtype == dtype and got.tolist() == [min((1 << 30) - 1, output_max)] * 2


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32])
def test_every_integer_input_dtype_and_inputs_are_not_mutated(dtype):
    params = prepare_softmax(0.05, input_bits=33)
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -(1 << 32)), min(info.max, (1 << 32) - 1)      # int33 holds every 32-bit dtype
    q = np.array([[lo, hi, 0, 1], [3, 3, 3, 3]], dtype=dtype)
    before = q.copy()
    check_softmax(q, params)
    assert_identical(q, before)
    x = np.minimum(q, 0).astype(dtype) if lo < 0 else np.zeros_like(q)
    kernel.i_exp(x, params)
    assert_identical(q, before)
    assert kernel.i_exp(x, params).dtype == np.int64


def test_empty_inputs():
    params = prepare_softmax(1e-3)
    assert_identical(kernel.i_softmax(np.zeros((3, 0), np.int32), params), np.zeros((3, 0), np.uint8))
    assert_identical(kernel.i_softmax(np.zeros((0, 5), np.int32), params), np.zeros((0, 5), np.uint8))
    assert_identical(kernel.i_exp(np.zeros((0,), np.int32), params), np.zeros((0,), np.int64))


def test_python_int_and_numpy_scalar_inputs_of_i_exp():
    params = prepare_softmax(1e-3)
    assert_identical(kernel.i_exp(-5, params), np.array(spec.i_exp(-5, params), np.int64))
    assert_identical(kernel.i_exp(np.int16(-700), params), np.array(spec.i_exp(-700, params), np.int64))


# --- rejection paths ---

def test_rejects_bad_dtypes_and_params():
    params = prepare_softmax(1e-3)
    for bad in (np.zeros(3, np.float64), np.zeros(3, np.uint64), np.zeros(3, bool), [0, 1], 1.5, True):
        with pytest.raises(DtypeError):
            kernel.i_softmax(bad, params)
        with pytest.raises(DtypeError):
            kernel.i_exp(bad, params)
    for bad_params in (None, dataclasses.asdict(params)):
        with pytest.raises(DtypeError):
            kernel.i_softmax(np.zeros(3, np.int32), bad_params)
        with pytest.raises(DtypeError):
            kernel.i_exp(np.zeros(3, np.int32), bad_params)


def test_rejects_out_of_range_values_naming_the_first_index():
    params = prepare_softmax(1e-3, input_bits=16)
    q = np.zeros((2, 3), np.int32)
    q[1, 1], q[1, 2] = 1 << 15, -(1 << 16)
    with pytest.raises(RangeError) as info:
        kernel.i_softmax(q, params)
    assert info.value.index == (1, 1) and info.value.value == 1 << 15 and info.value.argument == "q"
    x = np.zeros((2, 2), np.int32)
    x[0, 1] = 1
    with pytest.raises(RangeError, match=r"q\[0, 1\] = 1") as info:
        kernel.i_exp(x, params)
    assert info.value.index == (0, 1)
    with pytest.raises(RangeError) as info:
        kernel.i_exp(np.array([0, -(1 << 15) - 1], np.int32), params)
    assert info.value.index == (1,)


def test_rejects_bad_shapes_and_axes():
    params = prepare_softmax(1e-3)
    with pytest.raises(ShapeError):
        kernel.i_softmax(np.int32(3), params)
    with pytest.raises(ShapeError):
        kernel.i_softmax(7, params)
    for axis in (2, -3):
        with pytest.raises(RangeError):
            kernel.i_softmax(np.zeros((2, 2), np.int32), params, axis=axis)
    for axis in (1.0, True, None):
        with pytest.raises(DtypeError):
            kernel.i_softmax(np.zeros((2, 2), np.int32), params, axis=axis)


def test_rejects_rows_longer_than_max_row_length():
    params = prepare_softmax(1e-3, exp_bits=32)                          # e(0) ~ 2**31 - 1: 2 entries
    assert params.max_row_length() == 2
    kernel.i_softmax(np.zeros((5, 2), np.int32), params)
    with pytest.raises(ShapeError, match="max_row_length"):
        kernel.i_softmax(np.zeros((2, 3), np.int32), params)
    with pytest.raises(ShapeError):
        kernel.i_softmax(np.zeros((3, 2), np.int32), params, axis=0)
    long_rows = prepare_softmax(1e-3)
    assert long_rows.max_row_length() == 131076
    with pytest.raises(ShapeError):
        kernel.i_softmax(np.zeros((1, 131077), np.int8), long_rows)


def test_i_exp_rejects_params_whose_unfolded_exp_int_leaves_int64():
    params = prepare_softmax(1e-5)                                       # c_int ~ 2**34.7: exp_int ~ 2**64.7
    assert params.exp_int_max() > INT64_MAX
    with pytest.raises(RangeError, match="outside int64") as info:
        kernel.i_exp(np.zeros(2, np.int32), params)
    assert info.value.argument == "params"
    check_softmax(np.array([[0, -1, -70000, -(1 << 31)]], np.int64), params)   # i_softmax folds: fine
