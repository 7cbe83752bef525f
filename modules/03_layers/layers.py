# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 03: Layers
#
# > Layers: Parameter marks trainable weights, Module finds all of them, and Linear, Dropout and Sequential build networks on top.
#
# ## Why layers matter
#
# A neural network is a function with many adjustable numbers inside it. Computing its
# output is the easy part; the hard part is the bookkeeping around those numbers. An
# optimizer needs a list of *every* weight (forget one and it silently never learns),
# saving and loading a model needs a stable name for each weight, dropout behaves
# differently in training and in evaluation, and when a shape goes wrong you want to
# print the model and see its structure.
#
# Writing that bookkeeping by hand for every model is tedious and easy to get wrong. In
# this module you write it once, in a base class `Module`, that notices every weight and
# every sub-layer the moment it is assigned as an attribute. Then you build three layers
# on it: `Linear` (the fully connected layer, `y = x @ W + b`), `Dropout` (a regulariser
# that zeroes random activations during training) and `Sequential` (a container that
# chains layers). The design follows PyTorch's `torch.nn`, so what you learn here
# transfers directly.

# %%
#| default_exp core.layers

# %% [markdown]
# ## The idea: weights that register themselves
#
# Here is a two-layer network written in plain numpy. Everything works, but the list of
# weights at the end is written by hand, and so is the parameter count. A layer with
# `n_in` inputs and `n_out` outputs has a weight matrix of `n_in * n_out` numbers and a
# bias of `n_out` numbers.
#
# We store the weight as `(in_features, out_features)`, so the forward pass is
# `x @ W + b` with no transpose: a batch `(N, in)` times `(in, out)` gives `(N, out)`.
# (PyTorch stores the transpose, `(out, in)`, and computes `x @ W.T + b`; the numbers are
# the same.)

# %%
import numpy as np

rng = np.random.default_rng(0)
W1 = rng.uniform(-0.5, 0.5, size=(4, 3)).astype(np.float32)  # 4 inputs -> 3 hidden units
b1 = np.zeros(3, dtype=np.float32)
W2 = rng.uniform(-0.5, 0.5, size=(3, 2)).astype(np.float32)  # 3 hidden -> 2 outputs
b2 = np.zeros(2, dtype=np.float32)

x = np.ones((5, 4), dtype=np.float32)        # a batch of 5 samples with 4 features
hidden = np.maximum(x @ W1 + b1, 0.0)        # (5, 4) @ (4, 3) + (3,) -> (5, 3), then ReLU
y = hidden @ W2 + b2                         # (5, 3) @ (3, 2) + (2,) -> (5, 2)

weights = [W1, b1, W2, b2]  # what an optimizer needs; written by hand, easy to get wrong
# By hand: layer 1 has 4*3 + 3 = 15 numbers, layer 2 has 3*2 + 2 = 8, so 23 in all.
assert sum(w.size for w in weights) == 23
print("output shape", y.shape, "| parameters:", sum(w.size for w in weights))

# %% [markdown]
# With this module the same network becomes
#
# ```python
# model = Sequential(Linear(4, 3), ReLU(), Linear(3, 2))
# y = model(Tensor(x))
# model.parameters()        # [weight, bias, weight, bias], found automatically
# model.named_parameters()  # [("0.weight", ...), ("0.bias", ...), ("2.weight", ...), ("2.bias", ...)]
# ```
#
# The trick that makes this work is Python's `__setattr__` hook: when a layer runs
# `self.weight = Parameter(...)` inside its `__init__`, `Module.__setattr__` sees that
# the value is a `Parameter` and records it under the name `"weight"`. When a model runs
# `self.encoder = Linear(4, 3)`, it sees a `Module` and records a *child*. The model is
# then a tree of modules, and every question (all parameters, their names, switch to
# evaluation mode, save, load) is a walk over that tree.

# %%
#| export
import math
import numbers
import operator
from collections.abc import Mapping

import numpy as np
from fastcore.basics import patch

from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## Step 1: `Parameter` and the `Module` base class
#
# `Parameter` is a `Tensor` subclass with no new behaviour: its *type* is the marker that
# says "this tensor is a trainable weight". It is created exactly like a Tensor
# (`Parameter(data, dtype=None)` copies and defaults to float32). Arithmetic on a
# Parameter gives a plain `Tensor` (module 01's operators build results with
# `Tensor.from_numpy`), which is what we want: `x @ weight` is an activation, not a weight.
# A later module (autograd) marks every Parameter as requiring a gradient, so keep the
# forward passes in this module made of Tensor operations (`@`, `+`, `*`, ...): then
# gradients flow through them with no extra work.
#
# `Module` keeps two ordered dicts, `_parameters` (name -> Parameter) and `_modules`
# (name -> child Module). Python dicts keep insertion order, which gives us
# *registration order* for free, and assigning to an existing key keeps its position,
# so re-assigning `self.weight` replaces the weight in place. Your part:
#
# - `__init__`: create both dicts and set `training = True`. They must be created with
#   `object.__setattr__`, because our own `__setattr__` (below) needs them to exist.
# - `__setattr__(name, value)`: if `value` is a Parameter, register it in `_parameters`
#   (and drop `name` from `_modules`); if it is a Module, register it in `_modules` (and
#   drop it from `_parameters`); anything else (e.g. `self.bias = None`) removes `name`
#   from both. In every case, finally store the attribute normally with
#   `object.__setattr__(self, name, value)`. (The check above your code is given: if a
#   subclass forgets `super().__init__()`, the dicts do not exist yet, and it raises an
#   `AttributeError` that says to call `super().__init__()` first.)
#
# The rest of the class is given: `forward` raises `NotImplementedError` (every layer
# defines its own), `__call__` calls `forward`, and `children()`, `modules()`,
# `parameters()` and `eval()` are one-line wrappers around the methods you write in
# steps 2 to 4. Each of those gets a cell of its own: fastcore's `@patch` decorator adds a
# function to the class named in its `self:` annotation, so
# `@patch def train(self: Module, mode=True)` defines `Module.train` (nbdev projects write
# classes this way). `__repr__` prints the module tree like PyTorch: a module without
# children prints as `Name(extra_repr())`; one with children lists each as
# `(name): child`, indented.

# %%
#| export
class Parameter(Tensor):
    """A Tensor that is a trainable weight of a Module (the type is the marker).

    Parameter(data, dtype=None) copies data, like Tensor (float32 by default).
    Operations on Parameters return plain Tensors.
    """

    def __repr__(self):
        text = np.array2string(self.data, separator=", ", prefix="Parameter(")
        one_line = " ".join(line.strip() for line in text.splitlines())
        text = one_line if len(one_line) <= 60 else text
        return f"Parameter({text}, shape={self.shape}, dtype={self.dtype})"

