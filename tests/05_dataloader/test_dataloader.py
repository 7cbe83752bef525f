"""Tests of Dataset, TensorDataset and DataLoader in tinytorch.data.loader (Module 05).

Oracles: numpy indexing on the raw arrays, np.random.default_rng draws, hand-computed counts.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import DataLoader, Dataset, TensorDataset

PROPERTY = settings(max_examples=40, deadline=None, database=None)


def numbered(n, width=3):
    """TensorDataset whose sample i is (row [i*width, ..., i*width + width-1] float32, label i int64)."""
    features = np.arange(n * width, dtype=np.float32).reshape(n, width)
    return TensorDataset(features, np.arange(n))


def epoch_labels(loader):
    """The labels of one epoch, in the order the loader produced them."""
    return np.concatenate([labels.data for _, labels in loader] or [np.empty(0, dtype=np.int64)])


class Squares(Dataset):
    """Only __len__ and __getitem__: sample i is (i*i as a float32 (2,) array, i as a Python int)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return np.array([index * index, -index], dtype=np.float32), index


class OneField(Dataset):
    """A sample that is not a tuple: a single (2, 2) Tensor."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return Tensor(np.full((2, 2), index))


# ---------------------------------------------------------------- Dataset base class

def test_base_class_methods_raise_naming_the_subclass():
    class Empty(Dataset):
        pass

    with pytest.raises(NotImplementedError, match="Empty must implement __len__"):
        len(Empty())
    with pytest.raises(NotImplementedError, match=r"Empty must implement __getitem__"):
        Empty()[0]
    assert repr(Empty()) == "Empty(__len__ not implemented)"
    assert repr(Squares(3)) == "Squares(3 samples)"


def test_default_getitems_stacks_each_field():
    features, labels = Squares(6).__getitems__([4, 0, 5])
    assert isinstance(features, Tensor) and isinstance(labels, Tensor)
    np.testing.assert_array_equal(features.data, [[16.0, -4.0], [0.0, 0.0], [25.0, -5.0]])
    assert features.dtype == np.float32
    assert labels.tolist() == [4, 0, 5] and labels.dtype == np.int64


def test_default_getitems_accepts_numpy_indices_and_single_field_samples():
    (batch,) = OneField().__getitems__(np.array([3, 1]))
    assert batch.shape == (2, 2, 2)
    np.testing.assert_array_equal(batch.data[:, 0, 0], [3.0, 1.0])


def test_default_getitems_rejects_inconsistent_samples():
    class Ragged(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, index):
            return np.zeros(index + 1), index

    class Uneven(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return (1.0,) if index == 0 else (1.0, 2.0)

    with pytest.raises(ValueError, match=r"field 0 .*\(1,\).*\(2,\)"):
        Ragged().__getitems__([0, 1])
    with pytest.raises(ValueError, match=r"different numbers of fields \[1, 2\]"):
        Uneven().__getitems__([0, 1])
    with pytest.raises(ValueError, match="no indices"):
        Squares(2).__getitems__([])
    with pytest.raises(TypeError):
        Squares(3).__getitems__([0.5])


def test_subclass_without_getitems_works_through_the_loader():
    loader = DataLoader(Squares(7), batch_size=3)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [labels.tolist() for _, labels in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    np.testing.assert_array_equal(batches[1][0].data[:, 0], [9.0, 16.0, 25.0])
    shuffled = epoch_labels(DataLoader(Squares(7), 2, shuffle=True, seed=4))
    np.testing.assert_array_equal(shuffled, np.random.default_rng(4).permutation(7))


# ---------------------------------------------------------------- TensorDataset

def test_tensor_dataset_wraps_arrays_without_copying_and_keeps_int64():
    features = np.zeros((4, 2), dtype=np.float32)
    labels = np.array([3, 1, 2, 0])
    ds = TensorDataset(features, labels)
    assert ds.tensors[0].data is features and ds.tensors[1].data is labels
    assert ds.tensors[1].dtype == np.int64
    t = Tensor([[1.0], [2.0]])
    assert TensorDataset(t).tensors[0] is t
    assert isinstance(ds.tensors, tuple) and len(ds) == 4


def test_tensor_dataset_getitem_returns_a_tuple_of_tensors():
    ds = numbered(5)
    x, y = ds[2]
    assert isinstance(x, Tensor) and isinstance(y, Tensor)
    assert x.tolist() == [6.0, 7.0, 8.0] and y.item() == 2 and y.shape == () and y.dtype == np.int64
    assert ds[-1][1].item() == 4
    assert ds[np.int64(3)][1].item() == 3


def test_tensor_dataset_getitems_matches_numpy_fancy_indexing():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((20, 1, 4, 4)).astype(np.float32)
    labels = rng.integers(0, 10, size=20)
    ds = TensorDataset(Tensor(images), labels)
    picks = np.array([19, 0, 7, 7, -2])
    xb, yb = ds.__getitems__(picks)
    np.testing.assert_array_equal(xb.data, images[picks])
    np.testing.assert_array_equal(yb.data, labels[picks])
    assert xb.shape == (5, 1, 4, 4) and yb.dtype == np.int64
    xe, ye = ds.__getitems__([])
    assert xe.shape == (0, 1, 4, 4) and ye.shape == (0,)
    xl, _ = ds.__getitems__([1, 2])   # a plain list works too
    np.testing.assert_array_equal(xl.data, images[[1, 2]])


def test_tensor_dataset_getitems_has_no_per_sample_python_call(monkeypatch):
    ds = numbered(10)

    def forbidden(self, index):
        raise AssertionError("__getitems__ must not call __getitem__ per sample")

    monkeypatch.setattr(TensorDataset, "__getitem__", forbidden)
    xb, yb = ds.__getitems__(np.arange(10))
    assert yb.tolist() == list(range(10))


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()
    with pytest.raises(ValueError, match=r"\(5, 3\), \(4,\), \(5,\)"):
        TensorDataset(np.zeros((5, 3)), np.zeros(4), np.zeros(5))
    with pytest.raises(ValueError, match=r"at least 1-D.*\(\)"):
        TensorDataset(np.zeros(()))
    with pytest.raises(TypeError, match="argument 1 must be a Tensor or a numpy array, got list"):
        TensorDataset(np.zeros(3), [1, 2, 3])
    ds = numbered(4)
    with pytest.raises(IndexError, match=r"index 4 is out of range .* 4 samples \(valid: -4\.\.3\)"):
        ds[4]
    with pytest.raises(IndexError, match="out of range"):
        ds[-5]
    with pytest.raises(TypeError, match="must be an integer, got float"):
        ds[1.0]
    with pytest.raises(IndexError, match=r"indices \[7, -9\] are out of range"):
        ds.__getitems__([0, 7, -9])
    with pytest.raises(TypeError, match="1-D sequence of integers"):
        ds.__getitems__(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="1-D sequence of integers"):
        ds.__getitems__([[0, 1]])


def test_tensor_dataset_repr():
    ds = TensorDataset(np.zeros((3, 1, 2, 2), dtype=np.float32), np.arange(3))
    assert repr(ds) == "TensorDataset(3 samples; tensors: (3, 1, 2, 2) float32, (3,) int64)"


# ---------------------------------------------------------------- DataLoader

@pytest.mark.parametrize("n, batch_size, drop_last, expected", [
    (10, 4, False, 3), (10, 4, True, 2), (12, 4, False, 3), (12, 4, True, 3),
    (3, 8, False, 1), (3, 8, True, 0), (0, 5, False, 0), (0, 5, True, 0), (7, 1, False, 7),
])
def test_len_is_the_number_of_batches(n, batch_size, drop_last, expected):
    loader = DataLoader(numbered(n), batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == expected
    assert len(list(loader)) == expected


def test_batches_without_shuffle_are_in_order_with_a_partial_last_batch():
    ds = numbered(10)
    batches = list(DataLoader(ds, batch_size=4))
    assert [tuple(x.shape) for x, _ in batches] == [(4, 3), (4, 3), (2, 3)]
    assert [y.tolist() for _, y in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(batches[2][0].data, ds.tensors[0].data[8:])
    assert all(isinstance(b, tuple) and len(b) == 2 for b in batches)
    dropped = list(DataLoader(ds, batch_size=4, drop_last=True))
    assert [y.tolist() for _, y in dropped] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_default_batch_size_is_32():
    loader = DataLoader(numbered(70))
    assert loader.batch_size == 32 and len(loader) == 3
    assert [len(y) for _, y in loader] == [32, 32, 6]


def test_shuffle_uses_one_generator_made_from_the_seed():
    loader = DataLoader(numbered(9), batch_size=4, shuffle=True, seed=123)
    oracle = np.random.default_rng(123)
    for _ in range(3):
        np.testing.assert_array_equal(epoch_labels(loader), oracle.permutation(9))


def test_same_seed_same_epochs_and_epochs_differ():
    ds = numbered(50)
    a = DataLoader(ds, batch_size=8, shuffle=True, seed=7)
    b = DataLoader(ds, batch_size=8, shuffle=True, seed=7)
    epochs_a = [epoch_labels(a) for _ in range(4)]
    epochs_b = [epoch_labels(b) for _ in range(4)]
    for ea, eb in zip(epochs_a, epochs_b):
        np.testing.assert_array_equal(ea, eb)
    assert len({tuple(e.tolist()) for e in epochs_a}) == 4
    other = epoch_labels(DataLoader(ds, batch_size=8, shuffle=True, seed=8))
    assert not np.array_equal(other, epochs_a[0])


def test_each_iter_draws_its_order_when_it_is_called():
    loader = DataLoader(numbered(20), batch_size=5, shuffle=True, seed=1)
    first, second = iter(loader), iter(loader)
    oracle = np.random.default_rng(1)
    expected_first, expected_second = oracle.permutation(20), oracle.permutation(20)
    second_labels = np.concatenate([y.data for _, y in second])   # consumed first
    first_labels = np.concatenate([y.data for _, y in first])
    np.testing.assert_array_equal(first_labels, expected_first)
    np.testing.assert_array_equal(second_labels, expected_second)


def test_generator_seed_is_used_as_is():
    rng = np.random.default_rng(5)
    loader = DataLoader(numbered(6), batch_size=6, shuffle=True, seed=rng)
    np.testing.assert_array_equal(epoch_labels(loader), np.random.default_rng(5).permutation(6))


def test_features_and_labels_stay_paired_when_shuffled():
    ds = numbered(13, width=2)
    for x, y in DataLoader(ds, batch_size=5, shuffle=True, seed=0):
        np.testing.assert_array_equal(x.data[:, 0], 2 * y.data)


@PROPERTY
@given(n=st.integers(0, 60), batch_size=st.integers(1, 70), shuffle=st.booleans(),
       drop_last=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_every_sample_exactly_once_per_epoch(n, batch_size, shuffle, drop_last, seed):
    loader = DataLoader(numbered(n), batch_size=batch_size, shuffle=shuffle, seed=seed,
                        drop_last=drop_last)
    expected_batches = n // batch_size if drop_last else math.ceil(n / batch_size)
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == len(loader) == expected_batches
        assert all(len(y) == batch_size for _, y in batches[:n // batch_size])
        labels = epoch_labels(batches)
        if drop_last:
            assert labels.size == expected_batches * batch_size
            assert np.unique(labels).size == labels.size
        else:
            np.testing.assert_array_equal(np.sort(labels), np.arange(n))
        if not shuffle:
            np.testing.assert_array_equal(labels, np.arange(labels.size))


@pytest.mark.parametrize("bad", [0, -1, 2.5, "32", None, True])
def test_batch_size_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got {bad!r}"):
        DataLoader(numbered(4), batch_size=bad)


def test_numpy_integer_batch_size_is_accepted():
    assert len(DataLoader(numbered(10), batch_size=np.int64(5))) == 2


def test_loader_needs_a_dataset():
    with pytest.raises(TypeError, match="needs a Dataset .* got list"):
        DataLoader([1, 2, 3])


def test_getitems_results_become_tuples_of_tensors():
    class ArrayBatches(Dataset):
        def __len__(self):
            return 5

        def __getitems__(self, indices):
            return np.asarray(indices) * 10           # one ndarray field

    class ListBatches(Dataset):
        def __len__(self):
            return 3

        def __getitems__(self, indices):
            return [np.asarray(indices), Tensor.from_numpy(np.asarray(indices) + 1)]

    class BadBatches(Dataset):
        def __len__(self):
            return 3

        def __getitems__(self, indices):
            return ([1, 2],)

    batches = list(DataLoader(ArrayBatches(), batch_size=2))
    assert [type(b) for b in batches] == [tuple] * 3
    assert [b[0].tolist() for b in batches] == [[0, 10], [20, 30], [40]]
    (first, plus_one), = list(DataLoader(ListBatches(), batch_size=3))
    assert first.tolist() == [0, 1, 2] and plus_one.tolist() == [1, 2, 3]
    with pytest.raises(TypeError, match="batch field"):
        list(DataLoader(BadBatches(), batch_size=3))


def test_loader_repr():
    loader = DataLoader(numbered(10), batch_size=4, shuffle=True, seed=3, drop_last=True)
    assert repr(loader) == ("DataLoader(TensorDataset(10 samples; tensors: (10, 3) float32, (10,) int64), "
                            "batch_size=4, shuffle=True, seed=3, drop_last=True; 2 batches per epoch)")
