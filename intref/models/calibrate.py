"""Post-training calibration: activation scales from the float model's observed ranges.

Each quantization point of the integer graph gets ``max|x| / (2**(bits-1) - 1)`` over the
calibration batches (min/max calibration, as I-BERT's QuantAct with running extrema): 16 bits
for the embedding sum, 22 for the residual sums before a LayerNorm, 8 elsewhere.
"""

from __future__ import annotations

from typing import Iterable, Tuple

import numpy as np

from .derivation import Derivation
from .float_encoder import FloatEncoder, forward


def point_bits(name: str) -> int:
    if name == "emb.sum":
        return 16
    if name.endswith(("attn.sum", "ffn.sum")):
        return 22
    return 8


def calibrate(model: FloatEncoder, batches: Iterable[Tuple[np.ndarray, np.ndarray]],
              derivation: Derivation = None) -> dict:
    """Scales of every quantization point over ``(input_ids, attention_mask)`` batches.

    Padding positions are left out of the ranges (their values are never used downstream)."""
    derivation = derivation or Derivation()
    extremes = {}
    for ids, mask in batches:
        keep = mask.astype(bool)

        def observe(name, value, keep=keep):
            real = value[keep] if value.shape[:2] == keep.shape else value
            extremes[name] = max(extremes.get(name, 0.0), float(np.abs(real).max(initial=0.0)))

        forward(model, ids, mask, observe=observe)
    return {name: derivation.act_scale(m, point_bits(name)) for name, m in extremes.items()}
