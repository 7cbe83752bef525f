"""The TorchPerf Olympics autograder: grade one submission, grade a folder of them, write the results.

One submission is graded by two workers (sandbox.py launches them, worker.py runs in them): the submission's
own, and a trusted one running the baseline from the zoo. Where the machine allows it (sandbox.isolation_plan)
each worker runs jailed: its own unprivileged uid, PID/mount/network/IPC namespaces, a read-only package and
system, a private /tmp, cgroups for memory (descendants included), process count, CPU and freezing, and a
CPU-time limit. What each run had is recorded (results "isolation", each record's "isolation").
The exchange itself is session.py: the parent keeps the labels and the clock it trusts (accuracy on secretly
shuffled inputs; latency on fresh, distinct inputs, A/B interleaved, cross-checked against an ordinary
prediction; memory from the declared state, which must be what computes the outputs, and never less than
the arrays the model holds or the weight data in its folder).
Statuses: ok, invalid, timeout, crashed, out of memory, constraint not met (scoring: eligible in no entered
event), grader error (the grader or its trusted baseline failed BASELINE_ATTEMPTS times: graded again next
run). Results: out_dir/results.json (SCHEMA, rewritten after every submission), out_dir/submissions/<id>.json,
earlier versions under out_dir/history/. Scores come from tinytorch.capstone.scoring; one entry per student
per event counts (entries.py). docs/grading.md holds the threat model: what this defends against, and what not.
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
from .sandbox import Limits, Sandbox, SandboxError, changes, isolation_plan, network_method, snapshot
from .session import NOISE, STATE_CHECK_ROWS, GraderError, Outcome, Session, TimedInputs, timed_accuracy_check

SCHEMA = "tinytorch.olympics.results/1"
STATUSES = ("ok", "invalid", "timeout", "crashed", "out of memory", "constraint not met", "grader error")
BASELINE_ATTEMPTS = 3   # a submission is graded again (fresh workers) when the trusted baseline failed
REASON_CHARS, DETAIL_CHARS, ERROR_CHARS = 4000, 8000, 300   # stored texts are cut (and cleaned) to these
NUM_CLASSES = 10
REASON_PROBLEMS = 20    # problems of an invalid submission kept in its record's reason (then "and N more")
PROGRESS_PROBLEMS = 3   # problems shown under its progress line


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
            "per_call_ms": (f"request wall time / calls per request; one call = one batch of {limits.batch_size} "
                            f"distinct inputs (the worker's own timing is only cross-checked)"),
            "batch_size": limits.batch_size,
            "inputs": (f"test rows drawn with the run's secret seed plus Gaussian noise of {NOISE:g} x the inputs' "
                       f"standard deviation: every timed input is new, so no answer can be looked up"),
            "cross_check": ("the outputs of timed calls are compared with the same inputs predicted again in one "
                            "batch at the end of each session"),
            "calls_per_request": runs["sub"]["calls"], "baseline_calls_per_request": runs["base"]["calls"],
            "min_request_ms": limits.min_request_ms, "rounds": len(runs["sub"]["rows"]),
            "interleaving": "A B B A ...: one submission and one baseline request per round, the first side alternating",
            "timer_overhead_ns": timer.overhead_ns, "timer_resolution_ns": timer.resolution_ns,
            "includes": ("the IPC round trip of each request (timing_check.baseline_gap_ms_median), on both sides; "
                         "requests of equal length keep its share of the ratio equal"),
            "worker_threads": {name: "1" for name in THREAD_VARIABLES}, "gc": "enabled in the workers (normal use)",
            "baseline_protection": "the submission's worker is frozen while the baseline runs"}


def worker_cpus():
    """The one CPU both workers of a grading run on (the last this process may use): the submission and the
    baseline are timed on the same core, and the grader's own work lands elsewhere when there is more than one."""
    import os

    try:
        return [max(os.sched_getaffinity(0))]
    except (AttributeError, OSError, ValueError):
        return None


def _per_call_ms(run):
    """Per-call milliseconds of each request of a timed run: the parent's wall time / calls per request."""
    return [(t1 - t0) / run["calls"] / 1e6 for t0, t1, _, _ in run["rows"]]


