# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 16: Compression
#
# > Model compression: magnitude pruning with masks, CSR sparse storage that really shrinks, channel pruning that really speeds up, low-rank factorisation and knowledge distillation, each measured in bytes, latency and accuracy.
#
# ## Why compression matters
#
# A trained network usually holds far more numbers than it needs. Many weights are close to
# zero, whole channels contribute little, weight matrices are nearly low-rank, and a smaller
# network can often learn to imitate a bigger one. Removing that redundancy makes a model
# smaller on disk, smaller in memory and, if done the right way, faster.
#
# "If done the right way" is the lesson of this module. Zeroing 90% of the weights changes
# nothing about speed or size while the zeros are still stored in a dense array: the same
# bytes are multiplied by the same BLAS kernel. Compression only pays when the *format*
# changes too: a sparse format that stores just the non-zeros (plus their indices), or
# smaller dense layers with fewer channels. Every technique below is therefore measured,
# not assumed: bytes, serialized size, latency and test accuracy with confidence intervals.

# %%
#| default_exp optimization.compression

# %% [markdown]
# ## The idea, with a small worked example
#
# Magnitude pruning keeps the weights with the largest absolute values. For the 2 x 3 matrix
# below and sparsity 0.5, three of the six weights become zero: the ones with |w| equal to
# 0.1, 0.2 and 0.3. The threshold is the 3rd smallest |w|; a weight survives when its |w| is
# larger than the threshold.

# %%
import numpy as np

w_example = np.array([[0.5, -0.1, 0.3],
                      [-0.2, 0.9, -0.6]], dtype=np.float32)
k_example = int(round(0.5 * w_example.size))                 # 3 weights to remove
threshold = np.sort(np.abs(w_example).ravel())[k_example - 1]  # 0.3
pruned_example = np.where(np.abs(w_example) > threshold, w_example, 0)
# By hand: 0.1, 0.2 and 0.3 go; 0.5, 0.9 and -0.6 stay.
assert np.array_equal(pruned_example, np.array([[0.5, 0, 0], [0, 0.9, -0.6]], dtype=np.float32))
print("threshold", threshold, "\npruned\n", pruned_example)

# %% [markdown]
# ## Step 1: magnitude pruning with masks
#
# `magnitude_prune(model, sparsity, scope)` returns a pruned **deep copy**; the original is
# untouched. It prunes the weight of every `Linear` and `Conv2d` (never biases):
#
# - `scope="layer"`: each weight loses exactly `round(sparsity * size)` entries, its own smallest.
# - `scope="global"`: one threshold over all weights together, so layers with many small
#   weights lose more. Exactly `round(sparsity * total)` entries go in all.
#
# Ties are broken by position (a stable sort), so the counts are exact. A layer that holds
# parameters but is not `Linear`/`Conv2d` is an error naming it: pruning never silently skips
# weights.
#
# Fine-tuning a pruned model would revive the zeros: the optimizer updates every weight. The
# `PruningMask` remembers which entries were kept (a boolean array per weight) and
# `MaskedOptimizer` re-applies it after every `step()`, so the pruned weights stay exactly zero.

# %%
#| export
import copy
import io
import math
import numbers
import operator

import numpy as np
import pandas as pd
import scipy.sparse
from scipy import stats

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Function, no_grad
from tinytorch.core.layers import Dropout, Linear, Module, Parameter, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Trainer
from tinytorch.data.loader import DataLoader, TensorDataset, load_digits
from tinytorch.models.zoo import build_model, evaluate, load_model
from tinytorch.optimization.quantization import quantize_model
from tinytorch.profiling.profiler import storage_bytes
from tinytorch.utils.timing import measure_interleaved

PRUNABLE = (Linear, Conv2d)


def _check_sparsity(sparsity, name="sparsity"):
    """sparsity as a float in [0, 1); ValueError showing the value otherwise."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real) or not 0.0 <= sparsity < 1.0:
        raise ValueError(
            f"{name} must be a float in [0, 1), got {sparsity!r}; it is the fraction of weights "
            "removed (1.0 would remove all of them)")
    return float(sparsity)


def prunable_layers(model):
    """[(name, layer)] of the Linear and Conv2d layers of model, in order.

    ValueError naming every other layer that holds parameters of its own: those would
    otherwise be skipped silently.
    """
    if not isinstance(model, Module):
        raise TypeError(f"expected a Module (e.g. Sequential(...)), got {type(model).__name__}")
    found, unsupported = [], []
    for name, layer in model.named_modules():
        if isinstance(layer, PRUNABLE):
            found.append((name or type(layer).__name__, layer))
        elif layer._parameters:
            unsupported.append(f"{name or '(root)'} ({type(layer).__name__})")
    if unsupported:
        raise ValueError(
            f"cannot compress layers with parameters of an unsupported type: {', '.join(unsupported)}; "
            "only Linear and Conv2d weights are handled; replace or remove those layers first")
    return found

# %% nbgrader={"grade": false, "grade_id": "prune-masks", "locked": false, "schema_version": 3, "solution": true}
#| export
def keep_mask(magnitudes, remove):
    """Boolean mask of magnitudes' shape: False at the `remove` smallest entries (ties by position)."""
    ### BEGIN SOLUTION
    flat = np.asarray(magnitudes).ravel()
    order = np.argsort(flat, kind="stable")
    keep = np.ones(flat.size, dtype=bool)
    keep[order[:remove]] = False
    return keep.reshape(np.shape(magnitudes))
    ### END SOLUTION


def layer_masks(weights, sparsity, scope="layer"):
    """[keep mask per weight array]: round(sparsity*size) removed per array ("layer"), or
    round(sparsity*total) removed below one threshold over all arrays ("global")."""
    sparsity = _check_sparsity(sparsity)
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    ### BEGIN SOLUTION
    if scope == "layer":
        return [keep_mask(np.abs(w), int(round(sparsity * w.size))) for w in weights]
    flat = np.concatenate([np.abs(w).ravel() for w in weights])
    keep = keep_mask(flat, int(round(sparsity * flat.size)))
    bounds = np.cumsum([0] + [w.size for w in weights])
    return [keep[start:stop].reshape(w.shape) for w, start, stop in zip(weights, bounds[:-1], bounds[1:])]
    ### END SOLUTION

# %% [markdown]
# Now use the masks. `PruningMask` holds `(name, Parameter, keep mask)` per pruned weight:
# `apply()` zeroes the masked-out entries in place and `sparsity()` is the fraction of them
# over all its weights. `MaskedOptimizer.step()` runs the wrapped optimizer, then re-applies
# the mask. `magnitude_prune` deep-copies the model, computes the masks of its
# `prunable_layers` weights with `layer_masks`, stores a `PruningMask` as the copy's
# `pruning_mask` and applies it. `sparsity_report` measures what is really zero, one row per
# weight plus a total. Your part: those method bodies and the two functions; the argument
# checks are given.

# %% nbgrader={"grade": false, "grade_id": "magnitude-prune", "locked": false, "schema_version": 3, "solution": true}
#| export
class PruningMask:
    """Which entries of each pruned weight are kept: [(name, Parameter, bool mask)].

    apply() multiplies every weight by its mask in place (pruned entries become exactly 0).
    """

    def __init__(self, entries):
        self.entries = [(name, param, np.asarray(mask, dtype=bool)) for name, param, mask in entries]
        for name, param, mask in self.entries:
            if mask.shape != param.shape:
                raise ValueError(f"mask for {name!r} has shape {mask.shape}, the weight has shape {param.shape}")

    def apply(self):
        """Zero the pruned entries of every weight, in place; returns self."""
        ### BEGIN SOLUTION
        for _, param, mask in self.entries:
            param.data[~mask] = 0
        return self
        ### END SOLUTION

    def sparsity(self):
        """Fraction of masked-out entries over all weights."""
        ### BEGIN SOLUTION
        total = sum(mask.size for _, _, mask in self.entries)
        return 1.0 - sum(int(mask.sum()) for _, _, mask in self.entries) / total
        ### END SOLUTION

    def __repr__(self):
        return f"PruningMask({len(self.entries)} weights, sparsity={self.sparsity():.3f})"


