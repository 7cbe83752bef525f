"""Tests of tinytorch.benchmarking.stats against independent oracles.

Oracles: scipy.stats (t, binom, mannwhitneyu, iqr, median_abs_deviation, variation), brute-force
pair counts and rank searches, hand-computed values, and hypothesis properties (an interval
contains its estimate; scaling the samples scales the median and its interval; p0 == min).
"""
import json
import math

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hs

import tinytorch.models.zoo as zoo
from tinytorch.benchmarking import stats

FAST = settings(max_examples=60, deadline=None, database=None)
positive = hs.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = hs.lists(positive, min_size=1, max_size=40)


# ---------------------------------------------------------------- check_values

def test_check_values_returns_a_float64_copy():
    source = np.array([3, 1, 2])
    values = stats.check_values(source)
    assert values.dtype == np.float64 and values.tolist() == [3.0, 1.0, 2.0]
    values[0] = 99
    assert source[0] == 3                      # a copy, not a view
    floats = np.array([1.5, 2.5])
    assert stats.check_values(floats) is not floats


def test_check_values_rejects_bad_input_with_clear_messages():
    with pytest.raises(ValueError, match="latency is empty"):
        stats.check_values([], "latency")
    with pytest.raises(ValueError, match=r"2 non-finite value\(s\).*positions \[1, 3\]"):
        stats.check_values([1.0, math.nan, 2.0, math.inf])
    with pytest.raises(TypeError, match="real numbers"):
        stats.check_values(["1", "2"])
    with pytest.raises(TypeError, match="real numbers"):
        stats.check_values([1.0, None])
    with pytest.raises(TypeError, match="sequence of numbers"):
        stats.check_values(3.0)
    with pytest.raises(ValueError, match="must be 1-D"):
        stats.check_values([[1.0, 2.0]])


# ---------------------------------------------------------------- intervals

@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_t_interval_matches_scipy(confidence):
    x = np.random.default_rng(1).lognormal(0, 0.5, 12)
    expected = st.t.interval(confidence, x.size - 1, loc=x.mean(), scale=st.sem(x))
    assert stats.t_interval(x, confidence) == pytest.approx(expected, rel=1e-12)


def test_t_interval_of_one_value_is_degenerate():
    assert stats.t_interval([4.2]) == (4.2, 4.2)


def test_interval_rows_match_the_one_row_functions():
    rows = np.random.default_rng(2).lognormal(0, 0.5, (6, 9))
    lows, highs = stats.t_interval_rows(rows)
    for row, low, high in zip(rows, lows, highs):
        assert (low, high) == pytest.approx(stats.t_interval(row))
    lows, highs = stats.median_interval_rows(rows)
    for row, low, high in zip(rows, lows, highs):
        assert (low, high) == stats.median_interval(row)[:2]
    z_low, z_high = stats.z_interval_rows(rows)
    half = 1.959963984540054 * rows.std(axis=1, ddof=1) / 3
    assert z_low == pytest.approx(rows.mean(axis=1) - half) and z_high == pytest.approx(rows.mean(axis=1) + half)


