"""Hypothesis strategies for the nonlinear kernels: ``i_gelu``, ``i_exp``, ``i_softmax``, ``i_layernorm``.

Public entry: ``intref.testing``. Each strategy draws ``dict(q=..., params=...)`` (softmax adds
``axis``) that goes straight into the kernel. Params come two ways, both legal by construction:
``"prepared"`` (``intref.quant.prepare_*`` over a range of scales and widths: what a real model
carries) and ``"raw"`` (integer constants drawn over the whole range the params class accepts,
built so that its int64-safety proof passes: what a converter or a hand-written graph may carry).
Where ``prepare_*`` refuses a drawn scale for the drawn width, the raw construction is used.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .strategies import as_choices, draw_array, edgy_integers, weighted
from ..errors import RangeError
from ..inttypes import INT64_MAX, INT64_MIN, IntType
from ..quant import prepare_gelu, prepare_layernorm, prepare_softmax
from ..spec.gelu import GeluParams
from ..spec.layernorm import LayerNormParams
from ..spec.layernorm_bounds import min_safe_shift, normalized_range
from ..spec.softmax import EXP_ROUNDING_MODES, SoftmaxParams

SOURCES = ("prepared", "raw")


def _options(input_bits, source, lo=2, hi=63):
    bits = (st.sampled_from(as_choices("input_bits", input_bits, range(lo, hi + 1))) if input_bits is not None
            else st.one_of(st.sampled_from([8, 16, 22, 32]), st.integers(lo, hi)))
    return bits, as_choices("source", source if source is not None else SOURCES, SOURCES)


def _fixed_params(params, cls):
    """The ``params`` option: None (draw them), a ``cls`` instance (always it) or a strategy of them."""
    if params is None or isinstance(params, st.SearchStrategy):
        return params
    if isinstance(params, cls):
        return st.just(params)
    raise TypeError(f"params must be None, a {cls.__name__} or a strategy of them, got {type(params).__name__}")


def _int_range(bits: int) -> tuple:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _q_dtype(draw, bits: int):
    return draw(st.sampled_from([IntType(bits).storage, np.dtype(np.int64)]))


def _leading_shape(draw, max_dims: int = 2, max_side: int = 3) -> tuple:
    return draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=1, max_side=max_side))


# ---- i_gelu -------------------------------------------------------------------------------------

def gelu_cases(*, input_bits=None, per_channel=None, source=None, max_channels: int = 6,
               params=None) -> st.SearchStrategy:
    """Legal ``i_gelu`` arguments: ``dict(q, params)``.

    ``params``: a ``GeluParams`` for ``input_bits`` (default: 8, 16, 22, 32 or any of 2..63), per
    tensor or per channel (``per_channel`` True/False/None, up to ``max_channels`` channels),
    prepared (``prepare_gelu`` at scales ``2**-29 .. 4``, guard 14, ``"auto"`` or any) or raw
    (``source`` restricts); ``params=`` a ``GeluParams`` or a strategy of them pins them (the other
    options are then unused). ``q``: ndarray (storage dtype of ``int<input_bits>`` or int64; last axis
    ``params.channels`` when per channel) with values in ``int<input_bits>``: the extremes, 0, +-1,
    the clip points ``+-(-b_int)`` and their neighbours, values inside the polynomial's range.
    """
    bits, sources = _options(input_bits, source)
    return _gelu_case(bits, sources, per_channel, max_channels, _fixed_params(params, GeluParams))


@st.composite
def _gelu_case(draw, bits_st, sources, per_channel, max_channels, params_st):
    params = draw(params_st) if params_st is not None else _draw_gelu_params(draw, bits_st, sources, per_channel,
                                                                            max_channels)
    bits, channels = params.input_bits, params.channels
    channel_wise = channels is not None
    shape = _leading_shape(draw) + (channels,) if channel_wise else draw(hnp.array_shapes(min_dims=0, max_dims=3,
                                                                                           max_side=4))
    lo, hi = _int_range(bits)
    b_int = params.b_int if isinstance(params.b_int, tuple) else (params.b_int,) * (channels or 1)
    clips = [-b for b in b_int]

    def element(c):
        t = clips[c if channel_wise else 0]
        near = st.integers(max(lo, -t - 2), min(hi, t + 2))
        return st.one_of(edgy_integers(lo, hi, t, t - 1, t + 1, -t, -t - 1, -t + 1), near)
    q = draw_array(draw, shape, _q_dtype(draw, bits), element)
    return dict(q=q, params=params)


def _draw_gelu_params(draw, bits_st, sources, per_channel, max_channels) -> GeluParams:
    bits = draw(bits_st)
    channel_wise = per_channel if per_channel is not None else draw(st.booleans())
    channels = draw(st.integers(1, max_channels)) if channel_wise else None
    params = _prepared_gelu(draw, bits, channels) if draw(st.sampled_from(sources)) == "prepared" else None
    return params if params is not None else _raw_gelu(draw, bits, channels)


def _prepared_gelu(draw, bits, channels):
    exponents = st.floats(-29.0, 2.0)
    scale = ([2.0 ** draw(exponents) for _ in range(channels)] if channels else 2.0 ** draw(exponents))
    guard = draw(st.one_of(st.sampled_from(["auto", 14]), st.integers(0, 62)))
    for g in (guard, "auto"):
        try:
            return prepare_gelu(np.array(scale) if channels else scale, input_bits=bits, guard_shift=g)
        except RangeError:
            continue
    return None


def _raw_gelu(draw, bits, channels):
    """Constants with ``|q * (y + shift_int)| <= 2**62`` by construction: ``|y + K| <= 2**(63 - bits)``."""
    cap = 1 << (63 - bits)
    pairs = []
    for _ in range(channels or 1):
        clip = draw(edgy_integers(0, 1 << 30, 1 << (bits - 1) if bits <= 31 else 0, 20494))
        c_bits = draw(st.integers(0, 60))
        pairs.append((clip, draw(st.integers(-(1 << c_bits), 1 << c_bits))))
    p_max = max(t * t + abs(c) for t, c in pairs)          # |P| <= clip**2 + |c_int| < 2**62
    g_min = next(g for g in range(63) if (p_max >> g) + 1 <= max(cap // 2, 1))
    g = draw(st.one_of(st.just(g_min), st.integers(g_min, 62), st.just(max(g_min, 14))))
    ks = []
    for t, c in pairs:
        room = cap - ((t * t + abs(c)) >> g) - 1             # |y| <= (|P| >> g) + 1
        ks.append(draw(edgy_integers(-room, room)))
    fields = [tuple(v) if channels else v[0] for v in ([-t for t, _ in pairs], [c for _, c in pairs], ks)]
    return GeluParams(*fields, guard_shift=g, input_bits=bits)


# ---- softmax and exp ----------------------------------------------------------------------------

def softmax_params(*, input_bits=None, source=None, exp_roundings=EXP_ROUNDING_MODES) -> st.SearchStrategy:
    """Legal ``SoftmaxParams``: prepared (``prepare_softmax`` at scales ``2**-26 .. 1``, both coefficient
    sets, exp_clamp 0..62, exp_bits 2..32, output_bits 1..31) or raw (every field over its legal range;
    half of them with ``exp_multiplier = odd * 2**j`` and a shift just above it, so that the exp
    requantization meets exact ties). ``exp_roundings`` restricts the exp rounding dialect."""
    bits, sources = _options(input_bits, source)
    return _softmax_params(bits, sources, as_choices("exp_roundings", exp_roundings, EXP_ROUNDING_MODES))


@st.composite
def _softmax_params(draw, bits_st, sources, roundings=EXP_ROUNDING_MODES):
    bits = draw(bits_st)
    rounding = draw(st.sampled_from(roundings))
    if draw(st.sampled_from(sources)) == "prepared":
        output_bits = draw(st.sampled_from([8, 8, 9, 16, 1, 31]))
        try:
            return prepare_softmax(2.0 ** draw(st.floats(-26.0, 0.0)),
                                   coefficients=draw(st.sampled_from(["reference", "paper"])),
                                   exp_clamp=draw(st.sampled_from([30, 30, 0, 5, 62])),
                                   exp_bits=draw(st.sampled_from([16, 16, 2, 8, 24, 32])),
                                   exp_rounding=rounding, output_bits=output_bits,
                                   output_max=draw(st.sampled_from([None, 1 << output_bits])), input_bits=bits)
        except RangeError:
            pass
    return _raw_softmax(draw, bits, rounding)


def _raw_softmax(draw, bits, rounding):
    clamp, exp_bits = draw(edgy_integers(0, 62, 30)), draw(st.one_of(st.just(16), st.integers(2, 32)))
    if draw(st.booleans()):
        # ties in the exp requantization: m = odd * 2**j and s = n + j + k leave p * m / 2**(s - n + z)
        # with only k + z fraction bits, so p * m = (2i + 1) * 2**(k + z + j - 1) happens often
        j, k = draw(st.integers(0, 28)), draw(st.integers(1, 4))
        multiplier, shift = draw(st.sampled_from([1, 3, 5, 7])) << j, clamp + j + k
        c_int = draw(st.integers(1, 1 << min(exp_bits - 1 + k, 60)))
    else:
        c_int = draw(st.one_of(edgy_integers(-(1 << 40), 1 << 60, 2792114), st.integers(1, 1 << 33)))
        multiplier = draw(edgy_integers(0, 1 << 31, 1 << 30))
        # a shift that puts exp(0) = c_int * m / 2**(s - n) near the top code: rows rarely sum to 0
        calibrated = max(c_int, 1).bit_length() + multiplier.bit_length() + clamp - exp_bits + 1
        shift = draw(st.one_of(weighted([(st.integers(calibrated - 2, calibrated + 2), 2),
                                         (edgy_integers(0, 255), 1)])))
    output_bits = draw(edgy_integers(1, 31, 8))
    top = 1 << output_bits
    return SoftmaxParams(
        x0_int=draw(edgy_integers(-(1 << 20), -1, -694, -2)), b_int=draw(edgy_integers(-(1 << 21), 1 << 21, 2707)),
        c_int=c_int, exp_clamp=clamp, exp_multiplier=multiplier, exp_shift=min(max(shift, 0), 255),
        exp_bits=exp_bits, exp_rounding=rounding, output_bits=output_bits,
        output_max=draw(st.one_of(st.sampled_from([top - 1, top, 1]), st.integers(1, top))), input_bits=bits)


def _exp_distances(params: SoftmaxParams) -> list:
    """Distances below a row's maximum where i-exp changes regime: the z steps ``x0_int * z`` and their
    neighbours, and the clamp point ``exp_clamp * x0_int``."""
    steps = {params.x0_int * z + d for z in range(min(params.exp_clamp, 40) + 2) for d in (-1, 0, 1)}
    return sorted(v for v in steps | {params.exp_input_floor(), params.exp_input_floor() - 1} if v <= 0)


def softmax_cases(*, input_bits=None, source=None, max_length: int = 16, axis=-1,
                  params=None) -> st.SearchStrategy:
    """Legal ``i_softmax`` arguments: ``dict(q, params, axis)``.

    ``params``: as ``softmax_params``; ``params=`` a ``SoftmaxParams`` or a strategy of them pins
    them (``input_bits``/``source`` are then unused). ``q``: ndarray (storage dtype of ``int<input_bits>`` or int64)
    of rows along ``axis`` (-1 by default; ``axis=None`` draws any axis), row length
    ``1 .. min(max_length, params.max_row_length())``, up to 2 leading dims. Rows are drawn as: random
    values over ``int<input_bits>``; values a few z steps below the row maximum (at and around the
    exponent boundaries); constant rows (all ties); one-hot rows (one value, every other entry the
    type's minimum: masked); masked rows (near values with some entries at the type's minimum).
    """
    bits, sources = _options(input_bits, source)
    params = _fixed_params(params, SoftmaxParams)
    return _softmax_case(params if params is not None else _softmax_params(bits, sources), max_length, axis)


@st.composite
def _softmax_case(draw, params_st, max_length, axis):
    params = draw(params_st)
    limit = params.max_row_length()
    length = draw(st.integers(1, min(max_length, limit) if limit else max_length))
    lead = _leading_shape(draw)
    rows = [_softmax_row(draw, params, length) for _ in range(int(np.prod(lead, dtype=np.int64)))]
    q = np.array(rows, dtype=np.int64).reshape(lead + (length,))
    ndim = q.ndim
    axis = draw(st.integers(-ndim, ndim - 1)) if axis is None else axis
    q = np.moveaxis(q, -1, axis).astype(_q_dtype(draw, params.input_bits))
    return dict(q=np.ascontiguousarray(q), params=params, axis=axis)


def _softmax_row(draw, params: SoftmaxParams, length: int) -> list:
    lo, hi = _int_range(params.input_bits)
    kind = draw(st.sampled_from(["random", "near", "near", "constant", "one_hot", "masked"]))
    top = draw(edgy_integers(lo, hi))
    if kind == "constant":
        return [top] * length
    if kind == "random":
        return draw(st.lists(st.integers(lo, hi), min_size=length, max_size=length))
    if kind == "one_hot":
        row = [lo] * length
        row[draw(st.integers(0, length - 1))] = top
        return row
    near = st.one_of(st.sampled_from(_exp_distances(params)), st.integers(params.x0_int + 1, 0),   # z = 0
                     st.integers(params.exp_input_floor() - 2, 0))
    row = [min(max(top + d, lo), hi) for d in draw(st.lists(near, min_size=length, max_size=length))]
    if kind == "masked":
        row = [lo if draw(st.booleans()) else v for v in row]
    return row


def exp_cases(*, input_bits=None, source=None, params=None) -> st.SearchStrategy:
    """Legal ``i_exp`` arguments: ``dict(q, params)``; ``q`` <= 0 in ``int<input_bits>``.

    ``params`` as ``softmax_params`` with ``exp_clamp`` lowered where needed so that the REQUIRE
    ``params.exp_int_max() <= 2**63 - 1`` holds (``exp_scale`` rescaled to match). ``q``: values at the
    exponent's z steps ``x0_int * z`` and their neighbours, the clamp point, 0, the type's minimum.
    ``params=`` (a ``SoftmaxParams`` or a strategy) pins them; they must meet that REQUIRE already.
    """
    bits, sources = _options(input_bits, source)
    params = _fixed_params(params, SoftmaxParams)
    return _exp_case(params if params is not None else _softmax_params(bits, sources).map(_exp_int_safe))


def _exp_int_safe(params: SoftmaxParams) -> SoftmaxParams:
    """``params`` with ``exp_clamp`` lowered until ``exp_int_max() = p_hi * 2**exp_clamp < 2**63``."""
    poly_top = max(params.poly_range()[1], 0)
    clamp = min(params.exp_clamp, 63 - poly_top.bit_length())
    if clamp == params.exp_clamp:
        return params
    scale = None if params.exp_scale is None else params.exp_scale * 2.0 ** (params.exp_clamp - clamp)
    return replace(params, exp_clamp=clamp, exp_scale=scale)


@st.composite
def _exp_case(draw, params_st):
    params = draw(params_st)
    lo = _int_range(params.input_bits)[0]
    values = st.one_of(edgy_integers(lo, 0), st.sampled_from([d for d in _exp_distances(params) if d >= lo]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))
    q = draw(hnp.arrays(_q_dtype(draw, params.input_bits), shape, elements=values, fill=st.nothing()))
    return dict(q=q, params=params)


# ---- i_layernorm --------------------------------------------------------------------------------

def layernorm_cases(*, input_bits=None, source=None, max_channels: int = 16, params=None) -> st.SearchStrategy:
    """Legal ``i_layernorm`` arguments: ``dict(q, params)``.

    ``params``: a ``LayerNormParams`` of ``1 .. max_channels`` channels (limited so the row sum fits
    int64), prepared (``prepare_layernorm`` from float gamma/beta, shift ``"auto"`` or above it) or raw
    (any safe shift up to 62, ``bias_int`` up to the int64 limit); ``params=`` a ``LayerNormParams`` or
    a strategy of them pins them (the other options are then unused). ``q``: ndarray ``(..., C)`` (storage
    dtype of ``int<input_bits>`` or int64), rows drawn as: random; constant (zero variance: the output
    is ``bias_int``); all minimum / all maximum; alternating min/max; one outlier; near-constant (the
    guard shift eats the variance); a row whose mean is an exact tie (``sum = C*k + C/2``); the rows
    that reach the output extremes, ``(2**(s+1) - 1, 0, ...)`` and ``(-2**s, 0, ...)``.
    """
    bits, sources = _options(input_bits, source)
    return _layernorm_case(bits, sources, max_channels, _fixed_params(params, LayerNormParams))


@st.composite
def _layernorm_case(draw, bits_st, sources, max_channels, params_st):
    params = draw(params_st) if params_st is not None else _draw_layernorm_params(draw, bits_st, sources,
                                                                                 max_channels)
    lead = _leading_shape(draw)
    rows = [draw_layernorm_row(draw, params) for _ in range(int(np.prod(lead, dtype=np.int64)))]
    q = np.array(rows, dtype=np.int64).reshape(lead + (params.channels,))
    return dict(q=q.astype(_q_dtype(draw, params.input_bits)), params=params)


def _draw_layernorm_params(draw, bits_st, sources, max_channels) -> LayerNormParams:
    bits = draw(bits_st)
    channels = draw(st.integers(1, min(max_channels, 1 << (64 - bits))))
    params = None
    if draw(st.sampled_from(sources)) == "prepared":
        gamma = [draw(st.sampled_from([1.0, -1.0])) * 2.0 ** draw(st.floats(-10, 4)) for _ in range(channels)]
        beta = draw(st.lists(st.floats(-8, 8), min_size=channels, max_size=channels))
        shift = draw(st.sampled_from(["auto", "auto", 1, 3]))
        shift = shift if shift == "auto" else min(min_safe_shift(channels, bits) + shift, 62)
        try:
            params = prepare_layernorm(gamma, beta, input_bits=bits, shift=shift)
        except RangeError:
            params = None
    if params is None:
        safe = min_safe_shift(channels, bits)
        shift = draw(st.one_of(st.integers(safe, min(safe + 3, 62)), edgy_integers(safe, 62)))
        norm_lo, norm_hi = normalized_range(channels, bits, shift)
        bias = st.one_of(st.integers(-1000, 1000), edgy_integers(INT64_MIN - norm_lo, INT64_MAX - norm_hi))
        params = LayerNormParams(channels=channels, shift=shift, input_bits=bits,
                                 bias_int=tuple(draw(st.lists(bias, min_size=channels, max_size=channels))))
    return params


def draw_layernorm_row(draw, params: LayerNormParams) -> list:
    """One legal row for ``params`` (``layernorm_cases`` lists the kinds); the spec and kernel tests
    draw their rows here too."""
    lo, hi = params.input_range()
    c = params.channels
    value = st.integers(lo, hi)
    kind = draw(st.sampled_from(["random", "constant", "constant", "min", "max", "alternating", "outlier",
                                 "near", "mean_tie", "extreme"]))
    if kind in ("constant", "min", "max"):
        return [{"constant": draw(value), "min": lo, "max": hi}[kind]] * c
    if kind == "alternating":
        return [(lo, hi)[i % 2] for i in range(c)]
    if kind == "outlier":
        row = [draw(value)] * c
        row[draw(st.integers(0, c - 1))] = draw(st.sampled_from([lo, hi]))
        return row
    if kind == "near":
        base = draw(value)
        return [min(max(base + d, lo), hi) for d in draw(st.lists(st.integers(-3, 3), min_size=c, max_size=c))]
    if kind == "extreme" and c > 1:
        first = draw(st.sampled_from([(1 << (params.shift + 1)) - 1, -(1 << params.shift)]))
        if lo <= first <= hi:
            return [first] + [0] * (c - 1)
    row = draw(st.lists(value, min_size=c, max_size=c))
    if kind == "mean_tie" and c % 2 == 0:
        delta = (c // 2 - sum(row)) % c                     # sum + delta = C*k + C/2
        for candidate in (row[0] + delta, row[0] + delta - c):
            if lo <= candidate <= hi:
                row[0] = candidate
                break
    return row
