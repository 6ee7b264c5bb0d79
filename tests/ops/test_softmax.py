"""ISoftmax and PaddingMask: output == intref.kernels.i_softmax on the masked scores computed here
(padding, additive and causal masks; fully masked rows; keys > queries), symbolic shapes, the
declared range, and every rejection path names the node."""

import dataclasses

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.errors import AttributeError_, GraphError, RangeAnalysisError, ShapeMismatchError, TypeMismatchError
from intref.kernels import i_softmax
from intref.quant import prepare_softmax
from intref.testing import assert_graph_error as raises
from intref.testing import assert_identical

SYMBOLS = {"batch": 3, "heads": 2, "seq": 8}
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
PARAMS = prepare_softmax(1e-3, input_bits=32)
FIELDS = ("x0_int", "b_int", "c_int", "exp_clamp", "exp_multiplier", "exp_shift", "exp_bits", "exp_rounding",
          "output_bits", "output_max")



def attributes_of(params, **changes):
    attributes = {name: getattr(params, name) for name in FIELDS}
    attributes.update(changes)
    return attributes


def softmax_graph(*, params=PARAMS, x_type="int32", x_shape=("batch", "heads", "seq", "seq"), out_type="uint8",
                  padding=False, mask=None, causal=None, fill=None, mask_out_type="int32", symbols=SYMBOLS,
                  attributes=None):
    """scores -> ISoftmax, with a PaddingMask from ``attention_mask`` or an additive ``mask`` input
    (type, shape) when asked."""
    b = GraphBuilder("attn", symbols=symbols)
    inputs = [b.input("scores", x_type, list(x_shape))]
    if padding:
        keep = b.input("attention_mask", "int8", ["batch", "seq"], range=(0, 1))
        inputs.append(b.add("PaddingMask", [keep], mask_out_type, name="pad",
                            attributes=None if fill is None else {"fill": fill}))
    if mask is not None:
        inputs.append(b.input("mask", mask[0], list(mask[1])))
    attributes = dict(attributes if attributes is not None else attributes_of(params))
    if causal is not None:
        attributes["causal"] = causal
    b.output(b.add("ISoftmax", inputs, out_type, name="softmax", attributes=attributes))
    return b.build()


def masked_scores(scores, *, keep=None, additive=None, causal=False):
    """The definition, element by element: a padded key (keep == 0) or a future key (j > i +
    keys - queries) sits at the scores' minimum; an additive mask is added with saturation."""
    out = scores.astype(np.int64).copy()
    if additive is not None:
        out = np.clip(out + np.broadcast_to(additive, out.shape), INT32_MIN, INT32_MAX)
    queries, keys = out.shape[-2:]
    for index in np.ndindex(*out.shape):
        i, j = index[-2:]
        if keep is not None and keep[index[0], j] == 0:
            out[index] = INT32_MIN
        if causal and j > i + keys - queries:
            out[index] = INT32_MIN
    return out


def random_scores(rng, shape):
    """Scores mostly within the exp clamp's reach (+-6000 at S = 1e-3), plus int32 extremes."""
    scores = rng.integers(-6000, 6000, size=shape)
    extreme = rng.random(shape) < 0.1
    scores[extreme] = rng.choice([INT32_MIN, INT32_MAX, 0], size=int(extreme.sum()))
    return scores.astype(np.int32)


@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 8), st.booleans())
def test_plain_softmax_equals_kernel(seed, batch, seq, nine_bits):
    rng = np.random.default_rng(seed)
    params = dataclasses.replace(PARAMS, output_max=256) if nine_bits else PARAMS
    graph = softmax_graph(params=params, out_type="uint9" if nine_bits else "uint8")
    value = graph.values["softmax"]
    assert value.shape == ("batch", "heads", "seq", "seq") and (value.lo, value.hi) == (0, params.output_max)
    scores = random_scores(rng, (batch, 2, seq, seq))
    out = intref.run(graph, {"scores": scores})["softmax"]
    assert_identical(out, i_softmax(scores, params).astype(out.dtype), context="ISoftmax == kernel")
    assert out.dtype == (np.uint16 if nine_bits else np.uint8) and out.shape == (batch, 2, seq, seq)
    assert 0 <= out.min() and out.max() <= params.output_max


@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 8), st.booleans(),
       st.sampled_from([None, INT32_MIN, -(1 << 20)]))
