# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 07: Optimizers
#
# > Optimizers: the update rules (SGD with momentum, Adam, AdamW) that turn gradients into better parameters, with state you can save and restore.
#
# ## Why optimizers matter
#
# Autograd (Module 06) tells you, for every parameter, which direction makes the loss
# grow fastest: the gradient. It does not tell you how far to move. The optimizer is the
# rule that turns gradients into parameter changes, step after step, and it decides
# whether training converges in minutes, crawls for hours, or blows up.
#
# The plain rule, "move against the gradient by a fixed fraction" (stochastic gradient
# descent), is slow on the long, narrow valleys that real losses have. Two ideas fix most
# of that: **momentum** (keep moving in the direction you have been moving, so that
# consistent small gradients add up and zig-zags cancel) and **per-parameter step sizes**
# (Adam: divide each gradient by a running estimate of its own size, so every parameter
# moves at a similar rate whatever its scale). Both ideas cost memory: an optimizer keeps
# extra arrays the size of the model, and for a large model that memory is a real
# budget. In this module you build `SGD`, `Adam` and `AdamW` with the exact update rules
# PyTorch documents, make their state savable so that training can stop and resume
# bit for bit, and measure what they cost in memory and time.

# %%
#| default_exp core.optimizers

# %% [markdown]
# ## The idea: three ways to walk downhill
#
# Take one parameter `w` and the loss `f(w) = (w - 3)^2`, whose gradient is
# `2 (w - 3)`. Start at `w = 0` with learning rate `lr = 0.1`.
#
# - **Gradient descent**: `w <- w - lr * grad`. Step 1: grad = -6, w = 0.6.
#   Step 2: grad = 2 (0.6 - 3) = -4.8, w = 0.6 + 0.48 = 1.08.
# - **Momentum** (0.9): a buffer accumulates gradients, `buf <- 0.9 buf + grad`, and the
#   step uses the buffer. Step 1: buf = -6, w = 0.6. Step 2: buf = 0.9 (-6) - 4.8 = -10.2,
#   w = 0.6 + 1.02 = 1.62: the second step is longer because both gradients pointed the
#   same way.
# - **Adam**: running averages of the gradient (`m`) and of its square (`v`), corrected
#   for starting at zero. On the first step `m_hat = grad` and `v_hat = grad^2`, so the
#   step is `lr * grad / (|grad| + eps)`, i.e. about `lr` in the downhill direction
#   **whatever the size of the gradient**.
#
# The cell below runs these by hand in plain numpy, including a gradient that is 1000x
# larger, to show Adam's scale invariance.

# %%
import numpy as np


def quadratic_grad(w):
    """Gradient of (w - 3)^2."""
    return 2.0 * (w - 3.0)


w_gd = 0.0
for _ in range(2):
    w_gd -= 0.1 * quadratic_grad(w_gd)

w_mom, buf = 0.0, None
for _ in range(2):
    g = quadratic_grad(w_mom)
    buf = g if buf is None else 0.9 * buf + g
    w_mom -= 0.1 * buf

assert np.isclose(w_gd, 1.08) and np.isclose(w_mom, 1.62)
print(f"after 2 steps from w = 0: gradient descent w = {w_gd:.2f}, momentum w = {w_mom:.2f} (minimum at 3)")

for scale in (1.0, 1000.0):
    g = scale * quadratic_grad(0.0)
    m_hat, v_hat = (0.1 * g) / (1 - 0.9), (0.001 * g * g) / (1 - 0.999)
    adam_step = 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8)
    print(f"gradient {g:8.1f}: gradient descent would move {0.1 * g:8.1f}, Adam's first step moves {adam_step:.6f}")

# %% [markdown]
# ## Step 1: the Optimizer base class
#
# Every optimizer shares the same bookkeeping, so it lives in one base class:
#
# - **The parameter list.** `Optimizer(params)` takes any iterable of Tensors, typically
#   `model.parameters()` (a generator, so it must be turned into a list once). An empty
#   list is a `ValueError` (almost always a model without layers, or a generator that was
#   already used up). Anything that is not a Tensor is a `TypeError` that names its
#   position and type. A tensor listed twice (weights shared by two layers) is kept
#   once, so it is not updated twice per step. Only floating-point tensors can take
#   fractional steps.
# - **Gradients.** Each parameter has a `.grad` attribute that is `None` (no gradient this
#   step: the parameter is skipped and its state is left alone) or a Tensor of the
#   parameter's shape. `zero_grad()` sets every `.grad` back to `None` before the next
#   backward pass. `_gradients()` collects `(index, param array, grad array)` for the
#   parameters that have a gradient, and checks **all** of them before any parameter
#   changes, so a bad gradient never leaves a model half updated. The gradient is
#   converted to the parameter's dtype, so a float32 model is updated in float32.
# - **State.** `self.state[index]` holds the per-parameter buffers (momentum, Adam's
#   averages), keyed by the parameter's position in `self.params`; `step_count` counts
#   calls to `step()`.
#
# Subclasses say which hyperparameters they have (`_hyperparameter_names`), validate
# them in `_configure`, name their state (`_buffer_names`: arrays shaped like the
# parameter; `_counter_names`: integers) and implement `step()`. Hyperparameters are
# plain attributes (`optimizer.lr`), so a learning-rate schedule can change them between
# steps. `state_dict` and `load_state_dict` call helpers you write in step 4.
#
# The checks of the parameters and of their gradients are given. You write what the
# bookkeeping means: `_parameter_list` keeps each tensor once, `Optimizer.zero_grad`
# clears the gradients, and `Optimizer._gradients` collects the parameters that have a
# gradient (in the parameter's dtype) and skips the others.

# %%
#| export
import math
import numbers

import numpy as np

from tinytorch.core.tensor import Tensor

