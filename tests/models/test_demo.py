"""The demo encoder: the interpreter's output equals the same computation written directly as
kernel calls (no ops, no interpreter), and the model is deterministic and close to its float twin."""

import numpy as np
import pytest

import intref
from intref import kernels
from intref.models.demo import DEMO_CONFIG, make_demo, token_batch
from intref.models.float_encoder import forward
from intref.spec.gelu import GeluParams
from intref.spec.layernorm import LayerNormParams
from intref.spec.softmax import SoftmaxParams
from intref.testing import assert_identical


@pytest.fixture(scope="module")
def demo():
    return make_demo()


class Direct:
    """The encoder as kernel calls, reading constants from the graph by node and tensor name."""

    def __init__(self, graph):
        self.graph = graph
        self.nodes = {node.name: node for node in graph.nodes}

    def t(self, name):
        return self.graph.tensors[name].data

    def a(self, node):
        return self.nodes[node].attributes

    def requant(self, x, node, bits=8):
        at = self.a(node)
        return kernels.requantize(x, at["multiplier"], at["shift"], rounding="half_even", bits=bits)

    def add(self, a, b, node, bits):
        at = self.a(node)
        return kernels.add_requantized(a, b, at["multiplier_a"], at["shift_a"], at["multiplier_b"], at["shift_b"],
                                       bits=bits)

    def linear(self, x, node):
        return kernels.matmul(x, self.t(f"{node}.weight").T) + self.t(f"{node}.bias").astype(np.int64)

    def layernorm(self, x, node, input_bits):
        at = self.a(node)
        params = LayerNormParams(channels=x.shape[-1], shift=at["shift"], bias_int=at["bias_int"], input_bits=input_bits)
        return kernels.i_layernorm(x, params)

    def forward(self, ids, mask):
        pad = DEMO_CONFIG.pad_token_id
        word = self.t("emb.word.table")[ids]
        total = self.add(word, self.t("emb.token_type.row0"), "emb.word_type", 16)
        real = (ids != pad).astype(np.int64)
        positions = np.cumsum(real, axis=1) * real + pad
        total = self.add(total, self.t("emb.position.table")[positions], "emb.sum", 16)
        h = self.requant(self.layernorm(total, "emb.ln", 16), "emb.out")
        additive = np.where(mask != 0, 0, -(1 << 31)).astype(np.int64)[:, None, None, :]
        for i in range(DEMO_CONFIG.layers):
            h = self.layer(h, additive, f"layer{i}")
        return h

    def layer(self, h, additive, name):
        heads = DEMO_CONFIG.heads
        b, s, width = h.shape

        def split(x):
            return x.reshape(b, s, heads, width // heads).transpose(0, 2, 1, 3)

        q, k, v = (split(self.requant(self.linear(h, f"{name}.{p}.linear"), f"{name}.{p}")) for p in "qkv")
        scores = kernels.matmul(q, k.transpose(0, 1, 3, 2))
        scores = np.where(additive <= -(1 << 31), -(1 << 31), scores + additive)  # a masked key's score is the minimum
        at = self.a(f"{name}.probs")
        sm = SoftmaxParams(**{key: at[key] for key in ("x0_int", "b_int", "c_int", "exp_clamp", "exp_multiplier",
                                                        "exp_shift", "exp_bits", "exp_rounding", "output_bits",
                                                        "output_max")}, input_bits=32)
        probs = kernels.i_softmax(scores, sm)
        context = kernels.matmul(probs, v).transpose(0, 2, 1, 3).reshape(b, s, width)
        ctx8 = self.requant(context, f"{name}.context")
        total = self.add(self.linear(ctx8, f"{name}.attn.linear"), h, f"{name}.attn.sum", 22)
        a8 = self.requant(self.layernorm(total, f"{name}.attn.ln", 22), f"{name}.attn.out")
        a_in = self.requant(a8, f"{name}.ffn.in")
        at = self.a(f"{name}.gelu")
        gp = GeluParams(b_int=at["b_int"], c_int=at["c_int"], shift_int=at["shift_int"],
                        guard_shift=at["guard_shift"], input_bits=32)
        g8 = self.requant(kernels.i_gelu(self.linear(a_in, f"{name}.ffn.linear1"), gp), f"{name}.gelu.out")
        g_in = self.requant(g8, f"{name}.ffn.mid")
        total = self.add(self.linear(g_in, f"{name}.ffn.linear2"), a_in, f"{name}.ffn.sum", 22)
        return self.requant(self.layernorm(total, f"{name}.ffn.ln", 22), f"{name}.out")


@pytest.mark.parametrize("batch, seq, seed", [(1, 7, 0), (4, 32, 1), (8, 32, 2), (3, 5, 3)])
def test_interpreter_equals_direct_kernel_composition(demo, batch, seq, seed):
    graph, _ = demo
    ids, mask = token_batch(np.random.default_rng(seed), batch, seq, min_len=min(4, seq))
    got = intref.run(graph, {"input_ids": ids, "attention_mask": mask})["last_hidden_state"]
    expected = Direct(graph).forward(ids, mask)
    assert_identical(got, expected, context="demo last_hidden_state")


def test_every_traced_value_has_its_declared_storage_dtype(demo):
    graph, _ = demo
    ids, mask = token_batch(np.random.default_rng(9), 2, 16)
    trace = intref.run(graph, {"input_ids": ids, "attention_mask": mask}, trace=True)
    for name, value in trace.items():
        info = graph.values[name]
        assert value.dtype == info.type.storage, name
        assert info.lo <= int(value.min()) and int(value.max()) <= info.hi, (name, info.lo, info.hi)


def test_demo_is_deterministic(demo):
    graph, _ = demo
    again, _ = make_demo()
    assert [n.name for n in again.nodes] == [n.name for n in graph.nodes]
    for node_a, node_b in zip(graph.nodes, again.nodes):
        assert node_a.attributes == node_b.attributes, node_a.name
    for name, tensor in graph.tensors.items():
        assert_identical(again.tensors[name].data, tensor.data, context=name)


def test_demo_tracks_its_float_model(demo):
    graph, model = demo
    ids, mask = token_batch(np.random.default_rng(11), 8, 32)
    out = intref.run(graph, {"input_ids": ids, "attention_mask": mask})["last_hidden_state"]
    real = intref.dequantize(graph, "last_hidden_state", out)
    keep = mask.astype(bool)
    a, b = real[keep].ravel(), forward(model, ids, mask)[keep].ravel()
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.998


def test_padding_does_not_change_real_tokens(demo):
    graph, _ = demo
    ids, mask = token_batch(np.random.default_rng(12), 1, 12, min_len=12)
    short = intref.run(graph, {"input_ids": ids, "attention_mask": mask})["last_hidden_state"]
    padded_ids = np.concatenate([ids, np.full((1, 20), DEMO_CONFIG.pad_token_id, np.int32)], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((1, 20), np.int8)], axis=1)
    long = intref.run(graph, {"input_ids": padded_ids, "attention_mask": padded_mask})["last_hidden_state"]
    assert_identical(long[:, :12], short)
