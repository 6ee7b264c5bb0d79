"""Spec of the integer LayerNorm: hand-worked vectors, an independent rational oracle, the proven
bounds (|y*factor|, variance, output range) checked and shown attained, and every rejection path."""

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.errors import DtypeError, RangeError, ShapeError
from intref.inttypes import INT64_MAX
from intref.spec.layernorm import LayerNormParams, i_layernorm, layernorm_steps
from intref.testing.strategies_nonlinear import draw_layernorm_row
from intref.spec.layernorm_bounds import min_safe_shift, normalized_range, variance_bound


def params(channels, *, shift=0, bits=8, bias=None):
    bias = (0,) * channels if bias is None else tuple(bias)
    return LayerNormParams(channels=channels, shift=shift, bias_int=bias, input_bits=bits,
                           out_scale=(1.0,) * channels)


def oracle(row, p):
    """The same meaning written independently: rational arithmetic and ``math.isqrt``."""
    c = len(row)
    mean = round(Fraction(sum(row), c))                       # Fraction rounds half to even
    y = [q - mean for q in row]
    var = sum(math.floor(Fraction(v, 2 ** p.shift)) ** 2 for v in y)
    std = math.isqrt(var) * 2 ** p.shift
    if std == 0:
        return list(p.bias_int)
    factor = math.floor(Fraction(2 ** 31, std))
    return [math.floor(Fraction(v * factor, 2)) + b for v, b in zip(y, p.bias_int)]


# ---------------------------------------------------------------- hand-worked vectors

def test_hand_worked_mean_tie_rounds_to_even():
    # sum 10 / 4 = 2.5 -> 2 (even); y = -1 0 1 2; var 6; isqrt 2; factor 2**30; y * 2**29
    assert i_layernorm([1, 2, 3, 4], params(4)) == [-536870912, 0, 536870912, 1073741824]
    # sum 18 / 4 = 4.5 -> 4 (even): the same y
    assert i_layernorm([3, 4, 5, 6], params(4)) == [-536870912, 0, 536870912, 1073741824]
    # sum 3 / 2 = 1.5 -> 2 (even): y = -1 0; var 1; factor 2**31; -2**30
    assert i_layernorm([1, 2], params(2)) == [-(1 << 30), 0]


def test_hand_worked_shift_and_bias():
    # sum 2 / 3 -> 1; y = -8 -1 8; ysh = y >> 2 = -2 -1 2; var 9; std 3 * 4 = 12;
    # factor = 2**31 // 12 = 178956970; floor(y * factor / 2) = -715827880 -89478485 715827880
    steps = layernorm_steps([-7, 0, 9], params(3, shift=2, bias=(10, -20, 0)))
    assert steps.mean == 1 and steps.y == (-8, -1, 8) and steps.ysh == (-2, -1, 2)
    assert (steps.var, steps.std, steps.factor) == (9, 12, 178956970)
    assert steps.norm == (-715827880, -89478485, 715827880)
    assert steps.result == (-715827870, -89478505, 715827880)


def test_zero_variance_rows_give_the_bias():
    assert i_layernorm([5, 5, 5], params(3, bias=(1, 2, 3))) == [1, 2, 3]
    assert i_layernorm([-128] * 4, params(4, bias=(7, 0, -7, 9))) == [7, 0, -7, 9]
    # var == 0 only after the shift: y = 1 0 0 0, (1 >> 1) == 0
    steps = layernorm_steps([1, 0, 0, 0], params(4, shift=1, bias=(4, 3, 2, 1)))
    assert (steps.var, steps.std, steps.factor) == (0, 0, 0)
    assert steps.result == (4, 3, 2, 1)
    # ...but a negative y floors to -1 and keeps a variance: y = -1 0 0 0 (mean 0.25 -> 0)
    assert layernorm_steps([-1, 0, 0, 0], params(4, shift=1)).var == 1
    assert i_layernorm([0], params(1, bias=(-5,))) == [-5]                      # C == 1


