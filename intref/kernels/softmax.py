"""i-exp and the integer softmax kernels: twins of ``intref.spec.softmax``, bit for bit.

Everything is int64 (``mul_shift_round`` forms the one wide product, ``p * exp_multiplier``, from
32-bit words). The bounds that make each step fit are proved once per params object, with exact
Python ints, by ``SoftmaxParams`` (the polynomial), by ``i_exp`` (the unfolded ``p * 2**(n - z)``)
and by the row-length check of ``i_softmax`` (the sum); see the spec for the bit width of every
intermediate.

``i_softmax`` never forms ``exp_int``: as the spec defines ``e``, it folds the reference's
``<< (n - z)`` into the requantization, rounding ``p * m`` by the effective shift ``s - n + z`` when
that is >= 0 and forming ``p * m * 2**(n - z - s)`` with saturation at the top code when it is
negative (for every dialect but double_round this is ``round(exp_int * m / 2**s)`` exactly).
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import DtypeError, RangeError, ShapeError
from ..inttypes import INT64_MAX, MAX_SHIFT, IntType
from ..spec.softmax import FACTOR_BITS, SoftmaxParams
from .requant_fast import round_product_int64
from .rounding import mul_shift_round


def i_exp(q, params: SoftmaxParams) -> np.ndarray:
    """i-exp elementwise: ``exp_int = p * 2**(n - z)`` with ``exp_int * exp_scale ~ exp(q * S)``.

    ``q``: integer array (any dtype but uint64) with every value in ``[-2**(input_bits-1), 0]``.
    REQUIRE ``params.exp_int_max() <= 2**63 - 1`` (``RangeError`` otherwise: the unfolded value is
    not an int64 for these params; ``i_softmax`` has no such limit).
    Returns an int64 array of ``q``'s shape with values in ``[0, params.exp_int_max()]``.
    """
    _require_params("i_exp", params)
    top = params.exp_int_max()
    if top > INT64_MAX:
        raise RangeError(f"i_exp: exp_int can reach {top} (2**{top.bit_length() - 1} or more), outside int64 "
                         f"for these params; i_softmax folds 2**(n - z) into the requantization instead",
                         argument="params", value=top)
    q = _checks.int_array("i_exp", "q", q)
    _checks.require_range("i_exp", "q", q, -(1 << (params.input_bits - 1)), 0,
                          f"int{params.input_bits} and <= 0")
    z, p = exp_reduce_and_poly(q.astype(np.int64), params)
    return np.asarray(p << (np.int64(params.exp_clamp) - z), dtype=np.int64)   # 0-d stays an array


def i_softmax(q, params: SoftmaxParams, axis: int = -1) -> np.ndarray:
    """The integer softmax along ``axis``: ``out * 2**-output_bits ~ softmax(q * S)``.

    ``q``: integer array (any dtype but uint64), at least 1-D, values in int<input_bits>.
    ``axis``: the row axis; REQUIRE ``q.shape[axis] <= params.max_row_length()`` (``ShapeError``).
    Returns an array of ``q``'s shape holding ``[0, output_max]`` in the smallest unsigned dtype that
    holds ``output_max`` (uint8 for 255, uint16 for 256). A row whose exp codes sum to 0 gives 0s.
    """
    _require_params("i_softmax", params)
    q = _checks.int_array("i_softmax", "q", q)
    if q.ndim == 0:
        raise ShapeError("i_softmax: q must have at least one axis (the row axis)", argument="q")
    axis = _checks.require_int("i_softmax", "axis", axis, -q.ndim, q.ndim - 1)
    limit = params.max_row_length()
    if limit is not None and q.shape[axis] > limit:
        raise ShapeError(f"i_softmax: row length q.shape[{axis}] = {q.shape[axis]} exceeds "
                         f"params.max_row_length() = {limit} (the sum of exp codes could pass 2**32)",
                         argument="q")
    half = 1 << (params.input_bits - 1)
    _checks.require_range("i_softmax", "q", q, -half, half - 1, f"int{params.input_bits}")
    out_dtype = IntType(params.output_max.bit_length(), signed=False).storage
    if q.size == 0:
        return np.zeros(q.shape, dtype=out_dtype)

    q = q.astype(np.int64)                                     # a copy: q is never written
    x = q - q.max(axis=axis, keepdims=True)                    # in [-(2**B - 1), 0]
    z, p = exp_reduce_and_poly(x, params)
    e = exp_code_folded(z, p, params)                          # in [0, 2**(exp_bits-1) - 1]
    total = e.sum(axis=axis, keepdims=True)                    # <= 2**32 by the row-length check
    factor = np.int64(1 << FACTOR_BITS) // np.maximum(total, 1)   # sum 0: every e is 0, so out is 0
    out = (e * factor) >> np.int64(FACTOR_BITS - params.output_bits)   # e * factor <= 2**32
    return np.minimum(out, np.int64(params.output_max)).astype(out_dtype)


def exp_reduce_and_poly(x: np.ndarray, params: SoftmaxParams):
    """``(z, p)`` of an int64 array ``x`` in ``[-(2**B - 1), 0]``: the clamp, the range reduction
    ``x = x0_int * z + r`` and ``p = max((r + b_int) * r + c_int, 0)``; both int64.

    Every intermediate lies in the ranges that ``SoftmaxParams.intermediate_ranges()`` proved.
    """
    x0 = np.int64(params.x0_int)
    x = np.maximum(x, np.int64(params.exp_input_floor()))     # new array: the caller's x is kept
    z = x // x0                                                # floor; 0..n
    r = x - x0 * z                                             # (x0_int, 0]
    p = np.maximum((r + np.int64(params.b_int)) * r + np.int64(params.c_int), np.int64(0))
    return z, p


def exp_code_folded(z: np.ndarray, p: np.ndarray, params: SoftmaxParams) -> np.ndarray:
    """The spec's ``SoftmaxParams.exp_code(p, z)`` elementwise: int64 in ``[0, top]``.

    ``p >= 0`` and ``m >= 0``, so every value is >= 0 and only the top needs a clamp. Effective
    shift ``s - n + z``: >= 0, the exact ``mul_shift_round`` of ``p * m`` (shifts above 127 give the
    same 0 as 127, since ``p * m < 2**94``); < 0, ``p * m * 2**(n - z - s)`` saturated at the top.
    """
    top = np.int64(params.exp_code_max())
    shift = np.int64(params.exp_shift - params.exp_clamp) + z          # s - n + z, in [s - n, s]
    right = np.minimum(np.maximum(shift, 0), MAX_SHIFT)
    rounded = rounded_exp_product(p, params, right)
    code = np.minimum(rounded, top)
    if params.exp_shift < params.exp_clamp:                            # some shifts are negative
        left = np.maximum(-shift, 0)                                   # 0..n
        code = np.where(shift < 0, mul_pow2_saturating(p, params.exp_multiplier, left, top), code)
    return code


def int64_exp_product_proven(params: SoftmaxParams) -> bool:
    """True when every ``p * m`` is below 2**62 and the dialect is not ``double_round``: then
    ``rounded_exp_product`` may use the int64 path of ``kernels.requant_fast``."""
    product_max = max(params.poly_range()[1], 0) * params.exp_multiplier
    return product_max < 1 << 62 and params.exp_rounding != "double_round"


def rounded_exp_product(p: np.ndarray, params: SoftmaxParams, right: np.ndarray) -> np.ndarray:
    """``round(p * m / 2**right)`` (``p >= 0``, ``0 <= right <= 127``) as int64, exact below 2**62.

    Where ``int64_exp_product_proven``: the int64 product ``round_product_int64`` for
    ``right <= 62``, and 0 for ``right >= 63`` (``p * m < 2**62 <= 2**(right-1)``: below one half,
    which half_even, half_up, half_away and floor all round to 0). Else the general 95-bit kernel.
    Equal either way (tests/kernels/test_softmax_fast.py)."""
    m = np.int64(params.exp_multiplier)
    if not int64_exp_product_proven(params):
        return mul_shift_round(p, m, right, params.exp_rounding).value()
    rounded = round_product_int64(p, m, np.minimum(right, 62), params.exp_rounding)
    rounded[np.broadcast_to(right > 62, rounded.shape)] = 0
    return rounded


def mul_pow2_saturating(p: np.ndarray, m: int, left: np.ndarray, top: np.int64) -> np.ndarray:
    """``min(p * m * 2**left, top)`` for int64 ``p >= 0``, ``0 <= m <= 2**31``, ``0 <= left <= 62``,
    ``0 <= top < 2**31``; exact, every intermediate in ``[0, top]`` (nothing can overflow)."""
    product_limit = np.int64(int(top) // m) if m > 0 else np.int64(INT64_MAX)
    over = p > product_limit                                           # p * m > top
    product = np.where(over, 0, p) * np.int64(m)                       # <= top
    over |= product > (top >> left)                                    # product * 2**left > top
    return np.where(over, top, np.where(over, 0, product) << left)


def _require_params(where: str, params) -> None:
    if not isinstance(params, SoftmaxParams):
        raise DtypeError(f"{where}: params must be a SoftmaxParams, got {type(params).__name__}",
                         argument="params")
