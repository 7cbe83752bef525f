"""Example Olympics submission: the reference digits CNN as shipped: the baseline every score is relative to."""
from tinytorch.models.zoo import load_model


def build_model():
    """The zoo's digits_cnn with its shipped, checksummed weights, in eval mode."""
    return load_model("digits_cnn")
