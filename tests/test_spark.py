"""The Spark engine against the DuckDB engine as reference: same inputs, same bytes out.

Every preset that builds event days runs on both engines over the same generated data (with
its anomalies: duplicates, late and early rows, bad rows, differing columns) and the outputs,
quarantine files and run-report counts must be identical. One Spark application (local[2]) is
shared by the in-process tests; the standalone-cluster and CLI error tests are in
test_spark_cluster.py.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logroll import api, demo
from logroll.pipelines import get_pipeline
from logroll.pipelines.base import Column, Output, Pipeline
from weblogs_helpers import urls
from weblogs_reference import url_levels

from conftest import tree_bytes, tree_mtimes

# No importorskip: without the spark extra these tests fail with the install hint, they never
# pass by skipping (`-m "not spark"` leaves them out on purpose).
pytestmark = pytest.mark.spark

COUNTS = (
    "files_seen",
    "files_staged",
    "rows_read",
    "rows_valid",
    "rows_rejected",
    "rows_in",
    "rows_unique",
    "duplicates",
    "rows_out",
    "partitions_built",
    "partitions",
)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local[2] Spark application for every in-process test: the engine joins it."""
    from logroll.engines.spark_session import open_session

    handle = open_session("local[2]", {}, tmp_path_factory.mktemp("spark"), memory_limit="1GB")
    assert handle.owned
    yield handle.session
    handle.stop()


def run_both(pipeline, raw: Path, tmp: Path, **kw):
    """The same run on each engine into its own destination; returns both reports."""
    duck = api.run(pipeline, source=str(raw), dest=str(tmp / "duckdb"), engine="duckdb", **kw)
    spark = api.run(pipeline, source=str(raw), dest=str(tmp / "spark"), engine="spark", **kw)
    return duck, spark


def assert_same(tmp: Path, duck, spark) -> None:
    d, s = duck.to_dict(), spark.to_dict()
    assert d["status"] == s["status"] == "ok"
    assert {k: d[k] for k in COUNTS} == {k: s[k] for k in COUNTS}
    assert d["rows_read"] == d["rows_valid"] + d["rows_rejected"]
    assert d["rows_in"] == d["rows_unique"] + d["duplicates"]
    outputs = tree_bytes(tmp / "duckdb")
    assert outputs, "the reference run wrote nothing"
    assert outputs == tree_bytes(tmp / "spark")
    qd, qs = tmp / "duckdb" / "_logroll" / "quarantine", tmp / "spark" / "_logroll" / "quarantine"
    assert tree_bytes(qd) == tree_bytes(qs)


# ---- impressions ---------------------------------------------------------------------------
def test_impressions_byte_identical_then_rerun_is_nothing_to_do(spark, tmp_path):
    raw = tmp_path / "raw"
    demo.GENERATORS["impressions"](raw, days=3, rows=6000)
    duck, sp = run_both("impressions", raw, tmp_path)
    assert sp.engine == "spark" and len(sp.partitions_built) == 4  # 3 days + early rows of a 4th
    assert sp.rows_rejected > 0 and sp.duplicates > 0
    assert_same(tmp_path, duck, sp)

    before, mtimes = tree_bytes(tmp_path / "spark"), tree_mtimes(tmp_path / "spark")
    again = api.run("impressions", source=str(raw), dest=str(tmp_path / "spark"), engine="spark")
    assert again.files_staged == 0 and again.partitions_built == [] and again.status == "ok"
    assert tree_bytes(tmp_path / "spark") == before and tree_mtimes(tmp_path / "spark") == mtimes


def test_days_staged_by_duckdb_are_rebuilt_by_spark_after_late_data(spark, tmp_path):
    """The catalog and the parts are shared: DuckDB stages and builds, a late file arrives,
    Spark stages it and rebuilds the day it belongs to; the result equals DuckDB's."""
    raw = tmp_path / "raw"
    demo.GENERATORS["impressions"](raw, days=2, rows=3000)
    dest = tmp_path / "mixed"
    first = api.run("impressions", "2021-01-29", source=str(raw), dest=str(dest), engine="duckdb")
    assert first.partitions_built == ["2021-01-29"]
    late = raw / "2021/01/30/late.csv"
    late.write_text(
        "IMPRESSION_ID,IMPRESSION_DATETIME,CAMPAIGN_ID,USER_ID,DEVICE_TYPE\n"
        "late-1,2021-01-29 23:10:00,7,u1,tv\nlate-2,2021-01-29 23:20:00,7,u2,tv\n"
    )
    second = api.run("impressions", "2021-01-30", source=str(raw), dest=str(dest), engine="spark")
    assert "2021-01-29" in second.partitions_built and "2021-01-30" in second.partitions_built

    reference = tmp_path / "reference"
    api.run("impressions", "2021-01-29", source=str(raw), dest=str(reference), engine="duckdb")
    api.run("impressions", "2021-01-30", source=str(raw), dest=str(reference), engine="duckdb")
    assert tree_bytes(dest) == tree_bytes(reference)
    day = (dest / "2021/01/29/daily_agg_20210129_Guy_Fawkes.csv").read_text()
    assert "7,23," in day


