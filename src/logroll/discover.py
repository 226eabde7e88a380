"""Which source files are new or changed since the catalog last saw them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .dates import day_range
from .pipelines.base import Pipeline

if TYPE_CHECKING:
    from .storage.files import FileVersion, Storage


def day_folders(pipeline: Pipeline, start: dt.date, end: dt.date, lateness: int) -> list[str]:
    """Folders that may hold rows for days start..end: rows can arrive up to `lateness` days late
    (in a later folder) or early (in an earlier one)."""
    lo = start - dt.timedelta(days=lateness)
    hi = end + dt.timedelta(days=lateness)
    return sorted({d.strftime(pipeline.layout) for d in day_range(lo, hi)})


def list_sources(
    storage: Storage, pipeline: Pipeline, folders: Iterable[str] | None, exclude: tuple[str, ...] = ()
) -> list[FileVersion]:
    """Input files under the day `folders` (all of them when None), minus those under `exclude`."""
    if folders is None:
        return storage.list_files("", pipeline.suffixes, exclude)
    seen: dict[str, FileVersion] = {}
    for folder in folders:
        for f in storage.list_files(folder, pipeline.suffixes, exclude):
            seen[f.uri] = f
    return sorted(seen.values(), key=lambda f: f.uri)


def to_stage(listed: list[FileVersion], known: dict[str, dict[str, Any]], force: bool) -> list[FileVersion]:
    """New versions, plus failed ones (retried every run). Staged or rejected versions are done."""
    out = []
    for f in listed:
        row = known.get(f.uri)
        if force or row is None or row["version"] != f.version or row["status"] == "failed":
            out.append(f)
    return out


def days_with_files(pipeline: Pipeline, rels: list[str], days: list[str]) -> set[str]:
    """The `days` whose date folder holds one of the files `rels` (paths under the source)."""
    out = set()
    for d in days:
        folder = dt.date.fromisoformat(d).strftime(pipeline.layout).strip("/") + "/"
        if any(r.startswith(folder) for r in rels):
            out.add(d)
    return out
