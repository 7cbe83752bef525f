"""Tests of tinytorch.benchmarking.timer (precise_timer, measure_adaptive, AdaptiveTiming).

The loops run against a fake clock (perf_counter_ns of module 01's timing core and of the timer
module are monkeypatched with one FakeClock) and callables that advance it by known amounts, so
batch sizes, samples, drift discards and stopping reasons are worked out by hand. Wall-clock
timings are never asserted (the machine is shared); selfcheck measures real accuracy.
"""
import gc
import json
import math

import pytest

import tinytorch.benchmarking.timer as timer_module
import tinytorch.utils.timing as timing
from tinytorch.benchmarking.timer import (DRIFT_HALF, AdaptiveTiming, PreciseTimer, is_drifting, measure_adaptive,
                                          precise_timer, rel_halfwidth)
from tinytorch.utils.timing import TimerInfo

TIMER = TimerInfo(1.0, 1, 1)


class FakeClock:
    """perf_counter_ns stand-in: each reading costs read_ns; work(ns) advances it."""

    def __init__(self, read_ns=1):
        self.now, self.read_ns = 0, read_ns

    def __call__(self):
        reading = self.now
        self.now += self.read_ns
        return reading


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(timing, "perf_counter_ns", fake)
    monkeypatch.setattr(timer_module, "perf_counter_ns", fake)
    return fake


def worker(clock, costs, log=None, name=None):
    """A callable whose k-th call costs costs(k) fake ns (and logs its name)."""
    calls = [0]

    def work():
        clock.now += costs(calls[0])
        calls[0] += 1
        if log is not None:
            log.append(name)
    return work


# ---------------------------------------------------------------- precise_timer

def test_precise_timer_measures_a_block(clock):
    with precise_timer() as t:
        clock.now += 5_000
    # the start reading itself costs the fake clock's 1 ns
    assert t.elapsed_ns == 5_001 and isinstance(t.elapsed_ns, int) and t.elapsed == 5.001e-6
    assert repr(t) == "PreciseTimer(elapsed 5 us, perf_counter_ns)"


def test_precise_timer_is_exception_safe(clock):
    with pytest.raises(KeyError):
        with precise_timer() as t:
            clock.now += 700
            raise KeyError("boom")
    assert t.elapsed_ns == 701                      # set although the block raised


def test_reading_the_timer_inside_the_block_is_an_error():
    t = PreciseTimer()
    assert repr(t) == "PreciseTimer(not started)"
    with pytest.raises(RuntimeError, match="has not started"):
        t.elapsed
    with t:
        assert repr(t) == "PreciseTimer(running)"
        with pytest.raises(RuntimeError, match="still running.*after the `with precise_timer"):
            t.elapsed
    assert t.elapsed >= 0


def test_precise_timer_on_the_real_clock():
    with precise_timer() as t:
        sum(range(1000))
    assert t.elapsed_ns > 0 and t.elapsed == t.elapsed_ns / 1e9


# ---------------------------------------------------------------- measure_adaptive on a fake clock

def test_rounds_are_interleaved_after_interleaved_warmup(clock):
    log = []
    fns = {name: worker(clock, lambda k: 1000, log, name) for name in "ABC"}
    results = measure_adaptive(fns, calls=1, warmup=2, min_samples=10, timer=TIMER)
    rounds = results["A"].n
    rotated = [["A", "B", "C"], ["B", "C", "A"], ["C", "A", "B"]]
    assert log == ["A", "B", "C"] * 2 + [name for r in range(rounds) for name in rotated[r % 3]]
    assert rounds == 10 and all(r.stopped == "converged" for r in results.values())


def test_calibrated_batches_and_exact_samples(clock):
    results = measure_adaptive({"f": worker(clock, lambda k: 250)}, timer=TIMER)
    f = results["f"]
    # 1 ms floor (1000 x 1 ns overhead < 1 ms): 250 ns x 4096 = 1.024 ms >= 1 ms > 250 x 2048
    assert f.calls_per_sample == 4096 and f.warmup == 5
    assert f.samples_ns == (250 + 1 / 4096,) * 10          # + the stop reading's own 1 ns, per call
    assert f.stopped == "converged" and f.rel_halfwidth == 0 and f.discarded == 0 and f.drift == "stable"
    assert f.median_ns == pytest.approx(250 + 1 / 4096) and f.timer is TIMER


def test_single_calls_and_an_explicit_floor(clock):
    single = measure_adaptive({"f": worker(clock, lambda k: 700)}, calls=1, timer=TIMER)["f"]
    assert single.calls_per_sample == 1 and set(single.samples_ns) == {701.0}
    assert any("< 1 ms" in w for w in single.warnings)
    floor = measure_adaptive({"f": worker(clock, lambda k: 1000)}, min_sample_ns=5_000_000, timer=TIMER)["f"]
    assert floor.calls_per_sample == 8192                  # 1000 x 4096 < 5 ms <= 1000 x 8192


def test_stops_at_max_samples_when_the_target_is_out_of_reach(clock):
    noisy = worker(clock, lambda k: 1000 + 400 * (k % 3))
    f = measure_adaptive({"f": noisy}, calls=1, max_samples=12, min_samples=10, timer=TIMER)["f"]
    assert f.stopped == "max_samples" and f.n == 12 and f.rel_halfwidth > 0.02
    assert any("stopped at max_samples" in w for w in f.warnings)


def test_stops_at_max_time(clock):
    slow = worker(clock, lambda k: 1_000_000 + 300_000 * (k % 2))          # 1-1.3 fake ms per call
    f = measure_adaptive({"f": slow}, calls=1, warmup=0, max_time_s=0.0055, timer=TIMER)["f"]
    assert f.stopped == "max_time" and f.n == 5 and math.isnan(f.rel_halfwidth)
    assert f.drift.startswith("not checked") and f.elapsed_s >= 0.0055
    assert f.to_dict()["rel_halfwidth"] is None


