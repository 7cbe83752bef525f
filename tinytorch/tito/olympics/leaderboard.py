"""The Olympics leaderboard: per-event rankings with medals, rendered from a grading run's results.json alone.

The grader (`tito olympics grade SUBMISSIONS --out DIR`) writes DIR/results.json (schema
"tinytorch.olympics.results/1"): every submission's status and scores and, per event, the ranked entries with
their medals. This module only reads that file: it never measures, re-scores or re-ranks anything, so the
leaderboard says exactly what the grading run decided.

A leaderboard is DERIVED data: leaderboard.csv, leaderboard.md, leaderboard.html and leaderboard_<event>.png
can be rebuilt from results.json at any time. `render_leaderboard` still refuses to replace existing files
unless overwrite=True; the `tito olympics leaderboard DIR` command passes overwrite=True (re-rendering is its
purpose) and says which files it replaced.
"""
from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

SCHEMA = "tinytorch.olympics.results/1"
STATUSES = ("ok", "invalid", "timeout", "crashed", "out of memory", "constraint not met")
MEDALS = ("gold", "silver", "bronze")
MEDAL_COLOURS = {"gold": "#c9a227", "silver": "#9ea0a5", "bronze": "#b87333"}
EVENT_ORDER = ("latency_sprint", "memory_challenge", "accuracy_contest", "all_around", "extreme_push")
EVENT_NAME = re.compile(r"[a-z0-9_]{1,64}")
CSV_COLUMNS = ("event", "rank", "medal", "id", "student_id", "score", "low", "high", "status", "reason")
ABOUT = ("Ranks, medals and scores are the grading run's, as results.json records them (entries whose intervals "
         "overlap share a rank); under each event, its rule says how it is scored. Derived from results.json.")
SHORT_REASON = 240   # characters of a reason shown in tables (the CSV and results.json keep all of it)


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


def event_rows(results: dict, event: str) -> list[dict]:
    """One row per entry of the event (the CSV_COLUMNS keys): ranked entries by rank (the file's order within
    a rank), then its unranked entries, then submissions that entered the event but were not ranked in it
    (failed ones), by id. Nothing is computed: every value comes from results.json."""
    submissions = results["submissions"]
    entries = sorted(results["rankings"].get(event, []), key=lambda e: (e["rank"] is None, e["rank"] or 0))
    rows = []
    for entry in entries:
        record = submissions[entry["id"]]
        rows.append({"event": event, "rank": entry["rank"], "medal": entry["medal"], "id": entry["id"],
                     "student_id": record.get("student_id"), "score": entry["score"], "low": entry["low"],
                     "high": entry["high"], "status": record["status"],
                     "reason": entry.get("reason") or (record.get("reason") if record["status"] != "ok" else None),
                     "eligible": entry["eligible"]})
    ranked = {entry["id"] for entry in entries}
    for key in sorted(submissions):
        record = submissions[key]
        if key not in ranked and event in (record.get("events") or []):
            rows.append({"event": event, "rank": None, "medal": None, "id": key, "student_id": record.get("student_id"),
                         "score": None, "low": None, "high": None, "status": record["status"],
                         "reason": record.get("reason"), "eligible": None})   # not in the ranking: unknown
    return rows


