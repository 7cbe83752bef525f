"""Launching a grading worker with limits.

On Linux with namespaces (isolation_plan().jail) every worker is started through jail.py: an unprivileged
uid/gid of its own (or a nested user namespace when the grader is not root), its own PID, mount, network,
IPC and UTS namespaces, a private root holding only read-only system folders, Python, the venv and the
tinytorch package, its folder read-only at /work and a private size-limited /tmp; cgroups (memory, pids,
freezer, cpuset) cover it and everything it starts. Otherwise (isolation_plan().complete is False and says
what is missing) a worker gets the weaker launch: its own process group, a private writable copy of the
submission as cwd, a sanitized environment, RLIMIT_AS / RLIMIT_FSIZE, and no network where `unshare` allows
it (else sockets are blocked inside the worker). Every exchange has a wall-clock deadline either way.

What the weaker launch cannot see or stop: a worker runs as the grader's user, so it can read and write
whatever that user can; the grader detects writes only in the folders it watches (snapshot), and a process
that leaves its process group (setsid) escapes the group kill and the pause (SIGSTOP).
"""
from __future__ import annotations

import contextlib
import json
import math
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
    latency_rounds: int = 20                # A/B rounds per session (one submission request, one baseline request each)
    min_rounds: int = 10                    # rounds measured even when latency_budget_s runs out
    min_request_ms: float = 20.0            # calls per request are calibrated so a request lasts about this
    latency_budget_s: float = 15.0          # stop adding rounds after this long (once min_rounds are done)
    max_state_bytes: int = 512 * 2**20      # largest state_dict file the parent agrees to read
    latency_sessions: int = 5               # fresh worker pairs timed one after the other (process-level replicates)

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
def _unshare_network_method():
    """The NetworkIsolation of the launch without a jail: `unshare -rn` (a new user namespace too, so even a
    grader running as root gives the worker no capability to rejoin the host's network), else `unshare -n`
    (root only), else sockets blocked inside the worker."""
    if shutil.which("unshare"):
        tries = (("unshare", "-rn"), ("unshare", "-n")) if os.geteuid() == 0 else (("unshare", "-rn"),)
        for prefix in tries:
            if _probe(prefix):
                spaces = "user and network namespaces" if prefix[1] == "-rn" else "network namespace"
                return NetworkIsolation(NAMESPACE, prefix, f"`{' '.join(prefix)}`: new {spaces}; the worker sees "
                                                           f"only a loopback interface")
    return NetworkIsolation(SOCKETS_BLOCKED, (), "no usable `unshare` here: socket creation and name lookup are "
                                                 "replaced inside the worker before the submission is imported")


@lru_cache(maxsize=1)
def network_method():
    """The NetworkIsolation this machine allows, probed once per process: the jail's own network namespace
    when isolation_plan().jail (no command prefix: jail.py unshares it), else the `unshare` / socket-blocking
    methods of the launch without a jail."""
    if isolation_plan().jail:
        return NetworkIsolation(NAMESPACE, (), "the jail's own network namespace (jail.py): the worker sees only "
                                               "a loopback interface")
    return _unshare_network_method()


def package_root():
    """The folder that holds the tinytorch package the grader runs (put on the worker's PYTHONPATH)."""
    import tinytorch

    return str(Path(tinytorch.__file__).resolve().parent.parent)


# glibc malloc serves big blocks from the heap and keeps freed memory mapped: otherwise every batch's
# arrays are fresh mmap pages, and their page faults (slow in a virtual machine) land inside timed calls.
# The same for both workers; the memory limit still counts every page.
MALLOC_VARIABLES = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(128 * 2**20),
                    "MALLOC_TOP_PAD_": str(16 * 2**20)}


def sanitized_env(workdir):
    """The worker's whole environment: nothing inherited except what is listed here."""
    workdir = str(workdir)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "TMP": workdir,
           "TEMP": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONPATH": package_root(),
           "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1",
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": workdir}
    env.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    env.update(MALLOC_VARIABLES)
    return env


# ------------------------------------------------------------------------------------- the jail's layout
JAIL_VENV, JAIL_SRC = "/opt/olympics/venv", "/opt/olympics/src"   # where the venv and the package appear
JAIL_RESERVED = ("/work", "/tmp", "/dev", "/proc", "/etc", "/opt/olympics")
SYSTEM_FOLDERS = ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/libx32", "/sbin")
DEVICES = ("null", "zero", "urandom", "random")
CGROUP_PARENT = "tinytorch-olympics"
PIDS_MAX = 64
TMP_BYTES = 64 * 2**20
CPU_MARGIN_S = 10
UID_RANGE = (2_000_000_000, 2_100_000_000)
SETUP_TIMEOUT_S = 20.0


def _under(path, folders):
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


@dataclass(frozen=True)
class JailLayout:
    """What the jail shows (computed once per process): read-only folders (source, target), read-only files,
    symlinks (target, link), written files (path, text), the Python to run inside and the files to rewrite so
    that the package is found at its jail path."""

    dirs: tuple
    files: tuple
    symlinks: tuple
    write: tuple
    python: str
    overrides: tuple      # (target inside the jail, text) of .pth / editable-finder files pointing at JAIL_SRC

    def to_dict(self):
        return asdict(self)


