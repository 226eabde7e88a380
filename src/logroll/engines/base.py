"""What an engine must do. Staging is per file; building is per event day."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..pipelines.base import Pipeline


@dataclass
class StageOutcome:
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    # event day (YYYY-MM-DD) -> (rows, path glob of the staged Parquet part)
    parts: dict[str, tuple[int, str]] = field(default_factory=dict)
    # rejected rows as (line, reason, raw); written to the quarantine by the caller
    quarantine_file: Path | None = None


@dataclass
class BuildOutcome:
    rows_in: int
    rows_unique: int
    # output name -> (finished local file, rows)
    outputs: dict[str, tuple[Path, int]]
    # things the user should know that did not stop the build (e.g. differing column sets)
    warnings: list[str] = field(default_factory=list)


class Engine(Protocol):
    """Staging turns one file version into typed Parquet parts per event day (plus rejects);
    building turns one day's parts into finished local output files. Both engines stage with
    the same DuckDB code (exact line numbers for rejects), so parts are interchangeable and a
    day staged by one engine can be built by the other. Output bytes come from writer.py."""

    name: str

    # staging: one file version -> parts (duckdb_engine.DuckDBEngine; SparkEngine delegates)
    def stage_csv(self, path: Path, header: list[str], pipeline: Pipeline, part_dir: Path) -> Any: ...

    def stage_jsonl(
        self, path: Path, source_uri: str, pipeline: Pipeline, part_dir: Path, quarantine_file: Path
    ) -> Any: ...

    # building: one event day's parts -> outputs, in the pipeline's SQL (DuckDB dialect)
    def build_day(
        self, day: str, part_globs: list[str], pipeline: Pipeline, out_dir: Path
    ) -> BuildOutcome: ...

    def close(self) -> None: ...
