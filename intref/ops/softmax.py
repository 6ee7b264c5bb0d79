"""Attention softmax ops: ``ISoftmax`` (with an additive integer mask and an optional causal mask)
and ``PaddingMask`` (a 0/1 attention mask to an additive one).

Masking is integer and saturating: a mask value at or below the scores' type minimum (PaddingMask's
``fill``, -2**31 by default) masks its score, which becomes that minimum whatever it was; any other
mask value is added to the score and the sum clamped to the scores' type (an additive bias). The
kernel then clamps ``x - max`` at ``exp_clamp * x0_int``, which is where I-BERT's float mask lands
too, so a masked key gets (next to) nothing and a row whose every entry is masked is uniform.
(Adding ``fill`` instead would leave a masked score at ``min + score``: not masked for large scores.)
"""

from __future__ import annotations

import numpy as np

from ..errors import AttributeError_, RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from ..kernels.blocks import map_row_blocks, rows_per_block
from ..kernels.softmax import i_softmax
from ..kernels.softmax_table import exp_code_table, exp_table_fits, softmax_from_distances, softmax_rows_from_table
from ..spec.softmax import EXP_ROUNDING_MODES, SoftmaxParams
from .base import Attr, Op, Prepared, Result, broadcast_dims, require_rank, require_type


class ISoftmax(Op):
    """Integer softmax over the last axis of ``x + mask`` (I-BERT Alg. 3; see spec.softmax)."""

    name = "ISoftmax"
    inputs = ("x", "mask?")
    attributes = {
        "x0_int": Attr("int", hi=-1), "b_int": Attr("int"), "c_int": Attr("int"),
        "exp_clamp": Attr("int", 30, lo=0, hi=62), "exp_multiplier": Attr("int", lo=0, hi=1 << 31),
        "exp_shift": Attr("int", lo=0, hi=255), "exp_bits": Attr("int", 16, lo=2, hi=32),
        "exp_rounding": Attr("str", "half_even", choices=EXP_ROUNDING_MODES),
        "output_bits": Attr("int", 8, lo=1, hi=31), "output_max": Attr("int", 255, lo=1, hi=1 << 31),
        "causal": Attr("bool", False, doc="mask key j > query i (+ the key/query length offset)"),
    }

    def prepare(self, ctx, attrs, inputs, out_types):
        x = inputs[0]
        mask = inputs[1] if len(inputs) > 1 else None
        require_type(ctx.node, "scores", x, signed=True, min_bits=2, max_bits=48)
        require_rank(ctx.node, "scores", x, 1)
        if mask is not None:
            require_type(ctx.node, "mask", mask, signed=True, max_bits=48)
            if broadcast_dims(ctx.node, x.shape, mask.shape) != x.shape:
                ctx.fail(ShapeMismatchError, f"mask {list(mask.shape)} must broadcast to the scores {list(x.shape)}")
        if attrs["causal"]:
            require_rank(ctx.node, "scores", x, 2)
        if attrs["output_max"] > 1 << attrs["output_bits"]:
            ctx.fail(AttributeError_, f"output_max {attrs['output_max']} is above 2**output_bits = "
                                      f"{1 << attrs['output_bits']}")
        params = SoftmaxParams(**{k: v for k, v in attrs.items() if k != "causal"}, input_bits=x.type.bits)
        longest, row = params.max_row_length(), ctx.dim_max(x.shape[-1])
        if longest is not None and row > longest:
            ctx.fail(RangeAnalysisError, f"rows of up to {row} entries; these params allow at most {longest}")
        out = out_types[0]
        if out.signed or out.hi < params.output_max:
            ctx.fail(TypeMismatchError, f"output type {out} cannot hold 0..{params.output_max} (declare uint"
                                        f"{params.output_max.bit_length()})")
        lo, hi, causal = x.type.lo, x.type.hi, attrs["causal"]
        out_dtype = out_types[0].storage
        if exp_table_fits(params):
            table = exp_code_table(params)                     # built once, at load time

            def rows_kernel(scores, scratch):
                return softmax_rows_from_table(scores, table, params, out_dtype, overwrite_q=scratch)   # a new array
            path = f"exp table ({table.shape[0]} entries)"
        else:
            def rows_kernel(scores, scratch):
                return i_softmax(scores, params)
            path = "i-exp"

        def run(x_array, mask_array=None):
            return (softmax_in_row_blocks(x_array, mask_array, causal, lo, hi, rows_kernel, out_dtype),)

        carrier = None
        if path != "i-exp" and not causal:
            def carrier(scores, mask_block=None):
                """Rows of a fused attention (``intref.fusion_attention``): ``scores`` exact integers of
                the scores' type held in a float array the carrier may write, ``mask_block`` the mask's
                block or None where no mask applies. Returns the output values, any integer dtype.
                REQUIRE every ``max(row) - score`` <= 2**24 (the scores GEMM's bound proves it), so
                the float subtraction is exact and ``j`` is the integer kernel's.

                A padding mask (every value 0 or at most ``lo``) sets its masked scores to ``lo``, which
                is -2**(bits-1), a float32 too. Then ``max(row) - s`` is exact wherever it is below
                2**24, and beyond that the table's clamp (at most 2**21 entries) reads its last code
                whatever the float32 rounding: the index is the integer kernel's. Any other mask value
                (an additive bias) takes the op's integer path for the block."""
                if mask_block is not None and np.any(mask_block):
                    if not np.all((mask_block == 0) | (mask_block <= lo)):
                        return rows_kernel(*masked_scores(scores, mask_block, None, lo, hi))   # int64 scores
                    np.copyto(scores, scores.dtype.type(lo), where=mask_block != 0)
                j = np.subtract(scores.max(axis=-1, keepdims=True), scores, out=scores)
                return softmax_from_distances(j.astype(np.intp), table, params)

        # every output is clamped to [0, output_max], inside the output type (checked above): never scanned
        return Prepared((Result(x.shape, *params.output_range()),), run, path, outputs_in_type=True,
                        carrier=carrier)


