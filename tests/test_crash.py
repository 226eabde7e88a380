"""Crash safety, proven by killing real `logroll run` processes with SIGKILL.

Every scenario is run once uninterrupted (the reference), then again and again with the process
killed at a different moment: at each named fault point of src/logroll/faults.py (staging before
and after the catalog commit, an output published but not yet recorded, a temporary output not
yet renamed, garbage collection) and after wall-clock delays that land inside DuckDB's work.
After each kill the same command runs once more without a fault, and the result must equal the
reference: outputs and quarantine byte for byte, the catalog's per-file and per-day counts
exactly, no staged part nobody points at, and every finished run's report agreeing with the
files the catalog says it staged (so no file is counted twice).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from logroll import demo

from conftest import tree_bytes, tree_mtimes

MULTI_DAY = ("2021-01-29", "--to", "2021-01-31")
LATE_DAY = ("2021-02-01",)


def logroll(
    source: Path, dest: Path, args: tuple[str, ...], fault: str | None = None, trace: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGROLL_")}
    if fault:
        env["LOGROLL_FAULT_AT"] = fault
    if trace:
        env["LOGROLL_FAULT_TRACE"] = str(trace)
    cmd = [sys.executable, "-m", "logroll.cli", "run", "impressions", *args]
    cmd += ["--source", str(source), "--dest", str(dest), "--json", "--threads", "2"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def catalog_rows(dest: Path, query: str) -> list[sqlite3.Row]:
    con = sqlite3.connect(f"file:{dest / '_logroll' / 'catalog.sqlite'}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def snapshot(dest: Path) -> dict[str, Any]:
    """Everything a user or a later run depends on, minus what legitimately differs (times, ids)."""
    return snapshot_of(
        lambda q: catalog_rows(dest, q),
        tree_bytes(dest),
        tree_bytes(dest / "_logroll" / "quarantine", skip="\0"),
    )


def snapshot_of(
    rows: Callable[[str], list[Any]], outputs: dict[str, bytes], quarantine: dict[str, bytes]
) -> dict[str, Any]:
    """A snapshot from a catalog's rows (`rows(query)`), the outputs and the quarantine files."""
    files = {
        r["uri"]: (r["version"], r["status"], r["rows_read"], r["rows_valid"], r["rows_rejected"])
        for r in rows("SELECT * FROM files")
    }
    days = {
        r["day"]: (r["status"], r["rows_in"], r["rows_unique"], r["duplicates"], r["rows_out"], r["outputs"])
        for r in rows("SELECT * FROM partitions")
    }
    parts = sorted(
        (r["uri"], r["day"], r["version"], r["rows"])
        for r in rows("SELECT f.uri, p.* FROM parts p JOIN files f ON f.id = p.file_id")
    )
    # Each day's kept unique rows: what they reflect and how many files hold them (their names
    # carry the run that wrote them). File ids follow the order parallel staging finished in.
    uri_of = {r["id"]: r["uri"] for r in rows("SELECT id, uri FROM files")}
    states = {
        r["day"]: (
            sorted((uri_of[f], v, n) for f, v, n in json.loads(r["parts"])),
            r["rows_in"],
            r["rows_unique"],
            sorted(Path(f).name[:4] for f in json.loads(r["files"])),
        )
        for r in rows("SELECT * FROM day_states")
    }
    totals = Counter()
    for _, _, read, valid, rejected in files.values():
        totals.update(rows_read=read, rows_valid=valid, rows_rejected=rejected)
    return {
        "outputs": outputs,
        "quarantine": quarantine,
        "files": files,
        "days": days,
        "parts": parts,
        "states": states,
        "totals": dict(totals),
    }


def assert_no_orphans(dest: Path) -> None:
    """Every staged part on disk is one the catalog points at, and vice versa."""
    on_disk = {
        str(p.parent.parent.name)
        for p in (dest / "_logroll" / "staged" / "impressions").glob("*/__day=*/*.parquet")
    }
    pointed = {Path(r["path"]).parent.parent.name for r in catalog_rows(dest, "SELECT path FROM parts")}
    assert on_disk == pointed
    for r in catalog_rows(dest, "SELECT path FROM parts"):
        # Relative to DEST/_logroll, so that the state means the same on any machine.
        assert not Path(r["path"]).is_absolute(), r["path"]
        assert list((dest / "_logroll" / r["path"]).parent.glob("*.parquet")), f"part {r['path']} is gone"
    # Every day state file on disk is one the catalog lists, and every listed one is there.
    kept = {
        p.relative_to(dest / "_logroll").as_posix()
        for p in (dest / "_logroll/days").rglob("*")
        if p.is_file()
    }
    listed = {f for r in catalog_rows(dest, "SELECT files FROM day_states") for f in json.loads(r["files"])}
    assert kept == listed


