"""The TorchPerf Olympics autograder: grade one submission, grade a folder of them, write the results.

One submission is graded by two workers (sandbox.py, worker.py): the submission's own, and a trusted one
running the baseline from the zoo. The parent keeps the labels and the clock it trusts:
- accuracy: the test inputs go out in an order shuffled by a Generator seeded per run (secret: drawn from
  the OS unless a seed is given), in batches; the parent un-shuffles the outputs and scores them;
- latency: A B A B ... requests "run N calls on this one input" to the submission and the baseline, N
  calibrated so a request lasts about Limits.min_request_ms; per-call ms = the PARENT's wall time / N. The
  worker's own timing is only cross-checked (timing_check);
- memory: the worker saves state_dict() with np.savez; the parent reads the file (allow_pickle=False) and
  counts parameter bytes (sum of nbytes) and serialized bytes (file size).
Statuses: ok, invalid, timeout, crashed, out of memory, constraint not met (scoring: eligible in no entered
event). Results: out_dir/results.json (SCHEMA), out_dir/submissions/<id>.json, earlier versions under
out_dir/history/. Scores come from tinytorch.capstone.scoring.

Limits of this design (say them to students and instructors):
- the default data is the public digits test split, so a submission can memorise answers by image content;
  the shuffle only defeats memorising by position. Pass a private split as `data=` for a real contest;
- the worker runs as the grader's user: writes are detected only in the watched folders (the submissions
  root, the output folder, the sandboxes); run the grader as an unprivileged user or in a container for
  untrusted code at scale;
- a process that calls setsid escapes the kill and the pause (no PID namespace);
- memory is what state_dict() declares: weights hidden elsewhere are not counted.
"""
from __future__ import annotations

import contextlib
import math
import re
import secrets
import shutil
import signal
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import protocol
from .sandbox import (EXIT_GRACE_S, SOCKETS_BLOCKED, Limits, Sandbox, SandboxError, WorkerProcess, changes, network_method,
                      snapshot)

SCHEMA = "tinytorch.olympics.results/1"
STATUSES = ("ok", "invalid", "timeout", "crashed", "out of memory", "constraint not met")
WORKER_STATUSES = ("invalid", "crashed", "out of memory")   # the only statuses a worker may claim for itself
NUM_CLASSES = 10
PINGS = 10
OOM_SIGNS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")
REASON_PROBLEMS = 20    # problems of an invalid submission kept in its record's reason (then "and N more")
PROGRESS_PROBLEMS = 3   # problems shown under its progress line


class GraderError(RuntimeError):
    """The grader or its trusted baseline failed: no status is given to the submission (re-grade it)."""


class Outcome(Exception):
    """A submission's final status, raised where it is decided: a one-line reason, and detail (the last
    traceback or output lines) when there is one."""

    def __init__(self, status, reason, detail=None):
        super().__init__(f"{status}: {reason}")
        self.status, self.reason, self.detail = status, reason, detail


