"""Catalog tables. Every file version and every day has a persisted status, so runs resume."""

from __future__ import annotations

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

metadata = MetaData()

# One row per source file (per pipeline); `version` changes when its content does.
files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(200), nullable=False),
    Column("uri", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("version", String(200), nullable=False),
    Column("status", String(20), nullable=False),  # staged | rejected | failed
    Column("rows_read", BigInteger, nullable=False, default=0),
    Column("rows_valid", BigInteger, nullable=False, default=0),
    Column("rows_rejected", BigInteger, nullable=False, default=0),
    # The independent count of a CSV file's physical records (stage/reader.py): records =
    # records_header + records_skipped + records_blank + rows_valid + rows_rejected. Added after
    # the first release: Catalog adds them to an existing table (ADDED_COLUMNS).
    Column("records", BigInteger),
    Column("records_header", BigInteger),
    Column("records_blank", BigInteger),
    Column("records_skipped", BigInteger),
    Column("quarantine", Text),
    Column("error", Text),
    Column("staged_at", DateTime),
    Column("run_id", Integer),
    UniqueConstraint("pipeline", "uri", name="uq_files_pipeline_uri"),
)

# What each staged file version contributes to each event day.
parts = Table(
    "parts",
    metadata,
    Column("file_id", Integer, primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("pipeline", String(200), nullable=False, index=True),
    Column("version", String(200), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("path", Text, nullable=False),
)

# One row per built event day.
partitions = Table(
    "partitions",
    metadata,
    Column("pipeline", String(200), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("status", String(20), nullable=False),  # built | failed
    Column("fingerprint", String(200)),
    Column("rows_in", BigInteger),
    Column("rows_unique", BigInteger),
    Column("duplicates", BigInteger),
    Column("rows_out", BigInteger),
    Column("outputs", Text),  # JSON {relative path: sha256}
    Column("error", Text),
    Column("built_at", DateTime),
    Column("run_id", Integer),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(200), nullable=False, index=True),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(20), nullable=False),  # running | ok | failed | crashed
    Column("report", Text),
)

# One row per held run lock (one run per pipeline and state at a time). A holder that died is
# detected by its pid on the same host, or by a heartbeat older than the lock's expiry.
locks = Table(
    "locks",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("token", String(64), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
)

# The maintained unique rows of each built day (engines/duckdb_build.py): the Parquet files that
# hold them (relative to the working root) and the part versions they reflect. Written in the
# same transaction as the day's `partitions` row, so its files are always the ones the day's
# outputs were computed from (or, after --stage-only, the ones its next build starts from).
day_states = Table(
    "day_states",
    metadata,
    Column("pipeline", String(200), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("signature", String(64), nullable=False),
    Column("files", Text, nullable=False),  # JSON [path, ...]: the base first
    Column("parts", Text, nullable=False),  # JSON [[file_id, version, rows], ...]
    Column("rows_in", BigInteger, nullable=False),
    Column("rows_unique", BigInteger, nullable=False),
    Column("run_id", Integer),
)

# Which destination each pipeline's rows describe: the random id written at the destination
# (`_logroll/id`), its canonical identity and how it is shown. A state refuses to serve another.
bindings = Table(
    "bindings",
    metadata,
    Column("pipeline", String(200), primary_key=True),
    Column("dest_id", String(64), nullable=False),
    Column("identity", Text, nullable=False),
    Column("dest", Text, nullable=False),
    Column("bound_at", DateTime, nullable=False),
)

# Columns added to existing tables since the first release: (table, column, SQL type). A catalog
# opened on an older state adds each one that is missing (nullable, so no rewrite of old rows).
ADDED_COLUMNS = (
    ("files", "records", "BIGINT"),
    ("files", "records_header", "BIGINT"),
    ("files", "records_blank", "BIGINT"),
    ("files", "records_skipped", "BIGINT"),
)
