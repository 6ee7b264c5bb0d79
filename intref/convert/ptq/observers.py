"""Activation-range observers for post-training calibration (build time: floats allowed).

Every quantization point gets a ``RangeStats``: the exact per-channel maximum of ``|x|``, the per-channel
mean of ``x**2`` (the importance of a weight column for activation-aware clipping), optionally
the Gram matrix ``sum x^T x`` (GPTQ's hessian, ``gram=True``), and a
histogram of ``|x|`` on a logarithmic grid (``BINS_PER_OCTAVE`` bins per power of two from
``2**LOW_EXP`` to ``2**HIGH_EXP``; bin 0 holds everything below, the last bin everything above).
One pass over the calibration sentences fills them; each observer then reads a clipping range off:

- ``minmax``: the largest ``|x|`` seen (I-BERT's QuantAct without the EMA);
- ``percentile``: the ``p``-th percentile of ``|x|`` (upper edge of the bin that reaches it, never
  above the maximum); the grid resolves a range to within ``2**(1/32)``, about 2 %;
- ``mse``: the clip ``c`` that minimizes the expected squared error of ``bits``-bit symmetric
  quantization, ``sum_bins n * e(v, c)`` over bin centres ``v`` with ``e = (v - c)**2`` above ``c``,
  ``v**2`` below half a step (rounded to 0) and ``step**2 / 12`` elsewhere.

Points whose values feed a Linear that absorbs SmoothQuant factors keep their histogram per
channel, so the range of the smoothed activation ``x[..., k] / f[k]`` is read without a second pass:
dividing by ``f[k]`` moves channel ``k``'s histogram by ``log2(f[k])`` octaves.
"""

from __future__ import annotations

import numpy as np

BINS_PER_OCTAVE = 32
LOW_EXP, HIGH_EXP = -24, 24
BINS = (HIGH_EXP - LOW_EXP) * BINS_PER_OCTAVE + 1
OBSERVERS = ("minmax", "percentile", "mse")
DEFAULT_PERCENTILE = 99.99


def _upper_edges() -> np.ndarray:
    """Upper edge of every bin (bin 0: ``2**LOW_EXP``)."""
    return 2.0 ** (LOW_EXP + np.arange(BINS) / BINS_PER_OCTAVE)


def _bin_index(magnitudes: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        position = (np.log2(magnitudes) - LOW_EXP) * BINS_PER_OCTAVE
    return np.clip(np.floor(position) + 1, 0, BINS - 1).astype(np.int64)


class RangeStats:
    """Range statistics of one quantization point over ``[tokens, channels]`` observations."""

    def __init__(self, channels: int, per_channel: bool, gram: bool = False):
        self.channels = channels
        self.per_channel = per_channel
        self.max = np.zeros(channels, np.float64)
        self.sum_squares = np.zeros(channels, np.float64)      # sum of x**2 per channel (importance)
        self.tokens = 0
        self.gram = np.zeros((channels, channels), np.float64) if gram else None   # sum of x^T x (GPTQ)
        self.counts = np.zeros((channels if per_channel else 1, BINS), np.int64)

    def add(self, values: np.ndarray) -> None:
        """Observe ``values`` of shape ``[..., channels]`` (padding already removed)."""
        magnitudes = np.abs(values.reshape(-1, self.channels))
        if magnitudes.size == 0:
            return
        np.maximum(self.max, magnitudes.max(axis=0), out=self.max)
        self.sum_squares += np.square(magnitudes.astype(np.float64)).sum(axis=0)
        self.tokens += magnitudes.shape[0]
        if self.gram is not None:
            rows = values.reshape(-1, self.channels).astype(np.float64)
            self.gram += rows.T @ rows
        index = _bin_index(magnitudes)
        if self.per_channel:
            index = index + np.arange(self.channels) * BINS
        self.counts += np.bincount(index.ravel(), minlength=self.counts.size).reshape(self.counts.shape)

    def mean_square(self, smooth=None) -> np.ndarray:
        """``E[x_k**2]`` per channel, of ``x / smooth`` when given (float64 ``[channels]``)."""
        mean = self.sum_squares / max(self.tokens, 1)
        return mean if smooth is None else mean / np.square(np.asarray(smooth, np.float64))

    def mean_gram(self, smooth=None) -> np.ndarray:
        """``E[x x^T]`` ``[channels, channels]``, of ``x / smooth`` when given (needs ``gram=True``)."""
        if self.gram is None:
            raise ValueError("this point kept no Gram matrix: calibrate with grams=True")
        mean = self.gram / max(self.tokens, 1)
        if smooth is None:
            return mean
        inverse = 1.0 / np.asarray(smooth, np.float64)
        return mean * inverse[:, None] * inverse[None, :]

    def histogram(self, smooth=None):
        """``(counts[BINS], max)`` of the tensor, or of ``x / smooth`` per channel when given."""
        if smooth is None:
            return self.counts.sum(axis=0), float(self.max.max(initial=0.0))
        if not self.per_channel:
            raise ValueError("this point kept no per-channel histogram; it cannot be smoothed")
        smooth = np.asarray(smooth, np.float64)
        moves = np.rint(-np.log2(smooth) * BINS_PER_OCTAVE).astype(np.int64)
        total = np.zeros(BINS, np.int64)
        for counts, move in zip(self.counts, moves):
            target = np.clip(np.arange(BINS) + move, 0, BINS - 1)
            np.add.at(total, target, counts)
        return total, float((self.max / smooth).max(initial=0.0))


def clip_range(counts: np.ndarray, max_abs: float, observer: str, *, bits: int = 8,
               percentile: float = DEFAULT_PERCENTILE) -> float:
    """The clipping range ``r`` (the scale is then ``r / (2**(bits-1) - 1)``) chosen by ``observer``."""
    if observer not in OBSERVERS:
        raise ValueError(f"observer {observer!r} is not one of {OBSERVERS}")
    total = int(counts.sum())
    if observer == "minmax" or total == 0 or max_abs == 0.0:
        return max_abs
    edges = _upper_edges()
    if observer == "percentile":
        at = int(np.searchsorted(np.cumsum(counts), percentile / 100.0 * total))
        return float(min(edges[min(at, BINS - 1)], max_abs))
    centres = np.minimum(edges * 2.0 ** (-0.5 / BINS_PER_OCTAVE), max_abs)
    top = _bin_index(np.array([max_abs]))[0]
    candidates = max_abs * 2.0 ** (-np.arange(0, 8 * BINS_PER_OCTAVE) / BINS_PER_OCTAVE)
    candidates = candidates[candidates >= edges[max(top - 8 * BINS_PER_OCTAVE, 0)]]
    step = candidates[:, None] / ((1 << (bits - 1)) - 1)
    v = centres[None, :]
    error = np.where(v > candidates[:, None], (v - candidates[:, None]) ** 2,
                     np.where(v < step / 2, v * v, step * step / 12.0))
    return float(candidates[int(np.argmin(error @ counts.astype(np.float64)))])
