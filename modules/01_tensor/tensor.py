# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 01: Tensor
#
# > The Tensor: an n-dimensional array of numbers with a shape and a dtype, on which every other TinyTorch module builds.
#
# ## Why tensors matter
#
# Everything a neural network touches is a tensor: a batch of images is a 4-D array
# (batch, channels, height, width), a layer's weights are a matrix, a loss is a 0-d
# tensor holding one number. Training and inference are long chains of a few operations
# on these arrays: element-wise arithmetic, matrix multiplication, reshaping and
# reductions. If those few operations are correct, fast and give clear errors, the rest
# of the framework is easy to build; if they are not, every later module inherits the bug.
#
# In this module you build `Tensor`, a thin, careful wrapper around a numpy array.
# numpy does the number crunching (in compiled code and BLAS); your job is the part a
# framework adds: a small, predictable API, a fixed default dtype, the shape rules of
# broadcasting, matrix products, reshapes and reductions, and error messages that say
# what went wrong and what to do. Later modules add autograd, layers and optimizers on
# top of exactly this class.

# %%
#| default_exp core.tensor

# %% [markdown]
# ## The idea: a block of memory plus a description of how to read it
#
# A tensor is a flat block of memory plus three pieces of metadata:
#
# - **dtype**: how many bytes one number takes and how to decode them (`float32`: 4 bytes).
# - **shape**: the size of each dimension, e.g. `(2, 3)` for 2 rows of 3 numbers.
# - **strides**: how many bytes to step in memory to move one position along each
#   dimension. Transposing a matrix only swaps its strides: no number is moved.
#
# The worked example below is a single dense layer written in plain numpy,
# `y = x @ w + b`. The matrix product needs the inner dimensions to agree
# (`(2, 3) @ (3, 2) -> (2, 2)`), and adding the bias of shape `(2,)` to a `(2, 2)`
# result uses *broadcasting*: the bias is reused for every row without being copied.
# The expected numbers are worked out by hand in the comments.

# %%
import numpy as np

x = np.array([[1.0, 2.0, 3.0],
              [4.0, 5.0, 6.0]], dtype=np.float32)  # 2 samples, 3 features each
w = np.array([[1.0, 0.0],
              [0.0, 1.0],
              [1.0, 1.0]], dtype=np.float32)       # 3 inputs -> 2 outputs
b = np.array([0.5, 1.0], dtype=np.float32)         # one bias per output

y = x @ w + b
# By hand, row 0: [1*1 + 2*0 + 3*1, 1*0 + 2*1 + 3*1] + [0.5, 1.0] = [4.5, 6.0]
#          row 1: [4*1 + 5*0 + 6*1, 4*0 + 5*1 + 6*1] + [0.5, 1.0] = [10.5, 12.0]
assert np.array_equal(y, np.array([[4.5, 6.0], [10.5, 12.0]], dtype=np.float32))

print("x: shape", x.shape, "dtype", x.dtype, "strides (bytes)", x.strides)
print("x.T: shape", x.T.shape, "strides (bytes)", x.T.strides,
      "shares memory with x:", np.shares_memory(x, x.T))
print("y = x @ w + b =", y.tolist(), "shape", y.shape)

# %% [markdown]
# ## The given part: checking what comes in
#
# Every operation first checks its arguments, so that bad input fails early with a
# message that says what was received and what to do. Those checks are given and run
# before your code, so even the stubs you start from reject bad input clearly. The
# cell below holds the ones several steps share:
#
# - `_resolve_dtype(dtype)`: the dtype of a new tensor, float32 when `dtype` is `None`;
#   a `TypeError` for non-numeric dtypes such as `str`.
# - `_as_numeric_array(data)`: `data` (a number, nested lists or tuples, an ndarray or a
#   Tensor) read as an ndarray, which may share memory with `data`; a `ValueError` for
#   ragged lists such as `[[1, 2], [3]]` (they cannot form a rectangle) and a
#   `TypeError` for strings and other objects.
# - `_shape_from_args(args)`: a shape given as ints, `zeros(2, 3)`, or as one tuple,
#   `zeros((2, 3))`, as a tuple of ints; `_creation_shape(args)` also rejects negative
#   sizes with a `ValueError`.
# - `_normalize_dim(dim, ndim, what)`: a dimension index in `[0, ndim)`, negative ones
#   counted from the end (`-1` is the last); a `ValueError` naming the valid range.
#   Modules 02 and 04 use it too.
#
# Methods of a class are usually written inside its `class` block. Here most of them get
# a cell of their own: fastcore's `@patch` decorator (fastcore is the library nbdev is
# built on) adds the function below it to the class named in the annotation of its first
# argument, so `@patch def __getitem__(self: Tensor, key)` defines `Tensor.__getitem__`
# as if it had been written in the class. `@patch` also leaves the function's own name
# defined in the module (bound to `None`, or to the built-in of that name, not to the
# function), so a public method gets a private function name and its method name in
# `nm`: `@patch(nm="reshape") def _reshape(self: Tensor, ...)` defines `Tensor.reshape`,
# and the module still offers one public name, `Tensor`.

# %%
#| export
import math
import numbers
import operator

import numpy as np
from fastcore.basics import patch

_DEFAULT_DTYPE = np.dtype(np.float32)
_NUMERIC_KINDS = "biuf"  # numpy dtype kinds: bool, signed int, unsigned int, float


def _resolve_dtype(dtype):
    """The dtype a new tensor gets: float32 when dtype is None; TypeError if not numeric."""
    resolved = _DEFAULT_DTYPE if dtype is None else np.dtype(dtype)
    if resolved.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"Tensor dtype must be numeric (bool, int, uint or float), got {resolved}; "
            "use e.g. np.float32 or np.int64")
    return resolved


def _as_numeric_array(data):
    """data (number, nested lists/tuples, ndarray or Tensor) as a numeric ndarray (may share memory)."""
    try:
        array = np.asarray(data)  # a Tensor gives its own array, through Tensor.__array__
    except ValueError as err:
        raise ValueError(
            f"Tensor data must be rectangular, got a ragged {type(data).__name__}: nested "
            "lists at the same depth need the same length; pad or split them first") from err
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"Tensor data must be numeric, got {type(data).__name__} (numpy reads it as "
            f"dtype {array.dtype}); pass a number, nested lists/tuples of numbers, a numpy "
            "array or a Tensor")
    return array


