"""The reference models (tinytorch.models.zoo): shipped weights, targets, checksums, reproducibility."""
import hashlib
import json
import shutil

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.datasets import load_digits as sklearn_digits

from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import load_digits
from tinytorch.models import zoo

TARGETS = {"digits_mlp": 0.95, "digits_cnn": 0.97}


def _independent_accuracy(model, flatten):
    """Accuracy recomputed here: the test split's images fed in batches of 50, argmax in numpy."""
    images, labels = load_digits("test", flatten=flatten).tensors
    predictions = np.concatenate([model(Tensor.from_numpy(images.data[i:i + 50])).data.argmax(axis=1)
                                  for i in range(0, len(labels.data), 50)])
    return float(np.mean(predictions == labels.data))


def _digest(path):
    """sha256 of an .npz's arrays computed independently of zoo.weights_digest."""
    digest = hashlib.sha256()
    with np.load(path, allow_pickle=False) as archive:
        for key in sorted(archive.files):
            array = np.ascontiguousarray(archive[key])
            digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_shipped_models_reach_their_targets(name):
    model = zoo.load_model(name)
    assert not model.training
    accuracy = _independent_accuracy(model, zoo.ZOO[name].flatten)
    assert accuracy >= TARGETS[name]
    result = zoo.evaluate(model, name)
    assert result["total"] == 359 and result["accuracy"] == pytest.approx(accuracy)
    assert result["correct"] == round(accuracy * 359)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_manifest_matches_the_files(name):
    manifest = json.loads((zoo.zoo_dir() / "manifest.json").read_text())
    entry = manifest[name]
    assert entry["sha256"] == _digest(zoo.zoo_dir() / entry["file"])
    model = zoo.load_model(name)
    assert entry["parameters"] == sum(p.data.size for p in model.parameters())
    assert entry["parameter_bytes"] == sum(p.data.nbytes for p in model.parameters())
    assert entry["test_correct"] == zoo.evaluate(model, name)["correct"], "the manifest records what was measured"


def test_architectures():
    cnn, mlp = zoo.load_model("digits_cnn"), zoo.load_model("digits_mlp")
    out = cnn(Tensor(np.zeros((3, 1, 8, 8))))
    assert out.shape == (3, 10)
    assert mlp(Tensor(np.zeros((3, 64)))).shape == (3, 10)
    # 1*16*9+16 + 16*32*9+32 + 128*10+10 and 64*128+128 + 128*10+10
    assert sum(p.data.size for p in cnn.parameters()) == 6090
    assert sum(p.data.size for p in mlp.parameters()) == 9610


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    copy = tmp_path / "zoo"
    shutil.copytree(zoo.zoo_dir(), copy)
    with np.load(copy / "digits_mlp.npz") as archive:
        state = {key: archive[key] for key in archive.files}
    state["0.weight"] = state["0.weight"] + np.float32(1e-3)
    np.savez(copy / "digits_mlp.npz", **state)
    monkeypatch.setattr(zoo, "zoo_dir", lambda: copy)
    with pytest.raises(ValueError, match="does not match the manifest"):
        zoo.load_model("digits_mlp")
    (copy / "digits_cnn.npz").unlink()
    with pytest.raises(FileNotFoundError, match="tito zoo train digits_cnn --install"):
        zoo.load_model("digits_cnn")


def test_load_model_with_explicit_weights_checks_keys(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, **{"0.weight": np.zeros((64, 128), np.float32)})
    with pytest.raises(ValueError, match="missing"):
        zoo.load_model("digits_mlp", weights=path)


def test_unknown_model():
    with pytest.raises(ValueError, match="choose one of digits_mlp, digits_cnn"):
        zoo.build_model("resnet50")


def test_training_is_deterministic_and_reaches_the_target(tmp_path):
    first = zoo.train("digits_mlp", log=lambda line: None)
    second = zoo.train("digits_mlp", log=lambda line: None)
    a, b = first.model.state_dict(), second.model.state_dict()
    assert all(np.array_equal(a[key], b[key]) for key in a)
    assert first.test["accuracy"] >= 0.95 and first.seconds_to_target is not None
    assert first.seconds_to_target <= first.seconds
    assert len(first.history) == zoo.ZOO["digits_mlp"].epochs
    digest = zoo.save_weights(first.model, tmp_path / "w.npz")
    assert digest == _digest(tmp_path / "w.npz") == zoo.weights_digest(a)
    reloaded = zoo.load_model("digits_mlp", weights=tmp_path / "w.npz")
    assert zoo.evaluate(reloaded, "digits_mlp")["correct"] == first.test["correct"]


@pytest.mark.parametrize("correct,total", [(354, 359), (0, 10), (10, 10), (1, 1), (50, 100)])
def test_wilson_interval_matches_scipy(correct, total):
    expected = binomtest(correct, total).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = zoo.wilson_interval(correct, total)
    assert low == pytest.approx(expected.low, abs=1e-12) and high == pytest.approx(expected.high, abs=1e-12)
    with pytest.raises(ValueError):
        zoo.wilson_interval(5, 0)


