"""Rounding of ``v / 2**shift`` and ``n / d`` for exact Python ints: the five named dialects.

Each dialect is written the way its origin writes it, so a reader can check it against the
source line by line. All arguments are Python ints of any size; nothing is rounded on the way.

| dialect        | ties (value exactly k + 1/2)        | origin                                         |
|----------------|-------------------------------------|------------------------------------------------|
| ``half_even``  | to the even neighbour               | I-BERT FixedPointMul (torch.round), np.rint     |
| ``half_up``    | toward +infinity                    | TOSA SINGLE_ROUND, TFLite single rounding, CMSIS-NN |
| ``double_round`` | see ``rshift_double_round``       | TOSA DOUBLE_ROUND = gemmlowp / TFLite default   |
| ``half_away``  | away from zero                      | exact round half away from zero                 |
| ``floor``      | (no rounding: toward -infinity)     | truncating RTL, arithmetic shift right          |
"""

from __future__ import annotations

from ..errors import RangeError

ROUNDING_MODES = ("half_even", "half_up", "double_round", "half_away", "floor")


def rshift_floor(v: int, shift: int) -> int:
    """``floor(v / 2**shift)``: an arithmetic shift right."""
    return v >> shift


def rshift_round_half_up(v: int, shift: int) -> int:
    """``floor(v / 2**shift + 1/2)``: TOSA ``apply_scale_32`` single round, ``(v + 2**(shift-1)) >> shift``."""
    if shift == 0:
        return v
    return (v + (1 << (shift - 1))) >> shift


def rshift_round_half_away(v: int, shift: int) -> int:
    """``sign(v) * floor(|v| / 2**shift + 1/2)``: ties away from zero, symmetric in sign."""
    if shift == 0:
        return v
    magnitude = (abs(v) + (1 << (shift - 1))) >> shift
    return -magnitude if v < 0 else magnitude


def rshift_round_half_even(v: int, shift: int) -> int:
    """Nearest integer to ``v / 2**shift``, ties to the even one (IEEE ``rint``, ``torch.round``)."""
    if shift == 0:
        return v
    quotient, remainder = v >> shift, v & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    if remainder > half or (remainder == half and quotient & 1):
        quotient += 1
    return quotient


def rshift_double_round(v: int, shift: int) -> int:
    """TOSA ``apply_scale_32(..., double_round=True)`` generalised to any ``v``.

    ``round = 2**(shift-1)``; when ``shift > 31`` add ``+2**30`` for ``v >= 0`` and ``-2**30`` for
    ``v < 0``; return ``(v + round) >> shift``. For ``shift <= 31`` this is single round half up.

    Read with ``v = x * m`` and ``shift = 31 + e`` this is gemmlowp's (and TFLite's default)
    ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, m), e)``: first round ``v / 2**31``
    half up, then round that to ``e`` more bits half away from zero. The two agree for every input
    except the one product gemmlowp saturates (``x == m == -2**31``); see tests/spec.
    """
    if shift == 0:
        return v
    rounding = 1 << (shift - 1)
    if shift > 31:
        rounding += (1 << 30) if v >= 0 else -(1 << 30)
    return (v + rounding) >> shift


_BY_NAME = {
    "half_even": rshift_round_half_even,
    "half_up": rshift_round_half_up,
    "double_round": rshift_double_round,
    "half_away": rshift_round_half_away,
    "floor": rshift_floor,
}


def rshift_round(v: int, shift: int, rounding: str) -> int:
    """``v / 2**shift`` rounded by the named dialect; ``shift >= 0``."""
    if shift < 0:
        raise RangeError(f"rshift_round: shift must be >= 0, got {shift}", argument="shift", value=shift)
    return _BY_NAME[rounding](v, shift)


def div_floor(n: int, d: int) -> int:
    """``floor(n / d)`` for ``d > 0`` (Python's ``//``, not C's truncation)."""
    return n // d


def div_round_half_even(n: int, d: int) -> int:
    """Nearest integer to ``n / d`` for ``d > 0``, ties to even.

    This is the exact meaning of I-BERT's ``round(mean(x))`` over a row of integers: the reference
    takes a float32 mean and rounds it half to even (``torch.round``).
    """
    quotient, remainder = divmod(n, d)
    if 2 * remainder > d or (2 * remainder == d and quotient & 1):
        quotient += 1
    return quotient
