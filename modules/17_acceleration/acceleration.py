# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 17: Acceleration
#
# > Acceleration: the same arithmetic done faster by removing interpreter overhead, vectorising, blocking for the cache, calling BLAS, fusing operators and choosing the thread count, each step measured.
#
# ## Why acceleration matters
#
# A model's forward pass is a fixed amount of arithmetic, yet the time it takes can vary by
# orders of magnitude depending on *how* that arithmetic is issued. A matrix product written
# as three nested Python loops pays the interpreter for every multiply-add; the same product
# handed to a BLAS library runs in compiled, vectorised, cache-blocked, multi-threaded code.
# Between these two extremes lie the ideas every fast ML framework uses: vectorisation,
# cache blocking (tiling), operator fusion (doing several element-wise steps in one pass over
# memory, without temporaries) and thread control.
#
# In this module you implement each idea in numpy, prove that every variant computes the same
# result as the reference, and measure, with the interleaved timing and the statistics of the
# earlier modules, how much each one buys on this machine. Nothing here changes a model's
# predictions: acceleration that changes the answer is a bug.

# %%
#| default_exp optimization.acceleration

# %% [markdown]
# ## The idea: the same sum, issued four ways
#
# The product `C = A @ B` of an (m, k) and a (k, n) matrix is `C[i, j] = sum_p A[i, p] * B[p, j]`:
# m*n*k multiply-adds. The four ways differ only in who runs the loops:
#
# - **naive**: Python runs all three loops; each multiply-add costs a few bytecodes and
#   boxes two Python floats (interpreter overhead dominates).
# - **vectorised**: Python runs one loop over `p`; numpy adds the outer product
#   `A[:, p] * B[p, :]` (m*n multiply-adds) in compiled code per step.
# - **tiled**: the matrices are cut into tile x tile blocks; each block product is small
#   enough to stay in the CPU cache while it is reused.
# - **BLAS**: `np.matmul` calls OpenBLAS/MKL, which tiles, uses SIMD and threads.
#
# The worked example below does a 2 x 2 product by hand and with the outer-product view.

# %%
import numpy as np

A = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
B = np.array([[5.0, 6.0], [7.0, 8.0]], dtype=np.float32)
# By hand: C[0, 0] = 1*5 + 2*7 = 19, C[0, 1] = 1*6 + 2*8 = 22, C[1, 0] = 3*5 + 4*7 = 43, C[1, 1] = 3*6 + 4*8 = 50
outer_sum = np.outer(A[:, 0], B[0]) + np.outer(A[:, 1], B[1])  # one outer product per inner index p
assert np.array_equal(outer_sum, [[19, 22], [43, 50]])
assert np.array_equal(A @ B, outer_sum)
print("A @ B =", (A @ B).tolist(), "= sum of outer products", outer_sum.tolist())

# %% [markdown]
# ## Step 1: matrix multiply, naive, vectorised and BLAS
#
# All four variants take two 2-D numpy arrays and check the shapes the same way: a
# `ValueError` naming both shapes when the inner dimensions differ. The result dtype is
# `np.result_type(a, b)`, as for `np.matmul`.
#
# Implement `matmul_naive` (three Python loops, the inner one accumulating in a Python float;
# use it only for tiny sizes) and `matmul_vectorized` (one Python loop over the inner index `p`,
# adding the outer product `a[:, p, None] * b[p]` into the result in place; no BLAS call).

# %%
#| export
import contextlib
import math

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.spatial import _pair, conv_output_shape
from tinytorch.core.tensor import Tensor
from tinytorch.utils.timing import Timing, calls_per_sample, environment, measure_interleaved
from tinytorch.utils.timing import measure_timer, required_sample_ns, time_batch


