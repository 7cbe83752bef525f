"""OS isolation of the grading worker (sandbox.py + jail.py): real jailed workers on hostile submissions.

Each test starts a worker on a submission whose build_model() does something hostile and writes what it
found to stderr as one line `FINDINGS {json}`; the parent checks both that report and the host's own view.
Tests skip (with the reason) where this machine gives no jail, no cgroups, or the grader is not root.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tinytorch.tito.olympics import sandbox

LINUX = sys.platform.startswith("linux")
pytestmark = pytest.mark.skipif(not LINUX, reason="the jail uses Linux namespaces and cgroups")


def plan_or_skip(need=()):
    plan = sandbox.isolation_plan()
    if not plan.jail:
        pytest.skip(f"no jail on this machine: {plan.missing}")
    for what in need:
        if what == "cgroups" and not plan.cgroups:
            pytest.skip(f"no worker cgroups here: {plan.missing}")
        if what == "freezer" and not plan.freezer:
            pytest.skip("no cgroup freezer here")
        if what == "cpuset" and not plan.cpuset:
            pytest.skip("no cpuset cgroup here")
        if what == "root" and os.geteuid() != 0:
            pytest.skip("the grader is not root: the per-worker uid path is not used")
    return plan


PRELUDE = """
import json, os, signal, sys, time
def report(**found):
    sys.stderr.write("FINDINGS " + json.dumps(found) + "\\n")
    sys.stderr.flush()
def attempt(function):
    try:
        return ["ok", repr(function())[:200]]
    except BaseException as exc:
        return ["refused", type(exc).__name__]
"""


def submission(tmp_path, body, name="student", extra=None):
    folder = tmp_path / "subs" / name
    folder.mkdir(parents=True)
    (folder / "submission.py").write_text(PRELUDE + textwrap.dedent(body))
    for relative, text in (extra or {}).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def launch(folder, limits=None, plan=None, cpus=None, timeout=40):
    """(worker, first message, sandbox) for a started submission worker (the caller stops it)."""
    box = sandbox.Sandbox(folder, "test")
    worker = sandbox.WorkerProcess(box, ("submission", None), limits or sandbox.Limits(timeout_s=30), None,
                                   cpus=cpus, plan=plan)
    worker.start()
    try:
        message, _ = worker.receive(time.perf_counter() + timeout)
    except Exception as exc:    # the worker died: the message says how
        message = {"type": "died", "why": repr(exc)}
    return worker, message, box


def findings(worker):
    for line in reversed(worker.stderr_tail().splitlines()):
        if line.startswith("FINDINGS "):
            return json.loads(line[len("FINDINGS "):])
    raise AssertionError(f"no FINDINGS in the worker's stderr: {worker.stderr_tail()[-1500:]}")


def finish(worker, box):
    worker.stop()
    assert box.cleanup() is None


def processes_of(uid):
    """Host pids whose real uid is uid."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            line = next(l for l in status.splitlines() if l.startswith("Uid:"))
            if int(line.split()[1]) == uid:
                found.append(int(entry))
    return found


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def tree_state(*folders):
    return sandbox.snapshot([str(f) for f in folders])


# ------------------------------------------------------------------------------------------------ tests
def test_plan_is_complete_as_root():
    plan = sandbox.isolation_plan()
    found = plan.to_dict()
    assert set(found) >= {"user", "pid_namespace", "mount", "network", "memory", "processes", "cpu_time", "freeze",
                          "cpuset", "missing", "complete"}
    assert found["complete"] == (not found["missing"])
    if os.geteuid() != 0:
        pytest.skip(f"not root: completeness depends on delegated cgroups ({found['missing']})")
    assert found["complete"], found["missing"]
    assert sandbox.network_method().method == sandbox.NAMESPACE
    assert sandbox.require_complete(plan) is plan


def test_require_complete_lists_what_is_missing():
    weak = sandbox.IsolationPlan(False, False, {}, {}, ("jail: not Linux", "cgroups: none"))
    assert weak.to_dict()["complete"] is False
    with pytest.raises(sandbox.SandboxError, match="jail: not Linux; cgroups: none"):
        sandbox.require_complete(weak)


