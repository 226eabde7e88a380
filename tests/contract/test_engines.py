"""One contract every engine passes (duckdb; spark, marked `spark`), on the same small cases.

Staging is per file and building per event day (engines/base.py: the Engine protocol). The DuckDB
engine is the reference: every engine must stage the same parts and counts, and build the same
output bytes from them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from logroll.engines import ENGINES, make_engine
from logroll.pipelines import get_pipeline
from logroll.stage.csv import stage_csv
from logroll.stage.jsonl import stage_jsonl
from logroll.stage.staged import Staged

ENGINE_PARAMS = [pytest.param(name, marks=[pytest.mark.spark] if name == "spark" else []) for name in ENGINES]

IMPRESSIONS_CSV = (
    "IMPRESSION_ID,IMPRESSION_DATETIME,CAMPAIGN_ID,USER_ID,DEVICE_TYPE\n"
    "a1,2021-01-30 10:15:00,7,u1,mobile\n"
    "a2,2021-01-30 10:45:00,7,u2,desktop\n"
    "a2,2021-01-30 10:45:00,7,u2,desktop\n"  # a duplicate: one row per key survives
    "a3,2021-01-30 23:59:59,8,u3,tv\n"
    "a4,2021-01-29 22:00:00,7,u4,mobile\n"  # late: yesterday's event in today's file
    "a5,2021-01-30 25:00:00,7,u5,mobile\n"  # bad timestamp: quarantined with its line
    "a6,2021-01-30 11:00:00,seven,u6,mobile\n"  # bad integer
)

WEBLOGS_JSONL = (
    '{"event_id": "e1", "timestamp": "01/02/2017 10:00:00", "user": {"id": 1}, '
    '"url": "https://www.a.com/x/y", "action": "page_view"}\n'
    "not json\n"
    '{"event_id": "e2", "timestamp": "01/02/2017 11:30:00", "user": {"id": 2}, '
    '"url": "https://b.com/p", "action": "claim"}\n'
)


@pytest.fixture(params=ENGINE_PARAMS)
def engine(request, tmp_path):
    options = {"master": "local[2]"} if request.param == "spark" else {}
    eng = make_engine(request.param, tmp_path / "engine", memory_limit="512MB", threads=2, **options)
    yield eng
    eng.close()


@pytest.fixture
def reference(tmp_path):
    eng = make_engine("duckdb", tmp_path / "reference", memory_limit="512MB", threads=2)
    yield eng
    eng.close()


def stage_file(eng, tmp: Path, name: str, text: str, pipeline_name: str) -> Staged:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / name
    path.write_text(text)
    pipe = get_pipeline(pipeline_name)
    stager = stage_jsonl if pipe.input_format == "jsonl" else stage_csv
    return stager(eng, path, str(path), "v1", pipe, tmp / "staged", tmp / "quarantine", name)


def test_stage_csv_splits_valid_rows_by_event_day_and_quarantines_the_rest(engine, reference, tmp_path):
    got = stage_file(engine, tmp_path / "e", "a.csv", IMPRESSIONS_CSV, "impressions")
    want = stage_file(reference, tmp_path / "r", "a.csv", IMPRESSIONS_CSV, "impressions")
    assert (got.rows_read, got.rows_valid, got.rows_rejected) == (7, 5, 2)
    assert got.rows_read == got.rows_valid + got.rows_rejected
    assert {d: rows for d, (rows, _) in got.parts.items()} == {"2021-01-29": 1, "2021-01-30": 4}
    assert {d: rows for d, (rows, _) in got.parts.items()} == {d: r for d, (r, _) in want.parts.items()}
    lines = Path(got.quarantine).read_text().splitlines()
    assert [ln.split(",")[1] for ln in lines[1:]] == ["7", "8"]  # file lines of the bad rows
    assert Path(got.quarantine).read_text() == Path(want.quarantine).read_text().replace(
        str(tmp_path / "r"), str(tmp_path / "e")
    )


def test_stage_jsonl_types_nested_fields_and_quarantines_bad_lines(engine, tmp_path):
    got = stage_file(engine, tmp_path, "a.jsonl", WEBLOGS_JSONL, "weblogs")
    assert (got.rows_read, got.rows_valid, got.rows_rejected) == (3, 2, 1)
    assert {d: rows for d, (rows, _) in got.parts.items()} == {"2017-02-01": 2}
    assert "invalid JSON" in Path(got.quarantine).read_text()


def test_build_day_dedupes_and_writes_the_reference_bytes(engine, reference, tmp_path):
    staged = stage_file(reference, tmp_path / "s", "a.csv", IMPRESSIONS_CSV, "impressions")
    pipe = get_pipeline("impressions")
    globs = [staged.parts["2021-01-30"][1]]
    got = engine.build_day("2021-01-30", globs, pipe, tmp_path / "out-e")
    want = reference.build_day("2021-01-30", globs, pipe, tmp_path / "out-r")
    assert (got.rows_in, got.rows_unique) == (4, 3)
    assert (got.rows_in, got.rows_unique) == (want.rows_in, want.rows_unique)
    (path, rows), (ref_path, ref_rows) = got.outputs["daily_agg"], want.outputs["daily_agg"]
    assert rows == ref_rows == 2  # campaign 7 at 10h (a1, a2), campaign 8 at 23h (a3)
    assert path.read_bytes() == ref_path.read_bytes()
    assert path.read_text().splitlines()[0] == "CAMPAIGN_ID,HOUR,IMPRESSION_COUNT"


def test_build_day_without_parts_is_empty_with_the_declared_header(engine, tmp_path):
    pipe = get_pipeline("impressions")
    got = engine.build_day(dt.date(2021, 1, 30).isoformat(), [], pipe, tmp_path / "out")
    path, rows = got.outputs["daily_agg"]
    assert (got.rows_in, got.rows_unique, rows) == (0, 0, 0)
    assert path.read_text().splitlines() == ["CAMPAIGN_ID,HOUR,IMPRESSION_COUNT"]


def test_engine_says_its_name(engine):
    assert engine.name in ENGINES
