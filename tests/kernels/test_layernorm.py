"""Integer LayerNorm kernel: bit-identical to the scalar spec (hypothesis over the legal range,
exhaustive small domains), defined edge cases, the derived accuracy bound against float64
LayerNorm (held, and not loose), and every rejection path."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.errors import DtypeError, RangeError, ShapeError
from intref.inttypes import IntType
from intref.kernels.layernorm import i_layernorm
from intref.quant.layernorm import layernorm_error_bound, prepare_layernorm
import intref.spec.layernorm as spec
from intref.spec.layernorm import LayerNormParams
from intref.spec.layernorm_bounds import min_safe_shift
from intref.testing import assert_identical
from intref.testing.strategies_nonlinear import draw_layernorm_row
from intref.testing.twins import assert_equals_spec, spec_layernorm


def params(channels, *, shift=0, bits=8, bias=None):
    bias = (0,) * channels if bias is None else tuple(bias)
    return LayerNormParams(channels=channels, shift=shift, bias_int=bias, input_bits=bits,
                           out_scale=(1.0,) * channels)


# ---------------------------------------------------------------- kernel == spec (hypothesis)

@st.composite
def cases(draw):
    bits = draw(st.integers(2, 63))
    channels = draw(st.integers(1, min(12, 1 << (64 - bits))))    # the row sum must fit int64
    safe = min_safe_shift(channels, bits)
    shift = draw(st.one_of(st.integers(safe, safe + 4), st.integers(safe, 62)))
    bias = draw(st.lists(st.integers(-(1 << 61), 1 << 61), min_size=channels, max_size=channels))
    p = params(channels, shift=shift, bits=bits, bias=bias)
    lead = draw(st.lists(st.integers(0, 3), min_size=0, max_size=3))
    rows = [draw_layernorm_row(draw, p) for _ in range(int(np.prod(lead, dtype=np.int64)))]
    dtype = draw(st.sampled_from([IntType(bits).storage, np.dtype(np.int64)]))
    q = np.array(rows, dtype=np.int64).reshape(tuple(lead) + (channels,)).astype(dtype)
    return p, q


@given(cases())
def test_kernel_equals_spec(case):
    p, q = case
    before = q.copy()
    got = i_layernorm(q, p)
    assert got.dtype == np.int64
    assert_equals_spec(got, spec_layernorm(q, p), context=f"C={p.channels} bits={p.input_bits} shift={p.shift}")
    assert_identical(q, before, context="input not modified")
    lo, hi = p.output_range()
    assert got.size == 0 or (lo <= got.min() and got.max() <= hi)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32])
def test_every_integer_dtype_gives_the_same_int64_result(dtype):
    p = params(5, bits=33, shift=min_safe_shift(5, 33))
    q = np.array([[0, 1, 7, 100, 127], [3, 3, 3, 3, 3]])
    assert_equals_spec(i_layernorm(q.astype(dtype), p), spec_layernorm(q, p))


def test_widest_inputs_stay_exact():
    # int63 with C == 2 and int40 with C == 4096 at the smallest safe shift: sums and variances
    # that a single missed bound would wrap
    for channels, bits in [(2, 63), (4096, 40)]:
        p = params(channels, bits=bits, shift=min_safe_shift(channels, bits))
        lo, hi = p.input_range()
        rows = np.array([[lo, hi] * (channels // 2), [hi, lo] * (channels // 2), [lo] * channels,
                         [hi] + [lo] * (channels - 1), [lo] + [hi] * (channels - 1)], dtype=np.int64)
        assert_equals_spec(i_layernorm(rows, p), spec_layernorm(rows, p), context=f"int{bits} C={channels}")


# ---------------------------------------------------------------- exhaustive small domains

def test_every_int8_row_of_two_channels():
    q = np.array(list(itertools.product(range(-128, 128), repeat=2)), dtype=np.int8)   # 65536 rows
    for shift in (0, 3, 7):
        p = params(2, shift=shift, bits=8, bias=(5, -5))
        assert_equals_spec(i_layernorm(q, p), spec_layernorm(q, p), context=f"shift={shift}")


def test_every_int5_row_of_three_channels():
    q = np.array(list(itertools.product(range(-16, 16), repeat=3)), dtype=np.int8)     # 32768 rows
    for shift in (0, 2):
        p = params(3, shift=shift, bits=5)
        assert_equals_spec(i_layernorm(q, p), spec_layernorm(q, p), context=f"shift={shift}")


def test_every_int16_perturbation_of_a_fixed_row():
    base = np.array([-20000, 31000, -5, 0, 12345, -32768, 32767, 7], dtype=np.int16)
    p = params(8, shift=2, bits=16, bias=range(8))
    for position in (0, 3):
        q = np.repeat(base[None, :], 1 << 16, axis=0)
        q[:, position] = np.arange(-(1 << 15), 1 << 15)
        assert_equals_spec(i_layernorm(q, p), spec_layernorm(q, p), context=f"position {position}")


# ---------------------------------------------------------------- edge cases and shapes

def test_constant_and_shift_killed_rows_return_the_bias():
    p = params(4, shift=3, bits=16, bias=(1, -2, 3, -4))
    q = np.array([[9, 9, 9, 9], [-32768] * 4, [32767] * 4, [2, 0, 0, 0], [5, 5, 5, 6]], dtype=np.int16)
    assert_identical(i_layernorm(q, p), np.tile(np.array([1, -2, 3, -4], dtype=np.int64), (5, 1)))


def test_shapes_one_dimensional_and_empty():
    p = params(3)
    assert_identical(i_layernorm(np.array([1, 2, 3], dtype=np.int8), p), np.array(spec.i_layernorm([1, 2, 3], p)))
    assert_identical(i_layernorm(np.zeros((0, 3), dtype=np.int8), p), np.zeros((0, 3), dtype=np.int64))
    assert_identical(i_layernorm(np.zeros((2, 0, 3), dtype=np.int8), p), np.zeros((2, 0, 3), dtype=np.int64))


# ---------------------------------------------------------------- accuracy against float64

def float_layernorm(q, gamma, beta):
    """float64 LayerNorm of the integers (population variance, eps = 0) and its ``z = (q - mu) / sigma``.

    ``D = C*q - sum(q)`` is exact in int64 here (``C * 2**bits < 2**53``), so ``z = D / sqrt(mean(D**2))``
    carries only float64 rounding (relative error about ``C * 2**-53``), even for near-constant rows.
    """
    d_scaled = q.shape[-1] * q - q.sum(axis=-1, keepdims=True)
    d_scaled = d_scaled.astype(np.float64)
    rms = np.sqrt(np.mean(d_scaled * d_scaled, axis=-1, keepdims=True))
    z = d_scaled / np.where(rms > 0, rms, 1.0)
    return gamma * z + beta, z


def adversarial_rows(rng, channels, bits, count):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    width = rng.uniform(2.0, bits - 1.0, size=(count, 1))                   # log2 of the spread
    rows = np.round(rng.standard_normal((count, channels)) * 2.0 ** width)
    kind = rng.integers(0, 5, size=count)
    base = rng.integers(lo // 2, hi // 2, size=(count, 1)).astype(np.float64)
    rows = np.where((kind == 1)[:, None], base + rng.integers(-3, 4, size=(count, channels)), rows)
    outlier = np.where(rng.random(count) < 0.5, lo, hi).astype(np.float64)
    rows[kind == 2, 0] = outlier[kind == 2]
    rows[kind == 2, 1:] = base[kind == 2]
    ends = np.where(rng.random((count, channels)) < 0.5, lo, hi)
    rows = np.where((kind == 3)[:, None], ends, rows)                       # max range
    return np.clip(rows, lo, hi).astype(np.int64)


@pytest.mark.parametrize("channels,bits,shift", [
    (768, 22, "auto"), (768, 22, 6), (1024, 16, "auto"), (64, 32, "auto"), (64, 32, 12), (8, 8, 0),
    (3, 22, 2), (128, 40, "auto"),
])
def test_error_bound_holds_and_is_not_loose(channels, bits, shift):
    rng = np.random.default_rng(channels * 1000 + bits)
    gamma = rng.choice([-1.0, 1.0], channels) * rng.uniform(0.05, 2.0, channels)   # both signs
    beta = rng.normal(0.0, 2.0, channels)
    p = prepare_layernorm(gamma, beta, input_bits=bits, shift=shift)
    q = adversarial_rows(rng, channels, bits, 3000 if channels <= 128 else 400)
    result = i_layernorm(q, p)
    got = result.astype(np.float64) * np.asarray(p.out_scale)
    want, z = float_layernorm(q, gamma, beta)
    bound = layernorm_error_bound(q, p)
    covered = np.isfinite(bound).all(axis=-1)
    assert covered.mean() > 0.5, "most rows must have T > E, or the test proves little"
    # float64 evaluation slack (both sides are float64, relative error ~ C * 2**-53); it is at most
    # 2**-11 * (|z| + 1 + |beta/gamma|) / sqrt(C) of the bound's smallest term 2*|gamma|*sqrt(C)/2**30
    slack = 2.0 ** -40 * (np.abs(gamma) * (np.abs(z) + 1.0) + np.abs(beta))
    error = np.abs(got - want)[covered]
    assert (error <= bound[covered] + slack[covered]).all(), float(np.max(error / bound[covered]))
    ratio = float(np.max(error / bound[covered]))
    print(f"C={channels} int{bits} shift={p.shift}: max observed/bound = {ratio:.3f} "
          f"over {int(covered.sum())} rows, max error {float(error.max()):.3g}")
    assert ratio > 0.25, "the bound is loose"
    lo, hi = p.output_range()
    assert lo <= result.min() and result.max() <= hi


def test_rows_outside_the_bound_still_stay_in_range():
    p = prepare_layernorm(np.ones(16), np.zeros(16), input_bits=12, shift=4)
    q = np.array([[0] * 16, [1] + [0] * 15, [7] + [0] * 15, [-1] + [0] * 15], dtype=np.int16)
    assert np.isinf(layernorm_error_bound(q, p)).all()                      # T <= E: not covered
    result = i_layernorm(q, p)
    assert_equals_spec(result, spec_layernorm(q, p))
    assert_identical(result[:3], np.zeros((3, 16), dtype=np.int64))        # var 0 after the shift


# ---------------------------------------------------------------- rejection paths

@pytest.mark.parametrize("q", [np.zeros((2, 3), np.float64), np.zeros((2, 3), np.bool_),
                               np.zeros((2, 3), np.uint64), np.zeros((2, 3), object), [[0, 0, 0]], 1.5])
def test_rejects_non_integer_input(q):
    with pytest.raises(DtypeError):
        i_layernorm(q, params(3))


@pytest.mark.parametrize("q", [np.zeros((2, 4), np.int8), np.zeros((3, 1), np.int8), np.int8(0)])
def test_rejects_a_last_axis_that_is_not_channels(q):
    with pytest.raises(ShapeError):
        i_layernorm(q, params(3))


def test_rejects_values_outside_the_input_type_naming_the_first_index():
    q = np.zeros((2, 2, 3), dtype=np.int16)
    q[1, 0, 2] = 128
    q[1, 1, 0] = -129
    with pytest.raises(RangeError) as info:
        i_layernorm(q, params(3, bits=8))
    assert info.value.index == (1, 0, 2) and info.value.value == 128


def test_rejects_params_of_another_kind():
    with pytest.raises(DtypeError):
        i_layernorm(np.zeros((1, 3), np.int8), {"channels": 3})
