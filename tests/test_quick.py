"""`logroll run` with nothing to do is answered without the full run (cli/quick.py), and only then.

The quick answer must be the full run's: the same report, log lines and run row, the same files
listed. Every condition under which the full run would do something (or say something) hands
over to it, which `-v` reports.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import sqlite3
from pathlib import Path

import pytest

from logroll import discover
from logroll.cli import quick
from logroll.pipelines import get_pipeline
from logroll.storage.files import Storage

from conftest import run_cli, tree_bytes, tree_mtimes

HANDED = "handing over to the full run"
FULL = {"LOGROLL_LOG_FORMAT": "text"}  # a setting at its default: the full run answers


def _row(i: int, day: str = "2021-01-30") -> str:
    return f"id-{i},{day} {i % 24:02d}:00:00,{i % 5},u,tv\n"


def _write(path: Path, rows: range, day: str = "2021-01-30") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "IMPRESSION_ID,IMPRESSION_DATETIME,CAMPAIGN_ID,USER_ID,DEVICE_TYPE\n"
    path.write_text(header + "".join(_row(i, day) for i in rows))


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    raw, dest = tmp_path / "raw", tmp_path / "results"
    _write(raw / "2021/01/30/a.csv", range(50))
    _write(raw / "2021/01/31/b.csv", range(40, 60))
    res = run_cli("run", "impressions", "2021-01-30", "-s", str(raw), "-d", str(dest), "--json")
    assert res.code == 0, res.err
    return raw, dest


def run(raw: Path, dest: Path, *extra: str, env: dict[str, str] | None = None, date: str = "2021-01-30"):
    return run_cli("-v", "run", "impressions", date, "-s", str(raw), "-d", str(dest), *extra, env=env)


def _same(text: str) -> str:
    """Output with what differs between two runs blanked: times, run ids, durations."""
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+Z)?", "T", text)
    text = re.sub(r"run \d+", "run N", text)
    text = re.sub(r'"run_id": \d+', '"run_id": N', text)
    text = re.sub(r'"seconds": [\d.]+', '"seconds": S', text)
    return re.sub(r"in \d+\.\ds", "in Ss", text)


def _last_run(dest: Path) -> dict:
    con = sqlite3.connect(dest / "_logroll/catalog.sqlite")
    con.row_factory = sqlite3.Row
    try:
        row = dict(con.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone())
    finally:
        con.close()
    row["report"] = _same(row["report"])
    return {k: row[k] for k in ("pipeline", "status", "report")} | {
        "finished": row["finished_at"] is not None
    }


@pytest.mark.parametrize("extra", [("--json",), (), ("--json", "--log-format", "json")])
def test_the_quick_answer_is_the_full_runs(built: tuple[Path, Path], extra: tuple[str, ...]) -> None:
    raw, dest = built
    mtimes = tree_mtimes(dest)
    got = {}
    for way, env in (("quick", None), ("full", FULL)):
        res = run(raw, dest, *extra, env=env)
        assert res.code == 0, res.err
        assert (HANDED in res.err) == (way == "full"), res.err
        lines = [line for line in res.err.splitlines() if HANDED not in line and " DEBUG " not in line]
        lines = [line for line in lines if '"level": "debug"' not in line]
        got[way] = (_same(res.out), _same("\n".join(lines)), _last_run(dest))
    assert got["quick"] == got["full"]
    assert tree_mtimes(dest) == mtimes


def test_the_quick_listing_is_storage_listing(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    for rel in ("2021/01/30/a.csv", "2021/01/30/B.CSV", "2021/01/30/deep/c.csv", "2021/01/30/x.txt",
                "2021/01/30/.hidden.csv", "2021/01/30/_under.csv", "2021/01/30/.git/d.csv",
                "2021/01/30/_logroll/e.csv", "2021/01/31/f.csv", "results/2021/01/30/g.csv",
                "2021/02/01/h.csv", "top.csv"):  # fmt: skip
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("IMPRESSION_ID\n1\n")
    os.utime(src / "top.csv", (1_600_000_000.123456, 1_600_000_000.123456))
    pipe = get_pipeline("impressions")
    storage = Storage(str(src))
    exclude = (str(src / "results"),)
    day = dt.date(2021, 1, 30)
    for folders in (None, discover.day_folders(pipe, day, day, 1), ["2022/01/01"]):
        full, unreadable = discover.list_sources(storage, pipe, folders, exclude)
        assert not unreadable
        full = [(f.uri, f.size, f"{f.version}~{discover.version_signature(pipe)}") for f in full]
        mine = [(f.uri, f.size, f.version) for f in quick.list_local(str(src), folders, pipe, exclude)]
        assert mine == full and (folders == ["2022/01/01"] or mine)
    (src / "2021/01/30/link.csv").symlink_to(src / "top.csv")
    with pytest.raises(quick.HandOver):
        quick.list_local(str(src), None, pipe, exclude)


def _hold_lock(dest: Path) -> None:
    """A lock row of a live run (this test's own process) on the pipeline."""
    con = sqlite3.connect(dest / "_logroll/catalog.sqlite")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    con.execute(
        "INSERT INTO locks VALUES ('run:impressions', 't', ?, ?, ?, ?)",
        (os.getpid(), socket.gethostname(), now, now),
    )
    con.commit()
    con.close()


def test_anything_but_nothing_to_do_is_handed_over(built: tuple[Path, Path], tmp_path: Path) -> None:
    raw, dest = built
    # A new file: staged by the full run.
    _write(raw / "2021/01/31/c.csv", range(60, 70))
    res = run(raw, dest, "--json")
    assert HANDED in res.err and res.json()["files_staged"] == 1
    assert HANDED not in run(raw, dest, "--json").err  # and now there is nothing to do
    # An output deleted: rebuilt.
    out = next(p for p in dest.rglob("daily_agg_*.csv"))
    out.unlink()
    res = run(raw, dest, "--json")
    assert HANDED in res.err and res.json()["outputs_written"] and out.exists()
    # Left-overs of a killed run: collected by the full run.
    orphan = dest / "_logroll/staged/impressions/deadbeef/__day=2021-01-30"
    orphan.mkdir(parents=True)
    stale = dest / "_logroll/days/impressions/2021-01-30/plus-9-dead.parquet"
    stale.write_bytes(b"x")
    res = run(raw, dest, "--json")
    assert HANDED in res.err and res.json()["nothing_to_do"] and not orphan.exists() and not stale.exists()
    # A run marked running (killed): marked crashed by the full run.
    con = sqlite3.connect(dest / "_logroll/catalog.sqlite")
    con.execute(
        "INSERT INTO runs (pipeline, started_at, status) VALUES ('impressions', '2021-01-01 00:00:00', 'running')"
    )
    con.commit()
    con.close()
    assert HANDED in run(raw, dest).err
    assert HANDED not in run(raw, dest).err
    # Another run holds the lock: the full run says so.
    _hold_lock(dest)
    res = run(raw, dest)
    assert HANDED in res.err and res.code == 1 and "already running" in res.err
    sqlite3.connect(dest / "_logroll/catalog.sqlite").execute("DELETE FROM locks").connection.commit()
    # A requested day with no input: the full run's error.
    res = run(raw, dest, date="2021-03-01")
    assert HANDED in res.err and res.code == 1 and "no input files for 2021-03-01" in res.err
    # A config file, a LOGROLL_* variable, an option it does not know: never answered.
    assert HANDED in run(raw, dest, env={"LOGROLL_LATENESS": "1"}).err
    assert HANDED in run(raw, dest, "--memory-limit", "800MB").err
    assert HANDED not in run(raw, dest, "--threads", "1", "--parallel=2").err
    (tmp_path / "logroll.yaml").write_text("lateness: 1\n")
    res = run_cli("-v", "run", "impressions", "2021-01-30", "-s", str(raw), "-d", str(dest), cwd=tmp_path)
    assert res.code == 0 and HANDED in res.err
    assert tree_bytes(dest)  # outputs still there
    # A destination a stream writes: the full run refuses it.
    stream_db = dest / "_logroll/stream/impressions.sqlite"
    stream_db.parent.mkdir()
    stream_db.write_bytes(b"")
    res = run(raw, dest)
    assert HANDED in res.err and res.code == 2 and "logroll stream impressions" in res.err
    stream_db.unlink()
    # A destination emptied and recreated (its id is new): the full run refuses its old state.
    ident = dest / "_logroll/id"
    kept = ident.read_bytes()
    ident.unlink()
    res = run(raw, dest)
    assert HANDED in res.err and res.code == 2 and "emptied or recreated" in res.err
    ident.write_bytes(kept)
    assert HANDED not in run(raw, dest).err
