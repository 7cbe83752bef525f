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
}

__all__ = ["__version__", *_LAZY_EXPORTS]


def __getattr__(name):
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tinytorch' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ImportError(
            f"tinytorch.{name} lives in {module_name}, which has not been exported yet: "
            f"complete the module that defines it (`tito module status` lists them)"
        ) from exc
    return getattr(module, name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY_EXPORTS))
