"""Tests of the exported tinytorch.core.training (Module 08): accuracy, the training loop,
evaluation, divergence, fit and reproducibility.

Oracles: numpy (argmax, softmax cross-entropy, the SGD update written out in float64), a
hand-written loop over the same parts, and seeded reruns.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch.core.autograd as autograd
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Trainer, accuracy
from tinytorch.data.loader import DataLoader, TensorDataset, load_digits

PROPERTY = settings(max_examples=40, deadline=None, database=None)


def tiny_classification(samples=10, features=3, classes=2, seed=21):
    """(x float32 (N, F), y int64 (N,), TensorDataset) of fixed random data."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, features)).astype(np.float32)
    y = rng.integers(0, classes, size=samples)
    return x, y, TensorDataset(Tensor(x), Tensor(y, dtype=np.int64))


def log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def linear_trainer(dataset, batch_size=4, lr=0.5, seed=4, val_loader=None, loss=None):
    model = Linear(dataset.tensors[0].shape[1], 2, rng=seed)
    return Trainer(model, loss or CrossEntropyLoss(), SGD(model.parameters(), lr=lr),
                   DataLoader(dataset, batch_size=batch_size), val_loader)


# ---------------------------------------------------------------- accuracy

@PROPERTY
@given(st.integers(1, 40), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_accuracy_matches_numpy(rows, classes, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((rows, classes)).astype(np.float32)
    labels = rng.integers(0, classes, size=rows)
    expected = np.mean(np.argmax(logits, axis=1) == labels)
    assert accuracy(logits, labels) == expected
    assert accuracy(Tensor(logits), Tensor(labels, dtype=np.int64)) == expected
    assert isinstance(accuracy(logits, labels), float)


def test_accuracy_hand_computed():
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.5, 0.2], [0.0, 0.1, 0.4], [1.0, 0.0, 0.0]])
    assert accuracy(logits, np.array([1, 2, 2, 0])) == 0.75
    assert accuracy(logits, np.array([0, 1, 0, 1])) == 0.0


@pytest.mark.parametrize("logits_shape, labels_shape", [
    ((4, 3), (3,)), ((4,), (4,)), ((4, 3), (4, 1)), ((2, 2, 2), (2,)),
])
def test_accuracy_shape_errors_name_both_shapes(logits_shape, labels_shape):
    with pytest.raises(ValueError) as info:
        accuracy(np.zeros(logits_shape), np.zeros(labels_shape, dtype=np.int64))
    assert str(logits_shape) in str(info.value) and str(labels_shape) in str(info.value)


def test_accuracy_rejects_float_labels_and_empty_input():
    with pytest.raises(TypeError, match="integer class indices"):
        accuracy(np.zeros((2, 3)), np.zeros(2, dtype=np.float32))
    with pytest.raises(ValueError, match="empty"):
        accuracy(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))


# ---------------------------------------------------------------- train_epoch

def test_train_epoch_matches_manual_float64_computation():
    x, y, dataset = tiny_classification()
    trainer = linear_trainer(dataset)                     # batches of 4, 4 and 2
    w = trainer.model.weight.data.astype(np.float64)
    b = trainer.model.bias.data.astype(np.float64)
    result = trainer.train_epoch()

    loss_sum, correct = 0.0, 0
    for start in (0, 4, 8):
        xb, yb = x[start:start + 4].astype(np.float64), y[start:start + 4]
        z = xb @ w + b
        loss_sum += -log_softmax(z)[np.arange(len(yb)), yb].sum()
        correct += int(np.sum(z.argmax(axis=1) == yb))
        p = np.exp(log_softmax(z))
        p[np.arange(len(yb)), yb] -= 1
        w, b = w - 0.5 * xb.T @ p / len(yb), b - 0.5 * p.sum(axis=0) / len(yb)

    assert set(result) == {"loss", "accuracy", "samples", "seconds"}
    assert result["samples"] == 10 and trainer.epoch == 1
    assert result["loss"] == pytest.approx(loss_sum / 10, rel=1e-5)
    assert result["accuracy"] == correct / 10
    assert result["seconds"] > 0
    np.testing.assert_allclose(trainer.model.weight.data, w, atol=1e-5)
    np.testing.assert_allclose(trainer.model.bias.data, b, atol=1e-5)


