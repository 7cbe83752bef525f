"""digits_cnn_int8 ships in the zoo: load_model gives the int8 model, within 1 point of float32."""
import numpy as np

from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import load_digits
from tinytorch.models import zoo
from tinytorch.optimization.quantization import ZOO_VARIANTS


def _accuracy(model):
    images, labels = load_digits("test").tensors
    predictions = model(Tensor.from_numpy(images.data)).data.argmax(axis=1)
    return float(np.mean(predictions == labels.data))


def test_int8_variant_loads_as_int8_and_keeps_accuracy():
    assert "digits_cnn_int8" in ZOO_VARIANTS and "digits_cnn_int8" in zoo.model_names()
    int8, base = zoo.load_model("digits_cnn_int8"), zoo.load_model("digits_cnn")
    stored = {name: p.data for name, p in int8.named_parameters()}
    assert any(a.dtype == np.int8 for a in stored.values())
    float_bytes = sum(p.data.nbytes for p in base.parameters())
    assert float_bytes / sum(a.nbytes for a in stored.values()) >= 3.5
    assert _accuracy(int8) >= _accuracy(base) - 0.01
    entry = zoo.read_manifest()["digits_cnn_int8"]
    assert entry["provider"] == "tinytorch.optimization.quantization" and entry["base"] == "digits_cnn"
    assert entry["test_correct"] == round(_accuracy(int8) * 359)
