"""Replays of the HF I-BERT reference between two captured points, each float32 step switchable
to its exact integer meaning.

The computation that leads to a quantization point (a LayerNorm then its QuantAct, a QuantLinear
then its QuantAct, the IntSoftmax, ...) is written as a list of ``Step``s. Each step has a ``real``
form, the reference's own torch float32/float64 operations on the reference's own tensors
(``capture``), and an ``exact`` form, its integer meaning in exact int64 arithmetic with the
reference's constants (its ``weight_integer``/``bias_integer`` buffers, its LayerNorm/GELU/softmax
constants, its dyadic ``batch_frexp`` multipliers). ``replays(steps, ...)`` runs the list once per
``k = 0..len(steps)`` with the first ``k`` steps exact and the rest real:

- ``k = 0`` is the reference itself: it must reproduce the captured integers bit for bit;
- ``k = len(steps)`` is the exact integer meaning of the reference, computed independently of
  intref's graph: intref must equal it;
- an element on which the reference and intref differ is explained by the first step whose
  exactification makes the replay equal intref there (``artifacts``).

Every exact form uses int64 only (float64 BLAS on integers is exact here: every partial sum is
far below 2**53); the wide products go through ``intref.kernels``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List

import numpy as np
import torch
from transformers.models.ibert.quant_modules import batch_frexp

from ...kernels.requant import requantize
from ...kernels.rounding import div_round_half_even
from ...kernels.softmax import exp_code_folded
from ...kernels.sqrt import isqrt
from ...inttypes import MAX_SHIFT
from ...spec.softmax import SoftmaxParams

MASKED = -(1 << 50)          # an exact masked score: below any clamp 30 * x0_int


@dataclass(frozen=True)
class Step:
    key: str
    real: Callable[[dict], None]
    exact: Callable[[dict], None]


def f32(value) -> torch.Tensor:
    """A float32 tensor of ``value``: the tensor itself, or integers rounded once to float32."""
    if isinstance(value, torch.Tensor):
        return value
    return torch.from_numpy(np.asarray(value, dtype=np.float64)).float()


def as_ints(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().numpy().astype(np.int64)


def replays(steps: List[Step], initial: dict, finish: Callable[[dict], np.ndarray]) -> List[np.ndarray]:
    """``finish(state)`` after each of the ``len(steps) + 1`` replays (module docstring)."""
    outs = []
    for k in range(len(steps) + 1):
        state = dict(initial)
        for i, step in enumerate(steps):
            (step.exact if i < k else step.real)(state)
        outs.append(finish(state))
    return outs


def dyadic(new_scale: torch.Tensor, max_shift=MAX_SHIFT):
    """The reference's ``batch_frexp`` of a float64 ratio: (int64 multipliers, int64 shifts).
    Shifts above ``max_shift`` (127, the requantize limit; None: no limit) become ``max_shift``,
    which changes no requantization of an int64 (``|x * m| < 2**95``: every rounding by
    ``2**s``, ``s >= 96``, gives 0)."""
    m, e = batch_frexp(new_scale)
    m, e = m.numpy().astype(np.int64).reshape(-1), e.numpy().astype(np.int64).reshape(-1)
    return m, (e if max_shift is None else np.minimum(e, max_shift))


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """FixedPointMul's ``double(pre_sf) / double(float(z_sf))``, reshaped as it does."""
    ratio = num.type(torch.double) / den.type(torch.float).type(torch.double)
    return ratio if num.dim() == 3 else ratio.view(1, 1, -1)


def _view(sf: torch.Tensor) -> torch.Tensor:
    return sf if sf.dim() == 3 else sf.view(1, 1, -1)


def _requant_exact(z: np.ndarray, pre_sf, z_sf) -> np.ndarray:
    m, e = dyadic(_ratio(pre_sf, z_sf))
    m, e = (m[0], e[0]) if m.size == 1 else (m, e)
    return requantize(z, m, e, rounding="half_even", bits=32, overflow="saturate").astype(np.int64)


def _requant_real(z: torch.Tensor, pre_sf, z_sf) -> torch.Tensor:
    m, e = batch_frexp(_ratio(pre_sf, z_sf))
    return torch.round(z.type(torch.double) * m.type(torch.double) / (2.0 ** e))


