# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Given code: recipes and submission folders
#
# This notebook is given: it ships solved in every edition and is not an exercise. The capstone lesson
# (`20_capstone.ipynb`) builds an Olympics entry from the baseline `digits_cnn` by a **recipe**, an
# ordered list of `(technique, options)` steps, each a public function of modules 15-17, and hands it
# in as a submission folder that `tito olympics submit` and `tito olympics grade` accept:
#
# - `submission.py`: `build_model()` rebuilds the entry's architecture by replaying the recipe's
#   structural steps (pruning, distillation's student, quantization, fusion) on a freshly built
#   `digits_cnn`, then loads every trained array from `weights.bin`;
# - `weights.bin`: the arrays of `model.state_dict()`, raw bytes one after the other in sorted key
#   order. No container: the grader counts a submission's weight files as memory, and an `.npz` adds
#   a few hundred bytes of headers per array, more than a whole int8 layer of this model weighs;
# - `submission.json`: student id, events, techniques, division.
#
# Here: the techniques (`TECHNIQUES`), recipe validation, and the folder writer. Nothing here measures,
# and nothing imports `tinytorch.tito` (the lesson validates and grades with it, in cells of its own).

# %%
#| default_exp capstone.submit

# %%
#| export
"""Olympics entries as submission folders: recipes of techniques from modules 15-17, and the writer of the
folder the grader takes (submission.py, weights.bin, submission.json). File writing only: nothing is measured."""
import json
import numbers
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinytorch.core.layers import Module
from tinytorch.models.zoo import build_model as zoo_model
from tinytorch.optimization.acceleration import fuse_linear_relu
from tinytorch.optimization.compression import prune_channels, student_cnn
from tinytorch.optimization.quantization import quantize_model

BASELINE = "digits_cnn"
WEIGHTS_FILE = "weights.bin"
DIVISIONS = ("closed", "open")
# The fields of submission.json (tito olympics submit's format): all required but "name".
META_KEYS = ("student_id", "events", "techniques", "division", "name")


@dataclass(frozen=True)
class Technique:
    """One optimization a recipe may apply: the module and public function that implement it, its options
    ({name: (kind, test, what a valid value is)}), whether it trains (uses the training data), whether it is
    allowed in the closed division (the baseline's own network, transformed after training), the line that
    rebuilds its architecture in submission.py (None: it changes weights only), and its description."""

    name: str
    module: int
    api: str
    options: dict
    trains: bool
    closed: bool
    rebuild: str
    text: str

    def describe(self, options):
        """The technique in words with its options, as submission.json's "techniques" lists it."""
        return self.text.format(**options)


_FRACTION = (numbers.Real, lambda v: 0 < v < 1, "a fraction in (0, 1) such as 0.5")
_EPOCHS = (numbers.Integral, lambda v: 1 <= v <= 100, "a whole number of epochs in 1..100 such as 3")
_RATE = (numbers.Real, lambda v: 0 < v < 1, "a learning rate in (0, 1) such as 3e-3")
_TEMPERATURE = (numbers.Real, lambda v: 0 < v <= 100, "a temperature in (0, 100] such as 4.0")
_ALPHA = (numbers.Real, lambda v: 0 <= v <= 1, "a weight in [0, 1] such as 0.7")
_IMAGES = (numbers.Integral, lambda v: 1 <= v <= 1437, "a number of train images in 1..1437 such as 256")

