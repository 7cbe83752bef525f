"""Report building blocks: Pareto fronts against brute force, plots, atomic writers, tables, run folders."""
import json
import os
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.benchmarking import reporting
from tinytorch.benchmarking.reporting import (atomic_write_bytes, atomic_write_json, atomic_write_text, html_page,
                                              intervals_figure, markdown_table, new_run_dir, pareto_figure,
                                              pareto_front, plot_intervals, plot_pareto, to_jsonable)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def brute_force_front(x, y, minimize):
    """Pareto-optimal flags by the definition, one pair at a time."""
    better = lambda u, v, lower: u < v if lower else u > v
    at_least = lambda u, v, lower: u <= v if lower else u >= v
    flags = []
    for i in range(len(x)):
        dominated = any(
            at_least(x[j], x[i], minimize[0]) and at_least(y[j], y[i], minimize[1])
            and (better(x[j], x[i], minimize[0]) or better(y[j], y[i], minimize[1]))
            for j in range(len(x)) if j != i)
        flags.append(not dominated)
    return flags


def only_file(folder):
    """The one entry in folder (no temporary files left behind)."""
    entries = list(Path(folder).iterdir())
    assert len(entries) == 1, entries
    return entries[0]


# ------------------------------------------------------------------ Pareto front


def test_pareto_front_hand_cases():
    # latency (lower better) vs accuracy (higher better): (3 ms, 0.6) is beaten by (2 ms, 0.7)
    assert pareto_front([1, 2, 3, 4], [0.5, 0.7, 0.6, 0.9]).tolist() == [True, True, False, True]
    assert pareto_front([1, 1, 2], [0.5, 0.5, 0.4]).tolist() == [True, True, False]      # duplicates kept
    assert pareto_front([1, 1], [0.5, 0.6]).tolist() == [False, True]                    # tie in x only
    assert pareto_front([1, 2], [5, 3], minimize=(True, True)).tolist() == [True, True]
    assert pareto_front([1, 2], [5, 3], minimize=(False, False)).tolist() == [True, True]
    assert pareto_front([1, 2], [5, 6], minimize=(False, False)).tolist() == [False, True]
    assert pareto_front([], []).tolist() == []


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=25),
       st.tuples(st.booleans(), st.booleans()))
def test_pareto_front_matches_brute_force(points, minimize):
    x, y = [p[0] for p in points], [p[1] for p in points]       # small integers: many ties and duplicates
    front = pareto_front(x, y, minimize)
    assert front.tolist() == brute_force_front(x, y, minimize)
    if points:
        assert front.any()


@pytest.mark.parametrize("x, y, minimize, words", [
    ([1, 2], [1], (True, False), "y has 1 values but there are 2 points"),
    ([1, np.nan], [1, 2], (True, False), r"x must be finite, got NaN/inf at positions \[1\]"),
    ([1, 2], [1, 2], (True,), "minimize must be"),
    ([1, 2], [1, 2], "yes", "minimize must be"),
    (["a"], [1], (True, False), "x must be numbers"),
])
def test_pareto_front_rejects_bad_input(x, y, minimize, words):
    with pytest.raises(ValueError, match=words):
        pareto_front(x, y, minimize)


# ------------------------------------------------------------------ plots


NAMES = ["base", "int8", "pruned", "<script>x</script>"]
LATENCY = [4.0, 1.5, 3.0, 2.0]
ACCURACY = [0.97, 0.93, 0.90, 0.95]   # pruned (3 ms, 0.90) is dominated by int8 and the 4th model


def test_pareto_figure_draws_the_frontier():
    fig = pareto_figure(NAMES, LATENCY, ACCURACY, "latency (ms)", "accuracy")
    ax = fig.axes[0]
    frontier = ax.get_lines()[0]
    assert frontier.get_xdata().tolist() == [1.5, 2.0, 4.0]          # optimal points in x order
    assert frontier.get_ydata().tolist() == [0.93, 0.95, 0.97]
    assert frontier.get_drawstyle() == "steps-post"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Pareto frontier", "Pareto-optimal", "dominated"]
    hollow = ax.collections[1]
    assert hollow.get_offsets().tolist() == [[3.0, 0.90]] and hollow.get_facecolors().size == 0
    assert sorted(t.get_text() for t in ax.texts) == sorted(NAMES)
    assert "lower is better" in ax.get_xlabel() and "higher is better" in ax.get_ylabel()


