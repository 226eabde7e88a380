"""The public functions. The CLI is a thin layer over these; a notebook can call them too.

>>> import logroll
>>> report = logroll.run("impressions", "2021-01-30", source="raw/", dest="results/")
>>> report.rows_out
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import build as build_mod
from . import discover, faults
from .catalog import Catalog
from .catalog.lock import RunLock
from .dates import compact_days, day_range, parse_date
from .engines import engine_settings
from .engines.pool import EnginePool, default_parallel
from .errors import FileRejected, NoInputError, UsageError, first_line
from .events import Emitter, EventCallback
from .pipelines import Pipeline, get_pipeline
from .prefetch import Prefetcher
from .publish import keep_quarantine
from .report import RunReport
from .stage import Staged, stage_csv, stage_jsonl, whole_file_quarantine
from .storage import FileVersion, Storage, is_local, join
from .units import default_memory_limit
from .urls import redact_url
from .workspace import Workspace, open_workspace

log = logging.getLogger("logroll")

# Parallel workers add to one run report.
_REPORT_LOCK = threading.Lock()


def resolve(pipeline: str | Pipeline, **params: str | None) -> Pipeline:
    p = pipeline if isinstance(pipeline, Pipeline) else get_pipeline(pipeline)
    return p.with_params(**{k: v for k, v in params.items() if k in p.params})


def run(
    pipeline: str | Pipeline,
    date: str | dt.date | None = None,
    *,
    source: str,
    dest: str,
    to: str | dt.date | None = None,
    state: str | None = None,
    initials: str | None = None,
    layout: str | None = None,
    timestamp_column: str | None = None,
    lateness: int = 1,
    force: bool = False,
    engine: str = "duckdb",
    memory_limit: str | None = None,
    threads: int | None = None,
    work_dir: str | None = None,
    storage_options: dict[str, Any] | None = None,
    parallel: int | None = None,
    wait: float = 0.0,
    on_event: EventCallback | None = None,
    output_format: str | None = None,
    spark_master: str | None = None,
    spark_conf: list[str] | dict[str, str] | None = None,
) -> RunReport:
    """Stage what is new under `source`, then build the requested and the dirty event days.

    With `date` (and optionally `to`), stage the folders of those days plus `lateness` days
    either side and build those days; with no date, stage everything new and build every
    dirty day. Returns the run report; raises LogrollError subclasses on bad usage.

    `parallel` engines stage files and build days at once, sharing `memory_limit`. Only one run
    per pipeline and state runs at a time: another one waits up to `wait` seconds, then raises
    LockedError. `on_event(RunEvent)` is called at each step (progress bars).

    `output_format` (csv or parquet) overrides the outputs' file format. A `dest` of
    `duckdb:///file.duckdb` or `postgresql://...` writes each output as a table instead.

    `spark_master` (default local[*]) and `spark_conf` ("key=value" items or a dict) are for
    `engine="spark"` only.
    """
    started = time.monotonic()
    engine_options = engine_settings(engine, spark_master, spark_conf)
    # layout (strftime of the date folders) and timestamp_column (header of the event time)
    # apply to any pipeline.
    pipe = resolve(pipeline, initials=initials).with_layout(layout).with_event_time_source(timestamp_column)
    if lateness < 0:
        raise UsageError("--lateness must be 0 or more days")
    start = parse_date(date) if date is not None else None
    end = parse_date(to) if to is not None else start
    if to is not None and start is None:
        raise UsageError("--to needs a start date: logroll run PIPELINE START --to END")
    requested = [d.isoformat() for d in day_range(start, end)] if start and end else None

    src = Storage(source, storage_options)
    src.require_root("source")
    pipe = pipe.with_format(output_format)
    ws = open_workspace(dest, state, work_dir, storage_options)
    if hasattr(ws.dest, "publish_output"):  # tables are loaded from typed Parquet, not CSV
        ws.dest.check(pipe)
        pipe = pipe.with_format("parquet")
    _check_remote_dest(ws, src, state)
    catalog = Catalog(ws.state)
    lock = RunLock(catalog, pipe.name, wait=wait)
    try:
        lock.acquire()
        report = _run_locked(
            pipe,
            src,
            ws,
            catalog,
            start,
            end,
            requested,
            lateness,
            force,
            engine,
            memory_limit or default_memory_limit(engine),
            threads,
            parallel or default_parallel(engine),
            on_event,
            started,
            engine_options,
        )
    finally:
        lock.release()
        catalog.close()
    if report.days_missing and not (report.files_staged or report.partitions_built):
        missing = report.days_missing
        folders = [join(src.url, dt.date.fromisoformat(d).strftime(pipe.layout)) for d in missing[:3]]
        where = ", ".join(folders) + (f" and {len(missing) - 3} more folders" if len(missing) > 3 else "")
        days = compact_days(missing) if len(missing) > 3 else ", ".join(missing)
        raise NoInputError(
            f"no input files for {days} (looked in {where}) and nothing staged for "
            f"{'it' if len(missing) == 1 else 'them'}: check the date and --source"
        )
    return report


def _run_locked(
    pipe: Pipeline,
    src: Storage,
    ws: Workspace,
    catalog: Catalog,
    start: dt.date | None,
    end: dt.date | None,
    requested: list[str] | None,
    lateness: int,
    force: bool,
    engine: str,
    memory_limit: str,
    threads: int | None,
    parallel: int,
    on_event: EventCallback | None,
    started: float,
    engine_options: dict[str, Any] | None = None,
) -> RunReport:
    """The run itself, while this process holds the pipeline's lock."""
    report = RunReport(pipeline=pipe.name, engine=engine, state=redact_url(ws.state))
    report.run_id = run_id = catalog.start_run(pipe.name)
    emit = Emitter(pipe.name, run_id, on_event)
    # Runs killed before they could say so: marked crashed, their scratch files removed.
    for dead in catalog.mark_crashed(pipe.name, run_id):
        shutil.rmtree(ws.work_dir / "tmp" / f"run-{dead}", ignore_errors=True)
    faults.point("run.started")
    pool = EnginePool(
        engine, ws.work_dir, memory_limit=memory_limit, threads=threads, size=parallel, options=engine_options
    )
    try:
        folders = discover.day_folders(pipe, start, end, lateness) if start and end else None
        listed = discover.list_sources(src, pipe, folders, exclude=_nested_dest(ws, src))
        # A version staged under another declaration (columns, types, timestamp column...) is
        # staged again: its parts would not be what this declaration makes of it.
        listed = [replace(f, version=f"{f.version}~{pipe.stage_signature()}") for f in listed]
        report.files_seen = len(listed)
        known = catalog.files(pipe.name)
        todo = discover.to_stage(listed, known, force)
        emit.phase(
            "stage", len(todo), f"{pipe.name}: run {run_id}: {len(todo)} of {len(listed)} files to stage"
        )
        # Remote files download a few ahead of the workers that stage them.
        with Prefetcher(src, todo, ws.work_dir / "spool") as fetcher:
            pool.each(
                todo, lambda eng, f: _stage_one(eng, catalog, src, ws, pipe, f, run_id, report, emit, fetcher)
            )
        # Files are staged in any order by parallel workers; the report lists them in one.
        report.files_rejected.sort(key=lambda r: r["uri"])
        report.files_failed.sort(key=lambda r: r["uri"])
        report.quarantine.sort()

        all_parts = catalog.parts(pipe.name)
        built = catalog.partitions(pipe.name)
        if requested:
            listed_days = _days_with_files(pipe, src, listed, requested)
            report.days_missing = [d for d in requested if d not in all_parts and d not in listed_days]
            requested = [d for d in requested if d not in report.days_missing]
            for d in requested:  # an output deleted by hand is rebuilt
                row = built.get(d)
                if row and any(not ws.dest.exists(rel) for rel in row["outputs"]):
                    row["fingerprint"] = None
        targets = build_mod.days_to_build(pipe, all_parts, built, requested, force)
        tmp_root = ws.work_dir / "tmp" / f"run-{run_id}"
        emit.phase("build", len(targets), f"{pipe.name}: run {run_id}: {len(targets)} days to build")

        def build_one(eng: Any, day: str) -> None:
            try:
                res = build_mod.build_day(
                    eng, catalog, ws.dest, pipe, day, all_parts.get(day, []), built.get(day), tmp_root, run_id
                )
            except Exception as exc:  # one bad day never stops the others
                error = first_line(exc)
                catalog.record_partition_failed(pipe.name, day, str(exc), run_id)
                with _REPORT_LOCK:
                    report.partitions_failed.append({"day": day, "error": error})
                emit.emit(
                    "day_failed",
                    f"day {day} failed: {error}",
                    level=logging.ERROR,
                    phase="build",
                    day=day,
                    error=error,
                )
                return
            counts = {
                "rows_in": res.rows_in,
                "rows_unique": res.rows_unique,
                "duplicates": res.duplicates,
                "rows_out": res.rows_out,
            }
            with _REPORT_LOCK:
                report.partitions_built.append(day)
                report.partitions.append({"day": day, **counts})
                report.rows_in += res.rows_in
                report.rows_unique += res.rows_unique
                report.duplicates += res.duplicates
                report.rows_out += res.rows_out
                report.warnings.extend(res.warnings)
                for rel in res.outputs:
                    report.outputs.append(join(ws.dest.url, rel))
                report.outputs_written.extend(join(ws.dest.url, rel) for rel in res.written)
            emit.emit(
                "day_built",
                f"built {day}: {res.rows_in:,} rows in, {res.rows_unique:,} unique, {res.rows_out:,} out",
                phase="build",
                day=day,
                counts=counts,
            )

        pool.each(targets, build_one)
        # Workers finish in any order; the report lists days in order either way.
        report.partitions_built.sort()
        report.partitions.sort(key=lambda p: p["day"])
        report.partitions_failed.sort(key=lambda p: p["day"])
        report.outputs.sort()
        report.outputs_written.sort()
        shutil.rmtree(tmp_root, ignore_errors=True)
        faults.point("run.before_gc")
        _collect_garbage(catalog, ws, pipe)
    except BaseException:
        catalog.finish_run(run_id, "crashed", report.to_dict())
        raise
    finally:
        pool.close()
    failed = report.files_rejected or report.files_failed or report.partitions_failed or report.days_missing
    report.status = "failed" if failed else "ok"
    report.seconds = round(time.monotonic() - started, 3)
    faults.point("run.before_finish")
    catalog.finish_run(run_id, report.status, report.to_dict())
    emit.emit(
        "run_finished",
        f"{pipe.name}: run {run_id} {report.status} in {report.seconds:.1f}s",
        level=logging.INFO if report.status == "ok" else logging.WARNING,
        counts={
            "files_staged": report.files_staged,
            "files_rejected": len(report.files_rejected),
            "files_failed": len(report.files_failed),
            "rows_read": report.rows_read,
            "rows_valid": report.rows_valid,
            "rows_rejected": report.rows_rejected,
            "days_built": len(report.partitions_built),
            "days_failed": len(report.partitions_failed),
            "rows_in": report.rows_in,
            "rows_unique": report.rows_unique,
            "duplicates": report.duplicates,
            "rows_out": report.rows_out,
        },
    )
    return report


