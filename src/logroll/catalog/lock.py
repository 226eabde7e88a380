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
from ..errors import LeaseLost, LockedError, first_line
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
    out["stale"] = stale_reason(out, TTL)
    out.pop("token", None)
    return out


def stale_reason(row: dict[str, Any], ttl: float) -> str | None:
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


class Contended(LockedError):
    """Lost a compare-and-swap race; the caller looks again."""


class HeldLock:
    """One holder at a time, with a heartbeat; a holder that died is taken over.

    Subclasses say how to take (`try_acquire`: None when taken, else the live holder's row),
    beat (`beat_once`: False when the lock is no longer ours) and free (`free`) the lock;
    waiting, the heartbeat thread and the messages are here. `with lock:` holds it for a block.
    """

    what = "this state"

    def __init__(self, pipeline: str, *, wait: float, ttl: float, heartbeat: float, poll: float):
        self.pipeline = pipeline
        self.wait = max(0.0, float(wait))
        self.ttl = ttl
        self.heartbeat = heartbeat
        self.poll = poll
        self.token = uuid.uuid4().hex
        self.lost = False
        self.held = False
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    def try_acquire(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def beat_once(self) -> bool:
        raise NotImplementedError

    def free(self) -> None:
        raise NotImplementedError

    def mine(self) -> dict[str, Any]:
        now = utc_now()
        return dict(
            token=self.token, pid=os.getpid(), host=socket.gethostname(), started_at=now, heartbeat_at=now
        )

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait
        announced = False
        contended = 0
        while True:
            try:
                row = self.try_acquire()
            except (Contended, IntegrityError, OperationalError):
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
                running = row.get("pipeline") or self.pipeline
                raise LockedError(
                    f"{running} is already running on {self.what} ({describe(row)}){waited}: {hint}"
                )
            if not announced:
                log.info(
                    "waiting up to %gs for the running %s (%s)",
                    self.wait,
                    row.get("pipeline") or self.pipeline,
                    describe(row),
                    extra={"event": "lock_wait", "pipeline": self.pipeline},
                )
                announced = True
            time.sleep(min(self.poll, remaining))

    def took_over(self, why: str) -> None:
        log.warning(
            "took over the lock of %s from a run that died (%s)",
            self.pipeline,
            why,
            extra={"event": "lock_taken_over", "pipeline": self.pipeline},
        )

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._beater = threading.Thread(target=self._beat, name=f"logroll-lock-{self.pipeline}", daemon=True)
        self._beater.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                still_mine = self.beat_once()
            except Exception as exc:  # a busy catalog or an unreachable store: the next beat tries again
                log.debug("lock heartbeat failed: %s", first_line(exc))
                continue
            if not still_mine:
                self.mark_lost()

    def mark_lost(self) -> None:
        if not self.lost:
            self.lost = True
            log.error(
                "lost the lock of %s: another run took it over after a missed heartbeat",
                self.pipeline,
                extra={"event": "lock_lost", "pipeline": self.pipeline},
            )

    def check(self) -> None:
        """Raise LeaseLost when the lock is no longer this run's: it must not commit again."""
        if self.lost:
            raise LeaseLost(
                f"{self.pipeline}: another run took over {self.what} while this one was stalled; "
                "this run stopped before its next commit: run again to continue from the other's"
            )

    def renew(self) -> None:
        """Before a commit: raise LeaseLost if the lock is no longer this run's."""
        self.check()

    def release(self) -> None:
        """Free the lock if this object holds it (a no-op otherwise)."""
        if not self.held:
            return
        self.held = False
        self._stop.set()
        if self._beater is not None:
            self._beater.join(timeout=10)
            self._beater = None
        if not self.lost:
            self.free()

    def __enter__(self) -> HeldLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class RunLock(HeldLock):
    """The lock row of a pipeline in the catalog: `with RunLock(catalog, "impressions", wait=60):`."""

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
        super().__init__(pipeline, wait=wait, ttl=ttl, heartbeat=heartbeat, poll=poll)
        self.catalog = catalog
        self.name = lock_name(pipeline)

    def try_acquire(self) -> dict[str, Any] | None:
        mine = self.mine()
        with self.catalog.engine.begin() as conn:
            row = conn.execute(select(s.locks).where(s.locks.c.name == self.name)).mappings().first()
            if row is None:
                conn.execute(insert(s.locks).values(name=self.name, **mine))
                return None
            current = dict(row)
            why = stale_reason(current, self.ttl)
            if why is None:
                return current
            # Compare-and-swap on the old token: of two runs taking over at once, one wins.
            taken = conn.execute(
                update(s.locks)
                .where(s.locks.c.name == self.name, s.locks.c.token == current["token"])
                .values(**mine)
            ).rowcount
            if taken == 1:
                self.took_over(why)
                return None
        raise Contended()

    def beat_once(self) -> bool:
        with self.catalog.engine.begin() as conn:
            n = conn.execute(
                update(s.locks)
                .where(s.locks.c.name == self.name, s.locks.c.token == self.token)
                .values(heartbeat_at=utc_now())
            ).rowcount
        return n != 0

    def free(self) -> None:
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
