"""``intref verify``: compare a hardware dump with a golden set, node by node, bit for bit.

    report = verify("golden/case", "hw_dump/", isolate=True)
    print(report.to_text()); report.to_junit("verify.xml"); sys.exit(report.exit_code)

The golden set is what ``intref golden`` wrote (``manifest.json`` + golden files); its bundle is
found by the manifest's relative ``bundle`` path (or ``bundle=``, a path or a ``Graph``) and must
have the graph sha256 the manifest records. The hardware dump is laid out by the manifest's file
names: for each tensor, ``HW_DIR/<files path without extension>.<ext>`` (``tensors/layer0.q.hex``)
or ``HW_DIR/<stem>.<ext>`` (``layer0.q.hex``), trying the formats in order (default npy, bin, hex,
mem); any subset of tensors may be there. Each dump is decoded with the manifest's type, shape and
layout and compared with the golden value (exactly, or within ``±tolerance``).

Per node, in the manifest's (topological) order: its outputs, and the inputs no node of the set
produces (graph inputs, constants) where dumped: match, or the first divergent element (multi-
index, expected, got, hex at the type's width, differing bits), the mismatch count and fraction,
the max |difference| and a hint (``intref.verify.hints``). ``isolate=True`` re-runs each node on
the hardware's own inputs (its dumps where there are, golden otherwise): a node whose output
reproduces that re-run is locally correct (its mismatch came from upstream), one that does not
is locally wrong.

Bad input: a defect of the golden set, its bundle or the options raises ``VerifyInputError``
(exit 2); a hardware file that cannot be decoded is reported as a ``bad dump`` (exit 2), never as
a match. No float is used anywhere on the comparison path.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np

from .._checks import first_outside
from ..bundle.load import graph_sha256, load
from ..errors import IntrefError, format_index
from ..graph import Graph
from .compare import compare
from ..interpreter import run_node
from .hints import HintCase, hint
from .inputs import (DUMP_FORMATS, MANIFEST, Dump, DumpError, GoldenValues, Manifest, VerifyInputError,
                     read_manifest, read_tensor_file)
from .report import (BAD_DUMP, LOCALLY_CORRECT, LOCALLY_WRONG, MATCH, MISMATCH, NOT_DUMPED, NOT_ISOLATED,
                     Isolation, NodeResult, TensorResult, VerifyReport)

__all__ = ["VerifyInputError", "VerifyReport", "verify"]


def verify(golden_dir, hw_dir, *, formats: Optional[Sequence[str]] = None, tolerance: int = 0,
           isolate: bool = False, bundle=None) -> VerifyReport:
    """Compare the hardware dump in ``hw_dir`` with the golden set in ``golden_dir``."""
    formats = _check_formats(formats)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or tolerance < 0:
        raise VerifyInputError(f"tolerance must be an integer >= 0, got {tolerance!r}")
    golden_dir, hw_dir = os.fspath(golden_dir), os.fspath(hw_dir)
    manifest = read_manifest(golden_dir)
    graph = load_golden_graph(golden_dir, manifest, bundle)
    if not os.path.isdir(hw_dir):
        raise VerifyInputError("is not a directory (expected the hardware's dump files)", path=hw_dir)
    dumps = read_dumps(hw_dir, manifest, formats)
    unclaimed = unclaimed_files(hw_dir, manifest)
    if not dumps:
        example = next(iter(manifest.tensors.values())).stem if manifest.tensors else "tensors/NAME"
        raise VerifyInputError(f"holds no dump of any tensor of the manifest (looked for e.g. {example}.{formats[0]} "
                               f"or {posixpath.basename(example)}.{formats[0]}, formats {', '.join(formats)})"
                               + (f"; files that match no tensor: {', '.join(unclaimed[:5])}" if unclaimed else ""),
                               path=hw_dir)
    golden = GoldenValues(golden_dir, manifest, {name: t.data for name, t in graph.tensors.items()})
    session = _Session(graph, manifest, golden, dumps, int(tolerance), hw_dir)
    nodes = tuple(session.node_result(node, isolate) for node in manifest.nodes)
    return VerifyReport(golden_dir, hw_dir, manifest.graph_name, manifest.graph_sha256, formats, int(tolerance),
                        bool(isolate), nodes, tuple(unclaimed))


def _check_formats(formats) -> tuple:
    if formats is None:
        return DUMP_FORMATS
    formats = tuple(formats.split(",") if isinstance(formats, str) else formats)
    formats = tuple(f.strip() for f in formats if isinstance(f, str) and f.strip())
    if not formats or any(f not in DUMP_FORMATS for f in formats):
        raise VerifyInputError(f"formats {list(formats)}: choose from {', '.join(DUMP_FORMATS)}")
    return formats


def load_golden_graph(golden_dir: str, manifest: Manifest, bundle=None) -> Graph:
    """The bundle the golden set was written from, checked: its graph sha256 equals the manifest's
    and every node and tensor of the manifest is the graph's."""
    if isinstance(bundle, Graph):
        graph, source = bundle, "the graph given as bundle="
    else:
        if bundle is None and manifest.bundle is None:
            raise VerifyInputError("null: the golden set names no bundle; pass one (--bundle PATH)",
                                   path=manifest.path, field="bundle")
        source = os.fspath(bundle) if bundle is not None else os.path.join(golden_dir, manifest.bundle)
        try:
            graph = load(source)
        except IntrefError as exc:
            named = source in str(exc)
            raise VerifyInputError(f"the golden set's bundle cannot be loaded: {exc}",
                                   path="" if named else source) from None
    sha = graph_sha256(graph)
    if sha != manifest.graph_sha256:
        raise VerifyInputError(f"graph sha256 {sha}, but the golden set was written from {manifest.graph_sha256} "
                               f"({MANIFEST} graph.sha256): not the bundle of this golden set", path=source)
    steps = {step.node.name: step.node for step in graph.steps}
    for node in manifest.nodes:
        real = steps.get(node.name)
        if real is None or (real.op, tuple(real.inputs), tuple(o.name for o in real.outputs)) != \
                (node.op, node.inputs, node.outputs):
            raise VerifyInputError(f"node {node.name!r} is not the graph's node of that name", path=manifest.path,
                                   field="nodes")
    for name, entry in manifest.tensors.items():
        if name not in graph.values or graph.values[name].type != entry.type:
            raise VerifyInputError(f"type {entry.type} is not the graph's type of {name!r}", path=manifest.path,
                                   field=f"tensors[{name!r}].type")
    return graph


