"""Tests of the exported tinytorch.core.optimizers (Module 07).

Gradients are set by hand (`p.grad = Tensor(...)`), so nothing here depends on autograd.
The oracles are plain float64 numpy loops written straight from the documented update rules
(no in-place tricks, no shared code with the package), plus values worked out by hand.
"""
import io

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.optimizers import SGD, Adam, AdamW, Optimizer, adam_update, sgd_update
from tinytorch.core.tensor import Tensor

PROPERTY = settings(max_examples=40, deadline=None, database=None)
START = np.array([1.0, -2.0])
GRADS = [np.array([0.5, -1.0]), np.array([0.25, 0.5]), np.array([-1.0, 0.0])]


def param64(values=START):
    return Tensor(np.asarray(values, dtype=np.float64), dtype=np.float64)


def grad64(values):
    return Tensor(np.asarray(values, dtype=np.float64), dtype=np.float64)


def run_steps(optimizer, param, grads):
    """Set each gradient by hand and step; return the parameter values after every step."""
    history = []
    for g in grads:
        param.grad = Tensor(g, dtype=param.dtype)
        optimizer.step()
        history.append(param.data.copy())
    return history


# ---------------------------------------------------------------- oracles

def sgd_oracle(p0, grads, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    p, buf, history = np.array(p0, dtype=np.float64), None, []
    for grad in grads:
        d = grad + weight_decay * p
        if momentum != 0:
            if buf is None:
                buf = np.array(d)
            else:
                buf = momentum * buf + d
            if nesterov:
                d = d + momentum * buf
            else:
                d = buf
        p = p - lr * d
        history.append(p)
    return history


def adam_oracle(p0, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    b1, b2 = betas
    p = np.array(p0, dtype=np.float64)
    m, v, history = np.zeros_like(p), np.zeros_like(p), []
    for t, grad in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            grad = grad + weight_decay * p
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad ** 2
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append(p)
    return history


# ---------------------------------------------------------------- SGD values

@pytest.mark.parametrize("config", [
    {},
    {"momentum": 0.9},
    {"momentum": 0.5, "nesterov": True},
    {"weight_decay": 0.1},
    {"momentum": 0.9, "weight_decay": 0.1},
    {"momentum": 0.9, "weight_decay": 0.05, "nesterov": True},
])
def test_sgd_matches_oracle(config):
    p = param64()
    history = run_steps(SGD([p], lr=0.1, **config), p, GRADS)
    for ours, expected in zip(history, sgd_oracle(START, GRADS, 0.1, **config)):
        np.testing.assert_allclose(ours, expected, rtol=1e-13, atol=1e-15)


def test_sgd_plain_by_hand():
    p = param64()
    history = run_steps(SGD([p], lr=0.1), p, GRADS)
    np.testing.assert_allclose(history, [[0.95, -1.9], [0.925, -1.95], [1.025, -1.95]], rtol=1e-13)


def test_sgd_momentum_by_hand():
    # buffers: [0.5, -1], 0.9 * that + [0.25, 0.5] = [0.7, -0.4], then [-0.37, -0.36]
    p = param64()
    history = run_steps(SGD([p], lr=0.1, momentum=0.9), p, GRADS)
    np.testing.assert_allclose(history, [[0.95, -1.9], [0.88, -1.86], [0.917, -1.824]], rtol=1e-13)


def test_sgd_nesterov_by_hand():
    # step 1: buf = [0.5, -1], d = g + 0.9 buf = [0.95, -1.9]
    # step 2: buf = [0.7, -0.4], d = [0.25 + 0.63, 0.5 - 0.36] = [0.88, 0.14]
    p = param64()
    history = run_steps(SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, GRADS[:2])
    np.testing.assert_allclose(history, [[0.905, -1.81], [0.817, -1.824]], rtol=1e-13)


def test_sgd_weight_decay_by_hand():
    # d = g + 0.5 p = [0.5 + 0.5, -1 - 1] = [1, -2]; p = [1 - 0.1, -2 + 0.2]
    p = param64()
    run_steps(SGD([p], lr=0.1, weight_decay=0.5), p, GRADS[:1])
    np.testing.assert_allclose(p.data, [0.9, -1.8], rtol=1e-13)


def test_sgd_momentum_buffer_is_kept_per_parameter():
    p = param64()
    opt = SGD([p], lr=0.1, momentum=0.9)
    run_steps(opt, p, GRADS[:2])
    np.testing.assert_allclose(opt.state[0]["momentum_buffer"], [0.7, -0.4], rtol=1e-13)
    assert SGD([param64()], lr=0.1).state == {}


def test_sgd_update_function_does_not_touch_the_gradient():
    param, grad = np.array([1.0, 2.0]), np.array([0.5, 0.5])
    buf = sgd_update(param, grad, None, lr=0.1, momentum=0.9)
    buf[:] = 100.0                              # the first buffer must be a copy of the gradient
    np.testing.assert_array_equal(grad, [0.5, 0.5])
    np.testing.assert_allclose(param, [0.95, 1.95])
    assert sgd_update(param, grad, None, lr=0.1) is None


# ---------------------------------------------------------------- Adam / AdamW values

@pytest.mark.parametrize("cls, kwargs, decoupled", [
    (Adam, {"lr": 0.05}, False),
    (Adam, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6}, False),
    (Adam, {"lr": 0.05, "weight_decay": 0.2}, False),
    (AdamW, {"lr": 0.05}, True),
    (AdamW, {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-4, "weight_decay": 0.3}, True),
])
def test_adam_family_matches_oracle(cls, kwargs, decoupled):
    p = param64()
    history = run_steps(cls([p], **kwargs), p, GRADS)
    if cls is AdamW and "weight_decay" not in kwargs:
        kwargs = dict(kwargs, weight_decay=0.01)  # AdamW's default
    expected = adam_oracle(START, GRADS, decoupled=decoupled, **kwargs)
    for ours, want in zip(history, expected):
        np.testing.assert_allclose(ours, want, rtol=1e-12, atol=1e-15)


def test_adam_first_step_is_lr_times_sign():
    # m_hat = g and v_hat = g^2 on step 1, so the step is lr * g / (|g| + eps)
    g = np.array([1e-3, -5.0, 2e4])
    p = param64([1.0, -2.0, 3.0])
    run_steps(Adam([p], lr=0.1), p, [g])
    np.testing.assert_allclose(p.data, np.array([1.0, -2.0, 3.0]) - 0.1 * g / (np.abs(g) + 1e-8), rtol=1e-14)
    np.testing.assert_allclose(p.data, [0.9, -1.9, 2.9], atol=1e-6)


def test_adam_second_step_by_hand():
    # m = 0.09 g1 + 0.1 g2 = [0.07, -0.04];  v = 0.000999 g1^2 + 0.001 g2^2 = [0.00031225, 0.001249]
    p = param64()
    run_steps(Adam([p], lr=0.1), p, GRADS[:2])
    m_hat = np.array([0.07, -0.04]) / 0.19
    v_hat = np.array([0.00031225, 0.001249]) / (1 - 0.999 ** 2)
    np.testing.assert_allclose(p.data, np.array([0.9, -1.9]) - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8),
                               rtol=1e-7)