# %% nbgrader={"grade": false, "grade_id": "module-registration", "locked": false, "schema_version": 3, "solution": true}
#| export
class Module:
    """Base class of every layer and model.

    Attributes that are Parameters or Modules are registered when assigned, in order;
    parameters(), named_parameters(), train()/eval(), state_dict() and load_state_dict()
    walk the resulting tree (the methods steps 2 to 4 write are added with @patch).
    Subclasses call super().__init__() first and define forward().
    """

    def __init__(self):
        """No parameters, no children, training mode."""
        ### BEGIN SOLUTION
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)
        ### END SOLUTION

    def __setattr__(self, name, value):
        """Set an attribute; a Parameter or Module value is also registered under name."""
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot set {name!r} on {type(self).__name__} before Module.__init__ ran; "
                f"call super().__init__() first in {type(self).__name__}.__init__")
        ### BEGIN SOLUTION
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)
        ### END SOLUTION

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # ---- running ----
    def forward(self, *args, **kwargs):
        """The layer's computation; every subclass defines its own."""
        raise NotImplementedError(
            f"{type(self).__name__} does not define forward(); a Module subclass must "
            "implement forward(self, ...) to say what calling it computes")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- the module tree (step 2 adds named_modules and named_parameters) ----
    def named_children(self):
        """[(name, child)] for the direct child Modules, in registration order, each once."""
        return _first_occurrences(self._modules.items())

    def children(self):
        """The direct child Modules, in registration order, each once."""
        return [child for _, child in self.named_children()]

    def modules(self):
        """This module and all its descendants, depth first, each once."""
        return [module for _, module in self.named_modules()]

    def parameters(self):
        """Every Parameter of this module and its descendants, each once, in order."""
        return [param for _, param in self.named_parameters()]

    # ---- modes (step 3 adds train) ----
    def eval(self):
        """Evaluation mode (same as train(False)); returns self."""
        return self.train(False)

    # ---- saving and loading: step 4 adds state_dict and load_state_dict ----

    # ---- printing ----
    def extra_repr(self):
        """The text inside this module's parentheses in repr; layers override it."""
        return ""

    def _repr_items(self):
        """(name, layer) pairs that repr lists under this module: its registered children."""
        return list(self._modules.items())

    # ---- __repr__: step 2 adds it ----

# %% [markdown]
# Two small helpers are given. `_join` builds a dotted name. `_first_occurrences(pairs)`
# keeps the `(name, obj)` pairs whose object has not been seen earlier in the list,
# comparing objects by **identity** (`id(obj)`), not by value (step 2 says why).

# %%
#| export
def _join(prefix, name):
    """Dotted name of `name` inside `prefix` ("" for the root)."""
    return f"{prefix}.{name}" if prefix else name


def _first_occurrences(pairs):
    """The (name, obj) pairs whose obj did not occur earlier in pairs (compared by identity)."""
    seen, kept = set(), []
    for name, obj in pairs:
        if id(obj) not in seen:
            seen.add(id(obj))
            kept.append((name, obj))
    return kept

# %% [markdown]
# ### Check step 1
#
# A toy module registers a weight, a child and a plain number. Re-assigning the weight
# keeps its place; assigning `None` to a parameter name unregisters it. The child's list
# of parameters is not filled in yet (step 2), so this cell looks at the dicts directly.

# %%
class Toy(Module):
    def __init__(self):
        super().__init__()
        self.scale = Parameter([2.0])
        self.inner = Module()
        self.shift = Parameter(np.zeros(3))
        self.note = "not registered"


toy = Toy()
assert list(toy._parameters) == ["scale", "shift"] and list(toy._modules) == ["inner"]
assert toy.training is True and toy.shift.dtype == np.float32
toy.scale = Parameter([3.0])             # replaced in place: still first
assert list(toy._parameters) == ["scale", "shift"] and toy.scale.tolist() == [3.0]
toy.shift = None                         # a non-Parameter unregisters the name
assert list(toy._parameters) == ["scale"] and toy.shift is None
assert type(toy.scale * 2) is Tensor     # arithmetic on a Parameter gives a plain Tensor
print(repr(toy.scale))
for bad_call in (lambda: toy(1.0), lambda: Module()(1.0)):
    try:
        bad_call()
    except NotImplementedError as err:
        print("NotImplementedError:", err)
    else:
        raise AssertionError("a Module without forward must raise NotImplementedError")


class Forgetful(Module):
    def __init__(self):
        self.weight = Parameter([1.0])   # no super().__init__() first


try:
    Forgetful()
except AttributeError as err:
    print("AttributeError:", err)
else:
    raise AssertionError("assigning before Module.__init__ must raise AttributeError")
print("OK: Parameter, registration order, replacement and unregistering work")

# %% [markdown]
# ## Step 2: walking the module tree
#
# A model is a tree: its children have children of their own. `named_parameters()` needs
# a *dotted* name for every parameter, built from the path to it: the weight of child
# `"0"` of child `"1"` is `"1.0.weight"`. Two layers can also *share* one weight (weight
# tying, e.g. an embedding and the output layer of a language model); it is one set of
# numbers, so it must be counted, updated and saved once. That is why objects are
# compared by identity (`id`): comparing by value would merge two different weights that
# happen to hold equal numbers. You write two methods:
#
# - `named_modules()`: a depth-first list of `(dotted name, module)`, starting with
#   `("", self)` and then, for each child in registration order, the child's own walk
#   with the prefix extended by the child's name (`_join(prefix, name)`). Keep a set of
#   the `id`s already visited and skip a module found again, so a shared sub-module is
#   listed once. (A small recursive function inside the method does this naturally.)
# - `named_parameters()`: for every module of `self.named_modules()`, for every entry of
#   its `_parameters`, the pair `(dotted name, parameter)`; then keep first occurrences
#   with the given `_first_occurrences`, so a shared weight appears once, under the first
#   name it was reached by.
#
# - `__repr__()`: the tree as text, like PyTorch. A module whose `self._repr_items()` (its
#   children; `Sequential` overrides the hook to list every layer) is empty prints as
#   `Name(extra)`, with `extra = self.extra_repr()`. Otherwise it prints `Name(`, then one
#   line per item, `(key): ` followed by `repr(layer)`, each indented by two spaces, then
#   `)`; an `extra` that is not empty comes first, as a line of its own. A child's repr may
#   span several lines: indent every one of its lines (`text.replace("\n", "\n  ")`),
#   which is how nested containers come out readable.
#
# The order is the one PyTorch uses: a module's own parameters (in registration order)
# come before those of its children, and children come in registration order.

