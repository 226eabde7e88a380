"""Engine registry: engines are imported only when chosen, with an install hint when missing."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .base import BuildOutcome, Engine, StageOutcome

ENGINES = ("duckdb", "spark")

__all__ = ["BuildOutcome", "Engine", "StageOutcome", "make_engine", "ENGINES"]


def make_engine(name: str, work_dir: Path, **options: Any) -> Engine:
    if name == "duckdb":
        from .duckdb_engine import DuckDBEngine

        return DuckDBEngine(work_dir, **options)
    if name == "spark":
        # Importing this module needs no pyspark; the engine checks for it (and Java, and the
        # master) and says `pip install 'logroll[spark]'` when it is missing.
        from .spark_engine import SparkEngine

        return SparkEngine(work_dir, **options)
    close = difflib.get_close_matches(name, ENGINES, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError(f"unknown engine {name!r}: {hint}choose one of {', '.join(ENGINES)}")
