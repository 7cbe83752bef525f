"""The calls the course's upstream module 19 documents (its docstring examples, its "how to use" cell and
its unit tests' calls), run as written against real models: the shipped zoo and TinyMLPerf references.

Every number is checked against an independent oracle (numpy on the model's own outputs, scipy, a direct
timing), not only for its key. Where the upstream notebook fabricated a number (accuracy from a model's
name or position, random labels, energy from a formula, z = 1.96 intervals) the same call here measures,
or raises an error that says what is missing; each such place is marked "upstream:".
"""
import json
import statistics
import time

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from tinytorch.benchmarking.benchmark import (Benchmark, BenchmarkResult, BenchmarkSuite, OlympicEvent, TinyMLPerf,
                                              compare_optimization_techniques, precise_timer)
from tinytorch.benchmarking.harness import forward
from tinytorch.benchmarking.tasks import load_task_data, reference_model
from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import load_digits
from tinytorch.models.zoo import load_model
from tinytorch.optimization.compression import magnitude_prune
from tinytorch.optimization.quantization import quantize_model

SEED_KEYS = {"metric_name", "values", "mean", "std", "median", "min", "max", "count", "ci_lower", "ci_upper",
             "metadata"}
QUICK = {"max_time_s": 0.3, "measurement_runs": 3, "warmup_runs": 2}      # latency sampling kept short


def named(model, name):
    """model with the .name the upstream examples give their models (names come from model.name)."""
    model.name = name
    return model


@pytest.fixture(scope="module")
def digits():
    images, labels = load_digits("test", flatten=True).tensors
    return images.data, labels.data


@pytest.fixture(scope="module")
def mlps():
    """The shipped digits MLP and two optimized versions made the way the upstream cell makes them."""
    base = named(load_model("digits_mlp"), "base_model")
    quantized = named(quantize_model(load_model("digits_mlp"), bits=8), "quantized_model")
    pruned = named(magnitude_prune(load_model("digits_mlp"), sparsity=0.6), "pruned_model")
    return base, quantized, pruned


def numpy_accuracy(model, x, y):
    """The oracle: argmax of the model's own outputs against the labels, in numpy."""
    return float(np.mean(model(Tensor(x)).data.argmax(axis=1) == y))


def direct_ms(model, x, calls=30):
    """Median of single forward() calls timed with perf_counter, for a model on input x."""
    forward(model, x)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        forward(model, x)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


# ------------------------------------------------------------------ BenchmarkResult (docstring and unit test)

def test_benchmark_result_docstring_example():
    result = BenchmarkResult("model_accuracy", [0.95, 0.94, 0.96])
    assert f"Mean: {result.mean:.3f} ± {result.std:.3f}" == "Mean: 0.950 ± 0.010"


def test_benchmark_result_unit_test_calls():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    result = BenchmarkResult("test_metric", values)
    assert result.mean == 3.0 and abs(result.std - statistics.stdev(values)) < 1e-10
    assert result.median == 3.0 and result.min_val == 1.0 and result.max_val == 5.0 and result.count == 5
    assert result.ci_lower < result.mean < result.ci_upper
    # upstream: z = 1.96 whatever n; here Student's t with n - 1 degrees of freedom, as the dict says
    low, high = scipy.stats.t.interval(0.95, df=4, loc=3.0, scale=statistics.stdev(values) / np.sqrt(5))
    assert (result.ci_lower, result.ci_upper) == pytest.approx((low, high))
    d = result.to_dict()
    assert SEED_KEYS <= set(d) and d["metric_name"] == "test_metric" and d["mean"] == 3.0
    assert d["values"] == values and d["std"] == pytest.approx(statistics.stdev(values))
    assert (d["min"], d["max"], d["median"], d["count"]) == (1.0, 5.0, 3.0, 5)
    assert (d["ci_lower"], d["ci_upper"]) == pytest.approx((low, high)) and "Student-t interval of the mean" in d["ci_method"]
    back = BenchmarkResult.from_dict(json.loads(json.dumps(d, allow_nan=False)))
    assert back == result and back.to_dict() == d


