# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 06: Autograd
#
# > Reverse-mode automatic differentiation for TinyTorch: every Tensor operation records how to send gradients back to its inputs, and `loss.backward()` fills in `.grad` for every weight.
#
# ## Why autograd matters
#
# Training a network means nudging every weight against the gradient of the loss. A small
# MLP already has tens of thousands of weights; working out each derivative by hand, for
# every architecture you try, is slow and error-prone. Autograd removes that work: while
# the forward pass runs, each operation leaves a note saying how to pass a gradient back
# to its inputs. `loss.backward()` then walks those notes in reverse and, by the chain
# rule, delivers `d loss / d weight` for every weight at about the cost of one more
# forward pass.
#
# This is the same design PyTorch uses (`torch.autograd.Function`, `ctx.save_for_backward`,
# `requires_grad`, `no_grad`), built in a few hundred lines of numpy. You add it onto
# module 01's `Tensor` (the class stays the same object; autograd gives it new abilities),
# and then onto the activations, layers and losses of modules 02 to 04, so that the code
# you already wrote becomes trainable without changing a line of it.

# %%
#| default_exp core.autograd

# %% [markdown]
# ## The idea: the chain rule, applied backwards through a recorded graph
#
# Take one neuron with a squared error, `L = (w*x + b - y)**2`, and split it into
# elementary steps, each with a local derivative that is easy to write down:
#
# | forward step | local derivative |
# |---|---|
# | `u = w * x` | `du/dw = x` |
# | `v = u + b` | `dv/du = 1`, `dv/db = 1` |
# | `r = v - y` | `dr/dv = 1` |
# | `L = r ** 2` | `dL/dr = 2 r` |
#
# Reverse mode starts with `dL/dL = 1` and walks the steps **backwards**, multiplying by
# each local derivative: `dL/dr = 2r`, `dL/dv = dL/dr * 1`, `dL/db = dL/dv * 1`,
# `dL/du = dL/dv * 1`, `dL/dw = dL/du * x`. One backward sweep gives the gradient with
# respect to *every* input, which is why it suits networks with many weights and one
# scalar loss.
#
# The cell below does this by hand in numpy and checks it against **central finite
# differences**, `(f(w + eps) - f(w - eps)) / (2 eps)`: the independent oracle every test
# in this module uses. With `w=3, x=2, b=1, y=4`: `r = 3`, so `dL/dw = 2*3*2 = 12` and
# `dL/db = 2*3 = 6`.

# %%
import numpy as np


def loss_fn(w, x=2.0, b=1.0, y=4.0):
    return (w * x + b - y) ** 2


w = 3.0
u = w * 2.0
v = u + 1.0
r = v - 4.0
loss_value = r ** 2
dL_dr = 2 * r          # start of the backward sweep
dL_dv = dL_dr * 1.0
dL_db = dL_dv * 1.0
dL_du = dL_dv * 1.0
dL_dw = dL_du * 2.0    # du/dw = x
eps = 1e-6
numeric = (loss_fn(w + eps) - loss_fn(w - eps)) / (2 * eps)
assert (loss_value, dL_dw, dL_db) == (9.0, 12.0, 6.0)
assert abs(numeric - dL_dw) < 1e-6
print(f"L = {loss_value}, dL/dw = {dL_dw} (finite differences: {numeric:.6f}), dL/db = {dL_db}")


# %% [markdown]
# Autograd automates exactly this. Each operation on a tensor that *requires grad*
# records a **node**: which operation ran, the inputs it used, and whatever it saved for
# its backward formula. The nodes form a directed acyclic graph from the weights to the
# loss. `loss.backward()` orders the graph so that every tensor comes after all the
# tensors computed from it (a *topological order*), then visits it once, calling each
# node's backward with the gradient of its output.
#
# The two helpers below are the oracle for the rest of the notebook: `numeric_grad`
# perturbs one element at a time, and `check_grad` compares a tensor's `.grad` with it.
# They loop over elements in Python, which is fine for the few-element arrays we test on.

# %%
def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of the scalar f() w.r.t. every element of the float64 array x.

    f must read x (e.g. through a Tensor sharing its memory); x is changed and restored.
    """
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + eps
        up = f()
        flat_x[i] = original - eps
        down = f()
        flat_x[i] = original
        flat_grad[i] = (up - down) / (2 * eps)
    return grad


def check_grad(tensor, f, rtol=1e-5, atol=1e-7):
    """Assert that tensor.grad matches the finite-difference gradient of the scalar f()."""
    expected = numeric_grad(f, tensor.data)
    np.testing.assert_allclose(tensor.grad.data, expected, rtol=rtol, atol=atol)

# %% [markdown]
# ## Step 1: grad mode
#
# Recording the graph costs time and keeps arrays alive. During evaluation and inside the
# optimizer's update nobody will call `backward`, so we want a switch that turns
# recording off: `with no_grad(): ...`, also usable as a decorator `@no_grad()`.
#
# The switch is one global flag. The context manager saves the previous value on entry
# and restores it on exit, **even when the block raises**, so a failing evaluation cannot
# leave autograd switched off for the rest of the program. It keeps a stack of saved
# values, so one `no_grad()` object can be entered again while it is active (a decorated
# function that calls itself). The flag is not thread-safe; TinyTorch runs in one thread.

# %%
#| export
import contextlib
import functools
import importlib
import math
import numbers
import types

import numpy as np
from scipy.special import erf

from tinytorch.core.tensor import Tensor


class _GradMode:
    """The global switch that no_grad() flips: are operations being recorded?"""

    def __init__(self):
        self.enabled = True

    def __repr__(self):
        return f"_GradMode(enabled={self.enabled})"


_GRAD_MODE = _GradMode()


def is_grad_enabled():
    """True when operations on tensors that require grad are recorded for backward()."""
    return _GRAD_MODE.enabled

# %% nbgrader={"grade": false, "grade_id": "grad-mode", "locked": false, "schema_version": 3, "solution": true}
#| export
class no_grad(contextlib.ContextDecorator):
    """Context manager (`with no_grad():`) and decorator (`@no_grad()`) that stops recording.

    The previous grad mode is restored on exit, also when the block raises.
    """

    def __init__(self):
        self._previous = []  # a stack: the same object may be entered again while active

    def __enter__(self):
        ### BEGIN SOLUTION
        self._previous.append(_GRAD_MODE.enabled)
        _GRAD_MODE.enabled = False
        return self
        ### END SOLUTION

    def __exit__(self, exc_type, exc_value, traceback):
        ### BEGIN SOLUTION
        _GRAD_MODE.enabled = self._previous.pop()
        return False  # never swallow the exception
        ### END SOLUTION

    def __repr__(self):
        return f"no_grad(active={bool(self._previous)})"

# %% [markdown]
# ### Check step 1

# %%
assert is_grad_enabled()
with no_grad():
    assert not is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
    assert not is_grad_enabled()
assert is_grad_enabled()
try:
    with no_grad():
        raise KeyError("boom")
except KeyError:
    pass
assert is_grad_enabled(), "no_grad must restore grad mode after an exception"


@no_grad()
def evaluate():
    return is_grad_enabled()


assert evaluate() is False and is_grad_enabled()
print(no_grad(), "OK: no_grad switches recording off and always restores it")

# %% [markdown]
# ## Step 2: autograd state on Tensor
#
# Every tensor gets three new attributes:
#
# - `requires_grad`: should operations on it be recorded? You set it on the weights
#   (`Tensor(w, requires_grad=True)` or `w.requires_grad_()`); results of recorded
#   operations get it automatically. Only floating-point tensors may require grad: a
#   gradient is a small real-valued nudge, which an integer tensor cannot take.
# - `grad`: `None` until a backward pass reaches the tensor, then a Tensor of the same
#   shape and dtype. Like PyTorch, gradients **accumulate** over backward calls: call
#   `zero_grad()` (or set `grad = None`) before each training step.
# - `grad_fn`: the node that produced the tensor, or `None` for a **leaf** (a tensor you
#   created, e.g. a weight). `is_leaf` says which; only leaves keep a `.grad`.
#
# They are class-level defaults, so tensors that module 01 builds with `from_numpy`
# (which skips `__init__`) have them too. We do not edit module 01's class: we install
# functions onto it. `_install_on_tensor` puts each one on `Tensor` and keeps module 01's
# own version (once) in `Tensor._autograd_originals`, so the wrapped methods can still
# call it and installing twice changes nothing.
#
# `detach()` returns a tensor that shares the data but is cut off from the graph, for
# values you want to use without differentiating through them.
#
# The input rules are given (the setter checks its argument before your code runs); you
# write what the three definitions say: the setter stores the flag, a leaf is a tensor
# without a `grad_fn`, and `detach()` wraps the same array in a tensor of its own.

# %%
#| export
def _install_on_tensor(methods):
    """Set each name -> value of methods on Tensor; module 01's value is kept once, for _original."""
    originals = Tensor.__dict__.get("_autograd_originals")
    if originals is None:
        originals = {}
        Tensor._autograd_originals = originals
    for name, value in methods.items():
        if name not in originals:
            originals[name] = Tensor.__dict__.get(name)  # None: a name module 01 did not have
        if isinstance(value, types.FunctionType):  # readable names in help() and tracebacks
            value.__name__, value.__qualname__ = name, f"Tensor.{name}"
        setattr(Tensor, name, value)


