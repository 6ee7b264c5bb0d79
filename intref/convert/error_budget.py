"""Per-node error budget of a post-training-quantized encoder: SQNR of every dequantized
intermediate of the integer graph against the float64 model's value at the same point.

    stats = collect(ckpt, calibration_texts)              # intref.convert.ptq.calibrate
    graph, _ = build_ptq(ckpt, stats, **options)
    node_sqnr(graph, ckpt, stats, texts, smoothquant=...)  # {node: dB}, in graph order

``SQNR = 10 log10(sum(x**2) / sum((x - x_int)**2))`` over the real tokens. SmoothQuant stores ``x / f``
per channel in the int8 values after each LayerNorm and GELU (``ffn.in`` and ``ffn.mid`` carry those
of ``attn.out`` and ``gelu.out``); ``f`` is multiplied back before comparing. Build-time and study code.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import dequantize, run
from .ptq import feeds
from .ptq.calibrate import smoothing_factors


def smoothing_key(name: str) -> str:
    """The calibration point whose SmoothQuant factor scales this value."""
    return name.replace("ffn.in", "attn.out").replace("ffn.mid", "gelu.out")


def sqnr_db(x: np.ndarray, x_int: np.ndarray) -> float:
    """``10 log10(sum(x**2) / sum((x - x_int)**2))``; ``inf`` when they are equal."""
    noise = float(np.sum((np.asarray(x, np.float64) - x_int) ** 2))
    return float("inf") if noise == 0.0 else 10.0 * float(np.log10(np.sum(np.asarray(x, np.float64) ** 2) / noise))


def node_sqnr(graph, ckpt, stats: dict, texts: Sequence[str], *, smoothquant: Optional[float]) -> dict:
    """``{node: SQNR in dB}`` for every float point the integer graph also holds (same shape), in the
    float model's order; the last layer's output is the graph's ``last_hidden_state``."""
    ids, mask = ckpt.encode(list(texts))
    keep = mask.astype(bool)
    floats = {}
    ckpt.hidden(ids, mask, observe=lambda name, value: floats.__setitem__(name, np.array(value)))
    trace = run(graph, feeds(ids, mask), trace=True)
    factors = smoothing_factors(ckpt.model, stats, smoothquant)
    rename = {f"layer{ckpt.model.config.layers - 1}.out": "last_hidden_state"}
    out = {}
    for name, x in floats.items():
        value = rename.get(name, name)
        if value not in trace or value not in graph.values or x.shape != trace[value].shape:
            continue
        x_int = dequantize(graph, value, trace[value]) * factors.get(smoothing_key(name), 1.0)
        if x.shape[:2] == keep.shape:
            x, x_int = x[keep], x_int[keep]
        out[name] = sqnr_db(x, x_int)
    return out
