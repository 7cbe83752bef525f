"""Running a module's checks: its notebook headless (nbclient + ipykernel) and its pytest folder.

Both run against the package of the tree being worked on (PYTHONPATH = the tree root, or a staging copy
of its package: `tito module test`), never against whatever tinytorch happens to be installed elsewhere.
Results are real counts parsed from what ran. Both run under one BLAS thread policy, the one of
`make test` (one thread unless the user set OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or MKL_NUM_THREADS).
Ctrl-C stops them cleanly: the kernel and pytest run in their own sessions (a terminal's Ctrl-C reaches
only tito), and tito kills them before it says it was interrupted.
"""
from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from .tree import MODULE_MAP


NOTEBOOK_TIMEOUT_S = 600  # per cell; a notebook is meant to finish in well under a minute
PYTEST_TIMEOUT_S = 1800
# The BLAS thread policy of `make test` (its BLAS_THREADS): one thread, unless the user chose otherwise.
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
DEFAULT_BLAS_THREADS = "1"
# The environment variable that tells tests/conftest.py which package copy is under test (`tito module test`).
PACKAGE_UNDER_TEST = "TITO_PACKAGE_UNDER_TEST"


def blas_threads(environ=None) -> tuple[str, str]:
    """(thread count, where it comes from) of the BLAS thread policy for the checks' child processes."""
    environ = os.environ if environ is None else environ
    for name in BLAS_VARS:
        value = environ.get(name, "").strip()
        if value:
            return value, f"from your {name}"
    return DEFAULT_BLAS_THREADS, f"tito's default, as in `make test`; set {BLAS_VARS[0]} to change it"


def tree_env(root: Path, package_root: Path | None = None) -> dict[str, str]:
    """Environment for child processes: this tree's package first (or the staging copy at package_root),
    headless plotting, no pytest leakage, the BLAS thread policy of `make test`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_CORE_"))}
    first = Path(package_root or root)
    env["PYTHONPATH"] = os.pathsep.join([str(first), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["MPLBACKEND"] = "Agg"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    threads, _ = blas_threads()
    for name in BLAS_VARS:
        if not env.get(name, "").strip():
            env[name] = threads
    if package_root is not None:
        env[PACKAGE_UNDER_TEST] = str(Path(package_root).resolve() / "tinytorch")
    else:
        env.pop(PACKAGE_UNDER_TEST, None)
    return env


# --- stopping child processes -------------------------------------------------------------------------
def stop_children() -> int:
    """Kill every process this one started (kernels, pytest, their children); returns how many."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is pinned in requirements.txt
        return 0
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return 0
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(children, timeout=5)
    return len(children)


# --- notebooks ----------------------------------------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_FRAME = re.compile(r"^Cell In\[(\d+)\], line (\d+)(?:, in (.+))?$")
_FILE_FRAME = re.compile(r"^File (.+?):(\d+)(?:, in (.+))?$")


@dataclass
class Frame:
    """One frame of a traceback: a notebook cell (cell index) or a file, its line and function."""

    cell: int | None
    path: str | None
    line: int
    function: str | None = None


@dataclass
class CellError:
    """A code cell that raised: where (its index, the frames) and what."""

    index: int
    ename: str
    evalue: str
    description: str
    frames: list[Frame] = field(default_factory=list)
    grade_id: str | None = None


@dataclass
class NotebookRun:
    path: str
    cells: int
    seconds: float
    error: str | None = None  # the first cell that failed and how
    errors: list[CellError] = field(default_factory=list)  # every code cell that raised (the run goes on, as nbgrader's does)
    ran: int = 0
    executed: object = None  # the executed notebook (nbformat), for the summary by exercise

    @property
    def ok(self) -> bool:
        return self.error is None


