"""Element-wise comparison of a hardware tensor with its expected value: integers only.

Values are compared in their storage dtype (exact); differences are taken in int64 when the type
is at most 62 bits wide and as Python ints otherwise, and only on the elements that differ. A
divergence is described by ``intref.mismatch`` (decimal, two's complement hex at the type's width
in whole nibbles, differing bits), as ``intref.testing.assert_bit_exact`` describes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Tuple

import numpy as np

from .._checks import multi_index
from ..errors import format_index
from ..inttypes import IntType
from ..mismatch import bit_positions, describe_bits, differing_bits, to_hex


def percent(part: int, whole: int) -> str:
    """``part / whole`` as a percentage with two decimals, by integer arithmetic (floor)."""
    if not whole:
        return "0%"
    hundredths = part * 10000 // whole
    if part and not hundredths:
        return "<0.01%"
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


@dataclass(frozen=True)
class Divergence:
    """One element where the hardware differs: where, what was expected, what came, which bits."""

    index: Tuple[int, ...]
    expected: int
    got: int
    type: IntType

    @property
    def difference(self) -> int:
        return self.got - self.expected

    @property
    def differing_bits(self) -> int:
        """The xor of both values' two's complement codes at the type's width."""
        return differing_bits(self.got, self.expected, self.type.bits)

    @property
    def expected_hex(self) -> str:
        return to_hex(self.expected, self.type.bits)

    @property
    def got_hex(self) -> str:
        return to_hex(self.got, self.type.bits)

    def describe(self) -> str:
        bits = self.differing_bits
        return (f"at {format_index(self.index)}: expected {self.expected} ({self.expected_hex}), got {self.got} "
                f"({self.got_hex}), differing bits {to_hex(bits, self.type.bits)} ({describe_bits(bit_positions(bits))})")


@dataclass(frozen=True)
class Comparison:
    """Statistics of ``got`` against ``expected``: ``differing`` elements differ at all,
    ``mismatches`` by more than the tolerance; ``first`` is the first mismatch (row-major)."""

    compared: int
    differing: int
    mismatches: int
    max_abs_difference: int
    first: Optional[Divergence]

    @property
    def fraction(self) -> Fraction:
        return Fraction(self.mismatches, self.compared) if self.compared else Fraction(0)

    def summary(self) -> str:
        return (f"{self.mismatches} of {self.compared} elements differ ({percent(self.mismatches, self.compared)}), "
                f"max |difference| {self.max_abs_difference}")


def differing_positions(expected: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Flat row-major positions where the two arrays (same shape and type) differ."""
    return np.flatnonzero(expected.ravel() != got.ravel())


def differences_at(expected: np.ndarray, got: np.ndarray, positions: np.ndarray, t: IntType) -> np.ndarray:
    """Exact ``got - expected`` at the flat ``positions``: int64, or Python ints past 62 bits."""
    e, g = expected.ravel()[positions], got.ravel()[positions]
    if t.bits <= 62:
        return g.astype(np.int64) - e.astype(np.int64)
    return np.array([int(b) - int(a) for a, b in zip(e, g)], dtype=object)


def compare(expected: np.ndarray, got: np.ndarray, t: IntType, tolerance: int = 0) -> Comparison:
    """Compare ``got`` with ``expected`` (same shape, ``t``'s storage dtype) element by element."""
    if expected.shape != got.shape:
        raise ValueError(f"compare: shapes {expected.shape} and {got.shape} differ")   # a caller bug
    positions = differing_positions(expected, got)
    if not positions.size:
        return Comparison(int(expected.size), 0, 0, 0, None)
    diffs = differences_at(expected, got, positions, t)
    magnitudes = np.abs(diffs)
    beyond = positions[np.asarray(magnitudes > tolerance, dtype=bool)]
    first = None
    if beyond.size:
        index = multi_index(beyond[0], expected.shape)
        first = Divergence(index, int(expected[index]), int(got[index]), t)
    return Comparison(int(expected.size), int(positions.size), int(beyond.size), int(magnitudes.max()), first)