class MaskedOptimizer:
    """Wraps an optimizer: step() runs it, then re-applies the mask so pruned weights stay 0."""

    def __init__(self, optimizer, mask):
        if not isinstance(mask, PruningMask):
            raise TypeError(f"mask must be a PruningMask (model.pruning_mask), got {type(mask).__name__}")
        self.optimizer, self.mask = optimizer, mask

    lr = property(lambda self: self.optimizer.lr)

    def zero_grad(self):
        self.optimizer.zero_grad()

    def step(self):
        ### BEGIN SOLUTION
        self.optimizer.step()
        self.mask.apply()
        ### END SOLUTION

    def state_dict(self):
        return self.optimizer.state_dict()

    def load_state_dict(self, state):
        return self.optimizer.load_state_dict(state)

    def __repr__(self):
        return f"MaskedOptimizer({type(self.optimizer).__name__}, {self.mask!r})"


def magnitude_prune(model, sparsity, scope="layer"):
    """A deep copy of model with the smallest-|w| weights of every Linear/Conv2d set to 0.

    sparsity: float in [0, 1); scope: "layer" or "global". The copy's `pruning_mask`
    (a PruningMask) keeps the pruned weights at zero during fine-tuning (MaskedOptimizer).
    """
    sparsity = _check_sparsity(sparsity)
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    ### BEGIN SOLUTION
    pruned = copy.deepcopy(model)
    layers = prunable_layers(pruned)
    masks = layer_masks([layer.weight.data for _, layer in layers], sparsity, scope)
    pruned.pruning_mask = PruningMask(
        [(f"{name}.weight", layer.weight, mask) for (name, layer), mask in zip(layers, masks)]).apply()
    return pruned
    ### END SOLUTION


def sparsity_report(model):
    """DataFrame, one row per Linear/Conv2d weight plus a 'total' row: zeros, size, sparsity."""
    ### BEGIN SOLUTION
    rows = [(f"{name}.weight", int(np.count_nonzero(layer.weight.data == 0)), layer.weight.size)
            for name, layer in prunable_layers(model)]
    rows.append(("total", sum(r[1] for r in rows), sum(r[2] for r in rows)))
    frame = pd.DataFrame(rows, columns=["weight", "zeros", "size"])
    frame["sparsity"] = frame["zeros"] / frame["size"]
    return frame
    ### END SOLUTION

# %% [markdown]
# ### Check step 1
#
# The digits CNN from the model zoo, pruned per layer and globally. The original model must
# keep every weight; the counts of zeros must be exact; and after an optimizer step on a real
# batch the pruned entries must still be zero.

# %%
from tinytorch.models.zoo import load_model, evaluate

cnn = load_model("digits_cnn")
before = {name: p.data.copy() for name, p in cnn.named_parameters()}
per_layer = magnitude_prune(cnn, 0.7, scope="layer")
global_ = magnitude_prune(cnn, 0.7, scope="global")
print(sparsity_report(per_layer).to_string(index=False))
print(sparsity_report(global_).to_string(index=False))
assert all(np.array_equal(before[n], p.data) for n, p in cnn.named_parameters()), "original changed"
for _, layer in prunable_layers(per_layer):
    assert np.count_nonzero(layer.weight.data == 0) == round(0.7 * layer.weight.size)

images, labels = load_digits("train").tensors
optimizer = MaskedOptimizer(Adam(per_layer.parameters(), lr=1e-2), per_layer.pruning_mask)
loss = CrossEntropyLoss()(per_layer(Tensor.from_numpy(images.data[:64])), Tensor.from_numpy(labels.data[:64]))
optimizer.zero_grad()
loss.backward()
optimizer.step()
for _, param, mask in per_layer.pruning_mask.entries:
    assert np.all(param.data[~mask] == 0)
print(per_layer.pruning_mask, optimizer)
print("OK: exact pruning counts, original untouched, masks survive an optimizer step")

# %% [markdown]
# ## Step 2: sparse storage that really shrinks (CSR)
#
# A pruned dense array still stores every zero. **CSR** (compressed sparse row) stores, for a
# matrix with `R` rows:
#
# - `data`: the non-zero values (float32, 4 bytes each),
# - `indices`: the column of each value (int32, 4 bytes each),
# - `indptr`: `R + 1` offsets; row `r`'s values are `data[indptr[r]:indptr[r+1]]`.
#
# So CSR costs `8 * nnz + 4 * (R + 1)` bytes against `4 * R * C` dense. It is smaller only when
# `nnz < (4RC - 4(R+1)) / 8`, i.e. when the **sparsity exceeds about one half**
# (`0.5 + (R+1)/(2RC)` exactly): every kept value pays for its 4-byte index. Below that
# break-even, "sparse" storage is *bigger* than dense.
#
# `SparseLinear` keeps its weight as the CSR of `weight.T` (one row per output feature) and
# computes `y = (W^T x^T)^T + b` with scipy's CSR-times-dense product. `SparseConv2d` does the
# same with the `(O, C*kh*kw)` weight matrix and an im2col view of the input. Both define
# `nbytes_total()`, so the profiler's `storage_bytes` counts their indices too.

