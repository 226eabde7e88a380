"""Benchmark: logroll's `impressions` build against the plain alternatives, on the same data, in one run.

    .venv/bin/python bench/impressions.py                 # ~10M rows in 24 files for one day
    .venv/bin/python bench/impressions.py --rows 1000000  # a quick run

Contenders, each in its own subprocess so that peak RSS is its own (os.wait4):
  logroll       the CLI, full build from an empty state
  duckdb-sql    one hand-written DuckDB query over the same files (the strongest plain alternative)
  pandas        the seeds' approach: read every CSV with pandas, drop_duplicates, groupby
Then one late file (1% of the day's rows, in the next day's folder) and an incremental run, then a
rerun with nothing new; then the day's files "arrive" in 24 batches, each followed by
`run --stage-only`, and `run DAY` after the last one is timed (end-of-day latency). All outputs
are checked to agree; the table goes to bench/results.md (and the README's benchmark table).
Absolute times on a shared machine are noise: read the ratios.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KEY = ("IMPRESSION_ID", "IMPRESSION_DATETIME")
DEVICES = ("mobile", "desktop", "tablet", "tv")

# Targets from issue 16, on the 2-core machine.
MAX_RATIO_VS_SQL = 1.5
MIN_SPEEDUP_VS_PANDAS = 3.0
MAX_RSS_MIB = 1024
MAX_LATE_SHARE = 0.15  # (late run - nothing-new rerun) / full build
MAX_RERUN_SECONDS = 0.5
MAX_END_OF_DAY_VS_SQL = 0.5  # `run DAY` after the day's files were staged with --stage-only
BATCHES = 24


# ---- data ------------------------------------------------------------------------------------
def _rows_sql(day: dt.date, lo: int, hi: int, step: int, unique: int, salt: str) -> str:
    """Rows at positions lo, lo+step, ... < hi. Position p < `unique` is impression p; later positions
    resend an earlier impression (an upstream retry), byte for byte. Every field is a hash of the
    impression number, so the data is the same on every machine."""
    h = f"hash(u, '{salt}')"
    return f"""
        SELECT md5('{salt}' || u::VARCHAR) AS IMPRESSION_ID,
               strftime(TIMESTAMP '{day} 00:00:00' + to_seconds(({h} % 86400)::BIGINT), '%Y-%m-%d %H:%M:%S')
                   AS IMPRESSION_DATETIME,
               1 + (hash(u, 'c{salt}') % 400)::BIGINT AS CAMPAIGN_ID,
               'user-' || (hash(u, 'u{salt}') % 2000000)::VARCHAR AS USER_ID,
               {list(DEVICES)}[1 + (hash(u, 'd{salt}') % {len(DEVICES)})::INTEGER] AS DEVICE_TYPE
        FROM (SELECT CASE WHEN p < {unique} THEN p ELSE (hash(p, 'dup') % {unique})::BIGINT END AS u
              FROM range({lo}, {hi}, {step}) t(p))
    """


def generate(data: Path, day: dt.date, rows: int, files: int, dupes: float) -> tuple[Path, list[Path]]:
    """SOURCE/YYYY/MM/DD/part_NN.csv for one day, written by DuckDB (no Python row loop).
    Reused when a previous run generated the same parameters."""
    import duckdb

    tag = f"{day:%Y%m%d}-{rows}-{files}-{dupes:g}"
    raw = data / tag / "raw"
    manifest = data / tag / "manifest.json"
    folder = raw / f"{day:%Y/%m/%d}"
    if manifest.exists():
        names = json.loads(manifest.read_text())["files"]
        paths = [folder / n for n in names]
        if all(p.exists() for p in paths):
            _clear_late(raw, day)
            return raw, paths
    shutil.rmtree(data / tag, ignore_errors=True)
    folder.mkdir(parents=True)
    unique = max(1, int(rows * (1 - dupes)))
    con = duckdb.connect()
    paths = []
    for i in range(files):
        path = folder / f"impressions_{day:%Y%m%d}_{i:02d}.csv"
        con.execute(
            f"COPY ({_rows_sql(day, i, rows, files, unique, 'imp')}) TO '{path}' (FORMAT csv, HEADER true)"
        )
        paths.append(path)
    con.close()
    manifest.write_text(json.dumps({"rows": rows, "files": [p.name for p in paths]}))
    return raw, paths


def _late_folder(raw: Path, day: dt.date) -> Path:
    return raw / f"{day + dt.timedelta(days=1):%Y/%m/%d}"


def _clear_late(raw: Path, day: dt.date) -> None:
    shutil.rmtree(_late_folder(raw, day), ignore_errors=True)


def add_late_file(raw: Path, day: dt.date, rows: int, unique_total: int) -> tuple[Path, int]:
    """One file in the next day's folder holding `rows` rows of `day`: half new impressions, half
    resent ones that the day already holds (they must count once)."""
    import duckdb

    folder = _late_folder(raw, day)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"late_{day:%Y%m%d}.csv"
    new = rows // 2
    con = duckdb.connect()
    # New impressions get numbers past the day's own; resent ones reuse numbers below `unique_total`.
    con.execute(
        f"""COPY (
            SELECT * FROM ({_rows_sql(day, unique_total, unique_total + new, 1, unique_total + new, "imp")})
            UNION ALL
            SELECT * FROM ({_rows_sql(day, unique_total + new, unique_total + rows, 1, unique_total, "imp")})
        ) TO '{path}' (FORMAT csv, HEADER true)"""
    )
    con.close()
    return path, rows


# ---- contenders (each runs in its own process) -------------------------------------------------
def worker_sql(files: list[str], day: str, out: str, threads: int | None) -> None:
    """What a careful engineer writes by hand: explicit types, one scan, dedupe, aggregate."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    columns = (
        "{'IMPRESSION_ID': 'VARCHAR', 'IMPRESSION_DATETIME': 'TIMESTAMP', 'CAMPAIGN_ID': 'BIGINT', "
        "'USER_ID': 'VARCHAR', 'DEVICE_TYPE': 'VARCHAR'}"
    )
    listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    next_day = dt.date.fromisoformat(day) + dt.timedelta(days=1)
    con.execute(
        f"""COPY (
            SELECT CAMPAIGN_ID, CAST(hour(IMPRESSION_DATETIME) AS INTEGER) AS HOUR, count(*) AS IMPRESSION_COUNT
            FROM (
                SELECT IMPRESSION_ID, IMPRESSION_DATETIME, min(CAMPAIGN_ID) AS CAMPAIGN_ID
                FROM read_csv({listing}, header = true, auto_detect = false, delim = ',', quote = '"',
                              columns = {columns}, timestampformat = '%Y-%m-%d %H:%M:%S')
                WHERE IMPRESSION_DATETIME >= DATE '{day}' AND IMPRESSION_DATETIME < DATE '{next_day}'
                GROUP BY IMPRESSION_ID, IMPRESSION_DATETIME
            )
            GROUP BY 1, 2 ORDER BY 1, 2
        ) TO '{out}' (FORMAT csv, HEADER true)"""
    )


