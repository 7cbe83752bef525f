# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 09: Convolutions
#
# > Spatial layers for images: Conv2d as im2col plus one matrix multiply, MaxPool2d, AvgPool2d and Flatten, each with its backward pass.
#
# ## Why convolutions matter
#
# A `Linear` layer on a 32x32 RGB image connects every one of its 3072 inputs to every
# output: a hidden layer of 1024 units already needs three million weights, and the layer
# has to learn "an edge at the top left" and "an edge at the bottom right" as two
# unrelated things. Images are not like that. Nearby pixels belong together, and a
# pattern means the same thing wherever it appears.
#
# A **convolution** builds both facts into the layer. It slides one small filter, say
# 3x3 pixels over all input channels, across the image and computes the same weighted
# sum at every position. The weights are shared across positions (a 3x3 filter on 3
# channels has 27 weights, whatever the image size), and the output is a *feature map*
# that says where the pattern occurs. Stacks of convolutions and **pooling** layers
# (which shrink the maps by keeping the maximum or the average of each small window) are
# the convolutional networks (CNNs) that made modern computer vision work.
#
# In this module you build `Conv2d`, `MaxPool2d`, `AvgPool2d` and `Flatten`, forward and
# backward. The systems question is speed: the direct definition is seven nested loops;
# the standard trick, **im2col**, rearranges the image so that the whole layer becomes
# one matrix multiplication, which BLAS runs at a large fraction of the machine's peak.
# The systems section measures how close we get.

# %%
#| default_exp core.spatial

# %% [markdown]
# ## The idea: one filter, slid over the image
#
# Take one image with one channel and one 2x2 filter. Put the filter on the top-left
# corner, multiply the overlapping numbers, add them up: that is output pixel `(0, 0)`.
# Move the filter one column to the right: output pixel `(0, 1)`. And so on. With a
# `(H, W)` input, a `(kh, kw)` kernel, **stride** `s` (how far the filter moves per
# step) and **padding** `p` (rows and columns of zeros added around the image), the
# output has
#
# ```
# H_out = (H + 2p - kh) // s + 1        W_out = (W + 2p - kw) // s + 1
# ```
#
# positions. With many images, channels and filters, a batch `x` of shape
# `(N, C, H, W)` and weights of shape `(O, C, kh, kw)` (PyTorch's layout: O filters,
# each spanning all C input channels) give an output `(N, O, H_out, W_out)`:
#
# ```
# out[n, o, a, b] = bias[o] + sum over c, i, j of  w[o, c, i, j] * x_padded[n, c, a*s + i, b*s + j]
# ```
#
# (Deep learning frameworks do not flip the kernel, so mathematically this is a
# cross-correlation; everyone calls it convolution anyway.) The cell below writes this
# definition as plain loops, `naive_conv2d`, and checks it on a 4x4 example computed by
# hand. It is far too slow for real use, but it is the oracle every check in this
# notebook compares against.

# %%
import numpy as np


def naive_conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0)):
    """The definition as loops: x (N, C, H, W), w (O, C, kh, kw), b (O,) -> (N, O, H_out, W_out)."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n_images, _, hp, wp = xp.shape
    n_filters, _, kh, kw = w.shape
    out = np.zeros((n_images, n_filters, (hp - kh) // sh + 1, (wp - kw) // sw + 1))
    for n in range(n_images):
        for o in range(n_filters):
            for a in range(out.shape[2]):
                for c in range(out.shape[3]):
                    window = xp[n, :, a * sh:a * sh + kh, c * sw:c * sw + kw]
                    out[n, o, a, c] = np.sum(window * w[o]) + (0.0 if b is None else b[o])
    return out


image = np.array([[1, 2, 0, 1],
                  [0, 1, 3, 1],
                  [2, 0, 1, 0],
                  [1, 1, 0, 2]], dtype=np.float64)
kernel = np.array([[1, 0],
                   [0, -1]], dtype=np.float64)   # out[a, b] = x[a, b] - x[a + 1, b + 1]
# By hand: row 0: 1-1, 2-3, 0-1 = [0, -1, -1]; row 1: 0-0, 1-1, 3-0 = [0, 0, 3];
#          row 2: 2-1, 0-0, 1-2 = [1, 0, -1]
by_hand = np.array([[0, -1, -1], [0, 0, 3], [1, 0, -1]], dtype=np.float64)
result = naive_conv2d(image[None, None], kernel[None, None])
assert np.array_equal(result[0, 0], by_hand)
print("3x3 output of a 2x2 kernel on a 4x4 image:\n", result[0, 0])
print("with padding 1 and stride 2 the output is", naive_conv2d(image[None, None], kernel[None, None],
                                                                stride=(2, 2), padding=(1, 1)).shape[2:])

# %% [markdown]
# **im2col, the trick behind fast convolutions.** Every output pixel is a dot product
# between the filter (flattened to `C*kh*kw` numbers) and the window under it (also
# `C*kh*kw` numbers). Copy each window into a column of a matrix, one column per output
# pixel, and all the dot products of all filters become one matrix product:
#
# ```
# weights (O, C*kh*kw)  @  columns (C*kh*kw, H_out*W_out)  =  output (O, H_out*W_out)
# ```
#
# For the example: the 2x2 windows of the 4x4 image are the 9 columns of a (4, 9)
# matrix, and the kernel is a row of 4 numbers. The cell builds the columns with a slow
# loop here; in step 2 you build them with **stride tricks**, without a single Python
# loop and without copying anything until the final reshape.

# %%
columns = np.stack([image[a:a + 2, c:c + 2].reshape(-1) for a in range(3) for c in range(3)], axis=1)
print("columns matrix", columns.shape, "\n", columns)
print("kernel row @ columns =", kernel.reshape(1, -1) @ columns)
assert np.array_equal((kernel.reshape(1, -1) @ columns).reshape(3, 3), by_hand)

# %% [markdown]
# ## Step 1: hyperparameters and the output shape
#
# `kernel_size`, `stride` and `padding` each accept an int (the same for height and
# width) or a pair `(height, width)`, as in PyTorch. The given helper `_pair` turns either
# into a tuple of two ints and rejects bad values: non-integers are a `TypeError`, a
# kernel or stride below 1 or a negative padding a `ValueError`.
#
# Your part: `conv_output_shape(input_hw, kernel_size, stride=1, padding=0)` returns
# `(H_out, W_out)` from the formula above. When the kernel does not fit in the padded
# input (e.g. a 5x5 kernel on a 3x3 image without padding) there is no output position
# at all: raise a `ValueError` that names the kernel size, the input size and the
# padding, and says what to change. Pooling layers use the same function with padding 0.

# %%
#| export
import math
import numbers
import operator

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinytorch.core.autograd import Function, no_grad
from tinytorch.core.layers import Module, Parameter, _positive_int
from tinytorch.core.tensor import Tensor
from tinytorch.utils.timing import environment, measure_interleaved, measure_timer, required_sample_ns


def _pair(value, name, minimum=1):
    """value (an int or a pair of ints) as a tuple (height, width) of ints >= minimum."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair (height, width), got {value!r}")
    not_int = TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(isinstance(item, bool) for item in items):
        raise not_int
    try:
        pair = tuple(operator.index(item) for item in items)  # ints and numpy ints, not floats
    except TypeError:
        raise not_int from None
    if min(pair) < minimum:
        raise ValueError(
            f"{name} must be {'positive' if minimum == 1 else '>= 0'} in both dimensions, got {value!r}")
    return pair

# %% nbgrader={"grade": false, "grade_id": "output-shape", "locked": false, "schema_version": 3, "solution": true}
#| export
def conv_output_shape(input_hw, kernel_size, stride=1, padding=0):
    """(H_out, W_out) of a kernel sliding over an (H, W) input: (H + 2p - kh) // s + 1.

    kernel_size, stride, padding: an int or a pair. ValueError if the kernel does not fit.
    """
    ### BEGIN SOLUTION
    (h, w), (kh, kw) = input_hw, _pair(kernel_size, "kernel_size")
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding", minimum=0)
    hp, wp = h + 2 * ph, w + 2 * pw
    if kh > hp or kw > wp:
        where = f"the input (H, W) = {(h, w)}"
        if ph or pw:
            where = f"the padded input {(hp, wp)}: input {(h, w)} plus padding {(ph, pw)} on each side"
        raise ValueError(
            f"kernel_size {(kh, kw)} is larger than {where}; use a smaller kernel, more padding "
            "or a larger input")
    return (hp - kh) // sh + 1, (wp - kw) // sw + 1
    ### END SOLUTION

