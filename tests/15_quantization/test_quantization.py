"""Tests of the exported tinytorch.optimization.quantization (Module 15).

Oracles: numpy computations written independently (per-channel max|x|/127, int64 convolution by
explicit kernel-position sums), hand-computed constants and byte counts, and the shipped
digits_cnn with its test split.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Module, Parameter, Sequential
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import load_digits
from tinytorch.models.zoo import build_model, evaluate, load_model
from tinytorch.optimization.quantization import (
    FrozenParameter, QuantizedConv2d, QuantizedLinear, calibrate, dequantize, exact_float_dtype, int_matmul,
    load_quantized, median_ci, quantization_error, quantize, quantize_model, quantize_params, save_quantized)
from tinytorch.profiling.profiler import Profiler, count_flops, parameter_bytes, serialized_bytes, storage_bytes

PROPERTY = settings(max_examples=40, deadline=None, database=None)


@pytest.fixture(scope="module")
def cnn():
    return load_model("digits_cnn")


@pytest.fixture(scope="module")
def calib():
    return load_digits("train").tensors[0][:256]


# ---------------------------------------------------------------- scales, round trips

@PROPERTY
@given(st.integers(0, 10_000), st.booleans(), st.sampled_from([None, 0, 1]))
def test_round_trip_error_is_at_most_half_a_scale(seed, symmetric, axis):
    x = np.random.default_rng(seed).normal(size=(7, 5)).astype(np.float32) * 3
    scale, zp = quantize_params(x, symmetric=symmetric, axis=axis)
    back = dequantize(quantize(x, scale, zp, symmetric=symmetric), scale, zp)
    assert back.dtype == np.float32
    assert np.all(np.abs(back - x) <= scale / 2 * (1 + 1e-5) + 1e-7)


def test_per_channel_scales_match_numpy_oracle():
    x = np.random.default_rng(1).normal(size=(4, 3, 2, 2)).astype(np.float32)
    scale, zp = quantize_params(x, axis=0)
    oracle = np.abs(x.reshape(4, -1)).max(axis=1) / 127
    assert scale.shape == (4, 1, 1, 1) and np.allclose(scale.ravel(), oracle, rtol=1e-6)
    assert np.all(zp == 0)
    col_scale, _ = quantize_params(x[:, :, 0, 0], axis=1)
    assert np.allclose(col_scale.ravel(), np.abs(x[:, :, 0, 0]).max(axis=0) / 127, rtol=1e-6)


def test_asymmetric_zero_point_and_zero_exact():
    scale, zp = quantize_params(np.array([-1.0, 3.0]), symmetric=False)
    assert np.isclose(scale.item(), 4.0 / 255) and zp.item() == round(-128 + 1.0 / (4.0 / 255))
    assert quantize(np.array([0.0]), scale, zp)[0] == zp.item()
    assert dequantize(quantize(np.array([0.0]), scale, zp), scale, zp)[0] == 0.0
    s2, z2 = quantize_params(np.array([0.5, 2.0]), symmetric=False)  # widened to include 0
    assert z2.item() == -128 and np.isclose(s2.item(), 2.0 / 255)


def test_rounding_and_clipping():
    assert quantize(np.array([0.5, 1.5, 2.5, -0.5, 1e9, -1e9]), 1.0, 0).tolist() == [0, 2, 2, 0, 127, -128]
    assert quantize(np.array([-1e9]), 1.0, 0, symmetric=True).tolist() == [-127]
    assert quantize(np.array([1.0]), 1.0, 0).dtype == np.int8


def test_all_zero_channel_gets_scale_one():
    scale, zp = quantize_params(np.zeros((2, 3)), axis=1)
    assert np.all(scale == 1.0) and np.all(zp == 0)


@pytest.mark.parametrize("call", [
    lambda: quantize_params(np.ones(3), bits=4),
    lambda: quantize(np.ones(3), 1.0, 0, bits=16),
    lambda: quantization_error(np.ones(3), bits=2),
    lambda: quantize_model(Sequential(Linear(2, 2, rng=0)), bits=4),
])
def test_bits_other_than_8_are_rejected(call):
    with pytest.raises(ValueError, match=r"supported: \{8\}"):
        call()


def test_quantization_error_per_channel_beats_per_tensor():
    x = np.random.default_rng(2).normal(size=(64, 8)) * np.geomspace(0.01, 1, 8)
    pt, pc = quantization_error(x, axis=None), quantization_error(x, axis=1)
    assert pc["rmse"] < pt["rmse"] and pc["sqnr_db"] > pt["sqnr_db"]
    scale = np.abs(x).max() / 127
    assert pt["max_abs_error"] <= scale / 2 + 1e-9
    err = quantization_error(np.array([1.0, -1.0]))
    assert err["max_abs_error"] == 0.0 and err["sqnr_db"] == float("inf")


# ---------------------------------------------------------------- integer matmul

@PROPERTY
@given(st.integers(0, 10_000), st.integers(1, 1200))
def test_fast_int_matmul_equals_int64_oracle(seed, k):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, size=(3, k), dtype=np.int8)
    b = rng.integers(-127, 128, size=(k, 4), dtype=np.int8)
    oracle = a.astype(np.int64) @ b.astype(np.int64)
    assert np.array_equal(int_matmul(a, b, "fast"), oracle)
    assert np.array_equal(int_matmul(a, b, "reference"), oracle)
    assert int_matmul(a, b).dtype == np.int32


def test_exact_float_bound():
    assert exact_float_dtype(1032) == np.float32   # 1032 * 128 * 127 < 2^24
    assert exact_float_dtype(1033) == np.float64
    worst_a = np.full((1, 5000), -128, dtype=np.int8)
    worst_b = np.full((5000, 1), -127, dtype=np.int8)
    assert int_matmul(worst_a, worst_b)[0, 0] == 5000 * 128 * 127
    with pytest.raises(ValueError, match="method"):
        int_matmul(worst_a, worst_b, "slow")


# ---------------------------------------------------------------- quantized layers vs oracles

def _int_conv_oracle(q, w, stride, padding, zp):
    """int64 cross-correlation of int8 q (N, C, H, W) padded with zp, by kernel positions."""
    ph, pw = padding
    padded = np.pad(q.astype(np.int64), ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=zp) - zp
    o, c, kh, kw = w.shape
    sh, sw = stride
    out_h = (padded.shape[2] - kh) // sh + 1
    out_w = (padded.shape[3] - kw) // sw + 1
    acc = np.zeros((q.shape[0], o, out_h, out_w), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = padded[:, :, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw]
            acc += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j].astype(np.int64))
    return acc


@pytest.mark.parametrize("stride, padding, per_channel, calibrated", [
    (1, 0, True, True), (2, 1, True, False), ((2, 1), (0, 2), False, True), (3, 2, True, True)])
def test_quantized_conv_equals_integer_oracle(stride, padding, per_channel, calibrated):
    rng = np.random.default_rng(5)
    conv = Conv2d(3, 4, (3, 2), stride=stride, padding=padding, rng=6)
    x = rng.uniform(-1.5, 2.5, size=(2, 3, 9, 8)).astype(np.float32)
    layer = QuantizedConv2d(conv, activation_range=(-1.5, 2.5) if calibrated else None, per_channel=per_channel)
    in_scale, in_zp = quantize_params(x if not calibrated else np.array([-1.5, 2.5]), symmetric=False)
    q = quantize(x, in_scale, in_zp)
    acc = _int_conv_oracle(q, layer.weight_q.data, conv.stride, conv.padding, int(in_zp.item()))
    w_scale = layer.weight_scale.data.reshape(1, -1, 1, 1)
    expected = acc * (in_scale.item() * w_scale.astype(np.float64)) + conv.bias.data.reshape(1, -1, 1, 1)
    out = layer(Tensor(x)).data
    assert out.dtype == np.float32 and out.shape == conv(Tensor(x)).shape
    assert np.allclose(out, expected, rtol=1e-5, atol=1e-5)
    layer.method = "reference"
    reference = layer(Tensor(x)).data
    layer.method = "fast"
    assert np.array_equal(reference, layer(Tensor(x)).data)
    assert np.allclose(out, conv(Tensor(x)).data, atol=0.1)


@pytest.mark.parametrize("per_channel", [True, False])
def test_quantized_linear_equals_integer_oracle(per_channel):
    rng = np.random.default_rng(7)
    lin = Linear(50, 9, rng=8)
    layer = QuantizedLinear(lin, activation_range=(-2.0, 3.0), per_channel=per_channel)
    x = rng.uniform(-2, 3, size=(2, 5, 50)).astype(np.float32)
    s, z = quantize_params(np.array([-2.0, 3.0]), symmetric=False)
    q = quantize(x, s, z).astype(np.int64) - int(z.item())
    acc = q @ layer.weight_q.data.astype(np.int64)
    expected = acc * (s.item() * layer.weight_scale.data.astype(np.float64)) + lin.bias.data
    out = layer(Tensor(x)).data
    assert out.shape == (2, 5, 9) and np.allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert np.allclose(out, lin(Tensor(x)).data, atol=0.05)
    layer.method = "reference"
    assert np.array_equal(layer(Tensor(x)).data, out)


def test_stored_dtypes_and_bytes():
    lin = QuantizedLinear(Linear(20, 6, rng=0), activation_range=(0.0, 1.0))
    assert lin.weight_q.dtype == np.int8 and lin.weight_scale.dtype == np.float32
    assert lin.bias.dtype == np.float32 and lin.input_zero_point.dtype == np.int32
    assert lin.nbytes_total() == 120 + 6 * 4 + 6 * 4 + 4 + 4
    assert storage_bytes(lin) == parameter_bytes(lin) == 176
    dynamic = QuantizedLinear(Linear(20, 6, bias=False, rng=0), per_channel=False)
    assert dynamic.nbytes_total() == 120 + 4
    conv = QuantizedConv2d(Conv2d(3, 8, 3, rng=0))
    assert conv.weight_q.data.shape == (8, 3, 3, 3) and conv.weight_q.dtype == np.int8
    assert conv.nbytes_total() == 8 * 27 + 8 * 4 + 8 * 4
    assert isinstance(conv.weight_q, FrozenParameter) and not conv.weight_q.requires_grad
    assert "int8 per-channel" in repr(conv) and "dynamic" in repr(conv)


def test_flop_rules_registered():
    model = Sequential(Conv2d(1, 4, 3, padding=1, rng=0), ReLU(), Flatten(), Linear(4 * 8 * 8, 3, rng=1))
    q = quantize_model(model)
    assert count_flops(q, (2, 1, 8, 8)) == count_flops(model, (2, 1, 8, 8))
    assert Profiler().parameter_bytes(q) == sum(layer.nbytes_total() for layer in (q[0], q[3]))


def test_layer_errors():
    with pytest.raises(ValueError, match=r"\(2, 7\)"):
        QuantizedLinear(Linear(4, 2, rng=0))(Tensor(np.zeros((2, 7))))
    with pytest.raises(ValueError, match=r"\(1, 2, 5, 5\)"):
        QuantizedConv2d(Conv2d(3, 2, 3, rng=0))(Tensor(np.zeros((1, 2, 5, 5))))
    with pytest.raises(TypeError):
        QuantizedLinear(Conv2d(1, 1, 1, rng=0))
    with pytest.raises(ValueError, match="min <= max"):
        QuantizedLinear(Linear(2, 2, rng=0), activation_range=(1.0, -1.0))


# ---------------------------------------------------------------- calibration and conversion

def test_calibrate_records_input_ranges(cnn, calib):
    ranges = calibrate(cnn, calib, batch_size=100)
    assert set(ranges) == {"0", "3", "7"}
    assert ranges["0"] == (float(calib.data.min()), float(calib.data.max()))
    h = cnn[2](cnn[1](cnn[0](calib)))
    assert np.isclose(ranges["3"][1], float(h.data.max())) and ranges["3"][0] >= 0.0


def test_calibration_shape_error_names_both_shapes(cnn):
    with pytest.raises(ValueError, match=r"\(5, 64\).*\(N, 1, H, W\)"):
        calibrate(cnn, np.zeros((5, 64), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(3, 10\).*\(\.\.\., 4\)"):
        quantize_model(Sequential(Linear(4, 2, rng=0)), calibration_data=np.zeros((3, 10)))


def test_quantize_model_copies_and_replaces(cnn, calib):
    before = {k: v.copy() for k, v in cnn.state_dict().items()}
    q = quantize_model(cnn, calibration_data=calib)
    assert [type(layer).__name__ for layer in q] == [
        "QuantizedConv2d", "ReLU", "MaxPool2d", "QuantizedConv2d", "ReLU", "MaxPool2d", "Flatten", "QuantizedLinear"]
    assert isinstance(cnn[0], Conv2d) and isinstance(cnn[7], Linear)
    assert all(np.array_equal(before[k], v) for k, v in cnn.state_dict().items())
    assert q[0].calibrated and q[7].calibrated
    assert q._modules["7"] is q[7]


class _Block(Module):
    def __init__(self):
        super().__init__()
        self.inner = Sequential(Linear(4, 4, rng=0), ReLU())
        self.head = Linear(4, 2, rng=1)

    def forward(self, x):
        return self.head(self.inner(x))


class _Scale(Module):
    def __init__(self):
        super().__init__()
        self.gain = Parameter(np.ones(4))

    def forward(self, x):
        return x * self.gain


def test_nested_modules_are_converted():
    model = Sequential(_Block(), ReLU())
    q = quantize_model(model, calibration_data=np.ones((3, 4), dtype=np.float32))
    assert isinstance(q[0].inner[0], QuantizedLinear) and isinstance(q[0].head, QuantizedLinear)
    assert q[0].head.calibrated and q[0]._modules["head"] is q[0].head
    x = Tensor(np.random.default_rng(0).uniform(0, 1, size=(3, 4)))
    assert np.allclose(q(x).data, model(x).data, atol=0.05)


def test_unsupported_layers_are_named():
    model = Sequential(Linear(4, 4, rng=0), _Scale(), Sequential(_Scale()))
    with pytest.raises(ValueError, match=r"1 \(_Scale: gain\); 2\.0 \(_Scale: gain\)"):
        quantize_model(model)


# ---------------------------------------------------------------- files, shipped model targets

def test_save_and_load_keep_int8(tmp_path, cnn, calib):
    q = quantize_model(cnn, calibration_data=calib)
    size = save_quantized(q, tmp_path / "q.npz")
    assert size == (tmp_path / "q.npz").stat().st_size == serialized_bytes(q)
    with np.load(tmp_path / "q.npz") as archive:
        assert archive["0.weight_q"].dtype == np.int8
    blank = quantize_model(build_model("digits_cnn", seed=3), calibration_data=calib)
    loaded = load_quantized(tmp_path / "q.npz", like=blank)
    x = calib[:10]
    assert np.array_equal(loaded(x).data, q(x).data)
    assert not np.array_equal(blank(x).data, q(x).data)
    with pytest.raises(ValueError, match="missing keys"):
        load_quantized(tmp_path / "q.npz", like=cnn)
    state = q.state_dict()
    state["0.weight_q"] = state["0.weight_q"].astype(np.float32)
    np.savez(tmp_path / "float.npz", **state)
    with pytest.raises(ValueError, match=r"0\.weight_q: file float32, model int8"):
        load_quantized(tmp_path / "float.npz", like=blank)


def test_digits_cnn_targets(cnn, calib):
    q = quantize_model(cnn, calibration_data=calib)
    assert parameter_bytes(cnn) / parameter_bytes(q) >= 3.5
    base, quant = evaluate(cnn, "digits_cnn"), evaluate(q, "digits_cnn")
    assert base["accuracy"] - quant["accuracy"] <= 0.01
    dynamic = quantize_model(cnn, per_channel=False)
    assert base["accuracy"] - evaluate(dynamic, "digits_cnn")["accuracy"] <= 0.02


def test_median_ci_order_statistics():
    low, high = median_ci(np.arange(1, 16))   # n=15: binomial 2.5% quantile k=4 -> 4th and 12th
    assert (low, high) == (4.0, 12.0)
    assert median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)