def assert_reports_match_catalog(dest: Path, after_run: int) -> None:
    assert_reports_match(lambda q: catalog_rows(dest, q), after_run)


def assert_reports_match(rows: Callable[[str], list[Any]], after_run: int) -> None:
    """Each finished run reported exactly the rows of the files the catalog says it staged."""
    staged_by = Counter()
    for r in rows("SELECT * FROM files"):
        staged_by.update({(r["run_id"], "rows_read"): r["rows_read"], (r["run_id"], "files"): 1})
        staged_by.update({(r["run_id"], "rows_rejected"): r["rows_rejected"]})
    for run in rows(f"SELECT * FROM runs WHERE id > {after_run} AND report IS NOT NULL"):
        rep = json.loads(run["report"])
        assert rep["rows_read"] == staged_by[(run["id"], "rows_read")], run["id"]
        assert rep["rows_rejected"] == staged_by[(run["id"], "rows_rejected")], run["id"]
        staged = rep["files_staged"] + len(rep["files_rejected"])
        assert staged == staged_by[(run["id"], "files")], run["id"]


@dataclass
class Scenario:
    """A source, a destination as it is before the command, and the command's clean outcome."""

    name: str
    source: Path
    dest: Path
    pristine: Path | None  # copy of dest before the command (None: starts empty)
    args: tuple[str, ...]
    expected: dict[str, Any]
    points: list[str]  # the fault points a clean run passes, in order
    last_run: int  # runs already in the pristine catalog
    builds: dict[str, str] = field(default_factory=dict)  # day -> how the clean run built it

    def reset(self) -> None:
        shutil.rmtree(self.dest, ignore_errors=True)
        if self.pristine is not None:
            shutil.copytree(self.pristine, self.dest)

    def converge_after(self, *faults: str) -> None:
        """Run the command killed at each fault in turn, then cleanly; check the outcome."""
        self.reset()
        for fault in faults:
            killed = logroll(self.source, self.dest, self.args, fault=fault)
            assert killed.returncode == -signal.SIGKILL, (fault, killed.returncode, killed.stderr[-2000:])
        self.finish(faults)

    def finish(self, what: object) -> None:
        done = logroll(self.source, self.dest, self.args)
        assert done.returncode == 0, (what, done.stderr[-2000:])
        got = snapshot(self.dest)
        if got != self.expected:  # kept for a post-mortem: the catalog, parts and outputs as they are
            label = what if isinstance(what, str) else "-".join(map(str, what))
            kept = self.dest.with_name(f"{self.dest.name}-failed-{label}")
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(self.dest, kept)
            (kept / "rerun.out").write_text(done.stdout + "\n----\n" + done.stderr)
        # Counts first: they say more than two differing outputs do.
        for key in ("files", "parts", "totals", "days", "states", "outputs", "quarantine"):
            assert got[key] == self.expected[key], f"{self.name}: {key} differs after a kill at {what}"
        assert_no_orphans(self.dest)
        assert_reports_match_catalog(self.dest, self.last_run)
        assert not list(self.dest.rglob("*.tmp-*")), f"temporary files left after {what}"
        assert_no_scratch_and_no_ghost_runs(self.dest)


def assert_no_scratch_and_no_ghost_runs(dest: Path) -> None:
    """A killed run is marked crashed by the next one, which also removes its scratch files."""
    statuses = Counter(r["status"] for r in catalog_rows(dest, "SELECT status FROM runs"))
    assert statuses["running"] == 0, statuses
    assert not [p for p in (dest / "_logroll" / "tmp").glob("*") if p.exists()]


def _late_changes(raw: Path) -> None:
    """A late file (yesterday's and the day before's events, some already seen) and a resent file
    whose content changed under the same name."""
    seen = (raw / "2021/01/31/impressions_20210131_0.csv").read_text().splitlines()
    header, old_rows = seen[0], seen[1:]
    late = [r for r in old_rows[:40] if r.split(",")[1].startswith("2021-01-31")]  # duplicates
    late += [f"late-{i},2021-01-31 {i % 24:02d}:15:00,{i % 7},u{i},mobile" for i in range(60)]
    late += [f"later-{i},2021-01-30 {i % 24:02d}:45:00,{i % 5},u{i},tv" for i in range(30)]
    late += ["late-bad,2021-01-31 25:00:00,3,u,tv", "late-short,2021-01-31 01:00:00"]
    folder = raw / "2021/02/01"
    folder.mkdir(parents=True)
    (folder / "late_arrivals.csv").write_text("\n".join([header, *late]) + "\n")
    changed = raw / "2021/01/31/impressions_20210131_2.csv"
    lines = changed.read_text().splitlines()
    changed.write_text("\n".join(lines[:-50] + ["resent-1,2021-01-31 09:09:09,77,u,tv"]) + "\n")


