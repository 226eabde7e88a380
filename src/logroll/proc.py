"""Processes on this host: whether one is alive, and signal handlers installed for a while."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

Handler = Callable[[int, Any], None]


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            # "pid (comm) state ...": comm may hold spaces and parentheses, so split at the last ')'.
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def install(handler: Handler, signals: Sequence[int] = STOP_SIGNALS) -> Callable[[], None]:
    """Install `handler` for `signals`; returns a function that restores the previous handlers.
    Signals reach the main thread only: elsewhere nothing is installed and the caller is stopped
    another way."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.signal(sig, handler) for sig in signals}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


@contextlib.contextmanager
def handling(handler: Handler, signals: Sequence[int] = STOP_SIGNALS) -> Iterator[None]:
    """`install` for the duration of a `with` block."""
    restore = install(handler, signals)
    try:
        yield
    finally:
        restore()


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
