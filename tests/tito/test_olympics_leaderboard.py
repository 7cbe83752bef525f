"""The Olympics leaderboard, rendered from a hand-built results.json (shared ranks, every failure status,
a hostile student id): exact CSV rows, medals and the failure table in Markdown, escaping in HTML, the
plots, re-render refusal and overwrite, malformed files, the text tables and the CLI handler."""
import copy
import json
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.image import imread

from tinytorch.tito.olympics import leaderboard as lb
from tinytorch.tito.olympics.leaderboard import (LeaderboardError, format_leaderboard, load_results,
                                                 render_leaderboard)
from tinytorch.tito.tree import TitoError

HOSTILE = "<script>alert('x')</script> | eve"


def record(sid, student, status, reason=None, events=("latency_sprint", "memory_challenge")):
    return {"id": sid, "student_id": student, "events": list(events), "techniques": [], "division": "closed",
            "status": status, "reason": reason, "scores": {}}


def entry(sid, rank, medal, score, low, high, eligible=True, reason=None):
    return {"id": sid, "rank": rank, "medal": medal, "score": score, "low": low, "high": high,
            "eligible": eligible, "reason": reason, "leader": sid}


RESULTS = {
    "schema": "tinytorch.olympics.results/1",
    "created": "2026-05-01T12:00:00+00:00",
    "environment": {}, "limits": {"timeout_s": 60}, "isolation": {"network": "namespace"},
    "rules": {"latency_sprint": {"description": "fastest model wins", "formula": "median(base) / median(sub)",
                                 "score_name": "speedup", "higher_is_better": True},
              "memory_challenge": {"description": "smallest model wins", "score_name": "compression",
                                   "higher_is_better": True}},
    "submissions": {
        "alice": record("alice", "s1", "ok"),
        "bob": record("bob", "s2", "ok", events=("latency_sprint",)),
        "carol": record("carol", "s3", "ok"),
        "dave": record("dave", "s4", "constraint not met", "eligible in none of its events"),
        "eve": record("eve", HOSTILE, "invalid", "outputs have shape (359, 5); expected (359, 10)",
                      events=("latency_sprint",)),
        "frank": record("frank", "s6", "timeout", "no answer within 60 s"),
        "grace": record("grace", "s7", "crashed", "Traceback (most recent call last):\n  ...\nZeroDivisionError: boom"),
        "heidi": record("heidi", "s8", "out of memory", "MemoryError while building the model", events=()),
    },
    "rankings": {
        # written in alphabetical key order, as atomic_write_json does: the leaderboard shows course order
        "memory_challenge": [entry("alice", 1, "gold", 3.75, 3.75, 3.75), entry("carol", 2, "silver", 1.5, 1.5, 1.5),
                             entry("dave", None, None, 4.0, 4.0, 4.0, False, "accuracy 0.62 [0.57, 0.67] < 0.85")],
        "latency_sprint": [entry("alice", 1, "gold", 1.8, 1.7, 1.9), entry("bob", 1, "gold", 1.75, 1.65, 1.85),
                           entry("carol", 3, "bronze", 1.25, 1.2, 1.3),
                           entry("dave", None, None, 2.5, 2.4, 2.6, False, "accuracy 0.62 [0.57, 0.67] < 0.85")],
    },
}

