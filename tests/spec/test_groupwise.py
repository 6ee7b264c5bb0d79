"""spec.group_linear: hand-worked vectors, invariants tying it to the plain matmul, every REQUIRE refused."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.spec.gemm import matmul
from intref.spec.groupwise import group_linear
from intref.spec.rounding import ROUNDING_MODES


def test_hand_worked_two_groups():
    # x = [1, 2, 3, 4], one row w = [1, 1, -1, 2]: P = [1*1 + 2*1, 3*-1 + 4*2] = [3, 5]
    # m = [2**31, 2**30], shift 31: R = [3, round(2.5)] -> half_even 2, half_up 3; bias 10
    assert group_linear([1, 2, 3, 4], [[1, 1, -1, 2]], [[1 << 31, 1 << 30]], 31, group_size=2, bias=[10],
                        rounding="half_even") == [10 + 3 + 2]
    assert group_linear([1, 2, 3, 4], [[1, 1, -1, 2]], [[1 << 31, 1 << 30]], 31, group_size=2, bias=[10],
                        rounding="half_up") == [10 + 3 + 3]
    # negative tie -2.5: floor -3, half_away -3, half_up -2
    for rounding, want in (("floor", -3), ("half_away", -3), ("half_up", -2), ("half_even", -2)):
        assert group_linear([-5], [[1]], [[1 << 30]], 31, group_size=1, rounding=rounding) == [want]


def test_each_group_is_rounded_before_the_sum():
    # two groups each 0.5 after rescaling: rounding each (half_even -> 0) differs from rounding the sum (1)
    assert group_linear([1, 1], [[1, 1]], [[1 << 30, 1 << 30]], 31, group_size=1) == [0]
    assert group_linear([1, 1], [[1, 1]], [[1 << 30]], 31, group_size=2) == [1]


@given(st.data(), st.sampled_from(ROUNDING_MODES))
def test_unit_multipliers_give_the_plain_matmul(data, rounding):
    """m = 2**31 with shift 31 (or m = 1, shift 0) rescales by exactly 1: y == x @ w^T + bias."""
    g = data.draw(st.integers(1, 4))
    k = g * data.draw(st.integers(1, 4))
    n = data.draw(st.integers(1, 4))
    x = data.draw(st.lists(st.integers(-128, 127), min_size=k, max_size=k))
    w = data.draw(st.lists(st.lists(st.integers(-8, 7), min_size=k, max_size=k), min_size=n, max_size=n))
    bias = data.draw(st.lists(st.integers(-(1 << 31), (1 << 31) - 1), min_size=n, max_size=n))
    plain = [v + b for v, b in zip(matmul([x], [list(c) for c in zip(*w)])[0], bias)]
    m, shift = data.draw(st.sampled_from([(1 << 31, 31), (1, 0), (1 << 20, 20)]))
    assert group_linear(x, w, [[m] * (k // g)] * n, shift, group_size=g, bias=bias, rounding=rounding) == plain


@pytest.mark.parametrize("args, kwargs, match", [
    (([1, 2, 3], [[1, 1, 1]], [[1]], 0), {"group_size": 2}, "multiple"),
    (([1, 2], [[1, 1]], [[1]], 0), {"group_size": 0}, "group_size"),
    (([1, 2], [[1, 1]], [[1]], 128), {"group_size": 2}, "shift"),
    (([1, 2], [[1, 1]], [[-1]], 0), {"group_size": 2}, "multiplier"),
    (([1, 2], [[1, 1]], [[(1 << 31) + 1]], 0), {"group_size": 2}, "multiplier"),
    (([1, 2], [[1, 1]], [[1, 1]], 0), {"group_size": 2}, "multiplier row 0"),
    (([1, 2], [[1, 1 << 15]], [[1]], 0), {"group_size": 2}, "weight"),
    (([1 << 31, 2], [[1, 1]], [[1]], 0), {"group_size": 2}, "x"),
    (([1, 2], [[1, 1]], [[1]], 0), {"group_size": 2, "bias": [1 << 31]}, "bias"),
    (([1, 2], [[1, 1]], [[1]], 0), {"group_size": 2, "bias": [1, 2]}, "bias"),
    (([1, 2], [[1, 1]], [[1]], 0), {"group_size": 2, "rounding": "nearest"}, "rounding"),
    (([True, 2], [[1, 1]], [[1]], 0), {"group_size": 2}, "x"),
])
def test_every_require_is_refused(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        group_linear(*args, **kwargs)


def test_partial_sums_and_terms_must_fit_int32():
    x, w = [(1 << 15) - 1] * 3, [[(1 << 15) - 1] * 3]          # P = 3 * (2**15 - 1)**2 > 2**31 - 1
    with pytest.raises(ValueError, match=r"partial sum P\[0\]\[0\]"):
        group_linear(x, w, [[1]], 0, group_size=3)
    assert group_linear(x[:2], [w[0][:2]], [[1]], 0, group_size=2) == [2 * ((1 << 15) - 1) ** 2]
    with pytest.raises(ValueError, match=r"rescaled term R\[0\]\[0\]"):
        group_linear([1 << 14], [[1 << 14]], [[8]], 0, group_size=1)     # 2**28 * 8 = 2**31 leaves int32
    assert group_linear([1 << 14], [[1 << 14]], [[1]], 0, group_size=1) == [1 << 28]
