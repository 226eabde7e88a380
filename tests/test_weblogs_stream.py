"""`logroll stream weblogs`: micro-batches from stdin or a followed file, through real processes.

The reference for every stream is `logroll run` on the same lines: the tables must be the same,
byte for byte for files, row for row for databases.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from logroll import demo
from weblogs_helpers import (
    SAMPLE,
    cli_peak_rss,
    db_tables,
    demo_bytes,
    demo_reference_lines,
    event,
    explain_difference,
    quarantine_rows,
    read_tables,
)
from weblogs_reference import tables

from conftest import run_cli, tree_bytes


def popen_cli(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("LOGROLL_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "logroll.cli", *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def stream(*args: str, data: bytes = b"", env: dict[str, str] | None = None, timeout: float = 300):
    full_env = {**os.environ, **(env or {})}
    full_env.pop("LOGROLL_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "logroll.cli", "stream", "weblogs", *args],
        input=data,
        capture_output=True,
        env=full_env,
        timeout=timeout,
    )


def outputs(dest: Path) -> dict[str, bytes]:
    return {
        k: v
        for k, v in tree_bytes(dest).items()
        if k.split("/")[0] in ("user_web_hits", "aggregated_web_stats")
    }


def state_of(dest: Path) -> dict:
    if not (dest / "_logroll" / "stream" / "weblogs.sqlite").exists():
        return {}
    con = sqlite3.connect(dest / "_logroll" / "stream" / "weblogs.sqlite")
    try:
        rows = con.execute("SELECT value FROM _logroll_state").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()
    return json.loads(rows[0][0]) if rows else {}


@pytest.fixture
def demo_events(tmp_path) -> Path:
    src = tmp_path / "events"
    demo.GENERATORS["weblogs"](src, days=3, rows=2400, start="2017-02-01", seed=11)
    return src


def demo_lines(src: Path) -> bytes:
    return demo_bytes(src)


def test_stdin_stream_equals_batch_on_the_sample(tmp_path):
    src = tmp_path / "events"
    src.mkdir()
    (src / "sample.json").write_bytes(SAMPLE.read_bytes())
    batch = run_cli("run", "weblogs", "--source", str(src), "--dest", str(tmp_path / "batch"))
    assert batch.code == 0, batch.err
    res = stream("--dest", str(tmp_path / "stream"), "--json", data=SAMPLE.read_bytes())
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert (report["rows_read"], report["rows_valid"], report["rows_unique"]) == (500, 500, 500)
    assert report["batches"] >= 5  # 100 lines each, or fewer when --max-delay passed first
    assert report["stopped_by"] == "end of input"
    assert outputs(tmp_path / "stream") == outputs(tmp_path / "batch") != {}


def test_a_line_over_the_limit_is_quarantined_without_holding_it(tmp_path):
    """Issue 13: a line without newline was re-concatenated at every read (200 MB: 4.5 minutes,
    2.7 GB). Now the waiting line is bounded and a line over max_line_bytes is one quarantined
    record with its full length; the lines around it are read."""
    good = event("e1", 1, "page_view", "https://x.com/a", "02/02/2017 20:22:00")
    src = tmp_path / "in.json"
    with open(src, "wb") as fh:
        fh.write(good.encode() + b"\n")
        fh.write(b'{"event_id": "big", "pad": "' + b"x" * (200 << 20) + b'"}\n')
        fh.write(good.replace('"e1"', '"e2"').encode())  # the last line has no newline
    dest = tmp_path / "out"
    code, out, err, peak = cli_peak_rss(["stream", "weblogs", "--dest", str(dest), "--json"], src)
    assert code == 0, err
    report = json.loads(out)
    assert (report["rows_read"], report["rows_valid"], report["rows_rejected"]) == (3, 2, 1)
    assert report["checkpoint"]["offset"] == src.stat().st_size
    (row,) = quarantine_rows(dest / "_logroll" / "quarantine" / "weblogs" / "stream.rejects.csv")
    assert row["line"] == "2" and row["reason"] == f"line too long ({(200 << 20) + 30} bytes > {4 << 20})"
    assert row["raw_line"].startswith('{"event_id": "big"') and len(row["raw_line"]) == 10_000
    assert peak < 350, f"peak RSS {peak:.0f} MiB: the line was held"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_batch_and_stream_give_identical_tables(tmp_path, demo_events, fmt):
    """Late, out-of-order, resent and differing duplicates and rejects, in micro-batches of 7
    lines (so a duplicate's original is often in an earlier micro-batch, already committed)."""
    batch = run_cli(
        "run",
        "weblogs",
        "--source",
        str(demo_events),
        "--dest",
        str(tmp_path / "b"),
        "--format",
        fmt,
        "--json",
    )
    assert batch.code == 0, batch.err
    res = stream(
        "--dest",
        str(tmp_path / "s"),
        "--batch-size",
        "7",
        "--format",
        fmt,
        "--json",
        data=demo_lines(demo_events),
    )
    assert res.returncode == 0, res.stderr
    report, want = json.loads(res.stdout), batch.json()
    assert report["rows_read"] == report["rows_valid"] + report["rows_rejected"]
    assert report["rows_valid"] == report["rows_unique"] + report["duplicates"]
    counts = ("rows_read", "rows_valid", "rows_rejected", "rows_unique", "duplicates")
    assert [report[k] for k in counts] == [want[k] for k in counts]
    got, want_files = outputs(tmp_path / "s"), outputs(tmp_path / "b")
    assert got == want_files != {}, explain_difference(got, want_files)
    # and both are seed 003's tables, computed independently
    lines = demo_reference_lines(demo_events)
    assert read_tables(tmp_path / "s", fmt) == tables(lines)[:2]


def test_a_replayed_stdin_counts_nothing_twice(tmp_path):
    dest = tmp_path / "out"
    first = stream("--dest", str(dest), "--json", data=SAMPLE.read_bytes())
    assert first.returncode == 0, first.stderr
    files = tree_bytes(dest)
    again = stream("--dest", str(dest), "--json", data=SAMPLE.read_bytes())
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["rows_read"], report["rows_unique"], report["duplicates"]) == (500, 0, 500)
    assert report["checkpoint"]["read"] == 1000 and report["checkpoint"]["unique"] == 500
    assert outputs(dest) == {k: v for k, v in files.items() if k in outputs(dest)}


