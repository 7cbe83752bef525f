# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 20: Capstone, the TorchPerf Olympics
#
# > Capstone: combine everything into one optimized model, and compete in five events whose scores are measured, relative to a baseline timed in the same run, and fair across machines.
#
# ## Why the Olympics need rules you can check
#
# Modules 14-19 gave you a profiler, three families of optimizations and a benchmarking package
# that refuses to report a number it did not measure. The capstone turns them into a
# competition. A competition is only fair when:
#
# - **every score is re-measured by the grader**, never self-reported;
# - **scores are relative to a baseline measured in the same grading run, on the same machine,
#   interleaved with the submission**: a speed-up of 1.7x means the same on a laptop and on a
#   server, while "0.2 ms" does not;
# - **constraints are met conclusively**: "accuracy >= 85%" means the lower bound of the
#   accuracy's 95% interval is at least 85%, not that the point estimate happened to land there;
# - **ties are honest**: two entries whose score intervals overlap share a rank.
#
# This module writes the rules and the scoring (`tinytorch.capstone`). The grader that runs
# untrusted submissions in a sandbox, the submission format and the leaderboard live in `tito`
# (`tito olympics submit | grade | leaderboard`), because they manage processes and files, not
# numbers.

# %%
#| default_exp capstone.scoring

# %% [markdown]
# ## Part 1: the five events and their rules
#
# Each event has eligibility constraints (defaults from the course, configurable per task) and
# one score. `rules_for(event, overrides)` returns the rules with validated overrides, so an
# instructor can, for instance, raise the accuracy floor for a harder data set.

# %%
#| export capstone.events
"""The TorchPerf Olympics: the five events, their eligibility rules and how each is scored (in words).

Pure data and validation: nothing here measures or prints. The scores themselves are computed in
tinytorch.capstone.scoring; this file says what a submission must satisfy to be ranked in an event.
"""
import math
import numbers
from dataclasses import dataclass, fields, replace

from tinytorch.benchmarking.benchmark import OlympicEvent

# "10 MB" in the course is read as 10,000,000 (SI) bytes of PARAMETER storage, measured by
# tinytorch.profiling.profiler.parameter_bytes: what the model keeps in memory to run (int8 counts
# 1 byte, sparse formats count their indices). Parameter bytes are exact and do not depend on a file
# container (the .npz serialized size adds zip headers and per-array metadata), so a submission
# cannot pass or fail the limit by how it was saved. SI megabytes, because "MB" is 10**6 bytes;
# 10 MiB would be 10,485,760.
MEMORY_METRIC = "parameter_bytes"
ACCURACY_CONTEST_MAX_LATENCY_MS = 100.0
ACCURACY_CONTEST_MAX_MEMORY_BYTES = 10_000_000
OVERRIDABLE = ("min_accuracy", "max_latency_ms", "max_memory_bytes")


# Each constraint field: (kind of number, test of a valid value, what it must be, as the error says it).
_LIMITS = {
    "min_accuracy": (numbers.Real, lambda v: 0 < v <= 1, float,
                     "an accuracy in (0, 1] such as 0.85 (or None for no floor)"),
    "max_latency_ms": (numbers.Real, lambda v: math.isfinite(v) and v > 0, float,
                       "a finite number of milliseconds > 0 such as 100 (or None for no limit)"),
    "max_memory_bytes": (numbers.Integral, lambda v: v > 0, int,
                         "a whole number of bytes > 0 such as 10_000_000 (or None for no limit)"),
}


def _check_limit(name, value):
    """value of the constraint field name as a float/int, or None (no constraint); ValueError otherwise."""
    if value is None:
        return None
    kind, valid, convert, wanted = _LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, kind) or not valid(value):
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return convert(value)