def _check_matmul(a, b, who):
    """(a, b) as 2-D arrays with a.shape[1] == b.shape[0]; ValueError naming both shapes otherwise."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(
            f"{who} needs 2-D arrays (m, k) and (k, n) with equal inner sizes, got shapes {a.shape} "
            f"and {b.shape}; transpose or reshape one of them")
    return a, b


def matmul_blas(a, b):
    """a @ b by np.matmul (BLAS), after the same shape check as the other variants."""
    a, b = _check_matmul(a, b, "matmul_blas")
    return np.matmul(a, b)

# %% nbgrader={"grade": false, "grade_id": "matmul-naive", "locked": false, "schema_version": 3, "solution": true}
#| export
def matmul_naive(a, b):
    """a @ b with three Python loops (i, j, p): the interpreter does every multiply-add. Tiny sizes only."""
    a, b = _check_matmul(a, b, "matmul_naive")
    ### BEGIN SOLUTION
    rows, inner = a.shape
    cols = b.shape[1]
    out = np.zeros((rows, cols), dtype=np.result_type(a, b))
    a_list, b_list = a.tolist(), b.tolist()
    for i in range(rows):
        for j in range(cols):
            total = 0.0
            for p in range(inner):
                total += a_list[i][p] * b_list[p][j]
            out[i, j] = total
    return out
    ### END SOLUTION

# %% nbgrader={"grade": false, "grade_id": "matmul-vectorized", "locked": false, "schema_version": 3, "solution": true}
#| export
def matmul_vectorized(a, b):
    """a @ b as a sum of k outer products a[:, p] x b[p, :], each added in place by numpy (no BLAS)."""
    a, b = _check_matmul(a, b, "matmul_vectorized")
    ### BEGIN SOLUTION
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    for p in range(a.shape[1]):
        out += a[:, p, None] * b[p]
    return out
    ### END SOLUTION

# %% [markdown]
# ### Check step 1
#
# Random float64 matrices (so that rounding differences are tiny) against `np.matmul`,
# including a shape that is not square, and the error for mismatched shapes.

# %%
_rng = np.random.default_rng(0)
a_small, b_small = _rng.standard_normal((5, 7)), _rng.standard_normal((7, 3))
for fn in (matmul_naive, matmul_vectorized, matmul_blas):
    np.testing.assert_allclose(fn(a_small, b_small), a_small @ b_small, rtol=1e-12, atol=1e-12)
try:
    matmul_vectorized(a_small, a_small)
    raise AssertionError("a shape mismatch was accepted")
except ValueError as err:
    assert "(5, 7)" in str(err)
    print("error message:", err)
print("OK: naive, vectorised and BLAS matmul agree with np.matmul")

# %% [markdown]
# ## Step 2: cache blocking (tiling)
#
# A CPU reads memory in 64-byte cache lines and keeps recently used lines in small, fast
# caches. When a product streams whole rows of `a` and whole columns of `b`, each element is
# fetched from main memory again every time it is reused. Tiling cuts the matrices into
# tile x tile blocks; the block product `C[I, J] += A[I, P] @ B[P, J]` reuses each loaded
# element `tile` times while it is still in the cache. (BLAS libraries do exactly this, with
# several levels of blocks tuned to the caches.)
#
# `matmul_tiled(a, b, tile=64, on_block=None)` loops over the row, column and inner blocks;
# each block product is one `np.matmul` of the sub-blocks. Edge blocks are smaller when
# `tile` does not divide a size. To make the tile size *observable*, it calls
# `on_block(a_block.shape, b_block.shape)` once per block product (when given): a test
# can count them, ceil(m/t) * ceil(n/t) * ceil(k/t), and check no block exceeds the tile. A
# tile that is not an int >= 1 is a `ValueError`.

# %% nbgrader={"grade": false, "grade_id": "matmul-tiled", "locked": false, "schema_version": 3, "solution": true}
#| export
def _check_tile(tile):
    """tile as an int >= 1; ValueError with the value received otherwise."""
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1:
        raise ValueError(f"tile must be an int >= 1 (the block edge in elements), got {tile!r}; e.g. tile=64")
    return int(tile)


def matmul_tiled(a, b, tile=64, on_block=None):
    """a @ b by tile x tile blocks: out[I, J] += a[I, P] @ b[P, J] for every block triple.

    on_block: called as on_block(a_block.shape, b_block.shape) before each block product.
    """
    a, b = _check_matmul(a, b, "matmul_tiled")
    tile = _check_tile(tile)
    ### BEGIN SOLUTION
    (rows, inner), cols = a.shape, b.shape[1]
    out = np.zeros((rows, cols), dtype=np.result_type(a, b))
    for i in range(0, rows, tile):
        for j in range(0, cols, tile):
            block = out[i:i + tile, j:j + tile]          # a view: += writes into out
            for p in range(0, inner, tile):
                a_block, b_block = a[i:i + tile, p:p + tile], b[p:p + tile, j:j + tile]
                if on_block is not None:
                    on_block(a_block.shape, b_block.shape)
                block += np.matmul(a_block, b_block)
    return out
    ### END SOLUTION

# %% [markdown]
# ### Check step 2
#
# A 10 x 7 by 7 x 5 product with tile 3 (which divides none of the sizes): the number of
# block products is ceil(10/3) * ceil(5/3) * ceil(7/3) = 4 * 2 * 3 = 24.

# %%
a_t, b_t = _rng.standard_normal((10, 7)), _rng.standard_normal((7, 5))
blocks = []
result = matmul_tiled(a_t, b_t, tile=3, on_block=lambda sa, sb: blocks.append((sa, sb)))
np.testing.assert_allclose(result, a_t @ b_t, rtol=1e-12, atol=1e-12)
assert len(blocks) == 24, len(blocks)
assert max(max(sa + sb) for sa, sb in blocks) == 3
for bad in (0, -4, 2.5):
    try:
        matmul_tiled(a_t, b_t, tile=bad)
        raise AssertionError(f"tile={bad!r} was accepted")
    except ValueError:
        pass
print(f"OK: tiled matmul agrees with np.matmul; tile 3 made {len(blocks)} block products")

# %% [markdown]
# ## Step 3: convolution, loops against im2col
#
# Module 09's `Conv2d` turns a convolution into one matrix product: im2col copies every
# receptive field into a column, and a single BLAS call multiplies the flattened kernels by
# all columns. The loop version below is the definition, `out[n, o, y, x] = sum over
# (c, i, j) of x_pad[n, c, y*sh + i, x*sw + j] * w[o, c, i, j] + b[o]`, with Python loops
# over images, output channels and output positions (the window sum is one numpy call).
# It is the oracle that shows im2col computes the same thing, and the measurement below
# shows what the rewrite buys.

# %% nbgrader={"grade": false, "grade_id": "conv2d-naive", "locked": false, "schema_version": 3, "solution": true}
#| export
def conv2d_naive(x, weight, bias=None, stride=1, padding=0):
    """Convolution by loops over (n, o, y, x): x (N, C, H, W), weight (O, C, kh, kw), bias (O,) or None.

    Returns an ndarray (N, O, H_out, W_out). Tiny sizes only (the reference for im2col).
    """
    x, weight = np.asarray(x), np.asarray(weight)
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"conv2d_naive needs x (N, C, H, W) and weight (O, C, kh, kw) with the same C, got shapes "
            f"{x.shape} and {weight.shape}")
    ### BEGIN SOLUTION
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding", minimum=0)
    out_h, out_w = conv_output_shape(x.shape[2:], weight.shape[2:], stride, padding)
    kh, kw = weight.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((x.shape[0], weight.shape[0], out_h, out_w), dtype=np.result_type(x, weight))
    for n in range(x.shape[0]):
        for o in range(weight.shape[0]):
            for y in range(out_h):
                for z in range(out_w):
                    window = padded[n, :, y * sh:y * sh + kh, z * sw:z * sw + kw]
                    out[n, o, y, z] = np.sum(window * weight[o])
    if bias is not None:
        out += np.asarray(bias).reshape(1, -1, 1, 1)
    return out
    ### END SOLUTION

# %% [markdown]
# ### Check step 3

# %%
from tinytorch.core.spatial import Conv2d

conv = Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1, rng=0)
images = Tensor.randn(2, 2, 5, 6, rng=1)
expected = conv(images).data
got = conv2d_naive(images.data, conv.weight.data, conv.bias.data, stride=(2, 1), padding=1)
np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
print(f"OK: loop convolution equals im2col Conv2d, output shape {got.shape}")

# %% [markdown]
# ## Step 4: operator fusion
#
# `relu(x @ W + b)` written the obvious way makes three passes over a (batch, out) array and
# allocates three of them: the matmul result, `+ b` (a new array), `np.maximum` (another). Each
# element-wise pass reads and writes the whole array through memory, and each new array is
# fresh memory the allocator must provide (and the cache must load). **Fusion** does the
# element-wise steps in place on the matmul's output: one allocation (none when the caller
# passes a reusable `out` buffer), and the bias add and the ReLU touch memory that is still
# warm in the cache. Compiled frameworks (XLA, TorchInductor, TensorRT) go further and emit
# one loop; in numpy, in-place ufuncs (`out=`) are the tool.
#
# The fused result is the *same* arithmetic in the same order, so it equals the unfused one
# to the last bit in float32.
#
# Implement `fused_linear_relu(x, weight, bias, out=None)`: `np.matmul(x, weight, out=out)`,
# then `np.add(out, bias, out=out)` (skip when bias is None) and `np.maximum(out, 0, out=out)`.
# The given `_check_linear` validates the shapes and the `out` buffer.

# %%
#| export
def _check_linear(x, weight, bias, out):
    """The output shape and dtype of x @ weight (+ bias); ValueError naming shapes when they do not fit."""
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[0]:
        raise ValueError(
            f"linear needs x (..., in) and weight (in, out), got shapes {x.shape} and {weight.shape}; "
            "the last size of x must equal weight's first")
    if bias is not None and bias.shape != weight.shape[1:]:
        raise ValueError(f"bias must have shape {weight.shape[1:]} (one per output), got {bias.shape}")
    shape, dtype = x.shape[:-1] + weight.shape[1:], np.result_type(x, weight)
    if out is not None and (out.shape != shape or out.dtype != dtype):
        raise ValueError(f"out must be an array of shape {shape} and dtype {dtype}, got {out.shape} {out.dtype}")
    return shape, dtype


def linear_relu_unfused(x, weight, bias):
    """relu(x @ weight + bias), the obvious way: three operations, three new arrays."""
    x, weight = np.asarray(x), np.asarray(weight)
    bias = None if bias is None else np.asarray(bias)
    _check_linear(x, weight, bias, None)
    y = np.matmul(x, weight)
    if bias is not None:
        y = y + bias
    return np.maximum(y, 0)

# %% nbgrader={"grade": false, "grade_id": "fused-linear-relu", "locked": false, "schema_version": 3, "solution": true}
#| export
def fused_linear_relu(x, weight, bias, out=None):
    """relu(x @ weight + bias) with one matmul into out (a new array when None), then in-place bias and max."""
    x, weight = np.asarray(x), np.asarray(weight)
    bias = None if bias is None else np.asarray(bias)
    _check_linear(x, weight, bias, out)
    ### BEGIN SOLUTION
    out = np.matmul(x, weight, out=out)
    if bias is not None:
        np.add(out, bias, out=out)
    np.maximum(out, 0, out=out)
    return out
    ### END SOLUTION

# %% [markdown]
# ### Check step 4a

# %%
x_f, w_f, b_f = (_rng.standard_normal(s).astype(np.float32) for s in ((6, 5), (5, 4), (4,)))
buffer = np.empty((6, 4), dtype=np.float32)
fused = fused_linear_relu(x_f, w_f, b_f, out=buffer)
assert fused is buffer                                     # written into the caller's buffer
assert np.array_equal(fused, linear_relu_unfused(x_f, w_f, b_f))
assert np.array_equal(fused_linear_relu(x_f, w_f, None), np.maximum(x_f @ w_f, 0))
print("OK: fused Linear+bias+ReLU equals the unfused sequence bit for bit")

# %% [markdown]
# ### A fused layer for inference, and a fused GELU
#
# `FusedLinearReLU(linear)` replaces a `Linear` followed by `ReLU` in a trained model. It
# shares the Linear's parameters (no copy) and computes with `fused_linear_relu` on their
# arrays. **It is for inference only**: it records no autograd graph, so it refuses to run in
# training mode (call `.eval()` first) rather than silently returning an output without
# gradients. Each call allocates one output array (never a reused buffer, which the next call
# would overwrite while the caller still holds it). `fuse_linear_relu(model)` rewrites a
# `Sequential`, replacing every `Linear, ReLU` pair.
#
# Implement `FusedLinearReLU.forward` (its checks for the mode and the input are given) and the
# rewrite in `fuse_linear_relu`: walk the layers, put one `FusedLinearReLU` wherever a `Linear`
# is directly followed by a `ReLU` (skipping both), keep every other layer object as it is,
# and return a `Sequential` in the original's training mode.
#
# The tanh approximation of GELU, `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, written
# as one numpy expression creates about eight temporaries. The fused version computes
# `sqrt(2/pi) * x * (1 + 0.044715 x^2)` (the same inner value, factored), the tanh, the
# `1 +` and the products in one output buffer. The factoring changes the rounding order, so
# it agrees with the unfused expression within float32 rounding, not bit for bit.

# %% nbgrader={"grade": false, "grade_id": "fused-module", "locked": false, "schema_version": 3, "solution": true}
#| export
class FusedLinearReLU(Module):
    """relu(linear(x)) for inference, by fused_linear_relu on the wrapped Linear's parameters.

    No autograd: forward raises in training mode; call .eval() first.
    """

    def __init__(self, linear):
        super().__init__()
        if not isinstance(linear, Linear):
            raise TypeError(f"FusedLinearReLU wraps a Linear, got {type(linear).__name__}")
        self.linear = linear

    def forward(self, x):
        """x: Tensor (..., in_features) -> Tensor (..., out_features), no gradient recorded."""
        if self.training:
            raise RuntimeError("FusedLinearReLU is inference-only (it records no gradients); call model.eval() "
                               "first, or train the unfused Linear + ReLU")
        if not isinstance(x, Tensor):
            raise TypeError(f"FusedLinearReLU expects a Tensor, got {type(x).__name__}; wrap data with Tensor(...)")
        ### BEGIN SOLUTION
        bias = None if self.linear.bias is None else self.linear.bias.data
        return Tensor.from_numpy(fused_linear_relu(x.data, self.linear.weight.data, bias))
        ### END SOLUTION

    def extra_repr(self):
        return f"in_features={self.linear.in_features}, out_features={self.linear.out_features}, inference only"


def fuse_linear_relu(model):
    """A new Sequential sharing model's layers, each Linear directly followed by ReLU fused into one layer."""
    if not isinstance(model, Sequential):
        raise TypeError(f"fuse_linear_relu rewrites a Sequential, got {type(model).__name__}")
    ### BEGIN SOLUTION
    layers, items, index = [], list(model), 0
    while index < len(items):
        layer = items[index]
        if isinstance(layer, Linear) and index + 1 < len(items) and isinstance(items[index + 1], ReLU):
            layers.append(FusedLinearReLU(layer))
            index += 2
        else:
            layers.append(layer)
            index += 1
    return Sequential(*layers).train(model.training)
    ### END SOLUTION

