"""Hostile: Ships its own numpy.py and tinytorch/tito/olympics/worker.py, hoping they are imported first."""
def build_model():
    from tinytorch.models.zoo import load_model

    return load_model("digits_cnn")