def _shape_from_args(args):
    """Shape arguments given as ints, f(2, 3), or as one tuple, f((2, 3)), as a tuple."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    try:
        return tuple(operator.index(dim) for dim in args)
    except TypeError:
        raise TypeError(f"shape dimensions must be integers, got {args!r}") from None


def _creation_shape(args):
    """Shape for a new tensor (zeros, ones, randn); ValueError for negative sizes."""
    shape = _shape_from_args(args)
    if any(dim < 0 for dim in shape):
        raise ValueError(f"tensor dimensions must be >= 0, got shape {shape}")
    return shape


def _normalize_dim(dim, ndim, what):
    """dim as an index in [0, ndim); ValueError naming the valid range otherwise."""
    dim = operator.index(dim)
    if not -ndim <= dim < ndim:
        valid = f"{-ndim}..{ndim - 1}" if ndim else "none, a 0-d tensor has no dimensions"
        raise ValueError(
            f"{what} {dim} is out of range for a tensor with {ndim} dims (valid: {valid})")
    return dim % ndim

# %% [markdown]
# ## Step 1: creating a tensor
#
# `Tensor(data, dtype=None)` accepts a Python number, (nested) lists or tuples, a numpy
# array or another Tensor, and always **copies** the data, like `torch.tensor`. Later
# changes to the source cannot leak into the tensor.
#
# `dtype=None` means **float32**. Neural networks tolerate the rounding error of 32-bit
# floats, and float32 halves the memory of float64: a model's weights take half the RAM,
# twice as many numbers fit in each cache line and each SIMD register, and memory-bound
# operations move half the bytes. (The systems analysis section at the end measures both
# effects.) An explicit dtype is honoured: labels are `np.int64`, and a later module
# quantizes weights to `np.int8`.
#
# `Tensor.from_numpy(array)` is the other way in: it **wraps** an existing array without
# copying and keeps its dtype, like `torch.from_numpy`. It must not call `__init__`
# (which copies): `cls.__new__(cls)` makes an empty instance, and you set its `data`.
# Every operation in this module builds its result with numpy and wraps it with
# `from_numpy`, so results are not copied a second time. The constructors `zeros`,
# `ones` and `randn` do the same with a fresh numpy array: `np.zeros`, `np.ones`, and
# the float32 `standard_normal` of `np.random.default_rng(rng)`, where `rng` is `None`
# (fresh randomness), an int seed (reproducible) or a `np.random.Generator` you pass
# along (`default_rng` returns a Generator unchanged).
#
# The shape, dtype, size and number of dimensions are not stored twice: the four
# properties read them from the array (`ndarray.shape`, `.dtype`, `.size`, `.ndim`).
# A tensor also behaves as a Python value: `t.numpy()` is the array itself (no copy),
# `t.tolist()` converts every element to a Python number (a copy), `t.item()` is the
# single element of a one-element tensor as a Python number (`ndarray.item()`), `len(t)`
# is the size of the first dimension, and `bool(t)` is the truth of the single element.
# The checks before them are given (`item()` and `bool()` need exactly one element, `len()`
# at least one dimension, as in numpy).
#
# In the class below you write the bodies of `__init__`, `from_numpy`, `zeros`, `ones`,
# `randn`, the four properties, `numpy`, `tolist`, `item`, `__len__` and `__bool__`; the
# argument checks above each body are given. The rest of the class is given too:
# iteration (over the first dimension, with the indexing of step 6), `float()`/`int()` of
# one-element tensors (through `item()`), `np.asarray(t)` support (`__array__`) and
# `__repr__`. The operations come in the next steps, each in a cell of its own with
# `@patch`: arithmetic (step 2), matrix products (step 3), `reshape` and `transpose`
# (step 4), reductions (step 5) and indexing (step 6).

# %% nbgrader={"grade": false, "grade_id": "tensor-creation", "locked": false, "schema_version": 3, "solution": true}
#| export
class Tensor:
    """An n-dimensional array of numbers backed by a numpy ndarray (`.data`).

    Tensor(data, dtype=None) copies data; dtype None means float32.
    Tensor.from_numpy(array) wraps an ndarray without copying.
    Operators follow numpy: broadcasting, dtype promotion, matmul semantics.
    """

    # numpy looks at __array_ufunc__ before it runs a ufunc on a foreign object. None
    # means "this type does not take part in ufuncs": `ndarray + tensor` then makes
    # ndarray.__add__ return NotImplemented, so Python calls Tensor.__radd__ and the
    # result is a Tensor (instead of an object array of Tensors built by numpy).
    __array_ufunc__ = None

    def __init__(self, data, dtype=None):
        """Copy data (number, nested lists/tuples, ndarray or Tensor) into a new tensor."""
        array, dtype = _as_numeric_array(data), _resolve_dtype(dtype)
        ### BEGIN SOLUTION
        self.data = array.astype(dtype, copy=True)
        ### END SOLUTION

    @classmethod
    def from_numpy(cls, array):
        """Wrap array without copying: the tensor shares its memory and keeps its dtype."""
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"Tensor.from_numpy expects a numpy.ndarray, got {type(array).__name__}; "
                "use Tensor(data) to copy other data into a tensor")
        _resolve_dtype(array.dtype)  # TypeError for non-numeric arrays
        ### BEGIN SOLUTION
        tensor = cls.__new__(cls)
        tensor.data = array
        return tensor
        ### END SOLUTION

    @classmethod
    def zeros(cls, *shape, dtype=np.float32):
        """Tensor of zeros; shape as ints or one tuple: zeros(2, 3) or zeros((2, 3))."""
        shape, dtype = _creation_shape(shape), _resolve_dtype(dtype)
        ### BEGIN SOLUTION
        return cls.from_numpy(np.zeros(shape, dtype=dtype))
        ### END SOLUTION

    @classmethod
    def ones(cls, *shape, dtype=np.float32):
        """Tensor of ones; shape as ints or one tuple: ones(2, 3) or ones((2, 3))."""
        shape, dtype = _creation_shape(shape), _resolve_dtype(dtype)
        ### BEGIN SOLUTION
        return cls.from_numpy(np.ones(shape, dtype=dtype))
        ### END SOLUTION

    @classmethod
    def randn(cls, *shape, rng=None):
        """float32 standard-normal samples; rng is None, an int seed or a np.random.Generator."""
        shape = _creation_shape(shape)
        ### BEGIN SOLUTION
        generator = np.random.default_rng(rng)  # returns a Generator argument unchanged
        return cls.from_numpy(generator.standard_normal(shape, dtype=np.float32))
        ### END SOLUTION

    # ---- properties: read from the array, never stored twice ----
    @property
    def shape(self):
        """Size of each dimension, as a tuple of ints."""
        ### BEGIN SOLUTION
        return self.data.shape
        ### END SOLUTION

    @property
    def dtype(self):
        """The numpy dtype of the elements."""
        ### BEGIN SOLUTION
        return self.data.dtype
        ### END SOLUTION

    @property
    def size(self):
        """Total number of elements."""
        ### BEGIN SOLUTION
        return self.data.size
        ### END SOLUTION

    @property
    def ndim(self):
        """Number of dimensions (0 for a single number)."""
        ### BEGIN SOLUTION
        return self.data.ndim
        ### END SOLUTION

    # ---- conversions and the Python protocol ----
    def numpy(self):
        """The underlying ndarray itself (no copy: changing it changes the tensor)."""
        ### BEGIN SOLUTION
        return self.data
        ### END SOLUTION

    def tolist(self):
        """The elements as (nested) Python lists of Python numbers."""
        ### BEGIN SOLUTION
        return self.data.tolist()
        ### END SOLUTION

    def item(self):
        """The single element as a Python number; ValueError unless size == 1."""
        if self.size != 1:
            raise ValueError(
                f"item() needs a tensor with exactly one element, got shape {self.shape} "
                f"({self.size} elements); index or reduce it first, e.g. t.sum().item()")
        ### BEGIN SOLUTION
        return self.data.item()
        ### END SOLUTION

    def __len__(self):
        """Size of the first dimension; TypeError for a 0-d tensor."""
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor is undefined; use .item() to read its value")
        ### BEGIN SOLUTION
        return self.shape[0]
        ### END SOLUTION

    def __iter__(self):
        """Iterate over the first dimension (TypeError for a 0-d tensor, via len)."""
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        """Truth value of a one-element tensor; ValueError otherwise, as in numpy."""
        if self.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.size} elements is ambiguous; "
                "reduce it first (.max(), .min(), .sum()) or use .item()")
        ### BEGIN SOLUTION
        return bool(self.data.item())
        ### END SOLUTION

    def __float__(self):
        """float(t) for a one-element tensor (numpy also uses it for lists of 0-d Tensors)."""
        return float(self.item())

    def __int__(self):
        """int(t) for a one-element tensor (truncates toward zero, like int(2.7))."""
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        """Let numpy read a Tensor as its array: np.asarray(t), lists of Tensors."""
        return np.array(self.data, dtype=dtype, copy=copy)

    def __repr__(self):
        """Tensor(<numpy's text, on one line when short>, shape=..., dtype=...)."""
        text = np.array2string(self.data, separator=", ", prefix="Tensor(")
        one_line = " ".join(line.strip() for line in text.splitlines())
        text = one_line if len(one_line) <= 60 else text
        return f"Tensor({text}, shape={self.shape}, dtype={self.dtype})"

# %% [markdown]
# ### Check step 1
#
# The graded cell below checks creation, copying, the constructors, the properties and
# `repr` against numpy. It prints the errors bad input gets, then `OK: ...`.

# %% nbgrader={"grade": true, "grade_id": "test-creation", "locked": true, "points": 2, "schema_version": 3, "solution": false}
src = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
t = Tensor(src)
assert t.dtype == np.float32, f"Tensor(data) must default to float32, got {t.dtype}"
np.testing.assert_array_equal(t.data, src.astype(np.float32), err_msg="Tensor(src) must hold src's values")
assert (t.shape, t.size, t.ndim) == (src.shape, src.size, src.ndim), \
    f"shape/size/ndim must be the array's: got {(t.shape, t.size, t.ndim)}, expected {(src.shape, src.size, src.ndim)}"
assert isinstance(t.shape, tuple) and type(t.size) is int and type(t.ndim) is int
src[0, 0] = 99
assert t.data[0, 0] == 1.0, "Tensor(data) must copy: a later change of the source leaked into the tensor"
assert Tensor(src, dtype=np.int64).dtype == np.int64, "an explicit dtype must be honoured"
assert Tensor(t).dtype == np.float32 and Tensor(t).data is not t.data, "Tensor(tensor) must copy too"
assert Tensor(3.5).shape == () and Tensor(3.5).item() == 3.5, "a Python number is a 0-d tensor"

wrapped = Tensor.from_numpy(src)
src[1, 1] = -7
assert wrapped.data is src and wrapped.dtype == np.int64, "from_numpy must wrap the array itself, keeping its dtype"
assert wrapped.data[1, 1] == -7

assert Tensor.zeros(2, 3).shape == Tensor.zeros((2, 3)).shape == (2, 3)
np.testing.assert_array_equal(Tensor.zeros(2, 3).data, np.zeros((2, 3), dtype=np.float32))
np.testing.assert_array_equal(Tensor.ones(4, dtype=np.int64).data, np.ones(4, dtype=np.int64))
assert Tensor.zeros(2, 3).dtype == np.float32 and Tensor.ones(4, dtype=np.int64).dtype == np.int64
np.testing.assert_array_equal(Tensor.randn(3, 4, rng=42).data,
                              np.random.default_rng(42).standard_normal((3, 4), dtype=np.float32),
                              err_msg="randn(3, 4, rng=42) must draw from np.random.default_rng(42)")
gen, ref = np.random.default_rng(7), np.random.default_rng(7)
first, second = Tensor.randn(5, rng=gen), Tensor.randn(5, rng=gen)
np.testing.assert_array_equal(first.data, ref.standard_normal(5, dtype=np.float32))
np.testing.assert_array_equal(second.data, ref.standard_normal(5, dtype=np.float32),
                              err_msg="a Generator passed as rng must be used (and advanced), not reseeded")

for bad, error in (("abc", TypeError), ([[1, 2], [3]], ValueError), ([1, None], TypeError)):
    try:
        Tensor(bad)
    except error as err:
        print(f"{error.__name__} for {bad!r}: {err}")
    else:
        raise AssertionError(f"Tensor({bad!r}) should raise {error.__name__}")
for bad_call in (lambda: Tensor.from_numpy([1.0, 2.0]), lambda: Tensor.zeros(2, -1)):
    try:
        bad_call()
    except (TypeError, ValueError) as err:
        print(f"{type(err).__name__}: {err}")
    else:
        raise AssertionError("from_numpy(list) and zeros(2, -1) must raise")

assert len(t) == 2 and t.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
assert repr(Tensor([[1.0, 2.0], [3.0, 4.0]])) == "Tensor([[1., 2.], [3., 4.]], shape=(2, 2), dtype=float32)"
print(repr(t))
print("OK: creation, copy vs from_numpy, constructors, properties and repr work")

# %% [markdown]
# ## Step 2: element-wise arithmetic and broadcasting
#
# `a + b`, `a - b`, `a * b`, `a / b` and `a ** p` work element by element. When the shapes
# differ, numpy **broadcasts**, and the rule is short enough to write yourself:
#
# 1. Align the shapes on the right: pad the shorter one with leading 1s, so `(3,)`
#    against `(2, 3)` becomes `(1, 3)`.
# 2. Compare the sizes pair by pair: equal sizes stay; a size 1 is repeated to the other
#    size (even to 0); any other pair is an error.
#
# So `(2, 3) + (3,)` adds the row to every row, `(3, 1) * (1, 4)` gives a `(3, 4)` table
# and `(2, 1, 3) + (4, 1)` gives `(2, 4, 3)`, but `(2, 3) + (4,)` is an error. You write
# the rule as `_broadcast_shape(left_shape, right_shape, op_name)`, which returns the
# result shape; for an incompatible pair it raises the error that the given
# `_broadcast_error(left_shape, right_shape, op_name)` words (both shapes, the rule and a
# remedy), instead of numpy's terse one.
#
# Then the operators, each a Tensor method of its own, added with `@patch`: `a + b`
# calls `a.__add__(b)`, and when that returns `NotImplemented` (or `a` is a number or an
# ndarray that does not know Tensors), Python calls the **reflected** method of the right
# operand, `b.__radd__(a)`. So `2 - t` calls `t.__rsub__(2)`, which must compute
# `2 - t`, not `t - 2`: the reflected methods swap the operands back. All of them call
# one function, `_elementwise(ufunc, left, right)`, with the numpy ufunc of the operator
# (`np.add`, `np.subtract`, `np.multiply`, `np.true_divide`, `np.power`) and the operands
# in the order of the expression; `-t` is `np.negative` of the array, wrapped.
#
# `_elementwise` reads each operand with `_operand`, which you write too: the array of a
# Tensor, an ndarray, numpy scalar or Python number as it is, and `NotImplemented` for
# any other type. `NotImplemented` is Python's signal for "I do not handle this type":
# `_elementwise` returns it as it is, Python then tries the other operand's reflected
# method, and finally raises its usual "unsupported operand type(s)" `TypeError`. With
# two valid operands, `_elementwise` checks their shapes with `_broadcast_shape`
# (`np.shape` works for numbers too: `()`), applies the ufunc and wraps the result
# (`np.asarray` turns a numpy scalar result into a 0-d array).
#
# **dtype promotion** follows numpy 2 (NEP 50), so pass the operands to the ufunc
# unchanged: a Python number adapts to the tensor (`float32 tensor + 0.5` stays
# float32), while an array operand takes part in promotion (`float32 tensor + float64
# array` gives float64).

# %% nbgrader={"grade": false, "grade_id": "tensor-arithmetic", "locked": false, "schema_version": 3, "solution": true}
#| export
def _broadcast_error(left_shape, right_shape, op_name):
    """The ValueError for two shapes that do not broadcast: both shapes, the rule, a remedy."""
    return ValueError(
        f"{op_name}: cannot broadcast shapes {left_shape} and {right_shape}. Rule: align "
        "the shapes on the right; each pair of sizes must be equal or one of them 1. "
        "Reshape an operand (e.g. add a size-1 axis) to make them compatible")


def _broadcast_shape(left_shape, right_shape, op_name):
    """The shape that operands of these shapes broadcast to; _broadcast_error if there is none."""
    ### BEGIN SOLUTION
    ndim = max(len(left_shape), len(right_shape))
    left = (1,) * (ndim - len(left_shape)) + tuple(left_shape)  # missing leading sizes count as 1
    right = (1,) * (ndim - len(right_shape)) + tuple(right_shape)
    shape = []
    for m, n in zip(left, right):
        if m != n and m != 1 and n != 1:
            raise _broadcast_error(left_shape, right_shape, op_name)
        shape.append(n if m == 1 else m)  # a size 1 is repeated to the other size, even to 0
    return tuple(shape)
    ### END SOLUTION


def _operand(value):
    """The ndarray or number behind an operand, or NotImplemented for other types."""
    ### BEGIN SOLUTION
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (np.ndarray, np.generic, numbers.Number)):
        return value
    return NotImplemented
    ### END SOLUTION


