"""A float BERT-family checkpoint directory, read with NumPy alone.

    ckpt = load_checkpoint("all-MiniLM-L6-v2/")     # config.json, model.safetensors, vocab.txt
    ckpt.family, ckpt.model.config                  # "bert", EncoderConfig(...)
    ids, mask = ckpt.encode(["a sentence", ...])    # int64 [B, S], nothing truncated
    ckpt.embed(texts)                               # float64 [N, hidden], mean-pooled (the baseline)

Families (``config.json``'s ``model_type``):

| model_type | positions | weights prefix |
|---|---|---|
| ``bert`` | ``0, 1, 2, ...`` (``arange``) | ``bert.`` or none |
| ``roberta`` | ``pad + cumsum(ids != pad)`` (``padding_aware``) | ``roberta.`` or none |
| ``mpnet`` | as RoBERTa, plus a bucketed relative-position attention bias | ``mpnet.`` or none |

Anything else raises ``CheckpointError`` naming the ``model_type`` and the supported ones. The
weights must match the config exactly (every tensor present, of the config's shape, finite); a
defect names the file and the tensor or config field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np

from ...errors import CheckpointError, TextError
from ...models.float_encoder import BLAS, EncoderConfig, FloatEncoder, FloatLayer, forward
from .safetensors import read_safetensors
from .tokenizer import WordPieceTokenizer

FAMILIES = {"bert": ("arange", "bert."), "roberta": ("padding_aware", "roberta."), "mpnet": ("padding_aware", "mpnet.")}
MPNET_BUCKETS = 32   # transformers computes MPNet's buckets with 32 whatever the config says
REQUIRED_FILES = ("config.json", "model.safetensors", "vocab.txt")
CONFIG_INTS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "max_position_embeddings")
LAYER_TENSORS = {  # FloatLayer field -> (tensor name under encoder.layer.{i}., shape in config terms)
    "q_w": ("attention.self.query.weight", "hh"), "q_b": ("attention.self.query.bias", "h"),
    "k_w": ("attention.self.key.weight", "hh"), "k_b": ("attention.self.key.bias", "h"),
    "v_w": ("attention.self.value.weight", "hh"), "v_b": ("attention.self.value.bias", "h"),
    "o_w": ("attention.output.dense.weight", "hh"), "o_b": ("attention.output.dense.bias", "h"),
    "ln1_gamma": ("attention.output.LayerNorm.weight", "h"), "ln1_beta": ("attention.output.LayerNorm.bias", "h"),
    "ffn_in_w": ("intermediate.dense.weight", "fh"), "ffn_in_b": ("intermediate.dense.bias", "f"),
    "ffn_out_w": ("output.dense.weight", "hf"), "ffn_out_b": ("output.dense.bias", "h"),
    "ln2_gamma": ("output.LayerNorm.weight", "h"), "ln2_beta": ("output.LayerNorm.bias", "h"),
}
MPNET_RENAMES = {"attention.self.query": "attention.attn.q", "attention.self.key": "attention.attn.k",
                 "attention.self.value": "attention.attn.v", "attention.output.dense": "attention.attn.o",
                 "attention.output.LayerNorm": "attention.LayerNorm"}


def layer_tensor_name(family: str, name: str) -> str:
    """The checkpoint name of a BERT-named layer tensor in ``family``."""
    if family == "mpnet":
        for bert, mpnet in MPNET_RENAMES.items():
            if name.startswith(bert + "."):
                return mpnet + name[len(bert):]
    return name


@dataclass
class Checkpoint:
    """A loaded checkpoint: its directory, raw config, family, float model and tokenizer."""

    path: Path
    config: dict
    family: str
    model: FloatEncoder
    tokenizer: WordPieceTokenizer

    @property
    def max_tokens(self) -> int:
        """The longest input (with [CLS]/[SEP]) the position table allows."""
        cfg = self.model.config
        return cfg.max_positions if cfg.position_mode == "arange" else cfg.max_positions - cfg.pad_token_id - 1

    def encode(self, texts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """``(input_ids, attention_mask)`` int64 [B, S]; a text over ``max_tokens`` raises ``TextError``."""
        return self.tokenizer.batch(list(texts), self.max_tokens)

    def hidden(self, input_ids: np.ndarray, attention_mask: np.ndarray, observe=None) -> np.ndarray:
        """The float64 last hidden state ``[B, S, hidden]``."""
        return forward(self.model, np.asarray(input_ids, np.int64), np.asarray(attention_mask, np.float64),
                       observe=observe, arithmetic=BLAS)

    def embed(self, texts: Sequence[str], *, batch: int = 32) -> np.ndarray:
        """Mean-pooled float64 sentence embeddings ``[N, hidden]`` (sentence-transformers' pooling)."""
        out = np.zeros((len(texts), self.model.config.hidden), np.float64)
        for rows, ids, mask in length_batches(self, texts, batch):
            out[rows] = mean_pool(self.hidden(ids, mask), mask)
        return out


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of ``hidden`` [B, S, H] over the positions where ``mask`` is 1."""
    weights = np.asarray(mask, np.float64)[..., None]
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)


def length_batches(ckpt: Checkpoint, texts: Sequence[str], batch: int):
    """``(row indices, input_ids, attention_mask)`` per batch of texts of similar token length (sorted
    by length, so a batch carries little padding). Every text is tokenized first, so a too-long text
    is refused before any compute."""
    encoded = [ckpt.tokenizer.encode(t) for t in texts]
    for i, ids in enumerate(encoded):
        if len(ids) > ckpt.max_tokens:
            raise TextError(f"{len(ids)} tokens (with [CLS]/[SEP]) exceed the model's maximum {ckpt.max_tokens}: "
                            f"{texts[i][:60]!r}", field=f"text {i}", index=i)
    order = np.argsort([len(e) for e in encoded], kind="stable")
    for start in range(0, len(order), batch):
        rows = order[start:start + batch]
        ids, mask = ckpt.encode([texts[i] for i in rows])
        yield rows, ids, mask


def load_checkpoint(path) -> Checkpoint:
    """Read ``config.json``, ``model.safetensors`` and ``vocab.txt`` (+ ``tokenizer_config.json``)."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError("not a checkpoint directory", path=str(path))
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise CheckpointError(f"missing {', '.join(missing)} (a checkpoint needs {', '.join(REQUIRED_FILES)})",
                              path=str(path))
    raw = read_config(path / "config.json")
    family, config = encoder_config(raw, path / "config.json")
    tensors = read_safetensors(path / "model.safetensors")
    model = float_model(tensors, config, family, path / "model.safetensors")
    tokenizer = WordPieceTokenizer.from_checkpoint_dir(path)
    if len(tokenizer.vocab) > config.vocab_size:
        raise CheckpointError(f"{len(tokenizer.vocab)} tokens but config.json's vocab_size is {config.vocab_size}",
                              path=str(path / "vocab.txt"))
    return Checkpoint(path, raw, family, model, tokenizer)


def read_config(file: Path) -> dict:
    try:
        config = json.loads(file.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(f"not UTF-8 JSON: {error}", path=str(file)) from None
    if not isinstance(config, dict):
        raise CheckpointError("expected a JSON object", path=str(file))
    return config


def encoder_config(raw: dict, file: Path) -> Tuple[str, EncoderConfig]:
    """The family and ``EncoderConfig`` of a ``config.json``; unsupported settings name their field."""
    model_type = raw.get("model_type")
    if model_type not in FAMILIES:
        raise CheckpointError(f"model_type {model_type!r} is not supported; supported: {sorted(FAMILIES)} "
                              f"(BERT, RoBERTa-style and MPNet encoders)", path=str(file), field="model_type")

    def need(key, kind=int, lo=1):
        value = raw.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or value < lo:
            raise CheckpointError(f"expected a {kind.__name__} >= {lo}, got {value!r}", path=str(file), field=key)
        return value

    ints = {key: need(key) for key in CONFIG_INTS}
    if ints["hidden_size"] % ints["num_attention_heads"]:
        raise CheckpointError(f"hidden_size {ints['hidden_size']} is not a multiple of num_attention_heads "
                              f"{ints['num_attention_heads']}", path=str(file), field="num_attention_heads")
    if raw.get("hidden_act", "gelu") != "gelu":
        raise CheckpointError(f"hidden_act {raw.get('hidden_act')!r} is not supported (only the erf 'gelu')",
                              path=str(file), field="hidden_act")
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(f"position_embedding_type {raw.get('position_embedding_type')!r} is not supported "
                              f"(only 'absolute')", path=str(file), field="position_embedding_type")
    eps = raw.get("layer_norm_eps", 1e-12)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps < 1:
        raise CheckpointError(f"expected a number in (0, 1), got {eps!r}", path=str(file), field="layer_norm_eps")
    mode = FAMILIES[model_type][0]
    pad = need("pad_token_id", lo=0) if "pad_token_id" in raw else (0 if mode == "arange" else 1)
    config = EncoderConfig(vocab_size=ints["vocab_size"], hidden=ints["hidden_size"],
                           heads=ints["num_attention_heads"], layers=ints["num_hidden_layers"],
                           intermediate=ints["intermediate_size"], max_positions=ints["max_position_embeddings"],
                           type_vocab_size=need("type_vocab_size", lo=0) if "type_vocab_size" in raw else 0,
                           pad_token_id=pad, position_mode=mode, layer_norm_eps=float(eps))
    if model_type == "mpnet":
        buckets = need("relative_attention_num_buckets") if "relative_attention_num_buckets" in raw else MPNET_BUCKETS
        if buckets != MPNET_BUCKETS:
            raise CheckpointError(f"relative_attention_num_buckets {buckets} is not supported (MPNet uses "
                                  f"{MPNET_BUCKETS})", path=str(file), field="relative_attention_num_buckets")
        config = replace(config, relative_buckets=MPNET_BUCKETS)
    if mode == "padding_aware" and config.max_positions <= pad + 1:
        raise CheckpointError(f"max_position_embeddings {config.max_positions} leaves no position after the "
                              f"padding index {pad}", path=str(file), field="max_position_embeddings")
    return model_type, config


def float_model(tensors: dict, config: EncoderConfig, family: str, file: Path) -> FloatEncoder:
    """Map checkpoint tensors onto a ``FloatEncoder``, checking each one's presence, shape and values."""
    prefix = FAMILIES[family][1]
    if not any(name.startswith(prefix) for name in tensors):
        prefix = ""
    h, f = config.hidden, config.intermediate
    dims = {"h": h, "f": f}

    def take(name, shape):
        full = prefix + name
        if full not in tensors:
            raise CheckpointError(f"tensor missing (config.json asks for {list(shape)})", path=str(file), field=full)
        array = tensors[full]
        if array.shape != tuple(shape):
            raise CheckpointError(f"shape {list(array.shape)} does not fit config.json (expected {list(shape)})",
                                  path=str(file), field=full)
        if array.dtype.kind != "f":
            raise CheckpointError(f"dtype {array.dtype} is not a float", path=str(file), field=full)
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise CheckpointError("holds a non-finite value", path=str(file), field=full)
        return array

    layers = []
    for i in range(config.layers):
        values = {key: take(f"encoder.layer.{i}.{layer_tensor_name(family, name)}", tuple(dims[c] for c in shape))
                  for key, (name, shape) in LAYER_TENSORS.items()}
        layers.append(FloatLayer(**values))
    token_type = (take("embeddings.token_type_embeddings.weight", (config.type_vocab_size, h))
                  if config.type_vocab_size else None)
    relative = (take("encoder.relative_attention_bias.weight", (config.relative_buckets, config.heads))
                if config.relative_buckets else None)
    return FloatEncoder(config, take("embeddings.word_embeddings.weight", (config.vocab_size, h)),
                        take("embeddings.position_embeddings.weight", (config.max_positions, h)), token_type,
                        take("embeddings.LayerNorm.weight", (h,)), take("embeddings.LayerNorm.bias", (h,)), layers,
                        relative)

