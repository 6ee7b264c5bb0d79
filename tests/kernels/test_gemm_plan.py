"""Planned GEMM paths equal the exact integer product on both sides of each proof boundary, and
the planner leaves a path one step past its boundary."""

import numpy as np
import pytest

import intref
from intref.build import GraphBuilder
from intref.kernels.gemm import matmul
from intref.kernels.gemm_plan import GemmPlan, matmul_planned, plan_gemm

F32, F64 = 1 << 24, 1 << 53


def exact(a, b):
    """The product in Python integers (object dtype): no float, no wrap."""
    return np.matmul(a.astype(object), b.astype(object))


@pytest.mark.parametrize("product, partial, k, result, path, chunk, dtype", [
    (1 << 14, F32, 1024, F32, "float32", 1024, np.int32),             # one sgemm: partial sums <= 2**24
    (1 << 14, F32 + 1, 1025, F32 + 1, "float32", 1024, np.int32),     # one past: K-chunks of 2**24 / P
    (1 << 30, F64, 1 << 23, F64, "float64", 1 << 23, np.int64),       # dgemm at exactly 2**53
    (1 << 30, F64 + 1, (1 << 23) + 1, F64 + 1, "int64", (1 << 23) + 1, np.int64),
    (1 << 14, 1 << 30, 1 << 16, (1 << 31) - 1, "float32", 1024, np.int32),   # int32 result at 2**31 - 1
    (1 << 14, 1 << 30, 1 << 16, 1 << 31, "float32", 1024, np.int64),         # one past: int64
    (1 << 62, 1 << 63, 2, (1 << 63) - 1, "int64", 2, np.int64),
    (1 << 62, 1 << 63, 2, 1 << 63, "scan", 2, np.int64),                     # beyond int64: the checked kernel
])
def test_plan_boundaries(product, partial, k, result, path, chunk, dtype):
    plan = plan_gemm(product, partial, k, result)
    assert (plan.path, plan.chunk, plan.out_dtype) == (path, chunk, dtype)


def _linear_graph(k, w_value, x_type="int8"):
    b = GraphBuilder("lin", symbols={"rows": 3})
    x = b.input("x", x_type, ["rows", k])
    w = b.tensor("w", np.full((2, k), w_value, dtype=np.int8))
    b.output(b.add("Linear", [x, w], "int32", name="lin"))
    return b.build()


@pytest.mark.parametrize("k, path", [(1024, "float32 x1 -> int32"), (1025, "float32 K-chunks of 1024 -> int32")])
def test_linear_at_the_float32_boundary(k, path):
    """int8 x int8 with every |product| = 2**14: K = 1024 puts the partial sums at exactly 2**24
    (one sgemm is exact), K = 1025 one product past it (the planner chunks)."""
    graph = _linear_graph(k, -128)
    assert graph.steps[0].prepared.path == path
    for fill in (-128, 127):
        x = np.full((3, k), fill, dtype=np.int8)
        x[1, ::2] = -fill - 1 if fill == 127 else 127                # mixed signs on one row
        got = intref.run(graph, {"x": x})[graph.outputs[0]]
        expected = exact(x, np.full((k, 2), -128, dtype=np.int8))
        assert got.dtype == np.int32 and (got == expected).all()


@pytest.mark.parametrize("k", [1, 2])
def test_float64_and_int64_paths_at_2_53(k):
    """|a| = 2**31, |b| = 2**22: K = 1 is exactly 2**53 (dgemm), K = 2 one past (int64)."""
    a = np.full((2, k), -(1 << 31), dtype=np.int64).astype(np.int32)
    b = np.full((k, 3), -(1 << 22), dtype=np.int32)
    b[0, 0] = (1 << 22) - 1
    plan = plan_gemm(1 << 53, k << 53, k, k << 53)
    assert plan.path == ("float64" if k == 1 else "int64")
    got = matmul_planned(plan.operand(a), plan.operand(b), plan)
    assert (got == exact(a, b)).all() and (got == matmul(a, b)).all()


def test_matmul_op_chunks_uint9_probabilities():
    """uint9 x int8 products reach 511 * 128 < 2**16, so chunks of 256 along a symbolic K; the
    all-extreme operands put every chunk's partial sums at their largest."""
    b = GraphBuilder("mm", symbols={"seq": 600})
    p = b.input("p", "uint9", [2, "seq", "seq"])
    v = b.input("v", "int8", [2, "seq", 4])
    b.output(b.add("MatMul", [p, v], "int32", name="mm"))
    graph = b.build()
    assert graph.steps[0].prepared.path == "float32 K-chunks of 256 -> int32"
    for seq in (256, 257, 600):
        pa = np.full((2, seq, seq), 511, dtype=np.uint16)
        va = np.full((2, seq, 4), -128, dtype=np.int8)
        va[1, ::3] = 127
        got = intref.run(graph, {"p": pa, "v": va})[graph.outputs[0]]
        assert (got == exact(pa, va)).all()


def test_scan_plan_still_refuses_overflow():
    plan = GemmPlan("scan", 2, np.int64)
    a = np.full((1, 2), -(1 << 31), dtype=np.int32)
    with pytest.raises(intref.IntrefError):
        matmul_planned(a, np.full((2, 1), -(1 << 31), dtype=np.int32), plan)
