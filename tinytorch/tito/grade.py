"""`tito grade`: nbgrader, offline, for the graded cells of the module notebooks.

    tito grade generate  --course DIR [--modules 01,14-17]   an nbgrader course folder, one assignment per module
    tito grade autograde --course DIR --submissions FOLDER   run collected notebooks, scores into the gradebook
    tito grade export    --course DIR --out FILE.csv         grades per student x assignment x graded cell

The course folder is nbgrader's own layout (nbgrader_config.py, source/, release/, submitted/,
autograded/, a sqlite gradebook.db), so `nbgrader` and its formgrader can work on it too. Everything
runs in this process through nbgrader's converters (GenerateAssignment, Autograde): no Jupyter server,
no exchange, no network. Notebooks execute in the project's python3 kernel with this tree's package
on PYTHONPATH. The gradebook holds only real scores: a submission nbgrader could not grade is
reported and removed from it, never recorded as a zero.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .fsutil import atomic_write_bytes, atomic_write_text, unique_path
from .runner import tree_env
from .tree import LIB_NAME, ModuleInfo, TitoError, Tree, UsageError

COURSE_ID = "tinytorch"
ASSIGNMENT_PREFIX = "module"
DEFAULT_CELL_TIMEOUT_S = 120
CONFIG_NAME = "nbgrader_config.py"
GRADEBOOK_NAME = "gradebook.db"
REPLACED_DIR = "replaced"  # earlier collected work that --replace superseded
BACKUP_DIR = "backups"  # source notebooks that `generate --force` replaced
STAMP = "%Y%m%dT%H%M%SZ"  # names of backup folders (UTC)
CSV_COLUMNS = ("student_id", "assignment", "level", "notebook", "grade_id", "score", "max_score", "needs_manual_grade")
_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")  # no glob or regex characters: nbgrader globs on it
_SKIPPED = {".ipynb_checkpoints", "__pycache__"}
# Kernel flags while autograding: no history file, and no "running over TCP without encryption" warning.
KERNEL_ARGUMENTS = ("--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR")
CONFIG_TEXT = f'''\
# nbgrader configuration of the TinyTorch course (written by `tito grade generate`; edit freely).
# `tito grade` reads it; so do `nbgrader` commands run in this folder (they need the TinyTorch tree
# on PYTHONPATH, which `tito grade autograde` sets for you).
c = get_config()  # noqa: F821 (nbgrader defines get_config)
c.CourseDirectory.course_id = "{COURSE_ID}"
# Seconds each notebook cell may run while autograding (`tito grade autograde --timeout S` overrides it).
c.Execute.timeout = {DEFAULT_CELL_TIMEOUT_S}
c.Execute.extra_arguments = {list(KERNEL_ARGUMENTS)!r}
'''


def build_then_rename(dest: Path, fill) -> None:
    """fill(staging) in a new temporary folder beside `dest`, then rename it to `dest` (absent or empty):
    a folder appears whole or not at all."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        fill(staging)
        if dest.exists():
            dest.rmdir()
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def assignment_name(module: ModuleInfo) -> str:
    """The nbgrader assignment of a module: "module04" for module 04."""
    return f"{ASSIGNMENT_PREFIX}{module.number:02d}"


