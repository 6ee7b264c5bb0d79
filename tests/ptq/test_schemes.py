"""ZeroQuant schemes in the PTQ converter (tiny random BERT): every scheme builds an integer graph
that tracks float, W4/8 puts int4 GroupLinears in the feed-forward layers only, token mode quantizes
every Linear input per token, the options are validated, and the CLI carries them to inspect."""

from __future__ import annotations

import numpy as np
import pytest

import intref
from intref.cli import main
from intref.convert.ptq import cosine_summary, integer_embeddings, load_checkpoint
from intref.convert.ptq import calibrate as cal
from intref.convert.ptq.convert import build_ptq
from intref.convert.ptq.random_checkpoint import SENTENCES, write_checkpoint
from intref.convert.ptq.convert import DEFAULTS
from intref.convert.ptq.schemes import W4_SMOOTHQUANT, W48_DEFAULTS, Scheme, scheme_from_options
from intref.inspect_schemes import layer_schemes

CALIB = SENTENCES * 4


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return load_checkpoint(write_checkpoint(tmp_path_factory.mktemp("ckpt") / "bert", "bert", seed=1))


@pytest.fixture(scope="module")
def stats(bert):
    return cal.collect(bert, CALIB, grams=True)        # gptq, the w4/8 default, needs the Gram matrices


@pytest.mark.parametrize("options", [dict(weights="w8", act="token"), dict(weights="w4/8", group_size=16),
                                     dict(weights="w4/8", groups=4, group_axis="out", act="token"),
                                     dict(weights="w4", group_size=8, act="static"), dict(weights="w8", groups=2),
                                     dict(weights="w4/8", group_size=16, table_bits=4),
                                     dict(weights="w4/8", group_size=16, weight_quant="mse"),
                                     dict(weights="w4", act="token", weight_quant="gptq"),
                                     dict(weights="w4", groups=4, group_axis="out", weight_quant="act")])
def test_every_scheme_builds_a_graph_that_tracks_float(bert, stats, options):
    graph, report = build_ptq(bert, stats, **options)
    assert graph.may_overflow == ()
    assert all(t.data.dtype.kind in "iu" for t in graph.tensors.values())
    assert report["scheme"] == scheme_from_options(**options).describe()
    cos = cosine_summary(bert.embed(SENTENCES), integer_embeddings(graph, bert, SENTENCES))
    assert cos["mean"] > 0.98, (options, cos)


def test_w48_puts_int4_in_the_feed_forward_layers_only_and_groups_everywhere_when_asked(bert, stats):
    graph, _ = build_ptq(bert, stats, weights="w4/8", group_size=16, act="token", group_int8=True,
                         weight_quant="max")
    schemes = dict(layer_schemes(graph))
    assert schemes["layer0.ffn.linear1.token_acc"] == "w4 in-groups of 16, act token, weights by max"
    assert schemes["layer1.ffn.linear2.token_acc"] == "w4 in-groups of 16, act token, weights by max"
    assert schemes["layer0.q.linear.token_acc"] == "w8 in-groups of 16, act token, weights by max"   # ZeroQuant's way
    assert schemes["layer1.attn.linear.token_acc"] == "w8 in-groups of 16, act token, weights by max"
    assert graph.tensors["layer0.ffn.linear1.weight"].layout == "int4_packed"
    assert graph.tensors["layer0.q.linear.weight"].type.name == "int8"
    multiplier = graph.tensors["layer0.ffn.linear1.multiplier"]
    assert multiplier.type.name == "uint16" and int(multiplier.data.max()) == 1 << 15     # a 15-bit mantissa


def test_w48_default_keeps_int8_attention_per_channel_without_multipliers(bert, stats):
    graph, report = build_ptq(bert, stats, weights="w4/8", group_size=16)
    schemes = dict(layer_schemes(graph))
    assert schemes["layer0.ffn.linear1.token_acc"] == "w4 in-groups of 16, act token, weights by gptq"
    assert schemes["layer0.q.linear.token_acc"] == "w8 per channel, act token, weights by gptq"
    assert "layer0.q.linear.multiplier" not in graph.tensors
    assert report["scheme"] == "w4/8 in-groups of 16 (int8 layers per channel), act token, weights by gptq"
    gemm_weights = {n.inputs[1] for n in graph.nodes if n.op in ("Linear", "GroupLinear")}
    assert set(graph.metadata["weight_quant"]) == gemm_weights
    assert set(graph.metadata["weight_quant"].values()) == {"gptq"}