def requant_steps(call, main_key: str, identity_key: str, real_main, exact_main, exact_identity) -> List[Step]:
    """The QuantAct (FixedPointMul) of ``call``: its main input to an integer ``z`` (``main_key``),
    its identity input to ``w`` (``identity_key``, when it has one), then the float64 requant.
    ``real_main(state)`` is the float32 real value the reference requantizes; ``exact_main(state)``
    and ``exact_identity`` are the exact integers."""
    n = 2 ** (call.bits - 1) - 1

    def z_real(s):
        s["z"] = torch.round(real_main(s) / _view(call.pre_sf))

    def z_exact(s):
        s["z"] = exact_main(s)

    def w_real(s):
        s["w"] = torch.round(call.identity / _view(call.id_sf))

    def w_exact(s):
        s["w"] = exact_identity

    def out_real(s):
        out = _requant_real(f32_or_double(s["z"]), call.pre_sf, call.z_sf)
        if call.identity is not None:
            out = out + _requant_real(f32_or_double(s["w"]), call.id_sf, call.z_sf)
        s["out"] = as_ints(torch.clamp(out.type(torch.float), -n - 1, n))

    def out_exact(s):
        out = _requant_exact(s["z"], call.pre_sf, call.z_sf)
        if call.identity is not None:
            out = out + _requant_exact(s["w"], call.id_sf, call.z_sf)
        s["out"] = np.clip(out, -n - 1, n)
    steps = [Step(main_key, z_real, z_exact)]
    if call.identity is not None:
        steps.append(Step(identity_key, w_real, w_exact))
    return steps + [Step("requant.float64", out_real, out_exact)]


def f32_or_double(value) -> torch.Tensor:
    """The reference's float32 integer tensor, or exact integers as float64 (exact below 2**53)."""
    if isinstance(value, torch.Tensor):
        return value
    return torch.from_numpy(np.asarray(value, dtype=np.float64))


