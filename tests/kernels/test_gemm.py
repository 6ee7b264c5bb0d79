"""kernels.matmul equals spec.matmul and the exact Python-int product on every path, refuses exactly the
inputs its bound cannot prove, and refuses every broken precondition.

The proof conditions are restated here from the module docstring (P = max|a| * max|b| per matrix,
computed with Python ints by the spec's ``max_magnitude``; bound = P * K):
  float64 proven iff bound <= 2**53, float32 iff P <= 2**24, int64 (and auto) iff bound <= 2**63 - 1.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from intref.errors import DtypeError, RangeError, ShapeError
from intref.kernels.gemm import PATHS, choose_path, matmul
import intref.spec.gemm as spec
from intref.testing import assert_identical
from intref.testing.twins import assert_equals_spec, spec_matmul

DTYPES = (np.int8, np.int16, np.int32, np.uint8, np.uint16)
INT64_MAX = (1 << 63) - 1


def elements(dtype):
    info = np.iinfo(dtype)
    extremes = sorted({info.min, info.max, info.min + 1, info.max - 1, 0, 1} | ({-1} if info.min < 0 else set()))
    return st.one_of(st.sampled_from(extremes), st.integers(info.min, info.max))


def largest_product(a, b):
    """max over the broadcast batch of max|a_i| * max|b_i|, from the spec's Python-int max_magnitude."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a_full, b_full = np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])
    return max((spec.max_magnitude(a_full[i].tolist()) * spec.max_magnitude(b_full[i].tolist())
                for i in np.ndindex(*batch)), default=0)


def proven(path, p, k):
    return {"auto": p * k <= INT64_MAX, "int64": p * k <= INT64_MAX,
            "float64": p * k <= 1 << 53, "float32": p <= 1 << 24 and p * k <= INT64_MAX}[path]


def check_every_path(a, b):
    """Each path equals the spec and the object-dtype product, or raises RangeError iff it is not proven."""
    a_before, b_before = a.copy(), b.copy()
    p, k = largest_product(a, b), a.shape[-1]
    if p * k <= INT64_MAX:
        expected = spec_matmul(a, b)
        assert_identical(np.matmul(a.astype(object), b.astype(object)), expected, context="object matmul vs spec",
                         check_dtype=False)
    for path in PATHS:
        if proven(path, p, k):
            got = matmul(a, b, path=path)
            assert got.dtype == np.int64, path
            assert_equals_spec(got, expected, context=f"path={path} {a.dtype}@{b.dtype}")
        else:
            with pytest.raises(RangeError):
                matmul(a, b, path=path)
    assert_identical(a, a_before, context="a was mutated")
    assert_identical(b, b_before, context="b was mutated")


@st.composite
def operand_pairs(draw, min_side=1):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, min_side=min_side, max_side=3))
    m, k, n = (draw(st.integers(min_side, 5)), draw(st.integers(min_side, 12)), draw(st.integers(min_side, 5)))
    dtype_a, dtype_b = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(DTYPES))
    a = draw(hnp.arrays(dtype_a, shapes.input_shapes[0] + (m, k), elements=elements(dtype_a)))
    b = draw(hnp.arrays(dtype_b, shapes.input_shapes[1] + (k, n), elements=elements(dtype_b)))
    return a, b


@given(operand_pairs())
def test_every_path_equals_spec_on_random_batches(pair):
    check_every_path(*pair)


@given(operand_pairs(min_side=0))
def test_every_path_equals_spec_with_empty_dimensions(pair):
    """M, K, N or a batch dimension may be 0 (K = 0: the empty sum, all zeros)."""
    check_every_path(*pair)


@given(st.sampled_from(DTYPES), st.sampled_from(DTYPES), st.integers(1, 4), st.integers(0, 6), st.integers(1, 4),
       st.booleans(), st.booleans())
def test_constant_extremes(dtype_a, dtype_b, m, k, n, a_low, b_low):
    """Every element at its dtype's min or max: the largest magnitudes each dtype pair can produce."""
    a_value = np.iinfo(dtype_a).min if a_low else np.iinfo(dtype_a).max
    b_value = np.iinfo(dtype_b).min if b_low else np.iinfo(dtype_b).max
    check_every_path(np.full((m, k), a_value, dtype=dtype_a), np.full((k, n), b_value, dtype=dtype_b))