def test_adam_state_holds_step_and_averages():
    p = param64()
    opt = Adam([p], lr=0.1)
    run_steps(opt, p, GRADS[:2])
    assert opt.state[0]["step"] == 2 and opt.step_count == 2
    np.testing.assert_allclose(opt.state[0]["exp_avg"], [0.07, -0.04], rtol=1e-13)
    np.testing.assert_allclose(opt.state[0]["exp_avg_sq"], [0.00031225, 0.001249], rtol=1e-13)


def test_adamw_differs_from_adam_by_exactly_the_decoupled_decay():
    lr, wd = 0.05, 0.3
    pa, pw = param64(), param64()
    adam, adamw = Adam([pa], lr=lr), AdamW([pw], lr=lr, weight_decay=wd)
    for g in GRADS:
        before_a, before_w = pa.data.copy(), pw.data.copy()
        pa.grad, pw.grad = grad64(g), grad64(g)
        adam.step()
        adamw.step()
        np.testing.assert_allclose((pw.data - before_w) - (pa.data - before_a), -lr * wd * before_w,
                                   rtol=1e-10, atol=1e-15)


def test_adam_l2_decay_is_not_adamw():
    pa, pw = param64(), param64()
    run_steps(Adam([pa], lr=0.05, weight_decay=0.3), pa, GRADS)
    run_steps(AdamW([pw], lr=0.05, weight_decay=0.3), pw, GRADS)
    assert not np.allclose(pa.data, pw.data)


