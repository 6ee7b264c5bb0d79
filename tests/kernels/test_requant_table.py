"""Requantize's table path (``kernels.requant_table``) equals the general kernel on every value of
the input type, for every dialect, both overflow modes, multipliers of both signs and extreme
shifts; the plan takes it only for per-tensor constants and 8- or 16-bit types that fill their
storage, and keeps the elementwise path elsewhere."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.inttypes import IntType
from intref.kernels import requantize
from intref.kernels.requant_table import requantize_by_table, requantize_table, table_fits
from intref.spec.rounding import ROUNDING_MODES
from intref.testing import assert_identical


def requantize_graph(x_type, out_type, multiplier, shift, rounding, overflow):
    b = GraphBuilder("rq", symbols={"seq": 1 << 16})
    x = b.input("x", x_type, ["seq"])
    b.output(b.add("Requantize", [x], out_type, name="rq", attributes={
        "multiplier": multiplier, "shift": shift, "rounding": rounding, "overflow": overflow}))
    return b.build()


@given(st.sampled_from(["int8", "uint8", "int16", "uint16"]), st.sampled_from(["int8", "uint8", "int16", "int32"]),
       st.integers(-(1 << 31), 1 << 31), st.integers(0, 70), st.sampled_from(ROUNDING_MODES),
       st.sampled_from(["saturate", "wrap"]))
def test_table_path_equals_the_general_kernel_on_every_input_value(x_name, out_name, m, s, rounding, overflow):
    graph = requantize_graph(x_name, out_name, m, s, rounding, overflow)
    path = graph.steps[0].prepared.path
    assert path.startswith(("table (", "identity (")), path
    x_type, out_type = IntType.parse(x_name), IntType.parse(out_name)
    x = np.arange(x_type.lo, x_type.hi + 1, dtype=np.int64)
    expected = requantize(x, m, s, rounding=rounding, bits=out_type.bits, signed=out_type.signed, overflow=overflow)
    got = intref.run(graph, {"x": x.astype(x_type.storage)})["rq"]
    assert_identical(got.astype(np.int64), expected.astype(np.int64), context=f"{x_name} -> {out_name} via {path}")


def test_plan_takes_the_table_only_where_it_fits():
    assert table_fits(IntType.parse("int8"), False) and table_fits(IntType.parse("uint16"), False)
    assert not table_fits(IntType.parse("int8"), True)            # per-channel constants
    assert not table_fits(IntType.parse("int4"), False)           # int4 stored in int8: bits are not the index
    assert not table_fits(IntType.parse("int22"), False) and not table_fits(IntType.parse("int32"), False)
    graph = requantize_graph("int32", "int8", 1 << 30, 31, "half_even", "saturate")
    assert not graph.steps[0].prepared.path.startswith("table")


@pytest.mark.parametrize("x_name", ["int8", "int16"])
def test_index_is_the_unsigned_view_of_the_input(x_name):
    x_type = IntType.parse(x_name)
    table = requantize_table(x_type, lambda v: v * 3)
    x = np.array([x_type.lo, -1, 0, 1, x_type.hi], dtype=x_type.storage)
    assert_identical(requantize_by_table(x, table), x.astype(np.int64) * 3)


@pytest.mark.parametrize("x_name, out_name", [("int8", "int8"), ("int8", "int16"), ("uint8", "uint8"), ("int16", "int16")])
@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_an_identity_table_is_skipped_exactly_where_every_value_maps_to_itself(x_name, out_name, rounding):
    """Multipliers just below 2**31 at shift 31 (a scale ratio a hair under 1, as between two I-BERT
    activation quantizers of one tensor): the op is the identity down to a boundary multiplier, and
    is planned as a table again one step past it."""
    x_type = IntType.parse(x_name)
    x = np.arange(x_type.lo, x_type.hi + 1, dtype=np.int64)

    def maps_to_itself(m):
        return bool(np.array_equal(requantize(x, m, 31, rounding=rounding, bits=x_type.bits, signed=x_type.signed,
                                              overflow="saturate").astype(np.int64), x))
    lo, hi = (1 << 30), (1 << 31)                  # maps_to_itself(hi) and not maps_to_itself(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if maps_to_itself(mid) else (mid, hi)
    for m, identity in ((hi, True), (lo, False)):
        graph = requantize_graph(x_name, out_name, m, 31, rounding, "saturate")
        path = graph.steps[0].prepared.path
        assert path.startswith("identity (" if identity else "table ("), (m, path)
        out_type = IntType.parse(out_name)
        expected = requantize(x, m, 31, rounding=rounding, bits=out_type.bits, signed=out_type.signed, overflow="saturate")
        got = intref.run(graph, {"x": x.astype(x_type.storage)})["rq"]
        assert got.dtype == out_type.storage
        assert_identical(got.astype(np.int64), expected.astype(np.int64), context=f"m={m} via {path}")
