"""Tests of Trainer.save_checkpoint / load_checkpoint (Module 08): the file layout, atomic
writing, refusing to overwrite, validation before any change, and resume == uninterrupted.

Oracles: the archive read back with np.load, uninterrupted seeded runs, byte comparisons.
"""
import json
import os

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CHECKPOINT_FORMAT_VERSION, Trainer
from tinytorch.data.loader import DataLoader, TensorDataset

RNG = np.random.default_rng(5)
X = RNG.standard_normal((20, 3)).astype(np.float32)
Y = RNG.integers(0, 2, size=20)
DATASET = TensorDataset(Tensor(X), Tensor(Y, dtype=np.int64))


def make_trainer(hidden=8, optimizer=Adam, dropout=True, shuffle_seed=3, val=True):
    """A fully seeded trainer: layers, dropout and the shuffle order all have seeds."""
    layers = [Linear(3, hidden, rng=0), ReLU()]
    layers += [Dropout(0.3, rng=1)] if dropout else []
    model = Sequential(*layers, Linear(hidden, 2, rng=2))
    opt = optimizer(model.parameters(), lr=0.05)
    val_loader = DataLoader(DATASET, batch_size=7) if val else None
    return Trainer(model, CrossEntropyLoss(), opt,
                   DataLoader(DATASET, batch_size=3, shuffle=True, seed=shuffle_seed), val_loader)


def snapshot(trainer):
    """Copies of everything a load may change."""
    return (trainer.model.state_dict(), trainer.optimizer.state_dict(), trainer.epoch,
            json.dumps(trainer.history), trainer.train_loader._rng.bit_generator.state)


def assert_same_snapshot(a, b):
    assert list(a[0]) == list(b[0]) and all(np.array_equal(a[0][k], b[0][k]) for k in a[0])
    assert a[1].keys() == b[1].keys() and all(np.array_equal(a[1][k], b[1][k]) for k in a[1])
    assert a[2:] == b[2:]


# ---------------------------------------------------------------- the file

def test_checkpoint_layout(tmp_path):
    trainer = make_trainer()
    trainer.fit(2, verbose=False)
    path = tmp_path / "run.npz"
    assert trainer.save_checkpoint(path) == str(path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    model_keys = {f"model/{name}" for name in trainer.model.state_dict()}
    optimizer_keys = {f"optimizer/{name}" for name in trainer.optimizer.state_dict()}
    meta_keys = {"meta/format_version", "meta/epoch", "meta/history", "meta/rng_states"}
    assert set(arrays) == model_keys | optimizer_keys | meta_keys
    assert model_keys == {"model/0.weight", "model/0.bias", "model/3.weight", "model/3.bias"}
    for name, value in trainer.model.state_dict().items():
        assert np.array_equal(arrays[f"model/{name}"], value) and arrays[f"model/{name}"].dtype == np.float32
    for name, value in trainer.optimizer.state_dict().items():
        assert np.array_equal(arrays[f"optimizer/{name}"], value)
    assert arrays["meta/format_version"] == CHECKPOINT_FORMAT_VERSION == 1
    assert arrays["meta/epoch"] == 2
    history = arrays["meta/history"]
    assert history.shape == () and history.dtype.kind == "U"
    assert json.loads(history.item()) == trainer.history
    rng_states = json.loads(arrays["meta/rng_states"].item())
    assert sorted(rng_states) == ["model.2._rng", "train_loader._rng"]
    assert rng_states["train_loader._rng"] == trainer.train_loader._rng.bit_generator.state


def test_save_refuses_to_overwrite(tmp_path):
    trainer = make_trainer()
    path = tmp_path / "run.npz"
    trainer.save_checkpoint(path)
    before = path.read_bytes()
    trainer.fit(1, verbose=False)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        trainer.save_checkpoint(path)
    assert path.read_bytes() == before
    trainer.save_checkpoint(path, overwrite=True)
    assert path.read_bytes() != before
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]


def test_save_needs_an_npz_name(tmp_path):
    with pytest.raises(ValueError, match=r"\.npz"):
        make_trainer().save_checkpoint(tmp_path / "run.ckpt")
    assert os.listdir(tmp_path) == []


