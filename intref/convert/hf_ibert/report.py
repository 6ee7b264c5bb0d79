"""The verdict of ``crosscheck_hf_ibert``: per quantization point and mode, the counts, the largest
difference, the artifact classes of the differences; the last hidden state's agreement; targets.

Integer counts throughout; floats only for the reported fraction and the cosine (people read them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ...errors import format_index
from ...inttypes import IntType
from ...verify.compare import compare
from .artifacts import ARTIFACTS, UNEXPLAINED

END_TO_END, ISOLATED = "end-to-end", "isolated"
MAX_ABS_TARGET, FRACTION_TARGET = 1, 2e-4
COSINE_TARGET, MATCH_TARGET = 0.9999, 0.999


@dataclass
class NodeStats:
    """One quantization point in one mode, summed over the batches."""

    point: str
    value: str
    type: str
    mode: str
    elements: int = 0
    mismatches: int = 0
    max_abs: int = 0
    artifacts: Dict[str, int] = field(default_factory=dict)
    first: Optional[str] = None

    @property
    def fraction(self) -> float:
        return self.mismatches / self.elements if self.elements else 0.0

    @property
    def unexplained(self) -> int:
        return sum(n for key, n in self.artifacts.items() if key in UNEXPLAINED)

    def add(self, batch: int, reference: np.ndarray, got: np.ndarray, where: np.ndarray, labels: np.ndarray,
            t: IntType) -> None:
        result = compare(reference[where].astype(t.storage), got[where].astype(t.storage), t)
        self.elements += result.compared
        self.mismatches += result.mismatches
        self.max_abs = max(self.max_abs, result.max_abs_difference)
        if result.first is not None and self.first is None:
            flat = np.flatnonzero(where.ravel())[result.first.index[0]]
            index = tuple(int(i) for i in np.unravel_index(flat, where.shape))
            self.first = (f"batch {batch} at {format_index(index)}: reference {result.first.expected}, "
                          f"intref {result.first.got} ({labels[index] or 'no label'})")
        keys, counts = np.unique(labels[where & (reference != got)].astype(str), return_counts=True)
        for key, count in zip(keys, counts):
            self.artifacts[str(key)] = self.artifacts.get(str(key), 0) + int(count)


@dataclass
class CrosscheckReport:
    variant: str
    reference: str
    isolated: bool
    layers: int
    batches: int = 0
    tokens: int = 0
    nodes: Dict[Tuple[str, str], NodeStats] = field(default_factory=dict)
    hidden_dot: float = 0.0
    hidden_ref_sq: float = 0.0
    hidden_got_sq: float = 0.0

    def add_hidden(self, got_real: np.ndarray, reference_real: np.ndarray, keep: np.ndarray) -> None:
        got, ref = got_real[keep].astype(np.float64), reference_real[keep].astype(np.float64)
        self.hidden_dot += float(np.sum(got * ref))
        self.hidden_ref_sq += float(np.sum(ref * ref))
        self.hidden_got_sq += float(np.sum(got * got))

    @property
    def cosine(self) -> float:
        """Cosine of intref's dequantized last hidden state with the reference's float output."""
        norm = np.sqrt(self.hidden_ref_sq * self.hidden_got_sq)
        return float(self.hidden_dot / norm) if norm else (1.0 if self.hidden_dot == 0 else 0.0)

    def node(self, point: str, mode: str = ISOLATED) -> NodeStats:
        return self.nodes[(point, mode)]

    def rows(self, mode: str) -> List[NodeStats]:
        return [stats for (point, m), stats in self.nodes.items() if m == mode]

    @property
    def last_hidden(self) -> NodeStats:
        return self.node(f"layer{self.layers - 1}.out", END_TO_END)

    @property
    def hidden_match(self) -> float:
        """Fraction of the last hidden state's 8-bit values equal to the reference's (real tokens)."""
        stats = self.last_hidden
        return 1.0 - stats.fraction

    def artifact_totals(self, mode: str) -> Dict[str, int]:
        totals: Dict[str, int] = {}
        for stats in self.rows(mode):
            for key, n in stats.artifacts.items():
                totals[key] = totals.get(key, 0) + n
        return totals

    def unexplained(self, mode: str = ISOLATED) -> int:
        return sum(stats.unexplained for stats in self.rows(mode))

    def worst_isolated(self) -> Optional[NodeStats]:
        """The 8-bit activation point with the largest isolated mismatch fraction (then max |diff|)."""
        rows = [s for s in self.rows(ISOLATED) if s.type == "int8"]
        return max(rows, key=lambda s: (s.fraction, s.max_abs)) if rows else None

    def targets(self) -> List[Tuple[str, str, bool]]:
        """``(target, measured, met)`` for each target of the cross-check."""
        out = []
        if self.isolated:
            rows = [s for s in self.rows(ISOLATED) if s.type == "int8"]
            worst_abs = max(rows, key=lambda s: s.max_abs)
            worst = self.worst_isolated()
            out.append((f"isolated 8-bit points: max |difference| <= {MAX_ABS_TARGET}",
                        f"{worst_abs.max_abs} at {worst_abs.point}", worst_abs.max_abs <= MAX_ABS_TARGET))
            out.append((f"isolated 8-bit points: mismatch fraction <= {FRACTION_TARGET:g}",
                        f"{worst.fraction:.2e} at {worst.point}", worst.fraction <= FRACTION_TARGET))
            out.append(("isolated: every difference explained by a float artifact of the reference",
                        f"{self.unexplained(ISOLATED)} unexplained", self.unexplained(ISOLATED) == 0))
        else:
            out.append(("isolated targets", "not run (isolate=False)", False))
        out.append((f"end to end: last hidden state cosine >= {COSINE_TARGET}", f"{self.cosine:.6f}",
                    self.cosine >= COSINE_TARGET))
        stats = self.last_hidden
        out.append((f"end to end: last hidden state 8-bit match >= {MATCH_TARGET:.1%}",
                    f"{self.hidden_match:.4%} ({stats.elements - stats.mismatches} of {stats.elements})",
                    self.hidden_match >= MATCH_TARGET))
        return out

    @property
    def ok(self) -> bool:
        return not self.failures()

    def failures(self) -> List[str]:
        """Why the cross-check fails, each target with its measured value (empty when it passes)."""
        if self.batches == 0:
            return ["no batch was compared (the text file gave no line)"]
        return [f"{name}: measured {measured}" for name, measured, met in self.targets() if not met]

    def to_text(self) -> str:
        lines = [f"graph: {self.variant}", f"reference: {self.reference}",
                 f"batches: {self.batches}, real tokens: {self.tokens}", ""]
        lines += self._table()
        for mode in ((ISOLATED, END_TO_END) if self.isolated else (END_TO_END,)):
            totals = self.artifact_totals(mode)
            lines.append(f"artifact classes, {mode}:" + ("" if totals else " none (no difference)"))
            for key, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"  {n:>8}  {key:<22} {ARTIFACTS.get(key, '?')}")
        firsts = [s for s in self.nodes.values() if s.first and s.unexplained]
        lines += ["first unexplained differences:"] * bool(firsts)
        lines += [f"  {s.point} ({s.mode}): {s.first}" for s in firsts]
        lines += ["", f"last hidden state: cosine {self.cosine:.6f}, 8-bit match {self.hidden_match:.4%}", "targets:"]
        lines += [f"  [{'ok' if met else 'FAIL'}] {name}: {measured}" for name, measured, met in self.targets()]
        lines.append(f"verdict: {'PASS' if self.ok else 'FAIL: ' + '; '.join(self.failures())}")
        return "\n".join(lines) + "\n"

    def _table(self) -> List[str]:
        modes = (END_TO_END, ISOLATED) if self.isolated else (END_TO_END,)
        head = f"{'point':<18} {'type':<7}" + "".join(f" | {m + ': diff/elements':>28} {'max':>4}" for m in modes)
        lines = [head + " | artifacts (isolated)" if self.isolated else head, "-" * len(head)]
        points = [p for (p, m) in self.nodes if m == END_TO_END]
        for point in points:
            row = f"{point:<18} {self.node(point, END_TO_END).type:<7}"
            for mode in modes:
                s = self.node(point, mode)
                row += f" | {f'{s.mismatches}/{s.elements}':>28} {s.max_abs:>4}"
            if self.isolated:
                row += " | " + ", ".join(f"{k}:{n}" for k, n in sorted(self.node(point).artifacts.items()))
            lines.append(row.rstrip(" |"))
        return lines + [""]
