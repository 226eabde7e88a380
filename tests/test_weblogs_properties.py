"""The weblogs SQL (URL levels, timestamp parsing) against the plain-Python reference, with hypothesis.

The SQL runs in DuckDB exactly as staging runs it (the pipeline's computed columns, step by
step, and the typed expression of its timestamp column); the reference is
tests/weblogs_reference.py. tests/test_spark.py runs the same URL steps in Spark.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logroll.engines.sql import typed_expr
from logroll.pipelines import get_pipeline
from logroll.pipelines.weblogs import url_columns, url_levels_query
from weblogs_helpers import urls
from weblogs_reference import parse_timestamp, url_levels

PIPE = get_pipeline("weblogs")
SQL_LEVELS = url_levels_query("(SELECT $u AS url)")
SQL_TIMESTAMP = typed_expr(PIPE.column("timestamp"), "$t")


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    yield c
    c.close()


def sql_levels(con, url: str) -> tuple[str, str, str]:
    return tuple(con.execute(SQL_LEVELS, {"u": url}).fetchone())  # type: ignore[return-value]


def test_the_pipeline_stages_exactly_these_steps():
    computed = tuple(c for c in PIPE.columns if c.sql is not None)
    assert computed == url_columns('"url"') and computed[-3:] == tuple(
        PIPE.column(f"url_level{i}") for i in (1, 2, 3)
    )


def sql_timestamp(con, text: str) -> dt.datetime | None:
    return con.execute(f"SELECT {SQL_TIMESTAMP}", {"t": text}).fetchone()[0]


@settings(max_examples=600, deadline=None)
@given(url=urls())
def test_url_levels_match_the_reference(con, url):
    assert sql_levels(con, url) == url_levels(url)


@settings(max_examples=300, deadline=None)
@given(url=st.text(max_size=40))
def test_url_levels_of_any_text_match_the_reference(con, url):
    # any text at all, but the letters whose lower case differs between engines (see HOST_CHARS)
    url = "".join(ch for ch in url if ch.lower().upper() == ch.upper() and len(ch.lower()) == 1)
    url = url.replace("\u0130", "").replace("\u03a3", "")
    assert sql_levels(con, url) == url_levels(url)


def test_url_levels_examples(con):
    cases = {
        "https://www.hipages.com.au/articles": ("hipages.com.au", "articles", ""),
        "https://www.hipages.com.au/connect/sfelectrics/service/190625": (
            "hipages.com.au",
            "connect",
            "sfelectrics",
        ),
        "https://www.hipages.com.au/get_quotes_simple?search_str=sfdg": (
            "hipages.com.au",
            "get_quotes_simple",
            "",
        ),
        "hipages.com.au/connect/sfelectrics/service/190625": ("hipages.com.au", "connect", "sfelectrics"),
        "w3.hipages.com.au/articles": ("w3.hipages.com.au", "articles", ""),
        "HTTPS://WWW.Hipages.COM.au:443//photos//bathrooms/?q=1#top": (
            "hipages.com.au",
            "photos",
            "bathrooms",
        ),
        "https://user:pw@www.x.com/a": ("x.com", "a", ""),
        "https://x.com#/a/b": ("x.com", "", ""),
        "https://[::1]:8080/a": ("[::1]", "a", ""),
        "/connect/x": ("", "connect", "x"),
        "https://": ("", "", ""),
        "  www.x.com/a  ": ("x.com", "a", ""),
    }
    for url, want in cases.items():
        assert sql_levels(con, url) == want == url_levels(url), url
    # where a split by plain string functions could go wrong: "://" late or not after a
    # scheme, the user info holding "www." or a port, brackets after "www.", a newline
    tricky = [
        "http\n://x/a", "://x/a", "a://b", "ht tp://a/b", "x.com?a=http://y/z", "x.com/a?b=c://d",
        "https://www.x.com:80@y.com/a", "www.[::1]:80/a", "[::1/a", "WwW.x.com", "www.", "www.:80",
        "u@www.x.com", "@", "//", "///a//b", "https:///a", "https://x.com//", "#", "?q", "x#y/z",
        "https://a@b@c/d/e/f", " https://x.com/a ", "git+ssh://u@h:22/r/p", "1ab://x/y", "é://x/y",
    ]  # fmt: skip
    for url in tricky:
        assert sql_levels(con, url) == url_levels(url), url


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    when = draw(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)))

    def num(v: int, width: int) -> str:
        return str(v).zfill(
            draw(st.integers(min_value=1, max_value=width)) if v < 10 ** (width - 1) else width
        )

    text = (
        f"{num(when.day, 2)}/{num(when.month, 2)}/{when.year:04d}"
        f"{draw(st.sampled_from([' ', '  ', chr(9)]))}{num(when.hour, 2)}:{num(when.minute, 2)}:{num(when.second, 2)}"
    )
    return draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", " "]))


@settings(max_examples=400, deadline=None)
@given(text=timestamps())
def test_valid_timestamps_parse_like_the_reference(con, text):
    want = parse_timestamp(text)
    assert want is not None
    assert sql_timestamp(con, text) == want


@settings(max_examples=600, deadline=None)
@given(
    text=st.one_of(
        st.text(st.sampled_from(list("0123456789/: \t-.T+Z٣")), max_size=24),
        st.from_regex(r"[0-9]{1,3}/[0-9]{1,3}/[0-9]{1,5} [0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3}", fullmatch=True),
    )
)
def test_any_text_parses_like_the_reference(con, text):
    assert sql_timestamp(con, text) == parse_timestamp(text)


def test_timestamp_examples(con):
    assert sql_timestamp(con, "02/02/2017 20:22:00") == dt.datetime(2017, 2, 2, 20, 22)
    assert sql_timestamp(con, "2/2/2017 1:2:3") == dt.datetime(2017, 2, 2, 1, 2, 3)
    for bad in (
        "02/02/17 20:22:00",
        "31/02/2017 20:22:00",
        "2017-02-02 20:22:00",
        "02/02/2017",
        "02/02/2017 24:00:00",
        "00/01/2017 10:00:00",
        "01/01/0000 10:00:00",
        "02/02/2017 20:22:00.5",
    ):
        assert sql_timestamp(con, bad) is None and parse_timestamp(bad) is None, bad


def test_strptime_widths_hold_for_every_pipeline(con):
    """A core fix found here: DuckDB's strptime reads "21-01-30" under %Y as the year 21. The typed
    expression now checks the text's shape first, for every declared format."""
    from logroll.pipelines.base import Column

    col = Column("t", "timestamp", formats=("%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M"))
    expr = typed_expr(col, "$t")
    assert con.execute(f"SELECT {expr}", {"t": "21-01-30 10:00:00"}).fetchone()[0] is None
    assert con.execute(f"SELECT {expr}", {"t": "2021-01-30 10:00:00"}).fetchone()[0] == dt.datetime(
        2021, 1, 30, 10
    )
    assert con.execute(f"SELECT {expr}", {"t": "1/30/2021 10:00"}).fetchone()[0] == dt.datetime(
        2021, 1, 30, 10
    )
    assert con.execute(f"SELECT {expr}", {"t": "1/30/21 10:00"}).fetchone()[0] is None