# %% nbgrader={"grade": false, "grade_id": "fused-gelu", "locked": false, "schema_version": 3, "solution": true}
#| export
_GELU_C = math.sqrt(2 / math.pi)


def gelu_tanh_unfused(x):
    """The tanh-approximate GELU as one numpy expression (several temporary arrays)."""
    x = np.asarray(x)
    return 0.5 * x * (1 + np.tanh(_GELU_C * (x + 0.044715 * x ** 3)))


def gelu_tanh_fused(x, out=None):
    """The tanh-approximate GELU computed in one buffer (out, or one new array) by in-place ufuncs."""
    ### BEGIN SOLUTION
    x = np.asarray(x)
    out = np.multiply(x, x, out=out)       # x^2
    out *= 0.044715
    out += 1
    out *= x
    out *= x.dtype.type(_GELU_C) if x.dtype.kind == "f" else _GELU_C   # sqrt(2/pi) x (1 + 0.044715 x^2)
    np.tanh(out, out=out)
    out += 1
    out *= x
    out *= 0.5
    return out
    ### END SOLUTION

# %% [markdown]
# ### Check step 4b

# %%
from tinytorch.core.activations import GELU

mlp_check = Sequential(Linear(5, 4, rng=0), ReLU(), Linear(4, 3, rng=1)).eval()
fused_mlp = fuse_linear_relu(mlp_check)
x_m = Tensor.randn(7, 5, rng=2)
assert np.array_equal(fused_mlp(x_m).data, mlp_check(x_m).data)
try:
    fused_mlp.train()(x_m)
    raise AssertionError("the fused layer ran in training mode")
except RuntimeError as err:
    print("training mode:", err)
