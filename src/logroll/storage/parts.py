"""Staged parts kept under a destination in an object store, `DEST/_logroll/staged/...`, with a
local cache of them: any machine can build any day from the parts another machine staged.

A part is written once under a fresh folder name and never changed, so a cached file is good
when its size matches the object's. Parts go up before the catalog commit that points at them;
they come down when a day is built and its parts are not in the cache. Parts no catalog row
points at (a run that died before its commit, a replaced file version) are removed once they
are older than the retention: a run that lost its lease may still be uploading parts that a
listing would see, and only age tells its parts from a dead run's.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ..dates import utc_now
from ..errors import StorageError
from .files import Storage, join

PREFIX = "_logroll"
COMPLETE = ".complete"  # in a cached part folder: every file of it is here
DEFAULT_RETENTION = 3600.0  # seconds; LOGROLL_STAGED_RETENTION


def retention_from_env() -> float:
    try:
        return max(0.0, float(os.environ.get("LOGROLL_STAGED_RETENTION") or DEFAULT_RETENTION))
    except ValueError:
        return DEFAULT_RETENTION


class RemoteParts:
    """The staged parts of one destination: `root` is the local cache that mirrors DEST/_logroll/."""

    def __init__(self, dest: Storage, root: Path):
        self.dest = dest
        self.root = root
        self._listing: dict[str, int] | None = None
        self._lock = threading.Lock()

    def upload(self, part_dir: Path) -> None:
        """Every file of a freshly written part folder, to the same place under DEST/_logroll/."""
        for path in sorted(p for p in part_dir.rglob("*") if p.is_file() and p.name != COMPLETE):
            rel = path.relative_to(self.root).as_posix()
            self.dest.put_atomic(path, f"{PREFIX}/{rel}")
        for day_dir in part_dir.iterdir() if part_dir.is_dir() else ():
            (day_dir / COMPLETE).touch()

    def localize(self, stored: str) -> None:
        """Make the files of the part `stored` (a glob relative to the cache root, such as
        staged/P/KEY/__day=D/*.parquet) present in the cache, downloading what is missing."""
        folder = PurePosixPath(stored).parent.as_posix()
        if (self.root / folder / COMPLETE).is_file():
            return
        wanted = self._listed(folder)
        if not wanted:
            raise StorageError(
                f"staged part {join(self.dest.url, PREFIX, folder)} is missing: the day cannot be built "
                "from it; run with --force to stage its source files again"
            )
        for rel, size in wanted.items():
            local = self.root / rel
            if local.is_file() and local.stat().st_size == size:
                continue
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(f"{local.name}.part-{os.getpid()}-{threading.get_ident()}")
            self.dest.fetch(join(self.dest.url, PREFIX, rel), tmp, size=size)
            os.replace(tmp, local)
        (self.root / folder / COMPLETE).touch()

    def _listed(self, folder: str) -> dict[str, int]:
        """Files under `folder` (relative to the cache root) in the destination, from one listing of
        the pipeline's staged parts per run, listed again once when a folder is not in it."""
        pipeline_dir = "/".join(folder.split("/")[:2])  # staged/PIPELINE
        with self._lock:
            for fresh in (False, True):
                if self._listing is None or fresh:
                    self._listing = {
                        rel.removeprefix(f"{PREFIX}/"): size
                        for rel, size, _ in self.dest.tree(f"{PREFIX}/{pipeline_dir}")
                    }
                found = {r: s for r, s in self._listing.items() if r.startswith(folder + "/")}
                if found:
                    return found
        return {}

    def collect_garbage(self, pipeline: str, live: Iterable[str], retention: float) -> list[str]:
        """Remove the part folders of `pipeline` that no catalog row points at (`live`: their
        names) and that are older than `retention` seconds; returns the folders removed."""
        keep = set(live)
        folders: dict[str, list[str]] = {}
        newest: dict[str, dt.datetime] = {}
        for rel, _, modified in self.dest.tree(f"{PREFIX}/staged/{pipeline}"):
            parts = rel.split("/")
            if len(parts) < 5:
                continue
            name = parts[3]
            folders.setdefault(name, []).append(rel)
            when = modified or utc_now()
            newest[name] = max(newest.get(name, when), when)
        cutoff = utc_now() - dt.timedelta(seconds=retention)
        gone = [n for n in sorted(folders) if n not in keep and newest[n] <= cutoff]
        self.dest.remove(*[rel for n in gone for rel in folders[n]])
        with self._lock:
            self._listing = None
        return gone