# %% [markdown]
# ### Check step 1

# %%
assert conv_output_shape((32, 32), 3, padding=1) == (32, 32)       # "same" padding for 3x3
assert conv_output_shape((28, 28), 5) == (24, 24)
assert conv_output_shape((7, 9), (3, 2), stride=(2, 3), padding=(1, 0)) == (4, 3)
assert conv_output_shape((4, 4), 2, stride=2) == (2, 2)              # a 2x2 pooling window
for bad in (lambda: _pair(0, "kernel_size"), lambda: _pair(-1, "padding", minimum=0)):
    try:
        bad()
    except ValueError as err:
        print("ValueError:", err)
    else:
        raise AssertionError("expected a ValueError")
try:
    conv_output_shape((3, 3), 5, padding=0)
except ValueError as err:
    print("ValueError:", err)
else:
    raise AssertionError("a 5x5 kernel on a 3x3 input must raise ValueError")
print("OK: output shapes follow (H + 2p - k) // s + 1")

# %% [markdown]
# ## Step 2: im2col with stride tricks
#
# Module 01 showed that an array is a block of memory plus **strides**: the number of
# bytes to step along each dimension. A window view exploits this. For `x` of shape
# `(N, C, H, W)` with strides `(sN, sC, sY, sX)`, the element
# `x[n, c, a*sh + i, b*sw + j]` (kernel position `(i, j)` of the window at output
# position `(a, b)`) sits at byte offset `n*sN + c*sC + i*sY + j*sX + a*(sh*sY) + b*(sw*sX)`.
# So the 6-D array
#
# ```
# windows[n, c, i, j, a, b] = x[n, c, a*sh + i, b*sw + j]       shape (N, C, kh, kw, H_out, W_out)
# ```
#
# is just `x`'s memory read with strides `(sN, sC, sY, sX, sh*sY, sw*sX)`:
# `np.lib.stride_tricks.as_strided` makes that view in microseconds, copying nothing.
# Overlapping windows share memory, so the view must be read-only (`writeable=False`):
# writing through it would change several windows at once.
#
# Your part:
#
# - `_windows(x, kernel, stride)`: the view above (`kernel` and `stride` are pairs; the
#   input is already padded).
# - `_im2col(x, kernel, stride)`: reshape the view to the columns
#   `(N, C*kh*kw, H_out*W_out)`: one matrix per image, one column per output pixel. The
#   reshape is the one real copy. Return the columns **and** `(H_out, W_out)`.
#
# The axis order is a performance decision. With `(a, b)` last, the copy reads long
# runs of neighbouring pixels, and the matrix product below produces its result directly
# in the `(N, O, H_out, W_out)` layout. The systems section measures the alternative.
#
# `_pad(x, padding)` is given: it writes `x` into the middle of a zero array (cheaper
# than `np.pad`) and returns `x` itself when there is no padding.

