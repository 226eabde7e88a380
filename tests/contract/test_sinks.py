"""One contract every sink passes: PostgreSQL (a real server), a DuckDB file, a Parquet dataset."""

from __future__ import annotations

import datetime as dt

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from logroll.errors import SchemaMismatch, UsageError
from logroll.sinks import CsvRows, open_sink


@pytest.fixture(params=["postgresql", "duckdb", "parquet"])
def sink_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url") + "#credit"
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path}/w.duckdb#credit"
    return f"parquet:///{tmp_path}/ds/"


def rows_of(url: str) -> list[tuple]:
    """Every row, read the way a user would, sorted."""
    if url.startswith("postgresql"):
        base, table = url.split("#")
        with psycopg.connect(base) as conn:
            return _sorted(conn.execute(f'SELECT id, name, amount, "at" FROM "{table}"').fetchall())
    if url.startswith("duckdb"):
        path, table = url.removeprefix("duckdb:///").split("#")
        with duckdb.connect(path, read_only=True) as con:
            return _sorted(con.execute(f'SELECT id, name, amount, "at" FROM "{table}"').fetchall())
    root = url.removeprefix("parquet:///")
    with duckdb.connect() as con:
        return _sorted(
            con.execute(
                f"SELECT id, name, amount, \"at\" FROM read_parquet('{root}/**/*.parquet', hive_partitioning=true)"
            ).fetchall()
        )


def _sorted(rows):
    return sorted(
        rows, key=lambda r: tuple((v is None, v if v is not None else 0) for v in r[:1]) + (repr(r),)
    )


def batch(ids, name="a", amount=1.5):
    n = len(ids)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": pa.array([name] * n, pa.string()),
            "amount": pa.array([amount] * n, pa.float64()),
            "at": pa.array([dt.datetime(2021, 1, 2, 3, 4, 5)] * n, pa.timestamp("us")),
        }
    )


def test_load_is_exactly_once_per_version(sink_url):
    sink = open_sink(sink_url)
    first = sink.load(batch([1, 2, 3]), source="s3://b/a.csv", version="v1")
    assert (first.status, first.rows) == ("loaded", 3)
    again = sink.load(batch([1, 2, 3]), source="s3://b/a.csv", version="v1")
    assert again.status == "skipped"
    sink.load(batch([4]), source="s3://b/b.csv", version="v1")
    assert [r[0] for r in rows_of(sink_url)] == [1, 2, 3, 4]
    ledger = sink.ledger()
    assert {k: (v.version, v.rows) for k, v in ledger.items()} == {
        "s3://b/a.csv": ("v1", 3),
        "s3://b/b.csv": ("v1", 1),
    }
    sink.close()


def test_schema_mismatch_leaves_table_untouched(sink_url):
    sink = open_sink(sink_url)
    sink.load(batch([1]), source="a", version="1")
    bad = batch([2]).drop_columns(["amount"]).append_column("extra", pa.array(["x"]))
    with pytest.raises(SchemaMismatch, match="missing column.*amount.*extra column.*extra"):
        sink.load(bad, source="b", version="1")
    wrong_type = batch([3]).set_column(2, "amount", pa.array(["1.5"]))
    with pytest.raises(SchemaMismatch, match="amount is string but the table has float"):
        sink.load(wrong_type, source="c", version="1")
    assert [r[0] for r in rows_of(sink_url)] == [1]
    assert set(sink.ledger()) == {"a"}


def test_error_inside_transaction_rolls_everything_back(sink_url):
    sink = open_sink(sink_url)
    sink.load(batch([1]), source="a", version="1")
    with pytest.raises(RuntimeError), sink.transaction() as tx:
        tx.load(None, batch([2, 3]), source="b", version="1")
        tx.put_state("offset", "99")
        raise RuntimeError("worker died")
    assert [r[0] for r in rows_of(sink_url)] == [1]
    assert set(sink.ledger()) == {"a"}
    assert sink.get_state("offset") is None


