"""Requantization ops: ``Requantize`` and the residual ``ResidualAdd``.

Both take their dyadic multipliers and shifts as integer attributes (per tensor, or one per
channel of the last axis) and fit their result into the node's declared output type (at most 32
bits) by their ``overflow`` attribute: ``saturate`` (I-BERT's clamp) or ``wrap`` (RTL that keeps
the low bits). The run's overflow policy never sees their outputs leave the type.

Each node's path is planned at load time: ``int64 add-shift`` (``kernels.requant_addshift``: one add
and one shift) when the input type and the constants prove ``|x * m| + 2**(s-1) < 2**63``, every
shift <= 62 and the dialect rounds once; ``int64`` (``kernels.requant_fast``) when they prove
``|x * m| < 2**63`` and every shift <= 62; ``split32 add-shift`` (``Requantize`` only) where split32's
proof holds with every shift >= 34 and a single rounding; ``split32
(``kernels.requant_split``, ``Requantize`` only) when the product split on the low 32 bits of ``x``
fits two int64 words and every shift is 32..94; else the general 95-bit ``split95`` kernel. All
give the same result (tests/kernels/test_requant_fast.py, test_requant_split.py,
test_requant_addshift.py). A ``Requantize`` with per-tensor constants and an input type of at most 16
bits that fills its storage (int8, int16, uint8, uint16) reads a table of that path's results for
every value of the type instead (``table (N entries, by <path>)``, ``kernels.requant_table``).
Every path runs over row blocks (``kernels.blocks``). The result is fitted
to the output type by the op itself, so the interpreter never scans it (``outputs_in_type``).
"""

from __future__ import annotations

import numpy as np

from ..errors import RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from ..kernels.blocks import map_row_blocks
from ..kernels.gemm_plan import type_magnitude
from ..kernels.requant import add_requantized, requantize
from ..kernels.rounding import MAGNITUDE_CAP, mul_shift_round
from ..kernels.requant_fast import add_requantized_int64, int64_product_proven, requantize_int64
from ..kernels.requant_addshift import (add_requantized_addshift, addshift_proven, requantize_addshift,
                                        round_shift_in_place,
                                        requantize_split_addshift, split_addshift_proven)
from ..kernels.requant_float import (add_requantized_float, added_requantized_float, branch_constants,
                                     float_branch_proven, float_requantize_proven, requantize_float,
                                     requantized_float, scale_float64, tie_margin)
from ..kernels.requant_split import requantize_split, split_product_proven
from ..kernels.requant_table import requantize_by_table, requantize_table, table_fits, table_is_identity
from ..spec import requant as spec
from ..inttypes import MAX_SHIFT
from ..spec.rounding import ROUNDING_MODES
from .base import Attr, Op, Prepared, Result, broadcast_dims, channel_count, per_channel, require_type

MULTIPLIER = dict(lo=-(1 << 31), hi=1 << 31)
SHIFT = dict(lo=0, hi=MAX_SHIFT)
ROUNDING = Attr("str", "half_even", choices=ROUNDING_MODES, doc="rounding dialect (intref.spec.rounding)")
OVERFLOW = Attr("str", "saturate", choices=("saturate", "wrap"), doc="how the result fits the output type")


def _out_type(ctx, out_types):
    if out_types[0].bits > 32:
        ctx.fail(TypeMismatchError, f"requantized output type {out_types[0]} is wider than 32 bits")
    return out_types[0]


def _as_kernel_input(array):
    """uint33..uint63 values are stored as uint64, which the kernels refuse; every one fits int64."""
    return array.astype(np.int64) if array.dtype == np.uint64 else array


def _channel_list(value, channels):
    return list(value) if isinstance(value, tuple) else [value] * channels


