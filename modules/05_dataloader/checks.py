# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Given code: argument checks of the data pipeline
#
# This notebook is given: it ships solved in every edition and is not an exercise. The
# lesson (`nbs/05_dataloader.ipynb`) calls these helpers around the code you write, so a
# wrong argument (an index out of range, a batch size of 0, tensors of different lengths,
# samples that disagree) is reported with what was wrong, the value, and what to do,
# instead of a numpy error from deep inside a batch.
#
# - `_as_tensor`: a Tensor passes through, a numpy array is wrapped without a copy
#   (`Tensor.from_numpy`, so `int64` labels stay `int64`), anything else is a `TypeError`.
# - `_check_samples` and `_field_arrays`: the rules for the default `__getitems__` (at
#   least one sample, the same fields in every sample, each field of one shape).
# - `_dataset_tensors`: `TensorDataset`'s arguments (at least one, each at least 1-D, one
#   shared first dimension).
# - `_check_index` and `_check_indices`: one index, or a whole index array in one
#   vectorised pass, in `[-N, N)`.
# - `_check_dataset`, `_check_batch_size` and `_as_batch`: the `DataLoader`'s arguments
#   and what a data set's `__getitems__` returned.
# - `_check_choice` and `_split_labels`: the arguments of `load_digits` and
#   `stratified_split`.

# %%
#| default_exp data.loader_checks

# %%
#| export
import numbers
import operator

import numpy as np

from tinytorch.core.tensor import Tensor

# %%
#| export
def _as_tensor(value, what):
    """value as a Tensor: Tensors pass through, ndarrays are wrapped (no copy, dtype kept)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor.from_numpy(value)
    raise TypeError(
        f"{what} must be a Tensor or a numpy array, got {type(value).__name__}; convert it "
        "first, e.g. Tensor(x) for float32 features or np.asarray(y, dtype=np.int64) for labels")


def _check_samples(samples, owner):
    """ValueError unless there is at least one sample and all have the same number of fields."""
    if not samples:
        raise ValueError(
            f"{owner}.__getitems__ got no indices; the default cannot tell the fields' "
            "shapes without a sample, so pass at least one index")
    widths = sorted({len(sample) for sample in samples})
    if len(widths) > 1:
        raise ValueError(
            f"{owner}: samples in one batch have different numbers of fields {widths}; "
            "__getitem__ must return the same fields for every index")


def _field_arrays(values, position, owner):
    """One field's values (Tensors, arrays or numbers) as arrays of one shape; ValueError naming the shapes."""
    arrays = [value.data if isinstance(value, Tensor) else np.asarray(value) for value in values]
    shapes = sorted({array.shape for array in arrays})
    if len(shapes) > 1:
        raise ValueError(
            f"{owner}: field {position} has different shapes in one batch: {shapes}; every "
            "sample must give each field the same shape (pad or resize them in __getitem__)")
    return arrays


def _dataset_tensors(tensors):
    """TensorDataset's arguments as a tuple of Tensors: at least one, each at least 1-D, one first dimension."""
    if not tensors:
        raise ValueError(
            "TensorDataset needs at least one tensor, e.g. TensorDataset(images, labels)")
    tensors = tuple(_as_tensor(tensor, f"TensorDataset argument {k}") for k, tensor in enumerate(tensors))
    shapes = [tensor.shape for tensor in tensors]
    if any(len(shape) == 0 for shape in shapes) or len({shape[0] for shape in shapes}) > 1:
        listed = ", ".join(str(shape) for shape in shapes)
        raise ValueError(
            "TensorDataset tensors must be at least 1-D and share their first dimension "
            f"(the number of samples), got shapes {listed}; make every tensor hold one "
            "row per sample")
    return tensors

# %%
#| export
def _check_index(index, size):
    """index as an int in [-size, size); TypeError or IndexError with the valid range."""
    try:
        position = operator.index(index)
    except TypeError:
        raise TypeError(
            f"a dataset index must be an integer, got {type(index).__name__} {index!r}; "
            "use __getitems__(indices) to fetch several samples") from None
    if not -size <= position < size:
        raise IndexError(
            f"index {position} is out of range for a dataset of {size} samples "
            f"(valid: {-size}..{size - 1})")
    return position


