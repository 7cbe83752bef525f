"""The student edition: `tito release --out DIR`.

Exercise notebooks go through nbgrader's own preprocessors (the `nbgrader generate_assignment`
sequence, without a database): graded cells are locked, solution regions replaced by a stub that
names the task, outputs cleared, checksums computed. Modules that are not exercises ship solved,
together with their exported package files. Nothing with solutions of an exercise module (modules/,
its package files, outputs) reaches the release; a final scan refuses to publish if any line of a
solution body survived.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .exporter import build, generated_files, install
from .fsutil import atomic_write_bytes, dumps_json
from .notebooks import BEGIN_SOLUTION, END_SOLUTION, notebook_bytes, source_to_notebook, validate
from .tree import STUDENT_EDITION_DIR, ModuleInfo, TitoError, Tree, UsageError

RELEASE_SCHEMA = 1
# Top-level files a student tree needs to install and test itself (its README.md is written from STUDENT_README).
SHIPPED_FILES = ("settings.ini", "setup.py", "Makefile", "requirements.txt", ".gitignore", "pytest.ini")
# The student edition's README: a template whose {{PLACEHOLDERS}} student_readme fills in.
STUDENT_README = Path("docs") / "student" / "README.md"
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
_SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints"}


def stub_for(module: ModuleInfo, grade_id: str) -> str:
    return f'# YOUR CODE HERE\nraise NotImplementedError("Module {module.number:02d}: implement {grade_id}")'


def student_notebook(nb, module: ModuleInfo):
    """The exercise version of a solved module notebook (a new notebook; `nb` is not changed)."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearOutput, ClearSolutions,
                                        ComputeChecksums, LockCells)

    class NamedClearSolutions(ClearSolutions):
        """nbgrader's ClearSolutions, with a stub that names the task (STYLE.md)."""

        def preprocess_cell(self, cell, resources, cell_index):
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {cell_index + 1}")
            self.code_stub = {"python": stub_for(module, grade_id)}
            return super().preprocess_cell(cell, resources, cell_index)

    nb = copy.deepcopy(nb)
    resources: dict = {}
    steps = (LockCells(), NamedClearSolutions(), ClearOutput(), CheckCellMetadata(), ComputeChecksums(),
             ClearHiddenTests(), CheckCellMetadata())
    for step in steps:
        try:
            nb, resources = step.preprocess(nb, resources)
        except RuntimeError as exc:  # nbgrader reports region and metadata problems this way
            raise TitoError(f"{module.rel(module.source)}: nbgrader {type(step).__name__} failed: {exc}") from exc
    return nb


def solution_lines(source_text: str) -> tuple[set[str], set[str]]:
    """(lines inside solution regions, lines outside them), stripped, of a module source."""
    inside, outside = set(), set()
    in_region = False
    for raw in source_text.splitlines():
        line = raw.strip()
        if BEGIN_SOLUTION in line:
            in_region = True
        elif END_SOLUTION in line:
            in_region = False
        elif line:
            (inside if in_region else outside).add(line)
    return inside, outside


def release(tree: Tree, out: Path, exercises: list[ModuleInfo]) -> dict:
    """Build the student edition in a temporary folder beside `out`, check it, then rename it into place."""
    if tree.kind != "instructor":
        raise TitoError("`tito release` needs the instructor tree (with modules/); this is a student edition")
    out = Path(out).resolve()
    if out == tree.root or tree.root in out.parents:
        raise UsageError(f"--out {out} is inside the instructor tree {tree.root}; release to a folder outside it")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out} already exists and is not an empty folder; nothing was overwritten. Choose a new folder or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        manifest = _assemble(tree, staging, exercises)
        if out.exists():
            out.rmdir()
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _assemble(tree: Tree, dest: Path, exercises: list[ModuleInfo]) -> dict:
    exercise_numbers = {m.number for m in exercises}
    _copy_support_files(tree, dest)
    for module in tree.modules:
        nb = source_to_notebook(module.source)
        validate(nb, module.rel(module.source), module)
        if module.number in exercise_numbers:
            nb = student_notebook(nb, module)
        data = notebook_bytes(nb)
        atomic_write_bytes(dest / "nbs" / f"{module.slug}.ipynb", data)
        atomic_write_bytes(dest / STUDENT_EDITION_DIR / f"{module.slug}.ipynb", data)
        for stem in module.given:  # given code ships solved in every edition
            source = module.given_source(stem)
            given = source_to_notebook(source)
            validate(given, module.rel(source), module, given=True)
            data = notebook_bytes(given)
            atomic_write_bytes(dest / "nbs" / f"{module.slug}.{stem}.ipynb", data)
            atomic_write_bytes(dest / STUDENT_EDITION_DIR / f"{module.slug}.{stem}.ipynb", data)
    student_tree = Tree(dest)
    solved = [m for m in student_tree.modules if m.number not in exercise_numbers]
    # Solved modules ship with their package files; exercise modules with those of their given-code notebooks.
    install(student_tree, build(student_tree, student_tree.modules, from_sources=False,
                                given_only=tuple(sorted(exercise_numbers))), complete=False)
    atomic_write_bytes(dest / "README.md", student_readme(tree, exercises, solved).encode("utf-8"))
    _check_no_solutions(tree, dest, exercises)
    manifest = {
        "schema_version": RELEASE_SCHEMA,
        "tinytorch_version": _version(tree),
        "source_commit": _git_commit(tree.root),
        "exercise_modules": [m.slug for m in exercises],
        "solved_modules": [m.slug for m in solved],
    }
    atomic_write_bytes(dest / ".tito" / "release.json", dumps_json(manifest).encode("utf-8"))
    return manifest


