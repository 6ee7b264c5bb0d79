"""intref.testing: the strategies draw only legal inputs and reach the edges they promise;
assert_bit_exact passes exactly when a port agrees bit for bit and names the failure precisely;
the example port file passes; ``import intref`` stays free of hypothesis."""

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis.errors import NoSuchExample
from hypothesis import strategies as st

from intref import kernels
import intref.spec as spec
import intref.spec.softmax as spec_softmax_module
from intref.testing import (assert_bit_exact, assert_identical, exp_cases, gelu_cases, isqrt_inputs, layernorm_cases,
                            matmul_operands, requantize_cases, softmax_cases)
from intref.testing import twins
from intref.testing.strategies import ISQRT_FIVE_UPDATES
from intref.testing.twins import spec_exp, spec_gelu, spec_layernorm, spec_matmul, spec_requantize, spec_softmax

ROOT = pathlib.Path(__file__).resolve().parents[2]


def spec_isqrt(n):
    out = twins.spec_isqrt(n)
    return out.tolist() if out.size else out                    # a (nested) list: an empty one has no shape


# Each edge must turn up in at least 2% of the draws. Hypothesis seeds generation with constants it
# finds in the imported modules, so the exact draw stream depends on what else a run imported
# (CI, with torch, drew a softmax exp tie in 5% of cases, a local run in 8%): the floor asserts that
# an edge is drawn routinely without pinning one draw stream.
RARE_EDGE = 0.02


def collect(strategy, n=300):
    """``n`` draws of ``strategy`` with a fixed seed."""
    drawn = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(case):
        drawn.append(case)
    run()
    assert len(drawn) >= n // 2
    return drawn


def reaches(strategy, predicate, label, n=3000):
    """Some draw of ``strategy`` satisfies ``predicate``: hypothesis searches up to ``n`` draws with a
    fixed seed, so the assertion is about reachability, not about where one draw stream happens to land."""
    try:
        find(strategy, predicate, settings=settings(max_examples=n, derandomize=True, database=None, deadline=None,
                                                    phases=[Phase.generate],
                                                    suppress_health_check=list(HealthCheck)))
    except NoSuchExample:
        pytest.fail(f"no draw of {n} reached: {label}")


# ---- every draw is legal, and the kernel equals itself and its spec twin on it ------------------

CASES = {
    "requantize": (requantize_cases(), kernels.requantize, spec_requantize),
    "requantize check": (requantize_cases(overflows="check", per_channel=True), kernels.requantize, spec_requantize),
    "matmul": (matmul_operands(), kernels.matmul, spec_matmul),
    "isqrt": (isqrt_inputs(), kernels.isqrt, spec_isqrt),
    "gelu": (gelu_cases(), kernels.i_gelu, spec_gelu),
    "exp": (exp_cases(), kernels.i_exp, spec_exp),
    "softmax": (softmax_cases(axis=None), kernels.i_softmax, spec_softmax),
    "layernorm": (layernorm_cases(), kernels.i_layernorm, spec_layernorm),
}


@pytest.mark.parametrize("name", CASES)
@settings(max_examples=100)
@given(data=st.data())
def test_draws_are_legal_and_the_kernel_equals_its_spec_twin(name, data):
    strategy, kernel, twin = CASES[name]
    case = data.draw(strategy)
    before = {k: v.copy() for k, v in case.items() if isinstance(v, np.ndarray)}
    assert_bit_exact(kernel, kernel, **case)          # the kernel accepts the draw (a raise fails the test)
    assert_bit_exact(twin, kernel, **case)
    for k, v in before.items():
        assert_identical(case[k], v, context=f"{name}: {k} was modified")


