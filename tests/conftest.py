"""Shared by every test folder (and shipped to students): the tests must exercise THIS tree's package."""
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # hypothesis keeps a cache folder even with database=None; keep it out of the tree.
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "tinytorch-hypothesis"))
    import tinytorch

    where = Path(tinytorch.__file__).resolve().parent
    # `tito module test N` runs these tests against a staging copy of the package (your notebook as it is
    # now, exported beside the installed package) and names that copy in TITO_PACKAGE_UNDER_TEST.
    staged = os.environ.get("TITO_PACKAGE_UNDER_TEST")
    if staged and where == Path(staged).resolve():
        return
    if where != ROOT / "tinytorch":
        raise pytest.UsageError(
            f"these tests would run against {where}, not this tree's package {ROOT / 'tinytorch'}; "
            f"run them from {ROOT} with `python -m pytest`, or use `tito module test N`"
        )