def test_adamw_default_weight_decay_and_betas_property():
    opt = AdamW([param64()])
    assert opt.weight_decay == 0.01 and opt.lr == 1e-3 and opt.betas == (0.9, 0.999) and opt.eps == 1e-8
    assert Adam([param64()]).weight_decay == 0.0


def test_adam_update_function_updates_state_in_place():
    param, grad = np.array([1.0, -2.0]), np.array([0.5, -1.0])
    m, v = np.zeros(2), np.zeros(2)
    m_id, v_id = id(m), id(v)
    adam_update(param, grad, m, v, 1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)
    assert id(m) == m_id and id(v) == v_id
    np.testing.assert_allclose(m, 0.1 * grad)
    np.testing.assert_allclose(v, 0.001 * grad ** 2)
    np.testing.assert_array_equal(grad, [0.5, -1.0])


@PROPERTY
@given(hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(0.01, 100.0)),
       st.floats(0.01, 1000.0))
def test_adam_is_invariant_to_gradient_scale(magnitudes, scale):
    signs = np.where(np.arange(magnitudes.size) % 2 == 0, 1.0, -1.0)
    g = signs * magnitudes
    results = []
    for factor in (1.0, scale):
        p = param64(np.zeros(g.size))
        run_steps(Adam([p], lr=0.1, eps=1e-12), p, [factor * g, 0.5 * factor * g])
        results.append(p.data)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6, atol=1e-12)


@PROPERTY
@given(hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(-10, 10)),
       hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(-10, 10)),
       st.floats(1e-4, 1.0), st.floats(0.0, 1.0))
def test_plain_sgd_step_is_p_minus_lr_times_grad_plus_decay(p0, g, lr, wd):
    size = min(p0.size, g.size)
    p0, g = p0[:size], g[:size]
    p = param64(p0)
    run_steps(SGD([p], lr=lr, weight_decay=wd), p, [g])
    np.testing.assert_allclose(p.data, p0 - lr * (g + wd * p0), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- skipping, in place, dtype

@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: Adam(ps, lr=0.1),
    lambda ps: AdamW(ps, lr=0.1),
])
def test_parameters_without_grad_are_skipped(make):
    a, b = param64(), param64([3.0])
    opt = make([a, b])
    a.grad = grad64(GRADS[0])
    opt.step()
    assert b.data.tolist() == [3.0] and 1 not in opt.state and 0 in opt.state
    b.grad = grad64([1.0])
    a.grad = None
    saved_a, saved_state = a.data.copy(), {k: np.copy(v) for k, v in opt.state[0].items()}
    opt.step()
    np.testing.assert_array_equal(a.data, saved_a)
    for key, value in saved_state.items():
        np.testing.assert_array_equal(opt.state[0][key], value)
    assert 1 in opt.state