# --- the course folder --------------------------------------------------------------------------
@dataclass(frozen=True)
class Course:
    """An nbgrader course folder made by `tito grade generate`, and its assignments' notebooks.
    (Dataclasses here keep their generated __repr__: it shows every field.)"""

    root: Path
    assignments: dict  # assignment name -> tuple of notebook names (without .ipynb)
    course_id: str = COURSE_ID

    @classmethod
    def open(cls, path) -> "Course":
        """The course at `path`; a UsageError (exit 2: the --course named on the command line is missing or
        not a course) that says what is missing otherwise."""
        root = Path(path).resolve()
        hint = f"make one with `tito grade generate --course {path}`"
        if not root.is_dir():
            what = "it is a file, not a folder" if root.exists() else "it does not exist"
            raise UsageError(f"no course folder at {root}: {what}; {hint}")
        for needed in (GRADEBOOK_NAME, "source"):
            if not (root / needed).exists():
                raise UsageError(f"{root} is not an nbgrader course folder: {root / needed} is missing; {hint}")
        assignments = {}
        for folder in sorted(p for p in (root / "source").iterdir() if p.is_dir() and not p.name.startswith(".")):
            notebooks = tuple(sorted(nb.stem for nb in folder.glob("*.ipynb")))
            if notebooks:
                assignments[folder.name] = notebooks
        if not assignments:
            raise UsageError(f"{root / 'source'} holds no assignment notebooks; {hint}")
        return cls(root, assignments, nbgrader_config(root).CourseDirectory.course_id)

    def gradebook(self):
        """nbgrader's Gradebook on DIR/gradebook.db (use it in a `with` block)."""
        from nbgrader.api import Gradebook

        return Gradebook(f"sqlite:///{self.root / GRADEBOOK_NAME}", self.course_id)

    def submitted(self, student: str, assignment: str) -> Path:
        return self.root / "submitted" / student / assignment

    def autograded(self, student: str, assignment: str) -> Path:
        return self.root / "autograded" / student / assignment

    def source_notebook(self, assignment: str, notebook: str) -> Path:
        return self.root / "source" / assignment / f"{notebook}.ipynb"


# --- running nbgrader ---------------------------------------------------------------------------
@contextlib.contextmanager
def nbgrader_session(root: Path):
    """os.environ for nbgrader and the kernels it starts, restored afterwards.

    The kernel imports this tree's package first (tree_env), whatever tinytorch is installed elsewhere.
    """
    from sqlalchemy.exc import SAWarning

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(tree_env(root))
    try:
        with warnings.catch_warnings():
            # nbgrader 0.9's gradebook trips SQLAlchemy 2's autoflush notices ("... not in session, add
            # operation ... will not proceed"); the objects are added right after, the rows are correct.
            warnings.filterwarnings("ignore", category=SAWarning)
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def nbgrader_config(course_root: Path, timeout: int | None = None):
    """traitlets Config: tito's defaults, then DIR/nbgrader_config.py, then the course root and --timeout."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    config.CourseDirectory.course_id = COURSE_ID
    config.Execute.timeout = DEFAULT_CELL_TIMEOUT_S
    config.Execute.extra_arguments = list(KERNEL_ARGUMENTS)
    if (course_root / CONFIG_NAME).is_file():
        try:
            config.merge(PyFileConfigLoader(CONFIG_NAME, path=str(course_root)).load_config())
        except Exception as exc:  # the file is Python: any error in it is the instructor's to fix
            raise TitoError(f"{course_root / CONFIG_NAME} could not be read: {type(exc).__name__}: {exc}; fix it or delete it "
                            "(tito's defaults then apply)") from exc
    config.CourseDirectory.root = str(course_root)
    if timeout is not None:
        config.Execute.timeout = timeout
    return config


def _run_converter(converter, config, assignment: str, student: str | None = None, **traits) -> tuple[bool, str]:
    """Run one nbgrader converter; (success, reason for a failure)."""
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    if student is not None:
        coursedir.student_id = student
    app = converter(coursedir=coursedir, config=config)
    for name, value in traits.items():
        setattr(app, name, value)
    result = capture_log(app)  # catches everything, Ctrl-C included
    reason = "" if result["success"] else failure_reason(result.get("log", ""), result.get("error", ""))
    if reason == "KeyboardInterrupt":  # Ctrl-C while nbgrader ran: stop, as tito does everywhere
        raise KeyboardInterrupt
    return result["success"], reason


def failure_reason(log: str, error: str) -> str:
    """The informative line of an nbgrader failure: the last line of the first traceback it logged
    (nbgrader logs the real error, then raises a generic one), else of the exception it raised."""
    for block in re.split(r"^\[\w+\] ", log, flags=re.MULTILINE):
        if block.startswith("Traceback"):
            return block.strip().splitlines()[-1].strip()
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "nbgrader failed without a message"


def _named_clear_solutions(module: ModuleInfo):
    """nbgrader's ClearSolutions with the stub `tito release` uses (it names the task)."""
    from nbgrader.preprocessors import ClearSolutions

    from .release import stub_for

    class NamedClearSolutions(ClearSolutions):
        def preprocess_cell(self, cell, resources, cell_index):
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {cell_index + 1}")
            self.code_stub = {"python": stub_for(module, grade_id)}
            return super().preprocess_cell(cell, resources, cell_index)

    return NamedClearSolutions


