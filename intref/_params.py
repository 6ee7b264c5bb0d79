"""Validation shared by the frozen parameter objects of the nonlinear kernels.

Each params class lives beside its scalar spec (``intref.spec.gelu.GeluParams``, ...): the spec
defines what its integer constants mean. The conventions they share:

``intref.quant.prepare_*`` builds them from float scales at build time; a converter may also
build them directly from integers it derived itself (the HF I-BERT import does). The kernels and
their scalar specs read only the integer fields. ``out_scale`` / ``exp_scale`` are metadata for
people and tools (the real value of a result is ``result * out_scale``); no computation reads them.

Per-channel constants are tuples of Python ints indexed by the last axis of the kernel input; a
per-tensor constant is a plain int. ``params.channel(c)`` gives the per-tensor params of channel
``c``, which is what the scalar specs consume. Nothing here imports NumPy arrays into the fields:
they are plain Python values, so a params object prints, compares and serialises exactly.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Tuple, Union

from .errors import DtypeError, RangeError, ShapeError

PerChannelInt = Union[int, Tuple[int, ...]]
PerChannelFloat = Union[float, Tuple[float, ...]]


def as_int(owner: str, name: str, value) -> int:
    """A Python int from an int or NumPy integer; bool and float are refused."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise DtypeError(f"{owner}: {name} must be an int, got {value!r}", argument=name, value=value)
    return int(value.__index__())


def as_int_or_ints(owner: str, name: str, value) -> PerChannelInt:
    """An int, or a tuple of ints (from a list, tuple or 1-D integer array)."""
    if hasattr(value, "__index__") and not isinstance(value, bool):
        return int(value.__index__())
    if getattr(value, "ndim", 1) != 1:
        raise ShapeError(f"{owner}: {name} must be an int or a 1-D sequence of ints", argument=name)
    if type(value) in (tuple, list) and set(map(type, value)) <= {int}:
        return tuple(value)      # plain ints (not bool: its type is bool), checked in C, not one by one
    try:
        items = list(value)
    except TypeError:
        raise DtypeError(f"{owner}: {name} must be an int or a sequence of ints, got {value!r}",
                         argument=name, value=value) from None
    return tuple(as_int(owner, f"{name}[{i}]", v) for i, v in enumerate(items))


def as_float_or_floats(owner: str, name: str, value) -> PerChannelFloat:
    """Metadata scale(s): a float, a tuple of finite floats, or ``None`` (unknown: params built
    from integers alone, as a graph node builds them, carry no real scale)."""
    if value is None:
        return None
    if getattr(value, "ndim", None) == 0 or isinstance(value, (int, float)):
        value = float(value)
        if not math.isfinite(value):
            raise RangeError(f"{owner}: {name} = {value} is not finite", argument=name, value=value)
        return value
    return tuple(as_float_or_floats(owner, f"{name}[{i}]", v) for i, v in enumerate(value))


def channel_count(owner: str, params, names) -> Union[int, None]:
    """The common length of the per-channel fields ``names`` (``None`` if all are scalars)."""
    lengths = {len(getattr(params, n)) for n in names if isinstance(getattr(params, n), tuple)}
    if len(lengths) > 1:
        raise ShapeError(f"{owner}: per-channel fields {', '.join(names)} have different lengths "
                         f"{sorted(lengths)}", argument=names[0])
    return lengths.pop() if lengths else None


def pick_channel(params, c: int, names):
    """``params`` with every per-channel field in ``names`` replaced by its entry ``c``."""
    picked = {n: getattr(params, n)[c] for n in names if isinstance(getattr(params, n), tuple)}
    return replace(params, **picked)


def require_bits(owner: str, name: str, value: int, lo: int, hi: int) -> int:
    value = as_int(owner, name, value)
    if not lo <= value <= hi:
        raise RangeError(f"{owner}: {name} = {value} is outside {lo}..{hi}", argument=name, value=value)
    return value