def _nested_dest(ws: Workspace, src: Storage) -> tuple[str, ...]:
    """A destination inside the source (seed 002: raw at the bucket root, results/ below it)
    is never listed as input."""
    if ws.dest.url.startswith(src.url.rstrip("/") + "/"):
        return (ws.dest.url,)
    return ()


def _check_remote_dest(ws: Workspace, src: Storage, state: str | None) -> None:
    if ws.dest.url.rstrip("/") == src.url.rstrip("/"):
        raise UsageError(
            f"--dest {ws.dest.url} is the source folder itself: results would mix with raw files; "
            "use a subfolder such as results/"
        )
    if ws.dest.is_s3:
        ws.dest.require_root("destination")  # a missing bucket or no access: fail before any work
    if not ws.dest.local and state is None:
        # Say where the catalog is: it decides what the next run thinks is new.
        log.info(
            "state: %s (local to this machine; pass --state postgresql://... to share it between machines)",
            ws.state,
        )


def _days_with_files(pipe: Pipeline, src: Storage, listed: list[FileVersion], days: list[str]) -> set[str]:
    rels = [_relative(src, f.uri) for f in listed]
    out = set()
    for d in days:
        folder = dt.date.fromisoformat(d).strftime(pipe.layout).strip("/") + "/"
        if any(r.startswith(folder) for r in rels):
            out.add(d)
    return out