def student_readme(tree: Tree, exercises: list[ModuleInfo], solved: list[ModuleInfo]) -> str:
    """The edition's README.md: docs/student/README.md with its placeholders filled in: VERSION, EXERCISES
    (a table of the exercise modules), SOLVED (the modules that ship solved), FIRST and FIRST_NOTEBOOK (the
    first exercise, for the example commands)."""
    path = tree.root / STUDENT_README
    try:
        template = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TitoError(f"{STUDENT_README.as_posix()} cannot be read ({exc}); the student edition's README is made "
                        f"from it: restore it (git checkout {STUDENT_README.as_posix()})") from exc
    rows = [f"| {m.number:02d} | {m.title} | `nbs/{m.slug}.ipynb` | `{m.export_target or '-'}` |" for m in exercises]
    first = exercises[0] if exercises else (solved[0] if solved else None)
    fields = {
        "VERSION": _version(tree),
        "EXERCISES": ("\n".join(["| # | module | notebook | exports to |", "|---|---|---|---|", *rows]) if rows
                      else "None: every module of this edition ships solved."),
        "SOLVED": (", ".join(f"{m.number:02d} {m.title}" for m in solved) + "." if solved
                   else "none, every module is an exercise."),
        "FIRST": str(first.number) if first else "1",
        "FIRST_NOTEBOOK": f"{first.slug}.ipynb" if first else "01_tensor.ipynb",
    }
    unknown = sorted(set(_PLACEHOLDER.findall(template)) - set(fields))
    if unknown:
        raise TitoError(f"{STUDENT_README.as_posix()} has unknown placeholder(s) {', '.join(unknown)}; "
                        f"the known ones are {', '.join(sorted(fields))}")
    return _PLACEHOLDER.sub(lambda match: fields[match[1]], template)


def _copy_support_files(tree: Tree, dest: Path) -> None:
    for name in SHIPPED_FILES:
        if (tree.root / name).is_file():
            shutil.copy2(tree.root / name, dest / name)
    tests = tree.root / "tests"
    (dest / "tests").mkdir()
    if (tests / "conftest.py").is_file():
        shutil.copy2(tests / "conftest.py", dest / "tests" / "conftest.py")
    for module in tree.modules:
        if module.tests.is_dir():
            shutil.copytree(module.tests, dest / "tests" / module.slug, ignore=shutil.ignore_patterns(*_SKIPPED_NAMES))
    generated = set(generated_files(tree))
    for path in sorted(tree.lib.rglob("*")):
        rel = path.relative_to(tree.root)
        if path.is_dir() or _SKIPPED_NAMES & set(rel.parts) or rel.as_posix() in generated:
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / rel)


def _check_no_solutions(tree: Tree, dest: Path, exercises: list[ModuleInfo]) -> None:
    """Refuse to publish if any line of an exercise's solution body appears anywhere in the release.

    Lines that are public anyway are not evidence of a leak: lines outside solution regions, the
    solutions of modules that ship solved, and files shipped verbatim (tests/, tinytorch/tito/, ...).
    """
    secret, public = set(), set()
    for module in tree.modules:
        inside, outside = solution_lines(module.source.read_text(encoding="utf-8"))
        public |= outside
        for stem in module.given:  # given code is public: it ships solved
            public |= set().union(*solution_lines(module.given_source(stem).read_text(encoding="utf-8")))
        if module in exercises:
            secret |= inside
        else:
            public |= inside
    generated = {dest / rel for rel in generated_files(Tree(dest))}
    for path in dest.rglob("*"):
        if path.is_file() and path.suffix != ".ipynb" and path not in generated:
            public |= {line.strip() for line in _text_lines(path)}
    secret -= public
    for path in sorted(dest.rglob("*")):
        if not path.is_file():
            continue
        for lineno, line in enumerate(_text_lines(path), start=1):
            # Notebook JSON stores each line as a quoted string; compare the decoded text as well.
            if {line.strip(), _json_line(line)} & secret:
                raise TitoError(
                    f"release check failed: {path.relative_to(dest)} line {lineno} contains solution code "
                    f"({line.strip()[:60]!r}); nothing was published"
                )


def _text_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return []


def _json_line(line: str) -> str:
    text = line.strip().rstrip(",")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return json.loads(text).strip()
        except ValueError:
            return ""
    return ""


def _version(tree: Tree) -> str:
    from configparser import ConfigParser

    config = ConfigParser(delimiters=["="], interpolation=None)
    config.read(tree.root / "settings.ini", encoding="utf-8")
    return config["DEFAULT"].get("version", "unknown")


def _git_commit(root: Path) -> str:
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"
