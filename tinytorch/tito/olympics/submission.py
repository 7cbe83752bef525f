"""Olympics submissions: the folder format, validation that never runs the code, deterministic packing
and safe unpacking.

A submission is a folder whose name is its id (letters, digits, '_', '.', '-'):

    submission.py    defines build_model() at top level; it returns the model (a tinytorch Module, or a
                     callable numpy -> numpy) and may load weight files from Path(__file__).parent
    submission.json  {"student_id": "s123", "events": ["latency_sprint"], "techniques": ["int8 quantization"],
                      "division": "closed"}   ("division": "closed" or "open"; optional "name": a display name)
    anything else    weight files and helpers that build_model() reads

`validate` reads the files and parses them (json, ast) but never imports or runs the submission, so it is
safe on untrusted folders; it reports every problem it finds, not only the first. `__pycache__` folders and
`.pyc` files are bytecode caches: they are skipped everywhere (validation, packing, content hashes).

Every input is bounded before it is parsed, and nothing but a regular file is ever opened:
- files: at most MAX_FILES, MAX_TOTAL_BYTES in all, folders at most MAX_DIR_DEPTH deep, MAX_SCANNED entries
  walked. Entries are lstat-ed (never followed) and every file is opened component by component with
  O_NOFOLLOW|O_NONBLOCK and fstat-checked, so a link, FIFO, socket or device is refused (a FIFO never blocks);
- submission.json: MAX_JSON_BYTES, nested at most MAX_JSON_DEPTH levels (a pre-scan before json.loads);
- every .py file (submission.py and its helpers): MAX_SOURCE_BYTES each and MAX_ALL_SOURCES_BYTES together,
  brackets and indentation nested at most MAX_SOURCE_NESTING levels (a pre-scan of the raw text, before
  ast.parse), a syntax tree at most MAX_AST_DEPTH levels deep (walked iteratively, never recursively).
validate also reports how much data a submission carries besides code: "data_bytes" (its weight and data files)
and "embedded_bytes" (large literals inside its .py files), so weights cannot hide from a memory measurement.
"""
from __future__ import annotations

import ast
import difflib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path

from .protocol import json_too_deep

MAX_TOTAL_BYTES = 20 * 2**20   # 20 MiB: the digits CNN in float32 is ~40 KB, so this leaves room for any variant
MAX_FILES = 200
MAX_SCANNED = 10_000           # stop walking a folder this big: it is almost certainly the wrong folder
MAX_TEXT = 200                 # longest student_id / name / technique, in characters
MAX_JSON_BYTES = 64 * 2**10    # submission.json is a few hundred bytes; a bigger one is not read at all
MAX_SOURCE_BYTES = 2 * 2**20   # submission.py is code: weights belong in files beside it (np.load)
MAX_PROBLEM_CHARS = 600        # one problem's text is cut to this (hostile input must not make reports huge)
MAX_JSON_DEPTH = 20            # levels of [ and { in submission.json: a valid one has 2 (the object, a list)
MAX_ALL_SOURCES_BYTES = 2 * MAX_SOURCE_BYTES   # all .py files together (each is parsed, and ASTs are large)
# Brackets open at once, and indentation levels, in a .py file (checked on the raw text before ast.parse).
# Real code stays under 10 of each; CPython's own tokenizer stops at 200 brackets and 100 indentation levels.
MAX_SOURCE_NESTING = 100
# Tokens (names, numbers, strings, operators) of one .py file, and of all together, counted before ast.parse:
# its syntax tree takes some hundred bytes a token (a 2 MiB file of "a\n" lines would take 1.8 GB and 10 s).
# A 3,000-line program has about 30,000; a helper of generated weights belongs in a .npy file instead.
MAX_SOURCE_TOKENS = 100_000
MAX_ALL_SOURCES_TOKENS = 2 * MAX_SOURCE_TOKENS
# Levels of a .py file's syntax tree. Real code stays under 50; a chain of 200 `+`, calls or attributes is about
# 200 levels. Recursive AST tools (ast.NodeVisitor takes two frames a level) stay within Python's 1000-frame limit.
MAX_AST_DEPTH = 200
MAX_DIR_DEPTH = 32             # folders inside folders: a submission needs one or two
EMBEDDED_MIN_BYTES = 256       # a str/bytes literal longer than this is data (counted in "embedded_bytes")
EMBEDDED_MIN_NUMBERS = 64      # a list/tuple/set/dict display holding more numbers than this is data ...
EMBEDDED_NUMBER_BYTES = 8      # ... counted as 8 bytes (a float64) per number
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DIVISIONS = ("closed", "open")
REQUIRED_KEYS = ("student_id", "events", "techniques", "division")
OPTIONAL_KEYS = ("name",)
SKIPPED_DIRS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = (".pyc",)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)   # the earliest date a zip can hold: fixed, so two packs are byte-identical
EXAMPLE_JSON = ('{"student_id": "s123", "events": ["latency_sprint"], "techniques": ["int8 quantization"], '
                '"division": "closed"}')


class SubmissionError(ValueError):
    """A submission (folder or archive) that cannot be accepted; `problems` lists every reason, each with a fix."""

    def __init__(self, where, problems):
        self.where = str(where)
        self.problems = [_cut(_one_line(str(p)), MAX_PROBLEM_CHARS) for p in problems] or ["unknown problem"]
        super().__init__(self.summary())

    def summary(self, limit: int | None = None) -> str:
        """The message: where, then every problem (at most `limit` of them, then "and N more")."""
        if len(self.problems) == 1:
            return f"{self.where}: {self.problems[0]}"
        shown = self.problems if limit is None else self.problems[:limit]
        lines = [f"  - {p}" for p in shown]
        if len(shown) < len(self.problems):
            lines.append(f"  - and {len(self.problems) - len(shown)} more")
        return f"{self.where}: {len(self.problems)} problems:\n" + "\n".join(lines)

    def __repr__(self) -> str:
        return f"SubmissionError(where={self.where!r}, problems={len(self.problems)}: {self.problems[0]!r}{', ...' if len(self.problems) > 1 else ''})"


# ------------------------------------------------------------------------------------------- opening files safely
_FILE_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
_DIR_FLAGS = _FILE_FLAGS | getattr(os, "O_DIRECTORY", 0)


class _NotRegular(Exception):
    """rel (inside a submission folder) is not what was expected (kind: e.g. "a named pipe (FIFO)")."""

    def __init__(self, rel: str, kind: str):
        self.rel, self.kind = rel, kind
        super().__init__(f"{rel} is {kind}")


