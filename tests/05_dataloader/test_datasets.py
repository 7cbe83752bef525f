"""Tests of load_digits, stratified_split and load_cifar10 in tinytorch.data.loader (Module 05).

Oracles: scikit-learn's own digits arrays with the documented split rebuilt here, hand-computed
counts, and tiny CIFAR-10 batch files written in the official format into tmp_path.
"""
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits as sklearn_load_digits

from tinytorch.data.loader import (CIFAR10_FILES, CIFAR10_FOLDER, DIGITS_CLASSES, DIGITS_SPLIT_SEED,
                                   DataLoader, TensorDataset, load_cifar10, load_digits,
                                   stratified_split)

# Per-class sample counts of sklearn's digits (np.bincount(target)) and round(0.2 * n_c) by hand.
DIGITS_PER_CLASS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
TEST_PER_CLASS = [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]   # 35.6 36.4 35.4 36.6 36.2 36.4 ...


@pytest.fixture(scope="module")
def sklearn_digits():
    return sklearn_load_digits()


@pytest.fixture(scope="module")
def splits():
    return {split: load_digits(split) for split in ("train", "test", "all")}


def documented_test_indices(target):
    """The documented split, rebuilt independently: per class c, the first round(0.2 n_c) of
    default_rng(0 + c).permutation(class c's indices), all sorted ascending."""
    chosen = []
    for c in range(10):
        members = np.flatnonzero(target == c)
        chosen.extend(np.random.default_rng(0 + c).permutation(members)[:TEST_PER_CLASS[c]].tolist())
    return np.array(sorted(chosen))


# ---------------------------------------------------------------- digits

def test_constants():
    assert DIGITS_CLASSES == 10 and DIGITS_SPLIT_SEED == 0


def test_digits_sizes(splits, sklearn_digits):
    np.testing.assert_array_equal(np.bincount(sklearn_digits.target), DIGITS_PER_CLASS)
    assert len(splits["all"]) == 1797
    assert len(splits["test"]) == sum(TEST_PER_CLASS) == 359
    assert len(splits["train"]) == 1797 - 359 == 1438
    assert isinstance(splits["train"], TensorDataset)


def test_digits_split_is_stratified(splits):
    test_counts = np.bincount(splits["test"].tensors[1].data, minlength=10)
    train_counts = np.bincount(splits["train"].tensors[1].data, minlength=10)
    np.testing.assert_array_equal(test_counts, TEST_PER_CLASS)
    np.testing.assert_array_equal(train_counts + test_counts, DIGITS_PER_CLASS)
    for c in range(10):  # within rounding (half a sample) of 20% of the class
        assert abs(test_counts[c] - 0.2 * DIGITS_PER_CLASS[c]) <= 0.5


def test_digits_images_match_sklearn_in_the_documented_order(splits, sklearn_digits):
    test_idx = documented_test_indices(sklearn_digits.target)
    train_idx = np.flatnonzero(~np.isin(np.arange(1797), test_idx))
    for split, idx in (("train", train_idx), ("test", test_idx), ("all", np.arange(1797))):
        images, labels = splits[split].tensors
        np.testing.assert_array_equal(images.data[:, 0], (sklearn_digits.images[idx] / 16).astype(np.float32))
        np.testing.assert_array_equal(labels.data, sklearn_digits.target[idx])


def test_digits_splits_are_disjoint_and_cover_everything_once(splits, sklearn_digits):
    flat = sklearn_digits.data  # (1797, 64), values 0..16
    rows = np.concatenate([splits["train"].tensors[0].data.reshape(-1, 64),
                           splits["test"].tensors[0].data.reshape(-1, 64)]) * 16
    # Match every returned image to its sklearn row: the multiset of rows must be identical.
    key = lambda a: np.lexsort(a.T[::-1])
    np.testing.assert_array_equal(rows[key(rows)], flat[key(flat)])
    test_idx = documented_test_indices(sklearn_digits.target)
    assert np.unique(test_idx).size == test_idx.size == 359


def test_digits_dtypes_shapes_and_range(splits):
    images, labels = splits["train"].tensors
    assert images.dtype == np.float32 and labels.dtype == np.int64
    assert images.shape == (1438, 1, 8, 8) and labels.shape == (1438,)
    assert images.data.min() == 0.0 and images.data.max() == 1.0
    assert set(np.unique(labels.data).tolist()) == set(range(10))
    flat_images, flat_labels = load_digits("test", flatten=True).tensors
    assert flat_images.shape == (359, 64)
    np.testing.assert_array_equal(flat_images.data, splits["test"].tensors[0].data.reshape(359, 64))
    np.testing.assert_array_equal(flat_labels.data, splits["test"].tensors[1].data)


