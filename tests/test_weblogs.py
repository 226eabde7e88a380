"""`logroll run weblogs`: seed 003's two tables from files of JSON lines, through the real CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from logroll import demo
from weblogs_helpers import SAMPLE, db_tables, demo_reference_lines, event, quarantine_rows, read_tables
from weblogs_reference import tables

from conftest import tree_bytes, tree_mtimes


def _copy_sample(tmp_path: Path) -> Path:
    src = tmp_path / "events"
    src.mkdir()
    shutil.copy(SAMPLE, src / "source_event_data.json")
    return src


def test_hipages_sample_end_to_end(cli, tmp_path):
    src, dest = _copy_sample(tmp_path), tmp_path / "out"
    res = cli("run", "weblogs", "--source", str(src), "--dest", str(dest), "--json")
    assert res.code == 0, res.err
    report = res.json()
    assert (report["rows_read"], report["rows_valid"], report["rows_rejected"]) == (500, 500, 0)
    assert (report["rows_unique"], report["duplicates"]) == (500, 0)
    hits, stats = read_tables(dest)
    want_hits, want_stats, rejected = tables(SAMPLE.read_text().splitlines())
    assert rejected == 0
    assert hits == want_hits and stats == want_stats
    # figures of the sample, counted here by hand from the file
    assert sorted(hits) == [
        "2017-01-01", "2017-02-02", "2017-02-04", "2017-03-01", "2017-04-02", "2017-05-02", "2017-08-02", "2017-12-02",
    ]  # fmt: skip
    assert sum(len(v) for v in hits.values()) == 500
    assert sum(r[3] for v in stats.values() for r in v) == 500
    first = SAMPLE.read_text().splitlines()[0]
    assert '"url" : "https://www.hipages.com.au/articles"' in first
    assert ("56456", "2017-02-02 20:22:00", "hipages.com.au", "articles", "", "page_view") in hits[
        "2017-02-02"
    ]
    header = (dest / "user_web_hits" / "2017-02-02.csv").read_text().splitlines()[0]
    assert header == "user_id,time_stamp,url_level1,url_level2,url_level3,activity"
    header = (dest / "aggregated_web_stats" / "2017-02-02.csv").read_text().splitlines()[0]
    assert header == "time_bucket,url_level1,activity,activity_count,user_count"
    # hosts without www., without scheme, other sub-domains: as the rules say
    hosts = {r[2] for v in hits.values() for r in v}
    assert {"hipages.com.au", "w3.hipages.com.au", "petpages.com.au"} <= hosts and not any(
        h.startswith("www.") for h in hosts
    )


def test_staged_parts_carry_only_what_the_build_reads(cli, tmp_path):
    # The URL steps (url_trimmed ... url_path) only make the levels: a staged part without them
    # is ~40% fewer bytes to write and read back, and the outputs are the same (above).
    import duckdb

    src, dest = _copy_sample(tmp_path), tmp_path / "out"
    assert cli("run", "weblogs", "--source", str(src), "--dest", str(dest)).code == 0
    parts = sorted((dest / "_logroll" / "staged" / "weblogs").rglob("*.parquet"))
    assert parts
    want = ["event_id", "user_id", "action", "url", "timestamp", "url_level1", "url_level2", "url_level3"]
    for part in parts:
        cols = [
            r[0]
            for r in duckdb.sql(
                f"DESCRIBE SELECT * FROM read_parquet('{part}', hive_partitioning=false)"
            ).fetchall()
        ]
        assert cols == want, part


def test_every_reject_reason_is_quarantined_with_its_line(cli, tmp_path):
    ts = "02/02/2017 20:22:00"
    ok = "https://www.hipages.com.au/articles"
    lines = [
        event("e1", 1, "page_view", ok, ts),  # 1 valid
        "",  # 2 blank: skipped
        "   \t",  # 3 blank: skipped
        '{ "event_id" : "e4", "user" : { "id" : 56a56 }, "action" : "claim" }',  # 4
        "[1, 2]",  # 5
        '"just a string"',  # 6
        '{"user": {"id": 1}, "action": "claim", "url": "https://x.com/a", "timestamp": "' + ts + '"}',  # 7
        event("", 1, "claim", ok, ts),  # 8
        '{"event_id": "e9", "user": {"session_id": "1"}, "action": "claim", "url": "https://x.com", "timestamp": "'
        + ts
        + '"}',  # 9
        '{"event_id": "e10", "action": "claim", "url": "https://x.com/a", "timestamp": "' + ts + '"}',  # 10
        '{"event_id": "e11", "user": {"id": 1}, "url": "https://x.com/a", "timestamp": "' + ts + '"}',  # 11
        event("e12", 1, "claim", "", ts),  # 12
        '{"event_id": "e13", "user": {"id": 1}, "action": "claim", "url": "https://x.com/a"}',  # 13
        event("e14", 1, "claim", ok, "2017-02-02 20:22:00"),  # 14
        event("e15", 1, "claim", ok, "31/02/2017 20:22:00"),  # 15
        event("e16", 1, "claim", "/connect/sfelectrics", ts),  # 16
        event("e17", 1, "claim", "https://", ts),  # 17
        event("e18", {"id": 1}, "claim", ok, ts),  # 18
        event("e19", 1, "claim", ok, "02/02/17 20:22:00"),  # 19
        event("e20", 2, "claim", "hipages.com.au/connect/x", ts),  # 20 valid
        "42",  # 21
    ]
    src = tmp_path / "events"
    src.mkdir()
    data = (
        "\n".join(lines[:18]).encode()
        + b"\n\xff\xfe{not utf-8}\n"
        + "\r\n".join(lines[18:]).encode()
        + b"\r\n"
    )
    (src / "bad.json").write_bytes(data)
    dest = tmp_path / "out"
    res = cli("run", "weblogs", "--source", str(src), "--dest", str(dest), "--json")
    assert res.code == 0, res.err
    report = res.json()
    assert report["rows_read"] == report["rows_valid"] + report["rows_rejected"]
    assert (report["rows_read"], report["rows_valid"]) == (20, 2)
    (q,) = report["quarantine"]
    got = [(int(r["line"]), r["reason"]) for r in quarantine_rows(Path(q))]
    assert got == [
        (4, "invalid JSON"),
        (5, "not a JSON object"),
        (6, "not a JSON object"),
        (7, "missing event_id"),
        (8, "missing event_id"),
        (9, "missing user_id"),
        (10, "missing user_id"),
        (11, "missing action"),
        (12, "missing url"),
        (13, "missing timestamp"),
        (14, "bad timestamp: expected a timestamp like %d/%m/%Y %H:%M:%S, got '2017-02-02 20:22:00'"),
        (15, "bad timestamp: expected a timestamp like %d/%m/%Y %H:%M:%S, got '31/02/2017 20:22:00'"),
        (16, "URL has no host"),
        (17, "URL has no host"),
        (18, "bad user_id: expected a value at user.id, got a JSON object or array"),
        (19, "invalid UTF-8"),
        (20, "bad timestamp: expected a timestamp like %d/%m/%Y %H:%M:%S, got '02/02/17 20:22:00'"),
        (22, "not a JSON object"),
    ]
    raw = {int(r["line"]): r["raw_line"] for r in quarantine_rows(Path(q))}
    assert raw[4] == lines[3] and raw[19] == "\\xff\\xfe{not utf-8}" and raw[22] == "42"
    hits, _ = read_tables(dest)
    assert hits == {
        "2017-02-02": [
            ("1", "2017-02-02 20:22:00", "hipages.com.au", "articles", "", "page_view"),
            ("2", "2017-02-02 20:22:00", "hipages.com.au", "connect", "x", "claim"),
        ]
    }


def test_out_of_order_duplicates_and_late_events(cli, tmp_path):
    """Events shuffled across files and days, resent, and a day's late events arriving in a
    later folder: each day is right whatever the order, and a late file rebuilds its days."""
    src, dest = tmp_path / "events", tmp_path / "out"
    day1 = src / "2017" / "02" / "02"
    day1.mkdir(parents=True)
    a = [
        event("a", 1, "page_view", "https://www.hipages.com.au/find/plumbers", "02/02/2017 10:59:59"),
        event("b", 2, "page_view", "https://hipages.com.au/find/electricians", "03/02/2017 09:00:00"),
        event("c", 1, "page_view", "https://www.hipages.com.au/articles", "02/02/2017 10:00:00"),
        event(
            "a", 1, "page_view", "https://www.hipages.com.au/find/plumbers", "02/02/2017 10:59:59"
        ),  # resent
        event("d", 3, "claim", "https://www.hipages.com.au/articles", "02/02/2017 10:30:00"),
        event("e", 3, "page_view", "https://www.hipages.com.au/articles", "02/02/2017 10:45:00"),
    ]
    (day1 / "a.json").write_text("\n".join(a) + "\n")
    res = cli("run", "weblogs", "--source", str(src), "--dest", str(dest), "--json")
    assert res.code == 0, res.err
    assert (res.json()["rows_valid"], res.json()["duplicates"]) == (6, 1)
    hits, stats = read_tables(dest)
    assert (hits, stats) == tables(a)[:2]
    assert stats["2017-02-02"] == [
        ("2017020210", "hipages.com.au", "claim", 1, 1),
        ("2017020210", "hipages.com.au", "page_view", 3, 2),
    ]
    untouched = tree_mtimes(dest)["user_web_hits/2017-02-03.csv"]

    # late: the next day's folder brings 2 Feb events, one resent, one a differing duplicate of
    # "d" that sorts before it (the smaller row wins, whichever came first)
    day2 = src / "2017" / "02" / "03"
    day2.mkdir(parents=True)
    b = [
        event("f", 4, "page_view", "https://www.hipages.com.au/articles", "02/02/2017 10:10:00"),
        event("c", 1, "page_view", "https://www.hipages.com.au/articles", "02/02/2017 10:00:00"),
        event("d", 3, "button_click", "https://www.hipages.com.au/articles", "02/02/2017 10:30:00"),
        event("g", 4, "page_view", "https://www.hipages.com.au/articles", "02/02/2017 23:59:59"),
    ]
    (day2 / "b.json").write_text("\n".join(b) + "\n")
    res = cli("run", "weblogs", "--source", str(src), "--dest", str(dest), "--json")
    assert res.code == 0, res.err
    assert res.json()["partitions_built"] == ["2017-02-02"]
    hits, stats = read_tables(dest)
    assert (hits, stats) == tables(a + b)[:2]
    assert stats["2017-02-02"] == [
        ("2017020210", "hipages.com.au", "button_click", 1, 1),
        ("2017020210", "hipages.com.au", "page_view", 4, 3),
        ("2017020223", "hipages.com.au", "page_view", 1, 1),
    ]
    assert tree_mtimes(dest)["user_web_hits/2017-02-03.csv"] == untouched


def test_demo_data_matches_the_reference_and_reruns_change_nothing(cli, tmp_path):
    src, dest = tmp_path / "events", tmp_path / "out"
    demo.GENERATORS["weblogs"](src, days=3, rows=3000, start="2017-02-01")
    res = cli("run", "weblogs", "--source", str(src), "--dest", str(dest), "--json")
    assert res.code == 0, res.err
    report = res.json()
    lines = demo_reference_lines(src)
    want_hits, want_stats, rejected = tables(lines)
    assert report["rows_rejected"] == rejected > 0
    # the demo's anomalies include a gzip export and a Latin-1 one (its accented lines rejected)
    assert any(f.name.endswith(".json.gz") for f in src.rglob("*"))
    assert report["files_staged"] == len(list(src.rglob("*.json*")))
    reasons = [r["reason"] for q in report["quarantine"] for r in quarantine_rows(Path(q))]
    assert reasons.count("invalid UTF-8") == sum(1 for ln in lines if ln == "{not UTF-8") > 0
    assert report["rows_valid"] == report["rows_unique"] + report["duplicates"]
    assert read_tables(dest) == (want_hits, want_stats)
    before, mtimes = tree_bytes(dest), tree_mtimes(dest)
    again = cli("run", "weblogs", "--source", str(src), "--dest", str(dest))
    assert again.code == 0 and "nothing to do" in again.out
    assert tree_bytes(dest) == before and tree_mtimes(dest) == mtimes


def test_parquet_format(cli, tmp_path):
    src = _copy_sample(tmp_path)
    res = cli("run", "weblogs", "--source", str(src), "--dest", str(tmp_path / "pq"), "--format", "parquet")
    assert res.code == 0, res.err
    assert read_tables(tmp_path / "pq", "parquet") == tables(SAMPLE.read_text().splitlines())[:2]
    bad = cli("run", "weblogs", "--source", str(src), "--dest", str(tmp_path / "x"), "--format", "xml")
    assert bad.code == 2 and "--format 'xml': use one of csv, parquet" in bad.err


def test_duckdb_destination_replaces_a_days_rows(cli, tmp_path):
    src = _copy_sample(tmp_path)
    db = tmp_path / "db" / "weblogs.duckdb"
    url = f"duckdb:///{db}"
    res = cli("run", "weblogs", "--source", str(src), "--dest", url, "--work-dir", str(tmp_path / "wd"))
    assert res.code == 0, res.err
    want = tables(SAMPLE.read_text().splitlines())[:2]
    with duckdb.connect(str(db), read_only=True) as con:
        assert db_tables(con) == want
    again = cli("run", "weblogs", "--source", str(src), "--dest", url, "--work-dir", str(tmp_path / "wd"))
    assert again.code == 0 and "nothing to do" in again.out
    # a late file for 2 Feb 2017: that day's rows are replaced, the others stay
    late = event("late-1", 7, "claim", "https://www.hipages.com.au/articles", "02/02/2017 20:59:00")
    (src / "late.json").write_text(late + "\n")
    res = cli(
        "run", "weblogs", "--source", str(src), "--dest", url, "--work-dir", str(tmp_path / "wd"), "--json"
    )
    assert res.code == 0, res.err
    assert res.json()["partitions_built"] == ["2017-02-02"]
    with duckdb.connect(str(db), read_only=True) as con:
        assert db_tables(con) == tables([*SAMPLE.read_text().splitlines(), late])[:2]


def test_postgresql_destination(cli, tmp_path, pg_url):
    import psycopg

    src = _copy_sample(tmp_path)
    (src / "bad.json").write_text('{"event_id": "x"}\n')
    res = cli(
        "run", "weblogs", "--source", str(src), "--dest", pg_url, "--work-dir", str(tmp_path / "wd"), "--json"
    )
    assert res.code == 0, res.err
    with psycopg.connect(pg_url) as con:
        assert db_tables(con) == tables(SAMPLE.read_text().splitlines())[:2]
        rows = con.execute("SELECT source_file, line, reason FROM _logroll_quarantine").fetchall()
    assert rows == [(str(src / "bad.json"), 1, "missing user_id")]
    assert res.json()["quarantine"] == [f"{pg_url}#_logroll_quarantine"]


def test_a_table_destination_needs_day_columns(cli, tmp_path):
    res = cli("run", "weblogs", "--source", str(tmp_path), "--dest", "parquet:///" + str(tmp_path / "p"))
    assert res.code == 2 and "use --dest FOLDER --format parquet" in res.err


@pytest.mark.parametrize("dest", ["duckdb:///x.duckdb#t"])
def test_a_table_destination_takes_no_table_name(cli, tmp_path, dest):
    res = cli("run", "weblogs", "--source", str(tmp_path), "--dest", dest, cwd=tmp_path)
    assert res.code == 2 and "drop the #table" in res.err