# %% nbgrader={"grade": false, "grade_id": "module-traversal", "locked": false, "schema_version": 3, "solution": true}
#| export
@patch(nm="named_modules")  # Module.named_modules; a private module name, so no public name is left None
def _named_modules(self: Module):
    """[(dotted name, module)] for this module ("") and all descendants, depth first, each once."""
    ### BEGIN SOLUTION
    found, seen = [], set()

    def visit(module, prefix):
        if id(module) in seen:
            return
        seen.add(id(module))
        found.append((prefix, module))
        for name, child in module._modules.items():
            visit(child, _join(prefix, name))

    visit(self, "")
    return found
    ### END SOLUTION


@patch(nm="named_parameters")  # Module.named_parameters; a private module name, so no public name is left None
def _named_parameters(self: Module):
    """[(dotted name, Parameter)], e.g. ("0.weight", p); each Parameter once, in order."""
    ### BEGIN SOLUTION
    pairs = [(_join(prefix, name), param)
             for prefix, module in self.named_modules()
             for name, param in module._parameters.items()]
    return _first_occurrences(pairs)
    ### END SOLUTION


@patch
def __repr__(self: Module):
    """Name(extra) for a leaf; Name(\\n  (child): ...\\n) for a module with children."""
    ### BEGIN SOLUTION
    name, extra = type(self).__name__, self.extra_repr()
    items = self._repr_items()
    if not items:
        return f"{name}({extra})"
    lines = ([extra] if extra else []) + [f"({key}): {layer!r}" for key, layer in items]
    body = "".join("  " + line.replace("\n", "\n  ") + "\n" for line in lines)
    return f"{name}(\n{body})"
    ### END SOLUTION

# %% [markdown]
# ### Check step 2
#
# Two nested toy modules, one of them holding a reference to a weight it shares with its
# parent. The shared weight appears once, under the first name it was reached by.

# %%
class Pair(Module):
    def __init__(self, shared=None):
        super().__init__()
        self.w = Parameter(np.ones((2, 2))) if shared is None else shared
        self.b = Parameter(np.zeros(2))


class Outer(Module):
    def __init__(self):
        super().__init__()
        self.gain = Parameter([1.0])
        self.first = Pair()
        self.second = Pair(shared=self.first.w)   # weight tying


outer = Outer()
names = [name for name, _ in outer.named_parameters()]
print(names)
assert names == ["gain", "first.w", "first.b", "second.b"]
assert len(outer.parameters()) == 4 and outer.parameters()[1] is outer.second.w
assert [name for name, _ in outer.named_children()] == ["first", "second"]
assert [name for name, _ in outer.named_modules()] == ["", "first", "second"]
print(outer)
print("OK: dotted names, registration order and shared weights counted once")

# %% [markdown]
# ## Step 3: training and evaluation mode
#
# Some layers behave differently while training: dropout (step 6) zeroes random
# activations only in training. Every module has a `training` flag; `model.train()` and
# `model.eval()` must set it on the **whole tree**, otherwise a dropout layer buried
# three levels deep keeps dropping at test time.
#
# Write `train(mode=True)`: set `training = mode` on every module of the walk
# (`self.modules()`), and return `self`, so that `model = Sequential(...).eval()` works
# (the given `eval()` is `train(False)`). The check above your code is given: `mode`
# must be a real `bool`, because `model.train("False")` would otherwise switch training
# *on* (a non-empty string is true).

# %% nbgrader={"grade": false, "grade_id": "module-modes", "locked": false, "schema_version": 3, "solution": true}
#| export
@patch(nm="train")  # Module.train; a private module name, so no public name is left None
def _train(self: Module, mode=True):
    """Set `training` on this module and all descendants; returns self."""
    if not isinstance(mode, bool):
        raise TypeError(
            f"train(mode) expects True or False, got {mode!r} ({type(mode).__name__}); "
            "use model.train() or model.eval()")
    ### BEGIN SOLUTION
    for module in self.modules():
        module.training = mode
    return self
    ### END SOLUTION

# %% [markdown]
# ### Check step 3

# %%
assert outer.eval() is outer
assert [m.training for m in outer.modules()] == [False, False, False]
outer.train()
assert all(m.training for m in outer.modules())
try:
    outer.train("False")
except TypeError as err:
    print("TypeError:", err)
else:
    raise AssertionError("train('False') must raise TypeError")
print("OK: train() and eval() reach every descendant")

# %% [markdown]
# ## Step 4: saving and loading weights
#
# `state_dict()` is a snapshot of a model's weights: a dict from dotted name to a
# **copy** of each parameter's numpy array (a copy, so that training the model later
# does not change a snapshot you saved). It is what you write to disk, and what you load
# into another model of the same architecture.
#
# `load_state_dict(state, strict=True)` is where the care goes:
#
# - **Keys.** `missing` = names the model has but `state` lacks; `unexpected` = names in
#   `state` the model does not have (both sorted; sort with `key=str` so odd keys cannot
#   break the sort). With `strict=True`, if either is non-empty raise a `ValueError`
#   that lists **both** sets: a renamed layer shows up as one missing and one unexpected
#   key, and seeing the two side by side is how you spot it. With `strict=False`, load
#   the keys both have.
# - **Shapes.** Each value (a numpy array, a Tensor or a nested list) must be numeric and
#   have the parameter's shape. The given `_state_value(name, value, param)` reads it
#   with `np.asarray` and raises (naming the key and both shapes) when it does not fit.
#   Check **all** values before writing any, so that a failed load leaves the model
#   unchanged instead of half loaded.
# - **In place.** Copy each value *into* the existing array, `param.data[...] = value`
#   (numpy casts it to the parameter's dtype). Do not replace `param.data` or the
#   Parameter object: an optimizer built earlier holds references to exactly these
#   arrays, and they must stay valid.
# - Return `(missing, unexpected)`.
#
# A `state` that is not a dict at all is rejected by the given check above your code.