def test_median_interval_of_five_values_is_min_max_with_its_true_coverage():
    low, high, achieved = stats.median_interval([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (low, high) == (1.0, 5.0)
    assert achieved == pytest.approx(1 - 2 * 0.5 ** 5) == pytest.approx(0.9375)


@pytest.mark.parametrize("n, ranks", [(6, (1, 6)), (10, (2, 9)), (30, (10, 21)), (100, (40, 61))])
def test_median_ranks_match_published_tables(n, ranks):
    # Conover (1999), table A3 / the usual binomial tables of the median's 95% interval
    assert stats.order_statistic_ranks(n)[:2] == ranks


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 20, 64, 131])
@pytest.mark.parametrize("q", [0.1, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_order_statistic_ranks_against_binomial_brute_force(n, q, confidence):
    low, high, achieved = stats.order_statistic_ranks(n, q, confidence)
    assert 1 <= low <= high <= n and (n == 1 or low < high)
    # coverage is exactly P(low <= B <= high - 1) for B ~ Binomial(n, q)
    assert achieved == pytest.approx(st.binom.cdf(high - 1, n, q) - st.binom.cdf(low - 1, n, q), abs=1e-12)
    # brute force: every rank whose miss probability is within the tail, searched one by one
    tail = (1 - confidence) / 2
    lows = [k for k in range(1, n + 1) if st.binom.cdf(k - 1, n, q) <= tail + 1e-12]
    highs = [k for k in range(1, n + 1) if st.binom.sf(k - 1, n, q) <= tail + 1e-12]
    expected = (max(lows) if lows else 1, min(highs) if highs else n)   # a side falls back to min / max
    if n >= 2 and expected[0] >= expected[1]:                          # the fallback met the other side
        expected = (expected[1] - 1, expected[1]) if expected[1] > 1 else (1, 2)
    assert (low, high) == expected
    if lows and highs:                 # both sides bounded: the equal-tailed pair reaches the nominal level
        assert achieved >= confidence - 1e-12


def test_order_statistic_interval_of_a_tail_quantile():
    x = np.arange(1.0, 101.0)
    low, high, achieved = stats.order_statistic_interval(x[::-1], q=0.9)
    assert (low, high) == (84.0, 96.0)
    assert achieved == pytest.approx(st.binom.cdf(95, 100, 0.9) - st.binom.cdf(83, 100, 0.9))


def test_order_statistic_interval_rejects_bad_settings():
    with pytest.raises(ValueError, match="q must be"):
        stats.order_statistic_interval([1.0, 2.0], q=1.0)
    with pytest.raises(ValueError, match="confidence"):
        stats.median_interval([1.0, 2.0], confidence=95)


@FAST
@given(samples)
def test_intervals_contain_their_estimates(values):
    low, high, _ = stats.median_interval(values)
    assert low <= np.median(values) <= high
    t_low, t_high = stats.t_interval(values)
    mean = np.mean(values)
    assert t_low <= mean * (1 + 1e-12) and mean * (1 - 1e-12) <= t_high


@FAST
@given(samples, hs.floats(min_value=1e-3, max_value=1e3))
def test_scaling_the_samples_scales_the_median_and_its_interval(values, factor):
    low, high, achieved = stats.median_interval(values)
    scaled = stats.median_interval([v * factor for v in values])
    assert scaled[:2] == pytest.approx((low * factor, high * factor), rel=1e-12)
    assert scaled[2] == achieved
    assert np.median([v * factor for v in values]) == pytest.approx(np.median(values) * factor, rel=1e-12)


# ---------------------------------------------------------------- descriptive statistics

@FAST
@given(samples)
def test_percentiles_follow_numpy_and_the_extremes(values):
    found = stats.percentiles(values, (0, 50, 90, 99.9, 100))
    assert list(found) == ["p0", "p50", "p90", "p99.9", "p100"]
    assert found["p0"] == min(values) and found["p100"] == max(values)
    assert found["p90"] == pytest.approx(np.percentile(values, 90, method="linear"))


def test_percentiles_default_keys_and_bad_qs():
    assert list(stats.percentiles([1.0, 2.0, 3.0])) == ["p50", "p90", "p95", "p99"]
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        stats.percentiles([1.0], (50, 101))


def test_tail_flag_thresholds_are_loadgens_and_derived():
    # LoadGen early stopping: smallest n with P(Binomial(n, 1 - q) <= 1) < 1% (linear search oracle)
    for q, key in ((0.9, "p90"), (0.95, "p95"), (0.99, "p99")):
        n = next(n for n in range(2, 2000) if st.binom.cdf(1, n, 1 - q) < 0.01)
        assert stats.min_samples_for_percentile(q) == n == stats.TAIL_MIN_SAMPLES[key]
    assert stats.TAIL_MIN_SAMPLES == {"p90": 64, "p95": 130, "p99": 662}
    assert stats.tail_flags(63) == {"p90": True, "p95": True, "p99": True}
    assert stats.tail_flags(64) == {"p90": False, "p95": True, "p99": True}
    assert stats.tail_flags(130) == {"p90": False, "p95": False, "p99": True}
    assert stats.tail_flags(662) == {"p90": False, "p95": False, "p99": False}
    with pytest.raises(ValueError, match="sample count"):
        stats.tail_flags(-1)


def test_spread_statistics_match_scipy():
    x = np.random.default_rng(3).lognormal(0, 0.4, 51)
    assert stats.iqr(x) == pytest.approx(st.iqr(x))
    assert stats.mad(x) == pytest.approx(st.median_abs_deviation(x, scale=1.0))
    assert stats.cv(x) == pytest.approx(st.variation(x, ddof=1))
    with pytest.raises(ValueError, match="at least 2"):
        stats.cv([1.0])


@FAST
@given(samples, hs.sampled_from([0.0, 1.5, 3.0]))
def test_outliers_counts_values_beyond_tukey_fences(values, k):
    count, low, high = stats.outliers(values, k)
    q1, q3 = np.percentile(values, [25, 75])
    assert low == pytest.approx(q1 - k * (q3 - q1)) and high == pytest.approx(q3 + k * (q3 - q1))
    assert count == sum(1 for v in values if v < low or v > high)


def test_outliers_are_counted_not_removed():
    values = [10.0] * 9 + [100.0]
    assert stats.outliers(values)[0] == 1 and len(values) == 10


def test_noise_warnings_give_the_number_and_a_remedy():
    quiet = [100.0, 101.0, 99.0, 100.5, 99.5]
    assert stats.noise_warnings(quiet, raw_sample_ns=2_000_000) == []
    noisy = stats.noise_warnings([100.0, 150.0, 80.0, 120.0, 60.0])
    cv = st.variation([100.0, 150.0, 80.0, 120.0, 60.0], ddof=1)
    assert any(f"CV is {cv:.1%}" in w and "rerun" in w for w in noisy)
    assert any(w.startswith("IQR is") for w in noisy)
    short = stats.noise_warnings(quiet, raw_sample_ns=[400_000, 500_000, 600_000])
    assert short == ["raw samples last 0.5 ms < 1 ms: the timer's overhead and resolution weigh on each sample; "
                     "time more calls per sample"]
    assert stats.noise_warnings(quiet, min_raw_sample_ns=5e6, raw_sample_ns=2e6)[0].startswith("raw samples last 2 ms")
    assert "only 1 sample" in stats.noise_warnings([5.0])[0]
    assert stats.noise_warnings([0.0, 0.0, 1.0]) == [
        "CV and IQR/median are undefined here (mean 0.3333, median 0): relative noise needs positive values "
        "such as durations"]
    with pytest.raises(ValueError, match="raw_sample_ns"):
        stats.noise_warnings(quiet, min_raw_sample_ns=1e6)


# ---------------------------------------------------------------- comparisons

def test_bootstrap_ratio_ci_reproduces_a_hand_written_bootstrap():
    rng = np.random.default_rng(4)
    a, b = rng.lognormal(0, 0.2, 15), rng.lognormal(0.1, 0.2, 15)
    ratio, low, high = stats.bootstrap_ratio_ci(a, b, resamples=500, seed=7)
    oracle = np.random.default_rng(7)
    index = oracle.integers(0, 15, size=(500, 15))                   # paired: one index for both
    ratios = [np.median(a[i]) / np.median(b[i]) for i in index]
    assert ratio == pytest.approx(np.median(a) / np.median(b))
    assert (low, high) == pytest.approx(tuple(np.percentile(ratios, [2.5, 97.5])))
    assert stats.bootstrap_ratio_ci(a, b, resamples=500, seed=7) == (ratio, low, high)   # seeded


def test_bootstrap_ratio_ci_independent_when_lengths_differ():
    rng = np.random.default_rng(5)
    a, b = rng.lognormal(0, 0.2, 12), rng.lognormal(0, 0.2, 9)
    _, low, high = stats.bootstrap_ratio_ci(a, b, resamples=300, seed=1)
    oracle = np.random.default_rng(1)
    ia, ib = oracle.integers(0, 12, size=(300, 12)), oracle.integers(0, 9, size=(300, 9))
    ratios = np.median(a[ia], axis=1) / np.median(b[ib], axis=1)
    assert (low, high) == pytest.approx(tuple(np.percentile(ratios, [2.5, 97.5])))
    with pytest.raises(ValueError, match="paired resampling needs equal lengths"):
        stats.bootstrap_ratio_ci(a, b, paired=True)
    with pytest.raises(ValueError, match="positive durations"):
        stats.bootstrap_ratio_ci([1.0, 0.0], [1.0, 2.0])


def test_paired_bootstrap_of_a_constant_ratio_is_exact():
    a = np.random.default_rng(6).lognormal(0, 0.3, 20)
    ratio, low, high = stats.bootstrap_ratio_ci(a * 1.05, a)
    assert ratio == pytest.approx(1.05) and low == pytest.approx(1.05) and high == pytest.approx(1.05)


def test_mann_whitney_p_matches_scipy():
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 1, 14), rng.normal(0.8, 1, 11)
    assert stats.mann_whitney_p(a, b) == pytest.approx(st.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    assert stats.mann_whitney_p([3.0] * 5, [3.0] * 4) == 1.0


@FAST
@given(hs.lists(hs.integers(0, 5), min_size=1, max_size=15), hs.lists(hs.integers(0, 5), min_size=1, max_size=15))
def test_effect_sizes_match_brute_force_pair_counts(a, b):
    pairs = [(x, y) for x in a for y in b]
    less = sum(x < y for x, y in pairs) / len(pairs)
    equal = sum(x == y for x, y in pairs) / len(pairs)
    greater = sum(x > y for x, y in pairs) / len(pairs)
    assert stats.prob_less(a, b) == pytest.approx(less + 0.5 * equal)
    assert stats.cliffs_delta(a, b) == pytest.approx(greater - less)
    assert -1 <= stats.cliffs_delta(a, b) <= 1
    u_b = st.mannwhitneyu(b, a).statistic                # U of b: pairs with b > a, ties halved
    assert stats.prob_less(a, b) == pytest.approx(u_b / len(pairs))


def test_holm_matches_a_hand_computed_example():
    adjusted = stats.holm([0.01, 0.04, math.nan, 0.03, 0.5])
    # m = 4 tests: sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.09, max(0.09, 0.08), max(.., 0.5)
    assert adjusted[[0, 1, 3, 4]] == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert math.isnan(adjusted[2])
    assert stats.holm([0.3, 0.9]).tolist() == [0.6, 0.9]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.holm([0.5, 1.5])


@FAST
@given(hs.lists(hs.floats(0, 1), min_size=1, max_size=12))
def test_holm_properties_against_its_definition(p):
    adjusted = stats.holm(p)
    m, order = len(p), np.argsort(p, kind="stable")
    expected = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):          # the textbook step-down loop
        running = max(running, min(1.0, (m - rank) * p[index]))
        expected[index] = running
    assert adjusted == pytest.approx(expected)
    assert (adjusted >= np.asarray(p) - 1e-15).all() and (adjusted <= 1).all()
    assert (np.diff(adjusted[order]) >= -1e-15).all()    # monotone in p


def test_compare_samples_verdicts():
    rng = np.random.default_rng(8)
    base = rng.lognormal(np.log(100), 0.02, 30)
    slower = stats.compare_samples(base * 1.10, base)
    assert slower["significant"] and slower["verdict"] == "A is slower (larger values)"
    assert slower["ratio"] == pytest.approx(1.10) and slower["ci_low"] > 1
    faster = stats.compare_samples(base, base * 1.10)
    assert faster["significant"] and faster["verdict"] == "A is faster (smaller values)"
    assert faster["prob_a_less"] > 0.5 and faster["cliffs_delta"] < 0
    same = stats.compare_samples(base, rng.permutation(base))
    assert not same["significant"] and same["verdict"] == "no significant difference"
    assert {"ratio", "ci_low", "ci_high", "p_value", "prob_a_less", "cliffs_delta", "significant",
            "verdict"} <= set(slower)
    json.dumps(slower)


def test_compare_samples_needs_both_the_test_and_the_interval(monkeypatch):
    base = np.random.default_rng(9).lognormal(np.log(100), 0.02, 20)
    monkeypatch.setattr(stats, "mann_whitney_p", lambda a, b: 0.2)      # test not significant
    assert not stats.compare_samples(base * 1.2, base)["significant"]
    monkeypatch.setattr(stats, "mann_whitney_p", lambda a, b: 0.001)    # interval includes 1
    monkeypatch.setattr(stats, "bootstrap_ratio_ci", lambda *args: (1.01, 0.98, 1.04))
    assert not stats.compare_samples(base * 1.2, base)["significant"]


def test_wilson_interval_is_the_zoo_function():
    assert stats.wilson_interval is zoo.wilson_interval


# ---------------------------------------------------------------- simulation

def test_coverage_of_reproduces_the_exact_coverage_at_n5():
    covered = stats.coverage_of(stats.median_interval_rows, lambda rng, shape: rng.uniform(size=shape),
                                0.5, n=5, trials=20_000, seed=0)
    # exact 0.9375 for any continuous distribution; 4 binomial standard errors of slack
    assert abs(covered - 0.9375) < 4 * math.sqrt(0.9375 * 0.0625 / 20_000)
    assert stats.coverage_of(stats.median_interval_rows, lambda rng, shape: rng.uniform(size=shape),
                             0.5, n=5, trials=20_000, seed=0) == covered          # seeded


def test_coverage_of_checks_the_sampler_shape():
    with pytest.raises(ValueError, match=r"shape \(trials, n\)"):
        stats.coverage_of(stats.t_interval_rows, lambda rng, shape: rng.uniform(size=3), 0.5, 5, 10, 0)
    with pytest.raises(ValueError, match="trials"):
        stats.coverage_of(stats.t_interval_rows, lambda rng, shape: rng.uniform(size=shape), 0.5, 5, 0, 0)
