"""ZeroQuant's fine-grained schemes for ``intref convert ptq`` (issue 12): weight bits per layer kind,
weight groups, token-wise activations. One hook into the encoder wiring, ``emit_linear``.

    --weights w8|w4|w4/8      w4/8: int4 for the feed-forward Linears, int8 for attention (Q/K/V, out)
    --group-size N | --groups N, --group-axis in|out
                              in:  one scale per N inputs of a row (GroupLinear, ``--groups`` = K / N;
                                   its multipliers uint16, ``GROUP_MANTISSA_BITS``)
                              out: ZeroQuant's N row groups (``--group-size`` = rows per group); a
                                   per-channel scale, so a plain Linear runs it
                              neither: one scale per output row
    --int8-groups on|off      whether w4/8's int8 layers (attention) are grouped too; off (the w4/8
                              default): one scale per row, a plain Linear without multipliers
    --act static|token        token: every Linear input is kept at 16 bits (same calibrated range),
                              quantized per token to int8 at run time (TokenScale, TokenQuantize),
                              and the accumulator is brought back by TokenRequantize
    --table-bits 8|4          4: the word-embedding table in int4 with one scale per row (per token),
                              applied after the lookup by TokenRequantize (``emit_int4_table``)
    --weight-quant max|mse|act|gptq
                              how weights and scales are chosen (``weight_quant.py``); w4 and w4/8
                              default to ``W4_QUANT``, w8 to max-abs

Token mode, per Linear with 16-bit input ``x`` at scale ``s16`` and weight unit ``u[n]`` (the row scale,
or GroupLinear's common ``C[n] / 2**f``): ``t = TokenScale(x)``, ``q = TokenQuantize(x, t)`` (int8),
``acc = GEMM(q)`` in units of ``t * s16 * u[n]``, then ``y = TokenRequantize(acc, t, 1, e) + bias`` with
``e = 8`` (int8 weights) or ``4`` (int4): an int32 accumulator in units of ``2**e * s16 * u[n]``, the
unit an int8 input times int8 weights would have, which the I-BERT wiring downstream (its int32
GELU, residual, requantize) was derived for: int4 weights' coarser scale (max / 7) alone would leave
the GELU input 16x coarser. Static GroupLinear gets the same ``8 - bits`` fraction bits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...quant.groupwise import prepare_group_linear
from ...quant.symmetric import quantize_symmetric
from .weight_quant import WEIGHT_QUANTS, quantize_weight

WEIGHTS = ("w8", "w4", "w4/8")
ACTS = ("static", "token")
TOKEN_INPUT_BITS = 16        # the static width of a Linear input in token mode
TOKEN_BITS = 8               # the per-token quantized width
TOKEN_SHIFT = 8              # y = round(acc * t / 2**8): back to the int8-range accumulator scale
GROUP_MANTISSA_BITS = 15     # GroupLinear multipliers in [0, 2**15]: uint16, a float16 group scale's precision


@dataclass(frozen=True)
class Scheme:
    """One ``intref convert ptq`` weight/activation scheme (module docstring)."""

    weights: str = "w8"
    group_size: Optional[int] = None
    groups: Optional[int] = None
    group_axis: str = "in"
    act: str = "static"
    table_bits: int = 8
    weight_quant: str = "max"
    group_int8: bool = True

    def __post_init__(self):
        if self.weights not in WEIGHTS or self.act not in ACTS or self.group_axis not in ("in", "out"):
            raise ValueError(f"scheme: weights {self.weights!r} (one of {WEIGHTS}), act {self.act!r} (one of {ACTS}), "
                             f"group_axis {self.group_axis!r} (in or out)")
        if self.weight_quant not in WEIGHT_QUANTS:
            raise ValueError(f"scheme: weight quantization {self.weight_quant!r} is not one of {WEIGHT_QUANTS}")
        if type(self.group_int8) is not bool:
            raise ValueError(f"scheme: group_int8 {self.group_int8!r} is not a bool")
        if self.table_bits not in (4, 8):
            raise ValueError(f"scheme: table_bits {self.table_bits!r} is not 4 or 8")
        if self.group_size is not None and self.groups is not None:
            raise ValueError("scheme: give --group-size or --groups, not both")
        for value in (self.group_size, self.groups):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"scheme: group size/count {value!r} must be an int >= 1")

    @property
    def is_default(self) -> bool:
        return self == Scheme()

    def bits(self, name: str) -> int:
        """Weight bits of the Linear ``name`` (``layer3.ffn.linear1`` is a feed-forward layer)."""
        ffn = ".ffn." in name
        return {"w8": 8, "w4": 4, "w4/8": 4 if ffn else 8}[self.weights]

    def group(self, n_out: int, k: int, bits: int = 4) -> Optional[int]:
        """Inputs per group (axis in) or rows per group (axis out) for an ``[n_out, k]`` weight of ``bits``;
        None: one scale per row (also for int8 weights when ``group_int8`` is off). An axis shorter than
        ``group_size`` is one group; a size that does not divide the axis is an error naming it."""
        length = k if self.group_axis == "in" else n_out
        if (self.group_size is None and self.groups is None) or (bits == 8 and not self.group_int8):
            return None
        size = min(self.group_size, length) if self.group_size is not None else length // self.groups
        if size < 1 or length % size:                  # a row shorter than the group size is one group
            raise ValueError(f"scheme: groups of {size} do not divide the {self.group_axis}put axis of length {length}")
        return size

    def describe(self) -> str:
        grouping = "per channel" if self.group_size is None and self.groups is None else (
            f"{self.group_axis}-groups " + (f"of {self.group_size}" if self.group_size else f"x{self.groups}"))
        if grouping != "per channel" and self.weights != "w4" and not self.group_int8:
            grouping += " (int8 layers per channel)"
        fit = "" if self.weight_quant == "max" else f", weights by {self.weight_quant}"
        return f"{self.weights} {grouping}, act {self.act}{fit}" + (", int4 word table" if self.table_bits == 4 else "")


# the most accurate W4/8 setting measured on all-MiniLM-L6-v2 (README, "ZeroQuant schemes";
# benchmarks/zq_layers.py: input groups of 32 > 64 > 128 > per channel > 48 output-row groups)
W4_QUANT = "gptq"
W48_DEFAULTS = dict(group_size=32, group_axis="in", act="token", table_bits=8, weight_quant=W4_QUANT, group_int8=False)


W4_SMOOTHQUANT = 0.5     # measured best with int4 weights (docs/ptq.md); 8-bit weights keep DEFAULTS' 0.9


def default_smoothquant(scheme: Scheme, w8_alpha: float) -> float:
    """SmoothQuant's alpha when none is given: ``W4_SMOOTHQUANT`` for int4 weights, else ``w8_alpha``."""
    return W4_SMOOTHQUANT if scheme.weights in ("w4", "w4/8") else w8_alpha