# %% nbgrader={"grade": false, "grade_id": "im2col", "locked": false, "schema_version": 3, "solution": true}
#| export
def _pad(x, padding):
    """x (N, C, H, W) inside a frame of zeros (padding = (ph, pw)); x itself for (0, 0)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    return padded


def _windows(x, kernel, stride):
    """Read-only view (N, C, kh, kw, H_out, W_out) of every window of x (N, C, H, W), no copy:
    view[n, c, i, j, a, b] = x[n, c, a*sh + i, b*sw + j]."""
    ### BEGIN SOLUTION
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    out_h, out_w = (h - kh) // sh + 1, (w - kw) // sw + 1
    s_n, s_c, s_y, s_x = x.strides
    return as_strided(x, shape=(n, c, kh, kw, out_h, out_w),
                      strides=(s_n, s_c, s_y, s_x, s_y * sh, s_x * sw), writeable=False)
    ### END SOLUTION


def _im2col(x, kernel, stride):
    """(columns (N, C*kh*kw, H_out*W_out), (H_out, W_out)) of x (N, C, H, W); columns is a copy."""
    ### BEGIN SOLUTION
    windows = _windows(x, kernel, stride)
    n, c, kh, kw, out_h, out_w = windows.shape
    return windows.reshape(n, c * kh * kw, out_h * out_w), (out_h, out_w)
    ### END SOLUTION

# %% [markdown]
# ### Check step 2
#
# The view of the 4x4 example must hold the same windows as the loop-built columns
# above, share memory with the image, and refuse writes.

# %%
view = _windows(image[None, None], (2, 2), (1, 1))
assert view.shape == (1, 1, 2, 2, 3, 3) and np.shares_memory(view, image)
assert not view.flags.writeable
cols, out_hw = _im2col(image[None, None], (2, 2), (1, 1))
assert cols.shape == (1, 4, 9) and out_hw == (3, 3)
np.testing.assert_array_equal(cols[0], columns)
strided = _windows(np.arange(2 * 3 * 5 * 6.0).reshape(2, 3, 5, 6), (2, 3), (2, 1))
assert strided.shape == (2, 3, 2, 3, 2, 4)
assert strided[1, 2, 1, 0, 1, 3] == np.arange(2 * 3 * 5 * 6.0).reshape(2, 3, 5, 6)[1, 2, 1 * 2 + 1, 3 * 1 + 0]
print("strides of the image:", image[None, None].strides, "-> strides of the view:", view.strides)
print("OK: the window view matches the loop-built columns without copying")

# %% [markdown]
# ## Step 3: col2im, the way back
#
# The backward pass needs the opposite direction. The loss gradient arrives for every
# element of every window, `grad_windows` of shape `(N, C, kh, kw, H_out, W_out)`, and
# each input pixel must receive the **sum** of the gradients of every window position
# that read it (with stride 1 and a 3x3 kernel, an interior pixel is read by 9 windows).
# In linear-algebra terms, `_col2im` is the *adjoint* (transpose) of `_windows`: for any
# `x` and `g`, `sum(windows(x) * g) == sum(x * col2im(g))`. The graded tests use exactly
# this identity as their oracle.
#
# Implementation: start from zeros of the input shape and loop over the `kh*kw` kernel
# positions `(i, j)` only. For a fixed `(i, j)`, the windows read the pixels
# `x[:, :, i + a*sh, j + b*sw]` for all `(a, b)`, which is the strided slice
# `[:, :, i : i + sh*(H_out-1) + 1 : sh, j : j + sw*(W_out-1) + 1 : sw]`, with shape
# `(N, C, H_out, W_out)`. Add `grad_windows[:, :, i, j]` into it. Within one slice no
# pixel repeats, so a vectorised `+=` is safe; overlaps between windows are handled by
# the different `(i, j)` steps adding to the same pixel. (`_unpad`, given, then cuts the
# padding frame away.)

# %% nbgrader={"grade": false, "grade_id": "col2im", "locked": false, "schema_version": 3, "solution": true}
#| export
def _col2im(grad_windows, input_shape, stride):
    """Adjoint of _windows: a zero array of input_shape (N, C, H, W) plus every element of
    grad_windows (N, C, kh, kw, H_out, W_out) added at the input position its window read."""
    ### BEGIN SOLUTION
    _, _, kh, kw, out_h, out_w = grad_windows.shape
    sh, sw = stride
    grad = np.zeros(input_shape, dtype=grad_windows.dtype)
    for i in range(kh):              # kernel positions only: each step is one vectorised
        for j in range(kw):          # add over all images, channels and output pixels
            grad[:, :, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw] += grad_windows[:, :, i, j]
    return grad
    ### END SOLUTION


def _unpad(x, padding):
    """x (N, C, H, W) without its padding frame (a view)."""
    ph, pw = padding
    return x[:, :, ph:x.shape[2] - ph, pw:x.shape[3] - pw]

# %% [markdown]
# ### Check step 3
#
# A 3x3 image of ones read by 2x2 windows with stride 1: the gradient of "sum of all
# windows" counts how many windows read each pixel (corners 1, edges 2, centre 4).

# %%
counts = _col2im(np.ones((1, 1, 2, 2, 2, 2)), (1, 1, 3, 3), (1, 1))
print("windows reading each pixel:\n", counts[0, 0])
assert np.array_equal(counts[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
rng = np.random.default_rng(0)
x_test = rng.standard_normal((2, 3, 7, 6))
g_test = rng.standard_normal(_windows(x_test, (3, 2), (2, 1)).shape)
lhs = np.sum(_windows(x_test, (3, 2), (2, 1)) * g_test)
rhs = np.sum(x_test * _col2im(g_test, x_test.shape, (2, 1)))
assert np.isclose(lhs, rhs), (lhs, rhs)
print(f"adjoint identity: <windows(x), g> = {lhs:.6f}, <x, col2im(g)> = {rhs:.6f}")
print("OK: col2im adds every window gradient back where it came from")

# %% [markdown]
# ## Step 4: the convolution as an autograd Function
#
# Module 06 records operations as `Function`s: `forward(ctx, *arrays, **settings)`
# computes a numpy result and saves what backward needs in `ctx`;
# `backward(ctx, grad_output)` returns one gradient (or `None`) per positional input;
# `Conv2dFunction.apply(x, weight, bias, stride=..., padding=...)` runs it on Tensors and
# records the graph. `ctx.needs_input_grad` says which inputs need a gradient; use it to
# skip work and memory nobody will use.
#
# **Forward** (all arrays): pad `x`, build the columns `(N, K, L)` with
# `K = C*kh*kw` and `L = H_out*W_out`, reshape the weight to a matrix `(O, K)`, and
# compute `w_matrix @ cols`: numpy's matmul broadcasts the one weight matrix over the N
# column matrices, so this single call gives `(N, O, L)`, already in NCHW order. Add the
# bias per output channel with the given `_add_bias`, reshape to `(N, O, H_out, W_out)`.
# Save the columns if the weight needs a gradient, the weight matrix if `x` does, and the
# shapes, stride and padding as `ctx` attributes.
#
# **Backward**, with `g = grad_output` reshaped to `(N, O, L)`:
#
# - `grad_weight = sum over n of g[n] @ cols[n].T`, reshaped to `(O, C, kh, kw)`: each
#   weight was multiplied by the column entries it met, at every position of every image.
# - `grad_bias = g summed over N, H_out and W_out`: the bias was added at every position.
# - `grad_x`: `w_matrix.T @ g` gives the gradient of every column entry `(N, K, L)`;
#   reshaped to `(N, C, kh, kw, H_out, W_out)` these are exactly the window gradients, so
#   `_col2im` sums them into the padded input, and `_unpad` strips the frame.
#
# `conv2d(x, weight, bias=None, stride=1, padding=0)` (given) is the functional form:
# it checks the inputs, then calls `Conv2dFunction.apply`.

# %% nbgrader={"grade": false, "grade_id": "conv2d-function", "locked": false, "schema_version": 3, "solution": true}
#| export
def _add_bias(out, bias):
    """out (N, O, L) plus bias[o] at every position of channel o; in place when the dtype allows."""
    if bias is None:
        return out
    row = np.repeat(bias, out.shape[2])        # (O*L,): each image's whole output as one row
    flat = out.reshape(out.shape[0], row.size)  # (N, O*L), a view of the fresh matmul result
    if np.result_type(flat, row) != flat.dtype:
        return (flat + row).reshape(out.shape)
    flat += row  # in place, long contiguous runs: faster than broadcasting an (O, 1) column
    return out


class Conv2dFunction(Function):
    """2-D convolution (cross-correlation, as in PyTorch): x (N, C, H, W), weight (O, C, kh, kw),
    bias (O,) or None; settings stride and padding as pairs. Output (N, O, H_out, W_out)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride=(1, 1), padding=(0, 0)):
        ### BEGIN SOLUTION
        out_channels, _, kh, kw = weight.shape
        padded = _pad(x, padding)
        cols, (out_h, out_w) = _im2col(padded, (kh, kw), stride)   # (N, K, L)
        w_matrix = weight.reshape(out_channels, -1)                 # (O, K)
        out = _add_bias(w_matrix @ cols, bias)                      # (N, O, L): one matmul call
        need_x, need_weight, _ = ctx.needs_input_grad
        ctx.save_for_backward(cols if need_weight else None, w_matrix if need_x else None)
        ctx.padded_shape, ctx.weight_shape = padded.shape, weight.shape
        ctx.stride, ctx.padding = stride, padding
        return out.reshape(x.shape[0], out_channels, out_h, out_w)
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        cols, w_matrix = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad
        n, out_channels, out_h, out_w = grad_output.shape
        grad = grad_output.reshape(n, out_channels, out_h * out_w)  # (N, O, L)
        grad_x = grad_weight = grad_bias = None
        if need_weight:
            grad_weight = (grad @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(ctx.weight_shape)
        if need_bias:
            grad_bias = grad_output.sum(axis=(0, 2, 3))
        if need_x:
            _, c, kh, kw = ctx.weight_shape
            grad_windows = (w_matrix.T @ grad).reshape(n, c, kh, kw, out_h, out_w)
            grad_x = _unpad(_col2im(grad_windows, ctx.padded_shape, ctx.stride), ctx.padding)
        return grad_x, grad_weight, grad_bias
        ### END SOLUTION


def _check_images(x, who, channels=None):
    """TypeError unless x is a Tensor; ValueError unless it is (N, C, H, W) with C == channels."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{who} expects a Tensor, got {type(x).__name__}; wrap data with Tensor(...)")
    expected = f"(N, {channels}, H, W)" if channels is not None else "(N, C, H, W)"
    if x.ndim != 4:
        raise ValueError(
            f"{who} expects a 4-D input of shape {expected}, got shape {x.shape}; for a "
            "single image add a batch dimension, e.g. x.reshape(1, *x.shape)")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{who} expects {channels} input channels, i.e. shape {expected}, but the input "
            f"of shape {x.shape} has {x.shape[1]}")


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """Functional 2-D convolution: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) or None.

    stride and padding: an int or a pair. Returns (N, O, H_out, W_out); differentiable.
    """
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding", minimum=0)
    if not isinstance(weight, Tensor) or weight.ndim != 4:
        raise ValueError(
            f"conv2d needs a 4-D weight Tensor (out_channels, in_channels, kh, kw), got "
            f"{getattr(weight, 'shape', type(weight).__name__)}")
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != weight.shape[:1]):
        raise ValueError(
            f"conv2d needs a bias Tensor of shape {weight.shape[:1]} (one per output channel) or "
            f"None, got {getattr(bias, 'shape', type(bias).__name__)}")
    _check_images(x, "conv2d", channels=weight.shape[1])
    conv_output_shape(x.shape[2:], weight.shape[2:], stride, padding)  # ValueError if it does not fit
    return Conv2dFunction.apply(x, weight, bias, stride=stride, padding=padding)

# %% [markdown]
# ### Check step 4
#
# Forward against the loop definition, then every gradient against **central finite
# differences** in float64: nudge one number by `+eps` and `-eps`, and
# `(L(+) - L(-)) / (2 eps)` approximates its partial derivative. The loss is
# `sum(out * R)` for a fixed random `R`, so its gradient with respect to `out` is `R`.

# %%
def numeric_grad(f, array, eps=1e-6):
    """Central finite differences of the scalar f() w.r.t. every element of array (float64).

    f must read array (e.g. through a Tensor sharing its memory); array is changed and restored.
    """
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + eps
        up = f()
        array[index] = original - eps
        down = f()
        array[index] = original
        grad[index] = (up - down) / (2 * eps)
    return grad


rng = np.random.default_rng(1)
x64 = Tensor(rng.standard_normal((2, 2, 5, 4)), dtype=np.float64, requires_grad=True)
w64 = Parameter(rng.standard_normal((3, 2, 3, 2)), dtype=np.float64)
b64 = Parameter(rng.standard_normal(3), dtype=np.float64)
settings = {"stride": (2, 1), "padding": (1, 2)}
out = conv2d(x64, w64, b64, **settings)
np.testing.assert_allclose(out.data, naive_conv2d(x64.data, w64.data, b64.data, **settings), rtol=1e-12)
R = rng.standard_normal(out.shape)
(out * Tensor.from_numpy(R)).sum().backward()


def conv_loss():
    return float(np.sum(naive_conv2d(x64.data, w64.data, b64.data, **settings) * R))


for name, tensor in (("x", x64), ("weight", w64), ("bias", b64)):
    expected = numeric_grad(conv_loss, tensor.data)
    np.testing.assert_allclose(tensor.grad.data, expected, rtol=1e-6, atol=1e-8)
    print(f"d loss / d {name:6s}: shape {tensor.grad.shape}, max |autograd - finite diff| = "
          f"{np.max(np.abs(tensor.grad.data - expected)):.1e}")
print("output:", out.shape, out.grad_fn)
print("OK: conv2d matches the loop definition and finite differences")

# %% [markdown]
# ## Step 5: the `Conv2d` layer
#
# `Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None)`
# is a `Module` (module 03) that owns its weights:
#
# - `weight`: a `Parameter` of shape `(out_channels, in_channels, kh, kw)`;
#   `bias`: a `Parameter` of shape `(out_channels,)`, or `None` when `bias=False`.
# - Initialisation as in PyTorch: uniform in `[-k, k)` with
#   `k = 1 / sqrt(in_channels * kh * kw)`: every output sums `in_channels*kh*kw`
#   products, the *fan-in*, and the scale keeps the output variance independent of it
#   (the same argument as for `Linear`, whose fan-in is `in_features`). Draw the weight
#   first, then the bias, from `generator = np.random.default_rng(rng)`.
# - Validation: `super().__init__()` first; channels with the given `_positive_int`
#   (module 03); `kernel_size` and `stride` with `_pair(...)`, `padding` with
#   `_pair(..., minimum=0)`; `bias` must be a bool (`TypeError`). Store the pairs as
#   `self.kernel_size`, `self.stride`, `self.padding`.
# - `forward(x)`: `conv2d(x, self.weight, self.bias, self.stride, self.padding)`.
#
# `extra_repr` (given) prints the layer like PyTorch does:
# `Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))`.

# %% nbgrader={"grade": false, "grade_id": "conv2d-layer", "locked": false, "schema_version": 3, "solution": true}
#| export
class Conv2d(Module):
    """2-D convolution layer: (N, in_channels, H, W) -> (N, out_channels, H_out, W_out).

    weight: Parameter (out_channels, in_channels, kh, kw); bias: Parameter (out_channels,) or
    None. Both start uniform in [-k, k), k = 1/sqrt(in_channels*kh*kw), drawn (weight first)
    from np.random.default_rng(rng). kernel_size, stride, padding: an int or a pair.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None):
        """Check the hyperparameters; create weight (and bias) from the seeded generator."""
        ### BEGIN SOLUTION
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding", minimum=0)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be True or False, got {bias!r} ({type(bias).__name__})")
        generator = np.random.default_rng(rng)
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = Parameter(generator.uniform(-bound, bound, size=shape))
        self.bias = Parameter(generator.uniform(-bound, bound, size=self.out_channels)) if bias else None
        ### END SOLUTION

    def forward(self, x):
        """x: Tensor (N, in_channels, H, W) -> Tensor (N, out_channels, H_out, W_out)."""
        ### BEGIN SOLUTION
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)
        ### END SOLUTION

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        return text if self.bias is not None else text + ", bias=False"

