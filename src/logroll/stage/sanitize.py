"""The slow path: a streaming sanitizer writing a normalized UTF-8 / LF spool for DuckDB.

Every line that must not reach DuckDB (skipped, rejected early, part of a runaway quote's
opening line) is written as an empty line, so DuckDB's record numbers stay physical line
numbers. Per record: field counts strict both ways, empty fields included; a quote that never
closes (or grows past its limits) costs only the line where it opened; lines over the limit,
NUL bytes and undecodable text are early rejects with a reason.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections import deque
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from .dialect import Dialect, EarlyReject, FileUnusable, Limits
from .grammar import Grammar
from .lines import Block, LineLimit, LineSource, blocks, excerpt


class Sanitizer:
    """Streams physical lines into a spool where every line that must not reach DuckDB is an empty
    line (or, in a 1-column file where an empty line is a value, a line DuckDB rejects and verify
    drops), so DuckDB's record numbers stay the physical line numbers."""

    def __init__(self, d: Dialect, limits: Limits, columns: list[str] | None, out: BinaryIO) -> None:
        self.d, self.limits, self.out = d, limits, out
        self.g = Grammar(d)
        self.comment = d.comment.encode() if d.comment else None
        self.header: list[str] | None = None if d.header else list(columns or [])
        self.ncols = len(self.header) if self.header is not None else 0
        self.lines = self.records = self.skipped = self.blank = self.kept = 0
        self.header_records = 0
        self.header_delims = 0
        self.early: list[EarlyReject] = []
        self.multiline_phys: list[int] = []
        self.own_lines: set[int] = set()
        self.skip_left = d.skip_rows
        enc = codecs.lookup(d.encoding).name
        self.bad_text = "invalid UTF-8" if enc in ("utf-8", "utf-8-sig") else f"not valid {d.encoding}"
        self._src: Iterator | None = None
        self.failure: list[str] = []
        self.pre_header = 0  # removed lines before the header, not yet written

    # -- input: numbered physical lines (text, offset, length, flag, line_no)
    def _next(self) -> tuple[bytes, int, int, int, int] | None:
        item = self.src.next()
        if item is not None:
            self.lines = max(self.lines, item[4])
        return item

    # -- output: exactly one spool line per physical line, in order
    def _removed(self, line_no: int) -> bytes:
        if self.header is None:  # before the header: written once the column count is known
            self.pre_header += 1
            return None
        if self.ncols == 1:
            self.own_lines.add(line_no)
            return b'""x'  # DuckDB: one "unquoted value" reject, dropped by verify
        return b""

    def _out_removed(self, line_no: int, out: BinaryIO, extra_lines: int = 0) -> None:
        """Lines line_no .. line_no+extra_lines must not reach DuckDB."""
        for i in range(line_no, line_no + 1 + extra_lines):
            b = self._removed(i)
            if b is not None:
                out.write(b + b"\n")

    def _reject(self, line_no: int, reason: str, raw: bytes, offset: int, length: int) -> None:
        self.early.append(EarlyReject(line_no, reason, excerpt(raw, self.limits), offset, length))

    def run(self, chunks: Iterator[bytes]) -> None:
        self.cap = LineLimit(
            self.limits.max_header_bytes if self.header is None else self.limits.max_line_bytes
        )
        self.src = LineSource(blocks(chunks, self.limits, self.failure, self.cap))
        out = self.out
        while True:
            if self.header is not None and not self.skip_left and self._bulk():
                continue
            item = self._next()
            if item is None:
                return
            self._one(item, out)

    def _specials(self, blk: Block) -> list[int]:
        """Indexes of the block's lines that need the per-line path: a field count other than
        the header's, a quote (unless the line is one well-formed record), a NUL byte, invalid
        UTF-8, a comment, a cut line. All other lines are one valid record each."""
        lines = blk.lines
        n = len(lines)
        d, q = self.g.d, self.g.q
        body = blk.body if blk.body is not None else b"".join(lines)
        if blk.body is not None and q is not None and q in body and body.count(b"\r") == body.count(b"\r\n"):
            return self._specials_regex(blk, body)
        if blk.body is not None and b"\r" not in body:
            # LF only: delimiters per line from two numpy passes (every segment holds its LF)
            arr = np.frombuffer(body, np.uint8)
            ends = np.flatnonzero(arr == 10)
            upto = np.searchsorted(np.flatnonzero(arr == d[0]), ends)  # delimiters before each LF
            spec = np.diff(upto, prepend=0) != self.ncols - 1
        else:
            spec = np.fromiter(map(bytes.count, lines, itertools.repeat(d)), np.int64, n) != self.ncols - 1
        if q is not None and q in body:
            hasq = np.fromiter(map(bytes.__contains__, lines, itertools.repeat(q)), np.bool_, n)
            for i in np.flatnonzero(hasq).tolist():  # a quoted line: well formed, right width?
                spec[i] = not self._quoted_ok(lines[i])
        if b"\0" in body:
            spec |= np.fromiter(map(bytes.__contains__, lines, itertools.repeat(b"\0")), np.bool_, n)
        if self.comment is not None and self.comment in body:
            spec |= np.fromiter(map(bytes.startswith, lines, itertools.repeat(self.comment)), np.bool_, n)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            for i, ln in enumerate(lines):
                try:
                    ln.decode("utf-8")
                except UnicodeDecodeError:
                    spec[i] = True
        if len(body) > self.limits.max_line_bytes:  # cut under the header's larger limit
            spec |= np.fromiter(map(len, lines), np.int64, n) > self.limits.max_line_bytes
        for i in blk.special:
            spec[i] = True
        return np.flatnonzero(spec).tolist()

    def _good_run(self) -> re.Pattern[bytes]:
        """A regex matching a run of lines that are each one well-formed record of exactly
        ncols fields (quoted fields on one line, no NUL), each ended by LF or CRLF."""
        if getattr(self, "_good", None) is None:
            g = self.g
            q, e, dl = re.escape(g.q), re.escape(g.e), re.escape(g.d)
            if g.e == g.q:
                body = rb"[^" + q + rb"\r\n\x00]*+(?:" + q + q + rb"[^" + q + rb"\r\n\x00]*+)*+"
            else:
                body = (
                    rb"[^" + q + e + rb"\r\n\x00]*+(?:" + e + rb"[^\r\n\x00][^" + q + e + rb"\r\n\x00]*+)*+"
                )
            f = rb"(?: *+" + q + body + q + rb" *+|[^" + q + dl + rb"\r\n\x00]*+)"
            rec = f + (rb"(?:" + dl + f + rb"){%d}" % (self.ncols - 1) if self.ncols > 1 else b"")
            self._good = re.compile(rb"(?:" + rec + rb"\r?\n)*+")
        return self._good

    def _specials_regex(self, blk: Block, body: bytes) -> list[int]:
        """Special lines of a block with quotes: one C-level regex match per run of good lines."""
        good = self._good_run()
        spec = []
        pos, idx, end = 0, 0, len(body)
        while pos < end:
            m = good.match(body, pos)
            stop = m.end()
            idx += body.count(b"\n", pos, stop)
            if stop >= end:
                break
            spec.append(idx)  # the line at `stop` is not one good record
            nl = body.find(b"\n", stop)
            pos = end if nl < 0 else nl + 1
            idx += 1
        n = len(blk.lines)
        extra = set()
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            for i, ln in enumerate(blk.lines):
                try:
                    ln.decode("utf-8")
                except UnicodeDecodeError:
                    extra.add(i)
        if self.comment is not None and self.comment in body:
            extra.update(i for i, ln in enumerate(blk.lines) if ln.startswith(self.comment))
        if len(body) > self.limits.max_line_bytes:
            extra.update(i for i, ln in enumerate(blk.lines) if len(ln) > self.limits.max_line_bytes)
        extra.update(blk.special)
        if extra:
            spec = sorted(set(spec) | extra)
        return [i for i in spec if i < n]

    def _quoted_ok(self, ln: bytes) -> bool:
        g = self.g
        if not g.strict_record.fullmatch(ln):
            return False
        inside = b"".join(g.quoted.findall(ln)).count(g.d)
        return ln.count(g.d) - inside == self.ncols - 1

    def _bulk(self) -> bool:
        """Write the run of ordinary lines from the current position; False when the next line
        needs the per-line path (or when lines wait to be read again)."""
        r = self.src.peek()
        if r is None:
            return False
        blk, i = r
        if blk.spec is None:
            blk.spec = deque(self._specials(blk))
        spec = blk.spec
        while spec and spec[0] < i:
            spec.popleft()
        j = spec[0] if spec else len(blk.lines)
        if j == i:
            return False
        k = j - i
        if k == len(blk.lines) and blk.body is not None and b"\r" not in blk.body:
            self.out.write(blk.body)  # the whole block is ordinary LF lines: as it is
        else:
            self.out.write(b"\n".join(blk.lines[i:j]))
            self.out.write(b"\n")
        self.records += k
        self.kept += k
        self.src.consume(k)
        self.lines = max(self.lines, self.src.lines)
        return True

    def _one(self, item: tuple, out: BinaryIO) -> None:
        text, off, length, too_long, line_no = item[:5]
        if self._not_a_record(item, out):
            return
        n, status = self.g.fields(text)
        parts = [text]
        if status == "open":
            parts = self._multiline(item, n)
            if parts is None:  # runaway: the opening line is quarantined, the rest read again
                return
            n, status = self.g.fields(b"".join(parts))  # exact recount of the whole record
            if status == "bad" and self.header is not None:
                # the quote closed lines later but text follows it: most likely a stray quote
                # that met a later one. Like a runaway: its opening line only, the rest again.
                self.records += 1
                why = "malformed quoting: a quote opens here and closes lines later before text"
                self._reject(line_no, why, text, off, len(text))
                self._out_removed(line_no, out)
                for taken in reversed(self._taken):
                    self.src.pending.appendleft(taken)
                return
        rec = b"".join(parts) if len(parts) > 1 else text
        self.records += 1
        if self.header is None:
            self._take_header(rec, status, n, line_no, len(parts), out)
        else:
            self._data_record(rec, status, n, item, len(parts), out)

    def _not_a_record(self, item: tuple, out: BinaryIO) -> bool:
        """Handle a line that is no data record (skipped, too long, cut, a comment, blank)."""
        text, off, length, too_long, line_no = item[:5]
        lim = self.limits
        if not too_long and self.header is not None and len(text) > lim.max_line_bytes:
            too_long, length, text = 1, len(text), text[: lim.excerpt_bytes]
        if self.skip_left or (self.comment is not None and text.startswith(self.comment) and not too_long):
            self.skip_left = max(self.skip_left - 1, 0)
            self.records += 1
            self.skipped += 1
            self._out_removed(line_no, out)
            return True
        if too_long:
            self.records += 1
            if too_long == 2:
                why = "incomplete last line: the archive ends inside it"
            elif self.header is None:
                raise FileUnusable(f"header (line {line_no}) longer than {lim.max_header_bytes} bytes")
            else:
                why = f"line too long ({length:,} bytes > {lim.max_line_bytes:,})"
            self._reject(line_no, why, text, off, length)
            self._out_removed(line_no, out)
            return True
        if not text and (self.header is None or self.ncols != 1):
            self.records += 1
            self.blank += 1
            if self.header is None:
                self.pre_header += 1
            else:
                out.write(b"\n")
            return True
        return False

    def _take_header(self, rec: bytes, status: str, n: int, line_no: int, nlines: int, out: BinaryIO) -> None:
        self.header_records = 1
        if status != "ok":
            raise FileUnusable(f"header (line {line_no}): malformed quoting")
        try:
            rec.decode("utf-8")
        except UnicodeDecodeError:
            raise FileUnusable(f"header (line {line_no}): {self.bad_text}") from None
        self.header = [h.strip() for h in self.g.split(rec)]
        self.ncols = len(self.header)
        self.cap.n = self.limits.max_line_bytes
        self.header_delims = n - 1
        first = line_no - self.pre_header  # the removed lines before it are 1..line_no-1
        for i in range(first, line_no + nlines):
            out.write(self._removed(i) + b"\n")
        self.pre_header = 0

    def _data_record(self, rec: bytes, status: str, n: int, item: tuple, nlines: int, out: BinaryIO) -> None:
        line_no, off = item[4], item[1]
        reason = None
        if status == "bad":
            reason = "malformed quoting (text after a closing quote)"
        elif n != self.ncols:
            reason = f"{'too many' if n > self.ncols else 'too few'} columns ({n}, expected {self.ncols})"
        elif b"\0" in rec:
            reason = "NUL byte"
        else:
            try:
                rec.decode("utf-8")
            except UnicodeDecodeError:
                reason = self.bad_text
        if reason:
            self._reject(line_no, reason, rec, off, len(rec))
            self._out_removed(line_no, out, nlines - 1)
        else:
            self.kept += 1
            out.write(rec + b"\n")
            if nlines > 1:  # stays one record over several spool lines
                self.multiline_phys.extend(range(line_no, line_no + nlines - 1))

    def _multiline(self, first_item: tuple, n: int) -> list[bytes] | None:
        """The lines of a record whose quoted field is open past its first line, each but the
        last with its own line break (a value keeps its CRLF or CR); None for a runaway quote
        (then its opening line is quarantined and the lines after it read again)."""
        lim = self.limits
        first, off, _, _, line_no = first_item[:5]
        taken = []
        parts = [first]
        ending = first_item[5]
        size = len(first)
        while True:
            item = self._next()
            if item is None:
                why = "it never closes (end of file)"
                break
            taken.append(item)
            text, _, _, too_long, _ = item[:5]
            if too_long:
                why = "it never closes (a line over the limit follows)"
                break
            parts[-1] += ending
            parts.append(text)
            ending = item[5]
            size += len(text) + 1
            if size > lim.max_quoted_bytes:
                why = f"the quoted field grows past {lim.max_quoted_bytes} bytes"
                break
            if len(parts) - 1 > lim.max_quoted_lines:
                why = f"the quoted field spans over {lim.max_quoted_lines} line breaks"
                break
            n, status = self.g.fields(text, in_quote=True, n=n)
            if status != "open":
                self._taken = taken
                return parts
        self.records += 1
        if self.header is None:
            raise FileUnusable(f"header (line {line_no}): a quote opens and never closes")
        self._reject(line_no, f"malformed quoting: a quote opens here and {why}", first, off, len(first))
        self._out_removed(line_no, self.out)
        for item in reversed(taken):
            self.src.pending.appendleft(item)
        return None
