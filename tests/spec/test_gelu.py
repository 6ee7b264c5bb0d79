"""spec.gelu: hand-worked vectors of i_gelu, GeluParams' int64 proof (ERROR_IF), output_range.

output_range is checked against brute force: every input of a small range through the spec, and
every int16 input through the kernel (which tests/kernels/test_gelu.py proves equal to the spec).
"""

import re

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from intref.errors import DtypeError, RangeError, ShapeError
from intref.kernels.gelu import i_gelu as kernel_i_gelu
from intref.quant.gelu import prepare_gelu
from intref.spec.gelu import GeluParams, i_gelu
from intref.spec.gelu_bounds import cubic_extremes

from intref.inttypes import INT64_MAX

# A small per-tensor example: B = -10 (clip at |q| = 10), C = -120, K = -30, floor by 2**2.
SMALL = GeluParams(b_int=-10, c_int=-120, shift_int=-30, guard_shift=2, input_bits=8, out_scale=1.0)


@pytest.mark.parametrize("q, expected", [
    (0, 0),        # sgn = 0: y = 0, result = 0 * (0 - 30) = 0
    (1, -40),      # t = 1, d = -9, P = 81 - 120 = -39, y = floor(-39/4) = floor(-9.75) = -10; 1 * (-10 - 30)
    (-1, 21),      # sgn = -1: y = floor(39/4) = 9; -1 * (9 - 30) = 21
    (3, -144),     # t = 3, d = -7, P = 49 - 120 = -71, y = floor(-17.75) = -18 (not -17: floor, not trunc);
                   # 3 * (-18 - 30) = -144
    (-3, 39),      # y = floor(71/4) = 17; -3 * (17 - 30) = 39
    (9, -540),     # t = 9, d = -1, P = 1 - 120 = -119, y = floor(-29.75) = -30; 9 * (-30 - 30)
    (10, -600),    # t = 10 = -B, d = 0, P = -120, y = -30; 10 * (-30 - 30) = -600
    (-10, 0),      # y = floor(120/4) = 30; -10 * (30 - 30) = 0
    (25, -1500),   # clipped: t = 10, as q = 10: 25 * -60
    (-25, 0),      # clipped: 25 * 0
    (127, -7620),  # int8 maximum, clipped: 127 * -60
    (-128, 0),     # int8 minimum
])
def test_hand_worked_vectors(q, expected):
    assert i_gelu(q, SMALL) == expected


def test_hand_worked_vector_from_a_real_scale():
    # S = 1.4142, so S' = S / 1.4142 = 1 exactly; guard 0:
    # b_int = floor(-1.769) = -2, c_int = floor(1/-0.2888) = floor(-3.4626) = -4,
    # shift_int = floor(1 / -0.2888) = -4, out_scale = 1.4142 * -0.2888 / 2 = -0.20421048.
    params = GeluParams(b_int=-2, c_int=-4, shift_int=-4, guard_shift=0, input_bits=8, out_scale=-0.20421048)
    # q = 1 (x = 1.4142): t = 1, d = -1, P = 1 - 4 = -3, y = -3; 1 * (-3 - 4) = -7 -> 1.43 real
    # (GELU(1.4142) = 1.30: the scale is far too coarse for accuracy, but the integers are exact)
    assert i_gelu(1, params) == -7
    # q = -1: y = 3; -1 * (3 - 4) = 1 -> -0.204 real (GELU(-1.4142) = -0.111)
    assert i_gelu(-1, params) == 1
    # q = 2: clipped (t = 2 = -B), P = -4; 2 * (-4 - 4) = -16 -> 3.27 real (GELU(2.83) = 2.82)
    assert i_gelu(2, params) == -16
    assert i_gelu(-2, params) == 0


def test_floor_is_toward_minus_infinity_for_negative_polynomials():
    # sgn * P = -71 with guard 2: floor(-17.75) = -18, while truncation would give -17.
    assert i_gelu(3, SMALL) == 3 * (-18 - 30)
    assert i_gelu(3, SMALL) != 3 * (-17 - 30)


