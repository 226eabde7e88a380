"""The reading layer: turn an arbitrary CSV file into records DuckDB reads exactly, and count them
independently of DuckDB.

    prep = prepare(path, Dialect(...), Limits(), spool_dir, columns)
    sql = read_csv_sql(prep, rejects_table=..., rejects_scan=...)   # the staging runs it
    verdict = verify(prep, rows, rejects)                            # rows + rejects vs the count
    lines = row_lines(prep, reject_lines)                            # row ordinal -> physical line

Fast path: a plain UTF-8 file (LF or pure CRLF, well-placed quotes, within the limits) is read
by DuckDB as it is, after a numpy scan. Slow path: a streaming sanitizer (sanitize.py) writes a
UTF-8/LF spool. A compressed file is first decompressed as a stream into a spool.

Invariant (checked by verify): every physical record of the file is exactly one of
    header | skipped (skip_rows, comment) | blank | early reject (found here) |
    DuckDB row | DuckDB reject
and   records == header + skipped + blank + early_rejects + rows + duckdb_rejects,
where records, skipped, blank and the early rejects come from this layer's own scan, never
from DuckDB. A blank record has zero bytes (in a 1-column file an empty line is an empty value,
as DuckDB reads it).
"""

from __future__ import annotations

import codecs
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from ..quote import literal, path_literal
from .decode import compression_of, decompressed_chunks, utf8_chunks
from .dialect import (
    DEFAULT_LIMITS,
    PLAIN,
    Dialect,
    EarlyReject,
    FileUnusable,
    Limits,
    NotFast,
    Prepared,
    Verdict,
)
from .grammar import Grammar, header_problems
from .reader_jsonl import PreparedJson, prepare_jsonl
from .sanitize import Sanitizer
from .scan import break_records, read_header_plain, scan_plain

__all__ = [
    "Dialect", "EarlyReject", "FileUnusable", "Limits", "Prepared", "PreparedJson", "Verdict",
    "dialect_options", "header_problems", "prepare", "prepare_jsonl", "read_csv_sql", "row_lines", "verify",
]  # fmt: skip

# Bytes a header name may be stripped of (Python's str.strip set, as UTF-8): names are stripped
# only when one of them occurs, which keeps a wide header's parse linear and cheap.
_SPACE = re.compile(rb"[\s\x1c-\x1f\x85\xa0]|\xe2\x80|\xe3\x80\x80|\xe1\x9a\x80|\xe2\x81\x9f")


def prepare(
    path: Path | str,
    dialect: Dialect = PLAIN,
    limits: Limits = DEFAULT_LIMITS,
    spool_dir: Path | str | None = None,
    columns: list[str] | None = None,
    force_sanitize: bool = False,
) -> Prepared:
    """Decide how DuckDB reads `path` and count its records independently. `columns`: the declared
    column names (required when dialect.header is False).

    Fast path: a plain UTF-8 file (LF or pure CRLF, well-placed quotes, within the limits) is
    read by DuckDB as it is, after a numpy scan. A compressed one is first decompressed as a
    stream into a spool and then treated the same. Anything else goes through the sanitizer."""
    path = Path(path)
    if not dialect.header and not columns:
        raise ValueError("header=false needs the declared columns")
    spool_dir = Path(spool_dir or tempfile.gettempdir())
    kind = compression_of(path, dialect)
    enc = codecs.lookup(dialect.encoding).name
    route: list[str] = []
    if force_sanitize:
        route.append("forced")
    if enc not in ("utf-8", "utf-8-sig"):
        route.append(f"encoding {dialect.encoding}")
    if dialect.skip_rows:
        route.append("skip_rows")
    if dialect.comment:
        route.append("comment")
    if not dialect.header:
        route.append("no header")  # the fast path assumes the header on line 1
    if route:
        return _sanitize(path, dialect, limits, spool_dir, columns, kind, route)
    plain, extra = path, []
    if kind != "none":
        plain, failure = _decompress_to_spool(path, kind, limits, spool_dir)
        extra = [plain]
        if failure:  # count what came before the damage, line by line
            os.unlink(plain)
            return _sanitize(path, dialect, limits, spool_dir, columns, kind, [failure])
    try:
        p = _fast(path, plain, dialect, limits)
        p.spool_files = extra
        return p
    except NotFast as r:
        route.append(str(r))
    p = _sanitize(plain, dialect, limits, spool_dir, columns, "none", route)
    p.source = path
    for f in extra:
        os.unlink(f)
    return p