def test_new_version_replaces_the_old_rows(sink_url):
    sink = open_sink(sink_url)
    t = batch([1, 2]).append_column("src", pa.array(["f"] * 2))
    sink.load(t, source="f", version="1", source_column="src")
    t2 = batch([7]).append_column("src", pa.array(["f"]))
    res = sink.load(t2, source="f", version="2", source_column="src")
    assert (res.status, res.replaced_version) == ("loaded", "1")
    assert [r[0] for r in rows_of(sink_url)] == [7]
    assert sink.ledger()["f"].version == "2"


def test_nulls_and_empty_strings_survive(sink_url):
    sink = open_sink(sink_url)
    t = pa.table(
        {
            "id": pa.array([1, 2, None], pa.int64()),
            "name": pa.array(["", None, 'quo"te,comma\nnewline'], pa.string()),
            "amount": pa.array([None, 2.25, 3.0], pa.float64()),
            "at": pa.array([None, dt.datetime(2021, 1, 1, 0, 0, 0, 123456), None], pa.timestamp("us")),
        }
    )
    with sink.transaction() as tx:
        assert tx.append(None, t) == 3
    got = rows_of(sink_url)
    assert got == [
        (1, "", None, None),
        (2, None, 2.25, dt.datetime(2021, 1, 1, 0, 0, 0, 123456)),
        (None, 'quo"te,comma\nnewline', 3.0, None),
    ]


def test_csv_rows_written_by_duckdb_load_value_for_value(sink_url, tmp_path):
    """ingest's PostgreSQL path: DuckDB writes the CSV, the sink streams it to COPY unchanged;
    the other sinks read the same file back with its schema. NULL, "", quotes, delimiters,
    newlines (LF and CR), infinities and fractional timestamps come out as they went in."""
    path = tmp_path / "rows.csv"
    with duckdb.connect() as con:
        con.execute(
            f"""COPY (SELECT * FROM (VALUES
                    (1, '', NULL, NULL),
                    (2, NULL, 2.25, TIMESTAMP '2021-01-01 00:00:00.123456'),
                    (NULL, 'quo"te,comma' || chr(10) || 'new' || chr(13) || 'line', 3.0, NULL),
                    (4, 'NA', 'inf'::DOUBLE, TIMESTAMP '2021-01-02 03:04:05'),
                    (5, '\\N', -0.5, NULL)) t(id, name, amount, "at"))
                TO '{path}' (FORMAT csv, HEADER false)"""
        )
    schema = batch([]).schema
    sink = open_sink(sink_url)
    res = sink.load(CsvRows(path, schema), source="rows.csv", version="1")
    assert (res.status, res.rows) == ("loaded", 5)
    assert sink.load(CsvRows(path, schema), source="rows.csv", version="1").status == "skipped"
    assert rows_of(sink_url) == [
        (1, "", None, None),
        (2, None, 2.25, dt.datetime(2021, 1, 1, 0, 0, 0, 123456)),
        (4, "NA", float("inf"), dt.datetime(2021, 1, 2, 3, 4, 5)),
        (5, "\\N", -0.5, None),
        (None, 'quo"te,comma\nnew\rline', 3.0, None),
    ]


def test_state_commits_with_rows(sink_url):
    sink = open_sink(sink_url)
    with sink.transaction() as tx:
        tx.append(None, batch([1]))
        tx.put_state("stream:events.json", "4096")
    assert sink.get_state("stream:events.json") == "4096"
    with sink.transaction() as tx:
        tx.put_state("stream:events.json", "8192")
    assert sink.get_state("stream:events.json") == "8192"


@pytest.mark.parametrize("kind", ["postgresql", "duckdb"])
def test_upsert_replaces_by_key(kind, tmp_path, request):
    url = (
        request.getfixturevalue("pg_url") + "#stats"
        if kind == "postgresql"
        else f"duckdb:///{tmp_path}/u.duckdb#stats"
    )
    sink = open_sink(url)
    first = pa.table({"bucket": ["h1", "h2"], "n": pa.array([1, 2], pa.int64())})
    with sink.transaction() as tx:
        tx.upsert(None, first, key=["bucket"])
    with sink.transaction() as tx:
        tx.upsert(
            None, pa.table({"bucket": ["h2", "h3"], "n": pa.array([20, 30], pa.int64())}), key=["bucket"]
        )
    if kind == "postgresql":
        with psycopg.connect(url.split("#")[0]) as conn:
            got = sorted(conn.execute('SELECT bucket, n FROM "stats"').fetchall())
    else:
        with duckdb.connect(f"{tmp_path}/u.duckdb", read_only=True) as con:
            got = sorted(con.execute('SELECT bucket, n FROM "stats"').fetchall())
    assert got == [("h1", 1), ("h2", 20), ("h3", 30)]


