"""State transitions of the catalog, through SQLAlchemy Core (SQLite file or PostgreSQL).

Each method is one transaction: a file's staged parts replace its previous version's in the
same commit that records the new version, so a crash leaves either the old state or the new.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, delete, event, insert, inspect, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, OperationalError, ProgrammingError

from ..dates import utc_now
from ..errors import CatalogCorrupt, DestinationMismatch, StateNotFound, UsageError, first_line
from ..urls import redact_url
from . import schema as s


def _sqlite_url(path: str, read_only: bool = False) -> str:
    resolved = Path(path).expanduser().resolve()
    if read_only:  # SQLite's own read-only mode: nothing is created, a read-only file is fine
        return f"sqlite:///file:{quote(str(resolved))}?mode=ro&uri=true"
    return f"sqlite:///{resolved}"


@dataclass(frozen=True)
class PartRow:
    file_id: int
    day: str
    version: str
    rows: int
    path: str


class Catalog:
    """The persisted state of every file, day and run.

    `read_only` (status, report): the state must exist already; nothing is created or written.
    """

    def __init__(self, url: str, read_only: bool = False):
        self.shown = redact_url(url)  # also makes the URL's secrets known to urls.scrub
        self.read_only = read_only
        if "://" not in url or url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///")).expanduser()
            if read_only and not path.is_file():
                raise StateNotFound(
                    f"no state at {path}: nothing has run here yet (check --dest and --state)"
                )
            if not read_only:
                path.parent.mkdir(parents=True, exist_ok=True)
            url = _sqlite_url(str(path), read_only)
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        self.url = url
        try:
            self.engine: Engine = create_engine(url, future=True)
        except (ArgumentError, ImportError) as exc:
            raise UsageError(f"cannot open state {self.shown}: {first_line(exc)}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_read_pragmas if read_only else _sqlite_pragmas)
        if read_only:
            try:
                self._require_tables()
            except StateNotFound:
                if not self.url.endswith("mode=ro&uri=true"):
                    raise
                # A WAL-mode file in a folder this user cannot write: SQLite cannot make the
                # shared-memory file a read needs. Read it as a file nobody changes meanwhile.
                self.engine.dispose()
                self.url += "&immutable=1"
                self.engine = create_engine(self.url, future=True)
                event.listen(self.engine, "connect", _sqlite_read_pragmas)
                self._require_tables()
        else:
            self._create_tables()

    def _create_tables(self) -> None:
        for attempt in range(3):
            try:
                s.metadata.create_all(self.engine)
                self._add_columns()
                return
            except (OperationalError, ProgrammingError, IntegrityError) as exc:
                # Two processes opening a new state at once both see no table and both create
                # it: the loser's "already exists" means the tables are there now; look again.
                if attempt < 2 and "exist" in str(exc.orig).lower():
                    time.sleep(0.1 * (attempt + 1))
                    continue
                raise UsageError(
                    f"cannot open state {self.shown}: {first_line(exc.orig)}; check --state"
                ) from None
            except DatabaseError as exc:  # e.g. "file is not a database": a damaged or foreign file
                raise self._corrupt(exc) from None

    def _corrupt(self, exc: DatabaseError) -> CatalogCorrupt:
        return CatalogCorrupt(
            f"state {self.shown} is not a readable catalog ({first_line(exc.orig)}): move it "
            "away and run again (every source file is staged anew), or pass another --state"
        )

    def _require_tables(self) -> None:
        try:
            with self.engine.connect() as conn:
                found = set(inspect(conn).get_table_names())
        except (OperationalError, ProgrammingError) as exc:
            raise StateNotFound(
                f"cannot read state {self.shown}: {first_line(exc.orig)}; check --state"
            ) from None
        except DatabaseError as exc:
            raise self._corrupt(exc) from None
        if not {"files", "parts", "partitions", "runs"} <= found:
            raise StateNotFound(
                f"no logroll state in {self.shown}: nothing has run with it yet (check --state)"
            )

    def _add_columns(self) -> None:
        """Columns added since the first release, on a state that predates them."""
        for table, column, sql_type in s.ADDED_COLUMNS:
            have = {c["name"] for c in inspect(self.engine).get_columns(table)}
            if column in have:
                continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(text(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {sql_type}'))
            except (OperationalError, ProgrammingError) as exc:
                # another process added it first ("duplicate column"/"already exists")
                if column not in {c["name"] for c in inspect(self.engine).get_columns(table)}:
                    raise UsageError(
                        f"cannot add column {column} to the state's {table} table: {first_line(exc.orig)}"
                    ) from None

    def __repr__(self) -> str:
        return f"Catalog({self.shown})"

    def close(self) -> None:
        self.engine.dispose()

    # ---- files -------------------------------------------------------------------------
    def files(self, pipeline: str) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.files).where(s.files.c.pipeline == pipeline)).mappings()
            return {r["uri"]: dict(r) for r in rows}

    def _upsert_file(self, conn: Any, pipeline: str, uri: str, values: dict[str, Any]) -> int:
        existing = conn.execute(
            select(s.files.c.id).where(s.files.c.pipeline == pipeline, s.files.c.uri == uri)
        ).scalar()
        if existing is None:
            return int(
                conn.execute(
                    insert(s.files).values(pipeline=pipeline, uri=uri, **values)
                ).inserted_primary_key[0]
            )
        conn.execute(update(s.files).where(s.files.c.id == existing).values(**values))
        return int(existing)

    def record_staged(
        self,
        pipeline: str,
        uri: str,
        size: int,
        version: str,
        counts: dict[str, int],
        day_parts: dict[str, tuple[int, str]],
        quarantine: str | None,
        run_id: int,
    ) -> list[str]:
        """Record a staged file version and its parts; returns the paths of the parts it replaced."""
        with self.engine.begin() as conn:
            file_id = self._upsert_file(
                conn,
                pipeline,
                uri,
                dict(
                    size=size,
                    version=version,
                    status="staged",
                    error=None,
                    quarantine=quarantine,
                    staged_at=utc_now(),
                    run_id=run_id,
                    **counts,
                ),
            )
            old = [r.path for r in conn.execute(select(s.parts.c.path).where(s.parts.c.file_id == file_id))]
            conn.execute(delete(s.parts).where(s.parts.c.file_id == file_id))
            if day_parts:
                conn.execute(
                    insert(s.parts),
                    [
                        dict(
                            file_id=file_id, day=day, pipeline=pipeline, version=version, rows=rows, path=path
                        )
                        for day, (rows, path) in sorted(day_parts.items())
                    ],
                )
        return [p for p in old if p not in {path for _, path in day_parts.values()}]

    def record_file_problem(
        self,
        pipeline: str,
        uri: str,
        size: int,
        version: str,
        status: str,
        error: str,
        run_id: int,
        quarantine: str | None = None,
        *,
        counts: dict[str, int] | None = None,
    ) -> list[str]:
        """A file rejected whole (bad header) or failed (unreadable, or its records do not add
        up: `counts` then says what was read). A rejected file's old parts are retracted."""
        with self.engine.begin() as conn:
            file_id = self._upsert_file(
                conn,
                pipeline,
                uri,
                dict(
                    size=size,
                    version=version,
                    status=status,
                    error=error,
                    staged_at=utc_now(),
                    run_id=run_id,
                    rows_read=0,
                    rows_valid=0,
                    rows_rejected=0,
                    records=None,
                    records_header=None,
                    records_blank=None,
                    records_skipped=None,
                    quarantine=quarantine,
                )
                | (counts or {}),
            )
            if status == "failed":
                return []  # a transient failure keeps what the previous version contributed
            old = [r.path for r in conn.execute(select(s.parts.c.path).where(s.parts.c.file_id == file_id))]
            conn.execute(delete(s.parts).where(s.parts.c.file_id == file_id))
            return old

    # ---- parts and partitions -------------------------------------------------------------
    def parts(self, pipeline: str, days: Iterable[str] | None = None) -> dict[str, list[PartRow]]:
        query = select(s.parts).where(s.parts.c.pipeline == pipeline)
        if days is not None:
            query = query.where(s.parts.c.day.in_(sorted(set(days))))
        out: dict[str, list[PartRow]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query.order_by(s.parts.c.day, s.parts.c.file_id)).mappings():
                out.setdefault(r["day"], []).append(
                    PartRow(r["file_id"], r["day"], r["version"], r["rows"], r["path"])
                )
        return out

    def forget_file(self, pipeline: str, uri: str, run_id: int) -> list[str]:
        """Retract a file version whose source is gone: its parts leave the catalog (their days
        become dirty) and it is recorded as `forgotten`, in one transaction. Returns the paths
        of the parts it had."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(s.files.c.id).where(s.files.c.pipeline == pipeline, s.files.c.uri == uri)
            ).first()
            if row is None:
                return []
            old = [r.path for r in conn.execute(select(s.parts.c.path).where(s.parts.c.file_id == row.id))]
            conn.execute(delete(s.parts).where(s.parts.c.file_id == row.id))
            conn.execute(
                update(s.files)
                .where(s.files.c.id == row.id)
                .values(status="forgotten", error=None, staged_at=utc_now(), run_id=run_id)
            )
        return old

    def drop_partition(self, pipeline: str, day: str) -> None:
        """Forget a day that has no input left (its outputs were removed first)."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(s.partitions).where(s.partitions.c.pipeline == pipeline, s.partitions.c.day == day)
            )

    def partitions(self, pipeline: str) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.partitions).where(s.partitions.c.pipeline == pipeline)).mappings()
            out = {}
            for r in rows:
                d = dict(r)
                d["outputs"] = json.loads(d["outputs"] or "{}")
                out[r["day"]] = d
            return out

    def _set_partition(self, pipeline: str, day: str, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            _put(conn, s.partitions, pipeline, day, values)

    def record_built(
        self,
        pipeline: str,
        day: str,
        fingerprint: str,
        counts: dict[str, int],
        outputs: dict[str, str],
        run_id: int,
        state: dict[str, Any] | None = None,
    ) -> None:
        """The day built, and its maintained state (None: it keeps none) in the same commit."""
        values = dict(
            status="built",
            fingerprint=fingerprint,
            outputs=json.dumps(outputs, sort_keys=True),
            error=None,
            built_at=utc_now(),
            run_id=run_id,
            **counts,
        )
        with self.engine.begin() as conn:
            _put(conn, s.partitions, pipeline, day, values)
            _put_state(conn, pipeline, day, state, run_id)

    def record_day_state(self, pipeline: str, day: str, state: dict[str, Any], run_id: int) -> None:
        """A day's state brought up to date without building it (--stage-only)."""
        with self.engine.begin() as conn:
            _put_state(conn, pipeline, day, state, run_id)

    def day_states(self, pipeline: str) -> dict[str, dict[str, Any]]:
        """Each day's maintained state: signature, files, parts ([file_id, version, rows]),
        rows_in, rows_unique, run_id."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.day_states).where(s.day_states.c.pipeline == pipeline)).mappings()
            out = {}
            for r in rows:
                d = dict(r)
                d["files"], d["parts"] = json.loads(d["files"]), json.loads(d["parts"])
                out[r["day"]] = d
            return out

    def record_partition_failed(self, pipeline: str, day: str, error: str, run_id: int) -> None:
        # The fingerprint is cleared so the day counts as dirty until a build succeeds.
        self._set_partition(
            pipeline, day, dict(status="failed", fingerprint=None, error=error, run_id=run_id)
        )

    # ---- the destination this state serves --------------------------------------------------
    def binding(self, pipeline: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("bindings"):
                return None  # a state written before bindings existed, read read-only
            row = conn.execute(select(s.bindings).where(s.bindings.c.pipeline == pipeline)).mappings().first()
        return dict(row) if row else None

    def bind(self, pipeline: str, dest_id: str, identity: str, shown: str) -> None:
        """Record that `pipeline`'s rows describe destination `dest_id`, or refuse (one line naming
        the fix) when they describe another one. A state from before identities is bound now."""
        row = self.binding(pipeline)
        if row is not None and row["dest_id"] != dest_id:
            if row["identity"] == identity:
                raise DestinationMismatch(
                    f"the state {self.shown} was kept for an earlier {shown} (id {row['dest_id']}), which "
                    f"was emptied or recreated (its _logroll/id is now {dest_id}): if it is the same, put "
                    f"back _logroll/id with id {row['dest_id']}; else give {pipeline} a new --state"
                )
            raise DestinationMismatch(
                f"the state {self.shown} serves {pipeline} for {row['dest']}, not for {shown}: "
                "give this destination a --state of its own"
            )
        if self.read_only or (row is not None and row["identity"] == identity and row["dest"] == shown):
            return
        values = dict(dest_id=dest_id, identity=identity, dest=shown, bound_at=utc_now())
        with self.engine.begin() as conn:
            if row is None:
                conn.execute(insert(s.bindings).values(pipeline=pipeline, **values))
            else:  # the same destination under another spelling (or copied with its state)
                conn.execute(update(s.bindings).where(s.bindings.c.pipeline == pipeline).values(**values))

    # ---- runs ----------------------------------------------------------------------------
    def start_run(self, pipeline: str) -> int:
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    insert(s.runs).values(pipeline=pipeline, started_at=utc_now(), status="running")
                ).inserted_primary_key[0]
            )

    def mark_crashed(self, pipeline: str, current: int) -> list[int]:
        """Mark the runs of `pipeline` still said to be running, other than `current`, as crashed
        (killed without a word) and return their ids. Call it holding the pipeline's run lock:
        then none of them is alive."""
        with self.engine.begin() as conn:
            query = select(s.runs.c.id).where(
                s.runs.c.pipeline == pipeline, s.runs.c.status == "running", s.runs.c.id != current
            )
            dead = [int(r.id) for r in conn.execute(query)]
            if dead:
                conn.execute(
                    update(s.runs)
                    .where(s.runs.c.id.in_(dead))
                    .values(status="crashed", finished_at=utc_now())
                )
        return dead

    def finish_run(self, run_id: int, status: str, report: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.id == run_id)
                .values(
                    finished_at=utc_now(),
                    status=status,
                    report=json.dumps(report, sort_keys=True, default=str),
                )
            )

    def runs(self, pipeline: str, limit: int = 20) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.runs).where(s.runs.c.pipeline == pipeline).order_by(s.runs.c.id.desc()).limit(limit)
            ).mappings()
            out = []
            for r in rows:
                d = dict(r)
                d["report"] = json.loads(d["report"]) if d["report"] else None
                out.append(d)
            return out


def _put(conn: Any, table: Any, pipeline: str, day: str, values: dict[str, Any]) -> None:
    """Insert or update the row of (pipeline, day) in `table`."""
    where = (table.c.pipeline == pipeline, table.c.day == day)
    if conn.execute(select(table.c.day).where(*where)).first():
        conn.execute(update(table).where(*where).values(**values))
    else:
        conn.execute(insert(table).values(pipeline=pipeline, day=day, **values))


def _put_state(conn: Any, pipeline: str, day: str, state: dict[str, Any] | None, run_id: int) -> None:
    if state is None:
        conn.execute(
            delete(s.day_states).where(s.day_states.c.pipeline == pipeline, s.day_states.c.day == day)
        )
        return
    values = dict(
        signature=state["signature"],
        files=json.dumps(list(state["files"])),
        parts=json.dumps(sorted([int(f), str(v), int(n)] for f, v, n in state["parts"])),
        rows_in=int(state["rows_in"]),
        rows_unique=int(state["rows_unique"]),
        run_id=run_id,
    )
    _put(conn, s.day_states, pipeline, day, values)


def _sqlite_read_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets `status` read while a run writes; the busy timeout makes concurrent writers wait.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
