"""`logroll report`: one self-contained HTML file about a pipeline's days, rejects and runs.

Charts are Vega-Lite specs built with altair and drawn by Vega in the browser; the Vega,
Vega-Lite and vega-embed JavaScript comes inlined from the vl-convert-python wheel, so the
file needs no network when it is opened (its Content-Security-Policy forbids any). Every value
from the data is HTML-escaped in tables, and JSON-escaped (no '<', '>' or '&' left) inside the
<script> blocks that carry the charts' data.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import overview
from .catalog import Catalog
from .dates import utc_now
from .errors import UsageError
from .pipelines.base import Pipeline
from .urls import redact_url

INSTALL_HINT = "pip install 'logroll[report]'"
SAMPLES_PER_FILE = 5
MAX_SAMPLES = 100


@dataclass
class ReportData:
    pipeline: str
    state: str
    generated_at: str
    days: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[dict[str, Any]] = field(default_factory=list)  # day, on time / late / early rows
    reasons: list[dict[str, Any]] = field(default_factory=list)  # reason, rows
    samples: list[dict[str, Any]] = field(default_factory=list)  # file, line, reason, raw
    runs: list[dict[str, Any]] = field(default_factory=list)
    files_rejected: list[dict[str, Any]] = field(default_factory=list)
    files_failed: list[dict[str, Any]] = field(default_factory=list)
    quarantine_unreadable: list[str] = field(default_factory=list)


# ---- data ------------------------------------------------------------------------------------
def layout_regex(layout: str) -> re.Pattern[str] | None:
    """'%Y/%m/%d' -> a regex with year, month and day groups; None if the layout lacks one."""
    groups = {"%Y": r"(?P<y>\d{4})", "%m": r"(?P<m>\d{1,2})", "%d": r"(?P<d>\d{1,2})"}
    if not all(k in layout for k in groups):
        return None
    out, i = "", 0
    while i < len(layout):
        token = layout[i : i + 2]
        if token in groups:
            out += groups[token]
            i += 2
        else:
            out += re.escape(layout[i])
            i += 1
    return re.compile(out)


def folder_day(uri: str, pattern: re.Pattern[str] | None) -> str | None:
    """The date of the folder a file arrived in, from the pipeline's layout."""
    if pattern is None:
        return None
    found = None
    for m in pattern.finditer(uri):
        found = m
    if found is None:
        return None
    try:
        return dt.date(int(found["y"]), int(found["m"]), int(found["d"])).isoformat()
    except ValueError:
        return None


def _open_text(path: str, storage_options: dict[str, Any] | None) -> Any:
    if "://" in path and not path.startswith("file://"):
        import fsspec

        return fsspec.open(path, "rt", encoding="utf-8", newline="", **(storage_options or {})).open()
    return open(path.removeprefix("file://"), encoding="utf-8", newline="")


def _quarantine_rows(path: str, storage_options: dict[str, Any] | None) -> Iterator[dict[str, str]]:
    with _open_text(path, storage_options) as fh:
        yield from csv.DictReader(fh)


def reason_kind(reason: str) -> str:
    """'bad X: expected ..., got '2021-02-30'' -> 'bad X': one bar per kind, not per value."""
    return (reason or "unknown").split(":", 1)[0].strip() or "unknown"