def layernorm_steps(mod, sf_out) -> List[Step]:
    """IntLayerNorm (eval) from ``state['x'], state['sf']`` (real) / ``state['q']`` (exact) to
    ``state['y']``: the integer ``y_int + bias_int`` whose real value is ``y * sf_out``."""
    shift = int(mod.shift.item())
    sf = mod.dim_sqrt / 2 ** 30
    bias_real = torch.floor((mod.bias.data / mod.weight.data) / sf)
    bias_exact = as_ints(bias_real)
    channels = int(bias_exact.shape[0])

    def mean_real(s):
        xi = f32(s["xi"])
        s["y"] = xi - torch.round(xi.mean(axis=2, keepdim=True))

    def mean_exact(s):
        s["y"] = s["xi"] - div_round_half_even(s["xi"].sum(axis=2, keepdims=True), channels)

    def var_real(s):
        shifted = torch.floor(f32(s["y"]) / 2 ** mod.shift)
        s["var"] = torch.sum(shifted ** 2, axis=2, keepdim=True)

    def var_exact(s):
        shifted = s["y"] >> shift
        s["var"] = (shifted * shifted).sum(axis=2, keepdims=True)

    def set_(key, fn):
        def apply(s):
            s[key] = fn(s)
        return apply
    return [
        Step("ln.input", set_("xi", lambda s: s["x"] / s["sf"]), set_("xi", lambda s: s["q"])),
        Step("ln.mean", mean_real, mean_exact),
        Step("ln.variance", var_real, var_exact),
        Step("ln.sqrt", set_("std", lambda s: torch.floor(torch.sqrt(f32(s["var"]))) * 2 ** mod.shift),
             set_("std", lambda s: isqrt(s["var"]) << shift)),
        Step("ln.factor", set_("factor", lambda s: torch.floor(2 ** 31 / f32(s["std"]))),
             set_("factor", lambda s: (1 << 31) // np.maximum(s["std"], 1))),
        Step("ln.product", set_("y", lambda s: torch.floor(f32(s["y"]) * f32(s["factor"]) / 2)),
             set_("y", lambda s: (s["y"] * s["factor"]) >> 1)),
        Step("ln.bias", set_("y", lambda s: f32(s["y"]) + bias_real), set_("y", lambda s: s["y"] + bias_exact)),
    ]


def gelu_steps(mod) -> List[Step]:
    """IntGELU from ``state['x'], state['sf']`` (real) / ``state['q']`` (the exact accumulator) to
    ``state['y']``, the integer whose real value is ``y * out_sf`` (a 2**35-scale value)."""
    def constants(sf):
        s = sf / mod.k
        b_int = torch.floor(mod.coeff[1] / s)
        c_int = torch.floor(mod.coeff[2] / s ** 2)
        sigmoid_sf = s ** 2 * mod.coeff[0] * 2 ** mod.const
        return b_int, c_int, 1.0 // sigmoid_sf

    def erf_real(s):
        b_int, c_int, _ = constants(s["sf"])
        xi = f32(s["xi"])
        y = torch.sign(xi) * ((torch.min(torch.abs(xi), -b_int) + b_int) ** 2 + c_int)
        s["xi"], s["erf"] = xi, torch.floor(y / 2 ** mod.const)

    def erf_exact(s):
        b_int, c_int, _ = (as_ints(t) for t in constants(s["sf"]))
        xi = s["xi"]
        s["erf"] = (np.sign(xi) * ((np.minimum(np.abs(xi), -b_int) + b_int) ** 2 + c_int)) >> mod.const

    def product_real(s):
        s["y"] = f32(s["xi"]) * (f32(s["erf"]) + constants(s["sf"])[2])

    def product_exact(s):
        s["y"] = s["xi"] * (s["erf"] + as_ints(constants(s["sf"])[2]))

    def acc_real(s):
        s["xi"] = s["x"] / s["sf"]

    def acc_exact(s):
        s["xi"] = s["q"]
    return [Step("gelu.acc", acc_real, acc_exact), Step("gelu.erf", erf_real, erf_exact),
            Step("gelu.product", product_real, product_exact)]


def softmax_steps(mod) -> List[Step]:
    """IntSoftmax from ``state['x'], state['s']`` (real: the masked float scores) / ``state['q']``
    (exact: the integer scores, ``MASKED`` where a key is padding) to ``state['out']`` (0..256).
    The real exp requantization also records ``state['overflow']``: where ``exp_int / exp_sf``
    overflowed float32 (inf), which the clamp then saturates at 32767."""
    const = mod.const
    s16 = mod.act.act_scaling_factor

    def constants(s):
        x0_int = torch.floor(mod.x0 / s)
        return x0_int, torch.floor(mod.coef[1] / s), torch.floor(mod.coef[2] / s ** 2)

    def scores_real(st):
        xi = st["x"] / st["s"]
        st["xi"] = xi - xi.max(dim=-1, keepdim=True)[0]

    def scores_exact(st):
        st["xi"] = st["q"] - st["q"].max(axis=-1, keepdims=True)

    def exp_real(st):
        x0_int, b_int, c_int = constants(st["s"])
        xi = torch.max(f32(st["xi"]), const * x0_int)
        q = torch.floor(xi / x0_int)
        r = xi - x0_int * q
        z = (r + b_int) * r + c_int
        st["exp"] = torch.clamp(torch.floor(z * 2 ** (const - q)), min=0)

    def exp_exact(st):
        x0_int, b_int, c_int = (int(t.item()) for t in constants(st["s"]))
        xi = np.maximum(st["xi"], const * x0_int)
        q = xi // x0_int
        r = xi - x0_int * q
        st["exp"] = (np.maximum((r + b_int) * r + c_int, 0), q)

    def requant_real(st):
        exp = st["exp"]
        if not isinstance(exp, torch.Tensor):   # exact (p, q): the reference holds fl32(p) * 2**(30 - q)
            exp = f32(exp[0]) * 2 ** (const - f32(exp[1]))
        exp_sf = mod.coef[0] * st["s"] ** 2 / 2 ** const
        z_int = torch.round(exp / _view(exp_sf))
        st["overflow"] = torch.isinf(z_int).numpy()
        out = _requant_real(z_int, exp_sf, s16)
        st["e16"] = torch.clamp(out.type(torch.float), -32768, 32767)

    def requant_exact(st):
        x0_int, b_int, c_int = (int(t.item()) for t in constants(st["s"]))
        m, e = dyadic(torch.tensor([1.0 / float(s16.item())], dtype=torch.double), max_shift=None)
        params = SoftmaxParams(x0_int=x0_int, b_int=b_int, c_int=c_int, exp_clamp=const,
                               exp_multiplier=int(m[0]), exp_shift=int(e[0]), exp_bits=16,
                               exp_rounding="half_even", output_bits=8, output_max=256, input_bits=32)
        p, q = st["exp"]
        st["e16"] = exp_code_folded(q, p, params)

    def sum_real(st):
        e = (f32(st["e16"]) * s16.view(-1)) / s16
        st["e"], st["sum"] = e, e.sum(dim=-1, keepdim=True)

    def sum_exact(st):
        st["e"], st["sum"] = st["e16"], st["e16"].sum(axis=-1, keepdims=True)

    def set_(key, fn):
        def apply(st):
            st[key] = fn(st)
        return apply
    return [
        Step("softmax.scores", scores_real, scores_exact),
        Step("softmax.exp", exp_real, exp_exact),
        Step("softmax.exp_requant", requant_real, requant_exact),
        Step("softmax.sum", sum_real, sum_exact),
        Step("softmax.factor", set_("factor", lambda st: torch.floor(2 ** 32 / f32(st["sum"]))),
             set_("factor", lambda st: (1 << 32) // np.maximum(st["sum"], 1))),
        Step("softmax.product", set_("out", lambda st: torch.floor(f32(st["e"]) * f32(st["factor"]) / 2 ** 24)),
             set_("out", lambda st: (st["e"] * st["factor"]) >> 24)),
    ]
