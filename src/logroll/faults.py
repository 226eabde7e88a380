"""Fault injection for crash tests: die with SIGKILL at a named point in the flow.

    LOGROLL_FAULT_AT=stage.committed:3   # killed the 3rd time a file's staging commits
    LOGROLL_FAULT_AT=any:17              # killed at the 17th named point reached, whatever it is
    LOGROLL_FAULT_TRACE=/tmp/points.txt  # append every point reached, one name a line

The tests enumerate the points of a clean run with the trace, then kill real processes at
each of them. SIGKILL (not an exception) so that no `finally`, no `except` and no atexit
handler runs: exactly what an OOM kill or a pulled plug does. With neither variable set,
`point()` is one global lookup and a return.
"""

from __future__ import annotations

import os
import signal
import threading

_AT = os.environ.get("LOGROLL_FAULT_AT") or None
_TRACE = os.environ.get("LOGROLL_FAULT_TRACE") or None
ENABLED = bool(_AT or _TRACE)

_target: tuple[str, int] | None = None
if _AT:
    _name, _, _n = _AT.rpartition(":") if ":" in _AT else (_AT, "", "1")
    _target = (_name, int(_n) if _n.isdigit() else 1)
_hits: dict[str, int] = {}
_lock = threading.Lock()  # files and days are staged and built by several threads


def point(name: str) -> None:
    """A place where a crash must be survivable. Kills the process when LOGROLL_FAULT_AT says so."""
    if not ENABLED:
        return
    _hit(name)


def _hit(name: str) -> None:
    with _lock:
        if _TRACE:
            with open(_TRACE, "a", encoding="utf-8") as fh:
                fh.write(name + "\n")
        if _target is None:
            return
        want, nth = _target
        for key in (name, "any"):
            _hits[key] = _hits.get(key, 0) + 1
        if (want == name or want == "any") and _hits[want] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