def _original(name):
    """Module 01's own Tensor.<name>: the saved one once autograd replaced it, else the current."""
    originals = Tensor.__dict__.get("_autograd_originals", {})
    return originals[name] if name in originals else Tensor.__dict__[name]


def _tensor_init(self, data, dtype=None, requires_grad=False):
    """Copy data into a new tensor (module 01's rules); requires_grad=True marks it for autograd."""
    _original("__init__")(self, data, dtype)
    if requires_grad:  # otherwise keep the class default (a subclass may default to True)
        self.requires_grad = True


def _get_requires_grad(self):
    return self._requires_grad

# %% nbgrader={"grade": false, "grade_id": "tensor-state", "locked": false, "schema_version": 3, "solution": true}
#| export
def _set_requires_grad(self, flag):
    """Mark (True) or unmark a tensor; only float tensors may require grad, only leaves may stop."""
    flag = bool(flag)
    if flag and self.dtype.kind != "f":
        raise TypeError(
            f"only floating-point tensors can require grad, got dtype {self.dtype}; convert "
            "first, e.g. Tensor(t, dtype=np.float32, requires_grad=True)")
    if not flag and self.grad_fn is not None:
        raise RuntimeError(
            f"requires_grad can only be switched off on a leaf tensor; this one was computed "
            f"by {self.grad_fn!r}. Use t.detach() for a tensor outside the graph")
    ### BEGIN SOLUTION
    self._requires_grad = flag
    ### END SOLUTION


def _is_leaf(self):
    """True for a tensor that no recorded operation produced (a weight you created)."""
    ### BEGIN SOLUTION
    return self.grad_fn is None
    ### END SOLUTION


def _detach(self):
    """A tensor sharing this one's data, outside the graph (no grad_fn, requires_grad False)."""
    ### BEGIN SOLUTION
    return Tensor.from_numpy(self.data)
    ### END SOLUTION

# %%
#| export
def _requires_grad_(self, flag=True):
    """Set requires_grad in place and return the tensor (handy when building weights)."""
    self.requires_grad = flag
    return self


def _zero_grad(self):
    """Forget the accumulated gradient (grad becomes None)."""
    self.grad = None


def _tensor_repr(self):
    """Module 01's repr, plus requires_grad=True (leaf) or grad_fn=<...> (computed tensor)."""
    text = _original("__repr__")(self)
    if self.grad_fn is not None:
        return f"{text[:-1]}, grad_fn={self.grad_fn!r})"
    if self.requires_grad:
        return f"{text[:-1]}, requires_grad=True)"
    return text


_STATE_METHODS = {
    "_requires_grad": False, "grad": None, "grad_fn": None,  # class-level defaults
    "__init__": _tensor_init,
    "__repr__": _tensor_repr,
    "requires_grad": property(_get_requires_grad, _set_requires_grad,
                              doc="Whether operations on this tensor are recorded for backward()."),
    "is_leaf": property(_is_leaf, doc="True unless the tensor was computed by a recorded operation."),
    "requires_grad_": _requires_grad_,
    "detach": _detach,
    "zero_grad": _zero_grad,
}

# %% [markdown]
# ### Check step 2
#
# In the notebook we install each step's methods as soon as they are written, so the
# check cells can use them; `enable_autograd()` at the end installs everything at once.

# %%
_install_on_tensor(_STATE_METHODS)
w = Tensor([1.0, 2.0], requires_grad=True)
assert w.requires_grad and w.is_leaf and w.grad is None and w.grad_fn is None
assert Tensor.from_numpy(np.ones(2)).requires_grad is False  # class default
assert repr(w) == "Tensor([1., 2.], shape=(2,), dtype=float32, requires_grad=True)"
assert repr(Tensor([1.0])) == "Tensor([1.], shape=(1,), dtype=float32)"  # unchanged from module 01
d = w.detach()
assert not d.requires_grad and np.shares_memory(d.data, w.data)
assert Tensor([1.0]).requires_grad_().requires_grad
try:
    Tensor([1, 2], dtype=np.int64, requires_grad=True)
except TypeError as err:
    print("int tensor:", err)
else:
    raise AssertionError("an int tensor must not require grad")
print("OK: requires_grad, grad, grad_fn, is_leaf, detach and repr work")

# %% [markdown]
# ## Step 3: Function, Context and Node: recording one operation
#
# A differentiable operation is a `Function` subclass with two static methods side by
# side, exactly like `torch.autograd.Function`:
#
# - `forward(ctx, *inputs, **settings) -> ndarray` computes the result from **arrays**
#   (Tensor inputs arrive as their `.data`; numbers and arrays arrive unchanged) and
#   saves what backward needs with `ctx.save_for_backward(...)` or as attributes of `ctx`.
# - `backward(ctx, grad_output) -> tuple` gets the gradient of the loss w.r.t. the output
#   (an array of the output's shape) and returns **one gradient per positional input**,
#   in order: an array, or `None` where there is none (a constant, integer labels).
#   A Function with a single input may return the bare array. Keyword arguments are
#   settings (an axis, a shape) and get no gradient.
#
# `Function.apply(*inputs, **settings)` is how an operation runs: it builds a `Context`,
# calls `forward`, wraps the array in a Tensor and, when grad mode is on and some Tensor
# input requires grad, **records** a `Node` (the Function, its Context and its inputs) as
# the result's `grad_fn`. `ctx.needs_input_grad` tells forward and backward which inputs
# need a gradient, so work for constants can be skipped.
#
# The worked example is `Square`, `y = x**2` with `dy/dx = 2x`: forward saves `x`,
# backward returns `grad_output * 2 * x`.
#
# You write the recording, `Function.apply`, and the line of `save_for_backward` that
# keeps the values (refusing Tensors, which would keep the whole graph alive, is given).

# %%
#| export
class Context:
    """What one forward call leaves for its backward: saved arrays plus free attributes."""

    def __init__(self):
        self.saved_tensors = ()
        self.needs_input_grad = ()

    def __repr__(self):
        arrays = [a for a in self.saved_tensors if isinstance(a, np.ndarray)]
        extra = sorted(k for k in vars(self) if k not in ("saved_tensors", "needs_input_grad"))
        return (f"Context(saved_tensors: {len(self.saved_tensors)} values, "
                f"{sum(a.nbytes for a in arrays)} bytes of arrays; attributes {extra})")


class Node:
    """One recorded operation: the Function that ran, its Context and its inputs.

    inputs has one entry per positional input of forward: the Tensor, or None for a constant.
    backward() frees the node (ctx and inputs become None) once it has used it.
    """

    def __init__(self, function, ctx, inputs):
        self.function, self.ctx, self.inputs = function, ctx, inputs

    @property
    def freed(self):
        return self.inputs is None

    def free(self):
        """Drop the saved arrays and the references to the inputs."""
        self.ctx = self.inputs = None

    def __repr__(self):
        name = self.function.__name__.removesuffix("Function")
        return f"<{name}Backward{' (freed)' if self.freed else ''}>"

# %% nbgrader={"grade": false, "grade_id": "function-apply", "locked": false, "schema_version": 3, "solution": true}
#| export
def _save_for_backward(ctx, *values):
    """ctx.save_for_backward: keep arrays (or numbers) for backward; Tensors are refused."""
    if any(isinstance(value, Tensor) for value in values):
        raise TypeError(
            "save_for_backward takes the arrays that forward received (ndarrays or numbers), "
            "got a Tensor; save tensor.data instead")
    ### BEGIN SOLUTION
    ctx.saved_tensors = values
    ### END SOLUTION


Context.save_for_backward = _save_for_backward


class Function:
    """Base class of a differentiable operation; subclasses define forward and backward.

    forward(ctx, *inputs, **settings) -> ndarray        (inputs: arrays or constants)
    backward(ctx, grad_output) -> tuple, one array or None per positional input
                                  (a Function with one input may return a bare array)
    Run it with Name.apply(*inputs, **settings) -> Tensor; never instantiate it.
    """

    def __new__(cls, *args, **kwargs):
        raise TypeError(f"{cls.__name__} is not instantiated; call {cls.__name__}.apply(...)")

    @staticmethod
    def forward(ctx, *inputs, **settings):
        raise NotImplementedError("a Function subclass defines forward(ctx, *inputs, **settings)")

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError("a Function subclass defines backward(ctx, grad_output)")

    @classmethod
    def apply(cls, *inputs, **settings):
        """Run forward on the inputs' arrays; record a Node when a gradient will be needed."""
        ### BEGIN SOLUTION
        ctx = Context()
        recording = is_grad_enabled()
        ctx.needs_input_grad = tuple(
            recording and isinstance(x, Tensor) and x.requires_grad for x in inputs)
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        result = Tensor.from_numpy(np.asarray(cls.forward(ctx, *arrays, **settings)))
        if any(ctx.needs_input_grad) and result.dtype.kind == "f":
            result.requires_grad = True
            result.grad_fn = Node(cls, ctx, tuple(x if isinstance(x, Tensor) else None for x in inputs))
        return result
        ### END SOLUTION

# %% [markdown]
# ### Check step 3

# %%
class Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return (grad_output * 2 * x,)


x = Tensor([1.0, -3.0], requires_grad=True)
y = Square.apply(x)
assert y.tolist() == [1.0, 9.0] and y.requires_grad and not y.is_leaf
assert y.grad_fn.function is Square and y.grad_fn.inputs == (x,)
assert y.grad_fn.ctx.needs_input_grad == (True,)
print(y, y.grad_fn, y.grad_fn.ctx, sep="\n")
with no_grad():
    assert Square.apply(x).grad_fn is None
