"""The stream's state and tables, committed one micro-batch per transaction.

One store holds everything a micro-batch changes, so one commit covers it all:

    _logroll_<p>_events   each unique event: key, event day, its typed values (to pick the
                          winner among duplicates), its hit columns, its group and distinct value
    <hits output>         a view over the events table (user_web_hits)
    _logroll_<p>_groups   per group and distinct value (e.g. hour, host, action, user): events
    <stats output>        per group: events and distinct values (aggregated_web_stats)
    _logroll_quarantine   rejected lines: source_file, line, reason, raw_line
    _logroll_<p>_dirty    event days changed since the folder export last wrote them
    _logroll_state        the checkpoint of each input, with its counters

Duplicates are resolved as `logroll run` resolves them within a day: per (key, event day) the
smallest row wins, whatever the order of arrival; a late smaller duplicate replaces the event.
Each event in (+1) and out (-1) moves the count of its group and distinct value; a group's
statistics move by the same deltas (a value is one more distinct value while its count is above
0), so they never count an event twice and never need the group's other events.

The SQL below runs unchanged on SQLite (the store of a folder destination), PostgreSQL and
DuckDB, through the sinks' sessions (sinks/sqlite.py, sinks/postgres.py, sinks/duckdb.py): the
database-specific parts (types, bulk inserts, temporary tables, the one-writer lock) are theirs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ..errors import UsageError
from ..pipelines.base import Pipeline
from ..pipelines.stream import StreamSpec
from ..quote import ident
from ..sinks.base import SqlSession

QUARANTINE = "_logroll_quarantine"
STATE = "_logroll_state"
QUARANTINE_DAY = ""  # the dirty marker of the quarantine export

# how each declared column type is kept in the store to compare rows like the batch dedupe does
_RANK_TYPE = {
    "string": "text",
    "integer": "bigint",
    "float": "double",
    "boolean": "boolean",
    "timestamp": "text",
    "date": "text",
}


@dataclass
class BatchResult:
    unique_added: int  # new events less events replaced (always >= 0)
    replaced: int


def events_table(pipeline: str) -> str:
    """The table of a pipeline's streamed events: its presence marks a stream's destination."""
    return f"_logroll_{pipeline}_events"


@dataclass(frozen=True)
class Layout:
    """Table and column names of one pipeline's stream store."""

    pipeline: Pipeline
    spec: StreamSpec

    @property
    def events(self) -> str:
        return events_table(self.pipeline.name)

    @property
    def groups(self) -> str:
        return f"_logroll_{self.pipeline.name}_groups"

    @property
    def dirty(self) -> str:
        return f"_logroll_{self.pipeline.name}_dirty"

    @property
    def key(self) -> list[str]:
        return [*self.pipeline.key, "day"]

    @property
    def rank(self) -> list[str]:
        """The values read after the key, in declared order: the smallest row wins (computed
        columns follow from them, so they never decide)."""
        return [f"in_{c.name}" for c in self._ranked()]

    def _ranked(self) -> list[Any]:
        return [c for c in self.pipeline.columns if c.name not in self.pipeline.key and c.sql is None]

    @property
    def group_cols(self) -> list[str]:
        return [f"g_{name}" for name in self.spec.group]

    @property
    def distinct(self) -> str:
        return f"d_{self.spec.distinct_of}"

    def event_columns(self) -> list[tuple[str, str]]:
        """(name, logical type) of the events table, in order."""
        cols = [(k, "text") for k in self.pipeline.key] + [("day", "text")]
        cols += [(f"in_{c.name}", _RANK_TYPE[c.type]) for c in self._ranked()]
        cols += [(name, "text") for name in self.spec.hit_columns]
        cols += [(g, "text") for g in self.group_cols] + [(self.distinct, "text")]
        return cols

    def stats_columns(self) -> list[tuple[str, str]]:
        return [(name, "text") for name in self.spec.group] + [
            (self.spec.count_column, "bigint"),
            (self.spec.distinct_column, "bigint"),
        ]


