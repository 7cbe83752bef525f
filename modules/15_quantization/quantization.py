# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 15: Quantization
#
# > Quantization: store weights as int8 with per-channel scales, compute with exact int32 accumulation, and measure what it costs in accuracy and buys in bytes and time.
#
# ## Why quantization matters
#
# A trained network stores every weight as a 32-bit float, yet it rarely needs that much
# precision: the weights of a layer span a small range, and the network tolerates a little
# noise in them. **Quantization** stores each number as an 8-bit integer plus a shared
# float scale. The model becomes about four times smaller on disk and in memory, four
# times more weights fit into each cache line, and integer hardware (phones,
# microcontrollers, the VNNI/DOT instructions of recent CPUs) multiplies int8 numbers
# several times faster than floats.
#
# Three questions decide whether it is worth it, and this module answers each by
# measuring: how much **accuracy** is lost, how many **bytes** are saved (counted from
# the real storage, not from a formula), and whether it is **faster** here (numpy has no
# int8 matrix multiply, so the answer on this machine may well be "no": the systems
# section measures it and says so).

# %%
#| default_exp optimization.quantization

# %% [markdown]
# ## The idea: an affine map from floats to integers
#
# Pick a **scale** `s` (a float) and a **zero point** `z` (an integer). A real number `x`
# is stored as the integer
#
# ```
# q = clip(round(x / s) + z, qmin, qmax)        and read back as     x_hat = s * (q - z)
# ```
#
# For int8, `[qmin, qmax] = [-128, 127]`. Two ways to choose `s` and `z`:
#
# - **Symmetric** (used for weights): `z = 0`, `s = max|x| / 127`, integers in
#   `[-127, 127]` (dropping -128 keeps the map symmetric around zero).
# - **Asymmetric** (used for activations, e.g. ReLU outputs that are all >= 0):
#   `s = (max - min) / 255` and `z` chosen so that `min` maps to -128. The range is first
#   widened to include 0, so that the real number 0 (padding, ReLU zeros) is stored exactly.
#
# Rounding is to the nearest integer with ties to even (numpy's `np.rint`), so each
# element's error is at most `s / 2` as long as it is inside the range.
#
# The worked example quantizes four numbers by hand.

# %%
import numpy as np

x = np.array([-1.0, -0.1, 0.26, 0.5], dtype=np.float32)
s = 1.0 / 127                       # symmetric: max|x| = 1.0 maps to 127
q = np.rint(x / s).astype(np.int8)  # -127, -12.7 -> -13, 33.02 -> 33, 63.5 -> 64 (ties to even)
x_hat = s * q.astype(np.float32)
assert q.tolist() == [-127, -13, 33, 64]
assert np.all(np.abs(x - x_hat) <= s / 2 + 1e-7)
print("x      :", [round(float(v), 4) for v in x])
print("q      :", q.tolist(), q.dtype)
print("x_hat  :", [round(float(v), 4) for v in x_hat])
print("error  :", [round(float(v), 5) for v in x - x_hat], "(each at most s/2 =", round(s / 2, 5), ")")

# %% [markdown]
# ## Step 1: scales, zero points, quantize and dequantize
#
# `quantize_params(x, bits=8, symmetric=True, axis=None)` returns `(scale, zero_point)`:
# float32 and int32 arrays that **broadcast against x** (numpy's `keepdims` shape). With
# `axis=None` there is one pair for the whole tensor (**per-tensor**); with an `axis`, one
# pair per index along that axis (**per-channel**), computed over all the other axes.
# A channel whose values are all zero gets scale 1 (any scale stores zeros exactly).
#
# `quantize(x, scale, zero_point, bits=8, symmetric=False)` returns an `np.int8` array
# (round half to even, clip to `[-128, 127]`, or `[-127, 127]` when `symmetric`);
# `dequantize(q, scale, zero_point)` returns float32. Only 8 bits are supported: any other
# `bits` is a `ValueError` listing the supported set.

# %%
#| export
import copy
import io
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Module, Parameter, Sequential
from tinytorch.core.spatial import Conv2d, _im2col, conv_output_shape
from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import load_digits
from tinytorch.models.zoo import ZOO, _atomic_write, build_model, evaluate, load_model
from tinytorch.profiling.profiler import (conv2d_layer_flops, expected_input, inference_trace, leaf_layers,
                                          linear_flops, parameter_bytes, register_flop_rule)
from tinytorch.utils.timing import environment, measure_interleaved

SUPPORTED_BITS = frozenset({8})
INT8_MIN, INT8_MAX = -128, 127


def _check_bits(bits):
    """ValueError unless bits is a supported width (8)."""
    if isinstance(bits, bool) or bits not in SUPPORTED_BITS:
        raise ValueError(f"bits={bits!r} is not supported; supported: {set(SUPPORTED_BITS)} "
                         "(int8 storage with int32 accumulation)")


def _as_array(x, name="x"):
    """x (Tensor, ndarray, list) as a numpy array; TypeError for non-numeric data."""
    array = x.data if isinstance(x, Tensor) else np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
    return array


def _reduce_axes(ndim, axis):
    """The axes to reduce over: all of them (axis None), or all but axis."""
    if axis is None:
        return tuple(range(ndim))
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis} is out of range for an array with {ndim} dimensions")
    return tuple(d for d in range(ndim) if d != axis % ndim)

# %% nbgrader={"grade": false, "grade_id": "quantize-params", "locked": false, "schema_version": 3, "solution": true}
#| export
def params_from_range(low, high, symmetric):
    """(scale float32, zero_point int32) arrays mapping [low, high] (arrays, widened to include 0)
    onto int8: symmetric -> [-127, 127] with zero point 0; asymmetric -> [-128, 127]."""
    ### BEGIN SOLUTION
    low = np.minimum(np.asarray(low, dtype=np.float64), 0.0)
    high = np.maximum(np.asarray(high, dtype=np.float64), 0.0)
    if symmetric:
        span = np.maximum(np.abs(low), np.abs(high)) / INT8_MAX
        scale = np.where(span > 0, span, 1.0)
        zero_point = np.zeros(scale.shape, dtype=np.int32)
    else:
        span = (high - low) / (INT8_MAX - INT8_MIN)
        scale = np.where(span > 0, span, 1.0)
        zero_point = np.clip(np.rint(INT8_MIN - low / scale), INT8_MIN, INT8_MAX).astype(np.int32)
    return scale.astype(np.float32), zero_point
    ### END SOLUTION


def quantize_params(x, bits=8, symmetric=True, axis=None):
    """(scale, zero_point) for x: per-tensor (axis None) or one pair per index of axis.

    Both broadcast against x (keepdims shape); scale float32, zero_point int32.
    """
    _check_bits(bits)
    array = _as_array(x)
    ### BEGIN SOLUTION
    axes = _reduce_axes(array.ndim, axis)
    return params_from_range(array.min(axis=axes, keepdims=True), array.max(axis=axes, keepdims=True),
                             symmetric)
    ### END SOLUTION

