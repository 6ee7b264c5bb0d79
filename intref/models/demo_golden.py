"""The demo's golden sets: the weights once, and three cases of one feed each.

    weights/   the stored tensors only (npy, hex, bin), loaded once by hardware
    ordinary/  one ordinary sequence: batch 1, 12 tokens, no padding
    padded/    a full-length batch (batch 2, seq 32) whose row 1 is padded (mask 0, pad id 1)
    extremes/  a batch found by a seeded search to reach the ends of the value ranges

The cases exclude the constants (listed in each manifest by sha256, written once in weights/) and
are written as npy, hex and bin: ``.mem`` is ``.hex`` behind one ``//`` header line whose facts the
manifest already holds, and would add half again to the repository for no new information.

The extremes search is deterministic (fixed seeds, integer scores, stable tie-breaks). Each
candidate is one row ``[<s>, tokens..., </s>, <pad>...]`` of 32 positions and a real length. A
row's score counts, per node, the elements that reach an end of the node's worst-case range (the
load-time analysis: the int8 -128/127 of a saturating Requantize, a ResidualAdd's clamp, a
softmax's 255) by ``bit_length`` capped at 3, so that one more node beats more elements of one
node, plus the permille of the worst-case magnitude reached by each Linear, MatMul, IGelu and
ILayerNorm. Rows are independent in the encoder, so eight candidates run as one batch. Each of
60 generations mutates the 4 rows that best cover the extremes so far; then a greedy cover picks
the 2 rows of the case among all 480 candidates.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

from .. import interpreter
from ..bundle import load, save
from ..golden.write import GoldenError, write_golden
from .demo import DEMO_CONFIG, DEMO_SEED, FIRST_TOKEN, MAX_BATCH, MAX_SEQ, make_demo

END_OPS = ("Requantize", "ResidualAdd", "ISoftmax")        # saturate by definition: their ends are reachable
MAGNITUDE_OPS = ("Linear", "MatMul", "IGelu", "ILayerNorm")  # worst cases far beyond real data: how close
END_WEIGHT = 1000                                           # one saturated node = one full magnitude
START, END = 0, 2                                           # <s> and </s>
SEARCH_SEED, GENERATIONS, EXTREME_ROWS = DEMO_SEED + 13, 60, 2
FIRST_LENGTHS = (32, 32, 32, 32, 32, 16, 2, 1)              # the first generation: mostly long rows
POWERS_OF_TWO = 1 << np.arange(62, dtype=np.int64)


def feed_of(candidates, seq: int = MAX_SEQ) -> dict:
    """The feed of rows ``(tokens, real length)``: ``[<s>, tokens..., </s>]`` over the real length
    (a row of length 1 is ``[<s>]``), then padding (pad id 1, attention_mask 0) up to ``seq``."""
    ids = np.full((len(candidates), seq), DEMO_CONFIG.pad_token_id, dtype=np.int32)
    mask = np.zeros((len(candidates), seq), dtype=np.int8)
    for row, (tokens, length) in enumerate(candidates):
        ids[row, :length], mask[row, :length] = tokens[:length], 1
        ids[row, 0] = START
        if length > 1:
            ids[row, length - 1] = END
    return {"input_ids": ids, "attention_mask": mask}


def random_rows(rng: np.random.Generator, lengths, seq: int = MAX_SEQ) -> list:
    """One candidate ``(tokens, length)`` per real length, with random ordinary tokens."""
    return [(rng.integers(FIRST_TOKEN, DEMO_CONFIG.vocab_size, seq).astype(np.int32), int(length))
            for length in lengths]


def ordinary_feed() -> dict:
    return feed_of(random_rows(np.random.default_rng(DEMO_SEED + 11), [12], 12), 12)


def padded_feed() -> dict:
    return feed_of(random_rows(np.random.default_rng(DEMO_SEED + 12), [MAX_SEQ, 12]))


def scored_values(graph):
    """``[(value name, op, lo, hi)]`` of the nodes the search scores, in execution order."""
    return [(o.name, node.op, graph.values[o.name].lo, graph.values[o.name].hi)
            for node in graph.nodes if node.op in END_OPS + MAGNITUDE_OPS for o in node.outputs]


def row_features(scored, trace, batch: int):
    """Per row: ``ends`` [batch, 2 x nodes] (elements at lo, at hi; a softmax's lo, 0, is not an
    extreme) and ``permille`` [batch, nodes] (of the worst-case magnitude reached); int64."""
    ends = np.zeros((batch, 2 * len(scored)), dtype=np.int64)
    permille = np.zeros((batch, len(scored)), dtype=np.int64)
    for i, (name, op, lo, hi) in enumerate(scored):
        rows = trace[name].reshape(batch, -1).astype(np.int64)
        if op in END_OPS:
            ends[:, 2 * i] = 0 if op == "ISoftmax" else (rows == lo).sum(axis=1)
            ends[:, 2 * i + 1] = (rows == hi).sum(axis=1)
        else:
            low = [int(v) * 1000 // lo if lo < 0 else 0 for v in rows.min(axis=1)]
            high = [int(v) * 1000 // hi if hi > 0 else 0 for v in rows.max(axis=1)]
            permille[:, i] = np.maximum(low, high)
    return ends, permille


def end_credit(counts: np.ndarray) -> np.ndarray:
    """Credit for ``counts`` elements at one end: ``bit_length``, capped at 3 (1 -> 1, 2..3 -> 2,
    4.. -> 3), so that reaching an end in one more node beats more elements in the same one."""
    return np.minimum(np.searchsorted(POWERS_OF_TWO, counts, side="right"), 3)


def coverage(ends: np.ndarray, permille: np.ndarray) -> int:
    """The integer score of a set of rows (``[rows, features]``; its best value per feature)."""
    return int(END_WEIGHT * end_credit(ends.max(axis=0)).sum() + permille.max(axis=0).sum())


def greedy_cover(ends: np.ndarray, permille: np.ndarray, rows: int) -> list:
    """Indices of ``rows`` rows picked one at a time, each adding the most to the set's coverage
    (ties: the earlier row)."""
    chosen = []
    best_ends = np.zeros(ends.shape[1], dtype=np.int64)
    best_permille = np.zeros(permille.shape[1], dtype=np.int64)
    for _ in range(min(rows, len(ends))):
        scores = (END_WEIGHT * end_credit(np.maximum(ends, best_ends)).sum(axis=1)
                  + np.maximum(permille, best_permille).sum(axis=1))
        scores[chosen] = -1
        pick = int(np.argmax(scores))   # the first of the best: deterministic
        chosen.append(pick)
        best_ends, best_permille = np.maximum(best_ends, ends[pick]), np.maximum(best_permille, permille[pick])
    return chosen


def _mutate(rng: np.random.Generator, parent, donor):
    """A child of ``(tokens, length)``: one to three tokens replaced (random, or the donor's at the
    same position), and now and then a new length."""
    tokens, length = parent[0].copy(), parent[1]
    if rng.integers(0, 8) == 0:
        length = int(rng.choice([1, 2, 3, 8, MAX_SEQ]))
    for _ in range(int(rng.integers(1, 4))):
        position = int(rng.integers(0, MAX_SEQ))
        from_donor = rng.integers(0, 3) == 0
        tokens[position] = donor[0][position] if from_donor else rng.integers(FIRST_TOKEN, DEMO_CONFIG.vocab_size)
    return tokens, length


def search_extremes(graph, *, seed: int = SEARCH_SEED, generations: int = GENERATIONS, rows: int = EXTREME_ROWS):
    """``(feed, search facts)``: the ``rows`` rows that together reach the most extremes among
    ``generations`` x 8 seeded candidates. Each generation mutates the rows that best cover the
    extremes so far (a greedy cover of 4), two children each."""
    rng = np.random.default_rng(seed)
    scored = scored_values(graph)
    population = random_rows(rng, FIRST_LENGTHS)
    seen, ends, permille = [], [], []
    for _ in range(generations):
        trace = interpreter.run(graph, feed_of(population), trace=True)
        batch_ends, batch_permille = row_features(scored, trace, len(population))
        seen.extend(population)
        ends.extend(batch_ends)
        permille.extend(batch_permille)
        elite = [seen[i] for i in greedy_cover(np.stack(ends), np.stack(permille), MAX_BATCH // 2)]
        population = [_mutate(rng, elite[k % len(elite)], elite[(k + 1) % len(elite)]) for k in range(MAX_BATCH)]
    ends, permille = np.stack(ends), np.stack(permille)
    chosen = greedy_cover(ends, permille, rows)
    facts = {"seed": seed, "generations": generations, "candidates": len(seen), "picked": chosen,
             "lengths": [int(seen[i][1]) for i in chosen], "score": coverage(ends[chosen], permille[chosen])}
    return feed_of([seen[i] for i in chosen]), facts


def extremes_reached(graph, trace) -> dict:
    """Per node kind, what the run reached: nodes and elements at the lo / hi end of their worst-case
    range (END_OPS) or the largest fraction of the worst-case magnitude (MAGNITUDE_OPS); and the
    nodes that reached an end."""
    by_op, at_ends = {}, {}
    for name, op, lo, hi in scored_values(graph):
        values = trace[name]
        entry = by_op.setdefault(op, {"nodes": 0})
        entry["nodes"] += 1
        if op in END_OPS:
            at_lo = 0 if op == "ISoftmax" else int((values == lo).sum())
            at_hi = int((values == hi).sum())
            for end, count in (("lo", at_lo), ("hi", at_hi))[op == "ISoftmax":]:   # a softmax's 0: no extreme
                entry[f"nodes_at_{end}"] = entry.get(f"nodes_at_{end}", 0) + (count > 0)
                entry[f"elements_at_{end}"] = entry.get(f"elements_at_{end}", 0) + count
            if at_lo or at_hi:
                at_ends[name] = {"op": op, "range": [lo, hi], "at_lo": at_lo, "at_hi": at_hi}
        else:
            fraction = max(int(values.min()) / lo if lo < 0 else 0.0, int(values.max()) / hi if hi > 0 else 0.0)
            entry["max_fraction_of_worst_case"] = max(entry.get("max_fraction_of_worst_case", 0.0),
                                                      round(fraction, 4))
    return {"by_op": by_op, "nodes_at_ends": at_ends}


# --- writing the golden sets ---------------------------------------------------------------------

WEIGHT_FORMATS = ("npy", "hex", "bin")
# every format once on the small case; the two large cases keep npy and hex (bin is npy's data
# without its header), which keeps the repository's golden sets near 5 MB
CASE_FORMATS = {"ordinary": ("npy", "hex", "bin"), "padded": ("npy", "hex"), "extremes": ("npy", "hex")}
CASES = ("ordinary", "padded", "extremes")
SET_ENTRIES = ("README.md", "weights") + CASES
DESCRIPTIONS = {
    "weights": "the stored tensors only (constants='only'): weights, biases, tables, loaded once",
    "ordinary": "one ordinary token sequence: batch 1, 12 tokens, no padding",
    "padded": "a full-length batch (batch 2, seq 32); row 1 padded (attention_mask 0, pad id 1)",
    "extremes": "rows found by a seeded search to reach the ends of the value ranges (search_extremes)",
}


def row_facts(graph, feed: dict, trace: dict) -> list:
    """Per row of a case: its real length and the largest softmax output it reaches."""
    probs = [node.outputs[0].name for node in graph.nodes if node.op == "ISoftmax"]
    return [{"length": int(feed["attention_mask"][row].sum()),
             "softmax_max": max(int(trace[name][row].max()) for name in probs)}
            for row in range(feed["attention_mask"].shape[0])]


def demo_cases(graph) -> list:
    """``[(case, feed, metadata)]`` for the three cases, deterministically."""
    extremes_feed, search = search_extremes(graph)
    cases = []
    for case, feed in (("ordinary", ordinary_feed()), ("padded", padded_feed()), ("extremes", extremes_feed)):
        trace = interpreter.run(graph, feed, trace=True)
        metadata = {"case": case, "description": DESCRIPTIONS[case], "rows": row_facts(graph, feed, trace),
                    "extremes": extremes_reached(graph, trace)}
        if case == "extremes":
            metadata["search"] = search
        cases.append((case, feed, metadata))
    return cases


def check_golden_target(out_dir: str, replace: bool) -> None:
    """Refuse, before anything is written, a target that is not new, empty, or (with ``replace``)
    a previous demo golden set."""
    if not os.path.exists(out_dir) or (os.path.isdir(out_dir) and not os.listdir(out_dir)):
        return
    if not os.path.isdir(out_dir):
        raise GoldenError(f"{out_dir}: exists and is not a directory")
    if not replace:
        raise GoldenError(f"{out_dir}: not empty (pass --replace to regenerate a demo golden set in place)")
    unexpected = sorted(set(os.listdir(out_dir)) - set(SET_ENTRIES))
    if unexpected:
        raise GoldenError(f"{out_dir}: holds {unexpected[0]!r}, which is no part of a demo golden set "
                          f"({', '.join(SET_ENTRIES)}): not replacing it")


def write_demo(out, golden_dir=None, *, replace: bool = False) -> list:
    """``intref demo``: save the demo bundle to ``out`` (.zip: a zip bundle, else a directory) and,
    with ``golden_dir``, its golden sets there (``replace``: regenerate an existing demo set in
    place). The golden target is checked before anything is written. Returns what was written,
    one line each."""
    if golden_dir:
        check_golden_target(golden_dir, replace)
    graph, _ = make_demo()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    save(graph, out)
    lines = [f"wrote {out}: {len(graph.nodes)} nodes, {sum(t.data.size for t in graph.tensors.values())} parameters"]
    if golden_dir:
        manifests = write_demo_golden(load(out), golden_dir, out, replace=replace)
        lines.append(f"wrote {golden_dir}: {', '.join(manifests)}")
    return lines


def write_demo_golden(graph, out_dir, bundle, *, replace: bool = False) -> dict:
    """Write weights/, ordinary/, padded/, extremes/ and README.md into ``out_dir`` (built beside
    it, then moved into place); ``bundle`` is the bundle file the manifests point to. Returns the
    manifests by set."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    check_golden_target(out_dir, replace)
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    building = tempfile.mkdtemp(prefix=".building-", dir=os.path.dirname(out_dir))
    try:
        manifests = {"weights": write_golden(graph, None, os.path.join(building, "weights"),
                                             formats=WEIGHT_FORMATS, constants="only",
                                             bundle_path=_relative(bundle, out_dir, "weights"),
                                             metadata={"case": "weights", "description": DESCRIPTIONS["weights"]})}
        for case, feed, metadata in demo_cases(graph):
            manifests[case] = write_golden(graph, feed, os.path.join(building, case), formats=CASE_FORMATS[case],
                                           constants="exclude", bundle_path=_relative(bundle, out_dir, case),
                                           metadata=metadata)
        with open(os.path.join(building, "README.md"), "w", encoding="ascii", newline="\n") as handle:
            handle.write(golden_readme(manifests))
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.rename(building, out_dir)
        os.chmod(out_dir, 0o755)
    finally:
        if os.path.exists(building):
            shutil.rmtree(building)
    return manifests