@pytest.mark.parametrize("dtype_a, dtype_b", [(np.int8, np.int8), (np.uint8, np.int8), (np.int8, np.uint8)])
def test_every_int8_product_exhaustively(dtype_a, dtype_b):
    """An outer product (K = 1) of every value of one 8-bit dtype with every value of the other."""
    a = np.arange(np.iinfo(dtype_a).min, np.iinfo(dtype_a).max + 1).astype(dtype_a).reshape(-1, 1)
    b = np.arange(np.iinfo(dtype_b).min, np.iinfo(dtype_b).max + 1).astype(dtype_b).reshape(1, -1)
    check_every_path(a, b)


@pytest.mark.parametrize("k", [1023, 1024, 1025, 2048, 2049, 3072])
@pytest.mark.parametrize("value", [-128, 127])
def test_int8_constant_across_the_float32_chunk_boundary(k, value):
    a = np.full((2, k), value, dtype=np.int8)
    b = np.full((k, 3), value, dtype=np.int8)
    for path in PATHS:
        assert_identical(matmul(a, b, path=path), np.full((2, 3), value * value * k, dtype=np.int64),
                         context=f"path={path} K={k}")


def test_float32_chunking_is_what_keeps_it_exact():
    """Partial sums reach 2**24 = 1024 * 128 * 128 and then add 1: one sgemm would round 2**24 + 1."""
    a = np.full((1, 1025), -128, dtype=np.int8)
    b = np.full((1025, 1), -128, dtype=np.int8)
    a[0, 1024], b[1024, 0] = 1, 1
    exact = (1 << 24) + 1
    unchunked = int((a.astype(np.float32) @ b.astype(np.float32))[0, 0])
    assert unchunked != exact                      # the data really crosses float32's exact range
    for path in PATHS:
        assert_identical(matmul(a, b, path=path), np.array([[exact]], dtype=np.int64), context=path)


@pytest.mark.parametrize("k, float64_proven", [(128, True), (129, False)])
def test_float64_boundary(k, float64_proven):
    """int32 -2**31 times int16 -2**15: P = 2**46, so K = 128 gives bound 2**53 exactly."""
    a = np.full((1, k), -(1 << 31), dtype=np.int32)
    b = np.full((k, 2), -(1 << 15), dtype=np.int16)
    a[0, -1], b[-1, 1] = 1, 1                      # column 0: (K-1) * 2**46 - 2**15, column 1: ... + 1
    expected = np.array([[((k - 1) << 46) - (1 << 15), ((k - 1) << 46) + 1]], dtype=np.int64)
    for path in ("auto", "int64"):
        assert_identical(matmul(a, b, path=path), expected, context=path)
    if float64_proven:
        assert_identical(matmul(a, b, path="float64"), expected)
    else:
        rounded = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
        assert rounded[0, 1] != expected[0, 1]     # 2**53 + 1 is not a float64: the refusal is needed
        with pytest.raises(RangeError, match=r"path='float64'.*> 2\*\*53"):
            matmul(a, b, path="float64")


def test_int64_boundary():
    top = np.full((1, 2), (1 << 31) - 1, dtype=np.int32)
    assert_identical(matmul(top, top.T.copy()), np.array([[2 * ((1 << 31) - 1) ** 2]], dtype=np.int64))
    low = np.full((1, 2), -(1 << 31), dtype=np.int32)
    for path in PATHS:
        with pytest.raises(RangeError, match=r"a and b can overflow int64.*9223372036854775808") as info:
            matmul(low, low.T.copy(), path=path)
        assert info.value.argument == "a, b"


def test_int64_refusal_names_the_batch_index_of_the_worst_matrix():
    a = np.ones((3, 1, 2), dtype=np.int32)
    b = np.ones((3, 2, 1), dtype=np.int32)
    a[1], b[1] = -(1 << 31), -(1 << 31)
    with pytest.raises(RangeError, match=r"batch index \[1\]") as info:
        matmul(a, b)
    assert info.value.index == (1,)


def test_bound_is_per_matrix_not_over_the_whole_batch():
    """Matrix 0 has the large a, matrix 1 the large b: each is exact in int64 although max|a|*max|b|*K is not."""
    a = np.ones((2, 1, 2), dtype=np.int32)
    b = np.ones((2, 2, 1), dtype=np.int32)
    a[0], b[1] = -(1 << 31), -(1 << 31)
    check_every_path(a, b)


def test_batch_broadcasting_shapes_and_values():
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, size=(3, 1, 4, 70), dtype=np.int8)
    b = rng.integers(-(1 << 15), 1 << 15, size=(2, 70, 5), dtype=np.int16)
    assert matmul(a, b).shape == (3, 2, 4, 5)
    check_every_path(a, b)


