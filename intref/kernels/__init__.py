"""Vectorized NumPy kernels, each bit-identical to its scalar twin in ``intref.spec``.

Integer dtypes only (int64 inside). Two float uses, each proven exact: the GEMM's BLAS path where a
bound proves every partial sum exact, and ``requant_float``'s float64 estimate of a requantization,
kept only where an error bound proves it rounds to the integer result (the rest is recomputed on
the integer path).
"""

from .gelu import i_gelu
from .sqrt import isqrt
from .layernorm import i_layernorm
from .gemm import matmul
from .groupwise import group_linear
from .requant import add_requantized, requantize
from .rounding import div_round_half_even, rshift_round
from .pool import masked_mean
from .softmax import i_exp, i_softmax
from .tokenwise import token_quantize, token_reciprocal, token_requantize, token_scale

__all__ = ["add_requantized", "div_round_half_even", "group_linear", "i_exp", "i_gelu", "i_layernorm", "i_softmax",
           "isqrt", "masked_mean", "matmul", "requantize", "rshift_round", "token_quantize", "token_reciprocal",
           "token_requantize", "token_scale"]
