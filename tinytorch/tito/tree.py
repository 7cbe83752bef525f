"""Where things are: the project tree, its kind, and the catalogue of course modules.

A tree is either the *instructor* tree (it has `modules/`, the source of truth with full solutions) or
a *student* tree made by `tito release` (no `modules/`; `.tito/student_edition/` holds the pristine
notebooks the student started from). Every command works on the tree found from the current folder.
"""
from __future__ import annotations

import json
import re
from configparser import ConfigParser, Error as ConfigError
from dataclasses import dataclass
from pathlib import Path


class TitoError(Exception):
    """A failure to report to the user: the message says what was wrong and what to do."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def exported_module(module_name: str):
    """The generated module module_name, or None when it (or a package above it) is not exported yet in
    this tree. A real import error inside an exported module propagates."""
    import importlib

    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise
        return None


class UsageError(TitoError):
    """Bad arguments (unknown module number, malformed range, ...): exit status 2."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=2)


# The module map of ARCHITECTURE.md: number -> (folder name, export target). A target ending in ".*"
# only fixes the package the module exports under. Course material quotes these import paths.
MODULE_MAP: dict[int, tuple[str, str]] = {
    1: ("tensor", "tinytorch.core.tensor"),
    2: ("activations", "tinytorch.core.activations"),
    3: ("layers", "tinytorch.core.layers"),
    4: ("losses", "tinytorch.core.losses"),
    5: ("dataloader", "tinytorch.data.loader"),
    6: ("autograd", "tinytorch.core.autograd"),
    7: ("optimizers", "tinytorch.core.optimizers"),
    8: ("training", "tinytorch.core.training"),
    9: ("convolutions", "tinytorch.core.spatial"),
    10: ("tokenization", "tinytorch.text.*"),
    11: ("embeddings", "tinytorch.text.*"),
    12: ("attention", "tinytorch.core.attention"),
    13: ("transformers", "tinytorch.models.transformer"),
    14: ("profiling", "tinytorch.profiling.profiler"),
    15: ("quantization", "tinytorch.optimization.quantization"),
    16: ("compression", "tinytorch.optimization.compression"),
    17: ("acceleration", "tinytorch.optimization.acceleration"),
    18: ("memoization", "tinytorch.generation.kv_cache"),
    19: ("benchmarking", "tinytorch.benchmarking.benchmark"),
    20: ("capstone", "tinytorch.capstone.*"),
}

LIB_NAME = "tinytorch"
STUDENT_EDITION_DIR = Path(".tito") / "student_edition"
_DEFAULT_EXP = re.compile(r"^\s*#\|\s*default_exp\s+(\S+)\s*$", re.MULTILINE)
_TITLE = re.compile(r"^#\s+(?:Module\s+\d+\s*:\s*)?(.+?)\s*$")


def target_allowed(number: int, target: str) -> bool:
    """Whether `target` (a dotted module path) is the export target the module map gives `number`."""
    expected = MODULE_MAP[number][1]
    if expected.endswith(".*"):
        return target.startswith(expected[:-1]) and len(target) > len(expected) - 1
    return target == expected


@dataclass(frozen=True)
class ModuleInfo:
    """One course module, as found on disk."""

    number: int
    name: str
    title: str
    export_target: str | None
    root: Path
    source: Path | None  # modules/NN_name/name.py (instructor trees only)
    given: tuple[str, ...] = ()  # stems of the module's given-code notebooks (modules/NN_name/<stem>.py)

    @property
    def slug(self) -> str:
        return f"{self.number:02d}_{self.name}"

    @property
    def notebook(self) -> Path:
        """The lesson notebook, the one with the student's exercises."""
        return self.root / "nbs" / f"{self.slug}.ipynb"

    @property
    def pristine(self) -> Path:
        return self.root / STUDENT_EDITION_DIR / f"{self.slug}.ipynb"

    def given_notebook(self, stem: str) -> Path:
        """nbs/NN_name.<stem>.ipynb: a notebook of given code (ships solved in every edition)."""
        return self.root / "nbs" / f"{self.slug}.{stem}.ipynb"

    def given_source(self, stem: str) -> Path:
        return self.root / "modules" / self.slug / f"{stem}.py"

    def given_pristine(self, stem: str) -> Path:
        return self.root / STUDENT_EDITION_DIR / f"{self.slug}.{stem}.ipynb"

    @property
    def notebooks(self) -> list[Path]:
        """Every notebook of the module: the lesson first, then its given-code notebooks."""
        return [self.notebook, *(self.given_notebook(stem) for stem in self.given)]

    @property
    def tests(self) -> Path:
        return self.root / "tests" / self.slug

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