# %% nbgrader={"grade": false, "grade_id": "optimizer-base", "locked": false, "schema_version": 3, "solution": true}
#| export
def _parameter_list(params):
    """params (an iterable of Tensors) as a list without repeats; TypeError/ValueError if unusable."""
    if isinstance(params, Tensor):
        raise TypeError("params must be an iterable of Tensors (e.g. model.parameters()), got a single "
                        "Tensor; wrap it in a list: [tensor]")
    try:
        items = list(params)
    except TypeError as err:
        raise TypeError(f"params must be an iterable of Tensors (e.g. model.parameters()), "
                        f"got {type(params).__name__}") from err
    if not items:
        raise ValueError("optimizer got an empty parameter list; pass model.parameters() of a model "
                         "that has parameters (a generator can be used only once), or a list of Tensors")
    for position, item in enumerate(items):
        if not isinstance(item, Tensor):
            raise TypeError(f"params[{position}] must be a Tensor, got {type(item).__name__}; pass "
                            "the model's parameters themselves, not their arrays or values")
        if item.dtype.kind != "f":
            raise TypeError(f"params[{position}] has dtype {item.dtype}; an optimizer can only update "
                            "floating-point tensors, create it with a float dtype such as np.float32")
    ### BEGIN SOLUTION
    unique, seen = [], set()
    for item in items:  # a tensor listed twice (shared weights) is kept once: one update per step
        if id(item) not in seen:
            seen.add(id(item))
            unique.append(item)
    return unique
    ### END SOLUTION


_RULES = {"> 0": lambda v: v > 0, ">= 0": lambda v: v >= 0, "in [0, 1)": lambda v: 0 <= v < 1}


def _checked_number(owner, name, value, rule):
    """value as a float after checking it is a finite real number that satisfies rule (a key of _RULES)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not (math.isfinite(value) and _RULES[rule](value)):
        raise ValueError(f"{owner}: {name} must be {rule}, got {value!r}")
    return value


class Optimizer:
    """Base class: holds the parameters, clears their gradients, saves and restores its state.

    Subclasses define _hyperparameter_names, _configure(**hyperparameters), the names of their
    per-parameter state (_buffer_names: arrays shaped like the parameter, _counter_names: ints)
    and step(). self.state[i] is the state of self.params[i].
    """

    _hyperparameter_names = ()
    _buffer_names = ()
    _counter_names = ()

    def __init__(self, params):
        self.params = _parameter_list(params)
        self.state = {}
        self.step_count = 0

    def zero_grad(self):
        """Forget every parameter's gradient (set .grad to None) before the next backward pass."""
        ### BEGIN SOLUTION
        for param in self.params:
            param.grad = None
        ### END SOLUTION

    def step(self):
        """Update every parameter that has a gradient, in place. Subclasses implement it."""
        raise NotImplementedError(
            f"{type(self).__name__}.step() is not implemented: a subclass of Optimizer must define "
            "its update rule in step()")

    def hyperparameters(self):
        """The hyperparameters as a dict of plain Python numbers, e.g. {'lr': 0.1, ...}."""
        return {name: getattr(self, name) for name in self._hyperparameter_names}

    def _gradients(self):
        """(index, param array, grad array in the param's dtype) for each parameter with a grad.

        Every gradient is checked before any is returned, so a bad one changes nothing.
        """
        grads = [getattr(param, "grad", None) for param in self.params]
        for index, (param, grad) in enumerate(zip(self.params, grads)):
            if grad is None:
                continue
            if not isinstance(grad, Tensor):
                raise TypeError(f"parameter {index}: .grad must be a Tensor or None, "
                                f"got {type(grad).__name__}")
            if grad.shape != param.shape:
                raise ValueError(f"parameter {index}: grad shape {grad.shape} does not match parameter "
                                 f"shape {param.shape}; a gradient has the shape of its parameter")
        ### BEGIN SOLUTION
        ready = []
        for index, (param, grad) in enumerate(zip(self.params, grads)):
            if grad is not None:  # no gradient this step: skip the parameter, keep its state
                ready.append((index, param.data, grad.data.astype(param.dtype, copy=False)))
        return ready
        ### END SOLUTION

    def state_dict(self):
        """Hyperparameters, step_count and 'state.<index>.<name>' buffers: plain numbers and
        numpy arrays (copies), ready for np.savez."""
        return _flatten_state(self)

    def load_state_dict(self, state_dict):
        """Restore what state_dict() returned (also after np.savez/np.load); ValueError if it does
        not fit these parameters."""
        _restore_state(self, state_dict)

    def __repr__(self):
        settings = ", ".join(f"{name}={value!r}" for name, value in self.hyperparameters().items())
        tensors, values = len(self.params), sum(param.size for param in self.params)
        return (f"{type(self).__name__}({settings}{', ' if settings else ''}params={tensors} "
                f"tensor{'s' if tensors != 1 else ''} / {values:,} values, step_count={self.step_count})")

# %% [markdown]
# ### Check step 1
#
# `Optimizer` itself has no update rule, but it can already collect parameters, check
# gradients and clear them. Gradients are set by hand here; autograd sets them the same
# way after `loss.backward()`.
#
# The read-only cell below defines `raises`, which the check cells and the graded tests
# use to confirm that a call fails with the right error.

# %% nbgrader={"grade": false, "grade_id": "helper-raises", "locked": true, "schema_version": 3, "solution": false}
def raises(error, fn, *args, **kwargs):
    """The exception of type error that fn(*args, **kwargs) raises; AssertionError if none."""
    try:
        fn(*args, **kwargs)
    except error as err:
        return err
    raise AssertionError(f"{getattr(fn, '__qualname__', fn)} with {args} {kwargs} must raise {error.__name__}")

# %%
a, b = Tensor([1.0, 2.0]), Tensor([[3.0]])
base = Optimizer(p for p in [a, b, a])            # a generator; `a` is listed twice
assert len(base.params) == 2 and base.params[0] is a and base.params[1] is b
a.grad, b.grad = Tensor([0.5, 0.5], dtype=np.float64), None
ready = base._gradients()
assert len(ready) == 1 and ready[0][0] == 0 and ready[0][1] is a.data and ready[0][2].dtype == np.float32
base.zero_grad()
assert a.grad is None and b.grad is None and base._gradients() == []
for bad, error in (([], ValueError), ([a, np.ones(2)], TypeError), (a, TypeError),
                   ([Tensor([1, 2], dtype=np.int64)], TypeError)):
    print(f"{error.__name__}: {raises(error, Optimizer, bad)}")
a.grad = Tensor([1.0, 2.0, 3.0])
err = raises(ValueError, base._gradients)
assert "(3,)" in str(err) and "(2,)" in str(err)
print(f"ValueError: {err}")
assert "Optimizer.step()" in str(raises(NotImplementedError, base.step))
print(base)
print("OK: parameters collected once, gradients checked and cleared")

