"""Dyadic multipliers: a real scale ratio as ``multiplier / 2**shift`` with a 31-bit mantissa.

Build time only (floats allowed here). This reproduces I-BERT's ``batch_frexp`` exactly:

    real = mant * 2**e, 0.5 <= |mant| < 1         (``frexp``; the sign stays on the mantissa)
    multiplier = round_half_away(mant * 2**31)     (``Decimal.quantize(1, ROUND_HALF_UP)``, which
                                                    rounds ties away from zero, for both signs)
    shift = 31 - e

so ``real ~= multiplier / 2**shift`` with ``2**30 <= |multiplier| <= 2**31``: a mantissa can round
up to exactly ``2**31`` and is kept there (I-BERT does not renormalise it). ``real == 0`` gives
``(0, 31)``, as ``batch_frexp`` does.

``mant * 2**31`` is an exact float64 (a power-of-two scaling of a 53-bit mantissa), so rounding
it half away from zero with ``floor(|v| + 0.5)`` is exact: ``|v| < 2**31`` leaves 22 fractional
bits, and ``|v| + 0.5`` is exactly representable.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import first_index
from ..errors import RangeError

MANTISSA_BITS = 31


def dyadic(real):
    """``(multiplier, shift)`` with ``real ~= multiplier / 2**shift``; vectorized over arrays.

    A Python/NumPy float gives two Python ints; an array gives two int64 arrays of its shape.
    REQUIRE finite ``real`` with ``|real| < 2**31`` (so ``shift >= 0``); zero is allowed.
    """
    if np.ndim(real) == 0:
        multiplier, shift = _dyadic_array(np.asarray(real, dtype=np.float64).reshape(1))
        return int(multiplier[0]), int(shift[0])
    return _dyadic_array(np.asarray(real, dtype=np.float64))


def _dyadic_array(real: np.ndarray):
    bad = ~np.isfinite(real) | (np.abs(real) >= 2.0 ** MANTISSA_BITS)
    if bad.any():
        index = first_index(bad)
        raise RangeError(f"dyadic: real{list(index)} = {real[index]!r} is not finite or has |real| >= 2**31",
                         argument="real", index=index, value=float(real[index]))
    mantissa, exponent = np.frexp(real)
    scaled = np.ldexp(mantissa, MANTISSA_BITS)            # exact: |scaled| in [2**30, 2**31)
    magnitude = np.floor(np.abs(scaled) + 0.5)            # exact: half away from zero
    multiplier = (np.sign(scaled) * magnitude).astype(np.int64)
    shift = (MANTISSA_BITS - exponent).astype(np.int64)   # frexp(0) = (0, 0): shift 31
    return multiplier, shift


def dyadic_value(multiplier: int, shift: int) -> float:
    """The real number ``multiplier / 2**shift`` (exact in float64 for a 32-bit multiplier)."""
    return math.ldexp(float(multiplier), -int(shift))
