"""`tito release --out DIR`: the student edition has no solutions and valid nbgrader metadata."""
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "modules/01_tensor/tensor.py"
ALL_SOURCES = sorted(ROOT.glob("modules/[0-9][0-9]_*/*.py"))
SOURCES = [p for p in ALL_SOURCES if p.stem == p.parent.name[3:]]      # the lessons (modules/NN_name/name.py)
GIVEN = [p for p in ALL_SOURCES if p not in SOURCES]                    # given-code notebooks: public, ship solved
KEYS = {"grade", "grade_id", "locked", "solution", "schema_version"}


def _target_file(source):
    """The package file a module source exports to (from its `#| default_exp`)."""
    target = re.search(r"^#\|\s*default_exp\s+(\S+)", source.read_text(), flags=re.M)[1]
    return "tinytorch/" + target.replace(".", "/") + ".py"


def _split_lines(text):
    """(lines inside solution regions, lines outside them) of a module source (an independent parser)."""
    inside, outside, depth = set(), set(), False
    for raw in text.splitlines():
        line = raw.strip()
        if re.search(r"###\s*BEGIN SOLUTION", line):
            depth = True
        elif re.search(r"###\s*END SOLUTION", line):
            depth = False
        elif line and not line.startswith("#"):
            (inside if depth else outside).add(line)
    return inside, outside


# Lines students see anyway: everything outside solution regions, in any module.
PUBLIC = set().union(*(_split_lines(source.read_text())[1] for source in SOURCES),
                     *(set().union(*_split_lines(source.read_text())) for source in GIVEN))


def _solution_bodies(text):
    """Lines of a source's solution regions that appear nowhere outside solution regions."""
    return _split_lines(text)[0] - PUBLIC


def _all_text(folder):
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            if path.suffix == ".ipynb":
                nb = json.loads(text)
                yield path, "\n".join("".join(c["source"]) for c in nb["cells"])
                yield path, json.dumps([c.get("outputs", []) for c in nb["cells"]])
            else:
                yield path, text


def test_no_line_of_a_solution_body_survives(release_dir):
    assert len(_solution_bodies(SOURCE.read_text())) > 30, "the tensor module should have substantial solution bodies"
    secret = set().union(*(_solution_bodies(source.read_text()) for source in SOURCES))
    assert not (release_dir / "modules").exists()
    for source in SOURCES:
        assert not (release_dir / _target_file(source)).exists(), "an exercise module's package file holds solutions"
    for path, text in _all_text(release_dir):
        rel = path.relative_to(release_dir)
        if path.suffix != ".ipynb" and (ROOT / rel).is_file() and (ROOT / rel).read_bytes() == path.read_bytes():
            continue  # shipped verbatim from the instructor tree (tests, tito, settings): public by definition
        lines = {line.strip() for line in text.splitlines()}
        leaked = secret & lines
        assert not leaked, f"{path.relative_to(release_dir)} contains solution lines: {sorted(leaked)[:3]}"
        if path.suffix == ".ipynb" or (path.suffix == ".py" and "tito" not in path.parts):
            assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, path


def test_given_code_ships_solved_with_its_package_files(release_dir):
    assert GIVEN, "the course has given-code notebooks (e.g. modules/01_tensor/timing.py)"
    for source in GIVEN:
        slug = source.parent.name
        shipped = release_dir / "nbs" / f"{slug}.{source.stem}.ipynb"
        assert shipped.read_bytes() == (ROOT / "nbs" / shipped.name).read_bytes(), shipped.name
        assert (release_dir / ".tito" / "student_edition" / shipped.name).read_bytes() == shipped.read_bytes()
        assert (release_dir / _target_file(source)).is_file(), _target_file(source)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.parent.name)
def test_nbgrader_metadata_is_valid(release_dir, source):
    from nbgrader.nbgraderformat import MetadataValidator

    number = source.parent.name[:2]
    nb = nbformat.read(release_dir / "nbs" / f"{source.parent.name}.ipynb", as_version=4)
    MetadataValidator().validate_nb(nb)  # nbgrader's own validator raises on any problem
    graded = [c for c in nb.cells if "nbgrader" in c.metadata]
    assert graded
    for cell in graded:
        meta = cell.metadata["nbgrader"]
        assert KEYS <= set(meta), cell.source[:60]
        assert meta["schema_version"] == 3
        if meta["grade"]:
            assert meta["locked"] and cell.metadata["editable"] is False and cell.metadata["deletable"] is False
            assert meta["points"] > 0
        if meta["solution"]:
            stub = f'raise NotImplementedError("Module {number}: implement {meta["grade_id"]}")'
            assert stub in cell.source and "# YOUR CODE HERE" in cell.source
        assert meta.get("checksum"), "nbgrader checksums let the autograder detect edited locked cells"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_student_edition_is_also_kept_pristine_with_a_manifest(release_dir):
    assert (release_dir / ".tito/student_edition/01_tensor.ipynb").read_bytes() == (release_dir / "nbs/01_tensor.ipynb").read_bytes()
    manifest = json.loads((release_dir / ".tito/release.json").read_text())
    assert manifest["exercise_modules"] == [source.parent.name for source in SOURCES] and manifest["solved_modules"] == []
    assert manifest["schema_version"] == 1
    for name in ("settings.ini", "setup.py", "Makefile", "requirements.txt", "README.md", "tests/conftest.py",
                 "tests/01_tensor/test_tensor.py", "tinytorch/__init__.py", "tinytorch/tito/cli.py"):
        assert (release_dir / name).is_file(), name
    assert not (release_dir / "tests/tito").exists()