fused_mlp.eval()
g = np.linspace(-6, 6, 101, dtype=np.float32)
reference = GELU(approximate="tanh")(Tensor(g)).data
np.testing.assert_allclose(gelu_tanh_fused(g), reference, rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(gelu_tanh_fused(g), gelu_tanh_unfused(g), rtol=1e-5, atol=1e-6)
print(fused_mlp)
print("OK: the fused model predicts exactly like the original; fused GELU matches within float32 rounding")

# %% [markdown]
# ## Step 5: BLAS threads
#
# `np.matmul` may run on several cores: OpenBLAS or MKL split a large product into blocks
# and give each thread some. Threads pay off only when each gets enough work; for small
# products the start-up and synchronisation cost more than they save, and on a shared machine
# they compete with other processes. The thread count is a setting of the BLAS library,
# which `threadpoolctl` reads and changes at run time.
#
# `blas_threads()` (given) lists the BLAS libraries loaded in this process and their thread
# counts. Implement `limit_blas_threads(n, controller=None)`, a context manager that sets
# every BLAS library to `n` threads inside the `with` block and restores the previous
# setting afterwards, even when the block raises: use `threadpool_limits(limits=n,
# user_api="blas")` (or `controller.limit(...)` with the same arguments when a
# `ThreadpoolController` is given: building one scans the loaded libraries, which a timing
# loop should do once, not on every switch). It yields n.

# %%
#| export
def blas_threads():
    """[{library, version, num_threads, threading_layer, filepath}] for each loaded BLAS library."""
    return [{"library": info["internal_api"], "version": info.get("version"), "num_threads": info["num_threads"],
             "threading_layer": info.get("threading_layer"), "filepath": info["filepath"]}
            for info in threadpool_info() if info["user_api"] == "blas"]


def _check_threads(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"the BLAS thread count must be an int >= 1, got {n!r}")
    return int(n)

# %% nbgrader={"grade": false, "grade_id": "blas-threads", "locked": false, "schema_version": 3, "solution": true}
#| export
@contextlib.contextmanager
def limit_blas_threads(n, controller=None):
    """Inside the block every BLAS library runs with n threads; the previous counts come back after."""
    n = _check_threads(n)
    ### BEGIN SOLUTION
    if controller is None:
        limiter = threadpool_limits(limits=n, user_api="blas")
    else:
        limiter = controller.limit(limits=n, user_api="blas")
    with limiter:
        yield n
    ### END SOLUTION

# %% [markdown]
# ### Check step 5

# %%
before = [lib["num_threads"] for lib in blas_threads()]
with limit_blas_threads(1):
    inside = [lib["num_threads"] for lib in blas_threads()]
after = [lib["num_threads"] for lib in blas_threads()]
assert inside == [1] * len(before) and after == before
print(f"BLAS libraries: {[(lib['library'], lib['version']) for lib in blas_threads()]}")
print(f"thread counts before {before}, inside limit_blas_threads(1) {inside}, after {after}")
print("OK: thread limit applied and restored")

# %% [markdown]
# ## Step 6: comparing two timings honestly
#
# "Fused is faster" is a claim about two distributions of timings, not two numbers. The
# tools (from module 01's interleaved measurement and the measurement rules):
#
# - **ratio of medians** `median(a) / median(b)`: below 1 means `a` is faster;
# - its **bootstrap 95% interval**: resample each side's raw samples with replacement
#   (a seeded `np.random.Generator`), recompute the ratio of medians each time, and take the
#   2.5th and 97.5th percentiles of those ratios. If the interval excludes 1, the data
#   support a difference;
# - the **Mann-Whitney U** rank test's p-value (`scipy.stats.mannwhitneyu`, two-sided) and
#   its effect size, the probability that a sample of `a` is faster than one of `b`;
# - **Holm's correction** when a report makes several comparisons.
#
# Implement `bootstrap_ratio_ci(a, b, confidence=0.95, resamples=2000, rng=0)` returning
# `(ratio, low, high)`; vectorise the resampling (one `rng.integers` call per side of shape
# (resamples, n)).

# %% nbgrader={"grade": false, "grade_id": "bootstrap-ratio", "locked": false, "schema_version": 3, "solution": true}
#| export
def _positive_samples(samples, name):
    values = np.asarray(samples, dtype=np.float64).reshape(-1)
    if values.size < 2 or not np.isfinite(values).all() or (values <= 0).any():
        raise ValueError(f"{name} must hold at least 2 positive finite timings, got {values.size} values: {values[:5]}")
    return values


def bootstrap_ratio_ci(a, b, confidence=0.95, resamples=2000, rng=0):
    """(median(a) / median(b), low, high): percentile bootstrap interval, each side resampled on its own.

    rng: None, an int seed or a np.random.Generator.
    """
    a, b = _positive_samples(a, "a"), _positive_samples(b, "b")
    if not 0 < confidence < 1 or resamples < 1:
        raise ValueError(f"need 0 < confidence < 1 and resamples >= 1, got {confidence!r}, {resamples!r}")
    ### BEGIN SOLUTION
    generator = np.random.default_rng(rng)
    med_a = np.median(a[generator.integers(0, a.size, size=(resamples, a.size))], axis=1)
    med_b = np.median(b[generator.integers(0, b.size, size=(resamples, b.size))], axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(med_a / med_b, (tail, 100 - tail))
    return float(np.median(a) / np.median(b)), float(low), float(high)
    ### END SOLUTION

# %% [markdown]
# `median_interval` (given) is the distribution-free interval of one median. Implement
# `holm(p_values)`: sort the valid p-values ascending, multiply the one of rank `r` (0-based)
# by `m - r` (m = number of valid p-values), cap at 1 and keep the sequence non-decreasing
# (each adjusted value is at least the one before it); return them in the order given, with
# NaN where the input was NaN. `compare_samples` (given) puts the pieces together.

# %% nbgrader={"grade": false, "grade_id": "holm", "locked": false, "schema_version": 3, "solution": true}
#| export
def median_interval(samples, confidence=0.95):
    """(low, high): distribution-free order-statistic interval of the median (binomial, n >= 6 for 95%).

    For n too small to reach the confidence, (min, max) is returned (coverage below nominal).
    """
    values = np.sort(np.asarray(samples, dtype=np.float64).reshape(-1))
    n = values.size
    k = int(stats.binom.ppf((1 - confidence) / 2, n, 0.5))   # rank of the lower bound (1-based)
    if k < 1:
        return float(values[0]), float(values[-1])
    return float(values[k - 1]), float(values[n - k])


def holm(p_values):
    """Holm-Bonferroni adjusted p-values (same order as given; NaN entries stay NaN)."""
    p = np.asarray(p_values, dtype=np.float64)
    ### BEGIN SOLUTION
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid])]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted
    ### END SOLUTION


def compare_samples(a, b, confidence=0.95, resamples=2000, rng=0):
    """a against b (timings): ratio of medians with its bootstrap interval, Mann-Whitney p, P(a faster)."""
    ratio, low, high = bootstrap_ratio_ci(a, b, confidence, resamples, rng)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    test = stats.mannwhitneyu(a, b, alternative="two-sided")
    faster = 1 - test.statistic / (a.size * b.size)    # U counts pairs with a > b (ties 1/2)
    return {"ratio": ratio, "ci_low": low, "ci_high": high, "p_value": float(test.pvalue),
            "prob_faster": float(faster), "n_a": int(a.size), "n_b": int(b.size)}

