"""spec.matmul: hand-worked products, algebraic invariants, and every REQUIRE refused."""

import operator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.spec.gemm import matmul

INT8 = st.integers(-128, 127)
INT32 = st.one_of(st.sampled_from([-(1 << 31), (1 << 31) - 1, 0, -1, 1]), st.integers(-(1 << 31), (1 << 31) - 1))


def matrices(elements, rows, columns):
    return st.lists(st.lists(elements, min_size=columns, max_size=columns), min_size=rows, max_size=rows)


def transpose(m, columns):
    return [[row[j] for row in m] for j in range(columns)]


def test_hand_worked_2x2():
    assert matmul([[1, 2], [3, 4]], [[5, 6], [7, 8]]) == [[19, 22], [43, 50]]


def test_hand_worked_signed_and_rectangular():
    # (2,3) @ (3,1): [-128*-128 + 127*2 + 0*5, 1*-128 + -1*2 + 7*5]
    assert matmul([[-128, 127, 0], [1, -1, 7]], [[-128], [2], [5]]) == [[16384 + 254], [-128 - 2 + 35]]


def test_k_zero_is_the_empty_sum():
    assert matmul([[], [], []], [], n=2) == [[0, 0], [0, 0], [0, 0]]
    assert matmul([], [], n=4) == []


def test_m_zero_and_n_zero():
    assert matmul([], [[1, 2], [3, 4]]) == []
    assert matmul([[1, 2]], [[], []]) == [[]]


def test_int32_extremes_stay_exact():
    big = -(1 << 31)
    assert matmul([[big]], [[big]]) == [[1 << 62]]
    top = (1 << 31) - 1
    assert matmul([[top, top]], [[top], [top]]) == [[2 * top * top]]      # bound 2*(2**31-1)**2 < 2**63


def test_bound_at_the_int64_limit_is_refused():
    big = -(1 << 31)
    with pytest.raises(ValueError, match="bound"):
        matmul([[big, big]], [[big], [big]])        # bound 2**63: the sum itself would be 2**63


@given(st.data(), st.integers(0, 4), st.integers(1, 5), st.integers(0, 4))
def test_equals_a_dot_product_of_rows_and_columns(data, m, k, n):
    a = data.draw(matrices(INT32, m, k))
    b = data.draw(matrices(INT8, k, n))
    columns = transpose(b, n)
    expected = [[sum(map(operator.mul, row, col)) for col in columns] for row in a]
    assert matmul(a, b) == expected


@given(st.data(), st.integers(1, 4), st.integers(1, 5), st.integers(1, 4))
def test_transpose_identity(data, m, k, n):
    a = data.draw(matrices(INT8, m, k))
    b = data.draw(matrices(INT8, k, n))
    assert transpose(matmul(a, b), n) == matmul(transpose(b, n), transpose(a, k))


@given(st.data(), st.integers(1, 4), st.integers(1, 5), st.integers(1, 4))
def test_distributes_over_addition(data, m, k, n):
    a = data.draw(matrices(INT8, m, k))
    b = data.draw(matrices(INT8, k, n))
    c = data.draw(matrices(INT8, k, n))
    b_plus_c = [[x + y for x, y in zip(rb, rc)] for rb, rc in zip(b, c)]
    ab, ac = matmul(a, b), matmul(a, c)
    assert matmul(a, b_plus_c) == [[x + y for x, y in zip(r1, r2)] for r1, r2 in zip(ab, ac)]


@pytest.mark.parametrize("a, b, kwargs, error, match", [
    ([[True]], [[1]], {}, TypeError, r"a\[0\]\[0\] = True is not an int"),
    ([[1]], [[1.0]], {}, TypeError, r"b\[0\]\[0\] = 1.0 is not an int"),
    ([[1 << 31]], [[1]], {}, ValueError, r"a\[0\]\[0\] = 2147483648 is outside"),
    ([[1]], [[-(1 << 31) - 1]], {}, ValueError, r"b\[0\]\[0\]"),
    ([[1, 2], [3]], [[1], [2]], {}, ValueError, r"a\[1\] must be a list of 2 ints"),
    ([[1]], [[1, 2], [3]], {}, ValueError, r"a\[0\] must be a list of 2 ints"),
    ([[1, 2]], [[1, 2], [3]], {}, ValueError, r"b\[1\] must be a list of 2 ints"),
    ([[]], [], {}, ValueError, "needs the column count n"),
    ([[1]], [[1, 2]], {"n": 3}, ValueError, "n=3"),
    ([[1]], [[1]], {"n": True}, TypeError, "n must be"),
    ((1,), [[1]], {}, TypeError, "a must be a list"),
    ([[1]], [(1,)], {}, TypeError, r"b\[0\] must be a list"),
])
def test_broken_require_is_refused(a, b, kwargs, error, match):
    with pytest.raises(error, match=match):
        matmul(a, b, **kwargs)
