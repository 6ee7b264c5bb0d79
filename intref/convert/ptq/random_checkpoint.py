"""Seeded random float checkpoints on disk, in Hugging Face's layout, for tests and examples:
``config.json``, ``model.safetensors`` (written byte by byte, no package needed) and ``vocab.txt``
(a small WordPiece vocabulary: specials, a few words, letters and ``##`` letters, so any lower-case
ASCII text tokenizes).

    write_checkpoint(tmp / "bert", "bert", hidden=32, layers=2)    # then load_checkpoint(...)
"""

from __future__ import annotations

import json
import string
import struct
from pathlib import Path

import numpy as np

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "a", "movie", "film", "good", "bad", "great", "dull", "and", "is", "not", "very"]
VOCAB = SPECIALS + WORDS + list(string.ascii_lowercase) + ["##" + c for c in string.ascii_lowercase] + list(".,!?'-")


def write_safetensors(path, tensors: dict) -> None:
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        code = {"float32": "F32", "float64": "F64", "int64": "I64"}[array.dtype.name]
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        blobs.append(array.tobytes())
    raw = json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def config_for(model_type="bert", *, hidden=32, heads=4, layers=2, intermediate=64, max_positions=40, **extra):
    config = {"model_type": model_type, "hidden_size": hidden, "num_attention_heads": heads,
              "num_hidden_layers": layers, "intermediate_size": intermediate, "vocab_size": len(VOCAB),
              "max_position_embeddings": max_positions, "type_vocab_size": 2, "hidden_act": "gelu",
              "layer_norm_eps": 1e-12 if model_type == "bert" else 1e-5,
              "pad_token_id": 0 if model_type == "bert" else 1, "position_embedding_type": "absolute"}
    if model_type == "mpnet":
        config.update(relative_attention_num_buckets=32)
        del config["type_vocab_size"]
    config.update(extra)
    return config


def random_tensors(config: dict, seed: int = 0, prefix: str = "") -> dict:
    """HF-named float32 weights of ``config``'s shapes: N(0, 1/fan_in) matrices, small biases,
    LayerNorm gamma near 1, and an outlier channel (channel 3 of every LayerNorm's gamma x 8)."""
    rng = np.random.default_rng(seed)
    h, f = config["hidden_size"], config["intermediate_size"]

    def matrix(n, k):
        return rng.normal(0, 1 / np.sqrt(k), (n, k))

    def vector(n, scale=0.05):
        return rng.normal(0, scale, n)

    def gamma():
        g = 1 + vector(h)
        g[3] *= 8.0
        return g

    t = {"embeddings.word_embeddings.weight": rng.normal(0, 0.5, (config["vocab_size"], h)),
         "embeddings.position_embeddings.weight": rng.normal(0, 0.2, (config["max_position_embeddings"], h)),
         "embeddings.token_type_embeddings.weight": rng.normal(0, 0.2, (config.get("type_vocab_size", 1), h)),
         "embeddings.LayerNorm.weight": gamma(), "embeddings.LayerNorm.bias": vector(h)}
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            t[p + name + ".weight"], t[p + name + ".bias"] = matrix(h, h), vector(h)
        t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"] = matrix(f, h), vector(f)
        t[p + "output.dense.weight"], t[p + "output.dense.bias"] = matrix(h, f), vector(h)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + ln + ".weight"], t[p + ln + ".bias"] = gamma(), vector(h)
    if config["model_type"] == "mpnet":
        from .checkpoint import layer_tensor_name
        t = {name if not name.startswith("encoder.layer.") else
             ".".join(name.split(".")[:3]) + "." + layer_tensor_name("mpnet", ".".join(name.split(".")[3:])): value
             for name, value in t.items() if not name.startswith("embeddings.token_type")}
        t["encoder.relative_attention_bias.weight"] = rng.normal(0, 1.0, (32, config["num_attention_heads"]))
    return {prefix + name: value.astype(np.float32) for name, value in t.items()}


def write_checkpoint(directory, model_type="bert", *, seed=0, prefix="", tensors=None, vocab=None, **config_extra):
    """Write a random checkpoint to ``directory``; returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = config_for(model_type, **config_extra)
    (directory / "config.json").write_text(json.dumps(config))
    write_safetensors(directory / "model.safetensors",
                      tensors if tensors is not None else random_tensors(config, seed, prefix))
    (directory / "vocab.txt").write_text("\n".join(vocab or VOCAB) + "\n")
    return directory


SENTENCES = ["the movie is good.", "a very dull film!", "great, great film", "the film is not bad",
             "a movie", "dull and very bad.", "good", "is the movie great?"]
