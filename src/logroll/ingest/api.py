"""The `ingest` pipeline's public functions: scan, work, run (both), status, retry.

Seed 004: CSV files of one format keep arriving; a scanner records them and groups them into
jobs, and any number of workers load the jobs into one central store (PostgreSQL, a DuckDB
file or a Parquet dataset) that many people query at once. The CLI is a thin layer over these:

>>> from logroll import ingest
>>> ingest.scan(source="drops/", state="state.sqlite", flush=True)
>>> ingest.work(state="state.sqlite", dest="duckdb:///credit.duckdb#credit")
>>> ingest.status(state="state.sqlite")["jobs"]
{'NEW': 0, 'PROCESSING': 0, 'LOADED': 3, 'FAILED': 0}

Settings come from the arguments, else from the `ingest:` section of ./logroll.yaml
(source, state, dest, work_dir, batch_bytes, max_wait, overlap, max_attempts, lease, backoff,
columns, null_values, suffixes, and the CSV dialect: delimiter, quote, escape, header, skip_rows,
encoding, comment, compression), else from the defaults below.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..discover import with_compressed
from ..errors import ConfigError, FileMismatch, SourceNotFound, UsageError, first_line
from ..sinks import open_sink
from ..storage.files import Storage, is_local
from ..units import DEFAULT_MEMORY_LIMIT, parse_duration
from ..urls import file_of, identity, redact_url
from .jobs import JobStore
from .scanner import ScanReport, scan_files
from .schema import columns_from_config, infer_columns
from .settings import (
    CONFIG_FILE,
    INPUT_KEYS,
    IngestSettings,
    default_state,
    default_work_dir,
    input_keys,
    parse_bytes,
    settings,
    with_table,
)
from .tables import open_catalog
from .worker import Worker, WorkReport

PIPELINE = "ingest"
log = logging.getLogger("logroll")


def _state(s: IngestSettings) -> str:
    state = s.state or default_state(s.dest)
    if not state:
        raise UsageError(
            "no state given: pass --state postgresql://user@host/db (or a SQLite path) - the scanner "
            "and the workers must share it - or set it in logroll.yaml under ingest: state:"
        )
    return state


def _store(s: IngestSettings) -> JobStore:
    return JobStore(open_catalog(_state(s)), PIPELINE)


# ---- scan ------------------------------------------------------------------------------------
def scan(
    *,
    source: str | None = None,
    state: str | None = None,
    flush: bool = False,
    full: bool = False,
    **given: Any,
) -> ScanReport:
    """List `source`, record new file versions in the scanner table, group them into jobs."""
    s = settings(source=source, state=state, **given)
    if not s.source:
        raise UsageError("no source given: pass --source FOLDER or s3://bucket/prefix/")
    input_keys(s)  # a wrong dialect key is said at the first command, not by every worker
    src = Storage(s.source, s.storage_options)
    src.require_root("source")
    store = _store(s)
    exclude = ()
    if s.dest and s.dest.lower().startswith("parquet://"):
        # A Parquet destination inside the source folder must not be read back as input.
        exclude = (str(file_of(s.dest).absolute()),)
    try:
        return scan_files(
            store,
            src,
            suffixes=with_compressed(s.suffixes or (".csv",)),  # a.csv.gz is a CSV file
            batch_bytes=parse_bytes(s.batch_bytes or "256MB", "--batch-bytes"),
            max_wait=parse_duration(s.max_wait or "10m", "--max-wait"),
            overlap=parse_duration(s.overlap or "1h", "--overlap"),
            flush=flush,
            full=full,
            exclude=exclude,
            follow_symlinks=bool(s.follow_symlinks),
        )
    finally:
        store.catalog.close()


# ---- work ------------------------------------------------------------------------------------
def _columns(
    store: JobStore, s: IngestSettings, keys: dict[str, Any], work_dir: Path
) -> list[dict[str, Any]] | None:
    """The schema in force: declared, else stored, else inferred from the first scanned file that
    has a usable header (a bad or vanished first file never blocks the others: it fails its own
    job, naming itself)."""
    if s.columns:
        declared = columns_from_config(s.columns)
        store.fix_schema(declared, f"declared in {CONFIG_FILE}")
        return declared
    stored = store.stored_schema()
    if stored is not None:
        return stored[0]
    candidates = store.first_files(INFER_TRIES)
    problems = []
    for f in candidates:
        try:
            columns = _infer(f["uri"], s, keys, work_dir)
        except (FileMismatch, ConfigError, SourceNotFound) as exc:
            problems.append(f"{f['uri']}: {first_line(exc)}")
            log.warning(
                "cannot infer the schema from %s: %s; trying the next file", f["uri"], first_line(exc)
            )
            continue
        return store.fix_schema(columns, f"inferred from {f['uri']}")[0]
    if not candidates:
        return None
    raise UsageError(
        f"cannot infer the schema from the first {len(problems)} file(s) scanned ({problems[0]}); "
        f"declare the columns in {CONFIG_FILE}"
    )


INFER_TRIES = 50  # files tried, in scan order, before asking for a declared schema


def _infer(uri: str, s: IngestSettings, keys: dict[str, Any], work_dir: Path) -> list[dict[str, Any]]:
    spool = work_dir / "spool"
    if is_local(uri):
        path = Path(uri.removeprefix("file://"))
        if not path.exists():
            raise SourceNotFound("the file is gone from the source")
        return infer_columns(path, keys, spool)
    storage = Storage(uri.rsplit("/", 1)[0], s.storage_options)
    with storage.local_copy(uri, spool) as path:
        return infer_columns(path, keys, spool)


def _input_in_force(store: JobStore, s: IngestSettings) -> dict[str, Any]:
    """How this worker reads files: its settings over what the state recorded (so a worker given
    only --state and --dest reads as the others do); recorded for the next worker."""
    keys = input_keys(s, store.stored_input())
    before = store.record_input(keys)
    if before is not None:
        now = json.loads(json.dumps(keys))
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        log.warning(
            "this state's files are read with other settings from now on: %s",
            ", ".join(f"{k} {before.get(k)!r} -> {now.get(k)!r}" for k in changed),
        )
    return keys


def work(
    *,
    state: str | None = None,
    dest: str | None = None,
    max_jobs: int | None = None,
    follow: bool = False,
    poll: float = 5.0,
    worker_id: str | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT["duckdb"],
    threads: int | None = None,
    **given: Any,
) -> WorkReport:
    """Claim and load jobs until none is left (`max_jobs` at most; `follow` keeps polling)."""
    s = settings(state=state, dest=dest, **given)
    if not s.dest:
        raise UsageError(
            "no destination given: pass --dest postgresql://user@host/db#table, duckdb:///file.duckdb#table "
            "or parquet:///dir/"
        )
    if int(s.max_attempts or 3) < 1:
        raise UsageError("--max-attempts must be 1 or more")
    input_keys(s)  # a wrong key is said before the state or the destination is opened
    sink = open_sink(with_table(s.dest))
    store = _store(s)
    store.bind_destination(identity(with_table(s.dest)), sink.url)
    keys = _input_in_force(store, s)
    work_dir = Path(s.work_dir) if s.work_dir else default_work_dir(s.dest)
    # One folder per worker process: DuckDB spill files and staged parts are never shared.
    mine = work_dir / "workers" / f"{os.getpid()}-{time.time_ns()}"
    mine.mkdir(parents=True, exist_ok=True)
    worker = None
    try:
        columns = _columns(store, s, keys, work_dir)
        while columns is None and follow:  # nothing scanned yet: wait for the first file
            time.sleep(poll)
            columns = _columns(store, s, keys, work_dir)
        if columns is None:
            return WorkReport(PIPELINE, redact_url(store.catalog.url), sink.url, worker_id or "")
        worker = Worker(
            store,
            sink,
            columns,
            work_dir=mine,
            quarantine_dir=work_dir / "quarantine",
            input_keys=keys,
            storage_options=s.storage_options,
            worker_id=worker_id,
            lease=parse_duration(s.lease or "60s", "--lease"),
            max_attempts=int(s.max_attempts or 3),
            backoff=parse_duration(s.backoff or "30s", "--backoff"),
            memory_limit=memory_limit,
            threads=threads,
        )
        return worker.run(max_jobs=max_jobs, follow=follow, poll=poll)
    finally:
        if worker is not None:
            worker.close()
        sink.close()
        store.catalog.close()
        shutil.rmtree(mine, ignore_errors=True)


# ---- run: scan + work in one process -------------------------------------------------------
@dataclass
class IngestReport:
    scan: ScanReport
    work: WorkReport

    @property
    def status(self) -> str:
        return "ok" if self.work.status == "ok" and self.scan.status in ("ok", "busy") else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": PIPELINE,
            "status": self.status,
            "scan": self.scan.to_dict(),
            "work": self.work.to_dict(),
        }

    def summary(self) -> str:
        return self.scan.summary() + "\n" + self.work.summary()


def run(
    *, source: str | None = None, dest: str | None = None, state: str | None = None, **given: Any
) -> IngestReport:
    """Scan (every new file goes into a job at once) and load every job, in this process."""
    work_keys = {"max_jobs", "follow", "poll", "worker_id", "memory_limit", "threads"}
    work_args = {k: given.pop(k) for k in list(given) if k in work_keys}
    config = given.get("config")
    s = settings(source=source, dest=dest, state=state, **given)
    common = {
        k: getattr(s, k) for k in ("work_dir", "batch_bytes", "overlap", "max_attempts", "lease", "backoff")
    }
    common["config"] = config
    common.update(columns=s.columns, suffixes=s.suffixes, **{k: getattr(s, k) for k in INPUT_KEYS})
    common["follow_symlinks"] = s.follow_symlinks
    scanned = scan(
        source=s.source, state=_state(s), dest=s.dest, flush=True, storage_options=s.storage_options, **common
    )
    worked = work(state=_state(s), dest=s.dest, storage_options=s.storage_options, **common, **work_args)
    return IngestReport(scanned, worked)


# ---- status and retry ----------------------------------------------------------------------
def status(*, state: str | None = None, dest: str | None = None, **given: Any) -> dict[str, Any]:
    """Files scanned and sent, jobs by status, rows, failures with their reason, recent jobs."""
    s = settings(state=state, dest=dest, **given)
    store = _store(s)
    try:
        out = {"pipeline": PIPELINE, "state": redact_url(store.catalog.url), **store.summary()}
        stored = store.stored_schema()
        out["schema"] = {"columns": stored[0], "origin": stored[1]} if stored else None
        out["input"] = store.stored_input()  # how the workers read the files (dialect, nulls)
        # Without --dest, the one the workers recorded (bind_destination).
        out["dest"] = redact_url(s.dest) if s.dest else store.destination()
        return out
    finally:
        store.catalog.close()


def retry(job: int, *, state: str | None = None, dest: str | None = None, **given: Any) -> dict[str, Any]:
    """Requeue a FAILED (or waiting) job as NEW with its attempts reset."""
    s = settings(state=state, dest=dest, **given)
    store = _store(s)
    try:
        return store.retry(int(job))
    finally:
        store.catalog.close()


def is_ingest(pipeline: str) -> bool:
    return pipeline == PIPELINE


__all__ = ["scan", "work", "run", "status", "retry", "is_ingest", "IngestReport"]
