"""Tests of the exported tinytorch.optimization.acceleration (Module 17).

Oracles: np.matmul, numpy expressions written out here, block counts by hand, module 09's
Conv2d, threadpoolctl's own report, and synthetic timings whose true ratio is known.
No wall-clock assertions.
"""
import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from threadpoolctl import threadpool_info

from tinytorch.core.activations import GELU, ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import Conv2d
from tinytorch.core.tensor import Tensor
from tinytorch.optimization.acceleration import (
    REPORT_COLUMNS, FusedLinearReLU, acceleration_report, blas_threads, bootstrap_ratio_ci, compare_samples,
    conv2d_naive, fuse_linear_relu, fused_linear_relu, fusion_verdict, gelu_tanh_fused, gelu_tanh_unfused, holm,
    limit_blas_threads, linear_relu_unfused, matmul_blas, matmul_naive, matmul_tiled, matmul_vectorized,
    measure_interleaved_threads, median_interval)

PROPERTY = settings(max_examples=30, deadline=None, database=None)
FLOATS = st.floats(-10, 10, width=32, allow_nan=False, allow_infinity=False)


def random(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- matmul

@st.composite
def matmul_operands(draw, max_side=7):
    m, k, n = (draw(st.integers(1, max_side)) for _ in range(3))
    a = draw(hnp.arrays(np.float64, (m, k), elements=FLOATS))
    b = draw(hnp.arrays(np.float64, (k, n), elements=FLOATS))
    return a, b


@PROPERTY
@given(matmul_operands(), st.integers(1, 8))
def test_all_matmuls_agree_with_numpy(operands, tile):
    a, b = operands
    expected = np.matmul(a, b)
    for result in (matmul_naive(a, b), matmul_vectorized(a, b), matmul_blas(a, b), matmul_tiled(a, b, tile)):
        assert result.shape == expected.shape
        np.testing.assert_allclose(result, expected, rtol=1e-9, atol=1e-9)


def test_matmul_dtype_follows_numpy():
    a, b = random((3, 4), dtype=np.float32), random((4, 2), 1, dtype=np.float32)
    for fn in (matmul_naive, matmul_vectorized, matmul_blas, matmul_tiled):
        assert fn(a, b).dtype == np.float32
    assert matmul_vectorized(a, b.astype(np.float64)).dtype == np.float64


def test_matmul_integers_exact():
    a, b = np.array([[1, 2], [3, 4]]), np.array([[5, 6], [7, 8]])
    for fn in (matmul_naive, matmul_vectorized, matmul_blas, matmul_tiled):
        assert fn(a, b).tolist() == [[19, 22], [43, 50]]


@pytest.mark.parametrize("fn", [matmul_naive, matmul_vectorized, matmul_blas, matmul_tiled])
@pytest.mark.parametrize("shapes", [((2, 3), (2, 3)), ((3,), (3, 2)), ((2, 3, 1), (1, 2))])
def test_matmul_shape_errors_name_both_shapes(fn, shapes):
    a, b = np.zeros(shapes[0]), np.zeros(shapes[1])
    with pytest.raises(ValueError, match="got shapes") as info:
        fn(a, b)
    assert str(shapes[0]) in str(info.value) and str(shapes[1]) in str(info.value)


@pytest.mark.parametrize("rows, inner, cols, tile", [(10, 7, 5, 3), (13, 9, 6, 4), (8, 8, 8, 8), (5, 5, 5, 64),
                                                     (17, 1, 3, 2), (4, 6, 9, 1)])
def test_tiled_counts_block_products(rows, inner, cols, tile):
    a, b = random((rows, inner)), random((inner, cols), 1)
    shapes = []
    result = matmul_tiled(a, b, tile, on_block=lambda sa, sb: shapes.append((sa, sb)))
    np.testing.assert_allclose(result, a @ b, rtol=1e-12, atol=1e-12)
    expected = math.ceil(rows / tile) * math.ceil(cols / tile) * math.ceil(inner / tile)
    assert len(shapes) == expected
    assert max(max(sa + sb) for sa, sb in shapes) == min(tile, max(rows, inner, cols))
    for sa, sb in shapes:
        assert sa[1] == sb[0]                              # every block product is well-formed
    # the blocks cover the product exactly once: summed block work equals m*k*n
    assert sum(sa[0] * sa[1] * sb[1] for sa, sb in shapes) == rows * inner * cols


@pytest.mark.parametrize("tile", [0, -1, 2.0, True, None, "64"])
def test_tiled_rejects_bad_tile(tile):
    with pytest.raises(ValueError, match="tile must be an int >= 1"):
        matmul_tiled(np.ones((2, 2)), np.ones((2, 2)), tile)


# ---------------------------------------------------------------- convolution

@pytest.mark.parametrize("stride, padding, kernel", [(1, 0, 3), (2, 1, 3), ((2, 1), (0, 2), (2, 3)), (1, 1, 1)])
def test_conv2d_naive_equals_im2col_conv(stride, padding, kernel):
    conv = Conv2d(3, 4, kernel, stride=stride, padding=padding, rng=0)
    x = Tensor.randn(2, 3, 6, 7, rng=1)
    got = conv2d_naive(x.data, conv.weight.data, conv.bias.data, stride, padding)
    np.testing.assert_allclose(got, conv(x).data, rtol=1e-5, atol=1e-6)


def test_conv2d_naive_by_hand_and_without_bias():
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])               # x[y, z] - x[y+1, z+1] = -4 everywhere
    assert conv2d_naive(x, w).tolist() == [[[[-4.0, -4.0], [-4.0, -4.0]]]]


