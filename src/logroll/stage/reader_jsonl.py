"""The reading layer for JSON lines (and a file holding one JSON array): what a JSON-lines stage
reads is one record per LF-ended line, blank and rejected lines kept as empty lines so line
numbers do not move (array files: a map from spool line to source line).

Invariant: records == blank + early rejects + lines the reader gets that are not blank (each a
row or a reject of the reader).
"""

from __future__ import annotations

import codecs
import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .decode import compression_of, decompressed_chunks, utf8_chunks
from .dialect import DEFAULT_LIMITS, Dialect, EarlyReject, Limits, NotFast
from .lines import LineLimit, LineSource, blocks, excerpt


@dataclass
class PreparedJson:
    """What logroll's JSON-lines stage reads: `path_for_reader` holds one record per LF-ended line
    (the original file when it already is plain JSON lines). line_map, when not None, gives the
    physical line of the source where each line of path_for_reader starts (array files); else
    line numbers are the same. Invariant: records == blank + len(early_rejects) + lines the
    reader sees that are not blank (each a row or a reject of the reader)."""

    source: Path
    path_for_reader: Path
    spooled: bool
    route: list[str]
    lines: int  # physical lines of the source
    records: int  # JSON records (non-blank lines, or array elements)
    blank: int
    early_rejects: list[EarlyReject]
    expected_reader: int  # non-blank lines the reader gets
    line_map: np.ndarray | None = None
    failure: str | None = None
    spool_files: list[Path] = field(default_factory=list)

    def cleanup(self) -> None:
        for p in self.spool_files:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


def prepare_jsonl(
    path: Path | str,
    limits: Limits = DEFAULT_LIMITS,
    spool_dir: Path | str | None = None,
    encoding: str = "utf-8",
    compression: str | None = None,
    force_spool: bool = False,
) -> PreparedJson:
    """Plain JSON lines (UTF-8, LF or CRLF, lines within the limit, no NUL byte) are read as they
    are after a numpy scan; anything else (compressed, CR-only or mixed endings, long lines, NUL,
    another encoding, a JSON array) is normalized into a spool, one record per line, blank and
    rejected lines kept as empty lines so line numbers do not move (array files: line_map)."""
    path = Path(path)
    spool_dir = Path(spool_dir or tempfile.gettempdir())
    kind = compression_of(path, Dialect(compression=compression))
    route = ["forced"] if force_spool else []
    if kind != "none":
        route.append(f"compressed ({kind})")
    if codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig"):
        route.append(f"encoding {encoding}")
    if not route:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
        body = head[3:] if head.startswith(codecs.BOM_UTF8) else head
        if body.lstrip()[:1] == b"[":
            route.append("a JSON array")
        elif head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            route.append("UTF-16 byte order mark")
        else:
            try:
                s = _scan_jsonl(path, limits)
                return PreparedJson(
                    path, path, False, [], s["lines"], s["records"], s["blank"], [], s["records"] - s["blank"]
                )
            except NotFast as r:
                route.append(str(r))
    return _spool_jsonl(path, limits, spool_dir, encoding, kind, route)


