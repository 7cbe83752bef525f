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
# framework adds: a small, predictable API, a fixed default dtype, and error messages
# that say what went wrong and what to do. Later modules add autograd, layers and
# optimizers on top of exactly this class.

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
# copying and keeps its dtype, like `torch.from_numpy`. Every operation in this module
# builds its result with numpy and wraps it with `from_numpy`, so results are not
# copied a second time.
#
# Bad input should fail early with a message that says what was received and what is
# accepted: strings and other objects are a `TypeError`, ragged lists such as
# `[[1, 2], [3]]` (which cannot form a rectangle) are a `ValueError`.
#
# The class below is the whole public API. Most methods are one-line wrappers around
# helper functions you write in steps 2 to 6; in this step you implement
# `_as_numeric_array`, `Tensor.__init__` and `Tensor.from_numpy`. Read the rest of the
# class too; it is given: properties (`shape`, `dtype`, `size`, `ndim`), `item()`,
# `len()`, iteration, truth value, `float()`/`int()` of one-element tensors, `np.asarray(t)`
# support (`__array__`) and `__repr__`.

# %%
#| export
import math
import numbers
import operator

import numpy as np

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


def _array_text(array):
    """numpy's text for array (summarised when large), on one line when that is short."""
    text = np.array2string(array, separator=", ", prefix="Tensor(")
    one_line = " ".join(line.strip() for line in text.splitlines())
    return one_line if len(one_line) <= 60 else text