def collect(
    catalog: Catalog,
    pipe: Pipeline,
    state: str,
    runs: int = 50,
    storage_options: dict[str, Any] | None = None,
) -> ReportData:
    parts = catalog.parts(pipe.name)
    built = catalog.partitions(pipe.name)
    files = catalog.files(pipe.name)
    data = ReportData(
        pipeline=pipe.name,
        state=redact_url(state),
        generated_at=utc_now().strftime("%Y-%m-%d %H:%M:%S UTC"),
    )
    # Dirty here also means "built with other parameters" (status shows changed inputs only).
    data.days = [
        {k: v for k, v in row.items() if k != "built_at"}
        for row in overview.day_rows(pipe, parts, built, inputs_only=False)
    ]

    # Late rows: a row whose event day is before the day of the folder it arrived in.
    pattern = layout_regex(pipe.layout)
    uri_of = {f["id"]: uri for uri, f in files.items()}
    arrivals: dict[str, collections.Counter[str]] = {}
    for day, rows in parts.items():
        counter = arrivals.setdefault(day, collections.Counter())
        for p in rows:
            arrived = folder_day(uri_of.get(p.file_id, ""), pattern)
            kind = "on time" if arrived is None or arrived == day else ("late" if arrived > day else "early")
            counter[kind] += p.rows
    data.arrivals = [
        {"day": day, "arrival": kind, "rows": n}
        for day in sorted(arrivals)
        for kind, n in sorted(arrivals[day].items())
    ]

    reasons: collections.Counter[str] = collections.Counter()
    for uri, f in sorted(files.items()):
        if f["status"] == "rejected":
            data.files_rejected.append({"uri": uri, "reason": f["error"] or ""})
        elif f["status"] == "failed":
            data.files_failed.append({"uri": uri, "error": f["error"] or ""})
        q = f.get("quarantine")
        if not q:
            continue
        taken = 0
        try:
            for r in _quarantine_rows(q, storage_options):
                reasons[reason_kind(r.get("reason", ""))] += 1
                if taken < SAMPLES_PER_FILE and len(data.samples) < MAX_SAMPLES:
                    data.samples.append(
                        {
                            "file": r.get("source_file") or uri,
                            "line": r.get("line", ""),
                            "reason": r.get("reason", ""),
                            "raw": r.get("raw_line", ""),
                        }
                    )
                    taken += 1
        except (OSError, csv.Error, UnicodeDecodeError):
            data.quarantine_unreadable.append(q)
    data.reasons = [{"reason": k, "rows": n} for k, n in reasons.most_common()]

    for r in reversed(catalog.runs(pipe.name, limit=runs)):
        counts = overview.run_counts(r.get("report"))
        seconds = counts["seconds"]
        if seconds is None and r.get("finished_at"):
            seconds = (r["finished_at"] - r["started_at"]).total_seconds()
        data.runs.append(
            {
                "run": r["id"],
                "status": r["status"],
                "started": r["started_at"].strftime("%Y-%m-%d %H:%M:%S"),
                "seconds": round(float(seconds), 3) if seconds is not None else None,
                **{
                    k: counts[k]
                    for k in ("files_staged", "days_built", "days_failed", "rows_read", "rows_rejected")
                },
            }
        )
    return data


# ---- charts ----------------------------------------------------------------------------------
def _altair() -> Any:
    try:
        import altair as alt
        import vl_convert  # noqa: F401
    except ImportError:
        raise UsageError(f"the HTML report needs altair and vl-convert-python: {INSTALL_HINT}") from None
    return alt


