"""The int64 requantization path equals the general 95-bit path on both sides of its proof
boundary, and the planner picks the general path one step past it."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.inttypes import INT64_MAX, IntType
from intref.kernels.requant import requantize
from intref.kernels.requant_fast import int64_product_proven, requantize_int64, round_product_int64
from intref.kernels.rounding import mul_shift_round
from intref.spec.rounding import ROUNDING_MODES


def general(x, m, s, rounding):
    """The general path's exact result modulo 2**64 (its ``low64``), as int64."""
    return mul_shift_round(x, np.int64(m), np.int64(s), rounding).low64


def extremes(bound: int, rng) -> np.ndarray:
    """``+-bound`` and its neighbours inside, 0, +-1, powers of two and random values in [-bound, bound]."""
    picks = [bound, -bound, bound - 1, -bound + 1, 0, 1, -1]
    picks += [v for k in range(63) for v in (1 << k, -(1 << k), (1 << k) - 1) if abs(v) <= bound]
    picks += [int(v) for v in rng.integers(-bound, bound, size=64, endpoint=True)]
    return np.array(picks, dtype=np.int64)


def test_proof_boundary_is_exactly_int64():
    assert int64_product_proven(INT64_MAX, [1], [0])
    assert int64_product_proven(INT64_MAX // 3, [3, -2], [62])
    assert not int64_product_proven(INT64_MAX // 3 + 1, [3], [0])       # 3 * that = 2**63 + 1 > 2**63 - 1
    assert int64_product_proven(1 << 32, [(1 << 31) - 1], [40])            # 2**63 - 2**32
    assert not int64_product_proven(1 << 32, [-(1 << 31)], [40])           # 2**63: one past
    assert not int64_product_proven(1, [1], [63])                          # shift beyond the fast path's 62


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("m", [1 << 31, -(1 << 31), (1 << 31) - 1, 3, -1, 1, 0])
def test_int64_path_equals_general_at_the_boundary(rounding, m):
    rng = np.random.default_rng(abs(m) % 1000)
    bound = INT64_MAX // max(abs(m), 1)                 # |x * m| <= 2**63 - 1: the largest proven bound
    x = extremes(bound, rng)
    for s in [0, 1, 2, 30, 31, 32, 33, 34, 40, 61, 62]:
        assert int64_product_proven(bound, [m], [s])
        np.testing.assert_array_equal(round_product_int64(x, np.int64(m), np.int64(s), rounding),
                                      general(x, m, s, rounding), err_msg=f"m={m} s={s} {rounding}")


@given(st.integers(-(1 << 31), 1 << 31), st.integers(0, 62), st.sampled_from(ROUNDING_MODES), st.data())
def test_int64_path_equals_general_property(m, s, rounding, data):
    bound = INT64_MAX // max(abs(m), 1)
    x = np.array(data.draw(st.lists(st.one_of(st.integers(-bound, bound), st.sampled_from([bound, -bound, 0])),
                                    min_size=1, max_size=20)), dtype=np.int64)
    ties = (np.arange(-3, 4, dtype=np.int64) << max(s - 1, 0)) // max(abs(m), 1)   # near the half-way points
    x = np.concatenate([x, np.clip(ties, -bound, bound)])
    np.testing.assert_array_equal(round_product_int64(x, np.int64(m), np.int64(s), rounding), general(x, m, s, rounding))


@given(st.lists(st.integers(-(1 << 31), 1 << 31), min_size=4, max_size=4), st.lists(st.integers(0, 62), min_size=4,
       max_size=4), st.sampled_from(ROUNDING_MODES), st.sampled_from(["saturate", "wrap"]), st.integers(0, 2**32 - 1))
def test_per_channel_requantize_int64_equals_kernel(m, s, rounding, overflow, seed):
    x = np.random.default_rng(seed).integers(-(1 << 31), 1 << 31, size=(3, 4), dtype=np.int64).astype(np.int32)
    out = IntType(8, True)
    np.testing.assert_array_equal(
        requantize_int64(x, np.array(m, np.int64), np.array(s, np.int64), rounding=rounding, out_type=out,
                         overflow=overflow),
        requantize(x, m, s, rounding=rounding, bits=8, overflow=overflow))


def _plan_of(x_type, multiplier, shift):
    b = GraphBuilder("rq", symbols={"n": 4})
    x = b.input("x", x_type, ["n"])
    b.output(b.add("Requantize", [x], "int32", name="rq",
                   attributes={"multiplier": multiplier, "shift": shift, "rounding": "half_even"}))
    return b.build()


@pytest.mark.parametrize("x_type, multiplier, shift, path", [
    ("int32", 1 << 31, 62, "int64 add-shift"),          # 2**31 * 2**31 + 2**61 < 2**63 (requant_addshift)
    ("int33", (1 << 31) - 1, 40, "int64"),              # 2**32 * (2**31 - 1) = 2**63 - 2**32: inside
    ("int33", 1 << 31, 40, "split32 add-shift"),        # 2**32 * 2**31 = 2**63: one past (split32's proof holds,
    ("int33", -(1 << 31), 40, "split32 add-shift"),     # shift >= 34: its add-shift variant)
    ("int32", 1 << 30, 63, "split32 add-shift"),        # shift beyond 62
    ("int33", 1 << 31, 31, "split95"),                  # one past, and a shift below split32's 32
    ("int64", 1, 0, "split95"),                         # |-2**63 * 1| = 2**63
])
def test_planner_picks_the_general_path_past_the_boundary(x_type, multiplier, shift, path):
    graph = _plan_of(x_type, multiplier, shift)
    assert graph.steps[0].prepared.path.removeprefix("float64 near-tie, else ") == path   # the exact path under it
    t = IntType.parse(x_type)
    x = np.array([t.lo, t.hi, t.lo + 1, -1], dtype=t.storage)
    got = intref.run(graph, {"x": x}, overflow="saturate")["y" if "y" in graph.outputs else graph.outputs[0]]
    expected = requantize(x.astype(np.int64), multiplier, shift, bits=32, overflow="saturate")
    np.testing.assert_array_equal(got, expected)
