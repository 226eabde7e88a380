"""The fast paths of the DuckDB engine keep every guarantee the slow ones had."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from logroll import sql
from logroll.engines.duckdb_engine import DuckDBEngine
from logroll.pipelines import get_pipeline
from logroll.projection import needed_columns, referenced_columns


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