def test_std_is_the_exact_floor_sqrt_next_to_a_perfect_square():
    # y = (a, -a) with a = 13860: var = 2 * a**2 = 19601**2 - 1 (a Pell pair). The exact floor
    # sqrt is 19600; float32 sqrt (the reference's torch.sqrt) rounds up to 19601.0.
    steps = layernorm_steps([13860, -13860], params(2, bits=16))
    assert steps.var == 19601 ** 2 - 1 and steps.std == 19600
    assert steps.factor == (1 << 31) // 19600 and steps.norm == ((13860 * steps.factor) >> 1,
                                                                  (-13860 * steps.factor) >> 1)


# ---------------------------------------------------------------- oracle and proven bounds

@st.composite
def cases(draw):
    bits = draw(st.integers(2, 40))
    channels = draw(st.integers(1, 12))
    shift = min_safe_shift(channels, bits) + draw(st.integers(0, 6))
    bias = draw(st.lists(st.integers(-(1 << 40), 1 << 40), min_size=channels, max_size=channels))
    p = params(channels, shift=shift, bits=bits, bias=bias)
    row = draw_layernorm_row(draw, p)
    return p, row


@given(cases())
def test_spec_equals_the_rational_oracle_and_keeps_its_bounds(case):
    p, row = case
    steps = layernorm_steps(row, p)
    assert list(steps.result) == oracle(row, p)
    assert steps.var <= variance_bound(p.channels, p.input_bits, p.shift) <= INT64_MAX
    lo, hi = p.output_range()
    assert all(lo <= r <= hi for r in steps.result)
    if steps.var >= 1:
        root = math.isqrt(steps.var)
        assert all(abs(v) <= root for v in steps.ysh)
        assert all(-steps.std <= v < 2 * steps.std for v in steps.y)            # |y| < 2 std
        top = (1 << 32) - ((1 << 31) >> p.shift)
        assert all(-(1 << 31) <= v * steps.factor <= top < (1 << 32) for v in steps.y)


