"""Ingest on the files people really get (issues 13, 14): a value the destination refuses, a bad
or vanished first file, through the real CLI on a real PostgreSQL (tests/pg.py)."""

from __future__ import annotations

import psycopg

HEADER = "id,name\n"


def query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url.split("#")[0]) as conn:
        return conn.execute(sql).fetchall()


def test_a_value_the_destination_refuses_fails_its_job_at_once_and_the_others_load(cli, pg_url, tmp_path):
    """A data error (here PostgreSQL's "integer out of range" for a table made with an int4
    column) fails the same way on every attempt: the job is FAILED at its first attempt with the
    reason, never retried, the other files load, and `run ingest` exits 1."""
    src = tmp_path / "drops"
    src.mkdir()
    (src / "a.csv").write_text(HEADER + "1,x\n2,y\n")
    (src / "b.csv").write_text(HEADER + "3000000000,too big for int4\n")
    (src / "c.csv").write_text(HEADER + "4,z\n")
    with psycopg.connect(pg_url) as conn:
        conn.execute('CREATE TABLE t (id integer, name text, "_source_file" text, "_loaded_at" timestamp)')
    (tmp_path / "logroll.yaml").write_text(
        "ingest:\n  columns:\n    - {name: id, type: integer}\n    - {name: name, type: string}\n"
    )
    run = cli("run", "ingest", "--source", str(src), "--dest", pg_url + "#t", "--json", cwd=tmp_path)
    assert run.code == 1, run.err
    report = run.json()
    assert report["status"] == "failed"
    [failed] = report["work"]["jobs_failed"]
    assert "b.csv" in failed["reason"] and "refused a value" in failed["reason"], failed
    assert "out of range for type integer" in failed["reason"]
    assert report["work"]["jobs_retrying"] == []
    # one job holds the three files (run ingest flushes the scan): it failed at its first
    # attempt, its other files loaded
    assert query(pg_url, "SELECT status, attempts FROM ingest_jobs") == [("FAILED", 1)]
    assert query(pg_url, "SELECT id FROM t ORDER BY id") == [(1,), (2,), (4,)]


def test_a_bad_first_file_never_blocks_the_others(cli, pg_url, tmp_path):
    """The first file scanned repeats a header column: the schema comes from the next good file,
    the bad one fails its own job naming itself; removed later, its retry says it is gone."""
    src = tmp_path / "drops"
    src.mkdir()
    (src / "a_first.csv").write_text("id,name,id\n1,x,1\n")
    (src / "b.csv").write_text(HEADER + "2,y\n")
    (src / "c.csv").write_text(HEADER + "3,z\n")
    run = cli("run", "ingest", "--source", str(src), "--dest", pg_url + "#t", "--json")
    assert run.code == 1, run.err
    report = run.json()
    [failed] = report["work"]["jobs_failed"]
    assert "a_first.csv" in failed["reason"] and "repeated column(s) id" in failed["reason"], failed
    assert report["work"]["rows_loaded"] == 2
    assert "cannot infer the schema from" in run.err and "a_first.csv" in run.err
    status = cli("status", "ingest", "--state", pg_url, "--json").json()
    assert status["schema"]["origin"] == f"inferred from {src / 'b.csv'}"
    (src / "a_first.csv").unlink()
    job = query(pg_url, "SELECT id FROM ingest_jobs WHERE status = 'FAILED'")[0][0]
    assert cli("retry", str(job), "--state", pg_url).code == 0
    again = cli("work", "ingest", "--state", pg_url, "--dest", pg_url + "#t", "--json")
    assert again.code == 1 and "unexpected" not in again.err
    [gone] = again.json()["jobs_failed"]
    assert "a_first.csv: the file is gone from the source" in gone["reason"]


def test_a_vanished_first_file_never_blocks_the_others(cli, tmp_path):
    src = tmp_path / "drops"
    src.mkdir()
    (src / "a_first.csv").write_text(HEADER + "1,x\n")
    (src / "b.csv").write_text(HEADER + "2,y\n")
    state, dest = str(tmp_path / "state.sqlite"), f"duckdb:///{tmp_path}/t.duckdb#t"
    assert cli("scan", "ingest", "--source", str(src), "--state", state, "--batch-bytes", "1").code == 0
    (src / "a_first.csv").unlink()
    work = cli("work", "ingest", "--state", state, "--dest", dest, "--json")
    assert work.code == 1 and "unexpected" not in work.err, work.err
    report = work.json()
    assert (
        report["rows_loaded"] == 1
        and "the file is gone from the source" in report["jobs_failed"][0]["reason"]
    )