def _elementwise(ufunc, left, right):
    """Apply a binary numpy ufunc to two operands with broadcasting; return a new Tensor.

    left/right: Tensor, ndarray or number. Any other type gives NotImplemented.
    """
    ### BEGIN SOLUTION
    a, b = _operand(left), _operand(right)
    if a is NotImplemented or b is NotImplemented:
        return NotImplemented
    _broadcast_shape(np.shape(a), np.shape(b), ufunc.__name__)
    return Tensor.from_numpy(np.asarray(ufunc(a, b)))
    ### END SOLUTION


@patch
def __add__(self: Tensor, other):  # self + other
    ### BEGIN SOLUTION
    return _elementwise(np.add, self, other)
    ### END SOLUTION


@patch
def __radd__(self: Tensor, other):  # other + self, e.g. 2 + t or ndarray + t
    ### BEGIN SOLUTION
    return _elementwise(np.add, other, self)
    ### END SOLUTION


@patch
def __sub__(self: Tensor, other):  # self - other
    ### BEGIN SOLUTION
    return _elementwise(np.subtract, self, other)
    ### END SOLUTION


@patch
def __rsub__(self: Tensor, other):  # other - self, e.g. 2 - t
    ### BEGIN SOLUTION
    return _elementwise(np.subtract, other, self)
    ### END SOLUTION


