"""The integer I-BERT encoder graph: embeddings, N post-LN layers, the last hidden state.

``build_ibert_encoder(model, scales, ...)`` wires the graph as I-BERT does (HF
``modeling_ibert.py``; notes/ibert-reference-semantics.md section 9), with the integer constants
from a ``Derivation``. ``scales`` maps each quantization point to its real scale; the points are
named like the graph values they become:

    emb.sum (int16)  emb.out (int8)
    layer{i}.q .k .v .context (int8)   layer{i}.attn.sum (int22)   layer{i}.attn.out (int8)
    layer{i}.ffn.in (int8: I-BERT's pre_intermediate_act)   layer{i}.gelu.out (int8)
    layer{i}.ffn.mid (int8: pre_output_act)   layer{i}.ffn.sum (int22)   layer{i}.out (int8)

Wiring options, one per reference quirk (defaults: the intended integer pipeline):
- ``stale_hidden_scale``: every layer is told the embedding output's scale ``s_h0`` for its input
  (HF #26738). The integers of layer ``L >= 1`` then enter as ``h * s_hL / s_h0``: the graph
  requantizes by that ratio exactly where the reference's float division does (before the
  bias of Q/K/V, and on the residual branch).
- ``softmax_output_max``: 255 (uint8) or 256 (the reference's 9-bit softmax output).
- ``ln_shifts`` / ``exp_ratios``: a trained LayerNorm guard shift and a fixed exp requant ratio
  per point, where a checkpoint carries them.

Post-training options (``intref.convert.ptq``; the defaults leave the graph as above):
- ``smooth``: SmoothQuant factors ``f[k]`` per point (``emb.out``, ``layer{i}.attn.out``,
  ``layer{i}.out`` feeding the next layer, ``layer{i}.gelu.out``). The int8 value then holds
  ``x[k] / f[k]``: a LayerNorm point gets gamma and beta divided by ``f`` (so its integer output
  multiplier carries it), the GELU point's requantization divides by ``f``, the consuming Linear's
  weight columns are multiplied by ``f``, and a residual add that reads the value multiplies it back
  per channel. Nothing float is left at run time.
- ``output_bits``: the width of ``last_hidden_state`` (8 as I-BERT; 16 keeps the sentence
  embedding's outlier channels).
- MPNet (``model.relative_bias``): the bucketed relative-position bias, as int16 at its own scale,
  is added to every layer's int32 scores at the score scale (``ResidualAdd``) before the softmax.
- ``pooled``: also output ``pooled``, the masked mean of ``last_hidden_state`` over real tokens
  (``MaskedMeanPool``), at the same scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import numpy as np

from ..build import GraphBuilder
from ..graph import Graph
from .derivation import Derivation
from ..quant import quantize_symmetric
from .float_encoder import FloatEncoder, FloatLayer, relative_buckets

ACT_BITS, EMB_BITS, LN_IN_BITS = 8, 16, 22


@dataclass
class Wiring:
    stale_hidden_scale: bool = False
    softmax_output_max: int = 255
    ln_shifts: Dict[str, object] = field(default_factory=dict)   # LN name -> int shift ("auto" default)
    exp_ratios: Dict[str, float] = field(default_factory=dict)   # layer{i} -> exp requant ratio
    max_batch: int = 8
    max_seq: Optional[int] = None
    with_token_types: bool = False                               # a token_type_ids input (else row 0)
    smooth: Dict[str, np.ndarray] = field(default_factory=dict)  # point -> SmoothQuant factors
    output_bits: int = ACT_BITS
    pooled: bool = False
    # ZeroQuant schemes (intref/convert/ptq/schemes.py): the width of every Linear input but Q/K/V's
    # outputs, and a function that emits each Linear (None: int8 per-channel weights, below)
    act_bits: int = ACT_BITS
    linear_hook: Optional[Callable] = None
    table_hook: Optional[Callable] = None      # emits the word-embedding lookup (None: an int8 table)


class _Encoder:
    """The build state: the graph builder, the derivation and the scales."""

    def __init__(self, model: FloatEncoder, scales: dict, derivation: Derivation, wiring: Wiring):
        self.model, self.scales, self.d, self.w = model, scales, derivation, wiring
        self.position_bias = None
        cfg = model.config
        self.b = GraphBuilder("ibert-encoder", symbols={"batch": wiring.max_batch,
                                                        "seq": wiring.max_seq or cfg.max_positions - 2})
        self.act = f"int{wiring.act_bits}"     # the type of each requantized Linear input

    def requant(self, x, real_ratio, out_type, name, scale, out_name=None):
        m, s = self.d.ratio(real_ratio)
        return self.b.add("Requantize", [x], out_type, name=name, scale=scale, out_name=out_name,
                          attributes={"multiplier": m, "shift": s})

    def residual(self, a, ratio_a, bval, ratio_b, out_type, name, scale):
        (ma, sa), (mb, sb) = self.d.ratio(ratio_a), self.d.ratio(ratio_b)
        return self.b.add("ResidualAdd", [a, bval], out_type, name=name, scale=scale,
                          attributes={"multiplier_a": ma, "shift_a": sa, "multiplier_b": mb, "shift_b": sb})

    def factors(self, point: str):
        """The SmoothQuant factors of ``point`` (``None``: not smoothed)."""
        f = self.w.smooth.get(point)
        return None if f is None else np.asarray(f, np.float64)

    def linear(self, x, x_scale, weight, bias, name, *, bias_scale=None, smooth=None):
        """Linear with int8 per-channel weights; returns (accumulator, its per-channel scale).
        ``bias_scale`` (the reference's believed input scale) sets the bias grid when it differs;
        ``smooth``: the input holds ``x / f``, so the weight's columns are multiplied by ``f``."""
        if smooth is not None:
            weight = np.asarray(weight, np.float64) * smooth[None, :]
        if self.w.linear_hook is not None and bias_scale is None:
            return self.w.linear_hook(self, x, x_scale, np.asarray(weight, np.float64), bias, name)
        w_int, w_scale = self.d.linear_weight(weight)
        acc_scale = self.d.scale_product(w_scale, x_scale)
        weight_name = self.b.tensor(f"{name}.weight", w_int, "int8", scale=w_scale, scale_axis=0)
        if bias_scale is None:
            bias_name = self.b.tensor(f"{name}.bias", self.d.bias(bias, acc_scale), "int32", scale=acc_scale)
            return self.b.add("Linear", [x, weight_name, bias_name], "int32", name=name, scale=acc_scale), acc_scale
        believed = self.d.scale_product(w_scale, bias_scale)
        acc = self.b.add("Linear", [x, weight_name], "int32", name=name, scale=acc_scale)
        bias_name = self.b.tensor(f"{name}.bias", self.d.bias(bias, believed), "int32", scale=believed)
        # reference: rint(acc * s_x / s_believed + b): the ratio applied to the exact accumulator
        return self.residual(acc, acc_scale / believed, bias_name, 1.0, "int32", f"{name}.rebias", believed), believed

    def layernorm(self, x, gamma, beta, name, input_bits, smooth=None):
        if smooth is not None:   # fold x / f into the LayerNorm: gamma / f and beta / f
            gamma, beta = np.asarray(gamma, np.float64) / smooth, np.asarray(beta, np.float64) / smooth
        params = self.d.layernorm(gamma, beta, input_bits, self.w.ln_shifts.get(name, "auto"))
        out = self.b.add("ILayerNorm", [x], f"int{max(params.output_range()[1].bit_length(), (-params.output_range()[0]).bit_length()) + 1}",
                         name=name, scale=np.asarray(params.out_scale),
                         attributes={"shift": params.shift, "bias_int": list(params.bias_int)})
        return out, np.asarray(params.out_scale)


def build_ibert_encoder(model: FloatEncoder, scales: dict, *, derivation: Optional[Derivation] = None,
                        wiring: Optional[Wiring] = None, metadata: Optional[dict] = None,
                        on_layer: Optional[Callable[[int, int], None]] = None) -> Graph:
    """The integer encoder graph: inputs ``input_ids``, ``attention_mask`` [batch, seq] (and
    ``token_type_ids`` when wired), output ``last_hidden_state`` (the last layer's output, node
    ``layer{N-1}.out``, ``int<output_bits>`` at scale ``scales[layer{N-1}.out]``) and, with
    ``wiring.pooled``, ``pooled`` (its masked mean over the real tokens, same type and scale)."""
    enc = _Encoder(model, scales, derivation or Derivation(), wiring or Wiring())
    h, s_h0 = _embeddings(enc)
    mask = enc.b.add("PaddingMask", ["attention_mask"], "int32", name="attn_mask")
    enc.position_bias = _position_bias(enc)
    s_in = s_h0
    for i, layer in enumerate(model.layers):
        believed = s_h0 if enc.w.stale_hidden_scale else s_in
        out_name = "last_hidden_state" if i == len(model.layers) - 1 else None
        h, s_in = _layer(enc, layer, f"layer{i}", h, s_in, believed, mask, out_name)
        if on_layer:
            on_layer(i + 1, len(model.layers))
    enc.b.output(h)
    if enc.w.pooled:
        enc.b.output(enc.b.add("MaskedMeanPool", [h, "attention_mask"], f"int{enc.w.output_bits}", name="pooled",
                               scale=s_in))
    info = {"model": "ibert-encoder", "derivation": enc.d.name, "stale_hidden_scale": enc.w.stale_hidden_scale,
            "softmax_output_max": enc.w.softmax_output_max, "layers": len(model.layers),
            "hidden": model.config.hidden, "heads": model.config.heads}
    return enc.b.build(producer={"name": "intref.models.ibert"}, metadata={**info, **(metadata or {})})


def _embeddings(enc: _Encoder):
    cfg, b, sc = enc.model.config, enc.b, enc.scales
    ids = b.input("input_ids", "int32", ["batch", "seq"], range=(0, cfg.vocab_size - 1))
    b.input("attention_mask", "int8", ["batch", "seq"], range=(0, 1))
    s16 = sc["emb.sum"]
    if enc.w.table_hook is not None:      # ZeroQuant schemes: the word table's own layout and lookup
        word, s_word = enc.w.table_hook(enc, ids, enc.model.word, "emb.word")
    else:
        word_int, s_word = enc.d.table(enc.model.word)
        word = b.add("Embedding", [ids, b.tensor("emb.word.table", word_int, "int8", scale=s_word)], "int8",
                     name="emb.word", scale=s_word)
    total = word
    ratio_word = s_word / s16
    if enc.model.token_type is not None:
        type_int, s_type = enc.d.table(enc.model.token_type)
        if enc.w.with_token_types:
            tt = b.input("token_type_ids", "int32", ["batch", "seq"], range=(0, cfg.type_vocab_size - 1))
            types = b.add("Embedding", [tt, b.tensor("emb.token_type.table", type_int, "int8", scale=s_type)],
                          "int8", name="emb.token_type", scale=s_type)
        else:  # every token has type 0: add row 0, broadcast over batch and seq
            types = b.tensor("emb.token_type.row0", type_int[0], "int8", scale=s_type)
        total = enc.residual(word, ratio_word, types, s_type / s16, "int16", "emb.word_type", s16)
        ratio_word = 1.0  # the second add reads the 16-bit sum at its own scale (HF reuses embeddings_act1)
    positions = b.add("PositionIds", [ids], "int32", name="emb.position_ids",
                      attributes={"mode": cfg.position_mode, "padding_idx": cfg.pad_token_id})
    pos_int, s_pos = enc.d.table(enc.model.position)
    pos = b.add("Embedding", [positions, b.tensor("emb.position.table", pos_int, "int8", scale=s_pos)], "int8",
                name="emb.position", scale=s_pos)
    total = enc.residual(total, ratio_word, pos, s_pos / s16, "int16", "emb.sum", s16)
    ln, ln_scale = enc.layernorm(total, enc.model.emb_ln_gamma, enc.model.emb_ln_beta, "emb.ln", EMB_BITS,
                                 enc.factors("emb.out"))
    s_h0 = sc["emb.out"]
    return enc.requant(ln, ln_scale / s_h0, enc.act, "emb.out", s_h0), s_h0


def _position_bias(enc: _Encoder):
    """MPNet's relative-position bias, shared by every layer: ``(value [heads, seq, seq] int16, scale)``,
    or None. Bucket ids come from ``RelativeBuckets`` (the bucketing is done here, at build time),
    the int16 table (one scale) is gathered per (query, key) pair and moved to ``[heads, seq, seq]``."""
    model, b = enc.model, enc.b
    if model.relative_bias is None:
        return None
    cfg = model.config
    longest = b.symbols["seq"]
    buckets = relative_buckets(longest, cfg.relative_buckets, cfg.relative_max_distance)
    ids = b.add("RelativeBuckets", ["input_ids"], "int32", name="rel.buckets",
                attributes={"buckets": [int(v) for v in buckets]})
    table, scale = quantize_symmetric(model.relative_bias, 16, clamp="narrow")
    gathered = b.add("Embedding", [ids, b.tensor("rel.table", table, "int16", scale=float(scale))], "int16",
                     name="rel.gather", scale=float(scale))
    return b.add("Transpose", [gathered], "int16", name="rel.bias", attributes={"perm": [2, 0, 1]},
                 scale=float(scale)), float(scale)


def _layer(enc: _Encoder, p: FloatLayer, name: str, h, s_in: float, believed: float, mask, out_name=None):
    cfg, b, sc = enc.model.config, enc.b, enc.scales
    stale = believed != s_in   # the reference tells this layer a scale that is not its input's
    index = int(name[len("layer"):])
    f_h = enc.factors("emb.out" if index == 0 else f"layer{index - 1}.out")
    heads = {}
    for part, (w, bias) in (("q", (p.q_w, p.q_b)), ("k", (p.k_w, p.k_b)), ("v", (p.v_w, p.v_b))):
        acc, acc_scale = enc.linear(h, s_in, w, bias, f"{name}.{part}.linear", bias_scale=believed if stale else None,
                                    smooth=f_h)
        q8 = enc.requant(acc, acc_scale / sc[f"{name}.{part}"], "int8", f"{name}.{part}", sc[f"{name}.{part}"])
        heads[part] = b.add("SplitHeads", [q8], "int8", name=f"{name}.{part}.heads", attributes={"heads": cfg.heads})
    scores = b.add("MatMul", [heads["q"], heads["k"]], "int32", name=f"{name}.scores",
                   attributes={"transpose_b": True})
    score_scale = enc.d.score_scale(sc[f"{name}.q"], sc[f"{name}.k"], cfg.head_dim)
    if enc.position_bias is not None:   # scores + bias at the score scale, each side rounded once
        bias, bias_scale = enc.position_bias
        scores = enc.residual(scores, 1.0, bias, bias_scale / score_scale, "int32", f"{name}.scores.biased",
                              score_scale)
    sm = enc.d.softmax(score_scale, 32, enc.w.softmax_output_max, enc.w.exp_ratios.get(name))
    probs = b.add("ISoftmax", [scores, mask], f"uint{sm.output_max.bit_length()}", name=f"{name}.probs",
                  scale=sm.out_scale, attributes={k: getattr(sm, k) for k in (
                      "x0_int", "b_int", "c_int", "exp_clamp", "exp_multiplier", "exp_shift", "exp_bits",
                      "exp_rounding", "output_bits", "output_max")})
    context = b.add("MatMul", [probs, heads["v"]], "int32", name=f"{name}.context.heads")
    merged = b.add("MergeHeads", [context], "int32", name=f"{name}.context.merged")
    s_ctx = sc[f"{name}.context"]
    ctx8 = enc.requant(merged, enc.d.scale_product(sc[f"{name}.v"], sm.out_scale) / s_ctx, enc.act, f"{name}.context", s_ctx)
    attn, attn_scale = enc.linear(ctx8, s_ctx, p.o_w, p.o_b, f"{name}.attn.linear")
    residual, residual_scale = h, believed
    if stale:  # the reference re-grids the residual onto the believed scale: rint(h * s_in / s_h0)
        residual = enc.requant(h, s_in / believed, "int16", f"{name}.residual.regrid", believed)
    s22 = sc[f"{name}.attn.sum"]
    residual_ratio = residual_scale / s22 if f_h is None else residual_scale * f_h / s22
    total = enc.residual(attn, attn_scale / s22, residual, residual_ratio, f"int{LN_IN_BITS}",
                         f"{name}.attn.sum", s22)
    ln, ln_scale = enc.layernorm(total, p.ln1_gamma, p.ln1_beta, f"{name}.attn.ln", LN_IN_BITS,
                                 enc.factors(f"{name}.attn.out"))
    a8 = enc.requant(ln, ln_scale / sc[f"{name}.attn.out"], enc.act, f"{name}.attn.out", sc[f"{name}.attn.out"])
    return _ffn(enc, p, name, a8, sc[f"{name}.attn.out"], out_name)


def _ffn(enc: _Encoder, p: FloatLayer, name: str, a8, s_a: float, out_name=None):
    b, sc = enc.b, enc.scales
    s_in = sc[f"{name}.ffn.in"]
    f_a, f_g = enc.factors(f"{name}.attn.out"), enc.factors(f"{name}.gelu.out")
    a_in = enc.requant(a8, s_a / s_in, enc.act, f"{name}.ffn.in", s_in)
    acc, acc_scale = enc.linear(a_in, s_in, p.ffn_in_w, p.ffn_in_b, f"{name}.ffn.linear1", smooth=f_a)
    gp = enc.d.gelu(acc_scale, 32)
    lo, hi = gp.output_range(-(1 << 31), (1 << 31) - 1)
    gelu = b.add("IGelu", [acc], f"int{max(hi.bit_length(), (-lo).bit_length()) + 1}", name=f"{name}.gelu",
                 scale=np.asarray(gp.out_scale), attributes={"b_int": list(gp.b_int), "c_int": list(gp.c_int),
                                                             "shift_int": list(gp.shift_int), "guard_shift": gp.guard_shift})
    s_g = sc[f"{name}.gelu.out"]
    g_ratio = np.asarray(gp.out_scale) / s_g if f_g is None else np.asarray(gp.out_scale) / (s_g * f_g)
    g8 = enc.requant(gelu, g_ratio, enc.act, f"{name}.gelu.out", s_g)
    s_mid = sc[f"{name}.ffn.mid"]
    g_in = enc.requant(g8, s_g / s_mid, enc.act, f"{name}.ffn.mid", s_mid)
    out, out_scale = enc.linear(g_in, s_mid, p.ffn_out_w, p.ffn_out_b, f"{name}.ffn.linear2", smooth=f_g)
    s22 = sc[f"{name}.ffn.sum"]
    residual_ratio = s_in / s22 if f_a is None else s_in * f_a / s22
    total = enc.residual(out, out_scale / s22, a_in, residual_ratio, f"int{LN_IN_BITS}", f"{name}.ffn.sum", s22)
    last = out_name is not None
    ln, ln_scale = enc.layernorm(total, p.ln2_gamma, p.ln2_beta, f"{name}.ffn.ln", LN_IN_BITS,
                                 None if last else enc.factors(f"{name}.out"))
    s_out = sc[f"{name}.out"]
    out_type = f"int{enc.w.output_bits}" if last else enc.act
    return enc.requant(ln, ln_scale / s_out, out_type, f"{name}.out", s_out, out_name), s_out
