"""Run a pipeline on a cron schedule in the foreground, or print the crontab line instead.

The scheduler is a loop around `api.run` (no date: stage what is new, build what is dirty):
- missed runs are caught up once: after downtime, a suspend or a run longer than the interval,
  the slots that passed make one run, not one per slot;
- a run that fails (or raises) is logged, and the next slot runs as planned;
- runs never overlap: the next run starts only after the previous one returned, and the
  catalog's run lock keeps other processes (cron, a hand-typed backfill) out too;
- SIGTERM or SIGINT stops it cleanly: at once when idle, after the current run otherwise (a
  second signal interrupts the run, which is crash-safe).

Time comes from an injectable clock, so tests drive a fake one.
"""

from __future__ import annotations

import datetime as dt
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from croniter import croniter

from .. import proc
from ..errors import LockedError, LogrollError, UsageError, first_line
from ..urls import has_secret

log = logging.getLogger("logroll")


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware."""
        ...

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        """Wait `seconds`, or less if `stop` is set meanwhile."""
        ...


class SystemClock:
    """Local wall-clock time, like cron."""

    def now(self) -> dt.datetime:
        return dt.datetime.now().astimezone()

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(max(0.0, seconds))


def check_cron(expr: str) -> str:
    expr = " ".join(str(expr).split())
    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise UsageError(
            f"--cron {expr!r} is not a cron expression: use 5 fields 'minute hour day month weekday', "
            "e.g. '0 23 * * *' for 23:00 every day"
        )
    return expr


def fire_times(expr: str, after: dt.datetime, until: dt.datetime) -> Iterator[dt.datetime]:
    """Scheduled times t with after < t <= until."""
    it = croniter(expr, after)
    while True:
        t = it.get_next(dt.datetime)
        if t > until:
            return
        yield t


@dataclass
class Scheduler:
    """Calls `job(slot)` at each cron slot; `slot` is the scheduled time the run stands for.

    `last_run` is when the previous run started (from the catalog): slots after it that already
    passed are caught up with one run at start. Without it, the first run is the next slot.
    """

    cron: str
    job: Callable[[dt.datetime], Any]
    pipeline: str = ""
    clock: Clock = field(default_factory=SystemClock)
    last_run: dt.datetime | None = None
    catch_up: bool = True
    # Re-read the clock at least this often: a suspended laptop or a clock change must not make
    # the scheduler oversleep a slot by hours.
    max_sleep: float = 60.0

    def __post_init__(self) -> None:
        self.cron = check_cron(self.cron)
        self.stop_event = threading.Event()
        self.running = False
        self.runs = 0
        self.failures = 0

    def stop(self) -> None:
        self.stop_event.set()

    def _extra(self, event: str, **fields: Any) -> dict[str, Any]:
        return {"event": event, "pipeline": self.pipeline or None, **fields}

    def next_slot(self, now: dt.datetime) -> dt.datetime:
        return croniter(self.cron, now).get_next(dt.datetime)

    def run_forever(self) -> int:
        """Loop until stopped; returns the number of runs that failed."""
        now = self.clock.now()
        # Slots up to `mark` are handled; a run's slots are the ones that passed since.
        mark = self.last_run if (self.catch_up and self.last_run is not None) else now
        if mark > now:
            mark = now
        log.info(
            "scheduler started: %s at '%s', next run %s",
            self.pipeline or "job",
            self.cron,
            self.next_slot(now).isoformat(timespec="seconds"),
            extra=self._extra("schedule_started", next_run=self.next_slot(now).isoformat()),
        )
        while not self.stop_event.is_set():
            now = self.clock.now()
            missed = list(fire_times(self.cron, mark, now))
            if missed:
                if len(missed) > 1:
                    log.info(
                        "%d scheduled runs passed since %s (%s ... %s): one run catches them up",
                        len(missed),
                        mark.isoformat(timespec="seconds"),
                        missed[0].isoformat(timespec="seconds"),
                        missed[-1].isoformat(timespec="seconds"),
                        extra=self._extra("catch_up", counts={"missed": len(missed)}),
                    )
                mark = now
                self._run_once(missed[-1])
                continue
            nxt = self.next_slot(now)
            self.clock.sleep(min((nxt - now).total_seconds(), self.max_sleep), self.stop_event)
        log.info(
            "scheduler stopped after %d runs (%d failed)",
            self.runs,
            self.failures,
            extra=self._extra("schedule_stopped", counts={"runs": self.runs, "failed": self.failures}),
        )
        return self.failures

    def _run_once(self, slot: dt.datetime) -> None:
        self.running = True
        self.runs += 1
        try:
            result = self.job(slot)
        except LockedError as exc:
            # Another process runs this pipeline right now; it picks up what is new, and the
            # next slot catches up whatever arrives after it.
            log.warning(
                "skipped the %s run: %s",
                slot.isoformat(timespec="seconds"),
                exc,
                extra=self._extra("run_skipped", error=str(exc)),
            )
            return
        except (Exception, KeyboardInterrupt) as exc:
            if isinstance(exc, KeyboardInterrupt) and self.stop_event.is_set():
                raise  # a second signal: stop now
            self.failures += 1
            message = first_line(exc)
            log.error(
                "the %s run failed: %s%s",
                slot.isoformat(timespec="seconds"),
                "" if isinstance(exc, LogrollError) else f"{type(exc).__name__}: ",
                message,
                exc_info=not isinstance(exc, LogrollError),
                extra=self._extra("run_failed", error=message),
            )
            return
        finally:
            self.running = False
        status = getattr(result, "status", "ok")
        if status != "ok":
            self.failures += 1
        log.log(
            logging.INFO if status == "ok" else logging.ERROR,
            "the %s run finished: %s; next run %s",
            slot.isoformat(timespec="seconds"),
            status,
            self.next_slot(self.clock.now()).isoformat(timespec="seconds"),
            extra=self._extra("run_done", status=status),
        )

    def install_signal_handlers(self) -> Callable[[], None]:
        """SIGTERM/SIGINT: stop after the current run; a second one interrupts it.
        Returns a function that restores the previous handlers."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if self.stop_event.is_set() and self.running:
                raise KeyboardInterrupt
            self.stop_event.set()
            if self.running:
                log.warning(
                    "%s: stopping after the current run (send it again to interrupt the run)",
                    name,
                    extra=self._extra("schedule_stopping"),
                )

        return proc.install(handle, (signal.SIGTERM, signal.SIGINT))


