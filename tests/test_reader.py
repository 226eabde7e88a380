"""The reading layer (stage/reader.py): the hostile cases of issues 13/14, a fuzzer of the layer
alone (hypothesis), a fast-path vs sanitizer differential, compression and encodings.
(tests/test_pollution.py runs the same kind of damage through the real staging.)

Every example asserts the accounting identity through read_checked/verify, checks every quarantine
entry's line number against the file's own physical lines, and checks that no accepted row
differs from the clean file's rows unless its line was damaged in a way that keeps the structure
(a literal quote inside a field, a second table, ...)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logroll.stage import reader as R
from logroll.stage import reader_jsonl as RJ
from logroll.stage.decode import compression_of
from logroll.stage.grammar import Grammar
from logroll.stage.reader import Dialect, FileUnusable, Limits
from logroll.stage.scan import read_header_plain
from pollution import SMALL, apply, polluted
from reader_driver import duckdb_read, read_checked

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "data" / "reader_corpus"
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
PLAIN = Dialect()


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("SET enable_progress_bar=false")
    yield c
    c.close()


def _write(tmp_path, data: bytes, name="f.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def phys_lines(data: bytes) -> list[bytes]:
    """The reference split: physical lines end at CRLF, CR or LF."""
    if not data:
        return []
    parts = re.split(rb"\r\n|\r|\n", data)
    if parts and parts[-1] == b"":
        parts.pop()
    return parts


def norm(v):
    if v is None:
        return ""
    return v.replace("\r\n", "\n").replace("\r", "\n")


def check_result(r, data: bytes, dialect=PLAIN):
    """Invariants every read must hold."""
    p = r.prep
    assert r.verdict.ok, (r.verdict.problems, r.attempts, p.route)
    assert len(r.attempts) <= 2
    # accounting: every physical record is exactly one kind (verify checked the sum; here we also
    # check the physical line count against the reference split)
    if not compression_of(p.source, dialect) != "none" and codecs_is_utf8(dialect):
        ref = phys_lines(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
        assert p.lines == len(ref), (p.lines, len(ref))
        for line, reason, raw in r.quarantine:
            assert 1 <= line <= len(ref)
            src = ref[line - 1]
            first = raw.lstrip("\r\n").split("\n")[0].rstrip("\r")
            try:
                want = src.decode("utf-8")
            except UnicodeDecodeError:
                continue  # DuckDB shows invalid bytes as '?'
            if "line too long" in reason:
                assert want.startswith(first[:50])
            else:
                assert first == want[: len(first)] and (len(first) == len(want) or len(first) >= 190), (
                    line,
                    reason,
                    raw,
                    want,
                )
    lines = [q[0] for q in r.quarantine]
    assert len(lines) == len(set(lines)), "one quarantine entry per record"
    n = (
        p.header_records
        + p.skipped
        + p.blank
        + len(p.early_rejects)
        + (len(r.rows) if isinstance(r.rows, list) else r.rows)
        + len(r.verdict.rejects)
    )
    assert n == p.records


def codecs_is_utf8(d: Dialect) -> bool:
    import codecs

    return codecs.lookup(d.encoding).name in ("utf-8", "utf-8-sig")


def read(con, tmp_path, data: bytes, dialect=PLAIN, limits=R.DEFAULT_LIMITS, name="f.csv", columns=None):
    p = _write(tmp_path, data, name)
    r = read_checked(con, p, dialect, limits, spool_dir=tmp_path, columns=columns)
    check_result(r, data, dialect)
    r.prep.cleanup()
    return r


# ---------------------------------------------------------------------------------------------
# the cases named in issue 13
H = b"id,ts,amount,name\n"


def test_line_over_limit_is_one_reject_and_reading_continues(con, tmp_path):
    data = H + b"1,t,2,a\n" + b"2,t,3," + b"x" * (9 << 20) + b"\n3,t,4,c\n"
    r = read(con, tmp_path, data)
    assert [q[:2] for q in r.quarantine] == [(3, f"line too long ({(9 << 20) + 6:,} bytes > {4 << 20:,})")]
    assert len(r.quarantine[0][2]) == Limits().excerpt_bytes
    assert r.prep.early_rejects[0].offset == len(H) + 8 and r.prep.early_rejects[0].length == (9 << 20) + 6
    assert r.rows == [("1", "t", "2", "a"), ("3", "t", "4", "c")]


def test_stray_quote_costs_one_line_in_a_big_file(con, tmp_path):
    rows = b"".join(b"%d,2021-01-30 11:00:00,%d,name%d\n" % (i, i, i) for i in range(250_000))
    data = H + b'0,2021-01-30,1,ok\n1,"oops,2,x\n' + rows
    r = read(con, tmp_path, data)
    assert [q[0] for q in r.quarantine] == [3]
    assert (
        "never closes" in r.quarantine[0][1]
        or "grows past" in r.quarantine[0][1]
        or "spans" in r.quarantine[0][1]
    )
    assert len(r.rows) == 250_001


def test_stray_quote_small_file(con, tmp_path):
    data = H + b'1,"a,2,x\n' + b"".join(b"%d,t,%d,n\n" % (i, i) for i in range(50))
    r = read(con, tmp_path, data)
    assert [q[0] for q in r.quarantine] == [2]
    assert len(r.rows) == 50


def test_unterminated_quote_in_header_fails_the_file_with_a_reason(con, tmp_path):
    p = _write(tmp_path, b'a,b,c,"d\n1,2,3,4\n')
    with pytest.raises(FileUnusable, match="header"):
        read_checked(con, p, spool_dir=tmp_path)


def test_one_empty_field_too_many_is_rejected(con, tmp_path):
    data = H + b"1,2021-01-30 10:00:00,5,Al\n2,2021-01-30 11:00:00,,Bob,\n3,2021-01-30 12:00:00,7,Cy\n"
    r = read(con, tmp_path, data)
    assert [(q[0], q[1]) for q in r.quarantine] == [(3, "too many columns (5, expected 4)")]
    assert ("2", "2021-01-30 11:00:00", None, "Bob") not in r.rows
    assert len(r.rows) == 2


@pytest.mark.parametrize("ending", [b"\r", b"\r\n", b"\n"])
def test_line_endings(con, tmp_path, ending):
    data = ending.join([b"a,b", b"1,2", b"3,4", b"5"]) + ending
    r = read(con, tmp_path, data)
    assert r.rows == [("1", "2"), ("3", "4")]
    assert [q[0] for q in r.quarantine] == [4]


def test_mixed_endings(con, tmp_path):
    data = b"a,b\n1,2\r\n3,4\r5,6\n\r\n7\r8,9"
    r = read(con, tmp_path, data)
    assert r.rows == [("1", "2"), ("3", "4"), ("5", "6"), ("8", "9")]
    assert [q[0] for q in r.quarantine] == [6]
    assert r.prep.blank == 1


def test_nul_invalid_utf8_truncated(con, tmp_path):
    data = H + b"1,t,2,a\x00b\n2,t,\xff\xfe,b\n3,t,4,c\n4,t,5"
    r = read(con, tmp_path, data)
    assert [q[0] for q in r.quarantine] == [2, 3, 5]
    assert r.rows == [("3", "t", "4", "c")]


def test_second_table_preamble_multirow_header(con, tmp_path):
    data = b"report of 2021\nexported by x\n" + H + H + b"1,t,2,a\n\nx,y\n1,2\n3,4\n"
    r = read(con, tmp_path, data, Dialect(skip_rows=2))
    assert r.prep.skipped == 2
    assert ("id", "ts", "amount", "name") in r.rows  # a second header row is data (a bad row later)
    assert [q[0] for q in r.quarantine] == [7, 8, 9]


def test_bom_and_utf16(con, tmp_path):
    r = read(con, tmp_path, b"\xef\xbb\xbfa,b\n1,2\n")
    assert r.prep.header == ["a", "b"] and not r.prep.spooled
    data = "a,b\n1,é\n2,ü\n".encode("utf-16")
    p = _write(tmp_path, data)
    rr = read_checked(con, p, spool_dir=tmp_path)
    assert rr.verdict.ok and rr.rows == [("1", "é"), ("2", "ü")]


@pytest.mark.parametrize("enc", ["latin-1", "cp1252", "utf-16-le", "utf-16"])
def test_encodings(con, tmp_path, enc):
    text = "a;b\n1;é\n2;Ü\n"
    if enc == "cp1252":
        text += "3;€\n"
    data = text.encode(enc)
    p = _write(tmp_path, data)
    r = read_checked(con, p, Dialect(delimiter=";", encoding=enc), spool_dir=tmp_path)
    assert r.verdict.ok
    assert [v for _, v in r.rows][:2] == ["é", "Ü"]


def test_cp1252_undefined_byte_is_a_reject(con, tmp_path):
    p = _write(tmp_path, b"a,b\n1,\x81\n2,x\n")
    r = read_checked(con, p, Dialect(encoding="cp1252"), spool_dir=tmp_path)
    assert r.verdict.ok and r.rows == [("2", "x")]
    assert r.quarantine[0][:2] == (2, "not valid cp1252")


def test_comment_and_header_false(con, tmp_path):
    data = b"# exported\n1,2\n# note\n3,4\n5\n"
    r = read(con, tmp_path, data, Dialect(header=False, comment="#"), columns=["a", "b"])
    assert r.rows == [("1", "2"), ("3", "4")]
    assert r.prep.skipped == 2 and [q[0] for q in r.quarantine] == [5]


def test_quote_none(con, tmp_path):
    data = b'a,b\n1,"x\n2,y"\n'
    r = read(con, tmp_path, data, Dialect(quote=None))
    assert r.rows == [("1", '"x'), ("2", 'y"')]


def test_backslash_escape(con, tmp_path):
    data = b'a,b\n1,"x\\"y"\n2,"p,q"\n'
    r = read(con, tmp_path, data, Dialect(escape="\\"))
    assert r.rows == [("1", 'x"y'), ("2", "p,q")]


def test_one_column_file_blank_lines_are_values(con, tmp_path):
    data = b"a\n1\n\n2\n3,4\n"
    r = read(con, tmp_path, data)
    assert [norm(x[0]) for x in r.rows] == ["1", "", "2"]
    assert [q[0] for q in r.quarantine] == [5]


def test_quoted_multiline_records_keep_physical_line_numbers(con, tmp_path):
    data = H + b'1,t,"a\nb\nc",x\n2,t\n3,t,"d\n\ne",y\n4\n5,t,6,z\n'
    r = read(con, tmp_path, data)
    assert not r.prep.spooled
    assert [q[0] for q in r.quarantine] == [5, 9]
    assert r.rows[1] == ("3", "t", "d\n\ne", "y")


# ---------------------------------------------------------------------------------------------
# compression
@pytest.mark.parametrize("kind,comp", [("gz", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress)])
def test_compressed(con, tmp_path, kind, comp):
    body = H + b"".join(b"%d,t,%d,n\n" % (i, i) for i in range(20000)) + b"x,y\n"
    r = read_checked(con, _write(tmp_path, comp(body), f"f.csv.{kind}"), spool_dir=tmp_path)
    assert r.verdict.ok and len(r.rows) == 20000 and [q[0] for q in r.quarantine] == [20002]
    assert r.prep.failure is None


def test_zstd(con, tmp_path):
    import zstandard

    body = H + b"".join(b"%d,t,%d,n\n" % (i, i) for i in range(400000))
    z = zstandard.ZstdCompressor().compress(body)
    r = read_checked(con, _write(tmp_path, z, "f.csv.zst"), spool_dir=tmp_path)
    assert r.verdict.ok and len(r.rows) == 400000 and r.prep.failure is None
    r = read_checked(con, _write(tmp_path, z[: len(z) // 2], "g.csv.zst"), spool_dir=tmp_path)
    assert r.prep.failure and "truncated" in r.prep.failure
    assert r.verdict.ok and 0 < len(r.rows) < 400000


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.97])
def test_truncated_gzip_counts_what_came_before(con, tmp_path, cut):
    body = H + b"".join(b"%d,t,%d,n\n" % (i, i) for i in range(50000))
    gz = gzip.compress(body)
    r = read_checked(con, _write(tmp_path, gz[: int(len(gz) * cut)], "f.csv.gz"), spool_dir=tmp_path)
    assert r.prep.failure and "truncated" in r.prep.failure
    assert r.verdict.ok
    n = len(r.rows)
    assert 0 < n < 50000
    assert r.rows == [(str(i), "t", str(i), "n") for i in range(n)]  # all complete, in order
    last = r.quarantine[-1]
    assert last[0] == n + 2 and "archive ends" in last[1]


def test_corrupt_gzip_fails_cleanly(con, tmp_path):
    body = H + b"".join(b"%d,t,%d,n\n" % (i, i) for i in range(5000))
    gz = bytearray(gzip.compress(body))
    gz[len(gz) // 2] ^= 0xFF
    r = read_checked(con, _write(tmp_path, bytes(gz), "f.csv.gz"), spool_dir=tmp_path)
    assert r.prep.failure and "corrupt" in r.prep.failure


def test_gzip_multi_member(con, tmp_path):
    a = gzip.compress(H + b"1,t,2,a\n")
    b = gzip.compress(b"2,t,3,b\n")
    r = read_checked(con, _write(tmp_path, a + b, "f.csv.gz"), spool_dir=tmp_path)
    assert r.verdict.ok and len(r.rows) == 2 and r.prep.failure is None


# ---------------------------------------------------------------------------------------------
# width and length are linear
def test_million_column_header_is_fast(con, tmp_path):
    names = [f"col{i}" for i in range(1_000_000)]
    data = (",".join(names) + "\n").encode() + (",".join("1" for _ in names) + "\n").encode()
    p = _write(tmp_path, data)
    g = Grammar(Dialect())
    t = time.process_time()
    prep = R.prepare(p, Dialect(), Limits(), tmp_path)
    assert not R.header_problems(prep.header)
    assert len(prep.header) == 1_000_000 and prep.expected_duckdb == 1
    assert time.process_time() - t < 1.0  # CPU seconds: the machine is shared
    # quoted names: the regex path
    data = (",".join(f'"c,{i}"' for i in range(1_000_000)) + "\n").encode()
    p = _write(tmp_path, data, "q.csv")
    t = time.process_time()
    h = read_header_plain(p, g, Limits())
    header = g.split(h[0])
    assert header[5] == "c,5" and len(header) == 1_000_000
    assert time.process_time() - t < 1.5


# ---------------------------------------------------------------------------------------------
# the pollution fuzzer
def run_fuzz_case(con, tmp_path, header, rows, data, spans, damages, seed, name="f.csv"):
    ncols = len(header)
    bad, skip, allowance, header_damaged, strict = apply(data, spans, damages, seed, ncols)
    p = tmp_path / name
    p.write_bytes(bad)
    try:
        r = read_checked(con, p, Dialect(skip_rows=skip), SMALL, spool_dir=tmp_path)
    except FileUnusable as e:
        assert header_damaged or "header" in str(e) and strict is False or skip, (str(e), damages)
        return None
    try:
        check_result(r, bad, Dialect(skip_rows=skip))
        got = [tuple(norm(v) for v in row) for row in r.rows]
        if strict and r.prep.header == header:
            clean = Counter(tuple(norm(v) for v in row) for row in rows)
            extra = Counter(got) - clean
            assert sum(extra.values()) <= allowance, (extra, damages)
            for row in got:
                assert len(row) == ncols
        for row in got:
            assert not any("\x00" in v for v in row), row
        # every row's physical line (row_lines) holds that row: checked on one-line records
        rl = R.row_lines(r.prep, [q[0] for q in r.verdict.rejects], SMALL)
        assert len(rl) == len(r.rows)
        ref = phys_lines(bad)
        g = Grammar(Dialect())
        for ln, row in zip(rl.tolist(), r.rows, strict=True):
            text = ref[ln - 1]
            n, st = g.fields(text)
            if (
                st == "ok"
                and not any("\n" in (v or "") for v in row)
                and b"\xff" not in text
                and b"\xef" not in text
            ):
                assert [norm(v) for v in row] == [
                    x.replace("\r", "\n") for x in g.split(text)
                ] or ncols == 1, (ln, row, text)
    finally:
        r.prep.cleanup()
    return r


def save_corpus(bad: bytes, damages, seed, skip=0):
    """A failing example kept for a look (LOGROLL_FUZZ_SAVE=folder), to add to the corpus by hand."""
    keep = os.environ.get("LOGROLL_FUZZ_SAVE")
    if not keep:
        return
    Path(keep).mkdir(parents=True, exist_ok=True)
    (Path(keep) / f"fuzz-{'-'.join(damages) or 'clean'}-{seed}-skip{skip}.csv").write_bytes(bad)


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(polluted())
def test_pollution_fuzzer(con, tmp_path, case):
    header, rows, data, spans, damages, seed = case
    try:
        run_fuzz_case(con, tmp_path, header, rows, data, spans, damages, seed)
    except Exception:
        bad, skip = apply(data, spans, damages, seed, len(header))[:2]
        save_corpus(bad, damages, seed, skip)
        raise


@settings(
    max_examples=FUZZ_EXAMPLES // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(polluted())
def test_fast_path_agrees_with_sanitizer(con, tmp_path, case):
    """Where the fast path is taken, a forced sanitizer pass must count the same and DuckDB must
    return the same rows from both."""
    header, rows, data, spans, damages, seed = case
    bad = apply(data, spans, damages, seed, len(header))[0]
    p = tmp_path / "d.csv"
    p.write_bytes(bad)
    try:
        fast = R.prepare(p, Dialect(), SMALL, tmp_path)
    except FileUnusable:
        return
    if fast.spooled:
        fast.cleanup()
        return
    slow = R.prepare(p, Dialect(), SMALL, tmp_path, force_sanitize=True)
    try:
        assert (fast.records, fast.blank, fast.lines, fast.header) == (
            slow.records,
            slow.blank,
            slow.lines,
            slow.header,
        )
        a, ra = duckdb_read(con, fast)
        b, rb = duckdb_read(con, slow)
        va = R.verify(fast, len(a), [(x, y) for x, _, y in ra])
        vb = R.verify(slow, len(b), [(x, y) for x, _, y in rb])
        if va.ok:  # then both must hold the same rows and rejects
            assert vb.ok
            assert [tuple(map(norm, x)) for x in a] == [tuple(map(norm, x)) for x in b]
            assert [x[0] for x in va.rejects] == sorted(
                [x[0] for x in vb.rejects] + [e.line for e in slow.early_rejects]
            )
    except Exception:
        save_corpus(bad, ["differential", *damages], seed)
        raise
    finally:
        fast.cleanup()
        slow.cleanup()


def test_corpus(con, tmp_path):
    """Every file kept in corpus/ still reads with the invariants."""
    for f in sorted(CORPUS.glob("*.csv")):
        data = f.read_bytes()
        skip = int(m.group(1)) if (m := re.search(r"skip(\d)", f.name)) else 0
        try:
            r = read_checked(con, f, Dialect(skip_rows=skip), SMALL, spool_dir=tmp_path)
        except FileUnusable:
            continue
        check_result(r, data, Dialect(skip_rows=skip))
        r.prep.cleanup()


# ---------------------------------------------------------------------------------------------
# scale: DuckDB's reject line numbers across its 16 MiB buffers, mapped back to physical lines
@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_physical_line_numbers_at_scale(con, tmp_path, ending):
    """~40 MB: a quoted two-line value every 37 records, a bad row every 997; every quarantine
    line must be the physical line of the bad row (taken from the file itself)."""
    out = [b"id,note,n,name"]
    bad_lines = []
    line = 2
    for i in range(600_000):
        if i % 997 == 500:
            out.append(b"%d,bad" % i)  # too few columns
            bad_lines.append(line)
            line += 1
        elif i % 37 == 3:
            out.append(b'%d,"two' % i)
            out.append(b'lines, and a ""quote""",%d,name%d' % (i, i))
            line += 2
        else:
            out.append(b"%d,plain note %d,%d,name%d" % (i, i, i, i))
            line += 1
    data = ending.join(out) + ending
    p = _write(tmp_path, data, "big.csv")
    r = read_checked(con, p, spool_dir=tmp_path)
    assert r.attempts == ["fast"], r.prep.route
    assert r.verdict.ok, r.verdict.problems
    assert [q[0] for q in r.quarantine] == bad_lines
    ref = phys_lines(data)
    assert all(ref[q[0] - 1].decode() == q[2] for q in r.quarantine)
    assert len(r.rows) == 600_000 - len(bad_lines)
    rl = R.row_lines(r.prep, [q[0] for q in r.verdict.rejects])
    assert len(rl) == len(r.rows)
    assert all(
        ref[ln - 1].split(b",")[0].decode() == row[0] for ln, row in zip(rl.tolist(), r.rows, strict=True)
    )
    # the same file through the sanitizer gives the same lines
    prep = R.prepare(p, Dialect(), Limits(), tmp_path, force_sanitize=True)
    assert [e.line for e in prep.early_rejects] == bad_lines
    prep.cleanup()


