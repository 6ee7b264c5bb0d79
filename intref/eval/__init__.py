"""Accuracy evaluation on real text: datasets, a NumPy logistic-regression probe, metrics."""
