"""digits_cnn_pruned and digits_cnn_distilled ship in the zoo with the issue's targets met."""
import numpy as np

from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import load_digits
from tinytorch.models import zoo


def _accuracy(model):
    images, labels = load_digits("test").tensors
    predictions = model(Tensor.from_numpy(images.data)).data.argmax(axis=1)
    return float(np.mean(predictions == labels.data))


def _params(model):
    return sum(p.data.size for p in model.parameters())


def test_pruned_variant_is_smaller_and_within_two_points():
    pruned, base = zoo.load_model("digits_cnn_pruned"), zoo.load_model("digits_cnn")
    assert pruned[0].weight.data.shape == (8, 1, 3, 3) and pruned[3].weight.data.shape == (16, 8, 3, 3)
    assert _params(pruned) < _params(base) / 2
    assert _accuracy(pruned) >= _accuracy(base) - 0.02


def test_distilled_variant_has_half_the_parameters_and_95_percent():
    student, base = zoo.load_model("digits_cnn_distilled"), zoo.load_model("digits_cnn")
    assert 2 * _params(student) <= _params(base)
    assert _accuracy(student) >= 0.95
    manifest = zoo.read_manifest()
    for name in ("digits_cnn_pruned", "digits_cnn_distilled"):
        assert manifest[name]["provider"] == "tinytorch.optimization.compression"