def _counted_memory(sizes, census, info):
    """The measurement's memory keys: parameter_bytes counts the largest of the declared state, the arrays
    the model holds (census) and the weight data in the submission's files; each figure is recorded."""
    files = int(info.get("data_bytes") or 0) + int(info.get("embedded_bytes") or 0)
    reachable = (census or {}).get("reachable_array_bytes") or 0
    figures = {"declared state_dict()": sizes["parameter_bytes"], "arrays the model holds": reachable,
               "weight data in the submission's files": files}
    counted = max(figures, key=lambda k: (figures[k], k == "declared state_dict()"))
    return {"parameter_bytes": figures[counted], "serialized_bytes": max(sizes["serialized_bytes"], files),
            "memory": {"counted": counted, "declared_state_bytes": sizes["parameter_bytes"],
                       "declared_entries": sizes["entries"], "reachable_array_bytes": reachable,
                       "census_complete": (census or {}).get("complete"),
                       "folder_data_bytes": int(info.get("data_bytes") or 0),
                       "embedded_literal_bytes": int(info.get("embedded_bytes") or 0),
                       "method": ("parameter_bytes = max(declared state_dict() arrays, arrays reachable from the "
                                  "model and its module, weight files + large literals in the folder)")}}


def _measure(new_session, x, y, rng, info, limits):
    """Run the whole exchange: (measurement, baseline, timing_check, latency_method) or an Outcome raised.

    Latency is timed in Limits.latency_sessions sessions, each with a FRESH pair of worker processes: on a
    shared machine each process lands on its own memory layout and scheduling luck, which shifts its speed by
    several percent for its whole life, so one pair of processes cannot tell a real speed-up from the luck of
    the draw. The samples carry their session number (latency_session), and scoring resamples sessions.
    The state check (the declared state computes the outputs) runs in the last session's fresh worker."""
    from tinytorch.utils.timing import measure_timer

    inputs, check_rows = TimedInputs(x, rng), rng.choice(len(x), size=min(STATE_CHECK_ROWS, len(x)), replace=False)
    session = new_session()
    try:
        base_sizes, (sub_sizes, memory_note, names, arrays) = session.start()
        correct, base_correct, raw = session.accuracy(x, y, rng, NUM_CLASSES)
        census = session.census() if sub_sizes else None
        sessions = [session.latency(inputs, NUM_CLASSES)]
        kept_rows = session.kept
    finally:
        session.stop()
    state_check = None
    for k in range(1, max(limits.latency_sessions, 2 if names else 1)):
        session = new_session()
        try:
            session.start()
            if k < limits.latency_sessions:
                sessions.append(session.latency(inputs, NUM_CLASSES))
                kept_rows += session.kept
            if names and k == max(limits.latency_sessions, 2) - 1:
                state_check = session.state_check(names, arrays, x[check_rows], y[check_rows], raw[check_rows], rng,
                                                  NUM_CLASSES)
        finally:
            session.stop()
    kept = list(kept_rows)
    timed_check = timed_accuracy_check(kept, y, correct)
    if timed_check["failed"]:
        raise Outcome("invalid", f"the timed model is not the scored model: on {timed_check['rows']} timed inputs (test "
                                 f"rows plus a little noise) it is right {timed_check['accuracy_on_timed_inputs']:.1%} "
                                 f"of the time, on the same rows as scored {timed_check['accuracy_on_the_same_rows_scored']:.1%}"
                                 f" (answers looked up by content, or a fast path for unseen inputs)")
    labels = [k for k, (runs, _) in enumerate(sessions) for _ in runs["sub"]["rows"]]
    memory = _counted_memory(sub_sizes, census, info) if sub_sizes else \
        {"parameter_bytes": None, "serialized_bytes": None, "memory_note": memory_note}
    if state_check is not None:
        memory.setdefault("memory", {})["state_check"] = state_check
    memory["timed_accuracy_check"] = timed_check
    measurement = {"correct": correct, "accuracy": float(correct.mean()),
                   "latency_ms": [v for runs, _ in sessions for v in _per_call_ms(runs["sub"])],
                   "latency_session": labels, **memory}
    baseline = {"correct": base_correct, "accuracy": float(base_correct.mean()),
                "latency_ms": [v for runs, _ in sessions for v in _per_call_ms(runs["base"])],
                "latency_session": labels, **{k: base_sizes[k] for k in ("parameter_bytes", "serialized_bytes")}}
    runs, pings = sessions[0]
    method = latency_method(runs, limits, measure_timer())
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
        _sandboxed(record, info, x, y, baseline_name, limits, seed, watch)
    except Outcome as outcome:
        record.update(status=outcome.status, reason=outcome.reason, detail=outcome.detail)
    record["wall_s"] = round(time.perf_counter() - begun, 3)
    return apply_scores(_cleaned(record), rules)