def _relative(bundle, out_dir: str, case: str) -> str:
    return os.path.relpath(os.path.abspath(bundle), os.path.join(out_dir, case)).replace(os.sep, "/")


def golden_readme(manifests: dict) -> str:
    """The generated README.md of a demo golden set: the sets, their rows, the extremes reached."""
    lines = ["# Demo I-BERT golden sets (generated: do not edit)", "",
             "Regenerate with `intref demo --out golden/demo-ibert.zip --golden golden/demo-ibert"
             " --replace`; golden/README.md says how to read the files.", "",
             "| set | holds | formats | rows: real length (largest softmax output) |", "|---|---|---|---|"]
    for name, manifest in manifests.items():
        rows = ", ".join(f"{r['length']} ({r['softmax_max']})" for r in manifest["metadata"].get("rows", []))
        lines.append(f"| {name}/ | {DESCRIPTIONS[name]} | {', '.join(manifest['formats'])} | {rows or '-'} |")
    lines += ["", "Extremes reached per node kind (ends of the worst-case range for the saturating ops: nodes / "
              "elements at lo, at hi; a softmax's 0 is no extreme; the largest fraction of the worst-case magnitude "
              "for the others):", "",
              "| op | " + " | ".join(CASES) + " |", "|---|" + "---|" * len(CASES)]
    for op in END_OPS + MAGNITUDE_OPS:
        cells = [_extreme_cell(manifests[case]["metadata"]["extremes"]["by_op"].get(op)) for case in CASES]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    reached = manifests["extremes"]["metadata"]["extremes"]["nodes_at_ends"]
    lines += ["", "Nodes of extremes/ at an end of their range (elements at lo / at hi):", ""]
    lines += [f"- `{name}` ({e['op']}, [{e['range'][0]}, {e['range'][1]}]): {e['at_lo']} / {e['at_hi']}"
              for name, e in reached.items()]
    return "\n".join(lines) + "\n"


def _extreme_cell(entry) -> str:
    if entry is None:
        return "-"
    if "max_fraction_of_worst_case" in entry:
        return f"{entry['max_fraction_of_worst_case']:.4f} ({entry['nodes']} nodes)"
    ends = [f"{entry[f'nodes_at_{end}']}/{entry[f'elements_at_{end}']} {end}" for end in ("lo", "hi")
            if f"nodes_at_{end}" in entry]
    return f"{', '.join(ends)} ({entry['nodes']} nodes)"
