"""The harness's NumPy probe and metrics (intref/eval/probe.py, metrics.py) on hand-worked and
synthetic data; no data files or torch needed."""

from __future__ import annotations

import numpy as np
import pytest

from intref.eval import data, metrics
from intref.eval.probe import fit_probe


def test_average_ranks_share_ties():
    np.testing.assert_array_equal(metrics.average_ranks([10, 20, 20, 5, 20]), [2, 4, 4, 1, 4])
    np.testing.assert_array_equal(metrics.average_ranks([3.0, 1.0, 2.0]), [3, 1, 2])


def test_correlations():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=200), rng.normal(size=200)
    assert metrics.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    assert metrics.spearman(x, np.exp(3 * x)) == pytest.approx(1.0)            # monotone: rho = 1
    assert metrics.pearson(x, np.exp(3 * x)) < 0.9                             # but not linear
    assert metrics.spearman(x, -x ** 3) == pytest.approx(-1.0)


def test_cosine_summary_and_similarity_correlation():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = np.array([[2.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(metrics.row_cosine(a, b), [1.0, np.sqrt(0.5), 0.0])
    summary = metrics.cosine_summary(a, b)
    assert summary["min"] == 0.0 and summary["mean"] == pytest.approx((1 + np.sqrt(0.5)) / 3)
    e = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])                # pair cosines 0.8, 0.0, 0.6
    human = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.5], [0.1, 0.5, 1.0]])
    assert metrics.similarity_correlation(e, human)["spearman"] == pytest.approx(1.0)


def test_similarity_agreement_measures_pairs_against_a_reference_model():
    e = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])                # pair cosines 0.8, 0.0, 0.6
    same = metrics.similarity_agreement(3 * e, e)                     # scale does not matter
    assert same["pair_max_abs"] == pytest.approx(0.0, abs=1e-12) and same["pair_spearman"] == pytest.approx(1.0)
    assert same["doc_cosine_min"] == pytest.approx(1.0)
    moved = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])            # pair cosines 0.0, 0.8, 0.6
    got = metrics.similarity_agreement(moved, e)
    assert got["pair_max_abs"] == pytest.approx(0.8) and got["pair_spearman"] == pytest.approx(-1.0)
    assert got["doc_cosine_min"] == pytest.approx(0.6)                   # rows 1 and 2 each moved


def test_probe_learns_separable_classes_and_is_deterministic():
    rng = np.random.default_rng(1)
    centers = np.array([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
    labels = rng.integers(0, 3, size=600)
    x = centers[labels] + rng.normal(size=(600, 4)) + 50.0              # offset: standardization matters
    probe = fit_probe(x[:400], labels[:400], 3)
    assert metrics.accuracy(probe.predict(x[400:]), labels[400:]) > 0.95
    again = fit_probe(x[:400], labels[:400], 3)
    np.testing.assert_array_equal(probe.weight, again.weight)


def test_probe_reaches_the_optimum_of_its_objective():
    """On a well-conditioned problem the fitted weights make the objective's gradient ~0."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 5))
    labels = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(np.int64)
    probe = fit_probe(x, labels, 2, c=0.5, iterations=3000)
    z = (x - probe.mean) / probe.std
    p = np.exp(z @ probe.weight + probe.bias)
    p /= p.sum(axis=1, keepdims=True)
    residual = (p - np.eye(2)[labels]) / len(x)
    grad_w = z.T @ residual + probe.weight / (0.5 * len(x))
    assert np.abs(grad_w).max() < 1e-8 and np.abs(residual.sum(axis=0)).max() < 1e-8


def test_probe_refuses_bad_labels():
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        fit_probe(np.zeros((4, 2)), np.array([0, 1, 2, 0]), 2)


def test_split_is_a_fixed_disjoint_permutation():
    train, test = data.split(100, 30, 20, seed=3)
    assert len(train) == 30 and len(test) == 20 and not set(train) & set(test)
    again_train, again_test = data.split(100, 30, 20, seed=3)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(test, again_test)
    assert len(data.split(100, None, 20)[0]) == 80
    with pytest.raises(ValueError, match="leaves no training items"):
        data.split(10, None, 10)


def test_in_processes_keeps_the_order_of_the_texts():
    from intref.eval.harness import in_processes
    texts = [f"{'x' * i} sentence" for i in range(11)]
    lengths = lambda chunk: np.array([[len(t), len(t) % 3] for t in chunk], dtype=np.float64)  # noqa: E731
    np.testing.assert_array_equal(in_processes(lengths, texts, 3), lengths(texts))
    np.testing.assert_array_equal(in_processes(lengths, texts[:3], 3), lengths(texts[:3]))   # too few: serial


def test_paired_difference_counts_only_discordant_items():
    labels = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    base = np.array([0, 1, 0, 0, 1, 1, 1, 1])      # wrong on items 2, 5
    ours = np.array([0, 1, 1, 0, 0, 1, 1, 0])      # right on 2, wrong on 4, 5, 7
    d = metrics.paired_difference(ours, base, labels)
    assert (d["gained"], d["lost"], d["n"]) == (1, 2, 8)
    assert d["delta"] == metrics.accuracy(ours, labels) - metrics.accuracy(base, labels) == -1 / 8
    per_item = np.array([0, 0, 1, 0, -1, 0, 0, -1], dtype=np.float64)
    assert np.isclose(d["half95"], 1.96 * per_item.std(ddof=1) / np.sqrt(8))


def test_paired_difference_of_identical_predictions_is_exactly_zero():
    labels = np.array([0, 1, 2, 1])
    d = metrics.paired_difference(labels[::-1], labels[::-1], labels)
    assert d["delta"] == 0.0 and d["half95"] == 0.0 and d["gained"] == d["lost"] == 0
