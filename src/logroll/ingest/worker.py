"""The ingest worker (seed 004's ETL job, several at once): claim a job, load its files, repeat.

Each file is staged by the shared staging code (typed, bad rows quarantined with a reason) and
then loaded into the destination in ONE transaction together with its load-ledger row (file
URI, version, row count) - the ledger lives in the destination itself, beside the rows. So a
file is loaded exactly once whatever happens to the job: a retried job, or one taken over from
a worker that died, finds the file in the ledger and skips it; a worker killed mid-load leaves
an uncommitted transaction that the destination rolls back.

While it works, a worker renews its job's lease; if it dies the lease runs out and the next
worker claims the job. Failures that another attempt cannot fix (a file whose columns do not
match the schema, a table whose columns differ) fail the job at once with the reason; others
(a dropped connection, a store error) are retried with exponential backoff up to
`max_attempts`, then the job is FAILED with the stack trace in failure_msg.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import posixpath
import shutil
import signal
import socket
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from .. import faults, proc
from ..dates import utc_now
from ..errors import DataRejected, FileMismatch, FileRejected, JobLost, SchemaMismatch, StageFailed
from ..sinks import CsvRows, LoadResult, Sink
from ..stage.csv import stage_csv
from ..stage.quarantine import quarantine_name
from ..stage.staged import Staged
from ..storage.files import Storage, is_local
from ..units import DEFAULT_MEMORY_LIMIT
from ..urls import redact_url
from .jobs import Claim, JobStore
from .schema import DEFAULT_NULLS, SOURCE_COLUMN, arrow_schema, check_header, staging_pipeline
from .stager import IngestStager
from .tables import FAILED, LOADED, NEW

log = logging.getLogger("logroll")

# Failures that the same input will always hit again: no retry, the job fails at once (a value
# the destination refuses is a data error, not a dropped connection; a damaged archive or records
# that do not add up stay so until the file is replaced, which is a new version).
PERMANENT = (FileMismatch, FileRejected, SchemaMismatch, DataRejected, StageFailed)


@dataclass
class WorkReport:
    pipeline: str
    state: str
    dest: str
    worker: str
    status: str = "ok"  # ok | failed (some job failed for good)
    jobs_loaded: list[int] = field(default_factory=list)
    jobs_failed: list[dict[str, Any]] = field(default_factory=list)
    jobs_retrying: list[dict[str, Any]] = field(default_factory=list)
    jobs_lost: list[int] = field(default_factory=list)  # taken over by another worker meanwhile
    files_loaded: int = 0
    files_skipped: int = 0  # already in the destination's ledger
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    quarantine: list[str] = field(default_factory=list)
    stopped: bool = False  # by SIGTERM or Ctrl-C; the job in hand was handed back
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return round(self.rows_loaded / self.seconds, 1) if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rows_per_second"] = self.rows_per_second
        return out

    def summary(self) -> str:
        if not (self.jobs_loaded or self.jobs_failed or self.jobs_retrying or self.jobs_lost or self.stopped):
            return f"work {self.pipeline}: no job to do"
        lines = [
            f"work {self.pipeline} ({self.worker}): {len(self.jobs_loaded)} job(s) loaded, "
            f"{len(self.jobs_failed)} failed, {len(self.jobs_retrying)} to retry; "
            f"{self.files_loaded:,} file(s) loaded, {self.files_skipped:,} already loaded; "
            f"{self.rows_loaded:,} rows loaded, {self.rows_rejected:,} rejected "
            f"({self.rows_read:,} read) in {self.seconds:,.1f}s into {self.dest}"
        ]
        if self.stopped:
            lines.append("  stopped by a signal; the job in hand went back to the queue")
        for j in self.jobs_failed:
            lines.append(f"  job {j['job']} FAILED: {j['reason']}")
        for j in self.jobs_retrying:
            lines.append(f"  job {j['job']} will be retried after {j['not_before']}: {j['reason']}")
        return "\n".join(lines)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Lease:
    """Renews a job's lease in the background; `lost` turns true if another worker took it."""

    def __init__(self, store: JobStore, claim: Claim, lease: float):
        self.store, self.claim, self.lease = store, claim, lease
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{claim.id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                if not self.store.renew(self.claim.id, self.claim.worker, self.lease):
                    self.lost = True
                    return
            except Exception as exc:  # a busy state: the next renewal tries again
                log.debug("lease renewal of job %d failed: %s", self.claim.id, exc)

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (systemd, kill) acts like Ctrl-C: the current job is handed back, then exit."""

    def handler(signum: int, frame: Any) -> None:
        _STOP.set()
        raise KeyboardInterrupt

    _STOP.clear()
    with proc.handling(handler, (signal.SIGTERM,)):
        yield


# Set by the SIGTERM handler: DuckDB turns an interrupt raised inside a query into
# RuntimeError("Query interrupted"), which must still count as a stop request, not a failed job.
_STOP = threading.Event()


class Worker:
    def __init__(
        self,
        store: JobStore,
        sink: Sink,
        columns: list[dict[str, Any]],
        *,
        work_dir: Path,
        quarantine_dir: Path | None = None,
        input_keys: Mapping[str, Any] | None = None,
        storage_options: dict[str, Any] | None = None,
        worker_id: str | None = None,
        lease: float = 60.0,
        max_attempts: int = 3,
        backoff: float = 30.0,
        memory_limit: str = DEFAULT_MEMORY_LIMIT["duckdb"],
        threads: int | None = None,
    ):
        self.store, self.sink, self.columns = store, sink, columns
        self.work_dir = work_dir
        self.quarantine_dir = quarantine_dir or work_dir / "quarantine"
        self.storage_options = storage_options
        self.worker_id = worker_id or default_worker_id()
        self.lease, self.max_attempts, self.backoff = lease, max_attempts, backoff
        # The CSV dialect and null values (settings.input_keys); default: comma, "", NA.
        self.pipeline = staging_pipeline(columns, input_keys or {"null_values": DEFAULT_NULLS})
        self.schema = arrow_schema(columns)
        self.engine = IngestStager(work_dir / "engine", memory_limit=memory_limit, threads=threads)
        self.state_in_dest = store.postgres and _same_postgres(store.catalog.url, sink)
        # PostgreSQL's COPY reads the CSV DuckDB writes as it is: rows never pass through Python.
        self.csv_out = work_dir / "rows.csv" if _is_postgres(sink) else None
        self.report = WorkReport(store.pipeline, redact_url(store.catalog.url), sink.url, self.worker_id)

    def close(self) -> None:
        self.engine.close()

    # ---- the loop --------------------------------------------------------------------------
    def run(self, max_jobs: int | None = None, follow: bool = False, poll: float = 5.0) -> WorkReport:
        """Claim and load jobs until none is left (or `max_jobs`); with `follow`, keep polling."""
        started = time.monotonic()
        done = 0
        with _sigterm_interrupts():
            try:
                while max_jobs is None or done < max_jobs:
                    claim = self.store.claim(self.worker_id, self.lease, self.max_attempts)
                    if claim is None:
                        if not follow:
                            break
                        time.sleep(poll)
                        continue
                    self.do_job(claim)
                    done += 1
            except KeyboardInterrupt:
                # A stop request, not a failure: the job in hand (if any) went back to the queue.
                log.info("stopped by a signal after %d job(s)", done)
                self.report.stopped = True
        self.report.seconds = round(time.monotonic() - started, 3)
        if self.report.jobs_failed:
            self.report.status = "failed"
        return self.report

    def _hand_back(self, claim: Claim) -> None:
        """Ctrl-C or SIGTERM: hand the job back now rather than after the lease runs out.
        Files already committed are in the ledger; the next worker skips them."""
        self.store.finish(
            claim.id, claim.worker, status=NEW, worker=None, attempts=claim.attempts - 1, not_before=None
        )
        log.warning("job %d handed back to the queue (interrupted)", claim.id)

    def do_job(self, claim: Claim) -> None:
        log.info(
            "job %d: %d file(s), attempt %d",
            claim.id,
            len(claim.files),
            claim.attempts,
            extra={"event": "job_claimed", "job": claim.id},
        )
        rows_loaded = rows_rejected = 0
        problems: list[str] = []
        with _Lease(self.store, claim, self.lease) as lease:
            try:
                for f in claim.files:
                    if lease.lost:
                        raise JobLost()
                    try:
                        loaded, rejected = self.load_file(f)
                    except PERMANENT as exc:
                        msg = f"{f['uri']}: {exc}"
                        log.error("job %d: %s", claim.id, msg)
                        self.store.record_file(f["id"], load_status="failed", load_error=str(exc))
                        problems.append(msg)
                        continue
                    rows_loaded += loaded
                    rows_rejected += rejected
            except JobLost:
                log.warning("job %d was taken over by another worker; leaving it to them", claim.id)
                self.report.jobs_lost.append(claim.id)
                return
            except KeyboardInterrupt:
                self._hand_back(claim)
                raise
            except Exception as exc:
                if _STOP.is_set():
                    self._hand_back(claim)
                    raise KeyboardInterrupt from exc
                self._failed_attempt(claim, exc, traceback.format_exc())
                return
            if lease.lost:
                self.report.jobs_lost.append(claim.id)
                return
            if problems:
                reason = (
                    problems[0]
                    if len(problems) == 1
                    else f"{len(problems)} files failed; first: {problems[0]}"
                )
                msg = "\n".join(
                    [reason, *problems, f"Fix or replace the file(s), then `logroll retry {claim.id}`."]
                )
                if self.store.finish(
                    claim.id,
                    claim.worker,
                    status=FAILED,
                    failure_msg=msg,
                    rows_loaded=rows_loaded,
                    rows_rejected=rows_rejected,
                    dest=self.sink.url,
                ):
                    self.report.jobs_failed.append({"job": claim.id, "reason": reason})
                return
            if self.store.finish(
                claim.id,
                claim.worker,
                status=LOADED,
                failure_msg=None,
                rows_loaded=rows_loaded,
                rows_rejected=rows_rejected,
                dest=self.sink.url,
            ):
                self.report.jobs_loaded.append(claim.id)
                log.info(
                    "job %d LOADED: %d rows, %d rejected",
                    claim.id,
                    rows_loaded,
                    rows_rejected,
                    extra={"event": "job_loaded", "job": claim.id},
                )
            else:
                self.report.jobs_lost.append(claim.id)

    def _failed_attempt(self, claim: Claim, exc: BaseException, trace: str) -> None:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = f"{type(exc).__name__}: {reason}"
        if claim.attempts >= self.max_attempts:
            msg = f"{reason}\nfailed {claim.attempts} time(s); last stack trace:\n{trace}"
            if self.store.finish(claim.id, claim.worker, status=FAILED, failure_msg=msg):
                self.report.jobs_failed.append({"job": claim.id, "reason": reason})
            log.error("job %d FAILED after %d attempt(s): %s", claim.id, claim.attempts, reason)
            return
        wait = self.backoff * (2 ** (claim.attempts - 1))
        not_before = utc_now() + dt.timedelta(seconds=wait)
        msg = f"{reason}\nattempt {claim.attempts} of {self.max_attempts} failed; retrying after {not_before}\n{trace}"
        if self.store.finish(
            claim.id, claim.worker, status=NEW, worker=None, not_before=not_before, failure_msg=msg
        ):
            self.report.jobs_retrying.append(
                {"job": claim.id, "reason": reason, "not_before": str(not_before)}
            )
        log.warning(
            "job %d attempt %d failed (%s); retrying in %.0fs", claim.id, claim.attempts, reason, wait
        )

    # ---- one file ---------------------------------------------------------------------------
    def _check_header(self, header: list[str]) -> None:
        if not header:
            raise FileMismatch("the file is empty (no header)")
        check_header(header, self.columns)

    def load_file(self, f: dict[str, Any]) -> tuple[int, int]:
        """Stage and load one file version; returns (rows loaded, rows rejected)."""
        uri, version = f["uri"], f["version"]
        key = hashlib.sha256(f"{uri}\0{version}".encode()).hexdigest()[:20]
        staged_root = self.work_dir / "staged"
        with self._local_copy(uri, f["size"]) as path:
            self.engine.begin(uri, utc_now(), self.csv_out)
            staged = stage_csv(
                self.engine,
                path,
                uri,
                version,
                self.pipeline,
                staged_root,
                self.quarantine_dir,
                # the stage's own naming: control characters and `/` in a name never reach a path
                quarantine_name(posixpath.basename(uri.rstrip("/")), uri, version),
                header_check=self._check_header,
            )
        try:
            outcome, result = self._load_staged(f, staged)
        finally:
            self.engine.drop_staged()
            shutil.rmtree(staged_root / key, ignore_errors=True)  # nothing is written there; a safety net
            if staged.part_dir:
                shutil.rmtree(staged.part_dir, ignore_errors=True)
        if not self.state_in_dest:
            # The ledger in the destination already makes this file's load final; this row is
            # bookkeeping, and a crash before it only means the next attempt finds the ledger row.
            self.store.record_file(f["id"], modified_time=utc_now(), **outcome)
        if result.status == "skipped":
            self.report.files_skipped += 1
            log.info("%s version %s is already in the destination; skipped", uri, version)
            return 0, 0
        self.report.files_loaded += 1
        self.report.rows_read += staged.rows_read
        self.report.rows_loaded += result.rows
        self.report.rows_rejected += staged.rows_rejected
        if staged.quarantine:
            self.report.quarantine.append(staged.quarantine)
        log.info(
            "loaded %s: %d rows, %d rejected",
            uri,
            result.rows,
            staged.rows_rejected,
            extra={"event": "file_loaded"},
        )
        return result.rows, staged.rows_rejected

    def _load_staged(self, f: dict[str, Any], staged: Staged) -> tuple[dict[str, Any], LoadResult]:
        """Load a staged file into the destination in one transaction with its ledger row (and,
        when the state lives there too, its scanner row)."""
        uri, version = f["uri"], f["version"]
        if staged.rows_read and not staged.rows_valid:
            raise FileMismatch(
                f"none of its {staged.rows_read} rows fits the schema (first reason: "
                f"{_first_reason(staged.quarantine)}); quarantine: {staged.quarantine}"
            )
        if not staged.parts:  # a file with a header and no row stages nothing
            rows: Any = pa.RecordBatchReader.from_batches(self.schema, [])
        elif self.csv_out is not None:
            rows = CsvRows(self.csv_out, self.schema)
        else:
            rows = self.engine.staged_rows(self.schema)
        outcome = dict(
            rows_read=staged.rows_read,
            rows_rejected=staged.rows_rejected,
            quarantine=staged.quarantine,
            load_error=None,
        )
        with self.sink.transaction() as tx:
            result = tx.load(None, rows, source=uri, version=version, source_column=SOURCE_COLUMN)
            skipped = result.status == "skipped"
            outcome.update(
                rows_loaded=staged.rows_valid if skipped else result.rows,
                load_status="skipped" if skipped else "loaded",
            )
            if self.state_in_dest:
                # State and destination are one PostgreSQL database: the scanner row says
                # "loaded" in the very transaction that loads the rows and the ledger row.
                tx.execute(
                    "UPDATE ingest_files SET "
                    + ", ".join(f"{k} = %s" for k in outcome)
                    + ", modified_time = %s WHERE id = %s",
                    [*outcome.values(), utc_now(), f["id"]],
                )
            # Killed here, the destination rolls the rows and the ledger row back together.
            faults.point("ingest.loaded_uncommitted")
        faults.point("ingest.committed")
        return outcome, result

    @contextlib.contextmanager
    def _local_copy(self, uri: str, size: int) -> Iterator[Path]:
        if is_local(uri):
            p = Path(uri.removeprefix("file://"))
            if not p.exists():
                raise FileMismatch("the file is gone from the source")
            yield p
            return
        storage = Storage(posixpath.dirname(uri), self.storage_options)
        with storage.local_copy(uri, self.work_dir / "spool") as path:
            yield path


def _same_postgres(state_url: str, sink: Sink) -> bool:
    from ..sinks.postgres import PostgresSink, same_database

    return isinstance(sink, PostgresSink) and same_database(state_url, sink.conninfo)


def _is_postgres(sink: Sink) -> bool:
    return bool(getattr(sink, "copies_csv", False))  # isinstance would import psycopg


def _first_reason(quarantine: str | None) -> str:
    if not quarantine:
        return "unknown"
    try:
        import pyarrow.csv as pacsv

        t = pacsv.read_csv(quarantine)
        return str(t["reason"][0]) if t.num_rows else "unknown"
    except Exception:
        return "unknown"