# %%
#| export capstone.events
@dataclass(frozen=True)
class EventRules:
    """One Olympic event: its eligibility constraints and its score.

    Constraints (None = not checked), each met only CONCLUSIVELY (see scoring.check_constraints):
    min_accuracy: Wilson 95% lower bound of the test accuracy >= min_accuracy.
    max_latency_ms: upper bound of the 95% order-statistic interval of the median latency < max_latency_ms.
    max_memory_bytes: parameter bytes (exact) < max_memory_bytes.
    score_name, higher_is_better, formula: what the score is; description: the same in words.
    """

    event: OlympicEvent
    min_accuracy: float = None
    max_latency_ms: float = None
    max_memory_bytes: int = None
    score_name: str = ""
    higher_is_better: bool = True
    formula: str = ""
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.event, OlympicEvent):
            raise ValueError(f"event must be an OlympicEvent, got {self.event!r}; use parse_event(text)")
        for name in OVERRIDABLE:
            object.__setattr__(self, name, _check_limit(name, getattr(self, name)))
        for name in ("score_name", "formula", "description"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        if not isinstance(self.higher_is_better, bool):
            raise ValueError(f"higher_is_better must be True or False, got {self.higher_is_better!r}")

    def constraint_texts(self):
        """The constraints in words, e.g. ['accuracy >= 0.85 (Wilson 95% lower bound)']; [] if none."""
        texts = []
        if self.min_accuracy is not None:
            texts.append(f"accuracy >= {self.min_accuracy:g} (Wilson 95% lower bound)")
        if self.max_latency_ms is not None:
            texts.append(f"median latency < {self.max_latency_ms:g} ms (upper bound of its 95% interval)")
        if self.max_memory_bytes is not None:
            texts.append(f"{MEMORY_METRIC} < {self.max_memory_bytes:,} (exact)")
        return texts

    def to_dict(self):
        """JSON-ready: the event's value (e.g. 'latency_sprint') and every field."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["event"] = self.event.value
        return out

    def __repr__(self):
        limits = "; ".join(self.constraint_texts()) or "no constraints"
        better = "higher" if self.higher_is_better else "lower"
        return f"EventRules({self.event.value}: score {self.score_name} ({better} is better); {limits})"

    def __str__(self):
        limits = "\n".join(f"  - {text}" for text in self.constraint_texts()) or "  - none"
        return (f"{self.event.value}: {self.description}\n  score = {self.formula}\n"
                f"  constraints (met only conclusively):\n{limits}")

# %%
#| export capstone.events
DEFAULT_RULES = {
    OlympicEvent.LATENCY_SPRINT: EventRules(
        OlympicEvent.LATENCY_SPRINT, min_accuracy=0.85, score_name="speedup",
        formula="S = median(baseline latency) / median(submission latency)",
        description=("fastest model wins: speedup over the baseline timed interleaved in the same run, "
                     "with a paired bootstrap 95% interval")),
    OlympicEvent.MEMORY_CHALLENGE: EventRules(
        OlympicEvent.MEMORY_CHALLENGE, min_accuracy=0.85, score_name="compression",
        formula=("C = baseline parameter_bytes / submission parameter_bytes "
                 "(tie-break: baseline serialized_bytes / submission serialized_bytes)"),
        description=("smallest model wins: compression ratio of the parameter bytes, exact (byte counts "
                     "have no sampling error); equal ratios are separated by the serialized-size ratio")),
    OlympicEvent.ACCURACY_CONTEST: EventRules(
        OlympicEvent.ACCURACY_CONTEST, max_latency_ms=ACCURACY_CONTEST_MAX_LATENCY_MS,
        max_memory_bytes=ACCURACY_CONTEST_MAX_MEMORY_BYTES, score_name="accuracy",
        formula="A = correct / total on the hidden test split",
        description="most accurate model wins, with its Wilson 95% interval, within latency and memory limits"),
    # The course gives All-Around no floor. We use 0.80 (as Extreme Push): the geometric mean alone would
    # let a model that trades away most of its accuracy for speed and size win the all-around title.
    OlympicEvent.ALL_AROUND: EventRules(
        OlympicEvent.ALL_AROUND, min_accuracy=0.80, score_name="all_around",
        formula="G = (S * C * A / A_baseline) ** (1/3)",
        description=("best balance wins: geometric mean of speedup, parameter compression and accuracy "
                     "relative to the baseline (the baseline scores 1); interval from the components' "
                     "97.5% intervals (Bonferroni: >= 95% jointly)")),
    OlympicEvent.EXTREME_PUSH: EventRules(
        OlympicEvent.EXTREME_PUSH, min_accuracy=0.80, score_name="speedup_x_compression",
        formula="X = S * C",
        description=("push speed and size together: speedup times parameter compression within the "
                     "accuracy floor; the interval is the speedup's times C (C is exact)")),
}


def parse_event(text):
    """The OlympicEvent named by text: an OlympicEvent, its value ('latency_sprint') or its name
    ('LATENCY_SPRINT'), case-insensitive, surrounding spaces ignored; ValueError listing the valid names."""
    if isinstance(text, OlympicEvent):
        return text
    valid = ", ".join(e.value for e in OlympicEvent)
    if isinstance(text, str):
        key = text.strip().lower()
        for event in OlympicEvent:
            if key == event.value:
                return event
    raise ValueError(f"unknown Olympic event {text!r}; valid events: {valid}")

# %%
#| export capstone.events
def rules_for(event, overrides=None):
    """The EventRules of event (see parse_event), with overrides applied.

    overrides: a dict of constraint fields to change for this task, e.g. {"min_accuracy": 0.9} or
    {"max_latency_ms": None} (None removes that constraint). Only min_accuracy, max_latency_ms and
    max_memory_bytes may change (the score is fixed per event); unknown keys or bad values: ValueError.
    """
    rules = DEFAULT_RULES[parse_event(event)]
    if overrides is None:
        return rules
    if not isinstance(overrides, dict):
        raise ValueError(f"overrides must be a dict such as {{'min_accuracy': 0.9}}, got {type(overrides).__name__}")
    unknown = sorted(str(key) for key in overrides if key not in OVERRIDABLE)
    if unknown:
        raise ValueError(f"unknown override(s) {unknown} for {rules.event.value}; "
                         f"allowed keys: {', '.join(OVERRIDABLE)}")
    return replace(rules, **overrides)


# %% [markdown]
# ### Check the rules

# %%
for event in OlympicEvent:
    print(rules_for(event))
assert rules_for(OlympicEvent.LATENCY_SPRINT).min_accuracy == 0.85
assert parse_event("LATENCY_SPRINT") is parse_event("latency_sprint") is OlympicEvent.LATENCY_SPRINT
try:
    rules_for(OlympicEvent.LATENCY_SPRINT, {"min_acuracy": 0.9})
    raise AssertionError("a misspelt override was accepted")
except ValueError as err:
    print("refused:", err)

# %% [markdown]
# ## Part 2: scores relative to the baseline, with intervals
#
# A submission's measurement holds what the grader measured: one 0/1 per test example (was it
# classified correctly?), per-call latencies interleaved with the baseline's, and the exact
# parameter and serialized bytes. From these:
#
# - **speed-up** = median(baseline latency) / median(submission latency), with a bootstrap interval
#   (the grader times interleaved rounds in sessions, and then takes the median of each round's
#   baseline / submission ratio: both requests of a round ran while the machine had the same speed);
# - **compression** = baseline bytes / submission bytes: exact counts, no interval needed;
# - **accuracy** with its Wilson interval, and the difference to the baseline with McNemar's test
#   (both are scored on the same examples);
# - **All-Around** combines the normalised ratios by a geometric mean, so that doubling any one of
#   them counts the same; **Extreme Push** rewards speed-up x compression within its accuracy floor.
#
# Then `rank` orders the eligible entries and lets overlapping intervals share a rank, and
# `medals` hands out gold, silver and bronze.
#
# Implement `_geometric_mean(values)` (the k-th root of the product; a bound of 0 gives 0),
# `_shares_rank(leader, entry)` (closed intervals overlap; two exact scores, low == high, share a
# rank only when their tie-break values are equal too) and `medals(ranked)` (copies of the entries
# with "gold", "silver", "bronze" for ranks 1, 2, 3 and None otherwise).

# %%
#| export capstone.scoring
"""Olympic scoring: numbers in, numbers out. Every score is RELATIVE to the baseline model measured in
the same grading run on the same machine (latency interleaved with it), so scores from different
machines can be compared; every score carries an interval, and ranks follow the intervals.

Inputs are plain dicts built by the grader, one per model:
    {"correct": 0/1 per test example (the same examples, in the same order, for every model),
     "latency_ms": per-call milliseconds (measured interleaved with the baseline's samples),
     "parameter_bytes": int, "serialized_bytes": int}
Other keys are allowed and ignored. Outputs are JSON-ready (plain Python, no NaN or inf).
"""
import math
import numbers

import numpy as np

from tinytorch.benchmarking.stats import check_values, compare_samples, median_interval, prob_less, wilson_interval
from tinytorch.benchmarking.results import mcnemar_p
from tinytorch.benchmarking.benchmark import OlympicEvent
from tinytorch.capstone.events import DEFAULT_RULES, MEMORY_METRIC, EventRules, parse_event

CONFIDENCE = 0.95
# All-Around combines two uncertain components (speedup, accuracy). Each is taken at 1 - 0.05/2 so that
# both hold at once with probability >= 95% (Bonferroni); the score is increasing in each component,
# so then it lies between the combined bounds.
JOINT_CONFIDENCE = 1 - (1 - CONFIDENCE) / 2
MEDALS = {1: "gold", 2: "silver", 3: "bronze"}
STATUS_OK, STATUS_NOT_MET = "ok", "constraint not met"


def _check_correct(values, name):
    """values as a 1-D bool array of 0/1 outcomes (at least one); ValueError otherwise."""
    given = np.asarray(values)
    array = check_values(given.astype(np.int8) if given.dtype == bool else given, name)
    if not np.isin(array, (0.0, 1.0)).all():
        bad = array[~np.isin(array, (0.0, 1.0))][:3].tolist()
        raise ValueError(f"{name} must hold 0/1 (or bool) per test example, got e.g. {bad}; "
                         "pass (predictions == labels)")
    return array.astype(bool)

# %%
#| export capstone.scoring
def _check_bytes(value, name):
    """value as an int > 0 (a byte count); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a byte count (an int > 0), got {value!r}; a ratio needs bytes "
                         "measured with tinytorch.profiling.profiler (parameter_bytes / serialized_bytes)")
    return int(value)

# %%
#| export capstone.scoring
def check_measurement(measurement, name="measurement"):
    """The validated core of a measurement dict: correct (bool array), latency_ms (positive float
    array), parameter_bytes and serialized_bytes (ints > 0). ValueError naming the bad key."""
    if not isinstance(measurement, dict):
        raise ValueError(f"{name} must be a dict with keys correct, latency_ms, parameter_bytes, "
                         f"serialized_bytes; got {type(measurement).__name__}")
    missing = [k for k in ("correct", "latency_ms", "parameter_bytes", "serialized_bytes") if k not in measurement]
    if missing:
        raise ValueError(f"{name} lacks {missing}; the grader must record all of correct, latency_ms, "
                         "parameter_bytes, serialized_bytes")
    latency = check_values(measurement["latency_ms"], f"{name}['latency_ms']")
    if (latency <= 0).any():
        raise ValueError(f"{name}['latency_ms'] must be positive durations, got {int((latency <= 0).sum())} "
                         "value(s) <= 0; pass measured per-call times")
    sessions = measurement.get("latency_session")
    if sessions is not None:
        sessions = np.asarray(sessions)
        if sessions.shape != latency.shape or sessions.dtype.kind not in "iu":
            raise ValueError(f"{name}['latency_session'] must hold one integer session number per latency sample "
                             f"({latency.size}), got shape {sessions.shape} and dtype {sessions.dtype}")
    return {"correct": _check_correct(measurement["correct"], f"{name}['correct']"), "latency_ms": latency,
            "latency_session": sessions,
            "parameter_bytes": _check_bytes(measurement["parameter_bytes"], f"{name}['parameter_bytes']"),
            "serialized_bytes": _check_bytes(measurement["serialized_bytes"], f"{name}['serialized_bytes']")}

# %%
#| export capstone.scoring
def _sessions(m, b):
    """The shared session labels of a checked measurement and baseline, or None when they have none (or
    differ: then the rounds were not measured together and no session structure can be used)."""
    ms, bs = m.get("latency_session"), b.get("latency_session")
    if ms is None or bs is None:
        return None
    if not np.array_equal(ms, bs):
        raise ValueError("measurement and baseline latency_session labels differ: the rounds of both sides must "
                         "be measured together (A B A B ...) in the same sessions")
    return ms


def paired_speedup(base_ms, sub_ms):
    """The median over rounds of base_ms[i] / sub_ms[i]: the speed-up of interleaved rounds, each round's
    baseline request set against the submission request next to it. A shared machine changes speed in
    steps that last seconds (another tenant, the clock), and both requests of a round see the same step, so
    the per-round ratio cancels it where a ratio of two medians would straddle it."""
    base, sub = np.asarray(base_ms, float), np.asarray(sub_ms, float)
    return float(np.median(base / sub))


def session_ratio_ci(base_ms, sub_ms, sessions, confidence=CONFIDENCE, resamples=2000, seed=0):
    """(low, high) of paired_speedup by a two-level (cluster) bootstrap: draw the sessions with
    replacement, then the rounds of each drawn session with replacement, the submission and baseline
    samples of a round kept together. Sessions are separate pairs of worker processes, so the interval
    includes how much the speed of a fresh process varies, which resampling rounds alone would miss.
    Source: Davison & Hinkley, Bootstrap Methods and their Application (1997), sec. 3.8."""
    ratio, labels = np.asarray(base_ms, float) / np.asarray(sub_ms, float), np.asarray(sessions)
    groups = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    gen = np.random.default_rng(seed)
    ratios = np.empty(resamples)
    for r in range(resamples):
        picked = [groups[k] for k in gen.integers(len(groups), size=len(groups))]
        rows = np.concatenate([g[gen.integers(len(g), size=len(g))] for g in picked])
        ratios[r] = np.median(ratio[rows])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def speedup(base_ms, sub_ms, seed=0, confidence=CONFIDENCE, sessions=None):
    """Speedup S = median(base_ms) / median(sub_ms) (> 1: the submission is faster); with `sessions` (the
    session number of each interleaved round, shared by both sides: what the grader measures) S is the
    paired_speedup of the rounds instead, which a machine changing speed cannot move.

    Interval: percentile bootstrap of the ratio of medians (stats.bootstrap_ratio_ci, paired when the
    samples have equal lengths, as interleaved rounds do; seeded); with `sessions` the two-level
    bootstrap of paired_speedup (session_ratio_ci). p_value: two-sided
    Mann-Whitney U; prob_sub_faster: P(a submission call is faster than a baseline call), ties count half.
    Significant: p < 0.05 and the interval excludes 1.
    """
    cmp = compare_samples(base_ms, sub_ms, confidence=confidence, seed=seed)
    method = cmp["method"]
    if sessions is not None and len(np.unique(sessions)) > 1:
        if len(sessions) != len(base_ms) or len(base_ms) != len(sub_ms):
            raise ValueError(f"sessions must label every round of both sides: {len(sessions)} labels for "
                             f"{len(base_ms)} baseline and {len(sub_ms)} submission samples")
        low, high = session_ratio_ci(base_ms, sub_ms, sessions, confidence, seed=seed)
        cmp = dict(cmp, ratio=paired_speedup(base_ms, sub_ms), ci_low=low, ci_high=high,
                   significant=bool(cmp["p_value"] < 0.05 and (low > 1 or high < 1)))
        formula = "S = median over interleaved rounds of (baseline latency_ms / submission latency_ms)"
        method = (f"median of per-round ratios, two-level bootstrap over {len(np.unique(sessions))} sessions of "
                  f"fresh worker processes and their rounds")
    else:
        formula = "S = median(baseline latency_ms) / median(submission latency_ms)"
        method = f"ratio of medians, {method}"
    if not cmp["significant"]:
        verdict = "no significant difference"
    else:
        verdict = "submission faster" if cmp["ci_low"] > 1 else "submission slower"
    return {"value": cmp["ratio"], "low": cmp["ci_low"], "high": cmp["ci_high"], "p_value": cmp["p_value"],
            "prob_sub_faster": prob_less(sub_ms, base_ms), "significant": cmp["significant"], "verdict": verdict,
            "median_base_ms": float(np.median(check_values(base_ms))),
            "median_sub_ms": float(np.median(check_values(sub_ms))),
            "n_base": cmp["n_a"], "n_sub": cmp["n_b"], "paired": cmp["paired"], "confidence": float(confidence),
            "resamples": cmp["resamples"], "seed": seed,
            "formula": formula, "method": method}

# %%
#| export capstone.scoring
def compression(base_bytes, sub_bytes):
    """Compression C = base parameter_bytes / submission parameter_bytes, and the same ratio of
    serialized_bytes (> 1: the submission is smaller).

    base_bytes, sub_bytes: dicts with parameter_bytes and serialized_bytes (a measurement will do).
    Byte counts are exact, so the ratios have no sampling error: low = high = value.
    """
    sizes = {}
    for side, given in (("base", base_bytes), ("sub", sub_bytes)):
        if not isinstance(given, dict):
            raise ValueError(f"{side}_bytes must be a dict with parameter_bytes and serialized_bytes, "
                             f"got {type(given).__name__}")
        for key in ("parameter_bytes", "serialized_bytes"):
            if key not in given:
                raise ValueError(f"{side}_bytes lacks {key!r}; pass the measured {key}")
            sizes[f"{side}_{key}"] = _check_bytes(given[key], f"{side}_bytes[{key!r}]")
    ratio = sizes["base_parameter_bytes"] / sizes["sub_parameter_bytes"]
    return {"value": ratio, "low": ratio, "high": ratio, "parameter_ratio": ratio,
            "serialized_ratio": sizes["base_serialized_bytes"] / sizes["sub_serialized_bytes"], **sizes,
            "exact": True, "formula": "C = baseline parameter_bytes / submission parameter_bytes",
            "method": "exact byte counts: no sampling error, so no interval (low = high = value)"}

# %%
#| export capstone.scoring
def _wilson(correct, total, confidence):
    """wilson_interval with its exact ends: the lower bound is 0 when none is correct and the upper 1
    when all are (the formula gives them only up to rounding, e.g. 2.8e-17)."""
    low, high = wilson_interval(int(correct), int(total), confidence)
    return (0.0 if correct == 0 else max(0.0, low)), (1.0 if correct == total else min(1.0, high))

# %%
#| export capstone.scoring
def accuracy_delta(correct_sub, correct_base, confidence=CONFIDENCE):
    """The submission's accuracy A = correct / total with its Wilson interval, the baseline's, and the
    difference A - A_baseline with an exact McNemar p-value (are they different beyond chance?).

    Both arrays hold 0/1 per test example, the same examples in the same order.
    """
    sub, base = _check_correct(correct_sub, "correct_sub"), _check_correct(correct_base, "correct_base")
    if sub.size != base.size:
        raise ValueError(f"correct_sub has {sub.size} examples but correct_base {base.size}: both must be "
                         "scored on the same test examples in the same order")
    n, k, k_base = int(sub.size), int(sub.sum()), int(base.sum())
    low, high = _wilson(k, n, confidence)
    base_low, base_high = _wilson(k_base, n, confidence)
    return {"value": k / n, "low": low, "high": high, "correct": k, "total": n,
            "baseline_accuracy": k_base / n, "baseline_low": base_low, "baseline_high": base_high,
            "delta": (k - k_base) / n, "p_value": mcnemar_p(sub, base),
            "only_sub_correct": int(np.sum(sub & ~base)), "only_base_correct": int(np.sum(~sub & base)),
            "confidence": float(confidence), "formula": "A = correct / total; delta = A - A_baseline",
            "method": "Wilson score interval; exact McNemar test on the examples where the two disagree"}

# %%
#| export capstone.scoring
def _constraint(name, value, interval, bound, met, conclusive, reason):
    return {"constraint": name, "value": value, "interval": list(interval), "bound": bound,
            "met": bool(met), "conclusive": bool(conclusive), "reason": reason}

# %%
#| export capstone.scoring
def _accuracy_constraint(correct, bound):
    """min_accuracy: met when the Wilson lower bound >= bound; failed conclusively when the upper bound < bound."""
    n, k = int(correct.size), int(correct.sum())
    low, high = _wilson(k, n, CONFIDENCE)
    where = f"accuracy {k / n:.4f} ({k}/{n}), Wilson 95% interval [{low:.4f}, {high:.4f}]"
    if low >= bound:
        return _constraint("min_accuracy", k / n, (low, high), bound, True, True,
                           f"{where}: lower bound >= {bound:g}, met conclusively")
    if high < bound:
        return _constraint("min_accuracy", k / n, (low, high), bound, False, True,
                           f"{where}: upper bound < {bound:g}, conclusively below the floor")
    return _constraint("min_accuracy", k / n, (low, high), bound, False, False,
                       f"{where} reaches below {bound:g}: not met conclusively (a more accurate model, or "
                       "more test examples, would settle it)")

# %%
#| export capstone.scoring
def _latency_constraint(latency_ms, bound):
    """max_latency_ms: met when the upper bound of the median's order-statistic interval < bound."""
    low, high, achieved = median_interval(latency_ms, CONFIDENCE)
    median, n = float(np.median(latency_ms)), int(latency_ms.size)
    where = f"median latency {median:.4g} ms (n={n}), interval [{low:.4g}, {high:.4g}] ms"
    if achieved < CONFIDENCE - 1e-12:
        return _constraint("max_latency_ms", median, (low, high), bound, False, False,
                           f"{where} has only {achieved:.1%} confidence (n={n} is too few for 95%): not met "
                           "conclusively; time at least 6 calls")
    if high < bound:
        return _constraint("max_latency_ms", median, (low, high), bound, True, True,
                           f"{where}: upper bound < {bound:g} ms, met conclusively")
    if low >= bound:
        return _constraint("max_latency_ms", median, (low, high), bound, False, True,
                           f"{where}: lower bound >= {bound:g} ms, conclusively too slow")
    return _constraint("max_latency_ms", median, (low, high), bound, False, False,
                       f"{where} reaches {bound:g} ms: not met conclusively (make it faster, or time more calls)")

# %%
#| export capstone.scoring
def _memory_constraint(parameter_bytes, bound):
    """max_memory_bytes: exact byte count < bound."""
    met = parameter_bytes < bound
    verdict = "met" if met else "too large"
    return _constraint("max_memory_bytes", parameter_bytes, (parameter_bytes, parameter_bytes), bound, met, True,
                       f"{MEMORY_METRIC} {parameter_bytes:,} {'<' if met else '>='} {bound:,} (exact): {verdict}")

# %%
#| export capstone.scoring
def check_constraints(measurement, rules):
    """[{constraint, value, interval, bound, met, conclusive, reason}] for each constraint rules sets.

    met is True only when met CONCLUSIVELY: accuracy by its Wilson 95% lower bound >= min_accuracy;
    latency by the upper bound of the median's 95% order-statistic interval < max_latency_ms (n < 6
    calls cannot reach 95%: not conclusive); memory by exact parameter_bytes < max_memory_bytes.
    conclusive is True when the interval settles the question either way.
    """
    if not isinstance(rules, EventRules):
        raise ValueError(f"rules must be an EventRules (see rules_for), got {type(rules).__name__}")
    m = check_measurement(measurement)
    found = []
    if rules.min_accuracy is not None:
        found.append(_accuracy_constraint(m["correct"], rules.min_accuracy))
    if rules.max_latency_ms is not None:
        found.append(_latency_constraint(m["latency_ms"], rules.max_latency_ms))
    if rules.max_memory_bytes is not None:
        found.append(_memory_constraint(m["parameter_bytes"], rules.max_memory_bytes))
    return found

# %% nbgrader={"grade": false, "grade_id": "geometric-mean", "locked": false, "schema_version": 3, "solution": true}
#| export capstone.scoring
def _geometric_mean(values):
    """(v1 * ... * vk) ** (1/k) of values >= 0 (results.geometric_mean refuses 0; a bound can be 0)."""
    ### BEGIN SOLUTION
    return float(np.prod(values) ** (1.0 / len(values)))
    ### END SOLUTION

# %%
#| export capstone.scoring
def _all_around(m, b, parts, seed):
    """G = (S * C * A / A_baseline) ** (1/3); bounds from S and A at 97.5% each (>= 95% jointly)."""
    base_acc = parts["accuracy"]["baseline_accuracy"]
    if base_acc == 0:
        raise ValueError("the baseline got no test example right (accuracy 0): accuracy relative to it is "
                         "undefined; check the baseline model and the labels")
    s_joint = speedup(b["latency_ms"], m["latency_ms"], seed, JOINT_CONFIDENCE, _sessions(m, b))
    a_low, a_high = _wilson(parts["accuracy"]["correct"], parts["accuracy"]["total"], JOINT_CONFIDENCE)
    c = parts["compression"]["value"]
    score = _geometric_mean([parts["speedup"]["value"], c, parts["accuracy"]["value"] / base_acc])
    low = _geometric_mean([s_joint["low"], c, a_low / base_acc])
    high = _geometric_mean([s_joint["high"], c, a_high / base_acc])
    joint = {"confidence": JOINT_CONFIDENCE, "speedup_low": s_joint["low"], "speedup_high": s_joint["high"],
             "accuracy_low": a_low, "accuracy_high": a_high, "relative_accuracy": parts["accuracy"]["value"] / base_acc}
    return score, low, high, joint

# %%
#| export capstone.scoring
def _event_value(event, m, b, parts, seed):
    """(score, low, high, tiebreak, extra) of one event from the components."""
    s, c, a = parts["speedup"], parts["compression"], parts["accuracy"]
    if event is OlympicEvent.LATENCY_SPRINT:
        return s["value"], s["low"], s["high"], None, {}
    if event is OlympicEvent.MEMORY_CHALLENGE:
        return c["value"], c["value"], c["value"], c["serialized_ratio"], {}
    if event is OlympicEvent.ACCURACY_CONTEST:
        return a["value"], a["low"], a["high"], None, {}
    if event is OlympicEvent.ALL_AROUND:
        score, low, high, joint = _all_around(m, b, parts, seed)
        return score, low, high, None, {"joint_intervals": joint}
    return s["value"] * c["value"], s["low"] * c["value"], s["high"] * c["value"], None, {}   # EXTREME_PUSH

# %%
#| export capstone.scoring
def event_score(event, measurement, baseline, rules=None, seed=0):
    """One submission's score in one event, with its interval and eligibility.

    Scores (all higher is better; the baseline scores 1, except accuracy):
      Latency Sprint:   S = median(base latency) / median(sub latency); bootstrap 95% interval.
      Memory Challenge: C = base parameter_bytes / sub parameter_bytes; exact (low = high = C);
                        tiebreak = base serialized_bytes / sub serialized_bytes.
      Accuracy Contest: A = correct / total; Wilson 95% interval.
      All-Around:       G = (S * C * A / A_base) ** (1/3); low/high = G of the lower/upper bounds of S
                        and A at 97.5% each (C exact): >= 95% jointly by Bonferroni, since G rises with each.
      Extreme Push:     X = S * C; interval = S's interval times C (C exact).
    eligible: every constraint of rules (default DEFAULT_RULES[event]) met conclusively; the score is
    computed either way, and status/reason say why an entry cannot be ranked.
    Returns {event, score, low, high, higher_is_better, formula, components, constraints, eligible,
    status, reason, tiebreak}.
    """
    event = parse_event(event)
    rules = DEFAULT_RULES[event] if rules is None else rules
    if not isinstance(rules, EventRules) or rules.event is not event:
        raise ValueError(f"rules must be the EventRules of {event.value}, got {rules!r}; use rules_for({event.value!r})")
    m, b = check_measurement(measurement, "measurement"), check_measurement(baseline, "baseline")
    parts = {"speedup": speedup(b["latency_ms"], m["latency_ms"], seed, sessions=_sessions(m, b)),
             "compression": compression(baseline, measurement),
             "accuracy": accuracy_delta(m["correct"], b["correct"])}
    score, low, high, tiebreak, extra = _event_value(event, m, b, parts, seed)
    constraints = check_constraints(measurement, rules)
    failed = [c["reason"] for c in constraints if not c["met"]]
    return {"event": event.value, "score": float(score), "low": float(low), "high": float(high),
            "higher_is_better": rules.higher_is_better, "score_name": rules.score_name, "formula": rules.formula,
            "tiebreak": tiebreak, "components": {**parts, **extra}, "constraints": constraints,
            "eligible": not failed, "status": STATUS_NOT_MET if failed else STATUS_OK,
            "reason": "; ".join(failed) if failed else None}

# %%
#| export capstone.scoring
def _check_entry(entry, i):
    """entry validated for rank(): id (str), eligible (bool); eligible ones a finite score with
    low <= high; ineligible ones a reason."""
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
        raise ValueError(f"entries[{i}] must be a dict with a non-empty str 'id', got {entry!r}")
    if not isinstance(entry.get("eligible"), bool):
        raise ValueError(f"entries[{i}] ({entry['id']}): 'eligible' must be True or False, got {entry.get('eligible')!r}")
    if not entry["eligible"]:
        if not isinstance(entry.get("reason"), str) or not entry["reason"].strip():
            raise ValueError(f"entries[{i}] ({entry['id']}) is ineligible but gives no 'reason'; say why")
        return
    for key in ("score", "low", "high") + (("tiebreak",) if entry.get("tiebreak") is not None else ()):
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"entries[{i}] ({entry['id']}): {key!r} must be a finite number, got {value!r}")
    if entry["low"] > entry["high"]:
        raise ValueError(f"entries[{i}] ({entry['id']}): low {entry['low']} > high {entry['high']}; "
                         "pass the interval as low <= high")