def test_adam_step_count_is_per_parameter():
    # b is skipped on the first step; its first update must use t = 1 bias correction
    a, b = param64(), param64([3.0, 4.0])
    opt = Adam([a, b], lr=0.1)
    a.grad = grad64(GRADS[0])
    opt.step()
    a.grad, b.grad = grad64(GRADS[1]), grad64(GRADS[0])
    opt.step()
    assert opt.state[0]["step"] == 2 and opt.state[1]["step"] == 1 and opt.step_count == 2
    np.testing.assert_allclose(b.data, adam_oracle([3.0, 4.0], GRADS[:1], 0.1)[0], rtol=1e-13)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True),
    lambda ps: Adam(ps, lr=0.1, weight_decay=0.1),
    lambda ps: AdamW(ps, lr=0.1),
])
def test_updates_are_in_place_and_keep_float32(make):
    p = Tensor(np.ones((3, 2)))
    original = p.data
    opt = make([p])
    for step in range(3):
        p.grad = Tensor(np.full((3, 2), 0.5 + step), dtype=np.float64)   # float64 grad, float32 param
        opt.step()
    assert p.data is original and p.dtype == np.float32
    for entry in opt.state.values():
        for value in entry.values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32
    assert not np.allclose(p.data, 1.0)


@pytest.mark.parametrize("cls, kwargs, oracle", [
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}, sgd_oracle),
    (Adam, {"lr": 0.1}, adam_oracle),
])
def test_float32_results_match_float64_oracle(cls, kwargs, oracle):
    p = Tensor(START)
    history = run_steps(cls([p], **kwargs), p, GRADS)
    np.testing.assert_allclose(history[-1], oracle(START, GRADS, **kwargs)[-1], rtol=1e-5)
    assert history[-1].dtype == np.float32


def test_float16_parameters_stay_float16():
    p = Tensor([1.0, 2.0], dtype=np.float16)
    opt = Adam([p], lr=0.1)
    p.grad = Tensor([1.0, 1.0])
    opt.step()
    assert p.dtype == np.float16 and opt.state[0]["exp_avg"].dtype == np.float16


def test_gradient_array_is_not_modified():
    p = Tensor([1.0, 2.0])
    g = Tensor([0.5, 0.5])
    before = g.data.copy()
    for opt in (SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1), Adam([p], lr=0.1, weight_decay=0.1)):
        p.grad = g
        opt.step()
        opt.step()
    np.testing.assert_array_equal(g.data, before)


# ---------------------------------------------------------------- Optimizer base

def test_parameters_from_a_generator_are_kept_once_in_order():
    a, b, c = Tensor([1.0]), Tensor([2.0]), Tensor([3.0])
    opt = SGD((p for p in [a, b, a, c, b]), lr=0.1)
    assert len(opt.params) == 3
    assert opt.params[0] is a and opt.params[1] is b and opt.params[2] is c