# %% [markdown]
# ## Step 2: SGD with momentum, weight decay and Nesterov
#
# PyTorch's `torch.optim.SGD` documents this update for a parameter `p` with gradient
# `grad`:
#
# ```
# g = grad + weight_decay * p                  (L2 regularisation, if weight_decay > 0)
# if momentum > 0:
#     buf = g                      on the first step
#     buf = momentum * buf + g     afterwards
#     g = g + momentum * buf       if nesterov, else g = buf
# p = p - lr * g
# ```
#
# - **Weight decay** adds the gradient of `weight_decay / 2 * ||p||^2` to the loss's
#   gradient, pulling weights toward zero (a simple regulariser).
# - **Momentum** keeps a velocity `buf` per parameter: one extra array the size of the
#   parameter. Along a direction where gradients agree, steps grow to up to
#   `1 / (1 - momentum)` times (10x for 0.9); where they alternate, they cancel.
# - **Nesterov** momentum looks one step ahead: it uses the gradient plus the *next*
#   velocity, which damps overshooting.
#
# Everything happens **in place** on `p.data`: the model and anyone else holding the
# array see the new values, and no new parameter arrays are allocated. In numpy,
# `param -= x` writes into `param`'s memory, whereas `param = param - x` would make a new
# array and leave the model's array unchanged. Careful with the first momentum step:
# `buf = g` must be a *copy*, since `g` may be the gradient array itself, which the
# update must not modify.
#
# `sgd_update` is the rule on plain numpy arrays (the functional form, like
# `torch.optim._functional`); `SGD.step` does the bookkeeping: which parameters have
# gradients, and where each one's momentum buffer is kept.

