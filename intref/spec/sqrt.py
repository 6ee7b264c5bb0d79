"""Integer square root by Newton's method with I-BERT's stopping rule (Alg. 4, I-Sqrt).

REQUIRE 0 <= n < 2**63

    if n == 0: return 0
    x = 2**ceil(bit_length(n) / 2)             # x >= sqrt(n): start above the root
    repeat: x' = floor((x + floor(n / x)) / 2)
            if x' >= x: return x               # the iterates decrease until they pass the root
            x = x'

Returns ``floor(sqrt(n))`` exactly (Crandall & Pomerance, Alg. 9.2.11). Widths: ``x <= 2**32``
and ``n // x <= 2**32`` so ``x + n // x`` fits 34 bits. The paper says at most four updates for
any INT32 input; in fact 148,722 inputs below 2**32 need five (the first is 16785408; 133,635 of
them have 31 bits, e.g. 1074528350) and none needs six (``newton_update_runs`` counts every input
exactly), so a hardware loop must allow five updates, one more than the paper states.
"""

from __future__ import annotations

from ..errors import RangeError
from ..inttypes import INT64_MAX


def isqrt_with_count(n: int, max_updates=None) -> tuple:
    """``(x, number of Newton updates x -> x' taken)``; ``x == floor(sqrt(n))`` when the loop ends by
    its stopping rule.

    ``max_updates`` models a hardware loop with a fixed bound: the loop also ends after that many
    updates (REQUIRE ``max_updates >= 0``), and ``x`` is then the current iterate, which exceeds
    ``floor(sqrt(n))`` exactly when the unbounded loop needs more updates (the iterates decrease
    strictly until the stop). ``None``: no bound.
    """
    if not 0 <= n <= INT64_MAX:
        raise RangeError(f"isqrt: n={n} is outside [0, 2**63)", argument="n", value=n)
    if max_updates is not None and max_updates < 0:
        raise RangeError(f"isqrt: max_updates={max_updates} is negative", argument="max_updates", value=max_updates)
    if n == 0:
        return 0, 0
    x = 1 << ((n.bit_length() + 1) // 2)
    updates = 0
    while max_updates is None or updates < max_updates:
        nxt = (x + n // x) >> 1
        if nxt >= x:
            return x, updates
        x, updates = nxt, updates + 1
    return x, updates


def isqrt(n: int) -> int:
    """``floor(sqrt(n))`` for ``0 <= n < 2**63`` by the Newton iteration above."""
    return isqrt_with_count(n)[0]


def newton_update_runs(lo: int, hi: int) -> list:
    """Every ``n`` in ``[lo, hi]`` with its Newton update count, as maximal runs ``(first, last, updates)``:
    ``isqrt_with_count(n)[1] == updates`` for ``first <= n <= last``; runs in increasing order, covering
    ``[lo, hi]``. REQUIRE ``0 <= lo <= hi < 2**63`` (RangeError).

    Exact and exhaustive without visiting each ``n``: the inputs sharing a bit length share ``x0``, and
    an interval of inputs sharing the iterate ``x`` splits into pieces on which ``n // x`` is constant
    (length ``x``), each of which shares the next iterate ``(x + n // x) >> 1`` or stops. Cost: about
    ``(hi - lo) / sqrt(hi)`` pieces per update, so ``[0, 2**32)`` takes a few seconds in Python.
    """
    if not 0 <= lo <= hi < (1 << 63):
        raise RangeError(f"newton_update_runs: [{lo}, {hi}] is empty or outside [0, 2**63)", argument="lo")
    done = [(0, 0, 0)] if lo == 0 else []
    active = []
    for bits in range(max(lo, 1).bit_length(), hi.bit_length() + 1):
        first, last = max(lo, 1 << (bits - 1)), min(hi, (1 << bits) - 1)
        active.append((first, last, 1 << ((bits + 1) // 2)))
    updates = 0
    while active:
        following = []
        for first, last, x in active:
            for quotient in range(first // x, last // x + 1):
                a, z = max(first, quotient * x), min(last, quotient * x + x - 1)
                nxt = (x + quotient) >> 1
                if nxt >= x:
                    done.append((a, z, updates))
                else:
                    following.append((a, z, nxt))
        active, updates = following, updates + 1
    done.sort()
    runs = [done[0]]
    for first, last, count in done[1:]:
        if count == runs[-1][2] and first == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], last, count)
        else:
            runs.append((first, last, count))
    return runs


def isqrt_fixed_iterations(n: int, iterations: int, start: int) -> int:
    """Newton without I-BERT's stopping rule, as fixed-latency hardware (and I-ViT's I-LayerNorm:
    ``iterations = 10``, ``start = 2**16``) runs it:

        x = start
        repeat iterations times: x = floor((x + floor(n / x)) / 2)
        return x

    Not ``floor(sqrt(n))`` in general: too few iterations from a far start leave ``x`` above the root,
    and past the root the update oscillates between ``r`` and ``r + 1`` when ``n = (r + 1)**2 - 1``.
    ``x`` stays >= 1 for ``n >= 1`` (for x >= 2, x >> 1 >= 1; for x = 1, (1 + n) >> 1 >= 1).
    REQUIRE ``1 <= n < 2**62``, ``1 <= start <= 2**32``, ``iterations >= 0`` (RangeError); then
    ``x + n // x < 2**62 + 2**32`` fits int64.
    """
    if not 1 <= n < (1 << 62):
        raise RangeError(f"isqrt_fixed_iterations: n={n} is outside [1, 2**62)", argument="n", value=n)
    if not 1 <= start <= (1 << 32) or iterations < 0:
        raise RangeError(f"isqrt_fixed_iterations: start={start} must be in [1, 2**32] and "
                         f"iterations={iterations} >= 0", argument="start" if iterations >= 0 else "iterations")
    x = start
    for _ in range(iterations):
        x = (x + n // x) >> 1
    return x
