"""The SQL every engine runs, written once in DuckDB's dialect (Spark transpiles it with sqlglot).

Staging reads every input field as text and types it here, so that a bad value becomes a
quarantined row with a reason instead of a silent cast (DuckDB's CSV reader rounds "5.5" to 6).
"""

from __future__ import annotations

from ..pipelines.base import Column, Output, Pipeline
from ..quote import files_literal, ident, literal, path_literal
from .projection import deciding_columns

__all__ = [
    "ident",
    "literal",
    "path_literal",
    "files_literal",
    "typed_expr",
    "checked_select",
    "dedupe_select",
    "ordered_output",
]


def typed_expr(col: Column, raw: str, zone: str | None = None) -> str:
    """Typed value of a raw text expression; NULL when empty or invalid. A value read with an
    offset or zone name (%z, %Z) is converted to `zone`'s wall clock (default UTC)."""
    v = f"nullif(trim({raw}), '')"
    if col.type == "string":
        return raw
    if col.type == "integer":
        return f"CASE WHEN regexp_full_match({v}, '[+-]?[0-9]+') THEN TRY_CAST({v} AS BIGINT) END"
    if col.type == "float":
        # -0.0 staged as 0.0: engines disagree on which of two equal zeros a min or a DISTINCT
        # keeps (DuckDB's sort keys drop the sign), so outputs could differ by a minus sign.
        t = f"TRY_CAST({v} AS DOUBLE)"
        return f"CASE WHEN {t} = 0 THEN CAST(0 AS DOUBLE) ELSE {t} END"
    if col.type == "boolean":
        return f"TRY_CAST({v} AS BOOLEAN)"
    parsed = []
    for fmt in col.time_formats:
        one = f"try_strptime({v}, {literal(fmt)})"
        if time_zone_directive(fmt):  # a TIMESTAMPTZ: its wall clock in one zone, whatever the session's
            one = f"timezone({literal(zone or 'UTC')}, {one})"
        pattern = strict_time_pattern(fmt)
        # DuckDB's strptime takes "30/01/21" for year 21 under %Y: the pattern keeps the widths.
        guarded = f"CASE WHEN regexp_full_match({v}, {literal(pattern)}) THEN {one} END"
        parsed.append(guarded if pattern else one)
    first = parsed[0] if len(parsed) == 1 else f"coalesce({', '.join(parsed)})"
    if col.type == "timestamp":
        return first
    return f"CAST({first} AS DATE)"


# strftime directives and the text each may match; a format using any other directive (or a flag
# such as %-d) is parsed by strptime alone, which accepts anything DuckDB's strptime does.
_NAME = "[A-Za-z]+"
_TIME_FIELDS = {
    "a": _NAME,
    "A": _NAME,
    "b": _NAME,
    "h": _NAME,
    "B": _NAME,
    "z": "(?:[+-][0-9]{2}(?::?[0-9]{2})?|[Zz])",
    "Z": "[A-Za-z][A-Za-z0-9_/+-]*",
    "Y": "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})",  # 0001-9999
    "y": "[0-9]{2}",
    "m": "[0-9]{1,2}",
    "d": "[0-9]{1,2}",
    "H": "[0-9]{1,2}",
    "I": "[0-9]{1,2}",
    "M": "[0-9]{1,2}",
    "S": "[0-9]{1,2}",
    "j": "[0-9]{1,3}",
    "f": "[0-9]{1,6}",
    "p": "(?:[AaPp][Mm])",
    "%": "%",
}


def time_zone_directive(fmt: str) -> bool:
    """Whether strptime reads an offset or a zone name with `fmt` (then it gives a TIMESTAMPTZ)."""
    return "%z" in fmt.replace("%%", "") or "%Z" in fmt.replace("%%", "")


def strict_time_pattern(fmt: str) -> str | None:
    """A regular expression for the whole text a strftime format accepts, or None when the
    format uses a directive without one. Digits are ASCII, %Y is four digits, a space is any
    run of spaces or tabs."""
    out = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%":
            field = _TIME_FIELDS.get(fmt[i + 1 : i + 2])
            if field is None:
                return None
            out.append(field)
            i += 2
            continue
        if ch == " ":
            out.append("[ \t]+")
        else:
            out.append(f"[{ch}]" if ch.isalnum() or ch in "-/:.," else "\\" + ch)
        i += 1
    return "".join(out)


def _expected(col: Column) -> str:
    if col.type in ("timestamp", "date"):
        return f"a {col.type} like {' or '.join(col.time_formats)}"
    return {"integer": "an integer", "float": "a number", "boolean": "true or false"}.get(col.type, col.type)


