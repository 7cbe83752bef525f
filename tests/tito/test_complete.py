"""`tito module complete N`: exports the student's notebook, passes only what works, real counts."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "nbs/01_tensor.ipynb"
PACKAGE = "tinytorch/core/tensor.py"
PROGRESS = ".tito/progress.json"


def _solve(student):
    """What a student who finished the exercises has: the solved notebook."""
    shutil.copy2(ROOT / NOTEBOOK, student / NOTEBOOK)


def _collected(student, tests="tests/01_tensor"):
    """An independent count of the module's tests (or of one test file): pytest --collect-only."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist", tests],
                          cwd=student, capture_output=True, text=True, env={"PYTHONPATH": str(student), "PATH": "/usr/bin:/bin"})
    match = re.search(r"(\d+) tests? collected", proc.stdout)
    assert match, proc.stdout + proc.stderr
    return int(match[1])


def _passed(student, tests):
    """An independent count of the tests of one file that pass against the student's package: plain pytest."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", tests], cwd=student,
                          capture_output=True, text=True, env={"PYTHONPATH": str(student), "PATH": "/usr/bin:/bin"})
    match = re.search(r"(\d+) passed", proc.stdout)
    return int(match[1]) if match else 0


def test_cleared_notebook_fails_and_records_nothing(student, tito):
    proc = tito(student, "module", "complete", "1", check=1)
    assert "notebook: FAILED:" in proc.stdout and "NotImplementedError: Module 01: implement" in proc.stdout
    assert re.search(r"FAILED tests/01_tensor/test_tensor\.py::\S+: NotImplementedError: Module 01: implement [\w-]+", proc.stdout)
    # Module 01 also exports the timing helpers (tinytorch.utils.timing), given code without exercises: their
    # tests pass. So do the few Tensor tests of bad input, since the given argument checks run before the stubs;
    # every other test of the student's Tensor fails.
    given, exercised = _collected(student, "tests/01_tensor/test_timing.py"), _collected(student, "tests/01_tensor/test_tensor.py")
    checks = _passed(student, "tests/01_tensor/test_tensor.py")
    assert 0 < checks < exercised // 4, checks
    assert f"tests: {given + checks} passed, {exercised - checks} failed" in proc.stdout
    assert "is NOT complete; progress unchanged" in proc.stdout
    record = json.loads((student / PROGRESS).read_text())
    assert record["modules"] == {}, "nothing is recorded as completed"
    assert record["failed"]["01_tensor"]["tests_failed"] == exercised - checks  # the failed attempt is recorded as such
    # The student's (stub) notebook really was exported: module complete uses nbs/, not modules/.
    assert 'raise NotImplementedError("Module 01: implement' in (student / PACKAGE).read_text()


def test_solved_notebook_passes_with_real_counts_and_records_progress(student, tito):
    _solve(student)
    proc = tito(student, "module", "complete", "1", check=0)
    expected = _collected(student)
    assert f"tests: {expected} passed, 0 failed" in proc.stdout
    assert "Module 01 (Tensor) completed" in proc.stdout
    record = json.loads((student / PROGRESS).read_text())
    assert record["schema_version"] == 2 and record["failed"] == {}
    entry = record["modules"]["01_tensor"]
    assert entry["tests_passed"] == expected
    assert entry["notebook_cells"] == sum(c["cell_type"] == "code" for c in json.loads((student / NOTEBOOK).read_text())["cells"])
    assert "BEGIN SOLUTION" not in (student / PACKAGE).read_text()
    assert "# Edit nbs/01_tensor.ipynb, then run `tito module complete 1`." in (student / PACKAGE).read_text()
    status = tito(student, "module", "status", check=0).stdout
    assert "completed" in status and f"{expected} tests passed" in status and re.search(r"^1 of \d+ module\(s\) completed", status, flags=re.M)


def test_one_failing_test_blocks_completion_and_is_named(student, tito):
    _solve(student)
    (student / "tests/01_tensor/test_zz_extra.py").write_text(
        "def test_deliberately_wrong():\n    assert 1 + 1 == 3, 'deliberate failure for the test'\n")
    proc = tito(student, "module", "complete", "1", check=1)
    assert "FAILED tests/01_tensor/test_zz_extra.py::test_deliberately_wrong: AssertionError: deliberate failure" in proc.stdout
    assert re.search(r"tests: \d+ passed, 1 failed", proc.stdout)
    assert json.loads((student / PROGRESS).read_text())["modules"] == {}


def test_failing_notebook_cell_blocks_completion(student, tito):
    _solve(student)
    nb = json.loads((student / NOTEBOOK).read_text())
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "boom", "metadata": {}, "outputs": [],
                        "source": ["raise ValueError('inline check failed')"]})
    (student / NOTEBOOK).write_text(json.dumps(nb))
    proc = tito(student, "module", "complete", "1", check=1)
    # Named as a student sees it in Jupyter (no cell numbers or ids there): its first line, the heading above it.
    heading = [line for line in next("".join(c["source"]) for c in reversed(nb["cells"][:-1]) if c["cell_type"] == "markdown"
               and any(l.startswith("#") for l in "".join(c["source"]).splitlines())).splitlines() if line.startswith("#")][-1]
    assert (f"notebook: FAILED: {NOTEBOOK}, the cell starting \"raise ValueError('inline check failed')\" under "
            f"\"{heading}\", line 1 raised ValueError: inline check failed\n    | raise ValueError('inline check failed')") in proc.stdout
    assert json.loads((student / PROGRESS).read_text())["modules"] == {}


def test_syntax_error_fails_cleanly_and_leaves_package_and_progress(student, tito, digest):
    _solve(student)
    tito(student, "module", "complete", "1", check=0)
    before, progress = digest(student, "tinytorch"), (student / PROGRESS).read_bytes()
    nb = json.loads((student / NOTEBOOK).read_text())
    index, cell = next((i, c) for i, c in enumerate(nb["cells"]) if "#| export" in "".join(c["source"]))
    cell["source"] = ["#| export\n", "def broken(:\n"] + cell["source"][1:]
    (student / NOTEBOOK).write_text(json.dumps(nb))
    proc = tito(student, "module", "complete", "1", check=1)
    assert re.search(rf'tito: error: {NOTEBOOK}, (solution cell "[\w-]+"|the cell starting ".+?")( under ".+?")?, line 2: SyntaxError', proc.stderr)
    assert "2 | def broken(:" in proc.stderr
    assert digest(student, "tinytorch") == before
    assert (student / PROGRESS).read_bytes() == progress


def test_invalid_notebook_json_is_a_clear_error(student, tito, digest):
    before = digest(student, "tinytorch")
    (student / NOTEBOOK).write_text("{ this is not json")
    proc = tito(student, "module", "complete", "1", check=1)
    assert f"{NOTEBOOK} is not a valid notebook" in proc.stderr
    assert digest(student, "tinytorch") == before


def test_damaged_progress_file_is_never_overwritten(student, tito):
    _solve(student)
    (student / PROGRESS).write_text('{"schema_version": 99, "modules": {}}')
    proc = tito(student, "module", "complete", "1", check=1)
    assert "is not a tito progress file of schema version 1 or 2" in proc.stderr
    assert (student / PROGRESS).read_text() == '{"schema_version": 99, "modules": {}}'


def test_complete_in_the_instructor_tree_keeps_exports_fresh(tree, tito):
    proc = tito(tree, "module", "complete", "1", check=0)
    assert "package already up to date" in proc.stdout
    tito(tree, "export", "--check", check=0)


def test_tests_that_cannot_import_name_the_module_to_complete_first(student, tito):
    _solve(student)
    (student / "tests/01_tensor/test_zz_needs_later.py").write_text("import tinytorch.core.spatial\n")
    (student / "tinytorch/core/spatial.py").unlink(missing_ok=True)
    proc = tito(student, "module", "complete", "1", check=1)
    assert ("FAILED tests/01_tensor/test_zz_needs_later.py: could not import the tests: ModuleNotFoundError: "
            "No module named 'tinytorch.core.spatial' (module 09 convolutions exports it: complete that module first)") in proc.stdout
