"""What the accuracy harness reports: accuracy, agreement, embedding cosine, correlations.

All float64 NumPy, no SciPy. ``spearman`` ranks with ties given their average rank.
"""

from __future__ import annotations

from typing import Dict

import numpy as np


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of predictions equal to their label."""
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def paired_difference(predicted: np.ndarray, baseline: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """Accuracy of ``predicted`` minus that of ``baseline`` on the same items, with the half-width of
    its 95 % normal interval: per item ``d = [predicted right] - [baseline right]`` in {-1, 0, 1},
    ``delta = mean(d)``, ``half95 = 1.96 * std(d, ddof=1) / sqrt(n)`` (the paired test behind
    McNemar's; only the discordant items move it). ``gained`` / ``lost``: items only one gets right."""
    right = np.asarray(predicted) == np.asarray(labels)
    base_right = np.asarray(baseline) == np.asarray(labels)
    d = right.astype(np.float64) - base_right.astype(np.float64)
    n = len(d)
    half = 1.96 * float(np.std(d, ddof=1)) / np.sqrt(n) if n > 1 else float("nan")
    return {"delta": float(d.mean()), "half95": half, "gained": int(np.sum(right & ~base_right)),
            "lost": int(np.sum(base_right & ~right)), "n": n}


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine between matching rows of ``a`` and ``b`` [n, d] (0 where a row is all zeros)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide(np.sum(a * b, axis=1), norms, out=np.zeros(len(a)), where=norms > 0)


def cosine_summary(a: np.ndarray, b: np.ndarray) -> Dict[str, float]:
    """Mean, 5th percentile and minimum of the row cosines of ``a`` and ``b``."""
    c = row_cosine(a, b)
    return {"mean": float(c.mean()), "p5": float(np.percentile(c, 5)), "min": float(c.min())}


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x, y = x - x.mean(), y - y.mean()
    return float(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y)))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x``, tied values sharing the mean of their ranks."""
    x = np.asarray(x)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    group_rank = (starts + ends + 1) / 2.0           # mean of ranks starts+1 .. ends
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(average_ranks(x), average_ranks(y))


def similarity_correlation(embeddings: np.ndarray, human: np.ndarray) -> Dict[str, float]:
    """Pearson and Spearman, over the pairs i < j, of the embeddings' cosine similarity against a
    human similarity matrix (the Lee documents)."""
    e = np.asarray(embeddings, dtype=np.float64)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    upper = np.triu_indices(len(e), k=1)
    model = (e @ e.T)[upper]
    return {"pearson": pearson(model, human[upper]), "spearman": spearman(model, human[upper])}


def similarity_agreement(embeddings: np.ndarray, reference: np.ndarray) -> Dict[str, float]:
    """How closely one model's document-pair similarities follow a reference model's on the same
    documents: the largest absolute difference of the pair cosines (i < j), their Spearman
    correlation, and the smallest cosine between a document's two embeddings."""
    ours, theirs = (np.asarray(e, dtype=np.float64) for e in (embeddings, reference))
    ours, theirs = (e / np.linalg.norm(e, axis=1, keepdims=True) for e in (ours, theirs))
    upper = np.triu_indices(len(ours), k=1)
    a, b = (ours @ ours.T)[upper], (theirs @ theirs.T)[upper]
    return {"pair_max_abs": float(np.abs(a - b).max(initial=0.0)), "pair_spearman": spearman(a, b),
            "doc_cosine_min": float(row_cosine(ours, theirs).min())}
