"""Sinks: destinations that take Arrow data and write it transactionally, chosen by URL.

>>> from logroll.sinks import open_sink
>>> sink = open_sink("postgresql://etl@127.0.0.1/warehouse#credit")
>>> with sink.transaction() as tx:                 # one commit for everything in the block
...     tx.load(None, table, source="s3://drops/a.csv", version="123:etag")  # exactly once
...     tx.append("other_table", batches)          # created from the Arrow schema if missing
...     tx.upsert("stats", stats, key=["hour"])    # replace rows by key (not for Parquet)
...     tx.put_state("checkpoint", "4096")         # commits with the rows
>>> sink.ledger()                                  # source -> LoadRecord(version, rows, ...)
>>> sink.get_state("checkpoint")                   # "4096"

Data is a pyarrow Table, RecordBatch, RecordBatchReader, an iterable of batches, or Parquet
file path(s). Rows whose columns or types differ from an existing table raise
errors.SchemaMismatch and write nothing. In tests, `pg_url` (tests/conftest.py) gives a fresh database on a real
PostgreSQL server started by tests/pg.py.

| URL                                      | writes                                        |
|------------------------------------------|-----------------------------------------------|
| `postgresql://user@host:port/db#table`   | a table, loaded with COPY (`logroll[postgres]`) |
| `duckdb:///file.duckdb#table`            | a table in a DuckDB file                      |
| `parquet:///dir/` (or `parquet:///dir/#table`) | `dir/[table/]load_date=YYYY-MM-DD/*.parquet` |

Three slashes then a relative path, four for an absolute one (as SQLAlchemy's sqlite URLs).
Backends are imported only when chosen; a missing driver says what to install.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..registry import Registry
from ..urls import scheme as url_scheme
from .base import CsvRows, Data, LoadRecord, LoadResult, Sink, Transaction, as_reader

SINKS = Registry(
    "destination",
    {
        "postgresql": "logroll.sinks.postgres:PostgresSink",
        "postgres": "logroll.sinks.postgres:PostgresSink",
        "duckdb": "logroll.sinks.duckdb:DuckDBSink",
        "parquet": "logroll.sinks.parquet:ParquetSink",
    },
    extras={"postgresql": "postgres", "postgres": "postgres"},
    missing="{name}:// destinations need {module}: {hint}",
)

__all__ = [
    "CsvRows",
    "Data",
    "LoadRecord",
    "LoadResult",
    "SINKS",
    "Sink",
    "Transaction",
    "as_reader",
    "is_sink_url",
    "open_sink",
]


def is_sink_url(url: str) -> bool:
    return "://" in url and url_scheme(url) in SINKS


def open_sink(url: str, **options: Any) -> Sink:
    """The sink for a destination URL (see the table above). Raises UsageError for an unknown
    scheme (with the closest known one) or a driver that is not installed."""
    scheme = url_scheme(url)
    if scheme.startswith("postgresql+") or scheme.startswith("postgres+"):
        scheme = "postgresql"
        url = "postgresql://" + url.split("://", 1)[1]
    if scheme not in SINKS:
        hint = SINKS.hint(scheme, shown="{}://")
        raise UsageError(
            f"unknown destination {url.split('#')[0]!r}: {hint}use postgresql://user@host/db#table, "
            "duckdb:///file.duckdb#table or parquet:///dir/"
        )
    return SINKS[scheme](url, **options)  # type: ignore[no-any-return]
