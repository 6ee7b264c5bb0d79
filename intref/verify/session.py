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

import fnmatch
import os
import posixpath
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np

from .._checks import first_outside
from ..bundle.load import graph_sha256, load
from ..errors import IntrefError, format_index
from ..golden.write import tensor_layout
from ..graph import Graph
from ..interpreter import run
from .compare import compare
from ..interpreter import run_node
from .hints import HintCase, hint
from .inputs import (DUMP_FORMATS, MANIFEST, Dump, DumpError, GoldenValues, Manifest, VerifyInputError,
                     canonical_sha256, read_golden_feed, read_manifest, read_tensor_file)
from .report import (BAD_DUMP, FEEDS, NOT_A_DUMP, LOCALLY_CORRECT, LOCALLY_WRONG, MATCH, MISMATCH, NOT_DUMPED, NOT_ISOLATED,
                     NOT_SELECTED, Isolation, NodeResult, TensorResult, TextWriter, VerifyReport)

__all__ = ["VerifyInputError", "VerifyReport", "verify"]


def verify(golden_dir, hw_dir, *, formats: Optional[Sequence[str]] = None, tolerance: int = 0,
           isolate: bool = False, bundle=None, only: Optional[Sequence[str]] = None, rederive: bool = True,
           stream=None, progress=None) -> VerifyReport:
    """Compare the hardware dump in ``hw_dir`` with the golden set in ``golden_dir``.

    ``only``: glob patterns over tensor names, the subset the user asks for (else every tensor the
    set holds files for must be dumped); ``rederive``: re-run the bundle on the set's feeds and
    require every golden value to be what it derives (else golden values are trusted by their
    manifest sha256 alone); ``stream``: a text stream the report is written to as it is made,
    node by node; ``progress``: an ``intref.progress.Progress`` (nodes, bytes, rate) updated as nodes are done."""
    formats = _check_formats(formats)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or tolerance < 0:
        raise VerifyInputError(f"tolerance must be an integer >= 0, got {tolerance!r}")
    golden_dir, hw_dir = os.fspath(golden_dir), os.fspath(hw_dir)
    manifest = read_manifest(golden_dir)
    selected = select_tensors(manifest, only)
    graph = load_golden_graph(golden_dir, manifest, bundle)
    if not os.path.isdir(hw_dir):
        raise VerifyInputError("is not a directory (expected the hardware's dump files)", path=hw_dir)
    _refuse_inside(hw_dir, golden_dir)
    found = find_dumps(hw_dir, manifest, formats, selected)
    if not any(found.tensors.values()) and not any(found.feeds.values()):
        example = next(iter(manifest.tensors.values())).stem if manifest.tensors else "tensors/NAME"
        stray = [rel for rel, _ in found.unclaimed]
        raise VerifyInputError(f"holds no dump of any tensor of the manifest (looked for e.g. {example}.{formats[0]} "
                               f"or {posixpath.basename(example)}.{formats[0]}, formats {', '.join(formats)})"
                               + (f"; files that match no tensor: {', '.join(stray[:5])}" if stray else ""),
                               path=hw_dir)
    golden_feeds = {name: read_golden_feed(golden_dir, manifest, name, graph.values[name].type)
                    for name in manifest.feeds if name in graph.values}
    if rederive:
        rederive_golden(graph, manifest, golden_feeds)
    golden = GoldenValues(golden_dir, manifest, {name: t.data for name, t in graph.tensors.items()})
    session = _Session(graph, manifest, golden, found, int(tolerance), hw_dir)
    report = VerifyReport(golden_dir, hw_dir, manifest.graph_name, manifest.graph_sha256, formats, int(tolerance),
                          bool(isolate), (), tuple(found.unclaimed), feeds=session.feeds_result(golden_feeds),
                          only=tuple([only] if isinstance(only, str) else only or ()), rederived=bool(rederive),
                          skipped_files=tuple(found.skipped),
                          required=tuple(name for name in manifest.tensors
                                         if name in selected and manifest.tensors[name].files))
    writer = TextWriter(stream, report)
    nodes = []
    golden.prefetch(session.comparison_order())
    try:
        for done, node in enumerate(manifest.nodes, 1):
            before = session.bytes_read
            nodes.append(session.node_result(node, isolate))
            writer.node(nodes[-1])
            if progress is not None:
                progress("compare", done, len(manifest.nodes), node.name, nbytes=session.bytes_read - before)
    finally:
        golden.close()
    if progress is not None:
        progress.close()
    report = replace(report, nodes=tuple(nodes))
    writer.finish(report)
    return report


