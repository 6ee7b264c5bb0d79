"""Vectorized integer square root: twin of ``intref.spec.sqrt.isqrt``, bit for bit.

Every element runs the same Newton iteration as the spec, from ``2**ceil(bit_length(n)/2)``,
and stops on its own when ``x' >= x``; the loop ends when all elements have stopped (at most
6 passes for any n < 2**63). int64 throughout: ``x <= 2**32``, ``x + n // x <= 2**33 + 1``.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..inttypes import INT64_MAX

_WHERE = "isqrt"


def bit_length(v: np.ndarray) -> np.ndarray:
    """Number of significant bits of each non-negative int64 (0 for 0), by binary search on shifts."""
    v = v.copy()
    bits = np.zeros(v.shape, dtype=np.int64)
    for k in (32, 16, 8, 4, 2, 1):
        high = (v >> k) != 0
        v = np.where(high, v >> k, v)
        bits += np.where(high, k, 0)
    return bits + (v != 0)


def isqrt(n) -> np.ndarray:
    """``floor(sqrt(n))`` elementwise for integer ``n`` with ``0 <= n < 2**63``; returns int64."""
    n = _checks.int_array(_WHERE, "n", n)
    _checks.require_range(_WHERE, "n", n, 0, INT64_MAX)
    n = n.astype(np.int64)
    x = np.left_shift(np.int64(1), (bit_length(n) + 1) >> 1)
    active = n > 0
    x = np.where(active, x, np.int64(1))             # n == 0: keep the divisor non-zero, answer 0
    for _ in range(64):                              # the bound is never reached (<= 6 passes)
        if not active.any():
            break
        nxt = (x + n // x) >> 1
        active &= nxt < x
        x = np.where(active, nxt, x)
    return np.where(n > 0, x, np.int64(0))


def isqrt_planned(n: np.ndarray) -> np.ndarray:
    """``floor(sqrt(n))`` of an int64 array with ``0 <= n < 2**63`` (REQUIRE: the caller's bound proves
    it; nothing is checked), as ``isqrt`` gives it, in a fixed five passes instead of a Newton loop
    with a stopping test (about 10x faster on the few hundred row variances of a LayerNorm block).

    ``r = trunc(fl(sqrt(fl(n))))`` is within 1 of ``floor(sqrt(n))``: converting ``n`` and the square
    root each round once (relative error below ``2**-52`` together), and ``sqrt(n) < 2**31.5``, so
    the estimate is off by less than ``2**-20``, which moves its truncation by at most one either
    way. One step each way corrects it, in integers and without overflow: ``r`` down by one where
    ``r > n // r`` (``r*r > n``), then up by one where ``r + 1 <= n // (r + 1)`` (``(r+1)**2 <= n``).
    tests/kernels/test_sqrt.py pins it to ``isqrt`` on every ``n`` below 2**20, on squares and their
    neighbours at every power of two up to ``2**63 - 1``, and on random ``n``."""
    r = np.sqrt(n.astype(np.float64)).astype(np.int64)
    r -= r > n // np.maximum(r, np.int64(1))
    up = r + 1
    r += up <= n // up
    return r


def isqrt_fixed_iterations(n, iterations: int, start: int) -> np.ndarray:
    """Twin of ``intref.spec.sqrt.isqrt_fixed_iterations``: ``iterations`` Newton updates from ``start``
    with no stopping rule, elementwise; REQUIRE ``1 <= n < 2**62`` (RangeError naming the first index),
    ``1 <= start <= 2**32``, ``iterations >= 0``. int64: ``x + n // x < 2**62 + 2**32``."""
    n = _checks.int_array(_WHERE, "n", n)
    _checks.require_range(_WHERE, "n", n, 1, (1 << 62) - 1)
    start = _checks.require_int(_WHERE, "start", start, 1, 1 << 32)
    iterations = _checks.require_int(_WHERE, "iterations", iterations, 0, 1 << 20)
    n = n.astype(np.int64)
    x = np.full(n.shape, start, dtype=np.int64)
    for _ in range(iterations):
        x = (x + n // x) >> 1
    return x
