"""The student loop tells the truth: `module test` tests the notebook as it is now, failures name what a
student sees, `module complete` ends with a summary by exercise, `status` says when the last complete
failed, the checks run under `make test`'s BLAS thread policy, and Ctrl-C is one line."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "nbs/01_tensor.ipynb"
PACKAGE = "tinytorch/core/tensor.py"
PROGRESS = ".tito/progress.json"
BLAS_UNSET = {"OPENBLAS_NUM_THREADS": None, "OMP_NUM_THREADS": None, "MKL_NUM_THREADS": None}


def _solve(student):
    (student / NOTEBOOK).write_bytes((ROOT / NOTEBOOK).read_bytes())


def _cells(student):
    return json.loads((student / NOTEBOOK).read_text())["cells"]


def _write_cells(student, cells):
    nb = json.loads((student / NOTEBOOK).read_text())
    nb["cells"] = cells
    (student / NOTEBOOK).write_text(json.dumps(nb))


def _exercises(student):
    """Oracle for the summary: the grade_ids of the solution cells and of the graded test cells, in order."""
    solutions, graded = [], []
    for cell in _cells(student):
        meta = cell["metadata"].get("nbgrader", {})
        if cell["cell_type"] == "code" and meta.get("solution"):
            solutions.append(meta["grade_id"])
        elif cell["cell_type"] == "code" and meta.get("grade"):
            graded.append(meta["grade_id"])
    return solutions, graded


def _collected(student, tests="tests/01_tensor"):
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist", tests],
                          cwd=student, capture_output=True, text=True, env={"PYTHONPATH": str(student), "PATH": "/usr/bin:/bin"})
    return int(re.search(r"(\d+) tests? collected", proc.stdout)[1])


def _break_matmul(student):
    """A solved notebook whose tensor-matmul exercise raises inside the exported code."""
    cells = _cells(student)
    cell = next(c for c in cells if c["metadata"].get("nbgrader", {}).get("grade_id") == "tensor-matmul")
    source = "".join(cell["source"])
    assert "    a, b = _operand(left), _operand(right)\n" in source
    cell["source"] = source.replace("    a, b = _operand(left), _operand(right)\n",
                                    "    raise RuntimeError('my matmul is broken')\n", 1)
    _write_cells(student, cells)


def test_module_test_tests_the_notebook_as_it_is_now(student, tito, digest):
    """Before: `module test` ran the tests against the package exported earlier (the stubs), so a solved
    notebook still failed. Now it exports the notebook into a staging copy; the installed package stays."""
    _solve(student)
    tito(student, "export", "1", check=0)
    (student / NOTEBOOK).write_bytes((student / ".tito/student_edition/01_tensor.ipynb").read_bytes())  # back to stubs
    before = digest(student, "tinytorch")
    proc = tito(student, "module", "test", "1", check=1)
    assert re.search(r"tests: \d+ passed, [1-9]\d* failed", proc.stdout), proc.stdout
    assert "note: the installed package differs from your notebook (tinytorch/core/tensor.py)" in proc.stdout
    _solve(student)
    proc = tito(student, "module", "test", "1", check=0)
    assert f"tests: {_collected(student)} passed, 0 failed" in proc.stdout
    assert "module 01: all checks passed (your notebook as it is now; the installed package and progress are unchanged)" in proc.stdout
    assert digest(student, "tinytorch") == before, "module test must not change the installed package"
    assert not (student / PROGRESS).exists()
    assert not list((student / ".tito").glob("tmp-*")), "the staging copy is removed"


def test_module_test_refuses_a_notebook_that_does_not_parse(student, tito):
    """Before: with a syntax error in the notebook, `module test` reported the earlier export ("302 passed")."""
    _solve(student)
    tito(student, "module", "complete", "1", check=0)
    cells = _cells(student)
    index, cell = next((i, c) for i, c in enumerate(cells) if c["metadata"].get("nbgrader", {}).get("grade_id") == "tensor-arithmetic")
    lines = "".join(cell["source"]).split("\n")
    lines.insert(3, "def broken(:")
    cell["source"] = "\n".join(lines)
    _write_cells(student, cells)
    proc = tito(student, "module", "test", "1", check=1)
    assert proc.stderr.startswith(f'tito: error: {NOTEBOOK}, solution cell "tensor-arithmetic" under "')
    assert ", line 4: SyntaxError" in proc.stderr and "4 | def broken(:" in proc.stderr
    assert "passed" not in proc.stdout


def test_an_assertion_names_the_cell_the_line_and_the_statement(student, tito):
    """Before: "cell 25 (id fe853f01) raised AssertionError: ": no line, no source, names Jupyter does not show."""
    _solve(student)
    cells = _cells(student)
    cells.append({"cell_type": "markdown", "id": "head", "metadata": {}, "source": ["## My own checks"]})
    cells.append({"cell_type": "code", "execution_count": None, "id": "mine", "metadata": {}, "outputs": [],
                  "source": ["t = Tensor([1.0, 2.0])\n", "total = float(t.sum().data)\n",
                             "assert total == 4.0, \\\n", "    f'sum is {total}'\n"]})
    _write_cells(student, cells)
    proc = tito(student, "module", "test", "1", check=1)
    assert (f'notebook: FAILED: {NOTEBOOK}, the cell starting "t = Tensor([1.0, 2.0])" under "## My own checks", '
            "line 3 raised AssertionError: sum is 3.0\n"
            "    | assert total == 4.0, \\\n"
            "    |     f'sum is {total}'\n") in proc.stdout


def test_an_error_inside_an_exercise_names_where_it_was_raised(student, tito):
    _solve(student)
    _break_matmul(student)
    out = tito(student, "module", "test", "1", check=1).stdout
    failure = next(line for line in out.splitlines() if line.startswith("notebook: FAILED:"))
    assert "raised RuntimeError: my matmul is broken" in failure
    assert re.search(r'\n    raised in nbs/01_tensor\.ipynb, solution cell "tensor-matmul" under "[^"]+", line \d+ '
                     r"\(in _matmul\): raise RuntimeError\('my matmul is broken'\)", out), out


def test_complete_ends_with_a_summary_by_exercise(student, tito):
    """Untouched notebook: every exercise is listed, each solution as not implemented (its stub is left)."""
    proc = tito(student, "module", "complete", "1", check=1)
    lines = proc.stdout.splitlines()
    solutions, graded = _exercises(student)
    start = next(i for i, line in enumerate(lines) if line.startswith("Summary by exercise"))
    assert lines[start].startswith(f"Summary by exercise (0 of {len(solutions) + len(graded)} passed;")
    rows = lines[start + 1:start + 1 + len(solutions) + len(graded)]
    assert [row.split()[1] for row in rows[:len(solutions)]] == solutions
    assert [row.split()[2] for row in rows[len(solutions):]] == graded
    for row in rows[:len(solutions)]:
        assert " NOT IMPLEMENTED (still raises its stub)" in row, row
    # The stub of tensor-creation is what every Tensor test meets first: its first failing test is named.
    assert solutions[0] == "tensor-creation"
    assert re.search(r"first failure: tests/01_tensor/test_tensor\.py::\S+: NotImplementedError: Module 01: implement "
                     r"tensor-creation \(\+\d+ more\)$", rows[0]), rows[0]
    for row in rows[len(solutions):]:
        assert " FAILED  line " in row, row
    assert lines[-1].startswith("Module 01 (Tensor) is NOT complete")


def test_summary_traces_a_broken_exercise_and_passes_the_others(student, tito):
    _solve(student)
    _break_matmul(student)
    out = tito(student, "module", "complete", "1", check=1).stdout
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("  solution  ")}
    assert re.search(r"tensor-matmul +FAILED  tests/01_tensor/test_tensor\.py::\S+: RuntimeError: my matmul is broken",
                     rows["tensor-matmul"]), rows["tensor-matmul"]
    for grade_id in ("tensor-creation", "tensor-arithmetic", "tensor-shape-ops", "tensor-reductions", "tensor-indexing"):
        assert rows[grade_id].rstrip().endswith(" passed"), rows[grade_id]
    tests = {line.split()[2]: line for line in out.splitlines() if line.startswith("  test cell ")}
    assert "FAILED" in tests["test-matmul"] and "RuntimeError: my matmul is broken" in tests["test-matmul"]
    assert tests["test-creation"].rstrip().endswith(" passed")


def test_status_says_when_the_last_complete_failed_and_keeps_the_record(student, tito):
    _solve(student)
    tito(student, "module", "complete", "1", check=0)
    completed = json.loads((student / PROGRESS).read_text())["modules"]["01_tensor"]
    _break_matmul(student)
    tito(student, "module", "complete", "1", check=1)
    data = json.loads((student / PROGRESS).read_text())
    assert data["schema_version"] == 2
    assert data["modules"]["01_tensor"] == completed, "the earlier completion is never lost"
    failed = data["failed"]["01_tensor"]
    assert failed["failed_at"] >= completed["completed_at"] and failed["package_changed"] is True
    assert "my matmul is broken" in (student / PACKAGE).read_text()
    out = tito(student, "module", "status", check=0).stdout
    assert re.search(r"^01\s+Tensor\s+tinytorch\.core\.tensor\s+completed, last complete FAILED$", out, flags=re.M), out
    assert (f"completed earlier; the last `tito module complete 1` FAILED at {failed['failed_at']} (first failure: "
            in out)
    assert "and the package now holds that code" in out
    # A passing complete clears the failure, and keeps one record.
    _solve(student)
    tito(student, "module", "complete", "1", check=0)
    data = json.loads((student / PROGRESS).read_text())
    assert data["failed"] == {} and data["modules"]["01_tensor"]["completed_at"] >= failed["failed_at"]
    assert "FAILED" not in tito(student, "module", "status", check=0).stdout


def test_schema_1_progress_files_are_still_read(student, tito):
    old = {"schema_version": 1, "modules": {"01_tensor": {"completed_at": "2024-01-02T03:04:05+00:00", "tests_passed": 7,
                                                          "tests_skipped": 0, "notebook_cells": 3}}}
    (student / ".tito/progress.json").write_text(json.dumps(old))
    out = tito(student, "module", "status", check=0).stdout
    assert "01 completed 2024-01-02T03:04:05+00:00: 7 tests passed, notebook ran 3 code cells" in out
    assert re.search(r"^1 of \d+ module\(s\) completed", out, flags=re.M)


def _blas_probe(student):
    """A notebook cell and a test that record the BLAS thread counts they really run with (threadpoolctl)."""
    probe = ("import json, os\nfrom threadpoolctl import threadpool_info\n"
             "json.dump({'env': os.environ.get('OPENBLAS_NUM_THREADS'), 'threads': sorted({p['num_threads'] for p in "
             "threadpool_info() if p['user_api'] == 'blas'})}, open(os.environ['BLAS_PROBE'] + '.WHERE', 'w'))\n")
    cells = _cells(student)
    cells.append({"cell_type": "code", "execution_count": None, "id": "probe", "metadata": {}, "outputs": [],
                  "source": ["import numpy\n", probe.replace("WHERE", "notebook")]})
    _write_cells(student, cells)
    (student / "tests/01_tensor/test_zz_probe.py").write_text(f"def test_probe():\n    import numpy\n{_indent(probe.replace('WHERE', 'pytest'))}")


def _indent(text):
    return "".join(f"    {line}\n" for line in text.splitlines())


def test_checks_run_with_one_blas_thread_unless_the_user_says_otherwise(student, tito, tmp_path):
    _solve(student)
    _blas_probe(student)
    probe = tmp_path / "blas"
    proc = tito(student, "module", "test", "1", check=0, env={**BLAS_UNSET, "BLAS_PROBE": str(probe)})
    assert "(BLAS threads: 1, tito's default, as in `make test`; set OPENBLAS_NUM_THREADS to change it)" in proc.stdout
    for where in ("notebook", "pytest"):
        seen = json.loads(Path(f"{probe}.{where}").read_text())
        assert seen["env"] == "1" and seen["threads"] in ([1], []), (where, seen)  # [] : no BLAS pool detected
    proc = tito(student, "module", "test", "1", check=0, env={**BLAS_UNSET, "OPENBLAS_NUM_THREADS": "2", "BLAS_PROBE": str(probe)})
    assert "(BLAS threads: 2, from your OPENBLAS_NUM_THREADS)" in proc.stdout
    for where in ("notebook", "pytest"):
        assert json.loads(Path(f"{probe}.{where}").read_text())["env"] == "2"


def test_ctrl_c_is_one_line_and_kills_the_kernel(student, tmp_path):
    """A real SIGINT to the process group (what a terminal's Ctrl-C sends) while a cell sleeps."""
    pid_file = tmp_path / "kernel.pid"
    cells = _cells(student)
    cells.insert(1, {"cell_type": "code", "execution_count": None, "id": "sleepy", "metadata": {}, "outputs": [],
                     "source": [f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"]})
    _write_cells(student, cells)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(student)
    code, out, err, alive = _interrupt_when_started([sys.executable, "-m", "tinytorch.tito", "module", "test", "1"],
                                                    student, pid_file, env)
    assert code == 130, out + err
    assert err.strip().splitlines() == ["tito: interrupted; files are replaced atomically, so nothing was left half-written"], err
    assert "Traceback" not in out
    assert not alive, "the kernel must be killed"
    assert not list((student / ".tito").glob("tmp-*")), "no staging folder may be left"


def _interrupt_when_started(cmd, cwd, pid_file, env):
    """Run cmd in its own process group; once the sleeping cell wrote its pid, send SIGINT to the group (what a
    terminal's Ctrl-C does). Returns (returncode, stdout, stderr, whether the kernel is still alive)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, "the sleeping cell never started"
            time.sleep(0.2)
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    kernel = int(pid_file.read_text())
    time.sleep(0.5)
    try:
        alive = Path(f"/proc/{kernel}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        alive = False
    return proc.returncode, out, err, alive


def test_ctrl_c_during_grade_autograde_is_one_line(tree, tito, tmp_path):
    course, pid_file = tmp_path / "course", tmp_path / "kernel.pid"
    tito(tree, "grade", "generate", "--course", str(course), "--modules", "4", check=0)
    nb = json.loads((tree / "nbs/04_losses.ipynb").read_text())
    nb["cells"].insert(2, {"cell_type": "code", "execution_count": None, "id": "sleepy", "metadata": {}, "outputs": [],
                           "source": [f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"]})
    submitted = tmp_path / "collected/alice/module04/04_losses.ipynb"
    submitted.parent.mkdir(parents=True)
    submitted.write_text(json.dumps(nb))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(tree)
    code, out, err, alive = _interrupt_when_started(
        [sys.executable, "-m", "tinytorch.tito", "grade", "autograde", "--course", str(course), "--submissions",
         str(tmp_path / "collected")], tree, pid_file, env)
    assert code == 130, out + err
    assert err.strip().splitlines() == ["tito: interrupted; files are replaced atomically, so nothing was left half-written"], err
    assert not alive, "the kernel must be killed"
