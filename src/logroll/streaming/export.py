"""A folder destination of a stream: the store's changed event days written out as files.

The files are the same as `logroll run` writes (same paths, same bytes: writer.write_output
orders and formats both), made from the store after its commits: a day marked dirty by a
micro-batch is written again (atomically, and only when its bytes changed), then unmarked
unless a newer micro-batch touched it meanwhile. A crash between the two just writes it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv

from .. import faults
from ..engines.writer import write_output
from ..pipelines.base import Pipeline
from ..pipelines.stream import StreamSpec
from ..publish import keep_quarantine, publish
from .store import QUARANTINE_DAY, Store

log = logging.getLogger("logroll")


class FolderExporter:
    def __init__(self, storage: Any, work_dir: Path, pipeline: Pipeline, spec: StreamSpec, con: Any):
        self.storage = storage
        self.work_dir = work_dir
        self.pipeline = pipeline
        self.spec = spec
        self.con = con  # a DuckDB connection to write the files with
        self.tmp = work_dir / "tmp" / f"stream-{pipeline.name}"
        self.quarantine_file = work_dir / "quarantine" / pipeline.name / "stream.rejects.csv"
        self.written: list[str] = []
        self.quarantine: str | None = None

    def export(self, store: Store) -> int:
        """Write every dirty day; returns how many days were written."""
        days = store.dirty_days()
        for day, version in days:
            if day == QUARANTINE_DAY:
                self._export_quarantine(store)
            else:
                self._export_day(store, day)
            store.mark_exported(day, version)
            faults.point("stream.export_recorded")
        shutil.rmtree(self.tmp, ignore_errors=True)
        n = len([d for d, _ in days if d != QUARANTINE_DAY])
        if n:
            log.info("stream %s: wrote the files of %d event day(s)", self.pipeline.name, n)
        return n

    def _export_day(self, store: Store, day: str) -> None:
        date = dt.date.fromisoformat(day)
        self.tmp.mkdir(parents=True, exist_ok=True)
        start = dt.datetime.combine(date, dt.time())
        for out in self.pipeline.outputs:
            if out.name == self.spec.hits_output:
                chunks = store.hits_of_day(day)
            elif out.name == self.spec.stats_output and out.time_column and out.time_format:
                low = start.strftime(out.time_format)
                high = (start + dt.timedelta(days=1)).strftime(out.time_format)
                chunks = iter([store.stats_between(out.time_column, low, high)])
            else:
                continue
            local = self.tmp / f"{out.name}.{out.format}"
            cur = self.con.cursor()  # its own results: writer.write_output leaves one open
            try:
                # Through a table, as the batch build does: DuckDB writes a Parquet column as
                # required when the table's statistics show no NULL, which an Arrow scan has not.
                # Chunk by chunk, so a big day never sits whole in Python (DuckDB spills).
                for i, rows in enumerate(chunks):
                    cur.register("__export", rows)
                    if i == 0:
                        cur.execute("CREATE OR REPLACE TEMP TABLE __export_rows AS SELECT * FROM __export")
                    else:
                        cur.execute("INSERT INTO __export_rows SELECT * FROM __export")
                    cur.unregister("__export")
                write_output(cur, out, "__export_rows", local)
                cur.execute("DROP TABLE __export_rows")
            finally:
                cur.close()
            rel = out.render_path(date, self.pipeline.params)
            _, did_write = publish(self.storage, local, rel, None)
            faults.point("stream.exported")
            if did_write:
                self.written.append(rel)
                log.debug("stream: wrote %s", rel)

    def _export_quarantine(self, store: Store) -> None:
        rows = store.quarantine()
        self.quarantine_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.quarantine_file.with_name(self.quarantine_file.name + ".tmp")
        pacsv.write_csv(rows, tmp, pacsv.WriteOptions(quoting_style="needed"))
        tmp.replace(self.quarantine_file)
        self.quarantine = keep_quarantine(self.storage, self.work_dir, str(self.quarantine_file))
