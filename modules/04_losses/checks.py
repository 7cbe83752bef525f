# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Given code: reading and checking the inputs of the losses
#
# This notebook is given: it ships solved in every edition and is not an exercise. The
# lesson (`nbs/04_losses.ipynb`) calls one of these helpers at the top of every loss,
# before the formula you write, so every loss reads its inputs the same way and rejects
# broken ones with a message that says what was wrong, the value, and what to do:
#
# - `_as_tensor` accepts a Tensor as it is and copies anything else (a numpy array, a
#   number, a list) with `Tensor(...)`, so into float32, TinyTorch's default;
#   `_float_array` reads a tensor's array as floats (integer arrays become float32).
# - `_check_finite` rejects NaN and inf, naming the argument and the count: a loss of
#   `nan` tells you nothing, "predictions contain NaN/inf (3 of 64 entries)" tells you the
#   model diverged.
# - `_check_pair` is the rule for losses that compare two arrays element by element: the
#   same shape (no broadcasting: `(N, 1)` against `(N,)` would silently broadcast to an
#   `(N, N)` table and average the wrong thing), at least one element, all finite.
# - `_class_labels` checks cross-entropy's labels: an integer dtype, shape `(N,)` for
#   logits `(N, C)`, a batch that is not empty, every label in `[0, C)`;
#   `_check_probabilities` checks that BCE's inputs lie in `[0, 1]`.
# - One reader per loss (`_log_softmax_input`, `_mse_inputs`, `_cross_entropy_inputs`,
#   `_bce_inputs`, and `_check_eps` for `BCELoss(eps)`) applies the rules that loss needs
#   and returns what its formula works on.

# %%
#| default_exp core.loss_checks

# %%
#| export
import numpy as np

from tinytorch.core.tensor import Tensor, _normalize_dim


def _as_tensor(value):
    """value if it is a Tensor, else a float32 copy made with Tensor(value)."""
    return value if isinstance(value, Tensor) else Tensor(value)


def _float_array(tensor):
    """The array of tensor as floats: float arrays as they are, others as float32."""
    return tensor.data if tensor.dtype.kind == "f" else tensor.data.astype(np.float32)


def _check_finite(values, loss, argument):
    """ValueError naming the argument and the count if values holds NaN or inf."""
    bad = values.size - int(np.count_nonzero(np.isfinite(values)))
    if bad:
        raise ValueError(
            f"{loss}: {argument} contain NaN/inf ({bad} of {values.size} entries are not "
            "finite); a diverging model produces these: lower the learning rate, or check "
            "the data and the previous layers for NaN/inf")


def _check_pair(loss, predictions, targets):
    """Two arrays compared element by element: same shape, not empty, all finite."""
    if predictions.shape != targets.shape:
        raise ValueError(
            f"{loss}: predictions and targets must have the same shape, got predictions "
            f"{predictions.shape} and targets {targets.shape}; losses do not broadcast "
            "((N, 1) against (N,) would build an (N, N) table): reshape one to match, "
            "e.g. targets.reshape(-1, 1)")
    if predictions.size == 0:
        raise ValueError(
            f"{loss}: predictions of shape {predictions.shape} are empty; "
            "the mean over no elements is undefined")
    _check_finite(predictions, loss, "predictions")
    _check_finite(targets, loss, "targets")

# %%
#| export
def _class_labels(targets, logits_shape):
    """The integer label array from targets (Tensor or array), checked against logits (N, C)."""
    labels = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"CrossEntropyLoss targets must be class indices with an integer dtype (int64), "
            f"got dtype {labels.dtype}; create them with Tensor(labels, dtype=np.int64) "
            "(Tensor(...) alone gives float32)")
    batch, classes = logits_shape
    if labels.shape != (batch,):
        raise ValueError(
            f"CrossEntropyLoss: logits of shape {logits_shape} need labels of shape "
            f"({batch},), one class index per row, got labels of shape {labels.shape}")
    if batch == 0:
        raise ValueError("CrossEntropyLoss: the batch is empty (logits of shape "
                         f"{logits_shape}); the mean over no samples is undefined")
    outside = (labels < 0) | (labels >= classes)
    if outside.any():
        position = int(np.argmax(outside))
        raise ValueError(
            f"CrossEntropyLoss: label {labels[position]} at position {position} is outside "
            f"[0, {classes}): with C={classes} classes the labels must be 0..{classes - 1}")
    return labels


