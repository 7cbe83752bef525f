"""The Olympics leaderboard: per-event rankings with medals, rendered from a grading run's results.json alone.

The grader (`tito olympics grade SUBMISSIONS --out DIR`) writes DIR/results.json (schema
"tinytorch.olympics.results/1"): every submission's status and scores and, per event, the ranked entries with
their medals. This module only reads that file: it never measures, re-scores or re-ranks anything, so the
leaderboard says exactly what the grading run decided.

A leaderboard is DERIVED data: leaderboard.csv, leaderboard.md, leaderboard.html and leaderboard_<event>.png
can be rebuilt from results.json at any time. `render_leaderboard` still refuses to replace existing files
unless overwrite=True; the `tito olympics leaderboard DIR` command passes overwrite=True (re-rendering is its
purpose) and says which files it replaced.

Public and private. leaderboard.csv, .md, .html, the plots and the terminal table are PUBLIC: every text in
them that results.json holds (student ids, ids, event reasons, rules, the entry policy) passes through
safetext first (safetext.markdown in Markdown, safetext.csv_cell in the CSV, safetext.clean before
reporting.html_page's HTML escaping, safetext.plot_label in figures, safetext.terminal on the terminal), and
they never show a submission record's own "reason" or "detail": for a failed submission (invalid, crashed,
timeout, out of memory) that text can hold whatever the submission printed or raised, so the public files
show only its status and "see the instructor's grading report". The per-event reasons that the scoring
computed (an entry's "reason" in rankings, e.g. "accuracy 0.62 [0.57, 0.67] < 0.85") are the grader's own
words and stay visible. instructor_report.md is PRIVATE: it has every submission's status, reason and
detail (cleaned, escaped, each cut to REPORT_LIMIT characters) for the instructor; do not publish it.

Entries. results["entry_policy"] says which entries counted (entries.py: one per student per event, the
latest, by default) and results["superseded"] {event: {id: {"by", "student_id", "reason"}}} the entries that
did not count; both are shown. A results.json written before the policy existed has neither: its
leaderboard says "all entries count (results.json predates the policy)".
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from . import safetext
from .entries import describe_policy

SCHEMA = "tinytorch.olympics.results/1"
STATUSES = ("ok", "invalid", "timeout", "crashed", "out of memory", "constraint not met", "grader error")
MEDALS = ("gold", "silver", "bronze")
MEDAL_COLOURS = {"gold": "#c9a227", "silver": "#9ea0a5", "bronze": "#b87333"}
EVENT_ORDER = ("latency_sprint", "memory_challenge", "accuracy_contest", "all_around", "extreme_push")
EVENT_NAME = re.compile(r"[a-z0-9_]{1,64}")
CSV_COLUMNS = ("event", "rank", "medal", "id", "student_id", "score", "low", "high", "status", "reason")
ABOUT = ("Ranks, medals and scores are the grading run's, as results.json records them (entries whose intervals "
         "overlap share a rank); under each event, its rule says how it is scored. Derived from results.json.")
SHORT_REASON = 240   # characters of a reason shown in the public tables
REPORT_LIMIT = 2000  # characters of a submission's reason, and of its detail, in the instructor's report
REPORT_NAME = "instructor_report.md"
SCORED = ("ok", "constraint not met")   # statuses that the grader scored (the others failed)
HIDDEN = "see the instructor's grading report"   # what the public files say instead of a failure's own text
NO_POLICY = "all entries count (results.json predates the policy)"


class LeaderboardError(ValueError):
    """results.json cannot be rendered: `problems` lists every reason, each naming where in the file."""

    def __init__(self, path, problems):
        self.path = str(path)
        self.problems = [str(p) for p in problems] or ["unknown problem"]
        listed = self.problems[0] if len(self.problems) == 1 else \
            f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{self.path}: {listed}{more}")

    def __repr__(self) -> str:
        return f"LeaderboardError(path={self.path!r}, problems={len(self.problems)}: {self.problems[0]!r})"


# ------------------------------------------------------------------------------------------- reading
def _is_number(value) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _entry_problems(where: str, entry, submissions: dict) -> list[str]:
    """Why one ranking entry is malformed (empty when it is fine)."""
    if not isinstance(entry, dict):
        return [f"{where} must be an object, got {type(entry).__name__}"]
    missing = [key for key in ("id", "rank", "medal", "score", "low", "high", "eligible") if key not in entry]
    if missing:
        return [f"{where} is missing {', '.join(missing)}"]
    problems = []
    if entry["id"] not in submissions:
        problems.append(f"{where}.id {entry['id']!r} is not among the submissions")
    rank = entry["rank"]
    if rank is not None and (not isinstance(rank, int) or isinstance(rank, bool) or rank < 1):
        problems.append(f"{where}.rank must be an integer >= 1 or null, got {rank!r}")
    if entry["medal"] is not None and (entry["medal"] not in MEDALS or rank is None):
        problems.append(f"{where}.medal must be null or one of {', '.join(MEDALS)} on a ranked entry, got {entry['medal']!r}")
    for key in ("score", "low", "high"):
        if entry[key] is not None and not _is_number(entry[key]):
            problems.append(f"{where}.{key} must be a finite number or null, got {entry[key]!r}")
    if all(_is_number(entry[k]) for k in ("score", "low", "high")) and not entry["low"] <= entry["score"] <= entry["high"]:
        problems.append(f"{where}: score {entry['score']!r} lies outside its interval [{entry['low']!r}, {entry['high']!r}]")
    if not isinstance(entry["eligible"], bool):
        problems.append(f"{where}.eligible must be true or false, got {entry['eligible']!r}")
    if entry.get("reason") is not None and not isinstance(entry["reason"], str):
        problems.append(f"{where}.reason must be text or null, got {entry['reason']!r}")
    return problems


def _submission_problems(key: str, record) -> list[str]:
    """Why one submission record is malformed (empty when it is fine)."""
    where = f"submissions[{key!r}]"
    if not isinstance(record, dict):
        return [f"{where} must be an object, got {type(record).__name__}"]
    problems = []
    if record.get("id") != key:
        problems.append(f"{where}.id must repeat its key {key!r}, got {record.get('id')!r}")
    if record.get("status") not in STATUSES:
        problems.append(f"{where}.status must be one of {', '.join(STATUSES)}, got {record.get('status')!r}")
    for field in ("student_id", "reason"):
        if record.get(field) is not None and not isinstance(record[field], str):
            problems.append(f"{where}.{field} must be text or null, got {record[field]!r}")
    events = record.get("events")
    if events is not None and not (isinstance(events, list) and all(isinstance(e, str) for e in events)):
        problems.append(f"{where}.events must be a list of event names or null, got {events!r}")
    return problems


def _superseded_problems(doc: dict, submissions: dict) -> list[str]:
    """Why results["entry_policy"] / results["superseded"] are malformed (both may be absent)."""
    problems = []
    policy = doc.get("entry_policy")
    if policy is not None and not isinstance(policy, str):
        problems.append(f"entry_policy must be text (latest, best or all) or absent, got {type(policy).__name__}")
    superseded = doc.get("superseded")
    if superseded is None:
        return problems
    if not isinstance(superseded, dict):
        return problems + [f"superseded must be an object {{event: {{id: {{by, student_id, reason}}}}}}, "
                           f"got {type(superseded).__name__}"]
    for event, dropped in superseded.items():
        if not EVENT_NAME.fullmatch(str(event)):
            problems.append(f"superseded key {event!r} is not an event name (lower-case letters, digits, '_')")
        if not isinstance(dropped, dict):
            problems.append(f"superseded[{event!r}] must be an object {{id: {{by, ...}}}}, got {type(dropped).__name__}")
            continue
        for key, why in dropped.items():
            where = f"superseded[{event!r}][{key!r}]"
            if key not in submissions:
                problems.append(f"{where}: {key!r} is not among the submissions")
            if not isinstance(why, dict) or why.get("by") not in submissions:
                problems.append(f"{where} must be an object whose 'by' is a submission id, got {why!r:.200}")
            elif why.get("reason") is not None and not isinstance(why["reason"], str):
                problems.append(f"{where}.reason must be text or null, got {why['reason']!r:.200}")
    return problems


def check_results(doc) -> list[str]:
    """Every reason why doc is not a renderable results.json (schema tinytorch.olympics.results/1)."""
    if not isinstance(doc, dict):
        return [f"the top level must be a JSON object, got {type(doc).__name__}"]
    if doc.get("schema") != SCHEMA:
        return [f"schema is {doc.get('schema')!r}; this leaderboard reads {SCHEMA!r}: grade again with this "
                f"version of tito (`tito olympics grade`)"]
    submissions, rankings = doc.get("submissions"), doc.get("rankings")
    if not isinstance(submissions, dict) or not isinstance(rankings, dict):
        return ["'submissions' and 'rankings' must both be JSON objects (keyed by submission id / event)"]
    problems = [p for key, record in submissions.items() for p in _submission_problems(key, record)]
    for event, entries in rankings.items():
        if not EVENT_NAME.fullmatch(str(event)):
            problems.append(f"rankings key {event!r} is not an event name (lower-case letters, digits, '_')")
        if not isinstance(entries, list):
            problems.append(f"rankings[{event!r}] must be a list of entries, got {type(entries).__name__}")
            continue
        ids = [e.get("id") for e in entries if isinstance(e, dict)]
        twice = sorted({str(i) for i in ids if ids.count(i) > 1})
        if twice:
            problems.append(f"rankings[{event!r}] lists {', '.join(twice)} more than once")
        for i, entry in enumerate(entries):
            problems += _entry_problems(f"rankings[{event!r}][{i}]", entry, submissions)
    problems += _superseded_problems(doc, submissions)
    for key, record in submissions.items():
        events = record.get("events") if isinstance(record, dict) else None
        for event in events if isinstance(events, list) else []:
            if isinstance(event, str) and not EVENT_NAME.fullmatch(event):
                problems.append(f"submissions[{key!r}].events has {event!r}, which is not an event name")
    return problems


def load_results(grading_dir) -> dict:
    """DIR/results.json, parsed and checked; FileNotFoundError or LeaderboardError naming the file and problem."""
    path = Path(grading_dir) / "results.json"
    if not Path(grading_dir).is_dir():
        what = "is a file, not a folder" if Path(grading_dir).exists() else "does not exist"
        raise FileNotFoundError(f"{grading_dir} {what}: pass the grading folder written by "
                                f"`tito olympics grade SUBMISSIONS --out DIR`")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: grade first (`tito olympics grade SUBMISSIONS --out {grading_dir}`)")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise LeaderboardError(path, [f"is not UTF-8 text (bad byte at offset {exc.start})"]) from None
    except json.JSONDecodeError as exc:
        raise LeaderboardError(path, [f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}; "
                                      f"the file is damaged: grade again"]) from None
    problems = check_results(doc)
    if problems:
        raise LeaderboardError(path, problems)
    return doc


# ------------------------------------------------------------------------------------------- rows
def events_of(results: dict) -> list[str]:
    """Every event that was ranked or entered: the five Olympic events in course order, then any others sorted."""
    found = set(results["rankings"])
    for record in results["submissions"].values():
        found.update(record.get("events") or [])
    return [e for e in EVENT_ORDER if e in found] + sorted(found - set(EVENT_ORDER))


def event_title(event: str) -> str:
    """"latency_sprint" -> "Latency Sprint"."""
    return event.replace("_", " ").title()


def ordinal(rank) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th", 23 -> "23rd"; None -> "-"."""
    if rank is None:
        return "-"
    suffix = "th" if rank % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(rank % 10, "th")
    return f"{rank}{suffix}"


