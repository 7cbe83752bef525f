"""TinyMLPerf tasks: data, reference models and metrics, checked against independent oracles."""
import dataclasses
import json
import pickle
import shutil

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from tinytorch.benchmarking import tasks
from tinytorch.benchmarking.tasks import (TASKS, TaskSpec, delong_interval, get_task, install_reference, list_tasks,
                                          load_task_data, read_manifest, reference_model, roc_auc, score_task,
                                          task_scores, train_reference)
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.models import zoo
from tinytorch.models.zoo import weights_digest

SIZES = {"image_classification": (359, None), "visual_wake_words": (100, [50, 50]),
         "keyword_spotting": (360, [30] * 12), "anomaly_detection": (400, [200, 200])}


# ---------------------------------------------------------------- specs

def test_tasks_are_mlperf_tiny_in_order_with_its_targets():
    assert list_tasks() == ["image_classification", "visual_wake_words", "keyword_spotting", "anomaly_detection"]
    targets = {name: (spec.metric, spec.target_quality) for name, spec in TASKS.items()}
    assert targets == {"image_classification": ("accuracy", 0.85), "visual_wake_words": ("accuracy", 0.80),
                       "keyword_spotting": ("accuracy", 0.90), "anomaly_detection": ("roc_auc", 0.85)}
    for spec in TASKS.values():
        assert isinstance(spec, TaskSpec) and len(spec.class_names) == spec.num_classes
        assert spec.target_latency_ms > 0 and "latency" in spec.notes and spec.mlperf_tiny_counterpart
        assert ("synthetic: deterministic generator v1, seed 42" in spec.data_source) == spec.synthetic
        assert spec.name in repr(spec) and spec.reference in repr(spec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        TASKS["keyword_spotting"].target_quality = 0.5


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown task 'kws'.*image_classification, visual_wake_words"):
        get_task("kws")

# ---------------------------------------------------------------- data


@pytest.mark.parametrize("name", list(TASKS))
def test_test_split_shapes_dtypes_sizes_and_balance(name):
    X, y = load_task_data(name)
    size, per_class = SIZES[name]
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert X.shape == (size, *TASKS[name].input_shape) and y.shape == (size,)
    assert np.all(np.isfinite(X)) and 0 <= y.min() and y.max() < TASKS[name].num_classes
    if per_class is not None:
        assert np.bincount(y, minlength=TASKS[name].num_classes).tolist() == per_class


def test_train_splits_are_disjoint_from_test():
    X, y = load_task_data("visual_wake_words", "train")
    X_test, _ = load_task_data("visual_wake_words", "test")
    assert X.shape == (100, 1, 25, 25) and np.bincount(y).tolist() == [50, 50]
    assert not {row.tobytes() for row in X} & {row.tobytes() for row in X_test}
    X, y = load_task_data("anomaly_detection", "train")
    assert X.shape == (2000, 640) and not y.any()                 # normal machines only


def test_same_seed_is_bit_identical_and_other_seeds_differ():
    first, labels = load_task_data("anomaly_detection", seed=42)
    first[:] = 0                                                   # callers get copies
    again, same = load_task_data("anomaly_detection", seed=42)
    fresh, fresh_labels = tasks._task_data.__wrapped__("anomaly_detection", "test", 42)   # bypass the cache
    assert np.array_equal(again, fresh) and np.array_equal(same, labels) and np.array_equal(fresh_labels, labels)
    other, _ = load_task_data("anomaly_detection", seed=7)
    assert other.shape == again.shape and not np.array_equal(other, again)
    assert not np.array_equal(load_task_data("anomaly_detection", "train")[0][:400], again)


def test_real_data_has_one_fixed_split_whatever_the_seed():
    assert np.array_equal(load_task_data("visual_wake_words", seed=1)[0], load_task_data("visual_wake_words")[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "validation"}, "split must be one of train, test"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"seed": 1.5}, "seed must be a non-negative integer"),
    ({"root": "/nowhere"}, "root is supported by image_classification"),
])
def test_bad_data_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_task_data("anomaly_detection", **kwargs)