def test_conv2d_naive_channel_mismatch():
    with pytest.raises(ValueError, match=r"\(1, 2, 4, 4\).*\(3, 3, 2, 2\)"):
        conv2d_naive(np.zeros((1, 2, 4, 4)), np.zeros((3, 3, 2, 2)))


# ---------------------------------------------------------------- fusion

@PROPERTY
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**31 - 1), st.booleans())
def test_fused_linear_relu_is_bit_identical(batch, n_in, n_out, seed, with_bias):
    g = np.random.default_rng(seed)
    x = g.standard_normal((batch, n_in)).astype(np.float32)
    w = g.standard_normal((n_in, n_out)).astype(np.float32)
    b = g.standard_normal(n_out).astype(np.float32) if with_bias else None
    oracle = np.maximum(x @ w + (0 if b is None else b), 0)
    assert np.array_equal(fused_linear_relu(x, w, b), oracle)
    assert np.array_equal(linear_relu_unfused(x, w, b), oracle)
    out = np.empty((batch, n_out), dtype=np.float32)
    assert fused_linear_relu(x, w, b, out=out) is out and np.array_equal(out, oracle)


def test_fused_linear_relu_batched_input():
    x, w, b = random((2, 3, 4), dtype=np.float32), random((4, 5), 1, dtype=np.float32), random(5, 2, dtype=np.float32)
    assert np.array_equal(fused_linear_relu(x, w, b), np.maximum(x @ w + b, 0))


@pytest.mark.parametrize("x_shape, w_shape, b_shape, out, match", [
    ((3, 4), (5, 2), (2,), None, r"\(3, 4\) and \(5, 2\)"),
    ((3, 4), (4, 2), (3,), None, r"bias must have shape \(2,\)"),
    ((3, 4), (4, 2), (2,), np.empty((2, 3), np.float32), r"out must be an array of shape \(3, 2\)"),
    ((3, 4), (4, 2), (2,), np.empty((3, 2), np.float64), "dtype float32"),
])
def test_fused_linear_relu_errors(x_shape, w_shape, b_shape, out, match):
    x, w, b = (np.zeros(s, np.float32) for s in (x_shape, w_shape, b_shape))
    with pytest.raises(ValueError, match=match):
        fused_linear_relu(x, w, b, out=out)


def test_fused_module_equals_sequential_in_eval():
    ref = Sequential(Linear(8, 6, rng=0), ReLU()).eval()
    fused = FusedLinearReLU(ref[0]).eval()
    x = Tensor.randn(5, 8, rng=1)
    assert np.array_equal(fused(x).data, ref(x).data)
    assert fused.parameters() == ref.parameters()           # shared, not copied
    assert "inference only" in repr(fused)


def test_fused_module_refuses_training_and_non_linear():
    fused = FusedLinearReLU(Linear(3, 2, rng=0))
    with pytest.raises(RuntimeError, match="inference-only"):
        fused(Tensor.randn(1, 3, rng=0))
    with pytest.raises(TypeError, match="wraps a Linear"):
        FusedLinearReLU(ReLU())
    with pytest.raises(TypeError, match="expects a Tensor"):
        fused.eval()(np.zeros((1, 3)))