def test_restricting_options_are_honoured():
    for case in collect(requantize_cases(dtypes=["int8"], roundings="floor", per_channel=True, bits=16, signed=False,
                                         multiplier_range=(1 << 30, (1 << 31) - 1), shift_range=(31, 40)), 60):
        assert case["x"].dtype == np.int8 and case["rounding"] == "floor"
        assert (case["bits"], case["signed"]) == (16, False)
        assert case["multiplier"].shape == case["x"].shape[-1:]
        assert ((1 << 30) <= case["multiplier"]).all() and (case["multiplier"] < 1 << 31).all()
        assert ((31 <= case["shift"]) & (case["shift"] <= 40)).all()
        kernels.requantize(**case)
    for case in collect(gelu_cases(input_bits=16, per_channel=True, source="raw"), 40):
        assert case["params"].input_bits == 16 and case["params"].channels == case["q"].shape[-1]
    pinned = spec.SoftmaxParams(-694, 2707, 2792114, 30, 1 << 30, 36, 16, "half_even", 8, 255, 32)
    assert all(c["params"] is pinned for c in collect(softmax_cases(params=pinned), 20))
    with pytest.raises(ValueError):
        requantize_cases(roundings="nearest")
    with pytest.raises(TypeError):
        gelu_cases(params=42)


# ---- the edges are drawn, often -----------------------------------------------------------------

def is_tie(x, m, s):
    return s > 0 and (x * m) % (1 << s) == 1 << (s - 1)


def requantize_elements(case):
    x = case["x"]
    channels = x.shape[-1:] if x.ndim else ()
    m, s = np.broadcast_to(case["multiplier"], channels), np.broadcast_to(case["shift"], channels)
    for i in np.ndindex(*x.shape):
        c = i[-1] if i else ()
        yield int(x[i]), int(m[c]), int(s[c])


def test_requantize_reaches_ties_extremes_and_per_channel_params():
    drawn = collect(requantize_cases())
    ties = [c for c in drawn if any(is_tie(*e) for e in requantize_elements(c))]
    assert len(ties) >= 0.3 * len(drawn)
    assert any(x * m < 0 and is_tie(x, m, s) for c in ties for x, m, s in requantize_elements(c))
    assert sum(isinstance(c["multiplier"], np.ndarray) for c in drawn) >= 0.2 * len(drawn)
    for dtype in ("int8", "int16", "int32", "int64", "uint8", "uint32"):
        for end in (np.iinfo(dtype).min, np.iinfo(dtype).max):
            reaches(requantize_cases(), lambda c, d=dtype, end=end: c["x"].dtype == d and bool((c["x"] == end).any()),
                    f"x of {dtype} at {end}")
    assert {1 << 31, -(1 << 31), 0} <= {m for c in drawn for _, m, _ in requantize_elements(c)}
    assert {0, 127} <= {s for c in drawn for _, _, s in requantize_elements(c)}  # both ends of the shift range
    assert {c["rounding"] for c in drawn} == set(spec.ROUNDING_MODES)
    clamped = [c for c in drawn for x, m, s in requantize_elements(c)
               if c["bits"] < 32 and abs(spec.rshift_round(x * m, s, c["rounding"])) >= 1 << c["bits"]]
    assert len(clamped) >= 10                             # results beyond the output type: saturation / wrap
    small = collect(requantize_cases(dtypes="int8", roundings="half_even"), 200)
    assert sum(any(is_tie(*e) for e in requantize_elements(c)) for c in small) >= 0.2 * len(small)


def test_matmul_reaches_dtype_extremes_empty_and_broadcast_batches():
    drawn = collect(matmul_operands(), 200)
    for dtype in ("int8", "int16", "int32", "uint8", "uint16"):
        for end in (np.iinfo(dtype).min, np.iinfo(dtype).max):
            reaches(matmul_operands(), lambda c, d=dtype, end=end: any(v.dtype == d and (v == end).any() for v in c.values()),
                    f"an operand of {dtype} at {end}")
    assert any(c["a"].shape[-1] == 0 for c in drawn)                       # K = 0
    assert any(c["a"].shape[:-2] != c["b"].shape[:-2] for c in drawn)      # broadcast batch dims
    wide = collect(matmul_operands(dtypes="int32"), 200)      # only int32 x int32 products pass 2**53
    beyond = sum(np.abs(c["a"].astype(np.int64)).max(initial=0) * np.abs(c["b"].astype(np.int64)).max(initial=0)
                 * c["a"].shape[-1] > 1 << 53 for c in wide)           # beyond float64 exactness
    assert beyond >= RARE_EDGE * len(wide), beyond


