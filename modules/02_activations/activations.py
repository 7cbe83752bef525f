# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 02: Activations
#
# > Activation functions: the element-wise nonlinearities (ReLU, Sigmoid, Tanh, GELU) and Softmax that turn a stack of linear layers into a network that can learn curved decision boundaries.
#
# ## Why activations matter
#
# A linear layer computes `x @ W + b`. Two linear layers in a row are still one linear
# layer: `(x @ W1 + b1) @ W2 + b2 = x @ (W1 @ W2) + (b1 @ W2 + b2)`. However many you
# stack, the network can only draw straight lines through the data. An *activation
# function* applied between the layers breaks this: it bends the output, and a stack of
# bent pieces can approximate any smooth function.
#
# The choice matters in practice. ReLU made deep networks trainable because it does
# not squash large inputs; Sigmoid turns a score into a probability; Tanh keeps values
# centred on zero; GELU is the smooth activation inside transformers; Softmax turns a
# row of scores into a probability distribution over classes.
#
# Two systems lessons hide in these few lines of numpy:
#
# - **Numerical stability.** `exp(1000)` does not fit in a float, so the textbook
#   formulas of Sigmoid and Softmax overflow on inputs a real network produces. You
#   write the stable forms.
# - **Cost.** ReLU is one comparison per element; the others evaluate `exp`, `tanh` or
#   `erf`. The systems analysis at the end measures what that costs per element.
#
# Every activation here is a small class with one method, `forward(x)`, that does all
# the computing; calling the object (`relu(x)`) just calls `forward`. Module 06
# (autograd) relies on this: it replaces each `forward` with a version that also
# records how to compute gradients.

# %%
#| default_exp core.activations

# %% [markdown]
# ## The idea: one function per element, computed safely
#
# The element-wise activations are scalar functions applied to every element:
#
# | name | formula | range |
# |---|---|---|
# | ReLU | `max(0, x)` | `[0, inf)` |
# | Sigmoid | `1 / (1 + exp(-x))` | `(0, 1)` |
# | Tanh | `(exp(x) - exp(-x)) / (exp(x) + exp(-x))` | `(-1, 1)` |
# | GELU | `x * Phi(x)`, `Phi` the standard normal CDF | `[-0.17, inf)` |
#
# Softmax is different: it normalises along one dimension,
# `softmax(x)_i = exp(x_i) / sum_j exp(x_j)`, so that every row is non-negative and sums to 1.
#
# The worked example below evaluates the textbook Sigmoid on a few inputs with plain
# numpy. By hand: `sigmoid(0) = 1 / (1 + 1) = 0.5` and `sigmoid(2) = 1 / (1 + e^-2) =
# 0.8807970779...`. At `x = -1000` the formula needs `exp(1000)`, which is larger than
# the largest float64 (about `1.8e308`): numpy returns `inf` and flags an overflow. The
# answer `1 / (1 + inf) = 0` happens to be right, but the overflow warning is noise in
# every training log, and in Softmax the same overflow gives `inf / inf = nan`. We ask
# numpy to raise instead of warn so the failure is visible.

# %%
import numpy as np


def naive_sigmoid(values):
    """The textbook formula: fine for small inputs, overflows in exp(-x) for x << 0."""
    return 1.0 / (1.0 + np.exp(-values))


small = np.array([0.0, 2.0, -2.0])
print("naive sigmoid of", small.tolist(), "=", naive_sigmoid(small).tolist())
assert naive_sigmoid(small)[0] == 0.5
assert abs(naive_sigmoid(small)[1] - 0.8807970779778823) < 1e-15

with np.errstate(over="raise"):
    try:
        naive_sigmoid(np.array([-1000.0]))
    except FloatingPointError as err:
        print("naive sigmoid of -1000 ->", "FloatingPointError:", err)
    else:
        raise AssertionError("exp(1000) should overflow")

