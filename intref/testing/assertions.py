"""Array and kernel assertions: ``assert_identical``, ``assert_bit_exact``, ``assert_graph_error``
(``intref.testing`` describes them)."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np

from .._checks import first_index
from ..errors import format_index
from ..mismatch import bit_positions, describe_bits, differing_bits, is_exact_tie, to_hex

_SHOWN = 8          # values shown of a row or column in a failure message


def assert_identical(got, expected, *, context: str = "", check_dtype: bool = True) -> None:
    """Raise ``AssertionError`` unless ``got`` equals ``expected`` in dtype, shape and every element."""
    got, expected = np.asarray(got), np.asarray(expected)
    where = f"{context}: " if context else ""
    if check_dtype and got.dtype != expected.dtype:
        raise AssertionError(f"{where}dtype {got.dtype} != expected {expected.dtype}")
    if got.shape != expected.shape:
        raise AssertionError(f"{where}shape {got.shape} != expected {expected.shape}")
    differ = got != expected
    if differ.any():
        index = first_index(differ)
        count = int(differ.sum())
        raise AssertionError(f"{where}{count} of {got.size} elements differ; first at {format_index(index)}: "
                             f"got {got[index]!r}, expected {expected[index]!r}")


def assert_bit_exact(port, kernel, *args, **kwargs) -> None:
    """Raise ``AssertionError`` unless ``port(*args, **kwargs)`` equals ``kernel(*args, **kwargs)``
    bit for bit.

    ``kernel`` is the intref kernel (``intref.kernels.requantize``, ...) or any callable that returns
    the expected integers; it runs first, on the arguments as given, and its exceptions propagate
    (the arguments must satisfy its contract: the strategies of this module always do). ``port`` gets
    copies of the array arguments, so a port that writes into its inputs cannot change the verdict.

    The port may return an ndarray of any integer dtype, a (nested) list of ints, or a scalar. The
    verdict compares values: every element is read as an exact integer (int64, or Python ints for
    uint64 and object arrays) and must equal the kernel's. The shape must match exactly. The dtype may
    differ (an int32 array where intref returns int8, a list of Python ints): a different dtype passes
    only when every value equals intref's, so every value is representable in intref's output type; a
    uint8 read of an int8 result fails at the first negative value (the hint says the bits agree).
    Floats, bools, None and other objects are refused with an AssertionError.
    """
    expected = _integers(kernel(*args, **kwargs), "kernel")
    port_args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    port_kwargs = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    got = _integers(port(*port_args, **port_kwargs), f"port {_name(port)}")
    who = f"assert_bit_exact: port {_name(port)} vs {_name(kernel)}"
    if got.shape != expected.shape:
        raise AssertionError(f"{who}: port returned shape {got.shape} ({got.dtype}), intref returned shape "
                             f"{expected.shape} ({expected.dtype})")
    g, e = _exact(got), _exact(expected)
    differ = np.asarray(g != e, dtype=bool).reshape(got.shape)
    if not differ.any():
        return
    index = first_index(differ)
    got_value, expected_value = int(g[index]), int(e[index])
    count = int(differ.sum())
    lines = [f"{who}: {count} of {got.size} elements differ "
             f"(port dtype {got.dtype}, intref dtype {expected.dtype})",
             f"first difference at index {format_index(index)}:",
             *_value_lines(got_value, expected_value, expected.dtype),
             f"  inputs at {format_index(index)}: {_inputs_at(kernel, index, args, kwargs, expected.shape)}"]
    lines += [f"  hint: {h}" for h in _hints(kernel, index, args, kwargs, got_value, expected_value)]
    raise AssertionError("\n".join(lines))


# ---- reading results ----------------------------------------------------------------------------

def _name(f) -> str:
    """``intref.kernels.requantize`` for an intref function, the plain name for anything else."""
    module = getattr(f, "__module__", "") or ""
    name = getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or type(f).__name__
    for package in ("intref.kernels", "intref.spec"):
        if module.startswith(package + "."):
            return f"{package}.{name}"
    return name


def _integers(value, who: str) -> np.ndarray:
    """``value`` as an integer ndarray, or object array of Python ints; AssertionError otherwise."""
    try:
        array = np.asarray(value)
    except ValueError as error:                          # a ragged nested list
        raise AssertionError(f"assert_bit_exact: {who} returned {type(value).__name__} that is not an array "
                             f"({error})") from None
    if array.dtype.kind in "iu":
        return array
    if array.size == 0 and array.dtype.kind == "f":     # an empty list reads as float64: nothing to compare
        return array.astype(np.int64)
    if array.dtype.kind == "O":
        for index in np.ndindex(*array.shape):
            v = array[index]
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise AssertionError(f"assert_bit_exact: {who} returned {v!r} ({type(v).__name__}) at index "
                                     f"{format_index(index)}; expected integers")
        return array
    raise AssertionError(f"assert_bit_exact: {who} returned dtype {array.dtype}; expected integers (intref "
                         f"compares exact integers: convert only where every value is an exact integer)")


def _exact(array: np.ndarray) -> np.ndarray:
    """Exact integers comparable across dtypes: int64, or an object array of Python ints."""
    if array.dtype.kind in "iu" and array.dtype != np.uint64:
        return array.astype(np.int64)
    flat = [int(v) for v in array.reshape(-1).tolist()]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(array.shape)


def _width(got: int, expected: int, dtype) -> int:
    """The bit width to show both values at: intref's dtype width, widened until both fit
    (as ``int<w>`` or ``uint<w>``)."""
    width = np.dtype(dtype).itemsize * 8 if np.dtype(dtype).kind in "iu" else 8
    while not all(-(1 << (width - 1)) <= v < (1 << width) for v in (got, expected)):
        width *= 2
    return width


def _value_lines(got: int, expected: int, dtype) -> list:
    width = _width(got, expected, dtype)
    xor = differing_bits(got, expected, width)
    return [f"  got      {got} ({to_hex(got, width)})",
            f"  expected {expected} ({to_hex(expected, width)})",
            f"  differing bits: {to_hex(xor, width)} ({describe_bits(bit_positions(xor))}; "
            f"two's complement, {width} bits); difference got - expected = {got - expected}"]


# ---- describing inputs --------------------------------------------------------------------------

def _bound(kernel, args, kwargs) -> dict:
    """The arguments by parameter name (``arg0``... when the signature cannot be read)."""
    try:
        return dict(inspect.signature(kernel).bind(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        return {**{f"arg{i}": a for i, a in enumerate(args)}, **kwargs}


def _short(value, limit: int = 160) -> str:
    if isinstance(value, np.ndarray) and value.ndim == 1:
        shown = ", ".join(str(int(v)) for v in value[:_SHOWN])
        more = f", ... ({value.size} values)" if value.size > _SHOWN else ""
        return f"[{shown}{more}] ({value.dtype})"
    if isinstance(value, np.ndarray):
        return f"<array {value.shape} {value.dtype}>"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):   # params: the integer fields
        fields = (f"{f.name}={getattr(value, f.name)!r}" for f in dataclasses.fields(value)
                  if not f.name.endswith("scale"))
        text = f"{type(value).__name__}({', '.join(fields)})"
        return text if len(text) <= 3 * limit else text[:3 * limit - 3] + "..."
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _inputs_at(kernel, index: tuple, args, kwargs, out_shape: tuple) -> str:
    """The arguments that decide the output at ``index``: the element (elementwise kernels), the
    per-channel entry, the row (softmax, LayerNorm), the row of ``a`` and column of ``b`` (matmul)."""
    named = _bound(kernel, args, kwargs)
    name = getattr(kernel, "__name__", "")
    rows = {"i_softmax": ("q", named.get("axis", -1)), "i_layernorm": ("q", -1)}
    parts = []
    for key, value in named.items():
        if isinstance(value, (list, tuple)) and not isinstance(value, str) and key != "params":
            value = np.asarray(value)
        if not isinstance(value, np.ndarray):
            parts.append(f"{key}={_short(value)}")
        elif name == "matmul" and key in ("a", "b") and value.ndim >= 2:
            batch = tuple(i if n > 1 else 0 for i, n in zip(index[len(index) - value.ndim:-2], value.shape[:-2]))
            at = batch + ((index[-2], slice(None)) if key == "a" else (slice(None), index[-1]))
            parts.append(f"{key}{_slice_text(at)}={_short(value[at])}")
        elif name in rows and key == rows[name][0] and value.ndim:
            axis = rows[name][1] % value.ndim
            at = tuple(slice(None) if d == axis else i for d, i in enumerate(index))
            parts.append(f"{key}{_slice_text(at)}={_short(value[at])}")
        else:
            parts.append(f"{key}={_element(value, index, out_shape)}")
    return ", ".join(parts)


def _slice_text(at: tuple) -> str:
    return "[" + ", ".join(":" if isinstance(i, slice) else str(int(i)) for i in at) + "]"


def _element(value: np.ndarray, index: tuple, out_shape: tuple) -> str:
    """The entry of ``value`` that broadcasts to ``index``: the element, or a per-channel entry."""
    if value.ndim == 0:
        return f"{int(value)} ({value.dtype})"
    if value.ndim == 1 and out_shape and value.shape[0] == out_shape[-1] and value.shape != out_shape:
        return f"{int(value[index[-1]])} (per channel, [{index[-1]}] of {value.size})"
    try:
        return f"{int(np.broadcast_to(value, out_shape)[index])} ({value.dtype})"
    except ValueError:
        return _short(value)


def _hints(kernel, index, args, kwargs, got: int, expected: int) -> list:
    """Likely causes: a rounding tie, saturate vs wrap, a signedness/width reading, off by one."""
    hints = []
    if getattr(kernel, "__name__", "") == "requantize":
        hints += _requantize_hints(_bound(kernel, args, kwargs), index, got, expected)
    for width in (8, 16, 32):
        mask = (1 << width) - 1
        if got & mask == expected & mask and got != expected:
            hints.append(f"got and expected agree in their low {width} bits ({to_hex(got, width)}): a signed vs "
                         f"unsigned reading, or a wrong output width")
            break
    if abs(got - expected) == 1 and not hints:
        hints.append("off by one: compare the rounding (ties, floor vs round, negative values)")
    return hints


def _requantize_hints(named: dict, index: tuple, got: int, expected: int) -> list:
    from ..inttypes import IntType
    from ..spec.rounding import rshift_round

    try:
        x = np.asarray(named["x"])
        channel = index[-1] if index else 0
        m, s = (int(np.asarray(v).reshape(-1)[channel if np.size(v) > 1 else 0])
                for v in (named["multiplier"], named["shift"]))
        product = int(x[index]) * m
        rounding = named.get("rounding", "half_even")
        out_type = IntType(named.get("bits", 8), named.get("signed", True))
    except (KeyError, IndexError, TypeError, ValueError):
        return []
    hints = []
    if abs(product) > 1 << 53:
        hints.append(f"x * multiplier = {product} needs {abs(product).bit_length()} bits: a float64 product "
                     f"(53-bit significand) is no longer exact; form it in integers (intref splits it)")
    if is_exact_tie(product, s):
        hints.append(f"x * multiplier / 2**shift = {product >> s} + 1/2 exactly: a tie, which "
                     f"rounding={rounding!r} sends to {expected}; the port rounded it the other way")
    exact = rshift_round(product, s, rounding)
    if not out_type.contains(exact):
        if got == out_type.wrap(exact):
            hints.append(f"the rounded value {exact} is outside {out_type}: intref saturates "
                         f"(overflow={named.get('overflow', 'saturate')!r}), the port wraps")
        elif got == out_type.saturate(exact):
            hints.append(f"the rounded value {exact} is outside {out_type}: intref wraps, the port saturates")
    return hints


def assert_graph_error(cls, build, node=None):
    """Call ``build()`` and require it to raise exactly ``cls`` (a ``GraphError`` subclass) whose
    ``.node`` and message name ``node`` (when given). Returns the error for further checks.

    For exporter authors: ``assert_graph_error(ShapeMismatchError, lambda: b.build(), "fc1")``.
    """
    try:
        build()
    except cls as exc:
        if type(exc) is not cls:
            raise AssertionError(f"expected exactly {cls.__name__}, got {type(exc).__name__}: {exc}") from exc
        if node is not None and (exc.node != node or repr(node) not in str(exc)):
            raise AssertionError(f"{cls.__name__} should name {node!r}, names {exc.node!r}: {exc}") from exc
        return exc
    raise AssertionError(f"expected {cls.__name__}, nothing was raised")
