"""Writing graph.json: a ``Graph`` as a canonical document (the text itself: ``bundle.jsonio``).

Canonical means: the same graph always gives the same document. Fixed-schema objects keep the key
order of ``docs/format.md``; free mappings (producer, symbols, attributes, quantization, metadata)
are sorted by key; lists keep their order (inputs, outputs, tensors, nodes in execution order).

Per-channel scale lists longer than ``quantization.SCALES_INLINE_MAX`` go to the bundle's scale file
(``quantization.pack_scales``: float64, each distinct list once); graph.json then writes
``{"offset": o, "count": n}`` for them, and its top-level ``scales`` names the file.
"""

from __future__ import annotations

import math
import re
from typing import Mapping, Optional

import numpy as np

from .quantization import ScaleSlice
from .schema import FORMAT, FORMAT_VERSION, MAX_METADATA_DEPTH
from ..errors import SchemaError

FILE = "graph.json"
SCALES_NAME = "quantization.scales"     # the scale file's stem (a clash with a tensor's file gets -2, ...)
_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9_.\-]")


def tensor_file_names(names) -> dict:
    """``tensors/<name>.npy`` per tensor name: characters outside ``[A-Za-z0-9_.-]`` become ``_``, and a
    name that would clash (ignoring case, for case-insensitive file systems) gets ``-2``, ``-3``, ...
    in the order given. Deterministic."""
    files, taken = {}, set()
    for name in names:
        stem = _UNSAFE_FILE_CHARACTERS.sub("_", name)
        candidate, count = stem, 1
        while candidate.lower() in taken:
            count += 1
            candidate = f"{stem}-{count}"
        taken.add(candidate.lower())
        files[name] = f"tensors/{candidate}.npy"
    return files


def graph_document(graph, files: Mapping[str, str], hashes: Mapping[str, str], scales=None) -> dict:
    """The graph.json document of ``graph``; ``files``/``hashes`` give each tensor's file and sha256;
    ``scales``: ``(file, sha256, count, slices)`` of the scale file (``pack_scales``), or None."""
    slices = scales[3] if scales else {}
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "producer": {key: graph.producer[key] for key in sorted(graph.producer)},
        "name": graph.name,
        "symbols": {key: _plain(graph.symbols[key]) for key in sorted(graph.symbols)},
        "inputs": [_value_info(info) for info in graph.inputs],
        "outputs": list(graph.outputs),
        "tensors": [{"name": t.name, "type": t.type.name, "shape": list(t.shape), "file": files[t.name],
                     "sha256": hashes[t.name], "layout": t.layout} for t in graph.tensors.values()],
        "nodes": [_node(node) for node in graph.nodes],
        "quantization": {name: _scale_entry(graph.quantization[name], slices.get(name))
                         for name in sorted(graph.quantization)},
        "metadata": _sorted_json("metadata", dict(graph.metadata)),
    }
    if scales:        # after quantization, before metadata: the order of docs/format.md
        metadata = document.pop("metadata")
        document["scales"] = {"file": scales[0], "sha256": scales[1], "count": scales[2]}
        document["metadata"] = metadata
    return document


def _value_info(info) -> dict:
    entry = {"name": info.name, "type": info.type.name}
    if info.shape is not None:
        entry["shape"] = [_plain(d) for d in info.shape]
    if info.range is not None:
        entry["range"] = [_plain(v) for v in info.range]
    return entry


def _node(node) -> dict:
    return {"name": node.name, "op": node.op, "inputs": list(node.inputs),
            "outputs": [_value_info(info) for info in node.outputs],
            "attributes": {key: _plain(node.attributes[key]) for key in sorted(node.attributes)}}


def _scale_entry(entry, in_file: Optional[ScaleSlice] = None) -> dict:
    out = {key: _plain(entry[key]) for key in ("scale", "axis") if key in entry}
    if in_file is not None:
        out["scale"] = {"offset": in_file.offset, "count": in_file.count}
    out.update({key: value for key, value in entry.items() if key not in out})  # unknown keys: the check refuses them
    return out


def _plain(value):
    """NumPy scalars as Python ones, tuples as lists (anything else is left for the schema check)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (list, tuple)):
        if set(map(type, value)) <= {int, float, str}:      # already plain (one C-level pass, not per item)
            return list(value)
        return [_plain(v) for v in value]
    return value


def _sorted_json(field: str, value, depth: int = 0):
    """A free-form JSON value with every object's keys sorted; refuses what JSON cannot hold."""
    if depth > MAX_METADATA_DEPTH:
        raise SchemaError(f"nested more than {MAX_METADATA_DEPTH} levels deep", path=FILE, field=field)
    value = _plain(value)
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise SchemaError(f"key {key!r} is not a string", path=FILE, field=field)
        return {key: _sorted_json(f"{field}.{key}", value[key], depth + 1) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(f"{field}[{i}]", v, depth + 1) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise SchemaError(f"{value} is not a finite number", path=FILE, field=field)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise SchemaError(f"a {type(value).__name__} cannot be written as JSON", path=FILE, field=field)
