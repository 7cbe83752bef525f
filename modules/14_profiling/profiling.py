# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 14: Profiling
#
# > Profiling: count a model's parameters, bytes and FLOPs exactly, measure its memory and latency honestly, and place every layer on this machine's measured roofline.
#
# ## Why profiling matters
#
# The systems track (quantization, compression, acceleration, caching, benchmarking) is
# about making models smaller and faster. None of that can start before we know *where*
# the bytes and the time go. Guessing is unreliable: a layer with many weights may be
# fast, a layer with no weights at all may dominate the run time, and the same model can
# be limited by arithmetic on one machine and by memory traffic on another.
#
# A profiler answers four questions, each with its own method:
#
# - **How big is the model?** Parameters and their bytes, counted from the real storage.
# - **How much work is one forward pass?** FLOPs (floating-point operations), counted
#   exactly from each layer's formula and the *real* shapes flowing through the model.
# - **How much memory does a forward pass need?** Activation bytes per layer, and the peak
#   that Python's allocation tracer (`tracemalloc`) sees.
# - **How long does it take, and why?** Latency measured with calibrated batches, per
#   layer, and compared with what this machine could do at best: the **roofline** built
#   from its measured matmul speed and memory bandwidth.
#
# Every number this module prints is either counted from a stated formula or measured with
# `time.perf_counter_ns` / `tracemalloc` in the cell that prints it. Module 19
# (benchmarking) and the capstone build on the timing core you write here.

# %%
#| default_exp profiling.profiler

# %% [markdown]
# ## The idea: count the work by hand first
#
# A floating-point operation (FLOP) is one add, multiply, comparison or division on
# numbers. Convention in this course (and in most papers): **a multiply-add counts as 2
# FLOPs**. A dot product of length `k` is `k` multiply-adds into an accumulator that
# starts at zero: `2k` FLOPs.
#
# **Linear.** `y = x @ W + b` with `x` of shape `(N, in)` and `W` of shape `(in, out)`:
# each of the `N*out` outputs is a dot product of length `in` plus one bias add, so
#
# ```
# FLOPs(Linear) = 2 * N * in * out  +  N * out        (the second term only with a bias)
# ```
#
# The cell below computes a small Linear with explicit loops that *count* every multiply
# and add, and compares the count with the formula (and the result with numpy).

# %%
import numpy as np


def counted_linear(x, w, b):
    """y = x @ w + b with explicit loops; returns (y, multiplies, adds)."""
    n, k = x.shape
    out = w.shape[1]
    y = np.zeros((n, out))
    multiplies = adds = 0
    for i in range(n):
        for j in range(out):
            acc = 0.0
            for p in range(k):
                acc = acc + x[i, p] * w[p, j]
                multiplies += 1
                adds += 1
            y[i, j] = acc + b[j]
            adds += 1
    return y, multiplies, adds


x_small = np.arange(6, dtype=np.float64).reshape(2, 3)      # N = 2, in = 3
w_small = np.ones((3, 2))                                    # out = 2
b_small = np.array([0.5, -0.5])
y_small, mults, adds = counted_linear(x_small, w_small, b_small)
assert np.allclose(y_small, x_small @ w_small + b_small)
# By hand: 2 * N * in * out + N * out = 2 * 2 * 3 * 2 + 2 * 2 = 24 + 4 = 28
assert mults + adds == 28 == 2 * 2 * 3 * 2 + 2 * 2
print(f"Linear(3 -> 2) on 2 samples: {mults} multiplies + {adds} adds = {mults + adds} FLOPs")

# %% [markdown]
# **Conv2d.** A convolution with `O` filters of shape `(C, kh, kw)` on a batch `(N, C, H, W)`
# produces `(N, O, H_out, W_out)` with `H_out = (H + 2*padding - kh) // stride + 1` (the same
# for W). Each output element is a dot product of length `C*kh*kw` plus a bias add:
#
# ```
# FLOPs(Conv2d) = 2 * N * O * H_out * W_out * C * kh * kw  +  N * O * H_out * W_out
# ```
#
# Worked example: `N = 1`, `C = 1`, a 4x4 image, `O = 2` filters of 3x3, stride 1, no
# padding: `H_out = W_out = (4 - 3) // 1 + 1 = 2`, so 1 * 2 * 2 * 2 = 8 output elements,
# each 9 multiply-adds (18 FLOPs) plus one bias add: 8 * 19 = 152 FLOPs. The cell counts
# the windows with numpy instead of trusting the formula.

# %%
image = np.arange(16, dtype=np.float64).reshape(4, 4)
windows = np.lib.stride_tricks.sliding_window_view(image, (3, 3))   # (H_out, W_out, 3, 3)
outputs_per_filter = windows.shape[0] * windows.shape[1]
terms_per_output = windows.shape[2] * windows.shape[3]              # C * kh * kw with C = 1
conv_flops_counted = 2 * outputs_per_filter * (2 * terms_per_output + 1)  # 2 filters
assert conv_flops_counted == 152 == 2 * 1 * 2 * 2 * 2 * 1 * 3 * 3 + 1 * 2 * 2 * 2
print(f"Conv2d(1 -> 2, 3x3) on one 4x4 image: {outputs_per_filter} positions x 2 filters, "
      f"{conv_flops_counted} FLOPs")

# %% [markdown]
# ## Step 1: parameters and their bytes
#
# A parameter count says how many numbers a model has; its **bytes** say how much memory
# they take, and that depends on the storage. float32 takes 4 bytes per number, int8 1
# byte (module 15 quantizes to int8), and a sparse format (module 16) stores the nonzero
# values *plus their indices*. To keep one rule for all of them, every byte count in this
# module goes through one function, `storage_bytes(obj)`:
#
# 1. an object with a method `nbytes_total()` reports its own total (later formats define
#    it: values + indices + scales, whatever they store);
# 2. a `Tensor` (or `Parameter`) counts the bytes of its array `.data`;
# 3. a numpy array counts `nbytes` (= size x itemsize);
# 4. anything else is a `TypeError`: a byte count is never guessed.
#
# `count_parameters(model)` adds up the elements of each parameter (`parameters()`
# returns each shared parameter once); `parameter_bytes(model)` adds up their
# `storage_bytes`. A layer without weights (an activation) has none; an object that is
# neither a model nor callable is a `TypeError`.

# %%
#| export
import contextlib
import gc
import io
import json
import math
import os
import platform
import tracemalloc
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from time import perf_counter_ns

import numpy as np
import pandas as pd

from tinytorch.core.activations import GELU, Activation, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.models.zoo import _atomic_write
from tinytorch.utils.timing import THREAD_VARIABLES, TimerInfo, Timing, _format_ns, environment, measure
from tinytorch.utils.timing import measure_interleaved, measure_timer, required_sample_ns, time_batch


def _parameters_of(model):
    """The parameters of model (each once); [] for weightless callables; TypeError otherwise."""
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        return list(parameters())
    if callable(model) or callable(getattr(model, "forward", None)):
        return []
    raise TypeError(
        f"expected a model (a Module, an activation or another callable), got {type(model).__name__} "
        f"{model!r:.60}; pass the model object itself, e.g. Sequential(Linear(4, 2), ReLU())")

# %% nbgrader={"grade": false, "grade_id": "storage-bytes", "locked": false, "schema_version": 3, "solution": true}
#| export
def storage_bytes(obj):
    """Bytes of real storage: obj.nbytes_total() if defined, a Tensor's array, an array's nbytes.

    The rule later modules extend: a quantized or sparse weight format defines nbytes_total()
    (values + indices + scales, everything it stores) and is then counted by it everywhere.
    """
    ### BEGIN SOLUTION
    total = getattr(obj, "nbytes_total", None)
    if callable(total):
        return int(total())
    if isinstance(obj, Tensor):
        return storage_bytes(obj.data)
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    raise TypeError(
        f"storage_bytes cannot count a {type(obj).__name__}: pass a Tensor, a numpy array or an "
        "object with an nbytes_total() method (how later weight formats report their storage)")
    ### END SOLUTION


def count_parameters(model):
    """Number of parameter elements of model (each shared parameter once)."""
    ### BEGIN SOLUTION
    return int(sum(math.prod(param.shape) for param in _parameters_of(model)))
    ### END SOLUTION


def parameter_bytes(model):
    """Bytes of the parameters' real storage: the sum of storage_bytes over model.parameters()."""
    ### BEGIN SOLUTION
    return int(sum(storage_bytes(param) for param in _parameters_of(model)))
    ### END SOLUTION

# %% [markdown]
# ### Check step 1
#
# `Linear(3, 2)` has a 3x2 weight and 2 biases: 8 numbers, 32 bytes in float32. An int8
# parameter takes 1 byte per element; an object that reports `nbytes_total()` is counted by
# it.

# %%
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Module, Parameter, Sequential

net = Sequential(Linear(3, 2, rng=0), ReLU(), Linear(2, 1, rng=1))
assert count_parameters(net) == (3 * 2 + 2) + (2 * 1 + 1) == 11
assert parameter_bytes(net) == 11 * 4
assert count_parameters(ReLU()) == 0 and parameter_bytes(ReLU()) == 0

holder = Module()
holder.codes = Parameter(np.arange(10), dtype=np.int8)   # 10 int8 numbers
assert parameter_bytes(holder) == 10


class FakeSparse:
    """Stands in for a later sparse format: 3 float32 values + 3 int32 indices."""

    def nbytes_total(self):
        return 3 * 4 + 3 * 4


assert storage_bytes(FakeSparse()) == 24
assert storage_bytes(np.zeros((2, 5), dtype=np.float64)) == 80
try:
    storage_bytes([1, 2, 3])
except TypeError as err:
    print("TypeError as expected:", err)
print(f"OK: {count_parameters(net)} parameters, {parameter_bytes(net)} bytes; int8 and nbytes_total() counted")

# %% [markdown]
# ## Step 2: FLOP formulas, one per layer type
#
# The formulas are pure functions of shapes (numbers in, numbers out), separate from any
# model or timing code. The convention, stated once:
#
# | layer | FLOPs |
# |---|---|
# | Linear | `2 * rows * in * out` + `rows * out` for the bias (rows = product of all but the last input dim) |
# | Conv2d | `2 * N * O * H_out * W_out * C * kh * kw` + `N * O * H_out * W_out` for the bias |
# | MaxPool2d | `kh * kw - 1` comparisons per output element (a maximum starts from the first value) |
# | AvgPool2d | `kh * kw` adds + 1 divide = `kh * kw + 1` per output element (a sum accumulates from zero, like a multiply-add) |
# | ReLU | 1 per element (a comparison) |
# | Sigmoid | 4 per element: negate, exp, add 1, divide |
# | Tanh | 1 per element (one tanh evaluation) |
# | GELU | 5 per element (`x / sqrt(2)`, erf, `+ 1`, `* x`, `* 0.5`); 9 with `approximate="tanh"` |
# | Softmax | 5 per element: the max (1 compare), subtract, exp, the sum (1 add), divide |
# | Flatten, Dropout (eval) | 0 (a reshape; the identity) |
# | Dropout (training) | 3 per element: compare for the mask, scale the mask, multiply (random numbers not counted) |
#
# An elementary function (exp, erf, tanh) counts as **one** FLOP. That is a convention,
# not a cost: such a function takes many processor cycles, as the measured GFLOP/s of
# activation layers show.
#
# Your part: `linear_flops`, `conv2d_layer_flops`, `pool2d_flops` and `elementwise_flops`. They
# take the real shapes (the output shape too, so stride and padding are already in it) and
# return ints.

# %% nbgrader={"grade": false, "grade_id": "flop-formulas", "locked": false, "schema_version": 3, "solution": true}
#| export
def linear_flops(input_shape, out_features, bias=True):
    """FLOPs of x @ W (+ b) for x of input_shape (..., in): 2*rows*in*out (+ rows*out)."""
    ### BEGIN SOLUTION
    rows, in_features = math.prod(input_shape[:-1]), input_shape[-1]
    return 2 * rows * in_features * out_features + (rows * out_features if bias else 0)
    ### END SOLUTION


