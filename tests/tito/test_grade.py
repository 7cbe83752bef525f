"""`tito grade`: nbgrader, offline, on module 04's notebook (generate, autograde, export), end to end.

One course is generated and graded once per file (module scope): a solved submission (the instructor
notebook), a blank one (the released notebook), a partial one (one solution cleared, and its test
replaced by `pass`, which nbgrader must undo), a misnamed notebook and a notebook that is not JSON.
Expected points come from the graded cells' nbgrader metadata, read here with json, never from tito
or nbgrader.
"""
import csv
import hashlib
import importlib.util
import json
import os
import shutil
import sqlite3
import sysconfig
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SLUG, ASSIGNMENT = "04_losses", "module04"


def _conftest():
    """This folder's conftest as a module (for copy_tree/run_tito in a module-scoped fixture)."""
    spec = importlib.util.spec_from_file_location("tito_conftest_for_grade", HERE / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cells(nb):
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb["cells"] if "nbgrader" in c["metadata"]}


INSTRUCTOR = json.loads((ROOT / "nbs" / f"{SLUG}.ipynb").read_text())
POINTS = {gid: c["metadata"]["nbgrader"]["points"] for gid, c in _cells(INSTRUCTOR).items()
          if c["metadata"]["nbgrader"]["grade"]}
MAX = sum(POINTS.values())
# carol's notebook has the loss-mse solution cleared and test-mse replaced by `pass`: nbgrader restores
# the test from the gradebook, so test-mse fails and only it.
EXPECTED = {"alice": dict(POINTS), "bob": dict.fromkeys(POINTS, 0), "carol": {**POINTS, "test-mse": 0}}


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=1))


def _submissions(folder: Path, blank: dict) -> Path:
    """The collected work of five students, in nbgrader's submitted layout."""
    partial = json.loads(json.dumps(INSTRUCTOR))
    _cells(partial)["loss-mse"]["source"] = _cells(blank)["loss-mse"]["source"]
    _cells(partial)["test-mse"]["source"] = "pass"
    _write(folder / "alice" / ASSIGNMENT / f"{SLUG}.ipynb", INSTRUCTOR)
    _write(folder / "bob" / ASSIGNMENT / f"{SLUG}.ipynb", blank)
    _write(folder / "carol" / ASSIGNMENT / f"{SLUG}.ipynb", partial)
    _write(folder / "dave" / ASSIGNMENT / "losses.ipynb", INSTRUCTOR)  # misnamed: the expected notebook is missing
    _write(folder / "erin" / ASSIGNMENT / f"{SLUG}.ipynb", "this is not a notebook")
    return folder