# %% nbgrader={"grade": false, "grade_id": "tensor-creation", "locked": false, "schema_version": 3, "solution": true}
#| export
def _as_numeric_array(data):
    """Read data (number, nested lists/tuples, ndarray or Tensor) as a numeric ndarray.

    Ragged nesting raises ValueError; non-numeric content raises TypeError. The result
    may share memory with data: a caller that keeps it must copy it.
    """
    ### BEGIN SOLUTION
    if isinstance(data, Tensor):
        return data.data
    try:
        array = np.asarray(data)
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
    ### END SOLUTION


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
        ### BEGIN SOLUTION
        self.data = _as_numeric_array(data).astype(_resolve_dtype(dtype), copy=True)
        ### END SOLUTION

    @classmethod
    def from_numpy(cls, array):
        """Wrap array without copying: the tensor shares its memory and keeps its dtype."""
        ### BEGIN SOLUTION
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"Tensor.from_numpy expects a numpy.ndarray, got {type(array).__name__}; "
                "use Tensor(data) to copy other data into a tensor")
        _resolve_dtype(array.dtype)  # raises TypeError for non-numeric arrays
        tensor = cls.__new__(cls)
        tensor.data = array
        return tensor
        ### END SOLUTION

    # ---- constructors (shape helpers: step 4) ----
    @classmethod
    def zeros(cls, *shape, dtype=np.float32):
        """Tensor of zeros; shape as ints or one tuple: zeros(2, 3) or zeros((2, 3))."""
        return cls.from_numpy(np.zeros(_creation_shape(shape), dtype=_resolve_dtype(dtype)))

    @classmethod
    def ones(cls, *shape, dtype=np.float32):
        """Tensor of ones; shape as ints or one tuple: ones(2, 3) or ones((2, 3))."""
        return cls.from_numpy(np.ones(_creation_shape(shape), dtype=_resolve_dtype(dtype)))

    @classmethod
    def randn(cls, *shape, rng=None):
        """float32 standard-normal samples; rng is None, an int seed or a np.random.Generator."""
        generator = np.random.default_rng(rng)  # returns a Generator argument unchanged
        return cls.from_numpy(generator.standard_normal(_creation_shape(shape), dtype=np.float32))

    # ---- properties ----
    @property
    def shape(self):
        """Size of each dimension, as a tuple of ints."""
        return self.data.shape

    @property
    def dtype(self):
        """The numpy dtype of the elements."""
        return self.data.dtype

    @property
    def size(self):
        """Total number of elements."""
        return self.data.size

    @property
    def ndim(self):
        """Number of dimensions (0 for a single number)."""
        return self.data.ndim

    def numpy(self):
        """The underlying ndarray itself (no copy: changing it changes the tensor)."""
        return self.data

    def tolist(self):
        """The elements as (nested) Python lists of Python numbers."""
        return self.data.tolist()

    def item(self):
        """The single element as a Python number; ValueError unless size == 1."""
        if self.size != 1:
            raise ValueError(
                f"item() needs a tensor with exactly one element, got shape {self.shape} "
                f"({self.size} elements); index or reduce it first, e.g. t.sum().item()")
        return self.data.item()

    def __len__(self):
        """Size of the first dimension; TypeError for a 0-d tensor."""
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor is undefined; use .item() to read its value")
        return self.shape[0]

    def __iter__(self):
        """Iterate over the first dimension (TypeError for a 0-d tensor, via len)."""
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        """Truth value of a one-element tensor; ValueError otherwise, as in numpy."""
        if self.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.size} elements is ambiguous; "
                "reduce it first (.max(), .min(), .sum()) or use .item()")
        return bool(self.data.item())

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
        return f"Tensor({_array_text(self.data)}, shape={self.shape}, dtype={self.dtype})"

    # ---- element-wise arithmetic (step 2) ----
    def __add__(self, other):
        return _elementwise(np.add, self, other)

    def __radd__(self, other):
        return _elementwise(np.add, other, self)

    def __sub__(self, other):
        return _elementwise(np.subtract, self, other)

    def __rsub__(self, other):
        return _elementwise(np.subtract, other, self)

    def __mul__(self, other):
        return _elementwise(np.multiply, self, other)

    def __rmul__(self, other):
        return _elementwise(np.multiply, other, self)

    def __truediv__(self, other):
        return _elementwise(np.true_divide, self, other)

    def __rtruediv__(self, other):
        return _elementwise(np.true_divide, other, self)

    def __pow__(self, exponent):
        return _elementwise(np.power, self, exponent)

    def __neg__(self):
        return Tensor.from_numpy(np.asarray(np.negative(self.data)))

    # ---- matrix multiplication (step 3) ----
    def __matmul__(self, other):
        return _matmul(self, other)

    def __rmatmul__(self, other):
        return _matmul(other, self)

    def matmul(self, other):
        """Matrix product self @ other with numpy semantics (1-D, 2-D, batched)."""
        return self @ other

    # ---- shape operations (step 4) ----
    def reshape(self, *shape):
        """Same elements in a new shape (ints or one tuple; one dim may be -1). Shares memory."""
        new_shape = _infer_shape(_shape_from_args(shape), self.size)
        return Tensor.from_numpy(self.data.reshape(new_shape))

    def transpose(self, dim0=-2, dim1=-1):
        """Swap two dimensions (default: the last two). Shares memory."""
        return _transpose(self, dim0, dim1)

    # ---- reductions (step 5) ----
    def sum(self, axis=None, keepdims=False):
        """Sum over axis (None: all elements; int or tuple of ints)."""
        return _reduce(np.sum, self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        """Arithmetic mean over axis (None: all elements; int or tuple of ints)."""
        return _reduce(np.mean, self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        """Largest element over axis (None: all elements); ValueError if nothing to compare."""
        return _reduce(np.max, self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        """Smallest element over axis (None: all elements); ValueError if nothing to compare."""
        return _reduce(np.min, self, axis, keepdims)

    # ---- indexing (step 6) ----
    def __getitem__(self, key):
        """numpy indexing (ints, slices, tuples, bool/int arrays or Tensors); returns a Tensor."""
        return Tensor.from_numpy(np.asarray(self.data[_index_key(key)]))

# %% [markdown]
# ### Check step 1
#
# The cell below exercises creation, copying, properties and `repr`. Run it; every line
# should pass silently and the last one prints `OK: ...`.

# %%
t = Tensor([[1, 2], [3, 4]])
assert t.dtype == np.float32 and t.shape == (2, 2) and t.size == 4 and t.ndim == 2
assert Tensor([1, 2], dtype=np.int64).dtype == np.int64
assert Tensor(3.5).shape == () and Tensor(3.5).item() == 3.5

source = np.array([1.0, 2.0, 3.0])
copied, shared = Tensor(source), Tensor.from_numpy(source)
source[0] = 100.0
assert copied.data[0] == 1.0            # Tensor(...) copied the data
assert shared.data[0] == 100.0          # from_numpy shares memory ...
assert shared.dtype == np.float64       # ... and keeps the dtype

for bad, error in (("abc", TypeError), ([[1, 2], [3]], ValueError), ([1, None], TypeError)):
    try:
        Tensor(bad)
    except error as err:
        print(f"{error.__name__} for {bad!r}: {err}")
    else:
        raise AssertionError(f"Tensor({bad!r}) should raise {error.__name__}")

assert len(t) == 2 and t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
print(repr(t))
print("OK: creation, copy vs from_numpy, dtype, properties and repr work")

# %% [markdown]
# ## Step 2: element-wise arithmetic and broadcasting
#
# `a + b`, `a - b`, `a * b`, `a / b` and `a ** p` work element by element. When the shapes
# differ, numpy **broadcasts**: align the shapes on the right; each pair of sizes must be
# equal, or one of them must be 1 (that operand is repeated along that dimension); a
# missing leading dimension counts as 1. So `(2, 3) + (3,)` adds the row to every row,
# and `(3, 1) * (1, 4)` gives a `(3, 4)` table, but `(2, 3) + (4,)` is an error.
#
# All eight operator methods of the class call one function, `_elementwise(ufunc, left,
# right)`; the reflected ones (`2 - t`, `1 / t`, `ndarray + t`) just swap the operands.
# You implement it and `_check_broadcast`, which turns numpy's terse error into one that
# names both shapes and the rule.
#
# **dtype promotion** follows numpy 2 (NEP 50): a Python number adapts to the tensor
# (`float32 tensor + 0.5` stays float32), while an array operand takes part in promotion
# (`float32 tensor + float64 array` gives float64). Operands of any other type make
# `_elementwise` return `NotImplemented`, so Python raises its usual
# "unsupported operand type(s)" error.

# %% nbgrader={"grade": false, "grade_id": "tensor-arithmetic", "locked": false, "schema_version": 3, "solution": true}
#| export
def _operand(value):
    """The ndarray or number behind an operand, or NotImplemented for other types."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (np.ndarray, np.generic, numbers.Number)):
        return value
    return NotImplemented


def _check_broadcast(left_shape, right_shape, op_name):
    """The broadcast shape of two shapes; ValueError naming both if they are incompatible."""
    ### BEGIN SOLUTION
    try:
        return np.broadcast_shapes(left_shape, right_shape)
    except ValueError:
        raise ValueError(
            f"{op_name}: cannot broadcast shapes {left_shape} and {right_shape}. Rule: align "
            "the shapes on the right; each pair of sizes must be equal or one of them 1. "
            "Reshape an operand (e.g. add a size-1 axis) to make them compatible") from None
    ### END SOLUTION


def _elementwise(ufunc, left, right):
    """Apply a binary numpy ufunc to two operands with broadcasting; return a new Tensor.

    left/right: Tensor, ndarray or number. Any other type gives NotImplemented.
    """
    ### BEGIN SOLUTION
    a, b = _operand(left), _operand(right)
    if a is NotImplemented or b is NotImplemented:
        return NotImplemented
    _check_broadcast(np.shape(a), np.shape(b), ufunc.__name__)
    return Tensor.from_numpy(np.asarray(ufunc(a, b)))
    ### END SOLUTION

# %% [markdown]
# ### Check step 2

# %%
a = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
row = Tensor([10.0, 20.0, 30.0])
assert np.array_equal((a + row).data, a.data + row.data)
assert np.array_equal((2 - a).data, 2 - a.data) and np.array_equal((1 / a).data, 1 / a.data)
assert np.array_equal((a ** 2).data, a.data ** 2) and np.array_equal((-a).data, -a.data)
assert (a * 0.5).dtype == np.float32                 # Python float adapts (NEP 50)
mixed = np.ones(3) + row                             # ndarray on the left
assert isinstance(mixed, Tensor) and mixed.dtype == np.float64
try:
    a + Tensor([1.0, 2.0, 3.0, 4.0])
except ValueError as err:
    print("ValueError:", err)
else:
    raise AssertionError("(2, 3) + (4,) should not broadcast")
print("OK: arithmetic, reflected operators, broadcasting and dtype promotion work")

# %% [markdown]
# ## Step 3: matrix multiplication
#
# `a @ b` (or `a.matmul(b)`) follows `np.matmul`: for 2-D operands `(n, k) @ (k, m) ->
# (n, m)`; a 1-D left operand acts as a row vector and a 1-D right operand as a column
# vector (that dimension is dropped from the result); with more than 2 dimensions the
# leading ones are *batch* dimensions that broadcast, and each batch element is a
# matrix product. A 0-d operand is an error (use `*` to scale).
#
# The most common bug in a network is a layer whose sizes do not line up, so the check
# before calling numpy is the point of this step: the message must name both shapes
# and the two inner dimensions that disagree.

# %% nbgrader={"grade": false, "grade_id": "tensor-matmul", "locked": false, "schema_version": 3, "solution": true}
#| export
def _matmul(left, right):
    """Matrix product with numpy semantics; ValueError for 0-d or mismatched operands."""
    ### BEGIN SOLUTION
    a, b = _operand(left), _operand(right)
    if a is NotImplemented or b is NotImplemented:
        return NotImplemented
    a_shape, b_shape = np.shape(a), np.shape(b)
    if not a_shape or not b_shape:
        raise ValueError(
            f"matmul needs operands with at least 1 dimension, got {a_shape} @ {b_shape}; "
            "use * to multiply by a scalar")
    inner_a = a_shape[-1]
    inner_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]  # a 1-D right operand is a column
    if inner_a != inner_b:
        raise ValueError(
            f"matmul shape mismatch: {a_shape} @ {b_shape}: "
            f"inner dimensions {inner_a} and {inner_b} must match")
    _check_broadcast(a_shape[:-2], b_shape[:-2], "matmul batch dimensions")
    return Tensor.from_numpy(np.asarray(np.matmul(a, b)))
    ### END SOLUTION

# %% [markdown]
# ### Check step 3

# %%
m = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
v = Tensor([1.0, 0.0, -1.0])
assert np.array_equal((m @ m.data.T).data, [[14.0, 32.0], [32.0, 77.0]])  # by hand
assert np.array_equal((m @ v).data, [-2.0, -2.0]) and (v @ v).shape == ()
assert (Tensor(np.ones((4, 2, 3))) @ Tensor(np.ones((3, 5)))).shape == (4, 2, 5)
try:
    m @ Tensor(np.ones((4, 5)))
except ValueError as err:
    print("ValueError:", err)
else:
    raise AssertionError("(2, 3) @ (4, 5) should fail")
print("OK: matmul for 1-D, 2-D and batched operands, with a clear shape error")

# %% [markdown]
# ## Step 4: shapes, constructors, reshape and transpose
#
# `Tensor.zeros`, `Tensor.ones` and `Tensor.randn` take a shape as separate ints or as
# one tuple (`zeros(2, 3)` or `zeros((2, 3))`); `_shape_from_args` handles both forms
# and `_creation_shape` rejects negative sizes. `randn` draws float32 standard-normal
# numbers from `rng`: `None` (fresh randomness), an int seed (reproducible) or a
# `np.random.Generator` you pass along.
#
# `reshape` keeps the elements (in row-major order) and changes the shape; one dimension
# may be `-1` and is inferred from the element count. `transpose(dim0, dim1)` swaps two
# dimensions, by default the last two (as in torch). Both return *views*: the result
# shares memory with the original (only the shape and strides change, as in the worked
# example), which is why they cost almost nothing. You implement `_infer_shape`, which
# validates the new shape and fills in the -1, and `_transpose`.

# %% nbgrader={"grade": false, "grade_id": "tensor-shape-ops", "locked": false, "schema_version": 3, "solution": true}
#| export
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


def _infer_shape(shape, size):
    """shape with its -1 (if any) filled in so that it holds exactly size elements."""
    ### BEGIN SOLUTION
    if shape.count(-1) > 1 or any(dim < -1 for dim in shape):
        raise ValueError(f"invalid shape {shape}: sizes must be >= 0, with at most one -1")
    known = math.prod(dim for dim in shape if dim != -1)
    if -1 not in shape:
        if known != size:
            raise ValueError(
                f"cannot reshape {size} elements into shape {shape} ({known} elements); "
                "the element counts must match")
        return shape
    if known == 0 or size % known:
        raise ValueError(
            f"cannot reshape {size} elements into shape {shape}: the other dimensions hold "
            f"{known} elements, so no whole size for -1 gives {size}")
    return tuple(size // known if dim == -1 else dim for dim in shape)
    ### END SOLUTION


def _transpose(tensor, dim0, dim1):
    """View of tensor with dimensions dim0 and dim1 swapped."""
    ### BEGIN SOLUTION
    if tensor.ndim < 2:
        raise ValueError(
            f"transpose needs at least 2 dims, got shape {tensor.shape}; "
            "reshape first, e.g. t.reshape(1, -1)")
    dim0 = _normalize_dim(dim0, tensor.ndim, "transpose dim")
    dim1 = _normalize_dim(dim1, tensor.ndim, "transpose dim")
    return Tensor.from_numpy(np.swapaxes(tensor.data, dim0, dim1))
    ### END SOLUTION

# %% [markdown]
# ### Check step 4

# %%
assert Tensor.zeros(2, 3).shape == Tensor.zeros((2, 3)).shape == (2, 3)
assert Tensor.ones(2, dtype=np.int64).tolist() == [1, 1]
assert np.array_equal(Tensor.randn(3, rng=0).data,
                      np.random.default_rng(0).standard_normal(3, dtype=np.float32))
r = Tensor(np.arange(6)).reshape(2, -1)
assert r.shape == (2, 3) and r.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
assert r.transpose().tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
assert np.shares_memory(r.data, r.transpose().data)   # a view, not a copy
try:
    r.reshape(4, -1)
except ValueError as err:
    print("ValueError:", err)
else:
    raise AssertionError("6 elements cannot be reshaped to (4, -1)")
print("OK: constructors, reshape with -1 and transpose work")

# %% [markdown]
# ## Step 5: reductions
#
# A reduction collapses one or more axes: `sum`, `mean`, `max`, `min`. `axis=None`
# reduces everything to a 0-d tensor; an int or a tuple of ints picks the axes (negative
# axes count from the end); `keepdims=True` keeps each reduced axis with size 1, so the
# result still broadcasts against the input (the trick behind "subtract the row mean").
#
# `_normalize_axis` (given) validates the axes. You implement `_reduce`, shared by all
# four methods. One special case needs a clear error: the max or min of nothing is
# undefined (a sum of nothing is 0 and numpy already handles it), so reject a max or
# min over a reduced axis of size 0 before calling numpy.

# %% nbgrader={"grade": false, "grade_id": "tensor-reductions", "locked": false, "schema_version": 3, "solution": true}
#| export
def _normalize_axis(axis, ndim):
    """None, or a tuple of distinct axes in [0, ndim); ValueError for a bad axis."""
    if axis is None:
        return None
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    axes = tuple(_normalize_dim(a, ndim, "axis") for a in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis {axis} names the same axis twice; list each axis once")
    return axes


def _reduce(func, tensor, axis, keepdims):
    """Reduce tensor with func (np.sum, np.mean, np.max or np.min) over axis; a Tensor."""
    ### BEGIN SOLUTION
    axes = _normalize_axis(axis, tensor.ndim)
    reduced_sizes = tensor.shape if axes is None else [tensor.shape[a] for a in axes]
    if func in (np.max, np.min) and 0 in reduced_sizes:
        raise ValueError(
            f"{func.__name__} of an empty tensor is undefined: shape {tensor.shape} has no "
            f"elements to compare along axis={axis}")
    return Tensor.from_numpy(np.asarray(func(tensor.data, axis=axes, keepdims=keepdims)))
    ### END SOLUTION

# %% [markdown]
# ### Check step 5

# %%
s = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
assert s.sum().shape == () and s.sum().item() == 21.0
assert s.sum(axis=0).tolist() == [5.0, 7.0, 9.0] and s.mean(axis=-1).tolist() == [2.0, 5.0]
assert s.max(axis=1, keepdims=True).shape == (2, 1) and s.min().item() == 1.0
assert (s - s.mean(axis=1, keepdims=True)).tolist() == [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]
for bad in (lambda: s.sum(axis=2), lambda: Tensor.zeros(0).max()):
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
# integer or boolean array selects elements ("fancy" indexing, which copies). A Tensor
# used as an index is replaced by its array; it must hold integers (positions) or bools
# (a mask), and since tensors default to float32, a float index Tensor deserves a clear
# error. You implement `_index_key`. Writing into a tensor (`t[0] = 1`) is deliberately
# not supported.

# %% nbgrader={"grade": false, "grade_id": "tensor-indexing", "locked": false, "schema_version": 3, "solution": true}
#| export
def _index_key(key):
    """The numpy index for key: Tensors (also inside a tuple) become their arrays."""
    ### BEGIN SOLUTION
    if isinstance(key, tuple):
        return tuple(_index_key(part) for part in key)
    if isinstance(key, Tensor):
        if key.dtype.kind not in "biu":
            raise IndexError(
                f"a Tensor used as an index must have an integer or bool dtype, got "
                f"{key.dtype}; create it with dtype=np.int64 (positions) or dtype=bool (mask)")
        return key.data
    return key
    ### END SOLUTION

# %% [markdown]
# ### Check step 6

# %%
g = Tensor(np.arange(12).reshape(3, 4))
assert g[1].tolist() == [4.0, 5.0, 6.0, 7.0] and g[1, 2].item() == 6.0
assert g[:, 1:3].shape == (3, 2) and g[..., -1].tolist() == [3.0, 7.0, 11.0]
assert g[Tensor([2, 0], dtype=np.int64)].tolist()[0] == [8.0, 9.0, 10.0, 11.0]
assert g[g.data > 9].tolist() == [10.0, 11.0]
print(g[0])
print("OK: int, slice, tuple, mask and Tensor indexing work")

# %% [markdown]
# ## Graded tests
#
# Each cell below checks one step against numpy (and a few hand-computed values).
# They are worth points when the notebook is graded; run them to confirm your work.

# %% nbgrader={"grade": true, "grade_id": "test-creation", "locked": true, "points": 2, "schema_version": 3, "solution": false}
src = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
t = Tensor(src)
assert t.dtype == np.float32 and t.shape == (2, 3)
np.testing.assert_array_equal(t.data, src.astype(np.float32))
src[0, 0] = 99
assert t.data[0, 0] == 1.0
assert Tensor(src, dtype=np.int64).dtype == np.int64
assert Tensor(t).dtype == np.float32 and Tensor(t).data is not t.data
wrapped = Tensor.from_numpy(src)
src[1, 1] = -7
assert wrapped.data[1, 1] == -7 and wrapped.dtype == np.int64
for bad, error in ((["a", "b"], TypeError), ([[1.0], [2.0, 3.0]], ValueError)):
    try:
        Tensor(bad)
    except error:
        pass
    else:
        raise AssertionError(f"Tensor({bad!r}) must raise {error.__name__}")
try:
    Tensor.from_numpy([1.0, 2.0])
except TypeError:
    pass
else:
    raise AssertionError("from_numpy(list) must raise TypeError")
assert repr(Tensor([[1.0, 2.0], [3.0, 4.0]])) == (
    "Tensor([[1., 2.], [3., 4.]], shape=(2, 2), dtype=float32)")
assert Tensor([[2.5]]).item() == 2.5

# %% nbgrader={"grade": true, "grade_id": "test-arithmetic", "locked": true, "points": 3, "schema_version": 3, "solution": false}
rng = np.random.default_rng(1)
x = rng.standard_normal((3, 1, 4)).astype(np.float32)
y = rng.standard_normal((2, 1)).astype(np.float32) + 3.0
tx, ty = Tensor(x), Tensor(y)
np.testing.assert_allclose((tx + ty).data, x + y)
np.testing.assert_allclose((tx - ty).data, x - y)
np.testing.assert_allclose((tx * ty).data, x * y)
np.testing.assert_allclose((tx / ty).data, x / y)
np.testing.assert_allclose((3.0 - tx).data, 3.0 - x)
np.testing.assert_allclose((1.0 / ty).data, 1.0 / y)
np.testing.assert_allclose((ty ** 2).data, y ** 2)
np.testing.assert_allclose((-tx).data, -x)
assert (tx + ty).shape == (3, 2, 4) and (tx * 2.5).dtype == np.float32
left = np.full((2, 1), 2.0) * ty
assert isinstance(left, Tensor) and left.dtype == np.float64
np.testing.assert_allclose(left.data, 2.0 * y.astype(np.float64))
try:
    Tensor.ones(2, 3) + Tensor.ones(2)
except ValueError as err:
    assert "(2, 3)" in str(err) and "(2,)" in str(err)
else:
    raise AssertionError("(2, 3) + (2,) must raise ValueError")

# %% nbgrader={"grade": true, "grade_id": "test-matmul", "locked": true, "points": 2, "schema_version": 3, "solution": false}
rng = np.random.default_rng(2)
A = rng.standard_normal((5, 2, 3)).astype(np.float32)
B = rng.standard_normal((3, 4)).astype(np.float32)
v3 = rng.standard_normal(3).astype(np.float32)
np.testing.assert_allclose((Tensor(A) @ Tensor(B)).data, np.matmul(A, B), rtol=1e-5)
np.testing.assert_allclose(Tensor(A[0]).matmul(Tensor(B)).data, A[0] @ B, rtol=1e-5)
np.testing.assert_allclose((Tensor(A[0]) @ Tensor(v3)).data, A[0] @ v3, rtol=1e-5)
np.testing.assert_allclose((Tensor(v3) @ Tensor(B)).data, v3 @ B, rtol=1e-5)
assert isinstance(A[0] @ Tensor(B), Tensor)
try:
    Tensor.ones(2, 3) @ Tensor.ones(4, 5)
except ValueError as err:
    assert "(2, 3) @ (4, 5)" in str(err) and "3 and 4" in str(err)
else:
    raise AssertionError("(2, 3) @ (4, 5) must raise ValueError")

# %% nbgrader={"grade": true, "grade_id": "test-shape-ops", "locked": true, "points": 2, "schema_version": 3, "solution": false}
base = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
tb = Tensor(base)
np.testing.assert_array_equal(tb.reshape(4, -1).data, base.reshape(4, 6))
np.testing.assert_array_equal(tb.reshape((6, 4)).data, base.reshape(6, 4))
np.testing.assert_array_equal(tb.transpose().data, np.swapaxes(base, -2, -1))
np.testing.assert_array_equal(tb.transpose(0, 2).data, np.swapaxes(base, 0, 2))
for bad in (lambda: tb.reshape(5, 5), lambda: tb.reshape(-1, -1), lambda: Tensor([1.0]).transpose(),
            lambda: tb.transpose(0, 3)):
    try:
        bad()
    except ValueError:
        pass
    else:
        raise AssertionError("expected a ValueError")
assert Tensor.zeros((2, 3)).tolist() == [[0.0] * 3] * 2 and Tensor.ones(3).dtype == np.float32

# %% nbgrader={"grade": true, "grade_id": "test-reductions", "locked": true, "points": 2, "schema_version": 3, "solution": false}
vals = np.random.default_rng(3).standard_normal((3, 4, 5)).astype(np.float32)
tv = Tensor(vals)
for name in ("sum", "mean", "max", "min"):
    ours, ref = getattr(tv, name), getattr(vals, name)
    np.testing.assert_allclose(ours().data, ref(), rtol=1e-5)
    np.testing.assert_allclose(ours(axis=1).data, ref(axis=1), rtol=1e-5)
    np.testing.assert_allclose(ours(axis=(0, -1), keepdims=True).data,
                               ref(axis=(0, 2), keepdims=True), rtol=1e-5)
assert tv.sum().shape == () and tv.max(axis=-1).shape == (3, 4)
for bad in (lambda: tv.sum(axis=3), lambda: Tensor.zeros(0, 2).min(axis=0)):
    try:
        bad()
    except ValueError:
        pass
    else:
        raise AssertionError("expected a ValueError")

# %% nbgrader={"grade": true, "grade_id": "test-indexing", "locked": true, "points": 1, "schema_version": 3, "solution": false}
arr = np.arange(20, dtype=np.float32).reshape(4, 5)
ta = Tensor(arr)
np.testing.assert_array_equal(ta[2].data, arr[2])
np.testing.assert_array_equal(ta[1:3, ::2].data, arr[1:3, ::2])
np.testing.assert_array_equal(ta[arr > 12].data, arr[arr > 12])
np.testing.assert_array_equal(ta[Tensor([3, 0], dtype=np.int64), 1].data, arr[[3, 0], 1])
assert isinstance(ta[0, 0], Tensor) and ta[0, 0].shape == ()
try:
    ta[Tensor([0.0, 1.0])]
except IndexError:
    pass
else:
    raise AssertionError("a float32 index Tensor must raise IndexError")

# %% [markdown]
# ## Systems analysis: what float32 and BLAS buy you
#
# Two claims from this module deserve a measurement instead of a promise:
#
# 1. float32 needs half the memory of float64, and memory-bound operations get faster.
# 2. `@` hands the work to an optimised BLAS library, which is far faster than the same
#    arithmetic written as Python loops.
#
# Trustworthy numbers need a careful timing loop, and every later module measures
# something, so this module writes that loop once, as library code: the cells below are
# exported to `tinytorch.utils.timing` (note the `#| export utils.timing` line at their
# top), and modules 02-09 import it from there. They are given code, not an exercise;
# read them, because every number the course prints goes through them. They follow
# TinyTorch's measurement rules in miniature:
#
# - the clock is `time.perf_counter_ns`, and its own cost is measured;
# - fast callables run in batches of calls: each raw sample lasts at least
#   max(1 ms, 1000 x the timer's overhead), so that cost is negligible, and the per-call
#   time is the batch time divided by the batch size;
# - choosing the batch size doubles as warm-up;
# - candidates are measured in alternating rounds (A B A B ...), so machine drift hits
#   all of them;
# - results lead with the median, with the interquartile range (IQR) over the median
#   as a noise indicator, and come with a warning (the number and a remedy) when
#   IQR/median or the coefficient of variation (CV) reaches 10%, or when a raw sample
#   lasts less than 1 ms.
#
# A later module builds a complete benchmarking harness (confidence intervals, adaptive
# stopping); this is just enough to trust the numbers below.
#
# First the statistics: plain functions, numbers in and numbers out, no clock. The
# quartiles use linear interpolation between order statistics, numpy's default
# percentile method.

# %%
#| export utils.timing
import gc
import os
import platform
import time
from dataclasses import dataclass
from itertools import repeat
from time import perf_counter_ns

import numpy as np

NOISE_LIMIT = 0.10                # IQR/median or CV at or above this is flagged as noisy
MIN_SAMPLE_FLOOR_NS = 1_000_000   # no raw sample may be shorter than 1 ms
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _checked_samples(samples):
    """samples as a 1-D float64 array; ValueError when there are none or one is not finite."""
    values = np.asarray(samples, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("samples is empty: a statistic needs at least one sample; measure with repeats >= 1")
    if not np.isfinite(values).all():
        raise ValueError(f"samples must be finite numbers, got {samples!r}; drop the NaN/inf entries")
    return values


def quartiles(samples):
    """(q1, median, q3) of samples, by linear interpolation (numpy's default percentile method)."""
    q1, median, q3 = np.percentile(_checked_samples(samples), (25, 50, 75))
    return float(q1), float(median), float(q3)


def iqr_over_median(samples):
    """Interquartile range / median: a robust relative spread (0.05 means 5%)."""
    q1, median, q3 = quartiles(samples)
    if median <= 0:
        raise ValueError(f"IQR/median needs a positive median, got {median!r}; pass durations")
    return (q3 - q1) / median


def coefficient_of_variation(samples):
    """Sample standard deviation (ddof=1) / mean; needs at least 2 samples."""
    values = _checked_samples(samples)
    if values.size < 2:
        raise ValueError(f"the coefficient of variation needs at least 2 samples, got {values.size}; raise repeats")
    if values.mean() <= 0:
        raise ValueError(f"the coefficient of variation needs a positive mean, got {values.mean()!r}; pass durations")
    return float(values.std(ddof=1) / values.mean())


def required_sample_ns(overhead_ns, floor_ns=MIN_SAMPLE_FLOOR_NS):
    """How long each raw sample must last at least: max(floor_ns, 1000 x the timer's overhead)."""
    if overhead_ns < 0 or floor_ns < MIN_SAMPLE_FLOOR_NS:
        raise ValueError(f"need overhead_ns >= 0 and floor_ns >= {MIN_SAMPLE_FLOOR_NS:,} (1 ms), "
                         f"got overhead_ns={overhead_ns!r}, floor_ns={floor_ns!r}")
    return max(floor_ns, 1000 * overhead_ns)


def _noise_problems(values, limit):
    """Descriptions of the spread statistics of values that reach limit."""
    if values.size < 2:
        return ["a single sample shows no spread"]
    spread, cv = iqr_over_median(values), coefficient_of_variation(values)
    problems = []
    if spread >= limit:
        problems.append(f"IQR/median {spread:.1%}")
    if cv >= limit:
        problems.append(f"CV {cv:.1%}")
    return problems


def noise_warning(samples_ns, calls_per_sample=1, limit=NOISE_LIMIT, min_raw_ns=MIN_SAMPLE_FLOOR_NS):
    """A warning with the numbers and a remedy when timings are not trustworthy, else None.

    samples_ns: per-call times in ns, each from one raw sample of calls_per_sample calls.
    Flagged: IQR/median >= limit, CV >= limit, a single sample, a median raw sample < min_raw_ns.
    """
    values = _checked_samples(samples_ns)
    problems, remedies = _noise_problems(values, limit), []
    if problems:
        remedies.append("close other programs and rerun, or raise repeats")
    raw_ns = quartiles(values)[1] * calls_per_sample
    if raw_ns < min_raw_ns:
        problems.append(f"raw samples last {raw_ns / 1e6:.3g} ms < {min_raw_ns / 1e6:g} ms")
        remedies.append("time more calls per sample (raise min_sample_ns)")
    if not problems:
        return None
    return f"noisy: {', '.join(problems)} (n={values.size}, limit {limit:.0%}): {'; '.join(remedies)}"

# %% [markdown]
# A worked example: five per-call times in nanoseconds, `[100, 104, 96, 98, 150]`,
# each from a raw sample of 20,000 calls (so each raw sample lasts about 2 ms). Sorted
# they are `96, 98, 100, 104, 150`; with five values the quartiles fall exactly on the
# 2nd, 3rd and 4th of them, so q1 = 98, median = 100, q3 = 104 and IQR/median =
# 6/100 = 6%. The one slow sample hardly moves these, but it pulls the mean and the
# standard deviation: the CV is about 21%, so the samples are flagged.

# %%
example = [100, 104, 96, 98, 150]
assert quartiles(example) == (98.0, 100.0, 104.0)
assert abs(iqr_over_median(example) - 0.06) < 1e-12
assert abs(coefficient_of_variation(example) - np.std(example, ddof=1) / np.mean(example)) < 1e-12
assert noise_warning(example[:4], calls_per_sample=20_000) is None
print(noise_warning(example, calls_per_sample=20_000))
print(noise_warning(example[:4], calls_per_sample=100))
print("OK: quartiles, IQR/median, CV and the noise warning agree with the hand computation")

# %% [markdown]
# Next the objects the timing loops return: `TimerInfo` (what the clock costs and how
# finely it ticks) and `Timing` (the raw samples of one callable, with the statistics
# above as properties). Both print informatively.

# %%
#| export utils.timing
@dataclass(frozen=True, repr=False)
class TimerInfo:
    """perf_counter_ns measured: median cost of a start/stop pair, smallest positive step (ns)."""

    overhead_ns: float
    resolution_ns: int
    pairs: int

    def __repr__(self):
        return (f"TimerInfo(perf_counter_ns: overhead {self.overhead_ns:.0f} ns per start/stop pair, "
                f"resolution {self.resolution_ns} ns, from {self.pairs} pairs)")


@dataclass(frozen=True, repr=False)
class Timing:
    """Per-call times (ns) of one callable, each from one raw sample of calls_per_sample calls."""

    name: object
    samples_ns: tuple
    calls_per_sample: int = 1

    def __post_init__(self):
        object.__setattr__(self, "samples_ns", tuple(_checked_samples(self.samples_ns).tolist()))
        object.__setattr__(self, "calls_per_sample", _check_count(self.calls_per_sample, "calls_per_sample"))

    @property
    def n(self):
        """Number of raw samples."""
        return len(self.samples_ns)

    @property
    def median_ns(self):
        """Median per-call time in ns."""
        return quartiles(self.samples_ns)[1]

    @property
    def iqr_over_median(self):
        """Interquartile range / median of the per-call times."""
        return iqr_over_median(self.samples_ns)

    @property
    def warning(self):
        """noise_warning of the samples (a string), or None when they look trustworthy."""
        return noise_warning(self.samples_ns, self.calls_per_sample)

    @property
    def noise(self):
        """'IQR/median x% (n=k)', or the warning when there is one (for printed tables)."""
        return self.warning or f"IQR/median {self.iqr_over_median:.1%} (n={self.n})"

    def __repr__(self):
        return (f"Timing({self.name!r}: median {_format_ns(self.median_ns)} per call, "
                f"IQR/median {self.iqr_over_median:.1%}, n={self.n} samples of {self.calls_per_sample} call(s))")


def _format_ns(ns):
    """A duration in ns as text with a readable unit: '850 ns', '12.3 us', '4.56 ms', '1.2 s'."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def _check_count(value, name):
    """value if it is an int >= 1, else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)

# %% [markdown]
# Finally the loops that read the clock. `measure_timer` times back-to-back clock reads;
# `calls_per_sample` makes one untimed call, then doubles the number of calls until a
# batch lasts at least `min_sample_ns` (twice in a row); `measure_interleaved` times
# several callables in alternating rounds and returns a `Timing` for each (`measure`
# does the same for one). `environment` collects what the numbers depend on, and
# `describe_environment` prints it.

# %%
#| export utils.timing
def _clock_step_ns():
    """The first positive step between two perf_counter_ns readings (read until it changes)."""
    start = now = perf_counter_ns()
    while now == start:
        now = perf_counter_ns()
    return now - start


def measure_timer(pairs=2000):
    """TimerInfo of perf_counter_ns: median start/stop cost of `pairs` pairs, smallest clock step."""
    pairs = _check_count(pairs, "pairs")
    gaps = []
    for _ in range(pairs):
        start = perf_counter_ns()
        gaps.append(perf_counter_ns() - start)
    step = min(_clock_step_ns() for _ in range(min(pairs, 100)))
    return TimerInfo(float(np.median(gaps)), step, pairs)


def time_batch(fn, calls):
    """Nanoseconds that `calls` back-to-back calls of fn take: one raw sample.

    The loop runs over itertools.repeat, which hands out the same None object each step; a
    range would create an int per call and add a few nanoseconds to every call timed."""
    start = perf_counter_ns()
    for _ in repeat(None, calls):
        fn()
    return perf_counter_ns() - start


def calls_per_sample(fn, min_sample_ns):
    """Smallest power of two of calls whose batch lasts >= min_sample_ns twice in a row.

    One untimed call comes first, and the calibration doubles as warm-up. The accepted batch
    size is timed a second time, so that one slow batch (an interrupt, another program)
    cannot end the doubling too early.
    """
    _check_callable(fn, "fn")
    if not min_sample_ns > 0:
        raise ValueError(f"min_sample_ns must be > 0, got {min_sample_ns!r}")
    fn()
    calls = 1
    while time_batch(fn, calls) < min_sample_ns or time_batch(fn, calls) < min_sample_ns:
        calls *= 2
    return calls


def _check_callable(fn, name):
    """TypeError unless fn can be called."""
    if not callable(fn):
        raise TypeError(f"{name} is a {type(fn).__name__}, not callable; "
                        "pass a function of no arguments, e.g. lambda: f(x)")


def _check_callables(fns):
    """ValueError/TypeError unless fns is a non-empty dict of callables."""
    if not isinstance(fns, dict) or not fns:
        raise ValueError(f"fns must be a non-empty dict {{name: callable}}, got {fns!r}")
    for name, fn in fns.items():
        _check_callable(fn, f"fns[{name!r}]")


def measure_interleaved(fns, repeats, min_sample_ns=None, calls=None, rewarm=False):
    """{name: Timing} of each callable in fns, measured in alternating rounds (A B A B ...).

    Calls per sample: calibrated per callable so that a raw sample lasts >= min_sample_ns
    (default: required_sample_ns of a fresh measure_timer()), or `calls` for every callable
    (calls=1: single calls, without warm-up). rewarm: one untimed call before each timed
    batch, so that no callable pays for the cache misses the one before it caused.
    """
    _check_callables(fns)
    repeats = _check_count(repeats, "repeats")
    if calls is not None and min_sample_ns is not None:
        raise ValueError("give min_sample_ns (calibrated batches) or calls (a fixed batch size), not both")
    if calls is not None:
        counts = dict.fromkeys(fns, _check_count(calls, "calls"))
    else:
        floor = required_sample_ns(measure_timer().overhead_ns) if min_sample_ns is None else min_sample_ns
        counts = {name: calls_per_sample(fn, floor) for name, fn in fns.items()}
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if rewarm:
                fn()
            samples[name].append(time_batch(fn, counts[name]) / counts[name])
    return {name: Timing(name, samples[name], counts[name]) for name in fns}


def measure(fn, repeats, min_sample_ns=None, calls=None, name=None):
    """Timing of one callable (measure_interleaved with a single candidate)."""
    label = getattr(fn, "__name__", "fn") if name is None else name
    return measure_interleaved({label: fn}, repeats, min_sample_ns, calls)[label]


def environment(timer=None, min_sample_ns=None):
    """What timings depend on: versions, OS, cores, thread settings, load, gc and the timer."""
    timer = measure_timer() if timer is None else timer
    return {
        "python": platform.python_version(), "numpy": np.__version__, "os": platform.platform(),
        "cpu_count": os.cpu_count(), "threads": {k: os.environ.get(k, "unset") for k in THREAD_VARIABLES},
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else "unavailable",
        "gc_enabled": gc.isenabled(), "timer": "perf_counter_ns",
        "timer_resolution_s": time.get_clock_info("perf_counter").resolution,
        "timer_resolution_ns": timer.resolution_ns, "timer_overhead_ns": timer.overhead_ns,
        "min_sample_ns": min_sample_ns,
    }


def describe_environment(env):
    """Two printable lines from an environment() dict: the machine, then the timer."""
    load = env["load_average"]
    load_text = " ".join(f"{value:.2f}" for value in load) if isinstance(load, (tuple, list)) else load
    machine = (f"Python {env['python']}, numpy {env['numpy']}, {env['cpu_count']} logical CPUs, "
               f"load average {load_text}, gc enabled: {env['gc_enabled']}, thread settings: {env['threads']}")
    timer = (f"timer: {env['timer']}, declared resolution {env['timer_resolution_s']:.0e} s, measured "
             f"resolution {env['timer_resolution_ns']} ns, overhead {env['timer_overhead_ns']:.0f} ns per start/stop pair")
    if env["min_sample_ns"] is not None:
        timer += f"; raw samples >= {env['min_sample_ns'] / 1e6:.1f} ms"
    return f"{machine}\n{timer}"

# %% [markdown]
# Measure the timer, fix the shortest raw sample, print the environment, and time one
# small function to see a `Timing`. The rules ask for at least 1 ms per raw sample; this
# notebook uses 5 ms, which is steadier.

# %%
timer = measure_timer()
MIN_SAMPLE_NS = required_sample_ns(timer.overhead_ns, floor_ns=5_000_000)
print(timer)
print(describe_environment(environment(timer, MIN_SAMPLE_NS)))
demo = measure(lambda: sum(range(100)), repeats=5, min_sample_ns=MIN_SAMPLE_NS)
assert demo.n == 5 and demo.calls_per_sample >= 1
print(demo)

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
# A product of an `(M, K)` and a `(K, N)` matrix does `M*N*K` multiply-adds, i.e.
# `2*M*N*K` floating-point operations (FLOPs). Dividing by the measured time gives the
# achieved GFLOP/s (FLOPs per nanosecond equals GFLOP/s). The cell times `Tensor @` and
# the raw `np.matmul` on the same arrays (the gap is the cost of our Python wrapper), and
# a pure-Python triple loop on a small size (checked against the Tensor result first).

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


def gflops(size, ns):
    """Achieved GFLOP/s of a size x size x size matmul that took ns nanoseconds."""
    return 2 * size ** 3 / ns


small = 32
A32, B32 = Tensor.randn(small, small, rng=0), Tensor.randn(small, small, rng=1)
A_list, B_list = A32.tolist(), B32.tolist()
assert np.allclose(naive_matmul(A_list, B_list), (A32 @ B32).data, rtol=1e-4, atol=1e-4)
loop = measure_interleaved({"Tensor @": lambda: A32 @ B32,
                            "python loop": lambda: naive_matmul(A_list, B_list)},
                           repeats=7, min_sample_ns=MIN_SAMPLE_NS)
medians = {name: timing.median_ns for name, timing in loop.items()}
print(f"{small}x{small} @ {small}x{small}:")
for name, timing in loop.items():
    print(f"  {name:11s} median {medians[name] / 1e3:8.1f} us = "
          f"{gflops(small, medians[name]):7.3f} GFLOP/s, {timing.noise}")
print(f"  ratio of medians, loop / Tensor @: {medians['python loop'] / medians['Tensor @']:.0f}x")

for size in (64, 256, 512):
    A, B = Tensor.randn(size, size, rng=0), Tensor.randn(size, size, rng=1)
    timed = measure_interleaved({"Tensor @": lambda A=A, B=B: A @ B,
                                 "np.matmul": lambda A=A, B=B: np.matmul(A.data, B.data)},
                                repeats=15, min_sample_ns=MIN_SAMPLE_NS)
    print(f"{size}x{size} @ {size}x{size}:")
    for name, timing in timed.items():
        print(f"  {name:11s} median {timing.median_ns / 1e3:8.1f} us = "
              f"{gflops(size, timing.median_ns):7.1f} GFLOP/s, {timing.noise}")

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
#   our checks and wrapping; at large sizes the two columns converge, because that cost
#   no longer matters next to the arithmetic.
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
# - Element-wise operators broadcast and promote dtypes exactly like numpy (NEP 50), and
#   `__array_ufunc__ = None` makes `ndarray + Tensor` return a Tensor.
# - `@` follows `np.matmul`, with an error that names both shapes and the inner
#   dimensions; `reshape` and `transpose` return views; reductions take `axis` and
#   `keepdims`; indexing returns Tensors.
# - Measured: float32 halves the bytes per element, and BLAS matmul outruns a Python
#   loop by a wide margin; your numbers are in the cells above.
# - The timing helpers live in `tinytorch.utils.timing`: `measure_timer`,
#   `measure_interleaved` (calibrated batches, alternating rounds) returning `Timing`
#   results, the statistics `quartiles`, `iqr_over_median` and
#   `coefficient_of_variation`, and `noise_warning`. Every later module times with them.
#
# Every later module (autograd, layers, optimizers) builds on this `Tensor`.
