"""What a run says as it goes: one event per step, logged and handed to an optional callback.

The library never prints. A caller that wants a progress bar passes `on_event` to `api.run`; a
log shipper reads the same events as JSON lines (logs.JsonFormatter). Every event is also a log
record whose extra fields (event, pipeline, day, counts, ...) the JSON formatter writes out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("logroll")

# Events whose per-item lines a progress bar replaces on a terminal.
PROGRESS_EVENTS = frozenset({"file_staged", "day_built"})


@dataclass(frozen=True)
class RunEvent:
    """One step of a run. `done`/`total` count within the phase (stage: files, build: days)."""

    event: str
    pipeline: str
    run_id: int
    message: str
    level: int = logging.INFO
    phase: str | None = None
    day: str | None = None
    uri: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    done: int = 0
    total: int = 0
    error: str | None = None

    def fields(self) -> dict[str, Any]:
        """The structured part, as a log record's `extra`."""
        out: dict[str, Any] = {"event": self.event, "pipeline": self.pipeline, "run_id": self.run_id}
        for key in ("phase", "day", "uri", "error"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.counts:
            out["counts"] = dict(self.counts)
        if self.total:
            out["done"], out["total"] = self.done, self.total
        return out


EventCallback = Callable[[RunEvent], None]


class Emitter:
    """Logs each event and hands it to the callback; thread-safe (parallel workers share one)."""

    def __init__(self, pipeline: str, run_id: int, callback: EventCallback | None = None):
        self.pipeline = pipeline
        self.run_id = run_id
        self.callback = callback
        self._lock = threading.Lock()
        self._done: dict[str, int] = {}
        self._total: dict[str, int] = {}
        self._callback_failed = False

    def phase(self, phase: str, total: int, message: str) -> None:
        with self._lock:
            self._done[phase], self._total[phase] = 0, total
        self.emit(f"{phase}_started", message, phase=phase, count=False)

    def emit(
        self,
        event: str,
        message: str,
        *,
        level: int = logging.INFO,
        phase: str | None = None,
        count: bool = True,
        day: str | None = None,
        uri: str | None = None,
        counts: dict[str, int] | None = None,
        error: str | None = None,
    ) -> None:
        done = total = 0
        if phase is not None:
            with self._lock:
                if count:
                    self._done[phase] = self._done.get(phase, 0) + 1
                done, total = self._done.get(phase, 0), self._total.get(phase, 0)
            if count and total > 1:
                message = f"{message} [{done}/{total}]"
        ev = RunEvent(
            event=event,
            pipeline=self.pipeline,
            run_id=self.run_id,
            message=message,
            level=level,
            phase=phase,
            day=day,
            uri=uri,
            counts=dict(counts or {}),
            done=done,
            total=total,
            error=error,
        )
        log.log(level, "%s", message, extra=ev.fields())
        if self.callback is not None:
            try:
                self.callback(ev)
            except Exception as exc:  # a broken progress display must never fail a run
                if not self._callback_failed:
                    self._callback_failed = True
                    log.warning(
                        "event callback failed (%s: %s); going on without it", type(exc).__name__, exc
                    )