def _int_ns(value):
    """value as an int of nanoseconds, or None when a worker sent something else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ----------------------------------------------------------------------------------- one grading session
class Session:
    """The exchanges of one grading: the baseline worker (trusted) and the submission's worker."""

    def __init__(self, base_box, sub_box, baseline_name, limits, network):
        self.limits, self.network = limits, network
        self.base = WorkerProcess(base_box, ("zoo", baseline_name), limits, network)
        self.sub = WorkerProcess(sub_box, ("submission", None), limits, network)
        self.stage, self.deadline = "starting", None

    def __repr__(self):
        return f"Session(stage={self.stage!r}, baseline={self.base!r}, submission={self.sub!r})"

    # -- talking to the trusted baseline: any failure is the grader's
    def base_call(self, header, arrays=()):
        try:
            with self.sub.paused():
                reply, out, t0, t1 = self.base.request(header, arrays, time.perf_counter() + self.limits.timeout_s)
        except (protocol.ProtocolError, protocol.ChannelTimeout, OSError) as exc:
            raise GraderError(f"the baseline worker failed while {self.stage}: {exc}; stderr: "
                              f"{self.base.stderr_tail()[-800:]}") from exc
        if reply.get("type") == "error":
            raise GraderError(f"the baseline worker reported {reply.get('reason')!r} while {self.stage}")
        return reply, out, t0, t1

    def start_baseline(self):
        """Start the baseline, wait for it, and measure its state file before the submission starts."""
        self.stage = "starting the baseline"
        self.base.start()
        try:
            ready, _ = self.base.receive(time.perf_counter() + self.limits.timeout_s)
        except (protocol.ProtocolError, protocol.ChannelTimeout) as exc:
            raise GraderError(f"the baseline worker did not start: {exc}; stderr: {self.base.stderr_tail()[-800:]}") from exc
        if ready.get("type") != "ready" or ready.get("state") != "saved":
            raise GraderError(f"the baseline worker did not start: {ready}")
        try:
            return protocol.read_state_file(self.base.sandbox.work / self.base.state_file, self.limits.max_state_bytes)
        except ValueError as exc:
            raise GraderError(f"the baseline's state_dict could not be measured: {exc}") from exc

    # -- talking to the submission: failures are its own
    def _died(self, exc):
        """The Outcome for a submission worker whose channel broke or closed."""
        if isinstance(exc, protocol.ChannelClosed):
            self.sub.wait(EXIT_GRACE_S)    # the channel closes a moment before the process is gone
        self.sub.stop(polite=False)
        tail = self.sub.stderr_tail().strip()
        lines = "\n".join(tail.splitlines()[-12:]) or None
        if isinstance(exc, protocol.ChannelClosed):
            ended = self.sub.exit_description()
            if self.sub.signal_number() == signal.SIGKILL and not self.sub.killed:
                return Outcome("out of memory", f"the worker was killed by SIGKILL (not sent by the grader) while "
                                                f"{self.stage}; the kernel's out-of-memory killer is the usual sender",
                               lines)
            if any(sign in tail for sign in OOM_SIGNS):
                return Outcome("out of memory", f"the worker ended ({ended}) while {self.stage}, reporting an "
                                                f"allocation failure under the {self.limits.memory_bytes}-byte limit",
                               lines)
            return Outcome("crashed", f"the worker ended ({ended}) while {self.stage} without answering", lines)
        return Outcome("invalid", f"broke the grading protocol while {self.stage}: {exc} (an oversized or malformed "
                                  f"reply, or bytes written to the grader's channel)")

    def _reply(self, reply):
        """reply, unless it is an error reply: then the Outcome the worker reported (only WORKER_STATUSES)."""
        if reply.get("type") != "error":
            return reply
        status = reply.get("status") if reply.get("status") in WORKER_STATUSES else "invalid"
        reason = " ".join(str(reply.get("reason", "no reason given")).split())[:600]
        raise Outcome(status, reason, str(reply["traceback"])[-3000:] if reply.get("traceback") else None)

    def _sub_wait(self, call):
        try:
            return call()
        except protocol.ChannelTimeout:
            self.sub.stop(polite=False)   # it is not listening: asking it to exit would only wait longer
            raise Outcome("timeout", f"no answer within the {self.limits.timeout_s:g} s limit "
                                     f"(stopped while {self.stage})") from None
        except (protocol.ProtocolError, OSError) as exc:
            raise self._died(exc) from None

    def sub_call(self, header, arrays=()):
        reply, out, t0, t1 = self._sub_wait(lambda: self.sub.request(header, arrays, self.deadline))
        return self._reply(reply), out, t0, t1

    def start_submission(self):
        """Start the submission's worker (the timeout clock starts here) and measure its state file."""
        self.stage = "importing submission.py and calling build_model()"
        self.sub.start()
        self.deadline = self.sub.started + self.limits.timeout_s
        ready = self._reply(self._sub_wait(lambda: self.sub.receive(self.deadline))[0])
        if ready.get("type") != "ready":
            raise Outcome("invalid", f"broke the grading protocol while {self.stage} (got {str(ready)[:200]})")
        if ready.get("state") != "saved":
            return {"parameter_bytes": None, "serialized_bytes": None,
                    "memory_note": str(ready.get("why", "no state_dict"))[:500]}
        try:
            return protocol.read_state_file(self.sub.sandbox.work / self.sub.state_file, self.limits.max_state_bytes)
        except ValueError as exc:
            raise Outcome("invalid", str(exc)) from None

    # -- the three measurements
    def accuracy(self, x, y, rng, classes):
        """(correct of the submission, correct of the baseline): 0/1 per example, in the data's order."""
        self.stage = "predicting the test inputs"
        order = rng.permutation(len(x))
        preds = {"sub": np.empty(len(x), np.int64), "base": np.empty(len(x), np.int64)}
        for start in range(0, len(x), self.limits.batch_size):
            rows = order[start:start + self.limits.batch_size]
            batch = np.ascontiguousarray(x[rows])
            _, out, _, _ = self.sub_call({"op": "predict"}, [batch])
            if len(out) != 1:
                raise Outcome("invalid", f"a predict reply must carry one array, got {len(out)}")
            try:
                preds["sub"][rows] = protocol.predicted_labels(out[0], len(rows), classes)
            except ValueError as exc:
                raise Outcome("invalid", str(exc)) from None
            _, out, _, _ = self.base_call({"op": "predict"}, [batch])
            preds["base"][rows] = protocol.predicted_labels(out[0], len(rows), classes)
        return [(preds[k] == y).astype(np.int64) for k in ("sub", "base")]

    def _timed(self, which, x1, calls):
        """One "time" request: (parent ns, worker-reported start, end) ."""
        call = self.sub_call if which == "sub" else self.base_call
        reply, _, t0, t1 = call({"op": "time", "calls": calls}, [x1])
        return t0, t1, _int_ns(reply.get("start_ns")), _int_ns(reply.get("end_ns"))

    def _calibrate(self, which, x1):
        """Calls per request so that one request lasts about min_request_ms by the parent's clock: grow the
        count until a request lasts that long, then scale it to the target, so the submission's and the
        baseline's requests last alike and the IPC cost is the same share of both."""
        target, calls = self.limits.min_request_ms * 1e6, 1
        while True:
            t0, t1, _, _ = self._timed(which, x1, calls)
            wall = max(t1 - t0, 1)
            if wall >= target or calls >= 10**7:
                return max(1, min(10**7, round(calls * target / wall)))
            calls = min(10**7, max(calls * 2, min(calls * 100, math.ceil(calls * 1.2 * target / wall))))

    def latency(self, x1):
        """Interleaved rounds: {"sub"|"base": {"calls", "rows": [(t0, t1, start, end), ...]}} and ping times."""
        self.stage = "timing single-sample calls"
        pings = []
        for _ in range(PINGS):
            _, _, t0, t1 = self.base_call({"op": "ping"})
            pings.append(t1 - t0)
        runs = {k: {"calls": self._calibrate(k, x1), "rows": []} for k in ("sub", "base")}
        begun = time.perf_counter()
        for round_ in range(self.limits.latency_rounds):
            if round_ >= self.limits.min_rounds and time.perf_counter() - begun > self.limits.latency_budget_s:
                break
            for k in ("sub", "base"):   # A B A B ...: drift on the machine hits both alike
                runs[k]["rows"].append(self._timed(k, x1, runs[k]["calls"]))
        return runs, pings

    def stop(self):
        for worker in (self.sub, self.base):
            worker.stop(polite=True)