class Tree:
    """A TinyTorch project tree (instructor or student edition) and its modules."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        if (self.root / "modules").is_dir():
            self.kind = "instructor"
        elif (self.root / STUDENT_EDITION_DIR).is_dir():
            self.kind = "student"
        else:
            raise TitoError(
                f"{self.root} has neither modules/ (an instructor tree) nor {STUDENT_EDITION_DIR}/ "
                "(a student edition made by `tito release`); run tito inside a TinyTorch tree or pass --root DIR"
            )
        self.lib = self.root / LIB_NAME
        self.modules = self._discover()

    @classmethod
    def find(cls, start: Path | None = None) -> "Tree":
        """The tree containing `start` (default: the current folder)."""
        here = Path(start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            settings = folder / "settings.ini"
            if settings.is_file() and _lib_name(settings) == LIB_NAME:
                return cls(folder)
        raise TitoError(
            f"no TinyTorch tree here: neither {here} nor any folder above it has a settings.ini with "
            f"lib_name = {LIB_NAME}; cd into your TinyTorch folder or pass --root DIR"
        )

    def _discover(self) -> list[ModuleInfo]:
        found = []
        if self.kind == "instructor":
            for folder in sorted((self.root / "modules").iterdir()):
                match = re.fullmatch(r"(\d{2})_([a-z0-9_]+)", folder.name)
                if not match or not folder.is_dir():
                    continue
                number, name = int(match[1]), match[2]
                source = folder / f"{name}.py"
                if not source.is_file():
                    raise TitoError(f"modules/{folder.name}/ has no {name}.py; every module folder needs its source")
                text = source.read_text(encoding="utf-8")
                given = tuple(_given_stems(folder, name))
                found.append(self._make_info(number, name, _title_from_py(text), _target(text), source, given))
        else:
            pristine = sorted((self.root / STUDENT_EDITION_DIR).glob("*.ipynb"))
            given: dict[str, list[str]] = {}
            for nb_path in pristine:
                match = _GIVEN_NOTEBOOK.fullmatch(nb_path.stem)
                if match:
                    given.setdefault(match[1], []).append(match[2])
            for nb_path in pristine:
                match = re.fullmatch(r"(\d{2})_([a-z0-9_]+)", nb_path.stem)
                if not match:
                    continue
                title, target = _title_and_target_from_ipynb(nb_path)
                found.append(self._make_info(int(match[1]), match[2], title, target, None,
                                             tuple(given.get(nb_path.stem, ()))))
        return found

    def _make_info(self, number, name, title, target, source, given=()) -> ModuleInfo:
        where = source or (self.root / STUDENT_EDITION_DIR / f"{number:02d}_{name}.ipynb")
        if number not in MODULE_MAP:
            raise TitoError(f"{where}: module number {number} is not in the module map (01-20, ARCHITECTURE.md)")
        expected_name, expected_target = MODULE_MAP[number]
        if name != expected_name:
            raise TitoError(
                f"{where}: module {number:02d} must be named {number:02d}_{expected_name} (the module map), not {number:02d}_{name}"
            )
        if target is not None and not target_allowed(number, target):
            raise TitoError(
                f"{where}: `#| default_exp` exports to {target}, but the module map says module {number:02d} "
                f"exports to {expected_target}; fix the directive"
            )
        return ModuleInfo(number, name, title or expected_name.title(), target, self.root, source, given)

    # --- selecting modules -------------------------------------------------------------------
    def valid_choices(self) -> str:
        if not self.modules:
            return "none (this tree has no modules yet)"
        return ", ".join(f"{m.number} ({m.name})" for m in self.modules)

    def module(self, spec: str | int) -> ModuleInfo:
        """The module numbered `spec` ("1", "01", 1); a UsageError that lists the valid choices otherwise."""
        number = _parse_number(str(spec), self)
        for info in self.modules:
            if info.number == number:
                return info
        raise UsageError(f"unknown module {spec!r}: valid choices are {self.valid_choices()}")

    def select(self, specs: list[str]) -> list[ModuleInfo]:
        """Modules named by numbers and ranges ("1", "3-5", "14-20", "1,2").

        A single number must name an existing module; a range selects the existing modules in it.
        """
        chosen: dict[int, ModuleInfo] = {}
        for spec in specs:
            for part in filter(None, (p.strip() for p in spec.split(","))):
                if "-" in part:
                    lo_s, _, hi_s = part.partition("-")
                    lo, hi = _parse_number(lo_s, self), _parse_number(hi_s, self)
                    if lo > hi:
                        raise UsageError(f"bad module range {part!r}: {lo} is after {hi}; write it low-high, e.g. 14-20")
                    for info in self.modules:
                        if lo <= info.number <= hi:
                            chosen[info.number] = info
                else:
                    info = self.module(part)
                    chosen[info.number] = info
        return [chosen[n] for n in sorted(chosen)]


def _parse_number(text: str, tree: Tree) -> int:
    text = text.strip()
    if not text.isdigit():
        raise UsageError(f"unknown module {text!r}: give a module number; valid choices are {tree.valid_choices()}")
    number = int(text)
    if number not in MODULE_MAP:
        raise UsageError(f"unknown module {text!r}: module numbers run from 1 to 20; valid choices are {tree.valid_choices()}")
    return number


GIVEN_TITLE = "# Given code:"  # how a given-code notebook's first markdown title starts (`# # Given code: ...` in a source)
_GIVEN_NOTEBOOK = re.compile(r"(\d{2}_[a-z0-9_]+)\.([a-z0-9_]+)")


def _given_stems(folder: Path, lesson: str) -> list[str]:
    """The given-code sources of a module folder: every other `<stem>.py`, each titled `# # Given code: ...`."""
    stems = []
    for path in sorted(folder.glob("*.py")):
        if path.stem == lesson:
            continue
        where = f"modules/{folder.name}/{path.name}"
        if not re.fullmatch(r"[a-z0-9_]+", path.stem):
            raise TitoError(f"{where}: a given-code notebook's name is lowercase letters, digits and underscores; rename it")
        title = next((line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("# # ")), "")
        if not title[2:].startswith(GIVEN_TITLE):
            raise TitoError(f"{where} is neither the lesson ({lesson}.py) nor a given-code notebook: a given-code "
                            f"notebook's first title reads `# {GIVEN_TITLE} <what it holds>`; add that title or move "
                            "the file out of the module folder")
        stems.append(path.stem)
    return stems


def _lib_name(settings: Path) -> str | None:
    config = ConfigParser(delimiters=["="], interpolation=None)
    try:
        config.read(settings, encoding="utf-8")
    except (ConfigError, OSError, UnicodeDecodeError):  # an unreadable settings.ini is not ours
        return None
    return config["DEFAULT"].get("lib_name")


def _target(text: str) -> str | None:
    match = _DEFAULT_EXP.search(text)
    return f"{LIB_NAME}.{match[1]}" if match else None


def _title_from_py(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("# # "):
            match = _TITLE.match(line[2:])
            return match[1] if match else None
    return None


def _title_and_target_from_ipynb(path: Path) -> tuple[str | None, str | None]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TitoError(f"{path} is not a readable notebook ({exc}); restore it from a fresh `tito release`") from exc
    title = target = None
    for cell in nb.get("cells", []):
        source = "".join(cell.get("source", ""))
        if title is None and cell.get("cell_type") == "markdown":
            first = source.lstrip().splitlines()[0] if source.strip() else ""
            match = _TITLE.match(first) if first.startswith("# ") else None
            title = match[1] if match else None
        if target is None and cell.get("cell_type") == "code":
            target = _target(source)
    return title, target


# --- is a module implemented? ---------------------------------------------------------------------
# A student edition ships every exercise as a stub: `raise NotImplementedError("Module NN: implement <grade_id>")`.
# Exporting the student's notebook copies whatever stubs are left into the package, so a generated file that
# still raises one is not implemented yet, whatever `import` says. Which generated modules a command, a
# notebook or a test folder needs is read from their `import tinytorch...` statements and followed through
# the generated files' own imports (the import closure), so it stays right as modules are added.
STUB_MESSAGE = re.compile(r"^Module (\d+): implement (\S+)$")
_HEADER_NOTEBOOK = re.compile(r"# AUTOGENERATED! DO NOT EDIT! File to edit: (\S+?)\.?\s*$", re.MULTILINE)
_SLUG = re.compile(r"(\d{2})_([a-z0-9_]+)(?:\.[a-z0-9_]+)?\.ipynb$")


@dataclass
class PackageFile:
    """One generated file of the package, as read from disk (nothing is imported)."""

    name: str               # dotted module name, e.g. tinytorch.core.layers
    rel: str                # tinytorch/core/layers.py
    number: int | None      # the course module whose notebook generates it (from its header)
    stubs: list[str]        # grade_ids whose stub it still raises, in file order
    imports: set[str]       # dotted names of the tinytorch modules it imports (any depth, lazy ones too)


@dataclass
class Blocker:
    """A course module that something needs and that is not implemented (or not exported) yet."""

    number: int
    name: str
    missing: list[str]                 # generated modules needed from it that do not exist yet
    stubs: dict[str, list[str]]        # generated file -> grade_ids still stubbed

    def reason(self) -> str:
        parts = []
        if self.stubs:
            ids = [grade_id for found in self.stubs.values() for grade_id in found]
            shown = ", ".join(ids[:4]) + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")
            verb = "raises" if len(self.stubs) == 1 else "raise"
            parts.append(f"{', '.join(self.stubs)} still {verb} NotImplementedError for {shown}")
        if self.missing:
            parts.append(f"{', '.join(self.missing)} {'is' if len(self.missing) == 1 else 'are'} not exported yet")
        return "; ".join(parts)

    def label(self) -> str:
        return f"{self.number:02d} ({self.name})"


def module_imports(text: str, package: str = "") -> set[str]:
    """Dotted tinytorch module names that Python source `text` imports, anywhere in it (inside functions too).

    `package` is the dotted package of the file (for relative imports). `from tinytorch.core import layers`
    yields both tinytorch.core and tinytorch.core.layers: the caller keeps the names that are modules.
    Source that does not parse imports nothing (its own check reports it)."""
    import ast

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bases = [alias.name for alias in node.names]
            names = []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level > len(parts):
                    continue
                base = ".".join(parts[:len(parts) - node.level + 1])
                bases = [f"{base}.{node.module}" if node.module else base]
            else:
                bases = [node.module or ""]
            names = [alias.name for alias in node.names]
        else:
            continue
        for base in bases:
            if base == LIB_NAME or base.startswith(LIB_NAME + "."):
                found.add(base)
                found.update(f"{base}.{name}" for name in names if name != "*")
    return {name for name in found if not name.startswith(f"{LIB_NAME}.tito")}


def stubs_in(text: str) -> list[str]:
    """grade_ids of the `raise NotImplementedError("Module NN: implement <grade_id>")` statements in `text`."""
    import ast

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        exc = node.exc if isinstance(node, ast.Raise) else None
        if isinstance(exc, ast.Call) and isinstance(exc.func, ast.Name) and exc.func.id == "NotImplementedError" \
                and exc.args and isinstance(exc.args[0], ast.Constant) and isinstance(exc.args[0].value, str):
            match = STUB_MESSAGE.match(exc.args[0].value)
            if match:
                found.append((node.lineno, match[2]))
    return list(dict.fromkeys(grade_id for _, grade_id in sorted(found)))


def package_files(tree: "Tree") -> dict[str, PackageFile]:
    """Every generated file of the tree's package (header `# AUTOGENERATED ...`), by dotted module name."""
    found = {}
    for path in sorted(tree.lib.rglob("*.py")):
        rel_lib = path.relative_to(tree.lib)
        if rel_lib.parts[0] in ("tito", "assets") or "__pycache__" in rel_lib.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        header = _HEADER_NOTEBOOK.search(text[:3000])
        if header is None:
            continue
        slug = _SLUG.search(header[1])
        dotted = ".".join((LIB_NAME, *rel_lib.with_suffix("").parts))
        dotted = dotted.removesuffix(".__init__")
        package = dotted if path.name == "__init__.py" else dotted.rpartition(".")[0]
        found[dotted] = PackageFile(dotted, path.relative_to(tree.root).as_posix(), int(slug[1]) if slug else None,
                                    stubs_in(text), module_imports(text, package))
    return found


