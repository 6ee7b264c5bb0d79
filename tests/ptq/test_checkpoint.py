"""load_checkpoint: families, weight mapping, and every bad checkpoint named by file and field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from intref.convert.ptq import load_checkpoint
from intref.convert.ptq.checkpoint import mean_pool
from intref.errors import CheckpointError, SafetensorsError, TextError
from intref.convert.ptq.random_checkpoint import SENTENCES, VOCAB, config_for, random_tensors, write_checkpoint


def test_bert_and_roberta_families(tmp_path):
    bert = load_checkpoint(write_checkpoint(tmp_path / "bert", "bert", prefix="bert."))
    assert (bert.family, bert.model.config.position_mode, bert.model.config.pad_token_id) == ("bert", "arange", 0)
    assert bert.max_tokens == 40
    roberta = load_checkpoint(write_checkpoint(tmp_path / "roberta", "roberta"))
    assert (roberta.family, roberta.model.config.position_mode) == ("roberta", "padding_aware")
    assert roberta.max_tokens == 40 - 1 - 1          # positions start after the padding index 1
    assert roberta.model.layers[1].ffn_in_w.shape == (64, 32)
    mpnet = load_checkpoint(write_checkpoint(tmp_path / "mpnet", "mpnet", prefix="mpnet."))
    assert (mpnet.family, mpnet.model.config.relative_buckets, mpnet.model.relative_bias.shape) == ("mpnet", 32, (32, 4))
    assert mpnet.model.token_type is None


def test_embed_is_the_masked_mean_and_does_not_depend_on_batching(tmp_path):
    ckpt = load_checkpoint(write_checkpoint(tmp_path / "c"))
    together = ckpt.embed(SENTENCES, batch=8)
    alone = np.stack([ckpt.embed([s])[0] for s in SENTENCES])
    np.testing.assert_allclose(together, alone, atol=1e-12)
    ids, mask = ckpt.encode(SENTENCES[:2])
    np.testing.assert_allclose(together[:2], mean_pool(ckpt.hidden(ids, mask), mask), atol=1e-12)


def test_unsupported_model_type_names_it_and_the_supported_ones(tmp_path):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(write_checkpoint(tmp_path / "c", "gpt2"))
    message = str(info.value)
    assert "config.json" in message and "model_type" in message and "'gpt2'" in message
    assert "bert" in message and "roberta" in message


@pytest.mark.parametrize("change, field", [
    ({"hidden_act": "relu"}, "hidden_act"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
    ({"num_attention_heads": 5}, "num_attention_heads"),
    ({"hidden_size": "32"}, "hidden_size"),
    ({"layer_norm_eps": -1}, "layer_norm_eps"),
])
def test_bad_config_fields_are_named(tmp_path, change, field):
    directory = write_checkpoint(tmp_path / "c")
    config = json.loads((directory / "config.json").read_text())
    config.update(change)
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(directory)
    assert info.value.field == field and info.value.path.endswith("config.json")


def test_missing_files_and_a_config_that_is_not_json(tmp_path):
    directory = write_checkpoint(tmp_path / "c")
    (directory / "vocab.txt").unlink()
    with pytest.raises(CheckpointError, match="missing vocab.txt"):
        load_checkpoint(directory)
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_checkpoint(tmp_path / "nowhere")
    directory = write_checkpoint(tmp_path / "d")
    (directory / "config.json").write_bytes(b"{not json")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(directory)
    assert info.value.path.endswith("config.json")


def test_tensor_of_the_wrong_shape_missing_or_not_finite(tmp_path):
    config = config_for()
    tensors = random_tensors(config)
    name = "encoder.layer.1.intermediate.dense.weight"
    wrong = dict(tensors, **{name: np.zeros((64, 31), np.float32)})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(write_checkpoint(tmp_path / "a", tensors=wrong))
    assert info.value.field == name and "[64, 31]" in str(info.value) and "[64, 32]" in str(info.value)
    missing = {k: v for k, v in tensors.items() if k != "embeddings.LayerNorm.bias"}
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(write_checkpoint(tmp_path / "b", tensors=missing))
    assert info.value.field == "embeddings.LayerNorm.bias" and info.value.path.endswith("model.safetensors")
    bad = dict(tensors)
    bad["encoder.layer.0.output.dense.bias"] = np.full(32, np.nan, np.float32)
    with pytest.raises(CheckpointError, match="non-finite"):
        load_checkpoint(write_checkpoint(tmp_path / "c", tensors=bad))


def test_a_lying_safetensors_header_is_refused(tmp_path):
    directory = write_checkpoint(tmp_path / "c")
    raw = bytearray((directory / "model.safetensors").read_bytes())
    (directory / "model.safetensors").write_bytes(bytes(raw[:-4]))      # the data ends early
    with pytest.raises(SafetensorsError) as info:
        load_checkpoint(directory)
    assert "model.safetensors" in str(info.value)


def test_vocabulary_larger_than_the_embedding_table(tmp_path):
    directory = write_checkpoint(tmp_path / "c", vocab=VOCAB + ["extra"])
    with pytest.raises(CheckpointError, match="vocab_size"):
        load_checkpoint(directory)


def test_text_longer_than_the_model_names_its_index(tmp_path):
    ckpt = load_checkpoint(write_checkpoint(tmp_path / "c", max_positions=8))
    with pytest.raises(TextError) as info:
        ckpt.embed(["good", "the movie is very very good and great"])
    assert info.value.index == 1
