"""Stage one JSON-lines file version (the counterpart of stage.csv)."""

from __future__ import annotations

from pathlib import Path

from .. import faults
from ..engines.base import Engine
from ..pipelines.base import Pipeline
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
