"""Tests of the exported tinytorch.core.losses (Module 04).

Oracles: scipy.special (log_softmax, logsumexp), plain numpy formulas written out here, and
values computed by hand.
"""
import contextlib
import math
import warnings

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax as log_softmax_oracle
from scipy.special import logsumexp

from tinytorch.core.losses import BCELoss, CrossEntropyLoss, Loss, MSELoss, log_softmax
from tinytorch.core.tensor import Tensor

PROPERTY = settings(max_examples=40, deadline=None, database=None)


@contextlib.contextmanager
def no_float_warnings():
    """Warnings become errors, and numpy raises on overflow, invalid and divide (underflow is fine)."""
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        yield


def f64(values):
    return Tensor(values, dtype=np.float64)


def labels(values):
    return Tensor(values, dtype=np.int64)


def ce_oracle(logits, targets):
    """Cross-entropy from logsumexp: mean(logsumexp(z_i) - z_i[label_i])."""
    logits = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(targets))
    return float(np.mean(logsumexp(logits, axis=1) - logits[rows, targets]))


def bce_oracle(p, t):
    p, t = np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64)
    return float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))


# ---------------------------------------------------------------- log_softmax

@pytest.mark.parametrize("dim", [-1, 0, 1, 2, -3])
def test_log_softmax_matches_scipy(dim):
    x = np.random.default_rng(0).standard_normal((3, 4, 5)) * 40
    np.testing.assert_allclose(log_softmax(f64(x), dim=dim).data, log_softmax_oracle(x, axis=dim),
                               rtol=1e-12, atol=1e-12)


def test_log_softmax_is_x_minus_logsumexp():
    x = np.random.default_rng(1).standard_normal((6, 7)) * 10
    np.testing.assert_allclose(log_softmax(f64(x)).data, x - logsumexp(x, axis=-1, keepdims=True),
                               rtol=1e-13, atol=1e-13)


