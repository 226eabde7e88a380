"""The scanner and job tables of the `ingest` pipeline (seed 004), and their state transitions.

Scanner table `ingest_files`: one row per file version seen, SCANNED until it is put in a
job, then SENT_FOR_ETL. Job table `ingest_jobs`: NEW -> PROCESSING -> LOADED | FAILED, with
the claiming worker, its lease, the attempts made and the failure's stack trace.

Workers claim jobs with `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of
them share one state without waiting on each other; on SQLite the claim is one UPDATE, which
SQLite's single-writer lock makes atomic. A worker keeps its job by renewing its lease; a job
whose lease ran out (the worker died) is claimed again by the next worker.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from ..catalog.store import Catalog
from ..dates import utc_now
from ..errors import UsageError, first_line
from .tables import (
    FAILED,
    LOADED,
    NEW,
    PROCESSING,
    SCANNED,
    SENT_FOR_ETL,
    create_tables,
    destinations,
    files,
    inputs,
    jobs,
    schemas,
)


@dataclass(frozen=True)
class ScannedFile:
    uri: str
    modified: dt.datetime
    size: int
    version: str


@dataclass(frozen=True)
class Claim:
    """A job a worker holds: load `files` (id, uri, version, size) before `lease_expires`."""

    id: int
    files: list[dict[str, Any]]
    attempts: int
    worker: str


class JobStore:
    """Scanner and job transitions over a Catalog's engine (SQLite or PostgreSQL)."""

    def __init__(self, catalog: Catalog, pipeline: str = "ingest"):
        self.catalog = catalog
        self.engine = catalog.engine
        self.pipeline = pipeline
        self.postgres = self.engine.dialect.name == "postgresql"
        create_tables(self.engine)

    # ---- scanner -----------------------------------------------------------------------
    def newest_modified(self) -> dt.datetime | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.max(files.c.file_modified_time)).where(files.c.pipeline == self.pipeline)
            ).scalar()

    def known_versions(self, since: dt.datetime | None) -> set[tuple[str, str]]:
        """(uri, version) of the files recorded with a modified time at or after `since`."""
        query = select(files.c.file_name, files.c.version).where(files.c.pipeline == self.pipeline)
        if since is not None:
            query = query.where(files.c.file_modified_time >= since)
        with self.engine.connect() as conn:
            return {(r[0], r[1]) for r in conn.execute(query)}

    def record_scanned(self, found: Iterable[ScannedFile]) -> int:
        """Insert new file versions as SCANNED (one transaction); returns how many were new."""
        rows = [
            dict(
                pipeline=self.pipeline,
                file_name=f.uri,
                file_modified_time=f.modified,
                size_in_bytes=f.size,
                version=f.version,
                status=SCANNED,
            )
            for f in found
        ]
        if not rows:
            return 0
        t = utc_now()
        for r in rows:
            r.update(created_time=t, modified_time=t)
        with self.engine.begin() as conn:
            if self.postgres:
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                stmt = (
                    pg_insert(files).values(rows).on_conflict_do_nothing(constraint="uq_ingest_files_version")
                )
            else:
                stmt = insert(files).values(rows).prefix_with("OR IGNORE")
            # RETURNING counts the rows really inserted (rowcount is -1 for batched inserts).
            return len(conn.execute(stmt.returning(files.c.id)).all())

    def make_jobs(self, batch_bytes: int, max_wait: float, flush: bool = False) -> list[int]:
        """Group SCANNED files into NEW jobs of up to `batch_bytes`; a partial group becomes a job
        once its oldest file has waited `max_wait` seconds (or at once with `flush`).
        Files and jobs change in one transaction, so a crash leaves them SCANNED, never lost."""
        t = utc_now()
        with self.engine.begin() as conn:
            pending = conn.execute(
                select(files.c.id, files.c.file_name, files.c.size_in_bytes, files.c.created_time)
                .where(files.c.pipeline == self.pipeline, files.c.status == SCANNED)
                .order_by(files.c.file_modified_time, files.c.id)
            ).all()
            groups: list[list[Any]] = []
            current: list[Any] = []
            size = 0
            for row in pending:
                if current and size + row.size_in_bytes > batch_bytes:
                    groups.append(current)
                    current, size = [], 0
                current.append(row)
                size += row.size_in_bytes
            if current:
                oldest = min(r.created_time for r in current)
                if flush or size >= batch_bytes or (t - oldest).total_seconds() >= max_wait:
                    groups.append(current)
            created = []
            for group in groups:
                job_id = conn.execute(
                    insert(jobs).values(
                        pipeline=self.pipeline,
                        files=json.dumps([r.file_name for r in group]),
                        size_in_bytes=sum(r.size_in_bytes for r in group),
                        created_time=t,
                        modified_time=t,
                        status=NEW,
                        attempts=0,
                    )
                ).inserted_primary_key[0]
                conn.execute(
                    update(files)
                    .where(files.c.id.in_([r.id for r in group]), files.c.status == SCANNED)
                    .values(status=SENT_FOR_ETL, job_id=job_id, modified_time=t)
                )
                created.append(int(job_id))
            return created

    # ---- workers ------------------------------------------------------------------------
    def _claimable(self, t: dt.datetime) -> Any:
        return and_(
            jobs.c.pipeline == self.pipeline,
            or_(
                and_(jobs.c.status == NEW, or_(jobs.c.not_before.is_(None), jobs.c.not_before <= t)),
                and_(jobs.c.status == PROCESSING, jobs.c.lease_expires < t),
            ),
        )

    def claim(self, worker: str, lease: float, max_attempts: int) -> Claim | None:
        """Take the oldest claimable job: NEW (past its backoff) or PROCESSING with an expired
        lease (its worker died). A job whose worker died `max_attempts` times is FAILED instead."""
        for _ in range(1000):
            t = utc_now()
            with self.engine.begin() as conn:
                pick = select(jobs.c.id, jobs.c.status, jobs.c.attempts, jobs.c.worker).where(
                    self._claimable(t)
                )
                pick = pick.order_by(jobs.c.id).limit(1)
                if self.postgres:
                    row = conn.execute(pick.with_for_update(skip_locked=True)).first()
                else:
                    # SQLite: the first write takes the database's single writer lock, so the
                    # read-then-update below cannot interleave with another worker's.
                    conn.exec_driver_sql("UPDATE ingest_jobs SET id = id WHERE 0")
                    row = conn.execute(pick).first()
                if row is None:
                    return None
                if row.status == PROCESSING and row.attempts >= max_attempts:
                    conn.execute(
                        update(jobs)
                        .where(jobs.c.id == row.id)
                        .values(
                            status=FAILED,
                            modified_time=t,
                            lease_expires=None,
                            failure_msg=f"worker {row.worker} stopped (killed?) while loading this job, "
                            f"{row.attempts} attempt(s) in all; `logroll retry {row.id}` to try again",
                        )
                    )
                    continue
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == row.id)
                    .values(
                        status=PROCESSING,
                        worker=worker,
                        attempts=row.attempts + 1,
                        lease_expires=t + dt.timedelta(seconds=lease),
                        modified_time=t,
                    )
                )
                members = conn.execute(
                    select(files.c.id, files.c.file_name, files.c.version, files.c.size_in_bytes)
                    .where(files.c.job_id == row.id)
                    .order_by(files.c.file_modified_time, files.c.id)
                ).all()
                return Claim(
                    int(row.id),
                    [
                        dict(id=m.id, uri=m.file_name, version=m.version, size=m.size_in_bytes)
                        for m in members
                    ],
                    int(row.attempts) + 1,
                    worker,
                )
        return None

    def renew(self, job_id: int, worker: str, lease: float) -> bool:
        """Extend the lease; False when the job is no longer this worker's (taken over)."""
        t = utc_now()
        with self.engine.begin() as conn:
            n = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.worker == worker, jobs.c.status == PROCESSING)
                .values(lease_expires=t + dt.timedelta(seconds=lease))
            ).rowcount
        return n == 1

    def record_file(self, file_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(files).where(files.c.id == file_id).values(**values))

    def finish(self, job_id: int, holder: str, **values: Any) -> bool:
        """Set the job's outcome if worker `holder` still holds it; False when it was taken over."""
        t = utc_now()
        with self.engine.begin() as conn:
            n = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.worker == holder, jobs.c.status == PROCESSING)
                .values(modified_time=t, lease_expires=None, **values)
            ).rowcount
        return n == 1

    def retry(self, job_id: int) -> dict[str, Any]:
        """Put a job back to NEW with its attempts reset (`logroll retry JOB`)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(jobs.c.status).where(jobs.c.id == job_id, jobs.c.pipeline == self.pipeline)
            ).first()
            if row is None:
                raise UsageError(f"no job {job_id} in this state: `logroll status ingest` lists the jobs")
            if row.status == PROCESSING:
                raise UsageError(
                    f"job {job_id} is being loaded by a worker right now; retry it if it ends FAILED"
                )
            if row.status == LOADED:
                raise UsageError(f"job {job_id} is already LOADED; there is nothing to retry")
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    status=NEW,
                    attempts=0,
                    not_before=None,
                    worker=None,
                    lease_expires=None,
                    modified_time=utc_now(),
                )
            )
        return {"job": job_id, "status": NEW, "was": row.status}

    # ---- status --------------------------------------------------------------------------
    def summary(self, recent: int = 20) -> dict[str, Any]:
        with self.engine.connect() as conn:
            file_counts = dict(
                conn.execute(
                    select(files.c.status, func.count())
                    .where(files.c.pipeline == self.pipeline)
                    .group_by(files.c.status)
                ).all()
            )
            job_counts = dict(
                conn.execute(
                    select(jobs.c.status, func.count())
                    .where(jobs.c.pipeline == self.pipeline)
                    .group_by(jobs.c.status)
                ).all()
            )
            totals = conn.execute(
                select(
                    func.coalesce(func.sum(files.c.rows_read), 0),
                    func.coalesce(func.sum(files.c.rows_loaded), 0),
                    func.coalesce(func.sum(files.c.rows_rejected), 0),
                ).where(files.c.pipeline == self.pipeline)
            ).one()
            failed = conn.execute(
                select(jobs)
                .where(jobs.c.pipeline == self.pipeline, jobs.c.status == FAILED)
                .order_by(jobs.c.id)
            ).mappings()
            failures = [
                {
                    "job": r["id"],
                    "files": json.loads(r["files"]),
                    "attempts": r["attempts"],
                    "reason": first_line(r["failure_msg"]) if (r["failure_msg"] or "").strip() else "",
                    "failure_msg": r["failure_msg"],
                    "modified_time": r["modified_time"],
                }
                for r in failed
            ]
            latest = conn.execute(
                select(jobs).where(jobs.c.pipeline == self.pipeline).order_by(jobs.c.id.desc()).limit(recent)
            ).mappings()
            recent_jobs = [
                {
                    "job": r["id"],
                    "status": r["status"],
                    "files": len(json.loads(r["files"])),
                    "size_in_bytes": r["size_in_bytes"],
                    "attempts": r["attempts"],
                    "worker": r["worker"],
                    "rows_loaded": r["rows_loaded"],
                    "rows_rejected": r["rows_rejected"],
                    "created_time": r["created_time"],
                    "modified_time": r["modified_time"],
                }
                for r in latest
            ]
            newest = conn.execute(
                select(func.max(files.c.file_modified_time)).where(files.c.pipeline == self.pipeline)
            ).scalar()
        return {
            "files": {
                "scanned": file_counts.get(SCANNED, 0),
                "sent_for_etl": file_counts.get(SENT_FOR_ETL, 0),
                "newest_modified_time": newest,
            },
            "jobs": {s: job_counts.get(s, 0) for s in (NEW, PROCESSING, LOADED, FAILED)},
            "rows": {"read": int(totals[0]), "loaded": int(totals[1]), "rejected": int(totals[2])},
            "failures": failures,
            "recent_jobs": recent_jobs,
        }

    def first_files(self, limit: int) -> list[dict[str, Any]]:
        """The first files scanned, in scan order: a schema is inferred from the first good one."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(files.c.file_name, files.c.version)
                .where(files.c.pipeline == self.pipeline)
                .order_by(files.c.id)
                .limit(limit)
            ).all()
        return [{"uri": r.file_name, "version": r.version} for r in rows]

    def bind_destination(self, identity: str, shown: str) -> None:
        """Record the queue's destination on first use; refuse a different one later, since a job
        is loaded by whichever worker claims it."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(destinations).values(
                        pipeline=self.pipeline, identity=identity, dest=shown, created_time=utc_now()
                    )
                )
        except DBAPIError:
            pass  # already bound (maybe by another worker just now)
        with self.engine.connect() as conn:
            row = conn.execute(select(destinations).where(destinations.c.pipeline == self.pipeline)).first()
        if row is not None and row.identity != identity:
            raise UsageError(
                f"this state's jobs load into {row.dest}, not {shown}: every worker of a state must use the "
                "same --dest; give another destination a --state of its own"
            )

    def destination(self) -> str | None:
        """The destination this state's jobs load into (password redacted), once a worker ran."""
        with self.engine.connect() as conn:
            row = conn.execute(select(destinations).where(destinations.c.pipeline == self.pipeline)).first()
        return str(row.dest) if row is not None else None

    # ---- schema --------------------------------------------------------------------------
    def stored_schema(self) -> tuple[list[dict[str, Any]], str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schemas).where(schemas.c.pipeline == self.pipeline)).first()
        return (json.loads(row.columns), row.origin) if row else None

    def fix_schema(self, columns: list[dict[str, Any]], origin: str) -> tuple[list[dict[str, Any]], str]:
        """Store the schema unless one is stored already; returns the one in force."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(schemas).values(
                        pipeline=self.pipeline,
                        columns=json.dumps(columns),
                        origin=origin,
                        created_time=utc_now(),
                    )
                )
        except DBAPIError:
            pass  # another worker stored its schema first: theirs is the one in force
        stored = self.stored_schema()
        assert stored is not None
        return stored

    # ---- how files are read -----------------------------------------------------------------
    def stored_input(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(inputs.c.input).where(inputs.c.pipeline == self.pipeline)).first()
        return json.loads(row.input) if row else None

    def record_input(self, keys: dict[str, Any]) -> dict[str, Any] | None:
        """Record how this worker reads files; returns what was recorded before, when it differed."""
        doc = json.dumps(keys, sort_keys=True)
        for _ in range(2):
            with self.engine.connect() as conn:
                row = conn.execute(select(inputs.c.input).where(inputs.c.pipeline == self.pipeline)).first()
            if row is not None and row.input == doc:
                return None
            try:
                with self.engine.begin() as conn:
                    if row is None:
                        conn.execute(
                            insert(inputs).values(pipeline=self.pipeline, input=doc, modified_time=utc_now())
                        )
                    else:
                        conn.execute(
                            update(inputs)
                            .where(inputs.c.pipeline == self.pipeline)
                            .values(input=doc, modified_time=utc_now())
                        )
                return json.loads(row.input) if row is not None else None
            except DBAPIError:
                continue  # another worker inserted it just now: look again
        return None