# %% [markdown]
# ### Check step 5

# %%
conv = Conv2d(3, 8, kernel_size=3, padding=1, rng=0)
print(conv, [(name, p.shape) for name, p in conv.named_parameters()])
batch = Tensor.randn(4, 3, 10, 10, rng=1)
y = conv(batch)
assert y.shape == (4, 8, 10, 10) and y.dtype == np.float32
np.testing.assert_allclose(y.data, naive_conv2d(batch.data, conv.weight.data, conv.bias.data, padding=(1, 1)),
                           rtol=1e-4, atol=1e-5)
bound = 1 / np.sqrt(3 * 3 * 3)
assert np.all(np.abs(conv.weight.data) <= np.float32(bound)) and np.all(np.abs(conv.bias.data) <= np.float32(bound))
assert np.array_equal(Conv2d(3, 8, 3, padding=1, rng=0).weight.data, conv.weight.data)   # seeded
assert repr(Conv2d(1, 16, 3, padding=1)) == "Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
assert repr(Conv2d(2, 4, (3, 1), stride=2, bias=False)) == "Conv2d(2, 4, kernel_size=(3, 1), stride=(2, 2), bias=False)"
for bad in (lambda: conv(Tensor.ones(4, 1, 10, 10)), lambda: conv(Tensor.ones(3, 10, 10)),
            lambda: Conv2d(3, 8, kernel_size=0)):
    try:
        bad()
    except ValueError as err:
        print("ValueError:", err)
    else:
        raise AssertionError("expected a ValueError")
print("OK: Conv2d initialises, computes and checks its input like PyTorch's")

# %% [markdown]
# ## Step 6: pooling
#
# A pooling layer shrinks each feature map by summarising every `kh x kw` window with one
# number, separately per channel; it has no weights. `stride` defaults to `kernel_size`,
# so the windows tile the map (2x2 windows halve the height and the width). The windows
# are the same strided view as in step 2 (no padding here).
#
# Both layers work like `_col2im`: a loop over the `kh*kw` kernel positions `(i, j)`,
# each step one vectorised operation on the slice `windows[:, :, i, j]`, which holds
# element `(i, j)` of every window, shape `(N, C, H_out, W_out)`. (Reducing the 6-D view
# with `windows.max(axis=(2, 3))` gives the same numbers, but numpy then iterates over
# tiny inner axes; the systems section of this notebook is about exactly such costs.)
#
# **Max pooling** keeps the largest value of each window: start from a copy of
# `windows[:, :, 0, 0]` and fold in every position with `np.maximum(out, ..., out=out)`.
# Its gradient goes entirely to the position that held the maximum; the others get zero.
# With **ties** (equal values in a window, common after ReLU produces zeros) we follow
# PyTorch's `MaxPool2d`: the whole gradient goes to the **first** maximum in row-major
# order. (Module 06's `Tensor.max` splits the gradient among ties instead; both are valid
# subgradients, but a layer must pick one.) Forward saves `x` and the output. Backward
# rebuilds the window view of `x` and scans the positions in row-major order, keeping a
# boolean array `claimed` of the windows whose maximum was already found: position
# `(i, j)` is the first maximum where `windows[:, :, i, j] == out` and not yet claimed.
# Its window gradient is that mask times `grad_output`; `_col2im` then adds the window
# gradients into the input, so a pixel that wins several **overlapping** windows
# (stride < kernel) accumulates all their gradients.
#
# **Average pooling** returns the sum of the `kh*kw` slices divided by `kh*kw`. Backward
# spreads each output's gradient equally, `grad / (kh*kw)`, over its window:
# `np.broadcast_to` builds the window gradients without copying, and `_col2im` adds them up.
#
# The Modules `MaxPool2d(kernel_size, stride=None)` and `AvgPool2d(kernel_size, stride=None)`
# and the functional forms `max_pool2d`/`avg_pool2d` are given; they check the input and
# call your Functions.

# %% nbgrader={"grade": false, "grade_id": "pooling", "locked": false, "schema_version": 3, "solution": true}
#| export
class MaxPool2dFunction(Function):
    """Maximum of each window of x (N, C, H, W); the gradient goes to the first maximum
    (row-major order) of each window."""

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2)):
        ### BEGIN SOLUTION
        windows = _windows(x, kernel, stride)
        out = windows[:, :, 0, 0].copy()
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                np.maximum(out, windows[:, :, i, j], out=out)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(x, out)
            ctx.kernel, ctx.stride = kernel, stride
        return out
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        x, out = ctx.saved_tensors
        windows = _windows(x, ctx.kernel, ctx.stride)
        grad_windows = np.zeros(windows.shape, dtype=grad_output.dtype)
        claimed = np.zeros(out.shape, dtype=bool)      # windows whose maximum was found
        for i in range(ctx.kernel[0]):                 # row-major order: the first maximum wins
            for j in range(ctx.kernel[1]):
                first = (windows[:, :, i, j] == out) & ~claimed
                claimed |= first
                grad_windows[:, :, i, j] = first * grad_output
        return (_col2im(grad_windows, x.shape, ctx.stride),)
        ### END SOLUTION


class AvgPool2dFunction(Function):
    """Mean of each window of x (N, C, H, W); the gradient is shared equally by the window."""

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2)):
        ### BEGIN SOLUTION
        windows = _windows(x, kernel, stride)
        ctx.input_shape, ctx.windows_shape, ctx.stride = x.shape, windows.shape, stride
        total = sum(windows[:, :, i, j] for i in range(kernel[0]) for j in range(kernel[1]))
        return total / (kernel[0] * kernel[1])
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        kh, kw = ctx.windows_shape[2:4]
        share = (grad_output / (kh * kw))[:, :, np.newaxis, np.newaxis]
        grad_windows = np.broadcast_to(share, ctx.windows_shape)
        return (_col2im(grad_windows, ctx.input_shape, ctx.stride),)
        ### END SOLUTION

# %% [markdown]
# The pooling layers themselves (given): checks, defaults and repr.

# %%
#| export
def _pool(function, x, kernel_size, stride, who):
    """Check x and the window, then apply the pooling Function; stride None means kernel_size."""
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    _check_images(x, who)
    conv_output_shape(x.shape[2:], kernel, stride)  # ValueError if the window does not fit
    return function.apply(x, kernel=kernel, stride=stride)


