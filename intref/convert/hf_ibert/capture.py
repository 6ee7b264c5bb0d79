"""What the HF I-BERT reference computes at every quantization point, read from its own forward.

``capture(model, input_ids, attention_mask)`` runs the reference once (eval mode, no grad) with
hooks on every QuantAct, IntLayerNorm, IntGELU, IntSoftmax and QuantLinear of the encoder and
returns a ``Capture``: the integers of every quantization point, named like the graph values of
``intref.models.ibert`` (``rint(x_real / s)`` of each QuantAct output; ``rint(p * 256)`` of each
softmax output), the float inputs each of those modules received (for the artifact analysis of
``artifacts``) and the model's float ``last_hidden_state``.

The QuantAct outputs are read back exactly: ``x_real = fl32(q * s)`` and ``fl32(x_real / s)`` is
within two float32 roundings (relative ~2**-23) of ``q``, less than 1/4 away for ``|q| <= 2**21``
(the widest point is the 22-bit LayerNorm input), so ``rint`` gives ``q``.

``patched_reference(model)`` makes the encoder pass each layer its true input scale (the intended
pipeline; the reference passes the embedding output's scale to every layer, HF #26738).

Reference side only; requires torch and transformers (the ``hf`` extra).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch

from .convert import LAYER_ACTS, LAYER_NORMS, encoder_of

# the layer points whose QuantAct reads a QuantLinear's output (module paths in a layer)
LINEAR_FED = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
              "attn.sum": "attention.output.dense", "ffn.sum": "output.dense"}
GELU_LINEAR = "intermediate.dense"
GELU = "intermediate.intermediate_act_fn"
SOFTMAX = "attention.self.softmax"


@dataclass
class ActCall:
    """One QuantAct call: its float inputs (``x``, ``pre_sf``, optional ``identity``/``id_sf``),
    its float output ``out`` with scale ``z_sf``, its bit width."""

    x: torch.Tensor
    pre_sf: Optional[torch.Tensor]
    identity: Optional[torch.Tensor]
    id_sf: Optional[torch.Tensor]
    out: torch.Tensor
    z_sf: torch.Tensor
    bits: int

    def ints(self) -> np.ndarray:
        """The integers of the output (exact: see the module docstring)."""
        return torch.round(self.out / self.z_sf).numpy().astype(np.int64)


@dataclass
class Capture:
    """The reference's view of one batch (see the module docstring)."""

    ints: Dict[str, np.ndarray]
    acts: Dict[str, ActCall]
    kernels: Dict[str, tuple]          # "emb.ln", "layer0.attn.ln", "layer0.gelu", "layer0.softmax" -> (module, x, sf)
    linears: Dict[str, tuple]          # the point a QuantLinear feeds ("layer0.q", "layer0.gelu.out") -> (module, x, sf)
    hidden: np.ndarray                 # the model's float32 last_hidden_state
    ids: np.ndarray
    position_ids: np.ndarray
    layers: int
    heads: int
    tables: Dict[str, torch.Tensor]    # the int8 embedding tables (word, position, token_type) the forward used


def _module(root, dotted: str):
    for part in dotted.split("."):
        root = getattr(root, part)
    return root


def _arg(args, kwargs, index, name):
    return args[index] if len(args) > index else kwargs.get(name)


class _Hooks:
    """Registers forward hooks and collects what they see; ``close()`` removes them."""

    def __init__(self):
        self.handles: List = []
        self.acts: Dict[str, List[ActCall]] = {}
        self.kernels: Dict[str, tuple] = {}
        self.linears: Dict[str, tuple] = {}
        self.probs: Dict[str, torch.Tensor] = {}

    def act(self, module, name: str) -> None:
        def post(mod, args, kwargs, output):
            x, pre_sf, identity, id_sf = (_arg(args, kwargs, i, key) for i, key in enumerate(
                ("x", "pre_act_scaling_factor", "identity", "identity_scaling_factor")))
            call = ActCall(x, pre_sf, identity, id_sf, output[0], output[1], mod.activation_bit)
            self.acts.setdefault(name, []).append(call)
        self.handles.append(module.register_forward_hook(post, with_kwargs=True))

    def inputs(self, module, name: str, store: dict) -> None:
        def post(mod, args, kwargs, output):
            store[name] = (mod, _arg(args, kwargs, 0, "x"), _arg(args, kwargs, 1, "scaling_factor"))
        self.handles.append(module.register_forward_hook(post, with_kwargs=True))

    def softmax_output(self, module, name: str) -> None:
        def post(mod, args, output):
            self.probs[name] = output[0]
        self.handles.append(module.register_forward_hook(post))

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _register(base, hooks: _Hooks) -> None:
    emb = base.embeddings
    hooks.act(emb.embeddings_act1, "emb.act1")
    hooks.act(emb.output_activation, "emb.out")
    hooks.inputs(emb.LayerNorm, "emb.ln", hooks.kernels)
    for i, layer in enumerate(base.encoder.layer):
        for point, path in LAYER_ACTS.items():
            hooks.act(_module(layer, path), f"layer{i}.{point}")
        for name, path in LAYER_NORMS.items():
            hooks.inputs(_module(layer, path), f"layer{i}.{name}", hooks.kernels)
        for point, path in LINEAR_FED.items():
            hooks.inputs(_module(layer, path), f"layer{i}.{point}", hooks.linears)
        hooks.inputs(_module(layer, GELU_LINEAR), f"layer{i}.gelu.out", hooks.linears)
        hooks.inputs(_module(layer, GELU), f"layer{i}.gelu", hooks.kernels)
        hooks.inputs(_module(layer, SOFTMAX), f"layer{i}.softmax", hooks.kernels)
        hooks.softmax_output(_module(layer, SOFTMAX), f"layer{i}.probs")


