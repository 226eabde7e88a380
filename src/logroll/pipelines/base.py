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
_SAFE_PARAM = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class Column:
    """One input column. `source` is the CSV header name or, for JSON lines, a dotted path."""

    name: str
    type: str = "string"
    required: bool = True
    formats: tuple[str, ...] = ()
    source: str | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ConfigError(
                f"column {self.name!r}: unknown type {self.type!r}; use one of {', '.join(TYPES)}"
            )

    @property
    def header(self) -> str:
        return self.source or self.name

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

    def render_path(self, day: dt.date, params: Mapping[str, str]) -> str:
        """The output's path relative to the destination; never escapes it."""
        try:
            rel = self.path.format(date=day, **params)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"output {self.name!r}: bad path template {self.path!r} ({exc})") from exc
        norm = posixpath.normpath(rel)
        if rel.startswith("/") or norm == ".." or norm.startswith("../") or "\\" in rel or ":" in rel:
            raise ConfigError(
                f"output {self.name!r}: path {rel!r} would write outside the destination; use a relative path"
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

    def __post_init__(self) -> None:
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

    def template_fields(self) -> set[str]:
        return {f for o in self.outputs for _, f, _, _ in string.Formatter().parse(o.path) if f}

    def signature(self) -> str:
        """Changes whenever anything that shapes the outputs changes, so those days rebuild."""
        body = {
            "name": self.name,
            "version": self.version,
            "columns": [asdict(c) for c in self.columns],
            "event_time": self.event_time,
            "key": list(self.key),
            "outputs": [asdict(o) for o in self.outputs],
            "params": dict(sorted(self.params.items())),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]
