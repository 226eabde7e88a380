"""Engine registry: engines are imported only when chosen, with an install hint when missing."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .base import BuildOutcome, Engine, StageOutcome

ENGINES = ("duckdb", "spark")

__all__ = ["BuildOutcome", "Engine", "StageOutcome", "make_engine", "engine_settings", "ENGINES"]


def make_engine(name: str, work_dir: Path, **options: Any) -> Engine:
    if name == "duckdb":
        from .duckdb_engine import DuckDBEngine

        return DuckDBEngine(work_dir, **options)
    if name == "spark":
        # Importing this module needs no pyspark; the engine checks for it (and Java, and the
        # master) and says `pip install 'logroll[spark]'` when it is missing.
        from .spark_engine import SparkEngine

        return SparkEngine(work_dir, **options)
    raise _unknown(name)


def engine_settings(
    name: str, spark_master: str | None = None, spark_conf: list[str] | dict[str, str] | None = None
) -> dict[str, Any]:
    """The options for engine `name`, refusing ones another engine would silently ignore."""
    if name not in ENGINES:
        raise _unknown(name)
    if name == "spark":
        return {"master": spark_master, "conf": spark_conf}
    given = [flag for flag, value in (("--master", spark_master), ("--conf", spark_conf)) if value]
    if given:
        verb = "apply" if len(given) > 1 else "applies"
        raise UsageError(f"{' and '.join(given)} {verb} to --engine spark only, not to {name}")
    return {}


def _unknown(name: str) -> UsageError:
    close = difflib.get_close_matches(name, ENGINES, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return UsageError(f"unknown engine {name!r}: {hint}choose one of {', '.join(ENGINES)}")
