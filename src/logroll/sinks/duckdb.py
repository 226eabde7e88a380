"""DuckDB sink: a database file, written one transaction at a time.

DuckDB lets one process at a time open a file for writing, so the sink opens the file for
each transaction and closes it after the commit; concurrent writers (and readers opening the
file) wait and retry instead of failing. Inside the file, a reader sees whole transactions.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..dates import utc_now
from ..errors import SinkError, UsageError, first_line
from ..quote import ident, literal
from ..urls import local_path
from .base import (
    Data,
    LoadRecord,
    LoadResult,
    as_reader,
    check_supported,
    compare_schemas,
    resolve_table,
)

LEDGER = "_logroll_loads"
STATE = "_logroll_state"


def qualified(name: str) -> str:
    return ".".join(ident(p) for p in name.split(".", 1))


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("conflicting" in text.lower() or "could not set" in text.lower())


def connect_with_retry(
    path: str, read_only: bool = False, timeout: float = 300.0
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file, waiting while another process holds its lock."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.Error as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                raise SinkError(f"cannot open {path}: {first_line(exc)}") from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)


class DuckDBSink:
    """`duckdb:///relative/file.duckdb#table` or `duckdb:////absolute/file.duckdb#table`.

    Like SQLAlchemy's `sqlite:///` URLs: what follows the third slash is the path, so a
    fourth slash makes it absolute.
    """

    def __init__(self, url: str, lock_timeout: float = 300.0):
        rest = url.split("://", 1)[1]
        path, _, fragment = rest.partition("#")
        path = local_path(path)
        if not path:
            raise UsageError(f"no file in {url}: use duckdb:///path/to/file.duckdb#table")
        self.path = str(Path(path).expanduser())
        self.table = fragment or None
        self.url = url
        self.lock_timeout = lock_timeout
        self._held: duckdb.DuckDBPyConnection | None = None
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as tx:
            tx.ensure_ledger()

    @contextlib.contextmanager
    def held(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Keep the file open across the transactions of the block (a stream's many small
        commits: opening the file costs ~50 ms each time). Other processes wait meanwhile."""
        if self._held is not None:
            yield self._held
            return
        self._held = connect_with_retry(self.path, timeout=self.lock_timeout)
        try:
            yield self._held
        finally:
            con, self._held = self._held, None
            con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[DuckDBTransaction]:
        held = self._held is not None
        con = (
            self._held if self._held is not None else connect_with_retry(self.path, timeout=self.lock_timeout)
        )
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                yield DuckDBTransaction(self, con)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            if not held:
                con.close()

    def session(self, owner: str, key: str) -> DuckDBSession:
        """The file held open for one writer (DuckDB's own file lock keeps others out)."""
        return DuckDBSession(self)

    def load(self, data: Data, *, source: str, version: str, source_column: str | None = None) -> LoadResult:
        with self.transaction() as tx:
            return tx.load(None, data, source=source, version=version, source_column=source_column)

    def _query(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        if self._held is not None:
            return self._held.execute(sql, params).fetchall()
        con = connect_with_retry(self.path, read_only=False, timeout=self.lock_timeout)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def ledger(self, table: str | None = None) -> dict[str, LoadRecord]:
        name = resolve_table(table, self.table, self.url)
        rows = self._query(
            f"SELECT source, version, rows, loaded_at FROM {ident(LEDGER)} WHERE table_name = ?", [name]
        )
        return {r[0]: LoadRecord(name, r[0], r[1], int(r[2]), r[3]) for r in rows}

    def get_state(self, key: str) -> str | None:
        rows = self._query(f"SELECT value FROM {ident(STATE)} WHERE key = ?", [key])
        return rows[0][0] if rows else None

    def columns(self, table: str | None = None) -> pa.Schema | None:
        name = resolve_table(table, self.table, self.url)
        with self.transaction() as tx:
            return tx.columns(name)

    def close(self) -> None:
        """Nothing stays open between transactions."""

    def __repr__(self) -> str:
        return f"DuckDBSink({self.url})"


class DuckDBTransaction:
    def __init__(self, sink: DuckDBSink, con: duckdb.DuckDBPyConnection):
        self.sink = sink
        self.con = con

    def ensure_ledger(self) -> None:
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {ident(LEDGER)} (table_name VARCHAR NOT NULL, source VARCHAR NOT NULL, "
            "version VARCHAR NOT NULL, rows BIGINT NOT NULL, loaded_at TIMESTAMP NOT NULL, "
            "PRIMARY KEY (table_name, source))"
        )
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {ident(STATE)} (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL, "
            "updated_at TIMESTAMP NOT NULL)"
        )

    def columns(self, table: str) -> pa.Schema | None:
        schema, _, name = table.rpartition(".")
        found = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
            "AND table_schema = coalesce(nullif(?, ''), current_schema())",
            [name, schema],
        ).fetchall()
        if not found[0][0]:
            return None
        return self.con.sql(f"SELECT * FROM {qualified(table)} LIMIT 0").to_arrow_table().schema

    def _prepare(self, table: str, schema: pa.Schema, key: Sequence[str] = ()) -> None:
        check_supported(schema, self.sink.url)
        existing = self.columns(table)
        if existing is None:
            self.con.register("__logroll_empty", pa.table({f.name: pa.array([], f.type) for f in schema}))
            try:
                self.con.execute(f"CREATE TABLE {qualified(table)} AS SELECT * FROM __logroll_empty")
            finally:
                self.con.unregister("__logroll_empty")
            return
        compare_schemas(table, existing, schema)

    def _insert(self, target: str, reader: pa.RecordBatchReader) -> int:
        before = self.con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
        self.con.register("__logroll_rows", reader)
        try:
            self.con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM __logroll_rows")
        finally:
            self.con.unregister("__logroll_rows")
        after = self.con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
        return int(after) - int(before)

    def append(self, table: str | None, data: Data) -> int:
        name = resolve_table(table, self.sink.table, self.sink.url)
        reader = as_reader(data)
        self._prepare(name, reader.schema)
        return self._insert(qualified(name), reader)

    def upsert(self, table: str | None, data: Data, key: Sequence[str]) -> int:
        if not key:
            raise UsageError("upsert needs at least one key column")
        name = resolve_table(table, self.sink.table, self.sink.url)
        reader = as_reader(data)
        self._prepare(name, reader.schema, key)
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE __logroll_upsert AS SELECT * FROM {qualified(name)} LIMIT 0"
        )
        rows = self._insert("__logroll_upsert", reader)
        match = " AND ".join(f"t.{ident(k)} IS NOT DISTINCT FROM s.{ident(k)}" for k in key)
        self.con.execute(
            f"DELETE FROM {qualified(name)} t WHERE EXISTS (SELECT 1 FROM __logroll_upsert s WHERE {match})"
        )
        self.con.execute(f"INSERT INTO {qualified(name)} BY NAME SELECT * FROM __logroll_upsert")
        self.con.execute("DROP TABLE __logroll_upsert")
        return rows

    def load(
        self, table: str | None, data: Data, *, source: str, version: str, source_column: str | None = None
    ) -> LoadResult:
        name = resolve_table(table, self.sink.table, self.sink.url)
        found = self.con.execute(
            f"SELECT version FROM {ident(LEDGER)} WHERE table_name = ? AND source = ?", [name, source]
        ).fetchall()
        row = found[0] if found else None
        if row and row[0] == version:
            return LoadResult("skipped", 0)
        previous = row[0] if row else None
        reader = as_reader(data)
        if previous is not None:
            if not source_column:
                raise SinkError(
                    f"{source} changed since it was loaded into {name} (version {previous} -> {version}) "
                    "and the table has no source column to replace its rows by"
                )
            self._prepare(name, reader.schema)
            self.con.execute(f"DELETE FROM {qualified(name)} WHERE {ident(source_column)} = ?", [source])
        rows = self.append(name, reader)
        self.con.execute(
            f"INSERT OR REPLACE INTO {ident(LEDGER)} (table_name, source, version, rows, loaded_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [name, source, version, rows, utc_now()],
        )
        return LoadResult("loaded", rows, previous)

    def replace(self, table: str | None, data: Data, column: str, low: str, high: str | None = None) -> int:
        name = resolve_table(table, self.sink.table, self.sink.url)
        reader = as_reader(data)
        self._prepare(name, reader.schema)
        if high is None:
            self.con.execute(f"DELETE FROM {qualified(name)} WHERE {ident(column)} = ?", [low])
        else:
            self.con.execute(
                f"DELETE FROM {qualified(name)} WHERE {ident(column)} >= ? AND {ident(column)} < ?",
                [low, high],
            )
        return self._insert(qualified(name), reader)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement of your own (`?` placeholders) inside this transaction."""
        self.con.execute(sql, list(params)).fetchall()

    def put_state(self, key: str, value: str) -> None:
        self.con.execute(
            f"INSERT OR REPLACE INTO {ident(STATE)} (key, value, updated_at) VALUES (?, ?, ?)",
            [key, value, utc_now()],
        )


__all__ = ["DuckDBSink", "connect_with_retry", "literal"]


TYPES = {"text": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN"}


class DuckDBSession:
    """A `SqlSession` on a DuckDB file held open for the writer's lifetime (DuckDB allows one
    writing process, and opening the file for each micro-batch would cost ~50 ms)."""

    dialect = "duckdb"

    def __init__(self, sink: DuckDBSink):
        self.sink = sink
        self._held = sink.held()
        self.con = self._held.__enter__()

    def type_name(self, logical: str) -> str:
        return TYPES[logical]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.sink.transaction():
            yield

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        rows = self.con.execute(sql, list(params)).fetchall()
        # DuckDB answers a write with one row: the number of rows it changed.
        return int(rows[0][0]) if rows and len(rows[0]) == 1 and isinstance(rows[0][0], int) else -1

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    def query_chunks(
        self, sql: str, params: Sequence[Any] = (), size: int = 100_000
    ) -> Iterator[list[tuple[Any, ...]]]:
        yield self.query(sql, params)

    def insert(self, table: str, rows: pa.Table) -> None:
        self.con.register("__logroll_load", rows)
        try:
            self.con.execute(f"INSERT INTO {table} SELECT * FROM __logroll_load")
        finally:
            self.con.unregister("__logroll_load")

    def temp_table_sql(self, name: str, like: str) -> str:
        return f"CREATE TEMP TABLE IF NOT EXISTS {name} AS {like} LIMIT 0"

    def close(self) -> None:
        self._held.__exit__(None, None, None)