# %% nbgrader={"grade": false, "grade_id": "quantize-dequantize", "locked": false, "schema_version": 3, "solution": true}
#| export
def quantize(x, scale, zero_point, bits=8, symmetric=False):
    """int8 array: clip(rint(x / scale) + zero_point) to [-128, 127] ([-127, 127] if symmetric)."""
    _check_bits(bits)
    ### BEGIN SOLUTION
    low = -INT8_MAX if symmetric else INT8_MIN
    q = np.rint(_as_array(x) / np.asarray(scale, dtype=np.float32)) + np.asarray(zero_point)
    return np.clip(q, low, INT8_MAX).astype(np.int8)
    ### END SOLUTION


def dequantize(q, scale, zero_point):
    """float32 array scale * (q - zero_point)."""
    ### BEGIN SOLUTION
    centred = np.asarray(q, dtype=np.int32) - np.asarray(zero_point, dtype=np.int32)
    return (np.asarray(scale, dtype=np.float32) * centred).astype(np.float32)
    ### END SOLUTION


def quantization_error(x, bits=8, symmetric=True, axis=None):
    """Round-trip error of quantizing x: max_abs_error, rmse, sqnr_db (signal-to-quantization-
    noise ratio, 10*log10(sum x^2 / sum err^2); inf when there is no error) and the scales."""
    array = _as_array(x).astype(np.float64)
    ### BEGIN SOLUTION
    scale, zero_point = quantize_params(array, bits, symmetric, axis)
    error = array - dequantize(quantize(array, scale, zero_point, bits, symmetric), scale, zero_point)
    noise, signal = float(np.sum(error ** 2)), float(np.sum(array ** 2))
    sqnr = math.inf if noise == 0 else 10 * math.log10(signal / noise) if signal > 0 else -math.inf
    return {"max_abs_error": float(np.max(np.abs(error))), "rmse": float(np.sqrt(np.mean(error ** 2))),
            "sqnr_db": sqnr, "max_scale": float(np.max(scale)), "scales": int(scale.size)}
    ### END SOLUTION

# %% [markdown]
# Check step 1: a round trip stays within half a scale of every element, zero is stored
# exactly in both schemes, and asymmetric quantization of non-negative data uses the whole
# integer range.

# %%
rng = np.random.default_rng(0)
w = rng.normal(size=(6, 4)).astype(np.float32)
scale, zp = quantize_params(w)
assert scale.shape == (1, 1) and zp.item() == 0
q = quantize(w, scale, zp, symmetric=True)
assert q.dtype == np.int8 and np.abs(q).max() == 127
assert np.all(np.abs(dequantize(q, scale, zp) - w) <= scale / 2 + 1e-6)
relu_out = np.abs(w)
scale_a, zp_a = quantize_params(relu_out, symmetric=False)
qa = quantize(relu_out, scale_a, zp_a)
assert zp_a.item() == -128 and qa.min() >= -128 and qa.max() == 127  # the range starts at 0 -> -128
assert quantize(np.zeros(1), scale_a, zp_a)[0] == zp_a.item()
per_channel, _ = quantize_params(w, axis=1)
assert per_channel.shape == (1, 4)
assert np.allclose(per_channel.ravel(), np.abs(w).max(axis=0) / 127)
print("OK: per-tensor scale", float(scale.item()), "| per-channel scales", per_channel.ravel().round(4).tolist())

# %% [markdown]
# ## Per-channel versus per-tensor: measured
#
# A layer's output channels can have very different weight ranges. With one scale for the
# whole tensor, a channel with small weights uses only a few of the 255 integer levels.
# Giving every output channel its own scale costs one float per channel and usually
# shrinks the error. The cell below builds a weight matrix whose columns differ in size
# (as in trained networks) and measures both.

# %%
col_sizes = np.geomspace(0.01, 1.0, 16)
w_spread = (rng.normal(size=(128, 16)) * col_sizes).astype(np.float32)
per_tensor_err = quantization_error(w_spread, symmetric=True, axis=None)
per_channel_err = quantization_error(w_spread, symmetric=True, axis=1)
print(f"per-tensor : max abs error {per_tensor_err['max_abs_error']:.2e}, RMSE {per_tensor_err['rmse']:.2e}, "
      f"SQNR {per_tensor_err['sqnr_db']:.1f} dB")
print(f"per-channel: max abs error {per_channel_err['max_abs_error']:.2e}, RMSE {per_channel_err['rmse']:.2e}, "
      f"SQNR {per_channel_err['sqnr_db']:.1f} dB")
better = "lower" if per_channel_err["rmse"] < per_tensor_err["rmse"] else "not lower"
print(f"Per-channel RMSE is {better} than per-tensor RMSE here, by a factor of "
      f"{per_tensor_err['rmse'] / per_channel_err['rmse']:.1f}.")

# %% [markdown]
# ## Step 2: integer matrix multiply with int32 accumulation
#
# A quantized layer computes `y = x @ W` from integers. With weights `W ~ s_w * q_w`
# (symmetric, per output column) and inputs `x ~ s_x * (q_x - z_x)` (asymmetric):
#
# ```
# y[m, o] = s_x * s_w[o] * ( sum_k q_x[m, k] * q_w[k, o]  -  z_x * sum_k q_w[k, o] )
# ```
#
# The first sum is a product of int8 numbers; each term is at most `128 * 127` in size,
# so a sum of `K` of them fits in int32 for any realistic `K` (hardware accumulates in
# int32 for exactly this reason). The second sum depends only on the weights: it is
# computed once.
#
# numpy has no int8 BLAS. An integer `@` on int64 is exact but runs in a slow generic
# loop (the **reference** path). The **fast** path uses float BLAS on the same integers,
# and it is exact too: float32 represents every integer with magnitude below `2^24`
# exactly, each product is an integer, and every partial sum is an integer of magnitude at
# most `K * 128 * 127`. If that bound is below `2^24`, no rounding ever happens, in any
# order of summation BLAS chooses. Otherwise float64 (exact below `2^53`) is used.
# `int_matmul(a, b, method)` picks the path and always returns int32.

# %% nbgrader={"grade": false, "grade_id": "int-matmul", "locked": false, "schema_version": 3, "solution": true}
#| export
FLOAT32_EXACT = 2 ** 24
FLOAT64_EXACT = 2 ** 53
INT_MATMUL_METHODS = ("fast", "reference")


def exact_float_dtype(k):
    """float32 if every partial sum of k int8 x int8 products is below 2^24 (exact), float64 if
    below 2^53; OverflowError otherwise."""
    ### BEGIN SOLUTION
    bound = k * (-INT8_MIN) * INT8_MAX
    if bound < FLOAT32_EXACT:
        return np.dtype(np.float32)
    if bound < FLOAT64_EXACT:
        return np.dtype(np.float64)
    raise OverflowError(f"sums of {k} int8 products may reach {bound}, beyond 2^53: no exact float path")
    ### END SOLUTION


