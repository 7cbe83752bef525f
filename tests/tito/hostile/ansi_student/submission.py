"""Hostile: A student id full of terminal escapes and a right-to-left override."""
def build_model():
    from tinytorch.models.zoo import load_model

    return load_model("digits_cnn")
