"""What the catalog says about a pipeline: days built, dirty and failed; files; runs.

`logroll status` (api.status) and the HTML report both read it from here. (Not `status.py`:
`logroll.status` is the public function.)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .build import dirty_days
from .catalog import Catalog
from .catalog.lock import holder, lock_name
from .catalog.store import PartRow
from .pipelines import Pipeline
from .urls import redact_url


def day_rows(
    pipe: Pipeline,
    parts: dict[str, list[PartRow]],
    built: dict[str, dict[str, Any]],
    inputs_only: bool = True,
) -> list[dict[str, Any]]:
    """Every day with parts or outputs: its status (built, dirty or failed) and its counts.

    `inputs_only`: a day is dirty when its inputs changed since it was built (what status shows);
    otherwise also when it was built with other parameters (see build.dirty_days)."""
    dirty = dirty_days(pipe, parts, built, inputs_only=inputs_only)
    days = []
    for d in sorted(set(parts) | set(built)):
        row = built.get(d) or {}
        state_name = "failed" if row.get("status") == "failed" else ("dirty" if d in dirty else "built")
        days.append(
            {
                "day": d,
                "status": state_name,
                "rows_in": row.get("rows_in"),
                "rows_unique": row.get("rows_unique"),
                "duplicates": row.get("duplicates"),
                "rows_out": row.get("rows_out"),
                "built_at": str(row.get("built_at") or ""),
                "error": row.get("error") if state_name == "failed" else None,
            }
        )
    return days


def run_counts(report: dict[str, Any] | None) -> dict[str, Any]:
    """The numbers of a stored run report that say what the run did."""
    r = report or {}
    return {
        "seconds": r.get("seconds"),
        "files_staged": r.get("files_staged", 0),
        "files_rejected": len(r.get("files_rejected") or []),
        "files_failed": len(r.get("files_failed") or []),
        "days_built": len(r.get("partitions_built") or []),
        "days_failed": len(r.get("partitions_failed") or []),
        "rows_read": r.get("rows_read", 0),
        "rows_rejected": r.get("rows_rejected", 0),
        "duplicates": r.get("duplicates", 0),
        "rows_out": r.get("rows_out", 0),
    }


def summary(
    catalog: Catalog, pipe: Pipeline, state: str, running_now: dict[str, Any] | None
) -> dict[str, Any]:
    """Everything `logroll status` shows (and prints with --json); `running_now`: who holds the
    state's lock or lease (workspace.StateSession.running)."""
    parts = catalog.parts(pipe.name)
    built = catalog.partitions(pipe.name)
    files = catalog.files(pipe.name)
    return {
        "pipeline": pipe.name,
        "state": redact_url(state),
        # Who runs this pipeline on this state right now (from the run lock), if anyone.
        "running": running_now,
        "days": day_rows(pipe, parts, built),
        "files": {
            "staged": sum(1 for f in files.values() if f["status"] == "staged"),
            "rejected": [
                {"uri": u, "reason": f["error"]} for u, f in files.items() if f["status"] == "rejected"
            ],
            "failed": [{"uri": u, "error": f["error"]} for u, f in files.items() if f["status"] == "failed"],
        },
        # Every file version the catalog holds, with the event days its rows went to.
        "processed": processed_files(files, parts),
        "runs": [
            {
                "id": r["id"],
                "status": r["status"],
                "started_at": str(r["started_at"]),
                "finished_at": str(r["finished_at"] or ""),
                **run_counts(r.get("report")),
            }
            for r in catalog.runs(pipe.name)
        ],
    }


def running(catalog: Catalog, pipeline: str) -> dict[str, Any] | None:
    row = holder(catalog, lock_name(pipeline))
    if row is None:
        return None
    return {k: (str(v) if isinstance(v, dt.datetime) else v) for k, v in row.items() if k != "name"}


def processed_files(
    files: dict[str, dict[str, Any]], parts: dict[str, list[PartRow]]
) -> list[dict[str, Any]]:
    days: dict[int, list[str]] = {}
    for day, rows in parts.items():
        for p in rows:
            days.setdefault(p.file_id, []).append(day)
    return [
        {
            "uri": uri,
            "status": f["status"],
            "rows_read": f["rows_read"],
            "rows_valid": f["rows_valid"],
            "rows_rejected": f["rows_rejected"],
            # the independent count (CSV): records = header + skipped + blank + valid + rejected
            "records": f.get("records"),
            "records_header": f.get("records_header"),
            "records_skipped": f.get("records_skipped"),
            "records_blank": f.get("records_blank"),
            "days": sorted(days.get(f["id"], [])),
            "staged_at": str(f["staged_at"] or ""),
        }
        for uri, f in sorted(files.items())
    ]
