"""Web events like seed 003's hipages sample, with every anomaly `weblogs` must survive.

`logroll demo weblogs DIR` writes DIR/YYYY/MM/DD/events_*.json (JSON lines, by arrival day):
events out of order, late events in the next day's folder, duplicates (resent events and a
retried file), a duplicate that differs from its original, one line for each reason a line is
rejected, blank lines, CRLF line ends and a byte order mark.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path

ACTIONS = ("page_view", "page_view", "page_view", "button_click", "button_click", "list_directory", "claim")
HOSTS = (
    "https://www.hipages.com.au",
    "https://hipages.com.au",
    "http://www.homeimprovementpages.com.au",
    "https://WWW.PetPages.com.au:443",
    "www.randompages.com.au",
    "//usefulpages.com.au",
)
PATHS = (
    "/articles",
    "/connect/sfelectrics/service/190625",
    "/get_quotes_simple?search_str=sfdg",
    "/photos/bathrooms",
    "/find/electricians/sydney",
    "//find//plumbers/",
    "/#top",
    "",
)
# One line for each reason a line is rejected (the reason is in the quarantine).
BAD_LINES = (
    '{ "event_id" : "bad-json", "user" : { "id" : 56a56 }, "action" : "page_view" }',
    '{"user": {"id": 1}, "action": "page_view", "url": "https://hipages.com.au/x", "timestamp": "02/02/2017 20:22:00"}',
    '{"event_id": "", "user": {"id": 1}, "action": "claim", "url": "https://hipages.com.au/x", "timestamp": "02/02/2017 20:22:00"}',
    '{"event_id": "no-user", "action": "claim", "url": "https://hipages.com.au/x", "timestamp": "02/02/2017 20:22:00"}',
    '{"event_id": "no-action", "user": {"id": 1}, "url": "https://hipages.com.au/x", "timestamp": "02/02/2017 20:22:00"}',
    '{"event_id": "no-url", "user": {"id": 1}, "action": "claim", "url": "", "timestamp": "02/02/2017 20:22:00"}',
    '{"event_id": "no-time", "user": {"id": 1}, "action": "claim", "url": "https://hipages.com.au/x"}',
    '{"event_id": "bad-time", "user": {"id": 1}, "action": "claim", "url": "https://hipages.com.au/x", "timestamp": "31/02/2017 20:22:00"}',
    '{"event_id": "iso-time", "user": {"id": 1}, "action": "claim", "url": "https://hipages.com.au/x", "timestamp": "2017-02-02 20:22:00"}',
    '{"event_id": "no-host", "user": {"id": 1}, "action": "claim", "url": "/connect/x", "timestamp": "02/02/2017 20:22:00"}',
    '["not", "an", "object"]',
)


def _event(rng: random.Random, n: int, when: dt.datetime) -> dict[str, object]:
    user: object = 56000 + rng.randrange(400)
    if rng.random() < 0.1:
        user = str(user)  # the schema says string, the sample sends numbers: both are read
    return {
        "event_id": f"{893479324983546 + n}",
        "user": {"session_id": str(564561 + rng.randrange(9999)), "id": user, "ip": "111.222.33.4"},
        "action": rng.choice(ACTIONS),
        "url": rng.choice(HOSTS) + rng.choice(PATHS),
        "timestamp": when.strftime("%d/%m/%Y %H:%M:%S"),
    }


def _line(event: dict[str, object]) -> str:
    return json.dumps(event, separators=(", ", " : "))


def weblogs(
    root: str | Path, days: int = 3, rows: int = 30_000, start: str = "2017-02-01", seed: int = 7
) -> list[Path]:
    """Write ROOT/YYYY/MM/DD/events_*.json for `days` arrival days, about `rows` events in all."""
    rng = random.Random(seed)
    root = Path(root)
    first = dt.date.fromisoformat(start)
    per_file = max(rows // (days * 3), 10)
    written: list[Path] = []
    counter = 0

    def put(day: dt.date, name: str, lines: list[str], newline: str = "\n", bom: bool = False) -> None:
        folder = root / f"{day:%Y/%m/%d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        text = newline.join(lines) + newline
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
        written.append(path)

    def exports(day: dt.date, midnight: dt.datetime) -> None:
        """A gzip export (read like the plain files), and a Latin-1 export: its events with an
        accented action are not UTF-8, so they are rejected with the reason."""
        nonlocal counter
        events = []
        for _ in range(max(per_file // 4, 4)):
            counter += 1
            events.append(_event(rng, counter, midnight + dt.timedelta(seconds=rng.randrange(86400))))
        folder = root / f"{day:%Y/%m/%d}"
        gz = folder / f"events_{day:%Y%m%d}_export.json.gz"
        text = "\n".join(_line(e) for e in events[: len(events) // 2]) + "\n"
        gz.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
        written.append(gz)
        latin = [
            dict(e, action="réservation") if k % 2 else e for k, e in enumerate(events[len(events) // 2 :])
        ]
        latin1 = folder / f"events_{day:%Y%m%d}_latin1.json"
        text = "\n".join(json.dumps(e, separators=(", ", " : "), ensure_ascii=False) for e in latin)
        latin1.write_bytes((text + "\n").encode("latin-1"))
        written.append(latin1)

    for i in range(days):
        day = first + dt.timedelta(days=i)
        midnight = dt.datetime.combine(day, dt.time())
        for part in range(3):
            events = []
            for _ in range(per_file):
                counter += 1
                events.append(_event(rng, counter, midnight + dt.timedelta(seconds=rng.randrange(86400))))
            if i > 0:  # late: yesterday's events arriving today
                for _ in range(5):
                    counter += 1
                    when = midnight - dt.timedelta(seconds=1 + rng.randrange(3 * 3600))
                    events.append(_event(rng, counter, when))
            events += rng.sample(events, max(1, per_file // 50))  # resent by an upstream retry
            rng.shuffle(events)  # events arrive out of order
            lines = [_line(e) for e in events]
            if part == 0:
                put(day, f"events_{day:%Y%m%d}_{part}.json", lines)
                put(day, f"events_{day:%Y%m%d}_{part}_retry.json", lines)  # a retried upload
            elif part == 1:
                # a duplicate that differs from its original (the smaller one is kept), blank lines
                twin = dict(events[0], action="claim")
                lines = [*lines[:3], "", "   ", _line(twin), *lines[3:]]
                put(day, f"events_{day:%Y%m%d}_{part}.json", lines, newline="\r\n", bom=True)
            else:
                mixed = lines + list(BAD_LINES)
                rng.shuffle(mixed)
                put(day, f"events_{day:%Y%m%d}_{part}.json", mixed)
        exports(day, midnight)
    return written


def event_lines(n: int, start: str = "2017-02-01", seed: int = 7, late_share: float = 0.05) -> Iterator[str]:
    """`n` valid events as JSON lines, in time order but for `late_share` of them (up to an hour
    late): a stream for benchmarks, made fast by formatting instead of json.dumps."""
    rng = random.Random(seed)
    t0 = dt.datetime.fromisoformat(start)
    urls = [h + p for h in HOSTS for p in PATHS]
    step = 86400 * 20 / max(n, 1)  # n events over 20 days
    for i in range(n):
        seconds = i * step
        if rng.random() < late_share:
            seconds = max(0.0, seconds - rng.randrange(3600))
        when = t0 + dt.timedelta(seconds=int(seconds))
        yield (
            f'{{"event_id": "{10**14 + i}", "user": {{"session_id": "{rng.randrange(10**6)}", '
            f'"id": {rng.randrange(100_000)}, "ip": "10.0.0.1"}}, "action": "{rng.choice(ACTIONS)}", '
            f'"url": "{rng.choice(urls)}", "timestamp": "{when:%d/%m/%Y %H:%M:%S}"}}'
        )
