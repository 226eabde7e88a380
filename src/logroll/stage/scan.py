"""The fast path: a plain UTF-8 file, scanned with numpy (~1 GB/s), then read by DuckDB as it is.

The scan counts physical records, blank records and line breaks inside quotes independently of
DuckDB, and raises NotFast at the first sign that DuckDB could read the file differently from
this count (the sanitizer then reads it instead).
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import numpy as np

from .dialect import Dialect, Limits, NotFast
from .grammar import Grammar


def read_header_plain(path: Path, g: Grammar, limits: Limits) -> tuple[bytes, int, int, bool] | None:
    """(header record bytes, offset where data starts, physical lines of the header, ends in
    CRLF) from a plain UTF-8 file, reading as many bytes as needed (doubling reads, so linear) up
    to max_header_bytes; None if the file is empty. Raises NotFast when the header is not one
    clean record on line 1 (the sanitizer then decides)."""
    with open(path, "rb") as fh:
        buf = fh.read(limits.chunk_bytes)
        start = 3 if buf.startswith(codecs.BOM_UTF8) else 0
        if not buf[start:]:
            return None
        pos = start
        while True:
            cut = -1
            search = pos
            while True:  # the first line end outside quotes
                j = buf.find(b"\n", search)
                if j < 0:
                    break
                rec = buf[start:j]
                if g.q is None or rec.count(g.q) % 2 == 0:  # balanced: the record ends here
                    cut = j
                    break
                search = j + 1
            if cut >= 0:
                break
            more = fh.read(max(limits.chunk_bytes, len(buf)))
            if not more:  # the header is the whole file (no line end)
                rec = buf[start:]
                cut = len(buf)
                if g.q is not None and rec.count(g.q) % 2:
                    raise NotFast("header: a quote opens and never closes")
                break
            if len(buf) > limits.max_header_bytes:
                raise NotFast("header longer than max_header_bytes")
            buf += more
        rec = buf[start:cut]
        if cut < len(buf) and rec.endswith(b"\r"):
            rec = rec[:-1]
        if not rec:
            raise NotFast("line 1 is blank")
        if b"\r" in rec:
            raise NotFast("CR inside the header")
        try:
            rec.decode("utf-8")
        except UnicodeDecodeError:
            raise NotFast("header not valid UTF-8") from None
        crlf = cut < len(buf) and cut > start and buf[cut - 1] == 13
        hlines = buf.count(b"\n", start, cut) + 1
        if hlines > 1 and (hlines - 1 > limits.max_quoted_lines or len(rec) > limits.max_quoted_bytes):
            raise NotFast("header: a quoted field over the limits")  # the sanitizer rejects the file
        return rec, min(cut + 1, len(buf)), hlines, crlf


class _Restart(Exception):
    """The quote-free scan met a quote: scan again from the start in quoted mode."""


def scan_plain(
    path: Path, d: Dialect, limits: Limits, ncols: int, data_start: int, first_line: int, crlf: bool = False
) -> dict:
    """One pass over a plain (uncompressed UTF-8) file from `data_start` (the byte after the
    header): physical records, blank records, line breaks inside quotes, and what the strict
    field-count check needs. Raises NotFast at the first sign that DuckDB could read the file
    differently from this count: a lone CR or mixed endings, a NUL byte, a line or quoted field
    over the limits, a quote out of place (not at a field start, or a closing quote followed by
    text), a quote still open at the end, an escape other than the quote, a record whose last
    field is an empty one too many (DuckDB accepts it).

    Quote-free files (the common case) cost one read and three numpy passes per chunk; the count
    of delimiters is kept for verify. A file with quotes is scanned again in quoted mode (quote
    parity from quote positions; the field-count check is done here, on the records that end with
    an empty field, instead of by a delimiter total)."""
    if d.quote and d.esc != d.quote:
        raise NotFast("escape differs from quote")
    try:
        return _scan(path, d, limits, ncols, data_start, first_line, crlf, quoted=False)
    except _Restart:
        return _scan(path, d, limits, ncols, data_start, first_line, crlf, quoted=True)


def _scan(
    path: Path,
    d: Dialect,
    limits: Limits,
    ncols: int,
    data_start: int,
    first_line: int,
    crlf: bool,
    quoted: bool,
) -> dict[str, Any]:
    return _Scan(d, limits, ncols, data_start, first_line, crlf, quoted).run(path)


class _Scan:
    """One pass of scan_plain: per chunk, one read and a few numpy passes (state across chunks)."""

    def __init__(
        self,
        d: Dialect,
        limits: Limits,
        ncols: int,
        data_start: int,
        first_line: int,
        crlf: bool,
        quoted: bool,
    ):
        self.D = ord(d.delimiter)
        self.Q = ord(d.quote) if d.quote else -1
        self.qb = d.quote.encode() if d.quote else None
        self.g = Grammar(d)
        self.limits, self.ncols, self.crlf, self.quoted = limits, ncols, crlf, quoted
        self.data_start = data_start
        size = limits.chunk_bytes
        self.buf = bytearray(size)
        self.a = np.frombuffer(self.buf, dtype=np.uint8)
        self.eqbuf = np.empty(size, dtype=np.bool_)
        self.tmp = np.empty(size, dtype=np.bool_)
        self.records = self.blank = self.delims = self.nlf_total = self.cr_total = 0
        self.base = data_start
        self.inside = 0  # quoted mode: inside a quoted field at the chunk start
        self.open_at = -1  # absolute offset of the open quote when inside
        self.open_lines = 0  # line breaks inside the open quoted field so far
        self.prev = 10  # the byte before the chunk (data starts right after a line end)
        self.cur_line = 0  # bytes of the current physical line so far
        self.last_rec_end = data_start - 1  # absolute offset of the last record-ending LF
        self.pending_close = self.pending_cr = False  # checks of the next chunk's first byte
        self.tail = b""  # quoted mode: bytes of the record still open at the chunk end
        self.multiline_lines: list[np.ndarray] = []  # physical line numbers ending inside quotes
        self.lines_before = first_line - 1  # physical lines before this chunk
        self.one_col = ncols == 1
        self.max_line = limits.max_line_bytes
        self.utf8 = codecs.getincrementaldecoder("utf-8")()  # a character may span two chunks

    def run(self, path: Path) -> dict[str, Any]:
        with open(path, "rb", buffering=0) as fh:
            fh.seek(self.data_start)
            while True:
                k = fh.readinto(self.buf)
                if not k:
                    break
                self._chunk(self.a[:k], k)
        return self._finish()

    def _chunk(self, v: np.ndarray, k: int) -> None:
        buf = self.buf
        if self.pending_close and v[0] not in (self.D, 10, 13, self.Q):
            raise NotFast("text after a closing quote")
        if self.pending_cr and v[0] != 10:
            raise NotFast("CR line ending (not CRLF)")
        self.pending_close = self.pending_cr = False
        if buf.find(b"\0", 0, k) >= 0:
            raise NotFast("NUL byte")
        # DuckDB checks UTF-8 only in the values it materializes: a column staging does not
        # carry would pass invalid bytes silently. The sanitizer makes such lines rejects.
        if not buf[:k].isascii():
            try:
                self.utf8.decode(bytes(buf[:k]))
            except UnicodeDecodeError:
                raise NotFast("invalid UTF-8") from None
        eq = np.equal(v, 10, out=self.eqbuf[:k])
        has_cr = buf.find(b"\r", 0, k) >= 0
        has_q = self.qb is not None and buf.find(self.qb, 0, k) >= 0
        if has_q and not self.quoted:
            raise _Restart()
        if has_cr:
            self._check_crlf(v, k)
        if not self.quoted and not has_cr:
            nlf = self._plain_chunk(v, k, eq)
        else:
            nlf = self._general_chunk(v, k, eq, has_q)
        self.nlf_total += nlf
        self.lines_before += nlf
        self.prev = int(v[k - 1])
        self.base += k

    def _check_crlf(self, v: np.ndarray, k: int) -> None:
        if not self.crlf:
            raise NotFast("mixed LF and CRLF line endings" if self.prev != 13 else "CR line ending")
        cr = np.flatnonzero(v == 13)
        self.cr_total += len(cr)
        if cr[-1] == k - 1:
            self.pending_cr = True
            cr = cr[:-1]
        if len(cr) and not np.all(v[cr + 1] == 10):
            raise NotFast("CR line ending (not CRLF)")

    def _plain_chunk(self, v: np.ndarray, k: int, eq: np.ndarray) -> int:
        """The common chunk: no quote, no CR; every line is a record."""
        buf, tmp = self.buf, self.tmp
        nlf = int(np.count_nonzero(eq))
        self.records += nlf
        self.delims += int(np.count_nonzero(np.equal(v, self.D, out=tmp[:k])))
        if not self.one_col and nlf:
            self.blank += int(np.count_nonzero(np.logical_and(eq[1:], eq[:-1], out=tmp[: k - 1])))
            self.blank += 1 if (v[0] == 10 and self.prev == 10) else 0
        first = buf.find(b"\n", 0, k)
        if first < 0:
            self.cur_line += k
        else:
            if self.cur_line + first > self.max_line:
                raise NotFast("line over max_line_bytes")
            last = buf.rfind(b"\n", 0, k)
            self.cur_line = k - last - 1
            self.last_rec_end = self.base + last
        if self.cur_line > self.max_line:
            raise NotFast("line over max_line_bytes")
        return nlf

    def _general_chunk(self, v: np.ndarray, k: int, eq: np.ndarray, has_q: bool) -> int:
        lf = np.flatnonzero(eq)
        nlf = len(lf)
        if not self.quoted:  # a CRLF chunk of a quote-free file: the delimiter total still holds
            self.delims += int(np.count_nonzero(np.equal(v, self.D, out=self.tmp[:k])))
        if self.quoted and (has_q or self.inside):
            lf_in = self._quotes(v, k, lf)
        else:
            lf_in = np.zeros(nlf, bool)
        if self.inside and self.base + k - self.open_at > self.limits.max_quoted_bytes:
            raise NotFast("quoted field over max_quoted_bytes")
        out_lf = self._breaks_inside(lf, lf_in)
        self.records += len(out_lf)
        # physical lines over the limit
        if nlf:
            ll = np.diff(lf, prepend=-1)
            ll[0] += self.cur_line
            if int(ll.max()) - 1 > self.max_line:
                raise NotFast("line over max_line_bytes")
            self.cur_line = k - 1 - int(lf[-1])
        else:
            self.cur_line += k
        if self.cur_line > self.max_line:
            raise NotFast("line over max_line_bytes")
        if len(out_lf):
            self._record_ends(v, out_lf)
        if self.quoted:
            # a record open since an earlier chunk takes this whole chunk
            rest = bytes(v[max(self.last_rec_end + 1 - self.base, 0) :])
            self.tail = self.tail + rest if self.last_rec_end < self.base else rest
        return nlf

    def _quotes(self, v: np.ndarray, k: int, lf: np.ndarray) -> np.ndarray:
        """Check every quote's place; which line breaks of the chunk are inside quotes."""
        D, Q, base = self.D, self.Q, self.base
        q = np.flatnonzero(v == Q)
        par0 = self.inside
        rank = (np.arange(len(q)) + par0) & 1
        opening = q[rank == 0]
        closing = q[rank == 1]
        # an opening quote follows a field start (or closes a "" pair); a closing one
        # is followed by a delimiter, a line end or another quote
        pb = v[np.maximum(opening - 1, 0)]
        if len(opening) and opening[0] == 0:
            pb[0] = self.prev
        if not np.all((pb == D) | (pb == 10) | (pb == 13) | (pb == Q)):
            raise NotFast("quote inside an unquoted field")
        nb = v[np.minimum(closing + 1, k - 1)]
        if len(closing) and closing[-1] == k - 1:
            self.pending_close = True
            nb[-1] = D
        if not np.all((nb == D) | (nb == 10) | (nb == 13) | (nb == Q)):
            raise NotFast("text after a closing quote")
        opens = opening + base
        if par0:
            opens = np.concatenate(([self.open_at], opens))
        if len(opens) > len(closing):  # still open at the chunk end
            self.open_at = int(opens[-1])
        m = min(len(opens), len(closing))
        if m and int((closing[:m] + base - opens[:m]).max()) > self.limits.max_quoted_bytes:
            raise NotFast("quoted field over max_quoted_bytes")
        self.inside = (par0 + len(q)) & 1
        return ((np.searchsorted(q, lf) + par0) & 1).astype(bool)

    def _breaks_inside(self, lf: np.ndarray, lf_in: np.ndarray) -> np.ndarray:
        """Record the line breaks inside quoted fields; the record-ending ones."""
        n_in = int(np.count_nonzero(lf_in))
        if n_in:
            self.multiline_lines.append((self.lines_before + 1 + np.flatnonzero(lf_in)).astype(np.int64))
            if self.open_lines + n_in > self.limits.max_quoted_lines:
                # the longest run of line breaks inside one quoted field
                runs = np.diff(np.flatnonzero(np.concatenate(([True], ~lf_in, [True])))) - 1
                runs[0] += self.open_lines
                if runs.max() > self.limits.max_quoted_lines:
                    raise NotFast("quoted field over max_quoted_lines")
        out_lf = lf[~lf_in] if n_in else lf
        if len(out_lf):
            self.open_lines = int(np.count_nonzero(lf_in[np.searchsorted(lf, out_lf[-1]) :]))
        else:
            self.open_lines += n_in
        return out_lf

    def _record_ends(self, v: np.ndarray, out_lf: np.ndarray) -> None:
        """Blank records, and (quoted files) the field count of every record ending in an empty field."""
        D, Q, base, crlf = self.D, self.Q, self.base, self.crlf
        ends = out_lf + base
        starts = np.concatenate(([self.last_rec_end], ends[:-1])) + 1
        lens = ends - starts  # bytes before the LF (a CR included)
        if not self.one_col:
            zero = lens == 0
            one = lens == 1
            if one.any():
                zero[one] = v[np.maximum(out_lf[one] - 1, 0)] == 13
            self.blank += int(np.count_nonzero(zero))
        if self.quoted:
            # strict field counts: DuckDB accepts one empty field too many at the end
            # of a record, so every record ending in an empty field is counted here
            e = out_lf - (1 if crlf else 0)  # end of the record's content
            c1 = v[np.maximum(e - 1, 0)]
            c2 = v[np.maximum(e - 2, 0)]
            c3 = v[np.maximum(e - 3, 0)]
            cand = (c1 == D) | ((c1 == Q) & (c2 == Q) & (c3 == D))
            cand |= e < 3  # records ending right at the chunk start: checked exactly
            cand &= lens > (1 if crlf else 0)
            for j in np.flatnonzero(cand).tolist():
                s0 = int(starts[j]) - base
                rec = (self.tail + bytes(v[: int(e[j])])) if s0 < 0 else bytes(v[s0 : int(e[j])])
                if self.g.fields(rec)[0] != self.ncols:  # DuckDB may accept it: the sanitizer decides
                    raise NotFast("a record ending in an empty field has a wrong field count")
            self.tail = b""
        self.last_rec_end = int(ends[-1])

    def _finish(self) -> dict[str, Any]:
        try:
            self.utf8.decode(b"", True)
        except UnicodeDecodeError:
            raise NotFast("invalid UTF-8 (a character cut at the end)") from None
        if self.pending_cr:
            raise NotFast("CR line ending (not CRLF)")
        if self.crlf and self.cr_total != self.nlf_total:
            raise NotFast("mixed LF and CRLF line endings")
        if self.inside:
            raise NotFast("a quote opens and never closes")
        lines = self.lines_before
        records = self.records
        if self.base - self.last_rec_end - 1 > 0:  # a last record without a line end (never blank)
            records += 1
            lines += 1
            tail = self.tail.rstrip(b"\r") if self.crlf else self.tail
            if self.quoted and self.tail and self.g.fields(tail)[0] != self.ncols:
                raise NotFast("a record ending in an empty field has a wrong field count")
        ml = np.concatenate(self.multiline_lines) if self.multiline_lines else np.zeros(0, np.int64)
        delims = None if self.quoted else self.delims
        return dict(records=records, blank=self.blank, delims=delims, lines=lines, multiline_phys=ml)


def break_records(phys_inside: np.ndarray) -> np.ndarray:
    """From the physical line numbers whose line break is inside quotes to the record number
    (as DuckDB numbers records) each belongs to: line p holds the j-th such break (0-based), so
    its record is p - j."""
    if not len(phys_inside):
        return np.zeros(0, np.int64)
    return np.sort(phys_inside) - np.arange(len(phys_inside), dtype=np.int64)
