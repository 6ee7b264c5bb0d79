"""Scalar spec of i-GELU (I-BERT Alg. 2, integer meaning of HF ``IntGELU``): params and function.

This is the normative definition; ``intref.kernels.gelu.i_gelu`` must equal it bit for bit.

Notation used below: ``n = input_bits``, ``B = b_int``, ``C = c_int``, ``K = shift_int``,
``g = guard_shift``, ``T = -B`` (the clip point of ``|q|``). The load-time proofs that every
intermediate stays in int64, and the exact output range, are in ``intref.spec.gelu_bounds``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._params import (
    PerChannelFloat,
    PerChannelInt,
    as_float_or_floats,
    as_int,
    as_int_or_ints,
    channel_count,
    pick_channel,
    require_bits,
)
from ..errors import DtypeError, RangeError, ShapeError
from .gelu_bounds import (all_channels_proven_int64, channel_output_range, int_type_range,
                          require_int64_intermediates)


@dataclass(frozen=True)
class GeluParams:
    """Integer constants of i-GELU (I-BERT Alg. 2 as the reference code computes it).

    With ``S`` the input scale and ``S' = S / k`` (``k = 1.4142`` in the reference):
      b_int       floor(b / S'), b = -1.769                         (REQUIRE b_int <= 0)
      c_int       floor((1/a) / S'**2), a = -0.2888                 (negative)
      shift_int   floor(1 / S_erf), S_erf = a * S'**2 * 2**guard_shift (negative)
      guard_shift the polynomial is floored by 2**guard_shift (reference: 14)
      input_bits  REQUIRE q in int<input_bits>
      out_scale   S * S_erf / 2 (negative): real value of the result is result * out_scale

    ERROR_IF (checked here, so every GeluParams that exists is safe to run in int64): some
    intermediate of ``i_gelu`` (see its table) leaves int64 for some ``q`` in ``int<input_bits>``,
    in some channel. The proof is an exact interval analysis with Python ints; the last product
    ``q * (y + K)`` is bounded by ``output_range``. RangeError names the channel and intermediate.
    """

    b_int: PerChannelInt
    c_int: PerChannelInt
    shift_int: PerChannelInt
    guard_shift: int
    input_bits: int
    out_scale: PerChannelFloat = None

    _PER_CHANNEL = ("b_int", "c_int", "shift_int", "out_scale")

    def __post_init__(self):
        owner = "GeluParams"
        for name in ("b_int", "c_int", "shift_int"):
            object.__setattr__(self, name, as_int_or_ints(owner, name, getattr(self, name)))
        object.__setattr__(self, "guard_shift", require_bits(owner, "guard_shift", self.guard_shift, 0, 62))
        object.__setattr__(self, "input_bits", require_bits(owner, "input_bits", self.input_bits, 2, 63))
        object.__setattr__(self, "out_scale", as_float_or_floats(owner, "out_scale", self.out_scale))
        channel_count(owner, self, self._PER_CHANNEL)
        if self.channels is not None and all_channels_proven_int64(*self.columns(), self.guard_shift,
                                                                   self.input_bits):
            return          # every channel proven at once; else the exact proof names the channel
        for c, b, cc, k in self._constants():
            require_int64_intermediates(owner, c, b, cc, k, self.guard_shift, self.input_bits)

    @property
    def channels(self):
        return channel_count("GeluParams", self, self._PER_CHANNEL)

    def channel(self, c: int) -> GeluParams:
        return pick_channel(self, c, self._PER_CHANNEL)

    def _constants(self):
        """``(channel, b_int, c_int, shift_int)`` per channel; channel is ``None`` per tensor."""
        if self.channels is None:
            return [(None, self.b_int, self.c_int, self.shift_int)]
        return [(c, *values) for c, values in enumerate(zip(*self.columns()))]

    def output_range(self, in_lo: int, in_hi: int) -> tuple:
        """``(lo, hi)`` bounding ``i_gelu(q, channel c)`` over every channel and every integer
        ``q`` in ``[in_lo, in_hi]``. REQUIRE ``in_lo <= in_hi``, both in ``int<input_bits>``
        (else RangeError).

        Exact integer analysis, per channel and per piece of ``q``:
          q == 0                 result 0
          q >= T or q <= -T      (the clip) y is constant, result linear in q: exact at the ends
          0 < |q| < T            with u = |q| and P(u) = (u + B)**2 + C the floored polynomial
                                 obeys ``s*P/2**g - 1 < y <= s*P/2**g`` (s = sign q), so the result
                                 lies between two cubics ``u*((u + B)**2 + E) / 2**g``; each is
                                 minimised/maximised exactly over the integers (ends plus the
                                 integers around its critical points, found with math.isqrt).
        Sound always; tight up to the floor: ``hi`` exceeds the true maximum (and ``lo`` undercuts
        the true minimum) by less than ``min(max |q|, T)`` over the range, i.e. one unit of ``y``
        times ``|q|``.
        """
        in_lo, in_hi = self.checked_input_range(in_lo, in_hi)
        ranges = [channel_output_range(b, c, k, self.guard_shift, in_lo, in_hi)
                  for _, b, c, k in self._constants()]
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    def checked_input_range(self, in_lo: int, in_hi: int) -> tuple:
        """``(in_lo, in_hi)`` as Python ints; RangeError unless ``in_lo <= in_hi``, both in
        ``int<input_bits>`` (``output_range``'s REQUIRE)."""
        in_lo, in_hi = as_int("GeluParams.output_range", "in_lo", in_lo), as_int(
            "GeluParams.output_range", "in_hi", in_hi)
        q_lo, q_hi = int_type_range(self.input_bits)
        if not q_lo <= in_lo <= in_hi <= q_hi:
            raise RangeError(f"GeluParams.output_range: [{in_lo}, {in_hi}] is empty or leaves "
                             f"int{self.input_bits} [{q_lo}, {q_hi}]", argument="in_lo", value=(in_lo, in_hi))
        return in_lo, in_hi

    def columns(self) -> tuple:
        """``(b_int, c_int, shift_int)``, each a tuple of one int per channel (one per tensor)."""
        count = self.channels or 1
        return tuple(v if isinstance(v, tuple) else (v,) * count for v in (self.b_int, self.c_int, self.shift_int))


def i_gelu(q: int, params: GeluParams) -> int:
    """i-GELU of one integer: ``q * (floor(sgn(q) * ((min(|q|, -b_int) + b_int)**2 + c_int)
    / 2**guard_shift) + shift_int)``.

    Real meaning: with ``x = q * S``, ``result * out_scale ~= x/2 * (1 + erf(x/sqrt 2))`` where
    ``erf(u) ~= sgn(u) * (a * (min(|u|, -b) + b)**2 + 1)`` (I-BERT Alg. 2, a = -0.2888,
    b = -1.769). ``out_scale`` is negative, so the integer carries the opposite sign of GELU.

    REQUIRE  q in int<n>: -2**(n-1) <= q <= 2**(n-1) - 1, n = params.input_bits (else RangeError)
    REQUIRE  params per tensor (per-channel params: call with params.channel(c)) (else ShapeError)

        sgn    = sign(q)                         -1, 0 or 1 (0 at q == 0)
        t      = min(|q|, -B)                    0 <= t <= t_max = min(2**(n-1), T)
        d      = t + B                           B <= d <= 0
        P      = d*d + C                         (B + t_max)**2 + C <= P <= B*B + C
        y      = floor(sgn * P / 2**g)           floor: toward -infinity, for negatives too
                                                 (an arithmetic shift right, never truncation)
        result = q * (y + K)                     exact, no rounding, no clamp

    Widths: GeluParams refuses constants for which ``-B``, ``d*d``, ``P``, ``-P``, ``y + K`` or
    ``result`` leave int64 for some q in int<n> (result bounded by ``params.output_range``).
    Sizes with ``prepare_gelu``'s reference constants (q over all of int<n>):
      n = 16, S = 4/32767, g = 14:   B = -20494, C = -464705548 (29 bits), |P| < 2**29,
                                     |y + K| < 2**16, result in [-1858806376, 77842790]
      n = 22, S = 4/(2**21-1), g = 14: |C| < 2**41, |y + K| < 2**28, |result| < 2**49
      n = 32, S = 2e-4 (an HF-like accumulator scale), g = 14: |C| < 2**28, |result| < 2**46
      n = 8, S = 4/127, g = 0 (the auto guard): |C| < 2**13, |result| < 2**21
      n = 32, S = 4/(2**31-1): g = 14 is refused (|result| ~ 2**79); auto g = 45 gives
                                     |C| < 2**61, |y + K| < 2**17, |result| < 2**48

    Source: I-BERT (Kim et al., ICML 2021) Alg. 2; HF transformers
    ``models/ibert/quant_modules.py`` ``IntGELU.forward`` with ``quant_mode``. Where it knowingly
    differs from the float32 reference: ``q`` is the exact integer (the reference's ``x / s``
    drifts by an ulp); ``P`` and the product are exact integers (float32 rounds them above 2**24);
    the floor is exact. The constants are parameters: ``intref.quant.gelu.prepare_gelu`` derives
    them in clean float64 (``shift_int`` as a true floor, torch >= 1.13; older torch truncated);
    a converter may pass the reference's float32-derived ones instead.
    """
    if not isinstance(params, GeluParams):
        raise DtypeError(f"i_gelu: params must be a GeluParams, got {type(params).__name__}", argument="params")
    if params.channels is not None:
        raise ShapeError("i_gelu: params are per channel; the scalar spec takes params.channel(c)",
                         argument="params")
    q = as_int("i_gelu", "q", q)
    lo, hi = int_type_range(params.input_bits)
    if not lo <= q <= hi:
        raise RangeError(f"i_gelu: q = {q} is outside int{params.input_bits} [{lo}, {hi}]",
                         argument="q", value=q)
    sgn = (q > 0) - (q < 0)
    t = min(abs(q), -params.b_int)
    poly = (t + params.b_int) ** 2 + params.c_int
    y = (sgn * poly) >> params.guard_shift
    return q * (y + params.shift_int)