def notebook_exports(tree: "Tree") -> dict[str, int]:
    """Dotted module name -> the course module whose notebook exports it (`#| default_exp` / `#| export NAME`),
    read from the notebooks in nbs/ (also for modules whose package files do not exist yet)."""
    exports = {}
    for module in tree.modules:
        for source in notebook_code(module):
            for line in source.splitlines():
                match = re.match(r"^\s*#\|\s*(default_exp|export|exporti|exports)\s+([A-Za-z_][\w.]*)\s*$", line)
                if match:
                    exports.setdefault(f"{LIB_NAME}.{match[2]}", module.number)
                elif line.strip() and not line.lstrip().startswith("#|"):
                    break
        if module.export_target and not module.export_target.endswith(".*"):
            exports.setdefault(module.export_target, module.number)
    return exports


def notebook_code(module: ModuleInfo) -> list[str]:
    """The code cells of a module's notebooks (the lesson, then its given-code notebooks; each from nbs/, else its
    pristine copy), as plain JSON; a notebook that cannot be read adds nothing."""
    code = []
    pairs = [(module.notebook, module.pristine), *((module.given_notebook(s), module.given_pristine(s)) for s in module.given)]
    for paths in pairs:
        for path in paths:
            try:
                cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            code += ["".join(cell.get("source", "")) for cell in cells if isinstance(cell, dict) and cell.get("cell_type") == "code"]
            break
    return code


