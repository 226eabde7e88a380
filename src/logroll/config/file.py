"""The logroll.yaml form and its validation (pydantic, yaml), imported only when there is a file
or a LOGROLL_* setting to read: a run with neither never pays for them.

Every problem is reported with the path of the bad field and what was expected, e.g.
`logroll.yaml: pipelines.device_users.columns[1].type: Input should be 'string', 'integer', ...`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from ..errors import ConfigError, LogrollError, first_line
from ..pipelines.base import Pipeline, check_layout
from ..pipelines.declare import (
    ColumnSpec,
    DeclarationProblems,
    EventTimeSpec,
    InputSpec,
    OutputSpec,
    PipelineSpec,
    SpecModel,
    as_field_error,
    build_pipeline,
)
from ..registry import closest
from ..units import parse_size
from . import DEFAULT_FILE, ENV_PREFIX, PATH_SETTINGS, SETTING_NAMES, Config


class Settings(SpecModel):
    """How and where to run: the same names as the `logroll run` flags."""

    source: str | None = None
    dest: str | None = None
    state: str | None = None
    work_dir: str | None = None
    engine: str | None = None
    memory_limit: str | None = None
    threads: int | None = Field(default=None, ge=1)
    lateness: int | None = Field(default=None, ge=0)
    layout: str | None = None
    initials: str | None = None
    timestamp_column: str | None = None
    # --engine spark only: --master and --conf (a mapping here; "k=v k=v" in LOGROLL_SPARK_CONF)
    spark_master: str | None = None
    spark_conf: dict[str, str] | None = None

    @field_validator("spark_conf", mode="before")
    @classmethod
    def _spark_conf(cls, v: Any) -> Any:
        if isinstance(v, str):
            pairs = [item.partition("=") for item in v.replace(",", " ").split()]
            if any(not sep or not key for key, sep, _ in pairs):
                raise ValueError("expected KEY=VALUE items, e.g. spark.executor.memory=4g")
            return {key: value for key, _, value in pairs}
        if isinstance(v, dict):
            return {str(k): str(val) for k, val in v.items()}
        return v

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_size(v, unit_required=True)
            except LogrollError:
                raise ValueError("expected a size like 512MB or 2GB") from None
        return v

    @field_validator("layout")
    @classmethod
    def _layout(cls, v: str | None) -> str | None:
        if v is not None:
            as_field_error(check_layout, v)
        return v


# The light half (config/__init__.py) knows the settings by name, to tell whether any is set.
assert set(Settings.model_fields) == set(SETTING_NAMES), "config.SETTING_NAMES is out of date"


class DeclaredPipeline(PipelineSpec):
    """A pipeline in the file, with run settings of its own."""

    settings: Settings = Settings()


class ConfigFile(Settings):
    pipelines: dict[str, DeclaredPipeline] = {}
    # The ingest pipeline's section (scanner, workers, schema), validated by logroll.ingest.
    ingest: dict[str, Any] | None = None


# ---- errors --------------------------------------------------------------------------------
_UNION_TAGS = ("str", "EventTimeSpec")  # pydantic's names for event_time's two forms


def _is_tag(parts: tuple[Any, ...] | list[Any], i: int) -> bool:
    return i > 0 and parts[i - 1] == "event_time" and parts[i] in _UNION_TAGS


def _loc(parts: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for i, p in enumerate(parts):
        if isinstance(p, int):
            out += f"[{p}]"
        elif not _is_tag(parts, i):
            out += ("." if out else "") + str(p)
    return out or "(top level)"


_FIELDS = sorted(
    {
        f
        for m in (ConfigFile, DeclaredPipeline, ColumnSpec, InputSpec, OutputSpec, EventTimeSpec)
        for f in m.model_fields
    }
)


def _describe(err: Mapping[str, Any]) -> str:
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        name = str(err["loc"][-1])
        close = closest(name, _FIELDS)
        return f"unknown field{f'; did you mean {close!r}?' if close else ''}"
    if err["type"] == "missing":
        return "required field is missing"
    got = err.get("input")
    if err["type"] not in ("value_error",) and not isinstance(got, (dict, list)) and got is not None:
        msg += f" (got {got!r})"
    return msg


def _raise(where: str, problems: list[tuple[str, str]]) -> None:
    if not problems:
        return
    shown = "; ".join(f"{loc}: {msg}" for loc, msg in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    raise ConfigError(f"{where}: {shown}{more}")


def _from_validation(where: str, exc: ValidationError) -> None:
    seen: dict[str, str] = {}
    for err in exc.errors():
        parts = err["loc"]
        tagged = [i for i in range(len(parts)) if _is_tag(parts, i)]
        if tagged and len(parts) == tagged[0] + 1:
            # event_time is a name or a mapping and is neither: one line for both forms
            seen.setdefault(
                _loc(parts), "expected a column name, or a mapping with 'column' (and optional 'formats')"
            )
            continue
        seen.setdefault(_loc(parts), _describe(err))
    # a mistake inside the mapping form says more than "neither form"
    problems = [(loc, msg) for loc, msg in seen.items() if not any(o.startswith(loc + ".") for o in seen)]
    _raise(where, problems)


# ---- the file ---------------------------------------------------------------------------------
def _set(s: Settings) -> dict[str, Any]:
    return {k: v for k, v in s.model_dump().items() if v is not None and k in Settings.model_fields}


def parse(text: str, where: str = DEFAULT_FILE, base: Path | None = None) -> Config:
    """Validate the text of a logroll.yaml; raises ConfigError naming the bad field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise ConfigError(f"{where}: {at}not valid YAML ({problem})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected a mapping of settings and 'pipelines:', found {type(data).__name__}"
        )
    try:
        model = ConfigFile.model_validate(data)
    except ValidationError as exc:
        _from_validation(where, exc)
        raise  # unreachable: _from_validation raises
    pipelines: dict[str, Pipeline] = {}
    per: dict[str, Settings] = {}
    problems: list[tuple[str, str]] = []
    for name, spec in model.pipelines.items():
        try:
            pipelines[name] = build_pipeline(name, spec, f"pipelines.{name}")
        except DeclarationProblems as exc:
            problems.extend(exc.problems)
        except LogrollError as exc:  # a check in Pipeline itself
            problems.append((f"pipelines.{name}", str(exc)))
        per[name] = _relative_to(spec.settings, base)
    _raise(where, problems)
    return Config(None, _set(_relative_to(model, base)), pipelines, {n: _set(v) for n, v in per.items()})


def _relative_to(s: Settings, base: Path | None) -> Settings:
    """Relative local paths in the file mean relative to the file, wherever logroll runs from."""
    if base is None:
        return Settings(**_set(s))
    values = _set(s)
    for key in PATH_SETTINGS:
        v = values.get(key)
        if v and "://" not in v and not Path(v).expanduser().is_absolute():
            values[key] = str((base / v).resolve())
    return Settings(**values)


def validate_env(raw: dict[str, str]) -> dict[str, Any]:
    """Run settings from LOGROLL_* variables (`raw`: name -> text), validated like the file's."""
    try:
        return _set(Settings.model_validate(raw))
    except ValidationError as exc:
        problems = [(ENV_PREFIX + str(e["loc"][0]).upper(), _describe(e)) for e in exc.errors()]
        _raise("environment", problems)
        raise
