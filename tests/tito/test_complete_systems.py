"""`tito module complete 19` and `20` in a student edition: they pass with the solutions, and fail naming the
exercise when one is left blank (its stub, exactly as the student edition ships it)."""
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _nb(root, slug):
    return root / "nbs" / f"{slug}.ipynb"


def _solve(student, slug):
    shutil.copy2(_nb(ROOT, slug), _nb(student, slug))


def _blank_one(student, slug, pristine) -> str:
    """Solve every exercise of the notebook but one, which keeps its stub; returns that exercise's grade_id."""
    solved = json.loads(_nb(ROOT, slug).read_text())
    stubbed = json.loads(pristine.read_text())
    stubs = {cell["metadata"]["nbgrader"]["grade_id"]: cell for cell in stubbed["cells"]
             if cell.get("metadata", {}).get("nbgrader", {}).get("solution")}
    exercises = [cell for cell in solved["cells"] if cell.get("metadata", {}).get("nbgrader", {}).get("solution")]
    blank = exercises[len(exercises) // 2]
    grade_id = blank["metadata"]["nbgrader"]["grade_id"]
    blank["source"] = stubs[grade_id]["source"]
    _nb(student, slug).write_text(json.dumps(solved, indent=1))
    return grade_id


@pytest.mark.parametrize("number, slug", [(19, "19_benchmarking"), (20, "20_capstone")])
def test_complete_fails_naming_the_blank_exercise_then_passes_with_the_solutions(capstone_release_dir, tito, tmp_path,
                                                                                  number, slug):
    student = tmp_path / "student"
    shutil.copytree(capstone_release_dir, student)
    if number == 20:  # 20 builds on 19: the student finished it first
        _solve(student, "19_benchmarking")
        tito(student, "export", "19", check=0)
    grade_id = _blank_one(student, slug, student / ".tito" / "student_edition" / f"{slug}.ipynb")
    proc = tito(student, "module", "complete", str(number), check=1)
    assert f"NotImplementedError: Module {number}: implement {grade_id}" in proc.stdout, proc.stdout[-3000:]
    assert "is NOT complete; progress unchanged" in proc.stdout
    _solve(student, slug)
    proc = tito(student, "module", "complete", str(number), check=0)
    assert f"Module {number} (" in proc.stdout and "completed" in proc.stdout, proc.stdout[-3000:]
    assert ", 0 failed" in proc.stdout
    record = json.loads((student / ".tito" / "progress.json").read_text())
    assert slug in record["modules"]