def test_a_proportion_result_names_its_wilson_interval():
    hits = [1.0] * 9 + [0.0]
    d = BenchmarkResult("accuracy", hits, {"interval": "wilson"}).to_dict()
    low, high = scipy.stats.binomtest(9, 10).proportion_ci(0.95, method="wilson")
    assert d["mean"] == 0.9 and (d["ci_lower"], d["ci_upper"]) == pytest.approx((low, high))
    assert "Wilson" in d["ci_method"]


# ------------------------------------------------------------------ precise_timer (docstring and unit test)

def test_precise_timer_unit_test_calls():
    with precise_timer() as timer:
        time.sleep(0.01)
    assert 0.01 <= timer.elapsed < 0.5          # upstream asserted < 0.05; a loaded CI machine can oversleep
    times = []
    for _ in range(3):
        with precise_timer() as timer:
            time.sleep(0.001)
        times.append(timer.elapsed)
    assert all(0.001 <= t < 0.5 for t in times)


# ------------------------------------------------------------------ Benchmark: the "how to use" cell

def test_how_to_use_cell_runs_as_written(mlps):
    baseline_model, _, _ = mlps
    optimized = baseline_model
    optimized = quantize_model(optimized, bits=8)
    # upstream then prunes the int8 model; module 16 prunes float layers only, and says so
    with pytest.raises(ValueError, match="unsupported type.*QuantizedLinear"):
        magnitude_prune(optimized, sparsity=0.6)
    benchmark = Benchmark([baseline_model, optimized], [{"name": "baseline"}, {"name": "optimized"}], max_time_s=0.5)
    results = benchmark.run_latency_benchmark()
    assert list(results) == ["base_model", "base_model_1"]        # the copy keeps .name; a repeat gets _1
    x = benchmark.sample_input()
    assert x.shape == (1, 64)                                  # known from the MLPs' first layer (64 inputs)
    assert np.array_equal(x, np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32))
    for name, model in (("base_model", baseline_model), ("base_model_1", optimized)):
        r = results[name]
        assert r.metadata["inputs"] == ("generated: seeded normal (numpy default_rng(0).standard_normal), "
                                        "shape (1, 64), seed 0, float32")
        assert r.count >= 10 and (r.values > 0).all() and r.mean == pytest.approx(np.mean(r.values))
        assert 0.1 < r.median / direct_ms(model, x) < 10, (r.median, direct_ms(model, x))
    assert benchmark.dataset_descriptions == [{"name": "baseline"}, {"name": "optimized"}]
    with pytest.raises(ValueError, match="accuracy needs labels.*'name': 'baseline'"):
        benchmark.run_accuracy_benchmark()


def test_empty_datasets_and_the_input_shape_rule():
    cnn = load_model("digits_cnn")
    bench = Benchmark([cnn], [], **QUICK)
    with pytest.raises(ValueError, match="input_shape"):        # a Conv2d knows channels, not the image size
        bench.run_latency_benchmark()
    r = bench.run_latency_benchmark(input_shape=(1, 1, 8, 8))["model_0"]
    assert r.metadata["input_shape"] == [1, 1, 8, 8] and "generated: seeded normal" in r.metadata["inputs"]
    memory = Benchmark([cnn], [], input_shape=(1, 1, 8, 8), measurement_runs=3).run_memory_benchmark()["model_0"]
    assert memory.metadata["parameter_bytes"] == sum(p.data.nbytes for p in cnn.parameters())
    with pytest.raises(ValueError, match="accuracy needs labels"):
        bench.run_accuracy_benchmark()
    from tinytorch.core.layers import Linear, Sequential
    with pytest.raises(ValueError, match="different shapes"):
        Benchmark([Sequential(Linear(64, 10, rng=0)), Sequential(Linear(32, 10, rng=0))], [], **QUICK).run_latency_benchmark()


# ------------------------------------------------------------------ Benchmark: the unit test's calls

