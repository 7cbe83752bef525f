"""Text from submissions reaches people only through safetext, and one entry per student per event counts.

safetext: ANSI/OSC/8-bit escapes, bidi and other control or format characters are removed whole; Markdown
output parses (markdown-it-py and mistune, both in the venv; linkify-it-py too when installed) to plain
text with no link, image, autolink or HTML; CSV cells that a spreadsheet would evaluate start with "'"
when read back; numbers are unchanged; nothing raises on bytes, None, numbers or a 100 KB string.
leaderboard: a hostile results.json renders with none of the raw payloads in any file, no failed
submission's own error text in the public files, and that text (cleaned, escaped) in instructor_report.md.
entries: ten entries of one student count once per event (the latest; or the best), deterministically.
"""
import copy
import csv
import html
import io
import json
import random
import re
import time
import unicodedata

import pytest
from markdown_it import MarkdownIt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tinytorch.capstone.scoring import medals, rank
from tinytorch.tito.olympics import leaderboard as lb
from tinytorch.tito.olympics import safetext as st
from tinytorch.tito.olympics.entries import (POLICY_TEXT, counted_entries, describe_policy, select_entries,
                                             student_key)

ANSI = "\x1b[2K\r ok"
OSC8 = "\x1b]8;;http://evil\x07click\x1b]8;;\x07"
BIDI = "\u202Eevil"
LINK = "[x](http://evil)"
IMAGE = "![img](http://evil/x.png)"
SCRIPT = "<script>alert(1)</script>"
HYPERLINK = '=HYPERLINK("http://evil","x")'
FORMULAS = [HYPERLINK, "+1+1", "-2+3", "@SUM(1)", "\t=1", "  =1", "\r=1", "\uff1d1+1", "|calc"]
AUTOLINKS = ["http://evil.com/x", "https://evil.com", "www.evil.com", "user@evil.com", "mailto:a@b.co",
             "xmpp:a@b.co/r", "<http://evil>", "<a@b.co>", "ftp://x.y", "HTTPS://EVIL.COM", "WWW.EVIL.COM"]
MARKUP = [LINK, IMAGE, SCRIPT, "*em* _u_ ~~s~~ **b**", "`code` ``x``", "&amp; &#60; &lt;", "a | b", "\\[x](y)",
          "[x]: http://evil", "[^1]", "$x^2$", "# h", "- item", "1. list", "> quote", "=== x", "    indented",
          "<!-- c -->", "<img src=x onerror=alert(1)>", "\\`@`x", "a\\"]
BIDI_CHARS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
BIG = ("A" * 1000 + ANSI + BIDI + LINK) * 90          # about 100 KB
HOSTILE = [ANSI, OSC8, BIDI, LINK, IMAGE, SCRIPT, *FORMULAS, *AUTOLINKS, *MARKUP, BIDI_CHARS, BIG,
           "\x1b]0;title\x1b\\after", "a\x1b]0;unterminated", "\x9b2Kx", "\x9d8;;http://e\x9cy", "\x1bc\x1b(Bz",
           "zero\u200bwidth\ufeff\u00ad", "e" + "\u0301" * 50, "\ud800lone", "line\nbreak\ttab\u2028sep\x85nel\x7f"]
ODD = [b"\xff\x1b[31mred", bytearray(b"\xe2\x80\xaeb"), None, 12, -2.5, True, ["\x1b[1m", 1]]


def forbidden(text: str) -> list[str]:
    """The characters that must never survive clean(): control (Cc, newline and tab included), format
    (Cf: bidi, zero-width) and surrogate (Cs) characters."""
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs")]


# ------------------------------------------------------------------------------------------- clean
@pytest.mark.parametrize("text", HOSTILE + ODD, ids=lambda t: repr(t)[:40])
def test_clean_leaves_no_control_bidi_or_escape(text):
    for fn in (st.clean, st.terminal, st.markdown, st.plot_label):
        out = fn(text)
        assert isinstance(out, str) and "\x1b" not in out and not forbidden(out), (fn.__name__, out[:80])
        out.encode("utf-8")                                       # no lone surrogate
    block = st.clean_block(text)
    assert "\x1b" not in block and not [c for c in forbidden(block) if c not in "\n\t"]


