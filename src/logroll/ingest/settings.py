"""Everything `ingest` can be told: arguments over the `ingest:` section of logroll.yaml over
the defaults below; and where its state and work files go when not told."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, UsageError, first_line
from ..storage.files import cache_root
from ..units import parse_size
from ..urls import file_of, identity, redact_url, split_table
from ..urls import scheme as url_scheme
from .schema import DEFAULT_NULLS, HEADERLESS_NEEDS_COLUMNS, staging_pipeline

# The settings that say how a file is read: what `run` hands on to scan and work, and what a
# worker reads every file with.
INPUT_KEYS = (
    "delimiter", "null_values", "quote", "escape", "header", "skip_rows", "encoding", "comment",
    "compression",
)  # fmt: skip

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
    # The CSV dialect, as a pipeline's `input:` keys (docs/pipelines.md); None: the default.
    quote: str | None = None
    escape: str | None = None
    header: bool | None = None
    skip_rows: int | None = None
    encoding: str | None = None
    comment: str | None = None
    compression: str | None = None
    suffixes: list[str] | None = None
    follow_symlinks: bool | None = None  # read what links under the source point to outside it
    storage_options: dict[str, Any] | None = field(default=None, repr=False)


DEFAULTS = IngestSettings(
    batch_bytes="256MB",
    max_wait="10m",
    overlap="1h",
    max_attempts=3,
    lease="60s",
    backoff="30s",
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
    unknown = set(given) - {f.name for f in fields(IngestSettings)}
    if unknown:  # a misspelt keyword must not fall back to a default without a word
        known = ", ".join(sorted(f.name for f in fields(IngestSettings)))
        raise UsageError(f"unknown ingest setting(s) {', '.join(sorted(unknown))}; known: {known}")
    out = IngestSettings()
    for f in fields(IngestSettings):
        for layer in (given.get(f.name), getattr(config, f.name), getattr(DEFAULTS, f.name)):
            if layer is not None:
                setattr(out, f.name, layer)
                break
    return out


def input_keys(s: IngestSettings, stored: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Pipeline fields (CSV dialect, null values) the settings declare, over `stored` (what
    the state recorded: JobStore.stored_input) over the defaults; checked: a wrong one is a
    ConfigError naming the key, before any file is read."""
    checks: list[tuple[str, Any, type | tuple[type, ...]]] = [
        ("delimiter", s.delimiter, str),
        ("quote", s.quote, str),
        ("escape", s.escape, str),
        ("header", s.header, bool),
        ("skip_rows", s.skip_rows, int),
        ("encoding", s.encoding, str),
        ("comment", s.comment, str),
        ("compression", s.compression, str),
    ]
    for key, value, kind in checks:
        # bool is an int to Python, not a line count to a user
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise ConfigError(
                f"ingest: {key}: expected {'true or false' if kind is bool else kind.__name__}, got {value!r}"
            )
    nulls = s.null_values
    if nulls is not None and (isinstance(nulls, str) or not all(isinstance(v, str) for v in nulls)):
        raise ConfigError('ingest: null_values: expected a list of texts, such as ["", "NA"]')
    keys: dict[str, Any] = {"delimiter": ",", "null_values": DEFAULT_NULLS, **(stored or {})}
    for key, value, _ in checks:
        if value is not None:
            keys[key] = value
    if nulls:  # an empty list keeps the default, as it always has
        keys["null_values"] = nulls
    keys["null_values"] = tuple(keys["null_values"])
    if keys.get("quote") == "none":
        keys["quote"] = None
    if keys.get("escape") == "none":
        keys["escape"] = None
    if not keys.get("header", True) and not s.columns and stored is None:
        raise ConfigError(HEADERLESS_NEEDS_COLUMNS)
    try:
        staging_pipeline([], keys)  # Pipeline checks the dialect as for every other pipeline
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"ingest: {str(exc).split(': ', 1)[-1]}") from None
    return keys


def check_config(path: str | Path | None = None) -> bool:
    """`logroll validate` for the `ingest:` section: every key as a scanner or a worker would
    read it (sizes, durations, dialect, columns), without touching any data. False: no section."""
    from ..units import parse_duration
    from .schema import columns_from_config

    given = load_config(path)
    if given == IngestSettings():
        return False
    s = settings(config=path)
    input_keys(s)
    if s.columns:
        columns_from_config(s.columns)
    parse_bytes(s.batch_bytes or "256MB", "ingest: batch_bytes")
    for key in ("max_wait", "overlap", "lease", "backoff"):
        parse_duration(getattr(s, key), f"ingest: {key}")
    if not isinstance(s.max_attempts, int) or isinstance(s.max_attempts, bool) or s.max_attempts < 1:
        raise ConfigError(f"ingest: max_attempts: expected a whole number, 1 or more, got {s.max_attempts!r}")
    return True


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
