"""Tests of the exported tinytorch.utils.timing (Module 01's timing helpers, used by every module).

Oracles: numpy (percentiles with its default linear method, std with ddof=1), the standard
library's statistics.quantiles(method="inclusive"), and values computed by hand. The timing loops
run against a fake clock (the module's `perf_counter_ns` is monkeypatched) and fake callables that
advance it and record the order of calls, so the tests check logic, never wall-clock speed.
"""
import statistics
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch.utils.timing as timing
from tinytorch.utils.timing import (MIN_SAMPLE_FLOOR_NS, NOISE_LIMIT, TimerInfo, Timing, calls_per_sample,
                                    coefficient_of_variation, describe_environment, environment, iqr_over_median,
                                    measure, measure_interleaved, measure_timer, noise_warning, quartiles,
                                    required_sample_ns, time_batch)

PROPERTY = settings(max_examples=40, deadline=None, database=None)
DURATIONS = st.lists(st.floats(1.0, 1e9, allow_nan=False, allow_infinity=False), min_size=1, max_size=50)


class FakeClock:
    """A perf_counter_ns stand-in: reading it costs read_ns, work() advances it; tick rounds it down."""

    def __init__(self, read_ns=0, tick=1):
        self.now, self.read_ns, self.tick = 0, read_ns, tick

    def __call__(self):
        reading = self.now - self.now % self.tick
        self.now += self.read_ns
        return reading

    def work(self, ns):
        self.now += ns


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(timing, "perf_counter_ns", fake)
    return fake


def worker(clock, cost_ns, log=None, label=None):
    """A callable that takes cost_ns on the fake clock and appends label to log."""
    def call():
        clock.work(cost_ns)
        if log is not None:
            log.append(label)
    return call


# ---------------------------------------------------------------- statistics against numpy

def test_the_clock_is_perf_counter_ns():
    assert timing.perf_counter_ns is time.perf_counter_ns


def test_quartiles_by_hand():
    # sorted: 96, 98, 100, 104, 150; with 5 values the quartiles are exactly the 2nd, 3rd, 4th
    assert quartiles([100, 104, 96, 98, 150]) == (98.0, 100.0, 104.0)
    assert quartiles([1, 2, 3, 4]) == (1.75, 2.5, 3.25)  # linear interpolation between order statistics
    assert quartiles([7]) == (7.0, 7.0, 7.0)
    assert iqr_over_median([100, 104, 96, 98, 150]) == pytest.approx(0.06)


@PROPERTY
@given(DURATIONS)
def test_quartiles_match_numpy_default_method(samples):
    q1, median, q3 = quartiles(samples)
    np.testing.assert_allclose([q1, median, q3], np.percentile(samples, [25, 50, 75]), rtol=1e-12)
    assert median == pytest.approx(np.median(samples), rel=1e-12)
    assert q1 <= median <= q3 and min(samples) <= q1 and q3 <= max(samples)
    assert iqr_over_median(samples) == pytest.approx((q3 - q1) / np.median(samples), rel=1e-12, abs=1e-15)


@PROPERTY
@given(DURATIONS.filter(lambda s: len(s) >= 2))
def test_quartiles_match_statistics_inclusive(samples):
    expected = statistics.quantiles(samples, n=4, method="inclusive")
    np.testing.assert_allclose(quartiles(samples), expected, rtol=1e-9)


@PROPERTY
@given(DURATIONS.filter(lambda s: len(s) >= 2))
def test_coefficient_of_variation_matches_numpy(samples):
    expected = np.std(samples, ddof=1) / np.mean(samples)
    assert coefficient_of_variation(samples) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@PROPERTY
