"""Staging an ingest file: the DuckDB engine's CSV staging, rows kept whole for the load."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from ..engines.duckdb_engine import DuckDBEngine
from ..pipelines.base import Pipeline
from ..quote import ident, literal
from .schema import LINEAGE, LOADED_AT_COLUMN, NO_DAY, SOURCE_COLUMN


class IngestStager(DuckDBEngine):
    """The DuckDB engine's per-file CSV staging, keeping the valid rows whole instead of parts
    split by event day: ingest rows are loaded as they are, straight from DuckDB to the
    destination. With `begin(..., csv_out=path)` DuckDB writes them with their lineage columns
    as the CSV file PostgreSQL's COPY reads (one pass, no Python per row); otherwise they stay
    in one temporary table (spilled to disk under DuckDB's memory limit) read as Arrow."""

    ROWS = "__ingest_rows"
    _lineage: tuple[str, dt.datetime] = ("", dt.datetime(1970, 1, 1))
    _csv_out: Path | None = None
    _reader: pa.RecordBatchReader | None = None

    def begin(self, source_file: str, loaded_at: dt.datetime, csv_out: Path | None = None) -> None:
        """The lineage of the next file staged, and where its rows go as CSV (None: a table)."""
        self._lineage = (source_file, loaded_at)
        self._csv_out = csv_out

    def write_parts(
        self, pipeline: Pipeline, source: str, part_dir: Path, columns: list[str] | None = None
    ) -> dict[str, tuple[int, str]]:
        cols = ", ".join(ident(c.name) for c in pipeline.columns if c.name != NO_DAY)
        if self._csv_out is not None:
            uri, at = self._lineage
            lineage = (
                f"{literal(uri)} AS {ident(SOURCE_COLUMN)}, "
                f"CAST({literal(at.isoformat(sep=' '))} AS TIMESTAMP) AS {ident(LOADED_AT_COLUMN)}"
            )
            # DuckDB's CSV is COPY's: NULL an unquoted empty field, an empty string "".
            rows = self.con.execute(
                f"COPY (SELECT {cols}, {lineage} FROM {source}) TO {literal(str(self._csv_out))} "
                "(FORMAT csv, HEADER false)"
            ).fetchall()[0][0]
            return {"all": (int(rows), str(self._csv_out))}
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {self.ROWS} AS SELECT {cols} FROM {source}")
        rows = self.con.execute(f"SELECT count(*) FROM {self.ROWS}").fetchall()[0][0]
        return {"all": (int(rows), self.ROWS)}

    def staged_rows(self, schema: pa.Schema) -> pa.RecordBatchReader:
        """The staged rows (of a table) with their lineage columns, as `schema`, in batches."""
        base = [ident(f.name) for f in schema if f.name not in LINEAGE]
        uri, at = self._lineage
        query = self.con.sql(
            f"SELECT {', '.join(base)}, $1 AS {ident(SOURCE_COLUMN)}, "
            f"CAST($2 AS TIMESTAMP) AS {ident(LOADED_AT_COLUMN)} FROM {self.ROWS}",
            params=[uri, at],
        )
        reader = query.to_arrow_reader(65536)
        self._reader = reader  # closed by drop_staged: a load skipped by the ledger never reads it

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                yield batch.cast(schema)

        return pa.RecordBatchReader.from_batches(schema, batches())

    def drop_staged(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        if self._csv_out is not None:
            self._csv_out.unlink(missing_ok=True)
        else:
            self.con.execute(f"DROP TABLE IF EXISTS {self.ROWS}")