def test_log_softmax_hand_values():
    out = log_softmax(f64([[1000.0, 1000.0], [0.0, math.log(3.0)]])).data
    np.testing.assert_allclose(out[0], [math.log(0.5)] * 2, rtol=1e-15)
    np.testing.assert_allclose(out[1], [math.log(0.25), math.log(0.75)], rtol=1e-14)
    assert log_softmax(f64([2.0, 1.0, 0.0])).data[0] == pytest.approx(-0.4076059644443804, rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_stable_and_dtype(dtype):
    x = Tensor([[1e4, 1e4 - 1.0, -1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    with no_float_warnings():
        out = log_softmax(x)
    assert out.dtype == np.dtype(dtype) and out.shape == (2, 3)
    assert np.all(np.isfinite(out.data))
    np.testing.assert_allclose(out.data[0, :2], [-math.log1p(math.exp(-1)), -1 - math.log1p(math.exp(-1))],
                               rtol=1e-6)
    np.testing.assert_allclose(out.data[1], [-math.log(3.0)] * 3, rtol=1e-6)


def test_log_softmax_of_integer_tensor_is_float32():
    out = log_softmax(Tensor([[1, 2, 3]], dtype=np.int64))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, log_softmax_oracle(np.array([[1.0, 2.0, 3.0]]), axis=-1), rtol=1e-6)


@PROPERTY
@given(arr=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
                      elements=st.floats(-1e4, 1e4, allow_nan=False)))
def test_log_softmax_property(arr):
    with no_float_warnings():
        out = log_softmax(f64(arr)).data
    assert np.all(out <= 1e-12)
    np.testing.assert_allclose(logsumexp(out, axis=-1), 0.0, atol=1e-9)
    np.testing.assert_allclose(out, log_softmax_oracle(arr, axis=-1), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("bad", [np.zeros(3), [1.0, 2.0], 3.0])
def test_log_softmax_needs_tensor(bad):
    with pytest.raises(TypeError, match=r"log_softmax expects a Tensor.*Tensor\(\.\.\.\)"):
        log_softmax(bad)


@pytest.mark.parametrize("dim, shape", [(2, (2, 3)), (-3, (2, 3)), (0, ())])
def test_log_softmax_dim_out_of_range(dim, shape):
    with pytest.raises(ValueError, match=rf"dim {dim} .* {len(shape)} dims"):
        log_softmax(Tensor(np.zeros(shape)), dim=dim)


# ---------------------------------------------------------------- MSELoss

def test_mse_hand_value():
    assert MSELoss()(f64([1.0, 2.0, 3.0]), f64([1.0, 2.0, 5.0])).item() == pytest.approx(4 / 3, rel=1e-15)


def test_mse_matches_numpy():
    rng = np.random.default_rng(2)
    p, t = rng.standard_normal((5, 3, 2)), rng.standard_normal((5, 3, 2))
    out = MSELoss()(f64(p), f64(t))
    assert isinstance(out, Tensor) and out.shape == () and out.dtype == np.float64
    assert out.item() == pytest.approx(np.mean(np.square(p - t)), rel=1e-13)


def test_mse_accepts_arrays_and_numbers():
    assert MSELoss()(Tensor([1.0, 3.0]), np.array([0.0, 0.0])).item() == pytest.approx(5.0)
    assert MSELoss()(np.array([1.0, 3.0]), Tensor([1.0, 1.0])).item() == pytest.approx(2.0)
    out = MSELoss()(Tensor(2.0), 5.0)
    assert out.item() == pytest.approx(9.0) and out.dtype == np.float32


def test_mse_float32_default():
    out = MSELoss()(Tensor([1.0, 2.0]), Tensor([0.0, 0.0]))
    assert out.dtype == np.float32 and out.item() == pytest.approx(2.5)


def test_mse_is_built_from_tensor_operations():
    """Module 06 makes Tensor's -, * and mean differentiable; MSELoss must go through them."""
    calls = []

    class Recording(Tensor):
        def __sub__(self, other):
            calls.append("sub")
            return super().__sub__(other)

    p = Recording.from_numpy(np.array([1.0, 2.0]))
    assert MSELoss()(p, Tensor([0.0, 0.0], dtype=np.float64)).item() == pytest.approx(2.5)
    assert calls == ["sub"]


@pytest.mark.parametrize("p_shape, t_shape", [((4, 1), (4,)), ((3,), (3, 1)), ((2, 3), (3,)), ((2,), ())])
def test_mse_rejects_shape_mismatch(p_shape, t_shape):
    with pytest.raises(ValueError, match="same shape") as info:
        MSELoss()(Tensor(np.zeros(p_shape)), Tensor(np.zeros(t_shape)))
    assert str(p_shape) in str(info.value) and str(t_shape) in str(info.value)


def test_mse_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        MSELoss()(Tensor(np.zeros((0, 2))), Tensor(np.zeros((0, 2))))


@PROPERTY
@given(arr=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
                      elements=st.floats(-1e3, 1e3)),
       shift=st.floats(-10, 10))
def test_mse_property_constant_shift(arr, shift):
    out = MSELoss()(f64(arr), f64(arr + shift)).item()
    assert out == pytest.approx(np.mean(((arr + shift) - arr) ** 2), rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------- CrossEntropyLoss

def test_ce_hand_value():
    out = CrossEntropyLoss()(f64([[2.0, 1.0, 0.0]]), labels([0]))
    assert out.item() == pytest.approx(0.4076059644443804, rel=1e-14)


@pytest.mark.parametrize("classes", [2, 3, 10, 1000])
def test_ce_uniform_logits_is_log_c(classes):
    out = CrossEntropyLoss()(f64(np.full((4, classes), 7.5)), labels([0, classes - 1, 1, 0]))
    assert out.item() == pytest.approx(math.log(classes), rel=1e-13)


def test_ce_matches_logsumexp_oracle():
    rng = np.random.default_rng(3)
    z, y = rng.standard_normal((16, 5)) * 8, rng.integers(0, 5, size=16)
    out = CrossEntropyLoss()(f64(z), labels(y))
    assert out.shape == () and out.dtype == np.float64
    assert out.item() == pytest.approx(ce_oracle(z, y), rel=1e-13)


def test_ce_matches_scipy_log_softmax():
    rng = np.random.default_rng(4)
    z, y = rng.standard_normal((8, 6)), rng.integers(0, 6, size=8)
    expected = -np.mean(log_softmax_oracle(z, axis=1)[np.arange(8), y])
    assert CrossEntropyLoss()(f64(z), y).item() == pytest.approx(expected, rel=1e-13)


@PROPERTY
@given(data=st.data())
def test_ce_property(data):
    n, c = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    z = data.draw(hnp.arrays(np.float64, (n, c), elements=st.floats(-1e4, 1e4)))
    y = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    with no_float_warnings():
        out = CrossEntropyLoss()(f64(z), y).item()
    assert out >= 0.0 and math.isfinite(out)
    assert out == pytest.approx(ce_oracle(z, y), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ce_stable_for_large_logits(dtype):
    z = Tensor([[1e4, 0.0, -1e4], [1e4, 1e4 - 1.0, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    with no_float_warnings():
        out = CrossEntropyLoss()(z, labels([2, 1, 0]))
    assert out.dtype == np.dtype(dtype)
    expected = (2e4 + (1 + math.log1p(math.exp(-1))) + math.log(3)) / 3
    assert out.item() == pytest.approx(expected, rel=1e-6)


def test_ce_accepts_numpy_labels_of_any_integer_dtype():
    z = f64([[0.0, 1.0], [1.0, 0.0]])
    for dtype in (np.int64, np.int32, np.uint8, np.int8):
        assert CrossEntropyLoss()(z, np.array([1, 0], dtype=dtype)).item() == pytest.approx(
            math.log1p(math.exp(-1)), rel=1e-14)


def test_ce_integer_logits_give_float32():
    out = CrossEntropyLoss()(Tensor([[0, 0]], dtype=np.int64), labels([1]))
    assert out.dtype == np.float32 and out.item() == pytest.approx(math.log(2), rel=1e-6)


def test_ce_logits_as_ndarray():
    out = CrossEntropyLoss()(np.zeros((2, 4)), np.array([3, 0]))
    assert out.dtype == np.float32 and out.item() == pytest.approx(math.log(4), rel=1e-6)


@pytest.mark.parametrize("bad", [Tensor([0, 1]), np.array([0.0, 1.0]), np.array([True, False]), [0.0, 1.0]])
def test_ce_float_labels_raise_type_error(bad):
    with pytest.raises(TypeError, match=r"class indices.*int64"):
        CrossEntropyLoss()(Tensor(np.zeros((2, 3))), bad)


@pytest.mark.parametrize("bad, value", [([0, 3], 3), ([-1, 0], -1), ([0, 7], 7)])
def test_ce_labels_out_of_range(bad, value):
    with pytest.raises(ValueError, match=rf"label {value} at position \d is outside \[0, 3\).*C=3"):
        CrossEntropyLoss()(Tensor(np.zeros((2, 3))), labels(bad))


@pytest.mark.parametrize("label_shape", [(3,), (2, 1), (1,), ()])
def test_ce_label_shape_mismatch(label_shape):
    with pytest.raises(ValueError, match="need labels of shape") as info:
        CrossEntropyLoss()(Tensor(np.zeros((2, 3))), np.zeros(label_shape, dtype=np.int64))
    assert "(2, 3)" in str(info.value) and str(label_shape) in str(info.value)


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), ()])
def test_ce_logits_must_be_2d(shape):
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        CrossEntropyLoss()(Tensor(np.zeros(shape)), labels([0]))


def test_ce_empty_batch():
    with pytest.raises(ValueError, match="empty"):
        CrossEntropyLoss()(Tensor(np.zeros((0, 3))), np.zeros(0, dtype=np.int64))


# ---------------------------------------------------------------- BCELoss

def test_bce_hand_value():
    assert BCELoss()(f64([0.8]), f64([0.25])).item() == pytest.approx(1.2628643221541276, rel=1e-14)
    assert BCELoss()(f64([0.5, 0.5]), f64([0.0, 1.0])).item() == pytest.approx(math.log(2), rel=1e-14)


def test_bce_matches_numpy():
    rng = np.random.default_rng(5)
    p, t = rng.uniform(1e-3, 1 - 1e-3, size=(7, 3)), rng.uniform(size=(7, 3))
    out = BCELoss()(f64(p), f64(t))
    assert out.shape == () and out.dtype == np.float64
    assert out.item() == pytest.approx(bce_oracle(p, t), rel=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_clips_zero_and_one(dtype):
    with no_float_warnings():
        out = BCELoss(eps=1e-3)(Tensor([0.0, 1.0, 0.0, 1.0], dtype=dtype), Tensor([1.0, 0.0, 0.0, 1.0], dtype=dtype))
    assert out.dtype == np.dtype(dtype)
    expected = (2 * -math.log(1e-3) + 2 * -math.log(1 - 1e-3)) / 4
    assert out.item() == pytest.approx(expected, rel=1e-5)


def test_bce_default_eps_is_finite_in_float32():
    with no_float_warnings():
        out = BCELoss()(Tensor([0.0, 1.0]), Tensor([1.0, 0.0]))
    assert out.dtype == np.float32 and math.isfinite(out.item()) and out.item() > 10


def test_bce_integer_targets():
    out = BCELoss()(f64([0.25, 0.75]), np.array([0, 1]))
    assert out.item() == pytest.approx(-math.log(0.75), rel=1e-6)


@pytest.mark.parametrize("bad, low, high", [([1.5, 0.5], "0.5", "1.5"), ([-0.25, 0.5], "-0.25", "0.5"),
                                            ([3.0, -2.0], "-2", "3")])
def test_bce_predictions_out_of_range(bad, low, high):
    with pytest.raises(ValueError, match=rf"predictions must lie in \[0, 1\], found min {low} and max {high}"):
        BCELoss()(f64(bad), f64([1.0, 0.0]))


def test_bce_targets_out_of_range():
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\], found min 0 and max 2"):
        BCELoss()(f64([0.5, 0.5]), f64([0.0, 2.0]))


def test_bce_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(3, 1\).*\(3,\)"):
        BCELoss()(Tensor(np.full((3, 1), 0.5)), Tensor(np.ones(3)))


@pytest.mark.parametrize("eps", [0, -1e-7, 0.5, 2.0])
def test_bce_rejects_bad_eps(eps):
    with pytest.raises(ValueError, match=r"eps must lie in \(0, 0.5\)"):
        BCELoss(eps=eps)


# ---------------------------------------------------------------- non-finite inputs, API

BAD_VALUES = [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_mse_non_finite_predictions(bad):
    with pytest.raises(ValueError, match=r"MSELoss: predictions contain NaN/inf \(2 of 4 entries"):
        MSELoss()(f64([bad, 1.0, bad, 0.0]), f64([0.0] * 4))


def test_mse_non_finite_targets():
    with pytest.raises(ValueError, match=r"MSELoss: targets contain NaN/inf \(1 of 2 entries"):
        MSELoss()(f64([0.0, 1.0]), f64([np.nan, 0.0]))


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_ce_non_finite_logits(bad):
    z = np.zeros((3, 2))
    z[1, 0] = bad
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: predictions \(logits\) contain NaN/inf \(1 of 6"):
        CrossEntropyLoss()(f64(z), labels([0, 1, 0]))


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_bce_non_finite_predictions(bad):
    with pytest.raises(ValueError, match=r"BCELoss: predictions contain NaN/inf \(1 of 3 entries"):
        BCELoss()(f64([0.5, bad, 0.5]), f64([1.0, 0.0, 1.0]))


def test_bce_non_finite_targets():
    with pytest.raises(ValueError, match=r"BCELoss: targets contain NaN/inf"):
        BCELoss()(f64([0.5]), f64([np.nan]))


@pytest.mark.parametrize("loss, args", [
    (MSELoss(), (Tensor([1.0, 2.0]), Tensor([0.0, 1.0]))),
    (CrossEntropyLoss(), (Tensor([[1.0, 2.0]]), labels([1]))),
    (BCELoss(), (Tensor([0.3, 0.6]), Tensor([0.0, 1.0]))),
], ids=repr)
def test_call_delegates_to_forward(loss, args):
    assert isinstance(loss, Loss)
    assert loss(*args).item() == loss.forward(*args).item()
    assert loss(*args).shape == ()


def test_call_uses_replaced_forward():
    """Module 06 replaces forward on the class; __call__ must pick the replacement up."""

    class Constant(MSELoss):
        def forward(self, predictions, targets):
            return Tensor(42.0)

    assert Constant()(Tensor([1.0]), Tensor([2.0])).item() == 42.0


def test_inputs_are_not_modified():
    p = np.array([[0.0, 1.0]])
    CrossEntropyLoss()(Tensor.from_numpy(p), labels([1]))
    BCELoss()(Tensor.from_numpy(p), Tensor([[1.0, 0.0]]))
    np.testing.assert_array_equal(p, [[0.0, 1.0]])


@pytest.mark.parametrize("loss, text", [
    (MSELoss(), "MSELoss()"), (CrossEntropyLoss(), "CrossEntropyLoss()"),
    (BCELoss(), "BCELoss(eps=1e-07)"), (BCELoss(eps=0.01), "BCELoss(eps=0.01)"),
])
def test_repr(loss, text):
    assert repr(loss) == text