TECHNIQUES = {t.name: t for t in (
    Technique("prune_channels", 16, "tinytorch.optimization.compression.prune_channels(model, fraction)",
              {"fraction": _FRACTION}, trains=False, closed=False,
              rebuild="model = prune_channels(model, {fraction!r})",
              text="structured channel pruning: {fraction:.0%} of each conv layer's channels removed (L1 norm)"),
    Technique("fine_tune", 16, "tinytorch.optimization.compression.fine_tune(model, epochs, lr, seed)",
              {"epochs": _EPOCHS, "lr": _RATE}, trains=True, closed=False, rebuild=None,
              text="fine-tuning: {epochs} epochs of Adam (lr {lr:g}) on the digits train split"),
    Technique("distill", 16, "tinytorch.optimization.compression.distill(teacher, student_cnn(seed), epochs, ...)",
              {"epochs": _EPOCHS, "temperature": _TEMPERATURE, "alpha": _ALPHA}, trains=True, closed=False,
              rebuild="model = student_cnn(0)",
              text="knowledge distillation into student_cnn (8/16 channels): {epochs} epochs, T={temperature:g}, "
                   "alpha={alpha:g}"),
    Technique("quantize_int8", 15, "tinytorch.optimization.quantization.quantize_model(model, calibration_data)",
              {"calibration": _IMAGES}, trains=False, closed=True,
              rebuild="model = quantize_model(model, calibration_data=np.zeros((1, 1, 8, 8), np.float32))",
              text="int8 quantization: per-channel weights, activations calibrated on {calibration} train images"),
    Technique("fuse_linear_relu", 17, "tinytorch.optimization.acceleration.fuse_linear_relu(model)",
              {}, trains=False, closed=True, rebuild="model = fuse_linear_relu(model.eval())",
              text="fused Linear+ReLU inference kernels"),
)}

# %% [markdown]
# ## Recipes
#
# A recipe is checked before anything runs, so a mistake is reported with its step and its fix rather
# than as a traceback from deep inside module 15 or 16. Order matters: int8 layers are frozen (they
# cannot be trained), so quantization comes last; a fused layer is inference-only, so fusion comes after
# every training step; and a fused layer cannot be quantized.

# %%
#| export
def _check_options(index, technique, options):
    """options of step index as a dict of valid values; ValueError naming the step, the option and the fix."""
    where = f"recipe step {index} ({technique.name})"
    if not isinstance(options, dict):
        raise ValueError(f"{where}: options must be a dict such as "
                         f"{ {k: None for k in technique.options} }, got {type(options).__name__}")
    unknown, missing = sorted(set(options) - set(technique.options)), sorted(set(technique.options) - set(options))
    if unknown or missing:
        raise ValueError(f"{where}: options must be exactly {sorted(technique.options)}; "
                         f"unknown {unknown}, missing {missing}")
    checked = {}
    for key, (kind, valid, wanted) in technique.options.items():
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, kind) or not valid(value):
            raise ValueError(f"{where}: {key} must be {wanted}, got {value!r}")
        checked[key] = int(value) if kind is numbers.Integral else float(value)
    return checked


def check_recipe(recipe):
    """The recipe as a list of (technique name, options dict) pairs, each checked; ValueError otherwise.

    A recipe is a list of (name, options) pairs, names from TECHNIQUES, e.g.
    [("prune_channels", {"fraction": 0.5}), ("fine_tune", {"epochs": 3, "lr": 3e-3}),
     ("quantize_int8", {"calibration": 256})]. The empty recipe is the baseline itself.
    Order rules: quantize_int8 at most once and last; fuse_linear_relu after every step that trains, and not
    together with quantize_int8."""
    if not isinstance(recipe, (list, tuple)):
        raise ValueError(f"a recipe is a list of (technique, options) pairs, got {type(recipe).__name__}")
    steps = []
    for index, step in enumerate(recipe):
        if not isinstance(step, (list, tuple)) or len(step) != 2 or not isinstance(step[0], str):
            raise ValueError(f"recipe step {index} must be a (technique name, options dict) pair, got {step!r}")
        name, options = step
        if name not in TECHNIQUES:
            raise ValueError(f"recipe step {index}: unknown technique {name!r}; choose from {', '.join(TECHNIQUES)}")
        steps.append((name, _check_options(index, TECHNIQUES[name], options)))
    names = [name for name, _ in steps]
    if "quantize_int8" in names and names.index("quantize_int8") != len(names) - 1:
        raise ValueError(f"quantize_int8 must be the last step (and appear once), got the order {names}: int8 "
                         "layers are frozen, so nothing can train or prune them; move it to the end")
    if "fuse_linear_relu" in names:
        if "quantize_int8" in names:
            raise ValueError("fuse_linear_relu and quantize_int8 cannot be combined: a fused layer is not a Linear "
                             "that quantize_model knows; choose one of them")
        last_training = max((i for i, n in enumerate(names) if TECHNIQUES[n].trains), default=-1)
        if names.index("fuse_linear_relu") < last_training:
            raise ValueError(f"fuse_linear_relu must come after every step that trains, got the order {names}: "
                             "a fused layer is inference-only")
    return steps