def dump_candidates(stem: str, fmt: str):
    """Where a tensor's dump may lie, relative to the hardware directory: nested, then flat."""
    nested = f"{stem}.{fmt}"
    flat = f"{posixpath.basename(stem)}.{fmt}"
    return (nested,) if flat == nested else (nested, flat)


@dataclass(frozen=True)
class BadDump:
    """A hardware file that cannot be decoded: where it is and why (the message names the file)."""

    path: str
    message: str


def read_dumps(hw_dir: str, manifest: Manifest, formats) -> dict:
    """``{tensor: Dump or BadDump}`` for every tensor with a dump file, the first format found."""
    dumps = {}
    for name, entry in manifest.tensors.items():
        found = next(((rel, fmt) for fmt in formats for rel in dump_candidates(entry.stem, fmt)
                      if os.path.lexists(os.path.join(hw_dir, *rel.split("/")))), None)
        if found is None:
            continue
        path = os.path.join(hw_dir, *found[0].split("/"))
        try:
            dumps[name] = read_tensor_file(path, found[1], entry.type, entry.shape, entry.layout)
        except DumpError as exc:
            dumps[name] = BadDump(path, str(exc))
    return dumps


def unclaimed_files(hw_dir: str, manifest: Manifest) -> list:
    """Files with a dump extension, where dumps are looked for, that no tensor claims (a typo'd name
    would otherwise pass silently as 'not dumped')."""
    claimed, folders = set(), {""}
    for entry in manifest.tensors.values():
        folders.add(posixpath.dirname(entry.stem))
        claimed.update(rel for fmt in DUMP_FORMATS for rel in dump_candidates(entry.stem, fmt))
    found = []
    for folder in sorted(folders):
        directory = os.path.join(hw_dir, *folder.split("/")) if folder else hw_dir
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            rel = f"{folder}/{name}" if folder else name
            if name.rpartition(".")[2] in DUMP_FORMATS and rel not in claimed:
                found.append(rel)
    return found


