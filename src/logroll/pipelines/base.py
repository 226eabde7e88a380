"""A pipeline is a declaration: columns, event time, key, SQL transformations, outputs.

The engine does the work; a pipeline is small, like a sqlglot dialect. The presets in this
package and the pipelines users declare in `logroll.yaml` are the same objects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import posixpath
import re
import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from ..errors import ConfigError, UsageError

# Logical column types and the DuckDB type each one is staged as.
TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "float": "DOUBLE",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "boolean": "BOOLEAN",
}

DEFAULT_TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S",)
# `event_time: arrival`: a file's rows belong to the day of the date folder it arrived in.
ARRIVAL = "arrival"
# A Column.source no file has (a NUL byte): the column is never read and stays NULL (ingest's
# day-less event time); it is not one of a header-less file's fields either.
NOT_IN_FILE = "\x00"
COMPRESSIONS = ("auto", "none", "gzip", "zstd", "bz2")
INPUT_FORMATS = ("csv", "jsonl")
OUTPUT_FORMATS = ("csv", "parquet")
# A layout must name the year, the month and the day, or two days would share a folder.
_LAYOUT_PARTS = (("%Y", "%y", "%G"), ("%m", "%b", "%B", "%j"), ("%d", "%j"))
_SAFE_PARAM = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class Column:
    """One input column. `source` is the CSV header name or, for JSON lines, a dotted path."""

    name: str
    type: str = "string"
    required: bool = True
    formats: tuple[str, ...] = ()
    source: str | None = None
    # When no header matches, use the one column whose sampled values all parse as this type
    # (e.g. consolidate's timestamp, whose name differs from one log source to the next).
    detect: bool = False
    # Computed, not read: an SQL expression over the typed columns declared before it (e.g.
    # weblogs' url_level1). Staged with the others, so checks and outputs use it as a column
    # and it is computed once per row.
    sql: str | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ConfigError(
                f"column {self.name!r}: unknown type {self.type!r}; use one of {', '.join(TYPES)}"
            )

    @property
    def header(self) -> str:
        # An empty `source` is a real header: the unnamed first column of a pandas export.
        return self.name if self.source is None else self.source

    @property
    def sql_type(self) -> str:
        return TYPES[self.type]

    @property
    def time_formats(self) -> tuple[str, ...]:
        if self.formats:
            return self.formats
        return DEFAULT_TIMESTAMP_FORMATS if self.type == "timestamp" else ("%Y-%m-%d",)


@dataclass(frozen=True)
class Output:
    """One result file per event day: `sql` runs over the view `rows` (the day's unique valid rows)."""

    name: str
    sql: str
    path: str
    format: str = "csv"
    order_by: tuple[str, ...] = ()
    # The output column holding each row's event time as text in `time_format` (fixed width,
    # most significant field first, e.g. "%Y%m%d%H"), so a database sink can replace one day's
    # or one hour's rows of the table with a range on that column.
    time_column: str | None = None
    time_format: str | None = None

    def render_path(self, day: dt.date, params: Mapping[str, str]) -> str:
        """The output's path relative to the destination; never escapes it."""
        try:
            rel = self.path.format(date=day, **params)
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
            raise ConfigError(f"output {self.name!r}: bad path template {self.path!r} ({exc})") from exc
        norm = posixpath.normpath(rel)
        if rel.startswith("/") or norm == ".." or norm.startswith("../") or "\\" in rel or ":" in rel:
            raise ConfigError(
                f"output {self.name!r}: path {rel!r} would write outside the destination; use a relative path"
            )
        # The destination's own state folder and the destination itself are not outputs.
        if norm in ("", ".") or norm.split("/")[0] == "_logroll" or "\x00" in rel:
            raise ConfigError(
                f"output {self.name!r}: path {rel!r} is not a file name below the destination"
                " (and not under _logroll/, where logroll keeps its state)"
            )
        return norm


@dataclass(frozen=True)
class Pipeline:
    name: str
    columns: tuple[Column, ...]
    event_time: str
    key: tuple[str, ...]
    outputs: tuple[Output, ...]
    description: str = ""
    input_format: str = "csv"
    suffixes: tuple[str, ...] = (".csv",)
    layout: str = "%Y/%m/%d"
    params: Mapping[str, str] = field(default_factory=dict)
    version: str = "1"
    # Stage every other header column too, as text under its header name, for pipelines whose
    # columns are not known in advance (consolidate); `rows` then holds the union of them.
    passthrough: bool = False
    delimiter: str = ","
    # Field values read as NULL (e.g. ("", "NA") for R and pandas exports); () keeps the reader's
    # default, where only an empty field is NULL.
    null_values: tuple[str, ...] = ()
    # Rules beyond types: (SQL condition over the typed columns, reason). A row for which the
    # condition is false is quarantined with the reason; NULL passes, as in a SQL CHECK.
    checks: tuple[tuple[str, str], ...] = ()
    # Read files and folders that symbolic links under the source point to outside it.
    follow_symlinks: bool = False
    # CSV dialect (input.quote ... input.compression in logroll.yaml). quote None: no quoting;
    # escape None: the quote itself ("" inside a quoted field).
    quote: str | None = '"'
    escape: str | None = None
    header: bool = True  # False: the declared columns in order, every line is data
    skip_rows: int = 0  # lines before the header
    encoding: str = "utf-8"  # any Python codec; a BOM picks UTF-8/16 by itself
    comment: str | None = None  # lines starting with it are skipped (and counted)
    compression: str = "auto"  # auto: by suffix (.gz, .zst, .bz2)
    # The zone whose wall clock event times are in when a value carries an offset (%z, %Z):
    # None converts them to UTC, so the event day is UTC's.
    timezone: str | None = None

    def __post_init__(self) -> None:
        if self.input_format not in INPUT_FORMATS:
            raise ConfigError(
                f"pipeline {self.name!r}: unknown input format {self.input_format!r}; use csv or jsonl"
            )
        problem = dialect_problem(self)
        if problem:
            raise ConfigError(f"pipeline {self.name!r}: {problem}")
        check_layout(self.layout)
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ConfigError(f"pipeline {self.name!r}: duplicate column names")
        if self.event_time not in names and not self.arrival:
            raise ConfigError(
                f"pipeline {self.name!r}: event_time {self.event_time!r} is not a declared column"
            )
        if not self.arrival and self.column(self.event_time).type not in ("timestamp", "date"):
            raise ConfigError(f"pipeline {self.name!r}: event_time column must be a timestamp or date")
        for k in self.key:
            if k not in names:
                raise ConfigError(f"pipeline {self.name!r}: key column {k!r} is not a declared column")
        for c in self.columns:
            if c.sql is not None and (c.name in self.key or c.name == self.event_time):
                raise ConfigError(
                    f"pipeline {self.name!r}: column {c.name!r} is computed (sql); key and event-time "
                    "columns must be read from the input"
                )
        if not self.outputs:
            raise ConfigError(f"pipeline {self.name!r}: declare at least one output")

    @property
    def arrival(self) -> bool:
        """Whether rows belong to the day of their file's date folder (no time of their own)."""
        return self.event_time == ARRIVAL and ARRIVAL not in {c.name for c in self.columns}

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def with_params(self, **overrides: str | None) -> Pipeline:
        """A copy with some parameters set (e.g. initials); values are checked to be path-safe."""
        merged = dict(self.params)
        for key, value in overrides.items():
            if value is None:
                continue
            if key not in self.params:
                raise UsageError(f"pipeline {self.name!r} has no parameter {key!r}")
            if not _SAFE_PARAM.match(value):
                raise UsageError(f"--{key} {value!r}: use letters, digits, '_', '-' or '.' only")
            merged[key] = value
        return Pipeline(**{**self.__dict__, "params": merged})

    def with_format(self, fmt: str | None) -> Pipeline:
        """A copy writing every output as `fmt` (csv or parquet), with the file suffix to match."""
        if not fmt:
            return self
        if fmt not in OUTPUT_FORMATS:
            raise UsageError(f"--format {fmt!r}: use one of {', '.join(OUTPUT_FORMATS)}")
        outputs = []
        for o in self.outputs:
            stem, dot, suffix = o.path.rpartition(".")
            path = f"{stem}.{fmt}" if dot and suffix in OUTPUT_FORMATS else f"{o.path}.{fmt}"
            outputs.append(Output(**{**o.__dict__, "format": fmt, "path": path}))
        return Pipeline(**{**self.__dict__, "outputs": tuple(outputs)})

    def with_layout(self, layout: str | None) -> Pipeline:
        """A copy reading date folders named by the strftime pattern `layout`."""
        if not layout:
            return self
        check_layout(layout)
        return Pipeline(**{**self.__dict__, "layout": layout})

    def with_event_time_source(self, header: str | None) -> Pipeline:
        """A copy whose event-time column is read from the header `header` (no detection)."""
        if not header:
            return self
        if not header.strip():
            raise UsageError("--timestamp-column must not be empty")
        columns = tuple(
            Column(**{**c.__dict__, "source": header.strip(), "detect": False})
            if c.name == self.event_time
            else c
            for c in self.columns
        )
        return Pipeline(**{**self.__dict__, "columns": columns})

    def stage_signature(self) -> str:
        """Changes whenever what staging makes of a file changes, so staged files are re-staged."""
        body = {
            "columns": [_nondefault(c) for c in self.columns],
            "event_time": self.event_time,
            "key": list(self.key),
            "input_format": self.input_format,
            "passthrough": self.passthrough,
            "delimiter": self.delimiter,
            **({"checks": [list(c) for c in self.checks]} if self.checks else {}),
            **{k: getattr(self, k) for k in _DIALECT_DEFAULTS if getattr(self, k) != _DIALECT_DEFAULTS[k]},
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def template_fields(self) -> set[str]:
        return {f for o in self.outputs for _, f, _, _ in string.Formatter().parse(o.path) if f}

    def signature(self) -> str:
        """Changes whenever anything that shapes the outputs changes, so those days rebuild."""
        body = {
            "name": self.name,
            "version": self.version,
            # Where a column is read from is staging's business (stage_signature re-stages).
            "columns": [
                {k: v for k, v in _nondefault(c).items() if k not in ("source", "detect")}
                for c in self.columns
            ],
            "event_time": self.event_time,
            "key": list(self.key),
            "outputs": [_nondefault_output(o) for o in self.outputs],
            "params": dict(sorted(self.params.items())),
        }
        if self.checks:
            body["checks"] = [list(c) for c in self.checks]
        if self.passthrough:  # only when set, so older declarations keep their signature
            body["passthrough"] = True
        if self.timezone:  # the event day is this zone's
            body["timezone"] = self.timezone
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


_DIALECT_DEFAULTS: dict[str, object] = {
    "quote": '"',
    "escape": None,
    "header": True,
    "skip_rows": 0,
    "encoding": "utf-8",
    "comment": None,
    "compression": "auto",
    "timezone": None,
}


def time_format_problem(fmt: str) -> str | None:
    """Why DuckDB's strptime cannot read with `fmt` (an unknown directive), or None: any format
    it accepts works (%a %b %B %z %Z %j %p ...)."""
    import duckdb

    from ..errors import first_line
    from ..quote import literal

    try:
        duckdb.connect().execute(f"SELECT try_strptime('', {literal(fmt)})")
    except duckdb.Error as exc:
        return f"format {fmt!r}: {first_line(exc).split(': ', 1)[-1]}"
    return None


def input_key_problem(key: str, value: str | None) -> str | None:
    """What is wrong with one CSV dialect key's value (quote, escape, encoding, comment,
    timezone), or None."""
    import codecs
    from zoneinfo import ZoneInfo

    if value is None:
        return None
    if (
        key in ("quote", "escape")
        and value != "none"
        and (len(value) != 1 or not value.isascii() or value in "\r\n")
    ):
        return "expected one ASCII character (not a newline), or none"
    if key == "comment" and (not value or "\n" in value or "\r" in value):
        return "expected a non-empty text on one line, such as '#'"
    if key == "encoding":
        try:
            codecs.lookup(value)
        except LookupError:
            return (
                f"unknown encoding {value!r}; use a Python codec name such as utf-8, latin-1, cp1252, utf-16"
            )
    if key == "timezone":
        try:
            ZoneInfo(value)
        except (KeyError, ValueError, OSError):
            return f"unknown timezone {value!r}; use an IANA name such as Europe/Paris or UTC"
    return None


def dialect_problem(pipe: Pipeline) -> str | None:
    """What is wrong with a pipeline's CSV dialect, or None."""
    one = "must be one character (ASCII), not a newline"
    for name, value in (("delimiter", pipe.delimiter), ("quote", pipe.quote), ("escape", pipe.escape)):
        if value is not None and (len(value) != 1 or not value.isascii() or value in "\r\n"):
            return f"{name} {one}"
    if pipe.delimiter == (pipe.quote or '"') or pipe.delimiter == pipe.escape:
        return "the delimiter must differ from the quote and the escape"
    if pipe.quote is None and pipe.escape is not None:
        return "an escape needs a quote (quote: none has no escape)"
    if pipe.skip_rows < 0:
        return "skip_rows must be 0 or more"
    if pipe.compression not in COMPRESSIONS:
        return f"compression {pipe.compression!r}: use one of {', '.join(COMPRESSIONS)}"
    for key in ("comment", "encoding", "timezone"):
        problem = input_key_problem(key, getattr(pipe, key))
        if problem:
            return f"{key}: {problem}"
    return None


def _nondefault_output(out: Output) -> dict[str, object]:
    """An output as a dict without the fields added later at their defaults (stable signatures)."""
    d = asdict(out)
    for name in ("time_column", "time_format"):
        if d[name] is None:
            del d[name]
    return d


def _nondefault(col: Column) -> dict[str, object]:
    """A column as a dict without the fields added later at their defaults (stable signatures)."""
    d = asdict(col)
    if not d["detect"]:
        del d["detect"]
    if d["sql"] is None:
        del d["sql"]
    return d


def check_layout(layout: str) -> None:
    """A date-folder pattern must name year, month and day and stay below the source root."""
    try:
        sample = dt.date(2021, 1, 30).strftime(layout)
    except ValueError as exc:
        raise UsageError(f"layout {layout!r} is not a strftime pattern ({exc})") from None
    missing = [parts[0] for parts in _LAYOUT_PARTS if not any(p in layout for p in parts)]
    if missing:
        raise UsageError(
            f"layout {layout!r} lacks {', '.join(missing)}: a date folder must name year, month and day"
            " (e.g. %Y/%m/%d or %m-%d-%Y)"
        )
    norm = posixpath.normpath(sample)
    if sample.startswith("/") or norm == ".." or norm.startswith("../") or "\\" in sample:
        raise UsageError(f"layout {layout!r}: date folders must be relative to the source")