@lru_cache(maxsize=1)
def jail_layout():
    """The JailLayout of this machine, or a str saying why no jail can be laid out."""
    dirs, symlinks, files = [], [], []
    for folder in SYSTEM_FOLDERS:
        if os.path.islink(folder):
            symlinks.append((os.readlink(folder), folder))
        elif os.path.isdir(folder):
            dirs.append((folder, folder))
    shown = [target for _, target in dirs]
    base, prefix = os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)
    if _under(base, JAIL_RESERVED):
        return f"Python's installation ({base}) lies under a folder the jail replaces ({', '.join(JAIL_RESERVED)})"
    if not _under(base, shown):
        dirs.append((base, base))
    executable = os.path.abspath(sys.executable)
    if prefix != base:
        dirs.append((prefix, JAIL_VENV))
        inner = os.path.relpath(executable, os.path.abspath(sys.prefix))
        if inner.startswith(".."):
            return f"the interpreter {executable} is not inside its venv {sys.prefix}"
        python = os.path.join(JAIL_VENV, inner)
        mapped = [(prefix, JAIL_VENV)]
    else:
        python = os.path.realpath(executable)
        if not _under(python, [t for _, t in dirs] + shown):
            return f"the interpreter {python} is outside Python's installation {base}"
        mapped = []
    package = os.path.join(package_root(), "tinytorch")
    overrides = []
    if not _under(package, [prefix, base]):
        dirs.append((package, f"{JAIL_SRC}/tinytorch"))
        import site

        quoted = [(repr(s), repr(d)) for s, d in ((package, f"{JAIL_SRC}/tinytorch"), (package_root(), JAIL_SRC))]
        quoted += [(f'"{s}"', f'"{d}"') for s, d in ((package, f"{JAIL_SRC}/tinytorch"), (package_root(), JAIL_SRC))]
        for folder in site.getsitepackages():
            real = os.path.realpath(folder)
            target = next((real.replace(src, dst, 1) for src, dst in mapped if _under(real, [src])), real)
            try:
                names = sorted(os.listdir(real))
            except OSError:
                continue
            for name in names:
                path = os.path.join(real, name)
                if name.endswith(".pth"):
                    lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
                    new = [JAIL_SRC if line.strip() and not line.startswith(("#", "import")) and
                           os.path.realpath(line.strip()) == package_root() else line for line in lines]
                    if new != lines:
                        overrides.append((os.path.join(target, name), "\n".join(new) + "\n"))
                elif name.startswith("__editable__") and name.endswith(".py"):
                    text = open(path, encoding="utf-8", errors="replace").read()
                    changed = text
                    for src, dst in quoted:
                        changed = changed.replace(src, dst)
                    if changed != text:
                        overrides.append((os.path.join(target, name), changed))
        if not overrides:
            return (f"the tinytorch package ({package}) is not installed in {prefix}: no .pth file or editable "
                    f"finder in its site-packages points at {package_root()}, so `python -I` could not import it")
    for name in ("ld.so.cache",):
        if os.path.isfile(f"/etc/{name}"):
            files.append((f"/etc/{name}", f"/etc/{name}"))
    if os.path.islink("/etc/localtime") and _under(os.path.realpath("/etc/localtime"), shown):
        symlinks.append((os.path.realpath("/etc/localtime"), "/etc/localtime"))
    write = (("/etc/passwd", "root:x:0:0:root:/:/usr/sbin/nologin\nworker:x:{uid}:{gid}:worker:/tmp:/usr/sbin/nologin\n"),
             ("/etc/group", "root:x:0:\nworker:x:{gid}:\n"), ("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n"),
             ("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n"), ("/etc/hostname", "olympics\n"))
    return JailLayout(tuple(dirs), tuple(files), tuple(symlinks), write, python, tuple(overrides))


# --------------------------------------------------------------------------------------------- cgroups
def _read(path, default=None):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return default


