"""Parquet dataset sink: a folder of Parquet files partitioned by load date, any tool reads it.

Layout: `ROOT[/TABLE]/load_date=YYYY-MM-DD/part-*.parquet` (Hive-style, so DuckDB, pandas,
Spark and R's arrow see a `load_date` column). Every file is written under a temporary name
that no reader matches (`.part-*.parquet.tmp`) and renamed into place when the transaction
commits: a reader listing the folder sees whole files only.

The ledger is the files themselves: a file loaded with `Transaction.load` is named after its
source and version (`part-<source hash>-<version hash>.parquet`) and carries them in its
Parquet metadata, so the rename that publishes the rows also records the load.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from ..dates import utc_now
from ..errors import UsageError
from ..urls import local_path
from .base import (
    Data,
    LoadRecord,
    LoadResult,
    as_reader,
    check_supported,
    compare_schemas,
)

META = b"logroll"  # key of the JSON {source, version, rows, loaded_at} in each loaded file


def _h(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


class ParquetSink:
    """`parquet:///relative/dir/` or `parquet:////absolute/dir/`; `#table` adds a subfolder."""

    def __init__(self, url: str):
        rest = url.split("://", 1)[1]
        path, _, fragment = rest.partition("#")
        path = local_path(path)
        if not path:
            raise UsageError(f"no folder in {url}: use parquet:///path/to/dir/")
        self.root = Path(path)
        self.table = fragment or None
        self.url = url
        self.root.mkdir(parents=True, exist_ok=True)
        self._schemas: dict[Path, pa.Schema] = {}
        _discard_stale_temps(self.root)

    def table_dir(self, table: str | None) -> Path:
        name = table or self.table
        if name and ("/" in name or name.startswith((".", "_"))):
            raise UsageError(f"table name {name!r} must be a plain folder name")
        return self.root / name if name else self.root

    @contextlib.contextmanager
    def transaction(self) -> Iterator[ParquetTransaction]:
        tx = ParquetTransaction(self)
        try:
            yield tx
        except BaseException:
            tx.rollback()
            raise
        tx.commit()

    def load(self, data: Data, *, source: str, version: str, source_column: str | None = None) -> LoadResult:
        with self.transaction() as tx:
            return tx.load(None, data, source=source, version=version, source_column=source_column)

    def data_files(self, table: str | None = None) -> list[Path]:
        return sorted(self.table_dir(table).glob("load_date=*/part-*.parquet"))

    def ledger(self, table: str | None = None) -> dict[str, LoadRecord]:
        name = table or self.table or ""
        out: dict[str, LoadRecord] = {}
        for f in self.data_files(table):
            rec = _record(f, name)
            if rec is not None:
                out[rec.source] = rec
        return out

    def get_state(self, key: str) -> str | None:
        path = self.root / "_logroll" / "state" / f"{_h(key, 24)}.json"
        if not path.exists():
            return None
        return str(json.loads(path.read_text())["value"])

    def columns(self, table: str | None = None) -> pa.Schema | None:
        files = self.data_files(table)
        if not files:
            return None
        return pq.read_schema(files[0]).remove_metadata()

    def close(self) -> None:
        """Nothing stays open between transactions."""

    def __repr__(self) -> str:
        return f"ParquetSink({self.url})"


def _discard_stale_temps(root: Path, older_than: float = 3600.0) -> None:
    """Temporary files of writers killed before their commit: no reader sees them, but they
    take space. Only old ones go, so a live writer's file is never touched."""
    cutoff = time.time() - older_than
    for tmp in root.glob("**/.part-*.parquet.tmp"):
        with contextlib.suppress(OSError):
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()


def _record(path: Path, table: str) -> LoadRecord | None:
    meta = pq.read_metadata(path).metadata or {}
    if META not in meta:
        return None
    m = json.loads(meta[META])
    return LoadRecord(
        table, m["source"], m["version"], int(m["rows"]), dt.datetime.fromisoformat(m["loaded_at"])
    )