def test_benchmark_unit_test_calls(mlps):
    base, quantized, _ = mlps
    models = [named(load_model("digits_mlp"), "fast_model"), named(quantize_model(load_model("digits_mlp")), "slow_model")]
    datasets = [{"data": "test1"}, {"data": "test2"}]
    benchmark = Benchmark(models, datasets, warmup_runs=2, measurement_runs=3, max_time_s=0.3)
    latency_results = benchmark.run_latency_benchmark()
    assert len(latency_results) == 2 and "fast_model" in latency_results
    assert all(isinstance(result, BenchmarkResult) for result in latency_results.values())
    # upstream: accuracy 0.85 + 0.05 * position + noise when there are no labels; here a clear error
    with pytest.raises(ValueError, match="accuracy needs labels"):
        benchmark.run_accuracy_benchmark()
    memory_results = benchmark.run_memory_benchmark()
    assert len(memory_results) == 2 and all(result.mean >= 0 for result in memory_results.values())
    assert memory_results["fast_model"].metadata["parameter_bytes"] == 4 * (64 * 128 + 128 + 128 * 10 + 10)
    assert memory_results["slow_model"].metadata["parameter_bytes"] < memory_results["fast_model"].metadata["parameter_bytes"]
    comparison_df = benchmark.compare_models("latency")
    assert isinstance(comparison_df, pd.DataFrame) and len(comparison_df) == 2
    assert "model" in comparison_df.columns and "mean" in comparison_df.columns
    rows = comparison_df.set_index("model")
    for name, r in benchmark.results["latency"].items():
        assert rows.loc[name, "mean"] == pytest.approx(np.mean(r.values))


def test_labelled_accuracy_equals_numpy_on_the_models_outputs(mlps, digits):
    x, y = digits
    bench = Benchmark(list(mlps), [(x, y)], **QUICK)
    results = bench.run_accuracy_benchmark()
    for model in mlps:
        r = results[model.name]
        assert r.mean == pytest.approx(numpy_accuracy(model, x, y)) and r.count == len(y) == 359
        assert r.ci_lower <= r.mean <= r.ci_upper


# ------------------------------------------------------------------ BenchmarkSuite: unit test and module test

def test_benchmark_suite_unit_test_calls(tmp_path):
    models = [named(load_model("digits_mlp"), "efficient_model"), named(load_model("digits_mlp"), "accurate_model")]
    suite = BenchmarkSuite(models, [{"test": "data"}], output_dir=tmp_path, energy_windows=5, **QUICK)
    results = suite.run_full_benchmark()
    assert {"latency", "memory", "energy"} <= set(results)
    # upstream: accuracy and energy simulated; here accuracy is "unavailable" (no labels) and energy is
    # read from counters, or unavailable with the reason
    assert "accuracy" not in results and "never simulated" in results["accuracy_unavailable"]
    for metric in ("latency", "memory"):
        assert len(results[metric]) == 2 and all(isinstance(r, BenchmarkResult) for r in results[metric].values())
    for energy in results["energy"].values():
        assert (energy["available"] and energy["joules_per_call"] > 0) or (not energy["available"] and energy["reason"])
    report = suite.generate_report()
    for heading in ("Benchmark Report", "System Information", "Benchmark Results Summary", "Recommendations"):
        assert heading in report
    # upstream: output_dir/benchmark_report.md, overwritten by every run; here each report gets a new run
    # folder under output_dir (never overwritten), and suite.report_paths says where everything went
    paths = suite.report_paths
    assert paths["markdown"].read_text() == report and paths["folder"].parent == tmp_path
    assert "generated: seeded normal" in report and "shape (1, 64)" in report
    doc = json.loads(paths["json"].read_text())
    assert doc["results"]["latency"]["efficient_model"]["values"] == results["latency"]["efficient_model"].values.tolist()


