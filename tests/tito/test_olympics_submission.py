"""Olympics submissions: validation (every bad case, all problems at once), content hashes against a
hand-computed digest, deterministic packing, safe unpacking, the CLI handler and the bundled examples."""
import ast
import hashlib
import importlib.util
import json
import os
import stat
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tinytorch.tito.olympics import submission as sub
from tinytorch.tito.olympics.submission import (SubmissionError, content_sha256, pack, unpack, validate)
from tinytorch.tito.tree import TitoError, UsageError

EXAMPLES = Path(sub.__file__).resolve().parents[2] / "assets" / "olympics" / "examples"
GOOD_META = {"student_id": "s123", "events": ["latency_sprint", "memory_challenge"],
             "techniques": ["int8 quantization"], "division": "closed"}
GOOD_SOURCE = "from tinytorch.models.zoo import load_model\n\n\ndef build_model():\n    return load_model('digits_cnn')\n"


def make(folder: Path, meta=GOOD_META, source=GOOD_SOURCE, extra=None) -> Path:
    """A submission folder: meta (dict -> JSON, str -> written as is, None -> no file), source likewise."""
    folder.mkdir(parents=True)
    if meta is not None:
        (folder / "submission.json").write_text(meta if isinstance(meta, str) else json.dumps(meta), encoding="utf-8")
    if source is not None:
        (folder / "submission.py").write_text(source, encoding="utf-8")
    for rel, data in (extra or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def problems_of(folder) -> list[str]:
    with pytest.raises(SubmissionError) as info:
        validate(folder)
    return info.value.problems


def only_problem(folder) -> str:
    problems = problems_of(folder)
    assert len(problems) == 1, problems
    return problems[0]


# ------------------------------------------------------------------------------------------- validate
def test_valid_folder_gives_exact_record(tmp_path):
    folder = make(tmp_path / "alice_int8", dict(GOOD_META, name="Alice's INT8", events=["LATENCY_SPRINT"]),
                  extra={"weights/w.npz": b"1234", "__pycache__/submission.cpython-313.pyc": b"x", "old.pyc": b"y"})
    assert validate(folder) == {
        "id": "alice_int8", "student_id": "s123", "events": ["latency_sprint"], "techniques": ["int8 quantization"],
        "division": "closed", "name": "Alice's INT8", "folder": folder.resolve(),
        "files": ["submission.json", "submission.py", "weights/w.npz"],   # bytecode caches skipped
        "data_bytes": (folder / "weights" / "w.npz").stat().st_size, "embedded_bytes": 0}


def test_missing_folder_and_files(tmp_path):
    assert "does not exist" in only_problem(tmp_path / "nope")
    (tmp_path / "plain.txt").write_text("x")
    assert "is not a folder" in only_problem(tmp_path / "plain.txt")
    problems = problems_of(make(tmp_path / "empty", meta=None, source=None))
    assert len(problems) == 2
    assert problems[0].startswith("submission.json is missing: create it, e.g. {")
    assert problems[1].startswith("submission.py is missing: create it with `def build_model():`")
    folder = make(tmp_path / "dirs", meta=None, source=None)
    (folder / "submission.json").mkdir()
    assert "submission.json is a folder; it must be a file" in problems_of(folder)[0]


def test_json_syntax_error_names_line_and_column(tmp_path):
    text = '{\n  "student_id": "s1",\n  "events": ["latency_sprint"]\n  "division": "open"\n}\n'
    problem = only_problem(make(tmp_path / "s", meta=text))
    # json stops at line 4, column 3: the missing comma after line 3
    assert problem.startswith("submission.json is not valid JSON: Expecting ',' delimiter at line 4, column 3")
    assert "'\"division\": \"open\"'" in problem


def test_json_shape_problems_all_reported(tmp_path):
    meta = {"student_id": "  ", "event": ["latency_sprint"], "techniques": "pruning", "division": "Closed", "name": 7}
    problems = problems_of(make(tmp_path / "s", meta=meta))
    assert problems == [
        'unknown key "event" in submission.json (valid keys: student_id, events, techniques, division, name); '
        'did you mean "events"?',
        "submission.json is missing events; e.g. " + sub.EXAMPLE_JSON,
        '"student_id" must not be empty: write your student id',
        '"techniques" must be a list of strings, e.g. ["int8 quantization", "magnitude pruning"] (or [] for none), '
        "got 'pruning'",
        '"division" must be "closed" or "open" (lower case), got \'Closed\'',
        '"name" must be a string (a display name for the leaderboard, or leave the key out), got int 7']


def test_events_checked_one_by_one(tmp_path):
    meta = dict(GOOD_META, events=["latency_sprint", "sprint", "latency_sprint", 3])
    problems = problems_of(make(tmp_path / "s", meta=meta))
    assert len(problems) == 3
    assert problems[0].startswith("\"events\"[1]: unknown Olympic event 'sprint'") or \
        problems[0].startswith("\"events\"[1]: unknown event 'sprint'")
    assert "latency_sprint, memory_challenge, accuracy_contest, all_around, extreme_push" in problems[0]
    assert problems[1] == '"events"[2]: latency_sprint is listed twice; list each event once'
    assert problems[2].startswith('"events"[3]: unknown')
    assert "non-empty list" in only_problem(make(tmp_path / "e", meta=dict(GOOD_META, events=[])))


def test_other_json_problems(tmp_path):
    assert only_problem(make(tmp_path / "a", meta="[1, 2]")).startswith("submission.json must hold one JSON object")
    dup = '{"student_id": "a", "student_id": "b", "events": ["all_around"], "techniques": [], "division": "open"}'
    assert "'student_id' appears more than once" in only_problem(make(tmp_path / "b", meta=dup))
    folder = make(tmp_path / "c", meta=None)
    (folder / "submission.json").write_bytes(b'{"student_id": "caf\xe9"}')
    assert only_problem(folder) == "submission.json is not UTF-8 text (bad byte at offset 19): save it as UTF-8"
    techniques = dict(GOOD_META, techniques=["ok", "", "two\nlines", "x" * 201])
    problems = problems_of(make(tmp_path / "d", meta=techniques))
    assert problems == ['"techniques"[1] must not be empty: write the technique, e.g. "int8 quantization"',
                        '"techniques"[2] contains a line break or control character: keep it on one line',
                        '"techniques"[3] has 201 characters; the limit is 200: shorten it']
    bom = make(tmp_path / "e", meta=None)
    (bom / "submission.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD_META).encode())
    assert validate(bom)["student_id"] == "s123"                # a Windows editor's BOM is fine


@pytest.mark.parametrize("source, expected", [
    ("def build_model(:\n    pass\n", "submission.py has a syntax error at line 1, column 17: "),
    ("import numpy as np\n\ndef make():\n    return 1\n",
     "submission.py does not define build_model() at top level: add `def build_model():` that returns your model"),
    ("if True:\n    def build_model():\n        return 1\n",
     "submission.py does not define build_model() at top level; the def at line 2 is nested inside another block"),
    ("async def build_model():\n    return 1\n", "build_model at line 1 is `async def`; make it a plain `def`"),
    ("def build_model(path, *, seed):\n    return 1\n", "build_model at line 1 requires argument(s) path, seed"),
])
def test_source_problems(tmp_path, source, expected):
    assert only_problem(make(tmp_path / "s", source=source)).startswith(expected)


@pytest.mark.parametrize("source", [
    "def build_model(seed=0, *, scale=1.0):\n    return seed\n",
    "from tinytorch.models.zoo import load_model as build_model\n",
    "import functools\nbuild_model = functools.partial(print)\n",
])
def test_build_model_bound_at_top_level_is_accepted(tmp_path, source):
    assert validate(make(tmp_path / "s", source=source))["id"] == "s"


def test_folder_name_is_the_id(tmp_path):
    assert "the folder name 'my submission' is the submission id" in only_problem(make(tmp_path / "my submission"))
    assert "-x" in only_problem(make(tmp_path / "-x"))


def test_size_and_count_limits(tmp_path, monkeypatch):
    folder = make(tmp_path / "s", extra={"big.npz": b"\0" * 5000, "a.txt": b"1", "b.txt": b"2"})
    monkeypatch.setattr(sub, "MAX_TOTAL_BYTES", 4096)
    monkeypatch.setattr(sub, "MAX_FILES", 4)
    problems = problems_of(folder)
    size = 5000 + 2 + len(json.dumps(GOOD_META)) + len(GOOD_SOURCE)
    assert problems == [
        "the folder holds 5 files; the limit is 4: remove files build_model() does not need (or combine weights "
        "into one .npz)",
        f"the folder holds {size} bytes (0.0 MiB); the limit is 4096 bytes (20 MiB): remove unused files; the "
        f"largest are big.npz (0.0 MiB), submission.json (0.0 MiB), submission.py (0.0 MiB)"]


def test_links_and_special_files(tmp_path):
    (tmp_path / "secret.txt").write_text("outside")
    folder = make(tmp_path / "s", extra={"inside.npz": b"w"})
    (folder / "escape").symlink_to(tmp_path / "secret.txt")
    (folder / "alias.npz").symlink_to("inside.npz")
    os.mkfifo(folder / "pipe")
    problems = problems_of(folder)
    assert problems == [
        f"alias.npz is a symbolic link (to inside.npz); archives hold regular files only: replace it with a copy of the file",
        f"escape is a symbolic link to {tmp_path / 'secret.txt'}, which is outside the submission folder; copy the "
        f"file into the folder instead (the grader sees only the folder)",
        "pipe is not a regular file (a pipe, socket or device); remove it"]
    linked = make(tmp_path / "l", meta=None)
    (linked / "submission.json").symlink_to(tmp_path / "secret.txt")
    assert "submission.json is a symbolic link to" in only_problem(linked)   # reported once, as a link


def test_every_problem_at_once(tmp_path):
    folder = make(tmp_path / "bad name", meta='{"student_id": 5,}', source="def build_model(:\n")
    problems = problems_of(folder)
    assert len(problems) == 3 and "folder name" in problems[0] and "not valid JSON" in problems[1] \
        and "syntax error at line 1" in problems[2]
    message = str(SubmissionError(folder, problems))
    assert message.startswith(f"{folder}: 3 problems:\n  - ") and "SubmissionError(where=" in repr(SubmissionError(folder, problems))


# ------------------------------------------------------------------------------------------- content hash
def test_content_sha256_matches_hand_computation(tmp_path):
    folder = make(tmp_path / "s", extra={"w/a.npz": b"\x00\x01", "__pycache__/x.pyc": b"cache"})
    digest = hashlib.sha256()
    for rel, data in [("submission.json", json.dumps(GOOD_META).encode()), ("submission.py", GOOD_SOURCE.encode()),
                      ("w/a.npz", b"\x00\x01")]:
        for part in (rel.encode(), data):
            digest.update(len(part).to_bytes(8, "big") + part)
    assert content_sha256(folder) == digest.hexdigest()
    before = content_sha256(folder)
    (folder / "w" / "a.npz").write_bytes(b"\x00\x02")
    assert content_sha256(folder) != before
    (folder / "w" / "a.npz").write_bytes(b"\x00\x01")
    os.utime(folder / "submission.py", (1, 1))            # timestamps do not count, contents do
    assert content_sha256(folder) == before
    (folder / "link").symlink_to("/etc/passwd")
    assert content_sha256(folder) != before              # links count (by target), never followed


# ------------------------------------------------------------------------------------------- pack
def test_pack_is_deterministic_and_refuses_overwrite(tmp_path):
    folder = make(tmp_path / "subs" / "alice", extra={"weights/w.npz": bytes(range(256)) * 10})
    first = pack(folder, tmp_path / "one.zip", event="memory_challenge")
    os.utime(folder / "submission.py", (10**9, 10**9))    # a different mtime must not change the bytes
    second = pack(folder, tmp_path / "two.zip")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["alice/submission.json", "alice/submission.py", "alice/weights/w.npz"]
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {stat.S_IMODE(i.external_attr >> 16) for i in infos} == {0o644}
        assert archive.read("alice/weights/w.npz") == bytes(range(256)) * 10
    default = pack(folder)
    assert default == tmp_path / "subs" / "alice.zip" and default.read_bytes() == first.read_bytes()
    with pytest.raises(FileExistsError, match=str(default)):
        pack(folder)
    assert default.read_bytes() == first.read_bytes()


def test_pack_checks_event_and_validity_before_writing(tmp_path):
    folder = make(tmp_path / "alice")
    with pytest.raises(SubmissionError, match="the event extreme_push is not among the events submission.json "
                                              r"enters \(latency_sprint, memory_challenge\)"):
        pack(folder, tmp_path / "a.zip", event="extreme_push")
    with pytest.raises(SubmissionError, match="--event: unknown"):
        pack(folder, tmp_path / "a.zip", event="marathon")
    with pytest.raises(SubmissionError, match="inside the submission folder"):
        pack(folder, folder / "me.zip")
    bad = make(tmp_path / "bob", meta=dict(GOOD_META, division="x"))
    with pytest.raises(SubmissionError, match='"division"'):
        pack(bad, tmp_path / "b.zip")
    assert not (tmp_path / "a.zip").exists() and not (tmp_path / "b.zip").exists() and not (folder / "me.zip").exists()


# ------------------------------------------------------------------------------------------- unpack
def test_unpack_round_trip(tmp_path):
    folder = make(tmp_path / "subs" / "alice", extra={"weights/w.npz": b"abc"})
    archive = pack(folder, tmp_path / "alice.zip")
    out = unpack(archive, tmp_path / "graded")
    assert out == tmp_path / "graded" / "alice"
    assert content_sha256(out) == content_sha256(folder) and validate(out)["files"] == validate(folder)["files"]
    assert [p.name for p in (tmp_path / "graded").iterdir()] == ["alice"]          # no staging folder left
    with pytest.raises(FileExistsError, match=str(out)):
        unpack(archive, tmp_path / "graded")


def evil_zip(path: Path, members) -> Path:
    """A zip with the given (name, bytes, mode or None) members, written without any safety."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.create_system, info.external_attr = 3, mode << 16
            archive.writestr(info, data)
    return path


@pytest.mark.parametrize("members, expected", [
    ([("alice/submission.py", b"x", None), ("alice/../../evil", b"x", None)],
     "'alice/../../evil' contains '..', which would write outside the destination"),
    ([("../evil", b"x", None)], "'../evil' contains '..', which would write outside the destination"),
    ([("/etc/evil", b"x", None)], "'/etc/evil' is an absolute path; archive members must be relative"),
    ([("alice/link", b"/etc/passwd", stat.S_IFLNK | 0o777)], "'alice/link' is a symbolic link"),
    ([("alice/fifo", b"", stat.S_IFIFO | 0o644)], "'alice/fifo' is not a regular file or folder"),
    ([("submission.py", b"x", None)], "the files must sit in one folder named after the submission id"),
    ([("alice/a", b"x", None), ("bob/b", b"x", None)], "the files must sit in one folder"),
    ([("alice\\x.py", b"x", None)], "backslash"),
])
def test_unpack_refuses_unsafe_members(tmp_path, members, expected):
    archive = evil_zip(tmp_path / "evil.zip", members)
    dest = tmp_path / "dest"
    with pytest.raises(SubmissionError) as info:
        unpack(archive, dest)
    assert any(expected in p for p in info.value.problems), info.value.problems
    assert not dest.exists() and not (tmp_path / "evil").exists()                   # nothing written


def test_unpack_limits_and_damage(tmp_path):
    archive = evil_zip(tmp_path / "big.zip", [("alice/a", b"x" * 100, None), ("alice/b", b"y", None)])
    with pytest.raises(SubmissionError, match="101 bytes uncompressed; the limit is 50"):
        unpack(archive, tmp_path / "d1", max_bytes=50)
    with pytest.raises(SubmissionError, match="2 files; the limit is 1"):
        unpack(archive, tmp_path / "d2", max_files=1)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(SubmissionError, match="is not a zip archive"):
        unpack(tmp_path / "junk.zip", tmp_path / "d3")
    with pytest.raises(FileNotFoundError, match="is not a file"):
        unpack(tmp_path / "missing.zip", tmp_path / "d4")
    good = evil_zip(tmp_path / "crc.zip", [("alice/a", b"hello world" * 10, None)])
    data = bytearray(good.read_bytes())
    data[data.index(b"hello world") + 3] ^= 0xFF                                     # corrupt the stored bytes
    good.write_bytes(bytes(data))
    with pytest.raises(SubmissionError, match="is damaged and cannot be extracted"):
        unpack(good, tmp_path / "d5")
    assert list((tmp_path / "d5").iterdir()) == []                                    # staging folder removed


# ------------------------------------------------------------------------------------------- CLI handler
def run_submit(folder, event=None, out=None):
    lines = []
    code = sub.cmd_olympics_submit(SimpleNamespace(folder=str(folder), event=event, out=out and str(out)), None, lines.append)
    return code, lines


def test_cmd_submit_prints_what_was_validated(tmp_path):
    folder = make(tmp_path / "alice", extra={"w.npz": b"12"})
    code, lines = run_submit(folder, "latency_sprint", tmp_path / "out.zip")
    size = len(json.dumps(GOOD_META)) + len(GOOD_SOURCE) + 2
    digest = hashlib.sha256((tmp_path / "out.zip").read_bytes()).hexdigest()
    assert code == 0 and lines[:4] == [
        f"validated {folder}: submission alice by s123, closed division",
        "  events: latency_sprint, memory_challenge",
        "  techniques: int8 quantization",
        f"  files: 3 ({size} bytes): submission.json, submission.py, w.npz"]
    assert lines[4] == f"archive: {tmp_path / 'out.zip'} ({(tmp_path / 'out.zip').stat().st_size} bytes, sha256 {digest})"


def test_cmd_submit_errors(tmp_path):
    folder = make(tmp_path / "alice", meta=dict(GOOD_META, division="x", techniques=5))
    with pytest.raises(TitoError) as info:
        run_submit(folder)
    assert info.value.exit_code == 1 and "nothing was written" in str(info.value)
    assert '"techniques" must be a list' in str(info.value) and '"division" must be' in str(info.value)
    with pytest.raises(UsageError, match="--event: unknown"):
        run_submit(folder, event="marathon")
    good = make(tmp_path / "bob")
    run_submit(good, out=tmp_path / "bob.zip")
    with pytest.raises(TitoError, match="already exists"):
        run_submit(good, out=tmp_path / "bob.zip")


# ------------------------------------------------------------------------------------------- bundled examples
def test_bundled_examples_validate_and_use_only_the_public_api():
    names = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())
    assert names == ["baseline", "broken", "distilled", "int8", "pruned"]
    for name in names:
        info = validate(EXAMPLES / name)
        assert info["id"] == name and info["files"] == ["submission.json", "submission.py"]
        tree = ast.parse((EXAMPLES / name / "submission.py").read_text())
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | \
                  {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert all(m == "numpy" or m.startswith("tinytorch.") and not m.startswith("tinytorch.tito") for m in modules), modules


@pytest.mark.parametrize("name, columns", [("baseline", 10), ("int8", 10), ("pruned", 10), ("distilled", 10), ("broken", 5)])
def test_bundled_examples_build(name, columns, monkeypatch):
    import sys

    from tinytorch.core.tensor import Tensor
    from tinytorch.data.loader import load_digits

    monkeypatch.setattr(sys, "dont_write_bytecode", True)     # leave no __pycache__ in the shipped assets

    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / name / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    images, labels = load_digits("test").tensors
    out = np.asarray(module.build_model()(Tensor(images.data[:32])).data)
    assert out.shape == (32, columns)                      # broken: (n, 5), which the grader calls invalid
    if columns == 10:
        assert (out.argmax(axis=1) == labels.data[:32]).mean() >= 0.9


def test_events_checked_with_module_19_before_module_20_exists(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tinytorch.capstone.events", None)    # as if module 20 were not exported yet
    assert sub._parse_event_name(" Extreme_Push ") == "extreme_push"
    meta = dict(GOOD_META, events=["all_around", "marathon"])
    assert only_problem(make(tmp_path / "s", meta=meta)) == (
        "\"events\"[1]: unknown event 'marathon': valid events are latency_sprint, memory_challenge, "
        "accuracy_contest, all_around, extreme_push")


# ------------------------------------------------------------------------------------------- hostile input
EXAMPLE_META = (EXAMPLES / "baseline" / "submission.json").read_bytes()
EXAMPLE_SOURCE = (EXAMPLES / "baseline" / "submission.py").read_bytes()
# Bytes that JSON, UTF-8 and str.splitlines treat specially: quotes, brackets, escapes, line breaks JSON does
# not count (\x0b, \x1c, U+2028), NUL, a lone UTF-8 continuation byte and an invalid lead byte.
SPLICES = [b'"', b"{", b"[", b"]", b"}", b",", b":", b"\\", b"\n", b"\r", b"\x0b", b"\x1c", "\u2028".encode(),
           b"\x00", b"\x80", b"\xff", b"1e999999", b"[" * 5000]


def _validate_outcome(folder):
    """validate's result: the info dict or the SubmissionError; any other exception fails the test."""
    try:
        return validate(folder)
    except SubmissionError as exc:
        assert exc.problems and all(p and "\n" not in p and len(p) <= sub.MAX_PROBLEM_CHARS for p in exc.problems), \
            exc.problems
        return exc


def test_truncated_json_after_its_last_line_is_a_problem_not_a_crash(tmp_path):
    """The example's submission.json cut after its last line break: json reports line N+1 (IndexError before)."""
    text = EXAMPLE_META.decode()
    cut = text[:text.rindex("}")]           # everything up to the closing brace: ends with "\n"
    problem = only_problem(make(tmp_path / "cut", meta=cut, source=EXAMPLE_SOURCE.decode()))
    lines = cut.count("\n") + 1
    assert problem.startswith(f"submission.json is not valid JSON: Expecting ',' delimiter at line {lines}, column 1 "
                              f"(the file ends there); fix it, e.g. {{"), problem
    # JSON counts lines at "\n" only; str.splitlines would also split at U+2028 and quote the wrong line.
    problem = only_problem(make(tmp_path / "ls", meta='{"student_id": "s\u20281",\n "events": [x]}',
                                source=EXAMPLE_SOURCE.decode()))
    assert "at line 2, column 13 (the line reads '\"events\": [x]}')" in problem, problem


def test_validate_raises_only_submission_error_on_every_truncation_and_mutation(tmp_path):
    """Every truncation of the example submission.json, and every SPLICES byte put in at (or over) every offset:
    validate either accepts the file (only when it is still valid JSON, and then reports what it holds) or
    raises SubmissionError with one-line problems. Nothing else escapes."""
    folder = make(tmp_path / "fuzz", meta="{}", source=EXAMPLE_SOURCE.decode())
    target = folder / "submission.json"
    variants = [EXAMPLE_META[:n] for n in range(len(EXAMPLE_META))]
    for n in range(len(EXAMPLE_META) + 1):
        for splice in SPLICES:
            variants.append(EXAMPLE_META[:n] + splice + EXAMPLE_META[n:])         # inserted
            variants.append(EXAMPLE_META[:n] + splice + EXAMPLE_META[n + 1:])     # overwriting one byte
    accepted = 0
    for data in variants:
        target.write_bytes(data)
        outcome = _validate_outcome(folder)
        if not isinstance(outcome, SubmissionError):
            accepted += 1
            parsed = json.loads(data.decode("utf-8-sig"))
            assert (outcome["student_id"], outcome["events"], outcome["division"]) == (
                parsed["student_id"].strip(), [e.strip().lower() for e in parsed["events"]], parsed["division"])
    assert len(variants) > 8_000 and 0 < accepted < len(variants) // 10


def test_hostile_files_are_problems(tmp_path, monkeypatch):
    source = EXAMPLE_SOURCE.decode()
    cases = {
        "empty": (b"", "submission.json is empty"),
        "blank": (b"\n\n", "submission.json is empty"),
        "binary": (bytes(range(256)) * 4, "submission.json is not UTF-8 text (bad byte at offset 128)"),
        "utf16": (EXAMPLE_META.decode().encode("utf-16"), "submission.json is not UTF-8 text (bad byte at offset 0)"),
        "nested": (b"[" * 50_000, "submission.json is nested too deeply to read"),
        "huge": (b" " * (sub.MAX_JSON_BYTES + 1), f"submission.json is larger than {sub.MAX_JSON_BYTES} bytes"),
        "long_event": (json.dumps(dict(GOOD_META, events=["x" * 10**4])).encode(),
                       '"events"[0]: unknown event a string of 10000 characters'),
        "deep_event": (json.dumps(dict(GOOD_META, events=[[[[[[1]]]]]])).encode(),
                       '"events"[0]: unknown event [[[[[1]]]]] (a list; event names are strings)'),
    }
    for name, (data, expected) in cases.items():
        folder = make(tmp_path / name, meta=None, source=source)
        (folder / "submission.json").write_bytes(data)
        problem = only_problem(folder)
        assert problem.startswith(expected), (name, problem)
    # submission.py: too deep for the parser, or too big to be code
    assert only_problem(make(tmp_path / "deep_py", source="x = " + "+x" * 200_000 + "\n")).startswith(
        "submission.py holds more than 100000 tokens")          # refused before the parser ever sees it
    big = make(tmp_path / "big_py", source="# " + "w" * sub.MAX_SOURCE_BYTES + "\n")
    assert only_problem(big).startswith(f"submission.py is larger than {sub.MAX_SOURCE_BYTES} bytes")
    # a link loop inside the folder, and a sparse file far past the size limit (never read: hashing refuses it too)
    loop = make(tmp_path / "loop")
    os.symlink("loop_link", loop / "loop_link")
    assert "loop_link is a symbolic link" in only_problem(loop)
    sparse = make(tmp_path / "sparse")
    with open(sparse / "weights.bin", "wb") as handle:
        handle.truncate(2**40)               # 1 TiB of holes: reading it would take hours
    assert "the limit is 20971520 bytes" in only_problem(sparse)
    with pytest.raises(SubmissionError, match="more than the 20971520-byte limit"):
        content_sha256(sparse)
    if os.geteuid() != 0:                  # root reads anything
        locked = make(tmp_path / "locked")
        (locked / "submission.json").chmod(0)
        assert only_problem(locked).startswith("submission.json cannot be read (Permission denied)")


def test_unpack_raises_only_submission_error_on_damaged_archives(tmp_path):
    """Every truncation of a packed example, and every byte of it overwritten (three values each): unpack
    extracts it or raises SubmissionError (zipfile itself raises NotImplementedError, ValueError, ... on
    some of these)."""
    import shutil

    folder = tmp_path / "src" / "int8"
    shutil.copytree(EXAMPLES / "int8", folder)
    data = pack(folder, tmp_path / "int8.zip").read_bytes()
    variants = [data[:n] for n in range(len(data))]
    variants += [data[:n] + bytes([v]) + data[n + 1:] for n in range(len(data)) for v in (0x00, 0x7f, 0xff)]
    archive, extracted = tmp_path / "m.zip", 0
    for i, blob in enumerate(variants):
        archive.write_bytes(blob)
        try:
            unpack(archive, tmp_path / f"out{i}")
            extracted += 1
        except SubmissionError:
            pass
        assert not list(tmp_path.glob(f"out{i}/.*.unpack")), "a failed unpack leaves nothing behind"
    assert extracted < len(variants) // 4


def test_submission_error_summary_is_bounded():
    error = SubmissionError("/x/sub", [f"problem {i}" for i in range(7)] + ["y" * 5000])
    assert error.summary(3) == "/x/sub: 8 problems:\n  - problem 0\n  - problem 1\n  - problem 2\n  - and 5 more"
    assert str(error).count("\n  - ") == 8 and len(error.problems[-1]) == sub.MAX_PROBLEM_CHARS
    assert error.problems[-1].endswith("...")
