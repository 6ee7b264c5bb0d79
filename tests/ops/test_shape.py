"""Data movement: Reshape, Transpose, SplitHeads, MergeHeads, Slice, Gather == plain NumPy, symbolic
shapes, the range passes through unchanged, outputs are new arrays, every rejection names the node."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.errors import AttributeError_, GraphError, ShapeMismatchError, TypeMismatchError
from intref.inttypes import IntType
from intref.testing import assert_graph_error as raises
from intref.testing import assert_identical

SYMBOLS = {"batch": 3, "seq": 5}
TYPES = ["int8", "int4", "uint9", "int32", "int64", "uint64", "uint1"]



def shape_graph(op, attributes, *, x_shape=("batch", "seq", 12), x_type="int8", out_type=None, x_range=None):
    b = GraphBuilder("shape", symbols=SYMBOLS)
    x = b.input("x", x_type, list(x_shape), range=x_range)
    b.output(b.add(op, [x], out_type or x_type, name="op", attributes=attributes))
    return b.build()


# (op, attributes, input shape, inferred output shape, NumPy reference)
CASES = [
    ("Reshape", {"shape": ["batch", "seq", 3, 4]}, ("batch", "seq", 12), ("batch", "seq", 3, 4),
     lambda x: x.reshape(x.shape[0], x.shape[1], 3, 4)),
    ("Reshape", {"shape": ["batch", "seq", -1]}, ("batch", "seq", 3, 4), ("batch", "seq", 12),
     lambda x: x.reshape(x.shape[0], x.shape[1], 12)),
    ("Reshape", {"shape": [-1, "seq", 2]}, (6, "seq", 2, 2), (12, "seq", 2),
     lambda x: x.reshape(12, x.shape[1], 2)),
    ("Reshape", {"shape": ["seq", "batch", 12]}, ("batch", "seq", 12), ("seq", "batch", 12),
     lambda x: x.reshape(x.shape[1], x.shape[0], 12)),
    ("Transpose", {"perm": [0, 2, 1, 3]}, ("batch", "seq", 4, 3), ("batch", 4, "seq", 3),
     lambda x: x.transpose(0, 2, 1, 3)),
    ("Transpose", {"perm": [0, 1, 2]}, ("batch", "seq", 12), ("batch", "seq", 12), lambda x: x),
    ("Transpose", {"perm": [2, 0, 1]}, ("batch", "seq", 12), (12, "batch", "seq"), lambda x: x.transpose(2, 0, 1)),
    ("SplitHeads", {"heads": 4}, ("batch", "seq", 12), ("batch", 4, "seq", 3),
     lambda x: x.reshape(x.shape[0], x.shape[1], 4, 3).transpose(0, 2, 1, 3)),
    ("SplitHeads", {"heads": 1}, ("seq", 12), (1, "seq", 12), lambda x: x.reshape(1, x.shape[0], 12)),
    ("MergeHeads", {}, ("batch", 4, "seq", 3), ("batch", "seq", 12),
     lambda x: x.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], 12)),
    ("MergeHeads", {}, (1, "seq", 12), ("seq", 12), lambda x: x.reshape(x.shape[1], 12)),
    ("Slice", {"axis": -1, "start": 2, "end": 5}, ("batch", "seq", 12), ("batch", "seq", 3), lambda x: x[..., 2:5]),
    ("Slice", {"axis": 1, "start": 0, "end": 1}, ("batch", "seq", 12), ("batch", 1, 12), lambda x: x[:, 0:1]),
    ("Slice", {"axis": 0, "start": 0, "end": 4}, (4, "seq"), (4, "seq"), lambda x: x[0:4]),
    ("Gather", {"axis": 1, "index": 0}, ("batch", "seq", 12), ("batch", 12), lambda x: x[:, 0]),
    ("Gather", {"axis": -1, "index": 11}, ("batch", "seq", 12), ("batch", "seq"), lambda x: x[..., 11]),
    ("Gather", {"axis": 0, "index": 0}, ("seq", 12), (12,), lambda x: x[0]),
    ("Gather", {"axis": 0, "index": 3}, (4,), (), lambda x: np.array(x[3])),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@settings(max_examples=40)                                    # 17 cases: keep the total modest
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 3), seq=st.integers(1, 5), type_name=st.sampled_from(TYPES))
def test_data_movement_equals_numpy(case, seed, batch, seq, type_name):
    op, attributes, in_shape, out_shape, reference = case
    rng = np.random.default_rng(seed)
    t = IntType.parse(type_name)
    x_range = (t.lo + 1, t.hi - 1) if t.bits > 2 else None
    graph = shape_graph(op, attributes, x_shape=in_shape, x_type=type_name, x_range=x_range)
    value = graph.values["op"]
    assert value.shape == out_shape
    lo, hi = x_range or (t.lo, t.hi)
    assert (value.lo, value.hi) == (lo, hi)                   # values move, they do not change
    concrete = tuple({"batch": batch, "seq": seq}.get(d, d) for d in in_shape)
    x = rng.integers(lo, hi, size=concrete, endpoint=True, dtype=np.uint64 if t.lo == 0 else np.int64)
    x.flat[0] = lo
    x = x.astype(t.storage)
    before = x.copy()
    out = intref.run(graph, {"x": x})["op"]
    assert_identical(out, reference(x), context=op)
    assert out.shape == tuple({"batch": batch, "seq": seq}.get(d, d) for d in out_shape)
    assert not np.shares_memory(out, x), f"{op} returned a view of its input"
    assert_identical(x, before, context="the feed is unchanged")


def test_split_then_merge_heads_round_trip():
    b = GraphBuilder("heads", symbols=SYMBOLS)
    x = b.input("x", "int16", ["batch", "seq", 12])
    split = b.add("SplitHeads", [x], "int16", name="split", attributes={"heads": 3})
    b.output(b.add("MergeHeads", [split], "int16", name="merge"))
    graph = b.build()
    assert graph.values["split"].shape == ("batch", 3, "seq", 4)
    x = np.arange(2 * 5 * 12, dtype=np.int16).reshape(2, 5, 12)
    out = intref.run(graph, {"x": x}, trace=True)
    assert_identical(out["merge"], x)
    assert_identical(out["split"][1, 2, 3], x[1, 3, 8:12])     # head 2 of token 3 holds channels 8..11


def test_shape_op_rejections():
    for op, attributes, in_shape, _, _ in CASES:                # the output type must be the input type
        raises(TypeMismatchError, lambda: shape_graph(op, attributes, x_shape=in_shape, out_type="int16"), "op")
        raises(TypeMismatchError, lambda: shape_graph(op, attributes, x_shape=in_shape, out_type="uint8"), "op")
    # Reshape
    raises(ShapeMismatchError, lambda: shape_graph("Reshape", {"shape": ["batch", "seq", 5]}), "op")
    raises(ShapeMismatchError, lambda: shape_graph("Reshape", {"shape": ["batch", -1, 5]}), "op")       # drops seq
    raises(ShapeMismatchError, lambda: shape_graph("Reshape", {"shape": ["batch", "seq", 5, -1]}), "op")  # 12 % 5
    raises(ShapeMismatchError, lambda: shape_graph("Reshape", {"shape": ["batch", "batch", 12]}), "op")
    raises(ShapeMismatchError, lambda: shape_graph("Reshape", {"shape": ["batch", "seq", 0, -1]}), "op")
    raises(AttributeError_, lambda: shape_graph("Reshape", {"shape": ["batch", "seq", -1, -1]}), "op")
    raises(AttributeError_, lambda: shape_graph("Reshape", {"shape": ["batch", "seq", -2, -6]}), "op")
    raises(AttributeError_, lambda: shape_graph("Reshape", {"shape": ["batch", "seq", 12.0]}), "op")
    raises(AttributeError_, lambda: shape_graph("Reshape", {}), "op")
    # Transpose
    raises(ShapeMismatchError, lambda: shape_graph("Transpose", {"perm": [0, 1]}), "op")
    raises(ShapeMismatchError, lambda: shape_graph("Transpose", {"perm": [0, 1, 1]}), "op")
    raises(ShapeMismatchError, lambda: shape_graph("Transpose", {"perm": [0, 1, 3]}), "op")
    raises(AttributeError_, lambda: shape_graph("Transpose", {"perm": "021"}), "op")
    # SplitHeads / MergeHeads
    raises(ShapeMismatchError, lambda: shape_graph("SplitHeads", {"heads": 5}), "op")
    raises(ShapeMismatchError, lambda: shape_graph("SplitHeads", {"heads": 2}, x_shape=("batch", "seq")), "op")
    raises(ShapeMismatchError, lambda: shape_graph("SplitHeads", {"heads": 1}, x_shape=(12,)), "op")
    raises(AttributeError_, lambda: shape_graph("SplitHeads", {"heads": 0}), "op")
    raises(AttributeError_, lambda: shape_graph("SplitHeads", {}), "op")
    raises(ShapeMismatchError, lambda: shape_graph("MergeHeads", {}, x_shape=("batch", "seq", 3)), "op")
    raises(ShapeMismatchError, lambda: shape_graph("MergeHeads", {}, x_shape=(4, "seq")), "op")
    raises(AttributeError_, lambda: shape_graph("MergeHeads", {"heads": 4}, x_shape=(4, "seq", 3)), "op")
    # Slice
    raises(ShapeMismatchError, lambda: shape_graph("Slice", {"axis": -1, "start": 10, "end": 13}), "op")
    raises(ShapeMismatchError, lambda: shape_graph("Slice", {"axis": 1, "start": 0, "end": 2}), "op")   # symbolic
    raises(ShapeMismatchError, lambda: shape_graph("Slice", {"axis": 3, "start": 0, "end": 1}), "op")
    raises(ShapeMismatchError, lambda: shape_graph("Slice", {"axis": -4, "start": 0, "end": 1}), "op")
    raises(AttributeError_, lambda: shape_graph("Slice", {"axis": 2, "start": 3, "end": 3}), "op")
    raises(AttributeError_, lambda: shape_graph("Slice", {"axis": 2, "start": -1, "end": 3}), "op")
    raises(AttributeError_, lambda: shape_graph("Slice", {"axis": 2, "start": 0}), "op")
    # Gather
    raises(ShapeMismatchError, lambda: shape_graph("Gather", {"axis": 2, "index": 12}), "op")
    raises(ShapeMismatchError, lambda: shape_graph("Gather", {"axis": 1, "index": 1}), "op")          # symbolic
    raises(ShapeMismatchError, lambda: shape_graph("Gather", {"axis": 3, "index": 0}), "op")
    raises(ShapeMismatchError, lambda: shape_graph("Gather", {"axis": 0, "index": 0}, x_shape=()), "op")
    raises(AttributeError_, lambda: shape_graph("Gather", {"axis": 1, "index": -1}), "op")
    raises(AttributeError_, lambda: shape_graph("Gather", {"axis": True, "index": 0}), "op")

    def two_inputs():
        b = GraphBuilder("shape", symbols=SYMBOLS)
        x = b.input("x", "int8", ["seq", 12])
        b.output(b.add("Transpose", [x, x], "int8", name="op", attributes={"perm": [1, 0]}))
        b.build()
    raises(GraphError, two_inputs, "op")
