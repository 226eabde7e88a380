"""The fast paths of the DuckDB engine keep every guarantee the slow ones had."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from logroll.engines import dedupe, sql
from logroll.engines.duckdb_engine import DuckDBEngine
from logroll.engines.pool import EnginePool
from logroll.engines.projection import needed_columns, referenced_columns
from logroll.pipelines import get_pipeline
from logroll.pipelines.base import Column, Output, Pipeline

from conftest import tree_bytes


def test_engine_never_draws_a_progress_bar(tmp_path: Path):
    # DuckDB prints its progress bar on stdout once a query runs past 2 s; `--json` promises that
    # stdout holds exactly one JSON object, so a long staging query must not print anything.
    eng = DuckDBEngine(tmp_path)
    try:
        assert eng.con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)
    finally:
        eng.close()


def _dupes_table(n: int = 3000, seed: int = 3) -> pa.Table:
    """Many keys sent several times with different values, NULLs in the optional columns."""
    rng = random.Random(seed)
    ids, times, campaigns, users, devices = [], [], [], [], []
    for _ in range(n):
        k = rng.randrange(n // 4)
        ids.append(f"imp-{k}")
        times.append(dt.datetime(2021, 1, 30, k % 24, k % 60, 0))
        campaigns.append(rng.randrange(1, 5))
        users.append(rng.choice([None, "u1", "u2", "u3"]))
        devices.append(rng.choice([None, "mobile", "tv"]))
    return pa.table(
        {
            "IMPRESSION_ID": ids,
            "IMPRESSION_DATETIME": times,
            "CAMPAIGN_ID": pa.array(campaigns, pa.int64()),
            "USER_ID": users,
            "DEVICE_TYPE": devices,
        }
    )


@pytest.mark.parametrize(
    "keep",
    [
        ["IMPRESSION_DATETIME", "CAMPAIGN_ID"],  # the impressions output: a plain min
        ["CAMPAIGN_ID", "USER_ID"],  # a nullable field: the struct, cut after USER_ID
        ["DEVICE_TYPE"],  # the last field: every field decides
        ["IMPRESSION_ID"],  # no field at all
        [],  # nothing: the first key stands in
    ],
)
def test_narrow_dedupe_picks_the_same_rows_as_the_full_one(keep):
    pipe = get_pipeline("impressions")
    con = duckdb.connect()
    con.register("src", _dupes_table())
    full = con.sql(sql.dedupe_select(pipe, "src")).to_arrow_table()
    narrow = con.sql(sql.dedupe_select(pipe, "src", keep=keep)).to_arrow_table()
    cols = keep or ["IMPRESSION_ID"]
    assert narrow.column_names == [c for c in full.column_names if c in cols]
    assert full.num_rows == narrow.num_rows == len(set(_dupes_table()["IMPRESSION_ID"].to_pylist()))
    assert sorted(full.select(cols).to_pylist(), key=repr) == sorted(narrow.to_pylist(), key=repr)


def test_outputs_read_only_the_columns_they_name():
    assert needed_columns(get_pipeline("impressions")) == ["IMPRESSION_DATETIME", "CAMPAIGN_ID"]
    assert referenced_columns(["SELECT a, count(*) AS n FROM rows GROUP BY a"]) == {
        "a",
        "n",
        "select",
        "count",
        "as",
        "from",
        "group",
        "by",
        "rows",
    }
    assert {"u", "id"} <= referenced_columns(["SELECT u.id FROM rows r WHERE r.x = 'y * z'"])
    assert {"we ird"} <= referenced_columns(['SELECT "We Ird" FROM rows'])
    every = [
        "SELECT * FROM rows",
        "SELECT r.* FROM rows AS r",
        "SELECT COLUMNS('a.*') FROM rows",
        "SELECT a * 2 FROM rows",  # a star that is not count(*): all columns, to be safe
        "SELECT to_json(rows) FROM rows",  # the whole row as a value
        "SELECT to_json(r) FROM rows r",
        "SELECT sum(a) OVER (ORDER BY b ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM rows",
    ]
    for query in every:
        assert referenced_columns([query]) is None, query


def test_duckdb_workers_share_one_database_and_keep_their_own_tables(tmp_path: Path):
    pool = EnginePool("duckdb", tmp_path, memory_limit="800MB", threads=2, size=2)
    try:
        first, second = pool.engines
        settings = "SELECT current_setting('memory_limit'), current_setting('threads')"
        # Nothing is split: a lone day's build on one worker still has the whole limit and every thread.
        assert first.con.execute(settings).fetchone() == second.con.execute(settings).fetchone()
        assert first.con.execute(settings).fetchone()[1] == 2
        first.con.execute("CREATE TEMP TABLE __checked AS SELECT 1 AS a")
        second.con.execute("CREATE TEMP TABLE __checked AS SELECT 2 AS a")  # no clash
        assert first.con.execute("SELECT a FROM __checked").fetchone() == (1,)
        progress = "SELECT current_setting('enable_progress_bar')"
        assert second.con.execute(progress).fetchone() == (False,)
    finally:
        pool.close()


def test_parallel_staging_gives_the_sequential_outputs_and_report(cli, impressions_raw, tmp_path):
    reports, trees = [], []
    for parallel in ("1", "2"):
        dest = tmp_path / f"results-{parallel}"
        res = cli("run", "impressions", "--source", str(impressions_raw), "--dest", str(dest), "--json",
                  "--parallel", parallel)  # fmt: skip
        assert res.code == 0, res.err
        report = res.json()
        assert report["rows_read"] == report["rows_valid"] + report["rows_rejected"]
        reports.append({k: report[k] for k in ("rows_read", "rows_rejected", "duplicates", "rows_out",
                                               "files_staged", "partitions_built", "partitions")})  # fmt: skip
        reports[-1]["quarantine"] = [Path(q).name for q in report["quarantine"]]
        trees.append(tree_bytes(dest))
    assert reports[0] == reports[1]
    assert trees[0] == trees[1]


_TEXTS = ["", "   ", None, "1", " 2 ", "-7", "5.5", "x", "true", "-0.0", "1e3", "2021-01-30",
          "2021-01-30 10:00:00", "21-01-30 10:00:00", "0000-01-01 00:00:00", "2021-02-30 00:00:00"]  # fmt: skip


def _every_type_pipeline(checks: tuple[tuple[str, str], ...] = ()) -> Pipeline:
    cols = [Column("k", "string"), Column("t", "timestamp")]
    for kind in ("integer", "float", "boolean", "date", "string"):
        cols += [Column(f"{kind}_must", kind), Column(f"{kind}_opt", kind, required=False)]
    return Pipeline(
        name="every_type",
        columns=tuple(cols),
        event_time="t",
        key=("k",),
        outputs=(Output("o", "SELECT * FROM rows", "{date:%Y}/{date:%m}/{date:%d}/o.csv"),),
        checks=checks,
    )


def test_typed_values_are_null_for_empty_text():
    # The staging fast path (sql.reason_expr) relies on it: a non-NULL typed value means the text
    # was there, so neither "missing" nor "bad" applies.
    con = duckdb.connect()
    for col in _every_type_pipeline().columns:
        if col.type == "string":
            continue  # text stays text: checked for emptiness on its own
        for text in ("''", "'   '", "CAST(NULL AS VARCHAR)"):
            got = con.execute(f"SELECT {sql.typed_expr(col, text)}").fetchone()[0]
            assert got is None, (col, text, got)


@pytest.mark.parametrize("checks", [(), (("integer_must > 0", "integer_must must be positive"),)])
def test_fast_reason_equals_the_full_case(checks):
    pipe = _every_type_pipeline(checks)
    rng = random.Random(5)
    names = [c.name for c in pipe.columns]
    valid = ["a", "2021-01-30 10:00:00", "1", "1", "1.5", "", "true", "", "2021-01-30", "", "s", ""]
    rows = [valid]
    for _ in range(3000):  # a valid row with one or two fields changed: each WHEN on its own
        row = list(valid)
        for i in rng.sample(range(len(names)), rng.choice([1, 2])):
            row[i] = rng.choice(_TEXTS)
        rows.append(row)
    table = pa.table({f"c{i}": pa.array([r[i] for r in rows], pa.string()) for i in range(len(names))})
    con = duckdb.connect()
    con.register("src", table)
    raw = {n: f"c{i}" for i, n in enumerate(names)}
    fast = con.sql(sql.checked_select(pipe, raw, "(SELECT 0 AS o, * FROM src)", "o")).to_arrow_table()
    # The same CASE with no fast path: every WHEN, in order, on every row.
    whens = sql.reason_expr(
        pipe, {n: f"__raw{i}" for i, n in enumerate(names)}, {n: sql.ident(n) for n in names}
    )
    full_case = whens[whens.index(" ELSE ") + len(" ELSE ") : -len(" END")]
    inner = sql.checked_select(pipe, raw, "(SELECT 0 AS o, * FROM src)", "o")
    inner = inner[inner.index("FROM (SELECT") + len("FROM ") :]
    full = con.sql(f"SELECT {full_case} AS __reason FROM {inner}").to_arrow_table()
    assert "ELSE" in whens  # the fast path is there
    assert fast["__reason"].to_pylist() == full["__reason"].to_pylist()
    reasons = fast["__reason"].to_pylist()
    assert reasons[0] is None  # the one valid row
    kinds = {r.split(":")[0] for r in reasons if r}
    assert len(kinds) >= 10 and any(k.startswith("missing") for k in kinds)  # many WHENs exercised


def _hash_first(con: duckdb.DuckDBPyConnection, pipe: Pipeline, hashed: str, keep: list[str] | None) -> list:
    names = [c.name for c in pipe.columns]
    plain = sql.dedupe_select(pipe, "src", names, keep)
    out = list(con.sql(f"SELECT * FROM ({plain}) LIMIT 0").columns)
    return sorted(map(repr, con.sql(dedupe.unique_rows_select(pipe, hashed, out, names, keep)).fetchall()))


@pytest.mark.parametrize(
    "keep",
    [
        ["IMPRESSION_DATETIME", "CAMPAIGN_ID"],
        ["CAMPAIGN_ID", "USER_ID"],
        ["DEVICE_TYPE"],
        ["IMPRESSION_ID"],
        [],
        None,
    ],
)
def test_hash_first_dedupe_gives_the_exact_dedupe_even_when_every_hash_collides(keep):
    """Rows whose key hash is unique pass untouched; the rest go through dedupe_select. With the
    real hash, and with one of 3 values (nearly every row a candidate, unequal keys colliding),
    the rows are dedupe_select's, as a multiset."""
    pipe = get_pipeline("impressions")
    con = duckdb.connect()
    con.register("src", _dupes_table())
    want = sorted(map(repr, con.sql(sql.dedupe_select(pipe, "src", keep=keep)).fetchall()))
    real = dedupe.with_hash(pipe, "src", stored=False)
    forced = "(SELECT *, hash(IMPRESSION_ID, IMPRESSION_DATETIME) % 3 AS __h FROM src)"
    singles = "(SELECT *, hash(IMPRESSION_ID) AS __h FROM src)"  # no collision, the same keys
    assert _hash_first(con, pipe, real, keep) == want
    assert _hash_first(con, pipe, forced, keep) == want
    assert _hash_first(con, pipe, singles, keep) == want
    assert len(want) == len(set(_dupes_table()["IMPRESSION_ID"].to_pylist()))


