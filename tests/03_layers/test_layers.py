"""Tests of the exported tinytorch.core.layers (Module 03).

Oracles: numpy computations from the layers' own parameter arrays, numpy Generators seeded
like the layers, binomial variances for dropout, and hand-written names, counts and strings.
"""
import copy
import math
import re

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.layers import Dropout, Linear, Module, Parameter, Sequential
from tinytorch.core.tensor import Tensor

PROPERTY = settings(max_examples=30, deadline=None, database=None)


class LocalReLU:
    """A stand-in activation like module 02's: a plain callable class, not a Module."""

    def forward(self, x):
        return x * Tensor.from_numpy((x.data > 0).astype(x.dtype))

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self):
        return "ReLU()"


class Affine(Module):
    """A small user-defined module: a scale Parameter, a child Linear, a shift Parameter."""

    def __init__(self):
        super().__init__()
        self.scale = Parameter([2.0])
        self.inner = Linear(2, 2, rng=0)
        self.shift = Parameter(np.zeros(2))

    def forward(self, x):
        return self.inner(x) * self.scale + self.shift


def names(module):
    return [name for name, _ in module.named_parameters()]


def nested_model():
    return Sequential(Linear(4, 3, rng=0), Sequential(Linear(3, 2, rng=1), Dropout()), Linear(2, 1, rng=2))


# ---------------------------------------------------------------- Parameter

def test_parameter_is_a_tensor_that_copies_and_defaults_to_float32():
    source = np.array([[1, 2], [3, 4]], dtype=np.int64)
    p = Parameter(source)
    assert isinstance(p, Tensor) and type(p) is Parameter
    assert p.dtype == np.float32 and p.shape == (2, 2)
    source[0, 0] = 99
    assert p.data[0, 0] == 1.0
    assert Parameter([1, 2], dtype=np.float64).dtype == np.float64
    assert Parameter(Tensor([1.0])).tolist() == [1.0]


def test_parameter_repr():
    assert repr(Parameter([1.0, 2.0])) == "Parameter([1., 2.], shape=(2,), dtype=float32)"
    big = repr(Parameter(np.zeros((64, 128))))
    assert big.startswith("Parameter(") and "shape=(64, 128)" in big and "..." in big


@pytest.mark.parametrize("op", [
    lambda p: p + 1.0, lambda p: 2.0 * p, lambda p: p @ p, lambda p: -p, lambda p: p.reshape(-1),
    lambda p: p.transpose(), lambda p: p[0], lambda p: p.sum(), lambda p: p / Tensor([[2.0]]),
])
def test_operations_on_parameters_return_plain_tensors(op):
    result = op(Parameter([[1.0, 2.0], [3.0, 4.0]]))
    assert type(result) is Tensor


def test_parameter_rejects_what_tensor_rejects():
    with pytest.raises(TypeError, match="numeric"):
        Parameter("abc")
    with pytest.raises(ValueError, match="rectangular"):
        Parameter([[1.0], [2.0, 3.0]])


# ---------------------------------------------------------------- registration

def test_setattr_registers_parameters_and_children_in_order():
    m = Affine()
    assert list(m._parameters) == ["scale", "shift"]
    assert list(m._modules) == ["inner"]
    assert m.training is True


def test_plain_values_and_plain_tensors_are_not_registered():
    m = Module()
    m.note = "text"
    m.buffer = Tensor([1.0, 2.0])
    m.numbers = [Parameter([1.0])]
    assert m._parameters == {} and m._modules == {}
    assert m.parameters() == []


def test_reassigning_keeps_the_position():
    m = Affine()
    new_scale = Parameter([5.0])
    m.scale = new_scale
    assert list(m._parameters) == ["scale", "shift"] and m.scale is new_scale
    assert m.parameters()[0] is new_scale


def test_assigning_a_non_parameter_unregisters():
    m = Affine()
    m.shift = None
    assert list(m._parameters) == ["scale"] and m.shift is None
    m.inner = "gone"
    assert m._modules == {}
    assert names(m) == ["scale"]


def test_switching_between_parameter_and_module():
    m = Affine()
    m.inner = Parameter([1.0])
    assert "inner" not in m._modules and list(m._parameters) == ["scale", "shift", "inner"]
    m.scale = Linear(1, 1)
    assert list(m._parameters) == ["shift", "inner"] and list(m._modules) == ["scale"]


