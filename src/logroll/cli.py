"""`logroll` command line: each command parses options, calls one API function, prints its report.

Library errors (LogrollError) become one line on stderr and the exit code they carry:
0 done, 1 failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from typing import Annotated, Any

import typer

from . import api, cli_ingest, cli_stream
from . import config as config_mod
from .errors import LogrollError, UsageError, first_line
from .storage import s3
from .units import DEFAULT_MEMORY_LIMIT
from .workspace import open_workspace

MEMORY_HELP = (
    "Engine memory cap; larger days spill to disk "
    f"[default: {DEFAULT_MEMORY_LIMIT['duckdb']}, {DEFAULT_MEMORY_LIMIT['spark']} for spark]."
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn files that keep landing in a folder or bucket into clean, deduplicated per-day results.",
    pretty_exceptions_enable=False,
)

Source = Annotated[
    str | None,
    typer.Option("--source", "-s", help="Folder or URL of the raw files.", envvar="LOGROLL_SOURCE"),
]
Dest = Annotated[
    str | None, typer.Option("--dest", "-d", help="Folder or URL for results.", envvar="LOGROLL_DEST")
]
ConfigFile = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        help="logroll.yaml with settings and pipelines [default: ./logroll.yaml if present]; "
        "LOGROLL_* variables override it, flags override both.",
        envvar="LOGROLL_CONFIG",
    ),
]
TimestampColumn = Annotated[
    str | None,
    typer.Option(
        "--timestamp-column",
        help="Header of the event-time column [default: the pipeline's; consolidate detects it].",
        envvar="LOGROLL_TIMESTAMP_COLUMN",
    ),
]
State = Annotated[
    str | None,
    typer.Option(
        "--state",
        help="Catalog: SQLite path or postgresql:// URL (default: DEST/_logroll/catalog.sqlite; for an "
        "s3:// DEST, ~/.cache/logroll/HASH/catalog.sqlite on this machine).",
        envvar="LOGROLL_STATE",
    ),
]
WorkDir = Annotated[
    str | None,
    typer.Option(
        "--work-dir", help="Local folder for staged parts and spill files.", envvar="LOGROLL_WORK_DIR"
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")]
EndpointUrl = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="S3-compatible endpoint, e.g. http://127.0.0.1:9000 (default: config.yaml's endpoint_url, "
        "AWS_ENDPOINT_URL, else AWS).",
    ),
]
AwsConfig = Annotated[
    str | None,
    typer.Option(
        "--aws-config",
        help="YAML file with an aws: section (access_key_id, secret_access_key, region, endpoint_url) "
        "(default: ./config.yaml if it has one, else the AWS chain: env vars, AWS_PROFILE, instance role).",
        envvar="LOGROLL_AWS_CONFIG",
    ),
]


Wait = Annotated[
    float,
    typer.Option(
        "--wait",
        help="If another run of this pipeline holds the state, wait up to this many seconds "
        "[default: exit 1 at once].",
        envvar="LOGROLL_WAIT",
    ),
]
LogFormat = Annotated[
    str,
    typer.Option(
        "--log-format",
        help="text: lines for people (a progress bar on a terminal); json: one JSON object per line.",
        envvar="LOGROLL_LOG_FORMAT",
    ),
]

_LOG_LEVEL = [logging.INFO]


def _setup_logging(verbose: bool, quiet: bool, fmt: str = "text") -> Any:
    from . import logs

    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    _LOG_LEVEL[0] = level
    return logs.setup(fmt, level)


def _command_logging(fmt: str, bar: bool = False) -> Any:
    """Logs as the command's --log-format asks; with `bar`, a progress callback on a terminal."""
    from . import logs

    console = _call(logs.setup, fmt, _LOG_LEVEL[0])
    if not bar or console is None or _LOG_LEVEL[0] > logging.INFO:
        return None
    from .progress import RunProgress

    for handler in logging.getLogger("logroll").handlers:
        handler.addFilter(logs.HideProgressLines())
    return RunProgress(console)