# --- generate -----------------------------------------------------------------------------------
def cmd_grade_generate(args, tree: Tree, say) -> int:
    """`tito grade generate --course DIR [--modules SPEC] [--force]`."""
    if tree.kind != "instructor":
        raise TitoError("`tito grade generate` needs the instructor tree (modules/ holds the solutions and tests); "
                        "this is a student edition")
    modules = tree.select([args.modules]) if args.modules else list(tree.modules)
    if not modules:
        raise UsageError(f"no module in {args.modules!r}: valid choices are {tree.valid_choices()}")
    course = Path(args.course).resolve()
    if course.exists() and not course.is_dir():
        raise UsageError(f"--course {course} is a file, not a folder; choose a new folder")
    existing = course.is_dir() and any(course.iterdir())
    if existing and not args.force:
        raise UsageError(f"--course {course} already exists and is not empty; nothing was changed. Choose a new folder, "
                         "or pass --force to add or update these modules' assignments in it (nothing is deleted; "
                         "replaced source notebooks are kept under backups/)")
    from .notebooks import notebook_bytes, source_to_notebook, validate  # after the checks: nbformat is slow to import

    notebooks = {}
    for module in modules:
        nb = source_to_notebook(module.source)
        validate(nb, module.rel(module.source), module)
        notebooks[assignment_name(module)] = (module, notebook_bytes(nb), own_imports(nb))
    if existing:
        _generate_into(tree, course, notebooks, say)
    else:
        build_then_rename(course, lambda staging: _generate_into(tree, staging, notebooks, say))
    _report_generated(tree, Course.open(course), notebooks, say)
    return 0


def _generate_into(tree: Tree, root: Path, notebooks: dict, say) -> None:
    """Write source notebooks and the config into `root`, then run nbgrader's GenerateAssignment."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.preprocessors import ClearSolutions

    if not (root / CONFIG_NAME).exists():
        atomic_write_text(root / CONFIG_NAME, CONFIG_TEXT)
    backups = None  # one folder per run, made when a source notebook is about to change
    for assignment, (module, data, _) in notebooks.items():
        path = root / "source" / assignment / f"{module.slug}.ipynb"
        if path.exists() and path.read_bytes() != data:
            backups = backups or unique_path(root / BACKUP_DIR, datetime.now(timezone.utc).strftime(STAMP), "")
            backup = backups / "source" / assignment / path.name
            backup.parent.mkdir(parents=True)
            shutil.copy2(path, backup)
            say(f"kept the previous {path.relative_to(root)} as {backup.relative_to(root)}")
        if not path.exists() or path.read_bytes() != data:
            atomic_write_bytes(path, data)
    config = nbgrader_config(root)
    with nbgrader_session(tree.root):
        if not (root / GRADEBOOK_NAME).exists():
            create_gradebook(root / GRADEBOOK_NAME)
        for assignment, (module, _, _) in notebooks.items():
            named = _named_clear_solutions(module)
            steps = [named if step is ClearSolutions else step for step in GenerateAssignment.preprocessors.default()]
            ok, reason = _run_converter(GenerateAssignment, config, assignment, force=True, create_assignment=True,
                                        preprocessors=steps)
            if not ok:
                raise TitoError(f"nbgrader could not generate {assignment} from {module.rel(module.source)}: {reason}")


def own_imports(nb) -> list[str]:
    """The modules a notebook's cells import that the notebook itself exports (nbdev directives)."""
    from .notebooks import EXPORT_DIRECTIVES, directives

    targets, imported = set(), set()
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        found = directives(cell.source)
        default = next((args[0] for name, args, _ in found if name == "default_exp"), None)
        targets |= {f"{LIB_NAME}.{args[0]}" for name, args, _ in found if name in EXPORT_DIRECTIVES and args}
        targets |= {f"{LIB_NAME}.{default}"} if default else set()
        imported |= set(re.findall(rf"^\s*(?:from|import)\s+({LIB_NAME}(?:\.\w+)+)", cell.source, flags=re.MULTILINE))
    return sorted(imported & targets)


