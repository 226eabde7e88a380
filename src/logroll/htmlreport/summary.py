"""Report pages for what has no day catalog: ingest's scanner and job tables, a stream's inputs.

Both are built from the same dictionaries `logroll status ... --json` prints, so the page and
the status never disagree.
"""

from __future__ import annotations

from typing import Any

from ..dates import utc_now
from .page import Section, render_summary


def _generated() -> str:
    return utc_now().strftime("%Y-%m-%d %H:%M:%S UTC")


def ingest_page(info: dict[str, Any]) -> str:
    """`logroll report ingest`: files, jobs, rows, failures and recent jobs (ingest.status)."""
    files, jobs, rows = info["files"], info["jobs"], info["rows"]
    tiles = [
        ("files waiting", files["scanned"]),
        ("files sent", files["sent_for_etl"]),
        *((f"jobs {k}", jobs[k]) for k in ("NEW", "PROCESSING", "LOADED", "FAILED")),
        ("rows loaded", rows["loaded"]),
        ("rows rejected", rows["rejected"]),
    ]
    sections: list[Section] = [
        (
            "Failed jobs",
            ["job", "attempts", "reason", "retry with"],
            [[f["job"], f["attempts"], f["reason"], f"logroll retry {f['job']}"] for f in info["failures"]],
        ),
        (
            "Recent jobs",
            ["job", "status", "files", "bytes", "attempts", "worker", "rows", "rejected", "modified"],
            [
                [
                    j["job"],
                    j["status"],
                    j["files"],
                    j["size_in_bytes"],
                    j["attempts"],
                    j["worker"] or "",
                    j["rows_loaded"],
                    j["rows_rejected"],
                    str(j["modified_time"]),
                ]
                for j in info["recent_jobs"]
            ],
        ),
    ]
    meta = f"state {info['state']} · destination {info.get('dest') or '-'} · generated {_generated()}"
    return render_summary("ingest", meta, tiles, sections)


def stream_page(info: dict[str, Any]) -> str:
    """`logroll report weblogs --dest X` for a stream's destination (streaming.status)."""
    inputs = info["inputs"]
    tiles = [
        ("events", info["events"]),
        ("lines read", sum(i["read"] for i in inputs)),
        ("lines rejected", info["rows_rejected"]),
        ("micro-batches", sum(i["batches"] for i in inputs)),
    ]
    sections: list[Section] = [
        (
            "Inputs and checkpoints",
            ["input", "batches", "read", "valid", "rejected", "line", "byte", "last commit (UTC)"],
            [
                [
                    i["input"],
                    i["batches"],
                    i["read"],
                    i["valid"],
                    i["rejected"],
                    i["checkpoint"]["line"],
                    i["checkpoint"]["offset"],
                    i["last_commit"],
                ]
                for i in inputs
            ],
        )
    ]
    meta = f"stream into {info['dest']} · state {info['state']} · generated {_generated()}"
    return render_summary(f"{info['pipeline']} (stream)", meta, tiles, sections)