def did_not_place(results: dict) -> list[dict]:
    """Submissions with no rank in any event, by id: {"id", "student_id", "events", "status", "reason"}."""
    placed = {e["id"] for entries in results["rankings"].values() for e in entries if e["rank"] is not None}
    rows = []
    for key in sorted(results["submissions"]):
        if key in placed:
            continue
        record = results["submissions"][key]
        reasons = [e.get("reason") for entries in results["rankings"].values() for e in entries
                   if e["id"] == key and e.get("reason")]
        rows.append({"id": key, "student_id": record.get("student_id"), "events": record.get("events") or [],
                     "status": record["status"], "reason": record.get("reason") or "; ".join(reasons) or None})
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
    """text on one line, cut to limit characters (the CSV keeps it whole)."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _rank_label(row: dict, rows: list[dict]) -> str:
    """"1st", or "1st (shared)" when another entry holds the same rank."""
    shared = row["rank"] is not None and sum(r["rank"] == row["rank"] for r in rows) > 1
    return ordinal(row["rank"]) + (" (shared)" if shared else "")


def _note(row: dict) -> str:
    """What a reader needs besides the score: the status when not ok, and the reason."""
    parts = [] if row["status"] == "ok" else [row["status"]]
    if row["reason"]:
        parts.append(_short(row["reason"]))
    elif row["rank"] is None and row["status"] == "ok":
        parts.append("not eligible" if row["eligible"] is False else "not in this event's ranking")
    return ": ".join(parts)


def _display_rows(rows: list[dict], escape=lambda s: s) -> list[dict]:
    """The rows as the tables show them (text cells passed through escape)."""
    return [{"rank": _rank_label(r, rows), "medal": r["medal"] or "", "id": escape(r["id"]),
             "student": escape(r["student_id"] or ""), "score": _number(r["score"]), "interval": _interval(r),
             "note": escape(_note(r))} for r in rows]


def _failure_rows(results: dict, escape=lambda s: s) -> list[dict]:
    return [{"id": escape(r["id"]), "student": escape(r["student_id"] or ""), "events": escape(", ".join(r["events"])),
             "status": r["status"], "reason": escape(_short(r["reason"]))} for r in did_not_place(results)]


def _summary(results: dict) -> str:
    """"5 submissions: 3 ok, 1 invalid, 1 timeout"."""
    statuses = [r["status"] for r in results["submissions"].values()]
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in STATUSES if s in statuses)
    return f"{len(statuses)} submission(s){': ' + counts if counts else ''}"


def _rules_line(results: dict, event: str) -> str:
    """How the event is scored, in the rules' own words when results.json has them."""
    rules = (results.get("rules") or {}).get(event)
    if not isinstance(rules, dict):
        return ""
    words = [rules["description"]] if isinstance(rules.get("description"), str) and rules["description"] else []
    if isinstance(rules.get("formula"), str) and rules["formula"]:
        words.append(f"score = {rules['formula']}")
    return "; ".join(words)


# ------------------------------------------------------------------------------------------- text and files
def _text_table(rows: list[dict]) -> list[str]:
    """Left-aligned fixed-width columns (keys of the first row as the header)."""
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return lines


def format_leaderboard(results: dict) -> str:
    """Plain-text per-event tables for the terminal, then the submissions that did not place."""
    lines = [f"TorchPerf Olympics leaderboard ({_summary(results)}; graded {results.get('created', 'at an unrecorded time')})"]
    for event in events_of(results):
        rows = event_rows(results, event)
        lines += ["", f"{event_title(event)} ({event})"]
        lines += ["  " + line for line in _text_table(_display_rows(rows))] if rows else ["  no entries"]
    failures = _failure_rows(results)
    lines += ["", "Did not place"] + (["  " + line for line in _text_table(failures)] if failures else ["  none"])
    return "\n".join(lines)


def leaderboard_csv(results: dict) -> str:
    """CSV text: a header (CSV_COLUMNS), then one row per event x entry; numbers in full precision, None empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for event in events_of(results):
        for row in event_rows(results, event):
            writer.writerow(["" if row[c] is None else repr(row[c]) if isinstance(row[c], float) else row[c]
                             for c in CSV_COLUMNS])
    return buffer.getvalue()


def _md_escape(text: str) -> str:
    """Text safe in Markdown that may be rendered as HTML: <, > and & escaped ("|" is escaped by the table)."""
    return html.escape(text, quote=False)


def leaderboard_markdown(results: dict) -> str:
    """Per-event tables with medals, then a table of the submissions that did not place."""
    from tinytorch.benchmarking.reporting import markdown_table

    parts = ["# TorchPerf Olympics leaderboard", "",
             f"{_summary(results)}; graded {results.get('created', 'at an unrecorded time')}. {ABOUT} "
             f"`tito olympics leaderboard DIR` renders it again.", ""]
    for event in events_of(results):
        rows = event_rows(results, event)
        parts += [f"## {event_title(event)} ({event})", ""]
        if _rules_line(results, event):
            parts += [_md_escape(_rules_line(results, event)), ""]
        parts += [markdown_table(_display_rows(rows, _md_escape)) if rows else "No entries.\n", ""]
        if rows:
            parts += [f"![{event_title(event)} scores](leaderboard_{event}.png)", ""]
    failures = _failure_rows(results, _md_escape)
    parts += ["## Did not place", "", markdown_table(failures) if failures else "Every submission placed.\n"]
    return "\n".join(parts)


def leaderboard_html(results: dict) -> str:
    """A standalone page (every text HTML-escaped by reporting.html_page) with the tables and the plots."""
    from tinytorch.benchmarking.reporting import html_page

    blocks = [("p", f"{_summary(results)}; graded {results.get('created', 'at an unrecorded time')}. {ABOUT}")]
    for event in events_of(results):
        rows = event_rows(results, event)
        blocks.append(("h2", f"{event_title(event)} ({event})"))
        if _rules_line(results, event):
            blocks.append(("p", _rules_line(results, event)))
        blocks += [("table", _display_rows(rows)), ("img", f"leaderboard_{event}.png", f"{event_title(event)} scores")] \
            if rows else [("p", "No entries.")]
    failures = _failure_rows(results)
    blocks += [("h2", "Did not place"), ("table", failures) if failures else ("p", "Every submission placed.")]
    return html_page("TorchPerf Olympics leaderboard", blocks)


def _score_label(results: dict, event: str) -> str:
    """The y-axis label: the rules' score name and direction when results.json has them."""
    rules = (results.get("rules") or {}).get(event)
    rules = rules if isinstance(rules, dict) else {}
    name = rules.get("score_name") if isinstance(rules.get("score_name"), str) else "score"
    direction = {True: " (higher is better)", False: " (lower is better)"}.get(rules.get("higher_is_better"), "")
    return name + direction


