"""JSON lines: numbered lines out of a file or a stream, and the SQL that types them.

A file is cut into lines by Arrow in large chunks (no Python loop per line). Each line then
goes through one SQL SELECT that parses it once, reads every declared column by its dotted path
(`user.id` -> `$."user"."id"`), types it like a CSV field, and gives the first reason the line
is unusable: invalid UTF-8, invalid JSON, not a JSON object, a nested object where a value is
expected, then the pipeline's own rules (missing value, bad timestamp, its checks). Blank lines
are not rows: they are skipped, but still counted in the line numbers.
"""

from __future__ import annotations

import codecs
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError
from ..pipelines.base import Column, Pipeline
from . import sql
from .base import JsonInput, StagedJsonl
from .projection import carried_columns

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
    read = _read_columns(pipeline)
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
    nested = [
        f"left(__f{i}, 1) IN ('{{', '[') AND json_type(__text, {sql.literal(p)}) IN ('OBJECT', 'ARRAY')"
        for i, p in enumerate(paths)
    ]
    return _reasoned(pipeline, split, structural, nested)


def fast_select(pipeline: Pipeline, path: Path) -> str | None:
    """checked_select's rows and reasons, read by DuckDB's own JSON reader in one parallel pass:
    read_json with every declared path a JSON leaf (so values print as json_extract_string
    prints them), __ord the row number. Only for files it reads whole: it refuses a whole file
    for one bad line (invalid JSON or UTF-8, a line that is not an object, a repeated key), and
    gives no line text, so the caller checks its row count against the independent one and
    takes checked_select when anything differs. None when the paths cannot be one read_json
    schema (one declared path inside another)."""
    read = _read_columns(pipeline)
    tree: dict[str, Any] = {}
    for c in read:
        node = tree
        *parents, leaf = c.header.split(".")
        json_path(c.header)  # checks the path
        for p in parents:
            node = node.setdefault(p, {})
            if node is None:
                return None
        if leaf in node:
            return None
        node[leaf] = None

    def typ(node: dict[str, Any] | None) -> str:
        if node is None:
            return "JSON"
        return "STRUCT(" + ", ".join(f"{sql.ident(k)} {typ(v)}" for k, v in node.items()) + ")"

    columns = "{" + ", ".join(f"{sql.literal(k)}: {sql.literal(typ(v))}" for k, v in tree.items()) + "}"
    leaves = []
    for c in read:
        first, *rest = c.header.split(".")
        expr = sql.ident(first)
        for p in rest:
            expr = f"struct_extract({expr}, {sql.literal(p)})"
        leaves.append(expr)
    fields = ", ".join(
        f"json_extract_string({e}, '$') AS __f{i}, json_type({e}) IN ('OBJECT', 'ARRAY') AS __n{i}"
        for i, e in enumerate(leaves)
    )
    reader = (
        f"read_json({sql.path_literal(path)}, format='newline_delimited', records=true, "
        f"auto_detect=false, columns={columns})"
    )
    split = (
        "SELECT row_number() OVER () AS line, CAST(NULL AS VARCHAR) AS __bad, "
        f"CAST(NULL AS VARCHAR) AS __text, {fields} FROM {reader}"
    )
    return _reasoned(pipeline, split, [], [f"__n{i}" for i in range(len(read))])


def _read_columns(pipeline: Pipeline) -> list[Column]:
    return [c for c in pipeline.columns if c.sql is None]  # computed columns are not in the JSON


def _reasoned(pipeline: Pipeline, split: str, structural: list[str], nested: list[str]) -> str:
    """The typed columns and the first reason of each line of `split` (line, __bad, __text and
    the text of each read column as __f0...): `structural` reasons first, then a value that is an
    object or array where `nested` says so, a NUL character, then the pipeline's own rules."""
    read = _read_columns(pipeline)
    structural = list(structural)
    for i, c in enumerate(read):
        structural.append(
            f"WHEN {nested[i]} "
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


# ---- staging one file ----------------------------------------------------------------------------
# Rejected rows the fast path finds the lines of afterwards; a file with more is read line by line
# (which keeps every line's text in DuckDB, not in Python).
FAST_REJECTS = 1000


def stage_file(
    con: Any, write_parts: Any, source: JsonInput, pipeline: Pipeline, part_dir: Path, quarantine: Path
) -> StagedJsonl:
    """Stage one JSON-lines file through DuckDB into parts per event day (write_parts: the
    engine's), its rejects and the reading layer's early ones into `quarantine` (CSV:
    source_file, line, reason, raw_line). DuckDB's read_json first; line by line when it cannot
    take the file whole or its rows do not add up to `source.expected`. Counts exclude the early
    rejects (the caller adds them)."""
    reader = "read_json" if _stage_fast(con, source, pipeline) else "lines"
    try:
        if reader == "lines":
            _stage_lines(con, source.path, pipeline)
        read, rejected = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE __reason IS NOT NULL) FROM __jchecked"
        ).fetchone()
        # only what the build reads (the URL steps are not): fewer bytes to write and read back
        parts = write_parts(
            pipeline, "__jchecked WHERE __reason IS NULL", part_dir, carried_columns(pipeline)
        )
        early = source.early.num_rows if source.early is not None else 0
        if rejected or early:
            _write_quarantine(con, source, quarantine)
    finally:
        con.execute("DROP TABLE IF EXISTS __jchecked")
    valid = sum(r for r, _ in parts.values())
    return StagedJsonl(int(read), valid, int(rejected), parts, reader)


