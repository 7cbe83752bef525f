"""Tests of the exported tinytorch.core.spatial (Module 09).

Oracles: a naive nested-loop convolution and pooling written here, central finite
differences in float64, hand-computed values, and the FLOP formula worked out by hand.
"""
import contextlib
import math
import sys
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Module, Parameter, Sequential
from tinytorch.core.spatial import (
    DEFAULT_CONV2D_BENCHMARK_SHAPES,
    AvgPool2d,
    Conv2d,
    Flatten,
    MaxPool2d,
    avg_pool2d,
    benchmark_conv2d,
    conv2d,
    conv2d_flops,
    conv_output_shape,
    max_pool2d,
)
from tinytorch.core.tensor import Tensor

PROPERTY = settings(max_examples=40, deadline=None, database=None)


# ---------------------------------------------------------------- oracles

def naive_conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0)):
    """out[n, o, a, c] = b[o] + sum_{ch, i, j} w[o, ch, i, j] * xpad[n, ch, a*sh + i, c*sw + j], by loops."""
    (sh, sw), (ph, pw) = stride, padding
    n_img, channels, h, wd = x.shape
    xp = np.zeros((n_img, channels, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    n_out, _, kh, kw = w.shape
    out_h, out_w = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n_img, n_out, out_h, out_w))
    for n in range(n_img):
        for o in range(n_out):
            for a in range(out_h):
                for c in range(out_w):
                    total = 0.0 if b is None else float(b[o])
                    for ch in range(channels):
                        for i in range(kh):
                            for j in range(kw):
                                total += float(w[o, ch, i, j]) * float(xp[n, ch, a * sh + i, c * sw + j])
                    out[n, o, a, c] = total
    return out


