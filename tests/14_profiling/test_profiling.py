"""Tests of the exported tinytorch.profiling.profiler (Module 14): counting, memory, hooks, roofline.

Oracles: FLOP totals written out by hand from the stated formulas (and module 09's conv2d_flops
for the multiply-adds), numpy's nbytes, output shapes computed by hand, tracemalloc snapshots
taken by the test itself, and counters on monkeypatched measuring functions.
"""
import json
import tracemalloc

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch.profiling.profiler as prof
from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.layers import Dropout, Linear, Module, Parameter, Sequential
from tinytorch.core.losses import MSELoss
from tinytorch.core.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d, conv2d_flops
from tinytorch.core.tensor import Tensor
from tinytorch.models.zoo import build_model, load_model
from tinytorch.profiling.profiler import (CALLER_SESSION, COMPUTE_BOUND, FLOP_COLUMNS, MEMORY_BOUND, OWN_SESSION,
                                          PROFILE_COLUMNS, LayerCall, Profiler, classify_roofline,
                                          conv2d_layer_flops, count_flops, flops_by_layer, layer_flops,
                                          leaf_layers, linear_flops, measure_machine_peak, measure_memory,
                                          parameter_bytes, pool2d_flops, profile_backward_pass,
                                          profile_forward_pass, profile_layer, roofline_plot, storage_bytes,
                                          traced_peak)

PROPERTY = settings(max_examples=40, deadline=None, database=None)
FAKE_PEAK = {"peak_gflops": 100.0, "bandwidth_gbs": 10.0}


def flops_of(layer, input_shape):
    return Profiler().count_flops(layer, input_shape)


# ---------------------------------------------------------------- FLOPs: single layers, by hand

def test_linear_flops_by_hand():
    assert flops_of(Linear(7, 3, rng=0), (5, 7)) == 2 * 5 * 7 * 3 + 5 * 3 == 225
    assert flops_of(Linear(7, 3, bias=False, rng=0), (5, 7)) == 210
    assert flops_of(Linear(7, 3, rng=0), (2, 4, 7)) == 2 * 8 * 7 * 3 + 8 * 3   # rows = 2 * 4
    assert linear_flops((5, 7), 3) == 225


def test_conv2d_stride_2_padding_1_non_square_kernel_batch_3():
    layer = Conv2d(2, 4, (3, 2), stride=2, padding=1, rng=0)
    # H_out = (7 + 2*1 - 3) // 2 + 1 = 4, W_out = (6 + 2*1 - 2) // 2 + 1 = 4
    # 2 * N * O * H_out * W_out * C * kh * kw + N * O * H_out * W_out
    expected = 2 * 3 * 4 * 4 * 4 * 2 * 3 * 2 + 3 * 4 * 4 * 4
    assert expected == 4800
    assert flops_of(layer, (3, 2, 7, 6)) == 4800
    assert flops_of(Conv2d(2, 4, (3, 2), stride=2, padding=1, bias=False, rng=0), (3, 2, 7, 6)) == 4608


def test_conv2d_with_different_strides_and_paddings_per_axis():
    layer = Conv2d(3, 2, (3, 5), stride=(2, 1), padding=(1, 0), rng=0)
    # H_out = (9 + 2 - 3) // 2 + 1 = 5, W_out = (10 + 0 - 5) // 1 + 1 = 6
    expected = 2 * 3 * 2 * 5 * 6 * 3 * 3 * 5 + 3 * 2 * 5 * 6
    assert expected == 16380 and flops_of(layer, (3, 3, 9, 10)) == 16380
    # module 09's conv2d_flops counts the multiply-adds only (no bias)
    assert conv2d_flops((3, 3, 9, 10), 2, (3, 5), (2, 1), (1, 0)) + 3 * 2 * 5 * 6 == 16380