def _per_call_ms(run):
    return [(t1 - t0) / run["calls"] / 1e6 for t0, t1, _, _ in run["rows"]]


# ----------------------------------------------------------------------------------- grading one submission
def _test_arrays(data):
    """(x float array, y int64 labels) from an (X, y) pair or a tinytorch Dataset; default: the digits test split."""
    from tinytorch.benchmarking.harness import dataset_arrays

    if data is None:
        from tinytorch.data.loader import load_digits

        data = load_digits("test")
    x, y = dataset_arrays(data)
    if y is None:
        raise ValueError("grading needs labelled test data: pass (X, y) or a labelled Dataset")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= NUM_CLASSES:
        raise ValueError(f"labels must be integers in 0..{NUM_CLASSES - 1}, got dtype {y.dtype}, range {y.min()}..{y.max()}")
    return np.ascontiguousarray(x), y.astype(np.int64)


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _traceback_tail(exc, lines=12):
    """The last lines of exc's traceback, for a record's detail."""
    import traceback

    return "\n".join("".join(traceback.format_exception(exc)).rstrip().splitlines()[-lines:])[-3000:]


def safe_id(folder):
    """A submission id usable as a file name: the folder name with anything but [A-Za-z0-9_.-] made '_'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(folder).name).lstrip(".") or "submission"


def content_digest(folder):
    """submission.content_sha256 of the folder, or None when it cannot be read (validation will say why;
    such a folder is re-graded every time)."""
    from .submission import SubmissionError, content_sha256

    try:
        return content_sha256(folder)
    except (SubmissionError, OSError):
        return None


def _new_record(folder, seed):
    """The record of a submission before grading: every key present, nothing measured yet."""
    return {"id": safe_id(folder), "student_id": None, "events": [], "techniques": [], "division": None,
            "status": None, "reason": None, "detail": None, "content_sha256": content_digest(folder),
            "graded_at": _now(), "wall_s": None, "shuffle_seed": seed, "isolation": None, "measurement": None,
            "baseline": None, "timing_check": None, "latency_method": None, "scores": {}}


def latency_method(runs, limits, timer):
    """How the latencies were measured (MEASUREMENT.md: clock, timer overhead, batching, threads, gc)."""
    from .sandbox import THREAD_VARIABLES

    return {"clock": "the grader's own time.perf_counter_ns, from sending a request to receiving its whole reply",
            "per_call_ms": "request wall time / calls per request (the worker's own timing is only cross-checked)",
            "calls_per_request": runs["sub"]["calls"], "baseline_calls_per_request": runs["base"]["calls"],
            "min_request_ms": limits.min_request_ms, "rounds": len(runs["sub"]["rows"]),
            "interleaving": "A B A B ...: one submission request, then one baseline request, per round",
            "timer_overhead_ns": timer.overhead_ns, "timer_resolution_ns": timer.resolution_ns,
            "includes": ("the IPC round trip of each request (timing_check.baseline_gap_ms_median), on both sides; "
                         "requests of equal length keep its share of the ratio equal"),
            "worker_threads": {name: "1" for name in THREAD_VARIABLES}, "gc": "enabled in the workers (normal use)",
            "baseline_protection": "the submission's process group is stopped (SIGSTOP) while the baseline runs"}


def _measure(new_session, x, y, rng):
    """Run the whole exchange: (measurement, baseline, timing_check, latency_method) or an Outcome raised.

    Latency is timed in Limits.latency_sessions sessions, each with a FRESH pair of worker processes: on a
    shared machine each process lands on its own memory layout and scheduling luck, which shifts its speed by
    several percent for its whole life, so one pair of processes cannot tell a real speed-up from the luck of
    the draw. The samples carry their session number (latency_session), and scoring resamples sessions."""
    from tinytorch.utils.timing import measure_timer

    session = new_session()
    try:
        base_sizes = session.start_baseline()
        sub_sizes = session.start_submission()
        correct, base_correct = session.accuracy(x, y, rng, NUM_CLASSES)
        x1 = np.ascontiguousarray(x[rng.integers(len(x))][None])
        sessions = [session.latency(x1)]
    finally:
        session.stop()
    for _ in range(1, session.limits.latency_sessions):
        session = new_session()
        try:
            session.start_baseline()
            session.start_submission()
            sessions.append(session.latency(x1))
        finally:
            session.stop()
    session.stage = "finishing"
    labels = [k for k, (runs, _) in enumerate(sessions) for _ in runs["sub"]["rows"]]
    measurement = {"correct": correct, "accuracy": float(correct.mean()),
                   "latency_ms": [v for runs, _ in sessions for v in _per_call_ms(runs["sub"])],
                   "latency_session": labels, **sub_sizes}
    baseline = {"correct": base_correct, "accuracy": float(base_correct.mean()),
                "latency_ms": [v for runs, _ in sessions for v in _per_call_ms(runs["base"])],
                "latency_session": labels, **base_sizes}
    runs, pings = sessions[0]
    method = latency_method(runs, session.limits, measure_timer())
    method.update(sessions=len(sessions), rounds=len(labels),
                  calls_per_request=[r["sub"]["calls"] for r, _ in sessions],
                  baseline_calls_per_request=[r["base"]["calls"] for r, _ in sessions])
    checks = [protocol.timing_check(r, p) for r, p in sessions]
    check = dict(checks[0], flagged=any(c["flagged"] for c in checks),
                 reasons=[reason for c in checks for reason in c["reasons"]], sessions=checks)
    return measurement, baseline, check, method


def grade_submission(folder, data=None, baseline_name="digits_cnn", limits=None, seed=None, rules=None, watch=()):
    """The record of one submission (see the module docstring), graded against baseline_name.

    data: (X, y) or a labelled Dataset (default: the digits test split). limits: sandbox.Limits.
    seed: the shuffle's seed; None draws a fresh secret one (recorded), which is what grading should use,
    since a fixed, published seed would let a submission predict the order. rules: {event: EventRules}
    overriding DEFAULT_RULES. watch: extra folders where any change counts as a write outside the
    submission's folder (the submissions root and the sandboxes are always watched).
    Raises GraderError when the grader or the baseline fails (the submission gets no status then)."""
    limits = Limits() if limits is None else limits
    x, y = _test_arrays(data)
    seed = secrets.randbits(63) if seed is None else seed
    folder, begun = Path(folder), time.perf_counter()
    record = _new_record(folder, seed)
    try:
        from .submission import SubmissionError, validate

        try:
            info = validate(folder)
        except SubmissionError as exc:
            raise Outcome("invalid", exc.summary(REASON_PROBLEMS)) from None
        except Exception as exc:   # a bug in the validator must cost this submission only, and say so
            raise Outcome("invalid", f"the validator failed on this submission ({type(exc).__name__}: "
                                     f"{str(exc)[:300]}); nothing of it ran. This is a bug in tito: report it, "
                                     f"with the submission", _traceback_tail(exc)) from None
        record.update({k: info[k] for k in ("id", "student_id", "events", "techniques", "division")})
        _sandboxed(record, info["folder"], x, y, baseline_name, limits, seed, watch)
    except Outcome as outcome:
        record.update(status=outcome.status, reason=outcome.reason, detail=outcome.detail)
    record["wall_s"] = round(time.perf_counter() - begun, 3)
    return apply_scores(record, rules)


def _sandboxed(record, folder, x, y, baseline_name, limits, seed, watch):
    """Measure the submission in its sandbox; fills record (status "ok" for now) or raises Outcome."""
    network = network_method()
    record["isolation"] = {"network": network.method, "network_command": network.to_dict()["command"],
                           "memory_limit_bytes": limits.memory_bytes}
    boxes = []
    try:
        boxes = [Sandbox(None, "baseline"), Sandbox(folder, "submission")]
        skip = set().union(*(box.own_paths() for box in boxes))
        watched = list(dict.fromkeys(str(p) for p in [folder.parent, *watch, *(box.root for box in boxes)]))
        before = snapshot(watched, skip)
        outcome = None
        try:
            measured = _measure(lambda: Session(boxes[0], boxes[1], baseline_name, limits, network), x, y,
                                np.random.default_rng(seed))
            record.update(zip(("measurement", "baseline", "timing_check", "latency_method"), measured))
        except Outcome as found:
            outcome = found
        written = changes(before, snapshot(watched, skip))
        if written:
            shown = "; ".join(written[:5]) + (f"; and {len(written) - 5} more" if len(written) > 5 else "")
            also = f" (it also ended with {outcome.status}: {outcome.reason})" if outcome else ""
            raise Outcome("invalid", f"wrote outside its folder: {shown}{also}")
        if outcome is not None:
            raise outcome
        record.update(status="ok", reason=None)
    except SandboxError as exc:
        raise GraderError(str(exc)) from exc
    finally:
        notes = [note for note in (box.cleanup() for box in boxes) if note]
        if notes:
            record["cleanup"] = "; ".join(notes)


# ----------------------------------------------------------------------------------- scoring
def rules_table(rules=None):
    """{event value: EventRules}: DEFAULT_RULES, with rules {event: EventRules or overrides dict} applied."""
    from tinytorch.capstone.events import DEFAULT_RULES, EventRules, parse_event, rules_for

    table = {event.value: rule for event, rule in DEFAULT_RULES.items()}
    for key, value in (rules or {}).items():
        event = parse_event(key)
        table[event.value] = value if isinstance(value, EventRules) else rules_for(event, value)
    return table


def _unscoreable(measurement):
    """Why the measurement cannot be scored (memory not countable), or None."""
    if measurement.get("parameter_bytes") is None:
        return f"memory cannot be measured: {measurement.get('memory_note', 'no state_dict')}"
    if measurement["parameter_bytes"] <= 0:
        return "state_dict() declares no parameters (0 bytes), so no compression ratio exists; return the real weights"
    return None


def apply_scores(record, rules=None):
    """record with "scores" {event: event_score} for its entered events, and status "constraint not met"
    (with the reasons) when it is eligible in none of them. Pure: the same record and rules give the same scores."""
    from tinytorch.capstone.scoring import event_score

    if record["status"] not in ("ok", "constraint not met"):
        record["scores"] = {}
        return record
    table, why = rules_table(rules), _unscoreable(record["measurement"])
    if why:
        record.update(scores={}, status="constraint not met", reason=f"not scored in any event: {why}")
        return record
    scores = {event: event_score(event, record["measurement"], record["baseline"], table[event])
              for event in record["events"]}
    record["scores"] = scores
    failed = [f"{event}: {score['reason']}" for event, score in scores.items() if not score["eligible"]]
    if len(failed) == len(scores):
        record.update(status="constraint not met", reason="; ".join(failed))
    else:
        ok = len(scores) - len(failed)
        record.update(status="ok", reason="; ".join([f"eligible in {ok} of the {len(scores)} events entered"]
                                                    + [f"not eligible in {f}" for f in failed]))
    return record


def rankings(records):
    """{event value: ranked entries with medals} over the records that were scored in that event."""
    from tinytorch.capstone.scoring import medals, rank

    board = {}
    for event in rules_table():
        entries = [{"id": r["id"], "student_id": r["student_id"], **{k: r["scores"][event][k] for k in
                    ("score", "low", "high", "tiebreak", "eligible", "reason")}}
                   for r in records.values() if event in r.get("scores", {})]
        board[event] = medals(rank(entries, event)) if entries else []
    return board


# ----------------------------------------------------------------------------------- grading a folder
def _stamp(iso):
    """A file-name-safe form of an ISO timestamp: 2026-01-02T03:04:05+00:00 -> 20260102T030405Z."""
    return re.sub(r"[^0-9T]", "", str(iso).split("+")[0]) + "Z"


def _keep_history(path, history_dir, stamp):
    """Copy the file at path into history_dir (never overwriting) before path is replaced; returns the copy."""
    from tinytorch.benchmarking.reporting import atomic_write_bytes
    from ..fsutil import unique_path

    history_dir.mkdir(parents=True, exist_ok=True)
    copy = unique_path(history_dir, f"{path.stem}-{_stamp(stamp)}", path.suffix)
    return atomic_write_bytes(copy, path.read_bytes(), overwrite=False)


def load_results(path):
    """The results dict in path (SCHEMA checked); ValueError naming the file and the problem."""
    import json

    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the grading results ({exc}); move it away to start afresh") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("submissions"), dict):
        raise ValueError(f"{path}: not a grading results file (schema {SCHEMA!r} with 'submissions' expected); "
                         f"move it away to start afresh")
    return doc


def _write_record(out_dir, record, previous):
    """out_dir/submissions/<id>.json, keeping a differing earlier version under out_dir/history/submissions/."""
    from tinytorch.benchmarking.reporting import atomic_write_json, to_jsonable

    path = out_dir / "submissions" / f"{record['id']}.json"
    if path.exists():
        if previous is not None and to_jsonable(record) == to_jsonable(previous):
            return path
        _keep_history(path, out_dir / "history" / "submissions", (previous or {}).get("graded_at", _now()))
    return atomic_write_json(path, record, overwrite=True)


def submission_entries(submissions_dir, out_dir=None):
    """What submissions_dir holds to grade, sorted: sub-folders and .zip archives (`tito olympics submit`
    makes them); hidden entries, caches and out_dir are skipped."""
    root = Path(submissions_dir)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder: pass the folder that holds one sub-folder (or .zip) per submission")
    skip = Path(out_dir).resolve() if out_dir is not None else None
    return sorted(p for p in root.iterdir() if not p.name.startswith((".", "__")) and p.resolve() != skip
                  and (p.is_dir() or (p.is_file() and p.suffix == ".zip")))


@contextlib.contextmanager
def opened(entry):
    """The folder to grade for entry: the folder itself, or an archive safely unpacked (submission.unpack)
    into a temporary folder that is removed afterwards. SubmissionError when it cannot be unpacked."""
    if Path(entry).is_dir():
        yield Path(entry)
        return
    from .submission import unpack

    staging = Path(tempfile.mkdtemp(prefix="tinytorch-olympics-unpack-"))
    try:
        yield unpack(entry, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _isolation(limits):
    network = network_method()
    return {"network": network.method, "network_command": network.to_dict()["command"],
            "network_detail": network.detail, "memory_limit_bytes": limits.memory_bytes,
            "memory_method": "RLIMIT_AS in each worker (Linux)", "file_size_limit_bytes": limits.file_bytes,
            "filesystem": ("each worker runs on a private temporary copy (cwd, HOME, TMPDIR); writes are detected in "
                           "the submissions folder, out_dir and the sandboxes only: elsewhere they are not seen "
                           "without OS isolation (run the grader as an unprivileged user or in a container)"),
            "weaker": network.method == SOCKETS_BLOCKED}


def _stem(entry):
    """The path an entry's id comes from: a folder itself, an archive without its .zip."""
    return entry.with_suffix("") if entry.suffix == ".zip" and entry.is_file() else entry