def test_clean_exact_results():
    assert st.clean(ANSI) == "  ok"                               # the erase-line and the carriage return are gone
    assert st.clean(OSC8) == "click"                              # the hyperlink (and its URL) removed whole
    assert st.clean("\x1b]0;title\x1b\\after") == "after"         # OSC ended by ST
    assert st.clean("a\x1b]0;unterminated") == "a"                # unterminated: swallowed, as a terminal would
    assert st.clean("\x9b2Kx") == "x" and st.clean("\x9d8;;http://e\x9cy") == "y"   # 8-bit CSI and OSC
    assert st.clean("\x1bc\x1b(Bz") == "z" and st.clean("\x1b[38;5;196mred\x1b[0m") == "red"
    assert st.clean(BIDI) == "evil" and st.clean("a" + BIDI_CHARS + "b") == "ab"
    assert st.clean("zero\u200bwidth\ufeff\u00ad") == "zerowidth"
    assert st.clean("e" + "\u0301" * 50) == "e" + "\u0301" * st.MAX_MARKS
    assert st.clean("\ud800lone") == "lone"
    assert st.clean("line\nbreak\ttab\u2028sep\x85nel\x7f") == "line break tab sep nel"
    assert st.clean_block("a\r\nb\rc\n\td\x1b[2K") == "a\nb\nc\n\td"
    assert st.clean("plain text, unchanged: é ü 中文 🙂") == "plain text, unchanged: é ü 中文 🙂"


def test_clean_odd_values_never_raise():
    class Hostile:
        def __str__(self):
            raise RuntimeError("no")

    class Sneaky(str):
        def __str__(self):
            return "\x1b[2Kfake"

    assert st.clean(b"\xff\x1b[31mred") == "\ufffdred"
    assert st.clean(bytearray(b"\xe2\x80\xaeb")) == "b"
    assert st.clean(None) == "" and st.clean(12) == "12" and st.clean(-2.5) == "-2.5" and st.clean(True) == "True"
    assert st.clean(Hostile()) == st.UNPRINTABLE
    assert st.clean(Sneaky("shown")) == "shown" and type(st.clean(Sneaky("x"))) is str
    assert st.csv_cell(Hostile()) == st.UNPRINTABLE and st.markdown(None) == ""
    with pytest.raises(ValueError, match="limit must be None or an int"):
        st.clean("x", limit=-1)


def test_limit_marks_the_cut_and_big_text_is_fast():
    assert st.clean("x" * 100, 10) == "x" * 10 + "\u2026 [+90 chars]"
    assert st.clean("x" * 10, 10) == "x" * 10 and st.clean_block("ab\ncd", 2) == "ab\u2026 [+3 chars]"
    started = time.perf_counter()
    out = st.clean(BIG, 2000)
    assert time.perf_counter() - started < 2.0
    whole = st.clean(BIG)
    assert out == whole[:2000] + f"\u2026 [+{len(whole) - 2000} chars]"
    assert len(whole) == 90 * (1000 + len("  ok") + len("evil") + len(LINK))
    assert st.terminal(BIG, 50) == out[:50] + f"\u2026 [+{len(whole) - 50} chars]"


# ------------------------------------------------------------------------------------------- markdown
def parsers():
    """(name, render to tokens or html) for every Markdown parser in the venv."""
    found = [("markdown-it", MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]))]
    try:
        import linkify_it  # noqa: F401

        found.append(("markdown-it+linkify",
                      MarkdownIt("commonmark", {"html": True, "linkify": True}).enable(["table", "strikethrough", "linkify"])))
    except ImportError:
        pass
    return found


def walk(tokens):
    for token in tokens:
        yield token
        yield from walk(token.children or [])


INLINE_MARKUP = ("link_open", "image", "html_inline", "html_block", "fence", "code_block", "em_open", "strong_open",
                 "s_open")
BLOCK_MARKUP = ("heading_open", "blockquote_open", "bullet_list_open", "ordered_list_open", "hr", "table_open",
                "lheading_open")


def check_markdown_is_plain(doc: str, forbidden_tokens=INLINE_MARKUP):
    """doc parsed by every parser: no link, image, autolink, HTML or code other than the `@` code span."""
    for name, parser in parsers():
        for token in walk(parser.parse(doc)):
            assert token.type not in forbidden_tokens, (name, token.type, doc[:120])
            if token.type == "code_inline":
                assert token.content == "@", (name, doc[:120])
    try:
        import mistune
    except ImportError:
        return
    page = mistune.create_markdown(escape=False, plugins=["table", "strikethrough", "url"])(doc)
    tags = "a|img|script|em|strong|del|pre" + ("|h\\d|blockquote|ul|ol|hr|table" if "hr" in forbidden_tokens else "")
    assert not re.search(rf"<({tags})\b", page), page[:300]
    assert not re.search(r"<code>(?!@</code>)", page), page[:300]


