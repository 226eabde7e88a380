"""The public functions. The CLI is a thin layer over these; a notebook can call them too.

>>> import logroll
>>> report = logroll.run("impressions", "2021-01-30", source="raw/", dest="results/")
>>> report.rows_out
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

from . import overview
from .dates import requested_days
from .engines import engine_settings
from .engines.pool import default_parallel
from .errors import UsageError
from .events import EventCallback
from .pipelines import Pipeline, get_pipeline
from .report import RunReport
from .runner import BatchRun, RunOptions, check_missing
from .storage.files import Storage
from .units import default_memory_limit
from .workspace import Workspace, open_state, open_workspace, read_state

log = logging.getLogger("logroll")


def resolve(pipeline: str | Pipeline, **params: str | None) -> Pipeline:
    p = pipeline if isinstance(pipeline, Pipeline) else get_pipeline(pipeline)
    return p.with_params(**{k: v for k, v in params.items() if k in p.params})


def run(
    pipeline: str | Pipeline,
    date: str | dt.date | None = None,
    *,
    source: str,
    dest: str,
    to: str | dt.date | None = None,
    state: str | None = None,
    initials: str | None = None,
    layout: str | None = None,
    timestamp_column: str | None = None,
    lateness: int = 1,
    force: bool = False,
    prune_missing: bool = False,
    engine: str = "duckdb",
    memory_limit: str | None = None,
    threads: int | None = None,
    work_dir: str | None = None,
    storage_options: dict[str, Any] | None = None,
    parallel: int | None = None,
    wait: float = 0.0,
    on_event: EventCallback | None = None,
    output_format: str | None = None,
    spark_master: str | None = None,
    spark_conf: list[str] | dict[str, str] | None = None,
    stage_only: bool = False,
    follow_symlinks: bool = False,
) -> RunReport:
    """Stage what is new under `source`, then build the requested and the dirty event days.

    With `date` (and optionally `to`), stage the folders of those days plus `lateness` days
    either side and build those days; with no date, stage everything new and build every
    dirty day. Returns the run report; raises LogrollError subclasses on bad usage.

    `parallel` engines stage files and build days at once, sharing `memory_limit`. Only one run
    per pipeline and state runs at a time: another one waits up to `wait` seconds, then raises
    LockedError. `on_event(RunEvent)` is called at each step (progress bars).

    `output_format` (csv or parquet) overrides the outputs' file format. A `dest` of
    `duckdb:///file.duckdb` or `postgresql://...` writes each output as a table instead.

    `spark_master` (default local[*]) and `spark_conf` ("key=value" items or a dict) are for
    `engine="spark"` only. `stage_only` stages what is new and writes no output (see RunOptions).
    A deleted source file keeps its rows; `prune_missing` retracts them.
    A link under `source` to outside it is skipped with a warning, unless `follow_symlinks`.
    """
    started = time.monotonic()
    engine_options = engine_settings(engine, spark_master, spark_conf)
    # layout (strftime of the date folders) and timestamp_column (header of the event time)
    # apply to any pipeline.
    pipe = resolve(pipeline, initials=initials).with_layout(layout).with_event_time_source(timestamp_column)
    start, end, requested = requested_days(date, to, lateness)
    check_counts(parallel=parallel, threads=threads)
    src = Storage(source, storage_options)
    src.require_root("source")
    pipe = pipe.with_format(output_format)
    ws = open_workspace(dest, state, work_dir, storage_options)
    _check_not_streamed(ws, pipe.name, dest)
    pipe = _check_dest(ws, src, state, pipe)
    opts = RunOptions(
        start=start,
        end=end,
        requested=requested,
        lateness=lateness,
        force=force,
        prune_missing=prune_missing,
        engine=engine,
        memory_limit=memory_limit or default_memory_limit(engine),
        threads=threads,
        parallel=parallel or default_parallel(engine),
        engine_options=engine_options,
        follow_symlinks=follow_symlinks,
        on_event=on_event,
        started=started,
        stage_only=stage_only,
    )
    with open_state(ws, pipe.name, wait) as session:
        report = BatchRun(pipe, src, ws, session, opts).run()
    check_missing(report, pipe, src)
    return report


def check_counts(**counts: int | None) -> None:
    """--parallel 0 or --threads -1 would silently mean "the default": say so instead."""
    for name, value in counts.items():
        if value is not None and value < 1:
            raise UsageError(f"--{name} {value}: give 1 or more (or leave it out for the default)")


def _check_not_streamed(ws: Workspace, pipeline: str, dest: str) -> None:
    """A destination `logroll stream` writes keeps its own tables and checkpoint; a run there
    would overwrite the stream's outputs (a table over its view) and leave its counts stale."""
    from .streaming.status import database

    if ws.dest.tables:
        from .sinks.read import table_exists
        from .streaming.store import events_table

        streamed = table_exists(dest.partition("#")[0], events_table(pipeline))
    else:
        streamed = Path(database(pipeline, dest, str(ws.work_dir))).exists()
    if streamed:
        raise UsageError(
            f"--dest {ws.dest.url} is where `logroll stream {pipeline}` writes (its tables and checkpoint): "
            "a run there would overwrite the stream's outputs; give the run another --dest"
        )