# %% nbgrader={"grade": false, "grade_id": "sgd", "locked": false, "schema_version": 3, "solution": true}
#| export
def sgd_update(param, grad, momentum_buffer, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    """One SGD step on the ndarray param, in place; returns the new momentum buffer.

    momentum_buffer is None on the first step (and always when momentum == 0, in which case
    None is returned). grad is not modified.
    """
    ### BEGIN SOLUTION
    g = grad + weight_decay * param if weight_decay else grad
    if momentum:
        if momentum_buffer is None:
            momentum_buffer = g.copy()
        else:
            momentum_buffer *= momentum
            momentum_buffer += g
        g = g + momentum * momentum_buffer if nesterov else momentum_buffer
    param -= lr * g
    return momentum_buffer
    ### END SOLUTION


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay
    (the update rule of torch.optim.SGD)."""

    _hyperparameter_names = ("lr", "momentum", "weight_decay", "nesterov")
    _buffer_names = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params)
        self._configure(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)

    def _configure(self, lr, momentum, weight_decay, nesterov):
        """Check the hyperparameters (all before setting any), then set them."""
        lr = _checked_number("SGD", "lr", lr, "> 0")
        momentum = _checked_number("SGD", "momentum", momentum, ">= 0")
        weight_decay = _checked_number("SGD", "weight_decay", weight_decay, ">= 0")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0.0; "
                             "pass e.g. momentum=0.9, or nesterov=False")
        self.lr, self.momentum, self.weight_decay, self.nesterov = lr, momentum, weight_decay, bool(nesterov)

    def step(self):
        """Update every parameter that has a gradient, in place."""
        ### BEGIN SOLUTION
        for index, param, grad in self._gradients():
            buffer = self.state.get(index, {}).get("momentum_buffer")
            buffer = sgd_update(param, grad, buffer, lr=self.lr, momentum=self.momentum,
                                weight_decay=self.weight_decay, nesterov=self.nesterov)
            if buffer is not None:
                self.state[index] = {"momentum_buffer": buffer}
        self.step_count += 1
        ### END SOLUTION

# %% [markdown]
# ### Check step 2
#
# The worked example from the top of the notebook, now through `SGD`: two steps on
# `(w - 3)^2` from `w = 0` must give `1.08` without momentum and `1.62` with momentum 0.9.
# With Nesterov, by hand: step 1, buf = -6, g = -6 + 0.9 (-6) = -11.4, w = 1.14.

# %%
def descend(optimizer, steps):
    """Run steps of the optimizer on (w - 3)^2 for its single parameter; return w."""
    (w,) = optimizer.params
    for _ in range(steps):
        w.grad = Tensor(2.0 * (w.data - 3.0))
        optimizer.step()
    return w.data.item()


assert np.isclose(descend(SGD([Tensor(0.0)], lr=0.1), 2), 1.08)
assert np.isclose(descend(SGD([Tensor(0.0)], lr=0.1, momentum=0.9), 2), 1.62)
assert np.isclose(descend(SGD([Tensor(0.0)], lr=0.1, momentum=0.9, nesterov=True), 1), 1.14)

p = Tensor([1.0, -2.0])
sgd = SGD([p], lr=0.1, weight_decay=0.5)
same_array = p.data
p.grad = Tensor([0.0, 0.0])
sgd.step()                                  # only the decay acts: p <- p - 0.1 * 0.5 * p
assert p.data is same_array and p.dtype == np.float32
assert np.allclose(p.data, [0.95, -1.9]) and sgd.state == {}
print(sgd)
print("OK: SGD, momentum, Nesterov and weight decay match the hand-computed values")

# %% [markdown]
# ## Step 3: Adam and AdamW
#
# Adam (Kingma and Ba, 2015) keeps two arrays per parameter: `exp_avg` (`m`, a running
# mean of the gradient) and `exp_avg_sq` (`v`, a running mean of its square), plus the
# number of steps `t` this parameter has taken. PyTorch's `torch.optim.Adam`:
#
# ```
# g = grad + weight_decay * p                      (L2, if weight_decay > 0)
# m = beta1 * m + (1 - beta1) * g
# v = beta2 * v + (1 - beta2) * g^2
# m_hat = m / (1 - beta1^t)                        (bias correction: m and v start at 0)
# v_hat = v / (1 - beta2^t)
# p = p - lr * m_hat / (sqrt(v_hat) + eps)
# ```
#
# Dividing by `sqrt(v_hat)` gives each parameter its own step size: about `lr` when its
# gradients are consistent, smaller when they are noisy. `eps` avoids dividing by zero.
#
# **AdamW** (Loshchilov and Hutter, 2019) notices that L2 weight decay works badly with
# Adam: the decay term goes through the same division by `sqrt(v_hat)`, so parameters
# with large gradients are barely decayed. AdamW *decouples* the decay from the
# gradient: first `p = p * (1 - lr * weight_decay)`, then the Adam update with the raw
# gradient. It is the default optimizer for transformers.
#
# Both share one function, `adam_update`, with a `decoupled` switch; `AdamW` is `Adam`
# with `decoupled = True` and a default `weight_decay` of 0.01. The step count `t` is
# kept per parameter (`state[index]["step"]`), as in PyTorch, so a parameter that was
# skipped (no gradient) still gets the right bias correction when it starts training.

# %% nbgrader={"grade": false, "grade_id": "adam", "locked": false, "schema_version": 3, "solution": true}
#| export
def adam_update(param, grad, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, eps, weight_decay,
                decoupled=False):
    """One Adam (decoupled=False) or AdamW (decoupled=True) step on the ndarray param, in place.

    exp_avg and exp_avg_sq are updated in place; step is this parameter's step number (1 first).
    """
    ### BEGIN SOLUTION
    if decoupled:
        if weight_decay:
            param *= 1 - lr * weight_decay
    elif weight_decay:
        grad = grad + weight_decay * param
    exp_avg *= beta1
    exp_avg += (1 - beta1) * grad
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * (grad * grad)
    m_hat = exp_avg / (1 - beta1 ** step)
    v_hat = exp_avg_sq / (1 - beta2 ** step)
    param -= lr * m_hat / (np.sqrt(v_hat) + eps)
    ### END SOLUTION


class Adam(Optimizer):
    """Adam with optional L2 weight decay (the update rule of torch.optim.Adam)."""

    _hyperparameter_names = ("lr", "beta1", "beta2", "eps", "weight_decay")
    _buffer_names = ("exp_avg", "exp_avg_sq")
    _counter_names = ("step",)
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        name = type(self).__name__
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2) such as (0.9, 0.999), got {betas!r}")
        self._configure(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay)

    @property
    def betas(self):
        """(beta1, beta2), as passed to the constructor."""
        return (self.beta1, self.beta2)

    def _configure(self, lr, beta1, beta2, eps, weight_decay):
        """Check the hyperparameters (all before setting any), then set them."""
        name = type(self).__name__
        checked = (_checked_number(name, "lr", lr, "> 0"),
                   _checked_number(name, "beta1", beta1, "in [0, 1)"),
                   _checked_number(name, "beta2", beta2, "in [0, 1)"),
                   _checked_number(name, "eps", eps, "> 0"),
                   _checked_number(name, "weight_decay", weight_decay, ">= 0"))
        self.lr, self.beta1, self.beta2, self.eps, self.weight_decay = checked

    def step(self):
        """Update every parameter that has a gradient, in place."""
        ### BEGIN SOLUTION
        for index, param, grad in self._gradients():
            state = self.state.get(index)
            if state is None:
                state = self.state[index] = {"step": 0, "exp_avg": np.zeros_like(param),
                                             "exp_avg_sq": np.zeros_like(param)}
            state["step"] += 1
            adam_update(param, grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
                        lr=self.lr, beta1=self.beta1, beta2=self.beta2, eps=self.eps,
                        weight_decay=self.weight_decay, decoupled=self._decoupled)
        self.step_count += 1
        ### END SOLUTION


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay, then the plain Adam
    update (the update rule of torch.optim.AdamW)."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

# %% [markdown]
# ### Check step 3
#
# The first Adam step moves each coordinate by `lr * |g| / (|g| + eps)`, almost exactly
# `lr`, whatever the gradient's size. AdamW with the same gradients differs from Adam
# without decay by exactly the decoupled decay `lr * weight_decay * p`.

# %%
p = Tensor([1.0, -2.0, 3.0])
adam = Adam([p], lr=0.1)
p.grad = Tensor([1e-3, -5.0, 2e4])
adam.step()
assert np.allclose(p.data, [0.9, -1.9, 2.9], atol=1e-5), p.data
assert adam.state[0]["step"] == 1 and adam.state[0]["exp_avg"].dtype == np.float32

q_adam, q_adamw = Tensor([1.0, -2.0], dtype=np.float64), Tensor([1.0, -2.0], dtype=np.float64)
plain, decoupled = Adam([q_adam], lr=0.1), AdamW([q_adamw], lr=0.1, weight_decay=0.5)
q_adam.grad = q_adamw.grad = Tensor([0.3, 0.3], dtype=np.float64)
plain.step()
decoupled.step()
assert np.allclose(q_adamw.data - q_adam.data, -0.1 * 0.5 * np.array([1.0, -2.0]))
print(adam)
print(decoupled)
print("OK: Adam's first step is lr in size; AdamW adds exactly the decoupled decay")

# %% [markdown]
# ## Step 4: saving and restoring optimizer state
#
# Long training runs stop: a job is pre-empted, a machine reboots, you want to fine-tune
# later. Resuming needs the model's parameters **and** the optimizer's state: without
# Adam's `m`, `v` and step counts, the resumed run restarts with a bias-corrected first
# step of size `lr` on every parameter, a visible jolt in the loss curve.
#
# `state_dict()` flattens everything into one dict of plain numbers and numpy arrays,
# which `np.savez(path, **state)` can write directly:
#
# - the hyperparameters by name (`"lr"`, `"momentum"`, ...) and `"step_count"`;
# - each per-parameter entry as `"state.<index>.<name>"`, e.g. `"state.3.exp_avg"` for
#   the parameter `self.params[3]`. Arrays are **copies**, so later steps cannot change
#   a saved dict.
#
# `load_state_dict(d)` is the reverse. It first checks the dict against this optimizer
# (`_state_problems`, given below): every hyperparameter and `step_count` present, no
# unknown keys, per-parameter state complete and of the right shape. Only then does it
# change anything: it validates the hyperparameters through `_configure` (the same
# checks as the constructor) and replaces `step_count` and `state`. Values may come back
# from `np.load` as 0-d arrays; `_plain` turns those into Python numbers. Restored
# buffers are copies in the parameter's dtype.
#
# You implement `_flatten_state` and `_restore_state` (the check that rejects a dict
# that does not fit comes first, given).

# %%
#| export
def _plain(value):
    """A Python number from a number, numpy scalar or 0-d array (np.load returns 0-d arrays)."""
    return value.item() if isinstance(value, (np.ndarray, np.generic)) else value


def _state_problems(optimizer, flat):
    """Ways in which the dict flat does not fit optimizer: a list of readable problems (empty if none)."""
    scalars = set(optimizer._hyperparameter_names) | {"step_count"}
    names = optimizer._buffer_names + optimizer._counter_names
    indices = {str(index) for index in range(len(optimizer.params))}
    missing = sorted(scalars - flat.keys())
    unexpected, shapes, present = [], [], {}
    for key, value in flat.items():
        parts = key.split(".") if isinstance(key, str) else []
        if key in scalars:
            expected = ()
        elif (len(parts) == 3 and parts[0] == "state" and parts[2] in names
              and parts[1] in indices):
            present.setdefault(int(parts[1]), set()).add(parts[2])
            expected = () if parts[2] in optimizer._counter_names else optimizer.params[int(parts[1])].shape
        else:
            unexpected.append(key)
            continue
        if np.shape(value) != expected:
            shapes.append(f"{key} has shape {np.shape(value)}, expected {expected}")
    for index in sorted(present):
        missing += [f"state.{index}.{name}" for name in names if name not in present[index]]
    found = [("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)]
    return [f"{label} {items}" for label, items in found if items]

# %% nbgrader={"grade": false, "grade_id": "state-dict", "locked": false, "schema_version": 3, "solution": true}
#| export
def _flatten_state(optimizer):
    """optimizer's hyperparameters, step_count and per-parameter state as one flat dict."""
    ### BEGIN SOLUTION
    flat = dict(optimizer.hyperparameters(), step_count=optimizer.step_count)
    for index in sorted(optimizer.state):
        for name, value in optimizer.state[index].items():
            flat[f"state.{index}.{name}"] = value.copy() if isinstance(value, np.ndarray) else value
    return flat
    ### END SOLUTION


def _restore_state(optimizer, flat):
    """Check flat against optimizer, then replace its hyperparameters, step_count and state."""
    problems = _state_problems(optimizer, flat)
    if problems:
        raise ValueError(f"{type(optimizer).__name__}.load_state_dict: {'; '.join(problems)}; pass a "
                         "dict from state_dict() of the same optimizer type over the same parameters")
    ### BEGIN SOLUTION
    state = {}
    for key, value in flat.items():
        if key.startswith("state."):
            _, index, name = key.split(".")
            param = optimizer.params[int(index)]
            state.setdefault(int(index), {})[name] = (
                int(_plain(value)) if name in optimizer._counter_names
                else np.array(value, dtype=param.dtype, copy=True))
    optimizer._configure(**{name: _plain(flat[name]) for name in optimizer._hyperparameter_names})
    optimizer.step_count = int(_plain(flat["step_count"]))
    optimizer.state = {index: state[index] for index in sorted(state)}
    ### END SOLUTION

# %% [markdown]
# ### Check step 4
#
# Train for three steps, save the optimizer (through an in-memory `.npz` file, exactly
# what `np.savez` writes to disk), and resume in a fresh optimizer created with
# different hyperparameters. Three more steps must give **bit-identical** parameters to
# six uninterrupted steps.

# %%
import io


def fixed_grads(step):
    """The gradient used at a given step (deterministic, so two runs see the same ones)."""
    return Tensor(np.sin(np.arange(4, dtype=np.float32) + step).reshape(2, 2))


def run(optimizer, steps, first=0):
    (w,) = optimizer.params
    for step in range(first, first + steps):
        w.grad = fixed_grads(step)
        optimizer.step()
    return w


straight = run(AdamW([Tensor(np.ones((2, 2)))], lr=0.05), 6)

first_half = AdamW([Tensor(np.ones((2, 2)))], lr=0.05)
saved_weights = run(first_half, 3).data.copy()
file = io.BytesIO()
np.savez(file, **first_half.state_dict())
file.seek(0)
loaded = dict(np.load(file))
print("saved keys:", sorted(loaded))

resumed = AdamW([Tensor(saved_weights)], lr=1.0, weight_decay=0.0)   # wrong settings, fixed by loading
resumed.load_state_dict(loaded)
assert resumed.lr == 0.05 and resumed.weight_decay == 0.01 and resumed.step_count == 3
assert np.array_equal(run(resumed, 3, first=3).data, straight.data)
print(f"ValueError: {raises(ValueError, resumed.load_state_dict, {'lr': 0.1})}")
print(resumed)
print("OK: a resumed run matches an uninterrupted one bit for bit")

# %% [markdown]
# ## Putting it together: training a model with autograd
#
# So far the gradients were set by hand. In a real training loop autograd (Module 06)
# computes them, and each step is always the same five lines:
#
# ```
# optimizer.zero_grad()                 # forget the previous step's gradients
# loss = loss_fn(model(x), y)           # forward pass
# loss.backward()                       # autograd fills every parameter's .grad
# optimizer.step()                      # the update rule you wrote
# ```
#
# `zero_grad()` matters because autograd *accumulates* gradients into `.grad`; without
# it, each step would use the sum of all earlier gradients. The cell below fits a small
# network (1 input, 32 tanh units, 1 output; the layers, activations and loss of Modules
# 02 to 04) to `sin(x)` on 64 points, with three optimizers from the same initial
# weights, and prints the loss along the way.

# %%
import tinytorch.core.autograd  # noqa: F401  (importing it turns on gradients for Tensor and the layers)
from tinytorch.core.activations import Tanh
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import MSELoss

x_train = np.linspace(-3, 3, 64, dtype=np.float32).reshape(-1, 1)
y_train = np.sin(x_train)


def fit(make_optimizer, steps=300, report=(0, 50, 100, 200, 299)):
    """Train a fresh 1-32-1 network with the optimizer; return the losses at the report steps."""
    model = Sequential(Linear(1, 32, rng=0), Tanh(), Linear(32, 1, rng=1))
    optimizer, loss_fn = make_optimizer(model.parameters()), MSELoss()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(Tensor(x_train)), Tensor(y_train))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return [losses[i] for i in report]