def test_strided_and_transposed_views():
    rng = np.random.default_rng(4)
    base = rng.integers(-128, 128, size=(40, 60), dtype=np.int8)
    check_every_path(base[::-2, 1::3], base.T[::3, ::-2])


def test_transformer_shapes_against_the_int64_product():
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(16, 3072), dtype=np.int8)
    w = rng.integers(-127, 127, size=(3072, 48), dtype=np.int8)
    expected = x.astype(np.int64) @ w.astype(np.int64)    # int64 is exact here: bound 2**14 * 3072 < 2**63
    for path in PATHS:
        assert_identical(matmul(x, w, path=path), expected, context=path)


@pytest.mark.parametrize("p, k, path", [
    (128 * 128, 768, "float32"), (128 * 128, 3072, "float32"), (255 * 128, 128, "float32"),
    (1 << 30, 768, "float64"), (1 << 30, 1 << 23, "float64"), (1 << 30, (1 << 23) + 1, "int64"),
    (1 << 62, 1, "int64"), (1 << 24, 1, "float32"), (1 << 20, 4, "float32"), (1 << 20, 64, "float64"),
    (0, 0, "float32"), (0, 5, "float32"),
])
def test_auto_choice(p, k, path):
    assert choose_path(p, k) == path
    assert proven(path, p, k)


@pytest.mark.parametrize("bad, error", [
    (np.zeros((2, 2), dtype=np.float64), DtypeError), (np.zeros((2, 2), dtype=np.float32), DtypeError),
    (np.zeros((2, 2), dtype=np.uint64), DtypeError), (np.zeros((2, 2), dtype=bool), DtypeError),
    (np.zeros((2, 2), dtype=np.int64), DtypeError), (np.zeros((2, 2), dtype=np.uint32), DtypeError),
    ([[1, 2], [3, 4]], DtypeError), (3, DtypeError), (np.int8(3), ShapeError),
    (np.zeros(2, dtype=np.int8), ShapeError),
])
@pytest.mark.parametrize("side", ["a", "b"])
def test_bad_operand_is_refused_and_named(bad, error, side):
    good = np.ones((2, 2), dtype=np.int8)
    args = (bad, good) if side == "a" else (good, bad)
    with pytest.raises(error, match=f"matmul: {side} ") as info:
        matmul(*args)
    assert info.value.argument == side


def test_k_mismatch_names_both_dims():
    with pytest.raises(ShapeError, match=r"a has shape \(2, 3\) with K = a.shape\[-1\] = 3, but b has shape "
                                         r"\(4, 5\) with K = b.shape\[-2\] = 4"):
        matmul(np.ones((2, 3), np.int8), np.ones((4, 5), np.int8))


def test_batch_mismatch_names_both_batches():
    with pytest.raises(ShapeError, match=r"a.shape\[:-2\] = \(2,\) and b.shape\[:-2\] = \(3,\) do not broadcast"):
        matmul(np.ones((2, 3, 4), np.int8), np.ones((3, 4, 5), np.int8))


def test_unknown_path_is_refused():
    with pytest.raises(RangeError, match="path='blas'"):
        matmul(np.ones((1, 1), np.int8), np.ones((1, 1), np.int8), path="blas")


def test_forced_float32_with_int16_extremes_is_refused():
    a = np.full((2, 3), -(1 << 15), dtype=np.int16)
    with pytest.raises(RangeError, match=r"path='float32'.*1073741824 > 2\*\*24") as info:
        matmul(a, a.T.copy(), path="float32")
    assert info.value.argument == "path"
    assert_identical(matmul(a, a.T.copy()), np.full((2, 2), 3 << 30, dtype=np.int64))


def test_no_ratio_shift_beyond_127_changes_a_requantization():
    """Derivation.ratio writes shifts above 127 as 127; for int64 x and |m| <= 2**31 every rounding
    of x * m / 2**s is the same for all s >= 96, so the cap changes nothing."""
    from intref.models.derivation import Derivation
    from intref.spec.rounding import ROUNDING_MODES, rshift_round
    m, s = Derivation().ratio(5e-38)
    assert s == 127
    for x in (-(1 << 63), -1, 0, 1, (1 << 63) - 1):
        for mode in ROUNDING_MODES:
            assert rshift_round(x * m, 127, mode) == rshift_round(x * m, 159, mode) == rshift_round(x * m, 96, mode)
