"""Incremental days: a day keeps its unique rows, a late file is probed against them, and the result
is always the bytes of one run over every file.

Files arrive one by one (new keys, resends, rows that beat the day's winner, a row twice in one
file, bad rows, a file replaced); after the last, the outputs, counts and catalog equal those of
one run over the files as they are. Each way out of the incremental path (a file replaced, many
new rows, another declaration, a lost state file, --force) is taken where it must be, and
`--stage-only` keeps states without ever writing an output.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import logging
import os
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logroll
from logroll import build
from logroll.pipelines import get_pipeline
from logroll.pipelines.base import Output

from conftest import tree_bytes, tree_mtimes

HEADER = ["IMPRESSION_ID", "IMPRESSION_DATETIME", "CAMPAIGN_ID", "USER_ID", "DEVICE_TYPE"]
DAY = dt.date(2021, 1, 30)
EXAMPLES = settings(
    max_examples=int(os.environ.get("LOGROLL_PROP_EXAMPLES", "10")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
BAD = [
    ["bad-1", "2021-02-30 10:00:00", "5", "u", "tv"],
    ["bad-2", "2021-01-30 10:00:00", "5.5", "u", "tv"],
    ["", "2021-01-30 10:00:00", "5", "u", "tv"],
    ["bad-3", "2021-01-30 10:00:00"],
]


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    log = logging.getLogger("logroll")
    level = log.level
    log.setLevel(logging.WARNING)
    yield
    log.setLevel(level)


@contextlib.contextmanager
def always_incremental() -> Iterator[None]:
    """Small files are a large share of a small day: let them take the incremental path anyway."""
    share = build.MAX_NEW_SHARE
    build.MAX_NEW_SHARE = 1e9
    try:
        yield
    finally:
        build.MAX_NEW_SHARE = share


def good_row(rng: random.Random, ids: int) -> list[str]:
    t = dt.datetime.combine(DAY, dt.time()) + dt.timedelta(seconds=rng.randrange(86400))
    return [f"id-{rng.randrange(ids)}", f"{t:%Y-%m-%d %H:%M:%S}", str(rng.randrange(1, 30)), "u", "tv"]


def write_csv(path: Path, rows: list[list[str]], when: int) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue())
    # Deliveries are seconds apart: a rewrite keeps neither its size and mtime.
    os.utime(path, (1_700_000_000 + when, 1_700_000_000 + when))


def arrivals(seed: int, replace: bool | None = None) -> list[tuple[str, list[list[str]]]]:
    """(path under the source, rows) per delivery, in order: the day's files, then late ones in
    the next day's folder (new keys, resends, rows beating the winner, a row twice, bad rows),
    maybe a file delivered again with other rows."""
    rng = random.Random(seed)
    files, pool = [], []
    for i in range(3):
        rows = [good_row(rng, 300) for _ in range(rng.randrange(40, 120))]
        pool += rows
        files.append((f"2021/01/30/f{i}.csv", rows))
    for j in range(4):
        late = [good_row(rng, 600) for _ in range(rng.randrange(0, 20))]
        late += [list(rng.choice(pool)) for _ in range(rng.randrange(0, 8))]  # resent as they were
        for _ in range(rng.randrange(0, 4)):  # the same key with a smaller campaign: a new winner
            r = list(rng.choice(pool))
            r[2] = "0"
            late.append(r)
        if late:
            late.append(list(late[0]))  # twice in one file
        if rng.random() < 0.3:
            late.append(rng.choice(BAD))
        rng.shuffle(late)
        files.append((f"2021/01/31/late{j}.csv", late))
    if replace if replace is not None else rng.random() < 0.4:
        name, rows = files[rng.randrange(len(files))]
        files.append((name, rows[: len(rows) // 2] + [good_row(rng, 900)]))
    return files


def run(raw: Path, dest: Path, **kw: object) -> logroll.RunReport:
    return logroll.run(
        "impressions", kw.pop("date", "2021-01-30"), source=str(raw), dest=str(dest), threads=1, **kw
    )


def modes(report: logroll.RunReport) -> list[str]:
    return [p["build"] for p in report.partitions if p["day"] == "2021-01-30"]


def one_run(tmp: Path, files: list[tuple[str, list[list[str]]]]) -> tuple[logroll.RunReport, Path]:
    """The reference: every file as it is last delivered, in one run."""
    raw, dest = tmp / "all-raw", tmp / "all"
    for i, (rel, rows) in enumerate(dict(files).items()):
        write_csv(raw / rel, rows, i)
    return run(raw, dest), dest


def state_files(dest: Path) -> tuple[set[str], set[str]]:
    """(state files on disk, state files the catalog lists) of the pipeline's days."""
    on_disk = {
        str(p.relative_to(dest / "_logroll")) for p in (dest / "_logroll/days").rglob("*") if p.is_file()
    }
    con = sqlite3.connect(dest / "_logroll/catalog.sqlite")
    listed = {f for (files,) in con.execute("SELECT files FROM day_states") for f in json.loads(files)}
    con.close()
    return on_disk, listed


