"""Dirty event days: which ones, and rebuilding one (dedupe, transform, publish).

A day built by an engine that keeps day states (DuckDB) also keeps its unique rows, so that the
next file to land for it costs a probe of its own rows instead of a whole new dedupe
(engines/duckdb_build.py). The state is trusted only when it reflects a subset of the day's
current part versions under the same declaration; anything else (a file replaced or retracted,
another declaration, a missing file, --force, many new rows) rebuilds the day whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import faults
from .engines.base import DayState, Engine, StateJob
from .engines.projection import carried_columns, needed_columns
from .errors import first_line
from .pipelines.base import Pipeline
from .publish import publish
from .storage.files import Storage

if TYPE_CHECKING:  # SQLAlchemy takes a fifth of a second to import; a run with nothing to do needs none
    from .catalog.store import Catalog, PartRow
    from .events import Emitter


class StateHome(Protocol):
    """What day states need of workspace.Workspace (which imports overview, which imports this)."""

    work_dir: Path

    def day_state_root(self, pipeline: str) -> Path: ...
    def part_path(self, stored: str) -> str: ...
    def stored_part(self, path: str) -> str: ...


# What a day's state files hold; a change of it makes every state stale.
STATE_VERSION = 1
# More new rows than this share of the day's: rebuilding the day whole costs less than the probe.
MAX_NEW_SHARE = 0.25


def fingerprint(pipeline: Pipeline, parts: list[PartRow]) -> str:
    """What a day's outputs are a function of: `<pipeline signature>-<hash of the exact parts>`.

    The two halves are kept apart so that "new input arrived" (the parts half) can be told from
    "built with other parameters" (e.g. another --initials), which must not mark every day dirty.
    """
    h = hashlib.sha256()
    for p in sorted(parts, key=lambda p: (p.file_id, p.version)):
        h.update(f"|{p.file_id}:{p.version}:{p.rows}".encode())
    return f"{pipeline.signature()}-{h.hexdigest()}"


def _inputs_half(fp: str | None) -> str | None:
    return fp.rsplit("-", 1)[-1] if fp else None


def dirty_days(
    pipeline: Pipeline,
    parts: dict[str, list[PartRow]],
    built: dict[str, dict[str, Any]],
    inputs_only: bool = False,
) -> set[str]:
    """Days whose current inputs (and, unless `inputs_only`, pipeline) differ from what their
    outputs were built from."""
    days = set(parts) | set(built)
    out = set()
    for d in days:
        current, recorded = fingerprint(pipeline, parts.get(d, [])), (built.get(d) or {}).get("fingerprint")
        if inputs_only:
            current, recorded = _inputs_half(current), _inputs_half(recorded)
        if current != recorded:
            out.add(d)
    return out


def days_to_build(
    pipeline: Pipeline,
    parts: dict[str, list[PartRow]],
    built: dict[str, dict[str, Any]],
    requested: list[str] | None,
    force: bool,
) -> list[str]:
    dirty = dirty_days(pipeline, parts, built)
    if requested is None:
        # Catch-up: every dirty day, except days that never had rows and were never built.
        return sorted(d for d in dirty if d in parts or d in built)
    chosen = {d for d in requested if force or d in dirty or not _outputs_present(built.get(d))}
    # Days built before that newly staged files made dirty are rebuilt too (late data); a day
    # built with other parameters is left as it is unless it was asked for.
    chosen |= {d for d in dirty_days(pipeline, parts, built, inputs_only=True) if d in built}
    return sorted(chosen)


def _outputs_present(row: dict[str, Any] | None) -> bool:
    return bool(row and row.get("status") == "built" and row.get("outputs"))


@dataclass
class DayResult:
    day: str
    rows_in: int
    rows_unique: int
    duplicates: int
    rows_out: int
    outputs: dict[str, str]  # relative path -> sha256
    written: list[str]
    warnings: list[str] = field(default_factory=list)
    mode: str = "full"  # full | incremental | outputs (engines.base.BuildOutcome.mode)


@dataclass(frozen=True)
class DayStateOptions:
    """Where a run keeps day states, and what it knows of them (runner.py)."""

    ws: StateHome
    rows: dict[str, dict[str, Any]]  # day -> the catalog's state row (Catalog.day_states)
    fresh: bool = False  # --force: never build from a kept state


def build_day(
    engine: Engine,
    catalog: Catalog,
    dest: Storage,
    pipeline: Pipeline,
    day: str,
    *,
    parts: list[PartRow],
    built_row: dict[str, Any] | None,
    tmp_root: Path,
    run_id: int,
    states: DayStateOptions | None = None,
) -> DayResult:
    tmp = tmp_root / day
    job = plan_state(engine, pipeline, day, parts, states, run_id) if states else None
    try:
        outcome = engine.build_day(day, [p.path for p in parts], pipeline, tmp, job)
        faults.point("build.computed")
        outputs, written, rows_out = _publish_all(dest, pipeline, day, outcome, built_row)
        counts = dict(
            rows_in=outcome.rows_in,
            rows_unique=outcome.rows_unique,
            duplicates=outcome.rows_in - outcome.rows_unique,
            rows_out=rows_out,
        )
        state = state_row(pipeline, parts, outcome, states.ws) if states else None
        # The catalog commits only once every output is in place, with the day's state.
        catalog.record_built(pipeline.name, day, fingerprint(pipeline, parts), counts, outputs, run_id, state)
        faults.point("build.recorded")
        if states:
            remove_stale_state(states.ws, pipeline.name, day, state)
        return DayResult(
            day,
            outcome.rows_in,
            outcome.rows_unique,
            outcome.rows_in - outcome.rows_unique,
            rows_out,
            outputs,
            written,
            outcome.warnings,
            outcome.mode,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish_all(
    dest: Storage, pipeline: Pipeline, day: str, outcome: Any, built_row: dict[str, Any] | None
) -> tuple[dict[str, str], list[str], int]:
    """Every output of the day at its place: (relative path -> sha256, those written, rows)."""
    import datetime as dt

    recorded = (built_row or {}).get("outputs") or {}
    outputs: dict[str, str] = {}
    written: list[str] = []
    rows_out = 0
    date = dt.date.fromisoformat(day)
    for out in pipeline.outputs:
        local, rows = outcome.outputs[out.name]
        rel = out.render_path(date, pipeline.params)
        if dest.tables:  # a database: the output is a table (sinks/destination.py)
            rel, sha, did_write = dest.publish_output(out, date, local, recorded.get(f"{out.name}/{day}"))
        else:
            sha, did_write = publish(dest, local, rel, recorded.get(rel))
        faults.point("build.published")
        outputs[rel] = sha
        rows_out += rows
        if did_write:
            written.append(rel)
    if not dest.tables:
        # Outputs the day had under other parameters (--initials, an output path template):
        # removed before the catalog forgets them, so a crash here leaves them recorded and
        # the next build removes them.
        for old in sorted(set(recorded) - set(outputs)):
            dest.remove(old)
    return outputs, written, rows_out


@dataclass(frozen=True)
class FoldRun:
    """What folding the days a --stage-only run staged needs (see fold_day)."""

    catalog: Catalog
    pipeline: Pipeline
    run_id: int
    states: DayStateOptions
    emit: Emitter
    local: Callable[[list[PartRow]], list[PartRow]]  # the parts with local paths (StateSession.local_parts)


def fold_day(engine: Engine, day: str, run: FoldRun, parts: list[PartRow]) -> None:
    """Bring a day's state up to date with its parts and write no output (--stage-only): its
    next build then only recomputes the outputs. A failure is a warning: the day's build later
    redoes what this left undone."""
    try:
        how = _fold(engine, day, run, run.local(parts))
    except Exception as exc:
        error = first_line(exc)
        msg = f"{day}: kept rows not brought up to date: {error}"
        run.emit.emit("day_fold_failed", msg, level=logging.WARNING, day=day, error=error)
        return
    if how is not None:
        run.emit.emit("day_folded", f"{day}: kept rows brought up to date ({how})", day=day)


def _fold(engine: Engine, day: str, run: FoldRun, parts: list[PartRow]) -> str | None:
    """fold_day's work: how the state was brought up to date (full, incremental, outputs), or
    None when the day keeps no state."""
    pipeline, states, run_id = run.pipeline, run.states, run.run_id
    job = plan_state(engine, pipeline, day, parts, states, run_id, outputs=False)
    if job is None:
        return None
    tmp = states.ws.work_dir / "tmp" / f"run-{run_id}" / f"fold-{day}"
    try:
        outcome = engine.build_day(day, [p.path for p in parts], pipeline, tmp, job)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    state = state_row(pipeline, parts, outcome, states.ws)
    if state is None:
        return None
    run.catalog.record_day_state(pipeline.name, day, state, run_id)
    faults.point("state.recorded")
    remove_stale_state(states.ws, pipeline.name, day, state)
    return outcome.mode


# ---- day states -----------------------------------------------------------------------------
def state_signature(pipeline: Pipeline) -> str | None:
    """What a day's state is a function of besides its parts (the columns it keeps, the dedupe
    order), or None when the pipeline keeps none: no key, or columns that vary by file."""
    if not pipeline.key or pipeline.passthrough:
        return None
    body = {
        "version": STATE_VERSION,
        "columns": [[c.name, c.type, c.required] for c in pipeline.columns],
        "key": list(pipeline.key),
        "event_time": pipeline.event_time,
        "rows": needed_columns(pipeline),
        "carried": carried_columns(pipeline),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def plan_state(
    engine: Engine,
    pipeline: Pipeline,
    day: str,
    parts: list[PartRow],
    states: DayStateOptions,
    run_id: int,
    outputs: bool = True,
) -> StateJob | None:
    """The StateJob for one day's build: from its kept state when that state can be trusted,
    else from scratch; None when the day keeps no state."""
    signature = state_signature(pipeline)
    if signature is None or not engine.keeps_state or not parts:
        return None
    ws = states.ws
    folder = ws.day_state_root(pipeline.name) / day
    tag = f"{run_id}-{secrets.token_hex(4)}"
    row = states.rows.get(day)
    if states.fresh or row is None or row["signature"] != signature:
        return StateJob(folder, tag, outputs=outputs)
    files = tuple(ws.part_path(f) for f in row["files"])
    current = {p.file_id: (p.version, p.rows) for p in parts}
    kept = {int(f): (v, int(n)) for f, v, n in row["parts"]}
    new = [p for p in parts if kept.get(p.file_id) != (p.version, p.rows)]
    trusted = (
        all(current.get(f) == vn for f, vn in kept.items())  # nothing replaced or retracted
        and all(Path(f).is_file() for f in files)  # (another machine's cache, say)
        and sum(p.rows for p in new) <= MAX_NEW_SHARE * max(1, int(row["rows_in"]))
    )
    if not trusted:
        return StateJob(folder, tag, outputs=outputs)
    old = DayState(files, int(row["rows_unique"]))
    return StateJob(folder, tag, old=old, new_parts=tuple(p.path for p in new), outputs=outputs)


def state_row(pipeline: Pipeline, parts: list[PartRow], outcome: Any, ws: StateHome) -> dict[str, Any] | None:
    """The catalog's row for the state an engine returned (None: the day keeps none)."""
    state: DayState | None = outcome.state
    signature = state_signature(pipeline)
    if state is None or signature is None:
        return None
    return {
        "signature": signature,
        "files": [ws.stored_part(f) for f in state.files],
        "parts": [[p.file_id, p.version, p.rows] for p in parts],
        "rows_in": outcome.rows_in,
        "rows_unique": outcome.rows_unique,
    }


def remove_stale_state(ws: StateHome, pipeline: str, day: str, row: dict[str, Any] | None) -> None:
    """A day's state files other than those its committed row lists (call after the commit)."""
    folder = ws.day_state_root(pipeline) / day
    keep = {Path(f).name for f in (row or {}).get("files", [])}
    for f in sorted(folder.iterdir()) if folder.is_dir() else ():
        if f.name not in keep:
            faults.point("state.remove")
            f.unlink(missing_ok=True)
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)


def state_garbage(root: Path, rows: dict[str, dict[str, Any]]) -> list[Path]:
    """Files and folders under a pipeline's day states `root` that no committed state row lists:
    left by a run that died before its commit, or before it removed what its commit replaced."""
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        keep = {Path(f).name for f in (rows.get(folder.name) or {}).get("files", [])}
        out += [f for f in sorted(folder.iterdir()) if f.name not in keep] if folder.is_dir() else [folder]
    return out