def _file_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words (from its st_mode)."""
    for test, words in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a file")):
        if test(mode):
            return words
    return "not a regular file"


def _safe_rel(rel) -> bool:
    """Whether rel is a relative posix path that stays inside a folder (no '..', '.', empty parts, NUL)."""
    return (isinstance(rel, str) and bool(rel) and not rel.startswith("/") and "\\" not in rel and "\0" not in rel
            and all(part not in ("", ".", "..") for part in rel.split("/")))


def _open_inside(folder: Path, rel: str, directory: bool = False) -> int:
    """A read-only fd of folder/rel (rel "" is the folder itself), a regular file (or, with directory=True, a
    folder). Opened one path component at a time below the already opened parent, each with O_NOFOLLOW, so
    no link anywhere on the path is followed; a file's kind is lstat-ed before it is opened (a FIFO, socket or
    device is never opened) and fstat-ed after (O_NONBLOCK: a FIFO swapped in meanwhile cannot block).
    _NotRegular for anything else, OSError when a part is missing or unreadable."""
    parts = rel.split("/") if rel else []
    if rel.startswith("/") or any(part in ("", ".", "..") or "\0" in part for part in parts):
        raise _NotRegular(rel, "a path that leaves the folder")
    fd = os.open(folder, _DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))   # the folder itself (given, resolved)
    try:
        for i, part in enumerate(parts):
            as_file = not directory and i == len(parts) - 1
            if as_file:
                mode = os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode
                if not stat.S_ISREG(mode):
                    raise _NotRegular(rel, _file_kind(mode))
            try:
                inner = os.open(part, _FILE_FLAGS if as_file else _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO, errno.EMLINK):
                    mode = os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode
                    raise _NotRegular("/".join(parts[:i + 1]), _file_kind(mode)) from None
                raise
            os.close(fd)
            fd = inner
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISDIR(mode) if directory else stat.S_ISREG(mode)):
            raise _NotRegular(rel, _file_kind(mode))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_regular(folder: Path, rel: str, max_bytes: int) -> bytes:
    """At most max_bytes + 1 bytes of the regular file folder/rel (_open_inside: nothing else is opened)."""
    with os.fdopen(_open_inside(folder, rel), "rb") as handle:
        return handle.read(max_bytes + 1)


# ------------------------------------------------------------------------------------------- walking a folder
def _entries(folder: Path) -> tuple[list[tuple[str, str, int, str | None]], bool]:
    """([(relative posix path, kind, size, link target)] sorted by path, truncated); kind is "file", "symlink",
    "deep" (a folder more than MAX_DIR_DEPTH deep, not entered) or "other" (a FIFO, socket or device).
    Every entry is lstat-ed from its folder's fd (folders are opened with _open_inside): nothing is followed
    and no file is opened. At most MAX_SCANNED entries, folders included (truncated=True when there were more)."""
    found, stack, scanned = [], [""], 0
    while stack:
        current = stack.pop()
        fd = _open_inside(folder, current, directory=True)
        try:
            with os.scandir(fd) as listing:
                for entry in listing:
                    name = entry.name
                    info = entry.stat(follow_symlinks=False)
                    is_dir = stat.S_ISDIR(info.st_mode)
                    if name in SKIPPED_DIRS if is_dir else name.endswith(SKIPPED_SUFFIXES):
                        continue   # bytecode caches, which Python recreates: never part of a submission
                    scanned += 1
                    if scanned > MAX_SCANNED:
                        return sorted(found), True
                    rel = f"{current}/{name}" if current else name
                    if stat.S_ISLNK(info.st_mode):
                        found.append((rel, "symlink", 0, os.readlink(name, dir_fd=fd)))
                    elif is_dir and rel.count("/") + 1 > MAX_DIR_DEPTH:
                        found.append((rel, "deep", 0, None))
                    elif is_dir:
                        stack.append(rel)
                    elif stat.S_ISREG(info.st_mode):
                        found.append((rel, "file", info.st_size, None))
                    else:
                        found.append((rel, "other", 0, None))
        finally:
            os.close(fd)
    return sorted(found), False


def _link_problem(folder: Path, rel: str, target: str) -> str:
    """Why the symbolic link rel (to target) cannot be submitted (archives hold regular files only)."""
    try:
        resolved = ((folder / rel).parent / target).resolve()
    except (OSError, RuntimeError, ValueError):   # a loop of links (which resolve() refuses), a NUL in the target
        return f"{rel} is a symbolic link that cannot be followed (a loop of links?); archives hold regular files only: remove it"
    if resolved != folder and folder not in resolved.parents:
        return (f"{rel} is a symbolic link to {target}, which is outside the submission folder; copy the file "
                f"into the folder instead (the grader sees only the folder)")
    return f"{rel} is a symbolic link (to {target}); archives hold regular files only: replace it with a copy of the file"


def _name_problem(rel: str) -> str | None:
    """Why a file name would not survive an archive on every system, or None."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return f"{rel!r} has a name that is not valid UTF-8: rename it"
    if "\\" in rel or any(ord(ch) < 32 for ch in rel):
        return f"{rel!r} has a backslash or a control character in its name: rename it"
    return None


def _check_files(folder: Path, problems: list[str]) -> tuple[list[str], dict[str, int]]:
    """(relative paths of the folder's regular files, {path: size}); adds a problem for links, special files,
    odd names, folders nested too deeply, and too many files or bytes (and for a folder that cannot be read)."""
    try:
        entries, truncated = _entries(folder)
    except _NotRegular as exc:   # a folder swapped for a link or a file while it was walked
        problems.append(f"{exc.rel} is {exc.kind}, not a folder (it changed while the folder was read): "
                        f"stop writing into the folder")
        return [], {}
    except OSError as exc:
        problems.append(f"the folder cannot be read ({exc.strerror or exc}): make it and its files readable")
        return [], {}
    if truncated:
        problems.append(f"the folder holds more than {MAX_SCANNED} entries: is this the right folder? "
                        f"A submission holds at most {MAX_FILES} files")
    files, sizes = [], {}
    for rel, kind, size, target in entries:
        name_problem = _name_problem(rel)
        if name_problem:
            problems.append(name_problem)
        if kind == "symlink":
            problems.append(_link_problem(folder, rel, target))
        elif kind == "other":
            problems.append(f"{rel} is not a regular file (a pipe, socket or device); remove it")
        elif kind == "deep":
            problems.append(f"{rel} is a folder more than {MAX_DIR_DEPTH} folders deep: flatten the folder "
                            f"(a submission needs one or two levels)")
        else:
            sizes[rel] = size
            files.append(rel)
    total = sum(sizes.values())
    if len(files) > MAX_FILES and not truncated:
        problems.append(f"the folder holds {len(files)} files; the limit is {MAX_FILES}: remove files build_model() "
                        f"does not need (or combine weights into one .npz)")
    if total > MAX_TOTAL_BYTES:
        largest = ", ".join(f"{rel} ({sizes[rel] / 2**20:.1f} MiB)" for rel in sorted(sizes, key=sizes.get, reverse=True)[:3])
        problems.append(f"the folder holds {total} bytes ({total / 2**20:.1f} MiB); the limit is {MAX_TOTAL_BYTES} "
                        f"bytes (20 MiB): remove unused files; the largest are {largest}")
    return files, sizes