def chart_specs(data: ReportData) -> dict[str, dict[str, Any]]:
    """Vega-Lite specs by chart id (only charts that have data)."""
    alt = _altair()
    width = 880
    specs: dict[str, dict[str, Any]] = {}
    built = [d for d in data.days if d["rows_in"] is not None]
    # Days are calendar days: UTC time units, so no viewer's time zone shifts a bar by a day.
    n_days = len({d["day"] for d in data.days}) or 1
    x_day = alt.X(
        "utcyearmonthdate(day):T",
        title="event day",
        # Whole days only: an axis over three days would otherwise label every 6 hours.
        axis=alt.Axis(
            format="%b %d, %Y", labelAngle=0, tickCount={"interval": "day", "step": -(-n_days // 8)}
        ),
    )
    count_axis = alt.Axis(tickMinStep=1, format=",.0f")
    if built:
        counts = [
            {"day": d["day"], "measure": measure, "rows": d[key]}
            for d in built
            for key, measure in (("rows_in", "rows in"), ("rows_unique", "unique"), ("rows_out", "rows out"))
        ]
        specs["rows"] = (
            alt.Chart(alt.Data(values=counts), title="Rows per event day", width=width, height=220)
            .mark_line(point=len(built) <= 62)
            .encode(
                x=x_day,
                y=alt.Y("rows:Q", title="rows", axis=count_axis),
                color=alt.Color("measure:N", title=None, sort=["rows in", "unique", "rows out"]),
                tooltip=[
                    alt.Tooltip("utcyearmonthdate(day):T", title="day"),
                    "measure:N",
                    alt.Tooltip("rows:Q", format=","),
                ],
            )
            .to_dict()
        )
        specs["duplicates"] = (
            alt.Chart(
                alt.Data(values=[{"day": d["day"], "duplicates": d["duplicates"]} for d in built]),
                title="Duplicates removed per event day",
                width=width,
                height=160,
            )
            .mark_bar(color="#e45756")
            .encode(
                x=x_day,
                y=alt.Y("duplicates:Q", title="rows", axis=count_axis),
                tooltip=[
                    alt.Tooltip("utcyearmonthdate(day):T", title="day"),
                    alt.Tooltip("duplicates:Q", format=","),
                ],
            )
            .to_dict()
        )
    if data.arrivals:
        specs["arrivals"] = (
            alt.Chart(
                alt.Data(values=data.arrivals),
                title="Late and early rows per event day",
                width=width,
                height=160,
            )
            .transform_filter("datum.arrival != 'on time'")
            .mark_bar()
            .encode(
                x=x_day,
                y=alt.Y("rows:Q", title="rows from another day's folder", axis=count_axis),
                color=alt.Color(
                    "arrival:N",
                    title=None,
                    scale=alt.Scale(domain=["late", "early"], range=["#f58518", "#72b7b2"]),
                ),
                tooltip=[
                    alt.Tooltip("utcyearmonthdate(day):T", title="day"),
                    "arrival:N",
                    alt.Tooltip("rows:Q", format=","),
                ],
            )
            .to_dict()
        )
    if data.reasons:
        specs["rejects"] = (
            alt.Chart(
                alt.Data(values=data.reasons),
                title="Rejected rows by reason",
                width=width - 200,
                height=alt.Step(22),
            )
            .mark_bar(color="#b279a2")
            .encode(
                x=alt.X("rows:Q", title="rows", axis=count_axis),
                y=alt.Y("reason:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320)),
                tooltip=["reason:N", alt.Tooltip("rows:Q", format=",")],
            )
            .to_dict()
        )
    timed = [r for r in data.runs if r["seconds"] is not None]
    if timed:
        specs["runs"] = (
            alt.Chart(
                alt.Data(values=timed),
                title="Run durations",
                width=alt.Step(28) if len(timed) * 28 < width else width,
                height=160,
            )
            .mark_bar()
            .encode(
                x=alt.X("run:O", title="run"),
                y=alt.Y("seconds:Q", title="seconds"),
                color=alt.Color(
                    "status:N",
                    title=None,
                    scale=alt.Scale(
                        domain=["ok", "failed", "crashed", "running"],
                        range=["#54a24b", "#e45756", "#9d755d", "#bab0ac"],
                    ),
                ),
                tooltip=["run:O", "status:N", "started:N", "seconds:Q", "days_built:Q", "rows_read:Q"],
            )
            .to_dict()
        )
    return specs


def _script_json(value: Any) -> str:
    """JSON that is safe inside <script>: no '<', '>' or '&' survive, so no '</script>' either."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _vega_bundle() -> str:
    import altair as alt
    import vl_convert as vlc

    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    versions = vlc.get_vegalite_versions()
    bundle = vlc.javascript_bundle(vl_version=major_minor if major_minor in versions else None)
    if "</script" in bundle.lower():  # would end the inline <script> early
        bundle = re.sub(r"</(script)", r"<\\/\1", bundle, flags=re.IGNORECASE)
    return bundle


# ---- page ------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> str:
    return "" if value is None else (f"{value:,}" if isinstance(value, int) else _e(value))


def _table(columns: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1000px;
color:#1d1d1f;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666;margin-bottom:16px}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.tile{border:1px solid #ddd;border-radius:8px;padding:8px 14px;min-width:120px}
.tile b{display:block;font-size:20px}.tile.bad b{color:#c0392b}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:13px}
th,td{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code,.raw{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:pre-wrap;word-break:break-all}
.chart{margin:8px 0 18px;min-height:40px}.chart-error{color:#c0392b;font-weight:600}
.status-failed,.status-crashed{color:#c0392b;font-weight:600}.status-dirty{color:#b7791f}
.empty{color:#888;font-style:italic}
#js-errors{display:none;background:#fdecea;border:1px solid #c0392b;padding:8px;margin:8px 0}
"""

# Errors anywhere on the page are shown on it (and left in data-js-errors for tests to read).
ERROR_HOOK = """
window.__reportErrors = [];
function __reportError(msg) {
  window.__reportErrors.push(String(msg));
  document.documentElement.setAttribute('data-js-errors', String(window.__reportErrors.length));
  var box = document.getElementById('js-errors');
  if (box) { box.style.display = 'block'; box.textContent = 'This report could not draw everything: '
    + window.__reportErrors.join('; '); }
}
window.addEventListener('error', function (e) { __reportError(e.message || e); });
window.addEventListener('unhandledrejection', function (e) { __reportError(e.reason); });
"""

RENDER = """
(function () {
  var nodes = document.querySelectorAll('script[type="application/json"][data-chart]');
  var pending = nodes.length, failed = 0;
  function done() {
    pending -= 1;
    if (pending === 0) document.documentElement.setAttribute('data-charts', failed ? 'failed' : 'rendered');
  }
  if (pending === 0) document.documentElement.setAttribute('data-charts', 'none');
  nodes.forEach(function (node) {
    var target = document.getElementById('chart-' + node.getAttribute('data-chart'));
    vegaEmbed(target, JSON.parse(node.textContent), {actions: false, renderer: 'svg'})
      .then(function () { target.setAttribute('data-rendered', 'ok'); done(); })
      .catch(function (err) {
        failed += 1;
        target.setAttribute('data-rendered', 'error');
        target.innerHTML = '';
        var p = document.createElement('p');
        p.className = 'chart-error';
        p.textContent = 'chart failed: ' + err;
        target.appendChild(p);
        __reportError(err);
        done();
      });
  });
})();
"""

CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)


def render(data: ReportData) -> str:
    specs = chart_specs(data)
    bundle = _vega_bundle()
    days = data.days
    n = collections.Counter(d["status"] for d in days)
    total = lambda key: sum(d[key] or 0 for d in days)  # noqa: E731
    rejected_rows = sum(r["rows"] for r in data.reasons)
    late_rows = sum(a["rows"] for a in data.arrivals if a["arrival"] == "late")
    tiles = [
        ("days built", n["built"], False),
        ("days dirty", n["dirty"], n["dirty"] > 0),
        ("days failed", n["failed"], n["failed"] > 0),
        ("rows in", total("rows_in"), False),
        ("duplicates", total("duplicates"), False),
        ("rows out", total("rows_out"), False),
        ("rows rejected", rejected_rows, rejected_rows > 0),
        ("late rows", late_rows, False),
        ("files failed", len(data.files_failed) + len(data.files_rejected), bool(data.files_failed)),
    ]
    parts: list[str] = []
    add = parts.append
    add("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>")
    add(f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">')
    add('<meta name="viewport" content="width=device-width, initial-scale=1">')
    add(f"<title>logroll report: {_e(data.pipeline)}</title><style>{CSS}</style>")
    add(f"<script>{ERROR_HOOK}</script></head><body>")
    add(f"<h1>logroll report: {_e(data.pipeline)}</h1>")
    add(f'<div class="meta">state {_e(data.state)} · generated {_e(data.generated_at)}</div>')
    add('<div id="js-errors" role="alert"></div>')
    add('<div class="tiles">')
    for label, value, bad in tiles:
        add(f'<div class="tile{" bad" if bad else ""}"><b>{_num(value)}</b>{_e(label)}</div>')
    add("</div>")

    sections = [
        ("rows", "Rows per day", "No day has been built yet."),
        ("duplicates", "Duplicates", "No day has been built yet."),
        ("arrivals", "Late rows", "No staged rows."),
        ("rejects", "Rejects by reason", "No row was rejected."),
        ("runs", "Run durations", "No finished run yet."),
    ]
    for chart_id, heading, empty in sections:
        add(f"<h2>{_e(heading)}</h2>")
        if chart_id in specs:
            add(f'<div class="chart" id="chart-{chart_id}"></div>')
            add(
                f'<script type="application/json" data-chart="{chart_id}">{_script_json(specs[chart_id])}</script>'
            )
        else:
            add(f'<p class="empty">{_e(empty)}</p>')

    problems = [d for d in days if d["status"] != "built"]
    add("<h2>Days not built</h2>")
    if problems:
        add(
            _table(
                ["day", "status", "error"],
                [
                    [
                        _e(d["day"]),
                        f'<span class="status-{_e(d["status"])}">{_e(d["status"])}</span>',
                        _e(d["error"]),
                    ]
                    for d in problems
                ],
            )
        )
    else:
        add('<p class="empty">Every day with data is built and up to date.</p>')

    add("<h2>Files rejected or failed</h2>")
    bad_files = [[f"<code>{_e(f['uri'])}</code>", "rejected", _e(f["reason"])] for f in data.files_rejected]
    bad_files += [[f"<code>{_e(f['uri'])}</code>", "failed", _e(f["error"])] for f in data.files_failed]
    add(_table(["file", "status", "why"], bad_files) if bad_files else '<p class="empty">None.</p>')

    add(f"<h2>Quarantine samples ({len(data.samples)} rows, up to {SAMPLES_PER_FILE} per file)</h2>")
    if data.samples:
        add(
            _table(
                ["file", "line", "reason", "raw line"],
                [
                    [
                        f"<code>{_e(s['file'])}</code>",
                        _e(s["line"]),
                        _e(s["reason"]),
                        f'<div class="raw">{_e(s["raw"])}</div>',
                    ]
                    for s in data.samples
                ],
                "samples",
            )
        )
    else:
        add('<p class="empty">No rejected rows.</p>')
    for q in data.quarantine_unreadable:
        add(f'<p class="chart-error">quarantine file not readable: <code>{_e(q)}</code></p>')

    add("<h2>Recent runs</h2>")
    if data.runs:
        add(
            _table(
                [
                    "run",
                    "status",
                    "started (UTC)",
                    "seconds",
                    "files staged",
                    "days built",
                    "days failed",
                    "rows read",
                    "rejected",
                ],
                [
                    [
                        _e(r["run"]),
                        f'<span class="status-{_e(r["status"])}">{_e(r["status"])}</span>',
                        _e(r["started"]),
                        _e(r["seconds"]),
                        _num(r["files_staged"]),
                        _num(r["days_built"]),
                        _num(r["days_failed"]),
                        _num(r["rows_read"]),
                        _num(r["rows_rejected"]),
                    ]
                    for r in reversed(data.runs)
                ],
            )
        )
    else:
        add('<p class="empty">No runs yet.</p>')

    add(f"<script>{bundle}</script>")
    add(f"<script>{RENDER}</script>")
    add("</body></html>\n")
    return "".join(parts)


def write(text: str, out: str | Path) -> Path:
    """Write the page through a temporary name: a reader never sees half a report."""
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    tmp.replace(target)
    return target


def build(
    pipeline: str | Pipeline,
    *,
    dest: str,
    out: str | Path,
    state: str | None = None,
    work_dir: str | None = None,
    runs: int = 50,
    storage_options: dict[str, Any] | None = None,
) -> tuple[Path, ReportData]:
    """Write the HTML report of `pipeline`'s state to `out`; returns its path and what it shows."""
    from .api import resolve
    from .workspace import open_workspace

    _altair()  # say what to install before reading anything
    if runs < 1:
        raise UsageError("--runs must be 1 or more")
    pipe = resolve(pipeline)
    ws = open_workspace(dest, state, work_dir, storage_options)
    catalog = Catalog(ws.state)
    try:
        data = collect(catalog, pipe, ws.state, runs=runs, storage_options=storage_options)
    finally:
        catalog.close()
    return write(render(data), out), data