def test_late_events_update_the_buckets_they_touch(tmp_path):
    """Into a DuckDB file: the tables are current after every micro-batch."""
    db = tmp_path / "w.duckdb"
    url = f"duckdb:///{db}"
    u = "https://www.hipages.com.au/articles"
    first = [event(f"e{i}", i % 3, "page_view", u, f"02/02/2017 1{i % 2}:00:0{i}") for i in range(6)]
    first.append(event("alone", 5, "page_view", u, "02/02/2017 12:00:00"))  # the only event of its group
    res = stream("--dest", url, "--batch-size", "2", data="\n".join(first).encode() + b"\n")
    assert res.returncode == 0, res.stderr.decode()
    late = [
        event("late", 9, "page_view", u, "02/02/2017 10:30:00"),  # a new user in 10h
        event("e0", 0, "page_view", u, "02/02/2017 10:00:00"),  # resent: changes nothing
        event("e1", 1, "claim", u, "02/02/2017 11:00:01"),  # differs from e1 and sorts first: replaces it
        event("alone", 5, "button_click", u, "02/02/2017 12:00:00"),  # empties page_view at 12h
    ]
    res = stream("--dest", url, "--batch-size", "1", data="\n".join(late).encode() + b"\n")
    assert res.returncode == 0, res.stderr.decode()
    with duckdb.connect(str(db), read_only=True) as con:
        got = db_tables(con)
    assert got == tables(first + late)[:2]
    assert got[1]["2017-02-02"] == [
        ("2017020210", "hipages.com.au", "page_view", 4, 4),
        ("2017020211", "hipages.com.au", "claim", 1, 1),
        ("2017020211", "hipages.com.au", "page_view", 2, 2),
        ("2017020212", "hipages.com.au", "button_click", 1, 1),
    ]


