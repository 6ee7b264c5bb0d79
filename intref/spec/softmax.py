"""Scalar spec of i-exp and the integer softmax (I-BERT Alg. 3, as the reference code computes it).

Sources: Kim et al., "I-BERT: Integer-only BERT Quantization", ICML 2021, Alg. 3 (i-exp, I-Poly)
and HF ``transformers/models/ibert/quant_modules.py`` ``IntSoftmax`` / ``int_exp`` /
``int_polynomial`` with ``quant_mode`` (identical to the official fairseq ``quant_modules.py``).
The reference computes everything in float32 tensors holding integers; this is the integer meaning
of that code, made exact. ``intref.kernels.softmax`` must equal these functions bit for bit.

The algorithm, for one row of int<input_bits> values ``q`` (``n = exp_clamp``, ``B = input_bits``,
``m = exp_multiplier``, ``s = exp_shift``, ``top = 2**(exp_bits-1) - 1``):

    x   = q - max(row)                          <= 0; |x| <= 2**B - 1              (B + 1 bits)
    x   = max(x, n * x0_int)                    clamps the exponent: z <= n (masked entries land here)
    z   = floor(x / x0_int)                     0 <= z <= n                      (x0_int < 0)
    r   = x - x0_int * z                        x0_int < r <= 0                  (|x0_int| bits)
    p   = max((r + b_int) * r + c_int, 0)       the reference's clamp; in [0, p_hi], see poly_range()
    exp_int = p * 2**(n - z)                    the reference's LEFT shift (i_exp's result); its real
                                                value is exp_int * exp_scale
    e   = clamp(round(p * m / 2**(s - n + z)), 0, top)     when s - n + z >= 0 (rounding exp_rounding)
        = min(p * m * 2**(n - z - s), top)                  when s - n + z < 0 (exact, no rounding)
    sum = sum(e over the row)                   <= 2**32 by the REQUIRE on the row length
    factor = floor(2**32 / sum)                 1 <= factor <= 2**32
    out = min(floor(e * factor / 2**(32 - output_bits)), output_max)
                                                e * factor <= 2**32 because e <= sum

Folding. ``e`` is the reference's 16-bit requantization ``round(exp_int * m / 2**s)`` with the
reference's ``<< (n - z)`` folded into the shift (the issue's "no legal input overflows int64"):
``exp_int`` needs up to ``bits(p_hi) + n`` bits (52 for S = 1e-3 and n = 30; more than 63 for
S < ~2e-5), ``p * m`` only ``bits(p_hi) + 31``. For the single-rounding dialects (half_even,
half_up, half_away, floor) the two are the same rational rounded once, so ``e`` equals
``clamp(round(exp_int * m / 2**s))`` exactly (tests/kernels prove it with Python ints). These four
are the only dialects allowed here (``EXP_ROUNDING_MODES``): ``double_round``'s first rounding at
2**31 would land on the folded product ``p * m`` and could differ from double-rounding
``exp_int * m`` (p = 2**30 + 1, m = 1, s - n + z = 32: 1 folded, 0 unfolded), so folding would
change the result. Only ``i_exp``, which returns ``exp_int`` itself, REQUIREs
``exp_int_max() < 2**63``.

Bit widths with the reference settings (S = 1e-3: x0_int = -694, b_int = 2707, c_int = 2792114,
n = 30, exp_bits = 16, B = 32): x 33 bits signed, clamped x 16, z 5, r 10 + sign, p 22, exp_int 52,
p * m 53, e 15 unsigned, sum 33, factor 33, e * factor 33, out 8 (or 9 with output_max = 256).

Where this knowingly differs from the float32 reference (notes/ibert-reference-semantics.md s. 7):
  - The reference holds every "integer" in float32: ``x`` drifts by an ulp, ``exp_int`` (~2**52)
    keeps 24 significant bits, ``factor = floor(fl32(1/sum) * 2**32)`` and ``e * factor`` (~2**32)
    are float-rounded. A one-hot row with e = 32767 gives factor 131076 and e * factor =
    4294967292, so 255 here; float32 rounds the product to 2**32 and the reference says 256.
    Here the output reaches 2**output_bits only when e * factor == 2**32 exactly (one entry
    holding a power-of-two sum), and output_max (255 default, 256 for the HF import's uint9)
    decides whether it is kept.
  - The reference's QuantAct(16) is fed ``exp_int`` as if it were a real activation (its range is
    calibrated in exp_int units); here the 16-bit requantization is an explicit dyadic
    (exp_multiplier, exp_shift) that the caller derives (``intref.quant.softmax``, a converter).
  - A row whose sum is 0 (possible when every e rounds to 0) gives all 0, not NaN (0 * inf).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from .._params import as_float_or_floats, as_int, require_bits
from ..errors import DtypeError, RangeError, ShapeError
from ..inttypes import INT64_MAX, INT64_MIN
from .rounding import ROUNDING_MODES, rshift_round

EXP_ROUNDING_MODES = tuple(mode for mode in ROUNDING_MODES if mode != "double_round")

FACTOR_BITS = 32          # the reference's max_bit: factor = floor(2**32 / sum)


@dataclass(frozen=True)
class SoftmaxParams:
    """Integer constants of i-exp and the integer softmax (I-BERT Alg. 3, reference-code form).

    With ``S`` the (per-tensor) input scale and coefficients ``exp(p) ~ a*p**2 + b*p + c`` on
    ``(x0, 0]`` written as ``a * ((p + b/a) * p + c/a)``:
      x0_int        floor(x0 / S), x0 = -0.6931 in the reference; REQUIRE <= -1
      b_int         floor((b/a) / S)
      c_int         floor((c/a) / S**2)
      exp_clamp     n: the exponent z is clamped to 0..n (reference 30); exp_int = poly * 2**(n - z);
                    0..62
      exp_multiplier, exp_shift
                    dyadic requantization of exp_int to exp_bits (e = round(exp_int * m / 2**s),
                    folded as the module docstring says); 0 <= m <= 2**31, 0 <= s <= 255
      exp_bits      width of the requantized exp (reference 16: clamp to [0, 2**15 - 1]); 2..32
      exp_rounding  rounding of that requantization (reference half_even); one of
                    ``EXP_ROUNDING_MODES`` (every single-rounding dialect; see "Folding")
      output_bits   fractional bits of the result: out scale 2**-output_bits (reference 8); 1..31
      output_max    the result is clamped to [0, output_max]: 255 for uint8, 256 for the HF
                    import's uint9 (a row can reach 2**output_bits); 1..2**output_bits
      input_bits    REQUIRE q in int<input_bits>; 2..63
      exp_scale     a * S**2 / 2**n: real value of i_exp's result is result * exp_scale
      out_scale     2**-output_bits

    Construction proves, with exact Python ints, that every intermediate of the polynomial stays
    inside int64 for every legal input (``RangeError`` otherwise). ``i_exp``'s unfolded result has
    its own bound, ``exp_int_max()``.
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
    exp_scale: float = None
    out_scale: float = None

    def __post_init__(self):
        owner = "SoftmaxParams"
        for name in ("x0_int", "b_int", "c_int"):
            value = as_int(owner, name, getattr(self, name))
            if not INT64_MIN <= value <= INT64_MAX:
                raise RangeError(f"{owner}: {name} = {value} does not fit int64 (input scale too small)",
                                 argument=name, value=value)
            object.__setattr__(self, name, value)
        if self.x0_int > -1:
            raise RangeError(f"{owner}: x0_int = {self.x0_int} must be <= -1 (floor(x0 / S) with x0 < 0)",
                             argument="x0_int", value=self.x0_int)
        limits = {"exp_clamp": (0, 62), "exp_multiplier": (0, 1 << 31), "exp_shift": (0, 255),
                  "exp_bits": (2, 32), "output_bits": (1, 31), "input_bits": (2, 63)}
        for name, (lo, hi) in limits.items():
            object.__setattr__(self, name, require_bits(owner, name, getattr(self, name), lo, hi))
        object.__setattr__(self, "output_max",
                           require_bits(owner, "output_max", self.output_max, 1, 1 << self.output_bits))
        if not isinstance(self.exp_rounding, str) or self.exp_rounding not in EXP_ROUNDING_MODES:
            raise RangeError(f"{owner}: exp_rounding = {self.exp_rounding!r} is not one of "
                             f"{', '.join(EXP_ROUNDING_MODES)} (folding the exp shift is exact only for "
                             f"single rounding)", argument="exp_rounding", value=self.exp_rounding)
        for name in ("exp_scale", "out_scale"):
            value = as_float_or_floats(owner, name, getattr(self, name))
            if isinstance(value, tuple):
                raise ShapeError(f"{owner}: {name} must be a scalar (softmax is per tensor)", argument=name)
            object.__setattr__(self, name, value)
        for name, (lo, hi) in self.intermediate_ranges().items():
            if lo < INT64_MIN or hi > INT64_MAX:
                raise RangeError(f"{owner}: {name} can reach [{lo}, {hi}], outside int64 (scale too small "
                                 f"for these constants)", argument=name, value=hi if hi > INT64_MAX else lo)

    # --- exact bounds (Python ints), for the kernels, the graph layer's range analysis and tests ---

    def exp_code_max(self) -> int:
        """The top code of the requantized exp: ``2**(exp_bits - 1) - 1`` (reference 32767)."""
        return (1 << (self.exp_bits - 1)) - 1

    def exp_input_floor(self) -> int:
        """``max(n * x0_int, -(2**B - 1))``: the clamp of ``x``, written so that it fits int64.

        ``x = q - max(row) >= -(2**B - 1)`` already, so the second term changes no result.
        """
        return max(self.exp_clamp * self.x0_int, -((1 << self.input_bits) - 1))

    def remainder_range(self) -> Tuple[int, int]:
        """The exact range of ``r``: ``[max(x0_int + 1, exp_input_floor()), 0]``; every value is reached."""
        return max(self.x0_int + 1, self.exp_input_floor()), 0

    def poly_range(self) -> Tuple[int, int]:
        """The exact range of ``(r + b_int) * r + c_int`` over the reachable ``r`` (before max(., 0)).

        ``(r + b) * r`` is convex in ``r``: its maximum is at an end of the range, its minimum at an
        end or at an integer next to the vertex ``-b/2``.
        """
        r_lo, r_hi = self.remainder_range()
        candidates = {r_lo, r_hi, -(self.b_int // 2), -((self.b_int + 1) // 2)}
        values = [(r + self.b_int) * r + self.c_int for r in candidates if r_lo <= r <= r_hi]
        return min(values), max(values)

    def intermediate_ranges(self) -> dict:
        """Exact ranges of the int64 intermediates ``r + b_int``, ``(r + b_int) * r`` and ``p``."""
        r_lo, r_hi = self.remainder_range()
        p_lo, p_hi = self.poly_range()
        return {"r + b_int": (r_lo + self.b_int, r_hi + self.b_int),
                "(r + b_int) * r": (p_lo - self.c_int, p_hi - self.c_int),
                "(r + b_int) * r + c_int": (p_lo, p_hi)}

    def exp_int_max(self) -> int:
        """The largest ``exp_int`` (i_exp's result): ``max(p_hi, 0) * 2**n``, reached at z = 0."""
        return max(self.poly_range()[1], 0) << self.exp_clamp

    def exp_code(self, p: int, z: int) -> int:
        """The requantized exp ``e`` of a polynomial value ``p >= 0`` at exponent ``z`` (module docstring):
        ``round(p * m / 2**(s - n + z))`` or, for a negative shift, ``p * m * 2**(n - z - s)``; clamped to
        ``[0, exp_code_max()]``. Nondecreasing in ``p``, nonincreasing in ``z`` (for every dialect)."""
        shift = self.exp_shift - self.exp_clamp + z
        if shift >= 0:
            rounded = rshift_round(p * self.exp_multiplier, shift, self.exp_rounding)
        else:
            rounded = (p * self.exp_multiplier) << -shift
        return max(0, min(rounded, self.exp_code_max()))

    def max_row_length(self) -> Optional[int]:
        """The longest row for which ``sum <= 2**32`` (so ``factor >= 1``) holds for every input.

        A row's largest entry has ``x = 0`` and code ``e0 = exp_code(max(c_int, 0), 0)``; every other
        entry can reach the top code ``e_top = exp_code(max(p_hi, 0), 0)`` (``e`` grows with ``p`` and
        falls with ``z``, and ``p_hi`` is reached at ``z = 0``). So the bound is exact:
        ``1 + (2**32 - e0) // e_top``. ``None`` when ``e_top == 0``: every row sums to 0, any length.
        """
        e_top = self.exp_code(max(self.poly_range()[1], 0), 0)
        if e_top == 0:
            return None
        e0 = self.exp_code(max(self.c_int, 0), 0)
        return 1 + ((1 << FACTOR_BITS) - e0) // e_top

    def output_range(self) -> Tuple[int, int]:
        """The range of i_softmax's result: ``(0, output_max)``."""
        return 0, self.output_max


# --- the scalar functions ---

def exp_range_reduce(x: int, params: SoftmaxParams) -> Tuple[int, int]:
    """``(z, r)`` with ``x = x0_int * z + r`` after the clamp ``x >= n * x0_int``: ``0 <= z <= n``,
    ``x0_int < r <= 0``. REQUIRE ``-(2**B - 1) <= x <= 0``."""
    x = max(x, params.exp_input_floor())
    z = x // params.x0_int                        # floor: both negative, so z >= 0
    return z, x - params.x0_int * z


def exp_poly(r: int, params: SoftmaxParams) -> int:
    """``max((r + b_int) * r + c_int, 0)``: I-Poly with the coefficients folded into b_int, c_int."""
    return max((r + params.b_int) * r + params.c_int, 0)


def exp_unfolded(x: int, params: SoftmaxParams) -> int:
    """``exp_int = p * 2**(n - z)`` of ``x <= 0``, as an unbounded Python int."""
    z, r = exp_range_reduce(x, params)
    return exp_poly(r, params) << (params.exp_clamp - z)


def i_exp(q: int, params: SoftmaxParams) -> int:
    """i-exp of one value: ``exp_int`` with ``exp_int * exp_scale ~ exp(q * S)``.

    REQUIRE ``q`` an int in int<input_bits> with ``q <= 0`` (a row already shifted by its max).
    REQUIRE ``params.exp_int_max() <= 2**63 - 1``: the unfolded result is an int64 (it is not for
    S < ~2e-5 with n = 30; i_softmax folds the shift and has no such limit).
    Returns ``p * 2**(n - z)`` (see the module docstring), ``0 <= result <= exp_int_max()``.
    """
    _require_exp_int_fits(params)
    _require_input("i_exp", "q", q, params, hi=0)
    return exp_unfolded(q, params)


def i_softmax(row: List[int], params: SoftmaxParams) -> List[int]:
    """The integer softmax of one row: ``out[i] * 2**-output_bits ~ softmax(row * S)[i]``.

    REQUIRE every entry an int in int<input_bits>.
    REQUIRE ``len(row) <= params.max_row_length()`` (131076 with the reference settings), so that
    ``sum <= 2**32`` and ``factor >= 1``.
    Returns a list of ints in ``[0, output_max]``; an empty row gives ``[]``; a row whose exp codes
    all round to 0 (sum 0) gives all 0.
    """
    _require_params(params)
    for i, q in enumerate(row):
        _require_input("i_softmax", "row", q, params, index=(i,))
    limit = params.max_row_length()
    if limit is not None and len(row) > limit:
        raise ShapeError(f"i_softmax: row length {len(row)} exceeds params.max_row_length() = {limit} "
                         f"(the sum of exp codes could pass 2**32)", argument="row")
    if not row:
        return []
    top = max(row)
    codes = []
    for q in row:
        z, r = exp_range_reduce(q - top, params)
        codes.append(params.exp_code(exp_poly(r, params), z))
    total = sum(codes)
    if total == 0:
        return [0] * len(row)
    factor = (1 << FACTOR_BITS) // total
    return [min((e * factor) >> (FACTOR_BITS - params.output_bits), params.output_max) for e in codes]


def _require_params(params) -> None:
    if not isinstance(params, SoftmaxParams):
        raise DtypeError(f"params must be a SoftmaxParams, got {type(params).__name__}", argument="params")


def _require_exp_int_fits(params: SoftmaxParams) -> None:
    _require_params(params)
    top = params.exp_int_max()
    if top > INT64_MAX:
        raise RangeError(f"i_exp: exp_int can reach {top} (2**{top.bit_length() - 1} or more), outside int64; "
                         f"use i_softmax, which folds 2**(n - z) into the requantization", argument="params",
                         value=top)


def _require_input(where: str, name: str, q, params: SoftmaxParams, *, hi: Optional[int] = None,
                   index=None) -> None:
    where_name = name if index is None else f"{name}[{index[0]}]"
    if isinstance(q, bool) or not isinstance(q, int):
        raise DtypeError(f"{where}: {where_name} = {q!r} is not an int", argument=name, index=index, value=q)
    lo = -(1 << (params.input_bits - 1))
    hi = (1 << (params.input_bits - 1)) - 1 if hi is None else hi
    if not lo <= q <= hi:
        raise RangeError(f"{where}: {where_name} = {q} is outside [{lo}, {hi}] (int{params.input_bits}"
                         f"{', and <= 0' if hi == 0 else ''})", argument=name, index=index, value=q)