def test_parquet_upsert_is_refused_with_a_way_out(tmp_path):
    sink = open_sink(f"parquet:///{tmp_path}/ds")
    with pytest.raises(UsageError, match="use a duckdb:/// or postgresql://"), sink.transaction() as tx:
        tx.upsert("t", batch([1]), key=["id"])


def test_parquet_dataset_layout_and_no_temp_files(tmp_path):
    sink = open_sink(f"parquet:///{tmp_path}/ds/")
    sink.load(batch([1, 2]), source="s3://b/a.csv", version="v1")
    sink.load(
        pa.table({c: pa.array([], batch([1]).schema.field(c).type) for c in batch([1]).column_names}),
        source="s3://b/empty.csv",
        version="v1",
    )
    files = sorted(p.relative_to(tmp_path / "ds") for p in (tmp_path / "ds").rglob("*") if p.is_file())
    data = [f for f in files if f.parts[0] != "_logroll"]
    assert len(data) == 2 and all(
        f.parts[0].startswith("load_date=") and f.suffix == ".parquet" for f in data
    )
    assert not [f for f in files if f.name.endswith(".tmp")]
    table = pq.read_table(tmp_path / "ds")
    assert table.num_rows == 2 and "load_date" in table.column_names
    assert sink.ledger()["s3://b/empty.csv"].rows == 0


def test_parquet_input_files_are_accepted(tmp_path, pg_url):
    src = tmp_path / "in.parquet"
    pq.write_table(batch([5, 6]), src)
    sink = open_sink(pg_url + "#credit")
    assert sink.load(src, source="x", version="1").rows == 2
    assert [r[0] for r in rows_of(pg_url + "#credit")] == [5, 6]


def test_quoted_identifiers(pg_url):
    sink = open_sink(pg_url + '#we"ird table')
    t = pa.table({'col "1"; drop': pa.array([1], pa.int64())})
    sink.load(t, source="a", version="1")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute('SELECT "col ""1""; drop" FROM "we""ird table"').fetchall() == [(1,)]


def test_unknown_scheme_suggests_the_closest():
    with pytest.raises(UsageError, match=r"did you mean duckdb://\?"):
        open_sink("duckbd:///x.duckdb#t")


def test_postgres_connection_error_is_one_line_without_password():
    from logroll.errors import SinkError

    with pytest.raises(SinkError) as err:
        open_sink("postgresql://u:hunter2@127.0.0.1:1/db#t")
    assert "hunter2" not in str(err.value) and "\n" not in str(err.value)


def test_parquet_discards_only_old_temp_files_of_killed_writers(tmp_path):
    import os
    import time

    part = tmp_path / "ds" / "load_date=2021-01-01"
    part.mkdir(parents=True)
    old, fresh = part / ".part-a-1.parquet.tmp", part / ".part-b-2.parquet.tmp"
    old.write_bytes(b"half a file")
    fresh.write_bytes(b"a live writer's file")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    open_sink(f"parquet:///{tmp_path}/ds/")
    assert not old.exists() and fresh.exists()


def test_missing_driver_says_what_to_install():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['psycopg'] = None\n"  # what an install without the extra looks like
        "from logroll.sinks import open_sink\n"
        "try:\n    open_sink('postgresql://u@127.0.0.1/db#t')\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert (
        out.strip() == "UsageError postgresql:// destinations need psycopg: pip install 'logroll[postgres]'"
    )


def test_parquet_one_transaction_many_files_in_the_same_lock_stripe(tmp_path):
    import hashlib

    sink = open_sink(f"parquet:///{tmp_path}/ds/")
    # Sources whose hashes share a first byte share a lock file: one transaction takes it once.
    by_stripe: dict[str, list[str]] = {}
    for i in range(2000):
        src = f"s3://b/{i}.csv"
        by_stripe.setdefault(hashlib.sha256(src.encode()).hexdigest()[:2], []).append(src)
    same = next(v for v in by_stripe.values() if len(v) >= 2)[:2]
    with sink.transaction() as tx:
        for n, src in enumerate(same):
            tx.load(None, batch([n]), source=src, version="1")
    assert set(sink.ledger()) == set(same)
    assert len(list((tmp_path / "ds" / "_logroll" / "locks").iterdir())) == 1


