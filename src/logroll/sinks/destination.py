"""A database as the destination of `logroll run`: one table per output, one day swapped at a time.

`--dest duckdb:///file.duckdb` or `--dest postgresql://user@host/db` writes each output into a
table named after it. Building a day replaces that day's rows of the table in one transaction:
the rows whose `Output.time_column` falls in the day (text compared in the output's fixed-width
`time_format`). Rejected rows go to the table `_logroll_quarantine`, one set per source file.

It stands where a folder destination (storage.Storage) stands in a run: the run's catalog and
staged parts live in a local work dir, the outputs in the database.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import ConfigError, UsageError
from ..pipelines.base import Output, Pipeline
from ..storage.files import sha256_file
from . import open_sink
from .parquet import ParquetSink

QUARANTINE_TABLE = "_logroll_quarantine"
QUARANTINE_SCHEMA = pa.schema(
    [("source_file", pa.string()), ("line", pa.int64()), ("reason", pa.string()), ("raw_line", pa.string())]
)


class TableDestination:
    """`duckdb:///file.duckdb` or `postgresql://...`: outputs as tables (see the module doc)."""

    local = False
    is_s3 = False
    tables = True  # each output is a table (Storage: a file)

    def __init__(self, url: str):
        self.sink = open_sink(url)
        if isinstance(self.sink, ParquetSink):
            raise UsageError(
                "parquet:// is a destination for loads, not for run: use --dest FOLDER --format parquet"
            )
        if self.sink.table:
            raise UsageError(
                f"--dest {self.sink.url}: a run writes one table per output (named after it); "
                "drop the #table from the URL"
            )
        self.url = self.sink.url  # password redacted
        # Days are built by parallel workers; their writes to one database go one at a time (a
        # DuckDB file takes one writer, a PostgreSQL connection one transaction).
        self._lock = threading.Lock()

    @staticmethod
    def check(pipeline: Pipeline) -> None:
        missing = [o.name for o in pipeline.outputs if not (o.time_column and o.time_format)]
        if missing:
            raise ConfigError(
                f"output(s) {', '.join(missing)} of {pipeline.name} declare no time_column/time_format, "
                "so their days cannot be replaced in a table: write them to a folder instead"
            )

    def exists(self, rel: str = "") -> bool:
        if not rel:
            return True
        with self._lock:
            return self.sink.columns(rel.split("/", 1)[0]) is not None

    def publish_output(
        self, out: Output, day: dt.date, local_file: Path, recorded_sha: str | None
    ) -> tuple[str, str, bool]:
        """Replace the day's rows of table `out.name` with the rows of `local_file` (Parquet) unless
        the catalog says these very rows are there already. Returns (rel, sha256, written)."""
        rel = f"{out.name}/{day.isoformat()}"
        sha = sha256_file(local_file)
        if sha == recorded_sha and self.exists(rel):
            return rel, sha, False
        start = dt.datetime.combine(day, dt.time())
        assert out.time_column and out.time_format  # check() ran before the build
        low = start.strftime(out.time_format)
        high = (start + dt.timedelta(days=1)).strftime(out.time_format)
        with self._lock, self.sink.transaction() as tx:
            tx.replace(out.name, local_file, out.time_column, low, high)  # type: ignore[attr-defined]
        return rel, sha, True

    def put_atomic(self, local_file: Path, rel: str) -> str:
        """A quarantine file (CSV: source_file, line, reason, raw_line) into `_logroll_quarantine`,
        replacing what an earlier version of the same source file put there."""
        table = pacsv.read_csv(
            local_file,
            convert_options=pacsv.ConvertOptions(
                column_types=QUARANTINE_SCHEMA, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        ).select(QUARANTINE_SCHEMA.names)
        source = table["source_file"][0].as_py() if table.num_rows else rel
        with self._lock, self.sink.transaction() as tx:
            tx.replace(QUARANTINE_TABLE, table, "source_file", source)  # type: ignore[attr-defined]
        return f"{self.url}#{QUARANTINE_TABLE}"

    def discard_stale_temps(self, rel: str) -> None:
        """Nothing: a table is written inside a transaction, never through a temporary file."""

    def close(self) -> None:
        self.sink.close()