def _late_file(raw: Path) -> None:
    """Only a late file, a few percent of two days' rows (some of them resent, one beating the
    day's winner): both days are brought up to date incrementally, from their kept rows."""
    seen = (raw / "2021/01/31/impressions_20210131_0.csv").read_text().splitlines()
    header, old_rows = seen[0], seen[1:]
    resent = [r for r in old_rows[:30] if r.split(",")[1].startswith("2021-01-31")]
    first = old_rows[0].split(",")
    beating = [",".join([first[0], first[1], "0", *first[3:]])] if first[1].startswith("2021-01-31") else []
    late = resent + beating + [f"late-{i},2021-01-31 {i % 24:02d}:20:00,{i % 7},u{i},tv" for i in range(40)]
    late += [f"later-{i},2021-01-30 {i % 24:02d}:40:00,{i % 5},u{i},tv" for i in range(20)]
    folder = raw / "2021/02/01"
    folder.mkdir(parents=True)
    (folder / "late_arrivals.csv").write_text("\n".join([header, *late]) + "\n")


def _scenario(name: str, tmp: Path) -> Scenario:
    source, dest = tmp / f"{name}-raw", tmp / f"{name}-results"
    demo.GENERATORS["impressions"](source, days=3, rows=3000)
    pristine, args, last_run = None, MULTI_DAY, 0
    if name in ("late", "incremental"):
        first = logroll(source, dest, MULTI_DAY)
        assert first.returncode == 0, first.stderr
        if name == "late":
            _late_changes(source)
            args = LATE_DAY
        else:
            _late_file(source)
        pristine, last_run = tmp / f"{name}-pristine", 1
        shutil.copytree(dest, pristine)
    trace = tmp / f"{name}-trace.txt"
    s = Scenario(name, source, dest, pristine, args, {}, [], last_run)
    s.reset()
    clean = logroll(source, dest, args, trace=trace)
    assert clean.returncode == 0, clean.stderr
    s.builds = {p["day"]: p["build"] for p in json.loads(clean.stdout)["partitions"]}
    s.expected = snapshot(dest)
    s.points = trace.read_text().split()
    # The reference itself: nothing lost, nothing twice, idempotent.
    assert_no_orphans(dest)
    assert_reports_match_catalog(dest, last_run)
    mtimes = tree_mtimes(dest)
    again = logroll(source, dest, args)
    assert again.returncode == 0 and json.loads(again.stdout)["nothing_to_do"], again.stderr
    assert snapshot(dest) == s.expected and tree_mtimes(dest) == mtimes
    return s


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Scenario]:
    tmp = tmp_path_factory.mktemp("crash")
    return {name: _scenario(name, tmp) for name in ("multiday", "late", "incremental")}


def test_reference_runs_pass_every_fault_point(scenarios: dict[str, Scenario]) -> None:
    multi, late, inc = scenarios["multiday"], scenarios["late"], scenarios["incremental"]
    assert multi.expected["totals"]["rows_rejected"] > 0
    assert len(multi.expected["days"]) == 3
    # The late run staged the late and the changed file, then rebuilt 01-30, 01-31 and 02-01,
    # each whole: the changed file held rows of 01-30 and 01-31, and 02-01 had no state.
    assert len(late.expected["days"]) == 4
    assert late.builds == {"2021-01-30": "full", "2021-01-31": "full", "2021-02-01": "full"}
    # Only a late file: both days it holds rows for are brought up to date incrementally.
    assert inc.builds == {"2021-01-30": "incremental", "2021-01-31": "incremental"}
    assert "state.written" in inc.points and len(inc.expected["states"]) == 3
    for s in (multi, late, inc):
        for p in ("stage.parts_written", "stage.before_commit", "stage.committed", "build.computed"):
            assert p in s.points, (s.name, p)
        for p in ("publish.tmp_written", "build.published", "build.recorded", "run.before_finish"):
            assert p in s.points, (s.name, p)