def test_train_epoch_equals_hand_written_loop_bit_for_bit():
    x, y, dataset = tiny_classification(samples=13)
    trainer = linear_trainer(dataset, batch_size=5)
    model = Linear(3, 2, rng=4)
    optimizer = SGD(model.parameters(), lr=0.5)
    losses, sizes = [], []
    for xb, yb in DataLoader(dataset, batch_size=5):
        optimizer.zero_grad()
        loss = CrossEntropyLoss()(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sizes.append(len(xb))
    result = trainer.train_epoch()
    assert sizes == [5, 5, 3]
    assert result["loss"] == pytest.approx(np.dot(losses, sizes) / 13, rel=1e-12)
    assert result["loss"] != pytest.approx(np.mean(losses), rel=1e-6)  # not the mean of batch means
    for name, value in model.state_dict().items():
        assert np.array_equal(trainer.model.state_dict()[name], value)


def test_train_epoch_sets_training_mode_and_records_phases():
    _, _, dataset = tiny_classification()
    trainer = linear_trainer(dataset)
    trainer.model.eval()
    trainer.train_epoch()
    assert trainer.model.training
    assert set(trainer.phase_ns) == {"data", "forward", "backward", "step"}
    assert all(isinstance(ns, int) and ns > 0 for ns in trainer.phase_ns.values())


def test_mse_trainer_reports_no_accuracy_and_a_per_sample_loss():
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(6, 1)
    dataset = TensorDataset(Tensor(x), Tensor(3 * x))
    model = Linear(1, 1, rng=0)
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1), DataLoader(dataset, batch_size=4))
    w, b = float(model.weight.data[0, 0]), float(model.bias.data[0])
    total = 0.0
    for start in (0, 4):                       # batches of 4 and 2, in float64 by hand
        xb = x[start:start + 4, 0].astype(np.float64)
        error = w * xb + b - 3 * xb
        total += np.sum(error ** 2)
        w, b = w - 0.1 * 2 * np.mean(error * xb), b - 0.1 * 2 * np.mean(error)
    result = trainer.train_epoch()
    assert result["accuracy"] is None and result["samples"] == 6
    assert result["loss"] == pytest.approx(total / 6, rel=1e-5)
    assert float(model.weight.data[0, 0]) == pytest.approx(w, rel=1e-5)


def test_train_epoch_rejects_batches_that_are_not_pairs_and_empty_loaders():
    x, y, dataset = tiny_classification()
    model = Linear(3, 2, rng=0)
    bad = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), [(Tensor(x),)])
    with pytest.raises(ValueError, match="batches \\(inputs, targets\\)"):
        bad.train_epoch()
    empty = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), [])
    with pytest.raises(ValueError, match="no batches"):
        empty.train_epoch()
    assert empty.epoch == 0


def test_trainer_checks_its_parts():
    model = Linear(2, 2)
    with pytest.raises(TypeError, match="Module"):
        Trainer(lambda x: x, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), [])
    with pytest.raises(TypeError, match="zero_grad"):
        Trainer(model, CrossEntropyLoss(), object(), [])
    with pytest.raises(TypeError, match="loss_fn"):
        Trainer(model, "cross-entropy", SGD(model.parameters(), lr=0.1), [])


def test_repr_names_the_parts():
    _, _, dataset = tiny_classification()
    text = repr(linear_trainer(dataset))
    assert text.startswith("Trainer(Linear with 8 parameters") and "CrossEntropyLoss()" in text
    assert "SGD" in text and "train=3 batches" in text and "epochs done=0" in text


# ---------------------------------------------------------------- divergence

def test_nan_weight_raises_floating_point_error_naming_epoch_and_batch():
    _, _, dataset = tiny_classification()
    trainer = linear_trainer(dataset)
    trainer.train_epoch()
    trainer.model.weight.data[0, 0] = np.nan
    with pytest.raises(FloatingPointError, match=r"epoch 2, batch 1 of 3: .*not finite.*learning rate"):
        trainer.train_epoch()
    assert trainer.epoch == 1


class NaNAfter(Module):
    """Linear whose output turns NaN from the given forward call on (counting from 1)."""

    def __init__(self, call):
        super().__init__()
        self.inner, self.call, self.calls = Linear(3, 2, rng=0), call, 0

    def forward(self, x):
        self.calls += 1
        out = self.inner(x)
        return out * float("nan") if self.calls >= self.call else out


