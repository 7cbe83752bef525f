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
"""
from __future__ import annotations

import ast
import difflib
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

MAX_TOTAL_BYTES = 20 * 2**20   # 20 MiB: the digits CNN in float32 is ~40 KB, so this leaves room for any variant
MAX_FILES = 200
MAX_SCANNED = 10_000           # stop walking a folder this big: it is almost certainly the wrong folder
MAX_TEXT = 200                 # longest student_id / name / technique, in characters
MAX_JSON_BYTES = 64 * 2**10    # submission.json is a few hundred bytes; a bigger one is not read at all
MAX_SOURCE_BYTES = 2 * 2**20   # submission.py is code: weights belong in files beside it (np.load)
MAX_PROBLEM_CHARS = 600        # one problem's text is cut to this (hostile input must not make reports huge)
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


# ------------------------------------------------------------------------------------------- walking a folder
def _entries(folder: Path) -> tuple[list[tuple[str, Path, str]], bool]:
    """([(relative posix path, path, kind)] sorted by path, truncated); kind is "file", "symlink" or "other".
    Links are never followed; at most MAX_SCANNED entries are listed (truncated=True when there were more)."""
    found, stack = [], [folder]
    while stack:
        current = stack.pop()
        with os.scandir(current) as listing:
            for entry in listing:
                path = Path(entry.path)
                is_dir = entry.is_dir(follow_symlinks=False)
                if entry.name in SKIPPED_DIRS if is_dir else entry.name.endswith(SKIPPED_SUFFIXES):
                    continue   # bytecode caches, which Python recreates: never part of a submission
                if len(found) >= MAX_SCANNED:
                    return sorted(found), True
                rel = path.relative_to(folder).as_posix()
                if entry.is_symlink():
                    found.append((rel, path, "symlink"))
                elif is_dir:
                    stack.append(path)
                elif entry.is_file(follow_symlinks=False):
                    found.append((rel, path, "file"))
                else:
                    found.append((rel, path, "other"))
    return sorted(found), False


def _link_problem(folder: Path, rel: str, path: Path) -> str:
    """Why the symbolic link rel cannot be submitted (archives hold regular files only)."""
    try:
        target = os.readlink(path)
        resolved = (path.parent / target).resolve()
    except (OSError, RuntimeError):   # gone meanwhile, or a loop of links (which resolve() refuses)
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


def _check_files(folder: Path, problems: list[str]) -> list[str]:
    """Relative paths of the folder's regular files; adds a problem for links, special files, odd names,
    and too many files or bytes (and for a folder that cannot be read)."""
    try:
        entries, truncated = _entries(folder)
    except OSError as exc:
        problems.append(f"the folder cannot be read ({exc.strerror or exc}): make it and its files readable")
        return []
    if truncated:
        problems.append(f"the folder holds more than {MAX_SCANNED} entries: is this the right folder? "
                        f"A submission holds at most {MAX_FILES} files")
    files, sizes = [], {}
    for rel, path, kind in entries:
        name_problem = _name_problem(rel)
        if name_problem:
            problems.append(name_problem)
        if kind == "symlink":
            problems.append(_link_problem(folder, rel, path))
        elif kind == "other":
            problems.append(f"{rel} is not a regular file (a pipe, socket or device); remove it")
        else:
            try:
                sizes[rel] = path.lstat().st_size
            except OSError as exc:
                problems.append(f"{rel} cannot be read ({exc.strerror or exc}): make it readable or remove it")
                continue
            files.append(rel)
    total = sum(sizes.values())
    if len(files) > MAX_FILES and not truncated:
        problems.append(f"the folder holds {len(files)} files; the limit is {MAX_FILES}: remove files build_model() "
                        f"does not need (or combine weights into one .npz)")
    if total > MAX_TOTAL_BYTES:
        largest = ", ".join(f"{rel} ({sizes[rel] / 2**20:.1f} MiB)" for rel in sorted(sizes, key=sizes.get, reverse=True)[:3])
        problems.append(f"the folder holds {total} bytes ({total / 2**20:.1f} MiB); the limit is {MAX_TOTAL_BYTES} "
                        f"bytes (20 MiB): remove unused files; the largest are {largest}")
    return files


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


def _read_text(path: Path, rel: str, problems: list[str], max_bytes: int) -> str | None:
    """The file as text (UTF-8, a leading BOM allowed), or None with a problem added. A file bigger than
    max_bytes is not read at all (only its first max_bytes + 1 bytes are ever touched)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
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


def _load_meta(path: Path, problems: list[str]):
    """Parsed submission.json, or None with the problem (line and column for syntax errors) added."""
    text = _read_text(path, "submission.json", problems, MAX_JSON_BYTES)
    if text is None:
        return None
    if not text.strip():
        problems.append(f"submission.json is empty: write your entry into it, e.g. {EXAMPLE_JSON}")
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
    except RecursionError:
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


def _check_source(path: Path, problems: list[str]) -> None:
    """submission.py parses and defines build_model() at top level, callable with no arguments (never run)."""
    text = _read_text(path, "submission.py", problems, MAX_SOURCE_BYTES)
    if text is None:
        return
    try:
        tree = ast.parse(text, filename="submission.py")
    except SyntaxError as exc:
        shown = f" (the line reads {_short(exc.text.strip(), 70)})" if exc.text and exc.text.strip() else ""
        problems.append(f"submission.py has a syntax error at line {exc.lineno}, column {exc.offset}: {exc.msg}{shown}; fix it")
        return
    except (RecursionError, MemoryError):
        problems.append("submission.py is nested too deeply for Python's parser (an expression thousands of levels "
                        "deep): simplify it")
        return
    except ValueError as exc:
        problems.append(f"submission.py cannot be parsed: {exc}")
        return
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
    """Whether rel is a regular file at the top of the folder; adds a problem otherwise."""
    if rel in files:
        return True
    path = folder / rel
    if path.is_dir() and not path.is_symlink():
        problems.append(f"{rel} is a folder; it must be a file: {hint}")
    elif not path.is_symlink():   # links are reported by _check_files
        problems.append(f"{rel} is missing: {hint}")
    return False


