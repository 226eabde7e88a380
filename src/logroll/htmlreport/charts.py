"""The report's charts: Vega-Lite specs made with altair, and the Vega JavaScript to draw them."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import UsageError
from .data import ReportData

INSTALL_HINT = "pip install 'logroll[report]'"


def altair() -> Any:
    try:
        import altair as alt
        import vl_convert  # noqa: F401
    except ImportError:
        raise UsageError(f"the HTML report needs altair and vl-convert-python: {INSTALL_HINT}") from None
    return alt


WIDTH = 880


def chart_specs(data: ReportData) -> dict[str, dict[str, Any]]:
    """Vega-Lite specs by chart id (only charts that have data)."""
    alt = altair()
    x_day, count_axis = _axes(alt, data)
    specs: dict[str, dict[str, Any]] = {}
    specs.update(_day_charts(alt, data, x_day, count_axis))
    if data.arrivals:
        specs["arrivals"] = _arrivals_chart(alt, data, x_day, count_axis)
    if data.reasons:
        specs["rejects"] = _rejects_chart(alt, data, count_axis)
    timed = [r for r in data.runs if r["seconds"] is not None]
    if timed:
        specs["runs"] = _runs_chart(alt, timed)
    return specs


def _axes(alt: Any, data: ReportData) -> tuple[Any, Any]:
    """The event-day axis and the row-count axis the charts share."""
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
    return x_day, count_axis


def _day_charts(alt: Any, data: ReportData, x_day: Any, count_axis: Any) -> dict[str, dict[str, Any]]:
    """Rows and duplicates per built day."""
    built = [d for d in data.days if d["rows_in"] is not None]
    specs: dict[str, dict[str, Any]] = {}
    if built:
        counts = [
            {"day": d["day"], "measure": measure, "rows": d[key]}
            for d in built
            for key, measure in (("rows_in", "rows in"), ("rows_unique", "unique"), ("rows_out", "rows out"))
        ]
        specs["rows"] = (
            alt.Chart(alt.Data(values=counts), title="Rows per event day", width=WIDTH, height=220)
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
                width=WIDTH,
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
    return specs


def _arrivals_chart(alt: Any, data: ReportData, x_day: Any, count_axis: Any) -> dict[str, Any]:
    return (  # type: ignore[no-any-return]
        alt.Chart(
            alt.Data(values=data.arrivals),
            title="Late and early rows per event day",
            width=WIDTH,
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


def _rejects_chart(alt: Any, data: ReportData, count_axis: Any) -> dict[str, Any]:
    return (  # type: ignore[no-any-return]
        alt.Chart(
            alt.Data(values=data.reasons),
            title="Rejected rows by reason",
            width=WIDTH - 200,
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


def _runs_chart(alt: Any, timed: list[dict[str, Any]]) -> dict[str, Any]:
    return (  # type: ignore[no-any-return]
        alt.Chart(
            alt.Data(values=timed),
            title="Run durations",
            width=alt.Step(28) if len(timed) * 28 < WIDTH else WIDTH,
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


def script_json(value: Any) -> str:
    """JSON that is safe inside <script>: no '<', '>' or '&' survive, so no '</script>' either."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def vega_bundle() -> str:
    import altair as alt
    import vl_convert as vlc

    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    versions = vlc.get_vegalite_versions()
    bundle = vlc.javascript_bundle(vl_version=major_minor if major_minor in versions else None)
    if "</script" in bundle.lower():  # would end the inline <script> early
        bundle = re.sub(r"</(script)", r"<\\/\1", bundle, flags=re.IGNORECASE)
    return bundle