def test_stream_into_databases_equals_run(tmp_path, demo_events, pg_url):
    import psycopg

    batch = run_cli("run", "weblogs", "--source", str(demo_events), "--dest", str(tmp_path / "b"))
    assert batch.code == 0, batch.err
    want = read_tables(tmp_path / "b")
    db = tmp_path / "s.duckdb"
    for url in (f"duckdb:///{db}", pg_url):
        res = stream("--dest", url, "--batch-size", "50", data=demo_lines(demo_events))
        assert res.returncode == 0, res.stderr.decode()
    with duckdb.connect(str(db), read_only=True) as con:
        assert db_tables(con) == want
        rejects = con.execute("SELECT count(*) FROM _logroll_quarantine").fetchone()[0]
    with psycopg.connect(pg_url) as con:
        assert db_tables(con) == want
        assert con.execute("SELECT count(*) FROM _logroll_quarantine").fetchone()[0] == rejects > 0


def test_a_table_of_run_is_not_streamed_over(tmp_path):
    db = tmp_path / "w.duckdb"
    src = tmp_path / "events"
    src.mkdir()
    (src / "s.json").write_bytes(SAMPLE.read_bytes())
    assert (
        run_cli(
            "run",
            "weblogs",
            "--source",
            str(src),
            "--dest",
            f"duckdb:///{db}",
            "--work-dir",
            str(tmp_path / "wd"),
        ).code
        == 0
    )
    res = stream("--dest", f"duckdb:///{db}", data=b"")
    assert res.returncode == 2
    assert "already has a table user_web_hits (written by `logroll run`?)" in res.stderr.decode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_commits_the_open_micro_batch_and_exits_0(tmp_path, sig):
    dest = tmp_path / "out"
    proc = popen_cli(
        "stream",
        "weblogs",
        "--dest",
        str(dest),
        "--batch-size",
        "1000",
        "--max-delay",
        "600",
        "--progress",
        stdin=subprocess.PIPE,
    )
    lines = SAMPLE.read_text().splitlines()[:7]
    proc.stdin.write("\n".join(lines) + "\n")
    proc.stdin.flush()
    # The progress line (drawn from inside the read loop, signal handlers in place) shows the
    # age of the oldest uncommitted line once the lines are read; a fixed sleep was too short
    # on a busy machine.
    seen = ""
    while not re.search(r"lag (?!0\.0 s)[0-9.]+ s\x1b", seen.rpartition("\r")[2]):
        ch = proc.stderr.read(1)
        assert ch, f"the stream ended early: {seen}"
        seen += ch
    assert state_of(dest).get("read", 0) == 0  # read, but the micro-batch is far from full
    proc.send_signal(sig)
    proc.wait(timeout=120)  # stdin still open: the signal alone ends it
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stream stopped (signal)" in out
    assert state_of(dest).get("read") == 7, (out, err, seen)
    hits, _ = read_tables(dest)
    assert sum(len(v) for v in hits.values()) == 7