def describe_step(name, options):
    """The step in words, e.g. 'int8 quantization: per-channel weights, ... on 256 train images'."""
    (name, options), = check_recipe([(name, options)])
    return TECHNIQUES[name].describe(options)

# %%
recipe = check_recipe([("prune_channels", {"fraction": 0.5}), ("fine_tune", {"epochs": 2, "lr": 3e-3}),
                       ("quantize_int8", {"calibration": 64})])
for name, options in recipe:
    print(f"module {TECHNIQUES[name].module}: {describe_step(name, options)}")
for bad in ([("quantize_int8", {"calibration": 64}), ("fine_tune", {"epochs": 1, "lr": 1e-3})],
            [("prune_channels", {"fraction": 1.5})], [("prune", {})]):
    try:
        check_recipe(bad)
        raise AssertionError(f"accepted {bad}")
    except ValueError as err:
        print("refused:", err)

# %% [markdown]
# ## The architecture is the layout
#
# `submission.py` must rebuild the entry without the training data and without the notebook. Only the
# structural steps change the architecture; replaying them on an untrained `digits_cnn` gives a model with
# the entry's layers, whose `state_dict()` has the entry's keys, shapes and dtypes, but random values.
# Those keys, in sorted order, are also the layout of `weights.bin`: the file needs no header, no names
# and no shapes, so its size is exactly the model's parameter bytes.

# %%
#| export
def rebuild(recipe):
    """The entry's architecture with untrained weights: a fresh digits_cnn with the structural steps of recipe
    applied, exactly as submission.py does it (its values are replaced by load_weights)."""
    model = zoo_model(BASELINE)
    for name, options in check_recipe(recipe):
        if name == "prune_channels":
            model = prune_channels(model, options["fraction"])
        elif name == "distill":
            model = student_cnn(0)
        elif name == "quantize_int8":
            model = quantize_model(model, calibration_data=np.zeros((1, 1, 8, 8), np.float32))
        elif name == "fuse_linear_relu":
            model = fuse_linear_relu(model.eval())
    return model.eval()


def weights_bytes(model):
    """model.state_dict()'s arrays as raw bytes, C order, one after the other in sorted key order."""
    state = model.state_dict()
    return b"".join(np.ascontiguousarray(state[key]).tobytes() for key in sorted(state))


def load_weights(model, blob):
    """model with the arrays of blob (from weights_bytes) loaded: the layout is model.state_dict()'s sorted keys,
    shapes and dtypes. ValueError when the sizes differ (blob written for another architecture)."""
    like = model.state_dict()
    need = sum(like[key].nbytes for key in like)
    if len(blob) != need:
        raise ValueError(f"the weights hold {len(blob)} bytes, but this architecture needs {need}: they were written "
                         "for another recipe; write the submission again")
    state, offset = {}, 0
    for key in sorted(like):
        state[key] = np.frombuffer(blob, like[key].dtype, like[key].size, offset).reshape(like[key].shape)
        offset += like[key].nbytes
    model.load_state_dict(state)
    return model.eval()

# %%
_arch = rebuild([("prune_channels", {"fraction": 0.5}), ("quantize_int8", {"calibration": 8})])
print(_arch)
_copy = load_weights(rebuild([("prune_channels", {"fraction": 0.5}), ("quantize_int8", {"calibration": 8})]),
                     weights_bytes(_arch))