# %% nbgrader={"grade": false, "grade_id": "module-state", "locked": false, "schema_version": 3, "solution": true}
#| export
def _state_value(name, value, param):
    """value as a numeric ndarray with param's shape; TypeError/ValueError naming the key."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"load_state_dict: state[{name!r}] must be numeric, got dtype {array.dtype}")
    if array.shape != param.shape:
        raise ValueError(
            f"load_state_dict: shape mismatch for {name!r}: the state has shape {array.shape}, "
            f"the model's parameter has shape {param.shape}; was the state saved from a model "
            "with different layer sizes?")
    return array


@patch(nm="state_dict")  # Module.state_dict; a private module name, so no public name is left None
def _state_dict(self: Module):
    """{dotted name: copy of the parameter's array}, in named_parameters() order."""
    ### BEGIN SOLUTION
    return {name: param.data.copy() for name, param in self.named_parameters()}
    ### END SOLUTION


@patch(nm="load_state_dict")  # Module.load_state_dict; a private module name, so no public name is left None
def _load_state_dict(self: Module, state, strict=True):
    """Copy arrays from state into the parameters in place; returns (missing, unexpected)."""
    if not isinstance(state, Mapping):
        raise TypeError(
            f"load_state_dict expects a dict of name -> array (from state_dict()), "
            f"got {type(state).__name__}")
    ### BEGIN SOLUTION
    params = dict(self.named_parameters())
    missing = sorted(params.keys() - state.keys(), key=str)
    unexpected = sorted(state.keys() - params.keys(), key=str)
    if strict and (missing or unexpected):
        raise ValueError(
            f"load_state_dict(strict=True): the state does not match {type(self).__name__}'s "
            f"parameters: missing keys {missing}, unexpected keys {unexpected}; compare with "
            "model.state_dict().keys(), or pass strict=False to load only the keys both have")
    values = {name: _state_value(name, state[name], param)
              for name, param in params.items() if name in state}
    for name, value in values.items():
        params[name].data[...] = value
    return missing, unexpected
    ### END SOLUTION

# %% [markdown]
# ### Check step 4
#
# Save one `Outer`, load it into a differently initialised one, and check that the
# parameter objects (and their arrays) are the same objects as before the load.

# %%
source, target = Outer(), Outer()
source.gain.data[...] = 5.0
source.first.w.data[...] = np.arange(4).reshape(2, 2)
state = source.state_dict()
assert list(state) == ["gain", "first.w", "first.b", "second.b"]
source.gain.data[...] = -1.0                     # the snapshot is a copy: unchanged
assert state["gain"].tolist() == [5.0]

weight_before, array_before = target.first.w, target.first.w.data
assert target.load_state_dict(state) == ([], [])
assert target.first.w is weight_before and target.first.w.data is array_before
assert target.gain.tolist() == [5.0] and target.second.w.tolist() == [[0.0, 1.0], [2.0, 3.0]]

for bad_state in ({"gain": [1.0], "first.W": np.ones((2, 2)), "first.b": [0.0, 0.0], "second.b": [0.0, 0.0]},
                  dict(state, gain=np.ones(3))):
    try:
        target.load_state_dict(bad_state)
    except ValueError as err:
        print("ValueError:", err)
    else:
        raise AssertionError("a mismatched state must raise ValueError")
assert target.gain.tolist() == [5.0]             # failed loads changed nothing
print(target.load_state_dict({"gain": [7.0], "extra": [1.0]}, strict=False))
assert target.gain.tolist() == [7.0]
print("OK: state_dict copies, load_state_dict checks keys and shapes and writes in place")

# %% [markdown]
# ## Step 5: `Linear`, the fully connected layer
#
# `Linear(in_features, out_features, bias=True, rng=None)` computes `y = x @ W + b` with
# `W` a Parameter of shape `(in_features, out_features)` and `b` a Parameter of shape
# `(out_features,)` (or `self.bias = None` when `bias=False`).
#
# **Initialisation.** Both start uniform in `[-k, k)` with `k = 1 / sqrt(in_features)`,
# PyTorch's default. Why that `k`? Each output is a sum of `in_features` products
# `x_i * w_i`. A uniform `[-k, k)` weight has variance `k^2 / 3 = 1 / (3 * in_features)`,
# so for inputs of variance 1 the sum has variance about `in_features / (3 *
# in_features) = 1/3`, whatever the width. Without the `1/sqrt(in_features)`, outputs
# would grow with the layer width, and deep stacks of layers would blow up. The check
# cell below measures this.
#
# **Randomness** comes from `generator = np.random.default_rng(rng)`, which accepts
# `None` (fresh entropy), an int seed (reproducible) or an existing Generator (used as
# is); draw the weight first, then the bias: `generator.uniform(-k, k, size=shape)`, and
# wrap each draw in `Parameter(...)` (which makes it float32).
#
# **Validation is given**, above your code: `__init__` calls `super().__init__()` first
# (every Module subclass must, before it assigns attributes), stores `in_features` and
# `out_features` checked as positive integers (the given `_positive_int`) and checks that
# `bias` is a bool. `forward` checks that `x` is a `Tensor` whose last dimension is
# `in_features`, with a `ValueError` that names the input shape otherwise.
#
# **forward(x)**: return `x @ self.weight`, plus `self.bias` when there is one. Any batch
# shape works, `(N, in)` or `(..., in)`: matmul treats the leading dimensions as batch
# dimensions, and the bias broadcasts over them. Use only Tensor operations here (no
# `.data`), so that autograd can later differentiate through it.

# %% nbgrader={"grade": false, "grade_id": "linear", "locked": false, "schema_version": 3, "solution": true}
#| export
def _positive_int(value, name):
    """value as an int > 0; TypeError for non-integers (bools too), ValueError for <= 0."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a positive integer, got the bool {value}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a positive integer, got {value!r} ({type(value).__name__})") from None
    if number <= 0:
        raise ValueError(f"{name} must be a positive integer, got {number}")
    return number


class Linear(Module):
    """Fully connected layer: y = x @ weight + bias.

    weight: Parameter (in_features, out_features); bias: Parameter (out_features,) or None.
    Both start uniform in [-k, k), k = 1/sqrt(in_features), drawn (weight first) from
    np.random.default_rng(rng): rng is None, an int seed or a np.random.Generator.
    """

    def __init__(self, in_features, out_features, bias=True, rng=None):
        """Check the sizes; create weight (and bias) Parameters from the seeded generator."""
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be True or False, got {bias!r} ({type(bias).__name__})")
        ### BEGIN SOLUTION
        generator = np.random.default_rng(rng)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = Parameter(generator.uniform(-bound, bound, size=(self.in_features, self.out_features)))
        self.bias = Parameter(generator.uniform(-bound, bound, size=self.out_features)) if bias else None
        ### END SOLUTION

    def forward(self, x):
        """x: Tensor (..., in_features) -> Tensor (..., out_features)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"Linear expects a Tensor, got {type(x).__name__}; wrap data with Tensor(...)")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear(in_features={self.in_features}) got an input of shape {x.shape}; its last "
                f"dimension must be {self.in_features}, i.e. shape (..., {self.in_features})")
        ### BEGIN SOLUTION
        out = x @ self.weight
        return out if self.bias is None else out + self.bias
        ### END SOLUTION

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

