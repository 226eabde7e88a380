"""Seed 000: every CSV of a date folder, whatever its columns, consolidated per event day.

Only the timestamp is declared (found by name with --timestamp-column, else detected as the one
column whose values parse as timestamps); every other column passes through as text. Each day's
file holds the union of the columns its inputs had, the timestamp replaced in place by `date`
and `time`, whole-row duplicates removed, sorted by time. Every run rebuilds a day from all the
rows ever staged for it, so the file always equals the merge of what earlier runs wrote with
the new rows.
"""

from .base import Column, Output, Pipeline

# Tried in this order; day-first dates are left out on purpose: 01/02/2021 must mean one thing.
TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
)

_SPLIT = (
    "SELECT * REPLACE (unnest({'date': strftime(\"timestamp\", '%Y-%m-%d'), "
    "'time': strftime(\"timestamp\", '%H:%M:%S')}) AS \"timestamp\") FROM rows"
)

PIPELINE = Pipeline(
    name="consolidate",
    description="any CSVs with a timestamp column -> one mm--dd--yyyy.csv per event day (timestamp split into date, time)",
    columns=(Column("timestamp", "timestamp", formats=TIMESTAMP_FORMATS, detect=True),),
    event_time="timestamp",
    key=(),  # a row is a duplicate only when every column is equal
    passthrough=True,
    outputs=(
        Output(
            name="consolidated",
            # unnest() of a struct expands in place: date and time take the timestamp's position.
            # Rows equal once cut to the second are merged by a UNION with an empty twin rather
            # than a DISTINCT: DuckDB 2.0 drops the last column from a DISTINCT beside such an
            # unnest (merging rows that differ only there), and a DISTINCT over a subquery would
            # rename a clashing input column "date" to "date_1" instead of letting the engine
            # refuse it. tests/test_consolidate.py checks both.
            sql=f"({_SPLIT}) UNION ({_SPLIT} WHERE false)",
            path="{date:%m--%d--%Y}.csv",
            order_by=("date", "time"),
        ),
    ),
)