def test_delattr_unregisters():
    m = Affine()
    del m.scale
    del m.inner
    assert list(m._parameters) == ["shift"] and m._modules == {}
    assert not hasattr(m, "scale")


def test_assignment_before_module_init_names_the_fix():
    class Forgetful(Module):
        def __init__(self):
            self.weight = Parameter([1.0])

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\).*Forgetful"):
        Forgetful()


def test_forward_not_implemented_names_the_subclass():
    class NoForward(Module):
        pass

    with pytest.raises(NotImplementedError, match="NoForward"):
        NoForward()(Tensor([1.0]))
    with pytest.raises(NotImplementedError, match="Module"):
        Module().forward()


def test_call_delegates_args_and_kwargs_to_forward():
    class Echo(Module):
        def forward(self, *args, **kwargs):
            return args, kwargs

    assert Echo()(1, 2, key="v") == ((1, 2), {"key": "v"})


# ---------------------------------------------------------------- traversal

def test_nested_sequential_names_and_counts():
    model = nested_model()
    assert names(model) == ["0.weight", "0.bias", "1.0.weight", "1.0.bias", "2.weight", "2.bias"]
    shapes = [p.shape for p in model.parameters()]
    assert shapes == [(4, 3), (3,), (3, 2), (2,), (2, 1), (1,)]
    assert sum(p.size for p in model.parameters()) == (4 * 3 + 3) + (3 * 2 + 2) + (2 * 1 + 1)
    assert all(type(p) is Parameter for p in model.parameters())


def test_named_parameters_are_the_attribute_objects():
    model = nested_model()
    named = dict(model.named_parameters())
    assert named["1.0.weight"] is model[1][0].weight
    assert named["2.bias"] is model[2].bias


def test_own_parameters_come_before_childrens():
    assert names(Affine()) == ["scale", "shift", "inner.weight", "inner.bias"]


def test_children_and_modules():
    model = nested_model()
    assert [name for name, _ in model.named_children()] == ["0", "1", "2"]
    assert model.children() == [model[0], model[1], model[2]]
    assert [name for name, _ in model.named_modules()] == ["", "0", "1", "1.0", "1.1", "2"]
    assert model.modules()[0] is model and model.modules()[4] is model[1][1]
    assert Linear(2, 2).children() == []


def test_shared_parameter_counted_once():
    model = Sequential(Linear(3, 3, rng=0), Linear(3, 3, rng=1))
    model[1].weight = model[0].weight
    assert names(model) == ["0.weight", "0.bias", "1.bias"]
    assert sum(p.size for p in model.parameters()) == 9 + 3 + 3


def test_shared_module_counted_once():
    shared = Linear(2, 2)
    model = Sequential(shared, LocalReLU(), shared)
    assert names(model) == ["0.weight", "0.bias"]
    assert model.children() == [shared]
    assert len(model.modules()) == 2


def test_a_cycle_does_not_recurse_forever():
    a, b = Affine(), Affine()
    a.partner = b
    b.partner = a
    assert len(a.modules()) == 4  # a, a.inner, b, b.inner
    assert len(a.parameters()) == 8


def test_deepcopy_gives_independent_registered_parameters():
    model = nested_model()
    clone = copy.deepcopy(model)
    assert names(clone) == names(model)
    for original, copied in zip(model.parameters(), clone.parameters()):
        assert copied is not original
        np.testing.assert_array_equal(copied.data, original.data)
    clone[0].weight.data[...] = 0.0
    assert model[0].weight.data.any()


# ---------------------------------------------------------------- train / eval

def test_training_is_true_after_construction():
    assert all(m.training for m in nested_model().modules())


def test_train_and_eval_propagate_and_return_self():
    model = nested_model()
    assert model.eval() is model
    assert [m.training for m in model.modules()] == [False] * 6
    assert model.train() is model
    assert all(m.training for m in model.modules())
    assert model.train(False) is model and not model[1][1].training


def test_train_on_a_subtree_only_changes_that_subtree():
    model = nested_model()
    model[1].eval()
    assert [m.training for m in model.modules()] == [True, True, False, False, False, True]


@pytest.mark.parametrize("mode", ["False", 0, 1, None, np.True_])
def test_train_mode_must_be_bool(mode):
    with pytest.raises(TypeError, match="True or False"):
        nested_model().train(mode)