# %% nbgrader={"grade": false, "grade_id": "csr-format", "locked": false, "schema_version": 3, "solution": true}
#| export
def to_csr(matrix):
    """CSR arrays of a 2-D array: (data float32, indices int32, indptr int32), row-major order."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise ValueError(f"to_csr expects a 2-D array, got shape {matrix.shape}; reshape it first")
    ### BEGIN SOLUTION
    rows, cols = np.nonzero(matrix)
    data = matrix[rows, cols].astype(np.float32)
    indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=matrix.shape[0]), out=indptr[1:])
    return data, cols.astype(np.int32), indptr
    ### END SOLUTION


def csr_nbytes(rows, nnz, value_bytes=4, index_bytes=4):
    """Bytes of a CSR matrix with `rows` rows and nnz stored values."""
    ### BEGIN SOLUTION
    return nnz * (value_bytes + index_bytes) + (rows + 1) * index_bytes
    ### END SOLUTION


def break_even_sparsity(rows, cols, value_bytes=4, index_bytes=4):
    """Sparsity above which CSR (values + int indices + indptr) is smaller than the dense array."""
    ### BEGIN SOLUTION
    dense = rows * cols * value_bytes
    max_nnz = (dense - (rows + 1) * index_bytes) / (value_bytes + index_bytes)
    return 1.0 - max_nnz / (rows * cols)
    ### END SOLUTION

# %% [markdown]
# Your part in the cell below: the two sparse forward passes (scipy's CSR matrix times a
# dense matrix: the rows of `x`, transposed, for `SparseLinear`; the im2col columns for
# `SparseConv2d`; then the bias) and `model_bytes`, the bytes a model stores, sparse layers
# counted by `storage_bytes` (their `nbytes_total()`, indices included) and every dense
# parameter by its own storage. The checks and the bookkeeping are given.

# %% nbgrader={"grade": false, "grade_id": "sparse-layers", "locked": false, "schema_version": 3, "solution": true}
#| export
def _csr_matrix(arrays, shape):
    data, indices, indptr = arrays
    return scipy.sparse.csr_matrix((data, indices, indptr), shape=shape)


class SparseLinear(Module):
    """Inference-only Linear whose weight is stored as CSR of weight.T (out_features rows)."""

    def __init__(self, linear):
        super().__init__()
        if not isinstance(linear, Linear):
            raise TypeError(f"SparseLinear wraps a Linear, got {type(linear).__name__}")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.data, self.indices, self.indptr = to_csr(linear.weight.data.T)
        self.bias_data = None if linear.bias is None else linear.bias.data.copy()
        self._matrix = _csr_matrix((self.data, self.indices, self.indptr), (self.out_features, self.in_features))

    def forward(self, x):
        if x.shape[-1] != self.in_features:
            raise ValueError(f"SparseLinear(in_features={self.in_features}) got an input of shape {x.shape}")
        ### BEGIN SOLUTION
        rows = x.data.reshape(-1, self.in_features)
        out = np.asarray(self._matrix @ rows.T).T
        if self.bias_data is not None:
            out = out + self.bias_data
        return Tensor.from_numpy(out.astype(np.float32).reshape(*x.shape[:-1], self.out_features))
        ### END SOLUTION

    def arrays(self):
        """{name: array} of everything stored (what serialization writes)."""
        stored = {"data": self.data, "indices": self.indices, "indptr": self.indptr}
        return stored if self.bias_data is None else {**stored, "bias": self.bias_data}

    def nbytes_total(self):
        """Bytes stored: CSR data + indices + indptr (+ bias)."""
        return int(sum(a.nbytes for a in self.arrays().values()))

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.data.size}"


def _im2col(x, kernel, stride, padding):
    """(C*kh*kw, N*H_out*W_out) columns of x (N, C, H, W) and (H_out, W_out)."""
    ph, pw = padding
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel, axis=(2, 3))
    windows = windows[:, :, ::stride[0], ::stride[1]]                   # (N, C, Ho, Wo, kh, kw)
    n, c, ho, wo, kh, kw = windows.shape
    return windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo), (ho, wo)


class SparseConv2d(Module):
    """Inference-only Conv2d whose (O, C*kh*kw) weight matrix is stored as CSR."""

    def __init__(self, conv):
        super().__init__()
        if not isinstance(conv, Conv2d):
            raise TypeError(f"SparseConv2d wraps a Conv2d, got {type(conv).__name__}")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding
        self.data, self.indices, self.indptr = to_csr(conv.weight.data.reshape(conv.out_channels, -1))
        self.bias_data = None if conv.bias is None else conv.bias.data.copy()
        self._matrix = _csr_matrix((self.data, self.indices, self.indptr),
                                   (self.out_channels, self.in_channels * math.prod(self.kernel_size)))

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SparseConv2d expects (N, {self.in_channels}, H, W), got {x.shape}")
        ### BEGIN SOLUTION
        cols, (ho, wo) = _im2col(x.data, self.kernel_size, self.stride, self.padding)
        out = np.asarray(self._matrix @ cols).reshape(self.out_channels, x.shape[0], ho, wo)
        if self.bias_data is not None:
            out = out + self.bias_data[:, None, None, None]
        return Tensor.from_numpy(np.ascontiguousarray(out.transpose(1, 0, 2, 3), dtype=np.float32))
        ### END SOLUTION

    arrays = SparseLinear.arrays
    nbytes_total = SparseLinear.nbytes_total

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, nnz={self.data.size}"


def to_sparse(model):
    """A copy of a Sequential model with every Linear/Conv2d replaced by its CSR version."""
    if not isinstance(model, Sequential):
        raise TypeError(f"to_sparse expects a Sequential, got {type(model).__name__}")
    prunable_layers(model)  # unsupported layers with parameters are named here
    swap = {Linear: SparseLinear, Conv2d: SparseConv2d}
    return Sequential(*[swap[type(layer)](layer) if type(layer) in swap else copy.deepcopy(layer)
                        for layer in model._layers]).eval()


def stored_arrays(model):
    """{name: array} of everything a model stores: dense parameters and sparse layers' CSR arrays."""
    arrays = {}
    for name, layer in model.named_modules():
        if isinstance(layer, (SparseLinear, SparseConv2d)):
            arrays.update({f"{name}.{key}": value for key, value in layer.arrays().items()})
        arrays.update({f"{name}.{key}" if name else key: p.data for key, p in layer._parameters.items()
                       if p is not None})
    return arrays


def stored_values(model):
    """Number of weight values stored (dense parameters, CSR data and biases; indices excluded)."""
    return int(sum(a.size for k, a in stored_arrays(model).items() if not k.endswith((".indices", ".indptr"))))


def model_bytes(model):
    """Bytes of the model's stored weights, counted with storage_bytes (CSR indices included)."""
    ### BEGIN SOLUTION
    total = 0
    for _, layer in model.named_modules():
        if isinstance(layer, (SparseLinear, SparseConv2d)):
            total += storage_bytes(layer)
        total += sum(storage_bytes(p) for p in layer._parameters.values() if p is not None)
    return total
    ### END SOLUTION


def serialized_size(model):
    """Bytes of np.savez of stored_arrays(model), written to memory (uncompressed .npz)."""
    buffer = io.BytesIO()
    np.savez(buffer, **stored_arrays(model))
    return buffer.getbuffer().nbytes

# %% [markdown]
# ### Check step 2
#
# A hand-made matrix checked against its CSR written out by hand, scipy as an independent
# oracle, and a pruned Linear: its sparse version must give the dense output.

# %%
m = np.array([[0, 2, 0], [0, 0, 0], [3, 0, 4]], dtype=np.float32)
data, indices, indptr = to_csr(m)
assert data.tolist() == [2, 3, 4] and indices.tolist() == [1, 0, 2] and indptr.tolist() == [0, 1, 1, 3]
assert data.dtype == np.float32 and indices.dtype == np.int32 and indptr.dtype == np.int32
assert csr_nbytes(3, 3) == 3 * 8 + 4 * 4 == data.nbytes + indices.nbytes + indptr.nbytes
rng = np.random.default_rng(0)
dense_linear = magnitude_prune(Linear(64, 32, rng=0), 0.8)
sparse_linear = SparseLinear(dense_linear)
x_check = Tensor(rng.standard_normal((5, 64)))
assert np.allclose(sparse_linear(x_check).data, dense_linear(x_check).data, atol=1e-5)
conv = magnitude_prune(Conv2d(3, 4, 3, padding=1, rng=0), 0.6)
x_img = Tensor(rng.standard_normal((2, 3, 6, 6)))
with no_grad():
    assert np.allclose(SparseConv2d(conv)(x_img).data, conv(x_img).data, atol=1e-5)
print("break-even sparsity of a 128 x 10 matrix:", round(break_even_sparsity(10, 128), 4))
print(sparse_linear, "stores", storage_bytes(sparse_linear), "bytes")
print("OK: CSR arrays, byte counts and sparse forwards match")

# %% [markdown]
# ### Measure: bytes and serialized size of CSR against dense, by sparsity
#
# For a 256 x 256 Linear layer pruned at several sparsities: the bytes of the dense weight,
# the CSR bytes (counted by `storage_bytes`) and the size of an `.npz` file of each. The
# break-even predicted by the formula is printed next to the measured sizes.

# %%
size_rows = []
base_layer = Linear(256, 256, rng=1)
for s in (0.0, 0.25, 0.5, 0.75, 0.9, 0.95):
    pruned_layer = magnitude_prune(base_layer, s)
    sparse = SparseLinear(pruned_layer)
    size_rows.append({"sparsity": s, "dense_bytes": pruned_layer.weight.data.nbytes,
                      "csr_bytes": storage_bytes(sparse) - sparse.bias_data.nbytes,
                      "dense_npz": serialized_size(pruned_layer), "csr_npz": serialized_size(sparse)})
