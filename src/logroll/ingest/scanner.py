"""The ingest scanner (seed 004): list the source, record new file versions, group them into jobs.

A scan resumes from the newest file_modified_time it recorded, minus an overlap window, and
skips the file versions it already has: a store that lists out of order, or a file that
appears with a slightly older time than the newest one seen, is still picked up. The new
rows are committed in chunks, so a scan killed half way keeps what it recorded; grouping into
jobs is one transaction, so a file is never in two jobs and never lost between SCANNED and a job.
Only one scan of a pipeline runs at a time (a lock row in the state, taken over if its holder
died); a scan started while another runs reports "busy" and exits 0, which is what cron needs.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import faults
from ..catalog.lock import RunLock
from ..dates import utc_now
from ..errors import LockedError
from ..storage.files import Storage
from ..urls import redact_url
from .jobs import JobStore, ScannedFile

log = logging.getLogger("logroll")

CHUNK = 500  # scanner rows per commit


@dataclass
class ScanReport:
    pipeline: str
    source: str
    state: str
    status: str = "ok"  # ok | busy
    files_listed: int = 0
    files_in_window: int = 0
    files_new: int = 0
    files_known: int = 0
    jobs_created: list[int] = field(default_factory=list)
    files_waiting: int = 0
    resumed_from: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.status == "busy":
            return f"scan {self.pipeline}: another scan is running on this state; nothing done"
        return (
            f"scan {self.pipeline}: {self.files_listed:,} files listed, {self.files_new:,} new, "
            f"{self.files_known:,} already known; {len(self.jobs_created):,} job(s) created"
            + (f" ({', '.join(map(str, self.jobs_created))})" if self.jobs_created else "")
            + (
                f"; {self.files_waiting:,} file(s) waiting for a fuller batch (--flush, or --max-wait 0, "
                "makes a job of them now)"
                if self.files_waiting
                else ""
            )
        )


def scan_files(
    store: JobStore,
    source: Storage,
    *,
    suffixes: tuple[str, ...],
    batch_bytes: int,
    max_wait: float,
    overlap: float,
    flush: bool = False,
    full: bool = False,
    exclude: tuple[str, ...] = (),
    follow_symlinks: bool = False,
) -> ScanReport:
    """One scan: list, record what is new, make jobs. See the module docstring."""
    started = time.monotonic()
    report = ScanReport(store.pipeline, redact_url(source.url), redact_url(store.catalog.url))
    try:
        lock = RunLock(store.catalog, f"{store.pipeline}.scan")
        lock.acquire()
    except LockedError as exc:
        log.info("%s", exc)
        report.status = "busy"
        return report
    try:
        newest = None if full else store.newest_modified()
        since = newest - dt.timedelta(seconds=overlap) if newest is not None else None
        report.resumed_from = since.isoformat(sep=" ") if since else None
        listed = source.list_files("", suffixes, exclude, follow_symlinks)
        report.files_listed = len(listed)
        # A file without a modified time (some stores) is always compared, never filtered out.
        window = [f for f in listed if since is None or f.modified is None or f.modified >= since]
        report.files_in_window = len(window)
        known = store.known_versions(since)
        new = [f for f in window if (f.uri, f.version) not in known]
        report.files_known = len(window) - len(new)
        # Oldest first, so a crash part way keeps the oldest files and the resume point is safe.
        new.sort(key=lambda f: (f.modified or dt.datetime.min, f.uri))
        for i in range(0, len(new), CHUNK):
            chunk = new[i : i + CHUNK]
            report.files_new += store.record_scanned(
                ScannedFile(f.uri, f.modified or utc_now(), f.size, f.version) for f in chunk
            )
            faults.point("scan.recorded")
        report.jobs_created = store.make_jobs(batch_bytes, max_wait, flush)
        faults.point("scan.jobs_created")
        report.files_waiting = store.summary(recent=0)["files"]["scanned"]
    finally:
        lock.release()
    for job in report.jobs_created:
        log.info("job %d created", job, extra={"event": "job_created", "job": job})
    report.seconds = round(time.monotonic() - started, 3)
    return report
