"""Sizes and durations as users type them, and the one default memory limit.

parse_size("2GB") -> 2_000_000_000      parse_size("512MiB") -> 536_870_912 (DuckDB's units)
parse_duration("10m") -> 600.0          a bare number is seconds
"""

from __future__ import annotations

import re

from .errors import UsageError

# --memory-limit when none is given. DuckDB: a 10M-row day (the benchmark) peaks under 1 GiB of
# RSS and spills a little; a larger limit spills less. Spark's is its driver heap, which needs
# more to start with. Every command (run, schedule, ingest, stream) and every doc says these.
DEFAULT_MEMORY_LIMIT = {"duckdb": "800MB", "spark": "2GB"}

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "bytes": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def default_memory_limit(engine: str) -> str:
    return DEFAULT_MEMORY_LIMIT.get(engine, DEFAULT_MEMORY_LIMIT["spark"])


def parse_size(
    text: str | int,
    what: str = "--memory-limit",
    example: str = "2GB, 512MB or 4GiB",
    unit_required: bool = False,
) -> int:
    """'2GB' -> 2_000_000_000, '512MiB' -> 536_870_912; an int is bytes already."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m or m.group(2).lower() not in _SIZE_UNITS or (unit_required and not m.group(2)):
        raise UsageError(f"{what} {text!r}: use a size such as {example}")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def percent(text: str) -> float | None:
    """'50%' -> 50.0 (a share of the machine's memory); None for anything else."""
    m = _PERCENT.match(str(text))
    return float(m.group(1)) if m else None


def parse_duration(value: str | float | int, what: str) -> float:
    """'10m' -> 600.0; a bare number is seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise UsageError(f"{what} {value!r}: use a duration such as 30s, 10m, 1h or 2d")
    return float(m.group(1)) * _SECONDS[m.group(2).lower() if m.group(2) else None]