size_table = pd.DataFrame(size_rows)
size_table["csr_over_dense"] = size_table["csr_bytes"] / size_table["dense_bytes"]
print(size_table.to_string(index=False))
print(f"Predicted break-even sparsity for 256 x 256: {break_even_sparsity(256, 256):.4f}; "
      f"measured: CSR is smaller from sparsity {size_table[size_table.csr_over_dense < 1].sparsity.min()} "
      "on in this grid.")

# %% [markdown]
# ## Step 3: structured (channel) pruning that really shrinks layers
#
# Unstructured zeros need a sparse format to pay off, and sparse kernels are slow on small
# matrices. **Channel pruning** removes whole output channels of a convolution, chosen by the
# smallest L1 norm of their filters. The layers become *smaller dense layers*, so every BLAS
# call does less work and no index is stored.
#
# Removing output channel `c` of a conv also removes the input channel `c` of the next conv
# (`weight[:, c]`). When the next parametrised layer is a `Linear` after `Flatten`, channel
# `c` fed `H * W` consecutive features (positions `c*H*W ... c*H*W + H*W - 1` of the flattened
# vector), so those rows of the Linear weight go. Between the two layers only ReLU, pooling,
# Dropout and Flatten may sit: they act on each channel separately. A conv whose output is
# the model's output is left alone.
#
# A pruned model computes *exactly* what the original computes with those channels zeroed
# (weights and bias): a zero channel stays zero through ReLU and pooling and contributes
# nothing afterwards. The check below tests that, before any fine-tuning.

# %%
#| export
_PER_CHANNEL = (ReLU, MaxPool2d, AvgPool2d, Dropout)


def _consumer(layers, start):
    """(index, layer) of the first Conv2d/Linear after position start, and whether a Flatten
    came before it; None when the path holds a layer that mixes channels (or nothing follows)."""
    flattened = False
    for index in range(start + 1, len(layers)):
        layer = layers[index]
        if isinstance(layer, (Conv2d, Linear)):
            return index, layer, flattened
        if isinstance(layer, Flatten):
            flattened = True
        elif not isinstance(layer, _PER_CHANNEL):
            return None
    return None


def _new_conv(conv, weight, bias):
    layer = Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size, conv.stride, conv.padding,
                   bias=bias is not None)
    layer.weight = Parameter(weight)
    layer.bias = None if bias is None else Parameter(bias)
    return layer


def _new_linear(linear, weight):
    layer = Linear(weight.shape[0], weight.shape[1], bias=linear.bias is not None)
    layer.weight = Parameter(weight)
    layer.bias = None if linear.bias is None else Parameter(linear.bias.data)
    return layer

# %% nbgrader={"grade": false, "grade_id": "channel-pruning", "locked": false, "schema_version": 3, "solution": true}
#| export
def channel_plan(model, fraction):
    """{conv index: sorted kept output channels} for every prunable Conv2d of a Sequential.

    Each keeps max(1, round((1 - fraction) * out_channels)) channels, those with the largest
    L1 norms (ties: the lower index wins).
    """
    fraction = _check_sparsity(fraction, "fraction")
    if not isinstance(model, Sequential):
        raise TypeError(f"channel pruning works on a Sequential, got {type(model).__name__}")
    prunable_layers(model)
    ### BEGIN SOLUTION
    layers = model._layers
    plan = {}
    for index, layer in enumerate(layers):
        if not isinstance(layer, Conv2d) or _consumer(layers, index) is None:
            continue
        norms = np.abs(layer.weight.data).sum(axis=(1, 2, 3))
        keep = max(1, int(round((1 - fraction) * layer.out_channels)))
        order = np.argsort(-norms, kind="stable")
        plan[index] = np.sort(order[:keep])
    return plan
    ### END SOLUTION


def prune_channels(model, fraction):
    """A new Sequential with the lowest-L1 output channels of each conv removed (smaller arrays)."""
    ### BEGIN SOLUTION
    plan = channel_plan(model, fraction)
    layers = [copy.deepcopy(layer) for layer in model._layers]
    for index, kept in plan.items():
        conv = layers[index]
        bias = None if conv.bias is None else conv.bias.data[kept]
        layers[index] = _new_conv(conv, conv.weight.data[kept], bias)
        after, consumer, flattened = _consumer(layers, index)
        if isinstance(consumer, Conv2d):
            layers[after] = _new_conv(consumer, consumer.weight.data[:, kept], None if consumer.bias is None
                                      else consumer.bias.data)
        else:
            per_channel = consumer.in_features // conv.out_channels
            if not flattened or per_channel * conv.out_channels != consumer.in_features:
                raise ValueError(
                    f"layer {after} (Linear, in_features={consumer.in_features}) does not read "
                    f"{conv.out_channels} flattened channels of layer {index}; cannot prune it")
            rows = (kept[:, None] * per_channel + np.arange(per_channel)).ravel()
            layers[after] = _new_linear(consumer, consumer.weight.data[rows])
    return Sequential(*layers)
    ### END SOLUTION


def zero_channels(model, fraction):
    """A copy of model in which the channels prune_channels would remove are set to zero."""
    zeroed = copy.deepcopy(model)
    for index, kept in channel_plan(model, fraction).items():
        conv = zeroed._layers[index]
        dropped = np.setdiff1d(np.arange(conv.out_channels), kept)
        conv.weight.data[dropped] = 0
        if conv.bias is not None:
            conv.bias.data[dropped] = 0
    return zeroed

# %% [markdown]
# `fine_tune` retrains a compressed model for a few epochs with the module 08 `Trainer` and
# Adam on the digits training split (seeded shuffling). A model carrying a `pruning_mask` is
# trained through a `MaskedOptimizer`, so magnitude-pruned zeros stay zero.

# %%
#| export
def _digits_loader(flatten, batch_size, seed, limit=None):
    images, labels = load_digits("train", flatten=flatten).tensors
    if limit is not None:
        images, labels = Tensor.from_numpy(images.data[:limit]), Tensor.from_numpy(labels.data[:limit])
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True, seed=seed)


def fine_tune(model, epochs, lr, seed=0, batch_size=64, flatten=False, limit=None):
    """Train model in place for `epochs` epochs (Adam(lr), digits train split, seeded order).

    limit: use only the first `limit` training images (quick tests). Returns the per-epoch
    stats of Trainer.train_epoch(); the model is left in eval mode.
    """
    optimizer = Adam(model.parameters(), lr=lr)
    mask = getattr(model, "pruning_mask", None)
    if mask is not None:
        optimizer = MaskedOptimizer(optimizer, mask)
    trainer = Trainer(model, CrossEntropyLoss(), optimizer, _digits_loader(flatten, batch_size, seed, limit))
    history = [trainer.train_epoch() for _ in range(epochs)]
    model.eval()
    return history

# %% [markdown]
# ### Check step 3
#
# Half of the channels of the trained digits CNN: smaller arrays, fewer parameters and the
# same output as the original with those channels zeroed.

# %%
slim = prune_channels(cnn, 0.5)
print(slim)
shapes = [p.shape for p in slim.parameters()]
assert shapes[0] == (8, 1, 3, 3) and shapes[2] == (16, 8, 3, 3) and shapes[4] == (64, 10), shapes
x_batch = Tensor.from_numpy(load_digits("test").tensors[0].data[:32])
with no_grad():
    assert np.allclose(slim(x_batch).data, zero_channels(cnn, 0.5)(x_batch).data, atol=1e-5)
n_before = sum(p.size for p in cnn.parameters())
n_after = sum(p.size for p in slim.parameters())
print(f"parameters: {n_before} -> {n_after}; test accuracy before fine-tuning: "
      f"{evaluate(slim, 'digits_cnn')['accuracy']:.3f}")
