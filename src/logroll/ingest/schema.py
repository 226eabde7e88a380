"""The `ingest` pipeline's schema: declared in logroll.yaml, or inferred from the first file and
then fixed. Every later file must have exactly these columns; its values are typed and checked
by the same staging as every other pipeline (stage.py and the DuckDB engine), so a bad value is
a quarantined row with a reason, and a file that does not fit fails whole with a clear reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import EXCERPT_CHARS, ConfigError, FileMismatch, FileRejected, first_line, safe_text
from ..pipelines.base import NOT_IN_FILE, TYPES, Column, Output, Pipeline
from ..quote import literal, path_literal
from ..stage.csv import dialect_of
from ..stage.dialect import DEFAULT_LIMITS, Prepared
from ..stage.grammar import header_problems
from ..stage.reader import dialect_options, prepare

# Lineage columns every loaded row carries.
SOURCE_COLUMN = "_source_file"
LOADED_AT_COLUMN = "_loaded_at"
LINEAGE = (SOURCE_COLUMN, LOADED_AT_COLUMN)
DEFAULT_NULLS = ("", "NA")
HEADERLESS_NEEDS_COLUMNS = (
    "ingest: header: false needs the columns declared (ingest: columns:, in file order)"
)

# Staging needs an event-time column; ingest rows have no event day, so this one is never in a
# header, stays NULL and is dropped from the part (see stager.IngestStager).
NO_DAY = "__logroll_no_event_day"

_ARROW = {
    "string": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
_FROM_DUCKDB = {
    "BIGINT": "integer",
    "INTEGER": "integer",
    "SMALLINT": "integer",
    "TINYINT": "integer",
    "UBIGINT": "integer",
    "UINTEGER": "integer",
    "USMALLINT": "integer",
    "UTINYINT": "integer",
    "HUGEINT": "float",
    "DOUBLE": "float",
    "FLOAT": "float",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "VARCHAR": "string",
}
_TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
)


def columns_from_config(items: Sequence[Any]) -> list[dict[str, Any]]:
    """Validate logroll.yaml's `ingest: columns:` list ({name, type, formats, source})."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or "name" not in item:
            raise ConfigError(f"ingest column #{i + 1}: write it as {{name: ..., type: ...}}")
        unknown = set(item) - {"name", "type", "formats", "source"}
        if unknown:
            raise ConfigError(f"ingest column {item['name']!r}: unknown key(s) {', '.join(sorted(unknown))}")
        typ = str(item.get("type", "string"))
        if typ not in TYPES:
            raise ConfigError(
                f"ingest column {item['name']!r}: unknown type {typ!r}; use one of {', '.join(TYPES)}"
            )
        formats = item.get("formats") or []
        if isinstance(formats, str):
            formats = [formats]
        out.append(
            {
                "name": str(item["name"]),
                "type": typ,
                "formats": [str(f) for f in formats],
                "source": item.get("source"),
            }
        )
    names = [c["name"] for c in out]
    if not out or len(set(names)) != len(names):
        raise ConfigError("ingest columns: declare at least one column, each name once")
    clash = [n for n in names if n in LINEAGE]
    if clash:
        raise ConfigError(
            f"ingest columns: {', '.join(clash)} is reserved for lineage; rename it with source:"
        )
    return out


def infer_columns(path: Path, input_keys: Mapping[str, Any], spool_dir: Path) -> list[dict[str, Any]]:
    """Column names from the header, types from DuckDB's sniffer over the whole file: both read
    through the staging's own reading layer, so any declared dialect (encoding, skip_rows,
    comment, quote, compression) is read here exactly as the workers will read it."""
    pipe = staging_pipeline([], input_keys)
    if not pipe.header:
        raise ConfigError(HEADERLESS_NEEDS_COLUMNS)
    spool_dir.mkdir(parents=True, exist_ok=True)
    try:
        prep = prepare(path, dialect_of(pipe), DEFAULT_LIMITS, spool_dir)
    except FileRejected as exc:
        raise FileMismatch(f"{path.name}: {first_line(exc)}") from None
    try:
        header = [h.strip() for h in prep.header] if prep.ncols else []
        if not header:
            raise FileMismatch(f"{path.name} is empty: the schema is inferred from the first file's header")
        problems = header_problems(header)
        if problems:
            raise FileMismatch(f"{path.name}: {problems[0]}")
        con = duckdb.connect()
        try:
            con.execute("SET enable_progress_bar = false")
            described, sniff = _sniff(con, prep, pipe.null_values)
        except duckdb.Error as exc:
            raise FileMismatch(f"{path.name}: cannot read it as CSV ({first_line(exc)[:200]})") from None
        finally:
            con.close()
    finally:
        prep.cleanup()
    date_fmt, ts_fmt = (sniff[0] if sniff else (None, None)) or (None, None)
    if len(described) != len(header):
        raise FileMismatch(
            f"{path.name}: the header has {len(header)} names but rows have {len(described)} fields"
        )
    out = []
    for i, (name, (_, duck_type, *_rest)) in enumerate(zip(header, described, strict=True)):
        typ = _FROM_DUCKDB.get(str(duck_type).split("(")[0], "string")
        if str(duck_type).startswith("DECIMAL"):
            typ = "float"
        formats: list[str] = []
        if typ == "timestamp":
            formats = [ts_fmt] if ts_fmt else list(_TIMESTAMP_FORMATS)
        elif typ == "date":
            formats = [date_fmt] if date_fmt else ["%Y-%m-%d"]
        # An unnamed column (the index a pandas export writes first) gets DuckDB's name for it.
        out.append(
            {
                "name": name or f"column{i}",
                "type": typ,
                "formats": formats,
                "source": name if not name else None,
            }
        )
    return columns_from_config(out)


