"""``intref golden``: the exact expected value of every tensor of one run, as files for hardware.

    write_golden(graph, feeds, "golden/case", formats=("npy", "hex", "bin"))

writes, for every node (or the nodes asked for), its inputs and outputs:

    case/manifest.json        what was run and what every file holds (below)
    case/feeds/<input>.npy    the feeds, as given
    case/tensors/<name>.npy / .hex / .mem / .bin   (``intref.golden.vectors`` describes each encoding)

``constants`` says what happens to the stored tensors (weights, biases, tables), which are the
same for every run: ``include`` (the default) writes them like any tensor; ``exclude`` lists them
in the manifest (role, type, shape, sha256) with ``"files": {}`` and writes no file for them;
``only`` writes nothing but them (the weights a hardware team loads once): the graph is not run,
no feeds are taken, ``tensors`` holds only the constants and ``nodes`` still lists the chosen
nodes, whose attributes (multipliers, shifts) are the rest of what hardware loads once.

manifest.json (canonical JSON, format ``intref-golden`` version 1):
  intref_version, graph {name, sha256 (of its canonical graph.json: it covers every tensor)},
  bundle (its path relative to the case, when written from a file), overflow policy,
  feeds {name: {file, sha256}}, formats, layout (lanes, lane order, tile, int4 packing),
  constants (include | exclude | only), metadata (free-form, given by the writer's caller),
  nodes [{name, op, inputs, outputs, attributes}] in execution order,
  tensors {name: {role (graph_input | constant | intermediate | graph_output), producer
  (a node, or null for inputs and constants), consumers, type, bits, signed, shape, sha256, files,
  layout}}.

A tensor's ``layout`` is the top-level layout as it applies to that tensor (``tensor_layout``):
the tile only where it divides the tensor's last two axes (else row-major, ``tile: null``), int4
packing only for tensors of at most 4 bits. Decode each tensor's files with its own layout.

A tensor's ``sha256`` is taken over its canonical bytes: little-endian at its storage width,
row-major; it does not depend on the file formats or the layout, so two cases of the same run
agree whatever they were written as. Writing is deterministic: the same run gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import io
import os
from typing import Iterable, Mapping, Optional

import numpy as np

from .._version import __version__
from ..bundle.load import graph_sha256
from ..bundle.jsonio import dumps_canonical
from ..bundle.write import tensor_file_names
from ..errors import IntrefError
from ..graph import Graph
from ..interpreter import run
from ..inttypes import OVERFLOW_MODES, IntType
from .vectors import MAX_LANES, Layout, encode_bin, encode_text, mem_header

GOLDEN_FORMAT, GOLDEN_VERSION = "intref-golden", 1
FORMATS = ("npy", "hex", "mem", "bin")
CONSTANTS = ("include", "exclude", "only")
LANE_ORDERS = ("lsb_first", "msb_first")


class GoldenError(IntrefError):
    """A golden set cannot be written (bad options, a non-empty output directory)."""


def canonical_bytes(array: np.ndarray, t: IntType) -> bytes:
    """Little-endian storage-width bytes, row-major: what a tensor's sha256 is taken over."""
    return np.ascontiguousarray(array, dtype=t.storage.newbyteorder("<")).tobytes()


def npy_bytes(array: np.ndarray, t: IntType) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array, dtype=t.storage.newbyteorder("<")),
                              version=(1, 0), allow_pickle=False)
    return buffer.getvalue()


def tensor_layout(layout: Layout, t: IntType, shape) -> Layout:
    """``layout`` as it applies to one tensor: the tile only where it divides the last two axes,
    int4 packing only for types of at most 4 bits."""
    tile = layout.tile
    if tile is not None and (len(shape) < 2 or shape[-2] % tile[0] or shape[-1] % tile[1]):
        tile = None
    return dataclasses.replace(layout, tile=tile, int4_packed=layout.int4_packed and t.bits <= 4)


