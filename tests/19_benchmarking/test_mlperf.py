"""TinyMLPerf: accuracy and performance modes, conclusive targets, compliance report."""
import json

import numpy as np
import pytest

from tinytorch.benchmarking.mlperf import TinyMLPerf
from tinytorch.benchmarking.tasks import TASKS, load_task_data, reference_model, score_task, task_scores

COURSE_KEYS = {"accuracy", "mean_latency_ms", "std_latency_ms", "p50_latency_ms", "p90_latency_ms", "p99_latency_ms",
               "max_latency_ms", "throughput_fps", "target_accuracy", "target_latency_ms", "accuracy_met",
               "latency_met", "compliant", "num_runs", "random_seed"}


@pytest.fixture(scope="module")
def kws_result():
    return TinyMLPerf(random_seed=42).run_standard_benchmark(None, "keyword_spotting", num_runs=20)


def test_result_keys_and_accuracy_mode(kws_result):
    r = kws_result
    assert COURSE_KEYS <= set(r) and r["num_runs"] == 20 and r["random_seed"] == 42
    x, y = load_task_data("keyword_spotting", "test", seed=42)
    expected = score_task("keyword_spotting", task_scores("keyword_spotting", reference_model("keyword_spotting"), x), y)
    assert r["accuracy"] == expected["value"] and r["accuracy_ci"] == [expected["ci_low"], expected["ci_high"]]
    assert r["accuracy_samples"] == len(y)


def test_performance_mode_and_conclusive_targets(kws_result):
    r = kws_result
    assert len(r["window_medians_ms"]) == 5 and r["latency_ms"] == pytest.approx(np.median(r["window_medians_ms"]))
    assert r["latency_ci_ms"] == [min(r["window_medians_ms"]), max(r["window_medians_ms"])]   # 5 windows: min..max
    assert r["latency_ci_confidence"] == pytest.approx(1 - 2 * 0.5 ** 5)
    assert r["throughput_fps"] == pytest.approx(1e3 / r["latency_ms"])
    assert r["accuracy_met"] == (r["accuracy_ci"][0] >= r["target_accuracy"])
    assert r["latency_met"] == (r["latency_ci_ms"][1] <= r["target_latency_ms"])
    assert r["compliant"] == (r["accuracy_met"] and r["latency_met"])
    assert r["tail_flags"]["p99"] is True           # 20 runs cannot support a p99 claim
    json.dumps(r, allow_nan=False)


def test_a_guessing_model_is_not_compliant():
    spec = TASKS["keyword_spotting"]
    guess = lambda x: np.tile(np.eye(spec.num_classes)[0], (len(x), 1))   # always the first class
    r = TinyMLPerf().run_standard_benchmark(guess, "keyword_spotting", num_runs=10)
    assert r["accuracy"] < 0.2 and not r["accuracy_met"] and not r["compliant"]


def test_bad_input():
    perf = TinyMLPerf()
    with pytest.raises(ValueError, match="unknown TinyMLPerf benchmark 'kws'"):
        perf.run_standard_benchmark(None, "kws")
    with pytest.raises(ValueError, match="num_runs"):
        perf.run_standard_benchmark(None, "keyword_spotting", num_runs=4)
    with pytest.raises(ValueError, match="cannot run keyword_spotting inputs"):
        perf.run_standard_benchmark(reference_model("anomaly_detection"), "keyword_spotting", num_runs=10)
    with pytest.raises(ValueError, match="random_seed"):
        TinyMLPerf(random_seed="42")


def test_one_model_on_every_task_reports_incompatible_tasks():
    perf = TinyMLPerf()
    state = np.random.get_state()
    results = perf.run_all_benchmarks(reference_model("visual_wake_words"), num_runs=10)
    assert np.random.get_state()[1].tolist() == state[1].tolist()     # the global random state is untouched
    assert results["visual_wake_words"]["compliant"] in (True, False) and "accuracy" in results["visual_wake_words"]
    assert results["anomaly_detection"]["status"] == "incompatible" and results["anomaly_detection"]["reason"]


def test_compliance_report(tmp_path, kws_result):
    perf = TinyMLPerf()
    results = {"keyword_spotting": kws_result,
               "anomaly_detection": {"benchmark": "anomaly_detection", "status": "incompatible", "reason": "shape",
                                     "compliant": False}}
    returned = perf.generate_compliance_report(results, tmp_path / "tinymlperf.json")
    json_path, summary = perf.report_paths["json"], perf.report_paths["summary"]
    doc = json.loads(json_path.read_text())
    assert doc["compliance_rate"] == (0.5 if kws_result["compliant"] else 0.0) and doc["benchmarks"] == 2
    assert doc["summary"]["total_benchmarks"] == 2 and doc["summary"]["overall_compliant"] is False
    assert doc["summary"]["compliant_benchmark_names"] == (["keyword_spotting"] if kws_result["compliant"] else [])
    text = summary.read_text()
    assert returned == text and summary.name == "tinymlperf_summary.md"
    assert "TinyMLPerf Compliance Report" in text and "Compliance Rate" in text and "incompatible" in text
    with pytest.raises(FileExistsError, match="overwrite=True"):
        perf.generate_compliance_report(results, json_path)
    with pytest.raises(ValueError, match=".json"):
        perf.generate_compliance_report(results, tmp_path / "report.txt")
    with pytest.raises(ValueError, match="non-empty"):
        perf.generate_compliance_report({}, tmp_path / "x.json")
