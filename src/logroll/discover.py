"""Which source files are new or changed since the catalog last saw them."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from .dates import day_range, folder_day, layout_regex
from .engines.projection import carried_columns
from .pipelines.base import Pipeline
from .storage.files import FileVersion, Storage, Unreadable


def day_folders(pipeline: Pipeline, start: dt.date, end: dt.date, lateness: int) -> list[str]:
    """Folders that may hold rows for days start..end: rows can arrive up to `lateness` days late
    (in a later folder) or early (in an earlier one)."""
    lo = start - dt.timedelta(days=lateness)
    hi = end + dt.timedelta(days=lateness)
    return sorted({d.strftime(pipeline.layout) for d in day_range(lo, hi)})


# Compressed input is read by suffix (stage/decode.py): `a.csv.gz` is a CSV file.
COMPRESSED_SUFFIXES = (".gz", ".zst", ".bz2")


def accepted_suffixes(pipeline: Pipeline) -> tuple[str, ...]:
    """The file suffixes a pipeline reads: its own, and each of them compressed."""
    return with_compressed(pipeline.suffixes)


def with_compressed(suffixes: Iterable[str]) -> tuple[str, ...]:
    """`suffixes`, then each of them compressed (".csv" -> ".csv", ".csv.gz", ...)."""
    plain = tuple(suffixes)
    return plain + tuple(s + c for s in plain for c in COMPRESSED_SUFFIXES if not s.endswith(c))


def arrival_day(pipeline: Pipeline, rel: str) -> dt.date | None:
    """The day of the date folder (named by the pipeline's layout) a relative path starts with.
    Anchored at the start, unlike dates.folder_day: an arrival day decides rows' event day."""
    depth = pipeline.layout.strip("/").count("/") + 1
    parts = rel.strip("/").split("/")
    if len(parts) <= depth:
        return None
    try:
        return dt.datetime.strptime("/".join(parts[:depth]), pipeline.layout.strip("/")).date()
    except ValueError:
        return None


def list_sources(
    storage: Storage,
    pipeline: Pipeline,
    folders: Iterable[str] | None,
    exclude: tuple[str, ...] = (),
    follow_symlinks: bool = False,
) -> tuple[list[FileVersion], list[Unreadable]]:
    """Input files under the day `folders` (all of them when None), minus those under `exclude`,
    and the folders that could not be listed."""
    follow = follow_symlinks or pipeline.follow_symlinks
    suffixes = accepted_suffixes(pipeline)
    if folders is None:
        return storage.scan("", suffixes, exclude, follow)
    seen: dict[str, FileVersion] = {}
    unreadable: list[Unreadable] = []
    for folder in folders:
        files, problems = storage.scan(folder, suffixes, exclude, follow)
        unreadable += problems
        for f in files:
            seen[f.uri] = f
    return sorted(seen.values(), key=lambda f: f.uri), unreadable


def days_held(pipeline: Pipeline, rel_paths: Iterable[str], lateness: int) -> set[str] | None:
    """Event days that files or folders at `rel_paths` (relative to the source) may hold rows for:
    their date folder's day, `lateness` days either side. None when a path names no day (a folder
    above the date folders): then it may hold rows for any day."""
    pattern = layout_regex(pipeline.layout)
    out: set[str] = set()
    for rel in rel_paths:
        day = folder_day(rel, pattern)
        if day is None:
            # A folder above the date folders ("2021/01" for %Y/%m/%d) may hold any of them.
            return None
        d = dt.date.fromisoformat(day)
        out |= {
            x.isoformat() for x in day_range(d - dt.timedelta(days=lateness), d + dt.timedelta(days=lateness))
        }
    return out


def missing(
    listed: list[FileVersion],
    known: dict[str, dict[str, Any]],
    storage: Storage,
    folders: Iterable[str] | None,
) -> list[str]:
    """Files the catalog holds rows of, under the folders just listed, that are gone from the
    source (for `run --prune-missing`)."""
    present = {f.uri for f in listed}
    if folders is None:
        scopes = [storage.uri(storage.root).rstrip("/") + "/"]
    else:
        scopes = [storage.uri(storage.root).rstrip("/") + "/" + folder.strip("/") + "/" for folder in folders]
    return sorted(
        uri
        for uri, row in known.items()
        if row["status"] == "staged" and uri not in present and uri.startswith(tuple(scopes))
    )


def version_signature(pipeline: Pipeline) -> str:
    """What staging makes of a file depends on, appended to its version token: a version staged
    under another declaration is staged again. For CSV, the declaration's staging half and the
    columns a part carries (an output that starts reading another column re-stages every file)."""
    if pipeline.input_format != "csv":
        return pipeline.stage_signature()
    body = f"{pipeline.stage_signature()}|{','.join(carried_columns(pipeline))}"
    return hashlib.sha256(body.encode()).hexdigest()[:12]


def to_stage(listed: list[FileVersion], known: dict[str, dict[str, Any]], force: bool) -> list[FileVersion]:
    """New versions, plus failed ones (retried every run) and forgotten ones that came back.
    Staged or rejected versions are done."""
    out = []
    for f in listed:
        row = known.get(f.uri)
        if force or row is None or row["version"] != f.version or row["status"] in ("failed", "forgotten"):
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
