"""`logroll status` on a terminal: Rich tables of days, the run in progress and recent runs.

Every value from the catalog goes in as rich.text.Text, so a file name with [brackets] is
shown as it is, never read as markup.
"""

from __future__ import annotations

import os
from typing import Any

from rich.table import Table
from rich.text import Text

STYLES = {"built": "green", "dirty": "yellow", "failed": "bold red", "ok": "green", "crashed": "bold red"}
RECENT_BUILT = 30


def _n(value: Any) -> str:
    return "" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def print_days(console: Any, info: dict[str, Any], everything: bool = False) -> None:
    days = info["days"]
    counts = {s: sum(1 for d in days if d["status"] == s) for s in ("built", "dirty", "failed")}
    shown = days
    if not everything:
        built = [d for d in days if d["status"] == "built"]
        keep = {d["day"] for d in built[-RECENT_BUILT:]} | {d["day"] for d in days if d["status"] != "built"}
        shown = [d for d in days if d["day"] in keep]
    title = (
        f"{info['pipeline']}: {counts['built']} days built, {counts['dirty']} dirty, {counts['failed']} failed"
        f" (state {info['state']})"
    )
    table = Table(title=Text(title), title_justify="left")
    for col, justify in (
        ("day", "left"),
        ("status", "left"),
        ("rows in", "right"),
        ("unique", "right"),
        ("duplicates", "right"),
        ("rows out", "right"),
        ("last build (UTC)", "left"),
        ("error", "left"),
    ):
        table.add_column(col, justify=justify, no_wrap=col != "error", overflow="fold")  # type: ignore[arg-type]
    for d in shown:
        table.add_row(
            Text(d["day"]),
            Text(d["status"], style=STYLES.get(d["status"], "")),
            Text(_n(d.get("rows_in"))),
            Text(_n(d.get("rows_unique"))),
            Text(_n(d.get("duplicates"))),
            Text(_n(d.get("rows_out"))),
            Text(d.get("built_at", "")[:19]),
            Text(d.get("error") or "", style="red"),
        )
    console.print(table)
    if len(shown) < len(days):
        console.print(
            Text(
                f"  {len(days) - len(shown)} earlier built days not shown: --all-days lists them", style="dim"
            )
        )
    running = info.get("running")
    if running:
        line = (
            f"running now: pid {running['pid']} on {running['host']} since {running['started_at'][:19]} UTC"
            f", last heartbeat {running['heartbeat_at'][:19]} UTC"
        )
        if running.get("stale"):
            line += f" (dead: {running['stale']}; the next run takes the lock over)"
        console.print(Text(line, style="yellow"))


def print_runs(console: Any, runs: list[dict[str, Any]]) -> None:
    if not runs:
        return
    table = Table(title="recent runs", title_justify="left")
    for col, justify in (
        ("run", "right"),
        ("status", "left"),
        ("started (UTC)", "left"),
        ("seconds", "right"),
        ("files staged", "right"),
        ("files failed", "right"),
        ("days built", "right"),
        ("days failed", "right"),
        ("rows read", "right"),
        ("rejected", "right"),
        ("duplicates", "right"),
        ("rows out", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in runs:
        failed_files = (r.get("files_failed") or 0) + (r.get("files_rejected") or 0)
        table.add_row(
            Text(str(r["id"])),
            Text(r["status"], style=STYLES.get(r["status"], "")),
            Text(r["started_at"][:19]),
            Text("" if r.get("seconds") is None else f"{r['seconds']:.1f}"),
            Text(_n(r.get("files_staged"))),
            Text(_n(failed_files), style="red" if failed_files else ""),
            Text(_n(r.get("days_built"))),
            Text(_n(r.get("days_failed")), style="red" if r.get("days_failed") else ""),
            Text(_n(r.get("rows_read"))),
            Text(_n(r.get("rows_rejected"))),
            Text(_n(r.get("duplicates"))),
            Text(_n(r.get("rows_out"))),
        )
    console.print(table)


def print_processed(console: Any, processed: list[dict[str, Any]], everything: bool) -> None:
    """The catalog as the history of what was processed: file, status, rows, event days."""
    if not processed:
        return
    from rich.table import Table

    shown = processed if everything else sorted(processed, key=lambda f: f["staged_at"])[-20:]
    uris = [f["uri"] for f in processed]
    # Paths below the folder all of them share, which the title names once.
    prefix = os.path.commonprefix(uris)[: os.path.commonprefix(uris).rfind("/") + 1]
    table = Table(title=f"processed files under {prefix or '/'} ({len(shown)} of {len(processed)})")
    table.add_column("file", overflow="fold")
    for col in (
        "status",
        "records",
        "header",
        "skipped",
        "blank",
        "valid",
        "rejected",
        "event days",
        "staged at",
    ):
        table.add_column(col)
    for f in sorted(shown, key=lambda f: f["uri"]):
        days = f["days"]
        span = days[0] if len(days) == 1 else (f"{days[0]} .. {days[-1]} ({len(days)})" if days else "")
        table.add_row(
            f["uri"][len(prefix) :],
            f["status"],
            _n(f.get("records")),
            _n(f.get("records_header")),
            _n(f.get("records_skipped")),
            _n(f.get("records_blank")),
            _n(f.get("rows_valid")),
            _n(f.get("rows_rejected")),
            span,
            f["staged_at"][:19],
        )
    console.print(table)
    if len(shown) < len(processed):
        console.print(f"  {len(processed) - len(shown)} more: --files lists them all", markup=False)