def int_matmul(a, b, method="fast"):
    """a @ b for int8 arrays (contracting a's last axis with b's second-to-last), as int32.

    "reference": int64 numpy matmul (exact, slow); "fast": BLAS on float32/float64 copies,
    exact because every partial sum stays below the float's exact-integer bound.
    """
    if method not in INT_MATMUL_METHODS:
        raise ValueError(f"method must be one of {INT_MATMUL_METHODS}, got {method!r}")
    ### BEGIN SOLUTION
    if method == "reference":
        return (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32)
    dtype = exact_float_dtype(a.shape[-1])
    return (a.astype(dtype) @ b.astype(dtype)).astype(np.int32)
    ### END SOLUTION

# %% [markdown]
# Check step 2: both paths agree with each other and with a plain Python-integer sum.

# %%
a8 = rng.integers(-128, 128, size=(5, 300), dtype=np.int8)
b8 = rng.integers(-127, 128, size=(300, 7), dtype=np.int8)
ref = int_matmul(a8, b8, "reference")
fast = int_matmul(a8, b8, "fast")
by_hand = sum(int(a8[2, k]) * int(b8[k, 3]) for k in range(300))
assert ref.dtype == fast.dtype == np.int32 and np.array_equal(ref, fast) and ref[2, 3] == by_hand
print("OK: K=300 uses", exact_float_dtype(300), "| largest K for float32:",
      (FLOAT32_EXACT - 1) // (128 * 127), "| worst-case |sum| at K=300:", 300 * 128 * 127)

# %% [markdown]
# ## Step 3: quantized layers that store int8
#
# `QuantizedLinear(linear, activation_range=None, per_channel=True)` and
# `QuantizedConv2d(conv, ...)` are Modules built from a float layer. They **store**:
#
# - `weight_q`: the weights as `np.int8` (1 byte each), symmetric;
# - `weight_scale`: float32, one per output channel (or one for the tensor);
# - `bias`: float32, unchanged (added after rescaling, so it never loses precision);
# - `input_scale`, `input_zero_point` (float32 and int32, one each) when an activation
#   range from calibration was given; without one, each batch is quantized with its own
#   range ("dynamic" quantization) and nothing is stored.
#
# These arrays are `FrozenParameter`s: Parameters that never require a gradient, so that
# `state_dict()`, the profiler's `parameter_bytes` and `serialized_bytes` all see the
# real int8 storage. `nbytes_total()` returns the sum of their bytes.
#
# The forward pass: quantize the input (asymmetric), integer matmul (int32 result),
# subtract the zero-point term, rescale to float32, add the bias. The convolution pads
# the *quantized* input with the zero point (the integer that stands for 0.0) and reuses
# module 09's `_im2col`, so the convolution is one integer matmul too.

# %% [markdown]
# Your part in the cell below: `_input_params` (the calibrated pair, or the batch's own range),
# the storage in `_QuantizedLayer.__init__` (symmetric int8 weights with one scale per output
# channel along `channel_axis`, or one for the tensor; the bias as float32; the input's scale
# and zero point from a calibrated range, asymmetric) and `nbytes_total`. The check of the
# range is given.

# %% nbgrader={"grade": false, "grade_id": "quantized-storage", "locked": false, "schema_version": 3, "solution": true}
#| export
class FrozenParameter(Parameter):
    """A stored array of a quantized layer (int8 weights, float32 scales): a Parameter, so that
    state_dict(), parameter_bytes and serialized_bytes count it, but never trained."""

    requires_grad = False

    def __repr__(self):
        return f"FrozenParameter(shape={self.shape}, dtype={self.dtype}, nbytes={self.data.nbytes})"


def _frozen(array, dtype):
    return FrozenParameter(np.asarray(array, dtype=dtype), dtype=dtype)


def _input_params(x, layer):
    """(scale, zero_point) of the input: the calibrated ones, or x's own range (dynamic)."""
    ### BEGIN SOLUTION
    if layer.input_scale is not None:
        return layer.input_scale.data, layer.input_zero_point.data
    return params_from_range(x.min(), x.max(), symmetric=False)
    ### END SOLUTION


class _QuantizedLayer(Module):
    """Shared by QuantizedLinear and QuantizedConv2d: int8 weights with per-channel scales
    along channel_axis, float32 bias, optional calibrated input range."""

    channel_axis = 0  # the weight axis of the output channels (set by each subclass)

    def __init__(self, weight, bias, activation_range, per_channel):
        super().__init__()
        if activation_range is not None:
            low, high = activation_range
            if not low <= high:
                raise ValueError(f"activation_range must be (min, max) with min <= max, got {activation_range!r}")
        ### BEGIN SOLUTION
        axis = self.channel_axis if per_channel else None
        scale, _ = quantize_params(weight, symmetric=True, axis=axis)
        self.per_channel = bool(per_channel)
        self.weight_q = _frozen(quantize(weight, scale, 0, symmetric=True), np.int8)
        self.weight_scale = _frozen(scale.reshape(-1), np.float32)
        self.bias = None if bias is None else _frozen(bias.data, np.float32)
        self.input_scale = self.input_zero_point = None
        if activation_range is not None:
            in_scale, in_zp = params_from_range(low, high, symmetric=False)
            self.input_scale = _frozen(in_scale.reshape(1), np.float32)
            self.input_zero_point = _frozen(in_zp.reshape(1), np.int32)
        ### END SOLUTION
        self.method = "fast"

    @property
    def calibrated(self):
        return self.input_scale is not None

    def nbytes_total(self):
        """Bytes of everything stored: int8 weights, scales, bias, input scale and zero point."""
        ### BEGIN SOLUTION
        return int(sum(p.data.nbytes for p in self.parameters()))
        ### END SOLUTION

    def _scales_text(self):
        kind = "per-channel" if self.per_channel else "per-tensor"
        inputs = "calibrated" if self.calibrated else "dynamic"
        return f"int8 {kind}, input {inputs}, {self.nbytes_total()} bytes"

# %% nbgrader={"grade": false, "grade_id": "quantized-linear", "locked": false, "schema_version": 3, "solution": true}
#| export
def _check_input(x, who):
    if not isinstance(x, Tensor):
        raise TypeError(f"{who} expects a Tensor, got {type(x).__name__}; wrap data with Tensor(...)")


class QuantizedLinear(_QuantizedLayer):
    """Linear with int8 weights (in_features, out_features), per-output-column scales and int32
    accumulation: x (..., in_features) float -> (..., out_features) float32."""

    channel_axis = 1

    def __init__(self, linear, activation_range=None, per_channel=True):
        if not isinstance(linear, Linear):
            raise TypeError(f"QuantizedLinear needs a Linear layer, got {type(linear).__name__}")
        super().__init__(linear.weight.data, linear.bias, activation_range, per_channel)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x):
        _check_input(x, "QuantizedLinear")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"QuantizedLinear(in_features={self.in_features}) got an input of shape "
                             f"{x.shape}; expected shape (..., {self.in_features})")
        ### BEGIN SOLUTION
        rows = x.data.reshape(-1, self.in_features)
        in_scale, in_zp = _input_params(rows, self)
        acc = int_matmul(quantize(rows, in_scale, in_zp), self.weight_q.data, self.method)
        colsum = self.weight_q.data.sum(axis=0, dtype=np.int32)            # sum_k q_w[k, o]
        acc = acc - np.int32(in_zp.item()) * colsum                         # int32, exact
        out = acc.astype(np.float32) * (np.float32(in_scale.item()) * self.weight_scale.data)
        if self.bias is not None:
            out += self.bias.data
        return Tensor.from_numpy(out.reshape(*x.shape[:-1], self.out_features))
        ### END SOLUTION

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, {self._scales_text()}"