# ---------------------------------------------------------------- state_dict / load_state_dict

def test_state_dict_is_a_copy_in_named_parameters_order():
    model = nested_model()
    state = model.state_dict()
    assert list(state) == names(model)
    for (name, param), (key, value) in zip(model.named_parameters(), state.items()):
        assert isinstance(value, np.ndarray) and value is not param.data
        assert not np.shares_memory(value, param.data)
        np.testing.assert_array_equal(value, param.data)
    model[0].bias.data[...] = 42.0
    assert not np.any(state["0.bias"] == 42.0)


def test_state_dict_round_trip_gives_identical_outputs():
    a = Sequential(Linear(5, 8, rng=0), LocalReLU(), Linear(8, 3, rng=1))
    b = Sequential(Linear(5, 8, rng=10), LocalReLU(), Linear(8, 3, rng=11))
    x = Tensor.randn(16, 5, rng=3)
    assert not np.allclose(a(x).data, b(x).data)
    assert b.load_state_dict(a.state_dict()) == ([], [])
    np.testing.assert_array_equal(b(x).data, a(x).data)


def test_load_writes_in_place_so_held_references_stay_valid():
    model = nested_model()
    params_before = model.parameters()
    arrays_before = [p.data for p in params_before]
    model.load_state_dict({name: np.full(value.shape, 0.5) for name, value in model.state_dict().items()})
    for param, before, array in zip(model.parameters(), params_before, arrays_before):
        assert param is before and param.data is array
        assert np.all(array == 0.5)


def test_load_casts_to_the_parameter_dtype_and_accepts_tensors_and_lists():
    model = Linear(2, 2)
    model.load_state_dict({"weight": np.array([[1, 2], [3, 4]], dtype=np.int64),
                           "bias": Tensor([0.25, 0.5], dtype=np.float64)})
    assert model.weight.dtype == np.float32 and model.bias.dtype == np.float32
    assert model.weight.tolist() == [[1.0, 2.0], [3.0, 4.0]] and model.bias.tolist() == [0.25, 0.5]
    model.load_state_dict({"weight": [[0, 0], [0, 0]], "bias": [1, 1]})
    assert model.weight.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_strict_load_lists_missing_and_unexpected_keys_sorted():
    model = nested_model()
    state = model.state_dict()
    state["1.0.W"] = state.pop("1.0.weight")
    state["extra"] = np.zeros(1)
    del state["0.bias"]
    pattern = (r"missing keys \['0.bias', '1.0.weight'\], "
               r"unexpected keys \['1.0.W', 'extra'\]")
    with pytest.raises(ValueError, match=pattern):
        model.load_state_dict(state)


def test_strict_load_mentions_both_sets_even_when_one_is_empty():
    model = Linear(2, 2)
    with pytest.raises(ValueError, match=r"missing keys \['bias'\], unexpected keys \[\]"):
        model.load_state_dict({"weight": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"missing keys \[\], unexpected keys \['more'\]"):
        model.load_state_dict(dict(model.state_dict(), more=np.zeros(1)))


def test_shape_mismatch_names_key_and_both_shapes():
    model = nested_model()
    state = model.state_dict()
    state["1.0.weight"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"'1.0.weight'.*\(2, 3\).*\(3, 2\)"):
        model.load_state_dict(state)


def test_failed_load_changes_nothing():
    model = nested_model()
    before = model.state_dict()
    bad = {name: np.zeros_like(value) for name, value in before.items()}
    bad["2.bias"] = np.zeros(7)  # the last key is bad; the earlier ones must not be written
    with pytest.raises(ValueError, match="shape mismatch"):
        model.load_state_dict(bad)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_non_strict_loads_the_intersection_and_reports_the_rest():
    model = nested_model()
    original = model.state_dict()
    missing, unexpected = model.load_state_dict({"2.bias": np.array([9.0]), "zzz": 1.0, "aaa": 2.0},
                                                strict=False)
    assert missing == ["0.bias", "0.weight", "1.0.bias", "1.0.weight", "2.weight"]
    assert unexpected == ["aaa", "zzz"]
    assert model[2].bias.tolist() == [9.0]
    np.testing.assert_array_equal(model[0].weight.data, original["0.weight"])


def test_non_strict_still_checks_shapes():
    with pytest.raises(ValueError, match=r"'bias'.*\(3,\).*\(2,\)"):
        Linear(2, 2).load_state_dict({"bias": np.zeros(3)}, strict=False)


def test_load_rejects_non_mappings_and_non_numeric_values():
    with pytest.raises(TypeError, match="dict"):
        Linear(2, 2).load_state_dict([("bias", np.zeros(2))])
    with pytest.raises(TypeError, match="'bias'.*numeric"):
        Linear(2, 2).load_state_dict({"bias": np.array(["a", "b"])}, strict=False)


def test_shared_parameter_is_saved_once_and_loads():
    model = Sequential(Linear(3, 3), Linear(3, 3))
    model[1].weight = model[0].weight
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.bias"]
    state["0.weight"] = np.eye(3)
    model.load_state_dict(state)
    assert model[1].weight.tolist() == np.eye(3).tolist()


# ---------------------------------------------------------------- Linear

@pytest.mark.parametrize("in_features, out_features, batch_shape", [
    (1, 1, (1,)), (4, 3, (5,)), (64, 32, (8,)), (7, 2, (2, 3)), (3, 5, ()), (6, 4, (2, 1, 3)),
])
def test_linear_matches_numpy_oracle(in_features, out_features, batch_shape):
    layer = Linear(in_features, out_features, rng=0)
    x = np.random.default_rng(1).standard_normal((*batch_shape, in_features)).astype(np.float32)
    out = layer(Tensor(x))
    expected = x @ layer.weight.data + layer.bias.data
    assert type(out) is Tensor and out.shape == (*batch_shape, out_features) and out.dtype == np.float32
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-6)


