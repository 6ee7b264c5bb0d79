"""Requantization of a narrow input by table lookup: the ``table`` path of ``Requantize``.

A per-tensor requantization is a function of one integer. When the input TYPE has at most
``TABLE_MAX_INPUT_BITS`` bits, every value it can hold is enumerated once, at load time, and the
planned kernel (whichever path the plan chose for that type) computes the result of each: the
table is exhaustive, so reading it back is the kernel's result for every legal input, bit for bit
(tests/kernels/test_requant_table.py pins the op to the general kernel on every value).

The table is indexed by the input's bits read as unsigned (``v mod 2**n`` for an n-bit type stored
in exactly n bits: int8/uint8/int16/uint16), so a run is one ``np.take`` with no index arithmetic.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..inttypes import IntType

TABLE_MAX_INPUT_BITS = 16       # 65,536 entries: built in about a millisecond, read from L2


def table_fits(in_type: IntType, per_channel: bool) -> bool:
    """The plan's test: per-tensor constants and an input type of at most 16 bits that fills its
    storage dtype (so its raw bits are the table index)."""
    return (not per_channel and in_type.bits <= TABLE_MAX_INPUT_BITS
            and in_type.bits == np.dtype(in_type.storage).itemsize * 8)


def requantize_table(in_type: IntType, kernel: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``table[v mod 2**n] = kernel(v)`` for every ``v`` of the n-bit ``in_type``, in ``kernel``'s
    output dtype. REQUIRE ``table_fits(in_type, ...)``; ``kernel`` elementwise and exact on the type."""
    values = np.arange(in_type.lo, in_type.hi + 1, dtype=np.int64)
    results = np.asarray(kernel(values))
    table = np.empty(values.shape[0], dtype=results.dtype)
    table[values & np.int64((1 << in_type.bits) - 1)] = results
    return table


def requantize_by_table(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[x mod 2**n]``: ``x`` an array of the type's storage dtype (its bits, read unsigned,
    are the index). One gather; ``x`` is not written."""
    return np.take(table, x.view(np.dtype(f"u{x.dtype.itemsize}")))


def table_is_identity(table: np.ndarray, in_type: IntType) -> bool:
    """Whether ``table`` (``requantize_table``'s) gives every value of ``in_type`` back unchanged: the
    op is then the identity on every legal input (a requantization between scales that differ by less
    than half a step at the type's extremes), and the plan skips it."""
    values = np.arange(in_type.lo, in_type.hi + 1, dtype=np.int64)
    return bool(np.array_equal(table[values & np.int64((1 << in_type.bits) - 1)].astype(np.int64), values))