def test_shared_parameter_is_updated_once():
    p = param64()
    opt = SGD([p, p], lr=0.1)
    p.grad = grad64([1.0, 1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [0.9, -2.1])


def test_zero_grad_sets_every_grad_to_none():
    a, b = Tensor([1.0]), Tensor([2.0])
    opt = SGD([a, b], lr=0.1)
    a.grad, b.grad = Tensor([1.0]), Tensor([2.0])
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    opt.step()                                   # nothing to do: no gradients
    assert a.tolist() == [1.0] and opt.step_count == 1


def test_tensor_whose_grad_was_never_set_is_skipped():
    p = Tensor([1.0, 2.0])          # no .grad attribute at all, unless autograd adds a None default
    opt = Adam([p])
    opt.step()
    assert p.tolist() == [1.0, 2.0] and opt.state == {}


def test_base_step_is_abstract_and_names_the_subclass():
    class Custom(Optimizer):
        pass

    with pytest.raises(NotImplementedError, match=r"Optimizer\.step"):
        Optimizer([Tensor([1.0])]).step()
    with pytest.raises(NotImplementedError, match=r"Custom\.step"):
        Custom([Tensor([1.0])]).step()


def test_repr_shows_hyperparameters_and_sizes():
    opt = SGD([Tensor(np.zeros((3, 4))), Tensor(np.zeros(4))], lr=0.1, momentum=0.9)
    text = repr(opt)
    assert text.startswith("SGD(") and "lr=0.1" in text and "momentum=0.9" in text
    assert "nesterov=False" in text and "2 tensors" in text and "16 values" in text and "step_count=0" in text
    adam = repr(AdamW([Tensor([1.0])], lr=0.01))
    assert adam.startswith("AdamW(") and "lr=0.01" in adam and "beta2=0.999" in adam and "weight_decay=0.01" in adam
    assert repr(Optimizer([Tensor([1.0])])) == "Optimizer(params=1 tensor / 1 values, step_count=0)"


def test_hyperparameters_are_plain_floats():
    opt = SGD([Tensor([1.0])], lr=np.float32(0.5), momentum=1)
    assert type(opt.lr) is float and type(opt.momentum) is float and opt.hyperparameters() == {
        "lr": 0.5, "momentum": 1.0, "weight_decay": 0.0, "nesterov": False}


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("params", [[], iter([]), ()])
def test_empty_parameter_list(params):
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        SGD(params, lr=0.1)


def test_non_tensor_parameter_names_position_and_type():
    with pytest.raises(TypeError, match=r"params\[1\].*ndarray"):
        Adam([Tensor([1.0]), np.ones(2)])
    with pytest.raises(TypeError, match=r"params\[0\].*float"):
        SGD([0.5], lr=0.1)


def test_single_tensor_or_non_iterable_is_rejected():
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(Tensor([1.0, 2.0]), lr=0.1)
    with pytest.raises(TypeError, match="iterable.*int"):
        SGD(5, lr=0.1)


def test_integer_parameter_is_rejected():
    with pytest.raises(TypeError, match=r"params\[0\] has dtype int64"):
        SGD([Tensor([1, 2], dtype=np.int64)], lr=0.1)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"lr": 0.0}, r"lr must be > 0, got 0\.0"),
    ({"lr": -0.1}, r"lr must be > 0, got -0\.1"),
    ({"lr": float("nan")}, "lr must be > 0, got nan"),
    ({"lr": 0.1, "momentum": -0.5}, r"momentum must be >= 0, got -0\.5"),
    ({"lr": 0.1, "weight_decay": -1}, r"weight_decay must be >= 0, got -1\.0"),
    ({"lr": 0.1, "nesterov": True}, "nesterov=True needs momentum > 0"),
])
def test_sgd_rejects_bad_hyperparameters(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        SGD([Tensor([1.0])], **kwargs)


def test_sgd_needs_a_learning_rate_and_a_number():
    with pytest.raises(TypeError):
        SGD([Tensor([1.0])])
    with pytest.raises(TypeError, match="lr must be a real number, got str"):
        SGD([Tensor([1.0])], lr="0.1")


@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize("kwargs, pattern", [
    ({"betas": (1.0, 0.999)}, r"beta1 must be in \[0, 1\), got 1\.0"),
    ({"betas": (0.9, -0.1)}, r"beta2 must be in \[0, 1\), got -0\.1"),
    ({"eps": 0.0}, r"eps must be > 0, got 0\.0"),
    ({"lr": -1e-3}, r"lr must be > 0"),
    ({"weight_decay": -0.1}, r"weight_decay must be >= 0"),
])
def test_adam_rejects_bad_hyperparameters(cls, kwargs, pattern):
    with pytest.raises(ValueError, match=f"{cls.__name__}: {pattern}"):
        cls([Tensor([1.0])], **kwargs)


def test_adam_betas_must_be_a_pair():
    with pytest.raises(TypeError, match="betas must be a pair"):
        Adam([Tensor([1.0])], betas=0.9)
    with pytest.raises(TypeError, match="betas must be a pair"):
        Adam([Tensor([1.0])], betas=(0.9, 0.99, 0.999))


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps)])
def test_grad_shape_mismatch_names_both_shapes_and_changes_nothing(make):
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones(4))
    opt = make([a, b])
    a.grad, b.grad = Tensor(np.ones((2, 3))), Tensor(np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"parameter 1: grad shape \(4, 1\).*parameter shape \(4,\)"):
        opt.step()
    assert np.array_equal(a.data, np.ones((2, 3))) and opt.state == {} and opt.step_count == 0


