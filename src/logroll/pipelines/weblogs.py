"""Seed 003 (hipages): JSON-lines web events -> user_web_hits and hourly aggregated_web_stats.

Every derived value is SQL written once here and used by both modes: `logroll run` builds the
outputs from it per event day, and `logroll stream` derives each event's hit and hourly bucket
with the same expressions (see streaming/). The SQL uses only functions DuckDB and Spark share
(regexp_extract, lower, trim, strftime), so the Spark engine transpiles it unchanged.
"""

from __future__ import annotations

from ..sql import ident
from .base import Column, Output, Pipeline

TIMESTAMP_FORMAT = "%d/%m/%Y %H:%M:%S"

# An optional scheme ("https://", "ftp://") or a scheme-relative "//"; without one the URL is
# read as https, i.e. it starts with the host.
_SCHEME = "^(?:[A-Za-z][A-Za-z0-9+.-]*://|//)?"


def url_host_sql(url: str) -> str:
    """url_level1: the host, lower-cased, without user info, port or one leading "www."."""
    u = f"trim({url})"
    authority = f"regexp_extract({u}, '{_SCHEME}([^/?#]*)', 1)"
    # the last "@" ends the user info; an IPv6 literal keeps its colons
    host = f"regexp_extract({authority}, '(?s)^(?:.*@)?(\\[[^\\]]*\\]|[^:]*)', 1)"
    return f"regexp_extract(lower({host}), '(?s)^(?:www[.])?(.*)', 1)"


def url_path_sql(url: str) -> str:
    """The path: what follows the host, up to a query string or fragment."""
    return f"regexp_extract(trim({url}), '{_SCHEME}[^/?#]*([^?#]*)', 1)"


def url_level_sql(url: str, level: int) -> str:
    """url_level1 is the host; url_level2 and 3 the first and second non-empty path segments
    ('' when missing)."""
    if level == 1:
        return url_host_sql(url)
    skip = "[^/]+/+" * (level - 2)
    return f"regexp_extract({url_path_sql(url)}, '^/*{skip}([^/]+)', 1)"


_TS = ident("timestamp")
_URL = ident("url")

# One row per event, in the output's column order.
HIT_COLUMNS: dict[str, str] = {
    "user_id": ident("user_id"),
    "time_stamp": f"strftime({_TS}, '%Y-%m-%d %H:%M:%S')",
    "url_level1": url_level_sql(_URL, 1),
    "url_level2": url_level_sql(_URL, 2),
    "url_level3": url_level_sql(_URL, 3),
    "activity": ident("action"),
}
# The hourly bucket of an event, and what an hour's statistics are grouped by.
TIME_BUCKET = f"strftime({_TS}, '%Y%m%d%H')"
STATS_GROUP = ("time_bucket", "url_level1", "activity")

HITS_SQL = "SELECT " + ", ".join(f"{expr} AS {ident(name)}" for name, expr in HIT_COLUMNS.items()) + " FROM rows"
STATS_SQL = (
    f"SELECT {TIME_BUCKET} AS time_bucket, {HIT_COLUMNS['url_level1']} AS url_level1, "
    f"{HIT_COLUMNS['activity']} AS activity, count(*) AS activity_count, "
    f"count(DISTINCT {ident('user_id')}) AS user_count FROM rows GROUP BY 1, 2, 3"
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
    ),
    event_time="timestamp",
    key=("event_id",),
    input_format="jsonl",
    suffixes=(".json", ".jsonl", ".ndjson"),
    checks=((f"{url_host_sql(_URL)} <> ''", "URL has no host"),),
    outputs=(
        Output(
            name="user_web_hits",
            sql=HITS_SQL,
            path="user_web_hits/{date:%Y-%m-%d}.csv",
            order_by=("time_stamp", "user_id"),
            time_column="time_stamp",
            time_format="%Y-%m-%d %H:%M:%S",
        ),
        Output(
            name="aggregated_web_stats",
            sql=STATS_SQL,
            path="aggregated_web_stats/{date:%Y-%m-%d}.csv",
            order_by=STATS_GROUP,
            time_column="time_bucket",
            time_format="%Y%m%d%H",
        ),
    ),
)