def test_padding_mask_equals_kernel_on_masked_scores(seed, batch, seq, causal, fill):
    rng = np.random.default_rng(seed)
    graph = softmax_graph(padding=True, causal=causal, fill=fill)
    scores = random_scores(rng, (batch, 2, seq, seq))
    keep = (rng.random((batch, seq)) < 0.7).astype(np.int8)
    keep[0, :] = 0                                            # batch 0: every key padded
    out = intref.run(graph, {"scores": scores, "attention_mask": keep}, trace=True)
    fill = INT32_MIN if fill is None else fill
    additive = np.where(keep != 0, 0, fill).reshape(batch, 1, 1, seq).astype(np.int32)
    assert_identical(out["pad"], additive, context="PaddingMask")
    if fill == INT32_MIN:                                     # the fill reaches the scores' minimum: masked
        expected = masked_scores(scores, keep=keep, causal=causal)
    else:                                                     # a finite fill is added with saturation
        expected = masked_scores(scores, additive=additive, causal=causal)
    assert_identical(out["softmax"], i_softmax(expected, PARAMS), context="masked ISoftmax == kernel")
    if fill == INT32_MIN and not causal:                      # a fully masked row is uniform
        uniform = i_softmax(np.full((1, seq), INT32_MIN, dtype=np.int32), PARAMS)[0]
        for row in out["softmax"][0].reshape(-1, seq):
            assert_identical(row, uniform, context="fully masked row")


def test_fully_masked_row_is_uniform_whatever_the_scores():
    graph = softmax_graph(padding=True, x_shape=("batch", "heads", "seq", "seq"))
    scores = np.array([[[[100, 5, -7], [INT32_MAX, INT32_MIN, 0], [0, 0, 0]]] * 2], dtype=np.int32)
    out = intref.run(graph, {"scores": scores, "attention_mask": np.zeros((1, 3), np.int8)})["softmax"]
    assert_identical(out, np.full((1, 2, 3, 3), 85, dtype=np.uint8))      # 2**32 // 3 codes -> 85 of 256
    # a padded key gets nothing even when its score is the largest and the kept one the smallest
    half = intref.run(graph, {"scores": scores, "attention_mask": np.array([[1, 0, 0]], np.int8)})["softmax"]
    assert_identical(half[0, 0, :, 0], np.array([255, 255, 255], dtype=np.uint8))


@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(0, 4))
def test_causal_non_square_equals_kernel(seed, queries, extra_keys):
    """keys = queries + past: query i sees keys 0..i + past (HF's bottom-right causal mask)."""
    rng = np.random.default_rng(seed)
    keys = queries + extra_keys
    graph = softmax_graph(x_shape=(2, queries, keys), causal=True)
    assert graph.values["softmax"].shape == (2, queries, keys)
    scores = random_scores(rng, (2, queries, keys))
    out = intref.run(graph, {"scores": scores})["softmax"]
    assert_identical(out, i_softmax(masked_scores(scores, causal=True), PARAMS), context="causal ISoftmax")
    assert (out[..., -1, :] > 0).sum() >= 1
    if extra_keys == 0 and queries > 1:                        # the first query sees only key 0
        seen = scores[:, 0, 0] > INT32_MIN                     # (a key at the minimum ties with the masked)
        assert (out[seen, 0, 1:] == 0).all() and (out[seen, 0, 0] == 255).all()


def test_causal_hand_computed():
    graph = softmax_graph(x_shape=(2, 3), causal=True)
    out = intref.run(graph, {"scores": np.zeros((2, 3), dtype=np.int32)})["softmax"]
    # query 0 sees keys 0, 1 (offset 1); query 1 sees all three: equal scores share evenly
    assert_identical(out, np.array([[127, 127, 0], [85, 85, 85]], dtype=np.uint8))


def test_additive_mask_input_broadcasts_and_saturates():
    graph = softmax_graph(mask=("int16", (1, "seq")), x_shape=("batch", "seq"))
    rng = np.random.default_rng(7)
    scores = random_scores(rng, (3, 6))
    scores[0, 0] = INT32_MIN                                  # saturates at the minimum with a negative mask
    mask = rng.integers(-(1 << 15), 1, size=(1, 6)).astype(np.int16)
    mask[0, 0] = -5
    out = intref.run(graph, {"scores": scores, "mask": mask})["softmax"]
    assert_identical(out, i_softmax(masked_scores(scores, additive=mask), PARAMS))