def _require(opts: dict[str, Any], *names: str) -> None:
    for name in names:
        if not opts.get(name):
            flag = "--" + name.replace("_", "-")
            _fail(
                UsageError(
                    f"{flag} is missing: pass {flag}, set LOGROLL_{name.upper()} or write {name}: in logroll.yaml"
                )
            )


def _fail(exc: BaseException) -> None:
    code = exc.exit_code if isinstance(exc, LogrollError) else 1
    message = first_line(exc)
    if not isinstance(exc, LogrollError):
        message = f"unexpected error: {type(exc).__name__}: {message} (set LOGROLL_DEBUG=1 for the traceback)"
    typer.echo(f"logroll: error: {message}", err=True)
    raise typer.Exit(code)


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except typer.Exit:
        raise
    except LogrollError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        typer.echo("logroll: interrupted; run again to resume where this run stopped", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        if os.environ.get("LOGROLL_DEBUG"):
            raise
        _fail(exc)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More log lines.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only.")] = False,
) -> None:
    _setup_logging(verbose, quiet)


@app.command()
def run(
    pipeline: Annotated[str, typer.Argument(help="impressions, or a pipeline from logroll.yaml.")],
    date: Annotated[
        str | None,
        typer.Argument(
            help="Event day (YYYY-MM-DD, YYYYMMDD, YYYY/MM/DD, MM/DD/YYYY). "
            "Omit to catch up on every dirty day."
        ),
    ] = None,
    source: Source = None,
    dest: Dest = None,
    config: ConfigFile = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day of an inclusive range.")] = None,
    state: State = None,
    initials: Annotated[
        str | None, typer.Option("--initials", help="Initials in output names.", envvar="LOGROLL_INITIALS")
    ] = None,
    lateness: Annotated[
        int | None,
        typer.Option(
            "--lateness",
            help="Days either side whose folders may hold rows for the requested days [default: 1].",
            envvar="LOGROLL_LATENESS",
        ),
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            "--layout",
            help="strftime pattern of the date folders under --source, e.g. %m-%d-%Y [default: %Y/%m/%d].",
            envvar="LOGROLL_LAYOUT",
        ),
    ] = None,
    timestamp_column: TimestampColumn = None,
    force: Annotated[bool, typer.Option("--force", help="Re-stage and rebuild the requested days.")] = False,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="duckdb (default) or spark (pip install 'logroll[spark]').",
            envvar="LOGROLL_ENGINE",
        ),
    ] = None,
    master: Annotated[
        str | None,
        typer.Option(
            "--master",
            help="For --engine spark: local[N], local[*] or spark://HOST:PORT [default: local[*]].",
            envvar="LOGROLL_SPARK_MASTER",
        ),
    ] = None,
    spark_conf: Annotated[
        list[str] | None,
        typer.Option("--conf", help="For --engine spark: a Spark setting KEY=VALUE; repeat for more."),
    ] = None,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            "--memory-limit",
            help=MEMORY_HELP,
            envvar="LOGROLL_MEMORY_LIMIT",
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Engine threads [default: all cores].")
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            help="Stage files and build days this many at once; they share --memory-limit and --threads "
            "[default: one per core with duckdb, else 1].",
            envvar="LOGROLL_PARALLEL",
        ),
    ] = None,
    wait: Wait = 0.0,
    log_format: LogFormat = "text",
    work_dir: WorkDir = None,
    endpoint_url: EndpointUrl = None,
    aws_config: AwsConfig = None,
    as_json: Json = False,
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Output files as csv or parquet [default: the pipeline's]. "
            "A --dest of duckdb:///FILE or postgresql://... writes tables instead.",
            envvar="LOGROLL_FORMAT",
        ),
    ] = None,
) -> None:
    """Stage new files, then build the requested day(s) and every day late data made dirty."""
    if pipeline == "ingest":  # scan + load into a central store: cli_ingest.py
        if (engine and engine != "duckdb") or master or spark_conf:
            # Each file is loaded on its own as it lands: there is no day build to distribute.
            _fail(UsageError("ingest loads each file with DuckDB as it lands: drop --engine/--master/--conf"))
        return cli_ingest.run(
            source=source,
            dest=dest,
            state=state,
            work_dir=work_dir,
            memory_limit=memory_limit or DEFAULT_MEMORY_LIMIT["duckdb"],
            threads=threads,
            endpoint_url=endpoint_url,
            aws_config=aws_config,
            as_json=as_json,
            config=config,
        )
    # logroll.yaml < LOGROLL_* < flags; a pipeline declared in the file is found by name too.
    pipe, opts = _call(
        config_mod.resolve,
        pipeline,
        config,
        dict(
            source=source,
            dest=dest,
            state=state,
            initials=initials,
            lateness=lateness,
            engine=engine,
            memory_limit=memory_limit,
            threads=threads,
            work_dir=work_dir,
            layout=layout,
            timestamp_column=timestamp_column,
            spark_master=master,
            spark_conf=spark_conf or None,
        ),
    )
    _require(opts, "source", "dest")
    progress = _command_logging(log_format, bar=True)
    storage_options = _call(s3.options_for, [opts["source"], opts["dest"]], endpoint_url, aws_config)
    with progress or contextlib.nullcontext():
        report = _call(
            api.run,
            pipe,
            date,
            to=to,
            force=force,
            **opts,
            parallel=parallel,
            wait=wait,
            on_event=progress,
            storage_options=storage_options,
            output_format=output_format,
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), sort_keys=True, default=str))
    else:
        typer.echo(report.summary())
    if report.status != "ok":
        raise typer.Exit(1)


