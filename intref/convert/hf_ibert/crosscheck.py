"""Cross-check an imported I-BERT graph against the HF reference it came from, and explain every
difference.

    report = crosscheck_hf_ibert(model, graph, [(input_ids, attention_mask), ...])
    print(report.to_text()); sys.exit(0 if report.ok else 1)
    intref crosscheck hf-ibert MODEL_DIR --text FILE [--fix-scales]

The reference (``transformers`` IBert, ``quant_mode=True``, eval) is run with hooks
(``capture``): its integers at every quantization point, named like the graph values. Two
comparisons per point, on real tokens only (for the softmax, real query rows and real key
columns):

- end to end: ``intref.run`` on the same batch;
- isolated: ``intref.run`` with every captured point overridden by the reference's value, then
  each point's node re-run on its traced inputs: what intref computes from the reference's own
  upstream values.

Each difference is attributed to the float32 artifact of the reference that causes it, by
recomputation (``artifacts``); an end-to-end difference whose isolated value matches is
``propagated``; anything else is reported as NOT EXPLAINED. A graph converted with
``fix_scales=True`` (metadata ``stale_hidden_scale`` false) is checked against the reference
under ``patched_reference`` (each layer its true input scale).

Targets (``CrosscheckReport.targets``): isolated, every 8-bit activation point has max |difference|
<= 1 and a mismatch fraction <= 2e-4, and no isolated difference is unexplained; end to end, the
dequantized last hidden state has cosine >= 0.9999 with the reference's float output and its 8-bit
values match in >= 99.9 % of elements.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterable, Tuple

import numpy as np

from ...graph import Graph
from ...interpreter import run
from ...interpreter import run_node
from .artifacts import Explanation, explain, propagate_labels
from .capture import capture, ordered_points, patched_reference
from .report import END_TO_END, ISOLATED, CrosscheckReport, NodeStats

__all__ = ["CrosscheckReport", "capture_reference", "crosscheck_hf_ibert", "patched_reference"]


def capture_reference(model, input_ids: np.ndarray, attention_mask: np.ndarray) -> Dict[str, np.ndarray]:
    """The reference's integers at every quantization point (int64 arrays named like the graph
    values: ``emb.word_type``, ``emb.sum``, ``emb.out``, ``layer{i}.q`` ... ``layer{i}.out``,
    ``layer{i}.probs``), plus ``last_hidden_state``: its float32 output."""
    cap = capture(model, input_ids, attention_mask)
    return {**cap.ints, "last_hidden_state": cap.hidden}


def value_names(graph: Graph, points) -> Dict[str, str]:
    """Point -> graph value: the value of that name, or the first output of the node of that name
    (the last layer's ``out`` node outputs ``last_hidden_state``)."""
    by_node = {step.node.name: step.node.outputs[0].name for step in graph.steps}
    names = {}
    for point in points:
        name = point if point in graph.values else by_node.get(point)
        if name is None:
            raise ValueError(f"the graph has no value or node {point!r}: not an I-BERT encoder graph "
                             f"of this model (layers differ?)")
        names[point] = name
    return names


def compared(shape: Tuple[int, ...], keep: np.ndarray, point: str) -> np.ndarray:
    """Which elements are compared: real tokens; for probs, real query rows and real key columns."""
    if point.endswith(".probs"):
        return np.broadcast_to(keep[:, None, :, None] & keep[:, None, None, :], shape)
    return np.broadcast_to(keep.reshape(keep.shape + (1,) * (len(shape) - 2)), shape)


def crosscheck_hf_ibert(model, graph: Graph, batches: Iterable[Tuple[np.ndarray, np.ndarray]], *,
                        isolate: bool = True) -> CrosscheckReport:
    """Compare ``graph`` (from ``convert_hf_ibert(model, ...)``) with ``model`` on ``batches`` of
    ``(input_ids, attention_mask)`` integer arrays (module docstring)."""
    from .convert import encoder_of
    layers = len(encoder_of(model).encoder.layer)
    points = ordered_points(layers)
    names = value_names(graph, points)
    faithful = bool(graph.metadata.get("stale_hidden_scale", True))
    report = CrosscheckReport(variant=str(graph.metadata.get("variant", "?")),
                              reference="as shipped (every layer told the embedding output's scale)" if faithful
                              else "patched: each layer told its true input scale (patched_reference)",
                              isolated=isolate, layers=layers)
    report.nodes = {(p, mode): NodeStats(p, names[p], str(graph.values[names[p]].type), mode)
                    for p in points for mode in ((END_TO_END, ISOLATED) if isolate else (END_TO_END,))}
    with contextlib.ExitStack() as stack:
        if not faithful:
            stack.enter_context(patched_reference(model))
        for input_ids, attention_mask in batches:
            _check_batch(model, graph, names, report, np.asarray(input_ids), np.asarray(attention_mask), isolate)
    return report


def _check_batch(model, graph: Graph, names: Dict[str, str], report: CrosscheckReport, ids: np.ndarray,
                 mask: np.ndarray, isolate: bool) -> None:
    if ids.ndim != 2 or ids.shape != mask.shape or ids.dtype.kind not in "iu" or mask.dtype.kind not in "iu":
        raise ValueError(f"a batch must be two integer [batch, seq] arrays of one shape, got "
                         f"{ids.dtype}{list(ids.shape)} and {mask.dtype}{list(mask.shape)}")
    cap = capture(model, ids, mask)
    keep = mask.astype(bool)
    feeds = {"input_ids": ids, "attention_mask": mask}
    ends = run(graph, feeds, trace=True)
    isolated = _isolated_values(graph, names, cap.ints, feeds) if isolate else {}
    report.batches += 1
    report.tokens += int(keep.sum())
    for point, value in names.items():
        reference = cap.ints[point]
        where = compared(reference.shape, keep, point)
        got_end = ends[value].astype(np.int64)
        if isolate:
            got_iso = isolated[point]
            explanation = _explain(point, cap, keep, reference, got_iso, where)
            report.nodes[(point, ISOLATED)].add(report.batches - 1, reference, got_iso, where, explanation.labels,
                                                graph.values[value].type)
            labels = propagate_labels(explanation, reference, got_iso, got_end)
        else:
            labels = np.where(got_end != reference, "unclassified", "").astype(object)
        report.nodes[(point, END_TO_END)].add(report.batches - 1, reference, got_end, where, labels,
                                              graph.values[value].type)
    last = list(names)[-1]        # the last layer's out: the last hidden state
    report.add_hidden(ends[names[last]].astype(np.float64) * float(cap.acts[last].z_sf.item()), cap.hidden, keep)


def _explain(point, cap, keep, reference, got, where) -> Explanation:
    if np.array_equal(reference[where], got[where]):
        return Explanation(np.full(reference.shape, "", dtype=object), True, True)
    return explain(point, cap, keep, reference, got, where)


def _isolated_values(graph: Graph, names: Dict[str, str], ints: Dict[str, np.ndarray], feeds) -> Dict[str, np.ndarray]:
    """Each point's node re-run on the values of a run where every point holds the reference's."""
    overrides = {}
    for point, value in names.items():
        t = graph.values[value].type
        array = ints[point]
        if array.size and (int(array.min()) < t.lo or int(array.max()) > t.hi):
            raise ValueError(f"the reference's {point} holds [{int(array.min())}, {int(array.max())}], outside "
                             f"the graph's {t} for {value!r}: the graph does not describe this reference")
        overrides[value] = array.astype(t.storage)
    trace = run(graph, feeds, trace=True, overrides=overrides)
    producers = {out.name: (step, k) for step in graph.steps for k, out in enumerate(step.node.outputs)}
    results = {}
    for point, value in names.items():
        step, k = producers[value]
        inputs = [trace[n] if n in trace else graph.tensors[n].data for n in step.node.inputs]
        results[point] = run_node(graph, step, inputs, "check")[k].astype(np.int64)
    return results


def read_lines(path: str) -> list:
    """The non-empty lines of a UTF-8 text file (``ValueError`` naming the file otherwise)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle]
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--text {path}: cannot read it as UTF-8 text: {exc}") from None
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"--text {path}: no non-empty line to tokenize")
    return lines


TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model")


def tokenized_batches(model_dir: str, lines: list, batch: int, max_seq: int) -> list:
    """``(input_ids, attention_mask)`` int64 batches of ``lines`` by the directory's own tokenizer
    (offline), padded to the longest line of each batch and truncated to ``max_seq`` tokens."""
    import os

    import transformers
    if not any(os.path.isfile(os.path.join(model_dir, name)) for name in TOKENIZER_FILES):
        # transformers would build an empty tokenizer for the model type, mapping words to <unk>
        raise ValueError(f"{model_dir}: no tokenizer in the model directory (none of {', '.join(TOKENIZER_FILES)})")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{model_dir}: no usable tokenizer in the model directory: {exc}") from None
    batches = []
    for start in range(0, len(lines), batch):
        enc = tokenizer(lines[start:start + batch], padding=True, truncation=True, max_length=max_seq,
                        return_tensors="np")
        batches.append((enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)))
    return batches


def cli_main(model_dir: str, text: str, *, fix_scales: bool, batch: int, max_seq: int, out=print) -> int:
    """``intref crosscheck hf-ibert``: 0 when every target holds, 1 otherwise; bad input raises
    ``ValueError`` (or ``ImportError`` without the hf extra), which the CLI maps to exit 2."""
    from .convert import convert_hf_ibert, load_hf_model
    if batch < 1 or max_seq < 2:
        raise ValueError(f"--batch must be >= 1 and --max-seq >= 2 (got {batch}, {max_seq})")
    lines = read_lines(text)
    model = load_hf_model(model_dir)
    cfg = model.config
    max_seq = min(max_seq, cfg.max_position_embeddings - cfg.pad_token_id - 1)
    batches = tokenized_batches(model_dir, lines, batch, max_seq)
    graph, conversion = convert_hf_ibert(model, fix_scales=fix_scales, max_batch=batch, max_seq=max_seq)
    report = crosscheck_hf_ibert(model, graph, batches)
    out(conversion.to_text())
    out(report.to_text().rstrip("\n"))
    return 0 if report.ok else 1
