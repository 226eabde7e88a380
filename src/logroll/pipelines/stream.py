"""How a pipeline streams: what a pipeline declares so that `logroll stream` can run it.

Two outputs are maintained one micro-batch at a time:
- `hits_output`: one row per unique event, its columns computed by `hit_columns` (SQL over the
  event's typed columns);
- `stats_output`: per group (`group`, SQL over the typed columns, a time bucket first), the
  number of events and the number of distinct values of `distinct_of`.

The pipeline's batch outputs are generated from the same expressions (`hits_sql`, `stats_sql`),
so the two modes cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..quote import ident


@dataclass(frozen=True)
class StreamSpec:
    hits_output: str
    hit_columns: Mapping[str, str]
    stats_output: str
    group: Mapping[str, str]
    count_column: str
    distinct_column: str
    distinct_of: str

    def hits_sql(self) -> str:
        """The hits output over the view `rows`."""
        cols = ", ".join(f"{expr} AS {ident(name)}" for name, expr in self.hit_columns.items())
        return f"SELECT {cols} FROM rows"

    def stats_sql(self) -> str:
        """The stats output over the view `rows`."""
        groups = [f"{expr} AS {ident(name)}" for name, expr in self.group.items()]
        numbers = ", ".join(str(i + 1) for i in range(len(groups)))
        return (
            f"SELECT {', '.join(groups)}, count(*) AS {ident(self.count_column)}, "
            f"count(DISTINCT {ident(self.distinct_of)}) AS {ident(self.distinct_column)} "
            f"FROM rows GROUP BY {numbers}"
        )
