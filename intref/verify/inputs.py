"""What ``intref verify`` reads: the golden set's manifest, its bundle, its golden values, and the
hardware dump files.

Two kinds of bad input are kept apart:

- the reference itself is unusable (a manifest defect, a bundle that is not the one the set was
  written from, a golden file that fails its sha256, a bad option): ``VerifyInputError``, raised;
  nothing can be compared against a reference that cannot be trusted;
- one hardware dump cannot be decoded (truncated, empty, wrong width, garbage, wrong dtype,
  pickled, unreadable): ``DumpError``, kept per tensor so the report still shows every other
  comparison; it makes the verdict "bad input" (exit 2) and is never counted as a match.

Every message names the file, and the field, line or byte where there is one.
"""

from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Tuple

import numpy as np

from .._checks import first_outside
from ..bundle.jsonio import parse_json
from ..bundle.npy import PREFIX_MAX, parse_header
from ..bundle.write import tensor_file_names
from ..errors import BundleError, IntrefError, format_index
from ..inttypes import OVERFLOW_MODES, IntType
from ..golden.vectors import MAX_LANES, Layout, VectorFormatError, decode_bin, decode_text, digits

MANIFEST = "manifest.json"
GOLDEN_FORMAT, GOLDEN_VERSION = "intref-golden", 1
DUMP_FORMATS = ("npy", "bin", "hex", "mem")        # the default search order
ROLES = ("graph_input", "constant", "intermediate", "graph_output")
MAX_MANIFEST_BYTES = 256 << 20
MAX_ELEMENTS = 1 << 34
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class VerifyInputError(IntrefError):
    """The golden set, its bundle, a golden file or an option cannot be used (exit 2)."""

    def __init__(self, message: str, *, path: str = "", field: str = ""):
        where = ": ".join(p for p in (path, field) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.path, self.field = path, field


class DumpError(VerifyInputError):
    """One hardware dump file cannot be decoded into its tensor (exit 2 for the run)."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of the manifest. ``stem``: its files' path without the extension; ``layout``: how
    its hex/mem/bin files are laid out (the tensor's own entry, else the manifest's top level)."""

    name: str
    role: str
    type: IntType
    shape: Tuple[int, ...]
    sha256: str
    files: Mapping[str, str]
    stem: str
    layout: Layout

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True)
class NodeEntry:
    name: str
    op: str
    inputs: Tuple[str, ...]
    outputs: Tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    path: str
    graph_name: str
    graph_sha256: str
    bundle: Optional[str]
    overflow: str
    layout: Layout
    nodes: Tuple[NodeEntry, ...]
    tensors: Mapping[str, TensorEntry]
    feeds: Mapping[str, Tuple[str, str]] = None     # input name -> (file relative to the set, sha256 of its bytes)
    constants: str = "include"


# --- the manifest ------------------------------------------------------------------------------------

def read_manifest(golden_dir: str) -> Manifest:
    """Parse and validate ``golden_dir/manifest.json``; every defect names the file and field."""
    path = os.path.join(golden_dir, MANIFEST)
    if not os.path.isdir(golden_dir):
        raise VerifyInputError("is not a directory (expected a golden set written by `intref golden`)",
                               path=golden_dir)
    try:
        if os.path.getsize(path) > MAX_MANIFEST_BYTES:
            raise VerifyInputError(f"larger than {MAX_MANIFEST_BYTES} bytes", path=path)
        with open(path, "rb") as stream:
            document = parse_json(stream.read(), path)
    except OSError as exc:
        raise VerifyInputError(f"cannot be read: {exc.strerror or exc}", path=path) from None
    except BundleError as exc:
        raise VerifyInputError(str(exc)) from None
    check = _FieldCheck(path)
    check.require(isinstance(document, dict), "", "the manifest must be a JSON object")
    check.require(document.get("format") == GOLDEN_FORMAT, "format", f"must be {GOLDEN_FORMAT!r}")
    check.require(document.get("format_version") == GOLDEN_VERSION, "format_version",
                  f"must be {GOLDEN_VERSION} (this intref reads version {GOLDEN_VERSION})")
    graph = check.get(document, "graph", dict, "graph")
    sha = check.get(graph, "sha256", str, "graph.sha256")
    check.require(bool(_SHA256.match(sha)), "graph.sha256", "must be 64 lowercase hex digits")
    bundle = document.get("bundle")
    check.require(bundle is None or (isinstance(bundle, str) and bundle != ""), "bundle",
                  "must be a relative path or null")
    overflow = check.get(document, "overflow", str, "overflow")
    check.require(overflow in OVERFLOW_MODES, "overflow", f"{overflow!r} is not one of {', '.join(OVERFLOW_MODES)}")
    layout = _read_layout(check, check.get(document, "layout", dict, "layout"), "layout")
    tensors = _read_tensors(check, check.get(document, "tensors", dict, "tensors"), layout)
    nodes = _read_nodes(check, check.get(document, "nodes", list, "nodes"))
    constants = document.get("constants", "include")
    check.require(constants in ("include", "exclude", "only"), "constants", "must be include, exclude or only")
    feeds = _read_feeds(check, check.get(document, "feeds", dict, "feeds"))
    return Manifest(path, str(graph.get("name", "")), sha, bundle, overflow, layout, nodes, tensors, feeds,
                    constants)


