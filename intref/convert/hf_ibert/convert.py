"""Import a Hugging Face I-BERT model (``transformers`` IBert with ``quant_mode=True``) exactly.

    graph, report = convert_hf_ibert(model)                 # IBertModel or IBertForSequenceClassification
    intref convert hf-ibert MODEL_DIR -o model.zip [--fix-scales]

The weights, every QuantAct range (``x_min``/``x_max`` buffers) and every LayerNorm ``shift`` are
read from the model; every integer constant is derived by the reference's own float32 arithmetic
(``HFDerivation``). The graph is wired as the reference runs it (``intref.models.ibert``),
including its quirks, by default:

- every layer is told the embedding output's scale (HF #26738): layer ``L >= 1`` requantizes its
  input by ``s_hL / s_h0`` where the reference divides by the stale scale;
- the two embedding additions share one 16-bit QuantAct (``embeddings_act1`` called twice);
- the softmax's QuantAct(16) is fed the integer ``exp_int`` (HF #11755): its range is in exp_int
  units, so the exp requantization ratio is ``1 / s16``;
- the softmax output is 9-bit unsigned (0..256), scale 2**-8.

``fix_scales=True`` emits the intended pipeline instead (each layer told its true input scale);
``intref inspect`` says which variant a bundle is. Heads are float in the reference (the pooler,
the classification head, the LM head): they are left out and listed in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np

from ...models.float_encoder import EncoderConfig, FloatEncoder, FloatLayer
from ...models.ibert import Wiring, build_ibert_encoder
from .derivation import HFDerivation

# our quantization point -> the QuantAct module (relative to a layer, or to the embeddings)
LAYER_ACTS = {"q": "attention.self.query_activation", "k": "attention.self.key_activation",
              "v": "attention.self.value_activation", "context": "attention.self.output_activation",
              "attn.sum": "attention.output.ln_input_act", "attn.out": "attention.output.output_activation",
              "ffn.in": "pre_intermediate_act", "gelu.out": "intermediate.output_activation",
              "ffn.mid": "pre_output_act", "ffn.sum": "output.ln_input_act", "out": "output.output_activation"}
EMBEDDING_ACTS = {"emb.sum": "embeddings_act1", "emb.out": "output_activation"}
LAYER_NORMS = {"attn.ln": "attention.output.LayerNorm", "ffn.ln": "output.LayerNorm"}


@dataclass
class ConversionReport:
    variant: str
    left_out: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def to_text(self) -> str:
        lines = [f"variant: {self.variant}"]
        lines += [f"left out (float in the reference, not integer): {item}" for item in self.left_out]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _module(root, dotted: str):
    for part in dotted.split("."):
        root = getattr(root, part)
    return root


def _np(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def encoder_of(model):
    """The ``IBertModel`` inside a task model (or the model itself)."""
    base = getattr(model, "ibert", model)
    if not hasattr(base, "embeddings") or not hasattr(base, "encoder"):
        raise TypeError(f"{type(model).__name__} is not an I-BERT model (no .embeddings/.encoder)")
    return base


def float_encoder(base) -> FloatEncoder:
    cfg = base.config
    config = EncoderConfig(vocab_size=cfg.vocab_size, hidden=cfg.hidden_size, heads=cfg.num_attention_heads,
                           layers=cfg.num_hidden_layers, intermediate=cfg.intermediate_size,
                           max_positions=cfg.max_position_embeddings, type_vocab_size=cfg.type_vocab_size,
                           pad_token_id=cfg.pad_token_id, position_mode="padding_aware",
                           layer_norm_eps=cfg.layer_norm_eps)
    emb = base.embeddings
    layers = []
    for layer in base.encoder.layer:
        att, out = layer.attention, layer.output
        parts = [att.self.query, att.self.key, att.self.value, att.output.dense]
        linear = [x for p in parts for x in (_np(p.weight), _np(p.bias))]
        layers.append(FloatLayer(*linear, _np(att.output.LayerNorm.weight), _np(att.output.LayerNorm.bias),
                                 _np(layer.intermediate.dense.weight), _np(layer.intermediate.dense.bias),
                                 _np(out.dense.weight), _np(out.dense.bias),
                                 _np(out.LayerNorm.weight), _np(out.LayerNorm.bias)))
    return FloatEncoder(config, _np(emb.word_embeddings.weight), _np(emb.position_embeddings.weight),
                        _np(emb.token_type_embeddings.weight), _np(emb.LayerNorm.weight), _np(emb.LayerNorm.bias),
                        layers)


def reference_scales(base, derivation: HFDerivation):
    """Activation scales, LayerNorm shifts and softmax exp ratios, as the reference computes them."""
    scales, shifts, exp_ratios = {}, {"emb.ln": int(base.embeddings.LayerNorm.shift.item())}, {}
    for name, path in EMBEDDING_ACTS.items():
        act = _module(base.embeddings, path)
        scales[name] = derivation.act_scale_from_range(act.x_min, act.x_max, act.activation_bit)
    for i, layer in enumerate(base.encoder.layer):
        for name, path in LAYER_ACTS.items():
            act = _module(layer, path)
            scales[f"layer{i}.{name}"] = derivation.act_scale_from_range(act.x_min, act.x_max, act.activation_bit)
        for name, path in LAYER_NORMS.items():
            shifts[f"layer{i}.{name}"] = int(_module(layer, path).shift.item())
        exp_act = layer.attention.self.softmax.act
        s16 = derivation.act_scale_from_range(exp_act.x_min, exp_act.x_max, exp_act.activation_bit)
        exp_ratios[f"layer{i}"] = 1.0 / s16   # the QuantAct(16) range is in exp_int units (HF #11755)
    return scales, shifts, exp_ratios


def check_quant_mode(base) -> None:
    cfg = base.config
    if not getattr(cfg, "quant_mode", False):
        raise ValueError("the model is not in quant_mode: load it with IBertConfig(quant_mode=True)")
    if getattr(cfg, "force_dequant", "none") != "none":
        raise ValueError(f"force_dequant={cfg.force_dequant!r}: those kernels run in float in the reference")
    if cfg.hidden_act != "gelu":
        raise ValueError(f"hidden_act={cfg.hidden_act!r}: I-BERT supports only gelu")


UNCALIBRATED = 1.1e-5   # a QuantAct range still within +-1.1e-5 was never set (the reference's own test)


def check_calibrated(base) -> None:
    """Refuse a model whose activation ranges were never measured: a fresh IBertConfig(quant_mode=True)
    model holds x_min = -1e-5, x_max = 1e-5 in every QuantAct until train-mode forward passes set them
    (the reference tests ``x_min > -1.1e-5 and x_max < 1.1e-5`` the same way)."""
    acts = [(f"embeddings.{path}", _module(base.embeddings, path)) for path in EMBEDDING_ACTS.values()]
    for i, layer in enumerate(base.encoder.layer):
        acts += [(f"encoder.layer.{i}.{path}", _module(layer, path)) for path in LAYER_ACTS.values()]
        acts.append((f"encoder.layer.{i}.attention.self.softmax.act", layer.attention.self.softmax.act))
    fresh = [name for name, act in acts
             if float(act.x_min.min()) > -UNCALIBRATED and float(act.x_max.max()) < UNCALIBRATED]
    if fresh:
        raise ValueError(
            f"the model was never calibrated: {len(fresh)} of {len(acts)} activation ranges (QuantAct x_min/x_max) "
            f"still hold their initial +-1e-5, e.g. {fresh[0]}. Calibrate it as I-BERT's quantization-aware "
            f"fine-tuning does: a few forward passes on representative inputs in train mode under torch.no_grad() "
            f"(intref.convert.hf_ibert.random_model.calibrate(model, batches) does exactly that), then model.eval() "
            f"and save_pretrained")


def convert_hf_ibert(model, *, fix_scales: bool = False, max_batch: int = 64, max_seq=None):
    """``(graph, report)`` for an in-memory I-BERT model in quant_mode whose activation ranges were
    calibrated (eval mode is not required: nothing is run; the checkpoint's buffers are read as they are)."""
    base = encoder_of(model)
    check_quant_mode(base)
    check_calibrated(base)
    derivation = HFDerivation()
    scales, shifts, exp_ratios = reference_scales(base, derivation)
    cfg = base.config
    longest = cfg.max_position_embeddings - cfg.pad_token_id - 1
    wiring = Wiring(stale_hidden_scale=not fix_scales, softmax_output_max=256, ln_shifts=shifts,
                    exp_ratios=exp_ratios, max_batch=max_batch, max_seq=min(max_seq or longest, longest))
    variant = "fixed scales (each layer its true input scale)" if fix_scales else \
        "reference-faithful (stale hidden-state scale, HF #26738)"
    graph = build_ibert_encoder(float_encoder(base), scales, derivation=derivation, wiring=wiring,
                                metadata={"source": "transformers IBert", "variant": variant,
                                          "model_type": type(model).__name__})
    report = ConversionReport(variant, left_out=_float_parts(model, base))
    return graph, report


def _float_parts(model, base) -> List[str]:
    parts = []
    if getattr(base, "pooler", None) is not None:
        parts.append("pooler (dense + tanh): nn.Linear in the reference")
    for name in ("classifier", "lm_head", "qa_outputs"):
        if getattr(model, name, None) is not None:
            parts.append(f"{name}: nn.Linear / tanh / GELU / nn.LayerNorm in the reference")
    return parts


def load_hf_model(model_dir: str):
    """Load an I-BERT checkpoint directory offline, with its task head class when it has one."""
    import os

    import transformers
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise ValueError("not a model directory: no config.json (intref never downloads from a hub)")
    config = transformers.AutoConfig.from_pretrained(model_dir, local_files_only=True)
    if config.model_type != "ibert":
        raise ValueError(f"{model_dir}: model_type is {config.model_type!r}, not 'ibert'")
    architecture = (config.architectures or ["IBertModel"])[0]
    cls = getattr(transformers, architecture, None) if architecture.startswith("IBert") else None
    model = (cls or transformers.IBertModel).from_pretrained(model_dir, local_files_only=True)
    return model.eval()