def check_options(formats, layout: Layout, constants: str, feeds, overflow: str = "check") -> tuple:
    """The formats as a tuple; every option checked (``GoldenError`` naming the bad one)."""
    formats = tuple(formats)
    if not formats or any(f not in FORMATS for f in formats):
        raise GoldenError(f"formats {list(formats)}: choose from {', '.join(FORMATS)}")
    if len(set(formats)) != len(formats):
        raise GoldenError(f"formats {list(formats)}: a format is given twice")
    if constants not in CONSTANTS:
        raise GoldenError(f"constants={constants!r}: choose from {', '.join(CONSTANTS)}")
    if overflow not in OVERFLOW_MODES:
        raise GoldenError(f"overflow={overflow!r}: choose from {', '.join(OVERFLOW_MODES)}")
    if constants == "only" and feeds:
        raise GoldenError("constants='only' writes the stored tensors without running the graph: give no feeds")
    if isinstance(layout.lanes, bool) or not isinstance(layout.lanes, int) or not 1 <= layout.lanes <= MAX_LANES:
        raise GoldenError(f"lanes={layout.lanes!r}: must be a whole number from 1 to {MAX_LANES}")
    if layout.lane_order not in LANE_ORDERS:
        raise GoldenError(f"lane_order={layout.lane_order!r}: choose from {', '.join(LANE_ORDERS)}")
    if layout.tile is not None and (len(layout.tile) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in layout.tile)):
        raise GoldenError(f"tile={layout.tile!r}: expected two whole numbers >= 1 (rows, columns)")
    return formats


def select_nodes(graph: Graph, patterns: Optional[Iterable[str]]):
    """The nodes whose name matches one of the glob ``patterns`` (all nodes when none given)."""
    if not patterns:
        return list(graph.nodes)
    patterns = list(patterns)
    chosen = [node for node in graph.nodes if any(fnmatch.fnmatchcase(node.name, p) for p in patterns)]
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(n.name, p) for n in graph.nodes)]
    if unmatched:
        raise GoldenError(f"--nodes {unmatched[0]!r} matches no node (nodes: {', '.join(n.name for n in graph.nodes[:8])}, ...)")
    return chosen


def tensor_roles(graph: Graph, nodes) -> dict:
    """Per tensor of the chosen nodes: role, producer and consumers (among all nodes)."""
    inputs = {info.name for info in graph.inputs}
    producer = {o.name: node.name for node in graph.nodes for o in node.outputs}
    consumers = {}
    for node in graph.nodes:
        for name in node.inputs:
            consumers.setdefault(name, []).append(node.name)
    roles = {}
    for node in nodes:
        for name in list(node.inputs) + [o.name for o in node.outputs]:
            if name in inputs:
                role = "graph_input"
            elif name in graph.tensors:
                role = "constant"
            else:
                role = "graph_output" if name in graph.outputs else "intermediate"
            roles[name] = {"role": role, "producer": producer.get(name), "consumers": consumers.get(name, [])}
    return roles


