"""Tests of the exported tinytorch.core.tensor.Tensor (Module 01).

The oracle is numpy itself, plus a few values computed by hand.
"""
import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.tensor import Tensor

PROPERTY = settings(max_examples=40, deadline=None, database=None)
SMALL_FLOATS = st.floats(-1e3, 1e3, width=32, allow_nan=False, allow_infinity=False)


def grid(rows=2, cols=3):
    """float32 array [[0, 1, 2], [3, 4, 5]] (for the default size)."""
    return np.arange(rows * cols, dtype=np.float32).reshape(rows, cols)


# ---------------------------------------------------------------- creation and dtype

@pytest.mark.parametrize("data, shape", [
    (3, ()),
    (2.5, ()),
    ([1, 2, 3], (3,)),
    ((1, 2), (2,)),
    ([[1, 2], [3, 4], [5, 6]], (3, 2)),
    (np.arange(24).reshape(2, 3, 4), (2, 3, 4)),
    ([], (0,)),
])
def test_default_dtype_is_float32(data, shape):
    t = Tensor(data)
    assert t.dtype == np.float32
    assert t.shape == shape
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float32))


def test_float64_array_becomes_float32_by_default():
    t = Tensor(np.array([0.1, 0.2], dtype=np.float64))
    assert t.dtype == np.float32
    assert t.data[0] == np.float32(0.1)


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.float64, np.uint8, bool])
def test_explicit_dtype_is_honoured(dtype):
    t = Tensor([0, 1, 2], dtype=dtype)
    assert t.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(t.data, np.array([0, 1, 2], dtype=dtype))


def test_tensor_of_tensor_copies_and_uses_default_dtype():
    src = Tensor([1, 2, 3], dtype=np.int64)
    t = Tensor(src)
    assert t.dtype == np.float32 and t.tolist() == [1.0, 2.0, 3.0]
    src.data[0] = 50
    assert t.data[0] == 1.0
    assert Tensor(src, dtype=np.int64).dtype == np.int64


def test_constructor_copies_ndarray():
    src = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    t = Tensor(src)
    src[0] = 100.0
    assert t.data[0] == 1.0
    assert not np.shares_memory(t.data, src)


def test_constructor_copies_nested_list_values():
    src = [[1.0, 2.0]]
    t = Tensor(src)
    src[0][0] = 9.0
    assert t.tolist() == [[1.0, 2.0]]


def test_from_numpy_shares_memory_and_keeps_dtype():
    src = np.array([1, 2, 3], dtype=np.int64)
    t = Tensor.from_numpy(src)
    assert t.dtype == np.int64
    assert t.data is src
    src[1] = -5
    assert t.tolist() == [1, -5, 3]


def test_from_numpy_keeps_float64():
    src = np.zeros((2, 2))
    assert Tensor.from_numpy(src).dtype == np.float64


@pytest.mark.parametrize("bad", [[1.0, 2.0], 3.0, "tensor"])
def test_from_numpy_rejects_non_ndarray(bad):
    with pytest.raises(TypeError, match="ndarray"):
        Tensor.from_numpy(bad)
    with pytest.raises(TypeError, match="ndarray"):
        Tensor.from_numpy(Tensor([1.0]))


def test_from_numpy_rejects_string_array():
    with pytest.raises(TypeError, match="numeric"):
        Tensor.from_numpy(np.array(["a", "b"]))


@pytest.mark.parametrize("bad", ["abc", ["a", "b"], [1, None], None, {"a": 1}, object(), [1, "2"]])
def test_non_numeric_data_raises_type_error(bad):
    with pytest.raises(TypeError, match="numeric"):
        Tensor(bad)


def test_type_error_names_what_was_received():
    with pytest.raises(TypeError, match=r"got str .*<U3"):
        Tensor("abc")


@pytest.mark.parametrize("bad", [[[1, 2], [3]], [1, [2, 3]], [[1.0], [2.0, 3.0], [4.0]]])
def test_ragged_data_raises_value_error(bad):
    with pytest.raises(ValueError, match="rectangular"):
        Tensor(bad)