def test_max_delay_commits_a_quiet_stream(tmp_path):
    dest = tmp_path / "out"
    proc = popen_cli(
        "stream",
        "weblogs",
        "--dest",
        str(dest),
        "--max-delay",
        "0.3",
        "--publish-interval",
        "0.3",
        stdin=subprocess.PIPE,
    )
    try:
        proc.stdin.write("\n".join(SAMPLE.read_text().splitlines()[:3]) + "\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (dest / "user_web_hits").exists():
            time.sleep(0.1)
        assert state_of(dest).get("read") == 3  # committed while stdin is still open
        assert sum(len(v) for v in read_tables(dest)[0].values()) == 3
        assert proc.poll() is None
    finally:
        proc.communicate(timeout=120)  # closes stdin: end of input
    assert proc.returncode == 0


def test_progress_line(tmp_path):
    res = stream("--dest", str(tmp_path / "o"), "--progress", data=SAMPLE.read_bytes())
    assert res.returncode == 0
    err = res.stderr.decode()
    assert "weblogs: 500 events (" in err and "/s), 0 rejected, lag " in err


def test_one_stream_per_destination(tmp_path):
    dest = tmp_path / "out"
    first = popen_cli("stream", "weblogs", "--dest", str(dest), stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (dest / "_logroll" / "stream" / "weblogs.lock").exists():
            time.sleep(0.1)
        time.sleep(0.5)
        second = stream("--dest", str(dest), data=b"")
        assert second.returncode == 1
        assert "another `logroll stream weblogs` is writing to this destination" in second.stderr.decode()
    finally:
        first.communicate(timeout=120)


# ---- crashes ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "point",
    [
        "stream.staged:1",
        "stream.before_commit:3",
        "stream.committed:3",
        "stream.exported:3",
        "stream.export_recorded:1",
    ],
)
def test_killed_at_each_point_then_restarted_loses_nothing(tmp_path, demo_events, point):
    """SIGKILL inside a micro-batch's transaction, between commits, in the middle of writing the
    files: the restart resumes at the checkpoint and ends with exactly the batch's tables."""
    log = tmp_path / "events.json"
    log.write_bytes(demo_lines(demo_events))
    batch = run_cli("run", "weblogs", "--source", str(demo_events), "--dest", str(tmp_path / "b"))
    assert batch.code == 0, batch.err
    dest = tmp_path / "s"
    args = [
        "--follow",
        str(log),
        "--dest",
        str(dest),
        "--batch-size",
        "40",
        "--stop-at-eof",
        "--publish-interval",
        "0",
    ]
    killed = stream(*args, env={"LOGROLL_FAULT_AT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    res = stream(*args, "--json")
    assert res.returncode == 0, res.stderr.decode()
    report = json.loads(res.stdout)
    assert report["checkpoint"]["offset"] == log.stat().st_size
    assert report["checkpoint"]["read"] == report["checkpoint"]["valid"] + report["checkpoint"]["rejected"]
    got, want = outputs(dest), outputs(tmp_path / "b")
    assert got == want, explain_difference(got, want)


def test_follow_killed_at_random_while_the_file_grows(tmp_path, demo_events):
    """A real `stream --follow` of a growing file, SIGKILLed at random moments and restarted."""
    data = demo_lines(demo_events)
    cuts = sorted(random.Random(5).sample(range(1, len(data)), 6))
    log = tmp_path / "events.json"
    log.write_bytes(b"")
    dest = tmp_path / "s"
    args = ["stream", "weblogs", "--follow", str(log), "--dest", str(dest), "--batch-size", "25", "--max-delay", "0.05",
            "--publish-interval", "0.2"]  # fmt: skip
    rng = random.Random(9)
    written = 0
    for cut in [*cuts, len(data)]:
        proc = popen_cli(*args)
        with open(log, "ab") as fh:  # the writer goes on while the stream runs
            fh.write(data[written:cut])
        written = cut
        time.sleep(rng.uniform(0.2, 1.5))
        proc.kill()
        proc.communicate(timeout=60)
    res = stream("--follow", str(log), "--dest", str(dest), "--stop-at-eof", "--json")
    assert res.returncode == 0, res.stderr.decode()
    report = json.loads(res.stdout)
    assert report["checkpoint"]["offset"] == len(data)
    batch = run_cli("run", "weblogs", "--source", str(demo_events), "--dest", str(tmp_path / "b"), "--json")
    assert batch.code == 0, batch.err
    b = batch.json()
    c = report["checkpoint"]
    # every line read exactly once over all the runs: the batch's counts
    assert (c["read"], c["valid"], c["rejected"], c["unique"]) == (
        b["rows_read"], b["rows_valid"], b["rows_rejected"], b["rows_unique"],
    )  # fmt: skip
    got, want = outputs(dest), outputs(tmp_path / "b")
    assert got == want, explain_difference(got, want)


def test_follow_resumes_from_its_checkpoint_and_reads_a_replaced_file_from_the_start(tmp_path):
    log = tmp_path / "events.json"
    lines = SAMPLE.read_text().splitlines()
    log.write_text("\n".join(lines[:100]) + "\n")
    dest = tmp_path / "s"
    first = stream("--follow", str(log), "--dest", str(dest), "--stop-at-eof", "--json")
    assert json.loads(first.stdout)["rows_read"] == 100
    with open(log, "a") as fh:
        fh.write("\n".join(lines[100:200]) + "\n")
    second = json.loads(stream("--follow", str(log), "--dest", str(dest), "--stop-at-eof", "--json").stdout)
    assert (second["rows_read"], second["checkpoint"]["line"]) == (100, 200)
    log.unlink()  # rotated: a new file under the same name
    log.write_text("\n".join(lines[200:250]) + "\n")
    third = stream("--follow", str(log), "--dest", str(dest), "--stop-at-eof", "--json")
    assert "replaced or truncated" in third.stderr.decode()
    report = json.loads(third.stdout)
    assert (report["rows_read"], report["checkpoint"]["line"], report["checkpoint"]["read"]) == (50, 50, 250)


def compress(data: bytes, kind: str) -> bytes:
    import bz2
    import gzip

    import zstandard

    return {
        "gz": lambda: gzip.compress(data),
        "zst": lambda: zstandard.ZstdCompressor().compress(data),
        "bz2": lambda: bz2.compress(data),
    }[kind]()


@pytest.mark.parametrize("kind", ["gz", "zst", "bz2"])
def test_follow_reads_a_compressed_file_whole_once(tmp_path, demo_events, kind):
    """Issue 14: an archive cannot grow, so --follow reads it whole, once, and ends (without
    --stop-at-eof); the tables are those of the plain lines; a restart reads nothing again."""
    data = demo_lines(demo_events)
    plain, packed = tmp_path / "plain" / "events.json", tmp_path / f"events.json.{kind}"
    plain.parent.mkdir()
    plain.write_bytes(data)
    packed.write_bytes(compress(data, kind))
    res = stream("--follow", str(packed), "--dest", str(tmp_path / "s"), "--json", timeout=120)
    assert res.returncode == 0, res.stderr.decode()
    report = json.loads(res.stdout)
    assert report["stopped_by"] == "end of input" and report["checkpoint"]["offset"] == len(data)
    ref = run_cli("run", "weblogs", "--source", str(plain.parent), "--dest", str(tmp_path / "b"), "--json")
    assert ref.code == 0, ref.err
    assert report["rows_read"] == ref.json()["rows_read"] > 0
    got, want = outputs(tmp_path / "s"), outputs(tmp_path / "b")
    assert got == want != {}, explain_difference(got, want)
    again = stream("--follow", str(packed), "--dest", str(tmp_path / "s"), "--json", timeout=120)
    assert again.returncode == 0 and json.loads(again.stdout)["rows_read"] == 0
    assert outputs(tmp_path / "s") == want


def test_follow_of_a_truncated_archive_commits_what_came_before_and_fails(tmp_path):
    """The lines before the damage are committed and counted, the incomplete last one is
    quarantined, and the stream exits 1 saying why."""
    lines = SAMPLE.read_text().splitlines()[:300]
    data = ("\n".join(lines) + "\n").encode()
    packed = compress(data, "gz")
    cut = tmp_path / "events.json.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    dest = tmp_path / "s"
    res = stream("--follow", str(cut), "--dest", str(dest), "--json", timeout=120)
    assert res.returncode == 1, res.stderr.decode()
    report = json.loads(res.stdout)
    assert report["status"] == "failed" and "truncated gzip archive" in report["error"]
    import zlib

    prefix = zlib.decompressobj(wbits=47).decompress(packed[: len(packed) // 2])
    complete = prefix.count(b"\n")
    assert report["checkpoint"]["offset"] == len(prefix)
    assert (report["rows_read"], report["rows_rejected"]) == (complete + 1, 1)
    (row,) = quarantine_rows(dest / "_logroll" / "quarantine" / "weblogs" / "stream.rejects.csv")
    assert (int(row["line"]), row["reason"]) == (
        complete + 1,
        "incomplete last line: the archive ends inside it",
    )


def test_follow_takes_the_pipelines_compression_over_the_suffix(tmp_path):
    """input.compression: gzip on a file whose name says nothing: read as the archive it is."""
    from logroll.streaming.source import ArchiveSource, FollowSource, follow_source

    data = b'{"a": 1}\n{"a": 2}\n'
    path = tmp_path / "events.log"
    path.write_bytes(compress(data, "gz"))
    by_suffix = follow_source(str(path), {}, True)
    assert isinstance(by_suffix, FollowSource)
    by_suffix.close()
    declared = follow_source(str(path), {}, True, "gzip")
    assert isinstance(declared, ArchiveSource)
    got = b""
    while (chunk := declared.read(1.0, None)) is not None:
        got += chunk
    declared.close()
    assert got == data and declared.failure is None
