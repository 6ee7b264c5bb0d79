"""The add-shift requantization paths equal the general 95-bit kernel on both sides of their
proofs: ``|x * m| + 2**(s-1) <= 2**63 - 1`` for the int64 add-shift, split32's word bound with
``s >= 34`` for the split add-shift (sticky bit), for every single-rounding dialect; the planner
takes them exactly where proven and never for double_round."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.inttypes import INT64_MAX, IntType
from intref.kernels.requant import requantize
from intref.kernels.requant_addshift import (ADDSHIFT_ROUNDINGS, add_requantized_addshift, addshift_proven,
                                             requantize_addshift, round_product_split_addshift,
                                             round_shift_in_place, split_addshift_proven)
from intref.kernels.requant import add_requantized
from intref.kernels.rounding import mul_shift_round


def general(x, m, s, rounding):
    """The general kernel's exact result modulo 2**64 (its ``low64``): exact, as every result here is an int64."""
    return mul_shift_round(x, np.asarray(m, np.int64), np.asarray(s, np.int64), rounding).low64


def half(s: int) -> int:
    return 1 << (s - 1) if s else 0


def extremes(bound: int, s: int, m: int, rng) -> np.ndarray:
    """``+-bound``, its neighbours, 0, +-1, and values whose product sits at and next to the
    half-way points of ``2**s``, all within ``[-bound, bound]``."""
    picks = [bound, -bound, bound - 1, -bound + 1, 0, 1, -1]
    unit = max(abs(m), 1)
    for k in range(-3, 4):
        near = (k << max(s - 1, 0)) // unit
        picks += [near - 1, near, near + 1]
    picks += [int(v) for v in rng.integers(-bound, bound, size=48, endpoint=True)]
    return np.array([min(max(v, -bound), bound) for v in picks], dtype=np.int64)


def test_proof_boundary():
    m, s = (1 << 31) - 1, 40
    edge = (INT64_MAX - (1 << 39)) // m                      # the largest |x| with |x * m| + 2**39 <= 2**63 - 1
    assert addshift_proven(edge, [m], [s], "half_even")
    assert not addshift_proven(edge + 1, [m], [s], "half_even")
    assert addshift_proven(INT64_MAX, [1], [0], "floor")     # s = 0: nothing is added
    assert not addshift_proven(1, [1], [63], "half_up")      # beyond 62
    assert not addshift_proven(1, [1], [8], "double_round")  # two thresholds: not an add-shift dialect
    assert split_addshift_proven(1 << 53, [1 << 31], [34], "half_away")
    assert not split_addshift_proven(1 << 53, [1 << 31], [33], "half_away")   # t = 1: the sticky bit would be the half bit
    assert not split_addshift_proven(1 << 53, [1 << 31], [40], "double_round")


@pytest.mark.parametrize("rounding", ADDSHIFT_ROUNDINGS)
@pytest.mark.parametrize("m", [1 << 31, -(1 << 31), (1 << 31) - 1, 3, -1, 1, 0])
def test_int64_addshift_equals_general_at_the_boundary(rounding, m):
    rng = np.random.default_rng(abs(m) % 997)
    for s in [0, 1, 2, 30, 31, 32, 33, 40, 61, 62]:
        bound = (INT64_MAX - half(s)) // max(abs(m), 1)      # the largest proven bound
        assert addshift_proven(bound, [m], [s], rounding)
        assert m == 0 or not addshift_proven(bound + 1, [m], [s], rounding)
        x = extremes(bound, s, m, rng)
        got = round_shift_in_place(np.multiply(x, np.int64(m), dtype=np.int64), np.int64(s), rounding)
        np.testing.assert_array_equal(got, general(x, m, s, rounding), err_msg=f"m={m} s={s} {rounding}")


