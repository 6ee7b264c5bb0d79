"""Bundles: a ``Graph`` on disk, as a directory or a single zip holding ``graph.json`` + ``tensors/*.npy``.

    intref.save(graph, "model.zip")          # or "model/" (fmt="dir"); fmt defaults by the suffix
    graph = intref.load("model.zip")

The format is specified in ``docs/format.md``. Loading never executes code and never allocates
more than the bundle declares: graph.json is parsed strictly and every field validated
(``bundle.schema``); each tensor file's ``.npy`` header is parsed and checked against graph.json
before its data is read (``bundle.npy``); a zip member's declared size is checked before it is
decompressed; every referenced path must stay inside the bundle. Directory bundles are memory-mapped
(read-only); zip members are read into read-only arrays. Then ``Graph(...)`` runs the load-time
analysis. Each defect raises a ``BundleError`` or ``GraphError`` subclass naming the file, field or node.

Saving is deterministic: save -> load -> save gives byte-identical files, for both formats.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import stat
import struct
import tempfile
import zipfile
import zlib

import numpy as np

from .npy import (CHUNK, PREFIX_MAX, SCALES_LAYOUT, HashingSink, check_header, check_sha256, decode,
                  expected_data_bytes, file_array, parse_header, sha256_of_stream, write_npy)
from .mapped import FileStamp
from .jsonio import dumps_canonical, parse_json
from .quantization import check_quantization_shapes, pack_scales, resolve_scales
from .schema import FILE, parse_document
from .write import SCALES_NAME, graph_document, tensor_file_names
from ..errors import BundleError, BundleFormatError, GraphError, TensorFileError, UnsafePathError
from ..graph import Graph, Tensor

MAX_GRAPH_JSON_BYTES = 256 << 20
MAX_DEFLATE_RATIO = 1032            # deflate cannot expand one byte into more than ~1032
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
ZIP_MODE = 0o100644                 # a regular file, rw-r--r--
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError, struct.error,
               NotImplementedError, RuntimeError)


def load(path, *, verify_hashes: bool = True) -> Graph:
    """Read and validate the bundle at ``path`` (a directory or a zip file); return the ``Graph``."""
    bundle = _open_bundle(os.fspath(path))
    try:
        document = parse_document(parse_json(bundle.read_graph_json()))
        tensors = []
        for entry in document.tensors:
            data, source = bundle.read_tensor(entry, verify_hashes)
            tensors.append(Tensor(entry.name, entry.type, data, entry.layout, source=source))
        scales = bundle.read_tensor(document.scales, verify_hashes)[0] if document.scales else None
    finally:
        bundle.close()
    quantization = resolve_scales(document.quantization, scales)
    try:
        graph = Graph(name=document.name, inputs=document.inputs, outputs=document.outputs, nodes=document.nodes,
                      tensors=tensors, symbols=document.symbols, quantization=quantization,
                      metadata=document.metadata, producer=document.producer)
    except GraphError as exc:
        exc.args = (f"{FILE}: {exc}",)   # same class and attributes; the message now names the file too
        raise
    check_quantization_shapes(quantization, graph.values)
    return graph


def save(graph: Graph, path, *, fmt=None) -> None:
    """Write ``graph`` as a bundle: ``fmt="zip"`` (a file; the default when ``path`` ends in ``.zip``)
    or ``"dir"`` (a new or empty directory). Refuses, before writing anything, a graph that ``load``
    would refuse at the file level (a tensor outside its type, an unused symbol, ...)."""
    path = os.fspath(path)
    fmt = ("zip" if path.endswith(".zip") else "dir") if fmt is None else fmt
    if fmt not in ("dir", "zip"):
        raise BundleFormatError(f"fmt={fmt!r} is not 'dir' or 'zip'")
    text, members = _serialize(graph)
    (_write_zip if fmt == "zip" else _write_directory)(path, text, members)


def graph_sha256(graph: Graph) -> str:
    """sha256 of the graph's canonical graph.json, as ``save`` writes it. It lists every tensor
    file's sha256, so it identifies the whole bundle, directory or zip alike."""
    return hashlib.sha256(_serialize(graph)[0]).hexdigest()