def test_plot_pareto_writes_png_and_refuses_overwrite(tmp_path):
    path = tmp_path / "pareto.png"
    out = plot_pareto(NAMES, LATENCY, ACCURACY, "latency (ms)", "accuracy", path,
                      x_err=([3.5, 1.4, 2.5, 1.9], [4.5, 1.7, 3.4, 2.2]), y_err=(np.subtract(ACCURACY, 0.01),
                                                                              np.add(ACCURACY, 0.01)))
    assert out == path and only_file(tmp_path) == path
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    with pytest.raises(FileExistsError, match=f"{path} already exists; pass overwrite=True"):
        plot_pareto(NAMES, LATENCY, ACCURACY, "latency", "accuracy", path)
    assert path.read_bytes() == data
    plot_pareto(NAMES, LATENCY, ACCURACY, "latency", "accuracy", path, title="again", overwrite=True)
    assert path.read_bytes() != data and only_file(tmp_path) == path


def test_plot_pareto_rejects_intervals_that_miss_their_point(tmp_path):
    with pytest.raises(ValueError, match=r"point 1 value 1.5 lies outside its interval \[0.1, 0.2\]"):
        plot_pareto(NAMES, LATENCY, ACCURACY, "latency", "accuracy", tmp_path / "p.png",
                    x_err=([3.5, 0.1, 2.5, 1.9], [4.5, 0.2, 3.4, 2.2]))
    with pytest.raises(ValueError, match="got 3 names for 4 points"):
        plot_pareto(NAMES[:3], LATENCY, ACCURACY, "latency", "accuracy", tmp_path / "p.png")
    assert list(tmp_path.iterdir()) == []