def _grade_entry(entry, kept, force, grading, say):
    """(id, record, error) for one folder or archive: its earlier record kept when unchanged, else graded;
    error is set (and record is the earlier one, or None) when the grader itself failed. Never raises
    (but for KeyboardInterrupt): whatever one submission holds, the others are graded."""
    from .submission import SubmissionError

    sub_id = safe_id(_stem(entry))
    try:
        with opened(entry) as folder:
            sub_id, digest = safe_id(folder), content_digest(folder)
            if kept is not None and kept["id"] != sub_id:
                kept = None
            if kept is not None and not force and digest is not None and kept.get("content_sha256") == digest:
                say(f"    unchanged since {kept.get('graded_at')}: kept")
                return sub_id, apply_scores(dict(kept), grading["rules"]), None
            try:
                return sub_id, grade_submission(folder, **grading), None
            except GraderError as exc:
                return sub_id, kept, str(exc)
    except SubmissionError as exc:   # an archive that cannot be unpacked safely: nothing of it ever ran
        record = _new_record(_stem(entry), grading["seed"])
        record.update(status="invalid", reason=exc.summary(REASON_PROBLEMS))
        return record["id"], record, None
    except Exception as exc:   # a bug in the grader: no new status for this one, and the others are graded
        import traceback

        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return sub_id, kept, (f"unexpected {type(exc).__name__} while grading {Path(entry).name}: {str(exc)[:300]} "
                              f"(raised at {Path(frame.filename).name}:{frame.lineno} in {frame.name}; a bug in "
                              f"tito: report it, with the submission)")


