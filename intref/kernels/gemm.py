"""Integer GEMM: twin of ``intref.spec.gemm.matmul``, bit for bit, batched, through float BLAS
where a bound proves it exact.

    c[..., i, j] = sum_k a[..., i, k] * b[..., k, j]           exact, returned as int64

NumPy has no integer BLAS (int64 ``np.matmul`` is a naive loop, ~0.3-1.4 GOP/s here), so the kernel
runs the same integers through float BLAS when that is provably exact. This is the one float use
DESIGN.md allows in a kernel. The argument, for one matrix of the batch:

  Let P = max|a| * max|b| (the largest possible |product|) and bound = P * K. Every product is an
  integer with |a*b| <= P, and every partial sum BLAS can form, in any order and blocking, with or
  without FMA, is a sum of a subset of the K products, so an integer of magnitude <= bound.
  A float format with a p-bit significand holds every integer of magnitude <= 2**p. If every
  operand, every product and every partial sum is such an integer, each IEEE operation's exact
  result is representable, so rounding returns it unchanged: the float result IS the integer sum.
  (This assumes the classical product-then-sum GEMM, with alpha = 1 and beta = 0, that OpenBLAS,
  MKL and BLIS run, not a Strassen-like scheme or a reduced-precision mode; the tests check the
  exact boundary cases on the installed BLAS.)

  path "float64"  dgemm; proven when bound <= 2**53 (operands |v| <= 2**31 convert exactly).
  path "float32"  sgemm on K-chunks of at most C = floor(2**24 / P) indices: each chunk's partial
                  sums are <= C * P <= 2**24, so each chunk result is exact; the chunk results are
                  converted to int64 (exact) and added in int64 (|sum| <= bound <= 2**63 - 1).
                  Proven when P <= 2**24 (int8 x int8: P <= 2**14, C >= 1024).
  path "int64"    np.matmul on int64 (wraps silently on overflow); proven when bound <= 2**63 - 1.
  path "auto"     the fastest proven path (see ``choose_path``).

P and bound are taken per matrix of the broadcast batch from the data (a min and a max per matrix,
cheap beside the GEMM), not from the dtype, and the largest over the batch decides. If bound
exceeds 2**63 - 1 for some matrix, no path is proven (the result could leave int64): RangeError,
as in the spec. A forced path whose condition fails also raises RangeError, never a silent
fallback.

Operands: int8, int16, int32, uint8, uint16 (mixed dtypes allowed; each is widened explicitly,
never by NumPy promotion), at least 2-D: ``(..., M, K) @ (..., K, N)`` with NumPy broadcasting of
the batch dimensions ``...``. 1-D operands are refused (ShapeError): NumPy's promotion of a vector
to a matrix is an implicit reshape a golden model should not guess; reshape to (1, K) or (K, 1).
Returns a new int64 array of shape ``broadcast(...) + (M, N)``; the inputs are never written.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import RangeError, ShapeError, format_index
from ..inttypes import INT64_MAX

_WHERE = "matmul"
PATHS = ("auto", "float32", "float64", "int64")
OPERAND_DTYPES = (np.int8, np.int16, np.int32, np.uint8, np.uint16)
FLOAT64_EXACT = 1 << 53              # every integer of magnitude <= 2**53 is a float64
FLOAT32_EXACT = 1 << 24              # ... <= 2**24 is a float32
# Measured on the 2-core development machine (benchmarks/bench_matmul.py, OpenBLAS): on transformer
# shapes one-chunk sgemm is ~2x faster than dgemm, and K-chunked sgemm stays faster than dgemm down
# to chunks of ~64 indices (the crossover). "auto" keeps float32 for chunks >= 128, for margin.
FLOAT32_MIN_CHUNK = 128


def matmul(a, b, *, path: str = "auto") -> np.ndarray:
    """``a @ b`` exactly, as int64, through the fastest path a bound proves exact (module docstring).

    ``path``: ``"auto"`` | ``"float32"`` | ``"float64"`` | ``"int64"``. Raises DtypeError for a
    float, bool, uint32/uint64/int64 or non-array operand, ShapeError for a 0-d/1-D operand or
    mismatched K or batch dimensions, RangeError for an unknown path or a bound no path (or the
    forced path) proves.
    """
    _checks.require_choice(_WHERE, "path", path, PATHS)
    a = _operand("a", a)
    b = _operand("b", b)
    _require_matching_shapes(a, b)
    k = a.shape[-1]
    products = largest_products(a, b)           # P per matrix, shape ``batch`` (int64, <= 2**62)
    worst = _first_argmax(products)
    largest_product = int(products[worst]) if products.size else 0
    if largest_product * k > INT64_MAX:
        raise RangeError(f"{_WHERE}: a and b can overflow int64: bound max|a| * max|b| * K = "
                         f"{largest_product} * {k} = {largest_product * k} > 2**63 - 1 at batch index "
                         f"{format_index(worst)}; no exact path exists", argument="a, b", index=worst,
                         value=largest_product * k)
    chosen = choose_path(largest_product, k) if path == "auto" else path
    _require_proven(chosen, largest_product, k, worst)
    if chosen == "float64":
        result = np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    elif chosen == "float32":
        result = matmul_float32_chunked(a, b, float32_chunk(largest_product, k))
    else:
        result = np.matmul(a.astype(np.int64), b.astype(np.int64))
    return result


def choose_path(largest_product: int, k: int) -> str:
    """The fastest path proven exact for ``P = largest_product`` and ``K = k`` (bound <= 2**63 - 1)."""
    chunk = float32_chunk(largest_product, k)
    if chunk >= 1 and (chunk >= k or chunk >= FLOAT32_MIN_CHUNK):
        return "float32"                          # one chunk, or few enough that sgemm still wins
    if largest_product * k <= FLOAT64_EXACT:
        return "float64"
    return "int64"                                # tiny chunks would run slower than the int64 loop


def float32_chunk(largest_product: int, k: int) -> int:
    """Largest K-chunk whose partial sums are proven within 2**24 (0: not even one product is)."""
    if largest_product == 0:
        return max(k, 1)                          # every product is 0: any chunk is exact
    return FLOAT32_EXACT // largest_product


def largest_products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``max|a| * max|b|`` for every matrix of the broadcast batch, as int64 (<= 2**62).

    An empty operand (M, K or N = 0, or an empty batch) holds no product: its entries are 0.
    """
    return _max_magnitude(a) * _max_magnitude(b)  # batch shapes broadcast; each factor <= 2**31