# ---------------------------------------------------------------------------------------------
# JSON lines: the prepared file, read by logroll's own line splitter (ref_jsonl: jsonl.line_chunks
# as of commit 4984ea8), holds exactly expected_reader non-blank lines, each mapped to its
# physical source line
def _jsonl_reader_lines(pj):
    from logroll.engines import jsonl as logroll_jsonl

    got = []
    for t in logroll_jsonl.line_chunks(pj.path_for_reader):
        got += t.column("line").to_pylist()
    if pj.line_map is not None:
        got = [int(pj.line_map[n - 1]) for n in got]
    return got


JSON_DAMAGE = ["cr", "crlf", "blank", "nul", "long", "gzip", "array", "truncate_gz", "ws_line", "bom"]


@settings(
    max_examples=FUZZ_EXAMPLES // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["a", "b", "c"]), st.one_of(st.integers(), st.text(max_size=5))),
        max_size=30,
    ),
    st.lists(st.sampled_from(JSON_DAMAGE), max_size=3),
    st.integers(0, 2**16),
)
def test_jsonl_fuzzer(tmp_path, objs, damages, seed):
    import json as js
    import random

    rnd = random.Random(seed)
    lines = [js.dumps(o).encode() for o in objs]
    if "blank" in damages and lines:
        lines.insert(rnd.randrange(len(lines)), b"")
    if "ws_line" in damages and lines:
        lines.insert(rnd.randrange(len(lines)), b"  \t ")
    if "nul" in damages and lines:
        i = rnd.randrange(len(lines))
        lines[i] = lines[i] + b"\x00"
    if "long" in damages:
        lines.append(b'{"a": "' + b"x" * 5000 + b'"}')
    ending = b"\r" if "cr" in damages else b"\r\n" if "crlf" in damages else b"\n"
    if "array" in damages and "long" not in damages and "nul" not in damages:
        data = b"[" + (b"," + ending).join(ln for ln in lines if ln.strip()) + b"]"
    else:
        data = ending.join(lines) + (ending if lines else b"")
    if "bom" in damages:
        data = b"\xef\xbb\xbf" + data
    name = "f.jsonl"
    if "gzip" in damages or "truncate_gz" in damages:
        data = gzip.compress(data)
        if "truncate_gz" in damages:
            data = data[: max(10, len(data) * 2 // 3)]
        name += ".gz"
    p = _write(tmp_path, data, name)
    pj = RJ.prepare_jsonl(p, SMALL, tmp_path)
    try:
        got = _jsonl_reader_lines(pj)
        assert len(got) == pj.expected_reader, (pj.route, pj.expected_reader, len(got))
        assert pj.records == pj.blank + len(pj.early_rejects) + pj.expected_reader
        assert len(set(got) | {e.line for e in pj.early_rejects}) == len(got) + len(pj.early_rejects)
        if pj.failure is None and "truncate_gz" not in damages:
            assert all(1 <= n <= max(pj.lines, 1) for n in got)
            if "array" not in damages or "long" in damages or "nul" in damages:
                assert pj.lines == len(lines)
    finally:
        pj.cleanup()


def test_jsonl_array_line_numbers(tmp_path):
    data = b'[\n {"a": 1},\n {"a": 2,\n  "b": [1, 2]},\n {"a": 3}\n]\n'
    pj = RJ.prepare_jsonl(_write(tmp_path, data, "a.json"), Limits(), tmp_path)
    assert pj.route == ["a JSON array"] and pj.records == 3
    assert _jsonl_reader_lines(pj) == [2, 3, 5]
    assert pj.lines == 6


def test_jsonl_long_line_bounded(tmp_path):
    data = b'{"a": 1}\n' + b'{"a": "' + b"y" * (9 << 20) + b'"}\n{"a": 3}\n'
    pj = RJ.prepare_jsonl(_write(tmp_path, data), Limits(), tmp_path)
    assert [(e.line, e.length) for e in pj.early_rejects] == [(2, (9 << 20) + 9)]
    assert _jsonl_reader_lines(pj) == [1, 3]
