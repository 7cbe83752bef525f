"""Hostile: Declares only the last layer and hides the rest of the weights in numpy's module globals."""
import numpy as np


def build_model():
    from tinytorch.core.tensor import Tensor
    from tinytorch.models.zoo import load_model

    real = load_model("digits_cnn")
    state = real.state_dict()
    last = sorted(state)[-2:]
    np._hostile_stash = {k: v for k, v in state.items() if k not in last}   # the bulk, out of sight

    class Slim:
        def __call__(self, x):
            return real(Tensor(x)).data

        def state_dict(self):
            return {k: real.state_dict()[k] for k in last}

        def load_state_dict(self, given):
            real.load_state_dict({**np._hostile_stash, **given})

    return Slim()