def _fake_cifar(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    batch = {b"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3, 4, 5]}
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    return folder


def test_cifar_from_root_needs_the_users_model(tmp_path):
    X, y = load_task_data("image_classification", root=_fake_cifar(tmp_path / "cifar-10-batches-py"))
    assert X.shape == (6, 3, 32, 32) and y.tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="no reference model ships for inputs of shape \\(3, 32, 32\\)"):
        task_scores("image_classification", None, X)
    logits = task_scores("image_classification", lambda x: np.eye(10)[np.zeros(len(x), dtype=int)], X)
    assert score_task("image_classification", logits, y)["value"] == pytest.approx(1 / 6)

# ---------------------------------------------------------------- ROC AUC and its interval


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5)), min_size=2, max_size=40))
def test_roc_auc_matches_sklearn_with_ties(pairs):
    labels, scores = np.array(pairs).T
    if len(set(labels)) < 2:
        return
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_delong_matches_its_pairwise_definition():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)                 # rounded: many ties
    auc, low, high = delong_interval(labels, scores)
    pos, neg = scores[labels == 1], scores[labels == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    se = np.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))
    assert auc == pytest.approx(psi.mean()) == pytest.approx(roc_auc_score(labels, scores))
    assert (low, high) == pytest.approx((auc - 1.959963984540054 * se, auc + 1.959963984540054 * se))


def test_delong_covers_the_true_auc_about_95_percent_of_the_time():
    rng, shift = np.random.default_rng(1), 1.0
    true_auc = scipy.stats.norm.cdf(shift / np.sqrt(2))                  # binormal AUC
    labels = np.repeat([0, 1], 60)
    hits = 0
    for _ in range(400):
        scores = rng.normal(labels * shift, 1.0)
        _, low, high = delong_interval(labels, scores)
        hits += low <= true_auc <= high
    assert 0.91 <= hits / 400 <= 0.98


