"""Tests of tinytorch.capstone.entry, the student's entry: the pipeline, the measurement, the verdict, the folder.

Oracles: the public functions of modules 15-17 called directly (build_entry), numpy predictions against the
labels and the state arrays' bytes (measure_entry), a model that runs the baseline three times (about 3x
slower), hand-built measurements with exact speed-ups (entry_verdict), and the files written (submit_entry).
One test grades the solved recipe with the real Olympics grader (a short run: two sessions)."""
import json

import numpy as np
import pytest

from tinytorch.capstone.entry import build_entry, entry_verdict, measure_entry, submit_entry
from tinytorch.capstone.events import rules_for
from tinytorch.capstone.submit import build_from_folder
from tinytorch.core.layers import Module
from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import load_digits
from tinytorch.models.zoo import load_model, weights_digest
from tinytorch.optimization.acceleration import FusedLinearReLU, fuse_linear_relu
from tinytorch.optimization.compression import distill, fine_tune, prune_channels, student_cnn
from tinytorch.optimization.quantization import quantize_model

IMAGES, LABELS = load_digits("test").tensors
X = Tensor.from_numpy(IMAGES.data[:32])
TRAIN = load_digits("train").tensors[0].data
SOLVED = [("prune_channels", {"fraction": 0.75}), ("fine_tune", {"epochs": 4, "lr": 3e-3}),
          ("quantize_int8", {"calibration": 256})]


@pytest.fixture(scope="module")
def baseline():
    return load_model("digits_cnn")


def test_build_entry_applies_the_steps_in_order_as_the_public_calls_do(baseline):
    before = weights_digest(baseline.state_dict())
    direct = prune_channels(baseline, 0.5)
    fine_tune(direct, 1, 3e-3, seed=3)
    direct = quantize_model(direct, calibration_data=TRAIN[:100])
    built = build_entry(baseline, [("prune_channels", {"fraction": 0.5}), ("fine_tune", {"epochs": 1, "lr": 3e-3}),
                                   ("quantize_int8", {"calibration": 100})], seed=3)
    assert np.array_equal(built(X).data, direct(X).data)
    assert not built.training and weights_digest(baseline.state_dict()) == before
    assert np.array_equal(build_entry(baseline, [])(X).data, baseline(X).data)
    assert build_entry(baseline, []) is not baseline


def test_build_entry_distills_into_the_student(baseline):
    student = student_cnn(1)
    distill(baseline, student, 1, 2.0, 0.5, seed=1)
    built = build_entry(baseline, [("distill", {"epochs": 1, "temperature": 2.0, "alpha": 0.5})], seed=1)
    assert np.array_equal(built(X).data, student(X).data)


def test_build_entry_fuses_linear_relu():
    mlp = load_model("digits_mlp")
    flat = Tensor.from_numpy(load_digits("test", flatten=True).tensors[0].data[:8])
    fused = build_entry(mlp, [("fuse_linear_relu", {})])
    assert any(isinstance(layer, FusedLinearReLU) for layer in fused)
    assert np.allclose(fused(flat).data, fuse_linear_relu(mlp.eval())(flat).data)


def test_build_entry_checks_the_recipe_first(baseline):
    with pytest.raises(ValueError, match="quantize_int8 must be the last"):
        build_entry(baseline, [("quantize_int8", {"calibration": 8}), ("prune_channels", {"fraction": 0.5})])