def _decompress_to_spool(path: Path, kind: str, limits: Limits, spool_dir: Path) -> tuple[Path, str | None]:
    fd, spool = tempfile.mkstemp(prefix="logroll-raw-", suffix=".csv", dir=spool_dir)
    failure: list[str] = []
    with os.fdopen(fd, "wb") as out:
        for b in decompressed_chunks(path, kind, failure, chunk=limits.chunk_bytes):
            out.write(b)
    return Path(spool), (failure[0] if failure else None)


def _fast(source: Path, path: Path, dialect: Dialect, limits: Limits) -> Prepared:
    """The fast path's Prepared for a plain file, or NotFast."""
    g = Grammar(dialect)
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        raise NotFast("UTF-16 byte order mark")
    h = read_header_plain(path, g, limits)
    if h is None:
        return Prepared.empty(path, dialect)
    rec, data_start, hlines, crlf = h
    try:
        header = g.split(rec)
    except FileUnusable as e:
        raise NotFast(str(e)) from None
    if _SPACE.search(rec):  # strip names only when some byte could be stripped
        header = [x.strip() for x in header]
    ncols = len(header)
    s = scan_plain(path, dialect, limits, ncols, data_start, hlines + 1, crlf)
    if s["delims"] is not None and s["delims"] != (ncols - 1) * (s["records"] - s["blank"]):
        # some line has another width than the header: DuckDB rejects most such lines but
        # silently accepts empty fields too many, so the sanitizer decides (no double read)
        raise NotFast("a line with a field count other than the header's")
    # the header's own line breaks (a quoted multi-line header) shift DuckDB's numbering too
    ml = break_records(np.concatenate([np.arange(1, hlines, dtype=np.int64), s["multiline_phys"]]))
    return Prepared(
        source=source,
        path_for_duckdb=path,
        spooled=False,
        route=[],
        dialect=dialect,
        header=header,
        ncols=ncols,
        lines=s["lines"],
        records=s["records"] + 1,
        header_records=1,
        skipped=0,
        blank=s["blank"],
        early_rejects=[],
        expected_duckdb=s["records"] - s["blank"],
        delims_outside_quotes=s["delims"],
        header_delims=0,
        multiline_at=ml,
    )


def _sanitize(
    path: Path,
    dialect: Dialect,
    limits: Limits,
    spool_dir: Path,
    columns: list[str] | None,
    kind: str,
    route: list[str],
) -> Prepared:
    fd, spool = tempfile.mkstemp(prefix="logroll-spool-", suffix=".csv", dir=spool_dir)
    failure: list[str] = []
    with os.fdopen(fd, "wb", buffering=1 << 20) as out:
        s = Sanitizer(dialect, limits, columns, out)
        s.failure = failure
        try:
            s.run(
                utf8_chunks(
                    decompressed_chunks(path, kind, failure, chunk=limits.chunk_bytes), dialect.encoding
                )
            )
        except FileUnusable:
            os.unlink(spool)
            raise
    if s.header is None:  # nothing but skipped/blank lines
        s.header = []
    return Prepared(
        source=path,
        path_for_duckdb=Path(spool),
        spooled=True,
        route=route,
        dialect=dialect,
        header=s.header,
        ncols=s.ncols,
        lines=s.lines,
        records=s.records,
        header_records=s.header_records,
        skipped=s.skipped,
        blank=s.blank,
        early_rejects=s.early,
        expected_duckdb=s.kept,
        delims_outside_quotes=None,
        header_delims=s.header_delims,
        multiline_at=break_records(np.asarray(s.multiline_phys, np.int64)),
        own_lines=s.own_lines,
        failure=failure[0] if failure else None,
        spool_files=[Path(spool)],
    )


