"""The trusted launcher of a jailed grading worker (Linux). Run by sandbox.WorkerProcess as

    python -I -S -B .../jail.py CONFIG_JSON

with fd 0/1 the protocol pipes, fd 2 the stderr log and one more fd (config "status_fd") on which it reports.
It uses only the standard library (ctypes on libc: Python 3.11 has no os.unshare), and does, in order:

1. PR_SET_PDEATHSIG(SIGKILL) (the grader dies: so does the launcher), exits when its parent already changed;
2. joins the worker's cgroups (memory, pids, freezer, cpuset: created and limited by the parent) so that
   every descendant is counted, and pins itself to the chosen CPUs (sched_setaffinity; the cpuset cgroup is
   the binding part);
3. unshare(mount, PID, network, IPC, UTS [, user]): with "userns" (a grader that is not root) a user
   namespace maps the grader's uid to 0 for the setup;
4. forks: the child is PID 1 of the new PID namespace (the jailed init: when it ends the kernel kills
   everything in the namespace); it builds the jail (5), forks the worker as PID 2 (a PID 1 would ignore its
   own signals) and reaps orphans; when the worker ends it hands the worker's wait status to the launcher
   and exits. The launcher then ends the same way the worker did (exit code or signal), so the parent's wait
   status reads as the worker's;
5. in the child: a new root (tmpfs) with read-only bind mounts (MS_RDONLY|MS_NOSUID|MS_NODEV, remounted
   after the bind) of the system folders, Python, the venv, the tinytorch package and the worker's folder
   (/work), device nodes null/zero/random/urandom, a fresh /proc, a size-limited /tmp and a minimal /etc;
   pivot_root into it and detach the old root; the root itself is then remounted read-only;
6. loopback up, hostname; in the worker (PID 2): rlimits (CPU, AS, FSIZE, CORE=0, NPROC), then the privilege drop: a grader
   running as root gives the worker a uid/gid of its own (setgroups([]), setresgid, setresuid); otherwise
   a nested user namespace maps an unprivileged inner uid onto the setup uid (the bubblewrap method; the
   worker first makes itself dumpable again, else its /proc/self/uid_map etc. belong to root and cannot be
   written). Either way the bounding and ambient sets are cleared, capset empties the rest, and the launcher
   checks /proc/self/status shows no capability left. PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG again
   (credentials changed), every fd but 0, 1, 2 closed, execve.

Any failure before execve is written to the status fd as "E<message>" and the launcher exits with
SETUP_FAILED; the parent turns that into a SandboxError (the grader's problem, not the submission's).
"""
import ctypes
import ctypes.util
import errno
import json
import os
import platform
import signal
import socket
import struct
import sys

SETUP_FAILED = 125

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
ST_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
            (getattr(os, "ST_NOATIME", 1024), MS_NOATIME), (getattr(os, "ST_NODIRATIME", 2048), MS_NODIRATIME),
            (getattr(os, "ST_RELATIME", 4096), MS_RELATIME))
SYS_PIVOT_ROOT = {"x86_64": 155, "amd64": 155, "aarch64": 41, "arm64": 41, "i686": 217, "i386": 217,
                  "armv7l": 218, "ppc64le": 203, "s390x": 217, "riscv64": 41}
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
INNER_UID = 1000    # the worker's uid inside the nested user namespace (user-namespace path)

ADDR_NO_RANDOMIZE = 0x0040000
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.unshare.argtypes = (ctypes.c_int,)
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
_libc.sethostname.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
_libc.syscall.restype = ctypes.c_long
_libc.capset.argtypes = (ctypes.c_void_p, ctypes.c_void_p)


class JailError(Exception):
    """The jail could not be set up (the message says which step and why)."""


def _check(result, what):
    if result == -1 or (isinstance(result, int) and result < 0):
        code = ctypes.get_errno()
        raise JailError(f"{what}: {errno.errorcode.get(code, code)} ({os.strerror(code)})")
    return result


def _b(path):
    return None if path is None else os.fsencode(path)


def mount(source, target, fstype, flags, data=None):
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x}, {data!r})")


def unshare(flags):
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def prctl(option, value):
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl({option}, {value})")


def pivot_root(new, old):
    number = SYS_PIVOT_ROOT.get(platform.machine().lower())
    if number is None:
        raise JailError(f"pivot_root: unknown syscall number on {platform.machine()}")
    _check(_libc.syscall(ctypes.c_long(number), _b(new), _b(old)), f"pivot_root({new!r}, {old!r})")


def _write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    except OSError as exc:
        raise JailError(f"writing {text.strip()!r} to {path}: {exc}") from None
    finally:
        os.close(fd)


def _locked_flags(source):
    """The mount flags of source that a remount must keep (in a user namespace they are locked)."""
    found = os.statvfs(source).f_flag
    return sum(ms for st, ms in ST_FLAGS if found & st)


