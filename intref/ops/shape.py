"""Data-movement ops: Reshape, Transpose, SplitHeads, MergeHeads, Slice, Gather.

They move integers without changing them: the output type must equal the input type and the
worst-case range passes through. Each returns a new array (a copy, never a view of its input).
Symbolic dimensions (``seq``) are tracked through each op; a reshape may regroup concrete
dimensions but keeps every symbol as it is.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import AttributeError_, ShapeMismatchError, TypeMismatchError
from .base import Attr, Op, Prepared, Result, require_rank


def _same_type(ctx, x, out_types):
    if out_types[0] != x.type:
        ctx.fail(TypeMismatchError, f"output type {out_types[0]} must equal the input type {x.type} "
                                    f"(this op does not change values)")


def _axis(ctx, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        ctx.fail(ShapeMismatchError, f"axis {axis} is outside a rank-{rank} input")
    return axis % rank


class Reshape(Op):
    """Reshape to ``shape``: ints, symbol names (kept from the input) and at most one ``-1``."""

    name = "Reshape"
    inputs = ("x",)
    attributes = {"shape": Attr("dims")}

    def prepare(self, ctx, attrs, inputs, out_types):
        (x,) = inputs
        _same_type(ctx, x, out_types)
        target = list(attrs["shape"])
        in_symbols = sorted(d for d in x.shape if isinstance(d, str))
        if sorted(d for d in target if isinstance(d, str)) != in_symbols:
            ctx.fail(ShapeMismatchError, f"shape {target} must keep the input's symbols {in_symbols}")
        known = math.prod(d for d in x.shape if isinstance(d, int))
        fixed = math.prod(d for d in target if isinstance(d, int) and d != -1)
        if target.count(-1) > 1 or any(isinstance(d, int) and d < -1 for d in target):
            ctx.fail(AttributeError_, f"shape {target} may hold one -1 and no other negative size")
        if -1 in target:
            if fixed == 0 or known % fixed:
                ctx.fail(ShapeMismatchError, f"cannot reshape {list(x.shape)} to {target}")
            target[target.index(-1)] = known // fixed
        elif fixed != known:
            ctx.fail(ShapeMismatchError, f"cannot reshape {list(x.shape)} ({known} concrete elements) to {target}")
        axis_of = {d: i for i, d in enumerate(x.shape) if isinstance(d, str)}

        def run(array):
            sizes = [array.shape[axis_of[d]] if isinstance(d, str) else d for d in target]
            return (array.reshape(sizes).copy(),)

        return Prepared((Result(tuple(target), x.lo, x.hi),), run)


class Transpose(Op):
    """Permute the axes: output axis ``i`` is input axis ``perm[i]``."""

    name = "Transpose"
    inputs = ("x",)
    attributes = {"perm": Attr("ints")}

    def prepare(self, ctx, attrs, inputs, out_types):
        (x,) = inputs
        _same_type(ctx, x, out_types)
        perm = attrs["perm"]
        if sorted(perm) != list(range(x.rank)):
            ctx.fail(ShapeMismatchError, f"perm {list(perm)} is not a permutation of the {x.rank} input axes")
        return Prepared((Result(tuple(x.shape[p] for p in perm), x.lo, x.hi),),
                        lambda array: (array.transpose(perm).copy(),))


class SplitHeads(Op):
    """``[..., s, heads * d] -> [..., heads, s, d]`` (multi-head attention's split)."""

    name = "SplitHeads"
    inputs = ("x",)
    attributes = {"heads": Attr("int", lo=1, hi=1 << 16)}

    def prepare(self, ctx, attrs, inputs, out_types):
        (x,) = inputs
        _same_type(ctx, x, out_types)
        require_rank(ctx.node, "input", x, 2)
        heads, width = attrs["heads"], x.shape[-1]
        if not isinstance(width, int) or width % heads:
            ctx.fail(ShapeMismatchError, f"last axis {width} is not a multiple of heads={heads}")
        shape = x.shape[:-2] + (heads, x.shape[-2], width // heads)

        def run(array):
            split = array.reshape(array.shape[:-1] + (heads, width // heads))
            return (np.swapaxes(split, -2, -3).copy(),)

        return Prepared((Result(shape, x.lo, x.hi),), run)


class MergeHeads(Op):
    """``[..., heads, s, d] -> [..., s, heads * d]``: the inverse of SplitHeads."""

    name = "MergeHeads"
    inputs = ("x",)

    def prepare(self, ctx, attrs, inputs, out_types):
        (x,) = inputs
        _same_type(ctx, x, out_types)
        require_rank(ctx.node, "input", x, 3)
        heads, depth = x.shape[-3], x.shape[-1]
        if not isinstance(heads, int) or not isinstance(depth, int):
            ctx.fail(ShapeMismatchError, f"heads and head width must be concrete, got shape {list(x.shape)}")
        shape = x.shape[:-3] + (x.shape[-2], heads * depth)

        def run(array):
            swapped = np.swapaxes(array, -2, -3).copy()
            return (swapped.reshape(swapped.shape[:-2] + (heads * depth,)),)

        return Prepared((Result(shape, x.lo, x.hi),), run)


def _index_bound(ctx, x, axis, end):
    """Require indices below ``end`` to exist along ``axis``: a concrete size, or any symbolic size
    when ``end <= 1`` (every size is at least 1)."""
    dim = x.shape[axis]
    if (isinstance(dim, int) and end > dim) or (isinstance(dim, str) and end > 1):
        ctx.fail(ShapeMismatchError, f"index {end - 1} may not exist along axis {axis} of size {dim}")


class Slice(Op):
    """``x[..., start:end, ...]`` along ``axis`` (``0 <= start < end``)."""

    name = "Slice"
    inputs = ("x",)
    attributes = {"axis": Attr("int"), "start": Attr("int", lo=0), "end": Attr("int", lo=1)}

    def prepare(self, ctx, attrs, inputs, out_types):
        (x,) = inputs
        _same_type(ctx, x, out_types)
        axis, start, end = _axis(ctx, attrs["axis"], x.rank), attrs["start"], attrs["end"]
        if start >= end:
            ctx.fail(AttributeError_, f"start {start} must be below end {end}")
        _index_bound(ctx, x, axis, end)
        shape = x.shape[:axis] + (end - start,) + x.shape[axis + 1:]
        index = (slice(None),) * axis + (slice(start, end),)
        return Prepared((Result(shape, x.lo, x.hi),), lambda array: (array[index].copy(),))


class Gather(Op):
    """``x[..., index, ...]`` along ``axis``, dropping that axis (the CLS token: axis 1, index 0)."""

    name = "Gather"
    inputs = ("x",)
    attributes = {"axis": Attr("int"), "index": Attr("int", lo=0)}

    def prepare(self, ctx, attrs, inputs, out_types):
        (x,) = inputs
        _same_type(ctx, x, out_types)
        axis = _axis(ctx, attrs["axis"], x.rank)
        _index_bound(ctx, x, axis, attrs["index"] + 1)
        shape = x.shape[:axis] + x.shape[axis + 1:]
        index = (slice(None),) * axis + (attrs["index"],)
        return Prepared((Result(shape, x.lo, x.hi),), lambda array: (np.array(array[index]),))  # 0-d stays an array
