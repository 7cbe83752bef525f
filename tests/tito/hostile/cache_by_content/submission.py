"""Hostile: Remembers every output by the input's bytes, hoping the timed inputs repeat."""
import numpy as np


def build_model():
    from tinytorch.core.tensor import Tensor
    from tinytorch.models.zoo import load_model

    real, cache = load_model("digits_cnn"), {}

    class Cached:
        def __call__(self, x):
            key = np.asarray(x).tobytes()
            if key not in cache:
                cache[key] = np.asarray(real(Tensor(x)).data).copy()
            return cache[key]

        def state_dict(self):
            return real.state_dict()

        def load_state_dict(self, state):
            real.load_state_dict(state)
            cache.clear()

    return Cached()
