"""The three blocks of the RTL flow, each as an intref graph plus the feeds that exercise it.

Only intref's public API is used (``intref.GraphBuilder``, ``intref.quant.prepare_gelu``), so a
verification engineer can copy this file as the template for their own block: describe the block
as a graph, pick feeds that hit its corner cases, and the rest of the flow (golden vectors,
simulation, ``intref verify``) does not change.

- ``requantize``: x int32 ``[rows, 16]`` through six Requantize nodes, one per rounding dialect
  plus one that wraps instead of saturating, all with the same 16 per-channel (multiplier, shift)
  pairs. The channels are chosen so that exact ties land inside the int8 range in every class
  (positive / negative, even / odd quotient), next to multipliers with a large odd part (the
  I-BERT case, where ties are rare and saturate), the 2**31 multiplier, 0, negative ones, and
  shifts 0, 1, 31, 32 (where double_round starts to differ) up to 63.
- ``gelu``: i-GELU on int16 with ``prepare_gelu``'s constants, swept exhaustively (all 65536 inputs).
- ``dot``: ``y = a @ b^T`` for int8 ``a [64, 64]``, ``b [64, 64]`` with int32 sums, the extremes
  (all -128 times all -128: 2**20) included.
"""

from __future__ import annotations

import numpy as np

from intref import GraphBuilder
from intref.quant import prepare_gelu

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

# (multiplier, shift) per channel of x's last axis; |multiplier| <= 2**31, 0 <= shift <= 63 (the RTL's port)
CHANNELS = (
    (1 << 31, 62),            # the largest multiplier: ties only at x = +-2**30
    (-(1 << 31), 40),         # negative: ties at x = 256 (mod 512), every class, shift > 31
    (1, 0),                   # identity: no rounding, saturation only
    (1, 1),                   # x / 2: every odd x is a tie
    (3, 2),                   # 3x / 4
    (1518500250, 38),         # an I-BERT-like mantissa (odd part 759250125: its ties saturate)
    (1 << 30, 32),            # x / 4 at shift 32: double_round's extra rounding starts here
    (-1234567891, 45),
    ((1 << 31) - 1, 31),
    (0, 5),                   # zero multiplier
    (5 << 28, 36),            # 5x / 2**8
    (127 << 24, 50),          # 127x / 2**26: ties at +-63.5 inside the range
    (1 << 31, 63),            # the largest shift: x / 2**32, one tie (x = -2**31 gives -1/2)
    (-1, 1),                  # -x / 2
    (1431655765, 33),         # ~2/3, odd: no tie fits int32
    (-(3 << 29), 33),         # -3x / 16 at shift 33: negative ties for double_round
)

# node name -> (rounding, overflow); the testbench has one RTL instance per node
REQUANT_NODES = {
    "y_half_even": ("half_even", "saturate"),
    "y_half_up": ("half_up", "saturate"),
    "y_half_away": ("half_away", "saturate"),
    "y_double_round": ("double_round", "saturate"),
    "y_floor": ("floor", "saturate"),
    "y_wrap": ("half_even", "wrap"),
}
REQUANT_ROWS_MAX = 1 << 16


def requant_graph():
    b = GraphBuilder("rtl-requantize", symbols={"rows": REQUANT_ROWS_MAX})
    x = b.input("x", "int32", ["rows", len(CHANNELS)])
    multipliers, shifts = [m for m, _ in CHANNELS], [s for _, s in CHANNELS]
    for name, (rounding, overflow) in REQUANT_NODES.items():
        b.output(b.add("Requantize", [x], "int8", name=name, attributes=dict(
            multiplier=multipliers, shift=shifts, rounding=rounding, overflow=overflow)))
    return b.build(producer={"name": "examples/rtl/blocks.py"})


def tie_values(multiplier: int, shift: int, reach: int = 6) -> list:
    """int32 values x with ``x * multiplier / 2**shift = k + 1/2`` exactly, for the ``reach`` ties
    nearest 0 on each side and those nearest the int8 saturation points.

    With ``multiplier = +-odd * 2**a`` and ``r = shift - a >= 1`` the ties are exactly
    ``x = (2j + 1) * 2**(r-1)``, where ``x * multiplier / 2**shift = +-(2j + 1) * odd / 2``: the
    quotient's parity alternates with j, so consecutive j cover even and odd k of both signs."""
    if multiplier == 0 or shift == 0:
        return []
    a = (abs(multiplier) & -abs(multiplier)).bit_length() - 1
    r = shift - a
    if r < 1:
        return []
    odd, step = abs(multiplier) >> a, 1 << (r - 1)
    j_edge = 128 // odd                                  # |(2j + 1) * odd / 2| near 128
    js = set(range(-reach, reach)) | set(range(j_edge - reach, j_edge + reach)) | \
        set(range(-j_edge - reach, -j_edge + reach))
    return sorted(x for x in ((2 * j + 1) * step for j in js) if INT32_MIN <= x <= INT32_MAX)


def boundary_values(multiplier: int, shift: int) -> list:
    """x next to where the exact quotient crosses the int8 limits (127 / 128 and -128 / -129)."""
    if multiplier == 0:
        return []
    out = []
    for target in (127, 128, -128, -129, 0):
        x0 = (target << shift) // multiplier
        out += [x for x in range(x0 - 2, x0 + 3) if INT32_MIN <= x <= INT32_MAX]
    return out


