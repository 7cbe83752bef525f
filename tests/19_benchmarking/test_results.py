"""BenchmarkResult, compare_results, McNemar: against scipy and hand-computed values."""
import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from tinytorch.benchmarking.results import (BenchmarkResult, compare_results, geometric_mean, mcnemar_p,
                                            system_info)
from tinytorch.models.zoo import wilson_interval


def test_summary_matches_scipy():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    r = BenchmarkResult("latency_ms", values, {"unit": "ms"})
    assert (r.mean, r.median, r.min_val, r.max_val, r.count) == (3.0, 3.0, 1.0, 5.0, 5)
    assert r.std == pytest.approx(math.sqrt(2.5))
    low, high = stats.t.interval(0.95, 4, loc=3.0, scale=math.sqrt(2.5) / math.sqrt(5))
    assert (r.ci_lower, r.ci_upper) == (pytest.approx(low), pytest.approx(high))
    assert r.median_ci == (1.0, 5.0) and r.median_ci_confidence == pytest.approx(1 - 2 * 0.5 ** 5)
    assert r.p90 == pytest.approx(np.percentile(values, 90))
    assert r.iqr == pytest.approx(2.0) and r.cv == pytest.approx(math.sqrt(2.5) / 3)


def test_outliers_counted_not_dropped():
    r = BenchmarkResult("x", [1.0, 2.0, 3.0, 4.0, 100.0])
    assert r.outlier_count == 1 and r.count == 5 and r.max_val == 100.0    # q1=2, q3=4: fences -1 and 7
    assert any("outlier" in w for w in r.warnings)


def test_tail_flags_follow_the_rule():
    assert BenchmarkResult("x", np.arange(1, 64.0)).tail_flags["p90"] is True
    assert BenchmarkResult("x", np.arange(1, 65.0)).tail_flags["p90"] is False
    assert BenchmarkResult("x", np.arange(1, 662.0)).tail_flags["p99"] is True
    assert BenchmarkResult("x", np.arange(1, 663.0)).tail_flags["p99"] is False


@pytest.mark.parametrize("values, match", [([], "empty"), ([1.0, float("nan")], "NaN"), ([1.0, float("inf")], "inf")])
def test_bad_values_are_rejected(values, match):
    with pytest.raises(ValueError, match=match):
        BenchmarkResult("latency_ms", values)


def test_bad_name_and_metadata():
    with pytest.raises(ValueError, match="metric_name"):
        BenchmarkResult("", [1.0])
    with pytest.raises(TypeError, match="metadata"):
        BenchmarkResult("x", [1.0, 2.0], metadata=[1])


def test_single_value_warns_and_is_degenerate():
    with pytest.warns(RuntimeWarning, match="single value"):
        r = BenchmarkResult("latency_ms", [2.5])
    assert (r.ci_lower, r.ci_upper) == (2.5, 2.5) and r.std == 0.0 and r.cv is None
    json.dumps(r.to_dict(), allow_nan=False)


def test_wilson_interval_for_proportions():
    hits = [1.0] * 18 + [0.0] * 2
    r = BenchmarkResult("accuracy", hits, {"interval": "wilson"})
    assert r.mean == 0.9 and (r.ci_lower, r.ci_upper) == wilson_interval(18, 20)
    with pytest.raises(ValueError, match="0/1"):
        BenchmarkResult("accuracy", [0.5, 1.0], {"interval": "wilson"})
    with pytest.raises(ValueError, match="interval"):
        BenchmarkResult("accuracy", [0.0, 1.0], {"interval": "z"})


def test_round_trip_through_json():
    r = BenchmarkResult("latency_ms", np.random.default_rng(0).lognormal(0, 0.3, 40), {"unit": "ms", "model": "m"})
    text = json.dumps(r.to_dict(), allow_nan=False)
    back = BenchmarkResult.from_dict(json.loads(text))
    assert back == r and back.ci_lower == r.ci_lower and back.median_ci == r.median_ci
    with pytest.raises(ValueError, match="schema"):
        BenchmarkResult.from_dict({"metric_name": "x", "values": [1]})
    assert "median" in str(r) and "order-statistic" in str(r) and "latency_ms" in repr(r)


def test_values_are_read_only():
    r = BenchmarkResult("x", [1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        r.values[0] = 9.0


def test_compare_results_detects_a_real_difference():
    gen = np.random.default_rng(1)
    fast = BenchmarkResult("latency_ms", gen.lognormal(0.0, 0.05, 40), {"model": "fast"})
    slow = BenchmarkResult("latency_ms", gen.lognormal(np.log(1.3), 0.05, 40), {"model": "slow"})
    c = compare_results(fast, slow)
    assert c.significant and c.ci_high < 1 and c.p_value < 1e-6 and c.prob_a_less > 0.95
    assert c.verdict.startswith("fast is lower (better")
    assert c.ratio == pytest.approx(np.median(fast.values) / np.median(slow.values))
    assert stats.mannwhitneyu(fast.values, slow.values).pvalue == pytest.approx(c.p_value)


def test_compare_results_says_no_difference_when_true():
    gen = np.random.default_rng(2)
    a = BenchmarkResult("latency_ms", gen.lognormal(0, 0.1, 30))
    b = BenchmarkResult("latency_ms", gen.lognormal(0, 0.1, 30))
    c = compare_results(a, b)
    assert not c.significant and c.verdict == "no significant difference"


def test_compare_results_higher_is_better_and_errors():
    hi = BenchmarkResult("throughput", np.full(20, 10.0) + np.arange(20) * 0.01, {"higher_is_better": True})
    lo = BenchmarkResult("throughput", np.full(20, 5.0) + np.arange(20) * 0.01, {"higher_is_better": True})
    assert "higher (better" in compare_results(hi, lo, names=("hi", "lo")).verdict
    with pytest.raises(ValueError, match="different metrics"):
        compare_results(hi, BenchmarkResult("latency_ms", [1.0, 2.0]))
    with pytest.raises(TypeError, match="BenchmarkResult"):
        compare_results(hi, [1.0, 2.0])


def test_mcnemar_by_hand():
    a = np.array([1] * 8 + [0] * 2 + [1] * 50, dtype=bool)     # a alone right 8 times, b alone 2 times
    b = np.array([0] * 8 + [1] * 2 + [1] * 50, dtype=bool)
    assert mcnemar_p(a, b) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert mcnemar_p(a, a) == 1.0
    with pytest.raises(ValueError, match="same examples"):
        mcnemar_p(a, b[:-1])


def test_geometric_mean_and_system_info():
    assert geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        geometric_mean([1.0, 0.0])
    info = system_info()
    for key in ("python", "numpy", "blas", "tinytorch", "git_commit", "cpu_model", "logical_cores",
                "physical_cores", "thread_settings", "load_average", "os", "timestamp"):
        assert key in info
    json.dumps(info)
