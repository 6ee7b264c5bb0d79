"""GEMM ops: ``Linear`` (activation x stored weights) and ``MatMul`` (activation x activation).

Both produce the exact sum (``intref.kernels.matmul``'s result) on a path planned at load time
(``intref.kernels.gemm_plan``): int32 when the bound proves it holds every result, else int64. The
node's declared type (int32 in I-BERT) is where the run's overflow policy applies. Range analysis is exact per output channel
for ``Linear`` (from the stored weights) and a product bound for ``MatMul``; both reject graphs
whose worst case could leave int64.
"""

from __future__ import annotations

import numpy as np

from ..errors import RangeAnalysisError, ShapeMismatchError
from ..kernels.gemm import FLOAT64_EXACT
from ..kernels.gemm_plan import GemmPlan, matmul_planned, plan_gemm, type_magnitude
from .base import Attr, Op, Prepared, Result, broadcast_dims, require_rank, require_type, same_dim

_SAFE = 1 << 62


def _require_operand(ctx, what, value):
    """The GEMM kernel's operand dtypes: signed up to 32 bits, unsigned up to 16."""
    require_type(ctx.node, what, value, max_bits=32 if value.type.signed else 16)


class Linear(Op):
    """``y[..., n] = sum_k x[..., k] * weight[n, k] + bias[n]``.

    ``weight``: a stored ``[N, K]`` tensor (PyTorch layout), signed, at most 16 bits (int8 or int4;
    per-tensor, per-channel or row-group scales all give this same integer sum, they differ only
    in the requantization that follows). ``bias``: an optional stored ``[N]`` tensor of at most 32
    bits, quantized at the accumulator's scale.
    """

    name = "Linear"
    inputs = ("x", "weight", "bias?")

    def prepare(self, ctx, attrs, inputs, out_types):
        x, weight = inputs[:2]
        bias = inputs[2] if len(inputs) > 2 else None
        _require_operand(ctx, "input", x)
        require_rank(ctx.node, "input", x, 2)
        require_type(ctx.node, "weight", weight, signed=True, max_bits=16)
        if weight.data is None or weight.rank != 2 or 0 in weight.shape:
            ctx.fail(ShapeMismatchError, f"weight {weight.name!r} must be a stored non-empty [N, K] tensor")
        n_out, k = weight.shape
        if not same_dim(x.shape[-1], k):
            ctx.fail(ShapeMismatchError, f"input's last axis {x.shape[-1]} != weight's K = {k} (weight is [N, K])")
        w = weight.data
        b = np.zeros(n_out, dtype=np.int64)
        if bias is not None:
            require_type(ctx.node, "bias", bias, signed=True, max_bits=32)
            if bias.data is None or bias.shape != (n_out,):
                ctx.fail(ShapeMismatchError, f"bias {bias.name!r} must be a stored [{n_out}] tensor")
            b = bias.data.astype(np.int64)
        w_max = max(weight.hi, -weight.lo)          # a stored tensor's lo/hi are its exact extremes
        if w_max * max(abs(x.lo), abs(x.hi)) * k + int(np.abs(b).max(initial=0)) >= _SAFE:
            ctx.fail(RangeAnalysisError, "the accumulator's worst case could leave int64")
        # Exact per channel, then the widest: with x.lo <= x.hi, max(w * x.lo, w * x.hi) is w * x.hi for
        # w > 0 and w * x.lo for w < 0, so the channel sums need only the positive and negative weight sums.
        # |any row sum| <= k * 2**15 (weights of at most 16 bits): int32 sums are exact up to k = 2**16, and
        # halve the load's time here against int64 ones.
        sum_dtype = np.int32 if k * (1 << 15) <= (1 << 31) - 1 else np.int64
        positive = positive_part(w).sum(axis=1, dtype=sum_dtype).astype(np.int64)
        negative = w.sum(axis=1, dtype=sum_dtype).astype(np.int64) - positive
        hi = (positive * x.hi + negative * x.lo + b).max()
        lo = (positive * x.lo + negative * x.hi + b).min()
        plan, result_bound = _linear_plan(x, k, w_max, int((positive - negative).max()), b)
        # Converted once, at load time, and stored K x N row-major: sgemm on a transposed (Fortran-order)
        # operand runs about 15% slower at 128 rows here. One pass from the int8 view (converting first
        # and then transposing the float32 copy took 8x as long: 0.5 s of the base model's load).
        weight_t = plan.operand(weight.data.T, order="C")
        bias_out = b.astype(plan.out_dtype) if bias is not None else None

        def run(x_array, *stored):  # weight and bias are the stored tensors prepared above
            rows = plan.operand(x_array.reshape(-1, k))      # one GEMM over every row
            acc = matmul_planned(rows, weight_t, plan)
            if bias_out is not None:
                acc += bias_out                                        # in place: the plan's bound holds it
            return (acc.reshape(x_array.shape[:-1] + (n_out,)),)

        split = _fusable_split(plan, k, weight_t, bias_out, out_types[0], result_bound)
        return Prepared((Result(x.shape[:-1] + (n_out,), int(lo), int(hi)),), run, plan.describe(k), **split)


