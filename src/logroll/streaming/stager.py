"""Micro-batches of lines -> typed events, their derived columns, and rejects, in DuckDB.

The same SQL as `logroll run` (jsonl.checked_select, then the pipeline's StreamSpec
expressions), run over several micro-batches at once when input is waiting: DuckDB's cost is
per query, not per row, so a backlog is staged in a few queries and then committed one
micro-batch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from ..engines import jsonl
from ..quote import ident, literal
from ..units import DEFAULT_MEMORY_LIMIT
from .store import Layout


@dataclass
class StagedBatch:
    winners: pa.Table  # the events table's columns, one row per (key, day)
    rejects: pa.Table  # source_file, line, reason, raw_line
    read: int  # non-blank lines
    valid: int


class StreamStager:
    def __init__(
        self,
        layout: Layout,
        spill_dir: Path | None = None,
        memory_limit: str = DEFAULT_MEMORY_LIMIT["duckdb"],
    ):
        self.layout = layout
        pipe, spec = layout.pipeline, layout.spec
        # One thread: a micro-batch is small, and a query's cost is mostly fixed.
        config = {"threads": 1, "memory_limit": memory_limit}
        if spill_dir is not None:  # the folder export sorts whole days: those may spill
            spill_dir.mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = str(spill_dir)
        self.con = duckdb.connect(config=config)
        self.con.execute("SET enable_progress_bar = false")
        self.checked = jsonl.checked_select(pipe, "__lines")
        et = ident(pipe.event_time)
        exprs: list[str] = [ident(k) for k in pipe.key]
        exprs.append(f"strftime(CAST({et} AS DATE), '%Y-%m-%d')")
        for c in pipe.columns:
            if c.name in pipe.key or c.sql is not None:
                continue
            if c.type == "timestamp":
                exprs.append(f"strftime({ident(c.name)}, '%Y-%m-%d %H:%M:%S.%f')")
            elif c.type == "date":
                exprs.append(f"strftime({ident(c.name)}, '%Y-%m-%d')")
            else:
                exprs.append(ident(c.name))
        exprs += [f"CAST({e} AS VARCHAR)" for e in spec.hit_columns.values()]
        exprs += [f"CAST({e} AS VARCHAR)" for e in spec.group.values()]
        exprs.append(f"CAST({ident(spec.distinct_of)} AS VARCHAR)")
        names = [n for n, _ in layout.event_columns()]
        self.derived = ", ".join(f"{e} AS {ident(n)}" for e, n in zip(exprs, names, strict=True))
        # One row per (micro-batch, key, day): the smallest, as the batch dedupe picks it (the
        # typed values come first in the struct, then what is computed from them).
        keys = ", ".join(ident(k) for k in layout.key)
        rest = [n for n in names if n not in layout.key]
        packed = ", ".join(f"{ident(n)} := {ident(n)}" for n in rest)
        picked = ", ".join(f"__m.{ident(n)} AS {ident(n)}" for n in rest)
        self.winners_sql = (
            f"SELECT batch, {keys}, {picked} FROM ("
            f"SELECT batch, {keys}, min(struct_pack({packed})) AS __m "
            f"FROM (SELECT batch, {self.derived} FROM __s WHERE __reason IS NULL) GROUP BY ALL) "
            "ORDER BY batch"
        )
        self.names = names

    def stage(self, lines: pa.Table, bounds: list[tuple[int, int]], source: str) -> list[StagedBatch]:
        """`lines` (line, raw) cover the micro-batches whose first and last line numbers are `bounds`."""
        con = self.con
        n = len(bounds)
        bt = pa.table(
            {
                "batch": pa.array(range(n), pa.int64()),
                "lo": pa.array([b[0] for b in bounds], pa.int64()),
                "hi": pa.array([b[1] for b in bounds], pa.int64()),
            }
        )
        con.register("__lines", lines)
        con.register("__bounds", bt)
        try:
            # The micro-batches are contiguous runs of lines: each line belongs to the last one
            # starting at or before it (an ASOF join; a range join compared every line with
            # every batch).
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE __s AS SELECT b.batch, s.* FROM ({self.checked}) s "
                "ASOF JOIN __bounds b ON s.__ord >= b.lo"
            )
        finally:
            con.unregister("__lines")
            con.unregister("__bounds")
        read = np.zeros(n, dtype=np.int64)
        valid = np.zeros(n, dtype=np.int64)
        for b, r, v in con.execute(
            "SELECT batch, count(*), count(*) FILTER (WHERE __reason IS NULL) FROM __s GROUP BY batch"
        ).fetchall():
            read[b], valid[b] = r, v
        rejects = con.sql(
            f"SELECT batch, {literal(source)} AS source_file, __ord AS line, __reason AS reason, "
            "__raw AS raw_line FROM __s WHERE __reason IS NOT NULL ORDER BY batch, __ord"
        ).to_arrow_table()
        winners = con.sql(self.winners_sql).to_arrow_table()
        win_batch = winners["batch"].to_numpy()
        winners = winners.drop_columns(["batch"])
        rej_batch = rejects["batch"].to_numpy()
        rejects = rejects.drop_columns(["batch"])
        w_cut = np.searchsorted(win_batch, np.arange(n + 1), side="left")
        r_cut = np.searchsorted(rej_batch, np.arange(n + 1), side="left")
        out = []
        for b in range(n):
            out.append(
                StagedBatch(
                    winners.slice(w_cut[b], w_cut[b + 1] - w_cut[b]),
                    rejects.slice(r_cut[b], r_cut[b + 1] - r_cut[b]),
                    int(read[b]),
                    int(valid[b]),
                )
            )
        return out

    def close(self) -> None:
        self.con.close()