print("OK: channel pruning shrinks the arrays and equals the zeroed original")

# %% [markdown]
# ## Step 4: low-rank factorisation of a Linear layer
#
# A weight `W` (in x out) with singular value decomposition `U S V^T` is approximated by its
# `r` largest singular values: `W ~ (U_r S_r) V_r^T`. One Linear becomes two: `in -> r`
# (weight `U_r S_r`, no bias) then `r -> out` (weight `V_r^T`, the original bias). That stores
# `r * (in + out)` numbers instead of `in * out`, a saving when `r < in*out/(in+out)`. The
# relative error `||W - W_r|| / ||W||` (Frobenius) is
# `sqrt(sum of the dropped s_i^2 / sum of all s_i^2)`: it is zero at full rank and falls as
# `r` grows (Eckart-Young: no rank-`r` matrix is closer).

# %% nbgrader={"grade": false, "grade_id": "low-rank", "locked": false, "schema_version": 3, "solution": true}
#| export
def low_rank(linear, rank):
    """Sequential(Linear(in, rank, bias=False), Linear(rank, out)) from the truncated SVD of
    linear.weight; the result's `reconstruction_error` is ||W - W_r||_F / ||W||_F."""
    if not isinstance(linear, Linear):
        raise TypeError(f"low_rank factorises a Linear layer, got {type(linear).__name__}")
    full = min(linear.in_features, linear.out_features)
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral):
        raise TypeError(f"rank must be an integer, got {rank!r} ({type(rank).__name__})")
    if not 1 <= rank <= full:
        raise ValueError(f"rank must be in [1, {full}] (min(in_features, out_features)) for "
                         f"Linear({linear.in_features}, {linear.out_features}), got {rank}")
    rank = operator.index(rank)
    ### BEGIN SOLUTION
    w = linear.weight.data.astype(np.float64)
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    first = Linear(linear.in_features, rank, bias=False)
    first.weight = Parameter((u[:, :rank] * s[:rank]).astype(np.float32))
    second = _new_linear(linear, vt[:rank].astype(np.float32))
    factored = Sequential(first, second)
    factored.reconstruction_error = float(np.sqrt((s[rank:] ** 2).sum() / (s ** 2).sum()))
    return factored
    ### END SOLUTION

# %% [markdown]
# ### Check step 4
#
# At full rank the factorisation reproduces the layer; the error falls with the rank and
# equals numpy's own norm of the difference.

# %%
lin = Linear(20, 12, rng=3)
x_lr = Tensor(np.random.default_rng(1).standard_normal((4, 20)))
assert np.allclose(low_rank(lin, 12)(x_lr).data, lin(x_lr).data, atol=1e-4)
errors = [low_rank(lin, r).reconstruction_error for r in range(1, 13)]
assert all(a >= b for a, b in zip(errors, errors[1:])) and errors[-1] < 1e-6
f4 = low_rank(lin, 4)
w4 = f4[0].weight.data @ f4[1].weight.data
assert np.isclose(np.linalg.norm(lin.weight.data - w4) / np.linalg.norm(lin.weight.data), f4.reconstruction_error, rtol=1e-4)
print("relative error by rank:", [round(e, 3) for e in errors])
print("OK: low-rank factorisation is exact at full rank and improves with rank")

# %% [markdown]
# ## Step 5: knowledge distillation
#
# A small **student** learns from the trained **teacher**'s outputs, not just from the labels.
# The teacher's softmax at temperature `T` (`softmax(z / T)`) spreads probability over the
# classes it finds similar (a 3 that looks like an 8), information one-hot labels lack. The
# loss mixes two terms, with weight `alpha`:
#
# `L = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, labels)`
#
# averaged over the batch. The `T^2` keeps the soft term's gradient on the same scale as the
# hard one. Its gradient with respect to the student logits `s` is short:
#
# `dL/ds = [alpha * T * (softmax(s/T) - softmax(t/T)) + (1 - alpha) * (softmax(s) - onehot)] / N`
#
# You write it as an autograd `Function`: forward returns the loss, backward this gradient.

# %%
#| export
def _softmax(z, axis=-1):
    shifted = z - z.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(z, axis=-1):
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

# %% nbgrader={"grade": false, "grade_id": "distillation-loss", "locked": false, "schema_version": 3, "solution": true}
#| export
class DistillationLossFunction(Function):
    """alpha*T^2*KL(softmax(t/T) || softmax(s/T)) + (1-alpha)*CE(s, labels), mean over rows."""

    @staticmethod
    def forward(ctx, student, teacher, labels, temperature=4.0, alpha=0.5):
        ### BEGIN SOLUTION
        s = student.astype(np.float64)
        rows = np.arange(s.shape[0])
        soft_t = _softmax(teacher.astype(np.float64) / temperature)
        log_soft_s = _log_softmax(s / temperature)
        kl = (soft_t * (np.log(np.clip(soft_t, 1e-300, None)) - log_soft_s)).sum(axis=1).mean()
        ce = -_log_softmax(s)[rows, labels].mean()
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(s, soft_t, np.asarray(labels))
            ctx.temperature, ctx.alpha, ctx.dtype = temperature, alpha, student.dtype
        return np.asarray(alpha * temperature ** 2 * kl + (1 - alpha) * ce, dtype=student.dtype)
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        s, soft_t, labels = ctx.saved_tensors
        t, alpha, n = ctx.temperature, ctx.alpha, s.shape[0]
        hard = _softmax(s)
        hard[np.arange(n), labels] -= 1
        grad = (alpha * t * (_softmax(s / t) - soft_t) + (1 - alpha) * hard) / n
        return (grad * grad_output).astype(ctx.dtype), None, None
        ### END SOLUTION


def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.5):
    """The distillation loss as a 0-d Tensor; differentiable with respect to student_logits."""
    if student_logits.shape != teacher_logits.shape or student_logits.ndim != 2:
        raise ValueError(f"student and teacher logits must both be (N, C), got {student_logits.shape} "
                         f"and {teacher_logits.shape}")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1] (the weight of the soft term), got {alpha!r}")
    label_array = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    teacher = teacher_logits.data if isinstance(teacher_logits, Tensor) else np.asarray(teacher_logits)
    return DistillationLossFunction.apply(student_logits, teacher, label_array,
                                          temperature=float(temperature), alpha=float(alpha))

# %% [markdown]
# `distill` trains the student: the teacher's logits for the training images are computed
# once (in eval mode, without recording a graph); then, for each epoch, a seeded permutation of
# the rows, and for each batch of it: zero the gradients, the distillation loss of the
# student's logits against the teacher's and the labels, backward, an Adam step. It returns
# each epoch's mean loss (per example: a batch's loss weighs by its size). Your part: that
# loop; `student_cnn` and the data loading are given.

# %% nbgrader={"grade": false, "grade_id": "distill", "locked": false, "schema_version": 3, "solution": true}
#| export
def student_cnn(seed=0):
    """A small student for the digits: conv8-pool-conv16-pool-linear (about a third of digits_cnn)."""
    return Sequential(
        Conv2d(1, 8, 3, padding=1, rng=seed), ReLU(), MaxPool2d(2),
        Conv2d(8, 16, 3, padding=1, rng=seed + 1), ReLU(), MaxPool2d(2),
        Flatten(), Linear(64, 10, rng=seed + 2))


