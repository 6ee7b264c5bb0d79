"""The ``float64 near-tie`` requantization equals the general 95-bit kernel: on exact ties, on the
neighbours of ties where the float64 estimate misrounds (the near-tie check must catch them), at
``|x|`` up to ``2**63 - 1``, exhaustively on int16, and for ``ResidualAdd`` branches on both sides of
the ``2**44`` branch bound; the planner takes the path only where proven."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.inttypes import INT64_MAX, IntType
from intref.kernels.requant import add_requantized, requantize
from intref.kernels.requant_float import (MAX_BRANCH_MAGNITUDE, NEAREST_ROUNDINGS, add_requantized_float,
                                          branch_constants, exact_branch, float_branch_proven, float_requantize_proven,
                                          requantize_float, rounded_estimate, scale_float64, tie_margin)

FALLBACKS = []


def float_path(x, m, s, rounding, bits=8, signed=True):
    """``requantize_float`` with the general kernel as its exact fallback (recording each fallback)."""
    out = IntType(bits, signed)

    def exact(block):
        FALLBACKS.append(block.size)
        return requantize(block, m, s, rounding=rounding, bits=bits, signed=signed)
    return requantize_float(x, scale_float64(m, s), tie_margin(1 << (bits + 1)), out, exact)


def ties_and_neighbours(m: int, s: int, bound: int) -> np.ndarray:
    """``x`` with ``x * m`` at, and one either side of, the half-way points ``(2k + 1) * 2**(s-1)``
    for small and large ``k``, plus the extremes, all within ``[-bound, bound]``."""
    unit = max(abs(m), 1)
    picks = [0, 1, -1, bound, -bound, bound - 1, -bound + 1]
    for k in (0, 1, 2, 127, 128, 255, 1 << 20, (1 << 40) + 1):
        for sign in (1, -1):
            centre = sign * (((2 * k + 1) << max(s - 1, 0)) // unit)
            picks += [centre - 1, centre, centre + 1]
    return np.array([min(max(v, -bound), bound) for v in picks], dtype=np.int64)


@pytest.mark.parametrize("rounding", NEAREST_ROUNDINGS)
@pytest.mark.parametrize("m", [1 << 31, -(1 << 31), (1 << 31) - 1, (1 << 30) + 1, 3, -1, 0])
@pytest.mark.parametrize("s", [0, 1, 2, 31, 41, 62, 63, 80, 127])
def test_equals_general_on_ties_and_their_neighbours(rounding, m, s):
    x = ties_and_neighbours(m, s, INT64_MAX)
    for bits, signed in ((8, True), (16, False), (32, True)):
        np.testing.assert_array_equal(float_path(x, m, s, rounding, bits, signed),
                                      requantize(x, m, s, rounding=rounding, bits=bits, signed=signed),
                                      err_msg=f"m={m} s={s} {rounding} bits={bits}")


def test_the_check_is_what_keeps_it_exact():
    """A float64 product that misrounds next to a tie: the raw estimate is wrong, the check flags it."""
    m, s = 1, 60
    x = np.array([(5 << 59) + d for d in range(1, 100)], dtype=np.int64)   # 2.5 + d * 2**-60: rounds to 3
    exact = requantize(x, m, s, rounding="half_even", bits=32)
    raw = np.rint(x.astype(np.float64) * scale_float64(m, s))
    assert (raw != exact).any(), "no misrounded estimate here: the test would not exercise the check"
    r, proven = rounded_estimate(x, scale_float64(m, s), tie_margin(1 << 33))
    assert not proven
    FALLBACKS.clear()
    np.testing.assert_array_equal(float_path(x, m, s, "half_even", 32), exact)
    assert FALLBACKS == [x.size]


def test_exhaustive_int16_with_every_odd_input_a_tie():
    x = np.arange(-(1 << 15), 1 << 15, dtype=np.int64)
    for m, s in (((1 << 30), 31), (3, 1), ((1 << 31) - 1, 40), (-(1 << 31), 33), (1, 0)):
        for rounding in NEAREST_ROUNDINGS:
            np.testing.assert_array_equal(float_path(x, m, s, rounding),
                                          requantize(x, m, s, rounding=rounding, bits=8), err_msg=f"m={m} s={s}")


@given(st.lists(st.integers(-(1 << 31), 1 << 31), min_size=3, max_size=3),
       st.lists(st.integers(0, 127), min_size=3, max_size=3), st.sampled_from(NEAREST_ROUNDINGS),
       st.integers(1, 63), st.integers(1, 32), st.booleans(), st.integers(0, 2**32 - 1))
def test_per_channel_property(m, s, rounding, x_bits, bits, signed, seed):
    rng = np.random.default_rng(seed)
    bound = (1 << (x_bits - 1)) - 1
    x = rng.integers(-bound, bound, size=(5, 3), endpoint=True, dtype=np.int64)
    x[0] = [bound, -bound, 0]
    mm, ss = np.array(m, np.int64), np.array(s, np.int64)
    np.testing.assert_array_equal(float_path(x, mm, ss, rounding, bits, signed),
                                  requantize(x, mm, ss, rounding=rounding, bits=bits, signed=signed))


def test_proofs():
    assert float_requantize_proven("half_even", "saturate", [3, 127])
    assert not float_requantize_proven("half_even", "saturate", [3, 128])   # past the proof's shift range
    assert not float_requantize_proven("half_even", "wrap", [8])            # wrap needs the exact low bits
    assert not float_requantize_proven("floor", "saturate", [8])            # not a nearest-integer rounding
    assert not float_requantize_proven("double_round", "saturate", [8])
    m, s = (1 << 31) - 1, 30
    edge = (MAX_BRANCH_MAGNITUDE << s) // m                              # largest |x| with |x| * m / 2**s <= 2**44
    assert float_branch_proven(edge, [m], [s], "half_up")
    assert not float_branch_proven(edge + 1, [m], [s], "half_up")


def add_float(a, b, ma, sa, mb, sb, rounding, bits=8):
    def exact(x, y):
        FALLBACKS.append(x.size)
        return add_requantized(x, y, ma, sa, mb, sb, rounding=rounding, bits=bits)
    return add_requantized_float(a, b, branch_constants(ma, sa), branch_constants(mb, sb), IntType(bits, True), exact)


def test_exact_branch_pairs_a_per_tensor_value_with_every_channel():
    assert exact_branch(1, [0, 0, 0, 0]) and exact_branch([2, -4, 0], 1) and exact_branch(3 << 40, 40)
    assert not exact_branch(1, [0, 0, 0, 0, 1]) and not exact_branch([2, 3], 1) and not exact_branch(1, 1)


@pytest.mark.parametrize("rounding", NEAREST_ROUNDINGS)
def test_residual_add_at_the_branch_bound(rounding):
    m, s = (1 << 31) - 1, 30
    edge = (MAX_BRANCH_MAGNITUDE << s) // m
    assert float_branch_proven(edge, [m], [s], rounding) and not float_branch_proven(edge + 1, [m], [s], rounding)
    a = np.concatenate([ties_and_neighbours(m, s, edge), np.array([edge, -edge, edge - 7], np.int64)])
    b = -a[::-1] >> 2                                                    # every b branch below 2**44
    for mb, sb in ((m, s), (1 << 30, 30), (3 << 29, 29), (-(1 << 31), 31)):      # rounded, identity, x3, x-1
        np.testing.assert_array_equal(add_float(a, b, m, s, mb, sb, rounding, bits=32),
                                      add_requantized(a, b, m, s, mb, sb, rounding=rounding, bits=32),
                                      err_msg=f"mb={mb} sb={sb}")


CONSTANT = st.tuples(st.integers(-(1 << 31), 1 << 31), st.integers(0, 62))


@given(CONSTANT, st.one_of(CONSTANT.map(lambda c: [c]), st.lists(CONSTANT, min_size=6, max_size=6)),
       st.sampled_from(NEAREST_ROUNDINGS), st.sampled_from([(6,), (4, 1), (4, 6)]), st.integers(0, 2**32 - 1))
def test_residual_add_property(branch_a, branch_b, rounding, b_shape, seed):
    """Per-tensor a, per-tensor or per-channel b (or b's m per tensor and its s per channel), and b a
    bias row, a column of 1 (its per-channel constants widen it to a's 6 channels) or a's shape."""
    (ma, sa), (mb, sb) = branch_a, ([m for m, _ in branch_b], [s for _, s in branch_b])
    mb, sb = (mb[0], sb[0]) if len(mb) == 1 else (mb, sb) if seed % 3 else (mb[0], sb)   # m per tensor, s not
    rng = np.random.default_rng(seed)
    a = rng.integers(-(1 << 31), 1 << 31, size=(4, 6), dtype=np.int64).astype(np.int32)
    b = rng.integers(-(1 << 15), 1 << 15, size=b_shape, dtype=np.int64).astype(np.int16)
    if not (float_branch_proven(1 << 31, [ma], [sa], rounding) and float_branch_proven(1 << 15, mb, sb, rounding)):
        return
    np.testing.assert_array_equal(add_float(a, b, ma, sa, mb, sb, rounding, bits=16),
                                  add_requantized(a, b, ma, sa, mb, sb, rounding=rounding, bits=16))


def test_a_whole_model_gives_every_value_identical_without_the_float_paths(monkeypatch):
    """The demo I-BERT planned with and without the float64 near-tie paths: every node's value,
    on a padded and an ordinary batch, byte for byte."""
    import intref
    import intref.ops.requant as ops_requant
    from intref.models.demo import make_demo
    from intref.models.demo_golden import ordinary_feed, padded_feed
    fast = make_demo()[0]
    monkeypatch.setattr(ops_requant, "float_requantize_proven", lambda *args: False)
    monkeypatch.setattr(ops_requant, "float_branch_proven", lambda *args: False)
    slow = make_demo()[0]
    paths = [[step.prepared.path or "" for step in graph.steps] for graph in (fast, slow)]
    assert sum("near-tie" in p for p in paths[0]) >= 10 and not any("near-tie" in p for p in paths[1])
    for feeds in (padded_feed(), ordinary_feed()):
        got, expected = intref.run(fast, feeds, trace=True), intref.run(slow, feeds, trace=True)
        assert got.keys() == expected.keys()
        for name in expected:
            assert got[name].dtype == expected[name].dtype, name
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