EXPECTED_CSV = """event,rank,medal,id,student_id,score,low,high,status,reason
latency_sprint,1,gold,alice,s1,1.8,1.7,1.9,ok,
latency_sprint,1,gold,bob,s2,1.75,1.65,1.85,ok,
latency_sprint,3,bronze,carol,s3,1.25,1.2,1.3,ok,
latency_sprint,,,dave,s4,2.5,2.4,2.6,constraint not met,"accuracy 0.62 [0.57, 0.67] < 0.85"
latency_sprint,,,eve,<script>alert('x')</script> | eve,,,,invalid,see the instructor's grading report
latency_sprint,,,frank,s6,,,,timeout,see the instructor's grading report
latency_sprint,,,grace,s7,,,,crashed,see the instructor's grading report
memory_challenge,1,gold,alice,s1,3.75,3.75,3.75,ok,
memory_challenge,2,silver,carol,s3,1.5,1.5,1.5,ok,
memory_challenge,,,dave,s4,4.0,4.0,4.0,constraint not met,"accuracy 0.62 [0.57, 0.67] < 0.85"
memory_challenge,,,frank,s6,,,,timeout,see the instructor's grading report
memory_challenge,,,grace,s7,,,,crashed,see the instructor's grading report
"""


def grading_dir(tmp_path, results=RESULTS, name="grading"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True), encoding="utf-8")
    return folder


def test_csv_rows_exact(tmp_path):
    folder = grading_dir(tmp_path)
    written = render_leaderboard(folder)
    assert written["csv"].read_text(encoding="utf-8") == EXPECTED_CSV
    assert sorted(p.name for p in folder.iterdir()) == [
        "instructor_report.md", "leaderboard.csv", "leaderboard.html", "leaderboard.md", "leaderboard_latency_sprint.png",
        "leaderboard_memory_challenge.png", "results.json"]
    assert written["plots"] == {e: folder / f"leaderboard_{e}.png" for e in ("latency_sprint", "memory_challenge")}


def test_markdown_has_medals_and_failure_table(tmp_path):
    md = render_leaderboard(grading_dir(tmp_path))["md"].read_text(encoding="utf-8")
    # every text is escaped by safetext.markdown (each Markdown punctuation character backslash-escaped)
    assert md.index("## Latency Sprint \\(latency_sprint\\)") < md.index("## Memory Challenge \\(memory_challenge\\)") \
        < md.index("## Did not place")
    assert "fastest model wins; score \\= median\\(base\\) / median\\(sub\\)" in md
    assert "Entries: all entries count \\(results\\.json predates the policy\\)." in md
    assert "| 1st \\(shared\\) | gold | alice | s1 | 1\\.8 | \\[1\\.7, 1\\.9\\] |  |" in md
    assert "| 1st \\(shared\\) | gold | bob | s2 | 1\\.75 | \\[1\\.65, 1\\.85\\] |  |" in md
    assert "| 3rd | bronze | carol | s3 | 1\\.25 | \\[1\\.2, 1\\.3\\] |  |" in md
    assert "| 2nd | silver | carol | s3 | 1\\.5 | exact |  |" in md
    assert "| \\- |  | dave | s4 | 2\\.5 | \\[2\\.4, 2\\.6\\] | constraint not met\\: accuracy 0\\.62 \\[0\\.57, 0\\.67\\] " \
           "\\< 0\\.85 |" in md
    assert "![Latency Sprint scores](leaderboard_latency_sprint.png)" in md
    failures = md[md.index("## Did not place"):]
    assert "| id | student | events | status | reason |" in failures
    # a failure's reason is public only when the scoring wrote it (dave's per-event constraint reasons)
    assert "| dave | s4 | latency_sprint, memory_challenge | constraint not met | latency_sprint\\: accuracy " \
           "0\\.62 \\[0\\.57, 0\\.67\\] \\< 0\\.85; memory_challenge\\: accuracy 0\\.62 \\[0\\.57, 0\\.67\\] \\< 0\\.85 |" in failures
    hidden = "see the instructor\\'s grading report"
    assert f"| eve | \\<script\\>alert\\(\\'x\\'\\)\\</script\\> \\| eve | latency_sprint | invalid | {hidden} |" in failures
    assert f"| frank | s6 | latency_sprint, memory_challenge | timeout | {hidden} |" in failures
    assert f"| grace | s7 | latency_sprint, memory_challenge | crashed | {hidden} |" in failures
    assert f"| heidi | s8 |  | out of memory | {hidden} |" in failures
    assert "alice" not in failures and "<script>" not in md
    for private in ("outputs have shape", "no answer within 60 s", "ZeroDivisionError", "MemoryError",
                    "eligible in none of its events"):
        assert private not in md


