"""The split32 requantization path equals the general 95-bit path on both sides of its proof
boundary, for every rounding dialect, and the planner picks it only where the proof holds."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import intref
from intref.build import GraphBuilder
from intref.inttypes import IntType
from intref.kernels.requant import requantize
from intref.kernels.requant_split import requantize_split, round_product_split, split_product_proven
from intref.kernels.rounding import mul_shift_round
from intref.spec.rounding import ROUNDING_MODES


def general(x, m, s, rounding):
    """The general path's exact result (its int64 value; every result here is below 2**62)."""
    return mul_shift_round(x, np.asarray(m, np.int64), np.asarray(s, np.int64), rounding).value()


def largest_bound(m: int) -> int:
    """The largest X with ((X >> 32) + 1) * |m| <= 2**62 (capped at int64's maximum)."""
    return min(((((1 << 62) // max(abs(m), 1)) - 1) << 32) | ((1 << 32) - 1), (1 << 63) - 1)


def edge_values(bound: int, rng) -> np.ndarray:
    picks = [bound, -bound, bound - 1, -bound + 1, 0, 1, -1, (1 << 32) - 1, -(1 << 32), 1 << 32]
    picks += [v for k in range(63) for v in (1 << k, -(1 << k), (1 << k) - 1, 1 - (1 << k)) if abs(v) <= bound]
    picks += [int(v) for v in rng.integers(-bound, bound, size=64, endpoint=True)]
    return np.array([v for v in picks if abs(v) <= bound], dtype=np.int64)


def ties(m: int, s: int, bound: int) -> np.ndarray:
    """Inputs whose product lands on or next to a rounding threshold (half, half -+ 2**30)."""
    m = max(abs(m), 1)
    picks = []
    for target in (1 << (s - 1), (1 << (s - 1)) - (1 << 30), (1 << (s - 1)) + (1 << 30)):
        for k in range(1, 6):
            base = (target + k * (1 << s)) // m
            picks += [base - 1, base, base + 1, -base - 1, -base, -base + 1]
    return np.array([v for v in picks if abs(v) <= bound], dtype=np.int64)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("m", [1 << 31, -(1 << 31), (1 << 31) - 1, -1073936296, 3, -1, 1, 0])
def test_split_path_equals_general_at_the_boundary(rounding, m):
    rng = np.random.default_rng(abs(m) % 1000)
    bound = largest_bound(m)
    for s in [32, 33, 40, 60, 61, 62, 63, 64, 80, 93, 94]:
        assert split_product_proven(bound, [m], [s])
        x = np.concatenate([edge_values(bound, rng), ties(m, s, bound)])
        np.testing.assert_array_equal(round_product_split(x, np.int64(m), np.int64(s), rounding),
                                      general(x, m, s, rounding), err_msg=f"m={m} s={s} {rounding}")


@given(st.integers(-(1 << 31), 1 << 31), st.integers(32, 94), st.sampled_from(ROUNDING_MODES), st.data())
def test_split_path_equals_general_property(m, s, rounding, data):
    bound = largest_bound(m)
    x = np.array(data.draw(st.lists(st.one_of(st.integers(-bound, bound), st.sampled_from([bound, -bound, 0])),
                                    min_size=1, max_size=20)), dtype=np.int64)
    x = np.concatenate([x, ties(m, s, bound)])
    np.testing.assert_array_equal(round_product_split(x, np.int64(m), np.int64(s), rounding),
                                  general(x, m, s, rounding))


@given(st.lists(st.integers(-(1 << 31), 1 << 31), min_size=4, max_size=4),
       st.lists(st.integers(32, 94), min_size=4, max_size=4), st.sampled_from(ROUNDING_MODES),
       st.sampled_from(["saturate", "wrap"]), st.integers(0, 2**32 - 1))
def test_per_channel_requantize_split_equals_kernel(m, s, rounding, overflow, seed):
    x = np.random.default_rng(seed).integers(-(1 << 53), 1 << 53, size=(3, 4), dtype=np.int64)
    out = IntType(8, True)
    np.testing.assert_array_equal(
        requantize_split(x, np.array(m, np.int64), np.array(s, np.int64), rounding=rounding, out_type=out,
                         overflow=overflow),
        requantize(x, m, s, rounding=rounding, bits=8, overflow=overflow))


def test_proof_boundary():
    assert split_product_proven(largest_bound(1 << 31), [1 << 31], [32])
    assert not split_product_proven(largest_bound(1 << 31) + 1, [1 << 31], [32])   # xh one larger: 2**62 + 2**31
    assert not split_product_proven(1 << 53, [1 << 30], [31])                      # the low word needs s >= 32
    assert not split_product_proven(1 << 53, [1 << 30], [95])
    assert not split_product_proven(1 << 40, [(1 << 31) + 1], [40])                # |m| beyond 2**31


def _plan_of(x_type, multiplier, shift):
    b = GraphBuilder("rq")
    x = b.input("x", x_type, [4])
    b.output(b.add("Requantize", [x], "int32", name="rq",
                   attributes={"multiplier": multiplier, "shift": shift, "rounding": "half_even"}))
    return b.build()


@pytest.mark.parametrize("x_type, multiplier, shift, path", [
    ("int54", [-2147442375, -1073936296, -(1 << 31), 5], [60, 63, 61, 62], "split32 add-shift"),   # the int54 GELU output
    ("int63", 1 << 31, 32, "split32"),            # ((2**62 >> 32) + 1) * 2**31 = 2**61 + 2**31
    ("int64", 1 << 30, 40, "split32 add-shift"),  # (2**31 + 1) * 2**30 <= 2**62, shift >= 34
    ("int64", 1 << 31, 40, "split95"),            # (2**31 + 1) * 2**31 > 2**62: one past
    ("int54", 1 << 30, 31, "split95"),            # a shift below 32
    ("int54", 1 << 30, 95, "split95"),            # a shift beyond 94
    ("int32", 1 << 30, 40, "int64 add-shift"),    # the product fits int64: an int64 path first
])
def test_planner_picks_split32_only_where_proven(x_type, multiplier, shift, path):
    graph = _plan_of(x_type, multiplier, shift)
    assert graph.steps[0].prepared.path.removeprefix("float64 near-tie, else ") == path   # the exact path under it
    t = IntType.parse(x_type)
    x = np.array([t.lo, t.hi, t.lo + 1, -1], dtype=t.storage)
    got = intref.run(graph, {"x": x}, overflow="saturate")[graph.outputs[0]]
    np.testing.assert_array_equal(got, requantize(x.astype(np.int64), multiplier, shift, bits=32,
                                                  overflow="saturate"))
