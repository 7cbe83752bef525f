"""Layout and packaging: settings.ini drives nbdev and setup.py, pins are complete, rules hold."""
import configparser
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _settings():
    config = configparser.ConfigParser(delimiters=["="], interpolation=None)
    config.read(ROOT / "settings.ini")
    return config["DEFAULT"]


def test_layout_of_the_design_card():
    for name in ("settings.ini", "setup.py", "README.md", "Makefile", "requirements.txt", ".ci/run"):
        assert (ROOT / name).is_file(), name
    for name in ("modules", "nbs", "tinytorch", "tests"):
        assert (ROOT / name).is_dir(), name


def test_nbdev_reads_settings_ini(monkeypatch):
    from nbdev.config import get_config

    monkeypatch.chdir(ROOT)
    cfg = get_config()
    assert cfg.lib_name == "tinytorch" and Path(cfg.lib_path) == ROOT / "tinytorch" and Path(cfg.nbs_path) == ROOT / "nbs"
    assert metadata.version("nbdev").startswith("2.4.")


def test_versions_agree():
    import tinytorch

    assert tinytorch.__version__ == _settings()["version"] == metadata.version("tinytorch")
    assert _settings()["min_python"] == "3.10"


def test_tito_console_script_is_installed():
    tito = Path(sys.executable).parent / "tito"
    assert tito.is_file(), "pip install -e . installs the tito console script"
    proc = subprocess.run([str(tito), "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0
    for command in ("export", "module", "release", "doctor"):
        assert command in proc.stdout


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins():
    pinned = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)$", line.strip())
        if match:
            pinned[_norm(match[1])] = match[2]
        else:
            assert not line.strip() or line.startswith("#"), f"not an exact pin: {line!r}"
    return pinned


def test_every_pinned_package_is_installed_at_its_pin():
    """What else a developer installs in .venv (a linter, a profiler) does not matter; the pins do."""
    wrong = {}
    for name, version in _pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != version:
            wrong[name] = f"pinned {version}, {installed}"
    assert not wrong, f"requirements.txt pins that the venv does not hold (run `make venv`): {wrong}"
    direct = dict(re.match(r"([^=]+)==(.+)", req).groups() for req in _settings()["requirements"].split())
    for name, version in direct.items():
        assert _pins()[_norm(name)] == version, f"settings.ini pins {name}=={version}, requirements.txt {_pins().get(_norm(name))}"


def test_requirements_pin_the_whole_dependency_closure():
    """Everything tinytorch's direct requirements pull in (by their installed metadata) is pinned,
    so a fresh `make venv` installs exactly the working set the tests ran against."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    pinned, env = _pins(), default_environment()
    todo = [_norm(Requirement(req).name) for req in _settings()["requirements"].split()]
    seen, unpinned = set(), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in pinned:
            unpinned.add(name)
            continue
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
                todo.append(_norm(req.name))
    assert not unpinned, f"needed by the direct requirements but not pinned in requirements.txt: {sorted(unpinned)}"
    assert len(seen) > 40  # the closure was really walked (nbgrader alone pulls in dozens)


def test_a_developer_tool_in_the_venv_keeps_the_pin_checks_green(tmp_path):
    """Simulates an extra package in the venv (a .dist-info on the path): the checks above only read the pins."""
    dist = tmp_path / "devtool_extra-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: devtool-extra\nVersion: 1.0\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from importlib import metadata; "
            "print(metadata.version('devtool-extra'))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "1.0"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                           f"{Path(__file__)}::test_every_pinned_package_is_installed_at_its_pin",
                           f"{Path(__file__)}::test_requirements_pin_the_whole_dependency_closure"],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_generated_files_carry_the_header_and_hand_written_code_stays_in_tito():
    for path in sorted((ROOT / "tinytorch").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        if rel.startswith("tinytorch/assets/"):
            # data, never imported as package modules (e.g. the Olympics' example submissions)
            assert not (path.parent / "__init__.py").exists(), f"{rel}: assets must not form an importable package"
            continue
        if rel.startswith("tinytorch/tito/") or path.name == "__init__.py":
            assert "AUTOGENERATED" not in text[:400], rel
            continue
        assert "# AUTOGENERATED! DO NOT EDIT! File to edit: " in text[:600], f"{rel} is not generated; hand-written code lives in tinytorch/tito/"
        assert "# Source of truth: modules/" in text[:800], rel
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, rel
        assert "NotImplementedError(\"Module" not in text, f"{rel} holds a student stub"


def test_module_folders_follow_the_module_map():
    from tinytorch.tito.tree import MODULE_MAP, Tree

    tree = Tree(ROOT)
    assert tree.kind == "instructor" and tree.modules
    for module in tree.modules:
        assert MODULE_MAP[module.number][0] == module.name
        assert (ROOT / "modules" / module.slug / "README.md").is_file(), f"{module.slug} needs a README.md"
        assert module.tests.is_dir(), f"{module.slug} needs tests in tests/{module.slug}/"
        assert module.notebook.is_file()


def test_package_imports_without_any_generated_module(tmp_path):
    """`import tinytorch` (and so the tito CLI) works even when a module was never exported."""
    code = ("import sys; sys.modules['tinytorch.core.tensor'] = None\n"
            "import tinytorch, tinytorch.tito.cli\n"
            "try:\n    tinytorch.Tensor\nexcept ImportError as exc:\n    print('ImportError', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "ImportError" in proc.stdout


def test_lazy_exports():
    import tinytorch
    from tinytorch.core.tensor import Tensor

    assert tinytorch.Tensor is Tensor
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        tinytorch.Nope


def test_no_generated_module_has_a_public_name_bound_to_none():
    """fastcore's @patch leaves the decorated function's name bound to None in its module; a public None would
    make `from tinytorch.core.training import fit` quietly give None. Lessons patch with a private name."""
    import importlib
    import pkgutil

    import tinytorch

    found = []
    for info in pkgutil.walk_packages(tinytorch.__path__, "tinytorch."):
        if info.name.startswith("tinytorch.tito"):
            continue
        module = importlib.import_module(info.name)
        found += [f"{info.name}.{name}" for name, value in vars(module).items()
                  if value is None and not name.startswith("_")]
    assert not found, found
