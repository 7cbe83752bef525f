# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Given code: the five Olympic events and their rules
#
# This notebook is given: it ships solved in every edition and is not an exercise. It holds the
# rulebook of the TorchPerf Olympics that the capstone lesson (`20_capstone.ipynb`) scores against:
# each event's eligibility constraints (defaults from the course, configurable per task) and its score
# formula, in words. `rules_for(event, overrides)` returns the rules with validated overrides, so an
# instructor can, for instance, raise the accuracy floor for a harder data set.
#
# Pure data and validation: nothing here measures, scores or prints.

# %%
#| default_exp capstone.events

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

