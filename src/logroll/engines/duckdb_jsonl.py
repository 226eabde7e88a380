"""DuckDB staging of a JSON-lines file: typed parts per event day and a quarantine of bad lines.

The file goes through DuckDB in chunks of lines (see `jsonl.line_chunks`) into one temporary
table, which spills to disk under the engine's memory limit; the quarantine is written by
DuckDB's COPY straight from it. Nothing of the file is ever held whole in Python.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import jsonl, sql
from ..pipelines.base import Pipeline

if TYPE_CHECKING:
    from .duckdb_engine import DuckDBEngine


@dataclass
class StagedJsonl:
    rows_read: int
    rows_valid: int
    rows_rejected: int
    parts: dict[str, tuple[int, str]]


def stage_jsonl(
    engine: DuckDBEngine,
    path: Path,
    source_uri: str,
    pipeline: Pipeline,
    part_dir: Path,
    quarantine_file: Path,
) -> StagedJsonl:
    """Stage one file; the rejected lines (if any) are written to `quarantine_file` as CSV with
    the columns source_file, line, reason, raw_line."""
    con = engine.con
    select = jsonl.checked_select(pipeline, "__lines")
    empty = jsonl.LINES_SCHEMA.empty_table()
    con.register("__lines", empty)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE __jchecked AS {select} LIMIT 0")
        for chunk in jsonl.prefetched(jsonl.line_chunks(path)):
            con.unregister("__lines")
            con.register("__lines", chunk)
            con.execute(f"INSERT INTO __jchecked {select}")
    finally:
        con.unregister("__lines")
    try:
        read, rejected = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE __reason IS NOT NULL) FROM __jchecked"
        ).fetchone()
        parts = engine._write_parts(pipeline, "__jchecked WHERE __reason IS NULL", part_dir)
        if rejected:
            quarantine_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = quarantine_file.with_name(quarantine_file.name + f".tmp-{os.getpid()}")
            con.execute(
                f"COPY (SELECT {sql.literal(source_uri)} AS source_file, __ord AS line, __reason AS reason, "
                "__raw AS raw_line FROM __jchecked WHERE __reason IS NOT NULL ORDER BY __ord) "
                f"TO {sql.literal(str(tmp))} (FORMAT csv, HEADER true)"
            )
            tmp.replace(quarantine_file)
    finally:
        con.execute("DROP TABLE IF EXISTS __jchecked")
    valid = sum(r for r, _ in parts.values())
    return StagedJsonl(int(read), valid, int(rejected), parts)
