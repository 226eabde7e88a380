"""The Spark engine: the same pipeline declarations, built by Spark, written byte for byte alike.

Where each step runs, and why:

- Staging stays on the driver with DuckDB (the `stage_*` methods are the DuckDB engine's).
  A quarantined row must name its exact line, which needs one sequential pass over the file;
  Spark splits files and has no line numbers. Staging is per file and cheap next to a day's
  build, and it writes the same typed Parquet parts either engine builds from, so a day staged
  by one engine can be built by the other.
- Building (read a day's parts, dedupe, every output's transformation) runs in Spark, from the
  pipeline's DuckDB-dialect SQL transpiled by sqlglot: there is no second copy of any logic.
- Writing the output file goes through `writer.write_output`, the same DuckDB COPY the DuckDB
  engine uses, reading Spark's result from Parquet. DuckDB also binds the day's SQL (without
  running it) to get each output's column names and types, and Spark's result is cast to
  them, so the header, types and formatting are the DuckDB engine's by construction.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from ..errors import BuildError
from ..pipelines.base import Pipeline
from ..units import DEFAULT_MEMORY_LIMIT
from . import spark_session, sql
from .base import BuildOutcome, CsvInput, JsonInput, StagedFile, StagedJsonl, StateJob
from .duckdb_build import output_columns
from .duckdb_engine import DuckDBEngine
from .projection import needed_columns
from .transpile import spark_type, to_spark
from .writer import write_output


class _Shared:
    """One Spark application per process: engines (one per --parallel worker) share it, each
    in a session of its own so their temporary views never meet."""

    lock = threading.Lock()
    handle: spark_session.SessionHandle | None = None
    users = 0

    @classmethod
    def acquire(cls, open_fn: Any) -> Any:
        with cls.lock:
            if cls.handle is None or cls.handle.session.sparkContext._jsc is None:
                cls.handle = open_fn()
            cls.users += 1
            return cls.handle.session.newSession()

    @classmethod
    def release(cls) -> None:
        with cls.lock:
            cls.users -= 1
            if cls.users <= 0 and cls.handle is not None:
                cls.handle.stop()
                cls.handle = None
                cls.users = 0


class SparkEngine:
    name = "spark"
    # Days are always deduplicated whole (sql.dedupe_select, transpiled): no day state.
    keeps_state = False

    def __init__(
        self,
        work_dir: Path,
        memory_limit: str = DEFAULT_MEMORY_LIMIT["spark"],
        threads: int | None = None,
        master: str | None = None,
        conf: list[str] | dict[str, str] | None = None,
        **_: Any,
    ):
        self.work_dir = Path(work_dir)
        self.memory_limit = memory_limit
        self.threads = threads
        self.master = master
        self.conf = spark_session.parse_conf(conf)
        # Fail now, in a second, on what needs no JVM (pyspark, Java, master); start the JVM only
        # when a day is built, so a run with nothing to build stays fast.
        spark_session.preflight(master, threads)
        self.stager = DuckDBEngine(work_dir, memory_limit=memory_limit, threads=threads)
        self._spark: Any = None

    # Staging is DuckDB's on the driver (see the module docstring).
    def stage_csv(
        self, source: CsvInput, header: list[str], pipeline: Pipeline, part_dir: Path
    ) -> StagedFile:
        return self.stager.stage_csv(source, header, pipeline, part_dir)

    def stage_jsonl(
        self, source: JsonInput, pipeline: Pipeline, part_dir: Path, quarantine_file: Path
    ) -> StagedJsonl:
        return self.stager.stage_jsonl(source, pipeline, part_dir, quarantine_file)

    @property
    def con(self) -> Any:
        return self.stager.con

    @property
    def spark(self) -> Any:
        if self._spark is None:
            self._spark = _Shared.acquire(
                lambda: spark_session.open_session(
                    self.master, self.conf, self.work_dir, self.memory_limit, self.threads
                )
            )
            for key, value in spark_session.PINNED_SQL_CONF.items():
                self._spark.conf.set(key, value)
        return self._spark

    def close(self) -> None:
        try:
            if self._spark is not None:
                self._spark = None
                _Shared.release()
        finally:
            self.stager.close()

    # ---- build ---------------------------------------------------------------------------
    def build_day(
        self,
        day: str,
        part_globs: list[str],
        pipeline: Pipeline,
        out_dir: Path,
        state: StateJob | None = None,
    ) -> BuildOutcome:
        from pyspark.storagelevel import StorageLevel

        out_dir.mkdir(parents=True, exist_ok=True)
        con = self.stager.con
        # DuckDB binds the day's SQL over the same parts, reading no rows: the schema of the
        # day's input and of every output is what the DuckDB engine would produce.
        duck_source, columns, warnings = self.stager.day_source(day, part_globs, pipeline)
        source_rel = con.sql(f"SELECT * FROM {duck_source}")
        types_by_name = dict(zip(source_rel.columns, [str(t) for t in source_rel.types], strict=True))
        in_names = columns or [c.name for c in pipeline.columns]
        in_types = [types_by_name[n] for n in in_names]
        # The same dedupe the DuckDB engine runs, narrowed to the columns the outputs read.
        keep = needed_columns(pipeline, columns)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW rows AS {sql.dedupe_select(pipeline, duck_source, columns, keep)}"
        )
        try:
            rows_rel = con.sql("SELECT * FROM rows")
            rows_schema = {"rows": dict(zip(rows_rel.columns, [str(t) for t in rows_rel.types], strict=True))}
            shapes = {out.name: output_columns(con, out) for out in pipeline.outputs}
        finally:
            con.execute("DROP VIEW IF EXISTS rows")

        spark = self.spark
        schema = _spark_schema(in_names, in_types)
        src = _read_parts(spark, schema, part_globs)
        src.createOrReplaceTempView("__src")
        # Parquet footers hold the row counts: no need for a Spark job to count the input.
        rows_in = con.execute(f"SELECT count(*) FROM {duck_source}").fetchone()[0]
        rows = spark.sql(to_spark(sql.dedupe_select(pipeline, "__src", columns, keep)))
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            rows.createOrReplaceTempView("rows")
            rows_unique = rows.count()
            outputs: dict[str, tuple[Path, int]] = {}
            for out in pipeline.outputs:
                names, types = shapes[out.name]
                result = spark.sql(to_spark(out.sql, rows_schema))
                if len(result.columns) != len(names):
                    raise BuildError(
                        f"output {out.name!r}: Spark made {len(result.columns)} columns where DuckDB "
                        f"makes {len(names)}; report this with the output's SQL"
                    )
                # Positional names: any header (spaces, case, symbols) survives Parquet unchanged.
                staged = out_dir / f"__spark_{out.name}"
                result.toDF(*[f"c{i}" for i in range(len(names))]).write.mode("overwrite").parquet(
                    _uri(staged)
                )
                typed = ", ".join(
                    f"CAST(c{i} AS {t}) AS {sql.ident(n)}"
                    for i, (n, t) in enumerate(zip(names, types, strict=True))
                )
                relation = (
                    f"SELECT {typed} FROM read_parquet({sql.files_literal([str(staged / '*.parquet')])})"
                )
                # Into a table first, as the DuckDB engine does: DuckDB's Parquet writer marks a
                # column required from the table's statistics, so the bytes match only this way.
                con.execute(f"CREATE OR REPLACE TEMP TABLE __out AS {relation}")
                target = out_dir / f"{out.name}.{out.format}"
                try:
                    outputs[out.name] = (target, write_output(con, out, "__out", target))
                finally:
                    con.execute("DROP TABLE IF EXISTS __out")
        finally:
            rows.unpersist()
            spark.catalog.dropTempView("rows")
            spark.catalog.dropTempView("__src")
        return BuildOutcome(int(rows_in), int(rows_unique), outputs, warnings)


def _spark_schema(names: list[str], types: list[str]) -> str:
    """A Spark DDL schema for columns of these DuckDB types."""
    return ", ".join(f"{_spark_ident(n)} {spark_type(t)}" for n, t in zip(names, types, strict=True))


def _spark_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _read_parts(spark: Any, schema: str, part_globs: list[str]) -> Any:
    """The parts' folders, read as plain files: no Hive partition discovery, which would add
    `__day` and trip over parts from different files' folders."""
    if not part_globs:  # a day whose every file was retracted: empty, with the declared types
        return spark.createDataFrame([], schema)
    dirs = sorted({_read_uri(Path(g).parent if _is_glob(g) else Path(g)) for g in part_globs})
    return spark.read.schema(schema).option("recursiveFileLookup", "true").parquet(*dirs)


def _is_glob(path: str) -> bool:
    # Only the last part is ever a pattern of logroll's; a folder may hold any character.
    return any(ch in Path(path).name for ch in "*?[")


def _uri(path: Path) -> str:
    # Spark resolves a bare path against its default filesystem; say "local file" outright.
    # (Not Path.as_uri(): Hadoop would escape its %-escapes a second time.)
    return "file://" + str(Path(path).resolve())


def _read_uri(path: Path) -> str:
    """_uri for reading: Hadoop reads a path as a glob (a folder named `[prod]` would match
    `p`, `r`, `o` or `d`), so its pattern characters are escaped with a backslash."""
    return _HADOOP_GLOB.sub(lambda m: "\\" + m.group(), _uri(path))


_HADOOP_GLOB = re.compile(r"[\\*?\[\]{}]")
