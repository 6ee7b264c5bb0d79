"""Vectorized masked mean pooling: twin of ``intref.spec.pool.masked_mean``."""

from __future__ import annotations

import numpy as np

from ..errors import DtypeError, RangeError, ShapeError
from .rounding import div_round_half_even

_WHERE = "masked_mean"


def masked_mean(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``y[..., h] = round_half_even(sum_j x[..., j, h] * mask[..., j] / count)`` (0 when ``count == 0``).

      x     signed or unsigned integers of at most 32 bits, shape ``[..., S, H]``
      mask  integers in {0, 1}, shape ``[..., S]`` (``x.shape[:-1]``)

    Widths: ``|x| < 2**32`` and ``S < 2**31``, so every row total ``|sum| < 2**63`` is exact in int64
    and ``2 * remainder < 2 * count`` fits. Returns int64 ``[..., H]`` whose values lie within each
    row's selected values (spec ``intref.spec.pool``).
    """
    x, mask = np.asarray(x), np.asarray(mask)
    for name, array in (("x", x), ("mask", mask)):
        if array.dtype.kind not in "iu" or array.dtype.itemsize > (4 if name == "x" else 8):
            raise DtypeError(f"{_WHERE}: {name} must be an integer array ({'at most 32 bits' if name == 'x' else 'int'}),"
                             f" got {array.dtype}", argument=name)
    if x.ndim < 2 or mask.shape != x.shape[:-1]:
        raise ShapeError(f"{_WHERE}: mask shape {list(mask.shape)} must be x's shape without its last axis "
                         f"({list(x.shape[:-1])})", argument="mask")
    bad = np.argwhere((mask != 0) & (mask != 1))
    if bad.size:
        index = tuple(bad[0])
        raise RangeError(f"{_WHERE}: mask{list(index)} = {int(mask[index])} is not 0 or 1", argument="mask",
                         index=index, value=int(mask[index]))
    keep = mask.astype(np.int64)
    total = np.einsum("...sh,...s->...h", x.astype(np.int64), keep)   # int64 einsum: exact integer sums
    count = keep.sum(axis=-1, keepdims=True)
    mean = div_round_half_even(total, np.maximum(count, 1))
    return np.where(count > 0, mean, 0).astype(np.int64)