def _cleaned(record):
    """record with its texts made safe to store and show (safetext: no control characters, bounded)."""
    from . import safetext

    for key, limit in (("reason", REASON_CHARS), ("detail", DETAIL_CHARS)):
        if record.get(key) is not None:
            record[key] = safetext.clean_block(str(record[key]), limit)
    for key in ("student_id", "division"):
        if isinstance(record.get(key), str):
            record[key] = safetext.clean(record[key], 200)
    return record


def _sandboxed(record, info, x, y, baseline_name, limits, seed, watch):
    """Measure the submission in its sandbox; fills record (status "ok" for now) or raises Outcome."""
    folder = info["folder"]
    network, plan = network_method(), isolation_plan()
    record["isolation"] = {"complete": plan.complete, "missing": list(plan.missing), "network": network.method,
                           "memory_limit_bytes": limits.memory_bytes}
    boxes = []
    try:
        boxes = [Sandbox(None, "baseline"), Sandbox(folder, "submission", files=info["files"])]
        # Without a jail the worker sees the grader's files: writes to the folders that matter are looked for.
        # In a jail it sees none of them (its only writable folder is a private /tmp), so nothing is walked.
        skip = set().union(*(box.own_paths() for box in boxes))
        watched = [] if plan.jail else \
            list(dict.fromkeys(str(p) for p in [folder.parent, *watch, *(box.root for box in boxes)]))
        before = snapshot(watched, skip)
        outcome = None
        try:
            cpus = worker_cpus()
            measured = _measure(lambda: Session(boxes[0], boxes[1], baseline_name, limits, network, cpus), x, y,
                                np.random.default_rng(seed), info, limits)
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


def rankings(records, policy=None):
    """({event value: ranked entries with medals}, {event: superseded}) over the records scored in each
    event, one entry per student per event by the entry policy (entries.py; default "latest")."""
    from tinytorch.capstone.scoring import medals, rank

    from .entries import DEFAULT_POLICY, counted_entries

    board, superseded = {}, {}
    for event in rules_table():
        counted, dropped = counted_entries(records, event, policy or DEFAULT_POLICY)
        entries = [{"id": key, "student_id": records[key]["student_id"], **{k: records[key]["scores"][event][k] for k
                    in ("score", "low", "high", "tiebreak", "eligible", "reason")}} for key in counted]
        board[event] = medals(rank(entries, event)) if entries else []
        if dropped:
            superseded[event] = dropped
    return board, superseded


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


def _isolation(limits, plan):
    """What kept the workers apart from the grader and each other in this run (results.json "isolation")."""
    network = network_method()
    return {**plan.to_dict(), "network_method": network.method, "network_detail": network.detail,
            "memory_limit_bytes": limits.memory_bytes, "file_size_limit_bytes": limits.file_bytes,
            "cpu_time_limit_s": math.ceil(limits.timeout_s) + 10, "weaker": not plan.complete}


def _stem(entry):
    """The path an entry's id comes from: a folder itself, an archive without its .zip."""
    return entry.with_suffix("") if entry.suffix == ".zip" and entry.is_file() else entry


