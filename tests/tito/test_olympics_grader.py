"""The sandboxed Olympics grader, tested with real misbehaving submissions graded by the real grader.

The submissions are written into tmp_path by the tests (see SUBMISSIONS). Limits are short (timeout 10 s,
1 GiB of address space, fewer latency rounds) so the whole file stays well under a minute on 2 cores.
Timings are never asserted; latency checks compare intervals and ratios with generous noise margins.
"""
from __future__ import annotations

import io
import json
import os
import re
import socket
import tempfile
import textwrap
import time

import numpy as np
import pytest

from tinytorch.data.loader import load_digits
from tinytorch.tito.olympics import grader, protocol, sandbox
from tinytorch.tito.olympics.grader import grade_all
from tinytorch.tito.olympics.protocol import predicted_labels, read_state_file, timing_check
from tinytorch.tito.olympics.sandbox import Limits

LIMITS = Limits(timeout_s=10, memory_bytes=2**30, latency_rounds=12, min_rounds=6, min_request_ms=5,
                latency_budget_s=3)
ALL_EVENTS = ["latency_sprint", "memory_challenge", "accuracy_contest", "all_around", "extreme_push"]

GOOD = """
from tinytorch.models.zoo import load_model

print("prints go to stderr, never into the grading channel")

def build_model():
    return load_model("digits_cnn")
"""
SUBMISSIONS = {   # id: (submission.py source, status expected)
    "good": (GOOD, "ok"),
    "infinite_loop": ("while True:\n    pass\n\ndef build_model():\n    return None\n", "timeout"),
    "memory_hog": ("""
import numpy as np
HOG = [np.empty(2**24) for _ in range(64)]  # 64 x 128 MiB of address space: far past the 1 GiB RLIMIT_AS

def build_model():
    return None
""", "out of memory"),
    "import_error": ("raise RuntimeError('boom at import')\n\ndef build_model():\n    return None\n", "crashed"),
    "wrong_shape": ("""
import numpy as np

def build_model():
    return lambda x: np.zeros((len(x), 3), np.float32)
""", "invalid"),
    "nan_outputs": ("""
import numpy as np

def build_model():
    return lambda x: np.full((len(x), 10), np.nan, np.float32)
""", "invalid"),
    "timer_cheat": ("""
import time
from tinytorch.models.zoo import load_model

_ns, _s = time.perf_counter_ns, time.perf_counter
time.perf_counter_ns = lambda: _ns() // 1000     # report every duration 1000 times shorter
time.perf_counter = lambda: _s() / 1000

def build_model():
    return load_model("digits_cnn")
""", "ok"),
    "writes_outside": ("""
from pathlib import Path
import tinytorch
from tinytorch.models.zoo import load_model

def build_model():
    for target in ({target!r}, tinytorch.__file__, "/etc/passwd", "/root/escaped.txt"):
        try:
            with open(target, "a") as handle:
                handle.write("I escaped")
        except OSError as exc:
            print("refused:", target, exc)
    return load_model("digits_cnn")
""", "ok"),
    "memoriser": ("""
from pathlib import Path
import numpy as np

LABELS = np.load(Path(__file__).parent / "labels.npy")   # the test labels in the data's own order

class Memoriser:
    def __init__(self):
        self.position = 0

    def __call__(self, x):                        # answers by position: right only if the order is kept
        out = LABELS[(self.position + np.arange(len(x))) % len(LABELS)]
        self.position += len(x)
        return out.astype(np.int64)

    def state_dict(self):
        return {"labels": LABELS}

def build_model():
    return Memoriser()
""", "invalid"),
}


