"""Testing a port against intref: a template to copy into your own test suite.

Two "ports" written from the spec, the way a hardware or GPU team would write a C model: plain
Python ints, their own formulation of the arithmetic. ``assert_bit_exact`` runs each port and the
intref kernel on the same legal inputs (drawn by intref's hypothesis strategies, edges included)
and fails on the first bit that differs. Replace ``my_requantize`` / ``my_softmax`` by calls into
your model (ctypes, a simulator wrapper, a GPU kernel) and keep the tests.

Run:  pytest examples/test_my_port.py
(``deadline=None``: a simulator or a Python model is slow; hypothesis's default 200 ms deadline
would make the run flaky, not stricter.)
"""

import numpy as np
from hypothesis import given, settings

from intref.kernels import i_softmax, requantize
from intref.testing import assert_bit_exact, requantize_cases, softmax_cases


# ---- a requantizer block: round half to even, saturate (an RTL-style contract) ------------------

def my_requantize(x, multiplier, shift, *, rounding, bits, signed, overflow):
    """``clamp(round_half_even(x * multiplier / 2**shift))``, per tensor or per channel (last axis)."""
    assert rounding == "half_even" and overflow == "saturate", "this block implements one mode"
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    x = np.asarray(x)
    channels = x.shape[-1:] if x.ndim else ()
    m, s = np.broadcast_to(multiplier, channels), np.broadcast_to(shift, channels)
    out = np.zeros(x.shape, dtype=np.int64)
    for index in np.ndindex(*x.shape):
        c = index[-1] if index else ()
        product, unit = int(x[index]) * int(m[c]), 1 << int(s[c])
        quotient, remainder = divmod(product, unit)            # floor division: remainder >= 0
        if 2 * remainder > unit or (2 * remainder == unit and quotient % 2 == 1):
            quotient += 1                                      # above half, or a tie on an odd quotient
        out[index] = min(max(quotient, lo), hi)
    return out                                                 # int64: intref returns int8 etc.; values decide


@settings(deadline=None)
@given(requantize_cases(roundings="half_even", overflows="saturate"))
def test_requantize_port(case):
    assert_bit_exact(my_requantize, requantize, **case)


# ---- an integer softmax (I-BERT), every single-rounding dialect of the exp requantization -------

def _round_shift(v, shift, rounding):
    """``v / 2**shift`` rounded: half_even, half_up, half_away or floor."""
    if shift == 0:
        return v
    quotient, remainder = divmod(v, 1 << shift)
    half = 1 << (shift - 1)
    if rounding == "floor" or remainder < half:
        return quotient
    if remainder > half:
        return quotient + 1
    if rounding == "half_even":
        return quotient + (quotient % 2)
    if rounding == "half_up":
        return quotient + 1
    return quotient + (1 if v >= 0 else 0)                      # half_away: a negative tie keeps floor


def _exp_code(x, p):
    """The 16-bit (exp_bits) exp code of ``x = q - max(row) <= 0``."""
    x = max(x, p.exp_clamp * p.x0_int)
    z = x // p.x0_int
    r = x - p.x0_int * z
    poly = max((r + p.b_int) * r + p.c_int, 0)
    shift = p.exp_shift - p.exp_clamp + z                      # the 2**(n - z) of i-exp, folded
    if shift >= 0:
        code = _round_shift(poly * p.exp_multiplier, shift, p.exp_rounding)
    else:
        code = (poly * p.exp_multiplier) << -shift
    return min(max(code, 0), (1 << (p.exp_bits - 1)) - 1)


def my_softmax(q, params, axis=-1):
    """Integer softmax along ``axis``, one row at a time, output ``min(e * floor(2**32 / sum) >> ...)``."""
    rows = np.moveaxis(np.asarray(q, dtype=np.int64), axis, -1)
    out = np.zeros(rows.shape, dtype=np.int64)
    for index in np.ndindex(*rows.shape[:-1]):
        row = [int(v) for v in rows[index]]
        codes = [_exp_code(v - max(row), params) for v in row]
        total = sum(codes)
        factor = (1 << 32) // total if total else 0
        out[index] = [min((e * factor) >> (32 - params.output_bits), params.output_max) for e in codes]
    return np.moveaxis(out, -1, axis)


@settings(deadline=None)
@given(softmax_cases(axis=None))
def test_softmax_port(case):
    assert_bit_exact(my_softmax, i_softmax, **case)
