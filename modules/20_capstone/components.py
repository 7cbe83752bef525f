# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Given code: the score components, measured relative to the baseline
#
# This notebook is given: it ships solved in every edition and is not an exercise. Every Olympic score
# is built from three components, each computed from what the grader measured for a submission and for
# the baseline in the same run:
#
# - **speed-up** S = median(baseline latency) / median(submission latency) with a bootstrap 95% interval;
#   with the grader's sessions of fresh worker processes, the median of the interleaved rounds' own
#   ratios and a two-level (sessions, then rounds) bootstrap interval;
# - **compression** C = baseline parameter bytes / submission parameter bytes: exact counts, no interval;
# - **accuracy** A = correct / total with its Wilson interval, and the difference to the baseline with
#   McNemar's exact test (both are scored on the same examples).
#
# They are module 19's statistics applied to the measurement format below; the capstone lesson
# (`20_capstone.ipynb`) turns them into event scores, constraints and ranks.

# %%
#| default_exp capstone.components

# %%
#| export
"""The components of every Olympic score, relative to the baseline measured in the same grading run: speed-up,
compression and accuracy, each with its interval. Numbers in, numbers out.

A measurement is a plain dict built by the grader (or by Benchmark in the notebook), one per model:
    {"correct": 0/1 per test example (the same examples, in the same order, for every model),
     "latency_ms": per-call milliseconds (measured interleaved with the baseline's samples),
     "latency_session": optional, the session (fresh pair of worker processes) of each latency sample,
     "parameter_bytes": int, "serialized_bytes": int}
Other keys are allowed and ignored. Outputs are JSON-ready (plain Python, no NaN or inf).
"""
import numbers

import numpy as np

from tinytorch.benchmarking.results import mcnemar_p
from tinytorch.benchmarking.stats import check_values, compare_samples, prob_less, wilson_interval

CONFIDENCE = 0.95


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
#| export
def _check_bytes(value, name):
    """value as an int > 0 (a byte count); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a byte count (an int > 0), got {value!r}; a ratio needs bytes "
                         "measured with tinytorch.profiling.profiler (parameter_bytes / serialized_bytes)")
    return int(value)

# %%
#| export
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
#| export
def session_labels(m, b):
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
#| export
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
#| export
def wilson_bounds(correct, total, confidence=CONFIDENCE):
    """wilson_interval with its exact ends: the lower bound is 0 when none is correct and the upper 1
    when all are (the formula gives them only up to rounding, e.g. 2.8e-17)."""
    low, high = wilson_interval(int(correct), int(total), confidence)
    return (0.0 if correct == 0 else max(0.0, low)), (1.0 if correct == total else min(1.0, high))

# %%
#| export
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
    low, high = wilson_bounds(k, n, confidence)
    base_low, base_high = wilson_bounds(k_base, n, confidence)
    return {"value": k / n, "low": low, "high": high, "correct": k, "total": n,
            "baseline_accuracy": k_base / n, "baseline_low": base_low, "baseline_high": base_high,
            "delta": (k - k_base) / n, "p_value": mcnemar_p(sub, base),
            "only_sub_correct": int(np.sum(sub & ~base)), "only_base_correct": int(np.sum(~sub & base)),
            "confidence": float(confidence), "formula": "A = correct / total; delta = A - A_baseline",
            "method": "Wilson score interval; exact McNemar test on the examples where the two disagree"}


# %% [markdown]
# ### Check the components by hand
#
# Baseline: 10 of 10 correct, 2 ms a call; a submission: 9 of 10 correct, 1 ms a call, a quarter of the
# bytes. Speed-up 2, compression 4, accuracy 0.9 (one example lost: McNemar p = 1, no evidence of a drop).

# %%
_base = {"correct": np.ones(10), "latency_ms": np.full(12, 2.0) + np.arange(12) * 1e-3,
         "parameter_bytes": 4000, "serialized_bytes": 4400}
_sub = {"correct": np.r_[np.ones(9), 0.0], "latency_ms": np.full(12, 1.0) + np.arange(12) * 1e-3,
        "parameter_bytes": 1000, "serialized_bytes": 1100}
_s = speedup(_base["latency_ms"], _sub["latency_ms"])
print(f"speed-up {_s['value']:.4f} [{_s['low']:.4f}, {_s['high']:.4f}]: {_s['verdict']}")
assert abs(_s["value"] - (2.0 + 0.0055) / (1.0 + 0.0055)) < 1e-9 and _s["verdict"] == "submission faster"
assert compression(_base, _sub)["value"] == 4.0 and compression(_base, _sub)["serialized_ratio"] == 4.0
_a = accuracy_delta(_sub["correct"], _base["correct"])
assert (_a["value"], _a["delta"], _a["p_value"]) == (0.9, -0.1, 1.0)
assert wilson_bounds(10, 10) == (wilson_interval(10, 10)[0], 1.0)
try:
    check_measurement({"correct": [1, 0], "latency_ms": [1.0, -2.0], "parameter_bytes": 4, "serialized_bytes": 4})
    raise AssertionError("a negative latency was accepted")
except ValueError as err:
    print("refused:", err)
