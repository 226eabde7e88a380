"""The foreground scheduler: a fake clock for the timing, real runs and real signals for the rest."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from logroll.catalog import Catalog
from logroll.catalog.lock import RunLock
from logroll.cli import scheduler as sched
from logroll.errors import RunFailed

UTC = dt.UTC


class FakeClock:
    """Time moves only when the scheduler sleeps or a job says so; stops after `until`."""

    def __init__(self, start: dt.datetime, until: dt.datetime):
        self.t = start
        self.until = until
        self.scheduler: sched.Scheduler | None = None

    def now(self) -> dt.datetime:
        return self.t

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        assert seconds >= 0
        self.t += dt.timedelta(seconds=seconds)
        if self.t >= self.until:
            stop.set()

    def advance(self, **kw: float) -> None:
        """A job taking time; past `until`, the scheduler stops once the job returns."""
        self.t += dt.timedelta(**kw)
        if self.t >= self.until and self.scheduler is not None:
            self.scheduler.stop()


def t(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2021, 3, day, hour, minute, tzinfo=UTC)


def make(cron: str, clock: FakeClock, job, last_run=None, catch_up=True) -> sched.Scheduler:
    s = sched.Scheduler(cron, job, pipeline="impressions", clock=clock, last_run=last_run, catch_up=catch_up)
    clock.scheduler = s
    return s


def test_runs_at_each_slot_and_sleeps_until_the_next():
    clock = FakeClock(t(1, 10), until=t(4, 0))
    calls = []
    s = make("0 23 * * *", clock, lambda slot: calls.append((clock.now(), slot)))
    assert s.run_forever() == 0
    assert [c[0] for c in calls] == [t(1, 23), t(2, 23), t(3, 23)]
    assert [c[1] for c in calls] == [t(1, 23), t(2, 23), t(3, 23)]


def test_missed_runs_are_caught_up_once_at_start():
    # Last run on the 1st at 23:00; the scheduler comes back on the 4th at 08:00: the slots of
    # the 2nd and 3rd passed. One run catches both up, then the schedule goes on as usual.
    clock = FakeClock(t(4, 8), until=t(6, 0))
    calls = []
    s = make("0 23 * * *", clock, lambda slot: calls.append((clock.now(), slot)), last_run=t(1, 23, 0))
    s.run_forever()
    assert calls == [(t(4, 8), t(3, 23)), (t(4, 23), t(4, 23)), (t(5, 23), t(5, 23))]


def test_no_catch_up_without_history_or_when_disabled():
    for last_run, catch_up in ((None, True), (t(1, 23), False)):
        clock = FakeClock(t(4, 8), until=t(5, 0))
        calls = []
        make(
            "0 23 * * *", clock, lambda slot, c=calls, k=clock: c.append(k.now()), last_run, catch_up
        ).run_forever()
        assert calls == [t(4, 23)]


def test_a_failing_run_is_logged_and_the_schedule_goes_on(caplog):
    clock = FakeClock(t(1, 0), until=t(1, 4, 30))
    calls = []

    def job(slot):
        calls.append(slot)
        if len(calls) == 1:
            raise RuntimeError("disk on fire")
        if len(calls) == 2:
            raise RunFailed("2 files failed")

        class Report:
            status = "failed" if len(calls) == 3 else "ok"

        return Report()

    s = make("0 * * * *", clock, job)
    with caplog.at_level(logging.INFO, logger="logroll"):
        failures = s.run_forever()
    assert calls == [t(1, 1), t(1, 2), t(1, 3), t(1, 4)]
    assert failures == 3
    failed = [r for r in caplog.records if getattr(r, "event", None) == "run_failed"]
    assert [r.error for r in failed] == ["disk on fire", "2 files failed"]
    assert "RuntimeError" in failed[0].getMessage()
    done = [r.status for r in caplog.records if getattr(r, "event", None) == "run_done"]
    assert done == ["failed", "ok"]


def test_runs_never_overlap_and_slots_missed_during_a_long_run_make_one_run():
    # Hourly, but every run takes 2.5 hours: the next run starts when the previous one ends,
    # and the two or three slots that passed meanwhile make one run, not several.
    clock = FakeClock(t(1, 0, 30), until=t(1, 9))
    active = []
    starts = []

    def job(slot):
        assert not active, "a run started while another was still going"
        active.append(slot)
        starts.append(clock.now())
        clock.advance(hours=2, minutes=30)
        active.pop()

    make("0 * * * *", clock, job).run_forever()
    assert starts == [t(1, 1), t(1, 3, 30), t(1, 6), t(1, 8, 30)]


def test_a_run_locked_by_another_process_is_skipped_not_failed(caplog, tmp_path):
    catalog = Catalog(str(tmp_path / "catalog.sqlite"))
    clock = FakeClock(t(1, 0, 30), until=t(1, 2, 30))
    held = RunLock(catalog, "impressions")
    held.acquire()

    def job(slot):
        RunLock(catalog, "impressions").acquire()  # what api.run does first

    try:
        with caplog.at_level(logging.INFO, logger="logroll"):
            failures = make("0 * * * *", clock, job).run_forever()
    finally:
        held.release()
        catalog.close()
    assert failures == 0
    skipped = [r for r in caplog.records if getattr(r, "event", None) == "run_skipped"]
    assert len(skipped) == 2
    assert "impressions is already running" in skipped[0].error


def test_sigterm_during_a_run_stops_after_it(caplog):
    clock = FakeClock(t(1, 0, 30), until=t(2, 0))
    calls = []

    def job(slot):
        calls.append(slot)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-run
        clock.advance(hours=3)  # so more slots are already due when it ends

    s = make("0 * * * *", clock, job)
    before = signal.getsignal(signal.SIGTERM)
    restore = s.install_signal_handlers()
    try:
        with caplog.at_level(logging.INFO, logger="logroll"):
            s.run_forever()
    finally:
        restore()
    assert calls == [t(1, 1)]
    events = [getattr(r, "event", None) for r in caplog.records]
    assert "schedule_stopping" in events and events[-1] == "schedule_stopped"
    assert signal.getsignal(signal.SIGTERM) is before


def test_bad_cron_is_a_usage_error(cli, tmp_path):
    res = cli(
        "schedule", "impressions", "--cron", "0 25 * * *", "-s", str(tmp_path), "-d", str(tmp_path / "o")
    )
    assert res.code == 2
    assert res.err.strip() == (
        "logroll: error: --cron '0 25 * * *' is not a cron expression: use 5 fields "
        "'minute hour day month weekday', e.g. '0 23 * * *' for 23:00 every day"
    )


def test_print_crontab_line_runs_as_is(cli, impressions_raw, tmp_path):
    dest = tmp_path / "re sults"
    res = cli(
        "schedule", "impressions", "--cron", "0 23 * * *", "--source", str(impressions_raw), "--dest", str(dest),
        "--initials", "A_B", "--memory-limit", "1GB", "--log-file", str(tmp_path / "logs" / "imp%d.log"),
        "--print-crontab",
    )  # fmt: skip
    assert res.code == 0, res.err
    line = res.out.strip()
    assert "\n" not in line
    assert line.startswith("0 23 * * * /")
    logroll_exe = shlex.split(line)[5]
    assert Path(logroll_exe).is_absolute() and os.access(logroll_exe, os.X_OK)
    # cron turns a bare % into a newline: the line must carry it as \%, which cron unescapes.
    assert r"imp\%d.log" in line
    command = line.split(" ", 5)[5].replace(r"\%", "%")
    (tmp_path / "logs").mkdir()
    # What cron does: sh -c the command, from $HOME, with a bare environment.
    proc = subprocess.run(
        ["/bin/sh", "-c", command], cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=300
    )
    assert proc.returncode == 0
    log_text = (tmp_path / "logs" / "imp%d.log").read_text()
    assert "impressions: ok" in log_text
    assert list(dest.rglob("daily_agg_*_A_B.csv"))


def test_print_crontab_keeps_passwords_out(cli, tmp_path):
    res = cli(
        "schedule", "impressions", "--cron", "*/15 * * * *", "-s", str(tmp_path), "-d", str(tmp_path / "o"),
        "--state", "postgresql://etl:s3cret@db.internal/logroll", "--print-crontab",
    )  # fmt: skip
    assert res.code == 0, res.err
    assert "s3cret" not in res.out + res.err
    assert "--state" not in res.out
    assert "LOGROLL_STATE" in res.err


def test_foreground_scheduler_catches_up_through_real_runs(impressions_raw, tmp_path):
    dest = tmp_path / "results"
    from logroll import api

    api.run("impressions", source=str(impressions_raw), dest=str(dest))
    catalog = Catalog(str(dest / "_logroll" / "catalog.sqlite"))
    last = sched.last_run_started(catalog, "impressions")
    catalog.close()
    # Two days later (fake clock): yesterday's 23:00 slot was missed; one real run catches up.
    start = last + dt.timedelta(days=2)
    clock = FakeClock(start, until=start + dt.timedelta(seconds=1))
    failures = sched.serve(
        "impressions",
        "0 23 * * *",
        source=str(impressions_raw),
        dest=str(dest),
        clock=clock,
        handle_signals=False,
    )
    assert failures == 0
    catalog = Catalog(str(dest / "_logroll" / "catalog.sqlite"))
    runs = catalog.runs("impressions")
    catalog.close()
    assert [r["status"] for r in runs] == ["ok", "ok"]
    assert runs[0]["report"]["nothing_to_do"] is True


def _read_json_lines(stream, until_event: str, deadline: float) -> list[dict]:
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(json.loads(line))
        if seen[-1]["event"] == until_event:
            return seen
    raise AssertionError(f"no {until_event} event in {seen}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_real_scheduler_process_stops_cleanly_on_signal(impressions_raw, tmp_path, sig):
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "logroll.cli", "schedule", "impressions", "--cron", "0 23 * * *",
            "--source", str(impressions_raw), "--dest", str(tmp_path / "results"), "--log-format", "json",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        started = _read_json_lines(proc.stderr, "schedule_started", time.monotonic() + 60)
        assert started[-1]["pipeline"] == "impressions" and started[-1]["next_run"]
        proc.send_signal(sig)
        code = proc.wait(timeout=15)
        rest = [json.loads(line) for line in proc.stderr.read().splitlines()]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0
    assert rest[-1]["event"] == "schedule_stopped"
    assert rest[-1]["counts"] == {"runs": 0, "failed": 0}
