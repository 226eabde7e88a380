"""Staging an ingest file: the DuckDB engine's CSV staging, rows kept whole for the load."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from ..engines.duckdb_engine import DuckDBEngine
from ..pipelines.base import Pipeline
from ..quote import ident
from .schema import LINEAGE, LOADED_AT_COLUMN, NO_DAY, SOURCE_COLUMN


class IngestStager(DuckDBEngine):
    """The DuckDB engine's per-file CSV staging, keeping the valid rows in one temporary table
    instead of parts split by event day: ingest rows are loaded as they are, straight from DuckDB
    to the destination (DuckDB spills the table to disk under its memory limit)."""

    ROWS = "__ingest_rows"

    def write_parts(
        self, pipeline: Pipeline, source: str, part_dir: Path, columns: list[str] | None = None
    ) -> dict[str, tuple[int, str]]:
        cols = ", ".join(ident(c.name) for c in pipeline.columns if c.name != NO_DAY)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {self.ROWS} AS SELECT {cols} FROM {source}")
        rows = self.con.execute(f"SELECT count(*) FROM {self.ROWS}").fetchall()[0][0]
        return {"all": (int(rows), self.ROWS)}

    def staged_rows(
        self, schema: pa.Schema, source_file: str, loaded_at: dt.datetime
    ) -> pa.RecordBatchReader:
        """The staged rows with their lineage columns, as `schema`, streamed in batches."""
        base = [ident(f.name) for f in schema if f.name not in LINEAGE]
        query = self.con.sql(
            f"SELECT {', '.join(base)}, $1 AS {ident(SOURCE_COLUMN)}, "
            f"CAST($2 AS TIMESTAMP) AS {ident(LOADED_AT_COLUMN)} FROM {self.ROWS}",
            params=[source_file, loaded_at],
        )
        reader = query.to_arrow_reader(65536)
        self._reader = reader  # closed by drop_staged: a load skipped by the ledger never reads it

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                yield batch.cast(schema)

        return pa.RecordBatchReader.from_batches(schema, batches())

    def drop_staged(self) -> None:
        reader, self._reader = getattr(self, "_reader", None), None
        if reader is not None:
            reader.close()
        self.con.execute(f"DROP TABLE IF EXISTS {self.ROWS}")