def test_digits_are_the_sklearn_digits():
    images, _ = load_digits("all", flatten=True).tensors
    assert images.data.shape[0] == sklearn_digits().data.shape[0] == 1797


# --- what survives a change of machine ------------------------------------------------------------
FINGERPRINT_KEYS = {"cpu_model", "machine", "python", "numpy", "blas"}
BLAS_KEYS = {"library", "version", "kernel", "threads"}


def test_every_manifest_entry_records_the_training_environment():
    for name, entry in zoo.read_manifest().items():
        env = entry["environment"]
        assert FINGERPRINT_KEYS <= set(env) and BLAS_KEYS <= set(env["blas"]), name
        assert env["numpy"].count(".") >= 1 and isinstance(env["blas"]["threads"], int), name
        assert env["trained_at"].endswith("+00:00"), name


def test_fingerprint_describes_this_process():
    import platform

    from threadpoolctl import threadpool_info

    env = zoo.environment_fingerprint()
    assert env["numpy"] == np.__version__ and env["machine"] == platform.machine()
    pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert (env["blas"]["library"], env["blas"]["threads"]) in {(p["internal_api"], p["num_threads"]) for p in pools}
    assert zoo.fingerprint_differences(env, env) == []


def test_fingerprint_differences_name_each_item():
    here = {"cpu_model": "AMD EPYC", "machine": "x86_64", "python": "3.11.7", "numpy": "2.4.6",
            "blas": {"library": "openblas", "version": "0.3.31", "kernel": "Haswell", "threads": 1}}
    there = {**here, "cpu_model": "Intel Xeon", "blas": {**here["blas"], "kernel": "SkylakeX", "threads": 2}}
    assert zoo.fingerprint_differences(there, here) == [
        "CPU: AMD EPYC here, Intel Xeon in the manifest",
        "BLAS kernel: Haswell here, SkylakeX in the manifest",
        "BLAS threads: 1 here, 2 in the manifest",
    ]
    assert zoo.fingerprint_differences({**here, "python": "3.12.1"}, here) == []  # python does not round floats
    for unrecorded in (None, {"python": "3.11.7", "numpy": "2.4.6", "machine": "x86_64"}):
        (reason,) = zoo.fingerprint_differences(unrecorded, here)
        assert "does not record the CPU and BLAS" in reason


def kernel_with_coretype(coretype):
    """The BLAS kernel a fresh process gets with OPENBLAS_CORETYPE=coretype."""
    import os
    import subprocess
    import sys

    code = ("import numpy; from tinytorch.models import zoo; "
            "print(zoo.environment_fingerprint()['blas']['kernel'])")
    env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_a_forced_blas_kernel_is_seen_as_a_difference():
    """OPENBLAS_CORETYPE picks another kernel: the fingerprint must notice (that is what changes bytes)."""
    own = zoo.environment_fingerprint()
    if own["blas"]["library"] != "openblas":
        pytest.skip(f"numpy uses {own['blas']['library']}, not OpenBLAS: OPENBLAS_CORETYPE does not apply")
    # the suite itself may run under a forced kernel: take the first coretype that gives another one
    forced = next((k for k in map(kernel_with_coretype, ("Prescott", "Nehalem", "Sandybridge"))
                   if k != own["blas"]["kernel"]), None)
    assert forced, "no OPENBLAS_CORETYPE changed the kernel"
    other = {**own, "blas": {**own["blas"], "kernel": forced}}
    assert zoo.fingerprint_differences(other, own) == [f"BLAS kernel: {own['blas']['kernel']} here, {forced} in the manifest"]


@pytest.fixture(scope="module")
def retrained():
    """digits_mlp and digits_cnn retrained with their recipes (a few seconds on 2 cores)."""
    out = {}
    for name in sorted(TARGETS):
        report = zoo.train(name, log=lambda line: None)
        out[name] = (report, zoo.weights_digest(report.model.state_dict()))
    return out


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_retraining_agrees_with_the_shipped_accuracy(retrained, name):
    """Holds on any machine: the accuracy within the stated tolerance, the Wilson intervals overlap."""
    report, digest = retrained[name]
    entry = zoo.read_manifest()[name]
    check = zoo.compare_with_shipped(name, digest, report.test)
    assert abs(report.test["accuracy"] - entry["test_accuracy"]) <= zoo.ACCURACY_TOLERANCE == check["tolerance"]
    low, high = zoo.wilson_interval(entry["test_correct"], entry["test_total"])
    assert report.test["ci_low"] <= high and low <= report.test["ci_high"]
    assert check["within_tolerance"] and check["intervals_overlap"]
    assert check["shipped"]["correct"] == entry["test_correct"]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_retraining_gives_the_shipped_bytes_where_the_environment_matches(retrained, name):
    """The exact hash is a fingerprint of the machine: asserted only where the fingerprint matches."""
    report, digest = retrained[name]
    entry = zoo.read_manifest()[name]
    differences = zoo.fingerprint_differences(entry["environment"])
    check = zoo.compare_with_shipped(name, digest, report.test)
    assert check["differences"] == differences
    if differences:
        pytest.skip("this environment differs from the one that trained the shipped weights: " + "; ".join(differences))
    assert digest == entry["sha256"] and check["identical"]