# ------------------------------------------------------------------------------------------- submission.json
def _parse_event_name(text) -> str:
    """The event's value (e.g. "latency_sprint"); ValueError listing the valid names otherwise.
    Uses module 20's parse_event once it is exported, and module 19's OlympicEvent until then."""
    try:
        from tinytorch.capstone.events import parse_event
    except ModuleNotFoundError as exc:
        if exc.name not in ("tinytorch.capstone", "tinytorch.capstone.events"):
            raise
        from tinytorch.benchmarking.benchmark import OlympicEvent

        valid = [e.value for e in OlympicEvent]
        if isinstance(text, OlympicEvent):
            return text.value
        if isinstance(text, str) and text.strip().lower() in valid:
            return text.strip().lower()
        raise ValueError(f"unknown event {text!r}: valid events are {', '.join(valid)}") from None
    return parse_event(text).value


def _one_line(text: str) -> str:
    """text with every unprintable character (line breaks included) written as its escape: a problem quoting a
    hostile file name or key stays one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _cut(text: str, limit: int) -> str:
    """text, cut to limit characters ("..." marks the cut)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _event_values() -> list[str]:
    """The valid event values, from module 20 once it is exported, else module 19."""
    try:
        from tinytorch.capstone.events import OlympicEvent
    except ModuleNotFoundError as exc:
        if exc.name not in ("tinytorch.capstone", "tinytorch.capstone.events"):
            raise
        from tinytorch.benchmarking.benchmark import OlympicEvent
    return [e.value for e in OlympicEvent]


def _short(value, limit: int = 60) -> str:
    """repr(value), cut to limit characters (never fails: a value too deep or too long to show is named by its type)."""
    if isinstance(value, str) and len(value) > 4 * limit:
        value = value[:4 * limit]          # repr of a megabyte string only to cut it would be wasted work
    try:
        text = repr(value)
    except (RecursionError, ValueError):   # a structure nested too deeply, a number too long to print
        text = f"<a {type(value).__name__} too deep or too long to show>"
    return _cut(text, limit)


def _text_problem(label: str, value, what: str) -> str | None:
    """Why value is not acceptable one-line text for the field shown as label (e.g. '"student_id"'), or None."""
    if not isinstance(value, str):
        return f"{label} must be a string ({what}), got {type(value).__name__} {_short(value)}"
    if not value.strip():
        return f"{label} must not be empty: write {what}"
    if len(value) > MAX_TEXT:
        return f"{label} has {len(value)} characters; the limit is {MAX_TEXT}: shorten it"
    if any(ord(ch) < 32 for ch in value):
        return f"{label} contains a line break or control character: keep it on one line"
    return None


def _check_events(value, problems: list[str]) -> list[str]:
    """The entered events as values (e.g. "latency_sprint"), in the order given."""
    if not isinstance(value, list) or not value:
        problems.append(f'"events" must be a non-empty list of event names, e.g. ["latency_sprint"], got {_short(value)}')
        return []
    events = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or len(item) > MAX_TEXT:   # never quoted whole in a message
            what = (f"a string of {len(item)} characters" if isinstance(item, str)
                    else f"{_short(item)} (a {type(item).__name__}; event names are strings)")
            problems.append(f'"events"[{i}]: unknown event {what}: valid events are {", ".join(_event_values())}')
            continue
        try:
            event = _parse_event_name(item)
        except (TypeError, ValueError) as exc:
            problems.append(f'"events"[{i}]: {exc}')
            continue
        if event in events:
            problems.append(f'"events"[{i}]: {event} is listed twice; list each event once')
        else:
            events.append(event)
    return events


def _check_techniques(value, problems: list[str]) -> list[str]:
    """The techniques as given ([] is fine: a baseline applies none)."""
    if not isinstance(value, list):
        problems.append(f'"techniques" must be a list of strings, e.g. ["int8 quantization", "magnitude pruning"] '
                        f'(or [] for none), got {_short(value)}')
        return []
    techniques = []
    for i, item in enumerate(value):
        problem = _text_problem(f'"techniques"[{i}]', item, "the technique, e.g. \"int8 quantization\"")
        if problem:
            problems.append(problem)
        else:
            techniques.append(item.strip())
    return techniques


def _unknown_keys(meta: dict) -> list[str]:
    """A problem for every key submission.json must not have, with the closest valid key as a hint."""
    valid = REQUIRED_KEYS + OPTIONAL_KEYS
    problems = []
    for key in meta:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            problems.append(f'unknown key "{key}" in submission.json (valid keys: {", ".join(valid)}){hint}')
    return problems


def _check_meta(meta, problems: list[str]) -> dict:
    """The validated fields of a parsed submission.json; adds a problem for each bad or missing one."""
    if not isinstance(meta, dict):
        problems.append(f"submission.json must hold one JSON object {{...}}, got {type(meta).__name__}; e.g. {EXAMPLE_JSON}")
        return {}
    problems.extend(_unknown_keys(meta))
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        problems.append(f"submission.json is missing {', '.join(missing)}; e.g. {EXAMPLE_JSON}")
    out = {"name": None}
    if "student_id" in meta:
        problem = _text_problem('"student_id"', meta["student_id"], "your student id")
        problems.extend([problem] if problem else [])
        out["student_id"] = None if problem else meta["student_id"].strip()
    if "events" in meta:
        out["events"] = _check_events(meta["events"], problems)
    if "techniques" in meta:
        out["techniques"] = _check_techniques(meta["techniques"], problems)
    if "division" in meta:
        if meta["division"] not in DIVISIONS:
            problems.append(f'"division" must be "closed" or "open" (lower case), got {_short(meta["division"])}')
        out["division"] = meta["division"]
    if "name" in meta:
        problem = _text_problem('"name"', meta["name"], "a display name for the leaderboard, or leave the key out")
        problems.extend([problem] if problem else [])
        out["name"] = None if problem else meta["name"].strip()
    return out