def test_isqrt_reaches_squares_their_neighbours_and_the_maximum():
    values = {int(v) for c in collect(isqrt_inputs(dtypes="int64"), 200) for v in c["n"].reshape(-1)}
    roots = {v: int(np.sqrt(float(v))) for v in values}
    assert sum(1 for v in values if spec.isqrt(v) ** 2 == v and v > 4) >= 10
    assert sum(1 for v in values if 4 < v < (1 << 63) - 1 and spec.isqrt(v + 1) ** 2 == v + 1) >= 10
    assert (1 << 63) - 1 in values and 0 in values and len(roots) > 100
    assert values & set(ISQRT_FIVE_UPDATES)


def test_gelu_reaches_clip_points_extremes_and_per_channel_params():
    drawn = collect(gelu_cases(), 200)
    assert sum(c["params"].channels is not None for c in drawn) >= 40
    assert sum(c["params"].out_scale is not None for c in drawn) >= 40    # prepared by prepare_gelu
    hits = {"clip": 0, "min": 0, "max": 0}
    for c in drawn:
        p, q = c["params"], c["q"].astype(np.int64)
        clip = -np.asarray(p.b_int) if p.channels else -p.b_int
        hits["clip"] += bool((np.abs(q) == clip).any())
        hits["min"] += bool((q == -(1 << (p.input_bits - 1))).any())
        hits["max"] += bool((q == (1 << (p.input_bits - 1)) - 1).any())
    assert min(hits.values()) >= RARE_EDGE * len(drawn), hits


def has_exp_tie(row, p):
    """Some entry's exp requantization ``p * m / 2**(s - n + z)`` is exactly k + 1/2."""
    for v in row:
        z, r = spec_softmax_module.exp_range_reduce(v - max(row), p)
        shift = p.exp_shift - p.exp_clamp + z
        product = spec_softmax_module.exp_poly(r, p) * p.exp_multiplier
        if shift > 0 and product % (1 << shift) == 1 << (shift - 1):
            return True
    return False


def test_softmax_reaches_one_hot_masked_constant_rows_and_exp_ties():
    drawn = collect(softmax_cases(axis=None), 400)
    counts = {"one_hot": 0, "masked": 0, "constant": 0, "other_axis": 0, "prepared": 0, "exp_tie": 0}
    for c in drawn:
        lo = -(1 << (c["params"].input_bits - 1))
        rows = np.moveaxis(c["q"].astype(np.int64), c["axis"], -1).reshape(-1, c["q"].shape[c["axis"]])
        long_rows = rows[:, :] if rows.shape[1] > 1 else rows[:0]
        counts["one_hot"] += any(((r == lo).sum() == r.size - 1) and r.max() > lo for r in long_rows)
        counts["masked"] += any((r == lo).any() and r.max() > lo for r in long_rows)
        counts["constant"] += any((r == r[0]).all() for r in long_rows)
        counts["other_axis"] += c["axis"] % c["q"].ndim != c["q"].ndim - 1
        counts["prepared"] += c["params"].exp_scale is not None
        counts["exp_tie"] += any(has_exp_tie(r.tolist(), c["params"]) for r in rows)
    assert min(counts.values()) >= RARE_EDGE * len(drawn), counts


def test_exp_reaches_zero_the_type_minimum_and_exponent_steps():
    drawn = collect(exp_cases(), 300)
    assert all(c["params"].exp_int_max() <= (1 << 63) - 1 for c in drawn)
    steps = sum(any(v < 0 and v % c["params"].x0_int == 0 for v in c["q"].reshape(-1).tolist()) for c in drawn)
    zeros = sum((c["q"] == 0).any() for c in drawn)
    minima = sum((c["q"].astype(np.int64) == -(1 << (c["params"].input_bits - 1))).any() for c in drawn)
    assert min(steps, zeros, minima) >= RARE_EDGE * len(drawn), (steps, zeros, minima)