def test_hostile_submission_cannot_reach_outside(tmp_path):
    plan_or_skip()
    import tinytorch

    package = Path(tinytorch.__file__).resolve().parent
    sibling = tmp_path / "subs" / "other-student"
    sibling.mkdir(parents=True)
    (sibling / "submission.py").write_text("SECRET = 'answers'\n")
    folder = submission(tmp_path, f"""
    GRADER, SIBLING, PACKAGE, PREFIX = {os.getpid()}, {str(sibling)!r}, {str(package)!r}, {os.path.realpath(sys.prefix)!r}
    def build_model():
        import tinytorch, socket
        init = tinytorch.__file__
        report(uid=os.getuid(), gid=os.getgid(), pid=os.getpid(), groups=os.getgroups(), cwd=os.getcwd(),
               append_package=attempt(lambda: open(init, "a").write("FORGED = 1\\n")),
               append_real=attempt(lambda: open(PACKAGE + "/__init__.py", "a").write("FORGED = 1\\n")),
               write_prefix=attempt(lambda: open(sys.prefix + "/forged.txt", "w").write("x")),
               write_real_prefix=attempt(lambda: open(PREFIX + "/forged.txt", "w").write("x")),
               write_site=attempt(lambda: open(os.path.dirname(os.path.dirname(init)) + "/evil.pth", "w").write("x")),
               write_work=attempt(lambda: open("/work/cache.txt", "w").write("x")),
               write_tmp=attempt(lambda: open("/tmp/ok.txt", "w").write("x")),
               shadow=attempt(lambda: open("/etc/shadow").read()),
               sibling=attempt(lambda: os.listdir(SIBLING)),
               sibling_file=attempt(lambda: open(SIBLING + "/submission.py").read()),
               repo=attempt(lambda: os.listdir("/work/main")),
               kill_grader=attempt(lambda: os.kill(GRADER, signal.SIGKILL)),
               kill_init=attempt(lambda: os.kill(1, signal.SIGKILL)),
               stop_init=attempt(lambda: os.kill(1, signal.SIGSTOP)),
               setuid=attempt(lambda: os.setuid(0)),
               pids=sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
               net=attempt(lambda: socket.create_connection(("1.1.1.1", 53), timeout=1)),
               interfaces=[n for _, n in socket.if_nameindex()],
               root=sorted(os.listdir("/")), path=sys.path, flags=[sys.flags.isolated, sys.flags.no_user_site])
        return lambda x: x
    """)
    before = tree_state(package, sys.prefix)
    worker, message, box = launch(folder)
    try:
        found = findings(worker)
        assert message["type"] == "ready", (message, worker.stderr_tail())
    finally:
        finish(worker, box)
    assert found["uid"] != 0 and found["gid"] != 0 and found["groups"] == []
    assert found["pid"] <= 3 and max(found["pids"]) <= 3, found["pids"]          # its own PID namespace
    assert found["cwd"] == "/work"
    for key in ("append_package", "append_real", "write_prefix", "write_real_prefix", "write_site", "write_work",
                "shadow", "sibling", "sibling_file", "repo", "kill_grader", "kill_init", "setuid", "net"):
        assert found[key][0] == "refused", (key, found[key])
    assert found["stop_init"][0] == "refused" or worker.status is not None   # PID 1 ignores it either way
    assert found["write_tmp"][0] == "ok"
    assert found["interfaces"] == ["lo"]
    assert "shadow" not in found["root"] and set(found["root"]) <= {"usr", "bin", "lib", "lib64", "sbin", "lib32",
                                                                   "libx32", "root", "opt", "etc", "dev", "proc",
                                                                   "tmp", "work"}
    # isolated mode: no cwd or script folder first; the worker itself appends the submission folder last
    assert found["flags"] == [1, 1] and "" not in found["path"] and found["path"].index("/work") == len(found["path"]) - 1
    assert tree_state(package, sys.prefix) == before                 # nothing of the package or venv changed
    assert not (Path(sys.prefix) / "forged.txt").exists() and "FORGED" not in (package / "__init__.py").read_text()
    assert not (folder / "cache.txt").exists()


def test_fake_tinytorch_in_the_submission_does_not_run(tmp_path):
    plan_or_skip()
    hijack = "import sys; sys.stderr.write('HIJACKED\\n'); open('/tmp/hijacked', 'w')\n"
    folder = submission(tmp_path, """
    def build_model():
        import tinytorch
        report(tinytorch=tinytorch.__file__, hijacked=os.path.exists("/tmp/hijacked"))
        return lambda x: x
    """, extra={"tinytorch/__init__.py": hijack, "tinytorch/tito/__init__.py": hijack,
                "tinytorch/tito/olympics/__init__.py": hijack, "tinytorch/tito/olympics/worker.py": hijack})
    worker, message, box = launch(folder)
    try:
        found = findings(worker)
        assert message["type"] == "ready", message
    finally:
        finish(worker, box)
    assert "HIJACKED" not in worker.stderr_tail() and not found["hijacked"]
    assert not found["tinytorch"].startswith("/work")


