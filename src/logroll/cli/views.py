"""`logroll status` on a terminal: Rich tables of days, the run in progress and recent runs.

Every value from the catalog goes in as rich.text.Text, so a file name with [brackets] is
shown as it is, never read as markup.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.table import Table
from rich.text import Text

from ..errors import safe_text

STYLES = {"built": "green", "dirty": "yellow", "failed": "bold red", "ok": "green", "crashed": "bold red"}
RECENT_BUILT = 30


def status_console() -> Any:
    """A console for status tables: on a terminal its width; piped or redirected, wide enough that
    tables and lines are never squeezed or wrapped at Rich's default 80 columns."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=1000)


def print_status(info: dict[str, Any], all_days: bool, all_files: bool) -> None:
    """`logroll status PIPELINE`: days, files rejected or failed, processed files, recent runs."""
    console = status_console()
    print_days(console, info, all_days)
    files = info["files"]
    console.print(
        cell(
            f"files staged {files['staged']:,}, rejected {len(files['rejected'])}, failed {len(files['failed'])}"
        )
    )
    for f in files["rejected"]:
        console.print(cell(f"  rejected {f['uri']}: {f['reason']}"))
    for f in files["failed"]:
        console.print(cell(f"  failed {f['uri']}: {f['error']}"))
    print_processed(console, info.get("processed", []), all_files)
    print_runs(console, info["runs"][:10])


def cell(value: Any, style: str = "") -> Text:
    """A table cell or line: never read as markup, control characters shown escaped."""
    return Text(safe_text("" if value is None else value), style=style)


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
    console.print(cell(title))
    table = Table()
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
            cell(d["day"]),
            cell(d["status"], style=STYLES.get(d["status"], "")),
            cell(_n(d.get("rows_in"))),
            cell(_n(d.get("rows_unique"))),
            cell(_n(d.get("duplicates"))),
            cell(_n(d.get("rows_out"))),
            cell(d.get("built_at", "")[:19]),
            cell(d.get("error") or "", style="red"),
        )
    console.print(table)
    if len(shown) < len(days):
        console.print(
            cell(
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
        console.print(cell(line, style="yellow"))


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
            cell(str(r["id"])),
            cell(r["status"], style=STYLES.get(r["status"], "")),
            cell(r["started_at"][:19]),
            cell("" if r.get("seconds") is None else f"{r['seconds']:.1f}"),
            cell(_n(r.get("files_staged"))),
            cell(_n(failed_files), style="red" if failed_files else ""),
            cell(_n(r.get("days_built"))),
            cell(_n(r.get("days_failed")), style="red" if r.get("days_failed") else ""),
            cell(_n(r.get("rows_read"))),
            cell(_n(r.get("rows_rejected"))),
            cell(_n(r.get("duplicates"))),
            cell(_n(r.get("rows_out"))),
        )
    console.print(table)


def print_processed(console: Any, processed: list[dict[str, Any]], everything: bool) -> None:
    """The catalog as the history of what was processed: file, status, rows, event days."""
    if not processed:
        return

    shown = processed if everything else sorted(processed, key=lambda f: f["staged_at"])[-20:]
    uris = [f["uri"] for f in processed]
    # Paths below the folder all of them share, which the title names once.
    prefix = os.path.commonprefix(uris)[: os.path.commonprefix(uris).rfind("/") + 1]
    console.print(cell(f"processed files under {prefix or '/'} ({len(shown)} of {len(processed)})"))
    table = Table()
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
            cell(f["uri"][len(prefix) :]),
            cell(f["status"]),
            cell(_n(f.get("records"))),
            cell(_n(f.get("records_header"))),
            cell(_n(f.get("records_skipped"))),
            cell(_n(f.get("records_blank"))),
            cell(_n(f.get("rows_valid"))),
            cell(_n(f.get("rows_rejected"))),
            cell(span),
            cell(f["staged_at"][:19]),
        )
    console.print(table)
    if len(shown) < len(processed):
        console.print(cell(f"  {len(processed) - len(shown)} more: --files lists them all"))


def print_ingest(info: dict[str, Any]) -> None:
    """`logroll status ingest`: files, jobs, rows, schema, recent jobs, failures."""
    console = status_console()
    files, jobs, rows = info["files"], info["jobs"], info["rows"]
    console.print(cell(f"ingest — state {info['state']}, destination {info.get('dest') or '-'}"))
    console.print(
        cell(
            f"files: {files['scanned']:,} SCANNED (waiting for a job), {files['sent_for_etl']:,} SENT_FOR_ETL; "
            f"newest modified {files['newest_modified_time'] or '-'}"
        )
    )
    console.print(
        cell(
            f"jobs: {jobs['NEW']:,} NEW, {jobs['PROCESSING']:,} PROCESSING, {jobs['LOADED']:,} LOADED, "
            f"{jobs['FAILED']:,} FAILED"
        )
    )
    console.print(
        cell(f"rows: {rows['loaded']:,} loaded, {rows['rejected']:,} rejected, {rows['read']:,} read")
    )
    if info["schema"]:
        console.print(cell(f"schema: {len(info['schema']['columns'])} columns, {info['schema']['origin']}"))
    if info.get("input"):
        read = ", ".join(f"{k} {v!r}" for k, v in sorted(info["input"].items()))
        console.print(cell(f"files read with: {read}"))
    if info["recent_jobs"]:
        console.print(cell("recent jobs"))
        table = Table()
        for col in ("job", "status", "files", "bytes", "attempts", "worker", "rows", "rejected", "modified"):
            table.add_column(
                col, justify="right" if col in ("job", "files", "bytes", "rows", "rejected") else "left"
            )
        for j in info["recent_jobs"]:
            table.add_row(
                cell(j["job"]),
                cell(j["status"], style=STYLES.get(j["status"].lower(), "")),
                cell(_n(j["files"])),
                cell(_n(j["size_in_bytes"])),
                cell(j["attempts"]),
                cell(j["worker"] or ""),
                cell(_n(j["rows_loaded"])),
                cell(_n(j["rows_rejected"])),
                cell(j["modified_time"]),
            )
        console.print(table)
    for f in info["failures"]:
        console.print(
            cell(
                f"FAILED job {f['job']} ({f['attempts']} attempt(s)): {f['reason']} — `logroll retry {f['job']}`"
            )
        )


def print_stream(info: dict[str, Any]) -> None:
    """`logroll status weblogs --dest X` where X is a stream's destination."""
    console = status_console()
    console.print(
        cell(
            f"{info['pipeline']} (stream) into {info['dest']}: {info['events']:,} events, "
            f"{info['rows_rejected']:,} rejected lines (state {info['state']})"
        )
    )
    table = Table()
    for col in (
        "input",
        "batches",
        "read",
        "valid",
        "rejected",
        "checkpoint line",
        "byte",
        "last commit (UTC)",
    ):
        table.add_column(col, justify="left" if col in ("input", "last commit (UTC)") else "right")
    for i in info["inputs"]:
        table.add_row(
            cell(i["input"]),
            cell(_n(i["batches"])),
            cell(_n(i["read"])),
            cell(_n(i["valid"])),
            cell(_n(i["rejected"])),
            cell(_n(i["checkpoint"]["line"])),
            cell(_n(i["checkpoint"]["offset"])),
            cell(i["last_commit"]),
        )
    console.print(table)
