"""The stream's progress line: events, events/s while busy, rejected lines, lag."""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO


class ProgressLine(Protocol):
    """Where the stream's progress line goes: `show` replaces the line, `end` finishes it."""

    def show(self, text: str) -> None: ...

    def end(self) -> None: ...


class TerminalLine:
    """A progress line redrawn in place with a carriage return (no logging on the same stream)."""

    def __init__(self, out: TextIO):
        self.out = out
        self.drawn = False

    def show(self, text: str) -> None:
        self.out.write(f"\r{text}\x1b[K")
        self.out.flush()
        self.drawn = True

    def end(self) -> None:
        if self.drawn:
            self.out.write("\n")
            self.out.flush()


class StreamProgress:
    """One line on a terminal, redrawn twice a second: events, events/s while busy, rejected, lag."""

    def __init__(self, out: ProgressLine | None, name: str):
        self.out = out
        self.name = name
        self.last = 0.0

    def tick(self, report: Any, lag: str, force: bool = False) -> None:
        if self.out is None:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        self.out.show(
            f"{self.name}: {report.rows_read:,} events ({report.events_per_second:,.0f}/s), "
            f"{report.rows_rejected:,} rejected, lag {lag}"
        )

    def end(self) -> None:
        if self.out is not None:
            self.out.end()


def progress_stream(enabled: bool | ProgressLine | None) -> ProgressLine | None:
    """A line on stderr when it is a terminal (or when asked), else None; a ProgressLine as it is."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if enabled is True:
        return TerminalLine(sys.stderr)
    return enabled or None
