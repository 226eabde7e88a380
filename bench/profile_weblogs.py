"""Profile of `weblogs`: CPU seconds per phase of a batch run and per stream micro-batch.

    .venv/bin/python bench/profile_weblogs.py                         # 300k events, 3 repeats
    .venv/bin/python bench/profile_weblogs.py --events 100000 --stream-events 20000 --repeat 1

Each measurement runs in its own process (the CLI in-process, its phases wrapped with
time.process_time, which counts every thread of the process), next to the hand-written DuckDB
SQL of bench/weblogs.py on the same file. read_json, the type checks and the URL split are one
query in staging: they are split here by running its three layers alone on the same file
(read_json; + typing and rejects; + the URL columns). Prints min and median of each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

CPU: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def wrap(owner: Any, attr: str, name: str) -> None:
    """owner.attr, its CPU seconds (all threads) added to CPU[name] at each call."""
    fn = getattr(owner, attr)

    def timed(*a: Any, **k: Any) -> Any:
        t0 = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            CPU[name] += time.process_time() - t0
            CALLS[name] += 1

    setattr(owner, attr, timed)


def cli(argv: list[str]) -> None:
    from logroll.cli import main

    sys.argv = ["logroll", *argv]
    try:
        main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


def child_batch(src: str, dest: str) -> dict[str, float]:
    # start-up: the interpreter and every module the run loads, imported before it starts
    import logroll.cli.app  # noqa: F401
    import logroll.cli.run  # noqa: F401
    from logroll import runner
    from logroll.engines import duckdb_build, duckdb_engine, jsonl
    from logroll.stage import jsonl as stage_jsonl

    startup = cpu_now()
    wrap(runner.BatchRun, "stage_new", "stage_new")
    wrap(runner.BatchRun, "stage_file", "stage_file")
    wrap(stage_jsonl, "prepare_jsonl", "independent count")
    wrap(jsonl, "_stage_fast", "read_json+checks+URL split (one query)")
    wrap(duckdb_engine.DuckDBEngine, "write_parts", "parquet write")
    wrap(runner.BatchRun, "build_dirty", "build_dirty")
    wrap(duckdb_build, "write_outputs", "outputs")
    wrap(runner.BatchRun, "finish", "finish (catalog)")
    # one worker: two days built at once would each count the other's CPU
    cli(["run", "weblogs", "--source", src, "--dest", dest, "--json", "--parallel", "1"])
    total = cpu_now()
    out = dict(CPU)
    out["start-up (interpreter + imports)"] = startup
    out["listing + catalog"] = out.pop("stage_new") - out["stage_file"]
    out["stage_file other (counts, catalog row)"] = (
        out.pop("stage_file")
        - out["independent count"]
        - out["read_json+checks+URL split (one query)"]
        - out["parquet write"]
    )
    out["build/dedupe"] = out.pop("build_dirty") - out["outputs"]
    out["rest of the run (engines, commit, gc)"] = (
        total - startup - sum(v for k, v in out.items() if not k.startswith("start-up"))
    )
    out["total"] = total
    return out


def child_layers(path: str) -> dict[str, float]:
    """read_json alone, + typing and rejects, + the URL columns: each a CREATE TEMP TABLE like
    staging's, on a fresh connection with the engine's settings."""
    import dataclasses

    import duckdb

    from logroll.engines import jsonl
    from logroll.pipelines.weblogs import PIPELINE

    plain = dataclasses.replace(
        PIPELINE,
        columns=tuple(c for c in PIPELINE.columns if c.sql is None),
        checks=(),
    )
    full = jsonl.fast_select(PIPELINE, Path(path))
    typed = jsonl.fast_select(plain, Path(path))
    raw = (
        "SELECT * FROM read_json(?, format='newline_delimited', records=true, auto_detect=false, "
        "columns={event_id: 'JSON', user: 'STRUCT(id JSON)', action: 'JSON', url: 'JSON', timestamp: 'JSON'})"
    ).replace("?", repr(path))
    out = {}
    for name, q in (("read_json alone", raw), ("+ typing, rejects", typed), ("+ URL split and check", full)):
        con = duckdb.connect(config={"memory_limit": "800MB"})
        con.execute("SET enable_progress_bar = false")
        con.execute("SET preserve_insertion_order = true")
        t0 = time.process_time()
        con.execute(f"CREATE TEMP TABLE t AS {q}")
        out[name] = time.process_time() - t0
        con.close()
    return out


def child_stream(dest: str) -> dict[str, float]:
    import logroll.cli.app  # noqa: F401
    import logroll.cli.stream  # noqa: F401
    from logroll.engines import jsonl
    from logroll.sinks import sqlite
    from logroll.streaming import export, lines, runner, stager, store

    startup = cpu_now()
    wrap(runner, "open_store", "open store (SQLite)")
    wrap(stager.StreamStager, "__init__", "open stager (DuckDB)")
    wrap(lines.LineBuffer, "feed", "read + cut lines")
    wrap(lines.LineBuffer, "cut", "read + cut lines")
    wrap(jsonl, "lines_table", "parse: lines -> Arrow")
    wrap(stager.StreamStager, "stage", "parse: JSON + checks + URL + dedupe (DuckDB)")
    wrap(store.Store, "commit_batch", "commit_batch")
    wrap(sqlite.SQLiteSession, "insert", "insert (events, rejects)")
    wrap(store.Store, "_merge_events", "merge events")
    wrap(store.Store, "_move_counts", "move counts (stats)")
    wrap(store.Store, "_mark_dirty", "mark dirty days")
    wrap(store.Store, "put_state", "checkpoint (state row)")
    wrap(export.FolderExporter, "export", "export files")
    cli(["stream", "weblogs", "--dest", dest, "--batch-size", "100", "--json"])
    total = cpu_now()
    out = dict(CPU)
    parts = ("insert (events, rejects)", "merge events", "move counts (stats)", "mark dirty days")
    out["begin/clear temp/COMMIT"] = (
        out.pop("commit_batch") - sum(out[p] for p in parts) - out["checkpoint (state row)"]
    )
    out["start-up (interpreter + imports)"] = startup
    out["lazy imports, CLI, the rest"] = total - sum(out.values())
    out["total"] = total
    out["batches"] = CALLS["commit_batch"]
    return out


def child_sql(src: str, out: str) -> dict[str, float]:
    sys.path.insert(0, str(HERE))
    import weblogs as bench

    t0 = cpu_now()
    bench.worker_duckdb_sql(src, out)
    return {"start-up": t0, "query": cpu_now() - t0, "total": cpu_now()}


def spawn(args: list[str], stdin: Path | None = None) -> dict[str, float]:
    with open(stdin or os.devnull, "rb") as inp:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", *args], stdin=inp, capture_output=True, check=False
        )
    if proc.returncode:
        sys.exit(f"profile: {args[0]} failed:\n{proc.stderr.decode()[-2000:]}")
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--stream-events", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "profile_weblogs")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        fn = {"batch": child_batch, "layers": child_layers, "stream": child_stream, "sql": child_sql}[kind]
        res = fn(*rest)
        sys.stdout.write("\n" + json.dumps(res) + "\n")
        return 0

    import shutil

    sys.path.insert(0, str(HERE))
    import weblogs as bench

    events = bench.generate(args.data, args.events)
    stream_input = args.out / "stream_input.json"
    args.out.mkdir(parents=True, exist_ok=True)
    with open(events, "rb") as s, open(stream_input, "wb") as d:
        for _, line in zip(range(args.stream_events), s, strict=False):
            d.write(line)
    runs: dict[str, list[dict[str, float]]] = defaultdict(list)
    load = [os.getloadavg()[0]]
    for i in range(args.repeat):
        for kind in ("batch", "sql", "layers", "stream"):
            out = args.out / f"{kind}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            if kind == "batch":
                runs[kind].append(spawn(["batch", str(events.parent), str(out)]))
            elif kind == "sql":
                runs[kind].append(spawn(["sql", str(events), str(out)]))
            elif kind == "layers":
                runs[kind].append(spawn(["layers", str(events)]))
            else:
                runs[kind].append(spawn(["stream", str(out)], stdin=stream_input))
            load.append(os.getloadavg()[0])
    print(
        f"weblogs profile: {args.events:,} events (batch), {args.stream_events:,} (stream, micro-batches of "
        f"100); {args.repeat} repeats; load average (1 min) {min(load):.1f}-{max(load):.1f}; CPU seconds, "
        "min / median"
    )
    for kind in ("batch", "sql", "layers", "stream"):
        print(f"\n{kind}:")
        keys = list(runs[kind][0])
        for k in keys:
            vals = [r.get(k, 0.0) for r in runs[kind]]
            line = f"  {k:<48} {min(vals):8.3f} / {statistics.median(vals):8.3f}"
            if kind == "stream" and k not in ("batches", "total"):
                b = statistics.median(r["batches"] for r in runs[kind])
                line += f"   ({1e3 * statistics.median(vals) / b:.3f} ms per micro-batch)"
            print(line)
    b_tot = [r["total"] for r in runs["batch"]]
    s_tot = [r["total"] for r in runs["sql"]]
    print(
        f"\nbatch: {args.events / statistics.median(b_tot):,.0f} events per CPU second (median), "
        f"{statistics.median(b_tot) / statistics.median(s_tot):.2f}x the hand-written SQL's CPU "
        f"(min/min {min(b_tot) / min(s_tot):.2f}x)"
    )
    st = [r["total"] for r in runs["stream"]]
    print(f"stream: {args.stream_events / statistics.median(st):,.0f} events per CPU second (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
