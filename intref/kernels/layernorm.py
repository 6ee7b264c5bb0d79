"""Integer LayerNorm kernel: twin of ``intref.spec.layernorm.i_layernorm``, bit for bit.

Normalises the last axis of ``q`` (any leading dims) with the integer steps of the spec; the
spec module holds the formula, the REQUIREs, every intermediate's width and the proofs. int64
throughout: ``|sum(q)| <= 2**63``, ``var < 2**63`` and ``|y * factor| < 2**32`` are guaranteed by
``LayerNormParams`` for every legal input, so no step can wrap. No float, no Python loop over
elements or rows (``isqrt_planned``: a float estimate and one integer correction each way).

Accuracy against float64 LayerNorm of the same integers (derived, not fitted)
-----------------------------------------------------------------------------
Row ``q`` of ``C`` values, ``mu = sum(q)/C``, ``d = q - mu``, ``T = sqrt(sum(d**2)) = sqrt(C)*sigma``
(population sigma), ``z = d / sigma`` (float LayerNorm before gamma/beta, ``eps = 0``),
``S = sqrt(C) / 2**30`` and ``s = shift``. Let

    E = sqrt(C) * (2**s - 1/2) + 2**s.

If ``T > E``, every element of the row, dequantized with the exact scale ``out_scale = S*gamma``
and ``bias_int = floor(beta / (gamma*S))`` (as ``prepare_layernorm`` computes it), obeys

    |result * out_scale - (gamma*z + beta)|
        <= |gamma| * ( 2*S  +  (|z|*T + sqrt(C)/2) / 2**31  +  (sqrt(C)/2 + |z|*E) / (T - E) ).

``|z| <= sqrt(C - 1)`` (Samuelson) turns this into one bound for the whole row. For wide rows the
middle term dominates: ``|z| * T / 2**31 ~ |z| / factor``, i.e. ``factor = floor(2**31/std)`` has
only ``log2(2**31 / std)`` significant bits (about 9 for int22 rows with sigma ~ 2**17, C = 768).
``intref.quant.layernorm.layernorm_error_bound`` evaluates it.

Derivation. With ``m`` the rounded mean, ``delta = mu - m`` (``|delta| <= 1/2``), ``y = d + delta``:

1. ``sum(d) = 0`` gives ``|y|**2 = T**2 + C*delta**2``, so ``T <= |y| <= T + sqrt(C)/2``
   (``|.|`` the Euclidean norm of the row).
2. ``w = 2**s * ysh`` differs from ``y`` by ``e = y - w`` in ``[0, 2**s - 1]`` elementwise, so
   ``| |w| - |y| | <= sqrt(C) * (2**s - 1)``; ``|w| = 2**s * sqrt(var)``.
3. ``sqrt(var) - 1 < isqrt(var) <= sqrt(var)``, so ``|w| - 2**s < std <= |w|``.
   Together: ``T - sqrt(C)*(2**s - 1) - 2**s < std <= T + sqrt(C)*(2**s - 1/2)``: ``|std - T| <= E``.
4. ``S * norm - z = S*(norm - y*f/2) + S*y*(f - 2**31/std)/2 + sqrt(C)*(y/std - d/T)`` with
   ``f = factor``, because ``S * y * 2**30 / std = sqrt(C) * y / std`` and ``z = sqrt(C) * d / T``.
   - first term: the floor of ``/2``, in ``(-S, 0]``;
   - second: the floor of ``factor`` is in ``(-1, 0]``, so ``|.| < S*|y|/2 <= (|z|*T + sqrt(C)/2)/2**31``
     (``|y| <= |d| + 1/2`` and ``|d| = |z| * T / sqrt(C)``);
   - third: ``sqrt(C)*delta/std + z*(T - std)/std``, at most ``(sqrt(C)/2 + |z|*E) / (T - E)``.
5. ``bias_int * gamma * S = beta - gamma*S*phi`` with ``phi`` in ``[0, 1)``: at most ``|gamma| * S``.
   Multiply 4 by ``|gamma|`` and add 5.

Rows with ``T <= E`` (near-constant rows, where the guard shift or the integer square root has
eaten the variance) are outside the bound: there ``std`` may be 0 and the row normalises to 0.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import DtypeError, ShapeError
from ..spec.layernorm import LayerNormParams
from ..spec.layernorm_bounds import FACTOR_NUMERATOR
from .sqrt import isqrt_planned
from .rounding import div_round_half_even

_WHERE = "i_layernorm"


def i_layernorm(q, params: LayerNormParams) -> np.ndarray:
    """Integer LayerNorm over the last axis of ``q``; returns int64 of ``q``'s shape.

    Arguments:
      q       integer array (any dtype up to int64; uint64, bool, float refused) of shape
              ``(..., C)`` with ``C == params.channels``; REQUIRE every value in
              ``int<params.input_bits>`` (``RangeError`` naming the first offending index).
      params  ``LayerNormParams`` (``intref.quant.layernorm.prepare_layernorm`` builds them).

    ``result = floor((q - mean) * floor(2**31 / std) / 2) + bias_int[c]`` per row exactly as
    ``intref.spec.layernorm.i_layernorm`` defines it; values lie in ``params.output_range()``. A
    row with ``std == 0`` returns ``bias_int``. ``q`` is not modified.
    """
    if not isinstance(params, LayerNormParams):
        raise DtypeError(f"{_WHERE}: params must be LayerNormParams, got {type(params).__name__}",
                         argument="params")
    q = _checks.int_array(_WHERE, "q", q)
    channels, shift = params.channels, params.shift
    if q.ndim == 0 or q.shape[-1] != channels:
        raise ShapeError(f"{_WHERE}: q has shape {q.shape}; its last axis must have params.channels = "
                         f"{channels} values", argument="q")
    lo, hi = params.input_range()
    _checks.require_range(_WHERE, "q", q, lo, hi, why=f"int{params.input_bits}")

    return layernorm_rows(q, params)


def layernorm_rows(q: np.ndarray, params: LayerNormParams) -> np.ndarray:
    """The arithmetic of ``i_layernorm`` without its argument checks (the ``ILayerNorm`` op calls it
    directly: its input type and shape prove the REQUIRE at load time). Returns a new int64 array."""
    channels, shift = params.channels, params.shift
    row_sum = np.sum(q, axis=-1, keepdims=True, dtype=np.int64)   # |.| <= C * 2**(b-1); q is never written
    mean = div_round_half_even(row_sum, channels)
    y = np.subtract(q, mean, dtype=np.int64)                   # |y| <= 2**b - 1; widened on the fly
    ysh = y >> np.int64(shift)                                 # floor(y / 2**shift)
    ysh *= ysh
    var = np.sum(ysh, axis=-1, keepdims=True, dtype=np.int64)  # <= variance_bound < 2**63
    root = isqrt_planned(var)                                  # 0 <= var <= variance_bound < 2**63
    # factor = floor(2**31 / (root * 2**shift)) = floor(floor(2**31 / 2**shift) / root): nested
    # floor divisions by positive integers compose, and std = root << shift is never formed
    # (it could pass 2**63 for a large shift). root == 0 (std == 0) gives factor 0.
    numerator = np.int64(FACTOR_NUMERATOR >> shift)
    factor = np.where(root > 0, numerator // np.maximum(root, np.int64(1)), np.int64(0))
    y *= factor                                                # |y * factor| < 2**32
    y >>= np.int64(1)
    y += np.asarray(params.bias_int, dtype=np.int64)
    return y