# %% [markdown]
# ### Check step 5
#
# The output must equal a numpy computation from the layer's own arrays. The second part
# feeds standard-normal inputs through fresh layers of growing width and prints the
# standard deviation of the outputs: the `1/sqrt(in_features)` scale should keep it
# roughly constant (near `sqrt(1/3)`, from the variance argument above).

# %%
layer = Linear(4, 3, rng=0)
batch = Tensor.randn(5, 4, rng=1)
out = layer(batch)
assert type(out) is Tensor and out.shape == (5, 3)
np.testing.assert_allclose(out.data, batch.data @ layer.weight.data + layer.bias.data, rtol=1e-6)
assert layer(Tensor.randn(2, 7, 4, rng=2)).shape == (2, 7, 3)        # any batch shape
assert np.all(np.abs(layer.weight.data) <= 1 / np.sqrt(np.float32(4)))
assert np.array_equal(Linear(4, 3, rng=0).weight.data, layer.weight.data)  # seeded: reproducible
assert Linear(4, 3, bias=False).bias is None and len(Linear(4, 3, bias=False).parameters()) == 1
print(layer, [name for name, _ in layer.named_parameters()])
try:
    layer(Tensor.ones(5, 6))
except ValueError as err:
    print("ValueError:", err)
else:
    raise AssertionError("a (5, 6) input to Linear(4, 3) must raise ValueError")

for width in (16, 256, 4096):
    wide = Linear(width, 64, rng=width)
    std = float(wide(Tensor.randn(256, width, rng=0)).data.std())
    print(f"in_features={width:5d}: output std {std:.3f}")
print("OK: Linear matches x @ W + b, initialises in [-k, k) and checks its input")

# %% [markdown]
# ## Step 6: `Dropout`
#
# Dropout (Srivastava et al., 2014) fights overfitting: during training each activation
# is zeroed with probability `p`, so the network cannot rely on any single unit. At test
# time nothing is dropped. To keep the expected value of each activation the same in
# both modes, the kept values are scaled up by `1 / (1 - p)` during training ("inverted
# dropout"): the mask value is `1/(1-p)` with probability `1-p` and `0` with probability
# `p`, so its mean is `(1-p) * 1/(1-p) = 1`. Evaluation is then simply the identity.
#
# - `__init__(p=0.5, rng=None)` is given: it checks that `p` is a real number in
#   `[0, 1)` (`p = 1` would zero everything and divide by zero), stores `self.p` and the
#   layer's own Generator, `self._rng = np.random.default_rng(rng)`: each call draws a new
#   mask from it, so a seeded layer gives the same sequence of masks every run.
# - `forward(x)` is yours (the check that `x` is a Tensor is given). In evaluation mode
#   return `x` itself. In training mode draw uniform numbers of `x`'s shape from
#   `self._rng`, keep where they are
#   `>= p` (probability `1 - p`), build the mask array `keep / (1 - p)` in `x`'s float
#   dtype (float32 for non-float inputs; the given `_mask_dtype`), and return
#   `x * Tensor.from_numpy(mask)`: a Tensor operation, so gradients will flow through
#   the kept units.

# %% nbgrader={"grade": false, "grade_id": "dropout", "locked": false, "schema_version": 3, "solution": true}
#| export
def _mask_dtype(x):
    """dtype for a mask multiplying x: x's own float dtype, float32 for other inputs."""
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p and scale the
    rest by 1/(1-p); in evaluation, the identity. rng: None, an int seed or a Generator."""

    def __init__(self, p=0.5, rng=None):
        """Check 0 <= p < 1; keep p and this layer's own Generator."""
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
            raise ValueError(
                f"Dropout probability p must be a float in [0, 1), got {p!r}; p is the "
                "fraction of elements zeroed during training (p=1 would zero all of them)")
        self.p = float(p)
        self._rng = np.random.default_rng(rng)

    def forward(self, x):
        """Training: x * mask (mask is 0 or 1/(1-p)); evaluation: x itself."""
        if not isinstance(x, Tensor):
            raise TypeError(f"Dropout expects a Tensor, got {type(x).__name__}; wrap data with Tensor(...)")
        ### BEGIN SOLUTION
        if not self.training:
            return x
        keep = self._rng.random(x.shape) >= self.p
        mask = (keep / (1.0 - self.p)).astype(_mask_dtype(x))
        return x * Tensor.from_numpy(mask)
        ### END SOLUTION

    def extra_repr(self):
        return f"p={self.p}"

# %% [markdown]
# ### Check step 6

# %%
drop = Dropout(p=0.25, rng=0)
ones = Tensor.ones(1000, 100)
dropped = drop(ones)
zero_fraction = float((dropped.data == 0).mean())
print(f"{drop}: zero fraction {zero_fraction:.4f}, mean {float(dropped.data.mean()):.4f} "
      f"(kept values: {np.unique(dropped.data[dropped.data != 0])})")
assert abs(zero_fraction - 0.25) < 0.01 and abs(float(dropped.data.mean()) - 1.0) < 0.02
np.testing.assert_allclose(dropped.data[dropped.data != 0], 1 / 0.75, rtol=1e-6)
assert drop.eval()(ones) is ones                      # evaluation: the same object
for bad_p in (1.0, -0.1, "0.5", True):
    try:
        Dropout(bad_p)
    except ValueError as err:
        print("ValueError:", err)
    else:
        raise AssertionError(f"Dropout({bad_p!r}) must raise ValueError")
print("OK: inverted dropout keeps the mean in training and is the identity in evaluation")

# %% [markdown]
# ## Step 7: `Sequential`
#
# `Sequential(*layers)` chains layers: `Sequential(a, b, c)(x) == c(b(a(x)))`. A layer is
# any callable: a Module, or a plain function or object such as the activations of
# module 02 (which are not Modules: they have no parameters). Only Module layers are
# registered as children, under their **position** as name (`"0"`, `"1"`, ...), so a
# `Sequential(Linear(4, 3), ReLU(), Linear(3, 2))` has parameters `"0.weight"`,
# `"0.bias"`, `"2.weight"`, `"2.bias"`, exactly as in PyTorch.
#
# - `__init__`: the given part calls `super().__init__()` and checks every layer with
#   `_check_layer` (a `TypeError` naming the position for a layer that is not callable,
#   or that is a class: `ReLU` instead of `ReLU()`). Then you register the Module layers
#   with `setattr(self, str(position), layer)` (that is `Module.__setattr__` at work),
#   and keep all layers, Modules or not, in `self._layers` as a tuple.
# - `forward(x)`: apply the layers in order (no layers: return `x`, the identity).
#
# `__getitem__` (an int gives that layer, a slice a new `Sequential` of the same layer
# objects), `__len__`, `__iter__` and the repr hook (all layers, not only the Modules)
# are given.

