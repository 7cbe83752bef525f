"""Running a module's checks: its notebook headless (nbclient + ipykernel) and its pytest folder.

Both run against the package of the tree being worked on (PYTHONPATH = the tree root), never against
whatever tinytorch happens to be installed elsewhere. Results are real counts parsed from what ran.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from .tree import MODULE_MAP


NOTEBOOK_TIMEOUT_S = 600  # per cell; a notebook is meant to finish in well under a minute
PYTEST_TIMEOUT_S = 1800


def tree_env(root: Path) -> dict[str, str]:
    """Environment for child processes: this tree's package first, headless plotting, no pytest leakage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_CORE_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["MPLBACKEND"] = "Agg"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass
class NotebookRun:
    path: str
    cells: int
    seconds: float
    error: str | None = None  # which cell failed and how

    @property
    def ok(self) -> bool:
        return self.error is None


def run_notebook(nb_path: Path, root: Path, shown_as: str | None = None, timeout: int = NOTEBOOK_TIMEOUT_S) -> NotebookRun:
    """Execute a notebook top to bottom in a fresh kernel, in its own folder, as Jupyter would."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellControlSignal, CellTimeoutError, DeadKernelError

    from .notebooks import read_notebook

    shown_as = shown_as or str(nb_path)
    nb = read_notebook(nb_path, shown_as)
    code_cells = sum(1 for cell in nb.cells if cell.cell_type == "code")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            resources={"metadata": {"path": str(nb_path.parent)}})
    start = time.perf_counter()
    error = None
    try:
        client.execute(env=tree_env(root), cwd=str(nb_path.parent))
    except (CellControlSignal, CellTimeoutError, DeadKernelError) as exc:
        error = _describe_failure(nb, shown_as, exc)
    return NotebookRun(shown_as, code_cells, time.perf_counter() - start, error)


def _describe_failure(nb, shown_as: str, exc: Exception) -> str:
    from .notebooks import cell_label

    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{cell_label(shown_as, index, cell)} raised {output.get('ename')}: {output.get('evalue')}"
    name = type(exc).__name__
    detail = str(exc).strip().splitlines()
    return f"{shown_as}: {name}: {detail[-1] if detail else 'the kernel stopped'}"


@dataclass
class TestRun:
    """What pytest reported for one folder, from its JUnit XML (real counts, nothing assumed)."""

    folder: str
    returncode: int
    seconds: float
    passed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (test id, message), failures and errors
    skipped: list[tuple[str, str]] = field(default_factory=list)
    output_tail: str = ""

    @property
    def total(self) -> int:
        return self.passed + len(self.failed) + len(self.skipped)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.failed and self.passed > 0


def run_pytest(root: Path, folder: Path, timeout: int = PYTEST_TIMEOUT_S) -> TestRun:
    """Run pytest on one test folder in a subprocess, against the package of the tree at `root`."""
    shown = folder.relative_to(root).as_posix() if folder.is_relative_to(root) else str(folder)
    if not folder.is_dir():
        return TestRun(shown, 4, 0.0, failed=[(shown, f"no test folder {shown}; every module needs tests in tests/NN_name/")])
    with tempfile.TemporaryDirectory(prefix="tito-pytest-") as tmp:
        report = Path(tmp) / "report.xml"
        cmd = [sys.executable, "-m", "pytest", shown, "-q", "--tb=line", "-p", "no:cacheprovider", "-p", "no:xdist",
               f"--junitxml={report}", "-o", "junit_family=xunit2"]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=root, env=tree_env(root), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return TestRun(shown, 124, timeout, failed=[(shown, f"pytest did not finish within {timeout} s")])
        run = TestRun(shown, proc.returncode, time.perf_counter() - start)
        run.output_tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        if report.exists():
            _read_junit(report, run, root)
        if proc.returncode == 5:
            run.failed.append((shown, "pytest collected no tests; a module needs real tests to complete"))
        elif proc.returncode != 0 and not run.failed:
            run.failed.append((shown, f"pytest exited with status {proc.returncode}:\n{run.output_tail}"))
    return run


def _node_id(classname: str, name: str, root: Path) -> str:
    """pytest's node id (tests/01_tensor/test_x.py::TestY::test_z) from JUnit's dotted classname."""
    parts = classname.split(".") if classname else []
    whole = Path(*(classname.split(".") if classname else []), *name.split(".")).with_suffix(".py")
    if (root / whole).is_file():  # a collection error names the test file itself, dotted
        return whole.as_posix()
    for cut in range(len(parts), 0, -1):
        candidate = Path(*parts[:cut]).with_suffix(".py")
        if (root / candidate).is_file():
            return "::".join([candidate.as_posix(), *parts[cut:], name])
    return "::".join(filter(None, [classname, name]))


def _missing_module_hint(message: str) -> str:
    """' (complete module NN name first)' when an import failed on a module that is not exported yet."""
    match = re.search(r"No module named '(tinytorch(?:\.\w+)*)'", message)
    if not match:
        return ""
    missing = match[1]
    for number, (name, target) in MODULE_MAP.items():
        if target.rstrip("*").rstrip(".") == missing or target == missing or target.startswith(missing + "."):
            return f" (module {number:02d} {name} exports it: complete that module first)"
    return ""


def _read_junit(report: Path, run: TestRun, root: Path) -> None:
    for case in ET.parse(report).getroot().iter("testcase"):
        name = _node_id(case.get("classname", ""), case.get("name", ""), root)
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skipped = case.find("skipped")
        if problem is not None:
            message = (problem.get("message") or problem.text or "").strip()
            if message == "collection failure":  # the reason is the last error line of the traceback
                errors = [line[1:].strip() for line in (problem.text or "").splitlines() if line.startswith("E ")]
                message = f"could not import the tests: {errors[-1] if errors else 'see pytest output'}"
                message += _missing_module_hint(message)
            run.failed.append((name, message))
        elif skipped is not None:
            run.skipped.append((name, (skipped.get("message") or "").strip()))
        else:
            run.passed += 1
