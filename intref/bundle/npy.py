"""Tensor files of a bundle: ``.npy`` headers checked before any data is read, values checked after.

A tensor file is a NumPy ``.npy`` file (version 1.0 written; 1.0, 2.0 and 3.0 read) whose dtype is
exactly the little-endian storage dtype of its declared type (``plain``) or ``uint8`` holding two
int4 nibbles per byte along the last axis (``int4_packed``), in C order. Reading goes in this order,
so that no declared size can make the reader allocate more than the file really holds:

1. ``parse_header`` on the first bytes only (at most ``PREFIX_MAX``): magic, version, a header of at
   most ``HEADER_MAX`` bytes holding exactly ``descr`` (a plain integer descriptor string, never an
   object or structured dtype), ``fortran_order`` False and ``shape``;
2. ``check_header``: dtype and shape equal what graph.json declares, and the file's size is exactly
   header + prod(shape) * itemsize;
3. the caller hashes the file (sha256 of every byte) and maps or reads the data;
4. ``decode``: values lie within the declared type (``int22`` in int32 storage), int4 is unpacked
   (its padding nibble must be 0); the result is read-only.

The one float file a bundle may hold is its scale file (graph.json's ``scales``, layout
``SCALES_LAYOUT``): ``<f8`` of the declared ``[count]``, every value finite, read in the same order.
Its header is parsed with ``float64=True``; no integer tensor ever accepts a float descriptor.

Every defect raises ``TensorFileError`` naming the file.
"""

from __future__ import annotations

import ast
import hashlib
import math
import os
import struct
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .._checks import first_outside
from ..errors import RangeError, TensorFileError
from .int4 import pack_int4, unpack_int4

MAGIC = b"\x93NUMPY"
HEADER_MAX = 10000                 # NumPy's own max_header_size
PREFIX_MAX = len(MAGIC) + 2 + 4 + HEADER_MAX
_LENGTH_FORMAT = {(1, 0): ("<H", "latin1"), (2, 0): ("<I", "latin1"), (3, 0): ("<I", "utf8")}
_DESCR = {"|i1": "int8", "|u1": "uint8", "<i1": "int8", "<u1": "uint8", "<i2": "int16", "<u2": "uint16",
          "<i4": "int32", "<u4": "uint32", "<i8": "int64", "<u8": "uint64"}
CHUNK = 1 << 20
SCALES_LAYOUT = "float64"          # graph.json's scale file: 1-D little-endian float64, finite values


