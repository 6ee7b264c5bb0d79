"""Fused row chains (intref.fusion): which chains the plan finds, and that a fused run gives every
output bit for bit as the unfused one, the float64 carriers' tie fallbacks included (forced by
constants that put products exactly on and next to rounding ties), at the type extremes, with the
per-channel constants, broadcasting operands and block boundaries the base model uses."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import intref
from intref import fusion
from intref.build import GraphBuilder
from intref.errors import IntrefError
from intref.kernels.blocks import rows_per_block
from intref.plan import format_plan, format_profile, plan_summary
from intref.quant import prepare_gelu
from intref.spec.rounding import ROUNDING_MODES
from intref.testing import assert_identical

K, N = 24, 200
SYMBOLS = {"batch": 3, "seq": 700}      # 2,100 rows: 13 row blocks of 163 at N = 200 (fusion.CHAIN_BLOCK_BYTES)
BLOCKS = -(-3 * 700 // rows_per_block(N, fusion.CHAIN_BLOCK_BYTES))


def ints(rng, lo, hi, shape, dtype):
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


def ffn_graph(rng, *, tie: bool, per_channel: bool, gelu_scale=1e-4, rounding="half_even"):
    """The base model's chains: Linear > ResidualAdd(stored bias) > Requantize; Linear > IGelu >
    Requantize > Requantize (table); Linear > ResidualAdd(activation) > ILayerNorm > Requantize. ``tie``: multipliers of
    ``2**(s-j)`` (a factor of ``2**-j``), so every sum that is ``2**(j-1)`` mod ``2**j`` is a tie."""
    b = GraphBuilder("chains", symbols=SYMBOLS)
    x = b.input("x", "int8", ["batch", "seq", K])
    res = b.input("res", "int8", ["batch", "seq", N])

    def mult(count, s, j=1):
        if tie:
            return [1 << (s - j)] * count if per_channel else 1 << (s - j)
        values = rng.integers(1 << 29, 1 << 31, size=count).tolist()
        return values if per_channel else values[0]

    def linear(name, inp, k, n, bias=True):
        inputs = [inp, b.tensor(f"{name}.w", ints(rng, -128, 127, (n, k), np.int8), "int8")]
        if bias:
            inputs.append(b.tensor(f"{name}.b", ints(rng, -(1 << 20), 1 << 20, (n,), np.int32), "int32"))
        return b.add("Linear", inputs, "int32", name=name)

    # q: Linear (no bias) > rebias (ResidualAdd with the stored bias, a factor of 1 on it) > Requantize
    q = linear("q.linear", x, K, N, bias=False)
    bias = b.tensor("q.bias", ints(rng, -(1 << 12), 1 << 12, (N,), np.int32), "int32")
    q = b.add("ResidualAdd", [q, bias], "int32", name="q.rebias", attributes=dict(
        multiplier_a=mult(N, 30), shift_a=30, multiplier_b=1 << 30, shift_b=30, rounding=rounding))
    q = b.add("Requantize", [q], "int8", name="q",
              attributes=dict(multiplier=mult(N, 41, 11), shift=41, rounding=rounding))
    # FFN: Linear > IGelu > Requantize (int54 > int8) > Requantize (int8 table)
    h = linear("ffn.linear1", q, N, N)
    g = prepare_gelu(np.full(N, gelu_scale) if per_channel else gelu_scale, input_bits=32)
    attrs = {name: (list(v) if isinstance(v, tuple) else v) for name, v in
             dict(b_int=g.b_int, c_int=g.c_int, shift_int=g.shift_int, guard_shift=g.guard_shift).items()}
    h = b.add("IGelu", [h], "int64", name="gelu", attributes=attrs)
    h = b.add("Requantize", [h], "int8", name="gelu.out",
              attributes=dict(multiplier=mult(N, 50, 20), shift=50, rounding=rounding))
    h = b.add("Requantize", [h], "int8", name="ffn.mid",
              attributes=dict(multiplier=(3 << 29) + 1, shift=31, rounding=rounding))
    # Linear > ResidualAdd with an activation (the residual)
    y = linear("ffn.linear2", h, N, N)
    y = b.add("ResidualAdd", [y, res], "int16", name="ffn.sum", attributes=dict(
        multiplier_a=mult(N, 40, 10), shift_a=40, multiplier_b=5, shift_b=int(tie), rounding=rounding))
    # ... > ILayerNorm (a row-wise op: a block is whole rows) > Requantize
    y = b.add("ILayerNorm", [y], "int32", name="ln",
              attributes=dict(shift=2, bias_int=ints(rng, -(1 << 20), 1 << 20, (N,), np.int64).tolist()))
    b.output(b.add("Requantize", [y], "int8", name="out",
                   attributes=dict(multiplier=mult(N, 40, 20), shift=40, rounding=rounding)))
    return b.build()


def feeds(rng, shape=(3, 700)):
    x = ints(rng, -128, 127, shape + (K,), np.int8)
    x[0, :8] = -128                               # rows at the type's extremes
    x[0, 8:16] = 127
    return {"x": x, "res": ints(rng, -128, 127, shape + (N,), np.int8)}


def test_the_plan_finds_the_base_models_chains():
    graph = ffn_graph(np.random.default_rng(0), tie=False, per_channel=True)
    assert [chain.names for chain in graph.chains] == [
        ("q.linear", "q.rebias", "q"), ("ffn.linear1", "gelu", "gelu.out", "ffn.mid"),
        ("ffn.linear2", "ffn.sum", "ln", "out")]
    assert "fused chains: 3" in " ".join(plan_summary(graph))
    assert any(line.startswith("q.linear+q.rebias+q") for line in format_plan(graph))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans(), st.booleans(), st.sampled_from([1e-4, 3e-3, 0.05]),
       st.sampled_from(ROUNDING_MODES))
def test_fused_run_equals_the_unfused_run_bit_for_bit(seed, tie, per_channel, gelu_scale, rounding):
    rng = np.random.default_rng(seed)
    graph = ffn_graph(rng, tie=tie, per_channel=per_channel, gelu_scale=gelu_scale, rounding=rounding)
    f = feeds(rng)
    unfused = intref.run(graph, f, fuse=False)
    assert_identical(intref.run(graph, f)["out"], unfused["out"], context="fused == unfused")
    assert_identical(intref.run(graph, f, trace=True)["out"], unfused["out"], context="trace")


def test_a_tie_is_resolved_by_the_integer_path_and_that_is_what_keeps_it_exact(monkeypatch):
    rng = np.random.default_rng(7)
    graph = ffn_graph(rng, tie=True, per_channel=False, rounding="half_away")
    f = feeds(rng)
    calls = []
    original = fusion.integer_block
    monkeypatch.setattr(fusion, "integer_block", lambda *args: calls.append(args[0].names) or original(*args))
    unfused = intref.run(graph, f, trace=True)
    assert_identical(intref.run(graph, f)["out"], unfused["out"], context="ties")
    assert BLOCKS > 1 and calls.count(("q.linear", "q.rebias", "q")) == BLOCKS   # every block holds odd sums
    # The float estimate alone (rint: ties to even) is wrong on those ties under half_away: the
    # fallback, not luck, keeps the fused run exact.
    acc = unfused["q.linear"].astype(np.float64)
    bias = graph.tensors["q.bias"].data.astype(np.float64)
    assert (np.rint(acc * 0.5) + bias != unfused["q.rebias"]).any()
    q = graph.steps[[s.node.name for s in graph.steps].index("q.rebias")]
    assert q.prepared.carrier(np.full((1, N), 5.0), bias) is None          # 2.5: a tie, not proven
    assert q.prepared.carrier(np.full((1, N), 6.0), bias) is not None


def test_a_generic_run_carries_every_block(monkeypatch):
    rng = np.random.default_rng(8)
    graph = ffn_graph(rng, tie=False, per_channel=True)
    calls = []
    original = fusion.integer_block
    monkeypatch.setattr(fusion, "integer_block", lambda *args: calls.append(args[0].names) or original(*args))
    intref.run(graph, feeds(rng))
    assert calls == []          # near-tie margins are at most 2**-27 here: no block of 32,600 sums falls back


def test_no_chain_where_a_value_inside_is_asked_for():
    rng = np.random.default_rng(1)
    graph = ffn_graph(rng, tie=False, per_channel=True)
    f = feeds(rng)
    expected = intref.run(graph, f, trace=True)
    # an override of a value inside a chain: that chain runs unfused, the others stay fused
    override = {"gelu.out": np.zeros_like(expected["gelu.out"])}
    assert set(intref.interpreter.fused_chains(graph, True, override)[1]) == {"q", "out"}
    got = intref.run(graph, f, overrides=override)
    assert_identical(got["out"], intref.run(graph, f, overrides=override, fuse=False)["out"], context="override")
    # an override of a chain's last value: that chain runs unfused, and the next chain, fed the
    # override (any values of its type, here its extremes), still gives the unfused result
    for fill in (-128, 127):
        override = {"q": np.full_like(expected["q"], fill)}
        assert set(intref.interpreter.fused_chains(graph, True, override)[1]) == {"ffn.mid", "out"}
        assert_identical(intref.run(graph, f, overrides=override)["out"],
                         intref.run(graph, f, overrides=override, fuse=False)["out"], context=f"q = {fill}")
    # a value read twice, or a graph output, ends a chain
    b = GraphBuilder("two", symbols=SYMBOLS)
    x = b.input("x", "int8", ["batch", "seq", K])
    acc = b.add("Linear", [x, b.tensor("w", ints(rng, -128, 127, (N, K), np.int8), "int8")], "int32", name="fc")
    one = b.add("Requantize", [acc], "int8", name="rq1", attributes=dict(multiplier=1 << 30, shift=40))
    two = b.add("Requantize", [acc], "int8", name="rq2", attributes=dict(multiplier=3 << 29, shift=41))
    b.output(one, two)
    assert b.build().chains == ()
    b = GraphBuilder("out", symbols=SYMBOLS)
    x = b.input("x", "int8", ["batch", "seq", K])
    acc = b.add("Linear", [x, b.tensor("w", ints(rng, -128, 127, (N, K), np.int8), "int8")], "int32", name="fc")
    b.output(acc, b.add("Requantize", [acc], "int8", name="rq", attributes=dict(multiplier=1 << 30, shift=40)))
    assert b.build().chains == ()


def test_a_run_drops_each_value_after_its_last_reader_and_a_chain_reads_at_its_last_node():
    rng = np.random.default_rng(5)
    graph = ffn_graph(rng, tie=False, per_channel=True)
    at = {step.node.name: i for i, step in enumerate(graph.steps)}
    fused = intref.interpreter.last_reads(graph, intref.interpreter.fused_chains(graph, True, {})[1])
    unfused = intref.interpreter.last_reads(graph, {})
    # "res" is read by ffn.sum, inside the chain that runs at "out": dropped there, not before
    assert "res" in fused[at["out"]] and "res" in unfused[at["ffn.sum"]]
    assert "q" in fused[at["ffn.mid"]] and "q" in unfused[at["ffn.linear1"]]
    dropped = {name for names in fused.values() for name in names}
    assert "out" not in dropped and not dropped & set(graph.tensors)
    # and it does drop: the run's peak of traced NumPy memory is a fraction of a traced run's,
    # which keeps every value (each int32 value here is 1.7 MB)
    import tracemalloc
    f = feeds(rng)
    peaks = {}
    for trace in (True, False):
        tracemalloc.start()
        out = intref.run(graph, f, trace=trace, fuse=False)["out"]
        peaks[trace] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert_identical(out, intref.run(graph, f)["out"], context=f"trace={trace}")
    assert peaks[False] < peaks[True] / 2, peaks


def test_a_chain_needs_one_exact_gemm_call_and_sums_inside_the_declared_type():
    rng = np.random.default_rng(2)
    signs = np.where(rng.random((N, 600)) < 0.5, -128, 127).astype(np.int8)    # |row sums| near 600 * 128
    for x_type, out_type, chained in (("int8", "int16", False),    # sums may leave int16: the run's policy acts
                                      ("uint8", "int32", False),   # 255 * 76,800 > 2**24: K-chunked sgemm
                                      ("int16", "int64", True)):   # one dgemm: exact, carried
        b = GraphBuilder("gemm", symbols=SYMBOLS)
        x = b.input("x", x_type, ["batch", "seq", 600])
        acc = b.add("Linear", [x, b.tensor("w", signs, "int8")], out_type, name="fc")
        b.output(b.add("Requantize", [acc], "int8", name="rq", attributes=dict(multiplier=1 << 30, shift=40)))
        graph = b.build()
        assert bool(graph.chains) == chained, (x_type, out_type, graph.steps[0].prepared.path)
        info = np.iinfo(np.dtype(x_type))
        f = {"x": ints(rng, info.min, info.max, (2, 300, 600), np.dtype(x_type))}
        f["x"][0] = info.min
        run = dict(overflow="saturate")     # the int16 sums do leave their type: the policy clamps them
        assert_identical(intref.run(graph, f, **run)["rq"], intref.run(graph, f, fuse=False, **run)["rq"],
                         context=x_type)


def test_profile_lists_a_chain_as_one_entry_and_errors_name_the_node(monkeypatch):
    rng = np.random.default_rng(3)
    graph = ffn_graph(rng, tie=False, per_channel=True)
    f = feeds(rng)
    timings = []
    out = intref.run(graph, f, profile=timings)["out"]
    names = [step.node.name for step, _ in timings]
    assert names == ["q.linear+q.rebias+q", "ffn.linear1+gelu+gelu.out+ffn.mid", "ffn.linear2+ffn.sum+ln+out"]
    assert "Fused(Linear>IGelu>Requantize>Requantize)" in "\n".join(format_profile(timings))

    def broken(chain, values):
        raise IntrefError("inside a chain")
    monkeypatch.setattr(fusion.Chain, "run", broken)   # the unfused nodes take over
    assert_identical(intref.run(graph, f)["out"], out, context="unfused after an error")