print(f"{'loss at step':20s}" + "".join(f"{step:>10d}" for step in (0, 50, 100, 200, 299)))
for label, make in {"SGD lr=0.05": lambda ps: SGD(ps, lr=0.05),
                    "SGD lr=0.05 mom=0.9": lambda ps: SGD(ps, lr=0.05, momentum=0.9),
                    "Adam lr=0.02": lambda ps: Adam(ps, lr=0.02)}.items():
    losses = fit(make)
    assert losses[-1] < losses[0]
    print(f"{label:20s}" + "".join(f"{value:10.4f}" for value in losses))

# %% [markdown]
# The cell above prints the loss of each run at a few steps. All three start from the
# same weights and fall; compare how quickly. With these settings plain SGD is the
# slowest, for the reason the next section isolates.

# %% [markdown]
# ## Which optimizer when? A narrow valley
#
# The loss `f(w) = 0.5 * (w0^2 + 50 * w1^2)` is a valley 50 times steeper across
# (`w1`) than along (`w0`), a small model of the badly scaled losses of real networks.
# Plain gradient descent must use a learning rate small enough for the steep direction
# (above `2 / 50` it diverges), so it crawls along the flat one. Momentum builds up speed
# along the valley floor; Adam rescales each coordinate by its own gradient size. The
# cell below runs 100 steps of each from `w = (5, 1)` with the gradient `(w0, 50 w1)`
# and prints the final loss.

