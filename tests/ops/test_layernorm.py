"""ILayerNorm: output == intref.kernels.i_layernorm with the same integer constants, symbolic
shapes, the derived range sound and attained, and every rejection path names the node."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.errors import AttributeError_, GraphError, RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from intref.inttypes import IntType
from intref.kernels import i_layernorm
from intref.spec.layernorm import LayerNormParams
from intref.spec.layernorm_bounds import min_safe_shift
from intref.testing import assert_graph_error as raises
from intref.testing import assert_identical

SYMBOLS = {"batch": 3, "seq": 6}



def layernorm_graph(channels, bias_int, *, shift=None, x_type="int22", x_shape=None, out_type="int64", x_range=None):
    b = GraphBuilder("ln", symbols=SYMBOLS)
    x = b.input("x", x_type, list(x_shape) if x_shape is not None else ["batch", "seq", channels], range=x_range)
    attributes = {"bias_int": bias_int} if shift is None else {"bias_int": bias_int, "shift": shift}
    b.output(b.add("ILayerNorm", [x], out_type, name="ln", attributes=attributes))
    return b.build()


@given(st.integers(0, 2**32 - 1), st.integers(1, 24), st.sampled_from(["int22", "int8", "int32", "int58", "int2"]),
       st.integers(0, 3))
def test_layernorm_equals_kernel_and_range_is_sound(seed, channels, x_type, extra_shift):
    rng = np.random.default_rng(seed)
    t = IntType.parse(x_type)
    shift = min_safe_shift(channels, t.bits) + extra_shift
    bias = [int(v) for v in rng.integers(-(1 << 40), 1 << 40, size=channels)]
    graph = layernorm_graph(channels, bias, shift=shift, x_type=x_type)
    params = LayerNormParams(channels=channels, shift=shift, bias_int=tuple(bias), input_bits=t.bits)
    value = graph.values["ln"]
    assert value.shape == ("batch", "seq", channels)
    assert (value.lo, value.hi) == params.output_range()
    shape = (2, 3, channels)
    alternating = np.where(np.indices(shape).sum(axis=0) % 2 == 0, t.lo, t.hi)
    one_hot = np.zeros(shape, np.int64)
    one_hot[..., 0] = t.hi
    for x in (np.full(shape, t.lo), np.full(shape, t.hi), alternating, one_hot,
              rng.integers(t.lo, t.hi, size=shape, endpoint=True),
              np.clip(rng.integers(-3, 4, size=shape), t.lo, t.hi)):
        x = x.astype(t.storage)
        out = intref.run(graph, {"x": x})["ln"]
        assert_identical(out, i_layernorm(x, params), context="ILayerNorm == kernel")
        assert value.lo <= out.min() and out.max() <= value.hi


def test_layernorm_range_attained_and_constant_row():
    """shift 0: a row that is 0 but for one +-1 has std 1, so its norm reaches +-2**30, plus the bias."""
    bias = [5, -7, 100, 0, -100, 3]
    graph = layernorm_graph(6, bias, shift=0, x_shape=["seq", 6])
    value = graph.values["ln"]
    assert (value.lo, value.hi) == (-(1 << 30) - 100, (1 << 30) + 100)
    x = np.zeros((3, 6), dtype=np.int32)
    x[0, 2], x[1, 4] = 1, -1                                  # +1 at the largest bias, -1 at the smallest
    out = intref.run(graph, {"x": x})["ln"]
    assert (int(out.max()), int(out.min())) == (value.hi, value.lo)
    assert_identical(out[2], np.array(bias, dtype=np.int64), context="a constant row normalises to the bias")
    assert graph.may_overflow == ()
    assert layernorm_graph(6, bias, shift=0, out_type="int31", x_shape=["seq", 6]).may_overflow == ("ln",)


def test_layernorm_rejections():
    ok = [0] * 8
    raises(ShapeMismatchError, lambda: layernorm_graph(8, [0] * 7), "ln")                  # bias per channel
    raises(ShapeMismatchError, lambda: layernorm_graph(8, ok, x_shape=["batch", "seq"]), "ln")
    raises(ShapeMismatchError, lambda: layernorm_graph(8, ok, x_shape=[]), "ln")
    raises(TypeMismatchError, lambda: layernorm_graph(8, ok, x_type="uint16"), "ln")
    raises(TypeMismatchError, lambda: layernorm_graph(8, ok, x_type="int64"), "ln")
    raises(TypeMismatchError, lambda: layernorm_graph(8, ok, x_type="int1"), "ln")
    raises(AttributeError_, lambda: layernorm_graph(8, ok, shift=63), "ln")
    raises(AttributeError_, lambda: layernorm_graph(8, ok, shift=-1), "ln")
    raises(AttributeError_, lambda: layernorm_graph(8, 0), "ln")                           # not a list
    raises(AttributeError_, lambda: layernorm_graph(8, [0.5] * 8), "ln")

    def missing_bias():
        b = GraphBuilder("ln", symbols=SYMBOLS)
        b.output(b.add("ILayerNorm", [b.input("x", "int22", ["seq", 8])], "int64", name="ln"))
        b.build()
    raises(AttributeError_, missing_bias, "ln")
    # shift 0 is safe for int22 rows of 8 but not for int60 rows: sum((y >> shift)**2) could leave int64
    layernorm_graph(8, ok, shift=0)
    raises(RangeAnalysisError, lambda: layernorm_graph(8, ok, shift=0, x_type="int60"), "ln")
    layernorm_graph(8, ok, shift=min_safe_shift(8, 60), x_type="int60")
    raises(RangeAnalysisError, lambda: layernorm_graph(8, ok, shift=62, x_type="int63"), "ln")   # row sum
    raises(RangeAnalysisError, lambda: layernorm_graph(8, [(1 << 63) - 10] + [0] * 7), "ln")       # bias leaves int64

    def two_inputs():
        b = GraphBuilder("ln", symbols=SYMBOLS)
        x = b.input("x", "int22", ["seq", 8])
        b.output(b.add("ILayerNorm", [x, x], "int64", name="ln", attributes={"bias_int": ok}))
        b.build()
    raises(GraphError, two_inputs, "ln")


def test_output_scan_skipped_only_where_the_output_range_is_inside_the_declared_type():
    """The range [-2**30 - 100, 2**30 + 100] fits int32 (``outputs_in_type``: no scan) and not int31,
    where the interpreter keeps its check and a row reaching 2**30 + 100 raises."""
    from intref.errors import OverflowCheckError
    bias = [5, -7, 100, 0, -100, 3]
    x = np.zeros((2, 6), dtype=np.int32)
    x[0, 2] = 1                                               # norm 2**30 at the largest bias
    fits = layernorm_graph(6, bias, shift=0, out_type="int32", x_shape=["seq", 6])
    assert fits.steps[0].prepared.outputs_in_type and "proven in int32" in fits.steps[0].prepared.path
    out = intref.run(fits, {"x": x})["ln"]
    assert out.dtype == np.int32 and int(out.max()) == (1 << 30) + 100
    narrow = layernorm_graph(6, bias, shift=0, out_type="int31", x_shape=["seq", 6])
    assert not narrow.steps[0].prepared.outputs_in_type and "proven" not in narrow.steps[0].prepared.path
    with np.testing.assert_raises(OverflowCheckError):
        intref.run(narrow, {"x": x})
