"""Symmetric quantization of float tensors (build time: floats allowed here, never at runtime).

    n     = 2**(bits-1) - 1                       (127 for 8 bits)
    r     = max(max|x| over the block, 1e-8)      (one block per tensor, channel or group)
    scale = r / n                                 (float64)
    q     = clamp(round_half_even(x / scale), lo, hi)        (x / scale in float64)

Clamp ranges ``[lo, hi]`` (``clamp=``):

    "ibert"   [-n, n-1]     HF / official I-BERT ``SymmetricQuantFunction``: 8 bits give [-127, 126],
                            so a block's largest positive value becomes 126, its most negative -127
    "narrow"  [-n, n]       symmetric, [-127, 127]
    "full"    [-n-1, n]     the whole two's-complement range, [-128, 127]

The 1e-8 floor: a block of zeros (max|x| = 0) gets the tiny positive scale ``1e-8 / n`` instead of a
division by zero, as I-BERT's ``symmetric_linear_quantization_params`` (``clamp(r, min=1e-8)``) does;
its values all quantize to 0.

Known difference from the references: they compute the scale in float32 and quantize as
``rint(fl32(1/scale) * x)`` (reciprocal, then multiply); this module divides in float64. The two
can differ by one step where ``x / scale`` lies within float32 rounding of a half-integer, so a
frontend that must reproduce a checkpoint's integer weights bit for bit should take them from the
checkpoint, not from here.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import DtypeError, RangeError, ShapeError, format_index
from ..inttypes import INT64_MAX, IntType

_WHERE = "quantize_symmetric"
CLAMP_MODES = ("ibert", "narrow", "full")
SCALE_FLOOR = 1e-8


def quantize_symmetric(x, bits: int, axis=None, group_size=None, clamp: str = "ibert"):
    """Quantize float ``x`` to ``bits``-bit signed integers with symmetric scales; return ``(q, scale)``.

    Granularity:
      ``axis=None``                   per tensor: one scale, ``scale.shape == ()``.
      ``axis=a``                      per channel: one scale per index along axis ``a`` (max|x| over
                                      every other axis); ``scale.shape`` is ``x.shape`` with 1 on
                                      every axis except ``a`` (``(C, 1)`` for a ``(C, K)`` weight, axis 0).
      ``axis=a, group_size=g``        per group: one scale per block of ``g`` consecutive indices along
                                      ``a`` (max|x| over the block and every other axis); ZeroQuant's
                                      row groups are ``axis=0``. ``x.shape[a] % g == 0`` is required.
                                      ``scale`` has the per-channel shape, each group's scale repeated on
                                      its ``g`` indices (the distinct ones are ``take(range(0, L, g), a)``).
    So ``q * scale`` always broadcasts to ``x.shape`` and dequantizes.

    ``bits`` in 2..32; ``q`` is stored in int8 (bits <= 8), int16 (<= 16) or int32 (<= 32); ``scale``
    is float64. ``clamp`` is ``"ibert"`` | ``"narrow"`` | ``"full"`` (module docstring).
    """
    bits = _checks.require_int(_WHERE, "bits", bits, 2, 32)
    _checks.require_choice(_WHERE, "clamp", clamp, CLAMP_MODES)
    x = _finite_float_array(x)
    n = (1 << (bits - 1)) - 1
    lo, hi = {"ibert": (-n, n - 1), "narrow": (-n, n), "full": (-n - 1, n)}[clamp]
    if axis is None:
        if group_size is not None:
            raise RangeError(f"{_WHERE}: group_size={group_size!r} needs an axis (groups are blocks of "
                             f"indices along one axis)", argument="group_size", value=group_size)
        magnitude = np.max(np.abs(x), initial=0.0)
    else:
        if x.ndim == 0:
            raise ShapeError(f"{_WHERE}: x is 0-d; axis={axis!r} needs at least one dimension", argument="axis")
        axis = _checks.require_int(_WHERE, "axis", axis, -x.ndim, x.ndim - 1) % x.ndim
        group = 1 if group_size is None else _group_size(group_size, x.shape[axis], axis)
        magnitude = group_max_magnitude(x, axis, group)
    scale = np.maximum(magnitude, SCALE_FLOOR) / n                 # float64, > 0
    rounded = np.rint(x / scale)                                   # round half to even, float64
    q = np.clip(rounded, lo, hi).astype(IntType(bits).storage)     # exact: integral, within [lo, hi]
    return q, np.asarray(scale, dtype=np.float64)


def group_max_magnitude(x: np.ndarray, axis: int, group: int) -> np.ndarray:
    """max|x| over each block of ``group`` consecutive indices along ``axis`` and all other axes.

    Returns float64 of ``x.shape`` with 1 on every axis but ``axis``, each block's value repeated on
    its indices (``group == 1`` is per channel).
    """
    length = x.shape[axis]
    others = int(np.prod(x.shape[:axis] + x.shape[axis + 1:]))              # 1 for a 1-D x
    moved = np.moveaxis(np.abs(x), axis, 0).reshape(length // group, group * others)  # a row per block
    per_block = np.max(moved, axis=1, initial=0.0)
    shape = [1] * x.ndim
    shape[axis] = length
    return np.repeat(per_block, group).reshape(shape)


def _finite_float_array(x) -> np.ndarray:
    """``x`` as a float64 array; refuse non-float dtypes and name the first NaN/inf."""
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise DtypeError(f"{_WHERE}: x has dtype {array.dtype}; expected a float array", argument="x")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        index = _checks.first_index(bad)
        raise RangeError(f"{_WHERE}: x{format_index(index)} = {array[index]!r} is not finite",
                         argument="x", index=index, value=float(array[index]))
    return array


def _group_size(group_size, length: int, axis: int) -> int:
    group = _checks.require_int(_WHERE, "group_size", group_size, 1, INT64_MAX)
    if length % group:
        raise ShapeError(f"{_WHERE}: x.shape[{axis}] = {length} is not divisible by group_size={group}",
                         argument="group_size", value=group)
    return group