def _put(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def _proc_start(pid):
    """The start time (clock ticks since boot) of process pid, or None when it is gone."""
    text = _read(f"/proc/{pid}/stat")
    return None if text is None else text.rsplit(")", 1)[1].split()[19]


def _alive(pid, start):
    return _proc_start(pid) == start


@lru_cache(maxsize=1)
def cgroup_bases():
    """{"version": 1 | 2, controller: the folder the worker groups go under (.../tinytorch-olympics)}: the
    grader's own cgroup in each hierarchy (so the grader's own limits still cover its workers), or {} ."""
    mounts = {}
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        if tail[0] == "cgroup":
            for option in tail[2].split(","):
                if option in ("memory", "pids", "freezer", "cpuset"):
                    mounts.setdefault(option, (fields[4], fields[3]))
        elif tail[0] == "cgroup2":
            mounts.setdefault("unified", (fields[4], fields[3]))
    own = {}
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        number, names, path = line.split(":", 2)
        for name in names.split(",") if names else ["unified"]:
            own[name] = path
    def base(controller):
        point, root = mounts[controller]
        path = own.get(controller, "/")
        relative = path[len(root):] if root != "/" and path.startswith(root) else path
        return os.path.join(point, relative.lstrip("/"), CGROUP_PARENT)
    if "memory" in mounts:
        return {"version": 1, **{c: base(c) for c in ("memory", "pids", "freezer", "cpuset") if c in mounts}}
    if "unified" in mounts:
        point = mounts["unified"][0]
        have = set((_read(os.path.join(point, own.get("unified", "/").lstrip("/"), "cgroup.controllers")) or "").split())
        if "memory" in have:
            return {"version": 2, "unified": base("unified")}
    return {}


def _prepare_parent(bases):
    """Create the tinytorch-olympics parent groups (cpuset: cpus and mems copied from above; v2: controllers
    enabled for the children). Raises OSError when that is not allowed."""
    for controller, folder in bases.items():
        if controller == "version":
            continue
        os.makedirs(folder, mode=0o755, exist_ok=True)
        if controller == "cpuset":
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not _read(os.path.join(folder, name)):
                    _put(os.path.join(folder, name), _read(os.path.join(os.path.dirname(folder), name)))
        if controller == "unified":
            wanted = {"memory", "pids", "cpuset"} & set((_read(os.path.join(folder, "cgroup.controllers")) or "").split())
            above = os.path.join(os.path.dirname(folder), "cgroup.subtree_control")
            for name in sorted(wanted):
                with contextlib.suppress(OSError):
                    _put(above, f"+{name}")
                _put(os.path.join(folder, "cgroup.subtree_control"), f"+{name}")


class WorkerCgroup:
    """The cgroups of one worker (created by the parent, joined by the launcher, removed after it ended)."""

    def __init__(self, bases, memory_bytes, cpus=None):
        self.version, self.folders, self.pid = bases["version"], {}, os.getpid()
        name = f"w{self.pid}.{_proc_start(self.pid)}-{secrets.token_hex(4)}"
        try:
            _prepare_parent(bases)
            for controller, base in bases.items():
                if controller == "version" or (controller == "cpuset" and cpus is None):
                    continue
                folder = os.path.join(base, name)
                os.mkdir(folder, 0o755)
                self.folders[controller] = folder
            if self.version == 1:
                memory = self.folders["memory"]
                _put(os.path.join(memory, "memory.limit_in_bytes"), str(memory_bytes))
                if os.path.exists(os.path.join(memory, "memory.memsw.limit_in_bytes")):
                    _put(os.path.join(memory, "memory.memsw.limit_in_bytes"), str(memory_bytes))
                if "pids" in self.folders:
                    _put(os.path.join(self.folders["pids"], "pids.max"), str(PIDS_MAX))
                if "cpuset" in self.folders:
                    folder = self.folders["cpuset"]
                    _put(os.path.join(folder, "cpuset.cpus"), ",".join(str(c) for c in sorted(cpus)))
                    _put(os.path.join(folder, "cpuset.mems"), _read(os.path.join(bases["cpuset"], "cpuset.mems")))
            else:
                folder = self.folders["unified"]
                _put(os.path.join(folder, "memory.max"), str(memory_bytes))
                with contextlib.suppress(OSError):
                    _put(os.path.join(folder, "memory.swap.max"), "0")
                _put(os.path.join(folder, "pids.max"), str(PIDS_MAX))
                if cpus is not None:
                    _put(os.path.join(folder, "cpuset.cpus"), ",".join(str(c) for c in sorted(cpus)))
        except BaseException:
            self.remove()
            raise

    def procs_files(self):
        return [os.path.join(folder, "cgroup.procs") for folder in self.folders.values()]

    def pids(self):
        found = set()
        for path in self.procs_files():
            found.update(int(p) for p in (_read(path) or "").split())
        return found

    def has_freezer(self):
        return "freezer" in self.folders or self.version == 2

    def freeze(self, frozen, timeout=5.0):
        """Freeze (or thaw) every process of the group; True when the kernel says it is done."""
        if self.version == 1:
            folder = self.folders.get("freezer")
            if folder is None:
                return False
            _put(os.path.join(folder, "freezer.state"), "FROZEN" if frozen else "THAWED")
            done = lambda: _read(os.path.join(folder, "freezer.state")) == ("FROZEN" if frozen else "THAWED")
        else:
            folder = self.folders["unified"]
            _put(os.path.join(folder, "cgroup.freeze"), "1" if frozen else "0")
            done = lambda: f"frozen {1 if frozen else 0}" in (_read(os.path.join(folder, "cgroup.events")) or "")
        end = time.perf_counter() + timeout
        while not done():
            if time.perf_counter() > end:
                return False
            time.sleep(0.0005)
        return True

    def kill_all(self):
        """SIGKILL every process in the group (thawed, so that frozen ones die); the number signalled."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if self.has_freezer() and pids:
            with contextlib.suppress(OSError):
                self.freeze(False, timeout=0.5)
        return len(pids)

    def empty_after_kill(self, timeout=3.0):
        end = time.perf_counter() + timeout
        while self.kill_all():
            if time.perf_counter() > end:
                return False
            time.sleep(0.002)
        return True

    def peak_memory_bytes(self):
        if self.version == 1:
            value = _read(os.path.join(self.folders["memory"], "memory.max_usage_in_bytes"))
        else:
            value = _read(os.path.join(self.folders["unified"], "memory.peak"))
        return int(value) if value and value.isdigit() else None

    def oom_killed(self):
        name, folder = ("memory.oom_control", self.folders.get("memory")) if self.version == 1 else \
            ("memory.events", self.folders.get("unified"))
        text = _read(os.path.join(folder, name)) if folder else None
        for line in (text or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
        return None

    def remove(self):
        """rmdir every group (retried briefly: v1 may say busy while the last task exits); problems as strings."""
        problems = []
        for controller, folder in list(self.folders.items()):
            for attempt in range(100):
                try:
                    os.rmdir(folder)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if attempt == 99:
                        problems.append(f"{folder}: {exc}")
                    self.kill_all()
                    time.sleep(0.005)
        return problems


# ---------------------------------------------------------------------------------- the isolation plan
@dataclass(frozen=True)
class IsolationPlan:
    """What a worker launched on this machine is isolated by (see isolation_plan)."""

    jail: bool                   # jail.py is used (namespaces, private root, privilege drop)
    userns: bool                 # the privileges are dropped with user namespaces (grader not root)
    cgroups: dict                # cgroup_bases() when worker cgroups can be created, else {}
    mechanisms: dict             # name: what is in force, in words (False/None when not)
    missing: tuple               # one sentence per mechanism that is not in force
    layout: object = None        # the JailLayout

    @property
    def complete(self):
        return not self.missing

    @property
    def freezer(self):
        return bool(self.cgroups) and ("freezer" in self.cgroups or self.cgroups.get("version") == 2)

    @property
    def cpuset(self):
        return bool(self.cgroups) and ("cpuset" in self.cgroups or self.cgroups.get("version") == 2)

    def to_dict(self):
        return {**self.mechanisms, "missing": list(self.missing), "complete": self.complete}


PROBE = r"""
import json, os, socket, sys
found = {"uid": os.getuid(), "pid": os.getpid(), "shadow": os.path.exists("/etc/shadow"),
         "interfaces": [n for _, n in socket.if_nameindex()], "root": sorted(os.listdir("/"))}
try:
    import tinytorch.tito.olympics.worker
    found["package"] = tinytorch.__file__
except Exception as exc:
    found["package"] = None
    found["error"] = repr(exc)
sys.stdout.write(json.dumps(found))
"""


def _probe_cgroups(bases):
    """None when a worker cgroup can be created and limited here, else why not."""
    try:
        WorkerCgroup(bases, 2**30, cpus=set(os.sched_getaffinity(0)) if "cpuset" in bases else None).remove()
    except OSError as exc:
        return f"cannot create worker cgroups under {next(v for k, v in bases.items() if k != 'version')}: {exc}"
    return None


def probe_plan(userns=None):
    """Probe what isolation this machine gives (uncached: isolation_plan() caches it). userns=True forces the
    user-namespace path even when the grader is root (to test it), False forbids it."""
    missing, mechanisms = [], {}
    root = os.geteuid() == 0
    userns = (not root) if userns is None else bool(userns)
    layout = jail_layout() if sys.platform.startswith("linux") else "not Linux: no namespaces, no cgroups"
    jail, reason = False, layout if isinstance(layout, str) else None
    bases = cgroup_bases() if sys.platform.startswith("linux") else {}
    cg_reason = "no cgroup v1 memory hierarchy nor a cgroup v2 one with the memory controller" if not bases else None
    if bases and cg_reason is None:
        cg_reason = _probe_cgroups(bases)
    if cg_reason:
        bases = {}
    if reason is None:
        plan = IsolationPlan(True, userns, bases, {}, (), layout)
        try:
            worker = WorkerProcess(Sandbox(label="probe"), ("probe", None), Limits(timeout_s=30), None, plan=plan)
            try:
                worker.start()
                text = protocol_free_read(worker.from_fd, time.perf_counter() + SETUP_TIMEOUT_S)
                worker.wait(5)
                found = json.loads(text or "{}")
                if not found.get("package"):
                    reason = f"inside the jail tinytorch does not import: {found.get('error')}; {worker.stderr_tail()[-500:]}"
                elif found["pid"] != 2 or found["uid"] == 0 or found["shadow"] or found["interfaces"] != ["lo"]:
                    reason = f"the probe jail is not what was asked: {found}"
            finally:
                worker.stop(polite=False)
                worker.sandbox.cleanup()
        except (SandboxError, OSError, ValueError) as exc:
            reason = f"the jail could not be set up: {exc}"
        jail = reason is None
    if jail:
        mechanisms["user"] = ("uid 1000 of a nested user namespace over the grader's uid (unprivileged, no "
                              "capabilities)" if userns else
                              f"a uid/gid of its own per worker in {UID_RANGE[0]}..{UID_RANGE[1]} (unprivileged)")
        mechanisms["pid_namespace"] = True
        mechanisms["ipc_uts_namespaces"] = True
        mechanisms["mount"] = ("private root: package, Python, system folders read-only; the submission's copy "
                               f"read-only at /work; private {TMP_BYTES // 2**20} MiB /tmp; no other files")
        mechanisms["network"] = "namespace (only a loopback interface)"
    else:
        mechanisms.update(user="the grader's own user", pid_namespace=False, ipc_uts_namespaces=False,
                          mount="none: a private writable copy as cwd; every file the grader's user can reach is "
                                "reachable", network=_unshare_network_method().method)
        missing.append(f"jail: {reason}")
    if bases:
        kind = "v1 memory.limit_in_bytes" + (" + memory.memsw.limit_in_bytes" if bases["version"] == 1 else "") \
            if bases["version"] == 1 else "v2 memory.max + memory.swap.max"
        mechanisms["memory"] = f"cgroup {kind} (all descendants) + RLIMIT_AS per process"
        mechanisms["processes"] = f"cgroup pids.max={PIDS_MAX}" + ("" if userns or not jail else " + RLIMIT_NPROC")
    else:
        mechanisms["memory"] = "RLIMIT_AS per process only"
        mechanisms["processes"] = "RLIMIT_NPROC" if jail and not userns else None
        missing.append(f"cgroups: {cg_reason}; memory is limited per process only and the number of processes "
                       f"{'by RLIMIT_NPROC' if jail and not userns else 'not at all'}")
    mechanisms["cpu_time"] = f"RLIMIT_CPU = Limits.timeout_s rounded up + {CPU_MARGIN_S} s per process"
    plan = IsolationPlan(jail, userns, bases, mechanisms, (), layout if jail else None)
    if plan.freezer:
        mechanisms["freeze"] = f"cgroup {'v1 freezer' if bases['version'] == 1 else 'v2 cgroup.freeze'} (all descendants)"
    else:
        mechanisms["freeze"] = "SIGSTOP of the process group (weaker: a setsid'd process is not stopped)"
        missing.append("freeze: no cgroup freezer; paused() stops only the worker's process group")
    if plan.cpuset:
        mechanisms["cpuset"] = "cgroup cpuset.cpus (the worker cannot leave its CPUs)"
    else:
        mechanisms["cpuset"] = "sched_setaffinity (weaker: the worker can undo it)"
        missing.append("cpuset: no cpuset cgroup; CPU placement is sched_setaffinity, which the worker can undo")
    return IsolationPlan(jail, userns, bases, mechanisms, tuple(missing), layout if jail else None)


@lru_cache(maxsize=1)
def isolation_plan():
    """The IsolationPlan of this machine, probed once per process (one probe worker, about 0.1 s)."""
    return probe_plan()


def require_complete(plan=None):
    """Raise SandboxError listing what is missing unless every isolation mechanism is in force."""
    plan = isolation_plan() if plan is None else plan
    if not plan.complete:
        raise SandboxError("isolation is incomplete on this machine (--require-isolation): "
                           + "; ".join(plan.missing))
    return plan


def protocol_free_read(fd, deadline, limit=1 << 20):
    """Everything fd gives until EOF or the deadline (the probe's JSON)."""
    import select

    chunks, size = [], 0
    while size < limit:
        left = deadline - time.perf_counter()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


# ------------------------------------------------------------------------------------------- sandboxes
OWNER_FILE = "owner.pid"


class Sandbox:
    """A private temporary folder: root/work is the worker's folder (a copy of the submission, or empty for
    the baseline; read-only at /work inside the jail), root/stderr.log its stderr, root/owner.pid the grader
    that made it (cleanup_stale), root/jail the mount point of the jail's root. cleanup() removes it all."""

    def __init__(self, source=None, label="worker", files=None):
        self.root = Path(tempfile.mkdtemp(prefix=f"tinytorch-olympics-{label}-"))
        self.work, self.log = self.root / "work", self.root / "stderr.log"
        self.owner, self.jail = self.root / OWNER_FILE, self.root / "jail"
        try:
            self.owner.write_text(f"{os.getpid()} {_proc_start(os.getpid())}\n")
            self.jail.mkdir()
            if source is None:
                self.work.mkdir()
            elif files is not None:   # exactly the validated regular files: no link, FIFO or late addition
                from .submission import copy_submission

                copy_submission(source, self.work, files)
            else:   # links are copied as links (validation refuses links that leave the folder)
                shutil.copytree(source, self.work, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            self._readable()
        except BaseException:
            self.cleanup()
            raise

    def _readable(self):
        """Make the copy readable by the worker's unprivileged uid (dirs 0755, files 0644 or 0755)."""
        for folder, subdirs, names in os.walk(self.work):
            os.chmod(folder, 0o755)
            for name in names:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o755 if os.stat(path).st_mode & 0o100 else 0o644)

    def own_paths(self):
        """Paths inside root that the grader itself creates or that the worker may change."""
        return {str(self.work), str(self.log), str(self.owner), str(self.jail), str(self.root / "jail-files")}

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


def _owner_gone(text):
    try:
        pid, start = text.split()
        return not _alive(int(pid), start)
    except (ValueError, AttributeError):
        return False    # unknown owner: left alone


def cleanup_stale():
    """Remove what crashed graders left: tinytorch-olympics-* sandboxes in the temp folder whose owner process
    is gone, and worker cgroups under tinytorch-olympics whose owner is gone (their processes killed first).
    Returns what was removed, in words."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob("tinytorch-olympics-*"):
        if path.is_dir() and not path.is_symlink() and _owner_gone(_read(path / OWNER_FILE)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(f"sandbox {path}")
    bases = cgroup_bases() if sys.platform.startswith("linux") else {}
    for controller, base in bases.items():
        if controller == "version" or not os.path.isdir(base):
            continue
        for name in sorted(os.listdir(base)):
            folder = os.path.join(base, name)
            if not (name.startswith("w") and os.path.isdir(folder)):
                continue
            owner = name[1:].split("-", 1)[0].replace(".", " ")
            if not _owner_gone(owner):
                continue
            for _ in range(200):
                pids = [int(p) for p in (_read(os.path.join(folder, "cgroup.procs")) or "").split()]
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                if controller in ("freezer", "unified"):
                    with contextlib.suppress(OSError):
                        _put(os.path.join(folder, "freezer.state" if controller == "freezer" else "cgroup.freeze"),
                             "THAWED" if controller == "freezer" else "0")
                time.sleep(0.005)
            try:
                os.rmdir(folder)
                removed.append(f"cgroup {folder}")
            except OSError:
                pass
    return removed


# --------------------------------------------------------------------------------------------- workers
def _fresh_ids():
    """A uid/gid pair from UID_RANGE that no user or group of this machine has."""
    import grp
    import pwd

    while True:
        uid = UID_RANGE[0] + secrets.randbelow(UID_RANGE[1] - UID_RANGE[0])
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(uid)
            continue
        except KeyError:
            return uid, uid


# Address-space randomisation off inside the jail: every worker then gets the same memory layout, so two
# fresh processes do not differ in speed by where their arrays happen to land (cache-line and page offsets).
# It protects nothing here: the code in the worker is the untrusted party, and it already runs as it likes.
FIXED_LAYOUT = os.environ.get("TINYTORCH_OLYMPICS_ASLR", "") != "1"
PIPE_BYTES = 1 << 20   # a timed request (tens of batches of inputs) crosses the pipe in one write


def _widen_pipe(fd):
    """Grow the pipe's buffer (Linux F_SETPIPE_SZ, up to PIPE_BYTES or fs.pipe-max-size): with the 64 KiB
    default a timed request crosses in several hand-offs between the grader and the worker, each a wake-up
    on another CPU that a virtual machine makes slow, and all of them inside the timed window."""
    import fcntl

    setter = getattr(fcntl, "F_SETPIPE_SZ", 1031 if sys.platform.startswith("linux") else None)
    if setter is None:
        return
    try:
        ceiling = int(_read("/proc/sys/fs/pipe-max-size", str(PIPE_BYTES)))
    except ValueError:
        ceiling = PIPE_BYTES
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, setter, min(PIPE_BYTES, ceiling))


class WorkerProcess:
    """One running worker: launch, exchange messages with deadlines, and end it (and everything it started).

    source: ("submission", None) to import the copy in sandbox.work, or ("zoo", model name) for the baseline.
    With a jail (plan.jail, see isolation_plan) the worker is launched through jail.py; otherwise as before
    (a private writable copy as cwd, its own process group, rlimits). cpus: CPU numbers the worker may use."""

    def __init__(self, sandbox, source, limits, network, cpus=None, plan=None):
        self.sandbox, self.limits, self.network = sandbox, limits, network
        self.plan = isolation_plan() if plan is None else plan
        self.cpus = None if cpus is None else sorted({int(c) for c in cpus})
        self.jailed = self.plan.jail
        kind, name = source
        inside = "/work" if self.jailed else str(sandbox.work)
        if kind == "probe":
            args = ["-c", PROBE]
        else:
            chosen = ["--submission", inside] if kind == "submission" else ["--zoo", name]
            args = ["-m", WORKER_MODULE, *chosen, "--memory-bytes", str(limits.memory_bytes),
                    "--file-bytes", str(limits.file_bytes)]
            if network is not None and network.method == SOCKETS_BLOCKED and not self.jailed:
                args.append("--block-sockets")
        if self.jailed:
            self.command = [self.plan.layout.python, "-I", "-B", *args]
        else:
            isolated = ["-I"] if _importable_isolated() else (["-P"] if sys.version_info >= (3, 11) else []) + ["-s"]
            prefix = tuple(network.prefix) if network is not None else ()
            self.command = [*prefix, sys.executable, *isolated, "-B", *args]
        self.proc, self.status, self.rusage, self.killed, self.seq = None, None, None, False, 0
        self.cgroup, self.init_pid, self.uid, self.pause_method = None, None, None, None
        self._peak, self._oom, self.launch_s, self._asked = None, None, None, False

    # -- launching
    def _jail_config(self, status_fd):
        layout, plan = self.plan.layout, self.plan
        uid, gid = (None, None) if plan.userns else _fresh_ids()
        self.uid = uid
        files_dir = self.sandbox.root / "jail-files"
        files_dir.mkdir(exist_ok=True)
        files = list(layout.files)
        for k, (target, text) in enumerate(layout.overrides):
            source = files_dir / f"{k}-{os.path.basename(target)}"
            source.write_text(text)
            source.chmod(0o644)
            files.append((str(source), target))
        ids = {"uid": 1000 if plan.userns else uid, "gid": 1000 if plan.userns else gid}
        cpu_s = math.ceil(self.limits.timeout_s) + CPU_MARGIN_S
        rlimits = {"CPU": cpu_s, "AS": self.limits.memory_bytes, "FSIZE": self.limits.file_bytes, "CORE": 0}
        if not plan.userns:
            rlimits["NPROC"] = PIDS_MAX
        env = sanitized_env("/tmp")
        env.pop("PYTHONPATH", None)
        return {"root": str(self.sandbox.jail), "dirs": [list(d) for d in layout.dirs], "files": files,
                "symlinks": [list(s) for s in layout.symlinks],
                "write": [[path, text.format(**ids)] for path, text in layout.write],
                "devices": [d for d in DEVICES if os.path.exists(f"/dev/{d}")], "tmp_bytes": TMP_BYTES,
                "tmp_owner": None if plan.userns else [uid, gid], "work": str(self.sandbox.work),
                "cgroups": self.cgroup.procs_files() if self.cgroup else [], "cpus": self.cpus,
                "userns": plan.userns, "uid": uid, "gid": gid, "rlimits": rlimits, "hostname": "olympics",
                "argv": self.command, "env": env, "cwd": "/work", "status_fd": status_fd, "parent_pid": os.getpid(),
                "fixed_layout": FIXED_LAYOUT}

    def start(self):
        begun = time.perf_counter()
        if self.jailed:
            self._start_jailed()
        else:
            with open(self.sandbox.log, "wb") as log:
                try:
                    self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                 stderr=log, cwd=self.sandbox.work, env=sanitized_env(self.sandbox.work),
                                                 start_new_session=True, close_fds=True)
                except OSError as exc:
                    raise SandboxError(f"could not start the grading worker ({' '.join(self.command[:4])} ...): {exc}") from exc
            if self.cpus:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(self.proc.pid, self.cpus)
        self.to_fd, self.from_fd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        for fd in (self.to_fd, self.from_fd):
            _widen_pipe(fd)
        os.set_blocking(self.to_fd, False)
        self.started = time.perf_counter()
        self.launch_s = self.started - begun
        return self

    def _start_jailed(self):
        if self.plan.cgroups:
            try:
                self.cgroup = WorkerCgroup(self.plan.cgroups, self.limits.memory_bytes,
                                           self.cpus if self.plan.cpuset else None)
            except OSError as exc:
                raise SandboxError(f"could not create the worker's cgroups: {exc}") from exc
        read_fd, write_fd = os.pipe()
        try:
            config = json.dumps(self._jail_config(write_fd))
            launcher = [sys.executable, "-I", "-S", "-B", str(Path(__file__).resolve().with_name("jail.py")), config]
            with open(self.sandbox.log, "wb") as log:
                self.proc = subprocess.Popen(launcher, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                             cwd=self.sandbox.root, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
                                             start_new_session=True, close_fds=True, pass_fds=(write_fd,))
            os.close(write_fd)
            write_fd = None
            text = protocol_free_read(read_fd, time.perf_counter() + SETUP_TIMEOUT_S, 65536)
        except OSError as exc:
            self._abandon()
            raise SandboxError(f"could not start the jailed worker: {exc}") from exc
        finally:
            os.close(read_fd)
            if write_fd is not None:
                os.close(write_fd)
        for line in text.splitlines():
            if line.startswith("P") and line[1:].isdigit():
                self.init_pid = int(line[1:])
        error = next((text[i + 1:] for i in range(len(text)) if text[i] == "E" and (i == 0 or text[i - 1] == "\n")), None)
        if error is not None or self.init_pid is None:
            self._abandon()
            why = error or f"the launcher ended without starting the worker ({self.exit_description()}); " \
                           f"stderr: {self.stderr_tail()[-500:]}"
            raise SandboxError(f"the worker's jail could not be set up: {why.strip()}")

    def _abandon(self):
        """After a failed launch: everything killed and reaped, cgroups removed."""
        if self.proc is not None:
            self.kill()
            self._reap(True)
            for handle in (self.proc.stdin, self.proc.stdout):
                handle.close()
        self._release()

    def _release(self):
        if self.cgroup is not None:
            self.cgroup.empty_after_kill()
            self._peak, self._oom = self.cgroup.peak_memory_bytes(), self.cgroup.oom_killed()
            self.cgroup.remove()
            self.cgroup = None

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

    def ask_exit(self):
        """Send the exit request without waiting for the answer (stop() waits): two workers end side by side."""
        self._asked = True
        if self.proc is not None and self.status is None:
            self.seq += 1
            with contextlib.suppress(protocol.ProtocolError, protocol.ChannelTimeout, OSError):
                protocol.send(self.to_fd, {"op": "exit", "seq": self.seq}, (), time.perf_counter() + EXIT_GRACE_S)

    def pin(self, cpus):
        """Narrow the CPUs the worker and everything it started may use (before it is timed): the cpuset cgroup
        when it has one (binding: a process cannot widen it), and the affinity of each of its processes."""
        cpus = sorted({int(c) for c in cpus})
        if self.cgroup is not None:
            folder = self.cgroup.folders.get("cpuset") or self.cgroup.folders.get("unified")
            if folder and os.path.exists(os.path.join(folder, "cpuset.cpus")):
                _put(os.path.join(folder, "cpuset.cpus"), ",".join(str(c) for c in cpus))
        pids = self.cgroup.pids() if self.cgroup is not None else ([self.proc.pid] if self.proc is not None else [])
        for pid in pids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, cpus)
        self.cpus = cpus

    @contextlib.contextmanager
    def paused(self):
        """Freeze every process of the worker for the block (the cgroup freezer: setsid'd descendants too),
        thawed after; without a freezer, SIGSTOP / SIGCONT of its process group (weaker; pause_method says)."""
        frozen = False
        if self.cgroup is not None and self.cgroup.has_freezer() and self.status is None:
            try:
                frozen = self.cgroup.freeze(True)
            except OSError:
                frozen = False
            if not frozen:
                with contextlib.suppress(OSError):
                    self.cgroup.freeze(False, timeout=0.5)
        self.pause_method = "cgroup freezer" if frozen else "SIGSTOP of the process group (weaker)"
        if not frozen:
            self.signal_group(signal.SIGSTOP)
        try:
            yield
        finally:
            if frozen:
                if not self.cgroup.freeze(False):
                    raise SandboxError("the worker's cgroup did not thaw")
            else:
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
        """SIGKILL everything of the worker: the PID namespace's init (the kernel then kills all it started),
        every process in its cgroup, and the launcher's process group."""
        alive = not self._reap(False)
        if self.cgroup is not None:
            self.cgroup.kill_all()
        elif self.init_pid is not None and alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGKILL)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.killed = self.killed or alive

    def stop(self, polite=True):
        """End the worker: ask it to exit (polite), wait EXIT_GRACE_S, then kill everything; always reaped,
        its cgroups removed (peak_memory_bytes and oom_killed are read first)."""
        if self.proc is None:
            return
        if polite and self.status is None:
            if not self._asked:
                self.ask_exit()
            with contextlib.suppress(protocol.ProtocolError, protocol.ChannelTimeout, OSError):
                self.receive(time.perf_counter() + EXIT_GRACE_S)      # its "bye" (or the channel closing)
            self.wait(EXIT_GRACE_S)
        self.kill()
        self._reap(True)
        self._release()
        for handle in (self.proc.stdin, self.proc.stdout):
            handle.close()

    def peak_memory_bytes(self):
        """Peak memory of the worker's whole cgroup (every descendant), or None when unknown."""
        if self.cgroup is not None:
            return self.cgroup.peak_memory_bytes()
        return self._peak

    def oom_killed(self):
        """True when the out-of-memory killer fired in the worker's cgroup, False when not, None when unknown."""
        if self.cgroup is not None:
            return self.cgroup.oom_killed()
        return self._oom

    def exit_description(self):
        """How the process ended, in words (after stop())."""
        if self.status is None:
            return "still running"
        code = os.waitstatus_to_exitcode(self.status)
        if code >= 0:
            return f"exit code {code}"
        name = signal.Signals(-code).name
        if self.killed:
            return f"killed by {name} (sent by the grader)"
        return f"killed by {name}" + (" (out of memory: the cgroup's OOM killer)" if self.oom_killed() else "")

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
        method = "jail" if self.jailed else getattr(self.network, "method", None)
        return f"WorkerProcess(pid={pid}, isolation={method!r}, {self.exit_description()})"


@lru_cache(maxsize=1)
def _importable_isolated():
    """True when `python -I` finds tinytorch (installed, or editable through site-packages)."""
    try:
        done = subprocess.run([sys.executable, "-I", "-c", "import tinytorch, sys; print(tinytorch.__file__)"],
                              capture_output=True, timeout=30, cwd="/", env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and Path(done.stdout.decode().strip()).resolve().parent.parent == Path(package_root())


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
