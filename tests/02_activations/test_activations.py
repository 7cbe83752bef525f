"""Tests of the exported tinytorch.core.activations (Module 02).

Oracles: scipy.special (expit, softmax, erf), np.tanh, math.erf, and values computed by hand.
"""
import contextlib
import math
import warnings

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import erf, expit
from scipy.special import softmax as softmax_oracle

from tinytorch.core.activations import GELU, Activation, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.tensor import Tensor

PROPERTY = settings(max_examples=40, deadline=None, database=None)
FLOATS = st.floats(-50, 50, width=64, allow_nan=False, allow_infinity=False)
ELEMENTWISE = [ReLU(), Sigmoid(), Tanh(), GELU(), GELU(approximate="tanh")]
ALL = [*ELEMENTWISE, Softmax(), Softmax(dim=0)]


@contextlib.contextmanager
def no_float_warnings():
    """Warnings become errors, and numpy raises on overflow, invalid and divide (underflow is fine)."""
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        yield


def f64(values):
    return Tensor(values, dtype=np.float64)


def gelu_exact(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


# ---------------------------------------------------------------- hand values

def test_relu_hand_values():
    assert ReLU()(Tensor([-1.0, 0.0, 2.0])).tolist() == [0.0, 0.0, 2.0]
    assert ReLU()(Tensor([[-3.5, 4.25], [0.5, -0.0]])).tolist() == [[0.0, 4.25], [0.5, 0.0]]


def test_sigmoid_hand_values():
    assert Sigmoid()(Tensor(0.0)).item() == 0.5
    assert Sigmoid()(f64([2.0])).item() == pytest.approx(1 / (1 + math.exp(-2)), rel=1e-15)
    assert Sigmoid()(f64([-2.0])).item() == pytest.approx(1 / (1 + math.exp(2)), rel=1e-15)


def test_tanh_hand_values():
    assert Tanh()(f64([0.0])).item() == 0.0
    assert Tanh()(f64([1.0])).item() == pytest.approx(0.7615941559557649, rel=1e-15)


def test_gelu_exact_hand_values():
    out = GELU()(f64([1.0, -1.0, 0.0])).tolist()
    assert out[0] == pytest.approx(0.8413447460685429, rel=1e-15)
    assert out[1] == pytest.approx(-0.15865525393145707, rel=1e-14)
    assert out[2] == 0.0
    # math.erf is an independent implementation of the same function
    assert out[0] == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))), rel=1e-15)


def test_gelu_tanh_hand_value():
    expected = 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (1 + 0.044715)))
    assert GELU(approximate="tanh")(f64([1.0])).item() == pytest.approx(expected, rel=1e-15)
    assert expected == pytest.approx(0.8411919906082768, rel=1e-15)


def test_softmax_hand_values():
    assert Softmax()(Tensor([1000.0, 1000.0])).tolist() == [0.5, 0.5]
    assert Softmax()(Tensor([-1000.0, 0.0])).tolist() == [0.0, 1.0]
    out = Softmax()(f64([0.0, math.log(3.0)])).tolist()
    assert out == pytest.approx([0.25, 0.75], rel=1e-15)


# ---------------------------------------------------------------- against scipy / numpy oracles

GRID = np.linspace(-12.0, 12.0, 97)


def test_relu_matches_numpy():
    np.testing.assert_array_equal(ReLU()(f64(GRID)).data, np.where(GRID > 0, GRID, 0.0))


def test_sigmoid_matches_expit():
    np.testing.assert_allclose(Sigmoid()(f64(GRID)).data, expit(GRID), rtol=1e-14)
    g32 = GRID.astype(np.float32)
    np.testing.assert_allclose(Sigmoid()(Tensor(g32)).data, expit(g32), rtol=2e-6)


def test_tanh_matches_numpy():
    np.testing.assert_allclose(Tanh()(f64(GRID)).data, np.tanh(GRID), rtol=1e-15)


