"""JSON lines: numbered lines out of a file or a stream, and the SQL that types them.

A file is cut into lines by Arrow in large chunks (no Python loop per line). Each line then
goes through one SQL SELECT that parses it once, reads every declared column by its dotted path
(`user.id` -> `$."user"."id"`), types it like a CSV field, and gives the first reason the line
is unusable: invalid UTF-8, invalid JSON, not a JSON object, a nested object where a value is
expected, then the pipeline's own rules (missing value, bad timestamp, its checks). Blank lines
are not rows: they are skipped, but still counted in the line numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import faults, sql
from .engines.duckdb_engine import DuckDBEngine
from .errors import ConfigError
from .pipelines.base import Pipeline
from .stage import Staged, file_key

CHUNK_BYTES = 16 << 20
_BOM = b"\xef\xbb\xbf"
LINES_SCHEMA = pa.schema([("line", pa.int64()), ("raw", pa.large_binary())])


def json_path(source: str) -> str:
    """`user.id` -> `$."user"."id"`: every key quoted, so keys may hold spaces or dashes."""
    parts = source.split(".")
    if not source or any(not p or '"' in p or "\\" in p for p in parts):
        raise ConfigError(
            f"JSON field {source!r}: use a dotted path of keys (e.g. user.id) without quotes or backslashes"
        )
    return "$." + ".".join(f'"{p}"' for p in parts)


def split_lines(data: bytes, first_line: int) -> pa.Table:
    """Numbered lines of `data` (which ends at a line boundary or at the end of the input)."""
    lines = pc.split_pattern(pa.array([data], pa.large_binary()), b"\n").flatten()
    if len(lines) and data.endswith(b"\n"):
        lines = lines.slice(0, len(lines) - 1)  # the empty "line" after the last newline
    numbers = pa.array(np.arange(first_line, first_line + len(lines), dtype=np.int64))
    return pa.table([numbers, lines], schema=LINES_SCHEMA)


def line_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[pa.Table]:
    """The file as tables of (line, raw bytes), about `chunk_bytes` at a time, lines numbered from 1."""
    line = 1
    carry = b""
    with open(path, "rb") as fh:
        first = True
        while True:
            data = fh.read(chunk_bytes)
            if first:
                data = data.removeprefix(_BOM)
                first = False
            if not data:
                break
            buf = carry + data
            cut = buf.rfind(b"\n")
            if cut < 0:  # one line longer than a chunk: keep reading until it ends
                carry = buf
                continue
            carry = buf[cut + 1 :]
            table = split_lines(buf[: cut + 1], line)
            line += table.num_rows
            yield table
    if carry:
        yield split_lines(carry, line)


def checked_select(pipeline: Pipeline, source: str) -> str:
    """SELECT __ord (the line), the typed declared columns, __reason and __raw (the line's text,
    kept for rejected lines only) from `source` (line BIGINT, raw BLOB); blank lines dropped."""
    paths = [json_path(c.header) for c in pipeline.columns]
    path_list = "[" + ", ".join(sql.literal(p) for p in paths) + "]"
    raw = {c.name: f"__v[{i + 1}]" for i, c in enumerate(pipeline.columns)}
    # decode() of invalid UTF-8 gives NULL: that line is a row (rejected), not a blank one.
    lines = f"SELECT line, raw AS __blob, rtrim(try(decode(raw)), chr(13)) AS __text FROM {source}"
    parsed = (
        f"SELECT line, __blob, __text, try(json_extract_string(__text, {path_list})) AS __v "
        f"FROM ({lines}) WHERE __text IS NULL OR trim(__text, ' ' || chr(9)) <> ''"
    )
    structural = [
        "WHEN __text IS NULL THEN 'invalid UTF-8'",
        "WHEN __v IS NULL THEN 'invalid JSON'",
        f"WHEN NOT regexp_matches(__text, '^[ {chr(9)}]*[{{]') THEN 'not a JSON object'",
    ]
    for i, c in enumerate(pipeline.columns):
        v = f"__v[{i + 1}]"
        structural.append(
            f"WHEN left({v}, 1) IN ('{{', '[') AND json_type(__text, {sql.literal(paths[i])}) IN ('OBJECT', 'ARRAY') "
            f"THEN {sql.literal(f'bad {c.name}: expected a value at {c.header}, got a JSON object or array')}"
        )
        # PostgreSQL text cannot hold NUL: such a value would stop a database sink for good.
        structural.append(
            f"WHEN contains({v}, chr(0)) THEN {sql.literal(f'bad {c.name}: contains a NUL character')}"
        )
    keep = {"__text": "__text", "__v": "__v", "__blob": "__blob"}
    checked = sql.checked_select(pipeline, raw, f"({parsed})", "line", passthrough=keep)
    reason = f"CASE {' '.join(structural)} ELSE __reason END"
    cols = ", ".join(sql.ident(c.name) for c in pipeline.columns)
    return (
        f"SELECT __ord, {cols}, {reason} AS __reason, "
        # A line that is not UTF-8 is kept with its bad bytes escaped (\xFF).
        f"CASE WHEN ({reason}) IS NOT NULL THEN coalesce(__text, CAST(__blob AS VARCHAR)) END AS __raw "
        f"FROM ({checked})"
    )


def stage_jsonl(
    engine: DuckDBEngine,
    path: Path,
    source_uri: str,
    version: str,
    pipeline: Pipeline,
    staged_root: Path,
    quarantine_root: Path,
    quarantine_name: str,
) -> Staged:
    """Stage one JSON-lines file version (the counterpart of stage.stage_csv)."""
    part_dir = staged_root / file_key(source_uri, version)
    target = quarantine_root / f"{quarantine_name}.rejects.csv"
    result = engine.stage_jsonl(path, source_uri, pipeline, part_dir, target)
    faults.point("stage.parts_written")
    quarantine = str(target) if result.rows_rejected else None
    return Staged(result.rows_read, result.rows_valid, result.rows_rejected, result.parts, quarantine)