# %% nbgrader={"grade": false, "grade_id": "quantized-conv2d", "locked": false, "schema_version": 3, "solution": true}
#| export
class QuantizedConv2d(_QuantizedLayer):
    """Conv2d with int8 weights (O, C, kh, kw), per-output-channel scales and int32
    accumulation: x (N, C, H, W) float -> (N, O, H_out, W_out) float32."""

    channel_axis = 0

    def __init__(self, conv, activation_range=None, per_channel=True):
        if not isinstance(conv, Conv2d):
            raise TypeError(f"QuantizedConv2d needs a Conv2d layer, got {type(conv).__name__}")
        super().__init__(conv.weight.data, conv.bias, activation_range, per_channel)
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding

    def forward(self, x):
        _check_input(x, "QuantizedConv2d")
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"QuantizedConv2d expects shape (N, {self.in_channels}, H, W), got {x.shape}")
        out_h, out_w = conv_output_shape(x.shape[2:], self.kernel_size, self.stride, self.padding)
        ### BEGIN SOLUTION
        in_scale, in_zp = _input_params(x.data, self)
        q = quantize(x.data, in_scale, in_zp)
        (ph, pw), zp = self.padding, int(in_zp.item())
        q = np.pad(q, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=np.int8(zp))
        cols, _ = _im2col(q, self.kernel_size, self.stride)                # (N, K, L) int8
        w_matrix = self.weight_q.data.reshape(self.out_channels, -1)        # (O, K) int8, a view
        acc = int_matmul(w_matrix, cols, self.method)                        # (N, O, L) int32
        acc = acc - np.int32(zp) * w_matrix.sum(axis=1, dtype=np.int32)[:, np.newaxis]
        rescale = np.float32(in_scale.item()) * self.weight_scale.data
        out = acc.astype(np.float32) * np.broadcast_to(rescale, (self.out_channels,))[:, np.newaxis]
        if self.bias is not None:
            out += self.bias.data[:, np.newaxis]
        return Tensor.from_numpy(out.reshape(x.shape[0], self.out_channels, out_h, out_w))
        ### END SOLUTION

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, {self._scales_text()}")


register_flop_rule(QuantizedLinear, lambda layer, i, o: linear_flops(i, layer.out_features, layer.bias is not None))
register_flop_rule(QuantizedConv2d, lambda layer, i, o: conv2d_layer_flops(i, o, layer.kernel_size,
                                                                          layer.bias is not None))

# %% [markdown]
# Check step 3: the stored dtypes and bytes, and the quantized layers against the float
# layers they came from (close, not equal: that is the quantization error).

# %%
from tinytorch.core.spatial import Conv2d as _Conv2d

lin = Linear(20, 6, rng=1)
qlin = QuantizedLinear(lin, activation_range=(-3.0, 3.0))
assert qlin.weight_q.dtype == np.int8 and qlin.weight_scale.shape == (6,)
assert qlin.nbytes_total() == 20 * 6 * 1 + 6 * 4 + 6 * 4 + 4 + 4
from tinytorch.profiling.profiler import storage_bytes, parameter_bytes as _parameter_bytes
assert storage_bytes(qlin) == _parameter_bytes(qlin) == qlin.nbytes_total()
xs = Tensor(rng.normal(size=(8, 20)))
print("QuantizedLinear max |difference| to float:", float(np.abs(qlin(xs).data - lin(xs).data).max()))
conv = _Conv2d(3, 5, 3, stride=2, padding=1, rng=2)
qconv = QuantizedConv2d(conv)
ximg = Tensor(rng.normal(size=(2, 3, 7, 7)))
assert qconv(ximg).shape == conv(ximg).shape == (2, 5, 4, 4)
print("QuantizedConv2d max |difference| to float:", float(np.abs(qconv(ximg).data - conv(ximg).data).max()))
print(qlin)
print("OK: stored", qlin.weight_q.dtype, "weights,", qlin.nbytes_total(), "bytes")

# %% [markdown]
# ## Step 4: calibration and whole-model conversion
#
# Activation ranges are not known from the weights: they depend on the data. **Calibration**
# runs real forward passes over a few hundred training examples and records, for every
# Linear and Conv2d, the smallest and largest value of its input. `calibrate(model, data)`
# hooks the layers with module 14's `inference_trace` and returns
# `{layer name: (min, max)}`; data of the wrong shape is a `ValueError` naming the shape the
# first layer expects and the shape received. Calibrate on the **training** split: the
# test split must stay unseen.
#
# `quantize_model(model, bits=8, calibration_data=None, per_channel=True)` deep-copies the
# model (the original is untouched) and replaces every Linear and Conv2d, at any depth
# inside Sequentials and Modules. Parameter-free layers (activations, pools, Flatten,
# Dropout) are kept. A layer it does not know that holds parameters is a `ValueError`
# naming it: silently keeping it in float would make the size figures wrong.

# %% nbgrader={"grade": false, "grade_id": "calibrate", "locked": false, "schema_version": 3, "solution": true}
#| export
QUANTIZABLE = (Linear, Conv2d)


def _first_quantizable(model):
    """(name, layer) of the first Linear or Conv2d in model's leaf layers, or (None, None)."""
    return next(((name, layer) for name, layer in leaf_layers(model) if isinstance(layer, QUANTIZABLE)),
                (None, None))


def _check_calibration_shape(model, x):
    """ValueError naming the expected and received shapes when x cannot enter the model."""
    name, layer = _first_quantizable(model)
    if layer is None:
        return
    fits = (x.ndim >= 1 and x.shape[-1] == layer.in_features if isinstance(layer, Linear)
            else x.ndim == 4 and x.shape[1] == layer.in_channels)
    if not fits:
        raise ValueError(f"calibration_data has shape {x.shape}, but the model's first layer {name!r} "
                         f"({type(layer).__name__}) expects {expected_input(layer)}; pass a batch of "
                         "model inputs (e.g. load_digits('train').tensors[0][:256])")


def calibrate(model, calibration_data, batch_size=256):
    """{layer name: (min, max) of its input} for every Linear/Conv2d of model, over forward
    passes on calibration_data (a Tensor or array of model inputs) in batches of batch_size."""
    x = Tensor.from_numpy(_as_array(calibration_data, "calibration_data"))
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"calibration_data must be a non-empty batch, got shape {x.shape}")
    _check_calibration_shape(model, x)
    ### BEGIN SOLUTION
    ranges = {}
    for start in range(0, x.shape[0], batch_size):
        for call in inference_trace(model, x[start:start + batch_size]):
            if isinstance(call.layer, QUANTIZABLE):
                values = call.input.data
                low, high = ranges.get(call.name, (np.inf, -np.inf))
                ranges[call.name] = (min(low, float(values.min())), max(high, float(values.max())))
    return ranges
    ### END SOLUTION

