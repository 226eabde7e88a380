"""streaming/lines.py: bytes cut into numbered lines and micro-batches, with bounded memory.

Checked against a plain reference (split the whole input at once) over random inputs cut into
random reads: the same lines, numbers, byte offsets and too-long flags, whatever the cuts.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from logroll.stage.dialect import Limits
from logroll.streaming.lines import LineBuffer

LIMIT, EXCERPT = 12, 5
LIMITS = Limits(
    max_line_bytes=LIMIT, excerpt_bytes=EXCERPT, chunk_bytes=4, max_quoted_bytes=1, duckdb_max_line_size=100
)


def reference(data: bytes, first: int = 1) -> list[tuple[int, bytes, int | None, int]]:
    """(number, line or its excerpt, full length when over LIMIT, offset after it) per line."""
    out = []
    offset = 0
    lines = data.split(b"\n")
    complete = lines[:-1] + ([lines[-1]] if lines[-1] else [])
    for i, ln in enumerate(complete):
        offset = min(offset + len(ln) + 1, len(data))
        long = len(ln) if len(ln) > LIMIT else None
        out.append((first + i, ln[:EXCERPT] if long else ln, long, offset))
    return out


def run(chunks: list[bytes], batch: int) -> list[tuple[int, bytes, int | None, int]]:
    buf = LineBuffer(1, 0, LIMITS)
    got = []

    def take(everything: bool) -> None:
        for b in buf.cut(batch, everything):
            assert b.last_line == b.first_line + len(b.lines) - 1
            for i, ln in enumerate(b.lines):
                n = b.first_line + i
                offset = b.end_offset if n == b.last_line else None
                reason = b.early.get(n)
                long = int(reason.split("(")[1].split()[0]) if reason else None
                got.append((n, ln, long, offset))

    for c in chunks:
        buf.feed(c)
        # the waiting line never holds more than the limit (or the excerpt of a longer one)
        assert sum(map(len, buf.partial)) <= LIMIT
        take(False)
    buf.feed(b"", final=True)
    take(True)
    assert buf.pending == [] and buf.early == {} and buf.long == {}
    return got


lines_st = st.lists(
    st.one_of(st.binary(max_size=6), st.binary(min_size=10, max_size=40)).map(
        lambda b: b.replace(b"\n", b"")
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(
    lines=lines_st,
    last_lf=st.booleans(),
    cuts=st.lists(st.integers(0, 200), max_size=8),
    batch=st.integers(1, 4),
)
def test_lines_offsets_and_long_lines_match_the_reference(lines, last_lf, cuts, batch):
    data = b"\n".join(lines) + (b"\n" if last_lf and lines else b"")
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in zip(points, points[1:], strict=False)]
    got = run(chunks, batch)
    want = reference(data)
    assert [(n, ln, long) for n, ln, long, _ in got] == [(n, ln, long) for n, ln, long, _ in want]
    # each micro-batch ends at the reference's offset after its last line
    ends = {n: off for n, _, _, off in got if off is not None}
    assert ends == {n: off for n, _, _, off in want if n in ends}


def test_a_line_without_newline_is_never_copied_whole():
    """64 MiB without a newline, read 1 MiB at a time: the waiting line keeps its excerpt only."""
    buf = LineBuffer(1, 0, Limits())
    piece = b"x" * (1 << 20)
    for _ in range(64):
        buf.feed(piece)
        assert sum(map(len, buf.partial)) <= 4 << 20
    assert sum(map(len, buf.partial)) == 10_000 and buf.partial_bytes == 64 << 20
    buf.feed(b"\n{}\n")
    (b,) = buf.cut(10, everything=True)
    assert b.lines == [b"x" * 10_000, b"{}"]
    assert b.early == {1: f"line too long ({64 << 20} bytes > {4 << 20})"}
    assert b.end_offset == (64 << 20) + 4