def validate(folder) -> dict:
    """Check a submission folder WITHOUT running it. Returns {"id", "student_id", "events" (event values),
    "techniques", "division", "name" (None when not given), "folder" (resolved Path), "files" (sorted relative
    paths)}; raises SubmissionError listing every problem found."""
    given = Path(folder)
    if not given.is_dir():
        what = "does not exist" if not given.exists() else "is not a folder"
        raise SubmissionError(given, [f"{what}: pass the folder that holds submission.py and submission.json"])
    folder = given.resolve()
    problems: list[str] = []
    sub_id = _folder_id(folder, problems)
    files = _check_files(folder, problems)
    meta = {}
    if _required_file(folder, "submission.json", files, problems, f"create it, e.g. {EXAMPLE_JSON}"):
        loaded = _load_meta(folder / "submission.json", problems)
        if loaded is not None:
            meta = _check_meta(loaded, problems)
    if _required_file(folder, "submission.py", files, problems, "create it with `def build_model():` returning your model"):
        _check_source(folder / "submission.py", problems)
    if problems:
        raise SubmissionError(given, problems)
    return {"id": sub_id, "student_id": meta["student_id"], "events": meta["events"], "techniques": meta["techniques"],
            "division": meta["division"], "name": meta["name"], "folder": folder, "files": files}


def content_sha256(folder) -> str:
    """sha256 of the folder's contents: for every entry in sorted relative-path order, the 8-byte big-endian
    length of its UTF-8 path, the path, the 8-byte length of its bytes, the bytes. Regular files contribute
    their contents; a symbolic link contributes b"symlink:" + its target and any other special file b"special",
    so every change shows (nothing is followed or skipped except bytecode caches).

    Files are read in chunks, and a folder whose files add up to more than MAX_TOTAL_BYTES is refused
    (SubmissionError) before any is read: it cannot be a valid submission, and hashing a huge (or sparse)
    file would only stall the grader."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionError(folder, ["is not a folder: pass a submission folder"])
    entries, truncated = _entries(folder.resolve())
    if truncated:
        raise SubmissionError(folder, [f"holds more than {MAX_SCANNED} entries: is this a submission folder?"])
    sizes = {rel: path.lstat().st_size for rel, path, kind in entries if kind == "file"}
    if sum(sizes.values()) > MAX_TOTAL_BYTES:
        raise SubmissionError(folder, [f"holds {sum(sizes.values())} bytes, more than the {MAX_TOTAL_BYTES}-byte limit"])
    digest = hashlib.sha256()

    def part(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)

    for rel, path, kind in entries:
        part(rel.encode("utf-8", "surrogateescape"))
        if kind != "file":
            part(b"symlink:" + os.fsencode(os.readlink(path)) if kind == "symlink" else b"special")
            continue
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            digest.update(size.to_bytes(8, "big"))
            left = size
            while left and (chunk := handle.read(min(left, 1 << 20))):
                digest.update(chunk)
                left -= len(chunk)
            if left or handle.read(1):
                raise SubmissionError(folder, [f"{rel} changed size while it was read: stop writing into the folder"])
    return digest.hexdigest()


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
            data = (info["folder"] / rel).read_bytes()
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
    problems = [p for m in members for p in _member_problems(m)]
    members = [m for m in members if m.filename]   # (an empty name is reported above; is_dir() fails on it)
    names = [m.filename.rstrip("/") for m in members]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        problems.append(f"members listed more than once: {', '.join(twice[:5])}")
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


def _extract(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], top: str, into: Path, max_bytes: int) -> None:
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
                    raise SubmissionError(archive.filename, [f"expands past {max_bytes} bytes (its headers said less)"])
                sink.write(chunk)


def unpack(archive, dest, max_bytes: int = MAX_TOTAL_BYTES, max_files: int = MAX_FILES) -> Path:
    """Extract a submission archive safely into dest/<id> and return that folder. Refused, with every
    reason, before anything is written: absolute paths, '..', links, special files, encryption, more than
    max_files files or max_bytes bytes, or anything outside one top folder. FileExistsError when dest/<id>
    exists. Extraction goes to a temporary folder renamed into place, so a failure leaves nothing behind."""
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive} is not a file: pass a submission archive (.zip)")
    try:
        opened = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, *DAMAGED) as exc:
        raise SubmissionError(archive, [f"is not a zip archive ({type(exc).__name__}: {exc}): make it with "
                                        f"`tito olympics submit`"]) from None
    with opened:
        members = opened.infolist()
        problems, top = _archive_problems(members, max_bytes, max_files)
        if problems:
            raise SubmissionError(archive, problems)
        dest = Path(dest)
        target = dest / top
        if target.exists():
            raise FileExistsError(f"{target} already exists; unpack into another folder or remove it first")
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{top}.", suffix=".unpack", dir=dest))
        try:
            _extract(opened, members, top, staging, max_bytes)
            if target.exists():
                raise FileExistsError(f"{target} appeared while unpacking; remove it and try again")
            staging.rename(target)
        except (zipfile.BadZipFile, zlib.error, *DAMAGED) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, FileExistsError):
                raise
            raise SubmissionError(archive, [f"is damaged and cannot be extracted: {type(exc).__name__}: {exc}"]) from exc
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
