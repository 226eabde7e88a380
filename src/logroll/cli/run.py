"""`logroll run` and `logroll status`: options in, one api call, the report out."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

import typer

from .. import config as config_mod
from ..errors import UsageError
from ..storage import s3
from ..units import DEFAULT_MEMORY_LIMIT
from .app import (
    AwsConfig,
    ConfigFile,
    Dest,
    EndpointUrl,
    Initials,
    Json,
    LogFormat,
    MemoryLimit,
    Pipeline,
    Source,
    State,
    Threads,
    TimestampColumn,
    Wait,
    WorkDir,
    call,
    command,
    command_logging,
    fail,
    require,
)

DateArg = Annotated[
    str | None,
    typer.Argument(
        metavar="DATE",
        help="Event day (YYYY-MM-DD, YYYYMMDD, YYYY/MM/DD, MM/DD/YYYY). Omit to catch up on every dirty day.",
    ),
]
To = Annotated[str | None, typer.Option("--to", help="Last day of an inclusive range.")]
Lateness = Annotated[
    int | None,
    typer.Option(
        "--lateness",
        help="Days either side whose folders may hold rows for the requested days [default: 1].",
        envvar="LOGROLL_LATENESS",
    ),
]
Layout = Annotated[
    str | None,
    typer.Option(
        "--layout",
        help="strftime pattern of the date folders under --source, e.g. %m-%d-%Y [default: %Y/%m/%d].",
        envvar="LOGROLL_LAYOUT",
    ),
]
Force = Annotated[bool, typer.Option("--force", help="Re-stage and rebuild the requested days.")]
StageOnly = Annotated[
    bool,
    typer.Option(
        "--stage-only",
        help="Stage new files and build nothing: no output is written. Cheap enough to run every few "
        "minutes; a later run builds the days (each from its kept rows, so that is cheap too).",
    ),
]
PruneMissing = Annotated[
    bool,
    typer.Option(
        "--prune-missing",
        help="Retract the rows of source files deleted since they were staged and rebuild their "
        "days [default: a deleted file's rows are kept].",
    ),
]
Engine = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="duckdb or spark (pip install 'logroll[spark]') [default: duckdb].",
        envvar="LOGROLL_ENGINE",
    ),
]
Master = Annotated[
    str | None,
    typer.Option(
        "--master",
        # LOGROLL_SPARK_MASTER is read with the other settings (config.resolve), not as this
        # flag: a default kept in the environment must not refuse runs on another engine.
        help="For --engine spark: local[N], local[*] or spark://HOST:PORT, or LOGROLL_SPARK_MASTER "
        "[default: local[*]].",
    ),
]
SparkConf = Annotated[
    list[str] | None,
    typer.Option("--conf", help="For --engine spark: a Spark setting KEY=VALUE; repeat for more."),
]
Parallel = Annotated[
    int | None,
    typer.Option(
        "--parallel",
        help="Stage files and build days this many at once; they share --memory-limit and --threads "
        "[default: one per core with duckdb, else 1].",
        envvar="LOGROLL_PARALLEL",
    ),
]
OutputFormat = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Output files as csv or parquet [default: the pipeline's]. "
        "A --dest of duckdb:///FILE or postgresql://... writes tables instead.",
        envvar="LOGROLL_FORMAT",
    ),
]
FollowSymlinks = Annotated[
    bool,
    typer.Option(
        "--follow-symlinks",
        help="Read files and folders that links under --source point to outside it "
        "[default: skip them with a warning; input.follow_symlinks in logroll.yaml].",
    ),
]


@command()
def run(
    pipeline: Pipeline,
    date: DateArg = None,
    *,
    source: Source = None,
    dest: Dest = None,
    config: ConfigFile = None,
    to: To = None,
    state: State = None,
    initials: Initials = None,
    lateness: Lateness = None,
    layout: Layout = None,
    timestamp_column: TimestampColumn = None,
    force: Force = False,
    stage_only: StageOnly = False,
    prune_missing: PruneMissing = False,
    engine: Engine = None,
    master: Master = None,
    spark_conf: SparkConf = None,
    memory_limit: MemoryLimit = None,
    threads: Threads = None,
    parallel: Parallel = None,
    wait: Wait = 0.0,
    log_format: LogFormat = "text",
    work_dir: WorkDir = None,
    endpoint_url: EndpointUrl = None,
    aws_config: AwsConfig = None,
    as_json: Json = False,
    output_format: OutputFormat = None,
    follow_symlinks: FollowSymlinks = False,
) -> None:
    """Stage new files, then build the requested day(s) and every day late data made dirty."""
    if pipeline == "ingest":  # scan + load into a central store: cli/ingest.py
        settings = dict(source=source, dest=dest, state=state, work_dir=work_dir, threads=threads)
        settings.update(memory_limit=memory_limit or DEFAULT_MEMORY_LIMIT["duckdb"], config=config)
        settings.update(endpoint_url=endpoint_url, aws_config=aws_config, as_json=as_json)
        settings.update(follow_symlinks=follow_symlinks or None)
        spark = bool((engine and engine != "duckdb") or master or spark_conf)
        # Options of the day-building pipelines: given to ingest, they would do nothing, silently.
        days = {"DATE": date, "--to": to, "--initials": initials, "--lateness": lateness}
        days.update({"--layout": layout, "--timestamp-column": timestamp_column, "--force": force})
        days.update({"--prune-missing": prune_missing, "--parallel": parallel, "--wait": wait})
        days.update({"--output-format": output_format, "--stage-only": stage_only})
        unused = [name for name, value in days.items() if value]
        return _run_ingest(settings, spark=spark, unused=unused, log_format=log_format)
    # logroll.yaml < LOGROLL_* < flags; a pipeline declared in the file is found by name too.
    flags = dict(source=source, dest=dest, state=state, initials=initials, lateness=lateness, engine=engine)
    flags.update(memory_limit=memory_limit, threads=threads, work_dir=work_dir, layout=layout)
    flags.update(timestamp_column=timestamp_column, spark_master=master, spark_conf=spark_conf or None)
    pipe, opts = call(config_mod.resolve, pipeline, config, flags)
    require(opts, "source", "dest")
    from .. import api  # here: what a run needs (engines, catalog), not what --help needs

    progress = command_logging(log_format, bar=True)
    storage_options = call(s3.options_for, [opts["source"], opts["dest"]], endpoint_url, aws_config)
    with progress or contextlib.nullcontext():
        report = call(
            api.run,
            pipe,
            date,
            to=to,
            force=force,
            prune_missing=prune_missing,
            **opts,
            parallel=parallel,
            wait=wait,
            on_event=progress,
            storage_options=storage_options,
            output_format=output_format,
            stage_only=stage_only,
            follow_symlinks=follow_symlinks,
        )
    typer.echo(json.dumps(report.to_dict(), sort_keys=True, default=str) if as_json else report.summary())
    if report.status != "ok":
        raise typer.Exit(1)


def _run_ingest(settings: dict[str, Any], *, spark: bool, unused: list[str], log_format: str) -> None:
    """`logroll run ingest`: its settings checked, then cli/ingest.py's run."""
    if spark:  # each file is loaded on its own as it lands: there is no day build to distribute
        fail(UsageError("ingest loads each file with DuckDB as it lands: drop --engine/--master/--conf"))
    if unused:  # it has no day to build, now or later
        fail(
            UsageError(f"ingest loads each file as it lands, with no day to build: drop {', '.join(unused)}")
        )
    from .ingest import run as run_ingest

    command_logging(log_format)
    return run_ingest(**settings)


