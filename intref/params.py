"""Frozen parameter objects of the nonlinear kernels: integer constants plus float metadata.

``intref.quant.prepare_*`` builds them from float scales at build time; a converter may also
build them directly from integers it derived itself (the HF I-BERT import does). The kernels and
their scalar specs read only the integer fields. ``out_scale`` / ``exp_scale`` are metadata for
people and tools (the real value of a result is ``result * out_scale``); no computation reads them.

Per-channel constants are tuples of Python ints indexed by the last axis of the kernel input; a
per-tensor constant is a plain int. ``params.channel(c)`` gives the per-tensor params of channel
``c``, which is what the scalar specs consume. Nothing here imports NumPy arrays into the fields:
they are plain Python values, so a params object prints, compares and serialises exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Tuple, Union

from .errors import DtypeError, RangeError, ShapeError

PerChannelInt = Union[int, Tuple[int, ...]]
PerChannelFloat = Union[float, Tuple[float, ...]]


def as_int(owner: str, name: str, value) -> int:
    """A Python int from an int or NumPy integer; bool and float are refused."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise DtypeError(f"{owner}: {name} must be an int, got {value!r}", argument=name, value=value)
    return int(value.__index__())


def as_int_or_ints(owner: str, name: str, value) -> PerChannelInt:
    """An int, or a tuple of ints (from a list, tuple or 1-D integer array)."""
    if hasattr(value, "__index__") and not isinstance(value, bool):
        return int(value.__index__())
    if getattr(value, "ndim", 1) != 1:
        raise ShapeError(f"{owner}: {name} must be an int or a 1-D sequence of ints", argument=name)
    try:
        items = list(value)
    except TypeError:
        raise DtypeError(f"{owner}: {name} must be an int or a sequence of ints, got {value!r}",
                         argument=name, value=value) from None
    return tuple(as_int(owner, f"{name}[{i}]", v) for i, v in enumerate(items))


def as_float_or_floats(owner: str, name: str, value) -> PerChannelFloat:
    """Metadata scale(s): a float or a tuple of finite floats."""
    if getattr(value, "ndim", None) == 0 or isinstance(value, (int, float)):
        value = float(value)
        if not math.isfinite(value):
            raise RangeError(f"{owner}: {name} = {value} is not finite", argument=name, value=value)
        return value
    return tuple(as_float_or_floats(owner, f"{name}[{i}]", v) for i, v in enumerate(value))


def channel_count(owner: str, params, names) -> Union[int, None]:
    """The common length of the per-channel fields ``names`` (``None`` if all are scalars)."""
    lengths = {len(getattr(params, n)) for n in names if isinstance(getattr(params, n), tuple)}
    if len(lengths) > 1:
        raise ShapeError(f"{owner}: per-channel fields {', '.join(names)} have different lengths "
                         f"{sorted(lengths)}", argument=names[0])
    return lengths.pop() if lengths else None


def pick_channel(params, c: int, names):
    """``params`` with every per-channel field in ``names`` replaced by its entry ``c``."""
    picked = {n: getattr(params, n)[c] for n in names if isinstance(getattr(params, n), tuple)}
    return replace(params, **picked)


def require_bits(owner: str, name: str, value: int, lo: int, hi: int) -> int:
    value = as_int(owner, name, value)
    if not lo <= value <= hi:
        raise RangeError(f"{owner}: {name} = {value} is outside {lo}..{hi}", argument=name, value=value)
    return value


@dataclass(frozen=True)
class GeluParams:
    """Integer constants of i-GELU (I-BERT Alg. 2 as the reference code computes it).

    With ``S`` the input scale and ``S' = S / k`` (``k = 1.4142`` in the reference):
      b_int       floor(b / S'), b = -1.769                         (negative)
      c_int       floor((1/a) / S'**2), a = -0.2888                 (negative)
      shift_int   floor(1 / S_erf), S_erf = a * S'**2 * 2**guard_shift (negative)
      guard_shift the polynomial is floored by 2**guard_shift (reference: 14)
      input_bits  REQUIRE q in int<input_bits>
      out_scale   S * S_erf / 2 (negative): real value of the result is result * out_scale
    """

    b_int: PerChannelInt
    c_int: PerChannelInt
    shift_int: PerChannelInt
    guard_shift: int
    input_bits: int
    out_scale: PerChannelFloat

    _PER_CHANNEL = ("b_int", "c_int", "shift_int", "out_scale")

    def __post_init__(self):
        owner = "GeluParams"
        for name in ("b_int", "c_int", "shift_int"):
            object.__setattr__(self, name, as_int_or_ints(owner, name, getattr(self, name)))
        object.__setattr__(self, "guard_shift", require_bits(owner, "guard_shift", self.guard_shift, 0, 62))
        object.__setattr__(self, "input_bits", require_bits(owner, "input_bits", self.input_bits, 2, 63))
        object.__setattr__(self, "out_scale", as_float_or_floats(owner, "out_scale", self.out_scale))
        channel_count(owner, self, self._PER_CHANNEL)

    @property
    def channels(self):
        return channel_count("GeluParams", self, self._PER_CHANNEL)

    def channel(self, c: int) -> "GeluParams":
        return pick_channel(self, c, self._PER_CHANNEL)


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