def select_tensors(manifest: Manifest, only) -> frozenset:
    """The tensors to compare: every one, or those matching a glob of ``only`` (each must match)."""
    if not only:
        return frozenset(manifest.tensors)
    chosen = set()
    for pattern in ([only] if isinstance(only, str) else list(only)):
        hits = [name for name in manifest.tensors if fnmatch.fnmatchcase(name, pattern)]
        if not hits:
            raise VerifyInputError(f"--only {pattern!r} selects no tensor of the golden set "
                                   f"(tensors: {', '.join(list(manifest.tensors)[:6])}, ...)")
        chosen.update(hits)
    return frozenset(chosen)


def _refuse_inside(hw_dir: str, golden_dir: str) -> None:
    """A dump read from the golden set itself (or a folder of it) would compare the golden with
    itself: refused."""
    hw, gold = os.path.realpath(hw_dir), os.path.realpath(golden_dir)
    if hw == gold or hw.startswith(gold.rstrip(os.sep) + os.sep):
        raise VerifyInputError(f"is the golden set {golden_dir} or a folder inside it: a dump must be the "
                               f"hardware's own files, in a directory of their own", path=hw_dir)


def rederive_golden(graph: Graph, manifest: Manifest, feeds: dict) -> None:
    """Re-run the bundle on the set's feeds (or, for a set of constants only, take the bundle's
    stored tensors) and require every tensor of the manifest to have the shape and sha256 of what
    that derives: a golden tensor edited together with its manifest entry is refused."""
    values = {name: t.data for name, t in graph.tensors.items()}
    if manifest.constants != "only":
        missing = [info.name for info in graph.inputs if info.name not in feeds]
        if missing:
            raise VerifyInputError(f"no feed for graph input {missing[0]!r}: the golden values cannot be re-derived",
                                   path=manifest.path, field="feeds")
        try:
            values.update(run(graph, feeds, overflow=manifest.overflow, trace=True))
        except IntrefError as exc:
            raise VerifyInputError(f"re-running the bundle on the golden set's feeds fails: {exc}",
                                   path=manifest.path) from None
    for name, entry in manifest.tensors.items():
        field = f"tensors[{name!r}]"
        if name not in values:
            raise VerifyInputError("is not derived by running the bundle on the feeds", path=manifest.path,
                                   field=field)
        value = np.asarray(values[name])
        if value.shape != entry.shape:
            raise VerifyInputError(f"shape {list(entry.shape)}, but the bundle derives {list(value.shape)}",
                                   path=manifest.path, field=f"{field}.shape")
        digest = canonical_sha256(value, entry.type)
        if digest != entry.sha256:
            raise VerifyInputError(f"sha256 {entry.sha256}, but the bundle run on the golden feeds derives "
                                   f"{digest}: the golden set was modified", path=manifest.path,
                                   field=f"{field}.sha256")


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
    symbols = {}
    for name, entry in manifest.tensors.items():
        if name not in graph.values or graph.values[name].type != entry.type:
            raise VerifyInputError(f"type {entry.type} is not the graph's type of {name!r}", path=manifest.path,
                                   field=f"tensors[{name!r}].type")
        problem = _shape_problem(entry.shape, graph.values[name].shape, symbols)
        if problem:
            raise VerifyInputError(f"shape {list(entry.shape)} disagrees with the graph's {problem}",
                                   path=manifest.path, field=f"tensors[{name!r}].shape")
    return graph