@app.command()
def status(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name.")],
    dest: Dest = None,
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Accepted for symmetry with run.")
    ] = None,
    config: ConfigFile = None,
    all_files: Annotated[
        bool, typer.Option("--files", help="List every processed file (default: the last 20).")
    ] = False,
    all_days: Annotated[
        bool, typer.Option("--all-days", help="List every day (default: days not built + the last 30).")
    ] = False,
    state: State = None,
    work_dir: WorkDir = None,
    endpoint_url: EndpointUrl = None,
    aws_config: AwsConfig = None,
    as_json: Json = False,
) -> None:
    """Days built, dirty and failed; files rejected or failed; recent runs."""
    if pipeline == "ingest":  # files, jobs, failures of the scanner and job tables: cli_ingest.py
        return cli_ingest.status(state=state, dest=dest, as_json=as_json, config=config)
    pipe, opts = _call(config_mod.resolve, pipeline, config, dict(dest=dest, state=state, work_dir=work_dir))
    _require(opts, "dest")
    pipe = _call(api.resolve, pipe, initials=opts.get("initials"))
    storage_options = _call(s3.options_for, [opts["dest"]], endpoint_url, aws_config)
    info = _call(
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
    from rich.console import Console

    from .status_view import print_days, print_runs

    # Piped or redirected, Rich would wrap at 80 columns; a log file reads better unwrapped.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    print_days(console, info, all_days)
    files = info["files"]
    console.print(
        f"files staged {files['staged']}, rejected {len(files['rejected'])}, failed {len(files['failed'])}"
    )
    for f in files["rejected"]:
        console.print(f"  rejected {f['uri']}: {f['reason']}", markup=False)
    for f in files["failed"]:
        console.print(f"  failed {f['uri']}: {f['error']}", markup=False)
    _print_processed(console, info.get("processed", []), all_files)
    print_runs(console, info["runs"][:10])


def _print_processed(console: Any, processed: list[dict[str, Any]], everything: bool) -> None:
    """The catalog as the history of what was processed: file, status, rows, event days."""
    if not processed:
        return
    from rich.table import Table

    shown = processed if everything else sorted(processed, key=lambda f: f["staged_at"])[-20:]
    uris = [f["uri"] for f in processed]
    # Paths below the folder all of them share, which the title names once.
    prefix = os.path.commonprefix(uris)[: os.path.commonprefix(uris).rfind("/") + 1]
    table = Table(title=f"processed files under {prefix or '/'} ({len(shown)} of {len(processed)})")
    table.add_column("file", overflow="fold")
    for col in ("status", "rows", "rejected", "event days", "staged at"):
        table.add_column(col)
    for f in sorted(shown, key=lambda f: f["uri"]):
        days = f["days"]
        span = days[0] if len(days) == 1 else (f"{days[0]} .. {days[-1]} ({len(days)})" if days else "")
        table.add_row(
            f["uri"][len(prefix) :],
            f["status"],
            str(f["rows_read"]),
            str(f["rows_rejected"]),
            span,
            f["staged_at"][:19],
        )
    console.print(table)
    if len(shown) < len(processed):
        console.print(f"  {len(processed) - len(shown)} more: --files lists them all", markup=False)


@app.command()
def schedule(
    pipeline: Annotated[str, typer.Argument(help="impressions, or a pipeline from logroll.yaml.")],
    cron: Annotated[
        str,
        typer.Option(
            "--cron",
            help="When to run, in cron's 5 fields (local time), e.g. '0 23 * * *'.",
            envvar="LOGROLL_CRON",
        ),
    ],
    source: Source = None,
    dest: Dest = None,
    config: ConfigFile = None,
    state: State = None,
    initials: Annotated[
        str | None, typer.Option("--initials", help="Initials in output names.", envvar="LOGROLL_INITIALS")
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            "--layout", help="strftime pattern of the date folders under --source.", envvar="LOGROLL_LAYOUT"
        ),
    ] = None,
    timestamp_column: TimestampColumn = None,
    engine: Annotated[
        str | None, typer.Option("--engine", help="duckdb (default).", envvar="LOGROLL_ENGINE")
    ] = None,
    memory_limit: Annotated[
        str | None,
        typer.Option("--memory-limit", help=MEMORY_HELP, envvar="LOGROLL_MEMORY_LIMIT"),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Engine threads [default: all cores].")
    ] = None,
    parallel: Annotated[
        int, typer.Option("--parallel", help="Files and days at once in each run.", envvar="LOGROLL_PARALLEL")
    ] = 1,
    catch_up: Annotated[
        bool,
        typer.Option(
            "--catch-up/--no-catch-up",
            help="At start, run once if a scheduled time passed since the last run in the catalog.",
        ),
    ] = True,
    print_crontab: Annotated[
        bool,
        typer.Option("--print-crontab", help="Print the crontab line that runs this instead, and exit."),
    ] = False,
    log_file: Annotated[
        str | None,
        typer.Option(
            "--log-file",
            help="With --print-crontab: where cron appends the output [default: WORK_DIR/logs/PIPELINE.log].",
        ),
    ] = None,
    log_format: LogFormat = "text",
    work_dir: WorkDir = None,
    endpoint_url: EndpointUrl = None,
    aws_config: AwsConfig = None,
) -> None:
    """Run PIPELINE at every --cron time in the foreground (SIGTERM/Ctrl-C stops it), or --print-crontab."""
    if pipeline == "ingest":
        _fail(
            UsageError(
                "ingest runs as two cron jobs, `logroll scan ingest ...` and `logroll work ingest ...` "
                "(both safe to overlap; see docs/ingest.md), or keep workers up with `logroll work ingest --follow`"
            )
        )
    from . import schedule as sched

    cron = _call(sched.check_cron, cron)
    pipe, opts = _call(
        config_mod.resolve,
        pipeline,
        config,
        dict(
            source=source,
            dest=dest,
            state=state,
            initials=initials,
            engine=engine,
            memory_limit=memory_limit,
            threads=threads,
            work_dir=work_dir,
            layout=layout,
            timestamp_column=timestamp_column,
        ),
    )
    _require(opts, "source", "dest")
    if print_crontab:
        _print_crontab(pipeline, cron, opts, parallel, log_format, log_file, config, endpoint_url, aws_config)
        return
    _command_logging(log_format)
    storage_options = _call(s3.options_for, [opts["source"], opts["dest"]], endpoint_url, aws_config)
    # Failed runs are logged and the schedule goes on; a clean stop (SIGTERM, Ctrl-C) exits 0.
    _call(
        sched.serve, pipe, cron, **opts, parallel=parallel, storage_options=storage_options, catch_up=catch_up
    )


