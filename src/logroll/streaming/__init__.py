"""`logroll stream`: JSON lines from stdin or a followed file, committed one micro-batch at a time.

runner.py  the loop: read, cut micro-batches, stage, commit, export, signals
progress.py the progress line (events/s over busy time); status.py what `logroll status` reads
source.py  stdin, or a file followed like `tail -F` from a byte-offset checkpoint
stager.py  lines -> typed events, derived columns and rejects (DuckDB, the batch SQL)
store.py   one transaction per micro-batch: events, statistics, quarantine, checkpoint
export.py  a folder destination: changed event days written out as `logroll run` does
spec.py    what a pipeline declares to be streamable (weblogs.STREAM)
"""

from __future__ import annotations

from typing import Any


def run_stream(*args: Any, **kwargs: Any) -> Any:
    from .runner import run_stream as run

    return run(*args, **kwargs)


__all__ = ["run_stream"]
