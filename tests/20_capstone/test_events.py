"""Tests of tinytorch.capstone.events: the five events' rules, parse_event and rules_for."""
import json

import pytest

from tinytorch.benchmarking.benchmark import OlympicEvent
from tinytorch.capstone.events import (ACCURACY_CONTEST_MAX_MEMORY_BYTES, DEFAULT_RULES, EventRules, parse_event,
                                       rules_for)


def test_default_rules_follow_the_course():
    assert set(DEFAULT_RULES) == set(OlympicEvent)
    sprint, memory = DEFAULT_RULES[OlympicEvent.LATENCY_SPRINT], DEFAULT_RULES[OlympicEvent.MEMORY_CHALLENGE]
    contest, around = DEFAULT_RULES[OlympicEvent.ACCURACY_CONTEST], DEFAULT_RULES[OlympicEvent.ALL_AROUND]
    extreme = DEFAULT_RULES[OlympicEvent.EXTREME_PUSH]
    assert (sprint.min_accuracy, sprint.max_latency_ms, sprint.max_memory_bytes) == (0.85, None, None)
    assert (memory.min_accuracy, memory.max_latency_ms, memory.max_memory_bytes) == (0.85, None, None)
    assert (contest.min_accuracy, contest.max_latency_ms, contest.max_memory_bytes) == (None, 100.0, 10_000_000)
    assert ACCURACY_CONTEST_MAX_MEMORY_BYTES == 10 * 1000 * 1000          # SI megabytes, not MiB
    assert (extreme.min_accuracy, around.min_accuracy) == (0.80, 0.80)
    for event, rules in DEFAULT_RULES.items():
        assert rules.event is event and rules.higher_is_better is True
        assert rules.formula and rules.description and rules.score_name


def test_repr_and_str_say_the_event_score_and_constraints():
    rules = DEFAULT_RULES[OlympicEvent.ACCURACY_CONTEST]
    assert repr(rules) == ("EventRules(accuracy_contest: score accuracy (higher is better); median latency < 100 ms "
                           "(upper bound of its 95% interval); parameter_bytes < 10,000,000 (exact))")
    text = str(DEFAULT_RULES[OlympicEvent.LATENCY_SPRINT])
    assert "score = S = median(baseline latency) / median(submission latency)" in text
    assert "accuracy >= 0.85 (Wilson 95% lower bound)" in text
    assert "no constraints" in repr(rules_for("latency_sprint", {"min_accuracy": None}))


def test_to_dict_is_json_ready():
    for rules in DEFAULT_RULES.values():
        data = json.loads(json.dumps(rules.to_dict(), allow_nan=False))
        assert data["event"] == rules.event.value and data["min_accuracy"] == rules.min_accuracy


@pytest.mark.parametrize("text, event", [
    ("latency_sprint", OlympicEvent.LATENCY_SPRINT), ("LATENCY_SPRINT", OlympicEvent.LATENCY_SPRINT),
    ("  Memory_Challenge ", OlympicEvent.MEMORY_CHALLENGE), (OlympicEvent.EXTREME_PUSH, OlympicEvent.EXTREME_PUSH),
    ("all_around", OlympicEvent.ALL_AROUND), ("ACCURACY_CONTEST", OlympicEvent.ACCURACY_CONTEST)])
def test_parse_event_accepts_values_names_and_members(text, event):
    assert parse_event(text) is event


@pytest.mark.parametrize("bad", ["sprint", "latency sprint", "", None, 3, "LatencySprint"])
def test_parse_event_lists_the_valid_names(bad):
    with pytest.raises(ValueError, match="valid events: latency_sprint, memory_challenge, accuracy_contest, "
                                         "all_around, extreme_push"):
        parse_event(bad)


def test_rules_for_applies_validated_overrides():
    assert rules_for("latency_sprint") is DEFAULT_RULES[OlympicEvent.LATENCY_SPRINT]
    stricter = rules_for("LATENCY_SPRINT", {"min_accuracy": 0.9})
    assert stricter.min_accuracy == 0.9 and stricter.score_name == "speedup"
    assert DEFAULT_RULES[OlympicEvent.LATENCY_SPRINT].min_accuracy == 0.85      # defaults untouched
    contest = rules_for(OlympicEvent.ACCURACY_CONTEST, {"max_latency_ms": 50, "max_memory_bytes": 2_000_000})
    assert (contest.max_latency_ms, contest.max_memory_bytes) == (50.0, 2_000_000)
    assert rules_for("accuracy_contest", {"max_latency_ms": None}).max_latency_ms is None


@pytest.mark.parametrize("overrides, message", [
    ({"min_acc": 0.9}, r"unknown override\(s\) \['min_acc'\].*allowed keys: min_accuracy, max_latency_ms"),
    ({"formula": "S"}, r"unknown override\(s\) \['formula'\]"),
    ({"min_accuracy": 1.5}, r"min_accuracy must be an accuracy in \(0, 1\].*got 1.5"),
    ({"min_accuracy": 0}, "min_accuracy must be an accuracy"),
    ({"min_accuracy": True}, "min_accuracy must be an accuracy"),
    ({"min_accuracy": "0.9"}, "min_accuracy must be an accuracy"),
    ({"max_latency_ms": -1}, r"max_latency_ms must be a finite number of milliseconds > 0.*got -1"),
    ({"max_latency_ms": float("inf")}, "max_latency_ms must be a finite number"),
    ({"max_memory_bytes": 1e7}, r"max_memory_bytes must be a whole number of bytes > 0.*got 10000000.0"),
    ({"max_memory_bytes": 0}, "max_memory_bytes must be a whole number"),
    ([("min_accuracy", 0.9)], "overrides must be a dict")])
def test_rules_for_rejects_bad_overrides(overrides, message):
    with pytest.raises(ValueError, match=message):
        rules_for("accuracy_contest", overrides)


def test_event_rules_validates_its_fields():
    with pytest.raises(ValueError, match="event must be an OlympicEvent.*use parse_event"):
        EventRules("latency_sprint", score_name="s", formula="f", description="d")
    with pytest.raises(ValueError, match="formula must be a non-empty string"):
        EventRules(OlympicEvent.LATENCY_SPRINT, score_name="s", formula=" ", description="d")
    with pytest.raises(ValueError, match="higher_is_better must be True or False"):
        EventRules(OlympicEvent.LATENCY_SPRINT, score_name="s", formula="f", description="d", higher_is_better=1)
    with pytest.raises(AttributeError):
        DEFAULT_RULES[OlympicEvent.LATENCY_SPRINT].min_accuracy = 0.1      # frozen