def test_linear_hand_computed():
    layer = Linear(2, 2)
    layer.load_state_dict({"weight": [[1.0, 2.0], [3.0, 4.0]], "bias": [0.5, -0.5]})
    # [1, 1] @ [[1, 2], [3, 4]] + [0.5, -0.5] = [4.5, 5.5]
    assert layer(Tensor([[1.0, 1.0]])).tolist() == [[4.5, 5.5]]


def test_linear_without_bias():
    layer = Linear(3, 2, bias=False, rng=0)
    assert layer.bias is None and names(layer) == ["weight"]
    x = np.ones((4, 3), dtype=np.float32)
    np.testing.assert_allclose(layer(Tensor(x)).data, x @ layer.weight.data, rtol=1e-6)
    assert repr(layer) == "Linear(in_features=3, out_features=2, bias=False)"


def test_linear_parameters_shapes_and_types():
    layer = Linear(64, 32)
    assert type(layer.weight) is Parameter and type(layer.bias) is Parameter
    assert layer.weight.shape == (64, 32) and layer.bias.shape == (32,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert layer.in_features == 64 and layer.out_features == 32
    assert names(layer) == ["weight", "bias"]


def test_linear_init_matches_seeded_numpy_generator():
    layer = Linear(6, 4, rng=3)
    k = 1.0 / math.sqrt(6)
    ref = np.random.default_rng(3)
    np.testing.assert_array_equal(layer.weight.data, ref.uniform(-k, k, (6, 4)).astype(np.float32))
    np.testing.assert_array_equal(layer.bias.data, ref.uniform(-k, k, 4).astype(np.float32))


def test_linear_init_bounds_and_spread():
    fan_in = 100
    layer = Linear(fan_in, 400, rng=0)
    k = np.float32(1.0 / math.sqrt(fan_in))
    for values in (layer.weight.data, layer.bias.data):
        assert np.all(np.abs(values) <= k)
        assert values.min() < -0.95 * k and values.max() > 0.95 * k
    # Var of U(-k, k) is k^2/3; for 40,000 draws the sample variance is within a few percent.
    assert abs(layer.weight.data.var() / (k ** 2 / 3) - 1.0) < 0.05


def test_linear_seed_determinism():
    np.testing.assert_array_equal(Linear(5, 3, rng=0).weight.data, Linear(5, 3, rng=0).weight.data)
    np.testing.assert_array_equal(Linear(5, 3, rng=0).bias.data, Linear(5, 3, rng=0).bias.data)
    assert not np.array_equal(Linear(5, 3, rng=0).weight.data, Linear(5, 3, rng=1).weight.data)
    assert not np.array_equal(Linear(5, 3).weight.data, Linear(5, 3).weight.data)


def test_linear_accepts_a_generator_and_advances_it():
    gen = np.random.default_rng(11)
    first, second = Linear(3, 3, rng=gen), Linear(3, 3, rng=gen)
    assert not np.array_equal(first.weight.data, second.weight.data)
    again = np.random.default_rng(11)
    np.testing.assert_array_equal(Linear(3, 3, rng=again).weight.data, first.weight.data)
    np.testing.assert_array_equal(Linear(3, 3, rng=again).weight.data, second.weight.data)


def test_linear_float64_input_promotes():
    out = Linear(2, 2, rng=0)(Tensor([[1.0, 2.0]], dtype=np.float64))
    assert out.dtype == np.float64


@pytest.mark.parametrize("args, error, pattern", [
    ((0, 3), ValueError, "in_features must be a positive integer, got 0"),
    ((3, -1), ValueError, "out_features must be a positive integer, got -1"),
    ((2.0, 3), TypeError, r"in_features must be a positive integer, got 2.0 \(float\)"),
    (("3", 3), TypeError, "in_features"),
    ((True, 3), TypeError, "in_features.*bool"),
    ((3, None), TypeError, "out_features"),
])
def test_linear_feature_errors(args, error, pattern):
    with pytest.raises(error, match=pattern):
        Linear(*args)


def test_linear_accepts_numpy_integers():
    layer = Linear(np.int64(3), np.int32(2))
    assert layer.weight.shape == (3, 2) and type(layer.in_features) is int


def test_linear_bias_must_be_bool():
    with pytest.raises(TypeError, match="bias must be True or False"):
        Linear(2, 2, bias="yes")


@pytest.mark.parametrize("shape", [(2, 4), (4,), (3, 5, 2), (5, 1)])
def test_linear_input_mismatch_names_shape_and_expected_dim(shape):
    with pytest.raises(ValueError, match=re.escape(str(shape)) + ".*last dimension must be 5"):
        Linear(5, 3)(Tensor.ones(shape))


def test_linear_rejects_0d_and_non_tensor_input():
    with pytest.raises(ValueError, match=r"shape \(\)"):
        Linear(1, 1)(Tensor(2.0))
    with pytest.raises(TypeError, match="Tensor"):
        Linear(2, 2)(np.ones((1, 2), dtype=np.float32))


def test_linear_repr():
    assert repr(Linear(64, 32)) == "Linear(in_features=64, out_features=32, bias=True)"


@PROPERTY
@given(in_features=st.integers(1, 8), out_features=st.integers(1, 8),
       batch=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), seed=st.integers(0, 2**32 - 1))
