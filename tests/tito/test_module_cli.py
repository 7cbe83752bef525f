"""`tito module list|status|start|reset|test`, `tito doctor`, and argument errors."""
import json
import re

NOTEBOOK = "nbs/01_tensor.ipynb"


def _rows(stdout):
    return [line.split() for line in stdout.splitlines() if line[:2].isdigit()]


def test_list_shows_number_title_target_state(student, tito):
    out = tito(student, "module", "list", check=0).stdout
    assert out.splitlines()[0].split() == ["#", "title", "exports", "state"]
    rows = _rows(out)
    assert rows[0] == ["01", "Tensor", "tinytorch.core.tensor", "not", "started"]
    lessons = [p for p in (student / ".tito/student_edition").glob("*.ipynb") if p.name.count(".") == 1]
    assert len(rows) == len(lessons)
    assert all(row[-2:] == ["not", "started"] for row in rows)


def test_status_counts_real_completions(student, tito):
    out = tito(student, "module", "status", check=0).stdout
    assert re.search(r"^0 of \d+ module\(s\) completed \(student tree at", out, flags=re.M)
    # A solution cell that differs from the student edition means work is in progress.
    nb = json.loads((student / NOTEBOOK).read_text())
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
    cell["source"] = cell["source"] + ["\n# started"]
    (student / NOTEBOOK).write_text(json.dumps(nb))
    assert _rows(tito(student, "module", "list", check=0).stdout)[0][-2:] == ["in", "progress"]


def test_status_refuses_a_damaged_progress_file_and_leaves_it(student, tito):
    (student / ".tito" / "progress.json").write_text("{not json")
    proc = tito(student, "module", "status", check=1)
    assert ".tito/progress.json is damaged" in proc.stderr
    assert (student / ".tito" / "progress.json").read_text() == "{not json"


def test_start_prints_the_notebook_and_how_to_open_it(student, tito):
    out = tito(student, "module", "start", "1", check=0).stdout
    assert f"Notebook: {NOTEBOOK}" in out
    assert f"jupyter lab {NOTEBOOK}" in out
    assert "tito module complete 1" in out


def test_start_without_notebook_says_how_to_restore(student, tito):
    (student / NOTEBOOK).unlink()
    proc = tito(student, "module", "start", "1", check=1)
    assert "tito module reset 1" in proc.stderr


def test_reset_asks_for_yes_then_keeps_a_backup(student, tito):
    pristine = (student / NOTEBOOK).read_bytes()
    out = tito(student, "module", "reset", "1", check=0).stdout
    assert "already the student edition; nothing to do" in out
    edited = pristine.replace(b"YOUR CODE HERE", b"my work", 1)
    (student / NOTEBOOK).write_bytes(edited)
    proc = tito(student, "module", "reset", "1", check=1)
    assert "--yes" in proc.stderr
    assert (student / NOTEBOOK).read_bytes() == edited, "nothing may change without --yes"
    out = tito(student, "module", "reset", "1", "--yes", check=0).stdout
    assert (student / NOTEBOOK).read_bytes() == pristine
    backups = list((student / ".tito" / "backups").glob("01_tensor-*.ipynb"))
    assert len(backups) == 1 and backups[0].read_bytes() == edited
    assert backups[0].name in out


def test_reset_restores_a_deleted_notebook(student, tito):
    pristine = (student / NOTEBOOK).read_bytes()
    (student / NOTEBOOK).unlink()
    tito(student, "module", "reset", "1", check=0)
    assert (student / NOTEBOOK).read_bytes() == pristine


def test_module_test_reports_notebook_and_tests(tree, tito):
    proc = tito(tree, "module", "test", "1", check=0)
    assert "notebook: ran" in proc.stdout and "without error" in proc.stdout
    assert "0 failed" in proc.stdout
    assert "module 01: all checks passed" in proc.stdout


def test_unknown_modules_and_bad_arguments(student, tito):
    present = {int(p.name[:2]) for p in (student / ".tito/student_edition").iterdir()}
    for number in [n for n in range(1, 21) if n not in present][:1]:  # in the module map, not written yet
        for action in ("start", "reset", "test", "complete"):
            proc = tito(student, "module", action, str(number), check=2)
            assert f"unknown module '{number}': valid choices are 1 (tensor), " in proc.stderr
    proc = tito(student, "module", "complete", "99", check=2)
    assert "module numbers run from 1 to 20" in proc.stderr
    proc = tito(student, "module", check=2)
    assert "list" in proc.stderr and "complete" in proc.stderr
    proc = tito(student, "frobnicate", check=2)
    assert "invalid choice" in proc.stderr


def test_outside_a_tree_is_a_clear_error(tmp_path, tito):
    proc = tito(tmp_path, "module", "list", check=1)
    assert "no TinyTorch tree here" in proc.stderr


def test_doctor_reports_versions_imports_and_staleness(tree, tito, edit):
    out = tito(tree, "doctor", check=0).stdout
    for word in ("numpy", "nbdev", "nbgrader", "jupytext", "kernel python3", "import tinytorch.core.tensor: ok", "no problems found",
                 "implemented: every exported module (no student stub left in the package)"):
        assert word in out
    edit(tree / "modules/01_tensor/tensor.py", lambda t: t + "\n# %%\nx = 1\n")
    proc = tito(tree, "doctor", check=1)
    assert "nbs/01_tensor.ipynb: out of date" in proc.stdout


def test_doctor_reports_a_package_that_does_not_import(tree, tito):
    path = tree / "tinytorch/core/tensor.py"
    path.write_text(path.read_text() + "\nraise RuntimeError('broken on purpose')\n")
    proc = tito(tree, "doctor", check=1)
    assert "import tinytorch.core.tensor: FAILED: RuntimeError: broken on purpose" in proc.stdout


def test_doctor_in_an_exported_edition_names_the_modules_still_stubbed(exported_release_dir, tito):
    out = tito(exported_release_dir, "doctor").stdout
    assert ("implemented: module 01 (tensor) is not yet: tinytorch/core/tensor.py, tinytorch/utils/timing.py" not in out)
    assert re.search(r"^implemented: module 01 \(tensor\) is not yet: tinytorch/core/tensor\.py still raises "
                     r"NotImplementedError for tensor-creation, .*\(`tito module complete 1`\)$", out, flags=re.M), out
    numbers = sorted({int(p.name[:2]) for p in (exported_release_dir / ".tito/student_edition").glob("*.ipynb")})
    assert [int(n) for n in re.findall(r"^implemented: module (\d+) ", out, flags=re.M)] == numbers