def test_fuse_linear_relu_rewrites_pairs_only():
    model = Sequential(Linear(6, 5, rng=0), ReLU(), Linear(5, 4, rng=1), Linear(4, 3, rng=2), ReLU()).eval()
    fused = fuse_linear_relu(model)
    assert [type(layer).__name__ for layer in fused] == ["FusedLinearReLU", "Linear", "FusedLinearReLU"]
    assert not fused.training
    x = Tensor.randn(7, 6, rng=3)
    assert np.array_equal(fused(x).data, model(x).data)
    with pytest.raises(TypeError, match="Sequential"):
        fuse_linear_relu(Linear(2, 2))


@PROPERTY
@given(hnp.arrays(np.float32, hnp.array_shapes(max_dims=2, max_side=6), elements=FLOATS))
def test_fused_gelu_matches_within_float32_rounding(x):
    x64 = x.astype(np.float64)
    oracle = 0.5 * x64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64 ** 3)))
    fused = gelu_tanh_fused(x)
    assert fused.dtype == np.float32 and fused.shape == x.shape
    np.testing.assert_allclose(fused, oracle, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused, gelu_tanh_unfused(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused, GELU(approximate="tanh")(Tensor(x)).data, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- threads

def counts():
    return [lib["num_threads"] for lib in blas_threads()]


def test_blas_threads_matches_threadpoolctl():
    reported = blas_threads()
    truth = [info for info in threadpool_info() if info["user_api"] == "blas"]
    assert [lib["num_threads"] for lib in reported] == [info["num_threads"] for info in truth]
    assert [lib["library"] for lib in reported] == [info["internal_api"] for info in truth]
    assert reported, "numpy should have loaded a BLAS library"


def test_limit_blas_threads_applies_and_restores():
    before = counts()
    with limit_blas_threads(1) as n:
        assert n == 1 and counts() == [1] * len(before)
    assert counts() == before


def test_limit_blas_threads_changes_the_count_when_more_than_one():
    before = counts()
    if max(before) == 1:
        with limit_blas_threads(1):
            with limit_blas_threads(2):
                assert max(counts()) >= 1
            assert counts() == [1] * len(before)
    else:
        with limit_blas_threads(1):
            assert counts() != before
    assert counts() == before


def test_limit_blas_threads_restores_on_error():
    before = counts()
    with pytest.raises(KeyError):
        with limit_blas_threads(1):
            raise KeyError("inside")
    assert counts() == before


@pytest.mark.parametrize("n", [0, -2, 1.5, True, "2"])
def test_limit_blas_threads_rejects_bad_counts(n):
    with pytest.raises(ValueError, match="thread count must be an int >= 1"):
        with limit_blas_threads(n):
            pass


def test_measure_interleaved_threads_sets_threads_per_arm():
    seen = {"one": set(), "same": set()}
    arms = {"one": (lambda: seen["one"].add(tuple(counts())), 1), "same": (lambda: seen["same"].add(tuple(counts())), None)}
    before = counts()
    timings = measure_interleaved_threads(arms, repeats=2, min_sample_ns=1_000)
    assert seen["one"] == {tuple([1] * len(before))} and seen["same"] == {tuple(before)}
    assert timings["one"].n == 2 and counts() == before


# ---------------------------------------------------------------- statistics

def lognormal(seed, centre, n=30, sigma=0.05):
    return centre * np.exp(np.random.default_rng(seed).normal(0, sigma, n))


@pytest.mark.parametrize("true_ratio", [0.5, 0.8, 1.25, 3.0])
def test_bootstrap_ci_contains_true_ratio_for_separated_data(true_ratio):
    a, b = lognormal(1, true_ratio), lognormal(2, 1.0)
    ratio, low, high = bootstrap_ratio_ci(a, b, rng=0)
    assert ratio == pytest.approx(np.median(a) / np.median(b), rel=1e-12)
    assert low <= ratio <= high and low <= true_ratio <= high
    assert not low <= 1 <= high                           # clearly separated: 1 is excluded


def test_bootstrap_ci_is_seeded_and_accepts_generators():
    a, b = lognormal(3, 1.0), lognormal(4, 1.1)
    first = bootstrap_ratio_ci(a, b, rng=5)
    assert bootstrap_ratio_ci(a, b, rng=5) == first
    assert bootstrap_ratio_ci(a, b, rng=np.random.default_rng(5)) == first
    assert bootstrap_ratio_ci(a, b, rng=6) != first


def test_bootstrap_ci_by_independent_loop():
    a, b = lognormal(7, 1.0, n=12, sigma=0.2), lognormal(8, 1.3, n=9, sigma=0.2)
    g = np.random.default_rng(0)
    ia, ib = g.integers(0, 12, size=(500, 12)), g.integers(0, 9, size=(500, 9))
    ratios = [np.median(a[ia[r]]) / np.median(b[ib[r]]) for r in range(500)]
    _, low, high = bootstrap_ratio_ci(a, b, resamples=500, rng=0)
    assert (low, high) == pytest.approx(tuple(np.percentile(ratios, (2.5, 97.5))), rel=1e-12)


@pytest.mark.parametrize("a, b, match", [([1.0], [1.0, 2.0], "a must hold"), ([1.0, 2.0], [0.0, 1.0], "b must hold"),
                                         ([1.0, np.nan], [1.0, 2.0], "a must hold")])
def test_bootstrap_ci_rejects_bad_samples(a, b, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_ratio_ci(a, b)


def test_compare_samples_uses_mann_whitney():
    a, b = lognormal(9, 1.0, sigma=0.3), lognormal(10, 1.2, sigma=0.3)
    result = compare_samples(a, b)
    truth = stats.mannwhitneyu(a, b, alternative="two-sided")
    assert result["p_value"] == pytest.approx(truth.pvalue)
    assert result["prob_faster"] == pytest.approx(np.mean(a[:, None] < b[None, :]))


def test_median_interval_order_statistics():
    values = np.arange(1.0, 21.0)                       # n = 20: ranks 6 and 15 (coverage 95.9%)
    assert median_interval(values[::-1]) == (6.0, 15.0)
    assert median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0)  # too few for 95%: the whole range


def test_holm_by_hand():
    adjusted = holm([0.01, 0.04, np.nan, 0.03])
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    np.testing.assert_allclose(adjusted[[0, 3, 1]], [0.03, 0.06, 0.06])
    assert np.isnan(adjusted[2])


# ---------------------------------------------------------------- report (tiny, no timing assertions)

def test_acceleration_report_structure():
    table = acceleration_report(batch=4, features=8, sizes=(6,), naive_max=6, tiled_size=16, tiles=(4, 8),
                                repeats=3, fused_repeats=3, min_sample_ns=50_000)
    assert list(table.columns) == list(REPORT_COLUMNS)
    groups = list(dict.fromkeys(table["group"]))
    assert groups[:5] == ["matmul 6x6", "tiled 16 (1 BLAS thread)", "linear+relu 4x8 @ 8x8 (default BLAS threads)",
                          "linear+relu 4x8 @ 8x8 (1 BLAS thread)", "linear+relu layers 4x8 (default BLAS threads)"]
    assert list(table[table["group"] == groups[4]]["variant"]) == ["Linear + ReLU layers", "FusedLinearReLU layer"]
    verdicts = fusion_verdict(table)
    assert len(verdicts) == 3 + 3 + 2                      # a header line and one line per fused variant, each group
    assert all(("median" in line) != ("measurably" in line) for line in verdicts)
    assert verdicts[-2].startswith("linear+relu layers 4x8") and "Linear + ReLU layers median" in verdicts[-2]
    assert set(table[table["group"] == "matmul 6x6"]["variant"]) == {"naive", "vectorized", "tiled 64", "blas"}
    assert set(table[table["group"] == "tiled 16 (1 BLAS thread)"]["variant"]) == {"blas", "tiled 4", "tiled 8"}
    first = table.groupby("group", sort=False).head(1)
    assert (first["ratio"] == 1.0).all() and first["p_value"].isna().all()
    rest = table.drop(first.index)
    assert (rest["ratio_low"] <= rest["ratio"]).all() and (rest["ratio"] <= rest["ratio_high"]).all()
    assert (rest["p_holm"] >= rest["p_value"]).all()
    assert (table["median_low_ms"] <= table["median_ms"]).all()
    assert "environment" in table.attrs and table.attrs["blas"] == blas_threads()
