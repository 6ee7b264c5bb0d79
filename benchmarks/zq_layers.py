"""Weight schemes layer by layer on all-MiniLM-L6-v2's real weights: output cosine of each integer
Linear against the float product, int8 inputs, no calibration (a script; seconds, not minutes).

    python benchmarks/zq_layers.py

For each of the 36 Linear weights: random int8 inputs x (64 rows, a fixed seed), the float reference
``x @ W^T``, and the integer result dequantized: ``Linear`` for per-channel and output-row groups,
``GroupLinear`` (``intref.kernels.group_linear``, common scale per row, no fraction bits) for input
groups; ``MSE clip``: the clip ratio per block searched for the least weight MSE
(``intref.quant.clip_search``). Prints the mean and minimum cosine over the layers of each kind.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intref.convert.minilm import minilm_path  # noqa: E402
from intref.convert.ptq.safetensors import read_safetensors  # noqa: E402
from intref.kernels import group_linear, matmul  # noqa: E402
from intref.quant import prepare_group_linear, quantize_input_groups, quantize_row_groups  # noqa: E402

SCHEMES = [("W8 per channel", 8, None, None, "max"), ("W4 per channel", 4, None, None, "max"),
           ("W4 per channel, MSE clip", 4, None, None, "mse"), ("W4 48 output-row groups", 4, "out", 48, "max"),
           ("W4 input groups of 128", 4, "in", 128, "max"), ("W4 input groups of 128, MSE clip", 4, "in", 128, "mse"),
           ("W4 input groups of 64", 4, "in", 64, "max"), ("W4 input groups of 64, MSE clip", 4, "in", 64, "mse"),
           ("W4 input groups of 32", 4, "in", 32, "max"), ("W4 input groups of 32, MSE clip", 4, "in", 32, "mse")]


def integer_output(x, w, bits, axis, size, clip):
    if axis == "in":
        q, scale = quantize_input_groups(w, bits, size, clip=clip)
        params = prepare_group_linear(q, scale, 1.0, 127, size, max_frac_bits=0)
        return group_linear(x, q, params.multiplier, params.shift, group_size=size) * params.out_scale
    q, scale = quantize_row_groups(w, bits, size if axis == "out" else w.shape[0], clip=clip)
    return matmul(x, np.ascontiguousarray(q.T)) * scale.reshape(-1)


def main() -> int:
    tensors = read_safetensors(Path(minilm_path()) / "model.safetensors")
    weights = {k: np.asarray(v, np.float64) for k, v in tensors.items() if k.endswith(".weight") and v.ndim == 2
               and ".layer." in k}
    rng = np.random.default_rng(0)
    kinds = {"attention (Q, K, V, out)": lambda k: ".attention." in k, "feed-forward": lambda k: ".attention." not in k}
    print("| scheme | " + " | ".join(f"{kind} mean / min cosine" for kind in kinds) + " |\n|---|---|---|")
    for label, bits, axis, size, clip in SCHEMES:
        cells = []
        for test in kinds.values():
            cos = []
            for name, w in sorted(weights.items()):
                if not test(name):
                    continue
                x = rng.integers(-127, 128, (64, w.shape[1])).astype(np.int8)
                ref, got = x @ w.T, integer_output(x, w, bits, axis, size, clip)
                cos.append(float((ref * got).sum() / np.linalg.norm(ref) / np.linalg.norm(got)))
            cells.append(f"{np.mean(cos):.5f} / {np.min(cos):.5f}")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
