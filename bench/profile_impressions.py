"""Profile: where logroll's CPU goes on the impressions benchmark, phase by phase (issue 16).

    .venv/bin/python bench/profile_impressions.py                  # 2M rows, 3 repeats
    .venv/bin/python bench/profile_impressions.py --rows 10000000  # the bench's size

Same generator and files as bench/impressions.py. Per repeat, each in its own process:
  hand      the hand-written DuckDB query (impressions.worker_sql)
  full      logroll's full build from an empty state, in-process through logroll.api.run with
            --parallel 1 (so that phases never overlap), CPU per phase by time.process_time
            (every thread of the process, DuckDB's included), exclusive of nested phases
  full-par  the same with the default --parallel, whole-process CPU only (what make bench runs)
  late      one late file of 1% of the day after the full build, phases as for full
  rerun     the nothing-new rerun through the CLI, whole-process CPU
  floors    DuckDB alone on the same files: the staging COPY taken apart (parse only, parse +
            cast + Parquet write, + the checks, + the key hash) and the build's dedupe taken
            apart (count only vs written, hash-first vs one GROUP BY), to say what bounds what.
CPU seconds are user + system (os.wait4 for whole processes); min and median over the repeats.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import impressions as bench  # noqa: E402  (the same generator and hand query)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Phases:
    """CPU per named phase, exclusive: time in a nested phase is not its caller's."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.stack = ["other (run loop, report, not wrapped)"]
        self.last = time.process_time()

    def _switch(self) -> None:
        now = time.process_time()
        self.cpu[self.stack[-1]] += now - self.last
        self.last = now

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        fn = getattr(owner, attr)

        def timed(*a: Any, **k: Any) -> Any:
            self._switch()
            self.stack.append(name)
            try:
                return fn(*a, **k)
            finally:
                self._switch()
                self.stack.pop()

        setattr(owner, attr, timed)

    def done(self) -> dict[str, float]:
        self._switch()
        return dict(self.cpu)


def child_run(args: argparse.Namespace) -> None:
    """One logroll run in this process with its phases timed; JSON of the phases to --out."""
    at_start = _cpu()  # the interpreter's own start-up
    t = time.process_time()
    import duckdb  # noqa: F401
    import pyarrow  # noqa: F401

    from logroll import api, build, discover, runner, workspace
    from logroll.catalog import store
    from logroll.engines import dedupe, duckdb_build, duckdb_engine, duckdb_stage
    from logroll.stage import csv as stage_csv

    imports = time.process_time() - t
    ph = Phases()
    w = ph.wrap
    w(discover, "list_sources", "listing")
    for m in ("files", "parts", "partitions", "day_states", "start_run", "mark_crashed"):
        w(store.Catalog, m, "catalog reads")
    for m in ("record_staged", "record_built", "finish_run", "record_day_state"):
        w(store.Catalog, m, "catalog writes")
    w(workspace.StateSession, "commit", "catalog commit")
    w(runner.BatchRun, "stage_file", "stage: other (header, quarantine, part moves)")
    w(stage_csv, "prepare", "stage: independent record count (reader.prepare)")
    w(stage_csv, "verify", "stage: accounting check (verify)")
    w(duckdb_engine, "stage_csv_parts", "stage: one COPY read_csv+checks+hash -> parquet")
    for m in ("structural_rejects", "footer", "_semantic", "_split"):
        w(duckdb_stage, m, f"stage: {m.strip('_')}")
    w(build, "plan_state", "build: plan (state row, file checks)")
    w(duckdb_build, "build_day", "build: counts, views (rest of build_day)")
    w(dedupe, "stored_hash_usable", "build: footer tag checks")
    w(duckdb_build, "_full_state", "build: hash-first dedupe + write day state")
    w(duckdb_build, "_incremental", "build: incremental probe + write day state")
    w(duckdb_build, "write_outputs", "build: output SQL")
    w(duckdb_build, "write_output", "build: write output file")
    w(build, "_publish_all", "build: publish output")
    for m in ("remove_stale_state", "state_garbage"):
        w(build, m, "day-state maintenance")
    w(workspace.StateSession, "collect_garbage", "day-state maintenance")
    report = api.run(
        "impressions", args.day, source=args.source, dest=args.dest, parallel=args.parallel or None
    )
    phases = ph.done()
    phases["process start-up (interpreter)"] = at_start
    phases["imports (duckdb, pyarrow, logroll)"] = imports
    out = {"phases": phases, "rows_read": report.rows_read, "modes": [p["build"] for p in report.partitions]}
    Path(args.out).write_text(json.dumps(out))


def _timed(con: Any, query: str) -> float:
    t = time.process_time()
    con.execute(query)
    return time.process_time() - t