@command()
def status(
    pipeline: Pipeline,
    *,
    dest: Dest = None,
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Accepted for symmetry with run.")
    ] = None,
    config: ConfigFile = None,
    all_files: Annotated[
        bool, typer.Option("--files", help="List every processed file [default: the last 20].")
    ] = False,
    all_days: Annotated[
        bool, typer.Option("--all-days", help="List every day [default: days not built + the last 30].")
    ] = False,
    state: State = None,
    work_dir: WorkDir = None,
    endpoint_url: EndpointUrl = None,
    aws_config: AwsConfig = None,
    as_json: Json = False,
) -> None:
    """Days built, dirty and failed; files rejected or failed; recent runs."""
    if pipeline == "ingest":  # files, jobs, failures of the scanner and job tables: cli/ingest.py
        from .ingest import status as ingest_status

        return ingest_status(state=state, dest=dest, as_json=as_json, config=config)
    pipe, opts = call(config_mod.resolve, pipeline, config, dict(dest=dest, state=state, work_dir=work_dir))
    require(opts, "dest")
    from .. import api

    pipe = call(api.resolve, pipe, initials=opts.get("initials"))
    streamed = call(api.stream_status, pipe, dest=opts["dest"], work_dir=opts.get("work_dir"))
    if streamed is not None:  # the destination of `logroll stream`: its inputs and checkpoints
        from .views import print_stream

        typer.echo(json.dumps(streamed, sort_keys=True)) if as_json else print_stream(streamed)
        return
    storage_options = call(s3.options_for, [opts["dest"]], endpoint_url, aws_config)
    info = call(
        api.status,
        pipe,
        dest=opts["dest"],
        state=opts.get("state"),
        work_dir=opts.get("work_dir"),
        storage_options=storage_options,
    )
    if as_json:
        typer.echo(json.dumps(info, sort_keys=True, default=str))
        return
    from .views import print_status

    print_status(info, all_days, all_files)
