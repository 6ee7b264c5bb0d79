"""Hypothesis strategies that draw legal inputs for the elementwise kernels: ``requantize``,
``matmul`` and ``isqrt`` (the nonlinear kernels live in ``intref.testing.strategies_nonlinear``).

Public entry: ``intref.testing``. Every strategy draws a ``dict`` of keyword arguments that can be
passed straight to its kernel (``kernel(**case)``) and that satisfies every REQUIRE of the kernel,
so the intref kernel never raises on a draw. Edges are drawn on purpose, not left to luck: type
extremes, exact rounding ties (``x * m / 2**s = k + 1/2``), saturation boundaries, per-channel
parameters, exactness boundaries of the GEMM paths.
"""

from __future__ import annotations

from math import isqrt as _isqrt_floor

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..inttypes import INT64_MAX, OVERFLOW_MODES, IntType
from ..kernels.gemm import OPERAND_DTYPES
from ..spec.rounding import ROUNDING_MODES

INPUT_DTYPES = tuple(np.dtype(d) for d in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"))
# 31-bit inputs that need five Newton updates of I-BERT's isqrt (intref.spec.sqrt).
ISQRT_FIVE_UPDATES = (1074528350, 1119303883, 1149413397, 1185493737, 1332907078)


# ---- small shared helpers -----------------------------------------------------------------------

def dtype_range(dtype) -> tuple:
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def edgy_integers(lo: int, hi: int, *specials) -> st.SearchStrategy:
    """Integers in ``[lo, hi]``: uniform, or one of the ends, 0, +-1 and ``specials`` (about 1/3)."""
    edges = sorted({v for v in (lo, hi, lo + 1, hi - 1, 0, 1, -1, *specials) if lo <= v <= hi})
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi), st.integers(lo, hi))


def weighted(pairs) -> list:
    """Branches for ``st.one_of`` with integer weights: ``one_of`` drops repeats of the same strategy
    object, so each repeat is a distinct wrapper."""
    return [strategy.map(lambda v: v) for strategy, weight in pairs for _ in range(weight)]


def as_choices(name: str, value, allowed) -> tuple:
    """A non-empty tuple of allowed choices from one choice or a sequence of them."""
    choices = (value,) if isinstance(value, (str, bool, int, np.dtype, type)) else tuple(value)
    bad = [c for c in choices if c not in allowed]
    if not choices or bad:
        raise ValueError(f"{name}: {bad or 'nothing'} is not a subset of {list(allowed)}")
    return choices


def as_dtypes(name: str, dtypes, allowed) -> tuple:
    dtypes = allowed if dtypes is None else tuple(np.dtype(d) for d in np.atleast_1d(np.asarray(dtypes, object)))
    return as_choices(name, tuple(np.dtype(d) for d in dtypes), tuple(np.dtype(d) for d in allowed))


def shapes_strategy(shapes, *, min_dims: int = 0, max_dims: int = 3, max_side: int = 6) -> st.SearchStrategy:
    """``shapes`` as a strategy: a fixed tuple, a strategy, or None (mostly non-empty arrays of at
    least one dimension; sometimes empty, sometimes 0-d)."""
    if shapes is None:
        non_empty = hnp.array_shapes(min_dims=max(min_dims, 1), max_dims=max_dims, min_side=1, max_side=max_side)
        rare = [st.sampled_from([(0,), (2, 0), (0, 3)])] + ([st.just(())] if min_dims == 0 else [])
        return st.one_of(weighted([(non_empty, 6)] + [(r, 1) for r in rare]))
    if isinstance(shapes, st.SearchStrategy):
        return shapes
    return st.just(tuple(int(n) for n in shapes))


def draw_array(draw, shape: tuple, dtype, element_for_channel) -> np.ndarray:
    """An array whose element at ``[..., c]`` is drawn from ``element_for_channel(c)`` (c = 0 for 0-d)."""
    channels = shape[-1] if shape else 1
    per_channel = [element_for_channel(c) for c in range(channels)]
    size = int(np.prod(shape, dtype=np.int64))
    values = [draw(per_channel[i % channels]) for i in range(size)]
    return np.array(values, dtype=object).reshape(shape).astype(dtype)


# ---- requantize ---------------------------------------------------------------------------------