def test_gelu_matches_erf_oracle():
    np.testing.assert_allclose(GELU()(f64(GRID)).data, gelu_exact(GRID), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(GELU(approximate="tanh")(f64(GRID)).data, gelu_tanh(GRID),
                               rtol=1e-12, atol=1e-300)


def test_gelu_tanh_is_close_to_exact_but_not_equal():
    exact, approx = GELU()(f64(GRID)).data, GELU("tanh")(f64(GRID)).data
    assert np.max(np.abs(exact - approx)) < 1e-3
    assert not np.array_equal(exact, approx)


@pytest.mark.parametrize("dim", [-1, 0, 1, 2, -3])
def test_softmax_matches_scipy(dim):
    scores = np.random.default_rng(0).standard_normal((3, 4, 5)) * 20
    out = Softmax(dim=dim)(f64(scores)).data
    np.testing.assert_allclose(out, softmax_oracle(scores, axis=dim), rtol=1e-12)
    np.testing.assert_allclose(out.sum(axis=dim), 1.0, rtol=1e-13)


def test_softmax_of_1d_and_shift_invariance():
    v = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(Softmax()(f64(v)).data, softmax_oracle(v), rtol=1e-15)
    np.testing.assert_allclose(Softmax()(f64(v + 500.0)).data, softmax_oracle(v), rtol=1e-13)


@PROPERTY
@given(arr=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=FLOATS))
def test_elementwise_properties(arr):
    t = f64(arr)
    np.testing.assert_array_equal(ReLU()(t).data, np.maximum(arr, 0.0))
    np.testing.assert_allclose(Sigmoid()(t).data, expit(arr), rtol=1e-13)
    np.testing.assert_allclose(Tanh()(t).data, np.tanh(arr), rtol=1e-14)
    np.testing.assert_allclose(GELU()(t).data, gelu_exact(arr), rtol=1e-12, atol=1e-300)
    # sigmoid(-x) = 1 - sigmoid(x)
    np.testing.assert_allclose(Sigmoid()(f64(-arr)).data, 1.0 - Sigmoid()(t).data, atol=1e-15)


@PROPERTY
@given(arr=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
                      elements=st.floats(-1e4, 1e4, allow_nan=False)))
def test_softmax_rows_sum_to_one(arr):
    with no_float_warnings():
        out = Softmax()(f64(arr)).data
    assert np.all(out >= 0) and np.all(out <= 1)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(out, softmax_oracle(arr, axis=-1), rtol=1e-9, atol=1e-300)


