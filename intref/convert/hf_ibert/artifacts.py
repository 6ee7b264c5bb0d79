"""Why the HF I-BERT reference and intref differ at a quantization point: each difference is
attributed to the float32 (or float64) step of the reference that causes it, by recomputation.

``explain(point, capture, keep, reference, got)`` replays the reference's computation of
``point`` from the previous captured points (``emulate``), once with every step as the
reference runs it, then with the steps made exact one by one. For each element where the reference
and intref (``got``, isolated: fed the reference's upstream values) differ:

- if the all-float replay does not reproduce the reference there: ``unexplained.emulation``;
- if the all-exact replay (the reference's integer meaning, computed independently of intref's
  graph) differs from intref there: ``unexplained.intref`` (an intref bug or a semantic choice
  that is not a float32 artifact);
- otherwise the first step whose exactification makes the replay equal intref names the
  artifact (``ARTIFACTS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch

from ...kernels.requant import requantize
from .emulate import (MASKED, as_ints, dyadic, f32, gelu_steps, layernorm_steps, replays, requant_steps,
                      softmax_steps)

ARTIFACTS = {
    "input.drift": "requant input x/s of a dequantized integer is not an exact integer (float32 drift)",
    "identity.drift": "residual input x/s of a dequantized integer is not an exact integer (float32 drift)",
    "gemm.float32": "float32 GEMM on x/s of dequantized inputs (drift, partial sums past 2**24)",
    "gemm.stale": "stale-scale x_int*r non-integers in the float32 GEMM (input divided by the embedding "
                  "output's scale, HF #26738)",
    "matmul.pv": "float32 P.V matmul of dequantized probabilities and values",
    "residual.stale": "residual re-gridded by float32 h/s_h0 (stale scale, HF #26738) on the other side of a tie",
    "ln.input": "LayerNorm input x/s not an exact integer (float32 drift)",
    "ln.mean": "LayerNorm float32 mean (summation order, rounding) rounds to another integer",
    "ln.variance": "LayerNorm float32 variance (sum of squares past 2**24)",
    "ln.sqrt": "LayerNorm torch.sqrt of a float32 variance vs exact isqrt",
    "ln.factor": "LayerNorm 2**31/std as a float32 reciprocal times 2**31",
    "ln.product": "LayerNorm 2**30-scale product y*factor rounded to 24 bits",
    "ln.bias": "LayerNorm 2**30-scale sum y + bias_int rounded to 24 bits",
    "ln.grid": "requant of the 2**30-scale LayerNorm output: (y*s)/s in float32 puts the exact value "
               "within float32 relative precision of a rounding tie on the other side",
    "gelu.acc": "GELU input: float32 GEMM / x/s drift of the accumulator",
    "gelu.erf": "GELU erf polynomial (t+b)**2 + c_int (~2**31) rounded to 24 bits",
    "gelu.product": "GELU 2**35-scale product x*(erf+shift) rounded to 24 bits",
    "gelu.grid": "requant of the 2**35-scale GELU output: (y*s)/s in float32 puts the exact value "
                 "within float32 relative precision of a rounding tie on the other side",
    "requant.float64": "FixedPointMul product z*m past 2**53 rounded in float64",
    "softmax.scores": "float32 q.k matmul of dequantized operands: scores x/s not integers",
    "softmax.exp": "i-exp in float32: floor of non-integer r, polynomial (~c_int) rounded to 24 bits",
    "softmax.exp_overflow": "exp requant: z_int = exp_int/exp_sf overflowed float32 (inf, saturated at 32767) "
                            "in this row",
    "softmax.exp_requant": "exp requant: float32 exp_int/exp_sf puts the exact value on the other side of a tie",
    "softmax.sum": "exp codes e16*s16/s16 drift and their float32 row sum",
    "softmax.factor": "softmax 2**32/sum as a float32 reciprocal times 2**32",
    "softmax.product": "softmax float32-rounded e*factor (~2**32): 256 vs 255",
    "propagated": "end to end only: intref computes the reference's value from the reference's inputs here "
                  "(isolated match); the difference came from upstream",
    "unexplained.emulation": "NOT EXPLAINED: the float32 replay does not reproduce the reference here",
    "unexplained.intref": "NOT EXPLAINED: intref differs from the exact integer meaning of the reference",
    "unclassified": "NOT EXPLAINED: end-to-end difference without an isolated run (isolate=False)",
}
UNEXPLAINED = ("unexplained.emulation", "unexplained.intref", "unclassified")


@dataclass
class Explanation:
    """Per-element artifact labels of a point (``""`` where nothing is to explain) and the two
    validations of the replay on the compared elements."""

    labels: np.ndarray
    reproduces_reference: bool
    exact_equals_intref: bool

    def counts(self, where: np.ndarray) -> Dict[str, int]:
        keys, counts = np.unique(self.labels[where & (self.labels != "")], return_counts=True)
        return {str(k): int(c) for k, c in zip(keys, counts)}


def _layer(point: str):
    head, _, rest = point.partition(".")
    return int(head[5:]), rest


def _input_point(i: int) -> str:
    return "emb.out" if i == 0 else f"layer{i - 1}.out"


def _linear_exact(cap, point: str, x_ints: np.ndarray, true_sf: torch.Tensor):
    """The exact accumulator ``x @ W_int.T + b_int`` of the QuantLinear feeding ``point``; where the
    reference divides by a stale scale, ``rint(acc * s_true/s_believed) + b_int`` (per channel, the
    float32 scale products of the reference)."""
    mod, _, prev_sf = cap.linears[point]
    weight = mod.weight_integer.detach().double().numpy()
    acc = np.rint(x_ints.astype(np.float64) @ weight.T).astype(np.int64)   # |partial sums| << 2**53
    stale = not torch.equal(prev_sf, true_sf)
    if stale:
        ratio = (mod.fc_scaling_factor * true_sf).double() / (mod.fc_scaling_factor * prev_sf).double()
        m, e = dyadic(ratio)
        acc = requantize(acc, m, e, rounding="half_even", bits=32, overflow="saturate").astype(np.int64)
    return acc + as_ints(mod.bias_integer), stale


def _regrid(ints: np.ndarray, true_sf: torch.Tensor, believed: torch.Tensor):
    if torch.equal(true_sf, believed):
        return ints, False
    m, e = dyadic(true_sf.double() / believed.double())
    return requantize(ints, m[0], e[0], rounding="half_even", bits=16, overflow="saturate").astype(np.int64), True


def _heads(x: np.ndarray, heads: int) -> np.ndarray:
    b, t, c = x.shape
    return x.reshape(b, t, heads, c // heads).transpose(0, 2, 1, 3).astype(np.float64)


def _sources(point: str, cap):
    """``(main_key, exact_main, identity_key, exact_identity, kernel)`` of a QuantAct point;
    ``kernel`` is ``(steps, initial)`` for a LayerNorm/GELU-fed point, else None."""
    ints, acts = cap.ints, cap.acts
    if point == "emb.word_type":
        identity = np.broadcast_to(as_ints(cap.tables["token_type"][0]), ints[point].shape)
        return "input.drift", _rows(cap.tables["word"], cap.ids), "identity.drift", identity, None
    if point == "emb.sum":
        return "input.drift", ints["emb.word_type"], "identity.drift", _rows(cap.tables["position"], cap.position_ids), None
    if point == "emb.out":
        return "ln.grid", None, None, None, _ln(cap, "emb.ln", ints["emb.sum"], acts[point])
    i, part = _layer(point)
    prefix, h_name = f"layer{i}.", _input_point(i)
    if part in ("q", "k", "v"):
        acc, stale = _linear_exact(cap, point, ints[h_name], acts[h_name].z_sf)
        return ("gemm.stale" if stale else "gemm.float32"), acc, None, None, None
    if part == "context":
        pv = _heads_pv(cap, prefix)
        return "matmul.pv", pv, None, None, None
    if part == "attn.sum":
        acc, _ = _linear_exact(cap, point, ints[prefix + "context"], acts[prefix + "context"].z_sf)
        residual, stale = _regrid(ints[h_name], acts[h_name].z_sf, acts[point].id_sf)
        return "gemm.float32", acc, ("residual.stale" if stale else "identity.drift"), residual, None
    if part in ("attn.out", "out"):
        block = "attn" if part == "attn.out" else "ffn"
        return "ln.grid", None, None, None, _ln(cap, f"{prefix}{block}.ln", ints[f"{prefix}{block}.sum"], acts[point])
    if part in ("ffn.in", "ffn.mid"):
        return "input.drift", ints[prefix + ("attn.out" if part == "ffn.in" else "gelu.out")], None, None, None
    if part == "gelu.out":
        acc, _ = _linear_exact(cap, point, ints[prefix + "ffn.in"], acts[prefix + "ffn.in"].z_sf)
        mod, x, sf = cap.kernels[prefix + "gelu"]
        return "gelu.grid", None, None, None, (gelu_steps(mod), {"x": x, "sf": sf, "q": acc})
    if part == "ffn.sum":
        acc, _ = _linear_exact(cap, point, ints[prefix + "ffn.mid"], acts[prefix + "ffn.mid"].z_sf)
        return "gemm.float32", acc, "identity.drift", ints[prefix + "ffn.in"], None
    raise KeyError(f"no replay for point {point!r}")


def _rows(table: torch.Tensor, index: np.ndarray) -> np.ndarray:
    return as_ints(table[torch.from_numpy(np.asarray(index, dtype=np.int64))])


def _ln(cap, name: str, q: np.ndarray, call):
    mod, x, sf = cap.kernels[name]
    return layernorm_steps(mod, call.pre_sf), {"x": x, "sf": sf, "q": q}


def _heads_pv(cap, prefix: str) -> np.ndarray:
    probs = cap.ints[prefix + "probs"].astype(np.float64)
    context = np.rint(probs @ _heads(cap.ints[prefix + "v"], cap.heads)).astype(np.int64)   # < 2**53
    b, h, t, d = context.shape
    return context.transpose(0, 2, 1, 3).reshape(b, t, h * d)


def point_replays(point: str, cap, keep: np.ndarray):
    """``(step keys, outputs of every replay, overflow flags of the reference's exp requant or None)``."""
    if point.endswith(".probs"):
        return _softmax_replays(point, cap, keep)
    call = cap.acts[point]
    main_key, exact_main, identity_key, exact_identity, kernel = _sources(point, cap)
    if kernel is None:
        steps, initial = [], {}
        real_main, get_main = (lambda s: call.x), (lambda s: exact_main)
    else:
        steps, initial = kernel
        real_main, get_main = (lambda s: f32(s["y"]) * call.pre_sf), (lambda s: s["y"])
    steps = steps + requant_steps(call, main_key, identity_key, real_main, get_main, exact_identity)
    outs = replays(steps, initial, lambda s: (np.asarray(s["out"], dtype=np.int64), None))
    return [s.key for s in steps], [o for o, _ in outs], None


def _softmax_replays(point: str, cap, keep: np.ndarray):
    i, _ = _layer(point)
    prefix = f"layer{i}."
    mod, x, s = cap.kernels[prefix + "softmax"]
    q, k = _heads(cap.ints[prefix + "q"], cap.heads), _heads(cap.ints[prefix + "k"], cap.heads)
    scores = np.rint(q @ k.transpose(0, 1, 3, 2)).astype(np.int64)     # |sum| < 2**53
    scores = np.where(keep[:, None, None, :], scores, MASKED)
    steps = softmax_steps(mod)

    def finish(st):
        out = st["out"]
        out = as_ints(out) if isinstance(out, torch.Tensor) else np.asarray(out, dtype=np.int64)
        return out, st.get("overflow")
    outs = replays(steps, {"x": x, "s": s, "q": scores}, finish)
    return [st.key for st in steps], [o for o, _ in outs], outs[0][1]


def explain(point: str, cap, keep: np.ndarray, reference: np.ndarray, got: np.ndarray,
            where: Optional[np.ndarray] = None) -> Explanation:
    """Label every element of ``point`` where ``reference != got`` (module docstring). ``where``:
    the compared elements (the validations are judged on them; default all)."""
    keys, outs, overflow = point_replays(point, cap, keep)
    where = np.ones(reference.shape, dtype=bool) if where is None else where
    labels = label_differences(keys, outs, reference, got.astype(np.int64), overflow)
    return Explanation(labels, bool(np.all(outs[0][where] == reference[where])),
                       bool(np.all(outs[-1][where] == got[where])))


def label_differences(keys: List[str], outs: List[np.ndarray], reference: np.ndarray, got: np.ndarray,
                      overflow: Optional[np.ndarray] = None) -> np.ndarray:
    """Per-element labels from the replays ``outs`` (``outs[k]``: the first ``k`` steps exact):
    ``""`` where ``reference == got``, else the unexplained cases or the first step whose
    exactification reproduces ``got`` (module docstring). ``overflow``: where the reference's exp
    requant overflowed float32, to tell ``softmax.exp_overflow`` apart."""
    labels = np.full(reference.shape, "", dtype=object)
    remaining = reference != got
    for bad, label in ((outs[0] != reference, "unexplained.emulation"), (outs[-1] != got, "unexplained.intref")):
        hit = remaining & bad
        labels[hit] = label
        remaining &= ~hit
    for key, out in zip(keys, outs[1:]):
        fixed = remaining & (out == got)
        labels[fixed] = key
        remaining &= ~fixed
    if overflow is not None:
        rows = np.broadcast_to(overflow.any(axis=-1, keepdims=True), labels.shape)
        labels[(labels == "softmax.exp_requant") & rows] = "softmax.exp_overflow"
    return labels


def propagate_labels(isolated: Explanation, reference: np.ndarray, isolated_got: np.ndarray,
                     end_to_end: np.ndarray) -> np.ndarray:
    """Labels of the end-to-end differences: ``propagated`` where the isolated run matches the
    reference, the isolated label elsewhere."""
    labels = np.full(reference.shape, "", dtype=object)
    differ = end_to_end.astype(np.int64) != reference
    labels[differ] = np.where(isolated_got.astype(np.int64) == reference, "propagated", isolated.labels)[differ]
    return labels