def _relative(src: Storage, uri: str) -> str:
    base = src.url.rstrip("/") + "/"
    rel = uri[len(base) :] if uri.startswith(base) else Path(uri).name
    return rel.replace(":", "_")


def _stage_one(
    eng: Any,
    catalog: Catalog,
    src: Storage,
    ws: Workspace,
    pipe: Pipeline,
    f: FileVersion,
    run_id: int,
    report: RunReport,
    emit: Emitter,
    fetcher: Prefetcher | None = None,
) -> None:
    rel = _relative(src, f.uri)
    qroot = ws.quarantine_root / pipe.name
    rejected: FileRejected | None = None
    failure: Exception | None = None
    try:
        try:
            local = fetcher.take(f) if fetcher else src.local_copy(f.uri, ws.work_dir / "spool")
            with local as path:
                stager = stage_jsonl if pipe.input_format == "jsonl" else stage_csv
                staged: Staged = stager(
                    eng, path, f.uri, f.version, pipe, ws.staged_root(pipe.name), qroot, rel
                )
            # A remote destination gets the rejected rows too, before the catalog commits.
            staged.quarantine = keep_quarantine(ws.dest, ws.work_dir, staged.quarantine)
        except FileRejected as exc:
            rejected = exc
            q = keep_quarantine(
                ws.dest, ws.work_dir, whole_file_quarantine(qroot, rel, f.uri, f"file rejected: {exc}", "")
            )
    except Exception as exc:  # unreadable now, or its quarantine not kept: retried next run
        rejected, failure = None, exc
    if rejected is not None:
        exc = rejected
        faults.point("stage.before_commit")
        old = catalog.record_file_problem(
            pipe.name, f.uri, f.size, f.version, "rejected", str(exc), run_id, q
        )
        _remove_parts(old)
        with _REPORT_LOCK:
            report.files_rejected.append({"uri": f.uri, "reason": str(exc)})
            report.quarantine.append(q)
        emit.emit(
            "file_rejected",
            f"rejected {f.uri}: {exc}",
            level=logging.ERROR,
            phase="stage",
            uri=f.uri,
            error=str(exc),
        )
        return
    if failure is not None:
        exc = failure
        msg = first_line(exc)
        catalog.record_file_problem(pipe.name, f.uri, f.size, f.version, "failed", msg, run_id)
        with _REPORT_LOCK:
            report.files_failed.append({"uri": f.uri, "error": msg})
        emit.emit(
            "file_failed", f"failed {f.uri}: {msg}", level=logging.ERROR, phase="stage", uri=f.uri, error=msg
        )
        return
    counts = dict(
        rows_read=staged.rows_read, rows_valid=staged.rows_valid, rows_rejected=staged.rows_rejected
    )
    faults.point("stage.before_commit")
    old = catalog.record_staged(
        pipe.name, f.uri, f.size, f.version, counts, staged.parts, staged.quarantine, run_id
    )
    faults.point("stage.committed")
    _remove_parts(old)
    with _REPORT_LOCK:
        report.files_staged += 1
        report.rows_read += staged.rows_read
        report.rows_valid += staged.rows_valid
        report.rows_rejected += staged.rows_rejected
        if staged.quarantine:
            report.quarantine.append(staged.quarantine)
    emit.emit(
        "file_staged",
        f"staged {f.uri}: {staged.rows_read:,} rows, {staged.rows_rejected:,} rejected",
        phase="stage",
        uri=f.uri,
        counts=counts,
    )


