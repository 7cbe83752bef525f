"""Example Olympics submission: the digits CNN with half of its channels pruned (module 16), then fine-tuned."""
from tinytorch.models.zoo import load_model


def build_model():
    """The zoo's digits_cnn_pruned with its shipped, checksummed weights, in eval mode."""
    return load_model("digits_cnn_pruned")