# %% [markdown]
# ## The shared part
#
# Every activation starts the same way: check that it received a `Tensor` (a common
# slip is to pass a raw numpy array) and read its array; and it ends the same way: wrap
# the result back into a Tensor. You write both halves in step 1, as `_input_array` and
# `_output`, and every later activation uses them.
#
# The base class `Activation` (given, below) holds what every activation shares: calling
# the object runs `forward`, and a default `repr`. Each subclass implements `forward` and
# nothing else computes. Activations have no learnable parameters (module 03 adds layers
# that do); only GELU and Softmax take a setting in their constructors.

# %%
#| export
import math

import numpy as np
from scipy.special import erf

from tinytorch.core.tensor import Tensor, _normalize_dim


class Activation:
    """Base of the activations: calling one runs its forward method, where all computing happens."""

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self):
        return f"{type(self).__name__}()"

# %% [markdown]
# ## Step 1: ReLU
#
# `relu(x) = max(0, x)`: negative inputs become 0, the rest pass unchanged. By hand,
# `relu([-1, 0, 2]) = [0, 0, 2]`. Its slope is 1 wherever the input is positive, so
# gradients pass through deep stacks of ReLU layers without shrinking; that is why it
# became the default activation.
#
# First the two shared halves. `_input_array(x, name)` returns the array of the Tensor
# `x` (the check that `x` is a Tensor is given): float tensors keep their dtype (float32
# stays float32, float64 stays float64), while integer and bool tensors are computed in
# float32, TinyTorch's default (`ndarray.astype`; the dtype kind of a float is `"f"`).
# `_output(values, like)` wraps a result into a Tensor with the dtype of the input array
# `like`, so a stray float64 constant cannot silently widen a float32 network:
# `np.asarray(values, dtype=like.dtype)` converts only when the dtypes differ, and
# `Tensor.from_numpy` wraps without a copy.
#
# Then `ReLU.forward`: one vectorised numpy call on the array from `_input_array`,
# returned with `_output`. (`np.maximum(a, 0)` compares element by element; `np.max`
# would reduce the whole array to one number.)