def test_token_mode_quantizes_every_linear_input_per_token_and_the_scales_are_in_the_trace(bert, stats):
    graph, _ = build_ptq(bert, stats, weights="w8", act="token")
    linears = [n for n in graph.nodes if n.op == "Linear"]
    assert len(linears) == 12
    producers = {o.name: n for n in graph.nodes for o in n.outputs}
    for node in linears:
        quantize = producers[node.inputs[0]]
        assert quantize.op == "TokenQuantize"
        assert graph.values[quantize.inputs[0]].type.name == "int16"      # the 16-bit static input
    ids, mask = bert.encode(SENTENCES[:2])
    trace = intref.run(graph, {"input_ids": ids.astype(np.int32), "attention_mask": mask.astype(np.int8)}, trace=True)
    scale = trace["layer0.ffn.linear1.token_scale"]
    assert scale.shape == ids.shape + (1,) and int(scale.min()) >= 1


def test_the_int4_word_table_applies_each_rows_scale_with_integers(bert, stats):
    graph, _ = build_ptq(bert, stats, weights="w8", table_bits=4)
    table, rows = graph.tensors["emb.word.table"], graph.tensors["emb.word.row_scale"]
    assert (table.type.name, table.layout, rows.type.name) == ("int4", "int4_packed", "int16")
    assert int(rows.data.min()) >= 1 and int(rows.data.max()) == 1 << 14
    ids, mask = bert.encode(SENTENCES[:2])
    trace = intref.run(graph, {"input_ids": ids.astype(np.int32), "attention_mask": mask.astype(np.int8)}, trace=True)
    node = next(n for n in graph.nodes if n.name == "emb.word")
    step = next(s for s in graph.steps if s.node.name == "emb.word")
    m, s = step.attrs["multiplier"], step.attrs["shift"]
    e = table.data[ids].astype(np.int64) * rows.data[ids].astype(np.int64)       # the exact product per element
    want = np.clip(np.floor(e * m / 2.0 ** s + 0.5), -128, 127)                   # no tie occurs at this shift
    assert node.op == "TokenRequantize" and np.array_equal(trace["emb.word"], want.astype(np.int8))


def test_the_default_scheme_changes_nothing(bert, stats):
    plain, report = build_ptq(bert, stats)
    assert report["scheme"] == "w8 per channel, act static"
    assert not {n.op for n in plain.nodes} & {"GroupLinear", "TokenScale", "TokenQuantize", "TokenRequantize"}


def test_int4_weights_make_a_smaller_bundle(bert, stats, tmp_path):
    sizes = {}
    for label, options in (("w8", {}), ("w48", dict(weights="w4/8", groups=1, group_axis="out", act="static"))):
        intref.save(build_ptq(bert, stats, **options)[0], tmp_path / f"{label}.zip")
        sizes[label] = (tmp_path / f"{label}.zip").stat().st_size
    assert sizes["w48"] < sizes["w8"]


def test_options_are_validated():
    assert scheme_from_options("w4/8") == Scheme("w4/8", **W48_DEFAULTS)
    assert scheme_from_options("w4/8", act="static").act == "static"
    assert scheme_from_options("w4/8", groups=48, group_axis="out") == Scheme(
        "w4/8", None, 48, "out", "token", weight_quant=W48_DEFAULTS["weight_quant"], group_int8=False)
    assert scheme_from_options("w4/8", group_int8=True).group_int8
    assert scheme_from_options("w8", group_size=8).group_int8
    assert Scheme("w4/8", group_size=64, group_int8=False).group(384, 384, 8) is None
    assert Scheme("w4/8", group_size=64, group_int8=False).group(384, 384, 4) == 64
    assert scheme_from_options("w4").weight_quant == W48_DEFAULTS["weight_quant"] and scheme_from_options("w8", act="token").weight_quant == "max"
    assert scheme_from_options("w4/8", weight_quant="max").weight_quant == "max"
    assert scheme_from_options() == Scheme()
    assert scheme_from_options("w8", table_bits=4).table_bits == 4
    for bad in (dict(weights="w2"), dict(act="dynamic"), dict(group_axis="rows"), dict(group_size=0),
                dict(group_size=16, groups=2), dict(table_bits=2), dict(weight_quant="absmax"), dict(group_int8="on")):
        with pytest.raises(ValueError):
            scheme_from_options(**bad)
    with pytest.raises(ValueError, match="do not divide"):
        Scheme("w8", group_size=24).group(32, 32)
    assert Scheme("w8", group_size=64).group(32, 32) == 32          # a row shorter than a group: one group
    assert Scheme("w8", groups=48, group_axis="out").group(384, 1536) == 8


