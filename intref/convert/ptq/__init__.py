"""Post-training quantization of float BERT-family checkpoints into integer-only bundles.

Readers that need nothing but NumPy: ``safetensors.read_safetensors`` (weights) and
``tokenizer.WordPieceTokenizer`` (``vocab.txt``).
"""
