"""Float references and I-BERT's Table 1 (notebooks/gelu.ipynb's claims).

"L2" in Table 1 is the RMS over a dense uniform grid on [-4, 4]: the two float baselines recomputed
that way give the printed digits, and i-GELU through the integer pipeline (16-bit input, the
reference's >> 14 guard) does too.
"""

import math

import numpy as np
import pytest

from intref.kernels import i_gelu
from intref.quant import prepare_gelu
from intref.quant.reference import IBERT_TABLE1, gelu, gelu_sigmoid, h_gelu, rms_and_max, softmax

GRID = np.linspace(-4.0, 4.0, 100001)


def test_gelu_matches_erf_at_hand_points():
    assert gelu(np.array([0.0]))[0] == 0.0
    assert gelu(np.array([1.0]))[0] == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))), abs=1e-15)
    assert gelu(np.array([-10.0]))[0] == pytest.approx(0.0, abs=1e-20)


@pytest.mark.parametrize("name, f", [("x*sigmoid(1.702x)", gelu_sigmoid), ("h-GELU", h_gelu)])
def test_float_baselines_reproduce_table_1_to_the_printed_digits(name, f):
    """Measured: x*sigmoid(1.702x) 0.01181 / 0.02033, h-GELU 0.03060 / 0.06871."""
    rms, worst = rms_and_max(f(GRID) - gelu(GRID))
    printed_rms, printed_max = IBERT_TABLE1[name]
    assert abs(rms - printed_rms) <= 0.0005 and abs(worst - printed_max) <= 0.0009, (rms, worst)


def test_i_gelu_reproduces_table_1_to_the_printed_digits():
    """16-bit input, S = 4 / 32767, guard >> 14, every q: RMS 0.00819, max 0.01822 (Table 1: 0.0082 / 0.018)."""
    scale = 4.0 / 32767
    params = prepare_gelu(scale, input_bits=16, guard_shift=14)
    q = np.arange(-32767, 32768, dtype=np.int64)
    rms, worst = rms_and_max(i_gelu(q, params) * params.out_scale - gelu(q * scale))
    printed_rms, printed_max = IBERT_TABLE1["i-GELU"]
    assert round(rms, 4) == printed_rms and round(worst, 3) == printed_max, (rms, worst)


def test_h_gelu_is_exact_outside_its_ramp():
    x = np.array([-5.0, -4.0, 4.0, 5.0]) / 1.702          # |1.702 x| > 3: ReLU6 is 0 or 6
    assert np.array_equal(h_gelu(x), [0.0, 0.0, x[2], x[3]])


def test_softmax_rows_sum_to_one_and_survive_large_inputs():
    rows = np.array([[1000.0, 0.0, -1000.0], [1.0, 1.0, 1.0]])
    out = softmax(rows)
    assert np.allclose(out.sum(axis=-1), 1.0) and out[0, 0] == 1.0 and np.allclose(out[1], 1 / 3)
