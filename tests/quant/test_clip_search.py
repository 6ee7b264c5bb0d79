"""The searched weight clip (``intref.quant.clip_search``): never worse than max-abs on the error it
minimizes, deterministic, integers within the int4 grid, the grid it claims, and every rejection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from intref.errors import RangeError, ShapeError
from intref.quant import quantize_input_groups, quantize_row_groups, quantize_symmetric
from intref.quant.clip_search import CLIP_RATIOS, block_clip_scales, quantize_clipped

FLOATS = st.floats(-4.0, 4.0, allow_nan=False, width=64)


def weighted_error(w, q, scale, a):
    return (a * (w - q * scale) ** 2).sum(axis=1)


@given(arrays(np.float64, (6, 16), elements=FLOATS), arrays(np.float64, (6, 16), elements=st.floats(0.0, 100.0)),
       st.sampled_from([3, 4, 8]))
def test_the_chosen_clip_never_increases_the_weighted_error_over_max_abs(w, a, bits):
    q, scale = quantize_clipped(w, bits, a)
    q_max, s_max = quantize_symmetric(w, bits, axis=0, clamp="narrow")
    assert np.all(weighted_error(w, q, scale, a) <= weighted_error(w, q_max, s_max, a))
    assert q.dtype == np.int8 and int(np.abs(q).max(initial=0)) <= (1 << (bits - 1)) - 1


def test_int4_weights_stay_within_minus_7_and_7_and_use_the_clip_grid():
    w = np.random.default_rng(0).standard_t(3, (64, 128))      # heavy tails: clipping pays
    q, scale = quantize_input_groups(w, 4, 32, clip="mse")
    assert q.dtype == np.int8 and -7 <= int(q.min()) and int(q.max()) <= 7
    top = np.abs(w).reshape(64, 4, 32).max(axis=2) / 7
    ratios = scale / top
    assert np.all(np.isin(np.round(ratios, 9), np.round(CLIP_RATIOS, 9)))
    assert (ratios < 1).mean() > 0.5                              # most heavy-tailed groups clip
    deq = (q.reshape(64, 4, 32) * scale[:, :, None]).reshape(64, 128)
    q0, s0 = quantize_input_groups(w, 4, 32)
    plain = (q0.reshape(64, 4, 32) * s0[:, :, None]).reshape(64, 128)
    assert ((w - deq) ** 2).sum() < 0.95 * ((w - plain) ** 2).sum()


def test_a_hand_worked_block_clips_its_outlier():
    # [7, 1.5 x 31] at 4 bits. Max-abs: step 1, each 1.5 rounds (half to even) to 2: error 31 * 0.25 = 7.75.
    # Ratio 0.82: step 0.82, 1.5 -> 2 steps = 1.64 (31 * 0.14**2 = 0.6076), 7 -> clamped 7 steps = 5.74
    # (1.26**2 = 1.5876): 2.1952, the least on the grid.
    w = np.array([[7.0] + [1.5] * 31])
    scale = block_clip_scales(w, 4)
    q = np.clip(np.rint(w / scale[:, None]), -7, 7)
    assert scale[0] == pytest.approx(0.82) and weighted_error(w, q, scale[:, None], 1.0)[0] == pytest.approx(2.1952)
    # the outlier's channel weighted 100x: clipping it costs more than the 31 others gain, ratio 0.99
    a = np.ones_like(w)
    a[0, 0] = 100.0
    assert block_clip_scales(w, 4, a)[0] == pytest.approx(0.99)


def test_the_scales_are_deterministic_and_act_with_equal_importance_is_mse():
    w = np.random.default_rng(1).normal(size=(48, 64))
    first = quantize_input_groups(w, 4, 16, clip="act", importance=np.full(64, 3.0))
    again = quantize_input_groups(w.copy(), 4, 16, clip="act", importance=np.full(64, 3.0))
    mse = quantize_input_groups(w, 4, 16, clip="mse")
    for x, y, z in zip(first, again, mse):
        assert np.array_equal(x, y) and np.array_equal(x, z)


def test_importance_moves_the_clip_to_protect_the_busy_channels():
    w = np.random.default_rng(2).standard_t(3, (32, 64))
    a = np.ones(64)
    a[::8] = 50.0                                                 # a few channels carry most of the signal
    q_act, s_act = quantize_input_groups(w, 4, 64, clip="act", importance=a)
    q_mse, s_mse = quantize_input_groups(w, 4, 64, clip="mse")
    error = lambda q, s: (a * (w - q * s) ** 2).sum()              # noqa: E731
    assert error(q_act, s_act) < error(q_mse, s_mse)


def test_row_groups_and_per_channel_search_and_max_abs_is_the_old_path():
    w = np.random.default_rng(3).normal(size=(12, 10))
    q, scale = quantize_row_groups(w, 4, 3, clip="mse")
    assert scale.shape == (12, 1) and np.all(scale.reshape(3, 4) == scale.reshape(3, 4)[:, :1])
    q_max, s_max = quantize_row_groups(w, 4, 3)
    assert np.array_equal(q_max, quantize_symmetric(w, 4, axis=0, group_size=4, clamp="narrow")[0])
    assert ((w - q * scale) ** 2).sum() <= ((w - q_max * s_max) ** 2).sum()
    q_in, s_in = quantize_input_groups(w, 4, 5)
    q_ref, s_ref = quantize_symmetric(w.reshape(24, 5), 4, axis=0, clamp="narrow")
    assert np.array_equal(q_in, q_ref.reshape(12, 10)) and np.array_equal(s_in, s_ref.reshape(12, 2))


def test_rejections_name_the_argument():
    w = np.ones((4, 8))
    with pytest.raises(ValueError, match="clip 'absmax'"):
        quantize_input_groups(w, 4, 4, clip="absmax")
    with pytest.raises(ValueError, match="importance"):
        quantize_input_groups(w, 4, 4, clip="act")
    with pytest.raises(ValueError, match="clamp 'ibert'"):
        quantize_input_groups(w, 4, 4, clamp="ibert", clip="mse")
    with pytest.raises(ShapeError, match=r"importance \(7,\)"):
        quantize_input_groups(w, 4, 4, clip="act", importance=np.ones(7))
    with pytest.raises(RangeError, match="importance"):
        block_clip_scales(w, 4, -np.ones((4, 8)))
    with pytest.raises(RangeError, match="bits"):
        quantize_clipped(w, 12)
