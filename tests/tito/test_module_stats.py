"""`tito module list --stats`: lines, exercises, solution lines and student share, against hand counts."""
from __future__ import annotations

import textwrap

import pytest

from tinytorch.tito.stats import source_stats, stats_rows


SOURCE = textwrap.dedent('''\
    # %% [markdown]
    # # A lesson
    # with prose that never counts

    # %%
    #| default_exp core.thing
    import numpy as np

    # %%
    #| export
    def add(a, b):
        """Add."""
        # a comment is not code
        ### BEGIN SOLUTION
        total = a + b

        return total
        ### END SOLUTION

    def check(x):
        ### BEGIN SOLUTION
        if x < 0:
            raise ValueError(
                f"x must be >= 0, got {x}")
        return x
        ### END SOLUTION

    # %%
    # not exported: its solution is an exercise, but not part of the share
    ### BEGIN SOLUTION
    y = add(1, 2)
    ### END SOLUTION
    assert y == 3
    ''')


def test_counts_match_a_hand_count(tmp_path):
    path = tmp_path / "thing.py"
    path.write_text(SOURCE)
    stats = source_stats(path)
    # exported code lines: def add, """Add.""", total = a + b, return total, def check, if, raise, f"...", return x
    assert stats.code_lines == 9
    assert stats.solution_lines == 2 + 4                   # add's body, check's body
    assert stats.student_share == 6 / 9
    assert [e.line for e in stats.exercises] == [14, 21, 30]
    assert [(e.code_lines, e.check_lines) for e in stats.exercises] == [(2, 0), (4, 3), (1, 0)]
    assert [e.line for e in stats.mostly_checks] == [21]    # 3 of its 4 lines are a guard and its raise
    assert stats.lines == sum(1 for line in SOURCE.splitlines() if line.strip())


def test_a_source_without_exports_has_no_share(tmp_path):
    path = tmp_path / "empty.py"
    path.write_text("# %%\nx = 1\n")
    stats = source_stats(path)
    assert (stats.code_lines, stats.student_share, stats.exercises) == (0, None, [])


def test_the_command_prints_every_module(tree, tito):
    proc = tito(tree, "module", "list", "--stats", check=0)
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["#", "module", "lines", "exercises", "solution", "lines", "exported", "code", "lines",
                                "student", "share", "given", "code", "lines", "mostly", "checks"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line[:2].isdigit()}
    assert {"01", "14", "19", "20"} <= set(rows)
    from tinytorch.tito.stats import module_stats
    from tinytorch.tito.tree import Tree

    found = dict((m.number, s) for m, s in module_stats(Tree(tree).modules))
    for number, row in rows.items():
        stats = found[int(number)]
        assert row[2:6] == [str(stats.lines), str(len(stats.exercises)), str(stats.solution_lines), str(stats.code_lines)]
    assert stats_rows([])[0][0] == "#"


def test_a_student_edition_has_no_stats(student, tito):
    proc = tito(student, "module", "list", "--stats", check=1)
    assert "only the instructor tree has" in proc.stderr


# --- the figures every module must reach (issue 13): the lesson is the student's work ---------------------
MIN_EXERCISES = 5
MIN_SHARE = 0.20
MIN_SHARE_BY_MODULE = {19: 0.30}


# Module 19's lesson is not rewritten yet (issue 13 is open for it): its figures are known to miss. strict=True
# makes these tests fail the day they pass, so whoever lands the lesson removes the mark.
NOT_YET = {19: "issue 13: module 19 is still one 4,700-line notebook (1.7% share, 7 exercises)"}


def _course_stats():
    from pathlib import Path

    from tinytorch.tito.stats import module_stats
    from tinytorch.tito.tree import Tree

    return dict((m.number, (m, s)) for m, s in module_stats(Tree(Path(__file__).resolve().parents[2]).modules))


def _numbers():
    from pathlib import Path

    from tinytorch.tito.tree import Tree

    return [pytest.param(m.number, id=m.slug, marks=[pytest.mark.xfail(strict=True, reason=NOT_YET[m.number])]
                         if m.number in NOT_YET else [])
            for m in Tree(Path(__file__).resolve().parents[2]).modules]


@pytest.mark.parametrize("number", _numbers())
def test_every_module_lesson_is_mostly_the_students_work(number):
    module, stats = _course_stats()[number]
    floor = MIN_SHARE_BY_MODULE.get(module.number, MIN_SHARE)
    problems = []
    if len(stats.exercises) < MIN_EXERCISES:
        problems.append(f"{module.slug}: {len(stats.exercises)} exercises, fewer than {MIN_EXERCISES}")
    if stats.student_share is None or stats.student_share < floor:
        problems.append(f"{module.slug}: student share {stats.student_share or 0:.1%} "
                        f"({stats.solution_lines} of {stats.code_lines}), below {floor:.0%}")
    for exercise in stats.mostly_checks:
        problems.append(f"{module.slug}: the exercise at line {exercise.line} is mostly input checks "
                        f"({exercise.check_lines} of {exercise.code_lines} lines)")
    assert not problems, "\n".join(problems)


@pytest.mark.xfail(strict=True, reason=NOT_YET[19])
def test_module_19_has_eight_exercises_of_real_size():
    stats = _course_stats()[19][1]
    sized = [e for e in stats.exercises if 8 <= e.code_lines <= 30]
    assert len(sized) >= 8, [(e.line, e.code_lines) for e in stats.exercises]


def test_given_code_is_counted_apart_from_the_share(tree):
    from tinytorch.tito.stats import module_stats
    from tinytorch.tito.tree import Tree

    before = dict((m.number, s) for m, s in module_stats(Tree(tree).modules))[2]
    (tree / "modules" / "02_activations" / "helpers.py").write_text(
        "# %% [markdown]\n# # Given code: helpers\n\n# %%\n#| default_exp core.helpers_demo\n\n"
        "# %%\n#| export\ndef one():\n    return 1\n")
    after = dict((m.number, s) for m, s in module_stats(Tree(tree).modules))[2]
    assert after.given_code_lines == 2                       # def one, return 1
    assert (after.code_lines, after.solution_lines) == (before.code_lines, before.solution_lines)
