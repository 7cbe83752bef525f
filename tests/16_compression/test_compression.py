"""Tests of the exported tinytorch.optimization.compression (Module 16).

Oracles: numpy sorts and norms written independently, hand-computed CSR arrays and byte
counts, scipy.sparse, numpy's SVD, explicit zeroing of channels, and central finite
differences of the distillation loss.
"""
import io

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Module, Parameter, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.models.zoo import load_model
from tinytorch.optimization.compression import (
    MaskedOptimizer, PruningMask, SparseConv2d, SparseLinear, bootstrap_ratio_ci, break_even_sparsity,
    channel_plan, compression_report, csr_nbytes, distill, distillation_loss, fine_tune, keep_mask,
    layer_masks, low_rank, magnitude_prune, model_bytes, prune_channels, serialized_size, sparsity_report,
    student_cnn, to_csr, to_sparse, zero_channels)
from tinytorch.profiling.profiler import storage_bytes

PROPERTY = settings(max_examples=30, deadline=None, database=None)


def small_mlp():
    return Sequential(Linear(10, 8, rng=0), ReLU(), Linear(8, 4, rng=1))


def small_cnn():
    return Sequential(Conv2d(1, 6, 3, padding=1, rng=0), ReLU(), MaxPool2d(2),
                      Conv2d(6, 8, 3, padding=1, rng=1), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(8 * 2 * 2, 5, rng=2))


# ---------------------------------------------------------------- magnitude pruning
@PROPERTY
@given(st.floats(0.0, 0.99), st.sampled_from(["layer", "global"]))
def test_pruning_counts_exact(sparsity, scope):
    pruned = magnitude_prune(small_mlp(), sparsity, scope)
    weights = [pruned[0].weight.data, pruned[2].weight.data]
    zeros = [int(np.count_nonzero(w == 0)) for w in weights]
    if scope == "layer":
        assert zeros == [round(sparsity * w.size) for w in weights]
    else:
        assert sum(zeros) == round(sparsity * sum(w.size for w in weights))


def test_layer_and_global_thresholds_match_numpy_oracle():
    model = small_mlp()
    w = [model[0].weight.data.copy(), model[2].weight.data.copy()]
    layer = magnitude_prune(model, 0.6, "layer")
    for original, pruned in zip(w, [layer[0].weight.data, layer[2].weight.data]):
        k = round(0.6 * original.size)
        cut = np.sort(np.abs(original).ravel())[k - 1]
        assert np.array_equal(pruned, np.where(np.abs(original) > cut, original, 0))
    glob = magnitude_prune(model, 0.6, "global")
    everything = np.concatenate([np.abs(a).ravel() for a in w])
    cut = np.sort(everything)[round(0.6 * everything.size) - 1]
    for original, pruned in zip(w, [glob[0].weight.data, glob[2].weight.data]):
        assert np.array_equal(pruned, np.where(np.abs(original) > cut, original, 0))
    # global removes different amounts per layer here; biases are never pruned
    assert np.array_equal(glob[0].bias.data, model[0].bias.data)


def test_original_untouched_and_report():
    model = small_mlp()
    before = model.state_dict()
    pruned = magnitude_prune(model, 0.5)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    report = sparsity_report(pruned)
    assert report["weight"].tolist() == ["0.weight", "2.weight", "total"]
    assert report["zeros"].tolist() == [40, 16, 56]
    assert report["sparsity"].iloc[-1] == pytest.approx(56 / 112)
    assert "sparsity=0.500" in repr(pruned.pruning_mask)


def test_keep_mask_ties_by_position():
    assert keep_mask(np.array([[2.0, 1.0], [1.0, 1.0]]), 2).tolist() == [[True, False], [False, True]]


def test_masks_survive_optimizer_steps():
    model = magnitude_prune(small_mlp(), 0.7)
    opt = MaskedOptimizer(Adam(model.parameters(), lr=0.1), model.pruning_mask)
    x, y = Tensor(np.random.default_rng(0).standard_normal((16, 10))), Tensor(np.arange(16) % 4, dtype=np.int64)
    for _ in range(3):
        opt.zero_grad()
        CrossEntropyLoss()(model(x), y).backward()
        opt.step()
    for _, param, mask in model.pruning_mask.entries:
        assert np.all(param.data[~mask] == 0) and np.all(param.data[mask] != 0)
    assert opt.lr == 0.1 and "MaskedOptimizer" in repr(opt)