class _Session:
    """One verify run: the graph, golden values and dumps, and the per-node comparison."""

    def __init__(self, graph: Graph, manifest: Manifest, golden: GoldenValues, dumps: dict, tolerance: int,
                 hw_dir: str):
        self.graph, self.manifest, self.golden, self.dumps = graph, manifest, golden, dumps
        self.tolerance, self.hw_dir = tolerance, hw_dir
        self.steps = {step.node.name: step for step in graph.steps}
        produced = {name for node in manifest.nodes for name in node.outputs}
        self.unreported_inputs = [name for name in manifest.tensors if name not in produced]

    def node_result(self, node, isolate: bool) -> NodeResult:
        step = self.steps[node.name]
        tensors = []
        for name in node.inputs:
            if name in self.unreported_inputs:      # reported once, under its first consumer
                self.unreported_inputs.remove(name)
                tensors.append(self.tensor_result(name, "input", None, 0))
        for i, name in enumerate(node.outputs):
            if name in self.manifest.tensors:     # a set of constants only holds no outputs
                tensors.append(self.tensor_result(name, "output", step, i))
        isolation = self.isolation(step, tensors) if isolate else None
        if isolation is not None and isolation.status == LOCALLY_CORRECT:   # propagated: a hint against the
            tensors = [replace(t, hint=None) for t in tensors]              # golden would only mislead
        return NodeResult(node.name, node.op, tuple(tensors), isolation)

    def relative(self, path: str) -> str:
        return os.path.relpath(path, self.hw_dir).replace(os.sep, "/")

    def tensor_result(self, name: str, relation: str, step, output: int) -> TensorResult:
        entry = self.manifest.tensors[name]
        dump = self.dumps.get(name)
        base = dict(name=name, relation=relation, type=entry.type, shape=entry.shape)
        if dump is None:
            return TensorResult(**base, status=NOT_DUMPED)
        if isinstance(dump, BadDump):
            return TensorResult(**base, status=BAD_DUMP, file=self.relative(dump.path), error=dump.message)
        expected = self.golden.get(name)
        comparison = compare(expected, dump.values, entry.type, self.tolerance)
        text = None
        if comparison.mismatches:
            inputs = tuple(self.golden.get(n) for n in step.node.inputs) if step is not None else None
            text = hint(HintCase(self.graph, step, output, inputs, expected, dump.values, entry.type, dump,
                                 self.manifest.overflow))
        return TensorResult(**base, status=MISMATCH if comparison.mismatches else MATCH,
                            file=self.relative(dump.path), comparison=comparison, hint=text, note=dump.note)

    def isolation(self, step, tensors) -> Isolation:
        """Re-run the node on the hardware's own inputs and compare with its dumped outputs."""
        outputs = [info.name for info in step.node.outputs]
        dumped = [(outputs.index(t.name), t) for t in tensors if t.relation == "output" and t.status in (MATCH, MISMATCH)]
        if not dumped:
            return Isolation(NOT_ISOLATED, "no output of the node was dumped and decoded")
        inputs, from_hw = [], []
        for name in step.node.inputs:
            dump = self.dumps.get(name)
            if isinstance(dump, Dump):
                problem = self._outside_analysis(name, dump.values)
                if problem:
                    return Isolation(NOT_ISOLATED, problem)
                inputs.append(dump.values)
                from_hw.append(name)
            else:
                inputs.append(self.golden.get(name))
        try:
            rerun = run_node(self.graph, step, inputs, self.manifest.overflow)
        except IntrefError as exc:
            return Isolation(NOT_ISOLATED, f"the re-run on the hardware's inputs failed: {exc}")
        own = f"hardware inputs {', '.join(from_hw)}" if from_hw else "golden inputs (no input dumped)"
        for i, t in dumped:
            got = self.dumps[t.name].values
            comparison = compare(rerun[i], got, t.type, self.tolerance)
            if comparison.mismatches:
                text = hint(HintCase(self.graph, step, i, tuple(inputs), rerun[i], got, t.type, self.dumps[t.name],
                                     self.manifest.overflow))
                return Isolation(LOCALLY_WRONG, f"its output differs from its re-run on the {own}", t.name,
                                 comparison, text)
        if any(t.status == MISMATCH for _, t in dumped):
            return Isolation(LOCALLY_CORRECT, f"its output equals its re-run on the {own}: the mismatch comes "
                                              f"from upstream")
        return Isolation(LOCALLY_CORRECT, f"its output equals its re-run on the {own}")

    def _outside_analysis(self, name: str, values: np.ndarray) -> str:
        """Kernels are exact for the ranges the graph's analysis proved; a hardware value outside
        them cannot be re-run exactly, so the node is not isolated (and the value is named)."""
        info = self.graph.values[name]
        if not values.size:
            return ""
        index = first_outside(values, info.lo, info.hi)
        if index is None:
            return ""
        return (f"hardware input {name!r} holds {int(values[index])} at {format_index(index)}, outside the range "
                f"[{info.lo}, {info.hi}] the graph's analysis allows: the node cannot be re-run exactly")