def reason_expr(
    pipeline: Pipeline, raw: dict[str, str], typed: dict[str, str] | None = None, fast_ok: str | None = None
) -> str:
    """First reason a row is invalid, or NULL. `raw` maps present columns to their text expression;
    `typed`, when given, maps them to their already typed value, and the pipeline's checks are
    added (their conditions name the typed columns, so the caller's SELECT must provide them).
    `fast_ok`: a cheaper condition that implies no WHEN matches (see _fast_ok), tested instead of
    the one built here."""
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
            value = typed[col.name] if typed is not None else f"({typed_expr(col, r, pipeline.timezone)})"
            whens.append(
                f"WHEN nullif(trim({r}), '') IS NOT NULL AND {value} IS NULL "
                f"THEN {literal(msg)} || {literal(chr(39))} || left({r}, 80) || {literal(chr(39))}"
            )
    if typed is not None:
        checks = [f"WHEN NOT ({cond}) THEN {literal(reason)}" for cond, reason in pipeline.checks]
        whens.extend(checks)
        # Nearly every row is valid: one cheap test that no column's WHEN above can match saves
        # evaluating them all (~15% of staging's CPU). A typed value is never non-NULL for empty
        # text (typed_expr), so "typed IS NOT NULL" rules out both "missing" and "bad".
        ok = []
        for col in pipeline.columns:
            if col.name not in raw:
                continue
            must = col.required or col.name == pipeline.event_time or col.name in pipeline.key
            if col.type != "string":
                present = f"nullif(trim({raw[col.name]}), '') IS NULL"
                ok.append(f"{typed[col.name]} IS NOT NULL" + ("" if must else f" OR {present}"))
            elif must:
                ok.append(f"nullif(trim({raw[col.name]}), '') IS NOT NULL")
        if ok and whens:
            valid = "CASE " + " ".join(checks) + " END" if checks else "CAST(NULL AS VARCHAR)"
            full = "CASE " + " ".join(whens) + " END"
            test = fast_ok or " AND ".join(f"({c})" for c in ok)
            return f"CASE WHEN {test} THEN {valid} ELSE {full} END"
    return "CASE " + " ".join(whens) + " END" if whens else "CAST(NULL AS VARCHAR)"


def checked_select(
    pipeline: Pipeline,
    raw: dict[str, str],
    source: str,
    ordinal: str,
    passthrough: dict[str, str] | None = None,
) -> str:
    """SELECT of ordinal, typed declared columns, `passthrough` columns (name -> raw text
    expression, kept as text) and __reason from `source`.

    Two levels: the inner one types each column once and keeps its text beside it; the outer one
    gives the reason, where the pipeline's checks can name the typed columns."""
    inner = [f"{ordinal} AS __ord"]
    raw_refs: dict[str, str] = {}
    for i, col in enumerate(pipeline.columns):
        if col.sql is not None:
            continue  # computed below, from the typed columns
        if col.name in raw:
            inner.append(f"{typed_expr(col, raw[col.name], pipeline.timezone)} AS {ident(col.name)}")
            inner.append(f"{raw[col.name]} AS __raw{i}")
            raw_refs[col.name] = f"__raw{i}"
        else:
            inner.append(f"CAST(NULL AS {col.sql_type}) AS {ident(col.name)}")
    inner.extend(f"{expr} AS {ident(name)}" for name, expr in (passthrough or {}).items())
    typed = {name: ident(name) for name in raw_refs}
    layers = f"(SELECT {', '.join(inner)} FROM {source})"
    for col in pipeline.columns:  # one layer each: computed once, and usable by the next ones
        if col.sql is not None:
            layers = f"(SELECT *, CAST(({col.sql}) AS {col.sql_type}) AS {ident(col.name)} FROM {layers})"
    outer = ["__ord", *(ident(c.name) for c in pipeline.columns), *(ident(n) for n in (passthrough or {}))]
    outer.append(f"{reason_expr(pipeline, raw_refs, typed)} AS __reason")
    return f"SELECT {', '.join(outer)} FROM {layers}"


def dedupe_select(
    pipeline: Pipeline, source: str, columns: list[str] | None = None, keep: list[str] | None = None
) -> str:
    """The day's unique rows: one per key, the smallest row winning, so the choice never
    depends on which file or run a duplicate arrived in. `columns` (default: the declared
    ones) is every column of `source`, in order; with no key a row is unique as a whole.
    `keep` (default: all) narrows the result to the columns the outputs read (projection.py)."""
    names = columns if columns is not None else [c.name for c in pipeline.columns]
    keys = [ident(k) for k in pipeline.key]
    rest = [c for c in names if c not in pipeline.key]
    if not keys:
        return f"SELECT DISTINCT {', '.join(ident(c) for c in names)} FROM {source}"
    if not rest:
        return f"SELECT DISTINCT {', '.join(keys)} FROM {source}"
    if keep is not None:
        return _dedupe_narrow(pipeline, source, rest, {k.lower() for k in keep})
    # Engines order a NULL inside a struct differently (DuckDB last, Spark first), so every
    # nullable field is preceded by an "is null" flag: a row with a value always wins over one
    # without, on either engine. Fields are read back by name, which transpiles to Spark
    # (DuckDB's unnest of a struct does not).
    packed = f"min(struct_pack({', '.join(_dedupe_fields(pipeline, rest, rest))})) AS __m"
    inner = f"SELECT {', '.join(keys)}, {packed} FROM {source} GROUP BY ALL"
    picked = ", ".join(f"__m.{ident(c)} AS {ident(c)}" for c in rest)
    return f"SELECT {', '.join(keys)}, {picked} FROM ({inner})"


