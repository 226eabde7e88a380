"""Find a column by its values when no header names it (consolidate's timestamp column).

A column qualifies when every non-empty value among the first rows parses with one of the
declared formats; detection succeeds only when exactly one column qualifies, so a guess is
never silent: zero or several candidates reject the file with a reason that says what to pass.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
from pathlib import Path

from .base import Column, Pipeline

SAMPLE_ROWS = 200


def _parses(value: str, col: Column) -> bool:
    for fmt in col.time_formats:
        try:
            dt.datetime.strptime(value, fmt)
            return True
        except ValueError:
            continue
    return False


def sample_rows(path: Path, delimiter: str, n: int = SAMPLE_ROWS) -> list[list[str]]:
    """The first `n` non-empty data rows (header skipped)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        rows = (r for r in itertools.islice(csv.reader(fh, delimiter=delimiter), 1, None) if r)
        return list(itertools.islice(rows, n))


def candidates(header: list[str], rows: list[list[str]], col: Column, skip: set[str]) -> list[str]:
    """Header names whose sampled values all parse as `col` (and at least one value does)."""
    found = []
    for i, name in enumerate(header):
        if name in skip:
            continue
        values = [r[i].strip() for r in rows if i < len(r) and r[i].strip()]
        if values and all(_parses(v, col) for v in values):
            found.append(name)
    return found


def resolve(path: Path, header: list[str], pipeline: Pipeline) -> tuple[list[str] | None, str | None]:
    """(the header with detected columns renamed to their declared header, a problem or None).

    Only columns declared with `detect` and not named by the header (exactly or ignoring
    case) are looked for; everything else is left to the usual header check. The header is
    None when the file has no data row to detect from: there is nothing to stage.
    """
    lowered = {h.lower() for h in header}
    wanted = [
        c
        for c in pipeline.columns
        if c.detect and c.type in ("timestamp", "date") and c.header.lower() not in lowered
    ]
    if not wanted:
        return header, None
    rows = sample_rows(path, pipeline.delimiter)
    if not rows:
        return None, None
    resolved = list(header)
    taken = {c.header for c in pipeline.columns}
    for col in wanted:
        found = candidates(resolved, rows, col, taken)
        if len(found) != 1:
            tried = ", ".join(col.time_formats)
            what = "no column" if not found else f"{len(found)} columns ({', '.join(found)})"
            flag = "--timestamp-column" if col.name == pipeline.event_time else f"a source for {col.name!r}"
            return header, (
                f"cannot tell which column is {col.name!r}: {what} parse as a {col.type} "
                f"(formats tried: {tried}); name it with {flag}"
            )
        resolved[resolved.index(found[0])] = col.header
        taken.add(found[0])
    return resolved, None