def half_written_savez(file, **arrays):
    """Stands in for np.savez: writes the start of a zip, then fails like a full disk."""
    file.write(b"PK\x03\x04 only the beginning")
    raise OSError("No space left on device (simulated)")


def test_failed_write_leaves_no_file_and_no_temporary(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", half_written_savez)
    with pytest.raises(OSError, match="No space left"):
        make_trainer().save_checkpoint(tmp_path / "run.npz")
    assert os.listdir(tmp_path) == []


def test_failed_overwrite_keeps_the_old_file_intact(tmp_path, monkeypatch):
    trainer = make_trainer()
    path = tmp_path / "run.npz"
    trainer.save_checkpoint(path)
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", half_written_savez)
    with pytest.raises(OSError):
        trainer.save_checkpoint(path, overwrite=True)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["run.npz"]


def test_interrupt_during_write_also_cleans_up(tmp_path, monkeypatch):
    def interrupted(file, **arrays):
        file.write(b"PK")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_trainer().save_checkpoint(tmp_path / "run.npz")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- round trip and resume

@pytest.mark.parametrize("optimizer", [Adam, AdamW, lambda ps, lr: SGD(ps, lr=lr, momentum=0.9, nesterov=True)])
def test_round_trip_restores_everything(tmp_path, optimizer):
    trainer = make_trainer(optimizer=optimizer)
    trainer.fit(2, verbose=False)
    path = trainer.save_checkpoint(tmp_path / "run.npz")
    fresh = make_trainer(optimizer=optimizer)
    assert fresh.load_checkpoint(path) == 2
    assert_same_snapshot(snapshot(fresh), snapshot(trainer))
    assert fresh.model[2]._rng.bit_generator.state == trainer.model[2]._rng.bit_generator.state


@pytest.mark.parametrize("dropout, optimizer", [(True, Adam), (False, SGD)])
def test_resume_equals_uninterrupted_bit_for_bit(tmp_path, dropout, optimizer):
    whole = make_trainer(dropout=dropout, optimizer=optimizer)
    whole.fit(5, verbose=False)

    path = tmp_path / "run.npz"
    first = make_trainer(dropout=dropout, optimizer=optimizer)
    first.fit(2, checkpoint_path=path, verbose=False)
    del first                                   # the "crash"
    resumed = make_trainer(dropout=dropout, optimizer=optimizer)
    resumed.load_checkpoint(path)
    history = resumed.fit(3, checkpoint_path=path, verbose=False)

    for name, value in whole.model.state_dict().items():
        assert resumed.model.state_dict()[name].tobytes() == value.tobytes(), name
    for name, value in whole.optimizer.state_dict().items():
        assert np.array_equal(resumed.optimizer.state_dict()[name], value), name
    strip = lambda records: [{k: v for k, v in r.items() if k != "seconds"} for r in records]
    assert strip(history) == strip(whole.history) and [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    with np.load(path, allow_pickle=False) as archive:
        assert int(archive["meta/epoch"]) == 5


def test_fit_refuses_a_checkpoint_path_it_does_not_own(tmp_path):
    path = tmp_path / "someone_else.npz"
    make_trainer().save_checkpoint(path)
    before = path.read_bytes()
    trainer = make_trainer()
    weights = trainer.model.state_dict()
    with pytest.raises(FileExistsError, match="load_checkpoint"):
        trainer.fit(1, checkpoint_path=path, verbose=False)
    assert path.read_bytes() == before and trainer.epoch == 0
    assert all(np.array_equal(weights[k], v) for k, v in trainer.model.state_dict().items())
    with pytest.raises(ValueError, match=r"\.npz"):
        trainer.fit(1, checkpoint_path=tmp_path / "run.bin", verbose=False)
    trainer.load_checkpoint(path)               # after loading it, it is this run's file
    trainer.fit(1, checkpoint_path=path, verbose=False)
    assert path.read_bytes() != before


# ---------------------------------------------------------------- refusing bad checkpoints

def test_key_mismatch_lists_missing_and_unexpected_keys_sorted(tmp_path):
    path = make_trainer(dropout=True).save_checkpoint(tmp_path / "run.npz")   # keys 0.*, 3.*
    other = make_trainer(dropout=False)                                       # keys 0.*, 2.*
    other.fit(1, verbose=False)
    before = snapshot(other)
    with pytest.raises(ValueError) as info:
        other.load_checkpoint(path)
    message = str(info.value)
    assert "missing keys ['2.bias', '2.weight']" in message
    assert "unexpected keys ['3.bias', '3.weight']" in message
    assert "run.npz" in message
    assert_same_snapshot(snapshot(other), before)


def test_shape_mismatch_names_the_key_and_both_shapes(tmp_path):
    path = make_trainer(hidden=8).save_checkpoint(tmp_path / "run.npz")
    other = make_trainer(hidden=5)
    before = snapshot(other)
    with pytest.raises(ValueError, match=r"'0\.weight'.*\(3, 8\).*\(3, 5\)"):
        other.load_checkpoint(path)
    assert_same_snapshot(snapshot(other), before)


def test_optimizer_mismatch_changes_nothing(tmp_path):
    source = make_trainer(optimizer=Adam)
    source.fit(1, verbose=False)
    path = source.save_checkpoint(tmp_path / "run.npz")
    other = make_trainer(optimizer=SGD)
    before = snapshot(other)
    with pytest.raises(ValueError, match="SGD.load_state_dict"):
        other.load_checkpoint(path)
    assert_same_snapshot(snapshot(other), before)


def test_different_random_generators_are_refused(tmp_path):
    path = make_trainer(dropout=True).save_checkpoint(tmp_path / "run.npz")
    model = Sequential(Linear(3, 8, rng=0), ReLU(), ReLU(), Linear(8, 2, rng=2))  # same keys, no Dropout
    plain = Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=0.05), list(DataLoader(DATASET)))
    with pytest.raises(ValueError, match="random generators"):
        plain.load_checkpoint(path)