def create_gradebook(path: Path) -> None:
    """An empty nbgrader gradebook: nbgrader's tables, stamped with its alembic head revision.

    What nbgrader's Gradebook does on a new file, except that it asks an `alembic heads` subprocess
    for the revision (3 s here, and it needs `alembic` on PATH); alembic's ScriptDirectory answers
    the same in-process.
    """
    import nbgrader
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.api import Base
    from sqlalchemy import create_engine, text

    config = Config()
    config.set_main_option("script_location", str(Path(nbgrader.__file__).parent / "alembic"))
    heads = ScriptDirectory.from_config(config).get_heads()
    if len(heads) != 1:
        raise TitoError(f"nbgrader's database migrations have {len(heads)} head revisions ({heads}), expected one; "
                        "reinstall the pinned nbgrader (pip install -r requirements.txt)")
    engine = create_engine(f"sqlite:///{path}", future=True)
    try:
        Base.metadata.create_all(bind=engine)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);"))
            connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head);"), {"head": heads[0]})
    finally:
        engine.dispose()


def _report_generated(tree: Tree, course: Course, notebooks: dict, say) -> None:
    say(f"nbgrader course folder: {course.root} (course id {course.course_id})")
    with nbgrader_session(tree.root), course.gradebook() as gb:
        for assignment, (module, _, imports) in notebooks.items():
            record = gb.find_assignment(assignment)
            cells = sum(len(nb.grade_cells) for nb in record.notebooks)
            say(f"  {assignment}: {module.slug}.ipynb, {cells} graded cell(s), {record.max_score:g} point(s) -> "
                f"release/{assignment}/{module.slug}.ipynb")
            if imports:
                say(f"    warning: its cells import {', '.join(imports)}, which this module exports; autograding runs "
                    "with this tree's solved package on the path, so tests that reach those names can pass on the "
                    "solution rather than the student's work")
        total = len(gb.assignments)
    example = next(iter(notebooks.items()))
    say(f"gradebook: {course.root / GRADEBOOK_NAME} ({total} assignment(s))")
    say(f"next: collect work as FOLDER/<student_id>/{example[0]}/{example[1][0].slug}.ipynb, then "
        f"`tito grade autograde --course {course.root} --submissions FOLDER`")


# --- autograde ----------------------------------------------------------------------------------
@dataclass
class Submission:
    """One student's collected folder for one assignment, or the layout problem that stops it."""

    student: str
    assignment: str
    folder: Path
    problem: str | None = None
    kind: str = "ok"  # ok | layout (wrong folder structure) | missing (an expected notebook is not there)


@dataclass
class Outcome:
    """What autograding did with one submission: status, points from the gradebook, and why."""

    student: str
    assignment: str
    status: str  # graded | unchanged | missing | layout | conflict | failed
    score: float | None = None
    max_score: float | None = None
    detail: str = ""
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("graded", "unchanged")


def scan_submissions(folder: Path, course: Course) -> list[Submission]:
    """FOLDER/<student_id>/<assignment>/<notebook>.ipynb entries; layout problems become entries too."""
    folder = Path(folder).resolve()
    example = _example_path(folder, course)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"--submissions {folder} {what}; collected work goes in {example}")
    found: list[Submission] = []
    for student_dir in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        student = student_dir.name
        if not student_dir.is_dir():
            found.append(_bad(student, "", student_dir, f"{student_dir} is a file; expected {example}"))
        elif not _STUDENT_ID.match(student):
            found.append(_bad(student, "", student_dir, f"student id {student!r} must be letters, digits and . _ @ - "
                              "(nbgrader matches ids as file patterns); rename the folder"))
        else:
            found.extend(_scan_student(student_dir, course))
    if not found:
        raise TitoError(f"--submissions {folder} holds no student folders; collected work goes in {example}")
    return found


