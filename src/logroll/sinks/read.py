"""Read-only queries on a destination database, for `status` and `report`.

Opening a sink (`open_sink`) prepares it for writing (its ledger table, DuckDB's one-writer
lock); a status or a report must neither write nor wait behind a running stream, so they read
through here: DuckDB opened read-only, PostgreSQL over a plain autocommit connection, the SQLite
file a stream keeps beside a folder destination opened in SQLite's read-only mode.

    rows = query("duckdb:///weblogs.duckdb", "SELECT count(*) FROM user_web_hits")
    query(url, sql) is None       # the table the query reads does not exist (yet)

Placeholders are `?` for every back-end.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import LockedError, SinkError, StateNotFound, first_line
from ..urls import local_path, postgres_conninfo, redact_url
from ..urls import scheme as url_scheme


def query(url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]] | None:
    """The rows of `sql` on the database of `url` (duckdb://, postgresql:// or a SQLite file
    path), or None when a table it reads does not exist. A database that does not exist raises
    StateNotFound; nothing is created."""
    if "://" not in url:
        return _sqlite(Path(url), sql, params)
    scheme = url_scheme(url)
    if scheme == "duckdb":
        return _duckdb(url, sql, params)
    if scheme.startswith("postgres"):
        return _postgres(url, sql, params)
    raise SinkError(f"{redact_url(url)}: not a database a status can read (duckdb:// or postgresql://)")


def table_exists(url: str, table: str) -> bool:
    """Whether `table` (or a view of that name) exists in the database of `url`."""
    from ..quote import ident

    try:
        return query(url, f"SELECT 1 FROM {ident(table)} LIMIT 1") is not None
    except StateNotFound:
        return False


def _sqlite(path: Path, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
    if not path.is_file():
        raise StateNotFound(f"no stream state at {path}: nothing has been streamed into this destination")
    con = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    finally:
        con.close()


def _duckdb(url: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
    import duckdb

    path = Path(local_path(url.split("://", 1)[1].partition("#")[0])).expanduser()
    if not path.is_file():
        raise StateNotFound(f"{url.partition('#')[0]}: no such DuckDB file ({path}); check --dest")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        # DuckDB lets one process write a file and nobody else open it meanwhile.
        raise LockedError(
            f"{path} is open for writing by another process (a stream or a run?): "
            f"try again when it stops ({first_line(exc)})"
        ) from None
    try:
        return con.execute(sql, list(params)).fetchall()
    except duckdb.CatalogException:
        return None
    finally:
        con.close()


def _postgres(url: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
    from . import SINKS

    psycopg = SINKS.module("postgresql").psycopg  # a missing driver names the [postgres] extra
    conninfo, _ = postgres_conninfo(url)
    try:
        conn = psycopg.connect(conninfo, connect_timeout=15, autocommit=True)
    except psycopg.Error as exc:
        raise SinkError(f"cannot connect to {redact_url(url)}: {first_line(exc)}; check the URL") from None
    try:
        with conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), list(params))
            return list(cur.fetchall())
    except psycopg.errors.UndefinedTable:
        return None
    finally:
        conn.close()
