"""The import path docs/ documented before the move: ``intref.golden.vectors`` holds the encodings."""

from .golden.vectors import Layout, VectorFormatError, decode_bin, decode_text, encode_bin, encode_text

__all__ = ["Layout", "VectorFormatError", "decode_bin", "decode_text", "encode_bin", "encode_text"]