@pytest.mark.parametrize("dtype", [str, object, np.complex64])
def test_non_numeric_dtype_raises(dtype):
    with pytest.raises(TypeError, match="dtype must be numeric"):
        Tensor([1, 2], dtype=dtype)


def test_list_of_tensors_is_stacked():
    assert Tensor([Tensor(1.0), Tensor(2.0)]).tolist() == [1.0, 2.0]
    assert Tensor([Tensor([1, 2]), Tensor([3, 4])]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    ints = Tensor([Tensor(1, dtype=np.int64), Tensor(2, dtype=np.int64)], dtype=np.int64)
    assert ints.tolist() == [1, 2]


# ---------------------------------------------------------------- properties and helpers

def test_properties():
    t = Tensor(np.zeros((2, 3, 4)))
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tuple)
    assert t.dtype == np.dtype(np.float32) and isinstance(t.dtype, np.dtype)
    assert t.size == 24 and type(t.size) is int
    assert t.ndim == 3 and type(t.ndim) is int


def test_scalar_properties():
    t = Tensor(7)
    assert t.shape == () and t.size == 1 and t.ndim == 0


def test_numpy_returns_the_underlying_array():
    t = Tensor([1.0, 2.0])
    arr = t.numpy()
    assert arr is t.data
    arr[0] = 5.0
    assert t.tolist() == [5.0, 2.0]


@pytest.mark.parametrize("data, expected", [(3.5, 3.5), ([[2]], 2.0), ([[[-1.25]]], -1.25)])
def test_item_returns_python_float(data, expected):
    value = Tensor(data).item()
    assert value == expected and type(value) is float


def test_item_of_int_tensor_returns_python_int():
    value = Tensor([4], dtype=np.int64).item()
    assert value == 4 and type(value) is int


@pytest.mark.parametrize("data", [[1.0, 2.0], [], [[1.0, 2.0], [3.0, 4.0]]])
def test_item_needs_exactly_one_element(data):
    with pytest.raises(ValueError, match="exactly one element"):
        Tensor(data).item()


def test_tolist():
    assert Tensor([[1, 2], [3, 4]]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert Tensor(2).tolist() == 2.0


def test_len_is_first_dimension():
    assert len(Tensor(np.zeros((5, 2)))) == 5
    assert len(Tensor([])) == 0


def test_len_of_0d_raises_type_error():
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))


def test_iteration_over_first_dimension():
    rows = list(Tensor([[1, 2], [3, 4]]))
    assert len(rows) == 2 and all(isinstance(r, Tensor) for r in rows)
    assert rows[1].tolist() == [3.0, 4.0]
    with pytest.raises(TypeError, match="0-d"):
        iter(Tensor(1.0))


def test_truth_value():
    assert bool(Tensor(1.0)) is True
    assert bool(Tensor([0.0])) is False
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]))


def test_float_and_int_of_one_element_tensor():
    assert float(Tensor([[2.5]])) == 2.5 and type(float(Tensor(2.5))) is float
    assert int(Tensor(2.7)) == 2 and int(Tensor(-2.7)) == -2
    with pytest.raises(ValueError, match="exactly one element"):
        float(Tensor([1.0, 2.0]))


def test_np_asarray_reads_tensor():
    t = Tensor([1.0, 2.0])
    np.testing.assert_array_equal(np.asarray(t), [1.0, 2.0])
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


# ---------------------------------------------------------------- repr

def test_repr_small_matrix_exact():
    assert repr(Tensor([[1.0, 2.0], [3.0, 4.0]])) == (
        "Tensor([[1., 2.], [3., 4.]], shape=(2, 2), dtype=float32)")


def test_repr_scalar_and_int_dtype():
    assert repr(Tensor(3)) == "Tensor(3., shape=(), dtype=float32)"
    assert repr(Tensor([1, 2], dtype=np.int64)) == "Tensor([1, 2], shape=(2,), dtype=int64)"


def test_repr_large_tensor_is_summarised():
    text = repr(Tensor(np.arange(100_000).reshape(100, 1000)))
    assert "..." in text
    assert "shape=(100, 1000)" in text and "dtype=float32" in text
    assert len(text) < 1000


# ---------------------------------------------------------------- constructors