@pytest.mark.parametrize("layer, input_shape, expected", [
    (MaxPool2d(2), (2, 3, 8, 8), 2 * 3 * 4 * 4 * (4 - 1)),                # 96 outputs, 3 compares
    (AvgPool2d(3, stride=1), (1, 2, 5, 5), 1 * 2 * 3 * 3 * (9 + 1)),       # 9 adds + 1 divide
    (MaxPool2d((2, 3), stride=(1, 2)), (1, 1, 4, 7), 3 * 3 * (6 - 1)),     # out (3, 3)
    (AvgPool2d(2), (1, 1, 5, 5), 2 * 2 * (4 + 1)),                         # floor: out (2, 2)
])
def test_pool_flops_by_hand(layer, input_shape, expected):
    assert flops_of(layer, input_shape) == expected


@pytest.mark.parametrize("layer, per_element", [
    (ReLU(), 1), (Sigmoid(), 4), (Tanh(), 1), (GELU(), 5), (GELU(approximate="tanh"), 9), (Softmax(), 5),
    (Flatten(), 0),
])
def test_activation_flops_per_element(layer, per_element):
    assert flops_of(layer, (3, 7)) == per_element * 21


def test_dropout_counts_zero_in_eval_and_its_training_flag_survives():
    model = Sequential(Linear(4, 6, rng=0), Dropout(0.5, rng=0), Linear(6, 2, rng=1))
    assert model.training
    assert flops_of(model, (2, 4)) == (2 * 2 * 4 * 6 + 12) + 0 + (2 * 2 * 6 * 2 + 4)
    assert all(m.training for m in model.modules())
    dropout = Dropout(0.5)                     # the rule for a training-mode dropout, used directly
    call = LayerCall("d", dropout, Tensor.zeros(2, 5), Tensor.zeros(2, 5))
    assert layer_flops(call) == 3 * 10
    dropout.eval()
    assert layer_flops(call) == 0


def test_nested_sequential_and_custom_module_with_an_activation_attribute():
    class Block(Module):
        def __init__(self):
            super().__init__()
            self.fc = Linear(4, 4, rng=0)
            self.act = Tanh()                  # not a Module: found as an attribute

        def forward(self, x):
            return self.act(self.fc(x))

    model = Sequential(Sequential(Linear(3, 4, rng=1), ReLU()), Block(), Linear(4, 2, rng=2))
    table = flops_by_layer(model, (5, 3))
    assert table["layer"].tolist() == ["0.0", "0.1", "1.fc", "1.act", "2"]
    assert table["flops"].tolist() == [2 * 5 * 3 * 4 + 20, 20, 2 * 5 * 4 * 4 + 20, 20, 2 * 5 * 4 * 2 + 10]
    assert count_flops(model, (5, 3)) == int(table["flops"].sum())


def test_shared_layer_is_recorded_at_each_call():
    relu = ReLU()
    model = Sequential(Linear(4, 4, rng=0), relu, Linear(4, 4, rng=1), relu)
    table = flops_by_layer(model, (2, 4))
    assert table["layer"].tolist() == ["0", "1", "2", "1"]
    assert count_flops(model, (2, 4)) == 2 * (2 * 2 * 4 * 4 + 8) + 2 * 8


# ---------------------------------------------------------------- FLOPs: the reference models

def test_digits_mlp_flops_by_hand():
    n = 3
    expected = (2 * n * 64 * 128 + n * 128) + n * 128 + (2 * n * 128 * 10 + n * 10)
    assert expected == 3 * 19210
    assert flops_of(load_model("digits_mlp"), (n, 64)) == expected


def test_digits_cnn_flops_by_hand():
    n = 3
    conv1 = 2 * n * 16 * 8 * 8 * 1 * 3 * 3 + n * 16 * 8 * 8     # padding 1 keeps 8x8
    relu1 = n * 16 * 8 * 8
    pool1 = n * 16 * 4 * 4 * (2 * 2 - 1)
    conv2 = 2 * n * 32 * 4 * 4 * 16 * 3 * 3 + n * 32 * 4 * 4
    relu2 = n * 32 * 4 * 4
    pool2 = n * 32 * 2 * 2 * (2 * 2 - 1)
    linear = 2 * n * 128 * 10 + n * 10
    expected = conv1 + relu1 + pool1 + conv2 + relu2 + pool2 + 0 + linear
    assert expected == 3 * 172682
    assert flops_of(load_model("digits_cnn"), (n, 1, 8, 8)) == expected
    assert flops_by_layer(build_model("digits_cnn"), (n, 1, 8, 8))["flops"].tolist() == [
        conv1, relu1, pool1, conv2, relu2, pool2, 0, linear]