def worker_pandas(files: list[str], day: str, out: str) -> None:
    """The seeds' approach: every file into one DataFrame, drop_duplicates, groupby."""
    import pandas as pd

    df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    df["IMPRESSION_DATETIME"] = pd.to_datetime(df["IMPRESSION_DATETIME"], format="%Y-%m-%d %H:%M:%S")
    df = df[df["IMPRESSION_DATETIME"].dt.date == dt.date.fromisoformat(day)]
    df = df.drop_duplicates(subset=list(KEY))
    df["HOUR"] = df["IMPRESSION_DATETIME"].dt.hour
    agg = df.groupby(["CAMPAIGN_ID", "HOUR"]).size().reset_index(name="IMPRESSION_COUNT")
    agg.sort_values(["CAMPAIGN_ID", "HOUR"]).to_csv(out, index=False)


# ---- measuring -----------------------------------------------------------------------------------
@dataclass
class Measured:
    seconds: float
    cpu: float  # user + system seconds: less sensitive than wall time to a busy machine
    rss_mib: float
    stdout: str


def measure(cmd: list[str], log: Path) -> Measured:
    """Wall time and peak RSS of one child process (and the children it waited for)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out_path = log.with_suffix(".out")
    with open(out_path, "w") as out, open(log, "w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text()[-2000:]
        sys.exit(f"bench: {' '.join(cmd[:4])} ... exited {proc.returncode}; stderr tail:\n{tail}")
    return Measured(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out_path.read_text())


def read_agg(path: Path) -> list[tuple[int, int, int]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if rows[0] != ["CAMPAIGN_ID", "HOUR", "IMPRESSION_COUNT"]:
        sys.exit(f"bench: {path} has header {rows[0]}")
    return sorted((int(a), int(b), int(c)) for a, b, c in rows[1:])


def logroll_cmd(raw: Path, dest: Path, day: str, args: argparse.Namespace, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "logroll.cli", "run", "impressions", day, *extra]
    cmd += ["--source", str(raw), "--dest", str(dest), "--json"]
    if args.memory_limit:
        cmd += ["--memory-limit", args.memory_limit]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.parallel:
        cmd += ["--parallel", str(args.parallel)]
    return cmd


def best_of(n: int, fn) -> Measured:  # noqa: ANN001 - a zero-arg callable returning Measured
    runs = [fn() for _ in range(n)]
    return min(runs, key=lambda m: m.seconds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows in the day (default 10M)")
    ap.add_argument("--files", type=int, default=24, help="files in the day's folder (default 24)")
    ap.add_argument("--day", default="2021-01-30")
    ap.add_argument("--dupes", type=float, default=0.02, help="share of resent rows (default 0.02)")
    ap.add_argument("--data", type=Path, default=HERE / "data", help="where data is generated (git-ignored)")
    ap.add_argument("--results", type=Path, default=HERE / "results.md")
    ap.add_argument("--repeat", type=int, default=1, help="runs per contender; the fastest is reported")
    ap.add_argument("--memory-limit", default=None, help="passed to logroll (default: logroll's default)")
    ap.add_argument("--threads", type=int, default=None, help="threads for logroll and DuckDB (default: all)")
    ap.add_argument("--parallel", type=int, default=None, help="passed to logroll (files staged at once)")
    ap.add_argument("--skip-pandas", action="store_true", help="leave pandas out (it is slow and large)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--worker", choices=["sql", "pandas"], help=argparse.SUPPRESS)
    ap.add_argument("--files-list", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        files = json.loads(Path(args.files_list).read_text())
        if args.worker == "sql":
            worker_sql(files, args.day, args.out, args.threads)
        else:
            worker_pandas(files, args.day, args.out)
        return 0

    day = dt.date.fromisoformat(args.day)
    work = args.data / "runs"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    t0 = time.perf_counter()
    raw, files = generate(args.data, day, args.rows, args.files, args.dupes)
    size_mib = sum(f.stat().st_size for f in files) / 2**20
    print(
        f"data: {args.rows:,} rows in {len(files)} files, {size_mib:,.0f} MiB, under {raw} "
        f"({time.perf_counter() - t0:.1f}s)",
        file=sys.stderr,
    )
    for f in files:  # every contender starts from the same warm page cache
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass

    listing = work / "files.json"
    listing.write_text(json.dumps([str(f) for f in files]))
    worker = [sys.executable, str(Path(__file__).resolve()), "--files-list", str(listing), "--day", args.day]
    if args.threads:
        worker += ["--threads", str(args.threads)]

    def run_sql(out: Path, tag: str) -> Measured:
        return measure([*worker, "--worker", "sql", "--out", str(out)], work / f"{tag}.log")

    sql_out = work / "sql.csv"
    print("running the hand-written DuckDB query ...", file=sys.stderr)
    sql = best_of(args.repeat, lambda: run_sql(sql_out, "sql"))

    def run_logroll_full() -> Measured:
        dest = work / "logroll"
        shutil.rmtree(dest, ignore_errors=True)
        return measure(logroll_cmd(raw, dest, args.day, args), work / "logroll-full.log")

    print("running logroll (full build from an empty state) ...", file=sys.stderr)
    full = best_of(args.repeat, run_logroll_full)
    dest = work / "logroll"
    full_report = json.loads(full.stdout)
    out_rel = f"{day:%Y/%m/%d}/daily_agg_{day:%Y%m%d}_Guy_Fawkes.csv"
    logroll_out = dest / out_rel

    pandas_m = None
    if not args.skip_pandas:
        print("running pandas (the seeds' approach) ...", file=sys.stderr)
        pandas_out = work / "pandas.csv"
        pandas_m = best_of(
            args.repeat,
            lambda: measure([*worker, "--worker", "pandas", "--out", str(pandas_out)], work / "pandas.log"),
        )

    expected = read_agg(sql_out)
    problems = []
    if read_agg(logroll_out) != expected:
        problems.append("logroll's full build differs from the hand-written query")
    if pandas_m and read_agg(work / "pandas.csv") != expected:
        problems.append("pandas differs from the hand-written query")
    if full_report["rows_read"] != args.rows or full_report["rows_rejected"] != 0:
        problems.append(
            f"logroll read {full_report['rows_read']} rows, rejected {full_report['rows_rejected']}"
        )

    # ---- incremental: one late file in the next day's folder -----------------------------------
    unique_total = max(1, int(args.rows * (1 - args.dupes)))
    late_path, late_rows = add_late_file(raw, day, max(1, args.rows // 100), unique_total)
    print("running logroll with one late file ...", file=sys.stderr)
    late = measure(logroll_cmd(raw, dest, args.day, args), work / "logroll-late.log")
    late_report = json.loads(late.stdout)
    if late_report["files_staged"] != 1 or late_report["rows_read"] != late_rows:
        problems.append(
            f"late run staged {late_report['files_staged']} files / {late_report['rows_read']} rows, "
            f"expected 1 / {late_rows}"
        )
    if late_report["partitions_built"] != [args.day]:
        problems.append(f"late run built {late_report['partitions_built']}, expected only {args.day}")
    listing.write_text(json.dumps([str(f) for f in [*files, late_path]]))
    run_sql(work / "sql-late.csv", "sql-late")
    if read_agg(logroll_out) != read_agg(work / "sql-late.csv"):
        problems.append("after the late file, logroll differs from the hand-written query")

    print("running logroll with nothing new ...", file=sys.stderr)
    before = (logroll_out.read_bytes(), logroll_out.stat().st_mtime_ns)
    rerun = best_of(
        max(args.repeat, 3),
        lambda: measure(logroll_cmd(raw, dest, args.day, args), work / "logroll-rerun.log"),
    )
    if not json.loads(rerun.stdout)["nothing_to_do"]:
        problems.append("the rerun with nothing new did something")
    if (logroll_out.read_bytes(), logroll_out.stat().st_mtime_ns) != before:
        problems.append("the rerun with nothing new touched the output")

    staged, end_of_day = stage_as_they_arrive(raw, files, work, args, problems)
    if read_agg(work / "arrive-dest" / out_rel) != expected:
        problems.append("the build after --stage-only differs from the hand-written query")

    measured = Runs(sql, full, pandas_m, late, late_rows, rerun, staged, end_of_day)
    table, misses = render(args, size_mib, measured, full_report)
    text = table + ("\n\nProblems:\n" + "\n".join(f"- {p}" for p in problems) if problems else "")
    print(text)
    args.results.write_text(text + "\n")
    if args.rows == 10_000_000 and args.results == HERE / "results.md" and not problems:
        update_readme(table.split("\n\n", 1)[1])
    print(f"\nwritten to {args.results}", file=sys.stderr)
    if problems:
        return 1
    return 1 if (args.strict and misses) else 0


def stage_as_they_arrive(
    raw: Path, files: list[Path], work: Path, args: argparse.Namespace, problems: list[str]
) -> tuple[Measured, Measured]:
    """The day's files land in BATCHES batches (hard links into a fresh source), each followed by
    `run DAY --stage-only`; then `run DAY` builds. Returns (the stage-only runs summed, the build)."""
    src, dest = work / "arrive", work / "arrive-dest"
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    print(f"staging the day's files in {BATCHES} batches with --stage-only ...", file=sys.stderr)
    total = Measured(0.0, 0.0, 0.0, "")
    per = max(1, -(-len(files) // BATCHES))
    for i in range(0, len(files), per):
        for f in files[i : i + per]:
            target = src / f.relative_to(raw)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(f, target)
        m = measure(logroll_cmd(src, dest, args.day, args, "--stage-only"), work / "logroll-stage-only.log")
        rep = json.loads(m.stdout)
        if rep["partitions_built"] or rep["outputs_written"]:
            problems.append(f"--stage-only built {rep['partitions_built']} / wrote {rep['outputs_written']}")
        total = Measured(total.seconds + m.seconds, total.cpu + m.cpu, max(total.rss_mib, m.rss_mib), "")
    if list(dest.rglob("daily_agg_*")):
        problems.append("--stage-only wrote an output")
    print("running logroll after the last batch (end of day) ...", file=sys.stderr)
    end = measure(logroll_cmd(src, dest, args.day, args), work / "logroll-end-of-day.log")
    rep = json.loads(end.stdout)
    if rep["files_staged"] or rep["partitions_built"] != [args.day]:
        problems.append(f"end of day staged {rep['files_staged']} files, built {rep['partitions_built']}")
    return total, end


@dataclass
class Runs:
    """Every measured run of one bench invocation."""

    sql: Measured
    full: Measured
    pandas: Measured | None
    late: Measured
    late_rows: int
    rerun: Measured
    staged: Measured  # the BATCHES --stage-only runs, summed (peak RSS: the largest)
    end_of_day: Measured


def update_readme(tables: str) -> None:
    """The README's benchmark tables (between its bench:impressions markers) become this run's."""
    readme = ROOT / "README.md"
    start, end = "<!-- bench:impressions -->", "<!-- /bench:impressions -->"
    text = readme.read_text()
    if start in text and end in text:
        head, rest = text.split(start, 1)
        readme.write_text(f"{head}{start}\n{tables}\n{end}{rest.split(end, 1)[1]}")


def render(args: argparse.Namespace, size_mib: float, runs: Runs, report: dict) -> tuple[str, list[str]]:
    n = args.rows
    sql, full, pandas_m, late, rerun, eod = (
        runs.sql,
        runs.full,
        runs.pandas,
        runs.late,
        runs.rerun,
        runs.end_of_day,
    )

    def row(name: str, m: Measured, rows: int, ratio: bool = True) -> str:
        r = f"{m.seconds / sql.seconds:.2f}x" if ratio else "-"
        rate = f"{rows / m.seconds / 1e6:.2f}M" if rows else "-"
        cpu = f"{m.cpu / sql.cpu:.2f}x" if ratio else "-"
        return f"| {name} | {m.seconds:.2f} | {r} | {m.cpu:.2f} | {cpu} | {m.rss_mib:,.0f} | {rate} |"

    lines = [
        f"Impressions benchmark: {n:,} rows ({report['duplicates']:,} resent) in {args.files} CSV files "
        f"({size_mib:,.0f} MiB) for {args.day}; {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{dt.datetime.now():%Y-%m-%d}, load average {os.getloadavg()[1]:.1f} over the last 5 minutes "
        f"(other work on the machine slows every contender).",
        "",
        "| contender | seconds | vs hand-written DuckDB | CPU seconds | CPU vs hand-written | peak RSS MiB | rows/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        row("hand-written DuckDB query", sql, n),
        row("logroll full build (empty state)", full, n),
    ]
    if pandas_m:
        lines.append(row("pandas (seeds' approach)", pandas_m, n))
    lines += [
        row(f"logroll, one late file ({runs.late_rows:,} rows)", late, runs.late_rows, ratio=False),
        row("logroll rerun, nothing new", rerun, 0, ratio=False),
        row(f"logroll --stage-only, {BATCHES} batches (sum)", runs.staged, n, ratio=False),
        row("logroll run DAY after --stage-only (end of day)", eod, n),
    ]
    late_share = (late.seconds - rerun.seconds) / full.seconds
    rss = max(full.rss_mib, late.rss_mib, runs.staged.rss_mib, eod.rss_mib)
    checks = [
        ("full build vs hand-written DuckDB", full.seconds / sql.seconds, f"<= {MAX_RATIO_VS_SQL}x", "x"),
        ("peak RSS of logroll", rss, f"<= {MAX_RSS_MIB} MiB", " MiB"),
        ("late file: (late - nothing new) / full", late_share * 100, f"<= {MAX_LATE_SHARE:.0%}", "%"),
        ("rerun with nothing new", rerun.seconds, f"<= {MAX_RERUN_SECONDS:g} s", " s"),
        ("end of day vs hand-written DuckDB", eod.seconds / sql.seconds, f"<= {MAX_END_OF_DAY_VS_SQL}x", "x"),
    ]
    ok = [
        full.seconds <= MAX_RATIO_VS_SQL * sql.seconds,
        rss <= MAX_RSS_MIB,
        late_share <= MAX_LATE_SHARE,
        rerun.seconds <= MAX_RERUN_SECONDS,
        eod.seconds <= MAX_END_OF_DAY_VS_SQL * sql.seconds,
    ]
    if pandas_m:
        checks.insert(
            1, ("speed-up over pandas", pandas_m.seconds / full.seconds, f">= {MIN_SPEEDUP_VS_PANDAS}x", "x")
        )
        ok.insert(1, pandas_m.seconds >= MIN_SPEEDUP_VS_PANDAS * full.seconds)
    lines += ["", "| target | reached | goal | met |", "|---|---:|---:|:---:|"]
    misses = []
    for (name, value, goal, unit), good in zip(checks, ok, strict=True):
        lines.append(f"| {name} | {value:,.2f}{unit} | {goal} | {'yes' if good else 'no'} |")
        if not good:
            misses.append(name)
    lines += [
        "",
        "All outputs agree (checked row for row). Times are wall-clock seconds of a whole process, "
        "start-up included; CPU seconds are user + system time of the process (on a machine shared "
        "with other work they move less than wall time); peak RSS is the process's own (os.wait4). "
        "Ratios marked - are not against the hand-written query; the targets say what they compare.",
    ]
    return "\n".join(lines), misses


if __name__ == "__main__":
    sys.exit(main())
