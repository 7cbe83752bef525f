# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Given code: reference models `digits_mlp` and `digits_cnn` (`tinytorch.models.zoo`)
#
# This notebook is given: it ships solved in every edition and holds no exercise. It exports
# `tinytorch.models.zoo`, the trained reference models that modules 14-20 profile, quantize,
# prune, benchmark and race. It builds them from the layers you write in the lesson of module 09
# (`nbs/09_convolutions.ipynb`, exported to `tinytorch.core.spatial`) and trains them with module
# 08's `Trainer`, so it runs once those are exported (`tito module complete 9` exports both).

# %%
#| default_exp models.zoo

# %% [markdown]
# ## The two models
#
# The systems track (modules 14-20) profiles, quantizes, prunes, benchmarks and races real,
# trained models. These two are the baselines, built only from this course's modules and trained
# on the digits train split by fixed, seeded recipes:
#
# - `digits_mlp`: flattened 8x8 images -> Linear(64, 128) -> ReLU -> Linear(128, 10).
# - `digits_cnn`: 1x8x8 images -> Conv2d(1, 16, 3, padding=1) -> ReLU -> MaxPool2d(2) ->
#   Conv2d(16, 32, 3, padding=1) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear(128, 10).
#
# Their trained weights ship in `tinytorch/assets/zoo/` with a manifest that records each file's
# checksum and what was measured when it was trained. `load_model(name)` rebuilds the
# architecture, checks the weights against the manifest and returns the model in eval mode;
# `tito zoo eval NAME` prints its test accuracy with a Wilson 95% interval, and
# `tito zoo train NAME` retrains it from scratch with the same recipe and compares the result with
# the shipped weights. The manifest also records the machine that trained them (CPU, BLAS kernel
# and threads, numpy): float32 sums round differently elsewhere, so the bytes can only match
# there, while the accuracy must agree everywhere. The code below is the glue between the modules
# you wrote: the layers of module 09's lesson (`tinytorch.core.spatial`) and module 08's `Trainer`.

# %%
#| export
import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from statistics import NormalDist
from typing import Callable

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.training import Trainer
from tinytorch.data.loader import DataLoader, load_digits


def zoo_dir():
    """The folder with the shipped weights and their manifest (inside the installed package)."""
    import tinytorch

    return Path(tinytorch.__file__).resolve().parent / "assets" / "zoo"


def _digits_mlp(seed):
    return Sequential(Linear(64, 128, rng=seed), ReLU(), Linear(128, 10, rng=seed + 1))


def _digits_cnn(seed):
    return Sequential(
        Conv2d(1, 16, 3, padding=1, rng=seed), ReLU(), MaxPool2d(2),       # -> 16 x 4 x 4
        Conv2d(16, 32, 3, padding=1, rng=seed + 1), ReLU(), MaxPool2d(2),  # -> 32 x 2 x 2
        Flatten(), Linear(128, 10, rng=seed + 2))


@dataclass(frozen=True)
class ZooSpec:
    """A reference model: its architecture and the seeded recipe that trains it."""
    name: str
    description: str
    build: Callable[[int], Module]  # seed -> a freshly initialised model
    flatten: bool                   # digits as (N, 64) vectors, or (N, 1, 8, 8) images
    epochs: int
    batch_size: int
    lr: float                       # Adam's learning rate
    target: float                   # test top-1 accuracy the trained model must reach
    seed: int = 0


ZOO = {spec.name: spec for spec in (
    ZooSpec("digits_mlp", "MLP 64-128-10 (ReLU) on flattened 8x8 digits", _digits_mlp,
            flatten=True, epochs=20, batch_size=64, lr=1e-2, target=0.95),
    ZooSpec("digits_cnn", "CNN conv16-pool-conv32-pool-linear on 1x8x8 digits", _digits_cnn,
            flatten=False, epochs=15, batch_size=64, lr=1e-2, target=0.97),
)}


def _variant_entry(name):
    """The manifest entry of a shipped optimized variant (e.g. digits_cnn_int8), or None."""
    entry = read_manifest().get(name)
    return entry if name not in ZOO and entry is not None and "provider" in entry else None


def model_names():
    """The baselines, then the optimized variants that ship weights."""
    return [*ZOO, *sorted(name for name in read_manifest() if _variant_entry(name))]


def _spec(name):
    """The recipe of a baseline; for a variant, the recipe of the baseline it was derived from."""
    if name in ZOO:
        return ZOO[name]
    entry = _variant_entry(name)
    if entry is None or entry.get("base") not in ZOO:
        raise ValueError(f"unknown reference model {name!r}; choose one of {', '.join(model_names())}")
    return ZOO[entry["base"]]


