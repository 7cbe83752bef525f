"""Given-code notebooks beside a lesson, and `#| notebook_import` for notebooks that export several files.

A module folder holds its lesson (modules/NN_name/name.py) and, where needed, notebooks of given code
(modules/NN_name/<stem>.py, titled `# # Given code: ...`) that export the same way, to nbs/NN_name.<stem>.ipynb,
and ship solved in every edition. `#| notebook_import MODULE NAMES` gives an exported cell the import of names
that an earlier cell of the same notebook defines for another file, so the notebook runs before its export.
"""
import subprocess
import sys

from tinytorch.tito.tree import Tree

GIVEN = '''# %% [markdown]
# # Given code: a doubling helper
#
# This notebook is given: it ships solved in every edition and is not an exercise.

# %%
#| default_exp core.given_demo

# %%
#| export
def double(x):
    """Twice x."""
    return 2 * x

# %%
#| export core.given_demo_more
#| notebook_import core.given_demo double
def quadruple(x):
    """Four times x, through double (defined above, for the other file)."""
    return double(double(x))

# %%
assert quadruple(3) == 12
'''


def _write_given(tree, text=GIVEN, stem="helpers"):
    path = tree / "modules" / "02_activations" / f"{stem}.py"
    path.write_text(text, encoding="utf-8")
    return path


def _import(tree, statement):
    return subprocess.run([sys.executable, "-c", statement], cwd=tree, env={"PYTHONPATH": str(tree)},
                          capture_output=True, text=True, timeout=120)


def test_export_writes_the_given_notebook_and_its_files_with_the_imports_it_names(tree, tito):
    _write_given(tree)
    out = tito(tree, "export", "2", check=0).stdout
    assert "wrote nbs/02_activations.helpers.ipynb" in out
    assert "wrote tinytorch/core/given_demo.py" in out and "wrote tinytorch/core/given_demo_more.py" in out
    more = (tree / "tinytorch" / "core" / "given_demo_more.py").read_text()
    assert "File to edit: ../../nbs/02_activations.helpers.ipynb" in more
    assert "# Source of truth: modules/02_activations/helpers.py; regenerate with `tito export 2`." in more
    assert "from .given_demo import double" in more
    assert "notebook_import" not in more
    # The lesson's own files are still written from the lesson.
    assert "File to edit: ../../nbs/02_activations.ipynb" in (tree / "tinytorch" / "core" / "activations.py").read_text()
    proc = _import(tree, "from tinytorch.core.given_demo_more import quadruple; print(quadruple(5))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "20"
    tito(tree, "export", "--check", check=0)
    assert Tree(tree).module(2).given == ("helpers",)


def test_a_file_in_a_module_folder_that_is_not_given_code_is_refused(tree, tito):
    _write_given(tree, GIVEN.replace("# # Given code: a doubling helper", "# # Helpers"))
    proc = tito(tree, "export", "2", check=1)
    assert "modules/02_activations/helpers.py is neither the lesson (activations.py) nor a given-code notebook" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_given_notebook_has_no_exercises(tree, tito):
    _write_given(tree, GIVEN.replace("    return 2 * x", "    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"))
    proc = tito(tree, "export", "2", check=1)
    assert "a given-code notebook has no exercises" in proc.stderr
    assert not (tree / "nbs" / "02_activations.helpers.ipynb").exists()


def test_notebook_import_must_name_a_file_the_same_notebook_exports(tree, tito):
    _write_given(tree, GIVEN.replace("#| notebook_import core.given_demo double", "#| notebook_import core.tensor Tensor"))
    proc = tito(tree, "export", "2", check=1)
    assert "`#| notebook_import core.tensor ...` names a file this notebook does not export" in proc.stderr
    assert "core.given_demo, core.given_demo_more" in proc.stderr
    assert not (tree / "tinytorch" / "core" / "given_demo.py").exists()


def test_notebook_import_is_checked_for_shape_and_place(tree, tito):
    cases = {
        "#| notebook_import double core.given_demo": "must start with a module",
        "#| notebook_import core.given_demo": "is malformed",
        "#| notebook_import core.given_demo double core.given_demo_more": "no names follow core.given_demo_more",
        "#| notebook_import core.given_demo double\n#| notebook_import core.given_demo double":
            "a second `#| notebook_import` line in one cell",
    }
    for line, message in cases.items():
        _write_given(tree, GIVEN.replace("#| notebook_import core.given_demo double", line))
        proc = tito(tree, "export", "2", check=1)
        assert message in proc.stderr, (line, proc.stderr)
    _write_given(tree, GIVEN.replace("assert quadruple(3) == 12", "#| notebook_import core.given_demo double\nprint(1)"))
    proc = tito(tree, "export", "2", check=1)
    assert "`#| notebook_import` only belongs in an `#| export` cell" in proc.stderr


def test_release_ships_given_code_solved_with_its_package_files(tree, tito, tmp_path):
    _write_given(tree)
    tito(tree, "export", "2", check=0)
    out = tmp_path / "student"
    tito(tree, "release", "--out", str(out), "--modules", "2", check=0)
    assert (out / "nbs" / "02_activations.helpers.ipynb").is_file()
    assert (out / ".tito" / "student_edition" / "02_activations.helpers.ipynb").is_file()
    assert "return 2 * x" in (out / "nbs" / "02_activations.helpers.ipynb").read_text()
    # The lesson is an exercise: its package file is the student's to write; the given code ships exported.
    assert not (out / "tinytorch" / "core" / "activations.py").exists()
    assert (out / "tinytorch" / "core" / "given_demo_more.py").is_file()
    student = Tree(out)
    assert student.kind == "student" and student.module(2).given == ("helpers",)
    assert [m.number for m in student.modules] == [m.number for m in Tree(tree).modules]