def conv2d_layer_flops(input_shape, output_shape, kernel_size, bias=True):
    """FLOPs of a convolution (N, C, H, W) -> (N, O, H_out, W_out) with a (kh, kw) kernel:
    2*N*O*H_out*W_out*C*kh*kw (+ N*O*H_out*W_out for the bias)."""
    ### BEGIN SOLUTION
    channels, (kh, kw) = input_shape[1], kernel_size
    outputs = math.prod(output_shape)
    return 2 * outputs * channels * kh * kw + (outputs if bias else 0)
    ### END SOLUTION


def pool2d_flops(output_shape, kernel_size, kind):
    """FLOPs of 2-D pooling: kh*kw - 1 comparisons ("max") or kh*kw adds + 1 divide ("avg")
    per output element."""
    ### BEGIN SOLUTION
    window, outputs = kernel_size[0] * kernel_size[1], math.prod(output_shape)
    if kind == "max":
        return outputs * (window - 1)
    if kind == "avg":
        return outputs * (window + 1)
    raise ValueError(f"pool kind must be 'max' or 'avg', got {kind!r}")
    ### END SOLUTION


def elementwise_flops(shape, per_element):
    """FLOPs of an element-wise layer: per_element for every element of shape."""
    ### BEGIN SOLUTION
    return per_element * math.prod(shape)
    ### END SOLUTION

# %% [markdown]
# Layer types are matched to formulas by a small registry, `FLOP_RULES`: a type maps to a
# rule `rule(layer, input_shape, output_shape) -> int`, and a subclass inherits its
# parent's rule. Later modules register their own layers (a quantized Linear, a sparse
# Linear) with `register_flop_rule`. A layer type without a rule is a `ValueError` that
# names the layer: a count that silently skipped a layer would be worse than no count.

# %%
#| export
FLOPS_PER_ELEMENT = {"ReLU": 1, "Sigmoid": 4, "Tanh": 1, "GELU": 5, "GELU(tanh)": 9, "Softmax": 5,
                     "Dropout(training)": 3}
FLOP_RULES = {}


def register_flop_rule(layer_type, rule):
    """Count the FLOPs of layer_type (and its subclasses) with rule(layer, input_shape, output_shape)."""
    if not isinstance(layer_type, type):
        raise TypeError(f"layer_type must be a class, got {layer_type!r}; e.g. register_flop_rule(MyLayer, rule)")
    if not callable(rule):
        raise TypeError(f"rule must be callable as rule(layer, input_shape, output_shape), got {rule!r}")
    FLOP_RULES[layer_type] = rule


def find_flop_rule(layer):
    """The FLOP rule of layer's class or its nearest base class in FLOP_RULES; None if there is none."""
    for cls in type(layer).__mro__:
        if cls in FLOP_RULES:
            return FLOP_RULES[cls]
    return None


def _per_element_rule(key):
    def rule(layer, input_shape, output_shape):
        return elementwise_flops(output_shape, FLOPS_PER_ELEMENT[key])
    rule.__name__ = f"flops_{key.lower()}"
    return rule


def _linear_rule(layer, input_shape, output_shape):
    return linear_flops(input_shape, layer.out_features, bias=layer.bias is not None)


def _conv2d_rule(layer, input_shape, output_shape):
    return conv2d_layer_flops(input_shape, output_shape, layer.kernel_size, bias=layer.bias is not None)


def _gelu_rule(layer, input_shape, output_shape):
    key = "GELU(tanh)" if layer.approximate == "tanh" else "GELU"
    return elementwise_flops(output_shape, FLOPS_PER_ELEMENT[key])


def _dropout_rule(layer, input_shape, output_shape):
    return elementwise_flops(output_shape, FLOPS_PER_ELEMENT["Dropout(training)"]) if layer.training else 0


for _type, _rule in ((Linear, _linear_rule), (Conv2d, _conv2d_rule),
                     (MaxPool2d, lambda layer, i, o: pool2d_flops(o, layer.kernel_size, "max")),
                     (AvgPool2d, lambda layer, i, o: pool2d_flops(o, layer.kernel_size, "avg")),
                     (ReLU, _per_element_rule("ReLU")), (Sigmoid, _per_element_rule("Sigmoid")),
                     (Tanh, _per_element_rule("Tanh")), (Softmax, _per_element_rule("Softmax")),
                     (GELU, _gelu_rule), (Dropout, _dropout_rule), (Flatten, lambda layer, i, o: 0)):
    register_flop_rule(_type, _rule)
del _type, _rule

# %% [markdown]
# ### Check step 2
#
# The hand-worked examples from the top of the notebook, a strided, padded convolution with
# a non-square kernel (worked out in the comments), and the pools.

# %%
assert linear_flops((2, 3), 2) == 28 and linear_flops((2, 3), 2, bias=False) == 24
assert linear_flops((4, 5, 3), 2) == 2 * 20 * 3 * 2 + 20 * 2         # rows = 4 * 5
assert conv2d_layer_flops((1, 1, 4, 4), (1, 2, 2, 2), (3, 3)) == 152
# N=3, C=2, 7x6 image, O=4, kernel (3, 2), stride 2, padding 1:
# H_out = (7 + 2 - 3) // 2 + 1 = 4, W_out = (6 + 2 - 2) // 2 + 1 = 4
# 2 * 3 * 4 * 4 * 4 * 2 * 3 * 2 + 3 * 4 * 4 * 4 = 4608 + 192 = 4800
assert conv2d_layer_flops((3, 2, 7, 6), (3, 4, 4, 4), (3, 2)) == 4800
assert pool2d_flops((2, 3, 4, 4), (2, 2), "max") == 96 * 3     # 96 outputs, 3 comparisons each
assert pool2d_flops((2, 3, 4, 4), (2, 2), "avg") == 96 * 5     # 4 adds + 1 divide each
assert find_flop_rule(ReLU())(ReLU(), (2, 5), (2, 5)) == 10
print("OK: Linear, Conv2d (stride 2, padding 1, 3x2 kernel) and pool FLOPs match the hand counts")

# %% [markdown]
# ## Step 3: real shapes from a real forward pass (hooks)
#
# A formula needs the shapes each layer sees. Guessing them from the layer settings breaks
# for anything unusual (a reshape in a custom model, a padding rule we forgot), so the
# profiler **runs the model once** and records what actually flows through it.
#
# The trick is a *hook*: for each leaf layer (a layer that does the arithmetic itself, not a
# container such as `Sequential`), temporarily replace its `forward` by a wrapper that calls
# the original and records `(name, layer, input, output)`. `Module.__call__` and
# `Activation.__call__` both call `self.forward`, and an attribute set on the instance
# shadows the method of the class, so setting `layer.forward = wrapper` is enough; deleting
# the instance attribute afterwards brings the class method back. The restore must happen
# **even when the forward pass fails**: a `try`/`finally`.
#
# The given `leaf_layers(model)` finds the leaves with dotted names ("0", "block.1"):
# `Sequential` is always a container (its activations are not Modules, so it is walked
# through its layer list); another Module is a container when it has child layers and no
# FLOP rule of its own. A layer object used twice is hooked once and recorded at each call.
# A container's own arithmetic (say, a residual add written in its `forward`) is invisible
# to hooks: register a rule for such a block to count it as one leaf.
#
# Your part: `_recording_forward` (the wrapper) and `trace_forward` (hook, run, restore).
# When a layer rejects its input with a `ValueError`, the wrapper re-raises a `ValueError`
# naming the layer, the shape it expected and the shape it received, chained to the
# layer's own error (`raise ... from err`).

# %%
#| export
_MISSING = object()


@dataclass(frozen=True, repr=False)
class LayerCall:
    """One call of a leaf layer during a traced forward pass: its name, its real input and output."""

    name: str
    layer: object
    input: object
    output: object

    @property
    def kind(self):
        """The layer's class name."""
        return type(self.layer).__name__

    @property
    def input_shape(self):
        return tuple(self.input.shape)

    @property
    def output_shape(self):
        return tuple(self.output.shape)

    def __repr__(self):
        return f"LayerCall({self.name!r}, {self.kind}: {self.input_shape} -> {self.output_shape})"


def _layer_children(node):
    """[(name, child layer)]: a Sequential's layers by position; a Module's child Modules and
    activations stored as its attributes; nothing for other objects."""
    if isinstance(node, Sequential):
        return [(str(position), layer) for position, layer in enumerate(node)]
    if not isinstance(node, Module):
        return []
    children = node.named_children()
    known = {id(child) for _, child in children}
    loose = [(name, value) for name, value in vars(node).items()
             if isinstance(value, Activation) and id(value) not in known]
    return children + loose


def _is_container(node):
    return isinstance(node, Sequential) or (find_flop_rule(node) is None and bool(_layer_children(node)))


def leaf_layers(model):
    """[(dotted name, layer)] of model's leaf layers, depth first, each object once."""
    leaves, seen = [], set()

    def visit(node, name):
        if id(node) in seen:
            return
        seen.add(id(node))
        if _is_container(node):
            for child_name, child in _layer_children(node):
                visit(child, f"{name}.{child_name}" if name else child_name)
        elif not callable(getattr(node, "forward", None)):
            raise ValueError(
                f"layer {name or '(model)'!r} is a {type(node).__name__} without a forward method; the "
                "profiler sees layers through forward (Modules and activations): wrap it in a Module subclass")
        else:
            leaves.append((name or type(node).__name__, node))

    visit(model, "")
    return leaves


def expected_input(layer):
    """What input a layer accepts, as text for error messages."""
    if isinstance(layer, Linear):
        return f"shape (..., {layer.in_features})"
    if isinstance(layer, Conv2d):
        (kh, kw), (ph, pw) = layer.kernel_size, layer.padding
        return (f"shape (N, {layer.in_channels}, H, W) with H >= {max(kh - 2 * ph, 1)} "
                f"and W >= {max(kw - 2 * pw, 1)}")
    if isinstance(layer, (MaxPool2d, AvgPool2d)):
        return f"shape (N, C, H, W) with H >= {layer.kernel_size[0]} and W >= {layer.kernel_size[1]}"
    if isinstance(layer, Flatten):
        return f"a shape with a dimension {layer.start_dim}"
    return "a shape the layer accepts (see its message)"


def _shape_message(name, layer, x, model_input_shape, err):
    received = getattr(x, "shape", type(x).__name__)
    return (f"layer {name!r} ({type(layer).__name__}) cannot take its input: it expects "
            f"{expected_input(layer)}, received shape {received} (the model's input has shape "
            f"{model_input_shape}). The layer says: {err}")


def _forward_of(model, who):
    """What to call to run model: the model itself if callable, else its forward; TypeError otherwise."""
    if callable(model):
        return model
    forward = getattr(model, "forward", None)
    if callable(forward):
        return forward
    raise TypeError(
        f"{who} needs a model (a Module, an activation or any callable), got {type(model).__name__} "
        f"{model!r:.60}, which has no forward method and is not callable")

# %% nbgrader={"grade": false, "grade_id": "hook-pass", "locked": false, "schema_version": 3, "solution": true}
#| export
def _recording_forward(name, layer, forward, calls, model_input_shape):
    """A stand-in for layer.forward: calls forward, appends a LayerCall to calls, returns the output;
    a ValueError from the layer is re-raised naming the layer and both shapes (chained)."""
    ### BEGIN SOLUTION
    def recorded(*args, **kwargs):
        x = args[0] if args else None
        try:
            output = forward(*args, **kwargs)
        except ValueError as err:
            raise ValueError(_shape_message(name, layer, x, model_input_shape, err)) from err
        calls.append(LayerCall(name, layer, x, output))
        return output
    return recorded
    ### END SOLUTION