def _shape_problem(shape, declared, symbols: dict) -> str:
    """'' when ``shape`` fits the graph's ``declared`` shape (None: not declared): same rank, equal
    fixed dimensions, and each symbolic one (``seq``) the same size in every tensor (``symbols``)."""
    if declared is None:
        return ""
    if len(shape) != len(declared):
        return f"shape {list(declared)} (rank {len(declared)})"
    for size, dim in zip(shape, declared):
        if isinstance(dim, str):
            if symbols.setdefault(dim, size) != size:
                return f"shape {list(declared)}: {dim} is {symbols[dim]} elsewhere in the set"
        elif size != dim:
            return f"shape {list(declared)}"
    return ""


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


@dataclass
class FoundFiles:
    """Every file of the hardware directory, accounted for: ``tensors`` / ``feeds`` map a name to
    the ``(relative path, format)`` of each of its files to compare (in format order); ``skipped``
    holds files of a tensor or format the user left out, ``unclaimed`` every other file, each with
    the reason (a near miss says what it nearly matched)."""

    tensors: dict
    feeds: dict
    skipped: list
    unclaimed: list


def claims(manifest: Manifest) -> dict:
    """``{relative path: (kind, name, format)}``: every path a dump of a tensor or feed may have."""
    table = {}
    for name in manifest.feeds:
        for fmt in DUMP_FORMATS:
            table[f"feeds/{name}.{fmt}"] = ("feed", name, fmt)
    for name, entry in manifest.tensors.items():
        for fmt in DUMP_FORMATS:
            for rel in dump_candidates(entry.stem, fmt):
                table.setdefault(rel, ("tensor", name, fmt))
    return table


def find_dumps(hw_dir: str, manifest: Manifest, formats, selected) -> FoundFiles:
    """Walk the whole hardware directory and sort every file into ``FoundFiles``."""
    table = claims(manifest)
    lower = {rel.lower(): rel for rel in table}
    by_base = {}
    for rel in table:
        by_base.setdefault(posixpath.basename(rel).lower(), rel)
    found = FoundFiles({name: [] for name in manifest.tensors if name in selected},
                       {name: [] for name in manifest.feeds}, [], [])
    for rel in _walk(hw_dir, table):
        claim = table.get(rel)
        if claim is None:
            found.unclaimed.append((rel, _near_miss(rel, lower, by_base)))
            continue
        kind, name, fmt = claim
        if fmt not in formats:
            found.skipped.append((rel, f"format {fmt} not selected"))
        elif kind == "tensor" and name not in selected:
            found.skipped.append((rel, "tensor not selected by --only"))
        else:
            (found.tensors if kind == "tensor" else found.feeds)[name].append((rel, fmt))
    for files in list(found.tensors.values()) + list(found.feeds.values()):
        files.sort(key=lambda item: formats.index(item[1]))
    return found


def _walk(hw_dir: str, table):
    """Every entry below ``hw_dir`` that is not a directory, as a '/'-separated relative path,
    sorted; symbolic links to directories, and directories named as a dump (``table``), are
    listed, not entered (reading them then says what they are)."""
    for root, dirs, files in os.walk(hw_dir):
        base = os.path.relpath(root, hw_dir).replace(os.sep, "/")
        rel = (lambda name: name if base == "." else f"{base}/{name}")
        leaves = [d for d in dirs if os.path.islink(os.path.join(root, d)) or rel(d) in table]
        dirs[:] = sorted(d for d in dirs if d not in leaves)
        for name in sorted(files + leaves):
            yield rel(name)


def _near_miss(rel: str, lower: dict, by_base: dict) -> str:
    if rel.lower() in lower:
        return f"wrong case: the manifest's file is {lower[rel.lower()]}"
    other = by_base.get(posixpath.basename(rel).lower())
    if other is not None:
        return f"in the wrong folder: a dump of that name is read from {other}"
    if rel.rpartition(".")[2].lower() in DUMP_FORMATS:
        return "matches no tensor of the manifest"
    return NOT_A_DUMP