def _bad(student: str, assignment: str, folder: Path, problem: str, kind: str = "layout") -> Submission:
    return Submission(student, assignment, folder, problem, kind)


def _scan_student(student_dir: Path, course: Course) -> list[Submission]:
    student, known = student_dir.name, ", ".join(course.assignments)
    entries = sorted(p for p in student_dir.iterdir() if not p.name.startswith("."))
    assignments = [p for p in entries if p.is_dir()]
    if not assignments:
        return [_bad(student, "", student_dir, f"{student_dir} has no assignment folder; expected "
                     f"{_example_path(student_dir.parent, course, student)} (assignments: {known})")]
    found = []
    for folder in assignments:
        expected = course.assignments.get(folder.name)
        if expected is None:
            found.append(_bad(student, folder.name, folder, f"{folder}: unknown assignment {folder.name!r}; "
                              f"this course has {known}"))
            continue
        missing = [folder / f"{name}.ipynb" for name in expected if not (folder / f"{name}.ipynb").is_file()]
        if missing:
            present = ", ".join(p.name for p in sorted(folder.glob("*.ipynb"))) or "no notebook"
            found.append(_bad(student, folder.name, folder, f"expected {missing[0]} (found {present})", "missing"))
        else:
            found.append(Submission(student, folder.name, folder))
    return found


def _example_path(folder: Path, course: Course, student: str = "<student_id>") -> str:
    assignment, notebooks = next(iter(course.assignments.items()))
    return str(Path(folder) / student / assignment / f"{notebooks[0]}.ipynb")


def folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` by relative path (checkpoints and caches left out)."""
    digest = {}
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not _SKIPPED & set(rel.parts):
            digest[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def sync_submission(course: Course, sub: Submission, replace: bool) -> tuple[str, Path | None]:
    """Copy collected work into DIR/submitted/; ("new" | "unchanged" | "conflict" | "replaced", where the old copy went)."""
    dest = course.submitted(sub.student, sub.assignment)
    moved = None
    if dest.exists():
        if folder_digest(dest) == folder_digest(sub.folder):
            return "unchanged", None
        if not replace:
            return "conflict", None
        moved = unique_path(course.root / REPLACED_DIR / sub.student / sub.assignment,
                            datetime.now(timezone.utc).strftime(STAMP), "")
        moved.parent.mkdir(parents=True, exist_ok=True)
        os.rename(dest, moved)
    build_then_rename(dest, lambda staging: shutil.copytree(sub.folder, staging, dirs_exist_ok=True,
                                                            ignore=shutil.ignore_patterns(*_SKIPPED)))
    return ("replaced" if moved else "new"), moved


def _graded_earlier(course: Course, sub: Submission, gb) -> bool:
    """Whether the gradebook holds this submission, graded after its assignment's notebooks last changed."""
    from nbgrader.api import MissingEntry

    for notebook in course.assignments[sub.assignment]:
        graded = course.autograded(sub.student, sub.assignment) / f"{notebook}.ipynb"
        if not graded.is_file() or graded.stat().st_mtime < course.source_notebook(sub.assignment, notebook).stat().st_mtime:
            return False
    try:
        gb.find_submission(sub.assignment, sub.student)
    except MissingEntry:
        return False
    return True


def cmd_grade_autograde(args, tree: Tree, say) -> int:
    """`tito grade autograde --course DIR --submissions FOLDER [--timeout S] [--force] [--replace]`."""
    if args.timeout is not None and args.timeout < 1:
        raise UsageError(f"--timeout {args.timeout}: give the seconds each cell may run, a whole number >= 1")
    collected = Path(args.submissions).resolve()
    if not collected.is_dir():   # checked first: it needs no course (scan_submissions checks it again)
        what = "is a file, not a folder" if collected.exists() else "does not exist"
        raise UsageError(f"--submissions {collected} {what}; collected work goes in "
                         f"{collected / '<student_id>' / '<assignment>' / '<notebook>.ipynb'}")
    course = Course.open(args.course)
    submissions = scan_submissions(Path(args.submissions), course)
    config = nbgrader_config(course.root, args.timeout)
    say(f"autograding {len(submissions)} submission(s) from {Path(args.submissions).resolve()} into {course.root} "
        f"(cells time out after {config.Execute.timeout} s)")
    outcomes, in_session = [], False
    with contextlib.ExitStack() as stack:
        for sub in submissions:
            if sub.problem:
                outcome = Outcome(sub.student, sub.assignment, sub.kind, detail=sub.problem)
            else:
                if not in_session:  # nbgrader takes ~3 s to import: only when there is work for it
                    stack.enter_context(nbgrader_session(tree.root))
                    in_session = True
                outcome = _autograde(course, config, sub, args)
            outcomes.append(outcome)
            say(describe(outcome))
    counts = Counter(o.status for o in outcomes)
    problems = [o for o in outcomes if not o.ok]
    say(f"done: {', '.join(f'{n} {status}' for status, n in counts.items())}; gradebook {course.root / GRADEBOOK_NAME}")
    if problems:
        say(f"{len(problems)} submission(s) not graded; fix them and run the same command again (graded ones are kept)")
    return 1 if problems else 0


def _autograde(course: Course, config, sub: Submission, args) -> Outcome:
    from nbgrader.converters import Autograde

    with course.gradebook() as gb:
        earlier = _graded_earlier(course, sub, gb)
    state, moved = sync_submission(course, sub, replace=args.replace or not earlier)
    if state == "conflict":
        return Outcome(sub.student, sub.assignment, "conflict", detail=(
            f"{sub.folder} differs from the copy graded before ({course.submitted(sub.student, sub.assignment)}); "
            "that grade is kept. Pass --replace to grade the new work (the old copy is moved to "
            f"{REPLACED_DIR}/)"))
    if state == "unchanged" and earlier and not args.force:
        return _scored(course, sub, "unchanged", "graded before; --force grades it again")
    start = time.perf_counter()
    ok, reason = _run_converter(Autograde, config, sub.assignment, sub.student, force=True, create_student=True)
    seconds = time.perf_counter() - start
    if not ok:
        _forget(course, sub)
        return Outcome(sub.student, sub.assignment, "failed", detail=f"nbgrader could not autograde it: {reason}",
                       seconds=seconds)
    note = f"the earlier copy is kept as {moved.relative_to(course.root)}" if moved else ""
    outcome = _scored(course, sub, "graded", note)
    outcome.seconds = seconds
    return outcome


def _forget(course: Course, sub: Submission) -> None:
    """Remove a submission nbgrader could not grade from the gradebook: no made-up zero stays behind."""
    from nbgrader.api import MissingEntry

    with course.gradebook() as gb:
        try:
            gb.remove_submission(sub.assignment, sub.student)
        except MissingEntry:
            pass


def _scored(course: Course, sub: Submission, status: str, note: str) -> Outcome:
    """An Outcome with the points the gradebook holds and the cells that lost points (with their error)."""
    lost, timed_out = [], []
    with course.gradebook() as gb:
        record = gb.find_submission(sub.assignment, sub.student)
        score, max_score = record.score, record.max_score
        for nb in record.notebooks:
            errors, late = cell_errors(course.autograded(sub.student, sub.assignment) / f"{nb.name}.ipynb")
            timed_out += late
            for grade in nb.grades:
                if grade.score < grade.max_score:
                    why = errors.get(grade.name, "needs manual grading" if grade.needs_manual_grade else "")
                    lost.append(f"{grade.name} {grade.score:g}/{grade.max_score:g}" + (f" ({why})" if why else ""))
    parts = [("lost points: " + ", ".join(lost)) if lost else "",
             ("timed out: " + ", ".join(timed_out)) if timed_out else "", note]
    return Outcome(sub.student, sub.assignment, status, score, max_score, "; ".join(filter(None, parts)))


def cell_errors(nb_path: Path) -> tuple[dict[str, str], list[str]]:
    """In an executed notebook: grade_id -> "Error: message" (the first error of each nbgrader cell), and
    the cells that ran out of time (nbgrader marks them CellTimeoutError), by grade_id or position."""
    errors, timed_out = {}, []
    for index, cell in enumerate(_notebook_cells(nb_path)):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        failures = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if grade_id and failures:
            message = (failures[0].get("evalue") or "").strip().splitlines()
            text = f"{failures[0].get('ename')}: {message[0]}" if message else str(failures[0].get("ename"))
            errors[grade_id] = text if len(text) <= 100 else text[:97] + "..."
        if any(o.get("ename") == "CellTimeoutError" for o in failures):
            timed_out.append(grade_id or f"cell {index + 1}")
    return errors, timed_out


def _notebook_cells(nb_path: Path) -> list[dict]:
    """The cells of a notebook file as plain dicts; [] when it cannot be read (callers only decorate output)."""
    try:
        return json.loads(nb_path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return []


def describe(outcome: Outcome) -> str:
    """One line per submission for the terminal."""
    label = f"{outcome.student}/{outcome.assignment}" if outcome.assignment else outcome.student
    head = f"  {label}: {outcome.status}"
    if outcome.score is not None:
        head += f", {outcome.score:g} of {outcome.max_score:g} points"
    if outcome.seconds is not None:
        head += f" ({outcome.seconds:.1f} s)"
    return head + (f": {outcome.detail}" if outcome.detail else "")


# --- export -------------------------------------------------------------------------------------
def grade_rows(course: Course) -> list[dict]:
    """Per graded cell and per student x assignment total, from the gradebook, in a fixed order.

    Cells follow their order in the source notebook; only submissions the gradebook holds appear.
    """
    rows = []
    with course.gradebook() as gb:
        for assignment in sorted(gb.assignments, key=lambda a: a.name):
            for record in sorted(assignment.submissions, key=lambda s: s.student.id):
                student = record.student.id
                for nb in sorted(record.notebooks, key=lambda n: n.name):
                    order = _cell_order(course.source_notebook(assignment.name, nb.name))
                    for grade in sorted(nb.grades, key=lambda g: (order.get(g.name, len(order)), g.name)):
                        rows.append(_row(student, assignment.name, "cell", nb.name, grade.name, grade.score,
                                         grade.max_score, grade.needs_manual_grade))
                rows.append(_row(student, assignment.name, "assignment", "", "", record.score, record.max_score,
                                 record.needs_manual_grade))
    return rows


def _row(student, assignment, level, notebook, grade_id, score, max_score, manual) -> dict:
    return dict(zip(CSV_COLUMNS, (student, assignment, level, notebook, grade_id, f"{score:g}", f"{max_score:g}",
                                  "true" if manual else "false")))


def _cell_order(nb_path: Path) -> dict[str, int]:
    ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in _notebook_cells(nb_path)]
    return {grade_id: index for index, grade_id in enumerate(ids) if grade_id}


def rows_to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def cmd_grade_export(args, tree: Tree, say) -> int:
    """`tito grade export --course DIR --out FILE.csv [--overwrite]`."""
    out = Path(args.out).resolve()
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name, e.g. {out / 'grades.csv'}")
    if out.exists() and not args.overwrite:
        raise UsageError(f"--out {out} already exists; nothing was written. Pass --overwrite to replace it, or choose a new name")
    course = Course.open(args.course)
    with nbgrader_session(tree.root):
        rows = grade_rows(course)
    atomic_write_text(out, rows_to_csv(rows))
    totals = [r for r in rows if r["level"] == "assignment"]
    students = len({r["student_id"] for r in totals})
    say(f"wrote {out}: {len(rows) - len(totals)} graded-cell row(s) and {len(totals)} assignment total(s) "
        f"for {students} student(s)")
    if not totals:
        say("note: the gradebook holds no graded submission yet; run `tito grade autograde` first")
    return 0
