"""Seed 003 (hipages): JSON-lines web events -> user_web_hits and hourly aggregated_web_stats.

Every derived value is SQL written once here (STREAM) and used by both modes: `logroll run`
builds the outputs from it per event day, and `logroll stream` derives each event's hit and
hourly bucket with the same expressions (see streaming/). The SQL uses only functions DuckDB and
Spark share (strpos, split_part, substr, ltrim, lower, strftime), so the Spark engine transpiles
it unchanged (tests/test_spark.py runs the URL steps in Spark against the reference).
"""

from __future__ import annotations

from ..quote import ident
from .base import Column, Output, Pipeline
from .stream import StreamSpec

TIMESTAMP_FORMAT = "%d/%m/%Y %H:%M:%S"

# The URL grammar (docs/weblogs.md, tests/weblogs_reference.py). A URL is: spaces (U+0020) around
# it, then an optional scheme ("https://", "git+ssh://": a letter, then letters, digits, "+",
# "." or "-", then "://") or a scheme-relative "//" (without either it starts with its host);
# the authority, up to the first "/", "?" or "#": optional user info up to its last "@", one
# optional leading "www." (any case), the host (an IPv6 literal "[...]" keeps its colons), an
# optional port; then the path, up to "?" or "#", whose first two non-empty segments are levels
# 2 and 3.
#
# Split with plain string functions (strpos, split_part, substr, ltrim) that DuckDB and Spark
# share, one step per computed column, each over the ones before it, so every step runs once per
# event: three regular expressions over the whole URL cost ~2.6 us per event, this ~1/3 of it.
# The one regular expression left checks the few characters before "://", not the URL.
_SCHEME = "[A-Za-z][A-Za-z0-9+.-]*"
_URL = ident("url")


def url_columns(url: str) -> tuple[Column, ...]:
    """The URL's levels as computed columns (url_level1..3) and the steps they are made of, in
    order. The steps are columns too (staging computes a computed column once, over the columns
    declared before it); being functions of `url`, they never decide a dedupe (sql.py)."""
    u, rest, auth, hostport, site, path = (
        ident(n) for n in ("url_trimmed", "url_rest", "url_authority", "url_hostport", "url_site", "url_path")
    )
    pos = f"strpos({u}, '://')"
    before = f"left({u}, {pos} - 1)"
    # the longest run of scheme characters from the start is all of it (no anchor at the end:
    # "$" also matches before a final newline in Java)
    scheme = f"regexp_extract({before}, '^{_SCHEME}', 0) = {before}"
    steps = {
        # trim() only when there is something to trim: it is the costliest call here
        "url_trimmed": f"CASE WHEN starts_with({url}, ' ') OR ends_with({url}, ' ') THEN trim({url}, ' ') "
        f"ELSE {url} END",
        "url_rest": f"CASE WHEN {pos} > 1 AND {scheme} "
        f"THEN substr({u}, {pos} + 3) WHEN starts_with({u}, '//') THEN substr({u}, 3) ELSE {u} END",
        "url_authority": f"split_part(split_part(split_part({rest}, '/', 1), '?', 1), '#', 1)",
        # user info goes, then one leading "www.", then the port (an IPv6 literal keeps its colons)
        "url_hostport": f"CASE WHEN contains({auth}, '@') THEN split_part({auth}, '@', -1) ELSE {auth} END",
        "url_site": f"CASE WHEN lower(left({hostport}, 4)) = 'www.' THEN substr({hostport}, 5) ELSE {hostport} END",
        "url_path": f"ltrim(split_part(split_part(substr({rest}, length({auth}) + 1), '?', 1), '#', 1), '/')",
        "url_level1": f"lower(CASE WHEN starts_with({site}, '[') AND contains({site}, ']') "
        f"THEN split_part({site}, ']', 1) || ']' ELSE split_part({site}, ':', 1) END)",
        "url_level2": f"split_part({path}, '/', 1)",
        "url_level3": f"split_part(ltrim(substr({path}, length({ident('url_level2')}) + 1), '/'), '/', 1)",
    }
    return tuple(Column(name, "string", sql=expr) for name, expr in steps.items())


def url_levels_query(source: str, keep: tuple[str, ...] = ()) -> str:
    """SELECT `keep` columns, url_level1, url_level2, url_level3 FROM `source` (which has the
    column url), computed step by step as staging does (the property tests and the benchmark)."""
    layers = source
    for col in url_columns(_URL):
        layers = f"(SELECT *, {col.sql} AS {ident(col.name)} FROM {layers})"
    return f"SELECT {', '.join([*map(ident, keep), 'url_level1', 'url_level2', 'url_level3'])} FROM {layers}"


_TS = ident("timestamp")

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
        # computed once per event when it is staged, from the URL (see url_columns)
        *url_columns(_URL),
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