def _read_feeds(check: "_FieldCheck", data: dict) -> Mapping[str, Tuple[str, str]]:
    feeds = {}
    for name, entry in data.items():
        field = f"feeds[{name!r}]"
        rel = check.get(entry, "file", str, f"{field}.file")
        check.require(rel.endswith(".npy") and _is_safe_relative(rel), f"{field}.file",
                      f"{rel!r} is not a relative path ending in .npy inside the golden set")
        sha = check.get(entry, "sha256", str, f"{field}.sha256")
        check.require(bool(_SHA256.match(sha)), f"{field}.sha256", "must be 64 lowercase hex digits")
        feeds[name] = (rel, sha)
    return feeds


class _FieldCheck:
    def __init__(self, path: str):
        self.path = path

    def require(self, condition: bool, field: str, message: str) -> None:
        if not condition:
            raise VerifyInputError(message, path=self.path, field=field)

    def get(self, obj, key: str, kind, field: str):
        self.require(isinstance(obj, dict) and key in obj, field, "missing")
        value = obj[key]
        self.require(isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool), field,
                     f"must be {'a' if kind is not int else 'an'} {getattr(kind, '__name__', kind)}, "
                     f"got {type(value).__name__}")
        return value


def _read_layout(check: _FieldCheck, data, field: str) -> Layout:
    check.require(isinstance(data, dict), field, "must be an object")
    lanes, order, tile = data.get("lanes", 1), data.get("lane_order", "lsb_first"), data.get("tile")
    check.require(type(lanes) is int and 1 <= lanes <= MAX_LANES, f"{field}.lanes",
                  f"must be an int from 1 to {MAX_LANES}, got {lanes!r}")
    check.require(order in ("lsb_first", "msb_first"), f"{field}.lane_order", "must be 'lsb_first' or 'msb_first'")
    check.require(tile is None or (isinstance(tile, list) and len(tile) == 2 and all(type(t) is int and t >= 1
                                                                                       for t in tile)),
                  f"{field}.tile", "must be null or two ints >= 1")
    check.require(isinstance(data.get("int4_packed", False), bool), f"{field}.int4_packed", "must be true or false")
    return Layout.from_json(data)


def _read_tensors(check: _FieldCheck, data: dict, layout: Layout) -> Mapping[str, TensorEntry]:
    stems = tensor_file_names(list(data))      # what `intref golden` names a tensor with no files
    tensors = {}
    for name, entry in data.items():
        field = f"tensors[{name!r}]"
        check.require(isinstance(entry, dict), field, "must be an object")
        role = check.get(entry, "role", str, f"{field}.role")
        check.require(role in ROLES, f"{field}.role", f"{role!r} is not one of {', '.join(ROLES)}")
        try:
            t = IntType.parse(check.get(entry, "type", str, f"{field}.type"))
        except IntrefError as exc:
            raise VerifyInputError(str(exc), path=check.path, field=f"{field}.type") from None
        for key, value in (("bits", t.bits), ("signed", t.signed)):
            check.require(key not in entry or entry[key] == value and type(entry[key]) is type(value),
                          f"{field}.{key}", f"{entry.get(key)!r} contradicts type {t}")
        shape = check.get(entry, "shape", list, f"{field}.shape")
        check.require(all(type(d) is int and d >= 0 for d in shape), f"{field}.shape", "must be a list of ints >= 0")
        check.require(int(np.prod(shape, dtype=object)) <= MAX_ELEMENTS, f"{field}.shape", "too many elements")
        sha = check.get(entry, "sha256", str, f"{field}.sha256")
        check.require(bool(_SHA256.match(sha)), f"{field}.sha256", "must be 64 lowercase hex digits")
        files = check.get(entry, "files", dict, f"{field}.files")
        for fmt, rel in files.items():
            check.require(fmt in DUMP_FORMATS and isinstance(rel, str) and rel.endswith("." + fmt)
                          and _is_safe_relative(rel), f"{field}.files.{fmt}",
                          f"{rel!r} is not a relative path ending in .{fmt} inside the golden set")
        first = next(iter(files.items()), None)
        stem = first[1][:-len(first[0]) - 1] if first else stems[name][:-len(".npy")]
        own = _read_layout(check, entry["layout"], f"{field}.layout") if "layout" in entry else layout
        tensors[name] = TensorEntry(name, role, t, tuple(shape), sha, dict(files), stem, own)
    return tensors


