"""GroupLinear: output == kernels.group_linear, exact per-channel ranges that some input attains,
int4-packed weights through a bundle, and every rejection path naming the node."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.errors import AttributeError_, RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from intref.inttypes import IntType
from intref.kernels.groupwise import group_linear
from intref.spec.rounding import ROUNDING_MODES
from intref.testing import assert_graph_error as raises
from intref.testing import assert_identical


def group_graph(weight, multiplier, bias=None, *, group_size, shift=31, rounding="half_even", x_type="int8",
                x_range=None, x_shape=None, out_type="int32", weight_type="int4", layout="plain",
                multiplier_type="uint32"):
    b = GraphBuilder("groups", symbols={"batch": 3, "seq": 8})
    k = weight.shape[1]
    x = b.input("x", x_type, x_shape if x_shape is not None else ["batch", "seq", k], range=x_range)
    inputs = [x, b.tensor("w", weight, weight_type, layout=layout), b.tensor("m", multiplier, multiplier_type)]
    if bias is not None:
        inputs.append(b.tensor("bias", bias, "int32"))
    b.output(b.add("GroupLinear", inputs, out_type, name="fc",
                   attributes={"group_size": group_size, "shift": shift, "rounding": rounding}))
    return b.build()


@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.sampled_from([1, 2, 4]), st.integers(1, 3), st.booleans(),
       st.sampled_from(ROUNDING_MODES), st.sampled_from(["int8", "uint8", "int16"]), st.booleans())
def test_output_equals_the_kernel_and_the_range_is_exact(seed, n_out, g, groups, with_bias, rounding, x_type, narrow):
    rng = np.random.default_rng(seed)
    k = g * groups
    weight = rng.integers(-8, 8, (n_out, k)).astype(np.int8)
    multiplier = rng.integers(0, (1 << 31) + 1, (n_out, groups))
    bias = rng.integers(-(1 << 20), 1 << 20, n_out).astype(np.int32) if with_bias else None
    t = IntType.parse(x_type)
    lo, hi = (t.lo // 3, t.hi // 2) if narrow else (t.lo, t.hi)
    graph = group_graph(weight, multiplier, bias, group_size=g, rounding=rounding, x_type=x_type,
                        x_range=(lo, hi) if narrow else None, out_type="int64")
    value = graph.values["fc"]
    assert value.shape == ("batch", "seq", n_out)
    # channel n's extremes: every input at the end of its range that its weight favours
    x_max = np.where(weight >= 0, hi, lo)
    x_min = np.where(weight >= 0, lo, hi)
    feed = np.concatenate([x_min, x_max]).astype(t.storage).reshape(2, n_out, k)
    out = intref.run(graph, {"x": feed})["fc"]
    want = group_linear(feed, weight, multiplier, 31, group_size=g, bias=bias, rounding=rounding)
    assert_identical(out, want, context="GroupLinear == kernel")
    channel = np.arange(n_out)
    assert (value.lo, value.hi) == (int(out[0, channel, channel].min()), int(out[1, channel, channel].max()))
    random = rng.integers(lo, hi, (3, 5, k), endpoint=True).astype(t.storage)
    out = intref.run(graph, {"x": random})["fc"]
    assert value.lo <= int(out.min()) and int(out.max()) <= value.hi


def test_int4_packed_weights_run_identically_after_a_bundle_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    weight = rng.integers(-8, 8, (6, 64)).astype(np.int8)
    multiplier = rng.integers(1 << 30, (1 << 31) + 1, (6, 2))
    graph = group_graph(weight, multiplier, rng.integers(-99, 99, 6).astype(np.int32), group_size=32,
                        layout="int4_packed")
    intref.save(graph, tmp_path / "b.zip")
    loaded = intref.load(tmp_path / "b.zip")
    assert loaded.tensors["w"].layout == "int4_packed"
    x = rng.integers(-128, 128, (2, 8, 64)).astype(np.int8)
    assert_identical(intref.run(loaded, {"x": x})["fc"], intref.run(graph, {"x": x})["fc"], context="round trip")


def test_every_rejection_names_the_node():
    w = np.ones((2, 4), np.int8)
    m = np.full((2, 2), 1 << 31)
    raises(ShapeMismatchError, lambda: group_graph(w, m, group_size=3), "fc")                     # K % g
    raises(ShapeMismatchError, lambda: group_graph(w, np.ones((2, 4), np.int64), group_size=2), "fc")
    raises(ShapeMismatchError, lambda: group_graph(w, m, group_size=2, x_shape=["batch", 5]), "fc")
    raises(ShapeMismatchError, lambda: group_graph(w, m, group_size=2, x_shape=[4]), "fc")        # rank 1
    raises(ShapeMismatchError, lambda: group_graph(w, m, np.ones(3, np.int32), group_size=2), "fc")
    raises(TypeMismatchError, lambda: group_graph(w, -m // (1 << 31), group_size=2, multiplier_type="int32"), "fc")
    raises(TypeMismatchError, lambda: group_graph(w, m + 1, group_size=2), "fc")                   # 2**31 + 1
    raises(TypeMismatchError, lambda: group_graph(w.astype(np.int32), m, group_size=2, weight_type="int32"), "fc")
    raises(TypeMismatchError, lambda: group_graph(w, m, group_size=2, x_type="uint32"), "fc")
    raises(AttributeError_, lambda: group_graph(w, m, group_size=0), "fc")
    raises(AttributeError_, lambda: group_graph(w, m, group_size=2, shift=128), "fc")
    raises(AttributeError_, lambda: group_graph(w, m, group_size=2, rounding="up"), "fc")
    big = np.full((1, 4), -(1 << 15), np.int16)
    # int16 x int16 products of 2**30: one per group fits int32, two overflow it
    raises(RangeAnalysisError, lambda: group_graph(big, np.ones((1, 2), np.int64), group_size=2, x_type="int16",
                                                   weight_type="int16"), "fc")
    assert group_graph(big, np.ones((1, 4), np.int64), group_size=1, shift=0, x_type="int16", weight_type="int16",
                       out_type="int64").values["fc"].hi == 4 << 30
    raises(RangeAnalysisError, lambda: group_graph(big, np.full((1, 4), 2), group_size=1, shift=0, x_type="int16",
                                                   weight_type="int16"), "fc")                   # 2**31 term


def test_a_narrow_declared_output_is_listed_as_may_overflow():
    w = np.full((1, 64), 7, np.int8)
    # each group: 32 * 32768 * 7 * 2**8 = 1879048192 fits int32; the two together do not
    graph = group_graph(w, np.full((1, 2), 1 << 31), group_size=32, shift=23, x_type="int16", out_type="int32")
    assert graph.may_overflow == ("fc",)
    assert group_graph(w, np.full((1, 2), 1 << 31), group_size=32, shift=24, x_type="int16").may_overflow == ()
