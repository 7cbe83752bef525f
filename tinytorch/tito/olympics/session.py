"""One grading exchange: the trusted baseline worker and the submission's worker, and the checks that make
what is timed the model that is scored (used by grader.py; the workers are sandbox.WorkerProcess).

The parent keeps the labels and the clock it trusts:
- accuracy: the test inputs go out in an order shuffled by the run's secret Generator, in batches of
  Limits.batch_size; the parent un-shuffles the outputs and scores them;
- latency: A B B A ... "time" requests. Each request carries `calls` batches of Limits.batch_size DISTINCT
  inputs (test rows drawn at random plus fresh Gaussian noise, so no input is ever seen twice and no
  answer can be looked up); per-batch ms = the PARENT's wall time / calls. The worker returns every timed
  call's outputs, and the parent predicts a sample of the same inputs again in one ordinary batch at the
  end of the session: outputs that depend on how the model is called make the submission invalid;
- memory: the worker sends state_dict() as arrays; the parent counts them. The declared state must be what
  computes the outputs: in a fresh process, the declared state loaded back reproduces the accuracy pass's
  outputs, and the same state with every array's entries shuffled must destroy the accuracy. Arrays the
  model holds outside its state_dict (the census) and weight data in the submission's files count too.
"""
from __future__ import annotations

import math
import os
import signal
import time

import numpy as np

from . import protocol
from .sandbox import EXIT_GRACE_S, WorkerProcess

PINGS = 10
CALIBRATION_PROBES = 3  # requests whose median per-call time sets the calls per request
MAX_CALLS = 4096        # calls per timed request at most
OOM_SIGNS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")
WORKER_STATUSES = ("invalid", "crashed", "out of memory")   # the only statuses a worker may claim for itself
NOISE = 0.05            # timed inputs: test rows + N(0, (NOISE * std of the test inputs)^2) noise
CROSS_CHECK_ROWS = 2    # timed rows per request kept to predict again at the end of the session
STATE_CHECK_ROWS = 256  # test rows predicted with the declared state reloaded, and with it shuffled
TIMED_DROP = 0.15       # accuracy on the timed inputs may be this much below the scored accuracy (noise)
OUTPUT_RTOL, OUTPUT_ATOL = 1e-3, 1e-4   # atol is relative to the largest |output| of the batch


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


def _state_names(ready, arrays):
    """The state's entry names from a "ready" header, or None unless they are distinct strings, one per array."""
    names = ready.get("names")
    if not isinstance(names, list) or len(names) != len(arrays) or not all(isinstance(n, str) for n in names) \
            or len(set(names)) != len(names):
        return None
    return names


def outputs_disagree(expected, got):
    """None when two output arrays for the same rows agree (scores within OUTPUT_RTOL/ATOL of the batch's
    scale, labels equal), else the reason in words."""
    if expected.shape != got.shape:
        return f"shape {got.shape} where the same rows gave {expected.shape}"
    if expected.dtype.kind == "f" or got.dtype.kind == "f":
        a, b = expected.astype(np.float64), got.astype(np.float64)
        scale = max(float(np.abs(a).max(initial=0.0)), 1e-12)
        bad = ~np.isclose(a, b, rtol=OUTPUT_RTOL, atol=OUTPUT_ATOL * scale)
        if bad.any():
            rows = int(bad.reshape(len(bad), -1).any(axis=1).sum())
            worst = float(np.abs(a - b).max())
            return f"{rows} of {len(a)} rows differ (largest difference {worst:.3g}, scores up to {scale:.3g})"
        return None
    rows = int((expected != got).reshape(len(got), -1).any(axis=1).sum())
    return f"{rows} of {len(got)} labels differ" if rows else None


def timed_accuracy_check(kept, y, correct):
    """The model that was timed is the model that was scored: its accuracy on the timed inputs (test rows plus
    a little noise) must not fall far below its accuracy on the same test rows as scored. kept: (test row,
    label predicted for its timed copy) pairs; correct: the scored 0/1 per test row. Returns what was found;
    "failed" is True when the timed accuracy is lower by more than TIMED_DROP and by 4 standard errors (a
    model that looks answers up by content, or is fast only on inputs it has never seen, fails)."""
    if not kept:
        return {"rows": 0, "failed": False}
    index = np.array([row for row, _ in kept])
    labels = np.array([label for _, label in kept])
    timed, scored = float((labels == y[index]).mean()), float(np.asarray(correct)[index].mean())
    error = math.sqrt(max(scored * (1 - scored), timed * (1 - timed), 0.01) / len(index))
    drop = scored - timed
    return {"rows": int(len(index)), "accuracy_on_timed_inputs": timed, "accuracy_on_the_same_rows_scored": scored,
            "noise": f"N(0, ({NOISE:g} x std of the inputs)^2)", "failed": bool(drop > TIMED_DROP and drop > 4 * error)}