def progress_lines(record, shown=PROGRESS_PROBLEMS):
    """The progress lines of a graded record: its status and the first line of its reason, then (for an
    invalid submission) its first `shown` problems, indented, and "and N more"."""
    first, *rest = (record.get("reason") or "").splitlines() or [""]
    wall = f" ({record['wall_s']:.1f} s)" if record.get("wall_s") is not None else ""
    lines = [f"    {record['status']}{wall}" + (f": {first}" if first else "")]
    problems = [line[4:] for line in rest if line.startswith("  - ") and not re.fullmatch(r"  - and \d+ more", line)]
    counted = re.search(r"(\d+) problems:$", first)
    total = int(counted[1]) if counted else len(problems)
    lines += [f"      - {problem}" for problem in problems[:shown]]
    if total > min(shown, len(problems)):
        lines.append(f"      - and {total - min(shown, len(problems))} more (`tito olympics submit` on the folder lists them all)")
    return lines


def grade_all(submissions_dir, out_dir, force=False, progress=None, data=None, limits=None, seed=None,
              baseline_name="digits_cnn", rules=None):
    """Grade every submission (folder or .zip) in submissions_dir; write out_dir/results.json (SCHEMA,
    atomic) and out_dir/submissions/<id>.json; return the results dict (what results.json holds).

    Idempotent: a submission whose content_sha256 matches its earlier record keeps that record (re-scored
    with the current rules, which is deterministic) unless force=True. Nothing earlier is lost: replaced
    files are first copied to out_dir/history/. progress: a function called with lines of progress.
    seed: None gives each submission a fresh secret shuffle seed; an int derives them deterministically."""
    from tinytorch.benchmarking.reporting import atomic_write_json, to_jsonable
    from tinytorch.benchmarking.results import system_info

    limits, say, out_dir = Limits() if limits is None else limits, progress or (lambda line: None), Path(out_dir)
    entries = submission_entries(submissions_dir, out_dir)
    results_path = out_dir / "results.json"
    previous = load_results(results_path) if results_path.exists() else None
    old = previous["submissions"] if previous else {}
    data, records, errors = _test_arrays(data), {}, []
    seeds = np.random.SeedSequence(seed).spawn(len(entries)) if seed is not None else [None] * len(entries)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, (entry, child) in enumerate(zip(entries, seeds), start=1):
        say(f"[{i}/{len(entries)}] {entry.name}")
        grading = {"data": data, "baseline_name": baseline_name, "limits": limits, "rules": rules,
                   "seed": None if child is None else int(child.generate_state(1, np.uint64)[0] >> 1),
                   "watch": [out_dir, Path(submissions_dir)]}
        sub_id, record, error = _grade_entry(entry, old.get(safe_id(_stem(entry))), force, grading, say)
        if sub_id in records:
            errors.append({"id": sub_id, "error": f"{entry.name}: a second submission with the id {sub_id}; "
                                                  f"rename the folder or archive"})
            continue
        if error is not None:
            errors.append({"id": sub_id, "error": error})
            say(f"    grader error (no new status; re-run to retry): {error}")
        if record is None:
            continue
        records[sub_id] = to_jsonable(record)
        if error is None:
            for line in progress_lines(record):
                say(line)
        _write_record(out_dir, records[sub_id], old.get(sub_id))
    doc = {"schema": SCHEMA, "created": _now(), "environment": system_info(), "limits": limits.to_dict(),
           "isolation": _isolation(limits), "baseline": baseline_name,
           "rules": {event: rule.to_dict() for event, rule in rules_table(rules).items()},
           "submissions": records, "rankings": rankings(records), "errors": errors,
           "removed": sorted(set(old) - set(records) - {e["id"] for e in errors})}
    if previous is not None:
        _keep_history(results_path, out_dir / "history", previous.get("created", _now()))
    atomic_write_json(results_path, doc, overwrite=True)
    return to_jsonable(doc)


