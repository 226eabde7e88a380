"""Bytes in, complete numbered lines out, cut into micro-batches, with bounded memory.

A line still waiting for its newline is kept as a list of pieces and joined once, when it ends:
appending each read to it would copy it again at every read (a 200 MB line without newline took
4.5 minutes and 2.7 GB). A line longer than `max_line_bytes` keeps only its first `excerpt`
bytes and its full length: it is quarantined with that reason, and memory stays bounded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..stage.dialect import Limits


@dataclass
class Batch:
    """One micro-batch: `lines` numbered from `first_line`; `early` maps the number of a line to
    quarantine whatever it holds (over the length limit: an excerpt in `lines`; the incomplete
    last line of a damaged archive) to the reason. `end_offset` is the byte offset just after
    its last line."""

    first_line: int
    lines: list[bytes]
    end_offset: int
    early: dict[int, str] = field(default_factory=dict)

    @property
    def last_line(self) -> int:
        return self.first_line + len(self.lines) - 1


def _split(data: bytes) -> list[bytes]:
    lines = data.split(b"\n") if data else []
    if lines and not lines[-1]:
        lines.pop()
    return lines


class LineBuffer:
    """Complete lines of a byte stream (LF-ended; the last one may lack its LF at the end of the
    input), numbered from `line`, and the byte offset after each micro-batch."""

    def __init__(self, line: int, offset: int, limits: Limits):
        self.limits = limits
        self.max_line_bytes = limits.max_line_bytes
        self.excerpt = min(limits.excerpt_bytes, limits.max_line_bytes)
        self.next_line = line  # number of the next complete line
        self.offset = offset  # byte offset just after the last line handed out in a batch
        self.partial: list[bytes] = []  # pieces of the line waiting for its LF
        self.partial_bytes = 0  # its full length so far
        self.pending: list[bytes] = []
        self.pending_bytes = 0  # bytes of the pending lines as read, newlines included
        self.long: dict[int, int] = {}  # pending line over the limit -> its full length
        self.early: dict[int, str] = {}  # pending line -> why it is quarantined whatever it holds
        self.pending_since: float | None = None
        self.pending_first = line

    def feed(self, data: bytes, final: bool = False, cut_short: bool = False) -> None:
        """The next bytes of the input; `final`: the input ended, so a last line without its
        LF is complete (`cut_short`: the archive ended early, so that line is incomplete)."""
        cut = data.rfind(b"\n")
        if cut < 0 and not final:
            self._grow(data)
            return
        head, rest = (data, b"") if cut < 0 else (data[: cut + 1], data[cut + 1 :])
        carried = self.partial_bytes
        fulls: dict[int, int] = {}
        if carried:  # the waiting line ends here: its pieces are joined once
            end = head.find(b"\n")
            self._grow(head if end < 0 else head[:end])
            fulls[0] = self.partial_bytes
            first = b"".join(self.partial)
            self.partial, self.partial_bytes = [], 0
            lines = [first, *_split(b"" if end < 0 else head[end + 1 :])]
        else:
            lines = _split(head)
        if lines:
            if not self.pending:
                self.pending_since = time.monotonic()
                self.pending_first = self.next_line
            if carried + len(head) > self.max_line_bytes:
                for i, ln in enumerate(lines):
                    full = fulls.get(i, len(ln))
                    if full > self.max_line_bytes:
                        self.long[self.next_line + i] = full
                        self.early[self.next_line + i] = self.limits.too_long(full)
                        lines[i] = ln[: self.excerpt]
            if cut_short and not head.endswith(b"\n"):
                self.early[self.next_line + len(lines) - 1] = (
                    "incomplete last line: the archive ends inside it"
                )
            self.pending.extend(lines)
            self.pending_bytes += carried + len(head)
            self.next_line += len(lines)
        self._grow(rest)

    def _grow(self, piece: bytes) -> None:
        """Add to the waiting line; past the limit only its excerpt is kept."""
        if not piece:
            return
        within = self.partial_bytes <= self.max_line_bytes
        self.partial_bytes += len(piece)
        if self.partial_bytes <= self.max_line_bytes:
            self.partial.append(piece)
        elif within:  # it just went over: keep the excerpt, drop the rest from now on
            self.partial = [b"".join([*self.partial, piece[: self.excerpt]])[: self.excerpt]]

    def cut(self, batch_size: int, everything: bool) -> list[Batch]:
        """Micro-batches of `batch_size` pending lines (`everything`: the rest too, however few)."""
        out = []
        start = 0
        first = self.pending_first
        offset = self.offset
        while len(self.pending) - start >= batch_size or (everything and start < len(self.pending)):
            lines = self.pending[start : start + batch_size]
            end = first + len(lines)
            size = sum(map(len, lines)) + len(lines)
            size += sum(k - len(lines[n - first]) for n, k in self.long.items() if first <= n < end)
            # a last line may lack its newline
            offset = min(offset + size, self.offset + self.pending_bytes)
            early = {n: r for n, r in self.early.items() if first <= n < end}
            out.append(Batch(first, lines, offset, early))
            for n in early:
                del self.early[n]
                self.long.pop(n, None)
            first += len(lines)
            start += len(lines)
        if start:
            del self.pending[:start]
            self.pending_bytes -= offset - self.offset
            self.offset = offset
            self.pending_first = first
            self.pending_since = time.monotonic() if self.pending else None
        return out

    def reset(self) -> None:
        """The file was replaced: forget a partial last line, number the new file from 1."""
        self.partial, self.partial_bytes = [], 0
        self.next_line = 1
        self.offset = 0
        self.pending_first = 1
