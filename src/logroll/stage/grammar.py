"""CSV records as DuckDB reads them: a quote opens a quoted field only at the field's start (after
optional spaces); inside an unquoted field it is a literal; a closing quote must be followed by
the delimiter or the line end (after optional spaces). Patterns are linear (possessive
quantifiers never backtrack), so a record of any width costs time in proportion to its bytes.
"""

from __future__ import annotations

import csv
import re

from .dialect import Dialect, FileUnusable


class Grammar:
    """Compiled patterns of one dialect's records."""

    def __init__(self, d: Dialect) -> None:
        self.d = d.delimiter.encode()
        if len(self.d) != 1 or (d.quote and len(d.quote.encode()) != 1):
            raise ValueError("the delimiter and the quote must be one ASCII character each")
        self.q = d.quote.encode() if d.quote else None
        self.e = d.esc.encode() if d.quote else None
        if self.q:
            q, e, dl = re.escape(self.q), re.escape(self.e), re.escape(self.d)
            # unrolled loops (a run of plain bytes, then an escape and a run ...): Python's re
            # is ~10x faster on a character-class run than on a per-byte alternation; possessive
            # quantifiers never backtrack
            if self.e == self.q:
                body = rb"[^" + q + rb"]*+(?:" + q + q + rb"[^" + q + rb"]*+)*+"
            else:
                body = rb"[^" + q + e + rb"]*+(?:" + e + rb"[\s\S][^" + q + e + rb"]*+)*+"
            # DuckDB: spaces (not tabs) before an opening quote and after a closing one are dropped
            self.quoted = re.compile(rb" *+" + q + body + q + rb" *+")
            self.opens = re.compile(rb" *+" + q)
            self.rest_of_quoted = re.compile(body + q + rb" *+")  # from inside a quoted field to its end
            strict_field = rb"(?: *+" + q + body + q + rb" *+|[^" + q + dl + rb"\r\n]*+)"
            self.strict_record = re.compile(strict_field + rb"(?:" + dl + strict_field + rb")*+")

    def fields(self, rec: bytes, in_quote: bool = False, n: int = 1) -> tuple[int, str]:
        """(number of fields, status) of a record's bytes, or of one more line of a record whose
        quoted field is open (in_quote, with n fields so far). status: "ok", "open" (a quoted
        field is still open at the end), "bad" (text after a closing quote)."""
        d, q = self.d, self.q
        pos, end = 0, len(rec)
        if q is None or (q not in rec and not in_quote):
            return n + rec.count(d), "ok"
        if in_quote:
            if q not in rec:
                return n, "open"
            m = self.rest_of_quoted.match(rec)
            if m is None:
                return n, "open"
            pos = m.end()
            if pos == end:
                return n, "ok"
            if rec[pos : pos + 1] != d:
                return n, "bad"
            pos += 1
            n += 1
        elif self.strict_record.fullmatch(rec):  # the common case: two C calls and a count
            inside = b"".join(self.quoted.findall(rec)).count(d)
            return n + rec.count(d) - inside, "ok"
        while True:
            if self.opens.match(rec, pos):
                m = self.quoted.match(rec, pos)
                if m is None:
                    return n, "open"
                pos = m.end()
                if pos == end:
                    return n, "ok"
                if rec[pos : pos + 1] != d:
                    return n, "bad"
                pos += 1
                n += 1
            else:
                j = rec.find(d, pos)
                if j < 0:
                    return n, "ok"
                pos = j + 1
                n += 1

    def split(self, rec: bytes) -> list[str]:
        """The field values of a well-formed record (header parsing). Linear: one regex pass."""
        out: list[str] = []
        d, q, pos, end = self.d, self.q, 0, len(rec)
        if q is None or q not in rec:
            return rec.decode("utf-8", "replace").split(d.decode())
        if self.e == q and b" " + q not in rec and q + b" " not in rec and self.strict_record.fullmatch(rec):
            # well formed: the csv module's C parser reads it exactly as the grammar does
            if csv.field_size_limit() < len(rec):
                csv.field_size_limit(len(rec) + 1)
            text = rec.decode("utf-8", "replace")
            return next(
                csv.reader([text], delimiter=d.decode(), quotechar=q.decode(), doublequote=True, strict=True)
            )
        while True:
            if self.opens.match(rec, pos):
                m = self.quoted.match(rec, pos)
                if m is None:
                    raise FileUnusable("header: a quote opens and never closes")
                v = m.group().strip(b" ")[1:-1]
                if self.e == q:
                    v = v.replace(q + q, q)
                else:
                    v = re.sub(re.escape(self.e) + rb"([\s\S])", rb"\1", v)
                out.append(v.decode("utf-8", "replace"))
                pos = m.end()
                if pos == end:
                    return out
                if rec[pos : pos + 1] != d:
                    raise FileUnusable("header: text after a closing quote")
                pos += 1
                if pos == end:
                    out.append("")
                    return out
            else:
                j = rec.find(d, pos)
                out.append(rec[pos : j if j >= 0 else end].decode("utf-8", "replace"))
                if j < 0:
                    return out
                pos = j + 1
                if pos == end:
                    out.append("")
                    return out


def header_problems(header: list[str]) -> list[str]:
    """Linear-time header checks (stage.check_header's `header.count(h)` loop is quadratic)."""
    if len(set(header)) == len(header):
        return []
    seen: set[str] = set()
    dupes: set[str] = set()
    for h in header:
        (dupes if h in seen else seen).add(h)
    dupes.discard("")
    return [f"header repeats column(s) {', '.join(sorted(dupes)[:20])}"] if dupes else []
