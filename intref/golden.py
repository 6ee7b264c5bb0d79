"""``intref golden``: the exact expected value of every tensor of one run, as files for hardware.

    write_golden(graph, feeds, "golden/case", formats=("npy", "hex", "bin"))

writes, for every node (or the nodes asked for), its inputs and outputs:

    case/manifest.json        what was run and what every file holds (below)
    case/feeds/<input>.npy    the feeds, as given
    case/tensors/<name>.npy / .hex / .mem / .bin   (``intref.vectors`` describes each encoding)

manifest.json (canonical JSON, format ``intref-golden`` version 1):
  intref_version, graph {name, sha256 (of its canonical graph.json: it covers every tensor)},
  bundle (its path relative to the case, when written from a file), overflow policy,
  feeds {name: {file, sha256}}, formats, layout (lanes, lane order, tile, int4 packing),
  nodes [{name, op, inputs, outputs, attributes}] in execution order,
  tensors {name: {role (graph_input | constant | intermediate | graph_output), producer
  (a node, or null for inputs and constants), consumers, type, bits, signed, shape, sha256, files}}.

A tensor's ``sha256`` is taken over its canonical bytes: little-endian at its storage width,
row-major; it does not depend on the file formats or the layout, so two cases of the same run
agree whatever they were written as. Writing is deterministic: the same run gives the same bytes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
from typing import Iterable, Mapping, Optional

import numpy as np

from ._version import __version__
from .bundle import graph_sha256
from .bundle_json import dumps_canonical
from .bundle_write import tensor_file_names
from .errors import IntrefError
from .graph import Graph
from .interpreter import run
from .inttypes import IntType
from .vectors import Layout, encode_bin, encode_text, mem_header

GOLDEN_FORMAT, GOLDEN_VERSION = "intref-golden", 1
FORMATS = ("npy", "hex", "mem", "bin")


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


def write_golden(graph: Graph, feeds: Mapping[str, np.ndarray], out_dir, *, formats=FORMATS,
                 layout: Layout = Layout(), nodes=None, overflow: str = "check",
                 bundle_path: Optional[str] = None) -> dict:
    """Run ``graph`` on ``feeds`` and write the golden set to ``out_dir`` (new or empty); return
    the manifest."""
    formats = tuple(formats)
    if not formats or any(f not in FORMATS for f in formats):
        raise GoldenError(f"formats {list(formats)}: choose from {', '.join(FORMATS)}")
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise GoldenError(f"{out_dir}: the output directory must be new or empty")
    values = dict(graph.tensors.items())
    values = {name: t.data for name, t in values.items()}
    values.update(run(graph, feeds, overflow=overflow, trace=True))
    roles = tensor_roles(graph, select_nodes(graph, nodes))
    files = {name: path[:-len(".npy")] for name, path in tensor_file_names(list(roles)).items()}
    writes, tensors = {}, {}
    for name, info in roles.items():
        t = graph.values[name].type
        array = np.asarray(values[name])
        entry = {**info, "type": t.name, "bits": t.bits, "signed": t.signed, "shape": list(array.shape),
                 "sha256": hashlib.sha256(canonical_bytes(array, t)).hexdigest(), "files": {}}
        for fmt in formats:
            path = f"{files[name]}.{fmt}"
            entry["files"][fmt] = path
            writes[path] = _encode(fmt, name, array, t, layout)
        tensors[name] = entry
    feed_entries = {}
    for info in graph.inputs:
        data = npy_bytes(np.asarray(feeds[info.name]), info.type)
        writes[f"feeds/{info.name}.npy"] = data
        feed_entries[info.name] = {"file": f"feeds/{info.name}.npy", "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {
        "format": GOLDEN_FORMAT, "format_version": GOLDEN_VERSION, "intref_version": __version__,
        "graph": {"name": graph.name, "sha256": graph_sha256(graph)},
        "bundle": bundle_path, "overflow": overflow, "feeds": feed_entries, "formats": list(formats),
        "layout": layout.to_json(),
        "nodes": [{"name": n.name, "op": n.op, "inputs": list(n.inputs), "outputs": [o.name for o in n.outputs],
                   "attributes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(n.attributes.items())}}
                  for n in graph.nodes if any(o.name in roles for o in n.outputs)],
        "tensors": tensors,
    }
    writes["manifest.json"] = dumps_canonical(manifest)
    for path, data in sorted(writes.items()):
        full = os.path.join(out_dir, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(data)
    return manifest


def _encode(fmt: str, name: str, array: np.ndarray, t: IntType, layout: Layout) -> bytes:
    if fmt == "npy":
        return npy_bytes(array, t)
    if fmt == "bin":
        return encode_bin(array, t, layout)
    text = encode_text(array, t, layout)
    return ((mem_header(name, t, array.shape, layout) + text) if fmt == "mem" else text).encode("ascii")