def rewrite(path, **changes):
    """Rewrite the archive at path with some entries changed (None removes one)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    for key, value in changes.items():
        key = key.replace("__", "/")
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    os.remove(path)
    np.savez(path, **arrays)


@pytest.mark.parametrize("changes, match", [
    ({"meta__format_version": np.asarray(2)}, "format version 2"),
    ({"meta__format_version": None}, "not a TinyTorch checkpoint"),
    ({"meta__history": np.asarray("{not json")}, "meta/history"),
    ({"meta__epoch": np.asarray(-1)}, "meta/epoch"),
    ({"extra": np.zeros(2)}, "unexpected entry 'extra'"),
    ({"model__0.bias": np.asarray(["a"] * 8)}, "non-numeric"),
])
def test_malformed_checkpoints_are_refused_before_any_change(tmp_path, changes, match):
    path = tmp_path / "run.npz"
    make_trainer().save_checkpoint(path)
    rewrite(path, **changes)
    trainer = make_trainer()
    trainer.fit(1, verbose=False)
    before = snapshot(trainer)
    with pytest.raises(ValueError, match=match):
        trainer.load_checkpoint(path)
    assert_same_snapshot(snapshot(trainer), before)


def test_non_npz_and_corrupt_files_raise_value_error_naming_the_file(tmp_path):
    trainer = make_trainer()
    text = tmp_path / "notes.npz"
    text.write_text("these are not arrays")
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    good = tmp_path / "good.npz"
    trainer.save_checkpoint(good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.npz"
    corrupt = bytearray(data)
    corrupt[200] ^= 0xFF                          # inside the first array's bytes: a CRC error
    flipped.write_bytes(bytes(corrupt))
    for bad in (text, single, truncated, flipped):
        with pytest.raises(ValueError, match=bad.name.replace(".", r"\.")):
            trainer.load_checkpoint(bad)
    with pytest.raises(FileNotFoundError):
        trainer.load_checkpoint(tmp_path / "missing.npz")
    assert trainer.epoch == 0


def test_pickled_entries_are_never_loaded(tmp_path):
    path = tmp_path / "run.npz"
    make_trainer().save_checkpoint(path)
    rewrite(path, meta__history=np.array([{"epoch": 1}], dtype=object))
    with pytest.raises(ValueError, match="run.npz"):
        make_trainer().load_checkpoint(path)