@given(DURATIONS, st.floats(0.01, 100.0))
def test_scaling_scales_quartiles_and_keeps_relative_spread(samples, factor):
    scaled = [factor * value for value in samples]
    np.testing.assert_allclose(quartiles(scaled), np.multiply(factor, quartiles(samples)), rtol=1e-9)
    assert iqr_over_median(scaled) == pytest.approx(iqr_over_median(samples), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("function", [quartiles, iqr_over_median, coefficient_of_variation, noise_warning])
def test_empty_samples_are_an_error(function):
    with pytest.raises(ValueError, match="samples is empty"):
        function([])


@pytest.mark.parametrize("bad", [[1.0, float("nan")], [float("inf"), 2.0]])
def test_non_finite_samples_are_an_error(bad):
    with pytest.raises(ValueError, match="finite"):
        quartiles(bad)


def test_spread_statistics_reject_what_they_cannot_describe():
    with pytest.raises(ValueError, match="at least 2 samples, got 1"):
        coefficient_of_variation([5.0])
    with pytest.raises(ValueError, match="positive median"):
        iqr_over_median([0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="positive mean"):
        coefficient_of_variation([-1.0, 0.5])


@pytest.mark.parametrize("overhead, floor, expected", [
    (70, MIN_SAMPLE_FLOOR_NS, 1_000_000),       # 1000 x 70 ns is far below 1 ms
    (2_000, MIN_SAMPLE_FLOOR_NS, 2_000_000),    # a slow timer: 1000 x its overhead
    (70, 5_000_000, 5_000_000),
    (0, MIN_SAMPLE_FLOOR_NS, 1_000_000),
])
def test_required_sample_ns_is_max_of_floor_and_1000_overheads(overhead, floor, expected):
    assert required_sample_ns(overhead, floor) == expected


@pytest.mark.parametrize("overhead, floor", [(-1, MIN_SAMPLE_FLOOR_NS), (70, 999_999)])
def test_required_sample_ns_rejects_bad_input(overhead, floor):
    with pytest.raises(ValueError, match="floor_ns >= 1,000,000"):
        required_sample_ns(overhead, floor)


# ---------------------------------------------------------------- noise warnings at the thresholds

def test_quiet_samples_get_no_warning():
    assert NOISE_LIMIT == 0.10
    assert noise_warning([2e6, 2.02e6, 1.98e6, 2.01e6, 1.99e6]) is None


def test_iqr_over_median_at_the_limit_is_flagged():
    at_limit = [90, 95, 100, 105, 110]                # IQR 10 / median 100 = 10%; CV 7.9%
    below = [90.2, 95.2, 100, 104.8, 109.8]           # IQR 9.6%; CV 7.7%
    warning = noise_warning(at_limit, calls_per_sample=100_000)
    assert warning.startswith("noisy: ") and "IQR/median 10.0%" in warning and "CV" not in warning
    assert "n=5" in warning and "close other programs and rerun, or raise repeats" in warning
    assert noise_warning(below, calls_per_sample=100_000) is None


@pytest.mark.parametrize("half_width, flagged", [(7.0, False), (7.1, True)])
def test_cv_at_the_limit_is_flagged(half_width, flagged):
    # two samples 100 -+ d: CV = d * sqrt(2) / 100 (9.9% or 10.04%), IQR/median = d / 100 (7%)
    samples = [100 - half_width, 100 + half_width]
    warning = noise_warning(samples, calls_per_sample=100_000)
    assert (warning is not None) == flagged
    if flagged:
        assert "CV 10.0%" in warning and "IQR/median" not in warning


def test_one_outlier_is_caught_by_the_cv_even_when_the_iqr_is_zero():
    warning = noise_warning([1e6] * 9 + [2e6])
    assert "CV 28.7%" in warning and "n=10" in warning


@pytest.mark.parametrize("calls, flagged", [(1, True), (2, False), (3, False)])
def test_raw_samples_shorter_than_1_ms_are_flagged(calls, flagged):
    warning = noise_warning([500_000.0] * 5, calls_per_sample=calls)  # raw sample = 0.5 ms x calls
    assert (warning is not None) == flagged
    if flagged:
        assert "raw samples last 0.5 ms < 1 ms" in warning and "raise min_sample_ns" in warning


def test_a_single_sample_is_flagged():
    assert "a single sample shows no spread" in noise_warning([3e6])


def test_problems_and_remedies_are_combined():
    warning = noise_warning([100.0, 200.0, 300.0], calls_per_sample=10)
    assert "IQR/median 50.0%" in warning and "CV 50.0%" in warning and "raw samples last 0.002 ms" in warning
    assert "raise repeats; time more calls per sample" in warning


# ---------------------------------------------------------------- result objects

def test_timing_statistics_and_repr():
    result = Timing("add", [100, 104, 96, 98, 150], calls_per_sample=20_000)
    assert result.samples_ns == (100.0, 104.0, 96.0, 98.0, 150.0) and result.n == 5
    assert result.median_ns == 100.0 and result.iqr_over_median == pytest.approx(0.06)
    assert result.warning == noise_warning(result.samples_ns, 20_000) and "CV 20.8%" in result.warning
    assert result.noise == result.warning
    assert repr(result) == "Timing('add': median 100 ns per call, IQR/median 6.0%, n=5 samples of 20000 call(s))"
    quiet = Timing(("Linear", 16), [2.5e6, 2.5e6, 2.6e6])
    assert quiet.warning is None and quiet.noise == "IQR/median 2.0% (n=3)"
    assert "median 2.5 ms per call" in repr(quiet) and "('Linear', 16)" in repr(quiet)


def test_timing_validates_its_fields():
    with pytest.raises(ValueError, match="samples is empty"):
        Timing("x", [], 1)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="calls_per_sample must be an int >= 1"):
            Timing("x", [1.0], bad)


def test_timer_info_repr():
    assert repr(TimerInfo(62.0, 31, 2000)) == (
        "TimerInfo(perf_counter_ns: overhead 62 ns per start/stop pair, resolution 31 ns, from 2000 pairs)")


# ---------------------------------------------------------------- timing loops on a fake clock

def test_measure_timer_reports_overhead_and_smallest_step(monkeypatch):
    monkeypatch.setattr(timing, "perf_counter_ns", FakeClock(read_ns=30, tick=100))
    info = measure_timer(pairs=50)
    # reads 30 ns apart on a clock that ticks every 100 ns: gaps are 0 or 100, and the
    # first change seen is always one tick
    assert info.resolution_ns == 100 and info.pairs == 50
    assert info.overhead_ns in (0.0, 50.0, 100.0)
    monkeypatch.setattr(timing, "perf_counter_ns", FakeClock(read_ns=55))
    assert measure_timer(pairs=10) == TimerInfo(55.0, 55, 10)


def test_measure_timer_rejects_bad_pairs():
    with pytest.raises(ValueError, match="pairs must be an int >= 1, got 0"):
        measure_timer(0)


def test_time_batch_times_the_calls(clock):
    log = []
    assert time_batch(worker(clock, 250, log, "f"), 8) == 2000 and log == ["f"] * 8


def test_calls_per_sample_is_the_smallest_power_of_two_lasting_the_minimum(clock):
    log = []
    fn = worker(clock, 300, log, "f")
    assert calls_per_sample(fn, 1_000_000) == 4096        # 2048 x 300 ns = 0.61 ms < 1 ms <= 4096 x 300 ns
    # one warm-up call, batches 1, 2, ..., 2048 once each, and 4096 twice (accepted twice in a row)
    assert len(log) == 1 + (4096 - 1) + 2 * 4096
    assert calls_per_sample(worker(clock, 5_000_000), 1_000_000) == 1   # a slow call: single calls


def test_one_slow_batch_does_not_end_the_calibration(clock):
    costs = iter([300, 2_000_000])                          # warm-up, then a hiccup in the first batch

    def hiccup():
        clock.work(next(costs, 300))

    assert calls_per_sample(hiccup, 1_000_000) == 4096


def test_measure_interleaved_alternates_fixed_batches(clock):
    log = []
    fns = {"A": worker(clock, 300, log, "A"), "B": worker(clock, 700, log, "B")}
    result = measure_interleaved(fns, repeats=3, calls=2)
    assert "".join(log) == "AABB" * 3                       # no warm-up, no calibration with calls=
    assert result["A"].samples_ns == (300.0,) * 3 and result["B"].samples_ns == (700.0,) * 3
    assert result["A"].calls_per_sample == 2 and list(result) == ["A", "B"]
    assert isinstance(result["A"], Timing) and result["A"].name == "A"


def test_rewarm_adds_one_untimed_call_before_each_batch(clock):
    log = []
    fns = {"A": worker(clock, 300, log, "A"), "B": worker(clock, 700, log, "B")}
    result = measure_interleaved(fns, repeats=2, calls=2, rewarm=True)
    assert "".join(log) == "AAABBB" * 2
    assert result["A"].samples_ns == (300.0, 300.0) and result["B"].samples_ns == (700.0, 700.0)


def test_calibrated_interleaving_calibrates_each_then_alternates(clock):
    log = []
    fns = {"A": worker(clock, 300, log, "A"), "B": worker(clock, 700, log, "B")}
    result = measure_interleaved(fns, repeats=4, min_sample_ns=1_000_000)
    assert result["A"].calls_per_sample == 4096 and result["B"].calls_per_sample == 2048
    calibration_a, calibration_b = 1 + 4095 + 2 * 4096, 1 + 2047 + 2 * 2048
    assert log[:calibration_a] == ["A"] * calibration_a
    assert log[calibration_a:calibration_a + calibration_b] == ["B"] * calibration_b
    rounds = log[calibration_a + calibration_b:]
    assert rounds == (["A"] * 4096 + ["B"] * 2048) * 4
    assert result["A"].samples_ns == (300.0,) * 4 and result["B"].samples_ns == (700.0,) * 4
    assert result["A"].warning is None                      # 4096 x 300 ns = 1.2 ms per raw sample


def test_default_minimum_comes_from_the_measured_timer(monkeypatch):
    fake = FakeClock(read_ns=2_000)                         # a slow clock: 1000 x 2 us = 2 ms per sample
    monkeypatch.setattr(timing, "perf_counter_ns", fake)
    result = measure(worker(fake, 100_000), repeats=3, name="slow clock")
    assert result.calls_per_sample == 32                    # 16 x 0.1 ms + 2 us < 2 ms <= 32 x 0.1 ms
    assert result.name == "slow clock" and result.n == 3


def test_measure_names_the_timing_after_the_function(clock):
    def step():
        clock.work(2_000_000)

    result = measure(step, repeats=2, calls=1)
    assert result.name == "step" and result.samples_ns == (2e6, 2e6)


def test_measure_interleaved_on_the_real_clock_returns_sane_samples():
    result = measure(lambda: None, repeats=3, min_sample_ns=1_000_000)
    assert result.n == 3 and all(value > 0 for value in result.samples_ns)
    calls = result.calls_per_sample
    assert calls >= 1 and calls & (calls - 1) == 0          # a power of two


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(fns={}, repeats=3), ValueError, "non-empty dict"),
    (dict(fns=[lambda: None], repeats=3), ValueError, "non-empty dict"),
    (dict(fns={"a": 3}, repeats=3), TypeError, r"fns\['a'\] is a int, not callable"),
    (dict(fns={"a": print}, repeats=0), ValueError, "repeats must be an int >= 1, got 0"),
    (dict(fns={"a": print}, repeats=2.5), ValueError, "repeats must be an int >= 1, got 2.5"),
    (dict(fns={"a": print}, repeats=True), ValueError, "repeats must be an int >= 1, got True"),
    (dict(fns={"a": print}, repeats=3, calls=0), ValueError, "calls must be an int >= 1, got 0"),
    (dict(fns={"a": print}, repeats=3, calls=2, min_sample_ns=1e6), ValueError, "not both"),
])
def test_measure_interleaved_rejects_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        measure_interleaved(**kwargs)


