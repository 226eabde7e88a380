"""DuckDB-dialect pipeline SQL as Spark SQL (no Spark needed: the executed comparisons are in
test_spark.py). Golden strings for the rewrites transpile.py adds on top of sqlglot."""

from __future__ import annotations

import duckdb
import pytest

from logroll.engines import sql
from logroll.engines.transpile import spark_type, to_spark
from logroll.errors import ConfigError
from logroll.pipelines import get_pipeline

ROWS = {"rows": {"user": "VARCHAR", "timestamp": "TIMESTAMP", "action": "VARCHAR"}}


def test_consolidate_star_and_struct_unnest_expand_in_place():
    q = get_pipeline("consolidate").outputs[0].sql
    assert "unnest" in q.lower() and "*" in q  # the DuckDB conveniences this test is about
    out = to_spark(q, ROWS)
    assert "EXPLODE" not in out and "*" not in out
    assert (
        "`rows`.`user` AS `user`, DATE_FORMAT(`rows`.`timestamp`, 'yyyy-MM-dd') AS `date`, "
        "DATE_FORMAT(`rows`.`timestamp`, 'HH:mm:ss') AS `time`, `rows`.`action` AS `action`"
    ) in out


def test_the_rewrite_keeps_duckdb_semantics():
    """Run the rewritten form back in DuckDB: same rows as the original."""
    q = get_pipeline("consolidate").outputs[0].sql
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE rows AS SELECT * FROM (VALUES ('u1', TIMESTAMP '2021-01-30 10:00:00', 'a'), "
        "('u2', TIMESTAMP '2021-01-30 11:30:05', 'b')) t(\"user\", \"timestamp\", action)"
    )
    import sqlglot

    from logroll.engines.transpile import _expand_stars, _unnest_struct_columns

    tree = _expand_stars(sqlglot.parse_one(q, read="duckdb"), {k: dict(v) for k, v in ROWS.items()})
    rewritten = tree.transform(_unnest_struct_columns).sql(dialect="duckdb")
    expected = con.sql(q)
    got = con.sql(rewritten)
    assert got.columns == expected.columns == ["user", "date", "time", "action"]
    assert sorted(got.fetchall()) == sorted(expected.fetchall())


def test_dedupe_transpiles_without_duckdb_only_constructs():
    pipe = get_pipeline("impressions")
    out = to_spark(sql.dedupe_select(pipe, "__src"))
    assert "EXPLODE" not in out and "UNNEST" not in out.upper()
    assert "IS NULL AS __null" in out  # nullable fields carry their is-null flag
    assert "__m.`CAMPAIGN_ID`" in out


def test_count_star_is_not_expanded():
    assert to_spark("SELECT count(*) AS n FROM rows", ROWS) == "SELECT COUNT(*) AS n FROM rows"


def test_timestamps_stay_wall_clock():
    assert spark_type("TIMESTAMP") == "TIMESTAMP_NTZ"
    assert spark_type("VARCHAR") == "STRING"
    assert spark_type("BIGINT") == "BIGINT"


def test_sql_that_cannot_be_read_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^this SQL cannot run on Spark .*: SELECT FROM WHERE \("):
        to_spark("SELECT FROM WHERE (")
