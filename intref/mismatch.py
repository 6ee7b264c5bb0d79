"""How intref describes a differing integer, in one place: ``intref.testing.assert_bit_exact``
(a port against a kernel) and ``intref verify`` (a hardware dump against a golden set) both build
their messages from these.

A value is shown in decimal and in two's complement hex at a width rounded up to whole nibbles
(``int22`` -> 6 digits), as the ``.hex`` golden files write it; the differing bits are the xor of
both codes at that width, listed by position.
"""

from __future__ import annotations

from typing import Tuple


def to_hex(value: int, bits: int) -> str:
    """Two's complement hex of ``value`` at ``bits`` rounded up to whole nibbles: ``0x`` + digits."""
    digits = (bits + 3) // 4
    return f"0x{value & ((1 << (4 * digits)) - 1):0{digits}x}"


def differing_bits(got: int, expected: int, bits: int) -> int:
    """The xor of both values' two's complement codes at ``bits``."""
    return (got ^ expected) & ((1 << bits) - 1)


def bit_positions(mask: int) -> Tuple[int, ...]:
    return tuple(i for i in range(mask.bit_length()) if mask >> i & 1)


def describe_bits(positions) -> str:
    """``bit 5`` / ``bits 0, 3`` / ``12 bits, 0..31``."""
    positions = tuple(positions)
    if len(positions) == 1:
        return f"bit {positions[0]}"
    if len(positions) <= 8:
        return "bits " + ", ".join(map(str, positions))
    return f"{len(positions)} bits, {positions[0]}..{positions[-1]}"


def is_exact_tie(product: int, shift: int) -> bool:
    """Whether ``product / 2**shift`` lies exactly half-way between two integers: the one input on
    which the rounding dialects that round to nearest disagree."""
    return shift >= 1 and product % (1 << shift) == 1 << (shift - 1)
