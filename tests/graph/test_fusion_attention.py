"""Fused attention (intref.fusion_attention): which triples the plan fuses, and that a fused run gives
the context bit for bit as the unfused ops, with and without padding (rows wholly padded too), at
the operands' extremes (scores at the ends of their bound), every exp rounding dialect, both sides of
the softmax's idle-clamp proof (output_max 255 and 256), blocks of several heads and of a part of
one head's rows."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import intref
from intref import fusion_attention
from intref.build import GraphBuilder
from intref.plan import format_plan, plan_summary
from intref.quant import prepare_softmax
from intref.spec.softmax import EXP_ROUNDING_MODES
from intref.testing import assert_identical

SOFTMAX_ATTRS = ("x0_int", "b_int", "c_int", "exp_clamp", "exp_multiplier", "exp_shift", "exp_bits",
                 "exp_rounding", "output_bits", "output_max")


def attention_graph(*, d=16, seq=512, qk="int8", rounding="half_even", output_max=256, causal=False,
                    scale=2e-3, outputs=("context",), fill=-(1 << 31)):
    """q, k, v ``[batch, heads, seq, d]``, a 0/1 padding mask, scores = q @ k^T, the integer softmax,
    context = probs @ v: I-BERT's attention as ``intref.models.ibert`` builds it."""
    b = GraphBuilder("attention", symbols={"batch": 4, "seq": seq})
    q = b.input("q", qk, ["batch", 3, "seq", d])
    k = b.input("k", qk, ["batch", 3, "seq", d])
    v = b.input("v", "int8", ["batch", 3, "seq", d])
    keep = b.input("keep", "int8", ["batch", "seq"], range=(0, 1))
    mask = b.add("PaddingMask", [keep], "int32", name="mask", attributes={"fill": fill})
    scores = b.add("MatMul", [q, k], "int32", name="scores", attributes={"transpose_b": True})
    sm = prepare_softmax(scale, exp_rounding=rounding, output_max=output_max, input_bits=32)
    attrs = {name: getattr(sm, name) for name in SOFTMAX_ATTRS}
    probs = b.add("ISoftmax", [scores, mask], f"uint{output_max.bit_length()}", name="probs",
                  attributes=dict(attrs, causal=causal))
    context = b.add("MatMul", [probs, v], "int32", name="context")
    named = {"scores": scores, "probs": probs, "context": context}
    b.output(*(named[name] for name in outputs))
    return b.build()


def feeds(rng, batch, seq, d=16, padded=0, extremes=False):
    f = {name: rng.integers(-128, 128, size=(batch, 3, seq, d)).astype(np.int8) for name in "qkv"}
    if extremes:    # rows whose scores reach +-128*128*d, the scores bound, next to ordinary ones
        f["q"][:, :, :2] = -128
        f["k"][:, :, :3] = -128
        f["k"][:, :, 3:5] = 127
        f["v"][:, :, :4] = -128
    keep = np.ones((batch, seq), np.int8)
    if padded:
        keep[:, seq - padded:] = 0
        keep[0, :] = 0 if batch > 1 else keep[0, :]          # a sequence wholly padded
    f["keep"] = keep
    return f


def test_the_plan_fuses_the_attention_and_its_context_gemm_uses_the_softmax_range():
    graph = attention_graph()
    (chain,) = graph.chains
    assert chain.names == ("scores", "probs", "context")
    # the probabilities' type (uint9) allows 511: two K-chunks at 512 keys unfused; 256 * 128 * 512 = 2**24
    assert dict((e.split()[0], e) for e in format_plan(graph))["context"].endswith("K-chunks of 256 -> int32")
    assert "context float32 x1 -> int32 (probabilities proven in [0, 256])" in chain.prepared.path
    assert "Fused(MatMul>ISoftmax>MatMul) x1" in " ".join(plan_summary(graph))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(1, 1), (1, 9), (2, 7), (3, 40), (2, 130)]), st.integers(0, 3),
       st.sampled_from(EXP_ROUNDING_MODES), st.sampled_from([255, 256]), st.booleans(),
       st.sampled_from([1 << 19, 4096, 700]))
