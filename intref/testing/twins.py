"""The scalar spec applied to whole arrays: the reference a kernel (or a port) must equal.

Each function calls the ``intref.spec`` twin once per element (or per row, or per matrix) and
returns an object array of Python ints of the kernel's result shape; per-channel parameters are
indexed by the last axis, as the kernels index them. ``assert_equals_spec(got, expected)`` then
demands the same shape and every value equal, whatever ``got``'s integer dtype. Every kernel test
compares against these, so "kernel == spec" means one thing throughout.
"""

from __future__ import annotations

import numpy as np

from .. import spec
from .assertions import assert_identical


def assert_equals_spec(got, expected: np.ndarray, *, context: str = "") -> None:
    """``got`` (any integer array) has ``expected``'s shape and each of its values."""
    assert_identical(np.asarray(got).astype(object), expected, context=context, check_dtype=False)


def _per_channel(value, shape) -> np.ndarray:
    return np.broadcast_to(np.asarray(value), shape[-1:] if shape else ())


def spec_requantize(x, multiplier, shift, **kw) -> np.ndarray:
    x = np.asarray(x)
    m, s = _per_channel(multiplier, x.shape), _per_channel(shift, x.shape)
    out = np.empty(x.shape, dtype=object)
    for i in np.ndindex(*x.shape):
        c = i[-1] if i else ()
        out[i] = spec.requantize(int(x[i]), int(m[c]), int(s[c]), **kw)
    return out


def spec_matmul(a, b) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a, b = np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])
    out = np.zeros(batch + (a.shape[-2], b.shape[-1]), dtype=object)
    for i in np.ndindex(*batch):
        product = spec.matmul(a[i].tolist(), b[i].tolist(), n=b.shape[-1])
        out[i] = np.array(product, dtype=object).reshape(out.shape[-2:])
    return out


def spec_isqrt(n) -> np.ndarray:
    return np.vectorize(lambda v: spec.isqrt(int(v)), otypes=[object])(np.asarray(n))


def spec_gelu(q, params) -> np.ndarray:
    q = np.asarray(q)
    per_channel = [params.channel(c) for c in range(params.channels)] if params.channels else None
    out = np.empty(q.shape, dtype=object)
    for i in np.ndindex(*q.shape):
        out[i] = spec.i_gelu(int(q[i]), per_channel[i[-1]] if per_channel else params)
    return out


def spec_exp(q, params) -> np.ndarray:
    return np.vectorize(lambda v: spec.i_exp(int(v), params), otypes=[object])(np.asarray(q))


def spec_rows(row_function, q, axis: int = -1) -> np.ndarray:
    """``row_function`` (a list of ints -> a list of ints) applied to every row along ``axis``."""
    rows = np.moveaxis(np.asarray(q), axis, -1)
    out = np.empty(rows.shape, dtype=object)
    for i in np.ndindex(*rows.shape[:-1]):
        out[i] = np.array(row_function([int(v) for v in rows[i]]), dtype=object)
    return np.moveaxis(out, -1, axis)


def spec_softmax(q, params, axis: int = -1) -> np.ndarray:
    return spec_rows(lambda row: spec.i_softmax(row, params), q, axis)


def spec_layernorm(q, params) -> np.ndarray:
    return spec_rows(lambda row: spec.i_layernorm(row, params), q)
