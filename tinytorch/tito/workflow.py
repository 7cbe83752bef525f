"""The student workflow: module state, running a module's checks, completing and resetting a module."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .fsutil import atomic_write_bytes, unique_path
from .progress import Progress
from .runner import NotebookRun, PytestProcess, TestRun, run_notebook
from .tree import Blocker, stubs_in, ModuleInfo, TitoError, Tree, blockers, module_needs

# The notebook machinery (nbformat, nbdev, nbgrader) takes seconds to import: commands that only
# read files (list, start, reset in a student tree) import it lazily, when they really need it.

NOT_STARTED, IN_PROGRESS, COMPLETED, PROVIDED = "not started", "in progress", "completed", "provided (solved)"
COMPLETED_THEN_FAILED = "completed, last complete FAILED"


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


def state(tree: Tree, module: ModuleInfo, completed: dict, failed: dict | None = None) -> str:
    """completed (recorded by `module complete`; flagged when a later `module complete` failed), provided
    (shipped solved), in progress (a solution cell differs from the student edition), or not started."""
    if module.slug in completed:
        return COMPLETED_THEN_FAILED if failed_after(completed[module.slug], (failed or {}).get(module.slug)) else COMPLETED
    if module.slug in shipped_solved(tree):
        return PROVIDED
    if not module.notebook.exists():
        return NOT_STARTED
    try:
        mine = _solutions(module.notebook.read_bytes())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return IN_PROGRESS  # unreadable, but it was certainly touched
    return NOT_STARTED if mine == _solutions(pristine_bytes(tree, module)) else IN_PROGRESS


def failed_after(completion: dict | None, failure: dict | None) -> bool:
    """Whether a failed `module complete` came after the completion (ISO timestamps in UTC compare as text)."""
    return bool(completion and failure and str(failure.get("failed_at", "")) >= str(completion.get("completed_at", "")))


def package_digest(tree: Tree, rels) -> dict[str, str | None]:
    """sha256 of each generated file now in the package (None when it is missing)."""
    found = {}
    for rel in sorted(rels):
        path = tree.root / rel
        found[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return found


def failure_note(tree: Tree, module: ModuleInfo, completion: dict, failure: dict) -> str:
    """What `status` says of a completed module whose last `module complete` failed."""
    recorded = failure.get("package_sha256") or {}
    now = package_digest(tree, recorded) if recorded else {}
    if recorded and now == recorded:
        holds = "the package now holds that code"
    elif completion.get("package_sha256") and package_digest(tree, completion["package_sha256"]) == completion["package_sha256"]:
        holds = "the package still holds the completed code"
    elif failure.get("package_changed"):
        holds = "the package now holds that code"
    else:
        holds = "the package may hold that code"
    first = f" (first failure: {failure['first_failure']})" if failure.get("first_failure") else ""
    return (f"completed earlier; the last `tito module complete {module.number}` FAILED at {failure.get('failed_at', '?')}"
            f"{first} and {holds}; run it again once your notebook passes")


def shipped_solved(tree: Tree) -> set[str]:
    """Modules a student edition ships solved (from `.tito/release.json`; none in the instructor tree)."""
    manifest = tree.root / ".tito" / "release.json"
    if tree.kind != "student" or not manifest.exists():
        return set()
    try:
        return set(json.loads(manifest.read_text(encoding="utf-8")).get("solved_modules", []))
    except ValueError as exc:
        raise TitoError(f"{manifest} is damaged ({exc}); restore it from a fresh `tito release`") from exc


_shipped_solved = shipped_solved  # the name used before


def _solutions(raw: bytes) -> dict[str, str]:
    """grade_id -> source of the solution cells (plain JSON: cheaper than a validated read)."""
    cells = json.loads(raw.decode("utf-8"))["cells"]
    return {cell["metadata"]["nbgrader"]["grade_id"]: "".join(cell["source"]) for cell in cells
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution")}


# --- what a module builds on ---------------------------------------------------------------------
def prerequisites(tree: Tree, module: ModuleInfo) -> list[Blocker]:
    """The modules that this module's notebook and tests import (directly or through the package) and that
    are not implemented yet."""
    return blockers(tree, module_needs(tree, module), exclude=(module.number,))


def prerequisite_note(module: ModuleInfo, missing: list[Blocker]) -> str:
    first = missing[0]
    others = "".join(f", {b.label()}" for b in missing[1:])
    return (f"module {module.number:02d} ({module.name}) builds on {first.label()}{others}, which "
            f"{'is' if len(missing) == 1 else 'are'} not implemented yet ({first.reason()}): complete "
            f"{first.number:02d} first (`tito module complete {first.number}`); checks that use it fail until then")


# --- running the checks ---------------------------------------------------------------------------
@dataclass
class CheckReport:
    notebook: NotebookRun
    tests: TestRun
    staged: bool = False                               # tested a staging copy of the package (`module test`)
    exercises: list["Exercise"] = field(default_factory=list)
    untraced: list[tuple[str, str]] = field(default_factory=list)  # failures not traced to one exercise
    missing: list[Blocker] = field(default_factory=list)           # modules it builds on, not implemented

    @property
    def ok(self) -> bool:
        return self.notebook.ok and self.tests.ok


def run_checks(tree: Tree, module: ModuleInfo, package_root: Path | None = None,
               package_files: dict[str, bytes] | None = None) -> CheckReport:
    """The module's notebook headless and its tests, side by side (two processes, two cores).

    package_root: a folder holding a staging copy of the package to test instead of the tree's.
    package_files: the module's generated files as tested (to trace failures to the exercise cells)."""
    if not module.notebook.exists():
        raise TitoError(f"{module.rel(module.notebook)} does not exist; {restore_hint(tree, module)}")
    tests = PytestProcess(tree.root, module.tests, package_root)
    try:
        notebook = run_notebook(module.notebook, tree.root, module.rel(module.notebook), package_root=package_root)
        report = CheckReport(notebook, tests.result(), staged=package_root is not None)
    except BaseException:
        tests.kill()
        raise
    report.exercises, report.untraced = summarise(module, report, package_files or {})
    return report


