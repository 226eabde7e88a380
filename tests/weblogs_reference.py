"""Seed 003's rules written again in plain Python, from the spec and not from the SQL: the
reference the SQL definitions are compared with (hypothesis) and the sample's figures are
computed with (an independent computation of the two tables).

URL: spaces around it are ignored; a scheme ("letters, digits, + . -" after a letter, then
"://") or a leading "//" is skipped, else the URL starts with its host; the authority runs to the
first "/", "?" or "#"; user info ends at its last "@"; one leading "www." (any case) goes; the host
is an IPv6 literal "[...]" or runs to the first ":"; level 1 is the host lower-cased; levels 2
and 3 are the first and second non-empty segments of the path, which ends at "?" or "#".

Timestamp: dd/mm/yyyy HH:MM:SS, day, month and time fields with 1 or 2 ASCII digits, the year
with 4 (not 0000), spaces or tabs between date and time, spaces around; a real date and time.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from typing import Any

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_TIMESTAMP = re.compile(
    r" *([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})[ \t]+([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2}) *"
)


def url_levels(url: str) -> tuple[str, str, str]:
    u = url.strip(" ")
    m = _SCHEME.match(u)
    if m:
        rest = u[m.end() :]
    elif u.startswith("//"):
        rest = u[2:]
    else:
        rest = u
    cut = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if i >= 0:
            cut = min(cut, i)
    authority, after = rest[:cut], rest[cut:]
    hostport = authority.rsplit("@", 1)[-1]
    if hostport[:4].lower() == "www.":
        hostport = hostport[4:]
    if hostport.startswith("[") and "]" in hostport:
        host = hostport[: hostport.index("]") + 1]
    else:
        host = hostport.split(":", 1)[0]
    path = re.split(r"[?#]", after, maxsplit=1)[0]
    segments = [s for s in path.split("/") if s]
    return host.lower(), (segments[0] if segments else ""), (segments[1] if len(segments) > 1 else "")


def parse_timestamp(text: str) -> dt.datetime | None:
    m = _TIMESTAMP.fullmatch(text)
    if not m:
        return None
    day, month, year, hour, minute, second = (int(g) for g in m.groups())
    if year == 0:
        return None
    try:
        return dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def tables(
    lines: list[str],
) -> tuple[dict[str, list[tuple[str, ...]]], dict[str, list[tuple[Any, ...]]], int]:
    """(user_web_hits by day, aggregated_web_stats by day, rejected lines) for the valid lines,
    deduplicated on (event_id, event day) keeping the smallest (user, action, url, timestamp)."""
    best: dict[tuple[str, str], tuple[str, str, str, dt.datetime]] = {}
    rejected = 0
    for line in lines:
        if not line.strip(" \t\r\n\ufeff"):
            continue
        try:
            e = json.loads(line.lstrip("\ufeff"))
        except ValueError:
            rejected += 1
            continue
        if not isinstance(e, dict):
            rejected += 1
            continue
        user = e.get("user") if isinstance(e.get("user"), dict) else {}
        values = [e.get("event_id"), user.get("id"), e.get("action"), e.get("url"), e.get("timestamp")]
        texts = [None if v is None else str(v) for v in values]
        if any(t is None or not t.strip(" ") for t in texts):
            rejected += 1
            continue
        event_id, user_id, action, url, stamp = texts
        when = parse_timestamp(stamp)  # type: ignore[arg-type]
        if when is None or not url_levels(url)[0]:  # type: ignore[arg-type]
            rejected += 1
            continue
        key = (event_id, when.date().isoformat())
        row = (user_id, action, url, when)
        if key not in best or row < best[key]:
            best[key] = row  # type: ignore[assignment]
    hits: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    groups: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for (_, day), (user_id, action, url, when) in best.items():
        l1, l2, l3 = url_levels(url)
        hits[day].append((user_id, when.strftime("%Y-%m-%d %H:%M:%S"), l1, l2, l3, action))
        g = (when.strftime("%Y%m%d%H"), l1, action)
        groups[g].add(user_id)
        counts[g] += 1
    stats: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for g, users in groups.items():
        day = f"{g[0][:4]}-{g[0][4:6]}-{g[0][6:8]}"
        stats[day].append((*g, counts[g], len(users)))
    return {d: sorted(r) for d, r in hits.items()}, {d: sorted(r) for d, r in stats.items()}, rejected