def test_layernorm_reaches_constant_rows_mean_ties_and_extreme_rows():
    drawn = collect(layernorm_cases(), 400)
    counts = {"constant": 0, "tie": 0, "extreme": 0, "prepared": 0}
    for c in drawn:
        p, q = c["params"], c["q"].astype(np.int64).reshape(-1, c["params"].channels)
        lo, hi = p.input_range()
        out = kernels.i_layernorm(q, p)
        constant = (q == q[:, :1]).all(axis=1) & (p.channels > 1)
        counts["constant"] += bool(constant.any())
        assert (out[constant] == np.asarray(p.bias_int)).all()          # zero variance: the bias
        counts["tie"] += bool(((q.sum(axis=1) % p.channels == p.channels // 2) & (p.channels % 2 == 0)).any())
        counts["extreme"] += bool(((q == lo).all(axis=1) | (q == hi).all(axis=1)).any())
        counts["prepared"] += p.out_scale is not None
    assert min(counts.values()) >= RARE_EDGE * len(drawn), counts


# ---- assert_bit_exact ---------------------------------------------------------------------------

X = np.array([[1, -3, 5, 7], [-128, 127, 0, 9], [100, -100, 3, -5]], dtype=np.int16)
REQ = dict(multiplier=1 << 30, shift=31, rounding="half_even", bits=8, signed=True, overflow="saturate")


def flip_bit(index, bit):
    def port(*args, **kwargs):
        out = kernels.requantize(*args, **kwargs).astype(np.int64)
        out[index] ^= 1 << bit
        return out
    return port


def test_single_bit_fault_is_named_by_index_hex_and_bit():
    with pytest.raises(AssertionError) as failure:
        assert_bit_exact(flip_bit((1, 3), 3), kernels.requantize, X, **REQ)
    message = str(failure.value)
    expected = int(kernels.requantize(X, **REQ)[1, 3])          # 9 / 2 = 4.5 -> 4 (half_even)
    assert expected == 4
    assert "1 of 12 elements differ" in message and "first difference at index [1, 3]" in message
    assert "got      12 (0x0c)" in message and "expected 4 (0x04)" in message
    assert "differing bits: 0x08 (bit 3; two's complement, 8 bits)" in message
    assert "x=9 (int16)" in message and "multiplier=1073741824" in message and "shift=31" in message


def test_tie_rounded_the_other_way_is_named_as_a_tie():
    def half_away_port(x, multiplier, shift, **kw):
        return kernels.requantize(x, multiplier, shift, **{**kw, "rounding": "half_away"})
    with pytest.raises(AssertionError) as failure:
        assert_bit_exact(half_away_port, kernels.requantize, X, **REQ)
    message = str(failure.value)
    # ties at 1/2 -> 0 vs 1, -3/2 -> -2 vs -2 (same), 5/2 -> 2 vs 3, ...: first at [0, 0]
    assert "first difference at index [0, 0]" in message and "got      1 (0x01)" in message
    assert "expected 0 (0x00)" in message and "difference got - expected = 1" in message
    assert "x * multiplier / 2**shift = 0 + 1/2 exactly: a tie" in message and "half_even" in message


def test_shape_mismatch_wrap_and_signedness_faults_are_named():
    with pytest.raises(AssertionError, match=r"port returned shape \(12,\).*intref returned shape \(3, 4\)"):
        assert_bit_exact(lambda *a, **k: kernels.requantize(*a, **k).reshape(-1), kernels.requantize, X, **REQ)
    big = dict(REQ, multiplier=1 << 31, shift=25)                # x * 64: beyond int8 for most x
    wrap_port = lambda *a, **k: kernels.requantize(*a, **{**k, "overflow": "wrap"})  # noqa: E731
    with pytest.raises(AssertionError, match="intref saturates .*the port wraps"):
        assert_bit_exact(wrap_port, kernels.requantize, X, **big)
    unsigned_port = lambda *a, **k: kernels.requantize(*a, **k).view(np.uint8)  # noqa: E731
    with pytest.raises(AssertionError, match=r"got      255 \(0xff\)[\s\S]*expected -1 \(0xff\)[\s\S]*low 8 bits"):
        assert_bit_exact(unsigned_port, kernels.requantize, np.array([-2, 2], np.int16), **REQ)


def test_other_integer_dtypes_lists_and_scalars_pass_non_integers_fail():
    assert_bit_exact(lambda *a, **k: kernels.requantize(*a, **k).astype(np.int64), kernels.requantize, X, **REQ)
    assert_bit_exact(lambda *a, **k: kernels.requantize(*a, **k).tolist(), kernels.requantize, X, **REQ)
    assert_bit_exact(lambda n: np.array([3, 3], np.uint64), kernels.isqrt, np.array([9, 15]))
    assert_bit_exact(lambda n: 7, kernels.isqrt, np.int64(63))                   # a 0-d result, a Python int
    with pytest.raises(AssertionError, match="returned dtype float64"):
        assert_bit_exact(lambda n: np.sqrt(n), kernels.isqrt, np.array([4]))
    with pytest.raises(AssertionError, match="returned list that is not an array"):
        assert_bit_exact(lambda n: [[1], [2, 3]], kernels.isqrt, np.array([[1, 4]]))
    with pytest.raises(AssertionError, match=r"returned None \(NoneType\) at index \[\]"):
        assert_bit_exact(lambda n: None, kernels.isqrt, np.int64(4))
    with pytest.raises(AssertionError, match=r"got      18446744073709551615 \(0xffffffffffffffff\)"):
        assert_bit_exact(lambda n: np.array([2**64 - 1], np.uint64), kernels.isqrt, np.array([4]))


def test_a_port_writing_into_its_inputs_cannot_change_the_verdict():
    x = X.copy()

    def vandal(x, *args, **kwargs):
        out = kernels.requantize(x, *args, **kwargs)
        x[...] = 0
        return out
    assert_bit_exact(vandal, kernels.requantize, x, **REQ)
    assert_identical(x, X)


def test_row_kernels_show_the_row_and_matmul_the_row_and_column():
    params = spec.SoftmaxParams(-694, 2707, 2792114, 30, 1 << 30, 36, 16, "half_even", 8, 255, 32)
    q = np.array([[0, -500, -2000], [10, 10, 10]], dtype=np.int32)
    off = lambda q, params, axis=-1: kernels.i_softmax(q, params, axis).astype(np.int64) + (q == 10)  # noqa: E731
    with pytest.raises(AssertionError, match=r"index \[1, 0\][\s\S]*q\[1, :\]=\[10, 10, 10\] \(int32\)"):
        assert_bit_exact(off, kernels.i_softmax, q, params)
    a, b = np.arange(6, dtype=np.int8).reshape(2, 3), np.arange(12, dtype=np.int8).reshape(3, 4)
    fault = np.zeros((2, 4), dtype=np.int64)
    fault[1, 2] = -1
    with pytest.raises(AssertionError, match=r"a\[1, :\]=\[3, 4, 5\] \(int8\), b\[:, 2\]=\[2, 6, 10\] \(int8\)"):
        assert_bit_exact(lambda a, b: kernels.matmul(a, b) + fault, kernels.matmul, a, b)


def test_assert_identical_is_unchanged():
    assert_identical(np.array([1, 2], np.int8), np.array([1, 2], np.int8))
    with pytest.raises(AssertionError, match="dtype int16 != expected int8"):
        assert_identical(np.array([1], np.int16), np.array([1], np.int8))
    numpy_int = r"(np.int64\()?"                 # NumPy 2 reprs a scalar as np.int64(3)
    with pytest.raises(AssertionError, match=rf"ctx: 1 of 2 elements differ; first at \[1\]: got {numpy_int}3\)?, "
                                             rf"expected {numpy_int}2"):
        assert_identical(np.array([1, 3]), np.array([1, 2]), context="ctx")


# ---- the example, the docs, the import boundary -------------------------------------------------

def test_the_example_port_file_passes():
    source = ROOT / "examples" / "test_my_port.py"
    module_spec = importlib.util.spec_from_file_location("example_test_my_port", source)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    tests = [getattr(module, name) for name in dir(module) if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test()


def test_the_docs_cover_every_public_name():
    import intref.testing

    text = (ROOT / "docs" / "testing-your-port.md").read_text()
    missing = [name for name in intref.testing.__all__ if f"`{name}" not in text]
    assert not missing


def test_import_intref_does_not_import_hypothesis():
    code = ("import sys, intref, intref.kernels, intref.quant\n"
            "from intref.testing import assert_bit_exact, assert_identical\n"
            "assert 'hypothesis' not in sys.modules, 'imported early'\n"
            "from intref.testing import requantize_cases\n"
            "assert 'hypothesis' in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