# %% nbgrader={"grade": false, "grade_id": "shares-rank", "locked": false, "schema_version": 3, "solution": true}
#| export capstone.scoring
def _shares_rank(leader, entry):
    """True when entry's interval overlaps the leader's (closed intervals), unless both scores are exact
    (low == high) and their tie-break values differ."""
    ### BEGIN SOLUTION
    overlap = entry["low"] <= leader["high"] and leader["low"] <= entry["high"]
    exact = leader["low"] == leader["high"] and entry["low"] == entry["high"]
    return overlap and not (exact and leader.get("tiebreak") != entry.get("tiebreak"))
    ### END SOLUTION

# %%
#| export capstone.scoring
def rank(entries, event):
    """Eligible entries best first with shared ranks, then the ineligible ones (rank None).

    Rule: sort eligible entries by score (then tiebreak, then id), best first. The first entry leads
    rank group 1. Walking down the list, an entry whose interval [low, high] overlaps the interval of
    the CURRENT group's leader shares the leader's rank; the first one that does not becomes the
    leader of a new group, ranked 1 + the number of entries above it (1, 1, 3: competition ranking).
    Overlap is judged against the leader only, so chains do not extend a group: if A overlaps B and B
    overlaps C but A does not overlap C, A and B share rank 1 and C is ranked 3.
    Exact scores (low == high, e.g. Memory Challenge) that are equal share a rank only when their
    'tiebreak' values are equal too. Ineligible entries follow in id order with their 'reason'.
    Each returned dict is a copy of the entry plus 'rank' and 'leader' (the id its rank is shared with).
    """
    rules = DEFAULT_RULES[parse_event(event)]
    if not isinstance(entries, (list, tuple)):
        raise ValueError(f"entries must be a list of dicts, got {type(entries).__name__}")
    for i, entry in enumerate(entries):
        _check_entry(entry, i)
    ids = [e["id"] for e in entries]
    if len(set(ids)) != len(ids):
        raise ValueError(f"entry ids must be unique, got duplicates {sorted({i for i in ids if ids.count(i) > 1})}")
    eligible = [dict(e) for e in entries if e["eligible"]]
    with_tiebreak = {e.get("tiebreak") is not None for e in eligible}
    if len(with_tiebreak) > 1:
        raise ValueError("some eligible entries have a 'tiebreak' and others not; give all or none of them one")
    sign = -1.0 if rules.higher_is_better else 1.0
    eligible.sort(key=lambda e: (sign * e["score"], sign * (e.get("tiebreak") or 0.0), e["id"]))
    leader = None
    for position, entry in enumerate(eligible, start=1):
        if leader is None or not _shares_rank(leader, entry):
            leader = entry
            leader["rank"] = position
        entry["rank"], entry["leader"] = leader["rank"], leader["id"]
    others = sorted((dict(e, rank=None, leader=None) for e in entries if not e["eligible"]), key=lambda e: e["id"])
    return eligible + others

