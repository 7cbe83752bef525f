"""The student's progress: which modules were completed, when, and with what test counts; and the last
`tito module complete` that failed after a completion (its code is then what the package holds).

Stored as versioned JSON in `.tito/progress.json`:
  schema 1: {"schema_version": 1, "modules": {slug: completion record}}
  schema 2: schema 1 plus "failed": {slug: the last failed `module complete` of that module}
Schema 1 files are read as they are and rewritten as schema 2 on the next update; no record is ever
dropped (a failed attempt never removes a completion). Updates hold a lock and replace the file
atomically; a file that is damaged or from an unknown version is reported and never overwritten.
"""
from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path

from .fsutil import atomic_write_text, dumps_json
from .tree import TitoError

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


class Progress:
    def __init__(self, root: Path):
        self.path = Path(root) / ".tito" / "progress.json"

    def _read(self) -> dict:
        if not self.path.exists():
            return {"modules": {}, "failed": {}}
        shown = self.path.as_posix()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise TitoError(
                f"{shown} is damaged ({exc}); it was left untouched. Move it aside (your completions are "
                "listed in it) and run `tito module complete N` again for each module"
            ) from exc
        if (not isinstance(data, dict) or data.get("schema_version") not in READABLE_VERSIONS
                or not isinstance(data.get("modules"), dict) or not isinstance(data.get("failed", {}), dict)):
            raise TitoError(
                f"{shown} is not a tito progress file of schema version {' or '.join(map(str, READABLE_VERSIONS))}; "
                "it was left untouched. Move it aside and run `tito module complete N` again"
            )
        return {"modules": data["modules"], "failed": data.get("failed", {})}

    def load(self) -> dict:
        """{slug: record} of completed modules; {} when nothing was recorded yet."""
        return self._read()["modules"]

    def load_failed(self) -> dict:
        """{slug: record} of the last failed `module complete` of each module (kept until one passes)."""
        return self._read()["failed"]

    @contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, data: dict) -> None:
        atomic_write_text(self.path, dumps_json({"schema_version": SCHEMA_VERSION, "modules": data["modules"],
                                                 "failed": data["failed"]}))

    def record(self, slug: str, entry: dict) -> None:
        """Record one completed module (read-modify-write under the lock, atomic replace); a failure recorded
        for it before is over."""
        with self._locked():
            data = self._read()
            data["modules"][slug] = entry
            data["failed"].pop(slug, None)
            self._write(data)

    def record_failure(self, slug: str, entry: dict) -> None:
        """Record a failed `module complete` (the completion record, if any, is kept as it was)."""
        with self._locked():
            data = self._read()
            data["failed"][slug] = entry
            self._write(data)
