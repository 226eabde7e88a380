"""Realistic sample data with every anomaly logroll must survive, for `make run` and tests."""

from __future__ import annotations

import datetime as dt
import gzip
import random
from pathlib import Path

DEVICES = ("mobile", "desktop", "tablet", "tv")
HEADER = ("IMPRESSION_ID", "IMPRESSION_DATETIME", "CAMPAIGN_ID", "USER_ID", "DEVICE_TYPE")


def _row(rng: random.Random, day: dt.date, n: int) -> list[str]:
    ts = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(86400))
    return [
        f"imp-{day:%Y%m%d}-{n:08d}",
        ts.strftime("%Y-%m-%d %H:%M:%S"),
        str(rng.randrange(1, 40)),
        f"user-{rng.randrange(5000)}",
        rng.choice(DEVICES),
    ]


def _csv(
    rows: list[list[str]],
    header: tuple[str, ...] = HEADER,
    crlf: bool = False,
    bom: bool = False,
    quote_all: bool = False,
) -> str:
    def cell(v: str) -> str:
        if quote_all or any(c in v for c in ',"\n'):
            return '"' + v.replace('"', '""') + '"'
        return v

    nl = "\r\n" if crlf else "\n"
    text = nl.join(",".join(cell(v) for v in r) for r in [list(header), *rows]) + nl
    return ("\ufeff" if bom else "") + text


def impressions(
    root: str | Path, days: int = 3, rows: int = 30_000, start: str = "2021-01-29", seed: int = 7
) -> list[Path]:
    """Write SOURCE/YYYY/MM/DD/*.csv for `days` days, about `rows` rows in all. Returns the files."""
    rng = random.Random(seed)
    root = Path(root)
    first = dt.date.fromisoformat(start)
    per_file = max(rows // (days * 3), 10)
    written: list[Path] = []

    def put(day: dt.date, name: str, text: str) -> None:
        folder = root / f"{day:%Y/%m/%d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(text.encode("utf-8"))
        written.append(path)

    counter = 0
    for i in range(days):
        day = first + dt.timedelta(days=i)
        for part in range(3):
            batch = []
            for _ in range(per_file):
                counter += 1
                batch.append(_row(rng, day, counter))
            # duplicates inside the file: an upstream retry of a few rows
            batch += [list(r) for r in rng.sample(batch, max(1, per_file // 50))]
            # early rows: the next day's events already in this folder
            batch += [_row(rng, day + dt.timedelta(days=1), counter + k + 1) for k in range(3)]
            counter += 3
            if i > 0:  # late rows: yesterday's events arriving today
                batch += [_row(rng, day - dt.timedelta(days=1), 10_000_000 + counter + k) for k in range(5)]
            rng.shuffle(batch)
            if part == 0:
                put(day, f"impressions_{day:%Y%m%d}_{part}.csv", _csv(batch))
                # the same file resent under a new name by an upstream retry
                put(day, f"impressions_{day:%Y%m%d}_{part}_retry.csv", _csv(batch))
            elif part == 1:
                # quoted fields, CRLF line endings and a UTF-8 BOM, columns in another order + an extra one
                order = (2, 0, 4, 1, 3)
                header = tuple(HEADER[j] for j in order) + ("SOURCE",)
                reordered = [[r[j] for j in order] + ["ad-server, eu"] for r in batch]
                put(
                    day,
                    f"impressions_{day:%Y%m%d}_{part}.csv",
                    _csv(reordered, header, crlf=True, bom=True, quote_all=True),
                )
            else:
                bad = [
                    ["imp-bad-1", "2021-02-30 10:00:00", "5", "u", "mobile"],  # impossible date
                    ["imp-bad-2", "yesterday", "5", "u", "mobile"],  # unparseable datetime
                    ["imp-bad-3", f"{day} 10:00:00", "five", "u", "mobile"],  # non-integer campaign
                    ["imp-bad-4", f"{day} 10:00:00", "", "u", "mobile"],  # missing campaign
                    ["", f"{day} 10:00:00", "5", "u", "mobile"],  # empty impression id
                    ["imp-bad-6", f"{day} 10:00:00", "5"],  # too few columns
                    ["imp-bad-7", f"{day} 10:00:00", "5", "u", "mobile", "extra"],  # too many
                    ["imp-bad-8", f"{day} 10:00:00", "5.5", "u", "mobile"],  # not an integer
                ]
                mixed = batch + bad
                rng.shuffle(mixed)
                put(day, f"impressions_{day:%Y%m%d}_{part}.csv", _csv(mixed))
        # a gzip export (read like any CSV), and a Latin-1 export: its rows with a non-ASCII user
        # are not valid UTF-8 (the pipeline's encoding) and are quarantined with that reason
        extra = [_row(rng, day, 20_000_000 + counter + k) for k in range(max(per_file // 10, 4))]
        counter += len(extra)
        folder = root / f"{day:%Y/%m/%d}"
        gz = folder / f"impressions_{day:%Y%m%d}_3.csv.gz"
        gz.write_bytes(gzip.compress(_csv(extra[: len(extra) // 2]).encode("utf-8"), mtime=0))
        written.append(gz)
        latin = [
            r[:3] + ["josé" if k % 4 == 0 else r[3]] + r[4:] for k, r in enumerate(extra[len(extra) // 2 :])
        ]
        latin1 = folder / f"impressions_{day:%Y%m%d}_latin1.csv"
        latin1.write_bytes(_csv(latin).encode("latin-1"))
        written.append(latin1)
        put(day, f"impressions_{day:%Y%m%d}_empty.csv", "")
        put(day, f"impressions_{day:%Y%m%d}_header_only.csv", _csv([]))
    return written
