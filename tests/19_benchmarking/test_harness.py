"""Benchmark: names, datasets, accuracy from labels, memory, latency structure (no timing asserted
except orders of magnitude that cannot flip: a 3 ms busy-wait against a no-op)."""
import time

import numpy as np
import pandas as pd
import pytest

from tinytorch.benchmarking.harness import Benchmark, best_model, dataset_arrays, name_models, predicted_labels
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import DataLoader, TensorDataset

X = np.random.default_rng(0).standard_normal((12, 4)).astype(np.float32)
Y = np.arange(12) % 3


def oracle_logits(x):
    """Predicts class (row index % 3) for the first 9 rows of X and class 0 after (3 of those right)."""
    out = np.zeros((len(x), 3), dtype=np.float32)
    index = np.array([int(np.flatnonzero((X == row).all(axis=1))[0]) for row in x])
    out[np.arange(len(x)), np.where(index < 9, index % 3, 0)] = 1
    return out


class Named:
    def __init__(self, name):
        self.name = name

    def __call__(self, x):
        return np.zeros((len(x), 3))


def spin(ns):
    def run(x):
        end = time.perf_counter_ns() + ns
        while time.perf_counter_ns() < end:
            pass
        return np.zeros((len(x), 3))
    return run


def test_names_are_unique_and_never_guessed():
    named = name_models([Named("a"), Named("a"), lambda x: x, Named("")])
    assert list(named) == ["a", "a_1", "model_2", "model_3"]
    assert list(name_models({"base": lambda x: x})) == ["base"]
    with pytest.raises(TypeError, match="not callable"):
        name_models([Named("a"), 3])
    with pytest.raises(ValueError, match="no models"):
        name_models([])


def test_dataset_forms():
    for form in ((X, Y), TensorDataset(X, Y), DataLoader(TensorDataset(X, Y), batch_size=5, shuffle=True, seed=1)):
        x, y = dataset_arrays(form)
        assert np.array_equal(x, X) and np.array_equal(y, Y)
    x, y = dataset_arrays(X)
    assert y is None and x.shape == X.shape
    with pytest.raises(ValueError, match="one label per sample"):
        dataset_arrays((X, Y[:-1]))
    with pytest.raises(ValueError, match="pair"):
        dataset_arrays((X, Y, Y))


def test_accuracy_is_computed_from_the_labels():
    bench = Benchmark({"oracle": oracle_logits}, [(X, Y)])
    r = bench.run_accuracy_benchmark()["oracle"]
    assert r.mean == pytest.approx(10 / 12)   # 9 right, then 3 rows predicted 0: only the one labelled 0 is right
    assert r.metadata["interval"] == "wilson" and r.ci_lower < r.mean < r.ci_upper
    assert bench.correct["oracle"].tolist() == [1.0] * 9 + [1.0, 0.0, 0.0]


def test_accuracy_without_labels_is_an_error_not_a_number():
    bench = Benchmark([lambda x: np.zeros((len(x), 3))], [X])
    with pytest.raises(ValueError, match="never simulates"):
        bench.run_accuracy_benchmark()


@pytest.mark.parametrize("outputs, match", [(np.zeros((12, 2)), "output classes"), (np.zeros((11, 3)), "outputs of shape"),
                                            (np.full((12, 3), np.nan), "NaN"), (np.full(12, 0.5), "integer class labels")])
def test_bad_outputs_are_named(outputs, match):
    with pytest.raises(ValueError, match=match):
        predicted_labels(outputs, 12, 3, "model 'm'")


def test_module_accuracy_runs_in_eval_mode_and_restores_training():
    model = Sequential(Linear(4, 3, rng=0), ReLU())
    model.train()
    bench = Benchmark({"mlp": model}, (X, Y))
    r = bench.run_accuracy_benchmark()["mlp"]
    expected = np.maximum(X @ model[0].weight.data + model[0].bias.data, 0).argmax(1) == Y
    assert r.mean == pytest.approx(expected.mean()) and model.training