def trace_forward(model, x):
    """Run model(x) once with every leaf layer hooked; the list of LayerCalls in call order.

    Each hook is removed afterwards (the layer's own forward is back), also when the pass fails.
    """
    ### BEGIN SOLUTION
    run = _forward_of(model, "trace_forward")
    calls, saved = [], []
    try:
        for name, layer in leaf_layers(model):
            saved.append((layer, vars(layer).get("forward", _MISSING)))
            layer.forward = _recording_forward(name, layer, layer.forward, calls, getattr(x, "shape", None))
        run(x)
    finally:
        for layer, previous in reversed(saved):
            if previous is _MISSING:
                del layer.forward
            else:
                layer.forward = previous
    return calls
    ### END SOLUTION

# %% [markdown]
# Profiling a forward pass means profiling *inference*: `inference_mode(model)` switches
# every module to evaluation mode (Dropout becomes the identity and draws no random
# numbers) and turns gradient recording off for the block, then restores each module's
# own `training` flag, even after an error. Your part: `inference_mode` (remember every
# module's flag first, then set them all to `False`, and restore them in a `finally`).
# `zeros_input` (given) builds the zero input that the shape-only functions run on.

# %% nbgrader={"grade": false, "grade_id": "inference-mode", "locked": false, "schema_version": 3, "solution": true}
#| export
@contextlib.contextmanager
def inference_mode(model):
    """Evaluation mode and no_grad for the block; each module's training flag is restored afterwards."""
    ### BEGIN SOLUTION
    modules = model.modules() if isinstance(model, Module) else []
    flags = [(module, module.training) for module in modules]
    try:
        for module in modules:
            module.training = False
        with no_grad():
            yield
    finally:
        for module, flag in flags:
            module.training = flag
    ### END SOLUTION


def inference_trace(model, x):
    """trace_forward(model, x) in inference mode."""
    with inference_mode(model):
        return trace_forward(model, x)


def zeros_input(input_shape):
    """A float32 Tensor of zeros with input_shape (a tuple of positive ints)."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in shape):
        raise ValueError(
            f"input_shape must be a non-empty tuple of positive ints including the batch size, "
            f"got {input_shape!r}; e.g. (1, 64) for one flattened digit or (1, 1, 8, 8) for one image")
    return Tensor.zeros(shape)

# %% [markdown]
# ### Check step 3
#
# Trace the reference CNN from module 09 on a zero batch of 2 images: every leaf layer
# appears once with its real shapes, no hook is left behind, and a wrong input shape is a
# `ValueError` that names the layer and both shapes.

# %%
from tinytorch.models.zoo import build_model

cnn = build_model("digits_cnn")
trace = inference_trace(cnn, zeros_input((2, 1, 8, 8)))
for call in trace:
    print(call)
assert [call.name for call in trace] == [str(i) for i in range(8)]
assert trace[0].output_shape == (2, 16, 8, 8) and trace[2].output_shape == (2, 16, 4, 4)
assert trace[6].output_shape == (2, 128) and trace[7].output_shape == (2, 10)
assert all("forward" not in vars(layer) for layer in cnn)   # every hook removed
try:
    inference_trace(cnn, zeros_input((2, 3, 8, 8)))
except ValueError as err:
    print("\nValueError as expected:", err)
    assert "'0'" in str(err) and "(2, 3, 8, 8)" in str(err) and isinstance(err.__cause__, ValueError)
assert all("forward" not in vars(layer) for layer in cnn)   # removed after the error too
print("\nOK: real shapes recorded, hooks removed, shape errors name the layer")

# %% [markdown]
# ## Step 4: FLOPs per layer, and memory
#
# With real shapes, FLOPs are a table: one row per layer call, with its parameters and its
# **activation bytes** (the bytes of its output). `flops_by_layer` returns it as a pandas
# DataFrame, `count_flops` its total. Both run the model in inference mode on a zero input
# of `input_shape`.
#
# Memory has two sides. *Counted*: parameter bytes, the size of the saved weights
# (`serialized_bytes`: `state_dict()` written with `np.savez`, the zoo's file
# format, into an `io.BytesIO`), input bytes and the sum of the
# activation bytes (an upper bound on what must be alive at once: a view such as
# Flatten's output shares its input's memory, and the framework frees an activation once
# the next layer is done with it). *Measured*: the peak that `tracemalloc` sees during one
# forward pass. numpy reports its array allocations to `tracemalloc`, so the peak includes
# every temporary (im2col's columns, for instance) that no formula would list.
#
# `tracemalloc` is one global session per process. If the caller is already tracing (a
# test, a benchmark harness), the profiler must not stop the session or clear its data.
# `traced_peak(fn)` therefore has two paths:
#
# - **not tracing**: start a session, run `fn`, read the peak, stop the session;
# - **already tracing**: read the traced memory *before*, `tracemalloc.reset_peak()`, run
#   `fn`, read the peak, and report `peak - before`. This keeps the caller's session and
#   its traces (their snapshots still list their allocations), but `reset_peak` overwrites
#   the caller's peak value and cannot be undone: a caller who needs its own peak reads it
#   before calling.
#
# Your part, first cell: the FLOP table (`layer_flops` applies a layer's rule to the real
# shapes of its call, `flops_by_layer` makes one row per call of a traced inference pass,
# `count_flops` sums them) and `serialized_bytes`; the checks for a missing rule or a missing
# `state_dict` are given. Second cell: `traced_peak` and `measure_memory` (a dict with
# `parameter_bytes`, `activation_bytes`, `input_bytes`, `peak_bytes` and which session
# measured it). Run the hook pass first (it also warms the model up), then time one plain
# forward pass without hooks: the hooks keep every output alive and would inflate the peak.

# %% nbgrader={"grade": false, "grade_id": "flops-by-layer", "locked": false, "schema_version": 3, "solution": true}
#| export
FLOP_COLUMNS = ("layer", "type", "input_shape", "output_shape", "params", "flops", "activation_bytes")
OWN_SESSION = "own tracemalloc session (started and stopped here)"
CALLER_SESSION = "the caller's tracemalloc session (kept running; its peak was reset by reset_peak)"


def layer_flops(call):
    """FLOPs of one LayerCall by its layer's rule; ValueError naming the layer if there is no rule."""
    rule = find_flop_rule(call.layer)
    if rule is None:
        raise ValueError(
            f"layer {call.name!r} is a {call.kind}, which has no FLOP rule (known: "
            f"{', '.join(sorted(cls.__name__ for cls in FLOP_RULES))}); add one with "
            f"register_flop_rule({call.kind}, rule), rule(layer, input_shape, output_shape) -> int")
    ### BEGIN SOLUTION
    return int(rule(call.layer, call.input_shape, call.output_shape))
    ### END SOLUTION


def flops_by_layer(model, input_shape):
    """DataFrame, one row per leaf-layer call: layer, type, input/output shape, params, FLOPs,
    activation bytes (its output's storage). Inference mode, zero input of input_shape."""
    x = zeros_input(input_shape)
    ### BEGIN SOLUTION
    with inference_mode(model):   # the rules see each layer in the mode it ran in (Dropout: eval)
        rows = [(call.name, call.kind, call.input_shape, call.output_shape, count_parameters(call.layer),
                 layer_flops(call), storage_bytes(call.output)) for call in trace_forward(model, x)]
    return pd.DataFrame(rows, columns=list(FLOP_COLUMNS))
    ### END SOLUTION


def serialized_bytes(model):
    """Bytes of model.state_dict() saved with np.savez (the zoo's weight-file format), measured by
    writing them to memory; None for a model without a state_dict (nothing to serialize)."""
    state_dict = getattr(model, "state_dict", None)
    if not callable(state_dict):
        return None
    ### BEGIN SOLUTION
    buffer = io.BytesIO()
    np.savez(buffer, **state_dict())
    return buffer.getbuffer().nbytes
    ### END SOLUTION


def count_flops(model, input_shape):
    """Total FLOPs of one inference forward pass on input_shape (see FLOPS_PER_ELEMENT and the
    formulas linear_flops, conv2d_layer_flops, pool2d_flops; a multiply-add is 2 FLOPs)."""
    ### BEGIN SOLUTION
    return int(flops_by_layer(model, input_shape)["flops"].sum())
    ### END SOLUTION

# %% nbgrader={"grade": false, "grade_id": "memory", "locked": false, "schema_version": 3, "solution": true}
#| export
def traced_peak(fn):
    """(fn(), peak bytes traced during fn above what was traced when it started, session used).

    Nested-safe: a running tracemalloc session is kept (never stopped or cleared); only its
    peak is reset with tracemalloc.reset_peak(), which the caller cannot get back.
    """
    ### BEGIN SOLUTION
    if tracemalloc.is_tracing():
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        return result, max(peak - before, 0), CALLER_SESSION
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, max(peak - before, 0), OWN_SESSION
    ### END SOLUTION


def measure_memory(model, input_shape):
    """Memory of one inference forward pass on a zero input of input_shape: parameter_bytes,
    serialized_bytes, activation_bytes (sum of every leaf layer's output bytes), input_bytes,
    peak_bytes (tracemalloc) and the tracemalloc session used."""
    ### BEGIN SOLUTION
    x = zeros_input(input_shape)
    calls = inference_trace(model, x)
    run = _forward_of(model, "measure_memory")
    with inference_mode(model):
        _, peak, session = traced_peak(lambda: run(x))
    return {"parameter_bytes": parameter_bytes(model), "serialized_bytes": serialized_bytes(model),
            "activation_bytes": int(sum(storage_bytes(call.output) for call in calls)),
            "input_bytes": storage_bytes(x), "peak_bytes": int(peak), "tracemalloc": session}
    ### END SOLUTION

# %% [markdown]
# ### Check step 4
#
# The reference MLP on a batch of 4: FLOPs and activation bytes by hand, and the memory
# report. The last check starts a `tracemalloc` session *here*, as a test harness would,
# and confirms that `measure_memory` left it running with our own allocation still traced.

# %%
import tracemalloc

mlp = build_model("digits_mlp")
table = flops_by_layer(mlp, (4, 64))
print(table.to_string(index=False))
# Linear(64, 128): 2*4*64*128 + 4*128; ReLU: 4*128; Linear(128, 10): 2*4*128*10 + 4*10
assert table["flops"].tolist() == [2 * 4 * 64 * 128 + 4 * 128, 4 * 128, 2 * 4 * 128 * 10 + 4 * 10]
assert count_flops(mlp, (4, 64)) == 66048 + 512 + 10280
assert table["activation_bytes"].tolist() == [4 * 128 * 4, 4 * 128 * 4, 4 * 10 * 4]

memory = measure_memory(mlp, (4, 64))
print(memory)
assert memory["parameter_bytes"] == (64 * 128 + 128 + 128 * 10 + 10) * 4
assert memory["input_bytes"] == 4 * 64 * 4 and memory["peak_bytes"] > 0

tracemalloc.start()
mine = np.ones(100_000)                       # 800 kB that this cell owns
nested = measure_memory(mlp, (4, 64))
assert tracemalloc.is_tracing() and nested["tracemalloc"] == CALLER_SESSION
assert tracemalloc.get_traced_memory()[0] >= mine.nbytes
tracemalloc.stop()
print("OK: FLOPs and activation bytes match the hand counts; a running tracemalloc session survives")

