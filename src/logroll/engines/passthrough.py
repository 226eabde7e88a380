"""Pass-through columns: pipelines that keep every column a file has (consolidate).

Such a pipeline declares only the columns it needs typed (its event time); every other header
column is staged as text under its own name. A day's files may have different column sets, so
its `rows` view is the union of them, in an order that depends only on the set of files, never
on which run staged which file first.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable

import pyarrow.parquet as pq

from ..pipelines.base import Pipeline
from ..quote import own_pattern

# Names logroll's own staging and building use; a header may not bring them in.
RESERVED_PREFIX = "__"


def header_problem(header: list[str], pipeline: Pipeline) -> str | None:
    """Why a (resolved) header cannot be staged as pass-through columns, or None."""
    declared_headers = {c.header for c in pipeline.columns}
    declared_names = {c.name.lower(): c.name for c in pipeline.columns}
    seen: dict[str, str] = {}
    for position, name in enumerate(header, start=1):
        if name in declared_headers:
            continue
        if not name:
            return f"header column {position} has no name; name it so it can be kept"
        if name.startswith(RESERVED_PREFIX):
            return f"header column {name!r}: names starting with {RESERVED_PREFIX!r} are reserved for logroll"
        clash = declared_names.get(name.lower())
        if clash is not None:
            return (
                f"header column {name!r} clashes with the declared column {clash!r} "
                f"(read from {pipeline.column(clash).header!r}); rename one of them"
            )
        # SQL names are case-insensitive: "User" and "user" would be one column.
        other = seen.get(name.lower())
        if other is not None:
            return f"header columns {other!r} and {name!r} differ only in case; rename one of them"
        seen[name.lower()] = name
    return None


def part_columns(part_globs: Iterable[str]) -> list[list[str]]:
    """The column names of every staged Parquet part, in file order."""
    out = []
    for pattern in part_globs:
        for path in sorted(glob.glob(own_pattern(pattern))):
            # staging's own columns (__h, __reason) are not the file's
            out.append([n for n in pq.read_schema(path).names if not n.startswith(RESERVED_PREFIX)])
    return out


def union_columns(column_lists: list[list[str]]) -> tuple[list[str], list[str]]:
    """(union of the columns, in output order; the columns some lists lack).

    Order: by the smallest position a column has in any file, ties by name. That keeps the
    files' shared leading columns where they were and does not depend on the files' order.
    Names are matched case-insensitively (as SQL does); the smallest spelling names the column.
    """
    best: dict[str, tuple[int, str]] = {}
    present: dict[str, int] = {}
    for names in column_lists:
        for position, name in enumerate(names):
            key = name.lower()
            old = best.get(key)
            best[key] = (position, name) if old is None else (min(old[0], position), min(old[1], name))
        for key in {n.lower() for n in names}:
            present[key] = present.get(key, 0) + 1
    order = sorted(best.values())
    partial = sorted(best[k][1] for k, n in present.items() if n < len(column_lists))
    return [name for _, name in order], partial
