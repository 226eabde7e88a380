"""Shared by the weblogs tests: sample data, reading the two tables back, event lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from conftest import SHARED

SAMPLE = SHARED / "data" / "hipages" / "source_event_data.json"
TABLES = ("user_web_hits", "aggregated_web_stats")


def read_tables(dest: Path, fmt: str = "csv") -> tuple[dict[str, list[tuple[Any, ...]]], ...]:
    """(hits by day, stats by day) from DEST/user_web_hits/DAY.csv and DEST/aggregated_web_stats/DAY.csv,
    rows sorted, counts as ints."""
    out = []
    for table in TABLES:
        by_day: dict[str, list[tuple[Any, ...]]] = {}
        for f in sorted((dest / table).glob(f"*.{fmt}")):
            if fmt == "csv":
                with open(f, newline="", encoding="utf-8") as fh:
                    rows = list(csv.reader(fh))[1:]
            else:
                import pyarrow.parquet as pq

                rows = [list(r.values()) for r in pq.read_table(f).to_pylist()]
            if table == "aggregated_web_stats":
                rows = [[*r[:3], int(r[3]), int(r[4])] for r in rows]
            by_day[f.stem] = sorted(tuple(r) for r in rows)
        out.append(by_day)
    return tuple(out)


def db_tables(con: Any, placeholder: str = "?") -> tuple[dict[str, list[tuple[Any, ...]]], ...]:
    """The same, from a database connection (DuckDB or psycopg)."""
    cur = con.cursor() if hasattr(con, "cursor") else con
    cur.execute("SELECT * FROM user_web_hits")
    hits: dict[str, list[tuple[Any, ...]]] = {}
    for r in cur.fetchall():
        hits.setdefault(r[1][:10], []).append(tuple(r))
    cur.execute("SELECT * FROM aggregated_web_stats")
    stats: dict[str, list[tuple[Any, ...]]] = {}
    for r in cur.fetchall():
        day = f"{r[0][:4]}-{r[0][4:6]}-{r[0][6:8]}"
        stats.setdefault(day, []).append((r[0], r[1], r[2], int(r[3]), int(r[4])))
    return {d: sorted(v) for d, v in hits.items()}, {d: sorted(v) for d, v in stats.items()}


def event(event_id: str, user: Any, action: str, url: str, stamp: str) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "user": {"session_id": "1", "id": user},
            "action": action,
            "url": url,
            "timestamp": stamp,
        }
    )


def quarantine_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def explain_difference(got: dict[str, bytes], want: dict[str, bytes]) -> str:
    """The lines that differ between two sets of output files (for an assertion message)."""
    out = []
    for name in sorted(set(got) | set(want)):
        a = set(got.get(name, b"").decode(errors="replace").splitlines())
        b = set(want.get(name, b"").decode(errors="replace").splitlines())
        if a != b:
            out.append(
                f"{name}: only in the stream {sorted(a - b)[:10]}, only in the batch {sorted(b - a)[:10]}"
            )
        elif got.get(name) != want.get(name):
            out.append(f"{name}: same lines, other bytes (order?)")
    return "\n".join(out)


# A process forked from pytest starts with pytest's resident pages, and ru_maxrss counts them
# (the peak before exec is kept): a small wrapper process starts the command, so the peak it
# reports for its child is the command's own.
_PEAK = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def cli_peak_rss(args: list[str], stdin: Path) -> tuple[int, str, str, float]:
    """(exit code, stdout, stderr without its last line, peak RSS in MiB) of `logroll ARGS < stdin`."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "LOGROLL_DEBUG"}
    with open(stdin, "rb") as fh:
        proc = subprocess.run(
            [sys.executable, "-c", _PEAK, sys.executable, "-m", "logroll.cli", *args],
            stdin=fh,
            capture_output=True,
            text=True,
            env=env,
        )
    err, _, peak = proc.stderr.rstrip("\n").rpartition("\n")
    return proc.returncode, proc.stdout, err, int(peak) / 1024


# Host letters: ASCII, and non-ASCII letters every engine lower-cases the same way (DuckDB and
# Python differ on a few, e.g. the dotted capital I and the final sigma).
HOST_CHARS = st.sampled_from(list("abcXYZwW019.-_:[]@é中Ü%~ "))
PATH_CHARS = st.sampled_from(list("abZ09/?#.:@%-_ ~é"))
SCHEMES = st.sampled_from(
    [
        "",
        "https://",
        "http://",
        "HTTP://",
        "ftp://",
        "git+ssh://",
        "//",
        "1http://",
        "h ttp://",
        ":/",
        "https:",
    ]
)
WWW = st.sampled_from(["", "www.", "WWW.", "wWw.", "www", "ww."])
USERINFO = st.sampled_from(["", "user@", "u:p@", "a@b@", "@"])
PORTS = st.sampled_from(["", ":80", ":", ":8080x"])


@st.composite
def urls(draw: st.DrawFn) -> str:
    host = draw(st.text(HOST_CHARS, max_size=12))
    if draw(st.booleans()):
        host = "[" + draw(st.text(st.sampled_from(list("0123456789abcdef:")), max_size=8)) + "]"
    path = draw(st.text(PATH_CHARS, max_size=24))
    url = draw(SCHEMES) + draw(USERINFO) + draw(WWW) + host + draw(PORTS) + path
    pad = draw(st.sampled_from(["", " ", "  ", "\t"]))
    return pad + url + draw(st.sampled_from(["", " ", "\n"]))


def demo_bytes(src: Path) -> bytes:
    """Every demo file's bytes as logroll reads them (a .gz decompressed), in name order: what a
    stream of the same events reads."""
    import gzip

    files = sorted(p for p in src.rglob("*") if p.name.endswith((".json", ".json.gz")))
    return b"".join(gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes() for f in files)


def demo_reference_lines(src: Path) -> list[str]:
    """The demo's lines for the reference computation: a line that is not UTF-8 (the Latin-1
    export's accented ones) stands as one the reference rejects, as logroll does."""
    out = []
    for raw in demo_bytes(src).splitlines():
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            out.append("{not UTF-8")
    return out