def child_floors(args: argparse.Namespace) -> None:
    """DuckDB alone on the same files and the full build's parts: what each piece costs."""
    import duckdb

    from logroll.engines import dedupe, duckdb_build, projection, sql
    from logroll.engines.duckdb_stage import PART_FORMAT, part_columns
    from logroll.pipelines import get_pipeline
    from logroll.stage.csv import check_header
    from logroll.stage.reader import prepare, read_csv_sql

    pipe = get_pipeline("impressions")
    files = json.loads(Path(args.files_list).read_text())
    scratch = Path(args.dest) / "floors"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    spill = scratch / "spill"
    con = duckdb.connect(config={"memory_limit": "800MB", "temp_directory": str(spill)})
    con.execute("SET enable_progress_bar = false; SET preserve_insertion_order = true")
    res: dict[str, float] = defaultdict(float)
    for i, f in enumerate(files):
        prep = prepare(Path(f), spool_dir=scratch)
        reader = read_csv_sql(prep, rejects_table=f"rj{i}", rejects_scan=f"rs{i}")
        header = check_header([h.strip() for h in prep.header], pipe)
        raw, _, carried = part_columns(pipe, header)
        out = sql.literal(str(scratch / f"p{i}.parquet"))
        c = {n: raw[n] for n in ("IMPRESSION_ID", "IMPRESSION_DATETIME", "CAMPAIGN_ID")}
        bare = (
            f"SELECT {c['IMPRESSION_ID']} AS IMPRESSION_ID, "
            f"strptime({c['IMPRESSION_DATETIME']}, '%Y-%m-%d %H:%M:%S') AS IMPRESSION_DATETIME, "
            f"{c['CAMPAIGN_ID']}::BIGINT AS CAMPAIGN_ID FROM {reader}"
        )
        res["S0 parse only: count(*) of the strict all-VARCHAR read_csv"] += _timed(
            con, f"SELECT count(*) FROM {reader}"
        )
        res["S1 parse + cast 3 columns + Parquet write (no checks, no hash)"] += _timed(
            con, f"COPY ({bare}) TO {out} ({PART_FORMAT})"
        )
        checked = sql.staged_select(pipe, raw, reader, carried, None, False)
        res["S2 logroll's staged SELECT without the hash -> Parquet"] += _timed(
            con, f"COPY ({checked}) TO {out} ({PART_FORMAT})"
        )
        hashed = sql.staged_select(pipe, raw, reader, carried, None, True)
        res["S3 logroll's staged SELECT with the hash -> Parquet (= staging)"] += _timed(
            con, f"COPY ({hashed}) TO {out} ({PART_FORMAT})"
        )
        t = time.process_time()
        prepare(Path(f), spool_dir=scratch)
        res["S4 independent record count (reader.prepare)"] += time.process_time() - t
        con.execute(f"DROP TABLE IF EXISTS rj{i}; DROP TABLE IF EXISTS rs{i}")
        prep.cleanup()
    # The build, on the parts the full build staged (the day's folder of every file).
    parts = sorted(str(p) for p in Path(args.staged).rglob("*.parquet"))
    files_sql = duckdb_build._files(parts)
    carried = projection.carried_columns(pipe)
    keep = projection.needed_columns(pipe, carried)
    hashed_src, stored = duckdb_build._parts(con, pipe, parts)
    plain = sql.dedupe_select(
        pipe, f"(SELECT * EXCLUDE ({dedupe.HASH_COLUMN}) FROM {hashed_src})", carried, keep
    )
    first = dedupe.unique_rows_select(pipe, hashed_src, duckdb_build._bound(con, plain), carried, keep)
    exact = sql.dedupe_select(
        pipe, f"(SELECT {', '.join(carried)} FROM read_parquet({files_sql}))", carried, keep
    )
    base = sql.literal(str(scratch / "base.parquet"))
    res["B0 scan the parts (count(*) of id, ts, campaign)"] = _timed(
        con,
        f"SELECT count(IMPRESSION_ID), count(IMPRESSION_DATETIME), count(CAMPAIGN_ID) FROM read_parquet({files_sql})",
    )
    res["B1 hash-first unique rows, counted (no write)"] = _timed(con, f"SELECT count(*) FROM ({first})")
    res["B2 hash-first unique rows -> day state file (= build)"] = _timed(
        con, f"COPY ({first}) TO {base} ({duckdb_build.STATE_FORMAT})"
    )
    res["B3 exact GROUP BY dedupe, counted (no hash-first)"] = _timed(con, f"SELECT count(*) FROM ({exact})")
    res["B4 output SQL over the day state (CREATE TABLE)"] = _timed(
        con,
        f"CREATE TEMP VIEW rows AS SELECT * FROM read_parquet({base}); "
        f"CREATE TEMP TABLE __out AS {pipe.outputs[0].sql}",
    )
    res["stored hash used"] = float(stored)
    shutil.rmtree(scratch, ignore_errors=True)
    Path(args.out).write_text(json.dumps(res))