def test_digits_are_deterministic_across_calls(splits):
    again = load_digits("train")
    for ours, theirs in zip(again.tensors, splits["train"].tensors):
        np.testing.assert_array_equal(ours.data, theirs.data)


def test_digits_default_split_is_train(splits):
    np.testing.assert_array_equal(load_digits().tensors[1].data, splits["train"].tensors[1].data)


@pytest.mark.parametrize("bad", ["validation", "Train", None, 0])
def test_digits_unknown_split(bad):
    with pytest.raises(ValueError, match=r"split must be one of 'train', 'test', 'all'; got"):
        load_digits(bad)


def test_digits_feed_a_loader(splits):
    loader = DataLoader(splits["test"], batch_size=100, shuffle=True, seed=0)
    shapes = [tuple(x.shape) for x, _ in loader]
    assert shapes == [(100, 1, 8, 8)] * 3 + [(59, 1, 8, 8)]


def test_stratified_split_on_a_small_example():
    labels = np.array([2, 0, 2, 0, 0, 2, 2, 0, 2, 0])   # class 0: 5 samples, class 2: 5 samples
    train, test = stratified_split(labels, 0.4, 7)
    expected_test = np.sort(np.r_[np.random.default_rng(7).permutation([1, 3, 4, 7, 9])[:2],
                                  np.random.default_rng(9).permutation([0, 2, 5, 6, 8])[:2]])
    np.testing.assert_array_equal(test, expected_test)
    np.testing.assert_array_equal(train, np.setdiff1d(np.arange(10), expected_test))
    assert np.all(np.diff(train) > 0)