def event_figure(results: dict, event: str) -> Figure:
    """Scores with interval bars, one point per scored entry in ranking order; medal winners in their metal's
    colour, other eligible entries blue, ineligible ones hollow grey. An Agg Figure (no pyplot)."""
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
        ax.set_xticks(range(len(rows)), [r["id"] for r in rows], rotation=30 if slanted else 0,
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
    ax.set_title(f"{event_title(event)}: scores and intervals (medal winners coloured)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def render_leaderboard(grading_dir, overwrite: bool = False) -> dict:
    """Write leaderboard.csv, leaderboard.md, leaderboard.html and leaderboard_<event>.png into grading_dir, from
    its results.json alone. Returns {"csv", "md", "html": Path, "plots": {event: Path}}. FileExistsError naming
    every existing file unless overwrite=True (nothing is written then); the files are derived data."""
    from tinytorch.benchmarking.reporting import atomic_write_bytes, atomic_write_text

    folder = Path(grading_dir)
    results = load_results(folder)
    events = [e for e in events_of(results) if event_rows(results, e)]
    plots = {event: folder / f"leaderboard_{event}.png" for event in events}
    paths = {"csv": folder / "leaderboard.csv", "md": folder / "leaderboard.md", "html": folder / "leaderboard.html"}
    existing = [p.name for p in [*plots.values(), *paths.values()] if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{folder} already has {', '.join(existing)}; pass overwrite=True to render again "
                              f"(the leaderboard is derived from results.json, so nothing else is lost)")
    for event, path in plots.items():
        atomic_write_bytes(path, _png_bytes(event_figure(results, event)), overwrite=overwrite)
    atomic_write_text(paths["csv"], leaderboard_csv(results), overwrite=overwrite)
    atomic_write_text(paths["md"], leaderboard_markdown(results), overwrite=overwrite)
    atomic_write_text(paths["html"], leaderboard_html(results), overwrite=overwrite)
    return {**paths, "plots": plots}


def cmd_olympics_leaderboard(args, tree, say) -> int:
    """`tito olympics leaderboard DIR`: print the rankings and (re)write the leaderboard files in DIR.
    Exit 2 when DIR is missing, not a folder or holds no results.json (a bad argument); 1 when its
    results.json is damaged (a check failed)."""
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
        before = {p.name for p in folder.glob("leaderboard*") if p.is_file()}
        written = render_leaderboard(folder, overwrite=True)   # derived data: re-rendering is the point
    except (OSError, LeaderboardError) as exc:
        raise TitoError(str(exc)) from None
    files = [written["csv"], written["md"], written["html"], *written["plots"].values()]
    replaced = [p.name for p in files if p.name in before]
    say("")
    say(f"wrote {len(files)} file(s) in {folder}: {', '.join(p.name for p in files)}")
    if replaced:
        say(f"replaced {len(replaced)} earlier rendering(s) (derived from results.json, which is unchanged)")
    return 0
