"""Scalar spec of i-GELU (I-BERT Alg. 2): its params and (to be written) its functions."""

from __future__ import annotations

from dataclasses import dataclass

from .._params import (PerChannelFloat, PerChannelInt, as_float_or_floats, as_int_or_ints,
                       channel_count, pick_channel, require_bits)


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
