"""Requantize and ResidualAdd: output == intref.kernels.requantize / add_requantized, symbolic
shapes, exact and sound ranges, and every rejection path names the node."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.errors import AttributeError_, GraphError, RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from intref.inttypes import IntType
from intref.kernels import add_requantized, requantize
from intref.spec.rounding import ROUNDING_MODES
from intref.testing import assert_graph_error as raises
from intref.testing import assert_identical

SYMBOLS = {"batch": 3, "seq": 6}
C = 5



def requant_graph(attributes, *, x_type="int32", x_shape=("batch", "seq", C), x_range=None, out_type="int8"):
    b = GraphBuilder("rq", symbols=SYMBOLS)
    x = b.input("x", x_type, list(x_shape), range=x_range)
    b.output(b.add("Requantize", [x], out_type, name="rq", attributes=attributes))
    return b.build()


def residual_graph(attributes, *, a_type="int32", b_type="int8", b_shape=("batch", "seq", C), out_type="int8",
                   a_range=None, b_range=None):
    b = GraphBuilder("res", symbols=SYMBOLS)
    a = b.input("a", a_type, ["batch", "seq", C], range=a_range)
    other = b.input("b", b_type, list(b_shape), range=b_range)
    b.output(b.add("ResidualAdd", [a, other], out_type, name="add", attributes=attributes))
    return b.build()


def feeds_within(rng, lo, hi, shape, dtype):
    """All-min, all-max, alternating and random arrays within [lo, hi]."""
    alternating = np.where(np.indices(shape).sum(axis=0) % 2 == 0, lo, hi)
    arrays = [np.full(shape, lo), np.full(shape, hi), alternating, rng.integers(lo, hi, size=shape, endpoint=True)]
    return [a.astype(dtype) for a in arrays]


multipliers = st.one_of(st.integers(-(1 << 31), 1 << 31), st.sampled_from([1 << 30, 1 << 31, -(1 << 31), 1, 0]))
shifts = st.one_of(st.integers(0, 63), st.sampled_from([0, 31, 32, 40]))
out_types = st.sampled_from(["int8", "uint8", "int4", "int16", "int32", "uint1", "int22", "uint32"])
in_types = st.sampled_from(["int32", "int8", "uint16", "int64", "int22"])


@st.composite
def per_tensor_or_channel(draw, values):
    return draw(st.one_of(values, st.lists(values, min_size=C, max_size=C)))


@given(st.integers(0, 2**32 - 1), per_tensor_or_channel(multipliers), per_tensor_or_channel(shifts),
       st.sampled_from(ROUNDING_MODES), st.sampled_from(["saturate", "wrap"]), out_types, in_types, st.booleans())
def test_requantize_equals_kernel_and_range_is_sound(seed, m, s, rounding, overflow, out_type, x_type, narrow):
    rng = np.random.default_rng(seed)
    t = IntType.parse(x_type)
    x_range = (t.lo // 5, t.hi // 7) if narrow else None
    lo, hi = x_range if narrow else (t.lo, t.hi)
    attributes = {"multiplier": m, "shift": s, "rounding": rounding, "overflow": overflow}
    graph = requant_graph(attributes, x_type=x_type, x_range=x_range, out_type=out_type)
    value = graph.values["rq"]
    assert value.shape == ("batch", "seq", C) and graph.may_overflow == ()
    out_t = IntType.parse(out_type)
    seen = []
    for x in feeds_within(rng, lo, hi, (2, 3, C), t.storage):
        out = intref.run(graph, {"x": x})["rq"]
        expected = requantize(x, m, s, rounding=rounding, bits=out_t.bits, signed=out_t.signed, overflow=overflow)
        assert_identical(out, expected.astype(out_t.storage), context="Requantize == kernel")
        assert value.lo <= out.min() and out.max() <= value.hi, (value.lo, value.hi, out.min(), out.max())
        seen.append(out)
    if overflow == "saturate":                                # exact: the all-min / all-max feeds attain it
        both = np.concatenate([seen[0].ravel(), seen[1].ravel()]).astype(np.int64)
        assert (int(both.min()), int(both.max())) == (value.lo, value.hi)


def test_requantize_hand_computed():
    graph = requant_graph({"multiplier": [1 << 30, 1 << 30, -(1 << 30), 3 << 29, 1], "shift": [31, 30, 31, 31, 0]},
                          x_shape=["seq", C])
    x = np.array([[5, 5, 5, 5, 5], [-3, 300, 7, -7, -300]], dtype=np.int32)
    # channel 0: 5/2 -> 2 (tie to even), -3/2 -> -2; channel 1: x; channel 2: -x/2; channel 3: 3x/4
    expected = np.array([[2, 5, -2, 4, 5], [-2, 127, -4, -5, -128]], dtype=np.int8)
    assert_identical(intref.run(graph, {"x": x})["rq"], expected)


def test_requantize_wrap_range_is_the_whole_type():
    graph = requant_graph({"multiplier": 1 << 30, "shift": 30, "overflow": "wrap"}, x_range=(0, 200))
    assert (graph.values["rq"].lo, graph.values["rq"].hi) == (-128, 127)
    out = intref.run(graph, {"x": np.array([[[0, 127, 128, 200, 1]]], dtype=np.int32)})["rq"]
    assert_identical(out, np.array([[[0, 127, -128, -56, 1]]], dtype=np.int8))
    fits = requant_graph({"multiplier": 1 << 30, "shift": 30, "overflow": "wrap"}, x_range=(-3, 100))
    assert (fits.values["rq"].lo, fits.values["rq"].hi) == (-3, 100)


def test_requantize_wide_unsigned_input():
    """uint33..uint63 are legal inputs (stored as uint64, every value < 2**63)."""
    graph = requant_graph({"multiplier": 1 << 30, "shift": 60}, x_type="uint40", out_type="int16")
    x = np.array([[[0, 1 << 39, (1 << 40) - 1, 3 << 30, 12345]]], dtype=np.uint64)
    out = intref.run(graph, {"x": x})["rq"]
    expected = requantize(x.astype(np.int64), 1 << 30, 60, bits=16)
    assert_identical(out, expected)
    assert graph.values["rq"].hi == int(expected.max())


@given(st.integers(0, 2**32 - 1), per_tensor_or_channel(multipliers), per_tensor_or_channel(shifts),
       per_tensor_or_channel(multipliers), per_tensor_or_channel(shifts), st.sampled_from(ROUNDING_MODES),
       st.sampled_from(["saturate", "wrap"]), out_types, st.sampled_from([("batch", "seq", C), (C,), (1, "seq", 1)]))
def test_residual_add_equals_kernel_and_range_is_sound(seed, ma, sa, mb, sb, rounding, overflow, out_type, b_shape):
    rng = np.random.default_rng(seed)
    attributes = {"multiplier_a": ma, "shift_a": sa, "multiplier_b": mb, "shift_b": sb, "rounding": rounding,
                  "overflow": overflow}
    a_lo, a_hi = -(1 << 30), (1 << 30) + 12345              # |a * m| < 2**62 with |m| <= 2**31
    graph = residual_graph(attributes, b_shape=b_shape, out_type=out_type, a_range=(a_lo, a_hi))
    value = graph.values["add"]
    assert value.shape == ("batch", "seq", C)
    out_t = IntType.parse(out_type)
    concrete_b = tuple({"batch": 2, "seq": 3}.get(d, d) for d in b_shape)
    a_feeds = feeds_within(rng, a_lo, a_hi, (2, 3, C), np.int32)
    b_feeds = feeds_within(rng, -128, 127, concrete_b, np.int8)
    for a, b in zip(a_feeds + a_feeds[::-1], b_feeds + b_feeds):
        out = intref.run(graph, {"a": a, "b": b})["add"]
        expected = add_requantized(a, b, ma, sa, mb, sb, rounding=rounding, bits=out_t.bits, signed=out_t.signed,
                                   overflow=overflow)
        assert_identical(out, expected.astype(out_t.storage), context="ResidualAdd == kernel")
        assert out.shape == (2, 3, C)
        assert value.lo <= out.min() and out.max() <= value.hi


def test_residual_add_hand_computed():
    """I-BERT: each branch rounded on its own (half even), then added, then clamped."""
    graph = residual_graph({"multiplier_a": 1 << 30, "shift_a": 31, "multiplier_b": 1 << 30, "shift_b": 31},
                           b_shape=(C,))
    a = np.array([[[1, 3, 5, 250, -260]]], dtype=np.int32)
    b = np.array([1, 3, -5, 10, -1], dtype=np.int8)
    # 1/2 -> 0 and 1/2 -> 0 (sum 0, not round(1) = 1); 3/2 -> 2 twice; 5/2 -> 2, -5/2 -> -2; clamps
    expected = np.array([[[0, 4, 0, 127, -128]]], dtype=np.int8)
    assert_identical(intref.run(graph, {"a": a, "b": b})["add"], expected)


def test_requantize_rejections():
    ok = {"multiplier": 1 << 30, "shift": 31}
    raises(AttributeError_, lambda: requant_graph({"multiplier": (1 << 31) + 1, "shift": 3}), "rq")
    raises(AttributeError_, lambda: requant_graph({"multiplier": -(1 << 31) - 1, "shift": 3}), "rq")
    raises(AttributeError_, lambda: requant_graph({"multiplier": 1, "shift": 128}), "rq")
    raises(AttributeError_, lambda: requant_graph({"multiplier": 1, "shift": -1}), "rq")
    raises(AttributeError_, lambda: requant_graph({"multiplier": 0.5, "shift": 1}), "rq")
    raises(AttributeError_, lambda: requant_graph({"multiplier": True, "shift": 1}), "rq")
    raises(AttributeError_, lambda: requant_graph({"multiplier": [1, 2.0, 3, 4, 5], "shift": 1}), "rq")
    raises(AttributeError_, lambda: requant_graph({"multiplier": 1, "shift": [1, 128, 1, 1, 1]}), "rq")
    raises(AttributeError_, lambda: requant_graph({"shift": 1}), "rq")                      # missing
    raises(AttributeError_, lambda: requant_graph({**ok, "rounding": "nearest"}), "rq")
    raises(AttributeError_, lambda: requant_graph({**ok, "overflow": "check"}), "rq")
    raises(AttributeError_, lambda: requant_graph({**ok, "zero_point": 0}), "rq")
    raises(ShapeMismatchError, lambda: requant_graph({"multiplier": [1, 2, 3], "shift": 1}), "rq")
    raises(ShapeMismatchError, lambda: requant_graph({"multiplier": 1, "shift": [1] * (C + 1)}), "rq")
    raises(ShapeMismatchError, lambda: requant_graph({"multiplier": [1] * C, "shift": 1}, x_shape=["batch", "seq"]),
           "rq")
    raises(TypeMismatchError, lambda: requant_graph(ok, out_type="int33"), "rq")
    raises(TypeMismatchError, lambda: requant_graph(ok, x_type="uint64"), "rq")

    def two_inputs():
        b = GraphBuilder("rq", symbols=SYMBOLS)
        x = b.input("x", "int32", ["seq"])
        b.output(b.add("Requantize", [x, x], "int8", name="rq", attributes=ok))
        b.build()
    assert "takes 1..1 inputs" in str(raises(GraphError, two_inputs, "rq"))


def test_residual_add_rejections():
    ok = {"multiplier_a": 1 << 30, "shift_a": 31, "multiplier_b": 1 << 30, "shift_b": 31}
    raises(ShapeMismatchError, lambda: residual_graph(ok, b_shape=("batch", "seq", C + 1)), "add")
    raises(ShapeMismatchError, lambda: residual_graph(ok, b_shape=(2, "batch", "seq", C)), "add")  # grows a
    raises(ShapeMismatchError, lambda: residual_graph(ok, b_shape=("seq", "seq", C)), "add")
    raises(ShapeMismatchError, lambda: residual_graph({**ok, "shift_b": [31] * (C - 1)}), "add")
    raises(AttributeError_, lambda: residual_graph({**ok, "multiplier_b": 1 << 32}), "add")
    raises(AttributeError_, lambda: residual_graph({k: v for k, v in ok.items() if k != "shift_a"}), "add")
    raises(TypeMismatchError, lambda: residual_graph(ok, b_type="uint64"), "add")
    raises(TypeMismatchError, lambda: residual_graph(ok, out_type="int64"), "add")
    # a branch that can pass 2**62 makes the int64 sum inexact
    raises(RangeAnalysisError, lambda: residual_graph({**ok, "multiplier_a": 1 << 31, "shift_a": 0}, a_type="int64"),
           "add")
    fine = residual_graph({**ok, "multiplier_a": 1 << 31, "shift_a": 0}, a_type="int64",
                          a_range=(-(1 << 30), 1 << 30))
    assert fine.values["add"].lo == -128


@given(st.integers(0, 62), st.lists(st.integers(-(1 << 31), 1 << 31), min_size=1, max_size=4),
       st.lists(st.integers(0, 62), min_size=1, max_size=4), st.sampled_from(ROUNDING_MODES),
       st.integers(-3, 3), st.booleans())
def test_branch_range_equals_the_scalar_spec_on_both_sides_of_the_addshift_proof(bits, ms, ss, rounding, nudge, flip):
    """``branch_range`` (add-shift where ``addshift_proven`` holds for the range's magnitude, the split
    kernel or the scalar spec elsewhere) is the exact min and max of the spec's rounding of the ends;
    the magnitude is drawn at ``(2**63 - 1 - 2**(s-1)) // |m|`` plus a nudge, across the proof's edge."""
    from intref.ops.requant import branch_range
    from intref.spec.requant import rshift_round
    channels = min(len(ms), len(ss))
    ms, ss = ms[:channels], ss[:channels]
    top, half = max(abs(m) for m in ms), (1 << (max(ss) - 1)) if max(ss) else 0
    edge = ((1 << 63) - 1 - half) // top if top else (1 << bits)
    magnitude = max(min(edge + nudge, (1 << 63) - 1), 0)
    lo, hi = (-magnitude, magnitude // 3) if flip else (-(magnitude // 5), magnitude)
    ends = [rshift_round(x * m, s, rounding) for m, s in zip(ms, ss) for x in (lo, hi)]
    assert branch_range(lo, hi, ms, ss, rounding) == (min(ends), max(ends))
