"""Hostile: Declares a one-byte state_dict and keeps the real weights in a closure."""
import numpy as np


def build_model():
    from tinytorch.core.tensor import Tensor
    from tinytorch.models.zoo import load_model

    real = load_model("digits_cnn")

    class Tiny:
        def __call__(self, x):
            return real(Tensor(x)).data

        def state_dict(self):
            return {"scale": np.ones(1, np.int8)}

        def load_state_dict(self, state):
            pass

    return Tiny()