# %% nbgrader={"grade": false, "grade_id": "medals", "locked": false, "schema_version": 3, "solution": true}
#| export capstone.scoring
def medals(ranked):
    """Copies of the ranked entries (from rank()) with 'medal': gold, silver, bronze for ranks 1, 2, 3,
    else None. Shared ranks share a medal and the next rank skips: ranks 1, 1, 3 -> gold, gold, bronze;
    1, 2, 2 -> gold, silver, silver; 1, 1, 1, 4 -> three golds and no medal for rank 4."""
    ### BEGIN SOLUTION
    if not isinstance(ranked, (list, tuple)) or any(not isinstance(e, dict) or "rank" not in e for e in ranked):
        raise ValueError("medals needs the list that rank() returns (dicts with a 'rank')")
    return [dict(e, medal=MEDALS.get(e["rank"])) for e in ranked]
    ### END SOLUTION

# %%
#| export capstone.scoring
def _rules_table(rules):
    """{OlympicEvent: EventRules}: DEFAULT_RULES updated with rules ({event or its name: EventRules})."""
    table = dict(DEFAULT_RULES)
    for key, value in (rules or {}).items():
        event = parse_event(key)
        if not isinstance(value, EventRules) or value.event is not event:
            raise ValueError(f"rules[{key!r}] must be the EventRules of {event.value}, got {value!r}")
        table[event] = value
    return table

