"""The tables of the `ingest` pipeline in the state database: the scanner's files, the jobs, the
one destination, the fixed schema and how files are read; created by whichever worker starts first."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.exc import DBAPIError

from ..catalog.store import Catalog

metadata = MetaData()

SCANNED, SENT_FOR_ETL = "SCANNED", "SENT_FOR_ETL"
NEW, PROCESSING, LOADED, FAILED = "NEW", "PROCESSING", "LOADED", "FAILED"

files = Table(
    "ingest_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(200), nullable=False),
    Column("file_name", Text, nullable=False),  # the full URI
    Column("file_modified_time", DateTime, nullable=False),
    Column("size_in_bytes", BigInteger, nullable=False),
    Column("version", String(200), nullable=False),  # size and mtime or ETag: changes with content
    Column("created_time", DateTime, nullable=False),
    Column("modified_time", DateTime, nullable=False),
    Column("status", String(20), nullable=False),  # SCANNED | SENT_FOR_ETL
    Column("job_id", Integer, index=True),
    # What loading it did (set by the worker that loaded it).
    Column("rows_read", BigInteger),
    Column("rows_loaded", BigInteger),
    Column("rows_rejected", BigInteger),
    Column("quarantine", Text),
    Column("load_status", String(20)),  # loaded | skipped (already in the ledger) | failed
    Column("load_error", Text),
    UniqueConstraint("pipeline", "file_name", "version", name="uq_ingest_files_version"),
)

jobs = Table(
    "ingest_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(200), nullable=False, index=True),
    Column("files", Text, nullable=False),  # JSON list of full URIs (a URI may hold a comma)
    Column("size_in_bytes", BigInteger, nullable=False),
    Column("created_time", DateTime, nullable=False),
    Column("modified_time", DateTime, nullable=False),
    Column("status", String(20), nullable=False),  # NEW | PROCESSING | LOADED | FAILED
    Column("failure_msg", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("worker", String(255)),
    Column("lease_expires", DateTime),
    Column("not_before", DateTime),  # backoff: not claimed again before this time
    Column("rows_loaded", BigInteger),
    Column("rows_rejected", BigInteger),
    Column("dest", Text),  # where it was loaded (password redacted)
)

# The column list of an inferred or declared schema, fixed once the first file is seen.
schemas = Table(
    "ingest_schemas",
    metadata,
    Column("pipeline", String(200), primary_key=True),
    Column("columns", Text, nullable=False),  # JSON
    Column("origin", Text, nullable=False),
    Column("created_time", DateTime, nullable=False),
)

# The one destination a state's jobs are loaded into: workers of one queue must agree on it.
destinations = Table(
    "ingest_destinations",
    metadata,
    Column("pipeline", String(200), primary_key=True),
    Column("identity", Text, nullable=False),  # host/port/db/table or absolute path/table
    Column("dest", Text, nullable=False),  # as given, password redacted
    Column("created_time", DateTime, nullable=False),
)


# How the files are read (the CSV dialect and null values, settings.input_keys): recorded by
# the first worker and kept up to date by any worker told otherwise, so a worker on another
# machine, given only --state and --dest, reads the files as the others do.
inputs = Table(
    "ingest_inputs",
    metadata,
    Column("pipeline", String(200), primary_key=True),
    Column("input", Text, nullable=False),  # JSON object
    Column("modified_time", DateTime, nullable=False),
)


def create_tables(engine: Any) -> None:
    # Several workers may start on an empty state at once: a losing CREATE TABLE just retries.
    for attempt in range(5):
        try:
            if engine.dialect.name == "postgresql":
                with engine.begin() as conn:
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7281946)")
                    metadata.create_all(conn)
            else:
                metadata.create_all(engine)
            return
        except DBAPIError:
            if attempt == 4:
                raise
            time.sleep(0.1 * (attempt + 1))


def open_catalog(url: str) -> Catalog:
    """A Catalog whose core tables may be being created by another worker at the same moment."""
    for attempt in range(5):
        try:
            return Catalog(url)
        except DBAPIError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")