def superseded_of(results: dict) -> dict:
    """{event: {id: {"by", "student_id", "reason"}}}: the entries that did not count (empty for old files)."""
    return {event: dict(dropped) for event, dropped in (results.get("superseded") or {}).items()}


def entry_policy_text(results: dict) -> str:
    """The sentence that says which entries counted, from results["entry_policy"]."""
    policy = results.get("entry_policy")
    return NO_POLICY if policy is None else describe_policy(policy)


def data_text(results: dict) -> str:
    """The sentence that says which test data graded the run (results["data"], written by the grader)."""
    data = results.get("data")
    if not isinstance(data, dict):
        return "test data: not recorded (graded by an older tito)"
    rows = data.get("rows") if isinstance(data.get("rows"), int) else "?"
    digest = str(data.get("file_sha256") or data.get("arrays_sha256") or "")[:12]
    name = data.get("file") or "the digits test split"
    text = f"test data: {name} ({rows} rows" + (f", sha256 {digest}..." if digest else "") + ")"
    if data.get("public") is True:
        text += ("; PUBLIC data: every student has it, so a submission can memorise its answers, and these scores "
                 "prove little")
    elif data.get("public") is False:
        text += "; private data given by the instructor"
    return text


def _public_reason(record: dict) -> str:
    """What a public file says about a submission that has no ranking reason: never its own text."""
    return HIDDEN if record["status"] not in SCORED else "not in this event's ranking"


