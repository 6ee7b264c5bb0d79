"""The HF I-BERT converter (``intref.convert.hf_ibert``) against transformers' IBert: its integer
constants are the reference's own, the two variants differ exactly where they should, bad models
are refused with a clear message, the ``convert`` CLI exit codes.

Every test but the import check needs the ``hf`` extra (torch, transformers) and is skipped, with
that reason, where it is absent. Models are random-weight, built from an ``IBertConfig`` and
calibrated by train-mode passes (``intref.convert.hf_ibert.random_model``): nothing is downloaded.
"""

import subprocess
import sys

import numpy as np
import pytest

LINEARS = {"q.linear": "attention.self.query", "k.linear": "attention.self.key", "v.linear": "attention.self.value",
           "attn.linear": "attention.output.dense", "ffn.linear1": "intermediate.dense",
           "ffn.linear2": "output.dense"}


def test_importing_intref_does_not_import_torch():
    code = ("import sys, intref, intref.convert, intref.cli\n"
            "loaded = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
            "print(loaded); sys.exit(1 if loaded else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def batch(hf):
    from intref.convert.hf_ibert.random_model import random_batches
    return random_batches(np.random.default_rng(7), 120, count=1, batch=3, seq=16)[0]


def _module(root, dotted):
    for part in dotted.split("."):
        root = getattr(root, part)
    return root


def _forward(model, batch):
    import torch
    with torch.no_grad():
        model(input_ids=torch.from_numpy(batch[0]), attention_mask=torch.from_numpy(batch[1]))


def test_int8_weights_tables_and_biases_are_the_references(small, batch):
    from intref.convert.hf_ibert import convert_hf_ibert
    graph, _ = convert_hf_ibert(small)
    _forward(small, batch)   # weight_integer / bias_integer are (re)computed by a forward
    for i, layer in enumerate(small.encoder.layer):
        for name, path in LINEARS.items():
            module, weight = _module(layer, path), graph.tensors[f"layer{i}.{name}.weight"].data
            assert weight.dtype == np.int8 and -127 <= weight.min() and weight.max() <= 126
            np.testing.assert_array_equal(weight, module.weight_integer.numpy())
            np.testing.assert_array_equal(graph.tensors[f"layer{i}.{name}.bias"].data, module.bias_integer.numpy())
            assert np.count_nonzero(graph.tensors[f"layer{i}.{name}.bias"].data)   # a real bias, not zeros
    emb = small.embeddings
    np.testing.assert_array_equal(graph.tensors["emb.word.table"].data, emb.word_embeddings.weight_integer.numpy())
    np.testing.assert_array_equal(graph.tensors["emb.position.table"].data,
                                  emb.position_embeddings.weight_integer.numpy())
    np.testing.assert_array_equal(graph.tensors["emb.token_type.row0"].data,
                                  emb.token_type_embeddings.weight_integer.numpy()[0])


def test_fixed_scales_biases_are_the_patched_references(small, batch):
    from intref.convert.hf_ibert.crosscheck import patched_reference
    from intref.convert.hf_ibert import convert_hf_ibert
    fixed, _ = convert_hf_ibert(small, fix_scales=True)
    faithful, _ = convert_hf_ibert(small)
    with patched_reference(small):
        _forward(small, batch)
    bias = small.encoder.layer[1].attention.self.query.bias_integer.numpy()
    np.testing.assert_array_equal(fixed.tensors["layer1.q.linear.bias"].data, bias)
    # the faithful graph's layer-1 bias is on the stale (embedding output) grid: a different one
    assert not np.array_equal(faithful.tensors["layer1.q.linear.bias"].data, bias)
    _forward(small, batch)   # unpatched again: the stale bias is back
    np.testing.assert_array_equal(faithful.tensors["layer1.q.linear.bias"].data,
                                  small.encoder.layer[1].attention.self.query.bias_integer.numpy())


def test_stale_scale_regrid_nodes_only_in_the_faithful_variant(small):
    from intref.convert.hf_ibert import convert_hf_ibert
    faithful, report = convert_hf_ibert(small)
    fixed, fixed_report = convert_hf_ibert(small, fix_scales=True)
    stale = {n.name for n in faithful.nodes if n.name.endswith((".residual.regrid", ".linear.rebias"))}
    assert stale == {"layer1.residual.regrid", "layer1.q.linear.rebias", "layer1.k.linear.rebias",
                     "layer1.v.linear.rebias"}
    assert not [n.name for n in fixed.nodes if n.name.endswith((".residual.regrid", ".linear.rebias"))]
    assert faithful.metadata["stale_hidden_scale"] is True and fixed.metadata["stale_hidden_scale"] is False
    assert "HF #26738" in report.variant and "fixed" in fixed_report.variant


def test_softmax_output_is_uint9_up_to_256(small):
    from intref.convert.hf_ibert import convert_hf_ibert
    graph, _ = convert_hf_ibert(small)
    for i in range(2):
        node = next(n for n in graph.nodes if n.name == f"layer{i}.probs")
        assert node.op == "ISoftmax" and node.attributes["output_max"] == 256
        assert graph.values[f"layer{i}.probs"].type.name == "uint9"
        assert graph.values[f"layer{i}.probs"].type.hi == 511   # holds the reference's 256


def test_sequence_classification_converts_the_encoder_and_lists_the_head(hf):
    from intref.convert.hf_ibert.crosscheck import crosscheck_hf_ibert
    from intref.convert.hf_ibert import convert_hf_ibert
    from intref.convert.hf_ibert.random_model import random_batches, random_ibert
    model = random_ibert(seed=3, model_class="IBertForSequenceClassification", num_labels=3)
    graph, report = convert_hf_ibert(model)
    assert graph.metadata["model_type"] == "IBertForSequenceClassification"
    assert any(item.startswith("classifier") and "nn.Linear" in item for item in report.left_out)
    assert "left out" in report.to_text() and "classifier" in report.to_text()
    check = crosscheck_hf_ibert(model, graph, random_batches(np.random.default_rng(3), 120, count=1, batch=3,
                                                             seq=14))
    assert check.ok, check.to_text()


def test_convert_refuses_models_it_cannot_import(hf):
    _, transformers = hf
    from intref.convert.hf_ibert import convert_hf_ibert
    from intref.convert.hf_ibert.random_model import SMALL

    def model(**overrides):
        return transformers.IBertModel(transformers.IBertConfig(**{**SMALL, "quant_mode": True, **overrides}))
    with pytest.raises(ValueError, match="not in quant_mode"):
        convert_hf_ibert(model(quant_mode=False))
    with pytest.raises(ValueError, match="force_dequant='gelu'.*float in the reference"):
        convert_hf_ibert(model(force_dequant="gelu"))
    relu = model()
    relu.config.hidden_act = "relu"     # transformers refuses to build one; a hand-edited config still reaches us
    with pytest.raises(ValueError, match="hidden_act='relu'.*only gelu"):
        convert_hf_ibert(relu)
    with pytest.raises(TypeError, match="not an I-BERT model"):
        convert_hf_ibert(object())


def test_convert_cli_exit_codes(small, batch, tmp_path, hf):
    _, transformers = hf
    from intref.bundle import load
    from intref.cli import main
    from intref.convert.hf_ibert import convert_hf_ibert
    from intref.convert.hf_ibert.random_model import SMALL
    from intref.interpreter import run
    model_dir = tmp_path / "model"
    small.save_pretrained(model_dir)
    assert main(["convert", "hf-ibert", str(model_dir), "-o", str(tmp_path / "m.zip")]) == 0
    feeds = {"input_ids": batch[0], "attention_mask": batch[1]}
    saved, in_memory = load(str(tmp_path / "m.zip")), convert_hf_ibert(small)[0]
    np.testing.assert_array_equal(run(saved, feeds)["last_hidden_state"], run(in_memory, feeds)["last_hidden_state"])
    assert main(["convert", "hf-ibert", str(tmp_path), "-o", str(tmp_path / "x.zip")]) == 2      # no config.json
    float_dir = tmp_path / "float"
    transformers.IBertModel(transformers.IBertConfig(**SMALL)).save_pretrained(float_dir)       # quant_mode False
    assert main(["convert", "hf-ibert", str(float_dir), "-o", str(tmp_path / "f.zip")]) == 2
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "f.zip").exists()
