"""`logroll` command line: each command parses options, calls one API function, prints its report.

quick.py     `run` with nothing to do, answered with the standard library alone (or handed over)
app.py       the Typer app, shared options, logging, library errors -> one line and an exit code
run.py       run, status
schedule.py  schedule (scheduler.py: the loop that runs a pipeline at every cron time)
tools.py     report, validate, demo, impressions
ingest.py    scan, work, retry (and ingest's run and status)
stream.py    stream
views.py     Rich tables; progress.py progress bars; logs.py log lines (text or JSON)

The commands are registered when the app is first asked for, so that `logroll run` with nothing
to do never loads Typer, the engines or the catalog's SQLAlchemy.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    from .quick import answer

    code = answer(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    commands()
    from .app import main as full_run

    full_run()


def commands() -> Any:
    """The Typer app with every command registered."""
    from . import ingest, run, schedule, stream, tools  # noqa: F401  (run, schedule, tools add their commands)
    from .app import app, command

    if not getattr(app, "_logroll_complete", False):
        # After those of run, schedule and tools, in the order --help lists them.
        command("scan")(ingest.scan)
        command("work")(ingest.work)
        command("retry")(ingest.retry)
        command()(stream.stream)
        app._logroll_complete = True  # type: ignore[attr-defined]
    # `from .app import ...` bound the submodule to this name; the app is what callers mean.
    globals()["app"] = app
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        return commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