def _no_duplicate_keys(pairs):
    """object_pairs_hook: a JSON object as a dict, refusing a key given twice."""
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ValueError(f"key {', '.join(repr(k) for k in twice)} appears more than once in one object; keep one")
    return dict(pairs)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """(line, column), both from 1, of text[offset], lines counted at "\\n" as JSON and Python do."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _read_text(folder: Path, rel: str, problems: list[str], max_bytes: int) -> str | None:
    """The file folder/rel as text (UTF-8, a leading BOM allowed), or None with a problem added. A file bigger
    than max_bytes is not read at all (only its first max_bytes + 1 bytes are ever touched), and nothing but a
    regular file is opened (_open_inside)."""
    try:
        data = _read_regular(folder, rel, max_bytes)
    except _NotRegular as exc:
        problems.append(f"{exc.rel} is {exc.kind}, not a regular file (it was not read): replace it with a "
                        f"regular file")
        return None
    except OSError as exc:
        problems.append(f"{rel} cannot be read ({exc.strerror or exc}): make it a readable file")
        return None
    if len(data) > max_bytes:
        problems.append(f"{rel} is larger than {max_bytes} bytes, far more than it needs: "
                        + ("it holds a few short fields, e.g. " + EXAMPLE_JSON if rel.endswith(".json") else
                           "keep weights in a file beside it (np.save / np.savez) and load them in build_model()"))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(f"{rel} is not UTF-8 text (bad byte at offset {exc.start}): save it as UTF-8")
        return None


def _load_meta(folder: Path, problems: list[str]):
    """Parsed submission.json, or None with the problem (line and column for syntax errors) added. Its size
    (MAX_JSON_BYTES) and nesting (MAX_JSON_DEPTH, a pre-scan) are checked before json.loads sees it."""
    text = _read_text(folder, "submission.json", problems, MAX_JSON_BYTES)
    if text is None:
        return None
    if not text.strip():
        line, column = _line_col(text, len(text))
        problems.append(f"submission.json is empty (nothing up to line {line}, column {column}): write your entry "
                        f"into it, e.g. {EXAMPLE_JSON}")
        return None
    deep = json_too_deep(text, MAX_JSON_DEPTH)
    if deep is not None:
        line, column = _line_col(text, deep)
        problems.append(f"submission.json is nested too deeply to read: a list or object at line {line}, column "
                        f"{column} opens level {MAX_JSON_DEPTH + 1} (the limit is {MAX_JSON_DEPTH}); it holds a few "
                        f"short fields, e.g. {EXAMPLE_JSON}")
        return None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        # JSON counts lines at "\n" only (str.splitlines also splits at \x0b, \x1c, \u2028, ...), and the
        # error may sit just past the last line (a file cut short after its final newline).
        lines = exc.doc.split("\n")
        line = lines[exc.lineno - 1].strip() if 0 < exc.lineno <= len(lines) else ""
        shown = f"the line reads {_short(line, 70)}" if line else "the file ends there"
        problems.append(f"submission.json is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
                        f"({shown}); fix it, e.g. {EXAMPLE_JSON}")
    except (RecursionError, MemoryError):
        problems.append("submission.json is nested too deeply to read (lists or objects inside each other "
                        f"hundreds of levels deep): it holds a few short fields, e.g. {EXAMPLE_JSON}")
    except ValueError as exc:
        problems.append(f"submission.json: {exc}")
    return None


# ------------------------------------------------------------------------------------------- submission.py
def _binds_build_model(node: ast.stmt) -> bool:
    """Whether a top-level statement other than a def binds the name build_model (assignment or import)."""
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == "build_model" for t in node.targets)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.target.id == "build_model" and node.value is not None
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return any((alias.asname or alias.name.split(".")[0]) == "build_model" for alias in node.names)
    return False


def _required_args(func: ast.FunctionDef) -> list[str]:
    """Names of the parameters build_model would need (it is called with none)."""
    args = func.args
    positional = args.posonlyargs + args.args
    needed = [a.arg for a in positional[:len(positional) - len(args.defaults)]]
    return needed + [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None]


# One token of Python source: a comment; a string, triple-quoted or not, to its closing quote (or to the end of
# its line or of the text when it has none: brackets inside never count); a bracket; an explicit line join; a
# line break with the next line's indentation; else a name or number, or one other character. Possessive, so the
# scan is linear and never backtracks.
_PY_SCAN = re.compile(r"""
      \#[^\r\n]*
    | '''(?:[^'\\]++|\\.?|'(?!''))*+(?:'''|\Z)
    | \"\"\"(?:[^"\\]++|\\.?|"(?!""))*+(?:\"\"\"|\Z)
    | '(?:[^'\\\r\n]++|\\.?)*+'?
    | "(?:[^"\\\r\n]++|\\.?)*+"?
    | [(\[{]
    | [)\]}]
    | \\\r?\n
    | (?:\r\n?|\n)[ \t\f]*
    | \w+
    | [^\w\s]
    """, re.VERBOSE | re.DOTALL)


def _indent_width(blanks: str) -> int:
    """The column a line's leading blanks reach, as Python's tokenizer counts it (tabs to multiples of 8)."""
    if "\t" not in blanks and "\f" not in blanks:
        return len(blanks)
    column = 0
    for char in blanks:
        column = (column // 8 + 1) * 8 if char == "\t" else 0 if char == "\f" else column + 1
    return column


def _scan_source(rel: str, text: str, max_tokens: int = MAX_SOURCE_TOKENS) -> tuple[str | None, int]:
    """(why the source is too big or too deep for ast.parse, or None; its tokens): more than max_tokens tokens,
    or brackets or indentation nested more than MAX_SOURCE_NESTING levels. A cheap linear scan of the raw text
    (comments skipped, strings one token), done before ast.parse is given anything; it stops at the first
    limit passed, so hostile text costs little."""
    depth, indents, tokens = 0, [0], 0
    for match in _PY_SCAN.finditer(text):
        first = text[match.start()]
        if first in "#\r\n\\" or first.isspace():
            pass
        else:
            tokens += 1
            if tokens > max_tokens:
                line, _ = _line_col(text, match.start())
                return (f"{rel} holds more than {max_tokens} tokens (names, numbers, strings, operators; "
                        f"the limit is passed at line {line}), far more than code needs: keep weights in a file "
                        f"beside it (np.save / np.savez) and load them in build_model()"), tokens
        if first in "([{":
            depth += 1
            if depth > MAX_SOURCE_NESTING:
                line, column = _line_col(text, match.start())
                return (f"{rel} is nested too deeply: brackets open {depth} levels deep at line {line}, column "
                        f"{column} (the limit is {MAX_SOURCE_NESTING}): split the expression into several "
                        f"statements"), tokens
        elif first in ")]}":
            depth = max(depth - 1, 0)
        elif first in "\r\n" and depth == 0:
            end = match.end()
            if end >= len(text) or text[end] in "#\r\n\\":
                continue   # a blank or comment-only line: no indentation (nor is the last line's)
            column = _indent_width(match.group().lstrip("\r\n"))
            if column > indents[-1]:
                indents.append(column)
                if len(indents) - 1 > MAX_SOURCE_NESTING:
                    line, _ = _line_col(text, end)
                    return (f"{rel} is nested too deeply: {len(indents) - 1} levels of indented blocks at line "
                            f"{line} (the limit is {MAX_SOURCE_NESTING}): move inner blocks into functions"), tokens
            else:
                while len(indents) > 1 and indents[-1] > column:
                    indents.pop()
    return None, tokens


_DISPLAYS = (ast.List, ast.Tuple, ast.Set, ast.Dict)


def _is_number(node) -> bool:
    """Whether node is a number literal (bools are not numbers here), or -/+ one."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return (isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex))
            and not isinstance(node.value, bool))


def _display_numbers(display: ast.AST, covered: set[int]) -> int:
    """How many number literals display holds, through displays nested directly inside it (each added to
    covered, so it is not counted again on its own). Iterative."""
    count, stack = 0, [display]
    while stack:
        node = stack.pop()
        covered.add(id(node))
        items = (list(node.keys) + list(node.values)) if isinstance(node, ast.Dict) else node.elts
        for item in items:
            if item is None:
                continue   # the key slot of a {**mapping}
            if _is_number(item):
                count += 1
            elif isinstance(item, _DISPLAYS):
                stack.append(item)
    return count