# %% nbgrader={"grade": false, "grade_id": "sequential", "locked": false, "schema_version": 3, "solution": true}
#| export
def _check_layer(position, layer):
    """TypeError naming the position unless layer is a callable instance (not a class)."""
    if isinstance(layer, type):
        raise TypeError(
            f"Sequential layer {position} is the class {layer.__name__}, not a layer; "
            f"create an instance, e.g. {layer.__name__}(...)")
    if not callable(layer):
        raise TypeError(
            f"Sequential layer {position} is not callable: got {type(layer).__name__}; "
            "pass Modules (e.g. Linear(4, 3)) or callables such as activations")


class Sequential(Module):
    """Applies its layers in order. Layers: Modules or any callables (e.g. activations);
    Module layers are registered as children named by position ("0", "1", ...)."""

    def __init__(self, *layers):
        """Check that every layer is callable; register Module layers as "0", "1", ..."""
        super().__init__()
        for position, layer in enumerate(layers):
            _check_layer(position, layer)
        ### BEGIN SOLUTION
        for position, layer in enumerate(layers):
            if isinstance(layer, Module):
                setattr(self, str(position), layer)
        self._layers = tuple(layers)
        ### END SOLUTION

    def forward(self, x):
        """x passed through every layer in order."""
        ### BEGIN SOLUTION
        for layer in self._layers:
            x = layer(x)
        return x
        ### END SOLUTION

    def __getitem__(self, index):
        """The layer at an int index, or a new Sequential of the layers in a slice."""
        if isinstance(index, slice):
            return Sequential(*self._layers[index])
        try:
            position = operator.index(index)
        except TypeError:
            raise TypeError(
                f"Sequential indices must be integers or slices, got {type(index).__name__}") from None
        if not -len(self) <= position < len(self):
            raise IndexError(
                f"Sequential index {position} is out of range for {len(self)} layers "
                f"(valid: {-len(self)}..{len(self) - 1})")
        return self._layers[position]

    def __len__(self):
        return len(self._layers)

    def __iter__(self):
        return iter(self._layers)

    def _repr_items(self):
        return [(str(position), layer) for position, layer in enumerate(self._layers)]

# %% [markdown]
# ### Check step 7
#
# Module 02's activations are not imported here (each module's checks stand on their
# own), so this cell uses a tiny stand-in for ReLU. Like module 02's, it is a plain
# class with a `forward` and a `__call__`, and it computes with Tensor operations.

# %%
class StandInReLU:
    """max(x, 0) as x * (x > 0): a Tensor times a constant 0/1 mask."""

    def forward(self, x):
        return x * Tensor.from_numpy((x.data > 0).astype(x.dtype))

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self):
        return "StandInReLU()"


