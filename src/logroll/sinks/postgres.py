"""PostgreSQL sink: rows go in with COPY (never row inserts), each transaction commits whole.

Readers under PostgreSQL's default READ COMMITTED isolation see a load entirely or not at all.
A ledger table `_logroll_loads` (and `_logroll_state` for checkpoints) lives in the same
database, so the rows and their ledger row commit in one transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg  # an ImportError here becomes open_sink's "pip install 'logroll[postgres]'"
import pyarrow as pa
import pyarrow.csv as pacsv

from ..dates import utc_now
from ..errors import DataRejected, LockedError, SinkError, UsageError, first_line
from ..quote import ident
from ..urls import postgres_conninfo, postgres_key, redact_url
from .base import (
    CsvRows,
    Data,
    LoadRecord,
    LoadResult,
    as_reader,
    check_supported,
    compare_schemas,
    resolve_table,
    table_rows,
)

LEDGER = "_logroll_loads"
STATE = "_logroll_state"


def qualified(name: str) -> str:
    """`table` or `schema.table`, each part quoted."""
    return ".".join(ident(p) for p in name.split(".", 1))


def _pg_type(t: pa.DataType) -> str:
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "smallint"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "integer"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_float32(t) or pa.types.is_float16(t):
        return "real"
    if pa.types.is_floating(t):
        return "double precision"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    return "text"


def _arrow_type(data_type: str, precision: int | None, scale: int | None) -> pa.DataType:
    return {
        "smallint": pa.int16(),
        "integer": pa.int32(),
        "bigint": pa.int64(),
        "real": pa.float32(),
        "double precision": pa.float64(),
        "boolean": pa.bool_(),
        "timestamp without time zone": pa.timestamp("us"),
        "timestamp with time zone": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "text": pa.string(),
        "character varying": pa.string(),
    }.get(data_type) or (
        pa.decimal128(precision or 38, scale or 0) if data_type == "numeric" else pa.string()
    )


def same_database(a: str, b: str) -> bool:
    """Whether two PostgreSQL URLs (any driver suffix, #fragment ignored) name one database."""
    try:
        return postgres_key(a) == postgres_key(b)
    except psycopg.Error:
        return False


class PostgresSink:
    """`postgresql://user@host:port/db#table` (the fragment may be `schema.table`)."""

    copies_csv = True  # loads take CsvRows and stream the file to COPY unchanged

    def __init__(self, url: str):
        self._conninfo, self.table = postgres_conninfo(url)
        self.url = redact_url(url)
        self._conn: psycopg.Connection[Any] | None = None
        # Tables whose columns were checked against these schemas (one catalog query per table
        # and process, not per load); forgotten when a transaction fails, in case the table changed.
        self._checked: dict[str, pa.Schema] = {}
        with self.transaction() as tx:
            tx.ensure_ledger()

    @property
    def conninfo(self) -> str:
        """The libpq URL (with its password): for same_database(), never for logs."""
        return self._conninfo

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                # Autocommit outside `transaction()`: a transaction is exactly one `with` block.
                self._conn = psycopg.connect(self._conninfo, connect_timeout=15, autocommit=True)
            except psycopg.Error as exc:
                raise SinkError(f"cannot connect to {self.url}: {first_line(exc)}; check the URL") from None
        return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        conn = self._connection()
        try:
            with conn.transaction():
                yield PostgresTransaction(self, conn)
        except BaseException:
            self._checked.clear()
            raise

    def load(self, data: Data, *, source: str, version: str, source_column: str | None = None) -> LoadResult:
        with self.transaction() as tx:
            return tx.load(None, data, source=source, version=version, source_column=source_column)

    def ledger(self, table: str | None = None) -> dict[str, LoadRecord]:
        name = resolve_table(table, self.table, self.url)
        with self._connection().cursor() as cur:
            cur.execute(
                f"SELECT source, version, rows, loaded_at FROM {ident(LEDGER)} WHERE table_name = %s",
                (name,),
            )
            rows = cur.fetchall()
        return {r[0]: LoadRecord(name, r[0], r[1], int(r[2]), r[3]) for r in rows}

    def get_state(self, key: str) -> str | None:
        with self._connection().cursor() as cur:
            cur.execute(f"SELECT value FROM {ident(STATE)} WHERE key = %s", (key,))
            row = cur.fetchone()
        return row[0] if row else None

    def columns(self, table: str | None = None) -> pa.Schema | None:
        name = resolve_table(table, self.table, self.url)
        with self.transaction() as tx:
            return tx.columns(name)

    def session(self, owner: str, key: str) -> PostgresSession:
        """This database for one writer only: held by the advisory lock `key` until closed."""
        return PostgresSession(self, owner, key)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __repr__(self) -> str:
        return f"PostgresSink({self.url})"


class PostgresTransaction:
    def __init__(self, sink: PostgresSink, conn: psycopg.Connection[Any]):
        self.sink = sink
        self.conn = conn

    def _lock(self, *parts: str) -> None:
        # Transaction-scoped advisory lock: released by commit or rollback, never leaked.
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("\x1f".join(parts),))

    def ensure_ledger(self) -> None:
        self._lock("logroll-ddl")
        with self.conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {ident(LEDGER)} (table_name text NOT NULL, source text NOT NULL, "
                "version text NOT NULL, rows bigint NOT NULL, loaded_at timestamp NOT NULL, "
                "PRIMARY KEY (table_name, source))"
            )
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {ident(STATE)} (key text PRIMARY KEY, value text NOT NULL, "
                "updated_at timestamp NOT NULL)"
            )

    def columns(self, table: str) -> pa.Schema | None:
        schema, _, name = table.rpartition(".")
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT column_name, data_type, numeric_precision, numeric_scale "
                "FROM information_schema.columns WHERE table_name = %s "
                "AND table_schema = coalesce(nullif(%s, ''), current_schema()) ORDER BY ordinal_position",
                (name, schema),
            )
            rows = cur.fetchall()
        if not rows:
            return None
        return pa.schema([(r[0], _arrow_type(r[1], r[2], r[3])) for r in rows])

    def _prepare(self, table: str, schema: pa.Schema, key: Sequence[str] = ()) -> None:
        """Create the table from `schema`, or check that it matches the existing one."""
        if self.sink._checked.get(table) == schema:
            return
        check_supported(schema, self.sink.url)
        existing = self.columns(table)
        if existing is None:
            self._lock("logroll-ddl", table)
            existing = self.columns(table)  # another writer may have created it meanwhile
        if existing is None:
            cols = [f"{ident(f.name)} {_pg_type(f.type)}" for f in schema]
            if key:
                cols.append(f"PRIMARY KEY ({', '.join(ident(k) for k in key)})")
            with self.conn.cursor() as cur:
                cur.execute(f"CREATE TABLE {qualified(table)} ({', '.join(cols)})")
        else:
            compare_schemas(table, existing, schema)
        self.sink._checked[table] = schema

    def _copy(self, target: str, reader: pa.RecordBatchReader) -> int:
        cols = ", ".join(ident(f.name) for f in reader.schema)
        rows = 0
        options = pacsv.WriteOptions(include_header=False, batch_size=65536)
        try:
            with (
                self.conn.cursor() as cur,
                cur.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT csv)") as copy,
            ):
                for batch in reader:
                    if not batch.num_rows:
                        continue
                    buf = pa.BufferOutputStream()
                    # Strings are always quoted and NULLs never are, so COPY tells "" from NULL.
                    pacsv.write_csv(batch, buf, options)
                    copy.write(memoryview(buf.getvalue()))
                    rows += batch.num_rows
        except psycopg.errors.DataError as exc:
            raise self._refused(exc) from None
        return rows

    def _refused(self, exc: psycopg.errors.DataError) -> DataRejected:
        return DataRejected(
            f"{self.sink.url} refused a value: {first_line(exc)[:300]!r}; the same rows "
            "fail again: fix the value or the table"
        )

    def _copy_csv(self, target: str, data: CsvRows) -> int:
        """Stream a CSV file its producer wrote for COPY as it is: no decoding, no re-encoding."""
        cols = ", ".join(ident(f.name) for f in data.schema)
        try:
            with self.conn.cursor() as cur:
                with (
                    cur.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT csv)") as copy,
                    open(data.path, "rb") as fh,
                ):
                    while chunk := fh.read(1 << 20):
                        copy.write(chunk)
                return int(cur.rowcount)
        except psycopg.errors.DataError as exc:
            raise self._refused(exc) from None

    def append(self, table: str | None, data: Data) -> int:
        name = resolve_table(table, self.sink.table, self.sink.url)
        if isinstance(data, CsvRows):
            self._prepare(name, data.schema)
            return self._copy_csv(qualified(name), data)
        reader = as_reader(data)
        self._prepare(name, reader.schema)
        return self._copy(qualified(name), reader)

    def upsert(self, table: str | None, data: Data, key: Sequence[str]) -> int:
        if not key:
            raise UsageError("upsert needs at least one key column")
        name = resolve_table(table, self.sink.table, self.sink.url)
        reader = as_reader(data)
        self._prepare(name, reader.schema, key)
        self._lock("logroll-upsert", name)
        tmp = ident("_logroll_upsert")
        cols = ", ".join(ident(f.name) for f in reader.schema)
        with self.conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {tmp}")
            cur.execute(
                f"CREATE TEMP TABLE {tmp} ON COMMIT DROP AS SELECT {cols} FROM {qualified(name)} WITH NO DATA"
            )
        rows = self._copy(tmp, reader)
        match = " AND ".join(f"t.{ident(k)} IS NOT DISTINCT FROM s.{ident(k)}" for k in key)
        with self.conn.cursor() as cur:
            cur.execute(f"DELETE FROM {qualified(name)} t USING {tmp} s WHERE {match}")
            cur.execute(f"INSERT INTO {qualified(name)} ({cols}) SELECT {cols} FROM {tmp}")
            cur.execute(f"DROP TABLE {tmp}")
        return rows

    def load(
        self, table: str | None, data: Data, *, source: str, version: str, source_column: str | None = None
    ) -> LoadResult:
        name = resolve_table(table, self.sink.table, self.sink.url)
        # Two workers loading the same file queue here; the second then sees the first's ledger row.
        self._lock("logroll-load", name, source)
        with self.conn.cursor() as cur:
            cur.execute(
                f"SELECT version FROM {ident(LEDGER)} WHERE table_name = %s AND source = %s", (name, source)
            )
            row = cur.fetchone()
        if row and row[0] == version:
            return LoadResult("skipped", 0)
        previous = row[0] if row else None
        rows_in = data if isinstance(data, CsvRows) else as_reader(data)
        if previous is not None:
            if not source_column:
                raise SinkError(
                    f"{source} changed since it was loaded into {name} (version {previous} -> {version}) "
                    "and the table has no source column to replace its rows by"
                )
            self._prepare(name, rows_in.schema)
            with self.conn.cursor() as cur:
                cur.execute(f"DELETE FROM {qualified(name)} WHERE {ident(source_column)} = %s", (source,))
        rows = self.append(name, rows_in)
        with self.conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {ident(LEDGER)} (table_name, source, version, rows, loaded_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (table_name, source) DO UPDATE SET "
                "version = excluded.version, rows = excluded.rows, loaded_at = excluded.loaded_at",
                (name, source, version, rows, utc_now()),
            )
        return LoadResult("loaded", rows, previous)

    def replace(self, table: str | None, data: Data, column: str, low: str, high: str | None = None) -> int:
        name = resolve_table(table, self.sink.table, self.sink.url)
        reader = as_reader(data)
        self._prepare(name, reader.schema)
        col = f'{ident(column)} COLLATE "C"'
        with self.conn.cursor() as cur:
            if high is None:
                cur.execute(f"DELETE FROM {qualified(name)} WHERE {ident(column)} = %s", (low,))
            else:
                cur.execute(f"DELETE FROM {qualified(name)} WHERE {col} >= %s AND {col} < %s", (low, high))
        return self._copy(qualified(name), reader)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement of your own (psycopg %s placeholders) inside this transaction, e.g. to
        update bookkeeping kept in the same database so that it commits with the rows."""
        with self.conn.cursor() as cur:
            cur.execute(sql, params)  # type: ignore[arg-type]

    def put_state(self, key: str, value: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {ident(STATE)} (key, value, updated_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, value, utc_now()),
            )


# Text compares byte by byte ("C"), as in SQLite and DuckDB, whatever the database's locale.
TYPES = {"text": 'text COLLATE "C"', "bigint": "bigint", "double": "double precision", "boolean": "boolean"}


class PostgresSession:
    """A `SqlSession` on the sink's connection (see sinks/base.py)."""

    dialect = "postgresql"

    def __init__(self, sink: PostgresSink, owner: str, key: str):
        self.sink = sink
        self._tx: PostgresTransaction | None = None
        with sink._connection().cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,))
            got = cur.fetchone()
        if not got or not got[0]:
            raise LockedError(f"another `{owner}` is writing to {sink.url}; stop it first")

    def type_name(self, logical: str) -> str:
        return TYPES[logical]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.sink.transaction() as tx:
            self._tx = tx
            try:
                yield
            finally:
                self._tx = None

    def _cursor(self) -> Any:
        conn = self._tx.conn if self._tx is not None else self.sink._connection()
        return conn.cursor()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._cursor() as cur:
            cur.execute(sql.replace("?", "%s"), list(params))
            return int(cur.rowcount)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._cursor() as cur:
            cur.execute(sql.replace("?", "%s"), list(params))
            return list(cur.fetchall())

    def query_chunks(
        self, sql: str, params: Sequence[Any] = (), size: int = 100_000
    ) -> Iterator[list[tuple[Any, ...]]]:
        yield self.query(sql, params)

    def insert(self, table: str, rows: pa.Table) -> None:
        with self._cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy:
            for row in table_rows(rows):
                copy.write_row(row)

    def temp_table_sql(self, name: str, like: str) -> str:
        return f"CREATE TEMP TABLE IF NOT EXISTS {name} ON COMMIT DELETE ROWS AS {like} WITH NO DATA"

    def close(self) -> None:
        self.sink.close()
