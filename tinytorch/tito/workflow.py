"""The student workflow: module state, running a module's checks, completing and resetting a module."""
from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from .fsutil import atomic_write_bytes, unique_path
from .progress import Progress
from .runner import NotebookRun, TestRun, run_notebook, run_pytest
from .tree import ModuleInfo, TitoError, Tree

# The notebook machinery (nbformat, nbdev, nbgrader) takes seconds to import: commands that only
# read files (list, start, reset in a student tree) import it lazily, when they really need it.

NOT_STARTED, IN_PROGRESS, COMPLETED, PROVIDED = "not started", "in progress", "completed", "provided (solved)"


def pristine_bytes(tree: Tree, module: ModuleInfo) -> bytes:
    """The student-edition notebook the student starts from (and `reset` restores)."""
    if tree.kind == "student":
        try:
            return module.pristine.read_bytes()
        except FileNotFoundError as exc:
            raise TitoError(f"{module.rel(module.pristine)} is missing; this student edition is incomplete, get a fresh `tito release`") from exc
    from .notebooks import notebook_bytes, source_to_notebook
    from .release import student_notebook

    return notebook_bytes(student_notebook(source_to_notebook(module.source), module))


def state(tree: Tree, module: ModuleInfo, completed: dict) -> str:
    """completed (recorded by `module complete`), in progress (a solution cell differs from the
    student edition), or not started."""
    if module.slug in completed:
        return COMPLETED
    if module.slug in _shipped_solved(tree):
        return PROVIDED
    if not module.notebook.exists():
        return NOT_STARTED
    try:
        mine = _solutions(module.notebook.read_bytes())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return IN_PROGRESS  # unreadable, but it was certainly touched
    return NOT_STARTED if mine == _solutions(pristine_bytes(tree, module)) else IN_PROGRESS


def _shipped_solved(tree: Tree) -> set[str]:
    """Modules a student edition ships solved (from `.tito/release.json`; none in the instructor tree)."""
    manifest = tree.root / ".tito" / "release.json"
    if tree.kind != "student" or not manifest.exists():
        return set()
    try:
        return set(json.loads(manifest.read_text(encoding="utf-8")).get("solved_modules", []))
    except ValueError as exc:
        raise TitoError(f"{manifest} is damaged ({exc}); restore it from a fresh `tito release`") from exc


def _solutions(raw: bytes) -> dict[str, str]:
    """grade_id -> source of the solution cells (plain JSON: cheaper than a validated read)."""
    cells = json.loads(raw.decode("utf-8"))["cells"]
    return {cell["metadata"]["nbgrader"]["grade_id"]: "".join(cell["source"]) for cell in cells
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution")}


@dataclass
class CheckReport:
    notebook: NotebookRun
    tests: TestRun

    @property
    def ok(self) -> bool:
        return self.notebook.ok and self.tests.ok


def run_checks(tree: Tree, module: ModuleInfo) -> CheckReport:
    """The module's notebook headless and its tests, side by side (two processes, two cores)."""
    if not module.notebook.exists():
        raise TitoError(f"{module.rel(module.notebook)} does not exist; {restore_hint(tree, module)}")
    with ThreadPoolExecutor(max_workers=1) as pool:
        tests = pool.submit(run_pytest, tree.root, module.tests)
        notebook = run_notebook(module.notebook, tree.root, module.rel(module.notebook))
        return CheckReport(notebook, tests.result())


def restore_hint(tree: Tree, module: ModuleInfo) -> str:
    if tree.kind == "instructor":
        return f"run `tito export {module.number}` to generate it from {module.rel(module.source)}"
    return f"run `tito module reset {module.number}` to restore the student edition"


def complete(tree: Tree, module: ModuleInfo, say) -> CheckReport:
    """Export the student's notebook, run its checks, and record progress only if all of them passed."""
    from .exporter import build, install

    start = time.perf_counter()
    nb_rel = module.rel(module.notebook)
    if not module.notebook.exists():
        raise TitoError(f"{nb_rel} does not exist; {restore_hint(tree, module)}")
    say(f"Exporting {nb_rel} -> {module.export_target}")
    result = build(tree, [module], from_sources=False)  # raises before anything is written
    written, _ = install(tree, result, complete=False)
    say(f"  wrote {', '.join(written)}" if written else "  package already up to date")
    say(f"Running {nb_rel} headless and {module.rel(module.tests)}/ ...")
    report = run_checks(tree, module)
    if report.ok:
        Progress(tree.root).record(module.slug, {
            "completed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tests_passed": report.tests.passed,
            "tests_skipped": len(report.tests.skipped),
            "notebook_cells": report.notebook.cells,
            "notebook_sha256": hashlib.sha256(module.notebook.read_bytes()).hexdigest(),
            "seconds": round(time.perf_counter() - start, 2),
        })
    return report


def reset(tree: Tree, module: ModuleInfo, yes: bool) -> tuple[str, str | None]:
    """Restore the notebook from the student edition; returns (what happened, backup path or None)."""
    pristine = pristine_bytes(tree, module)
    nb_rel = module.rel(module.notebook)
    if module.notebook.exists() and module.notebook.read_bytes() == pristine:
        return f"{nb_rel} is already the student edition; nothing to do", None
    backup = None
    if module.notebook.exists():
        if not yes:
            raise TitoError(
                f"{nb_rel} has changes that a reset would discard; run `tito module reset {module.number} --yes` "
                "to reset it (a backup copy is kept in .tito/backups/)"
            )
        folder = tree.root / ".tito" / "backups"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        backup_path = unique_path(folder, f"{module.slug}-{stamp}", ".ipynb")
        atomic_write_bytes(backup_path, module.notebook.read_bytes())
        backup = backup_path.relative_to(tree.root).as_posix()
    atomic_write_bytes(module.notebook, pristine)
    return f"{nb_rel} restored from the student edition", backup
