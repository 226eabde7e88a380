"""`logroll run` with nothing to do, answered with the standard library alone.

A run that finds nothing new lists its day folders, reads the catalog, and records a run row.
For that it needs none of Typer, DuckDB, pyarrow, SQLAlchemy or fsspec, which together take
most of a second to import. `answer` does that much itself, deciding with the full run's own
functions (discover.to_stage, build.days_to_build, build.state_garbage, the same day folders),
and prints the same report, log lines and run row. It hands over to the full run (returns None)
whenever the answer is not a plain "nothing to do", and whenever the command is anything but
the plain case it knows: a flag it does not know, a logroll.yaml or a LOGROLL_* variable, a
destination or source that is not a local folder, a state that is not the destination's own
SQLite file or holds a table it does not know, a symbolic link under the source, a lock row or
a run marked running (another run, or one that died: the full run waits, says so or takes
over), a file to stage, a day to build, an output deleted, a requested day with no input,
anything left over to collect.

Its catalog work is one SQLite transaction begun with BEGIN IMMEDIATE: no other run can take
the lock or commit between what it reads and the run row it writes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import build, discover
from .. import config as config_mod
from ..dates import requested_days, utc_now
from ..errors import LogrollError
from ..events import Emitter
from ..pipelines.base import Pipeline
from ..report import RunReport
from ..storage.files import FileVersion, is_local, local_url
from ..urls import identity, redact_url

# The catalog tables of a batch pipeline's state. Any other table (a newer logroll's) may hold
# something this module does not check: the full run is asked then.
KNOWN_TABLES = {"files", "parts", "partitions", "runs", "locks", "day_states", "bindings", "sqlite_sequence"}
_VALUED = {"--source": "source", "-s": "source", "--dest": "dest", "-d": "dest", "--to": "to"}
_VALUED |= {"--lateness": "lateness", "--initials": "initials", "--log-format": "log_format"}
_VALUED |= {"--threads": "threads", "--parallel": "parallel"}


class HandOver(Exception):
    """Not a plain nothing-to-do run: the full run takes it (the message says why, with -v)."""


@dataclass
class Command:
    pipeline: str
    date: str | None = None
    to: str | None = None
    source: str | None = None
    dest: str | None = None
    lateness: str | None = None
    initials: str | None = None
    log_format: str = "text"
    threads: str | None = None
    parallel: str | None = None
    as_json: bool = False
    level: int = 20  # logging.INFO; -v DEBUG, -q WARNING


@dataclass(frozen=True)
class _Part:
    """A catalog part row, as build.fingerprint reads it (catalog.store.PartRow's fields)."""

    file_id: int
    day: str
    version: str
    rows: int
    path: str


def answer(argv: list[str]) -> int | None:
    """The exit code of `logroll ARGV` when it is a run with nothing to do (done, reported),
    else None: the caller runs the full command."""
    started = time.monotonic()
    try:
        cmd = parse(argv)
    except HandOver as why:
        if str(why) != "not a run" and argv[:1] in (["-v"], ["--verbose"]):
            print(f"logroll: handing over to the full run: {why}", file=sys.stderr)
        return None
    try:
        return _nothing_to_do(cmd, started)
    except HandOver as why:
        if cmd.level <= 10:
            print(f"logroll: handing over to the full run: {why}", file=sys.stderr)
        return None
    except (LogrollError, OSError, sqlite3.Error, ValueError, KeyError, TypeError) as exc:
        # A bad date, an unknown pipeline, an unreadable catalog: the full run says it better.
        if cmd.level <= 10:
            print(f"logroll: handing over to the full run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def parse(argv: list[str]) -> Command:
    """`[-v|-q] run PIPELINE [DATE] [options]` with only the options this module knows."""
    args = list(argv)
    level = 20
    while args and args[0] in ("-v", "--verbose", "-q", "--quiet"):
        level = 10 if args.pop(0) in ("-v", "--verbose") else 30
    if len(args) < 2 or args[0] != "run" or args[1].startswith("-"):
        raise HandOver("not a run")
    cmd = Command(pipeline=args[1], level=level)
    positional: list[str] = []
    rest = args[2:]
    while rest:
        arg = rest.pop(0)
        if arg == "--json":
            cmd.as_json = True
        elif arg.startswith("-"):
            name, eq, value = arg.partition("=")
            if name not in _VALUED or (not eq and not rest) or (eq and not name.startswith("--")):
                raise HandOver(f"option {name}")
            setattr(cmd, _VALUED[name], value if eq else rest.pop(0))
        else:
            positional.append(arg)
    if len(positional) > 1 or not cmd.source or not cmd.dest:
        raise HandOver("arguments")
    cmd.date = positional[0] if positional else None
    for n in (cmd.threads, cmd.parallel):  # the full run checks them (and says what is wrong)
        if n is not None and (not n.isdigit() or int(n) < 1):
            raise HandOver("--threads/--parallel")
    if cmd.log_format not in ("text", "json") or (cmd.lateness is not None and not cmd.lateness.isdigit()):
        raise HandOver("--log-format/--lateness")
    return cmd


def _nothing_to_do(cmd: Command, started: float) -> int:
    if any(k.startswith(config_mod.ENV_PREFIX) for k in os.environ):
        raise HandOver("LOGROLL_* variables")
    if config_mod.find_config(None) is not None:
        raise HandOver("a logroll.yaml")
    flags = dict(source=cmd.source, dest=cmd.dest, initials=cmd.initials, lateness=cmd.lateness)
    pipe, opts = config_mod.resolve(cmd.pipeline, None, flags)
    if cmd.initials is not None and "initials" in pipe.params:  # as api.resolve
        pipe = pipe.with_params(initials=cmd.initials)
    lateness = int(opts.get("lateness", 1))
    start, end, requested = requested_days(cmd.date, cmd.to, lateness)
    if not (is_local(opts["source"]) and is_local(opts["dest"])) or "://" in opts["dest"]:
        raise HandOver("not local folders")
    src, dest = local_url(opts["source"]), local_url(opts["dest"])
    work = Path(dest) / "_logroll"  # workspace.open_workspace, a local folder
    state = work / "catalog.sqlite"
    if not Path(src).is_dir() or not state.is_file() or src.rstrip("/") == dest.rstrip("/"):
        raise HandOver("no source folder, no state yet, or --dest is the source")
    if (work / "stream" / f"{pipe.name}.sqlite").exists():  # api refuses a destination streamed into
        raise HandOver("a stream writes this destination")
    binding = (_dest_id(work / "id"), identity(dest), redact_url(dest))
    folders = discover.day_folders(pipe, start, end, lateness) if start and end else None
    exclude = (dest,) if dest.startswith(src.rstrip("/") + "/") else ()
    listed = list_local(src, folders, pipe, exclude)
    report = RunReport(pipeline=pipe.name, engine="duckdb", state=redact_url(str(state)))
    report.files_seen = len(listed)
    checks = _Checks(pipe, src, dest, listed, requested, binding)
    report.run_id = record_if_idle(state, pipe.name, checks, report, started)
    _say(cmd, pipe, report)
    return 0


def _dest_id(path: Path) -> str:
    """The id in the destination's `_logroll/id` (workspace.Workspace.dest_id), as it is written."""
    try:
        return str(json.loads(path.read_bytes())["id"])
    except FileNotFoundError:
        raise HandOver("no destination id yet") from None
    except (ValueError, KeyError, TypeError):
        raise HandOver("a destination id this version does not read") from None


def list_local(
    src: str, folders: list[str] | None, pipe: Pipeline, exclude: tuple[str, ...]
) -> list[FileVersion]:
    """discover.list_sources over a local source, as Storage.list_files lists it (the same
    files, uris and version tokens; tests/test_quick.py compares them), without fsspec."""
    seen: dict[str, FileVersion] = {}
    skip = tuple(e.rstrip("/") + "/" for e in exclude)
    suffixes = tuple(s.lower() for s in pipe.suffixes)
    root = src.rstrip("/") + "/"
    signature = discover.version_signature(pipe)
    for folder in folders if folders is not None else [""]:
        base = os.path.join(src, folder) if folder else src
        for path, st in _walk(base):
            name = os.path.basename(path).lower()
            inner = path.removeprefix(root)
            if name.startswith((".", "_")) or any(p.startswith((".", "_")) for p in inner.split("/")[:-1]):
                continue
            if (skip and path.startswith(skip)) or (suffixes and not name.endswith(suffixes)):
                continue
            token = f"{st.st_size}:{st.st_mtime}"  # storage.files._version_token of a local file
            seen[path] = FileVersion(path, int(st.st_size), f"{token}~{signature}")
    return sorted(seen.values(), key=lambda f: f.uri)


def _walk(base: str) -> list[tuple[str, os.stat_result]]:
    """Every file below `base` with its stat; a symbolic link hands over (fsspec's walk decides
    what it means)."""
    out = []
    try:
        entries = list(os.scandir(base))
    except FileNotFoundError:
        return out
    for e in entries:
        if e.is_symlink():
            raise HandOver(f"symbolic link {e.path}")
        if e.is_dir():
            out += _walk(e.path)
        else:
            out.append((e.path, e.stat()))
    return out


@dataclass
class _Checks:
    """What the full run would check, on the catalog rows read in record_if_idle's transaction."""

    pipe: Pipeline
    src: str
    dest: str
    listed: list[FileVersion]
    requested: tuple[str, ...] | None
    binding: tuple[str, str, str]  # (dest id, identity, shown): catalog.Catalog.bind's row as it stands

    def __call__(self, read: Callable[[str], list[tuple[Any, ...]]]) -> None:
        name = self.pipe.name
        if [tuple(r) for r in read("SELECT dest_id, identity, dest FROM bindings")] != [self.binding]:
            raise HandOver("the state's binding to its destination is not this one's (or none yet)")
        known = {u: {"version": v, "status": s} for u, v, s in read("SELECT uri, version, status FROM files")}
        if discover.to_stage(self.listed, known, False):
            raise HandOver("a file to stage")
        parts: dict[str, list[_Part]] = {}
        for f, d, v, n, p in read("SELECT file_id, day, version, rows, path FROM parts"):
            parts.setdefault(d, []).append(_Part(int(f), d, v, int(n), p))
        built = {
            d: {"fingerprint": fp, "status": st, "outputs": json.loads(outs or "{}")}
            for d, fp, st, outs in read("SELECT day, fingerprint, status, outputs FROM partitions")
        }
        requested = list(self.requested) if self.requested is not None else None
        if requested:
            rels = [f.uri.removeprefix(self.src.rstrip("/") + "/") for f in self.listed]
            with_files = discover.days_with_files(self.pipe, rels, requested)
            if any(d not in parts and d not in with_files for d in requested):
                raise HandOver("a requested day has no input")
            for d in requested:
                row = built.get(d)
                if row and any(not os.path.exists(os.path.join(self.dest, rel)) for rel in row["outputs"]):
                    raise HandOver("an output was deleted")
        if build.days_to_build(self.pipe, parts, built, requested, False):  # type: ignore[arg-type]
            raise HandOver("a day to build")
        work = Path(self.dest) / "_logroll"
        live = {Path(p.path).parent.parent.name for rows in parts.values() for p in rows}
        staged = work / "staged" / name
        if staged.is_dir() and any(d.is_dir() and d.name not in live for d in staged.iterdir()):
            raise HandOver("staged parts to collect")
        states = {d: {"files": json.loads(files)} for d, files in read("SELECT day, files FROM day_states")}
        if build.state_garbage(work / "days" / name, states):
            raise HandOver("day state files to collect")


def record_if_idle(state: Path, pipeline: str, checks: _Checks, report: RunReport, started: float) -> int:
    """Check and record, in one write transaction of the catalog: no lock row, no run marked
    running, nothing to do (`checks`). Returns the run's id."""
    con = sqlite3.connect(f"file:{state}?mode=rw", uri=True, timeout=30, isolation_level=None)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if (
            not tables <= KNOWN_TABLES
            or not {"files", "parts", "partitions", "runs", "locks", "day_states", "bindings"} <= tables
        ):
            raise HandOver("a catalog this version does not know")
        begun = utc_now()
        con.execute("BEGIN IMMEDIATE")
        try:
            if con.execute("SELECT 1 FROM locks WHERE name = ?", (f"run:{pipeline}",)).fetchone():
                raise HandOver("the lock is held")
            if con.execute(
                "SELECT 1 FROM runs WHERE pipeline = ? AND status = 'running'", (pipeline,)
            ).fetchone():
                raise HandOver("a run is marked running")

            def read(query: str) -> list[tuple[Any, ...]]:
                return con.execute(f"{query} WHERE pipeline = ?", (pipeline,)).fetchall()

            checks(read)
            cur = con.execute(
                "INSERT INTO runs (pipeline, started_at, status) VALUES (?, ?, 'running')",
                (pipeline, _at(begun)),
            )
            report.run_id = int(cur.lastrowid or 0)
            report.seconds = round(time.monotonic() - started, 3)
            body = json.dumps(report.to_dict(), sort_keys=True, default=str)
            con.execute(
                "UPDATE runs SET finished_at = ?, status = 'ok', report = ? WHERE id = ?",
                (_at(utc_now()), body, report.run_id),
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return report.run_id
    finally:
        con.close()


def _at(when: dt.datetime) -> str:
    """A time as SQLAlchemy's DateTime stores it in SQLite."""
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


def _say(cmd: Command, pipe: Pipeline, report: RunReport) -> None:
    """The log lines, then the report, as `logroll run` prints them for a run with nothing to do."""
    from . import logs

    logs.setup(cmd.log_format, cmd.level)
    emit = Emitter(pipe.name, report.run_id)
    runner_messages(emit, report)
    if cmd.as_json:
        print(json.dumps(report.to_dict(), sort_keys=True, default=str))
    else:
        print(report.summary())


def runner_messages(emit: Emitter, report: RunReport) -> None:
    """runner.BatchRun's events for a run that staged and built nothing."""
    name, run_id = report.pipeline, report.run_id
    emit.phase("stage", 0, f"{name}: run {run_id}: 0 of {report.files_seen} files to stage")
    emit.phase("build", 0, f"{name}: run {run_id}: 0 days to build")
    counts = dict.fromkeys(
        ("files_staged", "files_rejected", "files_failed", "rows_read", "rows_valid", "rows_rejected"), 0
    )
    counts |= dict.fromkeys(
        ("days_built", "days_failed", "rows_in", "rows_unique", "duplicates", "rows_out"), 0
    )
    emit.emit("run_finished", f"{name}: run {run_id} ok in {report.seconds:.1f}s", counts=counts)