def _ro_bind(source, target, extra=MS_NOSUID | MS_NODEV):
    mount(source, target, None, MS_BIND)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | extra | _locked_flags(source))


def _mkdirs(path):
    os.makedirs(path, mode=0o755, exist_ok=True)


def _touch(path):
    if os.path.lexists(path):    # e.g. a file of a read-only bind that an override is mounted over
        return
    _mkdirs(os.path.dirname(path))
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def _map_ids(inside, outside):
    """This process's uid_map/gid_map in its new user namespace: inside <-> outside (one id each)."""
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{inside} {outside[0]} 1\n")
    _write("/proc/self/gid_map", f"{inside} {outside[1]} 1\n")


def _loopback_up():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        import fcntl

        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _build_root(config):
    """Mount the new root at config["root"] and pivot into it."""
    root = config["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,nr_inodes=4096,mode=0755")
    inside = lambda path: os.path.join(root, path.lstrip("/"))
    for source, target in config["dirs"]:
        _mkdirs(inside(target))
        _ro_bind(source, inside(target))
    for source, target in config["files"]:
        _touch(inside(target))
        _ro_bind(source, inside(target))
    for target, link in config["symlinks"]:
        _mkdirs(os.path.dirname(inside(link)))
        os.symlink(target, inside(link))
    for target, text in config["write"]:
        _mkdirs(os.path.dirname(inside(target)))
        fd = os.open(inside(target), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        os.write(fd, text.encode())
        os.close(fd)
    _mkdirs(inside("/dev"))
    for name in config["devices"]:
        _touch(inside(f"/dev/{name}"))
        mount(f"/dev/{name}", inside(f"/dev/{name}"), None, MS_BIND)
        mount(None, inside(f"/dev/{name}"), None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC
              | _locked_flags(f"/dev/{name}"))
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, inside(f"/dev/{name}"))
    _mkdirs(inside("/proc"))
    mount("proc", inside("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mkdirs(inside("/tmp"))
    mode = "1777" if config["tmp_owner"] is None else "0700"
    mount("tmpfs", inside("/tmp"), "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={int(config['tmp_bytes'])},nr_inodes=16384,mode={mode}")
    if config["tmp_owner"] is not None:
        os.chown(inside("/tmp"), *config["tmp_owner"])
    _mkdirs(inside("/work"))
    _ro_bind(config["work"], inside("/work"))
    os.chdir(root)
    pivot_root(".", ".")          # the old root is now stacked under the new one: detach it
    _check(_libc.umount2(b".", MNT_DETACH), "umount2(old root, MNT_DETACH)")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _limits(config):
    import resource

    for name, value in config["rlimits"].items():
        which = getattr(resource, f"RLIMIT_{name}")
        try:
            resource.setrlimit(which, (value, value))
        except (OSError, ValueError) as exc:
            raise JailError(f"setrlimit(RLIMIT_{name}, {value}): {exc}") from None


def _clear_bounding_set():
    """Drop every capability from the bounding set (needs CAP_SETPCAP in the current user namespace) and clear
    the ambient set: no later execve can gain a capability back."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1:
            if ctypes.get_errno() == errno.EINVAL:    # past the kernel's last capability
                break
            _check(-1, f"prctl(PR_CAPBSET_DROP, {cap})")
    if _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 and ctypes.get_errno() != errno.EINVAL:
        _check(-1, "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)")


def _clear_capabilities():
    """Empty effective, permitted and inheritable sets (capset: lowering is always allowed)."""
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capset(header, data), "capset(empty)")


def _capabilities():
    """{"CapInh": .., "CapPrm": .., "CapEff": .., "CapBnd": .., "CapAmb": ..} of this process (ints)."""
    with open("/proc/self/status") as status:
        return {key: int(value, 16) for key, _, value in (line.partition(":") for line in status)
                if key.startswith("Cap")}


def _drop(config):
    if config["userns"]:
        # A nested user namespace whose only id, INNER_UID, maps onto the setup uid (0 of the outer one, the
        # grader's uid outside): the worker is not root anywhere and holds no capability in any namespace.
        # The init made itself non-dumpable and this fork inherited that: the files of a non-dumpable process's
        # /proc/<pid> belong to (global) root, so the nested namespace could not open its own setgroups,
        # uid_map and gid_map (EACCES). Dumpable again, they belong to the process's own uid; the worker is
        # about to exec anyway (execve makes a process dumpable again), and only the init shares the jail.
        prctl(PR_SET_DUMPABLE, 1)
        unshare(CLONE_NEWUSER)
        _map_ids(INNER_UID, (0, 0))
        if os.getresuid() != (INNER_UID,) * 3 or os.getresgid() != (INNER_UID,) * 3:
            raise JailError(f"nested user namespace: ids are {os.getresuid()}/{os.getresgid()}, expected {INNER_UID}")
        _clear_bounding_set()     # CAP_SETPCAP is held in the new namespace until the capset below
    else:
        uid, gid = config["uid"], config["gid"]
        _clear_bounding_set()
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.getresuid() != (uid, uid, uid) or os.getgroups():
            raise JailError(f"privilege drop to uid {uid} did not hold: {os.getresuid()}, groups {os.getgroups()}")
    _clear_capabilities()
    try:
        os.setuid(0)
    except OSError:     # EPERM; EINVAL in the nested namespace, where no id maps to 0
        pass
    else:
        raise JailError("privilege drop: setuid(0) still succeeds")
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)   # cleared by the credential change: set again
    left = {key: value for key, value in _capabilities().items() if value}
    if left:
        raise JailError(f"privilege drop: capabilities left {', '.join(f'{k}={v:x}' for k, v in left.items())}")


def _report(status_fd, exc):
    try:
        os.write(status_fd, f"E{type(exc).__name__}: {exc}".encode()[:4000])
    finally:
        os._exit(SETUP_FAILED)


def _worker(config, status_fd):
    """PID 2: limits, privilege drop, exec of the worker (never returns)."""
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        _limits(config)
        os.umask(0o077)
        _drop(config)
        if config.get("fixed_layout"):    # the same memory layout in every worker (see sandbox.FIXED_LAYOUT)
            _libc.personality.argtypes = (ctypes.c_ulong,)
            if _libc.personality(ADDR_NO_RANDOMIZE) == -1:
                raise JailError("personality(ADDR_NO_RANDOMIZE) failed")
        os.chdir(config["cwd"])
        os.set_inheritable(status_fd, False)
        os.closerange(3, status_fd)
        os.closerange(status_fd + 1, 65536)
        os.execve(config["argv"][0], config["argv"], config["env"])
    except BaseException as exc:   # report, never run the worker unjailed
        _report(status_fd, exc)


def _init(config, status_fd, relay_fd):
    """PID 1 of the new PID namespace: build the jail, fork the worker (PID 2), reap every orphan, and when the
    worker ends write its raw wait status to relay_fd and exit (the kernel then kills all that is left)."""
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        prctl(PR_SET_DUMPABLE, 0)     # no ptrace / /proc access to the init by the worker (same uid in userns)
        if os.getpid() != 1:
            raise JailError(f"not PID 1 of a new PID namespace (pid {os.getpid()})")
        name = config["hostname"].encode()
        _check(_libc.sethostname(name, len(name)), "sethostname")
        _build_root(config)
        try:
            _loopback_up()
        except OSError:
            pass    # loopback stays down: the worker needs no network at all
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_IGN)
        worker = os.fork()
    except BaseException as exc:
        _report(status_fd, exc)
    if worker == 0:
        os.close(relay_fd)
        _worker(config, status_fd)
    os.close(status_fd)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(SETUP_FAILED)
        except InterruptedError:
            continue
        if pid == worker:
            os.write(relay_fd, f"S{status}\n".encode())
            os._exit(0)


def _relay(pid, relay_fd):
    """Wait for the jailed init and end the way the worker did (exit code, or the same signal); when the init
    itself was killed (by the grader or the OOM killer), the way the init did."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(SETUP_FAILED)
        except InterruptedError:
            continue
    told = b""
    while True:
        chunk = os.read(relay_fd, 64)
        if not chunk:
            break
        told += chunk
    if told.startswith(b"S") and told.strip()[1:].isdigit():
        status = int(told.strip()[1:])
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), number)
        os._exit(128 + number)
    os._exit(os.waitstatus_to_exitcode(status))


def main(argv):
    config = json.loads(argv[1])
    status_fd = int(config["status_fd"])
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != config["parent_pid"]:
            raise JailError("the grader that launched this worker is gone")
        for procs in config["cgroups"]:
            _write(procs, f"{os.getpid()}\n")
        if config["cpus"]:
            os.sched_setaffinity(0, config["cpus"])
        setup_ids = (os.geteuid(), os.getegid())
        flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
        if config["userns"]:
            flags |= CLONE_NEWUSER
        unshare(flags)
        if config["userns"]:
            _map_ids(0, setup_ids)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)   # cleared by the credential change
        relay_read, relay_write = os.pipe()
        pid = os.fork()
    except BaseException as exc:
        _report(status_fd, exc)
    if pid == 0:
        os.close(relay_read)
        _init(config, status_fd, relay_write)
    os.close(relay_write)
    os.write(status_fd, f"P{pid}\n".encode())
    os.close(status_fd)
    _relay(pid, relay_read)


if __name__ == "__main__":
    main(sys.argv)