def test_html_escapes_and_shows_plots(tmp_path):
    page = render_leaderboard(grading_dir(tmp_path))["html"].read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; | eve" in page
    assert '<img src="leaderboard_latency_sprint.png"' in page and '<img src="leaderboard_memory_challenge.png"' in page
    assert page.count("<table>") == 3 and "<td>gold</td>" in page and "<td>bronze</td>" in page
    assert "out of memory" in page and "timeout" in page and "crashed" in page


def test_plots_highlight_medal_winners(tmp_path):
    plots = render_leaderboard(grading_dir(tmp_path))["plots"]
    image = imread(plots["latency_sprint"])[..., :3]
    for colour in ("gold", "bronze"):                                  # the medal colours are painted
        rgb = np.array([int(lb.MEDAL_COLOURS[colour][i:i + 2], 16) / 255 for i in (1, 3, 5)])
        assert (np.abs(image - rgb).max(axis=-1) < 0.02).sum() > 50, colour
    silver = np.array([int(lb.MEDAL_COLOURS["silver"][i:i + 2], 16) / 255 for i in (1, 3, 5)])
    memory = imread(plots["memory_challenge"])[..., :3]
    assert (np.abs(memory - silver).max(axis=-1) < 0.02).sum() > 50


def test_rerender_refused_then_overwritten(tmp_path):
    folder = grading_dir(tmp_path)
    first = render_leaderboard(folder)
    (folder / "leaderboard.md").write_text("edited by hand")
    with pytest.raises(FileExistsError) as info:
        render_leaderboard(folder)
    assert str(folder) in str(info.value) and "leaderboard.csv" in str(info.value) and "overwrite=True" in str(info.value)
    assert (folder / "leaderboard.md").read_text() == "edited by hand"           # nothing written
    second = render_leaderboard(folder, overwrite=True)
    assert second["csv"].read_text() == EXPECTED_CSV and "edited by hand" not in second["md"].read_text()
    assert first["plots"]["latency_sprint"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def malformed(tmp_path, mutate, name):
    doc = copy.deepcopy(RESULTS)
    mutate(doc)
    folder = grading_dir(tmp_path, doc, name)
    with pytest.raises(LeaderboardError) as info:
        render_leaderboard(folder)
    assert str(folder / "results.json") in str(info.value)
    assert not (folder / "leaderboard.csv").exists()
    return info.value.problems


def test_malformed_results_name_the_file_and_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere does not exist: pass the grading folder"):
        render_leaderboard(tmp_path / "nowhere")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileNotFoundError, match="afile is a file, not a folder: pass the grading folder"):
        render_leaderboard(tmp_path / "afile")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty/results.json does not exist: grade first"):
        render_leaderboard(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text('{"schema": "tinytorch.olympics.results/1",\n "submissions": }')
    with pytest.raises(LeaderboardError, match=r"broken/results.json: is not valid JSON: Expecting value at line 2, "
                                               r"column 17"):
        render_leaderboard(tmp_path / "broken")
    assert malformed(tmp_path, lambda d: d.update(schema="tinytorch.olympics.results/0"), "schema") == [
        "schema is 'tinytorch.olympics.results/0'; this leaderboard reads 'tinytorch.olympics.results/1': grade "
        "again with this version of tito (`tito olympics grade`)"]

    def many(doc):
        doc["submissions"]["bob"]["status"] = "exploded"
        doc["rankings"]["latency_sprint"][0]["rank"] = "first"
        doc["rankings"]["latency_sprint"][1]["low"] = 1.8
        doc["rankings"]["latency_sprint"].append(entry("zed", 4, None, 1.0, 0.9, 1.1))
        doc["rankings"]["memory_challenge"][0]["medal"] = "platinum"
        del doc["rankings"]["memory_challenge"][1]["score"]
        doc["rankings"]["../escape"] = []
    assert malformed(tmp_path, many, "many") == [
        "submissions['bob'].status must be one of ok, invalid, timeout, crashed, out of memory, constraint not met, grader error, "
        "got 'exploded'",
        "rankings key '../escape' is not an event name (lower-case letters, digits, '_')",
        "rankings['latency_sprint'][0].rank must be an integer >= 1 or null, got 'first'",
        "rankings['latency_sprint'][1]: score 1.75 lies outside its interval [1.8, 1.85]",
        "rankings['latency_sprint'][4].id 'zed' is not among the submissions",
        "rankings['memory_challenge'][0].medal must be null or one of gold, silver, bronze on a ranked entry, got 'platinum'",
        "rankings['memory_challenge'][1] is missing score"]


def test_format_leaderboard_text(tmp_path):
    text = format_leaderboard(load_results(grading_dir(tmp_path)))
    lines = text.splitlines()
    assert lines[0] == ("TorchPerf Olympics leaderboard (8 submission(s): 3 ok, 1 invalid, 1 timeout, 1 crashed, "
                        "1 out of memory, 1 constraint not met; graded 2026-05-01T12:00:00+00:00)")
    sprint = lines[lines.index("Latency Sprint (latency_sprint)") + 1:lines.index("Memory Challenge (memory_challenge)")]
    assert sprint[0].split() == ["rank", "medal", "id", "student", "score", "interval", "note"]
    assert sprint[1].split() == ["1st", "(shared)", "gold", "alice", "s1", "1.8", "[1.7,", "1.9]"]
    assert sprint[3].split() == ["3rd", "bronze", "carol", "s3", "1.25", "[1.2,", "1.3]"]
    assert sprint[5].split()[:2] == ["-", "eve"] and "invalid: see the instructor's grading report" in sprint[5]
    assert lines[1] == "Entries: all entries count (results.json predates the policy)"
    assert "outputs have shape" not in text and "ZeroDivisionError" not in text
    tail = lines[lines.index("Did not place"):]
    assert [line.split()[0] for line in tail[2:]] == ["dave", "eve", "frank", "grace", "heidi"]


def test_event_rows_follow_the_file(tmp_path):
    results = load_results(grading_dir(tmp_path))
    assert lb.events_of(results) == ["latency_sprint", "memory_challenge"]
    assert [(r["id"], r["rank"]) for r in lb.event_rows(results, "memory_challenge")] == [
        ("alice", 1), ("carol", 2), ("dave", None), ("frank", None), ("grace", None)]
    assert [lb.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]


def test_cmd_leaderboard(tmp_path):
    folder = grading_dir(tmp_path)
    lines = []
    assert lb.cmd_olympics_leaderboard(SimpleNamespace(dir=str(folder)), None, lines.append) == 0
    assert lines[0].startswith("TorchPerf Olympics leaderboard (8 submission(s)")
    assert lines[-2] == (f"wrote 5 public file(s) in {folder}: leaderboard.csv, leaderboard.md, leaderboard.html, "
                         f"leaderboard_latency_sprint.png, leaderboard_memory_challenge.png")
    assert lines[-1] == (f"wrote {folder / 'instructor_report.md'}: PRIVATE, for the instructor only (each "
                         f"submission's own error text): do not publish it")
    lines.clear()
    assert lb.cmd_olympics_leaderboard(SimpleNamespace(dir=str(folder)), None, lines.append) == 0   # re-render
    assert lines[-1] == "replaced 6 earlier rendering(s) (derived from results.json, which is unchanged)"
    with pytest.raises(TitoError, match="does not exist: grade first"):
        lb.cmd_olympics_leaderboard(SimpleNamespace(dir=str(tmp_path)), None, lines.append)
