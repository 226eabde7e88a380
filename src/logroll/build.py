"""Dirty event days: which ones, and rebuilding one (dedupe, transform, publish)."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import faults
from .catalog.store import Catalog, PartRow
from .engines.base import Engine
from .pipelines.base import Pipeline
from .publish import publish
from .storage.files import Storage


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
) -> DayResult:
    import datetime as dt

    tmp = tmp_root / day
    try:
        outcome = engine.build_day(day, [p.path for p in parts], pipeline, tmp)
        faults.point("build.computed")
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
        counts = dict(
            rows_in=outcome.rows_in,
            rows_unique=outcome.rows_unique,
            duplicates=outcome.rows_in - outcome.rows_unique,
            rows_out=rows_out,
        )
        # The catalog commits only once every output is in place.
        catalog.record_built(pipeline.name, day, fingerprint(pipeline, parts), counts, outputs, run_id)
        faults.point("build.recorded")
        return DayResult(
            day,
            outcome.rows_in,
            outcome.rows_unique,
            outcome.rows_in - outcome.rows_unique,
            rows_out,
            outputs,
            written,
            outcome.warnings,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