def test_grad_that_is_not_a_tensor():
    p = Tensor([1.0])
    p.grad = np.array([1.0])
    with pytest.raises(TypeError, match="grad must be a Tensor or None, got ndarray"):
        SGD([p], lr=0.1).step()


# ---------------------------------------------------------------- state_dict

def savez_round_trip(state):
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer) as loaded:
        return dict(loaded)


def sine_grads(step, shape):
    return np.sin(np.arange(np.prod(shape), dtype=np.float64) * 0.7 + step).reshape(shape)


def train(optimizer, first, count):
    for step in range(first, first + count):
        for index, param in enumerate(optimizer.params):
            param.grad = Tensor(sine_grads(step + index, param.shape))
        optimizer.step()


MAKERS = {
    "sgd": lambda ps: SGD(ps, lr=0.1),
    "sgd-nesterov-decay": lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda ps: Adam(ps, lr=0.05, betas=(0.8, 0.99), weight_decay=0.1),
    "adamw": lambda ps: AdamW(ps, lr=0.05),
}


def fresh_params(seed=0):
    rng = np.random.default_rng(seed)
    return [Tensor(rng.standard_normal((3, 2))), Tensor(rng.standard_normal(2))]


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_resumed_training_is_bit_identical(name):
    make = MAKERS[name]
    straight = make(fresh_params())
    train(straight, 0, 6)

    first = make(fresh_params())
    train(first, 0, 3)
    saved_params = [p.data.copy() for p in first.params]
    saved = savez_round_trip(first.state_dict())

    resumed = make([Tensor(values) for values in saved_params])
    resumed.load_state_dict(saved)
    assert resumed.step_count == 3
    train(resumed, 3, 3)
    for ours, theirs in zip(resumed.params, straight.params):
        np.testing.assert_array_equal(ours.data, theirs.data)


def test_state_dict_contents_and_types():
    opt = Adam(fresh_params(), lr=0.05)
    train(opt, 0, 2)
    state = opt.state_dict()
    assert sorted(state) == sorted([
        "lr", "beta1", "beta2", "eps", "weight_decay", "step_count",
        "state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq",
        "state.1.step", "state.1.exp_avg", "state.1.exp_avg_sq"])
    assert state["lr"] == 0.05 and state["step_count"] == 2 and state["state.1.step"] == 2
    for key, value in state.items():
        assert isinstance(value, (np.ndarray, int, float)), key
    assert state["state.0.exp_avg"].shape == (3, 2) and state["state.0.exp_avg"].dtype == np.float32
    sgd = SGD(fresh_params(), lr=0.1)
    assert sgd.state_dict() == {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, "nesterov": False,
                                "step_count": 0}


def test_state_dict_is_a_copy():
    opt = SGD(fresh_params(), lr=0.1, momentum=0.9)
    train(opt, 0, 1)
    state = opt.state_dict()
    saved = state["state.0.momentum_buffer"].copy()
    train(opt, 1, 2)
    np.testing.assert_array_equal(state["state.0.momentum_buffer"], saved)
    assert state["step_count"] == 1


def test_load_state_dict_copies_and_restores_hyperparameters():
    source = SGD(fresh_params(), lr=0.1, momentum=0.9, nesterov=True)
    train(source, 0, 2)
    state = source.state_dict()
    target = SGD(fresh_params(), lr=0.5)
    target.load_state_dict(state)
    assert target.hyperparameters() == source.hyperparameters() and target.step_count == 2
    state["state.0.momentum_buffer"][...] = 99.0
    assert not np.any(target.state[0]["momentum_buffer"] == 99.0)


