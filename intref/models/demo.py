"""The demo model: a small I-BERT encoder with seeded random weights, calibrated on seeded
random token sequences. Deterministic: the same bundle, byte for byte, on every machine.

    intref demo --out golden/demo-ibert.zip

and, with its golden sets (weights/, ordinary/, padded/, extremes/: ``intref.models.demo_golden``),
everything under golden/ at once, byte for byte (``--replace`` regenerates an existing set in place):

    intref demo --out golden/demo-ibert.zip --golden golden/demo-ibert --replace

2 layers, hidden 64, 4 heads, FFN 256, vocabulary 1000, sequences up to 32 tokens (batch up to 8),
RoBERTa-style padding-aware positions (pad id 1), the intended integer pipeline (no stale scales,
uint8 softmax). Under 1 MB.
"""

from __future__ import annotations

import numpy as np

from .calibrate import calibrate
from .float_encoder import EncoderConfig, FloatEncoder, random_encoder
from .ibert import Wiring, build_ibert_encoder

DEMO_CONFIG = EncoderConfig(vocab_size=1000, hidden=64, heads=4, layers=2, intermediate=256, max_positions=34,
                            type_vocab_size=2, pad_token_id=1, position_mode="padding_aware")
DEMO_SEED = 2021
MAX_SEQ, MAX_BATCH = 32, 8
FIRST_TOKEN = 3  # ids 0..2 are special (0 <s>, 1 <pad>, 2 </s>), as in RoBERTa


def token_batch(rng: np.random.Generator, batch: int, seq: int, min_len: int = 4):
    """Random token sequences ``[<s>, tokens..., </s>, <pad>...]`` of random lengths."""
    ids = rng.integers(FIRST_TOKEN, DEMO_CONFIG.vocab_size, (batch, seq)).astype(np.int32)
    mask = np.ones((batch, seq), dtype=np.int8)
    for row in range(batch):
        length = int(rng.integers(min_len, seq + 1))
        ids[row, 0], ids[row, length - 1] = 0, 2
        ids[row, length:], mask[row, length:] = DEMO_CONFIG.pad_token_id, 0
    return ids, mask


def demo_float_model() -> FloatEncoder:
    return random_encoder(DEMO_CONFIG, DEMO_SEED)


def demo_scales(model: FloatEncoder) -> dict:
    rng = np.random.default_rng(DEMO_SEED + 1)
    return calibrate(model, [token_batch(rng, MAX_BATCH, MAX_SEQ) for _ in range(8)])


def make_demo():
    """``(graph, float_model)`` of the demo."""
    model = demo_float_model()
    graph = build_ibert_encoder(model, demo_scales(model), wiring=Wiring(max_batch=MAX_BATCH, max_seq=MAX_SEQ),
                                metadata={"name": "intref demo I-BERT encoder", "seed": DEMO_SEED})
    return graph, model