# %%
#| export capstone.scoring
def score_all(measurements, baseline, events, rules=None, seed=0):
    """{event value: medals(rank(...))} for each event: every submission scored against the baseline.

    measurements: {submission id: measurement}; events: event names or OlympicEvents; rules:
    {event: EventRules} for the events whose constraints differ from DEFAULT_RULES. Each ranked entry
    holds id, score, low, high, tiebreak, eligible, status, reason, rank, leader, medal and 'result',
    the full event_score.
    """
    if not isinstance(measurements, dict) or not measurements:
        raise ValueError("measurements must be a non-empty dict {submission id: measurement}")
    chosen = [parse_event(e) for e in ([events] if isinstance(events, (str, OlympicEvent)) else events)]
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"events must name each event once, at least one, got {[e.value for e in chosen]}")
    table = _rules_table(rules)
    board = {}
    for event in chosen:
        entries = []
        for sub_id, measurement in measurements.items():
            result = event_score(event, measurement, baseline, table[event], seed)
            entries.append({"id": sub_id, "score": result["score"], "low": result["low"], "high": result["high"],
                            "tiebreak": result["tiebreak"], "eligible": result["eligible"],
                            "status": result["status"], "reason": result["reason"], "result": result})
        board[event.value] = medals(rank(entries, event))
    return board


