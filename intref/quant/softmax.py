"""Build-time preparation of i-exp / the integer softmax: float scales to a ``SoftmaxParams``.

Floats are allowed here and nowhere after. ``prepare_softmax`` is the idealised I-BERT softmax
(notes/ibert-reference-semantics.md s. 12 (A)): the constants are the floors of the
float64 quotients (IEEE division, correctly rounded, so any language reproduces them), not the
reference's float32 ``floor(fl32(1/S) * fl32(c))``; a converter that must match a trained HF
checkpoint derives those itself and builds ``SoftmaxParams`` directly.

Coefficient sets, each written as ``exp(p) ~ a * ((p + b/a) * p + c/a)`` on ``(x0, 0]``:

| name        | a           | b/a                        | c/a                            | x0      |
|-------------|-------------|----------------------------|--------------------------------|---------|
| "reference" | 0.35815147  | 0.96963238 / 0.35815147    | 1.0 / 0.35815147               | -0.6931 |
| "paper"     | 0.3585      | 2 * 1.353                  | 1.353**2 + 0.344 / 0.3585      | -ln 2   |

"reference" is the HF / fairseq code's ``[a, b, c] = [0.35815147, 0.96963238, 1.0]`` (b/a and c/a
divided in float64, as that code does in Python). "paper" is the paper's
``0.3585 * (p + 1.353)**2 + 0.344`` expanded to the same integer structure:
``a * (p**2 + 2*1.353*p + 1.353**2) + 0.344 = a * ((p + 2*1.353) * p + 1.353**2 + 0.344/a)``.
Measured max |i-exp - exp| on (-ln2, 0] (tests/quant): 1.91e-3 (reference), 2.13e-3 (paper).
"""

from __future__ import annotations

import math

import numpy as np

from .._params import as_int, require_bits
from ..errors import DtypeError, RangeError
from ..spec.softmax import EXP_ROUNDING_MODES, SoftmaxParams
from .dyadic import dyadic

REFERENCE_A = 0.35815147
PAPER_A = 0.3585
COEFFICIENTS = {
    # name: (a, b/a, c/a, x0)
    "reference": (REFERENCE_A, 0.96963238 / REFERENCE_A, 1.0 / REFERENCE_A, -0.6931),
    "paper": (PAPER_A, 2 * 1.353, 1.353 ** 2 + 0.344 / PAPER_A, -math.log(2.0)),
}

_OWNER = "prepare_softmax"


def prepare_softmax(scale, *, coefficients: str = "reference", exp_clamp: int = 30, exp_bits: int = 16,
                    exp_requant_scale=None, exp_rounding: str = "half_even", output_bits: int = 8,
                    output_max=None, input_bits: int = 32) -> SoftmaxParams:
    """The ``SoftmaxParams`` of an int<input_bits> input whose real value is ``q * scale``.

    With ``(a, b/a, c/a, x0)`` from ``COEFFICIENTS[coefficients]``, ``S = scale`` and
    ``n = exp_clamp``, every operation a float64 one (IEEE, correctly rounded):
      x0_int = floor(x0 / S),  b_int = floor((b/a) / S),  c_int = floor((c/a) / (S * S))
      exp_scale = a * S**2 / 2**n                      (float64; the real value of one exp_int unit)
      exp_requant_scale (default 1 / (2**(exp_bits-1) - 1): exp(0) = 1 maps to the top code)
      (exp_multiplier, exp_shift) = dyadic(exp_scale / exp_requant_scale)
      output_max (default 2**output_bits - 1),  out_scale = 2**-output_bits

    Raises ``DtypeError`` for a non-number / non-int argument and ``RangeError`` for a value out of
    range, including constants whose polynomial could leave int64 (proved exactly by
    ``SoftmaxParams``) and a requantization ratio ``>= 2**31`` (``dyadic``). i_exp's own int64 limit
    (``params.exp_int_max()``) is not required here: i_softmax folds it away.
    """
    s = _positive_real("scale", scale)
    if coefficients not in COEFFICIENTS:
        raise RangeError(f"{_OWNER}: coefficients={coefficients!r} is not one of "
                         f"{', '.join(map(repr, COEFFICIENTS))}", argument="coefficients", value=coefficients)
    if exp_rounding not in EXP_ROUNDING_MODES:
        raise RangeError(f"{_OWNER}: exp_rounding={exp_rounding!r} is not one of {', '.join(EXP_ROUNDING_MODES)}",
                         argument="exp_rounding", value=exp_rounding)
    exp_clamp = require_bits(_OWNER, "exp_clamp", exp_clamp, 0, 62)
    exp_bits = require_bits(_OWNER, "exp_bits", exp_bits, 2, 32)
    output_bits = require_bits(_OWNER, "output_bits", output_bits, 1, 31)
    input_bits = require_bits(_OWNER, "input_bits", input_bits, 2, 63)
    output_max = (1 << output_bits) - 1 if output_max is None else as_int(_OWNER, "output_max", output_max)
    if exp_requant_scale is None:
        exp_requant_scale = 1.0 / ((1 << (exp_bits - 1)) - 1)
    requant = _positive_real("exp_requant_scale", exp_requant_scale)

    a, b_over_a, c_over_a, x0 = COEFFICIENTS[coefficients]
    x0_int = _floor_of_ratio("x0_int", x0, s)
    b_int = _floor_of_ratio("b_int", b_over_a, s)
    c_int = _floor_of_ratio("c_int", c_over_a, s * s)
    exp_scale = a * s * s / 2.0 ** exp_clamp
    multiplier, shift = dyadic(exp_scale / requant)
    return SoftmaxParams(x0_int=x0_int, b_int=b_int, c_int=c_int, exp_clamp=exp_clamp,
                         exp_multiplier=multiplier, exp_shift=shift, exp_bits=exp_bits,
                         exp_rounding=exp_rounding, output_bits=output_bits, output_max=output_max,
                         input_bits=input_bits, exp_scale=exp_scale, out_scale=2.0 ** -output_bits)


def _floor_of_ratio(name: str, numerator: float, denominator: float) -> int:
    """``floor(fl64(numerator / denominator))`` as a Python int (exact: a finite float is a rational)."""
    ratio = numerator / denominator if denominator > 0.0 else math.inf    # S * S can underflow to 0
    if not math.isfinite(ratio):
        raise RangeError(f"{_OWNER}: {name} = floor({numerator!r} / {denominator!r}) is not finite (scale too "
                         f"small)", argument="scale", value=denominator)
    return math.floor(ratio)


def _positive_real(name: str, value) -> float:
    """A finite float > 0 from a Python/NumPy real scalar (bool, complex, arrays and strings refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DtypeError(f"{_OWNER}: {name} must be a real number, got {value!r}", argument=name, value=value)
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise RangeError(f"{_OWNER}: {name} = {value!r} must be finite and > 0", argument=name, value=value)
    return value
