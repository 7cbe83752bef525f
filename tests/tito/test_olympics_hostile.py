"""Hostile submissions, graded by the real grader in one run: each ends in an honest status, the run goes on,
results.json is written, nothing outlives grading, and the installed package is unchanged.

The submissions live in tests/tito/hostile/ (one folder each, its submission.py says what it tries);
expected.json holds the status each must get. Two cases are made here because git cannot hold them: a FIFO
inside a folder, and a folder whose files are all links. The limits are short so the run takes about a minute.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tinytorch.tito.olympics import grader, sandbox
from tinytorch.tito.olympics.sandbox import Limits

HOSTILE = Path(__file__).parent / "hostile"
EXPECTED = json.loads((HOSTILE / "expected.json").read_text())
LIMITS = Limits(timeout_s=15, memory_bytes=2**30, latency_rounds=8, min_rounds=4, min_request_ms=5,
                latency_budget_s=2, latency_sessions=2)
COMPLETE = sandbox.isolation_plan().complete


def _marked_processes():
    """Processes whose name a hostile submission set (the setsid burners)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "hostileburner":
                    found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, package_digest):
    if not COMPLETE:     # e.g. an unprivileged grader: no cgroups, so a forked memory hog is not contained
        pytest.skip("the hostile submissions need complete isolation here: " + "; ".join(sandbox.isolation_plan().missing))
    base = tmp_path_factory.mktemp("hostile")
    root, out, private_tmp = base / "submissions", base / "out", base / "tmp"
    shutil.copytree(HOSTILE, root, ignore=shutil.ignore_patterns("expected.json", "README.md", "__pycache__"))
    private_tmp.mkdir()
    fifo = root / "fifo_inside"                   # a named pipe: opening it to read would block forever
    shutil.copytree(HOSTILE / "read_secrets", fifo)
    os.mkfifo(fifo / "weights.npy")
    links = root / "links_out"                    # submission.py is a link to a file outside the folder
    links.mkdir()
    shutil.copy(HOSTILE / "read_secrets" / "submission.json", links / "submission.json")
    os.symlink("/etc/passwd", links / "submission.py")
    lines = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(private_tmp))
        results = grader.grade_all(root, out, progress=lines.append, limits=LIMITS, seed=11)
    return results, out, lines, private_tmp


def test_each_hostile_submission_gets_its_honest_status(hostile_run):
    results = hostile_run[0]
    got = {key: record["status"] for key, record in results["submissions"].items()}
    want = dict(EXPECTED, fifo_inside="invalid", links_out="invalid")
    wrong = {key: (got.get(key), status, (results["submissions"].get(key) or {}).get("reason"))
             for key, status in want.items() if got.get(key) not in ([status] if isinstance(status, str) else status)}
    assert not wrong, wrong
    assert results["complete"] is True and results["errors"] == []


def test_the_reasons_name_what_was_caught(hostile_run):
    subs = hostile_run[0]["submissions"]
    assert subs["fork_memory_hog"]["status"] == "ok"        # its children were killed at the limit (it checks)
    assert "declared state_dict()" in subs["hidden_weights"]["reason"]
    assert "timed model is not the scored model" in subs["lookup_table"]["reason"]
    assert "depend on how it is called" in subs["stack_inspector"]["reason"]
    assert "nested" in subs["deep_nesting"]["reason"]
    assert "FIFO" in subs["fifo_inside"]["reason"] or "pipe" in subs["fifo_inside"]["reason"]
    assert "link" in subs["links_out"]["reason"]


def test_nothing_could_be_written_or_read_outside(hostile_run, package_digest):
    results, out, lines, _ = hostile_run
    assert package_digest() == package_digest.before          # the installed package is byte-for-byte unchanged
    assert "HOSTILE" not in Path("/etc/passwd").read_text()
    for key in ("package_writer", "read_secrets", "shadow_modules"):
        assert results["submissions"][key]["status"] == "ok", results["submissions"][key]["reason"]


def test_no_process_outlives_grading_and_sandboxes_are_gone(hostile_run):
    assert _marked_processes() == []
    assert list(hostile_run[3].iterdir()) == []                # every sandbox removed
    leftovers = [p for base in sandbox.cgroup_bases().values() if isinstance(base, str) and os.path.isdir(base)
                 for p in os.listdir(base) if p.startswith(f"w{os.getpid()}.")]
    assert leftovers == []


def test_hidden_memory_is_counted(hostile_run):
    """The library stash declares only its last layer (5160 bytes), but the census finds what it hid in numpy:
    it is counted as big as the baseline, so its compression gains nothing."""
    record = hostile_run[0]["submissions"]["library_stash"]
    memory = record["measurement"]["memory"]
    assert memory["declared_state_bytes"] == 5160 and memory["counted"] == "arrays the model holds"   # 1290 float32
    assert record["measurement"]["parameter_bytes"] >= record["baseline"]["parameter_bytes"]
    assert record["scores"]["memory_challenge"]["score"] <= 1.0


def test_tricks_do_not_make_a_model_faster(hostile_run):
    """A content cache never hits (every timed input is new); burners slow only their own worker down."""
    subs = hostile_run[0]["submissions"]
    for key in ("cache_by_content", "setsid_burner"):
        assert subs[key]["scores"]["latency_sprint"]["score"] < 1.25, (key, subs[key]["scores"]["latency_sprint"])


def test_one_entry_per_student_and_escapes_never_reach_the_terminal(hostile_run):
    from tinytorch.tito.olympics.leaderboard import format_leaderboard, render_leaderboard

    results, out, lines, _ = hostile_run
    superseded = results["superseded"]["latency_sprint"]
    assert set(superseded) & {"package_writer", "read_secrets"}       # "mallory" handed in two: one counts
    counted = [e["id"] for e in results["rankings"]["latency_sprint"]]
    assert sum(key in counted for key in ("package_writer", "read_secrets")) == 1
    text = "\n".join(lines) + format_leaderboard(results)
    written = render_leaderboard(out)
    for path in (written["md"], written["csv"], written["html"]):
        text += Path(path).read_text(encoding="utf-8")
    assert "\x1b" not in text and "\u202e" not in text
    assert results["data"]["public"] is True and "memorise" in results["data"]["note"]


def test_results_json_says_how_isolated_the_run_was(hostile_run):
    results = json.loads((hostile_run[1] / "results.json").read_text())
    assert results["isolation"]["complete"] is True and results["isolation"]["missing"] == []
    record = results["submissions"]["package_writer"]
    assert record["isolation"]["complete"] is True
    assert np.isfinite(record["wall_s"])
