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
# > Capstone: combine quantization, pruning and distillation into one optimized model of your own, measure it against the baseline, hand it in, and grade it with the rules you write.
#
# ## Why the Olympics need rules you can check
#
# Modules 14-19 gave you a profiler, three families of optimizations and a benchmarking package
# that refuses to report a number it did not measure. The capstone puts them to work: you build an
# **entry**, an optimized version of the reference `digits_cnn`, and enter it in one of five events.
# A competition is only fair when:
#
# - **every score is re-measured by the grader**, never self-reported;
# - **scores are relative to a baseline measured in the same grading run, on the same machine,
#   interleaved with the submission**: a speed-up of 1.7x means the same on a laptop and on a
#   server, while "0.2 ms" does not;
# - **constraints are met conclusively**: "accuracy >= 85%" means the lower bound of the
#   accuracy's 95% interval is at least 85%, not that the point estimate happened to land there;
# - **ties are honest**: two entries whose score intervals overlap share a rank.
#
# What you write here:
#
# 1. three scoring rules (`tinytorch.capstone.scoring`): the conclusive constraint test, the
#    All-Around score with its joint interval, and honest ranks;
# 2. your entry (`tinytorch.capstone.entry`): compose techniques of modules 15-17 into a model,
#    measure it against the baseline with module 19's `Benchmark`, decide whether it wins its
#    event conclusively, and write it as a submission folder;
# 3. then you validate the folder and grade it here with the real Olympics grader, which runs it in
#    a sandbox and measures it itself.
#
# Given, in this module's other notebooks (they ship solved): the events and their rules
# (`20_capstone.rules.ipynb` -> `tinytorch.capstone.events`), the score components speed-up,
# compression and accuracy (`20_capstone.components.ipynb` -> `tinytorch.capstone.components`), and
# the recipe and folder writer (`20_capstone.submit.ipynb` -> `tinytorch.capstone.submit`).

# %%
#| default_exp capstone.scoring

# %% [markdown]
# ## Part 1: the five events, and a score counted by hand
#
# Each event has eligibility constraints and one score, relative to the baseline (which scores 1),
# except the Accuracy Contest, whose score is the accuracy itself.

# %%
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tinytorch.benchmarking.benchmark import OlympicEvent
from tinytorch.capstone.components import accuracy_delta, compression, speedup, wilson_bounds
from tinytorch.capstone.events import DEFAULT_RULES, rules_for
from tinytorch.capstone.submit import TECHNIQUES, describe_step
from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import load_digits
from tinytorch.models.zoo import load_model, weights_digest

for event in OlympicEvent:
    print(rules_for(event))

# %% [markdown]
# **By hand.** A baseline gets 10 of 10 test images right at 2 ms a call; a submission 9 of 10 at 1 ms,
# with a quarter of the parameter bytes. Then speed-up S = 2, compression C = 4, accuracy A = 0.9:
#
# - Extreme Push X = S * C = 8;
# - All-Around G = (S * C * A / A_baseline)^(1/3) = (2 * 4 * 0.9)^(1/3) = 7.2^(1/3) = 1.93;
# - the Latency Sprint's floor "accuracy >= 0.85" is **not met conclusively**: 9 of 10 is 0.90, but
#   with 10 examples the Wilson 95% interval is wide and reaches below 0.85.
#
# The cell computes the same with the given components (the latencies are 2 ms and 1 ms plus a tiny
# ramp, so the medians are 2.0055 and 1.0055 ms).

# %%
base_m = {"correct": np.ones(10), "latency_ms": np.full(12, 2.0) + np.arange(12) * 1e-3,
          "parameter_bytes": 4000, "serialized_bytes": 4400}
sub_m = {"correct": np.r_[np.ones(9), 0.0], "latency_ms": np.full(12, 1.0) + np.arange(12) * 1e-3,
         "parameter_bytes": 1000, "serialized_bytes": 1100}
S = speedup(base_m["latency_ms"], sub_m["latency_ms"])["value"]
C = compression(base_m, sub_m)["value"]
A = accuracy_delta(sub_m["correct"], base_m["correct"])["value"]
low, high = wilson_bounds(9, 10)
print(f"S = {S:.4f}, C = {C:g}, A = {A:g}: X = S*C = {S * C:.3f}, G = (S*C*A)^(1/3) = {(S * C * A) ** (1 / 3):.3f}")
print(f"accuracy 9/10, Wilson 95% interval [{low:.3f}, {high:.3f}]: lower bound < 0.85, upper >= 0.85")
assert abs(S - 2.0055 / 1.0055) < 1e-9 and C == 4.0 and A == 0.9
assert low < 0.85 <= high

# %% [markdown]
# ## Part 2: the scoring rules
#
# A submission's measurement holds what the grader measured: one 0/1 per test example, per-call
# latencies interleaved with the baseline's, the exact parameter and serialized bytes. The given
# components turn a measurement and the baseline's into S, C and A with their intervals. The rules
# that make them a competition are yours:
#
# - **the conclusive constraint test** (`_accuracy_constraint`);
# - **the All-Around score and its interval** (`_all_around`);
# - **ranks that share when intervals overlap** (`rank`).

# %%
#| export capstone.scoring
"""Olympic scoring: numbers in, numbers out. Every score is RELATIVE to the baseline model measured in
the same grading run on the same machine (latency interleaved with it), so scores from different
machines can be compared; every score carries an interval, and ranks follow the intervals.

The inputs are measurements (see tinytorch.capstone.components, which computes the speed-up, compression
and accuracy components); outputs are JSON-ready (plain Python, no NaN or inf).
"""
import math
import numbers

import numpy as np

from tinytorch.benchmarking.benchmark import OlympicEvent
from tinytorch.benchmarking.stats import median_interval
from tinytorch.capstone.components import CONFIDENCE, accuracy_delta, check_measurement, compression, speedup
from tinytorch.capstone.components import paired_speedup, session_labels, session_ratio_ci, wilson_bounds
from tinytorch.capstone.events import DEFAULT_RULES, MEMORY_METRIC, EventRules, parse_event
# Importable from here as before the components moved to their own file:
from tinytorch.benchmarking.results import mcnemar_p
from tinytorch.benchmarking.stats import check_values, compare_samples, prob_less, wilson_interval