# ---------------------------------------------------------------- unknown layers

class Mystery(Module):
    def forward(self, x):
        return x * 2.0


def test_unknown_leaf_layer_is_a_value_error_naming_it():
    model = Sequential(Linear(4, 4, rng=0), Mystery())
    with pytest.raises(ValueError, match=r"layer '1' is a Mystery, which has no FLOP rule"):
        count_flops(model, (1, 4))


def test_a_registered_rule_counts_the_new_layer(monkeypatch):
    monkeypatch.setitem(prof.FLOP_RULES, Mystery, lambda layer, i, o: int(np.prod(o)))
    assert count_flops(Sequential(Linear(4, 4, rng=0), Mystery()), (2, 4)) == (2 * 2 * 4 * 4 + 8) + 8


def test_register_flop_rule_checks_its_arguments():
    with pytest.raises(TypeError, match="class"):
        prof.register_flop_rule(Mystery(), lambda *a: 0)
    with pytest.raises(TypeError, match="callable"):
        prof.register_flop_rule(Mystery, 3)


def test_a_leaf_that_cannot_be_hooked_is_named():
    model = Sequential(Linear(4, 4, rng=0), lambda x: x)
    with pytest.raises(ValueError, match=r"layer '1' is a function without a forward method"):
        count_flops(model, (1, 4))


def test_leaf_layers_names_and_root_leaf():
    model = build_model("digits_cnn")
    assert [name for name, _ in leaf_layers(model)] == [str(i) for i in range(8)]
    layer = Linear(2, 2, rng=0)
    assert leaf_layers(layer) == [("Linear", layer)]


# ---------------------------------------------------------------- parameters and bytes

def test_parameter_bytes_equal_the_sum_of_nbytes():
    for model in (load_model("digits_cnn"), load_model("digits_mlp"), Sequential(Conv2d(3, 5, (2, 4), rng=0))):
        params = model.parameters()
        assert parameter_bytes(model) == sum(p.data.nbytes for p in params)
        assert prof.count_parameters(model) == sum(p.data.size for p in params)
    assert prof.count_parameters(load_model("digits_cnn")) == (16 * 9 + 16) + (32 * 16 * 9 + 32) + (1280 + 10)


def test_int8_parameter_counts_one_byte_and_float64_eight():
    model = Module()
    model.codes = Parameter(np.zeros((7, 3)), dtype=np.int8)
    model.scale = Parameter(np.ones(7), dtype=np.float64)
    assert parameter_bytes(model) == 21 * 1 + 7 * 8
    assert prof.count_parameters(model) == 28


def test_storage_bytes_uses_nbytes_total_first():
    class SparseWeight(Tensor):
        def nbytes_total(self):
            return self.data.nbytes // 2 + 40     # values kept + their indices

    weight = SparseWeight(np.ones((4, 5)))
    assert storage_bytes(weight) == 80 // 2 + 40
    assert storage_bytes(np.zeros(3, dtype=np.int16)) == 6
    with pytest.raises(TypeError, match="nbytes_total"):
        storage_bytes("abc")


def test_shared_parameters_count_once():
    shared = Linear(4, 4, rng=0)
    assert parameter_bytes(Sequential(shared, ReLU(), shared)) == (16 + 4) * 4


# ---------------------------------------------------------------- memory