def event_rows(results: dict, event: str) -> list[dict]:
    """One row per entry of the event (the CSV_COLUMNS keys): ranked entries by rank (the file's order within
    a rank), then its unranked entries, then submissions that entered the event but were not ranked in it
    (failed ones), by id; entries superseded in the event (another entry of the student counts) are left out
    (superseded_rows lists them). Nothing is computed: every value comes from results.json. "reason" is
    public: a ranking entry's own reason (the scoring's words) or, for a failed submission, HIDDEN."""
    submissions = results["submissions"]
    dropped = superseded_of(results).get(event, {})
    entries = sorted(results["rankings"].get(event, []), key=lambda e: (e["rank"] is None, e["rank"] or 0))
    rows = []
    for entry in entries:
        record = submissions[entry["id"]]
        rows.append({"event": event, "rank": entry["rank"], "medal": entry["medal"], "id": entry["id"],
                     "student_id": record.get("student_id"), "score": entry["score"], "low": entry["low"],
                     "high": entry["high"], "status": record["status"],
                     "reason": entry.get("reason") or (None if record["status"] in SCORED else HIDDEN),
                     "eligible": entry["eligible"]})
    ranked = {entry["id"] for entry in entries}
    for key in sorted(submissions):
        record = submissions[key]
        if key not in ranked and key not in dropped and event in (record.get("events") or []):
            rows.append({"event": event, "rank": None, "medal": None, "id": key, "student_id": record.get("student_id"),
                         "score": None, "low": None, "high": None, "status": record["status"],
                         "reason": HIDDEN if record["status"] not in SCORED else None,
                         "eligible": None})   # not in the ranking: unknown
    return rows