@given(st.integers(-(1 << 31), 1 << 31), st.integers(0, 62), st.sampled_from(ADDSHIFT_ROUNDINGS), st.data())
def test_int64_addshift_property(m, s, rounding, data):
    bound = (INT64_MAX - half(s)) // max(abs(m), 1)
    x = np.array(data.draw(st.lists(st.one_of(st.integers(-bound, bound), st.sampled_from([bound, -bound, 0])),
                                    min_size=1, max_size=20)), dtype=np.int64)
    x = np.concatenate([x, extremes(bound, s, m, np.random.default_rng(s))])
    got = round_shift_in_place(np.multiply(x, np.int64(m), dtype=np.int64), np.int64(s), rounding)
    np.testing.assert_array_equal(got, general(x, m, s, rounding))


@pytest.mark.parametrize("rounding", ADDSHIFT_ROUNDINGS)
@pytest.mark.parametrize("m", [1 << 31, -(1 << 31), (1 << 31) - 1, 12345, -1, 0])
def test_split_addshift_equals_general_at_the_boundary(rounding, m):
    rng = np.random.default_rng(abs(m) % 991)
    mag = max(abs(m), 1)
    bound = min(((((1 << 62) // mag) - 1) << 32) | 0xFFFFFFFF, INT64_MAX)   # largest X: ((X >> 32) + 1) * |m| <= 2**62
    for s in [34, 35, 40, 63, 64, 80, 93, 94]:
        assert split_addshift_proven(bound, [m], [s], rounding)
        if m and bound < INT64_MAX:
            assert not split_addshift_proven(bound + 1, [m], [s], rounding)
        x = extremes(bound, s, m, rng)
        # for m = +-2**31 the half-way points (k << (s - 1)) // |m| are exact ties (low word 0), their
        # neighbours are not (the sticky bit set): extremes() holds both
        np.testing.assert_array_equal(round_product_split_addshift(x, m, s, rounding), general(x, m, s, rounding),
                                      err_msg=f"m={m} s={s} {rounding}")


@given(st.integers(-(1 << 31), 1 << 31), st.integers(34, 94), st.sampled_from(ADDSHIFT_ROUNDINGS),
       st.integers(31, 63), st.data())
def test_split_addshift_property(m, s, rounding, bits, data):
    bound = min((1 << (bits - 1)), INT64_MAX)
    if not split_addshift_proven(bound, [m], [s], rounding):
        return
    x = np.array(data.draw(st.lists(st.one_of(st.integers(-bound, bound), st.sampled_from([bound, -bound, 0])),
                                    min_size=1, max_size=20)), dtype=np.int64)
    ties = [(k << s) // max(abs(m), 1) for k in range(-3, 4)] + [((k << (s - 1)) // max(abs(m), 1)) for k in (-1, 1)]
    x = np.concatenate([x, np.clip(np.array([v + d for v in ties for d in (-1, 0, 1)], dtype=object),
                                   -bound, bound).astype(np.int64)])
    np.testing.assert_array_equal(round_product_split_addshift(x, m, s, rounding), general(x, m, s, rounding))


@given(st.lists(st.integers(-(1 << 31), 1 << 31), min_size=4, max_size=4), st.lists(st.integers(0, 62), min_size=4,
       max_size=4), st.sampled_from(ADDSHIFT_ROUNDINGS), st.sampled_from(["saturate", "wrap"]), st.integers(0, 2**32 - 1))
def test_per_channel_kernels_equal_the_general_ones(m, s, rounding, overflow, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-(1 << 31), 1 << 31, size=(3, 4), dtype=np.int64).astype(np.int32)
    y = rng.integers(-128, 128, size=(4,), dtype=np.int64).astype(np.int8)
    out = IntType(8, True)
    mm, ss = np.array(m, np.int64), np.array(s, np.int64)
    np.testing.assert_array_equal(
        requantize_addshift(x, mm, ss, rounding=rounding, out_type=out, overflow=overflow),
        requantize(x, m, s, rounding=rounding, bits=8, overflow=overflow))
    np.testing.assert_array_equal(
        add_requantized_addshift(x, y, (mm, ss), (mm[::-1], ss[::-1]), rounding=rounding, out_type=out,
                                 overflow=overflow),
        add_requantized(x, y, m, s, m[::-1], s[::-1], rounding=rounding, bits=8, overflow=overflow))
