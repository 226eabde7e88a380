"""Properties of the impressions pipeline, checked with hypothesis against a plain-Python oracle.

(a) dates: every accepted format round-trips, garbage is a UsageError;
(b) dialects: plain, quoted-everything, CRLF, BOM, shuffled and extra columns give the same bytes
    (and a single DuckDB read_csv over a glob of such files does not: that is why logroll reads
    file by file with the dialect spelled out);
(c) dedupe: once over all files = file by file in any order (incrementally) = twice;
(d) bad rows at random lines are quarantined with their line and reason, and the counts add up.

The runs go through the Python API in this process (the CLI is a thin layer over it, and the
contract tests cover the CLI); each example gets fresh folders.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import logroll
from logroll import build
from logroll.dates import parse_date
from logroll.errors import UsageError

from conftest import tree_bytes, tree_mtimes

HEADER = ["IMPRESSION_ID", "IMPRESSION_DATETIME", "CAMPAIGN_ID", "USER_ID", "DEVICE_TYPE"]
TS = "%Y-%m-%d %H:%M:%S"
FIRST = dt.datetime(2021, 1, 29)

# Each example runs the pipeline several times; LOGROLL_PROP_EXAMPLES=200 for a long hunt.
SLOW = settings(
    max_examples=int(os.environ.get("LOGROLL_PROP_EXAMPLES", "10")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    # The API logs a line per file; hundreds of examples would drown pytest's output.
    log = logging.getLogger("logroll")
    level = log.level
    log.setLevel(logging.WARNING)
    yield
    log.setLevel(level)


@contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="logroll-prop-") as d:
        yield Path(d)


# ---- (a) dates --------------------------------------------------------------------------------

FORMATS = ["%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%m/%d/%Y"]


@given(st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31)), st.sampled_from(FORMATS))
def test_every_accepted_date_format_round_trips(day: dt.date, fmt: str) -> None:
    text = day.strftime(fmt)
    assert parse_date(text) == day
    assert parse_date(f"  {text} ") == day
    assert parse_date(day) == day
    assert parse_date(dt.datetime.combine(day, dt.time(13, 5))) == day


def _is_a_date(text: str) -> bool:
    for fmt in FORMATS:
        try:
            dt.datetime.strptime(text.strip(), fmt)
            return True
        except ValueError:
            pass
    return False


@given(
    st.one_of(
        st.text(max_size=20),
        st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True),  # 2021-13-45 and the like
        st.from_regex(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4}", fullmatch=True),
        st.from_regex(r"[0-9]{6,9}", fullmatch=True),
        st.sampled_from(["2021-02-29", "02/30/2021", "20210230", "2021.01.30", "30/01/2021", "yesterday"]),
    )
)
def test_anything_else_is_a_usage_error(text: str) -> None:
    assume(not _is_a_date(text))
    with pytest.raises(UsageError) as err:
        parse_date(text)
    assert "YYYY-MM-DD" in str(err.value) and err.value.exit_code == 2


# ---- shared: an impressions table, its CSV forms, and the oracle --------------------------------

# Text that exercises the CSV dialect: separators, both quote characters, line breaks, non-ASCII.
FIELD_CHARS = st.sampled_from(list("ab xyzAZ09,;'\"\n\r\t-_.é€😀"))
field_text = st.text(FIELD_CHARS, max_size=6)
ident = st.tuples(st.sampled_from(list("abcdefgh")), field_text).map("".join)  # never blank


@st.composite
def impressions(draw: st.DrawFn, min_rows: int = 1, max_rows: int = 25) -> list[list[str]]:
    """Rows of valid impressions, with duplicates (exact, and same key with another campaign)."""
    n = draw(st.integers(min_rows, max_rows))
    rows: list[list[str]] = []
    for _ in range(n):
        if rows and draw(st.integers(0, 4)) == 0:
            dup = list(draw(st.sampled_from(rows)))
            if draw(st.booleans()):
                dup[2] = str(draw(st.integers(-5, 60)))  # same key, another campaign
            rows.append(dup)
            continue
        seconds = draw(st.integers(0, 3 * 86400 - 1))
        rows.append(
            [
                draw(ident),
                (FIRST + dt.timedelta(seconds=seconds)).strftime(TS),
                str(draw(st.integers(-(10**12), 10**12) | st.integers(-5, 60))),
                draw(field_text),
                draw(st.sampled_from(["mobile", "desktop", "tv", ""])),
            ]
        )
    return rows


def to_csv(
    rows: list[list[str]],
    *,
    quote_all: bool = False,
    crlf: bool = False,
    bom: bool = False,
    order: list[int] | None = None,
    extra: list[str] | None = None,
) -> bytes:
    """RFC 4180: a field holding a comma, a quote or a line break (CR or LF) is quoted."""
    extra = extra or []

    def cell(v: str) -> str:
        if quote_all or any(c in v for c in ',"\r\n'):
            return '"' + v.replace('"', '""') + '"'
        return v

    records = [[HEADER[i] for i in order or range(len(HEADER))] + [f"EXTRA_{k}" for k in range(len(extra))]]
    records += [(r if order is None else [r[i] for i in order]) + extra for r in rows]
    nl = "\r\n" if crlf else "\n"
    text = "".join(",".join(cell(v) for v in rec) + nl for rec in records)
    return (("\ufeff" if bom else "") + text).encode("utf-8")


def oracle(rows: list[list[str]]) -> dict[str, bytes]:
    """The daily_agg files, computed without logroll: dedupe on (id, datetime) within the event
    day, the smallest campaign winning, then count per campaign and hour."""
    winner: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r[0], r[1])
        winner[key] = min(winner.get(key, int(r[2])), int(r[2]))
    per_day: dict[dt.date, Counter[tuple[int, int]]] = {}
    for (_, ts), campaign in winner.items():
        when = dt.datetime.strptime(ts, TS)
        per_day.setdefault(when.date(), Counter())[(campaign, when.hour)] += 1
    out = {}
    for day, counts in per_day.items():
        body = "".join(f"{c},{h},{n}\n" for (c, h), n in sorted(counts.items()))
        out[f"{day:%Y/%m/%d}/daily_agg_{day:%Y%m%d}_Guy_Fawkes.csv"] = (
            "CAMPAIGN_ID,HOUR,IMPRESSION_COUNT\n" + body
        ).encode()
    return out


def put(raw: Path, folder: str, name: str, data: bytes) -> None:
    path = raw / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def run(raw: Path, dest: Path, date: str | None = None) -> logroll.RunReport:
    return logroll.run("impressions", date, source=str(raw), dest=str(dest), threads=1)


def chunks(rows: list[list[str]], cuts: list[int]) -> list[list[list[str]]]:
    bounds = [0, *sorted({c % (len(rows) + 1) for c in cuts}), len(rows)]
    return [rows[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


# ---- (b) dialects -------------------------------------------------------------------------------

DIALECTS = {
    "plain": {},
    "quoted": {"quote_all": True},
    "crlf": {"crlf": True},
    "bom": {"bom": True},
    "everything": {"quote_all": True, "crlf": True, "bom": True},
}


@SLOW
@given(
    rows=impressions(),
    cuts=st.lists(st.integers(0, 100), max_size=3),
    order=st.permutations(range(len(HEADER))),
    extra=st.lists(field_text, min_size=1, max_size=3),
)
def test_every_dialect_gives_the_same_bytes(
    rows: list[list[str]], cuts: list[int], order: list[int], extra: list[str]
) -> None:
    expected = oracle(rows)
    variants = {name: dict(opts) for name, opts in DIALECTS.items()}
    variants["shuffled+extra"] = {"order": list(order), "extra": extra}
    variants["shuffled+extra+everything"] = {**DIALECTS["everything"], "order": list(order), "extra": extra}
    with workdir() as tmp:
        for name, opts in variants.items():
            raw, dest = tmp / name / "raw", tmp / name / "results"
            for k, part in enumerate(chunks(rows, cuts)):
                put(raw, "2021/01/30", f"part{k}.csv", to_csv(part, **opts))
            report = run(raw, dest)
            assert report.status == "ok", (name, report.files_rejected, report.files_failed)
            assert (report.rows_read, report.rows_rejected) == (len(rows), 0), name
            assert tree_bytes(dest) == expected, name


def test_one_duckdb_read_over_a_glob_of_mixed_dialects_misparses(tmp_path: Path) -> None:
    """Free-text fields with apostrophes in a plain file, quoted-everything CRLF + BOM files with
    their columns in another order: what a naive single read of the folder does to them."""
    rows = [
        ["a1", "2021-01-30 10:00:00", "5", "'o'", "mobile"],
        ["a2", "2021-01-30 11:00:00", "6", "d'arcy", "tv"],
        ["a3", "2021-01-30 12:00:00", "6", "'x", "tv"],
        ["a4", "2021-01-30 13:00:00", "7", "'", "tv"],
        ["a5", "2021-01-30 13:30:00", "8", "ad-server, eu", "tv"],
    ]
    others = [
        ["b1", "2021-01-30 14:00:00", "9", "u1", "tv"],
        ["b2", "2021-01-30 15:00:00", "9", "u2, x", "mobile"],
    ]
    raw = tmp_path / "raw"
    put(raw, "2021/01/30", "a_plain.csv", to_csv(rows))
    put(
        raw,
        "2021/01/30",
        "b_quoted.csv",
        to_csv(others, quote_all=True, crlf=True, bom=True, order=[2, 0, 4, 1, 3]),
    )
    truth = sorted(map(tuple, rows + others))
    glob = str(raw / "2021/01/30/*.csv")
    cols = ", ".join(HEADER)

    # 1. Auto-detection: the sniffer takes ' for the quote of the plain file and silently glues
    #    rows together (4 rows come back as 3, one of them holding a line break).
    sniffed = duckdb.sql(
        f"SELECT {cols} FROM read_csv('{glob}', union_by_name=true, all_varchar=true)"
    ).fetchall()
    assert sorted(sniffed, key=repr) != truth
    assert len(sniffed) < len(truth)

    # 2. One explicit dialect for all: columns are taken by position, so the file whose header
    #    has another order lands in the wrong columns, still without an error.
    spelled = ", ".join(f"'{h}': 'VARCHAR'" for h in HEADER)
    explicit = duckdb.sql(
        f"SELECT {cols} FROM read_csv('{glob}', header=true, auto_detect=false, delim=',', quote='\"', "
        f"escape='\"', columns={{{spelled}}}, null_padding=true)"
    ).fetchall()
    assert len(explicit) == len(truth) and sorted(explicit, key=repr) != truth
    assert ("9", "b1", "tv", "2021-01-30 14:00:00", "u1") in explicit  # CAMPAIGN_ID as IMPRESSION_ID

    # logroll reads file by file with the dialect spelled out and columns matched by name.
    report = run(raw, tmp_path / "results")
    assert report.status == "ok" and (report.rows_read, report.rows_rejected) == (len(truth), 0)
    assert tree_bytes(tmp_path / "results") == oracle(rows + others)


# ---- (c) dedupe ---------------------------------------------------------------------------------

FOLDERS = ["2021/01/28", "2021/01/29", "2021/01/30", "2021/01/31", "2021/02/01"]


@SLOW
@given(
    rows=impressions(min_rows=2, max_rows=30),
    cuts=st.lists(st.integers(0, 100), min_size=1, max_size=4),
    data=st.data(),
)
def test_dedupe_once_equals_file_by_file_in_any_order_equals_twice(
    rows: list[list[str]], cuts: list[int], data: st.DataObject
) -> None:
    files = []
    for k, part in enumerate(chunks(rows, cuts)):
        # An upstream retry may resend a whole file under another name, in another folder.
        folder = data.draw(st.sampled_from(FOLDERS))
        files.append((folder, f"part{k}.csv", to_csv(part, crlf=data.draw(st.booleans())), len(part)))
        if data.draw(st.integers(0, 3)) == 0:
            files.append((data.draw(st.sampled_from(FOLDERS)), f"part{k}_retry.csv", to_csv(part), len(part)))
    order = data.draw(st.permutations(range(len(files))))
    expected = oracle(rows)
    with workdir() as tmp:
        once_raw, once = tmp / "once-raw", tmp / "once"
        for folder, name, body, _ in files:
            put(once_raw, folder, name, body)
        first = run(once_raw, once)
        assert tree_bytes(once) == expected
        assert first.rows_in == first.rows_read == first.rows_unique + first.duplicates
        assert first.rows_unique == len({(r[0], r[1]) for r in rows})
        mtimes = tree_mtimes(once)
        again = run(once_raw, once)
        assert again.nothing_to_do and tree_bytes(once) == expected and tree_mtimes(once) == mtimes

        # File by file, each day after its first build maintained incrementally: the new file's
        # rows probed against the day's kept unique rows (small files are a large share of a
        # small day, so the share that sends a day to a whole rebuild is lifted here).
        inc_raw, inc = tmp / "inc-raw", tmp / "inc"
        read = 0
        share, build.MAX_NEW_SHARE = build.MAX_NEW_SHARE, 1e9
        try:
            for i in order:
                folder, name, body, _ = files[i]
                put(inc_raw, folder, name, body)
                report = run(inc_raw, inc)
                assert report.files_staged == 1
                read += report.rows_read
        finally:
            build.MAX_NEW_SHARE = share
        assert tree_bytes(inc) == expected
        assert read == first.rows_read == sum(n for *_, n in files)


@SLOW
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from(FOLDERS[1:4]), impressions(min_rows=0, max_rows=12)),
        min_size=1,
        max_size=5,
    )
)
def test_a_changed_file_replaces_its_old_contribution(steps: list[tuple[int, str, list[list[str]]]]) -> None:
    """Files written, then rewritten with other rows under the same name: after every run the
    outputs are exactly those of the files as they are now, never old and new rows together."""
    with workdir() as tmp:
        raw, dest = tmp / "raw", tmp / "results"
        current: dict[int, list[list[str]]] = {}
        where: dict[int, str] = {}
        for n, (k, folder, rows) in enumerate(steps):
            folder = where.setdefault(k, folder)  # a resend keeps its name and place
            put(raw, folder, f"file{k}.csv", to_csv(rows))
            # Time passes between deliveries: a rewrite within the clock's tick could keep its
            # size and mtime, and no file store would tell it apart.
            os.utime(raw / folder / f"file{k}.csv", (1_600_000_000 + n, 1_600_000_000 + n))
            current[k] = rows
            report = run(raw, dest)
            assert report.files_staged == 1
            expected = oracle([r for rows in current.values() for r in rows])
            got = tree_bytes(dest)
            emptied = {rel: b for rel, b in got.items() if rel not in expected}
            assert {rel: b for rel, b in got.items() if rel in expected} == expected
            assert all(b == b"CAMPAIGN_ID,HOUR,IMPRESSION_COUNT\n" for b in emptied.values()), emptied


# ---- (d) quarantine -----------------------------------------------------------------------------

BAD_ROWS: dict[str, tuple[list[str], str]] = {
    "impossible date": (
        ["bad-1", "2021-02-30 10:00:00", "5", "u", "tv"],
        "bad IMPRESSION_DATETIME: expected a timestamp like %Y-%m-%d %H:%M:%S, got '2021-02-30 10:00:00'",
    ),
    "hour 25": (
        ["bad-2", "2021-01-30 25:00:00", "5", "u", "tv"],
        "bad IMPRESSION_DATETIME: expected a timestamp like %Y-%m-%d %H:%M:%S, got '2021-01-30 25:00:00'",
    ),
    "unparseable": (
        ["bad-3", "yesterday", "5", "u", "tv"],
        "bad IMPRESSION_DATETIME: expected a timestamp like %Y-%m-%d %H:%M:%S, got 'yesterday'",
    ),
    "no datetime": (["bad-4", "", "5", "u", "tv"], "missing IMPRESSION_DATETIME"),
    "word campaign": (
        ["bad-5", "2021-01-30 10:00:00", "five", "u", "tv"],
        "bad CAMPAIGN_ID: expected an integer, got 'five'",
    ),
    "decimal campaign": (
        ["bad-6", "2021-01-30 10:00:00", "5.5", "u", "tv"],
        "bad CAMPAIGN_ID: expected an integer, got '5.5'",
    ),
    "no campaign": (["bad-7", "2021-01-30 10:00:00", "", "u", "tv"], "missing CAMPAIGN_ID"),
    "no id": (["", "2021-01-30 10:00:00", "5", "u", "tv"], "missing IMPRESSION_ID"),
    "blank id": (["   ", "2021-01-30 10:00:00", "5", "u", "tv"], "missing IMPRESSION_ID"),
    "too few": (["bad-8", "2021-01-30 10:00:00", "5"], "too few columns"),
    "too many": (["bad-9", "2021-01-30 10:00:00", "5", "u", "tv", "x"], "too many columns"),
}

# Valid rows without line breaks inside fields: then a CSV record is a line, and the quarantine's
# line numbers are the file's own (header = line 1).
one_line_text = st.text(st.sampled_from(list("ab xyz,;'\"-é")), max_size=5)


@st.composite
def one_line_impressions(draw: st.DrawFn) -> list[list[str]]:
    rows = draw(impressions(min_rows=0, max_rows=30))
    for r in rows:
        r[0] = r[0].replace("\n", "").replace("\r", "") or "x"
        r[3] = draw(one_line_text)
    return rows


@SLOW
@given(
    rows=one_line_impressions(),
    bad=st.lists(st.tuples(st.sampled_from(sorted(BAD_ROWS)), st.integers(0, 1000)), min_size=1, max_size=8),
    dialect=st.sampled_from(sorted(DIALECTS)),
)
def test_bad_rows_are_quarantined_at_their_line_with_their_reason(
    rows: list[list[str]], bad: list[tuple[str, int]], dialect: str
) -> None:
    lines = [("good", r) for r in rows]
    for kind, at in bad:
        lines.insert(at % (len(lines) + 1), (kind, BAD_ROWS[kind][0]))
    opts = DIALECTS[dialect]
    body = to_csv([r for _, r in lines], **opts)
    text = body.decode("utf-8").removeprefix("\ufeff").split("\r\n" if opts.get("crlf") else "\n")
    expected = [
        (str(n + 2), BAD_ROWS[kind][1], text[n + 1]) for n, (kind, _) in enumerate(lines) if kind != "good"
    ]
    with workdir() as tmp:
        raw, dest = tmp / "raw", tmp / "results"
        put(raw, "2021/01/30", "mixed.csv", body)
        report = run(raw, dest)
        assert report.status == "ok"
        assert report.rows_read == len(lines) == report.rows_valid + report.rows_rejected
        assert report.rows_rejected == len(bad)
        assert report.rows_valid == len(rows)
        assert report.rows_in == report.rows_valid == report.rows_unique + report.duplicates
        assert report.rows_unique == len({(r[0], r[1]) for r in rows})
        assert tree_bytes(dest) == oracle(rows)
        (quarantine,) = report.quarantine
        with open(quarantine, newline="", encoding="utf-8") as fh:
            got = [(r["line"], r["reason"], r["raw_line"]) for r in csv.DictReader(fh)]
        assert got == expected
