"""Pipeline SQL (DuckDB dialect) as Spark SQL, through sqlglot.

sqlglot does the translation. Two DuckDB conveniences have no Spark spelling of their own and
are rewritten on the syntax tree first, the same way for every pipeline:

- `*` (with `REPLACE`/`EXCLUDE`) over `rows`, whose columns differ from day to day for
  pass-through pipelines, is expanded against the day's actual columns;
- `unnest({'a': x, 'b': y})` in a select list, which DuckDB expands into the columns a and b in
  place, becomes `x AS a, y AS b` (Spark's EXPLODE of a struct is an error).
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.optimizer.qualify import qualify

from ..errors import ConfigError, first_line


def to_spark(query: str, schema: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """`query` in Spark SQL. `schema` ({view: {column: DuckDB type}}) expands stars.

    A construct Spark lacks is a ConfigError naming the SQL, never a silent guess."""
    try:
        tree = sqlglot.parse_one(query, read="duckdb")
        if schema:
            tree = _expand_stars(tree, {k: dict(v) for k, v in schema.items()})
        tree = tree.transform(_unnest_struct_columns)
        return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        first = first_line(exc)
        raise ConfigError(
            f"this SQL cannot run on Spark ({first}); write it with functions both engines have: "
            f"{' '.join(query.split())[:120]}"
        ) from None


def _expand_stars(tree: exp.Expression, schema: dict[str, dict[str, str]]) -> exp.Expression:
    """Each SELECT's `*` as its columns, innermost first: a star over a subquery must see the
    subquery's columns after its unnest({...}) has become separate columns."""
    for select in reversed(list(tree.find_all(exp.Select))):
        if not any(_is_star(p) for p in select.expressions):
            continue
        done = qualify(
            select.copy(),
            schema=schema,
            dialect="duckdb",
            validate_qualify_columns=False,
            quote_identifiers=True,
        ).transform(_unnest_struct_columns)
        if select is tree:
            tree = done
        else:
            select.replace(done)
    return tree


def _is_star(node: exp.Expression) -> bool:
    return isinstance(node, exp.Star) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star))


def spark_type(duckdb_type: str) -> str:
    """A DuckDB column type as Spark DDL; wall-clock timestamps stay wall-clock (NTZ)."""
    dt = exp.DataType.build(duckdb_type, dialect="duckdb")
    if dt.this == exp.DataType.Type.TIMESTAMP:
        return "TIMESTAMP_NTZ"
    return dt.sql(dialect="spark")


def _unnest_struct_columns(node: exp.Expression) -> exp.Expression:
    if not isinstance(node, exp.Select):
        return node
    projections: list[exp.Expression] = []
    changed = False
    for item in node.expressions:
        fields = _struct_fields(item)
        if fields is None:
            projections.append(item)
            continue
        changed = True
        projections.extend(exp.alias_(value, name, quoted=True) for name, value in fields)
    if changed:
        node.set("expressions", projections)
    return node


def _struct_fields(item: exp.Expression) -> list[tuple[str, exp.Expression]] | None:
    """(name, value) of each field when `item` is unnest/explode of a struct literal."""
    inner = item.this if isinstance(item, exp.Alias) else item
    if not isinstance(inner, exp.Explode | exp.Unnest):
        return None
    arg = inner.this if isinstance(inner, exp.Explode) else (inner.expressions or [None])[0]
    if not isinstance(arg, exp.Struct):
        return None
    out = []
    for field in arg.expressions:
        if isinstance(field, exp.PropertyEQ | exp.Alias) and field.alias_or_name:
            name = field.this.name if isinstance(field, exp.PropertyEQ) else field.alias
            value = field.expression if isinstance(field, exp.PropertyEQ) else field.this
            out.append((name, value.copy()))
        else:
            return None  # an unnamed field: leave it for sqlglot to judge
    return out
