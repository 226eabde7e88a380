"""A SQLite catalog whose truth is an object, `DEST/_logroll/catalog.sqlite`, in an object store.

A run downloads it (noting its ETag) into its local cache, works on that copy, and commits it
back at checkpoints with a conditional PUT: `If-Match: <the ETag it started from>`, or
`If-None-Match: *` for the first one. Of two runs that started from one version, only one can
commit; the other gets LeaseLost and stops. What is committed is a consistent snapshot
(`VACUUM INTO`), taken while parallel workers may still be writing the working copy.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from ..errors import LeaseLost, WriteConflict
from ..proc import pid_alive
from ..storage.files import Storage, join

CATALOG = "_logroll/catalog.sqlite"
_SIDE_FILES = ("-wal", "-shm", "-journal")


def remove_sqlite(path: Path) -> None:
    """A SQLite file and its WAL, shared-memory and journal files."""
    for suffix in ("", *_SIDE_FILES):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _clear_stale(folder: Path) -> None:
    """Working copies (catalog-PID.sqlite) of processes that no longer run."""
    for path in folder.glob("catalog-*.sqlite"):
        pid = path.stem.removeprefix("catalog-")
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            remove_sqlite(path)


class RemoteCatalog:
    """The catalog object of a destination and the local copy a run works on."""

    def __init__(self, dest: Storage, local: Path):
        self.dest = dest
        self.local = local
        self.etag: str | None = None

    @property
    def url(self) -> str:
        return join(self.dest.url, CATALOG)

    def exists(self) -> bool:
        return self.dest.exists(CATALOG)

    def pull(self, target: Path | None = None) -> bool:
        """Download the catalog to `target` (default: the working copy), replacing what is there;
        False (and no file) when the destination has none yet."""
        target = target or self.local
        if target == self.local:
            _clear_stale(self.local.parent)
        got = self.dest.read_object(CATALOG)
        remove_sqlite(target)
        if target == self.local:
            self.etag = got[1] if got else None
        if got is None:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.pull-{os.getpid()}")
        tmp.write_bytes(got[0])
        os.replace(tmp, target)
        return True

    def commit(self) -> None:
        """Upload a snapshot of the working copy over the version this run last saw."""
        snapshot = self.local.with_name(f"{self.local.name}.commit-{os.getpid()}")
        snapshot.unlink(missing_ok=True)
        try:
            con = sqlite3.connect(self.local, timeout=60)
            try:
                con.execute("VACUUM INTO ?", (str(snapshot),))
            finally:
                con.close()
            data = snapshot.read_bytes()
            try:
                self.etag = self.dest.write_object(
                    CATALOG, data, if_match=self.etag, create=self.etag is None
                )
            except WriteConflict:
                raise LeaseLost(
                    f"another run committed to the state at {self.url} since this run read it; "
                    "this run stopped before its next commit: run again to continue from the other's"
                ) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                snapshot.unlink()