@pytest.mark.parametrize("factory, value", [(Tensor.zeros, 0.0), (Tensor.ones, 1.0)])
def test_zeros_ones_shape_forms(factory, value):
    a, b = factory(2, 3), factory((2, 3))
    for t in (a, b):
        assert t.shape == (2, 3) and t.dtype == np.float32
        np.testing.assert_array_equal(t.data, np.full((2, 3), value, dtype=np.float32))
    assert factory([4]).shape == (4,)
    assert factory().shape == ()
    assert factory(0, 3).shape == (0, 3)


@pytest.mark.parametrize("factory", [Tensor.zeros, Tensor.ones])
def test_zeros_ones_dtype(factory):
    t = factory(3, dtype=np.int64)
    assert t.dtype == np.int64
    assert factory(2, dtype=np.int8).data.nbytes == 2


@pytest.mark.parametrize("factory", [Tensor.zeros, Tensor.ones, Tensor.randn])
def test_negative_dims_raise(factory):
    with pytest.raises(ValueError, match=r">= 0.*\(2, -1\)"):
        factory(2, -1)
    assert factory(0, 2).shape == (0, 2)


@pytest.mark.parametrize("factory", [Tensor.zeros, Tensor.randn])
def test_non_integer_dims_raise(factory):
    with pytest.raises(TypeError, match="integers"):
        factory(2.5, 3)
    assert factory(np.int64(2), 3).shape == (2, 3)


def test_randn_seed_matches_numpy_generator():
    t = Tensor.randn(3, 4, rng=42)
    expected = np.random.default_rng(42).standard_normal((3, 4), dtype=np.float32)
    assert t.dtype == np.float32 and t.shape == (3, 4)
    np.testing.assert_array_equal(t.data, expected)
    np.testing.assert_array_equal(Tensor.randn((3, 4), rng=42).data, expected)


def test_randn_with_generator_advances_it():
    gen = np.random.default_rng(7)
    first, second = Tensor.randn(5, rng=gen), Tensor.randn(5, rng=gen)
    ref = np.random.default_rng(7)
    np.testing.assert_array_equal(first.data, ref.standard_normal(5, dtype=np.float32))
    np.testing.assert_array_equal(second.data, ref.standard_normal(5, dtype=np.float32))


def test_randn_without_rng_is_standard_normal():
    t = Tensor.randn(20_000)
    assert t.dtype == np.float32
    assert abs(t.data.mean()) < 0.05 and abs(t.data.std() - 1.0) < 0.05


# ---------------------------------------------------------------- element-wise arithmetic

OPS = [
    (lambda a, b: a + b),
    (lambda a, b: a - b),
    (lambda a, b: a * b),
    (lambda a, b: a / b),
]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape_a, shape_b", [
    ((2, 3), (2, 3)), ((2, 3), (3,)), ((3, 1), (1, 4)), ((2, 1, 3), (4, 1)), ((), (2, 2)),
])
def test_binary_ops_broadcast_like_numpy(op, shape_a, shape_b):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape_a).astype(np.float32)
    b = rng.standard_normal(shape_b).astype(np.float32) + 5.0
    result = op(Tensor(a), Tensor(b))
    assert isinstance(result, Tensor)
    assert result.shape == np.broadcast_shapes(shape_a, shape_b)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result.data, op(a, b))


def test_arithmetic_hand_computed():
    a, b = Tensor([1.0, 2.0, 4.0]), Tensor([4.0, 5.0, 8.0])
    assert (a + b).tolist() == [5.0, 7.0, 12.0]
    assert (a - b).tolist() == [-3.0, -3.0, -4.0]
    assert (a * b).tolist() == [4.0, 10.0, 32.0]
    assert (a / b).tolist() == [0.25, 0.4000000059604645, 0.5]
    assert (a ** 2).tolist() == [1.0, 4.0, 16.0]
    assert (-a).tolist() == [-1.0, -2.0, -4.0]