def _tree_facts(tree: ast.AST) -> tuple[int | None, int]:
    """(the line where the syntax tree first goes deeper than MAX_AST_DEPTH, or None; embedded bytes: every
    str/bytes literal longer than EMBEDDED_MIN_BYTES (its UTF-8 length), and every display holding more than
    EMBEDDED_MIN_NUMBERS numbers (EMBEDDED_NUMBER_BYTES each)). One iterative walk, so no tree is too deep for it."""
    embedded, covered = 0, set()
    stack = [(tree, 1, 1)]
    while stack:
        node, depth, line = stack.pop()
        line = getattr(node, "lineno", line)
        if depth > MAX_AST_DEPTH:
            return line, embedded
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bytes) and len(value) > EMBEDDED_MIN_BYTES:
                embedded += len(value)
            elif isinstance(value, str) and len(value) * 4 > EMBEDDED_MIN_BYTES:
                size = len(value.encode("utf-8", "surrogatepass"))
                embedded += size if size > EMBEDDED_MIN_BYTES else 0
        elif isinstance(node, _DISPLAYS) and id(node) not in covered:
            numbers = _display_numbers(node, covered)
            if numbers > EMBEDDED_MIN_NUMBERS:
                embedded += numbers * EMBEDDED_NUMBER_BYTES
        stack.extend((child, depth + 1, line) for child in ast.iter_child_nodes(node))
    return None, embedded


def _parse_source(folder: Path, rel: str, problems: list[str], budget: list[int]) -> tuple[ast.Module | None, int]:
    """(the parsed module, its embedded bytes) of the .py file folder/rel, or (None, 0) with a problem added.
    Bounded before ast.parse runs (MAX_SOURCE_BYTES, MAX_SOURCE_TOKENS, MAX_SOURCE_NESTING, and budget[0]: the
    tokens all .py files may still hold, which this one's are taken from), and the tree after (MAX_AST_DEPTH)."""
    text = _read_text(folder, rel, problems, MAX_SOURCE_BYTES)
    if text is None:
        return None, 0
    problem, tokens = _scan_source(rel, text, min(MAX_SOURCE_TOKENS, budget[0]))
    budget[0] -= tokens
    if problem:
        if tokens <= MAX_SOURCE_TOKENS and problem.startswith(f"{rel} holds more than"):
            problem = (f"the folder's .py files hold more than {MAX_ALL_SOURCES_TOKENS} tokens together (the limit "
                       f"is passed in {rel}): they are code, so keep weights in files beside them (np.save / "
                       f"np.savez) and load them in build_model()")
        problems.append(problem)
        return None, 0
    try:
        with warnings.catch_warnings():   # e.g. a SyntaxWarning for each of 100 000 invalid escapes
            warnings.simplefilter("ignore")
            tree = ast.parse(text, filename=rel)
    except SyntaxError as exc:
        if exc.lineno is None:
            problems.append(f"{rel} cannot be parsed: {exc.msg}; fix it")
            return None, 0
        shown = f" (the line reads {_short(exc.text.strip(), 70)})" if exc.text and exc.text.strip() else ""
        problems.append(f"{rel} has a syntax error at line {exc.lineno}, column {exc.offset}: {exc.msg}{shown}; fix it")
        return None, 0
    except (RecursionError, MemoryError):
        problems.append(f"{rel} is nested too deeply for Python's parser (an expression thousands of levels "
                        "deep): simplify it")
        return None, 0
    except (ValueError, OverflowError) as exc:
        problems.append(f"{rel} cannot be parsed: {exc}; fix it")
        return None, 0
    deep_line, embedded = _tree_facts(tree)
    if deep_line is not None:
        problems.append(f"{rel} is nested too deeply: its syntax tree goes more than {MAX_AST_DEPTH} levels deep at "
                        f"line {deep_line} (a long chain of operators, calls or attributes): split it into several "
                        f"statements")
        return None, 0
    return tree, embedded


def _check_build_model(tree: ast.Module, problems: list[str]) -> None:
    """submission.py defines build_model() at top level, callable with no arguments (never run)."""
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "build_model"]
    if not defs and not any(_binds_build_model(n) for n in tree.body):
        nested = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "build_model"]
        where = (f"; the def at line {nested[0].lineno} is nested inside another block: move it to the top level"
                 if nested else ": add `def build_model():` that returns your model")
        problems.append(f"submission.py does not define build_model() at top level{where}")
        return
    if defs and isinstance(defs[-1], ast.AsyncFunctionDef):
        problems.append(f"build_model at line {defs[-1].lineno} is `async def`; make it a plain `def`")
    elif defs and _required_args(defs[-1]):
        problems.append(f"build_model at line {defs[-1].lineno} requires argument(s) {', '.join(_required_args(defs[-1]))}, "
                        f"but the grader calls build_model() with none: give them defaults or remove them")


# ------------------------------------------------------------------------------------------- validate
def _folder_id(folder: Path, problems: list[str]) -> str:
    """The submission id: the folder's name, which must be safe as a file name everywhere."""
    name = folder.name
    if not SAFE_ID.fullmatch(name):
        problems.append(f"the folder name {name!r} is the submission id and must be 1-64 letters, digits, '_', '.' "
                        f"or '-', starting with a letter or digit: rename the folder")
    return name


def _required_file(folder: Path, rel: str, files: list[str], problems: list[str], hint: str) -> bool:
    """Whether rel is a regular file at the top of the folder; adds a problem otherwise (links and special files
    are reported by _check_files, once)."""
    if rel in files:
        return True
    try:
        mode = os.lstat(folder / rel).st_mode
    except FileNotFoundError:
        problems.append(f"{rel} is missing: {hint}")
        return False
    except OSError:
        return False   # the folder itself cannot be read: _check_files said so
    if stat.S_ISDIR(mode):
        problems.append(f"{rel} is a folder; it must be a file: {hint}")
    return False


# What hostile input can make parsing or reading raise besides the problems validate reports itself: each
# becomes a SubmissionError problem (never a traceback that stops a grading run).
_HOSTILE = (OSError, RecursionError, MemoryError, ValueError, UnicodeError, OverflowError, _NotRegular)


def validate(folder) -> dict:
    """Check a submission folder WITHOUT running it. Returns {"id", "student_id", "events" (event values),
    "techniques", "division", "name" (None when not given), "folder" (resolved Path), "files" (sorted relative
    paths), "data_bytes", "embedded_bytes"}; raises SubmissionError listing every problem found.

    data_bytes: the bytes of the folder's regular files other than its .py files and submission.json (its
    weight and data files). embedded_bytes: the bytes of large literal data inside its .py files (_tree_facts:
    str/bytes literals over EMBEDDED_MIN_BYTES, displays of over EMBEDDED_MIN_NUMBERS numbers at 8 bytes each).
    Every .py file in the folder is read and parsed with the same bounds as submission.py (never run)."""
    given = Path(folder)
    try:
        return _validate(given)
    except SubmissionError:
        raise
    except _HOSTILE as exc:
        detail = f"{exc.rel} is {exc.kind}" if isinstance(exc, _NotRegular) else f"{type(exc).__name__}: {exc}"
        raise SubmissionError(given, [f"cannot be checked ({detail}): a submission folder holds only readable "
                                      f"regular files and folders; fix that and submit again"]) from None


