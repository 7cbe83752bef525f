"""A student edition never shows a raw traceback for "not done yet": every command that runs the package
first checks that the modules it needs (and what they import) are exported and hold no student stub, and
names the module to complete in one line (exit 1)."""
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = "tinytorch/assets/olympics/examples"
STUB = re.compile(r'raise NotImplementedError\("Module (\d+): implement ([\w-]+)"\)')


def _one_line_error(proc, module_number):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tito: error: "), proc.stderr
    assert f"tito module complete {module_number}`" in lines[0], lines[0]
    return lines[0]


def _stubbed_files(tree):
    """Independent oracle: generated file -> grade_ids of the stubs it still raises (a regex, not the AST)."""
    found = {}
    for path in sorted((tree / "tinytorch").rglob("*.py")):
        if "tito" in path.parts:
            continue
        ids = list(dict.fromkeys(m[2] for m in STUB.finditer(path.read_text(encoding="utf-8"))))
        if ids:
            found[path.relative_to(tree).as_posix()] = ids
    return found


@pytest.mark.parametrize("command", [
    ("zoo", "eval", "digits_cnn"),
    ("bench", "core"),
    ("benchmark", "run", "--max-time", "1"),
    ("benchmark", "tinymlperf"),
    ("benchmark", "selfcheck", "--quick"),
    ("olympics", "grade", EXAMPLES, "--out", "{tmp}/olympics"),
    ("olympics", "leaderboard", "{tmp}/olympics"),
], ids=lambda c: " ".join(c[:2]))
def test_commands_on_exported_stubs_name_the_first_module_to_complete(exported_release_dir, tito, tmp_path, command):
    args = [part.replace("{tmp}", str(tmp_path)) for part in command]
    proc = tito(exported_release_dir, *args)
    line = _one_line_error(proc, 1)
    # Module 01 is the first module everything builds on; the line says what is still stubbed in it.
    assert f"`tito {command[0]} {command[1]}` needs module 01 (tensor), which is not implemented yet" in line
    stubs = _stubbed_files(exported_release_dir)["tinytorch/core/tensor.py"]
    assert f"tinytorch/core/tensor.py still raises NotImplementedError for {', '.join(stubs[:4])}" in line
    assert not (tmp_path / "olympics").exists(), "nothing may be written before the check"


def test_blockers_follow_the_import_closure_of_the_generated_files(exported_release_dir):
    from tinytorch.tito.tree import Tree, blockers

    tree = Tree(exported_release_dir)
    stubbed = _stubbed_files(exported_release_dir)
    # tinytorch.core.layers imports tinytorch.core.tensor and nothing else of the package.
    found = blockers(tree, ["tinytorch.core.layers"])
    assert [(b.number, b.name) for b in found] == [(1, "tensor"), (3, "layers")]
    assert found[1].stubs == {"tinytorch/core/layers.py": stubbed["tinytorch/core/layers.py"]}
    # The reference models build on 01-09 (spatial, training, loader, ...): every one of them is stubbed here.
    assert [b.number for b in blockers(tree, ["tinytorch.models.zoo"])] == list(range(1, 10))
    # A module that is exported and stub-free blocks nothing.
    assert blockers(tree, ["tinytorch.utils.timing"]) == []


def test_systems_edition_before_export_names_module_19(systems_release_dir, tito, tmp_path):
    """Before `make demo` nothing of 14-20 is exported: the leaderboard (module 19's reporting) says so."""
    proc = tito(systems_release_dir, "olympics", "leaderboard", str(tmp_path))
    line = _one_line_error(proc, 19)
    assert "module 19 (benchmarking), which is not implemented yet (tinytorch/benchmarking/reporting.py is not exported yet)" in line
    assert "ModuleNotFoundError" not in line


@pytest.fixture(scope="module")
def systems_exported(systems_release_dir, tmp_path_factory):
    from .conftest import run_tito

    dest = tmp_path_factory.mktemp("systems-exported") / "student"
    shutil.copytree(systems_release_dir, dest)
    run_tito(dest, "export", "--all", check=0)
    return dest


