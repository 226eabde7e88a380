"""Engine registry: engines are imported only when chosen, with an install hint when missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..registry import Registry
from .base import BuildOutcome, Engine, StagedFile, StagedJsonl

# Importing an engine's module needs no optional package: the Spark engine checks for pyspark
# (and Java, and the master) itself and says `pip install 'logroll[spark]'` when it is missing.
ENGINES = Registry(
    "engine",
    {
        "duckdb": "logroll.engines.duckdb_engine:DuckDBEngine",
        "spark": "logroll.engines.spark_engine:SparkEngine",
    },
    extras={"spark": "spark"},
)

__all__ = ["BuildOutcome", "Engine", "StagedFile", "StagedJsonl", "make_engine", "engine_settings", "ENGINES"]


def make_engine(name: str, work_dir: Path, **options: Any) -> Engine:
    if name not in ENGINES:
        raise _unknown(name)
    return ENGINES[name](work_dir, **options)  # type: ignore[no-any-return]


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
    hint = ENGINES.hint(name)
    return UsageError(f"unknown engine {name!r}: {hint}choose one of {', '.join(ENGINES)}")