# %% nbgrader={"grade": false, "grade_id": "quantize-model", "locked": false, "schema_version": 3, "solution": true}
#| export
def _quantized(layer, name, ranges, per_channel):
    """The quantized replacement of a Linear or Conv2d."""
    cls = QuantizedLinear if isinstance(layer, Linear) else QuantizedConv2d
    return cls(layer, activation_range=ranges.get(name), per_channel=per_channel)


def _convert(node, name, ranges, per_channel, unsupported):
    """node with every Linear/Conv2d below it replaced (in place for containers); records
    parameter-holding layers it does not know in unsupported."""
    if isinstance(node, QUANTIZABLE):
        return _quantized(node, name, ranges, per_channel)
    if isinstance(node, _QuantizedLayer) or not isinstance(node, Module):
        return node
    ### BEGIN SOLUTION
    join = lambda child: f"{name}.{child}" if name else child
    if isinstance(node, Sequential):
        layers = [_convert(layer, join(str(i)), ranges, per_channel, unsupported)
                  for i, layer in enumerate(node._layers)]
        for i, layer in enumerate(layers):
            if isinstance(layer, Module):
                setattr(node, str(i), layer)
        node._layers = tuple(layers)
        return node
    if node._parameters:
        unsupported.append(f"{name or '(model)'} ({type(node).__name__}: {', '.join(node._parameters)})")
    for child_name, child in list(node._modules.items()):
        new = _convert(child, join(child_name), ranges, per_channel, unsupported)
        if new is not child:
            setattr(node, child_name, new)
    return node
    ### END SOLUTION


def quantize_model(model, bits=8, calibration_data=None, per_channel=True):
    """A deep copy of model with every Linear and Conv2d replaced by its int8 version.

    calibration_data: model inputs (training data) for static activation ranges; None ->
    dynamic per-batch ranges. ValueError for parameter-holding layers it does not know.
    """
    _check_bits(bits)
    if not isinstance(model, Module):
        raise TypeError(f"quantize_model needs a Module, got {type(model).__name__}")
    ### BEGIN SOLUTION
    ranges = {} if calibration_data is None else calibrate(model, calibration_data)
    unsupported = []
    converted = _convert(copy.deepcopy(model), "", ranges, per_channel, unsupported)
    ### END SOLUTION
    if unsupported:
        raise ValueError(f"quantize_model does not know how to quantize these layers, which hold "
                         f"parameters: {'; '.join(unsupported)}. Supported: Linear, Conv2d; remove or "
                         "replace them, or add a quantized version")
    return converted.eval()

# %% [markdown]
# Check step 4: convert the shipped digits CNN, calibrated on 256 training images, and
# compare its layers and test accuracy with the original.

# %%
from tinytorch.models.zoo import evaluate, load_model, save_weights

float_cnn = load_model("digits_cnn")
train_images = load_digits("train").tensors[0]
ranges = calibrate(float_cnn, train_images[:256])
print("calibrated input ranges:", {k: (round(a, 3), round(b, 3)) for k, (a, b) in ranges.items()})
int8_cnn = quantize_model(float_cnn, calibration_data=train_images[:256])
print(int8_cnn)
assert isinstance(float_cnn[0], _Conv2d) and isinstance(int8_cnn[0], QuantizedConv2d)
base_acc, q_acc = evaluate(float_cnn, "digits_cnn"), evaluate(int8_cnn, "digits_cnn")
print(f"OK: test accuracy float32 {base_acc['accuracy']:.2%} ({base_acc['correct']}/{base_acc['total']}), "
      f"int8 {q_acc['accuracy']:.2%} ({q_acc['correct']}/{q_acc['total']})")

# %% [markdown]
# ## Step 5: the size on disk
#
# `save_quantized(model, path)` writes `model.state_dict()` with `np.savez` (int8 arrays stay
# int8) atomically and returns the file's size in bytes; `load_quantized(path, like)` loads
# such a file into a deep copy of `like`, a quantized model of the same architecture (for
# example `quantize_model(build_model(name), calibration_data=...)`): shapes and names must
# match, and a dtype that differs from the stored one is an error.

# %%
#| export
def save_quantized(model, path):
    """Write model.state_dict() (int8 arrays stay int8) to an .npz file atomically; its size in bytes."""
    state = model.state_dict()
    _atomic_write(path, lambda handle: np.savez(handle, **state))
    return os.path.getsize(path)


def load_quantized(path, like):
    """A deep copy of the quantized model `like` with the arrays stored in path."""
    with np.load(path, allow_pickle=False) as archive:
        state = {key: archive[key] for key in archive.files}
    model = copy.deepcopy(like)
    expected = model.state_dict()
    wrong = [f"{k}: file {state[k].dtype}, model {v.dtype}" for k, v in expected.items()
             if k in state and state[k].dtype != v.dtype]
    if wrong:
        raise ValueError(f"{path}: dtypes differ from the model's ({'; '.join(wrong)}); was it saved "
                         "from a model quantized the same way?")
    model.load_state_dict(state)
    return model.eval()