def requantize_cases(*, dtypes=None, shapes=None, roundings=ROUNDING_MODES, per_channel=None,
                     overflows=("saturate", "wrap"), bits=None, signed=None,
                     multiplier_range=(-(1 << 31), 1 << 31), shift_range=(0, 127)) -> st.SearchStrategy:
    """Legal ``requantize`` arguments: ``dict(x, multiplier, shift, rounding, bits, signed, overflow)``.

    ``x``: ndarray of one of ``dtypes`` (default every integer dtype but uint64) and a shape from
    ``shapes`` (a tuple, a strategy, or None: 0 to 3 dims, sides up to 6, sometimes empty).
    ``multiplier``/``shift``: Python ints (per tensor) or int64 arrays of shape ``(x.shape[-1],)``
    (per channel); ``per_channel`` True/False forces one, None draws both. ``rounding`` from
    ``roundings``, ``overflow`` from ``overflows`` (``"check"`` is allowed: then ``x`` is drawn so
    that no result leaves the output type, and the kernel never raises), ``bits`` 1..32 (or an int /
    sequence), ``signed`` (or a bool). ``multiplier_range``/``shift_range`` narrow the parameters to a
    port's own contract (inclusive bounds inside ``[-2**31, 2**31]`` and ``[0, 127]``).

    Edges: x at the dtype's extremes, 0, +-1; exact ties ``x * m = (2k + 1) * 2**(s-1)`` and their
    neighbours, double_round's thresholds ``2**(s-1) +- 2**30`` (when ``s > 31``), results at the
    saturation boundary; multipliers 0, +-1, +-2**31, powers of two (which make ties reachable).
    """
    roundings = as_choices("roundings", roundings, ROUNDING_MODES)
    overflows = as_choices("overflows", overflows, OVERFLOW_MODES)
    bits_choices = as_choices("bits", bits, range(1, 33)) if bits is not None else None
    signed_choices = as_choices("signed", signed, (True, False)) if signed is not None else (True, False)
    dtypes = as_dtypes("dtypes", dtypes, INPUT_DTYPES)
    m_lo, m_hi = (int(v) for v in multiplier_range)
    s_lo, s_hi = (int(v) for v in shift_range)
    if not (-(1 << 31) <= m_lo <= m_hi <= 1 << 31 and 0 <= s_lo <= s_hi <= 127):
        raise ValueError(f"multiplier_range {multiplier_range} or shift_range {shift_range} is empty or illegal")
    shapes = shapes_strategy(shapes, min_dims=1 if per_channel else 0)
    bits_st = (st.sampled_from(bits_choices) if bits_choices else
               st.one_of(st.sampled_from([8, 16, 32, 1, 4]), st.integers(1, 32)))
    return _requantize_case(dtypes, shapes, roundings, per_channel, overflows, bits_st, signed_choices,
                            (m_lo, m_hi), (s_lo, s_hi))


@st.composite
def _requantize_case(draw, dtypes, shapes, roundings, per_channel, overflows, bits_st, signed_choices,
                     m_range, s_range):
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(shapes)
    if per_channel and not shape:
        raise ValueError("requantize_cases: per_channel=True needs shapes with at least one dimension")
    channel_wise = bool(shape) and (per_channel if per_channel is not None else draw(st.booleans()))
    out_type = IntType(draw(bits_st), draw(st.sampled_from(signed_choices)))
    rounding, overflow = draw(st.sampled_from(roundings)), draw(st.sampled_from(overflows))
    x_bits = np.dtype(dtype).itemsize * 8
    params = [draw(_multiplier_and_shift(m_range, s_range, x_bits))
              for _ in range(shape[-1] if channel_wise else 1)]
    lo, hi = dtype_range(dtype)
    x = draw_array(draw, shape, np.int64, lambda c: _x_values(*params[c if channel_wise else 0], lo, hi, out_type))
    if overflow == "check":
        x = _fit_for_check(x, params, channel_wise, (lo, hi), out_type)
    if channel_wise:
        multiplier = np.array([m for m, _ in params], dtype=np.int64)
        shift = np.array([s for _, s in params], dtype=np.int64)
    else:
        multiplier, shift = params[0]
    return dict(x=x.astype(dtype), multiplier=multiplier, shift=shift, rounding=rounding, bits=out_type.bits,
                signed=out_type.signed, overflow=overflow)


def two_adic_valuation(m: int) -> int:
    """The exponent of the largest power of two dividing ``m != 0``."""
    return (m & -m).bit_length() - 1


