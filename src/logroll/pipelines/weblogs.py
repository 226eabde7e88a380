"""Seed 003 (hipages): JSON-lines web events -> user_web_hits and hourly aggregated_web_stats.

Every derived value is SQL written once here (STREAM) and used by both modes: `logroll run`
builds the outputs from it per event day, and `logroll stream` derives each event's hit and
hourly bucket with the same expressions (see streaming/). The SQL uses only functions DuckDB and Spark share
(regexp_extract, lower, trim, strftime), so the Spark engine transpiles it unchanged.
"""

from __future__ import annotations

from ..quote import ident
from .base import Column, Output, Pipeline
from .stream import StreamSpec

TIMESTAMP_FORMAT = "%d/%m/%Y %H:%M:%S"

# The URL grammar, in regular expressions both engines read the same way (RE2 in DuckDB,
# java.util.regex in Spark; leftmost-first, so every optional part is taken when present).
# A URL is: an optional scheme ("https://", "ftp://") or a scheme-relative "//" (without one
# it is read as https, i.e. it starts with the host); the authority, up to the first "/", "?"
# or "#": optional user info up to its last "@", one optional leading "www.", the host (an
# IPv6 literal keeps its colons), an optional port; then the path, whose non-empty segments
# are levels 2 and 3. The query string and the fragment are never reached.
_SCHEME = "^(?:[A-Za-z][A-Za-z0-9+.-]*://|//)?"
# Everything after the scheme is optional, so that a match never needs to give the scheme
# back (which would read "https:" as a host).
URL_PATTERNS = {
    1: _SCHEME + "(?:[^/?#]*@)?(?:[Ww][Ww][Ww][.])?(\\[[^\\]/?#]*\\]|[^:/?#]*)",
    2: _SCHEME + "[^/?#]*(?:/+([^/?#]*))?",
    3: _SCHEME + "[^/?#]*(?:/+[^/?#]*(?:/+([^/?#]*))?)?",
}


def url_level_sql(url: str, level: int) -> str:
    """url_level1 is the host, lower-cased; url_level2 and 3 the first and second non-empty
    path segments ('' when missing). Spaces around the URL are ignored (only U+0020: both
    engines' trim(x, ' ') agree on that; DuckDB's plain trim() also drops other spaces)."""
    part = f"regexp_extract(trim({url}, ' '), '{URL_PATTERNS[level]}', 1)"
    return f"lower({part})" if level == 1 else part


_TS = ident("timestamp")
_URL = ident("url")

STREAM = StreamSpec(
    hits_output="user_web_hits",
    # One row per event, in the output's column order.
    hit_columns={
        "user_id": ident("user_id"),
        "time_stamp": f"strftime({_TS}, '%Y-%m-%d %H:%M:%S')",
        "url_level1": ident("url_level1"),
        "url_level2": ident("url_level2"),
        "url_level3": ident("url_level3"),
        "activity": ident("action"),
    },
    stats_output="aggregated_web_stats",
    group={
        "time_bucket": f"strftime({_TS}, '%Y%m%d%H')",
        "url_level1": ident("url_level1"),
        "activity": ident("action"),
    },
    count_column="activity_count",
    distinct_column="user_count",
    distinct_of="user_id",
)

PIPELINE = Pipeline(
    name="weblogs",
    description="JSON-lines web events -> user_web_hits/DAY.csv and aggregated_web_stats/DAY.csv (hourly)",
    columns=(
        Column("event_id", "string"),
        Column("user_id", "string", source="user.id"),
        Column("action", "string"),
        Column("url", "string"),
        Column("timestamp", "timestamp", formats=(TIMESTAMP_FORMAT,)),
        # computed once per event when it is staged, from the URL (see URL_PATTERN)
        Column("url_level1", "string", sql=url_level_sql(_URL, 1)),
        Column("url_level2", "string", sql=url_level_sql(_URL, 2)),
        Column("url_level3", "string", sql=url_level_sql(_URL, 3)),
    ),
    event_time="timestamp",
    key=("event_id",),
    input_format="jsonl",
    suffixes=(".json", ".jsonl", ".ndjson"),
    checks=((f"{ident('url_level1')} <> ''", "URL has no host"),),
    outputs=(
        Output(
            name="user_web_hits",
            sql=STREAM.hits_sql(),
            path="user_web_hits/{date:%Y-%m-%d}.csv",
            order_by=("time_stamp", "user_id"),
            time_column="time_stamp",
            time_format="%Y-%m-%d %H:%M:%S",
        ),
        Output(
            name="aggregated_web_stats",
            sql=STREAM.stats_sql(),
            path="aggregated_web_stats/{date:%Y-%m-%d}.csv",
            order_by=tuple(STREAM.group),
            time_column="time_bucket",
            time_format="%Y%m%d%H",
        ),
    ),
)