def test_min_time_keeps_sampling_after_convergence(clock):
    f = measure_adaptive({"f": worker(clock, lambda k: 100_000)}, calls=1, warmup=0, min_time_s=0.002, timer=TIMER)
    assert f["f"].stopped == "converged" and f["f"].n == 20          # 20 x 0.1 fake ms reaches 2 ms


def test_a_drifting_start_is_discarded_for_every_callable(clock):
    warming = worker(clock, lambda k: 2000 if k < DRIFT_HALF else 1000)   # first 5 calls twice as slow
    steady = worker(clock, lambda k: 500)
    results = measure_adaptive({"warming": warming, "steady": steady}, calls=1, warmup=0, timer=TIMER)
    for result in results.values():
        assert result.discarded == DRIFT_HALF and len(result.discarded_ns) == DRIFT_HALF
        assert result.drift == f"stable after discarding {DRIFT_HALF} round(s)" and result.n == 10
    assert set(results["warming"].discarded_ns) == {2001.0} and set(results["warming"].samples_ns) == {1001.0}


def test_drift_discards_stop_at_the_cap(clock):
    falling = worker(clock, lambda k: 10_000 * 0.9 ** k + 1000)           # never settles
    f = measure_adaptive({"f": falling}, calls=1, warmup=0, max_samples=50, timer=TIMER)["f"]
    assert f.discarded == 10                                           # cap: 20% of 50 rounds
    assert f.drift == "still drifting after discarding 10 round(s), the cap"
    assert any("still drifting" in w for w in f.warnings)


def test_progress_sees_every_round(clock):
    seen = []
    measure_adaptive({"f": worker(clock, lambda k: 1000)}, calls=1, timer=TIMER,
                     progress=lambda rnd, width: seen.append((rnd, width)))
    assert [rnd for rnd, _ in seen] == list(range(1, 11))
    assert math.isnan(seen[0][1]) and seen[-1][1] == 0.0           # n=1: no honest interval yet


def test_gc_state_is_recorded_not_changed(clock):
    gc.disable()
    try:
        f = measure_adaptive({"f": worker(clock, lambda k: 1000)}, calls=1, timer=TIMER)["f"]
        assert f.gc_enabled is False and not gc.isenabled()
    finally:
        gc.enable()


def test_result_is_json_ready_and_printable(clock):
    f = measure_adaptive({"f": worker(clock, lambda k: 1000)}, calls=1, timer=TIMER)["f"]
    document = json.loads(json.dumps(f.to_dict()))
    assert document["samples_ns"] == [1001.0] * 10 and document["stopped"] == "converged"
    assert document["ci_low_ns"] == document["ci_high_ns"] == 1001.0 and document["timer_overhead_ns"] == 1.0
    assert repr(f).startswith("AdaptiveTiming('f': median 1 us per call +-0.0% (95%, target 2.0%), n=10 samples of 1 call(s), "
                              "converged, 0 discarded, warm-up 5")
    assert f.timing.median_ns == f.median_ns and f.ci_ns[2] == pytest.approx(0.978515625)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"fns": {}}, ValueError, "non-empty dict"),
    ({"fns": {"a": 3}}, TypeError, "not callable"),
    ({"target_rel_halfwidth": 0}, ValueError, "target_rel_halfwidth"),
    ({"confidence": 1.5}, ValueError, "confidence"),
    ({"min_samples": 20, "max_samples": 10}, ValueError, "max_samples"),
    ({"min_time_s": 2, "max_time_s": 1}, ValueError, "min_time_s"),
    ({"warmup": -1}, ValueError, "warmup"),
    ({"calls": 4, "min_sample_ns": 1e6}, ValueError, "not both"),
    ({"calls": 0}, ValueError, "calls"),
])
def test_bad_settings_are_rejected(kwargs, error, message):
    settings = {"fns": {"a": lambda: None}, **kwargs}
    with pytest.raises(error, match=message):
        measure_adaptive(**settings)


def test_measure_adaptive_on_the_real_clock_structure_only():
    results = measure_adaptive({"sum": lambda: sum(range(50)), "len": lambda: len("abc")},
                               min_sample_ns=20_000, max_samples=30, max_time_s=2.0)
    for name, result in results.items():
        assert isinstance(result, AdaptiveTiming) and result.name == name
        assert result.stopped in ("converged", "max_samples", "max_time") and 1 <= result.n <= 30
        assert result.calls_per_sample >= 1 and all(v > 0 for v in result.samples_ns)
        assert result.timer.overhead_ns > 0
    assert results["sum"].n == results["len"].n                         # rounds are paired


# ---------------------------------------------------------------- helpers

def test_rel_halfwidth_by_hand():
    values = [90.0, 95.0, 100.0, 104.0, 120.0, 99.0, 101.0, 98.0, 102.0, 100.0]
    # n=10: ranks 2 and 9 of the sorted values (95, 104), median 100 -> max(5, 4) / 100
    assert rel_halfwidth(values) == pytest.approx(0.05)
    assert math.isnan(rel_halfwidth(values[:5]))          # (min, max) covers only 93.75% < 95%


def test_is_drifting_needs_a_clear_and_large_shift():
    assert is_drifting([200.0, 210, 205, 190, 200, 100, 101, 99, 100, 102])
    assert not is_drifting([101.0, 103, 102, 104, 100, 100, 101, 99, 100, 102])   # separated, < 5%
    assert not is_drifting([100.0, 160, 90, 150, 100, 110, 95, 140, 105, 100])   # large, but no clear trend
