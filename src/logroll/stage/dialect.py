"""The reading layer's settings (Dialect, Limits) and results (Prepared, Verdict, EarlyReject).

Vocabulary used throughout stage/: a *physical line* ends at LF, CRLF or CR (or the end of the
file); a *physical record* is one line, or several when a well-formed quoted field holds line
breaks. Line numbers are physical line numbers of the decompressed, decoded source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FileRejected

CHUNK = 1 << 20  # bytes per read; lines within one chunk are shorter than any line limit


@dataclass(frozen=True)
class Dialect:
    delimiter: str = ","
    quote: str | None = '"'  # None: no quoting at all
    escape: str | None = None  # None: same as quote (RFC 4180 "" escapes)
    header: bool = True  # False: columns come from `columns` (declared order)
    skip_rows: int = 0  # physical lines before the header (or before the data when no header)
    encoding: str = "utf-8"  # any Python codec; a BOM picks UTF-8/UTF-16 over the default
    comment: str | None = None  # lines starting with it are skipped (and counted)
    compression: str | None = None  # None: by suffix; "none", "gzip", "zstd", "bz2", "xz"

    @property
    def esc(self) -> str | None:
        return self.quote if self.escape is None else self.escape


@dataclass(frozen=True)
class Limits:
    max_line_bytes: int = 4 << 20  # a longer physical line is one quarantined record
    max_quoted_bytes: int = 1 << 20  # a quoted field growing past this ...
    max_quoted_lines: int = 1000  # ... or over this many lines: its opening line is quarantined
    max_header_bytes: int = 64 << 20  # a header record longer than this rejects the file
    excerpt_bytes: int = 10_000  # raw text kept in a quarantine entry
    duckdb_max_line_size: int = 8 << 20  # what read_csv_sql passes (> every record we let through)
    chunk_bytes: int = CHUNK  # read size (the tests use tiny ones to hit every chunk boundary)

    def __post_init__(self) -> None:
        # the scanner assumes lines within one chunk are short; DuckDB must take every record
        # this layer lets through
        if self.max_line_bytes < self.chunk_bytes:
            raise ValueError("max_line_bytes must be at least chunk_bytes")
        if self.max_line_bytes + 2 * self.max_quoted_bytes >= self.duckdb_max_line_size:
            raise ValueError("max_line_bytes + 2 * max_quoted_bytes must stay under duckdb_max_line_size")

    def too_long(self, length: int) -> str:
        """The quarantine's reason for a line of `length` bytes over max_line_bytes."""
        return f"line too long ({length} bytes > {self.max_line_bytes})"


PLAIN = Dialect()  # comma, double quotes, a header, UTF-8, compression by suffix
DEFAULT_LIMITS = Limits()


@dataclass
class EarlyReject:
    line: int  # physical line (1-based) where the record starts
    reason: str
    raw: str  # excerpt, at most Limits.excerpt_bytes (decoded with backslash escapes)
    offset: int  # byte offset of the line in the (decompressed, UTF-8) stream
    length: int  # bytes of the record (the opening line only, for a runaway quote)


class FileUnusable(FileRejected):
    """The file cannot be used as a whole (a header that cannot be read, ...)."""


class NotFast(Exception):
    """The fast path cannot be taken; the message says why (the sanitizer reads the file)."""


@dataclass
class Prepared:
    source: Path
    path_for_duckdb: Path
    spooled: bool  # True: path_for_duckdb is a normalized copy (read with header=false)
    route: list[str]  # why the file was spooled (empty on the fast path)
    dialect: Dialect
    header: list[str]
    ncols: int
    lines: int  # physical lines
    records: int  # physical records, all kinds (the independent count)
    header_records: int  # 0 or 1
    skipped: int  # skip_rows lines + comment records
    blank: int
    early_rejects: list[EarlyReject]
    expected_duckdb: int  # records DuckDB must return as a row or a reject
    delims_outside_quotes: int | None  # fast path: for the strict field-count check
    header_delims: int = 0
    # physical line correction for records spanning lines: record number (DuckDB's `line`) of
    # every line break inside a quoted field, sorted (see physical_line)
    multiline_at: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    own_lines: set[int] = field(default_factory=set)  # spool lines DuckDB must reject (1-col files)
    failure: str | None = None  # e.g. truncated archive: the counts cover what was read before it
    spool_files: list[Path] = field(default_factory=list)

    def physical_line(self, duckdb_line: int) -> int:
        """DuckDB's reject `line` counts records (blank lines included, a multi-line record as one)
        in the file it read; the physical line is that plus the line breaks inside earlier records."""
        return int(duckdb_line + np.searchsorted(self.multiline_at, duckdb_line, side="left"))

    @classmethod
    def empty(cls, path: Path, dialect: Dialect) -> Prepared:
        """A file with no byte of content."""
        return cls(path, path, False, [], dialect, [], 0, 0, 0, 0, 0, 0, [], 0, 0)

    def cleanup(self) -> None:
        for p in self.spool_files:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


@dataclass
class Verdict:
    ok: bool
    problems: list[str]
    rejects: list[tuple[int, str]]  # (physical line, raw) of DuckDB's structural rejects
