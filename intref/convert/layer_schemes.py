"""One Linear of a real model under each of ZeroQuant's fine-grained schemes, run by intref (study code
for ``notebooks/fine_grained.ipynb``; floats only at the boundaries).

    x, rows = linear_input(ckpt, texts, "layer1.attn.out")          # float64 [T, K] real rows, who is who
    graph = linear_graph(Scheme(weights="w4", group_size=32), w, b, x_max=calibrated_max, rows=len(x))
    y_int = run_linear(graph, x)                                   # float64 [T, N], computed in integers
    sqnr_db(x @ w.T + b, y_int); row_sqnr_db(x @ w.T + b, y_int)   # whole layer / per token
    scheme_sqnr({"w4 g32": Scheme(weights="w4", group_size=32)}, w, b, x, x_max=...)   # all three per scheme

``linear_graph`` is a graph of exactly the nodes ``intref convert ptq`` emits for that Linear
(``schemes.emit_linear``): static activations enter as int8 at ``x_max / 127``; token-wise ones enter
as int16 at ``x_max / 32767`` (the converter's 16-bit Linear inputs) and are brought to int8 per token
at run time by ``TokenScale`` / ``TokenQuantize``. ``bits_per_weight`` counts the weight's storage
with the scale overhead: ``bits + scale_bits * scales / (N * K)``, one ``scale_bits`` number (a Q31
dyadic multiplier: 32 bits) per distinct weight scale.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Sequence

import numpy as np

from .. import dequantize, run
from ..build import GraphBuilder
from ..errors import ArgumentError, RangeError, ShapeError
from ..graph import Graph
from .error_budget import sqnr_db
from .ptq.convert import PtqDerivation
from .ptq.observers import RangeStats, clip_range
from .ptq.schemes import TOKEN_INPUT_BITS, Scheme, emit_linear

STATIC_INPUT_BITS = 8
SCALE_BITS = 32            # a weight scale as intref stores it: a Q31 dyadic multiplier


def scale_count(scheme: Scheme, n_out: int, k: int, *, name: str = "") -> int:
    """Distinct weight scales of an ``[n_out, k]`` weight: ``N * K / g`` for input groups of ``g``, ``N / R``
    for output-row groups of ``R`` rows (``groups=1``: per tensor), ``N`` per channel (``name`` picks W4/8's
    bits, and so whether its int8 layers are grouped)."""
    size = scheme.group(n_out, k, scheme.bits(name))
    if size is None:
        return n_out
    return n_out * (k // size) if scheme.group_axis == "in" else n_out // size


def bits_per_weight(scheme: Scheme, n_out: int, k: int, *, name: str = "", scale_bits: int = SCALE_BITS) -> float:
    """Storage per weight: ``bits + scale_bits * scale_count / (N * K)`` (``name`` picks W4/8's bits)."""
    return scheme.bits(name) + scale_bits * scale_count(scheme, n_out, k, name=name) / (n_out * k)


def input_bits(scheme: Scheme) -> int:
    """The width at which the layer's input enters: 8 (static) or the converter's 16 (token-wise)."""
    return TOKEN_INPUT_BITS if scheme.act == "token" else STATIC_INPUT_BITS


def input_scale(scheme: Scheme, x_max: float) -> float:
    """The static real scale of the input: ``x_max / (2**(bits-1) - 1)`` at ``input_bits(scheme)``."""
    if not np.isfinite(x_max) or x_max <= 0:
        raise RangeError(f"input_scale: x_max {x_max!r} must be a finite positive calibrated range",
                         argument="x_max", value=x_max)
    return float(x_max) / ((1 << (input_bits(scheme) - 1)) - 1)


def linear_graph(scheme: Scheme, weight, bias, *, x_max: float, rows: int, name: str = "linear") -> Graph:
    """A graph with input ``x`` ``[rows, K]`` and output ``y`` (int32, per-channel scale in the metadata):
    the Linear ``x @ weight.T + bias`` as ``intref convert ptq`` builds it under ``scheme``."""
    weight = np.asarray(weight, np.float64)
    if weight.ndim != 2 or np.shape(bias) != (weight.shape[0],):
        raise ShapeError(f"linear_graph: weight {weight.shape} and bias {np.shape(bias)} must be [N, K] and [N]",
                         argument="weight")
    bits = input_bits(scheme)
    builder = GraphBuilder(f"{name} {scheme.describe()}", symbols={"rows": int(rows)})
    x = builder.input("x", f"int{bits}", ["rows", weight.shape[1]], scale=input_scale(scheme, x_max))
    encoder = SimpleNamespace(b=builder, d=PtqDerivation())           # what emit_linear reads
    y, _ = emit_linear(encoder, scheme, x, input_scale(scheme, x_max), weight, np.asarray(bias, np.float64), name)
    builder.output(y)
    return builder.build(producer={"name": "intref.convert.layer_schemes"})


def quantize_input(graph: Graph, x) -> np.ndarray:
    """The feed of ``graph``'s input ``x``: ``clamp(rint(x / scale), -Q, Q)`` in its declared type
    (values beyond the calibrated range saturate, as a static requantization would)."""
    info = graph.inputs[0]
    x = np.asarray(x, np.float64)
    if not np.isfinite(x).all():
        raise RangeError(f"quantize_input: x holds a non-finite value at {np.argwhere(~np.isfinite(x))[0].tolist()}",
                         argument="x")
    q_max = info.type.hi
    q = np.clip(np.rint(x / graph.quantization[info.name]["scale"]), -q_max, q_max)
    return q.astype(info.type.storage)


def run_linear(graph: Graph, x) -> np.ndarray:
    """``graph``'s output for the float rows ``x``, computed by ``intref.run`` and dequantized: float64."""
    (out,) = graph.outputs
    return dequantize(graph, out, run(graph, {graph.inputs[0].name: quantize_input(graph, x)})[out])


def row_sqnr_db(y, y_int) -> np.ndarray:
    """Per row (token): ``10 log10(sum(y**2) / sum((y - y_int)**2))`` over the last axis, float64."""
    y = np.asarray(y, np.float64)
    noise = np.sum((y - np.asarray(y_int, np.float64)) ** 2, axis=-1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.sum(y * y, axis=-1) / noise)


def calibrated_range(x, observer: str = "minmax", *, bits: int = STATIC_INPUT_BITS) -> float:
    """The clipping range of a static per-tensor scale from calibration rows ``x``, chosen by a
    ``intref convert ptq`` observer (``minmax``: ``max|x|``; ``mse``: the range minimising the
    ``bits``-bit quantization error over the histogram)."""
    stats = RangeStats(np.shape(x)[-1], per_channel=False)
    stats.add(np.asarray(x, np.float64))
    counts, max_abs = stats.histogram()
    return clip_range(counts, max_abs, observer, bits=bits)


def scheme_sqnr(schemes: dict, weight, bias, x, *, x_max: float, name: str = "linear") -> dict:
    """``{label: (bits per weight, SQNR dB, per-row SQNR dB)}`` of the Linear ``x @ weight.T + bias`` on the
    float rows ``x`` under each ``Scheme`` of ``schemes`` (label -> scheme), against the float64 output."""
    y = np.asarray(x, np.float64) @ np.asarray(weight, np.float64).T + bias
    out = {}
    for label, scheme in schemes.items():
        y_int = run_linear(linear_graph(scheme, weight, bias, x_max=x_max, rows=len(y), name=name), x)
        out[label] = (bits_per_weight(scheme, *np.shape(weight), name=name), sqnr_db(y, y_int), row_sqnr_db(y, y_int))
    return out


def linear_input(ckpt, texts: Sequence[str], point: str):
    """``(x, rows)``: the float64 values of ``point`` (a Linear's input, e.g. ``layer1.attn.out``) on the
    real tokens of ``texts``, ``[T, K]``, and per row its ``sentence``, ``position`` and ``token`` (the
    vocabulary string), as a dict of arrays of length ``T``."""
    ids, mask = ckpt.encode(list(texts))
    seen = {}
    ckpt.hidden(ids, mask, observe=lambda n, v: seen.__setitem__(n, v) if n == point else None)
    if point not in seen:
        raise ArgumentError(f"linear_input: the float model has no point {point!r} (a Linear's input is e.g. "
                            f"'emb.out', 'layer0.context', 'layer0.attn.out', 'layer0.gelu.out')", argument="point",
                            value=point)
    keep = np.asarray(mask, bool)
    sentence, position = np.nonzero(keep)
    tokens = np.array([ckpt.tokenizer.vocab[int(i)] for i in np.asarray(ids)[keep]])
    return np.asarray(seen[point], np.float64)[keep], {"sentence": sentence, "position": position, "token": tokens}


__all__ = ["SCALE_BITS", "Scheme", "bits_per_weight", "calibrated_range", "input_bits", "input_scale", "linear_graph",
           "linear_input", "quantize_input", "row_sqnr_db", "run_linear", "scale_count", "scheme_sqnr", "sqnr_db"]
