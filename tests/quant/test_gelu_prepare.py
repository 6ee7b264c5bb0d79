"""quant.gelu.prepare_gelu: the float64 derivation, the automatic guard, the int64 proof and
every refusal."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.errors import DtypeError, RangeError, ShapeError
from intref.quant.gelu import AUTO_KEEP_BITS, prepare_gelu
from intref.spec.gelu import GeluParams, i_gelu


def test_hand_worked_constants_at_s_prime_one():
    # S = 1.4142 so S' = S / 1.4142 = 1.0 exactly.
    # b_int = floor(-1.769) = -2; c_int = floor(1 / -0.2888) = floor(-3.46260...) = -4
    # g = 0: S_erf = -0.2888, shift_int = floor(-3.46260...) = -4, out_scale = 1.4142 * -0.2888 / 2
    p = prepare_gelu(1.4142, input_bits=8, guard_shift=0)
    assert (p.b_int, p.c_int, p.shift_int, p.guard_shift, p.input_bits) == (-2, -4, -4, 0, 8)
    assert p.out_scale == 1.4142 * -0.2888 / 2
    # g = 14: S_erf = -0.2888 * 16384 = -4731.7792, shift_int = floor(-0.000211...) = -1
    p14 = prepare_gelu(1.4142, input_bits=8)
    assert (p14.b_int, p14.c_int, p14.shift_int, p14.guard_shift) == (-2, -4, -1, 14)


def test_hand_worked_constants_at_s_prime_one_eighth():
    # S = 1.4142 / 8, so S' = 0.125 exactly and S'**2 = 1/64.
    # b_int = floor(-1.769 * 8) = floor(-14.152) = -15; c_int = floor(-3.46260... * 64) = floor(-221.607) = -222
    # g = 0: S_erf = -0.2888 / 64 = -0.0045125, shift_int = floor(-221.607) = -222
    p = prepare_gelu(1.4142 / 8, input_bits=8, guard_shift=0)
    assert (p.b_int, p.c_int, p.shift_int) == (-15, -222, -222)
    # g = 3: S_erf = -0.0361, shift_int = floor(-27.70) = -28
    assert prepare_gelu(1.4142 / 8, input_bits=8, guard_shift=3).shift_int == -28


@given(st.floats(2.0 ** -30, 4.0), st.integers(0, 20))
def test_constants_follow_the_documented_float64_formulas(scale, guard):
    try:
        p = prepare_gelu(scale, input_bits=16, guard_shift=guard)
    except RangeError:
        return
    s_prime = scale / 1.4142
    assert p.b_int == math.floor(-1.769 / s_prime)
    assert p.c_int == math.floor((1 / -0.2888) / s_prime ** 2)
    s_erf = -0.2888 * s_prime ** 2 * 2.0 ** guard
    assert p.shift_int == math.floor(1 / s_erf)
    assert p.out_scale == scale * s_erf / 2
    assert p.b_int < 0 and p.c_int < 0 and p.shift_int < 0 and p.out_scale < 0


def test_per_channel_equals_per_tensor_of_each_channel():
    scales = [4 / 32767, 2e-4, 0.3, 1e-6]
    p = prepare_gelu(np.array(scales), input_bits=16, guard_shift=5)
    assert p.channels == 4
    for c, s in enumerate(scales):
        assert p.channel(c) == prepare_gelu(s, input_bits=16, guard_shift=5)
    assert prepare_gelu([0.5], input_bits=8).channels == 1      # a length-1 list stays per channel


@pytest.mark.parametrize("scale, expected_guard", [
    (4 / 127, 0),          # |c_int| = 6981: 13 bits, nothing to floor
    (4 / 32767, 13),       # |c_int| = 464705548: 29 bits
    (4 / 2 ** 31, 45),     # |c_int| ~ 2**60.8: 61 bits
    (2e-4, 12),            # an HF-like accumulator scale: |c_int| = 173126874: 28 bits
])
def test_auto_guard_keeps_16_bits(scale, expected_guard):
    p = prepare_gelu(scale, input_bits=32, guard_shift="auto")
    assert p.guard_shift == expected_guard
    assert p.guard_shift == max(0, abs(p.c_int).bit_length() - AUTO_KEEP_BITS)
    if p.guard_shift:
        assert (abs(p.c_int) >> p.guard_shift).bit_length() == AUTO_KEEP_BITS


def test_auto_guard_per_channel_uses_the_narrowest_channel():
    p = prepare_gelu(np.array([4 / 32767, 4 / 2 ** 20]), input_bits=24, guard_shift="auto")
    assert p.guard_shift == max(0, min(abs(c).bit_length() for c in p.c_int) - AUTO_KEEP_BITS) == 13


def test_fixed_guard_overflows_int64_at_a_32_bit_scale_and_auto_fits():
    # |c_int| ~ 2**60.8 >> 14 leaves a 47-bit polynomial; times |q| = 2**31 it leaves int64.
    with pytest.raises(RangeError, match=r"q \* \(y \+ shift_int\).*int32"):
        prepare_gelu(4 / 2 ** 31, input_bits=32, guard_shift=14)
    p = prepare_gelu(4 / 2 ** 31, input_bits=32, guard_shift="auto")
    lo, hi = p.output_range(-(1 << 31), (1 << 31) - 1)
    assert -(1 << 50) < lo and hi < (1 << 50)
    assert i_gelu(-(1 << 31), p) == -(1 << 31) * ((-p.c_int >> p.guard_shift) + p.shift_int)


def test_overflow_error_names_the_channel():
    with pytest.raises(RangeError, match="channel 2") as info:
        prepare_gelu(np.array([2e-4, 2e-4, 4 / 2 ** 31, 2e-4]), input_bits=32, guard_shift=14)
    assert info.value.index == (2,)


def test_every_accepted_input_width_runs_in_int64():
    # For a scale, the widest accepted input type is the last before the proof fails; at that
    # width the extremes of q compute exactly (the spec is unbounded Python ints).
    for scale, guard in ((2e-4, 14), (4 / 32767, "auto"), (1e-9, "auto")):
        widest = max(n for n in range(2, 64) if _accepts(scale, n, guard))
        p = prepare_gelu(scale, input_bits=widest, guard_shift=guard)
        lo, hi = p.output_range(-(1 << (widest - 1)), (1 << (widest - 1)) - 1)
        assert -(1 << 63) <= lo and hi < (1 << 63)
        if widest < 63:
            with pytest.raises(RangeError):
                prepare_gelu(scale, input_bits=widest + 1, guard_shift=guard)


def _accepts(scale, n, guard):
    try:
        prepare_gelu(scale, input_bits=n, guard_shift=guard)
        return True
    except RangeError:
        return False


# ---- refusals -----------------------------------------------------------------------------------

@pytest.mark.parametrize("scale, index", [(0.0, None), (-1e-3, None), (math.nan, None), (math.inf, None),
                                          (np.array([0.1, 0.2, -0.3]), (2,)), (np.array([0.1, np.nan]), (1,)),
                                          ([0.1, 0.0], (1,))])
def test_rejects_non_positive_or_non_finite_scale_naming_the_index(scale, index):
    with pytest.raises(RangeError, match="not a positive finite number") as info:
        prepare_gelu(scale)
    assert info.value.index == index


@pytest.mark.parametrize("scale, error", [(np.ones((2, 2)), ShapeError), (np.array([]), ShapeError),
                                          (True, DtypeError), ("0.1", DtypeError), (1 + 1j, DtypeError),
                                          (np.array([0.1], dtype=object), DtypeError)])
def test_rejects_malformed_scale(scale, error):
    with pytest.raises(error):
        prepare_gelu(scale)


@pytest.mark.parametrize("kwargs, error", [
    ({"k": 0.0}, RangeError), ({"k": -1.4142}, RangeError), ({"k": math.inf}, RangeError),
    ({"a": 0.2888}, RangeError), ({"a": 0.0}, RangeError), ({"b": 1.769}, RangeError),
    ({"b": math.nan}, RangeError), ({"k": "1.4"}, DtypeError), ({"a": True}, DtypeError),
    ({"guard_shift": "fixed"}, RangeError), ({"guard_shift": -1}, RangeError),
    ({"guard_shift": 63}, RangeError), ({"guard_shift": 1.5}, DtypeError), ({"guard_shift": True}, DtypeError),
    ({"input_bits": 1}, RangeError), ({"input_bits": 64}, RangeError), ({"input_bits": 8.0}, DtypeError),
])
def test_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        prepare_gelu(0.01, **kwargs)


@pytest.mark.parametrize("scale, what", [(1e-300, "c_int"), (1e300, "S_erf")])
def test_rejects_scales_whose_constants_are_not_finite(scale, what):
    # 1e-300: S'**2 underflows to 0 and (1/a) / S'**2 is -inf; 1e300: S'**2 overflows to inf.
    with pytest.raises(RangeError, match=what) as info:
        prepare_gelu(np.array([0.01, scale]), guard_shift="auto")
    assert info.value.index == (1,)


def test_rejects_scale_whose_constants_leave_int64():
    # S = 1e-12: c_int = floor(-3.4626 / (S/1.4142)**2) ~ -6.9e24 ~ -2**82.5; the auto guard is
    # capped at 62 and the int64 proof names c_int.
    with pytest.raises(RangeError, match=r"c_int reaches") as info:
        prepare_gelu(1e-12, input_bits=8, guard_shift="auto")
    assert info.value.argument == "c_int"
    # S = 4e-9 (|c_int| ~ 2**58.6) fits, but with guard 0, |q| * |y + shift_int| does not at 24 bits.
    prepare_gelu(4e-9, input_bits=8, guard_shift="auto")
    with pytest.raises(RangeError, match=r"q \* \(y \+ shift_int\)"):
        prepare_gelu(4e-9, input_bits=24, guard_shift=0)


def test_params_are_plain_python_values():
    p = prepare_gelu(np.array([0.01, 0.02]), input_bits=8)
    assert all(type(v) is int for v in p.b_int + p.c_int + p.shift_int)
    assert all(type(v) is float for v in p.out_scale)
    assert isinstance(p, GeluParams) and type(prepare_gelu(np.float32(0.01)).b_int) is int
