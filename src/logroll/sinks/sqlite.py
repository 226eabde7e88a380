"""SQLite: the database a stream keeps beside a folder destination (DEST/_logroll/stream/).

Not a sink of its own (a folder destination gets files); only a `SqlSession` for the stream's
tables and checkpoint. WAL and synchronous=NORMAL: a killed process loses nothing committed (a
power cut may lose the last commits, never half of one).
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import LockedError
from .base import table_rows

TYPES = {"text": "TEXT", "bigint": "BIGINT", "double": "REAL", "boolean": "BOOLEAN"}


class SQLiteSession:
    """One SQLite file, held by one writer: `owner` (e.g. "logroll stream weblogs") names it in
    the error another writer gets."""

    dialect = "sqlite"

    def __init__(self, path: Path, owner: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        # One writer per file: a second stream into the same destination would read the same
        # input and race on the checkpoint.
        self._lock = open(path.with_suffix(".lock"), "a+")
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise LockedError(
                f"another `{owner}` is writing to this destination ({path}); stop it first"
            ) from None
        self.path = path
        self.con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.execute("PRAGMA temp_store=MEMORY")

    def type_name(self, logical: str) -> str:
        return TYPES[logical]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.con.execute(sql, list(params)).rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    def query_chunks(
        self, sql: str, params: Sequence[Any] = (), size: int = 100_000
    ) -> Iterator[list[tuple[Any, ...]]]:
        cur = self.con.execute(sql, list(params))
        rows = cur.fetchmany(size)
        yield rows  # at least once, if empty: the caller makes its table from it
        while rows := cur.fetchmany(size):
            yield rows

    def insert(self, table: str, rows: pa.Table) -> None:
        marks = ", ".join("?" for _ in rows.column_names)
        self.con.executemany(f"INSERT INTO {table} VALUES ({marks})", table_rows(rows))

    def temp_table_sql(self, name: str, like: str) -> str:
        return f"CREATE TEMP TABLE IF NOT EXISTS {name} AS {like} LIMIT 0"

    def close(self) -> None:
        self.con.close()
        self._lock.close()