def _dedupe_fields(pipeline: Pipeline, order: list[str], carried: list[str]) -> list[str]:
    """struct_pack fields: `order` decides which row is smallest (nullable ones after an "is
    null" flag), then the computed columns of `carried`, which never decide: a computed column
    is a function of the columns declared before it, so two rows that tie on those tie on it too
    (weblogs' URL steps add nothing to the comparison)."""
    never_null = {c.name for c in pipeline.columns if c.required or c.name == pipeline.event_time}
    computed = _computed(pipeline)
    fields = []
    for i, c in enumerate(order):
        if c in computed:
            continue
        if c not in never_null:
            fields.append(f"__null{i} := {ident(c)} IS NULL")
        fields.append(f"{ident(c)} := {ident(c)}")
    fields += [f"{ident(c)} := {ident(c)}" for c in carried if c in computed]
    return fields


def _computed(pipeline: Pipeline) -> set[str]:
    return {c.name for c in pipeline.columns if c.sql is not None}


def _dedupe_narrow(pipeline: Pipeline, source: str, rest: list[str], wanted: set[str]) -> str:
    """dedupe_select's rows, only the `wanted` columns. The smallest row is ordered by `rest`
    field by field (computed columns aside: see _dedupe_fields), so the fields up to the last
    wanted one - or the last one a wanted computed column is made from - decide its wanted
    values: the others need not be carried (the same row wins, so the same outputs come out)."""
    keys = [ident(k) for k in pipeline.key]
    order, carried = deciding_columns(pipeline, rest, wanted)
    out = [ident(k) for k in pipeline.key if k.lower() in wanted]
    by = ", ".join(keys)
    if not order and not carried:  # a table needs a column: with none wanted, the first key stands in
        return f"SELECT {', '.join(out or keys[:1])} FROM (SELECT {by} FROM {source} GROUP BY {by})"
    never_null = {c.name for c in pipeline.columns if c.required or c.name == pipeline.event_time}
    if not carried and len(order) == 1 and order[0] in never_null:  # a plain min picks the same row
        c = ident(order[0])
        return (
            f"SELECT {', '.join([*out, c])} FROM (SELECT {by}, min({c}) AS {c} FROM {source} GROUP BY {by})"
        )
    fields = _dedupe_fields(pipeline, order, carried)
    picked = [
        f"__m.{ident(c)} AS {ident(c)}" for c in rest if c.lower() in wanted and (c in order or c in carried)
    ]
    inner = f"SELECT {by}, min(struct_pack({', '.join(fields)})) AS __m FROM {source} GROUP BY {by}"
    return f"SELECT {', '.join([*out, *picked])} FROM ({inner})"


def ordered_output(output: Output, n_columns: int, source: str) -> str:
    """A total order: the declared sort, then every column, so ties never reorder bytes."""
    order = [ident(c) for c in output.order_by] + [str(i) for i in range(1, n_columns + 1)]
    return f"SELECT * FROM {source} ORDER BY {', '.join(order)}"


# ---- one-pass staging: canonical-form fast checks with an exact fallback -------------------------
# A typed value is taken from the fast branch only when the text is canonical (printing the parsed
# value gives the text back): the exact expression (typed_expr) would accept that text with that
# value, so the accepted set, the values and the reasons are typed_expr's by construction. Every
# other text goes to typed_expr itself.
_ISO_CASTS = {("%Y-%m-%d %H:%M:%S", "TIMESTAMP"): 19, ("%Y-%m-%d", "DATE"): 10}


