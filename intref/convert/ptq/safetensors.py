"""A safetensors reader in NumPy alone, that trusts nothing in the file.

The format (https://github.com/huggingface/safetensors): 8 bytes, the header length ``N`` as a
little-endian unsigned 64-bit integer; ``N`` bytes of UTF-8 JSON, an object mapping each tensor
name to ``{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}`` (plus an optional
``"__metadata__"`` object of strings); then the data buffer, every tensor's little-endian,
row-major bytes at ``[begin, end)`` relative to the buffer's start.

    tensors = read_safetensors("model.safetensors")      # {name: np.ndarray}, in header order

Every check runs on the header before any tensor is allocated: the header length against the
file size and a 100 MB limit, JSON that parses with no duplicate key, each entry's keys, dtype,
shape (non-negative ints), offsets (ints, ``begin <= end``), ``end - begin == prod(shape) *
itemsize``, the tensors tiling the data buffer with no hole and no overlap, and the buffer ending
exactly at the end of the file. Any defect raises ``SafetensorsError`` naming the file and the
field (``header``, ``header['w'].data_offsets``, ...). Nothing is executed or unpickled.

Dtypes: F64 F32 F16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL as the NumPy dtype of that name (native
byte order); BF16 (NumPy has none) widened exactly to float32. Other dtypes (F8_*) are rejected.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from intref.errors import SafetensorsError

HEADER_LIMIT = 100_000_000          # the safetensors library's own limit on the header length
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
          "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?", "BF16": "<u2"}
ENTRY_KEYS = {"dtype", "shape", "data_offsets"}

Entry = Tuple[str, str, Tuple[int, ...], int, int]     # name, dtype code, shape, begin, end


def _fail(path, field: str, message: str):
    raise SafetensorsError(message, path=str(path), field=field)


def _no_duplicates(path):
    def hook(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            duplicate = next(k for k in keys if keys.count(k) > 1)
            _fail(path, "header", f"the key {duplicate!r} appears twice")
        return dict(pairs)
    return hook


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_entry(path, name: str, entry) -> Entry:
    """Validate one header entry; return ``(name, dtype code, shape, begin, end)``."""
    field = f"header[{name!r}]"
    if not isinstance(entry, dict):
        _fail(path, field, f"expected an object, got {type(entry).__name__}")
    if set(entry) != ENTRY_KEYS:
        _fail(path, field, f"keys {sorted(entry)}, expected exactly {sorted(ENTRY_KEYS)}")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if code not in DTYPES:
        _fail(path, f"{field}.dtype", f"{code!r} is not a supported dtype ({', '.join(DTYPES)})")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        _fail(path, f"{field}.shape", f"expected a list of non-negative integers, got {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) and o >= 0 for o in offsets)):
        _fail(path, f"{field}.data_offsets", f"expected [begin, end], two non-negative integers, got {offsets!r}")
    begin, end = offsets
    if begin > end:
        _fail(path, f"{field}.data_offsets", f"begin {begin} > end {end}")
    nbytes = math.prod(shape) * np.dtype(DTYPES[code]).itemsize
    if end - begin != nbytes:
        _fail(path, f"{field}.data_offsets", f"[{begin}, {end}) holds {end - begin} bytes but dtype {code} "
                                             f"and shape {shape} need {nbytes}")
    return name, code, tuple(shape), begin, end


def check_tiling(path, entries: List[Entry], buffer_bytes: int) -> None:
    """The tensors' byte ranges, sorted, must tile ``[0, buffer_bytes)``: no hole, no overlap."""
    position = 0
    for name, _, _, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin != position:
            kind = "overlaps the previous tensor" if begin < position else f"leaves a hole at byte {position}"
            _fail(path, f"header[{name!r}].data_offsets", f"[{begin}, {end}) {kind}")
        position = end
    if position != buffer_bytes:
        _fail(path, "data", f"the tensors end at byte {position} of the data buffer but the file holds "
                            f"{buffer_bytes} data bytes")


def read_header(path) -> Tuple[List[Entry], dict, int]:
    """``(entries in header order, metadata, data start)`` of a safetensors file, fully validated."""
    path = Path(path)
    if not path.is_file():
        _fail(path, "", "no such file")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size < 8:
            _fail(path, "header length", f"the file has {size} bytes, fewer than the 8 of the header length")
        (length,) = struct.unpack("<Q", f.read(8))
        if length > min(HEADER_LIMIT, size - 8):
            _fail(path, "header length", f"{length} bytes declared, but the file has {size - 8} after it "
                                         f"(limit {HEADER_LIMIT})")
        raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates(path))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        _fail(path, "header", f"not valid UTF-8 JSON: {error}")
    if not isinstance(header, dict):
        _fail(path, "header", f"expected a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        _fail(path, "header['__metadata__']", "expected an object of strings")
    entries = [parse_entry(path, name, entry) for name, entry in header.items()]
    check_tiling(path, entries, size - 8 - length)
    return entries, metadata, 8 + length


def read_safetensors(path) -> Dict[str, np.ndarray]:
    """Every tensor of a safetensors file, ``{name: array}`` in header order (see the module doc)."""
    entries, _, start = read_header(path)
    out = {}
    with open(path, "rb") as f:
        for name, code, shape, begin, end in entries:
            f.seek(start + begin)
            count = math.prod(shape)
            array = np.fromfile(f, dtype=np.dtype(DTYPES[code]), count=count)
            if array.size != count:
                _fail(path, f"header[{name!r}]", "the file is shorter than its header says (changed while read?)")
            if code == "BF16":
                array = (array.astype(np.uint32) << np.uint32(16)).view(np.float32)
            out[name] = array.astype(array.dtype.newbyteorder("="), copy=False).reshape(shape)
    return out
