"""The HF I-BERT reference's constants, derived by the reference's own float32 arithmetic.

``HFDerivation`` computes every integer constant of a converted model with the very torch
operations (and HF helper functions) that ``transformers``' I-BERT runs in its forward pass, on the
same float32 tensors: ``symmetric_linear_quantization_params`` (scale = max|x| / n in float32),
``SymmetricQuantFunction`` (``round(fl32(1/s) * w)``, clamp ``[-127, 126]``), float32 scale
products ``fc_sf * s_x``, ``tensor / python float`` true division, ``python float / tensor`` as a
reciprocal then a multiply, ``1.0 // t`` (floor since torch 1.13), ``torch.floor``. So the constants
are the reference's bit for bit on the torch version installed (notes/ibert-reference-semantics.md
sections 1.7, 2, 6-8). Only the runtime arithmetic differs: exact integers here, float32 there.

Build time only; requires torch and transformers (the ``hf`` extra).
"""

from __future__ import annotations

import math

import numpy as np

from ...models.derivation import Derivation
from ...spec.gelu import GeluParams
from ...spec.layernorm import LayerNormParams
from ...spec.softmax import SoftmaxParams


def _torch():
    import torch
    from transformers.models.ibert import quant_modules
    return torch, quant_modules


class HFDerivation(Derivation):
    weight_clamp = "ibert"

    def __init__(self):
        self.torch, self.qm = _torch()
        self.name = f"hf-ibert float32 (torch {self.torch.__version__})"
        gelu = self.qm.IntGELU(quant_mode=True)
        self.gelu_k, self.gelu_const, self.gelu_coeff = gelu.k, gelu.const, list(gelu.coeff)
        softmax = self.qm.IntSoftmax(8, quant_mode=True)
        self.sm_x0, self.sm_const, self.sm_coef = softmax.x0, softmax.const, list(softmax.coef)
        self.sm_max_bit, self.sm_output_bit = softmax.max_bit, softmax.output_bit

    def f32(self, value):
        """A float32 tensor of ``value`` (exact: every scale here came out of a float32 tensor)."""
        return self.torch.tensor(np.asarray(value, dtype=np.float32))

    @staticmethod
    def back(tensor) -> np.ndarray:
        return tensor.detach().numpy().astype(np.float64)

    def act_scale_from_range(self, x_min, x_max, bits: int) -> float:
        """A QuantAct's scale from its checkpoint buffers, as its forward computes it."""
        return float(self.qm.symmetric_linear_quantization_params(bits, x_min, x_max, per_channel=False).item())

    def table(self, w: np.ndarray):
        t = self.f32(w)
        scale = self.qm.symmetric_linear_quantization_params(8, t.min().expand(1), t.max().expand(1), False)
        q = self.qm.SymmetricQuantFunction.apply(t, 8, False, scale)
        return q.numpy().astype(np.int8), float(scale.item())

    def linear_weight(self, w: np.ndarray):
        t = self.f32(w)
        w_min, _ = self.torch.min(t, dim=1)
        w_max, _ = self.torch.max(t, dim=1)
        scale = self.qm.symmetric_linear_quantization_params(8, w_min, w_max, True)
        q = self.qm.SymmetricQuantFunction.apply(t, 8, False, scale)
        return q.numpy().astype(np.int8), self.back(scale)

    def bias(self, b: np.ndarray, scale) -> np.ndarray:
        q = self.qm.SymmetricQuantFunction.apply(self.f32(b), 32, False, self.f32(scale))
        return q.numpy().astype(np.int64).astype(np.int32)

    def scale_product(self, a, b):
        return self.back(self.f32(a) * self.f32(b))

    def score_scale(self, s_q: float, s_k: float, head_dim: int) -> float:
        return float((self.f32(s_q) * self.f32(s_k) / math.sqrt(head_dim)).item())

    def gelu(self, scale, input_bits: int) -> GeluParams:
        s = self.f32(scale) / self.gelu_k                  # IntGELU.forward: scaling_factor / self.k
        a, b, c = self.gelu_coeff                         # [a, b, 1/a]
        b_int = self.torch.floor(b / s)                   # int_erf
        c_int = self.torch.floor(c / s ** 2)
        sigmoid_sf = s ** 2 * a * 2 ** self.gelu_const
        shift_int = 1.0 // sigmoid_sf
        out_sf = self.f32(scale) * sigmoid_sf / 2
        ints = [[int(v) for v in t.numpy()] for t in (b_int, c_int, shift_int)]
        return GeluParams(*ints, guard_shift=self.gelu_const, input_bits=input_bits, out_scale=tuple(self.back(out_sf)))

    def softmax(self, scale: float, input_bits: int, output_max: int, exp_ratio=None) -> SoftmaxParams:
        s = self.f32([scale])
        x0_int = self.torch.floor(self.sm_x0 / s)         # int_exp
        b_int = self.torch.floor(self.sm_coef[1] / s)     # int_polynomial
        c_int = self.torch.floor(self.sm_coef[2] / s ** 2)
        exp_sf = self.sm_coef[0] * s ** 2 / 2 ** self.sm_const
        if exp_ratio is None:
            raise ValueError("the HF derivation needs the exp QuantAct(16) ratio of the checkpoint")
        m, shift = self.ratio(exp_ratio)
        return SoftmaxParams(x0_int=int(x0_int.item()), b_int=int(b_int.item()), c_int=int(c_int.item()),
                             exp_clamp=self.sm_const, exp_multiplier=m, exp_shift=shift, exp_bits=16,
                             exp_rounding="half_even", output_bits=self.sm_output_bit, output_max=output_max,
                             input_bits=input_bits, exp_scale=float(exp_sf.item()),
                             out_scale=1.0 / 2 ** self.sm_output_bit)

    def layernorm(self, gamma, beta, input_bits: int, shift) -> LayerNormParams:
        gamma_t, beta_t = self.f32(gamma), self.f32(beta)
        dim_sqrt = self.torch.sqrt(self.torch.tensor(len(gamma), dtype=self.torch.float))
        sf = dim_sqrt / 2 ** 30                            # IntLayerNorm.forward
        bias_int = self.torch.floor((beta_t / gamma_t) / sf)
        return LayerNormParams(channels=len(gamma), shift=int(shift), bias_int=[int(v) for v in bias_int.numpy()],
                               input_bits=input_bits, out_scale=tuple(self.back(sf * gamma_t)))