class TimedInputs:
    """Distinct inputs for timed calls: test rows drawn with the run's secret Generator plus fresh noise."""

    def __init__(self, x, rng):
        self.x, self.rng = x, rng
        self.scale = NOISE * float(np.std(x)) if x.dtype.kind == "f" else 0.0

    def draw(self, rows):
        """(rows fresh inputs, the test row each was made from)."""
        index = self.rng.integers(len(self.x), size=rows)
        picked = self.x[index]
        if self.scale:
            picked = picked + self.rng.normal(0.0, self.scale, size=picked.shape).astype(picked.dtype)
        return np.ascontiguousarray(picked), index


class Session:
    """The exchanges of one grading: the baseline worker (trusted) and the submission's worker."""

    def __init__(self, base_box, sub_box, baseline_name, limits, network, cpus=None):
        """cpus: the CPUs both workers are timed on (pinned just before timing; they start on all of them)."""
        self.limits, self.network, self.cpus = limits, network, cpus
        extra = {} if cpus is None else {"cpus": sorted(os.sched_getaffinity(0))}
        self.base = WorkerProcess(base_box, ("zoo", baseline_name), limits, network, **extra)
        self.sub = WorkerProcess(sub_box, ("submission", None), limits, network, **extra)
        self.stage, self.deadline, self.kept = "starting", None, []

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

    def _state_limit(self):
        return min(self.limits.max_state_bytes, protocol.ARRAY_LIMIT * 2)

    def start(self):
        """Launch both workers at once (their imports and builds run side by side; the submission's timeout
        clock starts at its launch), then wait for each: (the baseline's state sizes, (the submission's state
        sizes or None, why it has none, its state names, its arrays))."""
        self.stage = "starting the baseline"
        self.base.start()
        self.sub.start()
        self.deadline = self.sub.started + self.limits.timeout_s
        sizes = self._baseline_ready()
        return sizes, self._submission_ready()

    def _baseline_ready(self):
        try:
            ready, arrays = protocol.recv(self.base.from_fd, time.perf_counter() + self.limits.timeout_s,
                                          self._state_limit())
        except (protocol.ProtocolError, protocol.ChannelTimeout) as exc:
            raise GraderError(f"the baseline worker did not start: {exc}; stderr: {self.base.stderr_tail()[-800:]}") from exc
        if ready.get("type") != "ready" or ready.get("state") != "saved":
            raise GraderError(f"the baseline worker did not start: {str(ready)[:300]}")
        names = _state_names(ready, arrays)
        if names is None:
            raise GraderError("the baseline worker's state names do not match its arrays")
        return protocol.state_summary(dict(zip(names, arrays)))

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
            oom = getattr(self.sub, "oom_killed", lambda: None)()
            if oom:
                return Outcome("out of memory", f"the worker's memory group reached its "
                                                f"{self.limits.memory_bytes}-byte limit while {self.stage} and the "
                                                f"kernel killed it ({ended})", lines)
            if self.sub.signal_number() == signal.SIGKILL and not self.sub.killed:
                return Outcome("out of memory", f"the worker was killed by SIGKILL (not sent by the grader) while "
                                                f"{self.stage}; the kernel's out-of-memory killer is the usual sender",
                               lines)
            if self.sub.signal_number() == signal.SIGXCPU:
                return Outcome("timeout", f"the worker used up its CPU-time limit while {self.stage} ({ended})", lines)
            if any(sign in tail for sign in OOM_SIGNS):
                return Outcome("out of memory", f"the worker ended ({ended}) while {self.stage}, reporting an "
                                                f"allocation failure under the {self.limits.memory_bytes}-byte limit",
                               lines)
            return Outcome("crashed", f"the worker ended ({ended}) while {self.stage} without answering", lines)
        return Outcome("invalid", f"broke the grading protocol while {self.stage}: {str(exc)[:300]} (an oversized or "
                                  f"malformed reply, or bytes written to the grader's channel)")

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

    def _submission_ready(self):
        self.stage = "importing submission.py and calling build_model()"
        ready, arrays = self._sub_wait(lambda: protocol.recv(self.sub.from_fd, self.deadline, self._state_limit()))
        ready = self._reply(ready)
        if ready.get("type") != "ready":
            raise Outcome("invalid", f"broke the grading protocol while {self.stage} (got {str(ready)[:200]})")
        if ready.get("state") != "saved":
            return None, str(ready.get("why", "no state_dict"))[:500], [], []
        names = _state_names(ready, arrays)
        if names is None:
            raise Outcome("invalid", "broke the grading protocol: the state names are not distinct strings, one per array")
        return protocol.state_summary(dict(zip(names, arrays))), None, names, arrays

    # -- requests both sides answer
    def predict(self, which, batch, classes):
        """The raw outputs of one predict request, checked to be readable as labels."""
        call = self.sub_call if which == "sub" else self.base_call
        _, out, _, _ = call({"op": "predict"}, [batch])
        if len(out) != 1:
            raise Outcome("invalid", f"a predict reply must carry one array, got {len(out)}")
        try:
            protocol.predicted_labels(out[0], len(batch), classes)
        except ValueError as exc:
            if which == "base":
                raise GraderError(f"the baseline's outputs are unreadable: {exc}") from exc
            raise Outcome("invalid", str(exc)) from None
        return out[0]

    def predict_rows(self, which, x, classes):
        """Outputs for every row of x, predicted in batches of Limits.batch_size."""
        size = self.limits.batch_size
        return np.concatenate([self.predict(which, np.ascontiguousarray(x[k:k + size]), classes)
                               for k in range(0, len(x), size)])

    # -- the measurements
    def accuracy(self, x, y, rng, classes):
        """(correct of the submission, correct of the baseline, the submission's raw outputs in data order)."""
        self.stage = "predicting the test inputs"
        order = rng.permutation(len(x))
        preds = {"sub": np.empty(len(x), np.int64), "base": np.empty(len(x), np.int64)}
        raw = None
        for start in range(0, len(x), self.limits.batch_size):
            rows = order[start:start + self.limits.batch_size]
            batch = np.ascontiguousarray(x[rows])
            for which in ("sub", "base"):
                out = self.predict(which, batch, classes)
                preds[which][rows] = protocol.predicted_labels(out, len(rows), classes)
                if which == "sub":
                    if raw is None:
                        raw = np.empty((len(x), *out.shape[1:]), out.dtype)
                    if out.shape[1:] != raw.shape[1:]:
                        raise Outcome("invalid", f"the model's outputs changed shape between batches: "
                                                 f"{out.shape[1:]} after {raw.shape[1:]}")
                    raw[rows] = out
        return [(preds[k] == y).astype(np.int64) for k in ("sub", "base")] + [raw]

    def _timed(self, which, inputs, calls, keep):
        """One "time" request on calls * batch_size fresh inputs: (parent ns t0, t1, worker start, end);
        keep (a list) receives CROSS_CHECK_ROWS (input, output) pairs of the submission's."""
        call = self.sub_call if which == "sub" else self.base_call
        x, index = inputs.draw(calls * self.limits.batch_size)
        reply, out, t0, t1 = call({"op": "time", "calls": calls}, [x])
        if len(out) != 1 or len(out[0]) != len(x):
            if which == "base":
                raise GraderError(f"the baseline's time reply carried {len(out)} arrays")
            raise Outcome("invalid", f"a time reply must carry the outputs of all {len(x)} timed inputs")
        if keep is not None:
            for row in inputs.rng.choice(len(x), size=min(CROSS_CHECK_ROWS, len(x)), replace=False):
                keep.append((x[row], out[0][row], index[row]))
        return t0, t1, _int_ns(reply.get("start_ns")), _int_ns(reply.get("end_ns"))

    def _calibrate(self, which, inputs):
        """Calls per request so that one request lasts about min_request_ms by the parent's clock: grown
        until a request lasts that long, then the median of CALIBRATION_PROBES such requests decides (one probe
        alone can land on a moment when the machine is slow, and give the two sides different lengths)."""
        target, calls = self.limits.min_request_ms * 1e6, 1
        while True:
            t0, t1, _, _ = self._timed(which, inputs, calls, None)
            wall = max(t1 - t0, 1)
            if wall >= target or calls >= MAX_CALLS:
                break
            calls = min(MAX_CALLS, max(calls * 2, min(calls * 100, math.ceil(calls * 1.2 * target / wall))))
        per_call = [wall / calls]
        for _ in range(CALIBRATION_PROBES - 1):
            t0, t1, _, _ = self._timed(which, inputs, calls, None)
            per_call.append(max(t1 - t0, 1) / calls)
        return max(1, min(MAX_CALLS, round(target / float(np.median(per_call)))))

    def latency(self, inputs, classes):
        """Interleaved rounds: ({"sub"|"base": {"calls", "rows": [(t0, t1, start, end), ...]}}, pings), after
        checking that the timed outputs match the same inputs predicted again in one ordinary batch."""
        self.stage = f"timing batches of {self.limits.batch_size} distinct inputs"
        if self.cpus:
            for worker in (self.base, self.sub):
                worker.pin(self.cpus)
        pings = []
        for _ in range(PINGS):
            _, _, t0, t1 = self.base_call({"op": "ping"})
            pings.append(t1 - t0)
        runs = {k: {"calls": self._calibrate(k, inputs), "rows": []} for k in ("sub", "base")}
        kept, begun = [], time.perf_counter()
        for round_ in range(self.limits.latency_rounds):
            if round_ >= self.limits.min_rounds and time.perf_counter() - begun > self.limits.latency_budget_s:
                break
            # A B B A A B ...: drift on the machine hits both alike, and neither side is always first
            for k in (("sub", "base") if round_ % 2 == 0 else ("base", "sub")):
                runs[k]["rows"].append(self._timed(k, inputs, runs[k]["calls"], kept if k == "sub" else None))
        self.stage = "predicting the timed inputs again (the cross-check)"
        again = self.predict_rows("sub", np.stack([row for row, _, _ in kept]), classes)
        why = outputs_disagree(np.stack([out for _, out, _ in kept]), again)
        if why:
            raise Outcome("invalid", f"its outputs depend on how it is called: {len(kept)} inputs timed in batches of "
                                     f"{self.limits.batch_size} and predicted again in one batch give different "
                                     f"outputs ({why}); the timed model must be the scored model")
        self.kept = self.kept + [(index, protocol.predicted_labels(out[None], 1, classes)[0]) for _, out, index in kept]
        return runs, pings

    def state_check(self, names, arrays, x, y, reference, rng, classes):
        """The declared state computes the outputs (run in a FRESH submission worker): loaded back, it
        reproduces `reference` (the accuracy pass's outputs of rows x); with each array's entries shuffled,
        accuracy falls towards chance. Returns what was found (an Outcome is raised when it fails)."""
        self.stage = "checking that the declared state computes the outputs"
        shuffled = [rng.permutation(a.reshape(-1)).reshape(a.shape) if a.size > 1 else a for a in arrays]
        self.sub_call({"op": "load_state", "names": names}, shuffled)
        scrambled = protocol.predicted_labels(self.predict_rows("sub", x, classes), len(x), classes)
        self.sub_call({"op": "load_state", "names": names}, arrays)
        again = self.predict_rows("sub", x, classes)
        why = outputs_disagree(reference, again)
        if why:
            raise Outcome("invalid", f"its declared state_dict(), loaded back into a freshly built model, does not "
                                     f"reproduce its outputs ({why}): the state it declares must be the state it runs")
        labels = protocol.predicted_labels(again, len(x), classes)
        accuracy, shuffled_accuracy = float((labels == y).mean()), float((scrambled == y).mean())
        chance = float(np.bincount(y, minlength=classes).max() / len(y))
        found = {"rows": len(x), "accuracy": accuracy, "accuracy_with_state_shuffled": shuffled_accuracy,
                 "chance": chance, "checked": accuracy - chance >= 0.2}
        if found["checked"] and shuffled_accuracy > chance + 0.5 * (accuracy - chance):
            raise Outcome("invalid", f"its outputs do not come from its declared state_dict(): with every declared "
                                     f"array's entries shuffled it still scores {shuffled_accuracy:.1%} on {len(x)} test "
                                     f"rows ({accuracy:.1%} with them in place, chance {chance:.1%}). Memory is "
                                     f"scored on the declared state, so it must hold the weights the model uses")
        return found

    def census(self):
        reply, _, _, _ = self.sub_call({"op": "census"})
        value = reply.get("reachable_array_bytes")
        return {"reachable_array_bytes": value if isinstance(value, int) and value >= 0 else None,
                "complete": reply.get("complete") is True}

    def stop(self):
        """End both workers: both are asked to exit first, then each is waited for (and killed if it lingers)."""
        for worker in (self.sub, self.base):
            worker.ask_exit()
        for worker in (self.sub, self.base):
            worker.stop(polite=True)