def target_of(name):
    """The test accuracy a model must reach: the recipe's, or the one recorded for a variant."""
    entry = _variant_entry(name)
    return entry["target"] if entry else _spec(name).target


def build_model(name, seed=None):
    """A freshly initialised (untrained) reference model; seed defaults to the recipe's."""
    spec = _spec(name)
    return spec.build(spec.seed if seed is None else seed)


def wilson_interval(correct, total, confidence=0.95):
    """Wilson score interval for a binomial proportion (accuracy = correct / total)."""
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total and total > 0, got correct={correct}, total={total}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return float(centre - half), float(centre + half)


def evaluate(model, name, split="test"):
    """Top-1 accuracy of model on a digits split, with its Wilson 95% interval."""
    spec = _spec(name)
    images, labels = load_digits(split, flatten=spec.flatten).tensors
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            logits = model(images).data
    finally:
        model.train(was_training)
    correct = int(np.count_nonzero(logits.argmax(axis=1) == labels.data))
    low, high = wilson_interval(correct, len(labels.data))
    return {"split": split, "correct": correct, "total": len(labels.data),
            "accuracy": correct / len(labels.data), "ci_low": low, "ci_high": high}


def weights_digest(state):
    """sha256 over the weights themselves (names, dtypes, shapes, bytes), not the file container."""
    digest = hashlib.sha256()
    for key in sorted(state):
        array = np.ascontiguousarray(state[key])
        digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _atomic_write(path, write):
    """Call write(file object) on a temporary file beside path, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o644)  # mkstemp creates files readable by their owner only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights(model, path):
    """Write model.state_dict() to an .npz file atomically; returns the weights' sha256."""
    state = model.state_dict()
    _atomic_write(path, lambda handle: np.savez(handle, **state))
    return weights_digest(state)


def read_manifest():
    """{name: what was recorded when the shipped weights were trained}; {} if none are shipped."""
    path = zoo_dir() / "manifest.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def load_model(name, weights=None):
    """A reference model with trained weights, in eval mode.

    weights: an .npz file to load instead of the shipped one (not checked against the manifest).
    """
    path = zoo_dir() / f"{name}.npz" if weights is None else Path(weights)
    _spec(name)
    if not path.exists():
        raise FileNotFoundError(f"no weights at {path}; run `tito zoo train {name} --install` to train them")
    with np.load(path, allow_pickle=False) as archive:
        state = {key: archive[key] for key in archive.files}
    if weights is None:
        expected = read_manifest().get(name, {}).get("sha256")
        actual = weights_digest(state)
        if actual != expected:
            raise ValueError(f"{path}: the weights' sha256 {actual} does not match the manifest's {expected}; "
                             f"the file was changed or replaced. Restore it, or retrain with `tito zoo train {name} --install`")
    entry = _variant_entry(name)
    if entry is not None:  # an optimized variant: the module that made it rebuilds its layers
        return _provider(name, entry["provider"]).load_zoo_variant(name, state).eval()
    model = build_model(name)
    model.load_state_dict(state)
    return model.eval()


def _provider(name, module_name):
    """The (later) course module that builds an optimized variant, imported by the name the manifest
    records, so this module never depends on modules 15-17."""
    import importlib

    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise
        raise ImportError(f"{name} is built by {module_name}, which is not exported yet: complete that module first") from exc


def install_variant(name, model, provider, base, target, recipe):
    """Ship model as the optimized variant name of base; the manifest records what was measured."""
    if name in ZOO or base not in ZOO:
        raise ValueError(f"a variant needs a new name and a baseline from {', '.join(ZOO)}; got {name!r} of {base!r}")
    result = evaluate(model, base)  # a variant reads the digits the way its baseline does
    path = zoo_dir() / f"{name}.npz"
    digest = save_weights(model, path)
    manifest = read_manifest()
    manifest[name] = {"file": path.name, "sha256": digest, "provider": provider, "base": base, "target": target,
                      "recipe": recipe, "parameter_bytes": int(sum(p.data.nbytes for p in model.parameters())),
                      "test_accuracy": result["accuracy"], "test_correct": result["correct"],
                      "test_total": result["total"], "environment": _environment()}
    _write_manifest(manifest)
    return path, digest


