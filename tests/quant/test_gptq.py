"""GPTQ rounding (``intref.quant.gptq``): with uncorrelated inputs it is the activation-aware clip's
round-to-nearest exactly; with correlated inputs it lowers the output error; integers stay in the
int4 grid, the result is deterministic, and bad hessians or row scales are refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from intref.errors import ShapeError
from intref.quant import quantize_input_groups, quantize_row_groups
from intref.quant.gptq import gptq_quantize


def dequantized(q, scale, group):
    n, k = q.shape
    return (q.reshape(n, k // group, group) * scale[:, :, None]).reshape(n, k)


def correlated_inputs(seed=0, tokens=2000, k=64):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(k, k)) * 0.3 + np.eye(k)
    return rng.normal(size=(tokens, k)) @ mixing * rng.uniform(0.2, 3.0, k)   # correlated, uneven channels


def test_a_diagonal_hessian_spreads_nothing_it_is_the_activation_weighted_clip():
    rng = np.random.default_rng(1)
    w, a = rng.normal(size=(24, 64)), rng.uniform(0.1, 5.0, 64)
    for group in (16, None):
        q, scale = gptq_quantize(w, np.diag(a), 4, group)
        if group is None:
            q_ref, s_ref = quantize_row_groups(w, 4, 24, clip="act", importance=a)
        else:
            q_ref, s_ref = quantize_input_groups(w, 4, group, clip="act", importance=a)
        assert np.array_equal(q, q_ref) and np.allclose(scale, s_ref, rtol=0, atol=0)


@pytest.mark.parametrize("group", [16, 32, None])
def test_correlated_inputs_the_output_error_falls_below_round_to_nearest(group):
    x = correlated_inputs()
    w = np.random.default_rng(2).normal(size=(32, 64))
    h = x.T @ x / len(x)
    q, scale = gptq_quantize(w, h, 4, group)
    g = group or 64
    q_rtn, s_rtn = quantize_input_groups(w, 4, g, clip="act", importance=np.diag(h))
    error = lambda wq: float(((x @ (w - wq).T) ** 2).mean())       # noqa: E731
    assert error(dequantized(q, scale, g)) < 0.8 * error(dequantized(q_rtn, s_rtn, g))
    assert q.dtype == np.int8 and -7 <= int(q.min()) and int(q.max()) <= 7
    again = gptq_quantize(w.copy(), h.copy(), 4, group)
    assert np.array_equal(again[0], q) and np.array_equal(again[1], scale)


def test_given_row_scales_are_kept_and_the_rows_still_improve():
    x = correlated_inputs(3)
    w = np.random.default_rng(4).normal(size=(16, 64))
    h = x.T @ x / len(x)
    q_rtn, s_rtn = quantize_row_groups(w, 4, 4, clip="act", importance=np.diag(h))   # 4 groups of 4 rows
    q, scale = gptq_quantize(w, h, 4, None, row_scale=s_rtn.reshape(-1))
    assert np.array_equal(scale.reshape(-1), s_rtn.reshape(-1))
    error = lambda wq: float(((x @ (w - wq).T) ** 2).mean())       # noqa: E731
    assert error(q * s_rtn) < error(q_rtn * s_rtn)


def test_bad_hessians_and_row_scales_are_refused():
    w = np.ones((4, 8))
    with pytest.raises(ShapeError, match=r"hessian \(4, 4\)"):
        gptq_quantize(w, np.eye(4), 4)
    with pytest.raises(ShapeError, match="group_size 3"):
        gptq_quantize(w, np.eye(8), 4, 3)
    with pytest.raises(ShapeError, match="hessian"):
        gptq_quantize(w, np.full((8, 8), np.nan), 4)
    with pytest.raises(ShapeError, match="row_scale"):
        gptq_quantize(w, np.eye(8), 4, 4, row_scale=np.ones(4))
    with pytest.raises(ShapeError, match="row_scale"):
        gptq_quantize(w, np.eye(8), 4, None, row_scale=np.zeros(4))