def test_a_stored_key_hash_is_used_only_under_the_hash_function_that_wrote_it(tmp_path: Path):
    pipe = get_pipeline("impressions")
    con = duckdb.connect()
    con.register("src", _dupes_table())
    tag = dedupe.key_hash_tag(con, pipe)
    part = tmp_path / "a.parquet"
    hashed = f"(SELECT *, hash(IMPRESSION_ID, IMPRESSION_DATETIME) AS {dedupe.HASH_COLUMN} FROM src)"
    con.execute(f"COPY {hashed} TO '{part}' (FORMAT parquet, KV_METADATA {{logroll_key_hash: '{tag}'}})")
    other = tmp_path / "b.parquet"
    con.execute(f"COPY {hashed} TO '{other}' (FORMAT parquet, KV_METADATA {{logroll_key_hash: 'x'}})")
    untagged = tmp_path / "c.parquet"
    con.execute(f"COPY src TO '{untagged}' (FORMAT parquet)")
    assert dedupe.stored_hash_usable(con, pipe, [str(part)])
    assert not dedupe.stored_hash_usable(con, pipe, [str(part), str(other)])
    assert not dedupe.stored_hash_usable(con, pipe, [str(part), str(untagged)])
    assert not dedupe.stored_hash_usable(con, pipe, [])
