"""A float64 BERT/RoBERTa encoder in NumPy: the model the integer graph approximates.

Build time only. It serves two purposes:

- calibration: ``forward(..., observe=...)`` reports every activation at the points where the
  integer graph quantizes (the names are the integer graph's value names), so a post-training
  calibration can set each scale from the observed ranges;
- reference: the float result the dequantized integer output is compared against.

Post-LN layout (BERT, RoBERTa, I-BERT): embeddings (word + token type + position) -> LayerNorm,
then per layer ``LN(x + attn(x))`` and ``LN(a + FFN(a))`` with an erf GELU.

Deterministic on every machine: the calibrated scales become a shipped bundle's metadata and its
dyadic multipliers, so the float forward must not depend on the CPU. Its products therefore go
through ``matmul_fixed_order`` (one IEEE multiply and one add per term, k = 0, 1, ... in order;
never BLAS, whose summation order depends on the CPU and the BLAS kernel) and its exponential
through ``exp_fixed`` (IEEE +, -, *, ldexp only; NumPy's ``np.exp`` picks a SIMD kernel by CPU).
``math.erf`` (libm, plain C with no CPU-dispatched variant) and correctly rounded ``sqrt`` and
division are the same everywhere. ``forward(..., arithmetic=BLAS)`` trades that for speed (float
BLAS, ``np.exp``, an interpolated erf; ~1e-12 away): post-training calibration of real models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

_ERF = np.frompyfunc(math.erf, 1, 1)   # math.erf per element (1.6x faster than np.vectorize)


@dataclass(frozen=True)
class EncoderConfig:
    vocab_size: int
    hidden: int
    heads: int
    layers: int
    intermediate: int
    max_positions: int
    type_vocab_size: int = 0          # 0: no token-type embedding
    pad_token_id: int = 1
    position_mode: str = "padding_aware"   # "padding_aware" (RoBERTa/I-BERT) or "arange" (BERT)
    layer_norm_eps: float = 1e-5
    relative_buckets: int = 0         # MPNet: buckets of the relative-position attention bias (0: none)
    relative_max_distance: int = 128

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


@dataclass
class FloatLayer:
    q_w: np.ndarray
    q_b: np.ndarray
    k_w: np.ndarray
    k_b: np.ndarray
    v_w: np.ndarray
    v_b: np.ndarray
    o_w: np.ndarray
    o_b: np.ndarray
    ln1_gamma: np.ndarray
    ln1_beta: np.ndarray
    ffn_in_w: np.ndarray
    ffn_in_b: np.ndarray
    ffn_out_w: np.ndarray
    ffn_out_b: np.ndarray
    ln2_gamma: np.ndarray
    ln2_beta: np.ndarray


@dataclass
class FloatEncoder:
    config: EncoderConfig
    word: np.ndarray
    position: np.ndarray
    token_type: Optional[np.ndarray]
    emb_ln_gamma: np.ndarray
    emb_ln_beta: np.ndarray
    layers: List[FloatLayer] = field(default_factory=list)
    relative_bias: Optional[np.ndarray] = None   # MPNet: [buckets, heads], added to every layer's scores


def matmul_fixed_order(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (float64, broadcasting over leading axes) summed in one fixed order:
    ``acc = a[..., 0] * b[0] ; acc += a[..., k] * b[k]`` for k = 1 .. K-1, each step one correctly
    rounded multiply and add. The result depends on the operands only, never on the CPU or BLAS.
    A Python loop over K (at most a few hundred here), vectorized over every other axis."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    acc = a[..., :, 0:1] * b[..., 0:1, :]
    for k in range(1, a.shape[-1]):
        acc = acc + a[..., :, k:k + 1] * b[..., k:k + 1, :]
    return acc


_LN2_HI, _LN2_LO = 0.6931471803691238, 1.9082149292705877e-10   # fdlibm's split of ln 2 (k * HI exact)
_INV_LN2 = 1.4426950408889634                                    # nearest double to 1 / ln 2
_EXP_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(14))  # |r| <= ln2/2: truncation < 2**-60


def exp_fixed(x: np.ndarray) -> np.ndarray:
    """``exp(x)`` (float64, relative error a few ULP) from IEEE add, multiply and ``ldexp`` only:
    ``x = k ln2 + r`` with ``k = rint(x / ln2)``, ``|r| <= ln2 / 2``, a degree-13 Taylor polynomial
    of ``exp(r)`` by Horner, scaled by ``2**k``. Inputs below -745 give 0 (as ``exp`` underflows)."""
    x = np.maximum(np.asarray(x, np.float64), -745.0)
    k = np.rint(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = np.full_like(r, _EXP_TAYLOR[-1])
    for c in _EXP_TAYLOR[-2::-1]:
        p = p * r + c
    return np.ldexp(p, k.astype(np.int32))


def position_ids(ids: np.ndarray, config: EncoderConfig) -> np.ndarray:
    if config.position_mode == "arange":
        return np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
    real = (ids != config.pad_token_id).astype(np.int64)
    return np.cumsum(real, axis=1) * real + config.pad_token_id


def relative_buckets(length: int, num_buckets: int = 32, max_distance: int = 128) -> np.ndarray:
    """MPNet's (T5's bidirectional) bucket of every relative distance ``d = key - query`` in
    ``-(length-1) .. length-1`` (index ``d + length - 1``), int64. Half the buckets for each sign;
    distances below a quarter of the buckets exact, larger ones logarithmic up to ``max_distance``.
    The logarithm is taken in float32 as transformers does (``relative_position_bucket``)."""
    n = -np.arange(-(length - 1), length, dtype=np.int64)
    half = num_buckets // 2
    exact = half // 2
    sign = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    with np.errstate(divide="ignore"):
        scaled = (np.log(np.maximum(n, 1).astype(np.float32) / np.float32(exact))
                  / np.float32(math.log(max_distance / exact)) * np.float32(half - exact))
    large = np.minimum(exact + scaled.astype(np.int64), half - 1)
    return sign + np.where(n < exact, n, large)


def position_bias(model: "FloatEncoder", length: int) -> Optional[np.ndarray]:
    """The relative-position attention bias ``[heads, length, length]`` (None without one)."""
    if model.relative_bias is None:
        return None
    cfg = model.config
    buckets = relative_buckets(length, cfg.relative_buckets, cfg.relative_max_distance)
    distance = np.arange(length)[None, :] - np.arange(length)[:, None] + length - 1
    return model.relative_bias[buckets[distance]].transpose(2, 0, 1)


def layer_norm(x: np.ndarray, gamma, beta, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0)).astype(np.float64))


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray, matmul=None) -> np.ndarray:
    """``x @ w.T + b`` over the last axis, as one 2-D product ``matmul(rows, w.T)`` (default
    ``matmul_fixed_order``; for ``np.matmul`` one BLAS call, ~4x faster than a stacked matmul)."""
    rows = x.reshape(-1, x.shape[-1])
    return (matmul or matmul_fixed_order)(rows, w.T).reshape(x.shape[:-1] + (w.shape[0],)) + b


_ERF_STEP, _ERF_END = 1.0 / 256, 6.0          # erf(6) = 1 - 2e-17: 1.0 in float64
_ERF_GRID = np.arange(0.0, _ERF_END + _ERF_STEP, _ERF_STEP)
_ERF_VALUES = np.array([math.erf(v) for v in _ERF_GRID])
_ERF_SLOPES = 2.0 / math.sqrt(math.pi) * np.exp(-_ERF_GRID ** 2) * _ERF_STEP


def erf_hermite(x: np.ndarray) -> np.ndarray:
    """``erf(x)`` by cubic Hermite interpolation of ``math.erf`` and its exact derivative on a grid
    of step 1/256 over [0, 6] (odd symmetry; 1 beyond 6). Error below step**4 / 384 times the
    largest fourth derivative, under 1e-11; about 4x faster than ``math.erf`` per element."""
    a = np.minimum(np.abs(x), _ERF_END) / _ERF_STEP
    i = np.minimum(a.astype(np.int64), _ERF_GRID.size - 2)
    u = a - i
    v = 1.0 - u
    y = (v * v * ((1.0 + 2.0 * u) * _ERF_VALUES[i] + u * _ERF_SLOPES[i])
         + u * u * ((3.0 - 2.0 * u) * _ERF_VALUES[i + 1] - v * _ERF_SLOPES[i + 1]))
    return np.copysign(y, x)


def gelu_fast(x: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """``gelu`` with ``erf_hermite`` (agrees with ``gelu`` to about 1e-11), in cache-sized chunks."""
    flat = np.ascontiguousarray(x, np.float64).reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, chunk):
        part = flat[start:start + chunk]
        out[start:start + chunk] = 0.5 * part * (1.0 + erf_hermite(part / math.sqrt(2.0)))
    return out.reshape(np.shape(x))


def softmax(x: np.ndarray, exp=None) -> np.ndarray:
    e = (exp or exp_fixed)(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Arithmetic:
    """How the float forward multiplies matrices, exponentiates and applies the GELU.

    ``FIXED_ORDER`` (default): the same bits on every machine (the demo's shipped scales depend on
    them). ``BLAS``: float BLAS, ``np.exp`` and the interpolated erf; ~1e-12 from ``FIXED_ORDER``
    and many times faster, for post-training calibration and float baselines of real models."""

    matmul: Callable
    exp: Callable
    gelu: Callable


FIXED_ORDER = Arithmetic(matmul_fixed_order, exp_fixed, gelu)
BLAS = Arithmetic(np.matmul, np.exp, gelu_fast)


def forward(model: FloatEncoder, ids: np.ndarray, attention_mask: Optional[np.ndarray] = None,
            token_type_ids: Optional[np.ndarray] = None,
            observe: Optional[Callable[[str, np.ndarray], None]] = None,
            arithmetic: Arithmetic = FIXED_ORDER) -> np.ndarray:
    """Last hidden state ``[batch, seq, hidden]``; ``observe(name, value)`` sees each quantization point."""
    cfg = model.config
    see = observe or (lambda name, value: None)
    mask = np.ones(ids.shape) if attention_mask is None else attention_mask
    x = model.word[ids]
    see("emb.word", x)
    if model.token_type is not None:
        tt = model.token_type[np.zeros_like(ids) if token_type_ids is None else token_type_ids]
        see("emb.token_type", tt)
        x = x + tt
    pos = model.position[position_ids(ids, cfg)]
    see("emb.position", pos)
    x = x + pos
    see("emb.sum", x)
    x = layer_norm(x, model.emb_ln_gamma, model.emb_ln_beta, cfg.layer_norm_eps)
    see("emb.out", x)
    additive = (1.0 - mask[:, None, None, :]) * -10000.0
    bias = position_bias(model, ids.shape[1])
    if bias is not None:
        additive = additive + bias[None]
    for i, layer in enumerate(model.layers):
        x = _layer(layer, cfg, x, additive, lambda name, value, i=i: see(f"layer{i}.{name}", value), arithmetic)
    return x


def _layer(p: FloatLayer, cfg: EncoderConfig, x, additive, see, arithmetic: Arithmetic):
    b, s, h = x.shape
    heads, d = cfg.heads, cfg.head_dim
    mm = arithmetic.matmul

    def split(t):
        return t.reshape(b, s, heads, d).transpose(0, 2, 1, 3)

    q, k, v = (linear(x, w, bias, mm) for w, bias in ((p.q_w, p.q_b), (p.k_w, p.k_b), (p.v_w, p.v_b)))
    for name, value in (("q", q), ("k", k), ("v", v)):
        see(name, value)
    scores = mm(split(q), split(k).transpose(0, 1, 3, 2)) / math.sqrt(d) + additive
    context = mm(softmax(scores, arithmetic.exp), split(v)).transpose(0, 2, 1, 3).reshape(b, s, h)
    see("context", context)
    attn = linear(context, p.o_w, p.o_b, mm)
    see("attn.sum", attn + x)
    a = layer_norm(attn + x, p.ln1_gamma, p.ln1_beta, cfg.layer_norm_eps)
    see("attn.out", a)
    see("ffn.in", a)
    inner = arithmetic.gelu(linear(a, p.ffn_in_w, p.ffn_in_b, mm))
    see("gelu.out", inner)
    see("ffn.mid", inner)
    out = linear(inner, p.ffn_out_w, p.ffn_out_b, mm)
    see("ffn.sum", out + a)
    y = layer_norm(out + a, p.ln2_gamma, p.ln2_beta, cfg.layer_norm_eps)
    see("out", y)
    return y


def random_encoder(config: EncoderConfig, seed: int) -> FloatEncoder:
    """Seeded random weights: embeddings N(0, 0.5), linear weights N(0, 1/fan_in) (so attention
    scores and GELU inputs spread over a few units, not a near-uniform softmax), biases N(0, 0.02),
    LayerNorm gamma near 1 and beta near 0."""
    rng = np.random.default_rng(seed)
    h, f = config.hidden, config.intermediate

    def linear(n_out, n_in):
        return rng.normal(0.0, 1.0 / math.sqrt(n_in), (n_out, n_in)), rng.normal(0.0, 0.02, n_out)

    def ln():
        return 1.0 + rng.normal(0.0, 0.05, h), rng.normal(0.0, 0.05, h)

    layers = []
    for _ in range(config.layers):
        (q_w, q_b), (k_w, k_b), (v_w, v_b), (o_w, o_b) = (linear(h, h) for _ in range(4))
        (i_w, i_b), (f_w, f_b) = linear(f, h), linear(h, f)
        (g1, b1), (g2, b2) = ln(), ln()
        layers.append(FloatLayer(q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, g1, b1, i_w, i_b, f_w, f_b, g2, b2))
    g0, b0 = ln()

    def table(rows):
        return rng.normal(0.0, 0.5, (rows, h))

    token_type = table(config.type_vocab_size) if config.type_vocab_size else None
    return FloatEncoder(config, table(config.vocab_size), table(config.max_positions), token_type, g0, b0, layers)