def _gradebook(course: Path) -> dict:
    """{(student, grade_id): (score, max_score)} read with sqlite3 (nbgrader's tables, no nbgrader code)."""
    db = sqlite3.connect(course / "gradebook.db")
    try:
        rows = db.execute(
            "SELECT sa.student_id, bc.name, g.auto_score, gc.max_score FROM grade g "
            "JOIN submitted_notebook sn ON g.notebook_id = sn.id JOIN submitted_assignment sa ON sn.assignment_id = sa.id "
            "JOIN base_cell bc ON g.cell_id = bc.id JOIN grade_cells gc ON gc.id = bc.id").fetchall()
    finally:
        db.close()
    return {(student, gid): (score, max_score) for student, gid, score, max_score in rows}


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Generate the course, autograde the five students once, export the CSV."""
    helpers = _conftest()
    base = tmp_path_factory.mktemp("grade")
    tree = helpers.copy_tree(base / "tree")
    course = base / "course"
    run = helpers.run_tito
    generated = run(tree, "grade", "generate", "--course", str(course), "--modules", "4", check=0)
    blank = json.loads((course / "release" / ASSIGNMENT / f"{SLUG}.ipynb").read_text())
    folder = _submissions(base / "collected", blank)
    first = run(tree, "grade", "autograde", "--course", str(course), "--submissions", str(folder), check=1)
    run(tree, "grade", "export", "--course", str(course), "--out", str(base / "grades.csv"), check=0)
    return dict(tree=tree, course=course, folder=folder, generated=generated, first=first, base=base, run=run,
                csv=base / "grades.csv", blank=blank)


def test_generate_makes_an_nbgrader_course(graded):
    course = graded["course"]
    for rel in ("nbgrader_config.py", "gradebook.db", f"source/{ASSIGNMENT}/{SLUG}.ipynb", f"release/{ASSIGNMENT}/{SLUG}.ipynb"):
        assert (course / rel).is_file(), rel
    assert f"  {ASSIGNMENT}: {SLUG}.ipynb, {len(POINTS)} graded cell(s), {MAX:g} point(s)" in graded["generated"].stdout
    db = sqlite3.connect(course / "gradebook.db")
    cells = dict(db.execute("SELECT bc.name, gc.max_score FROM grade_cells gc JOIN base_cell bc ON gc.id = bc.id").fetchall())
    db.close()
    assert cells == POINTS
    # The released notebook has no solutions, names each task, and is exactly what `tito release` makes.
    import nbformat

    from tinytorch.tito.release import student_notebook
    from tinytorch.tito.tree import Tree

    released = (course / "release" / ASSIGNMENT / f"{SLUG}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in released and "### END SOLUTION" not in released
    assert 'raise NotImplementedError(\\"Module 04: implement loss-mse\\")' in released
    ours = student_notebook(nbformat.read(course / "source" / ASSIGNMENT / f"{SLUG}.ipynb", as_version=4),
                            Tree(graded["tree"]).module(4))
    theirs = nbformat.reads(released, as_version=4)
    assert [(c.source, c.metadata) for c in ours.cells] == [(c.source, c.metadata) for c in theirs.cells]


def test_our_gradebook_is_the_one_nbgrader_makes(tmp_path, monkeypatch):
    """create_gradebook (in-process alembic head) == nbgrader's Gradebook on a new file (subprocess `alembic`)."""
    from nbgrader.api import Gradebook

    from tinytorch.tito.grade import create_gradebook

    create_gradebook(tmp_path / "ours.db")
    monkeypatch.setenv("PATH", os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")]))
    Gradebook(f"sqlite:///{tmp_path / 'theirs.db'}").close()
    query = "SELECT type, name, sql FROM sqlite_master ORDER BY name"
    ours, theirs = sqlite3.connect(tmp_path / "ours.db"), sqlite3.connect(tmp_path / "theirs.db")
    assert ours.execute(query).fetchall() == theirs.execute(query).fetchall()
    assert ours.execute("SELECT * FROM alembic_version").fetchall() == theirs.execute("SELECT * FROM alembic_version").fetchall()


def test_autograde_scores_every_student_and_reports_the_broken(graded):
    out = graded["first"].stdout
    for student, cells in EXPECTED.items():
        assert f"  {student}/{ASSIGNMENT}: graded, {sum(cells.values()):g} of {MAX:g} points" in out, out
    assert "carol/module04: graded, 8 of 10 points" in out  # 10 - test-mse's 2, by hand
    assert "test-mse 0/2 (NotImplementedError: Module 04: implement loss-mse)" in out
    expected_path = graded["folder"] / "dave" / ASSIGNMENT / f"{SLUG}.ipynb"
    assert f"  dave/{ASSIGNMENT}: missing: expected {expected_path} (found losses.ipynb)" in out
    assert f"  erin/{ASSIGNMENT}: failed" in out and "NotJSONError" in out
    assert "done: 3 graded, 1 missing, 1 failed" in out
    book = _gradebook(graded["course"])
    assert book == {(s, gid): (pts, POINTS[gid]) for s, cells in EXPECTED.items() for gid, pts in cells.items()}


def test_export_csv_per_cell_and_totals(graded):
    rows = list(csv.DictReader(graded["csv"].open()))
    assert list(rows[0]) == ["student_id", "assignment", "level", "notebook", "grade_id", "score", "max_score",
                             "needs_manual_grade"]
    order = list(POINTS)  # notebook order
    expected = []
    for student in sorted(EXPECTED):
        for gid in order:
            expected.append([student, ASSIGNMENT, "cell", SLUG, gid, f"{EXPECTED[student][gid]:g}", f"{POINTS[gid]:g}", "false"])
        expected.append([student, ASSIGNMENT, "assignment", "", "", f"{sum(EXPECTED[student].values()):g}", f"{MAX:g}", "false"])
    assert [list(r.values()) for r in rows] == expected
    again = graded["run"](graded["tree"], "grade", "export", "--course", str(graded["course"]), "--out", str(graded["csv"]), check=2)
    assert "already exists; nothing was written" in again.stderr and "--overwrite" in again.stderr


def test_rerun_is_idempotent_and_changed_work_is_not_graded_over(graded, tmp_path):
    course, before = graded["course"], _digest(graded["course"] / "submitted")
    book = _gradebook(course)
    folder = tmp_path / "collected"
    shutil.copytree(graded["folder"], folder)
    _write(folder / "bob" / ASSIGNMENT / f"{SLUG}.ipynb", INSTRUCTOR)  # bob sends a solved notebook after grading
    rerun = graded["run"](graded["tree"], "grade", "autograde", "--course", str(course), "--submissions", str(folder),
                          check=1)
    for student in ("alice", "carol"):
        assert f"  {student}/{ASSIGNMENT}: unchanged, {sum(EXPECTED[student].values()):g} of {MAX:g} points" in rerun.stdout
    assert f"  bob/{ASSIGNMENT}: conflict: {folder / 'bob' / ASSIGNMENT} differs from the copy graded before" in rerun.stdout
    assert "that grade is kept. Pass --replace" in rerun.stdout
    assert "done: 2 unchanged, 1 conflict, 1 missing, 1 failed" in rerun.stdout
    # Nothing changed: the gradebook (so the export) and the collected copies are as the first run left them.
    assert _gradebook(course) == book and _digest(course / "submitted") == before


def test_replace_keeps_the_old_copy_and_a_runaway_cell_times_out(graded, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(graded["course"], course)
    folder = tmp_path / "collected"
    _write(folder / "alice" / ASSIGNMENT / f"{SLUG}.ipynb", graded["blank"])  # alice sends the blank notebook now
    looping = json.loads(json.dumps(INSTRUCTOR))
    _cells(looping)["loss-bce"]["source"] = "while True:\n    pass\n"  # frank's BCE never finishes
    _write(folder / "frank" / ASSIGNMENT / f"{SLUG}.ipynb", looping)
    # The slowest cell of this notebook takes about 0.3 s, so 3 s interrupts only frank's loop.
    done = graded["run"](graded["tree"], "grade", "autograde", "--course", str(course), "--submissions", str(folder),
                         "--replace", "--timeout", "3", check=0)
    assert "cells time out after 3 s" in done.stdout
    assert f"alice/module04: graded, 0 of {MAX:g} points" in done.stdout and "the earlier copy is kept as replaced/" in done.stdout
    assert f"frank/module04: graded, {MAX - POINTS['test-bce']:g} of {MAX:g} points" in done.stdout
    assert "test-bce 0/2 (NameError: name 'BCELoss' is not defined); timed out: loss-bce" in done.stdout
    kept = list((course / "replaced" / "alice" / ASSIGNMENT).glob(f"*/{SLUG}.ipynb"))
    assert len(kept) == 1 and json.loads(kept[0].read_text()) == INSTRUCTOR
    mse = POINTS["test-mse"]
    assert {s: v for (s, g), v in _gradebook(course).items() if g == "test-mse"} == {
        "alice": (0, mse), "bob": (0, mse), "carol": (0, mse), "frank": (mse, mse)}


def test_clear_errors(graded, tmp_path):
    run, tree, course = graded["run"], graded["tree"], graded["course"]
    missing = run(tree, "grade", "autograde", "--course", str(tmp_path / "nope"), "--submissions", str(tmp_path), check=2)
    assert f"no course folder at {tmp_path / 'nope'}" in missing.stderr and "tito grade generate" in missing.stderr
    unknown = run(tree, "grade", "generate", "--course", str(tmp_path / "new"), "--modules", "99", check=2)
    assert "unknown module '99'" in unknown.stderr and "4 (losses)" in unknown.stderr
    assert not (tmp_path / "new").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    busy = run(tree, "grade", "generate", "--course", str(tmp_path / "busy"), "--modules", "4", check=2)
    assert "not empty; nothing was changed" in busy.stderr and "--force" in busy.stderr
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
    zero = run(tree, "grade", "autograde", "--course", str(course), "--submissions", str(tmp_path), "--timeout", "0", check=2)
    assert "--timeout 0: give the seconds each cell may run" in zero.stderr
    layout = tmp_path / "layout"
    _write(layout / f"{SLUG}.ipynb", INSTRUCTOR)  # a notebook straight in the folder
    _write(layout / "zed" / "module99" / f"{SLUG}.ipynb", INSTRUCTOR)  # an assignment the course does not have
    before = _gradebook(course)
    wrong = run(tree, "grade", "autograde", "--course", str(course), "--submissions", str(layout), check=1)
    assert f"is a file; expected {layout / '<student_id>' / ASSIGNMENT / SLUG}.ipynb" in wrong.stdout
    assert "zed/module99: layout" in wrong.stdout and "unknown assignment 'module99'; this course has module04" in wrong.stdout
    assert _gradebook(course) == before


def test_own_imports_flags_a_notebook_importing_what_it_exports():
    """A notebook that imports its own export targets would be graded against the solved package."""
    import nbformat

    from tinytorch.tito.grade import own_imports

    cells = ["#| default_exp core.widgets", "#| export\ndef f():\n    return 1",
             "#| export core.gadgets\ndef g():\n    return 2",
             "from tinytorch.core.widgets import f\nfrom tinytorch.core.tensor import Tensor",
             "import tinytorch.core.gadgets as gadgets\n# from tinytorch.core.nothing import x"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    assert own_imports(nb) == ["tinytorch.core.gadgets", "tinytorch.core.widgets"]
    nb.cells = nb.cells[:3]
    assert own_imports(nb) == []


def _documented_example(text: str) -> list[str]:
    """The `tito grade ...` command lines of a text (the --help epilog, or docs/grading.md)."""
    import re

    return re.findall(r"^\s*(tito grade \S.*?)\s*$", text, flags=re.M)


def test_the_documented_example_works_as_written(graded, tmp_path):
    """`tito grade --help` and docs/grading.md give the same three command lines; run as written from a fresh
    instructor tree, with two students' notebooks collected where the docs say, they generate, grade and export."""
    import shlex

    helpers, run = _conftest(), graded["run"]
    helped = run(graded["tree"], "grade", "--help", check=0).stdout
    commands = _documented_example(helped)
    assert [shlex.split(c)[2] for c in commands] == ["generate", "autograde", "export"], helped
    documented = (ROOT / "docs" / "grading.md").read_text(encoding="utf-8")
    assert _documented_example(documented) == commands
    tree = helpers.copy_tree(tmp_path / "tree")
    where = "../collected/<student_id>/module04/04_losses.ipynb"
    assert where in helped and where in documented
    _write(tmp_path / "collected" / "alice" / ASSIGNMENT / f"{SLUG}.ipynb", INSTRUCTOR)    # solved
    _write(tmp_path / "collected" / "bob" / ASSIGNMENT / f"{SLUG}.ipynb", graded["blank"])  # untouched
    outputs = [run(tree, *shlex.split(command)[1:], check=0).stdout for command in commands]
    assert f"  alice/{ASSIGNMENT}: graded, {MAX:g} of {MAX:g} points" in outputs[1]
    assert f"  bob/{ASSIGNMENT}: graded, 0 of {MAX:g} points" in outputs[1]
    totals = {r["student_id"]: r["score"] for r in csv.DictReader((tmp_path / "grades.csv").open())
              if r["level"] == "assignment"}
    assert totals == {"alice": f"{MAX:g}", "bob": "0"}
