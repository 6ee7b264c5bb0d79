"""Float64 references of the functions the integer kernels approximate, and the I-BERT paper's figures.

Build-time and study code (notebooks, accuracy tests): floats are the ground truth here, never a
runtime path. Every function is elementwise on a float64 array.

    gelu(x)          x/2 * (1 + erf(x / sqrt 2))        the function i-GELU approximates
    gelu_sigmoid(x)  x * sigmoid(1.702 x)               GELU paper's sigmoid approximation (float only)
    h_gelu(x)        x * ReLU6(1.702 x + 3) / 6         I-BERT's integer-friendly baseline (h-swish form)
    softmax(x)       exp(x - max) / sum, on the last axis

``IBERT_TABLE1`` holds I-BERT (Kim et al., ICML 2021) Table 1, "L2" and "L-inf" distance from GELU
over [-4, 4], as printed. "L2" is the root mean square over a dense uniform grid: recomputing the
float baselines that way reproduces the printed digits (tests/quant/test_reference.py).
"""

from __future__ import annotations

import math

import numpy as np

IBERT_TABLE1 = {               # method: (L2 = RMS, L-inf = max |error|) over [-4, 4], as printed
    "x*sigmoid(1.702x)": (0.012, 0.020),
    "h-GELU": (0.031, 0.068),
    "i-GELU": (0.0082, 0.018),
}
IBERT_EXP_MAX_ERROR = 1.9e-3   # I-BERT Sec. 3.5: max |i-exp(p) - exp(p)| on (-ln 2, 0]

_ERF = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x) -> np.ndarray:
    """Exact (erf) GELU in float64."""
    x = np.asarray(x, dtype=np.float64)
    return x * 0.5 * (1.0 + _ERF(x / math.sqrt(2.0)))


def gelu_sigmoid(x) -> np.ndarray:
    """``x * sigmoid(1.702 x)`` (Hendrycks & Gimpel's sigmoid approximation of GELU)."""
    x = np.asarray(x, dtype=np.float64)
    return x / (1.0 + np.exp(-1.702 * x))


def h_gelu(x) -> np.ndarray:
    """``x * ReLU6(1.702 x + 3) / 6``: the hard (piecewise-quadratic) GELU of I-BERT's Table 1."""
    x = np.asarray(x, dtype=np.float64)
    return x * np.clip(1.702 * x + 3.0, 0.0, 6.0) / 6.0


def softmax(x) -> np.ndarray:
    """Softmax over the last axis in float64 (max subtracted first)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def rms_and_max(error) -> tuple:
    """``(root mean square, max |.|)`` of an error array, as Python floats (Table 1's L2 and L-inf)."""
    error = np.asarray(error, dtype=np.float64)
    return float(np.sqrt(np.mean(error ** 2))), float(np.max(np.abs(error)))