def rendered_text(md: str) -> str:
    """What a reader sees: the markdown-it HTML with its tags removed and entities decoded."""
    page = MarkdownIt("commonmark").render(md)
    return html.unescape(re.sub(r"</?(p|code)>", "", page)).strip()


@pytest.mark.parametrize("text", [*AUTOLINKS, *MARKUP, ANSI, OSC8, BIDI, HYPERLINK, "__init__.py", "a.b-c_d"],
                         ids=lambda t: repr(t)[:40])
def test_markdown_renders_as_plain_text(text):
    out = st.markdown(text)
    assert "\n" not in out and not out.startswith(" ")
    check_markdown_is_plain(out, INLINE_MARKUP + BLOCK_MARKUP)          # alone: one plain paragraph
    check_markdown_is_plain(f"{out}\n{out}\n", INLINE_MARKUP + BLOCK_MARKUP)   # nor a setext heading or list
    for doc in (f"| a | b |\n| --- | --- |\n| {out} | z |\n", f"- {out}\n", f"## {out}\n"):
        check_markdown_is_plain(doc)
    table = MarkdownIt("commonmark").enable("table").parse(f"| a | b |\n| --- | --- |\n| {out} | z |\n")
    assert sum(t.type == "td_open" for t in table) == 2                        # no "|" broke the row
    assert rendered_text(out) == " ".join(st.clean(text).split())              # the reader sees the text itself
    # at the character level: apart from the `@` spans, every Markdown special character is escaped
    bare = re.sub(r"(?<=[^\W_])[_-](?=[^\W_])", "", re.sub(r"\\.", "", out.replace("`@`", "")))   # intraword _ and - may stay
    assert not [c for c in bare if c in st.MARKDOWN_SPECIAL or c == "@"], out
    assert "http://" not in out.lower() and "www." not in out.lower() and "@" not in out.replace("`@`", "")


# ------------------------------------------------------------------------------------------- csv
def read_back(cells) -> list[str]:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return next(csv.reader(io.StringIO(buffer.getvalue())))


def test_csv_cells_defuse_formulas_and_keep_numbers():
    cells = read_back([st.csv_cell(f) for f in FORMULAS])
    assert all(cell.startswith("'") for cell in cells), cells
    assert cells[:4] == ["'" + HYPERLINK, "'+1+1", "'-2+3", "'@SUM(1)"]
    assert cells[4] == "' =1" and cells[5] == "'  =1"                        # tab / CR made spaces, still defused
    assert read_back([st.csv_cell(v) for v in (-2, -2.5, 3, 0.1 + 0.2, 1e-300, None, "plain", "a=b", "x-1")]) == [
        "-2", "-2.5", "3", "0.30000000000000004", "1e-300", "", "plain", "a=b", "x-1"]
    assert st.csv_cell(True) == "True" and st.csv_cell("\x1b[2K=1") == "'=1" and st.csv_cell("\u202e=1") == "'=1"
    assert st.csv_cell("a\nb") == "a b"


# ------------------------------------------------------------------------------------------- plots
def test_plot_label_escapes_mathtext():
    assert st.plot_label("$x$ costs $5") == r"\$x\$ costs \$5"
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_xticks([0, 1], [st.plot_label(r"a$\foo{$b"), st.plot_label(r"$\frac{1}{0$")])
    ax.set_title(st.plot_label("$" + BIDI + "$"))
    fig.canvas.draw()                                     # an unescaped r"$\foo{$" raises a mathtext ValueError


# ------------------------------------------------------------------------------------------- the leaderboard
SECRET = "PAYLOAD-SECRET-42"
EVIL_STUDENT = f"{ANSI}{BIDI}{LINK}{IMAGE}{SCRIPT} user@evil.com www.evil.com"
EVIL_REASON = f"{SECRET} read /etc/shadow {ANSI} {OSC8} {LINK} {IMAGE} {SCRIPT}\n```\n[y](http://evil)\n```\n"
PAYLOADS = [ANSI, "\x1b", BIDI, "\u202e", LINK, IMAGE, SCRIPT, "http://evil", "www.evil.com", "user@evil.com"]