def superseded_rows(results: dict) -> list[dict]:
    """The entries that did not count, by event (course order) then id:
    {"event", "id", "student_id", "status", "by", "reason"}."""
    dropped, submissions, rows = superseded_of(results), results["submissions"], []
    for event in [e for e in events_of(results) if e in dropped] + sorted(set(dropped) - set(events_of(results))):
        for key in sorted(dropped[event]):
            why = dropped[event][key]
            rows.append({"event": event, "id": key, "student_id": submissions[key].get("student_id"),
                         "status": submissions[key]["status"], "by": why["by"],
                         "reason": why.get("reason") or "another entry of the student counts"})
    return rows


def did_not_place(results: dict) -> list[dict]:
    """Submissions with no rank in any event and not superseded, by id: {"id", "student_id", "events",
    "status", "reason"}. The reason is public: the scoring's reasons per event ("event: reason"; the
    grader's own words) or, when there are none, HIDDEN (a failed submission's own text is never shown)."""
    placed = {e["id"] for entries in results["rankings"].values() for e in entries if e["rank"] is not None}
    placed |= {key for dropped in superseded_of(results).values() for key in dropped}
    rows = []
    for key in sorted(results["submissions"]):
        if key in placed:
            continue
        record = results["submissions"][key]
        reasons = [f"{event}: {e['reason']}" for event in events_of(results)
                   for e in results["rankings"].get(event, []) if e["id"] == key and e.get("reason")]
        rows.append({"id": key, "student_id": record.get("student_id"), "events": record.get("events") or [],
                     "status": record["status"], "reason": "; ".join(reasons) or HIDDEN})
    return rows


def _number(value) -> str:
    """A score for people: 4 significant digits; None -> ""."""
    return "" if value is None else f"{value:.4g}"


def _interval(row: dict) -> str:
    """"[low, high]"; "exact" when the interval is the score itself (e.g. byte counts); "" when there is none."""
    if row["low"] is None or row["high"] is None:
        return ""
    if row["low"] == row["high"] == row["score"]:
        return "exact"
    return f"[{row['low']:.4g}, {row['high']:.4g}]"


def _short(text, limit: int = SHORT_REASON) -> str:
    """text cleaned (safetext.clean) on one line, cut to limit characters with a visible marker."""
    return " ".join(safetext.clean(text, limit).split())