def test_load_state_dict_accepts_np_load_directly(tmp_path):
    opt = AdamW(fresh_params(), lr=0.05)
    train(opt, 0, 2)
    path = tmp_path / "optimizer.npz"
    np.savez(path, **opt.state_dict())
    other = AdamW(fresh_params(), lr=0.5)
    with np.load(path) as loaded:
        other.load_state_dict(loaded)
    assert other.lr == 0.05 and type(other.lr) is float and other.state[1]["step"] == 2
    assert type(other.step_count) is int


def test_load_state_dict_reports_missing_and_unexpected_keys():
    opt = Adam(fresh_params())
    train(opt, 0, 1)
    state = opt.state_dict()
    del state["eps"], state["state.1.exp_avg_sq"]
    state["state.2.exp_avg"] = np.zeros(2)
    state["momentum"] = 0.9
    with pytest.raises(ValueError, match=r"missing keys \['eps', 'state\.1\.exp_avg_sq'\]; "
                                         r"unexpected keys \['state\.2\.exp_avg', 'momentum'\]"):
        Adam(fresh_params()).load_state_dict(state)


def test_load_state_dict_reports_shape_mismatches():
    state = SGD(fresh_params(), lr=0.1, momentum=0.9)
    train(state, 0, 1)
    saved = state.state_dict()
    saved["state.0.momentum_buffer"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"shape mismatches.*state\.0\.momentum_buffer has shape \(2, 3\), "
                                         r"expected \(3, 2\)"):
        SGD(fresh_params(), lr=0.1).load_state_dict(saved)
    saved = state.state_dict()
    saved["lr"] = np.array([0.1, 0.2])
    with pytest.raises(ValueError, match=r"lr has shape \(2,\), expected \(\)"):
        SGD(fresh_params(), lr=0.1).load_state_dict(saved)


def test_load_state_dict_from_another_optimizer_type_is_rejected():
    adam = Adam(fresh_params())
    train(adam, 0, 1)
    with pytest.raises(ValueError, match="SGD.load_state_dict: missing keys"):
        SGD(fresh_params(), lr=0.1).load_state_dict(adam.state_dict())


def test_failed_load_changes_nothing():
    opt = SGD(fresh_params(), lr=0.1, momentum=0.9)
    train(opt, 0, 1)
    before = opt.state_dict()
    bad = dict(before, lr=-1.0, step_count=7)
    with pytest.raises(ValueError, match="lr must be > 0"):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after.keys() == before.keys() and opt.lr == 0.1 and opt.step_count == 1
    np.testing.assert_array_equal(after["state.0.momentum_buffer"], before["state.0.momentum_buffer"])


# ---------------------------------------------------------------- convergence on a convex quadratic

# f(p) = 0.5 (p - c)^T A (p - c) with A symmetric positive definite; gradient A (p - c).
A = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
C = np.array([1.0, -2.0, 0.5])


def minimise(optimizer, steps):
    (p,) = optimizer.params
    for _ in range(steps):
        p.grad = grad64(A @ (p.data - C))
        optimizer.step()
    return p.data


@pytest.mark.parametrize("make, steps, tol", [
    (lambda ps: SGD(ps, lr=0.2), 300, 1e-8),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9), 400, 1e-8),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True), 300, 1e-8),
    (lambda ps: Adam(ps, lr=0.01), 3000, 1e-2),
    (lambda ps: AdamW(ps, lr=0.01, weight_decay=1e-4), 3000, 2e-2),
])
def test_convergence_to_the_minimum(make, steps, tol):
    p = param64(np.zeros(3))
    np.testing.assert_allclose(minimise(make([p]), steps), C, atol=tol)


def test_sgd_with_weight_decay_finds_the_regularised_minimum():
    # minimum of f(p) + wd/2 |p|^2 solves (A + wd I) p = A c
    wd = 0.5
    p = param64(np.zeros(3))
    expected = np.linalg.solve(A + wd * np.eye(3), A @ C)
    np.testing.assert_allclose(minimise(SGD([p], lr=0.2, weight_decay=wd), 300), expected, atol=1e-8)
