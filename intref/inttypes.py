"""Integer types of runtime tensors: signed or unsigned, 1 to 64 bits.

A type is written ``int<b>`` or ``uint<b>`` (``int8``, ``uint9``, ``int22``, ``int32``). Its range is
the two's-complement or unsigned range of ``b`` bits, and its storage dtype is the smallest NumPy
integer dtype that holds that range (``int22`` is stored as ``int32``, ``uint9`` as ``uint16``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import RangeError

_NAME = re.compile(r"(u?)int([0-9]{1,2})")

# The run-time limits, defined here once. Every kernel computes in int64: its intermediates stay in
# [INT64_MIN, INT64_MAX], which the load-time range analysis proves per node.
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
# The largest right shift of a requantization (Requantize, ResidualAdd, the softmax's exp requant):
# for int64 x and |m| <= 2**31, |x * m| < 2**95, so every rounding of x * m / 2**s is the same for
# all s >= 96; 127 leaves room for a vanishing ratio written as it was derived.
MAX_SHIFT = 127
# What a run does with a value outside its declared type: clamp it, keep its low bits, or raise.
OVERFLOW_MODES = ("saturate", "wrap", "check")


@dataclass(frozen=True)
class IntType:
    """An integer type of ``bits`` bits, two's complement when ``signed``."""

    bits: int
    signed: bool = True

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)):
            raise RangeError(f"IntType: bits must be an int, got {self.bits!r}", argument="bits")
        if not 1 <= int(self.bits) <= 64:
            raise RangeError(f"IntType: bits={self.bits} is outside 1..64", argument="bits", value=self.bits)
        object.__setattr__(self, "bits", int(self.bits))
        object.__setattr__(self, "signed", bool(self.signed))

    @classmethod
    def parse(cls, name: str) -> "IntType":
        """``IntType.parse("int22") == IntType(22, True)``; ``"uint9"`` is unsigned."""
        match = _NAME.fullmatch(name) if isinstance(name, str) else None
        if match is None:
            raise RangeError(f"not an integer type name: {name!r} (expected int<bits> or uint<bits>)",
                             argument="type", value=name)
        return cls(int(match.group(2)), signed=not match.group(1))

    @property
    def name(self) -> str:
        return f"{'' if self.signed else 'u'}int{self.bits}"

    def __str__(self) -> str:
        return self.name

    @property
    def lo(self) -> int:
        """Smallest value of the type: ``-2**(bits-1)`` signed, 0 unsigned."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        """Largest value of the type: ``2**(bits-1) - 1`` signed, ``2**bits - 1`` unsigned."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def storage(self) -> np.dtype:
        """The smallest NumPy dtype holding every value of the type."""
        for width in (8, 16, 32, 64):
            if self.bits <= width:
                return np.dtype(f"{'' if self.signed else 'u'}int{width}")
        raise AssertionError("unreachable: bits <= 64")

    def contains(self, value: int) -> bool:
        return self.lo <= int(value) <= self.hi

    def wrap(self, value: int) -> int:
        """Two's-complement (or modular, unsigned) reduction of ``value`` to this type."""
        value = int(value) & ((1 << self.bits) - 1)
        if self.signed and value > self.hi:
            value -= 1 << self.bits
        return value

    def saturate(self, value: int) -> int:
        return min(max(int(value), self.lo), self.hi)


def smallest_type(lo: int, hi: int) -> IntType:
    """The narrowest type holding ``[lo, hi]``: unsigned when ``lo >= 0``."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise RangeError(f"empty range [{lo}, {hi}]", argument="range")
    if lo >= 0:
        return IntType(max(hi.bit_length(), 1), signed=False)
    bits = max((-lo - 1).bit_length(), hi.bit_length()) + 1
    return IntType(bits, signed=True)
