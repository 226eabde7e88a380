"""The cost of the accounting check: the reading layer's independent count (stage.reader.prepare,
the numpy scan of every file) against a full logroll build of the same files, in one run.

    .venv/bin/python bench/accounting.py --raw bench/data/20210130-10000000-24-0.02/raw

`--raw` is a source folder the impressions benchmark generated (bench/impressions.py --data).
Both are timed in CPU seconds (the machine is shared: compare the ratio, not the seconds).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from logroll.stage.reader import prepare


def count_cpu(files: list[Path], spool: Path) -> tuple[float, int, list[str]]:
    """CPU seconds of prepare() over every file, the records counted, and any file's route."""
    start = time.process_time()
    records = 0
    routes = []
    for f in files:
        prep = prepare(f, spool_dir=spool)
        records += prep.records
        if prep.route:
            routes.append(f"{f.name}: {prep.route}")
        prep.cleanup()
    return time.process_time() - start, records, routes


def build_cpu(raw: Path, dest: Path) -> float:
    """CPU seconds of `logroll run impressions` from an empty state, in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "logroll.cli",
            "run",
            "impressions",
            "--source",
            str(raw),
            "--dest",
            str(dest),
        ],
        check=True,
        capture_output=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    files = sorted(args.raw.rglob("*.csv"))
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            count, records, routes = count_cpu(files, Path(tmp))
            build = build_cpu(args.raw, Path(tmp) / f"out{i}")
            print(
                f"round {i + 1}: independent count {count:.2f} CPU s ({records:,} records, "
                f"{len(files)} files), full build {build:.2f} CPU s: {100 * count / build:.1f}% of the build"
            )
            for r in routes:
                print("  not on the fast path:", r)


if __name__ == "__main__":
    main()
