"""CLI command `logroll stream`: parses options, calls api.stream, prints its report.

Errors and logging go through cli/app.py like every command's.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ..storage import s3
from .app import Json, LogFormat, call, command_logging

StreamPipeline = Annotated[
    str, typer.Argument(metavar="PIPELINE", help="weblogs (the pipeline with a stream mode).")
]
StreamDest = Annotated[
    str,
    typer.Option(
        "--dest",
        "-d",
        help="A folder or bucket (files per event day, as `run` writes them), duckdb:///FILE or "
        "postgresql://user@host/db (tables, current at every commit); never a destination `run` writes.",
        envvar="LOGROLL_DEST",
    ),
]
Follow = Annotated[
    str | None,
    typer.Option(
        "--follow",
        "-f",
        help="Read this file as it grows (like tail -F), resuming from its checkpoint "
        "[default: standard input].",
    ),
]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Lines per micro-batch (one transaction each).")]
MaxDelay = Annotated[
    float,
    typer.Option("--max-delay", help="Commit a micro-batch at most this many seconds after its first line."),
]
StopAtEof = Annotated[
    bool, typer.Option("--stop-at-eof", help="With --follow: stop at the end of the file instead of waiting.")
]
StreamFormat = Annotated[
    str | None,
    typer.Option("--format", help="Files as csv or parquet [default: csv].", envvar="LOGROLL_FORMAT"),
]
PublishInterval = Annotated[
    float,
    typer.Option(
        "--publish-interval",
        help="A folder destination: rewrite the changed days' files every this many seconds (and at the end).",
    ),
]
StreamWorkDir = Annotated[
    str | None,
    typer.Option("--work-dir", help="Local folder for the stream's state.", envvar="LOGROLL_WORK_DIR"),
]
Progress = Annotated[
    bool | None,
    typer.Option("--progress/--no-progress", help="A progress line on stderr [default: on a terminal]."),
]


def stream(
    pipeline: StreamPipeline,
    *,
    dest: StreamDest,
    follow: Follow = None,
    batch_size: BatchSize = 100,
    max_delay: MaxDelay = 1.0,
    stop_at_eof: StopAtEof = False,
    output_format: StreamFormat = None,
    publish_interval: PublishInterval = 5.0,
    work_dir: StreamWorkDir = None,
    progress: Progress = None,
    log_format: LogFormat = "text",
    as_json: Json = False,
) -> None:
    """Commit JSON lines from stdin or a followed file one micro-batch at a time; Ctrl-C stops cleanly."""
    from .. import api

    console = command_logging(log_format, console=True)
    line: Any = progress
    if console is not None and progress is not False:
        from .progress import StreamLine

        line = StreamLine(console)  # log lines go above it, not onto it
    storage_options = call(s3.options_for, [dest])
    report = call(
        api.stream,
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
        progress=line,
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), sort_keys=True, default=str))
    else:
        typer.echo(report.summary())
    if report.status != "ok":
        raise typer.Exit(1)