def test_user_declared_pipeline_from_yaml(spark, tmp_path):
    from logroll import config

    example = Path(__file__).resolve().parents[1] / "examples" / "logroll.yaml"
    pipe = config.load(example).pipeline("device_users")
    raw = tmp_path / "raw"
    demo.GENERATORS["impressions"](raw, days=2, rows=3000)
    duck, sp = run_both(pipe, raw, tmp_path)
    assert_same(tmp_path, duck, sp)


# ---- dedupe semantics: every type, NULLs, ties, awkward text ----------------------------------
ALL_TYPES = Pipeline(
    name="alltypes",
    columns=(
        Column("k", "string"),
        Column("ts", "timestamp", formats=("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")),
        Column("n", "integer", required=False),
        Column("x", "float", required=False),
        Column("s", "string", required=False),
        Column("flag", "boolean", required=False),
        Column("d", "date", required=False),
    ),
    event_time="ts",
    key=("k",),
    outputs=(
        Output(name="rows", sql="SELECT * FROM rows", path="{date:%Y%m%d}/rows.csv", order_by=("k",)),
        Output(
            name="agg",
            sql=(
                "SELECT s, count(*) AS c, sum(n) AS total, avg(n) AS mean, min(x) AS lo, max(d) AS last_day, "
                "max(ts) AS last_ts, bool_or(flag) AS any_flag, count(DISTINCT n) AS distinct_n, "
                "CAST(hour(min(ts)) AS INTEGER) AS first_hour FROM rows GROUP BY s"
            ),
            path="{date:%Y%m%d}/agg.csv",
            order_by=("s",),
        ),
        Output(name="parquet", sql="SELECT * FROM rows", path="{date:%Y%m%d}/rows.parquet", format="parquet"),
    ),
)


def _alltypes_rows(rng: random.Random) -> list[list[str]]:
    texts = ["plain", 'say "hi"', "a,b", "multi\nline", "ünïcödé ✓", "", " padded ", "NULL"]
    rows = []
    for i in range(400):
        day = dt.date(2021, 3, 1) + dt.timedelta(days=rng.randrange(2))
        ts = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(86400))
        for _ in range(rng.choice([1, 1, 2, 3])):  # duplicates of a key that differ elsewhere
            rows.append(
                [
                    f"k{i:04d}",
                    ts.strftime("%Y-%m-%d %H:%M:%S" if rng.random() < 0.8 else "%Y-%m-%dT%H:%M:%S"),
                    rng.choice(["", "0", "-3", "42", str(rng.randrange(-(10**12), 10**12))]),
                    rng.choice(["", "0.1", "-0.0", "1e300", "3.141592653589793", "nan", "-17.25", "inf"]),
                    rng.choice(texts),
                    rng.choice(["", "true", "false"]),
                    rng.choice(["", "2021-02-28", "1999-12-31", "2024-02-29"]),
                ]
            )
    rows.append(["bad-1", "2021-03-01 10:00:00", "1.5", "", "", "", ""])  # not an integer
    rows.append(["bad-2", "not a time", "", "", "", "", ""])
    rows.append(["bad-3", "2021-03-01 10:00:00", "", "", "", "maybe", ""])
    return rows


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n') or v.strip() != v else v

    return "".join(",".join(cell(v) for v in r) + "\n" for r in [header, *rows])


