"""Token-wise dynamic quantization ops (``intref.spec.tokenwise``): ``TokenScale``, ``TokenQuantize``,
``TokenRequantize``.

A token's scale is a runtime value of the graph: ``TokenScale`` derives it per row of the last axis
(``[..., 1]``, an integer count of the input's static scale), ``TokenQuantize`` quantizes the row
with it, and after the GEMM ``TokenRequantize`` multiplies the accumulator by it and requantizes to
a static scale. Because the scale is a node output, golden dumps hold it and ``verify`` checks it
like any other tensor, and each consumer reads it exactly.
"""

from __future__ import annotations

from ..errors import RangeAnalysisError, ShapeMismatchError
from ..kernels.tokenwise import token_quantize, token_requantize, token_scale
from ..spec import tokenwise as spec
from ..spec.rounding import rshift_round
from .base import Attr, Op, Prepared, Result, channel_count, per_channel, require_rank, require_type, same_dim
from .requant import MULTIPLIER, OVERFLOW, ROUNDING, SHIFT, _as_kernel_input, _channel_list, _out_type

BITS = Attr("int", 8, lo=spec.BITS_MIN, hi=spec.BITS_MAX, doc="quantized width: values in [-Q, Q], Q = 2^(bits-1) - 1")


def _require_row_scale(ctx, x, scale):
    """``scale`` holds one legal token scale per row of ``x``: shape ``x.shape[:-1] + [1]``, range within
    ``[1, 2^30]``."""
    want = tuple(x.shape[:-1]) + (1,)
    if len(scale.shape) != len(want) or not all(same_dim(a, b) for a, b in zip(scale.shape, want)):
        ctx.fail(ShapeMismatchError, f"scale {scale.name!r} has shape {list(scale.shape)}; expected {list(want)} "
                                     f"(one per row of {x.name!r})")
    require_type(ctx.node, "scale", scale, max_bits=32)
    if scale.lo < 1 or scale.hi > spec.SCALE_MAX:
        ctx.fail(RangeAnalysisError, f"scale {scale.name!r} can hold [{scale.lo}, {scale.hi}]; a token scale must "
                                     f"lie in [1, 2^30]")


def scale_range(lo: int, hi: int, bits: int, empty_rows: bool) -> tuple:
    """Exact range of ``token_scale`` over rows of values in ``[lo, hi]``."""
    q_max = spec.qmax(bits)
    a_hi = max(abs(lo), abs(hi))
    a_lo = 0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
    t_lo, t_hi = (max(1, -(-a // q_max)) for a in (a_lo, a_hi))
    return (1, 1) if empty_rows else (t_lo, t_hi)


class TokenScale(Op):
    """``t[..., 0] = max(1, ceil(max_c |x[..., c]| / Q))``: the per-token scale, in units of ``x``'s scale."""

    name = "TokenScale"
    inputs = ("x",)
    attributes = {"bits": BITS}

    def prepare(self, ctx, attrs, inputs, out_types):
        (x,) = inputs
        require_type(ctx.node, "input", x, signed=True, max_bits=32)
        require_rank(ctx.node, "input", x, 1)
        lo, hi = scale_range(x.lo, x.hi, attrs["bits"], x.shape[-1] == 0)
        bits = attrs["bits"]

        def run(x_array):
            return (token_scale(x_array, bits=bits),)

        return Prepared((Result(tuple(x.shape[:-1]) + (1,), lo, hi),), run)


class TokenQuantize(Op):
    """``q = clamp(round(x * m / 2^s), -Q, Q)`` with ``(m, s)`` the reciprocal of the row's ``scale``."""

    name = "TokenQuantize"
    inputs = ("x", "scale")
    attributes = {"bits": BITS, "rounding": ROUNDING}

    def prepare(self, ctx, attrs, inputs, out_types):
        x, scale = inputs
        require_type(ctx.node, "input", x, signed=True, max_bits=32)
        require_rank(ctx.node, "input", x, 1)
        _require_row_scale(ctx, x, scale)
        q_max = spec.qmax(attrs["bits"])
        lo, hi = (-q_max if x.lo < 0 else 0), (q_max if x.hi > 0 else 0)   # the rounding keeps the sign
        options = dict(bits=attrs["bits"], rounding=attrs["rounding"])

        def run(x_array, scale_array):
            return (token_quantize(x_array, _as_kernel_input(scale_array), **options),)

        return Prepared((Result(x.shape, lo, hi),), run)


class TokenRequantize(Op):
    """``y = fit(round(x * scale * multiplier / 2^shift) + bias)`` into the declared type (<= 32 bits).

    ``x``: an accumulator whose rows carry the token scales ``scale`` (``[..., 1]``); ``multiplier``
    and ``shift`` per tensor or per channel of the last axis; ``bias``: optional stored ``[C]``
    tensor, signed, at most 32 bits, at the output scale.
    """

    name = "TokenRequantize"
    inputs = ("x", "scale", "bias?")
    attributes = {"multiplier": Attr("int_or_ints", **MULTIPLIER), "shift": Attr("int_or_ints", **SHIFT),
                  "rounding": ROUNDING, "overflow": OVERFLOW}

    def prepare(self, ctx, attrs, inputs, out_types):
        x, scale = inputs[:2]
        bias = inputs[2] if len(inputs) > 2 else None
        require_type(ctx.node, "input", x, signed=True, max_bits=64)
        require_rank(ctx.node, "input", x, 1)
        _require_row_scale(ctx, x, scale)
        out = _out_type(ctx, out_types)
        per = bias is not None or any(isinstance(attrs[k], tuple) for k in ("multiplier", "shift"))
        channels = channel_count(ctx.node, "input", x) if per else 1
        m = per_channel(ctx.node, "multiplier", attrs["multiplier"], channels)
        s = per_channel(ctx.node, "shift", attrs["shift"], channels)
        b = [0] * channels
        if bias is not None:
            require_type(ctx.node, "bias", bias, signed=True, max_bits=32)
            if bias.data is None or bias.shape != (channels,):
                ctx.fail(ShapeMismatchError, f"bias {bias.name!r} must be a stored [{channels}] tensor")
            b = [int(v) for v in bias.data.tolist()]
        corners = [p * q for p in (x.lo, x.hi) for q in (scale.lo, scale.hi)]
        if max(abs(c) for c in corners) > spec.INT64_MAX:
            ctx.fail(RangeAnalysisError, f"x * scale can reach {min(corners)}..{max(corners)}: beyond 2^63 - 1")
        ends = [rshift_round(p * mc, sc, attrs["rounding"]) + bc for mc, sc, bc in
                zip(_channel_list(m, channels), _channel_list(s, channels), b) for p in (min(corners), max(corners))]
        lo, hi = min(ends), max(ends)                 # monotone in the product for each channel
        if attrs["overflow"] == "wrap" and (lo < out.lo or hi > out.hi):
            lo, hi = out.lo, out.hi
        options = dict(bias=None if bias is None else bias.data, rounding=attrs["rounding"], bits=out.bits,
                       signed=out.signed, overflow=attrs["overflow"])

        def run(x_array, scale_array, *stored):
            return (token_requantize(_as_kernel_input(x_array), _as_kernel_input(scale_array), m, s, **options),)

        return Prepared((Result(x.shape, max(lo, out.lo), min(hi, out.hi)),), run)
