"""Build-time group quantizers and GroupLinear constants: shapes, the int32 guarantee, and the
integer result against float64 with the error bound written down."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.errors import RangeError, ShapeError
from intref.kernels.groupwise import group_linear
from intref.quant import dyadic, quantize_symmetric
from intref.quant.groupwise import prepare_group_linear, quantize_input_groups, quantize_row_groups


def test_input_groups_are_blocks_of_each_row():
    w = np.arange(16, dtype=np.float64).reshape(2, 8) - 7.5
    q, scale = quantize_input_groups(w, 4, 4)
    assert q.shape == (2, 8) and scale.shape == (2, 2)
    assert np.allclose(scale, np.abs(w).reshape(2, 2, 4).max(axis=2) / 7)
    assert np.abs(q).max() == 7 and q.dtype == np.int8
    assert np.allclose(q * np.repeat(scale, 4, axis=1), w, atol=scale.max() / 2)
    with pytest.raises(ShapeError):
        quantize_input_groups(w, 4, 3)


def test_row_groups_are_zeroquants_reshape():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(96, 16))
    q, scale = quantize_row_groups(w, 8, 48)                     # BERT-base: 48 groups
    assert scale.shape == (96, 1) and len(np.unique(scale)) == 48
    blocks = np.abs(w).reshape(48, -1).max(axis=1) / 127         # DeepSpeed: W.reshape(num_groups, -1)
    assert np.allclose(scale[::2, 0], blocks)
    with pytest.raises(ShapeError):
        quantize_row_groups(w, 8, 5)


def test_row_groups_run_as_linear_and_per_channel_requantize():
    """Output-row groups need no new op: Linear (exact int32 sum) then one multiplier per output row."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(8, 16))
    q, scale = quantize_row_groups(w, 4, 2)
    feed = rng.integers(-128, 128, (2, 16)).astype(np.int8)
    x_scale = 0.05
    real = (feed * x_scale) @ (q * scale).T
    out_scale = np.abs(real).max() / 120
    mults, shifts = dyadic(x_scale * scale[:, 0] / out_scale)
    b = GraphBuilder("rows", symbols={"batch": 2})
    x = b.input("x", "int8", ["batch", 16])
    acc = b.add("Linear", [x, b.tensor("w", q, "int4", layout="int4_packed")], "int32", name="acc")
    b.output(b.add("Requantize", [acc], "int8", name="y", attributes={"multiplier": [int(v) for v in mults],
                                                                      "shift": [int(v) for v in shifts]}))
    graph = b.build()
    y = intref.run(graph, {"x": feed})["y"]
    assert np.abs(y - real / out_scale).max() <= 0.5 + 1e-6                  # one rounding of an exact int32 sum


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1), st.sampled_from([8, 16, 32, 64]), st.sampled_from([4, 8]))
def test_group_linear_against_float64_with_the_bound_written_down(seed, g, bits):
    """y * out_scale vs the exact product of the dequantized operands, per output n:

        |y[n] - sum_j P[n, j] * r[n, j] * 2**f| <= G / 2 + sum_j |P[n, j]| / 2**(shift + 1)

    (one rounding per group, and |m - r * 2**31| <= 1/2 for each multiplier), with r = S_w / C[n].
    """
    rng = np.random.default_rng(seed)
    n, k = 12, 4 * g
    w = rng.normal(size=(n, k)) * rng.uniform(0.1, 3.0, size=(n, k // g)).repeat(g, axis=1)
    q, scale = quantize_input_groups(w, bits, g)
    x_scale, x_max = 0.03, 127
    x = rng.integers(-x_max, x_max + 1, (5, k))
    params = prepare_group_linear(q, scale, x_scale, x_max, g)
    y = group_linear(x.astype(np.int8), q, params.multiplier, params.shift, group_size=g)
    assert np.abs(y).max() <= (1 << 31) - 1                     # the int32 guarantee holds on data too
    partial = np.einsum("mjg,njg->mnj", x.reshape(5, k // g, g), q.reshape(n, k // g, g).astype(np.int64))
    ratio = scale / scale.max(axis=1, keepdims=True)
    exact_units = (partial * ratio * 2.0 ** params.frac_bits).sum(axis=2)
    bound = (k // g) / 2 + (np.abs(partial) / 2.0 ** (params.shift + 1)).sum(axis=2)
    assert (np.abs(y - exact_units) <= bound + 1e-6).all()
    real = (x * x_scale) @ (q * np.repeat(scale, g, axis=1)).T
    assert np.allclose(y * params.out_scale, real, rtol=0, atol=(bound * params.out_scale).max() + 1e-9)


def test_the_fraction_bits_are_the_most_that_keep_int32():
    rng = np.random.default_rng(2)
    q, scale = quantize_input_groups(rng.normal(size=(4, 256)), 4, 64)
    params = prepare_group_linear(q, scale, 0.1, 127, 64, bias=rng.normal(size=4))
    assert params.bias is not None and params.multiplier.max() <= 1 << 31
    worst = (127 * np.abs(q).reshape(4, 4, 64).sum(axis=2) * params.multiplier)
    bound = lambda shift: int(max(((worst + (1 << shift) - 1) >> shift).sum(axis=1) + np.abs(params.bias)))
    assert bound(params.shift) <= (1 << 31) - 1 < bound(params.shift - 1)
    narrow = prepare_group_linear(q, scale, 0.1, 127, 64, acc_bits=24)
    assert narrow.frac_bits < params.frac_bits


def test_partial_sums_that_cannot_be_int32_are_refused():
    q = np.full((1, 256), 7, np.int8)
    with pytest.raises(RangeError, match="partial sum"):
        prepare_group_linear(q, np.ones((1, 1)), 1.0, 1 << 21, 256)


def test_groups_beat_one_scale_per_row_on_rows_with_uneven_magnitudes():
    rng = np.random.default_rng(4)
    w = rng.normal(size=(32, 256)) * rng.uniform(0.05, 2.0, size=(32, 4)).repeat(64, axis=1)
    err_groups = np.abs(np.repeat(quantize_input_groups(w, 4, 64)[1], 64, axis=1) * quantize_input_groups(w, 4, 64)[0]
                        - w).mean()
    q, s = quantize_symmetric(w, 4, axis=0, clamp="narrow")
    assert err_groups < 0.7 * np.abs(q * s - w).mean()


@pytest.mark.parametrize("mantissa_bits", [15, 8])
def test_fewer_mantissa_bits_bound_each_multiplier_and_its_error(mantissa_bits):
    """``mantissa_bits = b``: every multiplier in ``[0, 2**b]`` (15: ``uint16``), within 1/2 of
    ``r * 2**b`` (``r = S_w / C[n]``), the row's largest group exactly ``2**b``, the shift ``b - f``."""
    rng = np.random.default_rng(5)
    q, scale = quantize_input_groups(rng.normal(size=(6, 256)) * rng.uniform(0.1, 2, (6, 1)), 4, 64)
    params = prepare_group_linear(q, scale, 0.1, 127, 64, max_frac_bits=0, mantissa_bits=mantissa_bits)
    ratio = scale / scale.max(axis=1, keepdims=True)
    assert params.multiplier.max() == 1 << mantissa_bits and (params.multiplier.max(axis=1) == 1 << mantissa_bits).all()
    assert (np.abs(params.multiplier - ratio * 2.0 ** mantissa_bits) <= 0.5).all()
    assert (params.frac_bits, params.shift) == (0, mantissa_bits)
    wide = prepare_group_linear(q, scale, 0.1, 127, 64, max_frac_bits=31, mantissa_bits=mantissa_bits)
    assert wide.frac_bits <= mantissa_bits and wide.shift == mantissa_bits - wide.frac_bits
    for bad in (0, 32):
        with pytest.raises(RangeError, match="mantissa_bits"):
            prepare_group_linear(q, scale, 0.1, 127, 64, mantissa_bits=bad)
