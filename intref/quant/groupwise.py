"""Build time: ZeroQuant's fine-grained weight schemes as integer constants (floats allowed here).

- ``quantize_input_groups``: one scale per block of ``group_size`` consecutive inputs of each output
  row (the GPTQ/AWQ "g128" convention), ``scale`` of shape ``[N, K / group_size]``.
- ``quantize_row_groups``: ZeroQuant's ``W.reshape(num_groups, -1)``: ``groups`` blocks of whole
  output rows share a scale (BERT-base: 48 groups). This is a per-channel scale (each row its
  block's), so a plain ``Linear`` and a per-channel ``Requantize`` run it.
- ``prepare_group_linear``: the ``GroupLinear`` constants for input groups: multipliers that bring
  each group to its row's common scale, the common shift, and the output scale.

Both quantizers take ``clip="max" | "mse" | "act"`` (``clip_search``: max-abs, or a clip ratio per
block searched for the least weight MSE, optionally weighted by the input channels' ``importance``);
with ``"max"`` they are ``quantize_symmetric`` on a reshaped weight (clamp ``"narrow"`` by default:
``[-Q, Q]``, so int4 holds -7..7; ZeroQuant's DeepSpeed quantizer instead uses ``scale = 2 max / 2**b``
and clips the positive maximum, which only wastes a level).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import _checks
from ..errors import RangeError, ShapeError
from ..spec.groupwise import INT32_MAX
from .clip_search import CLIPS, quantize_clipped
from .symmetric import quantize_symmetric

_WHERE = "prepare_group_linear"
MANTISSA_BITS = 31


def quantize_input_groups(w, bits: int, group_size: int, clamp: str = "narrow", *, clip: str = "max",
                          importance=None):
    """``(q, scale)``: ``q`` ``[N, K]`` integers, ``scale[n, j]`` the scale of inputs ``j*g .. j*g+g-1`` of row
    ``n``; ``q[n, k] * scale[n, k // g]`` dequantizes. ``K`` must be a multiple of ``group_size``.
    ``clip``/``importance`` ``[K]``: ``quantize_blocks`` (``"max"``: max-abs, ``quantize_symmetric``)."""
    w = np.asarray(w)
    if w.ndim != 2 or w.shape[1] % group_size:
        raise ShapeError(f"quantize_input_groups: weight {w.shape} must be [N, K] with K a multiple of "
                         f"group_size={group_size}", argument="group_size", value=group_size)
    n_out, k = w.shape
    q, scale = quantize_blocks(w.reshape(n_out * (k // group_size), group_size), bits, clamp, clip,
                               _tiled(importance, w.shape, n_out * (k // group_size)))
    return q.reshape(n_out, k), scale.reshape(n_out, k // group_size)


def quantize_row_groups(w, bits: int, groups: int, clamp: str = "narrow", *, clip: str = "max", importance=None):
    """``(q, scale)`` with ``scale`` of shape ``[N, 1]``: ``groups`` blocks of ``N / groups`` consecutive
    output rows share one scale (ZeroQuant's convention), repeated on each row of its block. ``groups = N``
    is one scale per row (per channel). ``clip``/``importance`` ``[K]`` as ``quantize_input_groups``."""
    w = np.asarray(w)
    if w.ndim != 2 or groups < 1 or w.shape[0] % groups:
        raise ShapeError(f"quantize_row_groups: weight {w.shape} must be [N, K] with N a multiple of groups={groups}",
                         argument="groups", value=groups)
    if clip == "max":
        return quantize_symmetric(w, bits, axis=0, group_size=w.shape[0] // groups, clamp=clamp)
    q, scale = quantize_blocks(w.reshape(groups, -1), bits, clamp, clip, _tiled(importance, w.shape, groups))
    return q.reshape(w.shape), np.repeat(scale.reshape(-1), w.shape[0] // groups).reshape(-1, 1)


def quantize_blocks(blocks: np.ndarray, bits: int, clamp: str, clip: str, importance):
    """``(q, scale[B, 1])`` of ``blocks`` ``[B, L]``: max-abs (``quantize_symmetric``) or a searched clip
    (``clip_search.quantize_clipped``: ``"mse"`` ignores ``importance``, ``"act"`` weighs by it)."""
    if clip not in CLIPS:
        raise ValueError(f"clip {clip!r} is not one of {CLIPS}")
    if clip == "max":
        return quantize_symmetric(blocks, bits, axis=0, clamp=clamp)
    if clamp != "narrow":
        raise ValueError(f"clip {clip!r} searches the narrow grid [-Q, Q]; clamp {clamp!r} is not supported")
    if clip == "act" and importance is None:
        raise ValueError("clip 'act' needs the importance E[x**2] of every input channel")
    return quantize_clipped(blocks, bits, importance if clip == "act" else None)


def _tiled(importance, shape, blocks: int):
    """Per-input-channel ``importance`` ``[K]`` repeated on every row of a ``[N, K]`` weight, as ``blocks`` rows."""
    if importance is None:
        return None
    importance = np.asarray(importance, np.float64)
    if importance.shape != (shape[1],):
        raise ShapeError(f"importance {importance.shape} must be [K] = [{shape[1]}]", argument="importance")
    return np.broadcast_to(importance, shape).reshape(blocks, -1)


@dataclass(frozen=True)
class GroupLinearParams:
    """``GroupLinear``'s integer constants and the real scale of its output.

    multiplier  ``[N, G]`` int64 in ``[0, 2**b]``: ``round_half_up(S_w[n, j] / C[n] * 2**b)``, ``b`` the
                mantissa bits (31 by default; 15 makes every multiplier fit ``uint16``)
    shift       ``b - frac_bits``
    frac_bits   ``f``: the output unit is ``C[n] / 2**f`` with ``C[n] = max_j S_w[n, j]``
    out_scale   ``[N]`` float64: ``x_scale * C[n] / 2**f``, the real value of one output unit
    bias        ``[N]`` int64 at ``out_scale`` (``None`` without a bias)
    """

    multiplier: np.ndarray
    shift: int
    frac_bits: int
    out_scale: np.ndarray
    bias: Optional[np.ndarray]


def prepare_group_linear(q, scale, x_scale: float, x_max: int, group_size: int, *, bias=None,
                         acc_bits: int = 32, max_frac_bits: int = 31,
                         mantissa_bits: int = MANTISSA_BITS) -> GroupLinearParams:
    """The ``GroupLinear`` constants for int weights ``q`` ``[N, K]`` with group scales ``scale`` ``[N, G]``,
    inputs of real scale ``x_scale`` with ``|x| <= x_max``, and an optional float ``bias`` ``[N]``.

    Picks the most fraction bits ``f`` (0..max_frac_bits) for which every output, bias included, provably stays
    within ``int<acc_bits>``: the bound per row is ``|bias| + sum_j ceil(Pmax[n, j] * m[n, j] / 2**shift)``
    with ``Pmax = x_max * sum_{k in j} |q[n, k]|`` (an upper bound of every dialect's rounded term).
    RangeError when a partial sum could leave int32 or no ``f`` fits. ``max_frac_bits = 0`` keeps the
    output unit at ``x_scale * C[n]``, the unit of a per-channel Linear with the same row maxima (what
    downstream constants such as I-BERT's int32 GELU were derived for). ``mantissa_bits`` (1..31): the
    multipliers' precision, relative error at most ``2**-(mantissa_bits + 1)`` of each group's scale;
    15 stores them as ``uint16`` (half a ``uint32``'s bytes), the precision of a float16 group scale.
    """
    q = np.asarray(q).astype(np.int64)
    scale = np.asarray(scale, dtype=np.float64)
    n_out, k = q.shape
    if scale.shape != (n_out, k // group_size) or k % group_size:
        raise ShapeError(f"{_WHERE}: scale {scale.shape} must be [N, K / group_size] for q {q.shape}",
                         argument="scale")
    acc_bits = _checks.require_int(_WHERE, "acc_bits", acc_bits, 2, 32)
    bits = _checks.require_int(_WHERE, "mantissa_bits", mantissa_bits, 1, MANTISSA_BITS)
    common = scale.max(axis=1)                                            # C[n] > 0
    multiplier = np.floor(scale / common[:, None] * 2.0 ** bits + 0.5).astype(np.int64)  # <= 2**bits
    p_max = int(x_max) * np.abs(q).reshape(n_out, k // group_size, group_size).sum(axis=2)
    if int(p_max.max()) > INT32_MAX:
        raise RangeError(f"{_WHERE}: a partial sum can reach {int(p_max.max())} > 2**31 - 1 with |x| <= {x_max}: "
                         f"use smaller groups", argument="group_size", value=group_size)
    limit = (1 << (acc_bits - 1)) - 1
    ideal = float((p_max * multiplier).sum(axis=1).max()) / 2.0 ** bits        # sum_j Pmax * r, worst row
    max_frac = _checks.require_int(_WHERE, "max_frac_bits", max_frac_bits, 0, 31)
    frac = min(max_frac, bits, max(0, math.floor(math.log2(limit / max(ideal, 1.0)))))
    while frac >= 0:
        out_scale = float(x_scale) * common / 2.0 ** frac
        bias_int = None if bias is None else np.rint(np.asarray(bias, np.float64) / out_scale).astype(np.int64)
        if _worst_output(p_max, multiplier, bits - frac, bias_int) <= limit:
            return GroupLinearParams(multiplier, bits - frac, frac, out_scale, bias_int)
        frac -= 1
    raise RangeError(f"{_WHERE}: no fraction bits keep the output within int{acc_bits}", argument="acc_bits",
                     value=acc_bits)


def _worst_output(p_max: np.ndarray, multiplier: np.ndarray, shift: int, bias_int) -> int:
    """``max_n |bias[n]| + sum_j ceil(p_max[n, j] * m[n, j] / 2**shift)``, exact (Python ints)."""
    terms = (p_max * multiplier + ((1 << shift) - 1)) >> shift        # <= 2**62 + 2**31: int64
    rows = terms.astype(object).sum(axis=1)
    if bias_int is not None:
        rows = rows + np.abs(bias_int).astype(object)
    return int(max(rows))
