"""The load-time GELU proofs done for all channels at once equal the scalar per-channel proofs.

- ``kernels.gelu_bounds.channel_output_ranges`` (int64, all channels) equals
  ``spec.gelu_bounds.channel_output_range`` channel by channel wherever its guard holds, on random
  constants and at the guard's edge (the last value it admits; one past it, ``output_range``
  falls back to the spec);
- ``spec.gelu_bounds.all_channels_proven_int64`` (the screen that lets ``GeluParams`` skip the
  per-channel loop) only ever says True when every channel passes the exact proof, and
  ``GeluParams`` accepts and refuses exactly what the per-channel loop does, with its message.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from intref.errors import RangeError
from intref.kernels.gelu_bounds import INT64_SAFE, channel_output_ranges, int64_guard_holds, output_range
from intref.spec.gelu import GeluParams
from intref.spec.gelu_bounds import (all_channels_proven_int64, channel_output_range, int_type_range,
                                     require_int64_intermediates)


def spec_ranges(b, c, k, g, in_lo, in_hi):
    return [channel_output_range(*consts, g, in_lo, in_hi) for consts in zip(b, c, k)]


def vector_ranges(b, c, k, g, in_lo, in_hi):
    lo, hi = channel_output_ranges(*(np.array(v, dtype=np.int64) for v in (b, c, k)), g, in_lo, in_hi)
    return [(int(x), int(y)) for x, y in zip(lo, hi)]


def guard(b, c, k, g, in_lo, in_hi):
    return int64_guard_holds(min(b), max(map(abs, c)), max(map(abs, k)), g, in_lo, in_hi)


def signed_magnitude(max_bits):
    """Integers spread over magnitudes 0 .. 2**max_bits, both signs, powers of two and neighbours."""
    return st.integers(0, max_bits).flatmap(lambda bits: st.one_of(
        st.integers(-(1 << bits), 1 << bits), st.sampled_from([1 << bits, -(1 << bits), (1 << bits) - 1,
                                                               1 - (1 << bits), 0])))


@st.composite
def channel_constants(draw, max_bits=64, positive_b=False):
    count = draw(st.integers(1, 6))
    b = [draw(signed_magnitude(max_bits)) for _ in range(count)]
    b = b if positive_b else [-abs(v) for v in b]
    c = [draw(signed_magnitude(max_bits)) for _ in range(count)]
    k = [draw(signed_magnitude(max_bits)) for _ in range(count)]
    return b, c, k


@given(channel_constants(max_bits=40), st.integers(0, 62), st.integers(2, 63), st.data())
def test_vectorized_output_range_equals_spec_per_channel(constants, g, n, data):
    q_lo, q_hi = int_type_range(n)
    in_lo = data.draw(st.one_of(st.integers(q_lo, q_hi), st.sampled_from([q_lo, 0, -1, 1])))
    in_hi = data.draw(st.one_of(st.integers(in_lo, q_hi), st.sampled_from([in_lo, q_hi])))
    b, c, k = constants
    assume(guard(b, c, k, g, in_lo, in_hi))
    assert vector_ranges(b, c, k, g, in_lo, in_hi) == spec_ranges(b, c, k, g, in_lo, in_hi)


def largest(holds, lo: int, hi: int) -> int:
    """The largest x in [lo, hi] with holds(x), for a predicate true at lo and false at hi."""
    assert holds(lo) and not holds(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if holds(mid) else (lo, mid)
    return lo


# Each case pushes one term of the guard to its edge: (what varies, fixed c_abs, k_abs, g, in_lo, in_hi).
EDGES = [
    ("t", 0, 0, 0, -(1 << 40), 1 << 40),                 # the cubic u * ((u + b)**2 + e): T ~ 2**20.67
    ("t", 1 << 40, 1 << 20, 14, -(1 << 31), (1 << 31) - 1),   # the cubic with a large e
    ("t", 1 << 60, 0, 0, -1, 1),                         # the discriminant b**2 - 3e
    ("k", 0, 0, 0, -(1 << 31), (1 << 31) - 1),           # the clipped tail q * ((c >> g) + k)
    ("k", 0, 0, 30, -(1 << 20), 1 << 20),                # e = (|k| + 1) * 2**g
    ("q", 0, 0, 0, 0, 0),                                # |q| itself
]


@pytest.mark.parametrize("vary, c_abs, k_abs, g, in_lo, in_hi", EDGES)
def test_vectorized_output_range_at_the_int64_guard_edge(vary, c_abs, k_abs, g, in_lo, in_hi):
    t = 1000

    def consts(x):
        tt, kk, q = (x, k_abs, max(-in_lo, in_hi)) if vary == "t" else (t, x, max(-in_lo, in_hi)) \
            if vary == "k" else (t, k_abs, x)
        lo, hi = (-q, q) if vary == "q" else (in_lo, in_hi)
        b = [-tt, -tt, -tt + 1, -tt // 2, 0, -tt]
        c = [c_abs, -c_abs, c_abs, -c_abs, c_abs, 0]
        k = [kk, -kk, -kk, kk, 0, kk]
        return b, c, k, lo, hi

    def holds(x):
        b, c, k, lo, hi = consts(x)
        return guard(b, c, k, g, lo, hi)

    edge = largest(holds, 1, 1 << 63)
    b, c, k, lo, hi = consts(edge)
    assert vector_ranges(b, c, k, g, lo, hi) == spec_ranges(b, c, k, g, lo, hi)
    b, c, k, lo, hi = consts(edge + 1)
    assert not guard(b, c, k, g, lo, hi)


def test_guard_terms_stay_below_two_to_the_62():
    assert int64_guard_holds(0, 0, 0, 0, -(INT64_SAFE - 1), INT64_SAFE - 1)
    assert not int64_guard_holds(0, 0, 0, 0, -INT64_SAFE, 0)
    assert not int64_guard_holds(-INT64_SAFE, 0, 0, 0, 0, 0)


def gelu(b, c, k, g, n):
    return GeluParams(tuple(b), tuple(c), tuple(k), g, n)


@given(channel_constants(max_bits=24), st.integers(0, 20), st.integers(2, 40), st.data())
def test_output_range_equals_spec(constants, g, n, data):
    try:
        params = gelu(*constants, g, n)
    except RangeError:
        assume(False)
    q_lo, q_hi = int_type_range(n)
    in_lo = data.draw(st.integers(q_lo, q_hi))
    in_hi = data.draw(st.integers(in_lo, q_hi))
    assert output_range(params, in_lo, in_hi) == params.output_range(in_lo, in_hi)


def test_output_range_past_the_guard_is_the_spec():
    params = gelu([-(1 << 21), -5], [0, 3], [1, -1], 30, 40)         # T**3 = 2**63: past the guard
    in_lo, in_hi = int_type_range(40)
    assert not guard(*params.columns(), 30, in_lo, in_hi)
    assert output_range(params, in_lo, in_hi) == params.output_range(in_lo, in_hi)


def test_output_range_checks_its_input_range_like_the_spec():
    params = gelu([-10, -9], [-120, -100], [-30, -20], 2, 8)
    for lo, hi in ((5, 4), (-129, 0), (0, 128)):
        with pytest.raises(RangeError) as vectorized:
            output_range(params, lo, hi)
        with pytest.raises(RangeError) as scalar:
            params.output_range(lo, hi)
        assert str(vectorized.value) == str(scalar.value)


# ---- the screen in GeluParams: never admits what the per-channel proof refuses ---------------------

def per_channel_verdict(b, c, k, g, n):
    """The exact proof channel by channel (what GeluParams did before the screen): None or the
    first error's message."""
    try:
        for channel, consts in enumerate(zip(b, c, k)):
            require_int64_intermediates("GeluParams", channel, *consts, g, n)
    except RangeError as exc:
        return str(exc)
    return None