assert Square.apply(Tensor([2.0])).grad_fn is None  # no input requires grad: nothing recorded
print("OK: Function.apply records one Node only when a gradient will be needed")

# %% [markdown]
# ## Step 4: the backward pass
#
# `backward()` has three parts:
#
# 1. **Unbroadcasting.** If `a` has shape `(3, 1)` and `b` has shape `(1, 4)`, then
#    `a + b` has shape `(3, 4)`: each element of `a` was used 4 times, so its gradient is
#    the **sum** of the 4 gradients it fed. In general: sum over the leading axes that
#    broadcasting added, and over the axes where the input had size 1 but the output did
#    not (keeping them as size 1). The engine does this for every gradient a backward
#    returns, so no Function has to, and it casts the gradient to its input's dtype.
# 2. **Topological order.** Starting from the output, a depth-first search lists each
#    tensor after all its inputs (post-order); reversing the list puts every tensor
#    before its inputs. The search uses an explicit stack instead of recursion, so a
#    graph thousands of operations deep cannot hit Python's recursion limit.
# 3. **The sweep.** Walk the order keeping a dictionary `id(tensor) -> gradient`. A
#    tensor's gradient is complete when we reach it (all its users came earlier). A leaf
#    adds it to its `.grad`; a computed tensor calls its node's backward and **adds** the
#    results into its inputs' entries (a tensor used twice gets two contributions). Each
#    node is then freed: its saved arrays are released, and a second `backward()` through
#    it raises an error instead of silently using missing data.
#
# You write the pieces of the idea: `_unbroadcast`, the edges of the graph
# (`_graph_inputs`: a node's inputs that require grad) and their order
# (`_topological_order`), one node's chain-rule step (`_node_backward`), a leaf's
# accumulation (`_accumulate`) and the sweep (`_run_backward`). The error checks around
# them are given: a freed node, a backward that returns the wrong number of gradients
# (`_gradient_tuple`) or a gradient of the wrong shape (`_input_gradient`).

# %% nbgrader={"grade": false, "grade_id": "unbroadcast", "locked": false, "schema_version": 3, "solution": true}
#| export
def _unbroadcast(grad, shape):
    """Sum grad over the axes that broadcasting added or stretched, so that it has `shape`."""
    ### BEGIN SOLUTION
    grad = np.asarray(grad)
    if grad.ndim < len(shape):
        return grad  # broadcasting never removes axes; the caller reports the mismatch
    added = grad.ndim - len(shape)
    if added:
        grad = grad.sum(axis=tuple(range(added)))
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad
    ### END SOLUTION

# %%
assert _unbroadcast(np.ones((3, 4)), (3, 1)).tolist() == [[4.0]] * 3
assert _unbroadcast(np.ones((2, 3, 4)), (4,)).tolist() == [6.0] * 4
assert _unbroadcast(np.ones((3, 4)), ()).shape == () and _unbroadcast(np.ones((3, 4)), ()) == 12.0
assert _unbroadcast(np.ones((2, 3)), (2, 3)).shape == (2, 3)
print("OK: _unbroadcast sums over added and stretched axes")

# %% nbgrader={"grade": false, "grade_id": "backward-engine", "locked": false, "schema_version": 3, "solution": true}
#| export
_FREED_MESSAGE = (
    "backward() reached a part of the graph that an earlier backward() already freed (its saved "
    "arrays were released to save memory). Run the forward pass again before calling backward() "
    "a second time; TinyTorch has no retain_graph option")


def _graph_inputs(tensor):
    """The inputs of tensor's node that require grad (none for a leaf); error if the node is freed."""
    node = tensor.grad_fn
    if node is not None and node.freed:
        raise RuntimeError(_FREED_MESSAGE)
    ### BEGIN SOLUTION
    if node is None:
        return []  # a leaf: the graph ends here
    return [x for x in node.inputs if x is not None and x.requires_grad]
    ### END SOLUTION


def _topological_order(root):
    """Every tensor that root was computed from (root included), each before its inputs."""
    ### BEGIN SOLUTION
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)  # post-order: after everything it was computed from
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        stack.extend((x, False) for x in _graph_inputs(tensor) if id(x) not in visited)
    order.reverse()
    return order
    ### END SOLUTION


def _input_gradient(node, tensor, grad):
    """grad reduced to tensor's shape and cast to its dtype; RuntimeError if it cannot fit."""
    grad = _unbroadcast(grad, tensor.shape)
    if grad.shape != tensor.shape:
        raise RuntimeError(
            f"{node.function.__name__}.backward returned a gradient of shape {grad.shape} for an "
            f"input of shape {tensor.shape}; a gradient must have its input's shape (or one "
            "that broadcasting produced from it)")
    return grad.astype(tensor.dtype, copy=False)


def _gradient_tuple(node, returned):
    """What node's backward returned, as one gradient (or None) per input; RuntimeError if the count is off."""
    input_grads = returned if isinstance(returned, (tuple, list)) else (returned,)
    if len(input_grads) != len(node.inputs):
        raise RuntimeError(
            f"{node.function.__name__}.backward returned {len(input_grads)} gradients for "
            f"{len(node.inputs)} positional inputs; return one (or None) per input")
    return input_grads


def _node_backward(node, grad, grads):
    """Call node's backward with grad and add each input's gradient into grads (id -> array)."""
    ### BEGIN SOLUTION
    input_grads = _gradient_tuple(node, node.function.backward(node.ctx, grad))
    for tensor, input_grad in zip(node.inputs, input_grads):
        if tensor is None or input_grad is None or not tensor.requires_grad:
            continue
        input_grad = _input_gradient(node, tensor, input_grad)
        key = id(tensor)
        grads[key] = input_grad if key not in grads else grads[key] + input_grad
    ### END SOLUTION


def _accumulate(leaf, grad):
    """Add grad to leaf.grad (a fresh array: gradients of different leaves never alias)."""
    ### BEGIN SOLUTION
    grad = np.array(grad, dtype=leaf.dtype)
    leaf.grad = Tensor.from_numpy(grad if leaf.grad is None else leaf.grad.data + grad)
    ### END SOLUTION


def _run_backward(root, gradient):
    """Send gradient (d output / d root) back through the graph; fill the leaves' .grad."""
    ### BEGIN SOLUTION
    grads = {id(root): gradient}
    for tensor in _topological_order(root):
        grad = grads.pop(id(tensor), None)
        if grad is None:
            continue
        if tensor.grad_fn is None:
            _accumulate(tensor, grad)
        else:
            _node_backward(tensor.grad_fn, grad, grads)
            tensor.grad_fn.free()
    ### END SOLUTION

# %%
#| export
def _initial_gradient(tensor, gradient):
    """The gradient backward() starts from: ones for a one-element tensor, else the given one."""
    if gradient is None:
        if tensor.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a one-element tensor (a loss), got shape "
                f"{tensor.shape}; pass backward(gradient) with shape {tensor.shape}, or reduce "
                "first, e.g. t.sum().backward()")
        return np.ones(tensor.shape, dtype=tensor.dtype)
    array = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient, dtype=tensor.dtype)
    if array.shape != tensor.shape:
        raise ValueError(
            f"backward(gradient): gradient has shape {array.shape} but the tensor has shape "
            f"{tensor.shape}; they must match")
    return array


def _tensor_backward(self, gradient=None):
    """Compute d self / d leaf for every leaf that requires grad, adding it to leaf.grad.

    gradient: d loss / d self (defaults to 1 for a one-element tensor). Frees the graph.
    """
    if not self.requires_grad:
        raise RuntimeError(
            "backward() called on a tensor that does not require grad: nothing it was computed "
            "from requires grad (or it was computed under no_grad()). Create the weights with "
            "requires_grad=True")
    _run_backward(self, _initial_gradient(self, gradient))


_ENGINE_METHODS = {"backward": _tensor_backward}

# %% [markdown]
# ### Check step 4
#
# `x**4` computed as `Square(Square(x))`: the chain rule gives `4 x**3`. Then the
# topological order of that graph, a finite-difference check, and a second backward
# through the freed graph, which must raise.

# %%
_install_on_tensor(_ENGINE_METHODS)
x = Tensor([1.0, -2.0, 0.5], dtype=np.float64, requires_grad=True)
Square.apply(Square.apply(x)).backward(np.ones(3))
np.testing.assert_allclose(x.grad.data, 4 * x.data ** 3)

x.zero_grad()
y = Square.apply(x)
z = Square.apply(y)
order = _topological_order(z)
assert order[0] is z and order[-1] is x, "every tensor comes before its inputs"
z.backward(np.ones(3))
check_grad(x, lambda: float(np.sum(x.data ** 4)))
try:
    z.backward(np.ones(3))
except RuntimeError as err:
    print("second backward:", err)
else:
    raise AssertionError("a second backward through a freed graph must raise")
print(z.grad_fn, "OK: the backward pass follows the chain rule and frees the graph")

