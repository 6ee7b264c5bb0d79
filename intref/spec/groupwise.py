"""Linear with input-dimension weight groups: the normative definition of ``group_linear``.

Group-wise weights along the input dimension (GPTQ/AWQ "g128", ZeroQuant-style fine-grained
scales) give every block of ``g`` consecutive inputs of an output row its own scale
``S_w[n][j]``. A float implementation dequantizes; an integer one must bring each group's partial
sum to one common scale before the groups can be added. Here, for one input row ``x`` of ``K``
ints, output channel ``n`` and ``G = K / g`` groups:

    P[n][j] = sum over k in j*g .. j*g+g-1 of x[k] * w[n][k]      int32: REQUIRE |P| <= 2**31 - 1
    R[n][j] = rshift_round(P[n][j] * m[n][j], shift, rounding)    |P * m| < 2**31 * 2**31 = 2**62:
                                                                  exact in int64; REQUIRE R fits int32
    y[n]    = bias[n] + sum over j of R[n][j]                     exact: |y| <= (G + 1) * 2**31

Widths: ``x`` at most 32 bits, ``w`` at most 16 bits (int4 or int8 in practice), ``m`` unsigned
31-bit mantissa with 2**31 itself allowed (0 <= m <= 2**31), ``shift`` in 0..127, ``bias`` int32;
partial sums int32, rescaled terms int32, the sum formed exactly (int64 in the kernel). The sum's
declared width is the graph's business: an op declares ``y``'s type (int32 by convention) and the
run's overflow policy applies there. Hardware that adds the int32 terms in a wrapping int32
accumulator gets this ``y`` whenever ``y`` fits int32, in any order of addition (two's-complement
addition is exact modulo 2**32).

Real meaning: with activation scale ``S_x`` and ``m[n][j] / 2**shift ~= S_w[n][j] / C[n]``, ``y[n]``
is in units of ``S_x * C[n]``: each group is rescaled to the row's common scale ``C[n]`` (build
time picks ``C[n] = max_j S_w[n][j] / 2**f`` with ``f`` fraction bits, ``intref.quant.groupwise``).
Each group is rounded once, by the named dialect (``intref.spec.rounding``), before the sum.
``m = 0`` drops a group. The output-row groups of ZeroQuant need none of this: one scale per
block of rows is a per-channel scale of the plain ``Linear`` followed by a per-channel requantize.
"""

from __future__ import annotations

from .rounding import ROUNDING_MODES, rshift_round

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
MULTIPLIER_MAX = 1 << 31
MAX_SHIFT = 127


def group_linear(x: list, weight: list, multiplier: list, shift: int, *, group_size: int, bias=None,
                 rounding: str = "half_even") -> list:
    """``y[n] = bias[n] + sum_j round(P[n][j] * multiplier[n][j] / 2**shift)`` for one input row.

    ``x``: K ints; ``weight``: N rows of K ints; ``multiplier``: N rows of ``K / group_size`` ints;
    ``bias``: N ints or None (zeros). Returns N Python ints. Raises ``ValueError`` on a broken
    REQUIRE (module docstring), naming the output channel and group.
    """
    _require_options(x, weight, multiplier, shift, group_size, bias, rounding)
    groups = len(x) // group_size
    out = []
    for n, w_row in enumerate(weight):
        total = 0 if bias is None else bias[n]
        for j in range(groups):
            partial = group_partial_sum(x, w_row, j, group_size)
            if not INT32_MIN <= partial <= INT32_MAX:
                raise ValueError(f"group_linear: partial sum P[{n}][{j}] = {partial} leaves int32")
            term = rshift_round(partial * multiplier[n][j], shift, rounding)   # |product| < 2**62
            if not INT32_MIN <= term <= INT32_MAX:
                raise ValueError(f"group_linear: rescaled term R[{n}][{j}] = {term} leaves int32")
            total += term
        out.append(total)
    return out


def group_partial_sum(x: list, w_row: list, j: int, group_size: int) -> int:
    """``P[j] = sum_{k in group j} x[k] * w_row[k]``, exact (Python ints never wrap)."""
    start = j * group_size
    return sum(x[k] * w_row[k] for k in range(start, start + group_size))


def _require_options(x, weight, multiplier, shift, group_size, bias, rounding) -> None:
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"group_linear: unknown rounding {rounding!r}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_linear: group_size={group_size!r} must be an int >= 1")
    if len(x) == 0 or len(x) % group_size:
        raise ValueError(f"group_linear: K = {len(x)} must be a positive multiple of group_size={group_size}")
    if not 0 <= shift <= MAX_SHIFT:
        raise ValueError(f"group_linear: shift={shift} is outside 0..{MAX_SHIFT}")
    _require_ints("x", [x], len(x), INT32_MIN, INT32_MAX)
    _require_ints("weight", weight, len(x), INT16_MIN, INT16_MAX)
    if len(multiplier) != len(weight):
        raise ValueError(f"group_linear: multiplier has {len(multiplier)} rows, weight {len(weight)}")
    _require_ints("multiplier", multiplier, len(x) // group_size, 0, MULTIPLIER_MAX)
    if bias is not None:
        if len(bias) != len(weight):
            raise ValueError(f"group_linear: bias has {len(bias)} values, weight {len(weight)} rows")
        _require_ints("bias", [bias], len(weight), INT32_MIN, INT32_MAX)


def _require_ints(name: str, rows: list, width: int, lo: int, hi: int) -> None:
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"group_linear: {name} row {i} has {len(row)} values, expected {width}")
        for k, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"group_linear: {name}[{i}][{k}] = {v!r} is not an int in [{lo}, {hi}]")