def distill(teacher, student, epochs, temperature=4.0, alpha=0.7, seed=0, lr=1e-2, batch_size=64,
            limit=None):
    """Train student in place on the digits train split against teacher's soft targets and the
    labels (Adam, seeded shuffling). Returns the mean loss of each epoch; student ends in eval mode."""
    images, labels = load_digits("train").tensors
    x_all, y_all = images.data[:limit], labels.data[:limit]
    ### BEGIN SOLUTION
    teacher.eval()
    with no_grad():
        soft = teacher(Tensor.from_numpy(x_all)).data
    optimizer, rng, losses = Adam(student.parameters(), lr=lr), np.random.default_rng(seed), []
    student.train()
    for _ in range(epochs):
        order, total = rng.permutation(len(y_all)), 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = distillation_loss(student(Tensor.from_numpy(x_all[batch])), soft[batch], y_all[batch],
                                     temperature, alpha)
            loss.backward()
            optimizer.step()
            total += float(loss.item()) * len(batch)
        losses.append(total / len(order))
    student.eval()
    return losses
    ### END SOLUTION

# %% [markdown]
# ### Check step 5
#
# The analytic gradient against central finite differences of the forward pass (float64),
# then a short distillation run whose loss must fall.

# %%
rng = np.random.default_rng(2)
s_logits, t_logits, y_small = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), np.array([0, 3, 1])
student_t = Tensor(s_logits, dtype=np.float64, requires_grad=True)
distillation_loss(student_t, t_logits, y_small, 2.0, 0.6).backward()
numeric = np.zeros_like(s_logits)
for i, j in np.ndindex(*s_logits.shape):
    bumped = [s_logits.copy(), s_logits.copy()]
    bumped[0][i, j] += 1e-6
    bumped[1][i, j] -= 1e-6
    values = [float(distillation_loss(Tensor(b, dtype=np.float64), t_logits, y_small, 2.0, 0.6).item()) for b in bumped]
    numeric[i, j] = (values[0] - values[1]) / 2e-6
assert np.allclose(student_t.grad.data, numeric, atol=1e-5), (student_t.grad, numeric)
quick = distill(cnn, student_cnn(0), epochs=2, limit=512)
assert quick[1] < quick[0]
print("distillation loss per epoch:", [round(v, 4) for v in quick])
print("OK: distillation gradient matches finite differences and training lowers the loss")

# %% [markdown]
# ## Graded tests

# %% nbgrader={"grade": true, "grade_id": "test-pruning", "locked": true, "points": 3, "schema_version": 3, "solution": false}
w1 = np.array([[0.4, -0.05, 0.2], [0.01, -0.3, 0.6]], dtype=np.float32)
w2 = np.array([[0.02, 0.5], [-0.03, 0.1]], dtype=np.float32)
m_layer = layer_masks([w1, w2], 0.5, "layer")
assert m_layer[0].tolist() == [[True, False, False], [False, True, True]]
assert m_layer[1].tolist() == [[False, True], [False, True]]
m_global = layer_masks([w1, w2], 0.5, "global")   # 10 weights, 5 smallest: .01 .02 .03 .05 .1
assert m_global[0].tolist() == [[True, False, True], [False, True, True]]
assert m_global[1].tolist() == [[False, True], [False, False]]
assert keep_mask(np.array([1.0, 1.0, 1.0]), 2).tolist() == [False, False, True]

# %% nbgrader={"grade": true, "grade_id": "test-magnitude-prune", "locked": true, "points": 3, "schema_version": 3, "solution": false}
two = Sequential(Linear(3, 2, rng=0), ReLU(), Linear(2, 2, rng=1))
two[0].weight.data[...] = w1.T.reshape(3, 2)                  # the six values of w1, laid out 3 x 2
two[2].weight.data[...] = w2
pruned_two = magnitude_prune(two, 0.5, scope="global")
# 10 weights, the 5 smallest |w| (.01 .02 .03 .05 .1) go; the biases stay
assert np.count_nonzero(pruned_two[0].weight.data) + np.count_nonzero(pruned_two[2].weight.data) == 5
assert np.array_equal(pruned_two[2].weight.data, np.array([[0, 0.5], [0, 0]], dtype=np.float32))
assert np.array_equal(pruned_two[0].bias.data, two[0].bias.data) and np.count_nonzero(two[0].weight.data) == 6
mask_two = pruned_two.pruning_mask
assert [name for name, _, _ in mask_two.entries] == ["0.weight", "2.weight"] and mask_two.sparsity() == 0.5
pruned_two[2].weight.data[...] = 7.0                            # an update that revives the zeros ...
assert mask_two.apply() is mask_two and np.count_nonzero(pruned_two[2].weight.data) == 1   # ... is undone
frame = sparsity_report(pruned_two)
assert frame["weight"].tolist() == ["0.weight", "2.weight", "total"]
assert frame["zeros"].tolist() == [2, 3, 5] and frame["size"].tolist() == [6, 4, 10]   # .01 .05 | .02 .03 .1
assert np.allclose(frame["sparsity"], [2 / 6, 0.75, 0.5])
step_calls = []
class _Recorder:
    def step(self):
        step_calls.append("step")
        pruned_two[2].weight.data[...] = 1.0
MaskedOptimizer(_Recorder(), mask_two).step()
assert step_calls == ["step"] and np.count_nonzero(pruned_two[2].weight.data) == 1   # the mask after the step

# %% nbgrader={"grade": true, "grade_id": "test-csr", "locked": true, "points": 3, "schema_version": 3, "solution": false}
m2 = np.array([[0, 0, 5, 0], [1, 0, 0, 2]], dtype=np.float32)
d2, i2, p2 = to_csr(m2)
assert d2.tolist() == [5, 1, 2] and i2.tolist() == [2, 0, 3] and p2.tolist() == [0, 1, 3]
assert csr_nbytes(2, 3) == 3 * 8 + 3 * 4
assert abs(break_even_sparsity(100, 100) - (0.5 + 101 / 20000)) < 1e-12

# %% nbgrader={"grade": true, "grade_id": "test-sparse-layers", "locked": true, "points": 3, "schema_version": 3, "solution": false}
lin_s = Linear(4, 3, rng=2)
lin_s.weight.data[...] = [[0, 1, 0], [2, 0, 0], [0, 0, 0], [0, -3, 4]]     # 4 non-zeros
x_s = np.random.default_rng(5).standard_normal((2, 5, 4))
sparse_s = SparseLinear(lin_s)
out_s = sparse_s(Tensor(x_s))
assert out_s.shape == (2, 5, 3) and out_s.dtype == np.float32
np.testing.assert_allclose(out_s.data, x_s @ lin_s.weight.data + lin_s.bias.data, rtol=1e-5, atol=1e-5)
# CSR of W^T (3 rows): 4 values + 4 indices + 4 offsets, int32/float32, and the 3 biases
assert model_bytes(Sequential(sparse_s, ReLU())) == 4 * 4 + 4 * 4 + 4 * 4 + 3 * 4 == storage_bytes(sparse_s)
assert model_bytes(Sequential(lin_s)) == (12 + 3) * 4
conv_s = Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1, rng=4)
conv_s.weight.data[0] = 0                                                  # one filter pruned away
img_s = Tensor(np.random.default_rng(6).standard_normal((2, 2, 5, 4)))
with no_grad():
    np.testing.assert_allclose(SparseConv2d(conv_s)(img_s).data, conv_s(img_s).data, rtol=1e-5, atol=1e-5)

# %% nbgrader={"grade": true, "grade_id": "test-channels", "locked": true, "points": 3, "schema_version": 3, "solution": false}
net = Sequential(Conv2d(1, 4, 3, padding=1, rng=0), ReLU(), MaxPool2d(2), Flatten(), Linear(16, 3, rng=1))
net[0].weight.data[:] = np.arange(4, dtype=np.float32)[:, None, None, None] * np.array([1, -1, 2, 3], dtype=np.float32)[:, None, None, None]
assert [k.tolist() for k in channel_plan(net, 0.5).values()] == [[2, 3]]
small = prune_channels(net, 0.5)
assert small[0].weight.shape == (2, 1, 3, 3) and small[4].weight.shape == (8, 3)
assert np.array_equal(small[4].weight.data, net[4].weight.data[8:16])
x_t = Tensor(np.random.default_rng(0).standard_normal((2, 1, 4, 4)))
assert np.allclose(small(x_t).data, zero_channels(net, 0.5)(x_t).data, atol=1e-6)

