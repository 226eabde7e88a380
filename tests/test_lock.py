"""One run per pipeline and state: real processes holding, waiting for and dying with the lock."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import insert, select

from logroll.catalog import Catalog
from logroll.catalog import schema as s
from logroll.catalog.lock import RunLock, holder, lock_name, pid_alive

HOLD = textwrap.dedent(
    """
    import pathlib, sys, time
    from logroll.catalog import Catalog
    from logroll.catalog.lock import RunLock
    lock = RunLock(Catalog(sys.argv[1]), "impressions", heartbeat=0.2)
    lock.acquire()
    print("held", flush=True)
    deadline = time.monotonic() + float(sys.argv[2])
    release = pathlib.Path(sys.argv[1] + ".release")  # the test asks for a normal release
    while time.monotonic() < deadline and not release.exists():
        time.sleep(0.05)
    lock.release()
    """
)


def hold_lock(state: Path, seconds: float) -> subprocess.Popen:
    """Another process that holds the impressions lock for `seconds`, then releases it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(state), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def run_args(raw: Path, dest: Path, *extra: str) -> list[str]:
    return ["run", "impressions", "2021-01-30", "--source", str(raw), "--dest", str(dest), *extra]


LOCKED = re.compile(
    r"^logroll: error: impressions is already running on this state \(pid (\d+) on (\S+) since "
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, last heartbeat \d+s ago\): wait for it to finish, "
    r"or pass --wait SECONDS$"
)