def _rank_label(row: dict, rows: list[dict]) -> str:
    """"1st", or "1st (shared)" when another entry holds the same rank."""
    shared = row["rank"] is not None and sum(r["rank"] == row["rank"] for r in rows) > 1
    return ordinal(row["rank"]) + (" (shared)" if shared else "")


def _note(row: dict) -> str:
    """What a reader needs besides the score: the status when not ok, and the (public) reason."""
    parts = [] if row["status"] == "ok" else [row["status"]]
    if row["reason"]:
        parts.append(_short(row["reason"]))
    elif row["rank"] is None and row["status"] == "ok":
        parts.append("not eligible" if row["eligible"] is False else "not in this event's ranking")
    return ": ".join(parts)


def _display_rows(rows: list[dict], escape=safetext.clean) -> list[dict]:
    """The rows as the tables show them, every cell passed through escape (a safetext function)."""
    return [{"rank": escape(_rank_label(r, rows)), "medal": escape(r["medal"] or ""), "id": escape(r["id"]),
             "student": escape(_short(r["student_id"] or "", 80)), "score": escape(_number(r["score"])),
             "interval": escape(_interval(r)), "note": escape(_note(r))} for r in rows]


def _failure_rows(results: dict, escape=safetext.clean) -> list[dict]:
    return [{"id": escape(r["id"]), "student": escape(_short(r["student_id"] or "", 80)),
             "events": escape(", ".join(r["events"])), "status": escape(r["status"]), "reason": escape(_short(r["reason"]))}
            for r in did_not_place(results)]


def _superseded_display(results: dict, escape=safetext.clean) -> list[dict]:
    return [{"event": escape(r["event"]), "id": escape(r["id"]), "student": escape(_short(r["student_id"] or "", 80)),
             "counted instead": escape(r["by"])} for r in superseded_rows(results)]


def _summary(results: dict) -> str:
    """"5 submissions: 3 ok, 1 invalid, 1 timeout"."""
    statuses = [r["status"] for r in results["submissions"].values()]
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in STATUSES if s in statuses)
    return f"{len(statuses)} submission(s){': ' + counts if counts else ''}"


def _created(results: dict) -> str:
    return _short(results.get("created", "at an unrecorded time"), 64)


def _rules_line(results: dict, event: str) -> str:
    """How the event is scored, in the rules' own words when results.json has them (cleaned)."""
    rules = (results.get("rules") or {}).get(event)
    if not isinstance(rules, dict):
        return ""
    words = [rules["description"]] if isinstance(rules.get("description"), str) and rules["description"] else []
    if isinstance(rules.get("formula"), str) and rules["formula"]:
        words.append(f"score = {rules['formula']}")
    return _short("; ".join(words), 400)


# ------------------------------------------------------------------------------------------- text and files
def _text_table(rows: list[dict]) -> list[str]:
    """Left-aligned fixed-width columns (keys of the first row as the header); cells already terminal-safe."""
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return lines


def format_leaderboard(results: dict) -> str:
    """Plain-text per-event tables for the terminal, then the superseded entries and the submissions that did
    not place. Every text is safetext.terminal()ed; no failed submission's own text is shown."""
    term = safetext.terminal
    lines = [f"TorchPerf Olympics leaderboard ({_summary(results)}; graded {_created(results)})",
             f"Entries: {term(entry_policy_text(results))}", term(data_text(results)[:1].upper() + data_text(results)[1:])]
    for event in events_of(results):
        rows = event_rows(results, event)
        lines += ["", term(f"{event_title(event)} ({event})")]
        lines += ["  " + line for line in _text_table(_display_rows(rows, term))] if rows else ["  no entries"]
    superseded = _superseded_display(results, term)
    if superseded:
        lines += ["", "Superseded (another entry of the same student counts)"]
        lines += ["  " + line for line in _text_table(superseded)]
    failures = _failure_rows(results, term)
    lines += ["", "Did not place"] + (["  " + line for line in _text_table(failures)] if failures else ["  none"])
    return "\n".join(lines)


