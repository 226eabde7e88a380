"""A reference driver of the reading layer for its unit tests: prepare -> DuckDB -> verify, and on
a mismatch once more through the sanitizer (what stage/csv.py does with the one-pass staging)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from logroll.stage.dialect import DEFAULT_LIMITS, PLAIN
from logroll.stage.reader import Dialect, Limits, Prepared, Verdict, prepare, read_csv_sql, verify


@dataclass
class ReadResult:
    prep: Prepared
    verdict: Verdict
    rows: list[tuple] | int  # the rows (fetch=True) or their count
    attempts: list[str]  # "fast", "sanitized"
    quarantine: list[tuple[int, str, str]]  # (physical line, reason, raw), sorted


_DUCK_REASONS = {
    "CAST": "bad value",
    "MISSING COLUMNS": "too few columns",
    "TOO MANY COLUMNS": "too many columns",
    "UNQUOTED VALUE": "malformed quoting",
    "LINE SIZE OVER MAXIMUM": "line too long",
    "INVALID ENCODING": "invalid UTF-8",
    "INVALID UNICODE": "invalid UTF-8",
    "INVALID STATE": "malformed CSV",
}


def duckdb_read(
    con: Any, prep: Prepared, fetch: bool = True, query: str | None = None
) -> tuple[Any, list[Any]]:
    """Run the strict read over prep's file: (rows or row count, [(line, error_type, csv_line)])."""
    if prep.ncols == 0:
        return ([] if fetch else 0), []
    src = read_csv_sql(prep, rejects_table="__rej", rejects_scan="__scan")
    q = query.format(src=src) if query else f"SELECT * FROM {src}"
    if fetch:
        rows = con.execute(q).fetchall()
    else:
        rows = con.execute(f"SELECT count(*) FROM ({q})").fetchone()[0]
    try:
        rej = con.execute(
            "SELECT line, arg_min(error_type::VARCHAR, coalesce(column_idx, 0)), arg_min(csv_line, coalesce(column_idx, 0)) "
            "FROM __rej GROUP BY line ORDER BY line"
        ).fetchall()
    except duckdb.CatalogException:  # DuckDB made no reject table (no error, or never created)
        rej = []
    con.execute("DROP TABLE IF EXISTS __rej; DROP TABLE IF EXISTS __scan")
    return rows, rej


def read_checked(
    con: Any,
    path: Path,
    dialect: Dialect = PLAIN,
    limits: Limits = DEFAULT_LIMITS,
    spool_dir: Path | None = None,
    columns: list[str] | None = None,
    fetch: bool = True,
    query: str | None = None,
) -> ReadResult:
    """prepare -> DuckDB -> verify; on a mismatch, once more through the sanitizer."""
    attempts = []
    prep = prepare(path, dialect, limits, spool_dir, columns)
    while True:
        attempts.append("sanitized" if prep.spooled else "fast")
        try:
            rows, rej = duckdb_read(con, prep, fetch, query)
        except duckdb.Error as e:  # DuckDB gave up on the file: never trusted, never final
            con.execute("DROP TABLE IF EXISTS __rej; DROP TABLE IF EXISTS __scan")
            rows, rej = ([] if fetch else 0), []
            v = Verdict(False, [f"DuckDB failed: {str(e).splitlines()[0]}"], [])
        else:
            n = len(rows) if fetch else rows
            v = verify(prep, n, [(line, raw) for line, _, raw in rej])
        if v.ok or prep.spooled:
            break
        prep.cleanup()
        prep = prepare(path, dialect, limits, spool_dir, columns, force_sanitize=True)
        prep.route.insert(0, "; ".join(v.problems))
    types = {prep.physical_line(line): t for line, t, _ in rej}
    quarantine = [(e.line, e.reason, e.raw) for e in prep.early_rejects]
    quarantine += [
        (p, _DUCK_REASONS.get(types.get(p), str(types.get(p)).lower()), raw.strip("\r\n"))
        for p, raw in v.rejects
    ]
    quarantine.sort()
    return ReadResult(prep, v, rows, attempts, quarantine)
