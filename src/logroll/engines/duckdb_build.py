"""Building one event day with DuckDB: its unique rows, then every output from them.

The unique rows (`rows`, narrowed to the columns the outputs read) come hash-first (dedupe.py).
With a StateJob they are also kept, as the day's state, in Parquet files under the workspace:

- full: the day's unique rows are written straight to a new base file, and `rows` reads it;
- incremental: only the new parts' rows are read whole. The day's old parts are probed for the
  rows sharing a key with a new row (one semi join on the key: nothing of the day is
  deduplicated again); per such key, the winner of the old rows is compared with the winner of
  old and new together, exactly as the full dedupe orders them. New keys, and keys whose winner's
  output values changed, go to a new `plus` file; the values of a beaten winner are taken out of
  the state (rare: a late row smaller than the one that won), which then is compacted into a
  new base. `rows` = the state's files;
- outputs: the state already reflects every part (`--stage-only` brought it up to date).

Every way gives the same multiset of `rows`, hence the same output bytes. State files are
immutable and named per run: the catalog row that lists them commits with the day's outputs
(build.py), so a crash at any point leaves the previous state whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import faults
from ..errors import BuildError
from ..pipelines.base import Output, Pipeline
from ..quote import files_literal, ident, literal
from . import dedupe, sql
from .base import BuildOutcome, DayState, StateJob
from .projection import carried_columns, needed_columns
from .writer import write_output

# State files are written once and read once or twice, soon after, from a local disk.
STATE_FORMAT = "FORMAT parquet, COMPRESSION uncompressed"
# A state of more files than this is compacted into one base.
MAX_STATE_FILES = 16


def build_day(
    engine: Any, day: str, part_globs: list[str], pipeline: Pipeline, out_dir: Path, job: StateJob | None
) -> BuildOutcome:
    """engine.build_day (duckdb_engine.DuckDBEngine): the day's `rows`, then its outputs."""
    con = engine.con
    out_dir.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    state: DayState | None = None
    mode = "full"
    if job is None or not part_globs:
        source, columns, warnings = engine.day_source(day, part_globs, pipeline)
        rows_in = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        con.execute(f"CREATE OR REPLACE TEMP TABLE rows AS {unique_select(con, pipeline, source, columns)}")
        drop = "DROP TABLE rows"
    else:
        rows_in = con.execute(f"SELECT count(*) FROM read_parquet({files_literal(part_globs)})").fetchone()[0]
        if job.old is None:
            state = _full_state(con, pipeline, part_globs, job)
        elif not job.new_parts:
            state, mode = job.old, "outputs"
        else:
            old_parts = [g for g in part_globs if g not in set(job.new_parts)]
            state, mode = _incremental(con, pipeline, old_parts, job), "incremental"
        # A view: the outputs scan the state's files once, and count(*) reads their footers.
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW rows AS SELECT * FROM read_parquet({files_literal(state.files)})"
        )
        drop = "DROP VIEW rows"
    try:
        rows_unique = int(con.execute("SELECT count(*) FROM rows").fetchone()[0])
        outputs = write_outputs(con, pipeline, out_dir) if job is None or job.outputs else {}
    finally:
        con.execute(drop)
    if state is not None:
        state = DayState(state.files, rows_unique)
    return BuildOutcome(int(rows_in), rows_unique, outputs, warnings, state, mode)


def write_outputs(con: Any, pipeline: Pipeline, out_dir: Path) -> dict[str, tuple[Path, int]]:
    """Every output of the pipeline from the relation `rows`: finished local files and their rows."""
    outputs: dict[str, tuple[Path, int]] = {}
    for out in pipeline.outputs:
        output_columns(con, out)
        con.execute(f"CREATE OR REPLACE TEMP TABLE __out AS {out.sql}")
        target = out_dir / f"{out.name}.{out.format}"
        outputs[out.name] = (target, write_output(con, out, "__out", target))
        con.execute("DROP TABLE __out")
    return outputs


def unique_select(con: Any, pipeline: Pipeline, source: str, columns: list[str] | None) -> str:
    """SELECT of sql.dedupe_select's rows (narrowed to what the outputs read), hash-first when
    the pipeline has a key."""
    keep = needed_columns(pipeline, columns)
    plain = sql.dedupe_select(pipeline, source, columns, keep)
    if not pipeline.key:
        return plain
    names = columns if columns is not None else [c.name for c in pipeline.columns]
    hashed = dedupe.with_hash(pipeline, source, stored=False)
    return dedupe.unique_rows_select(pipeline, hashed, _bound(con, plain), names, keep)


def _bound(con: Any, query: str) -> list[str]:
    """The column names `query` returns (bound, not run: Parquet footers at most)."""
    return list(con.sql(f"SELECT * FROM ({query}) LIMIT 0").columns)


def _parts(con: Any, pipeline: Pipeline, part_globs: list[str] | tuple[str, ...]) -> tuple[str, bool]:
    """The parts' carried columns with the key hash `__h` (stored when every part has a trusted
    one, else computed), and whether it was stored."""
    cols = ", ".join(ident(c) for c in carried_columns(pipeline))
    files = files_literal(part_globs)
    if dedupe.stored_hash_usable(con, pipeline, list(part_globs)):
        return f"(SELECT {cols}, {dedupe.HASH_COLUMN} FROM read_parquet({files}))", True
    return dedupe.with_hash(pipeline, f"(SELECT {cols} FROM read_parquet({files}))", stored=False), False


