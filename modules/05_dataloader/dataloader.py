# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 05: DataLoader
#
# > Datasets and DataLoaders: turn a collection of samples into shuffled, batched Tensors, and read the digits and CIFAR-10 data sets from local files.
#
# ## Why data loading matters
#
# A model never sees a data set all at once. Training walks over it in *batches*: a few
# dozen or a few hundred samples stacked into one tensor, so that one matrix multiply
# does the work of many and each weight update averages over many examples. The order
# matters too: samples are *shuffled* every epoch, or the model learns the order of the
# file instead of the task. And an evaluation is only honest when the test samples are a
# fixed set the model never trained on.
#
# Data loading is also where many training runs lose their time. If fetching a batch
# means one Python call per sample, the loader can be slower than the model it feeds.
# The systems analysis at the end of this module measures exactly that.
#
# In this module you build the two abstractions PyTorch uses: a `Dataset` (how to get
# sample `i`, or a whole batch of samples at once) and a `DataLoader` (which samples go
# into which batch, epoch after epoch). Then you load two real data sets from local
# files: the 8x8 handwritten digits that ship inside scikit-learn, and CIFAR-10 in its
# official on-disk format. Nothing is downloaded while the code runs.

# %%
#| default_exp data.loader

# %% [markdown]
# ## The idea: choose indices first, then gather the data
#
# A loader never moves samples around to shuffle them. It works on *indices*: one epoch
# is an order of the numbers `0 .. N-1` (`0, 1, 2, ...` or a random permutation), cut
# into consecutive slices of `batch_size`. Each slice is then *gathered* from the data:
# with numpy, `features[[7, 2, 5]]` (fancy indexing) copies rows 7, 2 and 5 into a new
# array in one call.
#
# With `N = 10` samples and `batch_size = 4` there are `ceil(10 / 4) = 3` batches and the
# last one is partial (2 samples). With `drop_last` the partial batch is skipped:
# `10 // 4 = 2` batches. The cell below checks these numbers, worked out by hand in the
# comments, with plain numpy.

# %%
import numpy as np

features = np.arange(10, dtype=np.float32) * 10   # sample i has the feature 10 * i
labels = np.arange(10) % 3                          # sample i has the label i mod 3
batch_size = 4

