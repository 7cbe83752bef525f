"""Every notebook in nbs/ runs top to bottom headless (nbclient + ipykernel, offline)."""
from pathlib import Path

import pytest

from tinytorch.tito.runner import run_notebook

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "nbs").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_headless(path):
    run = run_notebook(path, ROOT, shown_as=path.relative_to(ROOT).as_posix())
    assert run.ok, run.error
    assert run.cells > 0
    print(f"{path.name}: {run.cells} code cells in {run.seconds:.1f} s")