net = Sequential(Linear(4, 3, rng=0), StandInReLU(), Linear(3, 2, rng=1))
inputs = Tensor.randn(5, 4, rng=2)
w1, b1, w2, b2 = (p.data for p in net.parameters())
expected = np.maximum(inputs.data @ w1 + b1, 0.0) @ w2 + b2
np.testing.assert_allclose(net(inputs).data, expected, rtol=1e-5, atol=1e-6)
assert [name for name, _ in net.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
assert len(net) == 3 and net[-1] is net[2] and isinstance(net[1], StandInReLU)
assert len(net[:2]) == 2 and net[:2][0] is net[0] and Sequential()(inputs) is inputs
print(net)
try:
    Sequential(Linear(4, 3), "relu")
except TypeError as err:
    print("TypeError:", err)
else:
    raise AssertionError("a non-callable layer must raise TypeError")
print("OK: Sequential chains, names children by position, indexes and slices")

# %% [markdown]
# ## Graded tests
#
# Each cell below checks one step against numpy or hand-computed values. They are worth
# points when the notebook is graded; run them to confirm your work.

# %% nbgrader={"grade": true, "grade_id": "test-registration", "locked": true, "points": 2, "schema_version": 3, "solution": false}
class Reg(Module):
    def __init__(self):
        super().__init__()
        self.a = Parameter([1, 2])
        self.child = Module()
        self.b = Parameter(np.eye(2), dtype=np.float64)


reg = Reg()
assert list(reg._parameters) == ["a", "b"] and list(reg._modules) == ["child"]
assert reg.a.dtype == np.float32 and reg.b.dtype == np.float64 and reg.training
assert type(reg.a + reg.a) is Tensor and repr(reg.a).startswith("Parameter(")
reg.a = Parameter([3.0])
reg.child = Parameter([0.0])                      # a Module name becomes a Parameter name
assert list(reg._parameters) == ["a", "b", "child"] and not reg._modules
reg.b = 4.0
assert list(reg._parameters) == ["a", "child"] and reg.b == 4.0
del reg.a
assert list(reg._parameters) == ["child"] and not hasattr(reg, "a")
try:
    reg(1.0)
except NotImplementedError as err:
    assert "Reg" in str(err)
else:
    raise AssertionError("Module.forward must raise NotImplementedError")

# %% nbgrader={"grade": true, "grade_id": "test-traversal", "locked": true, "points": 2, "schema_version": 3, "solution": false}
tree = Sequential(Linear(4, 3, rng=0), Sequential(Linear(3, 2, rng=1), Dropout()), Linear(2, 1, rng=2))
assert [name for name, _ in tree.named_parameters()] == [
    "0.weight", "0.bias", "1.0.weight", "1.0.bias", "2.weight", "2.bias"]
assert sum(p.size for p in tree.parameters()) == (4 * 3 + 3) + (3 * 2 + 2) + (2 * 1 + 1)
assert [name for name, _ in tree.named_modules()] == ["", "0", "1", "1.0", "1.1", "2"]
assert tree.children() == [tree[0], tree[1], tree[2]]
tied = Sequential(Linear(3, 3), Linear(3, 3))
tied[1].weight = tied[0].weight
assert [name for name, _ in tied.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
assert len(tied.parameters()) == 3 and sum(p.size for p in tied.parameters()) == 9 + 3 + 3
shared = Linear(2, 2)
twice = Sequential(shared, shared)
assert len(twice.parameters()) == 2 and len(twice.children()) == 1
assert repr(Module()) == "Module()" and repr(tree) == (
    "Sequential(\n"
    "  (0): Linear(in_features=4, out_features=3, bias=True)\n"
    "  (1): Sequential(\n"
    "    (0): Linear(in_features=3, out_features=2, bias=True)\n"
    "    (1): Dropout(p=0.5)\n"
    "  )\n"
    "  (2): Linear(in_features=2, out_features=1, bias=True)\n"
    ")")

# %% nbgrader={"grade": true, "grade_id": "test-modes", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert all(m.training for m in tree.modules())
assert tree.eval() is tree and not any(m.training for m in tree.modules())
assert tree.train() is tree and all(m.training for m in tree.modules())
tree[1].train(False)
assert tree.training and not tree[1].training and not tree[1][1].training and tree[2].training
for bad_mode in ("False", 0, None):
    try:
        tree.train(bad_mode)
    except TypeError:
        pass
    else:
        raise AssertionError(f"train({bad_mode!r}) must raise TypeError")

# %% nbgrader={"grade": true, "grade_id": "test-state-dict", "locked": true, "points": 2, "schema_version": 3, "solution": false}
model_a = Sequential(Linear(3, 4, rng=0), Linear(4, 2, rng=1))
model_b = Sequential(Linear(3, 4, rng=2), Linear(4, 2, rng=3))
probe = Tensor.randn(6, 3, rng=4)
assert not np.allclose(model_a(probe).data, model_b(probe).data)
saved = model_a.state_dict()
assert list(saved) == ["0.weight", "0.bias", "1.weight", "1.bias"]
assert saved["0.weight"] is not model_a[0].weight.data
np.testing.assert_array_equal(saved["1.bias"], model_a[1].bias.data)
held = [p.data for p in model_b.parameters()]
assert model_b.load_state_dict(saved) == ([], [])
assert all(p.data is array for p, array in zip(model_b.parameters(), held))
np.testing.assert_array_equal(model_b(probe).data, model_a(probe).data)
renamed = {("1.W" if k == "1.weight" else k): v for k, v in saved.items()}
try:
    model_b.load_state_dict(renamed)
except ValueError as err:
    assert "1.weight" in str(err) and "1.W" in str(err)
else:
    raise AssertionError("a renamed key must raise ValueError")
try:
    model_b.load_state_dict(dict(saved, **{"0.bias": np.zeros(5)}))
except ValueError as err:
    assert "0.bias" in str(err) and "(5,)" in str(err) and "(4,)" in str(err)
else:
    raise AssertionError("a wrong shape must raise ValueError")
assert model_b.load_state_dict({"0.bias": np.ones(4), "x": 1.0}, strict=False) == (
    ["0.weight", "1.bias", "1.weight"], ["x"])
assert model_b[0].bias.tolist() == [1.0] * 4

# %% nbgrader={"grade": true, "grade_id": "test-linear", "locked": true, "points": 3, "schema_version": 3, "solution": false}
lin = Linear(5, 3, rng=7)
k = 1 / np.sqrt(5)
ref_rng = np.random.default_rng(7)
np.testing.assert_allclose(lin.weight.data, ref_rng.uniform(-k, k, (5, 3)).astype(np.float32))
np.testing.assert_allclose(lin.bias.data, ref_rng.uniform(-k, k, 3).astype(np.float32))
assert isinstance(lin.weight, Parameter) and lin.weight.dtype == np.float32
xs = np.random.default_rng(8).standard_normal((2, 4, 5)).astype(np.float32)
np.testing.assert_allclose(lin(Tensor(xs)).data, xs @ lin.weight.data + lin.bias.data, rtol=1e-5, atol=1e-6)
assert lin(Tensor(xs[0, 0])).shape == (3,)
no_bias = Linear(5, 3, bias=False, rng=7)
assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
np.testing.assert_allclose(no_bias(Tensor(xs)).data, xs @ no_bias.weight.data, rtol=1e-5, atol=1e-6)
assert not np.array_equal(Linear(5, 3, rng=1).weight.data, lin.weight.data)
assert repr(Linear(64, 32)) == "Linear(in_features=64, out_features=32, bias=True)"
for bad_args, error in (((0, 3), ValueError), ((2.5, 3), TypeError), ((3, True), TypeError)):
    try:
        Linear(*bad_args)
    except error:
        pass
    else:
        raise AssertionError(f"Linear{bad_args} must raise {error.__name__}")
try:
    lin(Tensor.ones(2, 4))
except ValueError as err:
    assert "(2, 4)" in str(err) and "5" in str(err)
else:
    raise AssertionError("a (2, 4) input to Linear(5, 3) must raise ValueError")

# %% nbgrader={"grade": true, "grade_id": "test-dropout", "locked": true, "points": 2, "schema_version": 3, "solution": false}
p, n = 0.4, 200_000
big = Tensor.ones(n)
out = Dropout(p, rng=3)(big)
# mean of n values that are 1/(1-p) with probability 1-p, else 0: sd = sqrt(p / ((1-p) n))
assert abs(float(out.data.mean()) - 1.0) < 5 * np.sqrt(p / ((1 - p) * n))
assert abs(float((out.data == 0).mean()) - p) < 5 * np.sqrt(p * (1 - p) / n)
np.testing.assert_allclose(out.data[out.data != 0], 1 / (1 - p), rtol=1e-6)
assert out.dtype == np.float32 and type(out) is Tensor
np.testing.assert_array_equal(Dropout(p, rng=3)(big).data, out.data)
seeded = Dropout(0.5, rng=9)
assert not np.array_equal(seeded(big).data, seeded(big).data)      # a new mask per call
assert Dropout(0.5).eval()(big) is big and repr(Dropout()) == "Dropout(p=0.5)"
assert Dropout(0.0)(big).tolist() == big.tolist() and Dropout(0.5).parameters() == []
for bad_p in (1, 1.5, -0.2, None):
    try:
        Dropout(bad_p)
    except ValueError as err:
        assert repr(bad_p) in str(err)
    else:
        raise AssertionError(f"Dropout({bad_p!r}) must raise ValueError")

# %% nbgrader={"grade": true, "grade_id": "test-sequential", "locked": true, "points": 2, "schema_version": 3, "solution": false}
double = lambda t: t * 2.0
seq = Sequential(Linear(3, 4, rng=0), double, Linear(4, 2, rng=1))
data = np.random.default_rng(5).standard_normal((7, 3)).astype(np.float32)
l1, l2 = seq[0], seq[2]
expected = (2.0 * (data @ l1.weight.data + l1.bias.data)) @ l2.weight.data + l2.bias.data
np.testing.assert_allclose(seq(Tensor(data)).data, expected, rtol=1e-5, atol=1e-6)
assert [name for name, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
assert len(seq) == 3 and list(seq) == [l1, double, l2] and seq[-3] is l1
tail = seq[1:]
assert isinstance(tail, Sequential) and len(tail) == 2 and tail[1] is l2
assert [name for name, _ in tail.named_parameters()] == ["1.weight", "1.bias"]
empty = Sequential()
probe_in = Tensor([1.0])
assert empty(probe_in) is probe_in and len(empty) == 0 and repr(empty) == "Sequential()"
assert repr(Sequential(Linear(64, 32), Dropout(0.1))) == (
    "Sequential(\n  (0): Linear(in_features=64, out_features=32, bias=True)\n  (1): Dropout(p=0.1)\n)")
for bad_call, error in ((lambda: Sequential(l1, 3), TypeError), (lambda: seq[3], IndexError),
                        (lambda: seq["0"], TypeError)):
    try:
        bad_call()
    except error:
        pass
    else:
        raise AssertionError(f"expected {error.__name__}")

# %% [markdown]
# ## Systems analysis: where the parameters and the time go
#
# ### How big is an MLP?
#
# A multilayer perceptron (MLP) with layer sizes 64-128-64-10 (e.g. 8x8 images in,
# 10 classes out) is three `Linear` layers with activations between them. By hand, a
# `Linear(n_in, n_out)` holds `n_in * n_out + n_out` parameters, each 4 bytes in
# float32. The cell computes that formula, then asks the model itself through
# `parameters()` and `nbytes` of the real arrays; the two must agree.

# %%
sizes = [64, 128, 64, 10]
hand_count = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:]))
mlp = Sequential(Linear(64, 128, rng=0), StandInReLU(), Linear(128, 64, rng=1), StandInReLU(),
                 Linear(64, 10, rng=2))
