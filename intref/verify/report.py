"""The verdict of ``intref verify``: per node, per tensor, as data, as text and as JUnit XML.

Exit codes: 0 every tensor compared matches; 1 at least one mismatch; 2 bad input (a hardware
dump that cannot be decoded; it is never counted as a match). A node's status is the worst of
its tensors': bad dump > mismatch > match > not dumped.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Tuple

from ..errors import IntrefError
from ..inttypes import IntType
from .compare import Comparison, Divergence

MATCH, MISMATCH, NOT_DUMPED, BAD_DUMP = "match", "mismatch", "not dumped", "bad dump"
NOT_SELECTED = "not selected"       # left out by the user's --only
LOCALLY_CORRECT, LOCALLY_WRONG, NOT_ISOLATED = "locally correct", "locally wrong", "not isolated"
FEEDS = "feeds"                     # the pseudo-node of the hardware's captured inputs, reported first
_RANK = {NOT_SELECTED: -1, NOT_DUMPED: 0, MATCH: 1, MISMATCH: 2, BAD_DUMP: 3}
NOT_A_DUMP = "not a dump file"      # an unclaimed file that is only listed; any other keeps a run from matching
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class TensorResult:
    """One tensor of a node: an ``output``, an ``input`` that no node of the set produces (a graph
    input or constant), or a ``feed`` (the hardware's ``feeds/``). ``files``: every file of it
    that was compared, relative to the hardware directory; ``file`` the one reported (the first
    that is bad or differs, else the first)."""

    name: str
    relation: str
    type: IntType
    shape: Tuple[int, ...]
    status: str
    file: Optional[str] = None
    comparison: Optional[Comparison] = None
    hint: Optional[str] = None
    error: Optional[str] = None
    note: str = ""
    files: Tuple[str, ...] = ()

    @property
    def mismatches(self) -> int:
        return self.comparison.mismatches if self.comparison else 0

    @property
    def fraction(self) -> Fraction:
        return self.comparison.fraction if self.comparison else Fraction(0)

    @property
    def max_abs_difference(self) -> int:
        return self.comparison.max_abs_difference if self.comparison else 0

    @property
    def first(self) -> Optional[Divergence]:
        return self.comparison.first if self.comparison else None


@dataclass(frozen=True)
class Isolation:
    """``--isolate``: the node re-run on the hardware's own inputs, compared with its dumped output."""

    status: str
    detail: str
    tensor: Optional[str] = None
    comparison: Optional[Comparison] = None
    hint: Optional[str] = None


@dataclass(frozen=True)
class NodeResult:
    name: str
    op: str
    tensors: Tuple[TensorResult, ...]
    isolation: Optional[Isolation] = None

    @property
    def status(self) -> str:
        return max((t.status for t in self.tensors), key=_RANK.__getitem__, default=NOT_DUMPED)

    @property
    def failed(self) -> bool:
        return self.status in (MISMATCH, BAD_DUMP) or (self.isolation is not None
                                                       and self.isolation.status == LOCALLY_WRONG)


@dataclass(frozen=True)
class VerifyReport:
    """The whole verdict. ``unclaimed_files``: ``(path, reason)`` of each file of the dump that names
    no tensor; ``skipped_files``: files of a tensor or format the user left out; ``required``: the
    tensors that had to be dumped (every one the set holds files for, or the ``only`` subset)."""

    golden_dir: str
    hw_dir: str
    graph_name: str
    graph_sha256: str
    formats: Tuple[str, ...]
    tolerance: int
    isolate: bool
    nodes: Tuple[NodeResult, ...]
    unclaimed_files: Tuple[Tuple[str, str], ...] = ()
    feeds: Optional[NodeResult] = None
    only: Tuple[str, ...] = ()
    rederived: bool = False
    skipped_files: Tuple[Tuple[str, str], ...] = ()
    required: Tuple[str, ...] = ()

    @property
    def tensors(self) -> Tuple[TensorResult, ...]:
        return tuple(t for node in self.nodes for t in node.tensors)

    @property
    def counts(self) -> dict:
        """Tensors per status (``match``, ``mismatch``, ``bad dump``, ``not dumped``) and ``compared``;
        the feeds are not counted here (``feeds`` has them)."""
        counts = {status: 0 for status in (MATCH, MISMATCH, BAD_DUMP, NOT_DUMPED, NOT_SELECTED)}
        for t in self.tensors:
            counts[t.status] += 1
        counts["compared"] = counts[MATCH] + counts[MISMATCH]
        return counts

    @property
    def missing(self) -> Tuple[str, ...]:
        """Required tensors with no file in the dump."""
        dumped = {t.name for t in self.tensors if t.status != NOT_DUMPED}
        return tuple(name for name in self.required if name not in dumped)

    @property
    def not_verified(self) -> Tuple[str, ...]:
        """Why a run in which nothing differs is still not a match ('' reasons: none)."""
        reasons = []
        if not self.counts["compared"]:
            reasons.append("no tensor was compared")
        if self.missing:
            shown = ", ".join(self.missing[:5]) + (", ..." if len(self.missing) > 5 else "")
            reasons.append(f"{len(self.missing)} of the {len(self.required)} tensors the golden set holds were not "
                           f"dumped ({shown}); name a subset with --only to verify only it")
        stray = [rel for rel, reason in self.unclaimed_files if reason != NOT_A_DUMP]
        if stray:
            reasons.append(f"{len(stray)} dump file(s) name no tensor of the golden set ({', '.join(stray[:5])})")
        return tuple(reasons)

    @property
    def first_divergent_node(self) -> Optional[str]:
        """The first node, in topological order, with a tensor that differs beyond the tolerance
        (``feeds`` when the hardware's captured inputs differ)."""
        nodes = ((self.feeds,) if self.feeds is not None else ()) + self.nodes
        return next((n.name for n in nodes if any(t.status == MISMATCH for t in n.tensors)), None)

    @property
    def locally_wrong(self) -> Tuple[str, ...]:
        """With ``isolate``: the nodes whose output differs from their re-run on the hardware's inputs."""
        return tuple(n.name for n in self.nodes if n.isolation is not None and n.isolation.status == LOCALLY_WRONG)

    @property
    def exit_code(self) -> int:
        """2 a bad dump; else 1 a mismatch (or a locally wrong node); else 2 when not verified
        (``not_verified``); else 0."""
        statuses = {t.status for t in self.tensors} | ({t.status for t in self.feeds.tensors} if self.feeds else set())
        if BAD_DUMP in statuses:
            return 2
        if MISMATCH in statuses or self.locally_wrong:
            return 1
        return 2 if self.not_verified else 0

    @property
    def verdict(self) -> str:
        if self.exit_code == 2 and self.not_verified and not self._bad_dump:
            return "NOT VERIFIED"
        return {0: "MATCH", 1: "MISMATCH", 2: "BAD INPUT"}[self.exit_code]

    @property
    def _bad_dump(self) -> bool:
        nodes = ((self.feeds,) if self.feeds is not None else ()) + self.nodes
        return any(t.status == BAD_DUMP for n in nodes for t in n.tensors)

    def header_lines(self) -> list:
        how = "bit exact" if not self.tolerance else f"within ±{self.tolerance}"
        golden = "golden values re-derived from the bundle and feeds" if self.rederived else \
            "golden values trusted by their manifest sha256 (not re-derived)"
        lines = [f"intref verify: golden {self.golden_dir} (graph {self.graph_name!r}, sha256 "
                 f"{self.graph_sha256[:12]}) vs hardware {self.hw_dir}",
                 f"  {how}; formats {', '.join(self.formats)}{'; isolation on' if self.isolate else ''}; {golden}"]
        if self.only:
            lines.append(f"  only tensors matching {', '.join(self.only)} ({len(self.required)} with golden files)")
        lines.append("")
        if self.feeds is not None:
            if not self.feeds.tensors:
                lines.append(f"  {'-':<10} {'feeds':<26} {'inputs':<12} none: the golden set was written without a run")
            elif all(t.status == NOT_DUMPED for t in self.feeds.tensors):
                lines.append(f"  {'-':<10} {'feeds':<26} {'inputs':<12} not checked: the dump has no feeds/ "
                             f"(the inputs the hardware ran on)")
            else:
                lines.extend(_node_lines(self.feeds))
        return lines

    def summary_lines(self) -> list:
        lines = [""]
        first = self.first_divergent_node
        if first is not None:
            op = next((n.op for n in self.nodes if n.name == first), "inputs")
            lines.append(f"first divergent node: {first} ({op})")
        if self.isolate:
            lines.append(f"locally wrong nodes: {', '.join(self.locally_wrong) or 'none'}")
        c = self.counts
        lines.append(f"tensors: {c['compared']} compared ({c[MATCH]} match, {c[MISMATCH]} mismatch), "
                     f"{c[BAD_DUMP]} bad dump(s), {c[NOT_DUMPED]} not dumped"
                     + (f", {c[NOT_SELECTED]} not selected" if c[NOT_SELECTED] else ""))
        cases = self.junit_counts()
        lines.append(f"testcases: {cases['tests']} ({cases['failures']} failure(s), {cases['errors']} error(s), "
                     f"{cases['skipped']} skipped), as in the JUnit report")
        if self.unclaimed_files:
            lines.append(f"files naming no tensor of the manifest: {len(self.unclaimed_files)}")
            lines.extend(f"  {rel}: {reason}" for rel, reason in self.unclaimed_files[:20])
            if len(self.unclaimed_files) > 20:
                lines.append(f"  ... {len(self.unclaimed_files) - 20} more")
        if self.skipped_files:
            lines.append(f"files not compared, as asked: {len(self.skipped_files)} "
                         f"({', '.join(f'{rel} ({why})' for rel, why in self.skipped_files[:3])}"
                         f"{', ...' if len(self.skipped_files) > 3 else ''})")
        lines.extend(f"not verified: {reason}" for reason in self.not_verified)
        lines.append(f"result: {self.verdict} (exit {self.exit_code})")
        return lines

    def to_text(self) -> str:
        """The human report: header, the feeds, one block per node in topological order, summary,
        verdict. ``verify(stream=...)`` writes the same text as it goes."""
        import io
        out = io.StringIO()
        writer = TextWriter(out, self)
        for node in self.nodes:
            writer.node(node)
        writer.finish(self)
        return out.getvalue()

    def junit_cases(self) -> list:
        """``(name, kind, message, details)`` per JUnit testcase: the feeds, each node, and the
        completeness of the dump; kind is ``failure``, ``error``, ``skipped`` or None (passed)."""
        cases = []
        for node in ((self.feeds,) if self.feeds is not None else ()) + self.nodes:
            details = "\n".join(line.strip() for line in _node_lines(node))
            if node.status == BAD_DUMP:
                bad = next(t for t in node.tensors if t.status == BAD_DUMP)
                cases.append((node.name, "error", bad.error or "", details))
            elif node.failed:
                cases.append((node.name, "failure", _failure_message(node), details))
            elif node.status in (NOT_DUMPED, NOT_SELECTED):
                cases.append((node.name, "skipped", node.status, ""))
            else:
                cases.append((node.name, None, "", ""))
        reasons = self.not_verified
        cases.append(("dump completeness", "error" if reasons else None, "; ".join(reasons), "\n".join(reasons)))
        return cases

    def junit_counts(self) -> dict:
        cases = self.junit_cases()
        return {"tests": len(cases), **{kind + "s" if kind != "skipped" else kind:
                                        sum(1 for c in cases if c[1] == kind)
                                        for kind in ("failure", "error", "skipped")}}

    def junit_xml(self) -> str:
        """JUnit XML: one ``testcase`` per node (and one for the feeds, one for the dump's
        completeness); ``failure`` for a mismatch or a locally wrong node, ``error`` for a bad
        dump or an incomplete dump, ``skipped`` for a node with nothing dumped."""
        cases, counts = self.junit_cases(), self.junit_counts()
        suite = ET.Element("testsuite", name=_clean(f"intref verify {self.graph_name}"),
                           **{key: str(value) for key, value in counts.items()})
        properties = ET.SubElement(suite, "properties")
        for key, value in (("golden_dir", self.golden_dir), ("hw_dir", self.hw_dir),
                           ("graph_sha256", self.graph_sha256), ("tolerance", str(self.tolerance)),
                           ("verdict", self.verdict)):
            ET.SubElement(properties, "property", name=key, value=_clean(value))
        for name, kind, message, details in cases:
            case = ET.SubElement(suite, "testcase", name=_clean(name),
                                 classname=_clean(f"intref.verify.{self.graph_name}"))
            if kind == "skipped":
                ET.SubElement(case, "skipped", message=_clean(message))
            elif kind is not None:
                ET.SubElement(case, kind, message=_clean(message),
                              type="bad dump" if kind == "error" and name != "dump completeness" else
                              "not verified" if kind == "error" else "mismatch").text = _clean(details)
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        return ET.tostring(root, encoding="unicode") + "\n"

    def to_junit(self, path) -> None:
        """Write ``junit_xml()`` to ``path`` (UTF-8, with an XML declaration)."""
        try:
            with open(os.fspath(path), "w", encoding="utf-8") as stream:
                stream.write('<?xml version="1.0" encoding="UTF-8"?>\n' + self.junit_xml())
        except OSError as exc:
            raise IntrefError(f"{os.fspath(path)}: cannot write the JUnit report: {exc.strerror or exc}") from None


class TextWriter:
    """Writes the text report to ``stream`` as it is made: the header at once, each node's block
    as the node is done (a run of nodes with nothing dumped becomes one line when it ends), the
    summary at the end. ``stream=None`` writes nothing."""

    def __init__(self, stream, report: VerifyReport):
        self.stream, self.skipped = stream, []
        self._write(report.header_lines())

    def _write(self, lines) -> None:
        if self.stream is not None and lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def _flush_skipped(self) -> list:
        if not self.skipped:
            return []
        names = self.skipped
        shown = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]} ({len(names)} nodes)"
        self.skipped = []
        return [f"  {'-':<10} not dumped: {shown}"]

    def node(self, node: NodeResult) -> None:
        if node.status in (NOT_DUMPED, NOT_SELECTED) and not node.failed:
            self.skipped.append(node.name)
            return
        self._write(self._flush_skipped() + _node_lines(node))

    def finish(self, report: VerifyReport) -> None:
        self._write(self._flush_skipped() + report.summary_lines())


