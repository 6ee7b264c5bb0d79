"""Row blocks: run an elementwise or row-wise kernel over blocks of rows that fit in cache.

A kernel written over whole arrays makes a few int64 temporaries the size of its input; at
batch 8 x 128 x 3072 each is 25 MB and every step streams it through main memory. Calling the
same kernel on blocks of rows (the last axis kept whole) keeps those temporaries near
``BLOCK_BYTES`` each, so the chain of steps runs out of L2. The result is the same array, bit for
bit, for any kernel that treats each row (or each element) on its own with constants that
broadcast on the last axis only: requantization (per tensor or per channel), the residual add,
i-GELU, the integer LayerNorm (a row is its normalization group) and the softmax (a row is its
reduction axis).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import IntrefError

BLOCK_BYTES = 1 << 20          # one int64 working array of a block: 1 MB (measured best of 256 KB..2 MB)


def rows_per_block(row_length: int, block_bytes: int = None) -> int:
    """How many rows of ``row_length`` int64 values make one block of ``block_bytes`` (default
    ``BLOCK_BYTES``), at least one row."""
    return max(1, (BLOCK_BYTES if block_bytes is None else block_bytes) // (8 * max(row_length, 1)))


def broadcast_on_last_axis_only(shape: tuple, full: tuple) -> bool:
    """True when an array of ``shape`` broadcasts to ``full`` without varying over any leading
    axis: every leading axis it has is 1 (a per-channel vector, a scalar)."""
    return len(shape) <= len(full) and all(d == 1 for d in shape[:-1]) and (not shape or shape[-1] in (1, full[-1]))


def map_row_blocks(kernel: Callable[..., np.ndarray], arrays: Sequence[np.ndarray], out_dtype,
                   block_bytes: int = None) -> np.ndarray:
    """``kernel(*arrays)`` computed block of rows by block of rows, as ``out_dtype``.

    ``arrays[0]`` sets the shape; every other array has that shape or broadcasts on the last
    axis only (it is then passed whole to every block). ``kernel`` must treat rows independently
    and return an array of its first argument's shape whose values fit ``out_dtype``. Anything
    else (a 0-d input, another broadcast) runs ``kernel`` once on the whole arrays, and so does a
    block that raises an ``IntrefError``: the error then names the index in the whole array.
    """
    first = arrays[0]
    shape = first.shape
    whole = [a.shape == shape for a in arrays]
    if first.ndim == 0 or first.size == 0 or not all(
            w or broadcast_on_last_axis_only(a.shape, shape) for w, a in zip(whole, arrays)):
        return np.asarray(kernel(*arrays)).astype(out_dtype, copy=False)
    row_length = shape[-1]
    flat = [a.reshape(-1, row_length) if w else a for w, a in zip(whole, arrays)]
    rows = flat[0].shape[0]
    step = rows_per_block(row_length, block_bytes)
    if step >= rows:
        return np.asarray(kernel(*arrays)).astype(out_dtype, copy=False)
    out = np.empty((rows, row_length), dtype=out_dtype)
    try:
        for start in range(0, rows, step):
            block = [a[start:start + step] if w else a for w, a in zip(whole, flat)]
            out[start:start + step] = kernel(*block)
    except IntrefError:     # a block's error would name an index inside the block: raise the whole call's
        return np.asarray(kernel(*arrays)).astype(out_dtype, copy=False)
    return out.reshape(shape)
