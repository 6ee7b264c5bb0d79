"""quant.symmetric: hand vectors for each clamp mode, per-tensor/channel/group scales, the
reconstruction bound, and every refusal."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from intref.errors import DtypeError, RangeError, ShapeError
from intref.quant.symmetric import CLAMP_MODES, quantize_symmetric
from intref.testing import assert_identical

# max|x| = 127 makes the 8-bit scale exactly 1.0, so x / scale == x and the ties below are exact.
HAND = np.array([127.0, -127.0, 2.5, -2.5, 3.5, 0.4, -0.5, 126.6])


def clamp_range(bits, clamp):
    n = (1 << (bits - 1)) - 1
    return {"ibert": (-n, n - 1), "narrow": (-n, n), "full": (-n - 1, n)}[clamp]


@pytest.mark.parametrize("clamp, expected", [
    ("ibert", [126, -127, 2, -2, 4, 0, 0, 126]),     # +max -> 127 -> clamped to 126 (HF I-BERT)
    ("narrow", [127, -127, 2, -2, 4, 0, 0, 127]),
    ("full", [127, -127, 2, -2, 4, 0, 0, 127]),
])
def test_per_tensor_hand_vector(clamp, expected):
    q, scale = quantize_symmetric(HAND, 8, clamp=clamp)
    assert_identical(q, np.array(expected, dtype=np.int8))
    assert_identical(scale, np.array(1.0))


def test_ibert_clamp_takes_the_positive_max_to_n_minus_1_and_the_negative_max_to_minus_n():
    x = np.array([[0.3, -0.1, 0.9], [-0.9, 0.2, 0.1]])
    q, scale = quantize_symmetric(x, 8, axis=0)
    assert_identical(q[:, 2], np.array([126, 14], dtype=np.int8))      # row 0: +max 0.9 -> 126; 0.1*127/0.9
    assert_identical(q[1, 0], np.int8(-127))                            # row 1: -max -0.9 -> -127
    assert_identical(scale, np.array([[0.9 / 127], [0.9 / 127]]))


def test_four_bits_hand_vector():
    x = np.array([7.0, -7.0, 3.5, -3.5, 2.5])                            # scale 7 / 7 = 1.0
    assert_identical(quantize_symmetric(x, 4)[0], np.array([6, -7, 4, -4, 2], dtype=np.int8))
    assert_identical(quantize_symmetric(x, 4, clamp="narrow")[0], np.array([7, -7, 4, -4, 2], dtype=np.int8))


@pytest.mark.parametrize("bits, dtype", [(2, np.int8), (4, np.int8), (8, np.int8), (9, np.int16), (16, np.int16),
                                         (17, np.int32), (22, np.int32), (32, np.int32)])
def test_storage_dtype_and_extremes(bits, dtype):
    n = (1 << (bits - 1)) - 1
    x = np.array([-1.0, 1.0, 0.0])
    for clamp in CLAMP_MODES:
        q, _ = quantize_symmetric(x, bits, clamp=clamp)
        hi = n - 1 if clamp == "ibert" else n
        assert_identical(q, np.array([-n, hi, 0], dtype=dtype), context=f"bits={bits} {clamp}")


def test_zero_block_gets_the_1e_8_floor():
    x = np.array([[0.0, 0.0], [1.0, -0.5]])
    q, scale = quantize_symmetric(x, 8, axis=0)
    assert_identical(scale, np.array([[1e-8 / 127], [1.0 / 127]]))
    assert_identical(q[0], np.zeros(2, dtype=np.int8))
    q_all, scale_all = quantize_symmetric(np.zeros((3, 2)), 16)
    assert_identical(scale_all, np.array(1e-8 / 32767))
    assert_identical(q_all, np.zeros((3, 2), dtype=np.int16))


def test_per_channel_scale_shapes_and_values():
    x = np.array([[1.0, -2.0, 0.5], [4.0, 0.5, -3.0]])
    assert_identical(quantize_symmetric(x, 8, axis=0)[1], np.array([[2.0 / 127], [4.0 / 127]]))
    assert_identical(quantize_symmetric(x, 8, axis=-1)[1], np.array([[4.0 / 127, 2.0 / 127, 3.0 / 127]]))
    x3 = np.arange(24.0).reshape(2, 3, 4)
    assert quantize_symmetric(x3, 8, axis=1)[1].shape == (1, 3, 1)


@pytest.mark.parametrize("shape, axis, group", [((12, 5), 0, 3), ((12, 5), 0, 12), ((12, 5), 0, 1),
                                                 ((4, 6), 1, 2), ((2, 6, 3), 1, 3), ((2, 6, 3), -1, 3)])
def test_group_scales_equal_per_channel_scales_of_the_group_reshaped_tensor(shape, axis, group):
    x = np.random.default_rng(sum(shape) + group).normal(size=shape)
    q, scale = quantize_symmetric(x, 8, axis=axis, group_size=group)
    axis = axis % x.ndim
    moved = np.moveaxis(x, axis, 0)
    blocks = moved.reshape(shape[axis] // group, -1)                    # one row per group
    _, block_scale = quantize_symmetric(blocks, 8, axis=0)
    expected_scale = np.repeat(block_scale[:, 0], group).reshape([shape[axis] if i == axis else 1
                                                                   for i in range(x.ndim)])
    assert_identical(scale, expected_scale)
    q_blocks, _ = quantize_symmetric(blocks, 8, axis=0)
    assert_identical(np.moveaxis(q, axis, 0).reshape(blocks.shape), q_blocks)


FLOATS = st.one_of(st.just(0.0), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64))


@st.composite
def quantize_cases(draw):
    x = draw(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=FLOATS))
    bits, clamp = draw(st.integers(2, 32)), draw(st.sampled_from(CLAMP_MODES))
    axis = draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    group = None
    if axis is not None:
        length = x.shape[axis]
        group = draw(st.one_of(st.none(), st.sampled_from([g for g in range(1, length + 1) if length % g == 0])))
    return x, bits, clamp, axis, group


@given(quantize_cases())
def test_reconstruction_within_half_a_step_and_block_max_maps_to_n(case):
    x, bits, clamp, axis, group = case
    q, scale = quantize_symmetric(x, bits, axis=axis, group_size=group, clamp=clamp)
    lo, hi = clamp_range(bits, clamp)
    n = (1 << (bits - 1)) - 1
    full_scale = np.broadcast_to(scale, x.shape)
    assert q.shape == x.shape and scale.dtype == np.float64 and np.all(scale > 0)
    assert int(q.min(initial=0)) >= lo and int(q.max(initial=0)) <= hi
    unclamped = (np.rint(x / full_scale) >= lo) & (np.rint(x / full_scale) <= hi)
    error = np.abs(x - q.astype(np.float64) * full_scale)
    # half a step, plus float64 rounding of x/scale and q*scale (|x/scale| <= 2**31: < 2**-21 of a step)
    assert np.all(error[unclamped] <= full_scale[unclamped] * (0.5 + 2.0 ** -20))
    assert np.all(error[~unclamped] <= full_scale[~unclamped] * (1.5 + 2.0 ** -20))   # +max -> n-1 only
    check_block_max_maps_to_n(x, q, axis, group, n, hi)


def check_block_max_maps_to_n(x, q, axis, group, n, hi):
    """In every block (tensor, channel or group, walked here by slicing) the largest |x| becomes +-n
    (+n clamped to hi), unless the block's max is under the 1e-8 floor."""
    ax = 0 if axis is None else axis % x.ndim
    moved, q_moved = np.moveaxis(x, ax, 0), np.moveaxis(q, ax, 0)
    step = moved.shape[0] if axis is None else (group or 1)
    for start in range(0, moved.shape[0], step):
        block, q_block = moved[start:start + step], q_moved[start:start + step]
        largest = np.max(np.abs(block))
        if largest >= 1e-8:
            at = np.abs(block) == largest
            expected = np.where(block[at] > 0, min(n, hi), -n).astype(np.int64)
            assert_identical(q_block[at].astype(np.int64), expected, context=f"block at {start} along axis {ax}")