order = np.arange(10)                               # no shuffling: 0 .. 9
batches = [order[start:start + batch_size] for start in range(0, 10, batch_size)]
# By hand: [0 1 2 3], [4 5 6 7], [8 9]; ceil(10 / 4) = 3 batches, 10 // 4 = 2 full ones
assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
assert len(batches) == -(-10 // batch_size) == 3 and 10 // batch_size == 2

shuffled = np.random.default_rng(0).permutation(10)  # one epoch's order
first = shuffled[:batch_size]
assert np.array_equal(features[first], 10 * first)  # gathered rows match their indices
assert sorted(shuffled.tolist()) == list(range(10))  # every sample exactly once
print("shuffled order:", shuffled.tolist())
print("first batch: indices", first.tolist(), "features", features[first].tolist(),
      "labels", labels[first].tolist())

# %% [markdown]
# ## Step 1: the `Dataset` protocol
#
# A `Dataset` is anything with a length and a way to fetch one sample:
#
# - `__len__()`: the number of samples `N`;
# - `__getitem__(i)`: sample `i` as a *tuple of fields*, e.g. `(image, label)`. Each
#   field is a Tensor, a numpy array or a number. (A value that is not a tuple counts as
#   a sample with one field.)
#
# The base class below raises `NotImplementedError` naming your subclass when either is
# missing. It also defines the batch fetch `__getitems__(indices)`, which returns one
# batched Tensor per field. The default you write here is the simple, general one: call
# `__getitem__` once per index (`self[operator.index(i)]`, read as a tuple of fields with
# the given `_as_fields`), regroup the samples into columns, one per field
# (`zip(*samples)`), and stack each column along a new first axis with `np.stack` (a
# field of shape `(1, 8, 8)` becomes `(B, 1, 8, 8)` for `B` indices; the dtype is
# whatever numpy gives the stacked values). Two given helpers do the checking (they live,
# with every other argument check of this module, in the given-code notebook
# `nbs/05_dataloader.checks.ipynb`, exported to `tinytorch/data/loader_checks.py`): call
# `_check_samples(samples, owner)` once you have the samples (no indices, or samples with
# different numbers of fields, are a `ValueError`), and read each column with
# `_field_arrays(values, k, owner)`, which returns its values as numpy arrays and raises
# a `ValueError` naming the shapes when they differ. A data set that can gather a batch
# in one call, like `TensorDataset` in step 2, overrides `__getitems__`.

# %%
#| export
import operator

import numpy as np

from tinytorch.core.tensor import Tensor
from tinytorch.data.cifar10_files import (
    CIFAR10_CLASSES, CIFAR10_FILES, CIFAR10_FOLDER, _check_cifar10_batch, _cifar10_folder, _unpickle_batch)
from tinytorch.data.loader_checks import (
    _as_batch, _as_tensor, _check_batch_size, _check_choice, _check_dataset, _check_index, _check_indices,
    _check_samples, _dataset_tensors, _field_arrays, _split_labels)

# %% nbgrader={"grade": false, "grade_id": "dataset-protocol", "locked": false, "schema_version": 3, "solution": true}
#| export
def _as_fields(sample):
    """A sample as a tuple of fields (a value that is not a tuple is a one-field sample)."""
    return sample if isinstance(sample, tuple) else (sample,)


class Dataset:
    """A sized collection of samples; subclasses define __len__ and __getitem__(index).

    __getitem__(i) returns sample i as a tuple of fields, e.g. (image, label), each a Tensor,
    ndarray or number. __getitems__(indices) returns a batch: one Tensor per field, the
    samples stacked along a new first axis. The default calls __getitem__ once per index;
    subclasses that can gather a whole batch at once override it.
    """

    def __len__(self):
        raise NotImplementedError(
            f"{type(self).__name__} must implement __len__(), returning the number of samples")

    def __getitem__(self, index):
        raise NotImplementedError(
            f"{type(self).__name__} must implement __getitem__(index), returning sample index "
            "as a tuple of fields, e.g. (image, label)")

    def __getitems__(self, indices):
        """The samples at indices as a tuple of batched Tensors, one per field."""
        owner = type(self).__name__
        ### BEGIN SOLUTION
        samples = [_as_fields(self[operator.index(i)]) for i in indices]
        _check_samples(samples, owner)
        columns = zip(*samples)  # field k of every sample
        return tuple(Tensor.from_numpy(np.stack(_field_arrays(values, k, owner)))
                     for k, values in enumerate(columns))
        ### END SOLUTION

    def __repr__(self):
        try:
            size = f"{len(self)} samples"
        except NotImplementedError:
            size = "__len__ not implemented"
        return f"{type(self).__name__}({size})"

# %% [markdown]
# ### Check step 1
#
# `Squares` defines only `__len__` and `__getitem__`; its batches come from your default
# `__getitems__`. Sample `i` is `(i, i*i as a 2-element vector)`.

# %%
class Squares(Dataset):
    """Sample i: (i as a Python int, [i*i, -i*i] as a float32 array)."""

    def __len__(self):
        return 5

    def __getitem__(self, index):
        return index, np.array([index * index, -index * index], dtype=np.float32)


squares = Squares()
numbers_batch, vectors_batch = squares.__getitems__([3, 0, 4])
assert isinstance(numbers_batch, Tensor) and numbers_batch.tolist() == [3, 0, 4]
assert numbers_batch.dtype == np.int64                       # numpy's dtype for Python ints
assert vectors_batch.shape == (3, 2) and vectors_batch.dtype == np.float32
assert vectors_batch.tolist() == [[9.0, -9.0], [0.0, 0.0], [16.0, -16.0]]  # by hand
print(repr(squares), "->", numbers_batch, vectors_batch, sep="\n")
try:
    len(Dataset())
except NotImplementedError as err:
    print("NotImplementedError:", err)
else:
    raise AssertionError("Dataset() has no samples to count")
print("OK: the default __getitems__ stacks each field of the samples")

# %% [markdown]
# ## Step 2: `TensorDataset`, a data set held in memory
#
# When the whole data set fits in memory, it is simply a few tensors whose first
# dimension is the sample index: `images` of shape `(N, 1, 8, 8)` and `labels` of shape
# `(N,)`. `TensorDataset(images, labels)` holds them (in the attribute `tensors`) and
# serves sample `i` as `(images[i], labels[i])`.
#
# The constructor is given. Its rules:
#
# - at least one tensor (`ValueError` otherwise);
# - each argument is a `Tensor` or a numpy array; arrays are wrapped with
#   `Tensor.from_numpy`, so they are not copied and `int64` labels stay `int64`
#   (`Tensor(labels)` would turn them into float32); anything else is a `TypeError`;
# - every tensor is at least 1-D and all share the first dimension; otherwise a
#   `ValueError` that lists every tensor's shape.
#
# You write the two fetches. `__getitem__(i)` takes an integer (negative counts from the
# end, as for lists) and returns a tuple of Tensors, one per held tensor: row `i` of each
# (write `tensor.data[position, ...]`: the `...` keeps a 0-d array for a 1-D tensor
# instead of a numpy scalar). The given first line, `_check_index`, turns a bad index
# into a clear `TypeError` or `IndexError`.
#
# The point of this class is `__getitems__(indices)`: instead of one `__getitem__` per
# sample, it gathers a whole batch with *one fancy-indexing call per tensor*,
# `tensor.data[positions]`, with no Python loop over samples. The given first line,
# `_check_indices`, validates the index array in one vectorised pass and returns it as
# an integer array.

# %% nbgrader={"grade": false, "grade_id": "tensor-dataset", "locked": false, "schema_version": 3, "solution": true}
#| export
class TensorDataset(Dataset):
    """A data set held as tensors that share their first dimension (the sample index).

    TensorDataset(images, labels): sample i is (images[i], labels[i]). Arguments are Tensors
    or numpy arrays (wrapped with Tensor.from_numpy: no copy, dtype kept). __getitems__
    gathers a batch with one fancy-indexing call per tensor.
    """

    def __init__(self, *tensors):
        """Hold tensors (at least one, each at least 1-D, all with the same first dimension)."""
        self.tensors = _dataset_tensors(tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        """Sample index as a tuple with one Tensor per held tensor (views, not copies)."""
        position = _check_index(index, len(self))
        ### BEGIN SOLUTION
        # `..., ` keeps the result an ndarray (a 0-d view for a 1-D tensor), never a numpy scalar
        return tuple(Tensor.from_numpy(tensor.data[position, ...]) for tensor in self.tensors)
        ### END SOLUTION

    def __getitems__(self, indices):
        """The samples at indices: one batched Tensor per held tensor, in one gather each."""
        positions = _check_indices(indices, len(self))
        ### BEGIN SOLUTION
        return tuple(Tensor.from_numpy(tensor.data[positions]) for tensor in self.tensors)
        ### END SOLUTION

    def __repr__(self):
        described = ", ".join(f"{tensor.shape} {tensor.dtype}" for tensor in self.tensors)
        return f"TensorDataset({len(self)} samples; tensors: {described})"

# %% [markdown]
# ### Check step 2

# %%
xs = np.arange(12, dtype=np.float32).reshape(6, 2)   # sample i: [2i, 2i+1]
ys = np.array([0, 1, 2, 0, 1, 2])                   # int64
pairs = TensorDataset(xs, ys)
assert len(pairs) == 6 and pairs.tensors[1].dtype == np.int64
x3, y3 = pairs[3]
assert x3.tolist() == [6.0, 7.0] and y3.item() == 0 and y3.shape == ()
assert pairs[-1][0].tolist() == [10.0, 11.0]
bx, by = pairs.__getitems__([5, 0, 2])
assert bx.tolist() == [[10.0, 11.0], [0.0, 1.0], [4.0, 5.0]] and by.tolist() == [2, 0, 2]
print(repr(pairs))
for bad in (lambda: TensorDataset(xs, ys[:5]), lambda: pairs[6], lambda: TensorDataset()):
    try:
        bad()
    except (ValueError, IndexError) as err:
        print(f"{type(err).__name__}: {err}")
    else:
        raise AssertionError("expected an error")
print("OK: TensorDataset serves samples and gathers batches")

# %% [markdown]
# ## Step 3: the `DataLoader`
#
# `DataLoader(dataset, batch_size=32, shuffle=False, seed=None, drop_last=False)` turns a
# data set into an iterable of batches. Each `for batch in loader` is one *epoch*; every
# batch is a tuple of Tensors, e.g. `(images, labels)` with shapes `(B, 1, 8, 8)` and
# `(B,)`, fetched with **one** call to `dataset.__getitems__(indices)`.
#
# - `len(loader)` is the number of batches per epoch: `ceil(N / batch_size)`, or
#   `N // batch_size` with `drop_last=True` (the last, partial batch is skipped). An empty
#   data set has zero batches.
# - `batch_size` must be a positive integer (`ValueError` otherwise).
# - Without `shuffle` the order is `0 .. N-1`. With `shuffle`, each epoch uses a *fresh*
#   permutation drawn from one `np.random.Generator` made from `seed` when the loader is
#   built (`seed` is `None`, an int or a Generator, as for `Tensor.randn`). So two loaders
#   built with the same seed yield the same sequence of epochs (reproducible training),
#   while consecutive epochs of one loader differ.
#
# The constructor (given) checks its arguments and makes the Generator, `self._rng`. You
# implement `__len__` and `__iter__`, one epoch. `__iter__` draws the epoch's order
# *when `iter()` is called* (a permutation of `0 .. N-1` from `self._rng`, or
# `np.arange(N)` without shuffle), then returns a generator expression over the start of
# each batch, `range(0, len(self) * self.batch_size, self.batch_size)`, that fetches the
# slice `order[start:start + batch_size]` with one `self.dataset.__getitems__` call. (A
# `yield` in `__iter__` itself would make it a generator function, which would draw the
# order only at the first `next()`.) Pass each batch through the given `_as_batch`, which
# checks that what `__getitems__` returned is a tuple of Tensors or arrays.

# %% nbgrader={"grade": false, "grade_id": "dataloader", "locked": false, "schema_version": 3, "solution": true}
#| export
class DataLoader:
    """Iterate over a dataset in batches: each step yields a tuple of batched Tensors.

    DataLoader(dataset, batch_size=32, shuffle=False, seed=None, drop_last=False).
    len(loader) is the number of batches per epoch. shuffle draws a fresh permutation for
    every epoch from one np.random.Generator made from seed (None, int or Generator).
    """

    def __init__(self, dataset, batch_size=32, shuffle=False, seed=None, drop_last=False):
        self.dataset = _check_dataset(dataset)
        self.batch_size = _check_batch_size(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.drop_last = bool(drop_last)
        self._rng = np.random.default_rng(seed)  # returns a Generator argument unchanged

    def __len__(self):
        """Batches per epoch: ceil(N / batch_size), or N // batch_size with drop_last."""
        ### BEGIN SOLUTION
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1
        ### END SOLUTION

    def __iter__(self):
        """One epoch: its order (a fresh permutation with shuffle, else 0..N-1) is drawn now,
        its len(self) batches, __getitems__ of consecutive batch_size slices, are fetched lazily."""
        ### BEGIN SOLUTION
        size = len(self.dataset)
        order = self._rng.permutation(size) if self.shuffle else np.arange(size)
        starts = range(0, len(self) * self.batch_size, self.batch_size)
        return (_as_batch(self.dataset.__getitems__(order[start:start + self.batch_size])) for start in starts)
        ### END SOLUTION

    def __repr__(self):
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed!r}, drop_last={self.drop_last}; "
                f"{len(self)} batches per epoch)")

# %% [markdown]
# ### Check step 3

# %%
ten = TensorDataset(np.arange(10, dtype=np.float32) * 10, np.arange(10) % 3)
plain = DataLoader(ten, batch_size=4)
assert len(plain) == 3 and len(DataLoader(ten, batch_size=4, drop_last=True)) == 2
assert [xb.tolist() for xb, _ in plain] == [[0.0, 10.0, 20.0, 30.0], [40.0, 50.0, 60.0, 70.0],
                                           [80.0, 90.0]]                 # same as the worked example
shuffled_a = DataLoader(ten, batch_size=4, shuffle=True, seed=0)
shuffled_b = DataLoader(ten, batch_size=4, shuffle=True, seed=0)
epoch_1 = np.concatenate([xb.data for xb, _ in shuffled_a]) / 10
epoch_2 = np.concatenate([xb.data for xb, _ in shuffled_a]) / 10
assert np.array_equal(epoch_1, np.concatenate([xb.data for xb, _ in shuffled_b]) / 10)  # same seed
assert sorted(epoch_1.tolist()) == list(range(10)) and not np.array_equal(epoch_1, epoch_2)
print(repr(shuffled_a))
print("epoch 1 order:", epoch_1.astype(int).tolist(), "epoch 2 order:", epoch_2.astype(int).tolist())
print("Squares through the default __getitems__:", [b[0].tolist() for b in DataLoader(squares, 2)])
print("OK: batching, len, drop_last and seeded per-epoch shuffling work")

# %% [markdown]
# ## Step 4: a real data set, the handwritten digits
#
# scikit-learn ships a small data set inside its package: 1797 grayscale images of the
# handwritten digits 0-9, each 8x8 pixels with values 0 to 16
# (`sklearn.datasets.load_digits`). It is small enough to train on in seconds, and it is
# already on disk, so nothing is downloaded. `load_digits(split="train", flatten=False)`
# returns a `TensorDataset(images, labels)`:
#
# - images as float32 scaled to `[0, 1]` (divided by 16), shape `(N, 1, 8, 8)`
#   (batch, channel, height, width), or `(N, 64)` with `flatten=True` for a dense layer;
# - labels as int64 in `0 .. 9` (`DIGITS_CLASSES = 10`).
#
# **The split.** A test score means something only if the test set is fixed (the same
# images for everyone, on every run) and was never trained on. It should also keep every
# class's share, so that no digit is over- or under-represented in the test. So the split
# is *stratified* and *seeded*, and you implement it as `stratified_split(labels,
# test_fraction, seed)`:
#
# 1. for each class `c` separately, take the indices of the samples with label `c`
#    (`n_c` of them) and permute them with `np.random.default_rng(seed + c).permutation`;
# 2. the first `round(test_fraction * n_c)` indices of that permutation go to the test
#    split, the others to train;
# 3. return `(train, test)`, each sorted ascending, so a split lists the samples in
#    scikit-learn's order whatever the permutation was.
#
# Then `load_digits` (its `split` argument is checked for you): it reads scikit-learn's
# data, picks the split's indices with `stratified_split(labels, DIGITS_TEST_FRACTION,
# DIGITS_SPLIT_SEED)` (0.2 and 0), or all 1797 in scikit-learn's order for
# `split="all"`, and builds the images and labels described above. The check cell below prints the resulting sizes and per-class
# counts. (scikit-learn is imported inside `load_digits`, because importing it takes a
# noticeable time and most users of this module never call it.)

# %% nbgrader={"grade": false, "grade_id": "digits", "locked": false, "schema_version": 3, "solution": true}
#| export
DIGITS_CLASSES = 10
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLITS = ("train", "test", "all")


def stratified_split(labels, test_fraction, seed):
    """(train, test): sorted index arrays of a fixed, per-class random split of labels.

    labels: 1-D non-negative integer class labels. For each class c with n_c samples, the
    first round(test_fraction * n_c) indices of np.random.default_rng(seed + c).permutation
    of that class's indices go to test, the rest to train.
    """
    labels = _split_labels(labels, test_fraction)
    ### BEGIN SOLUTION
    test_parts = [np.empty(0, dtype=np.int64)]
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        permuted = np.random.default_rng(seed + int(c)).permutation(members)
        test_parts.append(permuted[:round(test_fraction * members.size)])
    test = np.sort(np.concatenate(test_parts))
    train = np.setdiff1d(np.arange(labels.size), test)  # sorted, everything not in test
    return train, test
    ### END SOLUTION


def load_digits(split="train", flatten=False):
    """The 8x8 handwritten digits shipped inside scikit-learn, as TensorDataset(images, labels).

    1797 grayscale images of the digits 0-9 (sklearn.datasets.load_digits, pixel values
    0..16; nothing is downloaded). Images: float32 in [0, 1] (divided by 16), shape
    (N, 1, 8, 8), or (N, 64) if flatten. Labels: int64 in 0..DIGITS_CLASSES-1.

    split: "train", "test" or "all" (all 1797, in sklearn's order). The split is fixed and
    stratified: stratified_split(labels, DIGITS_TEST_FRACTION=0.2, DIGITS_SPLIT_SEED=0), i.e.
    for each class c the first round(0.2 * n_c) indices of
    np.random.default_rng(0 + c).permutation(indices of class c) are test, the rest train;
    each split lists its sklearn indices in ascending order. Sizes: 1438 train, 359 test.
    Per class 0..9: train 142 146 142 146 145 146 145 143 139 144,
                    test   36  36  35  37  36  36  36  36  35  36.
    """
    _check_choice("split", split, DIGITS_SPLITS)
    ### BEGIN SOLUTION
    from sklearn.datasets import load_digits as sklearn_load_digits  # slow import: only when needed

    digits = sklearn_load_digits()
    if split == "all":
        indices = np.arange(digits.target.size)
    else:
        train, test = stratified_split(digits.target, DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED)
        indices = train if split == "train" else test
    images = (digits.images[indices] / 16).astype(np.float32)
    images = images.reshape(-1, 64) if flatten else images.reshape(-1, 1, 8, 8)
    labels = digits.target[indices].astype(np.int64)
    return TensorDataset(Tensor.from_numpy(images), Tensor.from_numpy(labels))
    ### END SOLUTION

# %% [markdown]
# ### Check step 4
#
# The cell prints the split sizes and, per class, how many images each split holds and the
# test share (it should be close to 20% for every class).

# %%
digits_train, digits_test = load_digits("train"), load_digits("test")
train_labels, test_labels = digits_train.tensors[1].data, digits_test.tensors[1].data
print(f"train: {len(digits_train)} images, test: {len(digits_test)} images, "
      f"total {len(digits_train) + len(digits_test)}")
print(repr(digits_train))
train_counts = np.bincount(train_labels, minlength=DIGITS_CLASSES)
test_counts = np.bincount(test_labels, minlength=DIGITS_CLASSES)
print("class  train  test  test share")
for c in range(DIGITS_CLASSES):
    share = test_counts[c] / (train_counts[c] + test_counts[c])
    print(f"{c:5d}  {train_counts[c]:5d}  {test_counts[c]:4d}  {share:10.1%}")
images_train = digits_train.tensors[0].data
assert images_train.shape == (len(digits_train), 1, 8, 8) and images_train.dtype == np.float32
assert 0.0 <= images_train.min() and images_train.max() <= 1.0 and train_labels.dtype == np.int64
assert load_digits("test", flatten=True).tensors[0].shape == (len(digits_test), 64)
assert np.array_equal(load_digits("test").tensors[0].data, digits_test.tensors[0].data)  # fixed
print("OK: digits loaded with a fixed, stratified split")

# %% [markdown]
# ## Step 5: CIFAR-10 from its official files
#
# CIFAR-10 (60000 colour images of 32x32 pixels in 10 classes) is too large to ship with
# the course, so `load_cifar10(root, split="train")` reads it from a folder the user
# prepared: the official **"CIFAR-10 python version"** archive
# (`cifar-10-python.tar.gz` from https://www.cs.toronto.edu/~kriz/cifar.html), extracted.
# It creates a folder `cifar-10-batches-py` holding `data_batch_1` .. `data_batch_5`
# (10000 training images each) and `test_batch` (10000 test images). Nothing is
# downloaded at run time: when a file is missing, the `FileNotFoundError` says which files
# were looked for, where, and how to get them. `root` may be the `cifar-10-batches-py`
# folder itself or the folder that contains it.
#
# **The format.** Each batch file is a Python pickle of a dict with bytes keys, read with
# `pickle.load(f, encoding="bytes")` (the files were written by Python 2):
#
# - `b"data"`: a uint8 array of shape `(N, 3072)`. Row `n` is one image, *channel-major*:
#   the 1024 red values first, then 1024 green, then 1024 blue; within a channel the
#   32x32 pixels are row-major. So pixel `(channel c, row y, column x)` of image `n` is
#   `data[n, c * 1024 + y * 32 + x]`, which is exactly what `data.reshape(N, 3, 32, 32)`
#   reads: no transpose needed for the `(N, C, H, W)` layout;
# - `b"labels"`: a list of `N` ints in `0 .. 9`;
# - also `b"batch_label"` and `b"filenames"`, which the loader does not need.
#
# The file handling is given, in the given-code notebook `nbs/05_dataloader.cifar10_files.ipynb`:
# `_cifar10_folder` finds the folder (the given first lines of `load_cifar10` call it),
# `_unpickle_batch(path)` reads one file, and `_check_cifar10_batch(batch, path)` checks
# what it holds (a dict without the keys, data of the wrong dtype or shape, or labels that
# do not match are a `ValueError` naming the file) and returns `(data, labels)`: the uint8
# rows `(N, 3072)` and int64 labels. You implement the rest of `load_cifar10`: read and
# check the split's batches in order (train: batches 1 to 5; test: `test_batch`),
# concatenate them, reshape the pixels to `(N, 3, 32, 32)` and scale them to float32 in
# `[0, 1]` (divide by 255), and return a `TensorDataset(images, labels)`.
#
# A systems note: the images stay uint8 until *after* the batches are concatenated, and
# the division is done in place. The full training set is 50000 x 3072 bytes as uint8
# and four times that as float32, so every avoidable float32 temporary costs a lot of
# memory.
#
# A safety note: unpickling can run arbitrary code. Only load batch files from the
# official archive or from a source you trust.

# %% nbgrader={"grade": false, "grade_id": "cifar10", "locked": false, "schema_version": 3, "solution": true}
#| export
_all_ = ["CIFAR10_CLASSES", "CIFAR10_FOLDER", "CIFAR10_FILES"]  # defined in cifar10_files, public here too
_CIFAR10_IMAGE_SHAPE = (3, 32, 32)  # channels (R, G, B), rows, columns


def load_cifar10(root, split="train"):
    """CIFAR-10 from the official python-version batch files, as TensorDataset(images, labels).

    root: the extracted cifar-10-batches-py folder, or the folder containing it. split:
    "train" (data_batch_1..5 concatenated in order, 50000 images) or "test" (test_batch,
    10000). Images: float32 (N, 3, 32, 32) in [0, 1], channels R, G, B; labels int64.
    Missing files: FileNotFoundError (nothing is downloaded); damaged files: ValueError.
    """
    _check_choice("split", split, tuple(CIFAR10_FILES))
    folder = _cifar10_folder(root, CIFAR10_FILES[split])
    ### BEGIN SOLUTION
    paths = [folder / name for name in CIFAR10_FILES[split]]
    decoded = [_check_cifar10_batch(_unpickle_batch(path), path) for path in paths]
    pixels = np.concatenate([data for data, _ in decoded])  # still uint8: (50000, 3072) for train
    images = pixels.reshape(-1, *_CIFAR10_IMAGE_SHAPE).astype(np.float32)
    images /= 255  # in place: no second float32 copy
    labels = np.concatenate([batch_labels for _, batch_labels in decoded])
    return TensorDataset(Tensor.from_numpy(images), Tensor.from_numpy(labels))
    ### END SOLUTION

# %% [markdown]
# ### Check step 5
#
# The real CIFAR-10 is not part of the course files, so this check writes a tiny copy in
# exactly the official format to a temporary folder: five training batches of 2 images
# and a test batch of 3, with random pixels. `write_cifar10_like` is reused by the graded
# tests below.

# %%
import pickle
import tempfile
from pathlib import Path


def write_cifar10_like(root, train_sizes=(2, 2, 2, 2, 2), test_size=3, seed=0):
    """Write root/cifar-10-batches-py in the official format; return {file name: (data, labels)}."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / CIFAR10_FOLDER
    folder.mkdir(parents=True)
    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
    written = {}
    for name, size in zip(names, [*train_sizes, test_size]):
        data = rng.integers(0, 256, size=(size, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=size).tolist()
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(size)]}
        with open(folder / name, "wb") as file:
            pickle.dump(batch, file)
        written[name] = (data, labels)
    return written


with tempfile.TemporaryDirectory() as tmp:
    written = write_cifar10_like(tmp)
    cifar_train = load_cifar10(tmp, "train")                        # the parent folder
    cifar_test = load_cifar10(Path(tmp) / CIFAR10_FOLDER, "test")   # the folder itself
    images, labels = cifar_train.tensors
    data_1 = written["data_batch_1"][0]
    assert images.shape == (10, 3, 32, 32) and images.dtype == np.float32
    assert images.data[0, 1, 0, 2] == np.float32(data_1[0, 1024 + 2]) / 255  # green, row 0, col 2
    assert images.data[1, 2, 31, 31] == np.float32(data_1[1, 3071]) / 255    # blue, last pixel
    assert labels.tolist() == sum((written[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    assert cifar_test.tensors[1].tolist() == written["test_batch"][1]
    print(repr(cifar_train))
    try:
        load_cifar10(Path(tmp) / "elsewhere")
    except FileNotFoundError as err:
        print("FileNotFoundError:", err)
    else:
        raise AssertionError("a missing folder has no CIFAR-10 files")
print("OK: CIFAR-10 batches decoded, in order, from both forms of root")

# %% [markdown]
# ## Graded tests
#
# The cells below are what the autograder runs. Their expected values come from
# independent computations (numpy on the raw arrays, hand-worked numbers), not from the
# functions under test.

# %% nbgrader={"grade": true, "grade_id": "test-dataset-protocol", "locked": true, "points": 2, "schema_version": 3, "solution": false}
class Pairs(Dataset):
    """Sample i: (i * ones((2, 3)) as float32, i % 4 as a Python int)."""

    def __len__(self):
        return 7

    def __getitem__(self, index):
        return np.full((2, 3), index, dtype=np.float32), index % 4


grid_batch, mod_batch = Pairs().__getitems__(np.array([6, 1, 1]))
assert isinstance(grid_batch, Tensor) and grid_batch.shape == (3, 2, 3)
np.testing.assert_array_equal(grid_batch.data[:, 0, 0], [6.0, 1.0, 1.0])
assert mod_batch.tolist() == [2, 1, 1]


class Ragged(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        return np.zeros(index + 1), 0


try:
    Ragged().__getitems__([0, 1])
except ValueError as err:
    assert "(1,)" in str(err) and "(2,)" in str(err)
else:
    raise AssertionError("fields of different shapes must raise ValueError")
try:
    Dataset()[0]
except NotImplementedError as err:
    assert "Dataset" in str(err)
else:
    raise AssertionError("Dataset()[0] must raise NotImplementedError")

# %% nbgrader={"grade": true, "grade_id": "test-tensor-dataset", "locked": true, "points": 2, "schema_version": 3, "solution": false}
rng = np.random.default_rng(5)
feats = rng.standard_normal((9, 3, 2)).astype(np.float32)
labs = rng.integers(0, 4, size=9)
ds = TensorDataset(Tensor(feats), labs)
assert len(ds) == 9 and ds.tensors[1].dtype == np.int64
one_x, one_y = ds[4]
np.testing.assert_array_equal(one_x.data, feats[4])
assert one_y.item() == labs[4] and one_y.dtype == np.int64
picks = [8, 0, 8, -1, 3]
gx, gy = ds.__getitems__(picks)
np.testing.assert_array_equal(gx.data, feats[picks])
np.testing.assert_array_equal(gy.data, labs[picks])
for bad, error in ((lambda: TensorDataset(feats, labs[:8]), ValueError),
                   (lambda: TensorDataset(), ValueError),
                   (lambda: TensorDataset([1, 2, 3]), TypeError),
                   (lambda: ds[9], IndexError),
                   (lambda: ds.__getitems__([0, 12]), IndexError)):
    try:
        bad()
    except error:
        pass
    else:
        raise AssertionError(f"expected {error.__name__}")
try:
    TensorDataset(feats, labs[:8])
except ValueError as err:
    assert "(9, 3, 2)" in str(err) and "(8,)" in str(err)

# %% nbgrader={"grade": true, "grade_id": "test-dataloader", "locked": true, "points": 3, "schema_version": 3, "solution": false}
seventeen = TensorDataset(np.arange(17, dtype=np.float32), np.arange(17) * 2)
for size, drop, expected in ((5, False, 4), (5, True, 3), (17, False, 1), (20, True, 0), (1, False, 17)):
    assert len(DataLoader(seventeen, size, drop_last=drop)) == expected
sizes = [len(xb) for xb, _ in DataLoader(seventeen, 5)]
assert sizes == [5, 5, 5, 2]
assert [len(xb) for xb, _ in DataLoader(seventeen, 5, drop_last=True)] == [5, 5, 5]
ordered = np.concatenate([xb.data for xb, _ in DataLoader(seventeen, 4)])
np.testing.assert_array_equal(ordered, np.arange(17))
loader_a = DataLoader(seventeen, 4, shuffle=True, seed=11)
loader_b = DataLoader(seventeen, 4, shuffle=True, seed=11)
epochs_a = [np.concatenate([yb.data for _, yb in loader_a]) for _ in range(3)]
epochs_b = [np.concatenate([yb.data for _, yb in loader_b]) for _ in range(3)]
for ea, eb in zip(epochs_a, epochs_b):
    np.testing.assert_array_equal(ea, eb)
    np.testing.assert_array_equal(np.sort(ea), np.arange(17) * 2)
assert not np.array_equal(epochs_a[0], epochs_a[1])
expected_first = np.random.default_rng(11).permutation(17)[:4]   # the documented draw
np.testing.assert_array_equal(next(iter(DataLoader(seventeen, 4, shuffle=True, seed=11)))[0].data,
                              expected_first)
assert len(DataLoader(TensorDataset(np.zeros((0, 2))), 3)) == 0
assert list(DataLoader(TensorDataset(np.zeros((0, 2))), 3)) == []
default_batches = [b[1].tolist() for b in DataLoader(Pairs(), 3)]
assert default_batches == [[0, 1, 2], [3, 0, 1], [2]]
for bad in (0, -2, 2.5, True):
    try:
        DataLoader(seventeen, bad)
    except ValueError:
        pass
    else:
        raise AssertionError(f"batch_size={bad!r} must raise ValueError")

# %% nbgrader={"grade": true, "grade_id": "test-digits", "locked": true, "points": 3, "schema_version": 3, "solution": false}
from sklearn.datasets import load_digits as sklearn_digits

reference = sklearn_digits()
tr, te, al = load_digits("train"), load_digits("test"), load_digits("all")
assert len(tr) + len(te) == len(al) == 1797
expected_test = [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]   # round(0.2 * n_c), n_c from bincount
np.testing.assert_array_equal(np.bincount(te.tensors[1].data, minlength=10), expected_test)
test_idx = np.sort(np.concatenate([
    np.random.default_rng(c).permutation(np.flatnonzero(reference.target == c))[:expected_test[c]]
    for c in range(10)]))
in_test = np.zeros(1797, dtype=bool)
in_test[test_idx] = True
train_idx = np.flatnonzero(~in_test)
np.testing.assert_array_equal(te.tensors[0].data[:, 0], reference.images[test_idx] / 16)
np.testing.assert_array_equal(tr.tensors[0].data[:, 0], reference.images[train_idx] / 16)
np.testing.assert_array_equal(tr.tensors[1].data, reference.target[train_idx])
assert tr.tensors[0].dtype == np.float32 and tr.tensors[1].dtype == np.int64
assert load_digits("train", flatten=True).tensors[0].shape == (1438, 64)
train_part, test_part = stratified_split(np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]), 0.4, 3)
assert len(test_part) == 4 and sorted(np.r_[train_part, test_part].tolist()) == list(range(10))
try:
    load_digits("validation")
except ValueError as err:
    assert "'train'" in str(err) and "'test'" in str(err)
else:
    raise AssertionError("an unknown split must raise ValueError")

# %% nbgrader={"grade": true, "grade_id": "test-cifar10", "locked": true, "points": 3, "schema_version": 3, "solution": false}
with tempfile.TemporaryDirectory() as tmp:
    raw = write_cifar10_like(tmp, train_sizes=(3, 1, 2, 1, 2), test_size=4, seed=9)
    train_set = load_cifar10(tmp)
    every = np.concatenate([raw[f"data_batch_{k}"][0] for k in range(1, 6)])
    oracle = every.reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(train_set.tensors[0].data, oracle)
    assert train_set.tensors[0].data[2, 1, 0, 2] == np.float32(every[2, 1024 + 2]) / 255
    assert train_set.tensors[0].data[4, 2, 3, 5] == np.float32(every[4, 2048 + 3 * 32 + 5]) / 255
    assert train_set.tensors[1].dtype == np.int64
    assert load_cifar10(Path(tmp) / CIFAR10_FOLDER, "test").tensors[1].tolist() == raw["test_batch"][1]
    (Path(tmp) / CIFAR10_FOLDER / "data_batch_4").unlink()
    try:
        load_cifar10(tmp)
    except FileNotFoundError as err:
        assert "data_batch_4" in str(err) and "CIFAR-10 python version" in str(err)
    else:
        raise AssertionError("a missing batch must raise FileNotFoundError")
    with open(Path(tmp) / CIFAR10_FOLDER / "test_batch", "wb") as file:
        pickle.dump({b"data": np.zeros((2, 100), dtype=np.uint8), b"labels": [0, 1]}, file)
    try:
        load_cifar10(tmp, "test")
    except ValueError as err:
        assert "test_batch" in str(err)
    else:
        raise AssertionError("a batch of the wrong shape must raise ValueError")

# %% [markdown]
# ## Systems analysis: why batching and vectorised fetching matter
#
# A training step costs the model's forward and backward pass *plus* the time to fetch
# its batch. Two choices decide the fetching cost:
#
# 1. **Batch size**: every batch pays a fixed cost (Python calls, creating Tensors,
#    validating indices), so with batch size 1 that cost is paid for every sample.
# 2. **How a batch is gathered**: `TensorDataset.__getitems__` gathers a batch with one
#    fancy-indexing call per tensor; the default `Dataset.__getitems__` calls
#    `__getitem__` once per sample and stacks the results, so its cost grows with the
#    number of samples no matter how large the batch is.
#
# The cell below iterates over one epoch of the digits training split in each of the six
# combinations (batch size 1, 32, 256; vectorised or per-item), with shuffling on as in
# training. `PerItem` wraps the same `TensorDataset` but does not override
# `__getitems__`, so it takes the per-item default. Module 01's timing helpers
# (`tinytorch.utils.timing`) do the measuring: each raw sample lasts at least a few
# milliseconds (short epochs are repeated inside one sample), the configurations are
# measured in alternating rounds, and the median over rounds is reported with its
# IQR/median as a noise indicator.

# %%
from tinytorch.utils.timing import (describe_environment, environment, measure_interleaved, measure_timer,
                                   required_sample_ns)


class PerItem(Dataset):
    """The samples of a dataset, fetched one __getitem__ at a time (the default __getitems__)."""

    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, index):
        return self.inner[index]


def run_epoch(loader):
    """Iterate over one epoch, touching every batch; the number of samples seen."""
    seen = 0
    for _, batch_labels in loader:
        seen += len(batch_labels)
    return seen


timer = measure_timer()
MIN_SAMPLE_NS = required_sample_ns(timer.overhead_ns, floor_ns=5_000_000)
train_set = load_digits("train")
per_item_set = PerItem(train_set)
loaders = {}
for size in (1, 32, 256):
    loaders[(size, "vectorised")] = DataLoader(train_set, size, shuffle=True, seed=0)
    loaders[(size, "per-item")] = DataLoader(per_item_set, size, shuffle=True, seed=0)
for loader in loaders.values():
    assert run_epoch(loader) == len(train_set)   # both paths see every sample once per epoch

print(describe_environment(environment(timer, MIN_SAMPLE_NS)))
epoch_timings = measure_interleaved({key: (lambda loader=loader: run_epoch(loader))
                                     for key, loader in loaders.items()},
                                    repeats=15, min_sample_ns=MIN_SAMPLE_NS)
medians = {key: timing.median_ns for key, timing in epoch_timings.items()}
print(f"one epoch = {len(train_set)} digits images")
print("batch  path        batches  epoch median (ms)  samples/s   IQR/median")
for (size, path), timing in epoch_timings.items():
    median = timing.median_ns
    flag = f"  {timing.warning}" if timing.warning else ""
    print(f"{size:5d}  {path:10s}  {len(loaders[(size, path)]):7d}  {median / 1e6:17.2f}  "
          f"{len(train_set) / (median / 1e9):9.0f}  {timing.iqr_over_median:10.1%}{flag}")
for size in (1, 32, 256):
    ratio = medians[(size, "per-item")] / medians[(size, "vectorised")]
    print(f"batch {size:3d}: per-item / vectorised epoch time = {ratio:.1f}x")
print(f"vectorised, batch 256 vs batch 1: "
      f"{medians[(1, 'vectorised')] / medians[(256, 'vectorised')]:.0f}x faster per epoch")

# %% [markdown]
# The cell above prints, for each configuration, the median epoch time and the
# throughput in samples per second. Things to look for in your own output:
#
# - **Batch size 1**: both paths pay the per-batch cost for every single image, so both
#   are slow. Even the vectorised path gains nothing: it gathers one row at a time.
# - **Larger batches, vectorised**: the per-batch cost is shared by 32 or 256 images and
#   the gather itself is one compiled numpy call, so throughput rises steeply with the
#   batch size.
# - **Larger batches, per-item**: the Python call per sample remains (plus a `np.stack`
#   over many small arrays), so batching gains little or nothing; the gap between the two
#   paths grows with the batch size.
#
# The lesson carries over to real systems: a data set that can gather a batch in one
# call (memory-mapped arrays, a pre-decoded tensor file) keeps the model fed; one that
# decodes sample by sample in Python needs worker processes or a faster format. Memory
# is the other side of the trade: the cell below computes, from the shapes alone, what
# holding each data set in memory costs.

# %%
digits_bytes = sum(tensor.data.nbytes for tensor in load_digits("all").tensors)
print(f"digits, all 1797 images as float32 + int64 labels: {digits_bytes / 1e6:.2f} MB (measured nbytes)")
cifar_train_images = 50_000 * 3 * 32 * 32      # number of pixel values in the CIFAR-10 training set
print(f"CIFAR-10 train pixels, computed from the shape: {cifar_train_images / 1e6:.0f} MB as uint8, "
      f"{4 * cifar_train_images / 1e6:.0f} MB as float32")

# %% [markdown]
# ## Summary
#
# - A `Dataset` has `__len__` and `__getitem__(i)`; its batch fetch `__getitems__(indices)`
#   defaults to one `__getitem__` per index followed by `np.stack` per field.
# - `TensorDataset(*tensors)` holds in-memory tensors with a shared first dimension and
#   gathers a batch with one fancy-indexing call per tensor.
# - `DataLoader(dataset, batch_size, shuffle, seed, drop_last)` cuts an epoch's order into
#   batches; `len(loader)` counts them; each `iter()` draws a fresh permutation from one
#   seeded Generator, so runs are reproducible and epochs differ.
# - `load_digits` gives the scikit-learn digits with a fixed, stratified, documented
#   80/20 split; `load_cifar10` reads the official CIFAR-10 python batches from a local
#   folder and explains how to get them when they are missing.
# - Measured: batching and vectorised gathering decide how fast a loader can feed a
#   model; your numbers are in the systems analysis above.
#
# Module 08 (training) uses these loaders to feed mini-batches to the model.
