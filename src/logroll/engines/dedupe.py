"""A day's unique rows the cheap way: hash-first, then the exact dedupe for the few that need it.

`sql.dedupe_select` groups every row of a day by its key (text and timestamp): one hash
aggregate over the whole day, which dominates a build. Here a 64-bit hash of the key is counted
first. A row whose hash occurs once has a key no other row has (equal keys always hash equal),
so it is its key's only row and passes as it is; only the rows whose hash repeats (the true
duplicates, plus the rare collisions) go through `sql.dedupe_select`, unchanged. The result is
exactly dedupe_select's whatever the hash does; the hash only decides how much work is skipped.

The hash is the part's stored `__h` when staging wrote one under this DuckDB's hash function
(its footer says which), else it is computed from the key here.
"""

from __future__ import annotations

from typing import Any

from ..pipelines.base import Pipeline
from ..quote import files_literal, ident, literal
from . import sql
from .duckdb_stage import HASH_COLUMN, HASH_TAG_KEY, key_hash_tag


def stored_hash_usable(con: Any, pipeline: Pipeline, part_globs: list[str]) -> bool:
    """Whether every part holds a `__h` written by this DuckDB's hash() (footers only)."""
    if not pipeline.key or not part_globs:
        return False
    files = files_literal(part_globs)
    tags = con.execute(
        f"SELECT file_name, max(CASE WHEN decode(key) = {literal(HASH_TAG_KEY)} THEN decode(value) END) "
        f"FROM parquet_kv_metadata({files}) GROUP BY 1"
    ).fetchall()
    n_files = con.execute(f"SELECT count(DISTINCT file_name) FROM parquet_metadata({files})").fetchone()[0]
    tag = key_hash_tag(con, pipeline)
    return len(tags) == n_files and all(t == tag for _, t in tags)


def with_hash(pipeline: Pipeline, source: str, stored: bool) -> str:
    """`source` (which has the key columns, and `__h` when `stored`) with the key's hash as `__h`."""
    if stored:
        return source
    keys = ", ".join(ident(k) for k in pipeline.key)
    return f"(SELECT *, hash({keys}) AS {HASH_COLUMN} FROM {source})"


def unique_rows_select(
    pipeline: Pipeline, hashed: str, out_columns: list[str], columns: list[str], keep: list[str] | None
) -> str:
    """The rows of `sql.dedupe_select(pipeline, source, columns, keep)`, whose output columns are
    `out_columns`, from `hashed`: that source with `__h` (see with_hash). Scans it three times,
    which for Parquet costs less than the one aggregate it saves."""
    exact = sql.dedupe_select(pipeline, "__cand", columns, keep)
    cols = ", ".join(ident(c) for c in out_columns)
    h = HASH_COLUMN
    # NOT MATERIALIZED: DuckDB materializes a CTE read more than once by default, and here that
    # is every row of the day with its key text (2.4x the CPU on the benchmark, and spilling).
    return (
        f"WITH __src AS NOT MATERIALIZED (SELECT * FROM {hashed}), "
        f"__dup AS MATERIALIZED (SELECT {h} FROM __src GROUP BY {h} HAVING count(*) > 1), "
        f"__cand AS NOT MATERIALIZED (SELECT * EXCLUDE ({h}) FROM __src SEMI JOIN __dup USING ({h})) "
        f"SELECT {cols} FROM __src ANTI JOIN __dup USING ({h}) "
        f"UNION ALL {exact}"
    )