def wait_cpu(cmd: list[str], log: Path) -> float:
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=err, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"profile: {' '.join(cmd[:5])} failed:\n{log.read_text()[-2000:]}")
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--day", default="2021-01-30")
    ap.add_argument("--dupes", type=float, default=0.02)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--child", choices=["run", "floors"], help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--dest", help=argparse.SUPPRESS)
    ap.add_argument("--staged", help=argparse.SUPPRESS)
    ap.add_argument("--files-list", help=argparse.SUPPRESS)
    ap.add_argument("--parallel", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child == "run":
        child_run(args)
        return 0
    if args.child == "floors":
        child_floors(args)
        return 0

    day = dt.date.fromisoformat(args.day)
    raw, files = bench.generate(args.data, day, args.rows, args.files, args.dupes)
    work = args.data / "profile"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    listing = work / "files.json"
    listing.write_text(json.dumps([str(f) for f in files]))
    me = [sys.executable, str(Path(__file__).resolve())]
    dest = work / "dest"
    runs: list[dict[str, Any]] = []
    loads = []
    for r in range(args.repeat):
        loads.append(os.getloadavg()[1])
        bench._clear_late(raw, day)
        one: dict[str, Any] = {}
        hand = [sys.executable, str(HERE / "impressions.py"), "--worker", "sql", "--files-list", str(listing)]
        one["hand"] = wait_cpu([*hand, "--day", args.day, "--out", str(work / "sql.csv")], work / "hand.log")
        shutil.rmtree(dest, ignore_errors=True)
        par = bench.logroll_cmd(
            raw, dest, args.day, argparse.Namespace(memory_limit=None, threads=None, parallel=None)
        )
        one["full-par"] = wait_cpu(par, work / "full-par.log")
        shutil.rmtree(dest, ignore_errors=True)
        for tag in ("full", "late"):
            if tag == "late":
                # the floors first, on the full build's parts only
                staged = dest / "_logroll" / "staged"
                floors = [*me, "--child", "floors", "--files-list", str(listing), "--dest", str(work)]
                wait_cpu(
                    [*floors, "--staged", str(staged), "--out", str(work / "floors.json")],
                    work / "floors.log",
                )
                one["floors"] = json.loads((work / "floors.json").read_text())
                bench.add_late_file(
                    raw, day, max(1, args.rows // 100), max(1, int(args.rows * (1 - args.dupes)))
                )
            out = work / f"{tag}.json"
            run = [*me, "--child", "run", "--day", args.day, "--source", str(raw), "--dest", str(dest)]
            one[tag] = wait_cpu([*run, "--out", str(out)], work / f"{tag}.log")
            one[tag + "-phases"] = json.loads(out.read_text())
        one["rerun"] = wait_cpu(par, work / "rerun.log")
        bench._clear_late(raw, day)
        runs.append(one)
        print(
            f"repeat {r + 1}: {json.dumps({k: v for k, v in one.items() if isinstance(v, float)})}",
            file=sys.stderr,
        )
    (work / "runs.json").write_text(json.dumps(runs, indent=1))
    print(render(args, runs, loads))
    return 0


def _mm(values: list[float]) -> str:
    return f"{min(values):.2f} | {statistics.median(values):.2f}"


def render(args: argparse.Namespace, runs: list[dict[str, Any]], loads: list[float]) -> str:
    get: Callable[[str], list[float]] = lambda k: [r[k] for r in runs]  # noqa: E731
    lines = [
        f"Profile: {args.rows:,} rows in {args.files} files, {len(runs)} repeats, load average "
        f"{min(loads):.1f}-{max(loads):.1f} (5 min); CPU seconds (user + system), min | median.",
        "",
        "| whole process | CPU s min | median |",
        "|---|---:|---:|",
    ]
    for k, name in [
        ("hand", "hand-written DuckDB query"),
        ("full-par", "logroll full build (default --parallel, as make bench)"),
        ("full", "logroll full build (--parallel 1, profiled)"),
        ("late", "logroll late file (--parallel 1, profiled)"),
        ("rerun", "logroll rerun, nothing new"),
    ]:
        lines.append(f"| {name} | {_mm(get(k))} |")
    for tag in ("full", "late"):
        lines += ["", f"| {tag}: phase | CPU s min | median |", "|---|---:|---:|"]
        names = sorted({n for r in runs for n in r[f"{tag}-phases"]["phases"]})
        for n in sorted(
            names, key=lambda n: -statistics.median(r[f"{tag}-phases"]["phases"].get(n, 0) for r in runs)
        ):
            lines.append(f"| {n} | {_mm([r[f'{tag}-phases']['phases'].get(n, 0.0) for r in runs])} |")
    lines += ["", "| floor (DuckDB alone, same files / parts) | CPU s min | median |", "|---|---:|---:|"]
    for n in runs[0]["floors"]:
        lines.append(f"| {n} | {_mm([r['floors'][n] for r in runs])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