def _validate(given: Path) -> dict:
    """validate's work (validate turns what hostile input makes it raise into a SubmissionError)."""
    if not given.is_dir():
        what = "does not exist" if not given.exists() else "is not a folder"
        raise SubmissionError(given, [f"{what}: pass the folder that holds submission.py and submission.json"])
    folder = given.resolve()
    problems: list[str] = []
    sub_id = _folder_id(folder, problems)
    files, sizes = _check_files(folder, problems)
    meta = {}
    if _required_file(folder, "submission.json", files, problems, f"create it, e.g. {EXAMPLE_JSON}"):
        loaded = _load_meta(folder, problems)
        if loaded is not None:
            meta = _check_meta(loaded, problems)
    sources = [rel for rel in files if rel.endswith(".py")]
    source_bytes = sum(sizes[rel] for rel in sources)
    embedded, budget = 0, [MAX_ALL_SOURCES_TOKENS]
    if _required_file(folder, "submission.py", files, problems, "create it with `def build_model():` returning your model"):
        tree, embedded = _parse_source(folder, "submission.py", problems, budget)
        if tree is not None:
            _check_build_model(tree, problems)
        del tree
    helpers = [rel for rel in sources if rel != "submission.py"]
    if helpers and source_bytes > MAX_ALL_SOURCES_BYTES:   # (submission.py alone has its own, lower limit)
        problems.append(f"the folder's .py files hold {source_bytes} bytes together; the limit is "
                        f"{MAX_ALL_SOURCES_BYTES}: they are code, so keep weights in files beside them "
                        f"(np.save / np.savez) and load them in build_model()")
    else:
        for rel in helpers:   # helpers build_model() imports: parsed (never run) with the same bounds
            if budget[0] <= 0:
                break   # the problem is reported once, for the file that passed the limit
            embedded += _parse_source(folder, rel, problems, budget)[1]
    if problems:
        raise SubmissionError(given, problems)
    data = sum(size for rel, size in sizes.items() if not rel.endswith(".py") and rel != "submission.json")
    return {"id": sub_id, "student_id": meta["student_id"], "events": meta["events"], "techniques": meta["techniques"],
            "division": meta["division"], "name": meta["name"], "folder": folder, "files": files,
            "data_bytes": data, "embedded_bytes": embedded}