def test_latency_results_structure_and_interleaving():
    bench = Benchmark({"noop": lambda x: x, "spin": spin(3_000_000)}, (X, Y), measurement_runs=5, max_time_s=1.0)
    results = bench.run_latency_benchmark()
    assert list(results) == ["noop", "spin"]
    for name, r in results.items():
        assert r.metric_name == "latency_ms" and r.count >= 5 and (r.values > 0).all()
        assert r.metadata["interleaved_with"] == ["noop", "spin"] and r.metadata["model"] == name
        assert r.metadata["input_shape"] == [1, 4] and "environment" in r.metadata
    assert results["spin"].median >= 2.9 and results["noop"].median < 0.5
    table = bench.compare_models("latency")
    assert table.attrs["best"] == "noop" and table.set_index("model").loc["spin", "significantly_worse"]
    assert best_model(table)[0] == "noop"


def test_a_model_that_fails_is_named():
    def broken(x):
        raise KeyError("boom")
    with pytest.raises(RuntimeError, match="'broken'.*KeyError"):
        Benchmark({"broken": broken}, (X, Y)).run_latency_benchmark()
    with pytest.raises(ValueError, match="NaN"):
        Benchmark({"nan": lambda x: np.full((len(x), 3), np.nan)}, (X, Y)).run_latency_benchmark()


def test_input_shape_validation():
    bench = Benchmark([lambda x: x], (X, Y))
    assert bench.sample_input((2, 4)).shape == (2, 4)
    assert bench.sample_input(batch_size=30).shape == (30, 4)        # real samples, cycled
    with pytest.raises(ValueError, match="input_shape"):
        bench.sample_input((2, 0))


def test_memory_counts_parameters_and_traces_the_peak():
    model = Sequential(Linear(4, 3, rng=0))
    big = lambda x: np.ones((len(x), 1_000_000)).sum(axis=1, keepdims=True)   # 8 MB per row, freed after
    bench = Benchmark({"mlp": model, "big": big}, (X, Y), measurement_runs=3)
    results = bench.run_memory_benchmark()
    assert results["mlp"].metadata["parameter_bytes"] == 4 * 3 * 4 + 3 * 4
    assert results["mlp"].metadata["parameters"] == 15
    assert results["big"].metadata["parameter_bytes"] is None and "why_none" in results["big"].metadata
    assert results["big"].median >= 8e6 / 2**20 * 0.95 and results["big"].count == 3


def test_throughput_table():
    bench = Benchmark({"noop": lambda x: x}, (X, Y), max_time_s=2.0)
    table = bench.run_throughput_benchmark(batch_sizes=(1, 4), samples=10)
    assert isinstance(table, pd.DataFrame) and list(table["batch_size"]) == [1, 4]
    row = table.iloc[1]
    assert row["samples_per_s"] == pytest.approx(4 / row["p50_ms"] * 1e3)
    assert row["p50_low_ms"] <= row["p50_ms"] <= row["p50_high_ms"] and bool(row["p90_flag"])
    with pytest.raises(ValueError, match="batch size"):
        bench.run_throughput_benchmark(batch_sizes=(0,))


def test_identical_models_share_first_place():
    same = lambda x: x * 1
    bench = Benchmark({"a": same, "b": same}, (X, Y), measurement_runs=20, max_time_s=2.0)
    bench.results["latency"] = {}
    from tinytorch.benchmarking.results import BenchmarkResult
    gen = np.random.default_rng(3)
    bench.results["latency"] = {n: BenchmarkResult("latency_ms", gen.lognormal(0, 0.1, 30), {"model": n}) for n in "ab"}
    winner, claim = best_model(bench.compare_models("latency"))
    assert winner is None and "not significantly worse" in claim


def test_constructor_errors():
    with pytest.raises(ValueError, match="measurement_runs"):
        Benchmark([lambda x: x], (X, Y), measurement_runs=1)
    with pytest.raises(ValueError, match="target_rel_halfwidth"):
        Benchmark([lambda x: x], (X, Y), target_rel_halfwidth=2)
    with pytest.raises(ValueError, match="unknown metric"):
        Benchmark([lambda x: x], (X, Y)).compare_models("speed")
    assert "Benchmark(models=['model_0']" in repr(Benchmark([lambda x: x], (X, Y)))