# %%
def valley_loss(w):
    return 0.5 * (w[0] ** 2 + 50.0 * w[1] ** 2)


def valley_run(make_optimizer, steps=100):
    w = Tensor([5.0, 1.0], dtype=np.float64)
    optimizer = make_optimizer([w])
    for _ in range(steps):
        w.grad = Tensor(w.data * np.array([1.0, 50.0]), dtype=np.float64)
        optimizer.step()
    return valley_loss(w.data)


contenders = {
    "SGD lr=0.02": lambda params: SGD(params, lr=0.02),
    "SGD lr=0.02 momentum=0.9": lambda params: SGD(params, lr=0.02, momentum=0.9),
    "SGD lr=0.02 nesterov": lambda params: SGD(params, lr=0.02, momentum=0.9, nesterov=True),
    "Adam lr=0.1": lambda params: Adam(params, lr=0.1),
}
start_loss = valley_loss(np.array([5.0, 1.0]))
print(f"loss at the start: {start_loss:.3g}")
for label, make in contenders.items():
    print(f"{label:28s} loss after 100 steps: {valley_run(make):.3g}")

# %% [markdown]
# The cell above prints the loss each optimizer reaches. Plain SGD is held back by the
# flat direction; momentum and Nesterov get much further with the same learning rate.
# Momentum also changes which learning rates are safe: Nesterov's look-ahead lowers the
# largest stable one (try `lr=0.035` for all three and watch it diverge). Adam's steps
# stay close to `lr` in size even near the minimum, so with a constant learning rate it
# hovers around the minimum instead of settling; in practice its learning rate is
# lowered over time by a schedule.

# %% [markdown]
# ## Graded tests
#
# Each cell below checks one step against values computed independently: plain numpy
# loops written straight from the formulas, and a few numbers worked out by hand.

# %% nbgrader={"grade": true, "grade_id": "test-optimizer-base", "locked": true, "points": 2, "schema_version": 3, "solution": false}
w1, w2 = Tensor(np.zeros(3)), Tensor(np.zeros((2, 2)))
opt = Optimizer(iter([w1, w2, w2, w1]))
assert len(opt.params) == 2 and opt.params[0] is w1 and opt.params[1] is w2
w1.grad, w2.grad = None, Tensor(np.ones((2, 2)), dtype=np.float64)
(entry,) = opt._gradients()
assert entry[0] == 1 and entry[1] is w2.data and entry[2].dtype == np.float32
opt.zero_grad()
assert w1.grad is None and w2.grad is None
for bad, error, words in (([], ValueError, "empty"), ([w1, 3.0], TypeError, "params[1]"),
                          (w1, TypeError, "single Tensor")):
    assert words in str(raises(error, Optimizer, bad))
w2.grad = Tensor(np.ones((4,)))
err = raises(ValueError, opt._gradients)
assert "(4,)" in str(err) and "(2, 2)" in str(err)

# %% nbgrader={"grade": true, "grade_id": "test-sgd", "locked": true, "points": 3, "schema_version": 3, "solution": false}
grads = [np.array([0.5, -1.0]), np.array([0.25, 0.5]), np.array([-1.0, 0.0])]


def sgd_reference(lr, momentum, weight_decay, nesterov):
    """The documented SGD rule as a plain float64 loop (no in-place tricks)."""
    p, buf, history = np.array([1.0, -2.0]), None, []
    for g in grads:
        d = g + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
        history.append(p)
    return history


for config in ({"momentum": 0.0, "weight_decay": 0.0, "nesterov": False},
               {"momentum": 0.9, "weight_decay": 0.0, "nesterov": False},
               {"momentum": 0.9, "weight_decay": 0.1, "nesterov": True}):
    p = Tensor([1.0, -2.0], dtype=np.float64)
    opt, array = SGD([p], lr=0.1, **config), p.data
    for g, expected in zip(grads, sgd_reference(0.1, **config)):
        p.grad = Tensor(g, dtype=np.float64)
        opt.step()
        np.testing.assert_allclose(p.data, expected, rtol=1e-12)
    assert p.data is array and opt.step_count == 3
# by hand, momentum 0.9: buffers [0.5, -1], [0.7, -0.4], [-0.37, -0.36]
np.testing.assert_allclose(sgd_reference(0.1, 0.9, 0.0, False)[-1], [0.917, -1.824])
p32 = Tensor([1.0, 2.0])
SGD([p32], lr=0.1).step()                      # no grad: nothing happens
assert p32.tolist() == [1.0, 2.0]
for kwargs in ({"lr": 0.0}, {"lr": 0.1, "momentum": -0.5}, {"lr": 0.1, "nesterov": True}):
    raises(ValueError, SGD, [p32], **kwargs)

# %% [markdown]
# The Adam reference below is a plain float64 loop straight from the formulas (new arrays
# every step, nothing updated in place), independent of the code above.

# %% nbgrader={"grade": true, "grade_id": "test-adam", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def adam_reference(grads, lr, b1, b2, eps, wd, decoupled):
    p = np.array([1.0, -2.0])
    m, v, history = np.zeros(2), np.zeros(2), []
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        history.append(p)
    return history


for cls, wd in ((Adam, 0.0), (Adam, 0.2), (AdamW, 0.2)):
    p = Tensor([1.0, -2.0], dtype=np.float64)
    opt = cls([p], lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd)
    expected = adam_reference(grads, 0.05, 0.8, 0.99, 1e-6, wd, cls is AdamW)
    for g, want in zip(grads, expected):
        p.grad = Tensor(g, dtype=np.float64)
        opt.step()
        np.testing.assert_allclose(p.data, want, rtol=1e-12)
    assert opt.state[0]["step"] == 3
