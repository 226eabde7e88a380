"""Everything `ingest` can be told: arguments over the `ingest:` section of logroll.yaml over
the defaults below; and where its state and work files go when not told."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, UsageError, first_line
from ..storage.files import cache_root
from ..units import parse_size
from ..urls import file_of, identity, redact_url, split_table
from ..urls import scheme as url_scheme
from .schema import DEFAULT_NULLS

CONFIG_FILE = "logroll.yaml"


@dataclass
class IngestSettings:
    """Everything `ingest` can be told; None means "not given here"."""

    source: str | None = None
    state: str | None = None
    dest: str | None = None
    work_dir: str | None = None
    batch_bytes: str | int | None = None
    max_wait: str | float | None = None
    overlap: str | float | None = None
    max_attempts: int | None = None
    lease: str | float | None = None
    backoff: str | float | None = None
    columns: list[Any] | None = None
    null_values: list[str] | None = None
    delimiter: str | None = None
    suffixes: list[str] | None = None
    storage_options: dict[str, Any] | None = field(default=None, repr=False)


DEFAULTS = IngestSettings(
    batch_bytes="256MB",
    max_wait="10m",
    overlap="1h",
    max_attempts=3,
    lease="60s",
    backoff="30s",
    null_values=list(DEFAULT_NULLS),
    delimiter=",",
    suffixes=[".csv"],
)


def load_config(path: str | Path | None = None) -> IngestSettings:
    """The `ingest:` section of logroll.yaml (--config, $LOGROLL_CONFIG or ./logroll.yaml), or empty
    settings. Relative local paths in the file are relative to the file."""
    from ..config import find_config

    file = find_config(path)
    if file is None:
        return IngestSettings()
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid YAML ({first_line(exc)})") from None
    section = doc.get("ingest") if isinstance(doc, dict) else None
    if section is None:
        return IngestSettings()
    if not isinstance(section, dict):
        raise ConfigError(f"{file}: ingest: must be a mapping of settings")
    known = {f.name for f in fields(IngestSettings)} - {"storage_options"}
    unknown = set(section) - known
    if unknown:
        raise ConfigError(
            f"{file}: unknown ingest setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
        )
    base = file.resolve().parent
    for key in ("source", "state", "work_dir"):
        v = section.get(key)
        if isinstance(v, str) and "://" not in v and not Path(v).expanduser().is_absolute():
            section[key] = str(base / v)
    return IngestSettings(**section)


def settings(**given: Any) -> IngestSettings:
    """Arguments over logroll.yaml over defaults."""
    config = load_config(given.pop("config", None))
    out = IngestSettings()
    for f in fields(IngestSettings):
        for layer in (given.get(f.name), getattr(config, f.name), getattr(DEFAULTS, f.name)):
            if layer is not None:
                setattr(out, f.name, layer)
                break
    return out


def parse_bytes(value: str | int, what: str) -> int:
    return parse_size(value, what, "256MB, 1GB or 64MiB")


def default_state(dest: str | None) -> str | None:
    """Where the scanner and job tables live when --state is not given: the destination's own
    PostgreSQL database, or a SQLite file beside a DuckDB file or inside a Parquet folder."""
    if not dest:
        return None
    kind = url_scheme(dest)
    if kind.startswith("postgres"):
        return split_table(dest)[0]
    if kind == "duckdb":
        path = file_of(dest)
        return str(path.with_name(path.name + ".state.sqlite"))
    if kind == "parquet":
        return str(file_of(dest) / "_logroll" / "state.sqlite")
    return None


def default_work_dir(dest: str) -> Path:
    if url_scheme(dest) == "parquet":
        return file_of(dest) / "_logroll" / "work"
    # Named after the destination's identity: a password or an option in the URL changes nothing.
    digest = hashlib.sha256(identity(dest).encode()).hexdigest()[:16]
    return cache_root() / f"ingest-{digest}"


def with_table(dest: str) -> str:
    """A DuckDB file without #table gets a table named after the file (credit.duckdb -> credit);
    a PostgreSQL URL must name its table."""
    if "#" in dest:
        return dest
    kind = url_scheme(dest)
    if kind == "duckdb":
        return f"{dest}#{file_of(dest).stem or 'ingest'}"
    if kind.startswith("postgres"):
        raise UsageError(f"name the table in --dest: {redact_url(dest)}#credit")
    return dest