def content_sha256(folder) -> str:
    """sha256 of the folder's contents: for every entry in sorted relative-path order, the 8-byte big-endian
    length of its UTF-8 path, the path, the 8-byte length of its bytes, the bytes. Regular files contribute
    their contents; a symbolic link contributes b"symlink:" + its target and any other special file b"special"
    (a folder nested deeper than MAX_DIR_DEPTH b"deep"), so every change shows (nothing is followed, no special
    file is opened, nothing is skipped except bytecode caches).

    Files are read in chunks (opened with _open_inside: O_NOFOLLOW|O_NONBLOCK, fstat-checked), and a folder
    whose files add up to more than MAX_TOTAL_BYTES is refused (SubmissionError) before any is read: it cannot
    be a valid submission, and hashing a huge (or sparse) file would only stall the grader. Whatever hostile
    input makes reading raise is a SubmissionError too."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionError(folder, ["is not a folder: pass a submission folder"])
    try:
        return _content_sha256(folder, folder.resolve())
    except SubmissionError:
        raise
    except _NotRegular as exc:
        raise SubmissionError(folder, [f"{exc.rel} is {exc.kind} now (it changed while the folder was read): "
                                       f"stop writing into the folder and try again"]) from None
    except _HOSTILE as exc:
        detail = f"{exc.strerror} ({exc.filename})" if isinstance(exc, OSError) and exc.strerror else exc
        raise SubmissionError(folder, [f"cannot be read to hash it ({type(exc).__name__}: {detail}): make its "
                                       f"files readable"]) from None


def _content_sha256(folder: Path, root: Path) -> str:
    """content_sha256's work."""
    entries, truncated = _entries(root)
    if truncated:
        raise SubmissionError(folder, [f"holds more than {MAX_SCANNED} entries: is this a submission folder?"])
    total = sum(size for _, kind, size, _ in entries if kind == "file")
    if total > MAX_TOTAL_BYTES:
        raise SubmissionError(folder, [f"holds {total} bytes, more than the {MAX_TOTAL_BYTES}-byte limit"])
    digest = hashlib.sha256()

    def part(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)

    for rel, kind, _, target in entries:
        part(rel.encode("utf-8", "surrogateescape"))
        if kind != "file":
            part(b"symlink:" + os.fsencode(target) if kind == "symlink" else b"deep" if kind == "deep" else b"special")
            continue
        with os.fdopen(_open_inside(root, rel), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_TOTAL_BYTES:
                raise SubmissionError(folder, [f"{rel} grew to {size} bytes while the folder was read: stop "
                                               f"writing into the folder"])
            digest.update(size.to_bytes(8, "big"))
            left = size
            while left and (chunk := handle.read(min(left, 1 << 20))):
                digest.update(chunk)
                left -= len(chunk)
            if left or handle.read(1):
                raise SubmissionError(folder, [f"{rel} changed size while it was read: stop writing into the folder"])
    return digest.hexdigest()


def copy_submission(src, dest, files) -> Path:
    """Copy exactly the validated regular files `files` (relative posix paths: validate(src)["files"]) from the
    folder src into dest, which is created (with its parents; it must not exist yet), and return dest. Nothing
    else is copied: no link, FIFO, socket or device, nothing that appeared after validation. Each source file is
    opened with _open_inside (component by component with O_NOFOLLOW|O_NONBLOCK, fstat-checked: a file swapped
    for a link or a FIFO since validate is refused and never blocks); each copy is created with O_EXCL|O_NOFOLLOW,
    mode 0o644 (folders 0o755); at most MAX_TOTAL_BYTES are copied in all. SubmissionError (naming the file) when
    a file is not a regular file any more, cannot be read, or the files grew past the limit; dest is removed then.
    FileExistsError when dest exists. The replacement for shutil.copytree in the sandbox."""
    src, dest = Path(src).resolve(), Path(dest)
    files = list(files)
    bad = [f"{_short(rel)} is not a relative path inside the submission folder" for rel in files if not _safe_rel(rel)]
    if bad:
        raise SubmissionError(src, bad)
    dest.mkdir(parents=True, mode=0o755)
    total = 0
    try:
        for rel in files:
            try:
                handle = os.fdopen(_open_inside(src, rel), "rb")
            except _NotRegular as exc:
                raise SubmissionError(src, [f"{exc.rel} is {exc.kind} now, not the regular file that was validated "
                                            f"(it was not copied): stop changing the folder and submit again"]) from None
            except OSError as exc:
                raise SubmissionError(src, [f"{rel} cannot be read ({exc.strerror or exc}): make it readable"]) from None
            with handle:
                target = dest.joinpath(*rel.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
                with os.fdopen(os.open(target, flags, 0o644), "wb") as sink:
                    while chunk := handle.read(1 << 20):
                        total += len(chunk)
                        if total > MAX_TOTAL_BYTES:
                            raise SubmissionError(src, [f"grew past {MAX_TOTAL_BYTES} bytes while it was copied "
                                                        f"(at {rel}): stop writing into the folder"])
                        sink.write(chunk)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


# ------------------------------------------------------------------------------------------- pack / unpack
def _check_entered(info: dict, event) -> str:
    """The event's value, when the submission entered it; SubmissionError otherwise."""
    try:
        value = _parse_event_name(event)
    except (TypeError, ValueError) as exc:
        raise SubmissionError(info["folder"], [f"--event: {exc}"]) from None
    if value not in info["events"]:
        raise SubmissionError(info["folder"], [
            f"the event {value} is not among the events submission.json enters ({', '.join(info['events'])}): "
            f'add "{value}" to "events" in submission.json, or submit for one of those'])
    return value


def archive_path(info: dict, out_file=None) -> Path:
    """Where pack writes: out_file, or <id>.zip next to the submission folder. Never inside the folder."""
    out = Path(out_file).resolve() if out_file is not None else info["folder"].parent / f"{info['id']}.zip"
    if info["folder"] in out.parents:
        raise SubmissionError(info["folder"], [f"the archive {out} would be inside the submission folder (and so "
                                               f"inside the next archive): write it somewhere else"])
    return out


def archive_bytes(info: dict) -> bytes:
    """A deterministic zip of the validated submission: entries <id>/<path> in sorted order, fixed timestamps
    and permissions, deflate level 9. The same files give the same bytes on every run."""
    buffer, total = io.BytesIO(), 0
    with zipfile.ZipFile(buffer, "w") as archive:
        for rel in info["files"]:
            try:   # a regular file still (never a FIFO swapped in since validate), at most what is left of the limit
                data = _read_regular(info["folder"], rel, MAX_TOTAL_BYTES - total)
            except _NotRegular as exc:
                raise SubmissionError(info["folder"], [f"{exc.rel} is {exc.kind} now, not the regular file that was "
                                                       f"validated: stop changing the folder and try again"]) from None
            except OSError as exc:
                raise SubmissionError(info["folder"], [f"{rel} cannot be read ({exc.strerror or exc}): make it "
                                                       f"readable"]) from None
            total += len(data)
            if total > MAX_TOTAL_BYTES:
                raise SubmissionError(info["folder"], [f"grew past {MAX_TOTAL_BYTES} bytes while packing: "
                                                       f"stop whatever is writing into it and try again"])
            entry = zipfile.ZipInfo(f"{info['id']}/{rel}", date_time=ZIP_DATE)
            entry.create_system = 3                      # unix: the mode bits below mean what they say
            entry.external_attr = (stat.S_IFREG | 0o644) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data, compresslevel=9)
    return buffer.getvalue()


def pack(folder, out_file=None, event=None) -> Path:
    """Validate the folder (and, when event is given, that submission.json enters it), then write its
    deterministic zip atomically to out_file (default <id>.zip next to the folder). FileExistsError when
    the archive exists already: nothing is overwritten."""
    from tinytorch.benchmarking.reporting import atomic_write_bytes

    info = validate(folder)
    if event is not None:
        _check_entered(info, event)
    out = archive_path(info, out_file)
    if out.exists():
        raise FileExistsError(f"{out} already exists; remove it or choose another output file (--out)")
    return atomic_write_bytes(out, archive_bytes(info), overwrite=False)


def _member_problems(info: zipfile.ZipInfo) -> list[str]:
    """Why one archive member cannot be extracted safely (empty when it can)."""
    name, problems = info.filename, []
    if not name:
        return ["a member has an empty name"]
    parts = name.rstrip("/").split("/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        problems.append(f"{name!r} is an absolute path; archive members must be relative")
    if "\\" in name or any(ord(ch) < 32 for ch in name):
        problems.append(f"{name!r} has a backslash or control character in its name")
    if ".." in parts:
        problems.append(f"{name!r} contains '..', which would write outside the destination")
    if any(part in ("", ".") for part in parts) and not name.startswith("/"):
        problems.append(f"{name!r} has an empty or '.' path component")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        problems.append(f"{name!r} is a symbolic link; only regular files are accepted")
    elif stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        problems.append(f"{name!r} is not a regular file or folder")
    if info.flag_bits & 0x1:
        problems.append(f"{name!r} is encrypted; submissions are not")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        problems.append(f"{name!r} uses compression method {info.compress_type}; only stored and deflate are accepted")
    return problems


def _archive_problems(members: list[zipfile.ZipInfo], max_bytes: int, max_files: int) -> tuple[list[str], str | None]:
    """(every problem of the archive's member list, the single top folder = submission id or None)."""
    if len(members) > 4 * max_files:   # files and folder entries: refused before any per-member work
        return [f"the archive lists {len(members)} members (files and folders); the limit is {4 * max_files}"], None
    problems = [p for m in members for p in _member_problems(m)]
    members = [m for m in members if m.filename]   # (an empty name is reported above; is_dir() fails on it)
    names = [m.filename.rstrip("/") for m in members]
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    twice = sorted(n for n, c in counts.items() if c > 1)
    if twice:
        problems.append(f"members listed more than once: {', '.join(twice[:5])}")
    deep = sorted(n for n in names if n.count("/") > MAX_DIR_DEPTH + 1)
    if deep:
        problems.append(f"{deep[0][:200]!r} is more than {MAX_DIR_DEPTH} folders deep; a submission needs one or two")
    folders = {n[:i] for n in names for i in range(len(n)) if n[i] == "/"}
    both = sorted(m.filename for m in members if not m.is_dir() and m.filename in folders)
    if both:
        problems.append(f"{both[0][:200]!r} is both a file and a folder in the archive (another member lies inside it)")
    files = [m for m in members if not m.is_dir()]
    if len(files) > max_files:
        problems.append(f"{len(files)} files; the limit is {max_files}")
    declared = sum(m.file_size for m in files)
    if declared > max_bytes:
        problems.append(f"{declared} bytes uncompressed; the limit is {max_bytes}")
    tops = sorted({n.split("/")[0] for n in names if n})
    top = tops[0] if len(tops) == 1 and all("/" in m.filename for m in files) else None
    if not files:
        problems.append("the archive holds no files")
    elif top is None:
        problems.append(f"the files must sit in one folder named after the submission id (found top-level "
                        f"{', '.join(repr(t) for t in tops[:5])}): make the archive with `tito olympics submit`")
    elif not SAFE_ID.fullmatch(top):
        problems.append(f"the top folder {top!r} is not a valid submission id (letters, digits, '_', '.', '-')")
    return problems, top


# What zipfile raises on a damaged or hand-crafted archive besides BadZipFile (found by fuzzing its bytes:
# e.g. NotImplementedError "zip file version 19.0" or "compressed patched data" for a flipped header byte).
DAMAGED = (EOFError, OSError, NotImplementedError, ValueError, RuntimeError, OverflowError)


def _extract(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], top: str, into: Path, max_bytes: int,
             where) -> None:
    """Write the members' bytes under into/ (the path below the top folder), counting the real bytes read."""
    total = 0
    for member in members:
        rel = member.filename[len(top) + 1:].rstrip("/")
        if not rel:
            continue
        target = into / rel
        if member.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as source, open(target, "xb") as sink:
            while chunk := source.read(1 << 16):
                total += len(chunk)
                if total > max_bytes:
                    raise SubmissionError(where, [f"expands past {max_bytes} bytes (its headers said less)"])
                sink.write(chunk)


def archive_limit(max_bytes: int = MAX_TOTAL_BYTES) -> int:
    """The most bytes an archive of at most max_bytes of files can take: deflate adds at most ~0.03% to data it
    cannot compress, and each member's headers and name some hundred bytes (1 MiB is room for thousands)."""
    return max_bytes + max_bytes // 100 + 2**20


def _open_archive(archive: Path, max_bytes: int):
    """The archive opened for reading (a binary file object): it must be a regular file (stat first: a FIFO,
    socket or device is never opened; then O_NONBLOCK and fstat) of at most archive_limit(max_bytes) bytes.
    FileNotFoundError when it is missing or a folder, SubmissionError otherwise."""
    try:
        mode = os.stat(archive).st_mode
    except OSError:
        mode = None
    if mode is None or stat.S_ISDIR(mode):
        raise FileNotFoundError(f"{archive} is not a file: pass a submission archive (.zip)")
    if not stat.S_ISREG(mode):
        raise SubmissionError(archive, [f"is {_file_kind(mode)}, not a regular file (it was not opened): pass a "
                                        f"submission archive (.zip)"])
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        handle = os.fdopen(os.open(archive, flags), "rb")
    except OSError as exc:
        raise SubmissionError(archive, [f"cannot be read ({exc.strerror or exc}): make it readable"]) from None
    info = os.fstat(handle.fileno())
    problem = (f"is {_file_kind(info.st_mode)} now, not a regular file" if not stat.S_ISREG(info.st_mode) else
               f"is {info.st_size} bytes; an archive of at most {max_bytes} bytes of files is at most "
               f"{archive_limit(max_bytes)} bytes: remove unused files and pack it again"
               if info.st_size > archive_limit(max_bytes) else None)
    if problem:
        handle.close()
        raise SubmissionError(archive, [problem])
    return handle


def unpack(archive, dest, max_bytes: int = MAX_TOTAL_BYTES, max_files: int = MAX_FILES) -> Path:
    """Extract a submission archive safely into dest/<id> and return that folder. Refused, with every
    reason, before anything is written: an archive that is not a regular file (never opened) or is larger than
    archive_limit(max_bytes), absolute paths, '..', links, special files, encryption, more than max_files files
    or max_bytes bytes, members both a file and a folder, folders more than MAX_DIR_DEPTH deep, or anything
    outside one top folder. FileExistsError when dest/<id> exists. Extraction goes to a temporary folder
    renamed into place, so a failure leaves nothing behind."""
    archive = Path(archive)
    with _open_archive(archive, max_bytes) as handle:
        return _unpack(archive, handle, Path(dest), max_bytes, max_files)


def _unpack(archive: Path, handle, dest: Path, max_bytes: int, max_files: int) -> Path:
    """unpack's work on the opened archive."""
    try:
        opened = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, *DAMAGED) as exc:
        raise SubmissionError(archive, [f"is not a zip archive ({type(exc).__name__}: {exc}): make it with "
                                        f"`tito olympics submit`"]) from None
    with opened:
        members = opened.infolist()
        problems, top = _archive_problems(members, max_bytes, max_files)
        if problems:
            raise SubmissionError(archive, problems)
        target = dest / top
        if target.exists():
            raise FileExistsError(f"{target} already exists; unpack into another folder or remove it first")
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{top}.", suffix=".unpack", dir=dest))
        try:
            try:
                _extract(opened, members, top, staging, max_bytes, archive)
            except (zipfile.BadZipFile, zlib.error, *DAMAGED) as exc:
                raise SubmissionError(archive, [f"is damaged and cannot be extracted: {type(exc).__name__}: "
                                                f"{exc}"]) from exc
            if target.exists():
                raise FileExistsError(f"{target} appeared while unpacking; remove it and try again")
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