def _cpu_model():
    """The CPU's model name as the OS reports it ('unavailable' where it does not)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Hardware", "Processor", "cpu model") and value.strip():
            return value.strip()
    return platform.processor() or "unavailable"


def environment_fingerprint():
    """What float32 training results depend on besides the recipe: the CPU, the BLAS library numpy
    calls, the kernel that library picked for this CPU (OPENBLAS_CORETYPE can force another), its
    thread count (a GEMM split across threads sums in another order), and the numpy version."""
    from threadpoolctl import threadpool_info

    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    # numpy's own BLAS (scipy may load a second copy): the library shipped in numpy/ or numpy.libs/
    numpy_dir = str(Path(np.__file__).resolve().parent)
    own = [pool for pool in pools if str(Path(pool.get("filepath", "")).resolve()).startswith(numpy_dir)]
    pool = (own or pools or [{}])[0]
    return {"cpu_model": _cpu_model(), "machine": platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__,
            "blas": {"library": pool.get("internal_api", "not detected"), "version": pool.get("version"),
                     "kernel": pool.get("architecture"), "threads": pool.get("num_threads")}}


# (what, how to read it from a fingerprint): the items whose change can change trained bytes.
_FINGERPRINT_ITEMS = (
    ("CPU", lambda env: env.get("cpu_model")),
    ("machine", lambda env: env.get("machine")),
    ("numpy", lambda env: env.get("numpy")),
    ("BLAS library", lambda env: env["blas"].get("library")),
    ("BLAS version", lambda env: env["blas"].get("version")),
    ("BLAS kernel", lambda env: env["blas"].get("kernel")),
    ("BLAS threads", lambda env: env["blas"].get("threads")),
)


def fingerprint_differences(recorded, current=None):
    """One sentence per item where the environment that trained the shipped weights (recorded, from a
    manifest) differs from current (default: this process). [] means the same environment, where
    a seeded retraining must give the same bytes."""
    current = environment_fingerprint() if current is None else current
    if not isinstance(recorded, dict) or not isinstance(recorded.get("blas"), dict):
        return ["the manifest does not record the CPU and BLAS that trained the shipped weights "
                "(they were installed before TinyTorch recorded them), so byte-identity cannot be expected"]
    return [f"{what}: {read(current)} here, {read(recorded)} in the manifest"
            for what, read in _FINGERPRINT_ITEMS if read(current) != read(recorded)]


# A retraining on another machine must land this close to the shipped test accuracy (2 points:
# about 7 of the 359 test images). Measured on an AMD EPYC (OpenBLAS, Haswell kernel at 1 and 2
# threads, and the Katmai kernel forced with OPENBLAS_CORETYPE=Prescott): the bytes differed in
# every pair, the test accuracy by at most 1 image.
ACCURACY_TOLERANCE = 0.02


def retraining_check(digest, entry, retrained, shipped, tolerance):
    """The comparison any retraining makes with what ships (pure: numbers in, verdicts out).

    digest: sha256 of the retrained weights; entry: the shipped manifest entry (its sha256 and
    environment); retrained, shipped: dicts with the quality "value" and its interval "ci_low",
    "ci_high". Identical bytes are expected only where fingerprint_differences is empty; what must
    hold anywhere is the quality within tolerance and overlapping intervals."""
    difference = retrained["value"] - shipped["value"]
    return {"identical": digest == entry["sha256"], "shipped_sha256": entry["sha256"],
            "differences": fingerprint_differences(entry.get("environment")),
            "difference": difference, "tolerance": tolerance, "within_tolerance": abs(difference) <= tolerance,
            "intervals_overlap": retrained["ci_low"] <= shipped["ci_high"] and shipped["ci_low"] <= retrained["ci_high"]}


def compare_with_shipped(name, digest, test):
    """How retrained weights (their sha256 digest and evaluate() result) compare with the shipped ones:
    retraining_check on the test accuracy with ACCURACY_TOLERANCE and Wilson intervals.
    None when nothing ships under name."""
    entry = read_manifest().get(name)
    if entry is None:
        return None
    total = entry["test_total"]
    shipped_low, shipped_high = wilson_interval(entry["test_correct"], total)
    shipped = {"accuracy": entry["test_accuracy"], "correct": entry["test_correct"], "total": total,
               "ci_low": shipped_low, "ci_high": shipped_high}
    check = retraining_check(digest, entry, {**test, "value": test["accuracy"]},
                             {**shipped, "value": shipped["accuracy"]}, ACCURACY_TOLERANCE)
    return {**check, "shipped": shipped, "accuracy_difference": check["difference"]}


def _environment():
    """The manifest's record of where weights were made: the fingerprint plus a timestamp."""
    return {**environment_fingerprint(), "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _write_manifest(manifest):
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    _atomic_write(zoo_dir() / "manifest.json", lambda handle: handle.write(text.encode("utf-8")))


@dataclass
class TrainReport:
    """What train() measured: training seconds exclude the per-epoch test evaluations."""
    name: str
    seed: int
    model: Module
    seconds: float
    seconds_to_target: float | None  # training seconds until test accuracy first reached the target
    test: dict
    history: list = field(default_factory=list)


def train(name, seed=None, log=print):
    """Train a reference model from scratch with its recipe (Adam, seeded init and shuffling)."""
    spec = _spec(name)
    seed = spec.seed if seed is None else seed
    model = spec.build(seed)
    loader = DataLoader(load_digits("train", flatten=spec.flatten), batch_size=spec.batch_size,
                        shuffle=True, seed=seed)
    trainer = Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=spec.lr), loader)
    report = TrainReport(name, seed, model, 0.0, None, {})
    for epoch in range(1, spec.epochs + 1):
        stats = trainer.train_epoch()
        report.seconds += stats["seconds"]
        test = evaluate(model, name)
        if report.seconds_to_target is None and test["accuracy"] >= spec.target:
            report.seconds_to_target = report.seconds
        report.history.append({"epoch": epoch, "train_loss": stats["loss"], "train_accuracy": stats["accuracy"],
                               "test_accuracy": test["accuracy"], "seconds": stats["seconds"]})
        log(f"epoch {epoch:2d}/{spec.epochs}: train loss {stats['loss']:.4f}, train accuracy "
            f"{stats['accuracy']:.2%}, test accuracy {test['accuracy']:.2%} ({stats['seconds']:.2f} s)")
    model.eval()
    report.test = evaluate(model, name)
    return report