def write_submission(root, name, source, events=("latency_sprint",), **meta):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "submission.py").write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    info = {"student_id": f"student_{name}", "events": list(events), "techniques": ["none"], "division": "closed", **meta}
    (folder / "submission.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every fixture submission graded in one grade_all run: (results, submissions root, out_dir, progress lines)."""
    base = tmp_path_factory.mktemp("olympics")
    root, out = base / "submissions", base / "out"
    for name, (source, _) in SUBMISSIONS.items():
        source = source.replace("{target!r}", repr(str(root / "escaped.txt")))
        events = ALL_EVENTS if name in ("good", "timer_cheat") else ("latency_sprint",)
        write_submission(root, name, source, events)
    np.save(root / "memoriser" / "labels.npy", load_digits("test").tensors[1].data)
    lines, private_tmp = [], base / "tmp"
    private_tmp.mkdir()
    with pytest.MonkeyPatch.context() as patch:      # sandboxes go here, so the test can see they are removed
        patch.setattr(tempfile, "tempdir", str(private_tmp))
        results = grade_all(root, out, progress=lines.append, limits=LIMITS, seed=7)
    return results, root, out, lines


# ------------------------------------------------------------------ the real grading run
def test_every_status_is_right(graded):
    results = graded[0]
    print("\n".join(graded[3]))
    got = {sub_id: record["status"] for sub_id, record in results["submissions"].items()}
    assert got == {name: status for name, (_, status) in SUBMISSIONS.items()}, \
        {k: results["submissions"][k]["reason"] for k in got}
    assert results["errors"] == []


def test_failure_reasons_name_the_cause(graded):
    subs = graded[0]["submissions"]
    assert "10 s limit" in subs["infinite_loop"]["reason"]
    assert "MemoryError" in subs["memory_hog"]["reason"]
    assert "RuntimeError" in subs["import_error"]["reason"] and "boom at import" in subs["import_error"]["reason"]
    assert "submission.py" in subs["import_error"]["reason"]            # the traceback's last lines
    assert "shape (64, 3)" in subs["wrong_shape"]["reason"]
    assert "NaN or infinite" in subs["nan_outputs"]["reason"]
    for failed in ("infinite_loop", "memory_hog", "import_error", "wrong_shape", "nan_outputs"):
        assert subs[failed]["scores"] == {} and subs[failed]["measurement"] is None
    assert sum(subs["writes_outside"]["measurement"]["correct"]) == 354   # its writes were refused: nothing to catch


def test_good_submission_matches_its_baseline(graded):
    record = graded[0]["submissions"]["good"]
    m, b = record["measurement"], record["baseline"]
    assert m["correct"] == b["correct"] and sum(m["correct"]) == 354 and len(m["correct"]) == 359  # the zoo's 354/359
    assert m["parameter_bytes"] == b["parameter_bytes"] == 24360                                 # 6090 float32
    assert m["serialized_bytes"] == b["serialized_bytes"] > 24360
    assert len(m["latency_ms"]) == len(b["latency_ms"]) >= LIMITS.min_rounds
    assert set(record["scores"]) == set(ALL_EVENTS)
    assert record["scores"]["memory_challenge"]["score"] == 1.0
    assert record["scores"]["accuracy_contest"]["score"] == pytest.approx(354 / 359)
    speed = record["scores"]["latency_sprint"]
    assert speed["low"] <= speed["score"] <= speed["high"] and 0.5 < speed["score"] < 2.0
    assert record["timing_check"]["flagged"] is False, record["timing_check"]
    assert record["isolation"]["network"] in (sandbox.NAMESPACE, sandbox.SOCKETS_BLOCKED)


def test_timer_patching_cheat_gains_nothing_and_is_flagged(graded):
    subs = graded[0]["submissions"]
    cheat, honest = subs["timer_cheat"], subs["good"]
    # The same model as the baseline, timed by the parent in interleaved rounds: per-round ratios stay near 1
    # (a believed self-report would have made it ~1000 times faster). Shared cores are noisy: margins are wide.
    rounds = np.array(cheat["baseline"]["latency_ms"]) / np.array(cheat["measurement"]["latency_ms"])
    assert 0.5 < np.median(rounds) < 2.0
    assert cheat["scores"]["latency_sprint"]["high"] < 10 and honest["scores"]["latency_sprint"]["high"] < 10
    check = cheat["timing_check"]
    assert check["flagged"] is True
    assert check["unexplained_ms"] > check["tolerance_ms"]
    assert check["worker_request_ms_median"] < check["parent_request_ms_median"] / 100
    assert any("patched" in reason for reason in check["reasons"])


def test_memorising_cheat_is_invalid(graded):
    """Answers by position: the shuffle makes them chance, and answers that depend on the call history differ
    between the timed calls and the same inputs predicted again: the timed model is not the scored one."""
    record = graded[0]["submissions"]["memoriser"]
    assert "depend on how it is called" in record["reason"] and record["scores"] == {}


def test_outside_writes_are_refused_and_the_package_is_unchanged(graded, package_digest):
    import tinytorch

    results, root, out, _ = graded
    if not sandbox.isolation_plan().jail:
        pytest.skip("no jail on this machine: the grader then only detects writes in the folders it watches")
    assert not (root / "escaped.txt").exists() and not list(out.glob("escaped*"))
    assert "I escaped" not in open(tinytorch.__file__).read() and "I escaped" not in open("/etc/passwd").read()
    assert package_digest() == package_digest.before


def test_results_json_round_trips(graded):
    results, _, out, _ = graded
    on_disk = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert on_disk == results
    assert on_disk["schema"] == grader.SCHEMA
    assert set(on_disk["rules"]) == set(ALL_EVENTS)
    assert on_disk["isolation"]["memory_limit_bytes"] == 2**30
    for sub_id, record in on_disk["submissions"].items():
        assert json.loads((out / "submissions" / f"{sub_id}.json").read_text()) == record
        assert record["content_sha256"] and len(record["content_sha256"]) == 64


def test_rankings_from_the_scores(graded):
    ranking = graded[0]["rankings"]
    sprint = {entry["id"]: entry for entry in ranking["latency_sprint"]}
    assert set(sprint) == {"good", "timer_cheat", "writes_outside"}
    assert sprint["good"]["rank"] is not None and sprint["good"]["medal"] in ("gold", "silver", "bronze")
    assert {e["id"] for e in ranking["memory_challenge"]} == {"good", "timer_cheat"}


def test_the_leaderboard_survives_every_failure(graded):
    from tinytorch.tito.olympics.leaderboard import render_leaderboard

    results, _, out, _ = graded
    written = render_leaderboard(out)
    markdown = written["md"].read_text(encoding="utf-8")
    for name, (_, status) in SUBMISSIONS.items():
        assert name in markdown and status in markdown
    assert written["html"].exists() and set(written["plots"]) == set(ALL_EVENTS)


def test_cli_handler(graded, tmp_path):
    import types

    root = tmp_path / "subs"
    write_submission(root, "crash", SUBMISSIONS["import_error"][0])
    lines = []
    args = types.SimpleNamespace(submissions=str(root), out=str(tmp_path / "out"), force=False, timeout=10)
    assert grader.cmd_olympics_grade(args, types.SimpleNamespace(root=tmp_path), lines.append) == 0
    assert lines[-1] == f"graded 1 submission(s): 1 crashed; results in {tmp_path / 'out' / 'results.json'}"


def test_sandboxes_are_cleaned_up(graded):
    assert list((graded[2].parent / "tmp").iterdir()) == []


# ------------------------------------------------------------------ idempotent re-runs
def test_rerun_keeps_unchanged_regrades_changed_and_loses_nothing(tmp_path):
    root, out = tmp_path / "subs", tmp_path / "out"
    write_submission(root, "a_crash", "raise ValueError('first')\ndef build_model():\n    return None\n")
    write_submission(root, "b_shape", SUBMISSIONS["wrong_shape"][0])
    first = grade_all(root, out, limits=LIMITS, seed=1)
    lines = []
    second = grade_all(root, out, limits=LIMITS, seed=1, progress=lines.append)
    assert sum("kept" in line for line in lines) == 2
    assert second["submissions"] == first["submissions"]
    (root / "a_crash" / "submission.py").write_text("raise ValueError('second')\ndef build_model():\n    return None\n")
    lines.clear()
    third = grade_all(root, out, limits=LIMITS, seed=1, progress=lines.append)
    assert "second" in third["submissions"]["a_crash"]["reason"]
    assert third["submissions"]["b_shape"] == first["submissions"]["b_shape"]
    assert sum("kept" in line for line in lines) == 1
    history = sorted(p.name for p in (out / "history").glob("results-*.json"))
    assert len(history) == 2                                     # both earlier results.json kept
    old = list((out / "history" / "submissions").glob("a_crash-*.json"))
    assert len(old) == 1 and "first" in json.loads(old[0].read_text())["reason"]
    forced = grade_all(root, out, limits=LIMITS, seed=1, force=True, progress=lines.append)
    assert forced["submissions"]["b_shape"]["graded_at"] >= first["submissions"]["b_shape"]["graded_at"]


def test_archives_are_unpacked_and_graded(tmp_path):
    from tinytorch.tito.olympics.submission import pack

    root, elsewhere = tmp_path / "subs", tmp_path / "src"
    root.mkdir()
    pack(write_submission(elsewhere, "zipped", SUBMISSIONS["import_error"][0]), root / "zipped.zip")
    (root / "broken.zip").write_bytes(b"not a zip at all")
    results = grade_all(root, tmp_path / "out", limits=LIMITS, seed=2)
    subs = results["submissions"]
    assert subs["zipped"]["status"] == "crashed" and "boom at import" in subs["zipped"]["reason"]
    assert subs["broken"]["status"] == "invalid" and "not a zip archive" in subs["broken"]["reason"]
    again = grade_all(root, tmp_path / "out", limits=LIMITS, seed=2)
    assert again["submissions"]["zipped"] == subs["zipped"]      # unchanged archive content: kept
    assert not list(tmp_path.glob("tmp*")) and (root / "zipped.zip").exists()


def test_malformed_previous_results_are_not_overwritten(tmp_path):
    root, out = tmp_path / "subs", tmp_path / "out"
    root.mkdir()
    out.mkdir()
    (out / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="results.json"):
        grade_all(root, out, limits=LIMITS)
    assert (out / "results.json").read_text() == "{not json"


@pytest.mark.parametrize("method", ["probed", "sockets"])
def test_network_is_unreachable(tmp_path, monkeypatch, method):
    if method == "sockets":     # the weaker fallback, as on a machine without usable network namespaces
        weak = sandbox.IsolationPlan(jail=False, userns=False, cgroups={}, mechanisms={"network": "sockets blocked"},
                                     missing=("forced by the test",))
        monkeypatch.setattr(sandbox, "isolation_plan", lambda: weak)
        monkeypatch.setattr(grader, "isolation_plan", lambda: weak)
        monkeypatch.setattr(grader, "network_method",
                            lambda: sandbox.NetworkIsolation(sandbox.SOCKETS_BLOCKED, (), "forced by the test"))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    write_submission(tmp_path, "net", f"""
import socket
socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"leak")

def build_model():
    return None
""")
    record = grader.grade_submission(tmp_path / "net", limits=LIMITS, seed=0)
    assert record["status"] == "crashed", record["reason"]
    if method == "sockets":
        assert record["isolation"]["network"] == sandbox.SOCKETS_BLOCKED
        assert "network access is disabled" in record["reason"]
    # In a network namespace 127.0.0.1 is the namespace's own loopback: nothing listens there
    assert any(word in record["reason"] for word in ("Network is unreachable", "network access is disabled",
                                                     "Connection refused")), record["reason"]
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()


def test_invalid_submission_json_is_invalid_without_running(tmp_path):
    folder = write_submission(tmp_path, "bad", GOOD, events=("no_such_event",))
    record = grader.grade_submission(folder, limits=LIMITS, seed=0)
    assert record["status"] == "invalid" and "no_such_event" in record["reason"]
    assert record["isolation"] is None             # never launched


# ------------------------------------------------------------------ pure parts, against hand-made inputs
def test_predicted_labels():
    scores = np.array([[0.1, 0.9] + [0] * 8, [2.0] + [0] * 9], np.float32)
    assert predicted_labels(scores, 2).tolist() == [1, 0]
    assert predicted_labels(np.array([3, 9]), 2).tolist() == [3, 9]
    for bad, words in ((np.zeros((2, 3)), "shape (2, 3)"), (np.array([0.0, 1.0]), "integer class labels"),
                       (np.array([1, 10]), "0..9"), (np.full((2, 10), np.inf), "NaN or infinite"),
                       (np.zeros((3, 10)), "batch of 2")):
        with pytest.raises(ValueError, match=re.escape(words)):
            predicted_labels(bad, 2)


def test_timing_check_numbers():
    rows = lambda gaps, wall=10_000_000: [(0, wall, g, wall - g) for g in gaps]   # worker window inside
    honest = {"sub": {"calls": 5, "rows": rows([300_000] * 4)}, "base": {"calls": 5, "rows": rows([200_000] * 4)}}
    check = timing_check(honest, [50_000] * 3)
    # the worker window is [g, wall - g]: gap = 2 g, 0.6 ms against the baseline's 0.4 ms
    assert check["unexplained_ms"] == pytest.approx(0.2) and check["gap_ms_median"] == pytest.approx(0.6)
    assert check["tolerance_ms"] == pytest.approx(1.0) and check["flagged"] is False
    assert check["ipc_ping_ms_median"] == pytest.approx(0.05)
    cheat = {**honest, "sub": {"calls": 5, "rows": [(0, 10_000_000, 10, 20)] * 4}}
    check = timing_check(cheat, [50_000])
    assert check["flagged"] and check["unexplained_ms"] == pytest.approx(9.99999 - 0.4)
    assert check["outside_parent_window"] == 0
    liar = {**honest, "sub": {"calls": 5, "rows": [(100, 200, 50, 300)] * 2}}   # claims more than the parent saw
    check = timing_check(liar, [1])
    assert check["worker_exceeds_parent"] == 2 and check["outside_parent_window"] == 2 and check["flagged"]


def test_read_state_file(tmp_path):
    path = tmp_path / "state.npz"
    np.savez(path, w=np.zeros((3, 4), np.float32), q=np.zeros(5, np.int8))
    got = read_state_file(path, 2**20)
    assert got == {"parameter_bytes": 3 * 4 * 4 + 5, "serialized_bytes": path.stat().st_size, "entries": 2}
    np.savez_compressed(tmp_path / "small.npz", w=np.zeros(1000))
    with pytest.raises(ValueError, match="compressed"):
        read_state_file(tmp_path / "small.npz", 2**20)
    np.savez(tmp_path / "obj.npz", o=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a valid np.savez"):
        read_state_file(tmp_path / "obj.npz", 2**20)
    os.symlink(path, tmp_path / "link.npz")
    with pytest.raises(ValueError, match="could not be opened"):
        read_state_file(tmp_path / "link.npz", 2**20)
    with pytest.raises(ValueError, match="at most 10 bytes"):
        read_state_file(path, 10)


def test_protocol_round_trip_and_refusals():
    read_fd, write_fd = os.pipe()
    try:
        protocol.send(write_fd, {"op": "predict", "seq": 3}, [np.arange(6, dtype=np.float32).reshape(2, 3)])
        header, arrays = protocol.recv(read_fd, time.perf_counter() + 5)
        assert header == {"op": "predict", "seq": 3} and arrays[0].tolist() == [[0, 1, 2], [3, 4, 5]]
        with pytest.raises(protocol.ChannelTimeout):
            protocol.recv(read_fd, time.perf_counter() + 0.05)
        os.write(write_fd, (10**9).to_bytes(8, "big"))
        with pytest.raises(protocol.ProtocolError, match="limit"):
            protocol.recv(read_fd, time.perf_counter() + 5)
    finally:
        os.close(read_fd)
        os.close(write_fd)
    with pytest.raises(TypeError, match="numeric"):
        protocol.encode({}, [np.array([object()])])
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(protocol.ProtocolError, match="allow_pickle=False"):
        protocol.decode_array(pickled.getvalue())
    with pytest.raises(protocol.ProtocolError, match="npy"):
        protocol.decode_array(b"\x80\x04pickle")


def test_snapshot_and_changes(tmp_path):
    (tmp_path / "a").write_text("1")
    (tmp_path / "skip").mkdir()
    before = sandbox.snapshot([tmp_path], skip=[tmp_path / "skip"])
    (tmp_path / "b").write_text("2")
    (tmp_path / "a").write_text("11")
    (tmp_path / "skip" / "ignored").write_text("x")
    after = sandbox.snapshot([tmp_path], skip=[tmp_path / "skip"])
    assert sandbox.changes(before, after) == [f"changed {tmp_path / 'a'}", f"created {tmp_path / 'b'}"]


def test_limits_are_checked():
    with pytest.raises(ValueError, match="timeout_s"):
        Limits(timeout_s=0)
    with pytest.raises(ValueError, match="512 MiB"):
        Limits(memory_bytes=2**20)
    with pytest.raises(ValueError, match="min_rounds"):
        Limits(latency_rounds=3, min_rounds=5)
    assert "timeout_s=60.0" in repr(Limits())


@pytest.mark.parametrize("source, status, words", [
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "out of memory", "SIGKILL (not sent by the grader)"),
    ("import os\nos._exit(3)\n", "crashed", "exit code 3"),
    ("import sys\nsys.exit(2)\n", "crashed", "sys.exit(2)"),
    ("def build_model():\n    return 42\n", "invalid", "not callable"),
    ("import os\nfor fd in range(3, 20):\n    try:\n        os.write(fd, b'\\xff' * 16)\n    except OSError:\n        pass\n",
     "invalid", "broke the grading protocol"),
    ("import numpy as np\ndef build_model():\n    return lambda x: np.zeros((len(x), 10), np.float32)\n",
     "constraint not met", "memory cannot be measured"),
])
def test_workers_that_die_or_misbehave(tmp_path, source, status, words):
    if "build_model" not in source:
        source += "\ndef build_model():\n    return None\n"
    record = grader.grade_submission(write_submission(tmp_path, "x", source), limits=LIMITS, seed=0)
    assert record["status"] == status and words in record["reason"], record["reason"]


def test_paused_worker_cannot_run(tmp_path):
    """While the baseline is measured the submission's worker is frozen (cgroup freezer: state D on cgroup v1)
    or stopped (SIGSTOP: state T), then resumed."""
    box = sandbox.Sandbox(label="test")
    worker = sandbox.WorkerProcess(box, ("zoo", "digits_cnn"), LIMITS, sandbox.network_method()).start()
    try:
        ready, _ = worker.receive(time.perf_counter() + 30)
        assert ready["type"] == "ready"
        pid = worker.init_pid if worker.jailed else worker.proc.pid
        pids = worker.cgroup.pids() if worker.cgroup is not None else [pid]
        state = lambda p: open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0]
        with worker.paused():
            time.sleep(0.05)
            frozen = worker.pause_method == "cgroup freezer"
            assert all(state(p) in (("D", "T") if frozen else ("T",)) for p in pids), [state(p) for p in pids]
            if frozen:
                assert open(os.path.join(worker.cgroup.folders["freezer"], "freezer.state")).read().strip() == "FROZEN"
        time.sleep(0.05)
        assert all(state(p) in ("S", "R") for p in pids)
        reply, _, _, _ = worker.request({"op": "ping"}, deadline=time.perf_counter() + 10)
        assert reply["type"] == "pong"
    finally:
        worker.stop()
        assert box.cleanup() is None
    assert worker.exit_description() == "exit code 0" and not box.root.exists()