def _clean(text: str) -> str:
    """Text XML 1.0 can hold (control characters replaced by '?')."""
    return _XML_ILLEGAL.sub("?", text)


def _failure_message(node: NodeResult) -> str:
    for t in node.tensors:
        if t.status == MISMATCH and t.first is not None:
            return f"{t.name}: first divergence {t.first.describe()}" + (f"; hint: {t.hint}" if t.hint else "")
    iso = node.isolation
    if iso is not None and iso.comparison is not None and iso.comparison.first is not None:
        return f"{iso.tensor}: {iso.status}: {iso.comparison.first.describe()}"
    return node.status


def _node_lines(node: NodeResult) -> list:
    head = f"  {node.status.upper() if node.status in (MISMATCH, BAD_DUMP) else node.status:<10} " \
           f"{node.name:<26} {node.op:<12}"
    if node.status == NOT_DUMPED:
        return [f"{head} nothing dumped"]
    pad = " " * 6
    shown = [t for t in node.tensors if t.status not in (NOT_DUMPED, NOT_SELECTED)]
    if node.status == MATCH and all(t.comparison is not None and not t.comparison.differing and not t.note
                                    for t in shown):
        return [f"{head} {', '.join(f'{t.name} <- ' + ', '.join(t.files or (t.file,)) for t in shown)}"] + \
            _isolation_lines(node.isolation, node.status, pad)
    lines = []
    for i, t in enumerate(node.tensors):
        if t.status in (NOT_DUMPED, NOT_SELECTED):
            continue
        what = f"{t.relation} {t.name} {t.type} {list(t.shape)}" + (f" <- {', '.join(t.files or (t.file,))}"
                                                                   if t.file else "")
        lines.append(f"{head if not lines else ' ' * len(head)} {what}: {t.status}")
        if t.note:
            lines.append(f"{pad}note: {t.note}")
        if t.status == BAD_DUMP:
            lines.append(f"{pad}error: {t.error}")
        elif t.comparison is not None and t.comparison.differing:
            c = t.comparison
            within = c.differing - c.mismatches
            if c.mismatches:
                lines.append(f"{pad}{c.summary()}" + (f" ({within} more within the tolerance)" if within else ""))
            else:
                lines.append(f"{pad}{within} element(s) differ, all within the tolerance "
                             f"(max |difference| {c.max_abs_difference})")
            if t.first is not None:
                lines.append(f"{pad}first divergence {t.first.describe()}")
            if t.hint:
                lines.append(f"{pad}hint: {t.hint}")
    lines.extend(_isolation_lines(node.isolation, node.status, pad, {t.hint for t in node.tensors}))
    return lines


def _isolation_lines(iso: Optional[Isolation], status: str, pad: str, hints=()) -> list:
    """Shown for a locally wrong node, for a mismatching node (where the mismatch comes from), and
    where a node with a problem could not be isolated; not for plain matches."""
    if iso is None or (status == MATCH and iso.status != LOCALLY_WRONG):
        return []
    lines = [f"{pad}isolation: {iso.status}: {iso.detail}"]
    if iso.comparison is not None and iso.comparison.first is not None:
        lines.append(f"{pad}  {iso.tensor}: {iso.comparison.summary()}; first divergence "
                     f"{iso.comparison.first.describe()}")
    if iso.hint and iso.hint not in hints:
        lines.append(f"{pad}  hint: {iso.hint}")
    return lines