def test_padding_mask_range_and_rejections():
    graph = softmax_graph(padding=True)
    assert graph.values["pad"].shape == ("batch", 1, 1, "seq")
    assert (graph.values["pad"].lo, graph.values["pad"].hi) == (INT32_MIN, 0)
    raises(TypeMismatchError, lambda: softmax_graph(padding=True, mask_out_type="int16"), "pad")   # fill too wide
    raises(TypeMismatchError, lambda: softmax_graph(padding=True, mask_out_type="uint8", fill=0), "softmax")
    raises(AttributeError_, lambda: softmax_graph(padding=True, fill=1), "pad")
    raises(AttributeError_, lambda: softmax_graph(padding=True, fill=-(1 << 48)), "pad")

    def mask_graph(shape, mask_range):
        b = GraphBuilder("pad", symbols=SYMBOLS)
        b.output(b.add("PaddingMask", [b.input("m", "int8", shape, range=mask_range)], "int32", name="pad"))
        return b.build()
    raises(RangeAnalysisError, lambda: mask_graph(["batch", "seq"], None), "pad")
    raises(RangeAnalysisError, lambda: mask_graph(["batch", "seq"], (0, 2)), "pad")
    raises(ShapeMismatchError, lambda: mask_graph(["batch", "heads", "seq"], (0, 1)), "pad")
    all_kept = mask_graph(["batch", "seq"], (1, 1))
    assert (all_kept.values["pad"].lo, all_kept.values["pad"].hi) == (0, 0)


def test_softmax_rejections():
    raises(TypeMismatchError, lambda: softmax_graph(x_type="uint16"), "softmax")              # unsigned scores
    raises(TypeMismatchError, lambda: softmax_graph(x_type="int64"), "softmax")
    raises(TypeMismatchError, lambda: softmax_graph(x_type="int49"), "softmax")
    raises(TypeMismatchError, lambda: softmax_graph(mask=("uint8", (1, "seq"))), "softmax")
    raises(TypeMismatchError, lambda: softmax_graph(mask=("int64", (1, "seq"))), "softmax")
    raises(TypeMismatchError, lambda: softmax_graph(out_type="int16"), "softmax")             # signed output
    raises(TypeMismatchError, lambda: softmax_graph(out_type="uint7"), "softmax")             # too narrow
    nine = dataclasses.replace(PARAMS, output_max=256)
    raises(TypeMismatchError, lambda: softmax_graph(params=nine, out_type="uint8"), "softmax")
    softmax_graph(mask=("int32", ("batch", 1, "seq", 1)))    # per query: broadcasts over keys
    raises(ShapeMismatchError, lambda: softmax_graph(mask=("int32", ("batch", 1, "seq", 2))), "softmax")
    raises(ShapeMismatchError, lambda: softmax_graph(mask=("int32", ("heads", 1, 1, "seq"))), "softmax")
    raises(ShapeMismatchError, lambda: softmax_graph(mask=("int32", (2, "batch", 1, 1, "seq"))), "softmax")
    raises(ShapeMismatchError, lambda: softmax_graph(x_shape=("seq",), causal=True), "softmax")
    raises(ShapeMismatchError, lambda: softmax_graph(x_shape=()), "softmax")
    raises(AttributeError_, lambda: softmax_graph(attributes=attributes_of(PARAMS, x0_int=0)), "softmax")
    raises(AttributeError_, lambda: softmax_graph(attributes=attributes_of(PARAMS, exp_rounding="double_round")),
           "softmax")
    raises(AttributeError_, lambda: softmax_graph(attributes=attributes_of(PARAMS, output_max=257)), "softmax")
    raises(AttributeError_, lambda: softmax_graph(attributes=attributes_of(PARAMS, output_bits=32)), "softmax")
    raises(AttributeError_, lambda: softmax_graph(attributes=attributes_of(PARAMS, exp_multiplier=-1)), "softmax")
    raises(AttributeError_, lambda: softmax_graph(attributes=attributes_of(PARAMS, causal=1)), "softmax")
    raises(AttributeError_, lambda: softmax_graph(attributes={k: v for k, v in attributes_of(PARAMS).items()
                                                              if k != "c_int"}), "softmax")
    # rows longer than the params allow (131076 with the reference settings): the sum could pass 2**32
    assert PARAMS.max_row_length() == 131076
    softmax_graph(x_shape=("batch", "seq"), symbols={"batch": 1, "seq": 131076})
    raises(RangeAnalysisError, lambda: softmax_graph(x_shape=("batch", "seq"), symbols={"batch": 1, "seq": 131077}),
           "softmax")
    # a polynomial whose intermediates leave int64
    raises(RangeAnalysisError, lambda: softmax_graph(attributes=attributes_of(PARAMS, b_int=1 << 62)), "softmax")

    def three_inputs():
        b = GraphBuilder("attn", symbols=SYMBOLS)
        x = b.input("x", "int32", ["seq"])
        b.output(b.add("ISoftmax", [x, x, x], "uint8", name="softmax", attributes=attributes_of(PARAMS)))
        b.build()
    assert "takes 1..2 inputs" in str(raises(GraphError, three_inputs, "softmax"))