def test_fine_tune_keeps_mask_and_lowers_loss():
    model = magnitude_prune(load_model("digits_cnn"), 0.8)
    history = fine_tune(model, 2, lr=3e-3, limit=256)
    assert history[1]["loss"] < history[0]["loss"]
    assert sparsity_report(model)["zeros"].tolist()[:-1] == [round(0.8 * n) for n in (144, 4608, 1280)]


# ---------------------------------------------------------------- CSR
def test_to_csr_hand_computed_and_scipy():
    m = np.array([[0, 1.5, 0, 0], [0, 0, 0, 0], [2, 0, 0, -3]], dtype=np.float32)
    data, indices, indptr = to_csr(m)
    assert data.tolist() == [1.5, 2, -3] and indices.tolist() == [1, 0, 3] and indptr.tolist() == [0, 1, 1, 3]
    assert (data.dtype, indices.dtype, indptr.dtype) == (np.float32, np.int32, np.int32)
    ref = scipy.sparse.csr_matrix(np.random.default_rng(0).standard_normal((7, 5)) * (np.arange(35).reshape(7, 5) % 3 == 0))
    got = to_csr(ref.toarray())
    assert np.allclose(got[0], ref.data) and np.array_equal(got[1], ref.indices) and np.array_equal(got[2], ref.indptr)


def test_sparse_linear_exact_and_bytes():
    dense = magnitude_prune(Linear(40, 30, rng=0), 0.75)
    sparse = SparseLinear(dense)
    x = Tensor(np.random.default_rng(1).standard_normal((6, 40)))
    assert np.allclose(sparse(x).data, dense(x).data, atol=1e-5)
    nnz = 40 * 30 - round(0.75 * 1200)
    assert sparse.data.size == nnz
    assert storage_bytes(sparse) == nnz * 4 + nnz * 4 + 31 * 4 + 30 * 4 == sparse.nbytes_total()
    assert csr_nbytes(30, nnz) == nnz * 8 + 31 * 4
    assert model_bytes(sparse) == storage_bytes(sparse)
    assert "nnz=300" in repr(sparse)


def test_sparse_conv_exact():
    conv = magnitude_prune(Conv2d(3, 5, 3, stride=2, padding=1, rng=0), 0.6)
    x = Tensor(np.random.default_rng(2).standard_normal((2, 3, 7, 7)))
    with no_grad():
        assert np.allclose(SparseConv2d(conv)(x).data, conv(x).data, atol=1e-5)


def test_break_even_and_serialized_size():
    assert break_even_sparsity(10, 128) == pytest.approx(0.5 + 11 / 2560)
    assert break_even_sparsity(1000, 1000) == pytest.approx(0.5005)
    base = Linear(100, 100, rng=0)
    low, high = magnitude_prune(base, 0.45), magnitude_prune(base, 0.6)
    assert storage_bytes(SparseLinear(low)) > low.weight.data.nbytes + low.bias.data.nbytes
    assert storage_bytes(SparseLinear(high)) < high.weight.data.nbytes + high.bias.data.nbytes
    buffer = io.BytesIO()
    np.savez(buffer, **{"weight": base.weight.data, "bias": base.bias.data})
    assert serialized_size(base) == buffer.getbuffer().nbytes
    assert serialized_size(SparseLinear(high)) < serialized_size(high)


def test_to_sparse_model_matches_dense():
    model = magnitude_prune(small_cnn(), 0.6)
    sparse = to_sparse(model)
    x = Tensor(np.random.default_rng(3).standard_normal((4, 1, 8, 8)))
    with no_grad():
        assert np.allclose(sparse(x).data, model(x).data, atol=1e-5)


