"""Tests of tinytorch.benchmarking.selfcheck: structure of a quick run (never its timings, since
the machine is shared) and the pieces whose numbers can be checked by hand."""
import json
import statistics

import pytest

from tinytorch.benchmarking import selfcheck
from tinytorch.benchmarking.selfcheck import format_selfcheck, run_selfcheck


@pytest.fixture(scope="module")
def quick():
    seen = []
    result = run_selfcheck(quick=True, seed=3, progress=seen.append)
    return result, seen


def test_quick_run_is_json_ready_with_every_row_complete(quick):
    result, seen = quick
    assert seen == ["1/4 latency of known workloads", "2/4 time to a +-2% interval", "3/4 simulated coverage",
                    "4/4 A/A and A/B comparisons"]
    document = json.loads(json.dumps(result, allow_nan=False))
    assert document["quick"] is True and document["seed"] == 3 and document["schema"] == selfcheck.SELFCHECK_SCHEMA
    assert "lower-confidence" in document["note"] and document["settings"] == selfcheck.QUICK
    assert document["environment"]["timer"] == "perf_counter_ns" and document["elapsed_s"] > 0
    for row in document["rows"]:
        assert {"check", "measured", "target", "op", "unit", "passed", "detail"} <= set(row)
        measured, target = row["measured"], row["target"]
        if measured is None:                     # e.g. the machine changed speed in every repetition
            assert row["passed"] is False and row["detail"].startswith("unavailable: ")
            continue
        expected = {"<=": measured <= target, ">=": measured >= target, "<": measured < target}[row["op"]]
        if row["check"].startswith("time to"):
            expected = expected and all(run["stopped"] == "converged" for run in row["runs"])
            assert measured == max(run["elapsed_s"] for run in row["runs"])
        assert row["passed"] is expected
    assert document["passed"] is all(row["passed"] for row in document["rows"])


def test_quick_run_has_every_check(quick):
    checks = [row["check"] for row in quick[0]["rows"]]
    assert [c for c in checks if c.startswith("latency")] == [
        "latency busy-wait 20 us: median |error|", "latency busy-wait 200 us: median |error|",
        "latency busy-wait 2 ms: median |error|", "latency python ~200 ns: median |error|"]
    assert sum(c.startswith("coverage median") for c in checks) == 6
    assert sum(c.startswith("coverage mean (Student t)") for c in checks) == 3
    assert any("z = 1.96" in c and c.endswith("n=5") for c in checks)
    rates = [row for row in quick[0]["rows"] if "trials" in row and "wilson" in row and "hits" in row]
    assert len(rates) == 2 and all(row["trials"] == selfcheck.QUICK["ab_trials"] for row in rates)


def test_latency_rows_hold_their_raw_figures(quick):
    for row in quick[0]["rows"][:4]:
        repetitions = row["repetitions"]
        assert len(repetitions) == selfcheck.QUICK["latency_repeats"]
        for rep in repetitions:
            assert rep["truth_ns"] == pytest.approx((rep["before_ns"] + rep["after_ns"]) / 2)
            assert rep["error"] == pytest.approx((rep["measured_ns"] - rep["truth_ns"]) / rep["truth_ns"])
            spread = abs(rep["after_ns"] - rep["before_ns"]) / min(rep["before_ns"], rep["after_ns"])
            assert rep["stable"] is (spread <= selfcheck.STABLE_TRUTH)
        stable = [abs(rep["error"]) for rep in repetitions if rep["stable"]]
        if row["measured"] is not None:
            assert len(stable) >= selfcheck.MIN_STABLE and row["measured"] == pytest.approx(statistics.median(stable))
        assert row["timeit_best_of_5_ns"] > 0 and "timeit best-of-5" in row["detail"]


def test_format_selfcheck_prints_an_aligned_table(quick):
    text = format_selfcheck(quick[0])
    lines = text.splitlines()
    assert lines[0].split() == ["check", "measured", "target", "ok"]
    columns = lines[0].index("measured"), lines[0].index("target"), lines[0].index("ok")
    rows = quick[0]["rows"]
    assert len(lines) == 1 + 2 * len(rows) + 1
    for row, line in zip(rows, lines[1::2]):
        assert line.startswith(row["check"])
        assert line[columns[2]:].strip() == ("yes" if row["passed"] else "NO")
        assert line[columns[1]:].startswith(row["op"])
    assert lines[-1].startswith(f"{sum(r['passed'] for r in rows)}/{len(rows)} checks passed")


def test_coverage_row_of_an_exact_case():
    row = selfcheck._coverage_row("median", selfcheck.median_interval_rows, selfcheck._lognormal, 1.0, 5,
                                  4000, 0, 0.93, ">=")
    assert abs(row["measured"] - 0.9375) < 0.02 and row["wilson"][0] < row["measured"] < row["wilson"][1]


def test_busy_wait_truth_is_the_target_plus_a_small_fixed_cost():
    truth = selfcheck.busy_wait_truth(20_000)()
    assert 20_000 < truth < 30_000                          # a zero-length spin costs far less than 10 us


def test_row_comparisons_and_unavailable_rows():
    assert selfcheck._row("c", 0.01, 0.02, "<=", "%", "")["passed"] is True
    assert selfcheck._row("c", 0.90, 0.93, ">=", "%", "")["passed"] is False
    assert selfcheck._row("c", 0.90, 0.90, "<", "%", "")["passed"] is False
    row = selfcheck._unavailable("c", 0.05, "<=", "%", "unavailable: machine unsteady")
    assert row["measured"] is None and row["passed"] is False
    text = format_selfcheck({"rows": [row], "elapsed_s": 1.0, "quick": True, "seed": 0, "note": "n"})
    assert text.splitlines()[1].split() == ["c", "unavailable", "<=", "5.00%", "NO"]
