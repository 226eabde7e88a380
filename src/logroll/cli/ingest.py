"""CLI commands of the `ingest` pipeline: `scan`, `work`, `retry`, and the ingest side of `run`
and `status`. Each parses options, calls one function of logroll.ingest, prints its report.

Errors and logging go through cli/app.py like every command's.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ..errors import UsageError
from ..storage import s3
from ..units import DEFAULT_MEMORY_LIMIT
from .app import LogFormat, call, command_logging, fail

PipelineArg = Annotated[
    str, typer.Argument(metavar="PIPELINE", help="ingest (the only pipeline with a scanner and job queue).")
]
StateOpt = Annotated[
    str | None,
    typer.Option(
        "--state",
        help="Scanner and job tables: postgresql://user@host/db (several workers or machines) or a SQLite "
        "path [default: the destination's PostgreSQL database; DEST.state.sqlite beside a DuckDB file; "
        "DIR/_logroll/state.sqlite in a Parquet folder; or ingest: state: in logroll.yaml].",
        envvar="LOGROLL_STATE",
    ),
]
DestOpt = Annotated[
    str | None,
    typer.Option(
        "--dest",
        "-d",
        help="postgresql://user@host/db#table, duckdb:///file.duckdb#table or parquet:///dir/ "
        "(three slashes then a relative path, four for an absolute one).",
        envvar="LOGROLL_DEST",
    ),
]
SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source", "-s", help="Folder or s3:// prefix the CSV files land in.", envvar="LOGROLL_SOURCE"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")]
BatchBytes = Annotated[
    str | None,
    typer.Option(
        "--batch-bytes",
        help="Group files into jobs of up to this size [default: 256MB, or ingest: in logroll.yaml].",
    ),
]
MaxWait = Annotated[
    str | None,
    typer.Option(
        "--max-wait",
        help="A smaller group becomes a job once its oldest file waited this long (--flush: at once) "
        "[default: 10m].",
    ),
]
Overlap = Annotated[
    str | None,
    typer.Option(
        "--overlap",
        help="Re-list files this much older than the newest one recorded, for late listings [default: 1h].",
    ),
]
MaxAttempts = Annotated[
    int | None, typer.Option("--max-attempts", help="Attempts per job before it is left FAILED [default: 3].")
]
Lease = Annotated[
    str | None,
    typer.Option("--lease", help="A worker silent this long loses its job to another worker [default: 60s]."),
]
Backoff = Annotated[
    str | None,
    typer.Option("--backoff", help="Wait before the 2nd attempt; doubles after each [default: 30s]."),
]
WorkDirOpt = Annotated[
    str | None,
    typer.Option(
        "--work-dir",
        help="Local folder for spooled files, staged parts and the quarantine of bad rows.",
        envvar="LOGROLL_WORK_DIR",
    ),
]
EndpointUrl = Annotated[
    str | None, typer.Option("--endpoint-url", help="S3-compatible endpoint for the source.")
]
ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        help="logroll.yaml with an ingest: section [default: ./logroll.yaml if present].",
        envvar="LOGROLL_CONFIG",
    ),
]
AwsConfig = Annotated[
    str | None,
    typer.Option("--aws-config", help="YAML file with an aws: section.", envvar="LOGROLL_AWS_CONFIG"),
]


def _check(pipeline: str, command: str) -> None:
    from .. import ingest  # here: the loader's engines and sinks, not what --help needs

    if not ingest.is_ingest(pipeline):
        fail(
            UsageError(
                f"`logroll {command}` works on the ingest pipeline (scanner and job tables), not {pipeline!r}: "
                f"use `logroll {command} ingest`"
            )
        )


def _print(report: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.to_dict(), sort_keys=True, default=str))
    else:
        typer.echo(report.summary())


def scan(
    pipeline: PipelineArg,
    *,
    source: SourceOpt = None,
    state: StateOpt = None,
    batch_bytes: BatchBytes = None,
    max_wait: MaxWait = None,
    overlap: Overlap = None,
    flush: Annotated[bool, typer.Option("--flush", help="Put every waiting file in a job now.")] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Compare every listed file, not just recent ones.")
    ] = False,
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            help="Read files and folders that links under --source point to outside it "
            "[default: skip them with a warning; ingest: follow_symlinks in logroll.yaml].",
        ),
    ] = False,
    endpoint_url: EndpointUrl = None,
    aws_config: AwsConfig = None,
    config: ConfigOpt = None,
    log_format: LogFormat = "text",
    as_json: JsonOpt = False,
) -> None:
    """Record new files in the scanner table and group them into jobs (safe to run from cron)."""
    from .. import ingest

    _check(pipeline, "scan")
    command_logging(log_format)
    opts = call(s3.options_for, [source], endpoint_url, aws_config)
    report = call(
        ingest.scan,
        source=source,
        state=state,
        flush=flush,
        full=full,
        batch_bytes=batch_bytes,
        max_wait=max_wait,
        overlap=overlap,
        follow_symlinks=follow_symlinks or None,
        storage_options=opts,
        config=config,
    )
    _print(report, as_json)


def work(
    pipeline: PipelineArg,
    *,
    state: StateOpt = None,
    dest: DestOpt = None,
    max_attempts: MaxAttempts = None,
    lease: Lease = None,
    backoff: Backoff = None,
    max_jobs: Annotated[int | None, typer.Option("--max-jobs", help="Stop after this many jobs.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep polling for new jobs instead of exiting.")
    ] = False,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between polls with --follow.")] = 5.0,
    worker_id: Annotated[
        str | None, typer.Option("--worker-id", help="Name in the job table [default: HOST:PID].")
    ] = None,
    memory_limit: Annotated[
        str,
        typer.Option(
            "--memory-limit",
            help=f"Staging memory cap per worker [default: {DEFAULT_MEMORY_LIMIT['duckdb']}].",
            show_default=False,
        ),
    ] = DEFAULT_MEMORY_LIMIT["duckdb"],
    threads: Annotated[
        int | None, typer.Option("--threads", help="Staging threads per worker [default: all cores].")
    ] = None,
    work_dir: WorkDirOpt = None,
    endpoint_url: EndpointUrl = None,
    aws_config: AwsConfig = None,
    config: ConfigOpt = None,
    log_format: LogFormat = "text",
    as_json: JsonOpt = False,
) -> None:
    """Claim jobs and load their files into the destination, exactly once each (start several)."""
    from .. import ingest

    _check(pipeline, "work")
    command_logging(log_format)
    # Jobs name their files by URI, so options are resolved up front; local files ignore them.
    opts = call(s3.storage_options, endpoint_url, aws_config)
    report = call(
        ingest.work,
        state=state,
        dest=dest,
        max_jobs=max_jobs,
        follow=follow,
        poll=poll,
        worker_id=worker_id,
        memory_limit=memory_limit,
        threads=threads,
        max_attempts=max_attempts,
        lease=lease,
        backoff=backoff,
        work_dir=work_dir,
        storage_options=opts,
        config=config,
    )
    _print(report, as_json)
    if report.status != "ok":
        raise typer.Exit(1)


def retry(
    job: Annotated[int, typer.Argument(metavar="JOB", help="Job id (see `logroll status ingest`).")],
    state: StateOpt = None,
    dest: DestOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Requeue a FAILED ingest job: the next worker loads it (files already loaded are skipped)."""
    from .. import ingest

    out = call(ingest.retry, job, state=state, dest=dest, config=config)
    if as_json:
        typer.echo(json.dumps(out, sort_keys=True))
    else:
        typer.echo(f"job {out['job']}: {out['was']} -> NEW; a worker will pick it up")


def run(
    *,
    source: str | None,
    dest: str | None,
    state: str | None,
    work_dir: str | None,
    memory_limit: str,
    threads: int | None,
    as_json: bool,
    endpoint_url: str | None = None,
    aws_config: str | None = None,
    config: str | None = None,
    follow_symlinks: bool | None = None,
) -> None:
    """`logroll run ingest`: scan (every new file into a job at once) and load all jobs here."""
    from .. import ingest

    opts = call(s3.options_for, [source], endpoint_url, aws_config)
    report = call(
        ingest.run,
        source=source,
        dest=dest,
        state=state,
        follow_symlinks=follow_symlinks,
        work_dir=work_dir,
        memory_limit=memory_limit,
        threads=threads,
        storage_options=opts,
        config=config,
    )
    _print(report, as_json)
    if report.status != "ok":
        raise typer.Exit(1)


def status(*, state: str | None, dest: str | None, as_json: bool, config: str | None = None) -> None:
    """`logroll status ingest`: files, jobs, rows, failures."""
    from .. import ingest

    info = call(ingest.status, state=state, dest=dest, config=config)
    if as_json:
        typer.echo(json.dumps(info, sort_keys=True, default=str))
        return
    from .views import print_ingest

    print_ingest(info)
