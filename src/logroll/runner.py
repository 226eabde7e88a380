"""One batch run under the pipeline's lock: discover -> stage -> build -> publish.

`BatchRun(...).run()` lists the source, stages every new or changed file version, builds the
requested and the dirty event days (each through `build.build_day`, which publishes), removes
what no catalog row points at, and records the run with its report. Files and days go through
`--parallel` engines at once; one file or one day failing never stops the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import build as build_mod
from . import discover, faults
from .dates import compact_days
from .engines.base import Engine
from .engines.pool import EnginePool
from .errors import FileRejected, LeaseLost, LogrollError, NoInputError, StageFailed, first_line
from .events import Emitter, EventCallback
from .pipelines import Pipeline
from .publish import keep_quarantine
from .report import RunReport
from .stage.csv import CsvFile, stage_csv_file
from .stage.jsonl import stage_jsonl
from .stage.quarantine import quarantine_name, whole_file_quarantine
from .stage.staged import Staged
from .storage.files import FileVersion, Storage, join
from .storage.prefetch import Prefetcher
from .units import DEFAULT_MEMORY_LIMIT
from .workspace import StateSession, Workspace, commit_interval

log = logging.getLogger("logroll")


@dataclass(frozen=True)
class RunOptions:
    """What one batch run is asked to do (api.run checks and fills it in)."""

    start: dt.date | None = None  # with end: the folders to list; None: the whole source
    end: dt.date | None = None
    requested: tuple[str, ...] | None = None  # days to build (ISO); None: catch up on every dirty day
    lateness: int = 1  # days a row may arrive late (or early) in another day's folder
    force: bool = False
    prune_missing: bool = False  # retract the rows of files gone from the source
    engine: str = "duckdb"
    memory_limit: str = DEFAULT_MEMORY_LIMIT["duckdb"]
    threads: int | None = None
    parallel: int = 1
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    follow_symlinks: bool = False  # read what links under the source point to outside it
    on_event: EventCallback | None = None
    started: float = field(default_factory=time.monotonic)
    # Stage what is new and build nothing: no output is written. The days new rows landed in
    # get their kept unique rows brought up to date, so that their build later is cheap.
    stage_only: bool = False


class BatchRun:
    """One run of `pipe` from `src` into the workspace `ws`, while `session` holds its state."""

    def __init__(self, pipe: Pipeline, src: Storage, ws: Workspace, session: StateSession, opts: RunOptions):
        self.pipe, self.src, self.ws, self.opts = pipe, src, ws, opts
        self.session, self.catalog = session, session.catalog
        self.report = RunReport(pipeline=pipe.name, engine=opts.engine, state=ws.shown_state)
        self.lock = threading.Lock()  # parallel workers add to one report
        self.commit_lock = threading.Lock()  # one commit at a time
        self.committed = time.monotonic()
        self.run_id = 0
        self.unread: list[str] = []  # files and folders that could not be read: their days wait
        self.emit = Emitter(pipe.name, 0, opts.on_event)
        self.staged_days: set[str] = set()  # days this run staged rows for

    # ---- the run -------------------------------------------------------------------------------
    def run(self) -> RunReport:
        pipe, catalog, opts = self.pipe, self.catalog, self.opts
        self.report.run_id = self.run_id = run_id = catalog.start_run(pipe.name)
        self.emit = Emitter(pipe.name, run_id, opts.on_event)
        # Runs killed before they could say so: marked crashed, their scratch files removed.
        for dead in catalog.mark_crashed(pipe.name, run_id):
            shutil.rmtree(self.ws.work_dir / "tmp" / f"run-{dead}", ignore_errors=True)
        faults.point("run.started")
        pool = EnginePool(
            opts.engine,
            self.ws.work_dir,
            memory_limit=opts.memory_limit,
            threads=opts.threads,
            size=opts.parallel,
            options=dict(opts.engine_options),
        )
        try:
            listed = self.stage_new(pool)
            self.commit()
            if opts.stage_only:
                self.fold_staged(pool)
            else:
                self.build_dirty(pool, listed)
        except BaseException as exc:
            catalog.finish_run(run_id, "crashed", self.report.to_dict())
            if not isinstance(exc, LeaseLost):  # say so in the shared state too, if it is still ours
                with contextlib.suppress(Exception):
                    self.session.commit()
            raise
        finally:
            pool.close()
        report = self.finish()
        faults.point("run.before_gc")
        try:
            states = self.catalog.day_states(self.pipe.name)
            self.session.collect_garbage(
                build_mod.state_garbage(self.ws.day_state_root(self.pipe.name), states)
            )
        except LogrollError as exc:  # the run is done and committed; leftovers wait for the next one
            log.warning("%s: staged parts not cleaned up: %s", self.pipe.name, first_line(exc))
        return report

    def commit(self, every: float = 0.0) -> None:
        """Make the catalog's rows durable where the state lives (at most once per `every` seconds)."""
        with self.commit_lock:
            if every and time.monotonic() - self.committed < every:
                return
            self.session.commit()
            self.committed = time.monotonic()

    def stage_new(self, pool: EnginePool) -> list[FileVersion]:
        """Discover and stage: every new or changed file version under the days' folders."""
        pipe, opts, report = self.pipe, self.opts, self.report
        folders = (
            # an arrival-day pipeline's rows are in their own day's folder: never late or early
            discover.day_folders(pipe, opts.start, opts.end, 0 if pipe.arrival else opts.lateness)
            if opts.start and opts.end
            else None
        )
        listed, unreadable = discover.list_sources(
            self.src, pipe, folders, self._nested_dest(), opts.follow_symlinks
        )
        for u in unreadable:  # never taken for an empty folder: the run fails, its days wait
            self._unlisted(u.uri, f"cannot list it: {u.error}")
        # A version staged under another declaration (columns, types, timestamp column...) is
        # staged again: its parts would not be what this declaration makes of it.
        signature = discover.version_signature(pipe)
        listed = [replace(f, version=f"{f.version}~{signature}") for f in listed]
        report.files_seen = len(listed)
        known = self.catalog.files(pipe.name)
        if opts.prune_missing:
            self.prune(discover.missing(listed, known, self.src, folders))
        todo = discover.to_stage(listed, known, opts.force)
        self.emit.phase(
            "stage", len(todo), f"{pipe.name}: run {self.run_id}: {len(todo)} of {len(listed)} files to stage"
        )
        # Remote files download a few ahead of the workers that stage them.
        with Prefetcher(self.src, todo, self.ws.work_dir / "spool") as fetcher:
            pool.each(todo, lambda eng, f: self.stage_file(eng, f, fetcher))
        # Files are staged in any order by parallel workers; the report lists them in one.
        report.files_rejected.sort(key=lambda r: r["uri"])
        report.files_failed.sort(key=lambda r: r["uri"])
        report.quarantine.sort()
        return listed

    def prune(self, gone: list[str]) -> None:
        """Retract the rows of source files that were deleted: their days rebuild without them."""
        for uri in gone:
            self._remove_parts(self.catalog.forget_file(self.pipe.name, uri, self.run_id))
            self.report.files_forgotten.append(uri)
            log.info("%s: %s is gone from the source: its rows are retracted", self.pipe.name, uri)

    def drop_empty_days(self, all_parts: dict[str, Any], built: dict[str, dict[str, Any]]) -> None:
        """A built day none of whose files is left (all retracted): its outputs go, then the day."""
        for day in sorted(set(built) - set(all_parts)):
            if self.ws.dest.tables:
                log.warning("%s: day %s has no input left; its table rows are kept", self.pipe.name, day)
                continue
            for rel in built[day]["outputs"]:
                self.ws.dest.remove(rel)
            self.catalog.drop_partition(self.pipe.name, day)
            del built[day]
            self.report.partitions_dropped.append(day)

    def build_dirty(self, pool: EnginePool, listed: list[FileVersion]) -> None:
        """Build (and publish) the requested days and every day new input made dirty."""
        pipe, report, catalog = self.pipe, self.report, self.catalog
        all_parts = catalog.parts(pipe.name)
        built = catalog.partitions(pipe.name)
        self.drop_empty_days(all_parts, built)
        requested = list(self.opts.requested) if self.opts.requested is not None else None
        if requested:
            listed_days = discover.days_with_files(pipe, [self._relative(f.uri) for f in listed], requested)
            report.days_missing = [d for d in requested if d not in all_parts and d not in listed_days]
            requested = [d for d in requested if d not in report.days_missing]
            for d in requested:  # an output deleted by hand is rebuilt
                row = built.get(d)
                if row and any(not self.ws.dest.exists(rel) for rel in row["outputs"]):
                    row["fingerprint"] = None
        targets = build_mod.days_to_build(pipe, all_parts, built, requested, self.opts.force)
        targets = self._hold_back(targets)
        tmp_root = self.ws.work_dir / "tmp" / f"run-{self.run_id}"
        self.emit.phase(
            "build", len(targets), f"{pipe.name}: run {self.run_id}: {len(targets)} days to build"
        )
        states = build_mod.DayStateOptions(self.ws, catalog.day_states(pipe.name), fresh=self.opts.force)
        pool.each(
            targets,
            lambda eng, day: self.build_one(
                eng, day, (all_parts.get(day, []), states), built.get(day), tmp_root
            ),
        )
        # Workers finish in any order; the report lists days in order either way.
        report.partitions_built.sort()
        report.partitions.sort(key=lambda p: p["day"])
        report.partitions_failed.sort(key=lambda p: p["day"])
        report.outputs.sort()
        report.outputs_written.sort()
        shutil.rmtree(tmp_root, ignore_errors=True)

    def fold_staged(self, pool: EnginePool) -> None:
        """--stage-only: no day is built; the days this run staged rows for get their kept
        unique rows brought up to date (build.fold_day), so that their build later is cheap."""
        pipe, catalog, days = self.pipe, self.catalog, sorted(self.staged_days)
        states = build_mod.DayStateOptions(self.ws, catalog.day_states(pipe.name))
        fold = build_mod.FoldRun(catalog, pipe, self.run_id, states, self.emit, self.session.local_parts)
        parts = catalog.parts(pipe.name, days)
        pool.each(days, lambda eng, day: build_mod.fold_day(eng, day, fold, parts.get(day, [])))

    def finish(self) -> RunReport:
        report = self.report
        failed = (
            report.files_rejected or report.files_failed or report.partitions_failed or report.days_missing
        )
        report.status = "failed" if failed else "ok"
        report.seconds = round(time.monotonic() - self.opts.started, 3)
        faults.point("run.before_finish")
        self.catalog.finish_run(self.run_id, report.status, report.to_dict())
        self.commit()
        self.emit.emit(
            "run_finished",
            f"{self.pipe.name}: run {self.run_id} {report.status} in {report.seconds:.1f}s",
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

    # ---- one file ----------------------------------------------------------------------------
    def stage_file(self, eng: Engine, f: FileVersion, fetcher: Prefetcher | None = None) -> None:
        """Stage one file version and record it; a rejected or unreadable file is recorded as such."""
        pipe, ws = self.pipe, self.ws
        rel = self._relative(f.uri)
        qroot = ws.quarantine_root / pipe.name
        qname = quarantine_name(rel, f.uri, f.version)
        rejected: FileRejected | None = None
        try:
            try:
                local = fetcher.take(f) if fetcher else self.src.local_copy(f.uri, ws.work_dir / "spool")
                with local as path:
                    staged: Staged
                    if pipe.input_format == "jsonl":
                        staged = stage_jsonl(
                            eng, path, f.uri, f.version, pipe, ws.staged_root(pipe.name), qroot, qname
                        )
                    else:
                        job = CsvFile(
                            f.uri, f.version, ws.staged_root(pipe.name), qroot, qname, self._arrival(rel)
                        )
                        staged = stage_csv_file(eng, path, pipe, job)
                self.session.keep_parts(staged.part_dir)
                staged.parts = {d: (n, ws.stored_part(p)) for d, (n, p) in staged.parts.items()}
                # A remote destination gets the rejected rows too, before the catalog commits.
                staged.quarantine = keep_quarantine(ws.dest, ws.work_dir, staged.quarantine)
            except FileRejected as exc:
                rejected = exc
                reason = f"file rejected: {exc}"
                q = keep_quarantine(
                    ws.dest, ws.work_dir, whole_file_quarantine(qroot, qname, f.uri, reason, "")
                )
        except Exception as exc:  # unreadable now, or its quarantine not kept: retried next run
            self._failed(f, exc)
            return
        if rejected is not None:
            self._rejected(f, rejected, q)
        else:
            self._staged(f, staged)

    def _staged(self, f: FileVersion, staged: Staged) -> None:
        counts = staged.counts()
        faults.point("stage.before_commit")
        old = self.catalog.record_staged(
            self.pipe.name, f.uri, f.size, f.version, counts, staged.parts, staged.quarantine, self.run_id
        )
        faults.point("stage.committed")
        self._remove_parts(old)
        report = self.report
        with self.lock:
            self.staged_days.update(staged.parts)
            report.files_staged += 1
            report.rows_read += staged.rows_read
            report.rows_valid += staged.rows_valid
            report.rows_rejected += staged.rows_rejected
            if staged.quarantine:
                report.quarantine.append(staged.quarantine)
        self.emit.emit(
            "file_staged",
            f"staged {f.uri}: {staged.rows_read:,} rows, {staged.rows_rejected:,} rejected",
            phase="stage",
            uri=f.uri,
            counts=counts,
        )

    def _rejected(self, f: FileVersion, exc: FileRejected, q: str | None) -> None:
        faults.point("stage.before_commit")
        old = self.catalog.record_file_problem(
            self.pipe.name, f.uri, f.size, f.version, "rejected", str(exc), self.run_id, q
        )
        self._remove_parts(old)
        with self.lock:
            self.report.files_rejected.append({"uri": f.uri, "reason": str(exc)})
            self.report.quarantine.append(q)
        self.emit.emit(
            "file_rejected",
            f"rejected {f.uri}: {exc}",
            level=logging.ERROR,
            phase="stage",
            uri=f.uri,
            error=str(exc),
        )

    def _failed(self, f: FileVersion, exc: Exception) -> None:
        msg = first_line(exc)
        counts = exc.counts if isinstance(exc, StageFailed) else None
        self.catalog.record_file_problem(
            self.pipe.name, f.uri, f.size, f.version, "failed", msg, self.run_id, counts=counts
        )
        self._unlisted(f.uri, msg)

    def _unlisted(self, uri: str, msg: str) -> None:
        """A file or folder this run could not read: reported failed, and its days held back."""
        with self.lock:
            self.report.files_failed.append({"uri": uri, "error": msg})
            self.unread.append(uri)
        self.emit.emit(
            "file_failed", f"failed {uri}: {msg}", level=logging.ERROR, phase="stage", uri=uri, error=msg
        )

    def _hold_back(self, targets: list[str]) -> list[str]:
        """The days to build, less those an unread file or folder may hold rows for: each is
        recorded failed (dirty until a run reads all its input) instead of published incomplete."""
        if not self.unread:
            return targets
        held = discover.days_held(self.pipe, [self._relative(u) for u in self.unread], self.opts.lateness)
        out = []
        for day in targets:
            if held is not None and day not in held:
                out.append(day)
                continue
            error = f"not built: its input {self.unread[0]} could not be read (see the failed files); run again once it can"
            self._day_failed(day, error, error)
        return out

    def _day_failed(self, day: str, error: str, stored: str) -> None:
        """A day not built: `stored` (the whole message) in the catalog, `error` (one line) in
        the report and the log."""
        self.catalog.record_partition_failed(self.pipe.name, day, stored, self.run_id)
        with self.lock:
            self.report.partitions_failed.append({"day": day, "error": error})
        self.emit.emit(
            "day_failed",
            f"day {day} failed: {error}",
            level=logging.ERROR,
            phase="build",
            day=day,
            error=error,
        )

    # ---- one day -----------------------------------------------------------------------------
    def build_one(
        self,
        eng: Engine,
        day: str,
        inputs: tuple[list[Any], build_mod.DayStateOptions],
        built_row: dict[str, Any] | None,
        tmp_root: Path,
    ) -> None:
        """Build and publish one day; a failure is recorded on the day and the others go on."""
        pipe, report = self.pipe, self.report
        parts, states = inputs
        try:
            local = self.session.local_parts(parts)
            res = build_mod.build_day(
                eng,
                self.catalog,
                self.ws.dest,
                pipe,
                day,
                parts=local,
                built_row=built_row,
                tmp_root=tmp_root,
                run_id=self.run_id,
                states=states,
            )
        except Exception as exc:  # one bad day never stops the others
            self._day_failed(day, first_line(exc), str(exc))
            return
        counts = {
            "rows_in": res.rows_in,
            "rows_unique": res.rows_unique,
            "duplicates": res.duplicates,
            "rows_out": res.rows_out,
        }
        dest_url = self.ws.dest.url
        with self.lock:
            report.partitions_built.append(day)
            report.partitions.append({"day": day, **counts, "build": res.mode})
            report.rows_in += res.rows_in
            report.rows_unique += res.rows_unique
            report.duplicates += res.duplicates
            report.rows_out += res.rows_out
            report.warnings.extend(res.warnings)
            for rel in res.outputs:
                report.outputs.append(join(dest_url, rel))
            report.outputs_written.extend(join(dest_url, rel) for rel in res.written)
        self.commit(every=commit_interval())
        self.emit.emit(
            "day_built",
            f"built {day}{_HOW.get(res.mode, '')}: {res.rows_in:,} rows in, {res.rows_unique:,} unique, "
            f"{res.rows_out:,} out",
            phase="build",
            day=day,
            counts=counts,
        )

    # ---- helpers -----------------------------------------------------------------------------
    def _remove_parts(self, stored: list[str]) -> None:
        """The local folders of parts a commit replaced (their remote copies: garbage collection)."""
        for g in stored:
            shutil.rmtree(Path(self.ws.part_path(g)).parent, ignore_errors=True)

    def _nested_dest(self) -> tuple[str, ...]:
        """A destination inside the source (seed 002: raw at the bucket root, results/ below it)
        is never listed as input."""
        if self.ws.dest.url.startswith(self.src.url.rstrip("/") + "/"):
            return (self.ws.dest.url,)
        return ()

    def _relative(self, uri: str) -> str:
        base = self.src.url.rstrip("/") + "/"
        return uri[len(base) :] if uri.startswith(base) else Path(uri).name

    def _arrival(self, rel: str) -> str | None:
        """The day of the date folder a file arrived in (for `event_time: arrival`)."""
        if not self.pipe.arrival:
            return None
        day = discover.arrival_day(self.pipe, rel)
        if day is None:
            raise FileRejected(
                f"not under a date folder named like {self.pipe.layout!r}: its arrival day is unknown"
            )
        return day.isoformat()


_HOW = {"incremental": " (new rows only)", "outputs": " (from its kept rows)"}


def check_missing(report: RunReport, pipe: Pipeline, src: Storage) -> None:
    """A requested day with no input files and nothing staged for it is an error, not a no-op."""
    if not report.days_missing or report.files_staged or report.partitions_built:
        return
    missing = report.days_missing
    folders = [join(src.url, dt.date.fromisoformat(d).strftime(pipe.layout)) for d in missing[:3]]
    where = ", ".join(folders) + (f" and {len(missing) - 3} more folders" if len(missing) > 3 else "")
    days = compact_days(missing) if len(missing) > 3 else ", ".join(missing)
    raise NoInputError(
        f"no input files for {days} (looked in {where}) and nothing staged for "
        f"{'it' if len(missing) == 1 else 'them'}: check the date and --source"
    )
