"""Linear and MatMul: output == intref.kernels.matmul (+ bias), symbolic shapes, ranges sound (and
exact per channel for Linear: some input attains them), every rejection path names the node."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.errors import AttributeError_, GraphError, RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from intref.inttypes import IntType
from intref.kernels import matmul
from intref.testing import assert_graph_error as raises
from intref.testing import assert_identical

SYMBOLS = {"batch": 3, "seq": 8, "heads": 4}



def random_ints(rng, type_name, shape):
    t = IntType.parse(type_name)
    return rng.integers(t.lo, t.hi, size=shape, endpoint=True, dtype=np.int64).astype(t.storage)


def extremes(rng, lo, hi, shape, dtype):
    """All-min, all-max, alternating min/max and random feeds within [lo, hi]."""
    alternating = np.where(np.indices(shape).sum(axis=0) % 2 == 0, lo, hi)
    return [np.full(shape, lo), np.full(shape, hi), alternating,
            rng.integers(lo, hi, size=shape, endpoint=True)], dtype


# --- Linear -----------------------------------------------------------------------------------------

def linear_graph(weight, bias=None, *, x_type="int8", x_range=None, x_shape=None, out_type="int32",
                 weight_type=None, bias_type=None):
    b = GraphBuilder("lin", symbols=SYMBOLS)
    k = weight.shape[-1] if weight.ndim else 1
    x = b.input("x", x_type, x_shape if x_shape is not None else ["batch", "seq", k], range=x_range)
    inputs = [x, b.tensor("w", weight, weight_type)]
    if bias is not None:
        inputs.append(b.tensor("bias", bias, bias_type))
    b.output(b.add("Linear", inputs, out_type, name="fc"))
    return b.build()


def expected_linear(x, weight, bias):
    out = matmul(x, np.ascontiguousarray(weight.T))
    return out if bias is None else out + bias.astype(np.int64)


def channel_extremes(weight, bias, lo, hi):
    """Per output channel, the exact (min, max) of the sum and the inputs that attain them."""
    w = weight.astype(np.int64)
    b = np.zeros(w.shape[0], np.int64) if bias is None else bias.astype(np.int64)
    x_max = np.where(w >= 0, hi, lo)
    x_min = np.where(w >= 0, lo, hi)
    return (x_min * w).sum(axis=1) + b, (x_max * w).sum(axis=1) + b, x_min, x_max


@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 40), st.booleans(),
       st.sampled_from([("int8", "int8"), ("int4", "int8"), ("int16", "int16"), ("int8", "uint8"),
                        ("int8", "int32"), ("int16", "uint16")]), st.booleans())
def test_linear_equals_kernel_and_range_is_exact(seed, n_out, k, with_bias, types, narrow_range):
    rng = np.random.default_rng(seed)
    weight_type, x_type = types
    weight = random_ints(rng, weight_type, (n_out, k))
    bias = random_ints(rng, "int32", (n_out,)) if with_bias else None
    t = IntType.parse(x_type)
    x_range = (t.lo // 3, t.hi // 2) if narrow_range else None
    lo, hi = x_range if narrow_range else (t.lo, t.hi)
    graph = linear_graph(weight, bias, x_type=x_type, x_range=x_range, weight_type=weight_type, out_type="int64")
    value = graph.values["fc"]
    assert value.shape == ("batch", "seq", n_out)
    ch_lo, ch_hi, x_min, x_max = channel_extremes(weight, bias, lo, hi)
    assert (value.lo, value.hi) == (int(ch_lo.min()), int(ch_hi.max()))
    # every channel's extremes are attained: row n of the feed is channel n's extreme input
    feed = np.concatenate([x_min, x_max]).astype(t.storage).reshape(2, n_out, k)
    out = intref.run(graph, {"x": feed})["fc"]
    assert_identical(out, expected_linear(feed, weight, bias), context="Linear == kernel")
    assert out.shape == (2, n_out, n_out)
    assert_identical(np.diagonal(out[0]), ch_lo, context="per-channel min attained")
    assert_identical(np.diagonal(out[1]), ch_hi, context="per-channel max attained")
    feeds, _ = extremes(rng, lo, hi, (3, 5, k), t.storage)
    for x in feeds:
        x = x.astype(t.storage)
        out = intref.run(graph, {"x": x})["fc"]
        assert_identical(out, expected_linear(x, weight, bias), context="Linear == kernel")
        assert value.lo <= out.min() and out.max() <= value.hi


def test_linear_rank2_input_and_narrow_declared_type():
    weight = np.array([[1, -2, 3], [127, 127, 127]], dtype=np.int8)
    graph = linear_graph(weight, np.array([5, -5], dtype=np.int32), x_shape=["seq", 3], out_type="int16")
    assert graph.values["fc"].shape == ("seq", 2)
    assert graph.may_overflow == ("fc",)                      # 3 * 127 * 128 - 5 = 48763 > 32767
    x = np.array([[1, 2, 3], [-1, 0, 1]], dtype=np.int8)
    out = intref.run(graph, {"x": x})["fc"]
    assert_identical(out, np.array([[1 - 4 + 9 + 5, 127 * 6 - 5], [-1 + 3 + 5, -5]], dtype=np.int16))


def test_linear_rejections():
    w = np.ones((4, 8), dtype=np.int8)
    bias = np.zeros(4, dtype=np.int32)
    raises(ShapeMismatchError, lambda: linear_graph(w, x_shape=["batch", "seq", 7]), "fc")   # K mismatch
    raises(ShapeMismatchError, lambda: linear_graph(w, x_shape=["batch", "seq"]), "fc")      # symbol vs K
    raises(ShapeMismatchError, lambda: linear_graph(w, x_shape=[8]), "fc")                   # rank 1
    raises(ShapeMismatchError, lambda: linear_graph(w, np.zeros(5, dtype=np.int32)), "fc")   # bias length
    raises(ShapeMismatchError, lambda: linear_graph(w, np.zeros((1, 4), dtype=np.int32)), "fc")
    raises(ShapeMismatchError, lambda: linear_graph(np.ones(8, dtype=np.int8), x_shape=["seq", 8]), "fc")
    raises(ShapeMismatchError, lambda: linear_graph(np.ones((0, 8), dtype=np.int8)), "fc")   # empty weight
    raises(TypeMismatchError, lambda: linear_graph(w, x_type="int64"), "fc")
    raises(TypeMismatchError, lambda: linear_graph(w, x_type="uint32"), "fc")
    raises(TypeMismatchError, lambda: linear_graph(w.astype(np.uint8)), "fc")                # unsigned weight
    raises(TypeMismatchError, lambda: linear_graph(w.astype(np.int32)), "fc")                # 32-bit weight
    raises(TypeMismatchError, lambda: linear_graph(w, bias.astype(np.int64)), "fc")
    raises(TypeMismatchError, lambda: linear_graph(w, bias.astype(np.uint16)), "fc")

    def weight_not_stored():
        b = GraphBuilder("lin", symbols=SYMBOLS)
        x, wt = b.input("x", "int8", ["seq", 8]), b.input("w", "int8", [4, 8])
        b.output(b.add("Linear", [x, wt], "int32", name="fc"))
        b.build()
    raises(ShapeMismatchError, weight_not_stored, "fc")

    def input_count(n):
        b = GraphBuilder("lin", symbols=SYMBOLS)
        names = [b.input("x", "int8", ["seq", 8])] + [b.tensor(f"t{i}", w) for i in range(n - 1)]
        b.output(b.add("Linear", names, "int32", name="fc"))
        b.build()
    assert "takes 2..3 inputs" in str(raises(GraphError, lambda: input_count(1), "fc"))
    raises(GraphError, lambda: input_count(4), "fc")

    def with_attribute():
        b = GraphBuilder("lin", symbols=SYMBOLS)
        b.output(b.add("Linear", [b.input("x", "int8", ["seq", 8]), b.tensor("w", w)], "int32", name="fc",
                       attributes={"transpose": True}))
        b.build()
    raises(AttributeError_, with_attribute, "fc")


def test_linear_bound_beyond_int64_is_refused():
    k = 1 << 16                                               # 2**31 * 2**15 * 2**16 = 2**62
    weight = np.full((1, k), -(1 << 15), dtype=np.int16)
    raises(RangeAnalysisError, lambda: linear_graph(weight, x_type="int32", x_shape=["seq", k]), "fc")
    # the same weights are fine on a declared input range that keeps the sum inside int64
    graph = linear_graph(weight, x_type="int32", x_shape=["seq", k], x_range=(-4, 4), out_type="int64")
    assert (graph.values["fc"].lo, graph.values["fc"].hi) == (-4 * k * (1 << 15), 4 * k * (1 << 15))


# --- MatMul -----------------------------------------------------------------------------------------

def matmul_graph(a_type, a_shape, b_type, b_shape, *, transpose_b=None, out_type="int64", a_range=None,
                 b_range=None, symbols=SYMBOLS):
    b = GraphBuilder("mm", symbols=symbols)
    a_name = b.input("a", a_type, a_shape, range=a_range)
    b_name = b.input("b", b_type, b_shape, range=b_range)
    attributes = None if transpose_b is None else {"transpose_b": transpose_b}
    b.output(b.add("MatMul", [a_name, b_name], out_type, name="mm", attributes=attributes))
    return b.build()


TYPE_PAIRS = [("int8", "int8"), ("uint8", "int8"), ("uint9", "int8"), ("int16", "int16"), ("int4", "uint16"),
              ("int32", "int8")]


@given(st.integers(0, 2**32 - 1), st.sampled_from(TYPE_PAIRS), st.booleans(), st.integers(1, 3),
       st.integers(1, 8), st.integers(1, 6))
def test_attention_matmul_equals_kernel_and_is_sound(seed, types, transpose_b, batch, seq, depth):
    """[batch, heads, seq, d] @ [batch, heads, d, seq] (or its transpose), seq symbolic."""
    rng = np.random.default_rng(seed)
    a_type, b_type = types
    b_shape = ["batch", "heads", "seq", depth] if transpose_b else ["batch", "heads", depth, "seq"]
    graph = matmul_graph(a_type, ["batch", "heads", "seq", depth], b_type, b_shape, transpose_b=transpose_b)
    value = graph.values["mm"]
    assert value.shape == ("batch", "heads", "seq", "seq")
    ta, tb = IntType.parse(a_type), IntType.parse(b_type)
    corners = [p * q for p in (ta.lo, ta.hi) for q in (tb.lo, tb.hi)]
    assert value.lo <= min(corners) * depth and value.hi >= max(corners) * depth
    a_shape = (batch, 4, seq, depth)
    b_shape = (batch, 4, seq, depth) if transpose_b else (batch, 4, depth, seq)
    a_feeds, _ = extremes(rng, ta.lo, ta.hi, a_shape, ta.storage)
    b_feeds, _ = extremes(rng, tb.lo, tb.hi, b_shape, tb.storage)
    for a in a_feeds:
        for b in b_feeds:
            a, b = a.astype(ta.storage), b.astype(tb.storage)
            out = intref.run(graph, {"a": a, "b": b})["mm"]
            assert_identical(out, matmul(a, np.swapaxes(b, -1, -2) if transpose_b else b), context="MatMul")
            assert out.shape == (batch, 4, seq, seq)
            assert value.lo <= out.min() and out.max() <= value.hi


def test_matmul_bound_attained_for_concrete_k():
    graph = matmul_graph("int8", ["seq", 5], "int8", [5, 3])
    value = graph.values["mm"]
    assert (value.lo, value.hi) == (-128 * 127 * 5, 128 * 128 * 5)
    a = np.full((2, 5), -128, dtype=np.int8)
    low = intref.run(graph, {"a": a, "b": np.full((5, 3), 127, dtype=np.int8)})["mm"]
    high = intref.run(graph, {"a": a, "b": np.full((5, 3), -128, dtype=np.int8)})["mm"]
    assert int(low.min()) == value.lo and int(high.max()) == value.hi


def test_matmul_positive_products_and_empty_k():
    graph = matmul_graph("uint8", ["seq", 4], "uint8", [4, 2], a_range=(1, 3), b_range=(2, 5))
    value = graph.values["mm"]
    assert (value.lo, value.hi) == (4 * 2, 4 * 15)            # exact for a concrete K: both ends attained
    low = intref.run(graph, {"a": np.ones((1, 4), np.uint8), "b": np.full((4, 2), 2, np.uint8)})["mm"]
    high = intref.run(graph, {"a": np.full((1, 4), 3, np.uint8), "b": np.full((4, 2), 5, np.uint8)})["mm"]
    assert (int(low.min()), int(high.max())) == (value.lo, value.hi)
    empty = matmul_graph("int8", ["seq", 0], "int8", [0, 3], a_range=(1, 3), b_range=(-5, -2))
    value = empty.values["mm"]
    out = intref.run(empty, {"a": np.zeros((2, 0), np.int8), "b": np.zeros((0, 3), np.int8)})["mm"]
    assert_identical(out, np.zeros((2, 3), np.int64))         # the empty sum
    assert value.lo <= 0 <= value.hi


def test_matmul_symbolic_k_and_broadcast_batch():
    """P @ V with the contracted axis symbolic (any runtime size up to its maximum), b without batch."""
    graph = matmul_graph("uint8", ["batch", "seq", "seq"], "int8", ["seq", 4], a_range=(0, 255))
    value = graph.values["mm"]
    assert value.shape == ("batch", "seq", 4)
    assert (value.lo, value.hi) == (255 * -128 * SYMBOLS["seq"], 255 * 127 * SYMBOLS["seq"])
    rng = np.random.default_rng(1)
    for seq in (1, 3, SYMBOLS["seq"]):
        a = rng.integers(0, 256, size=(2, seq, seq)).astype(np.uint8)
        b = rng.integers(-128, 128, size=(seq, 4)).astype(np.int8)
        out = intref.run(graph, {"a": a, "b": b})["mm"]
        assert_identical(out, matmul(a, b))
        assert value.lo <= out.min() and out.max() <= value.hi
    # non-negative products: the bound must still hold for every runtime K (here K = 1)
    positive = matmul_graph("uint8", ["seq", "seq"], "uint8", ["seq", 2], a_range=(1, 3), b_range=(2, 5))
    value = positive.values["mm"]
    one = intref.run(positive, {"a": np.ones((1, 1), np.uint8), "b": np.full((1, 2), 2, np.uint8)})["mm"]
    assert value.lo <= int(one.min()) and int(one.max()) <= value.hi


def test_matmul_rejections():
    raises(TypeMismatchError, lambda: matmul_graph("int64", ["seq", 4], "int8", [4, 2]), "mm")
    raises(TypeMismatchError, lambda: matmul_graph("int8", ["seq", 4], "uint32", [4, 2]), "mm")
    raises(TypeMismatchError, lambda: matmul_graph("int8", ["seq", 4], "int33", [4, 2]), "mm")
    raises(ShapeMismatchError, lambda: matmul_graph("int8", [4], "int8", [4, 2]), "mm")          # rank 1
    raises(ShapeMismatchError, lambda: matmul_graph("int8", ["seq", 4], "int8", [5, 2]), "mm")   # K mismatch
    raises(ShapeMismatchError, lambda: matmul_graph("int8", ["seq", 4], "int8", [4, "seq"], transpose_b=True),
           "mm")
    raises(ShapeMismatchError, lambda: matmul_graph("int8", ["seq", "batch"], "int8", ["seq", 2]), "mm")
    raises(ShapeMismatchError, lambda: matmul_graph("int8", [2, "seq", 4], "int8", [3, 4, 2]), "mm")  # batch
    raises(AttributeError_, lambda: matmul_graph("int8", ["seq", 4], "int8", [4, 2], transpose_b=1), "mm")
    raises(RangeAnalysisError, lambda: matmul_graph("int32", ["seq", 4], "int32", [4, 2]), "mm")
    # a symbolic K is bounded by its declared maximum: 2**31 * 2**15 * K reaches 2**62 at K = 2**16
    raises(RangeAnalysisError, lambda: matmul_graph("int32", ["seq", "seq"], "int16", ["seq", 2],
                                                    symbols={"seq": 1 << 16}), "mm")
    ok = matmul_graph("int32", ["seq", "seq"], "int16", ["seq", 2], symbols={"seq": 1 << 15})
    assert ok.values["mm"].hi == (1 << 31) * (1 << 15) * (1 << 15)