def run_notebook(nb_path: Path, root: Path, shown_as: str | None = None, timeout: int = NOTEBOOK_TIMEOUT_S,
                 package_root: Path | None = None) -> NotebookRun:
    """Execute a notebook top to bottom in a fresh kernel, in its own folder, as Jupyter would.

    Every cell runs, also after one raised (as nbgrader grades): each error is recorded, the first one is
    the notebook's failure. A cell timeout or a dead kernel stops the run."""
    import logging

    from nbclient import NotebookClient
    from nbclient.exceptions import CellControlSignal, CellTimeoutError, DeadKernelError

    from .notebooks import read_notebook

    shown_as = shown_as or str(nb_path)
    nb = read_notebook(nb_path, shown_as)
    code_cells = sum(1 for cell in nb.cells if cell.cell_type == "code")
    quiet = logging.getLogger("tinytorch.tito.nbclient")
    quiet.propagate, quiet.disabled = False, True
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            resources={"metadata": {"path": str(nb_path.parent)}}, log=quiet)
    start = time.perf_counter()
    stopped = None
    try:
        client.execute(env=tree_env(root, package_root), cwd=str(nb_path.parent))
    except (CellControlSignal, CellTimeoutError, DeadKernelError) as exc:
        stopped = exc
    except BaseException:  # Ctrl-C (KeyboardInterrupt) and anything unexpected: never leave the kernel running
        _kill_kernel(client)
        raise
    run = NotebookRun(shown_as, code_cells, time.perf_counter() - start)
    run.ran = sum(1 for cell in nb.cells if cell.cell_type == "code" and cell.get("execution_count") is not None)
    run.errors = cell_errors(nb, shown_as)
    run.executed = nb
    if run.errors:
        run.error = run.errors[0].description
    if stopped is not None:
        name = type(stopped).__name__
        detail = str(stopped).strip().splitlines()
        where = ""
        running = next((i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell.get("execution_count") is None), None)
        if running is not None:
            from .notebooks import cell_label

            where = f" while running {cell_label(shown_as, running, nb.cells[running], nb.cells)}"
        message = f"{shown_as}: {name}{where}: {detail[-1] if detail else 'the kernel stopped'}"
        run.error = run.error or message
        if not run.errors or run.error != message:
            run.errors.append(CellError(running if running is not None else -1, name, detail[-1] if detail else "", message))
    return run


def _kill_kernel(client) -> None:
    km = getattr(client, "km", None)
    provisioner = getattr(km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    if process is not None:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the kernel leads its own session
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=5)
        except Exception:  # noqa: BLE001 - best effort: the process may already be reaped
            pass


