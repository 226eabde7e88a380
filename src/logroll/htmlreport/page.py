"""The report as one self-contained HTML page: tiles, charts, tables; every value escaped."""

from __future__ import annotations

import collections
import html
from pathlib import Path
from typing import Any

from .charts import chart_specs, script_json, vega_bundle
from .data import SAMPLES_PER_FILE, ReportData

Section = tuple[str, list[str], list[list[Any]]]


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
    bundle = vega_bundle()
    parts = [*_head(data), *_tiles(data), *_charts(specs)]
    parts += [*_days_not_built(data), *_bad_files(data), *_samples(data), *_runs(data)]
    parts += [f"<script>{bundle}</script>", f"<script>{RENDER}</script>", "</body></html>\n"]
    return "".join(parts)


def _head(data: ReportData) -> list[str]:
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
    return parts


def _tiles(data: ReportData) -> list[str]:
    parts: list[str] = []
    add = parts.append
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
    add('<div class="tiles">')
    for label, value, bad in tiles:
        add(f'<div class="tile{" bad" if bad else ""}"><b>{_num(value)}</b>{_e(label)}</div>')
    add("</div>")

    return parts


def _charts(specs: dict[str, dict[str, Any]]) -> list[str]:
    parts: list[str] = []
    add = parts.append
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
                f'<script type="application/json" data-chart="{chart_id}">{script_json(specs[chart_id])}</script>'
            )
        else:
            add(f'<p class="empty">{_e(empty)}</p>')

    return parts


def _days_not_built(data: ReportData) -> list[str]:
    parts: list[str] = []
    add = parts.append
    problems = [d for d in data.days if d["status"] != "built"]
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

    return parts


def _bad_files(data: ReportData) -> list[str]:
    parts: list[str] = []
    add = parts.append
    add("<h2>Files rejected or failed</h2>")
    bad_files = [[f"<code>{_e(f['uri'])}</code>", "rejected", _e(f["reason"])] for f in data.files_rejected]
    bad_files += [[f"<code>{_e(f['uri'])}</code>", "failed", _e(f["error"])] for f in data.files_failed]
    add(_table(["file", "status", "why"], bad_files) if bad_files else '<p class="empty">None.</p>')

    return parts


def _samples(data: ReportData) -> list[str]:
    parts: list[str] = []
    add = parts.append
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

    return parts


def _runs(data: ReportData) -> list[str]:
    parts: list[str] = []
    add = parts.append
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

    return parts


def render_summary(title: str, meta: str, tiles: list[tuple[str, Any]], sections: list[Section]) -> str:
    """A page without charts, for what has no day catalog: ingest's queue and a stream's inputs.
    Each section is (heading, columns, rows of values); every value is escaped."""
    parts = [
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
        f"<title>logroll report: {_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>logroll report: {_e(title)}</h1>",
        f'<div class="meta">{_e(meta)}</div>',
        '<div class="tiles">',
        *(f'<div class="tile"><b>{_num(value)}</b>{_e(label)}</div>' for label, value in tiles),
        "</div>",
    ]
    for heading, columns, rows in sections:
        parts.append(f"<h2>{_e(heading)}</h2>")
        if rows:
            parts.append(_table(columns, [[_num(v) for v in row] for row in rows]))
        else:
            parts.append('<p class="empty">None.</p>')
    parts.append("</body></html>\n")
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