# %% [markdown]
# ### Check step 6
#
# Synthetic timings with a known answer: `a` is lognormal around 1.0 and `b` around 2.0, so
# the true ratio of medians is 0.5.

# %%
syn = np.random.default_rng(7)
fast, slow = np.exp(syn.normal(0, 0.1, 40)), 2 * np.exp(syn.normal(0, 0.1, 40))
ratio, low, high = bootstrap_ratio_ci(fast, slow, rng=1)
assert low <= 0.5 <= high and low <= ratio <= high
assert bootstrap_ratio_ci(fast, slow, rng=1) == (ratio, low, high)     # seeded: reproducible
summary = compare_samples(fast, slow)
assert summary["p_value"] < 1e-6 and summary["prob_faster"] == 1.0
print(f"ratio {ratio:.3f}, 95% interval [{low:.3f}, {high:.3f}], p = {summary['p_value']:.2g}")
print("OK: bootstrap interval of the ratio of medians")

# %% [markdown]
# ## Putting it together: the acceleration report
#
# `acceleration_report` (given) measures every idea of this module with interleaved,
# calibrated timings and returns one row per variant: median and its interval, spread,
# and against the group's baseline (the first variant of each group) the ratio of medians
# with its bootstrap interval, the Mann-Whitney p-value (also Holm-adjusted over the whole
# report) and the probability of being faster. Groups:
#
# - `matmul NxN`: naive (only at the smallest size), vectorised, tiled and BLAS;
# - `tiled 512 (1 BLAS thread)`: BLAS against tiled with several tile sizes, all on one BLAS
#   thread so that threading does not blur the effect of the block size;
# - `linear+relu BxF`: unfused, fused with a reused output buffer, fused with a new output,
#   once with the default BLAS threads and once with 1 thread (the matmul both share is then
#   less noisy, which makes the small difference fusion makes easier to see);
# - `linear+relu layers BxF`: the same computation as framework layers, a `Linear` followed by
#   a `ReLU` (two layer calls, two Tensor wrappers, three arrays) against one `FusedLinearReLU`
#   (one call, one array), in eval mode under `no_grad`: what a model actually runs;
# - `blas threads 512`: the library's default thread count against 1 thread.
#
# Thread switching happens between timed batches, never inside one
# (`measure_interleaved_threads`), so it costs neither side anything.

# %%
#| export
def measure_interleaved_threads(arms, repeats, min_sample_ns=None, controller=None):
    """{name: Timing} of arms {name: (fn, threads or None)}: rounds A B A B ..., each arm's batch
    timed with its BLAS thread count (None: unchanged) set before the clock starts."""
    controller = ThreadpoolController() if controller is None else controller
    floor = required_sample_ns(measure_timer().overhead_ns) if min_sample_ns is None else min_sample_ns

    def under(threads):
        return contextlib.nullcontext() if threads is None else limit_blas_threads(threads, controller)

    counts, samples = {}, {name: [] for name in arms}
    for name, (fn, threads) in arms.items():
        with under(threads):
            counts[name] = calls_per_sample(fn, floor)
    for _ in range(repeats):
        for name, (fn, threads) in arms.items():
            with under(threads):
                samples[name].append(time_batch(fn, counts[name]) / counts[name])
    return {name: Timing(name, samples[name], counts[name]) for name in arms}


REPORT_COLUMNS = ("group", "variant", "median_ms", "median_low_ms", "median_high_ms", "iqr_over_median",
                  "n", "calls_per_sample", "ratio", "ratio_low", "ratio_high", "p_value", "p_holm",
                  "prob_faster", "warning")


def timing_rows(group, timings, rng=0):
    """Report rows for {variant: Timing}; the first variant is the baseline of the comparisons."""
    items = list(timings.items())
    baseline = items[0][1].samples_ns
    rows = []
    for variant, timing in items:
        low, high = median_interval(timing.samples_ns)
        row = {"group": group, "variant": variant, "median_ms": timing.median_ns / 1e6,
               "median_low_ms": low / 1e6, "median_high_ms": high / 1e6,
               "iqr_over_median": timing.iqr_over_median, "n": timing.n,
               "calls_per_sample": timing.calls_per_sample, "ratio": 1.0, "ratio_low": np.nan,
               "ratio_high": np.nan, "p_value": np.nan, "prob_faster": np.nan, "warning": timing.warning}
        if timing is not items[0][1]:
            cmp = compare_samples(timing.samples_ns, baseline, rng=rng)
            row.update(ratio=cmp["ratio"], ratio_low=cmp["ci_low"], ratio_high=cmp["ci_high"],
                       p_value=cmp["p_value"], prob_faster=cmp["prob_faster"])
        rows.append(row)
    return rows


def _matmul_groups(data, sizes, naive_max, tile, repeats, min_sample_ns):
    rows = []
    for size in sizes:
        a, b = data.standard_normal((size, size), dtype=np.float32), data.standard_normal((size, size), dtype=np.float32)
        fns = {"naive": lambda: matmul_naive(a, b)} if size <= naive_max else {}
        fns.update({"vectorized": lambda: matmul_vectorized(a, b), f"tiled {tile}": lambda: matmul_tiled(a, b, tile),
                    "blas": lambda: matmul_blas(a, b)})
        rows += timing_rows(f"matmul {size}x{size}", measure_interleaved(fns, repeats, min_sample_ns))
    return rows


def _tiled_group(data, size, tiles, repeats, min_sample_ns, controller):
    a, b = data.standard_normal((size, size), dtype=np.float32), data.standard_normal((size, size), dtype=np.float32)
    arms = {"blas": (lambda: matmul_blas(a, b), 1)}
    arms.update({f"tiled {t}": ((lambda t=t: matmul_tiled(a, b, t)), 1) for t in tiles})
    return timing_rows(f"tiled {size} (1 BLAS thread)", measure_interleaved_threads(arms, repeats, min_sample_ns, controller))


def _fusion_group(data, batch, features, repeats, min_sample_ns, controller, threads):
    x = data.standard_normal((batch, features), dtype=np.float32)
    w = data.standard_normal((features, features), dtype=np.float32) / np.float32(math.sqrt(features))
    b = data.standard_normal(features, dtype=np.float32)
    buffer = np.empty((batch, features), dtype=np.float32)
    arms = {"unfused": (lambda: linear_relu_unfused(x, w, b), threads),
            "fused (reused out buffer)": (lambda: fused_linear_relu(x, w, b, out=buffer), threads),
            "fused (new output)": (lambda: fused_linear_relu(x, w, b), threads)}
    label = "default BLAS threads" if threads is None else f"{threads} BLAS thread"
    return timing_rows(f"linear+relu {batch}x{features} @ {features}x{features} ({label})",
                       measure_interleaved_threads(arms, repeats, min_sample_ns, controller))


