"""Embedding ops: table lookup and position ids.

``Embedding`` reads rows of a stored integer table (int8 in I-BERT, one per-tensor scale). The
ids' declared range must lie inside the table: the graph input declares it (``range`` in
graph.json), so an out-of-table id is refused when it is fed, never read past the table.
"""

from __future__ import annotations

import numpy as np

from ..errors import RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from .base import Attr, Op, Prepared, Result, require_rank, require_type


class Embedding(Op):
    """``y[..., :] = table[ids[...], :]``."""

    name = "Embedding"
    inputs = ("ids", "table")

    def prepare(self, ctx, attrs, inputs, out_types):
        ids, table = inputs
        require_type(ctx.node, "ids", ids, max_bits=32)
        require_type(ctx.node, "table", table, signed=True, max_bits=16)
        if table.data is None or table.rank != 2:
            ctx.fail(ShapeMismatchError, f"table {table.name!r} must be a stored 2-D tensor [rows, width]")
        rows, width = table.shape
        if ids.lo < 0 or ids.hi >= rows:
            ctx.fail(RangeAnalysisError, f"ids {ids.name!r} may take values in [{ids.lo}, {ids.hi}] but the table "
                                         f"has rows 0..{rows - 1}; declare the ids' range")
        if out_types[0] != table.type:
            ctx.fail(TypeMismatchError, f"output type {out_types[0]} must equal the table type {table.type}")
        def run(id_array, table_array):
            return (np.take(table_array, id_array.astype(np.intp), axis=0),)

        return Prepared((Result(ids.shape + (width,), table.lo, table.hi),), run)


class PositionIds(Op):
    """Position ids of a ``[batch, seq]`` id tensor.

    mode ``arange``: ``start + j`` for position ``j`` (BERT).
    mode ``padding_aware``: ``padding_idx + cumsum(ids != padding_idx)`` on real tokens and
    ``padding_idx`` on padding (RoBERTa / I-BERT's ``create_position_ids_from_input_ids``).
    """

    name = "PositionIds"
    inputs = ("ids",)
    attributes = {"mode": Attr("str", "arange", choices=("arange", "padding_aware")),
                  "padding_idx": Attr("int", 1, lo=0, hi=1 << 30), "start": Attr("int", 0, lo=0, hi=1 << 30)}

    def prepare(self, ctx, attrs, inputs, out_types):
        (ids,) = inputs
        require_type(ctx.node, "ids", ids, max_bits=32)
        require_rank(ctx.node, "ids", ids, 2, 2)
        seq_max = ctx.dim_max(ids.shape[1])
        if attrs["mode"] == "arange":
            start = attrs["start"]
            lo, hi = start, start + seq_max - 1

            def run(id_array):
                positions = np.arange(start, start + id_array.shape[1], dtype=np.int64)
                return (np.broadcast_to(positions, id_array.shape).copy(),)
        else:
            pad = attrs["padding_idx"]
            lo, hi = pad, pad + seq_max

            def run(id_array):
                real = (id_array != pad).astype(np.int64)
                return (np.cumsum(real, axis=1) * real + pad,)

        return Prepared((Result(ids.shape, lo, hi),), run)


class RelativeBuckets(Op):
    """Bucket ids of the relative position of every (query, key) pair of a ``[batch, seq]`` id tensor:
    ``y[i, j] = buckets[j - i + L - 1]`` for ``i, j < seq``, where ``buckets`` (length ``2L - 1``) lists
    the bucket of each distance ``-(L-1) .. L-1`` (MPNet's bucketed relative-position bias: the
    bucketing is build time, the op only indexes). Output ``[seq, seq]``."""

    name = "RelativeBuckets"
    inputs = ("ids",)
    attributes = {"buckets": Attr("ints", lo=0, hi=1 << 30)}

    def prepare(self, ctx, attrs, inputs, out_types):
        (ids,) = inputs
        require_rank(ctx.node, "ids", ids, 2, 2)
        buckets = np.asarray(attrs["buckets"], dtype=np.int64)
        if buckets.size % 2 == 0:
            ctx.fail(ShapeMismatchError, f"buckets has {buckets.size} entries; expected 2L - 1 (distances "
                                         f"-(L-1) .. L-1)")
        longest = (buckets.size + 1) // 2
        if ctx.dim_max(ids.shape[1]) > longest:
            ctx.fail(ShapeMismatchError, f"seq may reach {ctx.dim_max(ids.shape[1])} but buckets covers "
                                         f"distances of sequences up to {longest}")
        lo, hi = int(buckets.min()), int(buckets.max())
        if out_types[0].lo > lo or out_types[0].hi < hi:
            ctx.fail(TypeMismatchError, f"output type {out_types[0]} cannot hold bucket ids {lo}..{hi}")
        storage = out_types[0].storage

        def run(id_array):
            seq = id_array.shape[1]
            distance = np.arange(seq)[None, :] - np.arange(seq)[:, None] + longest - 1
            return (buckets[distance].astype(storage),)

        return Prepared((Result((ids.shape[1], ids.shape[1]), lo, hi),), run)
