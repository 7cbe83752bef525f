"""Tests of module 14's timing core (time_callable, time_model, LatencyResult, Profiler.measure_latency).

The timing logic runs against a fake clock (module 01's `perf_counter_ns`, which the timing loops
read, is monkeypatched) and callables that advance it by a known amount, so the expected batch
sizes, samples and call counts are worked out by hand. Wall-clock accuracy is not asserted here:
`latency_accuracy_check` measures it, and is run once below only for the structure of its output.
"""
import gc
import json

import pytest

import tinytorch.utils.timing as timing
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear
from tinytorch.core.tensor import Tensor
from tinytorch.profiling.profiler import (LatencyResult, Profiler, latency_accuracy_check, time_callable,
                                          time_model)
from tinytorch.utils.timing import TimerInfo


class FakeClock:
    """perf_counter_ns stand-in: each reading costs read_ns; work(ns) advances it."""

    def __init__(self, read_ns=1):
        self.now, self.read_ns, self.reads = 0, read_ns, 0

    def __call__(self):
        reading = self.now
        self.now += self.read_ns
        self.reads += 1
        return reading


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(timing, "perf_counter_ns", fake)
    return fake


def test_calibrated_batches_on_a_fake_clock(clock):
    log = []

    def work():
        log.append(clock.reads)       # how many clock readings had happened before this call
        clock.now += 250

    result = time_callable(work, warmup=3, iterations=5)
    # measured timer: 1 ns per start/stop pair -> raw samples >= max(1 ms, 1000 x 1 ns) = 1 ms
    assert result.overhead_ns == 1 and result.resolution_ns == 1 and result.min_sample_ns == 1_000_000
    # 250 ns x 4096 = 1,024,000 >= 1 ms > 250 x 2048: batches of 4096 calls
    assert result.calls_per_sample == 4096 and result.n == 5 and result.warmup == 3
    # each raw sample = 4096 x 250 + 1 (the stop reading's own cost), divided by 4096
    assert result.samples_ns == tuple([250 + 1 / 4096] * 5)
    assert result.median_ms == pytest.approx((250 + 1 / 4096) / 1e6, rel=1e-12)
    # warm-up 3, calibration 1 + (1 + 2 + ... + 2048) + 2 x 4096, then 5 timed batches
    assert len(log) == 3 + 1 + 4095 + 8192 + 5 * 4096
    timer_reads = log[0]
    assert log[:3] == [timer_reads] * 3           # the warm-up calls come before any timed batch


def test_single_calls_and_a_given_timer(clock):
    def work():
        clock.now += 700

    result = time_callable(work, warmup=0, iterations=4, calls=1, timer=TimerInfo(40.0, 1, 10))
    assert result.calls_per_sample == 1 and result.min_sample_ns is None
    assert result.samples_ns == (701.0,) * 4 and result.overhead_ns == 40.0
    assert result.warning is not None and "< 1 ms" in result.warning


def test_explicit_minimum_sample(clock):
    def work():
        clock.now += 1000

    result = time_callable(work, warmup=0, iterations=2, min_sample_ns=5_000_000, timer=TimerInfo(1.0, 1, 1))
    assert result.calls_per_sample == 8192 and result.min_sample_ns == 5_000_000   # 1000 x 4096 < 5 ms


def test_gc_state_is_recorded_and_restored():
    assert gc.isenabled()
    off = time_callable(lambda: None, warmup=0, iterations=2, calls=10, disable_gc=True)
    assert off.gc_enabled is False and off.environment["gc_enabled"] is False and gc.isenabled()
    on = time_callable(lambda: None, warmup=0, iterations=2, calls=10)
    assert on.gc_enabled is True


def test_gc_is_enabled_again_when_the_callable_fails():
    def boom():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        time_callable(boom, warmup=0, iterations=1, calls=1, disable_gc=True)
    assert gc.isenabled()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"fn": 5}, TypeError, "callable"),
    ({"fn": lambda: None, "warmup": -1}, ValueError, "warmup"),
    ({"fn": lambda: None, "iterations": 0}, ValueError, "iterations"),
])
def test_time_callable_rejects_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        time_callable(**kwargs)


def test_time_model_times_model_of_input(clock):
    seen = []

    def model(x):
        seen.append(x)
        clock.now += 500_000

    result = time_model(model, "input", warmup=2, iterations=3)
    assert set(seen) == {"input"} and result.name == "model"
    assert result.calls_per_sample == 2 and result.samples_ns == ((1_000_000 + 1) / 2,) * 3


def test_measure_latency_returns_a_float_and_keeps_the_result():
    profiler = Profiler()
    layer = Linear(16, 8, rng=0)
    ms = profiler.measure_latency(layer, Tensor.randn(4, 16, rng=1), warmup=2, iterations=5)
    result = profiler.last_latency
    assert isinstance(ms, float) and isinstance(result, LatencyResult)
    assert ms == result.median_ms == float(result) > 0
    assert result.n == 5 and len(result.samples_ns) == 5 and result.warmup == 2
    assert result.min_sample_ns >= 1_000_000 and result.overhead_ns > 0 and result.resolution_ns > 0
    assert result.environment["timer"] == "perf_counter_ns"
    json.dumps(result.to_dict())                       # plain values, raw samples included
    assert "Linear" in repr(result) and "Linear" in repr(profiler)


def test_measure_latency_runs_a_module_in_inference_mode():
    from tinytorch.core.autograd import is_grad_enabled
    from tinytorch.core.layers import Module

    class Spy(Module):
        def __init__(self):
            super().__init__()
            self.states = set()

        def forward(self, x):
            self.states.add((self.training, is_grad_enabled()))
            return x

    spy = Spy()
    Profiler().measure_latency(spy, Tensor.zeros(1), warmup=1, iterations=2)
    assert spy.states == {(False, False)} and spy.training   # eval + no_grad inside, flag restored


def test_measure_latency_accepts_activations_and_plain_callables():
    assert Profiler().measure_latency(ReLU(), Tensor.zeros(3), warmup=1, iterations=2) > 0
    with pytest.raises(TypeError, match="not callable"):
        Profiler().measure_latency([1, 2], Tensor.zeros(3))


def test_latency_accuracy_check_structure():
    rows = latency_accuracy_check(warmup=2, iterations=10)
    assert [row["callable"] for row in rows] == ["busy-wait 200 us", "busy-wait 2 ms", "python ~200 ns"]
    assert [row["target"] for row in rows] == [0.03, 0.03, 0.10]
    for row in rows:
        assert row["truth_ms"] > 0 and row["measured_ms"] > 0 and row["calls_per_sample"] >= 1
        assert row["relative_error"] == pytest.approx((row["measured_ms"] - row["truth_ms"]) / row["truth_ms"])
        assert row["within_target"] == (abs(row["relative_error"]) <= row["target"])
        assert row["truth_method"] and (row["warning"] is None or isinstance(row["warning"], str))
    assert rows[0]["truth_ms"] >= 0.2 and rows[1]["truth_ms"] >= 2.0


def test_drift_warning_names_both_truth_blocks():
    from tinytorch.profiling.profiler import _drift_warning

    assert _drift_warning(100.0, 104.0) is None
    warning = _drift_warning(100.0, 130.0)
    assert "100.0" in warning and "130.0" in warning and "30% apart" in warning
