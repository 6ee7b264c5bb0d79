"""Requantization: ``y = clamp(round(x * multiplier / 2**shift))``, one element at a time.

This is the normative definition; ``intref.kernels.requant`` must equal it bit for bit.

REQUIRE  x is an int64 value: -2**63 <= x < 2**63
REQUIRE  |multiplier| <= 2**31 (a 31-bit mantissa, 2**31 itself included: I-BERT's
         ``batch_frexp`` can round a mantissa up to exactly 2**31; negative multipliers carry
         negative scales such as I-BERT's GELU output scale)
REQUIRE  0 <= shift <= 127 (a product below 2**95 shifted by 96 or more rounds to 0 or -1; the
         range reaches tiny ratios such as I-BERT's GELU output scale over an int8 scale)
REQUIRE  1 <= bits <= 32 (the output type ``int<bits>`` or ``uint<bits>``)

The product ``x * multiplier`` needs up to 95 bits; it is formed exactly (Python ints here,
split into 32-bit halves in the kernel) and never rounded before the one rounding step.
"""

from __future__ import annotations

from ..errors import OverflowCheckError, RangeError
from ..inttypes import INT64_MAX, INT64_MIN, MAX_SHIFT, OVERFLOW_MODES, IntType
from .rounding import ROUNDING_MODES, rshift_round


def requantize(x: int, multiplier: int, shift: int, *, rounding: str = "half_even", bits: int = 8,
               signed: bool = True, overflow: str = "saturate") -> int:
    """Round ``x * multiplier / 2**shift`` by ``rounding``, then fit it into ``int<bits>``/``uint<bits>``.

    ``overflow``: ``saturate`` clamps to the type's range, ``wrap`` keeps the low ``bits`` bits (two's
    complement when signed), ``check`` raises ``OverflowCheckError`` with the exact value.
    """
    if not INT64_MIN <= x <= INT64_MAX:
        raise RangeError(f"requantize: x={x} is not an int64 value", argument="x", value=x)
    if abs(multiplier) > (1 << 31):
        raise RangeError(f"requantize: |multiplier|={abs(multiplier)} exceeds 2**31", argument="multiplier",
                         value=multiplier)
    if not 0 <= shift <= MAX_SHIFT:
        raise RangeError(f"requantize: shift={shift} is outside 0..{MAX_SHIFT}", argument="shift", value=shift)
    _require_options(rounding, bits, overflow)
    return fit_to_type(rshift_round(x * multiplier, shift, rounding), IntType(bits, signed), overflow)


def _require_options(rounding: str, bits: int, overflow: str) -> None:
    if not 1 <= bits <= 32:
        raise RangeError(f"requantize: bits={bits} is outside 1..32", argument="bits", value=bits)
    if rounding not in ROUNDING_MODES:
        raise RangeError(f"requantize: unknown rounding {rounding!r}", argument="rounding", value=rounding)
    if overflow not in OVERFLOW_MODES:
        raise RangeError(f"requantize: unknown overflow {overflow!r}", argument="overflow", value=overflow)


def add_requantized(a: int, b: int, multiplier_a: int, shift_a: int, multiplier_b: int, shift_b: int, *,
                    rounding: str = "half_even", bits: int = 8, signed: bool = True,
                    overflow: str = "saturate") -> int:
    """Residual add: each branch requantized on its own, the two sums added, then fit once.

        y = fit(round(a * multiplier_a / 2**shift_a) + round(b * multiplier_b / 2**shift_b))

    This is I-BERT's QuantAct with an identity input (FixedPointMul: ``rint`` of each branch, then
    the clamp), which differs from rounding the exact sum. Same REQUIREs as ``requantize`` for
    each branch; the sum is exact (Python ints).
    """
    _require_options(rounding, bits, overflow)
    total = 0
    for name, x, m, s in (("a", a, multiplier_a, shift_a), ("b", b, multiplier_b, shift_b)):
        if not INT64_MIN <= x <= INT64_MAX or abs(m) > (1 << 31) or not 0 <= s <= MAX_SHIFT:
            raise RangeError(f"add_requantized: branch {name} ({x}, {m}, {s}) breaks a REQUIRE of requantize",
                             argument=name, value=x)
        total += rshift_round(x * m, s, rounding)
    return fit_to_type(total, IntType(bits, signed), overflow)


def fit_to_type(value: int, out_type: IntType, overflow: str) -> int:
    """Fit an exact value into ``out_type``: saturate, wrap, or raise ``OverflowCheckError`` (check)."""
    if out_type.contains(value):
        return value
    if overflow == "saturate":
        return out_type.saturate(value)
    if overflow == "wrap":
        return out_type.wrap(value)
    raise OverflowCheckError(f"requantize: value {value} is outside {out_type} [{out_type.lo}, {out_type.hi}]",
                             where="requantize", index=(), value=value, lo=out_type.lo, hi=out_type.hi)
