"""How float scales and weights become integer constants (build time: floats allowed here).

``Derivation`` is the clean float64 derivation intref uses for its own models: symmetric
per-channel int8 weights, biases at the accumulator's scale, dyadic ratios, and the kernels'
``prepare_*``. A frontend that must reproduce another implementation's constants bit for bit (the
HF I-BERT import, whose constants come out of float32 arithmetic) subclasses it and overrides the
methods whose arithmetic differs; the graph wiring (``intref.models.ibert``) stays the same.
"""

from __future__ import annotations

import math

import numpy as np

from ..inttypes import MAX_SHIFT
from ..quant import dyadic, prepare_gelu, prepare_layernorm, prepare_softmax, quantize_symmetric
from ..spec.gelu import GeluParams
from ..spec.layernorm import LayerNormParams
from ..spec.softmax import SoftmaxParams


class Derivation:
    """Float64 derivation. ``weight_clamp`` is the int8 clamp convention of ``quantize_symmetric``
    (``narrow`` [-127, 127] here; ``ibert`` gives HF's [-127, 126])."""

    weight_clamp = "narrow"
    name = "intref-float64"

    def act_scale(self, max_abs: float, bits: int) -> float:
        """Symmetric activation scale from a calibrated range: ``max|x| / (2**(bits-1) - 1)``."""
        return max(float(max_abs), 1e-8) / ((1 << (bits - 1)) - 1)

    def linear_weight(self, w: np.ndarray):
        """int8 ``[N, K]`` weight with one scale per output channel: ``(w_int, scale[N])``."""
        q, scale = quantize_symmetric(w, 8, axis=0, clamp=self.weight_clamp)
        return q, scale.reshape(-1)

    def table(self, w: np.ndarray):
        """int8 embedding table with one scale for the whole table: ``(table_int, scale)``."""
        q, scale = quantize_symmetric(w, 8, clamp=self.weight_clamp)
        return q, float(scale)

    def bias(self, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """int32 bias at the accumulator's per-channel scale: ``round(b / scale)``, clamped."""
        q = np.rint(np.asarray(b, np.float64) / scale)
        return np.clip(q, -(2 ** 31 - 1), 2 ** 31 - 1).astype(np.int32)

    def scale_product(self, a, b):
        """The scale of a product of two scaled integers (a GEMM accumulator): ``a * b``."""
        return np.asarray(a, np.float64) * np.asarray(b, np.float64)

    def score_scale(self, s_q: float, s_k: float, head_dim: int) -> float:
        """The attention scores' scale: ``s_q * s_k / sqrt(head_dim)`` (the scores are divided by
        sqrt(d) in real terms; the integers ``q . k`` stay as they are)."""
        return float(s_q) * float(s_k) / math.sqrt(head_dim)

    def ratio(self, real):
        """Dyadic ``(multiplier, shift)`` of a real ratio (per tensor or per channel).

        A shift above 127 (a vanishing ratio: a LayerNorm channel with gamma ~ 1e-33) is written as
        127, which changes no result: for int64 ``x`` and ``|m| <= 2**31``, ``|x * m| < 2**95``, and
        every rounding of ``x * m / 2**s`` is the same for all ``s >= 96``.
        """
        m, s = dyadic(real)
        if np.ndim(m):
            return [int(v) for v in m], [min(int(v), MAX_SHIFT) for v in s]
        return m, min(s, MAX_SHIFT)

    def gelu(self, scale, input_bits: int) -> GeluParams:
        return prepare_gelu(np.asarray(scale, np.float64), input_bits=input_bits)

    def softmax(self, scale: float, input_bits: int, output_max: int, exp_ratio=None) -> SoftmaxParams:
        """Softmax params at score scale ``scale``. ``exp_ratio``: the real multiplier of the exp
        requantization, when the model fixes it (default: exp(0) maps to the top 16-bit code)."""
        params = prepare_softmax(scale, input_bits=input_bits, output_max=output_max)
        if exp_ratio is None:
            return params
        from dataclasses import replace
        m, s = dyadic(exp_ratio)
        return replace(params, exp_multiplier=m, exp_shift=s)

    def layernorm(self, gamma, beta, input_bits: int, shift) -> LayerNormParams:
        return prepare_layernorm(np.asarray(gamma, np.float64), np.asarray(beta, np.float64),
                                 input_bits=input_bits, shift=shift)
