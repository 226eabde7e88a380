"""Dates as users type them, and the day ranges a run works on."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from .errors import UsageError

# Order matters only for readability: the formats cannot be confused with each other.
DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%m/%d/%Y")


def utc_now() -> dt.datetime:
    """Now in UTC as a naive datetime: what the catalog, the sinks and the stream store record."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def parse_date(text: str | dt.date) -> dt.date:
    """Parse YYYY-MM-DD, YYYYMMDD, YYYY/MM/DD or MM/DD/YYYY into a date."""
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    value = str(text).strip()
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise UsageError(
        f"bad date {value!r}: use YYYY-MM-DD, YYYYMMDD, YYYY/MM/DD or MM/DD/YYYY (e.g. 2021-01-30)"
    )


def day_range(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    """Inclusive range of days."""
    if end < start:
        raise UsageError(f"--to {end.isoformat()} is before the start date {start.isoformat()}")
    day = start
    while day <= end:
        yield day
        day += dt.timedelta(days=1)


def requested_days(
    date: str | dt.date | None, to: str | dt.date | None, lateness: int
) -> tuple[dt.date | None, dt.date | None, tuple[str, ...] | None]:
    """(start, end, the requested days) of `run DATE --to TO`; all None to catch up."""
    if lateness < 0:
        raise UsageError("--lateness must be 0 or more days")
    start = parse_date(date) if date is not None else None
    end = parse_date(to) if to is not None else start
    if to is not None and start is None:
        raise UsageError("--to needs a start date: logroll run PIPELINE START --to END")
    requested = tuple(d.isoformat() for d in day_range(start, end)) if start and end else None
    return start, end, requested


def compact_days(days: list[str]) -> str:
    """'2021-01-01, 2021-01-02, 2021-01-03, 2021-01-05' -> '2021-01-01..2021-01-03, 2021-01-05':
    a backfill's list of days stays one short line."""
    ranges: list[list[dt.date]] = []
    for d in sorted({dt.date.fromisoformat(x) for x in days}):
        if ranges and d - ranges[-1][1] == dt.timedelta(days=1):
            ranges[-1][1] = d
        else:
            ranges.append([d, d])
    parts = [a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()}" for a, b in ranges]
    if len(parts) > 6:
        parts = [*parts[:5], f"... ({len(parts) - 5} more ranges)"]
    return ", ".join(parts)


def layout_regex(layout: str) -> re.Pattern[str] | None:
    """'%Y/%m/%d' -> a regex with year, month and day groups; None if the layout lacks one."""
    groups = {"%Y": r"(?P<y>\d{4})", "%m": r"(?P<m>\d{1,2})", "%d": r"(?P<d>\d{1,2})"}
    if not all(k in layout for k in groups):
        return None
    out, i = "", 0
    while i < len(layout):
        token = layout[i : i + 2]
        if token in groups:
            out += groups[token]
            i += 2
        else:
            out += re.escape(layout[i])
            i += 1
    return re.compile(out)


def folder_day(uri: str, pattern: re.Pattern[str] | None) -> str | None:
    """The date of the folder a file arrived in, from the pipeline's layout."""
    if pattern is None:
        return None
    found = None
    for m in pattern.finditer(uri):
        found = m
    if found is None:
        return None
    try:
        return dt.date(int(found["y"]), int(found["m"]), int(found["d"])).isoformat()
    except ValueError:
        return None
