"""The interpreter: feeds validation, the overflow policies at a node whose declared type is narrower
than its values (check / saturate / wrap against hand-computed values), trace, verbose, reuse."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.errors import FeedError, IntrefError, OverflowCheckError
from intref.inttypes import IntType
from intref.kernels import add_requantized, matmul, requantize
from intref.ops import REGISTRY
from intref.quant import prepare_gelu, prepare_softmax
from intref.testing import assert_identical

SYMBOLS = {"batch": 2, "seq": 5}
TABLE = (np.arange(40, dtype=np.int64).reshape(10, 4) * 7 % 256 - 128).astype(np.int8)
UNIT = {"multiplier_a": 1 << 30, "shift_a": 30, "multiplier_b": 1 << 30, "shift_b": 30}


def embed_add_graph():
    """ids [batch, seq] in 0..9 -> Embedding; + x [batch, seq, 4] (ResidualAdd, int8, saturating)."""
    b = GraphBuilder("embed_add", symbols=SYMBOLS)
    ids = b.input("ids", "int32", ["batch", "seq"], range=(0, 9))
    x = b.input("x", "int8", ["batch", "seq", 4])
    e = b.add("Embedding", [ids, b.tensor("table", TABLE)], "int8", name="embed")
    b.output(b.add("ResidualAdd", [e, x], "int8", name="add", attributes=UNIT))
    return b.build()


def overflow_graph():
    """x int8 [seq, 2] -> Linear [[1, 1], [1, -1]] declared int8: x0 + x1 reaches 254, x0 - x1 -255."""
    b = GraphBuilder("narrow", symbols=SYMBOLS)
    x = b.input("x", "int8", ["seq", 2])
    b.output(b.add("Linear", [x, b.tensor("w", np.array([[1, 1], [1, -1]], dtype=np.int8))], "int8", name="fc"))
    return b.build()


def feeds(batch=2, seq=3):
    rng = np.random.default_rng(batch * 10 + seq)
    return {"ids": rng.integers(0, 10, size=(batch, seq)).astype(np.int32),
            "x": rng.integers(-128, 128, size=(batch, seq, 4)).astype(np.int8)}


def feed_error(graph, given_feeds, *fragments):
    with pytest.raises(FeedError) as info:
        intref.run(graph, given_feeds)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    return info.value


# --- feeds ------------------------------------------------------------------------------------------

def test_valid_feeds_give_the_kernels_result():
    graph = embed_add_graph()
    f = feeds()
    out = intref.run(graph, f)
    assert list(out) == ["add"]
    expected = add_requantized(TABLE[f["ids"]], f["x"], *UNIT.values(), bits=8)
    assert_identical(out["add"], expected)


def test_feed_validation():
    graph = embed_add_graph()
    f = feeds()
    feed_error(graph, {"ids": f["ids"]}, "missing ['x']")
    feed_error(graph, {**f, "y": f["x"]}, "unexpected ['y']")
    feed_error(graph, [("ids", f["ids"])], "mapping")
    feed_error(graph, {**f, "x": f["x"].astype(np.float32)}, "'x'", "float32")
    feed_error(graph, {**f, "x": f["x"].astype(bool)}, "'x'", "bool")
    feed_error(graph, {**f, "x": f["x"].tolist()}, "'x'", "list")
    feed_error(graph, {**f, "x": f["x"][0]}, "'x'", "rank 2")
    feed_error(graph, {**f, "x": f["x"][..., :3]}, "'x'", "axis 2 has size 3, expected 4")
    feed_error(graph, {**f, "x": np.zeros((2, 4, 4), np.int8)}, "'x'", "'seq'", "4", "3")   # seq = 3 from ids
    feed_error(graph, feeds(seq=6), "'ids'", "'seq'", "above the graph's maximum 5")
    feed_error(graph, feeds(batch=3), "'ids'", "'batch'", "above the graph's maximum 2")
    feed_error(graph, feeds(seq=0), "'ids'", "'seq'")                          # every symbol is at least 1
    bad_ids = f["ids"].copy()
    bad_ids[1, 2] = 10
    error = feed_error(graph, {**f, "ids": bad_ids}, "'ids'", "[1, 2] = 10", "[0, 9]")
    assert "element" in str(error)
    wide = f["x"].astype(np.int16)
    wide[0, 1, 3] = -129
    feed_error(graph, {**f, "x": wide}, "'x'", "[0, 1, 3] = -129", "[-128, 127]")
    ok = {**f, "x": f["x"].astype(np.int64)}                                  # any integer dtype holding the values
    assert_identical(intref.run(graph, ok)["add"], intref.run(graph, f)["add"])


def test_unknown_overflow_policy():
    with pytest.raises(IntrefError, match="overflow="):
        intref.run(overflow_graph(), {"x": np.zeros((1, 2), np.int8)}, overflow="clamp")


# --- overflow policies ------------------------------------------------------------------------------

X = np.array([[1, 2], [100, 100], [-100, -100], [127, -128]], dtype=np.int8)
EXACT = np.array([[3, -1], [200, 0], [-200, 0], [-1, 255]])                  # x0 + x1, x0 - x1


def test_overflow_check_names_node_first_index_and_exact_value():
    graph = overflow_graph()
    assert graph.may_overflow == ("fc",)
    with pytest.raises(OverflowCheckError) as info:
        intref.run(graph, {"x": X})
    error = info.value
    assert "'fc'" in error.where and "'fc'" in str(error)
    assert error.index == (1, 0) and error.value == 200 and (error.lo, error.hi) == (-128, 127)
    assert "[1, 0]" in str(error) and "200" in str(error)
    with pytest.raises(OverflowCheckError) as info:
        intref.run(graph, {"x": X[3:]})
    assert info.value.index == (0, 1) and info.value.value == 255
    assert_identical(intref.run(graph, {"x": X[:1]})["fc"], np.array([[3, -1]], dtype=np.int8))   # fits: no error


def test_overflow_saturate_and_wrap_hand_computed():
    graph = overflow_graph()
    saturated = intref.run(graph, {"x": X}, overflow="saturate")["fc"]
    assert_identical(saturated, np.array([[3, -1], [127, 0], [-128, 0], [-1, 127]], dtype=np.int8))
    wrapped = intref.run(graph, {"x": X}, overflow="wrap")["fc"]
    assert_identical(wrapped, np.array([[3, -1], [-56, 0], [56, 0], [-1, -1]], dtype=np.int8))


@given(st.integers(0, 2**32 - 1), st.sampled_from(["int8", "uint8", "int5", "uint3", "int16", "int1"]))
def test_overflow_policies_random(seed, out_name):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("narrow", symbols=SYMBOLS)
    x = b.input("x", "int8", ["seq", 3])
    w = rng.integers(-128, 128, size=(2, 3)).astype(np.int8)
    b.output(b.add("Linear", [x, b.tensor("w", w)], out_name, name="fc"))
    graph = b.build()
    t = IntType.parse(out_name)
    feed = rng.integers(-128, 128, size=(4, 3)).astype(np.int8)
    exact = matmul(feed, np.ascontiguousarray(w.T))
    saturated = np.clip(exact, t.lo, t.hi).astype(t.storage)
    wrapped = np.array([[t.wrap(int(v)) for v in row] for row in exact], dtype=t.storage)   # scalar two's complement
    assert_identical(intref.run(graph, {"x": feed}, overflow="saturate")["fc"], saturated)
    assert_identical(intref.run(graph, {"x": feed}, overflow="wrap")["fc"], wrapped)
    outside = (exact < t.lo) | (exact > t.hi)
    if outside.any():
        first = tuple(int(i) for i in np.argwhere(outside)[0])
        with pytest.raises(OverflowCheckError) as info:
            intref.run(graph, {"x": feed})
        assert info.value.index == first and info.value.value == int(exact[first])
    else:
        assert_identical(intref.run(graph, {"x": feed})["fc"], exact.astype(t.storage))


def test_ranges_downstream_of_a_wrapping_node_stay_sound():
    """Linear (may overflow int16) -> Requantize: under every policy each value lies in its derived range."""
    b = GraphBuilder("chain", symbols=SYMBOLS)
    x = b.input("x", "int8", ["seq", 4], range=(0, 127))
    fc = b.add("Linear", [x, b.tensor("w", np.full((2, 4), 100, dtype=np.int8))], "int16", name="fc")
    b.output(b.add("Requantize", [fc], "int16", name="rq", attributes={"multiplier": 1 << 30, "shift": 31}))
    graph = b.build()
    feed = {"x": np.array([[127, 127, 127, 127], [0, 1, 2, 3], [60, 60, 60, 60]], dtype=np.int8)}
    for policy in ("saturate", "wrap"):
        trace = intref.run(graph, feed, overflow=policy, trace=True)
        for name in ("fc", "rq"):
            assert graph.values[name].lo <= trace[name].min() and trace[name].max() <= graph.values[name].hi, \
                (policy, name, graph.values[name], trace[name])
    assert int(intref.run(graph, feed, overflow="wrap")["rq"][0, 0]) == (50800 - 65536) // 2


# --- trace, verbose, reuse --------------------------------------------------------------------------

def typed_graph():
    """Declared types whose storage is wider than their width: int22 -> int32, uint9 -> uint16, int4 -> int8."""
    b = GraphBuilder("typed", symbols=SYMBOLS)
    x = b.input("x", "int4", ["batch", "seq", 3])
    w = b.tensor("w", np.array([[7, -8, 3], [1, 1, 1]], dtype=np.int8), "int4")
    acc = b.add("Linear", [x, w], "int22", name="fc")
    up = b.add("Requantize", [acc], "uint9", name="relu9", attributes={"multiplier": 1 << 30, "shift": 28})
    flat = b.add("Reshape", [up], "uint9", name="flat", attributes={"shape": ["batch", "seq", 2, 1]})
    b.output(b.add("Transpose", [flat], "uint9", name="out", attributes={"perm": [0, 1, 3, 2]}))
    return b.build()


def test_trace_returns_every_value_in_its_storage_dtype():
    graph = typed_graph()
    x = np.array([[[-8, 7, 1], [3, 3, 3]]], dtype=np.int8)
    trace = intref.run(graph, {"x": x}, trace=True)
    assert sorted(trace) == ["fc", "flat", "out", "relu9", "x"]             # inputs and node outputs, no tensors
    storage = {"x": np.int8, "fc": np.int32, "relu9": np.uint16, "flat": np.uint16, "out": np.uint16}
    for name, dtype in storage.items():
        assert trace[name].dtype == dtype, name
    acc = matmul(x, np.array([[7, 1], [-8, 1], [3, 1]], dtype=np.int8))
    assert_identical(trace["fc"], acc.astype(np.int32))
    expected = requantize(acc, 1 << 30, 28, bits=9, signed=False)
    assert_identical(trace["relu9"], expected)
    assert_identical(trace["out"], expected.reshape(1, 2, 1, 2))
    assert list(intref.run(graph, {"x": x})) == ["out"]


def test_verbose_prints_one_line_per_node(capsys):
    graph = typed_graph()
    x = np.array([[[-8, 7, 1], [3, 3, 3]]], dtype=np.int8)
    lines = []
    intref.run(graph, {"x": x}, verbose=True, log=lines.append)
    assert len(lines) == len(graph.nodes) == 4
    trace = intref.run(graph, {"x": x}, trace=True)
    for line, node in zip(lines, graph.nodes):
        out = node.outputs[0].name
        fields = line.split()
        assert fields[:4] == [node.name, node.op, out, node.outputs[0].type.name], line
        assert str(list(trace[out].shape)) in line
        assert line.endswith(f"[{int(trace[out].min())}, {int(trace[out].max())}]"), line
    assert "[-109, 9]" in lines[0] and "Linear" in lines[0]                 # -56 - 56 + 3 and 3 + 3 + 3
    intref.run(graph, {"x": x}, verbose=True)                               # default: one line each on stderr
    assert len(capsys.readouterr().err.strip().splitlines()) == 4
    intref.run(graph, {"x": x})
    assert capsys.readouterr().err == ""


def test_a_graph_is_reusable_and_run_mutates_nothing():
    graph = embed_add_graph()
    table_before = graph.tensors["table"].data.copy()
    assert not graph.tensors["table"].data.flags.writeable
    first, second = feeds(2, 3), feeds(1, 5)
    copies = [{k: v.copy() for k, v in f.items()} for f in (first, second)]
    out1 = intref.run(graph, first, trace=True)
    out2 = intref.run(graph, second, trace=True)                            # other symbol sizes
    again = intref.run(graph, first, trace=True)
    for name in out1:
        assert_identical(again[name], out1[name], context=name)
    assert out2["add"].shape == (1, 5, 4)
    for f, copy in zip((first, second), copies):
        for name in f:
            assert_identical(f[name], copy[name], context=f"feed {name}")
    assert_identical(graph.tensors["table"].data, table_before)
    out1["add"][...] = 0                                                    # results are the caller's to keep
    assert_identical(intref.run(graph, first)["add"], again["add"])


def test_outputs_never_alias_feeds():
    b = GraphBuilder("moves", symbols=SYMBOLS)
    x = b.input("x", "int8", ["batch", "seq", 4])
    r = b.add("Reshape", [x], "int8", name="r", attributes={"shape": ["batch", "seq", 2, 2]})
    t = b.add("Transpose", [x], "int8", name="t", attributes={"perm": [0, 1, 2]})
    s = b.add("Slice", [x], "int8", name="s", attributes={"axis": 2, "start": 0, "end": 4})
    g = b.add("Gather", [x], "int8", name="g", attributes={"axis": 0, "index": 0})
    b.output(r, t, s, g)
    graph = b.build()
    feed = np.arange(24, dtype=np.int8).reshape(2, 3, 4)
    out = intref.run(graph, {"x": feed})
    for name, array in out.items():
        assert not np.shares_memory(array, feed), name
    out["t"][...] = 0
    assert int(feed.sum()) == sum(range(24))


def add_token_group_branch(b, x, width):
    """The ZeroQuant ops off an int32 value: TokenScale -> TokenQuantize -> GroupLinear (int4-packed,
    two input groups) -> TokenRequantize with a bias. Returns the int8 output's name."""
    t = b.add("TokenScale", [x], "int32", name="zq.scale")
    q = b.add("TokenQuantize", [x, t], "int8", name="zq.q", attributes={"rounding": "half_up"})
    w = b.tensor("zq.w", (np.arange(4 * width) % 16 - 8).astype(np.int8).reshape(4, width), "int4", layout="int4_packed")
    m = b.tensor("zq.m", np.array([[1 << 31, 1 << 30]] * 4, np.uint32), "uint32")
    acc = b.add("GroupLinear", [q, w, m], "int32", name="zq.acc", attributes={"group_size": width // 2, "shift": 31})
    bias = b.tensor("zq.bias", np.arange(4, dtype=np.int32) - 2, "int32")
    return b.add("TokenRequantize", [acc, t, bias], "int8", name="zq.y", attributes={"multiplier": 1 << 30, "shift": 40})


def encoder_graph(rng):
    """A tiny encoder layer that uses every registered op once or more."""
    b = GraphBuilder("encoder", symbols={"batch": 2, "seq": 6})
    ids = b.input("ids", "int32", ["batch", "seq"], range=(0, 9))
    keep = b.input("keep", "int8", ["batch", "seq"], range=(0, 1))

    def weights(name, shape, type_name="int8"):
        t = IntType.parse(type_name)
        return b.tensor(name, rng.integers(t.lo, t.hi, size=shape, endpoint=True).astype(t.storage), type_name)

    def requant(name, source, shift):
        return b.add("Requantize", [source], "int8", name=name, attributes={"multiplier": 1 << 30, "shift": shift})

    word = b.add("Embedding", [ids, weights("word_table", (10, 8))], "int8", name="word")
    pos = b.add("PositionIds", [ids], "int16", name="pos", attributes={"mode": "padding_aware", "padding_idx": 1})
    pos_e = b.add("Embedding", [pos, weights("pos_table", (8, 8))], "int8", name="pos_embed")
    emb = b.add("ResidualAdd", [word, pos_e], "int8", name="emb", attributes=UNIT)
    ln = b.add("ILayerNorm", [emb], "int32", name="ln", attributes={"bias_int": [0, 1, -1, 2, -2, 3, -3, 4]})
    zq = add_token_group_branch(b, ln, 8)
    x = requant("ln8", ln, 54)
    q, k, v = (requant(f"{n}8", b.add("Linear", [x, weights(f"w{n}", (8, 8)), weights(f"b{n}", (8,), "int16")],
                                      "int32", name=n), 40) for n in "qkv")
    qh, kh, vh = (b.add("SplitHeads", [t], "int8", name=f"{t}_heads", attributes={"heads": 2}) for t in (q, k, v))
    scores = b.add("MatMul", [qh, kh], "int32", name="scores", attributes={"transpose_b": True})
    mask = b.add("PaddingMask", [keep], "int32", name="mask")
    softmax = prepare_softmax(1e-2, input_bits=32)
    attributes = {name: getattr(softmax, name) for name in ("x0_int", "b_int", "c_int", "exp_clamp", "exp_multiplier",
                                                            "exp_shift", "exp_bits", "exp_rounding", "output_bits",
                                                            "output_max")}
    probs = b.add("ISoftmax", [scores, mask], "uint8", name="probs", attributes=attributes)
    context = requant("context8", b.add("MatMul", [probs, vh], "int32", name="context"), 37)
    merged = b.add("MergeHeads", [context], "int8", name="merged")
    fc = b.add("Linear", [merged, weights("w1", (8, 8))], "int32", name="fc")
    gelu = prepare_gelu(1e-3, input_bits=32, guard_shift="auto")
    act = b.add("IGelu", [fc], "int64", name="gelu", attributes={"b_int": gelu.b_int, "c_int": gelu.c_int,
                                                                  "shift_int": gelu.shift_int,
                                                                  "guard_shift": gelu.guard_shift})
    out = requant("gelu8", act, 53)
    cls = b.add("Gather", [out], "int8", name="cls", attributes={"axis": 1, "index": 0})
    part = b.add("Slice", [cls], "int8", name="part", attributes={"axis": 1, "start": 2, "end": 6})
    square = b.add("Reshape", [part], "int8", name="square", attributes={"shape": ["batch", 2, 2]})
    b.output(b.add("Transpose", [square], "int8", name="out", attributes={"perm": [0, 2, 1]}),
             b.add("MaskedMeanPool", [x, keep], "int8", name="pooled"),
             b.add("RelativeBuckets", [ids], "uint8", name="rel", attributes={"buckets": [3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7]}), zq)
    return b.build()


@settings(max_examples=15)
@given(st.integers(0, 2**32 - 1))
def test_every_op_in_one_graph_values_are_fresh_typed_and_within_their_ranges(seed):
    rng = np.random.default_rng(seed)
    graph = encoder_graph(rng)
    assert {node.op for node in graph.nodes} == set(REGISTRY)
    assert graph.may_overflow == ()
    batch, seq = int(rng.integers(1, 3)), int(rng.integers(1, 7))
    ids = rng.integers(0, 10, size=(batch, seq)).astype(np.int32)
    keep = (rng.random((batch, seq)) < 0.8).astype(np.int8)
    given_feeds = {"ids": ids, "keep": keep}
    trace = intref.run(graph, given_feeds, trace=True)
    assert set(trace) == set(graph.values) - set(graph.tensors)
    arrays = list(trace.items()) + [(name, t.data) for name, t in graph.tensors.items()]
    for name, array in trace.items():
        value = graph.values[name]
        assert array.dtype == value.type.storage, name
        assert value.lo <= array.min() and array.max() <= value.hi, (name, value, array.min(), array.max())
        if name not in given_feeds:
            for other, stored in arrays:
                assert other == name or not np.shares_memory(array, stored), (name, other)
    again = intref.run(graph, given_feeds, trace=True)
    for name in trace:
        assert_identical(again[name], trace[name], context=name)


def test_overrides_replace_a_node_result_for_every_later_node():
    """An override stands in for a node's result: downstream nodes read it, and it is checked."""
    from intref.models.demo import make_demo, token_batch
    graph, _ = make_demo()
    ids, mask = token_batch(np.random.default_rng(4), 2, 10)
    feeds = {"input_ids": ids, "attention_mask": mask}
    trace = intref.run(graph, feeds, trace=True)
    forced = np.zeros_like(trace["layer0.q"])
    again = intref.run(graph, feeds, trace=True, overrides={"layer0.q": forced})
    assert_identical(again["layer0.q"], forced)
    assert_identical(again["layer0.k"], trace["layer0.k"])          # upstream and siblings unchanged
    assert not np.array_equal(again["layer0.probs"], trace["layer0.probs"])  # downstream sees the override
    same = intref.run(graph, feeds, trace=True, overrides={"layer0.q": trace["layer0.q"]})
    assert_identical(same["last_hidden_state"], trace["last_hidden_state"])
    with pytest.raises(FeedError, match="no node output"):
        intref.run(graph, feeds, overrides={"nope": forced})
    with pytest.raises(FeedError, match="outside int8"):
        intref.run(graph, feeds, overrides={"layer0.q": forced.astype(np.int16) + 300})
