"""The quarantine: one CSV file per source file version with its rejected rows and why."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

QUARANTINE_COLUMNS = ("source_file", "line", "reason", "raw_line")


_UNSAFE = re.compile(r"[^A-Za-z0-9._/-]")
_MAX_NAME = 120  # characters of the source's relative path kept in the name


def quarantine_name(rel: str, uri: str, version: str) -> str:
    """A quarantine file name (without suffix) unique per source file version: the source's
    relative path made safe (so `a:b.csv` and `a_b.csv` become alike), then a hash of the exact
    uri and version (so they never collide); a long path is cut and the hash keeps it unique."""
    safe = "/".join(p for p in _UNSAFE.sub("_", rel).split("/") if p not in ("", ".", ".."))
    if len(safe) > _MAX_NAME:
        safe = safe[-_MAX_NAME:].lstrip("/")
    digest = hashlib.sha256(f"{uri}\0{version}".encode()).hexdigest()[:12]
    return f"{safe or 'file'}.{digest}"


def write_quarantine(table: pa.Table, root: Path, name: str) -> str:
    target = root / f"{name}.rejects.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    pacsv.write_csv(table, tmp, pacsv.WriteOptions(quoting_style="needed"))
    tmp.replace(target)
    return str(target)


def whole_file_quarantine(root: Path, name: str, source_uri: str, reason: str, header: str) -> str:
    table = pa.table(
        {
            "source_file": [source_uri],
            "line": pa.array([1], pa.int64()),
            "reason": [reason],
            "raw_line": [header],
        }
    )
    return write_quarantine(table, root, name)
