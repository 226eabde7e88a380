"""`logroll stream`: read lines as they come, commit them one micro-batch at a time.

A micro-batch closes at `batch_size` lines, or `max_delay` seconds after its first line came
(a quiet stream still commits). Its events, the statistics it changes, its rejected lines and
the input checkpoint (byte offset and line of a followed file; lines read from stdin) commit
in one transaction (store.py). Killed anywhere, a restart resumes at the last checkpoint:
nothing is lost and nothing counted twice, and events repeated on stdin are deduplicated by
their key. SIGINT and SIGTERM close the open micro-batch, commit it and exit 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from .. import faults, proc
from ..engines import jsonl
from ..errors import ConfigError, Rotated, UsageError
from ..pipelines import PRESETS, Pipeline, get_pipeline
from ..pipelines.stream import StreamSpec
from ..stage.dialect import DEFAULT_LIMITS
from ..urls import redact_url
from ..urls import scheme as url_scheme
from .lines import Batch, LineBuffer
from .progress import ProgressLine, StreamProgress
from .source import StdinSource, follow_source
from .stager import StreamStager
from .store import Layout, Store

log = logging.getLogger("logroll")

MAX_STAGE_LINES = 50_000  # lines staged in one DuckDB pass when a backlog is waiting


@dataclass
class StreamReport:
    pipeline: str
    dest: str
    source: str
    status: str = "ok"  # "failed": the input was damaged (a truncated or corrupt archive)
    error: str | None = None
    stopped_by: str = ""  # "end of input" | "signal"
    batches: int = 0
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    rows_unique: int = 0  # new unique events (less events replaced by a smaller duplicate)
    duplicates: int = 0
    checkpoint: dict[str, Any] = field(default_factory=dict)  # the input's state after the run
    outputs_written: list[str] = field(default_factory=list)
    quarantine: str | None = None
    seconds: float = 0.0
    # Time spent staging, committing and writing files: a followed file or a pipe is mostly idle,
    # and events/s over the wall time would measure how fast events arrived, not the stream.
    busy_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def events_per_second(self) -> float:
        return self.rows_read / self.busy_seconds if self.busy_seconds else 0.0

    def summary(self) -> str:
        c = self.checkpoint
        lines = [
            f"{self.pipeline}: stream stopped ({self.stopped_by}) after {self.seconds:,.2f}s, "
            f"{self.batches:,} micro-batches, {self.events_per_second:,.0f} events/s "
            f"({self.busy_seconds:,.2f}s busy, the rest waiting for input)",
            f"  this run: rows read {self.rows_read:,} = valid {self.rows_valid:,} + rejected "
            f"{self.rows_rejected:,}; valid = new unique {self.rows_unique:,} + duplicates {self.duplicates:,}",
            f"  input {self.source}: all runs read {c.get('read', 0):,} = valid {c.get('valid', 0):,} + rejected "
            f"{c.get('rejected', 0):,}; checkpoint at line {c.get('line', 0):,}, byte {c.get('offset', 0):,}",
            f"  destination: {self.dest}",
        ]
        if self.outputs_written:
            lines.append(f"  files written: {len(self.outputs_written)}")
        if self.quarantine:
            lines.append(f"  quarantine: {self.quarantine}")
        if self.error:
            lines.append(f"  FAILED: {self.error}")
        return "\n".join(lines)


def stream_spec(pipeline: Pipeline) -> StreamSpec:
    spec = getattr(PRESETS.module(pipeline.name), "STREAM", None) if pipeline.name in PRESETS else None
    if spec is None:
        streamable = [n for n in PRESETS if getattr(PRESETS.module(n), "STREAM", None)]
        raise UsageError(
            f"pipeline {pipeline.name!r} has no stream mode: use `logroll run`, or stream one of "
            f"{', '.join(streamable)}"
        )
    optional = [c.name for c in pipeline.columns if not c.required and c.name not in pipeline.key]
    if optional:
        raise ConfigError(f"pipeline {pipeline.name!r}: a streamed pipeline's columns must be required")
    return spec  # type: ignore[no-any-return]


def open_store(
    layout: Layout, dest: str, work_dir: str | None, storage_options: dict[str, Any] | None
) -> Any:
    """(store, (folder storage, work dir) for a folder destination or None, the destination's name).

    A database destination keeps the stream's tables in itself, through its sink's session; a
    folder keeps them in SQLite under its work dir, and gets files exported from them."""
    from ..sinks import is_sink_url, open_sink

    owner = f"logroll stream {layout.pipeline.name}"
    key = f"logroll-stream:{layout.pipeline.name}"
    if is_sink_url(dest):
        scheme = url_scheme(dest)
        if scheme.startswith("postgres"):
            sink = open_sink(dest)
        elif scheme == "duckdb":
            sink = open_sink(dest, lock_timeout=5.0)
        else:
            raise UsageError(
                f"--dest {dest.split('://')[0]}:// cannot take a stream: use a folder, duckdb:// or postgresql://"
            )
        return Store(layout, sink.session(owner, key)), None, redact_url(dest)
    from ..sinks.sqlite import SQLiteSession
    from ..workspace import open_workspace

    ws = open_workspace(dest, None, work_dir, storage_options)
    if ws.staged_root(layout.pipeline.name).exists():
        # `logroll run` into the same folder writes the same files from its own catalog.
        raise UsageError(
            f"--dest {ws.dest.url} is where `logroll run {layout.pipeline.name}` writes (its catalog and "
            "staged files): a stream there would overwrite the run's outputs; give the stream another --dest"
        )
    db = SQLiteSession(ws.work_dir / "stream" / f"{layout.pipeline.name}.sqlite", owner)
    return Store(layout, db), (ws.dest, ws.work_dir), ws.dest.url


class _Signals:
    """SIGINT/SIGTERM set `stopped` and wake the select() of the source through a pipe."""

    def __init__(self, stopped: threading.Event) -> None:
        self.stopped = stopped
        self.wake_fd: int | None = None
        self._saved: list[Any] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if not proc.in_main_thread():
            yield  # signals reach the main thread only; the caller stops us another way
            return
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self.wake_fd = r
        old_fd = signal.set_wakeup_fd(w)
        try:
            with proc.handling(self._handle):
                yield
        finally:
            signal.set_wakeup_fd(old_fd)
            os.close(r)
            os.close(w)
            self.wake_fd = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.stopped.set()

    def drain(self) -> None:
        if self.wake_fd is not None:
            with contextlib.suppress(BlockingIOError):
                os.read(self.wake_fd, 4096)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def run_stream(
    pipeline: str | Pipeline = "weblogs",
    *,
    dest: str,
    follow: str | None = None,
    batch_size: int = 100,
    max_delay: float = 1.0,
    stop_at_eof: bool = False,
    output_format: str | None = None,
    publish_interval: float = 5.0,
    work_dir: str | None = None,
    storage_options: dict[str, Any] | None = None,
    stdin_fd: int = 0,
    progress: ProgressLine | None = None,
    stop: threading.Event | None = None,
) -> StreamReport:
    """Stream `follow` (a file, resumed from its checkpoint) or standard input into `dest`.

    `dest` is a folder (or bucket: files per event day, as `logroll run` writes them, refreshed
    every `publish_interval` seconds and at the end), `duckdb:///file.duckdb` or
    `postgresql://...` (tables, current at every commit). Returns when the input ends (stdin
    closed, or the end of the file with `stop_at_eof`), or on SIGINT/SIGTERM or `stop`.
    """
    started = time.monotonic()
    if batch_size < 1:
        raise UsageError("--batch-size must be 1 or more")
    if max_delay <= 0:
        raise UsageError("--max-delay must be more than 0 seconds")
    pipe = pipeline if isinstance(pipeline, Pipeline) else get_pipeline(pipeline)
    spec = stream_spec(pipe)
    pipe = pipe.with_format(output_format)
    layout = Layout(pipe, spec)
    store, folder, dest_name = open_store(layout, dest, work_dir, storage_options)
    stager = StreamStager(layout, spill_dir=folder[1] / "spill" if folder is not None else None)
    exporter = None
    if folder is not None:
        from .export import FolderExporter

        exporter = FolderExporter(folder[0], folder[1], pipe, spec, stager.con)
    stopped = stop or threading.Event()
    try:
        run = _StreamRun(
            pipe,
            store,
            stager,
            exporter,
            dest_name=dest_name,
            follow=follow,
            stop_at_eof=stop_at_eof,
            stdin_fd=stdin_fd,
            progress=progress,
        )
        run.loop(batch_size, max_delay, publish_interval, stopped)
        return run.finish(started)
    finally:
        stager.close()
        store.close()


class _StreamRun:
    """One stream: its source, checkpoint, pending lines and report, and the commits it makes."""

    def __init__(
        self,
        pipe: Pipeline,
        store: Store,
        stager: StreamStager,
        exporter: Any,
        *,
        dest_name: str,
        follow: str | None,
        stop_at_eof: bool,
        stdin_fd: int,
        progress: ProgressLine | None,
    ):
        self.pipe, self.store, self.stager, self.exporter = pipe, store, stager, exporter
        self.source_name = os.path.abspath(follow) if follow else "-"
        self.key = f"stream:{pipe.name}:{self.source_name}"
        state = self.state = store.get_state(self.key) or {}
        self.source: Any
        if follow:
            self.source = follow_source(follow, state, stop_at_eof, pipe.compression)
            if not self.source.resumed or self.source.start_offset == 0:
                state["offset"], state["line"] = 0, 0
        else:
            self.source = StdinSource(stdin_fd)
        state["source"] = self.source_name
        self.report = StreamReport(pipe.name, dest_name, self.source_name)
        self.lines = LineBuffer(int(state.get("line", 0)) + 1, int(state.get("offset", 0)), DEFAULT_LIMITS)
        self.prog = StreamProgress(progress, pipe.name)
        if exporter is not None and store.dirty_days():
            exporter.export(store)  # what a killed run committed but did not write out

    def commit(self, batches: list[Batch]) -> None:
        """Stage the batches' lines together, then commit each batch with its checkpoint."""
        t0 = time.monotonic()
        try:
            self._commit(batches)
        finally:
            self.report.busy_seconds += time.monotonic() - t0

    def _commit(self, batches: list[Batch]) -> None:
        state, report = self.state, self.report
        for group in _groups(batches):
            raw = [ln for b in group for ln in b.lines]
            early = {n: reason for b in group for n, reason in b.early.items()}
            table = jsonl.lines_table(pa.array(raw, pa.large_binary()), group[0].first_line, early)
            bounds = [(b.first_line, b.last_line) for b in group]
            staged = self.stager.stage(table, bounds, self.source_name)
            faults.point("stream.staged")
            for b, s in zip(group, staged, strict=True):
                state["read"] = state.get("read", 0) + s.read
                state["valid"] = state.get("valid", 0) + s.valid
                state["rejected"] = state.get("rejected", 0) + (s.read - s.valid)
                state["offset"] = b.end_offset
                state["line"] = b.last_line
                state.update(self.source.identity())
                state["batches"] = state.get("batches", 0) + 1
                res = self.store.commit_batch(
                    s.winners,
                    s.rejects,
                    self.key,
                    state,
                    state["batches"],
                    before_commit=lambda: faults.point("stream.before_commit"),
                )
                faults.point("stream.committed")
                report.batches += 1
                report.rows_read += s.read
                report.rows_valid += s.valid
                report.rows_rejected += s.read - s.valid
                report.rows_unique += res.unique_added
                report.duplicates += s.valid - res.unique_added

    def loop(
        self,
        batch_size: int,
        max_delay: float,
        publish_interval: float,
        stopped: threading.Event,
    ) -> None:
        """Read, cut and commit micro-batches until the input ends or a stop is asked for."""
        lines, source, exporter = self.lines, self.source, self.exporter
        prog = self.prog
        signals = _Signals(stopped)
        last_export = time.monotonic()
        interval = publish_interval
        with signals.installed():
            eof = False
            while True:
                timeout = 0.25
                if lines.pending_since is not None:
                    timeout = min(timeout, max(lines.pending_since + max_delay - time.monotonic(), 0))
                try:
                    data = source.read(timeout, signals.wake_fd)
                except Rotated:
                    self.commit(lines.cut(batch_size, everything=True))
                    lines.reset()
                    self.state["offset"], self.state["line"] = 0, 0
                    continue
                signals.drain()
                if data is None:
                    eof = True
                    lines.feed(b"", final=True, cut_short=source.failure is not None)
                elif data:
                    lines.feed(data)
                due = lines.pending_since is not None and time.monotonic() - lines.pending_since >= max_delay
                # One reading of the stop flag per pass: a signal landing after the cut (say while
                # the progress line is drawn) must not end the loop with read lines uncommitted;
                # it is seen on the next pass, whose select() the wake-up pipe ends at once.
                stopping = stopped.is_set()
                ready = lines.cut(batch_size, everything=eof or due or stopping)
                if ready:
                    self.commit(ready)
                prog.tick(self.report, _lag(source, lines))
                if exporter is not None and time.monotonic() - last_export >= interval:
                    t0 = time.monotonic()
                    exporter.export(self.store)
                    last_export = time.monotonic()
                    self.report.busy_seconds += last_export - t0
                    # Rewriting big days takes time: keep it under a fifth of the stream's.
                    interval = max(publish_interval, 5 * (last_export - t0))
                if eof or stopping:
                    self.report.stopped_by = "signal" if stopping else "end of input"
                    break

    def finish(self, started: float) -> StreamReport:
        report, exporter = self.report, self.exporter
        if exporter is not None:
            t0 = time.monotonic()
            exporter.export(self.store)
            report.busy_seconds += time.monotonic() - t0
            report.outputs_written = exporter.written
            report.quarantine = exporter.quarantine
        self.prog.tick(report, _lag(self.source, self.lines), force=True)
        self.prog.end()
        report.checkpoint = {k: v for k, v in self.state.items() if k != "source"}
        report.seconds = round(time.monotonic() - started, 3)
        report.busy_seconds = round(report.busy_seconds, 3)
        if self.source.failure:
            report.status = "failed"
            report.error = (
                f"{self.source_name}: {self.source.failure}; the lines before it are committed "
                "(the incomplete last one quarantined)"
            )
            log.error("stream %s: %s", self.pipe.name, report.error)
        self.source.close()
        log.info(
            "stream %s: %s micro-batches, %s read, %s rejected",
            self.pipe.name,
            f"{report.batches:,}",
            f"{report.rows_read:,}",
            f"{report.rows_rejected:,}",
        )
        return report


def _groups(batches: list[Batch]) -> Iterator[list[Batch]]:
    group: list[Batch] = []
    n = 0
    for b in batches:
        if group and n + len(b.lines) > MAX_STAGE_LINES:
            yield group
            group, n = [], 0
        group.append(b)
        n += len(b.lines)
    if group:
        yield group


def _lag(source: Any, lines: LineBuffer) -> str:
    behind = source.lag_bytes(lines.offset)
    if behind is not None:
        return _human_bytes(behind)
    if lines.pending_since is None:
        return "0.0 s"
    return f"{time.monotonic() - lines.pending_since:.1f} s"


__all__ = ["StreamReport", "run_stream", "stream_spec"]