class ParquetTransaction:
    def __init__(self, sink: ParquetSink):
        self.sink = sink
        self.loaded_at = utc_now()
        self._pending: list[tuple[Path, Path]] = []  # (temporary, final)
        self._replaced: list[Path] = []
        self._locks: list[IO[bytes]] = []
        self._held: set[int] = set()

    def _partition(self, table: str | None) -> Path:
        d = self.sink.table_dir(table) / f"load_date={self.loaded_at.date().isoformat()}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _write(self, table: str | None, reader: pa.RecordBatchReader, name: str, meta: dict | None) -> int:
        schema = reader.schema.remove_metadata()
        check_supported(schema, self.sink.url)
        where = self.sink.table_dir(table)
        # The dataset's schema is fixed by its first file: read it once, not per load.
        existing = self.sink._schemas.get(where) or self.sink.columns(table)
        if existing is not None:
            self.sink._schemas[where] = existing
            compare_schemas(str(where), existing, schema)
        final = self._partition(table) / name
        tmp = final.with_name(f".{final.stem}-{uuid.uuid4().hex[:8]}.parquet.tmp")
        rows = 0
        try:
            with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                for batch in reader:
                    writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
                    rows += batch.num_rows
                if meta is not None:
                    writer.add_key_value_metadata(
                        {
                            META.decode(): json.dumps(
                                {**meta, "rows": rows, "loaded_at": self.loaded_at.isoformat()}
                            )
                        }
                    )
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._pending.append((tmp, final))
        return rows

    def append(self, table: str | None, data: Data) -> int:
        return self._write(table, as_reader(data), f"part-{uuid.uuid4().hex}.parquet", None)

    def upsert(self, table: str | None, data: Data, key: Sequence[str]) -> int:
        raise UsageError(
            f"{self.sink.url} cannot replace rows by key: use a duckdb:/// or postgresql:// destination"
        )

    def _lock(self, key: str) -> None:
        # Two workers loading the same file take turns; the second then finds the first's file.
        # 256 lock files shared by hash, not one per source file forever.
        stripe = int(key[:2], 16)
        if stripe in self._held:
            return  # flock on a second descriptor of the same file would wait on ourselves
        d = self.sink.root / "_logroll" / "locks"
        d.mkdir(parents=True, exist_ok=True)
        fh = open(d / f"{stripe:02x}.lock", "ab")
        fcntl.flock(fh, fcntl.LOCK_EX)
        self._locks.append(fh)
        self._held.add(stripe)

    def load(
        self, table: str | None, data: Data, *, source: str, version: str, source_column: str | None = None
    ) -> LoadResult:
        src = _h(source, 20)
        self._lock(src)
        name = table or self.sink.table or ""
        found = sorted(self.sink.table_dir(table).glob(f"load_date=*/part-{src}-*.parquet"))
        previous = None
        for f in found:
            rec = _record(f, name)
            if rec is not None and rec.version == version:
                # A crash after publishing a new version but before removing the old one
                # leaves both: finish that cleanup now.
                self._replaced.extend(g for g in found if g != f)
                return LoadResult("skipped", 0)
            previous = rec.version if rec is not None else previous
        self._replaced.extend(found)
        rows = self._write(
            table,
            as_reader(data),
            f"part-{src}-{_h(version, 12)}.parquet",
            {"source": source, "version": version},
        )
        return LoadResult("loaded", rows, previous)

    def put_state(self, key: str, value: str) -> None:
        d = self.sink.root / "_logroll" / "state"
        d.mkdir(parents=True, exist_ok=True)
        final = d / f"{_h(key, 24)}.json"
        tmp = d / f".{final.name}-{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_text(json.dumps({"key": key, "value": value, "updated_at": utc_now().isoformat()}))
        self._pending.append((tmp, final))

    def commit(self) -> None:
        try:
            for tmp, final in self._pending:
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, final)
            for old in self._replaced:
                if old not in {final for _, final in self._pending}:
                    old.unlink(missing_ok=True)
        finally:
            self._release()

    def rollback(self) -> None:
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        for fh in self._locks:
            fh.close()
        self._locks.clear()
        self._held.clear()
        self._pending.clear()
        self._replaced.clear()