def test_reflected_ops_with_python_scalars():
    t = Tensor([1.0, 2.0, 4.0])
    assert (2 + t).tolist() == [3.0, 4.0, 6.0]
    assert (2 - t).tolist() == [1.0, 0.0, -2.0]
    assert (2 * t).tolist() == [2.0, 4.0, 8.0]
    assert (1 / t).tolist() == [1.0, 0.5, 0.25]
    for result in (2 + t, 2 - t, 2 * t, 1 / t):
        assert isinstance(result, Tensor) and result.dtype == np.float32


@pytest.mark.parametrize("op", OPS)
def test_ndarray_on_the_left_returns_tensor(op):
    arr = np.array([[1.0], [2.0]])  # float64
    t = Tensor([1.0, 2.0, 4.0])
    result = op(arr, t)
    assert isinstance(result, Tensor)
    assert result.dtype == np.float64 and result.shape == (2, 3)
    np.testing.assert_array_equal(result.data, op(arr, t.data))


def test_numpy_scalar_on_the_left_returns_tensor():
    result = np.float32(3.0) - Tensor([1.0, 2.0])
    assert isinstance(result, Tensor) and result.tolist() == [2.0, 1.0]


def test_ufunc_call_on_tensor_is_refused():
    with pytest.raises(TypeError):
        np.add(np.ones(2), Tensor([1.0, 2.0]))


def test_nep50_python_float_keeps_float32():
    t = Tensor([1.0, 2.0])
    assert (t + 0.1).dtype == np.float32
    assert (t * 3).dtype == np.float32
    assert (0.5 / t).dtype == np.float32


def test_dtype_promotion_follows_numpy():
    f32 = Tensor([1.0, 2.0])
    i64 = Tensor([1, 2], dtype=np.int64)
    assert (f32 + np.array([1.0, 2.0])).dtype == np.float64
    assert (f32 + np.float64(1.0)).dtype == np.float64
    assert (i64 + 1).dtype == np.int64
    assert (i64 / 2).dtype == np.float64 and (i64 / 2).tolist() == [0.5, 1.0]
    assert (i64 + f32).dtype == np.float64
    i8 = Tensor([1, 2], dtype=np.int8)
    assert (i8 * 3).dtype == np.int8


def test_pow():
    t = Tensor([1.0, 2.0, 3.0])
    assert (t ** 2).tolist() == [1.0, 4.0, 9.0]
    assert (t ** 0.5).dtype == np.float32
    np.testing.assert_allclose((t ** 0.5).data, np.sqrt([1.0, 2.0, 3.0]), rtol=1e-6)
    np.testing.assert_array_equal((t ** Tensor([2.0, 1.0, 0.0])).data, [1.0, 2.0, 1.0])


def test_ops_return_new_tensors_and_leave_inputs_alone():
    a, b = Tensor([1.0, 2.0]), Tensor([3.0, 4.0])
    result = a + b
    assert result is not a and result is not b
    assert not np.shares_memory(result.data, a.data)
    assert a.tolist() == [1.0, 2.0] and b.tolist() == [3.0, 4.0]


def test_ops_on_0d_tensors_give_0d_tensors():
    result = Tensor(2.0) * Tensor(3.0)
    assert isinstance(result, Tensor) and result.shape == () and result.item() == 6.0
    assert isinstance(result.data, np.ndarray)
    assert (-Tensor(2.0)).shape == () and isinstance((-Tensor(2.0)).data, np.ndarray)


@pytest.mark.parametrize("op", OPS)
def test_incompatible_shapes_raise_value_error(op):
    with pytest.raises(ValueError, match=r"cannot broadcast shapes \(2, 3\) and \(4,\).*equal or one of them 1"):
        op(Tensor.ones(2, 3), Tensor.ones(4))


def test_incompatible_shapes_with_ndarray_on_the_left():
    with pytest.raises(ValueError, match=r"\(4,\) and \(2, 3\)"):
        np.ones(4) + Tensor.ones(2, 3)


def test_unsupported_operand_raises_type_error():
    with pytest.raises(TypeError, match="unsupported operand"):
        Tensor([1.0, 2.0]) + [1.0, 2.0]
    with pytest.raises(TypeError, match="unsupported operand"):
        None - Tensor([1.0])


# ---------------------------------------------------------------- matmul

