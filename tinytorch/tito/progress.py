"""The student's progress: which modules were completed, when, and with what test counts.

Stored as versioned JSON in `.tito/progress.json`. Updates hold a lock and replace the file
atomically; a file that is damaged or from an unknown version is reported and never overwritten.
"""
from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path

from .fsutil import atomic_write_text, dumps_json
from .tree import TitoError

SCHEMA_VERSION = 1


class Progress:
    def __init__(self, root: Path):
        self.path = Path(root) / ".tito" / "progress.json"

    def load(self) -> dict:
        """{slug: record} of completed modules; {} when nothing was recorded yet."""
        if not self.path.exists():
            return {}
        shown = self.path.as_posix()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise TitoError(
                f"{shown} is damaged ({exc}); it was left untouched. Move it aside (your completions are "
                "listed in it) and run `tito module complete N` again for each module"
            ) from exc
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION or not isinstance(data.get("modules"), dict):
            raise TitoError(
                f"{shown} is not a tito progress file of schema version {SCHEMA_VERSION}; it was left untouched. "
                "Move it aside and run `tito module complete N` again"
            )
        return data["modules"]

    @contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def record(self, slug: str, entry: dict) -> None:
        """Record one completed module (read-modify-write under the lock, atomic replace)."""
        with self._locked():
            modules = self.load()
            modules[slug] = entry
            atomic_write_text(self.path, dumps_json({"schema_version": SCHEMA_VERSION, "modules": modules}))
