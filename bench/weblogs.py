"""Benchmark: `weblogs` in batch and as a stream, against the plain alternatives, on the same events.

    .venv/bin/python bench/weblogs.py                          # 1M events; the stream reads 200k of them
    .venv/bin/python bench/weblogs.py --events 200000 --stream-events 50000   # a quick run

Contenders, each in its own subprocess so that peak RSS and CPU time are its own (os.wait4):
  logroll run        the CLI, full build of both tables from an empty state
  duckdb-sql         hand-written DuckDB queries over the same file (read_json, regexp_extract,
                     GROUP BY): the strongest plain alternative, without quarantine or exactly-once
  seed 003           the seed's approach: json.loads and urlparse event by event in Python,
                     CSV appended per 100 events, aggregates recomputed at the end
  logroll stream     the CLI reading stdin in micro-batches of 100, one transaction each
Outputs are checked to agree (run vs stream byte for byte; the others row for row); the table
goes to bench/results_weblogs.md. Absolute times on a shared machine are noise: read the ratios
and the CPU seconds.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
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
sys.path.insert(0, str(ROOT / "src"))

TARGET_BATCH_EPS = 300_000
TARGET_STREAM_EPS = 20_000


@dataclass
class Measured:
    seconds: float
    cpu: float  # user + system seconds of the process
    rss_mib: float
    stdout: str


def measure(cmd: list[str], log: Path, stdin: Path | None = None) -> Measured:
    log.parent.mkdir(parents=True, exist_ok=True)
    out_path = log.with_suffix(".out")
    with open(out_path, "w") as out, open(log, "w") as err, open(stdin or os.devnull, "rb") as inp:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=inp, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"bench: {' '.join(cmd[:5])} ... exited {code}; stderr tail:\n{log.read_text()[-2000:]}")
    return Measured(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out_path.read_text())


def generate(data: Path, events: int) -> Path:
    """bench/data/weblogs-N/events/events.json, made once (events.json.done marks it complete)."""
    from logroll.demo.weblogs import event_lines

    folder = data / f"weblogs-{events}" / "events"
    path = folder / "events.json"
    if (folder.parent / "done").exists():
        return path
    shutil.rmtree(folder.parent, ignore_errors=True)
    folder.mkdir(parents=True)
    with open(path, "w", encoding="utf-8") as fh:
        for line in event_lines(events):
            fh.write(line + "\n")
    (folder.parent / "done").write_text("ok")
    return path


# ---- the plain alternatives (run as `python bench/weblogs.py --worker NAME ...`) ----------------
def worker_duckdb_sql(src: str, out: str) -> None:
    import duckdb

    from logroll.pipelines.weblogs import url_levels_query

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    # the same URL rules as the pipeline (its split, step by step), no quarantine, no exactly-once
    events = f"""(SELECT event_id, CAST(user.id AS VARCHAR) AS user_id,
            strptime(timestamp, '%d/%m/%Y %H:%M:%S') AS ts, action, url
        FROM read_json({src!r}, format='newline_delimited',
            columns={{event_id: 'VARCHAR', user: 'STRUCT(id VARCHAR)', action: 'VARCHAR', url: 'VARCHAR', timestamp: 'VARCHAR'}}))"""
    levels = url_levels_query(events, keep=("event_id", "user_id", "ts", "action"))
    con.execute(
        "CREATE TABLE ev AS SELECT DISTINCT ON (event_id) user_id, ts, action, url_level1, url_level2, "
        f"url_level3 FROM ({levels})"
    )
    Path(out).mkdir(parents=True, exist_ok=True)
    con.execute(
        "COPY (SELECT user_id, strftime(ts, '%Y-%m-%d %H:%M:%S') AS time_stamp, url_level1, url_level2, url_level3, "
        f"action AS activity FROM ev) TO '{out}/user_web_hits.csv' (HEADER)"
    )
    con.execute(
        "COPY (SELECT strftime(ts, '%Y%m%d%H') AS time_bucket, url_level1, action AS activity, count(*) AS activity_count, "
        f"count(DISTINCT user_id) AS user_count FROM ev GROUP BY ALL) TO '{out}/aggregated_web_stats.csv' (HEADER)"
    )


def worker_seed(src: str, out: str) -> None:
    """Seed 003: consume_events.py (event by event, CSV appended per 100) + aggregate_stats.py."""
    import json
    from collections import defaultdict
    from urllib.parse import urlsplit

    Path(out).mkdir(parents=True, exist_ok=True)
    hits_path = Path(out) / "user_web_hits.csv"
    seen: set[str] = set()
    batch: list[list[str]] = []
    with open(hits_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "time_stamp", "url_level1", "url_level2", "url_level3", "activity"])
        with open(src, encoding="utf-8") as events:
            for line in events:
                e = json.loads(line)
                if e["event_id"] in seen:
                    continue
                seen.add(e["event_id"])
                url = e["url"] if "://" in e["url"] or e["url"].startswith("//") else "https://" + e["url"]
                parts = urlsplit(url)
                host = (parts.hostname or "").removeprefix("www.")
                segs = [s for s in parts.path.split("/") if s] + ["", ""]
                ts = dt.datetime.strptime(e["timestamp"], "%d/%m/%Y %H:%M:%S")
                batch.append(
                    [str(e["user"]["id"]), f"{ts:%Y-%m-%d %H:%M:%S}", host, segs[0], segs[1], e["action"]]
                )
                if len(batch) == 100:
                    w.writerows(batch)
                    batch.clear()
        w.writerows(batch)
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    users: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    with open(hits_path, newline="") as fh:
        for r in csv.DictReader(fh):
            g = (r["time_stamp"][:13].replace("-", "").replace(" ", ""), r["url_level1"], r["activity"])
            counts[g] += 1
            users[g].add(r["user_id"])
    with open(Path(out) / "aggregated_web_stats.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time_bucket", "url_level1", "activity", "activity_count", "user_count"])
        for g in sorted(counts):
            w.writerow([*g, counts[g], len(users[g])])


# ---- checks -------------------------------------------------------------------------------------
def table_rows(folder: Path, table: str) -> list[tuple[str, ...]]:
    files = (
        [folder / f"{table}.csv"]
        if (folder / f"{table}.csv").exists()
        else sorted((folder / table).glob("*.csv"))
    )
    rows: list[tuple[str, ...]] = []
    for f in files:
        with open(f, newline="") as fh:
            rows += [tuple(r) for r in list(csv.reader(fh))[1:]]
    return sorted(rows)


def same_bytes(a: Path, b: Path) -> bool:
    def tree(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for t in ("user_web_hits", "aggregated_web_stats")
            for p in sorted((root / t).glob("*"))
        }

    return tree(a) == tree(b)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--stream-events", type=int, default=200_000, help="events read by the stream contender")
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "weblogs")
    ap.add_argument("--results", type=Path, default=HERE / "results_weblogs.md")
    ap.add_argument("--skip-seed", action="store_true", help="skip the slow seed-003 contender")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("worker_args", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        {"duckdb-sql": worker_duckdb_sql, "seed": worker_seed}[args.worker](*args.worker_args)
        return 0

    events = generate(args.data, args.events)
    stream_input = events
    if args.stream_events < args.events:
        stream_input = args.out / "stream_input.json"
        stream_input.parent.mkdir(parents=True, exist_ok=True)
        with open(events, "rb") as src, open(stream_input, "wb") as dst:
            for _, line in zip(range(args.stream_events), src, strict=False):
                dst.write(line)
    shutil.rmtree(args.out / "runs", ignore_errors=True)
    runs = args.out / "runs"
    py, cli = sys.executable, [sys.executable, "-m", "logroll.cli"]
    load_before = os.getloadavg()

    batch = measure(
        [*cli, "run", "weblogs", "--source", str(events.parent), "--dest", str(runs / "run"), "--json"],
        runs / "run.log",
    )
    sql = measure([py, __file__, "--worker", "duckdb-sql", str(events), str(runs / "sql")], runs / "sql.log")
    seed = (
        None
        if args.skip_seed
        else measure([py, __file__, "--worker", "seed", str(events), str(runs / "seed")], runs / "seed.log")
    )
    stream = measure(
        [*cli, "stream", "weblogs", "--dest", str(runs / "stream"), "--batch-size", "100", "--json"],
        runs / "stream.log",
        stdin=stream_input,
    )
    # the stream's reference: `run` on the same lines
    stream_ref = runs / "stream_ref_src"
    stream_ref.mkdir(parents=True)
    shutil.copy(stream_input, stream_ref / "events.json")
    measure(
        [*cli, "run", "weblogs", "--source", str(stream_ref), "--dest", str(runs / "stream_ref")],
        runs / "ref.log",
    )
    load_after = os.getloadavg()

    checks = {
        "stream == run on the same lines (bytes)": same_bytes(runs / "stream", runs / "stream_ref"),
    }
    for name, folder in (("duckdb-sql", runs / "sql"), ("seed 003", runs / "seed")):
        if folder.exists():
            for t in ("user_web_hits", "aggregated_web_stats"):
                checks[f"{name} == run: {t} (rows)"] = table_rows(folder, t) == table_rows(runs / "run", t)
    text = render(args, batch, sql, seed, stream, checks, load_before, load_after)
    args.results.write_text(text)
    print(text)
    return 0 if all(checks.values()) else 1


def render(args, batch, sql, seed, stream, checks, load_before, load_after) -> str:  # noqa: ANN001
    n, ns = args.events, min(args.stream_events, args.events)

    def row(name: str, m: Measured, events: int, ref: Measured | None) -> str:
        ratio = f"{m.seconds / ref.seconds:.2f}x" if ref else "-"
        cpu_ratio = f"{m.cpu / ref.cpu:.2f}x" if ref else "-"
        return (
            f"| {name} | {events:,} | {m.seconds:.2f} | {events / m.seconds:,.0f} | {ratio} | {m.cpu:.2f} | "
            f"{events / m.cpu:,.0f} | {cpu_ratio} | {m.rss_mib:,.0f} |"
        )

    lines = [
        f"Weblogs benchmark: {n:,} events of JSON lines ({(args.data / f'weblogs-{n}' / 'events' / 'events.json').stat().st_size / 2**20:,.0f} MiB), "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {dt.date.today()}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (other work on the same machine).",
        "",
        "| contender | events | seconds | events/s | vs hand-written DuckDB | CPU seconds | events per CPU second | CPU vs hand-written | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        row("hand-written DuckDB queries", sql, n, sql),
        row("logroll run (batch, empty state)", batch, n, sql),
    ]
    if seed:
        lines.append(row("seed 003 (Python, event by event)", seed, n, sql))
    lines.append(row("logroll stream, micro-batches of 100 (stdin)", stream, ns, None))
    lines += [
        "",
        "| target | reached | goal | met |",
        "|---|---:|---:|:---:|",
        f"| batch events/s (wall) | {n / batch.seconds:,.0f} | >= {TARGET_BATCH_EPS:,} | {'yes' if n / batch.seconds >= TARGET_BATCH_EPS else 'no'} |",
        f"| batch events per CPU second | {n / batch.cpu:,.0f} | (>= {TARGET_BATCH_EPS:,} on an idle machine) | - |",
        f"| stream events/s (wall) | {ns / stream.seconds:,.0f} | >= {TARGET_STREAM_EPS:,} | {'yes' if ns / stream.seconds >= TARGET_STREAM_EPS else 'no'} |",
        f"| stream events per CPU second | {ns / stream.cpu:,.0f} | (>= {TARGET_STREAM_EPS:,} on an idle machine) | - |",
        "",
        "| check | ok |",
        "|---|:---:|",
        *[f"| {k} | {'yes' if v else 'NO'} |" for k, v in checks.items()],
        "",
        "Times are wall-clock seconds of a whole process, start-up included (about 1 s of imports); CPU "
        "seconds are its user + system time, which a busy machine inflates less than wall time; peak RSS "
        "is the process's own (os.wait4). Every stream micro-batch is one committed transaction (events, "
        "hourly buckets, checkpoint); the stream's files are written at the end and every few seconds.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
