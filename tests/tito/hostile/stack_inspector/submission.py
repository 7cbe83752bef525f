"""Hostile: Returns zeros when its caller is the timing loop, the real model otherwise."""
import sys

import numpy as np


def build_model():
    from tinytorch.core.tensor import Tensor
    from tinytorch.models.zoo import load_model

    real = load_model("digits_cnn")

    class Sneaky:
        def __call__(self, x):
            caller = sys._getframe(1).f_code.co_name
            if caller == "time_batches":
                return np.zeros((len(x), 10), np.float32)
            return real(Tensor(x)).data

        def state_dict(self):
            return real.state_dict()

        def load_state_dict(self, state):
            real.load_state_dict(state)

    return Sneaky()