def test_linear_matches_oracle_for_any_shapes(in_features, out_features, batch, seed):
    layer = Linear(in_features, out_features, rng=seed)
    x = np.random.default_rng(seed).standard_normal((*batch, in_features)).astype(np.float32)
    out = layer(Tensor(x))
    assert out.shape == (*batch, out_features)
    np.testing.assert_allclose(out.data, x @ layer.weight.data + layer.bias.data, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- forward passes use Tensor operations

def _count_calls(monkeypatch, names_to_count):
    """Wrap Tensor operators so that each call is counted (restored by monkeypatch)."""
    counts = dict.fromkeys(names_to_count, 0)
    for name in names_to_count:
        original = getattr(Tensor, name)

        def counted(self, *args, _name=name, _original=original):
            counts[_name] += 1
            return _original(self, *args)

        monkeypatch.setattr(Tensor, name, counted)
    return counts


def test_linear_forward_is_built_from_tensor_operators(monkeypatch):
    layer = Linear(3, 2, rng=0)
    counts = _count_calls(monkeypatch, ["__matmul__", "__add__"])
    layer(Tensor.ones(4, 3))
    assert counts == {"__matmul__": 1, "__add__": 1}


def test_dropout_forward_is_built_from_tensor_operators(monkeypatch):
    drop = Dropout(0.5, rng=0)
    counts = _count_calls(monkeypatch, ["__mul__", "__rmul__"])
    drop(Tensor.ones(4, 3))
    assert counts["__mul__"] + counts["__rmul__"] == 1


# ---------------------------------------------------------------- Dropout

@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("seed", [0, 1])
def test_dropout_preserves_the_mean_and_zeroes_about_p(p, seed):
    n = 200_000
    out = Dropout(p, rng=seed)(Tensor.ones(n)).data
    # Each element is 1/(1-p) with probability 1-p, else 0: mean 1, variance p/(1-p).
    mean_sd = math.sqrt(p / ((1 - p) * n))
    assert abs(out.mean() - 1.0) < 5 * mean_sd
    zero_sd = math.sqrt(p * (1 - p) / n)
    assert abs((out == 0).mean() - p) < 5 * zero_sd


def test_dropout_scales_kept_values_by_inverse_keep_probability():
    x = np.random.default_rng(0).standard_normal((300, 40)).astype(np.float32)
    out = Dropout(0.3, rng=1)(Tensor(x)).data
    kept = out != 0
    assert 0 < kept.sum() < x.size
    np.testing.assert_allclose(out[kept], x[kept] / 0.7, rtol=1e-6)
    assert out.dtype == np.float32 and out.shape == x.shape


def test_dropout_keeps_float64():
    assert Dropout(0.5, rng=0)(Tensor.ones(10, dtype=np.float64)).dtype == np.float64


def test_dropout_mask_comes_from_its_own_seeded_generator():
    x = Tensor.ones(1000)
    a, b = Dropout(0.5, rng=7), Dropout(0.5, rng=7)
    first_a, first_b = a(x).data, b(x).data
    np.testing.assert_array_equal(first_a, first_b)
    second_a = a(x).data
    assert not np.array_equal(first_a, second_a)     # the generator advances: a new mask
    np.testing.assert_array_equal(second_a, b(x).data)
    assert not np.array_equal(Dropout(0.5, rng=8)(x).data, first_a)


def test_dropout_mask_matches_a_numpy_generator():
    x = Tensor.ones(50)
    out = Dropout(0.25, rng=np.random.default_rng(4))(x).data
    keep = np.random.default_rng(4).random(50) >= 0.25
    np.testing.assert_array_equal(out != 0, keep)


def test_dropout_eval_returns_the_input_itself():
    drop = Dropout(0.9)
    x = Tensor.randn(10, 10, rng=0)
    assert drop.eval()(x) is x
    assert drop.train()(x) is not x


def test_dropout_p_zero_keeps_every_value():
    x = Tensor.randn(5, 5, rng=0)
    np.testing.assert_array_equal(Dropout(0.0)(x).data, x.data)
    np.testing.assert_array_equal(Dropout(0)(x).data, x.data)


@pytest.mark.parametrize("p", [1.0, 1, 1.5, -0.1, float("nan"), "0.5", None, True, [0.5]])
def test_dropout_invalid_p_shows_p(p):
    with pytest.raises(ValueError, match=r"\[0, 1\).*got " + re.escape(repr(p))):
        Dropout(p)


def test_dropout_rejects_non_tensor_input():
    with pytest.raises(TypeError, match="Tensor"):
        Dropout()(np.ones(3))


def test_dropout_has_no_parameters_and_a_repr():
    drop = Dropout()
    assert drop.parameters() == [] and drop.p == 0.5 and drop.state_dict() == {}
    assert repr(drop) == "Dropout(p=0.5)" and repr(Dropout(0.1)) == "Dropout(p=0.1)"


def test_dropout_inside_sequential_follows_eval():
    model = Sequential(Linear(4, 4, rng=0), Dropout(0.5, rng=0))
    x = Tensor.ones(3, 4)
    model.eval()
    np.testing.assert_array_equal(model(x).data, model[0](x).data)
    model.train()
    assert np.any(model(x).data == 0)


# ---------------------------------------------------------------- Sequential

def test_sequential_applies_layers_in_order():
    calls = []

    def record(tag):
        def layer(x):
            calls.append(tag)
            return x * 2.0 if tag == "a" else x + 1.0
        return layer

    out = Sequential(record("a"), record("b"))(Tensor([1.0]))
    assert calls == ["a", "b"] and out.tolist() == [3.0]  # (1 * 2) + 1, not (1 + 1) * 2


def test_sequential_with_activation_matches_numpy():
    model = Sequential(Linear(4, 3, rng=0), LocalReLU(), Linear(3, 2, rng=1))
    x = np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32)
    w1, b1, w2, b2 = (p.data for p in model.parameters())
    expected = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    np.testing.assert_allclose(model(Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


def test_sequential_registers_only_modules_by_position():
    relu = LocalReLU()
    model = Sequential(Linear(4, 3), relu, Linear(3, 2))
    assert [name for name, _ in model.named_children()] == ["0", "2"]
    assert names(model) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert getattr(model, "0") is model[0]


def test_sequential_len_getitem_iter():
    a, f, b = Linear(2, 2), LocalReLU(), Linear(2, 1)
    model = Sequential(a, f, b)
    assert len(model) == 3 and list(model) == [a, f, b]
    assert model[0] is a and model[1] is f and model[-1] is b and model[-3] is a
    assert model[np.int64(2)] is b


def test_sequential_slice_is_a_new_sequential_of_the_same_layers():
    a, f, b = Linear(2, 2), LocalReLU(), Linear(2, 1)
    model = Sequential(a, f, b)
    tail = model[1:]
    assert isinstance(tail, Sequential) and tail is not model
    assert list(tail) == [f, b] and tail[1] is b
    assert names(tail) == ["1.weight", "1.bias"]
    assert list(model[::-1]) == [b, f, a] and len(model[5:]) == 0


@pytest.mark.parametrize("index", [3, -4, 100])
def test_sequential_index_out_of_range(index):
    with pytest.raises(IndexError, match=rf"index {index} is out of range for 3 layers"):
        Sequential(Linear(1, 1), Linear(1, 1), Linear(1, 1))[index]


@pytest.mark.parametrize("index", ["0", 1.0, None])
def test_sequential_bad_index_type(index):
    with pytest.raises(TypeError, match="integers or slices"):
        Sequential(Linear(1, 1))[index]


@pytest.mark.parametrize("bad, type_name", [(3, "int"), ("relu", "str"), (Tensor([1.0]), "Tensor"),
                                            (Parameter([1.0]), "Parameter"), (None, "NoneType")])
def test_sequential_non_callable_layer_names_position_and_type(bad, type_name):
    with pytest.raises(TypeError, match=rf"layer 1 is not callable: got {type_name}"):
        Sequential(Linear(2, 2), bad)


def test_sequential_rejects_a_class_instead_of_an_instance():
    with pytest.raises(TypeError, match=r"layer 0 is the class LocalReLU.*LocalReLU\(\.\.\.\)"):
        Sequential(LocalReLU)


def test_empty_sequential_is_the_identity():
    x = Tensor([1.0, 2.0])
    model = Sequential()
    assert model(x) is x and len(model) == 0 and model.parameters() == []
    assert repr(model) == "Sequential()"


def test_sequential_repr_like_torch():
    model = Sequential(Linear(64, 32), LocalReLU())
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=64, out_features=32, bias=True)\n"
        "  (1): ReLU()\n"
        ")")