@st.composite
def _multiplier_and_shift(draw, m_range, s_range, x_bits):
    m_lo, m_hi = m_range
    odd_times_pow2 = st.builds(lambda o, j: (2 * o + 1) << j, st.integers(-8, 7), st.integers(0, 31))
    m = draw(st.one_of(odd_times_pow2, st.integers(1 << 30, 1 << 31),
                       edgy_integers(m_lo, m_hi, 1 << 30, 1 << 31, -(1 << 31), (1 << 31) - 1)))
    m = min(max(m, m_lo), m_hi)
    j = two_adic_valuation(m) if m else 0
    s_lo, s_hi = s_range
    # shifts just above the multiplier's power of two make ties reachable by small x
    s = draw(st.one_of(weighted([(st.integers(j + 1, j + x_bits), 2), (edgy_integers(s_lo, s_hi, 31, 32, 33), 1)])))
    return m, min(max(s, s_lo), s_hi)


def residue_class(m: int, s: int, target: int, lo: int, hi: int):
    """``(x0, period, kmin, kmax)``: every ``x = x0 + k * period`` (``kmin <= k <= kmax``) has
    ``x * m = target (mod 2**s)`` and ``lo <= x <= hi``; None when no such x exists."""
    if s == 0 or m == 0:
        return None
    j = two_adic_valuation(m)
    target %= 1 << s
    if j >= s or target % (1 << j):
        return None
    period = 1 << (s - j)
    x0 = ((target >> j) * pow(m >> j, -1, period)) % period
    kmin, kmax = -((x0 - lo) // period), (hi - x0) // period
    return (x0, period, kmin, kmax) if kmin <= kmax else None


def _x_values(m: int, s: int, lo: int, hi: int, out_type: IntType) -> st.SearchStrategy:
    """Values of x for one channel: uniform, extremes, ties and their neighbours, saturation edges."""
    half = 1 << max(s - 1, 0)
    step = 1 << two_adic_valuation(m) if m else 1
    near = [half - step, half + step, 0] + ([half - (1 << 30), half + (1 << 30)] if s > 31 else [])
    ties, neighbours = ([c for c in (residue_class(m, s, t, lo, hi) for t in targets) if c]
                        for targets in ([half], near))
    saturation = []
    if m:
        for t in (out_type.hi, out_type.lo - 1):   # x * m / 2**s near t + 1/2: where clamping starts
            centre = ((2 * t + 1) << s) // (2 * m)
            saturation += [min(max(centre + d, lo), hi) for d in (-1, 0, 1)]
    branches = [st.integers(lo, hi), st.sampled_from([lo, hi]), st.sampled_from(sorted({0, min(1, hi), max(-1, lo)}))]
    branches += [st.sampled_from(sorted(set(saturation)))] if saturation else []
    return st.one_of(weighted([(b, 1) for b in branches] + [(_residue_values(c), w) for c, w in ((ties, 3),
                                                                                             (neighbours, 1)) if c]))


def _residue_values(classes) -> st.SearchStrategy:
    """Members ``x0 + k * period`` of one of the residue classes (see ``residue_class``)."""
    return st.sampled_from(classes).flatmap(lambda c: st.integers(c[2], c[3]).map(lambda k: c[0] + k * c[1]))


def _fit_for_check(x: np.ndarray, params, channel_wise: bool, x_range, out_type: IntType) -> np.ndarray:
    """Move each x so that ``x * m / 2**s`` lies in ``[lo + 1, hi - 1]`` (or x = 0): every dialect
    then rounds into ``[lo, hi]``, since each moves the exact value by less than 1."""
    out = x.copy()
    for index in np.ndindex(*x.shape):
        m, s = params[index[-1] if channel_wise else 0]
        if m == 0:
            continue
        a, b = (out_type.lo + 1) << s, (out_type.hi - 1) << s
        if m < 0:
            a, b = -b, -a
            m = -m
        low, high = max(-(-a // m), x_range[0]), min(b // m, x_range[1])
        out[index] = min(max(int(x[index]), low), high) if low <= high else 0
    return out


# ---- matmul -------------------------------------------------------------------------------------

def matmul_operands(*, dtypes=None, max_side: int = 6, max_batch_dims: int = 2) -> st.SearchStrategy:
    """Legal ``matmul`` arguments: ``dict(a, b)``, ndarrays of shapes ``(..., M, K)`` and ``(..., K, N)``
    with broadcasting batch dims (up to ``max_batch_dims``), sides up to ``max_side`` (sometimes 0),
    each of one of ``dtypes`` (default int8, int16, int32, uint8, uint16, mixed freely).

    The REQUIRE ``max|a| * max|b| * K <= 2**63 - 1`` always holds: each operand gets a magnitude cap
    first (the dtype's whole range, a power of two, or the cap that puts the bound right at 2**24 per
    product or 2**53 in total, the float paths' exactness limits), then values within it with the
    cap, the dtype's extremes, 0 and +-1 drawn often.
    """
    dtypes = as_dtypes("dtypes", dtypes, OPERAND_DTYPES)
    shapes = st.one_of(*(hnp.mutually_broadcastable_shapes(signature="(m,k),(k,n)->(m,n)", max_dims=max_batch_dims,
                                                            min_side=side, max_side=max_side) for side in (1, 1, 0)))
    return _matmul_case(dtypes, shapes)


@st.composite
def _matmul_case(draw, dtypes, shapes):
    shape_a, shape_b = draw(shapes).input_shapes
    dtype_a, dtype_b = draw(st.sampled_from(dtypes)), draw(st.sampled_from(dtypes))
    k = shape_a[-1]
    range_a, range_b = dtype_range(dtype_a), dtype_range(dtype_b)
    top_a, top_b = max(-range_a[0], range_a[1]), max(-range_b[0], range_b[1])
    cap_a = draw(st.one_of(st.just(top_a), st.integers(0, top_a.bit_length() - 1).map(lambda e: 1 << e)))
    limit_b = min(top_b, INT64_MAX // max(cap_a * k, 1))
    exact_caps = [c for c in ((1 << 24) // max(cap_a, 1), (1 << 53) // max(cap_a * k, 1)) if 0 < c <= limit_b]
    cap_b = draw(st.one_of(st.just(limit_b), st.sampled_from(exact_caps or [limit_b]), st.integers(0, limit_b)))
    return dict(a=_capped_array(draw, shape_a, dtype_a, cap_a), b=_capped_array(draw, shape_b, dtype_b, cap_b))


def _capped_array(draw, shape, dtype, cap: int) -> np.ndarray:
    lo, hi = dtype_range(dtype)
    values = edgy_integers(max(lo, -cap), min(hi, cap))
    return draw(hnp.arrays(dtype, shape, elements=values, fill=st.nothing()))


# ---- isqrt --------------------------------------------------------------------------------------

def isqrt_inputs(*, dtypes=None, shapes=None, max_value: int = INT64_MAX) -> st.SearchStrategy:
    """Legal ``isqrt`` arguments: ``dict(n)``, an ndarray of one of ``dtypes`` (default every integer
    dtype but uint64) with values in ``[0, min(max_value, dtype max)]``.

    Edges: 0, 1, the maximum, perfect squares and their neighbours ``k**2 - 1``, ``k**2 + 1``
    (where floor(sqrt) steps), powers of two +-1, and the five 31-bit inputs that need five Newton
    updates (``intref.spec.sqrt``).
    """
    dtypes = as_dtypes("dtypes", dtypes, INPUT_DTYPES)
    if not 0 <= int(max_value) <= INT64_MAX:
        raise ValueError(f"isqrt_inputs: max_value={max_value} is outside [0, 2**63 - 1]")
    return _isqrt_case(dtypes, shapes_strategy(shapes), int(max_value))


@st.composite
def _isqrt_case(draw, dtypes, shapes, max_value):
    dtype = draw(st.sampled_from(dtypes))
    top = min(max_value, dtype_range(dtype)[1])
    root = _isqrt_floor(top)
    squares = st.integers(0, root).flatmap(lambda r: st.sampled_from([r * r - 1, r * r, r * r + 1]))
    pow2 = st.integers(0, top.bit_length()).flatmap(lambda e: st.sampled_from([(1 << e) - 1, 1 << e, (1 << e) + 1]))
    specials = st.sampled_from([0, 1, 2, 3, 4, top, top - 1, *ISQRT_FIVE_UPDATES])
    values = st.one_of(st.integers(0, top), squares, squares, pow2, specials).map(lambda v: min(max(v, 0), top))
    return dict(n=draw(hnp.arrays(dtype, draw(shapes), elements=values, fill=st.nothing())))