def test_activation_bytes_are_the_sum_of_the_real_output_shapes():
    n = 5
    shapes = [(n, 16, 8, 8), (n, 16, 8, 8), (n, 16, 4, 4), (n, 32, 4, 4), (n, 32, 4, 4), (n, 32, 2, 2),
              (n, 128), (n, 10)]                          # digits_cnn, worked out by hand
    expected = sum(int(np.prod(shape)) * 4 for shape in shapes)
    table = flops_by_layer(load_model("digits_cnn"), (n, 1, 8, 8))
    assert [tuple(s) for s in table["output_shape"]] == shapes
    memory = measure_memory(load_model("digits_cnn"), (n, 1, 8, 8))
    assert memory["activation_bytes"] == expected == int(table["activation_bytes"].sum())
    assert memory["input_bytes"] == n * 64 * 4 and memory["parameter_bytes"] == 6090 * 4
    assert memory["peak_bytes"] > 0 and memory["tracemalloc"] == OWN_SESSION
    assert not tracemalloc.is_tracing()


def test_serialized_bytes_equal_the_saved_weight_file(tmp_path):
    from tinytorch.models.zoo import save_weights

    model = load_model("digits_cnn")
    save_weights(model, tmp_path / "w.npz")
    assert prof.serialized_bytes(model) == (tmp_path / "w.npz").stat().st_size
    assert measure_memory(model, (1, 1, 8, 8))["serialized_bytes"] == (tmp_path / "w.npz").stat().st_size
    assert prof.serialized_bytes(ReLU()) is None


def test_traced_peak_in_its_own_session():
    assert not tracemalloc.is_tracing()
    result, peak, session = traced_peak(lambda: np.ones(250_000))
    assert result.nbytes == 2_000_000 and 2_000_000 <= peak < 2_100_000
    assert session == OWN_SESSION and not tracemalloc.is_tracing()


def _bytes_from_this_file(snapshot):
    return sum(stat.size for stat in snapshot.filter_traces([tracemalloc.Filter(True, __file__)]).statistics("filename"))


def test_measure_memory_keeps_a_callers_tracemalloc_session_and_its_data():
    tracemalloc.start()
    try:
        kept = np.empty(500_000)                         # 4 MB allocated (and kept) by the caller, here
        before = tracemalloc.take_snapshot()
        assert _bytes_from_this_file(before) >= kept.nbytes
        memory = measure_memory(load_model("digits_mlp"), (4, 64))
        assert tracemalloc.is_tracing()
        assert memory["tracemalloc"] == CALLER_SESSION and memory["peak_bytes"] > 0
        after = tracemalloc.take_snapshot()
        assert _bytes_from_this_file(after) >= kept.nbytes    # traces not cleared
        assert _bytes_from_this_file(before) >= kept.nbytes   # the earlier snapshot is intact
        _, peak, session = traced_peak(lambda: np.ones(125_000))
        assert session == CALLER_SESSION and 1_000_000 <= peak < 1_100_000   # the caller's 4 MB excluded
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("call", [
    lambda p: p.count_flops(42, (1, 4)),
    lambda p: p.measure_memory("model", (1, 4)),
    lambda p: p.measure_latency(3.5, Tensor.zeros(1, 4)),
    lambda p: p.count_parameters(None),
])
def test_a_model_that_is_neither_callable_nor_has_forward_is_a_type_error(call):
    with pytest.raises(TypeError, match=r"(int|str|float|NoneType)"):
        call(Profiler())


def test_an_object_with_forward_but_no_call_is_accepted():
    class Bare:
        def forward(self, x):
            return x

    assert prof.time_model(Bare(), 1, warmup=0, iterations=2, calls=1).n == 2


def test_wrong_input_shape_names_the_layer_and_both_shapes():
    model = load_model("digits_mlp")
    with pytest.raises(ValueError, match=r"layer '0' \(Linear\).*expects shape \(\.\.\., 64\), received shape \(2, 65\)") as info:
        count_flops(model, (2, 65))
    assert isinstance(info.value.__cause__, ValueError)
    cnn = load_model("digits_cnn")
    with pytest.raises(ValueError, match=r"layer '0' \(Conv2d\).*\(N, 1, H, W\).*received shape \(2, 3, 8, 8\)"):
        Profiler().measure_latency(cnn, Tensor.zeros(2, 3, 8, 8), warmup=0, iterations=1)
    with pytest.raises(ValueError, match=r"layer '7' \(Linear\).*\(\.\.\., 128\).*received shape \(1, 288\)"):
        measure_memory(cnn, (1, 1, 12, 12))
    for layer in list(model) + list(cnn):                     # every hook removed after the errors
        assert "forward" not in vars(layer)
    assert not any(m.training for m in cnn.modules())          # load_model's eval mode kept


