"""`logroll` command line: each command parses options, calls one API function, prints its report.

app.py       the Typer app, shared options, logging, library errors -> one line and an exit code
run.py       run, status
schedule.py  schedule (scheduler.py: the loop that runs a pipeline at every cron time)
tools.py     report, validate, demo, impressions
ingest.py    scan, work, retry (and ingest's run and status)
stream.py    stream
views.py     Rich tables; progress.py progress bars; logs.py log lines (text or JSON)
"""

from . import ingest, run, schedule, stream, tools  # noqa: F401  (run, schedule, tools add their commands)
from .app import app, command, main

# After those of run, schedule and tools, in the order --help lists them.
command("scan")(ingest.scan)
command("work")(ingest.work)
command("retry")(ingest.retry)
command()(stream.stream)

__all__ = ["app", "main"]