_all_ = ["CONFIDENCE", "accuracy_delta", "check_measurement", "compression", "paired_speedup", "session_ratio_ci",
         "speedup"]
# All-Around combines two uncertain components (speedup, accuracy). Each is taken at 1 - 0.05/2 so that
# both hold at once with probability >= 95% (Bonferroni); the score is increasing in each component,
# so then it lies between the combined bounds.
JOINT_CONFIDENCE = 1 - (1 - CONFIDENCE) / 2
MEDALS = {1: "gold", 2: "silver", 3: "bronze"}
STATUS_OK, STATUS_NOT_MET = "ok", "constraint not met"


def _constraint(name, value, interval, bound, met, conclusive, reason):
    return {"constraint": name, "value": value, "interval": list(interval), "bound": bound,
            "met": bool(met), "conclusive": bool(conclusive), "reason": reason}

# %% [markdown]
# ### Step 1: the conclusive constraint test
#
# A floor such as "accuracy >= 0.85" is decided by the accuracy's Wilson 95% interval [low, high]
# (`wilson_bounds(correct, total)`), with three outcomes:
#
# - low >= floor: **met conclusively** (met = True, conclusive = True);
# - high < floor: **conclusively below** (met = False, conclusive = True);
# - otherwise the interval straddles the floor: **not met conclusively** (met = False, conclusive = False):
#   a better model, or more test examples, would settle it.
#
# Return `_constraint("min_accuracy", accuracy, (low, high), bound, met, conclusive, reason)`; the reason
# starts with `accuracy 0.9000 (9/10), Wilson 95% interval [0.5958, 0.9821]` and ends with
# `: lower bound >= 0.85, met conclusively`, `: upper bound < 0.85, conclusively below the floor` or
# ` reaches below 0.85: not met conclusively (a more accurate model, or more test examples, would
# settle it)`.

# %% nbgrader={"grade": false, "grade_id": "accuracy-constraint", "locked": false, "schema_version": 3, "solution": true}
#| export capstone.scoring
def _accuracy_constraint(correct, bound):
    """min_accuracy: met when the Wilson lower bound >= bound; failed conclusively when the upper bound < bound.
    correct: the checked bool array of a measurement (one entry per test example)."""
    ### BEGIN SOLUTION
    n, k = int(correct.size), int(correct.sum())
    low, high = wilson_bounds(k, n, CONFIDENCE)
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
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-accuracy-constraint", "locked": true, "points": 3, "schema_version": 3, "solution": false}
import scipy.stats as st


def _wilson_oracle(k, n, z=st.norm.ppf(0.975)):
    """Wilson's interval from its formula (Wilson 1927), independently of the package."""
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


for k, n, bound in ((95, 100, 0.85), (9, 10, 0.85), (60, 100, 0.85), (340, 359, 0.80), (0, 20, 0.5)):
    got = _accuracy_constraint(np.r_[np.ones(k), np.zeros(n - k)].astype(bool), bound)
    lo, hi = _wilson_oracle(k, n)
    want_met, want_conclusive = lo >= bound, lo >= bound or hi < bound
    assert (got["met"], got["conclusive"]) == (want_met, want_conclusive), \
        f"{k}/{n} against the floor {bound}: Wilson [{lo:.4f}, {hi:.4f}] means met={want_met}, " \
        f"conclusive={want_conclusive}; _accuracy_constraint said met={got['met']}, conclusive={got['conclusive']}"
    assert got["constraint"] == "min_accuracy" and abs(got["value"] - k / n) < 1e-12 and got["bound"] == bound
    assert np.allclose(got["interval"], [max(lo, 0.0), min(hi, 1.0)], atol=1e-9), \
        f"{k}/{n}: the interval should be Wilson's [{lo:.4f}, {hi:.4f}], got {got['interval']}"
assert _accuracy_constraint(np.r_[np.ones(9), 0.0].astype(bool), 0.85)["reason"] == (
    "accuracy 0.9000 (9/10), Wilson 95% interval [0.5958, 0.9821] reaches below 0.85: not met conclusively "
    "(a more accurate model, or more test examples, would settle it)")
assert _accuracy_constraint(np.ones(100, bool), 0.9)["reason"].endswith(": lower bound >= 0.9, met conclusively")
assert _accuracy_constraint(np.zeros(20, bool), 0.5)["reason"].endswith(": upper bound < 0.5, conclusively below the floor")

# %% [markdown]
# Latency and memory limits are decided the same way (given): a latency limit by the median's
# distribution-free interval (an upper bound below the limit: met; a lower bound at or above it:
# conclusively too slow), memory by exact byte counts. `check_constraints` applies an event's rules.

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


def _memory_constraint(parameter_bytes, bound):
    """max_memory_bytes: exact byte count < bound."""
    met = parameter_bytes < bound
    verdict = "met" if met else "too large"
    return _constraint("max_memory_bytes", parameter_bytes, (parameter_bytes, parameter_bytes), bound, met, True,
                       f"{MEMORY_METRIC} {parameter_bytes:,} {'<' if met else '>='} {bound:,} (exact): {verdict}")


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


def _geometric_mean(values):
    """(v1 * ... * vk) ** (1/k) of values >= 0 (results.geometric_mean refuses 0; a bound can be 0)."""
    return float(np.prod(values) ** (1.0 / len(values)))

