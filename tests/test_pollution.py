"""The pollution fuzzer through the real staging (stage.csv.stage_csv_file, the DuckDB engine's
one-pass COPY, the quarantine file): valid files with the damage real CSV files carry
(tests/pollution.py), then

- the accounting invariant: records = header + skipped + blank + valid + rejected, where
  `records` must also equal an independent count made here, in the test: the file's physical
  lines (split at LF, CRLF, CR) minus the line breaks held inside the records' own values;
- no staged row differs from the same file's clean rows (beyond what the damage can make
  look like a valid row, e.g. a stray quote that pairs with a later one);
- every quarantine line number is a physical line of the file.

Bounded for CI (POLLUTION_EXAMPLES, default 200: about ten seconds); set it higher for a
longer hunt. tests/data/pollution/ keeps the worst cases met as small regression files."""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings

from logroll.engines.duckdb_engine import DuckDBEngine
from logroll.errors import FileRejected
from logroll.pipelines.base import Column, Output, Pipeline
from logroll.stage.csv import CsvFile, stage_csv_file
from logroll.stage.dialect import Limits
from pollution import SMALL, apply, polluted

EXAMPLES = int(os.environ.get("POLLUTION_EXAMPLES", "200"))
CORPUS = Path(__file__).resolve().parent / "data" / "pollution"
# excerpts long enough to keep every line break of a quarantined record (for the count below)
LIMITS = Limits(
    max_line_bytes=SMALL.max_line_bytes,
    max_quoted_bytes=SMALL.max_quoted_bytes,
    max_quoted_lines=SMALL.max_quoted_lines,
    excerpt_bytes=SMALL.max_line_bytes * 2,
    chunk_bytes=SMALL.chunk_bytes,
)


def pipeline(ncols: int, skip: int) -> Pipeline:
    """Every column text, rows kept whole, the day of the folder: staging decides everything."""
    return Pipeline(
        name="fuzz",
        columns=tuple(Column(f"h{i}", required=False) for i in range(ncols)),
        event_time="arrival",
        key=(),
        outputs=(Output("o", "SELECT * FROM rows", "{date:%Y%m%d}.csv"),),
        skip_rows=skip,
    )


def breaks(value: str) -> int:
    return len(re.findall(r"\r\n|\r|\n", value))


def physical_lines(data: bytes) -> int:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data:
        return 0
    return len(re.findall(rb"\r\n|\r|\n", data)) + (0 if data.endswith((b"\n", b"\r")) else 1)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = DuckDBEngine(tmp_path_factory.mktemp("engine"), threads=1)
    yield eng
    eng.close()


def stage_case(engine: DuckDBEngine, tmp: Path, bad: bytes, ncols: int, skip: int):
    src = tmp / "f.csv"
    src.write_bytes(bad)
    job = CsvFile("file:///f.csv", "v1", tmp / "staged", tmp / "q", "f", arrival="2021-01-30")
    staged = stage_csv_file(engine, src, pipeline(ncols, skip), job, LIMITS)
    rows: list[tuple[str, ...]] = []
    if staged.parts:
        cols = ", ".join(f'"h{i}"' for i in range(ncols))
        glob = staged.parts["2021-01-30"][1]
        rows = [
            tuple(v or "" for v in r)
            for r in duckdb.sql(f"SELECT {cols} FROM read_parquet('{glob}')").fetchall()
        ]
    quarantine: list[list[str]] = []
    if staged.quarantine:
        with open(staged.quarantine, newline="") as fh:
            quarantine = list(csv.reader(fh))[1:]
    return staged, rows, quarantine


def check_case(engine: DuckDBEngine, tmp: Path, header, clean_rows, data, spans, damages, seed) -> None:
    ncols = len(header)
    bad, skip, allowance, header_damaged, strict = apply(data, spans, damages, seed, ncols)
    try:
        staged, rows, quarantine = stage_case(engine, tmp, bad, ncols, skip)
    except FileRejected as exc:  # a header that cannot be read rejects the whole file
        assert header_damaged or not strict or skip, (str(exc), damages)
        return
    # the invariant, as staging reports it
    assert (
        staged.records
        == staged.header + staged.skipped + staged.blank + staged.rows_valid + staged.rows_rejected
    )
    assert staged.rows_read == staged.rows_valid + staged.rows_rejected == len(rows) + len(quarantine)
    # ... and against this test's own count of physical lines (exact when the header is the
    # declared one: then every value is staged and its own line breaks are seen here)
    inside = sum(breaks(v) for r in rows for v in r) + sum(breaks(q[3]) for q in quarantine)
    lines = physical_lines(bad)
    if strict:
        assert staged.records == lines - inside, (staged, damages)
    else:
        assert staged.records <= lines - inside, (staged, damages)
    assert all(1 <= int(q[1]) <= lines for q in quarantine)
    assert len({q[1] for q in quarantine}) == len(quarantine), "one quarantine entry per record"
    for row in rows:
        assert len(row) == ncols and not any("\x00" in v for v in row)
    if strict:
        norm = Counter(tuple(v.replace("\r\n", "\n").replace("\r", "\n") for v in r) for r in clean_rows)
        got = Counter(tuple(v.replace("\r\n", "\n").replace("\r", "\n") for v in r) for r in rows)
        extra = got - norm
        assert sum(extra.values()) <= allowance, (extra, damages)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(polluted())
def test_pollution_through_staging(engine, tmp_path_factory, case):
    header, rows, data, spans, damages, seed = case
    check_case(engine, tmp_path_factory.mktemp("case"), header, rows, data, spans, damages, seed)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.csv")), ids=lambda p: p.name)
def test_pollution_corpus(engine, tmp_path, path):
    """The worst cases met, kept small: staged with the invariant and the independent count."""
    bad = path.read_bytes()
    skip = int(m.group(1)) if (m := re.search(r"skip(\d)", path.name)) else 0
    ncols = int(m.group(1)) if (m := re.search(r"(\d+)col", path.name)) else 4
    try:
        staged, rows, quarantine = stage_case(engine, tmp_path, bad, ncols, skip)
    except FileRejected:
        assert "header" in path.name
        return
    inside = sum(breaks(v) for r in rows for v in r) + sum(breaks(q[3]) for q in quarantine)
    assert staged.records == physical_lines(bad) - inside
    assert (
        staged.records
        == staged.header + staged.skipped + staged.blank + staged.rows_valid + staged.rows_rejected
    )


def test_a_huge_line_is_generated_not_committed(engine, tmp_path):
    """A line of 6 MiB (over the default 4 MiB limit) in the middle of a file: one reject."""
    data = b"h0,h1\n1,2\n3," + b"x" * (6 << 20) + b"\n5,6\n"
    src = tmp_path / "f.csv"
    src.write_bytes(data)
    job = CsvFile("file:///f.csv", "v1", tmp_path / "staged", tmp_path / "q", "f", arrival="2021-01-30")
    staged = stage_csv_file(engine, src, pipeline(2, 0), job)
    assert (staged.records, staged.rows_valid, staged.rows_rejected) == (4, 2, 1)
