"""Integration: the optimizers train a real model whose gradients come from autograd (Module 06).

Skipped until tinytorch.core.autograd and tinytorch.core.layers have been exported.
"""
import numpy as np
import pytest

autograd = pytest.importorskip("tinytorch.core.autograd")
layers = pytest.importorskip("tinytorch.core.layers")

from tinytorch.core.optimizers import SGD, Adam, AdamW  # noqa: E402
from tinytorch.core.tensor import Tensor  # noqa: E402


def regression_data(seed=0, samples=64):
    """y = x @ w + b for a fixed w, b (no noise): a Linear layer can fit it exactly."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, 3)).astype(np.float32)
    w = np.array([[2.0], [-1.0], [0.5]], dtype=np.float32)
    return x, x @ w + np.float32(0.3)


@pytest.mark.parametrize("make, steps", [
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9), 60),
    (lambda ps: Adam(ps, lr=0.1), 150),
    (lambda ps: AdamW(ps, lr=0.1, weight_decay=1e-4), 150),
])
def test_linear_regression_loss_falls(make, steps):
    x, y = regression_data()
    model = layers.Linear(3, 1, rng=0)
    params = list(model.parameters())
    arrays = [p.data for p in params]
    optimizer = make(model.parameters())
    assert len(optimizer.params) == len(params) == 2

    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        diff = model(Tensor(x)) - Tensor(y)
        loss = (diff * diff).mean()
        loss.backward()
        for p in params:
            assert isinstance(p.grad, Tensor) and p.grad.shape == p.shape
        optimizer.step()
        losses.append(float(loss.item()))

    assert np.all(np.isfinite(losses))
    assert losses[-1] < 1e-2 * losses[0], (losses[0], losses[-1])
    assert all(p.data is array for p, array in zip(params, arrays))    # updated in place
    assert all(p.dtype == np.float32 for p in params)
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)