def _check_probabilities(values, argument):
    """ValueError naming the min and max found unless every value lies in [0, 1]."""
    low, high = values.min(), values.max()
    if low < 0 or high > 1:
        hint = ("they are probabilities: apply Sigmoid to the model's raw outputs first"
                if argument == "predictions" else "use 0/1 labels or probabilities")
        raise ValueError(
            f"BCELoss: {argument} must lie in [0, 1], found min {low:.6g} and max {high:.6g}; {hint}")

# %%
#| export
def _log_softmax_input(x, dim):
    """(x's array as floats, dim as a non-negative axis) for log_softmax; TypeError unless a Tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"log_softmax expects a Tensor, got {type(x).__name__}; wrap arrays and lists "
            "with Tensor(...)")
    a = _float_array(x)
    return a, _normalize_dim(dim, a.ndim, "log_softmax dim")


def _mse_inputs(predictions, targets):
    """Both arguments as Tensors, checked by _check_pair."""
    predictions, targets = _as_tensor(predictions), _as_tensor(targets)
    _check_pair("MSELoss", predictions.data, targets.data)
    return predictions, targets


def _cross_entropy_inputs(predictions, targets):
    """(logits: finite float array (N, C), labels: int array (N,) in [0, C)), checked."""
    logits = _float_array(_as_tensor(predictions))
    if logits.ndim != 2:
        raise ValueError(
            f"CrossEntropyLoss expects logits of shape (N, C), got shape {logits.shape}; "
            "for one sample use logits.reshape(1, -1)")
    _check_finite(logits, "CrossEntropyLoss", "predictions (logits)")
    return logits, _class_labels(targets, logits.shape)


def _bce_inputs(predictions, targets):
    """(p, t): float arrays in the predictions' float dtype, same shape, finite, both in [0, 1]."""
    predictions, targets = _as_tensor(predictions), _as_tensor(targets)
    p = _float_array(predictions)
    _check_pair("BCELoss", p, targets.data)
    _check_probabilities(p, "predictions")
    _check_probabilities(targets.data, "targets")
    return p, targets.data.astype(p.dtype, copy=False)


def _check_eps(eps):
    """BCELoss's eps as a float in (0, 0.5); ValueError otherwise."""
    eps = float(eps)
    if not 0 < eps < 0.5:
        raise ValueError(f"BCELoss eps must lie in (0, 0.5), got {eps}; the default 1e-7 suits float32")
    return eps

# %% [markdown]
# ## Checks of the given code
#
# Each reader returns what its formula needs, and each broken input gets its message.

# %%
def message(call, error):
    """The message of the `error` that call() raises (AssertionError if it raises nothing)."""
    try:
        call()
    except error as err:
        return str(err)
    raise AssertionError(f"expected {error.__name__}")


p, t = _mse_inputs([1.0, 2.0], np.array([0.0, 1.0]))
assert isinstance(p, Tensor) and p.dtype == np.float32 and t.tolist() == [0.0, 1.0]
assert "(2, 1)" in message(lambda: _mse_inputs(np.zeros((2, 1)), np.zeros(2)), ValueError)
assert "1 of 2 entries" in message(lambda: _mse_inputs([np.nan, 1.0], [0.0, 1.0]), ValueError)

logits, labels = _cross_entropy_inputs(Tensor([[1.0, 2.0], [3.0, 4.0]], dtype=np.float64), np.array([1, 0]))
assert logits.dtype == np.float64 and labels.tolist() == [1, 0]
assert "int64" in message(lambda: _cross_entropy_inputs(np.zeros((2, 3)), Tensor([0, 1])), TypeError)
assert "label -1 at position 1" in message(lambda: _cross_entropy_inputs(np.zeros((2, 3)), np.array([0, -1])),
                                           ValueError)
assert "(N, C)" in message(lambda: _cross_entropy_inputs(np.zeros(3), np.array([0])), ValueError)

p, t = _bce_inputs(Tensor([0.5, 1.0], dtype=np.float64), np.array([1, 0]))
assert p.dtype == t.dtype == np.float64
print(message(lambda: _bce_inputs([2.5, -0.5], [1.0, 0.0]), ValueError))
assert _log_softmax_input(Tensor([[1, 2]], dtype=np.int64), -1)[1] == 1
assert _check_eps("1e-3") == 1e-3 and "(0, 0.5)" in message(lambda: _check_eps(0.5), ValueError)
print("OK: the readers return what the formulas need and reject broken input with its message")