@pytest.mark.parametrize("shape_a, shape_b", [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((5, 1, 2, 3), (4, 3, 2)),
])
def test_matmul_matches_numpy(shape_a, shape_b):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(shape_a).astype(np.float32)
    b = rng.standard_normal(shape_b).astype(np.float32)
    expected = np.matmul(a, b)
    for result in (Tensor(a) @ Tensor(b), Tensor(a).matmul(Tensor(b))):
        assert isinstance(result, Tensor)
        assert result.shape == expected.shape and result.dtype == np.float32
        np.testing.assert_allclose(result.data, expected, rtol=1e-5, atol=1e-6)


def test_matmul_hand_computed():
    a = Tensor([[1.0, 2.0], [3.0, 4.0]])
    b = Tensor([[5.0, 6.0], [7.0, 8.0]])
    assert (a @ b).tolist() == [[19.0, 22.0], [43.0, 50.0]]
    v = Tensor([1.0, 1.0])
    assert (v @ v).shape == () and (v @ v).item() == 2.0


def test_matmul_with_ndarray_on_either_side():
    a = np.array([[1.0, 2.0]])
    t = Tensor([[3.0], [4.0]])
    left, right = a @ t, t @ a
    assert isinstance(left, Tensor) and isinstance(right, Tensor)
    assert left.tolist() == [[11.0]]
    assert right.tolist() == [[3.0, 6.0], [4.0, 8.0]]
    assert left.dtype == np.float64


def test_matmul_inner_mismatch_message():
    with pytest.raises(ValueError, match=r"matmul shape mismatch: \(2, 3\) @ \(4, 5\): inner dimensions 3 and 4 must match"):
        Tensor.ones(2, 3) @ Tensor.ones(4, 5)


@pytest.mark.parametrize("shape_a, shape_b, inner", [((3,), (4,), "3 and 4"), ((2, 3), (2,), "3 and 2"),
                                                      ((4,), (3, 2), "4 and 3")])
def test_matmul_vector_mismatch(shape_a, shape_b, inner):
    with pytest.raises(ValueError, match=f"inner dimensions {inner}"):
        Tensor.ones(shape_a).matmul(Tensor.ones(shape_b))


def test_matmul_batch_mismatch():
    with pytest.raises(ValueError, match=r"batch dimensions.*\(2,\) and \(3,\)"):
        Tensor.ones(2, 2, 3) @ Tensor.ones(3, 3, 4)


@pytest.mark.parametrize("left, right", [((), (3,)), ((3,), ()), ((2, 3), ())])
def test_matmul_rejects_0d(left, right):
    with pytest.raises(ValueError, match="at least 1 dimension"):
        Tensor.ones(left) @ Tensor.ones(right)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        Tensor.ones(3) @ 2.0


# ---------------------------------------------------------------- reshape and transpose

@pytest.mark.parametrize("args, shape", [
    ((3, 2), (3, 2)), (((3, 2),), (3, 2)), (([6],), (6,)), ((-1,), (6,)), ((2, -1), (2, 3)),
    ((-1, 1, 2), (3, 1, 2)), ((1, 6), (1, 6)),
])
def test_reshape_matches_numpy(args, shape):
    base = grid()
    result = Tensor(base).reshape(*args)
    assert result.shape == shape
    np.testing.assert_array_equal(result.data, base.reshape(shape))


def test_reshape_to_and_from_0d():
    assert Tensor([5.0]).reshape(()).shape == ()
    assert Tensor(5.0).reshape(1, 1).tolist() == [[5.0]]
    assert Tensor(5.0).reshape(-1).tolist() == [5.0]


def test_reshape_shares_memory():
    t = Tensor(grid())
    assert np.shares_memory(t.reshape(-1).data, t.data)


def test_reshape_wrong_size_names_element_counts():
    with pytest.raises(ValueError, match=r"6 elements into shape \(4,\) \(4 elements\)"):
        Tensor(grid()).reshape(4)


def test_reshape_minus_one_not_divisible():
    with pytest.raises(ValueError, match=r"6 elements into shape \(4, -1\).*4 elements"):
        Tensor(grid()).reshape(4, -1)


