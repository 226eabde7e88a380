"""`logroll` command line: each command parses options, calls one API function, prints its report.

Library errors (LogrollError) become one line on stderr and the exit code they carry:
0 done, 1 failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import logging
import os
from typing import Annotated, Any

import typer

from ..errors import LogrollError, UsageError, first_line
from ..units import DEFAULT_MEMORY_LIMIT

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


Initials = Annotated[
    str | None, typer.Option("--initials", help="Initials in output names.", envvar="LOGROLL_INITIALS")
]
MemoryLimit = Annotated[
    str | None, typer.Option("--memory-limit", help=MEMORY_HELP, envvar="LOGROLL_MEMORY_LIMIT")
]
Threads = Annotated[int | None, typer.Option("--threads", help="Engine threads [default: all cores].")]
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


def setup_logging(verbose: bool, quiet: bool, fmt: str = "text") -> Any:
    from . import logs

    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    _LOG_LEVEL[0] = level
    return logs.setup(fmt, level)


def command_logging(fmt: str, bar: bool = False) -> Any:
    """Logs as the command's --log-format asks; with `bar`, a progress callback on a terminal."""
    from . import logs

    console = call(logs.setup, fmt, _LOG_LEVEL[0])
    if not bar or console is None or _LOG_LEVEL[0] > logging.INFO:
        return None
    from .progress import RunProgress

    for handler in logging.getLogger("logroll").handlers:
        handler.addFilter(logs.HideProgressLines())
    return RunProgress(console)


def require(opts: dict[str, Any], *names: str) -> None:
    for name in names:
        if not opts.get(name):
            flag = "--" + name.replace("_", "-")
            fail(
                UsageError(
                    f"{flag} is missing: pass {flag}, set LOGROLL_{name.upper()} or write {name}: in logroll.yaml"
                )
            )


def fail(exc: BaseException) -> None:
    code = exc.exit_code if isinstance(exc, LogrollError) else 1
    message = first_line(exc)
    if not isinstance(exc, LogrollError):
        message = f"unexpected error: {type(exc).__name__}: {message} (set LOGROLL_DEBUG=1 for the traceback)"
    typer.echo(f"logroll: error: {message}", err=True)
    raise typer.Exit(code)


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except typer.Exit:
        raise
    except LogrollError as exc:
        fail(exc)
    except KeyboardInterrupt:
        typer.echo("logroll: interrupted; run again to resume where this run stopped", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        if os.environ.get("LOGROLL_DEBUG"):
            raise
        fail(exc)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More log lines.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only.")] = False,
) -> None:
    setup_logging(verbose, quiet)


def main() -> None:
    app()
