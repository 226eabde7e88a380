"""The embedded default engine: DuckDB, streaming and out-of-core under a memory limit."""

from __future__ import annotations

import copy
import itertools
import shutil
from pathlib import Path
from typing import Any

import duckdb

from .. import faults
from ..pipelines.base import Pipeline
from ..units import DEFAULT_MEMORY_LIMIT
from . import duckdb_build, sql
from . import passthrough as passthrough_mod
from .base import BuildOutcome, CsvInput, JsonInput, StagedFile, StagedJsonl, StateJob
from .duckdb_stage import part_options, stage_csv_parts
from .projection import carried_columns


class DuckDBEngine:
    name = "duckdb"
    keeps_state = True

    def __init__(
        self,
        work_dir: Path,
        memory_limit: str = DEFAULT_MEMORY_LIMIT["duckdb"],
        threads: int | None = None,
        **_: Any,
    ):
        self.work_dir = Path(work_dir)
        spill = self.work_dir / "spill"
        spill.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": str(spill)})
        # DuckDB draws a progress bar on stdout after 2 s, which breaks `--json`.
        self.con.execute("SET enable_progress_bar = false")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute("SET preserve_insertion_order = true")
        self._seq = itertools.count()

    def worker(self) -> DuckDBEngine:
        """An engine for another worker thread on this one's database: its own cursor (a
        connection is not thread-safe), the same memory limit, threads and spill folder."""
        other = copy.copy(self)
        other.con = self.con.cursor()
        other.con.execute("SET enable_progress_bar = false")  # a per-connection setting
        other._seq = itertools.count()
        return other

    def close(self) -> None:
        self.con.close()

    # ---- stage ---------------------------------------------------------------------------
    def stage_csv(
        self, source: CsvInput, header: list[str], pipeline: Pipeline, part_dir: Path
    ) -> StagedFile:
        """One CSV file in one pass into parts per event day (see duckdb_stage)."""
        return stage_csv_parts(self, source, header, pipeline, part_dir)

    def stage_jsonl(
        self, source: JsonInput, pipeline: Pipeline, part_dir: Path, quarantine_file: Path
    ) -> StagedJsonl:
        """Stage one JSON-lines file (engines/jsonl.stage_file): its rejects, the reading layer's
        early ones included, go to `quarantine_file` as CSV (source_file, line, reason, raw_line).
        Nothing of the file is ever held whole in Python."""
        from . import jsonl  # imported here: numpy, a tenth of a second

        return jsonl.stage_file(self.con, self.write_parts, source, pipeline, part_dir, quarantine_file)

    def write_parts(
        self, pipeline: Pipeline, source: str, part_dir: Path, columns: list[str] | None = None
    ) -> dict[str, tuple[int, str]]:
        if part_dir.exists():
            shutil.rmtree(part_dir)  # leftovers of a run that died before its commit
        names = columns or [c.name for c in pipeline.columns]
        cols = ", ".join(sql.ident(c) for c in names)
        options = part_options(self.con, pipeline, names)
        et = sql.ident(pipeline.event_time)
        counts = self.con.execute(
            f"SELECT strftime(CAST({et} AS DATE), '%Y-%m-%d') AS d, count(*) FROM {source} GROUP BY 1 ORDER BY 1"
        ).fetchall()
        if not counts:
            return {}
        part_dir.parent.mkdir(parents=True, exist_ok=True)
        faults.point("stage.writing_parts")
        if len(counts) == 1:  # the usual case: one day, written straight into its folder
            day_dir = part_dir / f"__day={counts[0][0]}"
            day_dir.mkdir(parents=True)
            self.con.execute(
                f"COPY (SELECT {cols} FROM {source}) TO {sql.literal(str(day_dir / 'data_0.parquet'))} "
                f"({options})"
            )
        else:
            self.con.execute(
                f"COPY (SELECT {cols}, strftime(CAST({et} AS DATE), '%Y-%m-%d') AS __day FROM {source}) "
                f"TO {sql.literal(str(part_dir))} ({options}, PARTITION_BY (__day))"
            )
        return {day: (int(rows), str(part_dir / f"__day={day}" / "*.parquet")) for day, rows in counts}

    # ---- build ---------------------------------------------------------------------------
    def day_source(
        self, day: str, part_globs: list[str], pipeline: Pipeline
    ) -> tuple[str, list[str] | None, list[str]]:
        """The day's staged rows as a relation, their columns when not the declared ones
        (pass-through pipelines), and warnings. The Spark engine binds its outputs' schema on it."""
        columns: list[str] | None = None
        warnings: list[str] = []
        if part_globs and pipeline.passthrough:
            files = sql.files_literal(part_globs)
            columns, partial = passthrough_mod.union_columns(passthrough_mod.part_columns(part_globs))
            if partial:
                warnings.append(
                    f"{day}: input files have different columns; wrote their union, empty where a file "
                    f"lacks {', '.join(partial)}"
                )
            picked = ", ".join(f"{sql.ident(c)} AS {sql.ident(c)}" for c in columns)
            source = (
                f"(SELECT {picked} FROM read_parquet({files}, union_by_name=true, hive_partitioning=false))"
            )
        elif part_globs:
            # Parts carry only some declared columns, plus __h and __reason: select by name.
            files = sql.files_literal(part_globs)
            columns = carried_columns(pipeline)
            source = f"(SELECT {', '.join(sql.ident(c) for c in columns)} FROM read_parquet({files}))"
        else:  # a day whose every file was retracted: empty, but with the declared types
            source = (
                "(SELECT "
                + ", ".join(f"CAST(NULL AS {c.sql_type}) AS {sql.ident(c.name)}" for c in pipeline.columns)
                + " WHERE false)"
            )
        return source, columns, warnings

    def build_day(
        self,
        day: str,
        part_globs: list[str],
        pipeline: Pipeline,
        out_dir: Path,
        state: StateJob | None = None,
    ) -> BuildOutcome:
        """The day's unique rows (kept as its state with `state`), then its outputs (duckdb_build)."""
        return duckdb_build.build_day(self, day, part_globs, pipeline, out_dir, state)
