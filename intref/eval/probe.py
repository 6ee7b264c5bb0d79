"""A multinomial logistic-regression probe in NumPy: deterministic, no scikit-learn.

    probe = fit_probe(train_embeddings, train_labels, n_classes=2)      # on float embeddings
    predictions = probe.predict(test_embeddings)                        # float or integer model's

The features are standardized with the training set's mean and standard deviation (floored at
``STD_FLOOR`` times the median channel's: all-MiniLM-L6-v2 has a channel whose float spread is
~1e-32, which plain standardization would turn into the probe's loudest feature), then the
weights ``W`` [d, k] and bias ``b`` [k] minimize

    mean over samples of cross-entropy(softmax(x W + b), y)  +  ||W||^2 / (2 C n)

(scikit-learn's ``LogisticRegression(C=C)`` objective divided by ``C n``; the bias is not
penalized). The loss is convex and smooth; Nesterov's accelerated gradient with the step
``1 / L`` (``L = lambda_max(X^T X / n) / 2 + 1 / (C n)``, a bound on the Hessian) runs a fixed
number of iterations from zero, so the same data always give the same probe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STD_FLOOR = 1e-3    # relative to the median channel: a (near-)constant channel must not be blown up


@dataclass(frozen=True)
class Probe:
    mean: np.ndarray        # [d] feature standardization
    std: np.ndarray         # [d]
    weight: np.ndarray      # [d, k]
    bias: np.ndarray        # [k]

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.std) @ self.weight + self.bias

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most likely class per row, int64 [n]."""
        return np.argmax(self.logits(x), axis=1).astype(np.int64)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_probe(x: np.ndarray, labels: np.ndarray, n_classes: int, *, c: float = 4.0,
              iterations: int = 600) -> Probe:
    """Fit the probe of the module doc on ``x`` [n, d] (float) and ``labels`` [n] in 0..n_classes-1."""
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    if x.ndim != 2 or labels.shape != (x.shape[0],) or x.shape[0] < 2:
        raise ValueError(f"expected x [n >= 2, d] and labels [n], got {x.shape} and {labels.shape}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    n, d = x.shape
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.maximum(std, STD_FLOOR * np.median(std) + np.finfo(np.float64).tiny)   # a constant channel stays ~0
    z = (x - mean) / std
    onehot = np.eye(n_classes)[labels]
    lam = 1.0 / (c * n)
    step = 1.0 / (0.5 * np.linalg.eigvalsh(z.T @ z / n)[-1] + lam)
    params = np.zeros((d + 1, n_classes))           # weights, then the bias row
    previous, momentum = params.copy(), params.copy()
    for t in range(1, iterations + 1):
        w, b = momentum[:d], momentum[d]
        residual = (_softmax(z @ w + b) - onehot) / n
        grad = np.vstack([z.T @ residual + lam * w, residual.sum(axis=0)])
        params = momentum - step * grad
        momentum = params + (t - 1) / (t + 2) * (params - previous)
        previous = params
    return Probe(mean, std, params[:d], params[d])