def fast_typed(col: Column, raw: str, i: int, zone: str | None = None) -> tuple[list[str], str]:
    """(expressions for an inner layer, the typed value over them) of one column."""
    exact = typed_expr(col, raw, zone)
    if col.type == "integer":
        # canonical integer text (no '+', no leading zero, no space) is what the strict pattern
        # accepts, with TRY_CAST's value: "5.5" casts to 6, which prints "6"
        return [f"TRY_CAST({raw} AS BIGINT) AS __i{i}"], (
            f"CASE WHEN CAST(__i{i} AS VARCHAR) = {raw} THEN __i{i} ELSE {exact} END"
        )
    if col.type not in ("timestamp", "date"):
        return [], exact
    fmt = col.time_formats[0]  # only the first format: the exact coalesce tries it first
    if strict_time_pattern(fmt) is None or time_zone_directive(fmt):
        return [], exact
    width = _ISO_CASTS.get((fmt, col.sql_type))
    if width:
        # CAST's text of a whole-second value of years 1..9999 is exactly this format and this
        # long (fractions, BC and 5-digit years are longer)
        ok = f"CAST(__t{i} AS VARCHAR) = {raw} AND length({raw}) = {width}"
        return [
            f"TRY_CAST({raw} AS {col.sql_type}) AS __t{i}"
        ], f"CASE WHEN {ok} THEN __t{i} ELSE {exact} END"
    # strftime writes year 0 (1 BC) as "0000", which the strict %Y excludes
    guard = f" AND __t{i} >= TIMESTAMP '0001-01-01'" if "%Y" in fmt else ""
    ok = f"strftime(__t{i}, {literal(fmt)}) = {raw}{guard}"
    value = f"__t{i}" if col.type == "timestamp" else f"CAST(__t{i} AS DATE)"
    return [f"try_strptime({raw}, {literal(fmt)}) AS __t{i}"], f"CASE WHEN {ok} THEN {value} ELSE {exact} END"


def _fast_ok(pipeline: Pipeline, raw_refs: dict[str, str], typed: dict[str, str]) -> str | None:
    """A condition that implies reason_expr is NULL and is cheaper than its own first test (no
    trim() on the usual row); None when the pipeline has checks (reason_expr alone then)."""
    if pipeline.checks:
        return None
    ok = []
    for col in pipeline.columns:
        if col.name not in raw_refs:
            continue
        r = raw_refs[col.name]
        must = col.required or col.name == pipeline.event_time or col.name in pipeline.key
        if col.type != "string":
            t = typed[col.name]
            ok.append(f"{t} IS NOT NULL" if must else f"({t} IS NOT NULL OR nullif(trim({r}), '') IS NULL)")
        elif must:
            # first byte printable ASCII, not a space: trim() (which also strips Unicode spaces
            # such as U+3000) cannot empty it
            ok.append(f"({r} >= '!' AND {r} < chr(127))")
    return " AND ".join(ok) if ok else None


def staged_select(
    pipeline: Pipeline,
    raw: dict[str, str],
    source: str,
    carried: list[str],
    passthrough: dict[str, str] | None = None,
    key_hash: bool = False,
) -> str:
    """SELECT <carried columns>[, __h], __reason FROM source: checked_select's typed values and
    reasons (one row per row of `source`, in its order), computed with the fast checks, carrying
    only `carried` (declared and pass-through names). `__h` is a 64-bit hash of the key."""
    pre: list[str] = []
    inner: list[str] = []
    raw_refs: dict[str, str] = {}
    for i, col in enumerate(pipeline.columns):
        if col.sql is not None:
            continue
        if col.name in raw:
            ref = f"__raw{i}"
            pre.append(f"{raw[col.name]} AS {ref}")
            more, typed = fast_typed(col, ref, i, pipeline.timezone)
            pre.extend(more)
            inner += [f"{typed} AS {ident(col.name)}", ref]
            raw_refs[col.name] = ref
        else:
            inner.append(f"CAST(NULL AS {col.sql_type}) AS {ident(col.name)}")
    pre.extend(f"{expr} AS {ident(name)}" for name, expr in (passthrough or {}).items())
    inner.extend(ident(name) for name in passthrough or {})
    # a file with none of the declared columns (all optional) still has its rows: one per record
    pre = pre or ["1 AS __none"]
    layers = f"(SELECT {', '.join(inner)} FROM (SELECT {', '.join(pre)} FROM {source}))"
    for col in pipeline.columns:
        if col.sql is not None:
            layers = f"(SELECT *, CAST(({col.sql}) AS {col.sql_type}) AS {ident(col.name)} FROM {layers})"
    typed = {name: ident(name) for name in raw_refs}
    outer = [ident(c) for c in carried]
    if key_hash:
        outer.append(f"hash({', '.join(ident(k) for k in pipeline.key)}) AS __h")
    # One test of the usual (valid) row, not two: a query half the size plans in a fraction of
    # the time, which is most of a small file's staging.
    reason = reason_expr(pipeline, raw_refs, typed, _fast_ok(pipeline, raw_refs, typed))
    outer.append(f"{reason} AS __reason")
    return f"SELECT {', '.join(outer)} FROM {layers}"