# ---------------------------------------------------------------------------------------------
def dialect_options(prep: Prepared) -> list[str]:
    """read_csv's options for the file `prep` hands DuckDB: a header line unless it is the spool
    (which has none), the dialect's delimiter, quote and escape, UTF-8 and uncompressed (this
    layer decoded it)."""
    d = prep.dialect
    quote = d.quote if d.quote else ""
    esc = (d.esc or "") if d.quote else ""
    return [
        f"header={'false' if prep.spooled else 'true'}",
        f"delim={literal(d.delimiter)}",
        f"quote={literal(quote)}",
        f"escape={literal(esc)}",
        "encoding='utf-8'",
        "compression='none'",
    ]


def read_csv_sql(
    prep: Prepared,
    column_names: list[str] | None = None,
    rejects_table: str | None = None,
    rejects_scan: str | None = None,
    extra: str = "",
) -> str:
    """The read_csv(...) call for DuckDB: every column VARCHAR, strict, no sniffing."""
    cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(prep.ncols)) + "}"
    opts = [
        *dialect_options(prep),
        "auto_detect=false",
        f"columns={cols}",
        "strict_mode=true",
        f"max_line_size={Limits().duckdb_max_line_size}",
        "buffer_size=16777216",
    ]
    if rejects_table:
        opts.append(f"store_rejects=true, rejects_table='{rejects_table}', rejects_scan='{rejects_scan}'")
    return f"read_csv({path_literal(prep.path_for_duckdb)}, {', '.join(opts)}{extra})"


def count_delims_outside(raw: str, d: Dialect) -> int:
    n, _ = Grammar(d).fields(raw.strip("\r\n").encode("utf-8", "surrogatepass"))
    return n - 1


def verify(prep: Prepared, rows: int, rejects: list[tuple[int, str]]) -> Verdict:
    """rows: rows DuckDB returned; rejects: DuckDB's structural rejects, one per `line` (with its
    csv_line). Checks rows + rejects against the independent count, and on the fast path that no
    accepted row has a field too many."""
    problems = []
    mapped = []
    for line, raw in rejects:
        p = prep.physical_line(int(line))
        if p in prep.own_lines:
            continue
        mapped.append((p, raw))
    got = rows + len(mapped)
    if got != prep.expected_duckdb:
        problems.append(
            f"accounting: the file has {prep.expected_duckdb} data records by an independent count, "
            f"DuckDB read {rows} rows + {len(mapped)} rejects = {got}"
        )
    if prep.delims_outside_quotes is not None and not problems:
        rej = sum(count_delims_outside(raw, prep.dialect) for _, raw in mapped)
        want = (prep.ncols - 1) * rows + rej  # the scan counted data records only
        if prep.delims_outside_quotes != want:
            problems.append(
                f"field counts: {prep.delims_outside_quotes} delimiters outside quotes, "
                f"{want} expected for {rows} rows of {prep.ncols} fields: some accepted row has "
                "a field too many (an empty one)"
            )
    total = prep.header_records + prep.skipped + prep.blank + len(prep.early_rejects) + prep.expected_duckdb
    if total != prep.records:
        problems.append(f"internal: {prep.records} records != {total} by kind")
    return Verdict(not problems, problems, sorted(mapped))