def scheme_from_options(weights: str = "w8", group_size: Optional[int] = None, groups: Optional[int] = None,
                        group_axis: Optional[str] = None, act: Optional[str] = None,
                        table_bits: Optional[int] = None, weight_quant: Optional[str] = None,
                        group_int8: Optional[bool] = None) -> Scheme:
    """The scheme of the command-line options; ``--weights w4/8`` without the others takes ``W48_DEFAULTS``,
    ``--weights w4`` its weight quantization."""
    defaults = W48_DEFAULTS if weights == "w4/8" else dict(
        group_size=None, group_axis="in", act="static", table_bits=8,
        weight_quant=W4_QUANT if weights == "w4" else "max", group_int8=True)
    no_groups = group_size is None and groups is None
    return Scheme(weights=weights, group_size=defaults["group_size"] if no_groups else group_size,
                  groups=None if no_groups else groups, group_axis=group_axis or defaults["group_axis"],
                  act=act or defaults["act"], table_bits=table_bits or defaults["table_bits"],
                  weight_quant=weight_quant or defaults["weight_quant"],
                  group_int8=defaults["group_int8"] if group_int8 is None else group_int8)


def add_arguments(parser) -> None:
    """The scheme options of ``intref convert ptq``."""
    parser.add_argument("--weights", choices=WEIGHTS, default="w8",
                        help="ptq: weight bits; w4/8 = int4 feed-forward, int8 attention (default %(default)s)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--group-size", type=int, metavar="N", help="ptq: weights per group (inputs or rows)")
    group.add_argument("--groups", type=int, metavar="N", help="ptq: groups per row (in) or per matrix (out)")
    parser.add_argument("--group-axis", choices=("in", "out"),
                        help="ptq: groups along the input dimension or of output rows (default in)")
    parser.add_argument("--int8-groups", choices=("on", "off"),
                        help="ptq: whether w4/8's int8 layers (attention) use the groups too (default off for w4/8: "
                             "one scale per row, no multipliers)")
    parser.add_argument("--act", choices=ACTS, help="ptq: activation quantization (default static; token for w4/8)")
    parser.add_argument("--table-bits", type=int, choices=(8, 4),
                        help="ptq: word-embedding table bits; 4: int4 with one scale per row (default 8)")
    parser.add_argument("--weight-quant", choices=WEIGHT_QUANTS,
                        help="ptq: how weights and their scales are chosen: max (max-abs), mse (a clip per block for "
                             "the least weight MSE), act (that MSE weighted by the calibrated E[x^2] of each input), "
                             f"gptq (act's clip, GPTQ's error feedback) (default max; {W4_QUANT} for w4, w4/8)")


