"""The Newton loop bound of isqrt over every 32-bit input (notebooks/isqrt.ipynb's claims).

``newton_update_runs`` counts the updates of every n without visiting each one; these tests pin it to
``isqrt_with_count`` (exhaustively below 2**16, at every run's ends and at random inputs above) and
then state the loop bound a hardware implementation needs.
"""

import math
import random

import numpy as np
import pytest

from intref.kernels.sqrt import isqrt as isqrt_kernel
from intref.kernels.sqrt import isqrt_fixed_iterations as fixed_kernel
from intref.spec.sqrt import isqrt_fixed_iterations, isqrt_with_count, newton_update_runs
from intref.testing import assert_identical

ALL_32 = (1 << 32) - 1


@pytest.fixture(scope="module")
def runs_32():
    return newton_update_runs(0, ALL_32)


def test_runs_equal_the_per_input_count_exhaustively_below_2_pow_16():
    runs = newton_update_runs(0, (1 << 16) - 1)
    counts = [c for first, last, c in runs for _ in range(first, last + 1)]
    assert counts == [isqrt_with_count(n)[1] for n in range(1 << 16)]


def test_runs_of_a_sub_range_start_and_end_where_asked():
    runs = newton_update_runs(1000, 1099)
    assert runs[0][0] == 1000 and runs[-1][1] == 1099
    assert [c for first, last, c in runs for _ in range(first, last + 1)] == \
        [isqrt_with_count(n)[1] for n in range(1000, 1100)]


def test_runs_cover_every_32_bit_input_and_agree_at_their_ends_and_inside(runs_32):
    assert runs_32[0][0] == 0 and runs_32[-1][1] == ALL_32
    assert all(b[0] == a[1] + 1 and b[2] != a[2] for a, b in zip(runs_32, runs_32[1:]))  # contiguous, maximal
    rng = random.Random(13)
    for first, last, count in rng.sample(runs_32, 3000):
        for n in (first, last, rng.randint(first, last)):
            assert isqrt_with_count(n)[1] == count, n


def test_five_updates_are_needed_by_148722_inputs_and_six_by_none(runs_32):
    histogram = {}
    for first, last, count in runs_32:
        histogram[count] = histogram.get(count, 0) + last - first + 1
    assert histogram == {0: 1, 1: 48806188, 2: 910268897, 3: 2437258951, 4: 898484537, 5: 148722}
    five = [(first, last) for first, last, count in runs_32 if count == 5]
    assert five[0][0] == 16785408
    assert {first.bit_length() for first, _ in five} == {25, 27, 29, 31}
    for n in (1074528350, 1119303883, 1149413397, 1185493737, 1332907078):   # earlier hand-found cases
        assert any(first <= n <= last for first, last in five)


def test_a_loop_bound_of_five_updates_is_exact_and_four_is_not(runs_32):
    five = [(first, last) for first, last, count in runs_32 if count == 5]
    for first, last in five[::97] + five[-3:]:
        for n in (first, last):
            assert isqrt_with_count(n, max_updates=5)[0] == math.isqrt(n)
            root, updates = isqrt_with_count(n, max_updates=4)
            assert updates == 4 and root > math.isqrt(n), n      # the paper's bound leaves x above the root


def test_fixed_iterations_without_the_stopping_rule_fail():
    """I-ViT's sqrt (10 updates from 2**16, no stopping rule) is wrong for 48,318 of the n < 2**16
    (n = 1 gives 64); with many iterations it still oscillates to r + 1 at some n = (r + 1)**2 - 1."""
    n = np.arange(1, 1 << 16, dtype=np.int64)
    exact = isqrt_kernel(n)
    ivit = fixed_kernel(n, 10, 1 << 16)
    assert int(np.count_nonzero(ivit != exact)) == 48318 and isqrt_fixed_iterations(1, 10, 1 << 16) == 64
    many = fixed_kernel(n, 40, 1 << 16)
    wrong = n[many != exact]
    assert wrong.size > 0 and all(math.isqrt(int(v) + 1) ** 2 == int(v) + 1 for v in wrong)


def test_fixed_iterations_kernel_equals_spec():
    rng = np.random.default_rng(5)
    n = np.concatenate([np.arange(1, 5000), rng.integers(1, 1 << 62, 3000, dtype=np.int64)])
    for iterations, start in ((0, 1), (3, 1 << 16), (10, 1 << 16), (25, 1 << 32), (7, 1)):
        expected = np.array([isqrt_fixed_iterations(int(v), iterations, start) for v in n], np.int64)
        assert_identical(fixed_kernel(n, iterations, start), expected)


@pytest.mark.parametrize("args", [(0, 10, 1 << 16), (1 << 62, 10, 1 << 16), (5, -1, 4), (5, 3, 0), (5, 3, (1 << 32) + 1)])
def test_fixed_iterations_rejects_out_of_range(args):
    with pytest.raises(ValueError):
        isqrt_fixed_iterations(*args)


@pytest.mark.parametrize("args", [(-1, 0), (5, 3)])
def test_update_runs_and_bounded_count_reject_bad_arguments(args):
    with pytest.raises(ValueError):
        newton_update_runs(*args)
    with pytest.raises(ValueError):
        isqrt_with_count(10, max_updates=-1)
