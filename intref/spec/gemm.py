"""Integer matrix product, the exact sum of products: the normative definition of ``matmul``.

``intref.kernels.gemm.matmul`` must equal it bit for bit (on each matrix of a batch).

    c[i][j] = sum over k in 0..K-1 of a[i][k] * b[k][j]        (exact, Python ints; K = 0 gives 0)

Operands are 2-D nested lists of Python ints: ``a`` is M rows of K ints, ``b`` K rows of N ints.

REQUIRE  every element of ``a`` and ``b`` is an int (not a bool) in [-2**31, 2**31 - 1]: a value of
         int8, int16, int32, uint8 or uint16, the operand dtypes the kernel accepts
REQUIRE  bound = max|a| * max|b| * K <= 2**63 - 1, where max|.| is the largest magnitude of an element
         (0 for an empty matrix). Every product satisfies |a*b| <= max|a| * max|b|, so every partial
         sum, whatever order it is formed in, satisfies |partial| <= bound: with this REQUIRE an int64
         accumulator never overflows. The kernel refuses the same inputs (RangeError).

Widths: a product of two int32 values needs 63 bits (|a*b| <= 2**62); the sum needs
``bit_length(bound)`` bits, at most 63 under the REQUIRE. The result fits int64.

K = 0: ``b`` is then ``[]`` and carries no column count, so the caller passes ``n`` (N); the result
is M rows of N zeros (the empty sum).
"""

from __future__ import annotations

from ..errors import DtypeError, RangeError, ShapeError
from ..inttypes import INT64_MAX

ELEMENT_MIN = -(1 << 31)
ELEMENT_MAX = (1 << 31) - 1


def matmul(a: list, b: list, *, n: int | None = None) -> list:
    """``c = a @ b`` exactly: ``c[i][j] = sum_k a[i][k] * b[k][j]``, as M rows of N Python ints.

    ``n`` (the column count N) is needed only when K = 0 (``b == []``); when given otherwise it
    must equal the length of ``b``'s rows. Raises ``ValueError``/``TypeError`` on a broken REQUIRE.
    """
    k = len(b)
    columns = _column_count(b, n)
    _check_matrix("a", a, k)
    _check_matrix("b", b, columns)
    bound = max_magnitude(a) * max_magnitude(b) * k
    if bound > INT64_MAX:
        raise RangeError(f"matmul: bound max|a| * max|b| * K = {bound} exceeds 2**63 - 1: "
                         f"a partial sum could leave int64", argument="b", value=bound)
    return [[dot(row, b, j) for j in range(columns)] for row in a]


def dot(row: list, b: list, j: int) -> int:
    """``sum_k row[k] * b[k][j]``, exact (Python ints never round or wrap)."""
    total = 0
    for k, value in enumerate(row):
        total += value * b[k][j]                    # |total| <= max|a| * max|b| * (k+1) <= bound
    return total


def max_magnitude(matrix: list) -> int:
    """Largest ``|element|`` of a nested list (0 when it holds no element)."""
    return max((abs(v) for row in matrix for v in row), default=0)


def _column_count(b: list, n) -> int:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise DtypeError(f"matmul: n must be a non-negative int, got {n!r}", argument="n")
    if not b:
        if n is None:
            raise ShapeError("matmul: K = 0 (b == []) needs the column count n", argument="n")
        return n
    if not isinstance(b[0], list):
        raise DtypeError(f"matmul: b[0] must be a list (a row), got {type(b[0]).__name__}", argument="b")
    if n is not None and n != len(b[0]):
        raise ShapeError(f"matmul: n={n} but b's rows have length {len(b[0])}", argument="n")
    return len(b[0])


def _check_matrix(name: str, matrix: list, width: int) -> None:
    """Require a list of rows, each a list of ``width`` ints in [ELEMENT_MIN, ELEMENT_MAX]."""
    if not isinstance(matrix, list):
        raise DtypeError(f"matmul: {name} must be a list of rows, got {type(matrix).__name__}", argument=name)
    for i, row in enumerate(matrix):
        if not isinstance(row, list) or len(row) != width:
            raise ShapeError(f"matmul: {name}[{i}] must be a list of {width} ints, got {row!r:.60}", argument=name,
                             index=(i,))
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, int):
                raise DtypeError(f"matmul: {name}[{i}][{j}] = {v!r} is not an int", argument=name, index=(i, j))
            if not ELEMENT_MIN <= v <= ELEMENT_MAX:
                raise RangeError(f"matmul: {name}[{i}][{j}] = {v} is outside [-2**31, 2**31 - 1]", argument=name,
                                 index=(i, j), value=v)
