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

    def __post_init__(self) -> None:
        if self.input_format not in INPUT_FORMATS:
            raise ConfigError(
                f"pipeline {self.name!r}: unknown input format {self.input_format!r}; use csv or jsonl"
            )
        if len(self.delimiter) != 1 or self.delimiter in '"\r\n':
            raise ConfigError(
                f"pipeline {self.name!r}: delimiter must be one character, not a quote or newline"
            )
        check_layout(self.layout)
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ConfigError(f"pipeline {self.name!r}: duplicate column names")
        if self.event_time not in names:
            raise ConfigError(
                f"pipeline {self.name!r}: event_time {self.event_time!r} is not a declared column"
            )
        if self.column(self.event_time).type not in ("timestamp", "date"):
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
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
