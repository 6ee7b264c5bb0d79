"""bundle.int4 (re-exported by intref.quant): exhaustive round trips, the documented nibble order, odd lengths, multi-dim arrays and
every refusal."""

import itertools

import numpy as np
import pytest

from intref.errors import DtypeError, RangeError, ShapeError
from intref.bundle.int4 import pack_int4, unpack_int4
from intref.testing import assert_identical

INT4 = range(-8, 8)


def byte_of(low: int, high: int) -> int:
    """The documented layout, in Python ints: low nibble = element 2i, high nibble = element 2i+1."""
    return (low & 0xF) | ((high & 0xF) << 4)


def test_every_pair_packs_to_the_documented_byte_and_back():
    pairs = np.array(list(itertools.product(INT4, INT4)), dtype=np.int8)        # (256, 2): every pair
    packed = pack_int4(pairs)
    expected = np.array([[byte_of(lo, hi)] for lo, hi in pairs.tolist()], dtype=np.uint8)
    assert_identical(packed, expected)
    assert_identical(unpack_int4(packed), pairs)


def test_every_byte_unpacks_and_repacks_to_itself():
    every_byte = np.arange(256, dtype=np.uint8).reshape(-1, 1)
    values = unpack_int4(every_byte)
    signed = [[(v & 0xF) - 16 * ((v >> 3) & 1), (v >> 4) - 16 * (v >> 7)] for v in range(256)]
    assert_identical(values, np.array(signed, dtype=np.int8))
    assert_identical(pack_int4(values), every_byte)


@pytest.mark.parametrize("values, byte_values", [([-1, 2], [0x2F]), ([3, -8], [0x83]), ([5], [0x05]),
                                                 ([-8, 7, -1], [0x7 << 4 | 0x8, 0x0F]), ([0, 0], [0x00])])
def test_documented_example_bytes(values, byte_values):
    packed = pack_int4(np.array(values, dtype=np.int8))
    assert_identical(packed, np.array(byte_values, dtype=np.uint8))
    assert_identical(unpack_int4(packed, len(values)), np.array(values, dtype=np.int8))


@pytest.mark.parametrize("length", [0, 1, 2, 3, 7, 8, 33])
def test_round_trip_at_every_parity(length):
    values = np.resize(np.arange(-8, 8, dtype=np.int8), length)
    packed = pack_int4(values)
    assert packed.shape == ((length + 1) // 2,)
    assert_identical(unpack_int4(packed, length), values)
    if length % 2:
        assert packed[-1] >> 4 == 0                                             # the zero padding nibble


def test_multi_dim_packs_each_row_along_the_last_axis():
    values = np.random.default_rng(6).integers(-8, 8, size=(2, 3, 5)).astype(np.int8)
    packed = pack_int4(values)
    assert packed.shape == (2, 3, 3) and packed.dtype == np.uint8
    for index in np.ndindex(2, 3):
        assert_identical(packed[index], pack_int4(values[index]), context=str(index))
    assert_identical(unpack_int4(packed, 5), values)
    assert_identical(unpack_int4(packed).shape, np.array((2, 3, 6)))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_any_signed_integer_dtype_packs_alike(dtype):
    values = np.arange(-8, 8).astype(dtype).reshape(2, 8)
    assert_identical(pack_int4(values), pack_int4(values.astype(np.int8)))
    assert_identical(pack_int4(np.arange(8, dtype=np.uint16)), pack_int4(np.arange(8, dtype=np.int8)))


def test_inputs_are_not_mutated():
    values = np.array([[-8, 7, 3]], dtype=np.int8)
    before = values.copy()
    packed = pack_int4(values)
    packed_before = packed.copy()
    unpack_int4(packed, 3)
    assert_identical(values, before)
    assert_identical(packed, packed_before)


@pytest.mark.parametrize("bad_value", [8, -9, 127, -128])
def test_value_outside_int4_names_the_index(bad_value):
    values = np.zeros((2, 4), dtype=np.int16)
    values[1, 2] = bad_value
    with pytest.raises(RangeError, match=rf"pack_int4: q\[1, 2\] = {bad_value} is outside \[-8, 7\]") as info:
        pack_int4(values)
    assert info.value.index == (1, 2)


@pytest.mark.parametrize("bad", [np.zeros(2, dtype=np.float32), np.zeros(2, dtype=bool), np.zeros(2, dtype=np.uint64),
                                 [1, 2], 1.5])
def test_pack_refuses_non_integer_input(bad):
    with pytest.raises(DtypeError, match="pack_int4: q"):
        pack_int4(bad)


def test_pack_refuses_a_scalar():
    with pytest.raises(ShapeError, match="0-d"):
        pack_int4(np.int8(3))


@pytest.mark.parametrize("bad", [np.zeros(2, dtype=np.int8), np.zeros(2, dtype=np.uint16), np.zeros(2, dtype=np.float32)])
def test_unpack_refuses_non_uint8(bad):
    with pytest.raises(DtypeError, match="unpack_int4: packed"):
        unpack_int4(bad)


@pytest.mark.parametrize("n", [7, 4, 0, -1])
def test_unpack_refuses_a_length_the_bytes_cannot_hold(n):
    with pytest.raises(RangeError, match=f"n={n} is outside \\[5, 6\\]"):
        unpack_int4(np.zeros(3, dtype=np.uint8), n)


def test_unpack_refuses_bad_n_types_and_scalars():
    with pytest.raises(DtypeError, match="n must be an int"):
        unpack_int4(np.zeros(3, dtype=np.uint8), 5.0)
    with pytest.raises(ShapeError, match="0-d"):
        unpack_int4(np.uint8(3))


def test_unpack_refuses_a_non_zero_padding_nibble_and_names_the_byte():
    packed = np.array([[0x21, 0x03], [0x54, 0x16]], dtype=np.uint8)
    assert_identical(unpack_int4(packed), np.array([[1, 2, 3, 0], [4, 5, 6, 1]], dtype=np.int8))
    with pytest.raises(RangeError, match=r"packed\[1, 1\] = 0x16 has a non-zero high \(padding\) nibble") as info:
        unpack_int4(packed, 3)
    assert info.value.index == (1, 1)


def test_quant_re_exports_the_storage_functions():
    import intref.quant

    assert intref.quant.pack_int4 is pack_int4 and intref.quant.unpack_int4 is unpack_int4
