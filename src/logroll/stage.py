"""Parse and validate one file version: typed parts per event day, and a quarantine of bad rows.

Rows are never dropped silently: every row read is either valid (in a part) or rejected (in the
quarantine, with its line and reason), so rows_read = rows_valid + rows_rejected holds exactly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from . import faults
from .engines import passthrough
from .engines.base import Engine
from .errors import EXCERPT_CHARS, FileRejected, safe_text
from .pipelines import detect
from .pipelines.base import Pipeline

QUARANTINE_COLUMNS = ("source_file", "line", "reason", "raw_line")


@dataclass
class Staged:
    rows_read: int
    rows_valid: int
    rows_rejected: int
    parts: dict[str, tuple[int, str]] = field(default_factory=dict)
    quarantine: str | None = None
    part_dir: Path | None = None  # where the parts were written


def file_key(uri: str, version: str) -> str:
    """A stable folder name for one file version's staged output."""
    return hashlib.sha256(f"{uri}\0{version}".encode()).hexdigest()[:20]


def part_dir_for(staged_root: Path, uri: str, version: str) -> Path:
    """A folder to stage a file version into that does not exist yet.

    An existing one may be what the catalog points at (`--force` re-stages the same version):
    rewriting it in place, a kill would leave the catalog pointing at half-written parts. The
    parts a commit replaces are removed after it; leftovers of a killed run by the garbage
    collection.
    """
    part_dir = staged_root / file_key(uri, version)
    if part_dir.exists():
        part_dir = part_dir.with_name(f"{part_dir.name}-{secrets.token_hex(4)}")
    return part_dir


def read_header(path: Path, delimiter: str = ",") -> list[str] | None:
    """The header row's names (BOM and quotes handled), or None for an empty file."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        head = fh.read(1 << 20)
    if not head.strip():
        return None
    first = next(csv.reader(io.StringIO(head), delimiter=delimiter), [])
    return [name.strip() for name in first]


def check_header(header: list[str], pipeline: Pipeline) -> list[str]:
    """Map header names onto declared columns (exact, then case-insensitive)."""
    dupes = {h for h in header if header.count(h) > 1 and h}
    if dupes:
        raise FileRejected(f"header repeats column(s) {safe_text(', '.join(sorted(dupes)), EXCERPT_CHARS)}")
    lowered = {h.lower(): h for h in header}
    resolved = list(header)
    missing = []
    for col in pipeline.columns:
        if col.header in header or col.sql is not None:
            continue
        match = lowered.get(col.header.lower())
        if match is not None:
            resolved[header.index(match)] = col.header
        elif col.required:
            missing.append(col.header)
    if missing:
        raise FileRejected(
            f"header lacks required column(s) {', '.join(missing)} (found: {safe_text(', '.join(header), EXCERPT_CHARS) if header else 'nothing'})"
        )
    return resolved


def _records(path: Path, delimiter: str = ",") -> Iterator[tuple[int, list[str], str]]:
    """(line, fields, raw text) per CSV record, numbered the way DuckDB numbers them:
    the header is line 1, a blank line counts as one, a quoted multi-line record as one."""
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            for line in fh:
                consumed.append(line)
                yield line

    for number, fields in enumerate(csv.reader(lines(), delimiter=delimiter), start=1):
        raw = "".join(consumed).rstrip("\r\n")
        consumed.clear()
        yield number, fields, raw


def locate(
    path: Path, ordinals: list[int], skip_lines: set[int], delimiter: str = ","
) -> dict[int, tuple[int, str]]:
    """Line and raw text of the parsed rows numbered `ordinals` (1-based, in file order)."""
    wanted = set(ordinals)
    found: dict[int, tuple[int, str]] = {}
    ordinal = 0
    for number, fields, raw in _records(path, delimiter):
        if number == 1 or not fields or number in skip_lines:
            continue
        ordinal += 1
        if ordinal in wanted:
            found[ordinal] = (number, raw)
            if len(found) == len(wanted):
                break
    return found


def stage_csv(
    engine: Engine,
    path: Path,
    source_uri: str,
    version: str,
    pipeline: Pipeline,
    staged_root: Path,
    quarantine_root: Path,
    quarantine_name: str,
) -> Staged:
    header = read_header(path, pipeline.delimiter)
    if header is None:
        return Staged(0, 0, 0)
    detected, problem = detect.resolve(path, header, pipeline)
    if problem:
        raise FileRejected(problem)
    if detected is None:  # a header and no data row: nothing to detect, nothing to stage
        return Staged(0, 0, 0)
    header = check_header(detected, pipeline)
    if pipeline.passthrough:
        problem = passthrough.header_problem(header, pipeline)
        if problem:
            raise FileRejected(problem)
    part_dir = part_dir_for(staged_root, source_uri, version)
    result = engine.stage_csv(path, header, pipeline, part_dir)
    faults.point("stage.parts_written")
    structural, semantic = result.structural, result.semantic
    rows = []
    if semantic.num_rows:
        ords = semantic["__ord"].to_pylist()
        where = locate(path, ords, set(structural["line"].to_pylist()), pipeline.delimiter)
        for o, reason in zip(ords, semantic["reason"].to_pylist(), strict=True):
            line, raw = where.get(o, (None, ""))
            rows.append((line, reason, raw))
    rejected = structural.num_rows + semantic.num_rows
    quarantine = None
    if rejected:
        merged = pa.table(
            {
                "source_file": pa.array([source_uri] * rejected, pa.string()),
                "line": pa.concat_arrays(
                    [
                        structural["line"].combine_chunks().cast(pa.int64()),
                        pa.array([r[0] for r in rows], pa.int64()),
                    ]
                ),
                "reason": pa.concat_arrays(
                    [structural["reason"].combine_chunks(), pa.array([r[1] for r in rows], pa.string())]
                ),
                "raw_line": pa.concat_arrays(
                    [
                        structural["raw"].combine_chunks().cast(pa.string()),
                        pa.array([r[2] for r in rows], pa.string()),
                    ]
                ),
            }
        ).sort_by([("line", "ascending")])
        quarantine = write_quarantine(merged, quarantine_root, quarantine_name)
    return Staged(
        result.rows_valid + rejected, result.rows_valid, rejected, result.parts, quarantine, part_dir
    )


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


def stage_jsonl(
    engine: Engine,
    path: Path,
    source_uri: str,
    version: str,
    pipeline: Pipeline,
    staged_root: Path,
    quarantine_root: Path,
    quarantine_name: str,
) -> Staged:
    """Stage one JSON-lines file version (the counterpart of stage_csv)."""
    part_dir = part_dir_for(staged_root, source_uri, version)
    target = quarantine_root / f"{quarantine_name}.rejects.csv"
    result = engine.stage_jsonl(path, source_uri, pipeline, part_dir, target)
    faults.point("stage.parts_written")
    quarantine = str(target) if result.rows_rejected else None
    return Staged(
        result.rows_read, result.rows_valid, result.rows_rejected, result.parts, quarantine, part_dir
    )