assert all(np.array_equal(a, b) for a, b in zip(_copy.state_dict().values(), _arch.state_dict().values()))
assert len(weights_bytes(_arch)) == sum(a.nbytes for a in _arch.state_dict().values())

# %% [markdown]
# ## Writing the folder
#
# `write_submission` checks that the model really has the recipe's architecture (the same keys, shapes and
# dtypes as `rebuild(recipe)`), writes the three files atomically (a temporary file, then a rename) and
# never overwrites a submission unless asked. `submission.py` holds only public tinytorch calls and numpy.

# %%
#| export
_SOURCE = '''"""TorchPerf Olympics entry{title}, written by tinytorch.capstone.submit.write_submission."""
# Made from the baseline {baseline} by this recipe:
{steps}
# build_model() replays the structural steps on a freshly built {baseline} (their random weights do not matter),
# then loads every trained array from {weights}: {nbytes} bytes, the state_dict() arrays in sorted key order.
# (Comments, not a docstring: the grader counts a string literal over 256 bytes as data, i.e. as memory.)
from pathlib import Path

import numpy as np

{imports}
WEIGHTS_BYTES = {nbytes}


def build_model():
    """The entry in eval mode, with its trained weights."""
    model = zoo_model("{baseline}")
{rebuild}    blob = (Path(__file__).parent / "{weights}").read_bytes()
    if len(blob) != WEIGHTS_BYTES:
        raise ValueError(f"{weights} holds {{len(blob)}} bytes, expected {{WEIGHTS_BYTES}}: write the submission again")
    like, state, offset = model.state_dict(), {{}}, 0
    for key in sorted(like):
        state[key] = np.frombuffer(blob, like[key].dtype, like[key].size, offset).reshape(like[key].shape)
        offset += like[key].nbytes
    model.load_state_dict(state)
    return model.eval()
'''
_IMPORTS = {"prune_channels": "from tinytorch.optimization.compression import prune_channels",
            "distill": "from tinytorch.optimization.compression import student_cnn",
            "quantize_int8": "from tinytorch.optimization.quantization import quantize_model",
            "fuse_linear_relu": "from tinytorch.optimization.acceleration import fuse_linear_relu"}


def submission_source(recipe, nbytes, name=None):
    """The text of submission.py for recipe, whose weights.bin holds nbytes bytes."""
    steps = check_recipe(recipe)
    lines = [f"#   {i}. {describe_step(n, o)}" for i, (n, o) in enumerate(steps, 1)] or ["#   (no step: the baseline)"]
    structural = [(n, o) for n, o in steps if TECHNIQUES[n].rebuild is not None]
    imports = ["from tinytorch.models.zoo import build_model as zoo_model",
               *sorted({_IMPORTS[n] for n, _ in structural})]
    body = "".join(f"    {TECHNIQUES[n].rebuild.format(**o)}\n" for n, o in structural)
    if name is not None and len(name) > 120:
        raise ValueError(f"name must be at most 120 characters (the grader counts long string literals as data), got {len(name)}")
    return _SOURCE.format(title=f" {name!r}" if name else "", baseline=BASELINE, steps="\n".join(lines),
                          weights=WEIGHTS_FILE, nbytes=int(nbytes), imports="\n".join(imports) + "\n", rebuild=body)


def _check_meta(meta):
    """submission.json's fields, checked for their kind (tito olympics submit checks them in full)."""
    if not isinstance(meta, dict) or set(meta) - set(META_KEYS) or set(META_KEYS[:4]) - set(meta):
        raise ValueError(f"meta must be a dict with keys {list(META_KEYS[:4])} and optionally 'name', got "
                         f"{sorted(meta) if isinstance(meta, dict) else type(meta).__name__}")
    if not isinstance(meta["student_id"], str) or not meta["student_id"].strip():
        raise ValueError(f"student_id must be a non-empty string, got {meta['student_id']!r}")
    for key in ("events", "techniques"):
        if not isinstance(meta[key], list) or not all(isinstance(v, str) and v for v in meta[key]):
            raise ValueError(f"{key} must be a list of non-empty strings, got {meta[key]!r}")
    if not meta["events"]:
        raise ValueError("events must name at least one event, e.g. ['extreme_push']")
    if meta["division"] not in DIVISIONS:
        raise ValueError(f"division must be one of {DIVISIONS}, got {meta['division']!r}")
    return {key: meta[key] for key in META_KEYS if meta.get(key) is not None}