def params_verdict(b, c, k, g, n):
    try:
        gelu(b, c, k, g, n)
    except RangeError as exc:
        return str(exc)
    return None


@given(channel_constants(max_bits=66, positive_b=True), st.integers(0, 62), st.integers(2, 63))
def test_screen_never_admits_a_refused_channel(constants, g, n):
    b, c, k = constants
    exact = per_channel_verdict(b, c, k, g, n)
    if all_channels_proven_int64(b, c, k, g, n):
        assert exact is None
    assert params_verdict(b, c, k, g, n) == exact


@pytest.mark.parametrize("b, c, k, g, n", [
    ([-3037000499, 0], [0, 1 << 62], [0, 0], 62, 8),     # each channel fits; b**2 + c of the extremes would not
    ([0, -(1 << 31)], [1 << 62, 0], [0, 0], 62, 8),
    ([-10, -10], [-120, -120], [-30, (2 ** 63 - 1) // 256 - 120], 0, 9),   # 2**8 * max|y + K| just fits
])
def test_screen_is_conservative_never_refusing(b, c, k, g, n):
    assert not all_channels_proven_int64(b, c, k, g, n)
    assert per_channel_verdict(b, c, k, g, n) is None and params_verdict(b, c, k, g, n) is None


@pytest.mark.parametrize("b, c, k, n, channel", [
    ([-10, 1], [-120, -120], [-30, -30], 8, 1),                   # b_int > 0
    ([-10, -10, -10], [-120, -120, -120], [-30, 1 << 60, -30], 8, 1),
    ([-10, -(1 << 32)], [0, 0], [0, 0], 8, 1),                    # d*d = 2**64
    ([-10, -10], [-120, -120], [1 << 56, 0], 9, 0),               # q * (y + K) = 2**64
])
def test_refusals_still_name_the_channel(b, c, k, n, channel):
    with pytest.raises(RangeError, match=f"channel {channel}: ") as info:
        gelu(b, c, k, 0, n)
    assert info.value.index == (channel,)
    assert str(info.value) == per_channel_verdict(b, c, k, 0, n)