def test_inputs_are_not_mutated_and_float32_is_accepted():
    x = np.array([[0.5, -1.5], [2.0, 0.25]], dtype=np.float32)
    before = x.copy()
    q, scale = quantize_symmetric(x, 8, axis=1)
    assert_identical(x, before)
    assert_identical(q, quantize_symmetric(x.astype(np.float64), 8, axis=1)[0])
    assert_identical(scale, np.array([[2.0 / 127, 1.5 / 127]]))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"bits": 1}, RangeError, "bits=1 is outside"), ({"bits": 33}, RangeError, "bits=33"),
    ({"bits": 8.0}, DtypeError, "bits must be an int"), ({"bits": True}, DtypeError, "bits"),
    ({"bits": 8, "axis": 2}, RangeError, "axis=2 is outside"), ({"bits": 8, "axis": -3}, RangeError, "axis=-3"),
    ({"bits": 8, "axis": 1.0}, DtypeError, "axis"),
    ({"bits": 8, "axis": 0, "group_size": 4}, ShapeError, r"x.shape\[0\] = 6 is not divisible by group_size=4"),
    ({"bits": 8, "axis": 0, "group_size": 0}, RangeError, "group_size=0"),
    ({"bits": 8, "group_size": 2}, RangeError, "needs an axis"),
    ({"bits": 8, "clamp": "symmetric"}, RangeError, "clamp='symmetric'"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        quantize_symmetric(np.ones((6, 4)), **kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x_names_the_index(bad):
    x = np.ones((3, 4))
    x[1, 2] = bad
    with pytest.raises(RangeError, match=r"x\[1, 2\] = .* is not finite") as info:
        quantize_symmetric(x, 8, axis=0)
    assert info.value.index == (1, 2) and info.value.argument == "x"


@pytest.mark.parametrize("bad", [np.ones(3, dtype=np.int8), np.ones(3, dtype=bool), ["a"], np.ones(3, dtype=complex)])
def test_non_float_x_is_refused(bad):
    with pytest.raises(DtypeError, match="expected a float array"):
        quantize_symmetric(bad, 8)


def test_zero_dimensional_x_with_an_axis_is_refused():
    assert_identical(quantize_symmetric(np.float64(2.0), 8)[0], np.array(126, dtype=np.int8))
    with pytest.raises(ShapeError, match="0-d"):
        quantize_symmetric(np.float64(2.0), 8, axis=0)
