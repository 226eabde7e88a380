"""What every sink does, and the Arrow helpers they share.

A sink is a destination that takes Arrow data (a table, record batches, a reader, or Parquet
files) and writes it transactionally. Everything written inside one `transaction()` becomes
visible to readers at once, or not at all.

The load ledger is what makes a file load exactly once: `Transaction.load()` records
(table, source, version, rows) in the same transaction as the rows, so a retried or
taken-over load of the same file version is skipped, and a new version of a file replaces
the rows its previous version contributed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from ..errors import SchemaMismatch, UsageError


@dataclass(frozen=True)
class CsvRows:
    """Rows already written as one CSV file by their producer (DuckDB's COPY TO): no header,
    columns in `schema`'s order, a NULL an unquoted empty field, an empty string quoted (`""`).
    PostgreSQL's COPY reads such a file as it is, so its sink streams the bytes unchanged
    instead of encoding Arrow batches in Python; other sinks read it back as `schema`."""

    path: Path
    schema: pa.Schema


# Anything a sink accepts as rows.
Data = (
    pa.Table
    | pa.RecordBatch
    | pa.RecordBatchReader
    | Iterable[pa.RecordBatch]
    | str
    | Path
    | Sequence[Path]
    | CsvRows
)


@dataclass(frozen=True)
class LoadRecord:
    """One row of the load ledger: which version of `source` is in `table`, with how many rows."""

    table: str
    source: str
    version: str
    rows: int
    loaded_at: dt.datetime


@dataclass(frozen=True)
class LoadResult:
    """What `Transaction.load` did: "loaded", or "skipped" when that version was already there."""

    status: str
    rows: int
    replaced_version: str | None = None


class Transaction(Protocol):
    """Writes that commit together when the `with sink.transaction()` block ends without error."""

    def append(self, table: str | None, data: Data) -> int:
        """Add rows (creating the table from their schema when missing); returns the row count."""
        ...

    def upsert(self, table: str | None, data: Data, key: Sequence[str]) -> int:
        """Replace rows with the same `key` values, add the others; returns the row count."""
        ...

    def load(
        self, table: str | None, data: Data, *, source: str, version: str, source_column: str | None = None
    ) -> LoadResult:
        """Load one source file version exactly once, with its ledger row, in this transaction.

        Skips (status "skipped") when the ledger already has `version` of `source`. When it has
        an older version, the rows whose `source_column` equals `source` are deleted first
        (without `source_column`, a changed file is refused).
        """
        ...

    def replace(self, table: str | None, data: Data, column: str, low: str, high: str | None = None) -> int:
        """Delete the rows whose text `column` is in [low, high) (equal to `low` when `high` is
        None), then add `data`: one day's or one hour's rows of a table swapped in one commit.
        Strings compare byte by byte (PostgreSQL's "C" collation), whatever the database's locale."""
        ...

    def put_state(self, key: str, value: str) -> None:
        """Store a checkpoint (e.g. a stream offset) that commits with the rows."""
        ...

    # PostgreSQL and DuckDB transactions also have `execute(sql, params)`: a statement of your
    # own (e.g. bookkeeping in the same database) that commits with the rows.


class SqlSession(Protocol):
    """A database held open by one writer (a stream) for statements of its own, in the database's
    dialect with `?` placeholders; every `transaction()` block commits whole or not at all.

    Made by `PostgresSink.session`, `DuckDBSink.session` and `sinks.sqlite.SQLiteSession`."""

    dialect: str  # "sqlite", "postgresql" or "duckdb"

    def type_name(self, logical: str) -> str:
        """The column type for "text", "bigint", "double" or "boolean" (text compares bytewise)."""
        ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the rows it changed (-1 when unknown)."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def query_chunks(
        self, sql: str, params: Sequence[Any] = (), size: int = 100_000
    ) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of a query, `size` at a time (at least one list, maybe empty)."""
        ...

    def insert(self, table: str, rows: pa.Table) -> None:
        """Insert Arrow rows (columns in the table's order) into `table`."""
        ...

    def temp_table_sql(self, name: str, like: str) -> str:
        """CREATE a temporary table `name` with the columns of the query `like`, empty at each commit."""
        ...

    def close(self) -> None: ...


def table_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """Arrow rows as Python tuples (a micro-batch is small)."""
    return list(zip(*(c.to_pylist() for c in table.columns), strict=True))


class Sink(Protocol):
    """A destination chosen by URL (see `logroll.sinks.open_sink`)."""

    url: str  # with any password redacted
    table: str | None  # the URL's #fragment: the default table

    def transaction(self) -> AbstractContextManager[Transaction]: ...

    def load(self, data: Data, *, source: str, version: str, source_column: str | None = None) -> LoadResult:
        """`Transaction.load` into the default table, in a transaction of its own."""
        ...

    def ledger(self, table: str | None = None) -> dict[str, LoadRecord]:
        """The load ledger of a table: source -> its loaded version."""
        ...

    def get_state(self, key: str) -> str | None: ...

    def columns(self, table: str | None = None) -> pa.Schema | None:
        """The table's schema as Arrow types, or None when it does not exist yet."""
        ...

    def close(self) -> None: ...


def as_reader(data: Data) -> pa.RecordBatchReader:
    """Any accepted input as one stream of record batches (Parquet files are read lazily)."""
    if isinstance(data, pa.RecordBatchReader):
        return data
    if isinstance(data, pa.Table):
        return pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
    if isinstance(data, pa.RecordBatch):
        return pa.RecordBatchReader.from_batches(data.schema, [data])
    if isinstance(data, CsvRows):
        return _csv_reader(data)
    if isinstance(data, (str, Path)) or (
        isinstance(data, Sequence) and data and all(isinstance(p, (str, Path)) for p in data)
    ):
        import pyarrow.dataset as ds

        paths = [str(data)] if isinstance(data, (str, Path)) else [str(p) for p in data]
        return ds.dataset(paths, format="parquet").scanner().to_reader()
    batches = iter(data)  # type: ignore[arg-type]
    first = next(batches, None)
    if first is None:
        raise UsageError("no record batches given and no schema to create the table from")

    def chain() -> Iterator[pa.RecordBatch]:
        yield first
        yield from batches

    return pa.RecordBatchReader.from_batches(first.schema, chain())


def _csv_reader(rows: CsvRows) -> pa.RecordBatchReader:
    import pyarrow.csv as pacsv

    names = rows.schema.names
    return pacsv.open_csv(
        rows.path,
        read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=rows.schema,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )


def resolve_table(table: str | None, default: str | None, url: str) -> str:
    name = table or default
    if not name:
        raise UsageError(f"no table named for {url}: add it to the URL as #table")
    return name


def compare_schemas(table: str, existing: pa.Schema, incoming: pa.Schema) -> None:
    """Raise SchemaMismatch naming every difference; column order does not matter."""
    have = {f.name: f.type for f in existing}
    got = {f.name: f.type for f in incoming}
    problems = []
    missing = [n for n in have if n not in got]
    extra = [n for n in got if n not in have]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        problems.append(f"extra column(s) {', '.join(extra)}")
    for name, typ in got.items():
        if name in have and not _same_type(have[name], typ):
            problems.append(f"{name} is {_type_name(typ)} but the table has {_type_name(have[name])}")
    if problems:
        raise SchemaMismatch(
            f"rows do not match table {table}: {'; '.join(problems)}; fix the input or load it into another table"
        )


def _same_type(a: pa.DataType, b: pa.DataType) -> bool:
    return normalize_type(a) == normalize_type(b)


def normalize_type(t: pa.DataType) -> str:
    """The type families every sink can store and give back unchanged."""
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_null(t):
        return "null"
    return str(t)


def _type_name(t: pa.DataType) -> str:
    return normalize_type(t)


_STORABLE = {"integer", "float", "string", "boolean", "timestamp", "timestamptz", "date"}


def check_supported(schema: pa.Schema, url: str) -> None:
    for f in schema:
        family = normalize_type(f.type)
        if family not in _STORABLE and not family.startswith("decimal("):
            raise UsageError(
                f"column {f.name!r} has type {f.type}, which {url} cannot store; cast it to a "
                "string, number, boolean, date or timestamp"
            )


class DatabaseSink(Sink, Protocol):
    """A sink that is a database (PostgreSQL, DuckDB): it can also be held by one writer for
    statements of its own, as a stream's tables are (streaming/store.py)."""

    def session(self, owner: str, key: str) -> SqlSession:
        """The database for `owner` alone (e.g. "logroll stream weblogs"), locked by `key` until
        the session closes; another writer gets a LockedError naming `owner`."""
        ...