# skipped parameter: no state, and its own step count starts at 1 later
a, b = Tensor([1.0, -2.0], dtype=np.float64), Tensor([5.0])
opt = Adam([a, b], lr=0.05, betas=(0.8, 0.99), eps=1e-6)
a.grad = Tensor(grads[0], dtype=np.float64)
opt.step()
assert b.tolist() == [5.0] and 1 not in opt.state
np.testing.assert_allclose(a.data, adam_reference(grads[:1], 0.05, 0.8, 0.99, 1e-6, 0.0, False)[0])
for kwargs in ({"betas": (1.0, 0.999)}, {"betas": (0.9, -0.1)}, {"eps": 0.0}):
    raises(ValueError, Adam, [a], **kwargs)

# %% nbgrader={"grade": true, "grade_id": "test-state-dict", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def train(optimizer, first, count):
    (w,) = optimizer.params
    for step in range(first, first + count):
        w.grad = Tensor(np.cos(np.arange(3.0) * (step + 1)))
        optimizer.step()
    return w.data


for make in (lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True), lambda ps: Adam(ps, lr=0.1)):
    whole = train(make([Tensor([1.0, 2.0, 3.0])]), 0, 5)
    part = make([Tensor([1.0, 2.0, 3.0])])
    middle = train(part, 0, 2).copy()
    saved = part.state_dict()
    assert all(isinstance(v, (np.ndarray, numbers.Number)) for v in saved.values())
    assert saved["step_count"] == 2 and any(key.startswith("state.0.") for key in saved)
    train(part, 2, 1)                          # must not change what was saved
    fresh = make([Tensor(middle)])
    fresh.load_state_dict(saved)
    assert np.array_equal(train(fresh, 2, 3), whole)
broken = dict(saved)
broken.pop("lr")
broken["state.7.exp_avg"] = np.zeros(3)
err = raises(ValueError, fresh.load_state_dict, broken)
assert "'lr'" in str(err) and "state.7.exp_avg" in str(err)

# %% [markdown]
# ## Systems analysis: what an optimizer costs
#
# An optimizer adds two costs to training: **memory** for its state, and **time** for
# `step()`. Both grow with the number of parameters, and for large models they matter:
# the optimizer state of Adam is often larger than the model itself.
#
# The model below is a multi-layer perceptron for 28x28 images (784 inputs, 128 hidden
# units, 10 outputs): two weight matrices and two bias vectors, about 100k float32
# parameters. Its parameters are plain Tensors with gradients set by hand (random,
# fixed), which is all an optimizer sees.
#
# ### Memory: bytes of state per byte of parameters
#
# After one `step()` the cell adds up the `nbytes` of every array in `optimizer.state`
# and divides by the parameters' bytes. (The per-parameter step counter of Adam is one
# Python integer per tensor, not per value, and is left out.)

# %%
LAYER_SHAPES = [(784, 128), (128,), (128, 10), (10,)]


def mlp_parameters(seed=0):
    """float32 parameters of a 784-128-10 MLP, each with a fixed random float32 gradient."""
    rng = np.random.default_rng(seed)
    params = []
    for shape in LAYER_SHAPES:
        param = Tensor(rng.standard_normal(shape, dtype=np.float32) * 0.05)
        param.grad = Tensor(rng.standard_normal(shape, dtype=np.float32) * 0.01)
        params.append(param)
    return params


def state_nbytes(optimizer):
    """Bytes of all numpy arrays the optimizer keeps in its per-parameter state."""
    return sum(value.nbytes for entry in optimizer.state.values()
               for value in entry.values() if isinstance(value, np.ndarray))


optimizers = {
    "SGD": lambda params: SGD(params, lr=1e-3),
    "SGD momentum": lambda params: SGD(params, lr=1e-3, momentum=0.9),
    "Adam": lambda params: Adam(params, lr=1e-3),
    "AdamW": lambda params: AdamW(params, lr=1e-3),
}
params = mlp_parameters()
param_bytes = sum(p.data.nbytes for p in params)
print(f"MLP 784-128-10: {sum(p.size for p in params):,} float32 parameters = {param_bytes:,} bytes")
for label, make in optimizers.items():
    optimizer = make(params)
    optimizer.step()
    used = state_nbytes(optimizer)
    print(f"{label:13s} state {used:>9,} bytes = {used / param_bytes:.2f} x the parameters; "
          f"training holds {(param_bytes * 2 + used) / param_bytes:.2f} x (params + grads + state)")

# %% [markdown]
# The cell above prints the measured ratios: plain SGD keeps nothing, momentum one array
# per parameter, Adam and AdamW two (`exp_avg` and `exp_avg_sq`). Counting the
# gradients too, training a model with Adam holds about four copies of its weights in
# memory, which is why large models are trained with their optimizer state split
# across devices or stored in lower precision.
#
# ### Time: one step() on about 100k parameters
#
# The cell times `step()` for each optimizer on the same model (fresh parameters per
# optimizer, so each one updates its own copy), with module 01's timing helpers
# (`tinytorch.utils.timing`). They follow TinyTorch's measurement rules in miniature:
# `time.perf_counter_ns`, calls grouped in batches of at least 2 ms (so the timer's own
# cost is negligible), the optimizers measured in alternating rounds so machine drift
# affects all of them, and the median with the interquartile range (IQR) as a noise
# indicator. Stepping thousands of times with a small learning rate and fixed
# gradients keeps the values in a normal range, so every call does the same work.

# %%
from tinytorch.utils.timing import (describe_environment, environment, measure_interleaved, measure_timer,
                                   required_sample_ns)

timer = measure_timer()
MIN_SAMPLE_NS = required_sample_ns(timer.overhead_ns, floor_ns=2_000_000)
print(describe_environment(environment(timer, MIN_SAMPLE_NS)))

values = sum(p.size for p in mlp_parameters())
steppers = {label: make(mlp_parameters()).step for label, make in optimizers.items()}
step_timings = measure_interleaved(steppers, repeats=11, min_sample_ns=MIN_SAMPLE_NS)
sgd_median = step_timings["SGD"].median_ns
for label, timing in step_timings.items():
    median = timing.median_ns
    noisy = f"  {timing.warning}" if timing.warning else ""
    print(f"{label:13s} step() median {median / 1e3:7.1f} us ({median / values:5.2f} ns per parameter, "
          f"{median / sgd_median:4.1f}x SGD), IQR/median {timing.iqr_over_median:5.1%}, "
          f"n={timing.n} batches of {timing.calls_per_sample}{noisy}")

