"""Backfills: a year of days in parallel with a progress bar, a failed day that stops nothing,
and log lines a shipper can parse."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

from conftest import tree_bytes

FIRST = dt.date(2021, 1, 1)
DAYS = 365
BROKEN = "2021-06-15"


def lean_year(root: Path) -> None:
    """One small file per day: 10 rows of the day, a duplicate, a late row for the day before and
    a bad row. Small on purpose: the test is about running 365 days, not about volume."""
    header = "IMPRESSION_ID,IMPRESSION_DATETIME,CAMPAIGN_ID,USER_ID,DEVICE_TYPE\n"
    for i in range(DAYS):
        day = FIRST + dt.timedelta(days=i)
        rows = [
            f"i{day:%Y%m%d}-{k},{day} {k:02d}:{k * 5 % 60:02d}:00,{k % 4 + 1},u{k},mobile" for k in range(10)
        ]
        rows.append(rows[3])  # an upstream retry
        late = day - dt.timedelta(days=1)
        rows.append(f"late-{late:%Y%m%d},{late} 23:59:00,9,u,tv")
        rows.append(f"bad-{day:%Y%m%d},{day} 10:00:00,nine,u,tv")
        folder = root / f"{day:%Y/%m/%d}"
        folder.mkdir(parents=True)
        (folder / "events.csv").write_text(header + "\n".join(rows) + "\n")


def run_in_pty(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run the CLI with stderr on a terminal (as a person would see it), stdout on a pipe."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "logroll.cli", *args], stdout=subprocess.PIPE, stderr=slave, env=env
    )
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    out, _ = proc.communicate(timeout=600)
    reader.join(timeout=30)
    os.close(master)
    return proc.returncode, out.decode(), b"".join(chunks).decode(errors="replace")


def test_year_long_backfill_in_parallel(tmp_path):
    raw, dest = tmp_path / "raw", tmp_path / "results"
    lean_year(raw)
    # A day whose output cannot be written (a folder sits where the file goes) fails alone.
    blocked = dest / "2021/06/15/daily_agg_20210615_Guy_Fawkes.csv"
    blocked.mkdir(parents=True)
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm"}
    env.pop("LOGROLL_DEBUG", None)
    args = [
        "run",
        "impressions",
        "2021-01-01",
        "--to",
        "2021-12-31",
        "--source",
        str(raw),
        "--dest",
        str(dest),
    ]
    code, out, screen = run_in_pty([*args, "--parallel", "2", "--memory-limit", "1GB", "--json"], env)

    assert code == 1, screen  # some day failed, and the exit code says so
    report = json.loads(out)
    assert [p["day"] for p in report["partitions_failed"]] == [BROKEN]
    days = [(FIRST + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
    assert report["partitions_built"] == [d for d in days if d != BROKEN]
    assert report["files_staged"] == DAYS
    assert report["rows_read"] == report["rows_valid"] + report["rows_rejected"]
    assert report["rows_rejected"] == DAYS
    for p in report["partitions"]:
        assert p["rows_in"] == p["rows_unique"] + p["duplicates"]
        assert p["duplicates"] == 1
        assert p["rows_unique"] == (10 if p["day"] == "2021-12-31" else 11), p
        out_file = dest / f"{p['day'].replace('-', '/')}/daily_agg_{p['day'].replace('-', '')}_Guy_Fawkes.csv"
        with out_file.open() as fh:
            assert sum(int(r["IMPRESSION_COUNT"]) for r in csv.DictReader(fh)) == p["rows_unique"]

    # The terminal showed a progress bar (days done, rows/s, ETA), not 365 "built" lines.
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert "build days" in plain and "rows/s" in plain and "ETA" in plain
    assert re.search(r"build days .*365/365 .*rows/s 1 failed", plain)
    assert "stage files" in plain and f"{DAYS}/{DAYS}" in plain
    assert "built 2021-03-01" not in plain
    assert f"day {BROKEN} failed" in plain  # errors still show as lines

    # The next run rebuilds only the day that failed.
    blocked.rmdir()
    res = subprocess.run(
        [sys.executable, "-m", "logroll.cli", *args, "--parallel", "2", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    again = json.loads(res.stdout)
    assert again["partitions_built"] == [BROKEN] and again["files_staged"] == 0
    # Not a terminal: plain lines with the progress in them.
    assert re.search(r"INFO built 2021-06-15: 12 rows in, 11 unique, \d+ out$", res.stderr, re.M)

    # Parallel days are the same bytes as days built one at a time.
    seq = tmp_path / "sequential"
    res = subprocess.run(
        [sys.executable, "-m", "logroll.cli", "run", "impressions", "2021-03-01", "--to", "2021-03-31",
         "--source", str(raw), "--dest", str(seq)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    march = {k: v for k, v in tree_bytes(dest).items() if k.startswith("2021/03/")}
    assert len(march) == 31 and march == tree_bytes(seq)


def test_json_log_lines_parse(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    (impressions_raw / "2021/01/30/broken.csv").write_text("WHO,WHAT\n1,2\n")
    res = cli(
        "run", "impressions", "2021-01-29", "--to", "2021-01-31", "--source", str(impressions_raw),
        "--dest", str(dest), "--log-format", "json", "--parallel", "2", "--json",
    )  # fmt: skip
    assert res.code == 1  # the broken file is rejected
    lines = [json.loads(line) for line in res.err.splitlines()]
    assert lines, res.err
    for obj in lines:
        assert {"time", "level", "pipeline", "day", "event", "counts"} <= obj.keys()
        assert dt.datetime.fromisoformat(obj["time"].replace("Z", "+00:00")).tzinfo is not None
        assert obj["level"] in {"debug", "info", "warning", "error"}
        assert obj["pipeline"] == "impressions"
        assert isinstance(obj["counts"], dict)
    report = res.json()
    events = [o["event"] for o in lines]
    assert events[0] == "stage_started" and events[-1] == "run_finished"
    built = [o for o in lines if o["event"] == "day_built"]
    assert sorted(o["day"] for o in built) == report["partitions_built"]
    for o in built:
        assert o["counts"]["rows_in"] == o["counts"]["rows_unique"] + o["counts"]["duplicates"]
    staged = [o for o in lines if o["event"] == "file_staged"]
    assert sum(o["counts"]["rows_read"] for o in staged) == report["rows_read"]
    rejected = [o for o in lines if o["event"] == "file_rejected"]
    assert (
        len(rejected) == 1 and rejected[0]["level"] == "error" and rejected[0]["uri"].endswith("broken.csv")
    )
    finished = lines[-1]
    assert finished["level"] == "warning" and finished["counts"]["days_built"] == len(
        report["partitions_built"]
    )