def cell_errors(nb, shown_as: str) -> list[CellError]:
    """Every code cell of an executed notebook whose output holds an error, described for a student."""
    by_count = {cell.get("execution_count"): index for index, cell in enumerate(nb.cells)
                if cell.cell_type == "code" and cell.get("execution_count") is not None}
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            frames = _frames(output.get("traceback", []), by_count)
            error = CellError(index, output.get("ename", "Error"), output.get("evalue", ""), "", frames,
                              cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
            error.description = describe_cell_error(nb, shown_as, error)
            found.append(error)
            break
    return found


def _frames(traceback: list[str], by_count: dict) -> list[Frame]:
    frames = []
    for chunk in traceback:
        for line in _ANSI.sub("", chunk).splitlines():
            line = line.strip()
            match = _CELL_FRAME.match(line)
            if match:
                frames.append(Frame(by_count.get(int(match[1])), None, int(match[2]), match[3]))
                continue
            match = _FILE_FRAME.match(line)
            if match:
                frames.append(Frame(None, match[1], int(match[2]), match[3]))
    return frames


def statement_at(source: str, line: int) -> str:
    """The source of the statement of `source` that holds line `line` (1-based): the whole of a multi-line
    assert, for example; the line itself when the source does not parse."""
    lines = source.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    python = "\n".join("" if text.lstrip().startswith(("%", "!")) else text for text in lines)
    try:
        tree = ast.parse(python)
    except SyntaxError:
        return lines[line - 1].strip()
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
            if best is None or (node.end_lineno - node.lineno) <= (best.end_lineno - best.lineno):
                best = node
    if best is None:
        return lines[line - 1].strip()
    chunk = lines[best.lineno - 1:best.end_lineno]
    if len(chunk) > 4:
        chunk = chunk[:4] + ["..."]
    indent = min((len(text) - len(text.lstrip()) for text in chunk if text.strip()), default=0)
    return "\n".join(text[indent:] for text in chunk)


def describe_cell_error(nb, shown_as: str, error: CellError) -> str:
    """'<notebook>, <the cell as a student sees it>, line L raised AssertionError: msg' plus the statement,
    and where the error happened when that is outside the cell (a function of another cell, a package file)."""
    from .notebooks import cell_label

    cell = nb.cells[error.index]
    text = f"{cell_label(shown_as, error.index, cell, nb.cells)}"
    own = [frame for frame in error.frames if frame.cell == error.index]
    message = f"{error.ename}: {error.evalue}" if error.evalue else error.ename
    if not own:
        return f"{text} raised {message}"
    line = own[0].line
    statement = statement_at(cell.source, line)
    out = f"{text}, line {line} raised {message}"
    if statement:
        out += "\n" + "\n".join(f"    | {part}" for part in statement.splitlines())
    inner = error.frames[-1]
    if inner is not own[0]:
        if inner.cell is not None:
            other = nb.cells[inner.cell]
            where = f"{cell_label(shown_as, inner.cell, other, nb.cells)}, line {inner.line}"
            code = statement_at(other.source, inner.line)
        else:
            where = f"{_short_path(inner.path)}, line {inner.line}"
            code = _file_line(inner.path, inner.line)
        fn = f" (in {inner.function.split('(')[0]})" if inner.function else ""
        out += f"\n    raised in {where}{fn}" + (f": {code.splitlines()[0].strip()}" if code else "")
    return out


def _short_path(path: str | None) -> str:
    if not path:
        return "?"
    parts = Path(path).parts
    if "tinytorch" in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("tinytorch"):])
    return path


def _file_line(path: str | None, line: int) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()[line - 1]
    except (OSError, IndexError, UnicodeDecodeError, TypeError):
        return ""


# --- pytest -------------------------------------------------------------------------------------------
@dataclass
class TestRun:
    """What pytest reported for one folder, from its JUnit XML (real counts, nothing assumed)."""

    folder: str
    returncode: int
    seconds: float
    passed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (test id, message), failures and errors
    skipped: list[tuple[str, str]] = field(default_factory=list)
    output_tail: str = ""
    tracebacks: dict[str, str] = field(default_factory=dict)     # test id -> pytest's short traceback text

    @property
    def total(self) -> int:
        return self.passed + len(self.failed) + len(self.skipped)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.failed and self.passed > 0