# %% [markdown]
# ## Step 5: latency, timed honestly
#
# How long does one forward pass take? Three traps:
#
# 1. **The clock has a cost.** Reading `perf_counter_ns` twice around a call takes time of
#    its own (the systems analysis prints it), and the clock ticks in steps; for a very fast
#    call that is a large, variable error.
# 2. **The first calls are slow.** Caches are cold, memory is not yet allocated, lazy
#    imports run. A **warm-up** of untimed calls comes first.
# 3. **Single samples are noisy.** The operating system interrupts, other programs run. We
#    take many samples and report the **median** with its spread.
#
# The cure for the first trap is a **calibrated batch**: time `k` back-to-back calls as one
# raw sample and divide by `k`, with `k` chosen so that every raw sample lasts at least
# `max(1 ms, 1000 x the timer's overhead)`: the clock's cost is then below 0.1% of what it
# measures. Module 01 wrote exactly these pieces in `tinytorch.utils.timing`
# (`measure_timer`, `required_sample_ns`, `calls_per_sample`, `measure`); this step
# builds on them rather than writing them again.
#
# `time_callable(fn, warmup, iterations)` is the timing core module 19 reuses. It returns a
# `LatencyResult` (given below) that keeps the raw per-call samples, the calibrated batch
# size, the warm-up count, the measured timer overhead and resolution, the gc state and the
# environment. `time_model(model, x, ...)` times `model(x)`: a Module runs in inference
# mode (after one checked pass, so a wrong shape names the layer); any other callable is
# called as it is; anything else is a `TypeError`. `disable_gc=True` switches the garbage
# collector off for the timed loop (as `timeit` does) and records that it did.

# %%
#| export
@dataclass(frozen=True, repr=False)
class LatencyResult:
    """A measured latency: the raw Timing (per-call ns of each calibrated raw sample) and how
    it was measured (warm-up calls, timer, shortest raw sample, gc state, environment)."""

    timing: Timing
    warmup: int
    timer: TimerInfo
    min_sample_ns: float | None   # None: fixed batches of `calls_per_sample` calls
    gc_enabled: bool
    environment: dict

    name = property(lambda self: self.timing.name)
    samples_ns = property(lambda self: self.timing.samples_ns, doc="per-call ns, one per raw sample")
    calls_per_sample = property(lambda self: self.timing.calls_per_sample)
    n = property(lambda self: self.timing.n)
    median_ns = property(lambda self: self.timing.median_ns)
    median_ms = property(lambda self: self.timing.median_ns / 1e6)
    iqr_over_median = property(lambda self: self.timing.iqr_over_median)
    warning = property(lambda self: self.timing.warning, doc="noise warning with a remedy, or None")
    overhead_ns = property(lambda self: self.timer.overhead_ns)
    resolution_ns = property(lambda self: self.timer.resolution_ns)

    def __float__(self):
        """The median in milliseconds."""
        return self.median_ms

    def to_dict(self):
        """Everything as plain JSON-ready values, raw samples included."""
        return {"name": str(self.name), "median_ms": self.median_ms, "samples_ns": list(self.samples_ns),
                "calls_per_sample": self.calls_per_sample, "warmup": self.warmup,
                "timer_overhead_ns": self.overhead_ns, "timer_resolution_ns": self.resolution_ns,
                "min_sample_ns": self.min_sample_ns, "gc_enabled": self.gc_enabled,
                "iqr_over_median": self.iqr_over_median, "warning": self.warning,
                "environment": self.environment}

    def __repr__(self):
        return (f"LatencyResult({self.name!r}: median {_format_ns(self.median_ns)} per call, "
                f"IQR/median {self.iqr_over_median:.1%}, n={self.n} raw samples of {self.calls_per_sample} "
                f"call(s), warm-up {self.warmup}, timer overhead {self.overhead_ns:.0f} ns, gc "
                f"{'on' if self.gc_enabled else 'off'})")


def call_with(fn, x):
    """The zero-argument callable that time_model times: lambda: fn(x)."""
    return lambda: fn(x)


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)

# %% nbgrader={"grade": false, "grade_id": "latency", "locked": false, "schema_version": 3, "solution": true}
#| export
def time_callable(fn, warmup=10, iterations=100, min_sample_ns=None, calls=None, timer=None,
                  disable_gc=False, name=None):
    """LatencyResult of fn() (no arguments): `warmup` untimed calls, then `iterations` raw samples.

    Each raw sample is a calibrated batch lasting >= min_sample_ns (default: max(1 ms, 1000 x
    the measured timer overhead)), or a fixed batch of `calls` calls (calls=1: single calls).
    timer: a TimerInfo to reuse (default: measured now). disable_gc: gc off while timing.
    """
    if not callable(fn):
        raise TypeError(f"time_callable needs a callable of no arguments, got {type(fn).__name__} {fn!r:.60}")
    warmup, iterations = _check_int(warmup, "warmup", 0), _check_int(iterations, "iterations", 1)
    ### BEGIN SOLUTION
    timer = measure_timer() if timer is None else timer
    if calls is None and min_sample_ns is None:
        min_sample_ns = required_sample_ns(timer.overhead_ns)
    for _ in range(warmup):
        fn()
    gc_was_enabled = gc.isenabled()
    if disable_gc:
        gc.disable()
    try:
        env = environment(timer, min_sample_ns)
        timing = measure(fn, iterations, min_sample_ns=min_sample_ns, calls=calls, name=name)
    finally:
        if disable_gc and gc_was_enabled:
            gc.enable()
    return LatencyResult(timing, warmup, timer, min_sample_ns, env["gc_enabled"], env)
    ### END SOLUTION


def time_model(model, input_tensor, warmup=10, iterations=100, **options):
    """LatencyResult of model(input_tensor); a Module runs in inference mode after one checked
    pass. options: min_sample_ns, calls, timer, disable_gc (see time_callable)."""
    ### BEGIN SOLUTION
    run = _forward_of(model, "measure_latency")
    name = getattr(model, "__name__", None) or type(model).__name__
    if not isinstance(model, Module):
        return time_callable(call_with(run, input_tensor), warmup, iterations, name=name, **options)
    inference_trace(model, input_tensor)   # a wrong input shape names the layer here
    with inference_mode(model):
        return time_callable(call_with(model, input_tensor), warmup, iterations, name=name, **options)
    ### END SOLUTION

# %% [markdown]
# ### Check step 5
#
# Time a small model, then check the bookkeeping: the number of raw samples, the warm-up
# count, that each raw sample was a calibrated batch, and the errors.

# %%
x_mlp = Tensor.randn(8, 64, rng=0)
result = time_model(mlp, x_mlp, warmup=5, iterations=20)
print(result)
assert result.n == 20 and result.warmup == 5 and float(result) == result.median_ms > 0
assert result.min_sample_ns >= 1_000_000 and result.calls_per_sample >= 1
assert result.environment["timer_overhead_ns"] == result.overhead_ns
single = time_callable(lambda: mlp(x_mlp), warmup=0, iterations=5, calls=1, disable_gc=True)
assert single.calls_per_sample == 1 and single.gc_enabled is False and gc.isenabled()
try:
    time_model(42, x_mlp)
except TypeError as err:
    print("TypeError as expected:", err)
try:
    time_model(mlp, Tensor.randn(8, 63, rng=0))
except ValueError as err:
    print("ValueError as expected:", str(err)[:150], "...")
print("OK: calibrated raw samples, warm-up recorded, clear errors")

# %% [markdown]
# ## Step 6: the roofline
#
# Is a layer slow because it does a lot of arithmetic, or because it waits for memory? The
# **roofline model** answers with two measured numbers for the machine and one for the
# layer:
#
# - **peak compute** `P` (GFLOP/s): what the best code reaches; here the median speed of a
#   large float32 numpy matmul (BLAS), measured on this machine;
# - **memory bandwidth** `B` (GB/s): here `np.copyto` of a 64 MB float32 array, counting
#   the bytes read plus the bytes written. numpy's element-wise operations run on one
#   thread, as this copy does, so it is the bandwidth they can use;
# - the layer's **arithmetic intensity** `I = FLOPs / bytes moved` (FLOP/byte). Our
#   convention for *bytes moved*: the layer's input + its output + its parameters, each once.
#   That is the least traffic the layer needs; temporaries (im2col's columns) and cache
#   misses only add to it.
#
# The best a layer can reach is `min(P, I * B)`. The two roofs meet at the **ridge point**
# `I* = P / B`. A layer with `I < I*` is **memory-bound** (more bandwidth would help, more
# arithmetic speed would not); with `I >= I*` it is **compute-bound**. `classify_roofline`
# is that arithmetic as a pure function of given numbers; `layer_bytes_moved` applies the
# bytes convention to a `LayerCall`. Your part: both (the check of the numbers is given).

# %% nbgrader={"grade": false, "grade_id": "roofline", "locked": false, "schema_version": 3, "solution": true}
#| export
COMPUTE_BOUND, MEMORY_BOUND = "compute-bound", "memory-bound"


def classify_roofline(flops, bytes_moved, peak_gflops, bandwidth_gbs):
    """Roofline position of work doing `flops` FLOPs over `bytes_moved` bytes on a machine with
    peak_gflops (GFLOP/s) and bandwidth_gbs (GB/s): intensity, ridge, attainable GFLOP/s, bound."""
    if flops < 0 or bytes_moved <= 0 or peak_gflops <= 0 or bandwidth_gbs <= 0:
        raise ValueError(
            f"classify_roofline needs flops >= 0 and positive bytes_moved, peak_gflops and bandwidth_gbs, "
            f"got flops={flops!r}, bytes_moved={bytes_moved!r}, peak_gflops={peak_gflops!r}, "
            f"bandwidth_gbs={bandwidth_gbs!r}")
    ### BEGIN SOLUTION
    intensity = flops / bytes_moved
    ridge = peak_gflops / bandwidth_gbs
    return {"intensity": intensity, "ridge": ridge,
            "attainable_gflops": min(peak_gflops, intensity * bandwidth_gbs),
            "bound": COMPUTE_BOUND if intensity >= ridge else MEMORY_BOUND}
    ### END SOLUTION


def layer_bytes_moved(call):
    """Bytes a LayerCall moves at least: storage of its input + its output + its parameters."""
    ### BEGIN SOLUTION
    return storage_bytes(call.input) + storage_bytes(call.output) + parameter_bytes(call.layer)
    ### END SOLUTION

# %% [markdown]
# ### Check step 6
#
# A made-up machine with `P = 100` GFLOP/s and `B = 20` GB/s has its ridge at 5 FLOP/byte.
# Work of 1000 FLOPs over 1000 bytes (intensity 1) can reach at most 20 GFLOP/s and is
# memory-bound; 1000 FLOPs over 100 bytes (intensity 10) reaches the 100 GFLOP/s roof.

# %%
low = classify_roofline(1000, 1000, peak_gflops=100.0, bandwidth_gbs=20.0)
high = classify_roofline(1000, 100, peak_gflops=100.0, bandwidth_gbs=20.0)
assert low == {"intensity": 1.0, "ridge": 5.0, "attainable_gflops": 20.0, "bound": MEMORY_BOUND}
assert high == {"intensity": 10.0, "ridge": 5.0, "attainable_gflops": 100.0, "bound": COMPUTE_BOUND}
assert classify_roofline(5, 1, 100.0, 20.0)["bound"] == COMPUTE_BOUND      # exactly at the ridge
linear_call = trace[7]                                   # the CNN's Linear(128, 10) on 2 images
assert layer_bytes_moved(linear_call) == 2 * 128 * 4 + 2 * 10 * 4 + (128 * 10 + 10) * 4
print("OK: ridge, attainable GFLOP/s and the bound from given numbers; bytes moved by hand")

# %% [markdown]
# The machine's two numbers are measured once and **cached** as JSON in a cache folder
# (the environment variable `TINYTORCH_CACHE_DIR`, default `~/.cache/tinytorch`), together
# with the environment they came from: numpy and Python versions, the CPU model, the number
# of logical cores and the BLAS thread settings. A cached value is reused only when the
# environment matches; otherwise (or with `refresh=True`) it is measured again. The result
# says where it came from (`source`, `reason`).
#
# `profile_forward_pass(model, x)` then builds the per-layer profile: one traced pass
# captures each layer's real input; each layer is then timed on that input, all layers
# (and the whole model) **interleaved** in alternating rounds with calibrated batches, so
# that machine drift hits all of them alike. Each row has the measured time, its share of
# the summed layer times, FLOPs, achieved GFLOP/s, bytes moved, intensity, the attainable
# GFLOP/s, the efficiency (achieved / attainable) and the bound. `profile_layer(layer, x)`
# does the same for one leaf layer and returns its row as a dict. The whole model's median
# is in `df.attrs["model_ms"]`.
#
# Your part in the cell below: the two measured roofs, `measure_matmul_peak` (time
# `np.matmul(a, b, out=out)` with `_timed`; GFLOP/s = `2 * size^3` FLOPs / median ns) and
# `measure_copy_bandwidth` (time `np.copyto`; GB/s = bytes read + written / median ns), and
# the profile: `_profile_row` (achieved GFLOP/s = FLOPs / median ns; efficiency = achieved /
# attainable) and `profile_forward_pass` (trace in inference mode, one `call_with` per layer on
# its recorded input plus the whole model, `measure_interleaved` with `rewarm=True`, one row per
# call, the attrs). The cache, the environment and `profile_layer` are given.