# %% [markdown]
# ## Step 5: element-wise operations
#
# Each operation below is a `Function`. Its forward computes the value with **module 01's
# own method** (`_binary_value` calls the saved original, on whichever side is the
# array), so values, dtypes and error messages stay exactly what module 01 defined. You
# write both halves of each rule: what forward **saves** (the least its backward needs:
# `exp` and `sqrt` keep their output, which the formula uses directly) and the backward
# formula:
#
# | op | gradient w.r.t. a | gradient w.r.t. b |
# |---|---|---|
# | `a + b` | `g` | `g` |
# | `a - b` | `g` | `-g` |
# | `a * b` | `g * b` | `g * a` |
# | `a / b` | `g / b` | `-g * a / b**2` |
# | `-a` | `-g` | |
# | `a ** p` (p a constant) | `g * p * a**(p - 1)` | |
# | `exp(a)` | `g * exp(a)` (saved output) | |
# | `log(a)` | `g / a` | |
# | `sqrt(a)` | `g / (2 sqrt(a))` (saved output) | |
#
# One of `a`, `b` may be a constant (a number or an array): its gradient is computed or
# skipped (`ctx.needs_input_grad`) and the engine ignores it. The shapes of `g * b` may
# be the broadcast shape; the engine's unbroadcasting reduces them.

# %%
#| export
def _call_original(name, array, *args):
    """Module 01's Tensor.<name> on array (wrapped, not copied), returning the result's array."""
    return _original(name)(Tensor.from_numpy(array), *args).data


def _binary_value(name, a, b):
    """a <op> b by module 01's method (its checks, its dtype rules); a or b is an ndarray."""
    if isinstance(a, np.ndarray):
        return _call_original(f"__{name}__", a, b)
    return _call_original(f"__r{name}__", b, a)  # a is a number: use the reflected method

# %% nbgrader={"grade": false, "grade_id": "elementwise-backward", "locked": false, "schema_version": 3, "solution": true}
#| export
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return _binary_value("add", a, b)

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        return grad_output, grad_output
        ### END SOLUTION


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return _binary_value("sub", a, b)

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        return grad_output, -grad_output
        ### END SOLUTION


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ### BEGIN SOLUTION
        ctx.save_for_backward(a, b)
        ### END SOLUTION
        return _binary_value("mul", a, b)

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (grad_output * b if need_a else None,
                grad_output * a if need_b else None)
        ### END SOLUTION


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ### BEGIN SOLUTION
        ctx.save_for_backward(a, b)
        ### END SOLUTION
        return _binary_value("truediv", a, b)

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (grad_output / b if need_a else None,
                -grad_output * a / (b * b) if need_b else None)
        ### END SOLUTION


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return _call_original("__neg__", a)

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        return (-grad_output,)
        ### END SOLUTION


class Pow(Function):
    """a ** exponent with a constant exponent (a number or an array)."""

    @staticmethod
    def forward(ctx, a, exponent):
        ### BEGIN SOLUTION
        ctx.save_for_backward(a, exponent)
        ### END SOLUTION
        return _binary_value("pow", a, exponent)

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        a, exponent = ctx.saved_tensors
        return grad_output * exponent * a ** (exponent - 1), None
        ### END SOLUTION


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        ### BEGIN SOLUTION
        out = np.exp(a)
        ctx.save_for_backward(out)  # the output: backward needs nothing else
        return out
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        (out,) = ctx.saved_tensors
        return (grad_output * out,)
        ### END SOLUTION


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ### BEGIN SOLUTION
        ctx.save_for_backward(a)
        return np.log(a)
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        (a,) = ctx.saved_tensors
        return (grad_output / a,)
        ### END SOLUTION


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        ### BEGIN SOLUTION
        out = np.sqrt(a)
        ctx.save_for_backward(out)  # the output: backward needs nothing else
        return out
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        (out,) = ctx.saved_tensors
        return (grad_output / (2 * out),)
        ### END SOLUTION

# %% [markdown]
# ### Check step 5
#
# Each formula against finite differences, in float64 (float32 rounding would swamp a
# step of `1e-6`). `a` has shape `(3, 1)` and `b` shape `(1, 4)`, so every case also
# exercises unbroadcasting.

# %%
rng = np.random.default_rng(0)
a = Tensor(rng.standard_normal((3, 1)), dtype=np.float64, requires_grad=True)
b = Tensor(rng.uniform(0.5, 2.0, (1, 4)), dtype=np.float64, requires_grad=True)
binary_cases = {"add": Add, "sub": Sub, "mul": Mul, "div": Div}
for name, function in binary_cases.items():
    a.zero_grad(), b.zero_grad()
    function.apply(a, b).backward(np.ones((3, 4)))
    for t in (a, b):
        check_grad(t, lambda: float(function.apply(a, b).data.sum()))
unary_cases = [(Neg, ()), (Pow, (3.0,)), (Exp, ()), (Log, ()), (Sqrt, ())]  # (Function, constants)
for function, constants in unary_cases:
    b.zero_grad()
    function.apply(b, *constants).backward(np.ones((1, 4)))
    check_grad(b, lambda: float(function.apply(b, *constants).data.sum()))
c = Tensor([2.0], dtype=np.float64, requires_grad=True)
Sub.apply(10.0, c).backward()  # a constant on the left
assert c.grad.tolist() == [-1.0]
e = Exp.apply(b)
(kept,) = e.grad_fn.ctx.saved_tensors
assert np.shares_memory(kept, e.data), "exp keeps its output (the array it returned), not a copy or its input"
assert len(Mul.apply(a, b).grad_fn.ctx.saved_tensors) == 2, "mul keeps both operands"
print("OK: add, sub, mul, div, neg, pow, exp, log and sqrt match finite differences")

# %% [markdown]
# ## Step 6: matrix multiplication
#
# For `C = A @ B` with `A (m, k)` and `B (k, n)`, each `C[i, j] = sum_p A[i, p] B[p, j]`,
# so `dL/dA = G @ B.T` (shape `(m, k)`) and `dL/dB = A.T @ G` (shape `(k, n)`), where
# `G = dL/dC`. Two details make it general:
#
# - **1-D operands.** numpy treats a 1-D left operand as a row `(1, k)` and a 1-D right
#   operand as a column `(k, 1)`, then drops that axis from the result. Backward undoes
#   this: view the operands as 2-D, put the dropped axis back into `G`, apply the
#   formulas, and reshape the gradients to the operands' shapes.
# - **Batches.** `(5, m, k) @ (k, n)` broadcasts `B` over the batch; its gradient is the
#   sum over the batch, which `_unbroadcast` does on the 2-D view of `B`.
#
# A worked check with `A = [[1, 2]]`, `B = [[3], [4]]`, `G = [[1]]`: `dL/dA = G @ B.T =
# [[3, 4]]` and `dL/dB = A.T @ G = [[1], [2]]`.

# %% nbgrader={"grade": false, "grade_id": "matmul-backward", "locked": false, "schema_version": 3, "solution": true}
#| export
class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ### BEGIN SOLUTION
        ctx.save_for_backward(a, b)
        ### END SOLUTION
        return _binary_value("matmul", a, b)

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        a, b = (np.asarray(x) for x in ctx.saved_tensors)
        a2 = a[np.newaxis, :] if a.ndim == 1 else a  # a row (1, k)
        b2 = b[:, np.newaxis] if b.ndim == 1 else b  # a column (k, 1)
        g = grad_output
        if b.ndim == 1:
            g = np.expand_dims(g, -1)
        if a.ndim == 1:
            g = np.expand_dims(g, -2)
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad_b = None
        if need_a:
            grad_a = _unbroadcast(g @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if need_b:
            grad_b = _unbroadcast(np.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape)
        return grad_a, grad_b
        ### END SOLUTION

# %% [markdown]
# ### Check step 6

# %%
A = Tensor([[1.0, 2.0]], requires_grad=True)
B = Tensor([[3.0], [4.0]], requires_grad=True)
MatMul.apply(A, B).backward()
assert A.grad.tolist() == [[3.0, 4.0]] and B.grad.tolist() == [[1.0], [2.0]]
shapes = [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
          ((2, 1, 3, 4), (5, 4, 2))]
for a_shape, b_shape in shapes:
    a = Tensor(rng.standard_normal(a_shape), dtype=np.float64, requires_grad=True)
    b = Tensor(rng.standard_normal(b_shape), dtype=np.float64, requires_grad=True)
    out = MatMul.apply(a, b)
    weights = rng.standard_normal(out.shape)
    out.backward(weights)
    for t in (a, b):
        check_grad(t, lambda: float(np.sum(MatMul.apply(a, b).data * weights)))
print("OK: matmul gradients for 1-D, 2-D and batched operands")

# %% [markdown]
# ## Step 7: shapes, reductions and indexing
#
# - **reshape / transpose** only move numbers around: the gradient is moved back
#   (reshape to the input's shape; swap the same two axes again).
# - **sum** copies each input element into one output element, so the gradient of an
#   input element is the gradient of its output element: put the reduced axes back as
#   size 1 (unless `keepdims` kept them) and broadcast to the input's shape.
# - **mean** is sum divided by the number of elements reduced.
# - **max / min** pass the gradient to the element that was selected. When several
#   elements tie for the maximum, we **split the gradient equally among them** (each gets
#   `g / count`), so the total gradient is the same as with one winner. (PyTorch's
#   `amax` does the same; its `max(dim)` picks a single index instead.)
# - **indexing** `a[key]` gathers elements; backward scatters the gradient back into a
#   zero array of the input's shape. With fancy indexing an element may be picked twice
#   (`a[[0, 0]]`): `np.add.at` *adds* both contributions, whereas `z[key] += g` would
#   keep only one.
#
# As in step 5, you write what each forward keeps (these save shapes and settings rather
# than arrays, except max and min, which keep the input and the selected value) and each
# backward: the reduced axes put back (`_expand_reduced`), then the rule above.

# %% nbgrader={"grade": false, "grade_id": "shape-backward", "locked": false, "schema_version": 3, "solution": true}
#| export
def _axis_setting(axis):
    """axis as numpy accepts it in every function: None, an int or a tuple."""
    return tuple(axis) if isinstance(axis, list) else axis


def _expand_reduced(grad, axis, keepdims):
    """A reduction's output gradient with the reduced axes back as size 1 (broadcasts to input)."""
    ### BEGIN SOLUTION
    if keepdims or axis is None:  # size-1 axes kept, or a 0-d result
        return grad
    return np.expand_dims(grad, axis if isinstance(axis, tuple) else (axis,))
    ### END SOLUTION


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape=()):
        ### BEGIN SOLUTION
        ctx.input_shape = a.shape
        ### END SOLUTION
        return _call_original("reshape", a, *shape)

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        return (grad_output.reshape(ctx.input_shape),)
        ### END SOLUTION


