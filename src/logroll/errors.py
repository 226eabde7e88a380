"""Exceptions the library raises; the CLI turns each into one line and an exit code.

Every message says what went wrong *and* what to do next, because it is the only thing a
user sees (no traceback for user errors).
"""

from __future__ import annotations


class LogrollError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(LogrollError):
    """Bad arguments, bad configuration, unknown names: exit 2."""

    exit_code = 2


class ConfigError(UsageError):
    """A logroll.yaml or option that does not validate."""


class SourceNotFound(UsageError):
    """The source folder or bucket does not exist."""


class StorageError(UsageError):
    """Credentials, permissions or endpoint problems talking to a store."""


class NoInputError(LogrollError):
    """A requested day has no input files and nothing staged: exit 1."""


class RunFailed(LogrollError):
    """The run finished but some files or days failed; the report says which."""


class LockedError(LogrollError):
    """Another run holds the lock for this pipeline and state."""


class TransientError(LogrollError):
    """A store kept failing with throttling, 5xx or dropped connections after every retry:
    the file or day fails, and the next run tries it again."""