def test_stratified_split_rejects_bad_input():
    with pytest.raises(ValueError, match="non-negative integers"):
        stratified_split(np.array([0.0, 1.0]), 0.2, 0)
    with pytest.raises(ValueError, match="non-negative integers"):
        stratified_split(np.array([-1, 1]), 0.2, 0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        stratified_split(np.array([0, 1]), 1.5, 0)


# ---------------------------------------------------------------- CIFAR-10 fixture

TRAIN_SIZES = (4, 4, 4, 4, 4)
TEST_SIZE = 3


def official_batch(name, data, labels):
    """A batch dict exactly as in the official CIFAR-10 python version."""
    return {b"batch_label": f"{name} of 5".encode(), b"labels": list(labels), b"data": data,
            b"filenames": [f"img_{name}_{i}.png".encode() for i in range(len(labels))]}


def write_batch(path, batch):
    with open(path, "wb") as file:
        pickle.dump(batch, file, protocol=2)


@pytest.fixture
def cifar_root(tmp_path):
    """tmp_path/cifar-10-batches-py with 5 train batches of 4 images and a test batch of 3.

    Image k overall (k = 0 .. 22 in file order) has data[n, j] = (7 * k + j) % 256 and label k % 10.
    """
    folder = tmp_path / CIFAR10_FOLDER
    folder.mkdir()
    k = 0
    raw = {}
    for name, size in zip([*CIFAR10_FILES["train"], *CIFAR10_FILES["test"]], [*TRAIN_SIZES, TEST_SIZE]):
        ks = np.arange(k, k + size)
        data = ((7 * ks[:, None] + np.arange(3072)[None, :]) % 256).astype(np.uint8)
        labels = (ks % 10).tolist()
        write_batch(folder / name, official_batch(name, data, labels))
        raw[name] = (data, labels)
        k += size
    return tmp_path, raw


def test_cifar_decoding_channel_order_and_pixel_positions(cifar_root):
    root, raw = cifar_root
    images, labels = load_cifar10(root, "train").tensors
    assert images.shape == (20, 3, 32, 32) and images.dtype == np.float32
    assert labels.shape == (20,) and labels.dtype == np.int64
    data = raw["data_batch_1"][0]
    for n in range(4):
        for c, y, x in ((0, 0, 0), (1, 0, 2), (2, 0, 0), (0, 1, 0), (2, 31, 31), (1, 5, 17)):
            assert images.data[n, c, y, x] == np.float32(data[n, 1024 * c + 32 * y + x]) / np.float32(255)
    # pixel (c=1, y=0, x=2) of image 0 in batch 1: data[0, 1026] = (7*0 + 1026) % 256 = 2
    assert images.data[0, 1, 0, 2] == np.float32(2) / np.float32(255)
    # red plane of image 0 starts at j = 0: values 0, 1, 2, ... along the first row
    np.testing.assert_array_equal(images.data[0, 0, 0, :4] * 255, [0, 1, 2, 3])
    assert images.data.min() >= 0.0 and images.data.max() <= 1.0


def test_cifar_train_concatenates_batches_1_to_5_in_order(cifar_root):
    root, raw = cifar_root
    images, labels = load_cifar10(root, "train").tensors
    every = np.concatenate([raw[name][0] for name in CIFAR10_FILES["train"]])
    np.testing.assert_array_equal(images.data * 255, every.reshape(20, 3, 32, 32).astype(np.float32))
    np.testing.assert_array_equal(images.data, every.reshape(20, 3, 32, 32).astype(np.float32) / np.float32(255))
    assert labels.tolist() == [k % 10 for k in range(20)]
    assert images.data[4, 0, 0, 0] * 255 == 28.0   # image 4 = first of data_batch_2: 7 * 4 + 0


def test_cifar_test_split(cifar_root):
    root, raw = cifar_root
    images, labels = load_cifar10(root, "test").tensors
    assert images.shape == (3, 3, 32, 32)
    assert labels.tolist() == [20 % 10, 21 % 10, 22 % 10] == raw["test_batch"][1]
    np.testing.assert_array_equal(images.data * 255,
                                  raw["test_batch"][0].reshape(3, 3, 32, 32).astype(np.float32))


def test_cifar_root_may_be_the_batches_folder_or_its_parent(cifar_root):
    root, _ = cifar_root
    from_parent = load_cifar10(root, "test")
    from_folder = load_cifar10(root / CIFAR10_FOLDER, "test")
    from_string = load_cifar10(str(root / CIFAR10_FOLDER), "test")
    for other in (from_folder, from_string):
        for ours, theirs in zip(other.tensors, from_parent.tensors):
            np.testing.assert_array_equal(ours.data, theirs.data)


def test_cifar_missing_folder_message(tmp_path):
    where = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(where)
    message = str(info.value)
    for name in CIFAR10_FILES["train"]:
        assert name in message
    assert str(where) in message and str(where / CIFAR10_FOLDER) in message
    assert "does not exist" in message
    assert '"CIFAR-10 python version"' in message
    assert "download" in message and "extract" in message
    assert "Nothing is downloaded at run time" in message


def test_cifar_missing_batch_file_is_named(cifar_root):
    root, _ = cifar_root
    (root / CIFAR10_FOLDER / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing: data_batch_3\.") as info:
        load_cifar10(root, "train")
    assert str(root / CIFAR10_FOLDER) in str(info.value)
    assert load_cifar10(root, "test").tensors[0].shape == (3, 3, 32, 32)  # test needs only test_batch
    (root / CIFAR10_FOLDER / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match=r"looked for test_batch in .*missing: test_batch"):
        load_cifar10(root / CIFAR10_FOLDER, "test")


@pytest.mark.parametrize("batch, fragment", [
    ({b"labels": [0, 1]}, "expected a dict with keys"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, "expected a dict with keys"),
    ([1, 2, 3], "found list"),
    ({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}, r"shape \(2, 1024\)"),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "float32"),
    ({b"data": np.zeros((2, 32, 32, 3), np.uint8), b"labels": [0, 1]}, r"\(N, 3072\)"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}, "must hold 2 ints"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"in 0\.\.9"),
])
def test_cifar_corrupt_batch_names_the_file(cifar_root, batch, fragment):
    root, _ = cifar_root
    write_batch(root / CIFAR10_FOLDER / "test_batch", batch)
    with pytest.raises(ValueError, match=fragment) as info:
        load_cifar10(root, "test")
    assert "test_batch" in str(info.value)


@pytest.mark.parametrize("content", [b"not a pickle at all", b""])
def test_cifar_unreadable_file_names_the_file(cifar_root, content):
    root, _ = cifar_root
    (root / CIFAR10_FOLDER / "data_batch_2").write_bytes(content)
    with pytest.raises(ValueError, match=r"data_batch_2 is not a readable CIFAR-10 batch"):
        load_cifar10(root, "train")


def test_cifar_unknown_split(cifar_root):
    root, _ = cifar_root
    with pytest.raises(ValueError, match=r"split must be one of 'train', 'test'; got 'all'"):
        load_cifar10(root, "all")
