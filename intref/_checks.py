"""Argument checks shared by the kernels: each failure names the kernel, the argument and the
first offending multi-index, and raises the matching ``ArgumentError`` subclass.

These run on every kernel call, so each is a single vectorized pass (a dtype test, a min/max, a
mask) and only the failure path does any per-element work.
"""

from __future__ import annotations

import numpy as np

from .errors import DtypeError, RangeError, ShapeError, format_index
from .inttypes import INT64_MAX, INT64_MIN


def multi_index(flat, shape) -> tuple:
    """The row-major multi-index, as Python ints, of flat position ``flat`` in an array of ``shape``."""
    return tuple(int(i) for i in np.unravel_index(int(flat), shape))


def first_index(mask: np.ndarray) -> tuple:
    """Multi-index (row-major order) of the first true element of ``mask``; ``mask`` must hold one."""
    return multi_index(np.flatnonzero(mask)[0], mask.shape)


def int_array(where: str, name: str, x) -> np.ndarray:
    """Return ``x`` as a NumPy array of a signed or unsigned integer dtype that fits int64.

    Accepts integer ndarrays, NumPy integer scalars and Python ints (a Python int becomes a 0-d
    int64 array and must fit int64). Rejects bool, float, object and uint64 arrays: uint64 can hold
    values an int64 kernel cannot represent.
    """
    if isinstance(x, (bool, np.bool_)):
        raise DtypeError(f"{where}: {name} must be an integer array, got a bool", argument=name)
    if isinstance(x, int):
        if not INT64_MIN <= x <= INT64_MAX:
            raise RangeError(f"{where}: {name}={x} does not fit int64", argument=name, value=x)
        return np.asarray(x, dtype=np.int64)
    if isinstance(x, np.integer):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise DtypeError(f"{where}: {name} must be an integer ndarray, got {type(x).__name__}", argument=name)
    if x.dtype.kind not in "iu" or x.dtype == np.uint64:
        raise DtypeError(f"{where}: {name} has dtype {x.dtype}; expected a signed or unsigned integer "
                         f"dtype of at most 64 bits (not uint64)", argument=name)
    return x


def require_dtype(where: str, name: str, x: np.ndarray, allowed) -> None:
    """Require ``x.dtype`` to be one of ``allowed`` (an iterable of dtypes)."""
    allowed = tuple(np.dtype(d) for d in allowed)
    if x.dtype not in allowed:
        names = ", ".join(str(d) for d in allowed)
        raise DtypeError(f"{where}: {name} has dtype {x.dtype}; expected one of {names}", argument=name)


def first_outside(x: np.ndarray, lo: int, hi: int):
    """Multi-index of the first element of ``x`` outside ``[lo, hi]``, or ``None``.

    One min/max pass; the elementwise mask is built only when something is outside. Every range
    check of intref (kernel arguments, feeds, overrides, decoded dumps) goes through here and
    raises its own error class with its own wording.
    """
    if x.size == 0:
        return None
    lo_ok = lo <= INT64_MIN or int(x.min()) >= lo
    hi_ok = hi >= INT64_MAX or int(x.max()) <= hi
    if lo_ok and hi_ok:
        return None
    bad = np.zeros(x.shape, dtype=bool)
    if not lo_ok:
        bad |= x < lo
    if not hi_ok:
        bad |= x > hi
    return first_index(bad)


def require_range(where: str, name: str, x: np.ndarray, lo: int, hi: int, why: str = "") -> None:
    """Require ``lo <= x <= hi`` elementwise; otherwise name the first offending index and value."""
    index = first_outside(x, lo, hi)
    if index is None:
        return
    value = int(x[index])
    reason = f" ({why})" if why else ""
    raise RangeError(f"{where}: {name}{format_index(index)} = {value} is outside [{lo}, {hi}]{reason}",
                     argument=name, index=index, value=value)


def require_choice(where: str, name: str, value, choices) -> None:
    if value not in choices:
        raise RangeError(f"{where}: {name}={value!r} is not one of {', '.join(map(repr, choices))}",
                         argument=name, value=value)


def require_int(where: str, name: str, value, lo: int, hi: int) -> int:
    """Require a Python or NumPy integer scalar in ``[lo, hi]``; return it as a Python int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise DtypeError(f"{where}: {name} must be an int, got {value!r}", argument=name)
    if not lo <= int(value) <= hi:
        raise RangeError(f"{where}: {name}={int(value)} is outside [{lo}, {hi}]", argument=name, value=int(value))
    return int(value)


def channel_param(where: str, name: str, value, channels: int, lo: int, hi: int) -> np.ndarray:
    """A per-tensor (scalar) or per-channel (length ``channels``, the last axis) integer parameter.

    Returns an int64 array of shape ``()`` or ``(channels,)`` whose values lie in ``[lo, hi]``; a
    length-1 array counts as per tensor.
    """
    if isinstance(value, (list, tuple)):
        value = _int_sequence(where, name, value)
    array = int_array(where, name, value).astype(np.int64, copy=False)
    if array.ndim == 1 and array.shape[0] == 1:
        array = array.reshape(())
    if array.ndim > 1 or (array.ndim == 1 and array.shape[0] != channels):
        raise ShapeError(f"{where}: {name} has shape {array.shape}; expected a scalar or ({channels},) "
                         f"to match the last axis of the input", argument=name)
    require_range(where, name, array, lo, hi)
    return array


def _int_sequence(where: str, name: str, values) -> np.ndarray:
    """A list/tuple of Python or NumPy ints as an int64 array (floats and bools refused)."""
    for i, v in enumerate(values):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise DtypeError(f"{where}: {name}[{i}] = {v!r} is not an int", argument=name, index=(i,), value=v)
        if not INT64_MIN <= int(v) <= INT64_MAX:
            raise RangeError(f"{where}: {name}[{i}] = {v} does not fit int64", argument=name, index=(i,), value=int(v))
    return np.array([int(v) for v in values], dtype=np.int64)