# %% nbgrader={"grade": true, "grade_id": "test-low-rank-distill", "locked": true, "points": 3, "schema_version": 3, "solution": false}
lin2 = Linear(6, 5, rng=4)
assert np.allclose(low_rank(lin2, 5)(Tensor(np.eye(6))).data, lin2(Tensor(np.eye(6))).data, atol=1e-5)
s_all = np.linalg.svd(lin2.weight.data, compute_uv=False)
assert np.isclose(low_rank(lin2, 2).reconstruction_error, np.sqrt((s_all[2:] ** 2).sum() / (s_all ** 2).sum()), rtol=1e-4)
# alpha = 0: plain cross-entropy; equal logits: zero KL.
z = np.array([[1.0, 2.0, 0.5]])
ce_value = -(z[0, 1] - np.log(np.exp(z).sum()))
assert np.isclose(float(distillation_loss(Tensor(z), z, np.array([1]), 3.0, 0.0).item()), ce_value, atol=1e-5)
assert abs(float(distillation_loss(Tensor(z), z, np.array([1]), 3.0, 1.0).item())) < 1e-6

# %% nbgrader={"grade": true, "grade_id": "test-distill", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# lr = 1e-12: the weights move by about 1e-12 per step, so the epoch's loss (batches of 32, 32, 32 and 4,
# each weighing by its size) is the mean loss of the untrained student over the 100 rows, which numpy
# computes here directly from both models' logits (KL at T = 2 and cross-entropy, alpha = 0.3).
still = student_cnn(3)
epoch_losses = distill(cnn, still, 1, temperature=2.0, alpha=0.3, lr=1e-12, batch_size=32, limit=100)
x_d, y_d = (t.data[:100] for t in load_digits("train").tensors)
with no_grad():
    s_d = still(Tensor.from_numpy(x_d)).data.astype(np.float64)
    t_d = cnn(Tensor.from_numpy(x_d)).data.astype(np.float64)