def cmd_olympics_grade(args, tree, say) -> int:
    """`tito olympics grade SUBMISSIONS [--out DIR] [--force] [--timeout S]`: grade, write, summarise.
    Exit 0 when every submission got a status (whatever it is); 1 when the grader itself failed on some, or
    DIR holds a damaged results.json; 2 for bad arguments (SUBMISSIONS missing or not a folder, --out a file,
    --timeout not a positive number of seconds)."""
    from ..tree import TitoError, UsageError

    root = Path(args.submissions)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise UsageError(f"{root} {what}: pass the folder that holds one sub-folder (or .zip) per submission")
    out = Path(args.out) if getattr(args, "out", None) else tree.root / "results" / "olympics"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder: give the grading folder (it is created if needed)")
    timeout = getattr(args, "timeout", None)
    if timeout is not None and not 0 < timeout < float("inf"):
        raise UsageError(f"--timeout {timeout:g}: give the wall-clock seconds each submission may run, a number > 0")
    limits = Limits(timeout_s=timeout) if timeout is not None else Limits()
    try:
        results = grade_all(root, out, force=bool(getattr(args, "force", False)), progress=say, limits=limits)
    except ValueError as exc:   # a damaged results.json from an earlier grading: it is never overwritten
        raise TitoError(str(exc)) from exc
    except OSError as exc:
        raise TitoError(f"cannot write the grading results in {out}: {exc}") from exc
    counts = {}
    for record in results["submissions"].values():
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    say(f"graded {len(results['submissions'])} submission(s): "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + f"; results in {out / 'results.json'}")
    for error in results["errors"]:
        say(f"grader error on {error['id']}: {error['error']}")
    return 1 if results["errors"] else 0
