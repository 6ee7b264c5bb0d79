"""The normative scalar definitions of every kernel: pure Python ints, no NumPy.

Each function here has a vectorized twin of the same name in ``intref.kernels`` that must equal
it bit for bit. Per-channel params are consumed one channel at a time (``params.channel(c)``);
softmax and LayerNorm specs take one row (a list of ints).
"""

from .gelu import GeluParams, i_gelu
from .sqrt import isqrt, isqrt_with_count
from .layernorm import LayerNormParams, i_layernorm
from .gemm import matmul
from .groupwise import group_linear
from .requant import add_requantized, requantize
from .rounding import ROUNDING_MODES, div_round_half_even, rshift_round
from .pool import masked_mean
from .softmax import SoftmaxParams, i_exp, i_softmax
from .tokenwise import token_quantize, token_reciprocal, token_requantize, token_scale

__all__ = ["GeluParams", "LayerNormParams", "ROUNDING_MODES", "SoftmaxParams", "add_requantized",
           "div_round_half_even", "group_linear", "i_exp", "i_gelu", "i_layernorm", "i_softmax", "isqrt",
           "isqrt_with_count", "masked_mean", "matmul", "requantize", "rshift_round", "token_quantize",
           "token_reciprocal", "token_requantize", "token_scale"]
