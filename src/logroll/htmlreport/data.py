"""What the HTML report shows, read from the catalog and the quarantine files."""

from __future__ import annotations

import collections
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import overview
from ..catalog import Catalog
from ..catalog.store import PartRow
from ..dates import folder_day, layout_regex, utc_now
from ..errors import LogrollError
from ..pipelines.base import Pipeline
from ..sinks import is_sink_url
from ..sinks.read import query
from ..urls import redact_url

SAMPLES_PER_FILE = 5
MAX_SAMPLES = 100


@dataclass
class ReportData:
    pipeline: str
    state: str
    generated_at: str
    days: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[dict[str, Any]] = field(default_factory=list)  # day, on time / late / early rows
    reasons: list[dict[str, Any]] = field(default_factory=list)  # reason, rows
    samples: list[dict[str, Any]] = field(default_factory=list)  # file, line, reason, raw
    runs: list[dict[str, Any]] = field(default_factory=list)
    files_rejected: list[dict[str, Any]] = field(default_factory=list)
    files_failed: list[dict[str, Any]] = field(default_factory=list)
    quarantine_unreadable: list[str] = field(default_factory=list)


# ---- data ------------------------------------------------------------------------------------
def _open_text(path: str, storage_options: dict[str, Any] | None) -> Any:
    if "://" in path and not path.startswith("file://"):
        import fsspec

        from ..storage import s3

        # The same options (and the same single retry layer) a run gives s3fs; never logroll's own keys.
        opts = s3.filesystem_options(storage_options) if s3.is_s3(path) else dict(storage_options or {})
        return fsspec.open(path, "rt", encoding="utf-8", newline="", **opts).open()
    return open(path.removeprefix("file://"), encoding="utf-8", newline="")


def _quarantine_rows(path: str, storage_options: dict[str, Any] | None) -> Iterator[dict[str, str]]:
    with _open_text(path, storage_options) as fh:
        yield from csv.DictReader(fh)


def reason_kind(reason: str) -> str:
    """'bad X: expected ..., got '2021-02-30'' -> 'bad X': one bar per kind, not per value."""
    return (reason or "unknown").split(":", 1)[0].strip() or "unknown"


def collect(
    catalog: Catalog,
    pipe: Pipeline,
    state: str,
    runs: int = 50,
    storage_options: dict[str, Any] | None = None,
) -> ReportData:
    parts = catalog.parts(pipe.name)
    built = catalog.partitions(pipe.name)
    files = catalog.files(pipe.name)
    data = ReportData(
        pipeline=pipe.name,
        state=redact_url(state),
        generated_at=utc_now().strftime("%Y-%m-%d %H:%M:%S UTC"),
    )
    # Dirty here also means "built with other parameters" (status shows changed inputs only).
    data.days = [
        {k: v for k, v in row.items() if k != "built_at"}
        for row in overview.day_rows(pipe, parts, built, inputs_only=False)
    ]

    data.arrivals = _arrivals(pipe, parts, files)
    _quarantine(data, files, storage_options)
    data.runs = _runs(catalog, pipe, runs)
    return data


def _arrivals(
    pipe: Pipeline, parts: dict[str, list[PartRow]], files: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Late rows: a row whose event day is before the day of the folder it arrived in."""
    pattern = layout_regex(pipe.layout)
    uri_of = {f["id"]: uri for uri, f in files.items()}
    arrivals: dict[str, collections.Counter[str]] = {}
    for day, rows in parts.items():
        counter = arrivals.setdefault(day, collections.Counter())
        for p in rows:
            arrived = folder_day(uri_of.get(p.file_id, ""), pattern)
            kind = "on time" if arrived is None or arrived == day else ("late" if arrived > day else "early")
            counter[kind] += p.rows
    return [
        {"day": day, "arrival": kind, "rows": n}
        for day in sorted(arrivals)
        for kind, n in sorted(arrivals[day].items())
    ]


def _quarantine(
    data: ReportData, files: dict[str, dict[str, Any]], storage_options: dict[str, Any] | None
) -> None:
    """Files rejected or failed, rejected rows by reason, and a few sample rows of each file."""
    reasons: collections.Counter[str] = collections.Counter()
    tables = set()
    for uri, f in sorted(files.items()):
        if f["status"] == "rejected":
            data.files_rejected.append({"uri": uri, "reason": f["error"] or ""})
        elif f["status"] == "failed":
            data.files_failed.append({"uri": uri, "error": f["error"] or ""})
        q = f.get("quarantine")
        if not q:
            continue
        if is_sink_url(q):  # a database destination keeps rejected rows in a table
            tables.add(q.partition("#")[0])
            continue
        taken = 0
        try:
            for r in _quarantine_rows(q, storage_options):
                reasons[reason_kind(r.get("reason", ""))] += 1
                if taken < SAMPLES_PER_FILE and len(data.samples) < MAX_SAMPLES:
                    data.samples.append(
                        {
                            "file": r.get("source_file") or uri,
                            "line": r.get("line", ""),
                            "reason": r.get("reason", ""),
                            "raw": r.get("raw_line", ""),
                        }
                    )
                    taken += 1
        except (OSError, csv.Error, UnicodeDecodeError):
            data.quarantine_unreadable.append(q)
    for url in sorted(tables):
        _table_quarantine(data, url, reasons)
    data.reasons = [{"reason": k, "rows": n} for k, n in reasons.most_common()]


def _table_quarantine(data: ReportData, url: str, reasons: collections.Counter[str]) -> None:
    """Rejected rows from a database destination's quarantine table: reasons and samples."""
    from ..sinks.destination import QUARANTINE_TABLE

    try:
        counts = query(url, f"SELECT reason, count(*) FROM {QUARANTINE_TABLE} GROUP BY reason") or []
        samples = (
            query(
                url,
                "SELECT source_file, line, reason, raw_line FROM (SELECT *, row_number() OVER "
                f"(PARTITION BY source_file ORDER BY line) AS n FROM {QUARANTINE_TABLE}) q "
                f"WHERE n <= {SAMPLES_PER_FILE} ORDER BY source_file, line LIMIT {MAX_SAMPLES}",
            )
            or []
        )
    except LogrollError:
        data.quarantine_unreadable.append(f"{redact_url(url)}#{QUARANTINE_TABLE}")
        return
    for reason, n in counts:
        reasons[reason_kind(reason or "")] += int(n)
    for source_file, line, reason, raw in samples:
        if len(data.samples) < MAX_SAMPLES:
            data.samples.append({"file": source_file, "line": line, "reason": reason, "raw": raw})


def _runs(catalog: Catalog, pipe: Pipeline, runs: int) -> list[dict[str, Any]]:
    out = []
    for r in reversed(catalog.runs(pipe.name, limit=runs)):
        counts = overview.run_counts(r.get("report"))
        seconds = counts["seconds"]
        if seconds is None and r.get("finished_at"):
            seconds = (r["finished_at"] - r["started_at"]).total_seconds()
        out.append(
            {
                "run": r["id"],
                "status": r["status"],
                "started": r["started_at"].strftime("%Y-%m-%d %H:%M:%S"),
                "seconds": round(float(seconds), 3) if seconds is not None else None,
                **{
                    k: counts[k]
                    for k in ("files_staged", "days_built", "days_failed", "rows_read", "rows_rejected")
                },
            }
        )
    return out
