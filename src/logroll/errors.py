"""Exceptions the library raises; the CLI turns each into one line and an exit code.

Every message says what went wrong *and* what to do next, because it is the only thing a
user sees (no traceback for user errors). Every class names the step it belongs to (`step`):
usage and config are checked before any data is touched; discover, stage, build and publish
are the batch flow; storage, catalog and load are the stores around it; ingest, stream and
schedule are the other ways to run.
"""

from __future__ import annotations


class LogrollError(Exception):
    """Base class. `exit_code` is what the CLI exits with; `step` is where it happened."""

    exit_code = 1
    step = "run"


def first_line(exc: BaseException) -> str:
    """The first line of an error's message, or its class name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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


class LockedError(LogrollError):
    """Another run holds the lock for this pipeline and state."""

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


class FileRejected(LogrollError):
    """The whole file cannot be used (e.g. its header lacks a required column)."""

    step = "stage"


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
