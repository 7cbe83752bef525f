# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Given code: finding and reading CIFAR-10's official batch files
#
# This notebook is given: it ships solved in every edition and is not an exercise. The
# lesson's `load_cifar10` (step 5 of `nbs/05_dataloader.ipynb`) uses it to find the
# extracted `cifar-10-batches-py` folder, unpickle one batch file, and check what it
# holds, with a message that says which file is wrong and how to get a good copy:
#
# - `CIFAR10_CLASSES`, `CIFAR10_FOLDER`, `CIFAR10_FILES`: the official names (the lesson's
#   `tinytorch.data.loader` exports them too).
# - `_cifar10_folder(root, names)`: `root/cifar-10-batches-py` if it exists, else `root`;
#   a `FileNotFoundError` saying what was looked for, where, and how to get the archive
#   (nothing is downloaded at run time) when a file is missing.
# - `_unpickle_batch(path)`: `pickle.load(file, encoding="bytes")` (the files were
#   written by Python 2), with a `ValueError` for a damaged file. Unpickling can run
#   arbitrary code: only load batch files from the official archive or a source you trust.
# - `_check_cifar10_batch(batch, path)`: the dict must hold `b"data"`, a uint8 array of
#   shape `(N, 3072)`, and `b"labels"`, `N` ints in `0 .. 9`; returns
#   `(data, labels as int64)`.

# %%
#| default_exp data.cifar10_files

# %%
#| export
import pickle
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = 10
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = {"train": tuple(f"data_batch_{k}" for k in range(1, 6)), "test": ("test_batch",)}
_CIFAR10_ROW_BYTES = 3 * 32 * 32  # one image: 1024 red, then 1024 green, then 1024 blue values

# %%
#| export
def _cifar10_folder(root, names):
    """The folder with the batch files (root/cifar-10-batches-py if present, else root).

    FileNotFoundError, saying what was looked for, where and how to get it, if any is missing.
    """
    root = Path(root)
    nested = root / CIFAR10_FOLDER
    folder = nested if nested.is_dir() else root
    missing = [name for name in names if not (folder / name).is_file()]
    if not missing:
        return folder
    where = f"{folder}" if folder.is_dir() else f"{folder} (which does not exist)"
    if folder == root and root.name != CIFAR10_FOLDER:
        where += f" and in {nested} (which does not exist)"
    extract_in = root.parent if root.name == CIFAR10_FOLDER else root
    raise FileNotFoundError(
        f"CIFAR-10 files not found: looked for {', '.join(names)} in {where}; missing: "
        f"{', '.join(missing)}. Nothing is downloaded at run time: download the official "
        "\"CIFAR-10 python version\" archive (cifar-10-python.tar.gz from "
        "https://www.cs.toronto.edu/~kriz/cifar.html) yourself and extract it in "
        f"{extract_in}, which creates {extract_in / CIFAR10_FOLDER}; then pass that folder "
        "or its parent as root")


def _unpickle_batch(path):
    """The object pickled in one batch file (bytes keys kept as bytes)."""
    with open(path, "rb") as file:
        try:
            return pickle.load(file, encoding="bytes")
        except (pickle.UnpicklingError, EOFError) as err:
            raise ValueError(
                f"{path} is not a readable CIFAR-10 batch ({type(err).__name__}: {err}); the "
                "file is damaged: extract the official archive again") from err


def _check_cifar10_batch(batch, path):
    """(data uint8 (N, 3072), labels int64 (N,)) of one unpickled batch from path, checked."""
    if not isinstance(batch, dict) or not {b"data", b"labels"} <= batch.keys():
        found = sorted(map(repr, batch)) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(
            f"{path} is not a CIFAR-10 batch: expected a dict with keys b'data' and b'labels', "
            f"found {found}; extract the official archive again")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == _CIFAR10_ROW_BYTES):
        described = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
                     else type(data).__name__)
        raise ValueError(
            f"{path}: b'data' must be a uint8 array of shape (N, {_CIFAR10_ROW_BYTES}), got a "
            f"{described}; extract the official archive again")
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu" or (
            labels.size and not 0 <= labels.min() <= labels.max() < CIFAR10_CLASSES):
        raise ValueError(
            f"{path}: b'labels' must hold {data.shape[0]} ints in 0..{CIFAR10_CLASSES - 1} (one "
            f"per image), got shape {labels.shape} dtype {labels.dtype}")
    return data, labels.astype(np.int64)

# %% [markdown]
# ## Checks of the given code

# %%
import tempfile

with tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp) / CIFAR10_FOLDER
    folder.mkdir()
    batch = {b"data": np.zeros((2, _CIFAR10_ROW_BYTES), dtype=np.uint8), b"labels": [3, 9]}
    with open(folder / "test_batch", "wb") as file:
        pickle.dump(batch, file)
    assert _cifar10_folder(tmp, ["test_batch"]) == folder == _cifar10_folder(folder, ["test_batch"])
    data, labels = _check_cifar10_batch(_unpickle_batch(folder / "test_batch"), folder / "test_batch")
    assert data.shape == (2, 3072) and data.dtype == np.uint8 and labels.tolist() == [3, 9]
    assert labels.dtype == np.int64
    try:
        _cifar10_folder(tmp, CIFAR10_FILES["train"])
    except FileNotFoundError as err:
        assert "data_batch_1" in str(err) and "CIFAR-10 python version" in str(err)
        print("FileNotFoundError:", err)
    else:
        raise AssertionError("missing batch files must raise FileNotFoundError")
    for broken in ({b"data": batch[b"data"]}, {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},
                   {b"data": batch[b"data"], b"labels": [0, 10]}):
        try:
            _check_cifar10_batch(broken, folder / "test_batch")
        except ValueError as err:
            assert "test_batch" in str(err)
        else:
            raise AssertionError(f"{broken.keys()} must raise ValueError")
    (folder / "data_batch_1").write_bytes(b"not a pickle")
    try:
        _unpickle_batch(folder / "data_batch_1")
    except ValueError as err:
        assert "damaged" in str(err)
    else:
        raise AssertionError("a damaged file must raise ValueError")
print("OK: the folder is found in both forms of root, batches are read and checked")
