"""``GroupLinear``: a Linear whose weight has one scale per group of ``group_size`` inputs of a row.

The integer meaning is ``intref.spec.groupwise.group_linear``: per-group int32 partial sums, each
rescaled by its own dyadic multiplier (a stored ``[N, K / group_size]`` tensor, common ``shift``,
named ``rounding``) to the row's common scale, summed exactly, plus an optional bias at that scale.
Load-time range analysis is exact per output channel and per group: it rejects a graph in which a
partial sum or a rescaled term could leave int32 for some legal input (those widths are part of the
definition), and derives the output's exact worst case, where the node's declared type (int32 by
convention) and the run's overflow policy take over.
"""

from __future__ import annotations

import numpy as np

from ..errors import RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from ..kernels.groupwise import group_linear
from ..kernels.rounding import mul_shift_round
from ..spec.groupwise import INT32_MAX, INT32_MIN, MAX_SHIFT, MULTIPLIER_MAX
from .base import Attr, Op, Prepared, Result, require_rank, require_type, same_dim
from .requant import ROUNDING


def _stored(ctx, what, value, shape):
    if value.data is None or value.shape != shape:
        ctx.fail(ShapeMismatchError, f"{what} {value.name!r} must be a stored {list(shape)} tensor, "
                                     f"got {'a runtime value' if value.data is None else list(value.shape)}")
    return value.data.astype(np.int64)


def group_term_ranges(weight, multiplier, shift, lo, hi, group_size, rounding):
    """Exact per-(channel, group) ranges over inputs in ``[lo, hi]``: ``(p_lo, p_hi)`` of the partial
    sums and ``(r_lo, r_hi)`` of the rescaled terms, each ``[N, G]`` int64; ``None`` for the terms
    when a partial sum can leave int32. Each group's inputs are its own, so every group reaches its
    extremes at once; the rounding is monotone in P because every multiplier is >= 0.
    REQUIRE max|w| * max|x| * group_size < 2**63 (checked by the caller)."""
    n_out, k = weight.shape
    blocks = weight.reshape(n_out, k // group_size, group_size)
    p_lo = np.minimum(blocks * lo, blocks * hi).sum(axis=2)
    p_hi = np.maximum(blocks * lo, blocks * hi).sum(axis=2)
    if int(p_lo.min()) < INT32_MIN or int(p_hi.max()) > INT32_MAX:
        return (p_lo, p_hi), None
    return (p_lo, p_hi), tuple(mul_shift_round(p, multiplier, shift, rounding).value() for p in (p_lo, p_hi))


class GroupLinear(Op):
    """``y[..., n] = bias[n] + sum_j round(P[..., n, j] * multiplier[n, j] / 2**shift)``.

    ``weight``: stored ``[N, K]``, signed, at most 16 bits (int4 or int8). ``multiplier``: stored
    ``[N, K / group_size]`` of values in ``[0, 2**31]`` (type ``uint32`` holds them). ``bias``: optional
    stored ``[N]``, signed, at most 32 bits, at the common scale.
    """

    name = "GroupLinear"
    inputs = ("x", "weight", "multiplier", "bias?")
    attributes = {"group_size": Attr("int", lo=1, hi=1 << 31, doc="inputs per weight group (divides K)"),
                  "shift": Attr("int", lo=0, hi=MAX_SHIFT, doc="common right shift of every rescaled group"),
                  "rounding": ROUNDING}

    def prepare(self, ctx, attrs, inputs, out_types):
        x, weight, multiplier = inputs[:3]
        bias = inputs[3] if len(inputs) > 3 else None
        require_type(ctx.node, "input", x, max_bits=32 if x.type.signed else 16)
        require_rank(ctx.node, "input", x, 2)
        require_type(ctx.node, "weight", weight, signed=True, max_bits=16)
        if weight.data is None or weight.rank != 2 or 0 in weight.shape:
            ctx.fail(ShapeMismatchError, f"weight {weight.name!r} must be a stored non-empty [N, K] tensor")
        n_out, k = weight.shape
        group = attrs["group_size"]
        if not same_dim(x.shape[-1], k) or k % group:
            ctx.fail(ShapeMismatchError, f"input's last axis {x.shape[-1]} must equal weight's K = {k}, a multiple "
                                         f"of group_size = {group}")
        m = _stored(ctx, "multiplier", multiplier, (n_out, k // group))
        if multiplier.lo < 0 or multiplier.hi > MULTIPLIER_MAX:
            ctx.fail(TypeMismatchError, f"multiplier {multiplier.name!r} holds values in [{multiplier.lo}, "
                                        f"{multiplier.hi}]; expected [0, 2^31]")
        b = np.zeros(n_out, np.int64)
        if bias is not None:
            require_type(ctx.node, "bias", bias, signed=True, max_bits=32)
            b = _stored(ctx, "bias", bias, (n_out,))
        w = weight.data.astype(np.int64)
        if int(np.abs(w).max()) * max(abs(x.lo), abs(x.hi)) * group >= 1 << 62:
            ctx.fail(RangeAnalysisError, "a group's partial sum could leave int64")
        (p_lo, p_hi), terms = group_term_ranges(w, m, attrs["shift"], x.lo, x.hi, group, attrs["rounding"])
        if terms is None:
            ctx.fail(RangeAnalysisError, f"a partial sum can reach [{int(p_lo.min())}, {int(p_hi.max())}]: group "
                                         f"partial sums are int32 by definition")
        r_lo, r_hi = terms
        if int(r_lo.min()) < INT32_MIN or int(r_hi.max()) > INT32_MAX:
            ctx.fail(RangeAnalysisError, f"a rescaled group term can reach [{int(r_lo.min())}, {int(r_hi.max())}]: "
                                         f"rescaled terms are int32 by definition (lower the multipliers or raise shift)")
        lo, hi = int((r_lo.sum(axis=1) + b).min()), int((r_hi.sum(axis=1) + b).max())
        weight_data, options = weight.data, dict(group_size=group, bias=b, rounding=attrs["rounding"])

        def run(x_array, *stored):  # weight, multiplier and bias are the stored tensors prepared above
            return (group_linear(x_array, weight_data, m, attrs["shift"], **options),)

        return Prepared((Result(x.shape[:-1] + (n_out,), lo, hi),), run)