def restore_hint(tree: Tree, module: ModuleInfo) -> str:
    if tree.kind == "instructor":
        return f"run `tito export {module.number}` to generate it from {module.rel(module.source)}"
    return f"run `tito module reset {module.number}` to restore the student edition"


@contextmanager
def deferred_interrupt():
    """Hold a Ctrl-C until the block is done (installing files must not stop halfway), then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


@contextmanager
def staged_package(tree: Tree, files: dict[str, bytes]):
    """A private copy of the tree's package with `files` (path relative to the tree root -> bytes) in place:
    what `tito module test` runs against, so testing never changes the installed package."""
    base = tree.root / ".tito"
    base.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="tmp-test-", dir=base))
    try:
        shutil.copytree(tree.lib, folder / tree.lib.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for rel, data in files.items():
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _module_files(result, module: ModuleInfo) -> dict[str, bytes]:
    nb_rel = module.rel(module.notebook)
    return {rel: data for rel, data in result.files.items() if result.owners.get(rel) == nb_rel}


def test(tree: Tree, module: ModuleInfo, say) -> CheckReport:
    """Export the notebook as it is now into a staging copy of the package and run the checks against it.
    The installed package and the progress are not touched."""
    from .exporter import build

    nb_rel = module.rel(module.notebook)
    if not module.notebook.exists():
        raise TitoError(f"{nb_rel} does not exist; {restore_hint(tree, module)}")
    missing = prerequisites(tree, module)
    if missing:
        say(f"Note: {prerequisite_note(module, missing)}")
    say(f"Exporting {nb_rel} as it is now into a staging copy of the package (the installed package is not changed)")
    result = build(tree, [module], from_sources=False)  # a notebook that does not parse stops here, naming cell and line
    files = _module_files(result, module)
    stale = sorted(rel for rel, data in files.items() if not (tree.root / rel).is_file() or (tree.root / rel).read_bytes() != data)
    say(_running_line(module))
    with staged_package(tree, result.files) as folder:
        report = run_checks(tree, module, package_root=folder, package_files=files)
    report.missing = missing
    if stale:
        say(f"  note: the installed package differs from your notebook ({', '.join(stale)}); "
            f"`tito module complete {module.number}` installs it")
    return report


def _running_line(module: ModuleInfo) -> str:
    from .runner import blas_threads

    threads, source = blas_threads()
    return (f"Running {module.rel(module.notebook)} headless and {module.rel(module.tests)}/ "
            f"(BLAS threads: {threads}, {source}) ...")


def complete(tree: Tree, module: ModuleInfo, say) -> CheckReport:
    """Export the student's notebook, run its checks, and record progress only if all of them passed.
    A failure is recorded too (next to, never instead of, an earlier completion)."""
    from .exporter import build, install

    start = time.perf_counter()
    nb_rel = module.rel(module.notebook)
    if not module.notebook.exists():
        raise TitoError(f"{nb_rel} does not exist; {restore_hint(tree, module)}")
    progress = Progress(tree.root)
    progress.load()  # a damaged progress file stops us before anything changes
    missing = prerequisites(tree, module)
    if missing:
        say(f"Note: {prerequisite_note(module, missing)}")
    say(f"Exporting {nb_rel} -> {module.export_target}")
    result = build(tree, [module], from_sources=False)  # raises before anything is written
    files = _module_files(result, module)
    with deferred_interrupt():
        written, _ = install(tree, result, complete=False)
    say(f"  wrote {', '.join(written)}" if written else "  package already up to date")
    say(_running_line(module))
    report = run_checks(tree, module, package_files=files)
    report.missing = missing
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    digest = {rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(files.items())}
    notebook_sha = hashlib.sha256(module.notebook.read_bytes()).hexdigest()
    if report.ok:
        progress.record(module.slug, {
            "completed_at": now,
            "tests_passed": report.tests.passed,
            "tests_skipped": len(report.tests.skipped),
            "notebook_cells": report.notebook.cells,
            "notebook_sha256": notebook_sha,
            "package_sha256": digest,
            "seconds": round(time.perf_counter() - start, 2),
        })
    else:
        progress.record_failure(module.slug, {
            "failed_at": now,
            "notebook_sha256": notebook_sha,
            "package_sha256": digest,
            "package_changed": bool([rel for rel in written if rel in files]),
            "tests_passed": report.tests.passed,
            "tests_failed": len(report.tests.failed),
            "first_failure": first_failure(report),
        })
    return report


def first_failure(report: CheckReport) -> str:
    if not report.notebook.ok:
        return f"notebook: {report.notebook.error.splitlines()[0]}"
    if report.tests.failed:
        name, message = report.tests.failed[0]
        return f"{name}: {(message.splitlines() or [''])[0]}"
    return ""


# --- the summary by exercise ----------------------------------------------------------------------
@dataclass(eq=False)
class Exercise:
    """One exercise of a notebook: a solution cell (code the student writes) or a graded test cell."""

    grade_id: str
    kind: str                    # "solution" or "test"
    index: int                   # cell index in the notebook
    failures: list[str] = field(default_factory=list)   # what failed in it, first one first
    ran: bool = True
    stub: bool = False           # the solution cell still raises its stub: not implemented yet
    tests_failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.ran and not self.failures and not self.stub


_CELL_MARK = re.compile(r"^# %% \S+\.ipynb #(\S+)\s*$")
_PY_FRAME = re.compile(r"^(\S*?tinytorch/\S+\.py):(\d+): in \S+")


def _cell_lines(files: dict[str, bytes]) -> dict[str, list[tuple[int, str]]]:
    """Generated file -> [(first line, notebook cell id)] from nbdev's `# %% ../nbs/NN.ipynb #id` markers."""
    found = {}
    for rel, data in files.items():
        marks = []
        for lineno, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            match = _CELL_MARK.match(line)
            if match:
                marks.append((lineno, match[1]))
        found[rel] = marks
    return found