def test_cli_takes_the_scheme_options_to_inspect(tmp_path, capsys):
    ckpt_dir = write_checkpoint(tmp_path / "c", "bert", seed=3)
    calib = tmp_path / "calib.txt"
    calib.write_text("\n".join(CALIB) + "\n", encoding="utf-8")
    bundle = tmp_path / "model.zip"
    assert main(["convert", "ptq", str(ckpt_dir), "--calib", str(calib), "-o", str(bundle), "--weights", "w4/8",
                 "--group-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "scheme w4/8 in-groups of 16 (int8 layers per channel), act token, weights by gptq" in out
    assert "layer0.ffn.linear1.token_acc  w4 in-groups of 16, act token, weights by gptq" in out
    assert "layer0.q.linear.token_acc     w8 per channel, act token, weights by gptq" in out
    assert main(["convert", "ptq", str(ckpt_dir), "--calib", str(calib), "-o", str(tmp_path / "g.zip"), "--weights",
                 "w4/8", "--group-size", "16", "--int8-groups", "on", "--weight-quant", "mse"]) == 0
    assert "layer0.q.linear.token_acc     w8 in-groups of 16, act token, weights by mse" in capsys.readouterr().out
    assert main(["convert", "ptq", str(ckpt_dir), "--calib", str(calib), "-o", str(tmp_path / "x"),
                 "--weights", "w8", "--group-size", "7"]) == 2


def test_each_weight_quantization_uses_its_linears_calibrated_input_and_keeps_int4_in_range(bert, stats):
    factors = cal.smoothing_factors(bert.model, stats, 0.9)
    inputs = cal.linear_input_stats(stats, factors, bert.model.config.layers, grams=True)
    cfg = bert.model.config
    assert len(inputs) == 6 * cfg.layers
    assert inputs["layer0.ffn.linear2"].gram.shape == (cfg.intermediate, cfg.intermediate)
    assert np.allclose(np.diag(inputs["layer1.q.linear"].gram), inputs["layer1.q.linear"].mean_square)
    graphs = {method: build_ptq(bert, stats, weights="w4/8", group_size=16, weight_quant=method)[0]
              for method in ("max", "mse", "act", "gptq")}
    weights = {method: g.tensors["layer0.ffn.linear2.weight"].data for method, g in graphs.items()}
    assert all(-7 <= int(w.min()) and int(w.max()) <= 7 for w in weights.values())
    for a, b in (("max", "mse"), ("mse", "act"), ("act", "gptq")):
        assert not np.array_equal(weights[a], weights[b]), (a, b)
    again = build_ptq(bert, stats, weights="w4/8", group_size=16)[0]                 # gptq, the default
    assert np.array_equal(again.tensors["layer1.ffn.linear1.weight"].data, graphs["gptq"].tensors["layer1.ffn.linear1.weight"].data)
    cos = cosine_summary(bert.embed(SENTENCES), integer_embeddings(graphs["gptq"], bert, SENTENCES))
    assert cos["mean"] > 0.98


def test_gptq_without_gram_matrices_is_refused_naming_the_point(bert, stats):
    with pytest.raises(ValueError, match="Gram matrix of emb.out"):
        build_ptq(bert, cal.collect(bert, CALIB[:4]), weights="w4/8", group_size=16, weight_quant="gptq")


def test_int4_weights_default_to_their_own_smoothquant_alpha(bert, stats):
    assert build_ptq(bert, stats, weights="w4/8")[1]["smoothquant"] == W4_SMOOTHQUANT
    assert build_ptq(bert, stats, weights="w8", act="token")[1]["smoothquant"] == DEFAULTS["smoothquant"]
    assert build_ptq(bert, stats, weights="w4/8", smoothquant=0.7)[1]["smoothquant"] == 0.7
    assert build_ptq(bert, stats, weights="w4", smoothquant=None)[1]["smoothquant"] is None
