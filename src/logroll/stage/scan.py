"""The fast path: a plain UTF-8 file, scanned with numpy (~1 GB/s), then read by DuckDB as it is.

The scan counts physical records, blank records and line breaks inside quotes independently of
DuckDB, and raises NotFast at the first sign that DuckDB could read the file differently from
this count (the sanitizer then reads it instead).
"""

from __future__ import annotations

import codecs
from pathlib import Path

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


def _scan(path, d, limits, ncols, data_start, first_line, crlf, quoted):
    D = ord(d.delimiter)
    Q = ord(d.quote) if d.quote else -1
    qb = d.quote.encode() if d.quote else None
    g = Grammar(d)
    size = limits.chunk_bytes
    buf = bytearray(size)
    a = np.frombuffer(buf, dtype=np.uint8)
    eqbuf = np.empty(size, dtype=np.bool_)
    tmp = np.empty(size, dtype=np.bool_)
    records = blank = delims = nlf_total = cr_total = 0
    base = data_start
    inside = 0  # quoted mode: inside a quoted field at the chunk start
    open_at = -1  # absolute offset of the open quote when inside
    open_lines = 0  # line breaks inside the open quoted field so far
    prev = 10  # the byte before the chunk (data starts right after a line end)
    cur_line = 0  # bytes of the current physical line so far
    last_rec_end = data_start - 1  # absolute offset of the last record-ending LF
    pending_close = pending_cr = False  # checks of the next chunk's first byte
    tail = b""  # quoted mode: bytes of the record still open at the chunk end
    multiline_lines: list[np.ndarray] = []  # physical line numbers ending inside quotes
    lines_before = first_line - 1  # physical lines before this chunk
    one_col = ncols == 1
    max_line = limits.max_line_bytes
    with open(path, "rb", buffering=0) as fh:
        fh.seek(data_start)
        while True:
            k = fh.readinto(buf)
            if not k:
                break
            v = a[:k]
            if pending_close and v[0] not in (D, 10, 13, Q):
                raise NotFast("text after a closing quote")
            if pending_cr and v[0] != 10:
                raise NotFast("CR line ending (not CRLF)")
            pending_close = pending_cr = False
            if buf.find(b"\0", 0, k) >= 0:
                raise NotFast("NUL byte")
            eq = np.equal(v, 10, out=eqbuf[:k])
            has_cr = buf.find(b"\r", 0, k) >= 0
            has_q = qb is not None and buf.find(qb, 0, k) >= 0
            if has_q and not quoted:
                raise _Restart()
            if has_cr:
                if not crlf:
                    raise NotFast("mixed LF and CRLF line endings" if prev != 13 else "CR line ending")
                cr = np.flatnonzero(v == 13)
                cr_total += len(cr)
                if cr[-1] == k - 1:
                    pending_cr = True
                    cr = cr[:-1]
                if len(cr) and not np.all(v[cr + 1] == 10):
                    raise NotFast("CR line ending (not CRLF)")
            if not quoted and not has_cr:
                # the common chunk: no quote, no CR; every line is a record
                nlf = int(np.count_nonzero(eq))
                records += nlf
                delims += int(np.count_nonzero(np.equal(v, D, out=tmp[:k])))
                if not one_col and nlf:
                    blank += int(np.count_nonzero(np.logical_and(eq[1:], eq[:-1], out=tmp[: k - 1])))
                    blank += 1 if (v[0] == 10 and prev == 10) else 0
                first = buf.find(b"\n", 0, k)
                if first < 0:
                    cur_line += k
                else:
                    if cur_line + first > max_line:
                        raise NotFast("line over max_line_bytes")
                    last = buf.rfind(b"\n", 0, k)
                    cur_line = k - last - 1
                    last_rec_end = base + last
                if cur_line > max_line:
                    raise NotFast("line over max_line_bytes")
            else:
                lf = np.flatnonzero(eq)
                nlf = len(lf)
                if not quoted:  # a CRLF chunk of a quote-free file: the delimiter total still holds
                    delims += int(np.count_nonzero(np.equal(v, D, out=tmp[:k])))
                if quoted and (has_q or inside):
                    q = np.flatnonzero(v == Q)
                    par0 = inside
                    rank = (np.arange(len(q)) + par0) & 1
                    opening = q[rank == 0]
                    closing = q[rank == 1]
                    # an opening quote follows a field start (or closes a "" pair); a closing one
                    # is followed by a delimiter, a line end or another quote
                    pb = v[np.maximum(opening - 1, 0)]
                    if len(opening) and opening[0] == 0:
                        pb[0] = prev
                    if not np.all((pb == D) | (pb == 10) | (pb == 13) | (pb == Q)):
                        raise NotFast("quote inside an unquoted field")
                    nb = v[np.minimum(closing + 1, k - 1)]
                    if len(closing) and closing[-1] == k - 1:
                        pending_close = True
                        nb[-1] = D
                    if not np.all((nb == D) | (nb == 10) | (nb == 13) | (nb == Q)):
                        raise NotFast("text after a closing quote")
                    opens = opening + base
                    if par0:
                        opens = np.concatenate(([open_at], opens))
                    if len(opens) > len(closing):  # still open at the chunk end
                        open_at = int(opens[-1])
                    m = min(len(opens), len(closing))
                    if m and int((closing[:m] + base - opens[:m]).max()) > limits.max_quoted_bytes:
                        raise NotFast("quoted field over max_quoted_bytes")
                    inside = (par0 + len(q)) & 1
                    lf_in = ((np.searchsorted(q, lf) + par0) & 1).astype(bool)
                else:
                    lf_in = np.zeros(nlf, bool)
                if inside and base + k - open_at > limits.max_quoted_bytes:
                    raise NotFast("quoted field over max_quoted_bytes")
                n_in = int(np.count_nonzero(lf_in))
                if n_in:
                    multiline_lines.append((lines_before + 1 + np.flatnonzero(lf_in)).astype(np.int64))
                    if open_lines + n_in > limits.max_quoted_lines:
                        # the longest run of line breaks inside one quoted field
                        runs = np.diff(np.flatnonzero(np.concatenate(([True], ~lf_in, [True])))) - 1
                        runs[0] += open_lines
                        if runs.max() > limits.max_quoted_lines:
                            raise NotFast("quoted field over max_quoted_lines")
                out_lf = lf[~lf_in] if n_in else lf
                if len(out_lf):
                    open_lines = int(np.count_nonzero(lf_in[np.searchsorted(lf, out_lf[-1]) :]))
                else:
                    open_lines += n_in
                records += len(out_lf)
                # physical lines over the limit
                if nlf:
                    ll = np.diff(lf, prepend=-1)
                    ll[0] += cur_line
                    if int(ll.max()) - 1 > max_line:
                        raise NotFast("line over max_line_bytes")
                    cur_line = k - 1 - int(lf[-1])
                else:
                    cur_line += k
                if cur_line > max_line:
                    raise NotFast("line over max_line_bytes")
                if len(out_lf):
                    ends = out_lf + base
                    starts = np.concatenate(([last_rec_end], ends[:-1])) + 1
                    lens = ends - starts  # bytes before the LF (a CR included)
                    if not one_col:
                        zero = lens == 0
                        one = lens == 1
                        if one.any():
                            zero[one] = v[np.maximum(out_lf[one] - 1, 0)] == 13
                        blank += int(np.count_nonzero(zero))
                    if quoted:
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
                            rec = (tail + bytes(v[: int(e[j])])) if s0 < 0 else bytes(v[s0 : int(e[j])])
                            if g.fields(rec)[0] != ncols:  # DuckDB may accept it: the sanitizer decides
                                raise NotFast("a record ending in an empty field has a wrong field count")
                        tail = b""
                    last_rec_end = int(ends[-1])
                if quoted:
                    tail = (
                        tail + bytes(v[last_rec_end + 1 - base :])
                        if last_rec_end < base
                        else bytes(v[last_rec_end + 1 - base :])
                    )
            nlf_total += nlf
            lines_before += nlf
            prev = int(v[k - 1])
            base += k
    if pending_cr:
        raise NotFast("CR line ending (not CRLF)")
    if crlf and cr_total != nlf_total:
        raise NotFast("mixed LF and CRLF line endings")
    if inside:
        raise NotFast("a quote opens and never closes")
    end = base
    lines = lines_before
    if end - last_rec_end - 1 > 0:  # a last record without a line end (never blank: it has bytes)
        records += 1
        lines += 1
        if quoted and tail and g.fields(tail.rstrip(b"\r") if crlf else tail)[0] != ncols:
            raise NotFast("a record ending in an empty field has a wrong field count")
    ml = np.concatenate(multiline_lines) if multiline_lines else np.zeros(0, np.int64)
    return dict(
        records=records, blank=blank, delims=None if quoted else delims, lines=lines, multiline_phys=ml
    )


def break_records(phys_inside: np.ndarray) -> np.ndarray:
    """From the physical line numbers whose line break is inside quotes to the record number
    (as DuckDB numbers records) each belongs to: line p holds the j-th such break (0-based), so
    its record is p - j."""
    if not len(phys_inside):
        return np.zeros(0, np.int64)
    return np.sort(phys_inside) - np.arange(len(phys_inside), dtype=np.int64)
