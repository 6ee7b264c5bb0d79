"""Range observers: the log histogram reads percentiles to within one bin, the MSE clip beats
min/max on a heavy tail, and smoothing a per-channel histogram equals observing ``x / f``."""

from __future__ import annotations

import numpy as np
import pytest

from intref.convert.ptq.observers import BINS_PER_OCTAVE, RangeStats, clip_range

BIN = 2.0 ** (1.0 / BINS_PER_OCTAVE)


def observed(values, per_channel=False, batches=3):
    stats = RangeStats(values.shape[-1], per_channel)
    for part in np.array_split(values, batches):
        stats.add(part)
    return stats


def test_minmax_is_the_exact_maximum():
    x = np.random.default_rng(0).normal(size=(5000, 8))
    counts, top = observed(x).histogram()
    assert top == np.abs(x).max() and counts.sum() == x.size
    assert clip_range(counts, top, "minmax") == top


@pytest.mark.parametrize("p", [50.0, 99.0, 99.99])
def test_percentile_within_one_bin(p):
    x = np.random.default_rng(1).standard_t(3, size=(20000, 16))
    counts, top = observed(x).histogram()
    exact = np.percentile(np.abs(x), p)
    got = clip_range(counts, top, "percentile", percentile=p)
    assert exact / BIN <= got <= exact * BIN * BIN


def quantization_error(x, clip, bits=8):
    step = clip / ((1 << (bits - 1)) - 1)
    return float(np.mean((np.clip(np.rint(x / step), -127, 127) * step - x) ** 2))


def test_mse_clip_is_near_the_best_clip_on_the_real_data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40000, 8))
    x[:3, 0] = [30.0, -25.0, 28.0]                         # three outliers stretch min/max's grid
    counts, top = observed(x).histogram()
    clip = clip_range(counts, top, "mse")
    grid = [top * 2.0 ** (-k / 16) for k in range(160)]
    best = min(quantization_error(x, c) for c in grid)
    assert quantization_error(x, clip) <= 1.05 * best
    assert quantization_error(x, clip) < 0.7 * quantization_error(x, top)


def test_mse_keeps_a_uniform_range():
    uniform = np.random.default_rng(4).uniform(-1, 1, size=(20000, 8))
    counts, top = observed(uniform).histogram()
    assert clip_range(counts, top, "mse") > 0.9 * top


def test_smoothing_shifts_each_channel_as_if_x_were_divided():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4000, 6)) * np.array([1, 2, 50, 1, 0.1, 3])
    f = np.array([1.0, 2.0, 50.0, 0.5, 0.1, 3.0])
    smoothed_counts, smoothed_top = observed(x, per_channel=True).histogram(f)
    direct_counts, direct_top = observed(x / f).histogram()
    assert smoothed_top == pytest.approx(direct_top)
    for p in (50.0, 99.0, 99.9):
        a = clip_range(smoothed_counts, smoothed_top, "percentile", percentile=p)
        b = clip_range(direct_counts, direct_top, "percentile", percentile=p)
        assert b / BIN ** 2 <= a <= b * BIN ** 2


def test_per_tensor_stats_refuse_smoothing_and_unknown_observers():
    stats = observed(np.ones((10, 4)))
    with pytest.raises(ValueError, match="per-channel"):
        stats.histogram(np.ones(4))
    with pytest.raises(ValueError, match="observer"):
        clip_range(*stats.histogram(), "entropy")


def test_zeros_and_empty_batches():
    stats = RangeStats(4, True)
    stats.add(np.zeros((0, 4)))
    stats.add(np.zeros((3, 4)))
    counts, top = stats.histogram()
    assert top == 0.0 and counts[0] == 12
    assert clip_range(counts, top, "percentile") == 0.0 and clip_range(counts, top, "mse") == 0.0
