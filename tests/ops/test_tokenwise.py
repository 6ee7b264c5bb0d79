"""TokenScale, TokenQuantize, TokenRequantize: outputs == kernels == spec row by row, a W4-A8
token-wise Linear chain, scales visible in the trace, sound ranges, every rejection naming its node."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.errors import AttributeError_, RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from intref.kernels.groupwise import group_linear
from intref.kernels.tokenwise import token_quantize, token_requantize, token_scale
from intref.spec import tokenwise as spec
from intref.spec.rounding import ROUNDING_MODES
from intref.testing import assert_graph_error as raises
from intref.testing import assert_identical

SYMBOLS = {"batch": 3, "seq": 8}


def chain_graph(rng, *, k=64, n=6, g=32, bits=8, rounding="half_even", x_range=None):
    """int32 activations -> per-token scale -> int8 -> int4 GroupLinear -> token requantize (+ bias) -> int8."""
    b = GraphBuilder("token-chain", symbols=SYMBOLS)
    x = b.input("x", "int32", ["batch", "seq", k], range=x_range)
    t = b.add("TokenScale", [x], "int32", name="t", attributes={"bits": bits})
    q = b.add("TokenQuantize", [x, t], f"int{bits}", name="q", attributes={"bits": bits, "rounding": rounding})
    w = b.tensor("w", rng.integers(-8, 8, (n, k)).astype(np.int8), "int4", layout="int4_packed")
    m = b.tensor("m", rng.integers(1 << 30, (1 << 31) + 1, (n, k // g)), "uint32")
    acc = b.add("GroupLinear", [q, w, m], "int32", name="acc", attributes={"group_size": g, "shift": 31 - 8})
    bias = b.tensor("bias", rng.integers(-1000, 1000, n).astype(np.int32), "int32")
    mults = [int(v) for v in rng.integers(1 << 30, 1 << 31, n)]
    y = b.add("TokenRequantize", [acc, t, bias], "int8", name="y",
              attributes={"multiplier": mults, "shift": [50] * n, "rounding": rounding})
    b.output(y)
    return b.build()


@given(st.integers(0, 2**32 - 1), st.sampled_from(ROUNDING_MODES), st.sampled_from([4, 8, 16]))
def test_the_chain_equals_the_kernels_and_every_value_keeps_its_range(seed, rounding, bits):
    rng = np.random.default_rng(seed)
    graph = chain_graph(rng, rounding=rounding, bits=bits)
    x = (rng.integers(-(1 << 31), 1 << 31, (2, 5, 64)) >> rng.integers(0, 31, (2, 5, 1))).astype(np.int32)
    x[0, 0] = 0                                                  # a zero row
    trace = intref.run(graph, {"x": x}, trace=True)
    t = token_scale(x, bits=bits)
    assert_identical(trace["t"], t.astype(np.int32), context="scale")
    q = token_quantize(x, t, bits=bits, rounding=rounding)
    assert_identical(trace["q"], q, context="quantized")
    step = {s.node.name: s for s in graph.steps}
    w, m = graph.tensors["w"].data, graph.tensors["m"].data
    acc = group_linear(q, w, m, 23, group_size=32)
    assert_identical(trace["acc"], acc.astype(np.int32), context="acc")
    attrs = step["y"].attrs
    y = token_requantize(acc, t, list(attrs["multiplier"]), list(attrs["shift"]), bias=graph.tensors["bias"].data,
                         rounding=rounding)
    assert_identical(trace["y"], y, context="y")
    for name in ("t", "q", "acc", "y"):
        value = graph.values[name]
        assert value.lo <= int(trace[name].min()) and int(trace[name].max()) <= value.hi, name
    # the spec, one row at a time
    row = x[1, 2].tolist()
    scale = spec.token_scale(row, bits=bits)
    assert int(trace["t"][1, 2, 0]) == scale
    assert trace["q"][1, 2].tolist() == spec.token_quantize(row, scale, bits=bits, rounding=rounding)


def test_token_scale_range_is_exact_for_a_declared_input_range():
    b = GraphBuilder("s", symbols=SYMBOLS)
    x = b.input("x", "int32", ["batch", 4], range=(-1000, 300))
    b.output(b.add("TokenScale", [x], "uint16", name="t"))
    graph = b.build()
    assert (graph.values["t"].lo, graph.values["t"].hi) == (1, 8)            # ceil(1000 / 127) = 8
    out = intref.run(graph, {"x": np.array([[0, 0, 0, 0], [-1000, 300, 0, 1]], np.int32)})["t"]
    assert out.ravel().tolist() == [1, 8]
    b = GraphBuilder("s", symbols=SYMBOLS)
    x = b.input("x", "int32", ["batch", 4], range=(500, 1000))
    b.output(b.add("TokenScale", [x], "uint16", name="t"))
    assert (b.build().values["t"].lo, b.build().values["t"].hi) == (4, 8)    # the smallest row max is 500


def scale_graph(*, scale_type="int32", scale_range=(1, 100), scale_shape=("batch", 1), x_type="int32",
                op="TokenQuantize", out_type="int8", attributes=None, bias=None, x_range=None):
    b = GraphBuilder("s", symbols=SYMBOLS)
    x = b.input("x", x_type, ["batch", 4], range=x_range)
    t = b.input("t", scale_type, list(scale_shape), range=scale_range)
    inputs = [x, t] + ([b.tensor("bias", bias)] if bias is not None else [])
    attrs = attributes if attributes is not None else ({} if op == "TokenQuantize" else {"multiplier": 1, "shift": 0})
    b.output(b.add(op, inputs, out_type, name="node", attributes=attrs))
    return b.build()


def test_a_scale_fed_from_outside_saturates_as_specified():
    graph = scale_graph()
    out = intref.run(graph, {"x": np.array([[1000, -1000, 5, 0]], np.int32), "t": np.array([[1]], np.int32)})["node"]
    assert out.tolist() == [[127, -127, 5, 0]]


def test_every_rejection_names_the_node():
    raises(RangeAnalysisError, lambda: scale_graph(scale_range=None), "node")            # scale may be 0
    raises(RangeAnalysisError, lambda: scale_graph(scale_type="uint32", scale_range=(1, (1 << 30) + 1)), "node")
    raises(TypeMismatchError, lambda: scale_graph(scale_type="int64", scale_range=(1, 2)), "node")
    raises(ShapeMismatchError, lambda: scale_graph(scale_shape=("batch", 2)), "node")
    raises(ShapeMismatchError, lambda: scale_graph(scale_shape=("batch",)), "node")
    raises(ShapeMismatchError, lambda: scale_graph(scale_shape=(3, 1)), "node")          # 3 is not the symbol
    raises(TypeMismatchError, lambda: scale_graph(x_type="uint16"), "node")
    raises(TypeMismatchError, lambda: scale_graph(x_type="int64"), "node")
    raises(AttributeError_, lambda: scale_graph(attributes={"bits": 3}), "node")
    raises(AttributeError_, lambda: scale_graph(attributes={"bits": 17}), "node")
    raises(TypeMismatchError, lambda: scale_graph(op="TokenRequantize", out_type="int64"), "node")
    raises(RangeAnalysisError, lambda: scale_graph(op="TokenRequantize", x_type="int64", scale_range=(1, 4)), "node")
    raises(ShapeMismatchError, lambda: scale_graph(op="TokenRequantize", bias=np.ones(3, np.int32)), "node")
    raises(TypeMismatchError, lambda: scale_graph(op="TokenRequantize", bias=np.ones(4, np.uint8)), "node")
    raises(ShapeMismatchError, lambda: scale_graph(op="TokenRequantize", attributes={"multiplier": [1, 2],
                                                                                       "shift": 0}), "node")
    assert scale_graph(op="TokenRequantize", x_type="int64", x_range=(-(1 << 40), 1 << 40), scale_range=(1, 4),
                       out_type="int32").values["node"].hi == (1 << 31) - 1


def test_token_requantize_range_is_the_per_channel_bound():
    graph = scale_graph(op="TokenRequantize", x_range=(-100, 50), scale_range=(1, 3), bias=np.array([0, 5, -5, 7],
                        np.int32), out_type="int16", attributes={"multiplier": [1 << 30] * 4, "shift": 31})
    value = graph.values["node"]
    assert (value.lo, value.hi) == (-150 - 5, 75 + 7)        # x * t in [-300, 150], halved, plus the bias
    out = intref.run(graph, {"x": np.array([[-100] * 4, [50] * 4], np.int32), "t": np.array([[3], [3]])})["node"]
    assert (int(out.min()), int(out.max())) == (value.lo, value.hi)
