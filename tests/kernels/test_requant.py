"""kernels.requantize equals spec.requantize bit for bit, and refuses every broken precondition."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from intref.errors import DtypeError, OverflowCheckError, RangeError, ShapeError
from intref.kernels.requant import add_requantized, requantize
from intref.kernels.rounding import mul_shift_round
import intref.spec.requant as spec
from intref.spec.rounding import ROUNDING_MODES, rshift_round
from intref.testing import assert_identical
from intref.testing.twins import assert_equals_spec, spec_requantize

INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
MULTIPLIER = st.one_of(st.sampled_from([0, 1, -1, 1 << 30, 1 << 31, -(1 << 31), (1 << 31) - 1]),
                       st.integers(-(1 << 31), 1 << 31))
SHIFT = st.one_of(st.sampled_from([0, 1, 30, 31, 32, 33, 62, 63, 64, 95, 96, 127]), st.integers(0, 127))
OVERFLOWS = ("saturate", "wrap")


def check_equal_to_spec(x, m, s, **kw):
    got = requantize(x, m, s, **kw)
    assert_equals_spec(got, spec_requantize(x, m, s, **kw), context=f"requantize(m={m}, s={s}, {kw})")
    return got


@given(hnp.arrays(np.int64, hnp.array_shapes(max_dims=3, max_side=6), elements=INT64), MULTIPLIER, SHIFT,
       st.sampled_from(ROUNDING_MODES), st.sampled_from(OVERFLOWS), st.integers(1, 32), st.booleans())
def test_kernel_equals_spec_per_tensor(x, m, s, rounding, overflow, bits, signed):
    check_equal_to_spec(x, m, s, rounding=rounding, overflow=overflow, bits=bits, signed=signed)


@given(st.data(), st.sampled_from(ROUNDING_MODES), st.sampled_from(OVERFLOWS), st.integers(1, 32))
def test_kernel_equals_spec_per_channel(data, rounding, overflow, bits):
    channels = data.draw(st.integers(1, 5))
    x = data.draw(hnp.arrays(np.int64, (data.draw(st.integers(0, 4)), channels), elements=INT64))
    m = np.array(data.draw(st.lists(MULTIPLIER, min_size=channels, max_size=channels)), dtype=np.int64)
    s = np.array(data.draw(st.lists(SHIFT, min_size=channels, max_size=channels)), dtype=np.int64)
    check_equal_to_spec(x, m, s, rounding=rounding, overflow=overflow, bits=bits)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_every_int16_input_exhaustively(rounding):
    """All 65536 int16 values through int8 outputs at shifts around the double-rounding switch."""
    x = np.arange(-(1 << 15), 1 << 15, dtype=np.int16)
    for m, s in ((1 << 30, 31), (1 << 30, 32), (1431655765, 36), (-1431655765, 40), (1 << 31, 45), (3, 0)):
        for overflow in OVERFLOWS:
            got = requantize(x, m, s, rounding=rounding, bits=8, overflow=overflow)
            assert got.dtype == np.int8
            assert_equals_spec(got, spec_requantize(x, m, s, rounding=rounding, overflow=overflow),
                               context=f"m={m} s={s} {rounding} {overflow}")


def test_every_int8_input_against_many_multipliers():
    x = np.arange(-128, 128, dtype=np.int8)
    rng = np.random.default_rng(7)
    for m in rng.integers(-(1 << 31), (1 << 31) + 1, size=40).tolist():
        s = int(rng.integers(0, 64))
        for rounding in ROUNDING_MODES:
            got = requantize(x, m, s, rounding=rounding, bits=16)
            assert got.dtype == np.int16
            assert_equals_spec(got, spec_requantize(x, m, s, rounding=rounding, bits=16), context=f"m={m} s={s} {rounding}")


@pytest.mark.parametrize("bits, signed, dtype", [(8, True, np.int8), (9, True, np.int16), (8, False, np.uint8),
                                                 (9, False, np.uint16), (22, True, np.int32), (32, False, np.uint32),
                                                 (1, True, np.int8), (32, True, np.int32)])
def test_output_dtype_is_the_smallest_storage(bits, signed, dtype):
    assert requantize(np.array([5, -5]), 1, 0, bits=bits, signed=signed).dtype == dtype


def test_saturate_and_wrap_at_the_type_edges():
    x = np.array([127, 128, -128, -129, 255, 256], dtype=np.int32)
    assert requantize(x, 1, 0, overflow="saturate").tolist() == [127, 127, -128, -128, 127, 127]
    assert requantize(x, 1, 0, overflow="wrap").tolist() == [127, -128, -128, 127, -1, 0]
    assert requantize(x, 1, 0, signed=False, overflow="wrap").tolist() == [127, 128, 128, 127, 255, 0]


def test_check_names_the_first_index_and_the_exact_value_even_beyond_int64():
    x = np.array([[1, 0], [0, -(1 << 63)]], dtype=np.int64)  # 1 * -2**31 still fits int32
    with pytest.raises(OverflowCheckError) as info:
        requantize(x, -(1 << 31), 0, bits=32, overflow="check")
    assert info.value.index == (1, 1)
    assert info.value.value == (1 << 63) * (1 << 31)  # 2**94: no int64 holds it
    assert "[1, 1]" in str(info.value)
    assert requantize(x[:1], 1, 0, overflow="check").tolist() == [[1, 0]]


def test_wide_products_are_never_rounded_early():
    # x * m = (2**62 + 1) * (2**31 - 1) needs 93 bits; a float64 product would lose the low bits.
    x, m = (1 << 62) + 1, (1 << 31) - 1
    for s in (63, 62, 61):
        for rounding in ROUNDING_MODES:
            got = mul_shift_round(np.array([x]), np.int64(m), np.int64(s), rounding).value()
            assert int(got[0]) == rshift_round(x * m, s, rounding) or abs(rshift_round(x * m, s, rounding)) >= 1 << 62


def test_large_internal_shifts_up_to_127_match_the_spec():
    x = np.array([-(1 << 63), (1 << 63) - 1, -1, 0, 1, 12345], dtype=np.int64)
    for m in (-(1 << 31), 1 << 31, 7):
        for s in (64, 93, 94, 95, 96, 97, 127):
            for rounding in ROUNDING_MODES:
                got = mul_shift_round(x, np.int64(m), np.int64(s), rounding).value()
                expected = np.array([rshift_round(v * m, s, rounding) for v in x.tolist()], dtype=np.int64)
                assert_identical(got, expected, context=f"m={m} s={s} {rounding}")


# --- rejection paths: each names the argument (and the index where there is one) ---

@pytest.mark.parametrize("x", [np.array([1.0]), np.array([True]), np.array([1], dtype=np.uint64),
                               np.array(["1"]), [1, 2], 1.5])
def test_rejects_non_integer_or_unsafe_x(x):
    with pytest.raises(DtypeError, match="x"):
        requantize(x, 1, 0)


def test_rejects_multiplier_too_wide_naming_the_channel():
    with pytest.raises(RangeError) as info:
        requantize(np.zeros((2, 3), np.int32), np.array([1, (1 << 31) + 1, 1]), 0)
    assert info.value.argument == "multiplier" and info.value.index == (1,)


@pytest.mark.parametrize("shift", [128, -1, np.array([0, 128])])
def test_rejects_shift_out_of_range(shift):
    with pytest.raises(RangeError, match="shift"):
        requantize(np.zeros((1, 2), np.int32), 1, shift)


def test_rejects_per_channel_shape_mismatch():
    with pytest.raises(ShapeError, match="multiplier"):
        requantize(np.zeros((2, 3), np.int32), np.array([1, 2]), 0)
    with pytest.raises(ShapeError, match="shift"):
        requantize(np.zeros((2, 3), np.int32), 1, np.zeros((3, 1), np.int64))


@pytest.mark.parametrize("kwargs, name", [({"bits": 0}, "bits"), ({"bits": 33}, "bits"), ({"rounding": "nearest"}, "rounding"),
                                          ({"overflow": "clip"}, "overflow"), ({"bits": 8.0}, "bits")])
def test_rejects_bad_options(kwargs, name):
    with pytest.raises((RangeError, DtypeError), match=name):
        requantize(np.zeros(2, np.int32), 1, 0, **kwargs)


def test_rejects_float_multiplier():
    with pytest.raises(DtypeError, match="multiplier"):
        requantize(np.zeros(2, np.int32), 0.5, 0)


def test_inputs_are_not_modified():
    x = np.array([1000, -1000], dtype=np.int32)
    before = x.copy()
    requantize(x, 1 << 30, 33)
    assert_identical(x, before)


# --- add_requantized (the residual add) ---

@given(st.data(), st.sampled_from(ROUNDING_MODES), st.sampled_from(OVERFLOWS + ("check",)), st.integers(1, 32))
def test_add_requantized_equals_spec(data, rounding, overflow, bits):
    channels = data.draw(st.integers(1, 4))
    element = st.integers(-(1 << 40), 1 << 40)
    a = data.draw(hnp.arrays(np.int64, (data.draw(st.integers(1, 3)), channels), elements=element))
    b_shape = data.draw(st.sampled_from([a.shape, (channels,), (1, channels)]))
    b = data.draw(hnp.arrays(np.int64, b_shape, elements=element))
    ms = [data.draw(st.lists(MULTIPLIER, min_size=channels, max_size=channels)) for _ in range(2)]
    ss = [data.draw(st.lists(st.integers(10, 63), min_size=channels, max_size=channels)) for _ in range(2)]
    kw = dict(rounding=rounding, bits=bits, overflow=overflow)
    b_full = np.broadcast_to(b, a.shape)
    expected, raised = np.empty(a.shape, dtype=object), None
    for i, c in np.ndindex(*a.shape):
        try:
            expected[i, c] = spec.add_requantized(int(a[i, c]), int(b_full[i, c]), ms[0][c], ss[0][c], ms[1][c], ss[1][c], **kw)
        except OverflowCheckError:
            raised = raised or (i, c)
    if raised:
        with pytest.raises(OverflowCheckError) as info:
            add_requantized(a, b, ms[0], ss[0], ms[1], ss[1], **kw)
        assert info.value.index == raised
    else:
        got = add_requantized(a, b, ms[0], ss[0], ms[1], ss[1], **kw)
        assert_identical(got.astype(object), expected, check_dtype=False)


def test_add_requantized_rounds_each_branch_before_adding():
    # 0.5 + 0.5: each branch rounds half to even (0 + 0), rounding the sum would give 1
    assert add_requantized(np.array([1]), np.array([1]), 1, 1, 1, 1).tolist() == [0]
    assert spec.add_requantized(1, 1, 1, 1, 1, 1) == 0
    assert add_requantized(np.array([3]), np.array([1]), 1, 1, 1, 1, rounding="half_up").tolist() == [3]


def test_add_requantized_refuses_branches_beyond_two_to_the_62():
    with pytest.raises(RangeError, match="rounded a"):
        add_requantized(np.array([1 << 62]), np.array([0]), 1 << 31, 31, 1, 0, bits=32)
    with pytest.raises(ShapeError):
        add_requantized(np.zeros((2, 3), np.int32), np.zeros((2,), np.int32), 1, 0, 1, 0)
