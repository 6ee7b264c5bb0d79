"""The softmax's table path equals ``i_softmax`` bit for bit: every code of the table is the
kernel's own, and a whole softmax read from the table equals the kernel's on rows whose
``max - q`` sits on both sides of the table's end (the clamp at ``exp_input_floor()``), at the type's
extremes, for every rounding dialect, scale, clamp and output width; the plan's size test is
pinned at its boundary."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.kernels.softmax import exp_code_folded, exp_reduce_and_poly, i_softmax
from intref.kernels.softmax_table import (TABLE_MAX_ENTRIES, exp_code_table, exp_table_entries, exp_table_fits,
                                          softmax_rows_from_table)
from intref.quant import prepare_softmax
from intref.spec.softmax import EXP_ROUNDING_MODES, exp_poly, exp_range_reduce


def rows_around_the_clamp(params, rng, length=12, count=6):
    """Rows of int<B> values holding the row max, entries exactly at the table's end, one past and one
    before it, the type's extremes and random values."""
    lo, hi = -(1 << (params.input_bits - 1)), (1 << (params.input_bits - 1)) - 1
    end = -params.exp_input_floor()                      # j = max - q at the table's last entry
    rows = []
    for _ in range(count):
        top = int(rng.integers(lo + end + 2, hi + 1)) if lo + end + 2 <= hi else hi
        picks = [top, top - end, top - end - 1, top - end + 1, lo, top - 1, top - (end // 2)]
        row = picks + [int(v) for v in rng.integers(lo, top + 1, length - len(picks))]
        rows.append([min(max(v, lo), top) for v in row])
    rows.append([lo] * length)                           # one constant row: every j is 0
    rows.append([hi] + [lo] * (length - 1))              # j = 2**B - 1: far past the table's end
    return np.array(rows, dtype=np.int64)


def out_dtype_of(params):
    return np.uint16 if params.output_max > 255 else np.uint8


@given(st.floats(2e-4, 5e-2), st.sampled_from(EXP_ROUNDING_MODES), st.integers(0, 30), st.integers(8, 16),
       st.sampled_from([8, 9]), st.sampled_from([16, 22, 32]), st.integers(0, 2**32 - 1))
def test_table_softmax_equals_the_kernel(scale, rounding, clamp, exp_bits, out_bits, input_bits, seed):
    params = prepare_softmax(scale, exp_clamp=clamp, exp_bits=exp_bits, exp_rounding=rounding, output_bits=8,
                             output_max=255 if out_bits == 8 else 256, input_bits=input_bits)
    if not exp_table_fits(params):
        return
    table = exp_code_table(params)
    q = rows_around_the_clamp(params, np.random.default_rng(seed))
    expected = i_softmax(q, params)
    kept = q.copy()
    got = softmax_rows_from_table(q, table, params, out_dtype_of(params))
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(q, kept)                                   # q is not written by default
    # the op hands unmasked scores over in their storage dtype, read only even with overwrite_q
    stored = q.astype(np.int16 if input_bits <= 16 else np.int32)
    np.testing.assert_array_equal(softmax_rows_from_table(stored, table, params, out_dtype_of(params),
                                                          overwrite_q=True), expected)
    np.testing.assert_array_equal(stored, kept)
    np.testing.assert_array_equal(softmax_rows_from_table(q, table, params, out_dtype_of(params),
                                                          overwrite_q=True), expected)


@pytest.mark.parametrize("rounding", EXP_ROUNDING_MODES)
def test_every_table_entry_is_the_kernels_code(rounding):
    """Each entry's code, through a two-entry row ``[0, -j]`` whose max is 0, against the kernel
    on the same rows: the softmax of that row is a function of ``e(-j)`` (and ``e(0)``)."""
    params = prepare_softmax(1e-3, exp_rounding=rounding, exp_bits=16, input_bits=32)
    table = exp_code_table(params)
    assert table.shape == (exp_table_entries(params),) and table.dtype == np.int64
    assert table.shape[0] == 1 - params.exp_input_floor()
    j = np.arange(table.shape[0] + 3, dtype=np.int64)            # three past the end: the clamp
    q = np.stack([np.zeros_like(j), -j], axis=-1)
    np.testing.assert_array_equal(softmax_rows_from_table(q, table, params, np.uint8), i_softmax(q, params))
    some = list(range(0, 40)) + list(range(table.shape[0] - 40, table.shape[0]))
    spec_codes = []
    for j_value in some:                                          # the scalar spec, entry by entry
        z, r = exp_range_reduce(-j_value, params)
        spec_codes.append(params.exp_code(exp_poly(r, params), z))
    np.testing.assert_array_equal(table[some], spec_codes)


def test_the_table_is_read_only():
    table = exp_code_table(prepare_softmax(1e-3, input_bits=32))
    with pytest.raises(ValueError):
        table[0] = 0


def test_the_plan_takes_the_table_up_to_its_size_limit():
    params = prepare_softmax(1e-3, input_bits=32)
    at_limit = dataclasses.replace(params, x0_int=1 - TABLE_MAX_ENTRIES, exp_clamp=1)
    past_limit = dataclasses.replace(params, x0_int=-TABLE_MAX_ENTRIES, exp_clamp=1)
    assert exp_table_entries(at_limit) == TABLE_MAX_ENTRIES and exp_table_fits(at_limit)
    assert exp_table_entries(past_limit) == TABLE_MAX_ENTRIES + 1 and not exp_table_fits(past_limit)


def table_entry_by_entry(params):
    """The table as the kernel computes every ``x = -j`` on its own (the build before the grid)."""
    z, p = exp_reduce_and_poly(-np.arange(exp_table_entries(params), dtype=np.int64), params)
    return exp_code_folded(z, p, params).astype(np.int64)


@given(st.floats(2e-4, 5e-2), st.sampled_from(EXP_ROUNDING_MODES), st.integers(0, 30), st.integers(2, 32),
       st.sampled_from([4, 8, 16, 22, 32]), st.integers(-80, 80))
def test_grid_build_equals_the_entry_by_entry_table(scale, rounding, clamp, exp_bits, input_bits, shift_delta):
    """The grid (z rows x remainder columns) gives the same codes as the kernel entry by entry: with a
    last row cut short, with fewer entries than one row (short inputs, clamp 0), and with effective
    shifts on both sides of 0 (``exp_shift`` moved below and above ``exp_clamp``)."""
    params = prepare_softmax(scale, exp_clamp=clamp, exp_bits=exp_bits, exp_rounding=rounding, input_bits=input_bits)
    params = dataclasses.replace(params, exp_shift=min(max(params.exp_shift + shift_delta, 0), 255))
    if not exp_table_fits(params):
        return
    np.testing.assert_array_equal(exp_code_table(params), table_entry_by_entry(params))
