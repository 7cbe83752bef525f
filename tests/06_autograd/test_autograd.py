"""Tests of the exported tinytorch.core.autograd (Module 06).

The oracle is central finite differences in float64 (numeric_grad), plus hand-computed values.
The integration tests at the end (activations, layers, losses) skip when that module is missing.
"""
import numpy as np
import pytest

from tinytorch.core.autograd import (Context, Function, MatMul, Node, enable_autograd,
                                     is_grad_enabled, no_grad)
from tinytorch.core.tensor import Tensor

RTOL, ATOL = 1e-5, 1e-7


def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of the scalar f() w.r.t. each element of the float64 array x.

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


def leaf(array):
    """A float64 leaf tensor that requires grad (its data is a copy of array)."""
    return Tensor(array, dtype=np.float64, requires_grad=True)


def assert_gradients(fn, *tensors, seed=0):
    """Backward of fn(*tensors) with random output weights vs finite differences, per tensor."""
    out = fn(*tensors)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    for t in tensors:
        t.zero_grad()
    out.backward(weights)

    def weighted():
        with no_grad():
            return float(np.sum(fn(*tensors).data * weights))

    for t in tensors:
        assert t.grad is not None and t.grad.shape == t.shape and t.grad.dtype == t.dtype
        np.testing.assert_allclose(t.grad.data, numeric_grad(weighted, t.data), rtol=RTOL, atol=ATOL)


def rand(*shape, seed=0, low=None, high=None):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) if low is None else rng.uniform(low, high, shape)


# ---------------------------------------------------------------- element-wise operations

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}
BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3), (3,)), ((), (2, 2)),
                    ((4, 1, 3), (2, 1)), ((5, 3), (5, 1))]


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("a_shape, b_shape", BROADCAST_SHAPES)
def test_binary_ops_with_broadcasting(name, a_shape, b_shape):
    a = leaf(rand(*a_shape, seed=1))
    b = leaf(rand(*b_shape, seed=2, low=0.5, high=2.0))  # away from 0 for division
    assert_gradients(BINARY[name], a, b)


def test_bias_broadcast_gradient_is_sum_over_batch():
    out = leaf(rand(6, 3, seed=3))
    bias = leaf(rand(3, seed=4))
    assert_gradients(lambda o, b: o + b, out, bias)
    bias.zero_grad()
    (out + bias).backward(np.ones((6, 3)))
    np.testing.assert_array_equal(bias.grad.data, [6.0, 6.0, 6.0])


@pytest.mark.parametrize("fn", [
    lambda x: x + 2.0, lambda x: 2.0 + x, lambda x: x - 2.5, lambda x: 2.5 - x,
    lambda x: x * 3.0, lambda x: 3.0 * x, lambda x: x / 4.0, lambda x: 4.0 / x,
    lambda x: np.float64(2.0) * x, lambda x: x * np.int64(3),
    lambda x: np.arange(4.0) + x, lambda x: x * np.arange(4.0), lambda x: np.full((2, 1), 3.0) / x,
    lambda x: x - np.ones((3, 1, 4)),
], ids=["x+2", "2+x", "x-c", "c-x", "x*3", "3*x", "x/4", "4/x", "np.float64*x", "x*np.int64",
        "ndarray+x", "x*ndarray", "ndarray/x", "x-ndarray(3,1,4)"])
def test_scalar_and_ndarray_operands_on_either_side(fn):
    x = leaf(rand(2, 4, seed=5, low=0.5, high=2.0))
    assert_gradients(fn, x)


@pytest.mark.parametrize("fn", [
    lambda x: -x, lambda x: x ** 2, lambda x: x ** 3, lambda x: x ** 0.5, lambda x: x ** -1.5,
    lambda x: x ** np.array([1.0, 2.0, 3.0]), lambda x: x ** Tensor([2.0, 1.0, 0.5], dtype=np.float64),
    lambda x: x.exp(), lambda x: x.log(), lambda x: x.sqrt(), lambda x: (x * x).sqrt().log().exp(),
], ids=["neg", "pow2", "pow3", "pow0.5", "pow-1.5", "pow-array", "pow-tensor-const", "exp", "log",
        "sqrt", "chain"])