class Transpose(Function):
    @staticmethod
    def forward(ctx, a, dim0=-2, dim1=-1):
        ### BEGIN SOLUTION
        ctx.dims = (dim0, dim1)
        ### END SOLUTION
        return _call_original("transpose", a, dim0, dim1)

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        return (np.swapaxes(grad_output, *ctx.dims),)
        ### END SOLUTION


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ### BEGIN SOLUTION
        ctx.input_shape, ctx.axis, ctx.keepdims = a.shape, _axis_setting(axis), keepdims
        ### END SOLUTION
        return _call_original("sum", a, axis, keepdims)

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        grad = _expand_reduced(grad_output, ctx.axis, ctx.keepdims)
        return (np.broadcast_to(grad, ctx.input_shape),)
        ### END SOLUTION


class Mean(Function):
    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        out = _call_original("mean", a, axis, keepdims)
        ### BEGIN SOLUTION
        ctx.input_shape, ctx.axis, ctx.keepdims = a.shape, _axis_setting(axis), keepdims
        ctx.count = a.size // out.size if out.size else 1  # elements averaged per output
        ### END SOLUTION
        return out

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        grad = _expand_reduced(grad_output, ctx.axis, ctx.keepdims)
        return (np.broadcast_to(grad, ctx.input_shape) / ctx.count,)
        ### END SOLUTION


def _extremum_forward(ctx, name, a, axis, keepdims):
    """max or min by module 01; saves the input and the result with the reduced axes kept."""
    out = _call_original(name, a, axis, keepdims)
    ### BEGIN SOLUTION
    ctx.axis, ctx.keepdims = _axis_setting(axis), keepdims
    ctx.save_for_backward(a, _expand_reduced(out, ctx.axis, keepdims))
    ### END SOLUTION
    return out


def _extremum_backward(ctx, grad_output):
    """Gradient of max/min: to the selected elements, split equally among ties."""
    ### BEGIN SOLUTION
    a, selected = ctx.saved_tensors
    winners = a == selected
    count = winners.sum(axis=ctx.axis, keepdims=True)
    grad = _expand_reduced(grad_output, ctx.axis, ctx.keepdims)
    return (winners * (grad / count),)
    ### END SOLUTION


class Max(Function):
    """Maximum over axis; the gradient is split equally among tied maxima."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        return _extremum_forward(ctx, "max", a, axis, keepdims)

    backward = staticmethod(_extremum_backward)


class Min(Function):
    """Minimum over axis; the gradient is split equally among tied minima."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        return _extremum_forward(ctx, "min", a, axis, keepdims)

    backward = staticmethod(_extremum_backward)


def _numpy_key(key):
    """The index key with every Tensor replaced by its array (as numpy's np.add.at needs)."""
    if isinstance(key, tuple):
        return tuple(_numpy_key(part) for part in key)
    return key.data if isinstance(key, Tensor) else key


class GetItem(Function):
    @staticmethod
    def forward(ctx, a, key=None):
        out = _call_original("__getitem__", a, key)  # module 01 checks the key
        ### BEGIN SOLUTION
        ctx.input_shape, ctx.key = a.shape, _numpy_key(key)
        ### END SOLUTION
        return out

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        grad = np.zeros(ctx.input_shape, dtype=grad_output.dtype)
        np.add.at(grad, ctx.key, grad_output)  # repeated indices add up
        return (grad,)
        ### END SOLUTION

# %% [markdown]
# ### Check step 7

# %%
base = rng.standard_normal((2, 3, 4))
t = Tensor(base, dtype=np.float64, requires_grad=True)
shape_cases = [
    (Reshape, {"shape": (4, -1)}), (Transpose, {"dim0": 0, "dim1": 2}),
    (Sum, {"axis": 1}), (Sum, {"axis": (0, -1), "keepdims": True}), (Mean, {}),
    (Mean, {"axis": -1}), (Max, {"axis": 1}), (Min, {"axis": (0, 2), "keepdims": True}),
    (GetItem, {"key": (slice(None), [0, 2, 0])}),
]
for function, settings in shape_cases:
    t.zero_grad()
    out = function.apply(t, **settings)
    weights = rng.standard_normal(out.shape)
    out.backward(weights)
    check_grad(t, lambda: float(np.sum(function.apply(t, **settings).data * weights)))
ties = Tensor([[1.0, 5.0, 5.0], [2.0, 0.0, 2.0]], requires_grad=True)
Max.apply(ties, axis=1).backward(np.ones(2))
assert ties.grad.tolist() == [[0.0, 0.5, 0.5], [0.5, 0.0, 0.5]]
picked = Tensor([1.0, 2.0, 3.0], requires_grad=True)
GetItem.apply(picked, key=[0, 0, 2]).backward(np.ones(3))
assert picked.grad.tolist() == [2.0, 0.0, 1.0]
print("OK: reshape, transpose, sum, mean, max, min and indexing gradients")

# %% [markdown]
# ## Step 8: wiring the operations into Tensor
#
# Users write `x @ w + b`, not `Add.apply(MatMul.apply(x, w), b)`. The methods below make
# the operators and methods of module 01 call the Functions. Each **user-level operation
# records exactly one node**: `t.matmul(u)` goes through `@`, which is one `MatMul`;
# `2 - t` is one `Sub` with the constant on the left.
#
# - A binary operator first checks that the other operand is a type module 01 accepts
#   (Tensor, ndarray, numpy scalar, number) and otherwise returns `NotImplemented`, so
#   `t + "a"` still raises Python's usual `TypeError`.
# - `**` differentiates with respect to the base only; a Tensor exponent that requires
#   grad is refused (write `(b * a.log()).exp()` for `a ** b` with a learned `b`).
# - `exp()`, `log()` and `sqrt()` are new Tensor methods.
# - The wrapped methods keep module 01's behaviour for tensors that do not require grad:
#   the same values, dtypes and errors, so module 01's tests still pass with autograd on.
#   (Module 01's own methods stay reachable as `Tensor._autograd_originals`.)

# %%
#| export
_OPERAND_TYPES = (Tensor, np.ndarray, np.generic, numbers.Number)  # what module 01 accepts


def _binary_method(function, reflected, doc):
    """A Tensor operator method that runs function (self on the right when reflected)."""
    def method(self, other):
        if not isinstance(other, _OPERAND_TYPES):
            return NotImplemented
        return function.apply(other, self) if reflected else function.apply(self, other)
    method.__doc__ = doc
    return method


def _tensor_pow(self, exponent):
    """self ** exponent for a constant exponent (number, array, or Tensor without grad)."""
    if isinstance(exponent, Tensor):
        if exponent.requires_grad and is_grad_enabled():
            raise TypeError(
                "** differentiates only with respect to the base; the exponent Tensor requires "
                "grad. For a learned exponent write (b * a.log()).exp() instead of a ** b")
        exponent = exponent.data
    if not isinstance(exponent, _OPERAND_TYPES):
        return NotImplemented
    return Pow.apply(self, exponent)


def _tensor_reshape(self, *shape):
    """Same elements in a new shape (ints or one tuple; one dim may be -1). Differentiable."""
    return Reshape.apply(self, shape=shape)


def _tensor_transpose(self, dim0=-2, dim1=-1):
    """Swap two dimensions (default: the last two). Differentiable."""
    return Transpose.apply(self, dim0=dim0, dim1=dim1)


def _reduction_method(function, doc):
    def method(self, axis=None, keepdims=False):
        return function.apply(self, axis=axis, keepdims=keepdims)
    method.__doc__ = doc
    return method


def _tensor_getitem(self, key):
    """numpy indexing (ints, slices, tuples, bool/int arrays or Tensors). Differentiable."""
    return GetItem.apply(self, key=key)


def _unary_method(function, doc):
    def method(self):
        return function.apply(self)
    method.__doc__ = doc
    return method