def test_dedupe_nulls_types_and_formats_are_identical(spark, tmp_path):
    rng = random.Random(11)
    rows = _alltypes_rows(rng)
    rng.shuffle(rows)
    header = ["k", "ts", "n", "x", "s", "flag", "d"]
    raw = tmp_path / "raw"
    for i, chunk in enumerate((rows[: len(rows) // 2], rows[len(rows) // 2 :])):
        folder = raw / f"2021/03/0{i + 1}"
        folder.mkdir(parents=True)
        (folder / f"part{i}.csv").write_text(_csv_text(header, chunk), encoding="utf-8")
    duck, sp = run_both(ALL_TYPES, raw, tmp_path)
    assert duck.duplicates > 50 and duck.rows_rejected == 3
    assert_same(tmp_path, duck, sp)
    text = (tmp_path / "spark/20210301/rows.csv").read_text(encoding="utf-8")
    assert '"say ""hi"""' in text and '"multi\nline"' in text


# ---- consolidate (pass-through columns, union per day) --------------------------------------
def test_consolidate_byte_identical(spark, tmp_path):
    rng = random.Random(5)
    raw = tmp_path / "logs"
    users = [f"u{i}" for i in range(30)]
    for day in (dt.date(2021, 1, 30), dt.date(2021, 1, 31)):
        folder = raw / f"{day:%Y/%m/%d}"
        folder.mkdir(parents=True)
        app = []
        for _ in range(300):
            t = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(-3600, 86400))
            app.append(
                [t.strftime("%Y-%m-%d %H:%M:%S"), rng.choice(users), rng.choice(["click", "view", "a, b"])]
            )
        app += [list(r) for r in rng.sample(app, 20)]  # exact duplicates
        app.append(["not a time", "u1", "bad"])
        (folder / "app.csv").write_text(_csv_text(["timestamp", "user", "action"], app))
        web = []
        for _ in range(200):
            t = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(86400))
            web.append(
                [rng.choice(users), t.strftime("%Y-%m-%d %H:%M:%S"), rng.choice(["", "/home", "/x?y=1"])]
            )
        (folder / "web.csv").write_text(_csv_text(["user", "timestamp", "page"], web))
    duck, sp = run_both("consolidate", raw, tmp_path, timestamp_column="timestamp")
    assert duck.duplicates >= 20 and duck.rows_rejected == 2
    assert_same(tmp_path, duck, sp)
    first = (tmp_path / "spark/01--30--2021.csv").read_text().splitlines()[0]
    assert first.split(",")[:3] == ["date", "time", "user"]


# ---- weblogs (JSON lines, nested fields, URL parsing in SQL) ---------------------------------
URLS = [
    "https://www.hipages.com.au/articles",
    "https://www.hipages.com.au/connect/sfelectrics/service/190625",
    "http://user:pw@Example.COM:8080/a/b/c?q=1#f",
    "https://hipages.com.au/photos/bathrooms/",
    "//cdn.example.org//deep//path",
    "https://www.hipages.com.au",
    "https://[::1]:443/ipv6/path",
    "no-host-at-all",
]


def test_weblogs_byte_identical(spark, tmp_path):
    rng = random.Random(3)
    raw = tmp_path / "events"
    for day in (dt.date(2017, 2, 2), dt.date(2017, 2, 3)):
        folder = raw / f"{day:%Y/%m/%d}"
        folder.mkdir(parents=True)
        lines = []
        for i in range(400):
            t = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(-1800, 86400))
            event = {
                "event_id": f"{day:%d}-{i % 350}",  # some ids repeat with other values
                "user": {"session_id": str(rng.randrange(10**6)), "id": rng.randrange(50)},
                "action": rng.choice(["page_view", "button_click", "list_directory"]),
                "url": rng.choice(URLS),
                "timestamp": t.strftime("%d/%m/%Y %H:%M:%S"),
            }
            lines.append(json.dumps(event))
        lines.append('{"event_id": "broken", "user": ')
        lines.append(json.dumps({"event_id": "x1", "user": {"id": 1}, "action": "a", "url": URLS[0]}))
        body = ("\n".join(lines) + "\n").encode()
        if day.day == 2:
            (folder / "events.json").write_bytes(body)
        else:  # a gzip file, and a file holding one JSON array (its elements are the records)
            (folder / "events.json.gz").write_bytes(gzip.compress(body))
            array = [json.loads(ln) for ln in lines[:40]] + [7]
            (folder / "array.json").write_text(json.dumps(array, indent=2))
    duck, sp = run_both("weblogs", raw, tmp_path)
    assert duck.files_staged == 3 and duck.duplicates > 0 and duck.rows_rejected >= 5
    assert_same(tmp_path, duck, sp)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(urls(), min_size=150, max_size=150))
def test_weblogs_url_steps_in_spark_match_the_reference(spark, batch):
    """Staging computes the URL levels in DuckDB (test_weblogs_properties.py); the same steps,
    transpiled, give the reference's levels in Spark too: the split uses only functions both
    engines read alike (strpos/locate, split_part, substr, ltrim, regexp_extract)."""
    from logroll.engines.transpile import to_spark
    from logroll.pipelines.weblogs import url_levels_query

    batch = [*batch, *URLS, "http\n://x/a", "https://www.x.com:80@y.com/a", "www.[::1]:80/a", "é://x/y"]
    spark.createDataFrame(
        [(i, u) for i, u in enumerate(batch)], "i long, url string"
    ).createOrReplaceTempView("urls")
    query = to_spark(url_levels_query("urls").replace("SELECT url_level1", "SELECT i, url_level1", 1))
    got = {r[0]: tuple(r[1:]) for r in spark.sql(query).collect()}
    assert [got[i] for i in range(len(batch))] == [url_levels(u) for u in batch]