def test_compressed_drops_load_like_the_plain_files(cli, pg_url, tmp_path):
    """a.csv.gz, b.csv.zst and c.csv.bz2 load the rows their plain files hold (issue 14), and a
    truncated archive fails its own job with the reason, the others loaded."""
    import bz2
    import gzip

    import zstandard

    body = HEADER + "".join(f"{i},name {i}\n" for i in range(1, 501)) + "oops,bad id\n"
    src = tmp_path / "drops"
    src.mkdir()
    (src / "a.csv.gz").write_bytes(gzip.compress(body.encode()))
    (src / "b.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(body.encode()))
    (src / "c.csv.bz2").write_bytes(bz2.compress(body.encode()))
    (src / "d.csv").write_text(body)
    (tmp_path / "logroll.yaml").write_text(
        "ingest:\n  columns:\n    - {name: id, type: integer}\n    - {name: name, type: string}\n"
    )
    run = cli("run", "ingest", "--source", str(src), "--dest", pg_url + "#t", "--json", cwd=tmp_path)
    assert run.code == 0, run.err
    work = run.json()["work"]
    assert (work["files_loaded"], work["rows_loaded"], work["rows_rejected"]) == (4, 2000, 4)
    per_file = query(pg_url, 'SELECT "_source_file", count(*), sum(id) FROM t GROUP BY 1 ORDER BY 1')
    assert [(p.rsplit("/", 1)[-1], n, s) for p, n, s in per_file] == [
        (name, 500, 125250) for name in ("a.csv.gz", "b.csv.zst", "c.csv.bz2", "d.csv")
    ]

    (src / "e.csv.gz").write_bytes(gzip.compress(body.encode())[:-40])  # cut inside the stream
    again = cli("run", "ingest", "--source", str(src), "--dest", pg_url + "#t", "--json", cwd=tmp_path)
    assert again.code == 1, again.err
    [failed] = again.json()["work"]["jobs_failed"]
    assert "e.csv.gz" in failed["reason"] and "archive" in failed["reason"], failed
    assert query(pg_url, "SELECT count(*) FROM t") == [(2000,)]


def test_a_nul_byte_rejects_its_row_not_the_file(cli, pg_url, tmp_path):
    """PostgreSQL's COPY refuses a NUL byte in text: the reading layer quarantines that row with
    its reason before the load, and the file's other rows load (it failed the whole file, retried
    as temporary, while `run ingest` said ok)."""
    src = tmp_path / "drops"
    src.mkdir()
    (src / "a.csv").write_bytes(HEADER.encode() + b"1,x\n2,bad\x00value\n3,z\n")
    run = cli("run", "ingest", "--source", str(src), "--dest", pg_url + "#t", "--json")
    assert run.code == 0, run.err
    work = run.json()["work"]
    assert (work["rows_read"], work["rows_loaded"], work["rows_rejected"]) == (3, 2, 1)
    assert work["jobs_failed"] == [] and work["jobs_retrying"] == []
    assert query(pg_url, "SELECT id FROM t ORDER BY id") == [(1,), (3,)]
    [quarantine] = work["quarantine"]
    text = open(quarantine, encoding="utf-8").read()
    assert ',3,"NUL byte","2,bad\x00value"' in text  # its line, reason and raw bytes, nothing lost


def test_links_out_of_the_source_are_skipped_unless_asked(cli, tmp_path):
    """A link under the source to a file or folder outside it is skipped with a warning naming
    it (`run ingest` and `scan ingest`); --follow-symlinks (or ingest: follow_symlinks) reads it."""
    src, outside = tmp_path / "drops", tmp_path / "outside"
    src.mkdir()
    (outside / "more").mkdir(parents=True)
    (src / "a.csv").write_text(HEADER + "1,x\n")
    (outside / "b.csv").write_text(HEADER + "2,y\n")
    (outside / "more" / "c.csv").write_text(HEADER + "3,z\n")
    (src / "b.csv").symlink_to(outside / "b.csv")
    (src / "more").symlink_to(outside / "more")
    state, dest = str(tmp_path / "s.sqlite"), f"duckdb:///{tmp_path}/t.duckdb#t"
    run = cli("run", "ingest", "--source", str(src), "--state", state, "--dest", dest, "--json")
    assert run.code == 0, run.err
    assert run.json()["work"]["rows_loaded"] == 1
    assert "skipped " + str(src / "b.csv") in run.err and "skipped " + str(src / "more") in run.err
    scan = cli(
        "scan", "ingest", "--source", str(src), "--state", state, "--flush", "--follow-symlinks", "--json"
    )
    assert scan.code == 0 and scan.json()["files_new"] == 2, scan.err
    work = cli("work", "ingest", "--state", state, "--dest", dest, "--json")
    assert work.code == 0 and work.json()["rows_loaded"] == 2, work.err


def test_run_ingest_refuses_the_options_of_day_building(cli, tmp_path):
    """Options that would do nothing for ingest are refused, one line each, exit 2."""
    src = tmp_path / "drops"
    src.mkdir()
    (src / "a.csv").write_text(HEADER + "1,x\n")
    base = ("run", "ingest", "--source", str(src), "--dest", f"duckdb:///{tmp_path}/t.duckdb")
    for extra in (["2024-01-01"], ["--initials", "GF"], ["--force"], ["--lateness", "2"], ["--stage-only"]):
        res = cli(*base, *extra)
        assert res.code == 2 and res.err.count("\n") == 1, (extra, res.err)
        assert (
            "no day to build: drop" in res.err
            and (extra[0] if extra[0].startswith("--") else "DATE") in res.err
        )
    assert not (tmp_path / "t.duckdb").exists()