@given(st.integers(-128, 127))
def test_clipped_region_is_linear_and_zero_maps_to_zero(q):
    value = i_gelu(q, SMALL)
    if q >= 10:
        assert value == q * ((-120 >> 2) - 30)
    elif q <= -10:
        assert value == q * ((120 >> 2) - 30)
    elif q == 0:
        assert value == 0


@pytest.mark.parametrize("q", [128, -129, 1 << 70])
def test_spec_rejects_q_outside_input_type(q):
    with pytest.raises(RangeError, match="outside int8"):
        i_gelu(q, SMALL)


@pytest.mark.parametrize("q", [1.0, True, "3", None])
def test_spec_rejects_non_int_q(q):
    with pytest.raises(DtypeError):
        i_gelu(q, SMALL)


def test_spec_rejects_per_channel_params_and_non_params():
    per_channel = GeluParams((-10, -9), (-120, -100), (-30, -25), 2, 8, (1.0, 1.0))
    with pytest.raises(ShapeError, match="channel"):
        i_gelu(1, per_channel)
    assert i_gelu(3, per_channel.channel(0)) == i_gelu(3, SMALL)
    with pytest.raises(DtypeError):
        i_gelu(1, {"b_int": -10})


# ---- ERROR_IF: constants whose intermediates would leave int64 -------------------------------

def make(b=0, c=0, k=0, g=0, n=8):
    return GeluParams(b, c, k, g, n, 1.0)


@pytest.mark.parametrize("kwargs, name", [
    ({"b": 1}, "b_int"),                                    # the clip point -b_int must be >= 0
    ({"b": -(1 << 63)}, "b_int"),                           # -b_int does not fit int64
    ({"c": 1 << 63}, "c_int"),
    ({"k": -(1 << 63) - 1}, "shift_int"),
    ({"b": -(1 << 32)}, "(t + b_int)**2"),                  # d*d = 2**64
    ({"b": -(1 << 31), "c": 1 << 62}, "(t + b_int)**2 + c_int"),  # 2**62 + 2**62
    ({"c": -(1 << 63) + 1, "k": -2}, "y + shift_int"),         # y = c_int at q > 0, minus 2
    ({"k": 1 << 56, "n": 9}, "q * (y + shift_int)"),           # 2**8 * 2**56 = 2**64
])
def test_params_whose_intermediates_overflow_int64_are_refused(kwargs, name):
    with pytest.raises(RangeError, match=re.escape(name)) as info:
        make(**kwargs)
    assert info.value.index is None


def test_overflow_error_names_the_channel():
    ok = make(b=-10, c=-120, k=-30)
    with pytest.raises(RangeError, match="channel 1") as info:
        GeluParams((-10, -10, -10), (-120, -120, -120), (-30, 1 << 60, -30), 0, 8, (1.0, 1.0, 1.0))
    assert info.value.index == (1,)
    assert ok.channels is None


def test_int64_proof_is_exact_at_the_boundary():
    # B = C = 0: y = 0 and the result is q * K for q in int63 = [-2**62, 2**62 - 1].
    fits = make(k=2, n=63)               # [-2**63, 2**63 - 2]: inside int64
    with pytest.raises(RangeError, match="q \\* \\(y"):
        make(k=-2, n=63)                 # q = -2**62 gives +2**63: one past int64
    assert i_gelu(-(1 << 62), fits) == -(1 << 63)
    assert fits.output_range(-(1 << 62), (1 << 62) - 1) == (-(1 << 63), (1 << 63) - 2)
    # (t + b_int)**2: |b_int| = 3037000499 is the largest with b_int**2 <= int64 max.
    make(b=-3037000499, g=62)
    with pytest.raises(RangeError, match="\\(t \\+ b_int\\)\\*\\*2"):
        make(b=-3037000500, g=62)


# ---- output_range -------------------------------------------------------------------------------

def cubic_brute(b, e, ua, ub):
    values = [u * ((u + b) ** 2 + e) for u in range(ua, ub + 1)]
    return min(values), max(values)


@given(st.integers(-60, 0), st.integers(-20000, 20000), st.integers(-80, 80), st.integers(0, 80))
def test_cubic_extremes_equal_brute_force(b, e, ua, width):
    assert cubic_extremes(b, e, ua, ua + width) == cubic_brute(b, e, ua, ua + width)