def row_lines(prep: Prepared, reject_lines: list[int], limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """The physical line where each row DuckDB returned starts, in DuckDB's row order (to
    quarantine rows that fail the pipeline's own checks: ordinal k -> row_lines[k - 1]).
    reject_lines: physical lines of DuckDB's structural rejects (Verdict.rejects). Rows start on
    the lines of the file DuckDB read that are not empty (a 1-column file: all), not inside a
    multi-line record (known from the scan or the sanitizer), not the header, not removed by
    the sanitizer and not rejected. One numpy pass; run only when some row needs its line."""
    size = limits.chunk_bytes
    nonempty: list[np.ndarray] = []
    line = 1
    cur = 0  # bytes of the current line so far
    with open(prep.path_for_duckdb, "rb", buffering=0) as fh:
        buf = bytearray(size)
        a = np.frombuffer(buf, np.uint8)
        if fh.read(3) != codecs.BOM_UTF8:
            fh.seek(0)
        while True:
            k = fh.readinto(buf)
            if not k:
                break
            v = a[:k]
            lf = np.flatnonzero(v == 10)
            if len(lf):
                ln = np.diff(lf, prepend=-1) - 1
                ln[0] += cur
                crlf_only = (ln == 1) & (v[np.maximum(lf - 1, 0)] == 13)
                ok = (ln > 0) & ~crlf_only if prep.ncols != 1 else np.ones(len(lf), bool)
                nonempty.append(line + np.flatnonzero(ok))
                line += len(lf)
                cur = k - 1 - int(lf[-1])
            else:
                cur += k
    if cur > 0:
        nonempty.append(np.array([line], np.int64))
    lines = np.concatenate(nonempty) if nonempty else np.zeros(0, np.int64)
    cont = prep.multiline_at + np.arange(len(prep.multiline_at)) + 1  # lines after an inside break
    drop = set(reject_lines) | set(prep.own_lines)
    if not prep.spooled:
        drop.add(1)  # the header (its own continuation lines are in cont)
    drop = np.fromiter(drop, np.int64, len(drop))
    return lines[~np.isin(lines, cont) & ~np.isin(lines, drop)]


def record_texts(prep: Prepared, lines: list[int], limits: Limits = DEFAULT_LIMITS) -> dict[int, str]:
    """The text of the records starting on physical `lines` (a multi-line record with its
    continuation lines, joined by LF), each at most limits.excerpt_bytes, from the file DuckDB
    read. One pass that only counts line breaks (numpy) until a wanted line, then a read there."""
    wanted = sorted(set(lines))
    if not wanted:
        return {}
    cont = set((prep.multiline_at + np.arange(len(prep.multiline_at)) + 1).tolist())
    starts = _line_starts(prep.path_for_duckdb, wanted, limits.chunk_bytes)
    out: dict[int, str] = {}
    with open(prep.path_for_duckdb, "rb") as fh:
        for line, offset in starts.items():
            fh.seek(offset)
            parts: list[bytes] = []
            size, n = 0, line
            while size < limits.excerpt_bytes:
                text = fh.readline(limits.excerpt_bytes - size + 2)
                if not text:
                    break
                parts.append(text.rstrip(b"\r\n"))
                size += len(text)
                n += 1
                if n not in cont or not text.endswith(b"\n"):
                    break
            raw = b"\n".join(parts)[: limits.excerpt_bytes]
            out[line] = raw.decode("utf-8", "backslashreplace")
    return out


def _line_starts(path: Path, wanted: list[int], chunk: int) -> dict[int, int]:
    """Byte offset where each of the (sorted) physical `wanted` lines starts (LF-ended lines;
    a UTF-8 BOM is skipped)."""
    found: dict[int, int] = {}
    pending = np.asarray(wanted, np.int64)
    line, base = 1, 0
    with open(path, "rb", buffering=0) as fh:
        if fh.read(3) == codecs.BOM_UTF8:
            base = 3
        else:
            fh.seek(0)
        if pending[0] == 1:
            found[1] = base
            pending = pending[1:]
        buf = bytearray(chunk)
        view = np.frombuffer(buf, np.uint8)
        while len(pending):
            k = fh.readinto(buf)
            if not k:
                break
            lf = np.flatnonzero(view[:k] == 10)
            # line (line + j + 1) starts after the j-th LF of this chunk
            hit = pending[pending <= line + len(lf)]
            for w in hit.tolist():
                found[w] = base + int(lf[w - line - 1]) + 1
            pending = pending[len(hit) :]
            line += len(lf)
            base += k
    return found
