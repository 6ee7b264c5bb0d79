"""NumPy twin of ``intref.spec.gelu_bounds``' output range: all channels of a ``GeluParams`` at
once, in int64, where a bound proves every intermediate fits; else the scalar spec itself.

``output_range(params, in_lo, in_hi)`` equals ``params.output_range(in_lo, in_hi)`` exactly (same
value, same errors; tests/kernels/test_gelu_bounds.py pins both sides of the int64 guard). The
notation (``B``, ``C``, ``K``, ``g``, ``T = -B``) is the spec's.
"""

from __future__ import annotations

import numpy as np

from ..spec.gelu import GeluParams
from .sqrt import isqrt

INT64_SAFE = 1 << 62        # every intermediate below stays under this when the guard holds


def int64_guard_holds(b_lo: int, c_abs: int, k_abs: int, g: int, in_lo: int, in_hi: int) -> bool:
    """True when, for every channel with ``b_lo <= b <= 0``, ``|c| <= c_abs``, ``|k| <= k_abs`` and
    every ``q`` in ``[in_lo, in_hi]``, each intermediate of ``channel_output_ranges`` is below 2**62
    in magnitude. With ``T = -b_lo``, ``Q = max(|in_lo|, |in_hi|)``, ``U = max(1, min(T, Q))`` and
    ``E = |C| + (|K| + 1) * 2**g`` (bounds every cubic's ``e``):

        discriminant   |b**2 - 3e| <= T**2 + 3E
        cubic          |u * ((u + b)**2 + e)| <= U * (T**2 + E)     (1 <= u <= U, |u + b| < T)
        tail product   |q * ((c >> g) + k)| <= max(T, Q) * ((|C| >> g) + 1 + |K|)
    """
    t_max, q_max = -b_lo, max(-in_lo, in_hi)
    e_max = c_abs + (k_abs + 1) * (1 << g)
    u_max = max(1, min(t_max, q_max))
    bounds = (q_max, t_max, t_max * t_max + 3 * e_max, u_max * (t_max * t_max + e_max),
              max(t_max, q_max) * ((c_abs >> g) + 1 + k_abs))
    return max(bounds) < INT64_SAFE


def cubic_extremes(b: np.ndarray, e: np.ndarray, ua: np.ndarray, ub: np.ndarray):
    """Twin of ``spec.gelu_bounds.cubic_extremes`` per channel: ``(min, max)`` int64 arrays of
    ``F(u) = u * ((u + b)**2 + e)`` over integers ``ua <= u <= ub``. REQUIRE ``ua <= ub`` in every
    channel and ``int64_guard_holds`` (the candidates are ``ua``, ``ub`` and the integers next
    to each critical point that lie in ``[ua, ub]``; one outside it is replaced by ``ua``)."""
    disc = b * b - 3 * e
    r = isqrt(np.maximum(disc, 0))
    candidates = [ua, ub]
    for z in ((-2 * b + r) // 3, (-2 * b - r - 1) // 3):
        for step in range(3):
            u = z + step
            candidates.append(np.where((disc >= 0) & (ua <= u) & (u <= ub), u, ua))
    u = np.stack(candidates)
    values = u * ((u + b) ** 2 + e)
    return values.min(axis=0), values.max(axis=0)


def channel_output_ranges(b, c, k, g: int, in_lo: int, in_hi: int):
    """Twin of ``spec.gelu_bounds.channel_output_range`` for every channel: ``(lo, hi)`` int64 arrays.
    REQUIRE ``int64_guard_holds`` for these constants and bounds, every ``b <= 0``."""
    t = -b
    one = np.int64(1 << g)
    lo_parts, hi_parts, present = [], [], []

    def piece(mask, lo, hi):
        lo_parts.append(lo)
        hi_parts.append(hi)
        present.append(np.broadcast_to(mask, t.shape))

    piece(np.bool_(in_lo <= 0 <= in_hi), np.zeros_like(t), np.zeros_like(t))
    for ua, ub, e_lo, e_hi in ((np.maximum(1, in_lo), np.minimum(t, in_hi), c + k * one - one + 1, c + k * one),
                               (np.maximum(1, -in_hi), np.minimum(t, -in_lo), c - k * one, c + one - 1 - k * one)):
        mask = ua <= ub
        ua, ub = np.where(mask, ua, 1), np.where(mask, ub, 1)        # an empty piece: any legal u
        lo = cubic_extremes(b, e_lo, ua, ub)[0]
        hi = cubic_extremes(b, e_hi, ua, ub)[1]
        piece(mask, -((-lo) >> g), hi >> g)
    for q_a, q_b, m in ((np.maximum(np.maximum(t, 1), in_lo), np.full_like(t, in_hi), (c >> g) + k),
                        (np.full_like(t, in_lo), np.minimum(np.minimum(-t, -1), in_hi), ((-c) >> g) + k)):
        piece(q_a <= q_b, np.minimum(q_a * m, q_b * m), np.maximum(q_a * m, q_b * m))
    present = np.stack(present)
    big = np.iinfo(np.int64)
    lo = np.where(present, np.stack(lo_parts), big.max).min(axis=0)
    hi = np.where(present, np.stack(hi_parts), big.min).max(axis=0)
    return lo, hi


def output_range(params: GeluParams, in_lo: int, in_hi: int) -> tuple:
    """``params.output_range(in_lo, in_hi)``: per-channel params all at once in int64 when
    ``int64_guard_holds``; per-tensor params, or a failed guard, by the scalar spec. The input
    checks and their errors are the spec's."""
    in_lo, in_hi = params.checked_input_range(in_lo, in_hi)
    b, c, k = params.columns()
    c_abs, k_abs = max(max(c), -min(c)), max(max(k), -min(k))
    if params.channels is None or not int64_guard_holds(min(b), c_abs, k_abs, params.guard_shift, in_lo, in_hi):
        return params.output_range(in_lo, in_hi)
    lo, hi = channel_output_ranges(*(np.array(v, dtype=np.int64) for v in (b, c, k)), params.guard_shift,
                                   in_lo, in_hi)
    return int(lo.min()), int(hi.max())