def _log_softmax_np(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
p_t = np.exp(_log_softmax_np(t_d / 2))
kl_rows = (p_t * (_log_softmax_np(t_d / 2) - _log_softmax_np(s_d / 2))).sum(axis=1)
ce_rows = -_log_softmax_np(s_d)[np.arange(100), y_d]
assert len(epoch_losses) == 1 and not still.training
assert np.isclose(epoch_losses[0], np.mean(0.3 * 4 * kl_rows + 0.7 * ce_rows), rtol=1e-4), epoch_losses
learning = distill(cnn, student_cnn(3), 3, limit=256)
assert learning[-1] < learning[0], learning
assert distill(cnn, student_cnn(3), 3, limit=256) == learning                 # seeded: reproducible

# %% [markdown]
# ## Systems analysis: what each technique buys, measured
#
# `compression_report()` builds five versions of the digits CNN and measures each one the
# same way:
#
# 1. **baseline**: the trained `digits_cnn` from the zoo;
# 2. **magnitude + CSR**: 70% of each layer's weights pruned, briefly fine-tuned with the
#    mask, then stored as CSR (`SparseConv2d` / `SparseLinear`);
# 3. **channels + fine-tune**: half of every conv's channels removed, then fine-tuned;
# 4. **distilled**: `student_cnn` trained against the baseline's soft targets;
# 5. **channels + fine-tune + int8** (combined): the channel-pruned model quantized with
#    module 15's `quantize_model` (int8 per-channel weights, activations calibrated on the
#    first 256 *training* images).
#
# For each: test accuracy with its Wilson 95% interval, forward latency at batch 64 (all
# measured interleaved, median of the per-call times with a seeded bootstrap 95% interval),
# stored parameter bytes (CSR indices counted), serialized `.npz` size, and the latency ratio
# to the baseline with a bootstrap CI, its Mann-Whitney p-value against the baseline and that
# p-value Bonferroni-adjusted for the comparisons in the table (`significant`: adjusted
# p < 0.05 and the ratio's interval excludes 1). The target it checks: channel pruning at
# least 1.5x faster with at most a 2-point accuracy drop.
#
# A caveat on the recipes: their settings (70% sparsity, half the channels, 8 fine-tuning
# epochs at lr 3e-3, 20 distillation epochs) were fixed while developing this module with the
# test accuracy in view, so the test figures below are slightly optimistic for these exact
# settings. To choose settings yourself, hold out part of the *training* split
# (`stratified_split` in module 05) and decide on it; touch the test split once, at the end.

# %%
#| export
def bootstrap_median_ci(samples, n_boot=2000, seed=0, confidence=0.95):
    """(low, high) percentile-bootstrap interval of the median of samples (seeded)."""
    values = np.asarray(samples, dtype=np.float64)
    draws = np.random.default_rng(seed).choice(values, size=(n_boot, values.size), replace=True)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(np.median(draws, axis=1), [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_ratio_ci(numerator, denominator, n_boot=2000, seed=0, confidence=0.95):
    """(ratio of medians, low, high): median(numerator)/median(denominator) with a seeded
    percentile-bootstrap interval. Samples of equal length are taken as interleaved rounds
    and resampled in pairs (round i of both), so drift shared by a round cancels."""
    a, b = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    gen = np.random.default_rng(seed)
    idx_a = gen.integers(0, a.size, size=(n_boot, a.size))
    idx_b = idx_a if a.size == b.size else gen.integers(0, b.size, size=(n_boot, b.size))
    ratios = np.median(a[idx_a], axis=1) / np.median(b[idx_b], axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(np.median(a) / np.median(b)), float(low), float(high)


def compressed_variants(seed=0, fine_tune_epochs=8, distill_epochs=20, sparsity=0.7, fraction=0.5, lr=3e-3):
    """{name: model}: baseline digits_cnn, magnitude-pruned + CSR, channel-pruned + fine-tuned, distilled,
    and the combination channel-pruned + fine-tuned + int8 (module 15, calibrated on train images)."""
    baseline = load_model("digits_cnn")
    magnitude = magnitude_prune(baseline, sparsity, scope="layer")
    fine_tune(magnitude, fine_tune_epochs, lr=lr, seed=seed)
    channels = prune_channels(baseline, fraction)
    fine_tune(channels, fine_tune_epochs, lr=lr, seed=seed)
    student = student_cnn(seed)
    distill(baseline, student, distill_epochs, seed=seed)
    return {"baseline": baseline, "magnitude+csr": to_sparse(magnitude),
            "channels+finetune": channels, "distilled": student,
            "channels+finetune+int8": quantize_model(channels, calibration_data=_calibration_images())}


def _calibration_images(count=256):
    """The first `count` TRAIN images (never the test split) for int8 calibration."""
    return load_digits("train").tensors[0][:count]


def _forward_call(model, x):
    def call():
        with no_grad():
            return model(x)
    return call


def compression_report(models=None, batch=64, repeats=41, seed=0, verbose=True):
    """Measure each model (default: compressed_variants()) and return a DataFrame, one row each.

    Latency: all models interleaved at the given batch (calibrated >= 1 ms samples); medians
    with bootstrap CIs and the ratio to 'baseline' (baseline time / model time: > 1 is faster).
    """
    models = compressed_variants(seed) if models is None else models
    if "baseline" not in models:
        raise ValueError(f"compression_report needs a 'baseline' model, got {sorted(models)}")
    x = Tensor.from_numpy(load_digits("test").tensors[0].data[:batch].copy())
    timings = measure_interleaved({name: _forward_call(m, x) for name, m in models.items()}, repeats, rewarm=True)
    base = timings["baseline"].samples_ns
    rows = []
    for name, model in models.items():
        acc = evaluate(model, "digits_cnn")
        samples = timings[name].samples_ns
        low, high = bootstrap_median_ci(samples, seed=seed)
        speedup, s_low, s_high = bootstrap_ratio_ci(base, samples, seed=seed)
        rows.append({"model": name, "accuracy": acc["accuracy"], "acc_low": acc["ci_low"], "acc_high": acc["ci_high"],
                     "latency_ms": timings[name].median_ns / 1e6, "lat_low_ms": low / 1e6, "lat_high_ms": high / 1e6,
                     "speedup": speedup, "speedup_low": s_low, "speedup_high": s_high,
                     "stored_values": stored_values(model),
                     "param_bytes": model_bytes(model), "serialized_bytes": serialized_size(model),
                     "p_value": np.nan if name == "baseline" else float(stats.mannwhitneyu(base, samples).pvalue),
                     "noise": timings[name].warning})
    table = pd.DataFrame(rows).set_index("model")
    table["p_bonferroni"] = np.minimum(table["p_value"] * (len(table) - 1), 1.0)
    table["significant"] = ((table["p_bonferroni"] < 0.05)
                            & ((table["speedup_low"] > 1) | (table["speedup_high"] < 1)))
    table["bytes_ratio"] = table["param_bytes"] / table.loc["baseline", "param_bytes"]
    if verbose:
        print(table.drop(columns=["noise"]).to_string(float_format=lambda v: f"{v:.4g}"))
        print(target_sentence(table))
    return table


def target_sentence(table, row="channels+finetune", min_speedup=1.5, max_drop=0.02):
    """One sentence stating, from the measured table, whether the channel-pruning target is met."""
    r, b = table.loc[row], table.loc["baseline"]
    drop = b["accuracy"] - r["accuracy"]
    met = r["speedup_low"] >= min_speedup and drop <= max_drop
    return (f"{row}: {r['speedup']:.2f}x faster than baseline (95% CI {r['speedup_low']:.2f}-{r['speedup_high']:.2f}), "
            f"accuracy {r['accuracy']:.2%} vs {b['accuracy']:.2%} (drop {drop * 100:.1f} points); target "
            f">= {min_speedup}x (CI lower bound) with drop <= {max_drop * 100:.0f} points: "
            f"{'met' if met else 'NOT met'}.")

# %%
report = compression_report()

# %%
best = report.drop(index="baseline")
smallest = best["param_bytes"].idxmin()
fastest = best["speedup"].idxmax()
print(f"Smallest stored weights: {smallest}, {best.loc[smallest, 'bytes_ratio']:.2f} of the baseline's bytes "
      f"({best.loc[smallest, 'serialized_bytes']} bytes serialized vs {report.loc['baseline', 'serialized_bytes']}).")
print(f"Fastest: {fastest}, {best.loc[fastest, 'speedup']:.2f}x the baseline "
      f"(95% CI {best.loc[fastest, 'speedup_low']:.2f}-{best.loc[fastest, 'speedup_high']:.2f}).")
mag = report.loc["magnitude+csr"]
verdict = "slower than" if mag["speedup_high"] < 1 else ("faster than" if mag["speedup_low"] > 1 else "not clearly different from")
print(f"Magnitude pruning + CSR runs at {mag['speedup']:.2f}x the baseline's speed "
      f"(95% CI {mag['speedup_low']:.2f}-{mag['speedup_high']:.2f}), {verdict} dense, "
      f"with {mag['bytes_ratio']:.2f} of its bytes.")
for name, row in report.iterrows():
    if row["noise"]:
        print(f"noise warning for {name}: {row['noise']}")

# %% [markdown]
# ## Shipping the compressed models: `load_model("digits_cnn_pruned")`, `load_model("digits_cnn_distilled")`
#
# The zoo's manifest records that these two variants are built by this module; `load_model`
# imports it by that name and calls `load_zoo_variant`, and `tito zoo train NAME --install`
# rebuilds them with `build_zoo_variant` (seeded fine-tuning and distillation).

# %%
#| export
ZOO_VARIANTS = {
    "digits_cnn_pruned": "digits_cnn with half of its conv channels removed (L1 norm), fine-tuned 8 epochs",
    "digits_cnn_distilled": "an 8/16-channel student CNN distilled from digits_cnn for 20 epochs",
}


def _zoo_variant_check(name):
    if name not in ZOO_VARIANTS:
        raise ValueError(f"unknown compressed variant {name!r}; this module builds {', '.join(ZOO_VARIANTS)}")


def build_zoo_variant(name, seed=0):
    """(model, base, target, recipe) for a compressed digits_cnn variant, trained with seed."""
    _zoo_variant_check(name)
    base = load_model("digits_cnn")
    if name == "digits_cnn_pruned":
        model = prune_channels(base, 0.5)
        fine_tune(model, 8, lr=3e-3, seed=seed)
        target = round(evaluate(base, "digits_cnn")["accuracy"] - 0.02, 6)  # at most 2 points lost
        recipe = {"technique": "channel pruning 50% + fine-tuning", "epochs": 8, "lr": 3e-3, "seed": seed}
    else:
        model = student_cnn(seed)
        distill(base, model, 20, seed=seed)
        target = 0.95
        recipe = {"technique": "distillation", "epochs": 20, "temperature": 4.0, "alpha": 0.7, "seed": seed}
    return model.eval(), "digits_cnn", target, recipe


def load_zoo_variant(name, state):
    """The variant's architecture (its shapes follow from the recipe) with the stored weights."""
    _zoo_variant_check(name)
    model = prune_channels(build_model("digits_cnn"), 0.5) if name == "digits_cnn_pruned" else student_cnn(0)
    model.load_state_dict(state)
    return model.eval()

# %% [markdown]
# Once this module is exported, `load_model(name)` does what the cell below does by hand with the
# functions above: read the shipped arrays, check their sha256 against the manifest, and rebuild
# the architecture with `load_zoo_variant`.

# %%
from tinytorch.models.zoo import read_manifest, weights_digest, zoo_dir

for variant_name in ZOO_VARIANTS:
    with np.load(zoo_dir() / f"{variant_name}.npz", allow_pickle=False) as archive:
        shipped = {key: archive[key] for key in archive.files}
    assert weights_digest(shipped) == read_manifest()[variant_name]["sha256"]
    variant = load_zoo_variant(variant_name, shipped)
    variant_eval = evaluate(variant, variant_name)
    print(f"{variant_name} from the zoo: test accuracy {variant_eval['accuracy']:.2%}, "
          f"{sum(p.data.size for p in variant.parameters()):,} parameters")

# %% [markdown]
# ## Summary
#
# - Magnitude pruning zeroes the smallest weights per layer or with one global threshold; a
#   `PruningMask` keeps them at zero during fine-tuning.
# - Zeros only save bytes in a sparse format, and CSR pays a 4-byte index per kept value:
#   it is smaller than dense only past about 50% sparsity (the table above shows where).
# - Channel pruning shrinks the dense layers themselves, which is what makes a small CNN
#   faster on a CPU; a short fine-tune recovers the accuracy (the report above prints both).
# - Low-rank factorisation trades a controlled reconstruction error for `r*(in+out)` weights.
# - Distillation trains a smaller network on the teacher's soft targets.
# - Every claim is printed from a measurement: accuracies with Wilson intervals, latencies as
#   interleaved medians with bootstrap intervals, bytes counted from the stored arrays.
