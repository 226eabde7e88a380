"""`logroll` command line: each command parses options, calls one API function, prints its report.

Library errors (LogrollError) become one line on stderr and the exit code they carry:
0 done, 1 failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Annotated, Any

import typer

try:  # typer 0.2x carries its own copy of click; its usage errors are that copy's classes
    from typer._click import exceptions as click_errors
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - a typer that uses click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]
    from click import get_current_context  # type: ignore[no-redef]

from ..errors import LogrollError, UsageError, first_line, safe_text
from ..units import DEFAULT_MEMORY_LIMIT

MEMORY_HELP = (
    "Engine memory cap; larger days spill to disk "
    f"[default: {DEFAULT_MEMORY_LIMIT['duckdb']}, {DEFAULT_MEMORY_LIMIT['spark']} for spark]."
)

EXIT_CODES = """\b
Exit codes: 0 done; 1 failed (a file rejected, a day failed, no input for a requested day, a
run that stopped early); 2 bad usage or configuration. Errors are one line on stderr that says
what to do next; --json prints exactly one JSON object on stdout, logs go to stderr."""

# Where a pipeline argument's help says which pipelines exist; filled in when help is shown
# (the declared ones come from ./logroll.yaml or LOGROLL_CONFIG).
PIPELINES = "{pipelines}"


def pipeline_names() -> str:
    """The presets, ingest, and the pipelines declared in ./logroll.yaml (or LOGROLL_CONFIG)."""
    from .. import config as config_mod
    from ..pipelines import PRESETS

    names = ", ".join([*PRESETS, "ingest"])
    try:
        declared = sorted(config_mod.load(None).pipelines)
    except Exception:  # a broken logroll.yaml must not break --help; `logroll validate` says why
        declared = []
    return names + (f"; declared in logroll.yaml: {', '.join(declared)}" if declared else "")


class LogrollCommand(typer.core.TyperCommand):
    """Plain (not Rich) help, so text in brackets such as [default: 1] or 'logroll[spark]' is shown
    as written; the pipeline argument lists the pipelines that exist here."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        saved = [(p, p.help) for p in self.params if PIPELINES in (getattr(p, "help", None) or "")]
        if saved:
            names = pipeline_names()
            for p, text in saved:
                p.help = text.replace(PIPELINES, names)  # type: ignore[union-attr]
        try:
            super().format_help(ctx, formatter)
        finally:
            for p, text in saved:
                p.help = text  # type: ignore[attr-defined]


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn files that keep landing in a folder or bucket into clean, deduplicated per-day results.",
    epilog=EXIT_CODES,
    pretty_exceptions_enable=False,
    # Rich markup would read [default: ...] in help texts and the [spark] of "logroll[spark]" as tags.
    rich_markup_mode=None,
)


def command(name: str | None = None) -> Any:
    """`@command()` registers a CLI command with logroll's help (LogrollCommand)."""
    return app.command(name, cls=LogrollCommand)


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
        help="Catalog: SQLite path or postgresql:// URL [default: DEST/_logroll/catalog.sqlite, in the "
        "bucket for an s3:// DEST].",
        envvar="LOGROLL_STATE",
    ),
]
WorkDir = Annotated[
    str | None,
    typer.Option(
        "--work-dir",
        help="Local folder for staged parts, spool and spill files [default: DEST/_logroll; for an s3:// "
        "or database DEST, a cache under ~/.cache/logroll].",
        envvar="LOGROLL_WORK_DIR",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")]
EndpointUrl = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="S3-compatible endpoint, e.g. http://127.0.0.1:9000 [default: config.yaml's endpoint_url, "
        "AWS_ENDPOINT_URL, else AWS].",
    ),
]
AwsConfig = Annotated[
    str | None,
    typer.Option(
        "--aws-config",
        help="YAML file with an aws: section (access_key_id, secret_access_key, region, endpoint_url) "
        "[default: ./config.yaml if it has one, else the AWS chain: env vars, AWS_PROFILE, instance role].",
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
        "[default: 0, exit 1 at once].",
        envvar="LOGROLL_WAIT",
        show_default=False,
    ),
]
LogFormat = Annotated[
    str,
    typer.Option(
        "--log-format",
        help="text: lines for people (a progress bar on a terminal); json: one JSON object per line "
        "[default: text].",
        envvar="LOGROLL_LOG_FORMAT",
        show_default=False,
    ),
]

Pipeline = Annotated[str, typer.Argument(metavar="PIPELINE", help=f"One of {PIPELINES}.")]

_LOG_LEVEL = [logging.INFO]


def setup_logging(verbose: bool, quiet: bool, fmt: str = "text") -> Any:
    from . import logs

    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    _LOG_LEVEL[0] = level
    return logs.setup(fmt, level)


def command_logging(fmt: str, bar: bool = False, console: bool = False) -> Any:
    """Logs as the command's --log-format asks; with `bar`, a progress callback on a terminal;
    with `console`, the Rich console the log lines go to on a terminal (else None)."""
    from . import logs

    rich_console = call(logs.setup, fmt, _LOG_LEVEL[0])
    if console:
        return rich_console
    if not bar or rich_console is None or _LOG_LEVEL[0] > logging.INFO:
        return None
    from .progress import RunProgress

    for handler in logging.getLogger("logroll").handlers:
        handler.addFilter(logs.HideProgressLines())
    return RunProgress(rich_console)


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
    error_out(message, code, json_asked())
    raise typer.Exit(code)


def json_asked() -> bool:
    """Whether the running command was given --json (every command names that flag `as_json`)."""
    ctx = get_current_context(silent=True)
    return bool(ctx is not None and ctx.params.get("as_json"))


def error_out(message: str, code: int, as_json: bool) -> None:
    """One line on stderr; with --json also the one JSON object stdout promises, saying why."""
    message = safe_text(message)
    typer.echo(f"logroll: {message}" if code == 130 else f"logroll: error: {message}", err=True)
    if as_json:
        typer.echo(json.dumps({"status": "error", "error": message, "exit_code": code}, sort_keys=True))


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except typer.Exit:
        raise
    except LogrollError as exc:
        fail(exc)
    except KeyboardInterrupt:
        error_out("interrupted; run again to resume where this run stopped", 130, json_asked())
        raise typer.Exit(130) from None
    except Exception as exc:
        if os.environ.get("LOGROLL_DEBUG"):
            raise
        fail(exc)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"logroll {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More log lines.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print logroll's version and exit.", callback=_version, is_eager=True),
    ] = False,
) -> None:
    setup_logging(verbose, quiet)


def main() -> None:
    """The `logroll` entry point: click's own usage errors (a missing argument, an unknown option,
    a value of the wrong type) become one line and exit 2 like logroll's."""
    try:
        code = app(standalone_mode=False, prog_name="logroll")
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()  # the help text
        sys.exit(2)
    except click_errors.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "logroll"
        error_out(f"{exc.format_message().rstrip('.')} (see `{where} --help`)", 2, "--json" in sys.argv[1:])
        sys.exit(2)
    except typer.Abort:
        typer.echo("logroll: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