def _layer_fusion_group(data, batch, features, repeats, min_sample_ns, controller):
    """The framework-level comparison: Linear then ReLU layers against one FusedLinearReLU, eval, no_grad."""
    from tinytorch.core.autograd import no_grad

    layers = Sequential(Linear(features, features, rng=int(data.integers(2**31))), ReLU()).eval()
    fused = FusedLinearReLU(layers[0]).eval()
    x = Tensor(data.standard_normal((batch, features), dtype=np.float32))
    arms = {"Linear + ReLU layers": (lambda: layers(x), None), "FusedLinearReLU layer": (lambda: fused(x), None)}
    with no_grad():
        timings = measure_interleaved_threads(arms, repeats, min_sample_ns, controller)
    return timing_rows(f"linear+relu layers {batch}x{features} (default BLAS threads)", timings)


def _thread_group(data, size, repeats, min_sample_ns, controller):
    libraries = blas_threads()
    if not libraries:
        return []
    default = max(lib["num_threads"] for lib in libraries)
    a, b = data.standard_normal((size, size), dtype=np.float32), data.standard_normal((size, size), dtype=np.float32)
    arms = {f"{default} threads (default)": (lambda: matmul_blas(a, b), default),
            "1 thread": (lambda: matmul_blas(a, b), 1)}
    return timing_rows(f"blas threads {size}", measure_interleaved_threads(arms, repeats, min_sample_ns, controller))


def acceleration_report(batch=64, features=512, sizes=(32, 128), naive_max=32, tiled_size=512,
                        tiles=(32, 64, 128, 256), repeats=15, fused_repeats=40, min_sample_ns=None, rng=0):
    """DataFrame of REPORT_COLUMNS: every acceleration measured (see the module); attrs hold the
    environment and the BLAS libraries. rng seeds the data and the bootstrap."""
    timer = measure_timer()
    min_sample_ns = required_sample_ns(timer.overhead_ns) if min_sample_ns is None else min_sample_ns
    data = np.random.default_rng(rng)
    controller = ThreadpoolController()
    rows = (_matmul_groups(data, sizes, naive_max, 64, repeats, min_sample_ns)
            + _tiled_group(data, tiled_size, tiles, repeats, min_sample_ns, controller)
            + _fusion_group(data, batch, features, fused_repeats, min_sample_ns, controller, None)
            + _fusion_group(data, batch, features, fused_repeats, min_sample_ns, controller, 1)
            + _layer_fusion_group(data, batch, features, fused_repeats, min_sample_ns, controller)
            + _thread_group(data, tiled_size, repeats, min_sample_ns, controller))
    table = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    table["p_holm"] = holm(table["p_value"].to_numpy())
    table.attrs["environment"] = environment(timer, min_sample_ns)
    table.attrs["blas"] = blas_threads()
    return table

# %% [markdown]
# ### Check the report on tiny sizes
#
# A fast run with small sizes and few repeats checks the table's shape and its baselines
# (the real measurement follows in the systems analysis).

# %%
tiny = acceleration_report(batch=4, features=16, sizes=(8,), naive_max=8, tiled_size=32, tiles=(8,),
                           repeats=3, fused_repeats=3, min_sample_ns=100_000)
assert list(tiny.columns) == list(REPORT_COLUMNS)
assert (tiny.groupby("group", sort=False)["ratio"].first() == 1.0).all()
print(tiny[["group", "variant", "median_ms", "ratio"]].to_string(index=False))
print("OK: the report has one baseline per group")

# %% [markdown]
# ## Graded tests
#
# Each cell checks a step against an independent oracle: `np.matmul`, numpy written out,
# counts by hand, module 09's `Conv2d`, module 02's `GELU`, threadpoolctl's own report, and
# synthetic timings whose true ratio is known.

# %% nbgrader={"grade": true, "grade_id": "test-matmul-naive", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_g = np.random.default_rng(11)
_a, _b = _g.standard_normal((4, 6)), _g.standard_normal((6, 2))
np.testing.assert_allclose(matmul_naive(_a, _b), np.matmul(_a, _b), rtol=1e-12, atol=1e-12)
assert np.array_equal(matmul_naive(np.array([[1, 2]]), np.array([[3], [4]])), [[11]])
try:
    matmul_naive(_a, _a)
    raise AssertionError("matmul_naive accepted (4, 6) @ (4, 6)")
except ValueError as err:
    assert "(4, 6)" in str(err)

# %% nbgrader={"grade": true, "grade_id": "test-matmul-vectorized", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_a, _b = _g.standard_normal((9, 3)), _g.standard_normal((3, 11))
np.testing.assert_allclose(matmul_vectorized(_a, _b), np.matmul(_a, _b), rtol=1e-12, atol=1e-12)
assert matmul_vectorized(_a.astype(np.float32), _b.astype(np.float32)).dtype == np.float32
try:
    matmul_vectorized(_a, _a)
    raise AssertionError("matmul_vectorized accepted mismatched shapes")
except ValueError:
    pass

# %% nbgrader={"grade": true, "grade_id": "test-matmul-tiled", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_a, _b = _g.standard_normal((13, 9)), _g.standard_normal((9, 6))
for _tile, _count in ((4, 4 * 2 * 3), (5, 3 * 2 * 2), (64, 1), (1, 13 * 6 * 9)):
    _shapes = []
    np.testing.assert_allclose(matmul_tiled(_a, _b, _tile, on_block=lambda sa, sb: _shapes.append(sa + sb)),
                               _a @ _b, rtol=1e-12, atol=1e-12)
    assert len(_shapes) == _count, (_tile, len(_shapes))
    assert max(max(s) for s in _shapes) == min(_tile, 13)
try:
    matmul_tiled(_a, _b, tile=0)
    raise AssertionError("tile=0 was accepted")
except ValueError:
    pass

# %% nbgrader={"grade": true, "grade_id": "test-conv2d-naive", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_x = _g.standard_normal((1, 1, 3, 3))
_w = np.ones((1, 1, 2, 2))
# each output is the sum of a 2x2 window (plus bias 0.5), computed here with explicit slices
_expected = np.array([[_x[0, 0, i:i + 2, j:j + 2].sum() + 0.5 for j in range(2)] for i in range(2)])
np.testing.assert_allclose(conv2d_naive(_x, _w, np.array([0.5]))[0, 0], _expected, rtol=1e-12)
_conv = Conv2d(3, 2, 3, stride=2, padding=1, rng=3)
_img = Tensor.randn(2, 3, 7, 5, rng=4)
np.testing.assert_allclose(conv2d_naive(_img.data, _conv.weight.data, _conv.bias.data, 2, 1), _conv(_img).data,
                           rtol=1e-5, atol=1e-6)

# %% nbgrader={"grade": true, "grade_id": "test-fused-linear-relu", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_x, _w, _bias = (_g.standard_normal(s).astype(np.float32) for s in ((8, 6), (6, 5), (5,)))
_oracle = np.maximum(np.matmul(_x, _w) + _bias, 0)
assert np.array_equal(fused_linear_relu(_x, _w, _bias), _oracle)
_out = np.full((8, 5), np.nan, dtype=np.float32)
assert fused_linear_relu(_x, _w, _bias, out=_out) is _out and np.array_equal(_out, _oracle)
assert (fused_linear_relu(_x, _w, None) >= 0).all()
try:
    fused_linear_relu(_x, _w.T, _bias)
    raise AssertionError("fused_linear_relu accepted mismatched shapes")
