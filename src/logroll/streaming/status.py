"""What a stream's destination says about it: inputs, checkpoints, batches, events, last commit.

`logroll status weblogs --dest X` shows this when X holds a stream's tables (a database) or a
stream's SQLite state (a folder). Read-only: nothing is opened for writing, and a running
stream into PostgreSQL or a folder is not disturbed (DuckDB lets no one read while it writes).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import StateNotFound
from ..pipelines import Pipeline, get_pipeline
from ..sinks import is_sink_url
from ..sinks.read import query
from ..urls import redact_url
from .store import QUARANTINE, STATE, events_table


def database(pipeline: str, dest: str, work_dir: str | None = None) -> str:
    """Where a stream into `dest` keeps its tables: the database itself, or the SQLite file
    in the folder destination's work dir."""
    if is_sink_url(dest):
        return dest.partition("#")[0]
    from ..workspace import open_workspace

    ws = open_workspace(dest, None, work_dir, read_only=True)  # a status creates nothing
    return str(ws.work_dir / "stream" / f"{pipeline}.sqlite")


def stream_status(
    pipeline: str | Pipeline, *, dest: str, work_dir: str | None = None
) -> dict[str, Any] | None:
    """The stream state in `dest`, or None when nothing was ever streamed there."""
    name = pipeline.name if isinstance(pipeline, Pipeline) else get_pipeline(pipeline).name
    db = database(name, dest, work_dir)
    try:
        # The events table marks a stream's destination (a run's database has a state table too).
        events = query(db, f"SELECT count(*) FROM {events_table(name)}")
    except StateNotFound:
        return None
    if events is None:
        return None
    rows = (
        query(db, f"SELECT key, value, updated_at FROM {STATE} WHERE key LIKE ?", [f"stream:{name}:%"]) or []
    )
    rejected = query(db, f"SELECT count(*) FROM {QUARANTINE}") or [(0,)]
    inputs = []
    for key, value, updated_at in sorted(rows):
        state = json.loads(value)
        inputs.append(
            {
                "input": key.split(":", 2)[2],
                "batches": state.get("batches", 0),
                "read": state.get("read", 0),
                "valid": state.get("valid", 0),
                "rejected": state.get("rejected", 0),
                "checkpoint": {"line": state.get("line", 0), "offset": state.get("offset", 0)},
                "last_commit": str(updated_at),
            }
        )
    return {
        "pipeline": name,
        "mode": "stream",
        "dest": redact_url(dest),
        "state": redact_url(db),
        "events": int(events[0][0]),
        "rows_rejected": int(rejected[0][0]),
        "inputs": inputs,
    }


__all__ = ["database", "stream_status"]