def _is_safe_relative(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and "\\" not in path and ":" not in path \
        and all(p not in ("", ".", "..") for p in parts)


def _read_nodes(check: _FieldCheck, data: list) -> Tuple[NodeEntry, ...]:
    """The nodes in execution order. A node's inputs and outputs need not all be in ``tensors``
    (a set of constants only lists nodes whose outputs it does not hold)."""
    nodes, seen = [], set()
    for i, entry in enumerate(data):
        field = f"nodes[{i}]"
        name = check.get(entry, "name", str, f"{field}.name")
        check.require(name not in seen, f"{field}.name", f"node {name!r} is listed twice")
        seen.add(name)
        op = check.get(entry, "op", str, f"{field}.op")
        lists = []
        for key in ("inputs", "outputs"):
            names = check.get(entry, key, list, f"{field}.{key}")
            check.require(all(isinstance(n, str) for n in names), f"{field}.{key}", "must be a list of names")
            lists.append(tuple(names))
        nodes.append(NodeEntry(name, op, lists[0], lists[1]))
    return tuple(nodes)


# --- reading one tensor file (golden or hardware) ----------------------------------------------------

@dataclass(frozen=True)
class Dump:
    """One decoded tensor file. ``reread(shape)`` decodes the same file in another shape (None when
    it does not decode that way): the transposed-layout hint uses it. ``note`` says how a file
    was read when that is worth knowing."""

    path: str
    fmt: str
    values: np.ndarray
    reread: Callable[[Tuple[int, ...]], Optional[np.ndarray]]
    note: str = ""


def read_tensor_file(path: str, fmt: str, t: IntType, shape: Tuple[int, ...], layout: Layout) -> Dump:
    """Decode ``path`` (format ``fmt``) as a tensor of type ``t`` and ``shape``; ``DumpError`` names
    the file (and line or byte) of any defect."""
    try:
        if not os.path.isfile(path):
            raise DumpError("is not a regular file", path=path)
        size = os.path.getsize(path)
        if fmt == "npy":
            return _read_npy(path, t, shape, size)
        if fmt == "bin":
            return _read_bin(path, t, shape, layout, size)
        return _read_text(path, fmt, t, shape, layout, size)
    except OSError as exc:
        raise DumpError(f"cannot be read: {exc.strerror or exc}", path=path) from None
    except VectorFormatError as exc:
        raise DumpError(str(exc)) from None


def _read_npy(path: str, t: IntType, shape, size: int) -> Dump:
    with open(path, "rb") as stream:
        prefix = stream.read(PREFIX_MAX)
        try:
            header = parse_header(prefix, path)   # magic, version, literal header, no object dtype
        except BundleError as exc:
            raise DumpError(str(exc)) from None
        expected = t.storage.newbyteorder("<")
        if header.dtype != expected:
            raise DumpError(f"dtype {header.dtype.str} ({header.dtype.name}); tensor of type {t} needs "
                            f"{expected.str} ({expected.name})", path=path)
        transposed = tuple(shape[:-2]) + tuple(shape[-2:][::-1])
        if header.shape != tuple(shape) and not (len(shape) >= 2 and header.shape == transposed):
            raise DumpError(f"shape {list(header.shape)}, expected {list(shape)}", path=path)
        if size != header.data_offset + header.data_bytes:
            raise DumpError(f"{size} bytes; the header ({header.data_offset} bytes) declares "
                            f"{header.data_bytes} bytes of data: truncated or padded", path=path)
        stream.seek(header.data_offset)
        data = stream.read(header.data_bytes)
    if len(data) != header.data_bytes:
        raise DumpError("the file changed while being read", path=path)
    flat = np.frombuffer(data, dtype=expected).astype(t.storage, copy=False)   # read-only; a copy only to swap bytes
    _require_in_type(flat, t, path, header.shape)
    note = ""
    if header.shape != tuple(shape):
        note = f"its shape {list(header.shape)} swaps the last two axes: read row-major as {list(shape)}"

    def reread(new_shape):
        return flat.reshape(new_shape) if int(np.prod(new_shape, dtype=np.int64)) == flat.size else None

    return Dump(path, "npy", flat.reshape(shape), reread, note)


def _require_in_type(flat: np.ndarray, t: IntType, path: str, shape) -> None:
    if t.bits == flat.dtype.itemsize * 8 or not flat.size:
        return
    index = first_outside(flat.reshape(shape), t.lo, t.hi)
    if index is not None:
        raise DumpError(f"element {format_index(index)} = {int(flat.reshape(shape)[index])} is outside {t} "
                        f"[{t.lo}, {t.hi}]", path=path)


def _bin_bytes(t: IntType, shape, layout: Layout) -> int:
    count = int(np.prod(shape, dtype=np.int64))
    return (count + 1) // 2 if layout.int4_packed else count * t.storage.itemsize


def _read_bin(path: str, t: IntType, shape, layout: Layout, size: int) -> Dump:
    expected = _bin_bytes(t, shape, layout)
    if size != expected:
        raise DumpError(f"{size} bytes, expected {expected} ({int(np.prod(shape, dtype=np.int64))} elements of "
                        f"{'packed int4' if layout.int4_packed else f'{t.storage.itemsize}-byte {t.storage}'}): "
                        f"{'truncated' if size < expected else 'too long'}", path=path)
    with open(path, "rb") as stream:
        data = stream.read(expected + 1)
    return Dump(path, "bin", decode_bin(data, t, shape, layout, source=path),
                _rereader(decode_bin, data, t, layout, path))


def _read_text(path: str, fmt: str, t: IntType, shape, layout: Layout, size: int) -> Dump:
    words = -(-int(np.prod(shape, dtype=np.int64)) // layout.lanes)
    limit = 4 * words * (digits(t) * layout.lanes + 2) + (1 << 16)   # generous: comments, CRLF, blanks
    if size > limit:
        raise DumpError(f"{size} bytes: far more than {words} lines of {digits(t) * layout.lanes} hex digits",
                        path=path)
    with open(path, "rb") as stream:
        raw = stream.read(limit + 1)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DumpError(f"line {line}: byte {exc.start} (0x{raw[exc.start]:02x}) is not ASCII text", path=path) from None
    return Dump(path, fmt, decode_text(text, t, shape, layout, source=path),
                _rereader(decode_text, text, t, layout, path))


def _rereader(decode, content, t: IntType, layout: Layout, path: str):
    """``reread(shape)``: the dump's content decoded in another shape (for the transposed-layout
    hint), or None when it does not decode so."""
    def reread(new_shape):
        try:
            return decode(content, t, new_shape, layout, source=path)
        except VectorFormatError:
            return None
    return reread


# --- golden values -----------------------------------------------------------------------------------

def canonical_sha256(array: np.ndarray, t: IntType) -> str:
    """sha256 of the little-endian storage-width bytes, row-major (the manifest's tensor sha256)."""
    data = np.ascontiguousarray(array, dtype=t.storage.newbyteorder("<"))   # no copy when it already is
    return hashlib.sha256(data.reshape(-1).view(np.uint8)).hexdigest()


class GoldenValues:
    """The expected value of each tensor, read on first use from the golden set (npy preferred) or,
    for a constant written without files, from the bundle; each checked against the manifest's
    sha256, so a modified golden file is refused rather than trusted."""

    PREFETCH_WINDOW = 4     # golden tensors read ahead of the comparison, at most

    def __init__(self, golden_dir: str, manifest: Manifest, constants: Mapping[str, np.ndarray]):
        self.golden_dir, self.manifest, self.constants = golden_dir, manifest, constants
        self._cache = {}
        self._order, self._next, self._ahead, self._reader = [], 0, {}, None

    def prefetch(self, names) -> None:
        """Read (and check against its sha256) each golden tensor of ``names``, in this order, on one
        background thread, up to ``PREFETCH_WINDOW`` ahead of ``get``: file reads and sha256 release
        the GIL, so the golden side overlaps the comparison. ``get`` returns the same array, or raises
        the same error, as without it; a name asked for out of order is read in the calling thread."""
        self._order = [n for n in dict.fromkeys(names) if n in self.manifest.tensors and n not in self._cache]
        self._next = 0
        if self._order and self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intref-golden")
        self._top_up()

    def close(self) -> None:
        """Stop reading ahead (pending reads are cancelled)."""
        if self._reader is not None:
            self._reader.shutdown(wait=True, cancel_futures=True)
            self._reader, self._ahead = None, {}

    def _top_up(self) -> None:
        while self._reader is not None and len(self._ahead) < self.PREFETCH_WINDOW and self._next < len(self._order):
            name = self._order[self._next]
            self._next += 1
            if name not in self._cache and name not in self._ahead:
                self._ahead[name] = self._reader.submit(self._read, self.manifest.tensors[name])

    def get(self, name: str) -> np.ndarray:
        if name not in self.manifest.tensors:
            if name in self.constants:      # a constant the set leaves out
                return self.constants[name]
            raise VerifyInputError(f"tensor {name!r} is not in the golden set", path=self.manifest.path,
                                   field="tensors")
        if name not in self._cache:
            ahead = self._ahead.pop(name, None)
            self._cache[name] = ahead.result() if ahead is not None else self._read(self.manifest.tensors[name])
            self._top_up()
        return self._cache[name]

    def _read(self, entry: TensorEntry) -> np.ndarray:
        field = f"tensors[{entry.name!r}]"
        for fmt in DUMP_FORMATS:
            if fmt in entry.files:
                path = os.path.join(self.golden_dir, *entry.files[fmt].split("/"))
                try:
                    values = read_tensor_file(path, fmt, entry.type, entry.shape, entry.layout).values
                except DumpError as exc:
                    raise VerifyInputError(f"golden file: {exc}") from None
                break
        else:
            if entry.name not in self.constants:
                raise VerifyInputError(f"no golden file for tensor {entry.name!r}", path=self.manifest.path,
                                       field=f"{field}.files")
            path, values = "the bundle's stored tensor", np.asarray(self.constants[entry.name])
            if values.shape != entry.shape:
                raise VerifyInputError(f"the bundle's tensor has shape {list(values.shape)}, the manifest says "
                                       f"{list(entry.shape)}", path=self.manifest.path, field=f"{field}.shape")
        digest = canonical_sha256(values, entry.type)
        if digest != entry.sha256:
            raise VerifyInputError(f"sha256 {digest} does not match {MANIFEST} {field}.sha256 {entry.sha256}: "
                                   f"the golden value was modified", path=path)
        values.setflags(write=False)
        return values


def read_golden_feed(golden_dir: str, manifest: Manifest, name: str, t: IntType) -> np.ndarray:
    """The feed ``name`` the golden set was run on: its file's bytes checked against the manifest's
    sha256, then decoded as a ``.npy`` of ``t`` in the shape its header declares."""
    rel, sha = manifest.feeds[name]
    path = os.path.join(golden_dir, *rel.split("/"))
    try:
        with open(path, "rb") as stream:
            prefix = stream.read(PREFIX_MAX)
            digest = hashlib.sha256(prefix)
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        header = parse_header(prefix, path)
    except OSError as exc:
        raise VerifyInputError(f"golden feed cannot be read: {exc.strerror or exc}", path=path) from None
    except BundleError as exc:
        raise VerifyInputError(f"golden feed: {exc}") from None
    if digest.hexdigest() != sha:
        raise VerifyInputError(f"sha256 {digest.hexdigest()} does not match {MANIFEST} feeds[{name!r}].sha256 "
                               f"{sha}: the feed was modified", path=path)
    if int(np.prod(header.shape, dtype=object)) > MAX_ELEMENTS:
        raise VerifyInputError(f"shape {list(header.shape)}: too many elements", path=path)
    try:
        values = read_tensor_file(path, "npy", t, header.shape, Layout()).values
    except DumpError as exc:
        raise VerifyInputError(f"golden feed: {exc}") from None
    values.setflags(write=False)
    return values
