"""i-GELU kernel: twin of ``intref.spec.gelu.i_gelu``, bit for bit.

``q * (floor(sgn(q) * ((min(|q|, -b_int) + b_int)**2 + c_int) / 2**guard_shift) + shift_int)``
elementwise, with per-tensor constants (ints) or per-channel ones (length ``C`` tuples broadcast on
the last axis of ``q``). int64 throughout: constructing ``GeluParams`` proved that every
intermediate below (``-b_int``, ``d*d``, ``P``, ``-P``, ``y + shift_int`` and the product) stays in
int64 for every ``q`` in ``int<input_bits>``, and the range check here enforces that ``REQUIRE``.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import DtypeError, ShapeError
from ..spec.gelu import GeluParams
from ..spec.gelu_bounds import int_type_range
from .gemm import FLOAT64_EXACT

_WHERE = "i_gelu"


def i_gelu(q, params: GeluParams) -> np.ndarray:
    """i-GELU of every element of ``q`` (see ``intref.spec.gelu.i_gelu`` for the definition).

    Arguments:
      q       integer array (any dtype up to int64; uint64, bool and float are refused) whose
              values lie in ``int<params.input_bits>`` (else RangeError naming the first index).
      params  ``GeluParams``; when per channel, ``q.shape[-1]`` must equal ``params.channels``.

    Returns an int64 array of ``q``'s shape (real value: ``result * params.out_scale``). ``q`` is not
    modified.
    """
    if not isinstance(params, GeluParams):
        raise DtypeError(f"{_WHERE}: params must be a GeluParams, got {type(params).__name__}", argument="params")
    q = _checks.int_array(_WHERE, "q", q)
    channels = params.channels
    if channels is not None and (q.ndim == 0 or q.shape[-1] != channels):
        raise ShapeError(f"{_WHERE}: q has shape {q.shape}; per-channel params need a last axis of "
                         f"length {channels}", argument="q")
    lo, hi = int_type_range(params.input_bits)
    _checks.require_range(_WHERE, "q", q, lo, hi, why=f"REQUIRE q in int{params.input_bits}")

    b, c, k = (np.asarray(v, dtype=np.int64) for v in (params.b_int, params.c_int, params.shift_int))
    v = i_gelu_planned(q, b, c, k, params.guard_shift)    # the checks above are its REQUIRE
    return v if v.ndim else v[()]                          # a 0-d input gives a scalar, as NumPy's ops do


def i_gelu_planned(q: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray, guard_shift: int) -> np.ndarray:
    """The arithmetic of ``i_gelu(q, params)`` without its argument checks (the ``IGelu`` op calls it
    directly: its input type proves the REQUIRE at load time). Returns a new int64 array.

    ``b``, ``c``, ``k``: ``params``' ``b_int``, ``c_int``, ``shift_int`` as int64 scalars or
    per-channel arrays on the last axis; ``guard_shift``: ``params.guard_shift``.
    REQUIRE (the ``IGelu`` op's input TYPE proves it, so nothing is scanned): ``q`` a signed
    integer array with every value in ``int<params.input_bits>``.

    Steps, each in place on one int64 array ``v`` (every bound is ``GeluParams``' proof):
      ``v = |q|`` (cast to int64 before the absolute value: ``|-2**31|`` fits), ``v = min(v + b, 0)``
      (``= min(|q|, -b) + b = d``: ``b`` added to both arguments of the min), ``v = v*v + c`` (P),
      ``v *= sgn(q)`` (the sign array in ``q``'s own dtype), ``v >>= guard``, ``v += k``, ``v *= q``.
      ``q`` is never copied to int64 (NumPy's mixed int64 x int<n> loops widen it on the fly).
      tests/kernels/test_gelu.py pins it (and ``i_gelu``) to the spec at the type's extremes.
    """
    v = np.abs(q, out=np.empty(q.shape, dtype=np.int64), dtype=np.int64)   # an array even for a 0-d q
    v += b
    np.minimum(v, np.int64(0), out=v)
    v *= v
    v += c
    v *= np.sign(q)                                          # int8..int64 signs, no int64 copy of q
    v >>= np.int64(guard_shift)
    v += k
    v *= q
    return v


_SIGN_BIT = np.int64(-(1 << 63))       # a float64's sign bit, in an int64 view


def float64_gelu_proven(magnitude: int, b, c, k, guard_shift: int) -> bool:
    """Whether ``i_gelu_float64`` equals ``i_gelu_planned`` for every ``|q| <= magnitude``: every
    intermediate below is an integer of magnitude at most 2**53, so each float64 operation is
    exact. Bounds, per channel and then the widest (``b <= 0``): ``|q| + |b|`` (the first add),
    ``b**2 + |c|`` (``P``; ``d = min(|q| + b, 0)`` lies in ``[b, 0]``), and
    ``(floor((b**2 + |c|) / 2**guard) + |k|) * magnitude`` (the last two steps)."""
    b, c, k = (np.atleast_1d(np.asarray(v, dtype=np.int64)).tolist() for v in (b, c, k))
    b_mag, c_mag, k_mag = max(-v for v in b), max(abs(v) for v in c), max(abs(v) for v in k)
    p_mag = b_mag * b_mag + c_mag
    return (magnitude + b_mag <= FLOAT64_EXACT and p_mag <= FLOAT64_EXACT
            and ((p_mag >> guard_shift) + 1 + k_mag) * magnitude <= FLOAT64_EXACT)


def i_gelu_float64(q: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray, guard_shift: int) -> np.ndarray:
    """``i_gelu_planned``'s integers computed in float64, as a new float64 array (the ``IGelu`` carrier
    of a fused chain, ``intref.fusion``). ``q``: integers in any integer or float dtype, not written.

    The same steps on ``v``: ``|q| + b``, ``min(., 0)``, square, ``+ c``, times ``sgn(q)``,
    ``floor(. * 2**-guard)`` (the arithmetic shift: scaling by a power of two is exact for a nonzero
    integer below 2**53 and any ``guard <= 62``), ``+ k``, times ``q``. REQUIRE
    ``float64_gelu_proven(max |q|, b, c, k, guard_shift)``: then every step is exact, and the result is
    the int64 kernel's value (a zero ``q`` may give ``-0.0``, which is 0).

    ``sgn(q)``: ``q``'s sign bit XORed into ``v``'s (an exact negation where ``q < 0``; where ``q`` is a
    zero ``v`` keeps its value instead of becoming 0, and the last step multiplies it by that zero).
    Two integer passes: NumPy's ``sign`` and ``copysign`` run unvectorized, about 5x a multiply here.
    tests/kernels/test_gelu.py pins it to ``i_gelu_planned`` on both sides of the proof's bound."""
    qf = q.astype(np.float64, copy=False)
    v = np.abs(qf)
    v += b
    np.minimum(v, 0.0, out=v)
    v *= v
    v += c
    bits = v.view(np.int64)
    bits ^= np.bitwise_and(qf.view(np.int64), _SIGN_BIT)
    v *= np.ldexp(1.0, -guard_shift)
    np.floor(v, out=v)
    v += k
    v *= qf
    return v
