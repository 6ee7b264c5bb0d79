"""spec.isqrt: the paper's Newton iteration returns floor(sqrt(n)) and takes the documented steps."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.spec.sqrt import isqrt, isqrt_with_count

FIVE_UPDATE_INPUTS = [1074528350, 1119303883, 1149413397, 1185493737, 1332907078]


@pytest.mark.parametrize("n", FIVE_UPDATE_INPUTS)
def test_five_31_bit_inputs_need_five_updates(n):
    root, updates = isqrt_with_count(n)
    assert (root, updates) == (math.isqrt(n), 5)


def test_no_int32_input_near_powers_of_two_needs_more_than_five_updates():
    worst = max(isqrt_with_count(k * k + d)[1] for k in range(1, 1 << 16, 97) for d in (-1, 0, 1) if k * k + d >= 0)
    assert worst <= 5


def test_small_values_by_hand():
    # n = 1: x0 = 2**1 = 2, x' = (2 + 0) >> 1 = 1 < 2, then x' = (1 + 1) >> 1 = 1 >= 1: return 1 after one update
    assert isqrt_with_count(0) == (0, 0)
    assert isqrt_with_count(1) == (1, 1)
    # n = 10: bits 4, x0 = 4; x' = (4 + 2) >> 1 = 3; x' = (3 + 3) >> 1 = 3 >= 3: return 3
    assert isqrt_with_count(10) == (3, 1)


def test_every_n_below_two_to_the_16():
    for n in range(1 << 16):
        assert isqrt(n) == math.isqrt(n), n


def test_squares_and_neighbours_near_every_power_of_two():
    for bits in range(1, 63):
        base = math.isqrt(1 << bits)
        for k in range(max(base - 3, 1), base + 4):
            for n in (k * k - 1, k * k, k * k + 1):
                if 0 <= n < 1 << 63:
                    r = isqrt(n)
                    assert r * r <= n < (r + 1) * (r + 1), n
    assert isqrt((1 << 63) - 1) == math.isqrt((1 << 63) - 1)


@given(st.integers(0, (1 << 63) - 1))
def test_floor_sqrt_invariant(n):
    r = isqrt(n)
    assert r * r <= n < (r + 1) * (r + 1)


@pytest.mark.parametrize("n", [-1, 1 << 63])
def test_rejects_out_of_range(n):
    with pytest.raises(ValueError):
        isqrt(n)