def max_pool2d(x, kernel_size, stride=None):
    """Maximum of every kernel_size window of x (N, C, H, W); stride defaults to kernel_size."""
    return _pool(MaxPool2dFunction, x, kernel_size, stride, "max_pool2d")


def avg_pool2d(x, kernel_size, stride=None):
    """Mean of every kernel_size window of x (N, C, H, W); stride defaults to kernel_size."""
    return _pool(AvgPool2dFunction, x, kernel_size, stride, "avg_pool2d")


class _Pool2d(Module):
    """Shared by MaxPool2d and AvgPool2d: no parameters, kernel_size and stride (default:
    kernel_size), each an int or a pair."""

    _function = None  # set by each subclass

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")

    def forward(self, x):
        """x: Tensor (N, C, H, W) -> Tensor (N, C, H_out, W_out)."""
        return _pool(self._function, x, self.kernel_size, self.stride, type(self).__name__)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """Max pooling; the gradient of each window goes to its first maximum (row-major order)."""

    _function = MaxPool2dFunction


class AvgPool2d(_Pool2d):
    """Average pooling; the gradient of each window is shared equally by its elements."""

    _function = AvgPool2dFunction

# %% [markdown]
# ### Check step 6
#
# A 4x4 map with 2x2 windows. The bottom-left window holds two equal maxima (5 and 5):
# the whole gradient goes to the first one in row-major order.

# %%
fmap = Tensor([[[[1, 3, 2, 0],
                 [4, 2, 1, 1],
                 [5, 0, 7, 2],
                 [2, 5, 3, 6]]]], dtype=np.float64, requires_grad=True)