# %% [markdown]
# ### A worked example by hand
#
# Baseline: 10 correct out of 10, latencies 2 ms; a submission: 9 of 10 correct, latencies 1 ms,
# a quarter of the bytes. Speed-up 2, compression 4, Extreme Push 8.

# %%
base_m = {"correct": np.ones(10), "latency_ms": np.full(12, 2.0) + np.arange(12) * 1e-3,
          "parameter_bytes": 4000, "serialized_bytes": 4400}
sub_m = {"correct": np.r_[np.ones(9), 0.0], "latency_ms": np.full(12, 1.0) + np.arange(12) * 1e-3,
         "parameter_bytes": 1000, "serialized_bytes": 1100}
push = event_score(OlympicEvent.EXTREME_PUSH, sub_m, base_m, rules_for(OlympicEvent.EXTREME_PUSH,
                                                                       {"min_accuracy": 0.5}))
print(push["formula"], "->", round(push["score"], 3))
assert abs(push["score"] - (2.0 + 0.0055) / (1.0 + 0.0055) * 4) < 1e-6

# %% [markdown]
# ## Part 3: a real mini-Olympics, measured here
#
# The four shipped models enter every event. Their measurements come from module 19's
# `Benchmark` (latency interleaved across all models, accuracy from the labels, bytes from the
# stored arrays), with `digits_cnn` as the baseline. The grader does the same, but each
# submission in its own sandboxed process; see the next part.

