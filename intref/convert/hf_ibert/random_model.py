"""Calibrated random-weight HF I-BERT models and random token batches, for tests, benchmarks and
demos of the HF import (nothing is downloaded).

    model = random_ibert(seed=0, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=256, initializer_range=0.1)
    batches = random_batches(np.random.default_rng(1), model.config.vocab_size, count=2, batch=4, seq=16)

A model is built from an ``IBertConfig`` (``quant_mode=True``, dropout 0), then calibrated as
I-BERT calibrates during quantization-aware training: a few forward passes in train mode, which
set every QuantAct range (EMA of the batch min/max) and every IntLayerNorm ``shift``, on random
padded batches; it is returned in eval mode. Requires torch and transformers (the ``hf`` extra).
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

SMALL = dict(vocab_size=120, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
             max_position_embeddings=40, type_vocab_size=1, pad_token_id=1, initializer_range=0.1)
ROBERTA_BASE = dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                    pad_token_id=1)


def random_batches(rng: np.random.Generator, vocab_size: int, *, count: int, batch: int, seq: int,
                   pad: bool = True, pad_token_id: int = 1, bos_token_id: int = 0) -> List[Tuple[np.ndarray, np.ndarray]]:
    """``count`` batches of ``(input_ids, attention_mask)`` (int64, [batch, seq]): random tokens
    that start with ``bos_token_id``; with ``pad``, each row but the first keeps a random length
    in [seq/2, seq] and is padded with ``pad_token_id`` (mask 0)."""
    out = []
    for _ in range(count):
        ids = rng.integers(pad_token_id + 2, vocab_size, size=(batch, seq), dtype=np.int64)
        ids[:, 0] = bos_token_id
        mask = np.ones((batch, seq), dtype=np.int64)
        if pad:
            for row in range(1, batch):
                length = int(rng.integers(max(seq // 2, 1), seq + 1))
                mask[row, length:] = 0
                ids[row, length:] = pad_token_id
        out.append((ids, mask))
    return out


def calibrate(model, batches) -> None:
    """Train-mode forward passes (no gradient) on ``batches``: sets the QuantAct ranges and the
    IntLayerNorm shifts as QAT would. Leaves the model in eval mode."""
    import torch
    model.train()
    with torch.no_grad():
        for ids, mask in batches:
            model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    model.eval()


def randomize_affine(model, generator, scale: float) -> None:
    """Give every bias and every LayerNorm ``(gamma, beta)`` random values (transformers initializes
    them to 0 and (1, 0), which would leave the integer bias paths untested): biases and betas
    ~ N(0, scale), gammas ~ 1 + N(0, 0.1)."""
    import torch
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("LayerNorm.weight"):
                param.add_(torch.randn(param.shape, generator=generator) * 0.1)
            elif name.endswith("bias"):
                param.copy_(torch.randn(param.shape, generator=generator) * scale)


def random_ibert(*, seed: int = 0, model_class: str = "IBertModel", calibration: int = 8, batch: int = 4,
                 seq: int = 16, **config):
    """A random-weight I-BERT (``SMALL`` unless ``config`` overrides; biases and LayerNorm affine
    parameters random too, ``randomize_affine``), calibrated on ``calibration`` random padded
    batches of ``batch x seq`` tokens; in eval mode."""
    import torch
    import transformers
    settings = {**SMALL, **config}
    cfg = transformers.IBertConfig(quant_mode=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                   **settings)
    torch.manual_seed(seed)
    model = getattr(transformers, model_class)(cfg)
    randomize_affine(model, torch.Generator().manual_seed(seed), cfg.initializer_range)
    rng = np.random.default_rng(seed)
    calibrate(model, random_batches(rng, cfg.vocab_size, count=calibration, batch=batch, seq=seq,
                                    pad_token_id=cfg.pad_token_id, bos_token_id=0))
    return model


WORDS = ("the of and to in is it that was for on are with as his they be at one have this from or had by not "
         "word but what some we can out other were all there when up use your how said an each she which do "
         "their time if will way about many then them write would like so these her long make thing see him "
         "two has look more day could go come did number sound no most people my over know water than call").split()


def save_word_tokenizer(directory: str, vocab_size: int) -> None:
    """Save a word-level tokenizer of ``vocab_size`` tokens into ``directory`` (RoBERTa's special
    ids: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3; lower-cased words split on whitespace and
    punctuation; each text becomes ``<s> ... </s>``), loadable by ``AutoTokenizer`` offline."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    words = list(WORDS[:max(vocab_size - len(specials), 0)])
    words += [f"w{i}" for i in range(len(specials) + len(words), vocab_size)]
    tokenizer = Tokenizer(models.WordLevel({t: i for i, t in enumerate(specials + words)}, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A </s>",
                                                             special_tokens=[("<s>", 0), ("</s>", 2)])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                            unk_token="<unk>").save_pretrained(directory)