def branch_range(lo: int, hi: int, multipliers, shifts, rounding: str):
    """Exact range of ``round(x * m / 2**s)`` over ``x`` in ``[lo, hi]`` and every channel (the
    rounding is monotone in ``x``, so the extremes come from the ends). All channels at once by the
    exact kernel (the add-shift one where its proof holds for ``[lo, hi]``: tests/ops/test_requant.py pins
    the two); the scalar spec only where a result reaches the kernel's 2**62 magnitude cap."""
    if -(1 << 63) <= lo and hi < (1 << 63):
        if addshift_proven(type_magnitude(lo, hi), multipliers, shifts, rounding):   # the planned int64 path
            ends = np.array([[lo], [hi]], dtype=np.int64) * np.array(multipliers, dtype=np.int64)
            values = round_shift_in_place(ends, np.array(shifts, dtype=np.int64), rounding)
            return int(values.min()), int(values.max())
        ends = mul_shift_round(np.array([[lo], [hi]], dtype=np.int64), np.array(multipliers, dtype=np.int64),
                               np.array(shifts, dtype=np.int64), rounding)
        if int(ends.magnitude.max()) < MAGNITUDE_CAP:
            values = ends.value()
            return int(values.min()), int(values.max())
    ends = [spec.rshift_round(x * m, s, rounding) for m, s in zip(multipliers, shifts) for x in (lo, hi)]
    return min(ends), max(ends)


def _int64_consts(m, s):
    return np.asarray(m, dtype=np.int64), np.asarray(s, dtype=np.int64)


def _fast_paths(rounding: str):
    """The planned paths, fastest first: (name, proof(|x| bound, m, s), kernel(x, m, s, **fit))."""
    return (("int64 add-shift", lambda bound, m, s: addshift_proven(bound, m, s, rounding), requantize_addshift),
            ("int64", int64_product_proven, requantize_int64),
            ("split32 add-shift", lambda bound, m, s: split_addshift_proven(bound, m, s, rounding),
             requantize_split_addshift),
            ("split32", split_product_proven, requantize_split))


def plan_requantize(x, m, s, rounding: str):
    """``(path name, kernel or None)``: the first path whose proof holds for ``x``'s TYPE (it bounds
    every value the interpreter can pass: checked feeds, fitted op outputs, overrides), else
    ``("split95", None)``, the general kernel."""
    bound = type_magnitude(x.type.lo, x.type.hi)
    for name, proven, kernel in _fast_paths(rounding):
        if proven(bound, m, s):
            return name, kernel
    return "split95", None


def _float_requantize(exact, m, s, out):
    """The ``float64 near-tie`` kernel (``kernels.requant_float``) falling back to ``exact``, and its
    carrier (``Prepared.carrier``: the estimate, or None near a tie)."""
    c, eps = scale_float64(m, s), tie_margin(1 << (out.bits + 1))

    def kernel(x_array):
        return requantize_float(x_array, c, eps, out, exact)

    def carrier(x_block):
        return requantized_float(x_block, c, eps, out, overwrite=True)
    return kernel, carrier


def _as_int64(x_block):
    """A carrier's integers (float64 below 2**53, or an integer dtype) as int64, for an integer kernel."""
    return x_block.astype(np.int64, copy=False)