def test_training_flags_are_restored_after_an_error():
    model = build_model("digits_mlp")
    model.train()
    with pytest.raises(ValueError):
        count_flops(model, (1, 63))
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize("shape", [(), (0, 4), (2, -1), "2,4", (2.0, 4), None])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match="input_shape"):
        count_flops(Linear(4, 2, rng=0), shape)


# ---------------------------------------------------------------- DataFrames

def test_flops_by_layer_columns():
    table = Profiler().flops_by_layer(load_model("digits_mlp"), (2, 64))
    assert isinstance(table, pd.DataFrame) and tuple(table.columns) == FLOP_COLUMNS
    assert table["type"].tolist() == ["Linear", "ReLU", "Linear"]
    assert table["params"].tolist() == [64 * 128 + 128, 0, 128 * 10 + 10]
    assert table["input_shape"].tolist() == [(2, 64), (2, 128), (2, 128)]


def test_profile_forward_pass_columns_and_arithmetic():
    model = load_model("digits_cnn")
    x = Tensor.randn(4, 1, 8, 8, rng=0)
    df = profile_forward_pass(model, x, repeats=3, peak=FAKE_PEAK)
    assert tuple(df.columns) == PROFILE_COLUMNS and len(df) == 8
    assert df["time_share"].sum() == pytest.approx(1.0)
    assert (df["time_ms"] > 0).all() and df.attrs["model_ms"] > 0 and df.attrs["repeats"] == 3
    assert df["flops"].tolist() == flops_by_layer(model, (4, 1, 8, 8))["flops"].tolist()
    linear = df.iloc[7]                                       # Linear(128, 10) on 4 samples
    moved = 4 * 128 * 4 + 4 * 10 * 4 + (128 * 10 + 10) * 4
    assert linear["bytes_moved"] == moved and linear["intensity"] == pytest.approx(linear["flops"] / moved)
    assert linear["gflops"] == pytest.approx(linear["flops"] / (linear["time_ms"] * 1e6))
    ridge = 100.0 / 10.0
    for row in df.itertuples():
        assert row.bound == (COMPUTE_BOUND if row.intensity >= ridge else MEMORY_BOUND)
        assert row.attainable_gflops == pytest.approx(min(100.0, row.intensity * 10.0))


def test_profile_layer_returns_one_row_and_rejects_containers():
    layer = Linear(32, 16, rng=0)
    row = profile_layer(layer, Tensor.randn(8, 32, rng=1), repeats=3, peak=FAKE_PEAK)
    assert set(row) == set(PROFILE_COLUMNS) and row["layer"] == "Linear"
    assert row["flops"] == 2 * 8 * 32 * 16 + 8 * 16
    assert row["bytes_moved"] == 8 * 32 * 4 + 8 * 16 * 4 + (32 * 16 + 16) * 4
    with pytest.raises(ValueError, match="profile_forward_pass"):
        profile_layer(load_model("digits_mlp"), Tensor.zeros(1, 64), peak=FAKE_PEAK)


def test_profiler_methods_use_the_peak_kept_on_the_profiler():
    profiler = Profiler()
    profiler.peak = dict(FAKE_PEAK)
    df = profiler.profile_forward_pass(load_model("digits_mlp"), Tensor.zeros(2, 64), repeats=3)
    assert df.attrs["peak"] == FAKE_PEAK
    assert "100.0 GFLOP/s" in repr(profiler) and "none yet" in repr(profiler)


# ---------------------------------------------------------------- roofline: pure classification