def _fusable_split(plan: GemmPlan, k: int, weight_t: np.ndarray, bias_int, out_type, result_bound: int) -> dict:
    """``Prepared``'s ``gemm``, ``epilogue`` and ``carrier`` for a fused chain (``intref.fusion``), or
    nothing: only where one BLAS call gives the exact sums (the ``float32 x1`` and ``float64`` paths),
    the bound proves every result inside the declared type (so the run's overflow policy never acts on
    it) and within 2**53 (so the float64 carrier holds it with the bias added). ``bias_int``: the
    bias in ``plan.out_dtype`` (``run``'s), or None."""
    one_call = plan.path == "float64" or (plan.path == "float32" and plan.chunk >= k)
    if not one_call or result_bound > min(out_type.hi, -out_type.lo, FLOAT64_EXACT):
        return {}
    bias_float = None if bias_int is None else bias_int.astype(np.float64)

    def gemm(x_array):     # the exact sums, still in the BLAS float type, one row per input row
        return np.matmul(plan.operand(x_array.reshape(-1, k)), weight_t)

    def epilogue(raw_rows):   # as run's: the integer sums plus the bias
        acc = raw_rows.astype(plan.out_dtype)
        if bias_int is not None:
            acc += bias_int
        return acc

    def carrier(raw_rows):    # the same integers in float64: each below 2**53, the sum too
        acc = raw_rows.astype(np.float64)
        if bias_float is not None:
            acc += bias_float
        return acc

    return dict(gemm=gemm, epilogue=epilogue, carrier=carrier)


def positive_part(w: np.ndarray) -> np.ndarray:
    """``max(w, 0)`` of a signed integer array, in its dtype: ``w & ~(w >> (bits - 1))`` (the
    arithmetic shift gives -1, all ones, for a negative ``w`` and 0 otherwise); a few times faster
    than ``np.maximum`` on int8."""
    return w & ~(w >> (w.dtype.itemsize * 8 - 1))


def _linear_plan(x, k: int, w_max: int, abs_row_sum: int, b: np.ndarray):
    """``(plan, result bound)`` from the input TYPE (which bounds every value the interpreter can
    pass, overrides included) and the exact stored weights: a partial sum of output channel n is at
    most ``max|x| * sum_k |w[n, k]|`` (``abs_row_sum`` is the largest such row sum), a result that
    plus ``max|b|``."""
    magnitude = type_magnitude(x.type.lo, x.type.hi)
    partial = magnitude * abs_row_sum
    result_bound = partial + int(np.abs(b).max(initial=0))
    return plan_gemm(magnitude * w_max, partial, k, result_bound), result_bound


class MatMul(Op):
    """``y = a @ b`` over the last two axes (``a @ b^T`` with ``transpose_b``), batch dims broadcast.

    For attention: ``Q @ K^T`` (int8 x int8) and ``P @ V`` (uint8/uint9 probabilities x int8).
    """

    name = "MatMul"
    inputs = ("a", "b")
    attributes = {"transpose_b": Attr("bool", False, doc="use b's last two axes swapped")}

    def prepare(self, ctx, attrs, inputs, out_types):
        a, b = inputs
        for what, value in (("a", a), ("b", b)):
            _require_operand(ctx, what, value)
            require_rank(ctx.node, what, value, 2)
        b_shape = b.shape[:-2] + (b.shape[-1], b.shape[-2]) if attrs["transpose_b"] else b.shape
        k = a.shape[-1]
        if not same_dim(k, b_shape[-2]):
            ctx.fail(ShapeMismatchError, f"a's last axis {k} does not match b's contracted axis {b_shape[-2]}")
        batch = broadcast_dims(ctx.node, a.shape[:-2], b_shape[:-2])
        corners = [p * q for p in (a.lo, a.hi) for q in (b.lo, b.hi)]
        k_min, k_max = (k if isinstance(k, int) else 1), ctx.dim_max(k)   # a symbol is 1..its maximum
        lo = min(min(corners) * k_min, min(corners) * k_max)               # K products, each in the corners
        hi = max(max(corners) * k_min, max(corners) * k_max)
        if max(abs(lo), abs(hi)) >= _SAFE:
            ctx.fail(RangeAnalysisError, f"a sum of up to {k_max} products in [{min(corners)}, {max(corners)}] "
                                         f"could leave int64")
        transpose = attrs["transpose_b"]
        product = type_magnitude(a.type.lo, a.type.hi) * type_magnitude(b.type.lo, b.type.hi)
        plan = plan_gemm(product, product * k_max, k_max, product * k_max)   # from the types (see Linear)

        def run(a_array, b_array):
            b_array = np.swapaxes(b_array, -1, -2) if transpose else b_array   # a view: BLAS reads it transposed
            return (matmul_planned(plan.operand(a_array), plan.operand(b_array), plan),)

        return Prepared((Result(batch + (a.shape[-2], b_shape[-1]), lo, hi),), run, plan.describe(k_max))
