"""Build time: a clip ratio per weight block chosen to minimize the (activation-weighted) squared error.

Max-abs scaling (``scale = max|w| / Q``) spends the int4 grid on a block's largest weight; clipping
that weight trades its error for a finer step on all the others. For each block ``b`` of weights
``w[b, :]`` (an input group of a row, a row, or a group of rows) and each ratio ``r`` of
``CLIP_RATIOS`` (1.00, 0.99, ..., 0.50):

    s(r)    = r * max(max|w[b, :]|, 1e-8) / Q                  Q = 2**(bits-1) - 1
    q(r)    = clamp(round_half_even(w / s(r)), -Q, Q)            (float64, then exact integers)
    E(r)    = sum_k a[b, k] * (w[b, k] - q(r)[k] * s(r))**2

and keeps the first ``r`` (largest) with the least ``E``: ``r = 1`` is max-abs, so the chosen error is
never above max-abs's, and ties keep the larger scale. ``a`` is the importance of each weight:
ones (plain weight MSE) or, activation-aware, the calibrated ``E[x_k**2]`` of the input channel the
weight multiplies, so ``E`` is the expected squared output error of row ``n`` when the input channels'
errors are uncorrelated (the diagonal of the output MSE; AWQ and GPTQ weigh weights the same way).

Deterministic (a fixed grid, no random state); floats only here, never in the graph: the result is
integer weights and per-block scales, as ``quantize_symmetric`` returns.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import RangeError, ShapeError
from .symmetric import SCALE_FLOOR

CLIP_RATIOS = 1.0 - 0.01 * np.arange(51)          # 1.00 .. 0.50, descending: ties keep the larger
CLIPS = ("max", "mse", "act")      # max-abs (quantize_symmetric), weight MSE, activation-weighted MSE


def block_clip_scales(blocks, bits: int, importance=None, ratios=CLIP_RATIOS) -> np.ndarray:
    """The scale of each row of ``blocks`` (``[B, L]`` float64) minimizing ``E(r)`` over ``ratios``
    (module docstring); ``importance`` ``[B, L]`` non-negative, ``None`` for ones. Returns ``[B]``."""
    w = np.asarray(blocks, np.float64)
    if w.ndim != 2:
        raise ShapeError(f"block_clip_scales: blocks {w.shape} must be [B, L]", argument="blocks")
    a = np.ones_like(w) if importance is None else np.asarray(importance, np.float64)
    if a.shape != w.shape or not np.all(np.isfinite(a)) or (a < 0).any():
        raise RangeError(f"block_clip_scales: importance {a.shape} must be finite, >= 0 and of shape {w.shape}",
                         argument="importance")
    q_max = (1 << (bits - 1)) - 1
    top = np.maximum(np.abs(w).max(axis=1), SCALE_FLOOR)
    best_scale = top / q_max
    best_error = np.full(w.shape[0], np.inf)
    for ratio in ratios:
        scale = ratio * top / q_max
        q = np.clip(np.rint(w / scale[:, None]), -q_max, q_max)
        error = (a * (w - q * scale[:, None]) ** 2).sum(axis=1)
        better = error < best_error
        best_scale = np.where(better, scale, best_scale)
        best_error = np.where(better, error, best_error)
    return best_scale


def quantize_clipped(blocks, bits: int, importance=None):
    """``(q, scale)`` of ``blocks`` ``[B, L]`` with the searched scales: ``q`` int8 in ``[-Q, Q]`` (``bits``
    in 2..8), ``scale`` ``[B, 1]`` float64; ``importance`` as ``block_clip_scales``."""
    bits = _checks.require_int("quantize_clipped", "bits", bits, 2, 8)
    w = np.asarray(blocks, np.float64)
    scale = block_clip_scales(w, bits, importance)
    q_max = (1 << (bits - 1)) - 1
    q = np.clip(np.rint(w / scale[:, None]), -q_max, q_max).astype(np.int8)   # exact: integral, |q| <= Q
    return q, scale[:, None]