pooled = MaxPool2d(2)(fmap)
assert pooled.data[0, 0].tolist() == [[4, 2], [5, 7]]
pooled.sum().backward()
print("max pool:", pooled.data[0, 0].tolist(), "gradient:\n", fmap.grad.data[0, 0])
assert fmap.grad.data[0, 0].tolist() == [[0, 0, 1, 0], [1, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
fmap.zero_grad()
averaged = AvgPool2d(2, stride=1)(fmap)                  # overlapping 2x2 windows
assert averaged.shape == (1, 1, 3, 3) and np.isclose(averaged.data[0, 0, 0, 0], (1 + 3 + 4 + 2) / 4)
averaged.sum().backward()
print("avg pool with stride 1, gradient (windows covering each pixel / 4):\n", fmap.grad.data[0, 0])
assert np.allclose(fmap.grad.data[0, 0] * 4, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
print(MaxPool2d(2), AvgPool2d((3, 2), stride=1))
print("OK: pooling forward and backward, ties to the first maximum, overlaps accumulate")

# %% [markdown]
# ## Step 7: `Flatten` and a small CNN
#
# Between the convolutional part of a network and its `Linear` classifier, the feature
# maps `(N, C, H, W)` must become vectors `(N, C*H*W)`. `Flatten(start_dim=1)` keeps the
# dimensions before `start_dim` and multiplies the rest into one. Use `Tensor.reshape`
# (not numpy on `.data`), so autograd records it and gradients flow through. A negative
# `start_dim` counts from the end, as in PyTorch. The checks are given and run before
# your code: `x` must be a Tensor (`TypeError`) and `start_dim` a valid dimension of `x`
# (`ValueError` naming `start_dim` and the shape otherwise).

# %% nbgrader={"grade": false, "grade_id": "flatten", "locked": false, "schema_version": 3, "solution": true}
#| export
class Flatten(Module):
    """Merge the dimensions from start_dim on into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim=1):
        super().__init__()
        if isinstance(start_dim, bool) or not isinstance(start_dim, numbers.Integral):
            raise TypeError(f"start_dim must be an int, got {start_dim!r} ({type(start_dim).__name__})")
        self.start_dim = operator.index(start_dim)

    def forward(self, x):
        """x: Tensor (d0, ..., d_{k-1}, dk, ...) -> Tensor (d0, ..., d_{k-1}, dk * ...), k = start_dim."""
        if not isinstance(x, Tensor):
            raise TypeError(f"Flatten expects a Tensor, got {type(x).__name__}; wrap data with Tensor(...)")
        if not -x.ndim <= self.start_dim < x.ndim:
            raise ValueError(
                f"Flatten(start_dim={self.start_dim}) needs an input with a dimension {self.start_dim}, "
                f"got shape {x.shape} ({x.ndim} dims)")
        ### BEGIN SOLUTION
        dim = self.start_dim % x.ndim  # a negative start_dim counts from the end
        return x.reshape(x.shape[:dim] + (math.prod(x.shape[dim:]),))
        ### END SOLUTION

    def extra_repr(self):
        return f"start_dim={self.start_dim}"

# %% [markdown]
# ### Check step 7
#
# A complete small CNN: convolution, ReLU, max pooling, flatten, linear. Every parameter's
# gradient is checked against finite differences (float64 copies of the weights). Each
# layer's output shape is printed, and the parameter count is compared with the formula
# `O*C*kh*kw + O` for the convolution and `in*out + out` for the linear layer.

# %%
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential

assert Flatten()(Tensor.ones(2, 3, 4, 5)).shape == (2, 60)
assert Flatten(start_dim=2)(Tensor.ones(2, 3, 4, 5)).shape == (2, 3, 20) and Flatten(0)(Tensor.ones(2, 3)).shape == (6,)

cnn = Sequential(Conv2d(2, 3, kernel_size=3, padding=1, rng=0), ReLU(), MaxPool2d(2), Flatten(),
                 Linear(3 * 3 * 2, 4, rng=1))
print(cnn)
for param in cnn.parameters():                       # float64 weights for a precise check
    param.data = param.data.astype(np.float64)
images = Tensor(np.random.default_rng(2).standard_normal((2, 2, 6, 5)), dtype=np.float64)
h = images
for position in range(len(cnn)):
    layer = cnn[position]
    h = layer(h)
    print(f"  {type(layer).__name__:10s} -> {h.shape}")
R_cnn = np.random.default_rng(3).standard_normal(h.shape)
(cnn(images) * Tensor.from_numpy(R_cnn)).sum().backward()
for name, param in cnn.named_parameters():
    expected = numeric_grad(lambda: float(np.sum(cnn(images).data * R_cnn)), param.data)
    np.testing.assert_allclose(param.grad.data, expected, rtol=1e-5, atol=1e-8)
n_params = sum(p.size for p in cnn.parameters())
assert n_params == (3 * 2 * 3 * 3 + 3) + (18 * 4 + 4)
print(f"{n_params} parameters; every gradient matches finite differences")
print("OK: Conv2d -> ReLU -> MaxPool2d -> Flatten -> Linear trains end to end")

# %% [markdown]
# ## Graded tests
#
# Each cell checks one step against an independent oracle: the loop definition
# `naive_conv2d`, hand-computed values, the adjoint identity, or finite differences.

# %% nbgrader={"grade": true, "grade_id": "test-output-shape", "locked": true, "points": 1, "schema_version": 3, "solution": false}
for hw, k, s, p in (((32, 32), 3, 1, 1), ((28, 28), 5, 1, 0), ((7, 9), (3, 2), (2, 3), (1, 0)), ((5, 5), 5, 2, 0)):
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (s, s) if isinstance(s, int) else s
    ph, pw = (p, p) if isinstance(p, int) else p
    expected = ((hw[0] + 2 * ph - kh) // sh + 1, (hw[1] + 2 * pw - kw) // sw + 1)
    assert conv_output_shape(hw, k, s, p) == expected
assert conv_output_shape((2, 2), 3, padding=1) == (2, 2)
try:
    conv_output_shape((2, 6), (3, 3))
except ValueError as err:
    assert "(3, 3)" in str(err) and "(2, 6)" in str(err)
else:
    raise AssertionError("a 3x3 kernel on a 2x6 input must raise ValueError")

# %% nbgrader={"grade": true, "grade_id": "test-im2col", "locked": true, "points": 2, "schema_version": 3, "solution": false}
xs = np.random.default_rng(10).standard_normal((2, 3, 6, 7)).astype(np.float32)
for kernel, stride in (((3, 3), (1, 1)), ((2, 3), (2, 1)), ((1, 1), (3, 2)), ((6, 7), (1, 1))):
    view = _windows(xs, kernel, stride)
    out_h, out_w = (6 - kernel[0]) // stride[0] + 1, (7 - kernel[1]) // stride[1] + 1
    assert view.shape == (2, 3, *kernel, out_h, out_w) and np.shares_memory(view, xs)
    cols, hw = _im2col(xs, kernel, stride)
    assert hw == (out_h, out_w) and cols.shape == (2, 3 * kernel[0] * kernel[1], out_h * out_w)
    for a in range(out_h):
        for b in range(out_w):
            window = xs[:, :, a * stride[0]:a * stride[0] + kernel[0], b * stride[1]:b * stride[1] + kernel[1]]
            np.testing.assert_array_equal(cols[:, :, a * out_w + b], window.reshape(2, -1))

# %% nbgrader={"grade": true, "grade_id": "test-col2im", "locked": true, "points": 2, "schema_version": 3, "solution": false}
rng = np.random.default_rng(11)
for shape, kernel, stride in (((2, 3, 6, 7), (3, 3), (1, 1)), ((1, 2, 7, 5), (2, 3), (2, 1)),
                              ((2, 1, 5, 5), (2, 2), (3, 3))):
    xs = rng.standard_normal(shape)
    gs = rng.standard_normal(_windows(xs, kernel, stride).shape)
    back = _col2im(gs, shape, stride)
    assert back.shape == shape
    assert np.isclose(np.sum(_windows(xs, kernel, stride) * gs), np.sum(xs * back))
assert _col2im(np.ones((1, 1, 2, 2, 2, 2)), (1, 1, 3, 3), (1, 1))[0, 0].tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
assert _col2im(np.ones((1, 1, 1, 1, 2, 2)), (1, 1, 4, 4), (3, 3))[0, 0].tolist() == [
    [1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 1]]

# %% nbgrader={"grade": true, "grade_id": "test-conv-forward", "locked": true, "points": 3, "schema_version": 3, "solution": false}
rng = np.random.default_rng(12)
for n, c, o, hw, k, s, p, use_bias in ((2, 3, 4, (7, 6), (3, 3), (1, 1), (1, 1), True),
                                       (3, 2, 5, (8, 9), (2, 3), (2, 1), (0, 2), False),
                                       (1, 1, 2, (5, 5), (5, 5), (2, 2), (2, 2), True)):
    xs = rng.standard_normal((n, c, *hw)).astype(np.float32)
    ws = rng.standard_normal((o, c, *k)).astype(np.float32)
    bs = rng.standard_normal(o).astype(np.float32) if use_bias else None
    out = conv2d(Tensor(xs), Tensor(ws), None if bs is None else Tensor(bs), stride=s, padding=p)
    expected = naive_conv2d(xs, ws, bs, stride=s, padding=p)
    assert out.shape == expected.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-4)

# %% nbgrader={"grade": true, "grade_id": "test-conv-backward", "locked": true, "points": 3, "schema_version": 3, "solution": false}
rng = np.random.default_rng(13)
xg = Tensor(rng.standard_normal((2, 2, 4, 5)), dtype=np.float64, requires_grad=True)
wg = Tensor(rng.standard_normal((2, 2, 2, 3)), dtype=np.float64, requires_grad=True)
bg = Tensor(rng.standard_normal(2), dtype=np.float64, requires_grad=True)
out = conv2d(xg, wg, bg, stride=(1, 2), padding=(2, 1))
Rg = rng.standard_normal(out.shape)
(out * Tensor.from_numpy(Rg)).sum().backward()
loss = lambda: float(np.sum(naive_conv2d(xg.data, wg.data, bg.data, stride=(1, 2), padding=(2, 1)) * Rg))
for tensor in (xg, wg, bg):
    np.testing.assert_allclose(tensor.grad.data, numeric_grad(loss, tensor.data), rtol=1e-6, atol=1e-8)

# %% nbgrader={"grade": true, "grade_id": "test-conv-layer", "locked": true, "points": 2, "schema_version": 3, "solution": false}
layer = Conv2d(3, 5, (3, 2), stride=2, padding=1, rng=7)
ref = np.random.default_rng(7)
k = 1 / np.sqrt(3 * 3 * 2)
np.testing.assert_array_equal(layer.weight.data, ref.uniform(-k, k, size=(5, 3, 3, 2)).astype(np.float32))
np.testing.assert_array_equal(layer.bias.data, ref.uniform(-k, k, size=5).astype(np.float32))
assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
assert layer(Tensor.ones(2, 3, 9, 8)).shape == (2, 5, 5, 5)
assert repr(layer) == "Conv2d(3, 5, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1))"
assert Conv2d(1, 1, 1, bias=False).bias is None
for bad in (lambda: layer(Tensor.ones(2, 4, 9, 8)), lambda: layer(Tensor.ones(3, 9, 8)),
            lambda: Conv2d(3, 5, 4)(Tensor.ones(1, 3, 2, 2)), lambda: Conv2d(3, 0, 3), lambda: Conv2d(3, 5, 3, padding=-1)):
    try:
        bad()
    except ValueError:
        pass
    else:
        raise AssertionError("expected a ValueError")

# %% nbgrader={"grade": true, "grade_id": "test-pooling", "locked": true, "points": 3, "schema_version": 3, "solution": false}
rng = np.random.default_rng(14)
xp_ = rng.standard_normal((2, 3, 7, 6))
for kernel, stride in (((2, 2), None), ((3, 2), (2, 1)), ((2, 2), (1, 1))):
    st = kernel if stride is None else stride
    out_h, out_w = (7 - kernel[0]) // st[0] + 1, (6 - kernel[1]) // st[1] + 1
    naive_max = np.array([[[[xp_[n, c, a * st[0]:a * st[0] + kernel[0], b * st[1]:b * st[1] + kernel[1]].max()
                             for b in range(out_w)] for a in range(out_h)] for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(MaxPool2d(kernel, stride)(Tensor(xp_, dtype=np.float64)).data, naive_max)
    for pool in (MaxPool2d(kernel, stride), AvgPool2d(kernel, stride)):
        xt = Tensor(xp_, dtype=np.float64, requires_grad=True)
        Rp = rng.standard_normal((2, 3, out_h, out_w))
        (pool(xt) * Tensor.from_numpy(Rp)).sum().backward()
        expected = numeric_grad(lambda: float(np.sum(pool(Tensor.from_numpy(xt.data)).data * Rp)), xt.data)
        np.testing.assert_allclose(xt.grad.data, expected, rtol=1e-6, atol=1e-8)
ties = Tensor([[[[1.0, 1.0, 1.0], [1.0, 7.0, 7.0], [1.0, 7.0, 7.0]]]], dtype=np.float64, requires_grad=True)
MaxPool2d(2, stride=1)(ties).sum().backward()    # all four windows pick their first 7: (1, 1)
assert ties.grad.data[0, 0].tolist() == [[0, 0, 0], [0, 4, 0], [0, 0, 0]]
assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2))"
for bad in (lambda: MaxPool2d(3)(Tensor.ones(1, 1, 2, 5)), lambda: AvgPool2d(2)(Tensor.ones(4, 4)),
            lambda: MaxPool2d(0)):
    try:
        bad()
    except ValueError:
        pass
    else:
        raise AssertionError("expected a ValueError")

# %% nbgrader={"grade": true, "grade_id": "test-flatten", "locked": true, "points": 2, "schema_version": 3, "solution": false}
ft = Tensor(np.arange(24.0).reshape(2, 3, 2, 2), dtype=np.float64, requires_grad=True)
flat = Flatten()(ft)
np.testing.assert_array_equal(flat.data, np.arange(24.0).reshape(2, 12))
(flat * Tensor.from_numpy(np.arange(24.0).reshape(2, 12))).sum().backward()
np.testing.assert_array_equal(ft.grad.data, np.arange(24.0).reshape(2, 3, 2, 2))
assert Flatten(-2)(Tensor.ones(2, 3, 4)).shape == (2, 12) and repr(Flatten()) == "Flatten(start_dim=1)"
try:
    Flatten(3)(Tensor.ones(2, 3))
except ValueError as err:
    assert "(2, 3)" in str(err)
else:
    raise AssertionError("Flatten(3) on a 2-D input must raise ValueError")
model = Sequential(Conv2d(1, 2, 3, rng=0), MaxPool2d(2), Flatten(), Linear(2 * 2 * 2, 3, rng=1))
for param in model.parameters():
    param.data = param.data.astype(np.float64)
inputs = Tensor(np.random.default_rng(15).standard_normal((2, 1, 6, 6)), dtype=np.float64)
Rm = np.random.default_rng(16).standard_normal((2, 3))
(model(inputs) * Tensor.from_numpy(Rm)).sum().backward()
for param in model.parameters():
    expected = numeric_grad(lambda: float(np.sum(model(inputs).data * Rm)), param.data)
    np.testing.assert_allclose(param.grad.data, expected, rtol=1e-5, atol=1e-8)

# %% [markdown]
# ## Systems analysis: how fast is im2col + matmul?
#
# A convolution does `2 * N * O * H_out * W_out * C * kh * kw` floating-point operations
# (FLOPs): every output element is a dot product of length `C*kh*kw`, one multiply and
# one add per term (the bias adds, one per output element, are not counted). Dividing by the
# measured time gives the achieved GFLOP/s (FLOPs per nanosecond). The natural yardstick
# is this machine's own float32 matrix multiply, measured in the same run: im2col turns
# the convolution into a matmul, so matmul speed is the ceiling we can hope to approach.
#
# Timing uses module 01's helpers (`tinytorch.utils.timing`), which follow the course's
# rules in miniature: `time.perf_counter_ns`, a warm-up that also calibrates how many
# calls make one sample last at least 1 ms, candidates measured in alternating rounds so
# machine drift hits all of them, the median of the samples, and IQR/median as a noise
# indicator. Alternating has a side effect worth knowing: a 512x512 matmul or a
# convolution touches megabytes, enough to push the other candidate's data out of the CPU
# caches, so each candidate's timed block is preceded by one untimed call
# (`rewarm=True`). The samples therefore measure steady-state speed with warm caches, like
# a benchmark that calls the same layer again and again; a layer in a real network may
# start colder. The exported `benchmark_conv2d` (further down), which `tito`'s benchmark
# command calls, imports the same helpers from the package.

# %%
#| export
DEFAULT_CONV2D_BENCHMARK_SHAPES = (
    {"input_shape": (64, 1, 8, 8), "out_channels": 16, "kernel_size": 3, "padding": 1},
    {"input_shape": (32, 3, 32, 32), "out_channels": 32, "kernel_size": 3, "padding": 1},
)


def conv2d_flops(input_shape, out_channels, kernel_size, stride=1, padding=0):
    """FLOPs of one conv2d forward: 2 * N * O * H_out * W_out * C * kh * kw (bias adds not counted)."""
    n, c, h, w = input_shape
    kh, kw = _pair(kernel_size, "kernel_size")
    out_h, out_w = conv_output_shape((h, w), (kh, kw), stride, padding)
    return 2 * n * out_channels * out_h * out_w * c * kh * kw

# %% [markdown]
# ### Where the time goes
#
# One forward pass of the second benchmark shape (32 images of 3x32x32, 32 filters of
# 3x3, padding 1), split into its stages and timed stage by stage: padding, building the
# columns (the strided copy), the matmul, and the bias add.

# %%
x_bench = Tensor.randn(32, 3, 32, 32, rng=0)
conv_bench = Conv2d(3, 32, 3, padding=1, rng=0)
padded_b = _pad(x_bench.data, (1, 1))
cols_b, _ = _im2col(padded_b, (3, 3), (1, 1))
w_matrix_b = conv_bench.weight.data.reshape(32, -1)
product_b = w_matrix_b @ cols_b
stages = {
    "pad": lambda: _pad(x_bench.data, (1, 1)),
    "im2col copy": lambda: _im2col(padded_b, (3, 3), (1, 1)),
    "matmul": lambda: w_matrix_b @ cols_b,
    "bias add": lambda: _add_bias(product_b, conv_bench.bias.data),
}


def whole_layer():
    with no_grad():
        return conv_bench(x_bench)


MIN_SAMPLE_NS = required_sample_ns(measure_timer().overhead_ns)  # max(1 ms, 1000 x timer overhead)
stage_timings = measure_interleaved({**stages, "whole Conv2d": whole_layer}, repeats=9,
                                    min_sample_ns=MIN_SAMPLE_NS, rewarm=True)
whole = stage_timings["whole Conv2d"].median_ns
print(f"{'stage':14s} {'median':>10s} {'share':>6s}  IQR/median")
for name, timing in stage_timings.items():
    median = timing.median_ns
    flag = f"  {timing.warning}" if timing.warning else ""
    print(f"{name:14s} {median / 1e3:7.1f} us {median / whole:6.1%}  {timing.iqr_over_median:.1%}{flag}")
print(f"columns: {cols_b.nbytes / 1e6:.2f} MB for an input of {x_bench.data.nbytes / 1e6:.2f} MB "
      f"({cols_b.nbytes / x_bench.data.nbytes:.1f}x: every pixel is copied into up to kh*kw = 9 columns)")

# %% [markdown]
# The cell above prints each stage's median time and its share of the whole layer (the
# shares need not add up to exactly 100%: the layer also pays for its checks and the
# Tensor wrapper). Notice how much of the time is *moving data* (padding, the im2col
# copy, and the bias add, which reads and writes the whole output once more) rather than
# multiply-adds, and that the columns take about `kh*kw` times the memory
# of the input. During training the forward pass keeps the columns for the weight
# gradient, so a convolution's activation memory is dominated by them; that is why
# `forward` saves them only when the weight needs a gradient.
#
# ### Why this layout: one big GEMM vs a matmul per image
#
# The textbook im2col builds one column matrix `(N*H_out*W_out, C*kh*kw)` and does a
# single large GEMM, `cols @ W.T`, giving `(N, H_out, W_out, O)`, which must then be
# transposed back to `(N, O, H_out, W_out)`. Our layout keeps the images separate,
# `(N, C*kh*kw, H_out*W_out)`: numpy's matmul then calls BLAS once per image with the
# same weight matrix, and the result is already in NCHW order. The cell times both on
# raw arrays (checking first that they agree).

# %%
def conv_one_big_gemm(x, weight, padding):
    """The textbook layout: cols (N*H_out*W_out, C*kh*kw) @ W.T, then back to NCHW."""
    out_channels, _, kh, kw = weight.shape
    windows = _windows(_pad(x, padding), (kh, kw), (1, 1))     # (N, C, kh, kw, H_out, W_out)
    n, _, _, _, out_h, out_w = windows.shape
    cols = windows.transpose(0, 4, 5, 1, 2, 3).reshape(n * out_h * out_w, -1)
    out = cols @ weight.reshape(out_channels, -1).T               # (N*H_out*W_out, O)
    return np.ascontiguousarray(out.reshape(n, out_h, out_w, out_channels).transpose(0, 3, 1, 2))


def conv_per_image(x, weight, padding):
    """Our layout: (O, K) @ (N, K, L) -> (N, O, L), already NCHW."""
    cols, (out_h, out_w) = _im2col(_pad(x, padding), weight.shape[2:], (1, 1))
    return (weight.reshape(weight.shape[0], -1) @ cols).reshape(x.shape[0], -1, out_h, out_w)


w_raw = conv_bench.weight.data
np.testing.assert_allclose(conv_one_big_gemm(x_bench.data, w_raw, (1, 1)),
                           conv_per_image(x_bench.data, w_raw, (1, 1)), rtol=1e-4, atol=1e-5)
layout_timings = measure_interleaved(
    {"one big GEMM + transposes": lambda: conv_one_big_gemm(x_bench.data, w_raw, (1, 1)),
     "matmul per image (ours)": lambda: conv_per_image(x_bench.data, w_raw, (1, 1))},
    repeats=9, min_sample_ns=MIN_SAMPLE_NS, rewarm=True)
for name, timing in layout_timings.items():
    flag = f"  {timing.warning}" if timing.warning else ""
    print(f"{name:27s} median {timing.median_ns / 1e3:8.1f} us, IQR/median {timing.iqr_over_median:.1%}{flag}")

# %% [markdown]
# Compare the two medians the cell above prints. Both do the same arithmetic in BLAS;
# the difference is data movement. The big-GEMM version copies the windows into an order
# whose innermost runs are only `kw` numbers long, and then transposes the whole output,
# a strided copy that touches every element again; the per-image version copies long
# runs and writes its result in place. This measurement is how the layout of this module
# was chosen. If the big GEMM wins on your machine, that is a real property of it (cache
# sizes, BLAS threading), and it is why real frameworks pick a convolution algorithm per
# layer shape by timing the candidates.
#
# ### The benchmark: GFLOP/s and the ratio to matmul
#
# `benchmark_conv2d(shapes=None, repeats=9)` times the `Conv2d` layer's forward pass
# (under `no_grad()`, as in inference) for each shape, interleaved with a 512x512 float32
# matmul measured in the same rounds. It returns one dict per shape with the median time,
# GFLOP/s, the ratio to the matmul's GFLOP/s, and, only if PyTorch happens to be
# installed (it is not a TinyTorch dependency), `torch.nn.functional.conv2d`'s median time
# on the same data and `torch_ratio` = our time / torch's time. The raw samples, the
# calls per sample, the timer overhead and the environment travel with each result.

# %%
#| export
def _import_torch():
    """The torch module if it is installed, else None (torch is not a TinyTorch dependency)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_conv_callable(torch, x, layer):
    """A no-grad call of torch.nn.functional.conv2d with the layer's weights on x."""
    xt, wt = torch.from_numpy(x.data), torch.from_numpy(layer.weight.data)
    bt = None if layer.bias is None else torch.from_numpy(layer.bias.data)

    def call():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, bt, stride=layer.stride, padding=layer.padding)
    return call


def _benchmark_one(shape, repeats, matmul_operands, min_sample_ns, rng, torch):
    """Measure one shape (conv, matmul and maybe torch, interleaved); a result dict."""
    missing = {"input_shape", "out_channels", "kernel_size"} - set(shape)
    if missing:
        raise ValueError(
            f"a benchmark shape needs the keys input_shape, out_channels and kernel_size (stride and "
            f"padding are optional); {shape!r} lacks {sorted(missing)}")
    n, c, h, w = shape["input_shape"]
    stride, padding = shape.get("stride", 1), shape.get("padding", 0)
    layer = Conv2d(c, shape["out_channels"], shape["kernel_size"], stride, padding, rng=rng)
    x = Tensor.randn(n, c, h, w, rng=rng)
    a, b = matmul_operands

    def conv_call():
        with no_grad():
            return layer(x)

    fns = {"conv": conv_call, "matmul": lambda: a @ b}
    if torch is not None:
        fns["torch"] = _torch_conv_callable(torch, x, layer)
    timings = measure_interleaved(fns, repeats, min_sample_ns, rewarm=True)
    medians = {name: timing.median_ns for name, timing in timings.items()}
    flops = conv2d_flops((n, c, h, w), layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
    gflops, matmul_gflops = flops / medians["conv"], 2 * a.shape[0] * a.shape[1] * b.shape[1] / medians["matmul"]
    noisy = [f"{name} {timing.warning}" for name, timing in timings.items() if timing.warning]
    return {
        "input_shape": (n, c, h, w), "out_channels": layer.out_channels, "kernel_size": layer.kernel_size,
        "stride": layer.stride, "padding": layer.padding,
        "output_shape": (n, layer.out_channels, *conv_output_shape((h, w), layer.kernel_size, layer.stride, layer.padding)),
        "flops": flops, "ms_median": medians["conv"] / 1e6, "gflops": gflops,
        "matmul_gflops": matmul_gflops, "ratio_to_matmul": gflops / matmul_gflops,
        "torch_ms_median": medians["torch"] / 1e6 if torch is not None else None,
        "torch_ratio": medians["conv"] / medians["torch"] if torch is not None else None,
        "iqr_over_median": timings["conv"].iqr_over_median, "calls_per_sample": timings["conv"].calls_per_sample,
        "repeats": repeats, "samples_ns": list(timings["conv"].samples_ns),
        "matmul_samples_ns": list(timings["matmul"].samples_ns), "warning": "; ".join(noisy) or None,
    }


def benchmark_conv2d(shapes=None, repeats=9, matmul_size=512, rng=0):
    """Time Conv2d's forward pass (no_grad) per shape; GFLOP/s and the ratio to float32 matmul.

    shapes: dicts with input_shape (N, C, H, W), out_channels, kernel_size and optional
    stride and padding (default DEFAULT_CONV2D_BENCHMARK_SHAPES). Each sample lasts >= 1 ms
    (batches of calls), after a warm-up; conv, a matmul_size^2 float32 matmul and (if
    installed) torch are measured in alternating rounds; medians of `repeats` (>= 7) samples.
    Returns one dict per shape: ms_median, gflops, ratio_to_matmul, torch_ms_median and
    torch_ratio (our time / torch's; None without torch), raw samples, environment.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral) or repeats < 7:
        raise ValueError(f"repeats must be an int >= 7 (a median needs enough samples), got {repeats!r}")
    matmul_size = _positive_int(matmul_size, "matmul_size")
    shapes = DEFAULT_CONV2D_BENCHMARK_SHAPES if shapes is None else shapes
    generator = np.random.default_rng(rng)
    operands = tuple(generator.standard_normal((matmul_size, matmul_size), dtype=np.float32) for _ in range(2))
    timer = measure_timer()
    min_sample_ns = required_sample_ns(timer.overhead_ns)
    env = environment(timer, min_sample_ns)
    torch = _import_torch()
    results = []
    for shape in shapes:
        result = _benchmark_one(shape, repeats, operands, min_sample_ns, generator, torch)
        result["environment"] = env
        results.append(result)
    return results

# %% [markdown]
# Run it on the two standard shapes: a batch of 64 tiny 1x8x8 images (MNIST-like digits
# scaled down) into 16 channels, and a batch of 32 CIFAR-sized 3x32x32 images into 32
# channels, both 3x3 with padding 1.

# %%
from tinytorch.utils.timing import describe_environment

bench_results = benchmark_conv2d()
print(describe_environment(bench_results[0]["environment"]))
print(f"{'input':>16s} {'-> output':>18s} {'MFLOP':>7s} {'median':>9s} {'GFLOP/s':>8s} "
      f"{'matmul GFLOP/s':>14s} {'ratio':>6s}  torch")
for r in bench_results:
    torch_text = (f"{r['torch_ms_median']:.3f} ms (ours / torch = {r['torch_ratio']:.1f}x)"
                  if r["torch_ratio"] is not None else "not installed")
    print(f"{str(r['input_shape']):>16s} {str(r['output_shape']):>18s} {r['flops'] / 1e6:7.1f} "
          f"{r['ms_median']:6.3f} ms {r['gflops']:8.1f} {r['matmul_gflops']:14.1f} "
          f"{r['ratio_to_matmul']:6.1%}  {torch_text}")
    if r["warning"]:
        print("   ", r["warning"])

# %% [markdown]
# Read the table the cell above prints:
#
# - The second shape does about 48 times more arithmetic than the first (the MFLOP
#   column, from the formula). Expect its GFLOP/s to be higher: as with matmul in module
#   01, a bigger problem spreads the fixed costs (Python calls, checks, allocations) over
#   more work.
# - The first shape is tiny: its columns have only `C*kh*kw = 9` rows, so each per-image
#   matmul is a skinny `16x9 @ 9x64` product that BLAS cannot run at full speed, and the
#   im2col copy moves 9 numbers for every multiply-add of one filter. To approach the
#   matmul ceiling a layer needs many channels (a long `C*kh*kw` inner dimension) and
#   many output pixels.
# - The yardstick matmul may use all of BLAS's threads on one large product, while the
#   small per-image products mostly run on one thread; on a machine with many cores the
#   ratio therefore drops. The opposite happens on a busy machine: when other programs
#   occupy the cores, BLAS's threads wait for each other, the matmul collapses far more
#   than our single-threaded pieces, and the ratio can even exceed 100%. The load average
#   and the noise warning printed above tell you when that happened: rerun on a quiet
#   machine before you trust the ratio.
# - If PyTorch is installed, its column shows how far a tuned C++ implementation
#   (direct and Winograd-style algorithms, fused padding, threads over the batch) is
#   ahead of im2col in numpy.

# %% [markdown]
# ## Summary
#
# - A convolution slides one small filter over every position of every image: shared
#   weights, `O*C*kh*kw + O` parameters whatever the image size, output
#   `H_out = (H + 2p - kh) // s + 1`.
# - **im2col**: a strided *view* of all windows (`as_strided`, no copy), one reshape
#   copy into columns, and one matmul call (`(O, K) @ (N, K, L)`) compute the whole
#   layer; **col2im**, its adjoint, adds window gradients back with a loop over kernel
#   positions only.
# - Backward: `grad_weight` is a matmul with the saved columns, `grad_bias` a sum,
#   `grad_input` is `W.T @ grad` followed by col2im; saved arrays are kept only for the
#   inputs that need gradients.
# - Max pooling sends each window's gradient to its first maximum (row-major); average
#   pooling spreads it equally; overlapping windows accumulate. `Flatten` reshapes through
#   autograd so a CNN ends in `Linear` layers.
# - The reference models `digits_mlp` and `digits_cnn` (`tinytorch.models.zoo`) are built from
#   these layers and ship trained: `load_model(name)`, `tito zoo eval NAME`, `tito zoo train NAME`.
#   Their code is given, in the module's second notebook `nbs/09_convolutions.zoo.ipynb`.
# - Measured: where a convolution's time goes (data movement is a large part), why the
#   per-image layout wins, and the achieved GFLOP/s against this machine's matmul; your
#   numbers are in the cells above.
