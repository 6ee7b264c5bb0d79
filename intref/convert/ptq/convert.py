"""``convert_ptq``: a float checkpoint and calibration sentences in, an integer-only graph out.

    graph, report = convert_ptq("all-MiniLM-L6-v2/", sentences)            # the measured best defaults
    graph, report = convert_ptq(ckpt, sentences, observer="mse", smoothquant=None)
    out = intref.run(graph, feeds(ids, mask))              # "last_hidden_state", "pooled" (integers)
    embeddings = intref.dequantize(graph, "pooled", out["pooled"])

The graph is ``intref.models.ibert``'s I-BERT wiring (integer GELU, softmax and LayerNorm, 22-bit
LayerNorm inputs, int8 Linear inputs) with post-training constants: per-channel int8 weights, int8
embedding tables with one scale per hidden channel, activation scales from ``calibrate``, SmoothQuant
folded into LayerNorm gamma/beta and weight columns, the last hidden state in ``output_bits`` and
its masked mean ``pooled``. Defaults (``DEFAULTS``) are the options measured best on
all-MiniLM-L6-v2 (``docs/ptq.md``, measured by ``benchmarks/ptq_options.py``); int4 weights
(``weights="w4"`` / ``"w4/8"``) take SmoothQuant ``schemes.W4_SMOOTHQUANT`` and GPTQ rounding instead
(``benchmarks/zq_schemes.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ...errors import TextError
from ...eval.metrics import cosine_summary  # noqa: F401  (one definition, re-exported here)
from ...graph import Graph
from ...models.derivation import Derivation
from ...models.ibert import Wiring, build_ibert_encoder
from ...quant import quantize_symmetric
from . import calibrate as cal
from . import schemes
from .checkpoint import Checkpoint, length_batches, load_checkpoint
from .text import tokenizer_metadata

DEFAULTS = dict(observer="mse", percentile=99.99, smoothquant=0.9, output_bits=16)
BY_SCHEME = "by-scheme"      # smoothquant's default: DEFAULTS' 0.9, or schemes.W4_SMOOTHQUANT with int4 weights
MAX_BATCH = 64


class PtqDerivation(Derivation):
    """The float64 derivation with embedding tables quantized per hidden channel (one scale per
    column: the outlier channels of a table no longer set every channel's grid)."""

    name = "intref-ptq"

    def table(self, w: np.ndarray):
        q, scale = quantize_symmetric(w, 8, axis=1, clamp=self.weight_clamp)
        return q, scale.reshape(-1)


def convert_ptq(source: Union[str, Path, Checkpoint], calib_texts: Sequence[str], *,
                observer: str = DEFAULTS["observer"], percentile: float = DEFAULTS["percentile"],
                smoothquant: Union[float, None, str] = BY_SCHEME, output_bits: int = DEFAULTS["output_bits"],
                batch: int = 32, progress: cal.Progress = None, **scheme_options) -> Tuple[Graph, dict]:
    """Calibrate on ``calib_texts`` and build the integer graph. Returns ``(graph, report)``; the
    report holds the options, the sentence and token counts and the time of each stage.
    ``scheme_options``: ZeroQuant's weights / group_size / groups / group_axis / act / table_bits /
    weight_quant (``schemes.py``); gptq keeps the Gram matrices of the Linear inputs in calibration."""
    ckpt = source if isinstance(source, Checkpoint) else load_checkpoint(source)
    check_options(observer, None if smoothquant == BY_SCHEME else smoothquant, output_bits)
    texts = list(calib_texts)
    if not texts:
        raise TextError("calibration needs at least one sentence", field="calibration sentences")
    grams = schemes.scheme_from_options(**scheme_options).weight_quant == "gptq"
    stats, seconds = cal.timed(cal.collect, ckpt, texts, batch=batch, progress=progress, grams=grams)
    (graph, report), seconds_build = cal.timed(build_ptq, ckpt, stats, observer=observer, percentile=percentile,
                                               smoothquant=smoothquant, output_bits=output_bits, progress=progress,
                                               **scheme_options)
    return graph, {**report, "sentences": len(texts), "seconds_calibration": round(seconds, 2), "seconds_build": round(seconds_build, 2)}


def check_options(observer: str, smoothquant: Optional[float], output_bits: int) -> None:
    if observer not in cal.OBSERVERS:
        raise ValueError(f"observer {observer!r} is not one of {cal.OBSERVERS}")
    if smoothquant is not None and not 0.0 <= smoothquant <= 1.0:
        raise ValueError(f"smoothquant alpha {smoothquant} is outside [0, 1] (None: no SmoothQuant)")
    if output_bits not in (8, 16):
        raise ValueError(f"output_bits {output_bits} is not 8 or 16")


def build_ptq(ckpt: Checkpoint, stats: dict, *, observer: str = DEFAULTS["observer"],
              percentile: float = DEFAULTS["percentile"], smoothquant: Union[float, None, str] = BY_SCHEME,
              output_bits: int = DEFAULTS["output_bits"], progress: cal.Progress = None,
              **scheme_options) -> Tuple[Graph, dict]:
    """The integer graph from calibration statistics (``calibrate.collect``): one calibration pass
    can serve several option sets. ``smoothquant``: alpha, None (off) or ``BY_SCHEME`` (the default:
    0.9, or ``schemes.W4_SMOOTHQUANT`` when the scheme has int4 weights)."""
    scheme = schemes.scheme_from_options(**scheme_options)
    smoothquant = schemes.default_smoothquant(scheme, DEFAULTS["smoothquant"]) if smoothquant == BY_SCHEME else smoothquant
    check_options(observer, smoothquant, output_bits)
    cfg = ckpt.model.config
    factors = cal.smoothing_factors(ckpt.model, stats, smoothquant)
    point_scales = cal.scales(stats, factors, cfg.layers, observer=observer, percentile=percentile,
                              output_bits=output_bits)
    wiring = Wiring(max_batch=MAX_BATCH, max_seq=ckpt.max_tokens, smooth=factors, output_bits=output_bits,
                    pooled=True)
    point_scales, wiring = schemes.apply(scheme, point_scales, wiring, cfg.layers,
                                         cal.linear_input_stats(stats, factors, cfg.layers, scheme.weight_quant == "gptq"))
    options = dict(observer=observer, percentile=percentile if observer == "percentile" else None,
                   smoothquant=smoothquant, output_bits=output_bits, scheme=scheme.describe())
    tokens = int(stats["emb.sum"].counts.sum()) // cfg.hidden      # every real token once per channel
    metadata = {"model": "ptq-encoder", "max_tokens": ckpt.max_tokens,
                "source": {"family": ckpt.family, "model_type": ckpt.config.get("model_type"), "path": ckpt.path.name},
                "ptq": {**options, "calibration_tokens": tokens},
                "weight_quant": schemes.weight_quant_metadata(scheme, cfg.layers)}
    on_layer = (lambda done, total: progress("build", done, total)) if progress else None
    graph = build_ibert_encoder(ckpt.model, point_scales, derivation=PtqDerivation(), wiring=wiring,
                                metadata={**metadata, **tokenizer_metadata(ckpt.tokenizer)}, on_layer=on_layer)
    return graph, {**options, "tokens": tokens}


def feeds(input_ids: np.ndarray, attention_mask: np.ndarray) -> dict:
    """The graph's feeds from a tokenizer's int64 arrays (ids int32, mask int8)."""
    return {"input_ids": np.asarray(input_ids).astype(np.int32), "attention_mask": np.asarray(attention_mask).astype(np.int8)}


def integer_embeddings(graph: Graph, ckpt: Checkpoint, texts: Sequence[str], *, batch: int = 32) -> np.ndarray:
    """The graph's ``pooled`` output for ``texts``, dequantized: float64 ``[N, hidden]``."""
    from ... import dequantize, run
    out = np.zeros((len(texts), ckpt.model.config.hidden), np.float64)
    for rows, ids, mask in length_batches(ckpt, texts, min(batch, MAX_BATCH)):
        pooled = run(graph, feeds(ids, mask))["pooled"]
        out[rows] = dequantize(graph, "pooled", pooled)
    return out
