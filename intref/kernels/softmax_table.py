"""The integer softmax through a table of exp codes: the ``exp table`` path of ``ISoftmax``.

In ``kernels.softmax.i_softmax`` every element's exp code ``e`` is a function of one integer only: ``x =
max(q - max(row), exp_input_floor())``, which lies in ``[exp_input_floor(), 0]``. Where that interval is
short (``exp_clamp * |x0_int| + 1`` entries, 369,901 for the reference settings), the codes of all of it
are computed once, at load time, by the kernel's own ``exp_reduce_and_poly`` and ``exp_code_folded``,
and a run reads them back by index ``j = max(row) - q`` clamped at the table's end (``np.take``'s
``mode="clip"``, one pass with the read): the clamp of ``x`` at the floor is the clamp of ``j`` at
``-exp_input_floor()``. The rest (the row sum, ``factor``, ``e * factor``, the final shift and clamp) is
the kernel's arithmetic unchanged, so the result is ``i_softmax``'s, bit for bit
(tests/kernels/test_softmax_table.py pins it, on both sides of the table's clamp).

Widths: ``q`` holds int<B> values (B <= 48), so ``j <= 2**B - 1`` is an int64; codes
``e <= 2**(exp_bits-1) - 1 <= 2**31 - 1`` are stored as int64, so that the read, the row sum and the
normalization all run in one native dtype (on a 131,072-element block NumPy's ``take`` of 8-byte items
ran 1.7x faster than of 4-byte ones, and an int32 sum into int64 3.7x slower than an int64 sum: the
whole softmax 10% faster, for a table twice the size: 3.2 MB for the base model's settings, one per
layer, since each layer's scores have their own scale); ``sum(e) <= 2**32`` by the row-length REQUIRE
of ``i_softmax`` (the op checks it at load time) and ``e * factor <= 2**32``.
"""

from __future__ import annotations

import numpy as np

from ..spec.softmax import FACTOR_BITS, SoftmaxParams
from .softmax import exp_code_folded, exp_reduce_and_poly

TABLE_MAX_ENTRIES = 1 << 21         # 16 MB of int64: larger tables cost more to build than they save


def exp_table_entries(params: SoftmaxParams) -> int:
    """Entries of the table: one per ``x`` in ``[exp_input_floor(), 0]``."""
    return 1 - params.exp_input_floor()


def exp_table_fits(params: SoftmaxParams) -> bool:
    """The plan's test for the table path: the table has at most ``TABLE_MAX_ENTRIES`` entries."""
    return exp_table_entries(params) <= TABLE_MAX_ENTRIES


def exp_code_table(params: SoftmaxParams) -> np.ndarray:
    """``table[j]`` = the exp code of ``x = -j`` for ``j = 0 .. -exp_input_floor()``, as a read-only
    int64 array.

    REQUIRE ``exp_table_fits(params)``. Computed by the kernel's own steps on a grid instead of
    entry by entry: with ``W = min(-x0_int, entries)``, ``x = -j`` (never clamped: ``x >= floor``)
    reduces to ``z = floor(x / x0_int) = j // W`` and ``r = x - x0_int * z = -(j mod W)`` (for
    ``W = entries < -x0_int`` every ``j`` has ``z = 0``), so ``table[j] = code[j // W, j mod W]`` where
    row ``z`` of ``code`` is ``exp_code_folded(z, p)`` and ``p`` is the polynomial of the ``W``
    remainders, which ``exp_reduce_and_poly`` computes from ``x = -arange(W)`` (all in ``(x0_int, 0]``,
    so ``z = 0`` and ``r = x`` there). The range reduction then runs on ``W`` values instead of
    ``entries`` (12,330 instead of 369,901 for the reference settings).
    """
    entries = exp_table_entries(params)
    width = min(-params.x0_int, entries)
    _, p = exp_reduce_and_poly(-np.arange(width, dtype=np.int64), params)
    rows = -(-entries // width)
    z = np.arange(rows, dtype=np.int64)[:, None]                           # 0 .. exp_clamp
    codes = exp_code_folded(z, np.broadcast_to(p, (rows, width)), params)  # <= 2**31 - 1 (exp_bits <= 32)
    table = codes.reshape(-1)[:entries].astype(np.int64)                   # a new array
    table.setflags(write=False)
    return table


def softmax_rows_from_table(q: np.ndarray, table: np.ndarray, params: SoftmaxParams, out_dtype, *,
                            overwrite_q: bool = False) -> np.ndarray:
    """``i_softmax(q, params)`` along the last axis, reading exp codes from ``table``.

    REQUIRE (the op's load-time checks; nothing is re-checked here): ``q`` a signed integer array of
    at most 64 bits, at least 1-D, values in int<params.input_bits>, rows no longer than
    ``params.max_row_length()``; ``table = exp_code_table(params)``. Returns ``out_dtype`` (i_softmax's
    storage dtype). ``overwrite_q``: an int64 ``q`` is a scratch array of the caller's, and
    ``max(row) - q`` is written over it; any other ``q`` is read only. An n-bit ``q`` (the scores'
    int32 storage) is never widened: ``max(row) - q`` lies in ``[0, 2**n - 1]``, so the n-bit
    subtraction, which wraps modulo 2**n, holds it exactly when its bits are read as unsigned; that
    is then converted to the index type once (two cheap passes where a widening subtraction costs
    about three: mixed-dtype ufuncs run through NumPy's casting buffers).

    The final clamp at ``output_max`` is skipped where it is proven idle: ``e <= sum(e)``, so
    ``e * factor <= 2**FACTOR_BITS`` and ``out <= 2**output_bits``, which is ``output_max`` itself
    for I-BERT's 256 (tests/kernels/test_softmax_table.py runs 255 and 256, both sides of it).
    """
    if q.dtype == np.int64:
        j = np.subtract(q.max(axis=-1, keepdims=True), q, out=q if overwrite_q else None)   # in [0, 2**B - 1]
    else:   # n-bit storage: max - q is in [0, 2**n - 1], which the wrapping n-bit difference holds as unsigned
        unsigned = np.dtype(f"u{q.dtype.itemsize}")
        j = np.subtract(q.max(axis=-1, keepdims=True), q).view(unsigned).astype(np.intp)
    return softmax_from_distances(j, table, params).astype(out_dtype)


def softmax_from_distances(j: np.ndarray, table: np.ndarray, params: SoftmaxParams) -> np.ndarray:
    """The softmax of rows given as ``j = max(row) - q`` (int64 or intp, ``j >= 0``; read only), as a
    new int64 array in ``[0, output_max]``: the exp codes read from ``table``, normalized and clamped as in
    ``softmax_rows_from_table``, which calls it (so does the fused attention, ``intref.fusion_attention``,
    with ``j`` from scores carried in float32)."""
    e = np.take(table, j, mode="clip")                                  # int64 codes; j >= 0: min(j, end)
    total = e.sum(axis=-1, keepdims=True)                               # <= 2**32
    factor = np.int64(1 << FACTOR_BITS) // np.maximum(total, 1)         # sum 0: every e is 0, out 0
    e *= factor                                                         # e * factor <= 2**32
    e >>= np.int64(FACTOR_BITS - params.output_bits)                    # <= 2**output_bits
    if params.output_max < 1 << params.output_bits:
        np.minimum(e, np.int64(params.output_max), out=e)
    return e
