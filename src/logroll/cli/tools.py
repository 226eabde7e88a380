"""`logroll report`, `validate`, `demo` and `impressions` (seed 002's command line)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .. import config as config_mod
from ..errors import UsageError
from ..storage import s3
from .app import (
    AwsConfig,
    ConfigFile,
    Dest,
    EndpointUrl,
    Json,
    Pipeline,
    State,
    WorkDir,
    call,
    command,
    fail,
    require,
)


@command("report")
def html_report(
    pipeline: Pipeline,
    *,
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
    from .. import api
    from .. import htmlreport as report_mod

    if pipeline == "ingest":  # the scanner and job tables: what `logroll status ingest` shows
        from .. import ingest

        info = call(ingest.status, state=state, dest=dest, config=config)
        typer.echo(f"wrote {call(report_mod.build_summary, 'ingest', info, out)} (ingest jobs and files)")
        return
    pipe, opts = call(config_mod.resolve, pipeline, config, dict(dest=dest, state=state, work_dir=work_dir))
    require(opts, "dest")
    pipe = call(api.resolve, pipe, initials=opts.get("initials"))
    streamed = call(api.stream_status, pipe, dest=opts["dest"], work_dir=opts.get("work_dir"))
    if streamed is not None:
        path = call(report_mod.build_summary, "stream", streamed, out)
        typer.echo(f"wrote {path} ({len(streamed['inputs'])} stream input(s), {streamed['events']:,} events)")
        return
    storage_options = call(s3.options_for, [opts["dest"]], endpoint_url, aws_config)
    path, data = call(
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


@command()
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
    cfg = call(config_mod.load, config)
    if show:
        pipe = call(cfg.pipeline, show)
        from ..pipelines.declare import dump_yaml

        typer.echo(dump_yaml([pipe]), nl=False)
        return
    if cfg.path is None:
        fail(UsageError("no logroll.yaml here: pass --config PATH (or set LOGROLL_CONFIG)"))
    call(config_mod.env_settings)
    from ..ingest.settings import check_config

    ingest = call(check_config, cfg.path)
    names = ", ".join(sorted(cfg.pipelines)) or "none"
    typer.echo(
        f"{cfg.path}: ok ({len(cfg.pipelines)} pipeline(s): {names}{'; ingest settings' if ingest else ''})"
    )


@command()
def demo(
    pipeline: Annotated[
        str,
        typer.Argument(
            metavar="PIPELINE", help="Which pipeline's sample: impressions, consolidate, weblogs or ingest."
        ),
    ],
    directory: Annotated[
        str, typer.Argument(metavar="DIRECTORY", help="Folder to write the sample source files into.")
    ],
    *,
    days: Annotated[int, typer.Option("--days", help="Number of event days.")] = 3,
    rows: Annotated[int, typer.Option("--rows", help="Approximate number of rows in all.")] = 30_000,
    start: Annotated[str, typer.Option("--start", help="First day.")] = "2021-01-29",
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 7,
) -> None:
    """Write a realistic multi-day sample with every anomaly (late rows, duplicates, bad rows, ...)."""
    from .. import demo as demo_mod
    from ..dates import parse_date

    if pipeline not in demo_mod.GENERATORS:
        fail(
            UsageError(
                f"no demo data for {pipeline!r}: {demo_mod.GENERATORS.hint(pipeline)}"
                f"choose one of {', '.join(sorted(demo_mod.GENERATORS))}"
            )
        )
    gen = demo_mod.GENERATORS[pipeline]
    files = call(gen, directory, days=days, rows=rows, start=call(parse_date, start).isoformat(), seed=seed)
    typer.echo(f"wrote {len(files)} files under {directory}")


@command("impressions")
def impressions(
    *,
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
    from .. import api
    from ..pipelines import transformations

    source = call(s3.bucket_url, bucket_name)
    pipe = call(transformations.select, "impressions", transformation_type)
    storage_options = call(s3.options_for, [source], endpoint_url, aws_config)
    report = call(
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
