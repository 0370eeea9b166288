"""Metrics: every metric captured in the window; the highlighted one as a chart over the window."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Footer, Label, Sparkline

from obsdash.store.queries.metrics import (
    MetricInfo,
    MetricSeries,
    first_point_time,
    list_metrics,
    metric_series,
)
from obsdash.store.queries.window import Buckets, Window
from obsdash.tui import format as fmt
from obsdash.tui.live import LiveScreen
from obsdash.tui.widgets.navbar import NavBar
from obsdash.tui.widgets.table import LiveTable

if TYPE_CHECKING:
    from obsdash.hub.client import Store


class MetricsScreen(LiveScreen):
    """The metric list and a chart of the highlighted metric."""

    AUTO_FOCUS = "#metrics"

    def __init__(self) -> None:
        super().__init__()
        self.selected: str | None = None

    def compose(self) -> ComposeResult:
        """List on top, chart below."""
        yield NavBar(id="nav")
        yield LiveTable(["metric", "kind", "unit", "points", "services"], id="metrics")
        yield Label("", id="metric-title")
        yield Sparkline([], id="metric-chart")
        yield Label("", id="metric-range")
        yield Footer()

    def load(
        self, store: Store, window: Window, now: datetime
    ) -> tuple[list[MetricInfo], MetricSeries | None]:
        """The metric names, and the series of the selected one (or the first)."""
        since = window.start(now)
        infos = list_metrics(store, since)
        chosen = next((m for m in infos if m.name == self.selected), infos[0] if infos else None)
        if chosen is None:
            return infos, None
        start = since if window.seconds is not None else first_point_time(store) or since
        return infos, metric_series(store, chosen, Buckets.covering(start, now))

    def show(self, data: tuple[list[MetricInfo], MetricSeries | None]) -> None:
        """Fill the list and draw the chart."""
        infos, series = data
        self.query_one("#metrics", LiveTable).replace_rows(
            (m.name, (m.name, m.kind, m.unit, fmt.count(m.points), ", ".join(m.services))) for m in infos
        )
        title = self.query_one("#metric-title", Label)
        chart = self.query_one("#metric-chart", Sparkline)
        span = self.query_one("#metric-range", Label)
        if series is None:
            title.update("no metrics in this window yet")
            chart.data = []
            span.update("")
            return
        values = [v for v in series.values if v is not None]
        unit = series.info.unit
        # Text, not markup: a metric named `[/]` crashed the dashboard (R7 fuzzing)
        title.update(
            Text(
                f"{series.info.name} ({unit}) — {series.what}, {fmt.duration(series.buckets.width_s * 1000)} buckets"
            )
        )
        chart.data = [_chartable(v) for v in series.values]
        if values:
            span.update(Text(f"min {min(values):.4g}  max {max(values):.4g}  last {values[-1]:.4g} {unit}"))
        else:
            span.update("no points")

    def on_data_table_row_highlighted(self, event: LiveTable.RowHighlighted) -> None:
        """Chart the highlighted metric."""
        name = str(event.row_key.value)
        if name != self.selected:
            self.selected = name
            self.request_refresh()


CHART_LIMIT = 1e300


def _chartable(value: float | None) -> float:
    """A value the Sparkline can scale: it crashed (int of NaN) on a NaN or infinite point, or on two points
    whose difference overflows to infinity (R7 fuzzing: 1e999 in a spool line is stored as infinity)."""
    if value is None or not math.isfinite(value):
        return 0.0
    return max(-CHART_LIMIT, min(CHART_LIMIT, value))