def _remove_parts(globs: list[str]) -> None:
    for g in globs:
        shutil.rmtree(Path(g).parent, ignore_errors=True)


def _collect_garbage(catalog: Catalog, ws: Workspace, pipe: Pipeline) -> None:
    """Staged folders no catalog row points at: left by a run that died before its commit."""
    root = ws.staged_root(pipe.name)
    if not root.exists():
        return
    live = {Path(p.path).parent.parent.name for parts in catalog.parts(pipe.name).values() for p in parts}
    for d in root.iterdir():
        if d.is_dir() and d.name not in live:
            faults.point("gc.remove")
            shutil.rmtree(d, ignore_errors=True)


def stream(
    pipeline: str | Pipeline = "weblogs",
    *,
    dest: str,
    follow: str | None = None,
    batch_size: int = 100,
    max_delay: float = 1.0,
    stop_at_eof: bool = False,
    output_format: str | None = None,
    publish_interval: float = 5.0,
    work_dir: str | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> Any:
    """Commit JSON lines from stdin (or the file `follow`, from its checkpoint) into `dest`, one
    micro-batch of `batch_size` lines (or `max_delay` seconds) per transaction, until the input
    ends or SIGINT/SIGTERM. Returns a StreamReport (see streaming/runner.py)."""
    from .streaming.runner import progress_stream, run_stream

    return run_stream(
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
        progress=progress_stream(progress),
    )


def status(
    pipeline: str | Pipeline,
    *,
    dest: str,
    state: str | None = None,
    work_dir: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Days built, dirty and failed; files staged, rejected and failed; recent runs."""
    pipe = resolve(pipeline)
    ws = open_workspace(dest, state, work_dir, storage_options)
    catalog = Catalog(ws.state)
    parts = catalog.parts(pipe.name)
    built = catalog.partitions(pipe.name)
    dirty = build_mod.dirty_days(pipe, parts, built, inputs_only=True)
    files = catalog.files(pipe.name)
    days = []
    for d in sorted(set(parts) | set(built)):
        row = built.get(d) or {}
        state_name = "failed" if row.get("status") == "failed" else ("dirty" if d in dirty else "built")
        days.append(
            {
                "day": d,
                "status": state_name,
                "rows_in": row.get("rows_in"),
                "rows_unique": row.get("rows_unique"),
                "duplicates": row.get("duplicates"),
                "rows_out": row.get("rows_out"),
                "built_at": str(row.get("built_at") or ""),
                "error": row.get("error") if state_name == "failed" else None,
            }
        )
    out = {
        "pipeline": pipe.name,
        "state": redact_url(ws.state),
        # Who runs this pipeline on this state right now (from the run lock), if anyone.
        "running": _running(catalog, pipe.name),
        "days": days,
        "files": {
            "staged": sum(1 for f in files.values() if f["status"] == "staged"),
            "rejected": [
                {"uri": u, "reason": f["error"]} for u, f in files.items() if f["status"] == "rejected"
            ],
            "failed": [{"uri": u, "error": f["error"]} for u, f in files.items() if f["status"] == "failed"],
        },
        # Every file version the catalog holds, with the event days its rows went to.
        "processed": _processed_files(files, parts),
        "runs": [
            {
                "id": r["id"],
                "status": r["status"],
                "started_at": str(r["started_at"]),
                "finished_at": str(r["finished_at"] or ""),
                **_run_counts(r.get("report")),
            }
            for r in catalog.runs(pipe.name)
        ],
    }
    catalog.close()
    return out


def _running(catalog: Catalog, pipeline: str) -> dict[str, Any] | None:
    from .catalog.lock import holder, lock_name

    row = holder(catalog, lock_name(pipeline))
    if row is None:
        return None
    return {k: (str(v) if isinstance(v, dt.datetime) else v) for k, v in row.items() if k != "name"}


def _run_counts(report: dict[str, Any] | None) -> dict[str, Any]:
    """The numbers of a stored run report that say what the run did."""
    r = report or {}
    return {
        "seconds": r.get("seconds"),
        "files_staged": r.get("files_staged", 0),
        "files_rejected": len(r.get("files_rejected") or []),
        "files_failed": len(r.get("files_failed") or []),
        "days_built": len(r.get("partitions_built") or []),
        "days_failed": len(r.get("partitions_failed") or []),
        "rows_read": r.get("rows_read", 0),
        "rows_rejected": r.get("rows_rejected", 0),
        "duplicates": r.get("duplicates", 0),
        "rows_out": r.get("rows_out", 0),
    }


def _processed_files(files: dict[str, dict[str, Any]], parts: dict[str, list[Any]]) -> list[dict[str, Any]]:
    days: dict[int, list[str]] = {}
    for day, rows in parts.items():
        for p in rows:
            days.setdefault(p.file_id, []).append(day)
    return [
        {
            "uri": uri,
            "status": f["status"],
            "rows_read": f["rows_read"],
            "rows_rejected": f["rows_rejected"],
            "days": sorted(days.get(f["id"], [])),
            "staged_at": str(f["staged_at"] or ""),
        }
        for uri, f in sorted(files.items())
    ]


__all__ = ["run", "stream", "status", "open_workspace", "Workspace", "is_local"]
