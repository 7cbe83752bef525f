"""Example Olympics submission that fails in a clear way: it returns 5 class scores per image instead of
10, so the grader marks it "invalid" (wrong output shape). It passes `tito olympics submit`, which checks
the files without running them: only the grader can see what the model does."""
from tinytorch.core.layers import Module
from tinytorch.models.zoo import load_model


class FirstFiveScores(Module):
    """The baseline CNN, but keeping only the scores of classes 0-4: outputs have shape (n, 5)."""

    def __init__(self):
        super().__init__()
        self.cnn = load_model("digits_cnn")

    def forward(self, x):
        return self.cnn(x)[:, :5]

    def __repr__(self):
        return f"FirstFiveScores(cnn={self.cnn!r})"


def build_model():
    """The broken model (see the module docstring)."""
    return FirstFiveScores().eval()
