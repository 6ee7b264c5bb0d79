"""Build time: float scales to the integer constants of i-GELU (``intref.spec.gelu.GeluParams``).

Floats are allowed here and only here. The derivation is clean float64 (each step one correctly
rounded IEEE operation, in the order written), not the HF float32 emulation: a converter that
must reproduce the reference's float32 constants builds ``GeluParams`` directly.

    S' = S / k                       k = 1.4142 (the reference's sqrt(2))
    b_int = floor(b / S')            b = -1.769
    c_int = floor((1 / a) / S'**2)   a = -0.2888
    S_erf = a * S'**2 * 2**g         negative; g = guard_shift
    shift_int = floor(1 / S_erf)     negative (a true floor: torch >= 1.13 semantics)
    out_scale = S * S_erf / 2        negative

``guard_shift="auto"`` keeps ``AUTO_KEEP_BITS`` = 16 significant bits in the floored polynomial:

    g = max(0, min over channels of bit_length(|c_int|) - 16)      (at most 62)

Why: ``|c_int| ~ 1 / (|a| S'**2)``, so ``|S_erf| ~ 2**g / |c_int| <= 2**-15``: one unit of the
floored polynomial (or of ``shift_int``) moves the output by at most ``|x| * 2**-16`` (<= 6.1e-5 on
[-4, 4]), under 1 % of i-GELU's own approximation error (RMS 8.2e-3). The fixed ``g = 14`` of the
reference assumes a fine (16 to 32-bit) input scale; at an 8-bit scale ``|c_int| < 2**13`` and
``>> 14`` leaves nothing of the polynomial (RMS error ~2.9; ``auto`` gives ``g = 0`` there). At a
32-bit scale ``g = 14`` leaves a 47-bit polynomial whose product with ``q`` overflows int64;
``auto`` keeps it at 17 bits.

Constructing ``GeluParams`` proves, with exact Python ints, that no intermediate leaves int64 for
any ``q`` in ``int<input_bits>``; otherwise ``prepare_gelu`` raises ``RangeError`` naming the channel.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from .._params import require_bits
from ..errors import DtypeError, RangeError, ShapeError
from ..spec.gelu import GeluParams

AUTO_KEEP_BITS = 16
_WHERE = "prepare_gelu"


def prepare_gelu(scale, *, input_bits: int = 32, guard_shift=14, k: float = 1.4142, a: float = -0.2888,
                 b: float = -1.769) -> GeluParams:
    """``GeluParams`` for input scale ``scale`` (a positive float, or a 1-D array: one per channel
    of the last axis); see the module docstring for the derivation and the ``"auto"`` guard rule.

    Raises ``DtypeError``/``ShapeError``/``RangeError`` for a non-real, non-1-D, empty, non-positive
    or non-finite scale (naming the index), for bad coefficients (``k > 0``, ``a < 0``, ``b < 0``,
    finite), for a guard other than ``"auto"`` or 0..62, and when a constant is not finite or an
    intermediate of the kernel could leave int64 (naming the channel).
    """
    input_bits = require_bits(_WHERE, "input_bits", input_bits, 2, 63)
    scales = _scale_array(scale)
    k = _coefficient("k", k, positive=True)
    a = _coefficient("a", a, positive=False)
    b = _coefficient("b", b, positive=False)

    with np.errstate(all="ignore"):   # an overflow or underflow is caught by the finiteness checks
        s_prime = scales / k
        s_prime_sq = s_prime ** 2
        b_int = _floor_ints("b_int = floor(b / S')", b / s_prime, scales)
        c_int = _floor_ints("c_int = floor((1/a) / S'**2)", (1.0 / a) / s_prime_sq, scales)
        guard = _guard_shift(guard_shift, c_int)
        s_erf = a * s_prime_sq * 2.0 ** guard
        _require_finite("S_erf = a * S'**2 * 2**guard_shift", s_erf, scales, nonzero=True)
        shift_int = _floor_ints("shift_int = floor(1 / S_erf)", 1.0 / s_erf, scales)
        out_scale = scales * s_erf / 2.0
        _require_finite("out_scale = S * S_erf / 2", out_scale, scales, nonzero=True)

    if scales.ndim == 0:
        fields = (b_int[0], c_int[0], shift_int[0], float(out_scale))
    else:
        fields = (tuple(b_int), tuple(c_int), tuple(shift_int), tuple(float(v) for v in out_scale))
    try:
        return GeluParams(*fields[:3], guard_shift=guard, input_bits=input_bits, out_scale=fields[3])
    except RangeError as error:
        raise RangeError(f"{_WHERE}: {error}", argument=error.argument, index=error.index,
                         value=error.value) from error


def _scale_array(scale) -> np.ndarray:
    """``scale`` as a float64 array of shape ``()`` or ``(C,)``, every element positive and finite."""
    if isinstance(scale, (bool, np.bool_)):
        raise DtypeError(f"{_WHERE}: scale must be a positive real number, got a bool", argument="scale")
    array = np.asarray(scale)
    if array.dtype.kind not in "fiu":
        raise DtypeError(f"{_WHERE}: scale has dtype {array.dtype}; expected real numbers", argument="scale")
    if array.ndim > 1 or (array.ndim == 1 and array.size == 0):
        raise ShapeError(f"{_WHERE}: scale has shape {array.shape}; expected a scalar or a non-empty 1-D "
                         f"array (one per channel)", argument="scale")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array) | ~(array > 0)
    if bad.any():
        index = _checks.first_index(bad) if array.ndim else None
        value = float(array[index] if index else array)
        where = f"scale[{index[0]}]" if index else "scale"
        raise RangeError(f"{_WHERE}: {where} = {value!r} is not a positive finite number",
                         argument="scale", index=index, value=value)
    return array


def _coefficient(name: str, value, *, positive: bool) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DtypeError(f"{_WHERE}: {name} must be a real number, got {value!r}", argument=name, value=value)
    value = float(value)
    if not np.isfinite(value) or (value > 0) != positive or value == 0:
        raise RangeError(f"{_WHERE}: {name} = {value!r} must be finite and {'> 0' if positive else '< 0'}",
                         argument=name, value=value)
    return value


def _guard_shift(guard_shift, c_int: list) -> int:
    """An explicit guard (0..62) or the ``"auto"`` rule of the module docstring."""
    if isinstance(guard_shift, str):
        if guard_shift != "auto":
            raise RangeError(f"{_WHERE}: guard_shift={guard_shift!r} is neither 'auto' nor an int 0..62",
                             argument="guard_shift", value=guard_shift)
        # capped at 62: a c_int that wide fails the int64 proof anyway, with a clearer message
        return min(62, max(0, min(abs(c).bit_length() for c in c_int) - AUTO_KEEP_BITS))
    return require_bits(_WHERE, "guard_shift", guard_shift, 0, 62)


def _require_finite(what: str, values: np.ndarray, scales: np.ndarray, *, nonzero: bool = False) -> None:
    values = np.atleast_1d(values)
    bad = ~np.isfinite(values) | ((values == 0) if nonzero else False)
    if bad.any():
        (c,) = _checks.first_index(bad)
        channel = f"channel {c}: " if scales.ndim else ""
        raise RangeError(f"{_WHERE}: {channel}{what} = {values[c]!r} for scale {np.atleast_1d(scales)[c]!r}: "
                         f"the scale is too small or too large for float64", argument="scale",
                         index=(c,) if scales.ndim else None, value=float(values[c]))


def _floor_ints(what: str, values: np.ndarray, scales: np.ndarray) -> list:
    """Exact Python ints ``floor(v)`` of finite float64 values (a float's floor is exactly an int)."""
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    _require_finite(what, values, scales)
    return [int(v) for v in np.floor(values)]