def _print_crontab(
    pipeline: str,
    cron: str,
    opts: dict[str, Any],
    parallel: int,
    log_format: str,
    log_file: str | None,
    config: str | None,
    endpoint_url: str | None,
    aws_config: str | None,
) -> None:
    """The crontab line: flags spelled out (cron has no LOGROLL_* variables), paths absolute."""
    from . import schedule as sched

    args = ["run", pipeline, "--source", sched.absolute_location(opts["source"])]
    args += ["--dest", sched.absolute_location(opts["dest"])]
    state, hidden = sched.crontab_state(opts.get("state"))
    if state:
        args += ["--state", state]
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
        args += ["--endpoint-url", endpoint_url]
    if aws_config:
        args += ["--aws-config", sched.absolute_location(aws_config)]
    if log_format != "text":
        args += ["--log-format", log_format]
    if log_file is None:
        ws = _call(open_workspace, opts["dest"], opts.get("state"), opts.get("work_dir"))
        logs_dir = ws.work_dir / "logs"
        logs_dir.mkdir(parents=True, exist_ok=True)
        log_file = str(logs_dir / f"{pipeline}.log")
    typer.echo(sched.crontab_line(cron, args, sched.absolute_location(log_file)))
    if hidden:
        typer.echo(
            "logroll: note: --state holds a password, left out of the line: put LOGROLL_STATE=... on a line "
            "of its own above it in the crontab (or use ~/.pgpass)",
            err=True,
        )


