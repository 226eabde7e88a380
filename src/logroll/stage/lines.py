"""Physical lines of a byte stream (LF, CRLF or CR), in blocks, with bounded memory: a line over
the limit in force is kept as its first excerpt bytes only, with its offset and full length."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator

from .dialect import Limits


class LineLimit:
    """The line limit in force when a block is cut (the header's is larger; lines of the block
    that holds the header are checked again against max_line_bytes by the sanitizer)."""

    def __init__(self, n: int) -> None:
        self.n = n


class Block:
    """Physical lines of one chunk of input, without their endings. `special` marks lines that
    were cut (index -> (full length, flag)); flag 1: over the line limit, 2: incomplete last line
    of a truncated archive."""

    __slots__ = ("lines", "body", "base", "special", "_offs", "spec")

    def __init__(
        self,
        lines: list[bytes],
        body: bytes | None,
        base: int,
        special: dict[int, tuple[int, int]] | None = None,
    ) -> None:
        self.lines, self.body, self.base = lines, body, base
        self.special = special or {}
        self._offs = None
        self.spec = None  # the sanitizer's sorted list of lines needing a closer look

    def offset(self, i: int) -> int:
        if self.body is None:
            return self.base
        return self.base + self._offsets()[i]

    def _offsets(self) -> list[int]:
        if self._offs is None:
            assert self.body is not None
            self._offs = [0, *itertools.accumulate(map(len, self.body.splitlines(keepends=True)))]
        return self._offs

    def ending(self, i: int) -> bytes:
        """Line i's own line break (LF, CRLF or CR): a quoted field spanning lines keeps the
        bytes it had (LF where unknown: a cut line, or the last one)."""
        if self.body is None or i in self.special:
            return b"\n"
        offs = self._offsets()
        return self.body[offs[i] + len(self.lines[i]) : offs[i + 1]] or b"\n"


def blocks(
    chunks: Iterator[bytes], limits: Limits, cut_short: list | None, cap: LineLimit
) -> Iterator[Block]:
    """The input as blocks of physical lines (LF, CRLF or CR). A line over the limit in force
    (cap) is kept as its first excerpt bytes only, so memory stays bounded."""
    carry = b""
    offset = 0
    skipping = False  # inside a line over the limit
    long_head, long_len, long_off = b"", 0, 0
    ex = limits.excerpt_bytes

    def last_end(buf: bytes) -> int:
        cut = max(buf.rfind(b"\n"), buf.rfind(b"\r"))
        if cut == len(buf) - 1 and cut >= 0 and buf[cut] == 13:  # maybe the first half of a CRLF
            cut = max(buf.rfind(b"\n", 0, cut), buf.rfind(b"\r", 0, cut))
        return cut

    for chunk in chunks:
        if not chunk:
            continue
        buf = carry + chunk if carry else chunk
        carry = b""
        cut = last_end(buf)
        if skipping:
            if cut < 0:
                long_len += len(buf)
                continue
            ends = [x for x in (buf.find(b"\n"), buf.find(b"\r")) if x >= 0]
            j = min(ends)
            long_len += j
            end = j + 2 if buf[j : j + 2] == b"\r\n" else j + 1
            yield Block([long_head], None, long_off, {0: (long_len, 1)})
            offset = long_off + long_len + (end - j)
            buf = buf[end:]
            skipping = False
            cut = last_end(buf)
        if cut < 0:
            if len(buf) > cap.n:
                skipping, long_head, long_len, long_off = True, buf[:ex], len(buf), offset
            else:
                carry = buf
            continue
        if buf[cut] == 13 and cut + 1 < len(buf) and buf[cut + 1] == 10:
            cut += 1
        body, carry = buf[: cut + 1], buf[cut + 1 :]
        lines = body.splitlines()
        special = {}
        if len(body) > cap.n and max(map(len, lines)) > cap.n:
            for i, ln in enumerate(lines):
                if len(ln) > cap.n:
                    special[i] = (len(ln), 1)
                    lines[i] = ln[:ex]
        yield Block(lines, body, offset, special)
        offset += len(body)
        if len(carry) > cap.n:
            skipping, long_head, long_len, long_off = True, carry[:ex], len(carry), offset
            carry = b""
    if skipping:
        yield Block([long_head], None, long_off, {0: (long_len, 1)})
    elif carry:  # the last line; it may still end with a lone CR
        text = carry[:-1] if carry.endswith(b"\r") else carry
        if cut_short and text is carry:  # no line end, and the archive ended early: incomplete
            yield Block([text[:ex]], None, offset, {0: (len(text), 2)})
        elif len(text) > cap.n:
            yield Block([text[:ex]], None, offset, {0: (len(text), 1)})
        else:
            yield Block([text], None, offset)


class LineSource:
    """Numbered physical lines, one at a time (next) or the rest of a block at once (peek/consume).
    Lines given back after a runaway quote are handed out again first, with their numbers."""

    def __init__(self, blocks: Iterator[Block]) -> None:
        self.blocks = blocks
        self.blk: Block | None = None
        self.i = 0
        self.lines = 0  # physical lines handed out
        self.pending: deque = deque()

    def _fill(self) -> bool:
        while self.blk is None or self.i >= len(self.blk.lines):
            self.blk = next(self.blocks, None)
            self.i = 0
            if self.blk is None:
                return False
        return True

    def next(self) -> tuple[bytes, int, int, int, int, bytes] | None:
        """(text, byte offset, length, flag, line number, line break) of the next line, or None
        at the end."""
        if self.pending:
            return self.pending.popleft()
        if not self._fill():
            return None
        b, i = self.blk, self.i
        assert b is not None
        self.i += 1
        self.lines += 1
        length, flag = b.special.get(i, (len(b.lines[i]), 0))
        return (b.lines[i], b.offset(i), length, flag, self.lines, b.ending(i))

    def peek(self) -> tuple[Block, int] | None:
        """(block, index) of the next line when bulk reading is possible."""
        if self.pending or not self._fill():
            return None
        return self.blk, self.i

    def consume(self, k: int) -> None:
        self.i += k
        self.lines += k


def excerpt(b: bytes, limits: Limits) -> str:
    return b[: limits.excerpt_bytes].decode("utf-8", "backslashreplace")
