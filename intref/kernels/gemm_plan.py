"""GEMM on a path chosen once at load time: the planned twin of ``kernels.gemm.matmul``.

``kernels.gemm.matmul`` scans its operands on every call to bound the products. A graph node
knows more before any data arrives: the integer TYPES of its operands bound every value the
interpreter can hand it (feeds, op outputs and overrides all fit their declared types), and a
``Linear`` node knows its stored weights exactly. ``plan_gemm`` turns those bounds into a path
once; ``matmul_planned`` then runs it with no per-call scan.

The exactness argument is the one in ``kernels.gemm`` with a sharper bound. Every partial sum
BLAS can form for output ``c[i, j]`` is a sum of a subset of the products ``a[i, k] * b[k, j]``,
so its magnitude is at most ``sum_k |a[i, k]| * |b[k, j]|``. With ``|a| <= A`` (the operand
type's magnitude) that is at most ``A * max_j sum_k |b[k, j]|`` for stored ``b``
(``partial_bound``), and at most ``A * B * K`` in general. If ``partial_bound <= 2**24`` one sgemm
over the whole K is exact; if only each product is (``A * B <= 2**24``), sgemm over K-chunks of
``floor(2**24 / (A * B))`` indices is, the chunk results then added in the output integer dtype;
dgemm is exact when ``partial_bound <= 2**53``; int64 ``np.matmul`` when ``result_bound`` is
within int64. Beyond that the types prove nothing (only the analysed ranges, which an override
may leave), so the node keeps the general, data-scanned ``kernels.gemm.matmul`` (path ``scan``),
which raises rather than wrap.

The result dtype is int32 when ``result_bound`` (partial bound plus any bias) is at most
2**31 - 1, else int64: the same integers, never wrapped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..inttypes import INT64_MAX
from .gemm import FLOAT32_EXACT, FLOAT32_MIN_CHUNK, FLOAT64_EXACT, matmul

INT32_MAX = (1 << 31) - 1
_BLAS_DTYPE = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "scan": None}


@dataclass(frozen=True)
class GemmPlan:
    """One node's GEMM path: ``path`` (float32 | float64 | int64 | scan), the float32 K-chunk (a chunk
    at least K means one call) and the integer dtype of the result."""

    path: str
    chunk: int
    out_dtype: type

    def operand(self, x: np.ndarray, order: str = "K") -> np.ndarray:
        """``x`` in this path's BLAS operand dtype (unchanged for ``scan``), in memory ``order`` (NumPy's
        ``astype`` orders: ``"C"`` makes a transposed view row-major in the same pass as the conversion)."""
        dtype = _BLAS_DTYPE[self.path]
        if dtype is None:
            return np.ascontiguousarray(x) if order == "C" else x
        return x.astype(dtype, order=order)

    def describe(self, k_max: int) -> str:
        calls = "" if self.path != "float32" else (" x1" if self.chunk >= k_max else f" K-chunks of {self.chunk}")
        return f"{self.path}{calls} -> {np.dtype(self.out_dtype).name}"


def plan_gemm(largest_product: int, partial_bound: int, k_max: int, result_bound: int) -> GemmPlan:
    """The fastest exact path for products of magnitude <= ``largest_product``, partial sums of
    magnitude <= ``partial_bound`` over at most ``k_max`` indices, results within ``result_bound``.

    """
    if result_bound > INT64_MAX:
        return GemmPlan("scan", max(k_max, 1), np.int64)
    out_dtype = np.int32 if result_bound <= INT32_MAX else np.int64
    if partial_bound <= FLOAT32_EXACT:
        return GemmPlan("float32", max(k_max, 1), out_dtype)
    chunk = FLOAT32_EXACT // largest_product if largest_product else max(k_max, 1)
    if chunk >= FLOAT32_MIN_CHUNK or chunk >= k_max:
        return GemmPlan("float32", chunk, out_dtype)
    if partial_bound <= FLOAT64_EXACT:
        return GemmPlan("float64", k_max, out_dtype)
    return GemmPlan("int64", k_max, out_dtype)


def matmul_planned(a: np.ndarray, b: np.ndarray, plan: GemmPlan) -> np.ndarray:
    """``a @ b`` exactly, as ``plan.out_dtype``; ``a`` and ``b`` already in ``plan.operand_dtype``.

    REQUIRE the bounds ``plan`` was made from hold for ``a`` and ``b`` (module docstring).
    """
    if plan.path == "scan":
        return matmul(a, b)
    k = a.shape[-1]
    if plan.path != "float32" or plan.chunk >= k:
        return np.matmul(a, b).astype(plan.out_dtype, copy=False)

    def chunk_product(start):  # contiguous slices: NumPy hands strided ones to a slow non-BLAS loop
        return np.matmul(np.ascontiguousarray(a[..., start:start + plan.chunk]),
                         np.ascontiguousarray(b[..., start:start + plan.chunk, :]))

    total = chunk_product(0).astype(plan.out_dtype)
    for start in range(plan.chunk, k, plan.chunk):
        total += chunk_product(start).astype(plan.out_dtype)   # |total| <= result bound
    return total


def type_magnitude(lo: int, hi: int) -> int:
    """Largest ``|v|`` over an integer type's (or range's) ``[lo, hi]``."""
    return max(-lo, hi)