def module_needs(tree: "Tree", module: ModuleInfo) -> set[str]:
    """The generated modules that module's notebook and its tests import (its own exports excluded)."""
    names = set()
    for source in notebook_code(module):
        names |= module_imports("\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()))
    if module.tests.is_dir():
        for path in sorted(module.tests.rglob("*.py")):
            try:
                names |= module_imports(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                continue
    own = {name for name, number in notebook_exports(tree).items() if number == module.number}
    return names - own


def blockers(tree: "Tree", needed, exclude: tuple[int, ...] = ()) -> list[Blocker]:
    """The course modules that the generated modules `needed` (dotted names), and everything they import,
    come from and that are not implemented yet: a needed file is missing or still raises a student stub."""
    files = package_files(tree)
    exports: dict[str, int] | None = None  # read from the notebooks only when a needed module is not in the package
    by_number: dict[int, Blocker] = {}
    names = {m.number: m.name for m in tree.modules}

    def blocker(number: int) -> Blocker:
        return by_number.setdefault(number, Blocker(number, names.get(number, MODULE_MAP.get(number, ("?",))[0]), [], {}))

    seen: set[str] = set()
    todo = [name for name in needed]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found = files.get(name)
        if found is None:
            if name.rpartition(".")[0] in files or (tree.root / name.replace(".", "/")).is_dir():
                continue  # a name imported from a module (tinytorch.core.layers.Linear) or a package folder
            if exports is None:
                exports = notebook_exports(tree)
            number = exports.get(name)
            if number is not None and number not in exclude:
                rel = f"{name.replace('.', '/')}.py"
                if rel not in blocker(number).missing:
                    blocker(number).missing.append(rel)
            continue  # a package folder (tinytorch.core) or a name imported from a module: nothing to follow
        if found.stubs and found.number is not None and found.number not in exclude:
            blocker(found.number).stubs[found.rel] = found.stubs
        todo.extend(sorted(found.imports - seen))
    return [by_number[n] for n in sorted(by_number)]


def require_implemented(tree: "Tree", needed, what: str) -> None:
    """Raise a one-line TitoError (exit 1) naming the first module to complete when `needed` is not implemented."""
    missing = blockers(tree, needed)
    if not missing:
        return
    first = missing[0]
    others = f"; also not implemented yet: {', '.join(b.label() for b in missing[1:])}" if missing[1:] else ""
    raise TitoError(f"{what} needs module {first.label()}, which is not implemented yet ({first.reason()}): "
                    f"complete it first with `tito module complete {first.number}`{others}")