class Requantize(Op):
    """``y = fit(round(x * multiplier / 2**shift))`` into the declared output type."""

    name = "Requantize"
    inputs = ("x",)
    attributes = {"multiplier": Attr("int_or_ints", **MULTIPLIER), "shift": Attr("int_or_ints", **SHIFT),
                  "rounding": ROUNDING, "overflow": OVERFLOW}

    def prepare(self, ctx, attrs, inputs, out_types):
        (x,) = inputs
        require_type(ctx.node, "input", x, max_bits=63 if not x.type.signed else 64)
        out = _out_type(ctx, out_types)
        channels = channel_count(ctx.node, "input", x) if any(isinstance(attrs[k], tuple) for k in ("multiplier", "shift")) else 1
        m = per_channel(ctx.node, "multiplier", attrs["multiplier"], channels)
        s = per_channel(ctx.node, "shift", attrs["shift"], channels)
        lo, hi = branch_range(x.lo, x.hi, _channel_list(m, channels), _channel_list(s, channels), attrs["rounding"])
        if attrs["overflow"] == "wrap" and (lo < out.lo or hi > out.hi):
            lo, hi = out.lo, out.hi
        options = dict(rounding=attrs["rounding"], bits=out.bits, signed=out.signed, overflow=attrs["overflow"])
        path, fast = plan_requantize(x, m, s, attrs["rounding"])
        if fast is not None:
            consts = _int64_consts(m, s)

            def kernel(x_array):
                return fast(x_array, *consts, rounding=attrs["rounding"], out_type=out, overflow=attrs["overflow"])
        else:
            def kernel(x_array):
                return requantize(_as_kernel_input(x_array), m, s, **options)

        integer_kernel = kernel

        def carrier(x_block):   # the integer path on a fused chain's block
            return integer_kernel(_as_int64(x_block))

        tabled = table_fits(x.type, isinstance(m, tuple) or isinstance(s, tuple))   # a gather beats any pass
        if not tabled and float_requantize_proven(attrs["rounding"], attrs["overflow"], s):
            path = f"float64 near-tie, else {path}"
            kernel, carrier = _float_requantize(kernel, m, s, out)
        elif tabled:
            table = requantize_table(x.type, kernel).astype(out.storage, copy=False)   # every input value, once
            if table_is_identity(table, x.type):
                return Prepared((Result(x.shape, x.lo, x.hi),), lambda x_array: (x_array.astype(out.storage, copy=False),),
                                f"identity (its {table.shape[0]}-entry table maps every value to itself, by {path})",
                                outputs_in_type=True, carrier=lambda x_block: x_block)
            path = f"table ({table.shape[0]} entries, by {path})"
            elementwise, mask = kernel, np.intp((1 << x.type.bits) - 1)

            def kernel(x_array):   # values held by the interpreter are in the storage dtype: the table's index
                if x_array.dtype != x.type.storage:
                    return elementwise(x_array)
                return requantize_by_table(x_array, table)

            def carrier(x_block):   # the index as requantize_table makes it: v mod 2**n
                return np.take(table, x_block.astype(np.intp) & mask)

        def run(x_array):   # every path is elementwise: row blocks give the same array (kernels.blocks)
            return (map_row_blocks(kernel, (x_array,), out.storage),)

        return Prepared((Result(x.shape, max(lo, out.lo), min(hi, out.hi)),), run, path, outputs_in_type=True,
                        carrier=carrier)


def _float_add(exact, consts, out):
    """The ``float64 near-tie`` sum (``kernels.requant_float``) falling back to ``exact``, and its carrier."""
    branches = {side: branch_constants(*consts[side]) for side in consts}

    def kernel(a_array, b_array):
        return add_requantized_float(a_array, b_array, branches["a"], branches["b"], out, exact)

    def carrier(a_block, b_block):
        return added_requantized_float(a_block, b_block, branches["a"], branches["b"], out, overwrite=True)
    return kernel, carrier