@dataclass(frozen=True)
class NpyHeader:
    dtype: np.dtype
    shape: Tuple[int, ...]
    data_offset: int

    @property
    def data_bytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def file_layout(entry) -> Tuple[np.dtype, Tuple[int, ...]]:
    """The dtype and shape the file of a graph.json ``tensors`` entry must hold."""
    if entry.layout == "int4_packed":
        return np.dtype(np.uint8), entry.shape[:-1] + ((entry.shape[-1] + 1) // 2,)
    if entry.layout == SCALES_LAYOUT:
        return np.dtype("<f8"), entry.shape
    return entry.type.storage.newbyteorder("<"), entry.shape


def expected_data_bytes(entry) -> int:
    dtype, shape = file_layout(entry)
    return math.prod(shape) * dtype.itemsize


def parse_header(prefix: bytes, file: str, *, float64: bool = False) -> NpyHeader:
    """Parse the ``.npy`` header at the start of ``prefix`` (the file's first bytes). Its dtype must be
    a plain integer one, or, with ``float64`` (a scale file), exactly ``<f8``."""
    if len(prefix) < len(MAGIC) + 2 or prefix[:len(MAGIC)] != MAGIC:
        what = "a pickle" if prefix[:1] == b"\x80" else "not a .npy file"
        raise TensorFileError(f"{what}: the file does not start with the .npy magic \\x93NUMPY", path=file)
    version = (prefix[len(MAGIC)], prefix[len(MAGIC) + 1])
    if version not in _LENGTH_FORMAT:
        raise TensorFileError(f".npy version {version[0]}.{version[1]} is not 1.0, 2.0 or 3.0", path=file)
    length_format, encoding = _LENGTH_FORMAT[version]
    start = len(MAGIC) + 2 + struct.calcsize(length_format)
    if len(prefix) < start:
        raise TensorFileError("truncated .npy header", path=file)
    (length,) = struct.unpack(length_format, prefix[len(MAGIC) + 2:start])
    if length > HEADER_MAX:
        raise TensorFileError(f".npy header of {length} bytes (at most {HEADER_MAX})", path=file)
    if len(prefix) < start + length:
        raise TensorFileError("truncated .npy header", path=file)
    fields = _header_fields(prefix[start:start + length], encoding, file)
    dtype = _float64_dtype(fields["descr"], file) if float64 else _header_dtype(fields["descr"], file)
    return NpyHeader(dtype, _header_shape(fields["shape"], file), start + length)


def _float64_dtype(descr, file: str) -> np.dtype:
    if descr != "<f8":
        raise TensorFileError(f"dtype {str(descr)[:40]!r}: a scale file holds little-endian float64 ('<f8')", path=file)
    return np.dtype("<f8")


def _header_fields(raw: bytes, encoding: str, file: str) -> dict:
    try:
        fields = ast.literal_eval(raw.decode(encoding))  # evaluates literals only, never code
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError):
        raise TensorFileError("the .npy header is not a Python literal dictionary", path=file) from None
    if type(fields) is not dict or set(fields) != {"descr", "fortran_order", "shape"}:
        raise TensorFileError("the .npy header must be a dict of exactly descr, fortran_order and shape", path=file)
    if fields["fortran_order"] is not False:
        raise TensorFileError(f"fortran_order is {fields['fortran_order']!r}: tensor files must be in C order",
                              path=file)
    return fields


def _header_dtype(descr, file: str) -> np.dtype:
    if type(descr) is not str:
        raise TensorFileError(f"structured dtype {str(descr)[:100]}: expected a plain integer dtype", path=file)
    if "O" in descr:
        raise TensorFileError(f"object dtype {descr!r} (a pickle): never loaded", path=file)
    if descr not in _DESCR:
        raise TensorFileError(f"dtype {descr[:40]!r} is not a little-endian integer dtype "
                              f"({', '.join(sorted(set(_DESCR) - {'<i1', '<u1'}))})", path=file)
    return np.dtype(_DESCR[descr]).newbyteorder("<")


def _header_shape(shape, file: str) -> Tuple[int, ...]:
    if type(shape) is not tuple or not all(type(d) is int and d >= 0 for d in shape):
        raise TensorFileError(f"shape {str(shape)[:100]} is not a tuple of non-negative ints", path=file)
    return shape


def check_header(header: NpyHeader, entry, file_size: int) -> None:
    """The header must declare what graph.json declares, and the file must be exactly that long."""
    dtype, shape = file_layout(entry)
    if header.dtype != dtype:
        raise TensorFileError(f"dtype {header.dtype.str} in the file, but tensor {entry.name!r} of type {entry.type} "
                              f"({entry.layout}) is stored as {dtype.str}", path=entry.file)
    if header.shape != shape:
        raise TensorFileError(f"shape {list(header.shape)} in the file, but tensor {entry.name!r} ({entry.layout}) "
                              f"needs {list(shape)}", path=entry.file)
    expected = header.data_offset + header.data_bytes
    if file_size != expected:
        raise TensorFileError(f"the file has {file_size} bytes; header {header.data_offset} + data "
                              f"{header.data_bytes} = {expected} expected (truncated or padded)", path=entry.file)


def check_sha256(digest: str, entry) -> None:
    if digest != entry.sha256:
        raise TensorFileError(f"sha256 {digest} does not match graph.json's {entry.sha256}", path=entry.file)