def test_classify_roofline_by_hand():
    assert classify_roofline(1000, 1000, 100.0, 20.0) == {
        "intensity": 1.0, "ridge": 5.0, "attainable_gflops": 20.0, "bound": MEMORY_BOUND}
    assert classify_roofline(1000, 100, 100.0, 20.0) == {
        "intensity": 10.0, "ridge": 5.0, "attainable_gflops": 100.0, "bound": COMPUTE_BOUND}
    assert classify_roofline(500, 100, 100.0, 20.0)["bound"] == COMPUTE_BOUND      # on the ridge
    assert classify_roofline(0, 100, 100.0, 20.0)["attainable_gflops"] == 0.0


@pytest.mark.parametrize("args", [(10, 0, 1.0, 1.0), (-1, 10, 1.0, 1.0), (10, 10, 0.0, 1.0), (10, 10, 1.0, -2.0)])
def test_classify_roofline_rejects_impossible_numbers(args):
    with pytest.raises(ValueError, match="classify_roofline"):
        classify_roofline(*args)


@PROPERTY
@given(st.integers(0, 10 ** 12), st.integers(1, 10 ** 12), st.floats(0.1, 1e5), st.floats(0.1, 1e4))
def test_roofline_laws(flops, moved, peak, bandwidth):
    roof = classify_roofline(flops, moved, peak, bandwidth)
    assert roof["attainable_gflops"] <= peak * (1 + 1e-12)
    assert roof["attainable_gflops"] <= roof["intensity"] * bandwidth * (1 + 1e-12)
    assert (roof["bound"] == COMPUTE_BOUND) == (roof["intensity"] >= roof["ridge"])
    if roof["bound"] == COMPUTE_BOUND:
        assert roof["attainable_gflops"] == peak


# ---------------------------------------------------------------- the cached machine peak

@pytest.fixture
def fake_measurements(monkeypatch, tmp_path):
    """Counting stand-ins for the two measuring functions; the cache in tmp_path."""
    counts = {"matmul": 0, "copy": 0}

    def matmul():
        counts["matmul"] += 1
        return {"gflops": 50.0 * counts["matmul"], "size": 1024}

    def copy():
        counts["copy"] += 1
        return {"gbs": 5.0, "bytes": 1}

    monkeypatch.setattr(prof, "measure_matmul_peak", matmul)
    monkeypatch.setattr(prof, "measure_copy_bandwidth", copy)
    monkeypatch.setenv("TINYTORCH_CACHE_DIR", str(tmp_path))
    return counts, tmp_path / prof.PEAK_CACHE_FILE


def test_peak_is_measured_then_written_then_reused(fake_measurements):
    counts, path = fake_measurements
    first = measure_machine_peak()
    assert counts == {"matmul": 1, "copy": 1} and first["source"] == "measured"
    assert first["peak_gflops"] == 50.0 and first["ridge_flops_per_byte"] == 10.0
    document = json.loads(path.read_text())
    assert document["peak_gflops"] == 50.0 and document["environment"] == prof.machine_environment()
    for key in ("numpy", "cpu_model", "logical_cores", "blas_threads", "python"):
        assert key in document["environment"]
    second = measure_machine_peak()
    assert counts == {"matmul": 1, "copy": 1} and second["source"] == "cache"
    assert second["peak_gflops"] == 50.0 and "matches" in second["reason"]


def test_peak_is_measured_again_when_the_environment_differs(fake_measurements, monkeypatch):
    counts, path = fake_measurements
    measure_machine_peak()
    other = {**prof.machine_environment(), "numpy": "0.0.1"}
    monkeypatch.setattr(prof, "machine_environment", lambda: other)
    again = measure_machine_peak()
    assert counts["matmul"] == 2 and again["source"] == "measured" and "numpy" in again["reason"]
    assert again["peak_gflops"] == 100.0 and json.loads(path.read_text())["environment"] == other
    assert measure_machine_peak()["source"] == "cache" and counts["matmul"] == 2