# ---- sessions: a database held by one writer (the stream's tables) ---------------------------
@pytest.fixture(params=["postgresql", "duckdb", "sqlite"])
def session_of(request, tmp_path):
    """A function making a session on one database (the same one each call)."""
    from logroll.sinks.sqlite import SQLiteSession

    opened = []

    def make():
        if request.param == "postgresql":
            db = open_sink(request.getfixturevalue("pg_url")).session("test writer", "test-key")
        elif request.param == "duckdb":
            db = open_sink(f"duckdb:///{tmp_path}/s.duckdb", lock_timeout=5.0).session("test writer", "k")
        else:
            db = SQLiteSession(tmp_path / "s.sqlite", "test writer")
        opened.append(db)
        return db

    yield make
    for db in reversed(opened):
        db.close()


def test_session_commits_whole_or_not_at_all(session_of):
    db = session_of()
    cols = f"k {db.type_name('text')}, n {db.type_name('bigint')}, x {db.type_name('double')}"
    with db.transaction():
        db.execute(f"CREATE TABLE IF NOT EXISTS t ({cols}, PRIMARY KEY (k))")
    rows = pa.table({"k": ["a", "b"], "n": pa.array([1, 2], pa.int64()), "x": [0.5, 1.5]})
    with db.transaction():
        db.insert("t", rows)
    with pytest.raises(RuntimeError), db.transaction():
        db.insert("t", pa.table({"k": ["c"], "n": pa.array([3], pa.int64()), "x": [2.5]}))
        raise RuntimeError("killed before the commit")
    assert db.query("SELECT k, n, x FROM t ORDER BY k") == [("a", 1, 0.5), ("b", 2, 1.5)]
    with db.transaction():
        changed = db.execute(
            "INSERT INTO t VALUES (?, ?, ?) ON CONFLICT (k) DO UPDATE SET n = t.n + excluded.n",
            ["a", 10, 0.5],
        )
    assert changed in (1, -1)  # -1: the database does not say
    assert [list(c) for c in db.query_chunks("SELECT n FROM t WHERE k = ?", ["a"], size=1)] == [[(11,)]]


def test_session_temp_tables_start_empty_at_each_transaction(session_of):
    db = session_of()
    with db.transaction():
        db.execute(f"CREATE TABLE IF NOT EXISTS base (k {db.type_name('text')})")
        db.execute(db.temp_table_sql("__tmp", "SELECT * FROM base"))
    with db.transaction():
        if db.dialect != "postgresql":  # PostgreSQL empties it at each commit
            db.execute("DELETE FROM __tmp")
        db.insert("__tmp", pa.table({"k": ["x"]}))
        assert db.query("SELECT count(*) FROM __tmp") == [(1,)]
    with db.transaction():
        if db.dialect != "postgresql":
            db.execute("DELETE FROM __tmp")
        assert db.query("SELECT count(*) FROM __tmp") == [(0,)]


def test_a_second_writer_is_refused_with_the_owner_named(session_of, request):
    from logroll.errors import LockedError

    first = session_of()
    if first.dialect == "duckdb":
        pytest.skip("DuckDB's own file lock keeps other processes out; one process may open it twice")
    with pytest.raises(LockedError, match="another `test writer` is writing to"):
        session_of()


def test_postgres_table_dropped_between_loads_is_made_again_on_the_next_attempt(pg_url):
    """The table's columns are checked once per sink, not per load: a table dropped (or
    changed) behind the sink's back fails one load, and the next attempt checks it afresh."""
    sink = open_sink(pg_url + "#credit")
    sink.load(batch([1]), source="a", version="1")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('DROP TABLE "credit"')
    with pytest.raises(psycopg.errors.UndefinedTable):
        sink.load(batch([2]), source="b", version="1")
    assert sink.load(batch([2]), source="b", version="1").status == "loaded"
    assert [r[0] for r in rows_of(pg_url + "#credit")] == [2]