def _spread(points: list[str]) -> list[str]:
    """First and last occurrence of every named point, as NAME:N faults."""
    out = []
    for name in dict.fromkeys(points):
        n = points.count(name)
        out += [f"{name}:{k}" for k in sorted({1, n})]
    return out


def _the_rest(points: list[str]) -> list[str]:
    """Every other moment of a clean run, as NAME:N faults, in the order they happen."""
    spread, seen, out = set(_spread(points)), Counter(), []
    for name in points:
        seen[name] += 1
        if f"{name}:{seen[name]}" not in spread:
            out.append(f"{name}:{seen[name]}")
    return out


@pytest.mark.parametrize("name", ["multiday", "late", "incremental"])
def test_killed_at_each_named_point_then_rerun_converges(scenarios: dict[str, Scenario], name: str) -> None:
    s = scenarios[name]
    faults = _spread(s.points)
    assert len(faults) >= 15 and len(set(faults)) == len(faults)
    for fault in faults:
        s.converge_after(fault)


@pytest.mark.parametrize("name", ["multiday", "late", "incremental"])
def test_killed_twice_in_a_row_then_rerun_converges(scenarios: dict[str, Scenario], name: str) -> None:
    s = scenarios[name]
    if name == "incremental":
        # Die with a day's new state file written but not committed; the next run writes another
        # and dies removing the first once its own is committed; the one after cleans up.
        s.converge_after("state.written:1", "state.remove:1")
    else:
        # Die with a file's parts written but not committed, leaving orphans; the next run stages
        # it again and dies while collecting them; the one after cleans up.
        s.converge_after("stage.parts_written:2", "gc.remove:1")
    s.converge_after("build.published:1", "build.published:1", "build.recorded:1")


@pytest.mark.parametrize("name", ["multiday", "late", "incremental"])
def test_killed_after_wall_clock_delays_then_rerun_converges(
    scenarios: dict[str, Scenario], name: str
) -> None:
    """Kills that land anywhere, including inside DuckDB's COPY and SQLite's commit."""
    s = scenarios[name]
    for delay in (0.5, 1.1, 1.8):
        s.reset()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOGROLL_")}
        cmd = [sys.executable, "-m", "logroll.cli", "run", "impressions", *s.args]
        cmd += ["--source", str(s.source), "--dest", str(s.dest), "--threads", "2"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        s.finish(f"{delay}s")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["multiday", "late", "incremental"])
def test_killed_at_every_other_moment_then_rerun_converges(scenarios: dict[str, Scenario], name: str) -> None:
    """The moments the named-point test leaves out: every fourth by default (about a minute of
    CPU in all), every one of them with LOGROLL_CRASH_EXHAUSTIVE=1 (about four)."""
    s = scenarios[name]
    rest = _the_rest(s.points)
    assert len(rest) + len(_spread(s.points)) == len(s.points)
    stride = 1 if os.environ.get("LOGROLL_CRASH_EXHAUSTIVE") else 4
    for fault in rest[::stride]:
        s.converge_after(fault)


def test_killed_while_forcing_leaves_the_live_parts_intact(tmp_path: Path) -> None:
    """--force re-stages file versions the catalog already points at. A kill while their new parts
    are being written must not touch the parts the catalog still points at: a later run without
    --force builds from them."""
    source, dest = tmp_path / "raw", tmp_path / "results"
    demo.GENERATORS["impressions"](source, days=3, rows=3000)
    assert logroll(source, dest, MULTI_DAY).returncode == 0
    expected = snapshot(dest)
    killed = logroll(source, dest, ("2021-01-30", "--force"), fault="stage.writing_parts:3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    plain = logroll(source, dest, MULTI_DAY)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert snapshot(dest) == expected
    assert_no_orphans(dest)
    # Late rows for 01-30 make it dirty: its rebuild reads every part staged for it.
    late = source / "2021/01/31/late.csv"
    late.write_text("IMPRESSION_ID,IMPRESSION_DATETIME,CAMPAIGN_ID\nlate-1,2021-01-30 23:59:59,3\n")
    rebuilt = logroll(source, dest, ("2021-01-30",))
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    report = json.loads(rebuilt.stdout)
    assert "2021-01-30" in report["partitions_built"] and not report["partitions_failed"]
    day = expected["days"]["2021-01-30"]
    assert snapshot(dest)["days"]["2021-01-30"][1:3] == (day[1] + 1, day[2] + 1)  # rows_in, unique
