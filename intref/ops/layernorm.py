"""``ILayerNorm``: I-BERT's integer LayerNorm over the last axis (``intref.kernels.i_layernorm``)."""

from __future__ import annotations

import numpy as np

from ..kernels.blocks import map_row_blocks
from ..kernels.layernorm import layernorm_rows
from ..spec.layernorm import LayerNormParams
from .base import Attr, Op, Prepared, Result, channel_count, require_type


class ILayerNorm(Op):
    """Integer LayerNorm: half-even mean, guard ``shift``, isqrt, ``floor(2**31/std)``, ``+ bias_int``.

    ``bias_int`` holds one value per channel (beta/gamma folded into the integers); gamma lives in
    the output's per-channel scale (quantization metadata), not in the arithmetic.
    """

    name = "ILayerNorm"
    inputs = ("x",)
    attributes = {"shift": Attr("int", 0, lo=0, hi=62), "bias_int": Attr("ints")}

    def prepare(self, ctx, attrs, inputs, out_types):
        (x,) = inputs
        require_type(ctx.node, "input", x, signed=True, min_bits=2, max_bits=63)
        channels = channel_count(ctx.node, "input", x)
        params = LayerNormParams(channels=channels, shift=attrs["shift"], bias_int=attrs["bias_int"],
                                 input_bits=x.type.bits)
        lo, hi = params.output_range()                 # for every input of the type: no analysed range used
        in_type = out_types[0].lo <= lo and hi <= out_types[0].hi

        def run(x_array):   # a row is its normalization group: row blocks give the same int64 array
            return (map_row_blocks(lambda block: layernorm_rows(block, params), (x_array,), np.int64),)

        def carrier(x_block):   # a fused chain's block of whole rows (intref.fusion): the int64 kernel
            return layernorm_rows(x_block.astype(np.int64, copy=False), params)

        path = f"int64, output proven in {out_types[0].name}" if in_type else "int64"
        return Prepared((Result(x.shape, lo, hi),), run, path, outputs_in_type=in_type,
                        carrier=carrier if in_type else None)
