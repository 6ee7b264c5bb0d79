"""Scalar spec of the integer LayerNorm (I-BERT Alg. 4): its params and (to be written) its functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from .._params import (as_float_or_floats, as_int_or_ints,
                       require_bits)
from ..errors import ShapeError


@dataclass(frozen=True)
class LayerNormParams:
    """Integer constants of the integer LayerNorm (I-BERT Alg. 4 and the reference code).

      channels    C, the length of the normalised (last) axis
      shift       overflow guard: the variance sums (y >> shift)**2 (reference: from training)
      bias_int    floor(beta_c / out_scale_c) per channel (beta/gamma folded into the integers)
      input_bits  REQUIRE q in int<input_bits>
      out_scale   sqrt(C) / 2**30 * gamma_c per channel: real value is result * out_scale
    """

    channels: int
    shift: int
    bias_int: Tuple[int, ...]
    input_bits: int
    out_scale: Tuple[float, ...]

    def __post_init__(self):
        owner = "LayerNormParams"
        object.__setattr__(self, "channels", require_bits(owner, "channels", self.channels, 1, 1 << 24))
        object.__setattr__(self, "shift", require_bits(owner, "shift", self.shift, 0, 62))
        object.__setattr__(self, "input_bits", require_bits(owner, "input_bits", self.input_bits, 2, 63))
        bias = as_int_or_ints(owner, "bias_int", self.bias_int)
        scale = as_float_or_floats(owner, "out_scale", self.out_scale)
        for name, value in (("bias_int", bias), ("out_scale", scale)):
            if not isinstance(value, tuple) or len(value) != self.channels:
                raise ShapeError(f"{owner}: {name} must hold {self.channels} per-channel values", argument=name)
        object.__setattr__(self, "bias_int", bias)
        object.__setattr__(self, "out_scale", scale)