def _serialize(graph: Graph):
    """``(graph.json bytes, [(file, array), ...])``, checked against the loader's own rules."""
    tensors = list(graph.tensors.values())
    values, slices = pack_scales(graph.quantization)
    files = tensor_file_names([t.name for t in tensors] + [SCALES_NAME])     # the scale file last: tensors keep theirs
    members = [(files[t.name], file_array(t, files[t.name])) for t in tensors]
    hashes = {t.name: _npy_sha256(array) for t, (_, array) in zip(tensors, members)}
    scales = None
    if values is not None:
        members.append((files[SCALES_NAME], values))
        scales = (files[SCALES_NAME], _npy_sha256(values), values.size, slices)
    document = graph_document(graph, files, hashes, scales)
    parsed = parse_document(document)   # never write what load would refuse
    check_quantization_shapes(resolve_scales(parsed.quantization, values), graph.values)
    return dumps_canonical(document), members


def _npy_sha256(array) -> str:
    sink = HashingSink()
    write_npy(sink, array)
    return sink.digest.hexdigest()


# --- writing -----------------------------------------------------------------------------------------

def _write_directory(path: str, text: bytes, members) -> None:
    os.makedirs(path, exist_ok=True)
    if os.listdir(path):
        raise BundleError(f"{path}: the directory is not empty (a directory bundle is written into a new or "
                          f"empty directory)")
    if members:
        os.mkdir(os.path.join(path, "tensors"))
    for file, array in members:
        with open(os.path.join(path, file), "xb") as stream:
            write_npy(stream, array)
    with open(os.path.join(path, FILE), "xb") as stream:   # last: a partly written bundle has no graph.json
        stream.write(text)


