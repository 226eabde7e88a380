"""Sample input for `consolidate` (seed 000): application logs of several shapes per date folder.

Every day's folder holds an app log and a web log with different columns, exact duplicates (a
log shipper's retry), rows of the day before arriving late, one unparseable timestamp, a quoted
field with a comma, a log with ISO-8601 timestamps, and a header-only file.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

LEVELS = ("INFO", "INFO", "INFO", "WARN", "ERROR")
PAGES = ("/", "/search", "/cart", "/checkout", "/help")


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(_quote(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def consolidate(
    root: str | Path, days: int = 3, rows: int = 3_000, start: str = "2021-01-29", seed: int = 7
) -> list[Path]:
    """Write SOURCE/YYYY/MM/DD/{app,web,api}.csv for `days` days, about `rows` rows in all."""
    rng = random.Random(seed)
    root = Path(root)
    first = dt.date.fromisoformat(start)
    per_file = max(rows // (days * 3), 5)
    written: list[Path] = []

    def moment(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(86400))

    for i in range(days):
        day = first + dt.timedelta(days=i)
        folder = root / f"{day:%Y/%m/%d}"
        app = [
            [moment(day).strftime("%Y-%m-%d %H:%M:%S"), rng.choice(LEVELS), f"user-{rng.randrange(300)}",
             rng.choice(("login ok", "payment declined, retrying", 'said "hello"'))]
            for _ in range(per_file)
        ]  # fmt: skip
        app += [list(r) for r in rng.sample(app, max(1, per_file // 20))]  # a shipper's retry
        if i > 0:  # yesterday's lines, shipped late
            app += [[moment(day - dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"), "INFO", "user-1", "late"]
                    for _ in range(3)]  # fmt: skip
        app.append(["not a time", "INFO", "user-2", "garbled"])
        rng.shuffle(app)
        written.append(_write(folder / "app.csv", ["timestamp", "level", "user", "message"], app))
        web = [
            [f"user-{rng.randrange(300)}", moment(day).strftime("%Y-%m-%d %H:%M:%S"), rng.choice(PAGES),
             str(rng.choice((200, 200, 200, 404, 500)))]
            for _ in range(per_file)
        ]  # fmt: skip
        written.append(_write(folder / "web.csv", ["user", "timestamp", "page", "status"], web))
        api = [
            [moment(day).strftime("%Y-%m-%dT%H:%M:%S"), f"user-{rng.randrange(300)}", rng.choice(PAGES)]
            for _ in range(per_file)
        ]
        written.append(_write(folder / "api.csv", ["timestamp", "user", "page"], api))
        written.append(_write(folder / "empty.csv", ["timestamp", "user"], []))
    return written