def _stage_fast(con: Any, source: JsonInput, pipeline: Pipeline) -> bool:
    """__jchecked from read_json, rejected rows numbered by their physical line with their text;
    False when the file needs the line-by-line reader."""
    select = fast_select(pipeline, source.path)
    if select is None or source.expected == 0:
        return False
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE __jchecked AS {select}")
    except duckdb.Error:  # a line it cannot read: the line-by-line reader says which and why
        return False
    rows, rejected = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE __reason IS NOT NULL) FROM __jchecked"
    ).fetchone()
    if rows != source.expected or rejected > FAST_REJECTS:
        return False
    if not rejected:
        return True
    ordinals = [
        r[0] for r in con.execute("SELECT __ord FROM __jchecked WHERE __reason IS NOT NULL").fetchall()
    ]
    found = nonblank_lines(source.path, ordinals)
    # `null` is the one line read_json takes that is not an object: its row has no value at all,
    # and the line-by-line reader gives the right reason
    if len(found) != len(ordinals) or any(not t.lstrip(" \t").startswith("{") for _, t in found.values()):
        return False
    con.register(
        "__jlines",
        pa.table(
            {
                "ord": pa.array(list(found), pa.int64()),
                "line": pa.array([v[0] for v in found.values()], pa.int64()),
                "raw": pa.array([v[1] for v in found.values()], pa.large_string()),
            }
        ),
    )
    try:
        con.execute("UPDATE __jchecked SET __ord = l.line, __raw = l.raw FROM __jlines l WHERE __ord = l.ord")
    finally:
        con.unregister("__jlines")
    return True


def _stage_lines(con: Any, path: Path, pipeline: Pipeline) -> None:
    """__jchecked line by line: the file cut into lines by Arrow, in chunks, through
    checked_select (the temporary table spills under the engine's memory limit)."""
    select = checked_select(pipeline, "__lines")
    con.register("__lines", LINES_SCHEMA.empty_table())
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE __jchecked AS {select} LIMIT 0")
        for chunk in prefetched(line_chunks(path)):
            con.unregister("__lines")
            con.register("__lines", chunk)
            con.execute(f"INSERT INTO __jchecked {select}")
    finally:
        con.unregister("__lines")


def _write_quarantine(con: Any, source: JsonInput, target: Path) -> None:
    """The rejected rows (their lines mapped to the source's) and the early rejects, in line order,
    written by DuckDB's COPY (the file is renamed into place when complete)."""
    rejects = (
        "SELECT __ord AS line, __reason AS reason, __raw AS raw FROM __jchecked WHERE __reason IS NOT NULL"
    )
    views = []
    if source.line_map is not None:
        m = source.line_map
        con.register("__jmap", pa.table({"at": pa.array(range(1, len(m) + 1), pa.int64()), "line": m}))
        views.append("__jmap")
        rejects = f"SELECT m.line, r.reason, r.raw FROM ({rejects}) r JOIN __jmap m ON m.at = r.line"
    if source.early is not None and source.early.num_rows:
        con.register("__jearly", source.early)
        views.append("__jearly")
        rejects += " UNION ALL SELECT line, reason, raw FROM __jearly"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    try:
        con.execute(
            f"COPY (SELECT {sql.literal(source.source_uri)} AS source_file, line, reason, raw AS raw_line "
            f"FROM ({rejects}) ORDER BY line) TO {sql.literal(str(tmp))} (FORMAT csv, HEADER true)"
        )
    finally:
        for v in views:
            con.unregister(v)
    tmp.replace(target)


def nonblank_lines(path: Path, ordinals: list[int], chunk: int = CHUNK_BYTES) -> dict[int, tuple[int, str]]:
    """The k-th non-blank line of `path` for each k in `ordinals`: {k: (its line number, its text
    without line end or byte order mark)}. Blank: nothing but spaces, tabs and a CR (after a
    byte order mark), as the reading layer counts them. One pass; numpy finds the lines, and
    only those starting with a space, tab, CR or BOM are looked at one by one."""
    wanted = np.asarray(sorted(set(ordinals)), np.int64)
    out: dict[int, tuple[int, str]] = {}
    seen = line = 0  # non-blank lines and lines before this chunk
    carry = b""
    with open(path, "rb") as fh:
        while len(out) < len(wanted):
            data = fh.read(chunk)
            buf = carry + data
            if data:
                cut = buf.rfind(b"\n")
                if cut < 0:
                    carry = buf
                    continue
                body, carry = buf[: cut + 1], buf[cut + 1 :]
            elif buf:
                body, carry = buf + b"\n", b""  # a last line without LF
            else:
                break
            a = np.frombuffer(body, np.uint8)
            ends = np.flatnonzero(a == 10)
            starts = np.concatenate([np.zeros(1, np.int64), ends[:-1] + 1])
            maybe = (ends == starts) | np.isin(a[np.minimum(starts, len(a) - 1)], (32, 9, 13, 0xEF))
            keep = ~maybe
            for i in np.flatnonzero(maybe).tolist():
                text = body[starts[i] : ends[i]]
                keep[i] = bool((text[3:] if text.startswith(codecs.BOM_UTF8) else text).strip(b" \t\r"))
            ords = seen + np.cumsum(keep)
            for i in np.flatnonzero(keep & np.isin(ords, wanted)).tolist():
                text = body[starts[i] : ends[i]]
                text = (text[3:] if text.startswith(codecs.BOM_UTF8) else text).rstrip(b"\r")
                out[int(ords[i])] = (line + i + 1, text.decode("utf-8", "backslashreplace"))
            seen, line = (int(ords[-1]) if len(ords) else seen), line + len(ends)
    return out