# %% [markdown]
# The cell above prints the median time of one `step()` per optimizer and its ratio to
# plain SGD. Every update is a series of element-wise numpy passes over all parameters,
# with almost no arithmetic per number, so its time is set by memory traffic, not by
# arithmetic. Plain SGD makes two passes (`lr * g`, then `param -= ...`); momentum
# adds two more; `adam_update` makes about a dozen, and most of them create a new
# temporary array. (If a row ends in a `noisy:` warning, the machine was busy: follow
# its remedy and rerun.)
#
# ### Where Adam's time goes: temporary arrays
#
# Every numpy expression such as `(1 - beta1) * grad` allocates a new result array
# (here up to 400 KB for the largest weight matrix), writes it, and frees it when it is
# no longer used; `adam_update` creates about ten of them per call. Allocating is not
# always cheap: when a program frees several megabytes at once, the C allocator (glibc
# on Linux) may give that memory back to the operating system, and the next call must
# have it mapped in again, one 4 KB page at a time, each first write to a page taking a
# *page fault*. `out=` avoids all of this by making numpy write into an existing array.
#
# The cell below writes a version of the Adam update that puts every intermediate
# result into two preallocated scratch arrays (checked against `adam_update` first) and
# times both on the 784x128 weight matrix. It also counts the minor page faults per call
# (`resource.getrusage`, available on Linux and macOS) to test the explanation above.

# %%
def adam_update_preallocated(param, grad, exp_avg, exp_avg_sq, step, scratch, other, *, lr, beta1, beta2, eps):
    """adam_update without weight decay, every intermediate written into scratch/other (no allocation)."""
    np.multiply(exp_avg, beta1, out=exp_avg)
    np.multiply(grad, 1 - beta1, out=scratch)
    np.add(exp_avg, scratch, out=exp_avg)
    np.multiply(exp_avg_sq, beta2, out=exp_avg_sq)
    np.multiply(grad, grad, out=scratch)
    np.multiply(scratch, 1 - beta2, out=scratch)
    np.add(exp_avg_sq, scratch, out=exp_avg_sq)
    np.divide(exp_avg_sq, 1 - beta2 ** step, out=scratch)
    np.sqrt(scratch, out=scratch)
    np.add(scratch, eps, out=scratch)
    np.divide(exp_avg, 1 - beta1 ** step, out=other)
    np.divide(other, scratch, out=other)
    np.multiply(other, lr, out=other)
    np.subtract(param, other, out=param)


def adam_setup(seed=1):
    """[param, grad, exp_avg, exp_avg_sq] for the 784x128 weight matrix, after 3 plain Adam steps."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((784, 128), dtype=np.float32) * scale for scale in (0.05, 0.01)]
    arrays += [np.zeros((784, 128), np.float32), np.zeros((784, 128), np.float32)]
    for step in (1, 2, 3):
        adam_update(*arrays, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)
    return arrays


def minor_faults_per_call(fn, calls=50):
    """Minor page faults of this process per call of fn, or None where resource is unavailable."""
    if resource is None:
        return None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


try:
    import resource
except ImportError:  # Windows has no resource module: the fault counts are reported as unavailable
    resource = None

HYPER = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
textbook, preallocated = adam_setup(), adam_setup()
scratch, other = np.empty_like(textbook[0]), np.empty_like(textbook[0])
adam_update(*textbook, 4, weight_decay=0.0, **HYPER)
adam_update_preallocated(*preallocated, 4, scratch, other, **HYPER)
for ours, theirs in zip(textbook, preallocated):
    assert np.allclose(ours, theirs, rtol=1e-6, atol=1e-9)

variants = {
    "adam_update": lambda: adam_update(*textbook, 5, weight_decay=0.0, **HYPER),
    "preallocated": lambda: adam_update_preallocated(*preallocated, 5, scratch, other, **HYPER),
}
variant_timings = measure_interleaved(variants, repeats=11, min_sample_ns=MIN_SAMPLE_NS)
medians = {name: timing.median_ns for name, timing in variant_timings.items()}
for name, timing in variant_timings.items():
    faults = minor_faults_per_call(variants[name])
    fault_text = "unavailable (no resource module)" if faults is None else f"{faults:.0f}"
    print(f"{name:13s} median {timing.median_ns / 1e3:7.1f} us, {timing.noise}; "
          f"minor page faults per call: {fault_text}")
print(f"adam_update / preallocated: {medians['adam_update'] / medians['preallocated']:.1f}x "
      f"(one 784x128 float32 array = {textbook[0].nbytes // 4096} pages of 4 KB)")

# %% [markdown]
# The cell above prints the two times, their ratio and the page faults per call. How
# large the gap is depends on the machine, the operating system and its allocator:
# where the page faults per call come to several times the pages of one array, the
# temporaries are being mapped in afresh on every call, and that, not the arithmetic,
# is most of `adam_update`'s time. The fix is the one PyTorch's optimizers use: update
# state in place and reuse buffers (fused kernels go further and make a single pass over
# memory). The price is readability, which is why the rule you wrote keeps the formulas
# visible. The same trade-off returns in Module 17 (acceleration).

# %% [markdown]
# ## Summary
#
# - An optimizer turns gradients into in-place parameter updates. `Optimizer` collects
#   the parameters once (no repeats, clear errors), clears gradients with `zero_grad()`,
#   skips parameters whose `.grad` is `None`, and checks every gradient's shape before it
#   changes anything.
# - `SGD` implements PyTorch's rule with momentum, Nesterov momentum and L2 weight
#   decay; `Adam` adds per-parameter step sizes from bias-corrected running averages;
#   `AdamW` decouples the weight decay from the gradient. `sgd_update` and
#   `adam_update` are the same rules on plain numpy arrays.
# - Updates keep the parameter's array object and dtype, so a float32 model stays
#   float32 and nothing that holds the array is left behind.
# - `state_dict()` / `load_state_dict()` save and restore hyperparameters, step counts
#   and buffers as plain numbers and arrays (`np.savez`-ready); a resumed run matches an
#   uninterrupted one bit for bit.
# - Measured: SGD keeps no state, momentum one copy of the parameters, Adam and AdamW
#   two; the step times for a 100k-parameter MLP are in the cell above.
#
# Module 08 (training) puts this together: a loop that runs the forward pass, the loss,
# `backward()`, `step()` and `zero_grad()` over a dataset.