class PytestProcess:
    """pytest on one test folder, started in its own session (a terminal's Ctrl-C does not reach it)."""

    def __init__(self, root: Path, folder: Path, package_root: Path | None = None, timeout: int = PYTEST_TIMEOUT_S):
        self.root, self.folder, self.timeout = root, folder, timeout
        self.shown = folder.relative_to(root).as_posix() if folder.is_relative_to(root) else str(folder)
        self.proc = None
        self.start = time.perf_counter()
        if not folder.is_dir():
            return
        self.tmp = tempfile.TemporaryDirectory(prefix="tito-pytest-")
        self.report = Path(self.tmp.name) / "report.xml"
        self.out = open(Path(self.tmp.name) / "output.txt", "w+", encoding="utf-8")
        # `python -m pytest` puts the current folder (the tree root, with the installed package) first on the
        # import path, ahead of PYTHONPATH; a launcher script in the staging folder puts the staged package first.
        launch = ["-m", "pytest"]
        if package_root is not None:
            launcher = Path(package_root) / "_tito_pytest.py"
            launcher.write_text("import sys\nimport pytest\n\nsys.exit(pytest.main())\n", encoding="utf-8")
            launch = [str(launcher)]
        cmd = [sys.executable, *launch, self.shown, "-q", "--tb=short", "-p", "no:cacheprovider", "-p", "no:xdist",
               f"--junitxml={self.report}", "-o", "junit_family=xunit2"]
        self.proc = subprocess.Popen(cmd, cwd=root, env=tree_env(root, package_root), stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
        self._close()

    def _close(self) -> None:
        if self.proc is not None:
            self.out.close()
            self.tmp.cleanup()

    def result(self) -> TestRun:
        shown, root = self.shown, self.root
        if self.proc is None:
            return TestRun(shown, 4, 0.0, failed=[(shown, f"no test folder {shown}; every module needs tests in tests/NN_name/")])
        try:
            try:
                self.proc.wait(timeout=max(1.0, self.timeout - (time.perf_counter() - self.start)))
            except subprocess.TimeoutExpired:
                self.kill()
                return TestRun(shown, 124, self.timeout, failed=[(shown, f"pytest did not finish within {self.timeout} s")])
            run = TestRun(shown, self.proc.returncode, time.perf_counter() - self.start)
            self.out.seek(0)
            run.output_tail = "\n".join(self.out.read().strip().splitlines()[-30:])
            if self.report.exists():
                _read_junit(self.report, run, root)
            if self.proc.returncode == 5:
                run.failed.append((shown, "pytest collected no tests; a module needs real tests to complete"))
            elif self.proc.returncode != 0 and not run.failed:
                run.failed.append((shown, f"pytest exited with status {self.proc.returncode}:\n{run.output_tail}"))
            return run
        except BaseException:
            self.kill()
            raise
        finally:
            self._close()


def run_pytest(root: Path, folder: Path, timeout: int = PYTEST_TIMEOUT_S, package_root: Path | None = None) -> TestRun:
    """Run pytest on one test folder in a subprocess, against the package of the tree at `root`."""
    return PytestProcess(root, folder, package_root, timeout).result()


def _node_id(classname: str, name: str, root: Path) -> str:
    """pytest's node id (tests/01_tensor/test_x.py::TestY::test_z) from JUnit's dotted classname."""
    parts = classname.split(".") if classname else []
    whole = Path(*(classname.split(".") if classname else []), *name.split(".")).with_suffix(".py")
    if (root / whole).is_file():  # a collection error names the test file itself, dotted
        return whole.as_posix()
    for cut in range(len(parts), 0, -1):
        candidate = Path(*parts[:cut]).with_suffix(".py")
        if (root / candidate).is_file():
            return "::".join([candidate.as_posix(), *parts[cut:], name])
    return "::".join(filter(None, [classname, name]))


def _missing_module_hint(message: str) -> str:
    """' (complete module NN name first)' when an import failed on a module that is not exported yet."""
    match = re.search(r"No module named '(tinytorch(?:\.\w+)*)'", message)
    if not match:
        return ""
    missing = match[1]
    for number, (name, target) in MODULE_MAP.items():
        if target.rstrip("*").rstrip(".") == missing or target == missing or target.startswith(missing + "."):
            return f" (module {number:02d} {name} exports it: complete that module first)"
    return ""


def _read_junit(report: Path, run: TestRun, root: Path) -> None:
    for case in ET.parse(report).getroot().iter("testcase"):
        name = _node_id(case.get("classname", ""), case.get("name", ""), root)
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skipped = case.find("skipped")
        if problem is not None:
            message = (problem.get("message") or "").strip()
            text = problem.text or ""
            if message == "collection failure" or not message:  # the reason is the last error line of the traceback
                errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
                if message == "collection failure":
                    message = f"could not import the tests: {errors[-1] if errors else 'see pytest output'}"
                    message += _missing_module_hint(message)
                else:
                    message = errors[-1] if errors else (text.strip().splitlines() or [""])[-1]
            run.failed.append((name, message))
            run.tracebacks[name] = text
        elif skipped is not None:
            run.skipped.append((name, (skipped.get("message") or "").strip()))
        else:
            run.passed += 1