def file_size(save, suffix=".npz"):
    """Bytes on disk of what save(path) writes, in a temporary folder removed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"model{suffix}"
        save(path)
        return os.path.getsize(path)

# %%
quantized_file = file_size(lambda p: save_quantized(int8_cnn, p))
float_file = file_size(lambda p: save_weights(float_cnn, p))
print(f"digits_cnn on disk: float32 {float_file} bytes, int8 {quantized_file} bytes "
      f"(ratio {float_file / quantized_file:.2f})")

# %% [markdown]
# ## Graded tests

# %% nbgrader={"grade": true, "grade_id": "test-quantize-params", "locked": true, "points": 2, "schema_version": 3, "solution": false}
x_t = np.array([[-2.0, 0.5], [1.0, 4.0]], dtype=np.float32)
s_t, z_t = quantize_params(x_t)
assert np.isclose(s_t.item(), 4.0 / 127) and z_t.item() == 0
s_c, z_c = quantize_params(x_t, axis=1)
assert np.allclose(s_c.ravel(), [2.0 / 127, 4.0 / 127]) and s_c.shape == (1, 2)
s_a, z_a = quantize_params(np.array([0.0, 2.55]), symmetric=False)
assert np.isclose(s_a.item(), 0.01) and z_a.item() == -128
try:
    quantize_params(x_t, bits=4)
    raise AssertionError("bits=4 must fail")
except ValueError as err:
    assert "{8}" in str(err)

# %% nbgrader={"grade": true, "grade_id": "test-quantize-dequantize", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert quantize(np.array([0.5, 1.5, 2.5, -300.0]), 1.0, 0).tolist() == [0, 2, 2, -128]
assert quantize(np.array([-300.0]), 1.0, 0, symmetric=True).tolist() == [-127]
assert quantize(np.array([1.0]), 0.5, 3).tolist() == [5]
assert dequantize(np.array([5], dtype=np.int8), 0.5, 3).tolist() == [1.0]
assert dequantize(np.array([5], dtype=np.int8), 0.5, 3).dtype == np.float32
# quantization_error against numpy written out: scale 1/127, 0.3 -> rint(38.1) = 38 -> 38/127
x_e = np.array([1.0, -1.0, 0.3])
err_e = x_e - np.array([127, -127, 38]) / 127
report_e = quantization_error(x_e)
assert np.isclose(report_e["max_abs_error"], np.abs(err_e).max(), rtol=1e-5, atol=1e-9)
assert np.isclose(report_e["rmse"], np.sqrt(np.mean(err_e ** 2)), rtol=1e-4)
assert np.isclose(report_e["sqnr_db"], 10 * np.log10(np.sum(x_e ** 2) / np.sum(err_e ** 2)), rtol=1e-4)
assert report_e["scales"] == 1 and quantization_error(np.ones((3, 4)), axis=1)["scales"] == 4
assert quantization_error(np.array([0.0, 127.0, -2.0]))["sqnr_db"] == float("inf")   # scale 1: exact

# %% nbgrader={"grade": true, "grade_id": "test-int-matmul", "locked": true, "points": 2, "schema_version": 3, "solution": false}
a_t = np.full((1, 1000), -128, dtype=np.int8)
b_t = np.full((1000, 1), -127, dtype=np.int8)
assert int_matmul(a_t, b_t, "fast")[0, 0] == int_matmul(a_t, b_t, "reference")[0, 0] == 1000 * 128 * 127
assert exact_float_dtype(1032) == np.float32 and exact_float_dtype(1033) == np.float64

# %% nbgrader={"grade": true, "grade_id": "test-quantized-storage", "locked": true, "points": 2, "schema_version": 3, "solution": false}
lin_s = Linear(2, 3, rng=0)
lin_s.weight.data[...] = [[0.5, -2.0, 0.0], [-0.25, 1.0, 0.0]]
per_tensor_s = QuantizedLinear(lin_s, activation_range=(-1.0, 3.0), per_channel=False)
# one scale 2/127 for the tensor; asymmetric input: scale 4/255, zero point rint(-128 + 1 / (4/255)) = -64
assert per_tensor_s.weight_scale.shape == (1,) and np.isclose(per_tensor_s.weight_scale.data[0], 2.0 / 127)
assert per_tensor_s.weight_q.data.tolist() == [[32, -127, 0], [-16, 64, 0]]
assert np.isclose(per_tensor_s.input_scale.data[0], 4.0 / 255) and per_tensor_s.input_zero_point.data.tolist() == [-64]
assert per_tensor_s.input_scale.dtype == np.float32 and per_tensor_s.input_zero_point.dtype == np.int32
per_channel_s = QuantizedLinear(lin_s)                                    # columns: 0.5, 2.0 and all zeros
assert np.allclose(per_channel_s.weight_scale.data, [0.5 / 127, 2.0 / 127, 1.0])
assert per_channel_s.weight_q.data.tolist() == [[127, -127, 0], [-64, 64, 0]]
assert per_channel_s.input_scale is None and per_channel_s.bias.dtype == np.float32
assert per_channel_s.nbytes_total() == 6 * 1 + 3 * 4 + 3 * 4
assert per_tensor_s.nbytes_total() == 6 * 1 + 1 * 4 + 3 * 4 + 4 + 4
try:
    QuantizedLinear(lin_s, activation_range=(2.0, -1.0))
    raise AssertionError("an empty activation range was accepted")
except ValueError as err:
    assert "(2.0, -1.0)" in str(err)

# %% nbgrader={"grade": true, "grade_id": "test-quantized-layers", "locked": true, "points": 4, "schema_version": 3, "solution": false}
lin_t = Linear(3, 2, rng=0)
lin_t.weight.data[...] = [[1.0, -0.5], [0.0, 0.25], [-1.0, 0.5]]
lin_t.bias.data[...] = [0.1, -0.1]
ql_t = QuantizedLinear(lin_t)
assert ql_t.weight_q.data.tolist() == [[127, -127], [0, 64], [-127, 127]]
x_in = Tensor([[0.5, 1.0, -0.5]])
assert np.allclose(ql_t(x_in).data, lin_t(x_in).data, atol=0.02)
conv_t = _Conv2d(2, 3, 3, stride=2, padding=1, rng=3)
qc_t = QuantizedConv2d(conv_t, activation_range=(-2.0, 2.0))
x_img = Tensor(np.random.default_rng(4).uniform(-2, 2, size=(2, 2, 5, 5)))
assert np.allclose(qc_t(x_img).data, conv_t(x_img).data, atol=0.05)
qc_t.method = "reference"
slow = qc_t(x_img).data
qc_t.method = "fast"
assert np.array_equal(slow, qc_t(x_img).data)

# %% nbgrader={"grade": true, "grade_id": "test-quantize-model", "locked": true, "points": 4, "schema_version": 3, "solution": false}
cnn_t = load_model("digits_cnn")
calib_t = load_digits("train").tensors[0][:128]
assert set(calibrate(cnn_t, calib_t)) == {"0", "3", "7"}
q_t = quantize_model(cnn_t, calibration_data=calib_t)
assert isinstance(cnn_t[7], Linear) and isinstance(q_t[7], QuantizedLinear)
assert evaluate(q_t, "digits_cnn")["correct"] >= evaluate(cnn_t, "digits_cnn")["correct"] - 3
try:
    calibrate(cnn_t, np.zeros((4, 64), dtype=np.float32))
    raise AssertionError("wrong calibration shape must fail")
except ValueError as err:
    assert "(4, 64)" in str(err)

# %% [markdown]
# ## Systems analysis: the ablation
#
# `quantization_report(name="digits_cnn")` is an ablation of a shipped model: float32 (the
# baseline); each technique alone (int8 weights with one scale per tensor or one per output
# channel, inputs quantized with each batch's own range, "dynamic"; and static input ranges
# calibrated on a slice of the **training** split); and both combined (per-channel weights +
# calibrated inputs, the model that ships as `digits_cnn_int8`). For each it measures:
#
# - **accuracy** on the test split, with its Wilson 95% interval (module 09's `evaluate`);
# - **latency** of one forward pass on a batch of 64 test images, all three measured
#   **interleaved** (A B C ...) with calibrated raw samples; the median and a
#   distribution-free 95% confidence interval of the median (order statistics, binomial);
#   the speed-up over float32 (ratio of medians) with a paired bootstrap 95% interval and a
#   Mann-Whitney p-value, Bonferroni-adjusted for the four comparisons (`significant`: adjusted
#   p < 0.05 and the interval excludes 1);
# - **parameter bytes** from the real storage (`storage_bytes` of every parameter: int8
#   is 1 byte) and the **size on disk** of the saved weights; ratios to the baseline.
#
# It also checks the module's targets: storage at most 1/3.5 of float32, an accuracy drop
# of at most one percentage point. The cell after it prints sentences built from the
# measured values.
#
# Your part: the ablation itself, the `models` of `quantization_report`: `{label: model}` with
# the labels of the list above ("float32", "int8 per-tensor", "int8 per-channel",
# "int8 per-tensor + calibration" and `BEST`), each built from `base` with `quantize_model`
# (calibrated on `calib` where the label says so). Everything else of the report is given.

# %% nbgrader={"grade": false, "grade_id": "ablation", "locked": false, "schema_version": 3, "solution": true}
#| export
def median_ci(samples, confidence=0.95):
    """(low, high): distribution-free interval for the median from order statistics (binomial
    with p = 1/2); the sample range when there are too few samples for the confidence."""
    values = np.sort(np.asarray(samples, dtype=np.float64))
    n = values.size
    k = int(stats.binom.ppf((1 - confidence) / 2, n, 0.5))   # order statistics k+1 .. n-k (1-based)
    if k < 1:
        return float(values[0]), float(values[-1])
    return float(values[k - 1]), float(values[n - k])


def _variant_row(label, model, name, latency, float_row=None):
    acc = evaluate(model, name)
    row = {"variant": label, "accuracy": acc["accuracy"], "correct": acc["correct"], "total": acc["total"],
           "acc_ci_low": acc["ci_low"], "acc_ci_high": acc["ci_high"],
           "latency_ms": latency.median_ns / 1e6}
    row["lat_ci_low_ms"], row["lat_ci_high_ms"] = (v / 1e6 for v in median_ci(latency.samples_ns))
    row["latency_noise"] = latency.noise
    row["param_bytes"] = parameter_bytes(model)
    row["file_bytes"] = file_size(lambda p: save_quantized(model, p))
    base = float_row or row
    row["bytes_ratio"] = base["param_bytes"] / row["param_bytes"]
    row["file_ratio"] = base["file_bytes"] / row["file_bytes"]
    return row


BEST = "int8 per-channel + calibration"   # both techniques combined: what digits_cnn_int8 ships


def speedup_significance(base_ns, variant_ns, seed=0, resamples=2000):
    """{speedup, speedup_low, speedup_high, p_value}: median(base)/median(variant) with a paired
    percentile-bootstrap 95% interval (scipy.stats.bootstrap; the samples are interleaved rounds) and
    the two-sided Mann-Whitney p-value; NaN interval and p for the baseline against itself."""
    a, b = np.asarray(base_ns, dtype=np.float64), np.asarray(variant_ns, dtype=np.float64)
    speedup = float(np.median(a) / np.median(b))
    if a is b or np.array_equal(a, b):
        return {"speedup": speedup, "speedup_low": np.nan, "speedup_high": np.nan, "p_value": np.nan}
    ci = stats.bootstrap((a, b), lambda x, y, axis=-1: np.median(x, axis=axis) / np.median(y, axis=axis),
                         paired=True, vectorized=True, n_resamples=resamples, method="percentile",
                         rng=np.random.default_rng(seed)).confidence_interval
    return {"speedup": speedup, "speedup_low": float(ci.low), "speedup_high": float(ci.high),
            "p_value": float(stats.mannwhitneyu(a, b).pvalue)}


def quantization_report(name="digits_cnn", calibration_size=256, batch_size=64, repeats=15,
                        min_bytes_ratio=3.5, max_accuracy_drop=0.01):
    """Ablation for a shipped zoo model: float32; int8 weights per-tensor and per-channel with dynamic
    input ranges (each technique alone); calibrated input ranges; and both combined (per-channel +
    calibration). Latency ratios to float32 carry a bootstrap interval and a Bonferroni-adjusted
    Mann-Whitney p-value.

    Returns {"table": DataFrame (one row per variant), "targets": {...}, "environment": ...}.
    Calibration uses the first calibration_size images of the TRAIN split only.
    """
    spec = ZOO[name] if name in ZOO else None
    if spec is None:
        raise ValueError(f"unknown reference model {name!r}; choose one of {', '.join(ZOO)}")
    base = load_model(name)
    train_x = load_digits("train", flatten=spec.flatten).tensors[0]
    calib = train_x[:calibration_size]
    ### BEGIN SOLUTION
    models = {"float32": base,
              "int8 per-tensor": quantize_model(base, per_channel=False),
              "int8 per-channel": quantize_model(base, per_channel=True),
              "int8 per-tensor + calibration": quantize_model(base, calibration_data=calib, per_channel=False),
              BEST: quantize_model(base, calibration_data=calib, per_channel=True)}
    ### END SOLUTION
    batch = load_digits("test", flatten=spec.flatten).tensors[0][:batch_size]

    def forward(model):
        def run():
            with no_grad():
                return model(batch)
        return run

    timings = measure_interleaved({label: forward(m) for label, m in models.items()}, repeats, rewarm=True)
    rows, first = [], None
    for label, model in models.items():
        rows.append(_variant_row(label, model, name, timings[label], first))
        first = first or rows[0]
        rows[-1].update(speedup_significance(timings["float32"].samples_ns, timings[label].samples_ns))
    table = pd.DataFrame(rows).set_index("variant")
    table["p_bonferroni"] = np.minimum(table["p_value"] * (len(table) - 1), 1.0)
    table["significant"] = (table["p_bonferroni"] < 0.05) & ((table["speedup_low"] > 1) | (table["speedup_high"] < 1))
    best = table.loc[BEST]
    drop = table.loc["float32", "accuracy"] - best["accuracy"]
    targets = {"bytes_ratio": float(best["bytes_ratio"]), "bytes_target_met": bool(best["bytes_ratio"] >= min_bytes_ratio),
               "accuracy_drop": float(drop), "accuracy_target_met": bool(drop <= max_accuracy_drop),
               "int8_faster": bool(best["latency_ms"] < table.loc["float32", "latency_ms"]),
               "min_bytes_ratio": min_bytes_ratio, "max_accuracy_drop": max_accuracy_drop}
    return {"model": name, "batch_size": batch_size, "calibration": f"first {len(calib.data)} train images",
            "latency_interval": "95% order-statistic (binomial) interval of the median",
            "table": table, "targets": targets, "environment": environment()}


def report_sentences(report):
    """Plain sentences stating the measured results of quantization_report."""
    t, table = report["targets"], report["table"]
    base, best = table.loc["float32"], table.loc[BEST]
    speed = "faster" if t["int8_faster"] else "slower"
    why = ("" if t["int8_faster"] else "; numpy has no int8 kernels, so the integer path also pays for "
           "quantizing the inputs and converting types")
    return [
        f"{BEST} stores {best['param_bytes']} parameter bytes against {base['param_bytes']} for float32: "
        f"{t['bytes_ratio']:.2f}x smaller (target >= {t['min_bytes_ratio']}x: {'met' if t['bytes_target_met'] else 'NOT met'}).",
        f"Test accuracy moves from {base['accuracy']:.2%} to {best['accuracy']:.2%}, a drop of "
        f"{100 * t['accuracy_drop']:.2f} points (target <= {100 * t['max_accuracy_drop']:.0f}: "
        f"{'met' if t['accuracy_target_met'] else 'NOT met'}).",
        f"At batch {report['batch_size']} the int8 forward pass is {speed} than float32 here: median "
        f"{best['latency_ms']:.3f} ms vs {base['latency_ms']:.3f} ms ({best['speedup']:.2f}x the float32 speed{why}; "
        "see the latency intervals and noise lines before trusting the difference).",
        f"On disk: {best['file_bytes']} bytes vs {base['file_bytes']} bytes ({best['file_ratio']:.2f}x smaller).",
    ]

# %%
report = quantization_report("digits_cnn")
columns = ["accuracy", "acc_ci_low", "acc_ci_high", "latency_ms", "lat_ci_low_ms", "lat_ci_high_ms",
           "param_bytes", "file_bytes", "bytes_ratio", "file_ratio", "speedup", "speedup_low", "speedup_high",
           "p_bonferroni", "significant"]
with pd.option_context("display.width", 220):
    print(report["table"][columns].round(4).to_string())
print("latency interval:", report["latency_interval"], "| calibration:", report["calibration"])
for line in report_sentences(report):
    print(line)
for label, noise in report["table"]["latency_noise"].items():
    print(f"latency noise, {label}: {noise}")

# %% nbgrader={"grade": true, "grade_id": "test-ablation", "locked": true, "points": 2, "schema_version": 3, "solution": false}
table_t = report["table"]
assert list(table_t.index) == ["float32", "int8 per-tensor", "int8 per-channel", "int8 per-tensor + calibration", BEST]
# stored bytes by hand: the float32 parameters of digits_cnn, then int8 weights + float32 scales and biases
float_params = load_model("digits_cnn").parameters()
weights = [p for p in float_params if p.ndim > 1]
biases = sum(p.size for p in float_params if p.ndim == 1)
assert table_t.loc["float32", "param_bytes"] == 4 * sum(p.size for p in float_params)
per_tensor_bytes = sum(w.size for w in weights) + 4 * len(weights) + 4 * biases
per_channel_bytes = per_tensor_bytes + 4 * (biases - len(weights))     # one scale per output channel
assert table_t.loc["int8 per-tensor", "param_bytes"] == per_tensor_bytes
assert table_t.loc["int8 per-channel", "param_bytes"] == per_channel_bytes
assert table_t.loc[BEST, "param_bytes"] == per_channel_bytes + 8 * len(weights)   # + input scale, zero point
assert table_t.loc["int8 per-tensor + calibration", "param_bytes"] == per_tensor_bytes + 8 * len(weights)

# %% [markdown]
# Read the table above: the parameter bytes and file sizes are exact counts of what is
# stored; the accuracy intervals show how much of any difference could be chance on a test
# split this small; the latency rows say whether numpy's integer path is faster or slower
# on this machine (the sentence above states which). Real int8 speed-ups need int8 kernels
# (VNNI, ARM dot-product instructions, GPUs' tensor cores), which numpy does not call.

# %% [markdown]
# ## Shipping the int8 model: `load_model("digits_cnn_int8")`
#
# Modules 19 and 20 benchmark optimized models next to the baselines, loaded the same way. The
# zoo's manifest records that `digits_cnn_int8` is built by this module; `load_model` imports it
# by that name and calls `load_zoo_variant`, and `tito zoo train digits_cnn_int8 --install`
# rebuilds it with `build_zoo_variant` (deterministic: same calibration images, same rounding).

# %%
#| export
ZOO_VARIANTS = {"digits_cnn_int8": "digits_cnn with int8 per-channel weights and calibrated int8 activations "
                                   "(first 256 train images)"}
ZOO_VARIANT_TARGET_DROP = 0.01  # accuracy may drop at most 1 point below the float32 baseline


def _zoo_calibration():
    return load_digits("train").tensors[0].data[:256]


def _zoo_variant_check(name):
    if name not in ZOO_VARIANTS:
        raise ValueError(f"unknown int8 variant {name!r}; this module builds {', '.join(ZOO_VARIANTS)}")


def build_zoo_variant(name, seed=0):
    """(model, base, target, recipe): the int8 variant made from the shipped float32 digits_cnn."""
    _zoo_variant_check(name)
    base = load_model("digits_cnn")
    model = quantize_model(base, calibration_data=_zoo_calibration(), per_channel=True)
    target = round(evaluate(base, "digits_cnn")["accuracy"] - ZOO_VARIANT_TARGET_DROP, 6)
    return model, "digits_cnn", target, {"technique": "int8 per-channel", "calibration": "first 256 train images"}


def load_zoo_variant(name, state):
    """The int8 variant with the stored arrays in state (dtypes are checked, int8 stays int8)."""
    _zoo_variant_check(name)
    like = quantize_model(build_model("digits_cnn"), calibration_data=_zoo_calibration()[:8], per_channel=True)
    wrong = [f"{key}: stored {state[key].dtype}, expected {value.dtype}" for key, value in like.state_dict().items()
             if key in state and state[key].dtype != value.dtype]
    if wrong:
        raise ValueError(f"{name}: stored dtypes differ from an int8 digits_cnn ({'; '.join(wrong)})")
    like.load_state_dict(state)
    return like.eval()

# %% [markdown]
# Once this module is exported, `load_model("digits_cnn_int8")` does what the cell below does by
# hand with the functions above: read the shipped arrays, check their sha256 against the
# manifest, and rebuild the layers with `load_zoo_variant`.

# %%
from tinytorch.models.zoo import read_manifest, weights_digest, zoo_dir

with np.load(zoo_dir() / "digits_cnn_int8.npz", allow_pickle=False) as archive:
    shipped = {key: archive[key] for key in archive.files}
assert weights_digest(shipped) == read_manifest()["digits_cnn_int8"]["sha256"]
int8_zoo = load_zoo_variant("digits_cnn_int8", shipped)
int8_eval = evaluate(int8_zoo, "digits_cnn_int8")
print(f"digits_cnn_int8 from the zoo: test accuracy {int8_eval['accuracy']:.2%}, "
      f"{int(sum(p.data.nbytes for p in int8_zoo.parameters())):,} bytes of stored arrays")

# %% [markdown]
# ## Summary
#
# - An int8 number plus a float scale (and a zero point) stands for a float; the round
#   trip error of each element is at most half a scale inside the range.
# - Per-channel weight scales cost one float per output channel and cut the error when
#   channels differ in size.
# - Integer layers accumulate int8 products in int32; float BLAS computes the same sums
#   exactly while every partial sum stays below `2^24` (float32) or `2^53` (float64).
# - Calibration on training data fixes the activation ranges; `quantize_model` converts a
#   whole model, refuses layers it does not understand, and leaves the original untouched.
# - Size is measured from the stored arrays and the file on disk; speed is measured, not
#   assumed.
