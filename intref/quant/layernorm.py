"""Build time for the integer LayerNorm: float ``gamma``/``beta`` to ``LayerNormParams``.

Floats are allowed here; what leaves is integers (``bias_int``, ``shift``) plus the metadata scale
``out_scale``. ``bias_int`` is computed exactly from the float64 values given (no float rounding),
so the same ``gamma``/``beta`` give the same integers on every machine.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .._checks import first_index
from .._params import require_bits
from ..errors import DtypeError, RangeError, ShapeError
from ..inttypes import INT64_MAX
from ..kernels.rounding import div_round_half_even
from ..spec.layernorm import MAX_GUARD_SHIFT, LayerNormParams
from ..spec.layernorm_bounds import min_safe_shift, row_sum_bound, variance_bound

_WHERE = "prepare_layernorm"
SCALE_FRACTION_BITS = 30   # out_scale = sqrt(C) / 2**30 * gamma


def prepare_layernorm(gamma, beta, *, input_bits: int = 22, shift="auto") -> LayerNormParams:
    """``LayerNormParams`` for ``LayerNorm(x) * gamma + beta`` over ``C = len(gamma)`` channels.

      gamma, beta  1-D real arrays of equal length C (finite; ``gamma[c] != 0``, since the
                   folded bias ``beta/gamma`` is undefined otherwise)
      input_bits   REQUIRE of the kernel input: ``int<input_bits>`` (2..63; I-BERT: 22)
      shift        ``"auto"``: the smallest guard shift with ``variance_bound(C, input_bits, shift)
                   <= 2**63 - 1`` (``intref.spec.layernorm``), i.e. the variance provably fits
                   int64 for every legal input; or an explicit int (a trained I-BERT shift),
                   checked the same way.

    Constants: ``bias_int[c] = floor(beta[c] / gamma[c] / (sqrt(C) / 2**30))``, exact (rational
    arithmetic on the float64 values and an integer square root, no rounding);
    ``out_scale[c] = sqrt(C) / 2**30 * gamma[c]`` (float64 metadata; negative for negative gamma).

    Raises ``ShapeError`` (not 1-D, empty, lengths differ), ``DtypeError`` (not real numbers, a
    non-int shift), ``RangeError`` (a non-finite value or ``gamma == 0``, naming the channel; a shift
    or input width that is unsafe in int64; a ``bias_int`` that would push the output out of int64).
    """
    gamma = _real_vector("gamma", gamma)
    beta = _real_vector("beta", beta)
    if gamma.shape != beta.shape:
        raise ShapeError(f"{_WHERE}: gamma has {gamma.shape[0]} channels and beta {beta.shape[0]}",
                         argument="beta")
    zero = gamma == 0
    if zero.any():
        (c,) = first_index(zero)
        raise RangeError(f"{_WHERE}: gamma[{c}] = 0: the folded bias beta/gamma is undefined",
                         argument="gamma", index=(c,), value=0.0)
    input_bits = require_bits(_WHERE, "input_bits", input_bits, 2, 63)
    channels = gamma.shape[0]
    if row_sum_bound(channels, input_bits) > 1 << 63:
        raise RangeError(f"{_WHERE}: a row of {channels} int{input_bits} values can sum outside int64",
                         argument="input_bits", value=input_bits)
    shift = _guard_shift(shift, channels, input_bits)
    bias_int = tuple(floor_div_sqrt(Fraction(float(b)) * (1 << SCALE_FRACTION_BITS) / Fraction(float(g)),
                                    channels) for g, b in zip(gamma, beta))
    unit = math.sqrt(channels) / (1 << SCALE_FRACTION_BITS)
    out_scale = tuple(unit * float(g) for g in gamma)
    return LayerNormParams(channels=channels, shift=shift, bias_int=bias_int, input_bits=input_bits,
                           out_scale=out_scale)


def floor_div_sqrt(t: Fraction, channels: int) -> int:
    """``floor(t / sqrt(channels))`` exactly, for a rational ``t`` and an integer ``channels >= 1``.

    ``t >= 0``: the largest ``k >= 0`` with ``k**2 * C <= t**2``, i.e. ``isqrt(floor(t**2 / C))``.
    ``t < 0``: ``-ceil(|t| / sqrt(C))``, the smallest ``k`` with ``k**2 >= ceil(t**2 / C)``.
    """
    square = t * t / channels
    if t >= 0:
        return math.isqrt(math.floor(square))
    return -(math.isqrt(math.ceil(square) - 1) + 1)


def layernorm_error_bound(q, params: LayerNormParams) -> np.ndarray:
    """The derived bound on ``|result * out_scale - float64 LayerNorm|`` per element of ``q``.

    Evaluates the formula of ``intref.kernels.layernorm`` (docstring) with ``|gamma|`` recovered from
    ``out_scale``; ``inf`` for rows with ``T <= E``, where the bound does not apply. Float64
    evaluation (relative error about ``C * 2**-53``), for analysis and tests, not for the runtime.
    """
    q = np.asarray(q).astype(np.int64)
    channels, shift = params.channels, params.shift
    root_c = math.sqrt(channels)
    unit = root_c / (1 << SCALE_FRACTION_BITS)
    row_sum = np.sum(q, axis=-1, keepdims=True, dtype=np.int64)
    mean = div_round_half_even(row_sum, channels)
    remainder = row_sum - channels * mean                      # exact: |C * mean| <= C * 2**(b-1)
    d = (q - mean).astype(np.float64) + remainder.astype(np.float64) / channels   # q - mu
    norm_t = np.sqrt(np.sum(d * d, axis=-1, keepdims=True))   # T = sqrt(C) * sigma
    e = root_c * (2.0 ** shift - 0.5) + 2.0 ** shift
    valid = norm_t > e
    safe_t = np.where(valid, norm_t, 2 * e + 1)
    z = np.abs(d) * root_c / safe_t
    gamma = np.abs(np.asarray(params.out_scale, dtype=np.float64)) / unit
    bound = gamma * (2 * unit + (z * safe_t + root_c / 2) / 2.0 ** 31 + (root_c / 2 + z * e) / (safe_t - e))
    return np.where(valid, bound, np.inf)


def _guard_shift(shift, channels: int, input_bits: int) -> int:
    if isinstance(shift, str) and shift == "auto":
        return min_safe_shift(channels, input_bits)
    if isinstance(shift, (bool, np.bool_)) or not isinstance(shift, (int, np.integer)):
        raise DtypeError(f"{_WHERE}: shift must be 'auto' or an int, got {shift!r}", argument="shift",
                         value=shift)
    shift = int(shift)
    if not 0 <= shift <= MAX_GUARD_SHIFT:
        raise RangeError(f"{_WHERE}: shift={shift} is outside 0..{MAX_GUARD_SHIFT}", argument="shift", value=shift)
    bound = variance_bound(channels, input_bits, shift)
    if bound > INT64_MAX:
        raise RangeError(f"{_WHERE}: shift={shift} is unsafe: sum((y >> shift)**2) can reach {bound} > "
                         f"2**63 - 1 for {channels} int{input_bits} inputs; the smallest safe shift is "
                         f"{min_safe_shift(channels, input_bits)}", argument="shift", value=shift)
    return shift


def _real_vector(name: str, values) -> np.ndarray:
    """A non-empty 1-D float64 array of finite values (ints and floats accepted)."""
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise DtypeError(f"{_WHERE}: {name} must hold real numbers, got dtype {array.dtype}", argument=name)
    if array.ndim != 1 or array.shape[0] == 0:
        raise ShapeError(f"{_WHERE}: {name} must be a non-empty 1-D array, got shape {array.shape}",
                         argument=name)
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        (c,) = first_index(bad)
        raise RangeError(f"{_WHERE}: {name}[{c}] = {array[c]} is not finite", argument=name, index=(c,),
                         value=float(array[c]))
    return array