def test_nan_in_a_later_batch_names_that_batch():
    _, _, dataset = tiny_classification()
    model = NaNAfter(call=5)  # epoch 1 has 3 batches: the 5th call is epoch 2, batch 2
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), DataLoader(dataset, batch_size=4))
    with pytest.raises(FloatingPointError, match=r"epoch 2, batch 2 of 3"):
        trainer.fit(3, verbose=False)
    assert trainer.epoch == 1 and len(trainer.history) == 1


def test_non_finite_loss_is_caught_even_when_the_output_is_finite():
    class InfLoss:
        def __call__(self, output, target):
            return (output * 0.0).sum() + float("inf")

    _, _, dataset = tiny_classification()
    model = Linear(3, 2, rng=0)
    trainer = Trainer(model, InfLoss(), SGD(model.parameters(), lr=0.1), DataLoader(dataset, batch_size=4))
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 1 of 3: the loss is not finite"):
        trainer.train_epoch()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy warns about the overflow itself
def test_huge_learning_rate_stops_with_floating_point_error(digits):
    train, _ = digits
    model = Sequential(Linear(64, 64, rng=0), ReLU(), Linear(64, 10, rng=1))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=1e10),
                      DataLoader(train, batch_size=32))
    with pytest.raises(FloatingPointError) as info:
        trainer.fit(2, verbose=False)
    message = str(info.value)
    assert "epoch 1, batch " in message and " of 45" in message
    assert "lower the learning rate (now 1e+10)" in message


# ---------------------------------------------------------------- evaluate

def test_evaluate_matches_numpy_for_any_batching():
    x, y, dataset = tiny_classification(samples=11, classes=3)
    model = Linear(3, 3, rng=2)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), DataLoader(dataset))
    z = x.astype(np.float64) @ model.weight.data + model.bias.data
    for batch_size in (1, 4, 11, 50):
        result = trainer.evaluate(DataLoader(dataset, batch_size=batch_size))
        assert result["samples"] == 11
        assert result["loss"] == pytest.approx(-log_softmax(z)[np.arange(11), y].mean(), rel=1e-5)
        assert result["accuracy"] == np.mean(z.argmax(axis=1) == y)
    assert trainer.epoch == 0


def test_evaluate_changes_no_weights_and_builds_no_graph():
    _, _, dataset = tiny_classification()
    seen = []

    class Probe(Module):
        def __init__(self):
            super().__init__()
            self.inner = Linear(3, 2, rng=0)

        def forward(self, x):
            seen.append((autograd.is_grad_enabled(), self.training))
            out = self.inner(x)
            seen.append(out.requires_grad)
            return out

    model = Probe()
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), DataLoader(dataset))
    before = model.state_dict()
    trainer.evaluate(DataLoader(dataset, batch_size=4))
    assert seen == [(False, False), False] * 3
    assert autograd.is_grad_enabled()
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("start_training", [True, False])
def test_evaluate_restores_the_previous_mode(start_training):
    _, _, dataset = tiny_classification()
    model = Sequential(Linear(3, 4, rng=0), Dropout(0.5, rng=1), Linear(4, 2, rng=2))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), DataLoader(dataset))
    model.train(start_training)
    trainer.evaluate(DataLoader(dataset, batch_size=4))
    assert all(module.training == start_training for module in model.modules())


def test_evaluate_restores_mixed_modes_even_on_error():
    x, y, dataset = tiny_classification()
    model = Sequential(Linear(3, 4, rng=0), Dropout(0.5, rng=1), Linear(4, 2, rng=2))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), DataLoader(dataset))
    model[1].eval()                        # frozen dropout inside a model in training mode
    modes = [m.training for m in model.modules()]

    def failing_loader():
        yield Tensor(x), Tensor(y, dtype=np.int64)
        raise RuntimeError("disk read failed")

    with pytest.raises(RuntimeError, match="disk read failed"):
        trainer.evaluate(failing_loader())
    assert [m.training for m in model.modules()] == modes
    assert autograd.is_grad_enabled()


