"""Linear with input-dimension weight groups: twin of ``intref.spec.groupwise.group_linear``.

    P[..., n, j] = sum_{k in group j} x[..., k] * w[n, k]          int32 (REQUIRE, checked)
    R[..., n, j] = round(P * m[n, j] / 2**shift)                  named rounding; int32 (REQUIRE, checked)
    y[..., n]    = bias[n] + sum_j R[..., n, j]                    int64, exact

Each group's partial sums are one exact GEMM (``kernels.gemm.matmul`` on the group's ``g`` columns,
int64 result); ``kernels.rounding.mul_shift_round`` rescales them exactly (``|P * m| < 2**62``); the
int64 sum of at most ``K`` terms of magnitude ``<= 2**31`` plus an int32 bias is exact. The loop runs
over the ``G = K / g`` groups (blocks of columns), never over elements.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import RangeError, ShapeError, format_index
from ..spec.groupwise import INT32_MAX, INT32_MIN, MAX_SHIFT, MULTIPLIER_MAX
from ..spec.rounding import ROUNDING_MODES
from .gemm import matmul
from .rounding import mul_shift_round

_WHERE = "group_linear"
WEIGHT_DTYPES = (np.int8, np.int16)


def group_linear(x, weight, multiplier, shift, *, group_size: int, bias=None, rounding: str = "half_even") -> np.ndarray:
    """``y[..., n] = bias[n] + sum_j round(P[..., n, j] * multiplier[n, j] / 2**shift)``, int64.

    Arguments:
      x           (..., K) array of a GEMM operand dtype (int8/16/32, uint8/16), at least 1-D.
      weight      (N, K) int8 or int16 array (PyTorch layout; int4 values are int8 storage).
      multiplier  (N, K / group_size) integer array, every value in [0, 2**31].
      shift       int in 0..127, common to every group (the common scale).
      group_size  g >= 1, dividing K.
      bias        None or an (N,) integer array of int32 values.
      rounding    a dialect of ``intref.spec.rounding``.
    Raises DtypeError/ShapeError/RangeError for a broken REQUIRE; a partial sum or a rescaled term
    outside int32 raises RangeError naming the output index ``[..., n]`` and the group.
    """
    _checks.require_choice(_WHERE, "rounding", rounding, ROUNDING_MODES)
    shift = _checks.require_int(_WHERE, "shift", shift, 0, MAX_SHIFT)
    x = _checks.int_array(_WHERE, "x", x)
    weight = _checks.int_array(_WHERE, "weight", weight)
    _checks.require_dtype(_WHERE, "weight", weight, WEIGHT_DTYPES)
    if x.ndim < 1 or weight.ndim != 2 or x.shape[-1] != weight.shape[1] or weight.shape[1] == 0:
        raise ShapeError(f"{_WHERE}: x {x.shape} and weight {weight.shape} must be (..., K) and (N, K), K >= 1",
                         argument="weight")
    n_out, k = weight.shape
    group = _checks.require_int(_WHERE, "group_size", group_size, 1, k)
    if k % group:
        raise ShapeError(f"{_WHERE}: K = {k} is not a multiple of group_size = {group}", argument="group_size")
    m = _matrix(multiplier, (n_out, k // group))
    b = np.zeros(n_out, np.int64) if bias is None else _bias(bias, n_out)
    rows = x.reshape(-1, k)
    total = np.broadcast_to(b, (rows.shape[0], n_out)).copy()
    for j in range(k // group):
        columns = slice(j * group, (j + 1) * group)
        partial = matmul(np.ascontiguousarray(rows[:, columns]), np.ascontiguousarray(weight[:, columns].T))
        _require_int32(partial, "partial sum P", j, x.shape)
        term = mul_shift_round(partial, m[:, j], shift, rounding).value()   # exact: |P * m| < 2**62
        _require_int32(term, "rescaled term R", j, x.shape)
        total += term                                   # |total| <= (G + 1) * 2**31: exact
    return total.reshape(x.shape[:-1] + (n_out,))


def _matrix(multiplier, shape) -> np.ndarray:
    m = _checks.int_array(_WHERE, "multiplier", multiplier)
    if m.shape != shape:
        raise ShapeError(f"{_WHERE}: multiplier has shape {m.shape}; expected {shape} (N, K / group_size)",
                         argument="multiplier")
    _checks.require_range(_WHERE, "multiplier", m, 0, MULTIPLIER_MAX)
    return m.astype(np.int64)


def _bias(bias, n_out: int) -> np.ndarray:
    b = _checks.int_array(_WHERE, "bias", bias)
    if b.shape != (n_out,):
        raise ShapeError(f"{_WHERE}: bias has shape {b.shape}; expected ({n_out},)", argument="bias")
    _checks.require_range(_WHERE, "bias", b, INT32_MIN, INT32_MAX)
    return b.astype(np.int64)


def _require_int32(values: np.ndarray, what: str, group: int, x_shape) -> None:
    index = _checks.first_outside(values, INT32_MIN, INT32_MAX)
    if index is None:
        return
    row, n = index
    at = tuple(int(i) for i in np.unravel_index(row, x_shape[:-1])) + (n,) if len(x_shape) > 1 else (n,)
    value = int(values[index])
    raise RangeError(f"{_WHERE}: {what} of output {format_index(at)}, group {group}, is {value}: outside int32 "
                     f"[{INT32_MIN}, {INT32_MAX}]", argument="x", index=at, value=value)