def _check_dest(ws: Workspace, src: Storage, state: str | None, pipe: Pipeline) -> Pipeline:
    """The destination is usable for `pipe` (tables get typed Parquet); returns the pipeline to run."""
    if ws.dest.tables:  # tables are loaded from typed Parquet, not CSV
        ws.dest.check(pipe)
        pipe = pipe.with_format("parquet")
    if ws.dest.url.rstrip("/") == src.url.rstrip("/"):
        raise UsageError(
            f"--dest {ws.dest.url} is the source folder itself: results would mix with raw files; "
            "use a subfolder such as results/"
        )
    if ws.dest.is_s3:
        ws.dest.require_root("destination")  # a missing bucket or no access: fail before any work
    if ws.remote is not None:
        log.info("state: %s (working copy in %s)", ws.shown_state, ws.work_dir)
    elif not ws.dest.local and state is None:
        # Say where the catalog is: it decides what the next run thinks is new.
        log.info(
            "state: %s (local to this machine; pass --state postgresql://... to share it between machines)",
            ws.shown_state,
        )
    return pipe


def stream(
    pipeline: str | Pipeline = "weblogs",
    *,
    dest: str,
    follow: str | None = None,
    batch_size: int = 100,
    max_delay: float = 1.0,
    stop_at_eof: bool = False,
    output_format: str | None = None,
    publish_interval: float = 5.0,
    work_dir: str | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: Any = None,
) -> Any:
    """Commit JSON lines from stdin (or the file `follow`, from its checkpoint) into `dest`, one
    micro-batch of `batch_size` lines (or `max_delay` seconds) per transaction, until the input
    ends or SIGINT/SIGTERM. Returns a StreamReport (see streaming/runner.py).

    `progress`: True/False for a progress line on stderr, None for one on a terminal, or a
    streaming.runner.ProgressLine to draw it (the CLI's shares the console with the log lines)."""
    from .streaming.progress import progress_stream
    from .streaming.runner import run_stream

    return run_stream(
        pipeline,
        dest=dest,
        follow=follow,
        batch_size=batch_size,
        max_delay=max_delay,
        stop_at_eof=stop_at_eof,
        output_format=output_format,
        publish_interval=publish_interval,
        work_dir=work_dir,
        storage_options=storage_options,
        progress=progress_stream(progress),
    )


def status(
    pipeline: str | Pipeline,
    *,
    dest: str,
    state: str | None = None,
    work_dir: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Days built, dirty and failed; files staged, rejected and failed; recent runs; where the
    state is. Reads the state without writing or creating anything: a destination or state that
    does not exist raises StateNotFound."""
    pipe = resolve(pipeline)
    ws = open_workspace(dest, state, work_dir, storage_options, read_only=True)
    with read_state(ws, pipe.name) as session:
        return overview.summary(session.catalog, pipe, ws.shown_state, session.running())


def stream_status(
    pipeline: str | Pipeline, *, dest: str, work_dir: str | None = None
) -> dict[str, Any] | None:
    """A stream's inputs, checkpoints, batches, events and last commit in `dest`; None when
    nothing was streamed there (see streaming/status.py)."""
    from .streaming.status import stream_status as read

    return read(pipeline, dest=dest, work_dir=work_dir)


__all__ = ["run", "stream", "status", "stream_status", "resolve"]