# %%
from tinytorch.benchmarking.harness import Benchmark
from tinytorch.data.loader import load_digits
from tinytorch.models.zoo import load_model

images, labels = load_digits("test").tensors
entrants = {name: load_model(name) for name in ("digits_cnn", "digits_cnn_int8", "digits_cnn_pruned",
                                                "digits_cnn_distilled")}
bench = Benchmark(entrants, (images.data, labels.data), max_time_s=2.0)
latency, accuracy, memory = bench.run_latency_benchmark(), bench.run_accuracy_benchmark(), bench.run_memory_benchmark()
measured = {name: {"correct": bench.correct[name], "latency_ms": latency[name].values,
                   "parameter_bytes": memory[name].metadata["parameter_bytes"],
                   "serialized_bytes": memory[name].metadata["serialized_bytes"]} for name in entrants}
baseline_m = measured["digits_cnn"]
results = score_all({n: m for n, m in measured.items() if n != "digits_cnn"}, baseline_m, list(OlympicEvent))
for event, ranked in results.items():
    print(f"== {event.value if hasattr(event, 'value') else event}")
    for entry in ranked:
        print(f"  {str(entry.get('rank')):>4} {str(entry.get('medal') or ''):>6} {entry['id']:<22} "
              f"score {entry['score']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"
              + ("" if entry.get("eligible") else f"  not eligible: {entry.get('reason')}"))

