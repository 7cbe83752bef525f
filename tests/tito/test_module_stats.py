"""`tito module list --stats`: lines, exercises, solution lines and student share, against hand counts."""
from __future__ import annotations

import textwrap

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
                                "student", "share", "mostly", "checks"]
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