def test_a_second_run_exits_at_once_with_a_clear_message(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    state = dest / "_logroll" / "catalog.sqlite"
    proc = hold_lock(state, 60)
    try:
        started = time.monotonic()
        res = cli(*run_args(impressions_raw, dest))
        elapsed = time.monotonic() - started
    finally:
        proc.kill()
        proc.wait()
    assert res.code == 1
    assert res.out == ""
    m = LOCKED.match(res.err.strip())
    assert m, res.err
    assert int(m.group(1)) == proc.pid and m.group(2) == socket.gethostname()
    assert elapsed < 30
    catalog = Catalog(str(state))
    assert catalog.runs("impressions") == []  # the refused run recorded nothing
    catalog.close()


def test_wait_queues_behind_the_running_one(impressions_raw, tmp_path):
    dest = tmp_path / "results"
    holder_proc = hold_lock(dest / "_logroll" / "catalog.sqlite", 600)
    run = subprocess.Popen(
        [sys.executable, "-m", "logroll.cli", *run_args(impressions_raw, dest, "--wait", "60")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stderr is not None
        first = run.stderr.readline()  # the run is now waiting behind the holder...
        assert "waiting up to 60s for the running impressions" in first, first
        time.sleep(1)
        assert run.poll() is None
        Path(f"{dest / '_logroll' / 'catalog.sqlite'}.release").touch()  # ...which now finishes
        assert holder_proc.wait(timeout=30) == 0
        out, err = run.communicate(timeout=300)
    finally:
        for p in (run, holder_proc):
            if p.poll() is None:
                p.kill()
    assert run.returncode == 0, err
    assert "impressions: ok" in out
    assert "took over" not in err


def test_wait_gives_up_after_its_time(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    proc = hold_lock(dest / "_logroll" / "catalog.sqlite", 60)
    try:
        res = cli(*run_args(impressions_raw, dest, "--wait", "1"))
    finally:
        proc.kill()
        proc.wait()
    assert res.code == 1
    assert res.err.strip().splitlines()[-1].endswith("after waiting 1s: try again later")


def test_a_holder_that_died_is_taken_over(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    state = dest / "_logroll" / "catalog.sqlite"
    proc = hold_lock(state, 600)
    proc.send_signal(signal.SIGKILL)  # no release, no cleanup: the row stays behind
    proc.wait()
    catalog = Catalog(str(state))
    left = holder(catalog, lock_name("impressions"))
    catalog.close()
    assert left is not None and left["pid"] == proc.pid
    assert left["stale"] == f"pid {proc.pid} is not running"

    res = cli(*run_args(impressions_raw, dest))
    assert res.code == 0, res.err
    assert (
        f"took over the lock of impressions from a run that died (pid {proc.pid} is not running)" in res.err
    )
    catalog = Catalog(str(state))
    assert holder(catalog, lock_name("impressions")) is None  # released after the run
    catalog.close()


def _plant(state: Path, host: str, heartbeat_age: float) -> None:
    catalog = Catalog(str(state))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with catalog.engine.begin() as conn:
        conn.execute(
            insert(s.locks).values(
                name=lock_name("impressions"),
                token="someone-else",
                pid=os.getpid(),  # alive here, but on "another host" the pid means nothing
                host=host,
                started_at=now - dt.timedelta(hours=1),
                heartbeat_at=now - dt.timedelta(seconds=heartbeat_age),
            )
        )
    catalog.close()


def test_another_hosts_holder_counts_until_its_heartbeat_expires(cli, impressions_raw, tmp_path):
    fresh, stale = tmp_path / "fresh", tmp_path / "stale"
    _plant(fresh / "_logroll" / "catalog.sqlite", "worker-7", heartbeat_age=5)
    _plant(stale / "_logroll" / "catalog.sqlite", "worker-7", heartbeat_age=600)
    res = cli(*run_args(impressions_raw, fresh))
    assert res.code == 1 and "on worker-7 since" in res.err
    res = cli(*run_args(impressions_raw, stale))
    assert res.code == 0, res.err
    assert re.search(
        r"took over the lock of impressions from a run that died \(no heartbeat for 6\d\ds\)", res.err
    )


def test_heartbeat_moves_and_release_frees(tmp_path):
    catalog = Catalog(str(tmp_path / "c.sqlite"))
    lock = RunLock(catalog, "impressions", heartbeat=0.1)
    with lock:
        first = holder(catalog, lock.name)
        time.sleep(0.5)
        later = holder(catalog, lock.name)
        assert first is not None and later is not None
        assert later["heartbeat_at"] > first["heartbeat_at"]
        assert later["pid"] == os.getpid() and later["stale"] is None
        # The same process cannot take its own pipeline twice either.
        other = RunLock(catalog, "impressions")
        try:
            other.acquire()
            raise AssertionError("a second lock was granted")
        except Exception as exc:
            assert type(exc).__name__ == "LockedError"
    assert holder(catalog, lock.name) is None
    with catalog.engine.connect() as conn:
        assert conn.execute(select(s.locks)).fetchall() == []
    catalog.close()


def test_pid_alive():
    assert pid_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # exited but not reaped: a zombie is dead too
        with open(f"/proc/{zombie.pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.05)
    assert not pid_alive(zombie.pid)
    zombie.wait()


def test_concurrent_runs_never_overlap(impressions_raw, tmp_path):
    """Two real runs started together on one state: both finish, one after the other."""
    dest = tmp_path / "results"
    cmd = [sys.executable, "-m", "logroll.cli", *run_args(impressions_raw, dest, "--wait", "120")]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    catalog = Catalog(str(dest / "_logroll" / "catalog.sqlite"))
    runs = sorted(catalog.runs("impressions"), key=lambda r: r["started_at"])
    catalog.close()
    assert len(runs) == 2
    assert runs[0]["finished_at"] <= runs[1]["started_at"]
    assert runs[1]["report"]["nothing_to_do"] is True


def test_lock_on_a_postgresql_state(pg_url, impressions_raw, tmp_path, cli):
    """Several machines share one PostgreSQL state: the same lock, the same takeover rules."""
    holder_proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, pg_url, "600"], stdout=subprocess.PIPE, text=True
    )
    assert holder_proc.stdout is not None and holder_proc.stdout.readline().strip() == "held"
    args = run_args(impressions_raw, tmp_path / "results", "--state", pg_url)
    try:
        res = cli(*args)
        assert res.code == 1 and LOCKED.match(res.err.strip()), res.err
    finally:
        holder_proc.send_signal(signal.SIGKILL)
        holder_proc.wait()
    res = cli(*args)
    assert res.code == 0, res.err
    assert (
        f"took over the lock of impressions from a run that died (pid {holder_proc.pid} is not running)"
        in res.err
    )
    catalog = Catalog(pg_url)
    assert holder(catalog, lock_name("impressions")) is None
    assert [r["status"] for r in catalog.runs("impressions")] == ["ok"]
    catalog.close()
