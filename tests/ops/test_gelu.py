"""IGelu: output == intref.kernels.i_gelu with the same integer constants, per tensor and per channel;
the derived range is sound (every int16 input swept) and as tight as GeluParams.output_range claims;
every rejection path names the node."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.errors import AttributeError_, GraphError, RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from intref.inttypes import IntType
from intref.kernels import i_gelu
from intref.quant import prepare_gelu
from intref.spec.gelu import GeluParams
from intref.testing import assert_graph_error as raises
from intref.testing import assert_identical

SYMBOLS = {"batch": 256, "seq": 8}
C = 4



def constants(params):
    return {"b_int": params.b_int, "c_int": params.c_int, "shift_int": params.shift_int,
            "guard_shift": params.guard_shift}


def as_attribute(value):
    return list(value) if isinstance(value, tuple) else value


def gelu_graph(attributes, *, x_type="int32", x_shape=("batch", "seq", C), x_range=None, out_type="int64"):
    b = GraphBuilder("gelu", symbols=SYMBOLS)
    x = b.input("x", x_type, list(x_shape), range=x_range)
    attributes = {k: as_attribute(v) for k, v in attributes.items()}
    b.output(b.add("IGelu", [x], out_type, name="gelu", attributes=attributes))
    return b.build()


def kernel_params(attributes, bits):
    return GeluParams(**{k: v for k, v in attributes.items()}, input_bits=bits)


def test_every_int16_input_matches_kernel_and_range_is_sound_and_tight():
    params = prepare_gelu(4 / 32767, input_bits=16)
    attributes = constants(params)
    graph = gelu_graph(attributes, x_type="int16", x_shape=["batch", 256])
    x = np.arange(-(1 << 15), 1 << 15, dtype=np.int64).astype(np.int16).reshape(256, 256)
    out = intref.run(graph, {"x": x})["gelu"]
    assert_identical(out, i_gelu(x, kernel_params(attributes, 16)), context="IGelu == kernel")
    value = graph.values["gelu"]
    assert value.shape == ("batch", 256)
    assert (value.lo, value.hi) == params.output_range(-(1 << 15), (1 << 15) - 1)
    true_lo, true_hi = int(out.min()), int(out.max())
    assert value.lo <= true_lo and true_hi <= value.hi
    slack = min(1 << 15, -params.b_int)                       # GeluParams.output_range's tightness claim
    assert true_lo - value.lo < slack and value.hi - true_hi < slack


@given(st.integers(0, 2**32 - 1), st.sampled_from([(32, 2e-4, 14), (22, 4 / (2**21 - 1), 14), (8, 4 / 127, "auto"),
                                                   (32, 4 / (2**31 - 1), "auto"), (16, 1e-3, 14)]),
       st.booleans(), st.booleans())
def test_gelu_equals_kernel_and_is_sound(seed, setting, per_channel, narrow):
    rng = np.random.default_rng(seed)
    bits, scale, guard = setting
    scales = scale * rng.uniform(0.5, 2.0, size=C) if per_channel else scale
    params = prepare_gelu(scales, input_bits=bits, guard_shift=guard)
    attributes = constants(params)
    x_type = f"int{bits}"
    t = IntType.parse(x_type)
    x_range = (t.lo // 3, t.hi // 5) if narrow else None
    lo, hi = x_range if narrow else (t.lo, t.hi)
    graph = gelu_graph(attributes, x_type=x_type, x_range=x_range)
    value = graph.values["gelu"]
    assert value.shape == ("batch", "seq", C)
    assert (value.lo, value.hi) == kernel_params(attributes, bits).output_range(lo, hi)
    shape = (2, 3, C)
    alternating = np.where(np.indices(shape).sum(axis=0) % 2 == 0, lo, hi)
    t_clip = -min(params.b_int) if per_channel else -params.b_int
    near_clip = np.clip(rng.integers(-t_clip - 3, t_clip + 4, size=shape), lo, hi)
    for x in (np.full(shape, lo), np.full(shape, hi), alternating, np.zeros(shape, np.int64), near_clip,
              rng.integers(lo, hi, size=shape, endpoint=True)):
        x = x.astype(t.storage)
        out = intref.run(graph, {"x": x})["gelu"]
        assert_identical(out, i_gelu(x, kernel_params(attributes, bits)), context="IGelu == kernel")
        assert value.lo <= out.min() and out.max() <= value.hi


def test_gelu_declared_type_narrower_than_worst_case():
    params = prepare_gelu(4 / 32767, input_bits=16)
    graph = gelu_graph(constants(params), x_type="int16", out_type="int32")
    assert graph.may_overflow == ()
    narrow = gelu_graph(constants(params), x_type="int16", out_type="int16")
    assert narrow.may_overflow == ("gelu",)


def test_gelu_rejections():
    params = prepare_gelu(4 / 32767, input_bits=16)
    ok = constants(params)
    raises(AttributeError_, lambda: gelu_graph({**ok, "b_int": 5}, x_type="int16"), "gelu")    # b_int must be <= 0
    raises(AttributeError_, lambda: gelu_graph({**ok, "guard_shift": 63}, x_type="int16"), "gelu")
    raises(AttributeError_, lambda: gelu_graph({**ok, "c_int": 1.5}, x_type="int16"), "gelu")
    raises(AttributeError_, lambda: gelu_graph({k: v for k, v in ok.items() if k != "shift_int"}), "gelu")
    raises(AttributeError_, lambda: gelu_graph({**ok, "scale": 1}, x_type="int16"), "gelu")
    raises(ShapeMismatchError, lambda: gelu_graph({**ok, "b_int": [params.b_int] * (C + 1)}, x_type="int16"), "gelu")
    raises(ShapeMismatchError, lambda: gelu_graph({**ok, "b_int": [params.b_int] * C}, x_type="int16",
                                                  x_shape=["batch", "seq"]), "gelu")
    raises(TypeMismatchError, lambda: gelu_graph(ok, x_type="uint16"), "gelu")
    raises(TypeMismatchError, lambda: gelu_graph(ok, x_type="int64"), "gelu")
    raises(TypeMismatchError, lambda: gelu_graph(ok, x_type="int1"), "gelu")
    # constants that are safe for int16 inputs overflow int64 for int63 inputs: |q| * |y + K| ~ 2**78
    gelu_graph(ok, x_type="int16")
    raises(RangeAnalysisError, lambda: gelu_graph(ok, x_type="int63"), "gelu")
    # the fine-scale int32 constants need guard 45; the reference's guard 14 overflows int64
    fine = constants(prepare_gelu(4 / (2**31 - 1), input_bits=32, guard_shift="auto"))
    gelu_graph(fine)
    raises(RangeAnalysisError, lambda: gelu_graph({**fine, "guard_shift": 14}), "gelu")

    def two_inputs():
        b = GraphBuilder("gelu", symbols=SYMBOLS)
        x = b.input("x", "int16", ["seq"])
        b.output(b.add("IGelu", [x, x], "int64", name="gelu", attributes=ok))
        b.build()
    raises(GraphError, two_inputs, "gelu")


def test_output_scan_skipped_only_where_the_type_range_is_proven_inside_the_output_type():
    """``outputs_in_type`` (no min/max scan of the output) is planned from the input TYPE's output
    range: an output type one bit too narrow keeps the scan, and a value outside it still raises."""
    from intref.errors import OverflowCheckError
    params = prepare_gelu(4 / 32767, input_bits=16)
    lo, hi = params.output_range(-(1 << 15), (1 << 15) - 1)
    wide = max(hi.bit_length(), (-lo - 1).bit_length()) + 1            # the narrowest signed type holding both
    x = np.arange(-(1 << 15), 1 << 15, dtype=np.int64).astype(np.int16).reshape(256, 256)
    exact = i_gelu(x, kernel_params(constants(params), 16))
    fits = gelu_graph(constants(params), x_type="int16", x_shape=["batch", 256], out_type=f"int{wide}")
    assert fits.steps[0].prepared.outputs_in_type and "proven" in fits.steps[0].prepared.path
    out = intref.run(fits, {"x": x})["gelu"]
    assert_identical(out.astype(np.int64), exact)
    narrow = gelu_graph(constants(params), x_type="int16", x_shape=["batch", 256], out_type=f"int{wide - 1}")
    assert not narrow.steps[0].prepared.outputs_in_type and "proven" not in narrow.steps[0].prepared.path
    assert exact.min() < -(1 << (wide - 2))                           # the sweep reaches past int<wide - 1>
    with np.testing.assert_raises(OverflowCheckError):
        intref.run(narrow, {"x": x})
