"""Module sources -> notebooks: conversion, deterministic serialisation and validation.

A module source is a Jupytext percent-format file. Its notebook is a pure function of its text:
fixed notebook metadata, only the cell metadata the course uses (nbgrader, tags), no outputs, and
cell ids derived from the cell contents (Jupytext would give random ones), so exporting twice changes
no byte.
"""
from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

import nbformat

from .tree import LIB_NAME, ModuleInfo, TitoError, target_allowed, MODULE_MAP

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
KEPT_CELL_METADATA = ("nbgrader", "tags")
# nbdev directives the course uses; anything else is almost always a typo that would silently
# drop a cell from the package (e.g. `#| exprot`).
DIRECTIVES = {"default_exp": (1, 1), "export": (0, 1), "exporti": (0, 1), "exports": (0, 1), "hide": (0, 0),
              "notebook_import": (2, 10_000)}
EXPORT_DIRECTIVES = {"export", "exporti", "exports"}
NBGRADER_KEYS = ("grade", "grade_id", "locked", "solution", "schema_version")
NBGRADER_SCHEMA = 3
# nbgrader's ClearSolutions treats any line containing these words as a delimiter; so do we.
BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
_DIRECTIVE_LINE = re.compile(r"^\s*#\|\s*(.*)$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_GRADE_ID = re.compile(r"^[A-Za-z0-9_-]+$")


# --- conversion and serialisation -------------------------------------------------------------
def source_to_notebook(path: Path) -> nbformat.NotebookNode:
    """Convert a percent-format module source into its (normalised) notebook."""
    import jupytext

    text = Path(path).read_text(encoding="utf-8")
    try:
        nb = jupytext.reads(text, fmt="py:percent")
    except Exception as exc:  # jupytext raises assorted types; name the file and re-raise as ours
        raise TitoError(f"{path}: Jupytext could not read it as a percent-format notebook: {exc}") from exc
    return normalise(nb)


def normalise(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Fixed metadata, course-relevant cell metadata only, no outputs, content-derived cell ids."""
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = nbformat.from_dict({"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}})
    seen: dict[str, int] = {}
    for cell in nb.cells:
        cell.metadata = nbformat.from_dict({k: cell.metadata[k] for k in KEPT_CELL_METADATA if k in cell.metadata})
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.pop("attachments", None)
        digest = hashlib.sha1(f"{cell.cell_type}\0{cell.source}".encode("utf-8")).hexdigest()[:8]
        seen[digest] = seen.get(digest, 0) + 1
        cell.id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
    return nb


def notebook_bytes(nb: nbformat.NotebookNode) -> bytes:
    """The canonical on-disk form: nbformat's JSON (sorted keys, indent 1) plus a final newline."""
    text = nbformat.writes(nb, version=4)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def read_notebook(path: Path, shown_as: str | None = None) -> nbformat.NotebookNode:
    """Read a notebook from disk with an error that names the file when it is not a valid notebook."""
    shown_as = shown_as or str(path)
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TitoError(f"{shown_as} does not exist") from exc
    try:
        return nbformat.reads(raw, as_version=4)
    except (ValueError, KeyError, TypeError) as exc:
        raise TitoError(f"{shown_as} is not a valid notebook ({exc}); restore it with `tito module reset`") from exc


def cell_label(where: str, index: int, cell, cells=None) -> str:
    """How messages name a cell.

    With the notebook's cells (a notebook a student works on): by what Jupyter shows, since it shows
    neither cell numbers nor ids: the nbgrader grade_id of a graded or solution cell (the stubs and the
    summary of `tito module complete` use it), otherwise the cell's first line, and the nearest markdown
    heading above it. Without them (an instructor's module source): the cell's position, id and grade_id."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    grade_id = meta.get("grade_id")
    if cells is None:
        parts = [f"id {cell.get('id')}"] if cell.get("id") else []
        if grade_id:
            parts.append(f"grade_id {grade_id}")
        extra = f" ({', '.join(parts)})" if parts else ""
        return f"{where}, cell {index + 1}{extra}"
    kind = "cell" if cell.get("cell_type") == "code" else "markdown cell"
    if meta.get("grade") and not meta.get("solution"):
        kind = "graded test cell"
    elif meta.get("solution"):
        kind = "solution cell"
    if grade_id:
        text = f'{where}, {kind} "{grade_id}"'
    else:
        text = f'{where}, the {kind} starting "{first_line(cell.get("source", ""))}"'
    heading = nearest_heading(cells, index)
    return f'{text} under "{heading}"' if heading else text


def first_line(source: str, limit: int = 50) -> str:
    """The first line of a cell that a student reads as its start (directives and blank lines skipped)."""
    for line in source.splitlines():
        if line.strip() and not _DIRECTIVE_LINE.match(line):
            line = line.strip()
            return line if len(line) <= limit else line[:limit - 3] + "..."
    return ""


def nearest_heading(cells, index: int) -> str | None:
    """The last markdown heading (`# ...`, `## ...`) above cell `index`, or None."""
    for cell in reversed(list(cells)[:index]):
        if cell.get("cell_type") != "markdown":
            continue
        headings = [line.strip() for line in cell.get("source", "").splitlines() if re.match(r"^#{1,6}\s+\S", line.strip())]
        if headings:
            return headings[-1]
    return None


# --- directives and solution markers ------------------------------------------------------------
def directives(source: str) -> list[tuple[str, list[str], int]]:
    """The `#| name args` lines at the top of a code cell as (name, args, line number)."""
    found = []
    for lineno, line in enumerate(source.splitlines(), start=1):
        if not line.strip():
            continue
        match = _DIRECTIVE_LINE.match(line)
        if not match:
            break
        words = match[1].replace(":", " ").split()
        if words:
            found.append((words[0], words[1:], lineno))
    return found


def strip_solution_markers(source: str) -> str:
    """Drop the `### BEGIN/END SOLUTION` lines, keeping the solution code between them."""
    lines = source.split("\n")
    return "\n".join(line for line in lines if BEGIN_SOLUTION not in line and END_SOLUTION not in line)


def is_export_cell(cell) -> bool:
    return cell.cell_type == "code" and any(name in EXPORT_DIRECTIVES for name, _, _ in directives(cell.source))


# --- validation ---------------------------------------------------------------------------------
def validate(nb: nbformat.NotebookNode, where: str, module: ModuleInfo, given: bool = False) -> str | None:
    """Check a module notebook before anything is exported from it; return its export target.

    Raises TitoError naming the notebook and cell for: unknown or misplaced directives, a missing or
    wrong `default_exp`, a code cell that is not valid Python, bad nbgrader metadata, and solution
    markers that are unbalanced or outside solution cells. A given-code notebook (given=True) ships solved:
    it has no solution regions and no graded cells, says at its top that it is given, and exports to files
    of its own (not a module map target).
    """
    if given:
        _check_given(nb, where, module)
    target = None
    has_export = False
    grade_ids: dict[str, int] = {}
    exported: set[str] = set()          # every file this notebook exports to (dotted, with tinytorch.)
    same_notebook: list[tuple[str, int, str]] = []  # (cell label, line, module) of each `#| notebook_import`
    visible = " (as " not in where  # a notebook a student opens (not an instructor's module source)
    for index, cell in enumerate(nb.cells):
        label = cell_label(where, index, cell, nb.cells if visible else None)
        if cell.cell_type == "code":
            found = _checked_directives(cell.source, label)
            cell_exports = [args for name, args, _ in found if name in EXPORT_DIRECTIVES]
            exported.update(f"{LIB_NAME}.{args[0]}" for args in cell_exports if args)
            if sum(name == "notebook_import" for name, _, _ in found) > 1:
                raise TitoError(f"{label}: a second `#| notebook_import` line in one cell (nbdev keeps only the last); "
                                "list every module and its names on one line")
            for name, args, lineno in found:
                if name == "notebook_import":
                    if not cell_exports:
                        raise TitoError(f"{label}, line {lineno}: `#| notebook_import` only belongs in an `#| export` "
                                        "cell (it adds an import to the exported copy of the cell); export the cell "
                                        "or write a plain import")
                    same_notebook.extend((label, lineno, module) for module, _ in notebook_import_groups(args))
                if name == "default_exp":
                    if target is not None:
                        raise TitoError(f"{label}: a second `#| default_exp`; a notebook has exactly one")
                    target = f"{LIB_NAME}.{args[0]}"
                    if given:
                        taken = [n for n, (_, t) in MODULE_MAP.items() if t == target]
                        if taken:
                            raise TitoError(f"{label}: a given-code notebook exports to files of its own, but "
                                            f"{target} is module {taken[0]:02d}'s lesson target in the module map; "
                                            "choose another `#| default_exp`")
                    elif not target_allowed(module.number, target):
                        raise TitoError(
                            f"{label}: `#| default_exp {args[0]}` exports to {target}, but the module map says "
                            f"module {module.number:02d} exports to {MODULE_MAP[module.number][1]}"
                        )
                elif name in EXPORT_DIRECTIVES:
                    has_export = True
            _check_syntax(cell.source, label)
        _check_nbgrader(cell, index, label, grade_ids)
        _check_markers(cell, label)
    if has_export and target is None:
        raise TitoError(f"{where}: cells are marked `#| export` but no cell says `#| default_exp <module>`; add one near the top")
    if target is not None:
        exported.add(target)
    for label, lineno, module in same_notebook:
        if f"{LIB_NAME}.{module}" not in exported:
            mine = ", ".join(sorted(name.removeprefix(f"{LIB_NAME}.") for name in exported)) or "none"
            raise TitoError(f"{label}, line {lineno}: `#| notebook_import {module} ...` names a file this notebook "
                            f"does not export (it exports: {mine}); import other modules with a plain `from "
                            f"{LIB_NAME}.{module} import ...` line")
    return target


def _check_given(nb: nbformat.NotebookNode, where: str, module: ModuleInfo) -> None:
    from .tree import GIVEN_TITLE

    title = next((cell.source.strip().splitlines()[0] for cell in nb.cells
                  if cell.cell_type == "markdown" and cell.source.strip()), "")
    if not title.startswith(GIVEN_TITLE):
        raise TitoError(f"{where}: a given-code notebook's first markdown cell is titled `{GIVEN_TITLE} <what it holds>`, "
                        f"saying that it ships solved; it starts {title[:60]!r}")
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") or meta.get("grade") or BEGIN_SOLUTION in cell.source or END_SOLUTION in cell.source:
            raise TitoError(f"{cell_label(where, index, cell)}: a given-code notebook has no exercises (no solution "
                            f"regions, no graded cells); move the exercise into the lesson {module.slug}")


def notebook_import_groups(args: list[str]) -> list[tuple[str, list[str]]]:
    """The (module, names) groups of a `#| notebook_import` directive's arguments: a token with a dot starts a
    module (written without `tinytorch.`, as in `#| export`), the dot-free tokens after it are names from it."""
    groups: list[tuple[str, list[str]]] = []
    for arg in args:
        if "." in arg:
            groups.append((arg, []))
        elif not groups:
            raise TitoError(f"`#| notebook_import {' '.join(args)}` must start with a module (a dotted name such as "
                            f"benchmarking.stats), then the names to import from it; {arg!r} comes first")
        else:
            groups[-1][1].append(arg)
    for module, names in groups:
        if not names:
            raise TitoError(f"`#| notebook_import {' '.join(args)}`: no names follow {module}; list the names the "
                            "exported cell uses from it")
    return groups


def notebook_import_lines(args: list[str]) -> str:
    """The import statements the exported copy of a cell gets for its `#| notebook_import` arguments."""
    return "".join(f"from {LIB_NAME}.{module} import {', '.join(names)}\n" for module, names in notebook_import_groups(args))


def _checked_directives(source: str, label: str):
    found = directives(source)
    for name, args, lineno in found:
        if name not in DIRECTIVES:
            known = ", ".join(f"#| {d}" for d in DIRECTIVES)
            raise TitoError(f"{label}, line {lineno}: unknown directive `#| {name}`; known directives are {known}")
        lo, hi = DIRECTIVES[name]
        if not lo <= len(args) <= hi or any(not _DOTTED.match(arg) for arg in args):
            shape = ("a module, then the names the cell uses from it, e.g. `#| notebook_import benchmarking.stats "
                     "median_interval`" if name == "notebook_import"
                     else "a dotted module name, e.g. `#| default_exp core.tensor`" if lo else "at most one dotted module name")
            raise TitoError(f"{label}, line {lineno}: `#| {name} {' '.join(args)}` is malformed; it takes {shape}")
        if name == "notebook_import":
            try:
                notebook_import_groups(args)
            except TitoError as exc:
                raise TitoError(f"{label}, line {lineno}: {exc}") from None
    top = {lineno for _, _, lineno in found}
    for lineno, line in enumerate(source.splitlines(), start=1):
        if _DIRECTIVE_LINE.match(line) and lineno not in top:
            raise TitoError(
                f"{label}, line {lineno}: directive `{line.strip()}` comes after code; nbdev only reads "
                "directives at the top of a cell, so move it there"
            )
    return found


def _check_syntax(source: str, label: str) -> None:
    lines = source.splitlines()
    code_lines = [line for line in lines if line.strip() and not _DIRECTIVE_LINE.match(line)]
    if code_lines and code_lines[0].lstrip().startswith("%%"):
        return  # a cell magic: its body is not Python
    # Line magics and shell escapes are IPython syntax; blank them out (keeping line numbers).
    python = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)
    try:
        ast.parse(python)
    except SyntaxError as exc:
        bad = lines[exc.lineno - 1] if exc.lineno and exc.lineno <= len(lines) else ""
        raise TitoError(f"{label}, line {exc.lineno}: SyntaxError: {exc.msg}\n    {exc.lineno} | {bad}") from None


def _check_nbgrader(cell, index: int, label: str, grade_ids: dict[str, int]) -> None:
    meta = cell.metadata.get("nbgrader")
    if meta is None:
        return
    missing = [key for key in NBGRADER_KEYS if key not in meta]
    if missing:
        raise TitoError(f"{label}: nbgrader metadata lacks {', '.join(missing)}; every graded or solution cell needs {', '.join(NBGRADER_KEYS)}")
    for key in ("grade", "locked", "solution"):
        if not isinstance(meta[key], bool):
            raise TitoError(f"{label}: nbgrader `{key}` must be true or false, not {meta[key]!r}")
    if meta["schema_version"] != NBGRADER_SCHEMA:
        raise TitoError(f"{label}: nbgrader schema_version is {meta['schema_version']!r}; this course uses {NBGRADER_SCHEMA}")
    grade_id = meta["grade_id"]
    if not isinstance(grade_id, str) or not _GRADE_ID.match(grade_id):
        raise TitoError(f"{label}: nbgrader grade_id {grade_id!r} must be a non-empty name of letters, digits, - and _")
    if grade_id in grade_ids:
        raise TitoError(f"{label}: nbgrader grade_id {grade_id!r} is already used by another cell (cell {grade_ids[grade_id] + 1})")
    grade_ids[grade_id] = index
    if meta["grade"]:
        points = meta.get("points")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            raise TitoError(f"{label}: graded cell needs `points` (a number >= 0), got {points!r}")
    if cell.cell_type == "markdown" and meta["grade"] != meta["solution"]:
        raise TitoError(f"{label}: a graded markdown cell must be both grade and solution (nbgrader's rule)")


def _check_markers(cell, label: str) -> None:
    depth = 0
    for lineno, line in enumerate(cell.source.splitlines(), start=1):
        if BEGIN_SOLUTION in line:
            if depth:
                raise TitoError(f"{label}, line {lineno}: nested `### {BEGIN_SOLUTION}`; close the first region before opening another")
            depth = 1
        elif END_SOLUTION in line:
            if not depth:
                raise TitoError(f"{label}, line {lineno}: `### {END_SOLUTION}` without a matching `### {BEGIN_SOLUTION}`")
            depth = 0
    if depth:
        raise TitoError(f"{label}: `### {BEGIN_SOLUTION}` is never closed; add `### {END_SOLUTION}`")
    has_region = BEGIN_SOLUTION in cell.source
    if has_region and not cell.metadata.get("nbgrader", {}).get("solution", False):
        raise TitoError(
            f"{label}: has a solution region but is not a solution cell; give it nbgrader metadata with "
            '"solution": true so the student edition can clear it'
        )