# ------------------------------------------------------------------------------------------- CLI
def _describe(info: dict) -> list[str]:
    """Lines saying what was validated."""
    size = sum((info["folder"] / rel).stat().st_size for rel in info["files"])
    title = f' ("{info["name"]}")' if info["name"] else ""
    return [f"validated {info['folder']}: submission {info['id']}{title} by {info['student_id']}, "
            f"{info['division']} division",
            f"  events: {', '.join(info['events'])}",
            f"  techniques: {', '.join(info['techniques']) or 'none listed'}",
            f"  files: {len(info['files'])} ({size} bytes): {', '.join(info['files'])}"]


def cmd_olympics_submit(args, tree, say) -> int:
    """`tito olympics submit FOLDER [--event EVENT] [--out FILE]`: validate, then pack a deterministic zip.
    Exit 2 for a FOLDER that is missing or not a folder, an unknown --event or an --out that exists (bad
    arguments); 1 for a submission that is not valid."""
    from ..tree import TitoError, UsageError

    given = Path(args.folder)
    if not given.is_dir():
        what = "is a file, not a folder" if given.exists() else "does not exist"
        raise UsageError(f"{given} {what}: pass the folder that holds submission.py and submission.json")
    if args.out is not None and Path(args.out).exists():
        raise UsageError(f"--out {args.out} already exists; nothing was written. Remove it or choose another file")
    if args.event is not None:
        try:
            _parse_event_name(args.event)
        except ValueError as exc:
            raise UsageError(f"--event: {exc}") from None
    try:
        info = validate(args.folder)
        for line in _describe(info):
            say(line)
        path = pack(args.folder, args.out, args.event)
    except SubmissionError as exc:
        raise TitoError(f"the submission is not valid; nothing was written.\n{exc}") from None
    except OSError as exc:            # the archive exists already, or a file cannot be read
        raise TitoError(str(exc)) from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    say(f"archive: {path} ({path.stat().st_size} bytes, sha256 {digest})")
    say(f"hand in {path.name}; the grader re-validates it and runs it in a sandbox (`tito olympics grade`)")
    return 0
