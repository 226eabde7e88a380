"""The quarantine: one CSV file per source file version with its rejected rows and why."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

QUARANTINE_COLUMNS = ("source_file", "line", "reason", "raw_line")


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