def rec(sid, student, status, reason=None, events=("latency_sprint",), detail=None, **extra):
    return {"id": sid, "student_id": student, "events": list(events), "techniques": [], "division": "closed",
            "status": status, "reason": reason, "detail": detail, "scores": {}, **extra}


def ent(sid, rank_, medal, score, eligible=True, reason=None):
    return {"id": sid, "rank": rank_, "medal": medal, "score": score, "low": score, "high": score,
            "eligible": eligible, "reason": reason, "leader": sid}


HOSTILE_RESULTS = {
    "schema": "tinytorch.olympics.results/1", "created": "2026-05-01T12:00:00+00:00\x1b[2K",
    "entry_policy": "latest",
    "superseded": {"latency_sprint": {"older": {"by": "champ", "student_id": "s1",
                                                "reason": "one entry per student per event counts: champ is the "
                                                          "student's latest"}}},
    "submissions": {
        "champ": rec("champ", EVIL_STUDENT, "ok"),
        "older": rec("older", EVIL_STUDENT, "ok"),
        r"m$\foo{$": rec(r"m$\foo{$", "=HYPERLINK(\"http://evil\",\"x\")", "ok"),
        "__init__": rec("__init__", "-2+3", "constraint not met"),
        "boom": rec("boom", EVIL_STUDENT, "crashed", EVIL_REASON, detail=EVIL_REASON * 30),
        "slow": rec("slow", "@SUM(1)", "timeout", f"{SECRET} no answer"),
        "bad": rec("bad", "s9", "invalid", f"{SECRET} manifest says {LINK}"),
        "fat": rec("fat", "s10", "out of memory", f"{SECRET} MemoryError"),
    },
    "rankings": {"latency_sprint": [ent("champ", 1, "gold", 2.0), ent(r"m$\foo{$", 2, "silver", 1.5),
                                    ent("__init__", None, None, 3.0, False, f"accuracy 0.5 < 0.85 {LINK}")]},
    "errors": [{"id": "boom", "error": f"{SECRET} grader bug {ANSI}"}],
}


def render_hostile(tmp_path, doc=HOSTILE_RESULTS):
    folder = tmp_path / "grading"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    lines = []
    assert lb.cmd_olympics_leaderboard(type("A", (), {"dir": str(folder)})(), None, lines.append) == 0
    return folder, "\n".join(lines)