@pytest.mark.parametrize("shape", [(-1, -1), (2, -2), (-3,)])
def test_reshape_invalid_shape(shape):
    with pytest.raises(ValueError, match="at most one -1"):
        Tensor(grid()).reshape(shape)


def test_reshape_minus_one_with_zero_dims():
    with pytest.raises(ValueError, match="-1"):
        Tensor.zeros(0, 3).reshape(0, -1)


def test_transpose_default_swaps_last_two():
    base = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    result = Tensor(base).transpose()
    assert result.shape == (2, 4, 3)
    np.testing.assert_array_equal(result.data, np.swapaxes(base, -2, -1))
    assert Tensor(grid()).transpose().tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]


@pytest.mark.parametrize("dim0, dim1", [(0, 2), (2, 0), (0, 1), (-3, -1), (1, 1)])
def test_transpose_explicit(dim0, dim1):
    base = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(Tensor(base).transpose(dim0, dim1).data, np.swapaxes(base, dim0, dim1))


def test_transpose_shares_memory():
    t = Tensor(grid())
    assert np.shares_memory(t.transpose().data, t.data)


@pytest.mark.parametrize("data", [[1.0, 2.0], 3.0])
def test_transpose_needs_two_dims(data):
    with pytest.raises(ValueError, match="at least 2 dims"):
        Tensor(data).transpose()


@pytest.mark.parametrize("dims", [(0, 2), (-3, 1), (5, 0)])
def test_transpose_out_of_range(dims):
    with pytest.raises(ValueError, match=r"out of range for a tensor with 2 dims \(valid: -2..1\)"):
        Tensor(grid()).transpose(*dims)


# ---------------------------------------------------------------- reductions