def assert_range_sound_and_tight(params, in_lo, in_hi, values):
    """``values``: the exact results for every q in [in_lo, in_hi]."""
    lo, hi = params.output_range(in_lo, in_hi)
    true_lo, true_hi = min(values), max(values)
    clip = max(-b for b in np.atleast_1d(params.b_int))
    slack = min(max(abs(in_lo), abs(in_hi)), clip)          # the documented tightness bound
    assert lo <= true_lo and true_hi <= hi, (lo, hi, true_lo, true_hi)
    assert true_lo - lo <= slack and hi - true_hi <= slack, (lo, hi, true_lo, true_hi, slack)


SMALL_PARAMS = st.builds(
    lambda b, c, k, g: GeluParams(b, c, k, g, 12, 1.0),
    st.integers(-300, 0), st.integers(-10 ** 6, 10 ** 6), st.integers(-5000, 5000), st.integers(0, 12))


@given(SMALL_PARAMS, st.integers(-2048, 2047), st.integers(0, 600))
def test_output_range_of_any_subrange_is_sound_and_tight(params, in_lo, width):
    in_hi = min(in_lo + width, 2047)
    values = [i_gelu(q, params) for q in range(in_lo, in_hi + 1)]
    assert_range_sound_and_tight(params, in_lo, in_hi, values)


INT16_CASES = {
    "reference S=4/32767, g=14": prepare_gelu(4 / 32767, input_bits=16, guard_shift=14),
    "S=4/32767, auto": prepare_gelu(4 / 32767, input_bits=16, guard_shift="auto"),
    "HF-like S=2e-4, g=14": prepare_gelu(2e-4, input_bits=16),
    "int8 scale 4/127, g=0": prepare_gelu(4 / 127, input_bits=16, guard_shift=0),
    "per channel": prepare_gelu(np.array([4 / 32767, 1e-3, 4 / 127]), input_bits=16, guard_shift=3),
}


@pytest.mark.parametrize("name", list(INT16_CASES))
def test_output_range_over_every_int16_input(name):
    params = INT16_CASES[name]
    channels = params.channels or 1
    q = np.repeat(np.arange(-32768, 32768, dtype=np.int64)[:, None], channels, axis=1)
    values = kernel_i_gelu(q if params.channels else q[:, 0], params)
    lo, hi = params.output_range(-32768, 32767)
    true_lo, true_hi = int(values.min()), int(values.max())
    assert_range_sound_and_tight(params, -32768, 32767, [true_lo, true_hi])
    # Not loose: measured 1 + 7.6e-7 at worst over these cases.
    assert (hi - lo) <= (true_hi - true_lo) * 1.00001, (name, lo, hi, true_lo, true_hi)


@given(st.data())
def test_output_range_is_sound_for_wide_inputs(data):
    n = data.draw(st.integers(17, 40))
    scale = 8.0 / 2 ** data.draw(st.integers(n - 8, n + 4))
    try:
        params = prepare_gelu(scale, input_bits=n, guard_shift=data.draw(st.sampled_from(["auto", 14, 20])))
    except RangeError:
        assume(False)
    q_lo, q_hi = -(1 << (n - 1)), (1 << (n - 1)) - 1
    in_lo = data.draw(st.integers(q_lo, q_hi))
    in_hi = data.draw(st.integers(in_lo, q_hi))
    lo, hi = params.output_range(in_lo, in_hi)
    clip = -params.b_int
    special = [in_lo, in_hi, 0, 1, -1, clip, -clip, clip - 1, 1 - clip]
    qs = [q for q in special if in_lo <= q <= in_hi]
    qs += data.draw(st.lists(st.integers(in_lo, in_hi), min_size=1, max_size=20))
    for q in qs:
        assert lo <= i_gelu(q, params) <= hi, q
    assert lo <= INT64_MAX and hi <= INT64_MAX


@pytest.mark.parametrize("in_lo, in_hi", [(1, 0), (-129, 0), (0, 128)])
def test_output_range_rejects_bad_input_ranges(in_lo, in_hi):
    with pytest.raises(RangeError):
        SMALL.output_range(in_lo, in_hi)


def test_output_range_rejects_non_int_bounds():
    with pytest.raises(DtypeError):
        SMALL.output_range(-1.5, 3)
