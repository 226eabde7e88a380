"""Benchmark: the Spark engine (local mode) against the DuckDB engine on the impressions benchmark day.

    .venv/bin/python bench/spark.py                  # the 10M-row day of bench/impressions.py
    .venv/bin/python bench/spark.py --rows 1000000   # a quick run

Each measurement is its own subprocess (peak RSS from os.wait4), on the data bench/impressions.py
generates (reused when it is already there):
  1. `logroll run impressions DAY` from an empty state, --engine duckdb and --engine spark
     (stage + build + publish; staging is the same DuckDB code on both);
  2. the build alone (dedupe + aggregate + write) on the same staged parts, both engines: what
     the choice of engine changes. Spark's JVM start-up is reported apart from its build.
Outputs are checked byte for byte. Results go to bench/results_spark.md; read the ratios, not
the seconds (the machine is shared).
"""

from __future__ import annotations

import argparse
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


@dataclass
class Measured:
    seconds: float
    cpu: float
    rss_mib: float
    stdout: str


def measure(cmd: list[str], log: Path) -> Measured:
    """Wall time, CPU and peak RSS of a process *tree*: the Spark engine's JVM is a child that
    Python never waits for, so os.wait4's usage would leave it out."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out_path = log.with_suffix(".out")
    with open(out_path, "w") as out, open(log, "w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=err, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(HERE)}
        )
        peak, cpu = 0, {}
        while proc.poll() is None:
            rss = 0
            for pid in _tree(proc.pid):
                sample = _sample(pid)
                if sample:
                    rss += sample[0]
                    cpu[pid] = sample[1]
            peak = max(peak, rss)
            time.sleep(0.2)
        seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(
            f"bench: {' '.join(cmd[:6])} ... exited {proc.returncode}; stderr tail:\n{log.read_text()[-2000:]}"
        )
    return Measured(seconds, sum(cpu.values()), peak / 2**20, out_path.read_text())


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _sample(pid: int) -> tuple[int, float] | None:
    """(resident bytes, CPU seconds so far) of one process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return pages * os.sysconf("SC_PAGE_SIZE"), (int(fields[11]) + int(fields[12])) / ticks


def generate(args: argparse.Namespace) -> Path:
    """The impressions benchmark day, from bench/impressions.py's own generator."""
    sys.path.insert(0, str(HERE))
    try:
        import impressions as bench_impressions  # bench/impressions.py
    except ImportError:
        sys.exit("bench: bench/impressions.py (the benchmark day's generator) is missing")
    raw, _files = bench_impressions.generate(
        args.data, dt.date.fromisoformat(args.day), args.rows, args.files, args.dupes
    )
    return raw


def worker_build(args: argparse.Namespace) -> None:
    """Build one day from parts staged by a previous run, with one engine; print timings."""
    from logroll.catalog import Catalog
    from logroll.engines import make_engine
    from logroll.pipelines import get_pipeline

    catalog = Catalog(args.state)
    parts = [p.path for p in catalog.parts("impressions")[args.day]]
    catalog.close()
    pipe = get_pipeline("impressions")
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    t0 = time.perf_counter()
    options = {"master": args.master} if args.worker == "spark" else {}
    eng = make_engine(args.worker, work, memory_limit=args.memory_limit, **options)
    if args.worker == "spark":
        eng.spark  # noqa: B018 - start the JVM here, so that it is timed apart from the build
    t1 = time.perf_counter()
    outcome = eng.build_day(args.day, parts, pipe, work / "out")
    t2 = time.perf_counter()
    shutil.copyfile(outcome.outputs["daily_agg"][0], args.out)
    eng.close()
    print(json.dumps({"startup": t1 - t0, "build": t2 - t1, "rows_in": outcome.rows_in}))