# %% [markdown]
# ### Step 2: the All-Around score and its interval
#
# G = (S * C * A / A_baseline)^(1/3): the geometric mean of the three ratios, so that doubling any one
# of them counts the same, and the baseline scores 1. Its interval must hold for S and A **at once**.
# Take each at 97.5% (`JOINT_CONFIDENCE`): both hold together with probability >= 95% (Bonferroni), and
# since G rises with S and with A, G then lies between G(S_low, C, A_low) and G(S_high, C, A_high).
#
# - the joint speed-up: `speedup(b["latency_ms"], m["latency_ms"], seed, JOINT_CONFIDENCE, session_labels(m, b))`;
# - the joint accuracy bounds: `wilson_bounds(correct, total, JOINT_CONFIDENCE)` with the counts in
#   `parts["accuracy"]`; C = `parts["compression"]["value"]` is exact;
# - the point score uses `parts["speedup"]["value"]` and `parts["accuracy"]["value"]` (95% components).
#
# Return `(score, low, high, joint)`, joint = {"confidence", "speedup_low", "speedup_high",
# "accuracy_low", "accuracy_high", "relative_accuracy"}.

# %% nbgrader={"grade": false, "grade_id": "all-around", "locked": false, "schema_version": 3, "solution": true}
#| export capstone.scoring
def _all_around(m, b, parts, seed):
    """G = (S * C * A / A_baseline) ** (1/3); bounds from S and A at 97.5% each (>= 95% jointly).
    m, b: checked measurements of the submission and the baseline; parts: their components (event_score)."""
    base_acc = parts["accuracy"]["baseline_accuracy"]
    if base_acc == 0:
        raise ValueError("the baseline got no test example right (accuracy 0): accuracy relative to it is "
                         "undefined; check the baseline model and the labels")
    ### BEGIN SOLUTION
    s_joint = speedup(b["latency_ms"], m["latency_ms"], seed, JOINT_CONFIDENCE, session_labels(m, b))
    a_low, a_high = wilson_bounds(parts["accuracy"]["correct"], parts["accuracy"]["total"], JOINT_CONFIDENCE)
    c, relative = parts["compression"]["value"], parts["accuracy"]["value"] / base_acc
    score = _geometric_mean([parts["speedup"]["value"], c, relative])
    low = _geometric_mean([s_joint["low"], c, a_low / base_acc])
    high = _geometric_mean([s_joint["high"], c, a_high / base_acc])
    joint = {"confidence": JOINT_CONFIDENCE, "speedup_low": s_joint["low"], "speedup_high": s_joint["high"],
             "accuracy_low": a_low, "accuracy_high": a_high, "relative_accuracy": relative}
    return score, low, high, joint
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-all-around", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def _parts(m, b):
    return {"speedup": speedup(b["latency_ms"], m["latency_ms"]), "compression": compression(b, m),
            "accuracy": accuracy_delta(m["correct"], b["correct"])}


# Exact halving: every paired ratio is 2, so S = 2 with the interval [2, 2] at any confidence.
_b = {"correct": np.ones(40), "latency_ms": np.linspace(2.0, 3.0, 30), "parameter_bytes": 8000, "serialized_bytes": 8800}
_m = {"correct": np.r_[np.ones(36), np.zeros(4)], "latency_ms": _b["latency_ms"] / 2,
      "parameter_bytes": 1000, "serialized_bytes": 1200}
score, lo, hi, joint = _all_around(_m, _b, _parts(_m, _b), 0)
assert abs(score - (2 * 8 * 0.9) ** (1 / 3)) < 1e-9, f"G should be (2 * 8 * 0.9)^(1/3) = {(14.4) ** (1 / 3):.6f}, got {score}"
a_lo, a_hi = st.binomtest(36, 40).proportion_ci(0.975, method="wilson")
assert abs(lo - (2 * 8 * a_lo) ** (1 / 3)) < 1e-9 and abs(hi - (2 * 8 * a_hi) ** (1 / 3)) < 1e-9, \
    f"bounds should use the 97.5% Wilson interval [{a_lo:.5f}, {a_hi:.5f}] of 36/40 (scipy), got G in [{lo}, {hi}]"
assert joint["confidence"] == JOINT_CONFIDENCE == 0.975 and abs(joint["relative_accuracy"] - 0.9) < 1e-12
assert (joint["speedup_low"], joint["speedup_high"]) == (2.0, 2.0)
# A baseline that is not perfect: accuracy counts relative to it (30 of 40 right: A_baseline = 0.75).
_b2 = dict(_b, correct=np.r_[np.ones(30), np.zeros(10)])
score2, lo2, hi2, _ = _all_around(_m, _b2, _parts(_m, _b2), 0)
assert abs(score2 - (2 * 8 * 0.9 / 0.75) ** (1 / 3)) < 1e-9, f"A / A_baseline = 0.9 / 0.75 = 1.2: G = {(19.2) ** (1 / 3):.6f}, got {score2}"
assert abs(hi2 - (2 * 8 * a_hi / 0.75) ** (1 / 3)) < 1e-9
# No example right: relative accuracy 0, so G and its lower bound are 0 (the geometric mean of a 0 is 0).
_m0 = dict(_m, correct=np.zeros(40))
score0, lo0, hi0, _ = _all_around(_m0, _b, _parts(_m0, _b), 0)
assert score0 == 0.0 == lo0 and hi0 > 0

