"""N engines working at once (`--parallel N`) within one memory limit.

A DuckDB connection is not thread-safe, so every worker thread owns an engine of its own, and
the memory limit and threads are split between them: N workers together stay under the cap the
user gave. DuckDB releases the GIL while it runs a query, so threads are enough here.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

from ..errors import UsageError
from ..units import parse_size, percent
from . import make_engine

T = TypeVar("T")


def split_memory(limit: str, workers: int) -> str:
    """Each of `workers` engines' share of one memory limit."""
    if workers <= 1:
        return limit
    pct = percent(limit)
    if pct is not None:
        return f"{pct / workers:.4g}%"
    share = parse_size(limit) // workers
    if share < 64 * 1024**2:
        raise UsageError(
            f"--memory-limit {limit} split {workers} ways leaves {share // 1024**2}MiB per worker: "
            "raise --memory-limit or lower --parallel"
        )
    return f"{share // 1024**2}MiB"


def default_parallel(engine: str) -> int:
    """Workers when --parallel is not given: one per core for DuckDB, whose workers share one
    database (staging a file keeps about one core busy, so two files at once use two), else one."""
    return (os.cpu_count() or 1) if engine == "duckdb" else 1


class EnginePool:
    """`size` engines, each used by one worker thread at a time."""

    def __init__(
        self,
        engine: str,
        work_dir: Path,
        *,
        memory_limit: str,
        threads: int | None,
        size: int = 1,
        options: dict[str, Any] | None = None,
    ):
        """`options` go to every engine as they are (e.g. the Spark engine's master and conf)."""
        if size < 1:
            raise UsageError("--parallel must be 1 or more")
        # DuckDB workers are cursors on one database: they share its memory limit, threads and
        # spill folder, so nothing is split, and a lone day's build still gets all of them.
        shared = engine == "duckdb"
        if shared and size > 1 and percent(memory_limit) is None:
            # Under about 64 MiB each, workers starve each other of the buffers a CSV read needs
            # and files fail out of memory instead of spilling: fewer workers, then.
            size = max(1, min(size, parse_size(memory_limit) // (64 * 1024**2)))
        self.size = size
        self.memory_limit = memory_limit if shared else split_memory(memory_limit, size)
        total_threads = threads or os.cpu_count() or 1
        self.threads = threads if size == 1 or shared else max(1, total_threads // size)
        self.engines: list[Any] = []
        try:
            for i in range(size):
                if i and shared:
                    self.engines.append(self.engines[0].worker())
                    continue
                # Each worker spills to its own folder: engines must not share temp files.
                wd = Path(work_dir) if i == 0 else Path(work_dir) / "workers" / str(i)
                self.engines.append(
                    make_engine(
                        engine, wd, memory_limit=self.memory_limit, threads=self.threads, **(options or {})
                    )
                )
        except BaseException:
            self.close()
            raise

    def each(self, items: Sequence[T], fn: Callable[[Any, T], None]) -> None:
        """fn(engine, item) for every item, `size` at a time. `fn` handles per-item failures;
        anything it lets through stops the remaining items and is raised here."""
        if self.size == 1 or len(items) <= 1:
            for item in items:
                fn(self.engines[0], item)
            return
        free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for e in self.engines:
            free.put(e)

        def task(item: T) -> None:
            eng = free.get()
            try:
                fn(eng, item)
            finally:
                free.put(eng)

        ex = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="logroll-worker")
        try:
            futures = [ex.submit(task, item) for item in items]
            wait(futures, return_when=FIRST_EXCEPTION)
            for f in futures:
                if f.done() and not f.cancelled() and f.exception() is not None:
                    raise f.exception()  # type: ignore[misc]
        finally:
            # On an error or Ctrl-C: drop the items not started, let the running ones finish.
            ex.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        for e in self.engines:
            e.close()
        self.engines = []
