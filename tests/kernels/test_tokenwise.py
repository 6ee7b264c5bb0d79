"""kernels.tokenwise equals spec.tokenwise bit for bit: by hypothesis, exhaustively on small domains
(every int16 value, every t below 2**16), on int32 extremes; broken REQUIREs are refused."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from intref.errors import OverflowCheckError, RangeError, ShapeError
from intref.kernels import tokenwise as kernels
from intref.spec import tokenwise as spec
from intref.spec.rounding import ROUNDING_MODES
from intref.testing import assert_identical

INT32 = st.one_of(st.sampled_from([-(1 << 31), (1 << 31) - 1, 0, -1, 1, 127, -127]),
                  st.integers(-(1 << 31), (1 << 31) - 1))
ROWS = hnp.arrays(np.int32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=INT32)
SCALES = st.one_of(st.sampled_from([1, 2, 3, 127, 128, (1 << 29) + 1, 1 << 30]), st.integers(1, 1 << 30))


def spec_scales(x, bits):
    rows = x.reshape(-1, x.shape[-1]).tolist()
    return np.array([spec.token_scale(r, bits=bits) for r in rows], np.int64).reshape(x.shape[:-1] + (1,))


def spec_quantize(x, t, bits, rounding):
    rows, ts = x.reshape(-1, x.shape[-1]).tolist(), np.broadcast_to(t, x.shape[:-1] + (1,)).reshape(-1).tolist()
    out = [spec.token_quantize(r, s, bits=bits, rounding=rounding) for r, s in zip(rows, ts)]
    return np.array(out, np.int64).reshape(x.shape)


@given(ROWS, st.integers(4, 16), st.sampled_from(ROUNDING_MODES))
def test_scale_and_quantize_equal_the_spec(x, bits, rounding):
    t = kernels.token_scale(x, bits=bits)
    assert_identical(t, spec_scales(x, bits), context="token_scale")
    q = kernels.token_quantize(x, t, bits=bits, rounding=rounding)
    assert q.dtype == (np.int8 if bits <= 8 else np.int16)
    assert_identical(q.astype(np.int64), spec_quantize(x, t, bits, rounding), context="token_quantize")


@given(st.data(), st.integers(4, 16), st.sampled_from(ROUNDING_MODES))
def test_quantize_with_any_legal_scale_equals_the_spec(data, bits, rounding):
    """Scales from elsewhere (a dump fed back): the clamp decides; still bit-exact."""
    x = data.draw(ROWS)
    t = np.array(data.draw(st.lists(SCALES, min_size=int(np.prod(x.shape[:-1])),
                                    max_size=int(np.prod(x.shape[:-1]))))).reshape(x.shape[:-1] + (1,))
    q = kernels.token_quantize(x, t, bits=bits, rounding=rounding)
    assert_identical(q.astype(np.int64), spec_quantize(x, t, bits, rounding), context="token_quantize")


def test_reciprocal_for_every_t_below_2_16_and_around_each_power_of_two():
    ts = np.array(list(range(1, 1 << 16)) + [v for k in range(16, 31) for v in ((1 << k) - 1, 1 << k, (1 << k) + 1)
                                             if v <= 1 << 30])
    m, s = kernels.token_reciprocal(ts)
    want = [spec.token_reciprocal(int(t)) for t in ts]
    assert_identical(m, np.array([w[0] for w in want], np.int64), context="m")
    assert_identical(np.asarray(s), np.array([w[1] for w in want], np.int64), context="s")
    assert_identical(kernels.bit_length(ts - 1), np.array([int(t - 1).bit_length() for t in ts]), context="bit_length")


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_every_int16_value_at_several_scales(rounding):
    x = np.arange(-(1 << 15), 1 << 15, dtype=np.int32).reshape(1, -1)
    for t in (1, 2, 3, 129, 258, 1000, 65535):
        got = kernels.token_quantize(x, np.array([[t]]), rounding=rounding)
        assert_identical(got.astype(np.int64), spec_quantize(x, np.array([[t]]), 8, rounding), context=f"t={t}")
    assert_identical(kernels.token_scale(x.reshape(-1, 1)), spec_scales(x.reshape(-1, 1), 8), context="scales")


def test_int32_extremes_and_empty_rows():
    x = np.array([[-(1 << 31), (1 << 31) - 1, 0], [0, 0, 0], [-1, 1, 0]], np.int32)
    t = kernels.token_scale(x)
    assert t.ravel().tolist() == [16909321, 1, 1]
    assert kernels.token_quantize(x, t).tolist() == [[-127, 127, 0], [0, 0, 0], [-1, 1, 0]]
    assert kernels.token_scale(np.zeros((2, 0), np.int32)).tolist() == [[1], [1]]


@st.composite
def requantize_cases(draw):
    acc = draw(hnp.arrays(np.int64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
                          elements=st.one_of(st.sampled_from([0, 1, -1, (1 << 31) - 1, -(1 << 31), (1 << 40)]),
                                             st.integers(-(1 << 40), 1 << 40))))
    t = np.array(draw(st.lists(st.integers(1, 1 << 22), min_size=int(np.prod(acc.shape[:-1])),
                               max_size=int(np.prod(acc.shape[:-1]))))).reshape(acc.shape[:-1] + (1,))
    channels = acc.shape[-1]
    per = draw(st.booleans())
    size = channels if per else 1
    m = draw(st.lists(st.integers(-(1 << 31), 1 << 31), min_size=size, max_size=size))
    s = draw(st.lists(st.integers(0, 127), min_size=size, max_size=size))
    bias = draw(st.one_of(st.none(), st.lists(st.integers(-(1 << 31), (1 << 31) - 1), min_size=size, max_size=size)))
    return acc, t, m, s, bias


def spec_requantize(acc, t, m, s, bias, **kw):
    out = np.empty(acc.shape, dtype=object)
    tb = np.broadcast_to(t, acc.shape)
    for index in np.ndindex(*acc.shape):
        c = index[-1] if len(m) > 1 else 0
        out[index] = spec.token_requantize(int(acc[index]), int(tb[index]), m[c], s[c],
                                           bias=0 if bias is None else bias[c], **kw)
    return out


@given(requantize_cases(), st.sampled_from(ROUNDING_MODES), st.sampled_from(["saturate", "wrap"]),
       st.integers(1, 32), st.booleans())
def test_requantize_equals_the_spec(case, rounding, overflow, bits, signed):
    acc, t, m, s, bias = case
    kw = dict(rounding=rounding, bits=bits, signed=signed, overflow=overflow)
    got = kernels.token_requantize(acc, t, m if len(m) > 1 else m[0], s if len(s) > 1 else s[0], bias=bias, **kw)
    assert_identical(got.astype(object), spec_requantize(acc, t, m, s, bias, **kw), context=str(kw), check_dtype=False)


def test_requantize_check_names_the_exact_value_even_beyond_2_62():
    acc = np.array([[1 << 40, 3]])
    with pytest.raises(OverflowCheckError, match=str(((1 << 40) * (1 << 22) * (1 << 31)) >> 10)):
        kernels.token_requantize(acc, np.array([[1 << 22]]), 1 << 31, 10, overflow="check")
    assert kernels.token_requantize(np.array([[1 << 40]]), np.array([[1 << 22]]), 1 << 31, 10).tolist() == [[127]]


@pytest.mark.parametrize("call, error, match", [
    (lambda: kernels.token_scale(np.array([1 << 31])), RangeError, "int32"),
    (lambda: kernels.token_scale(np.array([1]), bits=3), RangeError, "bits"),
    (lambda: kernels.token_scale(np.int32(1)), RangeError, "0-d"),
    (lambda: kernels.token_quantize(np.ones((2, 3), np.int32), np.zeros((2, 1), np.int64)), RangeError, "t"),
    (lambda: kernels.token_quantize(np.ones((2, 3), np.int32), np.full((2, 1), (1 << 30) + 1)), RangeError, "t"),
    (lambda: kernels.token_quantize(np.ones((2, 3), np.int32), np.ones((3, 1), np.int64)), ShapeError, "broadcast"),
    (lambda: kernels.token_quantize(np.ones((2, 3), np.int32), np.ones((2, 2, 1), np.int64)), ShapeError, "broadcast"),
    (lambda: kernels.token_requantize(np.array([[1 << 62]]), np.array([[2]]), 1, 0), RangeError, r"acc\[0, 0\]"),
    (lambda: kernels.token_requantize(np.array([[-(1 << 62) - 1]]), np.array([[2]]), 1, 0), RangeError, "acc"),
    (lambda: kernels.token_requantize(np.ones((1, 2)), np.array([[2]]), 1, 0), Exception, "dtype"),
    (lambda: kernels.token_requantize(np.ones((1, 2), np.int64), np.array([[2]]), [1, 2, 3], 0), ShapeError, "mult"),
    (lambda: kernels.token_requantize(np.ones((1, 2), np.int64), np.array([[2]]), 1, 0, bias=[1 << 31]), RangeError,
     "bias"),
])
def test_every_broken_require_is_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()
