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

from ..inttypes import INT64_MAX, INT64_MIN, MAX_SHIFT, OVERFLOW_MODES, IntType
from .rounding import ROUNDING_MODES, rshift_round


class RequantizeOverflow(ArithmeticError):
    """Raised by the spec under ``overflow="check"``; carries the exact out-of-range value."""

    def __init__(self, value: int, lo: int, hi: int):
        super().__init__(f"requantized value {value} is outside [{lo}, {hi}]")
        self.value, self.lo, self.hi = value, lo, hi


def requantize(x: int, multiplier: int, shift: int, *, rounding: str = "half_even", bits: int = 8,
               signed: bool = True, overflow: str = "saturate") -> int:
    """Round ``x * multiplier / 2**shift`` by ``rounding``, then fit it into ``int<bits>``/``uint<bits>``.

    ``overflow``: ``saturate`` clamps to the type's range, ``wrap`` keeps the low ``bits`` bits (two's
    complement when signed), ``check`` raises ``RequantizeOverflow`` with the exact value.
    """
    if not INT64_MIN <= x <= INT64_MAX:
        raise ValueError(f"x={x} is not an int64 value")
    if abs(multiplier) > (1 << 31):
        raise ValueError(f"|multiplier|={abs(multiplier)} exceeds 2**31")
    if not 0 <= shift <= MAX_SHIFT:
        raise ValueError(f"shift={shift} is outside 0..{MAX_SHIFT}")
    _require_options(rounding, bits, overflow)
    return fit(rshift_round(x * multiplier, shift, rounding), bits, signed, overflow)


def _require_options(rounding: str, bits: int, overflow: str) -> None:
    if not 1 <= bits <= 32:
        raise ValueError(f"bits={bits} is outside 1..32")
    if rounding not in ROUNDING_MODES or overflow not in OVERFLOW_MODES:
        raise ValueError(f"unknown rounding {rounding!r} or overflow {overflow!r}")


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
    for x, m, s in ((a, multiplier_a, shift_a), (b, multiplier_b, shift_b)):
        if not INT64_MIN <= x <= INT64_MAX or abs(m) > (1 << 31) or not 0 <= s <= MAX_SHIFT:
            raise ValueError(f"branch ({x}, {m}, {s}) breaks a REQUIRE of requantize")
        total += rshift_round(x * m, s, rounding)
    return fit(total, bits, signed, overflow)


def fit(value: int, bits: int, signed: bool, overflow: str) -> int:
    """Fit an exact value into ``int<bits>``/``uint<bits>``: saturate, wrap, or raise (check)."""
    out_type = IntType(bits, signed)
    if out_type.contains(value):
        return value
    if overflow == "saturate":
        return out_type.saturate(value)
    if overflow == "wrap":
        return out_type.wrap(value)
    raise RequantizeOverflow(value, out_type.lo, out_type.hi)
