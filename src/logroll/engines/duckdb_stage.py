"""Staging one CSV file in one pass: `COPY (SELECT ...) TO parquet`, no temp table, no window.

Every parsed row, valid or not, is written to one Parquet file in the reader's order
(`preserve_insertion_order`), carrying only the columns the key and the outputs read
(projection.carried_columns), a stored 64-bit key hash `__h`, and `__reason` (NULL for a valid
row). Then, from the file's footer alone: its row count, its rejected rows (`__reason`'s null
count) and its event-time range. The usual file (one day, no bad row) is renamed into its day's
folder as it is; a file with bad rows or several days is rewritten from that small Parquet
file (never by reading the CSV again). A rejected row's ordinal is its position in the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..pipelines.base import Pipeline
from . import sql
from .base import CsvInput, StagedFile
from .projection import carried_columns

# DuckDB's reject error types, said the way a user reading the quarantine understands them.
REJECT_REASONS = {
    "CAST": "bad value",
    "MISSING COLUMNS": "too few columns",
    "TOO MANY COLUMNS": "too many columns",
    "UNQUOTED VALUE": "malformed quoting",
    "LINE SIZE OVER MAXIMUM": "line too long",
    "INVALID UNICODE": "invalid UTF-8",
    "INVALID ENCODING": "invalid UTF-8",
    "INVALID STATE": "malformed CSV",
}

# Staged parts are read back once or twice from a local disk, soon after: compressing them costs
# more time than it saves (their bulk, random ids, barely compresses). Measured on the benchmark:
# uncompressed parts are written ~25% faster and are ~25% larger. No dictionary either: for
# random ids the writer builds one only to give it up (~7% of staging's CPU).
PART_FORMAT = "FORMAT parquet, COMPRESSION uncompressed, DICTIONARY_SIZE_LIMIT 1"
HASH_COLUMN = "__h"
REASON_COLUMN = "__reason"
# The footer key naming which hash() wrote a part's __h (a build trusts __h only under its own).
HASH_TAG_KEY = "logroll_key_hash"

_SAMPLE = {
    "string": "'logroll'",
    "integer": "42::BIGINT",
    "float": "4.2::DOUBLE",
    "boolean": "true",
    "timestamp": "TIMESTAMP '2021-01-30 10:00:00'",
    "date": "DATE '2021-01-30'",
}


def key_hash_tag(con: Any, pipeline: Pipeline) -> str:
    """What this DuckDB's hash() makes of sample values of the key's types: equal tags, equal
    hash functions (a DuckDB upgrade that changes hash() changes the tag)."""
    args = ", ".join(_SAMPLE[pipeline.column(k).type] for k in pipeline.key)
    return f"duckdb-hash:{con.execute(f'SELECT hash({args})').fetchone()[0]}"


def part_options(con: Any, pipeline: Pipeline, columns: list[str]) -> str:
    """The COPY options of a part holding `columns` (with __h: its hash tag in the footer)."""
    if HASH_COLUMN not in columns:
        return PART_FORMAT
    tag = sql.literal(key_hash_tag(con, pipeline))
    return f"{PART_FORMAT}, KV_METADATA {{{HASH_TAG_KEY}: {tag}}}"


def part_columns(pipeline: Pipeline, header: list[str]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(declared name -> reader column, pass-through name -> reader column, carried columns) of
    a file with `header` (already resolved onto the declared headers)."""
    positions = {name: i for i, name in enumerate(header)}
    raw = {
        c.name: f"c{positions[c.header]}" for c in pipeline.columns if c.header in positions and c.sql is None
    }
    if not pipeline.passthrough:
        return raw, {}, carried_columns(pipeline)
    declared = {c.header: c.name for c in pipeline.columns}
    passthrough = {h: f"c{i}" for i, h in enumerate(header) if h not in declared}
    # Parts keep the file's column order (declared columns in their header's place): the
    # output's column order is made from it.
    order = [declared.get(h, h) for h in header if h in declared or h in passthrough]
    order += [c.name for c in pipeline.columns if c.name not in order]
    return raw, passthrough, order


def stage_csv_parts(
    engine: Any, source: CsvInput, header: list[str], pipeline: Pipeline, part_dir: Path
) -> StagedFile:
    """Stage one file read by `source.reader` into parts per event day under `part_dir`."""
    con = engine.con
    raw, passthrough, carried = part_columns(pipeline, header)
    hashed = bool(pipeline.key)
    columns = carried + ([HASH_COLUMN] if hashed else [])
    scratch = part_dir.with_name(part_dir.name + ".all")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    single = scratch / "all.parquet"
    try:
        select = sql.staged_select(pipeline, raw, source.reader, carried, passthrough, hashed)
        con.execute(f"COPY ({select}) TO {sql.literal(str(single))} ({part_options(con, pipeline, columns)})")
        structural = structural_rejects(con, source.rejects_table)
        con.execute(
            f"DROP TABLE IF EXISTS {source.rejects_table}; DROP TABLE IF EXISTS {source.rejects_scan}"
        )
        rows, rejected, days = footer(con, single, None if pipeline.arrival else pipeline.event_time)
        semantic = _semantic(con, single, rejected)
        valid = rows - rejected
        parts = _split(engine, pipeline, single, part_dir, columns, (valid, rejected, days), source.arrival)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return StagedFile(rows, valid, parts, structural, semantic)