def requant_feeds(rows: int, seed: int = 2024) -> dict:
    """``{"x": int32 [rows, 16]}``: per channel the extremes, the saturation boundaries, every tie and
    its two neighbours first, then random values (a third in the int8 range after requantization, a
    third uniform over int32, a third small)."""
    if not 1 <= rows <= REQUANT_ROWS_MAX:
        raise ValueError(f"rows={rows}: 1..{REQUANT_ROWS_MAX}")
    rng = np.random.default_rng(seed)
    extremes = [INT32_MIN, INT32_MIN + 1, -2, -1, 0, 1, 2, INT32_MAX - 1, INT32_MAX]
    columns = []
    for multiplier, shift in CHANNELS:
        ties = tie_values(multiplier, shift)
        fixed = extremes + boundary_values(multiplier, shift) + [t + d for t in ties for d in (0, -1, 1)]
        fixed = [x for x in fixed if INT32_MIN <= x <= INT32_MAX][:rows]
        fill = rows - len(fixed)
        third = fill // 3
        targets = rng.integers(-160 << 8, 160 << 8, size=third).tolist()
        in_range = [] if multiplier == 0 else [min(max((t << shift) // (multiplier << 8), INT32_MIN), INT32_MAX)
                                               for t in targets]
        uniform = rng.integers(INT32_MIN, INT32_MAX, size=third, endpoint=True).tolist()
        small = rng.integers(-1024, 1024, size=fill - len(in_range) - len(uniform), endpoint=True).tolist()
        columns.append(np.array(fixed + in_range + uniform + small, dtype=np.int64))
    return {"x": np.stack(columns, axis=1).astype(np.int32)}


def tie_classes(x: np.ndarray) -> dict:
    """Per tie class, how many elements of ``x [rows, 16]`` are exact ties whose rounded value is
    inside int8 (a saturated tie cannot tell the dialects apart). Classes: ``+even``, ``+odd``,
    ``-even``, ``-odd`` (sign of x*m, parity of k = floor(x*m / 2**s))."""
    counts = {"+even": 0, "+odd": 0, "-even": 0, "-odd": 0}
    for c, (multiplier, shift) in enumerate(CHANNELS):
        if shift == 0:
            continue
        for v in (int(x) * multiplier for x in x[:, c].tolist()):
            k = v >> shift
            if v & ((1 << shift) - 1) == 1 << (shift - 1) and -129 <= k <= 127:
                counts[("+" if v > 0 else "-") + ("odd" if k & 1 else "even")] += 1
    return counts


def hex_words(values, bits: int) -> str:
    """One two's-complement word a line at ``bits`` rounded up to whole nibbles: the ``.hex`` format
    of ``intref golden`` (and ``$readmemh``)."""
    digits, mask = (bits + 3) // 4, (1 << bits) - 1
    return "".join(f"{int(v) & mask:0{digits}x}\n" for v in values)


# ---- i-GELU ----------------------------------------------------------------------------------------

GELU_INPUT_BITS, GELU_SCALE = 16, 4.0 / 32767


def gelu_graph():
    params = prepare_gelu(GELU_SCALE, input_bits=GELU_INPUT_BITS, guard_shift=14)
    n = 1 << GELU_INPUT_BITS
    b = GraphBuilder("rtl-i-gelu")
    q = b.input("q", f"int{GELU_INPUT_BITS}", [n], scale=GELU_SCALE)
    b.output(b.add("IGelu", [q], "int32", name="y", scale=params.out_scale, attributes=dict(
        b_int=params.b_int, c_int=params.c_int, shift_int=params.shift_int, guard_shift=params.guard_shift)))
    return b.build(producer={"name": "examples/rtl/blocks.py"})


def gelu_feeds() -> dict:
    """Every int16 value, in order: the sweep is exhaustive."""
    lo = -(1 << (GELU_INPUT_BITS - 1))
    return {"q": np.arange(lo, -lo, dtype=np.int16)}


# ---- int8 dot-product tile -----------------------------------------------------------------------

DOT_M, DOT_N, DOT_K = 64, 64, 64


def dot_graph():
    b = GraphBuilder("rtl-dot-tile")
    a = b.input("a", "int8", [DOT_M, DOT_K])
    w = b.input("b", "int8", [DOT_N, DOT_K])
    b.output(b.add("MatMul", [a, w], "int32", name="y", attributes=dict(transpose_b=True)))
    return b.build(producer={"name": "examples/rtl/blocks.py"})


def dot_feeds(seed: int = 7) -> dict:
    """Random int8 rows, with rows 0..3 of each operand all -128, all 127, alternating -128/127, 0."""
    rng = np.random.default_rng(seed)
    fixed = np.array([[-128] * DOT_K, [127] * DOT_K, [-128, 127] * (DOT_K // 2), [0] * DOT_K])
    feeds = {}
    for name, rows in (("a", DOT_M), ("b", DOT_N)):
        data = rng.integers(-128, 127, size=(rows, DOT_K), endpoint=True)
        data[:len(fixed)] = fixed
        feeds[name] = data.astype(np.int8)
    return feeds
