"""Tests of tinytorch.capstone.submit (given code): recipes, the raw weights layout and the submission folder.

Oracles: the public functions of modules 15-17 called directly, numpy array equality, byte counts of the
state arrays, and tito's own validator (which parses a folder without running it)."""
import json

import numpy as np
import pytest

from tinytorch.capstone.submit import (TECHNIQUES, WEIGHTS_FILE, build_from_folder, check_recipe, describe_step,
                                       load_weights, rebuild, submission_source, weights_bytes, write_submission)
from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import load_digits
from tinytorch.models.zoo import load_model
from tinytorch.optimization.compression import prune_channels
from tinytorch.optimization.quantization import quantize_model

X = Tensor.from_numpy(load_digits("test").tensors[0].data[:16])
CAL = load_digits("train").tensors[0].data[:32]
META = {"student_id": "s1", "events": ["memory_challenge"], "techniques": ["int8"], "division": "closed"}


def test_techniques_name_their_module_and_public_function():
    assert set(TECHNIQUES) == {"prune_channels", "fine_tune", "distill", "quantize_int8", "fuse_linear_relu"}
    for name, technique in TECHNIQUES.items():
        assert technique.module in (15, 16, 17) and technique.api.startswith("tinytorch.optimization.")
        assert technique.name == name and technique.text
    assert [n for n, t in TECHNIQUES.items() if t.closed] == ["quantize_int8", "fuse_linear_relu"]


def test_check_recipe_normalises_the_options():
    steps = check_recipe([["prune_channels", {"fraction": 0.5}], ("fine_tune", {"epochs": 2, "lr": 1e-3}),
                          ("quantize_int8", {"calibration": np.int64(16)})])
    assert steps == [("prune_channels", {"fraction": 0.5}), ("fine_tune", {"epochs": 2, "lr": 0.001}),
                     ("quantize_int8", {"calibration": 16})]
    assert type(steps[2][1]["calibration"]) is int
    assert check_recipe([]) == []


@pytest.mark.parametrize("recipe, message", [
    ("prune", "a recipe is a list of"),
    ([("prune",)], r"recipe step 0 must be a \(technique name, options dict\) pair"),
    ([("prune", {})], "unknown technique 'prune'; choose from prune_channels"),
    ([("prune_channels", 0.5)], r"recipe step 0 \(prune_channels\): options must be a dict"),
    ([("prune_channels", {"fraction": 0.5, "x": 1})], r"unknown \['x'\], missing \[\]"),
    ([("fine_tune", {"epochs": 2})], r"missing \['lr'\]"),
    ([("prune_channels", {"fraction": 1.0})], "fraction must be a fraction in \\(0, 1\\).*got 1.0"),
    ([("fine_tune", {"epochs": 2.0, "lr": 0.1})], "epochs must be a whole number"),
    ([("fine_tune", {"epochs": True, "lr": 0.1})], "epochs must be a whole number"),
    ([("quantize_int8", {"calibration": 8}), ("fine_tune", {"epochs": 1, "lr": 0.1})], "quantize_int8 must be the last"),
    ([("quantize_int8", {"calibration": 8}), ("quantize_int8", {"calibration": 8})], "quantize_int8 must be the last"),
    ([("fuse_linear_relu", {}), ("quantize_int8", {"calibration": 8})], "cannot be combined"),
    ([("fuse_linear_relu", {}), ("fine_tune", {"epochs": 1, "lr": 0.1})], "after every step that trains"),
])
def test_check_recipe_names_the_step_and_the_fix(recipe, message):
    with pytest.raises(ValueError, match=message):
        check_recipe(recipe)


def test_describe_step_words():
    assert describe_step("prune_channels", {"fraction": 0.75}) == \
        "structured channel pruning: 75% of each conv layer's channels removed (L1 norm)"
    assert describe_step("fine_tune", {"epochs": 3, "lr": 3e-3}) == \
        "fine-tuning: 3 epochs of Adam (lr 0.003) on the digits train split"
    with pytest.raises(ValueError, match="calibration must be"):
        describe_step("quantize_int8", {"calibration": 0})