# ---------------------------------------------------------------- numerical stability

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_no_overflow_for_large_inputs(dtype):
    x = np.array([-1e4, -1000.0, -100.0, 100.0, 1000.0, 1e4], dtype=dtype)
    with no_float_warnings():
        out = Sigmoid()(Tensor(x, dtype=dtype)).data
    assert np.all(np.isfinite(out))
    assert out[0] == 0.0 and out[1] == 0.0 and out[-1] == 1.0 and out[-2] == 1.0
    np.testing.assert_allclose(out, expit(x), rtol=1e-6, atol=1e-30)  # exp(-100) is subnormal in float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_exact_for_huge_inputs(dtype):
    with no_float_warnings():
        assert Softmax()(Tensor([1000.0, 1000.0], dtype=dtype)).tolist() == [0.5, 0.5]
        assert Softmax()(Tensor([-1000.0, 0.0], dtype=dtype)).tolist() == [0.0, 1.0]
        rows = Softmax()(Tensor([[1e4, 1e4 - math.log(3.0)], [-1e4, -1e4]], dtype=dtype)).data
    np.testing.assert_allclose(rows[1], [0.5, 0.5])
    np.testing.assert_allclose(rows[0], [0.75, 0.25], rtol=1e-3 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("act", [Tanh(), GELU(), GELU("tanh"), ReLU()], ids=repr)
def test_other_activations_quiet_at_large_inputs(act):
    x = np.array([-1e4, -1000.0, 0.0, 1000.0, 1e4])
    with no_float_warnings():
        out = act(f64(x)).data
    assert np.all(np.isfinite(out))


def test_gelu_limits():
    out = GELU()(f64([-40.0, 40.0])).tolist()
    assert out[0] == pytest.approx(0.0, abs=1e-300) and out[1] == 40.0


# ---------------------------------------------------------------- dtype and shape

@pytest.mark.parametrize("act", ALL, ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_preserved(act, dtype):
    x = Tensor(np.random.default_rng(1).standard_normal((2, 3, 4)), dtype=dtype)
    out = act(x)
    assert isinstance(out, Tensor)
    assert out.dtype == np.dtype(dtype) and out.shape == (2, 3, 4)


@pytest.mark.parametrize("act", ALL, ids=repr)
def test_integer_input_computes_in_float32(act):
    out = act(Tensor([[-2, 0, 3]], dtype=np.int64))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, act(Tensor([[-2.0, 0.0, 3.0]])).data)


@pytest.mark.parametrize("act", ELEMENTWISE, ids=repr)
def test_zero_d_input(act):
    out = act(f64(0.5))
    assert out.shape == () and out.dtype == np.float64


def test_input_is_not_modified():
    src = np.array([-1.0, 2.0, -3.0], dtype=np.float32)
    t = Tensor.from_numpy(src)
    for act in ALL:
        act(t)
    np.testing.assert_array_equal(src, [-1.0, 2.0, -3.0])


def test_nan_propagates():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for act in ELEMENTWISE:
            assert np.isnan(act(f64([np.nan])).item())


# ---------------------------------------------------------------- API: call, forward, repr, errors

@pytest.mark.parametrize("act", ALL, ids=repr)
def test_call_delegates_to_forward(act):
    x = Tensor([[0.5, -1.5, 2.0]])
    np.testing.assert_array_equal(act(x).data, act.forward(x).data)
    assert isinstance(act, Activation)


def test_call_uses_replaced_forward():
    """Module 06 replaces forward on the class; __call__ must pick the replacement up."""

    class Doubling(ReLU):
        def forward(self, x):
            return Tensor.from_numpy(x.data * 2)

    assert Doubling()(Tensor([1.0, -1.0])).tolist() == [2.0, -2.0]


@pytest.mark.parametrize("act, text", [
    (ReLU(), "ReLU()"), (Sigmoid(), "Sigmoid()"), (Tanh(), "Tanh()"),
    (GELU(), "GELU(approximate='none')"), (GELU(approximate="tanh"), "GELU(approximate='tanh')"),
    (Softmax(), "Softmax(dim=-1)"), (Softmax(dim=0), "Softmax(dim=0)"),
])
def test_repr(act, text):
    assert repr(act) == text


@pytest.mark.parametrize("act", ALL, ids=repr)
@pytest.mark.parametrize("bad", [np.array([1.0, 2.0]), [1.0, 2.0], 3.0, None])
def test_non_tensor_input_raises_type_error(act, bad):
    with pytest.raises(TypeError, match=r"expects a Tensor.*Tensor\(\.\.\.\)"):
        act(bad)


def test_type_error_names_the_activation_and_type():
    with pytest.raises(TypeError, match="Sigmoid expects a Tensor, got ndarray"):
        Sigmoid()(np.zeros(3))


@pytest.mark.parametrize("bad", ["fast", "Tanh", None, "exact"])
def test_gelu_rejects_unknown_approximation(bad):
    with pytest.raises(ValueError, match=r"'none'.*'tanh'"):
        GELU(approximate=bad)


@pytest.mark.parametrize("dim, shape", [(2, (2, 3)), (-3, (2, 3)), (1, (4,)), (0, ()), (-1, ())])
def test_softmax_dim_out_of_range(dim, shape):
    with pytest.raises(ValueError, match=rf"Softmax dim {dim} .* {len(shape)} dims"):
        Softmax(dim=dim)(Tensor(np.zeros(shape)))


@pytest.mark.parametrize("bad", [1.0, "1", None, True])
def test_softmax_dim_must_be_int(bad):
    with pytest.raises(TypeError, match="dim must be an int"):
        Softmax(dim=bad)


def test_softmax_accepts_numpy_int_dim():
    assert Softmax(dim=np.int64(0)).dim == 0
