"""Log lines for people (a terminal, or plain lines in a cron log) and for log shippers (JSON).

`--log-format json` writes one JSON object per line with the same keys on every line: time,
level, pipeline, day, event, counts, message (plus run_id, uri, error, done, total when a run
event carries them), so a shipper can index them without parsing text.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import IO, Any

from ..errors import UsageError, safe_text
from ..events import PROGRESS_EVENTS
from ..urls import scrub

FORMATS = ("text", "json")
_OPTIONAL = ("run_id", "uri", "error", "phase", "done", "total", "next_run", "status")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.UTC)
        out: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "pipeline": getattr(record, "pipeline", None),
            "day": getattr(record, "day", None),
            "event": getattr(record, "event", None) or "log",
            "counts": getattr(record, "counts", None) or {},
            "message": record.getMessage(),
        }
        for key in _OPTIONAL:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class HideProgressLines(logging.Filter):
    """On a terminal with a progress bar, the per-file and per-day INFO lines are the bar."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and getattr(record, "event", None) in PROGRESS_EVENTS)


class EscapeControl(logging.Filter):
    """The one place log lines are made safe: a file name or a value holding terminal escapes,
    newlines or bidi overrides is shown escaped (errors.safe_text), never passed to the terminal
    or split into two log lines; a secret a library echoed from a URL it was given is masked
    (urls.scrub), the last line of defence after redact_url."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = safe_text(scrub(record.getMessage())), None
        for key in ("error", "uri"):
            value = getattr(record, key, None)
            if isinstance(value, str):
                setattr(record, key, safe_text(scrub(value)))
        return True


def setup(fmt: str = "text", level: int = logging.INFO, stream: IO[str] | None = None) -> Any:
    """Route the `logroll` logger. Returns the Rich console when logging to a terminal, else None."""
    if fmt not in FORMATS:
        raise UsageError(f"--log-format {fmt!r}: choose text or json")
    stream = stream or sys.stderr
    console = None
    handler: logging.Handler
    if fmt == "json":
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
    elif stream.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        console = Console(file=stream)
        handler = RichHandler(
            console=console, show_path=False, show_time=True, omit_repeated_times=False, markup=False
        )
        handler.setFormatter(logging.Formatter("%(message)s", "%H:%M:%S"))
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(EscapeControl())
    root = logging.getLogger("logroll")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    return console