def naive_pool(x, kernel, stride, reduce):
    """reduce(window) for every window, by loops; x (N, C, H, W)."""
    (kh, kw), (sh, sw) = kernel, stride
    n_img, channels, h, w = x.shape
    out = np.zeros((n_img, channels, (h - kh) // sh + 1, (w - kw) // sw + 1))
    for n in range(n_img):
        for ch in range(channels):
            for a in range(out.shape[2]):
                for c in range(out.shape[3]):
                    out[n, ch, a, c] = reduce(x[n, ch, a * sh:a * sh + kh, c * sw:c * sw + kw])
    return out


def numeric_grad(f, array, eps=1e-6):
    """Central finite differences of the scalar f() w.r.t. every element of the float64 array."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + eps
        up = f()
        array[index] = original - eps
        down = f()
        array[index] = original
        grad[index] = (up - down) / (2 * eps)
    return grad


def as_float64(module):
    """Give every parameter of module float64 data (for precise finite differences)."""
    for param in module.parameters():
        param.data = param.data.astype(np.float64)
    return module


def weighted_sum(out, weights):
    """sum(out * weights) as a differentiable Tensor (its gradient w.r.t. out is weights)."""
    return (out * Tensor.from_numpy(weights)).sum()


# ---------------------------------------------------------------- output shape

@pytest.mark.parametrize("hw, kernel, stride, padding, expected", [
    ((32, 32), 3, 1, 1, (32, 32)),
    ((28, 28), 5, 1, 0, (24, 24)),
    ((7, 9), (3, 2), (2, 3), (1, 0), (4, 3)),
    ((5, 5), 5, 2, 0, (1, 1)),
    ((2, 2), 3, 1, 1, (2, 2)),
    ((8, 8), 2, 2, 0, (4, 4)),
    ((9, 9), 3, 2, 2, (6, 6)),
])
def test_conv_output_shape_hand_computed(hw, kernel, stride, padding, expected):
    assert conv_output_shape(hw, kernel, stride, padding) == expected


@PROPERTY
@given(h=st.integers(1, 12), w=st.integers(1, 12), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2))
def test_conv_output_shape_formula(h, w, kh, kw, sh, sw, ph, pw):
    if kh > h + 2 * ph or kw > w + 2 * pw:
        with pytest.raises(ValueError, match="larger than"):
            conv_output_shape((h, w), (kh, kw), (sh, sw), (ph, pw))
        return
    expected = (math.floor((h + 2 * ph - kh) / sh) + 1, math.floor((w + 2 * pw - kw) / sw) + 1)
    assert conv_output_shape((h, w), (kh, kw), (sh, sw), (ph, pw)) == expected


def test_kernel_larger_than_input_names_sizes():
    with pytest.raises(ValueError, match=r"kernel_size \(5, 5\) is larger than the input \(H, W\) = \(3, 3\)"):
        conv_output_shape((3, 3), 5)
    with pytest.raises(ValueError, match=r"\(5, 5\).*padded input \(4, 4\).*\(2, 2\).*\(1, 1\)"):
        conv_output_shape((2, 2), 5, padding=1)


# ---------------------------------------------------------------- Conv2d forward

CONV_CASES = [
    # (N, C, O, (H, W), kernel, stride, padding, bias)
    (2, 3, 4, (7, 6), (3, 3), (1, 1), (1, 1), True),
    (3, 2, 5, (8, 9), (2, 3), (2, 1), (0, 2), False),
    (1, 1, 2, (5, 5), (5, 5), (2, 2), (2, 2), True),
    (4, 1, 3, (6, 4), (1, 1), (1, 2), (0, 0), True),
    (2, 2, 1, (3, 7), (3, 1), (2, 2), (1, 0), False),
]


@pytest.mark.parametrize("n, c, o, hw, kernel, stride, padding, bias", CONV_CASES)
def test_conv2d_layer_matches_naive(n, c, o, hw, kernel, stride, padding, bias):
    layer = Conv2d(c, o, kernel, stride=stride, padding=padding, bias=bias, rng=0)
    x = Tensor.randn(n, c, *hw, rng=1)
    out = layer(x)
    expected = naive_conv2d(x.data, layer.weight.data, None if layer.bias is None else layer.bias.data,
                            stride, padding)
    assert out.shape == expected.shape == (n, o, *conv_output_shape(hw, kernel, stride, padding))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-5)


@PROPERTY
@given(n=st.integers(1, 3), c=st.integers(1, 3), o=st.integers(1, 4), h=st.integers(1, 7), w=st.integers(1, 7),
       kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 2), sw=st.integers(1, 2),
       ph=st.integers(0, 2), pw=st.integers(0, 2), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv2d_matches_naive_on_random_shapes(n, c, o, h, w, kh, kw, sh, sw, ph, pw, bias, seed):
    if kh > h + 2 * ph or kw > w + 2 * pw:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((o, c, kh, kw))
    b = rng.standard_normal(o) if bias else None
    out = conv2d(Tensor(x, dtype=np.float64), Tensor(weight, dtype=np.float64),
                 None if b is None else Tensor(b, dtype=np.float64), stride=(sh, sw), padding=(ph, pw))
    np.testing.assert_allclose(out.data, naive_conv2d(x, weight, b, (sh, sw), (ph, pw)), rtol=1e-10, atol=1e-12)


def test_conv2d_hand_computed():
    image = np.array([[1, 2, 0, 1], [0, 1, 3, 1], [2, 0, 1, 0], [1, 1, 0, 2]], dtype=np.float32)
    kernel = np.array([[1, 0], [0, -1]], dtype=np.float32)
    out = conv2d(Tensor(image[None, None]), Tensor(kernel[None, None]), Tensor([0.5]))
    assert out.data[0, 0].tolist() == [[0.5, -0.5, -0.5], [0.5, 0.5, 3.5], [1.5, 0.5, -0.5]]


def test_conv2d_accepts_non_contiguous_input():
    base = np.random.default_rng(3).standard_normal((2, 3, 6, 5)).astype(np.float32)
    view = base.transpose(0, 1, 3, 2)[:, ::-1]  # (2, 3, 5, 6), neither C- nor F-contiguous
    layer = Conv2d(3, 2, (2, 3), stride=(1, 2), padding=1, rng=4)
    out = layer(Tensor.from_numpy(view))
    np.testing.assert_allclose(out.data, naive_conv2d(view, layer.weight.data, layer.bias.data, (1, 2), (1, 1)),
                               rtol=1e-4, atol=1e-5)


def test_conv2d_output_is_nchw_contiguous_and_input_untouched():
    x = Tensor.randn(2, 3, 5, 5, rng=0)
    before = x.data.copy()
    out = Conv2d(3, 4, 3, padding=1, rng=1)(x)
    assert out.data.flags.c_contiguous
    np.testing.assert_array_equal(x.data, before)


def test_empty_batch():
    layer = Conv2d(2, 3, 3, padding=1, rng=0)
    assert layer(Tensor.zeros(0, 2, 5, 5)).shape == (0, 3, 5, 5)
    assert MaxPool2d(2)(Tensor.zeros(0, 2, 4, 4)).shape == (0, 2, 2, 2)
    assert AvgPool2d(2)(Tensor.zeros(0, 2, 4, 4)).shape == (0, 2, 2, 2)


def test_int_and_pair_hyperparameters_are_equivalent():
    a = Conv2d(2, 3, 3, stride=2, padding=1, rng=5)
    b = Conv2d(2, 3, (3, 3), stride=[2, 2], padding=(1, 1), rng=5)
    assert a.kernel_size == b.kernel_size == (3, 3) and a.stride == (2, 2) and a.padding == (1, 1)
    x = Tensor.randn(1, 2, 7, 7, rng=6)
    np.testing.assert_array_equal(a(x).data, b(x).data)


# ---------------------------------------------------------------- initialisation

def test_init_matches_seeded_generator_weight_then_bias():
    layer = Conv2d(3, 5, (3, 2), rng=7)
    ref = np.random.default_rng(7)
    k = 1 / math.sqrt(3 * 3 * 2)
    np.testing.assert_array_equal(layer.weight.data, ref.uniform(-k, k, size=(5, 3, 3, 2)).astype(np.float32))
    np.testing.assert_array_equal(layer.bias.data, ref.uniform(-k, k, size=5).astype(np.float32))
    assert isinstance(layer.weight, Parameter) and isinstance(layer.bias, Parameter)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32


def test_init_is_deterministic_and_accepts_a_generator():
    assert np.array_equal(Conv2d(2, 4, 3, rng=1).weight.data, Conv2d(2, 4, 3, rng=1).weight.data)
    assert not np.array_equal(Conv2d(2, 4, 3, rng=1).weight.data, Conv2d(2, 4, 3, rng=2).weight.data)
    gen, ref = np.random.default_rng(9), np.random.default_rng(9)
    first, second = Conv2d(2, 4, 3, rng=gen), Conv2d(2, 4, 3, rng=gen)
    k = 1 / math.sqrt(2 * 9)
    np.testing.assert_array_equal(first.weight.data, ref.uniform(-k, k, (4, 2, 3, 3)).astype(np.float32))
    ref.uniform(-k, k, 4)
    np.testing.assert_array_equal(second.weight.data, ref.uniform(-k, k, (4, 2, 3, 3)).astype(np.float32))


def test_init_bounds_and_spread():
    layer = Conv2d(16, 64, 3, rng=0)
    k = np.float32(1 / math.sqrt(16 * 9))
    w = layer.weight.data
    assert w.shape == (64, 16, 3, 3) and layer.bias.shape == (64,)
    assert np.all(np.abs(w) <= k) and np.all(np.abs(layer.bias.data) <= k)
    assert w.max() > 0.98 * k and w.min() < -0.98 * k          # fills the whole interval
    assert abs(float(w.std()) - float(k) / math.sqrt(3)) < 0.02 * float(k)  # uniform: std = k / sqrt(3)


def test_no_bias():
    layer = Conv2d(2, 3, 2, bias=False, rng=0)
    assert layer.bias is None and [name for name, _ in layer.named_parameters()] == ["weight"]
    x = Tensor.randn(2, 2, 4, 4, rng=1)
    np.testing.assert_allclose(layer(x).data, naive_conv2d(x.data, layer.weight.data), rtol=1e-4, atol=1e-5)


def test_conv2d_is_a_module_with_named_parameters():
    layer = Conv2d(1, 2, 3)
    assert isinstance(layer, Module) and layer.training
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert set(layer.state_dict()) == {"weight", "bias"}


# ---------------------------------------------------------------- repr

@pytest.mark.parametrize("make, text", [  # layers are built inside the test, not at collection
    (lambda: Conv2d(1, 16, kernel_size=3, padding=1), "Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"),
    (lambda: Conv2d(3, 8, 5), "Conv2d(3, 8, kernel_size=(5, 5), stride=(1, 1))"),
    (lambda: Conv2d(2, 4, (3, 1), stride=(2, 1), padding=(0, 1), bias=False),
     "Conv2d(2, 4, kernel_size=(3, 1), stride=(2, 1), padding=(0, 1), bias=False)"),
    (lambda: MaxPool2d(2), "MaxPool2d(kernel_size=(2, 2), stride=(2, 2))"),
    (lambda: MaxPool2d(3, stride=1), "MaxPool2d(kernel_size=(3, 3), stride=(1, 1))"),
    (lambda: AvgPool2d((2, 3)), "AvgPool2d(kernel_size=(2, 3), stride=(2, 3))"),
    (lambda: Flatten(), "Flatten(start_dim=1)"),
    (lambda: Flatten(start_dim=-2), "Flatten(start_dim=-2)"),
])
def test_repr_like_torch(make, text):
    assert repr(make()) == text


# ---------------------------------------------------------------- Conv2d backward

@pytest.mark.parametrize("n, c, o, hw, kernel, stride, padding, bias", [
    (2, 2, 3, (5, 4), (3, 2), (2, 1), (1, 2), True),
    (1, 3, 2, (4, 5), (2, 2), (1, 1), (0, 0), True),
    (2, 1, 2, (6, 5), (3, 3), (2, 2), (1, 1), False),
    (3, 2, 1, (3, 3), (1, 2), (1, 2), (2, 0), True),
])
def test_conv2d_gradients_match_finite_differences(n, c, o, hw, kernel, stride, padding, bias):
    rng = np.random.default_rng(20)
    x = Tensor(rng.standard_normal((n, c, *hw)), dtype=np.float64, requires_grad=True)
    w = Parameter(rng.standard_normal((o, c, *kernel)), dtype=np.float64)
    b = Parameter(rng.standard_normal(o), dtype=np.float64) if bias else None
    out = conv2d(x, w, b, stride, padding)
    weights = rng.standard_normal(out.shape)
    weighted_sum(out, weights).backward()

    def loss():
        with no_grad():
            return float(np.sum(conv2d(x, w, b, stride, padding).data * weights))

    for tensor in (x, w) + ((b,) if bias else ()):
        assert tensor.grad.shape == tensor.shape and tensor.grad.dtype == np.float64
        np.testing.assert_allclose(tensor.grad.data, numeric_grad(loss, tensor.data), rtol=1e-6, atol=1e-8)


def test_conv2d_gradient_of_sum_hand_computed():
    # d sum(out) / d x counts how many (weighted) windows read each pixel; with a kernel of
    # ones that is the number of windows covering the pixel.
    x = Tensor(np.zeros((1, 1, 3, 3)), dtype=np.float64, requires_grad=True)
    w = Tensor(np.ones((1, 1, 2, 2)), dtype=np.float64, requires_grad=True)
    b = Tensor(np.zeros(1), dtype=np.float64, requires_grad=True)
    conv2d(x, w, b).sum().backward()
    assert x.grad.data[0, 0].tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    assert b.grad.data.tolist() == [4.0]       # added at 4 output positions
    assert w.grad.data.tolist() == [[[[0.0, 0.0], [0.0, 0.0]]]]  # the input is all zeros


def test_layer_gradients_reach_parameters_and_not_plain_inputs():
    layer = Conv2d(2, 3, 3, padding=1, rng=0)
    x = Tensor.randn(2, 2, 5, 5, rng=1)  # an image batch does not require grad
    layer(x).sum().backward()
    assert x.grad is None
    assert layer.weight.grad.shape == (3, 2, 3, 3) and layer.bias.grad.shape == (3,)
    np.testing.assert_allclose(layer.bias.grad.data, np.full(3, 2 * 5 * 5), rtol=1e-6)


def test_frozen_weight_gives_only_input_gradient():
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((1, 2, 4, 4)), dtype=np.float64, requires_grad=True)
    w = Tensor(rng.standard_normal((3, 2, 3, 3)), dtype=np.float64)  # a plain Tensor: no grad
    conv2d(x, w, padding=1).sum().backward()
    assert w.grad is None and x.grad.shape == x.shape
    expected = numeric_grad(lambda: float(np.sum(conv2d(x, w, padding=1).data)), x.data)
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-6, atol=1e-8)


def test_no_grad_records_nothing():
    layer = Conv2d(1, 2, 3, rng=0)
    with no_grad():
        out = layer(Tensor.randn(1, 1, 4, 4, rng=1))
    assert out.grad_fn is None and not out.requires_grad


def test_gradients_accumulate_over_two_backward_calls():
    layer = as_float64(Conv2d(1, 1, 2, rng=0))
    x = Tensor(np.random.default_rng(3).standard_normal((1, 1, 3, 3)), dtype=np.float64)
    layer(x).sum().backward()
    once = layer.weight.grad.data.copy()
    layer(x).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.data, 2 * once)


# ---------------------------------------------------------------- pooling forward

POOL_CASES = [((2, 2), None), ((3, 2), (2, 1)), ((2, 2), (1, 1)), ((3, 3), (2, 2)), ((1, 3), (1, 3)), ((2, 1), (3, 2))]


@pytest.mark.parametrize("kernel, stride", POOL_CASES)
def test_pools_match_naive(kernel, stride):
    x = np.random.default_rng(30).standard_normal((2, 3, 7, 6))
    st_ = kernel if stride is None else stride
    max_out = MaxPool2d(kernel, stride)(Tensor(x, dtype=np.float64))
    avg_out = AvgPool2d(kernel, stride)(Tensor(x, dtype=np.float64))
    np.testing.assert_array_equal(max_out.data, naive_pool(x, kernel, st_, np.max))
    np.testing.assert_allclose(avg_out.data, naive_pool(x, kernel, st_, np.mean), rtol=1e-12)
    assert max_out.shape == (2, 3, *conv_output_shape((7, 6), kernel, st_))


@PROPERTY
@given(n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 8), w=st.integers(1, 8),
       kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_pools_match_naive_on_random_shapes(n, c, h, w, kh, kw, sh, sw, seed):
    if kh > h or kw > w:
        return
    x = np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)
    np.testing.assert_array_equal(max_pool2d(Tensor(x), (kh, kw), (sh, sw)).data,
                                  naive_pool(x, (kh, kw), (sh, sw), np.max))
    np.testing.assert_allclose(avg_pool2d(Tensor(x), (kh, kw), (sh, sw)).data,
                               naive_pool(x, (kh, kw), (sh, sw), np.mean), rtol=1e-5, atol=1e-6)


def test_pool_dtype_and_stride_default():
    x = Tensor.randn(1, 2, 6, 6, rng=0)
    assert MaxPool2d(2)(x).dtype == np.float32 and AvgPool2d(2)(x).dtype == np.float32
    assert MaxPool2d(3).stride == (3, 3) and MaxPool2d(3)(x).shape == (1, 2, 2, 2)
    assert MaxPool2d(2).parameters() == [] and AvgPool2d(2).parameters() == []


# ---------------------------------------------------------------- pooling backward

@pytest.mark.parametrize("pool_class", [MaxPool2d, AvgPool2d])
@pytest.mark.parametrize("kernel, stride", POOL_CASES)
def test_pool_gradients_match_finite_differences(pool_class, kernel, stride):
    rng = np.random.default_rng(31)
    x = Tensor(rng.standard_normal((2, 2, 7, 6)), dtype=np.float64, requires_grad=True)
    pool = pool_class(kernel, stride)
    out = pool(x)
    weights = rng.standard_normal(out.shape)
    weighted_sum(out, weights).backward()
    expected = numeric_grad(lambda: float(np.sum(pool(Tensor.from_numpy(x.data)).data * weights)), x.data)
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-6, atol=1e-8)


def test_max_pool_ties_go_to_the_first_maximum_in_row_major_order():
    x = Tensor([[[[3, 3, 1, 0],
                  [3, 3, 2, 2],
                  [0, 1, 5, 4],
                  [1, 0, 5, 5]]]], dtype=np.float64, requires_grad=True)
    out = MaxPool2d(2)(x)
    assert out.data[0, 0].tolist() == [[3, 2], [1, 5]]
    out.sum().backward()
    assert x.grad.data[0, 0].tolist() == [[1, 0, 0, 0],
                                          [0, 0, 1, 0],
                                          [0, 1, 1, 0],
                                          [0, 0, 0, 0]]


def test_max_pool_all_equal_window_sends_everything_to_the_top_left():
    x = Tensor(np.full((1, 1, 2, 3), 4.0), dtype=np.float64, requires_grad=True)
    MaxPool2d((2, 3)).forward(x).sum().backward()
    assert x.grad.data[0, 0].tolist() == [[1, 0, 0], [0, 0, 0]]


def test_max_pool_overlapping_windows_accumulate_with_ties():
    x = Tensor([[[[1, 1, 1], [1, 7, 7], [1, 7, 7]]]], dtype=np.float64, requires_grad=True)
    out = MaxPool2d(2, stride=1)(x)
    assert out.data[0, 0].tolist() == [[7, 7], [7, 7]]
    weighted_sum(out, np.array([[[[1.0, 2.0], [3.0, 4.0]]]])).backward()
    assert x.grad.data[0, 0].tolist() == [[0, 0, 0], [0, 10, 0], [0, 0, 0]]


def test_max_pool_centre_wins_every_overlapping_window():
    data = np.zeros((1, 1, 5, 5))
    data[0, 0, 2, 2] = 9.0
    x = Tensor(data, dtype=np.float64, requires_grad=True)
    MaxPool2d(3, stride=1)(x).sum().backward()
    assert x.grad.data[0, 0, 2, 2] == 9.0  # the centre is in all 3x3 = 9 windows
    assert x.grad.data.sum() == 9.0


def test_avg_pool_overlapping_gradient_hand_computed():
    x = Tensor(np.zeros((1, 1, 3, 4)), dtype=np.float64, requires_grad=True)
    AvgPool2d(2, stride=1)(x).sum().backward()
    np.testing.assert_allclose(x.grad.data[0, 0] * 4, [[1, 2, 2, 1], [2, 4, 4, 2], [1, 2, 2, 1]])


def test_pool_stride_larger_than_kernel_leaves_gaps_with_zero_gradient():
    x = Tensor(np.arange(25.0).reshape(1, 1, 5, 5), dtype=np.float64, requires_grad=True)
    AvgPool2d(1, stride=3)(x).sum().backward()
    expected = np.zeros((5, 5))
    expected[::3, ::3] = 1.0
    np.testing.assert_array_equal(x.grad.data[0, 0], expected)


# ---------------------------------------------------------------- Flatten

@pytest.mark.parametrize("start_dim, shape", [(1, (2, 60)), (0, (120,)), (2, (2, 3, 20)), (3, (2, 3, 4, 5)),
                                              (-1, (2, 3, 4, 5)), (-3, (2, 60))])
def test_flatten_shapes(start_dim, shape):
    data = np.arange(120.0).reshape(2, 3, 4, 5)
    out = Flatten(start_dim)(Tensor(data))
    assert out.shape == shape
    np.testing.assert_array_equal(out.data, data.reshape(shape))


def test_flatten_passes_gradients_back():
    x = Tensor(np.arange(24.0).reshape(2, 3, 2, 2), dtype=np.float64, requires_grad=True)
    out = Flatten()(x)
    weighted_sum(out, np.arange(24.0).reshape(2, 12)).backward()
    np.testing.assert_array_equal(x.grad.data, np.arange(24.0).reshape(2, 3, 2, 2))


def test_flatten_with_zero_sized_batch():
    assert Flatten()(Tensor.zeros(0, 3, 2, 2)).shape == (0, 12)


def test_flatten_errors():
    with pytest.raises(ValueError, match=r"start_dim=2.*\(2, 3\)"):
        Flatten(2)(Tensor.ones(2, 3))
    with pytest.raises(ValueError, match=r"start_dim=-3.*\(2, 3\)"):
        Flatten(-3)(Tensor.ones(2, 3))
    with pytest.raises(ValueError, match="start_dim=0"):
        Flatten(0)(Tensor(1.0))
    with pytest.raises(TypeError, match="Tensor"):
        Flatten()(np.ones((2, 3)))
    for bad in (1.5, "1", True):
        with pytest.raises(TypeError, match="start_dim"):
            Flatten(bad)


# ---------------------------------------------------------------- a whole CNN

@pytest.mark.parametrize("with_relu", [True, False])
def test_cnn_end_to_end_gradients(with_relu):
    layers = [Conv2d(2, 3, 3, padding=1, rng=0)] + ([ReLU()] if with_relu else []) + [
        MaxPool2d(2), Flatten(), Linear(3 * 3 * 2, 4, rng=1)]
    model = as_float64(Sequential(*layers))
    images = Tensor(np.random.default_rng(2).standard_normal((2, 2, 6, 5)), dtype=np.float64)
    weights = np.random.default_rng(3).standard_normal((2, 4))
    out = model(images)
    assert out.shape == (2, 4)
    weighted_sum(out, weights).backward()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", f"{len(layers) - 1}.weight", f"{len(layers) - 1}.bias"]
    for _, param in model.named_parameters():
        expected = numeric_grad(lambda: float(np.sum(model(images).data * weights)), param.data)
        np.testing.assert_allclose(param.grad.data, expected, rtol=1e-5, atol=1e-8)


def test_cnn_on_input_that_requires_grad():
    model = as_float64(Sequential(Conv2d(1, 2, 2, stride=2, rng=0), AvgPool2d(2, stride=1), Flatten(),
                                  Linear(2 * 2 * 2, 1, rng=1)))
    x = Tensor(np.random.default_rng(4).standard_normal((3, 1, 6, 6)), dtype=np.float64, requires_grad=True)
    model(x).sum().backward()
    expected = numeric_grad(lambda: float(np.sum(model(Tensor.from_numpy(x.data)).data)), x.data)
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- errors

def test_conv_input_must_be_4d():
    layer = Conv2d(3, 4, 3)
    for shape in ((3, 8, 8), (8, 8), (1, 1, 3, 8, 8)):
        with pytest.raises(ValueError, match=rf"4-D input of shape \(N, 3, H, W\), got shape {re_shape(shape)}"):
            layer(Tensor.ones(*shape))


def re_shape(shape):
    """A shape tuple as a regular expression."""
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_conv_wrong_channels_names_shape_and_expected_channels():
    with pytest.raises(ValueError, match=r"expects 3 input channels.*\(N, 3, H, W\).*\(2, 1, 8, 8\) has 1"):
        Conv2d(3, 4, 3)(Tensor.ones(2, 1, 8, 8))


def test_conv_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"kernel_size \(5, 5\).*padded input \(4, 4\)"):
        Conv2d(1, 1, 5, padding=1)(Tensor.ones(1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"kernel_size \(3, 1\).*\(2, 9\)"):
        Conv2d(1, 1, (3, 1))(Tensor.ones(1, 1, 2, 9))


@pytest.mark.parametrize("kwargs, match", [
    ({"in_channels": 0}, "in_channels"),
    ({"out_channels": -2}, "out_channels"),
    ({"kernel_size": 0}, "kernel_size"),
    ({"kernel_size": (3, 0)}, "kernel_size"),
    ({"stride": 0}, "stride"),
    ({"stride": (1, -1)}, "stride"),
    ({"padding": -1}, "padding"),
    ({"kernel_size": (3, 3, 3)}, "pair"),
])
def test_conv_bad_hyperparameters_raise_value_error(kwargs, match):
    args = {"in_channels": 1, "out_channels": 2, "kernel_size": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        Conv2d(**args)


@pytest.mark.parametrize("kwargs", [{"kernel_size": 2.0}, {"stride": "1"}, {"padding": (1, 0.5)},
                                    {"kernel_size": True}, {"bias": 1}, {"in_channels": 1.5}])
def test_conv_wrong_types_raise_type_error(kwargs):
    args = {"in_channels": 1, "out_channels": 2, "kernel_size": 3} | kwargs
    with pytest.raises(TypeError):
        Conv2d(**args)


def test_conv_input_must_be_a_tensor():
    with pytest.raises(TypeError, match="Tensor"):
        Conv2d(1, 1, 1)(np.ones((1, 1, 2, 2)))


def test_functional_conv2d_checks_weight_and_bias():
    x = Tensor.ones(1, 2, 4, 4)
    with pytest.raises(ValueError, match="4-D weight"):
        conv2d(x, Tensor.ones(3, 2, 3))
    with pytest.raises(ValueError, match=r"bias Tensor of shape \(3,\)"):
        conv2d(x, Tensor.ones(3, 2, 3, 3), Tensor.ones(2))


@pytest.mark.parametrize("pool_class", [MaxPool2d, AvgPool2d])
def test_pool_errors(pool_class):
    with pytest.raises(ValueError, match=r"4-D input.*\(4, 4\)"):
        pool_class(2)(Tensor.ones(4, 4))
    with pytest.raises(ValueError, match=r"kernel_size \(3, 3\) is larger than the input \(H, W\) = \(2, 5\)"):
        pool_class(3)(Tensor.ones(1, 1, 2, 5))
    for bad in ({"kernel_size": 0}, {"kernel_size": 2, "stride": 0}, {"kernel_size": (2, -1)}):
        with pytest.raises(ValueError):
            pool_class(**bad)
    with pytest.raises(TypeError, match="Tensor"):
        pool_class(2)([[1.0]])
    with pytest.raises(TypeError):
        pool_class(2.5)


# ---------------------------------------------------------------- FLOPs and benchmark

def test_conv2d_flops_hand_computed():
    assert conv2d_flops((64, 1, 8, 8), 16, 3, padding=1) == 2 * 64 * 16 * 8 * 8 * 1 * 9 == 1_179_648
    assert conv2d_flops((32, 3, 32, 32), 32, 3, padding=1) == 56_623_104
    assert conv2d_flops((1, 2, 5, 5), 4, (3, 2), stride=2) == 2 * 1 * 4 * 2 * 2 * 2 * 6


def test_default_benchmark_shapes_are_the_two_required_ones():
    assert DEFAULT_CONV2D_BENCHMARK_SHAPES == (
        {"input_shape": (64, 1, 8, 8), "out_channels": 16, "kernel_size": 3, "padding": 1},
        {"input_shape": (32, 3, 32, 32), "out_channels": 32, "kernel_size": 3, "padding": 1},
    )


SMALL_SHAPES = [{"input_shape": (2, 1, 6, 6), "out_channels": 2, "kernel_size": 3, "padding": 1},
                {"input_shape": (1, 2, 7, 5), "out_channels": 3, "kernel_size": (2, 3), "stride": 2}]


def test_benchmark_conv2d_result_fields(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    results = benchmark_conv2d(SMALL_SHAPES, repeats=7, matmul_size=32)
    assert len(results) == 2
    first, second = results
    assert first["input_shape"] == (2, 1, 6, 6) and first["output_shape"] == (2, 2, 6, 6)
    assert second["kernel_size"] == (2, 3) and second["stride"] == (2, 2) and second["output_shape"] == (1, 3, 3, 2)
    for r in results:
        assert r["flops"] == conv2d_flops(r["input_shape"], r["out_channels"], r["kernel_size"], r["stride"],
                                          r["padding"])
        assert len(r["samples_ns"]) == 7 and len(r["matmul_samples_ns"]) == 7 and r["repeats"] == 7
        assert r["ms_median"] == pytest.approx(np.median(r["samples_ns"]) / 1e6)
        assert r["gflops"] == pytest.approx(r["flops"] / (r["ms_median"] * 1e6))
        assert r["matmul_gflops"] == pytest.approx(2 * 32 ** 3 / np.median(r["matmul_samples_ns"]))
        assert r["ratio_to_matmul"] == pytest.approx(r["gflops"] / r["matmul_gflops"])
        assert r["torch_ms_median"] is None and r["torch_ratio"] is None
        assert r["calls_per_sample"] >= 1 and r["calls_per_sample"] * r["ms_median"] >= 1.0 * 0.5
        assert r["environment"]["timer"] == "perf_counter_ns" and r["environment"]["min_sample_ns"] >= 1_000_000
        assert r["warning"] is None or "noisy" in r["warning"]


def test_benchmark_uses_torch_when_importable(monkeypatch):
    calls = []

    def fake_conv2d(x, w, b, stride, padding):
        calls.append((stride, padding))
        return conv2d(Tensor.from_numpy(x), Tensor.from_numpy(w), None if b is None else Tensor.from_numpy(b),
                      stride, padding)

    fake = types.ModuleType("torch")
    fake.from_numpy = lambda array: array
    fake.no_grad = contextlib.nullcontext
    fake.nn = types.SimpleNamespace(functional=types.SimpleNamespace(conv2d=fake_conv2d))
    monkeypatch.setitem(sys.modules, "torch", fake)
    (result,) = benchmark_conv2d(SMALL_SHAPES[:1], repeats=7, matmul_size=32)
    assert calls and calls[0] == ((1, 1), (1, 1))
    assert result["torch_ms_median"] > 0
    assert result["torch_ratio"] == pytest.approx(result["ms_median"] / result["torch_ms_median"])


@pytest.mark.parametrize("repeats", [6, 0, 7.5, True])
def test_benchmark_needs_at_least_seven_repeats(repeats):
    with pytest.raises(ValueError, match="repeats"):
        benchmark_conv2d(SMALL_SHAPES, repeats=repeats)


def test_benchmark_shape_needs_its_keys():
    with pytest.raises(ValueError, match=r"lacks \['out_channels'\]"):
        benchmark_conv2d([{"input_shape": (1, 1, 4, 4), "kernel_size": 3}], repeats=7, matmul_size=8)