def _traced_cell(traceback: str, marks: dict[str, list[tuple[int, str]]]) -> str | None:
    """The notebook cell id of the innermost traceback frame inside the module's generated files."""
    cell = None
    for line in traceback.splitlines():
        match = _PY_FRAME.match(line.strip())
        if not match:
            continue
        path = match[1]
        rel = path[path.rindex("tinytorch/"):] if "tinytorch/" in path else path
        if rel not in marks:
            continue
        lineno = int(match[2])
        owners = [cell_id for start, cell_id in marks[rel] if start <= lineno]
        if owners:
            cell = owners[-1]
    return cell


def summarise(module: ModuleInfo, report: CheckReport, files: dict[str, bytes]):
    """([Exercise], untraced failures): each failure of the run assigned to the exercise it comes from.

    A failure is assigned to a solution cell when its stub names it (`NotImplementedError("Module NN:
    implement <grade_id>")`) or when the innermost frame of its traceback is code exported from that cell
    (nbdev's cell markers in the generated file) or defined in that cell (notebook tracebacks). A graded
    test cell fails when it raised when the notebook ran. Anything else is listed as not traced."""
    from .notebooks import first_line

    nb = report.notebook.executed
    if nb is None:
        return [], [(name, message) for name, message in report.tests.failed]
    exercises: dict[str, Exercise] = {}
    by_index: dict[int, Exercise] = {}
    by_cell_id: dict[str, Exercise] = {}
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade_id") or not (meta.get("solution") or meta.get("grade")):
            continue
        exercise = Exercise(meta["grade_id"], "solution" if meta.get("solution") else "test", index,
                            ran=cell.get("execution_count") is not None)
        if meta.get("solution") and meta["grade_id"] in stubs_in(cell.source):
            exercise.stub = True
        exercises[exercise.grade_id] = by_index[index] = by_cell_id[cell.get("id", "")] = exercise
    untraced = []
    marks = _cell_lines(files)

    def stub_target(text: str) -> Exercise | None:
        for match in re.finditer(r"Module (\d+): implement (\S+?)['\")]*(?:\s|$)", text):
            if int(match[1]) == module.number and match[2] in exercises:
                return exercises[match[2]]
        return None

    for error in report.notebook.errors:
        what = f"{error.ename}: {error.evalue}" if error.evalue else error.ename
        own_line = next((frame.line for frame in error.frames if frame.cell == error.index), None)
        own = by_index.get(error.index)
        if own is not None:
            own.failures.append(f"line {own_line}: {what}" if own_line else what)
        inner = next((frame for frame in reversed(error.frames) if frame.cell is not None), None)
        traced = by_index.get(inner.cell) if inner is not None else None
        stubbed = stub_target(f"{error.evalue} ")
        source = (f"graded test cell {own.grade_id}" if own is not None and own.kind == "test"
                  else f"the notebook cell starting \"{first_line(nb.cells[error.index].source)}\"" if error.index >= 0
                  else "the notebook")
        others = [e for e in dict.fromkeys([stubbed, traced]) if e is not None and e is not own]
        for exercise in others:
            exercise.failures.append(f"{source}: {what}")
        if own is None and not others:
            untraced.append(("notebook", error.description.splitlines()[0]))
    for name, message in report.tests.failed:
        line = f"{name}: {(message.splitlines() or [''])[0]}"
        exercise = stub_target(f"{message} ") or by_cell_id.get(_traced_cell(report.tests.tracebacks.get(name, ""), marks) or "")
        if exercise is None or exercise.kind != "solution":
            untraced.append((name, (message.splitlines() or [""])[0]))
        else:
            exercise.tests_failed.append(line)
    for exercise in exercises.values():
        exercise.failures[:0] = exercise.tests_failed  # the first failing test first, then the notebook's
    return sorted(exercises.values(), key=lambda e: (e.kind != "solution", e.index)), untraced