def test_perfect_separation_collapses_the_interval():
    assert delong_interval([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("labels, scores, message", [
    ([1, 1, 1], [0.1, 0.2, 0.3], "both present"),
    ([0, 1, 2], [0.1, 0.2, 0.3], "both present"),
    ([0, 1], [0.1, np.nan], "NaN or inf"),
    ([0, 1, 0], [0.1, 0.2], "same length"),
])
def test_roc_auc_bad_input(labels, scores, message):
    with pytest.raises(ValueError, match=message):
        roc_auc(labels, scores)

# ---------------------------------------------------------------- score_task and task_scores


def test_accuracy_with_the_wilson_interval_of_scipy():
    y = np.array([0, 1, 2, 1, 0, 2, 2, 1, 0, 0])
    logits = np.eye(10)[[0, 1, 2, 1, 0, 2, 1, 1, 3, 0]]               # 8 of 10 right
    result = score_task("image_classification", logits, y)
    oracle = scipy.stats.binomtest(8, 10).proportion_ci(method="wilson")
    assert result["value"] == 0.8 and result["n"] == 10 and result["metric"] == "accuracy"
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((oracle.low, oracle.high))
    assert result["interval"].startswith("Wilson") and result["verdict"] == "inconclusive"


def test_roc_auc_score_task_and_verdicts():
    y = np.array([0] * 50 + [1] * 50)
    result = score_task("anomaly_detection", np.arange(100.0), y)
    assert result["value"] == 1.0 and result["verdict"] == "meets" and result["interval"].startswith("DeLong")
    assert score_task("anomaly_detection", -np.arange(100.0), y)["verdict"] == "misses"


@pytest.mark.parametrize("name, scores, y, message", [
    ("keyword_spotting", np.zeros((4, 10)), np.zeros(4, dtype=np.int64), r"must be \(4, 12\) class logits"),
    ("keyword_spotting", np.zeros((4, 12)), np.zeros(3, dtype=np.int64), "one per row"),
    ("keyword_spotting", np.zeros((2, 12)), np.array([0.0, 1.0]), "integer labels"),
    ("keyword_spotting", np.zeros((2, 12)), np.array([0, 12]), r"labels must lie in 0..11"),
    ("visual_wake_words", np.array([[0.0, np.nan]]), np.array([1]), "NaN or inf"),
    ("anomaly_detection", np.zeros((4, 2)), np.array([0, 1, 0, 1]), "one anomaly score per sample"),
    ("anomaly_detection", np.zeros(4), np.array([0, 0, 0, 0]), "both present"),
])
def test_score_task_bad_input(name, scores, y, message):
    with pytest.raises(ValueError, match=message):
        score_task(name, scores, y)


def test_task_scores_for_a_callable_and_a_module():
    X = np.random.default_rng(0).normal(size=(5, 640)).astype(np.float32)
    scores = task_scores("anomaly_detection", lambda x: np.zeros_like(x), X, batch_size=2)
    np.testing.assert_allclose(scores, (X.astype(np.float64) ** 2).mean(axis=1))
    model = Sequential(Linear(640, 4, rng=0), ReLU(), Linear(4, 640, rng=1))
    expected = ((model(tasks.Tensor(X)).data - X) ** 2).mean(axis=1)
    assert model.training
    np.testing.assert_allclose(task_scores("anomaly_detection", model, X, batch_size=3), expected, rtol=1e-6)
    assert model.training                                          # its mode is restored


@pytest.mark.parametrize("model, X, error, message", [
    (lambda x: np.zeros((len(x), 3)), np.zeros((2, 1, 8, 8)), ValueError, r"must give \(2, 10\) class scores"),
    (lambda x: np.full((len(x), 10), np.nan), np.zeros((2, 1, 8, 8)), ValueError, "NaN or inf"),
    (lambda x: np.zeros((len(x), 10)), np.zeros((2, 8, 8)), ValueError, "X must be a non-empty numeric array"),
    (lambda x: x[:, :5], np.zeros((2, 640)), ValueError, "must reconstruct its input"),
    ("not a model", np.zeros((2, 640)), TypeError, "tinytorch Module or a callable"),
])
def test_task_scores_bad_input(model, X, error, message):
    name = "anomaly_detection" if X.shape[1:] == (640,) else "image_classification"
    with pytest.raises(error, match=message):
        task_scores(name, model, X)

# ---------------------------------------------------------------- reference models


@pytest.mark.parametrize("name", list(TASKS))
def test_reference_meets_its_target_conclusively(name):
    model = reference_model(name)
    assert not model.training
    X, y = load_task_data(name)
    result = score_task(name, task_scores(name, model, X), y)
    assert result["verdict"] == "meets", result
    assert result["ci_low"] > TASKS[name].target_quality
    if name != "image_classification":                              # the manifest records what we measure
        recorded = read_manifest()[TASKS[name].reference]["test"]
        assert recorded["value"] == pytest.approx(result["value"], abs=1e-12) and recorded["n"] == result["n"]


def test_reference_of_seed_7_data_still_meets_the_target():
    X, y = load_task_data("anomaly_detection", seed=7)
    assert score_task("anomaly_detection", task_scores("anomaly_detection", None, X), y)["verdict"] == "meets"


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """The shipped TinyMLPerf folder copied to tmp_path, and tasks pointed at the copy."""
    folder = tmp_path / "tinymlperf"
    shutil.copytree(tasks.tinymlperf_dir(), folder)
    monkeypatch.setattr(tasks, "tinymlperf_dir", lambda: folder)
    return folder


def test_changed_weights_are_refused_with_the_way_to_retrain(shipped_copy):
    state = dict(np.load(shipped_copy / "vww_cnn.npz"))
    first = next(iter(state))
    state[first] = state[first] + np.float32(1e-3)
    np.savez(shipped_copy / "vww_cnn.npz", **state)
    with pytest.raises(ValueError, match="does not match the manifest.*install_reference\\('visual_wake_words'\\)"):
        reference_model("visual_wake_words")
    (shipped_copy / "vww_cnn.npz").unlink()
    with pytest.raises(FileNotFoundError, match="no shipped weights for vww_cnn"):
        reference_model("visual_wake_words")


# Retraining: the bytes are a fingerprint of the machine (CPU, BLAS kernel, threads); the quality is not.
# visual_wake_words is the cheapest reference to train (about a second), so it stands for the three.


@pytest.fixture(scope="module")
def retrained_vww():
    """visual_wake_words trained twice with seed 0 in this process: [(model, info, sha256)] x 2."""
    runs = []
    for _ in range(2):
        model, info = train_reference("visual_wake_words", seed=0)
        runs.append((model, info, weights_digest(model.state_dict())))
    return runs


def test_training_is_deterministic_on_one_machine(retrained_vww):
    """Where it holds: the same seed, process, machine and thread count give identical bytes."""
    (first, info, digest), (second, _, again) = retrained_vww
    assert digest == again
    for (key, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert np.array_equal(a, b), key
    assert info["train_seconds"] > 0 and len(info["history"]) == info["recipe"]["epochs"]


def test_retraining_agrees_with_the_shipped_quality(retrained_vww):
    """Holds on any machine: the test accuracy within the stated tolerance, the Wilson intervals overlap."""
    _, info, digest = retrained_vww[0]
    entry = read_manifest()["vww_cnn"]
    test, shipped = info["test"], entry["test"]
    check = tasks.compare_with_shipped("visual_wake_words", digest, test)
    tolerance = tasks.QUALITY_TOLERANCE["accuracy"]
    assert check["tolerance"] == tolerance == 0.02
    assert abs(test["value"] - shipped["value"]) <= tolerance and check["within_tolerance"]
    low, high = scipy.stats.binomtest(round(shipped["value"] * shipped["n"]), shipped["n"]).proportion_ci(
        0.95, method="wilson")
    assert shipped["ci_low"] == pytest.approx(low) and shipped["ci_high"] == pytest.approx(high)
    assert test["ci_low"] <= high and low <= test["ci_high"] and check["intervals_overlap"]
    assert check["difference"] == pytest.approx(test["value"] - shipped["value"])
    assert check["shipped"]["value"] == shipped["value"] and check["retrained"]["n"] == shipped["n"] == 100


def test_retraining_gives_the_shipped_bytes_where_the_environment_matches(retrained_vww):
    """The exact hash is asserted only where this environment is the one the manifest records."""
    _, info, digest = retrained_vww[0]
    entry = read_manifest()["vww_cnn"]
    differences = zoo.fingerprint_differences(entry["environment"])
    check = tasks.compare_with_shipped("visual_wake_words", digest, info["test"])
    assert check["differences"] == differences and check["environment_recorded"]
    if differences:
        pytest.skip("this environment differs from the one that trained the shipped weights: " + "; ".join(differences))
    assert digest == entry["sha256"] and check["identical"]


def test_every_shipped_reference_records_its_training_environment():
    for name in ("vww_cnn", "kws_cnn", "ad_autoencoder"):
        env = read_manifest()[name]["environment"]
        assert set(env["blas"]) == {"library", "version", "kernel", "threads"}, name
        assert {"cpu_model", "machine", "python", "numpy", "scipy", "scikit-image", "trained_at"} <= set(env)
        assert zoo.fingerprint_differences(env, env) == []


def test_compare_with_shipped_names_what_differs_and_when_quality_disagrees():
    entry = read_manifest()["vww_cnn"]
    here = zoo.environment_fingerprint()
    kernel = "Prescott" if here["blas"]["kernel"] != "Prescott" else "SkylakeX"     # never this machine's own
    threads = 64 if here["blas"]["threads"] != 64 else 63
    other = {**entry, "environment": {**here, "blas": {**here["blas"], "kernel": kernel, "threads": threads}}}
    test = {**entry["test"], "value": entry["test"]["value"] - 0.05, "ci_low": 0.80, "ci_high": 0.90}
    check = tasks.compare_with_shipped("visual_wake_words", "0" * 64, test, entry=other)
    assert not check["identical"] and check["differences"] == [
        f"BLAS kernel: {here['blas']['kernel']} here, {kernel} in the manifest",
        f"BLAS threads: {here['blas']['threads']} here, {threads} in the manifest"]
    assert check["difference"] == pytest.approx(-0.05) and not check["within_tolerance"]
    assert check["intervals_overlap"] == (0.90 >= entry["test"]["ci_low"])
    unrecorded = {key: value for key, value in entry.items() if key != "environment"}
    check = tasks.compare_with_shipped("visual_wake_words", entry["sha256"], entry["test"], entry=unrecorded)
    assert check["identical"] and not check["environment_recorded"]
    assert check["within_tolerance"] and check["intervals_overlap"] and "does not record" in check["differences"][0]


def test_install_reference_writes_weights_and_manifest(shipped_copy):
    before = json.loads((shipped_copy / "manifest.json").read_text())
    info = install_reference("visual_wake_words", seed=1)
    after = json.loads((shipped_copy / "manifest.json").read_text())
    entry = after["vww_cnn"]
    assert info["replaced"] == before["vww_cnn"]["sha256"] != entry["sha256"] == info["sha256"]
    assert entry["seed"] == 1 and entry["parameters"] == 2402 and entry["parameter_bytes"] == 4 * 2402
    assert entry["test"]["ci_low"] > 0.80 and after["kws_cnn"] == before["kws_cnn"]
    assert not list(shipped_copy.glob(".*.tmp"))
    assert weights_digest(reference_model("visual_wake_words").state_dict()) == entry["sha256"]
    env = entry["environment"]                      # module 09's fingerprint, next to the versions kept before
    assert {key: env[key] for key in zoo.environment_fingerprint()} == zoo.environment_fingerprint()
    assert {"scipy", "scikit-image", "cpus", "load_average_1min", "trained_at"} <= set(env)


def test_install_reference_refuses_a_model_that_misses_the_target(shipped_copy, monkeypatch):
    strict = dataclasses.replace(TASKS["visual_wake_words"], target_quality=0.999)
    monkeypatch.setitem(TASKS, "visual_wake_words", strict)
    before = (shipped_copy / "vww_cnn.npz").read_bytes()
    with pytest.raises(RuntimeError, match="does not clear the target 0.999; nothing was written"):
        install_reference("visual_wake_words")
    assert (shipped_copy / "vww_cnn.npz").read_bytes() == before


def test_the_digits_reference_belongs_to_the_model_zoo():
    with pytest.raises(ValueError, match="ships with the model zoo.*tito zoo train digits_cnn"):
        install_reference("image_classification")
