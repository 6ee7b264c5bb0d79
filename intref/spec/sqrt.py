"""Integer square root by Newton's method with I-BERT's stopping rule (Alg. 4, I-Sqrt).

REQUIRE 0 <= n < 2**63

    if n == 0: return 0
    x = 2**ceil(bit_length(n) / 2)             # x >= sqrt(n): start above the root
    repeat: x' = floor((x + floor(n / x)) / 2)
            if x' >= x: return x               # the iterates decrease until they pass the root
            x = x'

Returns ``floor(sqrt(n))`` exactly (Crandall & Pomerance, Alg. 9.2.11). Widths: ``x <= 2**32``
and ``n // x <= 2**32`` so ``x + n // x`` fits 34 bits. The paper says at most four updates for
any INT32 input; in fact five 31-bit inputs need five (1074528350, 1119303883, 1149413397,
1185493737, 1332907078), so a hardware loop should allow one more pass than the paper states.
"""

from __future__ import annotations

from ..inttypes import INT64_MAX


def isqrt_with_count(n: int) -> tuple:
    """``(floor(sqrt(n)), number of Newton updates x -> x' taken)``."""
    if not 0 <= n <= INT64_MAX:
        raise ValueError(f"isqrt: n={n} is outside [0, 2**63)")
    if n == 0:
        return 0, 0
    x = 1 << ((n.bit_length() + 1) // 2)
    updates = 0
    while True:
        nxt = (x + n // x) >> 1
        if nxt >= x:
            return x, updates
        x, updates = nxt, updates + 1


def isqrt(n: int) -> int:
    """``floor(sqrt(n))`` for ``0 <= n < 2**63`` by the Newton iteration above."""
    return isqrt_with_count(n)[0]