def test_a_failing_baseline_is_retried_then_a_grader_error(tmp_path):
    root = tmp_path / "subs"
    write_submission(root, "fine", GOOD)
    with pytest.raises(grader.GraderError, match="baseline"):
        grader.grade_submission(root / "fine", baseline_name="no_such_model", limits=LIMITS, seed=0)
    lines = []
    results = grade_all(root, tmp_path / "out", limits=LIMITS, seed=0, baseline_name="no_such_model",
                        progress=lines.append)
    record = results["submissions"]["fine"]
    assert record["status"] == "grader error" and record["student_id"] == "student_fine"
    assert f"failed {grader.BASELINE_ATTEMPTS} times" in record["reason"] and "no_such_model" in record["reason"]
    assert sum("grading again with fresh workers" in line for line in lines) == grader.BASELINE_ATTEMPTS - 1
    assert [e["id"] for e in results["errors"]] == ["fine"] and "no_such_model" in results["errors"][0]["error"]
    again = grade_all(root, tmp_path / "out", limits=LIMITS, seed=0, progress=lines.append)
    assert again["submissions"]["fine"]["status"] == "ok"        # a grader error is never kept: graded again


# ------------------------------------------------------------------ hostile input never stops the class
def test_broken_submissions_beside_a_good_one_all_get_a_status(tmp_path, monkeypatch):
    """One good submission (one event, one latency session: the only one that runs) among every kind of broken
    input. Before the fix, the first one (a submission.json cut after its last line) raised IndexError out of
    grade_all and nobody was graded."""
    import zipfile
    from pathlib import Path

    from tinytorch.tito.olympics import submission

    root = tmp_path / "subs"
    good = write_submission(root, "good", GOOD)
    text = (good / "submission.json").read_text()
    write_submission(root, "a_truncated", GOOD)
    (root / "a_truncated" / "submission.json").write_text(text.replace(", ", ",\n")[:-1] + "\n")  # cut, ends in \n
    write_submission(root, "b_binary", GOOD)
    (root / "b_binary" / "submission.json").write_bytes(bytes(range(256)))
    write_submission(root, "c_empty", GOOD)
    (root / "c_empty" / "submission.json").write_bytes(b"")
    write_submission(root, "d_folder", GOOD)
    (root / "d_folder" / "submission.json").unlink()
    (root / "d_folder" / "submission.json").mkdir()
    with open(write_submission(root, "e_huge", GOOD) / "weights.bin", "wb") as handle:
        handle.truncate(2**40)                                  # sparse: 1 TiB that must never be read
    write_submission(root, "f_five", GOOD, events=("marathon",), division="x", techniques=5, student_id=3, colour=1)
    write_submission(root, "g_validator_bug", GOOD)
    write_submission(root, "h_grader_bug", GOOD)
    with zipfile.ZipFile(root / "i_bomb.zip", "w", zipfile.ZIP_DEFLATED) as bomb:   # 64 MiB of zeros in ~64 KB
        bomb.writestr("i_bomb/submission.py", GOOD)
        bomb.writestr("i_bomb/zeros.bin", bytes(64 * 2**20))
    real_validate, real_sandboxed = submission.validate, grader._sandboxed

    def validate(folder):
        if Path(folder).name == "g_validator_bug":
            raise KeyError("simulated bug in the validator")
        return real_validate(folder)

    def sandboxed(record, info, *args, **kwargs):
        if Path(info["folder"]).name == "h_grader_bug":
            raise AttributeError("simulated bug in the grader")
        return real_sandboxed(record, info, *args, **kwargs)

    monkeypatch.setattr(submission, "validate", validate)
    monkeypatch.setattr(grader, "_sandboxed", sandboxed)
    lines = []
    limits = Limits(timeout_s=10, memory_bytes=2**30, latency_rounds=6, min_rounds=3, min_request_ms=5,
                    latency_budget_s=2, latency_sessions=1)
    results = grade_all(root, tmp_path / "out", progress=lines.append, limits=limits, seed=3)
    subs = results["submissions"]
    assert {k: r["status"] for k, r in subs.items()} == {
        "good": "ok", "a_truncated": "invalid", "b_binary": "invalid", "c_empty": "invalid", "d_folder": "invalid",
        "e_huge": "invalid", "f_five": "invalid", "g_validator_bug": "invalid", "i_bomb": "invalid",
        "h_grader_bug": "grader error"}, \
        {k: r["reason"] for k, r in subs.items()}
    assert sum(subs["good"]["measurement"]["correct"]) == 354 and set(subs["good"]["scores"]) == {"latency_sprint"}
    lines_of = text.count(", ") + 1
    assert f"Expecting ',' delimiter at line {lines_of + 1}, column 1 (the file ends there)" in \
        subs["a_truncated"]["reason"]
    assert "submission.json is not UTF-8 text (bad byte at offset 128)" in subs["b_binary"]["reason"]
    assert "submission.json is empty" in subs["c_empty"]["reason"]
    assert "submission.json is a folder; it must be a file" in subs["d_folder"]["reason"]
    assert "the limit is 20971520 bytes" in subs["e_huge"]["reason"] and subs["e_huge"]["content_sha256"] is None
    assert "the validator failed on this submission (KeyError: 'simulated bug in the validator')" in \
        subs["g_validator_bug"]["reason"] and "KeyError" in subs["g_validator_bug"]["detail"]
    assert f"{64 * 2**20 + len(GOOD)} bytes uncompressed; the limit is 20971520" in subs["i_bomb"]["reason"]
    for name in subs:
        assert subs[name]["isolation"] is None or name == "good"    # none of the broken ones ever ran
    # The grader's own bug: "grader error" for that one (and errors: exit 1 in the CLI), every other one graded.
    assert [e["id"] for e in results["errors"]] == ["h_grader_bug"]
    assert "unexpected AttributeError while grading h_grader_bug: simulated bug in the grader" in results["errors"][0]["error"]
    # The progress line of a submission with 5 problems lists the first 3 and counts the rest.
    at = lines.index(next(line for line in lines if line.endswith("] f_five")))
    assert lines[at + 1].startswith("    invalid (") and lines[at + 1].endswith("f_five: 5 problems:")
    assert [line[:10] for line in lines[at + 2:at + 5]] == ["      - un", "      - \"s", "      - \"e"]
    assert lines[at + 5] == "      - and 2 more (`tito olympics submit` on the folder lists them all)"
    assert lines[at + 2] == ('      - unknown key "colour" in submission.json (valid keys: student_id, events, techniques, '
                             'division, name)')