def last_run_started(catalog: Any, pipeline: str) -> dt.datetime | None:
    """When the pipeline's latest run started, as an aware datetime (the catalog keeps UTC)."""
    runs = catalog.runs(pipeline, limit=1)
    if not runs:
        return None
    started = runs[0]["started_at"]
    return started.replace(tzinfo=dt.UTC) if started.tzinfo is None else started


def serve(
    pipeline: str,
    cron: str,
    *,
    source: str,
    dest: str,
    state: str | None = None,
    work_dir: str | None = None,
    storage_options: dict[str, Any] | None = None,
    catch_up: bool = True,
    clock: Clock | None = None,
    handle_signals: bool = True,
    **run_options: Any,
) -> int:
    """Run `pipeline` at every `cron` slot until SIGTERM/SIGINT; returns the number of failed runs."""
    from .. import api
    from ..errors import StateNotFound
    from ..workspace import open_workspace, read_state

    cron = check_cron(cron)
    pipe = api.resolve(pipeline)
    ws = open_workspace(dest, state, work_dir, storage_options, read_only=True)
    try:
        with read_state(ws, pipe.name) as session:
            last = last_run_started(session.catalog, pipe.name)
    except StateNotFound:
        last = None  # nothing has run yet: nothing to catch up on

    def job(_slot: dt.datetime) -> Any:
        return api.run(
            pipeline,
            source=source,
            dest=dest,
            state=state,
            work_dir=work_dir,
            storage_options=storage_options,
            **run_options,
        )

    sched = Scheduler(
        cron, job, pipeline=pipe.name, clock=clock or SystemClock(), last_run=last, catch_up=catch_up
    )
    restore = sched.install_signal_handlers() if handle_signals else (lambda: None)
    try:
        return sched.run_forever()
    finally:
        restore()


def logroll_command() -> list[str]:
    """How cron should start this same logroll: an absolute path, no reliance on PATH."""
    script = Path(sys.executable).absolute().parent / "logroll"
    if script.exists():
        return [str(script)]
    return [str(Path(sys.executable).absolute()), "-m", "logroll.cli"]


def crontab_line(cron: str, run_args: Sequence[str], log_file: str) -> str:
    """`MIN HOUR DOM MON DOW /abs/logroll run ... >> LOG 2>&1`, quoted for sh and escaped for cron."""
    cron = check_cron(cron)
    command = " ".join(shlex.quote(a) for a in [*logroll_command(), *run_args])
    line = f"{cron} {command} >> {shlex.quote(log_file)} 2>&1"
    # cron turns an unescaped % into a newline: every % the command needs must be \%.
    return line.replace("%", r"\%")


def absolute_location(url: str) -> str:
    """cron starts in $HOME: a relative local path must become absolute; URLs stay as they are."""
    if "://" in url and not url.startswith("file://"):
        return url
    return str(Path(url.removeprefix("file://")).expanduser().absolute())


def crontab_location(value: str | None) -> tuple[str | None, bool]:
    """A --source, --dest or --state to write into a crontab line (None: leave it to its LOGROLL_*
    variable), and whether it was left out because it holds a secret (urls.has_secret)."""
    if value is None:
        return None, False
    if has_secret(value):
        return None, True  # never write a secret into a crontab: a variable line above it carries it
    return absolute_location(value), False
