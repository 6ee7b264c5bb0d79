"""MaskedMeanPool: kernel == spec bit for bit (ties, negative sums, empty rows), op == kernel through
a graph, and every rejection path names the node."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.errors import DtypeError, RangeAnalysisError, RangeError, ShapeError, ShapeMismatchError, TypeMismatchError
from intref.inttypes import IntType
from intref.kernels.pool import masked_mean
from intref.spec import pool as spec
from intref.testing import assert_graph_error as raises
from intref.testing import assert_identical


def spec_pool(x, mask):
    out = np.zeros(x.shape[:-2] + x.shape[-1:], np.int64)
    for index in np.ndindex(*x.shape[:-2]):
        for h in range(x.shape[-1]):
            out[index + (h,)] = spec.masked_mean([int(v) for v in x[index + (slice(None), h)]],
                                                 [int(m) for m in mask[index]])
    return out


def test_hand_worked_rows():
    assert spec.masked_mean([1, 2, 9], [1, 1, 0]) == 2          # 3/2 = 1.5 -> 2 (even)
    assert spec.masked_mean([1, 4, 9], [1, 1, 0]) == 2          # 5/2 = 2.5 -> 2 (even)
    assert spec.masked_mean([-1, -4], [1, 1]) == -2             # -2.5 -> -2
    assert spec.masked_mean([-3, -4], [1, 1]) == -4             # -3.5 -> -4
    assert spec.masked_mean([5, 7], [0, 0]) == 0                # no real token
    assert spec.masked_mean([7, 8, 8], [1, 1, 1]) == 8          # 23/3 = 7.67
    with pytest.raises(ValueError):
        spec.masked_mean([1], [2])


@given(st.integers(0, 2**32 - 1), st.sampled_from(["int8", "int16", "int32", "uint8"]), st.integers(1, 3),
       st.integers(1, 9), st.integers(1, 5))
def test_kernel_equals_spec(seed, type_name, batch, seq, hidden):
    rng = np.random.default_rng(seed)
    t = IntType.parse(type_name)
    x = rng.integers(t.lo, t.hi, size=(batch, seq, hidden), endpoint=True).astype(t.storage)
    x[0, 0, 0] = t.hi                                             # the extremes of the type
    x[-1, -1, -1] = t.lo
    mask = (rng.random((batch, seq)) < 0.6).astype(np.int8)
    mask[0] = 0                                                   # an empty row
    assert_identical(masked_mean(x, mask), spec_pool(x, mask), context="masked_mean")


def test_extreme_int32_rows_stay_exact():
    x = np.full((1, 1000, 2), (1 << 31) - 1, np.int32)
    x[0, :, 1] = -(1 << 31)
    assert masked_mean(x, np.ones((1, 1000), np.int8)).tolist() == [[(1 << 31) - 1, -(1 << 31)]]


def test_kernel_rejects_bad_arguments():
    with pytest.raises(DtypeError):
        masked_mean(np.zeros((1, 2, 3), np.int64), np.ones((1, 2), np.int8))
    with pytest.raises(ShapeError):
        masked_mean(np.zeros((1, 2, 3), np.int8), np.ones((1, 3), np.int8))
    with pytest.raises(RangeError) as info:
        masked_mean(np.zeros((1, 2, 3), np.int8), np.array([[1, 2]], np.int8))
    assert info.value.index == (0, 1)


def pool_graph(x_type="int16", mask_range=(0, 1), out_type=None, mask_shape=("batch", "seq")):
    b = GraphBuilder("pool", symbols={"batch": 4, "seq": 8})
    x = b.input("x", x_type, ["batch", "seq", 5])
    mask = b.input("mask", "int8", list(mask_shape), range=mask_range)
    b.output(b.add("MaskedMeanPool", [x, mask], out_type or x_type, name="pool"))
    return b.build()


def test_op_runs_the_kernel_and_declares_shape_and_range():
    graph = pool_graph()
    rng = np.random.default_rng(3)
    x = rng.integers(-(1 << 15), 1 << 15, size=(3, 7, 5)).astype(np.int16)
    mask = np.array([[1] * 7, [1, 1, 0, 0, 0, 0, 0], [0] * 7], np.int8)
    out = intref.run(graph, {"x": x, "mask": mask})["pool"]
    assert_identical(out, spec_pool(x, mask).astype(np.int16), context="MaskedMeanPool")
    assert graph.values["pool"].shape == ("batch", 5)


def test_op_rejections_name_the_node():
    raises(TypeMismatchError, lambda: pool_graph(x_type="int64"), node="pool")
    raises(TypeMismatchError, lambda: pool_graph(out_type="int32"), node="pool")
    raises(RangeAnalysisError, lambda: pool_graph(mask_range=(0, 2)), node="pool")
    raises(ShapeMismatchError, lambda: pool_graph(mask_shape=("batch", 8)), node="pool")