@pytest.mark.parametrize("channels,bits", [(2, 4), (3, 4), (4, 3)])
def test_bounds_are_sound_and_tight_on_every_small_row(channels, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    for shift in range(bits + 2):
        p = params(channels, shift=shift, bits=bits)
        norms, largest_var = [], 0
        for row in itertools.product(range(lo, hi + 1), repeat=channels):
            steps = layernorm_steps(row, p)
            norms.extend(steps.norm)
            largest_var = max(largest_var, steps.var)
        n_lo, n_hi = normalized_range(channels, bits, shift)
        assert n_lo <= min(norms) and max(norms) <= n_hi, (shift, min(norms), max(norms))
        bound = variance_bound(channels, bits, shift)
        assert largest_var <= bound <= 8 * largest_var                  # sound, not absurd
        if shift == 0:
            assert 2 * bound <= 9 * largest_var                         # <= 4.5x: C = 3 is the worst


@pytest.mark.parametrize("shift,bits", [(0, 8), (1, 8), (2, 8), (3, 8), (5, 12), (2, 4)])
def test_output_range_ends_are_attained(shift, bits):
    channels = (1 << (shift + 2)) - 1                           # the attainment condition
    bias = [0] * channels
    bias[0], bias[1] = -3, 5
    p = params(channels, shift=shift, bits=bits, bias=bias)
    lo, hi = p.output_range()
    assert (lo, hi) == (-(1 << 30) - 3, (1 << 31) - ((1 << 30) >> shift) + 5)
    low_row = [0] * channels
    low_row[0] = -(1 << shift)
    high_row = [0] * channels
    high_row[1] = (1 << (shift + 1)) - 1
    assert i_layernorm(low_row, p)[0] == lo
    assert i_layernorm(high_row, p)[1] == hi


def test_normalized_range_cases():
    assert normalized_range(1, 22, 0) == (0, 0)                 # a single channel is always 0
    assert normalized_range(768, 22, 0) == (-(1 << 30), 1 << 30)  # shift 0: |y| <= std
    assert normalized_range(768, 22, 40) == (0, 0)              # factor is always 0
    assert normalized_range(768, 2, 4) == (-3 << 26, 3 << 26)   # |y| <= R = 3 caps it


# ---------------------------------------------------------------- guard shift arithmetic

def test_variance_bound_and_min_safe_shift_values():
    assert variance_bound(768, 22, 0) == 768 * (2 ** 22 - 1) ** 2
    assert variance_bound(768, 32, 6) == 768 * (2 ** 26) ** 2     # ceil((2**32 - 1) / 64)
    assert variance_bound(5, 8, 20) == 5                          # every |ysh| <= 1
    assert min_safe_shift(768, 22) == 0
    assert min_safe_shift(768, 32) == 6
    for channels, bits in [(1, 63), (2, 62), (768, 40), (4096, 31), (1 << 24, 39)]:
        s = min_safe_shift(channels, bits)
        assert variance_bound(channels, bits, s) <= INT64_MAX
        assert s == 0 or variance_bound(channels, bits, s - 1) > INT64_MAX


# ---------------------------------------------------------------- rejection paths

def test_params_reject_an_unsafe_shift():
    with pytest.raises(RangeError, match="smallest safe shift is 6") as info:
        params(768, shift=5, bits=32)
    assert info.value.argument == "shift"
    params(768, shift=6, bits=32)


def test_params_reject_a_row_sum_outside_int64():
    with pytest.raises(RangeError) as info:
        params(3, shift=62, bits=63)
    assert info.value.argument == "input_bits"
    params(2, shift=62, bits=63)


def test_params_reject_a_bias_that_leaves_int64():
    with pytest.raises(RangeError) as info:
        params(3, bits=8, bias=(0, INT64_MAX - (1 << 30) + 1, 0))
    assert info.value.argument == "bias_int" and info.value.index == (1,)
    with pytest.raises(RangeError) as info:
        params(2, bits=8, bias=(-(1 << 63) + (1 << 30) - 1, 0))
    assert info.value.index == (0,)
    params(2, bits=8, bias=(-(1 << 63) + (1 << 30), INT64_MAX - (1 << 30)))


@pytest.mark.parametrize("kwargs,error", [
    ({"channels": 0}, RangeError), ({"shift": 63}, RangeError), ({"shift": -1}, RangeError),
    ({"input_bits": 1}, RangeError), ({"input_bits": 64}, RangeError), ({"shift": 1.0}, DtypeError),
    ({"bias_int": (0, 0)}, ShapeError), ({"out_scale": (1.0,) * 4}, ShapeError),
    ({"bias_int": (0, 0, 1.5)}, DtypeError), ({"out_scale": (1.0, float("nan"), 1.0)}, RangeError),
])
def test_params_reject_malformed_fields(kwargs, error):
    fields = {"channels": 3, "shift": 0, "bias_int": (0, 0, 0), "input_bits": 8, "out_scale": (1.0, 1.0, 1.0)}
    fields.update(kwargs)
    with pytest.raises(error):
        LayerNormParams(**fields)


def test_spec_rejects_a_row_of_the_wrong_length():
    with pytest.raises(ShapeError):
        i_layernorm([1, 2], params(3))


def test_spec_rejects_out_of_range_values_naming_the_index():
    with pytest.raises(RangeError) as info:
        i_layernorm([0, 127, 128], params(3))
    assert info.value.index == (2,) and info.value.value == 128
    with pytest.raises(RangeError) as info:
        i_layernorm([-129, 0, 0], params(3))
    assert info.value.index == (0,)


def test_spec_rejects_non_integers_naming_the_index():
    with pytest.raises(DtypeError) as info:
        i_layernorm([0, 1.0, 2], params(3))
    assert info.value.index == (1,)
    with pytest.raises(DtypeError):
        i_layernorm([0, True, 2], params(3))
    with pytest.raises(DtypeError):
        i_layernorm([0, 1, 2], "not params")
