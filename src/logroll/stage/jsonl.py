"""Stage one JSON-lines file version (the counterpart of stage.csv): through the reading layer
(reader_jsonl: compressed files, CR endings, a JSON array, NUL bytes and lines over the limit),
then the engine, then the accounting check.

Invariant, checked for every file version: the lines (or array elements) counted by the reading
layer, apart from any JSON reader, are each blank, an early reject of the reading layer, or a
row the engine read (valid or rejected):
    records == blank + early rejects + rows read by the engine
A file whose numbers do not add up, or whose archive is damaged, fails with the numbers
(StageFailed): nothing of it is published, and the next run tries it again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa

from .. import faults
from ..engines.base import Engine, JsonInput
from ..errors import StageFailed
from ..pipelines.base import Pipeline
from .dialect import DEFAULT_LIMITS, Limits
from .reader_jsonl import PreparedJson, prepare_jsonl
from .staged import Staged, part_dir_for


def stage_jsonl(
    engine: Engine,
    path: Path,
    source_uri: str,
    version: str,
    pipeline: Pipeline,
    staged_root: Path,
    quarantine_root: Path,
    quarantine_name: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> Staged:
    """Stage one JSON-lines file version into parts per event day; its rejected lines (with the
    reading layer's) go to QUARANTINE_ROOT/QUARANTINE_NAME.rejects.csv."""
    part_dir = part_dir_for(staged_root, source_uri, version)
    target = quarantine_root / f"{quarantine_name}.rejects.csv"
    spool = part_dir.with_name(part_dir.name + ".spool")
    spool.mkdir(parents=True, exist_ok=True)
    try:
        prep = prepare_jsonl(path, limits, spool, pipeline.encoding, pipeline.compression)
        try:
            source = JsonInput(
                prep.path_for_reader,
                source_uri,
                prep.expected_reader,
                early_table(prep),
                None if prep.line_map is None else pa.array(prep.line_map, pa.int64()),
            )
            result = engine.stage_jsonl(source, pipeline, part_dir, target)
        finally:
            prep.cleanup()
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    faults.point("stage.parts_written")
    early = len(prep.early_rejects)
    staged = Staged(
        result.rows_read + early,
        result.rows_valid,
        result.rows_rejected + early,
        result.parts,
        str(target) if result.rows_rejected + early else None,
        part_dir,
        records=prep.records,
        blank=prep.blank,
    )
    problem = accounting_problem(prep, result.rows_read, result.reader)
    if problem or prep.failure:
        shutil.rmtree(part_dir, ignore_errors=True)
        target.unlink(missing_ok=True)  # nothing of a failed file is kept: the next run reads it again
        raise StageFailed(problem or f"{prep.failure}; {_counted(staged)}", staged.counts())
    return staged


def early_table(prep: PreparedJson) -> pa.Table | None:
    """The reading layer's rejects (line, reason, raw) as the quarantine takes them (None when
    there are none: Arrow arrays from Python lists import pandas, a second of start-up)."""
    if not prep.early_rejects:
        return None
    return pa.table(
        {
            "line": pa.array([e.line for e in prep.early_rejects], pa.int64()),
            "reason": pa.array([e.reason for e in prep.early_rejects], pa.string()),
            "raw": pa.array([e.raw for e in prep.early_rejects], pa.string()),
        }
    )


def accounting_problem(prep: PreparedJson, read: int, reader: str) -> str | None:
    """Why the counts do not add up, or None."""
    if read != prep.expected_reader:
        return (
            f"records do not add up: {prep.expected_reader:,} non-blank lines by an independent count, "
            f"the JSON reader ({reader}) read {read:,}"
        )
    total = prep.blank + len(prep.early_rejects) + read
    if total != prep.records:
        return (
            f"records do not add up: {prep.records:,} records != {prep.blank:,} blank "
            f"+ {len(prep.early_rejects):,} early rejects + {read:,} read"
        )
    return None


def _counted(staged: Staged) -> str:
    return (
        f"{staged.records:,} records read before it ({staged.rows_valid:,} valid, "
        f"{staged.rows_rejected:,} rejected, {staged.blank:,} blank)"
    )
