"""Exceptions the library raises; the CLI turns each into one line and an exit code.

Every message says what went wrong *and* what to do next, because it is the only thing a
user sees (no traceback for user errors). Every class names the step it belongs to (`step`):
usage and config are checked before any data is touched; discover, stage, build and publish
are the batch flow; storage, catalog and load are the stores around it; ingest, stream and
schedule are the other ways to run.
"""

from __future__ import annotations

import unicodedata

from .urls import scrub

# Bidirectional overrides and isolates reorder what a terminal shows ("Trojan Source").
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
EXCERPT_CHARS = 120


class LogrollError(Exception):
    """Base class. `exit_code` is what the CLI exits with; `step` is where it happened."""

    exit_code = 1
    step = "run"


def safe_text(text: object, limit: int | None = None) -> str:
    """`text` fit for one line of a terminal, a log or an error: control characters (terminal
    escapes, newlines, NUL, C1 codes) and bidi overrides shown escaped as \\x1b, \\n, \\u202e; with
    `limit`, at most that many characters of the original, then "...". File names and file
    contents reach messages only through here (or `excerpt`)."""
    s = str(text)
    cut = limit is not None and len(s) > limit
    if cut:
        s = s[:limit]
    if not s.isprintable():
        s = "".join(_escape(ch) for ch in s)
    return s + "..." if cut else s


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    if ch in _BIDI or unicodedata.category(ch) == "Cc":
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return ch


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """A bounded, escaped quote of file content for a message: 'first 120 characters...'."""
    return f"'{safe_text(text, limit)}'"


def first_line(exc: BaseException) -> str:
    """The first line of an error's message, or its class name when it has none; a secret a
    library echoed from a URL it was given (see urls.scrub) is masked."""
    text = str(exc).strip()
    return scrub(text.splitlines()[0]) if text else type(exc).__name__


# ---- before any data is touched -------------------------------------------------------------
class UsageError(LogrollError):
    """Bad arguments, bad configuration, unknown names: exit 2."""

    exit_code = 2
    step = "usage"


class ConfigError(UsageError):
    """A logroll.yaml or option that does not validate."""

    step = "config"


# ---- the stores around the flow ---------------------------------------------------------------
class SourceNotFound(UsageError):
    """The source folder or bucket does not exist."""

    step = "storage"


class StorageError(UsageError):
    """Credentials, permissions or endpoint problems talking to a store."""

    step = "storage"


class TransientError(LogrollError):
    """A store kept failing with throttling, 5xx or dropped connections after every retry:
    the file or day fails, and the next run tries it again."""

    step = "storage"


class WriteConflict(LogrollError):
    """A conditional write lost: the object changed (If-Match) or already exists (If-None-Match)."""

    step = "storage"


class CatalogCorrupt(LogrollError):
    """The state file exists but is not a catalog (damaged, or another program's file): exit 1."""

    step = "catalog"


class LockedError(LogrollError):
    """Another run holds the lock for this pipeline and state."""

    step = "catalog"


class LeaseLost(LockedError):
    """This run's lock or lease was taken over, or another run committed to its state meanwhile:
    the run stops before its next commit."""


class StateNotFound(UsageError):
    """A read-only command found no destination or no state to read."""

    step = "catalog"


class DestinationMismatch(UsageError):
    """A state recorded another destination than the one it is used for."""

    step = "catalog"


class SinkError(LogrollError):
    """A destination could not be written (connection, permissions, lock)."""

    step = "load"


class DataRejected(SinkError):
    """The destination refused a value of the rows (PostgreSQL's data exceptions, SQLSTATE 22:
    an invalid byte, a number out of range...): the same rows fail again, so it is not retried."""


class SchemaMismatch(LogrollError):
    """Rows whose columns or types differ from the destination table's; nothing was written."""

    step = "load"


# ---- the batch flow: discover -> stage -> build -> publish ------------------------------------
class NoInputError(LogrollError):
    """A requested day has no input files and nothing staged: exit 1."""

    step = "discover"


class ListingError(LogrollError):
    """A folder or file of the source could not be listed: the run fails (exit 1) and the days
    it may hold rows for are not published as complete."""

    step = "discover"


class FileRejected(LogrollError):
    """The whole file cannot be used (e.g. its header lacks a required column)."""

    step = "stage"


class StageFailed(LogrollError):
    """A file read but not usable as complete: its records do not add up (the reader and the
    independent count disagree), or its archive is damaged. The file is marked failed with the
    numbers (`counts`), nothing of it is published, and the next run tries it again."""

    step = "stage"

    def __init__(self, message: str, counts: dict[str, int] | None = None):
        super().__init__(message)
        self.counts = counts or {}


class BuildError(LogrollError):
    """A day's outputs cannot be computed from its SQL (the day fails, the others go on)."""

    step = "build"


class RunFailed(LogrollError):
    """The run finished but some files or days failed; the report says which."""


# ---- the other ways to run --------------------------------------------------------------------
class FileMismatch(LogrollError):
    """An ingest file does not fit the destination's fixed schema: it fails permanently."""

    step = "ingest"


class JobLost(LogrollError):
    """An ingest job's lease was taken over by another worker: this one lets go of it."""

    step = "ingest"


class Rotated(LogrollError):
    """The followed stream file was replaced (log rotation): the stream starts on the new one."""

    step = "stream"
