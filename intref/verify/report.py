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
LOCALLY_CORRECT, LOCALLY_WRONG, NOT_ISOLATED = "locally correct", "locally wrong", "not isolated"
_RANK = {NOT_DUMPED: 0, MATCH: 1, MISMATCH: 2, BAD_DUMP: 3}
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class TensorResult:
    """One tensor of a node: an ``output``, or an ``input`` that no node of the set produces
    (a graph input or constant). ``file`` is relative to the hardware directory."""

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
    golden_dir: str
    hw_dir: str
    graph_name: str
    graph_sha256: str
    formats: Tuple[str, ...]
    tolerance: int
    isolate: bool
    nodes: Tuple[NodeResult, ...]
    unclaimed_files: Tuple[str, ...] = ()

    @property
    def tensors(self) -> Tuple[TensorResult, ...]:
        return tuple(t for node in self.nodes for t in node.tensors)

    @property
    def counts(self) -> dict:
        """Tensors per status (``match``, ``mismatch``, ``bad dump``, ``not dumped``) and ``compared``."""
        counts = {status: 0 for status in (MATCH, MISMATCH, BAD_DUMP, NOT_DUMPED)}
        for t in self.tensors:
            counts[t.status] += 1
        counts["compared"] = counts[MATCH] + counts[MISMATCH]
        return counts

    @property
    def first_divergent_node(self) -> Optional[str]:
        """The first node, in topological order, with a tensor that differs beyond the tolerance."""
        return next((n.name for n in self.nodes if any(t.status == MISMATCH for t in n.tensors)), None)

    @property
    def locally_wrong(self) -> Tuple[str, ...]:
        """With ``isolate``: the nodes whose output differs from their re-run on the hardware's inputs."""
        return tuple(n.name for n in self.nodes if n.isolation is not None and n.isolation.status == LOCALLY_WRONG)

    @property
    def exit_code(self) -> int:
        counts = self.counts
        return 2 if counts[BAD_DUMP] else 1 if counts[MISMATCH] or self.locally_wrong else 0

    @property
    def verdict(self) -> str:
        return {0: "MATCH", 1: "MISMATCH", 2: "BAD INPUT"}[self.exit_code]

    def to_text(self) -> str:
        """The human report: header, one block per node in topological order, summary, verdict."""
        how = "bit exact" if not self.tolerance else f"within ±{self.tolerance}"
        lines = [f"intref verify: golden {self.golden_dir} (graph {self.graph_name!r}, sha256 "
                 f"{self.graph_sha256[:12]}) vs hardware {self.hw_dir}",
                 f"  {how}; formats {', '.join(self.formats)}{'; isolation on' if self.isolate else ''}", ""]
        skipped = []   # a run of consecutive nodes with nothing dumped is one line
        for node in self.nodes + (None,):
            if node is not None and node.status == NOT_DUMPED:
                skipped.append(node.name)
                continue
            if skipped:
                names = skipped[0] if len(skipped) == 1 else f"{skipped[0]} .. {skipped[-1]} ({len(skipped)} nodes)"
                lines.append(f"  {'-':<10} not dumped: {names}")
                skipped = []
            if node is not None:
                lines.extend(_node_lines(node))
        lines.append("")
        first = self.first_divergent_node
        if first is not None:
            op = next(n.op for n in self.nodes if n.name == first)
            lines.append(f"first divergent node: {first} ({op})")
        if self.isolate:
            lines.append(f"locally wrong nodes: {', '.join(self.locally_wrong) or 'none'}")
        c = self.counts
        lines.append(f"tensors: {c['compared']} compared ({c[MATCH]} match, {c[MISMATCH]} mismatch), "
                     f"{c[BAD_DUMP]} bad dump(s), {c[NOT_DUMPED]} not dumped")
        if self.unclaimed_files:
            shown = ", ".join(self.unclaimed_files[:8]) + (", ..." if len(self.unclaimed_files) > 8 else "")
            lines.append(f"note: {len(self.unclaimed_files)} file(s) in the hardware directory match no tensor "
                         f"of the manifest: {shown}")
        lines.append(f"result: {self.verdict} (exit {self.exit_code})")
        return "\n".join(lines) + "\n"

    def junit_xml(self) -> str:
        """JUnit XML: one ``testcase`` per node; ``failure`` for a mismatch or a locally wrong node,
        ``error`` for a bad dump, ``skipped`` for a node with nothing dumped."""
        suite = ET.Element("testsuite", name=_clean(f"intref verify {self.graph_name}"), tests=str(len(self.nodes)),
                           failures=str(sum(1 for n in self.nodes if n.failed and n.status != BAD_DUMP)),
                           errors=str(sum(1 for n in self.nodes if n.status == BAD_DUMP)),
                           skipped=str(sum(1 for n in self.nodes if n.status == NOT_DUMPED and not n.failed)))
        properties = ET.SubElement(suite, "properties")
        for key, value in (("golden_dir", self.golden_dir), ("hw_dir", self.hw_dir),
                           ("graph_sha256", self.graph_sha256), ("tolerance", str(self.tolerance))):
            ET.SubElement(properties, "property", name=key, value=_clean(value))
        for node in self.nodes:
            case = ET.SubElement(suite, "testcase", name=_clean(node.name),
                                 classname=_clean(f"intref.verify.{self.graph_name}"))
            details = "\n".join(line.strip() for line in _node_lines(node))
            if node.status == BAD_DUMP:
                bad = next(t for t in node.tensors if t.status == BAD_DUMP)
                ET.SubElement(case, "error", message=_clean(bad.error or ""), type="bad dump").text = _clean(details)
            elif node.failed:
                ET.SubElement(case, "failure", message=_clean(_failure_message(node)),
                              type="mismatch").text = _clean(details)
            elif node.status == NOT_DUMPED:
                ET.SubElement(case, "skipped", message="not dumped")
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
    shown = [t for t in node.tensors if t.status != NOT_DUMPED]
    if node.status == MATCH and all(t.comparison is not None and not t.comparison.differing and not t.note
                                    for t in shown):
        return [f"{head} {', '.join(t.name for t in shown)}"] + _isolation_lines(node.isolation, node.status, pad)
    lines = []
    for i, t in enumerate(node.tensors):
        if t.status == NOT_DUMPED:
            continue
        what = f"{t.relation} {t.name} {t.type} {list(t.shape)}" + (f" <- {t.file}" if t.file else "")
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
