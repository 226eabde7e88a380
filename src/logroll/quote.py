"""SQL text: names and strings from configs and data, quoted once, for every database."""

from __future__ import annotations

import glob
from collections.abc import Iterable


def ident(name: str) -> str:
    """A quoted SQL identifier: names from configs never reach SQL unquoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# DuckDB (like Python's glob) reads every path it is given as a pattern: `report[1].csv` would
# read `report1.csv`, another file's rows, without a word. Paths are escaped the way glob.escape
# does it (`[` -> `[[]`, `*` -> `[*]`, `?` -> `[?]`), which DuckDB's globbing reads the same way.
def path_literal(path: object) -> str:
    """One file's path as a SQL string that DuckDB reads as that file only."""
    return literal(glob.escape(str(path)))


def own_pattern(pattern: str) -> str:
    """A pattern logroll made (`<folder>/*.parquet`, or a file of its own naming): the folder,
    which may hold any character (a destination named `[prod]`), escaped; the last part kept."""
    head, sep, tail = str(pattern).rpartition("/")
    return glob.escape(head) + sep + tail


def files_literal(patterns: Iterable[str]) -> str:
    """A DuckDB list of patterns logroll made (own_pattern each)."""
    return "[" + ", ".join(literal(own_pattern(p)) for p in patterns) + "]"