def test_evaluate_is_deterministic_with_dropout():
    _, _, dataset = tiny_classification()
    model = Sequential(Linear(3, 4, rng=0), Dropout(0.5, rng=1), Linear(4, 2, rng=2))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), DataLoader(dataset))
    first = trainer.evaluate(DataLoader(dataset, batch_size=3))
    assert trainer.evaluate(DataLoader(dataset, batch_size=3)) == first


def test_evaluate_non_finite_output_raises():
    _, _, dataset = tiny_classification()
    trainer = linear_trainer(dataset)
    trainer.model.bias.data[0] = np.inf
    with pytest.raises(FloatingPointError, match=r"evaluate, batch 1 of 3"):
        trainer.evaluate(DataLoader(dataset, batch_size=4))
    assert trainer.model.training


# ---------------------------------------------------------------- fit

def test_fit_history_and_printing(capsys):
    _, _, dataset = tiny_classification()
    trainer = linear_trainer(dataset, val_loader=DataLoader(dataset, batch_size=5))
    history = trainer.fit(3)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch   1 | train loss ") and "val loss" in lines[0]
    assert [r["epoch"] for r in history] == [1, 2, 3] and trainer.epoch == 3
    assert history == trainer.history and history is not trainer.history
    assert set(history[0]) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"}
    check = trainer.evaluate(DataLoader(dataset, batch_size=10))
    assert history[-1]["val_loss"] == pytest.approx(check["loss"], rel=1e-6)
    assert history[-1]["val_accuracy"] == check["accuracy"]
    assert f"{history[-1]['train_loss']:.4f}" in lines[-1]


def test_fit_continues_numbering_and_is_quiet_when_asked(capsys):
    _, _, dataset = tiny_classification()
    trainer = linear_trainer(dataset)
    trainer.fit(2, verbose=False)
    history = trainer.fit(1, verbose=False)
    assert capsys.readouterr().out == ""
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert all(r["val_loss"] is None and r["val_accuracy"] is None for r in history)


@pytest.mark.parametrize("epochs, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError)])
def test_fit_rejects_bad_epoch_counts(epochs, error):
    _, _, dataset = tiny_classification()
    with pytest.raises(error, match="epochs"):
        linear_trainer(dataset).fit(epochs, verbose=False)


# ---------------------------------------------------------------- reproducibility

def seeded_trainer(dataset, seed=0):
    model = Sequential(Linear(3, 8, rng=seed), ReLU(), Dropout(0.3, rng=seed + 1), Linear(8, 2, rng=seed + 2))
    loader = DataLoader(dataset, batch_size=3, shuffle=True, seed=seed + 3)
    return Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=0.05), loader)


def test_same_seeds_give_bit_identical_weights():
    _, _, dataset = tiny_classification(samples=20)
    runs = [seeded_trainer(dataset) for _ in range(2)]
    histories = [run.fit(3, verbose=False) for run in runs]
    first, second = (run.model.state_dict() for run in runs)
    assert list(first) == list(second)
    for name in first:
        assert first[name].tobytes() == second[name].tobytes(), name
    assert [r["train_loss"] for r in histories[0]] == [r["train_loss"] for r in histories[1]]


def test_different_seed_gives_different_weights():
    _, _, dataset = tiny_classification(samples=20)
    a, b = seeded_trainer(dataset, seed=0), seeded_trainer(dataset, seed=10)
    a.fit(1, verbose=False)
    b.fit(1, verbose=False)
    assert not np.array_equal(a.model.state_dict()["0.weight"], b.model.state_dict()["0.weight"])


# ---------------------------------------------------------------- digits

@pytest.fixture(scope="module")
def digits():
    return load_digits("train", flatten=True), load_digits("test", flatten=True)


def test_digits_mlp_reaches_90_percent_in_3_epochs(digits):
    train, test = digits
    model = Sequential(Linear(64, 64, rng=0), ReLU(), Linear(64, 10, rng=1))
    trainer = Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=1e-2),
                      DataLoader(train, batch_size=32, shuffle=True, seed=0),
                      DataLoader(test, batch_size=256))
    history = trainer.fit(3, verbose=False)
    assert history[-1]["val_accuracy"] > 0.90
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert trainer.evaluate(DataLoader(test, batch_size=359))["accuracy"] == history[-1]["val_accuracy"]
