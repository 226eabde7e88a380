"""Seed 000 (`consolidate`): every CSV of a date folder -> one mm--dd--yyyy.csv per event day.

Through the real CLI: exact output bytes, reruns, late rows merged into their own day, timestamp
detection, differing column sets, a day far bigger than the memory limit, an empty folder.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logroll.engines.passthrough import union_columns
from logroll.pipelines.consolidate import TIMESTAMP_FORMATS

from conftest import tree_bytes, tree_mtimes


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """Seed 000's input: CSVs of any columns under date folders, with a duplicate, a bad
    timestamp, a row of the day before and one of the day after."""
    root = tmp_path / "logs"
    write(
        root,
        "2021/01/30/app.csv",
        "timestamp,user,action\n"
        "2021-01-30 10:00:00,u1,click\n"
        "2021-01-30 09:15:30,u2,view\n"
        "2021-01-30 09:15:30,u2,view\n"  # exact duplicate
        "2021-01-29 23:59:59,u3,early\n"  # belongs to the 29th
        "not a time,u4,bad\n"
        '2021-01-30 12:00:00,u5,"say ""hi"", bye"\n',
    )
    write(
        root,
        "2021/01/30/web.csv",
        "timestamp,user,action\n2021-01-30 10:00:00,u1,click\n2021-01-31 00:00:01,u6,next-day\n",
    )
    return root


def run(cli, *args: str, **kw):
    return cli("run", "consolidate", *args, **kw)


def test_seed_000_end_to_end_exact_bytes_and_rerun(cli, logs, tmp_path):
    out = tmp_path / "output"
    r = run(
        cli,
        "01/30/2021",
        "--source",
        str(logs),
        "--dest",
        str(out),
        "--timestamp-column",
        "timestamp",
        "--json",
    )
    assert r.code == 0, r.err  # a bad row is quarantined and counted, not fatal
    report = r.json()
    assert report["partitions_built"] == ["2021-01-30"]
    assert report["rows_read"] == 8 == report["rows_valid"] + report["rows_rejected"]
    assert report["rows_rejected"] == 1
    # the 30th: 4 rows from app.csv, 1 from web.csv; u2's repeat and u1's copy in web.csv are duplicates
    assert report["rows_in"] == 5 and report["rows_unique"] == 3 and report["duplicates"] == 2
    assert (out / "01--30--2021.csv").read_text() == (
        "date,time,user,action\n"
        "2021-01-30,09:15:30,u2,view\n"
        "2021-01-30,10:00:00,u1,click\n"
        '2021-01-30,12:00:00,u5,"say ""hi"", bye"\n'
    )
    # only the requested day is written; the 29th and 31st wait until they are asked for
    assert sorted(p.name for p in out.glob("*.csv")) == ["01--30--2021.csv"]
    rejects = list((out / "_logroll" / "quarantine" / "consolidate").rglob("*.rejects.csv"))
    assert len(rejects) == 1 and "not a time,u4,bad" in rejects[0].read_text()

    before, mtimes = tree_bytes(out), tree_mtimes(out)
    again = run(
        cli, "01/30/2021", "--source", str(logs), "--dest", str(out), "--timestamp-column", "timestamp"
    )
    assert again.code == 0, again.err
    assert "nothing to do" in again.out
    assert tree_bytes(out) == before and tree_mtimes(out) == mtimes


def test_late_rows_rebuild_their_day_and_equal_a_merge(cli, logs, tmp_path):
    out = tmp_path / "output"
    src = ["--source", str(logs), "--dest", str(out)]
    assert run(cli, "2021-01-30", *src).code in (0, 1)
    first = rows_of(out / "01--30--2021.csv")
    # a later folder brings rows of the 30th (one already known), and rows of the 31st
    late = write(
        logs,
        "2021/01/31/app.csv",
        "timestamp,user,action\n"
        "2021-01-30 08:00:00,u7,late\n"
        "2021-01-30 10:00:00,u1,click\n"
        "2021-01-31 07:00:00,u8,today\n",
    )
    r = run(cli, "2021-01-31", *src, "--json")
    assert r.code == 0, r.err
    assert r.json()["partitions_built"] == ["2021-01-30", "2021-01-31"]
    # the 30th's file is what merging its earlier output with the new rows gives: union, no
    # duplicate, sorted by time
    new_rows = [
        [ts[:10], ts[11:], user, action]
        for ts, user, action in rows_of(late)[1:]
        if ts.startswith("2021-01-30")
    ]
    header, old = first[0], first[1:]
    merged = sorted({tuple(r) for r in old + new_rows})
    assert rows_of(out / "01--30--2021.csv") == [header, *map(list, merged)]
    assert rows_of(out / "01--31--2021.csv") == [
        header,
        ["2021-01-31", "00:00:01", "u6", "next-day"],
        ["2021-01-31", "07:00:00", "u8", "today"],
    ]


def test_incremental_runs_equal_one_run_over_everything(cli, logs, tmp_path):
    write(
        logs,
        "2021/01/31/app.csv",
        "timestamp,user,action\n2021-01-30 08:00:00,u7,late\n2021-01-31 07:00:00,u8,x\n",
    )
    write(
        logs,
        "2021/02/01/app.csv",
        "timestamp,user,action\n2021-01-31 23:00:00,u9,late\n2021-02-01 07:00:00,u1,y\n",
    )
    step = tmp_path / "step"
    for day in ("2021-01-30", "2021-01-31", "2021-02-01"):
        assert run(cli, day, "--source", str(logs), "--dest", str(step)).code in (0, 1)
    once = tmp_path / "once"
    assert run(cli, "2021-01-30", "--to", "2021-02-01", "--source", str(logs), "--dest", str(once)).code in (
        0,
        1,
    )
    assert tree_bytes(step) == tree_bytes(once)
    assert sorted(tree_bytes(once)) == ["01--30--2021.csv", "01--31--2021.csv", "02--01--2021.csv"]


def test_layout_option_reads_other_folder_names(cli, tmp_path):
    logs = tmp_path / "logs"
    write(logs, "01-30-2021/a.csv", "ts,msg\n2021-01-30T10:00:00,hello\n")
    write(logs, "01-31-2021/a.csv", "ts,msg\n2021-01-30T11:00:00,late\n")
    out = tmp_path / "out"
    r = run(cli, "01/30/2021", "--source", str(logs), "--dest", str(out), "--layout", "%m-%d-%Y")
    assert r.code == 0, r.err
    assert (out / "01--30--2021.csv").read_text() == (
        "date,time,msg\n2021-01-30,10:00:00,hello\n2021-01-30,11:00:00,late\n"
    )
    bad = run(cli, "01/30/2021", "--source", str(logs), "--dest", str(out), "--layout", "%Y-%m")
    assert bad.code == 2
    assert "layout '%Y-%m' lacks %d" in bad.err and "Traceback" not in bad.err


def test_timestamp_column_detected_or_rejected_with_a_reason(cli, tmp_path):
    logs = tmp_path / "logs"
    # the one column whose values parse as timestamps, whatever its name and format
    write(logs, "2021/01/30/a.csv", "id,event_time,n\n1,01/30/2021 10:00:00,5\n2,01/30/2021 11:30:00,6\n")
    write(logs, "2021/01/30/b.csv", "when,id\n2021-01-30T09:00:00.250Z,3\n")
    # two columns parse as timestamps: no guess
    write(logs, "2021/01/30/c.csv", "created,updated\n2021-01-30 10:00:00,2021-01-30 11:00:00\n")
    out = tmp_path / "out"
    r = run(cli, "2021-01-30", "--source", str(logs), "--dest", str(out), "--json")
    assert r.code == 1
    report = r.json()
    assert [f["uri"].rsplit("/", 1)[1] for f in report["files_rejected"]] == ["c.csv"]
    reason = report["files_rejected"][0]["reason"]
    assert "2 columns (created, updated) parse as a timestamp" in reason and "--timestamp-column" in reason
    assert rows_of(out / "01--30--2021.csv") == [
        ["id", "date", "time", "n"],
        ["3", "2021-01-30", "09:00:00", ""],
        ["1", "2021-01-30", "10:00:00", "5"],
        ["2", "2021-01-30", "11:30:00", "6"],
    ]
    assert any("different columns" in w and "n" in w for w in report["warnings"])
    # naming the column re-stages the files under the new declaration: c.csv is now fine
    r = run(
        cli,
        "2021-01-30",
        "--source",
        str(logs),
        "--dest",
        str(out),
        "--timestamp-column",
        "updated",
        "--json",
    )
    assert r.code == 1  # a.csv and b.csv have no column "updated"
    assert sorted(f["uri"].rsplit("/", 1)[1] for f in r.json()["files_rejected"]) == ["a.csv", "b.csv"]
    assert rows_of(out / "01--30--2021.csv") == [
        ["created", "date", "time"],
        ["2021-01-30 10:00:00", "2021-01-30", "11:00:00"],
    ]


def test_different_column_sets_give_the_union_and_a_warning(cli, tmp_path):
    logs = tmp_path / "logs"
    write(logs, "2021/01/30/a.csv", "timestamp,user,page\n2021-01-30 10:00:00,u1,/home\n")
    write(logs, "2021/01/30/b.csv", "user,timestamp,device,page\nu2,2021-01-30 09:00:00,tv,/x\n")
    out = tmp_path / "out"
    r = run(cli, "2021-01-30", "--source", str(logs), "--dest", str(out))
    assert r.code == 0, r.err
    assert (
        "warning: 2021-01-30: input files have different columns; wrote their union, empty where a file lacks device"
        in r.out
    )
    assert (out / "01--30--2021.csv").read_text() == (
        # columns by their first position in any file, ties by name
        "date,time,user,device,page\n2021-01-30,09:00:00,u2,tv,/x\n2021-01-30,10:00:00,u1,,/home\n"
    )


def test_rows_differing_only_in_their_last_column_are_both_kept(cli, tmp_path):
    """DuckDB 2.0 merged these (a DISTINCT beside a struct unnest ignored the last column)."""
    logs = tmp_path / "logs"
    write(
        logs,
        "2021/01/30/a.csv",
        "timestamp,user,status\n"
        "2021-01-30 10:00:00,u1,\n"
        "2021-01-30 10:00:00,u1,200\n"
        "2021-01-30 10:00:00.250,u1,200\n"  # the same row once cut to the second
        "2021-01-30 10:00:00,u1,201\n",
    )
    out = tmp_path / "out"
    r = run(cli, "2021-01-30", "--source", str(logs), "--dest", str(out), "--json")
    assert r.code == 0, r.err
    assert r.json()["rows_unique"] == 4 and r.json()["rows_out"] == 3
    assert (out / "01--30--2021.csv").read_text() == (
        "date,time,user,status\n2021-01-30,10:00:00,u1,200\n2021-01-30,10:00:00,u1,201\n2021-01-30,10:00:00,u1,\n"
    )


def test_a_folder_with_no_files_is_a_clear_exit_1(cli, tmp_path):
    logs = tmp_path / "logs"
    (logs / "2021/01/30").mkdir(parents=True)
    r = run(cli, "01/30/2021", "--source", str(logs), "--dest", str(tmp_path / "out"))
    assert r.code == 1
    assert r.err.strip().splitlines()[-1] == (
        f"logroll: error: no input files for 2021-01-30 (looked in {logs}/2021/01/30) and nothing staged "
        "for it: check the date and --source"
    )
    assert "Traceback" not in r.err


def test_bad_headers_reject_the_file_and_clashing_output_names_fail_the_day(cli, tmp_path):
    logs = tmp_path / "logs"
    write(logs, "2021/01/30/a.csv", "timestamp,__secret\n2021-01-30 10:00:00,x\n")
    write(logs, "2021/01/30/b.csv", "timestamp,User,user\n2021-01-30 10:00:00,x,y\n")
    write(logs, "2021/01/31/c.csv", "timestamp,date\n2021-01-31 10:00:00,yesterday\n")
    out = tmp_path / "out"
    r = run(cli, "2021-01-30", "--source", str(logs), "--dest", str(out), "--lateness", "0", "--json")
    reasons = {f["uri"].rsplit("/", 1)[1]: f["reason"] for f in r.json()["files_rejected"]}
    assert "reserved for logroll" in reasons["a.csv"]
    assert "differ only in case" in reasons["b.csv"]
    r = run(cli, "2021-01-31", "--source", str(logs), "--dest", str(out), "--lateness", "0", "--json")
    assert r.code == 1
    failed = r.json()["partitions_failed"]
    assert failed and "column(s) date twice" in failed[0]["error"]
    assert not (out / "01--31--2021.csv").exists()


def test_status_lists_processed_days_and_files(cli, logs, tmp_path):
    out = tmp_path / "output"
    run(cli, "2021-01-30", "--source", str(logs), "--dest", str(out))
    r = cli("status", "consolidate", "--dest", str(out), "--json")
    assert r.code == 0, r.err
    info = r.json()
    assert {d["day"]: d["status"] for d in info["days"]}["2021-01-30"] == "built"
    processed = {Path(f["uri"]).name: f for f in info["processed"]}
    assert processed["app.csv"]["days"] == ["2021-01-29", "2021-01-30"]
    assert processed["app.csv"]["rows_read"] == 6 and processed["app.csv"]["rows_rejected"] == 1
    assert processed["web.csv"]["days"] == ["2021-01-30", "2021-01-31"]
    text = cli("status", "consolidate", "--dest", str(out), env={"COLUMNS": "250"})
    assert text.code == 0, text.err
    assert "processed files under" in text.out and "(2 of 2)" in text.out
    assert "app.csv" in text.out and "2021-01-29 .. 2021-01-30 (2)" in text.out


def _big_day(root: Path, files: int, rows: int, seed: int = 1) -> int:
    """`files` CSVs of `rows` rows for 2021-01-30 with many duplicates; returns the unique count."""
    rng = random.Random(seed)
    unique: set[tuple[str, ...]] = set()
    start = dt.datetime(2021, 1, 30)
    for f in range(files):
        lines = ["timestamp,user,url,agent,payload"]
        for _ in range(rows):
            ts = (start + dt.timedelta(seconds=rng.randrange(86400))).strftime("%Y-%m-%d %H:%M:%S")
            row = (ts, f"u{rng.randrange(2000)}", f"/p/{rng.randrange(50)}", "Mozilla/5.0 (X11)", "x" * 40)
            lines.append(",".join(row))
            unique.add(row)
            if rng.random() < 0.1:
                lines.append(",".join(row))
        write(root, f"2021/01/30/part{f}.csv", "\n".join(lines) + "\n")
    return len(unique)


def test_a_day_far_bigger_than_the_memory_limit(cli, tmp_path):
    logs = tmp_path / "logs"
    unique = _big_day(logs, files=4, rows=150_000)
    size = sum(p.stat().st_size for p in logs.rglob("*.csv"))
    # More CSV bytes than the engine may use, and about 3x that once parsed, deduplicated and
    # sorted: staging, the DISTINCT and the sort all spill. (DuckDB's sort needs ~40MB itself.)
    assert size > 55 * 2**20
    out = tmp_path / "out"
    r = run(
        cli,
        "2021-01-30",
        "--source",
        str(logs),
        "--dest",
        str(out),
        "--memory-limit",
        "40MB",
        "--threads",
        "1",
        "--json",
    )
    assert r.code == 0, r.err
    report = r.json()
    assert report["rows_unique"] == unique == report["rows_out"]
    target = out / "01--30--2021.csv"
    # checked with DuckDB on its own, without a memory limit
    got = duckdb.sql(
        f"SELECT count(*), count(DISTINCT (date, time, user, url, agent, payload)) FROM read_csv('{target}', all_varchar=true)"
    ).fetchall()[0]
    assert got == (unique, unique)
    with open(target) as fh:
        keys = [(line[:19]) for line in fh][1:]
    assert keys == sorted(keys)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from("abcdefgAB"), min_size=1, max_size=6, unique=True), min_size=1, max_size=5
    ),
    st.randoms(),
)
def test_union_of_columns_does_not_depend_on_file_order(lists, rng):
    shuffled = list(lists)
    rng.shuffle(shuffled)
    assert union_columns(lists) == union_columns(shuffled)
    order, partial = union_columns(lists)
    assert {c.lower() for c in order} == {c.lower() for names in lists for c in names}
    assert len(order) == len({c.lower() for c in order})


@settings(max_examples=100, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.sampled_from(TIMESTAMP_FORMATS),
)
def test_detection_and_staging_read_every_accepted_format_alike(value, fmt):
    """What detection (Python) accepts, staging (DuckDB) parses to the same instant."""
    from logroll.engines import sql
    from logroll.pipelines.consolidate import PIPELINE
    from logroll.pipelines.detect import _parses

    col = PIPELINE.column("timestamp")
    text = value.strftime(fmt)
    assert _parses(text, col)
    staged = duckdb.sql(f"SELECT {sql.typed_expr(col, sql.literal(text))}").fetchall()[0][0]
    assert staged == dt.datetime.strptime(text, fmt)
