"""Helpers for testing integer kernels and their ports bit for bit.

``assert_identical`` is what every intref test uses to compare arrays: it checks dtype, shape
and every element, and on failure names the first differing multi-index with both values, so a
failing test says where, not just that.
"""

from __future__ import annotations

import numpy as np

from ._checks import first_index
from .errors import format_index


def assert_identical(got, expected, *, context: str = "", check_dtype: bool = True) -> None:
    """Raise ``AssertionError`` unless ``got`` equals ``expected`` in dtype, shape and every element."""
    got, expected = np.asarray(got), np.asarray(expected)
    where = f"{context}: " if context else ""
    if check_dtype and got.dtype != expected.dtype:
        raise AssertionError(f"{where}dtype {got.dtype} != expected {expected.dtype}")
    if got.shape != expected.shape:
        raise AssertionError(f"{where}shape {got.shape} != expected {expected.shape}")
    differ = got != expected
    if differ.any():
        index = first_index(differ)
        count = int(differ.sum())
        raise AssertionError(f"{where}{count} of {got.size} elements differ; first at {format_index(index)}: "
                             f"got {got[index]!r}, expected {expected[index]!r}")
