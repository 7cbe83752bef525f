"""Fixtures for testing the toolchain. Every test works on a private copy of the repository (never on
the checkout itself) and drives `tito` through a subprocess, exactly as a person would."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("settings.ini", "setup.py", "Makefile", "requirements.txt", "README.md", ".gitignore", "pytest.ini",
          "modules", "nbs", "tinytorch", "tests", "docs")
IGNORED = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints", "tito", "notebooks")


def copy_tree(dest: Path) -> Path:
    """A copy of the instructor tree: sources, notebooks, package, module tests (not these tests)."""
    dest.mkdir(parents=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            ignore = IGNORED if name == "tests" else shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", ".tito")
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, dest / name)
    return dest


def run_tito(cwd: Path, *args: str, check: int | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m tinytorch.tito ARGS` in `cwd` (so the copy's own tito and package are used); `env` changes
    the environment (a value of None removes that variable)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    for key, value in (env or {}).items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    env = base
    env["PYTHONPATH"] = str(cwd)
    proc = subprocess.run([sys.executable, "-m", "tinytorch.tito", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    if check is not None:
        assert proc.returncode == check, f"tito {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def snapshot(root: Path, *folders: str) -> dict[str, str]:
    """sha256 of every file under the given folders (to prove something was left untouched)."""
    digest = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


@pytest.fixture
def tree(tmp_path) -> Path:
    return copy_tree(tmp_path / "tree")


@pytest.fixture(scope="session")
def release_dir(tmp_path_factory) -> Path:
    """A student edition of the whole course (every module an exercise), made once per session."""
    base = tmp_path_factory.mktemp("release")
    source = copy_tree(base / "instructor")
    run_tito(source, "release", "--out", str(base / "student"), check=0)
    return base / "student"


@pytest.fixture(scope="session")
def systems_release_dir(tmp_path_factory) -> Path:
    """A systems edition (`--modules 14-20`: 01-09 ship solved), made once per session."""
    base = tmp_path_factory.mktemp("release-systems")
    source = copy_tree(base / "instructor")
    run_tito(source, "release", "--out", str(base / "student"), "--modules", "14-20", check=0)
    return base / "student"


@pytest.fixture(scope="session")
def capstone_release_dir(tmp_path_factory) -> Path:
    """An edition where only 19 and 20 are exercises (`--modules 19-20`: everything before ships solved)."""
    base = tmp_path_factory.mktemp("release-19-20")
    source = copy_tree(base / "instructor")
    run_tito(source, "release", "--out", str(base / "student"), "--modules", "19-20", check=0)
    return base / "student"


@pytest.fixture(scope="session")
def exported_release_dir(release_dir, tmp_path_factory) -> Path:
    """The whole-course edition after `make demo`'s first step (`tito export --all`: every stub exported).
    Shared and read-only: copy it (`student`-style) before changing it."""
    dest = tmp_path_factory.mktemp("release-exported") / "student"
    shutil.copytree(release_dir, dest)
    run_tito(dest, "export", "--all", check=0)
    return dest


@pytest.fixture
def student(release_dir, tmp_path) -> Path:
    """A private copy of the student edition, for tests that change it."""
    dest = tmp_path / "student"
    shutil.copytree(release_dir, dest)
    return dest


@pytest.fixture
def tito():
    return run_tito


@pytest.fixture
def digest():
    return snapshot


def first_export_line(source: str) -> int:
    """Index of the first `#| export` line of a module source."""
    return source.splitlines().index("#| export")


@pytest.fixture
def edit():
    """edit(path, func): rewrite a text file through func(text) -> text."""
    def _edit(path: Path, func) -> None:
        path.write_text(func(path.read_text(encoding="utf-8")), encoding="utf-8")
    return _edit


def _package_sha256() -> str:
    """One sha256 over the installed tinytorch package's files (paths and bytes; caches skipped)."""
    import tinytorch

    digest = hashlib.sha256()
    package = Path(tinytorch.__file__).resolve().parent
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@pytest.fixture(scope="session")
def package_digest():
    """A function giving the package's sha256 now; .before is the value when the session first asked."""
    _package_sha256.before = _package_sha256()
    return _package_sha256
