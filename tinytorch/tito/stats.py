"""How much of each module's lesson the student writes: `tito module list --stats`.

For a module source (modules/NN_name/name.py, percent format) it counts, in its `#| export` cells:
- code lines: non-blank lines that are not comments;
- solution lines: the code lines between a `### BEGIN SOLUTION` and a `### END SOLUTION` line;
- the student share: solution lines / code lines.
Exercises are the solution regions of every code cell (exported or not). An exercise is "mostly checks" when
more than half of its code lines are input checks: `raise` statements (with their continuation lines) and the
`if`/`elif`/`else` lines that only guard a raise. Only the instructor tree has the solutions, so only it has
these figures. The code of a module's given-code notebooks (modules/NN_name/<stem>.py) is shown in its own
column and is not part of the share.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .notebooks import BEGIN_SOLUTION, END_SOLUTION, EXPORT_DIRECTIVES
from .tree import ModuleInfo, TitoError

_DIRECTIVE = re.compile(r"^\s*#\|\s*(\S+)")
_CELL = re.compile(r"^# %%(.*)$")
_GUARD = re.compile(r"^(if|elif|else)\b.*:\s*(#.*)?$")
CHECKS_SHARE = 0.5       # an exercise whose code lines are more than this share of checks is "mostly checks"


@dataclass
class Exercise:
    """One solution region: where it starts (1-based line of the source), its code and check lines."""

    line: int
    code_lines: int = 0
    check_lines: int = 0

    @property
    def mostly_checks(self) -> bool:
        return self.code_lines > 0 and self.check_lines / self.code_lines > CHECKS_SHARE


@dataclass
class ModuleStats:
    """The figures of one module source."""

    source: str
    lines: int = 0                 # non-blank lines of the whole source
    code_lines: int = 0            # code lines in exported cells
    solution_lines: int = 0        # of which inside solution regions
    exercises: list = field(default_factory=list)
    given_code_lines: int = 0      # code lines in exported cells of the module's given-code notebooks (not in the share)

    @property
    def student_share(self) -> float | None:
        return self.solution_lines / self.code_lines if self.code_lines else None

    @property
    def mostly_checks(self) -> list:
        return [e for e in self.exercises if e.mostly_checks]


def _cells(text: str):
    """(first line number, the cell's lines) of each code cell of a percent-format text."""
    cells, current, start, is_code = [], [], 1, False
    for number, line in enumerate(text.splitlines(), start=1):
        match = _CELL.match(line)
        if match:
            if is_code:
                cells.append((start, current))
            current, start = [], number + 1
            is_code = "[markdown]" not in match.group(1) and "[raw]" not in match.group(1)
            continue
        current.append(line)
    if is_code:
        cells.append((start, current))
    return cells


def _is_code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _check_lines(lines: list[str]) -> int:
    """How many of the code lines are input checks: raise statements (continuation lines included, by bracket
    balance) and if/elif/else lines whose next code line is a raise."""
    code = [line for line in lines if _is_code(line)]
    counted, depth, in_raise = 0, 0, False
    for k, line in enumerate(code):
        stripped = line.strip()
        if not in_raise and stripped.startswith("raise"):
            in_raise = True
        elif not in_raise and _GUARD.match(stripped) and k + 1 < len(code) and code[k + 1].strip().startswith("raise"):
            counted += 1
            continue
        if in_raise:
            counted += 1
            depth += sum(stripped.count(c) for c in "([{") - sum(stripped.count(c) for c in ")]}")
            if depth <= 0 and not stripped.endswith("\\"):
                in_raise, depth = False, 0
    return counted


def source_stats(path: Path) -> ModuleStats:
    """The ModuleStats of one percent-format module source."""
    text = Path(path).read_text(encoding="utf-8")
    stats = ModuleStats(source=str(path), lines=sum(1 for line in text.splitlines() if line.strip()))
    for start, lines in _cells(text):
        exported = any((m := _DIRECTIVE.match(line)) and m.group(1) in EXPORT_DIRECTIVES for line in lines)
        region = None
        for offset, line in enumerate(lines):
            if BEGIN_SOLUTION in line:
                region = (Exercise(line=start + offset), [])
                continue
            if END_SOLUTION in line:
                if region is not None:
                    exercise, body = region
                    exercise.code_lines = sum(_is_code(b) for b in body)
                    exercise.check_lines = _check_lines(body)
                    stats.exercises.append(exercise)
                region = None
                continue
            if region is not None:
                region[1].append(line)
            if exported and _is_code(line) and not _DIRECTIVE.match(line):
                stats.code_lines += 1
                stats.solution_lines += region is not None
    return stats


def module_stats(modules: list[ModuleInfo]) -> list[tuple[ModuleInfo, ModuleStats]]:
    """(module, its stats) for every module that has a source (the instructor tree). The figures are the
    lesson's; the code of its given-code notebooks is counted apart (given_code_lines), never in the share."""
    found = []
    for m in modules:
        if m.source is None or not Path(m.source).is_file():
            continue
        stats = source_stats(m.source)
        stats.given_code_lines = sum(source_stats(m.given_source(stem)).code_lines for stem in m.given)
        found.append((m, stats))
    if not found:
        raise TitoError("--stats counts the solutions in the module sources (modules/NN_name/*.py), which only the "
                        "instructor tree has; run it there")
    return found


def stats_rows(found) -> list[tuple[str, ...]]:
    """The table `tito module list --stats` prints: a header, then one row per module."""
    rows = [("#", "module", "lines", "exercises", "solution lines", "exported code lines", "student share",
             "given code lines", "mostly checks")]
    for module, stats in found:
        share = stats.student_share
        checks = stats.mostly_checks
        rows.append((f"{module.number:02d}", module.name, str(stats.lines), str(len(stats.exercises)),
                     str(stats.solution_lines), str(stats.code_lines), "-" if share is None else f"{share:.1%}",
                     str(stats.given_code_lines) if stats.given_code_lines else "-",
                     ", ".join(f"line {e.line}" for e in checks) if checks else "-"))
    return rows
