"""CLI command `logroll stream`: parses options, calls api.stream, prints its report.

Errors and logging go through cli/app.py like every command's.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..storage import s3
from .app import call


def stream(
    pipeline: Annotated[str, typer.Argument(help="weblogs (the pipeline with a stream mode).")],
    *,
    dest: Annotated[
        str,
        typer.Option(
            "--dest",
            "-d",
            help="A folder or bucket (files per event day, as `run` writes them), duckdb:///FILE or "
            "postgresql://user@host/db (tables, current at every commit).",
            envvar="LOGROLL_DEST",
        ),
    ],
    follow: Annotated[
        str | None,
        typer.Option(
            "--follow",
            "-f",
            help="Read this file as it grows (like tail -F), resuming from its checkpoint; "
            "default: standard input.",
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Lines per micro-batch (one transaction each).")
    ] = 100,
    max_delay: Annotated[
        float,
        typer.Option(
            "--max-delay", help="Commit a micro-batch at most this many seconds after its first line."
        ),
    ] = 1.0,
    stop_at_eof: Annotated[
        bool,
        typer.Option("--stop-at-eof", help="With --follow: stop at the end of the file instead of waiting."),
    ] = False,
    output_format: Annotated[
        str | None,
        typer.Option("--format", help="Files as csv (default) or parquet.", envvar="LOGROLL_FORMAT"),
    ] = None,
    publish_interval: Annotated[
        float,
        typer.Option(
            "--publish-interval",
            help="A folder destination: rewrite the changed days' files every this many seconds (and at the end).",
        ),
    ] = 5.0,
    work_dir: Annotated[
        str | None,
        typer.Option("--work-dir", help="Local folder for the stream's state.", envvar="LOGROLL_WORK_DIR"),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="A progress line on stderr [default: on a terminal]."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")
    ] = False,
) -> None:
    """Commit JSON lines from stdin or a followed file one micro-batch at a time; Ctrl-C stops cleanly."""
    from .. import api

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
        progress=progress,
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), sort_keys=True, default=str))
    else:
        typer.echo(report.summary())
