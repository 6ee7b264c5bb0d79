"""Build time: GPTQ rounding of int4 weights (Frantar et al., ICLR 2023), input groups or per row.

Round-to-nearest quantizes every weight on its own. GPTQ minimizes the output error on calibration
inputs ``X`` (``[T, K]``), ``||X W^T - X Q^T||**2``, column by column: after column ``i`` is rounded, its
error is spread over the columns not yet rounded, in proportion to how the inputs correlate, by the
inverse of ``H = X^T X`` (the Gram matrix, damped by ``DAMP * mean(diag H)`` on the diagonal so it is
invertible). With ``U`` the upper Cholesky factor of ``H^-1`` (``H^-1 = U^T U``), for ``i = 0 .. K-1``:

    q[:, i]     = clamp(round_half_even(w[:, i] / s), -Q, Q)          s: the scale of column i's group
    e           = (w[:, i] - q[:, i] * s) / U[i, i]
    w[:, i+1:] -= outer(e, U[i, i+1:])

An input group's scales are chosen when the loop reaches its first column, on the weights updated so
far, by ``clip_search.block_clip_scales`` weighted by ``diag H`` (the activation-aware clip); without
groups each row's scale is chosen once, on the original row, or given (``row_scale``: ZeroQuant's row
groups, whose scales span several rows). A diagonal ``H`` leaves ``U`` diagonal:
nothing is spread, and the result is the activation-aware clip's round-to-nearest.

Deterministic (no random state, columns in their natural order); floats only here: the result is
integer weights and scales, as ``quantize_input_groups`` returns.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import RangeError, ShapeError
from .clip_search import block_clip_scales

DAMP = 0.01


def gptq_quantize(w, hessian, bits: int, group_size: Optional[int] = None, row_scale=None):
    """``(q, scale)``: ``q`` int8 ``[N, K]`` in ``[-Q, Q]`` and ``scale`` ``[N, K / group_size]`` (``[N, 1]``
    without groups) for float weights ``w`` ``[N, K]`` and the inputs' Gram matrix ``hessian`` ``[K, K]``
    (module docstring). ``row_scale`` ``[N]``: fixed scales of whole rows (row groups), no group search."""
    w = np.array(w, dtype=np.float64)                    # a copy: the loop updates it
    n_out, k = w.shape
    g = k if group_size is None else group_size
    h = np.asarray(hessian, np.float64)
    if h.shape != (k, k) or k % g or not np.all(np.isfinite(h)):
        raise ShapeError(f"gptq_quantize: hessian {h.shape} must be finite [K, K] = [{k}, {k}] and "
                         f"group_size {g} divide K", argument="hessian")
    if row_scale is not None and (g != k or np.shape(row_scale) != (n_out,) or np.min(row_scale) <= 0):
        raise ShapeError(f"gptq_quantize: row_scale {np.shape(row_scale)} must be [N] = [{n_out}], > 0, without groups",
                         argument="row_scale")
    q_max = (1 << (bits - 1)) - 1
    diag = np.diag(h).copy()
    damped = h + DAMP * max(float(diag.mean()), 1e-12) * np.eye(k)
    try:
        upper = np.linalg.cholesky(np.linalg.inv(damped)).T
    except np.linalg.LinAlgError as exc:
        raise RangeError(f"gptq_quantize: the damped hessian is not positive definite ({exc})",
                         argument="hessian") from None
    q = np.zeros((n_out, k), np.int8)
    scales = np.zeros((n_out, k // g), np.float64)
    for start in range(0, k, g):
        block = w[:, start:start + g]
        scale = block_clip_scales(block, bits, np.broadcast_to(np.maximum(diag[start:start + g], 0.0), block.shape)) \
            if row_scale is None else np.asarray(row_scale, np.float64)
        scales[:, start // g] = scale
        for i in range(start, start + g):
            column = np.clip(np.rint(w[:, i] / scale), -q_max, q_max)
            q[:, i] = column.astype(np.int8)                 # exact: integral, |q| <= Q
            error = (w[:, i] - column * scale) / upper[i, i]
            w[:, i + 1:] -= np.outer(error, upper[i, i + 1:])
    return q, scales