def leaderboard_csv(results: dict) -> str:
    """CSV text: a header (CSV_COLUMNS), then one row per event x entry, then the superseded entries (rank and
    scores empty, their record's status, reason "superseded by ID: ..."); numbers in full precision, None empty, every cell through
    safetext.csv_cell (text cleaned to one line; a cell a spreadsheet would read as a formula gets a
    leading "'")."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    rows = [row for event in events_of(results) for row in event_rows(results, event)]
    rows += [{"event": r["event"], "rank": None, "medal": None, "id": r["id"], "student_id": r["student_id"],
              "score": None, "low": None, "high": None, "status": r["status"],
              "reason": f"superseded by {r['by']}: {r['reason']}"} for r in superseded_rows(results)]
    for row in rows:
        writer.writerow([safetext.csv_cell(row[c]) for c in CSV_COLUMNS])
    return buffer.getvalue()


def _md_table(rows: list[dict]) -> str:
    """A GitHub pipe table of rows (dicts of one key set); every header and cell through safetext.markdown
    (which also escapes "|"), so nothing in a cell can end it, link or format."""
    columns = list(rows[0])
    md = safetext.markdown
    lines = ["| " + " | ".join(md(c) for c in columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(md(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def leaderboard_markdown(results: dict) -> str:
    """Per-event tables with medals, the superseded entries, then a table of the submissions that did not
    place. Every text from results.json through safetext.markdown."""
    md = safetext.markdown
    parts = ["# TorchPerf Olympics leaderboard", "",
             md(f"{_summary(results)}; graded {_created(results)}. {ABOUT}") + " `tito olympics leaderboard DIR` "
             "renders it again.", "", "Entries: " + md(entry_policy_text(results)) + ".", "",
             md(data_text(results)[:1].upper() + data_text(results)[1:]) + ".", ""]
    for event in events_of(results):
        rows = event_rows(results, event)
        parts += [f"## {md(event_title(event))} \\({md(event)}\\)", ""]
        if _rules_line(results, event):
            parts += [md(_rules_line(results, event)), ""]
        parts += [_md_table(_display_rows(rows)) if rows else "No entries.\n", ""]
        if rows:
            parts += [f"![{md(event_title(event))} scores](leaderboard_{event}.png)", ""]
    superseded = _superseded_display(results)
    if superseded:
        parts += ["## Superseded entries", "", "Another entry of the same student counts in the event.", "",
                  _md_table(superseded), ""]
    failures = _failure_rows(results)
    parts += ["## Did not place", "", _md_table(failures) if failures else "Every submission placed.\n"]
    return "\n".join(parts)


def leaderboard_html(results: dict) -> str:
    """A standalone page (every text cleaned here, then HTML-escaped by reporting.html_page) with the
    tables and the plots."""
    from tinytorch.benchmarking.reporting import html_page

    clean = safetext.clean
    blocks = [("p", f"{_summary(results)}; graded {_created(results)}. {ABOUT}"),
              ("p", f"Entries: {clean(entry_policy_text(results))}."),
              ("p", clean(data_text(results)[:1].upper() + data_text(results)[1:]) + ".")]
    for event in events_of(results):
        rows = event_rows(results, event)
        blocks.append(("h2", clean(f"{event_title(event)} ({event})")))
        if _rules_line(results, event):
            blocks.append(("p", _rules_line(results, event)))
        blocks += [("table", _display_rows(rows)), ("img", f"leaderboard_{event}.png", f"{event_title(event)} scores")] \
            if rows else [("p", "No entries.")]
    superseded = _superseded_display(results)
    if superseded:
        blocks += [("h2", "Superseded entries"), ("p", "Another entry of the same student counts in the event."),
                   ("table", superseded)]
    failures = _failure_rows(results)
    blocks += [("h2", "Did not place"), ("table", failures) if failures else ("p", "Every submission placed.")]
    return html_page("TorchPerf Olympics leaderboard", blocks)


# ------------------------------------------------------------------------------------------- instructor's report
def _fenced(text) -> str:
    """text (safetext.clean_block, cut to REPORT_LIMIT) as a fenced code block, which Markdown shows
    literally: its fence is longer than any run of backticks in the text, so the text cannot close it."""
    body = safetext.clean_block(text, REPORT_LIMIT)
    run = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, run + 1)
    return f"{fence}\n{body}\n{fence}"


def instructor_report(results: dict) -> str:
    """PRIVATE Markdown for the instructor (do not publish it): every submission's status, events,
    techniques, digest and times, its ranks and superseded entries, its reason and detail (as fenced code
    blocks, cleaned by safetext.clean_block and cut to REPORT_LIMIT characters each), then the grader's own
    errors. Every other text through safetext.markdown."""
    md = safetext.markdown
    ranks = {}
    for event in events_of(results):
        for e in results["rankings"].get(event, []):
            ranks.setdefault(e["id"], []).append(f"{event}: {ordinal(e['rank'])}" + (f" ({e['medal']})" if e["medal"] else "")
                                                 + ("" if e["eligible"] else " (not eligible)"))
    dropped = {}
    for event, entries in superseded_of(results).items():
        for key, why in entries.items():
            dropped.setdefault(key, []).append(f"{event}: superseded by {why.get('by')}")
    parts = ["# TorchPerf Olympics: instructor's grading report", "",
             "**PRIVATE: do not publish this file.** It holds each submission's own error text (reasons and "
             "details that the submission's code can influence); the public leaderboard files leave it out.", "",
             md(f"{_summary(results)}; graded {_created(results)}.") + " " + "Entries: " + md(entry_policy_text(results)) + ".",
             "", "## Submissions", ""]
    for key in sorted(results["submissions"]):
        record = results["submissions"][key]
        facts = [("student", record.get("student_id")), ("name", record.get("name")), ("status", record.get("status")),
                 ("events", ", ".join(map(str, record.get("events") or [])) or None),
                 ("techniques", ", ".join(map(str, record.get("techniques") or [])) if isinstance(record.get("techniques"), list)
                  else record.get("techniques")),
                 ("division", record.get("division")), ("content_sha256", record.get("content_sha256")),
                 ("submitted_at", record.get("submitted_at")), ("graded_at", record.get("graded_at")),
                 ("wall_s", record.get("wall_s")), ("ranks", "; ".join(ranks.get(key, [])) or None),
                 ("superseded", "; ".join(dropped.get(key, [])) or None)]
        parts += [f"### {md(key)}", ""]
        parts += [f"- {field}: {md(_short(value, 400))}" for field, value in facts if value not in (None, "")]
        parts.append("")
        for field in ("reason", "detail"):
            if record.get(field) not in (None, ""):
                parts += [f"{field.title()}:", "", _fenced(record[field]), ""]
    errors = results.get("errors") if isinstance(results.get("errors"), list) else []
    parts += ["## Grader errors", ""]
    if errors:
        for error in errors:
            error = error if isinstance(error, dict) else {"id": None, "error": error}
            parts += [f"- {md(error.get('id') or 'unknown id')}:", "", _fenced(error.get("error")), ""]
    else:
        parts += ["None.", ""]
    removed = results.get("removed") if isinstance(results.get("removed"), list) else []
    if removed:
        parts += ["## Removed since the previous grading", "", md(", ".join(map(str, removed))), ""]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------- plots
def _score_label(results: dict, event: str) -> str:
    """The y-axis label: the rules' score name and direction when results.json has them."""
    rules = (results.get("rules") or {}).get(event)
    rules = rules if isinstance(rules, dict) else {}
    name = rules.get("score_name") if isinstance(rules.get("score_name"), str) else "score"
    direction = {True: " (higher is better)", False: " (lower is better)"}.get(rules.get("higher_is_better"), "")
    return safetext.plot_label(name, 80) + direction


