"""Example Olympics submission: the digits CNN with int8 weights (module 15's per-channel quantization, calibrated inputs)."""
from tinytorch.models.zoo import load_model


def build_model():
    """The zoo's digits_cnn_int8 with its shipped, checksummed weights, in eval mode."""
    return load_model("digits_cnn_int8")