def _same_layout(model, recipe):
    """ValueError unless model's state has the keys, shapes and dtypes of rebuild(recipe)'s."""
    got, want = model.state_dict(), rebuild(recipe).state_dict()
    if set(got) != set(want):
        raise ValueError(f"the model's state keys {sorted(got)} are not those of its recipe's architecture "
                         f"{sorted(want)}: was the model built by this recipe?")
    wrong = [f"{k}: model {got[k].dtype}{got[k].shape}, recipe {want[k].dtype}{want[k].shape}"
             for k in sorted(got) if (got[k].dtype, got[k].shape) != (want[k].dtype, want[k].shape)]
    if wrong:
        raise ValueError(f"the model does not have its recipe's architecture: {'; '.join(wrong)}")


def _write_atomic(path, data):
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_submission(folder, model, recipe, meta, overwrite=False):
    """Write the submission folder of model (built from the baseline by recipe): submission.py, weights.bin
    and submission.json (meta: student_id, events, techniques, division, optional name). The folder's name is
    the submission id. FileExistsError when one of the files exists and overwrite is False. Returns the folder."""
    if not isinstance(model, Module):
        raise TypeError(f"model must be a tinytorch Module (it needs state_dict()), got {type(model).__name__}")
    meta = _check_meta(meta)
    _same_layout(model, recipe)
    folder = Path(folder)
    paths = [folder / "submission.py", folder / WEIGHTS_FILE, folder / "submission.json"]
    existing = [p.name for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{folder} already holds {existing}; pass overwrite=True or choose another folder")
    folder.mkdir(parents=True, exist_ok=True)
    blob = weights_bytes(model)
    _write_atomic(paths[1], blob)
    _write_atomic(paths[0], submission_source(recipe, len(blob), meta.get("name")).encode("utf-8"))
    _write_atomic(paths[2], (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    return folder


def build_from_folder(folder):
    """Run the folder's submission.py build_model() here, in this process, as a quick check of what was written
    (the grader runs it in a sandbox instead; only use this on your own submission)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_entry_{abs(hash(str(folder)))}", Path(folder) / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_model()

# %%
import shutil

from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import load_digits
from tinytorch.models.zoo import load_model

_dir = Path(tempfile.mkdtemp(prefix="submit-check-")) / "check_entry"
try:
    _recipe = [("quantize_int8", {"calibration": 8})]
    _model = quantize_model(load_model(BASELINE), calibration_data=load_digits("train").tensors[0].data[:8])
    write_submission(_dir, _model, _recipe, {"student_id": "s0", "events": ["memory_challenge"],
                                             "techniques": [describe_step(*_recipe[0])], "division": "closed"})
    print((_dir / "submission.py").read_text())
    _x = Tensor.from_numpy(np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32))
    assert np.array_equal(build_from_folder(_dir)(_x).data, _model(_x).data)
    assert (_dir / WEIGHTS_FILE).stat().st_size == sum(a.nbytes for a in _model.state_dict().values())
    # What tito olympics submit sees (it parses, never runs): the weights file is all the data the folder holds.
    from tinytorch.tito.olympics.submission import validate

    _info = validate(_dir)
    assert (_info["data_bytes"], _info["embedded_bytes"]) == ((_dir / WEIGHTS_FILE).stat().st_size, 0), _info
    try:
        write_submission(_dir, _model, _recipe, json.loads((_dir / "submission.json").read_text()))
        raise AssertionError("an existing submission was overwritten")
    except FileExistsError as err:
        print("refused:", err)
finally:
    shutil.rmtree(_dir.parent)