except ValueError:
    pass

# %% nbgrader={"grade": true, "grade_id": "test-fused-module", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_ref = Sequential(Linear(6, 5, rng=5), ReLU()).eval()
_fused = FusedLinearReLU(_ref[0]).eval()
_inp = Tensor.randn(4, 6, rng=6)
assert np.array_equal(_fused(_inp).data, _ref(_inp).data)
assert _fused.parameters()[0] is _ref[0].weight          # shares, does not copy
try:
    _fused.train()(_inp)
    raise AssertionError("FusedLinearReLU ran in training mode")
except RuntimeError:
    pass
_mlp = Sequential(Linear(6, 5, rng=7), ReLU(), ReLU(), Linear(5, 2, rng=8), ReLU()).eval()
_rewritten = fuse_linear_relu(_mlp)
assert [type(layer).__name__ for layer in _rewritten] == ["FusedLinearReLU", "ReLU", "FusedLinearReLU"], list(_rewritten)
assert _rewritten[0].linear is _mlp[0] and not _rewritten.training
assert np.array_equal(_rewritten(_inp).data, _mlp(_inp).data)

# %% nbgrader={"grade": true, "grade_id": "test-fused-gelu", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_v = _g.standard_normal(200).astype(np.float32) * 3
_oracle = 0.5 * _v.astype(np.float64) * (1 + np.tanh(np.sqrt(2 / np.pi) * (_v + 0.044715 * _v.astype(np.float64) ** 3)))
np.testing.assert_allclose(gelu_tanh_fused(_v), _oracle, rtol=1e-5, atol=1e-6)
assert gelu_tanh_fused(_v).dtype == np.float32
_buf = np.empty_like(_v)
assert gelu_tanh_fused(_v, out=_buf) is _buf

# %% nbgrader={"grade": true, "grade_id": "test-blas-threads", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_before = [lib["num_threads"] for lib in blas_threads()]
try:
    with limit_blas_threads(1) as _n:
        assert _n == 1 and [lib["num_threads"] for lib in blas_threads()] == [1] * len(_before)
        raise KeyError("raised inside the block")
except KeyError:
    pass
assert [lib["num_threads"] for lib in blas_threads()] == _before
try:
    with limit_blas_threads(0):
        pass
    raise AssertionError("0 threads was accepted")
except ValueError:
    pass

# %% nbgrader={"grade": true, "grade_id": "test-bootstrap-ratio", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_s = np.random.default_rng(3)
_fast, _slow = 3 * np.exp(_s.normal(0, 0.05, 30)), 4 * np.exp(_s.normal(0, 0.05, 30))
_r, _lo, _hi = bootstrap_ratio_ci(_fast, _slow, rng=0)
assert abs(_r - np.median(_fast) / np.median(_slow)) < 1e-12
assert _lo <= 0.75 <= _hi and _hi < 1
assert bootstrap_ratio_ci(_fast, _slow, rng=0) == (_r, _lo, _hi)
assert bootstrap_ratio_ci(_fast, _slow, rng=np.random.default_rng(0)) == (_r, _lo, _hi)
_r2, _lo2, _hi2 = bootstrap_ratio_ci(_fast, _slow, confidence=0.5, rng=0)
assert _lo <= _lo2 <= _hi2 <= _hi                          # a lower confidence gives a narrower interval

# %% nbgrader={"grade": true, "grade_id": "test-holm", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# By hand, p = (0.01, 0.04, nan, 0.03), m = 3 valid: sorted 0.01, 0.03, 0.04 -> 3*0.01 = 0.03, 2*0.03 = 0.06,
# max(0.06, 1*0.04) = 0.06 (never below the one before).
_adj = holm([0.01, 0.04, np.nan, 0.03])
assert np.isnan(_adj[2]), _adj
np.testing.assert_allclose(_adj[[0, 1, 3]], [0.03, 0.06, 0.06], rtol=1e-12)
np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])                 # 2 * 0.5 and 0.6 capped at 1
np.testing.assert_allclose(holm([0.2]), [0.2])                           # one test: unchanged
assert np.isnan(holm([np.nan])).all()

# %% [markdown]
# ## Systems analysis
#
# Everything below is measured on this machine, now; the sentences are printed from the
# measured values. First the environment, then the full report.

# %%
from tinytorch.utils.timing import describe_environment

report = acceleration_report()
print(describe_environment(report.attrs["environment"]))
print("BLAS:", [(lib["library"], lib["version"], lib["num_threads"]) for lib in report.attrs["blas"]])
with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 200):
    print(report.drop(columns=["warning"]).to_string(index=False))
for row in report[report["warning"].notna()].itertuples():
    print(f"noise in {row.group} / {row.variant}: {row.warning}")

# %% [markdown]
# ### Interpreter overhead, vectorisation, BLAS
#
# The naive product pays the interpreter for each multiply-add; the vectorised one pays it
# once per outer product (k times instead of m*n*k); BLAS pays it once per call and then runs
# SIMD code on cache-sized blocks. The lines below turn the report into speed-ups.

# %%
def speedup_sentence(table, group, fast, slow):
    rows = table[table["group"] == group].set_index("variant")
    ratio = rows.loc[fast, "median_ms"] / rows.loc[slow, "median_ms"]
    how = f"{1 / ratio:.3g}x faster" if ratio < 1 else f"{ratio:.3g}x slower"
    return (f"{group}: {fast} takes {rows.loc[fast, 'median_ms']:.4g} ms, {slow} "
            f"{rows.loc[slow, 'median_ms']:.4g} ms ({how})")


small, medium = (f"matmul {s}x{s}" for s in (32, 128))
print(speedup_sentence(report, small, "vectorized", "naive"))
print(speedup_sentence(report, small, "blas", "vectorized"))
print(speedup_sentence(report, medium, "blas", "vectorized"))
print(speedup_sentence(report, medium, "tiled 64", "vectorized"))

# %% [markdown]
# ### Cache blocking
#
# Small tiles mean many block products, each paying Python and call overhead; large tiles
# mean blocks that no longer fit in the cache (and, at the limit, one BLAS call). The best
# tile size is a property of this machine; the cell prints which one won here and how far
# the best tiled product lands from a single BLAS call (which tiles internally, in compiled code).

# %%
tiled = report[report["group"].str.startswith("tiled 512")].set_index("variant")
tiles_only = tiled.drop(index="blas")
best = tiles_only["median_ms"].idxmin()
print(f"Best tile here: {best} at {tiles_only.loc[best, 'median_ms']:.3g} ms, "
      f"{tiles_only.loc[best, 'ratio']:.3g}x the BLAS time "
      f"(interval [{tiles_only.loc[best, 'ratio_low']:.3g}, {tiles_only.loc[best, 'ratio_high']:.3g}]); "
      f"worst: {tiles_only['median_ms'].idxmax()} at {tiles_only['median_ms'].max():.3g} ms.")