def test_fused_attention_equals_the_unfused_ops_bit_for_bit(seed, shape, padded, rounding, output_max, extremes,
                                                            block_bytes):
    batch, seq = shape
    graph = attention_graph(rounding=rounding, output_max=output_max)
    assert len(graph.chains) == 1
    f = feeds(np.random.default_rng(seed), batch, seq, padded=min(padded, seq - 1), extremes=extremes)
    with pytest.MonkeyPatch.context() as patch:     # blocks of several heads, of one head, of one row
        patch.setattr(fusion_attention, "ATTENTION_BLOCK_BYTES", block_bytes)
        got = intref.run(graph, f)["context"]
    assert_identical(got, intref.run(graph, f, fuse=False)["context"], context=f"fused attention {shape}")


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("block_bytes", [1 << 19, 700])
@pytest.mark.parametrize("fill", [-(1 << 31), -(1 << 31) + 1, -1000])
def test_padding_of_one_sequence_and_of_several(batch, block_bytes, fill, monkeypatch):
    """The mask ``[batch, 1, 1, seq]`` is sliced per block in its own shape (a batch of 1 too). A fill
    at the scores' minimum masks (float32 path); one above it is an additive bias (integer path)."""
    graph = attention_graph(fill=fill)
    f = feeds(np.random.default_rng(batch), batch, 9, padded=3, extremes=True)
    monkeypatch.setattr(fusion_attention, "ATTENTION_BLOCK_BYTES", block_bytes)
    assert_identical(intref.run(graph, f)["context"], intref.run(graph, f, fuse=False)["context"],
                     context=f"batch {batch}, padded")


def test_the_scores_bound_at_its_float32_boundary():
    """int8 x int8 over d = 512 keys' width: |scores| <= 128 * 128 * 512 = 2**23, the largest bound the
    plan takes (every max(row) - score <= 2**24, exact in float32); d = 513 is past it and stays unfused.
    At d = 512 the extreme rows reach 2**23 and -127 * 128 * 512, a distance of 2**24 - 2**16."""
    at = attention_graph(d=512, seq=64)
    assert len(at.chains) == 1 and attention_graph(d=513, seq=64).chains == ()
    f = feeds(np.random.default_rng(6), 2, 8, d=512, padded=2, extremes=True)
    f["q"][:, :, 2] = 127                                  # a row reaching -127 * 128 * 512 against k = -128
    assert_identical(intref.run(at, f)["context"], intref.run(at, f, fuse=False)["context"], context="d = 512")
    scores = intref.run(at, f, trace=True)["scores"]
    assert scores.max() == 1 << 23 and scores.min() == -127 * 128 * 512


def test_block_shapes():
    assert fusion_attention._blocking(12, 128, 128) == (8, 128)       # 64 KB a head: 8 heads a block
    assert fusion_attention._blocking(12, 512, 512) == (1, 256)       # 1 MB a head: half its rows
    assert fusion_attention._blocking(12, 1, 1) == (12, 1)


@pytest.mark.parametrize("case", ["scores read twice", "scores an output", "probs an output", "causal",
                                  "int16 operands", "scale"])