class ResidualAdd(Op):
    """``y = fit(round(a * multiplier_a / 2**shift_a) + round(b * multiplier_b / 2**shift_b))``.

    I-BERT's QuantAct with identity: each branch rounded on its own, then added, then clamped.
    ``b`` broadcasts against ``a`` (a bias vector, or a residual of the same shape).
    """

    name = "ResidualAdd"
    inputs = ("a", "b")
    attributes = {"multiplier_a": Attr("int_or_ints", **MULTIPLIER), "shift_a": Attr("int_or_ints", **SHIFT),
                  "multiplier_b": Attr("int_or_ints", **MULTIPLIER), "shift_b": Attr("int_or_ints", **SHIFT),
                  "rounding": ROUNDING, "overflow": OVERFLOW}

    def prepare(self, ctx, attrs, inputs, out_types):
        a, b = inputs
        for what, value in (("input a", a), ("input b", b)):
            require_type(ctx.node, what, value, max_bits=63 if not value.type.signed else 64)
        out = _out_type(ctx, out_types)
        shape = broadcast_dims(ctx.node, a.shape, b.shape)
        if len(shape) != len(a.shape) or shape != a.shape:
            ctx.fail(ShapeMismatchError, f"b {list(b.shape)} must broadcast to a's shape {list(a.shape)}")
        per = any(isinstance(v, tuple) for v in attrs.values())
        channels = channel_count(ctx.node, "input a", a) if per else 1
        consts, bounds = {}, []
        for side, value in (("a", a), ("b", b)):
            m = per_channel(ctx.node, f"multiplier_{side}", attrs[f"multiplier_{side}"], channels)
            s = per_channel(ctx.node, f"shift_{side}", attrs[f"shift_{side}"], channels)
            consts[side] = (m, s)
            bounds.append(branch_range(value.lo, value.hi, _channel_list(m, channels), _channel_list(s, channels),
                                       attrs["rounding"]))
        if max(abs(v) for bound in bounds for v in bound) >= 1 << 62:
            ctx.fail(RangeAnalysisError, f"a requantized branch can reach {bounds} (beyond 2**62): the "
                                         f"int64 sum would not be exact")
        lo, hi = bounds[0][0] + bounds[1][0], bounds[0][1] + bounds[1][1]
        if attrs["overflow"] == "wrap" and (lo < out.lo or hi > out.hi):
            lo, hi = out.lo, out.hi
        options = dict(rounding=attrs["rounding"], bits=out.bits, signed=out.signed, overflow=attrs["overflow"])
        paths = [plan_requantize(value, *consts[side], attrs["rounding"])[0] for side, value in (("a", a), ("b", b))]
        fast = {side: _int64_consts(*consts[side]) for side in consts}
        if paths == ["int64 add-shift"] * 2:
            def kernel(a_array, b_array):
                return add_requantized_addshift(a_array, b_array, fast["a"], fast["b"], rounding=attrs["rounding"],
                                                out_type=out, overflow=attrs["overflow"])
        elif set(paths) <= {"int64 add-shift", "int64"}:       # the add-shift proof implies the int64 one
            def kernel(a_array, b_array):
                return add_requantized_int64(a_array, b_array, fast["a"], fast["b"], rounding=attrs["rounding"],
                                             out_type=out, overflow=attrs["overflow"])
        else:
            def kernel(a_array, b_array):
                return add_requantized(_as_kernel_input(a_array), _as_kernel_input(b_array), *consts["a"],
                                       *consts["b"], **options)

        path = " + ".join(paths) if set(paths) <= {"int64 add-shift", "int64"} else " + ".join(
            name if name.startswith("int64") else "split95" for name in paths)   # no split32 kernel for a sum
        integer_kernel = kernel

        def carrier(a_block, b_block):   # the integer path on a fused chain's block
            return integer_kernel(_as_int64(a_block), b_block)

        magnitudes = {side: type_magnitude(value.type.lo, value.type.hi) for side, value in (("a", a), ("b", b))}
        if attrs["overflow"] == "saturate" and all(float_branch_proven(magnitudes[side], *consts[side], attrs["rounding"])
                                                   for side in consts):
            path = f"float64 near-tie, else {path}"
            kernel, carrier = _float_add(kernel, consts, out)

        def run(a_array, b_array):   # b is a's shape or broadcasts on the last axis only: row blocks
            return (map_row_blocks(kernel, (a_array, b_array), out.storage),)

        return Prepared((Result(a.shape, max(lo, out.lo), min(hi, out.hi)),), run, path, outputs_in_type=True,
                        carrier=carrier)
