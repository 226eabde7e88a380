"""The SQL every engine runs, written once in DuckDB's dialect (Spark transpiles it with sqlglot).

Staging reads every input field as text and types it here, so that a bad value becomes a
quarantined row with a reason instead of a silent cast (DuckDB's CSV reader rounds "5.5" to 6).
"""

from __future__ import annotations

from .pipelines.base import Column, Output, Pipeline


def ident(name: str) -> str:
    """A quoted SQL identifier: names from configs never reach SQL unquoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def typed_expr(col: Column, raw: str) -> str:
    """Typed value of a raw text expression; NULL when empty or invalid."""
    v = f"nullif(trim({raw}), '')"
    if col.type == "string":
        return raw
    if col.type == "integer":
        return f"CASE WHEN regexp_full_match({v}, '[+-]?[0-9]+') THEN TRY_CAST({v} AS BIGINT) END"
    if col.type == "float":
        return f"TRY_CAST({v} AS DOUBLE)"
    if col.type == "boolean":
        return f"TRY_CAST({v} AS BOOLEAN)"
    fmts = "[" + ", ".join(literal(f) for f in col.time_formats) + "]"
    if col.type == "timestamp":
        return f"try_strptime({v}, {fmts})"
    return f"CAST(try_strptime({v}, {fmts}) AS DATE)"


def _expected(col: Column) -> str:
    if col.type in ("timestamp", "date"):
        return f"a {col.type} like {' or '.join(col.time_formats)}"
    return {"integer": "an integer", "float": "a number", "boolean": "true or false"}.get(col.type, col.type)


def reason_expr(pipeline: Pipeline, raw: dict[str, str]) -> str:
    """First reason a row is invalid, or NULL. `raw` maps present columns to their text expression."""
    whens = []
    for col in pipeline.columns:
        if col.name not in raw:
            continue
        r = raw[col.name]
        must = col.required or col.name == pipeline.event_time or col.name in pipeline.key
        if must:
            whens.append(f"WHEN nullif(trim({r}), '') IS NULL THEN {literal('missing ' + col.name)}")
        if col.type != "string":
            msg = f"bad {col.name}: expected {_expected(col)}, got "
            whens.append(
                f"WHEN nullif(trim({r}), '') IS NOT NULL AND ({typed_expr(col, r)}) IS NULL "
                f"THEN {literal(msg)} || {literal(chr(39))} || left({r}, 80) || {literal(chr(39))}"
            )
    return "CASE " + " ".join(whens) + " END" if whens else "CAST(NULL AS VARCHAR)"


def checked_select(
    pipeline: Pipeline,
    raw: dict[str, str],
    source: str,
    ordinal: str,
    passthrough: dict[str, str] | None = None,
) -> str:
    """SELECT of ordinal, typed declared columns, `passthrough` columns (name -> raw text
    expression, kept as text) and __reason from `source`."""
    cols = [f"{ordinal} AS __ord"]
    for col in pipeline.columns:
        if col.name in raw:
            cols.append(f"{typed_expr(col, raw[col.name])} AS {ident(col.name)}")
        else:
            cols.append(f"CAST(NULL AS {col.sql_type}) AS {ident(col.name)}")
    cols.extend(f"{expr} AS {ident(name)}" for name, expr in (passthrough or {}).items())
    cols.append(f"{reason_expr(pipeline, raw)} AS __reason")
    return f"SELECT {', '.join(cols)} FROM {source}"


def dedupe_select(pipeline: Pipeline, source: str, columns: list[str] | None = None) -> str:
    """The day's unique rows: one per key, the smallest row winning, so the choice never
    depends on which file or run a duplicate arrived in. `columns` (default: the declared
    ones) is every column of `source`, in order; with no key a row is unique as a whole."""
    names = columns if columns is not None else [c.name for c in pipeline.columns]
    keys = [ident(k) for k in pipeline.key]
    rest = [c for c in names if c not in pipeline.key]
    if not keys:
        return f"SELECT DISTINCT {', '.join(ident(c) for c in names)} FROM {source}"
    if not rest:
        return f"SELECT DISTINCT {', '.join(keys)} FROM {source}"
    packed = ", ".join(f"{ident(c)} := {ident(c)}" for c in rest)
    inner = f"SELECT {', '.join(keys)}, min(struct_pack({packed})) AS __m FROM {source} GROUP BY ALL"
    return f"SELECT {', '.join(keys)}, unnest(__m) FROM ({inner})"


def ordered_output(output: Output, n_columns: int, source: str) -> str:
    """A total order: the declared sort, then every column, so ties never reorder bytes."""
    order = [ident(c) for c in output.order_by] + [str(i) for i in range(1, n_columns + 1)]
    return f"SELECT * FROM {source} ORDER BY {', '.join(order)}"
