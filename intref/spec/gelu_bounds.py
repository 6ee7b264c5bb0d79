"""Exact range analysis of i-GELU (build and load time; Python ints): the proofs behind
``GeluParams``' ERROR_IF and ``GeluParams.output_range``. ``intref.spec.gelu`` holds the params and
the pseudocode; the notation (``B``, ``C``, ``K``, ``g``, ``T``) is its.
"""

from __future__ import annotations

import math

from ..errors import RangeError
from ..inttypes import INT64_MAX, INT64_MIN

_FIELDS = ("b_int", "c_int", "shift_int")


def int_type_range(bits: int) -> tuple:
    """``(lo, hi)`` of ``int<bits>``."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _cubic(u: int, b: int, e: int) -> int:
    return u * ((u + b) ** 2 + e)


def cubic_extremes(b: int, e: int, ua: int, ub: int) -> tuple:
    """Exact ``(min, max)`` of ``F(u) = u * ((u + b)**2 + e)`` over the integers ``ua <= u <= ub``.

    ``F'(u) = 3u**2 + 4bu + b**2 + e`` vanishes at ``u = (-2b +- sqrt(b**2 - 3e)) / 3``. F is
    monotone between its critical points, so its integer extremes lie at ``ua``, ``ub`` or the
    integers next to a critical point. With ``r = isqrt(b**2 - 3e)`` the larger root lies in
    ``[z, z + 4/3)`` for ``z = floor((-2b + r)/3)`` and the smaller in ``(z', z' + 4/3)`` for
    ``z' = floor((-2b - r - 1)/3)``: the candidates ``z..z+2`` and ``z'..z'+2`` cover both.
    """
    candidates = {ua, ub}
    disc = b * b - 3 * e
    if disc >= 0:
        r = math.isqrt(disc)
        for z in ((-2 * b + r) // 3, (-2 * b - r - 1) // 3):
            candidates.update(u for u in range(z, z + 3) if ua <= u <= ub)
    values = [_cubic(u, b, e) for u in candidates]
    return min(values), max(values)


def channel_output_range(b: int, c: int, k: int, g: int, in_lo: int, in_hi: int) -> tuple:
    """``(lo, hi)`` of ``i_gelu`` for one channel over integers ``in_lo <= q <= in_hi`` (see
    ``GeluParams.output_range``); ``b <= 0``."""
    t = -b
    pieces = []
    if in_lo <= 0 <= in_hi:
        pieces.append((0, 0))
    one = 1 << g
    # q > 0, 0 < q <= T: y = floor(P/2**g) in (P/2**g - 1, P/2**g]
    ua, ub = max(1, in_lo), min(t, in_hi)
    if ua <= ub:
        lo = cubic_extremes(b, c + k * one - one + 1, ua, ub)[0]
        hi = cubic_extremes(b, c + k * one, ua, ub)[1]
        pieces.append((-(-lo >> g), hi >> g))
    # q < 0, 0 < u = -q <= T: y = floor(-P/2**g) in (-P/2**g - 1, -P/2**g], result = -u * (y + K)
    ua, ub = max(1, -in_hi), min(t, -in_lo)
    if ua <= ub:
        lo = cubic_extremes(b, c - k * one, ua, ub)[0]
        hi = cubic_extremes(b, c + one - 1 - k * one, ua, ub)[1]
        pieces.append((-(-lo >> g), hi >> g))
    # the clipped tails: t = T, d = 0, P = C, y constant
    for q_a, q_b, m in ((max(t, 1, in_lo), in_hi, (c >> g) + k), (in_lo, min(-t, -1, in_hi), (-c >> g) + k)):
        if q_a <= q_b:
            pieces.append((min(q_a * m, q_b * m), max(q_a * m, q_b * m)))
    return min(p[0] for p in pieces), max(p[1] for p in pieces)


def intermediate_ranges(b: int, c: int, k: int, g: int, input_bits: int) -> list:
    """``[(name, lo, hi, allowed_lo)]``: sound bounds, computed exactly, of each intermediate of
    ``i_gelu`` as the kernel forms them (``-P`` included, for every element) over every ``q`` in
    ``int<input_bits>``; ``allowed_lo`` is the least value int64 admits there (``-2**63 + 1`` where
    the kernel also negates the value). The product is listed only when ``|q| * |y + K|`` could
    leave int64; then ``channel_output_range`` bounds it tightly."""
    q_lo, q_hi = int_type_range(input_bits)
    t_max = min(-q_lo, -b)
    d_sq = ((b + t_max) ** 2, b * b)
    poly = (d_sq[0] + c, d_sq[1] + c)
    signed_poly = (min(poly[0], -poly[1], 0), max(poly[1], -poly[0], 0))
    m = ((signed_poly[0] >> g) + k, (signed_poly[1] >> g) + k)
    ranges = [("b_int", b, b, -INT64_MAX), ("c_int", c, c, INT64_MIN), ("shift_int", k, k, INT64_MIN),
              ("(t + b_int)**2", *d_sq, INT64_MIN), ("(t + b_int)**2 + c_int", *poly, -INT64_MAX),
              ("y + shift_int", *m, INT64_MIN)]
    if -q_lo * max(-m[0], m[1]) <= INT64_MAX:     # |q| * |y + K| fits: so does the product
        return ranges
    return ranges + [("q * (y + shift_int)", *channel_output_range(b, c, k, g, q_lo, q_hi), INT64_MIN)]


def all_channels_proven_int64(b_values, c_values, k_values, g: int, input_bits: int) -> bool:
    """True when interval arithmetic over the extremes of the per-channel constants proves that
    EVERY channel passes ``require_int64_intermediates`` (a sufficient condition: False only means
    "check each channel"). With ``B = min b``, ``|C| = max |c|``, ``|K| = max |k|`` and every
    ``b <= 0``, each row of ``intermediate_ranges`` is bounded for every channel at once:

        b_int, c_int, shift_int   within [min, max] of their values
        (t + b_int)**2            in [0, B**2]                    ((b + t_max)**2 <= b**2)
        (t + b_int)**2 + c_int    in [min c, B**2 + max c]
        y + shift_int             in [(-P >> g) + min k, (P >> g) + max k],  P = B**2 + |C|
        q * (y + shift_int)       not listed: 2**(n-1) * max|y + K| <= 2**63 - 1 is required here

    so when these fit their allowed ranges, no channel's exact row can leave them. O(channels)
    in C-level min/max; the per-channel proof runs only when this returns False."""
    b_lo, b_hi = min(b_values), max(b_values)
    c_lo, c_hi = min(c_values), max(c_values)
    k_lo, k_hi = min(k_values), max(k_values)
    if b_hi > 0 or b_lo < -INT64_MAX or c_lo < INT64_MIN or c_hi > INT64_MAX or k_lo < INT64_MIN \
            or k_hi > INT64_MAX:
        return False
    b_sq = b_lo * b_lo
    if b_sq > INT64_MAX or c_lo < -INT64_MAX or b_sq + c_hi > INT64_MAX:
        return False
    p = b_sq + max(-c_lo, c_hi)
    m_lo, m_hi = ((-p) >> g) + k_lo, (p >> g) + k_hi
    if m_lo < INT64_MIN or m_hi > INT64_MAX:
        return False
    return (1 << (input_bits - 1)) * max(-m_lo, m_hi, 0) <= INT64_MAX


def require_int64_intermediates(owner, channel, b, c, k, g, input_bits) -> None:
    where = f"{owner}: " + ("" if channel is None else f"channel {channel}: ")
    index = None if channel is None else (channel,)
    if b > 0:
        raise RangeError(f"{where}b_int = {b} must be <= 0 (the clip point -b_int is |q|'s limit)",
                         argument="b_int", index=index, value=b)
    for name, lo, hi, allowed_lo in intermediate_ranges(b, c, k, g, input_bits):
        if lo < allowed_lo or hi > INT64_MAX:
            raise RangeError(f"{where}{name} reaches [{lo}, {hi}] for q in int{input_bits}, outside "
                             f"[{allowed_lo}, {INT64_MAX}]: these constants overflow int64 "
                             f"(b_int={b}, c_int={c}, shift_int={k}, guard_shift={g})",
                             argument=name if name in _FIELDS else "params", index=index, value=(lo, hi))
