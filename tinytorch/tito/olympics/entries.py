"""Which submissions count in an event: one entry per student per event.

A student who hands in ten folders (ten submissions with the same student_id) must not hold ten places or
several medals in one event. Before an event is ranked, each student's entries in it are reduced to ONE,
chosen by the entry policy:

  "latest" (the default): the entry submitted last. Its time is the record's "submitted_at" (the newest
      modification time of the submission's files, or of its archive), else its "graded_at" (when it was
      graded: a fallback for records written before "submitted_at" existed); the larger submission id wins
      a tie, so the choice never depends on the order of the records.
  "best": the student's best entry in that event: an eligible entry before an ineligible one, then the
      better score (the event's direction: "higher_is_better" in the record's event score, else the
      event's DEFAULT_RULES), then the better tiebreak, then the later submission, then the larger id.
  "all": no de-duplication; every entry counts (only when chosen explicitly).

The candidates in an event are the records the grader scores there: status "ok" or "constraint not met"
and a score for that event in record["scores"] (what grader.rankings ranks). A failed submission (invalid,
crashed, timeout, out of memory) is never a candidate, so it neither counts nor pushes out a student's
working entry. Selection is per event: with "latest", a student's newest submission counts in the events it
entered, and an older one still counts in an event only it entered.

Students are told apart by their student_id, compared after safetext.clean, Unicode NFKC, case folding
and whitespace collapsing, so "S1", "s1 " and "s\u200b1" are one student. A record whose student_id is
missing, None or blank counts on its own: it is never merged with another (there is no student to merge
by), and the grader's validation decides whether such a submission is acceptable at all.

Pure and deterministic: the same records always give the same choice; nothing is read or written.
"""
from __future__ import annotations

import math
import unicodedata
from datetime import datetime, timezone

from .safetext import clean

POLICIES = ("latest", "best", "all")
DEFAULT_POLICY = "latest"
SCORED = ("ok", "constraint not met")
POLICY_TEXT = {"latest": "one entry per student per event counts: the latest submitted",
               "best": "one entry per student per event counts: the best scored",
               "all": "every entry counts (no de-duplication per student)"}


def describe_policy(policy) -> str:
    """The sentence a leaderboard shows for the policy ("one entry per student per event counts: ...")."""
    return POLICY_TEXT.get(policy, f"entry policy {clean(policy, 64)!r} (unknown to this version of tito)")


def student_key(student_id):
    """The normalised student id that entries are grouped by, or None when there is none (blank/None)."""
    if student_id is None:
        return None
    key = " ".join(unicodedata.normalize("NFKC", clean(student_id)).casefold().split())
    return key or None


def _instant(value):
    """A time as seconds since the epoch (a number, or an ISO 8601 text; naive times are UTC), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return None


def submitted_time(record):
    """(seconds since the epoch or -inf, which field it came from): "submitted_at", else "graded_at"."""
    for field in ("submitted_at", "graded_at"):
        moment = _instant(record.get(field))
        if moment is not None:
            return moment, field
    return -math.inf, None


def _direction(record, event) -> float:
    """+1 when a higher score is better in the event, -1 when lower is."""
    higher = record["scores"][event].get("higher_is_better")
    if not isinstance(higher, bool):
        try:
            from tinytorch.capstone.events import DEFAULT_RULES, parse_event

            higher = DEFAULT_RULES[parse_event(event)].higher_is_better
        except Exception:     # an event unknown to the rules: a higher score is better
            higher = True
    return 1.0 if higher else -1.0


def _number(value, default=-math.inf) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default


def _latest_key(record, key):
    return (submitted_time(record)[0], key)


def _best_key(record, key, event):
    score, sign = record["scores"][event], _direction(record, event)
    return (bool(score.get("eligible")), sign * _number(score.get("score")),
            sign * _number(score.get("tiebreak"), 0.0), *_latest_key(record, key))


def candidates(records: dict, event: str) -> list[str]:
    """The ids of the records scored in the event (status ok / constraint not met, with a score there), sorted."""
    return sorted(key for key, record in records.items()
                  if isinstance(record, dict) and record.get("status") in SCORED
                  and isinstance(record.get("scores"), dict) and isinstance(record["scores"].get(event), dict))


def _why(policy, kept_id, kept, event):
    """The reason an entry does not count: which entry does, and by which rule."""
    if policy == "latest":
        field = submitted_time(kept)[1]
        told = f" ({'submitted' if field == 'submitted_at' else 'graded'} {clean(kept.get(field), 40)})" if field else ""
        return f"one entry per student per event counts: {kept_id}{told} is the student's latest"
    score = _number(kept["scores"][event].get("score"), None)
    shown = "no score" if score is None else f"{score:.4g}"
    return f"one entry per student per event counts: {kept_id} (score {shown}) is the student's best"


def counted_entries(records: dict, event: str, policy: str = DEFAULT_POLICY):
    """(counted, superseded) for one event. counted: the sorted ids of the records that take part in the
    event's ranking, one per student (every candidate with policy "all"); superseded: {id: {"by": the id
    that counts instead, "student_id": the record's student_id, "reason": why}} for each candidate that
    does not. records: {id: record} as results.json holds them. ValueError for an unknown policy."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    ids = candidates(records, event)
    if policy == "all":
        return ids, {}
    groups = {}
    for key in ids:
        student = student_key(records[key].get("student_id"))
        groups.setdefault(("student", student) if student is not None else ("alone", key), []).append(key)
    counted, superseded = [], {}
    for members in groups.values():
        if policy == "latest":
            winner = max(members, key=lambda k: _latest_key(records[k], k))
        else:
            winner = max(members, key=lambda k: _best_key(records[k], k, event))
        counted.append(winner)
        for key in members:
            if key != winner:
                superseded[key] = {"by": winner, "student_id": records[key].get("student_id"),
                                   "reason": _why(policy, winner, records[winner], event)}
    return sorted(counted), dict(sorted(superseded.items()))


def select_entries(records: dict, policy: str = DEFAULT_POLICY, events=None):
    """counted_entries for every event: (counted {event: [ids]}, superseded {event: {id: why}}), over the
    events given (default: every event any record is scored in, sorted). An event where nothing is
    superseded has an empty dict, so the result says that it was checked."""
    if events is None:
        events = sorted({event for record in records.values() if isinstance(record, dict)
                         and isinstance(record.get("scores"), dict) for event in record["scores"]})
    counted, superseded = {}, {}
    for event in events:
        counted[event], superseded[event] = counted_entries(records, event, policy)
    return counted, superseded