def test_rebuild_gives_the_recipe_architecture_and_the_weights_round_trip():
    trained = quantize_model(prune_channels(load_model("digits_cnn"), 0.5), calibration_data=CAL)
    recipe = [("prune_channels", {"fraction": 0.5}), ("quantize_int8", {"calibration": 32})]
    skeleton = rebuild(recipe)
    want = {k: (v.dtype, v.shape) for k, v in trained.state_dict().items()}
    assert {k: (v.dtype, v.shape) for k, v in skeleton.state_dict().items()} == want
    blob = weights_bytes(trained)
    assert len(blob) == sum(a.nbytes for a in trained.state_dict().values())
    loaded = load_weights(skeleton, blob)
    assert np.array_equal(loaded(X).data, trained(X).data)
    with pytest.raises(ValueError, match="written for another recipe"):
        load_weights(rebuild([]), blob)


def test_submission_source_uses_only_public_calls():
    text = submission_source([("distill", {"epochs": 2, "temperature": 4.0, "alpha": 0.7}),
                              ("quantize_int8", {"calibration": 8})], 1234, name="tiny")
    assert "from tinytorch.optimization.compression import student_cnn" in text
    assert "model = student_cnn(0)" in text and "WEIGHTS_BYTES = 1234" in text
    imports = [line for line in text.splitlines() if line.startswith(("from ", "import "))]
    assert imports == ["from pathlib import Path", "import numpy as np",
                       "from tinytorch.models.zoo import build_model as zoo_model",
                       "from tinytorch.optimization.compression import student_cnn",
                       "from tinytorch.optimization.quantization import quantize_model"], imports
    compile(text, "submission.py", "exec")
    with pytest.raises(ValueError, match="at most 120 characters"):
        submission_source([], 4, name="x" * 121)


def test_write_submission_writes_a_folder_the_validator_accepts(tmp_path):
    from tinytorch.tito.olympics.submission import validate

    model = quantize_model(load_model("digits_cnn"), calibration_data=CAL)
    folder = write_submission(tmp_path / "s1_int8", model, [("quantize_int8", {"calibration": 32})], META)
    assert sorted(p.name for p in folder.iterdir()) == ["submission.json", "submission.py", WEIGHTS_FILE]
    assert json.loads((folder / "submission.json").read_text()) == META
    info = validate(folder)
    assert info["id"] == "s1_int8" and info["embedded_bytes"] == 0
    assert info["data_bytes"] == sum(a.nbytes for a in model.state_dict().values()) == 6520
    assert np.array_equal(build_from_folder(folder)(X).data, model(X).data)
    with pytest.raises(FileExistsError, match="already holds"):
        write_submission(folder, model, [("quantize_int8", {"calibration": 32})], META)
    write_submission(folder, model, [("quantize_int8", {"calibration": 32})], dict(META, name="again"), overwrite=True)
    assert json.loads((folder / "submission.json").read_text())["name"] == "again"


@pytest.mark.parametrize("meta, message", [
    ({"student_id": "s1"}, "meta must be a dict with keys"),
    (dict(META, extra=1), "meta must be a dict with keys"),
    (dict(META, student_id=" "), "student_id must be a non-empty string"),
    (dict(META, events="memory_challenge"), "events must be a list of non-empty strings"),
    (dict(META, events=[]), "events must name at least one event"),
    (dict(META, division="closedish"), "division must be one of"),
])
def test_write_submission_checks_meta(tmp_path, meta, message):
    with pytest.raises(ValueError, match=message):
        write_submission(tmp_path / "x", load_model("digits_cnn"), [], meta)
    assert not (tmp_path / "x").exists()


def test_write_submission_refuses_a_model_the_recipe_does_not_build(tmp_path):
    with pytest.raises(ValueError, match="not those of its recipe's architecture"):
        write_submission(tmp_path / "x", load_model("digits_cnn"), [("quantize_int8", {"calibration": 8})], META)
    with pytest.raises(ValueError, match="does not have its recipe's architecture"):
        write_submission(tmp_path / "x", prune_channels(load_model("digits_cnn"), 0.25),
                         [("prune_channels", {"fraction": 0.5})], META)
    with pytest.raises(TypeError, match="must be a tinytorch Module"):
        write_submission(tmp_path / "x", lambda x: x, [], META)
