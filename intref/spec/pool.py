"""Masked mean pooling (the sentence embedding of sentence-transformers), in integers.

    count = sum(mask[j])                                  (mask[j] in {0, 1})
    total = sum(values[j] * mask[j])                      (exact: Python ints)
    mean  = round_half_even(total / count)  if count > 0,   0 if count == 0

REQUIRE ``mask[j] in {0, 1}`` and ``len(values) == len(mask)``. The result lies between the
smallest and the largest selected value (a rounded mean of integers never leaves them), so it has
the input's type. A row with no real token pools to 0: a defined value instead of 0/0.
In the vectorized kernel ``|values| < 2**32`` and ``len < 2**31`` keep ``total`` inside int64.
"""

from __future__ import annotations

from typing import List

from .rounding import div_round_half_even


def masked_mean(values: List[int], mask: List[int]) -> int:
    """The rounded mean of the ``values`` whose ``mask`` is 1 (ties to even); 0 when none is."""
    if len(values) != len(mask):
        raise ValueError(f"masked_mean: {len(values)} values but {len(mask)} mask entries")
    if any(m not in (0, 1) for m in mask):
        raise ValueError("masked_mean: every mask entry must be 0 or 1")
    count = sum(mask)
    if count == 0:
        return 0
    return div_round_half_even(sum(v * m for v, m in zip(values, mask)), count)
