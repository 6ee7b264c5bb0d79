"""kernels.group_linear equals spec.group_linear bit for bit: by hypothesis, exhaustively on small
domains, on extremes; every broken REQUIRE is refused with the index named."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.errors import DtypeError, RangeError, ShapeError
from intref.kernels.gemm import matmul
from intref.kernels.groupwise import group_linear
from intref.spec import groupwise as spec
from intref.spec.rounding import ROUNDING_MODES
from intref.testing import assert_identical

MULTIPLIERS = st.one_of(st.sampled_from([0, 1, 1 << 30, (1 << 31) - 1, 1 << 31]), st.integers(0, 1 << 31))
SHIFTS = st.one_of(st.sampled_from([0, 1, 30, 31, 32, 62, 63, 95, 96, 127]), st.integers(0, 127))


def spec_rows(x, weight, multiplier, shift, group_size, bias, rounding):
    rows = x.reshape(-1, x.shape[-1]).tolist()
    out = [spec.group_linear(r, weight.tolist(), multiplier.tolist(), shift, group_size=group_size,
                             bias=None if bias is None else bias.tolist(), rounding=rounding) for r in rows]
    return np.array(out, dtype=np.int64).reshape(x.shape[:-1] + (weight.shape[0],))


def check(x, weight, multiplier, shift, group_size, bias, rounding):
    got = group_linear(x, weight, multiplier, shift, group_size=group_size, bias=bias, rounding=rounding)
    assert got.dtype == np.int64
    assert_identical(got, spec_rows(x, weight, multiplier, shift, group_size, bias, rounding),
                     context=f"group_linear(g={group_size}, shift={shift}, {rounding})")


@st.composite
def cases(draw):
    g = draw(st.sampled_from([1, 2, 3, 4, 8]))
    k = g * draw(st.integers(1, 4))
    n = draw(st.integers(1, 5))
    w_bits = draw(st.sampled_from([4, 8]))
    x_type = draw(st.sampled_from([np.int8, np.uint8, np.int16]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    info = np.iinfo(x_type)
    x = rng.integers(info.min, info.max, size=draw(st.sampled_from([(k,), (3, k), (2, 2, k)])), endpoint=True)
    w = rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), size=(n, k))
    if draw(st.booleans()):       # extremes: every input and weight at an end of its range
        x = np.where(rng.random(x.shape) < 0.5, info.min, info.max)
        w = np.where(rng.random(w.shape) < 0.5, -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1)
    m = np.array(draw(st.lists(MULTIPLIERS, min_size=n * (k // g), max_size=n * (k // g)))).reshape(n, k // g)
    shift = draw(SHIFTS)
    p_max = max(int(np.abs(x).max()) * int(np.abs(w).max()) * g, 1)
    m = np.minimum(m, min(1 << 31, (((1 << 31) - 1) << shift) // p_max))   # every rescaled term within int32
    bias = rng.integers(-(1 << 31), 1 << 31, size=n) if draw(st.booleans()) else None
    return x.astype(x_type), w.astype(np.int8), m, shift, g, bias, draw(st.sampled_from(ROUNDING_MODES))


@given(cases())
def test_kernel_equals_spec(case):
    check(*case)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_every_int8_input_times_every_int4_weight(rounding):
    """Each of the 256 int8 values meets each of the 16 int4 values in both groups of one (x = [v, -1-v],
    w = every int4 pair), with multipliers that make ties at shift 31 and 33 and a bare shift of 0."""
    values = np.arange(-128, 128)
    x = np.stack([values, -1 - values], axis=-1).astype(np.int8)
    w = np.stack(np.meshgrid(np.arange(-8, 8), np.arange(-8, 8), indexing="ij"), -1).reshape(-1, 2).astype(np.int8)
    for m, shift in (((1 << 30, 3 << 29), 31), ((1 << 31, 1 << 31), 33), ((1, 12345), 0)):
        check(x, w, np.tile(np.array(m), (len(w), 1)), shift, 1, None, rounding)


def test_unit_multipliers_give_the_plain_gemm():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (4, 7, 64)).astype(np.int8)
    w = rng.integers(-8, 8, (24, 64)).astype(np.int8)
    bias = rng.integers(-1000, 1000, 24)
    got = group_linear(x, w, np.full((24, 2), 1 << 31), 31, group_size=32, bias=bias)
    assert_identical(got, matmul(x, np.ascontiguousarray(w.T)) + bias, context="unit rescale")


def test_extremes_at_the_int32_edge():
    """x = -2**15 and w = -2**15 in a group of one: P = 2**30; two such inputs in a group: 2**31, refused."""
    x = np.full((1, 2), -(1 << 15), np.int16)
    w = np.full((1, 2), -(1 << 15), np.int16)
    check(x, w, np.array([[1 << 31, 1 << 31]]), 32, 1, None, "half_even")        # each term 2**29
    with pytest.raises(RangeError, match=r"partial sum P of output \[0, 0\], group 0"):
        group_linear(x, w, np.array([[1]]), 0, group_size=2)
    with pytest.raises(RangeError, match=r"rescaled term R of output \[0, 0\], group 1"):
        group_linear(x, w, np.array([[1, 2]]), 0, group_size=1)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(weight=np.ones((2, 4), np.int32)), DtypeError, "weight"),
    (dict(x=np.ones((1, 4), np.float32)), DtypeError, "x"),
    (dict(weight=np.ones((2, 3), np.int8)), ShapeError, "weight"),
    (dict(group_size=3), ShapeError, "multiple"),
    (dict(group_size=0), RangeError, "group_size"),
    (dict(multiplier=np.ones((2, 3))), DtypeError, "multiplier"),
    (dict(multiplier=np.ones((2, 3), np.int64)), ShapeError, "multiplier"),
    (dict(multiplier=np.full((2, 2), -1)), RangeError, "multiplier"),
    (dict(multiplier=np.full((2, 2), (1 << 31) + 1)), RangeError, "multiplier"),
    (dict(shift=128), RangeError, "shift"),
    (dict(bias=np.ones(3, np.int32)), ShapeError, "bias"),
    (dict(bias=np.full(2, 1 << 31)), RangeError, "bias"),
    (dict(rounding="nearest"), RangeError, "rounding"),
])
def test_every_broken_require_is_refused(kwargs, error, match):
    args = dict(x=np.ones((1, 4), np.int8), weight=np.ones((2, 4), np.int8), multiplier=np.ones((2, 2), np.int64),
                shift=0, group_size=2)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        group_linear(**args)