def _full_state(con: Any, pipeline: Pipeline, part_globs: list[str], job: StateJob) -> DayState:
    """The day's unique rows, written straight to a new base file (cheaper than a temp table
    copied out: the outputs read it back as a view)."""
    carried = carried_columns(pipeline)
    keep = needed_columns(pipeline, carried)
    hashed, _ = _parts(con, pipeline, part_globs)
    plain = sql.dedupe_select(
        pipeline, f"(SELECT * EXCLUDE ({dedupe.HASH_COLUMN}) FROM {hashed})", carried, keep
    )
    query = dedupe.unique_rows_select(pipeline, hashed, _bound(con, plain), carried, keep)
    return DayState((_write(con, query, job, "base"),), 0)


def _write(con: Any, query: str, job: StateJob, kind: str) -> str:
    """A new state file of `kind` (base, plus) holding the rows of `query`."""
    job.folder.mkdir(parents=True, exist_ok=True)
    path = job.folder / f"{kind}-{job.tag}.parquet"
    faults.point("state.writing")
    con.execute(f"COPY ({query}) TO {literal(str(path))} ({STATE_FORMAT})")
    faults.point("state.written")
    return str(path)


def _incremental(con: Any, pipeline: Pipeline, old_parts: list[str], job: StateJob) -> DayState:
    """job.old brought up to date with job.new_parts (see the module docstring)."""
    assert job.old is not None
    carried = carried_columns(pipeline)
    keep = needed_columns(pipeline, carried)
    with_keys = [c for c in carried if c in pipeline.key or keep is None or c in keep]
    cols = ", ".join(ident(c) for c in carried)
    by = ", ".join(ident(k) for k in pipeline.key)
    new_src, _ = _parts(con, pipeline, job.new_parts)
    con.execute(f"CREATE OR REPLACE TEMP TABLE __new AS SELECT * FROM {new_src}")
    try:
        old_src = f"(SELECT {cols} FROM read_parquet({files_literal(old_parts)}))"
        if dedupe.stored_hash_usable(con, pipeline, old_parts):
            # The 8-byte hash first, then the keys of the few rows it lets through.
            h = dedupe.HASH_COLUMN
            old_src = (
                f"(SELECT {cols} FROM read_parquet({files_literal(old_parts)}) "
                f"SEMI JOIN (SELECT DISTINCT {h} FROM __new) USING ({h}))"
            )
        # The only read of the day's old rows: those sharing a key with a new row.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE __old AS SELECT {cols} FROM {old_src} "
            f"SEMI JOIN (SELECT DISTINCT {by} FROM __new) USING ({by})"
        )
        return _apply(con, pipeline, job, (carried, keep, with_keys))
    finally:
        con.execute("DROP TABLE IF EXISTS __new; DROP TABLE IF EXISTS __old")


def _apply(
    con: Any, pipeline: Pipeline, job: StateJob, shape: tuple[list[str], list[str] | None, list[str]]
) -> DayState:
    """The new state from __new (the new rows) and __old (the old rows of their keys)."""
    assert job.old is not None
    carried, keep, with_keys = shape
    cols = ", ".join(ident(c) for c in carried)
    by = ", ".join(ident(k) for k in pipeline.key)
    fresh = sql.dedupe_select(
        pipeline, f"(SELECT {cols} FROM __new ANTI JOIN __old USING ({by}))", carried, keep
    )
    out = _bound(con, fresh)
    old_best = sql.dedupe_select(pipeline, "__old", carried, with_keys)
    both = f"(SELECT {cols} FROM __old UNION ALL SELECT {cols} FROM __new SEMI JOIN __old USING ({by}))"
    both_best = sql.dedupe_select(pipeline, both, carried, with_keys)
    differs = " OR ".join(f"b.{ident(c)} IS DISTINCT FROM o.{ident(c)}" for c in out) or "false"
    picked = ", ".join(ident(c) for c in out)
    # Per key the new rows touch: the old winner's values and the new winner's, when they differ.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __won AS SELECT "
        + ", ".join(f"b.{ident(c)} AS {ident('b_' + c)}, o.{ident(c)} AS {ident('o_' + c)}" for c in out)
        + f" FROM ({both_best}) b JOIN ({old_best}) o USING ({by}) WHERE {differs}"
    )
    try:
        beaten = con.execute("SELECT count(*) FROM __won").fetchone()[0]
        as_new = ", ".join(f"{ident('b_' + c)} AS {ident(c)}" for c in out)
        plus = f"SELECT {picked} FROM ({fresh}) UNION ALL SELECT {as_new} FROM __won"
        files = list(job.old.files)
        if beaten or len(files) + 1 > MAX_STATE_FILES:
            # The state less the beaten winners' values (a multiset difference), plus the new
            # rows, as one new base: a state never has to remember what it lost.
            as_old = ", ".join(f"{ident('o_' + c)} AS {ident(c)}" for c in out)
            everything = f"SELECT {picked} FROM read_parquet({files_literal(files)}) UNION ALL {plus}"
            if beaten:
                everything = f"({everything}) EXCEPT ALL SELECT {as_old} FROM __won"
            return DayState((_write(con, everything, job, "base"),), 0)
        con.execute(f"CREATE OR REPLACE TEMP TABLE __plus AS {plus}")
        if con.execute("SELECT count(*) FROM __plus").fetchone()[0]:
            files.append(_write(con, "SELECT * FROM __plus", job, "plus"))
        con.execute("DROP TABLE __plus")
        return DayState(tuple(files), 0)
    finally:
        con.execute("DROP TABLE IF EXISTS __won")


def output_columns(con: Any, out: Output) -> tuple[list[str], list[str]]:
    """Names and types of an output's columns, bound over the view `rows` without running it."""
    rel = con.sql(out.sql)
    names = [n.lower() for n in rel.columns]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # DuckDB would silently rename the second one
        raise BuildError(
            f"output {out.name!r} would have column(s) {', '.join(twice)} twice; "
            "rename the input column(s) or change the output's SQL"
        )
    return list(rel.columns), [str(t) for t in rel.types]
