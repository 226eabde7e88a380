"""The `ingest` pipeline (seed 004): CSV files of one format keep arriving; a scanner records
them and groups them into jobs, and any number of workers load the jobs into one central store.

    api.py      scan, work, run (both), status, retry: what the CLI calls
    settings.py arguments over logroll.yaml's `ingest:` section over defaults
    scanner.py  list the source, record new file versions, group them into jobs
    tables.py   the scanner, job, destination and schema tables
    jobs.py     their transitions (claims with FOR UPDATE SKIP LOCKED on PostgreSQL)
    worker.py   claim a job, stage each file, load it exactly once through a sink
    schema.py   the destination's fixed schema: declared, or inferred from the first file
    stager.py   the DuckDB engine's CSV staging, rows kept whole for the load

>>> from logroll import ingest
>>> ingest.scan(source="drops/", state="state.sqlite", flush=True)
>>> ingest.work(state="state.sqlite", dest="duckdb:///credit.duckdb#credit")
"""

from .api import IngestReport, is_ingest, retry, run, scan, status, work

__all__ = ["IngestReport", "is_ingest", "retry", "run", "scan", "status", "work"]
