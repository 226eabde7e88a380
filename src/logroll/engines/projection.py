"""Which columns of a day's unique rows the outputs read, so a build carries only those.

Deduplicating the full rows (every column, smallest row winning) costs about three times what
deduplicating the key plus the one column an aggregate reads does, and keeps every column of
every unique row in memory. Narrowing never guesses: a name that appears anywhere in an output's
SQL counts as read, and anything that may read every column (`*` other than in count(*),
COLUMNS(...), the row itself as `rows` or its alias) keeps them all.

A tokenizer rather than a SQL parser: it only has to over-approximate, and it costs nothing at
start-up (sqlglot takes half a second to import, which a late-file run would feel).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..pipelines.base import Pipeline

# A string literal, a quoted identifier, a word, a star, a dot, anything else.
_TOKEN = re.compile(r"""'(?:[^']|'')*'|"((?:[^"]|"")*)"|([A-Za-z_][A-Za-z0-9_$]*)|(\*)|(\.)|\S""")
# Words after `FROM rows` that are not an alias of it.
_NOT_ALIAS = {
    "where", "group", "order", "limit", "offset", "join", "left", "right", "inner", "full", "outer",
    "cross", "natural", "positional", "asof", "anti", "semi", "on", "using", "union", "except",
    "intersect", "window", "qualify", "having", "select", "from", "tablesample",
}  # fmt: skip


def _tokens(query: str) -> list[tuple[str, str]]:
    out = []
    for m in _TOKEN.finditer(query):
        quoted, word, star, dot = m.groups()
        if quoted is not None:
            out.append(("name", quoted.replace('""', '"').lower()))
        elif word is not None:
            out.append(("word", word.lower()))
        elif star:
            out.append(("star", "*"))
        elif dot:
            out.append(("dot", "."))
        elif not m.group(0).startswith("'"):
            out.append(("sym", m.group(0)))
    return out


def referenced_columns(queries: Iterable[str], view: str = "rows") -> set[str] | None:
    """Lower-cased names each query may read from `view`, or None when one may read every column."""
    names: set[str] = set()
    for query in queries:
        toks = _tokens(query)
        values = [v for _, v in toks]
        # `FROM rows [AS] alias`: the view and its aliases, and the tokens that only name them.
        row_names, defining = {view}, set()
        for i, (kind, v) in enumerate(toks):
            if v == view and kind in ("word", "name") and i > 0 and values[i - 1] in ("from", "join"):
                defining.add(i)
                j = i + 1 + (i + 1 < len(toks) and values[i + 1] == "as")
                if j < len(toks) and toks[j][0] in ("word", "name") and values[j] not in _NOT_ALIAS:
                    row_names.add(values[j])
                    defining.add(j)
        for i, (kind, v) in enumerate(toks):
            if kind == "star":
                in_count = i >= 2 and values[i - 2 : i] == ["count", "("] and values[i + 1 : i + 2] == [")"]
                if not in_count:
                    return None
            elif kind in ("word", "name"):
                if kind == "word" and v == "columns":
                    return None
                if v in row_names and i not in defining and values[i + 1 : i + 2] != ["."]:
                    return None  # the whole row as a value (or a keyword like ROWS BETWEEN)
                names.add(v)
    return names


def needed_columns(pipeline: Pipeline, columns: list[str] | None = None) -> list[str] | None:
    """The columns (of `columns`, default the declared ones) the pipeline's outputs read, in
    order, or None for all of them."""
    names = columns if columns is not None else [c.name for c in pipeline.columns]
    used = referenced_columns(o.sql for o in pipeline.outputs)
    if used is None:
        return None
    return [n for n in names if n.lower() in used]


def carried_columns(pipeline: Pipeline) -> list[str]:
    """The declared columns a staged part carries, in declared order: the key, the event time, and
    the dedupe order's columns up to the last one an output reads (what sql.dedupe_select needs
    to pick the same winner with the same output values); all of them when an output may read
    every column or there is no key. Part of Pipeline.stage_signature: an output that starts
    reading another column re-stages the files."""
    names = [c.name for c in pipeline.columns]
    keep = needed_columns(pipeline)
    if keep is None or pipeline.passthrough or not pipeline.key:
        return names
    wanted = {k.lower() for k in keep}
    rest = [c for c in names if c not in pipeline.key]
    order, computed = deciding_columns(pipeline, rest, wanted)
    chosen = set(pipeline.key) | {pipeline.event_time} | set(order) | set(computed)
    return [n for n in names if n in chosen]


def deciding_columns(pipeline: Pipeline, rest: list[str], wanted: set[str]) -> tuple[list[str], list[str]]:
    """(the declared columns of `rest` that decide which row of a key is the smallest, in order,
    up to the last one a `wanted` column depends on; the wanted computed columns). A computed
    column never decides (it is a function of the columns declared before it: two rows that tie
    on those tie on it), so an unwanted one need not be carried: weblogs' URL steps are not."""
    computed = {c.name for c in pipeline.columns if c.sql is not None}
    declared = {c.name: i for i, c in enumerate(pipeline.columns)}
    made_from = max((declared[c] for c in rest if c in computed and c.lower() in wanted), default=-1)
    order = [c for c in rest if c not in computed]
    last = max(
        (i for i, c in enumerate(order) if c.lower() in wanted or declared.get(c, made_from) < made_from),
        default=-1,
    )
    return order[: last + 1], [c for c in rest if c in computed and c.lower() in wanted]
