"""``intref selfcheck``: prove, on this machine, that every kernel equals its scalar spec.

Each line compares the NumPy kernel with the pure-Python spec on exhaustive small domains and on
seeded random draws over the whole legal range, and says how many elements agreed. A BLAS or
NumPy build that broke an exactness assumption would show here. It then measures the kernels'
accuracy against float64 references next to the figures of the I-BERT paper.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from . import kernels, spec
from ._checks import first_index
from .inttypes import INT64_MAX, INT64_MIN
from .quant import prepare_gelu, prepare_layernorm, prepare_softmax
from .spec.rounding import ROUNDING_MODES


def _compare(name: str, got: np.ndarray, expected) -> int:
    expected = np.asarray(expected, dtype=object).reshape(got.shape)
    differ = got.astype(object) != expected
    if differ.any():
        index = first_index(differ)
        raise AssertionError(f"{name}: kernel != spec at {list(index)}: {got[index]} vs {expected[index]}")
    return got.size


def check_requantize(rng) -> str:
    x = np.arange(-(1 << 15), 1 << 15, dtype=np.int64)
    wide = rng.integers(INT64_MIN, INT64_MAX, size=2000, dtype=np.int64, endpoint=True)
    count = 0
    for rounding in ROUNDING_MODES:
        for m, s in ((1 << 30, 31), (1 << 30, 32), (1431655765, 36), (-(1 << 31), 45)):
            got = kernels.requantize(x, m, s, rounding=rounding, bits=8)
            count += _compare("requantize", got, [spec.requantize(v, m, s, rounding=rounding) for v in x.tolist()])
        m, s = int(rng.integers(-(1 << 31), 1 << 31)), int(rng.integers(0, 64))
        got = kernels.requantize(wide, m, s, rounding=rounding, bits=32, overflow="wrap")
        count += _compare("requantize", got, [spec.requantize(v, m, s, rounding=rounding, bits=32, overflow="wrap")
                                              for v in wide.tolist()])
    return f"5 dialects, every int16 input at 4 (m, s) + 2000 random int64 inputs: {count} elements == spec"


def check_isqrt(rng) -> str:
    n = np.concatenate([np.arange(1 << 16), rng.integers(0, INT64_MAX, size=20000, dtype=np.int64, endpoint=True)])
    count = _compare("isqrt", kernels.isqrt(n), [spec.isqrt(v) for v in n.tolist()])
    updates = max(spec.isqrt_with_count(v)[1] for v in (1074528350, 1119303883, 1149413397, 1185493737, 1332907078))
    return f"every n < 2**16 + 20000 random n < 2**63: {count} == spec; the paper's 31-bit hard cases take {updates} updates"


def check_gelu(rng) -> str:
    q = np.arange(-(1 << 15), 1 << 15, dtype=np.int64)
    scale = 4.0 / (1 << 15)
    params = prepare_gelu(scale, input_bits=16)
    count = _compare("i_gelu", kernels.i_gelu(q, params), [spec.i_gelu(v, params) for v in q.tolist()])
    real = q * scale
    approx = kernels.i_gelu(q, params) * params.out_scale
    exact = np.array([v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in real.tolist()])
    err = approx - exact
    return (f"every int16 input: {count} == spec; on [-4, 4]: RMS {np.sqrt(np.mean(err ** 2)):.5f}, "
            f"max {np.max(np.abs(err)):.5f} (I-BERT Table 1: 0.0082 / 0.018)")


def check_softmax(rng) -> str:
    scale = 8.0 / (1 << 15)
    params = prepare_softmax(scale, input_bits=16)
    q = np.arange(-(1 << 15), 1, dtype=np.int64)
    count = _compare("i_exp", kernels.i_exp(q, params), [spec.i_exp(v, params) for v in q.tolist()])
    exp_err = np.max(np.abs(kernels.i_exp(q, params) * params.exp_scale - np.exp(q * scale)))
    rows = rng.integers(-(1 << 15), 1 << 15, size=(200, 64), dtype=np.int64)
    got = kernels.i_softmax(rows, params)
    count += _compare("i_softmax", got, [spec.i_softmax(r, params) for r in rows.tolist()])
    real = np.exp(rows * scale - np.max(rows * scale, axis=-1, keepdims=True))
    sm_err = np.max(np.abs(got * params.out_scale - real / real.sum(axis=-1, keepdims=True)))
    return (f"every non-positive int16 exp input + 200 rows of 64: {count} == spec; i-exp max error "
            f"{exp_err:.2e} (paper 1.9e-3); 8-bit softmax max error {sm_err:.2e} (1/256 + 2e-3 = 5.9e-3)")


def check_layernorm(rng) -> str:
    channels = 64
    params = prepare_layernorm(rng.uniform(0.5, 1.5, channels), rng.uniform(-0.2, 0.2, channels), input_bits=22)
    rows = rng.integers(-(1 << 21), 1 << 21, size=(300, channels), dtype=np.int64)
    rows[:5] = rows[:5, :1]  # constant rows: zero variance, defined as the bias
    count = _compare("i_layernorm", kernels.i_layernorm(rows, params), [spec.i_layernorm(r, params) for r in rows.tolist()])
    return f"300 rows of 64 int22 values (5 constant): {count} == spec"


def check_matmul(rng) -> str:
    count = 0
    a8, b8 = rng.integers(-128, 128, (3, 8, 1100), dtype=np.int8), rng.integers(-128, 128, (3, 1100, 5), dtype=np.int8)
    a32 = rng.integers(-(1 << 30), 1 << 30, (4, 6), dtype=np.int32)  # 2**60 * 6 < 2**63: int64-exact only
    b32 = rng.integers(-(1 << 30), 1 << 30, (6, 3), dtype=np.int32)
    for a, b, paths in ((a8, b8, ("float32", "float64", "int64")), (a32, b32, ("int64",))):
        expected = np.stack([np.array(spec.matmul(x.tolist(), y.tolist()), dtype=object) for x, y in
                             zip(a.reshape(-1, *a.shape[-2:]), np.broadcast_to(b, a.shape[:-2] + b.shape[-2:]).reshape(-1, *b.shape[-2:]))])
        for path in paths:
            count += _compare(f"matmul[{path}]", kernels.matmul(a, b, path=path), expected)
    return f"int8 K=1100 on every path + 31-bit int32 operands on int64: {count} == spec"


CHECKS = [("requantize", check_requantize), ("isqrt", check_isqrt), ("i_gelu", check_gelu),
          ("i_exp/i_softmax", check_softmax), ("i_layernorm", check_layernorm), ("matmul", check_matmul)]


def main(out=sys.stdout, seed: int = 2021) -> int:
    from ._version import __version__
    print(f"intref {__version__} self-check (NumPy {np.__version__}, seed {seed})", file=out)
    rng, failed = np.random.default_rng(seed), 0
    for name, check in CHECKS:
        start = time.perf_counter()
        try:
            line = check(rng)
        except Exception as exc:  # a crash is a failed check too, reported, never hidden
            failed += 1
            line = f"FAILED: {type(exc).__name__}: {exc}"
        print(f"  {name:<16} {line} ({time.perf_counter() - start:.1f} s)", file=out)
    print("all kernels equal their specs" if not failed else f"{failed} check(s) FAILED", file=out)
    return 1 if failed else 0