def sha256_of_stream(stream, size: int, file: str, *, start: bytes = b"") -> str:
    """sha256 of ``start`` followed by the next ``size`` bytes of ``stream``, read in bounded chunks."""
    digest, left = hashlib.sha256(start), size
    while left:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            raise TensorFileError("the file ended while being hashed", path=file)
        digest.update(chunk)
        left -= len(chunk)
    return digest.hexdigest()


def map_npy(path: str) -> np.ndarray:
    """A standalone integer ``.npy`` file (a feed), read-only and memory-mapped, never copied: the
    header is parsed and the file's size checked against it before anything is mapped, so a header
    that declares 10**12 elements over a short file is refused without allocating."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as stream:
            header = parse_header(stream.read(PREFIX_MAX), path)
    except OSError as exc:
        raise TensorFileError(f"cannot be read: {exc.strerror or exc}", path=path) from None
    if size != header.data_offset + header.data_bytes:
        raise TensorFileError(f"the file has {size} bytes; header {header.data_offset} + data {header.data_bytes} "
                              f"= {header.data_offset + header.data_bytes} expected (truncated or padded)", path=path)
    if not header.data_bytes:
        return np.zeros(header.shape, dtype=header.dtype)
    try:
        return np.memmap(path, dtype=header.dtype, mode="r", offset=header.data_offset, shape=header.shape)
    except (OSError, ValueError) as exc:
        raise TensorFileError(f"cannot be mapped: {exc}", path=path) from None


def decode(entry, array: np.ndarray) -> np.ndarray:
    """The tensor's values in its type's storage dtype, read-only: values checked, int4 unpacked."""
    if entry.layout == "int4_packed":
        try:
            values = unpack_int4(np.asarray(array), entry.shape[-1])
        except RangeError as exc:
            raise TensorFileError(f"int4 padding: {exc}", path=entry.file) from None
    elif entry.layout == SCALES_LAYOUT:
        values = np.array(array, dtype=np.float64)          # a copy: scales are kept as Python floats anyway
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise TensorFileError(f"element [{int(bad[0])}] = {values[bad[0]]} is not finite (a scale must be a "
                                  f"finite float64)", path=entry.file)
    else:
        values = array if array.dtype.isnative else array.astype(entry.type.storage)
        storage_bits = values.dtype.itemsize * 8
        index = first_outside(values, entry.type.lo, entry.type.hi) if entry.type.bits < storage_bits else None
        if index is not None:
            raise TensorFileError(f"element {list(index)} = {int(values[index])} is outside {entry.type} "
                                  f"[{entry.type.lo}, {entry.type.hi}]", path=entry.file)
    if values.flags.writeable:
        values.setflags(write=False)
    return values


# --- writing ---------------------------------------------------------------------------------------

def file_array(tensor, file: str) -> np.ndarray:
    """What the file of ``tensor`` (an ``intref.graph.Tensor``) holds: its values in little-endian
    storage, or int4-packed bytes. Refuses data that is not integer or lies outside the type."""
    data = np.asarray(tensor.data)
    if data.dtype.kind not in "iu":
        raise TensorFileError(f"tensor {tensor.name!r} holds {data.dtype} data, not integers", path=file)
    if data.size:
        lo, hi = int(data.min()), int(data.max())
        if lo < tensor.type.lo or hi > tensor.type.hi:
            raise TensorFileError(f"tensor {tensor.name!r} holds values in [{lo}, {hi}], outside {tensor.type}",
                                  path=file)
    if tensor.layout == "int4_packed":
        return pack_int4(data)
    return np.ascontiguousarray(data, dtype=tensor.type.storage.newbyteorder("<"))   # no copy when it already is


def write_npy(stream, array: np.ndarray) -> None:
    """``.npy`` version 1.0, C order, never pickled: the bytes depend on dtype, shape and values only."""
    np.lib.format.write_array(stream, array, version=(1, 0), allow_pickle=False)


class HashingSink:
    """A write-only stream that keeps only the sha256 and the length of what is written to it."""

    def __init__(self):
        self.digest, self.size = hashlib.sha256(), 0

    def write(self, data) -> int:
        self.digest.update(data)
        self.size += len(data)
        return len(data)