@app.command("report")
def html_report(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name.")],
    dest: Dest = None,
    out: Annotated[str, typer.Option("--out", "-o", help="HTML file to write.")] = "report.html",
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Accepted for symmetry with run.")
    ] = None,
    config: ConfigFile = None,
    state: State = None,
    work_dir: WorkDir = None,
    runs: Annotated[int, typer.Option("--runs", help="How many recent runs to chart.")] = 50,
    endpoint_url: EndpointUrl = None,
    aws_config: AwsConfig = None,
) -> None:
    """Write a self-contained HTML report: rows per day, rejects, duplicates, late rows, run times."""
    from . import htmlreport as report_mod

    pipe, opts = _call(config_mod.resolve, pipeline, config, dict(dest=dest, state=state, work_dir=work_dir))
    _require(opts, "dest")
    pipe = _call(api.resolve, pipe, initials=opts.get("initials"))
    storage_options = _call(s3.options_for, [opts["dest"]], endpoint_url, aws_config)
    path, data = _call(
        report_mod.build,
        pipe,
        dest=opts["dest"],
        out=out,
        state=opts.get("state"),
        work_dir=opts.get("work_dir"),
        runs=runs,
        storage_options=storage_options,
    )
    typer.echo(
        f"wrote {path} ({len(data.days)} days, {len(data.runs)} runs, {len(data.samples)} quarantine samples)"
    )