# %% [markdown]
# ## Part 4: submissions, the sandboxed grader and the leaderboard
#
# A submission is a folder with `submission.py` (a `build_model()` that returns a model built from
# the public tinytorch API and numpy; it may load weight files from its folder) and
# `submission.json` (student id, events, techniques applied, division).
#
# - `tito olympics submit FOLDER --event latency_sprint` validates it without running it and packs
#   an archive; every problem is listed with how to fix it.
# - `tito olympics grade SUBMISSIONS --out DIR` grades each submission in its own jailed process
#   (its own user, process, file-system and network namespaces, a read-only package, limits on
#   memory, processes and CPU for it and everything it starts) with a wall-clock timeout. The
#   grader keeps the labels and its own clock: it sends the test inputs in a secret shuffled order,
#   computes accuracy itself, and times the submission and the baseline alternately with its own
#   clock on batches of fresh inputs never seen before, so patching timers, caching answers or
#   memorising the order gains nothing. It does so in five sessions, each with a fresh pair of
#   worker processes: on a shared machine a
#   process keeps the speed its memory layout and scheduling gave it for its whole life, so the
#   speed-up interval (`session_ratio_ci`, a two-level bootstrap) must include how much that
#   varies from one process to the next. The speed-up itself is the median of the rounds' own
#   ratios (`paired_speedup`): a shared machine changes speed in steps lasting seconds, and the
#   two requests of a round see the same step. Memory is what `state_dict()` declares, and the
#   grader checks that this state really computes the outputs. Every submission ends with one
#   status (ok, invalid, timeout, crashed, out of memory, constraint not met, grader error) and a
#   reason; results are versioned JSON written atomically, and re-running is idempotent. Only one
#   entry per student counts in each event (the latest, by default).
# - `tito olympics leaderboard DIR` renders the rankings with medals as CSV, Markdown and HTML with
#   plots, from the JSON alone.
#
# `make demo` runs all three on the bundled example submissions.

# %% [markdown]
# ## Graded tests

# %% nbgrader={"grade": true, "grade_id": "test-geometric-mean", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert abs(_geometric_mean([2.0, 8.0]) - 4.0) < 1e-12
assert abs(_geometric_mean([2.0, 4.0, 1.0]) - 2.0) < 1e-12
assert _geometric_mean([0.0, 5.0]) == 0.0

# %% nbgrader={"grade": true, "grade_id": "test-shares-rank", "locked": true, "points": 3, "schema_version": 3, "solution": false}
assert _shares_rank({"low": 1.0, "high": 2.0}, {"low": 1.5, "high": 3.0})
assert _shares_rank({"low": 1.0, "high": 2.0}, {"low": 2.0, "high": 2.5})            # closed intervals touch
assert not _shares_rank({"low": 2.0, "high": 3.0}, {"low": 1.0, "high": 1.9})
assert _shares_rank({"low": 2.0, "high": 2.0, "tiebreak": 1.0}, {"low": 2.0, "high": 2.0, "tiebreak": 1.0})
assert not _shares_rank({"low": 2.0, "high": 2.0, "tiebreak": 1.2}, {"low": 2.0, "high": 2.0, "tiebreak": 1.0})

# %% nbgrader={"grade": true, "grade_id": "test-medals", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_given = [{"rank": 1}, {"rank": 1}, {"rank": 3}, {"rank": 4}, {"rank": None}]
assert [e["medal"] for e in medals(_given)] == ["gold", "gold", "bronze", None, None]
assert [e["medal"] for e in medals([{"rank": 1}, {"rank": 2}, {"rank": 2}])] == ["gold", "silver", "silver"]
assert "medal" not in _given[0]                                                     # copies, not edits

# %% [markdown]
# ## Summary
#
# - Events have explicit, configurable rules and documented score formulas.
# - Scores are ratios to a baseline measured in the same run, so they travel across machines.
# - Constraints count only when met conclusively; overlapping intervals share a rank.
# - The grader, not the student, measures: sandboxed processes, the parent's clock, hidden labels.