# %% nbgrader={"grade": false, "grade_id": "roofline-profile", "locked": false, "schema_version": 3, "solution": true}
#| export
PEAK_CACHE_FILE = "machine_peak.json"
PEAK_SCHEMA = 1
PROFILE_COLUMNS = ("layer", "type", "input_shape", "output_shape", "params", "flops", "time_ms", "time_share",
                   "gflops", "bytes_moved", "intensity", "attainable_gflops", "efficiency", "bound",
                   "calls_per_sample", "noise")


def cache_dir():
    """Where measured machine figures are cached: $TINYTORCH_CACHE_DIR, else ~/.cache/tinytorch."""
    return Path(os.environ.get("TINYTORCH_CACHE_DIR") or Path.home() / ".cache" / "tinytorch")


def cpu_model():
    """The CPU model from /proc/cpuinfo ("model name"), else platform.processor(), else "unknown"."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_environment():
    """What the machine's peak figures depend on; a cached peak is reused only when this matches."""
    return {"python": platform.python_version(), "numpy": np.__version__, "cpu_model": cpu_model(),
            "logical_cores": os.cpu_count(), "blas_threads": {k: os.environ.get(k, "unset") for k in THREAD_VARIABLES}}


def _timed(fn, repeats, name):
    """measure() with raw samples >= max(1 ms, 1000 x timer overhead)."""
    return measure(fn, repeats, min_sample_ns=required_sample_ns(measure_timer().overhead_ns), name=name)


