"""Golden vectors: the exact expected value of every tensor of one run, as files for hardware.

    write.py    ``write_golden(graph, feeds, out_dir, ...)``: manifest.json, feeds and tensor files
    vectors.py  the file encodings (``.hex`` / ``.mem`` text, packed ``.bin``) and their layouts
"""

from .vectors import Layout, VectorFormatError, decode_bin, decode_text, encode_bin, encode_text
from .write import FORMATS, GoldenError, canonical_bytes, npy_bytes, write_golden

__all__ = ["FORMATS", "GoldenError", "Layout", "VectorFormatError", "canonical_bytes", "decode_bin", "decode_text",
           "encode_bin", "encode_text", "npy_bytes", "write_golden"]