# ---------------------------------------------------------------- channel pruning
def test_channel_pruning_shapes_params_and_equivalence():
    model = small_cnn()
    plan = channel_plan(model, 0.5)
    for index, kept in plan.items():
        norms = np.abs(model[index].weight.data).sum(axis=(1, 2, 3))
        assert sorted(kept.tolist()) == sorted(np.argsort(-norms)[:len(kept)].tolist())
    slim = prune_channels(model, 0.5)
    assert [p.shape for p in slim.parameters()] == [(3, 1, 3, 3), (3,), (4, 3, 3, 3), (4,), (16, 5), (5,)]
    assert sum(p.size for p in slim.parameters()) == 30 + 112 + 85
    x = Tensor(np.random.default_rng(4).standard_normal((3, 1, 8, 8)))
    with no_grad():
        assert np.allclose(slim(x).data, zero_channels(model, 0.5)(x).data, atol=1e-5)
    assert model[0].weight.shape == (6, 1, 3, 3)  # original untouched


def test_channel_pruning_digits_cnn():
    cnn = load_model("digits_cnn")
    slim = prune_channels(cnn, 0.5)
    assert [p.shape for p in slim.parameters()] == [(8, 1, 3, 3), (8,), (16, 8, 3, 3), (16,), (64, 10), (10,)]
    x = Tensor(np.random.default_rng(5).random((8, 1, 8, 8)))
    with no_grad():
        assert np.allclose(slim(x).data, zero_channels(cnn, 0.5)(x).data, atol=1e-5)


def test_last_conv_kept_when_it_is_the_output():
    model = Sequential(Conv2d(1, 4, 3, rng=0), ReLU(), Conv2d(4, 2, 3, rng=1))
    assert list(channel_plan(model, 0.5)) == [0]
    assert prune_channels(model, 0.5)[2].weight.shape == (2, 2, 3, 3)


# ---------------------------------------------------------------- low rank
def test_low_rank_exact_and_error_decreases():
    lin = Linear(9, 7, rng=0)
    x = Tensor(np.random.default_rng(6).standard_normal((3, 9)))
    assert np.allclose(low_rank(lin, 7)(x).data, lin(x).data, atol=1e-5)
    errors = [low_rank(lin, r).reconstruction_error for r in range(1, 8)]
    assert all(a > b for a, b in zip(errors, errors[1:])) and errors[-1] < 1e-6
    f = low_rank(lin, 3)
    approx = f[0].weight.data @ f[1].weight.data
    assert np.linalg.norm(lin.weight.data - approx) / np.linalg.norm(lin.weight.data) == pytest.approx(
        f.reconstruction_error, rel=1e-4)
    assert f[0].weight.shape == (9, 3) and f[1].weight.shape == (3, 7) and f[0].bias is None


# ---------------------------------------------------------------- distillation
def test_distillation_gradient_finite_differences():
    rng = np.random.default_rng(7)
    s, t, y = rng.standard_normal((4, 5)), rng.standard_normal((4, 5)), np.array([0, 4, 2, 2])
    student = Tensor(s, dtype=np.float64, requires_grad=True)
    distillation_loss(student, t, y, 3.0, 0.4).backward()
    numeric = np.zeros_like(s)
    for i, j in np.ndindex(*s.shape):
        plus, minus = s.copy(), s.copy()
        plus[i, j] += 1e-6
        minus[i, j] -= 1e-6
        f = [float(distillation_loss(Tensor(v, dtype=np.float64), t, y, 3.0, 0.4).item()) for v in (plus, minus)]
        numeric[i, j] = (f[0] - f[1]) / 2e-6
    assert np.allclose(student.grad.data, numeric, atol=1e-6)


def test_distillation_loss_value():
    s, t, y = np.array([[1.0, 0.0, -1.0]]), np.array([[0.0, 2.0, 0.0]]), np.array([2])
    T, alpha = 2.0, 0.3
    ps, pt = np.exp(s / T) / np.exp(s / T).sum(), np.exp(t / T) / np.exp(t / T).sum()
    kl = (pt * np.log(pt / ps)).sum()
    ce = -np.log(np.exp(s[0, 2]) / np.exp(s).sum())
    got = float(distillation_loss(Tensor(s, dtype=np.float64), t, y, T, alpha).item())
    assert got == pytest.approx(alpha * T * T * kl + (1 - alpha) * ce, rel=1e-9)