def test_every_day_building_preset_is_covered():
    """A new preset must get a byte-identity test here (ingest loads files; it builds no days)."""
    from logroll.pipelines import PRESETS

    covered = {"impressions", "consolidate", "weblogs"}
    assert set(PRESETS) - covered == set(), "add a Spark byte-identity test for the new preset"
    for name in covered:
        assert get_pipeline(name).outputs


def test_parallel_workers_share_one_spark_application(spark, tmp_path):
    """--parallel 2: two engines build days at once, each in a Spark session of its own (their
    `rows` views must not meet), on the one SparkContext."""
    raw = tmp_path / "raw"
    demo.GENERATORS["impressions"](raw, days=3, rows=3000)
    duck = api.run("impressions", source=str(raw), dest=str(tmp_path / "duckdb"), engine="duckdb")
    sp = api.run("impressions", source=str(raw), dest=str(tmp_path / "spark"), engine="spark", parallel=2)
    assert len(sp.partitions_built) == 4
    assert_same(tmp_path, duck, sp)
    assert spark.sparkContext._jsc is not None  # the shared application is still up


# ---- CSV dialects (issue 14): staging stays on DuckDB, the build must still match byte for byte
def test_compressed_latin1_headerless_pipeline_byte_identical(spark, tmp_path):
    import gzip

    rng = random.Random(5)
    raw = tmp_path / "raw"
    for day in ("2021/01/29", "2021/01/30"):
        folder = raw / day
        folder.mkdir(parents=True)
        rows = []
        for i in range(400):
            when = f"{day.replace('/', '-')} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00"
            rows.append(f"id{rng.randrange(300)};{when};{rng.randrange(9)};Zoë {i % 7}")
        rows.append("bad;yesterday;1;x")
        text = "\n".join(rows) + "\n"
        (folder / "a.csv.gz").write_bytes(gzip.compress(text.encode("latin-1"), mtime=0))
        (folder / "b.csv").write_bytes(text.encode("latin-1"))
    pipe = Pipeline(
        name="dialects",
        columns=(Column("id"), Column("ts", "timestamp"), Column("n", "integer"), Column("who")),
        event_time="ts",
        key=("id", "ts"),
        outputs=(
            Output(
                "per_who",
                "SELECT who, count(*) AS c, sum(n) AS n FROM rows GROUP BY who",
                "{date:%Y%m%d}/per_who.csv",
            ),
        ),
        delimiter=";",
        header=False,
        encoding="latin-1",
    )
    duck, sp = run_both(pipe, raw, tmp_path)
    assert duck.rows_rejected == 4 and duck.duplicates > 0
    assert_same(tmp_path, duck, sp)
    assert "Zoë" in (tmp_path / "spark" / "20210130" / "per_who.csv").read_text()


def test_glob_characters_in_source_and_destination_names_byte_identical(spark, tmp_path):
    """File and folder names with `[`, `*`, `?`: DuckDB (staging) and Hadoop (the build's reads)
    both take a path for a glob; each must read the file or folder named, nothing else."""
    raw = tmp_path / "raw [eu]" / "2021" / "01" / "29"
    raw.mkdir(parents=True)
    for i, name in enumerate(["report[1].csv", "report1.csv", "a*b.csv", "a?b.csv", "ab.csv"]):
        rows = "".join(f"id{i}{j},2021-01-29 10:{j:02d}:00,{i}\n" for j in range(3))
        (raw / name).write_text("id,ts,n\n" + rows)
    pipe = Pipeline(
        name="names",
        columns=(Column("id"), Column("ts", "timestamp"), Column("n", "integer")),
        event_time="ts",
        key=("id",),
        outputs=(Output("per_n", "SELECT n, count(*) AS c FROM rows GROUP BY n", "{date:%Y%m%d}/per_n.csv"),),
    )
    dest = tmp_path / "[prod] {x}"
    duck, sp = run_both(pipe, tmp_path / "raw [eu]", dest)
    assert duck.rows_unique == 15
    assert_same(dest, duck, sp)
    assert (dest / "spark" / "20210129" / "per_n.csv").read_text() == "n,c\n0,3\n1,3\n2,3\n3,3\n4,3\n"
