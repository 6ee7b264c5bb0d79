"""``intref.convert.hf_ibert.crosscheck``: intref against transformers' IBert (quant_mode=True) at every
quantization point, end to end and isolated, every difference attributed to a float32 artifact of
the reference by recomputation; the ``crosscheck`` CLI.

Needs the ``hf`` extra (torch, transformers); skipped with that reason where it is absent. Models
are small random-weight I-BERTs calibrated by train-mode passes (``intref.convert.hf_ibert.random_model``).
"""

import dataclasses

import numpy as np
import pytest



@pytest.fixture(scope="module")
def graphs(small):
    from intref.convert.hf_ibert import convert_hf_ibert
    return {"faithful": convert_hf_ibert(small)[0], "fixed": convert_hf_ibert(small, fix_scales=True)[0]}


def batches(padding: bool):
    from intref.convert.hf_ibert.random_model import random_batches
    if padding:
        return random_batches(np.random.default_rng(1), 120, count=2, batch=4, seq=16)
    return random_batches(np.random.default_rng(2), 120, count=1, batch=3, seq=12, pad=False)


def assert_targets(report):
    from intref.convert.hf_ibert.report import ISOLATED
    int8 = [s for s in report.rows(ISOLATED) if s.type == "int8"]
    assert len(int8) == 1 + 2 * 9     # emb.out and 9 int8 points per layer
    for stats in int8:
        assert stats.max_abs <= 1 and stats.fraction <= 2e-4, (stats.point, stats.mismatches, stats.max_abs)
    assert report.unexplained(ISOLATED) == 0
    assert report.cosine >= 0.9999 and report.hidden_match >= 0.999
    assert report.ok, report.to_text()