REDUCTIONS = ["sum", "mean", "max", "min"]
AXES = [None, 0, 1, 2, -1, (0, 2), (0, 1, 2), (-1, 0)]


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_match_numpy(name, axis, keepdims):
    base = np.random.default_rng(2).standard_normal((3, 4, 5)).astype(np.float32)
    result = getattr(Tensor(base), name)(axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(base, axis=axis, keepdims=keepdims)
    assert isinstance(result, Tensor) and isinstance(result.data, np.ndarray)
    assert result.shape == np.shape(expected) and result.dtype == np.float32
    np.testing.assert_allclose(result.data, expected, rtol=1e-5, atol=1e-6)


def test_reductions_hand_computed():
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t.sum().item() == 21.0 and t.sum().shape == ()
    assert t.sum(axis=0).tolist() == [5.0, 7.0, 9.0]
    assert t.mean(axis=1).tolist() == [2.0, 5.0]
    assert t.max(axis=0).tolist() == [4.0, 5.0, 6.0]
    assert t.min(axis=1, keepdims=True).tolist() == [[1.0], [4.0]]
    assert t.mean().item() == 3.5


def test_reductions_on_int_tensor_follow_numpy_dtypes():
    t = Tensor([[1, 2], [3, 4]], dtype=np.int64)
    assert t.sum().dtype == np.int64 and t.sum().item() == 10
    assert t.mean().dtype == np.float64 and t.mean().item() == 2.5
    assert t.max().dtype == np.int64 and t.max().item() == 4


def test_axis_as_list_is_accepted():
    base = grid()
    np.testing.assert_array_equal(Tensor(base).sum(axis=[0, 1]).data, base.sum(axis=(0, 1)))


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", [2, -3, (0, 5)])
def test_bad_axis_names_axis_and_ndim(name, axis):
    with pytest.raises(ValueError, match=r"axis -?\d+ is out of range for a tensor with 2 dims"):
        getattr(Tensor(grid()), name)(axis=axis)


def test_axis_on_0d_tensor():
    with pytest.raises(ValueError, match="0 dims"):
        Tensor(1.0).sum(axis=0)
    assert Tensor(1.0).sum().item() == 1.0


def test_repeated_axis_raises():
    with pytest.raises(ValueError, match="twice"):
        Tensor(grid()).sum(axis=(0, -2))


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_of_empty_raise(name):
    with pytest.raises(ValueError, match=f"{name} of an empty tensor"):
        getattr(Tensor([]), name)()
    with pytest.raises(ValueError, match="empty"):
        getattr(Tensor.zeros(0, 3), name)(axis=0)


def test_max_along_nonempty_axis_of_empty_tensor_is_fine():
    result = Tensor.zeros(0, 3).max(axis=1)
    assert result.shape == (0,)


def test_sum_of_empty_is_zero():
    assert Tensor([]).sum().item() == 0.0


# ---------------------------------------------------------------- indexing

def test_int_and_slice_indexing():
    base = np.arange(20, dtype=np.float32).reshape(4, 5)
    t = Tensor(base)
    for key in (1, -1, slice(1, 3), (slice(None), 2), (2, 3), (slice(None, None, 2), slice(1, None)),
                Ellipsis, (Ellipsis, 0), (None, 1)):
        result = t[key]
        assert isinstance(result, Tensor) and isinstance(result.data, np.ndarray)
        np.testing.assert_array_equal(result.data, base[key])


def test_scalar_index_gives_0d_tensor():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    element = t[1, 0]
    assert isinstance(element, Tensor) and element.shape == () and element.item() == 3.0


def test_bool_and_int_array_indexing():
    base = np.arange(10, dtype=np.float32)
    t = Tensor(base)
    np.testing.assert_array_equal(t[base > 6].data, [7.0, 8.0, 9.0])
    np.testing.assert_array_equal(t[np.array([3, 1, 3])].data, [3.0, 1.0, 3.0])
    np.testing.assert_array_equal(t[[0, -1]].data, [0.0, 9.0])


def test_tensor_as_index():
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = Tensor(base)
    rows = Tensor([2, 0], dtype=np.int64)
    np.testing.assert_array_equal(t[rows].data, base[[2, 0]])
    np.testing.assert_array_equal(t[rows, Tensor([1, 3], dtype=np.int64)].data, [9.0, 3.0])
    mask = Tensor([True, False, True], dtype=bool)
    np.testing.assert_array_equal(t[mask].data, base[[0, 2]])


def test_float_tensor_index_raises():
    with pytest.raises(IndexError, match="integer or bool dtype, got float32"):
        Tensor([1.0, 2.0])[Tensor([0.0])]


def test_out_of_bounds_index_raises():
    with pytest.raises(IndexError):
        Tensor([1.0, 2.0])[5]


def test_no_item_assignment():
    t = Tensor([1.0, 2.0])
    with pytest.raises(TypeError):
        t[0] = 5.0


# ---------------------------------------------------------------- properties (hypothesis)

@PROPERTY
@given(data=st.data())
def test_broadcast_add_mul_match_numpy(data):
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4))
    a = data.draw(hnp.arrays(np.float32, shapes.input_shapes[0], elements=SMALL_FLOATS))
    b = data.draw(hnp.arrays(np.float32, shapes.input_shapes[1], elements=SMALL_FLOATS))
    added, multiplied = Tensor(a) + Tensor(b), Tensor(a) * Tensor(b)
    assert added.shape == multiplied.shape == shapes.result_shape
    np.testing.assert_array_equal(added.data, a + b)
    np.testing.assert_array_equal(multiplied.data, a * b)


@PROPERTY
@given(arr=hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5), elements=SMALL_FLOATS))
def test_reshape_round_trip_preserves_data(arr):
    t = Tensor(arr)
    flat = t.reshape(-1)
    assert flat.shape == (arr.size,)
    np.testing.assert_array_equal(flat.data, arr.ravel())
    np.testing.assert_array_equal(flat.reshape(arr.shape).data, arr)


@PROPERTY
@given(arr=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5), elements=SMALL_FLOATS))
def test_sum_over_all_axes_matches_numpy(arr):
    t = Tensor(arr)
    exact = float(np.sum(arr, dtype=np.float64))
    tolerance = 1e-5 * float(np.abs(arr).sum()) + 1e-6
    assert abs(t.sum().item() - exact) <= tolerance
    assert abs(t.sum(axis=tuple(range(arr.ndim))).item() - exact) <= tolerance


@PROPERTY
@given(arr=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=4, max_side=5), elements=SMALL_FLOATS))
def test_transpose_twice_is_identity(arr):
    np.testing.assert_array_equal(Tensor(arr).transpose().transpose().data, arr)
