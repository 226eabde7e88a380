"""`logroll report`: one self-contained HTML file about a pipeline's days, rejects and runs.

Charts are Vega-Lite specs built with altair and drawn by Vega in the browser; the Vega,
Vega-Lite and vega-embed JavaScript comes inlined from the vl-convert-python wheel, so the
file needs no network when it is opened (its Content-Security-Policy forbids any). Every value
from the data is HTML-escaped in tables, and JSON-escaped (no '<', '>' or '&' left) inside the
<script> blocks that carry the charts' data.

    data.py    what the report shows (catalog, quarantine files or table)
    charts.py  Vega-Lite specs and the inlined JavaScript
    page.py    the HTML page
    summary.py the page of ingest's job queue and of a stream's inputs (no day catalog)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..pipelines.base import Pipeline
from .charts import altair
from .data import ReportData, collect
from .page import render, write


def build(
    pipeline: str | Pipeline,
    *,
    dest: str,
    out: str | Path,
    state: str | None = None,
    work_dir: str | None = None,
    runs: int = 50,
    storage_options: dict[str, Any] | None = None,
) -> tuple[Path, ReportData]:
    """Write the HTML report of `pipeline`'s state to `out`; returns its path and what it shows."""
    from ..api import resolve
    from ..workspace import open_workspace, read_state

    altair()  # say what to install before reading anything
    if runs < 1:
        raise UsageError("--runs must be 1 or more")
    pipe = resolve(pipeline)
    ws = open_workspace(dest, state, work_dir, storage_options, read_only=True)
    with read_state(ws, pipe.name) as session:
        data = collect(session.catalog, pipe, ws.shown_state, runs=runs, storage_options=storage_options)
    return write(render(data), out), data


def build_summary(kind: str, info: dict[str, Any], out: str | Path) -> Path:
    """Write the page of ingest's queue (`kind` "ingest", info from ingest.status) or of a
    stream's destination ("stream", info from api.stream_status) to `out`."""
    from .summary import ingest_page, stream_page

    return write(ingest_page(info) if kind == "ingest" else stream_page(info), out)