@EXAMPLES
@given(seed=st.integers(0, 2**32 - 1))
def test_files_arriving_one_by_one_give_the_bytes_of_one_run(seed: int, tmp_path_factory) -> None:
    files = arrivals(seed)
    tmp = tmp_path_factory.mktemp("inc")
    raw, dest = tmp / "raw", tmp / "inc"
    seen = []
    with always_incremental():
        for i, (rel, rows) in enumerate(files):
            write_csv(raw / rel, rows, i)
            report = run(raw, dest)
            assert report.rows_read == report.rows_valid + report.rows_rejected
            assert report.rows_in == report.rows_unique + report.duplicates
            seen += modes(report)
        last = report
    reference, ref_dest = one_run(tmp, files)
    assert tree_bytes(dest) == tree_bytes(ref_dest)
    assert (last.rows_in, last.rows_unique, last.duplicates) == (
        reference.rows_in,
        reference.rows_unique,
        reference.duplicates,
    )
    assert seen[0] == "full" and "incremental" in seen, seen
    on_disk, listed = state_files(dest)
    assert on_disk == listed and len(listed) >= 1
    mtimes = tree_mtimes(dest)
    again = run(raw, dest)
    assert again.nothing_to_do and tree_mtimes(dest) == mtimes


@EXAMPLES
@given(seed=st.integers(0, 2**32 - 1))
def test_stage_only_keeps_states_writes_nothing_and_the_build_after_is_one_run(
    seed: int, tmp_path_factory
) -> None:
    files = arrivals(seed)
    tmp = tmp_path_factory.mktemp("stage-only")
    raw, dest = tmp / "raw", tmp / "inc"
    with always_incremental():
        for i, (rel, rows) in enumerate(files):
            write_csv(raw / rel, rows, i)
            staged = run(raw, dest, date=None, stage_only=True)
            assert staged.files_staged == 1 and not staged.partitions_built and not staged.outputs
            assert tree_bytes(dest) == {}  # never an output
        built = run(raw, dest)
    reference, ref_dest = one_run(tmp, files)
    assert tree_bytes(dest) == tree_bytes(ref_dest)
    assert (built.rows_unique, built.duplicates) == (reference.rows_unique, reference.duplicates)
    assert modes(built) == ["outputs"]  # the states were current: the build read only them


def _late(raw: Path, rows: list[list[str]], name: str = "late.csv", when: int = 100) -> None:
    write_csv(raw / "2021/01/31" / name, rows, when)


def _day(tmp: Path, n: int = 200, seed: int = 1) -> tuple[Path, Path, list[list[str]]]:
    rng = random.Random(seed)
    rows = [good_row(rng, 10_000) for _ in range(n)]
    raw, dest = tmp / "raw", tmp / "dest"
    write_csv(raw / "2021/01/30/day.csv", rows, 0)
    assert modes(run(raw, dest)) == ["full"]
    return raw, dest, rows


