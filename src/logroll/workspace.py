"""Where a destination's outputs, state, staged parts, spool and quarantine live, and how a run's
work becomes durable there.

| --dest              | catalog (the truth)                  | staged parts            | working files |
|---------------------|--------------------------------------|-------------------------|---------------|
| a folder            | DEST/_logroll/catalog.sqlite         | DEST/_logroll/staged/   | DEST/_logroll |
| s3://...            | DEST/_logroll/catalog.sqlite (bucket) | DEST/_logroll/staged/ (bucket) | the cache |
| duckdb:// postgresql:// | the cache's catalog.sqlite       | the cache's staged/     | the cache     |

`--state` puts the catalog elsewhere (a SQLite path, or PostgreSQL shared by machines); the
parts stay where the table says. The cache is `--work-dir`, else
`$XDG_CACHE_HOME/logroll/<hash of the destination's identity>` (`~/.cache/...`): a working copy
of an object-store catalog and of the parts, spool and spill files, never the truth. Catalog
rows name parts relative to the working root, so another machine finds them under its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import faults
from .catalog import Catalog
from .catalog.lease import ObjectLease
from .catalog.lease import holder as lease_holder
from .catalog.lock import HeldLock, RunLock
from .catalog.remote import RemoteCatalog
from .catalog.store import PartRow
from .dates import utc_now
from .errors import LockedError, StateNotFound, WriteConflict
from .overview import running
from .sinks import is_sink_url
from .storage.files import Storage, cache_root
from .storage.parts import RemoteParts, retention_from_env
from .urls import identity as url_identity
from .urls import redact_url

log = logging.getLogger("logroll")

ID_FILE = "_logroll/id"


@dataclass
class Workspace:
    """Where a pipeline's outputs, state and working files live for one destination."""

    dest: Any  # Storage, or sinks.destination.TableDestination
    work_dir: Path  # the working root: spool, tmp, staged parts (or their cache)
    state: str  # the catalog to open: a SQLite path or a database URL
    identity: str  # the destination's canonical identity (urls.identity)
    shown_state: str  # where the state's truth is, as reports say it
    remote: RemoteCatalog | None = None  # the catalog's truth is an object under DEST/_logroll/
    parts: RemoteParts | None = None  # the staged parts' truth is under DEST/_logroll/staged/

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

    def dest_id(self, create: bool) -> str | None:
        """The random id written at the destination (`_logroll/id`), created once, conditionally.

        A database destination has no folder to hold one: its canonical identity stands for it.
        None when there is none yet and `create` is False."""
        if self.dest.tables:
            return hashlib.sha256(self.identity.encode()).hexdigest()[:32]
        got = self.dest.read_object(ID_FILE)
        if got is None and create:
            body = {"id": secrets.token_hex(16), "destination": self.identity, "created_at": str(utc_now())}
            try:
                self.dest.write_object(ID_FILE, json.dumps(body, sort_keys=True).encode(), create=True)
                return str(body["id"])
            except WriteConflict:  # another run created it in the same instant: theirs stands
                got = self.dest.read_object(ID_FILE)
        if got is None:
            return None
        try:
            return str(json.loads(got[0])["id"])
        except (ValueError, KeyError, TypeError):
            return hashlib.sha256(got[0]).hexdigest()[:32]  # not ours to parse; still one id


def open_workspace(
    dest: str,
    state: str | None = None,
    work_dir: str | None = None,
    storage_options: dict[str, Any] | None = None,
    read_only: bool = False,
) -> Workspace:
    """The workspace of `dest`. `read_only` creates nothing (no folder, no cache)."""
    storage: Any
    if is_sink_url(dest):  # a database: one table per output (sinks/destination.py)
        from .sinks.destination import TableDestination

        storage = TableDestination(dest)
        ident = url_identity(dest)
    else:
        storage = Storage(dest, storage_options)
        storage.require_folder("--dest")
        ident = url_identity(storage.url, (storage.options or {}).get("endpoint_url"))
    if storage.local and not storage.tables:
        wd = Path(work_dir) if work_dir else Path(storage.url) / "_logroll"
    else:
        # Named after the destination's identity: two endpoints with one bucket name, or two
        # spellings of one database, never share a cache.
        wd = Path(work_dir) if work_dir else cache_root() / hashlib.sha256(ident.encode()).hexdigest()[:16]
    if not read_only:
        wd.mkdir(parents=True, exist_ok=True)
    ws = Workspace(storage, wd, state or str(wd / "catalog.sqlite"), ident, redact_url(state or ""))
    if getattr(storage, "is_s3", False):
        ws.parts = RemoteParts(storage, wd)
        if state is None:
            # A working copy per process: one that lost its lease and goes on writing its own
            # copy can never slip rows into the copy of the run that took over.
            ws.remote = RemoteCatalog(storage, wd / "state" / f"catalog-{os.getpid()}.sqlite")
            ws.state = str(ws.remote.local)
            ws.shown_state = ws.remote.url
    if not ws.shown_state:
        ws.shown_state = redact_url(ws.state)
    return ws


# While days build, an object-store catalog is committed at most this often (seconds).
COMMIT_INTERVAL = 10.0


def commit_interval() -> float:
    """Seconds between two commits of an object-store catalog while days build (LOGROLL_COMMIT_INTERVAL)."""
    try:
        return max(0.0, float(os.environ.get("LOGROLL_COMMIT_INTERVAL") or COMMIT_INTERVAL))
    except ValueError:
        return COMMIT_INTERVAL