def test_progress_lines_are_bounded():
    from tinytorch.tito.olympics.submission import SubmissionError

    error = SubmissionError("/s/x", [f"p{i}" for i in range(30)])
    record = {"status": "invalid", "reason": error.summary(grader.REASON_PROBLEMS), "wall_s": 0.01}
    assert grader.progress_lines(record) == ["    invalid (0.0 s): /s/x: 30 problems:", "      - p0", "      - p1",
                                             "      - p2", "      - and 27 more (`tito olympics submit` on the folder "
                                             "lists them all)"]
    assert record["reason"].splitlines()[-1] == "  - and 10 more"
    assert grader.progress_lines({"status": "ok", "reason": None, "wall_s": None}) == ["    ok"]
    one = {"status": "invalid", "reason": "/s/x: submission.py is missing", "wall_s": 0.0}
    assert grader.progress_lines(one) == ["    invalid (0.0 s): /s/x: submission.py is missing"]


# ------------------------------------------------------------------ a grader that is attacked or dies
def test_a_killed_baseline_is_graded_again(tmp_path, monkeypatch):
    """SIGKILL to the trusted baseline in the middle of a grading: the submission is graded again with fresh
    workers, and gets its own status; the retry is recorded and said."""
    from tinytorch.tito.olympics import session as session_module

    write_submission(tmp_path / "subs", "fine", GOOD)
    real, calls = session_module.Session.latency, []

    def latency(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            self.base.kill()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(session_module.Session, "latency", latency)
    lines = []
    results = grade_all(tmp_path / "subs", tmp_path / "out", limits=LIMITS, seed=0, progress=lines.append)
    record = results["submissions"]["fine"]
    assert record["status"] == "ok" and results["errors"] == []
    assert len(record["grader_retries"]) == 1 and "baseline worker failed" in record["grader_retries"][0]
    assert any(f"attempt 1 of {grader.BASELINE_ATTEMPTS}" in line for line in lines)


def test_after_the_grader_is_killed_the_next_run_cleans_up_and_resumes(tmp_path, monkeypatch):
    import signal
    import subprocess
    import sys

    root, out, private = tmp_path / "subs", tmp_path / "out", tmp_path / "tmp"
    private.mkdir()
    write_submission(root, "a_shape", SUBMISSIONS["wrong_shape"][0])
    write_submission(root, "b_sleeper", "import time\ntime.sleep(120)\n\ndef build_model():\n    return None\n")
    write_submission(root, "c_crash", SUBMISSIONS["import_error"][0])
    script = ("import sys; from tinytorch.tito.olympics.grader import grade_all; "
              "from tinytorch.tito.olympics.sandbox import Limits; "
              "grade_all(sys.argv[1], sys.argv[2], limits=Limits(timeout_s=100, memory_bytes=2**30), seed=0)")
    child = subprocess.Popen([sys.executable, "-c", script, str(root), str(out)], env={**os.environ, "TMPDIR": str(private)})
    try:
        end = time.time() + 60
        while time.time() < end and not (list(private.glob("tinytorch-olympics-submission-*"))
                                          and (out / "submissions" / "a_shape.json").exists()):
            time.sleep(0.1)
        time.sleep(1.0)                                          # the sleeper is being built now
        assert child.poll() is None, "the grader ended before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    partial = json.loads((out / "results.json").read_text())
    assert partial["complete"] is False and set(partial["pending"]) == {"b_sleeper", "c_crash"}
    assert partial["submissions"]["a_shape"]["status"] == "invalid"
    assert list(private.glob("tinytorch-olympics-*"))            # what the dead grader left behind
    lines = []
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    results = grade_all(root, out, limits=Limits(timeout_s=3, memory_bytes=2**30), seed=0, progress=lines.append)
    assert any(line.startswith("removed what a grader that died left behind: sandbox") for line in lines), lines
    assert any("unchanged since" in line and "kept" in line for line in lines)      # a_shape was not graded again
    assert {k: r["status"] for k, r in results["submissions"].items()} == {
        "a_shape": "invalid", "b_sleeper": "timeout", "c_crash": "crashed"}
    assert results["complete"] is True and list(private.iterdir()) == []
    assert len(results["stale_cleanup"]) >= 2
    for base in sandbox.cgroup_bases().values():
        if isinstance(base, str) and os.path.isdir(base):
            assert not [p for p in os.listdir(base) if p.startswith(f"w{child.pid}.")]


def test_require_isolation_refuses_and_writes_nothing(tmp_path, monkeypatch):
    import types

    from tinytorch.tito.tree import TitoError

    weak = sandbox.IsolationPlan(jail=False, userns=False, cgroups={}, mechanisms={}, missing=("no jail (forced)",))
    monkeypatch.setattr(grader, "isolation_plan", lambda: weak)
    monkeypatch.setattr(sandbox, "isolation_plan", lambda: weak)
    write_submission(tmp_path / "subs", "fine", GOOD)
    with pytest.raises(sandbox.SandboxError, match="no jail"):
        grade_all(tmp_path / "subs", tmp_path / "out", limits=LIMITS, require_isolation=True)
    assert not (tmp_path / "out").exists()
    args = types.SimpleNamespace(submissions=str(tmp_path / "subs"), out=str(tmp_path / "out"), force=False,
                                 timeout=None, data=None, entries="latest", require_isolation=True)
    with pytest.raises(TitoError, match="nothing was graded"):
        grader.cmd_olympics_grade(args, types.SimpleNamespace(root=tmp_path), print)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ private test data
def _digits():
    from tinytorch.benchmarking.harness import dataset_arrays

    return dataset_arrays(load_digits("test"))


def test_data_file_is_read_checked_and_recorded(tmp_path):
    import hashlib
    import types

    x, y = _digits()
    path = tmp_path / "private.npz"
    np.savez(path, inputs=x[:200], labels=y[:200])
    got_x, got_y, described = grader.load_data_file(path)
    assert got_x.shape == (200, 1, 8, 8) and np.array_equal(got_y, y[:200])
    assert described["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert described["public"] is False and described["rows"] == 200
    write_submission(tmp_path / "subs", "shape", SUBMISSIONS["wrong_shape"][0])
    args = types.SimpleNamespace(submissions=str(tmp_path / "subs"), out=str(tmp_path / "out"), force=False,
                                 timeout=10, data=str(path), entries="latest", require_isolation=False)
    lines = []
    assert grader.cmd_olympics_grade(args, types.SimpleNamespace(root=tmp_path), lines.append) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["data"] == json.loads(json.dumps(described))
    assert not any("public data" in line for line in lines)
    from tinytorch.tito.olympics.leaderboard import format_leaderboard

    assert "private.npz (200 rows, sha256 " in format_leaderboard(results)


@pytest.mark.parametrize("arrays, words", [
    ({"inputs": "X"}, "no array 'labels'"),
    ({"x": "X", "y": "y"}, "no array 'inputs' or 'labels' (it holds 'x', 'y')"),
    ({"inputs": "X", "labels": "y+10"}, "integers in 0..9"),
    ({"inputs": "X", "labels": "y[:5]"}, "one label per input row"),
    ({"inputs": "flat", "labels": "y"}, "the baseline digits_cnn cannot read these inputs of shape (64,)"),
    ({"inputs": "nan", "labels": "y"}, "NaN or infinite"),
    ({"inputs": "objects", "labels": "y"}, "not an .npz archive of plain arrays"),
])
def test_bad_data_files_are_one_clear_error(tmp_path, arrays, words):
    x, y = _digits()
    values = {"X": x[:20], "y": y[:20], "y+10": y[:20] + 10, "y[:5]": y[:5], "flat": x[:20].reshape(20, 64),
              "nan": np.full_like(x[:20], np.nan), "objects": np.array([{"a": 1}] * 20, dtype=object)}
    path = tmp_path / "bad.npz"
    np.savez(path, **{key: values[name] for key, name in arrays.items()})
    with pytest.raises(ValueError) as caught:
        grader.load_data_file(path)
    assert words in str(caught.value) and str(path) in str(caught.value)


def test_data_file_that_is_not_a_file(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for path, words in ((tmp_path / "missing.npz", "no such file"), (tmp_path, "a folder"),
                        (tmp_path / "junk.npz", "np.load can read")):
        with pytest.raises(ValueError, match=re.escape(words)):
            grader.load_data_file(path)
