"""TinyTorch: a notebook-first educational ML framework on numpy.

The package is generated from the course notebooks (`tito export`); only `tinytorch/tito/` and this
file are written by hand. Top-level names are imported lazily so that a module a student has not
finished yet (or has broken) never stops `import tinytorch` or the `tito` command line from working.
"""
import importlib

__version__ = "0.1.0"

# Public name -> the generated module that defines it (see ARCHITECTURE.md, "Module map").
_LAZY_EXPORTS = {
    "Tensor": "tinytorch.core.tensor",
    **dict.fromkeys(("ReLU", "Sigmoid", "Tanh", "GELU", "Softmax"), "tinytorch.core.activations"),
    **dict.fromkeys(("Module", "Parameter", "Linear", "Dropout", "Sequential"), "tinytorch.core.layers"),
    **dict.fromkeys(("MSELoss", "CrossEntropyLoss", "BCELoss"), "tinytorch.core.losses"),
    **dict.fromkeys(("Dataset", "TensorDataset", "DataLoader", "load_digits"), "tinytorch.data.loader"),
    **dict.fromkeys(("no_grad", "Function"), "tinytorch.core.autograd"),
    **dict.fromkeys(("SGD", "Adam", "AdamW"), "tinytorch.core.optimizers"),
    "Trainer": "tinytorch.core.training",
    **dict.fromkeys(("Conv2d", "MaxPool2d", "AvgPool2d", "Flatten"), "tinytorch.core.spatial"),
    "load_model": "tinytorch.models.zoo",
    "Profiler": "tinytorch.profiling.profiler",
}
_AUTOGRAD = "tinytorch.core.autograd"

__all__ = ["__version__", *_LAZY_EXPORTS]


def _import_exported(module_name, public_name):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ImportError(
            f"tinytorch.{public_name} lives in {module_name}, which has not been exported yet: "
            f"complete the module that defines it (`tito module status` lists them)"
        ) from exc


def __getattr__(name):
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tinytorch' has no attribute {name!r}")
    module = _import_exported(module_name, name)
    # The top-level API is the differentiable framework: once module 06 exists, names taken from
    # `tinytorch` come with autograd switched on (importing tinytorch.core.autograd enables it).
    try:
        importlib.import_module(_AUTOGRAD)
    except ModuleNotFoundError as exc:
        if exc.name != _AUTOGRAD:
            raise
    return getattr(module, name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY_EXPORTS))
