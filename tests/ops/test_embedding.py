"""Embedding and PositionIds: output == plain NumPy / hand-computed values, symbolic shapes, sound
and exact ranges, and every rejection path names the node with the specific GraphError."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.inttypes import IntType
from intref.errors import AttributeError_, GraphError, RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from intref.testing import assert_graph_error as raises
from intref.testing import assert_identical

SYMBOLS = {"batch": 4, "seq": 16}


def embedding_graph(table, *, ids_type="int32", ids_range=None, out_type=None, table_type=None, attributes=None):
    b = GraphBuilder("emb", symbols=SYMBOLS)
    rows = table.shape[0]
    ids = b.input("ids", ids_type, ["batch", "seq"], range=ids_range if ids_range else (0, rows - 1))
    t = b.tensor("table", table, table_type)
    out = out_type or (table_type or str(table.dtype))
    b.output(b.add("Embedding", [ids, t], out, name="emb", attributes=attributes))
    return b.build()


def position_graph(mode, *, out_type="int32", ids_type="int32", **attributes):
    b = GraphBuilder("pos", symbols=SYMBOLS)
    ids = b.input("ids", ids_type, ["batch", "seq"])
    b.output(b.add("PositionIds", [ids], out_type, name="pos", attributes=dict(mode=mode, **attributes)))
    return b.build()



# --- Embedding --------------------------------------------------------------------------------------

@given(st.integers(1, 50), st.integers(1, 8), st.integers(1, 4), st.integers(1, 16), st.integers(0, 2**32 - 1),
       st.sampled_from(["int8", "int16", "int4"]), st.sampled_from(["int32", "uint16", "int16"]))
def test_embedding_equals_numpy_take(rows, width, batch, seq, seed, table_type, ids_type):
    rng = np.random.default_rng(seed)
    t = IntType.parse(table_type)
    table = rng.integers(t.lo, t.hi, size=(rows, width), endpoint=True).astype(t.storage)
    graph = embedding_graph(table, ids_type=ids_type, table_type=table_type)
    ids = rng.integers(0, rows, size=(batch, seq)).astype(IntType.parse(ids_type).storage)
    ids.flat[0], ids.flat[-1] = 0, rows - 1                       # both ends of the table
    out = intref.run(graph, {"ids": ids})["emb"]
    assert_identical(out, table[ids.astype(np.int64)], context="Embedding")
    assert graph.values["emb"].shape == ("batch", "seq", width)
    assert out.shape == (batch, seq, width)
    value = graph.values["emb"]
    assert (value.lo, value.hi) == (int(table.min()), int(table.max()))   # exact: the table's own range
    assert value.lo <= out.min() and out.max() <= value.hi


def test_embedding_range_attained():
    table = np.array([[-128, 5], [7, 127], [0, 0]], dtype=np.int8)
    graph = embedding_graph(table)
    out = intref.run(graph, {"ids": np.array([[0, 1, 2]], dtype=np.int32)})["emb"]
    assert (int(out.min()), int(out.max())) == (graph.values["emb"].lo, graph.values["emb"].hi) == (-128, 127)


def test_embedding_narrow_declared_id_range_is_enough():
    table = np.arange(20, dtype=np.int8).reshape(10, 2)
    graph = embedding_graph(table, ids_range=(3, 5))
    out = intref.run(graph, {"ids": np.array([[3, 5]], dtype=np.int32)})["emb"]
    assert_identical(out, np.array([[[6, 7], [10, 11]]], dtype=np.int8))


def test_embedding_rejections():
    table = np.zeros((10, 4), dtype=np.int8)
    raises(RangeAnalysisError, lambda: embedding_graph(table, ids_range=(0, 10)), "emb")       # one past the table
    raises(RangeAnalysisError, lambda: embedding_graph(table, ids_range=(-1, 5)), "emb")
    with pytest.raises(RangeAnalysisError, match="declare the ids' range"):                   # no range declared
        b = GraphBuilder("emb", symbols=SYMBOLS)
        b.output(b.add("Embedding", [b.input("ids", "int32", ["seq"]), b.tensor("t", table)], "int8", name="e"))
        b.build()
    raises(TypeMismatchError, lambda: embedding_graph(table, ids_type="int64"), "emb")
    raises(TypeMismatchError, lambda: embedding_graph(table.astype(np.uint8)), "emb")          # unsigned table
    raises(TypeMismatchError, lambda: embedding_graph(table.astype(np.int32)), "emb")          # 32-bit table
    raises(TypeMismatchError, lambda: embedding_graph(table, out_type="int16"), "emb")         # output != table type
    raises(ShapeMismatchError, lambda: embedding_graph(np.zeros((2, 3, 4), dtype=np.int8)), "emb")
    raises(AttributeError_, lambda: embedding_graph(table, attributes={"axis": 0}), "emb")

    def table_not_stored():
        b = GraphBuilder("emb", symbols=SYMBOLS)
        ids = b.input("ids", "int32", ["seq"], range=(0, 3))
        t = b.input("t", "int8", [4, 4])
        b.output(b.add("Embedding", [ids, t], "int8", name="emb"))
        b.build()
    raises(ShapeMismatchError, table_not_stored, "emb")

    def one_input():
        b = GraphBuilder("emb", symbols=SYMBOLS)
        b.output(b.add("Embedding", [b.input("ids", "int32", ["seq"], range=(0, 3))], "int8", name="emb"))
        b.build()
    error = raises(GraphError, one_input, "emb")
    assert "takes 2..2 inputs" in str(error)


# --- PositionIds ------------------------------------------------------------------------------------

def test_position_ids_arange_hand_computed():
    graph = position_graph("arange", start=2)
    ids = np.array([[5, 6, 7], [8, 9, 1]], dtype=np.int32)
    out = intref.run(graph, {"ids": ids})["pos"]
    assert_identical(out, np.array([[2, 3, 4], [2, 3, 4]], dtype=np.int32))
    assert graph.values["pos"].shape == ("batch", "seq")
    assert (graph.values["pos"].lo, graph.values["pos"].hi) == (2, 2 + SYMBOLS["seq"] - 1)
    full = intref.run(graph, {"ids": np.zeros((1, SYMBOLS["seq"]), dtype=np.int32)})["pos"]
    assert (int(full.min()), int(full.max())) == (2, 17)          # the derived range is attained
    default = intref.run(position_graph("arange"), {"ids": ids})["pos"]
    assert_identical(default, np.array([[0, 1, 2], [0, 1, 2]], dtype=np.int32))


def test_position_ids_padding_aware_hand_computed():
    """RoBERTa / I-BERT: padding_idx + cumsum(ids != pad) on real tokens, padding_idx on pads."""
    graph = position_graph("padding_aware", padding_idx=1, out_type="int16")
    ids = np.array([[0, 31, 7, 1, 1],
                    [0, 1, 1, 1, 1],
                    [5, 1, 6, 1, 9],
                    [1, 1, 1, 1, 1]], dtype=np.int32)
    expected = np.array([[2, 3, 4, 1, 1],
                         [2, 1, 1, 1, 1],
                         [2, 1, 3, 1, 4],
                         [1, 1, 1, 1, 1]], dtype=np.int16)
    assert_identical(intref.run(graph, {"ids": ids})["pos"], expected)
    other = position_graph("padding_aware", padding_idx=0)
    assert_identical(intref.run(other, {"ids": np.array([[3, 0, 4]], dtype=np.int32)})["pos"],
                     np.array([[1, 0, 2]], dtype=np.int32))
    value = graph.values["pos"]
    assert (value.lo, value.hi) == (1, 1 + SYMBOLS["seq"])
    longest = intref.run(graph, {"ids": np.full((1, SYMBOLS["seq"]), 7, dtype=np.int32)})["pos"]
    assert int(longest.max()) == value.hi                         # attained with every token real


@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 16), st.integers(0, 3))
def test_position_ids_padding_aware_random(seed, batch, seq, pad):
    rng = np.random.default_rng(seed)
    graph = position_graph("padding_aware", padding_idx=pad)
    ids = rng.integers(0, 4, size=(batch, seq)).astype(np.int32)
    out = intref.run(graph, {"ids": ids})["pos"]
    for i in range(batch):                                        # the definition, one token at a time
        count = 0
        for j in range(seq):
            if ids[i, j] == pad:
                assert out[i, j] == pad
            else:
                count += 1
                assert out[i, j] == pad + count
    value = graph.values["pos"]
    assert value.lo <= out.min() and out.max() <= value.hi


def test_position_ids_rejections_and_overflow():
    raises(AttributeError_, lambda: position_graph("sinusoid"), "pos")
    raises(AttributeError_, lambda: position_graph("padding_aware", padding_idx=-1), "pos")
    raises(AttributeError_, lambda: position_graph("arange", start="0"), "pos")
    raises(AttributeError_, lambda: position_graph("arange", offset=1), "pos")
    raises(TypeMismatchError, lambda: position_graph("arange", ids_type="int64"), "pos")

    def rank_one():
        b = GraphBuilder("pos", symbols=SYMBOLS)
        b.output(b.add("PositionIds", [b.input("ids", "int32", ["seq"])], "int32", name="pos"))
        b.build()
    raises(ShapeMismatchError, rank_one, "pos")
    narrow = position_graph("arange", start=120, out_type="int8")     # positions up to 135 > 127
    assert narrow.may_overflow == ("pos",)
    assert position_graph("arange", start=111, out_type="int8").may_overflow == ()


# --- RelativeBuckets --------------------------------------------------------------------------------

def buckets_graph(buckets, *, out_type="int32", seq=16):
    b = GraphBuilder("rel", symbols={"batch": 4, "seq": seq})
    ids = b.input("ids", "int32", ["batch", "seq"])
    b.output(b.add("RelativeBuckets", [ids], out_type, name="rel", attributes={"buckets": buckets}))
    return b.build()


@given(st.integers(1, 16), st.integers(0, 2**32 - 1))
def test_relative_buckets_index_by_key_minus_query(seq, seed):
    buckets = np.random.default_rng(seed).integers(0, 40, size=31).tolist()      # distances -15 .. 15
    out = intref.run(buckets_graph(buckets), {"ids": np.zeros((2, seq), np.int32)})["rel"]
    expected = [[buckets[j - i + 15] for j in range(seq)] for i in range(seq)]
    assert_identical(out, np.array(expected, np.int32).reshape(seq, seq), context="RelativeBuckets")


def test_relative_buckets_match_mpnet_bucketing():
    from intref.models.float_encoder import relative_buckets
    table = relative_buckets(16)
    out = intref.run(buckets_graph([int(v) for v in table]), {"ids": np.zeros((1, 16), np.int32)})["rel"]
    assert out[0, 0] == 0 and out[0, 1] == 16 + 1 and out[1, 0] == 1      # key after the query: upper half
    assert graph_shape(buckets_graph([0] * 31)) == ("seq", "seq")


def graph_shape(graph):
    return graph.values["rel"].shape


def test_relative_buckets_rejections():
    raises(ShapeMismatchError, lambda: buckets_graph([0] * 30), node="rel")           # even length
    raises(ShapeMismatchError, lambda: buckets_graph([0] * 29), node="rel")           # covers seq 15 < 16
    raises(TypeMismatchError, lambda: buckets_graph([0] * 30 + [300], out_type="int8"), node="rel")
    raises(AttributeError_, lambda: buckets_graph([-1] * 31), node="rel")