def test_module_test_statistics_hold_for_every_measured_result(tmp_path, mlps, digits):
    suite = BenchmarkSuite(list(mlps), [digits], output_dir=tmp_path, energy_windows=5, **QUICK)
    results = suite.run_full_benchmark()
    for metric in ("latency", "accuracy", "memory"):
        assert len(results[metric]) == 3
        for result in results[metric].values():
            assert result.count > 0 and result.std >= 0 and result.ci_lower <= result.mean <= result.ci_upper
            assert result.mean == pytest.approx(np.mean(result.values))
    for model in mlps:
        assert results["accuracy"][model.name].mean == pytest.approx(numpy_accuracy(model, *digits))
    report = suite.generate_report()
    assert "### Accuracy Results" in report and "Pareto-optimal" in report
    import platform

    import psutil

    benchmark = Benchmark(list(mlps)[:1], [digits])
    system_info = {"platform": platform.platform(), "processor": platform.processor(),
                   "python_version": platform.python_version()}
    assert all(key in benchmark.system_info for key in system_info.keys())
    info = benchmark.system_info
    assert info["platform"] == platform.platform() and info["python_version"] == platform.python_version()
    assert info["cpu_count"] == psutil.cpu_count() and info["memory_gb"] == pytest.approx(
        psutil.virtual_memory().total / 2**30)


# ------------------------------------------------------------------ TinyMLPerf: unit test calls

@pytest.fixture(scope="module")
def kws():
    return named(reference_model("keyword_spotting"), "kws_cnn")


def test_tinymlperf_unit_test_calls(kws, tmp_path):
    perf = TinyMLPerf(random_seed=42)
    result = perf.run_standard_benchmark(kws, "keyword_spotting", num_runs=5)
    assert {"accuracy", "mean_latency_ms", "throughput_fps", "compliant", "target_accuracy"} <= set(result)
    assert 0 <= result["accuracy"] <= 1 and result["mean_latency_ms"] > 0 and result["throughput_fps"] > 0
    # upstream: random labels, then +0.1 or +0.2 for "efficient"/"accurate" in the name; here the test split
    x, y = load_task_data("keyword_spotting", "test", seed=42)
    assert result["accuracy"] == pytest.approx(numpy_accuracy(kws, x, y)) and result["accuracy_samples"] == 360
    assert result["num_runs"] == 5 and len(result["window_medians_ms"]) == 5
    assert result["latency_ms"] == pytest.approx(np.median(result["window_medians_ms"]))
    assert result["throughput_fps"] == pytest.approx(1e3 / result["latency_ms"])
    assert 0.1 < result["latency_ms"] / direct_ms(kws, x[:1]) < 10
    assert result["compliant"] == (result["accuracy_met"] and result["latency_met"])
    assert result["model_name"] == "kws_cnn" and result["benchmark_name"] == "keyword_spotting"
    with pytest.raises(ValueError, match="num_runs must be an int >= 5.*5 windows"):
        perf.run_standard_benchmark(kws, "keyword_spotting", num_runs=3)    # upstream's subset used 3

    digits_cnn = named(load_model("digits_cnn"), "digits_cnn")
    subset_results = {"keyword_spotting": result,
                      "image_classification": perf.run_standard_benchmark(digits_cnn, "image_classification", num_runs=5)}
    images, labels = load_task_data("image_classification", "test")
    assert subset_results["image_classification"]["accuracy"] == pytest.approx(numpy_accuracy(digits_cnn, images, labels))
    report_path = f"{tmp_path}/test_report.json"
    summary = perf.generate_compliance_report(subset_results, report_path)
    assert (tmp_path / "test_report.json").exists() and (tmp_path / "test_report_summary.md").read_text() == summary
    assert "TinyMLPerf Compliance Report" in summary and "Compliance Rate" in summary
    doc = json.loads((tmp_path / "test_report.json").read_text())
    compliant = [n for n, r in subset_results.items() if r["compliant"]]
    assert doc["summary"]["compliant_benchmark_names"] == compliant
    assert doc["compliance_rate"] == pytest.approx(len(compliant) / 2)
    assert f"Compliance Rate: {len(compliant)}/2" in summary


