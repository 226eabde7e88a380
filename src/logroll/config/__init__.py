"""logroll.yaml: run settings and user-declared pipelines, validated before any data is touched.

Layers, lowest first: the file, then `LOGROLL_*` environment variables, then flags. Pipelines
declared in the file are built and checked by `logroll.pipelines.declare`.

This half is light: a run with no file and no LOGROLL_* setting resolves its pipeline and
settings without importing pydantic or yaml (a tenth of a second). The file's form and its
validation are in config/file.py, imported when there is something to validate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..pipelines import get_pipeline
from ..pipelines.base import Pipeline

DEFAULT_FILE = "logroll.yaml"
ENV_PREFIX = "LOGROLL_"
# Run settings whose values are paths: relative ones in the file are relative to the file.
PATH_SETTINGS = ("source", "dest", "state", "work_dir")
# The run settings (config.file.Settings' fields, checked there): the same names as the flags.
SETTING_NAMES = (
    "source",
    "dest",
    "state",
    "work_dir",
    "engine",
    "memory_limit",
    "threads",
    "lateness",
    "layout",
    "initials",
    "timestamp_column",
    "spark_master",
    "spark_conf",
)


class Config:
    """A loaded, validated logroll.yaml (or none): run settings and declared pipelines."""

    def __init__(
        self,
        path: Path | None,
        settings: dict[str, Any],
        pipelines: dict[str, Pipeline],
        per_pipeline: dict[str, dict[str, Any]],
    ):
        self.path = path
        self.settings = settings  # the settings given (None values left out)
        self.pipelines = pipelines
        self.per_pipeline = per_pipeline

    def pipeline(self, name: str) -> Pipeline:
        """A declared pipeline, else a preset (with a closest-name hint on a typo)."""
        return get_pipeline(name, self.pipelines)

    def settings_for(self, name: str) -> dict[str, Any]:
        return {**self.settings, **self.per_pipeline.get(name, {})}


def find_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> Path | None:
    """--config, else LOGROLL_CONFIG, else ./logroll.yaml when there is one."""
    env = os.environ if env is None else env
    chosen = path or env.get(ENV_PREFIX + "CONFIG")
    if chosen:
        p = Path(chosen).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist: check --config (or LOGROLL_CONFIG)")
        return p
    default = Path.cwd() / DEFAULT_FILE
    return default if default.is_file() else None


def parse(text: str, where: str = DEFAULT_FILE, base: Path | None = None) -> Config:
    """Validate the text of a logroll.yaml; raises ConfigError naming the bad field."""
    from .file import parse as parse_file

    return parse_file(text, where, base)


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The config in effect: --config / LOGROLL_CONFIG / ./logroll.yaml, or an empty one."""
    found = find_config(path, env)
    if found is None:
        return Config(None, {}, {}, {})
    try:
        text = found.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {str(found)!r}: {exc}") from None
    cfg = parse(text, str(found), found.resolve().parent)
    cfg.path = found
    return cfg


def env_settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run settings from LOGROLL_* variables, validated like the file's."""
    env = os.environ if env is None else env
    raw = {k: env[ENV_PREFIX + k.upper()] for k in SETTING_NAMES if env.get(ENV_PREFIX + k.upper())}
    if not raw:
        return {}
    from .file import validate_env

    return validate_env(raw)


def resolve(
    pipeline: str,
    config: str | Path | None = None,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[Pipeline, dict[str, Any]]:
    """The pipeline and its run settings: file < LOGROLL_* < flags (a None flag is not given)."""
    cfg = load(config, env)
    pipe = cfg.pipeline(pipeline)
    merged = cfg.settings_for(pipeline)
    merged.update(env_settings(env))
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    if merged.get("engine", "duckdb") != "spark":
        # Spark settings kept in the file or environment for `--engine spark` days do not stop a
        # run on another engine; given as flags, they still draw an error.
        for key in ("spark_master", "spark_conf"):
            if (flags or {}).get(key) is None:
                merged.pop(key, None)
    return pipe, merged


def __getattr__(name: str) -> Any:
    # The file's pydantic models, for whoever asks for them by name (imported on first use).
    if name in ("Settings", "ConfigFile", "DeclaredPipeline"):
        from . import file

        return getattr(file, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Config",
    "ConfigFile",
    "DeclaredPipeline",
    "Settings",
    "env_settings",
    "find_config",
    "load",
    "parse",
    "resolve",
]