class Thrice(Module):
    """The baseline called three times: its answers and bytes, about 3x its time."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        self.model(x)
        self.model(x)
        return self.model(x)


def test_measure_entry_measures_both_models_on_the_same_data(baseline):
    got = measure_entry(Thrice(baseline), baseline, IMAGES.data, LABELS.data, max_time_s=1.0)
    truth = baseline(IMAGES).data.argmax(axis=1) == LABELS.data
    for side in ("entry", "baseline"):
        assert set(got[side]) >= {"correct", "latency_ms", "parameter_bytes", "serialized_bytes"}
        assert np.array_equal(np.asarray(got[side]["correct"], bool), truth)
        assert got[side]["parameter_bytes"] == 24360 and got[side]["serialized_bytes"] > 24360
    assert len(got["entry"]["latency_ms"]) == len(got["baseline"]["latency_ms"]) >= 10
    s = got["speedup"]
    assert s["value"] == pytest.approx(np.median(got["baseline"]["latency_ms"]) / np.median(got["entry"]["latency_ms"]))
    # three forwards: clearly slower on any machine (0.17-0.33 seen, by BLAS kernel and caches), not exactly 1/3
    assert 0.05 < s["value"] < 0.6 and s["low"] <= s["value"] <= s["high"] < 1 and s["verdict"] == "submission slower"
    comparison = got["latency_comparison"]
    assert (comparison.a, comparison.b) == ("entry", "baseline") and comparison.ratio > 2


def _m(correct, latency, parameter_bytes):
    return {"correct": correct, "latency_ms": latency, "parameter_bytes": parameter_bytes,
            "serialized_bytes": parameter_bytes + 400}


BASE = _m(np.ones(200), np.linspace(2.0, 3.0, 30), 8000)


def test_entry_verdict_wins_conclusively_within_the_floor():
    fast = _m(np.r_[np.ones(190), np.zeros(10)], BASE["latency_ms"] / 2, 2000)
    v = entry_verdict("EXTREME_PUSH", fast, BASE)
    assert v["ok"] and v["eligible"] and v["beats_baseline"] and v["reasons"] == []
    assert (v["event"], v["score"], v["low"], v["high"], v["baseline_score"]) == ("extreme_push", 8.0, 8.0, 8.0, 1.0)
    assert v["result"]["components"]["compression"]["value"] == 4.0


def test_entry_verdict_is_not_ok_when_it_does_not_clear_the_baseline_or_a_floor():
    same = entry_verdict("latency_sprint", BASE, BASE)
    assert same["eligible"] and not same["beats_baseline"] and not same["ok"]
    assert same["reasons"] == ["speedup 1 (95% interval [1, 1]) does not clear the baseline's 1: not conclusively better"]
    sloppy = _m(np.r_[np.ones(140), np.zeros(60)], BASE["latency_ms"] / 2, 2000)
    v = entry_verdict("extreme_push", sloppy, BASE)
    assert v["beats_baseline"] and not v["eligible"] and not v["ok"]
    assert len(v["reasons"]) == 1 and "conclusively below the floor" in v["reasons"][0]
    assert entry_verdict("latency_sprint", sloppy, BASE, rules_for("latency_sprint", {"min_accuracy": 0.5}))["ok"]


def test_entry_verdict_in_the_accuracy_contest_compares_with_the_baselines_interval():
    worse_base = _m(np.r_[np.ones(150), np.zeros(50)], BASE["latency_ms"], 8000)
    better = entry_verdict("accuracy_contest", BASE, worse_base)
    assert better["ok"] and better["baseline_score"] == 0.75 and better["low"] > 0.806
    close = entry_verdict("accuracy_contest", _m(np.r_[np.ones(155), np.zeros(45)], BASE["latency_ms"], 8000), worse_base)
    assert close["eligible"] and not close["beats_baseline"]
    assert close["reasons"][-1].startswith("accuracy 0.775 (95% interval")


def test_submit_entry_writes_the_fields_from_the_recipe(tmp_path, baseline):
    recipe = [("quantize_int8", {"calibration": 32})]
    model = quantize_model(baseline, calibration_data=TRAIN[:32])
    folder = submit_entry(tmp_path / "s2_mem", model, recipe, "Memory_Challenge", "s2")
    assert json.loads((folder / "submission.json").read_text()) == {
        "student_id": "s2", "events": ["memory_challenge"], "division": "closed",
        "techniques": ["int8 quantization: per-channel weights, activations calibrated on 32 train images"]}
    assert np.array_equal(build_from_folder(folder)(X).data, model(X).data)
    with pytest.raises(FileExistsError):
        submit_entry(folder, model, recipe, "memory_challenge", "s2")
    pruned = prune_channels(baseline, 0.5)
    folder = submit_entry(tmp_path / "s2_mem", pruned, [("prune_channels", {"fraction": 0.5})], "latency_sprint",
                          "s2", name="half", overwrite=True)
    meta = json.loads((folder / "submission.json").read_text())
    assert (meta["division"], meta["name"], meta["events"]) == ("open", "half", ["latency_sprint"])
    with pytest.raises(ValueError, match="unknown Olympic event"):
        submit_entry(tmp_path / "s3", pruned, [("prune_channels", {"fraction": 0.5})], "sprint", "s2")


def test_the_solved_entry_wins_the_extreme_push_when_graded(tmp_path, baseline):
    from tinytorch.tito.olympics.grader import grade_submission
    from tinytorch.tito.olympics.sandbox import Limits

    entry = build_entry(baseline, SOLVED)
    folder = submit_entry(tmp_path / "solved_push", entry, SOLVED, "extreme_push", "solved")
    record = grade_submission(folder, limits=Limits(latency_sessions=2, latency_rounds=10, min_rounds=6,
                                                    latency_budget_s=3.0))
    assert record["status"] == "ok", record["reason"]
    assert record["measurement"]["parameter_bytes"] == sum(a.nbytes for a in entry.state_dict().values()) == 844
    verdict = entry_verdict("extreme_push", record["measurement"], record["baseline"])
    assert verdict["ok"], verdict["reasons"]
    assert verdict["low"] > 10     # compression alone is 24360 / 844 = 28.9
