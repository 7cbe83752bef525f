"""BenchmarkSuite and compare_optimization_techniques on the reference models (small data, short runs)."""
import json

import numpy as np
import pandas as pd
import pytest

from tinytorch.benchmarking.suite import BenchmarkSuite, compare_optimization_techniques
from tinytorch.data.loader import load_digits
from tinytorch.models.zoo import load_model


@pytest.fixture(scope="module")
def digits():
    images, labels = load_digits("test").tensors
    return images.data[:120], labels.data[:120]


@pytest.fixture(scope="module")
def models():
    return {name: load_model(name) for name in ("digits_cnn", "digits_cnn_int8", "digits_cnn_distilled")}


def test_full_run_and_report(tmp_path, digits, models):
    suite = BenchmarkSuite(models, digits, output_dir=tmp_path, max_time_s=0.5, measurement_runs=5)
    out = suite.run_full_benchmark()
    assert set(out) >= {"latency", "accuracy", "memory", "energy"}
    for name, model in models.items():
        acc = out["accuracy"][name]
        expected = np.mean(model(__import__("tinytorch").Tensor(digits[0])).data.argmax(1) == digits[1])
        assert acc.mean == pytest.approx(expected)
        energy = out["energy"][name]
        assert energy["available"] is False and energy["reason"]      # no RAPL/NVML here: said, not invented
    report = suite.generate_report()
    folder = suite.report_paths["folder"]
    assert folder.parent == tmp_path and report == (folder / "report.md").read_text()
    for heading in ("# TinyTorch Benchmark Report", "## System Information", "## Benchmark Results Summary",
                    "### Latency Results", "### Accuracy Results", "## Recommendations"):
        assert f"\n{heading}" in "\n" + report, heading
    assert suite.report_paths["json"] == folder / "results.json" and all(p.exists() for p in suite.report_paths["plots"])
    names = {p.name for p in folder.iterdir()}
    assert {"results.json", "results.csv", "report.md", "report.html", "latency.png", "accuracy.png",
            "memory.png", "pareto_latency_accuracy.png"} <= names
    doc = json.loads((folder / "results.json").read_text())
    assert doc["schema"] == "tinytorch.benchmark.suite/1" and doc["models"] == list(models)
    assert doc["results"]["latency"]["digits_cnn"]["values"] == out["latency"]["digits_cnn"].values.tolist()
    assert "git_commit" in doc["environment"] and doc["pareto"]["optimal"]
    raw = pd.read_csv(folder / "results.csv")
    assert len(raw) == sum(r.count for m in ("latency", "accuracy", "memory") for r in out[m].values())
    md = (folder / "report.md").read_text()
    assert "Pareto-optimal" in md and "Recommendations" in md and "Energy" in md and "unavailable" in md
    assert "<table" in (folder / "report.html").read_text()
    suite.run_dir = None
    suite.generate_report()
    assert suite.report_paths["folder"] != folder      # a second report never overwrites the first


def test_pareto_matches_brute_force_on_the_measured_points(digits, models):
    suite = BenchmarkSuite(models, digits, max_time_s=0.5, measurement_runs=5, energy_windows=5)
    suite.benchmark.run_latency_benchmark()
    suite.benchmark.run_accuracy_benchmark()
    names, lat, _, _ = suite.metric_points("latency")
    _, acc, _, _ = suite.metric_points("accuracy")
    brute = [n for i, n in enumerate(names) if not any(
        lat[j] <= lat[i] and acc[j] >= acc[i] and (lat[j] < lat[i] or acc[j] > acc[i]) for j in range(len(names)))]
    assert suite.pareto()["optimal"] == brute


def test_suite_errors(tmp_path, digits, models):
    suite = BenchmarkSuite(models, digits, output_dir=tmp_path)
    with pytest.raises(RuntimeError, match="run_full_benchmark"):
        suite.generate_report()
    with pytest.raises(ValueError, match="unknown metric"):
        suite.metric_points("speed")


def test_unlabelled_data_records_accuracy_as_unavailable(tmp_path, digits):
    suite = BenchmarkSuite({"m": lambda x: np.zeros((len(x), 10))}, digits[0], output_dir=tmp_path,
                           max_time_s=0.3, measurement_runs=3, energy_windows=5)
    out = suite.run_full_benchmark()
    assert "accuracy" not in out and "never simulated" in out["accuracy_unavailable"]
    report = suite.generate_report()
    doc = json.loads(suite.report_paths["json"].read_text())
    assert "unavailable" in doc["results"]["accuracy"]
    assert "accuracy: no dataset has labels; accuracy is not measured (never simulated)" in report


def test_compare_optimization_techniques(digits, models):
    study = compare_optimization_techniques(models["digits_cnn"], {"int8": models["digits_cnn_int8"],
                                            "distilled": models["digits_cnn_distilled"]}, digits, max_time_s=0.5)
    assert set(study) >= {"base_model", "base_metrics", "optimized_results", "improvements", "efficiency_metrics",
                          "recommendations"}
    rec, rows = study["recommendations"], study["improvements"]
    assert set(rec) == {"for_latency_critical", "for_memory_constrained", "for_accuracy_preservation",
                        "for_balanced_deployment"}
    assert rows["int8"]["compression"] == pytest.approx(
        study["base_metrics"]["parameter_bytes"] / rows["int8"]["parameter_bytes"])
    pick = rec["for_latency_critical"]["model"]
    assert pick is None or rows[pick]["significantly_faster"]           # each claim rests on a significant result
    pick = rec["for_memory_constrained"]["model"]
    assert pick is None or (rows[pick]["compression"] > 1 and not rows[pick]["significant_accuracy_loss"])
    for r in rows.values():
        assert r["speedup_low"] <= r["speedup"] <= r["speedup_high"]
    with pytest.raises(ValueError, match="base"):
        compare_optimization_techniques(models["digits_cnn"], {"base": models["digits_cnn"]}, digits)