print(f"{'parameter':10s} {'shape':>10s} {'count':>7s} {'bytes':>8s}")
for name, param in mlp.named_parameters():
    print(f"{name:10s} {str(param.shape):>10s} {param.size:7d} {param.data.nbytes:8d}")
counted = sum(p.size for p in mlp.parameters())
stored = sum(p.data.nbytes for p in mlp.parameters())
print(f"by hand: {hand_count} parameters = {4 * hand_count} bytes as float32")
print(f"via parameters(): {counted} parameters, {stored} bytes ({stored / 1024:.1f} KiB) of arrays")
assert counted == hand_count and stored == 4 * hand_count

# %% [markdown]
# The weight matrices hold almost all of the parameters; the biases are a rounding error.
# Parameter count grows with the *product* of neighbouring widths: doubling every hidden
# width roughly quadruples the weights.
#
# ### Batching amortises the fixed cost of a call
#
# Every call of `layer(x)` pays a fixed cost before any arithmetic: Python dispatch
# through `__call__` and `forward`, the input checks, creating result Tensors, and the
# setup of the BLAS call. A batch of `N` samples pays that cost once. The cell below
# times `Linear(64, 128)` at several batch sizes and prints the time **per sample**; next
# to it, the same product done with raw numpy (`x @ W + b` on the arrays) shows how much
# of the time is our wrapper.
#
# Timing uses module 01's helpers (`tinytorch.utils.timing`), which follow the course's
# measurement rules in miniature: `time.perf_counter_ns`, each sample a calibrated batch
# of calls lasting at least a few milliseconds (the calibration doubles as warm-up), the
# candidates measured in alternating rounds so machine drift hits all of them, and the
# median reported with IQR/median as a noise indicator. (Module 14 builds the full
# profiler.)

# %%
from tinytorch.utils.timing import (describe_environment, environment, measure_interleaved, measure_timer,
                                   required_sample_ns)

timer = measure_timer()
REPEATS = 15                                                          # samples per candidate
MIN_SAMPLE_NS = required_sample_ns(timer.overhead_ns, floor_ns=5_000_000)  # each at least 5 ms
fc = Linear(64, 128, rng=0)
batch_sizes = (1, 16, 256, 2048)
inputs = {n: Tensor.randn(n, 64, rng=n) for n in batch_sizes}
candidates = {}
for n in batch_sizes:
    candidates[("Linear", n)] = lambda x=inputs[n]: fc(x)
    candidates[("numpy", n)] = lambda a=inputs[n].data, w=fc.weight.data, b=fc.bias.data: a @ w + b
timings = measure_interleaved(candidates, REPEATS, MIN_SAMPLE_NS)

print(describe_environment(environment(timer, MIN_SAMPLE_NS)))
print(f"median of {REPEATS} samples per row")
print(f"{'batch':>6s} {'Linear call':>12s} {'per sample':>11s} {'numpy call':>11s} {'per sample':>11s}  noise (IQR/median)")
for n in batch_sizes:
    ours, raw = timings[("Linear", n)], timings[("numpy", n)]
    flag = "".join(f"  {label} {t.warning}" for label, t in (("Linear", ours), ("numpy", raw)) if t.warning)
    print(f"{n:6d} {ours.median_ns / 1e3:9.1f} us {ours.median_ns / n:8.0f} ns {raw.median_ns / 1e3:8.1f} us "
          f"{raw.median_ns / n:8.0f} ns  {ours.iqr_over_median:.1%} / {raw.iqr_over_median:.1%}{flag}")

# %% [markdown]
# Read the table the cell above prints from top to bottom:
#
# - At batch size 1 the per-sample time is dominated by the fixed cost: compare the
#   `Linear` and `numpy` columns to see how much of it is our Python wrapper (checks,
#   Tensor objects, method calls) rather than arithmetic.
# - As the batch grows, the per-sample time falls steeply: the fixed cost is shared by
#   more samples, and BLAS works more efficiently on larger matrices.
# - At large batches the two columns converge: the arithmetic dominates and the wrapper's
#   cost no longer matters. This is why training and inference servers process inputs in
#   batches, and why a per-call overhead that looks negligible in a big batch can
#   dominate latency when serving one request at a time (a theme of modules 14-19).
# - A row with a `noisy:` warning was disturbed by other work on the machine; follow its
#   remedy and rerun the cell.

# %% [markdown]
# ## Summary
#
# - `Parameter` is a Tensor whose type marks it as trainable; operations on it give
#   plain Tensors.
# - `Module.__setattr__` registers Parameters and child Modules in order, so models get
#   `parameters()`, dotted `named_parameters()`, `train()`/`eval()` over the whole tree,
#   `state_dict()`/`load_state_dict()` and a nested repr without any per-model code.
# - Shared weights are counted once (by identity); loading checks keys and shapes before
#   writing anything and writes into the existing arrays, so references stay valid.
# - `Linear` computes `x @ W + b` with `W` of shape `(in, out)` and PyTorch's
#   `U(-1/sqrt(in), 1/sqrt(in))` initialisation, for any batch shape; `Dropout` is
#   inverted dropout with its own seeded Generator; `Sequential` chains Modules and plain
#   callables such as activations.
# - Measured: the parameter count and bytes of an MLP match the hand formula, and
#   batching spreads the fixed cost of a layer call over many samples.
#
# All forward passes are built from Tensor operations, so when module 06 adds autograd,
# gradients flow through every layer here unchanged.
