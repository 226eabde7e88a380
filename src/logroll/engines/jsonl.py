"""JSON lines: numbered lines out of a file or a stream, and the SQL that types them.

A file is cut into lines by Arrow in large chunks (no Python loop per line). Each line then
goes through one SQL SELECT that parses it once, reads every declared column by its dotted path
(`user.id` -> `$."user"."id"`), types it like a CSV field, and gives the first reason the line
is unusable: invalid UTF-8, invalid JSON, not a JSON object, a nested object where a value is
expected, then the pipeline's own rules (missing value, bad timestamp, its checks). Blank lines
are not rows: they are skipped, but still counted in the line numbers.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError
from ..pipelines.base import Pipeline
from . import sql

CHUNK_BYTES = 16 << 20
# A line's text, or (not UTF-8) NULL and its bytes shown with backslash escapes in `bad`; `early`:
# a reason found before the SQL (a line over the length limit, kept as an excerpt).
LINES_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("text", pa.large_string()),
        ("bad", pa.large_string()),
        ("early", pa.large_string()),
    ]
)


def json_path(source: str) -> str:
    """`user.id` -> `$."user"."id"`: every key quoted, so keys may hold spaces or dashes."""
    parts = source.split(".")
    if not source or any(not p or '"' in p or "\\" in p for p in parts):
        raise ConfigError(
            f"JSON field {source!r}: use a dotted path of keys (e.g. user.id) without quotes or backslashes"
        )
    return "$." + ".".join(f'"{p}"' for p in parts)


def lines_table(lines: pa.Array, first_line: int, early: dict[int, str] | None = None) -> pa.Table:
    """Raw lines (binary, a final LF or CRLF allowed) as numbered text without blank lines or a
    leading byte order mark; UTF-8 is checked by Arrow for the whole array at once, and line by
    line only when that fails. `early`: line number -> reason found before the SQL."""
    numbers = pa.array(np.arange(first_line, first_line + len(lines), dtype=np.int64))
    try:
        text = lines.cast(pa.large_string())
        bad = pa.nulls(len(lines), pa.large_string())
    except pa.ArrowInvalid:  # some line is not UTF-8: find which (rare, so a loop is fine)
        texts: list[str | None] = []
        bads: list[str | None] = []
        for raw in lines.to_pylist():
            try:
                texts.append(raw.decode("utf-8"))
                bads.append(None)
            except UnicodeDecodeError:
                texts.append(None)
                bads.append(raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace"))
        text, bad = pa.array(texts, pa.large_string()), pa.array(bads, pa.large_string())
    # A byte order mark may open a file, and so any line of files joined by `cat`.
    text = pc.utf8_ltrim(pc.utf8_rtrim(text, "\r\n"), "\ufeff")
    reasons = pa.nulls(len(lines), pa.large_string())
    if early:
        at = [early.get(first_line + i) for i in range(len(lines))]
        reasons = pa.array(at, pa.large_string())
    table = pa.table([numbers, text, bad, reasons], schema=LINES_SCHEMA)
    blank = pc.equal(pc.binary_length(pc.ascii_trim(text, " \t")), 0)
    if early:
        blank = pc.and_(blank, pc.is_null(reasons))
    kept = table.filter(pc.invert(pc.fill_null(blank, False)))
    # DuckDB scans an Arrow table one record batch per thread: several batches, several threads.
    return pa.Table.from_batches(kept.to_batches(max_chunksize=16_384), schema=LINES_SCHEMA)


def split_lines(data: bytes, first_line: int) -> tuple[pa.Table, int]:
    """Numbered lines of `data` (which ends at a line boundary or at the end of the input), and
    how many lines it held (blank ones included)."""
    # Each line (with its LF) is a slice of `data`: the offsets come from numpy, no copy.
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
    if not data.endswith(b"\n") and data:
        ends = np.append(ends, len(data))
    offsets = np.concatenate([np.zeros(1, dtype=np.int64), ends.astype(np.int64)])
    lines = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return lines_table(lines, first_line), len(ends)


def line_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[pa.Table]:
    """The file as tables of LINES_SCHEMA, about `chunk_bytes` at a time, lines numbered from 1."""
    line = 1
    carry = b""
    with open(path, "rb") as fh:
        while True:
            data = fh.read(chunk_bytes)
            if not data:
                break
            buf = carry + data
            cut = buf.rfind(b"\n")
            if cut < 0:  # one line longer than a chunk: keep reading until it ends
                carry = buf
                continue
            carry = buf[cut + 1 :]
            table, n = split_lines(buf[: cut + 1], line)
            line += n
            yield table
    if carry:
        yield split_lines(carry, line)[0]


def prefetched(chunks: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """The chunks, cut by a background thread while the caller's SQL runs on the previous one
    (Arrow and DuckDB both release the GIL)."""
    done = object()
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for c in chunks:
                while not stop.is_set():
                    try:
                        q.put(c, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    t = threading.Thread(target=work, name="logroll-jsonl-lines", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()


def checked_select(pipeline: Pipeline, source: str) -> str:
    """SELECT __ord (the line), the typed declared columns, __reason and __raw (the line's text,
    kept for rejected lines only) from `source` (LINES_SCHEMA, as lines_table makes it)."""
    read = [c for c in pipeline.columns if c.sql is None]  # computed columns are not in the JSON
    paths = [json_path(c.header) for c in read]
    path_list = "[" + ", ".join(sql.literal(p) for p in paths) + "]"
    # One parse per line (json_valid, then all paths at once; no try(): DuckDB runs it row by
    # row), and each field taken out of the list once.
    parsed = (
        f"SELECT line, bad AS __bad, text AS __text, early AS __early, CASE WHEN json_valid(text) THEN "
        f"json_extract_string(text, {path_list}) END AS __v FROM {source}"
    )
    fields = ", ".join(f"__v[{i + 1}] AS __f{i}" for i in range(len(read)))
    split = f"SELECT line, __bad, __text, __early, __v IS NOT NULL AS __json, {fields} FROM ({parsed})"
    structural = [
        "WHEN __early IS NOT NULL THEN __early",
        "WHEN __text IS NULL THEN 'invalid UTF-8'",
        "WHEN NOT __json THEN 'invalid JSON'",
        f"WHEN NOT regexp_matches(__text, '^[ {chr(9)}]*[{{]') THEN 'not a JSON object'",
    ]
    for i, c in enumerate(read):
        structural.append(
            f"WHEN left(__f{i}, 1) IN ('{{', '[') AND json_type(__text, {sql.literal(paths[i])}) "
            f"IN ('OBJECT', 'ARRAY') "
            f"THEN {sql.literal(f'bad {c.name}: expected a value at {c.header}, got a JSON object or array')}"
        )
        # PostgreSQL text cannot hold NUL: such a value would stop a database sink for good.
        structural.append(
            f"WHEN contains(__f{i}, chr(0)) THEN {sql.literal(f'bad {c.name}: contains a NUL character')}"
        )
    shaped = f"SELECT *, CASE {' '.join(structural)} END AS __sreason FROM ({split})"
    raw = {c.name: f"__f{i}" for i, c in enumerate(read)}
    keep = {"__text": "__text", "__bad": "__bad", "__sreason": "__sreason"}
    checked = sql.checked_select(pipeline, raw, f"({shaped})", "line", passthrough=keep)
    cols = ", ".join(sql.ident(c.name) for c in pipeline.columns)
    reasoned = (
        f"SELECT __ord, {cols}, coalesce(__sreason, __reason) AS __reason, __text, __bad FROM ({checked})"
    )
    return (
        f"SELECT __ord, {cols}, __reason, "
        f"CASE WHEN __reason IS NOT NULL THEN coalesce(__text, __bad) END AS __raw FROM ({reasoned})"
    )