def options_from_args(args) -> dict:
    """``build_ptq``'s scheme keyword arguments from parsed command-line options."""
    return dict(weights=args.weights, group_size=args.group_size, groups=args.groups, group_axis=args.group_axis,
                act=args.act, table_bits=args.table_bits, weight_quant=args.weight_quant,
                group_int8=None if args.int8_groups is None else args.int8_groups == "on")


LINEARS = ("q.linear", "k.linear", "v.linear", "attn.linear", "ffn.linear1", "ffn.linear2")   # per layer


def weight_quant_metadata(scheme: Scheme, layers: int) -> dict:
    """``metadata.weight_quant``: every encoder Linear's weight tensor -> ``scheme.weight_quant`` (the one
    method the converter applies to all of them; the default scheme's plain Linears are max-abs)."""
    return {f"layer{i}.{linear}.weight": scheme.weight_quant for i in range(layers) for linear in LINEARS}


def token_scales(point_scales: dict, layers: int) -> dict:
    """Token mode: every point that feeds a Linear keeps its calibrated range at 16 bits."""
    ratio = ((1 << (TOKEN_BITS - 1)) - 1) / ((1 << (TOKEN_INPUT_BITS - 1)) - 1)
    out = dict(point_scales)
    points = ["emb.out"] + [f"layer{i}.{p}" for i in range(layers) for p in
                            ("context", "attn.out", "ffn.in", "gelu.out", "ffn.mid")]
    points += [f"layer{i}.out" for i in range(layers - 1)]
    for point in points:
        out[point] = point_scales[point] * ratio
    return out


def apply(scheme: Scheme, point_scales: dict, wiring, layers: int, inputs: Optional[dict] = None):
    """``(point_scales, wiring)`` for ``scheme``: the default scheme changes nothing (int8 per-channel
    Linears as before); any other installs ``emit_linear``, and token mode widens the Linear inputs.
    ``inputs``: Linear name -> ``InputStats`` of its (smoothed) input, for ``weight_quant`` act and gptq."""
    if scheme.is_default:
        return point_scales, wiring
    token = scheme.act == "token"
    inputs = inputs or {}
    wiring = dataclasses.replace(wiring, act_bits=TOKEN_INPUT_BITS if token else wiring.act_bits,
                                 linear_hook=lambda enc, *args: emit_linear(enc, scheme, *args,
                                                                            stats=inputs.get(args[-1])),
                                 table_hook=emit_int4_table if scheme.table_bits == 4 else None)
    return (token_scales(point_scales, layers) if token else point_scales), wiring


