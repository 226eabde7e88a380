"""What an engine must do. Staging is per file; building is per event day."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..pipelines.base import Pipeline

if TYPE_CHECKING:  # pyarrow takes a quarter of a second to import; a run with nothing to do needs none
    import pyarrow as pa


@dataclass(frozen=True)
class CsvInput:
    """One CSV file as the engine reads it: `reader` is a DuckDB read_csv(...) call (every column
    VARCHAR, c0..cN) that stores its rejects in `rejects_table` (stage.reader.read_csv_sql)."""

    reader: str
    rejects_table: str
    rejects_scan: str
    arrival: str | None = None  # YYYY-MM-DD: the file's folder day, for `event_time: arrival`


@dataclass
class StagedFile:
    """A CSV file staged: its valid rows as parts; its rejects for the caller to quarantine
    (stage.csv finds each reject's physical line and raw text)."""

    rows: int  # every row the reader returned (valid + semantic rejects)
    rows_valid: int
    # event day (YYYY-MM-DD) -> (rows, path glob of the staged Parquet part)
    parts: dict[str, tuple[int, str]]
    structural: pa.Table  # line (the reader's record number), reason, raw: records it could not read
    semantic: pa.Table  # __ord, reason: rows read whose values break the declaration


@dataclass(frozen=True)
class JsonInput:
    """One JSON-lines file as the engine reads it: `path` holds one record per LF-ended line (the
    file itself, or the reading layer's normalized copy, where the lines it quarantined itself
    are empty). `expected`: its non-blank lines, counted apart from any JSON reader, each of
    which must come back as a row or a reject. `early`: the records the reading layer
    quarantined (line, reason, raw), `line_map`: the source line of each line of `path` (a JSON
    array's elements), else the same numbers."""

    path: Path
    source_uri: str
    expected: int
    early: pa.Table | None = None
    line_map: pa.Array | None = None


@dataclass
class StagedJsonl:
    """A JSON-lines file staged: its parts, its rejects (the early ones included) already written
    to the quarantine file. `reader`: "read_json" (DuckDB's reader, one parallel pass) or
    "lines" (line by line, for files it cannot take whole)."""

    rows_read: int
    rows_valid: int
    rows_rejected: int
    parts: dict[str, tuple[int, str]]
    reader: str = "lines"


@dataclass(frozen=True)
class DayState:
    """A day's maintained unique rows: Parquet files that together hold its `rows` (only the
    columns the outputs read), the first written by a full build, the others added since."""

    files: tuple[str, ...]  # local paths
    rows_unique: int


@dataclass(frozen=True)
class StateJob:
    """A build that keeps the day's state (engines whose `keeps_state` is true): computed from
    every part when `old` is None, else `old` brought up to date with `new_parts` only."""

    folder: Path  # where the state's new files go; a file is never written twice
    tag: str  # in every new file's name: unique per run and day
    old: DayState | None = None
    new_parts: tuple[str, ...] = ()  # with `old`: the day's parts it does not reflect yet
    outputs: bool = True  # False (--stage-only): bring the state up to date, write no output


@dataclass
class BuildOutcome:
    rows_in: int
    rows_unique: int
    # output name -> (finished local file, rows)
    outputs: dict[str, tuple[Path, int]]
    # things the user should know that did not stop the build (e.g. differing column sets)
    warnings: list[str] = field(default_factory=list)
    state: DayState | None = None  # the day's state after the build (None: none kept)
    mode: str = "full"  # full | incremental (only new rows probed) | outputs (state was current)


class Engine(Protocol):
    """Staging turns one file version into typed Parquet parts per event day (plus rejects);
    building turns one day's parts into finished local output files. Both engines stage with
    the same DuckDB code (exact line numbers for rejects), so parts are interchangeable and a
    day staged by one engine can be built by the other. Output bytes come from writer.py."""

    name: str
    keeps_state: bool  # whether build_day maintains day states (StateJob)

    # staging: one file version -> parts (duckdb_engine.DuckDBEngine; SparkEngine delegates)
    def stage_csv(
        self, source: CsvInput, header: list[str], pipeline: Pipeline, part_dir: Path
    ) -> StagedFile: ...

    def stage_jsonl(
        self, source: JsonInput, pipeline: Pipeline, part_dir: Path, quarantine_file: Path
    ) -> StagedJsonl: ...

    # building: one event day's parts -> outputs, in the pipeline's SQL (DuckDB dialect)
    def build_day(
        self,
        day: str,
        part_globs: list[str],
        pipeline: Pipeline,
        out_dir: Path,
        state: StateJob | None = None,
    ) -> BuildOutcome: ...

    def close(self) -> None: ...