def test_a_late_file_is_folded_in_and_a_row_beating_a_winner_compacts(tmp_path: Path) -> None:
    raw, dest, rows = _day(tmp_path)
    _late(raw, [["new-1", "2021-01-30 10:00:00", "3", "u", "tv"], rows[0]])
    assert modes(run(raw, dest)) == ["incremental"]
    base, plus = sorted(state_files(dest)[1])
    assert "base-" in base and "plus-" in plus
    beaten = list(rows[1])
    beaten[2] = "0"
    _late(raw, [beaten], "later.csv", 101)
    assert modes(run(raw, dest)) == ["incremental"]
    (only,) = state_files(dest)[1]  # the winner's old values are out: one new base
    assert "base-" in only
    assert tree_bytes(dest) == tree_bytes(one_run(tmp_path, [("2021/01/30/day.csv", rows),
        ("2021/01/31/late.csv", [["new-1", "2021-01-30 10:00:00", "3", "u", "tv"], rows[0]]),
        ("2021/01/31/later.csv", [beaten])])[1])  # fmt: skip
    assert state_files(dest)[0] == state_files(dest)[1]


def test_each_way_out_of_the_incremental_path_rebuilds_the_day_whole(tmp_path: Path) -> None:
    raw, dest, rows = _day(tmp_path)
    # Many new rows: probing them would cost more than a new dedupe.
    rng = random.Random(2)
    _late(raw, [good_row(rng, 10_000) for _ in range(100)])
    assert modes(run(raw, dest)) == ["full"]
    # A file replaced: its old rows may have won, with runners-up elsewhere.
    write_csv(raw / "2021/01/30/day.csv", rows[:150], 1)
    assert modes(run(raw, dest)) == ["full"]
    # A state file lost (another machine's cache, a cleaned disk): rebuilt, the orphan removed.
    for f in (dest / "_logroll/days").rglob("*.parquet"):
        f.unlink()
    _late(raw, [["x-1", "2021-01-30 01:00:00", "1", "u", "tv"]], "lost.csv", 102)
    assert modes(run(raw, dest)) == ["full"]
    # --force: re-staged and rebuilt from scratch.
    assert modes(run(raw, dest, force=True)) == ["full"]
    (dest / "_logroll/days/impressions/2021-01-30/base-9-crashed.parquet").write_bytes(b"left by a kill")
    assert run(raw, dest).nothing_to_do
    on_disk, listed = state_files(dest)
    assert on_disk == listed and len(listed) == 1


def test_other_parameters_reuse_the_state_and_other_columns_do_not(tmp_path: Path) -> None:
    raw, dest, _ = _day(tmp_path)
    # --initials changes the output's name, not the day's unique rows: only outputs are made.
    assert modes(run(raw, dest, initials="Ada_Lovelace")) == ["outputs"]
    pipe = get_pipeline("impressions")
    by_device = Output("by_device", "SELECT DEVICE_TYPE, count(*) AS n FROM rows GROUP BY 1",
                       "{date:%Y/%m/%d}/by_device.csv", order_by=("DEVICE_TYPE",))  # fmt: skip
    other = replace(pipe, outputs=(*pipe.outputs, by_device))
    report = logroll.run(other, "2021-01-30", source=str(raw), dest=str(dest), threads=1)
    assert modes(report) == ["full"]  # the rows it keeps would lack DEVICE_TYPE


def test_a_day_built_without_a_state_loses_its_state_row_and_then_its_files(tmp_path: Path) -> None:
    """What a build by an engine that keeps no state (Spark) records: no state for the day."""
    from logroll.catalog import Catalog

    raw, dest, _ = _day(tmp_path)
    catalog = Catalog(str(dest / "_logroll/catalog.sqlite"))
    try:
        assert set(catalog.day_states("impressions")) == {"2021-01-30"}
        built = catalog.partitions("impressions")["2021-01-30"]
        counts = {k: built[k] for k in ("rows_in", "rows_unique", "duplicates", "rows_out")}
        catalog.record_built(
            "impressions", "2021-01-30", built["fingerprint"], counts, built["outputs"], 9, None
        )
        assert catalog.day_states("impressions") == {}
    finally:
        catalog.close()
    assert run(raw, dest).nothing_to_do
    assert state_files(dest) == (set(), set())
