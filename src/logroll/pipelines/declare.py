"""Declared pipelines: the logroll.yaml form of a Pipeline, both ways, with every check.

A pipeline in the file is declared the way the presets are declared in `logroll.pipelines`
(input, columns, event time, key, SQL outputs); `build_pipeline` turns a validated spec into a
Pipeline and says what is wrong with the path of each bad field; `pipeline_to_dict` writes any
Pipeline back in that form.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import string
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ..errors import ConfigError, LogrollError, first_line
from .base import ARRIVAL, Column, Output, Pipeline, check_layout, input_key_problem, time_format_problem

DEFAULT_SUFFIXES = {"csv": (".csv",), "jsonl": (".jsonl", ".json")}

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def as_field_error(fn: Any, *args: Any) -> None:
    """Run a core check that raises LogrollError as a pydantic field error."""
    try:
        fn(*args)
    except LogrollError as exc:
        raise ValueError(str(exc)) from None


class ColumnSpec(SpecModel):
    name: str = Field(min_length=1)
    type: Literal["string", "integer", "float", "timestamp", "date", "boolean"] = "string"
    required: bool = True
    formats: list[str] = []
    source: str | None = None  # "" is a real header: the unnamed first column of a pandas export
    detect: bool = False
    sql: str | None = Field(default=None, min_length=1)  # computed from the columns before it

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v.startswith("__"):
            raise ValueError("names starting with '__' are reserved for logroll")
        return v

    @field_validator("formats")
    @classmethod
    def _formats(cls, v: list[str]) -> list[str]:
        for fmt in v:
            if "%" not in fmt:
                raise ValueError(f"expected strftime formats like '%Y-%m-%d %H:%M:%S', got {fmt!r}")
            problem = time_format_problem(fmt)
            if problem:
                raise ValueError(problem)
        return v


class InputSpec(SpecModel):
    format: Literal["csv", "jsonl"] = "csv"
    suffixes: list[str] | None = None
    layout: str = "%Y/%m/%d"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    passthrough: bool = False
    null_values: list[str] = []
    follow_symlinks: bool = False
    # CSV dialect: quote is one character or `none`; escape defaults to the quote
    quote: str = '"'
    escape: str | None = None
    header: bool = True
    skip_rows: int = Field(default=0, ge=0)
    encoding: str = "utf-8"
    comment: str | None = None
    compression: Literal["auto", "none", "gzip", "zstd", "bz2"] = "auto"

    @field_validator("quote", "escape", "encoding", "comment")
    @classmethod
    def _dialect(cls, v: str | None, info: ValidationInfo) -> str | None:
        problem = input_key_problem(info.field_name or "", v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("layout")
    @classmethod
    def _layout(cls, v: str) -> str:
        as_field_error(check_layout, v)
        return v

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, v: str) -> str:
        if v in '"\r\n':
            raise ValueError("expected one character that is not a quote or a newline")
        return v


class EventTimeSpec(SpecModel):
    column: str = Field(min_length=1)
    formats: list[str] | None = None


class CheckSpec(SpecModel):
    """A rule beyond types: rows where `condition` (SQL over the typed columns) is false are
    quarantined with `reason`."""

    condition: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class OutputSpec(SpecModel):
    name: str
    sql: str = Field(min_length=1)
    path: str = Field(min_length=1)
    format: Literal["csv", "parquet"] = "csv"
    order_by: list[str] = []
    # for database destinations: the output column holding each row's event time as text
    time_column: str | None = None
    time_format: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("expected a name of letters, digits, '_' or '-', starting with a letter")
        return v


class PipelineSpec(SpecModel):
    description: str = ""
    input: InputSpec = InputSpec()
    columns: list[ColumnSpec] = Field(min_length=1)
    event_time: str | EventTimeSpec
    key: list[str] = []
    checks: list[CheckSpec] = []
    outputs: list[OutputSpec] = Field(min_length=1)
    params: dict[str, str] = {}
    version: str = "1"
    # the zone whose wall clock event times with an offset are converted to (default UTC)
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str | None) -> str | None:
        from zoneinfo import ZoneInfo

        if v is not None:
            try:
                ZoneInfo(v)
            except (KeyError, ValueError, OSError):
                raise ValueError(
                    f"unknown timezone {v!r}; use an IANA name such as Europe/Paris or UTC"
                ) from None
        return v


# ---- declared pipelines -----------------------------------------------------------------------
def _template_fields(path: str) -> list[tuple[str, str]]:
    """(field name, conversion+spec) of every {field} in a path template."""
    return [
        (f, ("!" + c if c else "") + (s or ""))
        for _, f, s, c in string.Formatter().parse(path)
        if f is not None
    ]


def _check_sql(sql: str, allowed: set[str]) -> str | None:
    """Why `sql` is not one read-only query over the allowed tables, or None."""
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first else ""
        return f"SQL does not parse{where}: {first_line(exc)}"
    if len(statements) != 1:
        return f"expected one SELECT statement, found {len(statements)}"
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        return f"expected a SELECT query, found {tree.key.upper()}"
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        name = table.name.lower() if isinstance(table.this, exp.Identifier) else ""
        if not name or table.args.get("db") or (name not in allowed and name not in ctes):
            shown = table.sql(dialect="duckdb")
            return (
                f"reads {shown!r}; a transformation reads only the view 'rows' (the day's unique valid rows)"
                " and its own WITH names"
            )
    return None


def _bind(pipe: Pipeline, query: str) -> tuple[list[str] | None, str | None]:
    """Column names of `query` over an empty `rows` with the declared columns, or why not."""
    import duckdb

    from ..quote import ident

    con = duckdb.connect()
    try:
        cols = ", ".join(f"{ident(c.name)} {c.sql_type}" for c in pipe.columns)
        con.execute(f"CREATE TABLE rows ({cols})")
        return list(con.sql(query).columns), None
    except duckdb.Error as exc:
        return None, first_line(exc)
    finally:
        con.close()


_OTHER_DAYS = (dt.date(2021, 1, 31), dt.date(2021, 2, 28), dt.date(2022, 1, 30))


def check_pipeline(pipe: Pipeline, at: str) -> list[tuple[str, str]]:
    """Problems of a declaration that need more than one field to see, with their paths."""
    problems: list[tuple[str, str]] = []
    names = {c.name for c in pipe.columns}
    seen_paths: dict[str, str] = {}
    for i, out in enumerate(pipe.outputs):
        where = f"{at}.outputs[{i}]"
        for field_name, spec in _template_fields(out.path):
            if "!" in spec or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field_name):
                problems.append(
                    (f"{where}.path", f"{{{field_name}}}: only plain fields like {{date:%Y%m%d}}")
                )
            elif field_name != "date" and field_name not in pipe.params:
                known = ", ".join(["date", *sorted(pipe.params)])
                problems.append((f"{where}.path", f"unknown field {{{field_name}}}; use one of {known}"))
        if any(p[0] == f"{where}.path" for p in problems):
            continue
        try:
            one = out.render_path(dt.date(2021, 1, 30), pipe.params)
            # another day, month and year each must give another file
            others = [out.render_path(d, pipe.params) for d in _OTHER_DAYS]
        except LogrollError as exc:
            problems.append((f"{where}.path", str(exc)))
            continue
        if one in others:
            problems.append(
                (
                    f"{where}.path",
                    "every day would write the same file; put the day in it, e.g. {date:%Y%m%d}",
                )
            )
        if one in seen_paths:
            problems.append((f"{where}.path", f"same file as output {seen_paths[one]!r}"))
        seen_paths[one] = out.name
        problem = _check_sql(out.sql, {"rows"})
        if problem:
            problems.append((f"{where}.sql", problem))
            continue
        if pipe.passthrough:
            continue  # the columns of `rows` are only known once files arrive
        columns, error = _bind(pipe, out.sql)
        if error:
            problems.append((f"{where}.sql", error))
            continue
        lowered = {c.lower() for c in columns or []}
        for j, col in enumerate(out.order_by):
            if col.lower() not in lowered:
                problems.append(
                    (
                        f"{where}.order_by[{j}]",
                        f"{col!r} is not an output column; columns: {', '.join(columns or [])}",
                    )
                )
    for i, col in enumerate(pipe.columns):
        expr = getattr(col, "sql", None)
        if expr is not None:
            query = f"SELECT ({expr}) FROM rows"
            error = _check_sql(query, {"rows"}) or (None if pipe.passthrough else _bind(pipe, query)[1])
            if error:
                problems.append((f"{at}.columns[{i}].sql", error))
    for i, (condition, _) in enumerate(pipe.checks):
        query = f"SELECT ({condition}) FROM rows"
        error = _check_sql(query, {"rows"})
        if error is None and not pipe.passthrough:
            _, error = _bind(pipe, query)
        if error:
            problems.append((f"{at}.checks[{i}].condition", error))
    outs = [o.name for o in pipe.outputs]
    for i, name in enumerate(outs):
        if outs.index(name) != i:
            problems.append((f"{at}.outputs[{i}].name", f"output name {name!r} is used twice"))
    for i, k in enumerate(pipe.key):
        if k not in names:
            problems.append((f"{at}.key[{i}]", f"{k!r} is not a declared column"))
    return problems


def build_pipeline(name: str, spec: PipelineSpec, at: str) -> Pipeline:
    """The Pipeline a spec declares; raises ConfigError naming the bad field."""
    problems: list[tuple[str, str]] = []
    if not _NAME.match(name):
        problems.append((at, "pipeline names are letters, digits, '_' or '-', starting with a letter"))
    cols = [c.name for c in spec.columns]
    for i, c in enumerate(cols):
        if cols.index(c) != i:
            problems.append((f"{at}.columns[{i}].name", f"column {c!r} is declared twice"))
    et = spec.event_time if isinstance(spec.event_time, str) else spec.event_time.column
    et_formats = None if isinstance(spec.event_time, str) else spec.event_time.formats
    et_at = f"{at}.event_time" + ("" if isinstance(spec.event_time, str) else ".column")
    if et == ARRIVAL and et not in cols:
        pass  # the day of the date folder each file arrived in
    elif et not in cols:
        problems.append(
            (
                et_at,
                f"{et!r} is not a declared column; declared: {', '.join(cols)} (or 'arrival': the file's folder day)",
            )
        )
    else:
        col = spec.columns[cols.index(et)]
        if col.type not in ("timestamp", "date"):
            problems.append(
                (et_at, f"the event-time column must have type timestamp or date, {et!r} is {col.type}")
            )
        if et_formats and col.formats and list(col.formats) != list(et_formats):
            problems.append(
                (f"{at}.event_time.formats", f"differ from the formats of column {et!r}; give them once")
            )
    for i, k in enumerate(spec.key):
        if k not in cols:
            problems.append((f"{at}.key[{i}]", f"{k!r} is not a declared column"))
    for k, v in spec.params.items():
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", v):
            problems.append((f"{at}.params.{k}", "values are letters, digits, '_', '-' or '.' only"))
    _raise_at(problems)
    columns = tuple(
        Column(
            c.name,
            c.type,
            c.required,
            tuple(et_formats if (c.name == et and et_formats) else c.formats),
            c.source,
            c.detect,
            **({"sql": c.sql} if c.sql is not None else {}),
        )
        for c in spec.columns
    )
    pipe = Pipeline(
        name=name,
        description=spec.description,
        columns=columns,
        event_time=et,
        key=tuple(spec.key),
        outputs=tuple(
            Output(o.name, o.sql, o.path, o.format, tuple(o.order_by), o.time_column, o.time_format)
            for o in spec.outputs
        ),
        params=dict(spec.params),
        version=spec.version,
        checks=tuple((c.condition, c.reason) for c in spec.checks),
        **_input_fields(spec.input),
        timezone=spec.timezone,
    )
    _raise_at(check_pipeline(pipe, at))
    return pipe


def _input_fields(inp: InputSpec) -> dict[str, Any]:
    """The Pipeline fields an `input:` block declares."""
    return {
        "input_format": inp.format,
        "suffixes": tuple(inp.suffixes or DEFAULT_SUFFIXES[inp.format]),
        "layout": inp.layout,
        "passthrough": inp.passthrough,
        "delimiter": inp.delimiter,
        "null_values": tuple(inp.null_values),
        "follow_symlinks": inp.follow_symlinks,
        "quote": None if inp.quote == "none" else inp.quote,
        "escape": None if inp.escape in (None, "none") else inp.escape,
        "header": inp.header,
        "skip_rows": inp.skip_rows,
        "encoding": inp.encoding,
        "comment": inp.comment,
        "compression": inp.compression,
    }


class DeclarationProblems(ConfigError):
    """Every problem of one declaration, with the path of each."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems


def _raise_at(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise DeclarationProblems(problems)


# Every declaration field the YAML form writes; a new one must be added here and to the specs,
# or pipeline_to_dict refuses (tests/test_config.py round-trips every preset).
_EXPRESSED = {
    Pipeline: {
        "name", "columns", "event_time", "key", "outputs", "description", "input_format", "suffixes",
        "layout", "params", "version", "passthrough", "delimiter", "null_values", "checks",
        "follow_symlinks",
        "quote", "escape", "header", "skip_rows", "encoding", "comment", "compression", "timezone",
    },
    Column: {"name", "type", "required", "formats", "source", "detect", "sql"},
    Output: {"name", "sql", "path", "format", "order_by", "time_column", "time_format"},
}  # fmt: skip


def _unexpressed(obj: Any) -> list[str]:
    fields = dataclasses.fields(obj)
    return [
        f.name
        for f in fields
        if f.name not in _EXPRESSED[type(obj)]
        and getattr(obj, f.name)
        != (f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
    ]


def pipeline_to_dict(pipe: Pipeline) -> dict[str, Any]:
    """A Pipeline in the logroll.yaml form (defaults left out), e.g. to start from a preset."""
    missing = _unexpressed(pipe) + [f for part in (*pipe.columns, *pipe.outputs) for f in _unexpressed(part)]
    if missing:
        raise ConfigError(
            f"pipeline {pipe.name!r} sets {', '.join(sorted(set(missing)))}, which logroll.yaml cannot express yet"
        )
    inp: dict[str, Any] = {"format": pipe.input_format}
    if tuple(pipe.suffixes) != DEFAULT_SUFFIXES[pipe.input_format]:
        inp["suffixes"] = list(pipe.suffixes)
    if pipe.layout != "%Y/%m/%d":
        inp["layout"] = pipe.layout
    if pipe.delimiter != ",":
        inp["delimiter"] = pipe.delimiter
    if pipe.passthrough:
        inp["passthrough"] = True
    if pipe.null_values:
        inp["null_values"] = list(pipe.null_values)
    if pipe.follow_symlinks:
        inp["follow_symlinks"] = True
    if pipe.quote != '"':
        inp["quote"] = pipe.quote if pipe.quote is not None else "none"
    for key, default in (("escape", None), ("header", True), ("skip_rows", 0), ("encoding", "utf-8"),
                         ("comment", None), ("compression", "auto")):  # fmt: skip
        if getattr(pipe, key) != default:
            inp[key] = getattr(pipe, key)
    columns = []
    for c in pipe.columns:
        d: dict[str, Any] = {"name": c.name, "type": c.type}
        if not c.required:
            d["required"] = False
        if c.formats:
            d["formats"] = list(c.formats)
        if c.source is not None:
            d["source"] = c.source
        if c.detect:
            d["detect"] = True
        if getattr(c, "sql", None) is not None:
            d["sql"] = c.sql
        columns.append(d)
    outputs = []
    for o in pipe.outputs:
        od: dict[str, Any] = {"name": o.name, "sql": o.sql, "path": o.path, "format": o.format}
        if o.order_by:
            od["order_by"] = list(o.order_by)
        if o.time_column is not None:
            od["time_column"] = o.time_column
        if o.time_format is not None:
            od["time_format"] = o.time_format
        outputs.append(od)
    out: dict[str, Any] = {}
    if pipe.description:
        out["description"] = pipe.description
    out.update(input=inp, columns=columns, event_time=pipe.event_time, key=list(pipe.key))
    if pipe.checks:
        out["checks"] = [{"condition": c, "reason": r} for c, r in pipe.checks]
    out["outputs"] = outputs
    if pipe.params:
        out["params"] = dict(pipe.params)
    if pipe.version != "1":
        out["version"] = pipe.version
    if pipe.timezone:
        out["timezone"] = pipe.timezone
    return out


def dump_yaml(pipes: list[Pipeline]) -> str:
    """A `pipelines:` document declaring `pipes`, loadable as logroll.yaml."""
    body = {"pipelines": {p.name: pipeline_to_dict(p) for p in pipes}}
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)