class StateSession:
    """A run's hold on a workspace's state: its catalog, its lock, and its commits.

    Rows a run writes are durable when `commit()` returns: at once for a SQLite file or
    PostgreSQL catalog, at the next commit for an object-store catalog (a crash in between only
    redoes work: everything downstream is idempotent). `commit()` renews the lock first, so a
    run that lost it stops before committing again.
    """

    def __init__(self, ws: Workspace, catalog: Catalog, lock: HeldLock | None, pipeline: str):
        self.ws, self.catalog, self.lock, self.pipeline = ws, catalog, lock, pipeline

    def commit(self) -> None:
        if self.lock is not None:
            self.lock.renew()
        if self.ws.remote is not None:
            faults.point("state.before_commit")
            self.ws.remote.commit()
            faults.point("state.committed")

    def keep_parts(self, part_dir: Path | None) -> None:
        """Staged parts go where their truth is before any catalog row points at them."""
        if self.ws.parts is not None and part_dir is not None and part_dir.exists():
            self.ws.parts.upload(part_dir)
            faults.point("stage.parts_uploaded")

    def local_parts(self, rows: list[PartRow]) -> list[PartRow]:
        """The rows with local paths, downloading parts this machine does not have."""
        if self.ws.parts is not None:
            for r in rows:
                if not Path(r.path).is_absolute():
                    self.ws.parts.localize(r.path)
        return [replace(r, path=self.ws.part_path(r.path)) for r in rows]

    def collect_garbage(self, local: list[Path] | None = None) -> None:
        """Part folders no catalog row points at: left by a run that died before its commit, or
        replaced by a newer version of their file; and the `local` files the caller found stale
        (build.state_garbage: day states, which live on this machine only)."""
        for f in local or ():
            faults.point("gc.remove")
            if f.is_dir():
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)
        live = {
            Path(p.path).parent.parent.name
            for rows in self.catalog.parts(self.pipeline).values()
            for p in rows
        }
        root = self.ws.staged_root(self.pipeline)
        for d in sorted(root.iterdir()) if root.exists() else ():
            if d.is_dir() and d.name not in live:
                faults.point("gc.remove")
                shutil.rmtree(d, ignore_errors=True)
        if self.ws.parts is not None:
            if self.lock is not None:
                self.lock.renew()
            self.ws.parts.collect_garbage(self.pipeline, live, retention_from_env())

    def running(self) -> dict[str, Any] | None:
        """Who runs on this state right now (from its lease or lock), if anyone."""
        if self.ws.remote is not None:
            row = lease_holder(self.ws.dest)
            return (
                None if row is None else {k: str(v) if hasattr(v, "isoformat") else v for k, v in row.items()}
            )
        return running(self.catalog, self.pipeline)


@contextlib.contextmanager
def open_state(ws: Workspace, pipeline: str, wait: float = 0.0) -> Iterator[StateSession]:
    """Hold `pipeline`'s lock on the workspace's state for the block, with its catalog open and
    bound to the destination (refused, with the fix, if it serves another one)."""
    dest_id = ws.dest_id(create=True)
    assert dest_id is not None
    lock: HeldLock | None = None
    catalog: Catalog | None = None
    if ws.remote is not None:
        lock = ObjectLease(ws.dest, pipeline, wait=wait)
        lock.acquire()
    try:
        if ws.remote is not None:
            ws.remote.pull()
            catalog = Catalog(ws.state)
        else:
            catalog = Catalog(ws.state)
            lock = RunLock(catalog, pipeline, wait=wait)
            lock.acquire()
        catalog.bind(pipeline, dest_id, ws.identity, redact_url(ws.dest.url))
        assert lock is not None
        yield StateSession(ws, catalog, lock, pipeline)
    finally:
        if lock is not None:  # None: the catalog could not be opened (corrupt, unreachable)
            with contextlib.suppress(LockedError):
                lock.release()
        if catalog is not None:
            catalog.close()


@contextlib.contextmanager
def read_state(ws: Workspace, pipeline: str) -> Iterator[StateSession]:
    """The state, read only (status, report): nothing is created, locked or uploaded. A missing
    destination or state raises StateNotFound (exit 2)."""
    if ws.dest.local and not ws.dest.tables and not ws.dest.exists():
        raise StateNotFound(f"destination {ws.dest.url} does not exist: check --dest")
    if getattr(ws.dest, "is_s3", False):
        ws.dest.require_root("destination")  # a missing bucket or no access says so
    tmp: Path | None = None
    try:
        if ws.remote is not None:
            tmp = Path(tempfile.mkdtemp(prefix="logroll-state-"))
            if not ws.remote.pull(tmp / "catalog.sqlite"):
                raise StateNotFound(
                    f"no state at {ws.remote.url}: nothing has run into {redact_url(ws.dest.url)} yet (check --dest)"
                )
            catalog = Catalog(str(tmp / "catalog.sqlite"), read_only=True)
        else:
            catalog = Catalog(ws.state, read_only=True)
        try:
            dest_id = ws.dest_id(create=False)
            if dest_id is not None:
                catalog.bind(pipeline, dest_id, ws.identity, redact_url(ws.dest.url))
            yield StateSession(ws, catalog, None, pipeline)
        finally:
            catalog.close()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