def test_unary_ops(fn):
    x = leaf(rand(4, 3, seed=6, low=0.3, high=2.0))
    assert_gradients(fn, x)


def test_exp_log_sqrt_values_and_hand_gradients():
    x = Tensor([1.0, 4.0], dtype=np.float64, requires_grad=True)
    (x.log() + x.sqrt()).sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0 + 0.5, 0.25 + 0.25])
    np.testing.assert_allclose(x.exp().data, np.exp([1.0, 4.0]))
    assert x.exp().dtype == np.float64 and Tensor([1.0]).exp().dtype == np.float32


def test_same_tensor_used_twice_accumulates_both_paths():
    x = leaf([1.0, -2.0, 3.0])
    assert_gradients(lambda t: t * t + t * 3.0, x)
    x.zero_grad()
    y = x * x
    (y + y * x).sum().backward()  # d/dx (x^2 + x^3) = 2x + 3x^2 (a diamond in the graph)
    np.testing.assert_allclose(x.grad.data, 2 * x.data + 3 * x.data ** 2)


# ---------------------------------------------------------------- matmul

@pytest.mark.parametrize("a_shape, b_shape", [
    ((4,), (4,)), ((4,), (4, 3)), ((2, 4), (4,)), ((2, 4), (4, 3)),
    ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (2, 4, 3)), ((2, 3, 4), (4,)),
])
def test_matmul_shapes(a_shape, b_shape):
    a, b = leaf(rand(*a_shape, seed=7)), leaf(rand(*b_shape, seed=8))
    assert_gradients(lambda x, y: x @ y, a, b)


def test_matmul_hand_values_and_method_and_ndarray_operand():
    a = Tensor([[1.0, 2.0]], requires_grad=True)
    b = Tensor([[3.0], [4.0]], requires_grad=True)
    a.matmul(b).backward()
    assert a.grad.tolist() == [[3.0, 4.0]] and b.grad.tolist() == [[1.0], [2.0]]
    x = leaf(rand(3, 2, seed=9))
    constant = rand(4, 3, seed=10)
    assert_gradients(lambda t: constant @ t, x)
    assert_gradients(lambda t: t.transpose() @ constant.T, x)


# ---------------------------------------------------------------- shapes, reductions, indexing

@pytest.mark.parametrize("fn", [
    lambda t: t.reshape(6, 4), lambda t: t.reshape((4, -1)), lambda t: t.reshape(-1),
    lambda t: t.transpose(), lambda t: t.transpose(0, 2), lambda t: t.transpose(-3, 1),
], ids=["reshape", "reshape-tuple", "flatten", "transpose", "transpose-0-2", "transpose-neg"])
def test_shape_ops(fn):
    assert_gradients(fn, leaf(rand(2, 3, 4, seed=11)))


REDUCTION_ARGS = [{}, {"axis": 0}, {"axis": -1}, {"axis": (0, 2)}, {"axis": [1, 2]},
                  {"keepdims": True}, {"axis": 1, "keepdims": True}, {"axis": (0, -1), "keepdims": True}]


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("kwargs", REDUCTION_ARGS, ids=[str(k) for k in REDUCTION_ARGS])
def test_reductions(name, kwargs):
    t = leaf(rand(2, 3, 4, seed=12))  # continuous random values: no ties
    assert_gradients(lambda x: getattr(x, name)(**kwargs), t)


def test_max_min_split_gradient_equally_among_ties():
    t = Tensor([[1.0, 5.0, 5.0], [2.0, 0.0, 2.0]], requires_grad=True)
    t.max(axis=1).backward(np.array([1.0, 3.0], dtype=np.float32))
    np.testing.assert_allclose(t.grad.data, [[0.0, 0.5, 0.5], [1.5, 0.0, 1.5]])
    u = Tensor([4.0, 1.0, 1.0, 1.0, 7.0], requires_grad=True)
    u.min().backward()
    np.testing.assert_allclose(u.grad.data, [0.0, 1 / 3, 1 / 3, 1 / 3, 0.0])
    assert u.grad.dtype == np.float32


