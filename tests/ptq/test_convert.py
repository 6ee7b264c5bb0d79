"""convert_ptq on tiny random checkpoints: an integer-only graph whose pooled output tracks the float
model, every option builds, the CLI writes a bundle that inspects and runs text, and bad input is an
intref error naming the file."""

from __future__ import annotations

import numpy as np
import pytest

import intref
from intref.cli import main
from intref.convert.ptq import convert_ptq, cosine_summary, integer_embeddings, load_checkpoint
from intref.convert.ptq.random_checkpoint import SENTENCES, write_checkpoint
from intref.errors import TextError

CALIB = SENTENCES * 4


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return load_checkpoint(write_checkpoint(tmp_path_factory.mktemp("ckpt") / "bert", "bert", seed=1))


@pytest.fixture(scope="module")
def converted(bert):
    return convert_ptq(bert, CALIB)


def test_the_graph_is_integer_only_and_proven_free_of_overflow(converted):
    graph, report = converted
    assert all(t.data.dtype.kind in "iu" for t in graph.tensors.values())
    assert graph.may_overflow == ()
    assert [o for o in graph.outputs] == ["last_hidden_state", "pooled"]
    assert str(graph.values["pooled"].type) == "int16" and graph.values["pooled"].shape == ("batch", 32)
    assert report["sentences"] == len(CALIB) and report["tokens"] > len(CALIB)
    assert graph.metadata["tokenizer"]["vocab"][:3] == ["[PAD]", "[UNK]", "[CLS]"]


def test_pooled_tracks_the_float_embedding(bert, converted):
    graph, _ = converted
    cos = cosine_summary(bert.embed(SENTENCES), integer_embeddings(graph, bert, SENTENCES))
    assert cos["min"] > 0.99, cos