def _scan_jsonl(path: Path, limits: Limits) -> dict:
    """Lines and blank lines (empty, or spaces/tabs/CR only) of a plain JSON-lines file; NotFast
    when a line is over the limit, a CR ends a line, a NUL byte or a BOM past the start appears.
    Per chunk: one read, an LF count, and a mask of line starts that could open a blank line
    (only those lines are looked at one by one)."""
    size = limits.chunk_bytes
    buf = bytearray(size)
    a = np.frombuffer(buf, np.uint8)
    lines = blank = 0
    cur = 0  # bytes of the current line so far
    ws_open = True  # the current line is blank so far (at a line start: True)
    at_start = True  # the chunk begins at a line start
    with open(path, "rb", buffering=0) as fh:
        if fh.read(3) != codecs.BOM_UTF8:
            fh.seek(0)
        while True:
            k = fh.readinto(buf)
            if not k:
                break
            if buf.find(b"\0", 0, k) >= 0:
                raise NotFast("NUL byte")
            v = a[:k]
            if buf.find(b"\r", 0, k) >= 0:
                cr = np.flatnonzero(v == 13)
                if cr[-1] == k - 1 or not np.all(v[cr + 1] == 10):
                    raise NotFast("CR line ending (not CRLF)")
            lf = np.flatnonzero(v == 10)
            nlf = len(lf)
            first = int(lf[0]) if nlf else -1
            # the line running in from the previous chunk
            head_end = first if first >= 0 else k
            head = bytes(buf[: min(head_end, 8)]) if at_start else b""
            if at_start and head.startswith(codecs.BOM_UTF8):
                head = head[3:]
            if at_start and head[:1] not in (b"", b" ", b"\t", b"\r", b"\n", b"\xef"):
                ws_open = False  # the usual case: the line starts with content
            elif at_start or ws_open:
                seg = bytes(buf[:head_end])
                seg = seg[3:] if at_start and seg.startswith(codecs.BOM_UTF8) else seg
                ws_open = not seg.strip(b" \t\r")
            if first >= 0:
                if cur + first > limits.max_line_bytes:
                    raise NotFast("line over max_line_bytes")
                blank += 1 if ws_open else 0  # that line ends at `first`
                # lines starting after each LF that could be blank: their first byte is an LF,
                # a space, a tab, a CR or a BOM (logroll's reader drops a BOM opening a line)
                s_all = lf[:-1] + 1
                c = v[s_all]
                maybe = s_all[(c == 10) | (c == 32) | (c == 9) | (c == 13) | (c == 0xEF)]
                last = int(lf[-1])
                for s in maybe.tolist():
                    e = buf.find(b"\n", s, k)
                    seg = bytes(buf[s:e])
                    if not (seg[3:] if seg.startswith(codecs.BOM_UTF8) else seg).strip(b" \t\r"):
                        blank += 1
                cur = k - last - 1
                tail = bytes(buf[last + 1 : min(k, last + 9)])
                if tail[:1] in (b"", b" ", b"\t", b"\r", b"\xef"):
                    seg = bytes(buf[last + 1 : k])
                    ws_open = not (seg[3:] if seg.startswith(codecs.BOM_UTF8) else seg).strip(b" \t\r")
                else:
                    ws_open = False
                lines += nlf
            else:
                cur += k
            at_start = k > 0 and buf[k - 1] == 10
            if cur > limits.max_line_bytes:
                raise NotFast("line over max_line_bytes")
    if cur > 0:  # a last line without LF
        lines += 1
        blank += 1 if ws_open else 0
    return dict(lines=lines, records=lines, blank=blank)


def _spool_jsonl(
    path: Path, limits: Limits, spool_dir: Path, encoding: str, kind: str, route: list[str]
) -> PreparedJson:
    fd, spool = tempfile.mkstemp(prefix="logroll-spool-", suffix=".jsonl", dir=spool_dir)
    failure: list[str] = []
    early: list[EarlyReject] = []
    lines = records = blank = kept = 0
    line_map: list[int] | None = None
    chunks = utf8_chunks(decompressed_chunks(path, kind, failure, chunk=limits.chunk_bytes), encoding)
    first = next(chunks, b"")  # an array is told by its first non-blank byte in the first chunk
    chunks = itertools.chain([first], chunks)
    with os.fdopen(fd, "wb", buffering=1 << 20) as out:
        if first.lstrip()[:1] == b"[":
            lines_before = lines
            line_map, records, early, lines = _split_array(chunks, limits, out, failure, lines_before)
            kept = len(line_map) - len(early)
        else:
            src = LineSource(blocks(chunks, limits, failure, LineLimit(limits.max_line_bytes)))
            while True:
                item = src.next()
                if item is None:
                    break
                text, off, length, flag, no = item
                records += 1
                if flag == 2:
                    early.append(
                        EarlyReject(
                            no,
                            "incomplete last line: the archive ends inside it",
                            excerpt(text, limits),
                            off,
                            length,
                        )
                    )
                    out.write(b"\n")
                elif flag:
                    early.append(
                        EarlyReject(
                            no,
                            limits.too_long(length),
                            excerpt(text, limits),
                            off,
                            length,
                        )
                    )
                    out.write(b"\n")
                elif not (text[3:] if text.startswith(codecs.BOM_UTF8) else text).strip(b" \t"):
                    blank += 1  # (logroll's reader drops a BOM opening any line)
                    out.write(b"\n")
                elif b"\0" in text:
                    # shown escaped, as invalid UTF-8 is: a NUL would end the text in many readers
                    shown = excerpt(text, limits).replace("\0", "\\x00")
                    early.append(EarlyReject(no, "NUL byte", shown, off, length))
                    out.write(b"\n")
                else:
                    kept += 1
                    out.write(text + b"\n")
            lines = src.lines
    return PreparedJson(
        path,
        Path(spool),
        True,
        route,
        lines,
        records,
        blank,
        early,
        kept,
        None if line_map is None else np.asarray(line_map, np.int64),
        failure[0] if failure else None,
        [Path(spool)],
    )