_OP_METHODS = {
    "__add__": _binary_method(Add, False, "self + other"),
    "__radd__": _binary_method(Add, True, "other + self"),
    "__sub__": _binary_method(Sub, False, "self - other"),
    "__rsub__": _binary_method(Sub, True, "other - self"),
    "__mul__": _binary_method(Mul, False, "self * other"),
    "__rmul__": _binary_method(Mul, True, "other * self"),
    "__truediv__": _binary_method(Div, False, "self / other"),
    "__rtruediv__": _binary_method(Div, True, "other / self"),
    "__matmul__": _binary_method(MatMul, False, "self @ other (numpy matmul semantics)"),
    "__rmatmul__": _binary_method(MatMul, True, "other @ self (numpy matmul semantics)"),
    "__neg__": _unary_method(Neg, "-self"),
    "__pow__": _tensor_pow,
    "exp": _unary_method(Exp, "e ** x element-wise. Differentiable."),
    "log": _unary_method(Log, "Natural logarithm element-wise (nan below 0). Differentiable."),
    "sqrt": _unary_method(Sqrt, "Square root element-wise (nan below 0). Differentiable."),
    "reshape": _tensor_reshape,
    "transpose": _tensor_transpose,
    "sum": _reduction_method(Sum, "Sum over axis (None: all elements). Differentiable."),
    "mean": _reduction_method(Mean, "Mean over axis (None: all elements). Differentiable."),
    "max": _reduction_method(Max, "Maximum over axis; gradient split equally among ties."),
    "min": _reduction_method(Min, "Minimum over axis; gradient split equally among ties."),
    "__getitem__": _tensor_getitem,
}

# %% [markdown]
# ### Check step 8
#
# A whole expression with operators, and a look at the graph it records.

# %%
_install_on_tensor(_OP_METHODS)
x = Tensor([[1.0, 2.0], [3.0, 4.0]], dtype=np.float64, requires_grad=True)
w = Tensor([[0.5], [-1.0]], dtype=np.float64, requires_grad=True)
loss = ((x @ w + 1.0) ** 2).mean()
print(loss)
print("nodes, output first:", [t.grad_fn for t in _topological_order(loss) if t.grad_fn])
loss.backward()
for t in (x, w):
    check_grad(t, lambda: float((((x @ w + 1.0) ** 2).mean()).item()))
y = x.matmul(w)
assert y.grad_fn.function is MatMul and y.grad_fn.inputs == (x, w)  # one node, not two
assert (2.0 - x).grad_fn.inputs == (None, x)
print("x.grad =", x.grad)
print("OK: operators record one node each and their gradients match finite differences")

# %% [markdown]
# ## Step 9: activations and losses (modules 02 and 04)
#
# Modules 02 to 04 compute with numpy on `x.data`, which autograd cannot see: their
# outputs would have no `grad_fn`. We give each of those classes a Function with an
# **analytic backward**, and replace its `forward` method:
#
# - The new `forward` first runs the class's **original** forward under `no_grad()`: it
#   checks the inputs (with module 02/04's own error messages) and computes the value,
#   so values and dtypes stay exactly as the module defined them.
# - It then calls `Function.apply(*inputs, value=..., layer=self)`, whose forward only
#   saves what backward needs and returns that value. The node is recorded as usual.
#
# You write those forwards (what to save: the input, the output `y`, or only ReLU's
# one-byte-per-element mask) and the backward formulas (`g` is the output gradient):
#
# | class | gradient |
# |---|---|
# | ReLU | `g * (x > 0)` |
# | Sigmoid | `g * y * (1 - y)` |
# | Tanh | `g * (1 - y**2)` |
# | GELU exact, `x * Phi(x)` | `g * (Phi(x) + x * phi(x))`, `phi` the normal density |
# | GELU tanh, `0.5 x (1 + tanh(u))`, `u = c (x + 0.044715 x**3)`, `c = sqrt(2/pi)` | `g * (0.5 (1 + tanh u) + 0.5 x (1 - tanh(u)**2) c (1 + 3 * 0.044715 x**2))` |
# | Softmax along `dim` | `y * (g - sum(g * y, dim))` |
# | CrossEntropyLoss (mean over N rows) | `g * (softmax(logits) - onehot(labels)) / N` |
# | BCELoss (mean over N elements) | `g * (p - t) / (p (1 - p)) / N`, at the clipped `p` (see below) |
#
# Cross-entropy is **fused**: the gradient of log-softmax followed by the negative log
# likelihood collapses to `softmax - onehot`, which is cheaper and more accurate than
# chaining the two backward passes. Labels and BCE targets are constants (gradient None).
#
# The rest of the library needs nothing: `MSELoss`, `Linear`, `Dropout` and `Sequential`
# are written with Tensor operations, which are now differentiable. Two small additions
# for module 07: `Parameter.requires_grad = True` (a class attribute, so every weight is
# trainable by default), and `Module.zero_grad()` to reset the grads of all parameters.

# %% nbgrader={"grade": false, "grade_id": "activation-backward", "locked": false, "schema_version": 3, "solution": true}
#| export
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_CUBIC = 0.044715


class ReLUFunction(Function):
    @staticmethod
    def forward(ctx, x, value=None, layer=None):
        ### BEGIN SOLUTION
        if ctx.needs_input_grad[0]:  # the mask costs a pass over x: only when it will be used
            ctx.save_for_backward(x > 0)
        ### END SOLUTION
        return value

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        (positive,) = ctx.saved_tensors
        return (grad_output * positive,)
        ### END SOLUTION


class SigmoidFunction(Function):
    @staticmethod
    def forward(ctx, x, value=None, layer=None):
        ### BEGIN SOLUTION
        ctx.save_for_backward(value)
        ### END SOLUTION
        return value

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        (y,) = ctx.saved_tensors
        return (grad_output * y * (1 - y),)
        ### END SOLUTION


class TanhFunction(Function):
    @staticmethod
    def forward(ctx, x, value=None, layer=None):
        ### BEGIN SOLUTION
        ctx.save_for_backward(value)
        ### END SOLUTION
        return value

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        (y,) = ctx.saved_tensors
        return (grad_output * (1 - y * y),)
        ### END SOLUTION


