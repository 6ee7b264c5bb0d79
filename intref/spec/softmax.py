"""Scalar spec of i-exp and the integer softmax (I-BERT Alg. 3): its params and (to be written) its functions."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .._params import (as_float_or_floats, as_int)
from ..errors import ShapeError


@dataclass(frozen=True)
class SoftmaxParams:
    """Integer constants of i-exp and the integer softmax (I-BERT Alg. 3, reference-code form).

    With ``S`` the (per-tensor) input scale and coefficients ``exp(p) ~ a*p**2 + b*p + c`` on
    ``(x0, 0]`` written as ``a * ((p + b/a) * p + c/a)``:
      x0_int        floor(x0 / S), x0 = -0.6931 in the reference (negative)
      b_int         floor((b/a) / S)
      c_int         floor((c/a) / S**2)
      exp_clamp     n: the exponent z is clamped to 0..n (reference 30); exp_int = poly * 2**(n - z)
      exp_multiplier, exp_shift
                    dyadic requantization of exp_int to exp_bits (e = round(exp_int * m / 2**s))
      exp_bits      width of the requantized exp (reference 16: clamp to [0, 2**15 - 1])
      exp_rounding  rounding of that requantization (reference half_even)
      output_bits   fractional bits of the result: out scale 2**-output_bits (reference 8)
      output_max    the result is clamped to [0, output_max]: 255 for uint8, 256 for the HF
                    import's uint9 (one-hot rows can reach 2**output_bits)
      input_bits    REQUIRE q in int<input_bits>
      exp_scale     a * S**2 / 2**n: real value of i_exp's result is result * exp_scale
      out_scale     2**-output_bits
    """

    x0_int: int
    b_int: int
    c_int: int
    exp_clamp: int
    exp_multiplier: int
    exp_shift: int
    exp_bits: int
    exp_rounding: str
    output_bits: int
    output_max: int
    input_bits: int
    exp_scale: float
    out_scale: float

    def __post_init__(self):
        owner = "SoftmaxParams"
        for f in fields(self):
            if f.type in ("int",):
                object.__setattr__(self, f.name, as_int(owner, f.name, getattr(self, f.name)))
        for name in ("exp_scale", "out_scale"):
            value = as_float_or_floats(owner, name, getattr(self, name))
            if isinstance(value, tuple):
                raise ShapeError(f"{owner}: {name} must be a scalar (softmax is per tensor)", argument=name)
            object.__setattr__(self, name, value)