def test_setsid_child_is_gone_after_stop(tmp_path):
    plan = plan_or_skip(["root"])
    folder = submission(tmp_path, """
    def build_model():
        child = os.fork()
        if child == 0:
            os.setsid()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                time.sleep(600)
            os._exit(0)
        os.waitpid(child, 0)
        report(started=True)
        return lambda x: x
    """)
    worker, message, box = launch(folder, plan=plan)
    try:
        assert message["type"] == "ready", (message, worker.stderr_tail())
        uid, group = worker.uid, worker.cgroup
        assert len(processes_of(uid)) == 2           # the worker and the setsid'd grandchild
    finally:
        finish(worker, box)
    assert processes_of(uid) == []
    if group is not None:
        assert all(not os.path.exists(f) for f in group.procs_files())   # cgroups removed


def test_memory_of_all_children_is_limited(tmp_path):
    plan_or_skip(["cgroups"])
    folder = submission(tmp_path, """
    def build_model():
        children = []
        for k in range(3):
            pid = os.fork()
            if pid == 0:
                block = b"\\x01" * (450 * 2**20)       # touched: every page is resident
                time.sleep(20)
                os._exit(0)
            children.append(pid)
        time.sleep(3)
        ended = [os.waitpid(p, os.WNOHANG) for p in children]
        report(ended=ended)
        return lambda x: x
    """)
    worker, message, box = launch(folder, limits=sandbox.Limits(timeout_s=30, memory_bytes=2**30))
    try:
        assert message["type"] in ("ready", "error", "died")
    finally:
        finish(worker, box)
    assert worker.oom_killed() is True or worker.signal_number() == signal.SIGKILL, worker.exit_description()
    peak = worker.peak_memory_bytes()
    assert peak is not None and peak <= 2**30 + 2**20


def test_fork_bomb_is_stopped_by_pids_max(tmp_path):
    plan_or_skip(["cgroups"])
    folder = submission(tmp_path, """
    def build_model():
        made, error = 0, None
        while made < 1000:
            try:
                pid = os.fork()
            except OSError as exc:
                error = type(exc).__name__
                break
            if pid == 0:
                time.sleep(600)
                os._exit(0)
            made += 1
        report(made=made, error=error)
        return lambda x: x
    """)
    worker, message, box = launch(folder)
    try:
        found = findings(worker)
        group = worker.cgroup
        assert len(group.pids()) <= sandbox.PIDS_MAX
    finally:
        finish(worker, box)
    assert found["error"] == "BlockingIOError" and found["made"] < sandbox.PIDS_MAX, found
    assert all(not os.path.exists(f) for f in group.procs_files())


def test_paused_freezes_a_setsid_busy_child(tmp_path):
    plan = plan_or_skip(["freezer", "root"])
    folder = submission(tmp_path, """
    def build_model():
        if os.fork() == 0:
            os.setsid()
            while True:
                pass
        report(started=True)
        return lambda x: x
    """)
    worker, message, box = launch(folder, plan=plan)
    try:
        assert message["type"] == "ready", message
        pids = processes_of(worker.uid)
        start = cpu_ticks(pids)
        time.sleep(0.4)
        before = cpu_ticks(pids)
        with worker.paused():
            assert worker.pause_method == "cgroup freezer"
            frozen = cpu_ticks(pids)
            time.sleep(0.5)
            after_pause = cpu_ticks(pids)
        time.sleep(0.6)
        resumed = cpu_ticks(pids)
    finally:
        finish(worker, box)
    assert before > start, (start, before)                     # it was burning CPU
    assert after_pause - frozen <= 2, (frozen, after_pause)    # clock ticks (1/100 s): nothing ran while frozen
    assert resumed - after_pause >= 5, (after_pause, resumed)  # and it runs again after the thaw


def test_cpus_are_binding(tmp_path):
    plan_or_skip(["cpuset"])
    cpus = sorted(os.sched_getaffinity(0))
    folder = submission(tmp_path, """
    def build_model():
        before = sorted(os.sched_getaffinity(0))
        escape = attempt(lambda: os.sched_setaffinity(0, set(range(os.cpu_count()))))
        report(before=before, after=sorted(os.sched_getaffinity(0)), escape=escape)
        return lambda x: x
    """)
    worker, message, box = launch(folder, cpus={cpus[-1]})
    try:
        found = findings(worker)
    finally:
        finish(worker, box)
    assert found["before"] == [cpus[-1]] and found["after"] == [cpus[-1]]


