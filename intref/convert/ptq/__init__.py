"""Post-training quantization of float BERT-family checkpoints into integer-only bundles.

    from intref.convert.ptq import convert_ptq, load_checkpoint
    ckpt = load_checkpoint("all-MiniLM-L6-v2/")        # config, float weights (NumPy), tokenizer
    ckpt.embed(texts)                                   # float64 mean-pooled embeddings (baseline)
    graph, report = convert_ptq(ckpt, calib_texts)      # MSE observer, SmoothQuant 0.9, 16-bit output

Readers that need nothing but NumPy: ``safetensors.read_safetensors`` (weights) and
``tokenizer.WordPieceTokenizer`` (``vocab.txt``).
"""

from .checkpoint import Checkpoint, load_checkpoint
from .convert import DEFAULTS, convert_ptq, cosine_summary, feeds, integer_embeddings

__all__ = ["Checkpoint", "DEFAULTS", "convert_ptq", "cosine_summary", "feeds", "integer_embeddings",
           "load_checkpoint"]