@pytest.mark.parametrize("padding", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("variant", ["faithful", "fixed"])
def test_targets_hold(small, graphs, padding, variant):
    from intref.convert.hf_ibert.crosscheck import crosscheck_hf_ibert
    from intref.convert.hf_ibert.report import END_TO_END, ISOLATED
    data = batches(padding)
    report = crosscheck_hf_ibert(small, graphs[variant], data)
    assert_targets(report)
    assert ("patched" in report.reference) == (variant == "fixed")
    # only real tokens are compared: tokens x hidden; probs: heads x real rows x real columns
    lengths = np.concatenate([mask.sum(axis=1) for _, mask in data])
    assert report.tokens == lengths.sum()
    for mode in (END_TO_END, ISOLATED):
        assert report.node("emb.out", mode).elements == lengths.sum() * 64
        assert report.node("layer1.gelu.out", mode).elements == lengths.sum() * 256
        assert report.node("layer0.probs", mode).elements == 4 * int((lengths ** 2).sum())
    text = report.to_text()
    assert "layer1.ffn.sum" in text and "verdict: PASS" in text


def test_capture_reference(small):
    import torch
    from intref.convert.hf_ibert.crosscheck import capture_reference
    ids, mask = batches(True)[0]
    captured = capture_reference(small, ids, mask)
    names = {"emb.word_type", "emb.sum", "emb.out", "last_hidden_state"}
    names |= {f"layer{i}.{p}" for i in range(2) for p in ("q", "k", "v", "probs", "context", "attn.sum", "attn.out",
                                                          "ffn.in", "gelu.out", "ffn.mid", "ffn.sum", "out")}
    assert set(captured) == names
    assert all(captured[n].dtype == np.int64 for n in names - {"last_hidden_state"})
    with torch.no_grad():
        hidden = small(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    np.testing.assert_array_equal(captured["last_hidden_state"], hidden.numpy())
    scale = small.encoder.layer[1].output.output_activation.act_scaling_factor.numpy()
    np.testing.assert_array_equal((captured["layer1.out"] * scale).astype(np.float32), hidden.numpy())
    assert captured["layer0.out"].min() >= -128 and captured["layer0.out"].max() <= 127
    rows = captured["layer0.probs"].sum(axis=-1)[mask.astype(bool)[:, None, :].repeat(4, axis=1)]
    assert rows.min() >= 256 - 16 and rows.max() <= 256     # floors: each row sums to at most 256


@pytest.mark.parametrize("variant", ["faithful", "fixed"])
def test_replays_reproduce_the_reference_and_the_exact_meaning_is_intrefs(small, graphs, variant):
    """The artifact analysis is only as good as its replays: at every point, with every step as the
    reference runs it, the replay reproduces the reference bit for bit; with every step exact (the
    reference's integer meaning, computed without intref's graph) it equals intref's isolated value."""
    import contextlib
    from intref.convert.hf_ibert.artifacts import explain
    from intref.convert.hf_ibert.capture import capture, ordered_points, patched_reference
    from intref.convert.hf_ibert.crosscheck import _isolated_values, compared, value_names
    graph = graphs[variant]
    ids, mask = batches(True)[0]
    with patched_reference(small) if variant == "fixed" else contextlib.nullcontext():
        cap = capture(small, ids, mask)
    names = value_names(graph, ordered_points(2))
    isolated = _isolated_values(graph, names, cap.ints, {"input_ids": ids, "attention_mask": mask})
    keep = mask.astype(bool)
    for point in names:
        where = compared(cap.ints[point].shape, keep, point)
        result = explain(point, cap, keep, cap.ints[point], isolated[point], where)
        assert result.reproduces_reference and result.exact_equals_intref, point


def test_patched_reference_gives_each_layer_its_input_scale_and_restores(small):
    from intref.convert.hf_ibert.capture import capture, patched_reference
    ids, mask = batches(True)[0]
    before = capture(small, ids, mask)
    with patched_reference(small):
        patched = capture(small, ids, mask)
    after = capture(small, ids, mask)
    assert patched.linears["layer1.q"][2].item() == patched.acts["layer0.out"].z_sf.item()
    assert before.linears["layer1.q"][2].item() == before.acts["emb.out"].z_sf.item() != \
        before.acts["layer0.out"].z_sf.item()
    assert not np.array_equal(patched.ints["layer1.q"], before.ints["layer1.q"])
    for name in before.ints:
        np.testing.assert_array_equal(after.ints[name], before.ints[name])


def test_fixed_graph_against_the_unpatched_reference_is_not_explained(small, graphs):
    """Control: the check can fail. The fixed-scales graph, checked as if it were faithful, meets
    the unpatched reference, and its layer-1 differences are reported as NOT EXPLAINED."""
    from intref.convert.hf_ibert.crosscheck import crosscheck_hf_ibert
    graph = _rebuilt(graphs["fixed"], metadata={"stale_hidden_scale": True})
    report = crosscheck_hf_ibert(small, graph, batches(True))
    assert not report.ok
    assert report.node("layer0.q").mismatches == 0
    assert report.node("layer1.q").artifacts.get("unexplained.intref", 0) > 0
    assert "NOT EXPLAINED" in report.to_text() and "verdict: FAIL" in report.to_text()


def _rebuilt(graph, *, metadata=None, node=None, attributes=None):
    from intref.graph import Graph
    nodes = [dataclasses.replace(n, attributes={**n.attributes, **attributes}) if n.name == node else n
             for n in graph.nodes]
    return Graph(name=graph.name, inputs=graph.inputs, outputs=graph.outputs, nodes=nodes,
                 tensors=graph.tensors.values(), symbols=graph.symbols, quantization=graph.quantization,
                 metadata={**graph.metadata, **(metadata or {})}, producer=graph.producer)


def test_a_wrong_constant_is_reported_unexplained(small, graphs):
    from intref.convert.hf_ibert.crosscheck import crosscheck_hf_ibert
    from intref.convert.hf_ibert.report import END_TO_END
    graph = graphs["faithful"]
    step = next(s for s in graph.steps if s.node.name == "layer0.ffn.in")
    tampered = _rebuilt(graph, node="layer0.ffn.in", attributes={"multiplier": step.attrs["multiplier"] * 103 // 100})
    report = crosscheck_hf_ibert(small, tampered, batches(True))
    stats = report.node("layer0.ffn.in")
    assert stats.mismatches > 0 and stats.artifacts == {"unexplained.intref": stats.mismatches}
    assert report.node("layer0.attn.out").mismatches == 0      # upstream untouched
    assert report.node("layer0.ffn.in", END_TO_END).artifacts["unexplained.intref"] > 0
    text = report.to_text()
    assert not report.ok and "first unexplained differences" in text and "layer0.ffn.in (isolated)" in text
    unisolated = crosscheck_hf_ibert(small, tampered, batches(True), isolate=False)
    assert not unisolated.isolated and not unisolated.ok
    assert set(unisolated.node("layer0.ffn.in", END_TO_END).artifacts) == {"unclassified"}


def test_float32_exp_overflow_is_detected_and_named(hf):
    """At the default initializer_range 0.02 and hidden 64 the score scale is so small that the
    reference's exp requant overflows float32 (exp_int / exp_sf = inf) and saturates: a reference
    artifact, named as such, never an unexplained difference."""
    import torch
    from intref.convert.hf_ibert.crosscheck import crosscheck_hf_ibert
    from intref.convert.hf_ibert import convert_hf_ibert
    from intref.convert.hf_ibert.random_model import random_ibert
    model = random_ibert(seed=0, initializer_range=0.02)
    report = crosscheck_hf_ibert(model, convert_hf_ibert(model)[0], batches(True))
    for i in range(2):
        stats = report.node(f"layer{i}.probs")
        assert stats.mismatches > 0 and set(stats.artifacts) == {"softmax.exp_overflow"}
    assert report.unexplained() == 0 and "softmax.exp_overflow" in report.to_text()
    assert report.node("layer0.context", "end-to-end").artifacts.get("propagated", 0) > 0
    assert not report.ok     # the reference's saturated softmax leaves the end-to-end targets out of reach
    # the premise, recomputed directly: exp(0)'s exp_int / exp_sf exceeds float32's range
    softmax = model.encoder.layer[0].attention.self.softmax
    s = (model.encoder.layer[0].attention.self.query_activation.act_scaling_factor
         * model.encoder.layer[0].attention.self.key_activation.act_scaling_factor / 4.0)
    exp_int = torch.floor(softmax.coef[2] / s ** 2) * 2.0 ** 30
    assert torch.isinf(exp_int / (softmax.coef[0] * s ** 2 / 2 ** 30)).all()


def test_layernorm_float32_artifacts_are_found_and_named(hf):
    """Wide LayerNorm rows (22-bit input, shift 0: a variance near 2**43) through the reference's
    IntLayerNorm and QuantAct(8): the replay reproduces it, intref's own kernels (with the
    converter's constants) compute the all-exact replay, and every difference is named by a
    LayerNorm step or its requant: float32 drift, never an unexplained one."""
    import torch
    from transformers.models.ibert.quant_modules import IntLayerNorm, QuantAct
    from intref.convert.hf_ibert.artifacts import label_differences
    from intref.convert.hf_ibert.capture import ActCall
    from intref.convert.hf_ibert.derivation import HFDerivation
    from intref.convert.hf_ibert.emulate import f32, layernorm_steps, replays, requant_steps
    from intref.kernels import i_layernorm, requantize
    rng = np.random.default_rng(11)
    channels, rows = 768, 500
    q = rng.normal(0, 2 ** 17, (1, rows, channels)) + rng.normal(0, 2 ** 18, (1, rows, 1))
    q = np.clip(np.rint(q), -2 ** 21, 2 ** 21 - 1).astype(np.int64)
    gamma, beta = rng.uniform(0.5, 1.5, channels).astype(np.float32), rng.normal(0, 0.3, channels).astype(np.float32)
    ln, act = IntLayerNorm(channels, 1e-5, output_bit=32, quant_mode=True).eval(), QuantAct(8, quant_mode=True).eval()
    with torch.no_grad():
        ln.weight.copy_(torch.from_numpy(gamma))
        ln.bias.copy_(torch.from_numpy(beta))
        sf = torch.tensor([3e-4])
        x = f32(q) * sf
        y, y_sf = ln(x, sf)
        act.x_min, act.x_max = torch.tensor([-3.0]), torch.tensor([3.0])
        out, out_sf = act(y, y_sf)
        call = ActCall(y, y_sf, None, None, out, out_sf, 8)
        steps = layernorm_steps(ln, y_sf) + requant_steps(call, "ln.grid", None, lambda s: f32(s["y"]) * y_sf,
                                                          lambda s: s["y"], None)
        outs = replays(steps, {"x": x, "sf": sf, "q": q}, lambda s: np.asarray(s["out"], dtype=np.int64))
    reference = call.ints()
    np.testing.assert_array_equal(outs[0], reference)
    d = HFDerivation()
    params = d.layernorm(gamma, beta, 22, 0)
    m, e = d.ratio(np.asarray(params.out_scale) / float(out_sf.item()))
    exact = requantize(i_layernorm(q, params), np.asarray(m), np.asarray(e), bits=8).astype(np.int64)
    np.testing.assert_array_equal(outs[-1], exact)
    differ = reference != exact
    assert 0 < differ.sum() <= 1e-3 * differ.size and np.abs(reference - exact).max() == 1
    labels = set(label_differences([s.key for s in steps], outs, reference, exact)[differ])
    assert labels and all(label.startswith("ln.") or label == "requant.float64" for label in labels), labels


def test_softmax_256_is_the_float32_product(hf):
    """One dominant score: the exp code 32767 alone in its row. Exactly, 32767 * (2**32 // 32767)
    >> 24 = 255; the reference's float32 product rounds to 2**32 and gives 256."""
    import torch
    from transformers.models.ibert.quant_modules import IntSoftmax
    from intref.convert.hf_ibert.artifacts import label_differences
    from intref.convert.hf_ibert.derivation import HFDerivation
    from intref.convert.hf_ibert.emulate import as_ints, f32, replays, softmax_steps
    from intref.kernels import i_softmax
    softmax = IntSoftmax(8, quant_mode=True).eval()
    s = torch.tensor([1e-3])
    top = torch.floor(softmax.coef[2] / s ** 2) * 2.0 ** 30        # exp_int of a zero difference
    softmax.act.x_min, softmax.act.x_max = -top, top
    q = np.array([[[[0, -30000, -30000, -30000], [0, -300, -900, -30]]]], dtype=np.int64)
    with torch.no_grad():
        reference = as_ints(torch.round(softmax(f32(q) * s, s)[0] * 256))
        outs = replays(softmax_steps(softmax), {"x": f32(q) * s, "s": s, "q": q},
                       lambda st: as_ints(st["out"]) if isinstance(st["out"], torch.Tensor) else st["out"])
    np.testing.assert_array_equal(outs[0], reference)
    params = HFDerivation().softmax(float(s.item()), 32, 256, exp_ratio=1.0 / float(softmax.act.act_scaling_factor))
    exact = i_softmax(q, params).astype(np.int64)
    np.testing.assert_array_equal(outs[-1], exact)
    assert reference[0, 0, 0, 0] == 256 and exact[0, 0, 0, 0] == 255
    labels = label_differences([st.key for st in softmax_steps(softmax)], outs, reference, exact)
    assert labels[0, 0, 0, 0] == "softmax.product"
    assert set(labels[reference != exact]) == {"softmax.product"}


TEXT = ["the water was long and the day was long", "people could write more than one number",
        "how many words are there", "she said it would come", "look at them", "what time is it"]


def test_crosscheck_cli_exit_codes(small, tmp_path, capsys):
    from intref.cli import main
    from intref.convert.hf_ibert.random_model import random_ibert, save_word_tokenizer
    good, broken, text = tmp_path / "good", tmp_path / "overflow", tmp_path / "text.txt"
    text.write_text("\n".join(TEXT) + "\n\n", encoding="utf-8")
    small.save_pretrained(good)
    save_word_tokenizer(str(good), small.config.vocab_size)
    args = ["crosscheck", "hf-ibert", str(good), "--text", str(text), "--batch", "4"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "verdict: PASS" in out and "real tokens: " in out and "pooler" in out
    assert main(args + ["--fix-scales"]) == 0
    assert "patched" in capsys.readouterr().out
    random_ibert(seed=0, initializer_range=0.02).save_pretrained(broken)     # its softmax saturates (see above)
    save_word_tokenizer(str(broken), small.config.vocab_size)
    assert main(["crosscheck", "hf-ibert", str(broken), "--text", str(text)]) == 1
    assert "verdict: FAIL" in capsys.readouterr().out
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    no_tokenizer = tmp_path / "bare"
    small.save_pretrained(no_tokenizer)
    for bad in (["--text", str(tmp_path / "missing.txt")], ["--text", str(tmp_path / "empty.txt")],
                ["--text", str(text), "--batch", "0"]):
        assert main(["crosscheck", "hf-ibert", str(good)] + bad) == 2
    assert main(["crosscheck", "hf-ibert", str(no_tokenizer), "--text", str(text)]) == 2
    assert main(["crosscheck", "hf-ibert", str(tmp_path), "--text", str(text)]) == 2      # no config.json
    err = capsys.readouterr().err
    assert "no non-empty line" in err and "tokenizer" in err and "no config.json" in err