def test_distill_lowers_loss():
    student = student_cnn(0)
    assert sum(p.size for p in student.parameters()) * 2 <= sum(p.size for p in load_model("digits_cnn").parameters())
    losses = distill(load_model("digits_cnn"), student, 2, limit=256)
    assert losses[1] < losses[0]


# ---------------------------------------------------------------- report and statistics
def test_bootstrap_ratio_ci_contains_ratio():
    a, b = np.arange(1, 21) * 2.0, np.arange(1, 21) * 1.0
    ratio, low, high = bootstrap_ratio_ci(a, b)
    assert ratio == pytest.approx(2.0) and low <= ratio <= high
    assert bootstrap_ratio_ci(a, b, seed=1) == bootstrap_ratio_ci(a, b, seed=1)


def test_compression_report_on_given_models():
    cnn = load_model("digits_cnn")
    table = compression_report({"baseline": cnn, "slim": prune_channels(cnn, 0.5)}, repeats=5, verbose=False)
    assert list(table.index) == ["baseline", "slim"]
    assert table.loc["baseline", "param_bytes"] == 6090 * 4
    assert table.loc["slim", "param_bytes"] == (72 + 8 + 1152 + 16 + 640 + 10) * 4
    assert table.loc["baseline", "acc_low"] <= table.loc["baseline", "accuracy"] <= table.loc["baseline", "acc_high"]
    assert np.isnan(table.loc["baseline", "p_value"]) and 0 <= table.loc["slim", "p_value"] <= 1
    assert table.loc["slim", "p_bonferroni"] == pytest.approx(min(table.loc["slim", "p_value"] * 1, 1.0))
    assert table.loc["slim", "significant"] == bool(
        table.loc["slim", "p_bonferroni"] < 0.05 and (table.loc["slim", "speedup_low"] > 1 or table.loc["slim", "speedup_high"] < 1))
    with pytest.raises(ValueError, match="baseline"):
        compression_report({"a": cnn}, repeats=3, verbose=False)


# ---------------------------------------------------------------- errors
class Odd(Module):
    def __init__(self):
        super().__init__()
        self.scale = Parameter(np.ones(3))

    def forward(self, x):
        return x * self.scale


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, True, "0.5", None])
def test_bad_sparsity(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        magnitude_prune(small_mlp(), bad)
    with pytest.raises(ValueError, match="fraction"):
        prune_channels(small_cnn(), bad)


def test_other_errors():
    with pytest.raises(ValueError, match="scope"):
        magnitude_prune(small_mlp(), 0.5, scope="row")
    with pytest.raises(ValueError, match=r"1 \(Odd\)"):
        magnitude_prune(Sequential(Linear(3, 3), Odd()), 0.5)
    with pytest.raises(ValueError, match="Odd"):
        prune_channels(Sequential(Conv2d(1, 2, 3), Odd()), 0.5)
    with pytest.raises(TypeError, match="Sequential"):
        prune_channels(Linear(2, 2), 0.5)
    with pytest.raises(ValueError, match="2-D"):
        to_csr(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"\[1, 4\]"):
        low_rank(Linear(4, 6), 5)
    with pytest.raises(ValueError, match=r"\[1, 4\]"):
        low_rank(Linear(4, 6), 0)
    with pytest.raises(TypeError, match="integer"):
        low_rank(Linear(4, 6), 2.0)
    with pytest.raises(TypeError, match="Linear"):
        low_rank(Conv2d(1, 1, 1), 1)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(Tensor(np.zeros((1, 2))), np.zeros((1, 2)), [0], 0.0, 0.5)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(Tensor(np.zeros((1, 2))), np.zeros((1, 2)), [0], 1.0, 1.5)
    with pytest.raises(ValueError, match=r"\(1, 2\) and \(1, 3\)"):
        distillation_loss(Tensor(np.zeros((1, 2))), np.zeros((1, 3)), [0])
    with pytest.raises(ValueError, match="shape"):
        PruningMask([("w", Parameter(np.ones(3)), np.ones(2, dtype=bool))])
    with pytest.raises(TypeError, match="PruningMask"):
        MaskedOptimizer(Adam([Parameter(np.ones(2))]), None)
