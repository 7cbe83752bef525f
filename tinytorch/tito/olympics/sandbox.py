"""Launching a grading worker with limits: its own process group, a private temporary folder holding a
copy of the submission (cwd, HOME and TMPDIR), a sanitized environment, RLIMIT_AS / RLIMIT_FSIZE, a
wall-clock deadline on every exchange, and no network where the OS allows it (a network namespace via
`unshare`; otherwise sockets are blocked inside the worker, a weaker method that is recorded as such).

What this cannot see or stop (recorded in results.json under "isolation"): a worker runs as the grader's
user, so without OS isolation (a container, an unprivileged user) it can read and write whatever that user
can; the grader detects writes only in the folders it watches (snapshot: names, sizes, mtimes), and a
process that leaves its process group (setsid) escapes the group kill and the pause (SIGSTOP) that keeps
a submission from running while the baseline is measured.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from . import protocol

WORKER_MODULE = "tinytorch.tito.olympics.worker"
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS")
NAMESPACE, SOCKETS_BLOCKED = "namespace", "socket blocked in-process (weaker)"
STDERR_TAIL_BYTES = 4000
EXIT_GRACE_S = 2.0


class SandboxError(RuntimeError):
    """The grader itself could not set up or run a worker (not the submission's fault)."""


@dataclass(frozen=True)
class Limits:
    """What one submission may use while it is graded (every number is checked in __post_init__)."""

    timeout_s: float = 60.0                 # wall clock for the submission's worker, from launch to the last reply
    memory_bytes: int = 2 * 2**30           # RLIMIT_AS (address space) of each worker
    file_bytes: int = 256 * 2**20           # RLIMIT_FSIZE: the largest file a worker may write
    batch_size: int = 64                    # test inputs per predict request
    latency_rounds: int = 30                # A/B rounds (one submission request, one baseline request each)
    min_rounds: int = 10                    # rounds measured even when latency_budget_s runs out
    min_request_ms: float = 20.0            # calls per request are calibrated so a request lasts about this
    latency_budget_s: float = 15.0          # stop adding rounds after this long (once min_rounds are done)
    max_state_bytes: int = 512 * 2**20      # largest state_dict file the parent agrees to read
    latency_sessions: int = 3               # fresh worker pairs timed one after the other (process-level replicates)

    def __post_init__(self):
        for name in ("timeout_s", "min_request_ms", "latency_budget_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"Limits.{name} must be a positive number of seconds/ms, got {value!r}")
        for name in ("memory_bytes", "file_bytes", "batch_size", "latency_rounds", "min_rounds", "max_state_bytes",
                     "latency_sessions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be an int >= 1, got {value!r}")
        if self.memory_bytes < 512 * 2**20:
            raise ValueError(f"Limits.memory_bytes={self.memory_bytes} is below 512 MiB: a worker needs about 330 MB "
                             f"of address space just to start Python, numpy and tinytorch; raise it")
        if self.min_rounds > self.latency_rounds:
            raise ValueError(f"Limits.min_rounds ({self.min_rounds}) must not exceed latency_rounds ({self.latency_rounds})")

    def to_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class NetworkIsolation:
    """How a worker is kept off the network: method (NAMESPACE or SOCKETS_BLOCKED) and the command prefix."""

    method: str
    prefix: tuple
    detail: str

    def to_dict(self):
        return {"method": self.method, "command": " ".join(self.prefix) or None, "detail": self.detail}


def _probe(prefix):
    """True when `prefix python -c ...` runs and sees no network interface but loopback."""
    check = "import socket, sys; sys.exit(0 if [n for _, n in socket.if_nameindex()] == ['lo'] else 3)"
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", check], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@lru_cache(maxsize=1)
def network_method():
    """The NetworkIsolation this machine allows, probed once per process: `unshare -rn` (a new user namespace
    too, so even a grader running as root gives the worker no capability to rejoin the host's network), else
    `unshare -n` (root only), else sockets blocked inside the worker."""
    if shutil.which("unshare"):
        tries = (("unshare", "-rn"), ("unshare", "-n")) if os.geteuid() == 0 else (("unshare", "-rn"),)
        for prefix in tries:
            if _probe(prefix):
                spaces = "user and network namespaces" if prefix[1] == "-rn" else "network namespace"
                return NetworkIsolation(NAMESPACE, prefix, f"`{' '.join(prefix)}`: new {spaces}; the worker sees "
                                                           f"only a loopback interface")
    return NetworkIsolation(SOCKETS_BLOCKED, (), "no usable `unshare` here: socket creation and name lookup are "
                                                 "replaced inside the worker before the submission is imported")


def package_root():
    """The folder that holds the tinytorch package the grader runs (put on the worker's PYTHONPATH)."""
    import tinytorch

    return str(Path(tinytorch.__file__).resolve().parent.parent)


def sanitized_env(workdir):
    """The worker's whole environment: nothing inherited except what is listed here."""
    workdir = str(workdir)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "TMP": workdir,
           "TEMP": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONPATH": package_root(),
           "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1",
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": workdir}
    env.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    return env


class Sandbox:
    """A private temporary folder: root/work is the worker's cwd (a copy of the submission, or empty for
    the baseline), root/stderr.log its stderr. cleanup() removes it all."""

    def __init__(self, source=None, label="worker"):
        self.root = Path(tempfile.mkdtemp(prefix=f"tinytorch-olympics-{label}-"))
        self.work, self.log = self.root / "work", self.root / "stderr.log"
        try:
            if source is None:
                self.work.mkdir()
            else:   # links are copied as links (validation refuses links that leave the folder)
                shutil.copytree(source, self.work, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        except BaseException:
            self.cleanup()
            raise

    def own_paths(self):
        """Paths inside root that the grader itself creates or that the worker may change."""
        return {str(self.work), str(self.log)}

    def cleanup(self):
        """Remove the folder; returns None, or a message when something could not be removed."""
        problems = []
        if sys.version_info >= (3, 12):
            shutil.rmtree(self.root, onexc=lambda function, path, exc: problems.append(f"{path}: {exc}"))
        else:
            shutil.rmtree(self.root, onerror=lambda function, path, info: problems.append(f"{path}: {info[1]}"))
        return f"could not remove {len(problems)} path(s), e.g. {problems[0]}" if problems else None

    def __repr__(self):
        return f"Sandbox(root={str(self.root)!r}, exists={self.root.exists()})"


class WorkerProcess:
    """One running worker: launch, exchange messages with deadlines, and end it (with its process group).

    source: ("submission", None) to import the copy in sandbox.work, or ("zoo", model name) for the baseline."""

    def __init__(self, sandbox, source, limits, network):
        self.sandbox, self.limits, self.network = sandbox, limits, network
        self.state_file = f"state-{secrets.token_hex(8)}.npz"
        kind, name = source
        chosen = ["--submission", str(sandbox.work)] if kind == "submission" else ["--zoo", name]
        safe_path = ["-P"] if sys.version_info >= (3, 11) else []    # -P: the cwd is not put on sys.path
        self.command = [*network.prefix, sys.executable, *safe_path, "-s", "-B", "-m", WORKER_MODULE, *chosen,
                        "--state-file", self.state_file, "--memory-bytes", str(limits.memory_bytes),
                        "--file-bytes", str(limits.file_bytes)]
        if network.method == SOCKETS_BLOCKED:
            self.command.append("--block-sockets")
        self.proc, self.status, self.rusage, self.killed, self.seq = None, None, None, False, 0

    def start(self):
        with open(self.sandbox.log, "wb") as log:
            try:
                self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                             cwd=self.sandbox.work, env=sanitized_env(self.sandbox.work),
                                             start_new_session=True, close_fds=True)
            except OSError as exc:
                raise SandboxError(f"could not start the grading worker ({' '.join(self.command[:4])} ...): {exc}") from exc
        self.to_fd, self.from_fd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self.to_fd, False)
        self.started = time.perf_counter()
        return self

    def receive(self, deadline):
        """The next (header, arrays) from the worker (ChannelTimeout / ChannelClosed / ProtocolError)."""
        return protocol.recv(self.from_fd, deadline)

    def request(self, header, arrays=(), deadline=None):
        """Send one request and wait for its reply: (reply header, arrays, t0_ns, t1_ns), with t0/t1 the
        parent's perf_counter_ns just before sending and just after the whole reply arrived."""
        self.seq += 1
        header = {**header, "seq": self.seq}
        t0 = time.perf_counter_ns()
        protocol.send(self.to_fd, header, arrays, deadline)
        reply, out = protocol.recv(self.from_fd, deadline)
        t1 = time.perf_counter_ns()
        if reply.get("type") != "error" and reply.get("seq") != self.seq:
            raise protocol.ProtocolError(f"reply to request {self.seq} carries seq {reply.get('seq')!r}")
        return reply, out, t0, t1

    def _reap(self, block):
        """Collect the exit status and resource usage (os.wait4); True once the process has ended."""
        if self.status is not None:
            return True
        pid, status, rusage = os.wait4(self.proc.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self.status, self.rusage = status, rusage
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return True

    def signal_group(self, signum):
        """Send signum to the worker's process group (nothing when it has ended)."""
        if self.proc is not None and self.status is None:
            try:
                os.killpg(self.proc.pid, signum)
            except ProcessLookupError:
                pass

    @contextlib.contextmanager
    def paused(self):
        """SIGSTOP the worker's process group for the block (SIGCONT after): while the baseline is measured,
        nothing the submission started in its group can run and steal the baseline's CPU."""
        self.signal_group(signal.SIGSTOP)
        try:
            yield
        finally:
            self.signal_group(signal.SIGCONT)

    def wait(self, seconds):
        """Wait up to seconds for the process to end by itself; True when it has (and is reaped)."""
        end = time.perf_counter() + seconds
        while not self._reap(False):
            if time.perf_counter() >= end:
                return False
            time.sleep(0.005)
        return True

    def kill(self):
        """SIGKILL the whole process group (the worker and anything it started in it)."""
        alive = not self._reap(False)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.killed = self.killed or alive

    def stop(self, polite=True):
        """End the worker: ask it to exit (polite), wait EXIT_GRACE_S, then kill its group; always reaped."""
        if self.proc is None:
            return
        if polite and self.status is None:
            try:
                self.request({"op": "exit"}, deadline=time.perf_counter() + EXIT_GRACE_S)
            except (protocol.ProtocolError, protocol.ChannelTimeout, OSError):
                pass   # it is killed below either way
            self.wait(EXIT_GRACE_S)
        self.kill()
        self._reap(True)
        for handle in (self.proc.stdin, self.proc.stdout):
            handle.close()

    def exit_description(self):
        """How the process ended, in words (after stop())."""
        if self.status is None:
            return "still running"
        code = os.waitstatus_to_exitcode(self.status)
        if code >= 0:
            return f"exit code {code}"
        name = signal.Signals(-code).name
        return f"killed by {name}" + (" (sent by the grader)" if self.killed else "")

    def signal_number(self):
        code = None if self.status is None else os.waitstatus_to_exitcode(self.status)
        return -code if code is not None and code < 0 else None

    def max_rss_bytes(self):
        """Peak resident memory of the worker (Linux reports ru_maxrss in KiB), or None before it ended."""
        return None if self.rusage is None else int(self.rusage.ru_maxrss) * 1024

    def stderr_tail(self):
        """The last STDERR_TAIL_BYTES of what the worker wrote to stderr (and stdout)."""
        try:
            with open(self.sandbox.log, "rb") as handle:
                handle.seek(max(0, os.path.getsize(self.sandbox.log) - STDERR_TAIL_BYTES))
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __repr__(self):
        pid = None if self.proc is None else self.proc.pid
        return f"WorkerProcess(pid={pid}, network={self.network.method!r}, {self.exit_description()})"


# ------------------------------------------------------------------------- watching folders for writes
def snapshot(folders, skip=()):
    """{path: (kind, size, mtime_ns)} of everything under folders (links not followed); paths in skip
    (and everything under them) are left out. A folder that does not exist is recorded as absent."""
    skip, found = {str(s) for s in skip}, {}
    stack = [str(f) for f in folders]
    while stack:
        current = stack.pop()
        if current in skip:
            continue
        try:
            entries = list(os.scandir(current))
        except FileNotFoundError:
            found[current] = ("absent", 0, 0)
            continue
        except NotADirectoryError:
            continue
        for entry in entries:
            if entry.path in skip:
                continue
            info = entry.stat(follow_symlinks=False)
            kind = "dir" if entry.is_dir(follow_symlinks=False) else "link" if entry.is_symlink() else "file"
            found[entry.path] = (kind, info.st_size if kind == "file" else 0, info.st_mtime_ns if kind != "dir" else 0)
            if kind == "dir":
                stack.append(entry.path)
    return found


def changes(before, after):
    """Sorted ["created PATH" | "removed PATH" | "changed PATH"] between two snapshots."""
    found = [f"created {p}" for p in after.keys() - before.keys()]
    found += [f"removed {p}" for p in before.keys() - after.keys()]
    found += [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(found, key=lambda text: text.split(" ", 1)[1])