def measure_matmul_peak(size=1024, repeats=5, rng=0):
    """Median GFLOP/s of a float32 (size x size) @ (size x size) numpy matmul (2*size^3 FLOPs)."""
    generator = np.random.default_rng(rng)
    a, b = (generator.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    ### BEGIN SOLUTION
    out = np.empty((size, size), dtype=np.float32)
    timing = _timed(lambda: np.matmul(a, b, out=out), repeats, f"matmul {size}")
    return {"gflops": 2 * size ** 3 / timing.median_ns, "size": size, "median_ns": timing.median_ns,
            "samples_ns": list(timing.samples_ns), "calls_per_sample": timing.calls_per_sample, "noise": timing.noise}
    ### END SOLUTION


def measure_copy_bandwidth(megabytes=64, repeats=5):
    """Median GB/s of np.copyto on a float32 array of `megabytes` MiB: (bytes read + written) / time."""
    source = np.ones(megabytes * 2 ** 20 // 4, dtype=np.float32)
    ### BEGIN SOLUTION
    target = np.empty_like(source)
    timing = _timed(lambda: np.copyto(target, source), repeats, f"copy {megabytes} MiB")
    return {"gbs": 2 * source.nbytes / timing.median_ns, "bytes": source.nbytes, "median_ns": timing.median_ns,
            "samples_ns": list(timing.samples_ns), "calls_per_sample": timing.calls_per_sample, "noise": timing.noise}
    ### END SOLUTION


def _cached_peak(path, env):
    """(cached document, reason) if path holds a peak measured in env, else (None, reason)."""
    if not path.exists():
        return None, f"no cached peak at {path}"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return None, f"the cache {path} is unreadable ({err})"
    if not isinstance(document, dict) or document.get("schema") != PEAK_SCHEMA:
        return None, f"the cache {path} has another schema"
    cached_env = document.get("environment", {})
    changed = sorted(key for key in env.keys() | cached_env.keys() if env.get(key) != cached_env.get(key))
    if changed:
        return None, f"the environment changed since the cached measurement ({', '.join(changed)})"
    return document, "the environment matches the cached measurement"


def measure_machine_peak(refresh=False, directory=None):
    """This machine's measured roofline: peak_gflops (matmul), bandwidth_gbs (copy), their ridge.

    Cached as JSON in directory (default cache_dir()) with machine_environment(); reused while
    the environment matches, measured again when it differs or refresh=True. The result's
    `source` ("cache" or "measured") and `reason` say which happened.
    """
    path = (cache_dir() if directory is None else Path(directory)) / PEAK_CACHE_FILE
    env = machine_environment()
    document, reason = (None, "refresh=True") if refresh else _cached_peak(path, env)
    if document is not None:
        return {**document, "source": "cache", "reason": reason, "cache_path": str(path)}
    matmul, copy = measure_matmul_peak(), measure_copy_bandwidth()
    document = {"schema": PEAK_SCHEMA, "peak_gflops": matmul["gflops"], "bandwidth_gbs": copy["gbs"],
                "ridge_flops_per_byte": matmul["gflops"] / copy["gbs"], "matmul": matmul, "copy": copy,
                "environment": env, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    _atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
    return {**document, "source": "measured", "reason": reason, "cache_path": str(path)}


def _profile_row(call, timing, total_ns, peak):
    """One row of profile_forward_pass for a LayerCall and its Timing."""
    ### BEGIN SOLUTION
    flops, moved, median = layer_flops(call), layer_bytes_moved(call), timing.median_ns
    roof = classify_roofline(flops, moved, peak["peak_gflops"], peak["bandwidth_gbs"])
    achieved = flops / median
    efficiency = achieved / roof["attainable_gflops"] if roof["attainable_gflops"] > 0 else float("nan")
    return (call.name, call.kind, call.input_shape, call.output_shape, count_parameters(call.layer), flops,
            median / 1e6, median / total_ns, achieved, moved, roof["intensity"], roof["attainable_gflops"],
            efficiency, roof["bound"], timing.calls_per_sample, timing.noise)
    ### END SOLUTION


def profile_forward_pass(model, input_tensor, repeats=15, peak=None):
    """Per-layer inference profile (columns PROFILE_COLUMNS) against the measured roofline.

    Each leaf layer is timed on its real input (captured by one traced pass), all layers and
    the whole model interleaved with calibrated batches (one untimed call before each batch);
    time_share is a layer's median over the sum of the layer medians. peak: a
    measure_machine_peak() result (default: measured or cached now). attrs: model_ms, peak,
    repeats, environment.
    """
    ### BEGIN SOLUTION
    peak = measure_machine_peak() if peak is None else peak
    timer = measure_timer()
    min_sample_ns = required_sample_ns(timer.overhead_ns)
    with inference_mode(model):
        calls = trace_forward(model, input_tensor)
        fns = {str(i): call_with(call.layer, call.input) for i, call in enumerate(calls)}
        fns["model"] = call_with(_forward_of(model, "profile_forward_pass"), input_tensor)
        timings = measure_interleaved(fns, repeats, min_sample_ns=min_sample_ns, rewarm=True)
        total_ns = sum(timings[str(i)].median_ns for i in range(len(calls)))
        rows = [_profile_row(call, timings[str(i)], total_ns, peak) for i, call in enumerate(calls)]
    df = pd.DataFrame(rows, columns=list(PROFILE_COLUMNS))
    df.attrs.update(model_ms=timings["model"].median_ns / 1e6, model_noise=timings["model"].noise,
                    peak={k: peak[k] for k in ("peak_gflops", "bandwidth_gbs")}, repeats=repeats,
                    environment=environment(timer, min_sample_ns))
    return df
    ### END SOLUTION


def profile_layer(layer, input_tensor, repeats=15, peak=None):
    """profile_forward_pass of one leaf layer, as a dict (its single row)."""
    leaves = leaf_layers(layer)
    if len(leaves) != 1 or leaves[0][1] is not layer:
        raise ValueError(
            f"profile_layer profiles one leaf layer; {type(layer).__name__} contains {len(leaves)} layers: "
            "use profile_forward_pass for a whole model")
    return profile_forward_pass(layer, input_tensor, repeats, peak).iloc[0].to_dict()

# %% [markdown]
# ## Step 7: the backward pass
#
# Training costs more than inference: after the forward pass, `loss.backward()` sends
# gradients back through every layer, and the forward pass must keep its intermediate
# results alive for that. `profile_backward_pass` measures both costs with a **real**
# backward pass through module 06's autograd:
#
# - three steps, timed interleaved with calibrated batches: the forward pass with the loss
#   under `no_grad` (nothing recorded), the same with autograd recording (what a training
#   step does before backward), and forward + `loss.backward()`, with the gradients set to
#   `None` (`model.zero_grad()`) before every step so that they never accumulate;
# - the `tracemalloc` peak of the recorded forward pass and of forward + backward, with the
#   nested-safe `traced_peak`.
#
# Defaults: `loss_fn=None` is `CrossEntropyLoss()`, and `targets=None` builds class labels
# `arange(N) % C` from the model's `(N, C)` output (any labels serve for timing); another
# loss needs explicit targets. The model runs in its current mode (a Dropout in training
# mode draws random numbers at each step). The gradients of the last step stay in `.grad`:
# since they are zeroed before every step, they equal the gradients of one backward pass.
# `backward_ms` is derived (the difference of two medians), and says so.
#
# Your part: `profile_backward_pass`; `_loss_and_targets` and `_backward_report` are given.

# %%
#| export
def _loss_and_targets(model, input_tensor, loss_fn, targets):
    """(loss_fn, targets) with the documented defaults filled in."""
    loss_fn = CrossEntropyLoss() if loss_fn is None else loss_fn
    if targets is not None:
        return loss_fn, targets
    if not isinstance(loss_fn, CrossEntropyLoss):
        raise ValueError(f"targets=None builds class labels for CrossEntropyLoss only; pass targets for {loss_fn!r}")
    with inference_mode(model):
        output = model(input_tensor)
    if output.ndim != 2:
        raise ValueError(f"default targets need (N, C) logits, the model returned shape {output.shape}; pass targets")
    count, classes = output.shape
    return loss_fn, Tensor(np.arange(count) % classes, dtype=np.int64)


def _backward_report(model, timings, forward_peak, step_peak, session, loss, env):
    """The dict profile_backward_pass returns."""
    medians = {name: timing.median_ns for name, timing in timings.items()}
    forward, step = medians["forward"], medians["forward+backward"]
    return {"no_grad_ms": medians["no_grad"] / 1e6, "forward_ms": forward / 1e6, "forward_backward_ms": step / 1e6,
            "backward_ms": (step - forward) / 1e6, "backward_over_forward": (step - forward) / forward,
            "forward_peak_bytes": int(forward_peak), "forward_backward_peak_bytes": int(step_peak),
            "loss": float(loss.item()), "training_mode": model.training, "tracemalloc": session,
            "repeats": timings["forward"].n, "noise": {name: timing.noise for name, timing in timings.items()},
            "timings": timings, "environment": env,
            "method": "medians of interleaved calibrated batches; backward_ms = forward_backward_ms - forward_ms "
                      "(derived); forward includes the loss, with autograd recording"}

# %% nbgrader={"grade": false, "grade_id": "backward", "locked": false, "schema_version": 3, "solution": true}
#| export
def profile_backward_pass(model, input_tensor, loss_fn=None, targets=None, repeats=15):
    """Time (interleaved, medians) and trace (tracemalloc peak) a real training step of model:
    no_grad forward, recorded forward and forward + loss.backward(); grads zeroed before each step."""
    ### BEGIN SOLUTION
    if not isinstance(model, Module):
        raise TypeError(f"profile_backward_pass needs a Module with parameters, got {type(model).__name__}")
    inference_trace(model, input_tensor)   # a wrong input shape names the layer here
    loss_fn, targets = _loss_and_targets(model, input_tensor, loss_fn, targets)

    def forward():
        return loss_fn(model(input_tensor), targets)

    def forward_no_grad():
        with no_grad():
            return forward()

    def step():
        model.zero_grad()
        loss = forward()
        loss.backward()
        return loss

    loss = step()
    timer = measure_timer()
    min_sample_ns = required_sample_ns(timer.overhead_ns)
    timings = measure_interleaved({"no_grad": forward_no_grad, "forward": forward, "forward+backward": step},
                                  repeats, min_sample_ns=min_sample_ns)
    _, forward_peak, session = traced_peak(forward)
    _, step_peak, _ = traced_peak(step)
    return _backward_report(model, timings, forward_peak, step_peak, session, loss,
                            environment(timer, min_sample_ns))
    ### END SOLUTION

# %% [markdown]
# ### Check step 7
#
# A real backward pass leaves gradients: after profiling, each parameter's `.grad` equals
# the gradient of one fresh backward pass (they were zeroed before every step, so nothing
# accumulated).

# %%
from tinytorch.core.losses import CrossEntropyLoss

labels = Tensor(np.arange(8) % 10, dtype=np.int64)
report = profile_backward_pass(mlp, x_mlp, repeats=5)
print({k: v for k, v in report.items() if k not in ("timings", "noise", "method")})
profiled = [p.grad.data.copy() for p in mlp.parameters()]
mlp.zero_grad()
CrossEntropyLoss()(mlp(x_mlp), labels).backward()
for got, fresh in zip(profiled, (p.grad.data for p in mlp.parameters())):
    np.testing.assert_allclose(got, fresh, rtol=1e-6)
assert report["forward_backward_ms"] > 0 and report["forward_backward_peak_bytes"] > 0
print("OK: a real backward pass, gradients zeroed between steps")

# %% [markdown]
# ## The Profiler, and two helpers for the command line
#
# `Profiler` gathers the functions above behind one object, the public API
# (`from tinytorch.profiling.profiler import Profiler`). It remembers what it measured last:
# `measure_latency` returns the median in milliseconds (a float) and keeps the full
# `LatencyResult` (raw samples, timer overhead and resolution, warm-up, gc state) in
# `profiler.last_latency`; the machine peak is measured (or read from the cache) once per
# profiler and kept in `profiler.peak`.
#
# Two helpers are given. `latency_accuracy_check()` checks `measure_latency` against
# callables whose true duration is known independently: busy-waits that spin on
# `perf_counter_ns` for 200 us and 2 ms (truth: the target plus the measured cost of an
# empty call) and a ~200 ns pure-Python function (truth: one long timed block of a million
# calls, divided by the count). Targets: within 3% for the busy-waits, 10% for the fast
# function. `roofline_plot(df, peak, path)` draws a profile on the roofline and saves a PNG.

# %%
#| export
class Profiler:
    """Counts (parameters, bytes, FLOPs), measures (memory, latency) and profiles (per layer, backward).

    measure_latency returns the median ms and keeps the LatencyResult in last_latency; the
    machine's roofline is measured or read from the cache (cache_dir) once and kept in peak.
    """

    def __init__(self, cache_dir=None):
        self.cache_dir = cache_dir
        self.last_latency = None
        self.peak = None

    def count_parameters(self, model):
        return count_parameters(model)

    def parameter_bytes(self, model):
        return parameter_bytes(model)

    def count_flops(self, model, input_shape):
        return count_flops(model, input_shape)

    def flops_by_layer(self, model, input_shape):
        return flops_by_layer(model, input_shape)

    def measure_memory(self, model, input_shape):
        return measure_memory(model, input_shape)

    def measure_latency(self, model, input_tensor, warmup=10, iterations=100):
        """Median milliseconds per model(input_tensor) call; the LatencyResult is kept in last_latency."""
        self.last_latency = time_model(model, input_tensor, warmup, iterations)
        return self.last_latency.median_ms

    def machine_peak(self, refresh=False):
        """measure_machine_peak (cached), kept on this profiler."""
        if self.peak is None or refresh:
            self.peak = measure_machine_peak(refresh, self.cache_dir)
        return self.peak

    def profile_forward_pass(self, model, input_tensor, repeats=15):
        return profile_forward_pass(model, input_tensor, repeats, self.machine_peak())

    def profile_layer(self, layer, input_tensor, repeats=15):
        return profile_layer(layer, input_tensor, repeats, self.machine_peak())

    def profile_backward_pass(self, model, input_tensor, loss_fn=None, targets=None, repeats=15):
        return profile_backward_pass(model, input_tensor, loss_fn, targets, repeats)

    def __repr__(self):
        latency = ("none yet" if self.last_latency is None
                   else f"{self.last_latency.median_ms:.4g} ms ({self.last_latency.name})")
        peak = ("not measured yet" if self.peak is None
                else f"{self.peak['peak_gflops']:.1f} GFLOP/s, {self.peak['bandwidth_gbs']:.1f} GB/s")
        return f"Profiler(last latency: {latency}; machine peak: {peak})"

# %%
#| export
LATENCY_CHECKS = (("busy-wait 200 us", 200_000, 0.03), ("busy-wait 2 ms", 2_000_000, 0.03))
FAST_CHECK = ("python ~200 ns", 0.10)
TRUTH_CALLS = 1_000_000


def busy_wait(target_ns):
    """A callable of one (ignored) argument that spins on perf_counter_ns until target_ns passed."""
    def spin(_x):
        start = perf_counter_ns()
        while perf_counter_ns() - start < target_ns:
            pass
    return spin


def _empty(_x):
    return None


def _tiny(x):
    """A fast numpy-free function: a few integer operations (a couple of hundred ns with its call)."""
    return ((x * 3 + 1) // 2 + x * 5) % 7


def _check_row(name, truth_ns, profiler, target, method, drift=None):
    measured_ms = profiler.last_latency.median_ms
    error = (measured_ms * 1e6 - truth_ns) / truth_ns
    warnings = [w for w in (drift, profiler.last_latency.warning) if w]
    return {"callable": name, "truth_ms": truth_ns / 1e6, "measured_ms": measured_ms, "relative_error": error,
            "target": target, "within_target": abs(error) <= target,
            "calls_per_sample": profiler.last_latency.calls_per_sample, "truth_method": method,
            "warning": "; ".join(warnings) or None}


def _drift_warning(before_ns, after_ns, limit=0.05):
    """A warning when the two truth blocks differ by more than limit: the machine changed speed."""
    change = abs(after_ns - before_ns) / min(before_ns, after_ns)
    if change <= limit:
        return None
    return (f"the machine changed speed during the check: the truth blocks before and after read "
            f"{before_ns:.1f} and {after_ns:.1f} ns per call ({change:.0%} apart); rerun on a quiet machine")


def latency_accuracy_check(warmup=10, iterations=100):
    """measure_latency against independent truths; one dict per callable (truth, measured, error).

    Busy-waits of 200 us and 2 ms: truth = target + the cost of an empty call (a timed block of
    TRUTH_CALLS calls). A ~200 ns function: truth = a timed block of TRUTH_CALLS calls / count,
    taken just before and just after the measurement (their mean), so that drift of the machine
    during the measurement hits the truth too. Targets: 3% (busy-waits), 10% (fast function).
    """
    profiler, rows = Profiler(), []
    empty_ns = time_batch(call_with(_empty, 0), TRUTH_CALLS) / TRUTH_CALLS
    for name, target_ns, target in LATENCY_CHECKS:
        profiler.measure_latency(busy_wait(target_ns), 0, warmup, iterations)
        method = f"target {target_ns} ns + empty call {empty_ns:.1f} ns (block of {TRUTH_CALLS} calls)"
        rows.append(_check_row(name, target_ns + empty_ns, profiler, target, method))
    call = call_with(_tiny, 3)                       # the same kind of call measure_latency times
    before_ns = time_batch(call, TRUTH_CALLS) / TRUTH_CALLS
    profiler.measure_latency(_tiny, 3, warmup, iterations)
    after_ns = time_batch(call, TRUTH_CALLS) / TRUTH_CALLS
    name, target = FAST_CHECK
    method = (f"mean of two timed blocks of {TRUTH_CALLS} calls each, just before ({before_ns:.1f} ns) and "
              f"just after ({after_ns:.1f} ns) the measurement, divided by the count")
    rows.append(_check_row(name, (before_ns + after_ns) / 2, profiler, target, method,
                           _drift_warning(before_ns, after_ns)))
    return rows


def roofline_plot(df, peak, path, overwrite=False):
    """Save a log-log roofline PNG of a profile_forward_pass DataFrame at path; returns the Path.

    Layers without FLOPs (intensity 0) cannot sit on a log axis and are listed in the title.
    An existing file is replaced only with overwrite=True. matplotlib's Agg canvas, no pyplot.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it or choose another path")
    shown, hidden = df[df["flops"] > 0], df[df["flops"] <= 0]
    if shown.empty:
        raise ValueError("roofline_plot needs at least one layer with FLOPs > 0")
    top, bandwidth = peak["peak_gflops"], peak["bandwidth_gbs"]
    ridge = top / bandwidth
    xs = np.geomspace(min(shown["intensity"].min(), ridge) / 4, max(shown["intensity"].max(), ridge) * 4, 200)
    fig = Figure(figsize=(8, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.loglog(xs, np.minimum(top, xs * bandwidth), color="black",
              label=f"roofline: {top:.1f} GFLOP/s, {bandwidth:.1f} GB/s (measured)")
    ax.axvline(ridge, color="gray", linestyle="--", label=f"ridge {ridge:.2f} FLOP/byte")
    for row in shown.itertuples():
        ax.scatter(row.intensity, row.gflops, s=40, label=f"{row.layer} {row.type}: {row.gflops:.2f} GFLOP/s")
    ax.set_xlabel("arithmetic intensity (FLOP/byte moved)")
    ax.set_ylabel("achieved GFLOP/s")
    skipped = [f"{row.layer} {row.type}" for row in hidden.itertuples()]
    note = f"; not shown (0 FLOPs): {', '.join(skipped)}" if skipped else ""
    ax.set_title(f"Roofline of each layer{note}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    _atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110))
    return path

# %% [markdown]
# ### Check the Profiler
#
# The public API on the reference MLP; the latency is a float, the samples stay on the
# profiler.

# %%
profiler = Profiler()
assert profiler.count_parameters(mlp) == 64 * 128 + 128 + 128 * 10 + 10
assert profiler.count_flops(mlp, (1, 64)) == 2 * 64 * 128 + 128 + 128 + 2 * 128 * 10 + 10
ms = profiler.measure_latency(mlp, x_mlp, warmup=3, iterations=10)
assert isinstance(ms, float) and ms == profiler.last_latency.median_ms
assert len(profiler.last_latency.samples_ns) == 10
print(profiler)
print("OK: the Profiler API")

# %% [markdown]
# ## Graded tests
#
# Each cell checks one step against an independent oracle: counts and formulas written out
# by hand, numpy's own `nbytes`, a fake clock whose every tick is known, and gradients from
# a fresh backward pass.

# %% nbgrader={"grade": true, "grade_id": "test-storage-bytes", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from tinytorch.core.spatial import Conv2d as _Conv2d

conv_only = Sequential(_Conv2d(3, 8, (3, 2), rng=0), ReLU())
assert count_parameters(conv_only) == 8 * 3 * 3 * 2 + 8
assert parameter_bytes(conv_only) == sum(p.data.nbytes for p in conv_only.parameters()) == (144 + 8) * 4
shared = Linear(4, 4, rng=0)
assert count_parameters(Sequential(shared, shared)) == 20                   # a shared layer counts once
mixed = Module()
mixed.codes = Parameter(np.zeros((5, 6)), dtype=np.int8)
mixed.scale = Parameter(np.ones(5))
assert parameter_bytes(mixed) == 30 * 1 + 5 * 4
assert storage_bytes(Tensor.zeros(3, 4)) == 48
for bad in ("weights", [1.0, 2.0]):
    try:
        storage_bytes(bad)
        raise AssertionError("storage_bytes accepted a non-array")
    except TypeError:
        pass

# %% nbgrader={"grade": true, "grade_id": "test-flop-formulas", "locked": true, "points": 3, "schema_version": 3, "solution": false}
assert linear_flops((5, 7), 3) == 2 * 5 * 7 * 3 + 5 * 3
assert linear_flops((5, 7), 3, bias=False) == 210
# N=3, C=4, 9x9 image, O=6, kernel (3, 5), stride 2, padding 1:
# H_out = (9 + 2 - 3) // 2 + 1 = 5, W_out = (9 + 2 - 5) // 2 + 1 = 4
# 2 * 3 * 6 * 5 * 4 * 4 * 3 * 5 + 3 * 6 * 5 * 4 = 43200 + 360
assert conv2d_layer_flops((3, 4, 9, 9), (3, 6, 5, 4), (3, 5)) == 43560
assert conv2d_layer_flops((3, 4, 9, 9), (3, 6, 5, 4), (3, 5), bias=False) == 43200
assert pool2d_flops((1, 2, 3, 3), (3, 3), "max") == 18 * 8
assert pool2d_flops((1, 2, 3, 3), (3, 3), "avg") == 18 * 10
try:
    pool2d_flops((1, 1, 1, 1), (2, 2), "median")
    raise AssertionError("an unknown pool kind was accepted")
except ValueError:
    pass
assert elementwise_flops((2, 3, 4), 5) == 2 * 3 * 4 * 5 and elementwise_flops((7,), 0) == 0

# %% nbgrader={"grade": true, "grade_id": "test-hook-pass", "locked": true, "points": 3, "schema_version": 3, "solution": false}
from tinytorch.core.spatial import Flatten as _Flatten

small_cnn = Sequential(_Conv2d(1, 2, 3, stride=2, padding=1, rng=0), ReLU(), _Flatten(), Linear(2 * 3 * 3, 4, rng=1))
calls = inference_trace(small_cnn, zeros_input((3, 1, 5, 5)))   # (5 + 2 - 3) // 2 + 1 = 3
assert [c.output_shape for c in calls] == [(3, 2, 3, 3), (3, 2, 3, 3), (3, 18), (3, 4)]
assert [c.input_shape for c in calls][3] == (3, 18)
assert count_flops(small_cnn, (3, 1, 5, 5)) == (2 * 3 * 2 * 9 * 9 + 3 * 2 * 9) + 54 + 0 + (2 * 3 * 18 * 4 + 12)
relu = ReLU()
twice = Sequential(Linear(4, 4, rng=0), relu, Linear(4, 4, rng=1), relu)
assert [c.name for c in inference_trace(twice, zeros_input((2, 4)))] == ["0", "1", "2", "1"]
try:
    count_flops(small_cnn, (3, 2, 5, 5))
    raise AssertionError("a wrong input shape was accepted")
except ValueError as err:
    assert "'0'" in str(err) and "(3, 2, 5, 5)" in str(err) and "(N, 1, H, W)" in str(err)
    assert isinstance(err.__cause__, ValueError)
assert all("forward" not in vars(layer) for layer in list(small_cnn) + list(twice))


class Mystery(Module):
    def forward(self, x):
        return x


try:
    count_flops(Sequential(Linear(4, 4, rng=0), Mystery()), (1, 4))
    raise AssertionError("an unknown layer was counted")
except ValueError as err:
    assert "'1'" in str(err) and "Mystery" in str(err)

# %% nbgrader={"grade": true, "grade_id": "test-inference-mode", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from tinytorch.core.autograd import is_grad_enabled

inner = Sequential(Linear(3, 3, rng=0), Dropout(0.5))
outer = Sequential(inner, ReLU(), Linear(3, 2, rng=1)).train()
inner[1].training = False                                 # a mixed state that must come back as it was
flags_before = [m.training for m in outer.modules()]
with inference_mode(outer):
    assert not any(m.training for m in outer.modules()) and not is_grad_enabled()
assert [m.training for m in outer.modules()] == flags_before and is_grad_enabled()
try:
    with inference_mode(outer):
        raise KeyError("fails inside")
except KeyError:
    pass
assert [m.training for m in outer.modules()] == flags_before and is_grad_enabled()
with inference_mode(ReLU()):                              # an activation has no flags to switch
    assert not is_grad_enabled()

# %% nbgrader={"grade": true, "grade_id": "test-flops-by-layer", "locked": true, "points": 3, "schema_version": 3, "solution": false}
flop_table = flops_by_layer(small_cnn, (3, 1, 5, 5))
assert list(flop_table.columns) == list(FLOP_COLUMNS)
assert flop_table["layer"].tolist() == ["0", "1", "2", "3"] and flop_table["params"].tolist() == [20, 0, 0, 76]
assert flop_table["flops"].tolist() == [2 * 3 * 2 * 9 * 9 + 3 * 2 * 9, 54, 0, 2 * 3 * 18 * 4 + 12]
assert flop_table["activation_bytes"].tolist() == [54 * 4, 54 * 4, 54 * 4, 12 * 4]
assert count_flops(small_cnn, (3, 1, 5, 5)) == int(flop_table["flops"].sum())
assert layer_flops(LayerCall("p", MaxPool2d(2), Tensor.zeros(1, 2, 4, 4), Tensor.zeros(1, 2, 2, 2))) == 8 * 3
with_dropout = Sequential(Linear(4, 4, rng=0), Dropout(0.5)).train()
assert flops_by_layer(with_dropout, (2, 4))["flops"].tolist() == [2 * 2 * 4 * 4 + 8, 0]   # Dropout in eval: 0
assert with_dropout.training                               # the model's own mode is back
import tempfile

with tempfile.TemporaryDirectory() as folder:             # the oracle: the same arrays written to a real file
    np.savez(Path(folder) / "w.npz", **small_cnn.state_dict())
    assert serialized_bytes(small_cnn) == (Path(folder) / "w.npz").stat().st_size
assert serialized_bytes(ReLU()) is None

# %% nbgrader={"grade": true, "grade_id": "test-memory", "locked": true, "points": 3, "schema_version": 3, "solution": false}
memory = measure_memory(small_cnn, (3, 1, 5, 5))
assert memory["activation_bytes"] == (3 * 2 * 3 * 3 * 2 + 3 * 18 + 3 * 4) * 4
assert memory["input_bytes"] == 3 * 25 * 4 and memory["parameter_bytes"] == (18 + 2 + 72 + 4) * 4
assert memory["tracemalloc"] == OWN_SESSION and not tracemalloc.is_tracing()
_, peak, session = traced_peak(lambda: np.ones(250_000))          # a 2,000,000-byte array
assert session == OWN_SESSION and 2_000_000 <= peak < 2_100_000
tracemalloc.start()
try:
    kept = np.ones(500_000)                                         # 4 MB the caller keeps
    before = tracemalloc.take_snapshot()
    _, peak, session = traced_peak(lambda: np.ones(250_000))
    assert session == CALLER_SESSION and 2_000_000 <= peak < 2_100_000   # the caller's 4 MB excluded
    assert tracemalloc.is_tracing()
    after = tracemalloc.take_snapshot()
    assert max(stat.size for stat in after.statistics("lineno")) >= kept.nbytes
    assert max(stat.size for stat in before.statistics("lineno")) >= kept.nbytes
finally:
    tracemalloc.stop()

# %% nbgrader={"grade": true, "grade_id": "test-latency", "locked": true, "points": 3, "schema_version": 3, "solution": false}
import tinytorch.utils.timing as timing_module


class FakeClock:
    """perf_counter_ns stand-in: each reading costs 1 ns, work(ns) advances it."""

    def __init__(self):
        self.now = 0

    def __call__(self):
        self.now += 1
        return self.now - 1


fake, calls_made = FakeClock(), []


def work():
    fake.now += 250          # each call takes exactly 250 ns on the fake clock
    calls_made.append(1)


real_clock = timing_module.perf_counter_ns
timing_module.perf_counter_ns = fake
try:
    fake_result = time_callable(work, warmup=3, iterations=5)
finally:
    timing_module.perf_counter_ns = real_clock
# timer overhead 1 ns -> raw samples >= 1 ms -> 4096 calls (250 * 4096 >= 1e6 > 250 * 2048)
assert fake_result.overhead_ns == 1 and fake_result.min_sample_ns == 1_000_000
assert fake_result.calls_per_sample == 4096 and fake_result.n == 5 and fake_result.warmup == 3
assert all(abs(s - (250 + 1 / 4096)) < 1e-9 for s in fake_result.samples_ns)   # the stop read costs 1 ns
# warm-up 3 + calibration (1 + 1 + 2 + ... + 2048 + 2 * 4096) + 5 * 4096 timed calls
assert len(calls_made) == 3 + 1 + 4095 + 8192 + 5 * 4096
try:
    time_model("not a model", Tensor.zeros(1, 64))
    raise AssertionError("a string was timed")
except TypeError as err:
    assert "str" in str(err)

# %% nbgrader={"grade": true, "grade_id": "test-roofline", "locked": true, "points": 2, "schema_version": 3, "solution": false}
roof = classify_roofline(flops=6000, bytes_moved=2000, peak_gflops=50.0, bandwidth_gbs=10.0)
assert roof == {"intensity": 3.0, "ridge": 5.0, "attainable_gflops": 30.0, "bound": MEMORY_BOUND}
roof = classify_roofline(flops=6000, bytes_moved=600, peak_gflops=50.0, bandwidth_gbs=10.0)
assert roof["bound"] == COMPUTE_BOUND and roof["attainable_gflops"] == 50.0
try:
    classify_roofline(10, 0, 50.0, 10.0)
    raise AssertionError("zero bytes were accepted")
except ValueError:
    pass
relu_call = LayerCall("r", ReLU(), Tensor.zeros(3, 2, 3, 3), Tensor.zeros(3, 2, 3, 3))
assert layer_bytes_moved(relu_call) == 2 * 54 * 4                  # input + output, no parameters
dense = Linear(18, 4, rng=0)
dense_call = LayerCall("d", dense, Tensor.zeros(3, 18), Tensor.zeros(3, 4))
assert layer_bytes_moved(dense_call) == 3 * 18 * 4 + 3 * 4 * 4 + (18 * 4 + 4) * 4

# %% nbgrader={"grade": true, "grade_id": "test-roofline-profile", "locked": true, "points": 3, "schema_version": 3, "solution": false}
matmul_peak = measure_matmul_peak(size=64, repeats=3)
assert matmul_peak["size"] == 64 and len(matmul_peak["samples_ns"]) == 3
assert np.isclose(matmul_peak["gflops"], 2 * 64 ** 3 / np.median(matmul_peak["samples_ns"]))
copy_bw = measure_copy_bandwidth(megabytes=1, repeats=3)
assert copy_bw["bytes"] == 2 ** 20 and np.isclose(copy_bw["gbs"], 2 * 2 ** 20 / np.median(copy_bw["samples_ns"]))
made_up = {"peak_gflops": 50.0, "bandwidth_gbs": 10.0}   # a made-up machine: ridge 5 FLOP/byte
mlp_t = Sequential(Linear(6, 5, rng=0), ReLU(), Linear(5, 3, rng=1))
x_t = Tensor.randn(4, 6, rng=2)
prof = profile_forward_pass(mlp_t, x_t, repeats=3, peak=made_up)
assert list(prof.columns) == list(PROFILE_COLUMNS) and prof["layer"].tolist() == ["0", "1", "2"]
assert prof["flops"].tolist() == flops_by_layer(mlp_t, (4, 6))["flops"].tolist()
assert np.isclose(prof["time_share"].sum(), 1.0) and prof.attrs["model_ms"] > 0 and prof.attrs["repeats"] == 3
assert prof.attrs["peak"] == made_up
for row in prof.itertuples():                             # every derived column, by hand from the measured time
    moved = (4 * (6 if row.layer == "0" else 5) + 4 * (3 if row.layer == "2" else 5)) * 4 + \
        {"0": 35, "1": 0, "2": 18}[row.layer] * 4
    assert row.bytes_moved == moved and np.isclose(row.intensity, row.flops / moved)
    assert np.isclose(row.gflops, row.flops / (row.time_ms * 1e6))
    assert np.isclose(row.attainable_gflops, min(50.0, row.intensity * 10.0))
    assert np.isclose(row.efficiency, row.gflops / row.attainable_gflops)
    assert row.bound == (COMPUTE_BOUND if row.intensity >= 5.0 else MEMORY_BOUND)
assert profile_layer(mlp_t[0], x_t, repeats=3, peak=made_up)["flops"] == 2 * 4 * 6 * 5 + 4 * 5

# %% nbgrader={"grade": true, "grade_id": "test-backward", "locked": true, "points": 3, "schema_version": 3, "solution": false}
tiny_net = Sequential(Linear(6, 5, rng=0), ReLU(), Linear(5, 3, rng=1))
x_tiny = Tensor.randn(4, 6, rng=2)
report = profile_backward_pass(tiny_net, x_tiny, repeats=3)
assert report["repeats"] == 3 and report["forward_backward_ms"] > 0
assert abs(report["backward_ms"] - (report["forward_backward_ms"] - report["forward_ms"])) < 1e-9
got = [p.grad.data.copy() for p in tiny_net.parameters()]
tiny_net.zero_grad()
loss = CrossEntropyLoss()(tiny_net(x_tiny), Tensor(np.arange(4) % 3, dtype=np.int64))
loss.backward()
assert abs(report["loss"] - loss.item()) < 1e-6
for g, fresh in zip(got, tiny_net.parameters()):
    np.testing.assert_allclose(g, fresh.grad.data, rtol=1e-6)

# %% [markdown]
# ## Systems analysis
#
# Everything below is measured on your machine, now; the sentences are printed from the
# measured values. First the environment the numbers depend on.

# %%
from tinytorch.models.zoo import load_model
from tinytorch.utils.timing import describe_environment

timer = measure_timer()
print(describe_environment(environment(timer, required_sample_ns(timer.overhead_ns))))
cnn = load_model("digits_cnn")
print(cnn)

# %% [markdown]
# ### Counting: where the FLOPs and the bytes of the reference CNN are
#
# One image of 8x8 pixels through the trained digits CNN: FLOPs, parameters and activation
# bytes per layer.

# %%
counts = flops_by_layer(cnn, (1, 1, 8, 8))
print(counts.to_string(index=False))
total = int(counts["flops"].sum())
top_row = counts.loc[counts["flops"].idxmax()]
print(f"\nOne image costs {total:,} FLOPs; layer {top_row['layer']} ({top_row['type']}) does "
      f"{top_row['flops'] / total:.0%} of them. The model has {count_parameters(cnn):,} parameters "
      f"({parameter_bytes(cnn):,} bytes).")

# %% [markdown]
# ### Memory: what grows with the batch
#
# Parameters are paid once; activations are paid per sample. The cell measures both, and
# the `tracemalloc` peak, for three batch sizes.

# %%
memory_rows = []
for batch in (1, 64, 512):
    report = measure_memory(cnn, (batch, 1, 8, 8))
    memory_rows.append({"batch": batch, **{k: v for k, v in report.items() if k != "tracemalloc"}})
memory_table = pd.DataFrame(memory_rows)
print(memory_table.to_string(index=False))
first, last = memory_rows[0], memory_rows[-1]
print(f"\nFrom batch {first['batch']} to {last['batch']}: parameter bytes stay {first['parameter_bytes']:,} "
      f"({first['serialized_bytes']:,} bytes as a saved .npz file); "
      f"activation bytes grow {last['activation_bytes'] / first['activation_bytes']:.0f}x "
      f"({first['activation_bytes']:,} -> {last['activation_bytes']:,}); the measured peak grows "
      f"{last['peak_bytes'] / first['peak_bytes']:.0f}x ({first['peak_bytes']:,} -> {last['peak_bytes']:,}).")
print(f"At batch {last['batch']} the peak is {last['peak_bytes'] / last['activation_bytes']:.2f}x the summed "
      "activation bytes: temporaries (im2col columns, padded copies) count in the peak, and freed "
      "activations do not.")

# %% [markdown]
# ### Latency: why calibrated batches
#
# Two fast calls, a framework ReLU on ten numbers and a tiny pure-Python function (the one
# the accuracy check below uses), each timed with single calls and with calibrated batches.
# A single reading contains one start/stop pair of the clock and is rounded to the clock's
# steps; a calibrated raw sample spreads both over thousands of calls.

# %%
fast_calls = {"ReLU on 10 numbers": (ReLU(), Tensor.randn(1, 10, rng=0)), "python function": (_tiny, 3)}
for label, (fn, arg) in fast_calls.items():
    singles = time_model(fn, arg, warmup=100, iterations=300, calls=1, timer=timer)
    batched = time_model(fn, arg, warmup=100, iterations=30, timer=timer)
    print(f"{label}:")
    for how, res in (("single calls", singles), ("calibrated batches", batched)):
        print(f"  {how:18s}: median {res.median_ns:8.1f} ns, IQR/median {res.iqr_over_median:6.1%}, "
              f"{res.n} raw samples of {res.calls_per_sample} call(s)")
    print(f"  single calls read {singles.median_ns / batched.median_ns - 1:+.0%} against the calibrated median; "
          f"the clock's start/stop pair costs {timer.overhead_ns:.0f} ns and it steps by {timer.resolution_ns} ns")

# %% [markdown]
# How accurate is `measure_latency`? The accuracy check below times callables whose true
# duration is known by independent means (see the helpers above) and prints the error. A
# shared or virtual machine can change speed from one moment to the next; the fast
# function's truth is therefore taken just before and just after its measurement, and a
# warning is printed when the two disagree (then the comparison says more about the
# machine than about the method).

# %%
accuracy = pd.DataFrame(latency_accuracy_check())
print(accuracy[["callable", "truth_ms", "measured_ms", "relative_error", "target", "within_target",
                "calls_per_sample"]].to_string(index=False))
for row in accuracy.itertuples():
    print(f"{row.callable}: truth from {row.truth_method}" + (f"\n  WARNING: {row.warning}" if row.warning else ""))

# %% [markdown]
# ### The roofline of the reference CNN
#
# This machine's roofline (measured now or read from the cache), then every layer of the
# CNN on a batch of 256 images, timed on its real input.

# %%
peak = measure_machine_peak()
print(f"machine peak ({peak['source']}: {peak['reason']}): matmul {peak['peak_gflops']:.1f} GFLOP/s, "
      f"copy bandwidth {peak['bandwidth_gbs']:.1f} GB/s, ridge {peak['ridge_flops_per_byte']:.2f} FLOP/byte "
      f"(measured {peak['measured_at']})")
images = Tensor.randn(256, 1, 8, 8, rng=0)
profile = profile_forward_pass(cnn, images, repeats=9, peak=peak)
columns = ["layer", "type", "flops", "time_ms", "time_share", "gflops", "intensity", "attainable_gflops",
           "efficiency", "bound"]
with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 160):
    print(profile[columns].to_string(index=False))
print(f"\nwhole model: {profile.attrs['model_ms']:.3f} ms per batch; summed layers: "
      f"{profile['time_ms'].sum():.3f} ms")

# %%
from IPython.display import Image, display

plot_path = Path("..") / "results" / "profiling" / "digits_cnn_roofline.png"
replaced = plot_path.exists()
roofline_plot(profile, peak, plot_path, overwrite=True)
print(f"saved {plot_path.resolve()}" + (" (replaced the previous plot)" if replaced else ""))
display(Image(filename=str(plot_path)))

# %%
slowest = profile.loc[profile["time_ms"].idxmax()]
print(f"The slowest layer is {slowest['layer']} ({slowest['type']}): {slowest['time_share']:.0%} of the summed "
      f"layer time, {slowest['gflops']:.2f} GFLOP/s achieved.")
for row in profile[profile["flops"] > 0].itertuples():
    print(f"  layer {row.layer} {row.type:9s}: {row.intensity:6.2f} FLOP/byte -> {row.bound}, "
          f"reaches {row.efficiency:6.1%} of its attainable {row.attainable_gflops:.1f} GFLOP/s")

# %% [markdown]
# How to read the plot and the lines above: the roofline is an upper bound. A layer close
# to its roof uses the machine well; a layer far below *both* roofs is held back by
# neither arithmetic nor bandwidth but by overhead: Python calls, allocations, the im2col
# copy. The element-wise layers (ReLU, pooling) do a FLOP or so per element while reading
# and writing every element, so their intensity sits far left of the ridge and no
# arithmetic speed-up can help them; the convolutions reuse each weight at every position
# and sit further right. Which side of the ridge each layer lands on, and how far below its roof it stays,
# is what the lines above print for this machine. An efficiency above 100% is possible: the
# bandwidth roof comes from a 64 MB copy that streams through main memory, while a small
# layer's data can stay in the CPU caches, which are faster.
#
# ### Training: the backward pass against the forward pass
#
# The same CNN, one training step on a batch of 64: forward without recording, forward
# with autograd recording, and forward + backward, interleaved; and their memory peaks.

# %%
batch = Tensor.randn(64, 1, 8, 8, rng=1)
train_report = profile_backward_pass(cnn, batch, repeats=15)
for key in ("no_grad_ms", "forward_ms", "forward_backward_ms", "backward_ms"):
    print(f"{key:20s} {train_report[key]:8.3f}")
print(f"\nRecording the graph costs {train_report['forward_ms'] / train_report['no_grad_ms']:.2f}x the "
      f"no_grad forward; backward adds {train_report['backward_over_forward']:.2f}x the recorded forward "
      f"(a training step is {train_report['forward_backward_ms'] / train_report['no_grad_ms']:.2f}x inference).")
print(f"Memory peak: forward {train_report['forward_peak_bytes']:,} bytes, forward + backward "
      f"{train_report['forward_backward_peak_bytes']:,} bytes "
      f"({train_report['forward_backward_peak_bytes'] / train_report['forward_peak_bytes']:.2f}x).")
print("noise:", train_report["noise"])

# %% [markdown]
# Why backward costs more: for each layer it computes the gradient with respect to the
# input *and* the gradient with respect to the weights, each about as much arithmetic as the
# forward pass itself, and it reads the intermediate results the recorded forward pass kept
# alive (the memory peaks above). Compare that arithmetic argument with the ratio the cell
# above printed: at these small sizes, Python overhead per operation weighs as much as the
# arithmetic, and the backward pass runs more operations.
#
# ## Summary
#
# - **Count from real storage and real shapes.** `storage_bytes` is the one rule for bytes
#   (int8 is 1 byte; later formats report `nbytes_total()`); FLOPs come from stated
#   formulas applied to the shapes a hooked forward pass records; an unknown layer is an
#   error, never a silent zero.
# - **Measure memory without breaking the caller.** `traced_peak` uses its own
#   `tracemalloc` session, or the caller's without stopping or clearing it.
# - **Time honestly.** Warm-up, calibrated batches of at least max(1 ms, 1000 x timer
#   overhead), medians with their spread, the raw samples kept: `time_callable` returns a
#   `LatencyResult`, the core that module 19 builds on.
# - **Explain with the roofline.** The measured matmul peak and copy bandwidth give the
#   ridge; each layer's arithmetic intensity says whether it is compute- or memory-bound,
#   and its efficiency says how far overhead keeps it from the roof.
# - **Training costs more.** A real backward pass, timed against the forward pass, with
#   its memory peak.