def test_no_fusion_where_a_value_is_read_elsewhere_or_a_bound_fails(case):
    if case == "scores read twice":
        b = GraphBuilder("twice", symbols={"batch": 4, "seq": 64})
        q, k, v = (b.input(n, "int8", ["batch", 3, "seq", 16]) for n in "qkv")
        scores = b.add("MatMul", [q, k], "int32", name="scores", attributes={"transpose_b": True})
        sm = prepare_softmax(2e-3, input_bits=32)
        probs = b.add("ISoftmax", [scores], "uint9", name="probs",
                      attributes={name: getattr(sm, name) for name in SOFTMAX_ATTRS})
        b.output(b.add("MatMul", [probs, v], "int32", name="context"),
                 b.add("Requantize", [scores], "int8", name="side", attributes=dict(multiplier=1 << 30, shift=45)))
        graph = b.build()
    elif case == "scores an output":
        graph = attention_graph(outputs=("context", "scores"))
    elif case == "probs an output":
        graph = attention_graph(outputs=("probs", "context"))
    elif case == "causal":
        graph = attention_graph(causal=True)
    elif case == "int16 operands":     # |scores| up to 2**30 * 16: not exact in float32
        graph = attention_graph(qk="int16")
    else:                              # the exp table does not fit (i-exp path): no carrier
        graph = attention_graph(scale=1e-9)
        assert "i-exp" in dict((e.split()[0], e) for e in format_plan(graph))["probs"]
    assert graph.chains == ()
    f = feeds(np.random.default_rng(3), 2, 9)
    if case == "int16 operands":
        f["q"], f["k"] = (f[n].astype(np.int16) * np.int16(64) for n in "qk")   # past float32 exactness
    if case != "scores read twice":
        out = intref.run(graph, f)
        assert_identical(out["context"], intref.run(graph, f, fuse=False)["context"], context=case)


def test_an_override_inside_runs_the_three_ops_unfused():
    graph = attention_graph()
    f = feeds(np.random.default_rng(4), 2, 20)
    probs = np.zeros((2, 3, 20, 20), np.uint16)
    probs[..., 0] = 511                                   # the type's top, above output_max: only an override
    assert intref.interpreter.fused_chains(graph, True, {"probs": probs})[1] == {}
    got = intref.run(graph, f, overrides={"probs": probs})["context"]
    assert_identical(got, (511 * f["v"][:, :, :1].astype(np.int32)).repeat(20, axis=2), context="override")


@pytest.mark.parametrize("mask_dims", [("batch", 1, 1, "seq"), ("batch", 3, "seq", "seq"), ("seq", "seq"),
                                       (1, 3, 1, "seq"), ("seq",)])
@pytest.mark.parametrize("values", [(0, -(1 << 31)), (0, 5, -7, -(1 << 31))])
@pytest.mark.parametrize("block_bytes", [1 << 19, 700])
def test_masks_of_every_broadcast_shape(mask_dims, values, block_bytes, monkeypatch):
    """A mask input of any shape that broadcasts to the scores, sliced per block on its own axes:
    a padding one (0 or the minimum: the float32 path) and an additive one (the integer path)."""
    b = GraphBuilder("masks", symbols={"batch": 4, "seq": 64})
    q, k, v = (b.input(n, "int8", ["batch", 3, "seq", 16]) for n in "qkv")
    mask = b.input("mask", "int32", list(mask_dims))
    scores = b.add("MatMul", [q, k], "int32", name="scores", attributes={"transpose_b": True})
    sm = prepare_softmax(2e-3, input_bits=32)
    probs = b.add("ISoftmax", [scores, mask], "uint9", name="probs",
                  attributes={name: getattr(sm, name) for name in SOFTMAX_ATTRS})
    b.output(b.add("MatMul", [probs, v], "int32", name="context"))
    graph = b.build()
    assert len(graph.chains) == 1
    rng = np.random.default_rng(len(mask_dims) * 10 + len(values))
    f = feeds(rng, 2, 11, extremes=True)
    del f["keep"]
    shape = tuple({"batch": 2, "seq": 11}.get(d, d) for d in mask_dims)
    f["mask"] = rng.choice(np.array(values, dtype=np.int32), size=shape, p=None)
    monkeypatch.setattr(fusion_attention, "ATTENTION_BLOCK_BYTES", block_bytes)
    assert_identical(intref.run(graph, f)["context"], intref.run(graph, f, fuse=False)["context"],
                     context=f"mask {mask_dims} of {values}")