INDEX_KEYS = [
    2, -1, slice(1, 4), (1, slice(None, None, 2)), (Ellipsis, 0), (slice(None), None, 1),
    [0, 2, 2, 4], (np.array([0, 0, 3]), np.array([1, 1, 2])), np.array([True, False, True, True, False]),
    Tensor([4, 0, 4], dtype=np.int64),
]


@pytest.mark.parametrize("key", INDEX_KEYS, ids=[f"key{i}" for i in range(len(INDEX_KEYS))])
def test_indexing(key):
    assert_gradients(lambda t: t[key], leaf(rand(5, 3, seed=13)))


def test_fancy_indexing_with_repeats_accumulates():
    t = Tensor([10.0, 20.0, 30.0], requires_grad=True)
    t[[0, 0, 2, 0]].backward(np.array([1.0, 2.0, 3.0, 4.0]))
    assert t.grad.tolist() == [7.0, 0.0, 3.0]
    m = Tensor(np.zeros((3, 2)), requires_grad=True)
    m[np.array([1, 1]), np.array([0, 0])].sum().backward()
    assert m.grad.tolist() == [[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]]


def test_iteration_goes_through_indexing():
    t = leaf([[1.0, 2.0], [3.0, 4.0]])
    total = None
    for row in t:
        total = row * row if total is None else total + row * row
    total.sum().backward()
    np.testing.assert_allclose(t.grad.data, 2 * t.data)


