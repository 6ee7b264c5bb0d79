"""Static calibration: one float pass over the calibration sentences, then scales and SmoothQuant.

Quantization points (the names of ``intref.models.ibert``) and their widths:

| point | bits | range from |
|---|---|---|
| ``emb.sum`` | 16 | max |
| ``layer{i}.attn.sum``, ``layer{i}.ffn.sum`` (LayerNorm inputs) | 22 | max |
| ``layer{N-1}.out`` (``last_hidden_state``) | ``output_bits`` (16) | max |
| ``emb.out``, ``layer{i}.q .k .v .context .attn.out .gelu.out .out`` | 8 | the observer |

The wide points keep the residual stream wide (I-BERT's 22-bit LayerNorm input); every Linear
input is int8. ``ffn.in`` and ``ffn.mid`` (I-BERT's second quantization of a value already int8)
get the scale of the value they requantize, so those nodes are exact identities.

SmoothQuant (Xiao et al. 2023, eq. 4): for an int8 point ``x`` feeding Linear weights ``W`` (Q, K
and V together after ``emb.out`` / ``layer{i}.out``; the FFN's first Linear after ``attn.out``;
its second after ``gelu.out``), ``f[k] = max|x[:, k]|**alpha / max|W[:, k]|**(1 - alpha)``. The
int8 value holds ``x / f`` and the weights ``W * f`` (``intref.models.ibert`` folds it).
"""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from .checkpoint import Checkpoint, length_batches
from .observers import OBSERVERS, RangeStats, clip_range
from .weight_quant import InputStats

ACT_BITS, EMB_BITS, LN_IN_BITS = 8, 16, 22
FACTOR_FLOOR = 1e-5
Progress = Optional[Callable[[str, int, int], None]]


def observed_points(layers: int):
    """Every point calibration records, with whether it keeps per-channel statistics."""
    points = {"emb.sum": False, "emb.out": True}
    for i in range(layers):
        for part in ("q", "k", "v", "context", "attn.sum", "ffn.sum"):
            points[f"layer{i}.{part}"] = False
        for part in ("attn.out", "gelu.out", "out"):
            points[f"layer{i}.{part}"] = True
    return points


def collect(ckpt: Checkpoint, texts: Sequence[str], *, batch: int = 32, progress: Progress = None,
            grams: bool = False):
    """``RangeStats`` of every point over the real tokens of ``texts`` (one float forward pass);
    ``grams``: the points that feed a Linear also keep their Gram matrix (for GPTQ)."""
    cfg = ckpt.model.config
    points = observed_points(cfg.layers)
    gram_points = set(linear_inputs(cfg.layers).values()) if grams else set()
    stats: Dict[str, RangeStats] = {}
    done = 0
    for rows, ids, mask in length_batches(ckpt, texts, batch):
        keep = mask.astype(bool)

        def observe(name, value, keep=keep):
            if name in points:
                if name not in stats:
                    stats[name] = RangeStats(value.shape[-1], points[name], gram=name in gram_points)
                stats[name].add(value[keep])

        ckpt.hidden(ids, mask, observe=observe)
        done += len(rows)
        if progress:
            progress("calibrate", done, len(texts))
    return stats


def consumers(model, point: str):
    """The weights ``[N, K]`` that read ``point`` (stacked), or ``None``."""
    layers = model.layers
    if point == "emb.out" or (point.endswith(".out") and point.count(".") == 1):
        index = 0 if point == "emb.out" else int(point.split(".")[0][len("layer"):]) + 1
        if index >= len(layers):
            return None
        p = layers[index]
        return np.concatenate([p.q_w, p.k_w, p.v_w])
    index = int(point.split(".")[0][len("layer"):])
    return {"attn.out": layers[index].ffn_in_w, "gelu.out": layers[index].ffn_out_w}[point.split(".", 1)[1]]


def smoothing_factors(model, stats: Dict[str, RangeStats], alpha: Optional[float]) -> Dict[str, np.ndarray]:
    """SmoothQuant factors of every per-channel point that feeds a Linear (none when ``alpha`` is None)."""
    if alpha is None:
        return {}
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"smoothquant alpha {alpha} is outside [0, 1]")
    factors = {}
    for point, s in stats.items():
        weights = consumers(model, point) if s.per_channel else None
        if weights is None:
            continue
        x_max = np.maximum(s.max, FACTOR_FLOOR)
        w_max = np.maximum(np.abs(weights).max(axis=0), FACTOR_FLOOR)
        factors[point] = np.clip(x_max ** alpha / w_max ** (1.0 - alpha), FACTOR_FLOOR, 1.0 / FACTOR_FLOOR)
    return factors


def linear_inputs(layers: int) -> Dict[str, str]:
    """Every encoder Linear (``intref.models.ibert``'s names) and the calibration point it reads."""
    out = {}
    for i in range(layers):
        for part in ("q", "k", "v"):
            out[f"layer{i}.{part}.linear"] = "emb.out" if i == 0 else f"layer{i - 1}.out"
        for linear, point in (("attn.linear", "context"), ("ffn.linear1", "attn.out"), ("ffn.linear2", "gelu.out")):
            out[f"layer{i}.{linear}"] = f"layer{i}.{point}"
    return out


def linear_input_stats(stats: Dict[str, RangeStats], factors: Dict[str, np.ndarray], layers: int,
                       grams: bool) -> Dict[str, InputStats]:
    """Every encoder Linear's ``InputStats`` of the smoothed input ``x / f`` the integer graph holds (its
    weight columns carry ``f``): ``E[x_k**2]`` and, with ``grams``, ``E[x x^T]``; ValueError naming the
    point when calibration kept no Gram matrix (``collect(grams=True)``)."""
    out = {}
    for linear, point in linear_inputs(layers).items():
        s, f = stats[point], factors.get(point)
        if grams and s.gram is None:
            raise ValueError(f"weight quantization gptq needs the Gram matrix of {point}: calibrate with grams=True")
        out[linear] = InputStats(s.mean_square(f), s.mean_gram(f) if grams else None)
    return out


def point_bits(point: str, layers: int, output_bits: int) -> int:
    if point == "emb.sum":
        return EMB_BITS
    if point.endswith(("attn.sum", "ffn.sum")):
        return LN_IN_BITS
    if point == f"layer{layers - 1}.out":
        return output_bits
    return ACT_BITS


def scales(stats: Dict[str, RangeStats], factors: Dict[str, np.ndarray], layers: int, *, observer: str,
           percentile: float, output_bits: int) -> Dict[str, float]:
    """The real scale of every point (``intref.models.ibert``'s names, ``ffn.in``/``ffn.mid`` included)."""
    if observer not in OBSERVERS:
        raise ValueError(f"observer {observer!r} is not one of {OBSERVERS}")
    out = {}
    for point, s in stats.items():
        bits = point_bits(point, layers, output_bits)
        counts, max_abs = s.histogram(factors.get(point))
        chosen = observer if bits == ACT_BITS else "minmax"
        r = clip_range(counts, max_abs, chosen, bits=bits, percentile=percentile)
        out[point] = max(r, 1e-8) / ((1 << (bits - 1)) - 1)
    for i in range(layers):
        out[f"layer{i}.ffn.in"] = out[f"layer{i}.attn.out"]
        out[f"layer{i}.ffn.mid"] = out[f"layer{i}.gelu.out"]
    return out


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start