def test_run_all_benchmarks_with_one_model(kws):
    results = TinyMLPerf(random_seed=42).run_all_benchmarks(kws, num_runs=5)
    assert list(results) == ["image_classification", "visual_wake_words", "keyword_spotting", "anomaly_detection"]
    assert results["keyword_spotting"]["accuracy"] > 0.9
    for name in ("image_classification", "visual_wake_words", "anomaly_detection"):
        assert results[name]["status"] == "incompatible" and "cannot run" in results[name]["error"]
        assert results[name]["compliant"] is False


# ------------------------------------------------------------------ compare_optimization_techniques

def test_optimization_comparison_unit_test_calls(mlps):
    base_model, quantized_model, pruned_model = mlps
    results = compare_optimization_techniques(base_model, [quantized_model, pruned_model], [{"test": "data"}],
                                              max_time_s=0.5)
    assert {"base_model", "optimized_results", "improvements", "recommendations"} <= set(results)
    assert len(results["improvements"]) == 2 and set(results["improvements"]) == {"quantized_model", "pruned_model"}
    recommendations = results["recommendations"]
    assert set(recommendations) == {"for_latency_critical", "for_memory_constrained", "for_accuracy_preservation",
                                    "for_balanced_deployment"}
    # upstream: accuracy_factor and name-based accuracy; here no labels means no accuracy, said everywhere
    assert results["accuracy_measured"] is False and recommendations["for_accuracy_preservation"]["model"] is None
    assert "no dataset has labels" in recommendations["for_accuracy_preservation"]["reason"]
    base_bytes = sum(p.data.nbytes for p in base_model.parameters())
    assert results["base_metrics"]["parameter_bytes"] == base_bytes
    for name, row in results["improvements"].items():
        latency = results["optimized_results"][name]["latency"]
        assert row["accuracy"] is None and row["compression"] == pytest.approx(base_bytes / row["parameter_bytes"])
        assert row["speedup_low"] <= row["speedup"] <= row["speedup_high"]
        ratio = results["base_metrics"]["latency_ms"] / latency.median
        assert 0.5 < row["speedup"] / ratio < 2          # the bootstrap ratio of medians, near the plain ratio
    pick = recommendations["for_memory_constrained"]
    assert pick["model"] == "quantized_model" and "accuracy was not measured" in pick["reason"]


def test_optimization_comparison_with_labels_measures_accuracy(mlps, digits):
    base_model, quantized_model, pruned_model = mlps
    results = compare_optimization_techniques(base_model, [quantized_model, pruned_model], digits, max_time_s=0.3)
    assert results["accuracy_measured"] is True
    assert results["base_metrics"]["accuracy"] == pytest.approx(numpy_accuracy(base_model, *digits))
    for model in (quantized_model, pruned_model):
        row = results["improvements"][model.name]
        assert row["accuracy"] == pytest.approx(numpy_accuracy(model, *digits))
        assert row["accuracy_delta"] == pytest.approx(row["accuracy"] - results["base_metrics"]["accuracy"])


def test_olympic_events():
    assert [e.value for e in OlympicEvent] == ["latency_sprint", "memory_challenge", "accuracy_contest", "all_around",
                                               "extreme_push"]


def test_an_object_with_only_forward_is_a_model(kws):
    """The upstream examples' models define forward(x) and are not callable; a real model behind one."""
    class ForwardOnly:
        name = "forward_only"

        def forward(self, x):
            return kws(Tensor(x)).data

    model = ForwardOnly()
    x, y = load_task_data("keyword_spotting", "test", seed=42)
    result = TinyMLPerf(random_seed=42).run_standard_benchmark(model, "keyword_spotting", num_runs=5)
    assert result["model_name"] == "forward_only" and result["accuracy"] == pytest.approx(numpy_accuracy(kws, x, y))
    bench = Benchmark([model], [(x, y)], **QUICK)
    assert bench.run_accuracy_benchmark()["forward_only"].mean == pytest.approx(result["accuracy"])
    with pytest.raises(TypeError, match="not callable and without a forward"):
        Benchmark([object()], [], **QUICK)