@patch
def __mul__(self: Tensor, other):  # self * other
    ### BEGIN SOLUTION
    return _elementwise(np.multiply, self, other)
    ### END SOLUTION


@patch
def __rmul__(self: Tensor, other):  # other * self, e.g. 2 * t
    ### BEGIN SOLUTION
    return _elementwise(np.multiply, other, self)
    ### END SOLUTION


@patch
def __truediv__(self: Tensor, other):  # self / other
    ### BEGIN SOLUTION
    return _elementwise(np.true_divide, self, other)
    ### END SOLUTION


@patch
def __rtruediv__(self: Tensor, other):  # other / self, e.g. 1 / t
    ### BEGIN SOLUTION
    return _elementwise(np.true_divide, other, self)
    ### END SOLUTION


@patch
def __pow__(self: Tensor, exponent):  # self ** exponent
    ### BEGIN SOLUTION
    return _elementwise(np.power, self, exponent)
    ### END SOLUTION


@patch
def __neg__(self: Tensor):  # -self
    ### BEGIN SOLUTION
    return Tensor.from_numpy(np.asarray(np.negative(self.data)))
    ### END SOLUTION

# %% [markdown]
# ### Check step 2
#
# The oracle for the rule is numpy's own `np.broadcast_shapes`, on pairs that include
# scalars, empty dimensions and incompatible shapes; the operators are checked against
# numpy's operators, including the dtypes.

# %% nbgrader={"grade": true, "grade_id": "test-arithmetic", "locked": true, "points": 3, "schema_version": 3, "solution": false}
pairs = [((2, 3), (2, 3)), ((2, 3), (3,)), ((3, 1), (1, 4)), ((2, 1, 3), (4, 1)), ((), (2, 2)),
         ((5,), ()), ((0,), (1,)), ((1, 0), (3, 1)), ((2, 3), (4,)), ((2, 1), (3, 3)), ((0,), (2,))]
for left_shape, right_shape in pairs:
    try:
        expected = np.broadcast_shapes(left_shape, right_shape)
    except ValueError:
        expected = None
    try:
        got = _broadcast_shape(left_shape, right_shape, "add")
    except ValueError as err:
        assert expected is None, f"{left_shape} and {right_shape} broadcast to {expected}, but got: {err}"
        assert f"{left_shape} and {right_shape}" in str(err), f"the error must name both shapes: {err}"
    else:
        assert got == expected, f"_broadcast_shape{left_shape, right_shape} = {got}, numpy says {expected}"

rng = np.random.default_rng(1)
x = rng.standard_normal((3, 1, 4)).astype(np.float32)
y = rng.standard_normal((2, 1)).astype(np.float32) + 3.0
tx, ty = Tensor(x), Tensor(y)
for name, ours, ref in (("+", tx + ty, x + y), ("-", tx - ty, x - y), ("*", tx * ty, x * y), ("/", tx / ty, x / y),
                        ("3 - t", 3.0 - tx, 3.0 - x), ("1 / t", 1.0 / ty, 1.0 / y), ("t ** 2", ty ** 2, y ** 2),
                        ("-t", -tx, -x)):
    assert isinstance(ours, Tensor), f"{name} must return a Tensor, got {type(ours).__name__}"
    np.testing.assert_allclose(ours.data, ref, err_msg=f"{name} differs from numpy")
    assert ours.dtype == ref.dtype, f"{name}: dtype {ours.dtype}, numpy gives {ref.dtype}"
assert (tx + ty).shape == (3, 2, 4) and (tx * 2.5).dtype == np.float32, "a Python float must not promote float32"
left = np.full((2, 1), 2.0) * ty
assert isinstance(left, Tensor) and left.dtype == np.float64, "ndarray * Tensor: a float64 Tensor, as numpy promotes"
np.testing.assert_allclose(left.data, 2.0 * y.astype(np.float64))
assert _operand("text") is NotImplemented and _operand([1.0]) is NotImplemented
try:
    Tensor([1.0, 2.0]) + [1.0, 2.0]
except TypeError as err:
    assert "unsupported operand" in str(err), err
else:
    raise AssertionError("Tensor + list must raise Python's TypeError (return NotImplemented)")
try:
    Tensor.ones(2, 3) + Tensor.ones(4)
except ValueError as err:
    print("ValueError:", err)
    assert "(2, 3)" in str(err) and "(4,)" in str(err), "the error must name both shapes"
else:
    raise AssertionError("(2, 3) + (4,) must raise ValueError")
print("OK: the broadcasting rule, arithmetic, reflected operators and dtype promotion work")

# %% [markdown]
# ## Step 3: matrix multiplication
#
# `a @ b` (or `a.matmul(b)`) follows `np.matmul`. Its shape rule, which you write as
# `_matmul_shape(a_shape, b_shape)` (both operands have at least one dimension; the
# given `_matmul` rejects 0-d ones before, since `*` is the way to scale):
#
# 1. A 1-D left operand of shape `(k,)` acts as a row `(1, k)`; a 1-D right operand acts
#    as a column `(k, 1)`.
# 2. The last dimension of the left operand and the second-to-last of the right one are
#    the **inner** dimensions: they must be equal. If not, raise
#    `_matmul_mismatch(a_shape, b_shape, inner_a, inner_b)` (given).
# 3. The dimensions before the last two are **batch** dimensions: they broadcast (use
#    your `_broadcast_shape` with the name `"matmul batch dimensions"`), and each batch
#    element is a matrix product.
# 4. The result is `batch + (rows, cols)`, minus the 1 that step 1 added for a 1-D
#    operand: `(n, k) @ (k, m) -> (n, m)`, `(n, k) @ (k,) -> (n,)`, `(k,) @ (k,) -> ()`,
#    `(5, 2, 3) @ (3, 4) -> (5, 2, 4)`.
#
# The given `_matmul(left, right)` reads the operands with your `_operand`, rejects 0-d
# ones, checks the shapes with `_matmul_shape` and calls `np.matmul`. You then add the
# three methods with `@patch`: `a @ b` is `a.__matmul__(b)`, `ndarray @ t` is
# `t.__rmatmul__(ndarray)` (the operands swap back, as in step 2), and `a.matmul(b)` is
# `a @ b`.
#
# The most common bug in a network is a layer whose sizes do not line up, so checking the
# shapes before calling numpy is the point of this step: the message names both shapes
# and the two inner dimensions that disagree. The same shape also counts the work: a
# product does one multiply-add per element of the result per inner index, which the
# systems analysis below uses.