def test_user_namespace_path(tmp_path):
    """The path a grader that is not root takes (forced here): nested user namespaces, no capabilities."""
    plan = sandbox.probe_plan(userns=True)
    if not plan.jail:
        pytest.skip(f"no user-namespace jail here: {plan.missing}")
    folder = submission(tmp_path, """
    def build_model():
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
        report(uid=os.getuid(), caps=status["CapEff"].strip(), bounding=status["CapBnd"].strip(), shadow=attempt(lambda: open("/etc/shadow").read()),
               write_package=attempt(lambda: open(__import__("tinytorch").__file__, "a").write("#")),
               setuid=attempt(lambda: os.setuid(0)), mount=attempt(lambda: os.listdir("/proc/1/root")),
               pid=os.getpid())
        return lambda x: x
    """)
    worker, message, box = launch(folder, plan=plan)
    try:
        found = findings(worker)
        assert message["type"] == "ready", message
    finally:
        finish(worker, box)
    assert found["uid"] == 1000 and int(found["caps"], 16) == 0 and int(found["bounding"], 16) == 0
    assert found["pid"] == 2
    for key in ("shadow", "write_package", "setuid", "mount"):
        assert found[key][0] == "refused", (key, found[key])


def test_worker_that_kills_itself_is_reported_as_killed(tmp_path):
    plan_or_skip()
    folder = submission(tmp_path, """
    os.kill(os.getpid(), signal.SIGKILL)
    def build_model():
        return None
    """)
    worker, message, box = launch(folder)
    try:
        assert message["type"] == "died"
        worker.wait(5)
    finally:
        finish(worker, box)
    assert worker.signal_number() == signal.SIGKILL and not worker.killed
    assert worker.exit_description().startswith("killed by SIGKILL") and "grader" not in worker.exit_description()


def test_cleanup_stale_removes_what_dead_graders_left(tmp_path):
    plan_or_skip(["cgroups"])
    gone = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    start = sandbox._proc_start(gone.pid)
    gone.wait()
    box = sandbox.Sandbox(label="stale")
    box.owner.write_text(f"{gone.pid} {start}\n")
    alive = sandbox.Sandbox(label="alive")
    base = next(v for k, v in sandbox.cgroup_bases().items() if k == "memory" or k == "unified")
    os.makedirs(base, exist_ok=True)
    stale_group = os.path.join(base, f"w{gone.pid}.{start}-deadbeef")
    os.mkdir(stale_group)
    try:
        removed = sandbox.cleanup_stale()
        assert f"sandbox {box.root}" in removed and f"cgroup {stale_group}" in removed
        assert not box.root.exists() and not os.path.exists(stale_group) and alive.root.exists()
    finally:
        alive.cleanup()
        if os.path.exists(stale_group):
            os.rmdir(stale_group)


def test_baseline_worker_runs_jailed():
    plan_or_skip()
    box = sandbox.Sandbox(label="test")
    worker = sandbox.WorkerProcess(box, ("zoo", "digits_cnn"), sandbox.Limits(timeout_s=30), sandbox.network_method())
    worker.start()
    try:
        ready, _ = worker.receive(time.perf_counter() + 30)
        assert ready["type"] == "ready" and ready["state"] == "saved"
        reply, _, _, _ = worker.request({"op": "ping"}, deadline=time.perf_counter() + 10)
        assert reply["type"] == "pong"
    finally:
        worker.stop()
        assert box.cleanup() is None
    assert worker.exit_description() == "exit code 0"
    assert worker.max_rss_bytes() > 0
    if worker.plan.cgroups:
        assert worker.peak_memory_bytes() > 10 * 2**20 and worker.oom_killed() is False


