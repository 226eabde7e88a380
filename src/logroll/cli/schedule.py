"""`logroll schedule`: run a pipeline at every cron time, or print the crontab line that does."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .. import config as config_mod
from ..errors import UsageError
from ..storage import s3
from ..urls import without_userinfo
from .app import (
    AwsConfig,
    ConfigFile,
    Dest,
    EndpointUrl,
    Initials,
    LogFormat,
    MemoryLimit,
    Pipeline,
    Source,
    State,
    Threads,
    TimestampColumn,
    WorkDir,
    call,
    command,
    command_logging,
    fail,
    require,
)

Cron = Annotated[
    str,
    typer.Option(
        "--cron",
        help="When to run, in cron's 5 fields (local time), e.g. '0 23 * * *'.",
        envvar="LOGROLL_CRON",
    ),
]
Layout = Annotated[
    str | None,
    typer.Option(
        "--layout",
        help="strftime pattern of the date folders under --source [default: %Y/%m/%d].",
        envvar="LOGROLL_LAYOUT",
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
Parallel = Annotated[
    int, typer.Option("--parallel", help="Files and days at once in each run.", envvar="LOGROLL_PARALLEL")
]
CatchUp = Annotated[
    bool,
    typer.Option(
        "--catch-up/--no-catch-up",
        help="At start, run once if a scheduled time passed since the last run in the catalog.",
    ),
]
PrintCrontab = Annotated[
    bool, typer.Option("--print-crontab", help="Print the crontab line that runs this instead, and exit.")
]
LogFile = Annotated[
    str | None,
    typer.Option(
        "--log-file",
        help="With --print-crontab: where cron appends the output [default: WORK_DIR/logs/PIPELINE.log].",
    ),
]


@command()
def schedule(
    pipeline: Pipeline,
    cron: Cron,
    *,
    source: Source = None,
    dest: Dest = None,
    config: ConfigFile = None,
    state: State = None,
    initials: Initials = None,
    layout: Layout = None,
    timestamp_column: TimestampColumn = None,
    engine: Engine = None,
    memory_limit: MemoryLimit = None,
    threads: Threads = None,
    parallel: Parallel = 1,
    catch_up: CatchUp = True,
    print_crontab: PrintCrontab = False,
    log_file: LogFile = None,
    log_format: LogFormat = "text",
    work_dir: WorkDir = None,
    endpoint_url: EndpointUrl = None,
    aws_config: AwsConfig = None,
) -> None:
    """Run PIPELINE at every --cron time in the foreground (SIGTERM/Ctrl-C stops it), or --print-crontab."""
    if pipeline == "ingest":
        fail(
            UsageError(
                "ingest runs as two cron jobs, `logroll scan ingest ...` and `logroll work ingest ...` "
                "(both safe to overlap; see docs/ingest.md), or keep workers up with `logroll work ingest --follow`"
            )
        )
    from . import scheduler as sched

    cron = call(sched.check_cron, cron)
    flags = dict(source=source, dest=dest, state=state, initials=initials, engine=engine)
    flags.update(memory_limit=memory_limit, threads=threads, work_dir=work_dir, layout=layout)
    flags.update(timestamp_column=timestamp_column)
    pipe, opts = call(config_mod.resolve, pipeline, config, flags)
    require(opts, "source", "dest")
    if print_crontab:
        print_crontab_line(
            pipeline,
            cron,
            opts,
            parallel=parallel,
            log_format=log_format,
            log_file=log_file,
            config=config,
            endpoint_url=endpoint_url,
            aws_config=aws_config,
        )
        return
    command_logging(log_format)
    storage_options = call(s3.options_for, [opts["source"], opts["dest"]], endpoint_url, aws_config)
    # Failed runs are logged and the schedule goes on; a clean stop (SIGTERM, Ctrl-C) exits 0.
    call(
        sched.serve, pipe, cron, **opts, parallel=parallel, storage_options=storage_options, catch_up=catch_up
    )


def print_crontab_line(
    pipeline: str,
    cron: str,
    opts: dict[str, Any],
    *,
    parallel: int,
    log_format: str,
    log_file: str | None,
    config: str | None,
    endpoint_url: str | None,
    aws_config: str | None,
) -> None:
    """The crontab line: flags spelled out (cron has no LOGROLL_* variables), paths absolute, and
    no secret: a URL holding one is left to its variable, on a line of its own above it."""
    from . import scheduler as sched

    args = ["run", pipeline]
    hidden = []
    for flag, key in (("--source", "source"), ("--dest", "dest"), ("--state", "state")):
        value, secret = sched.crontab_location(opts.get(key))
        if value:
            args += [flag, value]
        if secret:
            hidden.append(f"LOGROLL_{key.upper()}=...")
    if config:
        args += ["--config", sched.absolute_location(config)]
    for flag, key in (
        ("--initials", "initials"),
        ("--layout", "layout"),
        ("--timestamp-column", "timestamp_column"),
        ("--engine", "engine"),
        ("--memory-limit", "memory_limit"),
        ("--threads", "threads"),
    ):
        if opts.get(key) is not None:
            args += [flag, str(opts[key])]
    if opts.get("work_dir"):
        args += ["--work-dir", sched.absolute_location(opts["work_dir"])]
    if parallel != 1:
        args += ["--parallel", str(parallel)]
    if endpoint_url:
        # http://KEY:SECRET@host: the endpoint goes in the line, the pair in AWS_* variables.
        endpoint, user, password = without_userinfo(endpoint_url)
        args += ["--endpoint-url", endpoint]
        if user or password:
            hidden.append("AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...")
    if aws_config:
        args += ["--aws-config", sched.absolute_location(aws_config)]
    if log_format != "text":
        args += ["--log-format", log_format]
    if log_file is None:
        from ..workspace import open_workspace

        ws = call(open_workspace, opts["dest"], opts.get("state"), opts.get("work_dir"))
        logs_dir = ws.work_dir / "logs"
        logs_dir.mkdir(parents=True, exist_ok=True)
        log_file = str(logs_dir / f"{pipeline}.log")
    typer.echo(sched.crontab_line(cron, args, sched.absolute_location(log_file)))
    if hidden:
        typer.echo(
            f"logroll: note: secrets were left out of the line: put {' '.join(hidden)} on a line of its own "
            "above it in the crontab (or use ~/.pgpass, an AWS profile)",
            err=True,
        )