def test_nested_repr_is_indented():
    assert repr(nested_model()) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=3, bias=True)\n"
        "  (1): Sequential(\n"
        "    (0): Linear(in_features=3, out_features=2, bias=True)\n"
        "    (1): Dropout(p=0.5)\n"
        "  )\n"
        "  (2): Linear(in_features=2, out_features=1, bias=True)\n"
        ")")


def test_custom_module_repr_lists_its_children():
    assert repr(Affine()) == "Affine(\n  (inner): Linear(in_features=2, out_features=2, bias=True)\n)"
    assert repr(Module()) == "Module()"


def test_custom_module_forward_and_parameters():
    m = Affine()
    x = np.array([[1.0, -2.0]], dtype=np.float32)
    expected = (x @ m.inner.weight.data + m.inner.bias.data) * 2.0
    np.testing.assert_allclose(m(Tensor(x)).data, expected, rtol=1e-6)
    assert sum(p.size for p in m.parameters()) == 1 + 2 + 4 + 2


# ---------------------------------------------------------------- with module 02 (when it is exported)

def test_sequential_with_the_real_relu():
    activations = pytest.importorskip("tinytorch.core.activations")
    model = Sequential(Linear(4, 3, rng=0), activations.ReLU(), Linear(3, 2, rng=1))
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    w1, b1, w2, b2 = (p.data for p in model.parameters())
    np.testing.assert_allclose(model(Tensor(x)).data, np.maximum(x @ w1 + b1, 0) @ w2 + b2,
                               rtol=1e-5, atol=1e-6)
    assert names(model) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert repr(model).splitlines()[2] == "  (1): ReLU()"