FAKE_MODULE_02 = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 02: Activations
#
# > A tiny stand-in module for testing releases (used while the real module 02 does not exist).

# %%
#| default_exp core.activations

# %% nbgrader={"grade": false, "grade_id": "relu", "locked": false, "schema_version": 3, "solution": true}
#| export
import numpy as np

def relu(x):
    """max(0, x) element-wise."""
    ### BEGIN SOLUTION
    return np.maximum(np.asarray(x), 0.0)  # unique-solution-marker-line
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-relu", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert relu(-1.0) == 0.0 and relu(2.0) == 2.0
'''


def _last_module(tree, tito):
    """The highest-numbered module (a stand-in module 02 is added while the course has only 01)."""
    folders = sorted(p.name for p in (tree / "modules").iterdir() if p.is_dir())
    if len(folders) == 1:
        (tree / "modules/02_activations").mkdir()
        (tree / "modules/02_activations/activations.py").write_text(FAKE_MODULE_02)
        (tree / "tests/02_activations").mkdir()
        (tree / "tests/02_activations/test_activations.py").write_text(
            "from tinytorch.core.activations import relu\n\ndef test_relu():\n    assert relu(-3.0) == 0.0\n")
        tito(tree, "export", "--all", check=0)
        folders.append("02_activations")
    return folders[-1], folders[:-1]


def test_modules_range_makes_only_those_exercises(tree, tito, tmp_path):
    last, others = _last_module(tree, tito)
    number = int(last[:2])
    out = tmp_path / "systems-course"
    stdout = tito(tree, "release", "--out", str(out), "--modules", f"{number}-20", check=0).stdout
    assert f"exercises: {last}\n" in stdout and f"shipped solved: {', '.join(others)}" in stdout
    # Earlier modules ship solved, with their package files; the exercise ships without its own.
    for slug in others:
        solved = nbformat.read(out / "nbs" / f"{slug}.ipynb", as_version=4)
        original = nbformat.read(tree / "nbs" / f"{slug}.ipynb", as_version=4)
        assert [c.source for c in solved.cells] == [c.source for c in original.cells]
        assert (out / _target_file(next((tree / "modules" / slug).glob("*.py")))).is_file()
    source = next((tree / "modules" / last).glob("*.py"))
    assert not (out / _target_file(source)).exists()
    exercise = (out / "nbs" / f"{last}.ipynb").read_text()
    lines = {line.strip() for cell in json.loads(exercise)["cells"] for line in "".join(cell["source"]).splitlines()}
    assert not lines & _solution_bodies(source.read_text())
    assert f"Module {number:02d}: implement" in exercise
    # Its README names the one exercise, lists the solved modules and starts the student at the exercise.
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert re.findall(r"^\| (\d\d) \|", readme, flags=re.M) == [f"{number:02d}"]
    solved = readme.split("nothing to hand in): ")[1].split("\n\n")[0]
    assert re.findall(r"\b(\d\d) [A-Z]", solved) == [slug[:2] for slug in others], solved
    assert f"tito module start {number}\n" in readme and f"jupyter lab nbs/{last}.ipynb" in readme
    listing = tito(out, "module", "list", check=0).stdout
    for slug in others:
        assert re.search(rf"^{slug[:2]} .* provided \(solved\)$", listing, flags=re.M), listing
    # The student edition works: the exercise fails until solved, then completes.
    proc = tito(out, "module", "complete", str(number), check=1)
    assert f"NotImplementedError: Module {number:02d}: implement" in proc.stdout
    shutil.copy2(tree / "nbs" / f"{last}.ipynb", out / "nbs" / f"{last}.ipynb")
    tito(out, "module", "complete", str(number), check=0)


def test_release_refuses_to_overwrite(tree, tito, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = tito(tree, "release", "--out", str(out), check=2)
    assert "already exists and is not an empty folder" in proc.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    proc = tito(tree, "release", "--out", str(tree / "inside"), check=2)
    assert "inside the instructor tree" in proc.stderr
    proc = tito(tree, "release", "--out", str(tmp_path / "x"), "--modules", "42", check=2)
    assert "module numbers run from 1 to 20" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_release_needs_the_instructor_tree(release_dir, tito, tmp_path):
    proc = tito(release_dir, "release", "--out", str(tmp_path / "again"), check=1)
    assert "needs the instructor tree" in proc.stderr


def test_release_guard_refuses_a_leak(tree, tmp_path):
    """The release's final scan catches solution code in a generated file (a tito bug, simulated)."""
    from tinytorch.tito.release import _check_no_solutions
    from tinytorch.tito.tree import TitoError, Tree

    dest = tmp_path / "leaky"
    (dest / ".tito/student_edition").mkdir(parents=True)
    (dest / "nbs").mkdir()
    shutil.copy2(tree / "nbs/01_tensor.ipynb", dest / "nbs/01_tensor.ipynb")  # solved, as if clearing failed
    instructor = Tree(tree)
    with pytest.raises(TitoError, match=r"nbs/01_tensor.ipynb line \d+ contains solution code"):
        _check_no_solutions(instructor, dest, instructor.modules)
    _check_no_solutions(instructor, dest, [])  # nothing is secret when every module ships solved


# ------------------------------------------------------------------ the edition's own README and `make demo`
INSTRUCTOR_ONLY = ("modules/", "tito release", "tito grade", "tito export --check", "tito export 1", "solutions",
                   "instructor", "{{")


def test_the_edition_readme_is_the_student_one(release_dir):
    readme = (release_dir / "README.md").read_text(encoding="utf-8")
    assert readme != (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# TinyTorch (student edition ")
    for source in SOURCES:                              # every exercise, with its notebook and export target
        slug = source.parent.name
        target = re.search(r"^#\|\s*default_exp\s+(\S+)", source.read_text(), flags=re.M)[1]
        assert re.search(rf"^\| {slug[:2]} \| .+ \| `nbs/{slug}.ipynb` \| `tinytorch\.", readme, flags=re.M), slug
        assert f"`tinytorch.{target}`" in readme or slug == "20_capstone", slug
    assert "nothing to hand in): none, every module is an exercise." in readme
    for command in ("make demo", "make test", "tito module list", "tito module start 1", "tito module test 1",
                    "tito module complete 1", "tito module status", "tito module reset N --yes",
                    "jupyter lab nbs/01_tensor.ipynb"):
        assert command in readme, command
    assert "once modules 01-09 are implemented" in readme and "once every module is implemented" in readme
    for word in INSTRUCTOR_ONLY:
        assert word not in readme, word


def test_make_demo_in_an_edition_says_what_is_next_and_runs_what_is_ready(student):
    """The edition's own Makefile, with this venv's tito (-o: no venv is built in the edition). Untouched, it
    exports the stubs, runs nothing that needs them and names the next step; with 01-09 solved it measures the
    reference models, and still waits for the rest before the Olympics. Exit 0 both times."""
    import os
    import subprocess
    import sys

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(student)

    def demo():
        proc = subprocess.run(["make", "--no-print-directory", "demo", f"TITO={sys.executable} -m tinytorch.tito",
                               "-o", ".venv/.tinytorch-installed"], cwd=student, env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    numbers = [source.parent.name[:2] for source in SOURCES]
    out = demo()
    assert f"0 of {len(numbers)} module(s) completed" in out
    basics = [n for n in numbers if n <= "09"]
    assert (f"make demo: not yet: the reference models (tito zoo eval) need modules 01-09; still to implement: "
            f"{' '.join(basics)}\n") in out
    assert f"the TorchPerf Olympics needs every module; still to implement: {' '.join(numbers)}\n" in out
    assert "make demo: next: tito module start 1, write its code in nbs/01_tensor.ipynb, then tito module complete 1" in out
    assert "top-1 accuracy" not in out and "olympics grade" not in out
    for slug in (source.parent.name for source in SOURCES if source.parent.name[:2] <= "09"):
        shutil.copy2(ROOT / "nbs" / f"{slug}.ipynb", student / "nbs" / f"{slug}.ipynb")   # as if solved
    out = demo()
    assert re.search(r"digits_mlp on the digits test split: top-1 accuracy [\d.]+% \(\d+/359", out), out
    assert re.search(r"digits_cnn on the digits test split: top-1 accuracy [\d.]+% \(\d+/359", out), out
    later = [n for n in numbers if n > "09"]
    assert f"the TorchPerf Olympics needs every module; still to implement: {' '.join(later)}\n" in out
    assert f"make demo: next: tito module start {int(later[0])}, write its code in nbs/{later[0]}_" in out