def submitted_time(entry):
    """When an entry was handed in, as ISO UTC: an archive's modification time, or the newest modification
    time of a folder's files (links are not followed; at most 10000 entries are looked at); None if unknown."""
    import os

    try:
        newest = os.lstat(entry).st_mtime
        if Path(entry).is_dir() and not Path(entry).is_symlink():
            seen = 0
            for folder, dirs, names in os.walk(entry):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                for name in names:
                    seen += 1
                    if seen > 10_000:
                        break
                    newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
        return datetime.fromtimestamp(newest, timezone.utc).isoformat(timespec="seconds")
    except (OSError, ValueError, OverflowError):
        return None


def _identity(record, folder):
    """record with id, student_id, events, techniques and division filled from validation, when it passes."""
    from .submission import validate

    try:
        info = validate(folder)
    except Exception:
        return record
    record.update({k: info[k] for k in ("id", "student_id", "events", "techniques", "division")})
    return record


def _grader_error(folder, grading, reason, detail=None):
    """The record of a submission the grader could not grade: status "grader error" (it is graded again on
    the next run, changed or not)."""
    record = _identity(_new_record(folder, grading["seed"]), folder)
    record.update(status="grader error", reason=reason, detail=detail, submitted_at=grading.get("submitted_at"))
    return _cleaned(record)


