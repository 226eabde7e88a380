"""Benchmark: the `ingest` pipeline loading CSV drops into PostgreSQL and into a Parquet dataset
with 1, 2 and 4 workers, against the plain alternatives, on the same data in one run.

    .venv/bin/python bench/ingest.py                       # 1M rows in 100 files of 10k rows
    .venv/bin/python bench/ingest.py --rows 200000 --files 20   # a quick run

Contenders (every one a subprocess of its own, so its peak RSS is its own: os.wait4):
  logroll -> postgresql   `logroll work ingest` x N workers (state in the same database): staging with
                          type checks and quarantine, lineage columns, COPY, one transaction per file
                          with its ledger row
  logroll -> parquet      the same into parquet:///dir/ (one Parquet file per source file, renamed
                          into place)
  COPY (bare)             psycopg COPY FROM STDIN of the raw CSV bytes into a table made by hand:
                          no validation, no lineage, no ledger - the floor for PostgreSQL
  pandas to_sql           the seed's way: pandas.read_csv + DataFrame.to_sql (multi-row INSERTs),
                          on a subset of the files (it is slow), rows/s scaled
  duckdb -> parquet       one hand-written DuckDB COPY of all the CSVs to one Parquet file
Workers are timed wall-clock from their start to the last one's exit, process start-up included
(what a user running them from cron gets); the scan that makes the jobs is timed apart.
Fixed costs, measured apart for one worker (and for the bare COPY script): start-up is the wall
time of a run with nothing to load; the fixed cost of a file is (a run over 40 files of 10 rows
- start-up) / 40, i.e. what a file costs whatever its size (staging queries planned, catalog and
ledger round trips, one transaction). Every result is checked: every row exactly once, and the
same values (count, sums, NULL counts) in every store as in the bare COPY's table. The PostgreSQL server is started from the
machine's binaries (tests/pg.py) with fsync off. The table goes to bench/results_ingest.md.
Absolute times on a shared 2-core machine are noise: read the ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

COLUMNS = (
    ("id", "BIGINT"),
    ("SeriousDlqin2yrs", "BIGINT"),
    ("RevolvingUtilizationOfUnsecuredLines", "DOUBLE"),
    ("age", "BIGINT"),
    ("NumberOfTime30-59DaysPastDueNotWorse", "BIGINT"),
    ("DebtRatio", "DOUBLE"),
    ("MonthlyIncome", "DOUBLE"),
    ("NumberOfOpenCreditLinesAndLoans", "BIGINT"),
    ("NumberOfTimes90DaysLate", "BIGINT"),
    ("NumberRealEstateLoansOrLines", "BIGINT"),
    ("NumberOfTime60-89DaysPastDueNotWorse", "BIGINT"),
    ("NumberOfDependents", "BIGINT"),
)


def make_data(root: Path, rows: int, files: int) -> list[Path]:
    """`files` CSVs of credit rows (NA for missing income and dependents), made by DuckDB."""
    import duckdb

    root.mkdir(parents=True, exist_ok=True)
    per = rows // files
    con = duckdb.connect()
    out = []
    for i in range(files):
        lo = i * per
        path = root / f"credit_{i:04d}.csv"
        con.execute(
            f"""COPY (SELECT p AS id, (hash(p, 'd') % 100 < 7)::INT AS SeriousDlqin2yrs,
                       round((hash(p, 'r') % 1000000) / 1e6, 6) AS RevolvingUtilizationOfUnsecuredLines,
                       21 + (hash(p, 'a') % 70)::BIGINT AS age,
                       (hash(p, '3') % 4)::BIGINT AS "NumberOfTime30-59DaysPastDueNotWorse",
                       round((hash(p, 'x') % 2000000) / 1e6, 6) AS DebtRatio,
                       CASE WHEN hash(p, 'n') % 5 = 0 THEN NULL ELSE (hash(p, 'i') % 25000)::BIGINT END
                           AS MonthlyIncome,
                       (hash(p, 'o') % 30)::BIGINT AS NumberOfOpenCreditLinesAndLoans,
                       (hash(p, '9') % 3)::BIGINT AS NumberOfTimes90DaysLate,
                       (hash(p, 'e') % 5)::BIGINT AS NumberRealEstateLoansOrLines,
                       (hash(p, '6') % 3)::BIGINT AS "NumberOfTime60-89DaysPastDueNotWorse",
                       CASE WHEN hash(p, 'q') % 33 = 0 THEN NULL ELSE (hash(p, 'k') % 6)::BIGINT END
                           AS NumberOfDependents
                FROM range({lo}, {lo + per}) t(p))
               TO '{path}' (FORMAT csv, HEADER true, NULLSTR 'NA')"""
        )
        out.append(path)
    con.close()
    return out


@dataclass
class Result:
    contender: str
    workers: int
    rows: int
    seconds: float
    peak_rss_mib: float
    note: str = ""
    check: tuple = ()  # fingerprint() of what it loaded
    startup_s: float | None = None  # a run with nothing to load
    fixed_ms: float | None = None  # per file, whatever its size

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def run_procs(argvs: list[list[str]], env: dict[str, str] | None = None) -> tuple[float, float, list[str]]:
    """Start all at once; (wall seconds, max peak RSS MiB over them, their stderr tails)."""
    full_env = {**os.environ, **(env or {})}
    started = time.perf_counter()
    procs = [
        subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=full_env, text=False)
        for a in argvs
    ]
    peak = 0
    errors = []
    pending = {p.pid: p for p in procs}
    while pending:
        pid, status, usage = os.wait4(-1, 0)
        proc = pending.pop(pid, None)
        if proc is None:
            continue
        peak = max(peak, usage.ru_maxrss)
        if os.waitstatus_to_exitcode(status) != 0:
            errors.append(proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else "")
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    for p in procs:
        if p.stderr:
            p.stderr.close()
    if errors:
        raise SystemExit("a contender failed:\n" + "\n".join(errors))
    return seconds, peak / 1024, errors


LOGROLL = [sys.executable, "-m", "logroll.cli"]

# What every store must hold, compared across contenders (floats rounded: sums in another order).
FINGERPRINT = (
    'SELECT count(*), count(DISTINCT "id"), sum("id"), sum("age"), count("MonthlyIncome"), '
    'sum(CAST("MonthlyIncome" AS DOUBLE PRECISION)), count("NumberOfDependents"), '
    'sum(CAST("DebtRatio" AS DOUBLE PRECISION)) FROM {table}'
)


def fingerprint(row: tuple) -> tuple:
    return tuple(round(float(v), 2) if isinstance(v, float) else int(v) for v in row)


def pg_fingerprint(url: str, table: str = '"credit"') -> tuple:
    import psycopg

    with psycopg.connect(url) as conn:
        return fingerprint(conn.execute(FINGERPRINT.format(table=table)).fetchone())


def parquet_fingerprint(glob: str) -> tuple:
    import duckdb

    with duckdb.connect() as con:
        return fingerprint(con.execute(FINGERPRINT.format(table=f"read_parquet('{glob}')")).fetchone())


def scan(source: Path, state: str, batch: int) -> float:
    t = time.perf_counter()
    subprocess.run(
        [
            *LOGROLL,
            "-q",
            "scan",
            "ingest",
            "--source",
            str(source),
            "--state",
            state,
            "--batch-bytes",
            str(batch),
            "--flush",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t


def bench_logroll_pg(server, source: Path, rows: int, workers: int, batch: int, tag: str) -> Result:
    import psycopg

    url = server.create_database(f"bench_{tag}")
    scan_s = scan(source, url, batch)
    argv = [*LOGROLL, "-q", "work", "ingest", "--state", url, "--dest", url + "#credit"]
    seconds, peak, _ = run_procs([argv] * workers)
    with psycopg.connect(url) as conn:
        jobs = conn.execute("SELECT status, count(*) FROM ingest_jobs GROUP BY 1").fetchall()
    check = pg_fingerprint(url)
    assert check[0] == check[1] == rows and jobs == [("LOADED", jobs[0][1])], (check, jobs)
    return Result("logroll -> postgresql", workers, rows, seconds, peak, f"scan {scan_s:.1f}s", check)


def bench_logroll_parquet(work: Path, source: Path, rows: int, workers: int, batch: int) -> Result:

    dest = work / f"parquet_{workers}"
    state = str(work / f"state_parquet_{workers}.sqlite")
    scan_s = scan(source, state, batch)
    argv = [*LOGROLL, "-q", "work", "ingest", "--state", state, "--dest", f"parquet:///{dest}/"]
    seconds, peak, _ = run_procs([argv] * workers)
    check = parquet_fingerprint(f"{dest}/load_date=*/*.parquet")
    assert check[0] == check[1] == rows, check
    return Result("logroll -> parquet", workers, rows, seconds, peak, f"scan {scan_s:.1f}s", check)


def startup(argv: list[str], times: int = 3) -> float:
    """The wall time of a run with nothing (left) to load: the fastest of `times`."""
    return min(run_procs([argv])[0] for _ in range(times))


def fixed_logroll(server, work: Path, tiny: Path, kind: str) -> tuple[float, float]:
    """(start-up s, fixed ms per file) of one logroll worker, from 10-row files, one per job."""
    if kind == "postgresql":
        state = server.create_database("bench_fixed")
        dest = state + "#credit"
    else:
        state, dest = str(work / "state_fixed.sqlite"), f"parquet:///{work}/parquet_fixed/"
    files = sorted(tiny.iterdir())
    scan(tiny, state, max(f.stat().st_size for f in files))
    argv = [*LOGROLL, "-q", "work", "ingest", "--state", state, "--dest", dest]
    seconds = run_procs([argv])[0]
    start = startup(argv)  # every job is loaded now
    return start, (seconds - start) / len(files) * 1000


def fixed_bare_copy(server, tiny: Path) -> tuple[float, float]:
    """(start-up s, fixed ms per file) of the bare COPY script, from the same 10-row files."""
    code = BARE_COPY.format(cols=COLUMNS)
    files = sorted(map(str, tiny.iterdir()))
    seconds = run_procs([[sys.executable, "-c", code, server.create_database("bench_bare_fixed"), *files]])[0]
    start = min(
        run_procs([[sys.executable, "-c", code, server.create_database(f"bench_bare_start{i}")]])[0]
        for i in range(3)
    )
    return start, (seconds - start) / len(files) * 1000


BARE_COPY = r"""
import sys, psycopg
url, files = sys.argv[1], sys.argv[2:]
cols = {cols!r}
with psycopg.connect(url) as conn:
    conn.execute('CREATE TABLE credit (' + ', '.join('"' + c + '" ' + ('bigint' if t == 'BIGINT' else 'double precision') for c, t in cols) + ')')
    for f in files:
        with conn.cursor() as cur, cur.copy("COPY credit FROM STDIN (FORMAT csv, HEADER true, NULL 'NA')") as copy:
            with open(f, 'rb') as fh:
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
"""

PANDAS = r"""
import sys, pandas as pd, sqlalchemy as sa
url, files = sys.argv[1], sys.argv[2:]
engine = sa.create_engine(url.replace('postgresql://', 'postgresql+psycopg://'))
for f in files:
    pd.read_csv(f).to_sql('credit', engine, if_exists='append', index=False, method='multi', chunksize=1000)