# %% [markdown]
# Each event's score from the components, and the score of one submission in one event (given):

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
    parts = {"speedup": speedup(b["latency_ms"], m["latency_ms"], seed, sessions=session_labels(m, b)),
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

# %%
push = event_score(OlympicEvent.EXTREME_PUSH, sub_m, base_m, rules_for(OlympicEvent.EXTREME_PUSH, {"min_accuracy": 0.5}))
around = event_score(OlympicEvent.ALL_AROUND, sub_m, base_m)
print(f"{push['formula']} -> {push['score']:.3f} [{push['low']:.3f}, {push['high']:.3f}], eligible: {push['eligible']}")
print(f"{around['formula']} -> {around['score']:.3f}; eligible: {around['eligible']} ({around['reason']})")
assert abs(push["score"] - S * C) < 1e-9 and abs(around["score"] - (S * C * A) ** (1 / 3)) < 1e-9

# %% [markdown]
# ### Step 3: honest ranks
#
# Sort the eligible entries best first (by score, then tiebreak, then id). The first entry leads rank
# group 1. Walking down the list, an entry **shares the rank of the current group's leader** when
# their closed intervals overlap (`entry["low"] <= leader["high"] and leader["low"] <= entry["high"]`),
# except that two exact scores (low == high for both, e.g. the Memory Challenge's byte ratios) share
# only when their `tiebreak` values are equal too. Otherwise the entry leads a new group, ranked 1 +
# the number of entries above it (1, 1, 3: competition ranking). Overlap is judged against the leader
# only, so chains do not extend a group: A overlaps B, B overlaps C, A does not overlap C gives ranks
# 1, 1, 3. Ineligible entries follow in id order with `rank` and `leader` None.
#
# Each returned entry is a copy (`dict(entry)`) with `rank` and `leader` (the id its rank is shared
# with). `rules.higher_is_better` says which way is best (True in every event today).

# %% nbgrader={"grade": false, "grade_id": "rank", "locked": false, "schema_version": 3, "solution": true}
#| export capstone.scoring
def rank(entries, event):
    """Eligible entries best first with shared ranks, then the ineligible ones (rank None).

    Rule: sort eligible entries by score (then tiebreak, then id), best first. An entry whose interval
    [low, high] overlaps the interval of the CURRENT group's leader shares the leader's rank; the first one
    that does not becomes the leader of a new group, ranked 1 + the number of entries above it (1, 1, 3).
    Exact scores (low == high) that are equal share a rank only when their 'tiebreak' values are equal too.
    Ineligible entries follow in id order with their 'reason'. Each returned dict is a copy of the entry
    plus 'rank' and 'leader' (the id its rank is shared with).
    """
    rules = DEFAULT_RULES[parse_event(event)]
    if not isinstance(entries, (list, tuple)):
        raise ValueError(f"entries must be a list of dicts, got {type(entries).__name__}")
    for i, entry in enumerate(entries):
        _check_entry(entry, i)
    ids = [e["id"] for e in entries]
    if len(set(ids)) != len(ids):
        raise ValueError(f"entry ids must be unique, got duplicates {sorted({i for i in ids if ids.count(i) > 1})}")
    if len({e.get("tiebreak") is not None for e in entries if e["eligible"]}) > 1:
        raise ValueError("some eligible entries have a 'tiebreak' and others not; give all or none of them one")
    ### BEGIN SOLUTION
    def shares(leader, entry):
        overlap = entry["low"] <= leader["high"] and leader["low"] <= entry["high"]
        exact = leader["low"] == leader["high"] and entry["low"] == entry["high"]
        return overlap and not (exact and leader.get("tiebreak") != entry.get("tiebreak"))

    sign = -1.0 if rules.higher_is_better else 1.0
    eligible = sorted((dict(e) for e in entries if e["eligible"]),
                      key=lambda e: (sign * e["score"], sign * (e.get("tiebreak") or 0.0), e["id"]))
    leader = None
    for position, entry in enumerate(eligible, start=1):
        if leader is None or not shares(leader, entry):
            leader = entry
            leader["rank"] = position
        entry["rank"], entry["leader"] = leader["rank"], leader["id"]
    others = sorted((dict(e, rank=None, leader=None) for e in entries if not e["eligible"]), key=lambda e: e["id"])
    return eligible + others
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-rank", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def _e(i, score, low, high, tiebreak=None, eligible=True, reason=None):
    return {"id": i, "score": score, "low": low, "high": high, "tiebreak": tiebreak, "eligible": eligible, "reason": reason}


_given = [_e("c", 1.3, 1.1, 1.5), _e("a", 2.0, 1.6, 2.4), _e("b", 1.8, 1.7, 1.9), _e("d", 1.0, 0.9, 1.05),
          _e("x", 9.0, 8.0, 10.0, eligible=False, reason="accuracy too low")]
_ranked = rank(_given, "latency_sprint")
assert [(e["id"], e["rank"], e["leader"]) for e in _ranked] == \
    [("a", 1, "a"), ("b", 1, "a"), ("c", 3, "c"), ("d", 4, "d"), ("x", None, None)], \
    ("a [1.6, 2.4] leads; b [1.7, 1.9] overlaps it (rank 1); c [1.1, 1.5] does not (rank 3, after two entries); "
     f"d [0.9, 1.05] does not overlap c (rank 4); x is ineligible (last, rank None). Got "
     f"{[(e['id'], e['rank'], e['leader']) for e in _ranked]}")
assert _ranked[-1]["reason"] == "accuracy too low"
# chains do not extend a group: A overlaps B, B overlaps C, A does not overlap C -> 1, 1, 3
_chain = rank([_e("A", 3.0, 2.5, 3.5), _e("B", 2.4, 1.9, 2.9), _e("C", 1.8, 1.3, 2.3)], "latency_sprint")
assert [e["rank"] for e in _chain] == [1, 1, 3], f"ranks should be 1, 1, 3, got {[e['rank'] for e in _chain]}"
# exact scores: equal ratios share only with equal tiebreaks
_exact = rank([_e("p", 4.0, 4.0, 4.0, 1.2), _e("q", 4.0, 4.0, 4.0, 1.0), _e("r", 4.0, 4.0, 4.0, 1.0)], "memory_challenge")
assert [(e["id"], e["rank"]) for e in _exact] == [("p", 1), ("q", 2), ("r", 2)], [(e["id"], e["rank"]) for e in _exact]
assert "rank" not in _given[0], "rank must return copies, not change the entries it was given"

# %%
#| export capstone.scoring
def medals(ranked):
    """Copies of the ranked entries (from rank()) with 'medal': gold, silver, bronze for ranks 1, 2, 3,
    else None. Shared ranks share a medal and the next rank skips: ranks 1, 1, 3 -> gold, gold, bronze;
    1, 2, 2 -> gold, silver, silver; 1, 1, 1, 4 -> three golds and no medal for rank 4."""
    if not isinstance(ranked, (list, tuple)) or any(not isinstance(e, dict) or "rank" not in e for e in ranked):
        raise ValueError("medals needs the list that rank() returns (dicts with a 'rank')")
    return [dict(e, medal=MEDALS.get(e["rank"])) for e in ranked]


def _rules_table(rules):
    """{OlympicEvent: EventRules}: DEFAULT_RULES updated with rules ({event or its name: EventRules})."""
    table = dict(DEFAULT_RULES)
    for key, value in (rules or {}).items():
        event = parse_event(key)
        if not isinstance(value, EventRules) or value.event is not event:
            raise ValueError(f"rules[{key!r}] must be the EventRules of {event.value}, got {value!r}")
        table[event] = value
    return table


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
# ## Part 3: your entry
#
# The baseline is the reference CNN, `load_model("digits_cnn")`: 6,090 float32 parameters (24,360
# bytes), about 98.6% on the digits test split. An entry is the baseline transformed by a **recipe**, a
# list of `(technique, options)` steps (`TECHNIQUES`, given), each a public function of modules 15-17:

# %%
baseline = load_model("digits_cnn")
images, labels = load_digits("test").tensors
for name, technique in TECHNIQUES.items():
    print(f"{name:17s} module {technique.module}  {technique.api}")
    print(f"{'':17s} options {sorted(technique.options)}; trains: {technique.trains}; closed division: {technique.closed}")

# %% [markdown]
# ### Step 4: compose the optimization pipeline
#
# `build_entry(base, recipe, seed)` applies the recipe's steps **in order** to a copy of `base` and
# returns the new model in eval mode (`base` is never changed). The steps:
#
# - `prune_channels`: `model = prune_channels(model, fraction)` (a new, smaller network);
# - `fine_tune`: `fine_tune(model, epochs, lr, seed=seed)` trains `model` in place;
# - `distill`: a fresh `student_cnn(seed)` learns from the current model as its teacher,
#   `distill(model, student, epochs, temperature, alpha, seed=seed)`, and becomes the model;
# - `quantize_int8`: `quantize_model(model, calibration_data=...)` with the first `calibration` images of
#   `load_digits("train").tensors[0].data`;
# - `fuse_linear_relu`: `model = fuse_linear_relu(model.eval())`.
#
# `check_recipe` (given) has already validated the steps and their order: quantization last (int8
# layers cannot be trained), fusion after training.

# %%
#| export capstone.entry
"""Your TorchPerf Olympics entry: the baseline digits_cnn optimized by a recipe of modules 15-17's techniques,
measured against the baseline with module 19's Benchmark, judged by its event's rules, and written as a
submission folder (tinytorch.capstone.submit) that `tito olympics submit` and `tito olympics grade` take."""
import copy

from tinytorch.benchmarking.benchmark import Benchmark, OlympicEvent
from tinytorch.benchmarking.results import compare_results
from tinytorch.capstone.components import speedup
from tinytorch.capstone.events import parse_event, rules_for
from tinytorch.capstone.submit import TECHNIQUES, check_recipe, describe_step, write_submission
from tinytorch.data.loader import load_digits
from tinytorch.optimization.acceleration import fuse_linear_relu
from tinytorch.optimization.compression import distill, fine_tune, prune_channels, student_cnn
from tinytorch.optimization.quantization import quantize_model

# %% nbgrader={"grade": false, "grade_id": "compose-pipeline", "locked": false, "schema_version": 3, "solution": true}
#| export capstone.entry
def build_entry(base, recipe, seed=0):
    """A new model: a copy of base with the recipe's steps applied in order, in eval mode (base is unchanged).
    recipe: [(technique, options)], see tinytorch.capstone.submit.TECHNIQUES; seed: for training steps."""
    steps = check_recipe(recipe)
    ### BEGIN SOLUTION
    model = copy.deepcopy(base)
    for name, options in steps:
        if name == "prune_channels":
            model = prune_channels(model, options["fraction"])
        elif name == "fine_tune":
            fine_tune(model, options["epochs"], options["lr"], seed=seed)
        elif name == "distill":
            student = student_cnn(seed)
            distill(model, student, options["epochs"], options["temperature"], options["alpha"], seed=seed)
            model = student
        elif name == "quantize_int8":
            calibration = load_digits("train").tensors[0].data[:options["calibration"]]
            model = quantize_model(model, calibration_data=calibration)
        elif name == "fuse_linear_relu":
            model = fuse_linear_relu(model.eval())
    return model.eval()
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-compose-pipeline", "locked": true, "points": 4, "schema_version": 3, "solution": false}
from tinytorch.optimization.compression import prune_channels as _prune
from tinytorch.optimization.quantization import quantize_model as _quantize

_before = weights_digest(baseline.state_dict())
_x = Tensor.from_numpy(load_digits("test").tensors[0].data[:32])
_cal = load_digits("train").tensors[0].data[:64]
# Oracle: the same public calls, made directly.
_direct = _quantize(_prune(baseline, 0.5), calibration_data=_cal)
_built = build_entry(baseline, [("prune_channels", {"fraction": 0.5}), ("quantize_int8", {"calibration": 64})])
assert np.array_equal(_built(_x).data, _direct(_x).data), \
    "prune_channels(0.5) then quantize_int8(64 train images) should give exactly quantize_model(prune_channels(base, 0.5), calibration_data=first 64 train images)"
assert not _built.training, "the entry must be returned in eval mode"
_tuned = build_entry(baseline, [("prune_channels", {"fraction": 0.5}), ("fine_tune", {"epochs": 1, "lr": 3e-3})])
assert not np.array_equal(_tuned(_x).data, _prune(baseline, 0.5)(_x).data), "fine_tune must train the pruned model"
assert np.array_equal(build_entry(baseline, [])(_x).data, baseline(_x).data), "the empty recipe is the baseline"
assert weights_digest(baseline.state_dict()) == _before, "build_entry must not change the baseline it is given"

# %% [markdown]
# ### Choose your event and your recipe
#
# The events reward different things: the Latency Sprint speed (within an accuracy floor of 0.85),
# the Memory Challenge bytes, the All-Around a balance, the Extreme Push speed-up x compression
# (floor 0.80). From modules 15-16 you know what each technique buys on this CNN: int8 storage is a
# quarter of float32 but its numpy kernels are slower; removing channels makes every layer smaller
# and faster at once; distillation trains a smaller network from scratch. The entry below enters the
# **Extreme Push**: prune three quarters of the channels (speed and size), fine-tune to recover the
# accuracy, then quantize to int8 (size). Change the recipe and the event, and run on.

# %%
EVENT = "extreme_push"
MY_RECIPE = [("prune_channels", {"fraction": 0.75}),
             ("fine_tune", {"epochs": 4, "lr": 3e-3}),
             ("quantize_int8", {"calibration": 256})]
entry = build_entry(baseline, MY_RECIPE)
for name, options in check_recipe(MY_RECIPE):
    print(f"module {TECHNIQUES[name].module}: {describe_step(name, options)}")
print(entry)

# %% [markdown]
# ### Step 5: measure the entry against the baseline
#
# `measure_entry(entry, baseline, images, labels)` measures both models with module 19's `Benchmark`
# on the same data, so the figures are comparable:
#
# - `run_latency_benchmark(input_shape=(batch_size, *images.shape[1:]))`: calls on batches of 64 (the
#   grader's batch size), the two models interleaved in alternating rounds;
# - `run_accuracy_benchmark()`: one 0/1 value per test image (`result.values`);
# - `run_memory_benchmark()`: `metadata["parameter_bytes"]` and `metadata["serialized_bytes"]`.
#
# Build the two measurement dicts the scoring takes ({"correct", "latency_ms", "parameter_bytes",
# "serialized_bytes"}, keyed "entry" and "baseline"), the speed-up with its interval
# (`speedup(baseline_ms, entry_ms, seed=seed)`) and module 19's comparison of the latencies
# (`compare_results(latency["entry"], latency["baseline"], seed=seed, names=("entry", "baseline"))`).
# Return {"entry", "baseline", "speedup", "latency_comparison"}.

# %% nbgrader={"grade": false, "grade_id": "measure-entry", "locked": false, "schema_version": 3, "solution": true}
#| export capstone.entry
def measure_entry(entry, baseline, images, labels, batch_size=64, max_time_s=2.0, seed=0):
    """{"entry": measurement, "baseline": measurement, "speedup": speed-up with its 95% interval,
    "latency_comparison": module 19's Comparison}: both models measured by one Benchmark (latency interleaved on
    batches of batch_size, accuracy on images/labels, parameter and serialized bytes)."""
    ### BEGIN SOLUTION
    bench = Benchmark({"entry": entry, "baseline": baseline}, (images, labels), max_time_s=max_time_s, seed=seed)
    latency = bench.run_latency_benchmark(input_shape=(batch_size, *images.shape[1:]))
    accuracy, memory = bench.run_accuracy_benchmark(), bench.run_memory_benchmark()
    measured = {name: {"correct": accuracy[name].values, "latency_ms": latency[name].values,
                       "parameter_bytes": memory[name].metadata["parameter_bytes"],
                       "serialized_bytes": memory[name].metadata["serialized_bytes"]}
                for name in ("entry", "baseline")}
    gain = speedup(measured["baseline"]["latency_ms"], measured["entry"]["latency_ms"], seed=seed)
    comparison = compare_results(latency["entry"], latency["baseline"], seed=seed, names=("entry", "baseline"))
    return {**measured, "speedup": gain, "latency_comparison": comparison}
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-measure-entry", "locked": true, "points": 4, "schema_version": 3, "solution": false}
from tinytorch.core.layers import Module


class _Thrice(Module):
    """The baseline called three times per call: the same answers and bytes, about 3x slower (an oracle)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        self.model(x)
        self.model(x)
        return self.model(x)


_got = measure_entry(_Thrice(baseline), baseline, images.data, labels.data, max_time_s=1.0)
_truth = baseline(images).data.argmax(axis=1) == labels.data
for side in ("entry", "baseline"):
    assert np.array_equal(np.asarray(_got[side]["correct"], bool), _truth), \
        f"{side}: correct must be (predictions == labels) per test image, from run_accuracy_benchmark"
    assert _got[side]["parameter_bytes"] == sum(a.nbytes for a in baseline.state_dict().values()) == 24360
    assert len(_got[side]["latency_ms"]) >= 10 and min(_got[side]["latency_ms"]) > 0
assert len(_got["entry"]["latency_ms"]) == len(_got["baseline"]["latency_ms"]), "latencies come from one interleaved run"
_s = _got["speedup"]
assert abs(_s["value"] - np.median(_got["baseline"]["latency_ms"]) / np.median(_got["entry"]["latency_ms"])) < 1e-9
# Three forwards take at least about twice one forward's time on any machine (the exact ratio depends on the
# BLAS kernel and the caches: 0.17-0.33 was seen), so the test asks for a clear slow-down, not for 1/3.
assert 0.05 < _s["value"] < 0.6 and _s["high"] < 1 and _s["verdict"] == "submission slower", \
    f"an entry that runs the baseline 3 times should be clearly slower: speed-up well below 1 (about 0.2-0.35) with an interval below 1, got {_s['value']:.3f} [{_s['low']:.3f}, {_s['high']:.3f}]"
assert _got["latency_comparison"].a == "entry" and _got["latency_comparison"].ratio > 1

# %% [markdown]
# Your entry, measured on this machine (a few seconds):

# %%
measured = measure_entry(entry, baseline, images.data, labels.data)
for side in ("baseline", "entry"):
    m = measured[side]
    print(f"{side:8s}: median {np.median(m['latency_ms']):.3f} ms per batch of 64 (n={len(m['latency_ms'])}), "
          f"accuracy {np.mean(m['correct']):.4f}, {m['parameter_bytes']:,} parameter bytes")
gain = measured["speedup"]
print(f"speed-up {gain['value']:.2f}x, 95% interval [{gain['low']:.2f}, {gain['high']:.2f}]: {gain['verdict']}")
print(measured["latency_comparison"])

# %% [markdown]
# ### Step 6: does the entry win its event, conclusively?
#
# `entry_verdict(event, entry, baseline, rules)` scores the entry with `event_score` and decides:
#
# - **eligible**: every constraint of the event met conclusively (`result["eligible"]`; the reasons of
#   the constraints not met are in `result["constraints"]`);
# - **beats the baseline conclusively**: the score's lower bound is above the baseline's score. The
#   baseline scores exactly 1 in the relative events; in the Accuracy Contest its score is its own
#   accuracy, whose interval's upper bound (`components["accuracy"]["baseline_high"]`) must be cleared,
#   so that the two would not share a rank;
# - `ok` = eligible and beats the baseline; `reasons` lists every reason it is not (the unmet
#   constraints' reasons, and for a score that does not clear the baseline one line with the score,
#   its interval and the baseline's value).
#
# Return {"event", "score", "low", "high", "baseline_score", "eligible", "beats_baseline", "ok",
# "reasons", "result"}.

# %% nbgrader={"grade": false, "grade_id": "check-entry", "locked": false, "schema_version": 3, "solution": true}
#| export capstone.entry
#| notebook_import capstone.scoring event_score
def entry_verdict(event, entry, baseline, rules=None):
    """Whether the entry wins event over the baseline: eligible (every constraint of rules, default the event's,
    met conclusively) and conclusively better (its score's lower bound above the baseline's score; for accuracy,
    above the upper bound of the baseline's interval). entry, baseline: measurements (measure_entry)."""
    event = parse_event(event)
    rules = rules_for(event) if rules is None else rules
    ### BEGIN SOLUTION
    result = event_score(event, entry, baseline, rules)
    if event is OlympicEvent.ACCURACY_CONTEST:
        accuracy = result["components"]["accuracy"]
        base_score, base_high = accuracy["baseline_accuracy"], accuracy["baseline_high"]
    else:
        base_score = base_high = 1.0
    beats = result["low"] > base_high
    reasons = [c["reason"] for c in result["constraints"] if not c["met"]]
    if not beats:
        reasons.append(f"{rules.score_name} {result['score']:.4g} (95% interval [{result['low']:.4g}, "
                       f"{result['high']:.4g}]) does not clear the baseline's {base_high:.4g}: not conclusively better")
    return {"event": event.value, "score": result["score"], "low": result["low"], "high": result["high"],
            "baseline_score": base_score, "eligible": result["eligible"], "beats_baseline": beats,
            "ok": result["eligible"] and beats, "reasons": reasons, "result": result}
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-check-entry", "locked": true, "points": 3, "schema_version": 3, "solution": false}
_base = {"correct": np.ones(200), "latency_ms": np.linspace(2.0, 3.0, 30), "parameter_bytes": 8000, "serialized_bytes": 8800}
_fast = {"correct": np.r_[np.ones(190), np.zeros(10)], "latency_ms": _base["latency_ms"] / 2,
         "parameter_bytes": 2000, "serialized_bytes": 2400}
v = entry_verdict("extreme_push", _fast, _base)        # S = 2 exactly, C = 4: X = 8 in [8, 8]
assert v["ok"] and v["eligible"] and v["beats_baseline"] and v["reasons"] == [], v["reasons"]
assert abs(v["score"] - 8.0) < 1e-9 and v["baseline_score"] == 1.0 and v["event"] == "extreme_push"
same = entry_verdict("latency_sprint", _base, _base)  # the baseline against itself scores 1: not better
assert same["eligible"] and not same["beats_baseline"] and not same["ok"] and "not conclusively better" in same["reasons"][0]
_sloppy = dict(_fast, correct=np.r_[np.ones(140), np.zeros(60)])   # 70%: below the 0.80 floor conclusively
v = entry_verdict("extreme_push", _sloppy, _base)
assert v["beats_baseline"] and not v["eligible"] and not v["ok"] and "below the floor" in v["reasons"][0], v["reasons"]
_acc = entry_verdict("accuracy_contest", _fast, _base)   # 95% against the baseline's 100%: not better
assert not _acc["beats_baseline"] and _acc["baseline_score"] == 1.0 and _acc["reasons"][-1].startswith("accuracy 0.95")

# %%
verdict = entry_verdict(EVENT, measured["entry"], measured["baseline"])
print(f"{EVENT}: {verdict['score']:.2f} (95% interval [{verdict['low']:.2f}, {verdict['high']:.2f}]), "
      f"baseline {verdict['baseline_score']:g}; eligible: {verdict['eligible']}, beats the baseline "
      f"conclusively: {verdict['beats_baseline']}")
for constraint in verdict["result"]["constraints"]:
    print("  ", constraint["reason"])
for line in verdict["reasons"]:
    print("  not yet:", line)
board = score_all({"my_entry": measured["entry"]}, measured["baseline"], list(OlympicEvent))
for event_name, (row,) in board.items():
    print(f"{event_name:17s} {row['score']:8.3f} [{row['low']:.3f}, {row['high']:.3f}]  "
          + ("eligible" if row["eligible"] else f"not eligible: {row['reason']}"))

# %% [markdown]
# ### Step 7: write the submission
#
# `submit_entry(folder, model, recipe, event, student_id, name)` writes the folder with the given
# `write_submission(folder, model, recipe, meta, overwrite)`. Its `meta` is submission.json:
#
# - `"student_id"`: yours; `"events"`: a list with the event's value (`parse_event(event).value`);
# - `"techniques"`: one text per step, `describe_step(name, options)`;
# - `"division"`: `"closed"` when every step is allowed in the closed division (`TECHNIQUES[name].closed`:
#   the baseline's own network transformed after training, as quantization and fusion do), else `"open"`
#   (pruning, distillation and fine-tuning change or retrain the network);
# - `"name"`: only when one is given.
#
# Return what `write_submission` returns (the folder).

# %% nbgrader={"grade": false, "grade_id": "write-submission", "locked": false, "schema_version": 3, "solution": true}
#| export capstone.entry
def submit_entry(folder, model, recipe, event, student_id, name=None, overwrite=False):
    """Write model (built from the baseline by recipe) as the submission folder of student_id for event, with
    submission.json's techniques and division derived from the recipe. Returns the folder."""
    steps = check_recipe(recipe)
    ### BEGIN SOLUTION
    meta = {"student_id": student_id, "events": [parse_event(event).value],
            "techniques": [describe_step(name_, options) for name_, options in steps],
            "division": "closed" if all(TECHNIQUES[name_].closed for name_, _ in steps) else "open"}
    if name is not None:
        meta["name"] = name
    return write_submission(folder, model, recipe, meta, overwrite=overwrite)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-write-submission", "locked": true, "points": 3, "schema_version": 3, "solution": false}
import json

from tinytorch.capstone.submit import build_from_folder
from tinytorch.optimization.compression import prune_channels as _prune
from tinytorch.optimization.quantization import quantize_model as _quantize

_tmp = Path(tempfile.mkdtemp(prefix="capstone-check-"))
_x = Tensor.from_numpy(images.data[:32])
try:
    _int8 = _quantize(baseline, calibration_data=load_digits("train").tensors[0].data[:64])
    _folder = submit_entry(_tmp / "s9_memory", _int8, [("quantize_int8", {"calibration": 64})], "MEMORY_CHALLENGE", "s9")
    _meta = json.loads((_folder / "submission.json").read_text())
    assert _meta == {"student_id": "s9", "events": ["memory_challenge"], "division": "closed",
                     "techniques": ["int8 quantization: per-channel weights, activations calibrated on 64 train images"]}, _meta
    assert np.array_equal(build_from_folder(_folder)(_x).data, _int8(_x).data), "the folder must rebuild the same model"
    _half = _quantize(_prune(baseline, 0.5), calibration_data=load_digits("train").tensors[0].data[:64])
    _folder = submit_entry(_tmp / "s9_push", _half, [("prune_channels", {"fraction": 0.5}),
                           ("quantize_int8", {"calibration": 64})], "extreme_push", "s9", name="Half int8")
    _meta = json.loads((_folder / "submission.json").read_text())
    assert _meta["division"] == "open" and _meta["name"] == "Half int8" and len(_meta["techniques"]) == 2, _meta
finally:
    shutil.rmtree(_tmp)

# %% [markdown]
# ## Part 4: validate and grade your entry here
#
# The folder goes to a git-ignored `results/olympics/` beside this notebook. `tito olympics submit`
# validates a folder without running it (`validate` below is the same check) and packs it;
# `tito olympics grade` measures it in a sandbox with its own clock, the hidden labels and the
# baseline timed alternately in five sessions of fresh processes. Grading one entry takes 10-15 s.
# Where this machine cannot jail the worker (no root, cgroups or user namespaces), the grader still
# grades and says what isolation was in force: fine for your own entry, not for untrusted ones.
#
# The grader measures; `tinytorch.capstone.scoring` scores. Here it scores with **your** rules as this
# notebook defines them (exported or not): for the call, that module name stands for them.

# %%
import sys
import types
from unittest import mock

from tinytorch.tito.olympics.grader import grade_submission
from tinytorch.tito.olympics.submission import validate

your_scoring = types.ModuleType("tinytorch.capstone.scoring", "the scoring rules of this notebook")
your_scoring.event_score, your_scoring.rank, your_scoring.medals = event_score, rank, medals

STUDENT_ID = "student"
folder = submit_entry(Path("results") / "olympics" / f"{STUDENT_ID}_{EVENT}", entry, MY_RECIPE, EVENT, STUDENT_ID,
                      name="my entry", overwrite=True)
validated = validate(folder)
print(f"valid: {validated['id']} by {validated['student_id']}, {validated['division']} division, "
      f"files {validated['files']} ({validated['data_bytes']} bytes of weights)")
with mock.patch.dict(sys.modules, {"tinytorch.capstone.scoring": your_scoring}):
    record = grade_submission(folder)
graded = record["scores"].get(EVENT, {})
print(f"status: {record['status']}" + (f" ({record['reason']})" if record["reason"] else ""))
print(f"isolation: {'complete' if record['isolation']['complete'] else 'incomplete, missing: ' + '; '.join(record['isolation']['missing'])}")
if graded:
    s = graded["components"]["speedup"]
    print(f"graded {EVENT}: {graded['score']:.2f} [{graded['low']:.2f}, {graded['high']:.2f}]; speed-up {s['value']:.2f}x "
          f"[{s['low']:.2f}, {s['high']:.2f}], compression {graded['components']['compression']['value']:.2f}x, "
          f"accuracy {graded['components']['accuracy']['value']:.4f}")
print(f"hand it in: tito olympics submit {folder.resolve()} --event {EVENT}")

# %% nbgrader={"grade": true, "grade_id": "test-my-entry", "locked": true, "points": 5, "schema_version": 3, "solution": false}
assert validated["id"] == folder.name and validated["events"] == [parse_event(EVENT).value]
assert check_recipe(MY_RECIPE), "an empty recipe is the baseline itself: add techniques"
assert weights_digest(entry.state_dict()) != weights_digest(baseline.state_dict()), "the entry is the baseline"
assert record["status"] == "ok", f"the grader says {record['status']}: {record['reason']}"
assert graded["eligible"], f"the grader finds the entry not eligible in {EVENT}: {graded['reason']}"
_graded_verdict = entry_verdict(EVENT, record["measurement"], record["baseline"])
assert _graded_verdict["ok"], f"the graded entry does not beat the baseline conclusively: {_graded_verdict['reasons']}"
assert verdict["ok"], f"measured here, the entry does not beat the baseline conclusively: {verdict['reasons']}"

# %% [markdown]
# ## Summary
#
# - Events have explicit, configurable rules; every constraint counts only when its interval settles it.
# - Scores are ratios to a baseline measured in the same run, so they travel across machines; the
#   All-Around's interval holds jointly (Bonferroni), and overlapping intervals share a rank.
# - An entry is a recipe of public techniques applied in a valid order; measured against the baseline
#   with one interleaved Benchmark it either wins its event conclusively or it does not.
# - A submission is code plus raw weights whose layout is its architecture; the grader, not the student,
#   measures it: sandboxed processes, its own clock, hidden labels, five sessions of fresh processes.