def broadcast_pairs(count=30, seed=31):
    """Random pairs of broadcast-compatible shapes (up to 4 dims, sides 1 to 4), seeded."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        result = tuple(int(n) for n in rng.integers(2, 5, rng.integers(1, 5)))
        shapes = []
        for _ in range(2):  # drop some leading dims, set some sides to 1
            kept = result[rng.integers(0, len(result) + 1):]
            shapes.append(tuple(1 if rng.random() < 0.4 else n for n in kept))
        pairs.append(tuple(shapes))
    return pairs


@pytest.mark.parametrize("a_shape, b_shape", broadcast_pairs())
def test_unbroadcast_law_for_sums(a_shape, b_shape):
    """d sum(a + b) / d a = (elements of the broadcast result / elements of a) for every element."""
    size = int(np.prod(np.broadcast_shapes(a_shape, b_shape)))
    a, b = leaf(np.ones(a_shape)), leaf(np.ones(b_shape))
    (a + b).sum().backward()
    assert a.grad.shape == a_shape and b.grad.shape == b_shape
    np.testing.assert_array_equal(a.grad.data, np.full(a_shape, size / a.size))
    np.testing.assert_array_equal(b.grad.data, np.full(b_shape, size / b.size))


# ---------------------------------------------------------------- dtypes

def test_gradients_have_the_dtype_of_their_input():
    a = Tensor([1.0, 2.0], requires_grad=True)                      # float32
    b = Tensor([3.0, 4.0], dtype=np.float64, requires_grad=True)    # float64
    out = a * b
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    assert a.grad.tolist() == [3.0, 4.0] and b.grad.tolist() == [1.0, 2.0]
    c = Tensor([1.0, 2.0], requires_grad=True)
    (c * np.array([0.5, 2.0])).sum().backward()                     # float64 constant
    assert c.grad.dtype == np.float32 and c.grad.tolist() == [0.5, 2.0]


def test_float32_gradients_are_close_to_float64():
    x64 = rand(3, 4, seed=14)
    results = []
    for dtype in (np.float32, np.float64):
        x = Tensor(x64, dtype=dtype, requires_grad=True)
        ((x @ x.transpose()).exp().mean() + x.max()).backward()
        results.append(x.grad.data)
    assert results[0].dtype == np.float32
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- engine behaviour

def test_backward_on_scalar_defaults_to_one_and_accumulates_over_calls():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * 2 * x.data)
    x.zero_grad()
    assert x.grad is None
    y = leaf([[2.0]])
    (y * 3.0).backward()  # one element of shape (1, 1): gradient 1 implied
    assert y.grad.tolist() == [[3.0]]


def test_backward_on_a_leaf_and_with_explicit_gradient():
    x = leaf([1.0, 2.0])
    x.backward(Tensor([0.5, 0.25], dtype=np.float64))
    assert x.grad.tolist() == [0.5, 0.25]
    z = leaf([1.0, 2.0])
    (z * 2.0).backward([1.0, 1.0])
    assert z.grad.tolist() == [2.0, 2.0]


def test_only_leaves_keep_grad_and_graph_is_freed():
    x = leaf([1.0, 2.0])
    hidden = x * 2.0
    loss = (hidden * hidden).sum()
    loss.backward()
    assert hidden.grad is None and not hidden.is_leaf and x.is_leaf
    assert loss.grad_fn.freed and hidden.grad_fn.freed
    assert loss.grad_fn.ctx is None and loss.grad_fn.inputs is None


def test_deep_graph_has_no_recursion_limit():
    x = leaf([1.0])
    y = x
    for _ in range(5000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0]


def test_each_user_level_op_records_exactly_one_node():
    x, y = leaf(rand(2, 3, seed=15)), leaf(rand(3, 2, seed=16))
    z = x.matmul(y)
    assert z.grad_fn.function is MatMul and z.grad_fn.inputs == (x, y)
    r = 2.0 - x
    assert r.grad_fn.inputs == (None, x)
    for out in (x + 1.0, x.sum(axis=0), x.reshape(6), x[0], -x, x ** 2, x.exp(), x.transpose()):
        assert all(inp is None or inp is x for inp in out.grad_fn.inputs), out.grad_fn


def test_enable_autograd_is_idempotent():
    add = Tensor.__add__
    enable_autograd()
    enable_autograd()
    assert Tensor.__add__ is add
    x = leaf([1.0])
    out = x + 1.0
    assert out.grad_fn.inputs == (x, None)  # one node, its input is x itself
    assert Tensor._autograd_originals["__add__"] is not add  # module 01's method is kept


def test_module_01_behaviour_is_kept_without_grad():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    out = t @ t + 1.0
    assert out.grad_fn is None and not out.requires_grad and out.dtype == np.float32
    assert Tensor.from_numpy(np.ones(2)).grad is None and Tensor.from_numpy(np.ones(2)).grad_fn is None
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2,\)"):
        Tensor.ones(2, 3) + Tensor.ones(2)
    with pytest.raises(ValueError, match="cannot reshape"):
        t.reshape(3, 3)
    with pytest.raises(TypeError):
        t + "a"
    with pytest.raises(IndexError, match="integer or bool"):
        t[Tensor([0.0])]
    assert isinstance(np.ones((2, 2)) + t, Tensor)


# ---------------------------------------------------------------- grad mode, detach, state

def test_no_grad_records_nothing_and_restores_after_exception():
    x = leaf([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2.0).sum()
    assert is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()


def test_no_grad_as_decorator_and_nested():
    @no_grad()
    def double(t):
        assert not is_grad_enabled()
        return t * 2.0

    x = leaf([1.0])
    assert double(x).grad_fn is None and is_grad_enabled()
    guard = no_grad()
    with guard:
        with guard:  # the same object entered twice
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_detach_requires_grad_and_zero_grad():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    d = y.detach()
    assert d.grad_fn is None and not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.data, y.data)
    (d * 2.0 + y).sum().backward()  # only the y path reaches x
    assert x.grad.tolist() == [3.0, 3.0]
    w = Tensor([1.0]).requires_grad_()
    assert w.requires_grad and w.requires_grad_(False) is w and not w.requires_grad
    w.grad = Tensor([5.0])
    w.zero_grad()
    assert w.grad is None


# ---------------------------------------------------------------- errors

def test_backward_on_non_scalar_needs_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"one-element.*shape \(2,\).*gradient"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        (x * 2.0).backward(np.ones(3))


def test_int_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating-point.*int64"):
        Tensor([1, 2], dtype=np.int64, requires_grad=True)
    with pytest.raises(TypeError, match="only floating-point.*bool"):
        Tensor([True], dtype=bool).requires_grad_()
    t = Tensor([1, 2], dtype=np.int32)
    with pytest.raises(TypeError, match="int32"):
        t.requires_grad = True


def test_second_backward_through_freed_graph_raises():
    x = leaf([1.0, 2.0])
    hidden = x * x
    first, second = hidden.sum(), (hidden * 2.0).sum()
    first.backward()
    with pytest.raises(RuntimeError, match="freed.*forward pass again"):
        first.backward()
    with pytest.raises(RuntimeError, match="freed"):
        second.backward()  # shares the freed node of hidden


def test_other_errors():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2.0).requires_grad = False
    with pytest.raises(TypeError, match="exponent"):
        x ** leaf([2.0, 2.0])
    with pytest.raises(TypeError, match="save_for_backward.*Tensor"):
        Context().save_for_backward(x)
    with pytest.raises(TypeError, match=r"MatMul.apply"):
        MatMul()


def test_broken_backward_is_reported_with_the_function_name():
    class WrongCount(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad_output):
            return (grad_output,)

    class WrongShape(Function):
        @staticmethod
        def forward(ctx, a):
            return a.sum()

        @staticmethod
        def backward(ctx, grad_output):
            return np.ones(7)

    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="WrongCount.backward returned 1 gradients for 2"):
        WrongCount.apply(x, x).sum().backward()
    with pytest.raises(RuntimeError, match=r"WrongShape.backward.*\(7,\).*\(2,\)"):
        WrongShape.apply(x).backward()


# ---------------------------------------------------------------- a custom Function

def test_custom_function_single_array_return_and_settings():
    class Scale(Function):
        @staticmethod
        def forward(ctx, a, factor=1.0):
            ctx.factor = factor
            return a * factor

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * ctx.factor  # one input: a bare array is accepted

    x = leaf([1.0, 2.0])
    y = Scale.apply(x, factor=3.0)
    assert y.grad_fn.ctx.needs_input_grad == (True,)
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    assert isinstance(y.grad_fn, Node) and repr(y.grad_fn) == "<ScaleBackward (freed)>"


# ---------------------------------------------------------------- repr

def test_reprs():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "Tensor([1., 2.], shape=(2,), dtype=float32, requires_grad=True)"
    y = x * 2.0
    assert repr(y) == "Tensor([2., 4.], shape=(2,), dtype=float32, grad_fn=<MulBackward>)"
    assert repr(Tensor([1.0])) == "Tensor([1.], shape=(1,), dtype=float32)"
    assert repr(y.grad_fn) == "<MulBackward>"
    assert repr(y.grad_fn.ctx) == "Context(saved_tensors: 2 values, 8 bytes of arrays; attributes [])"
    guard = no_grad()
    assert repr(guard) == "no_grad(active=False)"
    with guard:
        assert repr(guard) == "no_grad(active=True)"
    y.sum().backward()
    assert repr(y.grad_fn) == "<MulBackward (freed)>"


# ================================================================ integration with modules 02-04

@pytest.fixture
def activations():
    return pytest.importorskip("tinytorch.core.activations",
                               reason="module 02 (activations) is not exported yet")


@pytest.fixture
def layers():
    return pytest.importorskip("tinytorch.core.layers", reason="module 03 (layers) is not exported yet")


@pytest.fixture
def losses():
    return pytest.importorskip("tinytorch.core.losses", reason="module 04 (losses) is not exported yet")


ACTIVATIONS = [("ReLU", {}), ("Sigmoid", {}), ("Tanh", {}), ("GELU", {}), ("GELU", {"approximate": "tanh"}),
               ("Softmax", {"dim": 0}), ("Softmax", {"dim": -1}), ("Softmax", {})]


@pytest.mark.parametrize("name, kwargs", ACTIVATIONS, ids=[f"{n}{k}" for n, k in ACTIVATIONS])
def test_activation_gradients(activations, name, kwargs):
    layer = getattr(activations, name)(**kwargs)
    x = leaf(rand(3, 5, seed=20) * 2.0)  # random: no element exactly at ReLU's kink
    assert_gradients(layer, x)
    out = layer(x)
    assert out.grad_fn is not None and out.dtype == np.float64
    np.testing.assert_array_equal(out.data, type(layer)._forward_without_autograd(layer, x).data)


def test_softmax_along_middle_dim_of_3d(activations):
    assert_gradients(activations.Softmax(dim=1), leaf(rand(2, 3, 4, seed=21)))


def test_activations_keep_dtype_validation_and_no_grad(activations):
    x = Tensor([-1.0, 2.0], requires_grad=True)
    out = activations.Sigmoid()(x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, out.data * (1 - out.data), rtol=1e-6)
    z = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    activations.ReLU()(z).sum().backward()  # at exactly 0 the gradient is 0 (as in PyTorch)
    assert z.grad.tolist() == [0.0, 0.0, 1.0]
    assert activations.ReLU()(Tensor([1, -2], dtype=np.int64)).grad_fn is None
    with pytest.raises(TypeError, match="ReLU expects a Tensor"):
        activations.ReLU()([1.0, 2.0])
    with no_grad():
        assert activations.Tanh()(x).grad_fn is None


def test_gelu_gradient_hand_values(activations):
    x = Tensor([0.0, 1.0], dtype=np.float64, requires_grad=True)
    activations.GELU()(x).sum().backward()
    phi1 = np.exp(-0.5) / np.sqrt(2 * np.pi)
    cdf1 = 0.8413447460685429  # Phi(1)
    np.testing.assert_allclose(x.grad.data, [0.5, cdf1 + phi1], rtol=1e-12)


def test_cross_entropy_gradient(losses):
    logits = leaf(rand(5, 4, seed=22) * 3.0)
    labels = Tensor([0, 3, 3, 1, 2], dtype=np.int64)
    loss_fn = losses.CrossEntropyLoss()
    assert_gradients(lambda z: loss_fn(z, labels), logits)
    logits.zero_grad()
    loss_fn(logits, labels).backward()
    probs = np.exp(logits.data - logits.data.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    probs[np.arange(5), labels.data] -= 1
    np.testing.assert_allclose(logits.grad.data, probs / 5, rtol=1e-12)


def test_cross_entropy_keeps_value_dtype_and_validation(losses):
    logits = Tensor(rand(3, 4, seed=23), requires_grad=True)  # float32
    loss = losses.CrossEntropyLoss()(logits, np.array([1, 0, 3]))  # ndarray labels
    assert loss.dtype == np.float32 and loss.shape == ()
    assert loss.item() == losses.CrossEntropyLoss._forward_without_autograd(
        losses.CrossEntropyLoss(), logits, np.array([1, 0, 3])).item()
    loss.backward()
    assert logits.grad.dtype == np.float32
    np.testing.assert_allclose(logits.grad.data.sum(axis=1), 0.0, atol=1e-7)
    with pytest.raises(TypeError, match="integer dtype"):
        losses.CrossEntropyLoss()(logits, Tensor([1.0, 0.0, 3.0]))
    with pytest.raises(ValueError, match="outside"):
        losses.CrossEntropyLoss()(logits, Tensor([1, 0, 9], dtype=np.int64))
    with no_grad():
        assert losses.CrossEntropyLoss()(logits, np.array([1, 0, 3])).grad_fn is None


def test_bce_gradient(losses):
    probs = leaf(rand(3, 4, seed=24, low=0.05, high=0.95))
    targets = Tensor(np.random.default_rng(25).integers(0, 2, (3, 4)), dtype=np.float64)
    loss_fn = losses.BCELoss()
    assert_gradients(lambda p: loss_fn(p, targets), probs)
    soft = Tensor([0.3, 0.8], dtype=np.float64)  # soft targets work too
    assert_gradients(lambda p: loss_fn(p, soft), leaf([0.6, 0.1]))


def test_bce_at_clipped_probabilities_and_validation(losses):
    p = Tensor([0.0, 1.0], dtype=np.float64, requires_grad=True)
    loss_fn = losses.BCELoss(eps=1e-3)
    loss_fn(p, Tensor([1.0, 0.0], dtype=np.float64)).backward()
    # evaluated at the clipped p: (p - t) / (p (1 - p)) / N
    expected = np.array([(1e-3 - 1) / (1e-3 * (1 - 1e-3)), (1 - 1e-3) / ((1 - 1e-3) * 1e-3)]) / 2
    np.testing.assert_allclose(p.grad.data, expected, rtol=1e-12)
    assert np.all(np.isfinite(p.grad.data))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        loss_fn(Tensor([1.5], requires_grad=True), Tensor([1.0]))


def test_mse_gradient(losses):
    pred, target = leaf(rand(4, 2, seed=26)), leaf(rand(4, 2, seed=27))
    assert_gradients(losses.MSELoss(), pred, target)


def test_parameters_require_grad_and_module_zero_grad(layers):
    linear = layers.Linear(3, 2, rng=0)
    assert all(p.requires_grad and p.is_leaf for p in linear.parameters())
    assert layers.Parameter([1.0]).requires_grad and not Tensor([1.0]).requires_grad
    frozen = layers.Parameter([1.0])
    frozen.requires_grad = False
    assert not frozen.requires_grad and layers.Parameter([2.0]).requires_grad
    linear(Tensor.ones(4, 3)).sum().backward()
    assert linear.weight.grad.shape == (3, 2) and linear.weight.grad.dtype == np.float32
    np.testing.assert_allclose(linear.bias.grad.data, [4.0, 4.0])
    linear.zero_grad()
    assert all(p.grad is None for p in linear.parameters())


def test_linear_gradients(layers):
    linear = layers.Linear(3, 2, rng=1)
    for p in linear.parameters():
        p.data = p.data.astype(np.float64)
    x = leaf(rand(5, 3, seed=28))
    assert_gradients(lambda inp, w, b: inp @ w + b, x, linear.weight, linear.bias)
    assert_gradients(lambda inp: linear(inp), x)


def test_dropout_gradient_is_its_mask(layers):
    dropout = layers.Dropout(p=0.5, rng=0)
    x = Tensor(np.ones((4, 5)), requires_grad=True)
    out = dropout(x)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, out.data)  # mask values: 0 or 1/(1-p)
    dropout.eval()
    x.zero_grad()
    dropout(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((4, 5)))


def test_end_to_end_mlp_with_cross_entropy(activations, layers, losses):
    model = layers.Sequential(layers.Linear(4, 6, rng=3), activations.ReLU(), layers.Linear(6, 3, rng=4))
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    inputs = Tensor(rand(8, 4, seed=29), dtype=np.float64)
    labels = Tensor(np.random.default_rng(30).integers(0, 3, 8), dtype=np.int64)
    loss_fn = losses.CrossEntropyLoss()
    model.zero_grad()
    loss_fn(model(inputs), labels).backward()

    def loss_value():
        with no_grad():
            return loss_fn(model(inputs), labels).item()

    for name, param in model.named_parameters():
        assert param.grad is not None, name
        np.testing.assert_allclose(param.grad.data, numeric_grad(loss_value, param.data),
                                   rtol=RTOL, atol=ATOL, err_msg=name)


def test_no_grad_evaluation_builds_no_graph(activations, layers, losses):
    model = layers.Sequential(layers.Linear(4, 3, rng=5), activations.Tanh())
    with no_grad():
        out = model(Tensor.ones(2, 4))
        loss = losses.MSELoss()(out, Tensor.zeros(2, 3))
    assert out.grad_fn is None and loss.grad_fn is None
