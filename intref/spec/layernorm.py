"""Scalar spec of the integer LayerNorm (I-BERT Alg. 4; HF ``quant_modules.IntLayerNorm``, made exact).

Normative definition: ``intref.kernels.layernorm.i_layernorm`` must equal ``i_layernorm`` below
bit for bit. Notation for one row of ``C = params.channels`` values, ``b = params.input_bits``,
``s = params.shift``, ``R = 2**b - 1`` (the widest spread of an ``int<b>`` row)::

    mean   = round_half_even(sum(q) / C)       exact division, ties to even        |sum| <= C*2**(b-1)
    y      = q - mean                                                               |y|  <= R
    ysh    = floor(y / 2**s)                   arithmetic shift right               |ysh| <= ceil(R/2**s)
    var    = sum(ysh**2)                                                            var <= variance_bound(C, b, s) < 2**63
    r      = isqrt(var)                        floor(sqrt(var)), the paper's Newton  r < 2**31.5
    std    = r * 2**s
    factor = floor(2**31 / std), 0 if std == 0                                      factor <= 2**31
    norm   = floor(y * factor / 2)             ~ 2**30 * y / std                    -2**32 < y*factor < 2**32
    result = norm + bias_int[c]                                                     see output_range()

Real value: ``result * out_scale[c]`` with ``out_scale = sqrt(C) / 2**30 * gamma[c]`` (metadata):
``std ~ sqrt(C) * sigma``, so ``norm * sqrt(C) / 2**30 ~ (q - mu) / sigma``.

Why ``|y * factor| < 2**32`` (the multiply fits int64 with room to spare). Let ``var >= 1``, so
``r >= 1``. Each term of ``var`` is at most ``var``, so ``|ysh_i| <= sqrt(var)`` and, being an
integer, ``|ysh_i| <= r``. Write ``y = ysh * 2**s + e`` with ``0 <= e < 2**s``:

- ``y < 0``: ``ysh <= -1`` and ``y >= ysh * 2**s >= -r * 2**s = -std``, so ``y*factor >= -2**31``;
- ``y >= 0``: ``y <= (r + 1) * 2**s - 1 < 2 * std``; with ``factor <= 2**(31-s) / r`` this gives
  ``y*factor <= 2**31 + (2**31 - 2**(31-s)) / r <= 2**32 - 2**(31-s)`` (for ``s <= 31``; for
  ``s >= 32`` the factor is 0).

So ``-2**30 <= norm <= 2**31 - 2**(30-s)``: the normalised part fits int32. When ``var == 0`` (a
constant row, or every ``|y| < 2**s`` with ``y >= 0``) the factor is 0 and ``norm == 0``.
``output_range()`` also uses ``|y| <= R``; both ends are attained (tests/spec) when ``C >= 2**(s+2) - 1``
and ``s <= b - 2`` (``q = (2**(s+1) - 1, 0, ..., 0)`` and ``q = (-2**s, 0, ..., 0)``, bias 0).

Differences from the float32 reference, on purpose:
- the mean is the exact ``round_half_even(sum/C)``; the reference rounds a float32 mean whose
  value depends on the summation order (torch CPU and NumPy round it differently in 2 of 1000
  768-wide int22 rows);
- ``std`` uses the exact ``isqrt``; the reference takes ``floor(torch.sqrt(var))`` in float32,
  which differs when ``var > 2**24`` or lies next to a perfect square;
- ``var``, ``y * factor`` and the shifts are exact integers; the reference holds them in float32
  (24-bit significand), so its "integers" above ``2**24`` are rounded;
- ``std == 0`` gives ``norm = 0`` (the result is ``bias_int``) where the reference divides by zero
  and returns NaN;
- ``eps`` is ignored, as in the reference's quant mode (I-BERT has no ``eps`` in Alg. 4);
- ``shift`` is a fixed parameter: the reference raises it during training whenever
  ``var >= 2**32``; here it only has to keep ``var`` inside int64 (see ``variance_bound``).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .._params import as_float_or_floats, as_int_or_ints, require_bits
from ..errors import DtypeError, RangeError, ShapeError
from ..inttypes import INT64_MAX, INT64_MIN
from .sqrt import isqrt
from .layernorm_bounds import FACTOR_NUMERATOR, min_safe_shift, normalized_range, row_sum_bound, variance_bound
from .rounding import div_round_half_even

MAX_GUARD_SHIFT = 62


@dataclass(frozen=True)
class LayerNormParams:
    """Integer constants of the integer LayerNorm (I-BERT Alg. 4 and the reference code).

      channels    C, the length of the normalised (last) axis, 1 .. 2**24
      shift       overflow guard: the variance sums (y >> shift)**2 (reference: from training)
      bias_int    floor(beta_c / out_scale_c) per channel (beta/gamma folded into the integers)
      input_bits  REQUIRE q in int<input_bits>
      out_scale   sqrt(C) / 2**30 * gamma_c per channel: real value is result * out_scale

    ERROR_IF (``RangeError``): ``C * 2**(input_bits-1) > 2**63`` (the row sum could leave int64),
    ``variance_bound(C, input_bits, shift) > 2**63 - 1`` (the variance could), or ``output_range()``
    leaves int64 (a ``bias_int`` too large). Every object that exists is therefore safe in int64
    for every legal input.
    """

    channels: int
    shift: int
    bias_int: tuple[int, ...]
    input_bits: int
    out_scale: tuple[float, ...] = None

    def __post_init__(self):
        owner = "LayerNormParams"
        object.__setattr__(self, "channels", require_bits(owner, "channels", self.channels, 1, 1 << 24))
        object.__setattr__(self, "shift", require_bits(owner, "shift", self.shift, 0, MAX_GUARD_SHIFT))
        object.__setattr__(self, "input_bits", require_bits(owner, "input_bits", self.input_bits, 2, 63))
        bias = as_int_or_ints(owner, "bias_int", self.bias_int)
        scale = as_float_or_floats(owner, "out_scale", self.out_scale)
        per_channel = [("bias_int", bias)] + ([("out_scale", scale)] if scale is not None else [])
        for name, value in per_channel:
            if not isinstance(value, tuple) or len(value) != self.channels:
                raise ShapeError(f"{owner}: {name} must hold {self.channels} per-channel values", argument=name)
        object.__setattr__(self, "bias_int", bias)
        object.__setattr__(self, "out_scale", scale)
        self._require_int64_safe(owner)

    def _require_int64_safe(self, owner: str) -> None:
        c, b, s = self.channels, self.input_bits, self.shift
        if row_sum_bound(c, b) > 1 << 63:
            raise RangeError(f"{owner}: a row of {c} int{b} values can sum outside int64 "
                             f"(|sum| up to {c} * 2**{b - 1})", argument="input_bits", value=b)
        if variance_bound(c, b, s) > INT64_MAX:
            raise RangeError(f"{owner}: shift={s} is unsafe: sum((y >> shift)**2) can reach "
                             f"{variance_bound(c, b, s)} > 2**63 - 1 for {c} int{b} inputs; the smallest "
                             f"safe shift is {min_safe_shift(c, b)}", argument="shift", value=s)
        lo, hi = normalized_range(c, b, s)
        if INT64_MIN <= lo + min(self.bias_int) and hi + max(self.bias_int) <= INT64_MAX:
            return
        for index, bias in enumerate(self.bias_int):
            if not (INT64_MIN <= lo + bias and hi + bias <= INT64_MAX):
                raise RangeError(f"{owner}: bias_int[{index}] = {bias} puts the output outside int64 "
                                 f"(normalised part in [{lo}, {hi}])", argument="bias_int",
                                 index=(index,), value=bias)

    def input_range(self) -> tuple[int, int]:
        """``(lo, hi)`` of a legal input value: the range of ``int<input_bits>``."""
        return -(1 << (self.input_bits - 1)), (1 << (self.input_bits - 1)) - 1

    def output_range(self) -> tuple[int, int]:
        """Exact-integer worst-case ``(lo, hi)`` of every result, over every legal input.

        ``normalized_range(C, input_bits, shift)`` plus the smallest / largest ``bias_int``.
        Both ends are reached when ``C >= 2**(shift+2) - 1`` and ``shift <= input_bits - 2``
        (module docstring); otherwise the range is a sound bound. It always lies inside int64.
        """
        lo, hi = normalized_range(self.channels, self.input_bits, self.shift)
        return lo + min(self.bias_int), hi + max(self.bias_int)


class LayerNormSteps(NamedTuple):
    """Every intermediate of ``i_layernorm`` for one row (for traces and the tests)."""

    mean: int
    y: tuple[int, ...]
    ysh: tuple[int, ...]
    var: int
    std: int
    factor: int
    norm: tuple[int, ...]
    result: tuple[int, ...]


def layernorm_steps(row: Sequence[int], params: LayerNormParams) -> LayerNormSteps:
    """``i_layernorm`` with every intermediate kept; see ``i_layernorm`` for the contract."""
    row = _require_row(row, params)
    channels, shift = params.channels, params.shift
    mean = div_round_half_even(sum(row), channels)         # |sum| <= C * 2**(b-1) <= 2**63
    y = tuple(q - mean for q in row)                       # |y| <= 2**b - 1
    ysh = tuple(v >> shift for v in y)                     # floor(y / 2**shift)
    var = sum(v * v for v in ysh)                          # <= variance_bound(...) < 2**63
    std = isqrt(var) << shift                              # isqrt(var) < 2**31.5
    factor = FACTOR_NUMERATOR // std if std > 0 else 0     # std == 0: the row normalises to 0
    norm = tuple((v * factor) >> 1 for v in y)             # |v * factor| < 2**32
    result = tuple(n + b for n, b in zip(norm, params.bias_int))
    return LayerNormSteps(mean, y, ysh, var, std, factor, norm, result)


def i_layernorm(row: Sequence[int], params: LayerNormParams) -> list:
    """Integer LayerNorm of one row: ``floor(y * floor(2**31 / std) / 2) + bias_int[c]``.

    Spec (module docstring for the widths and the proofs)::

        REQUIRE len(row) == params.channels                                  (ShapeError)
        REQUIRE every q in int<params.input_bits>                            (RangeError)
        mean   = round_half_even(sum(row) / C)                               exact, ties to even
        y      = q - mean
        ysh    = floor(y / 2**shift)
        var    = sum(ysh**2)
        std    = isqrt(var) * 2**shift                                       exact floor sqrt
        factor = floor(2**31 / std)   if std > 0 else 0
        result = floor(y * factor / 2) + bias_int[c]

    Returns a list of ``C`` Python ints within ``params.output_range()``. The real value of
    ``result[c]`` is ``result[c] * params.out_scale[c]``, approximately
    ``gamma[c] * (q - mu) / sigma + beta[c]`` (population ``sigma``, no ``eps``).

    Source: I-BERT (Kim et al. 2021) Alg. 4 (I-Sqrt inside LayerNorm); HF transformers
    ``models/ibert/quant_modules.py`` ``IntLayerNorm.forward`` (quant mode) and the fairseq twin.
    Differences from that float32 reference (mean, sqrt, float32 intermediates, NaN on a constant
    row, eps) are listed in the module docstring.
    """
    return list(layernorm_steps(row, params).result)


def _require_row(row, params: LayerNormParams) -> list:
    """The row as a list of Python ints after the REQUIREs (length, integer type, range)."""
    where = "i_layernorm"
    if not isinstance(params, LayerNormParams):
        raise DtypeError(f"{where}: params must be LayerNormParams, got {type(params).__name__}",
                         argument="params")
    values = list(row)
    if len(values) != params.channels:
        raise ShapeError(f"{where}: row has {len(values)} values; params.channels is {params.channels}",
                         argument="row")
    lo, hi = params.input_range()
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not hasattr(v, "__index__"):
            raise DtypeError(f"{where}: row[{i}] = {v!r} is not an int", argument="row", index=(i,), value=v)
        v = operator.index(v)
        if not lo <= v <= hi:
            raise RangeError(f"{where}: row[{i}] = {v} is outside int{params.input_bits} [{lo}, {hi}]",
                             argument="row", index=(i,), value=v)
        out.append(v)
    return out