def _split(
    engine: Any,
    pipeline: Pipeline,
    single: Path,
    part_dir: Path,
    columns: list[str],
    counts: tuple[int, int, tuple[str | None, str | None]],
    arrival: str | None,
) -> dict[str, tuple[int, str]]:
    """The parts per day from the all-rows file: renamed as it is when it holds one day and no
    bad row, else rewritten from it."""
    valid, rejected, (lo, hi) = counts
    if part_dir.exists():
        shutil.rmtree(part_dir)  # leftovers of a run that died before its commit
    if not valid:
        return {}
    day = arrival if pipeline.arrival else (lo if lo is not None and lo == hi else None)
    if day is not None:  # the usual case: one day
        day_dir = part_dir / f"__day={day}"
        day_dir.mkdir(parents=True)
        target = day_dir / "data_0.parquet"
        if rejected:
            cols = ", ".join(sql.ident(c) for c in columns)
            engine.con.execute(
                f"COPY (SELECT {cols} FROM read_parquet({sql.path_literal(single)}) WHERE {REASON_COLUMN} IS NULL) "
                f"TO {sql.literal(str(target))} ({part_options(engine.con, pipeline, columns)})"
            )
        else:
            single.rename(target)  # keeps the all-NULL __reason column: builds select by name
        return {day: (valid, str(day_dir / "*.parquet"))}
    src = f"read_parquet({sql.path_literal(single)}) WHERE {REASON_COLUMN} IS NULL"
    return engine.write_parts(pipeline, src, part_dir, columns)


def footer(con: Any, part: Path, event_time: str | None) -> tuple[int, int, tuple[str | None, str | None]]:
    """(rows, rows with a reason, (first day, last day) of the event time) from the footer only."""
    meta = con.execute(
        "SELECT row_group_id, path_in_schema, row_group_num_rows, stats_null_count, stats_min_value, "
        f"stats_max_value FROM parquet_metadata({sql.path_literal(part)})"
    ).fetchall()
    rows = sum({rg: n for rg, _, n, *_ in meta}.values())
    valid = sum(nulls for _, path, _, nulls, _, _ in meta if path == REASON_COLUMN)
    ranges = [(lo, hi) for _, path, _, _, lo, hi in meta if path == event_time and lo is not None]
    lo = min((str(x)[:10] for x, _ in ranges), default=None)
    hi = max((str(y)[:10] for _, y in ranges), default=None)
    return int(rows), int(rows - valid), (lo, hi)


def _semantic(con: Any, single: Path, rejected: int) -> pa.Table:
    """__ord (1-based position among the parsed rows) and reason of every row with a reason."""
    if not rejected:
        # made by DuckDB: building Arrow arrays from Python lists imports pandas (0.7 s)
        return con.sql("SELECT 0::BIGINT AS __ord, ''::VARCHAR AS reason WHERE false").to_arrow_table()
    return con.sql(
        f"SELECT file_row_number + 1 AS __ord, {REASON_COLUMN} AS reason "
        f"FROM read_parquet({sql.path_literal(single)}, file_row_number=true) "
        f"WHERE {REASON_COLUMN} IS NOT NULL ORDER BY 1"
    ).to_arrow_table()


def structural_rejects(con: Any, rejects_table: str) -> pa.Table:
    """line (DuckDB's record number), reason, raw: one row per record the reader could not read."""
    worded = " ".join(f"WHEN {sql.literal(k)} THEN {sql.literal(v)}" for k, v in REJECT_REASONS.items())
    try:
        # The usual file has no reject: a count plans in a tenth of the grouping query's time.
        if not con.execute(f"SELECT count(*) FROM {rejects_table}").fetchall()[0][0]:
            return _no_reject(con)
        return con.sql(
            f"""SELECT line, (CASE error_type {worded} ELSE lower(error_type) END)
                       || CASE WHEN error_type = 'CAST' AND column_name <> '' THEN ' in ' || column_name
                               ELSE '' END AS reason, raw
                FROM (SELECT line::BIGINT AS line,
                   arg_min(error_type::VARCHAR, coalesce(column_idx, 0)) AS error_type,
                   arg_min(coalesce(column_name, ''), coalesce(column_idx, 0)) AS column_name,
                   arg_min(rtrim(ltrim(csv_line, chr(10) || chr(13)), chr(10) || chr(13)), coalesce(column_idx, 0)) AS raw
                FROM {rejects_table} GROUP BY line) ORDER BY line"""
        ).to_arrow_table()
    except Exception as exc:  # DuckDB made no rejects table: no reject (verify counts the rest)
        if "does not exist" not in str(exc):
            raise
        return _no_reject(con)


def _no_reject(con: Any) -> pa.Table:
    # made by DuckDB: any Arrow table built in Python imports pandas (0.7 s)
    return con.sql(
        "SELECT 0::BIGINT AS line, ''::VARCHAR AS reason, ''::VARCHAR AS raw WHERE false"
    ).to_arrow_table()