def _check_indices(indices, size):
    """indices as a 1-D integer ndarray, all in [-size, size); TypeError or IndexError."""
    positions = np.asarray(indices)
    if positions.size == 0:
        positions = positions.reshape(0).astype(np.intp)
    if positions.ndim != 1 or positions.dtype.kind not in "iu":
        raise TypeError(
            "indices must be a 1-D sequence of integers, got an array of dtype "
            f"{positions.dtype} and shape {positions.shape}")
    outside = positions[(positions < -size) | (positions >= size)]
    if outside.size:
        raise IndexError(
            f"indices {outside[:5].tolist()} are out of range for a dataset of {size} samples "
            f"(valid: {-size}..{size - 1})")
    return positions

# %%
#| export
def _check_dataset(dataset):
    """dataset, if it has __len__ and __getitems__; TypeError otherwise."""
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitems__")):
        raise TypeError(
            f"DataLoader needs a Dataset (with __len__ and __getitems__), got "
            f"{type(dataset).__name__}; wrap arrays in TensorDataset(x, y) or subclass Dataset")
    return dataset


def _check_batch_size(batch_size):
    """batch_size as a positive int; ValueError with the value received otherwise."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _as_batch(fields):
    """What __getitems__ returned, as a tuple of Tensors (a single Tensor or array is one field)."""
    if isinstance(fields, (Tensor, np.ndarray)):
        fields = (fields,)
    return tuple(_as_tensor(field, "a batch field returned by __getitems__") for field in fields)

# %%
#| export
def _check_choice(name, value, choices):
    """ValueError naming the valid choices unless value is one of them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def _split_labels(labels, test_fraction):
    """labels as a 1-D array of non-negative ints; ValueError for those or a test_fraction outside [0, 1]."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
        raise ValueError(
            f"labels must be a 1-D array of non-negative integers, got dtype {labels.dtype}, "
            f"shape {labels.shape}")
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}")
    return labels

# %% [markdown]
# ## Checks of the given code

# %%
def message(call, error):
    """The message of the `error` that call() raises (AssertionError if it raises nothing)."""
    try:
        call()
    except error as err:
        return str(err)
    raise AssertionError(f"expected {error.__name__}")


labels = np.arange(4)
assert _as_tensor(labels, "labels").data is labels
assert "list" in message(lambda: _as_tensor([1, 2], "labels"), TypeError)
assert "no indices" in message(lambda: _check_samples([], "Toy"), ValueError)
assert "[1, 2]" in message(lambda: _check_samples([(1,), (1, 2)], "Toy"), ValueError)
assert "(2,)" in message(lambda: _field_arrays([np.zeros(2), np.zeros(3)], 0, "Toy"), ValueError)
images, ys = _dataset_tensors((np.zeros((4, 2), dtype=np.float32), labels))
assert ys.dtype == np.int64 and images.shape == (4, 2)
assert "(4, 2), (3,)" in message(lambda: _dataset_tensors((np.zeros((4, 2)), labels[:3])), ValueError)
assert _check_index(-1, 4) == -1 and "valid: -4..3" in message(lambda: _check_index(4, 4), IndexError)
assert _check_indices([], 4).dtype.kind == "i" and _check_indices([3, -4], 4).tolist() == [3, -4]
assert "[7]" in message(lambda: _check_indices([0, 7], 4), IndexError)
assert "float64" in message(lambda: _check_indices([0.5], 4), TypeError)
assert _check_batch_size(np.int64(3)) == 3 and "True" in message(lambda: _check_batch_size(True), ValueError)
assert "list" in message(lambda: _check_dataset([1, 2]), TypeError)
assert len(_as_batch(np.zeros(3))) == 1 and len(_as_batch((np.zeros(3), Tensor([1.0])))) == 2
assert "'train', 'test'" in message(lambda: _check_choice("split", "dev", ("train", "test")), ValueError)
assert "test_fraction" in message(lambda: _split_labels(labels, 1.5), ValueError)
print("OK: every check passes good arguments through and names what is wrong with bad ones")