@app.command()
def validate(
    config: ConfigFile = None,
    show: Annotated[
        str | None,
        typer.Option(
            "--show", help="Print a pipeline (a preset or a declared one) in the logroll.yaml form."
        ),
    ] = None,
) -> None:
    """Check logroll.yaml (settings and pipelines, SQL included) without touching any data."""
    cfg = _call(config_mod.load, config)
    if show:
        pipe = _call(cfg.pipeline, show)
        from .pipelines.declare import dump_yaml

        typer.echo(dump_yaml([pipe]), nl=False)
        return
    if cfg.path is None:
        _fail(UsageError("no logroll.yaml here: pass --config PATH (or set LOGROLL_CONFIG)"))
    _call(config_mod.env_settings)
    names = ", ".join(sorted(cfg.pipelines)) or "none"
    typer.echo(f"{cfg.path}: ok ({len(cfg.pipelines)} pipeline(s): {names})")


@app.command()
def demo(
    pipeline: Annotated[str, typer.Argument(help="Which pipeline's sample to write.")],
    directory: Annotated[str, typer.Argument(help="Folder to write the sample source files into.")],
    days: Annotated[int, typer.Option("--days", help="Number of event days.")] = 3,
    rows: Annotated[int, typer.Option("--rows", help="Approximate number of rows in all.")] = 30_000,
    start: Annotated[str, typer.Option("--start", help="First day.")] = "2021-01-29",
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 7,
) -> None:
    """Write a realistic multi-day sample with every anomaly (late rows, duplicates, bad rows, ...)."""
    from . import demo as demo_mod
    from .dates import parse_date

    if pipeline not in demo_mod.GENERATORS:
        _fail(
            UsageError(
                f"no demo data for {pipeline!r}: {demo_mod.GENERATORS.hint(pipeline)}"
                f"choose one of {', '.join(sorted(demo_mod.GENERATORS))}"
            )
        )
    gen = demo_mod.GENERATORS[pipeline]
    files = _call(gen, directory, days=days, rows=rows, start=_call(parse_date, start).isoformat(), seed=seed)
    typer.echo(f"wrote {len(files)} files under {directory}")


@app.command("impressions")
def impressions(
    bucket_name: Annotated[
        str,
        typer.Option("--bucket_name", "--bucket-name", help="S3 bucket with raw files under YYYY/MM/DD/."),
    ],
    date_partition: Annotated[
        str, typer.Option("--date_partition", "--date-partition", help="Day to process (YYYY-MM-DD).")
    ],
    initials: Annotated[
        str, typer.Option("--initials", help="Initials in the result's file name.")
    ] = "Guy_Fawkes",
    transformation_type: Annotated[
        str,
        typer.Option(
            "--transformation_type",
            "--transformation-type",
            help="Transformation to run (a wrong name lists them).",
        ),
    ] = "aggregate_impressions",
    endpoint_url: EndpointUrl = None,
    aws_config: AwsConfig = None,
    state: State = None,
    work_dir: WorkDir = None,
    as_json: Json = False,
) -> None:
    """Seed 002: s3://BUCKET/YYYY/MM/DD/*.csv -> s3://BUCKET/results/YYYY/MM/DD/daily_agg_YYYYMMDD_INITIALS.csv.

    The same run as `logroll run impressions DATE --source s3://BUCKET --dest s3://BUCKET/results`.
    """
    from .pipelines import transformations

    source = _call(s3.bucket_url, bucket_name)
    pipe = _call(transformations.select, "impressions", transformation_type)
    storage_options = _call(s3.options_for, [source], endpoint_url, aws_config)
    report = _call(
        api.run,
        pipe,
        date_partition,
        source=source,
        dest=f"{source}/results",
        initials=initials,
        state=state,
        work_dir=work_dir,
        storage_options=storage_options,
    )
    typer.echo(json.dumps(report.to_dict(), sort_keys=True, default=str) if as_json else report.summary())
    if report.status != "ok":
        raise typer.Exit(1)


cli_ingest.register(app, sys.modules[__name__])
cli_stream.register(app, sys.modules[__name__])


def main() -> None:
    app()


if __name__ == "__main__":
    main()