UNPRIVILEGED_CHECK = r"""
import ctypes, json, os, sys, time
pid = os.fork()
if pid == 0:    # can this user make a user namespace at all (the kernel or a policy may forbid it)?
    os._exit(0 if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0 else 1)
userns_ok = os.waitpid(pid, 0)[1] == 0
from tinytorch.tito.olympics import sandbox
plan = sandbox.isolation_plan()
result = {"euid": os.geteuid(), "userns_ok": userns_ok, "jail": plan.jail, "userns": plan.userns,
          "missing": list(plan.missing)}
if plan.jail:
    box = sandbox.Sandbox(sys.argv[1], "unprivileged")
    worker = sandbox.WorkerProcess(box, ("submission", None), sandbox.Limits(timeout_s=20), None)
    try:
        worker.start()
        message, _ = worker.receive(time.perf_counter() + 15)
        result["message"] = message.get("type")
    except Exception as exc:
        result["message"] = repr(exc)
    finally:
        tail = worker.stderr_tail()
        worker.stop(polite=False)
        box.cleanup()
    line = next((l for l in reversed(tail.splitlines()) if l.startswith("FINDINGS ")), None)
    result["found"] = json.loads(line[len("FINDINGS "):]) if line else tail[-1500:]
print("RESULT " + json.dumps(result))
"""


def test_unprivileged_grader_gets_a_jail():
    """A grader that is not root (here: nobody, via su): the user-namespace jail is set up for real (nested user
    namespace, no capabilities at all, PID/mount/network namespaces); only cgroups may be missing."""
    import pwd
    import shutil
    import tempfile

    if os.geteuid() != 0 or shutil.which("su") is None:
        pytest.skip("needs root and su to run a grader as an unprivileged user")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")

    def as_nobody(command, folder, timeout):
        env = f"HOME={folder} TMPDIR={folder} PATH=/usr/bin:/bin LC_ALL=C.UTF-8"
        return subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c", f"cd {folder} && env -i {env} {command}"],
                              capture_output=True, text=True, timeout=timeout)

    import tinytorch

    package = Path(tinytorch.__file__).resolve().parent
    folder = Path(tempfile.mkdtemp(prefix="tinytorch-unprivileged-test-"))
    try:
        (folder / "sub").mkdir()
        (folder / "sub" / "submission.py").write_text(PRELUDE + textwrap.dedent(f"""
        PACKAGE = {str(package)!r}
        def build_model():
            import socket, tinytorch
            status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
            report(uid=os.getresuid(), pid=os.getpid(), pids=sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                   caps={{key: int(status[key], 16) for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}},
                   no_new_privs=status["NoNewPrivs"].strip(),
                   write_package=attempt(lambda: open(tinytorch.__file__, "a").write("#")),
                   write_real=attempt(lambda: open(PACKAGE + "/forged.txt", "w").write("#")),
                   write_work=attempt(lambda: open("/work/forged.txt", "w").write("#")),
                   shadow=attempt(lambda: open("/etc/shadow").read()), setuid=attempt(lambda: os.setuid(0)),
                   init_root=attempt(lambda: os.listdir("/proc/1/root")),
                   interfaces=[n for _, n in socket.if_nameindex()], root=sorted(os.listdir("/")))
            return lambda x: x
        """))
        (folder / "check.py").write_text(UNPRIVILEGED_CHECK)
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        try:
            ran = as_nobody(f"{sys.executable} -I -c pass", folder, 10)
        except subprocess.TimeoutExpired:
            pytest.skip("su nobody did not answer")
        if ran.returncode != 0:
            pytest.skip(f"nobody cannot run this Python ({sys.executable}): {ran.stderr.strip()[-300:]}")
        ran = as_nobody(f"{sys.executable} check.py {folder / 'sub'}", folder, 25)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    line = next((l for l in ran.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert line, (ran.returncode, ran.stdout[-1500:], ran.stderr[-1500:])
    result = json.loads(line[len("RESULT "):])
    assert result["euid"] == nobody.pw_uid and result["userns"] is True
    if not result["userns_ok"]:
        pytest.skip(f"user namespaces are not allowed to an unprivileged user here: {result['missing']}")
    assert result["jail"], result["missing"]
    assert not [m for m in result["missing"] if m.startswith("jail")], result["missing"]
    assert result["message"] == "ready", result
    found = result["found"]
    assert isinstance(found, dict), found
    assert found["uid"] == [1000, 1000, 1000] and found["pid"] == 2 and max(found["pids"]) <= 3
    assert found["caps"] == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}, found["caps"]
    assert found["no_new_privs"] == "1" and found["interfaces"] == ["lo"]
    for key in ("write_package", "write_real", "write_work", "shadow", "setuid", "init_root"):
        assert found[key][0] == "refused", (key, found[key])
    assert "shadow" not in found["root"] and set(found["root"]) <= {"usr", "bin", "lib", "lib64", "sbin", "lib32",
                                                                   "libx32", "root", "opt", "etc", "dev", "proc",
                                                                   "tmp", "work"}
    assert not (package / "forged.txt").exists()
