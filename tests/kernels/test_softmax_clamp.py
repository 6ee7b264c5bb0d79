"""The exponent clamp of i_softmax and masked positions (notebooks/softmax.ipynb's claim).

``exp_clamp = n`` evaluates every ``x - max`` below about ``-n ln 2`` as ``-n ln 2``, so a masked
position (a logit at the input type's minimum) keeps ``2**-n`` of the row maximum's exp code. With
64 equal logits and 64 masked ones, the 8-bit output gives each masked position
``floor(256 * 2**-n / (64 * (1 + 2**-n)))``-ish units: visible for small ``n``, 0 for the reference's 30.
"""

import numpy as np

from intref.kernels import i_softmax
from intref.quant import prepare_softmax


def _half_masked_rows():
    rows = np.zeros((3, 128), dtype=np.int64)
    rows[:, 64:] = -2 ** 15
    rows[1, :64] = np.arange(64) * 7          # some spread among the real positions
    rows[2, :64] = -np.arange(64) * 3
    return rows


def test_small_exp_clamp_leaks_mass_onto_masked_positions():
    out = i_softmax(_half_masked_rows(), prepare_softmax(1e-3, input_bits=16, exp_clamp=1))
    assert np.all(out[:, 64:] == 1), out[:, 64:]
    reference = i_softmax(_half_masked_rows(), prepare_softmax(1e-3, input_bits=16, exp_clamp=30))
    assert not np.any(reference[:, 64:])


def test_small_exp_clamp_takes_mass_from_rows_with_spread():
    """Clamp 2 lifts every real logit more than 2 ln 2 below the maximum: rows 1 and 2 sum lower."""
    small = i_softmax(_half_masked_rows(), prepare_softmax(1e-3, input_bits=16, exp_clamp=2)).astype(np.int64)
    reference = i_softmax(_half_masked_rows(), prepare_softmax(1e-3, input_bits=16, exp_clamp=30)).astype(np.int64)
    assert not np.any(small[:, 64:])
    assert np.all(small[1:].sum(axis=-1) < reference[1:].sum(axis=-1)), (small.sum(-1), reference.sum(-1))


def test_equal_logits_floor_to_three_quarters_of_the_row():
    """64 equal logits: e = 32767 each, factor = floor(2**32 / (64 * 32767)) = 2048, e * factor / 2**24 =
    3.9998: every output floors to 3 and the row sums to 192/256 = 0.75 (the floor's bias)."""
    out = i_softmax(_half_masked_rows()[:1], prepare_softmax(1e-3, input_bits=16, exp_clamp=30))
    assert np.all(out[0, :64] == 3) and not np.any(out[0, 64:])
