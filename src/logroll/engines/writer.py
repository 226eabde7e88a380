"""The one place an output file's bytes are made, whichever engine computed its rows.

Both engines hand their result to DuckDB's COPY here, so the header, quoting, number and
timestamp formatting, row order and line endings cannot drift apart between engines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..pipelines.base import Output
from . import sql


def write_output(con: Any, out: Output, source: str, target: Path) -> int:
    """Write relation `source` (one output's rows) to `target` in total order; return its rows."""
    ncols = len(con.execute(f"SELECT * FROM {source} LIMIT 0").description)
    fmt = "(FORMAT csv, HEADER true)" if out.format == "csv" else "(FORMAT parquet)"
    con.execute(f"COPY ({sql.ordered_output(out, ncols, source)}) TO {sql.literal(str(target))} {fmt}")
    return int(con.execute(f"SELECT count(*) FROM {source}").fetchone()[0])