def install_weights(name, report):
    """Make report's model the shipped weights of name and record what was measured in the manifest."""
    path = zoo_dir() / f"{name}.npz"
    digest = save_weights(report.model, path)
    spec = _spec(name)
    manifest = read_manifest()
    manifest[name] = {
        "file": path.name, "sha256": digest, "seed": report.seed,
        "parameters": int(sum(p.size for p in report.model.parameters())),
        "parameter_bytes": int(sum(p.data.nbytes for p in report.model.parameters())),
        "recipe": {"epochs": spec.epochs, "batch_size": spec.batch_size, "optimizer": "Adam", "lr": spec.lr},
        "test_accuracy": report.test["accuracy"], "test_correct": report.test["correct"],
        "test_total": report.test["total"], "train_seconds": round(report.seconds, 3),
        "seconds_to_target": None if report.seconds_to_target is None else round(report.seconds_to_target, 3),
        "environment": _environment(),
    }
    _write_manifest(manifest)
    return path, digest

# %% [markdown]
# The shipped models, evaluated now on the digits test split (the cell measures; nothing is read
# back from the manifest except the checksum that `load_model` verifies):

# %%
for zoo_name, zoo_spec in ZOO.items():
    zoo_model = load_model(zoo_name)
    zoo_result = evaluate(zoo_model, zoo_name)
    zoo_params = sum(p.size for p in zoo_model.parameters())
    print(f"{zoo_name}: {zoo_params:,} parameters, test accuracy {zoo_result['accuracy']:.2%} "
          f"({zoo_result['correct']}/{zoo_result['total']}, Wilson 95% interval "
          f"{zoo_result['ci_low']:.2%} to {zoo_result['ci_high']:.2%}), target {zoo_spec.target:.0%}")
    assert zoo_result["accuracy"] >= zoo_spec.target and not zoo_model.training

# %% [markdown]
# Retraining `digits_mlp` from scratch takes a few seconds; with the same seed it reproduces the
# shipped weights exactly in the environment that trained them. Elsewhere (another CPU, BLAS
# kernel or thread count) the cell prints what differs, and checks what must hold anyway: the test
# accuracy within `ACCURACY_TOLERANCE` of the shipped one, with overlapping Wilson intervals.

# %%
mlp_report = train("digits_mlp", log=lambda line: None)
mlp_digest = weights_digest(mlp_report.model.state_dict())
mlp_check = compare_with_shipped("digits_mlp", mlp_digest, mlp_report.test)
print(f"digits_mlp retrained in {mlp_report.seconds:.2f} s of training: test accuracy "
      f"{mlp_report.test['accuracy']:.2%} (shipped: {mlp_check['shipped']['accuracy']:.2%}); "
      f"identical to the shipped weights: {mlp_check['identical']}")
for reason in mlp_check["differences"]:
    print(f"  this environment differs from the one that trained them: {reason}")
assert mlp_report.test["accuracy"] >= ZOO["digits_mlp"].target
assert mlp_check["within_tolerance"] and mlp_check["intervals_overlap"]
