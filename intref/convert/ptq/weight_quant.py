"""How a scheme's Linear weights become integers and scales (build time, floats allowed): one entry,
``quantize_weight``, for every weight quantization (``--weight-quant``) and grouping.

    max    max-abs scale per block (``quantize_symmetric``)
    mse    a clip ratio per block for the least weight MSE (``intref.quant.clip_search``)
    act    that MSE weighted by the calibrated ``E[x_k**2]`` of each input channel
    gptq   act's clip per input group (or row, or row group), then GPTQ's error feedback over the
           columns, by the calibrated ``E[x x^T]`` (``intref.quant.gptq``)

Blocks: input groups (``axis="in"``, ``[N, K / g]`` scales), groups of ``g`` rows (``axis="out"``), or
one per row (``size=None``), ``[N, 1]`` scales.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...quant.clip_search import CLIPS
from ...quant.gptq import gptq_quantize
from ...quant.groupwise import quantize_input_groups, quantize_row_groups

WEIGHT_QUANTS = CLIPS + ("gptq",)


@dataclass(frozen=True)
class InputStats:
    """A Linear input's calibration statistics, of the smoothed value the graph holds."""

    mean_square: np.ndarray               # [K] E[x_k**2]
    gram: Optional[np.ndarray] = None     # [K, K] E[x x^T], None: not collected


def quantize_weight(weight: np.ndarray, bits: int, method: str, axis: str, size: Optional[int],
                    stats: Optional[InputStats], name: str):
    """``(q, scale)`` of the float ``weight`` ``[N, K]`` of Linear ``name`` (module docstring). ValueError
    naming the Linear when ``method`` needs statistics it was not given."""
    if method not in WEIGHT_QUANTS:
        raise ValueError(f"{name}: weight quantization {method!r} is not one of {WEIGHT_QUANTS}")
    if method in ("act", "gptq") and (stats is None or (method == "gptq" and stats.gram is None)):
        raise ValueError(f"{name}: weight quantization {method!r} needs the calibrated "
                         f"{'E[x x^T]' if method == 'gptq' else 'E[x^2]'} of its input")
    options = dict(clip="act" if method == "gptq" else method, importance=None if stats is None else stats.mean_square)
    if size is not None and axis == "in":
        if method == "gptq":
            return gptq_quantize(weight, stats.gram, bits, size)
        return quantize_input_groups(weight, bits, size, **options)
    q, scale = quantize_row_groups(weight, bits, weight.shape[0] // (size or 1), **options)     # size None: per row
    if method == "gptq":                                   # the act clip's row scales, then the error feedback
        q, _ = gptq_quantize(weight, stats.gram, bits, None, row_scale=scale.reshape(-1))
    return q, scale
