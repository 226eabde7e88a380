"""A Rich progress bar for a run on a terminal: files staged, then days built, rows/s and ETA.

It is an `on_event` callback for api.run; the library itself never prints.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..events import RunEvent

_PHASES = {"stage": "stage files", "build": "build days"}
_STEP_EVENTS = {"file_staged", "file_rejected", "file_failed", "day_built", "day_failed"}


class StreamLine:
    """The stream's progress line, drawn by Rich on the console the log lines go through, so a
    log line is printed above the progress line instead of onto it."""

    def __init__(self, console: Any):
        from rich.live import Live
        from rich.text import Text

        self._text = Text
        self.live = Live(Text(""), console=console, transient=False, auto_refresh=False)
        self.started = False

    def show(self, text: str) -> None:
        if not self.started:
            self.live.start()
            self.started = True
        self.live.update(self._text(text), refresh=True)

    def end(self) -> None:
        if self.started:
            self.live.stop()
            self.started = False


class RunProgress:
    def __init__(self, console: Any):
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>16}"),
            TextColumn("{task.fields[failed]}", style="red"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}
        self.rows: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self.started: dict[str, float] = {}

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()

    def __call__(self, ev: RunEvent) -> None:
        phase = ev.phase
        if phase is None:
            return
        if ev.event == f"{phase}_started":
            if ev.total:
                self.tasks[phase] = self.progress.add_task(
                    _PHASES.get(phase, phase), total=ev.total, rate="", failed=""
                )
                self.rows[phase], self.failed[phase] = 0, 0
                self.started[phase] = time.monotonic()
            return
        task = self.tasks.get(phase)
        if task is None or ev.event not in _STEP_EVENTS:
            return
        self.rows[phase] += ev.counts.get("rows_read", 0) or ev.counts.get("rows_in", 0)
        if ev.event.endswith("_failed") or ev.event.endswith("_rejected"):
            self.failed[phase] += 1
        elapsed = max(time.monotonic() - self.started[phase], 1e-6)
        self.progress.update(
            task,
            completed=ev.done,
            rate=f"{self.rows[phase] / elapsed:,.0f} rows/s",
            failed=f"{self.failed[phase]} failed" if self.failed[phase] else "",
        )