def _gelu_derivative(x, approximate):
    """d gelu / dx, exact (erf) or for the tanh approximation."""
    ### BEGIN SOLUTION
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3))
        du_dx = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du_dx
    cdf = 0.5 * (1 + erf(x / math.sqrt(2)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return cdf + x * pdf
    ### END SOLUTION


class GELUFunction(Function):
    @staticmethod
    def forward(ctx, x, value=None, layer=None):
        ### BEGIN SOLUTION
        ctx.save_for_backward(x)
        ctx.approximate = layer.approximate
        ### END SOLUTION
        return value

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        (x,) = ctx.saved_tensors
        return (grad_output * _gelu_derivative(x, ctx.approximate),)
        ### END SOLUTION


class SoftmaxFunction(Function):
    @staticmethod
    def forward(ctx, x, value=None, layer=None):
        ### BEGIN SOLUTION
        ctx.save_for_backward(value)
        ctx.dim = layer.dim
        ### END SOLUTION
        return value

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        (y,) = ctx.saved_tensors
        return (y * (grad_output - np.sum(grad_output * y, axis=ctx.dim, keepdims=True)),)
        ### END SOLUTION

# %% [markdown]
# The loss Functions do their extra work (softmax probabilities, clipped probabilities)
# only when `ctx.needs_input_grad` says a gradient will be needed, so evaluating a loss
# under `no_grad()` costs what module 04's forward costs.
#
# For BCE, module 04 clips `p` to `[eps, 1 - eps]` before taking logs. Outside that range
# the clipped loss is flat, but a zero gradient would leave a saturated wrong prediction
# stuck forever; like PyTorch, we evaluate the formula at the clipped `p` instead, which
# keeps pushing such a prediction back (it equals the true derivative inside the range).

# %%
#| export
def _exported_module(name):
    """The package module `name`, or None if it has not been exported yet (module not done)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise  # the module exists but something it imports is missing: a real error
        return None


_activations = _exported_module("tinytorch.core.activations")
_layers = _exported_module("tinytorch.core.layers")
_losses = _exported_module("tinytorch.core.losses")

# %% nbgrader={"grade": false, "grade_id": "loss-backward", "locked": false, "schema_version": 3, "solution": true}
#| export
class CrossEntropyFunction(Function):
    """Fused log-softmax + negative log likelihood, averaged over the N rows of the logits."""

    @staticmethod
    def forward(ctx, logits, labels, value=None, layer=None):
        ### BEGIN SOLUTION
        if ctx.needs_input_grad[0]:
            probs = np.exp(_losses.log_softmax(Tensor.from_numpy(logits), dim=1).data)
            ctx.save_for_backward(probs, np.asarray(labels))
        ### END SOLUTION
        return value

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        probs, labels = ctx.saved_tensors
        grad = probs.copy()
        rows = np.arange(labels.shape[0])
        grad[rows, labels] -= 1  # softmax - onehot
        return grad * (grad_output / labels.shape[0]), None
        ### END SOLUTION


class BCEFunction(Function):
    """Binary cross-entropy of probabilities p and targets t, averaged over all elements."""

    @staticmethod
    def forward(ctx, p, targets, value=None, layer=None):
        ### BEGIN SOLUTION
        if ctx.needs_input_grad[0]:
            clipped = np.clip(p, layer.eps, 1 - layer.eps)
            ctx.save_for_backward(clipped, np.asarray(targets, dtype=p.dtype))
        ### END SOLUTION
        return value

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        p, t = ctx.saved_tensors
        return grad_output * (p - t) / (p * (1 - p)) / p.size, None
        ### END SOLUTION

# %% [markdown]
# `_recording_forward` builds the replacement `forward` described above, and
# `_install_library_autograd` installs it on each class of modules 02 and 04 that has
# been exported (a class keeps its original as `_forward_without_autograd`, so installing
# twice changes nothing). `enable_autograd()` installs every step of this module; the
# last cell calls it, so `import tinytorch.core.autograd` is all a later module needs.

# %%
#| export
def _recording_forward(original, function):
    """A forward method: the original forward computes the value, function records the node."""
    @functools.wraps(original)
    def forward(self, *inputs):
        with no_grad():
            value = original(self, *inputs)  # checks inputs, computes the value
        return function.apply(*inputs, value=value.data, layer=self)
    return forward


def _give_backward(cls, function):
    """Replace cls.forward by a recording forward (once; the original stays reachable)."""
    if "_forward_without_autograd" not in cls.__dict__:
        cls._forward_without_autograd = cls.forward
        cls.forward = _recording_forward(cls._forward_without_autograd, function)


def _module_zero_grad(self):
    """Set the grad of every parameter of this module (and its children) to None."""
    for parameter in self.parameters():
        parameter.grad = None


def _install_library_autograd():
    """Differentiable forwards for modules 02 and 04, trainable Parameters for module 03."""
    if _activations is not None:
        for name, function in (("ReLU", ReLUFunction), ("Sigmoid", SigmoidFunction),
                               ("Tanh", TanhFunction), ("GELU", GELUFunction),
                               ("Softmax", SoftmaxFunction)):
            _give_backward(getattr(_activations, name), function)
    if _losses is not None:
        _give_backward(_losses.CrossEntropyLoss, CrossEntropyFunction)
        _give_backward(_losses.BCELoss, BCEFunction)
    if _layers is not None:
        _layers.Parameter.requires_grad = True
        _layers.Module.zero_grad = _module_zero_grad


def enable_autograd():
    """Turn autograd on (idempotent): Tensor state, backward(), differentiable operations,
    and gradients for the activations, losses and layers of modules 02 to 04."""
    for methods in (_STATE_METHODS, _ENGINE_METHODS, _OP_METHODS):
        _install_on_tensor(methods)
    _install_library_autograd()

# %%
#| export
enable_autograd()

# %% [markdown]
# ### Check step 9
#
# Module 02 to 04's own classes, now differentiable, against finite differences.

# %%
from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.layers import Linear, Module, Parameter, Sequential
from tinytorch.core.losses import BCELoss, CrossEntropyLoss, MSELoss

x = Tensor(rng.standard_normal((3, 4)), dtype=np.float64, requires_grad=True)
for layer in (ReLU(), Sigmoid(), Tanh(), GELU(), GELU(approximate="tanh"), Softmax(dim=0), Softmax()):
    x.zero_grad()
    out = layer(x)
    weights = rng.standard_normal(out.shape)
    out.backward(weights)
    check_grad(x, lambda: float(np.sum(layer(x).data * weights)))
    print(f"{layer!r:28} grad_fn {out.grad_fn}: OK")
labels = Tensor([0, 3, 1], dtype=np.int64)
x.zero_grad()
CrossEntropyLoss()(x, labels).backward()
check_grad(x, lambda: CrossEntropyLoss()(x, labels).item())
p = Tensor(rng.uniform(0.1, 0.9, (3, 4)), dtype=np.float64, requires_grad=True)
targets = Tensor(rng.integers(0, 2, (3, 4)), dtype=np.float64)
BCELoss()(p, targets).backward()
check_grad(p, lambda: BCELoss()(p, targets).item())
assert Linear(2, 3, rng=0).weight.requires_grad and Parameter([1.0]).requires_grad
(mask,) = ReLU()(x).grad_fn.ctx.saved_tensors
assert mask.dtype == np.bool_ and mask.shape == x.shape, "ReLU keeps only the one-byte mask x > 0"
print("OK: activations, cross-entropy and BCE have analytic gradients; parameters require grad")

# %% [markdown]
# ## Graded tests
#
# Each cell checks one step against finite differences or hand-computed values.

# %% nbgrader={"grade": true, "grade_id": "test-grad-mode", "locked": true, "points": 1, "schema_version": 3, "solution": false}
w = Tensor([1.0, 2.0], requires_grad=True)
with no_grad():
    y = w * 3.0
    assert not is_grad_enabled()
assert is_grad_enabled() and y.grad_fn is None and not y.requires_grad
guard = no_grad()
try:
    with guard:
        raise ValueError("inside no_grad")
except ValueError:
    pass
assert is_grad_enabled()


@no_grad()
def scaled(t):
    return t * 2.0


assert scaled(w).grad_fn is None and is_grad_enabled()

# %% nbgrader={"grade": true, "grade_id": "test-tensor-state", "locked": true, "points": 1, "schema_version": 3, "solution": false}
w = Tensor(np.arange(3.0), requires_grad=True)
assert w.requires_grad and w.is_leaf and w.grad is None
assert repr(w) == "Tensor([0., 1., 2.], shape=(3,), dtype=float32, requires_grad=True)"
d = w.detach()
assert d.grad_fn is None and not d.requires_grad and np.shares_memory(d.data, w.data)
for bad in (lambda: Tensor([1, 2], dtype=np.int64, requires_grad=True),
            lambda: Tensor([1, 2], dtype=np.int32).requires_grad_()):
    try:
        bad()
    except TypeError:
        pass
    else:
        raise AssertionError("int tensors must not require grad")
y = w * 2.0
try:
    y.requires_grad = False
except RuntimeError:
    pass
else:
    raise AssertionError("requires_grad cannot be switched off on a computed tensor")

# %% nbgrader={"grade": true, "grade_id": "test-function-apply", "locked": true, "points": 2, "schema_version": 3, "solution": false}
class Cube(Function):
    @staticmethod
    def forward(ctx, x, scale=1.0):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return scale * x ** 3

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return (grad_output * 3 * ctx.scale * x ** 2,)


x = Tensor([2.0, -1.0], requires_grad=True)
y = Cube.apply(x, scale=2.0)
assert y.tolist() == [16.0, -2.0] and y.grad_fn.function is Cube and y.grad_fn.inputs == (x,)
assert repr(y.grad_fn) == "<CubeBackward>"
assert y.grad_fn.ctx.saved_tensors[0] is x.data
assert Cube.apply(Tensor([2.0])).grad_fn is None
try:
    Context().save_for_backward(x)
except TypeError:
    pass
else:
    raise AssertionError("save_for_backward must refuse Tensors")

# %% nbgrader={"grade": true, "grade_id": "test-backward-engine", "locked": true, "points": 3, "schema_version": 3, "solution": false}
assert _unbroadcast(np.ones((2, 3, 4)), (3, 1)).tolist() == [[8.0]] * 3
x = Tensor([1.5, -0.5], dtype=np.float64, requires_grad=True)
y = Cube.apply(x)
z = Cube.apply(y)  # x ** 9
z.backward(np.ones(2))
np.testing.assert_allclose(x.grad.data, 9 * x.data ** 8)
deep = x
for _ in range(3000):  # deeper than Python's recursion limit
    deep = deep * 1.0
deep.sum().backward()
np.testing.assert_allclose(x.grad.data, 9 * x.data ** 8 + 1.0)  # gradients accumulate
try:
    z.backward(np.ones(2))
except RuntimeError as err:
    assert "freed" in str(err)
else:
    raise AssertionError("a second backward through a freed graph must raise")
for bad, error in ((lambda: (x * 2.0).backward(), RuntimeError),
                   (lambda: Tensor([1.0]).backward(), RuntimeError)):
    try:
        bad()
    except error:
        pass
    else:
        raise AssertionError(f"expected {error.__name__}")

# %% nbgrader={"grade": true, "grade_id": "test-elementwise", "locked": true, "points": 3, "schema_version": 3, "solution": false}
rng = np.random.default_rng(10)
a = Tensor(rng.standard_normal((3, 1)), dtype=np.float64, requires_grad=True)
b = Tensor(rng.uniform(0.5, 2.0, (4,)), dtype=np.float64, requires_grad=True)
expressions = [
    lambda: (a + b) * (a - b) / b,
    lambda: 2.0 - a * 3.0 + 1.0 / b,
    lambda: -(a ** 3) + b ** 0.5,
    lambda: a.exp() * b.log() + b.sqrt(),
]
for expression in expressions:
    a.zero_grad(), b.zero_grad()
    out = expression()
    weights = rng.standard_normal(out.shape)
    out.backward(weights)
    for t in (a, b):
        check_grad(t, lambda: float(np.sum(expression().data * weights)))
out = b.sqrt()
assert np.shares_memory(out.grad_fn.ctx.saved_tensors[0], out.data), "sqrt keeps its output"
f32 = Tensor([1.0, 2.0], requires_grad=True)
(f32 * np.array([1.0, 3.0])).sum().backward()  # the product is float64
assert f32.grad.dtype == np.float32 and f32.grad.tolist() == [1.0, 3.0]

# %% nbgrader={"grade": true, "grade_id": "test-matmul", "locked": true, "points": 2, "schema_version": 3, "solution": false}
for a_shape, b_shape in (((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((4, 2, 3), (1, 3, 5))):
    a = Tensor(rng.standard_normal(a_shape), dtype=np.float64, requires_grad=True)
    b = Tensor(rng.standard_normal(b_shape), dtype=np.float64, requires_grad=True)
    out = a @ b
    weights = rng.standard_normal(out.shape)
    out.backward(weights)
    for t in (a, b):
        check_grad(t, lambda: float(np.sum((a @ b).data * weights)))

# %% nbgrader={"grade": true, "grade_id": "test-shape-reduction", "locked": true, "points": 3, "schema_version": 3, "solution": false}
t = Tensor(rng.standard_normal((2, 3, 4)), dtype=np.float64, requires_grad=True)
expressions = [
    lambda: t.reshape(6, 4).transpose() * 2.0,
    lambda: t.sum(axis=(0, 2)) + t.mean(axis=1, keepdims=True).sum(),
    lambda: t.max(axis=-1, keepdims=True) - t.min(axis=0),
    lambda: t[1, [0, 0, 2], 1:3],
]
for expression in expressions:
    t.zero_grad()
    out = expression()
    weights = rng.standard_normal(out.shape)
    out.backward(weights)
    check_grad(t, lambda: float(np.sum(expression().data * weights)))
ties = Tensor([3.0, 1.0, 3.0, 3.0], requires_grad=True)
ties.max().backward()
np.testing.assert_allclose(ties.grad.data, [1 / 3, 0.0, 1 / 3, 1 / 3])

# %% nbgrader={"grade": true, "grade_id": "test-activations", "locked": true, "points": 2, "schema_version": 3, "solution": false}
x = Tensor(rng.standard_normal((2, 5)), dtype=np.float64, requires_grad=True)
for layer in (ReLU(), Sigmoid(), Tanh(), GELU(), GELU(approximate="tanh"), Softmax(dim=0), Softmax(dim=-1)):
    x.zero_grad()
    out = layer(x)
    weights = rng.standard_normal(out.shape)
    out.backward(weights)
    check_grad(x, lambda: float(np.sum(layer(x).data * weights)))
    assert out.dtype == np.float64

# %% nbgrader={"grade": true, "grade_id": "test-losses", "locked": true, "points": 2, "schema_version": 3, "solution": false}
logits = Tensor(rng.standard_normal((4, 3)), dtype=np.float64, requires_grad=True)
labels = Tensor([2, 0, 0, 1], dtype=np.int64)
CrossEntropyLoss()(logits, labels).backward()
check_grad(logits, lambda: CrossEntropyLoss()(logits, labels).item())
probs = Tensor(rng.uniform(0.05, 0.95, (6,)), dtype=np.float64, requires_grad=True)
truth = Tensor(rng.integers(0, 2, 6), dtype=np.float64)
BCELoss()(probs, truth).backward()
check_grad(probs, lambda: BCELoss()(probs, truth).item())
pred = Tensor(rng.standard_normal((3, 2)), dtype=np.float64, requires_grad=True)
MSELoss()(pred, np.zeros((3, 2))).backward()
np.testing.assert_allclose(pred.grad.data, 2 * pred.data / 6)

# %% nbgrader={"grade": true, "grade_id": "test-end-to-end", "locked": true, "points": 2, "schema_version": 3, "solution": false}
model = Sequential(Linear(4, 5, rng=1), ReLU(), Linear(5, 3, rng=2))
for param in model.parameters():
    param.data = param.data.astype(np.float64)
inputs = Tensor(rng.standard_normal((6, 4)), dtype=np.float64)
targets = Tensor(rng.integers(0, 3, 6), dtype=np.int64)
model.zero_grad()
CrossEntropyLoss()(model(inputs), targets).backward()
for param in model.parameters():
    check_grad(param, lambda: CrossEntropyLoss()(model(inputs), targets).item())
model.zero_grad()
assert all(param.grad is None for param in model.parameters())

# %% [markdown]
# ## Systems analysis: what recording the graph costs
#
# Autograd is not free. While recording, every operation allocates a `Context` and a
# `Node` and keeps arrays alive for its backward; the backward pass then does roughly
# twice the forward's arithmetic (each matmul needs two matmuls backwards). We measure
# both effects on a small MLP, `Linear(64, 32) -> ReLU -> Linear(32, 10)` with
# cross-entropy, on a batch of 64. (Its matrix products are small enough that numpy's BLAS
# runs each on one thread; multi-threaded products get stalled whenever another program
# takes a core, which makes timings on a shared machine very noisy.)
#
# 1. **Time**: the forward pass under `no_grad()`, the forward pass while recording, and
#    forward plus backward, timed with module 01's helpers (`tinytorch.utils.timing`).
#    Each variant runs in batches of calls lasting at least 2 ms, measured in
#    alternating rounds (A B C A B C ...) so machine drift hits all three; we report the
#    median and the IQR/median spread.
# 2. **Memory**: the arrays the recorded graph keeps alive (the `saved_tensors` of all its
#    nodes), compared with the parameters' bytes, for two batch sizes. Saved arrays that
#    *are* parameter memory (a matmul saves its weight) cost nothing extra; the rest is
#    activation memory, which grows with the batch.

# %%
from tinytorch.utils.timing import (describe_environment, environment, measure_interleaved, measure_timer,
                                   required_sample_ns)

mlp = Sequential(Linear(64, 32, rng=0), ReLU(), Linear(32, 10, rng=1))
criterion = CrossEntropyLoss()
batch = Tensor.randn(64, 64, rng=2)
batch_labels = Tensor(np.random.default_rng(3).integers(0, 10, 64), dtype=np.int64)


def forward_no_grad():
    with no_grad():
        return criterion(mlp(batch), batch_labels)


def forward_recording():
    return criterion(mlp(batch), batch_labels)


def forward_backward():
    mlp.zero_grad()
    criterion(mlp(batch), batch_labels).backward()


timer = measure_timer()
MIN_SAMPLE_NS = required_sample_ns(timer.overhead_ns, floor_ns=2_000_000)
print(describe_environment(environment(timer, MIN_SAMPLE_NS)))
timings = measure_interleaved({"forward, no_grad": forward_no_grad,
                               "forward, recording": forward_recording,
                               "forward + backward": forward_backward}, repeats=25, min_sample_ns=MIN_SAMPLE_NS)
base_median = timings["forward, no_grad"].median_ns
for name, timing in timings.items():
    median = timing.median_ns
    flag = f"  {timing.warning}" if timing.warning else ""
    print(f"{name:20s} median {median / 1e3:8.1f} us  ({median / base_median:4.2f}x no_grad), "
          f"IQR/median {timing.iqr_over_median:.1%} (n={timing.n}){flag}")

# %%
def graph_memory(loss, parameters):
    """(nodes, saved arrays, saved bytes that are parameter memory, saved bytes that are not)."""
    nodes = [t.grad_fn for t in _topological_order(loss) if t.grad_fn is not None]
    arrays = {id(a): a for node in nodes for a in node.ctx.saved_tensors if isinstance(a, np.ndarray)}
    shared = extra = 0
    for array in arrays.values():
        if any(np.shares_memory(array, p.data) for p in parameters):
            shared += array.nbytes
        else:
            extra += array.nbytes
    return len(nodes), len(arrays), shared, extra


params = mlp.parameters()
param_bytes = sum(p.data.nbytes for p in params)
print(f"parameters: {len(params)} tensors, {param_bytes:,} bytes")
for size in (64, 512):
    inputs = Tensor.randn(size, 64, rng=4)
    labels = Tensor(np.random.default_rng(5).integers(0, 10, size), dtype=np.int64)
    loss = criterion(mlp(inputs), labels)
    nodes, count, shared, extra = graph_memory(loss, params)
    print(f"batch {size:4d}: {nodes} nodes keep {count} saved arrays, {shared + extra:,} bytes, of which "
          f"{shared:,} are the parameters themselves and {extra:,} are activations "
          f"({extra / param_bytes:.2f}x the parameter bytes)")
    loss.backward()
    assert loss.grad_fn.freed  # backward released every saved array
    mlp.zero_grad()

# %% [markdown]
# What the two cells above print, and what to look for in your own numbers:
#
# - **Recording overhead** is the gap between the first two lines: a `Context`, a `Node`
#   and a few attribute writes per operation, plus the work the Functions do only when a
#   gradient will be needed (cross-entropy's softmax). On a small network where each
#   numpy call is short, this fixed Python cost per operation is a visible fraction.
# - **Backward** roughly doubles the arithmetic of the forward pass (two matmuls per
#   forward matmul), so forward plus backward usually costs a few times the forward.
# - **Memory**: the saved arrays that are not parameters (the input batch, the hidden
#   activations, ReLU's mask, the softmax probabilities) grow linearly with the batch
#   size, while the parameter bytes stay fixed. This is why training needs far more
#   memory than inference, why `no_grad()` matters for evaluation, and why freeing the
#   graph after `backward()` matters. Later modules (quantization, memoization) revisit
#   this trade of memory for speed.

# %% [markdown]
# ## Summary
#
# - A `Function` pairs a forward on arrays with its analytic backward; `Function.apply`
#   records a `Node` (the Function, its `Context`, its inputs) as the result's `grad_fn`
#   whenever grad mode is on and an input requires grad.
# - `backward()` orders the graph topologically with an explicit stack, sends gradients
#   back node by node, unbroadcasts each to its input's shape and dtype, accumulates into
#   the leaves' `.grad`, and frees the graph.
# - `no_grad()` turns recording off and always restores the previous mode.
# - Every Tensor operation of module 01, plus `exp`, `log` and `sqrt`, is differentiable;
#   the activations and losses of modules 02 and 04 got analytic backwards (cross-entropy
#   fused as `softmax - onehot`), and every `Parameter` requires grad.
# - Measured: recording and backward cost time, and the graph keeps activation memory
#   alive in proportion to the batch size; your numbers are in the cells above.
#
# Module 07 uses the gradients this module computes to update the weights.