def write_golden(graph: Graph, feeds: Optional[Mapping[str, np.ndarray]], out_dir, *, formats=FORMATS,
                 layout: Layout = Layout(), nodes=None, overflow: str = "check",
                 bundle_path: Optional[str] = None, constants: str = "include",
                 metadata: Optional[dict] = None, progress=None) -> dict:
    """Run ``graph`` on ``feeds`` and write the golden set to ``out_dir`` (new or empty); return
    the manifest. ``constants``: include | exclude | only (module docstring); ``metadata``: a
    JSON-ready dict stored as the manifest's ``metadata``; ``progress`` (``intref.progress.Progress``)
    hears each node run, each tensor encoded and each file written."""
    progress = progress or (lambda *args, **kwargs: None)
    formats = check_options(formats, layout, constants, feeds, overflow)
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise GoldenError(f"{out_dir}: the output directory must be new or empty")
    chosen = select_nodes(graph, nodes)
    roles = tensor_roles(graph, chosen)
    stems = {name: path[:-len(".npy")] for name, path in tensor_file_names(list(roles)).items()}
    values = {name: t.data for name, t in graph.tensors.items()}
    if constants == "only":
        graph.check_storage()   # the constants are read below without a run (which would check)
        roles = {name: info for name, info in roles.items() if info["role"] == "constant"}
        feeds = {}
    else:
        values.update(run(graph, feeds, overflow=overflow, trace=True, progress=progress))
    writes, tensors = {}, {}
    for number, (name, info) in enumerate(roles.items(), 1):
        written = () if constants == "exclude" and info["role"] == "constant" else formats
        tensors[name] = _tensor_entry(graph, name, info, np.asarray(values[name]), stems[name], written, layout, writes)
        progress("encode", number, len(roles), name)
    manifest = {
        "format": GOLDEN_FORMAT, "format_version": GOLDEN_VERSION, "intref_version": __version__,
        "graph": {"name": graph.name, "sha256": graph_sha256(graph)},
        "bundle": bundle_path, "overflow": overflow, "feeds": _feed_entries(graph, feeds, writes),
        "formats": list(formats), "layout": layout.to_json(), "constants": constants,
        "metadata": dict(metadata or {}),
        "nodes": [{"name": n.name, "op": n.op, "inputs": list(n.inputs), "outputs": [o.name for o in n.outputs],
                   "attributes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(n.attributes.items())}}
                  for n in chosen],
        "tensors": tensors,
    }
    try:
        writes["manifest.json"] = dumps_canonical(manifest)
    except (TypeError, ValueError) as exc:
        raise GoldenError(f"metadata is not plain JSON (dict, list, str, int, float, bool, None): {exc}") from None
    _write_files(out_dir, writes, progress)
    return manifest


def _tensor_entry(graph: Graph, name: str, info: dict, array: np.ndarray, stem: str, formats, layout: Layout,
                  writes: dict) -> dict:
    """The manifest entry of one tensor; its files' bytes go into ``writes`` (path -> bytes)."""
    t = graph.values[name].type
    own = tensor_layout(layout, t, array.shape)
    entry = {**info, "type": t.name, "bits": t.bits, "signed": t.signed, "shape": list(array.shape),
             "sha256": hashlib.sha256(canonical_bytes(array, t)).hexdigest(), "files": {},
             "layout": own.to_json()}
    for fmt in formats:
        path = f"{stem}.{fmt}"
        entry["files"][fmt] = path
        writes[path] = _encode(fmt, name, array, t, own)
    return entry


def _feed_entries(graph: Graph, feeds: Mapping[str, np.ndarray], writes: dict) -> dict:
    entries = {}
    for info in graph.inputs:
        if info.name not in feeds:
            continue   # constants="only": the graph was not run
        data = npy_bytes(np.asarray(feeds[info.name]), info.type)
        writes[f"feeds/{info.name}.npy"] = data
        entries[info.name] = {"file": f"feeds/{info.name}.npy", "sha256": hashlib.sha256(data).hexdigest()}
    return entries


def _write_files(out_dir: str, writes: Mapping[str, bytes], progress) -> None:
    for number, (path, data) in enumerate(sorted(writes.items()), 1):
        full = os.path.join(out_dir, path)
        try:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise GoldenError(f"{full}: cannot write: {exc.strerror or exc}") from None
        progress("write", number, len(writes), path, nbytes=len(data))


def _encode(fmt: str, name: str, array: np.ndarray, t: IntType, layout: Layout) -> bytes:
    if fmt == "npy":
        return npy_bytes(array, t)
    if fmt == "bin":
        return encode_bin(array, t, layout)
    text = encode_text(array, t, layout)
    return ((mem_header(name, t, array.shape, layout) + text) if fmt == "mem" else text).encode("ascii")
