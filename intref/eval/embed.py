"""Sentence embeddings from the three systems the harness compares, all ``float64 [N, hidden]``:

- ``float_embeddings``: the float NumPy model of the checkpoint (``Checkpoint.embed``), cached on
  disk because the probe's training split is large and the float model never changes;
- an integer bundle's: ``intref.convert.ptq.integer_embeddings``, its integer ``pooled`` output
  run by the interpreter and dequantized with the graph's own scale;
- ``reference_embeddings``: Hugging Face's I-BERT (``quant_mode=True``) holding the checkpoint's
  BERT weights and calibrated on the same sentences, mean-pooled like the others (torch).

Every system sees the same token ids (intref's WordPiece tokenizer, batches of similar length).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from intref.convert.ptq.checkpoint import Checkpoint, length_batches, mean_pool

def _progress(report: Optional[Callable[[str], None]], label: str, done: int, total: int) -> None:
    if report is not None:
        report(f"{label}: {done}/{total} sentences")


def float_embeddings(ckpt: Checkpoint, texts: Sequence[str], *, cache: Optional[Path] = None,
                     progress=None, label: str = "float") -> Tuple[np.ndarray, float]:
    """``(embeddings, seconds the float model took)``; with ``cache``, stored there under a hash of
    the weights file's size and mtime, the config and the texts, and read back on the next call."""
    file = None
    if cache is not None:
        stat = (ckpt.path / "model.safetensors").stat()
        key = json.dumps([str(ckpt.path.resolve()), stat.st_size, stat.st_mtime_ns, ckpt.config, list(texts)])
        file = Path(cache) / f"float-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
        if file.is_file():
            with np.load(file, allow_pickle=False) as stored:
                return stored["embeddings"], float(stored["seconds"])
    start, parts = time.perf_counter(), []
    for begin in range(0, len(texts), 256):
        parts.append(ckpt.embed(texts[begin:begin + 256]))
        _progress(progress, label, begin + len(parts[-1]), len(texts))
    embeddings, seconds = np.concatenate(parts), time.perf_counter() - start
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(file, embeddings=embeddings, seconds=seconds)
    return embeddings, seconds


def reference_model(ckpt: Checkpoint, calibration: Sequence[str]):
    """HF ``IBertModel(quant_mode=True)`` with the checkpoint's BERT weights, calibrated on
    ``calibration`` (intref/convert/minilm.py's mapping and calibration). BERT checkpoints only."""
    from intref.convert import minilm
    if ckpt.family != "bert":
        raise ValueError(f"the I-BERT reference maps BERT checkpoints only, not {ckpt.family!r}")
    model, hf_tokenizer = minilm.load_minilm_as_ibert(ckpt.path, quant_mode=True)
    return minilm.calibrate(model, hf_tokenizer, list(calibration), max_length=ckpt.max_tokens)


def reference_embeddings(model, ckpt: Checkpoint, texts: Sequence[str], *, progress=None,
                         label: str = "reference") -> np.ndarray:
    """Mean-pooled last hidden state of the calibrated HF I-BERT ``model`` (float32 -> float64)."""
    from intref.convert import minilm
    out = np.zeros((len(texts), ckpt.model.config.hidden), np.float64)
    done = 0
    for rows, ids, mask in length_batches(ckpt, texts, 32):
        out[rows] = mean_pool(minilm.forward(model, ids, mask).astype(np.float64), mask)
        done += len(rows)
        if done % 512 < 32 or done == len(texts):
            _progress(progress, label, done, len(texts))
    return out