def test_refresh_forces_a_new_measurement_and_profiler_keeps_its_peak(fake_measurements):
    counts, _ = fake_measurements
    measure_machine_peak()
    assert measure_machine_peak(refresh=True)["source"] == "measured" and counts["matmul"] == 2
    profiler = Profiler()
    assert profiler.machine_peak()["source"] == "cache"
    profiler.machine_peak()
    assert counts["matmul"] == 2
    assert profiler.machine_peak(refresh=True)["peak_gflops"] == 150.0


def test_an_unreadable_cache_is_measured_again_and_says_why(fake_measurements):
    counts, path = fake_measurements
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    result = measure_machine_peak()
    assert result["source"] == "measured" and "unreadable" in result["reason"] and counts["matmul"] == 1


def test_cache_directory_argument_and_default(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYTORCH_CACHE_DIR", raising=False)
    assert prof.cache_dir() == prof.Path.home() / ".cache" / "tinytorch"
    monkeypatch.setenv("TINYTORCH_CACHE_DIR", str(tmp_path / "x"))
    assert prof.cache_dir() == tmp_path / "x"


def test_the_real_measuring_functions_report_their_samples():
    matmul = prof.measure_matmul_peak(size=64, repeats=2)
    copy = prof.measure_copy_bandwidth(megabytes=1, repeats=2)
    assert matmul["gflops"] == pytest.approx(2 * 64 ** 3 / matmul["median_ns"]) and len(matmul["samples_ns"]) == 2
    assert copy["gbs"] == pytest.approx(2 * 2 ** 20 / copy["median_ns"]) and copy["bytes"] == 2 ** 20


# ---------------------------------------------------------------- backward pass

def test_profile_backward_pass_runs_a_real_backward_and_zeroes_between_steps():
    model = Sequential(Linear(6, 5, rng=0), ReLU(), Linear(5, 3, rng=1))
    x = Tensor.randn(4, 6, rng=2)
    report = Profiler().profile_backward_pass(model, x, repeats=3)
    for key in ("no_grad_ms", "forward_ms", "forward_backward_ms", "backward_ms", "backward_over_forward",
                "forward_peak_bytes", "forward_backward_peak_bytes", "loss", "method"):
        assert key in report
    assert report["repeats"] == 3 and report["forward_backward_peak_bytes"] > 0
    got = [p.grad.data.copy() for p in model.parameters()]
    model.zero_grad()
    logits = model(x)
    logits_np = logits.data.astype(np.float64)
    labels = np.arange(4) % 3
    shifted = logits_np - logits_np.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert report["loss"] == pytest.approx(-log_probs[np.arange(4), labels].mean(), rel=1e-5)
    prof.CrossEntropyLoss()(logits, Tensor(labels, dtype=np.int64)).backward()
    for g, param in zip(got, model.parameters()):
        np.testing.assert_allclose(g, param.grad.data, rtol=1e-6)


def test_profile_backward_pass_with_another_loss_needs_targets():
    model = Sequential(Linear(3, 2, rng=0))
    x = Tensor.randn(5, 3, rng=1)
    with pytest.raises(ValueError, match="pass targets"):
        profile_backward_pass(model, x, loss_fn=MSELoss())
    report = profile_backward_pass(model, x, loss_fn=MSELoss(), targets=Tensor.zeros(5, 2), repeats=2)
    assert report["loss"] == pytest.approx(float(np.mean(model(x).data.astype(np.float64) ** 2)), rel=1e-5)
    with pytest.raises(TypeError, match="Module"):
        profile_backward_pass(ReLU(), x)


# ---------------------------------------------------------------- plot

def test_roofline_plot_writes_a_png_and_never_overwrites_silently(tmp_path):
    df = profile_forward_pass(load_model("digits_cnn"), Tensor.zeros(2, 1, 8, 8), repeats=2, peak=FAKE_PEAK)
    path = roofline_plot(df, FAKE_PEAK, tmp_path / "plots" / "roof.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        roofline_plot(df, FAKE_PEAK, path)
    assert roofline_plot(df, FAKE_PEAK, path, overwrite=True) == path
    with pytest.raises(ValueError, match="FLOPs > 0"):
        roofline_plot(df[df["flops"] == 0], FAKE_PEAK, tmp_path / "empty.png")