# %% [markdown]
# ### Fusion: the target
#
# The target: the fused Linear+bias+ReLU measurably faster than the unfused sequence at
# batch 64. "Measurably" means the ratio's 95% interval lies below 1 and the Holm-adjusted
# p-value is below 0.05. The cell prints the verdict from the numbers, whichever way it goes.
# The matmul is the same in both; on raw arrays fusion only saves the two temporaries and their
# memory passes, so the gain is bounded by how much of the time those passes take (with a
# 512 x 512 matmul, very little). As layers, fusion also removes a layer call and a Tensor
# wrapper: the `linear+relu layers` group measures that, the case a model actually runs.

# %%
#| export
def fusion_verdict(table):
    """One line per fusion comparison of an acceleration report, with its measured verdict: "measurably
    faster/slower" only when the ratio's 95% interval excludes 1 and the Holm-adjusted p-value is < 0.05."""
    lines = []
    fusion = table[table["group"].str.startswith("linear+relu")]
    for name, rows in fusion.groupby("group", sort=False):
        base = rows.iloc[0]
        lines.append(f"{name}: {base['variant']} median {base['median_ms']:.4g} ms")
        for _, row in rows.iloc[1:].iterrows():
            faster = row["ratio_high"] < 1 and row["p_holm"] < 0.05
            slower = row["ratio_low"] > 1 and row["p_holm"] < 0.05
            verdict = ("measurably faster" if faster else "measurably slower" if slower
                       else "not measurably different")
            lines.append(f"  {row['variant']}: time ratio {row['ratio']:.3f}, 95% interval [{row['ratio_low']:.3f}, "
                         f"{row['ratio_high']:.3f}], Mann-Whitney p = {row['p_value']:.2g} (Holm {row['p_holm']:.2g}), "
                         f"P(faster) = {row['prob_faster']:.2f}: {verdict}")
    return lines

# %%
print(*fusion_verdict(report), sep="\n")

# %% [markdown]
# ### Threads
#
# The same 512 x 512 product with the library's default thread count and with one thread,
# the switch made outside the timed batches.

# %%
threads = report[report["group"].str.startswith("blas threads")]
if threads.empty:
    print("no BLAS library found by threadpoolctl: thread comparison unavailable")
else:
    one = threads.iloc[1]
    print(f"{one['variant']} against {threads.iloc[0]['variant']}: time ratio {one['ratio']:.3g}, "
          f"95% interval [{one['ratio_low']:.3g}, {one['ratio_high']:.3g}], p = {one['p_value']:.2g}")

# %% [markdown]
# ### Ablation on the digits MLP
#
# The trained `digits_mlp` from the model zoo, batch 64, four configurations: the baseline
# (its ordinary forward: `x @ W + b` then a separate ReLU, each a new array), the fused model
# from `fuse_linear_relu`, the baseline with BLAS limited to 1 thread, and both combined.
# Accuracy is measured on the full test split with `zoo.evaluate` (Wilson 95% interval);
# the fused model must give identical predictions. Latency: interleaved, the median with its
# order-statistic interval, and the ratio to the baseline with its bootstrap interval and a
# Holm-adjusted Mann-Whitney p-value.

# %%
from tinytorch.core.autograd import no_grad
from tinytorch.data.loader import load_digits
from tinytorch.models.zoo import evaluate, load_model
from tinytorch.profiling.profiler import parameter_bytes

baseline_model = load_model("digits_mlp")
fused_model = fuse_linear_relu(baseline_model).eval()
test_images, _ = load_digits("test", flatten=True).tensors
with no_grad():
    same = np.array_equal(baseline_model(test_images).data.argmax(1), fused_model(test_images).data.argmax(1))
assert same, "the fused model changed a prediction"
batch64 = Tensor(test_images.data[:64])
configs = {"baseline (unfused)": (baseline_model, None), "fused": (fused_model, None),
           "1-thread BLAS": (baseline_model, 1), "fused + 1-thread": (fused_model, 1)}
default_threads = max([lib["num_threads"] for lib in blas_threads()] or [1])
with no_grad():
    timings = measure_interleaved_threads(
        {name: ((lambda m=m: m(batch64)), threads or default_threads) for name, (m, threads) in configs.items()},
        repeats=40)
rows = timing_rows("digits_mlp batch 64", timings)
ablation = []
for row, (name, (model, _)) in zip(rows, configs.items()):
    acc = evaluate(model, "digits_mlp")
    ablation.append({"config": name, "accuracy": acc["accuracy"], "acc_low": acc["ci_low"], "acc_high": acc["ci_high"],
                     "median_ms": row["median_ms"], "median_low_ms": row["median_low_ms"],
                     "median_high_ms": row["median_high_ms"], "param_bytes": parameter_bytes(model),
                     "ratio": row["ratio"], "ratio_low": row["ratio_low"], "ratio_high": row["ratio_high"],
                     "p_value": row["p_value"]})
ablation = pd.DataFrame(ablation)
ablation["p_holm"] = holm(ablation["p_value"].to_numpy())
with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 200):
    print(ablation.to_string(index=False))
assert ablation["accuracy"].nunique() == 1
print(f"\nAll four configurations predict identically: accuracy {ablation['accuracy'][0]:.2%} "
      f"(Wilson 95% [{ablation['acc_low'][0]:.2%}, {ablation['acc_high'][0]:.2%}]), "
      f"{ablation['param_bytes'][0]:,} parameter bytes each (fusion and threads change no weight).")
for row in ablation.iloc[1:].itertuples():
    word = ("faster" if row.ratio_high < 1 else "slower" if row.ratio_low > 1 else "not measurably different")
    print(f"{row.config}: {row.ratio:.3f}x the baseline time, 95% interval [{row.ratio_low:.3f}, "
          f"{row.ratio_high:.3f}], Holm p = {row.p_holm:.2g}: {word}")

# %% [markdown]
# How to read the ablation: on a model this small, the matmuls are tiny and a good share of
# each forward pass is Python and framework overhead (Tensor wrappers, layer calls), which
# fusion also trims (one layer call instead of two). One BLAS thread can help small products
# (no thread start-up) or hurt large ones; the interval says which happened here. Only the
# intervals and p-values above support a claim; a ratio whose interval contains 1 is no
# evidence of a difference.
#
# ## Summary
#
# - **Interpreter overhead** dominates loops in Python: moving the inner loops into numpy
#   (vectorisation) and then into BLAS removes it step by step.
# - **Cache blocking** keeps reused data in the cache; the best tile is a machine property,
#   measured against one BLAS call, which blocks internally.
# - **Fusion** removes temporaries and memory passes without changing a single bit of the
#   result; `FusedLinearReLU` is inference-only by design.
# - **Threads** are a setting (`limit_blas_threads`), measured rather than assumed.
# - **Claims need intervals**: every speed-up is a ratio of medians with a bootstrap
#   interval and a rank test, and the verdict is printed from them.
