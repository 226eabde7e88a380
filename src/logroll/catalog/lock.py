"""One run per pipeline and state at a time: a lock row in the catalog, with a heartbeat.

The lock lives in the catalog itself, so it covers every process that shares a state (cron, the
foreground scheduler, a hand-typed run; several machines on one PostgreSQL state). A holder
that died never blocks forever: on the same host its pid is checked, and on any host a
heartbeat older than `ttl` seconds frees the lock.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from types import TracebackType
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from ..dates import utc_now
from ..errors import LockedError
from ..proc import pid_alive
from . import schema as s
from .store import Catalog

log = logging.getLogger("logroll")

# A live holder beats every HEARTBEAT seconds; a lock not beaten for TTL seconds is free.
HEARTBEAT = 15.0
TTL = 120.0


def lock_name(pipeline: str) -> str:
    return f"run:{pipeline}"


def holder(catalog: Catalog, name: str) -> dict[str, Any] | None:
    """The current holder of a lock (pid, host, started_at, heartbeat_at, stale), or None."""
    with catalog.engine.connect() as conn:
        row = conn.execute(select(s.locks).where(s.locks.c.name == name)).mappings().first()
    if row is None:
        return None
    out = dict(row)
    out["stale"] = _stale(out, TTL)
    out.pop("token", None)
    return out


def _stale(row: dict[str, Any], ttl: float) -> str | None:
    """Why a holder is known dead, or None when it may still be running."""
    age = (utc_now() - row["heartbeat_at"]).total_seconds()
    if age > ttl:
        return f"no heartbeat for {age:.0f}s"
    if row["host"] == socket.gethostname() and not pid_alive(int(row["pid"])):
        return f"pid {row['pid']} is not running"
    return None


def describe(row: dict[str, Any]) -> str:
    age = max(0.0, (utc_now() - row["heartbeat_at"]).total_seconds())
    started = row["started_at"].strftime("%Y-%m-%d %H:%M:%S")
    return f"pid {row['pid']} on {row['host']} since {started} UTC, last heartbeat {age:.0f}s ago"


class _Contended(LockedError):
    """Lost a compare-and-swap race; the caller looks again."""


class RunLock:
    """`with RunLock(catalog, "impressions", wait=60):` holds the pipeline's lock for the block."""

    def __init__(
        self,
        catalog: Catalog,
        pipeline: str,
        *,
        wait: float = 0.0,
        ttl: float = TTL,
        heartbeat: float = HEARTBEAT,
        poll: float = 0.5,
    ):
        self.catalog = catalog
        self.pipeline = pipeline
        self.name = lock_name(pipeline)
        self.wait = max(0.0, float(wait))
        self.ttl = ttl
        self.heartbeat = heartbeat
        self.poll = poll
        self.token = uuid.uuid4().hex
        self.lost = False
        self.held = False
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait
        announced = False
        contended = 0
        while True:
            try:
                row = self._try_acquire()
            except (_Contended, IntegrityError, OperationalError):
                # Another run inserted or took the lock over in the same instant: look again.
                contended += 1
                if contended > 100:
                    raise
                time.sleep(random.uniform(0.01, 0.1))
                continue
            if row is None:
                self.held = True
                self._start_heartbeat()
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waited = f" after waiting {self.wait:g}s" if self.wait else ""
                hint = "try again later" if self.wait else "wait for it to finish, or pass --wait SECONDS"
                raise LockedError(
                    f"{self.pipeline} is already running on this state ({describe(row)}){waited}: {hint}"
                )
            if not announced:
                log.info(
                    "waiting up to %gs for the running %s (%s)",
                    self.wait,
                    self.pipeline,
                    describe(row),
                    extra={"event": "lock_wait", "pipeline": self.pipeline},
                )
                announced = True
            time.sleep(min(self.poll, remaining))

    def _try_acquire(self) -> dict[str, Any] | None:
        """None when the lock is now ours, else the live holder's row."""
        now = utc_now()
        mine = dict(
            token=self.token, pid=os.getpid(), host=socket.gethostname(), started_at=now, heartbeat_at=now
        )
        with self.catalog.engine.begin() as conn:
            row = conn.execute(select(s.locks).where(s.locks.c.name == self.name)).mappings().first()
            if row is None:
                conn.execute(insert(s.locks).values(name=self.name, **mine))
                return None
            current = dict(row)
            why = _stale(current, self.ttl)
            if why is None:
                return current
            # Compare-and-swap on the old token: of two runs taking over at once, one wins.
            taken = conn.execute(
                update(s.locks)
                .where(s.locks.c.name == self.name, s.locks.c.token == current["token"])
                .values(**mine)
            ).rowcount
            if taken == 1:
                log.warning(
                    "took over the lock of %s from a run that died (%s)",
                    self.pipeline,
                    why,
                    extra={"event": "lock_taken_over", "pipeline": self.pipeline},
                )
                return None
        raise _Contended()

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._beater = threading.Thread(target=self._beat, name=f"logroll-lock-{self.pipeline}", daemon=True)
        self._beater.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                with self.catalog.engine.begin() as conn:
                    n = conn.execute(
                        update(s.locks)
                        .where(s.locks.c.name == self.name, s.locks.c.token == self.token)
                        .values(heartbeat_at=utc_now())
                    ).rowcount
            except OperationalError as exc:  # a busy catalog: the next beat tries again
                log.debug("lock heartbeat failed: %s", exc)
                continue
            if n == 0 and not self.lost:
                self.lost = True
                log.error(
                    "lost the lock of %s: another run took it over after a missed heartbeat",
                    self.pipeline,
                    extra={"event": "lock_lost", "pipeline": self.pipeline},
                )

    def release(self) -> None:
        """Free the lock if this object holds it (a no-op otherwise)."""
        if not self.held:
            return
        self.held = False
        self._stop.set()
        if self._beater is not None:
            self._beater.join(timeout=10)
            self._beater = None
        for attempt in range(20):
            try:
                with self.catalog.engine.begin() as conn:
                    conn.execute(
                        delete(s.locks).where(s.locks.c.name == self.name, s.locks.c.token == self.token)
                    )
                return
            except OperationalError:
                time.sleep(0.1 * (attempt + 1))
        log.warning("could not release the lock of %s; the next run takes it over", self.pipeline)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
