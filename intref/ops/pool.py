"""``MaskedMeanPool``: the sentence embedding, mean of the real tokens' hidden states.

``[batch, seq, hidden]`` and a 0/1 ``[batch, seq]`` mask give ``[batch, hidden]`` at the input's
scale (``intref.kernels.pool.masked_mean``: rounded half to even; a row with no real token gives 0).
"""

from __future__ import annotations

from ..errors import RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from ..kernels.pool import masked_mean
from .base import Op, Prepared, Result, require_rank, require_type, same_dim


class MaskedMeanPool(Op):
    """``y[b, h] = round(sum_s x[b, s, h] * mask[b, s] / sum_s mask[b, s])``."""

    name = "MaskedMeanPool"
    inputs = ("x", "mask")

    def prepare(self, ctx, attrs, inputs, out_types):
        x, mask = inputs
        require_type(ctx.node, "input x", x, max_bits=32)
        require_rank(ctx.node, "input x", x, 2)
        require_type(ctx.node, "mask", mask, max_bits=32)
        if mask.rank != x.rank - 1 or not all(same_dim(a, b) for a, b in zip(mask.shape, x.shape[:-1])):
            ctx.fail(ShapeMismatchError, f"mask {list(mask.shape)} must have x's shape without its last axis "
                                         f"({list(x.shape[:-1])})")
        if mask.lo < 0 or mask.hi > 1:
            ctx.fail(RangeAnalysisError, f"mask {mask.name!r} may take values in [{mask.lo}, {mask.hi}]; it must "
                                         f"be declared 0..1")
        if out_types[0] != x.type:
            ctx.fail(TypeMismatchError, f"output type {out_types[0]} must equal the input type {x.type} "
                                        f"(a mean stays within its inputs)")
        storage = x.type.storage

        def run(x_array, mask_array):
            return (masked_mean(x_array, mask_array).astype(storage),)   # exact: within x's range

        lo, hi = min(x.lo, 0), max(x.hi, 0)   # an empty row pools to 0
        return Prepared((Result(x.shape[:-2] + x.shape[-1:], lo, hi),), run)
