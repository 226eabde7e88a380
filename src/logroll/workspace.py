"""Where a destination's outputs, state, staged parts, spool and quarantine live."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .sinks import is_sink_url
from .storage.files import Storage


@dataclass
class Workspace:
    """Where a pipeline's outputs, state and working files live for one destination."""

    dest: Storage
    work_dir: Path
    state: str

    @property
    def quarantine_root(self) -> Path:
        return self.work_dir / "quarantine"

    def staged_root(self, pipeline: str) -> Path:
        return self.work_dir / "staged" / pipeline

    def part_path(self, stored: str) -> str:
        """The local path of a part as the catalog names it (relative; old catalogs: absolute)."""
        return str(self.work_dir / stored)

    def stored_part(self, path: str) -> str:
        """How the catalog names a part: relative to the working root, so any machine resolves it."""
        try:
            return Path(path).relative_to(self.work_dir).as_posix()
        except ValueError:
            return path

    def day_state_root(self, pipeline: str) -> Path:
        """Where each day's maintained unique rows live (engines/duckdb_build.py), one folder a day.
        The catalog names these files as it names parts (stored_part)."""
        return self.work_dir / "days" / pipeline


def open_workspace(
    dest: str,
    state: str | None = None,
    work_dir: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Workspace:
    storage: Any
    if is_sink_url(dest):  # a database: one table per output (sinks/destination.py)
        from .sinks.destination import TableDestination

        storage = TableDestination(dest)
    else:
        storage = Storage(dest, storage_options)
    if work_dir:
        wd = Path(work_dir)
    elif storage.local:
        wd = Path(storage.url) / "_logroll"
    else:
        # A remote destination keeps staged parts in a local cache named after it; pass
        # --work-dir (and a PostgreSQL --state) to share them between machines.
        digest = hashlib.sha256(storage.url.encode()).hexdigest()[:16]
        wd = Path.home() / ".cache" / "logroll" / digest
    wd.mkdir(parents=True, exist_ok=True)
    return Workspace(storage, wd, state or str(wd / "catalog.sqlite"))