def _write_zip(path: str, text: bytes, members) -> None:
    """Members in a fixed order (graph.json, then the tensors), stored, dated 1980-01-01, mode 0644;
    written to a temporary file beside ``path``, then moved into place."""
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".partial")
    try:
        with os.fdopen(descriptor, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as archive:
            _add_member(archive, FILE, len(text), lambda stream: stream.write(text))
            for file, array in members:
                _add_member(archive, file, array.nbytes + PREFIX_MAX, lambda stream, a=array: write_npy(stream, a))
        os.chmod(temporary, ZIP_MODE & 0o777)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _add_member(archive: zipfile.ZipFile, name: str, size_bound: int, write) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3            # Unix, so that external_attr means the mode below on every platform
    info.external_attr = ZIP_MODE << 16
    with archive.open(info, "w", force_zip64=size_bound >= zipfile.ZIP64_LIMIT) as stream:
        write(stream)


# --- reading -----------------------------------------------------------------------------------------

def _open_bundle(path: str):
    if os.path.isdir(path):
        return _DirectoryBundle(path)
    if os.path.isfile(path):
        if zipfile.is_zipfile(path):
            return _ZipBundle(path)
        raise BundleFormatError("neither a bundle directory nor a zip file", path=path)
    raise BundleFormatError("no such file or directory", path=path)


class _DirectoryBundle:
    def __init__(self, path: str):
        self.root = os.path.realpath(path)

    def close(self) -> None:
        pass

    def _resolve(self, member: str, error):
        """The real path of ``member`` (inside the bundle, links followed) and its stat."""
        full = os.path.realpath(os.path.join(self.root, member))
        try:
            inside = os.path.commonpath([self.root, full]) == self.root
        except ValueError:   # different drives (Windows)
            inside = False
        if not inside:
            raise UnsafePathError("resolves outside the bundle directory (a link?)", path=member)
        try:
            status = os.stat(full)
        except OSError as exc:
            raise error(f"cannot be read: {exc.strerror or exc}", path=member) from None
        if not stat.S_ISREG(status.st_mode):
            raise error("is not a regular file", path=member)
        return full, status

    def read_graph_json(self) -> bytes:
        full, status = self._resolve(FILE, BundleFormatError)
        if status.st_size > MAX_GRAPH_JSON_BYTES:
            raise BundleFormatError(f"{status.st_size} bytes (at most {MAX_GRAPH_JSON_BYTES})", path=FILE)
        try:
            with open(full, "rb") as stream:
                return stream.read(status.st_size)   # read(n) reserves n bytes: never more than the file
        except OSError as exc:
            raise BundleFormatError(f"cannot be read: {exc}", path=FILE) from None

    def read_tensor(self, entry, verify: bool):
        """``(values, source)``: the values memory-mapped where they can be (``source`` is then the
        file's ``FileStamp``, checked again before and after every run), else read (``source`` None)."""
        full, status = self._resolve(entry.file, TensorFileError)
        stamp = FileStamp.of(full, entry.file, status)
        try:
            with open(full, "rb") as stream:
                prefix = stream.read(PREFIX_MAX)
            header = parse_header(prefix, entry.file, float64=entry.layout == SCALES_LAYOUT)
            check_header(header, entry, status.st_size)
            array = np.memmap(full, dtype=header.dtype, mode="r", offset=header.data_offset, shape=header.shape) \
                if header.data_bytes else np.zeros(header.shape, dtype=header.dtype)
            if verify:   # the header bytes read above, then the mapped bytes themselves: no copy, and
                digest = hashlib.sha256(prefix[:header.data_offset])        # what is hashed is what is used
                digest.update(array.reshape(-1).view(np.uint8))
                check_sha256(digest.hexdigest(), entry)
        except (OSError, ValueError) as exc:
            raise TensorFileError(f"cannot be read: {exc}", path=entry.file) from None
        stamp.check("while the bundle was being loaded")   # the file mapped is the file stamped
        values = decode(entry, array)
        mapped = isinstance(array, np.memmap) and np.may_share_memory(values, array)
        return values, (stamp if mapped else None)


class _ZipBundle:
    def __init__(self, path: str):
        self.size = os.path.getsize(path)
        try:
            self.archive = zipfile.ZipFile(path)
        except _ZIP_ERRORS as exc:
            raise BundleFormatError(f"not a readable zip: {exc}", path=path) from None
        try:
            self.members = self._index(path)
        except BaseException:
            self.archive.close()
            raise

    def close(self) -> None:
        self.archive.close()

    def _index(self, path: str) -> dict:
        members = {}
        for info in self.archive.infolist():
            name = info.filename
            if name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", name) or re.match(r"^[A-Za-z]:", name):
                raise UnsafePathError(f"zip member {name[:200]!r} would leave the bundle", path=path)
            if name in members:
                raise BundleFormatError(f"the zip holds {name[:200]!r} twice", path=path)
            members[name] = info
        return members

    def _check_member(self, info: zipfile.ZipInfo, error, expected_size: str) -> None:
        """Before decompressing: not encrypted, stored or deflated, and no more data than the
        archive can hold (a stored member's sizes agree; deflate expands at most ~1032:1)."""
        name = info.filename
        if info.flag_bits & 0x1:
            raise error("the zip member is encrypted", path=name)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise error(f"zip compression method {info.compress_type} (only stored or deflated)", path=name)
        stored = info.compress_type == zipfile.ZIP_STORED
        if info.header_offset + info.compress_size > self.size or (stored and info.compress_size != info.file_size) \
                or info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 1024:
            raise error(f"the zip member declares {info.file_size} bytes from {info.compress_size} compressed "
                        f"({expected_size}); the archive cannot hold that", path=name)

    def _read_exactly(self, stream, buffer: memoryview, error, name: str) -> None:
        done = 0
        while done < len(buffer):
            count = stream.readinto(buffer[done:done + CHUNK])   # bounded: zipfile reads into a temporary
            if not count:
                raise error("the zip member ended early", path=name)
            done += count

    def read_graph_json(self) -> bytes:
        info = self.members.get(FILE)
        if info is None:
            nested = sorted(n for n in self.members if n.endswith("/" + FILE))[:1]
            hint = f" (found {nested[0]!r}: zip the bundle's contents, not its folder)" if nested else ""
            raise BundleFormatError(f"no {FILE} at the root of the zip{hint}")
        if info.file_size > MAX_GRAPH_JSON_BYTES:
            raise BundleFormatError(f"{info.file_size} bytes (at most {MAX_GRAPH_JSON_BYTES})", path=FILE)
        self._check_member(info, BundleFormatError, "graph.json")
        buffer = bytearray(info.file_size)
        try:
            with self.archive.open(info) as stream:
                self._read_exactly(stream, memoryview(buffer), BundleFormatError, FILE)
                if stream.read(1):
                    raise BundleFormatError("the zip member is longer than it declares", path=FILE)
        except _ZIP_ERRORS as exc:
            raise BundleFormatError(f"cannot be read from the zip: {exc}", path=FILE) from None
        return bytes(buffer)

    def read_tensor(self, entry, verify: bool) -> np.ndarray:
        info = self.members.get(entry.file)
        if info is None:
            raise TensorFileError("missing from the zip", path=entry.file)
        data_bytes = expected_data_bytes(entry)
        if not data_bytes + 10 <= info.file_size <= data_bytes + PREFIX_MAX:
            raise TensorFileError(f"the zip member declares {info.file_size} bytes; tensor {entry.name!r} needs "
                                  f"{data_bytes} bytes of data plus a .npy header", path=entry.file)
        self._check_member(info, TensorFileError, f"expected {data_bytes} + header")
        if verify and info.compress_type != zipfile.ZIP_STORED:
            # stream-hash a deflated member first: it may declare up to ~1032x the bytes the archive holds,
            # and one with a wrong sha256 is refused before that size is allocated. A stored member's size
            # is bytes the archive really holds (checked above): it is hashed once, below, as it is kept.
            check_sha256(self._stream_sha256(info, entry), entry)
        buffer = bytearray(info.file_size)   # bounded: the declared shape's size, checked just above
        view = memoryview(buffer)
        try:
            with self.archive.open(info) as stream:
                prefix = min(PREFIX_MAX, info.file_size)
                self._read_exactly(stream, view[:prefix], TensorFileError, entry.file)
                header = parse_header(bytes(view[:prefix]), entry.file, float64=entry.layout == SCALES_LAYOUT)
                check_header(header, entry, info.file_size)
                self._read_exactly(stream, view[prefix:], TensorFileError, entry.file)
                if stream.read(1):
                    raise TensorFileError("the zip member is longer than it declares", path=entry.file)
        except _ZIP_ERRORS as exc:
            raise TensorFileError(f"cannot be read from the zip: {exc}", path=entry.file) from None
        if verify:   # the bytes kept are the bytes hashed, even if the zip changed between the two reads
            check_sha256(hashlib.sha256(buffer).hexdigest(), entry)
        array = np.frombuffer(buffer, dtype=header.dtype, count=math.prod(header.shape), offset=header.data_offset)
        return decode(entry, array.reshape(header.shape)), None

    def _stream_sha256(self, info: zipfile.ZipInfo, entry) -> str:
        """sha256 of the member's bytes, decompressed chunk by chunk (memory: one chunk); its .npy
        header is checked on the way, so that a bad header is reported as such, not as a bad hash."""
        try:
            with self.archive.open(info) as stream:
                prefix = stream.read(min(PREFIX_MAX, info.file_size))
                check_header(parse_header(prefix, entry.file, float64=entry.layout == SCALES_LAYOUT), entry,
                             info.file_size)
                digest = sha256_of_stream(stream, info.file_size - len(prefix), entry.file, start=prefix)
                if stream.read(1):
                    raise TensorFileError("the zip member is longer than it declares", path=entry.file)
        except _ZIP_ERRORS as exc:
            raise TensorFileError(f"cannot be read from the zip: {exc}", path=entry.file) from None
        return digest