class _Session:
    """One verify run: the graph, golden values and dumps, and the per-node comparison."""

    def __init__(self, graph: Graph, manifest: Manifest, golden: GoldenValues, found: FoundFiles, tolerance: int,
                 hw_dir: str):
        self.graph, self.manifest, self.golden, self.found = graph, manifest, golden, found
        self.tolerance, self.hw_dir = tolerance, hw_dir
        self.steps = {step.node.name: step for step in graph.steps}
        produced = {name for node in manifest.nodes for name in node.outputs}
        self.unreported_inputs = [name for name in manifest.tensors if name not in produced]
        self.dumps, self.bytes_read = {}, 0

    def read(self, name: str, files, t, shape, layout) -> list:
        """Each file of one tensor, decoded (``Dump``) or not (``BadDump``), in format order."""
        if name not in self.dumps:
            decoded = []
            for rel, fmt in files:
                path = os.path.join(self.hw_dir, *rel.split("/"))
                try:
                    decoded.append(read_tensor_file(path, fmt, t, shape, layout))
                    self.bytes_read += os.path.getsize(path)
                except (DumpError, OSError) as exc:
                    decoded.append(BadDump(path, str(exc)))
            self.dumps[name] = decoded
        return self.dumps[name]

    def hw_value(self, name: str) -> Optional[Dump]:
        """The hardware's value of a tensor for isolation: its first decoded file, when every file
        of it decodes."""
        dumps = self.dumps.get(name) or ()
        return dumps[0] if dumps and all(isinstance(d, Dump) for d in dumps) else None

    def feeds_result(self, golden_feeds: dict) -> NodeResult:
        """The hardware's ``feeds/``, compared with the inputs the golden set was run on."""
        results = []
        for name, expected in golden_feeds.items():
            t = self.graph.values[name].type
            entry = self.manifest.tensors.get(name)
            layout = entry.layout if entry is not None else tensor_layout(self.manifest.layout, t, expected.shape)
            dumps = self.read("feeds/" + name, self.found.feeds.get(name, []), t, expected.shape, layout)
            results.append(self.compared(name, "feed", t, expected.shape, dumps, lambda: expected, None, 0))
        return NodeResult(FEEDS, "inputs", tuple(results))

    def comparison_order(self) -> list:
        """The tensors ``node_result`` will compare with a golden value, in the order it will (where
        the hardware dumped them)."""
        unreported = list(self.unreported_inputs)
        return [name for node in self.manifest.nodes for name, _, _ in self.node_tensors(node, unreported)
                if self.found.tensors.get(name)]

    def node_tensors(self, node, unreported: list):
        """``(name, relation, output index)`` of each tensor reported under ``node``: the inputs still
        in ``unreported`` (reported once, under their first consumer: removed from it here), then
        its outputs the set holds (a set of constants only holds none)."""
        for name in node.inputs:
            if name in unreported:
                unreported.remove(name)
                yield name, "input", 0
        for i, name in enumerate(node.outputs):
            if name in self.manifest.tensors:
                yield name, "output", i

    def node_result(self, node, isolate: bool) -> NodeResult:
        step = self.steps[node.name]
        tensors = [self.tensor_result(name, relation, step if relation == "output" else None, i)
                   for name, relation, i in self.node_tensors(node, self.unreported_inputs)]
        isolation = self.isolation(step, tensors) if isolate else None
        if isolation is not None and isolation.status == LOCALLY_CORRECT:   # propagated: a hint against the
            tensors = [replace(t, hint=None) for t in tensors]              # golden would only mislead
        return NodeResult(node.name, node.op, tuple(tensors), isolation)

    def relative(self, path: str) -> str:
        return os.path.relpath(path, self.hw_dir).replace(os.sep, "/")

    def tensor_result(self, name: str, relation: str, step, output: int) -> TensorResult:
        entry = self.manifest.tensors[name]
        if name not in self.found.tensors:
            return TensorResult(name=name, relation=relation, type=entry.type, shape=entry.shape, status=NOT_SELECTED)
        dumps = self.read(name, self.found.tensors[name], entry.type, entry.shape, entry.layout)
        return self.compared(name, relation, entry.type, entry.shape, dumps, lambda: self.golden.get(name), step,
                             output)

    def compared(self, name, relation, t, shape, dumps, expected_of, step, output) -> TensorResult:
        """Every file of one tensor against its golden value: a bad file makes it a bad dump; else
        the first file that differs (beyond the tolerance) is reported, and files that disagree
        with each other are said to."""
        base = dict(name=name, relation=relation, type=t, shape=shape)
        if not dumps:
            return TensorResult(**base, status=NOT_DUMPED)
        files = tuple(self.relative(d.path) for d in dumps)
        bad = next((d for d in dumps if isinstance(d, BadDump)), None)
        if bad is not None:
            return TensorResult(**base, status=BAD_DUMP, file=self.relative(bad.path), error=bad.message, files=files)
        expected = expected_of()
        comparisons = [compare(expected, d.values, t, self.tolerance) for d in dumps]
        worst = next((i for i, c in enumerate(comparisons) if c.mismatches), 0)
        dump, comparison = dumps[worst], comparisons[worst]
        note = "; ".join(n for n in [dump.note, _disagreement(dumps, comparisons, self.relative)] if n)
        text = None
        if comparison.mismatches and relation != "feed":
            inputs = tuple(self.golden.get(n) for n in step.node.inputs) if step is not None else None
            text = hint(HintCase(self.graph, step, output, inputs, expected, dump.values, t, dump,
                                 self.manifest.overflow))
        return TensorResult(**base, status=MISMATCH if comparison.mismatches else MATCH,
                            file=self.relative(dump.path), comparison=comparison, hint=text, note=note, files=files)

    def isolation(self, step, tensors) -> Isolation:
        """Re-run the node on the hardware's own inputs and compare with its dumped outputs."""
        outputs = [info.name for info in step.node.outputs]
        dumped = [(outputs.index(t.name), t) for t in tensors if t.relation == "output" and t.status in (MATCH, MISMATCH)]
        if not dumped:
            return Isolation(NOT_ISOLATED, "no output of the node was dumped and decoded")
        inputs, from_hw, wrong_inputs = [], [], []
        for name in step.node.inputs:
            dump = self.hw_value(name)
            if dump is not None:
                problem = self._outside_analysis(name, dump.values)
                if problem:
                    return Isolation(NOT_ISOLATED, problem)
                inputs.append(dump.values)
                from_hw.append(name)
                if not np.array_equal(dump.values, self.golden.get(name)):
                    wrong_inputs.append(name)
            else:
                inputs.append(self.golden.get(name))
        try:
            rerun = run_node(self.graph, step, inputs, self.manifest.overflow)
        except IntrefError as exc:
            return Isolation(NOT_ISOLATED, f"the re-run on the hardware's inputs failed: {exc}")
        own = f"hardware inputs {', '.join(from_hw)}" if from_hw else "golden inputs (no input dumped)"
        for i, t in dumped:
            got = self.hw_value(t.name).values
            comparison = compare(rerun[i], got, t.type, self.tolerance)
            if comparison.mismatches:
                text = hint(HintCase(self.graph, step, i, tuple(inputs), rerun[i], got, t.type, self.hw_value(t.name),
                                     self.manifest.overflow))
                detail = f"its output differs from its re-run on the {own}"
                if t.status == MATCH and wrong_inputs:
                    detail = (f"its output matches the golden, but differs from its re-run on the {own}; the "
                              f"dumped input(s) {', '.join(wrong_inputs)} differ from the golden, so the upstream "
                              f"dump is likely bad (not what this node read), or the node is wrong in a way that "
                              f"cancels an upstream error")
                return Isolation(LOCALLY_WRONG, detail, t.name, comparison, text)
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


def _disagreement(dumps, comparisons, relative) -> str:
    """Says which files of one tensor disagree with each other ('' when all agree)."""
    if len(dumps) < 2 or all(np.array_equal(dumps[0].values, d.values) for d in dumps[1:]):
        return ""
    said = [f"{relative(d.path)} {'differs' if c.mismatches or c.differing else 'matches'}"
            for d, c in zip(dumps, comparisons)]
    return "the files of this tensor disagree with each other: " + ", ".join(said)