def summary_lines(module: ModuleInfo, report: CheckReport) -> list[str]:
    """The short summary that ends `module complete` and `module test`: one line per exercise."""
    lines = []
    if report.exercises:
        passed = sum(exercise.ok for exercise in report.exercises)
        lines.append(f"Summary by exercise ({passed} of {len(report.exercises)} passed; exercises are the graded cells of "
                     f"{module.rel(module.notebook)}, failures traced to them by stub name or traceback):")
        width = max(len(exercise.grade_id) for exercise in report.exercises)
        for exercise in report.exercises:
            kind = "solution  " if exercise.kind == "solution" else "test cell "
            more = f" (+{len(exercise.failures) - 1} more)" if len(exercise.failures) > 1 else ""
            if exercise.ok:
                verdict = "passed"
            elif exercise.stub:
                first = f"; first failure: {_cut(exercise.failures[0])}{more}" if exercise.failures else ""
                verdict = f"NOT IMPLEMENTED (still raises its stub){first}"
            elif not exercise.ran:
                verdict = "NOT RUN (the notebook stopped before it)"
            else:
                verdict = f"FAILED  {_cut(exercise.failures[0])}{more}"
            lines.append(f"  {kind}{exercise.grade_id.ljust(width)}  {verdict}")
    if report.untraced:
        name, message = report.untraced[0]
        lines.append(f"  not traced to one exercise: {len(report.untraced)} failure(s); first: {_cut(f'{name}: {message}')}")
    for blocker in report.missing:
        lines.append(f"  builds on {blocker.label()}, not implemented yet: complete it first (`tito module complete {blocker.number}`)")
    return lines


def _cut(text: str, limit: int = 160) -> str:
    text = text.splitlines()[0] if text else ""
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