LOAD = os.getloadavg()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows in the day (default 10M)")
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--day", default="2021-01-30")
    ap.add_argument("--dupes", type=float, default=0.02)
    ap.add_argument("--data", type=Path, default=HERE / "data", help="where data is generated (git-ignored)")
    ap.add_argument("--results", type=Path, default=HERE / "results_spark.md")
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--memory-limit", default="2GB", help="both engines (Spark: the driver JVM's heap)")
    ap.add_argument("--worker", choices=["duckdb", "spark"], help=argparse.SUPPRESS)
    ap.add_argument("--state", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker_build(args)
        return 0

    raw = generate(args)
    runs = args.data / "runs-spark"
    shutil.rmtree(runs, ignore_errors=True)
    full: dict[str, Measured] = {}
    for engine in ("duckdb", "spark"):
        cmd = [sys.executable, "-m", "logroll.cli", "run", "impressions", args.day, "--source", str(raw)]
        cmd += [
            "--dest",
            str(runs / engine),
            "--json",
            "--engine",
            engine,
            "--memory-limit",
            args.memory_limit,
        ]
        if engine == "spark":
            cmd += ["--master", args.master]
        print(f"bench: logroll run --engine {engine} ...", flush=True)
        full[engine] = measure(cmd, runs / "logs" / f"full-{engine}.log")
    d = dt.date.fromisoformat(args.day)
    rel = f"{d:%Y/%m/%d}/daily_agg_{d:%Y%m%d}_Guy_Fawkes.csv"
    same_full = (runs / "duckdb" / rel).read_bytes() == (runs / "spark" / rel).read_bytes()

    build: dict[str, tuple[Measured, dict]] = {}
    state = runs / "duckdb" / "_logroll" / "catalog.sqlite"
    for engine in ("duckdb", "spark"):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", engine, "--state", str(state)]
        cmd += ["--work", str(runs / f"build-{engine}"), "--out", str(runs / f"build-{engine}.csv")]
        cmd += ["--day", args.day, "--master", args.master, "--memory-limit", args.memory_limit]
        print(f"bench: build only, {engine} ...", flush=True)
        m = measure(cmd, runs / "logs" / f"build-{engine}.log")
        build[engine] = (m, json.loads(m.stdout.strip().splitlines()[-1]))
    same_build = (runs / "build-duckdb.csv").read_bytes() == (runs / "build-spark.csv").read_bytes()
    report = json.loads(full["duckdb"].stdout)
    text = render(args, report, full, build, same_full and same_build)
    args.results.write_text(text)
    print(text)
    return 0 if same_full and same_build else 1


def render(
    args: argparse.Namespace,
    report: dict,
    full: dict[str, Measured],
    build: dict[str, tuple[Measured, dict]],
    same: bool,
) -> str:
    rows = report["rows_read"]
    d, s = full["duckdb"], full["spark"]
    (bd, td), (bs, ts) = build["duckdb"], build["spark"]
    lines = [
        f"Spark engine benchmark: the impressions day of bench/impressions.py, {rows:,} rows "
        f"({report['duplicates']:,} duplicates) in {args.files} CSV files, {args.day}; Spark "
        f"{_spark_version()} --master {args.master}, memory limit {args.memory_limit}; "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {dt.date.today()}.",
        "",
        "| run | DuckDB s | Spark s | Spark / DuckDB | DuckDB CPU s | Spark CPU s | DuckDB peak RSS MiB | Spark peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| `logroll run` from an empty state (stage + build + publish) | {d.seconds:.2f} | {s.seconds:.2f} | "
        f"{s.seconds / d.seconds:.2f}x | {d.cpu:.2f} | {s.cpu:.2f} | {d.rss_mib:,.0f} | {s.rss_mib:,.0f} |",
        f"| build only (dedupe + aggregate + write), same staged parts | {td['build']:.2f} | {ts['build']:.2f} | "
        f"{ts['build'] / td['build']:.2f}x | {bd.cpu:.2f} | {bs.cpu:.2f} | {bd.rss_mib:,.0f} | {bs.rss_mib:,.0f} |",
        f"| Spark start-up (JVM + SparkSession), not in the build line | - | {ts['startup']:.2f} | - | - | - | - | - |",
        "",
        f"Outputs byte-identical between the engines: {'yes' if same else 'NO'}. "
        f"Load average {LOAD[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (2 cores shared "
        "with other work: read the ratios, not the seconds). CPU and peak RSS are of the whole process "
        "tree, sampled every 0.2 s (the Spark driver's JVM is a child of the Python process).",
        "",
        "Why Spark is slower here, and when it is not:",
        "",
        "- Start-up: a JVM and a SparkSession before any work (the line above), and JIT warm-up in the "
        "first queries. DuckDB starts in milliseconds inside the Python process.",
        "- Execution model: DuckDB runs the dedupe and the aggregate as one vectorised, multi-threaded "
        "pipeline over columnar batches in one process. Spark plans stages and tasks, shuffles the rows "
        "between the dedupe (group by the key) and the aggregate through its block manager (serialised, "
        "spilled to disk under the driver's heap), and runs row-oriented operators; with 2 cores the "
        "scheduling and shuffle overhead is not amortised over many executors.",
        "- Staging is the same DuckDB code in both runs (on the Spark driver too), so the whole-run ratio "
        "is smaller than the build-only one; the final CSV is written by the same DuckDB writer.",
        "- Spark earns its keep when a day is larger than one machine's memory and disk can handle and "
        "a cluster's executors share the build; on one machine, use the DuckDB engine.",
        "",
    ]
    return "\n".join(lines)


def _spark_version() -> str:
    try:
        import pyspark

        return pyspark.__version__
    except ImportError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