def _head_tail(text, limit):
    """text cut to about limit characters keeping its start and its end (where a traceback says what broke)."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 5
    return f"{text[:head]} … [{len(text) - limit} chars cut] … {text[-(limit - head):]}"


def _graded(folder, grading, say):
    """(record, error text or None) for one folder: graded, and graded again with fresh workers when the
    trusted baseline failed (GraderError), up to BASELINE_ATTEMPTS times; then a "grader error" record."""
    from . import safetext

    options = {k: v for k, v in grading.items() if k != "submitted_at"}
    failures = []
    for attempt in range(1, BASELINE_ATTEMPTS + 1):
        try:
            record = grade_submission(folder, **options)
        except GraderError as exc:
            failures.append(_head_tail(safetext.clean(str(exc)), 700))
            if attempt < BASELINE_ATTEMPTS:
                say(f"    grader error, attempt {attempt} of {BASELINE_ATTEMPTS} (grading again with fresh workers): "
                    + safetext.terminal(_head_tail(safetext.clean(str(exc)), ERROR_CHARS)))
            continue
        record["submitted_at"] = grading.get("submitted_at")
        if failures:
            record["grader_retries"] = failures
        return record, None
    reason = (f"the grader failed {BASELINE_ATTEMPTS} times on this submission (its trusted baseline worker or its own "
              f"machinery, not the submission): {failures[-1]}; `tito olympics grade` grades it again")
    return _grader_error(folder, grading, reason, "\n".join(failures)), failures[-1]


def _grade_entry(entry, kept, force, grading, say):
    """(id, record, error) for one folder or archive: its earlier record kept when unchanged, else graded;
    error is set when the grader itself failed (the record then has status "grader error"). Never raises
    (but for KeyboardInterrupt): whatever one submission holds, the others are graded."""
    from .submission import SubmissionError

    sub_id = safe_id(_stem(entry))
    grading = dict(grading, submitted_at=submitted_time(entry))
    try:
        with opened(entry) as folder:
            sub_id, digest = safe_id(folder), content_digest(folder)
            if kept is not None and (kept.get("id") != sub_id or kept.get("status") == "grader error"):
                kept = None
            if kept is not None and not force and digest is not None and kept.get("content_sha256") == digest:
                say(f"    unchanged since {kept.get('graded_at')}: kept")
                return sub_id, apply_scores(dict(kept), grading["rules"]), None
            record, error = _graded(folder, grading, say)
            return sub_id, record, error
    except SubmissionError as exc:   # an archive that cannot be unpacked safely: nothing of it ever ran
        record = _new_record(_stem(entry), grading["seed"])
        record.update(status="invalid", reason=exc.summary(REASON_PROBLEMS), submitted_at=grading["submitted_at"])
        return record["id"], _cleaned(record), None
    except Exception as exc:   # a bug in the grader: this one gets "grader error", and the others are graded
        import traceback

        frame = traceback.extract_tb(exc.__traceback__)[-1]
        error = (f"unexpected {type(exc).__name__} while grading {Path(entry).name}: {str(exc)[:ERROR_CHARS]} "
                 f"(raised at {Path(frame.filename).name}:{frame.lineno} in {frame.name}; a bug in tito: report it, "
                 f"with the submission)")
        record = _new_record(_stem(entry), grading["seed"])
        record.update(id=sub_id, status="grader error", reason=error, detail=_traceback_tail(exc),
                      submitted_at=grading["submitted_at"])
        return sub_id, _cleaned(record), error


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


# ----------------------------------------------------------------------------------- the test data
DEFAULT_DATA_NOTE = ("public data: every student has the digits test split, so a submission can memorise its answers "
                     "by image content, and scores on it prove little; grade a real contest with --data FILE, a "
                     "private labelled split")
MAX_DATA_BYTES = 2 * 2**30


def _data_digest(x, y):
    import hashlib

    digest = hashlib.sha256()
    for array in (x, y):
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def default_data():
    """(inputs, labels, description) of the default test data: the public digits test split."""
    x, y = _test_arrays(None)
    return x, y, {"source": "the digits test split bundled with tinytorch (tinytorch.data.loader.load_digits('test'))",
                  "file": None, "file_sha256": None, "arrays_sha256": _data_digest(x, y), "rows": int(len(x)),
                  "input_shape": list(x.shape[1:]), "public": True, "note": DEFAULT_DATA_NOTE}


def _check_baseline_reads(x, baseline_name, where):
    """ValueError when the trusted baseline cannot classify the inputs (wrong shape or dtype for it)."""
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.tensor import Tensor
    from tinytorch.models.zoo import load_model

    try:
        model = load_model(baseline_name)
        model.eval()
        with no_grad():
            out = np.asarray(model(Tensor(np.ascontiguousarray(x[:2]))).data)
    except Exception as exc:
        raise ValueError(f"{where}: the baseline {baseline_name} cannot read these inputs of shape {x.shape[1:]} "
                         f"(dtype {x.dtype}): {type(exc).__name__}: {str(exc)[:200]}; the inputs must look like the "
                         f"digits test split's, shape (N, 1, 8, 8) float32 in [0, 1]") from None
    if out.shape != (min(2, len(x)), NUM_CLASSES):
        raise ValueError(f"{where}: the baseline {baseline_name} gives outputs of shape {out.shape} for these inputs, "
                         f"not ({min(2, len(x))}, {NUM_CLASSES}): the inputs must look like the digits test split's")


def load_data_file(path, baseline_name="digits_cnn"):
    """(inputs, labels, description) of the test data in an .npz file holding the arrays "inputs" (N, ...)
    and "labels" (N,) integers in 0..9, read with allow_pickle=False; ValueError saying what is wrong
    and how to write the file (np.savez(path, inputs=X, labels=y))."""
    import hashlib
    import io
    import zipfile

    path = Path(path)
    how = "write it with np.savez(FILE, inputs=X, labels=y): X the test inputs, y their integer labels 0..9"
    where = f"--data {path}"
    if not path.is_file():
        raise ValueError(f"{where}: {'a folder' if path.is_dir() else 'no such file'}; give an .npz file ({how})")
    size = path.stat().st_size
    if size > MAX_DATA_BYTES:
        raise ValueError(f"{where}: {size} bytes, over the {MAX_DATA_BYTES}-byte limit for test data")
    blob = path.read_bytes()
    if not blob.startswith(b"PK\x03\x04"):
        raise ValueError(f"{where}: not an .npz archive np.load can read (an .npz is a zip file; this one starts with "
                         f"{blob[:8]!r}); {how}")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            keys = list(archive.files)
            missing = [k for k in ("inputs", "labels") if k not in keys]
            if missing:
                raise ValueError(f"{where}: no array {' or '.join(repr(k) for k in missing)} (it holds "
                                 f"{', '.join(repr(k) for k in keys[:10]) or 'no arrays'}); {how}")
            x, y = archive["inputs"], archive["labels"]
    except ValueError as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where}: not an .npz archive of plain arrays ({str(exc)[:200]}); {how}") from None
    except (OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise ValueError(f"{where}: not an .npz archive np.load can read ({type(exc).__name__}: {str(exc)[:200]}); "
                         f"{how}") from None
    if x.dtype.kind not in "biuf" or x.ndim < 2 or len(x) == 0:
        raise ValueError(f"{where}: 'inputs' must be a numeric array of at least one row, (N, ...), got shape "
                         f"{x.shape} dtype {x.dtype}; {how}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(f"{where}: 'inputs' holds NaN or infinite values; give finite numbers")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"{where}: 'labels' must be one label per input row: shape ({len(x)},), got {y.shape}")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= NUM_CLASSES:
        raise ValueError(f"{where}: 'labels' must be integers in 0..{NUM_CLASSES - 1}, got dtype {y.dtype}, "
                         f"range {y.min()}..{y.max()}")
    x = np.ascontiguousarray(x.astype(np.float32) if x.dtype.kind != "f" else x)
    _check_baseline_reads(x, baseline_name, where)
    return x, y.astype(np.int64), {
        "source": str(path.resolve()), "file": path.name, "file_sha256": hashlib.sha256(blob).hexdigest(),
        "arrays_sha256": _data_digest(x, y.astype(np.int64)), "rows": int(len(x)), "input_shape": list(x.shape[1:]),
        "public": False, "note": "test data given with --data (keep it private: students must not see it)"}


# ----------------------------------------------------------------------------------- grading a folder
def grade_all(submissions_dir, out_dir, force=False, progress=None, data=None, limits=None, seed=None,
              baseline_name="digits_cnn", rules=None, entry_policy=None, require_isolation=False):
    """Grade every submission (folder or .zip) in submissions_dir; write out_dir/results.json (SCHEMA,
    atomic) and out_dir/submissions/<id>.json; return the results dict (what results.json holds).

    data: (inputs, labels, description) as load_data_file / default_data give it, or (X, y), or a labelled
    Dataset (default: the public digits test split). results.json is rewritten after every submission
    (with "complete": false and the earlier records of those still to come), so a grader that is killed
    loses nothing: the next run keeps what was graded (unchanged content) and grades the rest. Stale
    sandboxes and worker cgroups of dead graders are removed first (results "stale_cleanup").
    Idempotent: a submission whose content_sha256 matches its earlier record keeps that record (re-scored
    with the current rules, which is deterministic) unless force=True or it was a "grader error". Nothing
    earlier is lost: the previous results.json and replaced records are first copied to out_dir/history/.
    entry_policy: which entries count per student and event (entries.POLICIES; default "latest").
    require_isolation: refuse (SandboxError, nothing written) unless every isolation mechanism is in force.
    seed: None gives each submission a fresh secret shuffle seed; an int derives them deterministically."""
    from tinytorch.benchmarking.reporting import atomic_write_json, to_jsonable
    from tinytorch.benchmarking.results import system_info

    from . import safetext
    from .entries import DEFAULT_POLICY, POLICIES, describe_policy
    from .sandbox import cleanup_stale, require_complete

    policy = entry_policy or DEFAULT_POLICY
    if policy not in POLICIES:
        raise ValueError(f"entry policy {policy!r} is not one of {', '.join(POLICIES)}")
    limits, say, out_dir = Limits() if limits is None else limits, progress or (lambda line: None), Path(out_dir)
    plan = isolation_plan()
    if require_isolation:
        require_complete(plan)
    entries = submission_entries(submissions_dir, out_dir)
    results_path = out_dir / "results.json"
    previous = load_results(results_path) if results_path.exists() else None
    old = previous["submissions"] if previous else {}
    x, y, described = _data_triple(data)
    stale = cleanup_stale()
    for line in stale:
        say(f"removed what a grader that died left behind: {line}")
    if not plan.complete:
        say("warning: isolation is weaker on this machine (recorded in results.json and each record): "
            + "; ".join(plan.missing) + ". Pass --require-isolation to refuse to grade like this")
    if described.get("public"):
        say(f"warning: {described['note']}")
    seeds = np.random.SeedSequence(seed).spawn(len(entries)) if seed is not None else [None] * len(entries)
    out_dir.mkdir(parents=True, exist_ok=True)
    if previous is not None:   # the earlier run's final results, kept once before anything is rewritten
        _keep_history(results_path, out_dir / "history", previous.get("created", _now()))
    head = {"schema": SCHEMA, "created": _now(), "environment": system_info(), "limits": limits.to_dict(),
            "isolation": _isolation(limits, plan), "baseline": baseline_name, "data": described,
            "entry_policy": policy, "entry_policy_text": describe_policy(policy),
            "rules": {event: rule.to_dict() for event, rule in rules_table(rules).items()}, "stale_cleanup": stale}
    records, errors, done = {}, [], set()
    pending = {safe_id(_stem(entry)) for entry in entries}

    def write(complete):
        shown = records if complete else {**{k: v for k, v in old.items() if k in pending - done}, **records}
        board, superseded = rankings(shown, policy)
        doc = {**head, "complete": complete, "submissions": shown, "rankings": board, "superseded": superseded,
               "errors": errors, "removed": sorted(set(old) - set(records) - {e["id"] for e in errors})
               if complete else [], "pending": [] if complete else sorted(pending - done)}
        atomic_write_json(results_path, doc, overwrite=True)
        return doc

    grading = {"data": (x, y), "baseline_name": baseline_name, "limits": limits, "rules": rules,
               "watch": [out_dir, Path(submissions_dir)]}
    for i, (entry, child) in enumerate(zip(entries, seeds), start=1):
        say(safetext.terminal(f"[{i}/{len(entries)}] {safetext.clean(entry.name, 120)}"))
        grading["seed"] = None if child is None else int(child.generate_state(1, np.uint64)[0] >> 1)
        sub_id, record, error = _grade_entry(entry, old.get(safe_id(_stem(entry))), force, grading, say)
        done.add(safe_id(_stem(entry)))
        if sub_id in records:
            errors.append({"id": sub_id, "error": f"{safetext.clean(entry.name, 120)}: a second submission with the "
                                                  f"id {sub_id}; rename the folder or archive"})
            say(safetext.terminal(f"    skipped: {errors[-1]['error']}"))
            continue
        if error is not None:
            errors.append({"id": sub_id, "error": _head_tail(safetext.clean(error), 700)})
        records[sub_id] = to_jsonable(record)
        for line in progress_lines(records[sub_id]):
            say(safetext.terminal(line))
        _write_record(out_dir, records[sub_id], old.get(sub_id))
        write(complete=False)
    return to_jsonable(write(complete=True))


def _data_triple(data):
    """(x, y, description) from what grade_all was given."""
    if data is None:
        return default_data()
    if isinstance(data, tuple) and len(data) == 3 and isinstance(data[2], dict):
        return data
    x, y = _test_arrays(data)
    return x, y, {"source": "test data given by the caller (a Python object)", "file": None, "file_sha256": None,
                  "arrays_sha256": _data_digest(x, y), "rows": int(len(x)), "input_shape": list(x.shape[1:]),
                  "public": None, "note": "whether these data are private is not known"}


def cmd_olympics_grade(args, tree, say) -> int:
    """`tito olympics grade SUBMISSIONS [--out DIR] [--data FILE] [--entries POLICY] [--require-isolation]
    [--force] [--timeout S]`: grade, write, summarise. Exit 0 when every submission got a status (whatever it
    is); 1 when the grader itself failed on some, DIR holds a damaged results.json, or --require-isolation
    is not met; 2 for bad arguments (SUBMISSIONS missing or not a folder, --out a file, --timeout not a
    positive number of seconds, --data not a readable test set)."""
    from ..tree import TitoError, UsageError
    from . import safetext

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
    data = None
    if getattr(args, "data", None):
        try:
            data = load_data_file(args.data)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        results = grade_all(root, out, force=bool(getattr(args, "force", False)), progress=say, limits=limits,
                            data=data, entry_policy=getattr(args, "entries", None),
                            require_isolation=bool(getattr(args, "require_isolation", False)))
    except SandboxError as exc:
        raise TitoError(f"{exc}; nothing was graded. Run the grader where these work (Linux as root with cgroups, or "
                        f"with unprivileged user namespaces), or leave out --require-isolation") from exc
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
        say(safetext.terminal(f"grader error on {error['id']}: {error['error']}"))
    return 1 if results["errors"] else 0