def test_pooled_is_the_integer_mean_of_last_hidden_state(bert, converted):
    graph, _ = converted
    ids, mask = bert.encode(SENTENCES[:3])
    out = intref.run(graph, {"input_ids": ids.astype(np.int32), "attention_mask": mask.astype(np.int8)})
    total = (out["last_hidden_state"].astype(np.int64) * mask[..., None]).sum(axis=1)
    count = mask.sum(axis=1, keepdims=True)
    assert np.all(np.abs(out["pooled"] * count - total) <= count // 2 + 1)


@pytest.mark.parametrize("options", [dict(observer="minmax", smoothquant=None, output_bits=8),
                                     dict(observer="mse", smoothquant=0.5), dict(observer="percentile", percentile=99.0)])
def test_every_option_builds_a_working_graph(bert, options):
    graph, report = convert_ptq(bert, CALIB, **options)
    assert report["observer"] == options["observer"]
    cos = cosine_summary(bert.embed(SENTENCES[:4]), integer_embeddings(graph, bert, SENTENCES[:4]))
    assert cos["mean"] > 0.97, (options, cos)


def node(graph, name):
    return next(n for n in graph.nodes if n.name == name)


def test_smoothquant_moves_the_outlier_channel_into_the_weights(bert):
    plain, _ = convert_ptq(bert, CALIB, smoothquant=None)
    smooth, _ = convert_ptq(bert, CALIB, smoothquant=0.8)
    # the LayerNorm's integer output multiplier carries gamma / f: channel 3 (gamma x 8) shrinks most
    m_plain = np.asarray(node(plain, "emb.out").attributes["multiplier"], float)
    m_smooth = np.asarray(node(smooth, "emb.out").attributes["multiplier"], float)
    s_plain = 2.0 ** -np.asarray(node(plain, "emb.out").attributes["shift"], float)
    s_smooth = 2.0 ** -np.asarray(node(smooth, "emb.out").attributes["shift"], float)
    ratio = (m_smooth * s_smooth) / (m_plain * s_plain)
    assert np.argmin(ratio) == 3


def test_roberta_positions_convert_too(tmp_path):
    ckpt = load_checkpoint(write_checkpoint(tmp_path / "r", "roberta", seed=2))
    graph, _ = convert_ptq(ckpt, CALIB)
    assert node(graph, "emb.position_ids").attributes["mode"] == "padding_aware"
    cos = cosine_summary(ckpt.embed(SENTENCES), integer_embeddings(graph, ckpt, SENTENCES))
    assert cos["min"] > 0.99, cos


def test_mpnet_relative_position_bias_is_added_in_integers(tmp_path):
    ckpt = load_checkpoint(write_checkpoint(tmp_path / "m", "mpnet", seed=4, max_positions=300))
    graph, _ = convert_ptq(ckpt, CALIB)
    ops = {n.name: n.op for n in graph.nodes}
    assert ops["rel.buckets"] == "RelativeBuckets" and ops["layer1.scores.biased"] == "ResidualAdd"
    assert str(graph.tensors["rel.table"].type) == "int16"
    long_text = " ".join(["good"] * 150)                  # relative distances in the logarithmic buckets
    texts = SENTENCES + [long_text]
    cos = cosine_summary(ckpt.embed(texts), integer_embeddings(graph, ckpt, texts))
    assert cos["mean"] > 0.995 and cos["min"] > 0.98, cos


def test_bad_options_and_empty_calibration(bert):
    with pytest.raises(ValueError, match="observer"):
        convert_ptq(bert, CALIB, observer="entropy")
    with pytest.raises(ValueError, match="smoothquant"):
        convert_ptq(bert, CALIB, smoothquant=1.5)
    with pytest.raises(TextError):
        convert_ptq(bert, [])


def test_cli_converts_inspects_and_runs_text(tmp_path, capsys):
    ckpt_dir = write_checkpoint(tmp_path / "c", "bert", seed=3)
    calib = tmp_path / "calib.txt"
    calib.write_text("\n".join(CALIB) + "\n", encoding="utf-8")
    bundle = tmp_path / "model.zip"
    assert main(["convert", "ptq", str(ckpt_dir), "--calib", str(calib), "-o", str(bundle)]) == 0
    captured = capsys.readouterr()
    assert "calibrate: 32/32 sentences" in captured.err and "build: 2/2 layers" in captured.err
    assert "pooled" in captured.out and "observer mse" in captured.out
    assert main(["inspect", str(bundle)]) == 0
    assert main(["run", str(bundle), "--text", "a good movie", "--out", str(tmp_path / "out")]) == 0
    pooled = np.load(tmp_path / "out" / "pooled.npy")
    assert pooled.shape == (1, 32) and pooled.dtype == np.int16


@pytest.mark.parametrize("content, words", [(b"", "empty"), (b"\n  \n", "empty"), (b"good\n\xff\xfe bad\n", "UTF-8"),
                                            (b"the movie is very very good and great film\n", "exceed")])
def test_cli_bad_calibration_file_exits_2_naming_it(tmp_path, capsys, content, words):
    ckpt_dir = write_checkpoint(tmp_path / "c", "bert", max_positions=8)
    calib = tmp_path / "calib.txt"
    calib.write_bytes(content)
    assert main(["convert", "ptq", str(ckpt_dir), "--calib", str(calib), "-o", str(tmp_path / "b.zip")]) == 2
    err = capsys.readouterr().err
    assert "calib.txt" in err and words in err and "Traceback" not in err
    assert not (tmp_path / "b.zip").exists()


def test_cli_unsupported_checkpoint_exits_2(tmp_path, capsys):
    ckpt_dir = write_checkpoint(tmp_path / "c", "gpt2")
    calib = tmp_path / "calib.txt"
    calib.write_text("good\n")
    assert main(["convert", "ptq", str(ckpt_dir), "--calib", str(calib), "-o", str(tmp_path / "b.zip")]) == 2
    assert "model_type 'gpt2' is not supported" in capsys.readouterr().err
