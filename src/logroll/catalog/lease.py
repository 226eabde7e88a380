"""One run at a time on a state kept in an object store: a lease object, `DEST/_logroll/lock`.

It is taken by a create-only PUT (`If-None-Match: *`), renewed by a heartbeat that PUTs over
its own ETag only (`If-Match`), taken over the same way once its holder stopped beating for
`ttl` seconds (or, on the same host, once its pid is gone), and given back by marking it free
over its own ETag. A run that finds its lease changed under it (412) has lost it: it commits
nothing more (see workspace.StateSession.commit, which renews the lease before every commit).
Expiry compares the holder's clock with the reader's: hosts are expected to keep NTP time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from typing import Any

from ..errors import WriteConflict
from ..storage.files import Storage
from .lock import HEARTBEAT, TTL, Contended, HeldLock, stale_reason

LEASE = "_logroll/lock"


def ttl_from_env() -> tuple[float, float]:
    """(ttl, heartbeat) seconds: LOGROLL_LEASE_TTL, heartbeat a quarter of it unless set too."""
    ttl = float(os.environ.get("LOGROLL_LEASE_TTL") or TTL)
    beat = float(os.environ.get("LOGROLL_LEASE_HEARTBEAT") or min(HEARTBEAT, ttl / 4))
    return ttl, beat


def read_holder(dest: Storage) -> tuple[dict[str, Any] | None, str | None]:
    """(the holder's row, the lease object's ETag); the row is None when free or unreadable."""
    got = dest.read_object(LEASE)
    if got is None:
        return None, None
    data, etag = got
    try:
        body = json.loads(data)
        if body.get("released"):
            return None, etag
        row = dict(body)
        for key in ("started_at", "heartbeat_at"):
            row[key] = dt.datetime.fromisoformat(body[key])
        return row, etag
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, etag  # not a lease logroll wrote: free to take (over its ETag)


def holder(dest: Storage) -> dict[str, Any] | None:
    """Who holds the lease right now (pid, host, pipeline, started_at, heartbeat_at, stale), or None."""
    row, _ = read_holder(dest)
    if row is None:
        return None
    row["stale"] = stale_reason(row, float(row.get("ttl") or TTL))
    row.pop("token", None)
    return row


class ObjectLease(HeldLock):
    """`with ObjectLease(dest, "impressions", wait=60):` holds DEST/_logroll/lock for the block."""

    what = "this destination's state"

    def __init__(self, dest: Storage, pipeline: str, *, wait: float = 0.0, poll: float = 0.5):
        ttl, beat = ttl_from_env()
        super().__init__(pipeline, wait=wait, ttl=ttl, heartbeat=beat, poll=poll)
        self.dest = dest
        self.etag: str | None = None
        self.started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self._io = threading.Lock()  # the heartbeat thread and a commit's renewal share the ETag

    def body(self, released: bool = False) -> bytes:
        row = {**self.mine(), "started_at": self.started, "pipeline": self.pipeline, "ttl": self.ttl}
        if released:
            row["released"] = True
        return json.dumps(row, default=lambda v: v.isoformat(), sort_keys=True).encode()

    def try_acquire(self) -> dict[str, Any] | None:
        row, etag = read_holder(self.dest)
        why = None
        if row is not None:
            why = stale_reason(row, max(self.ttl, float(row.get("ttl") or 0)))
            if why is None:
                return row
        try:
            if etag is None:
                self.etag = self.dest.write_object(LEASE, self.body(), create=True)
            else:
                self.etag = self.dest.write_object(LEASE, self.body(), if_match=etag)
        except WriteConflict:
            raise Contended() from None
        if why is not None:
            self.took_over(why)
        return None

    def beat_once(self) -> bool:
        with self._io:
            if self.lost:
                return False
            try:
                self.etag = self.dest.write_object(LEASE, self.body(), if_match=self.etag)
            except WriteConflict:
                return False
            return True

    def renew(self) -> None:
        """Beat now, and raise LeaseLost if the lease is no longer this run's."""
        if not self.beat_once():
            self.mark_lost()
        self.check()

    def free(self) -> None:
        with self._io:
            try:
                self.dest.write_object(LEASE, self.body(released=True), if_match=self.etag)
            except WriteConflict:
                pass  # taken over meanwhile: not ours to free