def _q(names: Sequence[str], prefix: str = "") -> str:
    return ", ".join(prefix + ident(n) for n in names)


class Store:
    """One pipeline's stream tables and checkpoints in the database of `db` (a sink's session)."""

    def __init__(self, layout: Layout, db: SqlSession):
        self.layout = layout
        self.db = db
        self.dialect = db.dialect
        self.create_schema()

    def close(self) -> None:
        self.db.close()

    # ---- schema ------------------------------------------------------------------------------
    def _create(self, name: str, cols: list[tuple[str, str]], key: Sequence[str]) -> str:
        body = ", ".join(f"{ident(n)} {self.db.type_name(t)}" for n, t in cols)
        pk = f", PRIMARY KEY ({_q(key)})" if key else ""
        return f"CREATE TABLE IF NOT EXISTS {ident(name)} ({body}{pk})"

    def create_schema(self) -> None:
        lay, spec = self.layout, self.layout.spec
        with self.db.transaction():
            self._check_hits_is_view()
            self.db.execute(self._create(lay.events, lay.event_columns(), lay.key))
            self.db.execute(
                f"CREATE INDEX IF NOT EXISTS {ident(lay.events + '_day')} ON {ident(lay.events)} ({ident('day')})"
            )
            group_users = [(g, "text") for g in lay.group_cols] + [(lay.distinct, "text"), ("n", "bigint")]
            self.db.execute(self._create(lay.groups, group_users, [*lay.group_cols, lay.distinct]))
            self.db.execute(self._create(spec.stats_output, lay.stats_columns(), list(spec.group)))
            quarantine = [
                ("source_file", "text"),
                ("line", "bigint"),
                ("reason", "text"),
                ("raw_line", "text"),
            ]
            self.db.execute(self._create(QUARANTINE, quarantine, []))
            self.db.execute(self._create(lay.dirty, [("day", "text"), ("version", "bigint")], ["day"]))
            self.db.execute(
                self._create(STATE, [("key", "text"), ("value", "text"), ("updated_at", "text")], ["key"])
            )
            view = f"SELECT {_q(spec.hit_columns)} FROM {ident(lay.events)}"
            create = "CREATE VIEW IF NOT EXISTS" if self.dialect == "sqlite" else "CREATE OR REPLACE VIEW"
            self.db.execute(f"{create} {ident(spec.hits_output)} AS {view}")
            for name, like in (("__b", lay.events), ("__c", lay.events), ("__r", lay.events)):
                self.db.execute(self.db.temp_table_sql(name, f"SELECT * FROM {ident(like)}"))
            gd = f"SELECT {_q(lay.group_cols)}, {ident(lay.distinct)}, n AS d FROM {ident(lay.groups)}"
            self.db.execute(self.db.temp_table_sql("__gd", gd))
            self.db.execute(self.db.temp_table_sql("__t", f"SELECT * FROM {ident(spec.stats_output)}"))

    def _check_hits_is_view(self) -> None:
        """A table of that name comes from `logroll run` into the same database: mixing the two
        would leave the table stale, so say so instead."""
        name = self.layout.spec.hits_output
        if self.dialect == "sqlite":
            rows = self.db.query("SELECT type FROM sqlite_master WHERE name = ?", [name])
        else:
            rows = self.db.query(
                "SELECT table_type FROM information_schema.tables WHERE table_name = ? "
                "AND table_schema = current_schema()",
                [name],
            )
        if rows and "VIEW" not in str(rows[0][0]).upper():
            raise UsageError(
                f"the destination already has a table {name} (written by `logroll run`?): "
                "stream into another database, or drop the table"
            )

    # ---- one micro-batch ---------------------------------------------------------------------------
    def commit_batch(
        self,
        winners: pa.Table,
        rejects: pa.Table,
        state_key: str,
        state: dict[str, Any],
        version: int,
        before_commit: Any = None,
    ) -> BatchResult:
        """Apply one micro-batch and its checkpoint in one transaction.

        `winners` has the events table's columns, at most one row per (key, day); `rejects`
        has the quarantine's columns. `state` is stored under `state_key` as JSON; the counters
        in it are updated here with what the batch did.
        """
        with self.db.transaction():
            if self.dialect != "postgresql":  # PostgreSQL empties them at each commit
                for t in ("__b", "__c", "__r", "__gd", "__t"):
                    self.db.execute(f"DELETE FROM {t}")
            if winners.num_rows:
                self.db.insert("__b", winners)
            if rejects.num_rows:
                self.db.insert(QUARANTINE, rejects)
            added, replaced = self._merge_events()
            self._move_counts(replaced)
            self._mark_dirty(version, bool(rejects.num_rows))
            result = BatchResult(added - replaced, replaced)
            state["unique"] = state.get("unique", 0) + result.unique_added
            state["duplicates"] = state.get("valid", 0) - state["unique"]
            self.put_state(state_key, state)
            if before_commit:
                before_commit()
        return result

    def _merge_events(self) -> tuple[int, int]:
        """New events (from __b), and duplicates smaller than the event they duplicate, into the
        events table (__c: what went in, __r: what they replaced). Returns (added, replaced)."""
        lay = self.layout
        ev = ident(lay.events)
        key_match = " AND ".join(f"e.{ident(k)} = b.{ident(k)}" for k in lay.key)
        rank = lay.rank
        smaller = (
            f"({_q(rank, 'b.')}) < ({_q(rank, 'e.')})"
            if len(rank) > 1
            else f"b.{ident(rank[0])} < e.{ident(rank[0])}"
        )
        first_key = ident(lay.key[0])
        added = self.db.execute(
            f"INSERT INTO __c SELECT b.* FROM __b b LEFT JOIN {ev} e ON {key_match} "
            f"WHERE e.{first_key} IS NULL OR {smaller}"
        )
        replaced = self.db.execute(f"INSERT INTO __r SELECT e.* FROM {ev} e JOIN __c b ON {key_match}")
        if replaced:
            self.db.execute(f"DELETE FROM {ev} WHERE ({_q(lay.key)}) IN (SELECT {_q(lay.key)} FROM __r)")
        self.db.execute(f"INSERT INTO {ev} SELECT * FROM __c")
        return added, replaced

    def _move_counts(self, replaced: int) -> None:
        """Per group and distinct value: +1 for each event in, -1 for each event out; the touched
        groups' statistics move by the same deltas: a value is one more distinct value of its
        group when its count rose from 0, one less when it fell to 0."""
        lay, spec = self.layout, self.layout.spec
        gr, st = ident(lay.groups), ident(spec.stats_output)
        gcols, dist = lay.group_cols, ident(lay.distinct)
        self.db.execute(
            f"INSERT INTO __gd SELECT {_q(gcols)}, {dist}, sum(d) FROM ("
            f"SELECT {_q(gcols)}, {dist}, 1 AS d FROM __c UNION ALL "
            f"SELECT {_q(gcols)}, {dist}, -1 AS d FROM __r) x "
            f"GROUP BY {_q(gcols)}, {dist} HAVING sum(d) <> 0"
        )
        self.db.execute(
            f"INSERT INTO {gr} SELECT {_q(gcols)}, {dist}, d FROM __gd WHERE true "
            f"ON CONFLICT ({_q(gcols)}, {dist}) DO UPDATE SET n = {gr}.n + excluded.n"
        )
        on = " AND ".join(f"g.{ident(c)} = d.{ident(c)}" for c in [*gcols, lay.distinct])
        self.db.execute(
            f"INSERT INTO __t SELECT {_q(gcols, 'd.')}, sum(d.d), "
            "sum(CASE WHEN g.n > 0 AND g.n - d.d <= 0 THEN 1 WHEN g.n <= 0 AND g.n - d.d > 0 THEN -1 "
            f"ELSE 0 END) FROM __gd d JOIN {gr} g ON {on} GROUP BY {_q(gcols, 'd.')}"
        )
        count, distinct = ident(spec.count_column), ident(spec.distinct_column)
        self.db.execute(
            f"INSERT INTO {st} SELECT * FROM __t WHERE true ON CONFLICT ({_q(spec.group)}) DO UPDATE SET "
            f"{count} = {st}.{count} + excluded.{count}, {distinct} = {st}.{distinct} + excluded.{distinct}"
        )
        if replaced:
            self.db.execute(
                f"DELETE FROM {st} WHERE {count} = 0 AND ({_q(spec.group)}) IN (SELECT {_q(spec.group)} FROM __t)"
            )
            self.db.execute(
                f"DELETE FROM {gr} WHERE n = 0 AND ({_q(gcols)}, {dist}) IN "
                f"(SELECT {_q(gcols)}, {dist} FROM __gd)"
            )

    def _mark_dirty(self, version: int, quarantine: bool) -> None:
        """Event days to export again (a folder destination), and the quarantine."""
        dirty = ident(self.layout.dirty)
        self.db.execute(
            f"INSERT INTO {dirty} SELECT DISTINCT day, ? FROM "
            f"(SELECT day FROM __c UNION SELECT day FROM __r) x WHERE true "
            f"ON CONFLICT (day) DO UPDATE SET version = excluded.version",
            [version],
        )
        if quarantine:
            self.db.execute(
                f"INSERT INTO {dirty} VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET version = excluded.version",
                [QUARANTINE_DAY, version],
            )

    # ---- state -----------------------------------------------------------------------------
    def put_state(self, key: str, value: dict[str, Any]) -> None:
        self.db.execute(
            f"INSERT INTO {ident(STATE)} (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            [key, json.dumps(value, sort_keys=True), dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")],
        )

    def get_state(self, key: str) -> dict[str, Any] | None:
        rows = self.db.query(f"SELECT value FROM {ident(STATE)} WHERE key = ?", [key])
        return json.loads(rows[0][0]) if rows else None

    # ---- reads for the folder export and for tests -------------------------------------------
    def dirty_days(self) -> list[tuple[str, int]]:
        return [
            (r[0], int(r[1]))
            for r in self.db.query(f"SELECT day, version FROM {ident(self.layout.dirty)} ORDER BY day")
        ]

    def mark_exported(self, day: str, version: int) -> None:
        with self.db.transaction():
            self.db.execute(
                f"DELETE FROM {ident(self.layout.dirty)} WHERE day = ? AND version = ?", [day, version]
            )

    def hits_of_day(self, day: str) -> Iterator[pa.Table]:
        """The day's hits, in Arrow tables of a bounded size (a day may hold millions)."""
        spec = self.layout.spec
        schema = [(n, pa.string()) for n in spec.hit_columns]
        sql = f"SELECT {_q(spec.hit_columns)} FROM {ident(self.layout.events)} WHERE day = ?"
        for rows in self.db.query_chunks(sql, [day]):
            yield _table(schema, rows)

    def stats_between(self, column: str, low: str, high: str) -> pa.Table:
        spec = self.layout.spec
        names = [n for n, _ in self.layout.stats_columns()]
        rows = self.db.query(
            f"SELECT {_q(names)} FROM {ident(spec.stats_output)} WHERE {ident(column)} >= ? AND {ident(column)} < ?",
            [low, high],
        )
        types = [(n, pa.string() if t == "text" else pa.int64()) for n, t in self.layout.stats_columns()]
        return _table(types, rows)

    def quarantine(self) -> pa.Table:
        rows = self.db.query(
            f"SELECT source_file, line, reason, raw_line FROM {ident(QUARANTINE)} ORDER BY source_file, line"
        )
        schema = [
            ("source_file", pa.string()),
            ("line", pa.int64()),
            ("reason", pa.string()),
            ("raw_line", pa.string()),
        ]
        return _table(schema, rows)


def _table(schema: list[tuple[str, pa.DataType]], rows: list[tuple[Any, ...]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.table({n: pa.array(list(c), t) for (n, t), c in zip(schema, columns, strict=True)})
