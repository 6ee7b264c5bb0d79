"""spec.tokenwise: the per-token scale, its reciprocal and the quantization, by hand and by invariant."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.spec.rounding import ROUNDING_MODES, rshift_round
from intref.spec.tokenwise import token_quantize, token_reciprocal, token_requantize, token_scale

INT32 = st.one_of(st.sampled_from([-(1 << 31), (1 << 31) - 1, 0, -1, 1, 127, -127, 128]),
                  st.integers(-(1 << 31), (1 << 31) - 1))
ROW = st.lists(INT32, min_size=1, max_size=12)


def test_hand_worked_row():
    # max|x| = 20000; t = ceil(20000 / 127) = 158; m, s = TOSA reciprocal of 158: k = 8, s = 38
    assert token_scale([1000, -20000, 3]) == 158
    m, s = token_reciprocal(158)
    assert (m, s) == ((((1 << 30) + 1) << 8) // 158, 38)
    # 1000 / 158 = 6.33 -> 6; -20000 / 158 = -126.58 -> -127; 3 / 158 -> 0
    assert token_quantize([1000, -20000, 3], 158) == [6, -127, 0]


def test_small_and_zero_rows_keep_their_values():
    assert token_scale([0, 0, 0]) == 1 and token_quantize([0, 0, 0], 1) == [0, 0, 0]
    assert token_scale([127, -127, 5]) == 1 and token_quantize([127, -127, 5], 1) == [127, -127, 5]
    assert token_scale([128]) == 2 and token_quantize([128, -3], 2) == [64, -2]   # -1.5 -> -2 (half_even)
    assert token_scale([]) == 1


def test_int32_extremes():
    t = token_scale([-(1 << 31)])
    assert t == -(-(1 << 31) // 127) == 16909321
    assert token_quantize([-(1 << 31), (1 << 31) - 1, 0], t) == [-127, 127, 0]
    assert token_scale([-(1 << 31)], bits=4) == -(-(1 << 31) // 7) < 1 << 29


def test_the_reciprocal_mantissa_stays_31_bits_for_every_small_t_and_at_each_power_of_two():
    ts = list(range(1, 1 << 14)) + [v for k in range(14, 31) for v in ((1 << k) - 1, 1 << k, (1 << k) + 1)]
    for t in ts:
        if t > 1 << 30:
            continue
        m, s = token_reciprocal(t)
        assert (1 << 30) <= m < (1 << 31), t
        assert 2 ** s <= m * t < 2 ** s + 2 ** s // (1 << 30) + t, t   # m / 2**s = (1 + 2**-30) / t - d, 0 <= d < 2**-s


@given(ROW, st.integers(4, 16), st.sampled_from(ROUNDING_MODES))
def test_the_clamp_never_acts_with_the_rows_own_scale(row, bits, rounding):
    """|x| / t <= Q and m / 2**s <= (1 + 2**-30) / t: the unclamped value is already within [-Q, Q]."""
    q_max = (1 << (bits - 1)) - 1
    t = token_scale(row, bits=bits)
    assert max(abs(v) for v in row) <= q_max * t
    m, s = token_reciprocal(t)
    unclamped = [rshift_round(v * m, s, rounding) for v in row]
    assert all(-q_max <= v <= q_max for v in unclamped)
    assert token_quantize(row, t, bits=bits, rounding=rounding) == unclamped


@given(ROW, st.integers(4, 16))
def test_q_is_the_nearest_integer_to_x_over_t_away_from_ties(row, bits):
    t = token_scale(row, bits=bits)
    for x, q in zip(row, token_quantize(row, t, bits=bits, rounding="half_away")):
        exact = Fraction(x, t)
        assert abs(q - exact) <= Fraction(1, 2) + Fraction(1, 1 << 26), (x, t, q)


def test_a_foreign_scale_saturates():
    assert token_quantize([1000, -1000], 1) == [127, -127]
    assert token_quantize([1000, -1000], 1, bits=4) == [7, -7]


def test_requantize_hand_worked():
    # acc 100 with t = 3: 300 * 2**30 / 2**31 = 150, + bias 1
    assert token_requantize(100, 3, 1 << 30, 31, bias=1, bits=16) == 151
    assert token_requantize(-200, 3, 1 << 31, 33, bias=-1) == -128            # -150 - 1 saturates
    assert token_requantize(-200, 3, 1 << 31, 33, bias=-1, overflow="wrap") == (-151 + 256)


@pytest.mark.parametrize("call, match", [
    (lambda: token_reciprocal(0), "token scale"),
    (lambda: token_reciprocal((1 << 30) + 1), "token scale"),
    (lambda: token_quantize([1], True), "token scale"),
    (lambda: token_scale([1 << 31]), "int32"),
    (lambda: token_scale([1], bits=3), "bits"),
    (lambda: token_scale([1], bits=17), "bits"),
    (lambda: token_quantize([1], 1, rounding="up"), "rounding"),
    (lambda: token_requantize(1 << 62, 2, 1, 0), "2\\*\\*63"),
    (lambda: token_requantize(1, 1, (1 << 31) + 1, 0), "multiplier"),
    (lambda: token_requantize(1, 1, 1, 128), "shift"),
    (lambda: token_requantize(1, 1, 1, 0, bias=1 << 31), "bias"),
    (lambda: token_requantize(1, 1, 1, 0, bits=33), "bits"),
])
def test_every_require_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
