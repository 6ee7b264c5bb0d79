"""kernels.isqrt equals spec.isqrt bit for bit."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from intref.errors import DtypeError, RangeError
from intref.kernels.sqrt import bit_length, isqrt, isqrt_planned
import intref.spec.sqrt as spec
from intref.testing import assert_identical
from intref.testing.twins import assert_equals_spec, spec_isqrt


def test_every_n_below_two_to_the_20():
    n = np.arange(1 << 20, dtype=np.int64)
    expected = np.array([math.isqrt(v) for v in n.tolist()], dtype=np.int64)  # spec swept to 2**16 in tests/spec
    assert_identical(isqrt(n), expected)
    assert_identical(isqrt_planned(n), expected, context="isqrt_planned")
    assert all(spec.isqrt(v) == math.isqrt(v) for v in range(0, 1 << 20, 4099))


def test_five_update_inputs_and_extremes():
    values = [1074528350, 1119303883, 1149413397, 1185493737, 1332907078, 0, 1, 2, 3, (1 << 63) - 1,
              (1 << 62), (1 << 62) - 1, (1 << 32) - 1, 1 << 32]
    assert_identical(isqrt(np.array(values, dtype=np.int64)), np.array([spec.isqrt(v) for v in values], np.int64))
    assert_identical(isqrt_planned(np.array(values, dtype=np.int64)), np.array([spec.isqrt(v) for v in values], np.int64))


def test_squares_and_neighbours_near_every_power_of_two():
    values = []
    for bits in range(1, 63):
        base = math.isqrt(1 << bits)
        values += [n for k in range(max(base - 2, 1), base + 3) for n in (k * k - 1, k * k, k * k + 1) if n < 1 << 63]
    top = math.isqrt((1 << 63) - 1)                       # the largest root, and squares next to 2**63
    values += [n for k in range(top - 3, top + 1) for n in (k * k - 1, k * k, k * k + 1, k * k + 2 * k) if n < 1 << 63]
    expected = np.array([spec.isqrt(v) for v in values], np.int64)
    assert_identical(isqrt(np.array(values, np.int64)), expected)
    assert_identical(isqrt_planned(np.array(values, np.int64)), expected, context="isqrt_planned")


@given(hnp.arrays(np.int64, hnp.array_shapes(max_dims=3, max_side=8), elements=st.integers(0, (1 << 63) - 1)))
def test_kernel_equals_spec(n):
    got = isqrt(n)
    assert got.dtype == np.int64
    assert_equals_spec(got, spec_isqrt(n))
    assert_identical(isqrt_planned(n), got, context="isqrt_planned")


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64])
def test_accepts_every_integer_dtype(dtype):
    info = np.iinfo(dtype)
    n = np.array([0, 1, info.max], dtype=dtype)
    assert_identical(isqrt(n), np.array([0, 1, math.isqrt(int(info.max))], np.int64))


def test_bit_length():
    v = np.array([0, 1, 2, 3, 255, 256, (1 << 62), (1 << 63) - 1], dtype=np.int64)
    assert bit_length(v).tolist() == [int(x).bit_length() for x in v.tolist()]


def test_rejects_negative_naming_the_index():
    with pytest.raises(RangeError) as info:
        isqrt(np.array([[4, 9], [16, -1]], dtype=np.int32))
    assert info.value.index == (1, 1) and info.value.value == -1


@pytest.mark.parametrize("bad", [np.array([4.0]), np.array([4], dtype=np.uint64), np.array([True])])
def test_rejects_non_integer(bad):
    with pytest.raises(DtypeError):
        isqrt(bad)