def capture(model, input_ids: np.ndarray, attention_mask: np.ndarray) -> Capture:
    """Run the reference once on a batch and capture every quantization point (module docstring)."""
    from transformers.models.ibert.modeling_ibert import create_position_ids_from_input_ids
    base = encoder_of(model)
    if base.training:
        raise ValueError("the reference is in training mode: a forward would update its QuantAct ranges; "
                         "call model.eval() first")
    hooks = _Hooks()
    _register(base, hooks)
    try:
        with torch.no_grad():
            ids = torch.from_numpy(np.asarray(input_ids, dtype=np.int64))
            mask = torch.from_numpy(np.asarray(attention_mask, dtype=np.int64))
            hidden = base(input_ids=ids, attention_mask=mask).last_hidden_state
    finally:
        hooks.close()
    acts = {"emb.word_type": hooks.acts["emb.act1"][0], "emb.sum": hooks.acts["emb.act1"][1]}
    acts.update({name: calls[0] for name, calls in hooks.acts.items() if name != "emb.act1"})
    ints = {name: call.ints() for name, call in acts.items()}
    ints.update({name: torch.round(p * 256).numpy().astype(np.int64) for name, p in hooks.probs.items()})
    positions = create_position_ids_from_input_ids(ids, base.config.pad_token_id).numpy()
    emb = base.embeddings
    tables = {name: getattr(emb, f"{name}_embeddings").weight_integer.detach()
              for name in ("word", "position", "token_type")}
    return Capture(ints, acts, hooks.kernels, hooks.linears, hidden.numpy().astype(np.float32), ids.numpy(), positions,
                   len(base.encoder.layer), base.config.num_attention_heads, tables)


def ordered_points(layers: int) -> List[str]:
    """Every captured point in graph order (``probs`` after ``v``, as the graph computes it)."""
    names = ["emb.word_type", "emb.sum", "emb.out"]
    for i in range(layers):
        for point in LAYER_ACTS:
            names.append(f"layer{i}.{point}")
            if point == "v":
                names.append(f"layer{i}.probs")
    return names


@contextlib.contextmanager
def patched_reference(model):
    """Within the block, each encoder layer ``L >= 1`` is given the scale of its actual input (the
    previous layer's output scale) instead of the embedding output's (HF #26738): the intended
    integer pipeline, which ``convert_hf_ibert(..., fix_scales=True)`` emits. Restored on exit."""
    layers = list(encoder_of(model).encoder.layer)
    scales: Dict[int, torch.Tensor] = {}
    handles = []

    def record(index):
        def post(mod, args, output):
            scales[index] = output[1]
        return post

    def replace(index):
        def pre(mod, args, kwargs):
            if index - 1 not in scales:
                raise RuntimeError(f"patched_reference: layer {index} ran before layer {index - 1}")
            args = list(args)
            if len(args) > 1:
                args[1] = scales[index - 1]
            else:
                kwargs["hidden_states_scaling_factor"] = scales[index - 1]
            return tuple(args), kwargs
        return pre
    try:
        for i, layer in enumerate(layers):
            handles.append(layer.output.register_forward_hook(record(i)))
            if i:
                handles.append(layer.register_forward_pre_hook(replace(i), with_kwargs=True))
        yield model
    finally:
        for handle in handles:
            handle.remove()