def test_systems_edition_runs_what_ships_solved_and_guards_the_rest(systems_exported, tito):
    proc = tito(systems_exported, "zoo", "eval", "digits_mlp", check=0)  # 01-09 ship solved
    assert re.search(r"digits_mlp on the digits test split: top-1 accuracy [\d.]+% \(\d+/359", proc.stdout)
    line = _one_line_error(tito(systems_exported, "benchmark", "selfcheck", "--quick"), 14)
    assert "needs module 14 (profiling)" in line and "also not implemented yet: 19 (benchmarking)" in line


def test_start_in_a_systems_edition_does_not_call_solved_modules_unfinished(systems_exported, tito):
    out = tito(systems_exported, "module", "start", "19", check=0).stdout
    for number in range(1, 10):
        assert f"{number:02d}_" not in out, out
    # It names what 19 builds on that is still an exercise, with the module to complete first.
    assert "module 19 (benchmarking) builds on 14 (profiling)" in out
    assert "complete 14 first (`tito module complete 14`)" in out


def test_module_06_before_03_names_03(student, tito):
    """01, 02 and 04 done (their solved notebooks exported), 03 untouched: `module test 6` says up front that
    06 builds on 03, and repeats it in the summary; `module start 6` says it too."""
    for slug in ("01_tensor", "02_activations", "04_losses"):
        shutil.copy2(ROOT / "nbs" / f"{slug}.ipynb", student / "nbs" / f"{slug}.ipynb")
    tito(student, "export", "1-5", check=0)
    shutil.copy2(ROOT / "nbs" / "06_autograd.ipynb", student / "nbs" / "06_autograd.ipynb")
    proc = tito(student, "module", "test", "6", check=1)
    first = proc.stdout.splitlines()[0]
    assert first.startswith("Note: module 06 (autograd) builds on 03 (layers), which is not implemented yet "
                            "(tinytorch/core/layers.py still raises NotImplementedError for "), first
    assert "complete 03 first (`tito module complete 3`)" in first
    assert "  builds on 03 (layers), not implemented yet: complete it first (`tito module complete 3`)" in proc.stdout
    assert "01 (tensor)" not in proc.stdout
    start = tito(student, "module", "start", "6", check=0).stdout
    assert "builds on 03 (layers)" in start


def test_a_stray_stub_or_missing_module_is_one_line(exported_release_dir):
    """The translation in `main` for whatever a guard did not foresee."""
    from tinytorch.tito.cli import _not_done
    from tinytorch.tito.tree import Tree

    tree = Tree(exported_release_dir)
    try:
        exec(compile('raise NotImplementedError("Module 09: implement conv2d-layer")',
                     str(exported_release_dir / "tinytorch/core/spatial.py"), "exec"))
    except NotImplementedError as exc:
        line = _not_done(exc, tree)
    assert line == ("module 09 (convolutions) is not implemented yet: `conv2d-layer` still raises NotImplementedError "
                    "(raised in tinytorch/core/spatial.py, line 1); complete it first with `tito module complete 9`")
    missing = ModuleNotFoundError("No module named 'tinytorch.benchmarking.reporting'", name="tinytorch.benchmarking.reporting")
    assert _not_done(missing, tree) == ("tinytorch.benchmarking.reporting is not exported yet: module 19 (benchmarking) "
                                        "exports it; complete it first with `tito module complete 19`")
    assert _not_done(NotImplementedError("abstract method"), tree) is None  # anything else stays a real error
    assert _not_done(ModuleNotFoundError("No module named 'scipyx'", name="scipyx"), tree) is None


def test_root_runs_the_trees_own_package(systems_exported, tmp_path):
    """`/some/other/tito --root EDITION zoo eval ...` imported the other tree's package and measured it; a command
    that runs the package now runs EDITION's own (the guard reads EDITION's files, so must the command)."""
    import os
    import subprocess

    copy = tmp_path / "edition"
    shutil.copytree(systems_exported, copy)
    zoo = copy / "tinytorch/models/zoo.py"
    zoo.write_text(zoo.read_text() + "\nprint('this is the edition package')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's tito and package, as `/work/main/.venv/bin/tito` would have
    proc = subprocess.run([sys.executable, "-m", "tinytorch.tito", "--root", str(copy), "zoo", "eval", "digits_mlp"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("this is the edition package\n"), proc.stdout