# %% nbgrader={"grade": false, "grade_id": "tensor-matmul", "locked": false, "schema_version": 3, "solution": true}
#| export
def _matmul_mismatch(a_shape, b_shape, inner_a, inner_b):
    """The ValueError for a product whose inner dimensions differ, naming both shapes."""
    return ValueError(f"matmul shape mismatch: {a_shape} @ {b_shape}: "
                      f"inner dimensions {inner_a} and {inner_b} must match")


def _matmul_shape(a_shape, b_shape):
    """The shape of a @ b under np.matmul's rules (both at least 1-D); ValueError if they do not fit."""
    ### BEGIN SOLUTION
    a = tuple(a_shape) if len(a_shape) > 1 else (1,) + tuple(a_shape)  # a 1-D left operand is a row
    b = tuple(b_shape) if len(b_shape) > 1 else tuple(b_shape) + (1,)  # a 1-D right operand is a column
    if a[-1] != b[-2]:
        raise _matmul_mismatch(a_shape, b_shape, a[-1], b[-2])
    batch = _broadcast_shape(a[:-2], b[:-2], "matmul batch dimensions")
    rows = a[-2:-1] if len(a_shape) > 1 else ()  # the 1 added for a 1-D operand is dropped again
    cols = b[-1:] if len(b_shape) > 1 else ()
    return batch + rows + cols
    ### END SOLUTION


def _matmul(left, right):
    """Matrix product with numpy semantics; ValueError for 0-d or mismatched operands."""
    a, b = _operand(left), _operand(right)
    if a is NotImplemented or b is NotImplemented:
        return NotImplemented
    if not np.ndim(a) or not np.ndim(b):
        raise ValueError(
            f"matmul needs operands with at least 1 dimension, got {np.shape(a)} @ {np.shape(b)}; "
            "use * to multiply by a scalar")
    _matmul_shape(np.shape(a), np.shape(b))  # a clear error before numpy's, when the shapes do not fit
    return Tensor.from_numpy(np.asarray(np.matmul(a, b)))


@patch
def __matmul__(self: Tensor, other):  # self @ other
    ### BEGIN SOLUTION
    return _matmul(self, other)
    ### END SOLUTION


@patch
def __rmatmul__(self: Tensor, other):  # other @ self, e.g. ndarray @ t
    ### BEGIN SOLUTION
    return _matmul(other, self)
    ### END SOLUTION


@patch(nm="matmul")
def _matmul_method(self: Tensor, other):
    """Matrix product self @ other with numpy semantics (1-D, 2-D, batched)."""
    ### BEGIN SOLUTION
    return self @ other
    ### END SOLUTION

# %% [markdown]
# ### Check step 3
#
# The oracle for the shape rule is numpy: the shape of `np.matmul` on empty arrays of
# the same shapes. The products are checked against `np.matmul` and one by hand.