def _split_array(
    chunks: Iterator[bytes], limits: Limits, out: BinaryIO, failure: list[str], lines_before: int
) -> tuple[list[int], int, list[EarlyReject], int]:
    """Elements of a top-level JSON array, one per spool line (raw line breaks between tokens
    become spaces). Returns (line_map, records, early_rejects, physical lines)."""
    split = _ArraySplit(chunks, limits, out, failure, lines_before)
    split.run()
    for _ in split.it:  # the rest of the input, for the physical line count
        pass
    lines = lines_before + split.nl + (0 if split.last in (b"\n", b"\r") else 1)
    return split.line_map, len(split.line_map), split.early, lines


_WS = re.compile(r"[ \t\r\n]*")


def _breaks(text: str, start: int = 0, end: int | None = None) -> int:
    """Physical line ends (LF, CRLF, CR) in text[start:end]."""
    end = len(text) if end is None else end
    return text.count("\n", start, end) + text.count("\r", start, end) - text.count("\r\n", start, end)


class _ArraySplit:
    def __init__(
        self, chunks: Iterator[bytes], limits: Limits, out: BinaryIO, failure: list[str], lines_before: int
    ) -> None:
        self.limits, self.out, self.failure = limits, out, failure
        self.nl, self.last = 0, b"\n"
        self.it = self._counted(chunks)
        self.dec = json.JSONDecoder()
        self.text, self.pos, self.eof = "", 0, False
        self.line = lines_before + 1  # physical line at `pos`
        self.line_map: list[int] = []
        self.early: list[EarlyReject] = []

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for b in chunks:  # physical line ends: LF, CRLF, CR (a CRLF cut between chunks once)
            if not b:
                continue
            self.nl += b.count(b"\n") + b.count(b"\r") - b.count(b"\r\n")
            if self.last == b"\r" and b[:1] == b"\n":
                self.nl -= 1
            self.last = b[-1:]
            yield b

    def _more(self) -> bool:
        b = next(self.it, None)
        if b is None:
            self.eof = True
            return False
        self.text = self.text[self.pos :] + b.decode("utf-8", "surrogateescape")
        self.pos = 0
        return True

    def run(self) -> None:
        started = done = False
        while not done:
            m = _WS.match(self.text, self.pos)
            self.line += _breaks(self.text, self.pos, m.end())
            self.pos = m.end()
            if self.pos >= len(self.text):
                if not self._more():
                    break
                continue
            c = self.text[self.pos]
            if not started:
                if c != "[":
                    self.failure.append("not a JSON array")
                    break
                started = True
                self.pos += 1
            elif c == "]":
                done = True
                self.pos += 1
            elif c == "," and self.line_map:
                self.pos += 1
            elif not self._element():
                break
        if started and not done and not self.failure:
            self.failure.append("array never closes")

    def _element(self) -> bool:
        """Read the element at pos (more input when it is cut); False to stop."""
        text, pos, limits = self.text, self.pos, self.limits
        try:
            _, end = self.dec.raw_decode(text, pos)
            if end == len(text) and not self.eof:  # a number may go on in the next chunk
                raise ValueError
        except ValueError:
            if len(text) - pos > limits.max_line_bytes:
                self.failure.append(f"array element at line {self.line} over {limits.max_line_bytes} bytes")
                return False
            if not self._more():
                self.failure.append(f"array ends inside the element at line {self.line}")
                raw = text[pos : pos + limits.excerpt_bytes]
                self.early.append(EarlyReject(self.line, "incomplete array element", raw, 0, len(text) - pos))
                self.line_map.append(self.line)
                self.out.write(b"\n")
                return False
            return True
        raw = text[pos:end]
        self.line_map.append(self.line)
        flat = raw.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
        self.out.write(flat.encode("utf-8", "surrogateescape") + b"\n")
        self.line += _breaks(raw)
        self.pos = end
        return True