"""

DUCKDB_PARQUET = r"""
import sys, duckdb
out, files = sys.argv[1], sys.argv[2:]
duckdb.sql("COPY (SELECT * FROM read_csv(" + repr(files) + ", nullstr='NA')) TO '" + out + "' (FORMAT parquet, COMPRESSION zstd)")
"""


def bench_bare_copy(server, files: list[Path], rows: int) -> Result:
    url = server.create_database("bench_bare")
    code = BARE_COPY.format(cols=COLUMNS)
    seconds, peak, _ = run_procs([[sys.executable, "-c", code, url, *map(str, files)]])
    return Result("COPY (bare, no checks)", 1, rows, seconds, peak, check=pg_fingerprint(url))


def bench_pandas(server, files: list[Path], rows: int, share: int) -> Result:
    url = server.create_database("bench_pandas")
    subset = files[: max(1, len(files) // share)]
    n = rows * len(subset) // len(files)
    seconds, peak, _ = run_procs([[sys.executable, "-c", PANDAS, url, *map(str, subset)]])
    return Result("pandas to_sql (seed)", 1, n, seconds, peak, f"{len(subset)} of {len(files)} files")


def bench_duckdb_parquet(work: Path, files: list[Path], rows: int) -> Result:
    out = work / "duckdb.parquet"
    seconds, peak, _ = run_procs([[sys.executable, "-c", DUCKDB_PARQUET, str(out), *map(str, files)]])
    return Result("duckdb COPY -> one parquet", 1, rows, seconds, peak, check=parquet_fingerprint(str(out)))


def _cell(value: float | None, fmt: str) -> str:
    if value is None:
        return ""
    return "< 1" if fmt == ".0f" and value < 1 else format(value, fmt)  # a difference within the noise


def table(results: list[Result], args: argparse.Namespace, size_mb: float) -> str:
    floor_pg = next(r for r in results if r.contender.startswith("COPY"))
    floor_pq = next(r for r in results if r.contender.startswith("duckdb"))
    per_file = args.rows // args.files
    lines = [
        "# ingest benchmark",
        "",
        f"{args.rows:,} rows of credit data in {args.files} CSV files of {per_file:,} rows ({size_mb:.0f} MB), "
        f"one file per job; {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        "PostgreSQL 15 started from the machine's binaries (fsync off). "
        f"Load average over the run (other work on the machine): {args.load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end. Generated by `bench/ingest.py` — rerun it to refresh this table.",
        "",
        "| contender | workers | rows | seconds | rows/s | vs its floor | start-up (s) | fixed per file (ms) "
        "| peak RSS per process (MiB) | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        floor = floor_pq if "parquet" in r.contender else floor_pg
        lines.append(
            f"| {r.contender} | {r.workers} | {r.rows:,} | {r.seconds:.1f} | {r.rows_per_s:,.0f} | "
            f"{r.rows_per_s / floor.rows_per_s:.2f}x | {_cell(r.startup_s, '.2f')} | {_cell(r.fixed_ms, '.0f')} | "
            f"{r.peak_rss_mib:.0f} | {r.note} |"
        )
    lines += ["", "Targets (issue 16), one worker on these files:", ""]
    for name, floor, want in (("postgresql", floor_pg, 0.40), ("parquet", floor_pq, 0.50)):
        mine = next(r for r in results if r.contender == f"logroll -> {name}" and r.workers == 1)
        ratio = mine.rows_per_s / floor.rows_per_s
        per = (mine.seconds - (mine.startup_s or 0.0)) / args.files * 1000
        lines.append(
            f"- logroll -> {name}: {ratio:.2f}x of `{floor.contender}` (target >= {want:.2f}x: "
            f"{'met' if ratio >= want else 'missed'}). Beyond start-up ({_cell(mine.startup_s, '.2f')} s), "
            f"a {per_file:,}-row file took {per:.0f} ms, of which {_cell(mine.fixed_ms, '.0f')} ms is fixed."
        )
    lines += [
        "",
        "Floors: `COPY (bare)` for PostgreSQL and `duckdb COPY` for Parquet do no validation, no "
        "quarantine, no lineage columns and no exactly-once bookkeeping; logroll does all of that per "
        "file. Workers' seconds are wall clock from their start to the last exit, including each "
        "process's start-up; the scan is timed apart. Start-up: the fastest of three runs with nothing "
        "to load. Fixed per file: (one run over 40 files of 10 rows - start-up) / 40. Every store was "
        "checked to hold the same rows (count, distinct ids, sums and NULL counts) as the bare COPY's "
        "table. With 2 cores, more than 2 workers cannot run faster: they share the cores with "
        "PostgreSQL itself.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--pandas-share", type=int, default=20, help="pandas loads 1/N of the files")
    parser.add_argument("--out", default=str(HERE / "results_ingest.md"))
    args = parser.parse_args()
    args.load_before = os.getloadavg()[0]
    from pg import PostgresServer

    work = Path(tempfile.mkdtemp(prefix="logroll-bench-ingest-"))
    server = PostgresServer.start()
    try:
        files = make_data(work / "drops", args.rows, args.files)
        tiny = work / "tiny"
        make_data(tiny, 400, 40)
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        batch = max(f.stat().st_size for f in files)  # one file per job
        results = []
        for w in [int(x) for x in args.workers.split(",")]:
            results.append(bench_logroll_pg(server, work / "drops", args.rows, w, batch, f"w{w}"))
            if w == 1:
                results[-1].startup_s, results[-1].fixed_ms = fixed_logroll(server, work, tiny, "postgresql")
            print(results[-1], flush=True)
        results.append(bench_bare_copy(server, files, args.rows))
        results[-1].startup_s, results[-1].fixed_ms = fixed_bare_copy(server, tiny)
        print(results[-1], flush=True)
        results.append(bench_pandas(server, files, args.rows, args.pandas_share))
        print(results[-1], flush=True)
        for w in [int(x) for x in args.workers.split(",")]:
            results.append(bench_logroll_parquet(work, work / "drops", args.rows, w, batch))
            if w == 1:
                results[-1].startup_s, results[-1].fixed_ms = fixed_logroll(server, work, tiny, "parquet")
            print(results[-1], flush=True)
        results.append(bench_duckdb_parquet(work, files, args.rows))
        print(results[-1], flush=True)
        want = next(r for r in results if r.contender.startswith("COPY")).check
        differ = [r.contender for r in results if r.check and r.check != want]
        if differ:
            raise SystemExit(f"outputs differ from the bare COPY's: {differ}: {[r.check for r in results]}")
        text = table(results, args, size_mb)
        Path(args.out).write_text(text)
        print(text)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
