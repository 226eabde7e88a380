"""The ingest pipeline end to end on a real PostgreSQL (tests/pg.py), through the real CLI.

Each test gets a fresh database; state and destination share it unless said otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import psycopg
import pyarrow.dataset as ds
import pytest

from logroll import ingest
from logroll.demo.ingest import credit

ROWS_PER_FILE = 50


def drops(directory: Path, files: int, first_row: int = 1, name: str = "credit") -> int:
    """`files` CSV drops of ROWS_PER_FILE rows each, numbered from first_row; returns the row count."""
    credit(
        directory,
        days=1,
        files_per_day=files,
        rows=files * ROWS_PER_FILE,
        bad_rows=False,
        first_row=first_row,
        name=name,
    )
    return files * ROWS_PER_FILE


def worker(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`logroll work ingest ARGS` in the background, as a user would start several."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("LOGROLL_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "logroll.cli", "work", "ingest", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )


def query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url.split("#")[0]) as conn:
        return conn.execute(sql).fetchall()


def job_rows(url: str) -> list[tuple]:
    return query(url, "SELECT id, status, attempts, worker, failure_msg FROM ingest_jobs ORDER BY id")


def assert_exactly_once(url: str, expected_rows: int, files: int) -> None:
    total, distinct, sources = query(
        url, 'SELECT count(*), count(DISTINCT column0), count(DISTINCT _source_file) FROM "credit"'
    )[0]
    assert (total, distinct, sources) == (expected_rows, expected_rows, files)
    ledger = query(url, "SELECT count(*), sum(rows) FROM _logroll_loads WHERE table_name = 'credit'")[0]
    assert ledger == (files, expected_rows)


@pytest.mark.slow
def test_four_workers_200_files_every_row_exactly_once(cli, pg_url, tmp_path):
    src = tmp_path / "drops"
    rows = drops(src, 200)
    size = sum(p.stat().st_size for p in src.iterdir())
    scanned = cli(
        "scan",
        "ingest",
        "--source",
        str(src),
        "--state",
        pg_url,
        "--batch-bytes",
        str(size // 40),
        "--flush",
        "--json",
    )
    assert scanned.code == 0, scanned.err
    report = scanned.json()
    assert report["files_new"] == 200 and len(report["jobs_created"]) >= 35
    dest = pg_url + "#credit"
    procs = [worker("--state", pg_url, "--dest", dest, "--lease", "20s") for _ in range(4)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [o[1][-2000:] for o in outs]
    reports = [json.loads(o[0]) for o in outs]
    assert_exactly_once(pg_url, rows, 200)
    jobs = job_rows(pg_url)
    assert {j[1] for j in jobs} == {"LOADED"}
    assert all(j[2] == 1 for j in jobs)  # nobody lost a lease, nothing was retried
    # The jobs were shared: more than one worker loaded some, and none was loaded twice.
    assert len({j[3] for j in jobs}) >= 2
    loaded = sorted(j for r in reports for j in r["jobs_loaded"])
    assert loaded == sorted(j[0] for j in jobs)
    assert sum(r["rows_loaded"] for r in reports) == rows
    assert query(pg_url, "SELECT DISTINCT status FROM ingest_files") == [("SENT_FOR_ETL",)]


@pytest.mark.slow
def test_worker_killed_mid_load_is_taken_over_without_duplicates(cli, pg_url, tmp_path):
    src = tmp_path / "drops"
    rows = drops(src, 6)
    ingest.scan(source=str(src), state=pg_url, flush=True)
    assert len(job_rows(pg_url)) == 1  # all six files in one job
    dest = pg_url + "#credit"
    # SIGKILL inside the 3rd file's transaction: rows copied, ledger row written, not committed.
    killed = worker(
        "--state",
        pg_url,
        "--dest",
        dest,
        "--lease",
        "2s",
        env={"LOGROLL_FAULT_AT": "ingest.loaded_uncommitted:3"},
    )
    killed.communicate(timeout=120)
    assert killed.returncode == -9
    [(job, status, attempts, first_worker, _)] = job_rows(pg_url)
    assert (status, attempts) == ("PROCESSING", 1)
    assert query(pg_url, 'SELECT count(*) FROM "credit"') == [(2 * ROWS_PER_FILE,)]  # two files committed
    # State and destination are one database: each file's scanner row committed with its rows.
    assert query(pg_url, "SELECT load_status, count(*) FROM ingest_files GROUP BY 1 ORDER BY 1") == [
        ("loaded", 2),
        (None, 4),
    ]
    time.sleep(2.5)  # the dead worker's lease runs out
    second = worker("--state", pg_url, "--dest", dest)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    report = json.loads(out)
    assert report["jobs_loaded"] == [job], (err, job_rows(pg_url))
    assert (report["files_skipped"], report["files_loaded"]) == (2, 4)  # the ledger had the first two
    assert_exactly_once(pg_url, rows, 6)
    [(_, status, attempts, second_worker, _)] = job_rows(pg_url)
    assert (status, attempts) == ("LOADED", 2) and second_worker != first_worker


def test_poisoned_files_fail_their_job_with_the_reason_others_load(cli, pg_url, tmp_path):
    src = tmp_path / "drops"
    rows = drops(src, 4)
    # A file with an extra column, and one whose every value is the wrong type.
    header = (src / "credit_20210129_00.csv").read_text().splitlines()[0]
    (src / "poison_extra.csv").write_text(header + ",surprise\n" + "99999," * 12 + "x\n")
    (src / "poison_types.csv").write_text(header + "\n" + "\n".join(["a,b,c,d,e,f,g,h,i,j,k,l"] * 3) + "\n")
    assert (
        cli("scan", "ingest", "--source", str(src), "--state", pg_url, "--batch-bytes", "1", "--json").code
        == 0
    )
    assert len(job_rows(pg_url)) == 6  # one job per file
    result = cli("work", "ingest", "--state", pg_url, "--dest", pg_url + "#credit", "--json")
    assert result.code == 1  # some job failed for good
    report = result.json()
    assert len(report["jobs_loaded"]) == 4 and len(report["jobs_failed"]) == 2
    reasons = " | ".join(j["reason"] for j in report["jobs_failed"])
    assert "poison_extra.csv: header does not match the schema: extra column(s) surprise" in reasons
    assert "poison_types.csv: none of its 3 rows fits the schema" in reasons
    assert_exactly_once(pg_url, rows, 4)  # the poisoned files did not touch the table
    status = cli("status", "ingest", "--state", pg_url, "--json").json()
    assert status["jobs"] == {"NEW": 0, "PROCESSING": 0, "LOADED": 4, "FAILED": 2}
    failed = {Path(f["files"][0]).name: f for f in status["failures"]}
    assert set(failed) == {"poison_extra.csv", "poison_types.csv"}
    assert "logroll retry" in failed["poison_extra.csv"]["failure_msg"]
    # Fixed in place and requeued: the job loads, and the others are untouched.
    (src / "poison_extra.csv").write_text(header + "\n" + "99999," * 11 + "1\n")
    job = failed["poison_extra.csv"]["job"]
    again = cli("retry", str(job), "--state", pg_url)
    assert again.code == 0 and again.out.strip() == f"job {job}: FAILED -> NEW; a worker will pick it up"
    assert cli("work", "ingest", "--state", pg_url, "--dest", pg_url + "#credit").code == 0
    assert query(pg_url, f"SELECT status FROM ingest_jobs WHERE id = {job}") == [("LOADED",)]
    assert query(pg_url, 'SELECT count(*) FROM "credit" WHERE column0 = 99999') == [(1,)]
    assert query(pg_url, 'SELECT count(*) FROM "credit"') == [(rows + 1,)]


def test_transient_errors_back_off_then_fail_with_the_stack_trace(cli, pg_url, tmp_path):
    src = tmp_path / "drops"
    rows = drops(src, 2)
    ingest.scan(source=str(src), state=pg_url, batch_bytes=1)
    dest = pg_url + "?options=-c%20lock_timeout%3D300#credit"
    # The first job creates the table; then a reader's exclusive lock makes the next load time out.
    assert ingest.work(state=pg_url, dest=dest, max_jobs=1).jobs_loaded == [1]
    args = (
        "work",
        "ingest",
        "--state",
        pg_url,
        "--dest",
        dest,
        "--max-attempts",
        "2",
        "--backoff",
        "6s",
        "--json",
    )
    with psycopg.connect(pg_url) as locker:
        locker.execute('LOCK TABLE "credit" IN ACCESS EXCLUSIVE MODE')
        try1 = cli(*args)
        assert try1.code == 0, try1.err
        [retrying] = try1.json()["jobs_retrying"]
        assert "lock timeout" in retrying["reason"]
        job, status, attempts, _, msg = job_rows(pg_url)[1]
        assert (status, attempts) == ("NEW", 1) and "attempt 1 of 2 failed" in msg
        # Still backing off: nothing to claim (in-process, to check well within the backoff).
        idle = ingest.work(state=pg_url, dest=dest, max_attempts=2, backoff="6s")
        assert (idle.jobs_retrying, idle.jobs_failed, idle.jobs_loaded) == ([], [], [])
        assert job_rows(pg_url)[1][1:3] == ("NEW", 1)
        [(wait,)] = query(
            pg_url,
            f"SELECT extract(epoch FROM not_before - (now() at time zone 'utc')) FROM ingest_jobs WHERE id = {job}",
        )
        time.sleep(max(0.0, float(wait)) + 0.3)
        try2 = cli(*args)
        assert try2.code == 1, try2.out + try2.err
        job, status, attempts, _, msg = job_rows(pg_url)[1]
        assert (status, attempts) == ("FAILED", 2)
        assert "lock timeout" in msg.splitlines()[0] and "Traceback (most recent call last)" in msg
    assert cli("retry", str(job), "--state", pg_url).code == 0
    assert cli("work", "ingest", "--state", pg_url, "--dest", dest).code == 0
    assert_exactly_once(pg_url, rows, 2)


def test_scan_resumes_after_a_crash_and_each_file_is_in_one_job(cli, tmp_path):
    src = tmp_path / "drops"
    credit(src, days=1, files_per_day=620, rows=620, bad_rows=False)  # scan commits 500 rows at a time
    state = str(tmp_path / "state.sqlite")
    args = ("scan", "ingest", "--source", str(src), "--state", state, "--batch-bytes", "2KB")
    crashed = cli(*args, env={"LOGROLL_FAULT_AT": "scan.recorded:1"})
    assert crashed.code == -9
    status = cli("status", "ingest", "--state", state, "--json").json()
    assert status["files"]["scanned"] == 500 and sum(status["jobs"].values()) == 0
    again = cli(*args, "--flush", "--json")
    assert again.code == 0, again.err
    report = again.json()
    assert (report["files_new"], report["files_known"]) == (120, 500)
    import sqlite3

    with sqlite3.connect(state) as db:
        in_jobs = [f for (files,) in db.execute("SELECT files FROM ingest_jobs") for f in json.loads(files)]
        per_file = db.execute(
            "SELECT count(*), count(DISTINCT file_name), min(status) FROM ingest_files"
        ).fetchone()
    assert sorted(in_jobs) == sorted(str(p) for p in src.iterdir()) and len(set(in_jobs)) == 620
    assert per_file == (620, 620, "SENT_FOR_ETL")


def test_scan_window_overlap_and_files_appearing_between_scans(cli, tmp_path):
    src = tmp_path / "drops"
    rows = drops(src, 3)
    state = str(tmp_path / "state.sqlite")
    dest = f"duckdb:///{tmp_path}/credit.duckdb"
    scan = ("scan", "ingest", "--source", str(src), "--state", state, "--flush", "--json")
    work = ("work", "ingest", "--state", state, "--dest", dest, "--json")
    assert cli(*scan).json()["files_new"] == 3
    assert cli(*work).json()["rows_loaded"] == rows
    # Nothing new: nothing recorded, no job, no load.
    quiet = cli(*scan).json()
    assert (quiet["files_new"], quiet["jobs_created"]) == (0, [])
    assert cli(*work).json()["jobs_loaded"] == []
    # New drops, one of them stamped a bit older than the newest file seen (a store listing late).
    more = drops(src, 2, first_row=10_000, name="later")
    newest = max(p.stat().st_mtime for p in src.iterdir() if p.name.startswith("credit"))
    os.utime(src / "later_20210129_00.csv", (newest - 600, newest - 600))
    # And one much older than the overlap window: only a --full scan finds it.
    drops(src, 1, first_row=20_000, name="ancient")
    os.utime(src / "ancient_20210129_00.csv", (newest - 7200, newest - 7200))
    found = cli(*scan).json()
    assert found["files_new"] == 2 and found["files_known"] == 3
    assert cli(*work).json()["rows_loaded"] == more
    assert cli(*scan, "--full").json()["files_new"] == 1
    assert cli(*work).json()["rows_loaded"] == ROWS_PER_FILE
    with duckdb.connect(f"{tmp_path}/credit.duckdb", read_only=True) as con:
        total, distinct = con.execute('SELECT count(*), count(DISTINCT column0) FROM "credit"').fetchone()
    assert total == distinct == rows + more + ROWS_PER_FILE


def test_batches_wait_for_size_or_max_wait(tmp_path):
    src = tmp_path / "drops"
    drops(src, 3)
    sizes = [p.stat().st_size for p in sorted(src.iterdir())]
    state = str(tmp_path / "state.sqlite")
    batch = sizes[0] + sizes[1]
    # The first two files fill a batch; the third waits for more files or for --max-wait.
    first = ingest.scan(source=str(src), state=state, batch_bytes=batch, max_wait="1h")
    assert len(first.jobs_created) == 1 and first.files_waiting == 1
    assert ingest.scan(source=str(src), state=state, batch_bytes=batch, max_wait="1h").jobs_created == []
    late = ingest.scan(source=str(src), state=state, batch_bytes=batch, max_wait="0s")
    assert len(late.jobs_created) == 1 and late.files_waiting == 0
    jobs = ingest.status(state=state)["recent_jobs"]
    assert sorted(j["files"] for j in jobs) == [1, 2]


@pytest.mark.slow
def test_readers_see_only_whole_loads_while_workers_write(cli, pg_url, tmp_path):
    src = tmp_path / "drops"
    rows = drops(src, 40)
    ingest.scan(source=str(src), state=pg_url, batch_bytes=1)
    # The first load creates the table, so the readers have something to read from the start.
    assert ingest.work(state=pg_url, dest=pg_url + "#credit", max_jobs=1).jobs_loaded == [1]
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while not stop.is_set():
                # One statement, one snapshot: the rows and the ledger that says what is loaded.
                seen.append(
                    conn.execute(
                        "SELECT (SELECT count(*) FROM credit), (SELECT coalesce(sum(rows), 0) FROM _logroll_loads)"
                    ).fetchone()
                )

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for r in readers:
        r.start()
    procs = [worker("--state", pg_url, "--dest", pg_url + "#credit") for _ in range(2)]
    for p in procs:
        p.communicate(timeout=240)
    stop.set()
    for r in readers:
        r.join()
    assert [p.returncode for p in procs] == [0, 0]
    assert len(seen) > 20
    assert all(count == ledger and count % ROWS_PER_FILE == 0 for count, ledger in seen), seen[:10]
    assert len({c for c, _ in seen}) > 3  # the readers really saw the loads happen
    assert_exactly_once(pg_url, rows, 40)


def test_parquet_destination_whole_files_any_reader(cli, tmp_path):
    src = tmp_path / "drops"
    credit(src, days=1, files_per_day=5, rows=500)  # with one bad row in each file but the first
    dest = tmp_path / "credit"
    run = cli("run", "ingest", "--source", str(src), "--dest", f"parquet:///{dest}/", "--json")
    assert run.code == 0, run.err
    report = run.json()
    assert report["work"]["rows_loaded"] == 500 and report["work"]["rows_rejected"] == 4
    assert report["work"]["rows_read"] == 504
    table = ds.dataset(dest, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 500 and len(set(table["column0"].to_pylist())) == 500
    assert {"load_date", "_source_file", "_loaded_at"} <= set(table.column_names)
    with duckdb.connect() as con:
        n = con.execute(f"SELECT count(*) FROM read_parquet('{dest}/load_date=*/*.parquet')").fetchone()[0]
    assert n == 500
    data = sorted(p.relative_to(dest) for p in dest.rglob("*.parquet") if "_logroll" not in p.parts)
    assert len(data) == 5 and all(str(p).startswith("load_date=") for p in data)
    assert not [p for p in dest.rglob("*.tmp")]
    # The quarantine lists each bad row with its reason.
    quarantined = sorted((dest / "_logroll" / "work" / "quarantine").glob("*.rejects.csv"))
    assert (
        len(quarantined) == 4 and "bad age: expected an integer, got 'unknown'" in quarantined[0].read_text()
    )
    # A rerun with nothing new writes nothing.
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*.parquet")}
    again = cli("run", "ingest", "--source", str(src), "--dest", f"parquet:///{dest}/", "--json").json()
    assert again["scan"]["files_new"] == 0 and again["work"]["jobs_loaded"] == []
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*.parquet")} == before


def test_duckdb_destination_two_workers_share_the_file(cli, tmp_path):
    src = tmp_path / "drops"
    rows = drops(src, 12)
    state = str(tmp_path / "state.sqlite")
    ingest.scan(source=str(src), state=state, batch_bytes=1)
    dest = f"duckdb:///{tmp_path}/wh.duckdb#credit"
    procs = [worker("--state", state, "--dest", dest) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-1500:] for o in outs]
    assert sum(json.loads(o[0])["files_loaded"] for o in outs) == 12
    with duckdb.connect(f"{tmp_path}/wh.duckdb", read_only=True) as con:
        total, distinct, nulls = con.execute(
            'SELECT count(*), count(DISTINCT column0), count(*) - count("MonthlyIncome") FROM "credit"'
        ).fetchone()
        ledger = con.execute("SELECT count(*), sum(rows) FROM _logroll_loads").fetchone()
    assert (total, distinct) == (rows, rows) and ledger == (12, rows)
    assert nulls > 0  # NA became NULL


def test_declared_schema_and_a_file_that_does_not_match(cli, tmp_path):
    src = tmp_path / "drops"
    src.mkdir()
    (src / "a.csv").write_text("id,amount,day\n1,1.5,2021-01-02\n2,NA,\n3,,2021-01-03\n")
    (src / "b.csv").write_text("id,amount\n4,2.5\n")  # lacks a column
    (tmp_path / "logroll.yaml").write_text(
        "ingest:\n"
        "  source: drops\n"
        f"  dest: duckdb:///{tmp_path}/declared.duckdb#t\n"
        "  columns:\n"
        "    - {name: id, type: integer}\n"
        "    - {name: amount, type: float}\n"
        "    - {name: day, type: date}\n"
    )
    run = cli("run", "ingest", "--json", cwd=tmp_path)
    assert run.code == 1
    report = run.json()
    assert report["work"]["rows_loaded"] == 3
    [failed] = report["work"]["jobs_failed"]
    assert "b.csv: header does not match the schema: missing column(s) day" in failed["reason"]
    with duckdb.connect(f"{tmp_path}/declared.duckdb", read_only=True) as con:
        got = con.execute('SELECT id, amount, "day" FROM t ORDER BY id').fetchall()
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't'"
            ).fetchall()
        )
    import datetime as dt

    assert got == [(1, 1.5, dt.date(2021, 1, 2)), (2, None, None), (3, None, dt.date(2021, 1, 3))]
    assert (types["id"], types["amount"], types["day"]) == ("BIGINT", "DOUBLE", "DATE")
    status = cli("status", "ingest", "--json", cwd=tmp_path).json()
    assert status["schema"]["origin"] == "declared in logroll.yaml"


def test_usage_errors_are_one_line_with_what_to_do(cli, tmp_path):
    wrong = cli("scan", "impressions", "--source", str(tmp_path), "--state", str(tmp_path / "s.sqlite"))
    assert wrong.code == 2 and "use `logroll scan ingest`" in wrong.err
    no_dest = cli("work", "ingest", "--state", str(tmp_path / "s.sqlite"))
    assert no_dest.code == 2 and "no destination given: pass --dest" in no_dest.err
    no_table = cli(
        "work", "ingest", "--state", str(tmp_path / "s.sqlite"), "--dest", "postgresql://u:pw@127.0.0.1/db"
    )
    assert (
        no_table.code == 2
        and "name the table in --dest: postgresql://u:***@127.0.0.1/db#credit" in no_table.err
    )
    bad_size = cli(
        "scan",
        "ingest",
        "--source",
        str(tmp_path),
        "--state",
        str(tmp_path / "s.sqlite"),
        "--batch-bytes",
        "lots",
    )
    assert bad_size.code == 2 and "--batch-bytes 'lots'" in bad_size.err
    missing = cli("retry", "42", "--state", str(tmp_path / "s.sqlite"))
    assert missing.code == 2 and "no job 42 in this state" in missing.err
    for r in (wrong, no_dest, no_table, bad_size, missing):
        assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_a_scan_started_while_another_runs_exits_0_and_does_nothing(cli, tmp_path):
    from logroll.catalog.lock import RunLock
    from logroll.ingest.tables import open_catalog

    src = tmp_path / "drops"
    drops(src, 2)
    state = str(tmp_path / "state.sqlite")
    catalog = open_catalog(state)
    with RunLock(catalog, "ingest.scan"):  # a scan in progress, as cron would find it
        busy = cli("scan", "ingest", "--source", str(src), "--state", state, "--json")
    assert busy.code == 0, busy.err
    assert (busy.json()["status"], busy.json()["files_new"]) == ("busy", 0)
    after = cli("scan", "ingest", "--source", str(src), "--state", state, "--json").json()
    assert (after["status"], after["files_new"]) == ("ok", 2)


def test_one_state_feeds_one_destination(tmp_path, monkeypatch):
    src = tmp_path / "drops"
    drops(src, 1)
    state = str(tmp_path / "state.sqlite")
    ingest.scan(source=str(src), state=state, flush=True)
    assert ingest.work(state=state, dest=f"parquet:///{tmp_path}/a/").rows_loaded == ROWS_PER_FILE
    from logroll.errors import UsageError

    with pytest.raises(UsageError, match=r"this state's jobs load into parquet:///.*/a/, not duckdb:///"):
        ingest.work(state=state, dest=f"duckdb:///{tmp_path}/b.duckdb")
    # The same destination spelled differently (relative path) is the same destination.
    monkeypatch.chdir(tmp_path)
    assert ingest.work(state=state, dest="parquet:///a").jobs_loaded == []


def test_s3_source_scanned_and_loaded_exactly_once(cli, moto_server, s3_bucket, s3_env, pg_url, tmp_path):
    local = tmp_path / "drops"
    rows = drops(local, 3)
    client = moto_server.client()
    for p in sorted(local.iterdir()):
        client.upload_file(str(p), s3_bucket, f"credit/{p.name}")
    source = f"s3://{s3_bucket}/credit/"
    endpoint = ("--endpoint-url", moto_server.endpoint_url)
    scanned = cli(
        "scan", "ingest", "--source", source, "--state", pg_url, "--flush", *endpoint, "--json", env=s3_env
    )
    assert scanned.code == 0, scanned.err
    assert scanned.json()["files_new"] == 3
    worked = cli("work", "ingest", "--dest", pg_url + "#credit", *endpoint, "--json", env=s3_env)
    assert worked.code == 0, worked.err
    assert_exactly_once(pg_url, rows, 3)
    assert query(pg_url, "SELECT min(_source_file) FROM credit") == [(f"{source}credit_20210129_00.csv",)]
    again = cli(
        "scan", "ingest", "--source", source, "--state", pg_url, *endpoint, "--json", env=s3_env
    ).json()
    assert (again["files_new"], again["files_known"]) == (0, 3)


def test_sigterm_hands_the_job_back_and_exits_0(pg_url, tmp_path):
    import signal

    src = tmp_path / "drops"
    rows = drops(src, 30)
    ingest.scan(source=str(src), state=pg_url, flush=True)  # one job of 30 files
    proc = worker("--dest", pg_url + "#credit", "--follow", "--poll", "0.2")
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the first file is committed
        if " INFO loaded " in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["stopped"] is True and report["jobs_loaded"] == []
    [(job, status, attempts, worker_id, _)] = job_rows(pg_url)
    assert (status, attempts, worker_id) == ("NEW", 0, None)
    committed = report["files_loaded"]
    assert 1 <= committed < 30
    finish = ingest.work(dest=pg_url + "#credit")
    assert (finish.jobs_loaded, finish.files_skipped, finish.files_loaded) == (
        [job],
        committed,
        30 - committed,
    )
    assert_exactly_once(pg_url, rows, 30)


def test_header_only_and_empty_files(tmp_path):
    src = tmp_path / "drops"
    rows = drops(src, 1)
    header = (src / "credit_20210129_00.csv").read_text().splitlines()[0]
    (src / "z_header_only.csv").write_text(header + "\n")
    (src / "z_empty.csv").write_text("")
    state = str(tmp_path / "state.sqlite")
    ingest.scan(source=str(src), state=state, batch_bytes=1)
    report = ingest.work(state=state, dest=f"duckdb:///{tmp_path}/c.duckdb")
    assert report.rows_loaded == rows and len(report.jobs_loaded) == 2
    [failed] = report.jobs_failed
    assert "z_empty.csv: the file is empty (no header)" in failed["reason"]
    with duckdb.connect(f"{tmp_path}/c.duckdb", read_only=True) as con:
        ledger = dict(con.execute("SELECT source, rows FROM _logroll_loads").fetchall())
    assert ledger[str(src / "z_header_only.csv")] == 0  # loaded, with nothing in it


def test_logroll_yaml_with_an_ingest_section_stays_valid_for_every_command(cli, tmp_path):
    (tmp_path / "logroll.yaml").write_text(
        "memory_limit: 1GB\ningest:\n  source: drops\n  batch_bytes: 64MB\n  columns: [{name: id, type: integer}]\n"
    )
    checked = cli("validate", cwd=tmp_path)
    assert checked.code == 0, checked.err