# %% nbgrader={"grade": false, "grade_id": "activation-relu", "locked": false, "schema_version": 3, "solution": true}
#| export
def _input_array(x, name):
    """The array behind the Tensor x, as a float array (ints and bools become float32)."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name} expects a Tensor, got {type(x).__name__}; wrap arrays and lists with "
            "Tensor(...), e.g. Tensor(np.array([1.0, -2.0]))")
    ### BEGIN SOLUTION
    return x.data if x.dtype.kind == "f" else x.data.astype(np.float32)
    ### END SOLUTION


def _output(values, like):
    """values wrapped in a Tensor with the dtype of the input array like (no copy if it has it)."""
    ### BEGIN SOLUTION
    return Tensor.from_numpy(np.asarray(values, dtype=like.dtype))
    ### END SOLUTION


class ReLU(Activation):
    """relu(x) = max(0, x), element-wise."""

    def forward(self, x):
        """ReLU of every element of the Tensor x; same shape and float dtype."""
        ### BEGIN SOLUTION
        a = _input_array(x, "ReLU")
        return _output(np.maximum(a, 0), a)
        ### END SOLUTION

# %% [markdown]
# ### Check step 1

# %% nbgrader={"grade": true, "grade_id": "test-relu", "locked": true, "points": 1, "schema_version": 3, "solution": false}
relu = ReLU()
out = relu(Tensor([-1.0, 0.0, 2.0]))
assert out.tolist() == [0.0, 0.0, 2.0], f"by hand relu([-1, 0, 2]) = [0, 0, 2], got {out.tolist()}"
grid = np.random.default_rng(10).standard_normal((4, 5)).astype(np.float32)
np.testing.assert_array_equal(relu(Tensor(grid)).data, np.where(grid > 0, grid, 0), err_msg="ReLU differs from np.where")
for dtype, expected in ((np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float32), (bool, np.float32)):
    got = relu(Tensor([[-3, 4]], dtype=dtype)).dtype
    assert got == expected, f"ReLU of a {np.dtype(dtype)} tensor must be {np.dtype(expected)}, got {got}"
assert relu(Tensor([-2, 3], dtype=np.int64)).tolist() == [0.0, 3.0]
a64 = np.array([1.5, -2.0])
kept = _output(a64, a64)
assert kept.data is a64 and kept.dtype == np.float64, "_output must wrap an array of the right dtype without a copy"
assert _output(a64, np.zeros(2, dtype=np.float32)).dtype == np.float32, "_output must use the dtype of `like`"
for bad in (np.array([1.0, -1.0]), [1.0, 2.0]):
    try:
        relu(bad)
    except TypeError as err:
        print("TypeError:", err)
    else:
        raise AssertionError(f"ReLU of a {type(bad).__name__} must raise TypeError")
assert repr(relu) == "ReLU()"
print(relu, "->", out)
print("OK: ReLU zeroes negatives, keeps the float dtype (ints become float32) and rejects non-Tensors")

# %% [markdown]
# ## Step 2: a Sigmoid that never overflows
#
# The trick is to only ever call `exp` on a number that is **not positive**, so the
# result lies in `(0, 1]` and cannot overflow. Two exact rewrites of the formula:
#
# - for `x >= 0`: `sigmoid(x) = 1 / (1 + exp(-x))`, where `-x <= 0` already;
# - for `x < 0`: multiply the top and bottom of `1 / (1 + exp(-x))` by `exp(x)`:
#   `sigmoid(x) = exp(x) / (1 + exp(x))`, where `x < 0`.
#
# Both are one formula, `sigmoid(x) = exp(min(x, 0)) / (1 + exp(-|x|))`: for `x >= 0`
# the numerator is `exp(0) = 1`; for `x < 0` it is `exp(x)`, and `-|x|` is `-x` or `x`
# as needed. Every exponent is `<= 0`, so the worst that can happen is an *underflow*
# to 0 for very large `|x|`, which gives the correct limits 1 and 0 (numpy does not
# warn about underflow). No accuracy is lost: `sigmoid(-100)` comes out as the tiny
# positive number it is, not as 0. Use `np.minimum`, `np.abs` and `np.exp`; no Python
# loops, and no per-element branch (the systems analysis shows why that matters).

# %% nbgrader={"grade": false, "grade_id": "activation-sigmoid", "locked": false, "schema_version": 3, "solution": true}
#| export
class Sigmoid(Activation):
    """sigmoid(x) = 1 / (1 + exp(-x)), element-wise, in a form that never overflows."""

    def forward(self, x):
        """Sigmoid of every element of the Tensor x; same shape and float dtype."""
        ### BEGIN SOLUTION
        a = _input_array(x, "Sigmoid")
        numerator = np.exp(np.minimum(a, 0))  # 1 where a >= 0, exp(a) where a < 0
        return _output(numerator / (1 + np.exp(-np.abs(a))), a)
        ### END SOLUTION

# %% [markdown]
# ### Check step 2
#
# The check turns every numpy floating-point warning into an error, then feeds the
# inputs that broke the naive formula.

# %% nbgrader={"grade": true, "grade_id": "test-sigmoid", "locked": true, "points": 2, "schema_version": 3, "solution": false}
import warnings

from scipy.special import expit

sigmoid = Sigmoid()
assert sigmoid(Tensor(0.0)).item() == 0.5, "by hand: sigmoid(0) = 1 / (1 + 1) = 0.5"
assert abs(sigmoid(Tensor([2.0], dtype=np.float64)).item() - 0.8807970779778823) < 1e-15
with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
    warnings.simplefilter("error")
    extreme = sigmoid(Tensor([-1e4, -1000.0, 1000.0, 1e4]))
assert extreme.tolist() == [0.0, 0.0, 1.0, 1.0] and extreme.dtype == np.float32
tail = sigmoid(Tensor([-100.0], dtype=np.float64)).item()
assert abs(tail - math.exp(-100) / (1 + math.exp(-100))) < 1e-15 * tail, "sigmoid(-100) lost its relative accuracy"
values = np.linspace(-30.0, 30.0, 61)
np.testing.assert_allclose(sigmoid(Tensor(values, dtype=np.float64)).data, expit(values), rtol=1e-14,
                           err_msg="float64 Sigmoid differs from scipy.special.expit")
np.testing.assert_allclose(sigmoid(Tensor(values)).data, expit(values.astype(np.float32)), rtol=1e-6,
                           err_msg="float32 Sigmoid differs from scipy.special.expit")
assert sigmoid(Tensor(values)).dtype == np.float32
with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
    warnings.simplefilter("error")
    far = Sigmoid()(Tensor([-1e4, 1e4], dtype=np.float64)).tolist()
assert far == [0.0, 1.0]
assert repr(Sigmoid()) == "Sigmoid()"
print(sigmoid, "of [-1e4, -1000, 1000, 1e4] ->", extreme, "; sigmoid(-100) =", tail)
print("OK: Sigmoid is exact at 0, and stable (no overflow) at +-1e4")

# %% [markdown]
# ## Step 3: Tanh and GELU
#
# **Tanh** is a rescaled Sigmoid, `tanh(x) = 2 * sigmoid(2x) - 1`, centred on zero.
# numpy's `np.tanh` is already stable (it saturates to +-1), so `Tanh.forward` is a
# single call.
#
# **GELU** (Gaussian Error Linear Unit) weights each input by the probability that a
# standard normal variable is below it: `gelu(x) = x * Phi(x)`, where
# `Phi(x) = 0.5 * (1 + erf(x / sqrt(2)))` is the normal CDF written with the error
# function `erf` (`scipy.special.erf`, imported above). For large positive `x`,
# `Phi(x) -> 1` and GELU acts like the identity; for large negative `x` it goes to 0,
# like ReLU, but it is smooth at 0. By hand: `Phi(1) = 0.8413447460685429...`, so
# `gelu(1) = 0.8413447460685429...` and `gelu(-1) = -1 * (1 - Phi(1)) = -0.1586552539...`.
#
# Older hardware lacked a fast `erf`, so BERT and GPT-2 used an approximation built
# from `tanh`:
# `gelu(x) ~ 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))`.
# `GELU(approximate="none")` computes the exact form, `GELU(approximate="tanh")` the
# approximation (the same names as torch). The constructor (given) rejects any other
# value. Write the constants as Python floats (`math.sqrt(2)`, not `np.sqrt(2)`):
# a numpy float64 scalar would promote a float32 array to float64 (NEP 50).

# %% nbgrader={"grade": false, "grade_id": "activation-tanh", "locked": false, "schema_version": 3, "solution": true}
#| export
class Tanh(Activation):
    """tanh(x), element-wise, in (-1, 1)."""

    def forward(self, x):
        """Tanh of every element of the Tensor x; same shape and float dtype."""
        ### BEGIN SOLUTION
        a = _input_array(x, "Tanh")
        return _output(np.tanh(a), a)
        ### END SOLUTION

# %% [markdown]
# ### Check step 3a: Tanh

# %% nbgrader={"grade": true, "grade_id": "test-tanh", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert Tanh()(Tensor([0.0])).tolist() == [0.0]
assert abs(Tanh()(Tensor(1.0, dtype=np.float64)).item() - 0.7615941559557649) < 1e-15, "tanh(1) = 0.76159415595..."
xs = np.linspace(-6.0, 6.0, 49)
np.testing.assert_allclose(Tanh()(Tensor(xs, dtype=np.float64)).data, np.tanh(xs), rtol=1e-14,
                           err_msg="Tanh differs from np.tanh")
assert Tanh()(Tensor(xs)).dtype == np.float32 and repr(Tanh()) == "Tanh()"
print(Tanh(), "of [-6, 0, 6] ->", Tanh()(Tensor([-6.0, 0.0, 6.0])))
print("OK: Tanh matches np.tanh and keeps the dtype")

# %% nbgrader={"grade": false, "grade_id": "activation-gelu", "locked": false, "schema_version": 3, "solution": true}
#| export
_GELU_CHOICES = ("none", "tanh")


class GELU(Activation):
    """gelu(x) = x * Phi(x), element-wise; approximate="tanh" uses the tanh approximation."""

    def __init__(self, approximate="none"):
        if approximate not in _GELU_CHOICES:
            raise ValueError(
                f"GELU approximate must be one of {_GELU_CHOICES}, got {approximate!r}: "
                "'none' is exact (erf), 'tanh' the tanh approximation")
        self.approximate = approximate

    def __repr__(self):
        return f"GELU(approximate={self.approximate!r})"

    def forward(self, x):
        """GELU of every element of the Tensor x; same shape and float dtype."""
        ### BEGIN SOLUTION
        a = _input_array(x, "GELU")
        if self.approximate == "tanh":
            inner = math.sqrt(2 / math.pi) * (a + 0.044715 * a * a * a)
            return _output(0.5 * a * (1 + np.tanh(inner)), a)
        return _output(0.5 * a * (1 + erf(a / math.sqrt(2))), a)
        ### END SOLUTION

# %% [markdown]
# ### Check step 3b: GELU
#
# The oracle for the exact form is `scipy.special.erf`; for the approximation, its
# formula evaluated in float64 numpy.

# %% nbgrader={"grade": true, "grade_id": "test-gelu", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from scipy.special import erf as erf_oracle

exact = GELU()(Tensor([1.0, -1.0, 0.0], dtype=np.float64)).tolist()
assert abs(exact[0] - 0.8413447460685429) < 1e-15 and abs(exact[1] + 0.15865525393145707) < 1e-15, \
    f"by hand gelu(1) = 0.84134474606..., gelu(-1) = -0.15865525393...; got {exact[:2]}"
approx = GELU(approximate="tanh")(Tensor([1.0], dtype=np.float64)).item()
print(f"gelu(1): exact {exact[0]:.10f}, tanh approximation {approx:.10f}")
assert abs(approx - exact[0]) < 1e-3 and approx != exact[0], "the tanh form approximates, it is not the exact one"
xs = np.linspace(-6.0, 6.0, 49)
np.testing.assert_allclose(GELU()(Tensor(xs, dtype=np.float64)).data,
                           xs * 0.5 * (1 + erf_oracle(xs / np.sqrt(2))), rtol=1e-12, atol=1e-15,
                           err_msg="GELU(approximate='none') differs from x * Phi(x) with scipy's erf")
np.testing.assert_allclose(GELU("tanh")(Tensor(xs, dtype=np.float64)).data,
                           0.5 * xs * (1 + np.tanh(np.sqrt(2 / np.pi) * (xs + 0.044715 * xs ** 3))),
                           rtol=1e-12, atol=1e-15, err_msg="GELU(approximate='tanh') differs from its formula")
assert GELU()(Tensor(xs)).dtype == np.float32 and GELU("tanh")(Tensor(xs)).dtype == np.float32, \
    "GELU must keep float32 (write the constants as Python floats)"
try:
    GELU(approximate="fast")
except ValueError as err:
    print("ValueError:", err)
else:
    raise AssertionError("GELU(approximate='fast') should fail")
assert repr(GELU("tanh")) == "GELU(approximate='tanh')"
print(GELU(), GELU(approximate="tanh"))
print("OK: both GELU variants match their oracles and the hand values")

# %% [markdown]
# ## Step 4: a stable Softmax
#
# `softmax(x)_i = exp(x_i) / sum_j exp(x_j)` along one dimension `dim` (default the
# last one: one row of class scores per sample). Subtracting a constant `c` from every
# element does not change the result, because `exp(x_i - c) / sum_j exp(x_j - c)` has
# the factor `exp(-c)` on top and bottom. Choose `c = max_j x_j`: then every exponent is
# `<= 0` (no overflow) and the largest one is exactly `exp(0) = 1` (the sum is at least
# 1, so no division by zero). By hand, `softmax([1000, 1000]) = [0.5, 0.5]` and
# `softmax([-1000, 0]) = [exp(-1000) / (1 + exp(-1000)), 1 / (1 + exp(-1000))]`, which is
# `[0, 1]` to float precision; the naive formula gives `nan` for the first and is fine
# for the second only by luck.
#
# Use `keepdims=True` in the reductions so that the max and the sum broadcast back
# against the input. `dim` may be negative; `_normalize_dim(dim, ndim, what)` from
# module 01 turns it into an axis in `[0, ndim)` and raises a `ValueError` naming `dim`
# and `ndim` when it is out of range. Call it in `forward`: the constructor (given) only
# checks that `dim` is an int, because the input's `ndim` is known only in `forward`.

# %% nbgrader={"grade": false, "grade_id": "activation-softmax", "locked": false, "schema_version": 3, "solution": true}
#| export
class Softmax(Activation):
    """softmax(x) along dim: exp(x - max) / sum(exp(x - max)); each slice sums to 1."""

    def __init__(self, dim=-1):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"Softmax dim must be an int, got {type(dim).__name__} {dim!r}")
        self.dim = int(dim)

    def __repr__(self):
        return f"Softmax(dim={self.dim})"

    def forward(self, x):
        """Softmax of the Tensor x along self.dim; same shape and float dtype."""
        ### BEGIN SOLUTION
        a = _input_array(x, "Softmax")
        axis = _normalize_dim(self.dim, a.ndim, "Softmax dim")
        e = np.exp(a - a.max(axis=axis, keepdims=True))  # every exponent <= 0
        return _output(e / e.sum(axis=axis, keepdims=True), a)
        ### END SOLUTION

# %% [markdown]
# ### Check step 4

# %% nbgrader={"grade": true, "grade_id": "test-softmax", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from scipy.special import softmax as softmax_oracle

softmax = Softmax()
with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
    warnings.simplefilter("error")
    assert softmax(Tensor([1000.0, 1000.0])).tolist() == [0.5, 0.5], "by hand softmax([1000, 1000]) = [0.5, 0.5]"
    assert softmax(Tensor([-1000.0, 0.0])).tolist() == [0.0, 1.0], "softmax([-1000, 0]) is [0, 1] to float precision"
probs = Softmax(dim=0)(Tensor([[1.0, 2.0], [3.0, 2.0]], dtype=np.float64))
np.testing.assert_allclose(probs.sum(axis=0).data, [1.0, 1.0], err_msg="every slice along dim must sum to 1")
np.testing.assert_allclose(probs.data[:, 0], [1 / (1 + math.e ** 2), 1 / (1 + math.e ** -2)],
                           err_msg="by hand: column [1, 3] gives [1 / (1 + e^2), 1 / (1 + e^-2)]")
scores = np.random.default_rng(11).standard_normal((3, 4, 5)) * 10
for dim in (-1, 0, 1):
    ours = Softmax(dim=dim)(Tensor(scores, dtype=np.float64)).data
    np.testing.assert_allclose(ours, softmax_oracle(scores, axis=dim), rtol=1e-12,
                               err_msg=f"Softmax(dim={dim}) differs from scipy.special.softmax")
assert Softmax()(Tensor(scores)).dtype == np.float32
for dim in (2, -3):
    try:
        Softmax(dim=dim)(Tensor([[1.0, 2.0]]))
    except ValueError as err:
        print("ValueError:", err)
        assert str(dim) in str(err) and "2 dims" in str(err), f"the error must name dim and ndim: {err}"
    else:
        raise AssertionError(f"dim={dim} on a 2-D tensor must raise ValueError")
assert repr(softmax) == "Softmax(dim=-1)"
print(softmax, "of [1, 2, 3] ->", softmax(Tensor([1.0, 2.0, 3.0])))
print("OK: Softmax is stable for +-1000, sums to 1 along dim, and checks dim")

# %% [markdown]
# ## Systems analysis: what an activation costs
#
# Two things decide what an element-wise activation costs in numpy:
#
# - **The function itself.** ReLU is one comparison per element; `exp`, `tanh` and
#   `erf` take many instructions each. numpy evaluates `exp` and `tanh` with SIMD code
#   that processes several float32 numbers per instruction; `scipy.special.erf` is a
#   plainer loop.
# - **The number of passes over memory.** Every numpy operation reads its whole input
#   and writes a whole new temporary array. `ReLU` and `Tanh` are one operation each;
#   the stable Sigmoid is seven (`minimum`, `exp`, `abs`, negate, `exp`, `1 + ...`,
#   divide), the tanh-approximate GELU about nine, and Softmax five (`max`, subtract,
#   `exp`, `sum`, divide). A million float32 numbers are 4 MB, more
#   than most L2 caches, so each pass streams through main memory.
#
# The cells below time each activation on the same 1,000,000-element float32 tensor
# with module 01's timing helpers (`tinytorch.utils.timing`): a calibrated batch of calls
# lasting at least 5 ms per sample (the calibration also warms up), all candidates
# measured in alternating rounds (A B C ... A B C ...) so machine drift hits all of them,
# and the median reported with the interquartile range (IQR) as a noise indicator.

# %%
from tinytorch.utils.timing import (describe_environment, environment, measure_interleaved, measure_timer,
                                   required_sample_ns)

timer = measure_timer()
MIN_SAMPLE_NS = required_sample_ns(timer.overhead_ns, floor_ns=5_000_000)  # the rules ask for >= 1 ms; 5 ms is steadier
print(describe_environment(environment(timer, MIN_SAMPLE_NS)))

# %% [markdown]
# ### Time per element of each activation (float32)
#
# Softmax runs on the same million numbers viewed as 1000 rows of 1000 scores.

# %%
N_ELEMENTS = 1_000_000
x32 = Tensor.randn(N_ELEMENTS, rng=0)
rows32 = x32.reshape(1000, 1000)
candidates = {
    "ReLU": lambda: ReLU()(x32),
    "Sigmoid": lambda: Sigmoid()(x32),
    "Tanh": lambda: Tanh()(x32),
    "GELU(none)": lambda: GELU()(x32),
    "GELU(tanh)": lambda: GELU("tanh")(x32),
    "Softmax(dim=-1)": lambda: Softmax()(rows32),
}
timings = measure_interleaved(candidates, repeats=9, min_sample_ns=MIN_SAMPLE_NS)
relu_median = timings["ReLU"].median_ns
print(f"{N_ELEMENTS:,} float32 elements, median of {timings['ReLU'].n} interleaved samples:")
for name, timing in timings.items():
    median = timing.median_ns
    flag = f"  {timing.warning}" if timing.warning else ""
    print(f"  {name:16s} {median / N_ELEMENTS:6.2f} ns/element  ({median / 1e6:6.2f} ms per call, "
          f"{median / relu_median:4.1f}x ReLU, IQR/median {timing.iqr_over_median:.1%}){flag}")
slower = [name for name in candidates if name != "ReLU" and timings[name].median_ns > relu_median]
print("costlier than ReLU per element:", ", ".join(slower) or "none")

# %% [markdown]
# The cell above prints the time per element and the ratio to ReLU. ReLU's time is
# close to that of just reading and writing the memory once. Compare the others with
# the two causes above: the exp- and erf-based activations built from several numpy
# operations (Sigmoid, both GELUs, Softmax) pay for every extra pass and temporary
# array as well as for the arithmetic, while `Tanh`, a single SIMD-vectorised numpy
# call, can come out close to ReLU. The lesson for later modules: in numpy, count the
# passes over memory, not just the formula; a framework gets much of its speed by
# fusing such chains into one pass. And since activations run on every element of
# every layer's output, a cheap one such as ReLU matters in a large network. If a row
# ends in a `noisy:` warning, the machine was busy while measuring: follow its remedy
# and run the cell again.
#
# ### A branch per element: `np.where` vs the branch-free Sigmoid
#
# A natural way to write the stable Sigmoid picks a formula per element:
# `np.where(x >= 0, 1 / (1 + z), z / (1 + z))` with `z = exp(-|x|)`. It is just as
# exact. The cell below checks that, then times it against `Sigmoid` on the same
# random-sign data, and on the same values sorted (all negatives first, then all
# positives), interleaved.

# %%
def where_sigmoid(values):
    """Stable sigmoid that picks a branch per element with np.where."""
    z = np.exp(-np.abs(values))
    return np.where(values >= 0, 1 / (1 + z), z / (1 + z))


sorted32 = Tensor.from_numpy(np.sort(x32.data))
np.testing.assert_allclose(where_sigmoid(x32.data), Sigmoid()(x32).data, rtol=1e-6)
branching = measure_interleaved({
    "Sigmoid, random signs": lambda: Sigmoid()(x32),
    "Sigmoid, sorted": lambda: Sigmoid()(sorted32),
    "np.where, random signs": lambda: where_sigmoid(x32.data),
    "np.where, sorted": lambda: where_sigmoid(sorted32.data),
}, repeats=9, min_sample_ns=MIN_SAMPLE_NS)
for name, timing in branching.items():
    print(f"  {name:23s} {timing.median_ns / N_ELEMENTS:6.2f} ns/element, {timing.noise}")

# %% [markdown]
# The cell above prints the four times. The branch-free `Sigmoid` does the same work
# whatever the signs. numpy's `where` loop branches on every element of the mask: on
# sorted data the CPU predicts that branch almost always right, on random signs it
# guesses wrong about half the time and throws away work each time. If the
# `np.where` row for random signs is much slower than the sorted one on your machine,
# that is the cost of branch mispredictions, and it is why `Sigmoid` above uses one
# formula for every element.
#
# ### float32 vs float64
#
# The same Sigmoid on the same values in both dtypes, interleaved. float64 moves twice
# the bytes in each of its passes, and a SIMD register holds half as many float64
# numbers, so `exp` processes fewer elements per instruction.

# %%
x64 = Tensor(x32, dtype=np.float64)
by_dtype = measure_interleaved({"float32": lambda: Sigmoid()(x32), "float64": lambda: Sigmoid()(x64)},
                               repeats=15, min_sample_ns=MIN_SAMPLE_NS)
for name, timing in by_dtype.items():
    nbytes = (x32 if name == "float32" else x64).data.nbytes
    print(f"Sigmoid {name}: {timing.median_ns / N_ELEMENTS:6.2f} ns/element, input {nbytes:,} bytes, "
          f"{timing.noise}")
ratio = by_dtype["float64"].median_ns / by_dtype["float32"].median_ns
print(f"ratio of medians, float64 / float32: {ratio:.2f}")

# %% [markdown]
# The cell above prints both times and their ratio. Compare it with the factor of 2 in
# bytes: a ratio near 2 means the work is limited by memory traffic or by SIMD width,
# a ratio near 1 means something else (such as allocating the temporary arrays)
# dominates. Whatever the time ratio on your machine, float32, TinyTorch's default,
# halves the memory that every activation output takes.
#
# ## Summary
#
# - Activations make stacked linear layers nonlinear. Each is a class whose `forward(x)`
#   does all the computing; calling the object calls `forward` (module 06 swaps in a
#   differentiable `forward`).
# - ReLU is `max(0, x)`; Tanh is `np.tanh`; GELU is `x * Phi(x)` with the exact `erf`
#   form or the tanh approximation.
# - Stability comes from rewriting, not from clipping: Sigmoid only exponentiates
#   non-positive numbers (`min(x, 0)` and `-|x|`), Softmax subtracts the maximum along `dim`. Both are exact for inputs of
#   `+-1000` and beyond, with no overflow warnings.
# - Outputs keep the input's float dtype, so a float32 network stays float32.
# - Measured: the time per element of each activation against ReLU, and of float32
#   against float64; in numpy the cost follows the number of passes over memory as
#   much as the formula. Your numbers are in the cells above.
#
# Next, module 03 builds layers (`Linear`, `Sequential`) that put these activations
# between learnable weights.
