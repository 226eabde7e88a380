"""The fast paths of the DuckDB engine keep every guarantee the slow ones had."""

from __future__ import annotations

from pathlib import Path

from logroll.engines.duckdb_engine import DuckDBEngine


def test_engine_never_draws_a_progress_bar(tmp_path: Path):
    # DuckDB prints its progress bar on stdout once a query runs past 2 s; `--json` promises that
    # stdout holds exactly one JSON object, so a long staging query must not print anything.
    eng = DuckDBEngine(tmp_path)
    try:
        assert eng.con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)
    finally:
        eng.close()
