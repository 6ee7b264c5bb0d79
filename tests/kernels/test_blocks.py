"""Row blocks (kernels.blocks) give the whole-array result: for each kernel the ops run over
blocks, on shapes that split into several blocks (and a ragged last one), with a per-channel
second operand passed whole; an error inside a later block names the index in the whole array."""

import numpy as np
import pytest

from intref.errors import RangeError
from intref.inttypes import IntType
from intref.kernels import i_gelu, i_layernorm
from intref.kernels.blocks import broadcast_on_last_axis_only, map_row_blocks, rows_per_block
from intref.kernels.requant_addshift import add_requantized_addshift, requantize_addshift
from intref.quant import prepare_gelu, prepare_layernorm

SMALL = 8 * 16 * 3            # three rows of 16 int64 values: 37 rows make 13 blocks, the last one short


def test_rows_per_block():
    assert rows_per_block(16, SMALL) == 3 and rows_per_block(10**9, SMALL) == 1
    assert broadcast_on_last_axis_only((16,), (2, 5, 16)) and broadcast_on_last_axis_only((1, 1, 16), (2, 5, 16))
    assert not broadcast_on_last_axis_only((5, 16), (2, 5, 16)) and not broadcast_on_last_axis_only((7,), (2, 16))


def test_blocked_kernels_equal_the_whole_call():
    rng = np.random.default_rng(3)
    x = rng.integers(-(1 << 31), 1 << 31, size=(37, 16), dtype=np.int64).astype(np.int32).reshape(1, 37, 16)
    m = rng.integers(1 << 29, 1 << 31, size=16, dtype=np.int64)
    s = rng.integers(30, 40, size=16, dtype=np.int64)
    out = IntType(8, True)
    kernels = {
        "requantize": (lambda a: requantize_addshift(a, m, s, rounding="half_even", out_type=out,
                                                     overflow="saturate"), (x,), np.int8),
        "residual": (lambda a, b: add_requantized_addshift(a, b, (m, s), (m, s), rounding="half_away", out_type=out,
                                                          overflow="wrap"), (x, x[0, 0].astype(np.int8)), np.int8),
        "gelu": (lambda a: i_gelu(a, prepare_gelu(1e-3, input_bits=32)), (x,), np.int64),
        "layernorm": (lambda a: i_layernorm(a >> 10, prepare_layernorm(np.ones(16), np.full(16, 0.5), input_bits=22,
                                                                       shift=2)), (x,), np.int64),
    }
    for name, (kernel, arrays, dtype) in kernels.items():
        whole = kernel(*arrays)
        blocked = map_row_blocks(kernel, arrays, dtype, block_bytes=SMALL)
        assert blocked.dtype == dtype and blocked.shape == x.shape, name
        np.testing.assert_array_equal(blocked, whole, err_msg=name)


def test_an_error_in_a_later_block_names_the_whole_arrays_index():
    params = prepare_gelu(1e-3, input_bits=16)
    x = np.zeros((37, 16), dtype=np.int32)
    x[30, 5] = 1 << 20                                       # outside int16, in the 11th block
    with pytest.raises(RangeError, match=r"\[30, 5\]|\(30, 5\)"):
        map_row_blocks(lambda a: i_gelu(a, params), (x,), np.int64, block_bytes=SMALL)