def emit_linear(enc, scheme: Scheme, x, x_scale: float, weight: np.ndarray, bias: np.ndarray, name: str, *,
                stats=None):
    """Add the nodes of one Linear under ``scheme`` to ``enc.b``; return ``(acc, acc_scale[N])``: an int32
    accumulator and its real per-channel scale, as ``intref.models.ibert``'s plain Linear does.
    ``stats``: the input's ``InputStats`` (``weight_quant`` act and gptq; ValueError naming the Linear without)."""
    b = enc.b
    bits = scheme.bits(name)
    n_out, k = weight.shape
    size = scheme.group(n_out, k, bits)
    token = scheme.act == "token"
    if token:
        t = b.add("TokenScale", [x], "int32", name=f"{name}.token_scale", attributes={"bits": TOKEN_BITS})
        x = b.add("TokenQuantize", [x, t], f"int{TOKEN_BITS}", name=f"{name}.token_q", attributes={"bits": TOKEN_BITS})
    x_max = (1 << (TOKEN_BITS - 1)) - 1 if token else 1 << 7          # |q| <= 127; a static int8 input: 128
    weight_type = "int4" if bits == 4 else "int8"
    layout = "int4_packed" if bits == 4 else "plain"
    w_int, w_scale = quantize_weight(weight, bits, scheme.weight_quant, scheme.group_axis, size, stats, name)
    if size is not None and scheme.group_axis == "in":
        # the unit of an int8 per-channel accumulator: int4 weights (scale ~ max / 7) get 8 - 4 fraction bits
        params = prepare_group_linear(w_int, w_scale, 1.0, x_max, size, max_frac_bits=0 if token else 8 - bits,
                                      mantissa_bits=GROUP_MANTISSA_BITS)
        unit = params.out_scale                                   # C[n] / 2**f, per unit of x
        inputs = [x, b.tensor(f"{name}.weight", w_int, weight_type, layout=layout),
                  b.tensor(f"{name}.multiplier", params.multiplier.astype(np.uint16), "uint16")]
        gemm = ("GroupLinear", {"group_size": size, "shift": params.shift})
    else:
        unit = w_scale.reshape(-1)
        inputs = [x, b.tensor(f"{name}.weight", w_int, weight_type, layout=layout, scale=unit, scale_axis=0)]
        gemm = ("Linear", {})
    if not token:
        acc_scale = unit * x_scale
        inputs.append(b.tensor(f"{name}.bias", enc.d.bias(bias, acc_scale), "int32", scale=acc_scale))
        return b.add(gemm[0], inputs, "int32", name=name, attributes=gemm[1], scale=acc_scale), acc_scale
    acc = b.add(gemm[0], inputs, "int32", name=f"{name}.token_acc", attributes=gemm[1])
    shift = TOKEN_SHIFT - (8 - bits)    # int4 weights: a 16x finer unit, that of an int8 accumulator
    acc_scale = unit * x_scale * (1 << shift)
    bias_int = b.tensor(f"{name}.bias", enc.d.bias(bias, acc_scale), "int32", scale=acc_scale)
    out = b.add("TokenRequantize", [acc, t, bias_int], "int32", name=name, scale=acc_scale,
                attributes={"multiplier": 1, "shift": shift})
    return out, acc_scale


ROW_MANTISSA_BITS = 14       # a word-table row's scale relative to the largest: m_row / 2**14, int16


def emit_int4_table(enc, ids, table: np.ndarray, name: str):
    """An int4 word table with one scale per row (per token): ``e = Embedding(ids, q4)``, the row's
    mantissa ``r = Embedding(ids, m_row)`` (``[V, 1]`` int16, ``m_row = round(S_v / S_max * 2**14)`` in
    ``[1, 2**14]``), then ``TokenRequantize(e, r)``: ``round(e * r * M / 2**s)`` int8 at ``S_max * 7 / 127``,
    the row's real scale ``S_max * m_row / 2**14`` applied with integers. Returns ``(value, scale)``."""
    b = enc.b
    q, scale = quantize_symmetric(np.asarray(table, np.float64), 4, axis=0, clamp="narrow")   # scale [V, 1]
    s_max = float(scale.max())
    rows = np.clip(np.rint(scale / s_max * (1 << ROW_MANTISSA_BITS)), 1, 1 << ROW_MANTISSA_BITS).astype(np.int16)
    e = b.add("Embedding", [ids, b.tensor(f"{name}.table", q, "int4", layout="int4_packed")], "int4",
              name=f"{name}.q4")
    r = b.add("Embedding", [ids, b.tensor(f"{name}.row_scale", rows, "int16")], "int16", name=f"{name}.row")
    s_out = s_max * 7 / 127
    multiplier, shift = enc.d.ratio(s_max / (1 << ROW_MANTISSA_BITS) / s_out)
    out = b.add("TokenRequantize", [e, r], "int8", name=name, scale=s_out,
                attributes={"multiplier": int(multiplier), "shift": int(shift)})
    return out, s_out