def test_calls_per_sample_rejects_bad_input():
    with pytest.raises(TypeError, match="fn is a str, not callable"):
        calls_per_sample("f", 1_000_000)
    with pytest.raises(ValueError, match="min_sample_ns must be > 0, got 0"):
        calls_per_sample(print, 0)


# ---------------------------------------------------------------- environment

def test_environment_records_the_timer_and_the_machine():
    env = environment(TimerInfo(62.0, 31, 100), min_sample_ns=5_000_000)
    assert env["timer"] == "perf_counter_ns" and env["timer_overhead_ns"] == 62.0
    assert env["timer_resolution_ns"] == 31 and env["min_sample_ns"] == 5_000_000
    assert env["numpy"] == np.__version__ and env["cpu_count"] >= 1
    assert set(env["threads"]) == {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}
    assert isinstance(env["gc_enabled"], bool) and env["timer_resolution_s"] > 0
    machine, timer_line = describe_environment(env).split("\n")
    assert machine.startswith(f"Python {env['python']}, numpy {np.__version__}")
    assert "overhead 62 ns per start/stop pair" in timer_line and "raw samples >= 5.0 ms" in timer_line


def test_environment_without_a_minimum_says_nothing_about_it():
    env = environment(TimerInfo(62.0, 31, 100))
    assert env["min_sample_ns"] is None and "raw samples" not in describe_environment(env)
