"""``IGelu``: I-BERT's integer GELU on the accumulator (``intref.kernels.i_gelu``).

The integer constants are attributes (per tensor or one per channel of the last axis); the
input's declared type sets the kernel's input width, and the params refuse, at load time, any
constants whose intermediates could leave int64 for an input of that width.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeMismatchError
from ..kernels.blocks import map_row_blocks
from ..kernels.gelu import float64_gelu_proven, i_gelu_float64, i_gelu_planned
from ..kernels.gemm_plan import type_magnitude
from ..kernels.gelu_bounds import output_range
from ..spec.gelu import GeluParams
from .base import Attr, Op, Prepared, Result, channel_count, per_channel, require_type


class IGelu(Op):
    """``y = x * (sgn(x) * floor(((min(|x|, -b) + b)**2 + c) / 2**guard) + shift)`` (see spec.gelu)."""

    name = "IGelu"
    inputs = ("x",)
    attributes = {"b_int": Attr("int_or_ints", hi=0, doc="<= 0: -b_int is the clip point of |x|"),
                  "c_int": Attr("int_or_ints"), "shift_int": Attr("int_or_ints"),
                  "guard_shift": Attr("int", 14, lo=0, hi=62)}

    def prepare(self, ctx, attrs, inputs, out_types):
        (x,) = inputs
        require_type(ctx.node, "input", x, signed=True, min_bits=2, max_bits=63)
        names = ("b_int", "c_int", "shift_int")
        channels = channel_count(ctx.node, "input", x) if any(isinstance(attrs[k], tuple) for k in names) else 1
        consts = {k: per_channel(ctx.node, k, attrs[k], channels) for k in names}
        params = GeluParams(**consts, guard_shift=attrs["guard_shift"], input_bits=x.type.bits)
        if params.channels not in (None, channels):
            ctx.fail(ShapeMismatchError, f"per-channel constants have {params.channels} values for {channels} channels")
        lo, hi = output_range(params, x.lo, x.hi)     # = params.output_range, vectorized
        type_lo, type_hi = output_range(params, x.type.lo, x.type.hi)
        out = out_types[0]
        in_type = out.lo <= type_lo and type_hi <= out.hi      # every output of every legal input fits
        consts = tuple(np.asarray(consts[name], dtype=np.int64) for name in names)

        def rows(block):   # REQUIRE of i_gelu_planned: the input type is int<input_bits>, as params says
            return i_gelu_planned(block, *consts, params.guard_shift)

        def run(x_array):   # elementwise: row blocks give the same int64 array (kernels.blocks)
            return (map_row_blocks(rows, (x_array,), np.int64),)

        # A fused chain's block (intref.fusion): in float64 where every legal input proves it exact.
        carried_float = float64_gelu_proven(type_magnitude(x.type.lo, x.type.hi), *consts, params.guard_shift)
        if carried_float:
            float_consts = tuple(c.astype(np.float64) for c in consts)

            def carrier(x_block):
                return i_gelu_float64(x_block, *float_consts, params.guard_shift)
        else:
            def carrier(x_block):
                return i_gelu_planned(x_block.astype(np.int64, copy=False), *consts, params.guard_shift)

        path = f"int64, output proven in {out.name}" if in_type else "int64"
        if in_type:
            path += ", float64 in a fused chain" if carried_float else ", int64 in a fused chain"
        return Prepared((Result(x.shape, lo, hi),), run, path, outputs_in_type=in_type,
                        carrier=carrier if in_type else None)