def test_plot_intervals(tmp_path):
    fig = intervals_figure(["a", "b"], [1.0, 2.0], [0.5, 1.5], [1.5, 3.0], "ms", "latency")
    bars = fig.axes[0].collections[0].get_segments()
    assert [segment[:, 1].tolist() for segment in bars] == [[0.5, 1.5], [1.5, 3.0]]
    path = plot_intervals(["a", "b"], [1.0, 2.0], [0.5, 1.5], [1.5, 3.0], "ms", "latency", tmp_path / "i.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        plot_intervals(["a", "b"], [1.0, 2.0], [0.5, 1.5], [1.5, 3.0], "ms", "latency", path)
    with pytest.raises(ValueError, match="outside its interval"):
        plot_intervals(["a"], [1.0], [1.1], [1.5], "ms", "latency", tmp_path / "j.png")


# ------------------------------------------------------------------ atomic writers and JSON


def test_atomic_text_and_bytes(tmp_path):
    path = atomic_write_text(tmp_path / "sub" / "a.md", "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n" and only_file(tmp_path / "sub") == path
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        atomic_write_text(path, "other")
    atomic_write_bytes(path, b"\x00\x01", overwrite=True)
    assert path.read_bytes() == b"\x00\x01"
    with pytest.raises(TypeError, match="data must be bytes"):
        atomic_write_bytes(tmp_path / "b", "text")


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = atomic_write_text(tmp_path / "a.txt", "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new", overwrite=True)
    assert path.read_text() == "old" and only_file(tmp_path) == path


def test_json_round_trip_with_numpy(tmp_path):
    obj = {"b": np.float32(0.5), "a": (np.int64(3), np.arange(3)), "path": Path("x/y"),
           "nested": [{"ok": np.bool_(True), "none": None}], "matrix": np.eye(2)}
    path = atomic_write_json(tmp_path / "r.json", obj)
    text = path.read_text()
    expected = {"b": 0.5, "a": [3, [0, 1, 2]], "path": "x/y", "nested": [{"ok": True, "none": None}],
                "matrix": [[1.0, 0.0], [0.0, 1.0]]}
    assert json.loads(text) == expected
    assert text == json.dumps(expected, indent=2, sort_keys=True) + "\n"
    assert to_jsonable(obj) == expected
    with pytest.raises(FileExistsError):
        atomic_write_json(path, {})


@pytest.mark.parametrize("obj, where", [
    ({"results": [{"latency": 1.0}, {"latency": float("nan")}]}, r"obj\['results'\]\[1\]\['latency'\]"),
    ({"x": np.array([1.0, np.inf])}, r"obj\['x'\]\[1\]"),
    ([np.float64("-inf")], r"obj\[0\]"),
])
def test_json_rejects_nan_and_inf_with_the_key_path(tmp_path, obj, where):
    with pytest.raises(ValueError, match=where + " is not a finite number"):
        atomic_write_json(tmp_path / "r.json", obj)
    assert list(tmp_path.iterdir()) == []


def test_json_rejects_what_it_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['a'\] has a non-str key 1"):
        atomic_write_json(tmp_path / "r.json", {"a": {1: 2}})
    with pytest.raises(TypeError, match=r"obj\['df'\] is a DataFrame"):
        atomic_write_json(tmp_path / "r.json", {"df": pd.DataFrame({"a": [1]})})


# ------------------------------------------------------------------ Markdown and HTML


def test_markdown_table_exact():
    rows = [{"model": "a|b", "latency_ms": 1.234567, "n": 3},
            {"model": "two\nlines", "latency_ms": np.nan, "extra": "x"}]
    assert markdown_table(rows) == (
        "| model | latency_ms | n | extra |\n"
        "| --- | ---: | ---: | --- |\n"
        "| a\\|b | 1.235 | 3 |  |\n"
        "| two lines | nan |  | x |\n")


def test_markdown_table_from_a_dataframe():
    df = pd.DataFrame({"name": ["x", "y"], "acc": [0.91234, 0.5], "big": [1234567, 2]})
    assert markdown_table(df, columns=["name", "big", "acc"], floatfmt="{:.2f}") == (
        "| name | big | acc |\n| --- | ---: | ---: |\n| x | 1234567 | 0.91 |\n| y | 2 | 0.50 |\n")
    with pytest.raises(ValueError, match=r"columns \['nope'\] are not in the table"):
        markdown_table(df, columns=["nope"])
    with pytest.raises(TypeError, match="DataFrame or a list of dicts"):
        markdown_table([[1, 2]])


class _Collector(HTMLParser):
    """Tags and the text inside each, to check the page's structure."""

    def __init__(self):
        super().__init__()
        self.tags, self.text, self.attrs = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


def test_html_page_escapes_every_text():
    evil = "<script>alert(1)</script>"
    df = pd.DataFrame({"model": [evil, "ok"], "latency_ms": [1.5, 2.0]})
    page = html_page(f"Report {evil}", [("h2", evil), ("p", "a & b"), ("table", df),
                                        ("img", "plots/pareto.png", f'alt "{evil}"'), ("pre", evil), ("ul", [evil, 3])])
    assert "<script>" not in page and page.count("&lt;script&gt;") == 7
    parsed = _Collector()
    parsed.feed(page)
    assert "script" not in parsed.tags and {"h1", "h2", "p", "table", "img", "pre", "ul", "style"} <= set(parsed.tags)
    assert ("src", "plots/pareto.png") in parsed.attrs and ("alt", f'alt "{evil}"') in parsed.attrs
    assert evil in parsed.text and "a & b" in parsed.text
    assert "http" not in page and '<td class="num">1.5</td>' in page


@pytest.mark.parametrize("block, words", [
    (("video", "x"), "unknown block"), (("p",), "unknown block"),
    (("img", "/etc/passwd", "x"), "must be relative"), (("img", "https://x.org/a.png", "x"), "must be relative")])
def test_html_page_rejects_bad_blocks(block, words):
    with pytest.raises(ValueError, match=words):
        html_page("t", [block])


# ------------------------------------------------------------------ run folders


def test_new_run_dir_never_reuses_a_folder(tmp_path):
    clock = lambda: datetime(2024, 1, 2, 3, 4, 5)
    first = new_run_dir(tmp_path / "results", clock=clock)
    second = new_run_dir(tmp_path / "results", clock=clock)
    (tmp_path / "results" / "run-20240102-030405-3").write_text("a file takes the name too")
    third = new_run_dir(tmp_path / "results", clock=clock)
    assert [first.name, second.name, third.name] == ["run-20240102-030405", "run-20240102-030405-2",
                                                     "run-20240102-030405-4"]
    assert all(p.is_dir() for p in (first, second, third))
    assert new_run_dir(tmp_path, stem="olympics", clock=clock).name == "olympics-20240102-030405"
    assert new_run_dir(tmp_path).name.startswith("run-")


@pytest.mark.parametrize("stem, clock, error", [
    ("../x", None, ValueError), ("", None, ValueError), ("run", lambda: "2024", TypeError)])
def test_new_run_dir_rejects_bad_input(tmp_path, stem, clock, error):
    with pytest.raises(error):
        new_run_dir(tmp_path, stem=stem, clock=clock)


def test_module_uses_no_pyplot():
    source = Path(reporting.__file__).read_text()      # pyplot keeps global state and may open windows
    assert "matplotlib.pyplot" not in source and "import pyplot" not in source