def _sniff(con: Any, prep: Prepared, null_values: Sequence[str]) -> tuple[list[Any], list[Any]]:
    """DuckDB's column types over the whole file, and the date and timestamp formats it found.
    It reads what the reading layer prepared: the file itself (fast path: UTF-8, header on line
    1) or its normalized UTF-8 copy without the header (skipped and comment lines blanked)."""
    opts = ", ".join([*dialect_options(prep), "sample_size=-1"])
    nulls = "[" + ", ".join(literal(v) for v in null_values) + "]"
    source = path_literal(prep.path_for_duckdb)
    described = con.execute(
        f"DESCRIBE SELECT * FROM read_csv({source}, {opts}, nullstr={nulls}, ignore_errors=true)"
    ).fetchall()
    sniff = con.execute(f"SELECT DateFormat, TimestampFormat FROM sniff_csv({source}, {opts})").fetchall()
    return described, sniff


def staging_pipeline(columns: list[dict[str, Any]], input_keys: Mapping[str, Any]) -> Pipeline:
    """The schema as a Pipeline, for stage.stage_csv. No column is required to hold a value:
    empty and `NA` fields are NULL; a value of the wrong type rejects its row. `input_keys`:
    the CSV dialect and null values (settings.input_keys)."""
    cols = [
        Column(
            c["name"],
            c["type"],
            required=False,
            formats=tuple(c.get("formats") or ()),
            source=c.get("source"),
        )
        for c in columns
    ]
    cols.append(Column(NO_DAY, "date", required=False, source=NOT_IN_FILE))
    return Pipeline(
        name="ingest",
        columns=tuple(cols),
        event_time=NO_DAY,
        key=(),
        outputs=(Output("rows", "SELECT * FROM rows", "unused.parquet", "parquet"),),
        **input_keys,
    )


def arrow_schema(columns: list[dict[str, Any]]) -> pa.Schema:
    """Columns as loaded: the declared ones, then the lineage columns."""
    fields = [pa.field(c["name"], _ARROW[c["type"]]) for c in columns]
    fields += [pa.field(SOURCE_COLUMN, pa.string()), pa.field(LOADED_AT_COLUMN, pa.timestamp("us"))]
    return pa.schema(fields)


def check_header(header: list[str], columns: list[dict[str, Any]]) -> None:
    """Exactly the schema's columns, in any order; raises FileMismatch naming the differences."""
    expected = [c["source"] if c.get("source") is not None else c["name"] for c in columns]
    want = {h.lower() for h in expected}
    got = {h.lower() for h in header}
    missing = [h or "(unnamed)" for h in expected if h.lower() not in got]
    extra = [h or "(unnamed)" for h in header if h.lower() not in want]
    seen: set[str] = set()
    dupes = sorted({h or "(unnamed)" for h in header if h in seen or seen.add(h)})  # linear in width
    problems = []
    if missing:
        problems.append(f"missing column(s) {safe_text(', '.join(missing), EXCERPT_CHARS)}")
    if extra:
        problems.append(f"extra column(s) {safe_text(', '.join(extra), EXCERPT_CHARS)}")
    if dupes:
        problems.append(f"repeated column(s) {safe_text(', '.join(dupes), EXCERPT_CHARS)}")
    if problems:
        raise FileMismatch(
            f"header does not match the schema: {'; '.join(problems)} "
            f"(expected: {safe_text(', '.join(h or '(unnamed)' for h in expected), EXCERPT_CHARS)})"
        )