def test_hostile_results_render_safely(tmp_path):
    folder, said = render_hostile(tmp_path)
    public = {name: (folder / name).read_text(encoding="utf-8")
              for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html")}
    public["terminal"] = said
    for name, text in public.items():
        assert "\x1b" not in text and not [c for c in forbidden(text) if c not in "\n"], name
        assert SECRET not in text and "/etc/shadow" not in text and "MemoryError" not in text, name   # no error text
    assert said.count(SECRET) == 0 and "PRIVATE" in said and "instructor_report.md" in said
    md = public["leaderboard.md"]
    for payload in PAYLOADS:
        assert payload not in md, payload
    check_markdown_is_plain(md.replace("`tito olympics leaderboard DIR`", "").split("![")[0])   # our own code span
    tokens = list(walk(MarkdownIt("commonmark", {"html": True}).enable("table").parse(md)))
    assert not [t for t in tokens if t.type in ("html_inline", "html_block")]
    links = [t for t in tokens if t.type in ("link_open", "image")]
    assert all((t.attrGet("src") or "").startswith("leaderboard_") for t in links if t.type == "image")
    assert not [t for t in links if t.type == "link_open"]                  # the plots are the only images
    assert "crashed\\: see the instructor\\'s grading report" in md
    assert "accuracy 0\\.5 \\< 0\\.85 \\[x\\]\\(http\\:" in md             # the scoring's reason, escaped
    assert "Entries: one entry per student per event counts\\: the latest submitted." in md
    superseded = md[md.index("## Superseded entries"):md.index("## Did not place")]
    assert "| latency_sprint | older |" in superseded and "| champ |" in superseded
    sprint = md[:md.index("## Superseded entries")]
    assert "| older |" not in sprint and "\\_\\_init\\_\\_" in sprint
    page = public["leaderboard.html"]
    assert "<script>" not in page and "&lt;script&gt;" in page and 'href=' not in page
    rows = list(csv.reader(io.StringIO(public["leaderboard.csv"])))
    assert rows[0] == list(lb.CSV_COLUMNS)
    for row in rows[1:]:
        for cell in row:
            assert cell.lstrip(" ")[:1] not in ("=", "+", "-", "@") or re.fullmatch(r"-?[0-9.e+-]+", cell), row
    by_id = {row[3]: row for row in rows[1:]}
    assert by_id[r"m$\foo{$"][4] == "'=HYPERLINK(\"http://evil\",\"x\")" and by_id["__init__"][4] == "'-2+3"
    assert by_id["slow"][4] == "'@SUM(1)" and by_id["slow"][9] == lb.HIDDEN
    assert by_id["older"][9].startswith("superseded by champ: ")
    assert (folder / "leaderboard_latency_sprint.png").read_bytes()[:4] == b"\x89PNG"   # mathtext id drew


def test_instructor_report_has_the_error_text_escaped(tmp_path):
    folder, _ = render_hostile(tmp_path)
    report = (folder / "instructor_report.md").read_text(encoding="utf-8")
    assert "PRIVATE: do not publish this file." in report
    in_detail = st.clean_block(EVIL_REASON * 30, lb.REPORT_LIMIT).count(SECRET)
    assert 5 < in_detail < 30
    assert report.count(SECRET) == 1 + in_detail + 1 + 1 + 1 + 1    # boom reason and detail, slow, bad, fat, error
    assert "\x1b" not in report and "\u202e" not in report
    tokens = list(walk(MarkdownIt("commonmark", {"html": True}).enable("table").parse(report)))
    assert not [t for t in tokens if t.type in ("link_open", "image", "html_inline", "html_block")]
    fences = [t for t in tokens if t.type == "fence"]
    boom = [t.content for t in fences if SECRET + " read /etc/shadow" in t.content]
    assert boom[0].startswith(SECRET + " read /etc/shadow \n ok click [x](http://evil) ![img]")   # literal, in its block
    assert "```\n[y](http://evil)\n```" in boom[0]                      # the text's own fence did not close ours
    assert len(boom[1]) <= lb.REPORT_LIMIT + 30 and "chars]" in boom[1]   # the detail, cut with a marker
    assert "- student: " in report and "\\[x\\]\\(http\\:" in report      # the student id escaped


def test_results_without_policy_and_bad_superseded(tmp_path):
    doc = copy.deepcopy(HOSTILE_RESULTS)
    del doc["entry_policy"], doc["superseded"]
    results = json.loads(json.dumps(doc))
    assert "Entries: all entries count (results.json predates the policy)" in lb.format_leaderboard(results)
    assert describe_policy("best") == POLICY_TEXT["best"] and "unknown" in describe_policy("\x1b[2Kodd")
    doc["superseded"] = {"latency_sprint": {"ghost": {"by": "nobody"}}}
    doc["entry_policy"] = 3
    assert lb.check_results(json.loads(json.dumps(doc))) == [
        "entry_policy must be text (latest, best or all) or absent, got int",
        "superseded['latency_sprint']['ghost']: 'ghost' is not among the submissions",
        "superseded['latency_sprint']['ghost'] must be an object whose 'by' is a submission id, got {'by': 'nobody'}"]


# ------------------------------------------------------------------------------------------- entries
def score(value, eligible=True, higher=True, tiebreak=None):
    return {"score": value, "low": value - 0.01, "high": value + 0.01, "tiebreak": tiebreak, "eligible": eligible,
            "reason": None if eligible else "accuracy below the floor", "higher_is_better": higher}


def ten_entries():
    """Student s1 handed in ten folders (s1_00 .. s1_09, submitted an hour apart, s1_09 last); the last one
    entered only latency_sprint; s2 handed in one."""
    records = {}
    for i in range(10):
        events = ["latency_sprint"] if i == 9 else ["latency_sprint", "memory_challenge"]
        records[f"s1_{i:02d}"] = {
            "id": f"s1_{i:02d}", "student_id": "s1", "status": "ok", "events": events,
            "submitted_at": f"2026-05-01T{10 + i:02d}:00:00+00:00", "graded_at": "2026-05-02T00:00:00+00:00",
            "scores": {e: score(1.0 + (i * 7 % 10) / 10, higher=e != "memory_challenge") for e in events}}
    records["s2_only"] = {"id": "s2_only", "student_id": "s2", "status": "ok", "events": ["latency_sprint"],
                          "submitted_at": "2026-05-01T09:00:00+00:00", "scores": {"latency_sprint": score(1.2)}}
    return records


def shuffled(records, seed):
    keys = list(records)
    random.Random(seed).shuffle(keys)
    return {k: records[k] for k in keys}


def test_latest_entry_counts_once_per_event():
    records = ten_entries()
    counted, superseded = counted_entries(records, "latency_sprint")
    assert counted == ["s1_09", "s2_only"]
    assert sorted(superseded) == [f"s1_{i:02d}" for i in range(9)]
    assert {why["by"] for why in superseded.values()} == {"s1_09"}
    assert superseded["s1_00"] == {"by": "s1_09", "student_id": "s1", "reason": (
        "one entry per student per event counts: s1_09 (submitted 2026-05-01T19:00:00+00:00) is the student's latest")}
    counted, superseded = counted_entries(records, "memory_challenge")   # s1_09 did not enter it: s1_08 counts
    assert counted == ["s1_08"] and len(superseded) == 8
    for seed in range(5):                                               # the records' order does not matter
        assert counted_entries(shuffled(records, seed), "latency_sprint") == counted_entries(records, "latency_sprint")
    both = select_entries(records)
    assert both[0] == {"latency_sprint": ["s1_09", "s2_only"], "memory_challenge": ["s1_08"]}
    assert set(both[1]["memory_challenge"]) == {f"s1_{i:02d}" for i in range(8)}


def test_one_medal_per_student_when_ranked():
    records = ten_entries()
    counted, _ = counted_entries(records, "latency_sprint")
    entries = [{"id": k, **{f: records[k]["scores"]["latency_sprint"][f] for f in ("score", "low", "high", "eligible",
                                                                                     "reason")}} for k in counted]
    board = medals(rank(entries, "latency_sprint"))
    students = [records[e["id"]]["student_id"] for e in board if e["medal"]]
    assert len(students) == len(set(students)) == 2


def test_best_policy_and_ties():
    records = ten_entries()
    counted, superseded = counted_entries(records, "latency_sprint", "best")
    assert counted == ["s1_07", "s2_only"]                          # i * 7 % 10 == 9 at i == 7: score 1.9
    assert superseded["s1_00"]["reason"] == "one entry per student per event counts: s1_07 (score 1.9) is the student's best"
    counted, _ = counted_entries(records, "memory_challenge", "best")   # lower is better there: score 1.0 at i == 0
    assert counted == ["s1_00"]
    records["s1_05"]["scores"]["latency_sprint"] = score(5.0, eligible=False)   # ineligible never beats eligible
    assert counted_entries(records, "latency_sprint", "best")[0] == ["s1_07", "s2_only"]
    # a tie on everything: the larger id wins, whatever the order
    tied = {k: dict(v, submitted_at="2026-05-01T10:00:00Z") for k, v in ten_entries().items()}
    for seed in range(3):
        assert counted_entries(shuffled(tied, seed), "latency_sprint")[0] == ["s1_09", "s2_only"]
    for record in tied.values():
        record["scores"] = {e: score(1.5) for e in record["scores"]}
    assert counted_entries(tied, "memory_challenge", "best")[0] == ["s1_08"]


def test_times_students_and_statuses():
    records = ten_entries()
    for record in records.values():                                  # no submitted_at: graded_at decides
        record.pop("submitted_at")
        record["graded_at"] = "2026-05-02T00:00:00+00:00"
    records["s1_02"]["graded_at"] = "2026-05-03T00:00:00+00:00"
    assert counted_entries(records, "latency_sprint")[0] == ["s1_02", "s2_only"]
    assert "(graded 2026-05-03T00:00:00+00:00)" in counted_entries(records, "latency_sprint")[1]["s1_00"]["reason"]
    records = ten_entries()
    records["s1_09"]["status"] = "crashed"                          # a failed entry is no candidate
    records["s1_08"]["student_id"] = None                           # no student: counts on its own
    records["s1_07"]["student_id"] = " S1\u200b "                    # the same student, disguised
    counted, superseded = counted_entries(records, "latency_sprint")
    assert counted == ["s1_07", "s1_08", "s2_only"] and "s1_09" not in superseded and "s1_08" not in superseded
    assert student_key(" S1\u200b ") == student_key("s1") == "s1" and student_key("  ") is None
    assert counted_entries(records, "latency_sprint", "all") == (
        sorted(k for k in records if k != "s1_09"), {})
    with pytest.raises(ValueError, match="policy must be one of latest, best, all"):
        counted_entries(records, "latency_sprint", "newest")