def masked_scores(x_block, mask_block, future_block, lo: int, hi: int):
    """``(scores, scratch)``: the scores the kernel sees. A mask value <= ``lo`` sets its score to ``lo``;
    any other is added and the sum clamped to ``[lo, hi]``; a causal ``future`` key gets ``lo``. Then
    ``scores`` is a new int64 array (``scratch``: the kernel may write it; ``x_block`` may hold its
    integers in a float array, as a fused attention's scores do). ``x + mask`` fits int64: the
    scores are at most 48 bits, so is the mask. With no mask, or a mask block of zeros (no padding:
    ``lo < 0`` and the scores are already in ``[lo, hi]``) and no future keys, nothing changes and
    ``scores`` is ``x_block`` itself, not copied (``scratch`` False: the caller's value, read only)."""
    masked = mask_block is not None and np.any(mask_block)
    if not masked and future_block is None:
        return x_block, False
    scores = x_block.astype(np.int64)
    if masked:
        mask64 = mask_block.astype(np.int64)
        scores += mask64
        np.clip(scores, lo, hi, out=scores)
        np.copyto(scores, np.int64(lo), where=mask64 <= lo)
    if future_block is not None:
        np.copyto(scores, np.int64(lo), where=future_block)
    return scores, True


def softmax_in_row_blocks(x_array, mask_array, causal: bool, lo: int, hi: int, rows_kernel, out_dtype):
    """``rows_kernel(*masked_scores(...))`` over blocks of rows (``kernels.blocks``); the mask is sliced
    from its broadcast view, never materialized at the scores' size. Where neither a causal mask
    nor the additive mask varies over the query axis, the rows of every trailing leading axis over
    which the mask is constant form one run (all heads and queries of a sequence under a
    ``[batch, 1, 1, seq]`` padding mask), so a block spans heads; else blocks of query rows."""
    if x_array.ndim < 2:
        return rows_kernel(*masked_scores(x_array, mask_array, None, lo, hi))
    keys, query_axis = x_array.shape[-1], x_array.ndim - 2
    mask_shape = (1,) * x_array.ndim if mask_array is None else \
        (1,) * (x_array.ndim - mask_array.ndim) + mask_array.shape
    if causal or mask_shape[query_axis] != 1:
        return _query_row_blocks(x_array, mask_array, causal, lo, hi, rows_kernel, out_dtype)
    inner = query_axis                   # the mask is constant over x's axes inner .. query_axis
    while inner > 0 and mask_shape[inner - 1] == 1:
        inner -= 1
    outer = x_array.shape[:inner]
    scores = x_array.reshape(outer + (-1, keys))
    mask_rows = None if mask_array is None else np.broadcast_to(       # its key axis may be 1 too
        mask_array.reshape(mask_shape), outer + mask_shape[inner:-1] + (keys,)).reshape(outer + (1, keys))
    out = np.empty(scores.shape, dtype=out_dtype)
    for lead in np.ndindex(*outer):   # a run's one mask row is passed whole to each of its blocks
        runs = (scores[lead],) if mask_rows is None else (scores[lead], mask_rows[lead])
        out[lead] = map_row_blocks(lambda block, row=None: rows_kernel(*masked_scores(block, row, None, lo, hi)),
                                   runs, out_dtype)
    return out.reshape(x_array.shape)


def _query_row_blocks(x_array, mask_array, causal: bool, lo: int, hi: int, rows_kernel, out_dtype):
    """Blocks of query rows of one leading index: a causal mask, or an additive one per query."""
    queries, keys = x_array.shape[-2:]
    mask_full = None if mask_array is None else np.broadcast_to(mask_array, x_array.shape)
    future = np.arange(keys)[None, :] > np.arange(queries)[:, None] + (keys - queries) if causal else None
    step = rows_per_block(keys)
    out = np.empty(x_array.shape, dtype=out_dtype)
    for lead in np.ndindex(*x_array.shape[:-2]):
        for start in range(0, queries, step):
            rows = lead + (slice(start, start + step),)
            out[rows] = rows_kernel(*masked_scores(x_array[rows], None if mask_full is None else mask_full[rows],
                                                  None if future is None else future[start:start + step], lo, hi))
    return out


class PaddingMask(Op):
    """``[batch, seq]`` attention mask (1 keep, 0 padding) to an additive ``[batch, 1, 1, seq]`` mask
    holding 0 for kept keys and ``fill`` for padding (broadcast over heads and queries)."""

    name = "PaddingMask"
    inputs = ("mask",)
    attributes = {"fill": Attr("int", -(1 << 31), lo=-(1 << 47), hi=0)}

    def prepare(self, ctx, attrs, inputs, out_types):
        (mask,) = inputs
        require_rank(ctx.node, "mask", mask, 2, 2)
        if mask.lo < 0 or mask.hi > 1:
            ctx.fail(RangeAnalysisError, f"mask {mask.name!r} may hold [{mask.lo}, {mask.hi}]; declare its range [0, 1]")
        fill = attrs["fill"]
        if not out_types[0].contains(fill):
            ctx.fail(TypeMismatchError, f"fill {fill} does not fit the output type {out_types[0]}")
        shape = (mask.shape[0], 1, 1, mask.shape[1])

        def run(mask_array):
            additive = np.where(mask_array != 0, np.int64(0), np.int64(fill))
            return (additive.reshape(mask_array.shape[0], 1, 1, mask_array.shape[1]),)

        return Prepared((Result(shape, min(fill, 0) if mask.lo == 0 else 0, 0),), run)
