"""Stage one CSV file version: its records counted independently of DuckDB (reader.py), its rows
typed into parts per event day in one pass (the engine), its bad records quarantined with their
physical line and reason, and the accounting checked before anything is recorded:

    records == header + skipped + blank + valid + rejected

A mismatch re-reads the file through the sanitizer; a second mismatch fails the file with both
numbers (StageFailed), as does a damaged archive: nothing of such a file is published.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from .. import faults
from ..engines import passthrough
from ..engines.base import CsvInput, Engine, StagedFile
from ..errors import FileRejected, StageFailed, first_line, safe_text
from ..pipelines import detect
from ..pipelines.base import NOT_IN_FILE, Pipeline
from ..quote import literal
from .dialect import DEFAULT_LIMITS, Dialect, Limits, Prepared, Verdict
from .grammar import header_problems
from .quarantine import write_quarantine
from .reader import prepare, read_csv_sql, record_texts, row_lines, verify
from .staged import Staged, part_dir_for


def dialect_of(pipeline: Pipeline) -> Dialect:
    """The reading layer's dialect of a pipeline's `input:` keys."""
    return Dialect(
        delimiter=pipeline.delimiter,
        quote=pipeline.quote,
        escape=pipeline.escape,
        header=pipeline.header,
        skip_rows=pipeline.skip_rows,
        encoding=pipeline.encoding,
        comment=pipeline.comment,
        compression=pipeline.compression,
    )


def check_header(header: list[str], pipeline: Pipeline) -> list[str]:
    """Map header names onto declared columns (exact, then case-insensitive). Linear in width."""
    for problem in header_problems(header):
        raise FileRejected(safe_text(problem, 300))
    present = set(header)
    position = {h: i for i, h in enumerate(header)}
    lowered: dict[str, str] = {}
    for h in header:
        lowered.setdefault(h.lower(), h)
    resolved = list(header)
    missing = []
    for col in pipeline.columns:
        if col.header in present or col.sql is not None:
            continue
        match = lowered.get(col.header.lower())
        if match is not None:
            resolved[position[match]] = col.header
        elif col.required:
            missing.append(col.header)
    if missing:
        found = ", ".join(header[:30]) + (f" and {len(header) - 30:,} more" if len(header) > 30 else "")
        raise FileRejected(
            f"header lacks required column(s) {safe_text(', '.join(missing), 300)} "
            f"(found: {safe_text(found, 300) or 'nothing'})"
        )
    return resolved


@dataclass(frozen=True)
class CsvFile:
    """One CSV file version to stage, and where its parts and quarantine go."""

    uri: str
    version: str
    staged_root: Path
    quarantine_root: Path
    quarantine_name: str
    arrival: str | None = None  # YYYY-MM-DD of its date folder (event_time: arrival)
    # Called with the header as read (names stripped; [] for an empty file) before anything is
    # staged: ingest's exact-schema check, on the very parse the staging uses (any dialect).
    header_check: Callable[[list[str]], None] | None = None


def stage_csv(
    engine: Engine,
    path: Path,
    source_uri: str,
    version: str,
    pipeline: Pipeline,
    staged_root: Path,
    quarantine_root: Path,
    quarantine_name: str,
    *,
    arrival: str | None = None,
    header_check: Callable[[list[str]], None] | None = None,
) -> Staged:
    job = CsvFile(source_uri, version, staged_root, quarantine_root, quarantine_name, arrival, header_check)
    return stage_csv_file(engine, path, pipeline, job)


def stage_csv_file(
    engine: Engine, path: Path, pipeline: Pipeline, job: CsvFile, limits: Limits = DEFAULT_LIMITS
) -> Staged:
    part_dir = part_dir_for(job.staged_root, job.uri, job.version)
    spool = part_dir.with_name(part_dir.name + ".spool")
    spool.mkdir(parents=True, exist_ok=True)
    declared = [c.header for c in pipeline.columns if c.sql is None and c.header != NOT_IN_FILE]
    dialect = dialect_of(pipeline)
    try:
        prep = prepare(path, dialect, limits, spool, declared)
        try:
            header = _resolve_header(prep, pipeline, job.header_check)
            if header is None:  # no header, or a header and no data row to detect from
                return _nothing(prep)
            staged, verdict = _stage_once(engine, prep, header, pipeline, part_dir, job.arrival)
            if not verdict.ok and not prep.spooled:  # DuckDB disagreed with the fast scan
                first = "; ".join(verdict.problems)
                prep.cleanup()
                prep = prepare(path, dialect, limits, spool, declared, force_sanitize=True)
                staged, verdict = _stage_once(engine, prep, header, pipeline, part_dir, job.arrival)
                if not verdict.ok:
                    verdict.problems.insert(0, f"first read: {first}")
            faults.point("stage.parts_written")
            counts = _counts(prep, staged, verdict)
            if not verdict.ok:
                shutil.rmtree(part_dir, ignore_errors=True)
                raise StageFailed(f"records do not add up: {'; '.join(verdict.problems)}", counts)
            if prep.failure:
                shutil.rmtree(part_dir, ignore_errors=True)
                raise StageFailed(
                    f"{prep.failure}; {counts['records']:,} records read before it "
                    f"({counts['rows_valid']:,} valid, {counts['rows_rejected']:,} rejected)",
                    counts,
                )
            quarantine = _quarantine(prep, staged, verdict, job, limits)
        finally:
            prep.cleanup()
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    return Staged(
        counts["rows_read"], counts["rows_valid"], counts["rows_rejected"], staged.parts, quarantine,
        part_dir, records=counts["records"], header=counts["records_header"],
        blank=counts["records_blank"], skipped=counts["records_skipped"],
    )  # fmt: skip


def _resolve_header(
    prep: Prepared, pipeline: Pipeline, header_check: Callable[[list[str]], None] | None = None
) -> list[str] | None:
    if header_check is not None and pipeline.header:
        header_check([h.strip() for h in prep.header] if prep.ncols else [])
    if not prep.ncols:
        return None
    if not pipeline.header:
        return list(prep.header)
    header = [h.strip() for h in prep.header]
    # the file DuckDB reads: its header line (or an empty line where the spool removed it) first
    detected, problem = detect.resolve(prep.path_for_duckdb, header, pipeline)
    if problem:
        raise FileRejected(problem)
    if detected is None:
        return None
    header = check_header(detected, pipeline)
    if pipeline.passthrough:
        problem = passthrough.header_problem(header, pipeline)
        if problem:
            raise FileRejected(safe_text(problem, 300))
    return header


def _stage_once(
    engine: Engine, prep: Prepared, header: list[str], pipeline: Pipeline, part_dir: Path, arrival: str | None
) -> tuple[StagedFile, Verdict]:
    """One read of the prepared file into parts, and the verdict of the accounting check."""
    token = secrets.token_hex(6)
    rejects, scan = f"__rej_{token}", f"__scan_{token}"
    nulls = ", ".join(literal(v) for v in pipeline.null_values)
    extra = f", nullstr=[{nulls}]" if nulls else ""
    reader = read_csv_sql(prep, rejects_table=rejects, rejects_scan=scan, extra=extra)
    try:
        staged = engine.stage_csv(CsvInput(reader, rejects, scan, arrival), header, pipeline, part_dir)
    except duckdb.Error as exc:  # DuckDB gave up on the file: never trusted, never final
        shutil.rmtree(part_dir, ignore_errors=True)
        empty = StagedFile(0, 0, {}, _no_structural(), _no_semantic())
        return empty, Verdict(False, [f"DuckDB failed: {safe_text(first_line(exc), 300)}"], [])
    lines = staged.structural["line"].to_pylist()
    raws = staged.structural["raw"].to_pylist()
    verdict = verify(prep, staged.rows, list(zip(lines, raws, strict=True)))
    if not verdict.ok:
        shutil.rmtree(part_dir, ignore_errors=True)
    return staged, verdict


def _counts(prep: Prepared, staged: StagedFile, verdict: Verdict) -> dict[str, int]:
    rejected = len(prep.early_rejects) + len(verdict.rejects) + (staged.rows - staged.rows_valid)
    return {
        "records": prep.records,
        "records_header": prep.header_records,
        "records_skipped": prep.skipped,
        "records_blank": prep.blank,
        "rows_read": staged.rows_valid + rejected,
        "rows_valid": staged.rows_valid,
        "rows_rejected": rejected,
    }


def _nothing(prep: Prepared) -> Staged:
    """A file with nothing to stage: empty, or only a header, skipped and blank lines."""
    rejected = len(prep.early_rejects)
    return Staged(
        rejected, 0, rejected, records=prep.records, header=prep.header_records, blank=prep.blank,
        skipped=prep.skipped,
    )  # fmt: skip


def _quarantine(
    prep: Prepared, staged: StagedFile, verdict: Verdict, job: CsvFile, limits: Limits
) -> str | None:
    """The quarantine file of every rejected record (early, structural, semantic), by line."""
    lines: list[int] = []
    reasons: list[str] = []
    raws: list[str] = []
    for e in prep.early_rejects:
        where = f", at byte offset {e.offset:,}" if e.length > limits.max_line_bytes else ""
        lines.append(e.line)
        reasons.append(e.reason + where)
        raws.append(e.raw)
    worded = {
        prep.physical_line(int(line)): reason
        for line, reason in zip(
            staged.structural["line"].to_pylist(), staged.structural["reason"].to_pylist(), strict=True
        )
    }
    for line, raw in verdict.rejects:
        lines.append(line)
        reasons.append(worded.get(line, "malformed CSV"))
        raws.append(raw.strip("\r\n")[: limits.excerpt_bytes])
    if staged.semantic.num_rows:
        at = row_lines(prep, [line for line, _ in verdict.rejects], limits)
        ords = staged.semantic["__ord"].to_numpy()
        found = at[ords - 1].tolist()
        texts = record_texts(prep, found, limits)
        lines += found
        reasons += staged.semantic["reason"].to_pylist()
        raws += [texts.get(line, "") for line in found]
    if not lines:
        return None
    table = pa.table(
        {
            "source_file": pa.array([job.uri] * len(lines), pa.string()),
            "line": pa.array(lines, pa.int64()),
            "reason": pa.array(reasons, pa.string()),
            "raw_line": pa.array(raws, pa.string()),
        }
    ).sort_by([("line", "ascending")])
    return write_quarantine(table, job.quarantine_root, job.quarantine_name)


def _no_structural() -> pa.Table:
    return pa.table(
        {
            "line": pa.array([], pa.int64()),
            "reason": pa.array([], pa.string()),
            "raw": pa.array([], pa.string()),
        }
    )


def _no_semantic() -> pa.Table:
    return pa.table({"__ord": pa.array([], pa.int64()), "reason": pa.array([], pa.string())})