def event_figure(results: dict, event: str) -> Figure:
    """Scores with interval bars, one point per scored entry in ranking order; medal winners in their metal's
    colour, other eligible entries blue, ineligible ones hollow grey. An Agg Figure (no pyplot). Every text
    through safetext.plot_label (no mathtext)."""
    rows = [r for r in event_rows(results, event) if r["score"] is not None]
    fig = Figure(figsize=(max(4.5, 0.9 * len(rows) + 2.5), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for x, row in enumerate(rows):
        colour = MEDAL_COLOURS.get(row["medal"], "C0" if row["eligible"] else "0.6")
        if row["low"] is not None and row["high"] is not None:
            ax.errorbar([x], [row["score"]], yerr=[[row["score"] - row["low"]], [row["high"] - row["score"]]],
                        fmt="none", ecolor=colour, elinewidth=2, capsize=5)
        ax.scatter([x], [row["score"]], s=90, zorder=3, edgecolors=colour, linewidths=2,
                   facecolors=colour if row["eligible"] else "white")
        if row["rank"] is not None:
            ax.annotate(ordinal(row["rank"]), (x, row["score"]), textcoords="offset points", xytext=(9, -3), fontsize=8)
    if rows:
        slanted = len(rows) > 4
        ax.set_xticks(range(len(rows)), [safetext.plot_label(r["id"], 40) for r in rows], rotation=30 if slanted else 0,
                      ha="right" if slanted else "center")
        ax.set_xlim(-0.6, len(rows) - 0.4)
    else:
        ax.text(0.5, 0.5, "no scored entries", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
    shown = [m for m in MEDALS if any(r["medal"] == m for r in rows)]
    handles = [Patch(color=MEDAL_COLOURS[m], label=m) for m in shown]
    if any(not r["eligible"] for r in rows):
        handles.append(Patch(facecolor="white", edgecolor="0.6", label="not eligible"))
    if handles:
        ax.legend(handles=handles, fontsize=8)
    ax.set_ylabel(_score_label(results, event))
    ax.set_title(safetext.plot_label(f"{event_title(event)}: scores and intervals (medal winners coloured)"), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def render_leaderboard(grading_dir, overwrite: bool = False) -> dict:
    """Write the PUBLIC leaderboard.csv, leaderboard.md, leaderboard.html and leaderboard_<event>.png, and the
    PRIVATE instructor_report.md (each submission's own error text: do not publish it), into grading_dir,
    from its results.json alone. Returns {"csv", "md", "html", "report": Path, "plots": {event: Path}}.
    FileExistsError naming every existing file unless overwrite=True (nothing is written then); the files
    are derived data."""
    from tinytorch.benchmarking.reporting import atomic_write_bytes, atomic_write_text

    folder = Path(grading_dir)
    results = load_results(folder)
    events = [e for e in events_of(results) if event_rows(results, e)]
    plots = {event: folder / f"leaderboard_{event}.png" for event in events}
    paths = {"csv": folder / "leaderboard.csv", "md": folder / "leaderboard.md", "html": folder / "leaderboard.html",
             "report": folder / REPORT_NAME}
    existing = [p.name for p in [*plots.values(), *paths.values()] if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{folder} already has {', '.join(existing)}; pass overwrite=True to render again "
                              f"(the leaderboard is derived from results.json, so nothing else is lost)")
    for event, path in plots.items():
        atomic_write_bytes(path, _png_bytes(event_figure(results, event)), overwrite=overwrite)
    atomic_write_text(paths["csv"], leaderboard_csv(results), overwrite=overwrite)
    atomic_write_text(paths["md"], leaderboard_markdown(results), overwrite=overwrite)
    atomic_write_text(paths["html"], leaderboard_html(results), overwrite=overwrite)
    atomic_write_text(paths["report"], instructor_report(results), overwrite=overwrite)
    return {**paths, "plots": plots}


def cmd_olympics_leaderboard(args, tree, say) -> int:
    """`tito olympics leaderboard DIR`: print the rankings and (re)write the leaderboard files in DIR, and the
    private instructor_report.md. Exit 2 when DIR is missing, not a folder or holds no results.json (a bad
    argument); 1 when its results.json is damaged (a check failed)."""
    from ..tree import TitoError, UsageError

    folder = Path(args.dir)
    try:
        results = load_results(folder)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    except LeaderboardError as exc:
        raise TitoError(str(exc)) from None
    try:
        say(format_leaderboard(results))
        before = {p.name for p in [*folder.glob("leaderboard*"), folder / REPORT_NAME] if p.is_file()}
        written = render_leaderboard(folder, overwrite=True)   # derived data: re-rendering is the point
    except (OSError, LeaderboardError) as exc:
        raise TitoError(str(exc)) from None
    files = [written["csv"], written["md"], written["html"], *written["plots"].values()]
    replaced = [p.name for p in [*files, written["report"]] if p.name in before]
    say("")
    say(f"wrote {len(files)} public file(s) in {folder}: {', '.join(p.name for p in files)}")
    say(f"wrote {written['report']}: PRIVATE, for the instructor only (each submission's own error text): "
        f"do not publish it")
    if replaced:
        say(f"replaced {len(replaced)} earlier rendering(s) (derived from results.json, which is unchanged)")
    return 0