# %% nbgrader={"grade": true, "grade_id": "test-matmul", "locked": true, "points": 2, "schema_version": 3, "solution": false}
for a_shape, b_shape in (((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                         ((3,), (5, 3, 4)), ((5, 1, 2, 3), (4, 3, 2)), ((0, 3), (3, 2)), ((2, 0), (0, 4))):
    expected = np.matmul(np.empty(a_shape), np.empty(b_shape)).shape
    got = _matmul_shape(a_shape, b_shape)
    assert got == expected, f"_matmul_shape{a_shape, b_shape} = {got}, np.matmul gives {expected}"
for a_shape, b_shape, inner in (((2, 3), (4, 5), "3 and 4"), ((3,), (4,), "3 and 4"), ((4,), (3, 2), "4 and 3")):
    try:
        _matmul_shape(a_shape, b_shape)
    except ValueError as err:
        assert f"{a_shape} @ {b_shape}" in str(err) and inner in str(err), f"name both shapes and {inner}: {err}"
    else:
        raise AssertionError(f"{a_shape} @ {b_shape} must raise ValueError")

rng = np.random.default_rng(2)
A = rng.standard_normal((5, 2, 3)).astype(np.float32)
B = rng.standard_normal((3, 4)).astype(np.float32)
v3 = rng.standard_normal(3).astype(np.float32)
np.testing.assert_allclose((Tensor(A) @ Tensor(B)).data, np.matmul(A, B), rtol=1e-5, err_msg="batched @")
np.testing.assert_allclose(Tensor(A[0]).matmul(Tensor(B)).data, A[0] @ B, rtol=1e-5, err_msg="matmul()")
np.testing.assert_allclose((Tensor(A[0]) @ Tensor(v3)).data, A[0] @ v3, rtol=1e-5, err_msg="matrix @ vector")
np.testing.assert_allclose((Tensor(v3) @ Tensor(B)).data, v3 @ B, rtol=1e-5, err_msg="vector @ matrix")
m = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
assert (m @ m.data.T).tolist() == [[14.0, 32.0], [32.0, 77.0]], "by hand: [[1+4+9, 4+10+18], [.., 16+25+36]]"
assert (Tensor([1.0, 1.0]) @ Tensor([2.0, 3.0])).shape == (), "vector @ vector is a 0-d tensor"
assert isinstance(A[0] @ Tensor(B), Tensor), "ndarray @ Tensor must give a Tensor (via __rmatmul__)"
try:
    Tensor.ones(2, 3) @ Tensor.ones(4, 5)
except ValueError as err:
    print("ValueError:", err)
    assert "(2, 3) @ (4, 5)" in str(err) and "3 and 4" in str(err)
else:
    raise AssertionError("(2, 3) @ (4, 5) must raise ValueError")
try:
    Tensor.ones(2, 2, 3) @ Tensor.ones(3, 3, 4)
except ValueError as err:
    print("ValueError:", err)
    assert "batch dimensions" in str(err) and "(2,) and (3,)" in str(err)
else:
    raise AssertionError("batch dimensions 2 and 3 must not broadcast")
print("OK: the matmul shape rule, 1-D, 2-D and batched products, with clear shape errors")

# %% [markdown]
# ## Step 4: reshape and transpose, two views
#
# `reshape` keeps the elements (in row-major order) and changes the shape; the new shape
# comes as ints or as one tuple, and one dimension may be `-1`, which stands for
# "whatever is left": the number of elements divided by the product of the other sizes.
# `(2, 3, 4).reshape(4, -1)` is `(4, 6)`. The rule: without a `-1`, the product of the
# new sizes must equal the number of elements; with one, the product of the other sizes
# must be positive and divide it. The given first lines read the shape (ints or one
# tuple) and reject two `-1`s and negative sizes; you write the rule, raise the error that
# the given `_reshape_error(size, shape, known)` words when the shape does not fit
# (`known` is the product of the sizes other than `-1`), fill in the `-1` and reshape the
# array.
#
# `transpose(dim0, dim1)` swaps two dimensions, by default the last two (as in torch).
# The given lines normalize `dim0` and `dim1` (negative ones count from the end) and
# reject 0-d and 1-D tensors; you build the new order of the axes, `[0, 1, ..., ndim - 1]`
# with the two entries swapped, and pass it to `ndarray.transpose`.
#
# Both results are *views*: they share memory with the original, and only the shape and
# the strides change (as in the worked example), which is why they cost almost nothing.
# (One exception: a reshape that no strides can express, such as flattening a transposed
# matrix, makes numpy copy the elements.)
# Both methods are added to `Tensor` with `@patch` (see the given part above).

# %% nbgrader={"grade": false, "grade_id": "tensor-shape-ops", "locked": false, "schema_version": 3, "solution": true}
#| export
def _reshape_error(size, shape, known):
    """The ValueError for a shape that cannot hold size elements (known: what its sizes other than -1 hold)."""
    if -1 in shape:
        return ValueError(f"cannot reshape {size} elements into shape {shape}: the other dimensions hold "
                          f"{known} elements, so no whole size for -1 gives {size}")
    return ValueError(f"cannot reshape {size} elements into shape {shape} ({known} elements); "
                      "the element counts must match")


@patch(nm="reshape")
def _reshape(self: Tensor, *shape):
    """Same elements in a new shape (ints or one tuple; one dim may be -1). Shares memory."""
    shape = _shape_from_args(shape)
    if shape.count(-1) > 1 or any(dim < -1 for dim in shape):
        raise ValueError(f"invalid shape {shape}: sizes must be >= 0, with at most one -1")
    ### BEGIN SOLUTION
    known = math.prod(dim for dim in shape if dim != -1)  # the elements the other sizes hold
    fits = known > 0 and self.size % known == 0 if -1 in shape else known == self.size
    if not fits:
        raise _reshape_error(self.size, shape, known)
    shape = tuple(self.size // known if dim == -1 else dim for dim in shape)
    return Tensor.from_numpy(self.data.reshape(shape))
    ### END SOLUTION


@patch(nm="transpose")
def _transpose(self: Tensor, dim0=-2, dim1=-1):
    """Swap two dimensions (default: the last two). Shares memory."""
    if self.ndim < 2:
        raise ValueError(f"transpose needs at least 2 dims, got shape {self.shape}; "
                         "reshape first, e.g. t.reshape(1, -1)")
    dim0 = _normalize_dim(dim0, self.ndim, "transpose dim")
    dim1 = _normalize_dim(dim1, self.ndim, "transpose dim")
    ### BEGIN SOLUTION
    axes = list(range(self.ndim))
    axes[dim0], axes[dim1] = dim1, dim0  # the new order of the old axes
    return Tensor.from_numpy(self.data.transpose(axes))
    ### END SOLUTION

# %% [markdown]
# ### Check step 4
#
# The oracles are numpy's `reshape` and `swapaxes`; the views are checked by their
# memory and their strides: a transpose swaps the strides and moves no number.

# %% nbgrader={"grade": true, "grade_id": "test-shape-ops", "locked": true, "points": 2, "schema_version": 3, "solution": false}
base = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
tb = Tensor(base)
for args, shape in (((4, -1), (4, 6)), (((6, 4),), (6, 4)), ((-1,), (24,)), ((2, -1, 3), (2, 4, 3)), ((24, 1), (24, 1))):
    got = tb.reshape(*args)
    assert got.shape == shape, f"reshape{args} gives shape {got.shape}, expected {shape}"
    np.testing.assert_array_equal(got.data, base.reshape(shape), err_msg=f"reshape{args}: elements in row-major order")
    assert np.shares_memory(got.data, tb.data), f"reshape{args} must be a view (share memory)"
assert Tensor(5.0).reshape(1, 1).tolist() == [[5.0]] and Tensor([5.0]).reshape(()).shape == ()
for dims, ref in (((), np.swapaxes(base, -2, -1)), ((0, 2), np.swapaxes(base, 0, 2)), ((-3, 1), np.swapaxes(base, 0, 1)),
                  ((1, 1), base)):
    got = tb.transpose(*dims)
    np.testing.assert_array_equal(got.data, ref, err_msg=f"transpose{dims} differs from np.swapaxes")
    assert np.shares_memory(got.data, tb.data), f"transpose{dims} must be a view"
r = Tensor(np.arange(6)).reshape(2, -1)
assert r.transpose().tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]], "by hand: rows become columns"
assert r.transpose().data.strides == r.data.strides[::-1], "a transpose swaps the strides"
for bad in (lambda: tb.reshape(5, 5), lambda: tb.reshape(-1, -1), lambda: tb.reshape(5, -1),
            lambda: Tensor([1.0]).transpose(), lambda: tb.transpose(0, 3)):
    try:
        bad()
    except ValueError as err:
        print("ValueError:", err)
    else:
        raise AssertionError("expected a ValueError")
print("OK: reshape with -1 and transpose work, and both are views")

# %% [markdown]
# ## Step 5: reductions
#
# A reduction collapses one or more axes: `sum`, `mean`, `max`, `min`. `axis=None`
# reduces everything to a 0-d tensor; an int or a tuple of ints picks the axes (negative
# axes count from the end). `keepdims=True` keeps each reduced axis, with size 1, so the
# result still broadcasts against the input: that is the trick behind "subtract the row
# mean", `t - t.mean(axis=1, keepdims=True)`. For a `(2, 3, 4)` tensor, `axis=1` gives
# `(2, 4)`, or `(2, 1, 4)` with `keepdims`.
#
# All four methods call `_reduce(func, tensor, axis, keepdims)`, which you write in two
# parts. First `_normalize_axis(axis, ndim)`: `None` stays `None` (every axis); an int
# or a tuple (or list) of ints becomes a tuple of indices in `[0, ndim)`, each through the
# given `_normalize_dim(a, ndim, "axis")`, which also rejects an axis out of range. The
# given lines of `_reduce` then reject an axis named twice, and a max or min over nothing
# (the max of no numbers is undefined, while a sum of nothing is 0). Then the rest of
# `_reduce`: call `func` (one of `np.sum`, `np.mean`, `np.max`, `np.min`) on the array
# over those axes, and do `keepdims` yourself: reshape the result to the input's shape
# with a 1 at every reduced axis (every axis when `axes` is `None`). Wrap the result with
# `np.asarray`, since a reduction over everything returns a numpy scalar. Finally the four
# methods, added with `@patch`: each calls `_reduce` with its numpy function.

# %% nbgrader={"grade": false, "grade_id": "tensor-reductions", "locked": false, "schema_version": 3, "solution": true}
#| export
def _normalize_axis(axis, ndim):
    """None (every axis), or the axes as a tuple of indices in [0, ndim); ValueError for a bad axis."""
    ### BEGIN SOLUTION
    if axis is None:
        return None
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(_normalize_dim(a, ndim, "axis") for a in axes)
    ### END SOLUTION


def _reduce(func, tensor, axis, keepdims):
    """Reduce tensor with func (np.sum, np.mean, np.max or np.min) over axis; a Tensor."""
    axes = _normalize_axis(axis, tensor.ndim)
    if axes is not None and len(set(axes)) != len(axes):
        raise ValueError(f"axis {axis} names the same axis twice; list each axis once")
    reduced_sizes = tensor.shape if axes is None else [tensor.shape[a] for a in axes]
    if func in (np.max, np.min) and 0 in reduced_sizes:
        raise ValueError(
            f"{func.__name__} of an empty tensor is undefined: shape {tensor.shape} has no "
            f"elements to compare along axis={axis}")
    ### BEGIN SOLUTION
    result = np.asarray(func(tensor.data, axis=axes))
    if keepdims:  # every reduced axis stays, with size 1
        result = result.reshape([1 if axes is None or d in axes else n for d, n in enumerate(tensor.shape)])
    return Tensor.from_numpy(result)
    ### END SOLUTION


@patch(nm="sum")
def _sum(self: Tensor, axis=None, keepdims=False):
    """Sum over axis (None: all elements; int or tuple of ints)."""
    ### BEGIN SOLUTION
    return _reduce(np.sum, self, axis, keepdims)
    ### END SOLUTION


@patch(nm="mean")
def _mean(self: Tensor, axis=None, keepdims=False):
    """Arithmetic mean over axis (None: all elements; int or tuple of ints)."""
    ### BEGIN SOLUTION
    return _reduce(np.mean, self, axis, keepdims)
    ### END SOLUTION


@patch(nm="max")
def _max(self: Tensor, axis=None, keepdims=False):
    """Largest element over axis (None: all elements); ValueError if nothing to compare."""
    ### BEGIN SOLUTION
    return _reduce(np.max, self, axis, keepdims)
    ### END SOLUTION


@patch(nm="min")
def _min(self: Tensor, axis=None, keepdims=False):
    """Smallest element over axis (None: all elements); ValueError if nothing to compare."""
    ### BEGIN SOLUTION
    return _reduce(np.min, self, axis, keepdims)
    ### END SOLUTION

# %% [markdown]
# ### Check step 5
#
# The oracle is numpy's reductions with numpy's own `keepdims`, over every kind of axis.

# %% nbgrader={"grade": true, "grade_id": "test-reductions", "locked": true, "points": 2, "schema_version": 3, "solution": false}
vals = np.random.default_rng(3).standard_normal((3, 4, 5)).astype(np.float32)
tv = Tensor(vals)
for name in ("sum", "mean", "max", "min"):
    for axis in (None, 1, -1, (0, 2), (2, 0, 1)):
        for keepdims in (False, True):
            ours = getattr(tv, name)(axis=axis, keepdims=keepdims)
            ref = getattr(np, name)(vals, axis=axis, keepdims=keepdims)
            assert isinstance(ours, Tensor) and isinstance(ours.data, np.ndarray), f"{name} must return a Tensor"
            assert ours.shape == np.shape(ref), \
                f"{name}(axis={axis}, keepdims={keepdims}): shape {ours.shape}, numpy gives {np.shape(ref)}"
            np.testing.assert_allclose(ours.data, ref, rtol=1e-5, err_msg=f"{name}(axis={axis}, keepdims={keepdims})")
s = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
assert s.sum().item() == 21.0 and s.mean(axis=-1).tolist() == [2.0, 5.0], "by hand: 1+...+6 = 21, row means 2 and 5"
assert (s - s.mean(axis=1, keepdims=True)).tolist() == [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]
assert Tensor.zeros(0, 3).max(axis=1).shape == (0,) and Tensor([]).sum().item() == 0.0
for bad in (lambda: tv.sum(axis=3), lambda: Tensor.zeros(0, 2).min(axis=0), lambda: tv.sum(axis=(0, -3))):
    try:
        bad()
    except ValueError as err:
        print("ValueError:", err)
    else:
        raise AssertionError("expected a ValueError")
print("OK: sum, mean, max and min with axis and keepdims work")

# %% [markdown]
# ## Step 6: indexing
#
# `t[key]` uses numpy indexing and wraps the result in a Tensor: an int picks along the
# first dimension, slices keep a range, a tuple indexes several dimensions, and an
# integer or boolean array selects elements ("fancy" indexing, which copies; ints and
# slices give views). A Tensor used as an index, on its own or as a part of a tuple, is
# replaced by its array; `_index_array` (given) does that, and raises a clear
# `IndexError` when the Tensor holds floats (tensors default to float32, so
# `t[Tensor([0, 1])]` is an easy slip; positions need `dtype=np.int64`, masks
# `dtype=bool`).
#
# You write `Tensor.__getitem__`: treat a key that is not a tuple as a tuple of one part
# (`t[k]` is `t[(k,)]` in numpy), replace each Tensor part by its array, index `data`
# with the tuple and wrap the result (`np.asarray` turns a single element into a 0-d
# array). Writing into a tensor (`t[0] = 1`) is deliberately not supported.

# %% nbgrader={"grade": false, "grade_id": "tensor-indexing", "locked": false, "schema_version": 3, "solution": true}
#| export
def _index_array(index):
    """The array of a Tensor used as an index; IndexError unless it holds integers or bools."""
    if index.dtype.kind not in "biu":
        raise IndexError(
            f"a Tensor used as an index must have an integer or bool dtype, got "
            f"{index.dtype}; create it with dtype=np.int64 (positions) or dtype=bool (mask)")
    return index.data


@patch
def __getitem__(self: Tensor, key):
    """numpy indexing (ints, slices, tuples, bool/int arrays or Tensors); returns a Tensor."""
    ### BEGIN SOLUTION
    parts = key if isinstance(key, tuple) else (key,)
    parts = tuple(_index_array(part) if isinstance(part, Tensor) else part for part in parts)
    return Tensor.from_numpy(np.asarray(self.data[parts]))
    ### END SOLUTION

# %% [markdown]
# ### Check step 6
#
# The oracle is numpy indexing on the same array.

# %% nbgrader={"grade": true, "grade_id": "test-indexing", "locked": true, "points": 1, "schema_version": 3, "solution": false}
arr = np.arange(20, dtype=np.float32).reshape(4, 5)
ta = Tensor(arr)
for key in (2, -1, slice(1, 3), (1, 3), (slice(1, 3), slice(None, None, 2)), (Ellipsis, 0), arr > 12, [0, -1],
            (None, 1)):
    got = ta[key]
    assert isinstance(got, Tensor) and isinstance(got.data, np.ndarray), f"t[{key!r}] must be a Tensor"
    np.testing.assert_array_equal(got.data, arr[key], err_msg=f"t[{key!r}] differs from numpy")
np.testing.assert_array_equal(ta[Tensor([3, 0], dtype=np.int64), 1].data, arr[[3, 0], 1],
                              err_msg="Tensors inside a tuple key must be replaced by their arrays")
np.testing.assert_array_equal(ta[Tensor([True, False, True, False], dtype=bool)].data, arr[[0, 2]])
assert ta[0, 0].shape == () and ta[1, 2].item() == 7.0, "by hand: row 1, column 2 of arange(20) is 7"
assert np.shares_memory(ta[1:3].data, ta.data), "a slice is a view"
assert [row.tolist() for row in Tensor([[1, 2], [3, 4]])] == [[1.0, 2.0], [3.0, 4.0]], "iteration uses indexing"
try:
    ta[Tensor([0.0, 1.0])]
except IndexError as err:
    print("IndexError:", err)
else:
    raise AssertionError("a float32 index Tensor must raise IndexError")
print(ta[0])
print("OK: int, slice, tuple, mask and Tensor indexing work")

# %% [markdown]
# ## Systems analysis: what float32 and BLAS buy you
#
# Two claims from this module deserve a measurement instead of a promise:
#
# 1. float32 needs half the memory of float64, and memory-bound operations get faster.
# 2. `@` hands the work to an optimised BLAS library, which is far faster than the same
#    arithmetic written as Python loops.
#
# Trustworthy numbers need a careful timing loop, and every module measures something, so
# the course writes that loop once, as library code: `tinytorch.utils.timing`, in this
# module's given notebook `nbs/01_tensor.timing.ipynb` (source
# `modules/01_tensor/timing.py`; it ships solved, read it once). It times fast callables
# in calibrated batches (each raw sample lasts at least max(1 ms, 1000 x the timer's
# overhead), and choosing the batch size doubles as warm-up), measures candidates in
# alternating rounds (A B A B ...) so that machine drift hits all of them, leads with the
# median, and warns (with the number and a remedy) when the interquartile range (IQR)
# over the median or the coefficient of variation reaches 10%, or a raw sample lasts less
# than 1 ms.
#
# Measure the timer, fix the shortest raw sample and print the environment. The rules ask
# for at least 1 ms per raw sample; this notebook uses 5 ms, which is steadier.

# %%
from tinytorch.utils.timing import (describe_environment, environment, measure_interleaved, measure_timer,
                                   required_sample_ns)

timer = measure_timer()
MIN_SAMPLE_NS = required_sample_ns(timer.overhead_ns, floor_ns=5_000_000)
print(timer)
print(describe_environment(environment(timer, MIN_SAMPLE_NS)))

# %% [markdown]
# ### Memory and speed: float32 vs float64
#
# `nbytes` is the size of the element buffer. The cell also times an element-wise add
# of two such tensors in each dtype, interleaved.

# %%
n = 1_000_000
pairs = {dt.__name__: (Tensor.ones(n, dtype=dt), Tensor.ones(n, dtype=dt)) for dt in (np.float32, np.float64)}
for name, (p, q) in pairs.items():
    print(f"{name}: {n} elements, nbytes = {p.data.nbytes:,} ({p.data.nbytes / n:.0f} bytes each)")
add_timings = measure_interleaved({name: (lambda p=p, q=q: p + q) for name, (p, q) in pairs.items()},
                                  repeats=15, min_sample_ns=MIN_SAMPLE_NS)
for name, timing in add_timings.items():
    median = timing.median_ns
    moved = 3 * pairs[name][0].data.nbytes  # 2 inputs read + 1 output written
    print(f"{name} add: median {median / 1e3:7.1f} us, {moved / median:5.1f} GB/s moved, {timing.noise}")

# %% [markdown]
# The cell above prints the buffer sizes and the add times. float32 stores half as many
# bytes per element; compare the two add times to see how much of that saving becomes
# speed on this machine (an add does almost no arithmetic per byte, so it is limited by
# memory traffic). If a row ends in a `noisy:` warning, the machine was busy: follow its
# remedy and run the cell again.
#
# ### Matrix multiply: BLAS vs a Python triple loop
#
# Your shape rule also counts the work: `a @ b` does one multiply-add for every element
# of the result and every inner index, so `flops = 2 * (elements of _matmul_shape(a, b))
# * k` floating-point operations (FLOPs) for an inner dimension `k`; for `(M, K) @ (K, N)`
# that is `2*M*N*K`. Dividing by the measured time gives the achieved GFLOP/s (FLOPs per
# nanosecond equals GFLOP/s). The cell times `Tensor @` and the raw `np.matmul` on the
# same arrays (the gap is the cost of our Python wrapper), and a pure-Python triple loop
# on a small size (checked against the Tensor result first).

# %%
def naive_matmul(a, b):
    """Pure-Python triple loop over nested lists: the work BLAS does, without BLAS."""
    rows, inner, cols = len(a), len(b), len(b[0])
    out = [[0.0] * cols for _ in range(rows)]
    for i in range(rows):
        for j in range(cols):
            acc = 0.0
            for p in range(inner):
                acc += a[i][p] * b[p][j]
            out[i][j] = acc
    return out


def matmul_flops(a, b):
    """FLOPs of a @ b: 2 per multiply-add, one per element of the result and inner index."""
    return 2 * math.prod(_matmul_shape(a.shape, b.shape)) * a.shape[-1]


small = 32
A32, B32 = Tensor.randn(small, small, rng=0), Tensor.randn(small, small, rng=1)
assert matmul_flops(A32, B32) == 2 * small ** 3
A_list, B_list = A32.tolist(), B32.tolist()
assert np.allclose(naive_matmul(A_list, B_list), (A32 @ B32).data, rtol=1e-4, atol=1e-4)
loop = measure_interleaved({"Tensor @": lambda: A32 @ B32,
                            "python loop": lambda: naive_matmul(A_list, B_list)},
                           repeats=7, min_sample_ns=MIN_SAMPLE_NS)
medians = {name: timing.median_ns for name, timing in loop.items()}
print(f"{small}x{small} @ {small}x{small}: {matmul_flops(A32, B32):,} FLOPs")
for name, timing in loop.items():
    print(f"  {name:11s} median {medians[name] / 1e3:8.1f} us = "
          f"{matmul_flops(A32, B32) / medians[name]:7.3f} GFLOP/s, {timing.noise}")
print(f"  ratio of medians, loop / Tensor @: {medians['python loop'] / medians['Tensor @']:.0f}x")

for size in (64, 256, 512):
    A, B = Tensor.randn(size, size, rng=0), Tensor.randn(size, size, rng=1)
    timed = measure_interleaved({"Tensor @": lambda A=A, B=B: A @ B,
                                 "np.matmul": lambda A=A, B=B: np.matmul(A.data, B.data)},
                                repeats=15, min_sample_ns=MIN_SAMPLE_NS)
    print(f"{size}x{size} @ {size}x{size}: {matmul_flops(A, B):,} FLOPs")
    for name, timing in timed.items():
        print(f"  {name:11s} median {timing.median_ns / 1e3:8.1f} us = "
              f"{matmul_flops(A, B) / timing.median_ns:7.1f} GFLOP/s, {timing.noise}")

# %% [markdown]
# The cell above prints, for each size, the median time and the achieved GFLOP/s.
# Things to look for in your own output:
#
# - The Python loop is far slower than `@`, even at this small size: every
#   multiply-add in the loop goes through the interpreter, while BLAS runs compiled,
#   vectorised, cache-blocked code.
# - GFLOP/s grows with the matrix size: a large product does `O(n^3)` work on `O(n^2)`
#   data, so each number loaded from memory is reused many times and the fixed cost of
#   a call is spread over more work.
# - At small sizes the `Tensor @` and `np.matmul` columns differ by the fixed cost of
#   our checks (your shape rule runs on every product) and wrapping; at large sizes the
#   two columns converge, because that cost no longer matters next to the arithmetic.
# - BLAS may split a large product over several threads. If another program keeps a
#   core busy, those threads wait for each other and a size can come out much slower
#   than its neighbours; the `noisy:` warning on that row tells you not to trust it.

# %% [markdown]
# ## Summary
#
# - A tensor is a block of memory plus a dtype, a shape and strides; `Tensor` wraps a
#   numpy array and adds a small, predictable API on top.
# - `Tensor(data)` copies and defaults to float32; `Tensor.from_numpy(array)` shares
#   memory and keeps the dtype; every operation builds its result with `from_numpy`.
# - Broadcasting is one rule: align the shapes on the right, and each pair of sizes must
#   be equal or one of them 1. Element-wise operators apply it, promote dtypes exactly
#   like numpy (NEP 50), and return `NotImplemented` for types they do not handle;
#   `__array_ufunc__ = None` makes `ndarray + Tensor` return a Tensor.
# - `@` follows `np.matmul`'s shape rule (1-D operands as a row or a column, inner
#   dimensions equal, batch dimensions broadcast), with an error that names both shapes;
#   `reshape` (with `-1`) and `transpose` return views; reductions take `axis` and
#   `keepdims`; indexing returns Tensors.
# - Measured: float32 halves the bytes per element, and BLAS matmul outruns a Python
#   loop by a wide margin; your numbers are in the cells above.
# - The timing helpers live in `tinytorch.utils.timing` (the given notebook
#   `nbs/01_tensor.timing.ipynb`): `measure_timer`, `measure_interleaved` (calibrated
#   batches, alternating rounds) returning `Timing` results, the statistics `quartiles`,
#   `iqr_over_median` and `coefficient_of_variation`, and `noise_warning`. Every later
#   module times with them.
#
# Every later module (autograd, layers, optimizers) builds on this `Tensor`.
