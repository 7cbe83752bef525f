"""Example Olympics submission: a smaller digits CNN trained by knowledge distillation from the baseline (module 16)."""
from tinytorch.models.zoo import load_model


def build_model():
    """The zoo's digits_cnn_distilled with its shipped, checksummed weights, in eval mode."""
    return load_model("digits_cnn_distilled")