def matmul_float32_chunked(a: np.ndarray, b: np.ndarray, chunk: int) -> np.ndarray:
    """``a @ b`` as the int64 sum of sgemm results over K-chunks of ``chunk`` indices.

    Exact when every chunk's partial sums are integers of magnitude <= 2**24 (module docstring).
    """
    a32 = a.astype(np.float32)
    b32 = b.astype(np.float32)
    k = a.shape[-1]

    def chunk_product(start):  # contiguous slices: NumPy hands strided ones to a slow non-BLAS loop
        return np.matmul(np.ascontiguousarray(a32[..., start:start + chunk]),
                         np.ascontiguousarray(b32[..., start:start + chunk, :]))

    total = chunk_product(0).astype(np.int64)
    for start in range(chunk, k, chunk):
        total += chunk_product(start).astype(np.int64)   # |total| <= bound <= 2**63 - 1
    return total


def _require_proven(path: str, largest_product: int, k: int, worst: tuple) -> None:
    """RangeError unless ``path`` is proven exact for ``P = largest_product`` and ``K = k``."""
    bound = largest_product * k
    at = f" (worst matrix at batch index {format_index(worst)})"
    if path == "float64" and bound > FLOAT64_EXACT:
        raise RangeError(f"{_WHERE}: path='float64' is not proven exact for a and b: bound max|a| * max|b| * K = "
                         f"{largest_product} * {k} = {bound} > 2**53{at}; use path='auto' or 'int64'",
                         argument="path", index=worst, value=bound)
    if path == "float32" and largest_product > FLOAT32_EXACT:
        raise RangeError(f"{_WHERE}: path='float32' is not proven exact for a and b: max|a| * max|b| = "
                         f"{largest_product} > 2**24, so a single product may round in float32{at}; "
                         f"use path='auto', 'float64' or 'int64'", argument="path", index=worst, value=largest_product)


def _operand(name: str, x) -> np.ndarray:
    x = _checks.int_array(_WHERE, name, x)
    _checks.require_dtype(_WHERE, name, x, OPERAND_DTYPES)
    if x.ndim < 2:
        raise ShapeError(f"{_WHERE}: {name} has shape {x.shape}; expected at least 2 dimensions (..., rows, "
                         f"columns); 1-D operands are refused, reshape to (1, K) or (K, 1)", argument=name)
    return x


def _require_matching_shapes(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"{_WHERE}: a has shape {a.shape} with K = a.shape[-1] = {a.shape[-1]}, but b has shape "
                         f"{b.shape} with K = b.shape[-2] = {b.shape[-2]}", argument="b")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ShapeError(f"{_WHERE}: batch dimensions a.shape[:-2] = {a.shape[:-2]} and b.shape[:-2] = "
                         f"{b.shape[:-2]} do not broadcast", argument="b") from None


def _max_magnitude(x: np.ndarray) -> np.ndarray:
    """Largest ``|element|`` of each matrix (the last two axes), int64; 0 for an empty matrix."""
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        return np.zeros(x.shape[:-2], dtype=np.int64)
    low = x.min(axis=(-2, -1)).astype(np.int64)      # widen before negating: -(-128) overflows int8
    high = x.max(axis=(-2, -1)).astype(np.int64)
    return np.maximum(-low, high)


def _first_argmax(values: np.ndarray) -> tuple:
    """Batch index of the first largest entry; () if there is none."""
    if values.size == 0:
        return ()
    return _checks.multi_index(np.argmax(values), values.shape)