def test_both_plan_paths_over_several_row_blocks_equal_the_kernel(monkeypatch):
    """Small blocks split the queries into several blocks (kernels.blocks); the table path and the
    general i-exp path (a clamp too long for a table) both equal the kernel on the masked scores."""
    from intref.kernels import blocks
    from intref.kernels.blocks import rows_per_block
    from intref.kernels.softmax_table import TABLE_MAX_ENTRIES
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 1 << 16)
    keys, queries = 1100, 70
    assert rows_per_block(keys) < queries                     # several blocks per head
    long_clamp = dataclasses.replace(PARAMS, x0_int=-TABLE_MAX_ENTRIES, exp_clamp=1)
    rng = np.random.default_rng(7)
    scores = random_scores(rng, (1, 2, queries, keys))
    keep = (rng.random((1, keys)) < 0.8).astype(np.int8)
    for params, path in ((PARAMS, "exp table (20821 entries)"), (long_clamp, "i-exp")):
        graph = softmax_graph(params=params, padding=True, causal=True, symbols={"batch": 1, "heads": 2, "seq": 1100},
                              x_shape=("batch", "heads", queries, "seq"))
        assert graph.steps[-1].prepared.path == path
        out = intref.run(graph, {"scores": scores, "attention_mask": keep})["softmax"]
        expected = i_softmax(masked_scores(scores, keep=keep, causal=True), params)
        assert_identical(out, expected, context=f"ISoftmax on the {path} path")


def test_row_runs_span_heads_exactly_as_query_blocks():
    """The driver's runs of rows across leading axes (blocks spanning heads, the mask one row per
    run) give what blocks of query rows of one leading index give, for every mask shape: none,
    per batch ([b,1,1,k]), per head, per query (the query-block path itself), a bare key row, a key
    axis of 1 ([b,1,1,1], [1], [q,1]), a 0-d mask, and rows long enough for several blocks per head
    (2048 keys: 64 rows a block, 100 queries)."""
    from intref.ops.softmax import _query_row_blocks, softmax_in_row_blocks
    rng = np.random.default_rng(7)
    lo, hi = -(1 << 15), (1 << 15) - 1

    calls = []

    def rows_kernel(scores, scratch):   # any row-wise function that depends on the row's order and content
        calls.append((scratch, np.shares_memory(scores, x)))   # unmasked scores are x itself, read only
        return np.cumsum(scores, axis=-1, dtype=np.int64) % 251

    for x_shape, mask_shape in (((2, 3, 100, 2048), None), ((2, 3, 100, 2048), (2, 1, 1, 2048)),
                                ((2, 3, 5, 16), (1, 3, 1, 16)), ((2, 3, 5, 16), (2, 3, 1, 16)),
                                ((2, 3, 5, 16), (2, 1, 5, 16)), ((2, 3, 5, 16), (16,)), ((4, 5, 16), (4, 1, 16)),
                                ((2, 2, 3, 5, 16), (2, 1, 3, 1, 16)), ((7, 16), (1, 16)),
                                ((2, 3, 5, 16), (2, 1, 1, 1)), ((2, 3, 5, 16), (1,)), ((7, 16), (7, 1)),
                                ((7, 16), ())):
        x = rng.integers(lo, hi + 1, size=x_shape, dtype=np.int64).astype(np.int32)
        mask = None if mask_shape is None else np.asarray(rng.choice(np.array([0, 5, -7, lo - 1], np.int32),
                                                                     size=mask_shape))
        kept = x.copy()
        got = softmax_in_row_blocks(x, mask, False, lo, hi, rows_kernel, np.int64)
        expected = _query_row_blocks(x, mask, False, lo, hi, rows_kernel, np.int64)
        assert_identical(got, expected, context=f"scores {x_shape}, mask {mask_shape}")
        assert_identical(x, kept, context="the scores are not written")
        assert calls and all(scratch != shared for scratch, shared in calls), calls
        assert (mask is None or not mask.any()) == (not any(scratch for scratch, _ in calls))
        calls.clear()
