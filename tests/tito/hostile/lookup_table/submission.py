"""Hostile: Answers the public test split by content (a table of its labels), and a constant otherwise."""
import hashlib

import numpy as np


def build_model():
    from tinytorch.benchmarking.harness import dataset_arrays
    from tinytorch.data.loader import load_digits

    x, y = dataset_arrays(load_digits("test"))
    where = {hashlib.sha1(np.ascontiguousarray(row).tobytes()).digest(): k for k, row in enumerate(x)}

    class Lookup:
        labels = y.astype(np.int64)          # the declared state: shuffle it and the answers are wrong

        def __call__(self, batch):
            rows = [where.get(hashlib.sha1(np.ascontiguousarray(r).tobytes()).digest()) for r in batch]
            return np.array([self.labels[k] if k is not None else 0 for k in rows], np.int64)

        def state_dict(self):
            return {"labels": self.labels}

        def load_state_dict(self, state):
            self.labels = np.asarray(state["labels"], np.int64)

    return Lookup()
