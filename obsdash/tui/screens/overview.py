"""Overview: what the app is doing right now — request rate, errors and latency per route, with charts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Label, Sparkline, Static

from obsdash.store.queries.llm import BurnRate, SpendGroup
from obsdash.store.queries.overview import Overview, overview
from obsdash.store.queries.window import Window
from obsdash.store.retention_policy import describe
from obsdash.tui import format as fmt
from obsdash.tui.live import LiveScreen
from obsdash.tui.widgets.navbar import NavBar
from obsdash.tui.widgets.table import LiveTable

if TYPE_CHECKING:
    from obsdash.hub.client import Store


class OverviewScreen(LiveScreen):
    """Routes with rate, error rate and p50/p95/p99; requests, errors and p95 over the window; recent errors."""

    AUTO_FOCUS = "#routes"

    def compose(self) -> ComposeResult:
        """Charts on top, the routes table, recent errors, then what was lost."""
        yield NavBar(id="nav")
        yield Static(id="summary")
        yield Static(id="llm-spend")
        with Horizontal(id="charts"):
            for chart_id, title in (("requests", "requests"), ("errors", "errors"), ("p95", "p95 latency")):
                with Vertical(classes="chart"):
                    yield Label(title, id=f"{chart_id}-label", classes="chart-label")
                    yield Sparkline([], id=f"{chart_id}-chart")
        yield LiveTable(["service", "route", "rate", "reqs", "err%", "p50", "p95", "p99"], id="routes")
        yield LiveTable(["error", "count", "last", "where", "route"], id="recent-errors")
        yield Static(id="health")
        yield Footer()

    def load(
        self, store: Store, window: Window, now: datetime
    ) -> tuple[Overview, datetime, dict[str, Any] | None]:
        """All of the overview's figures, and what the store keeps (the hub's retention status)."""
        return overview(store, window, now), now, store.stats().get("retention")

    def show(self, data: tuple[Overview, datetime, dict[str, Any] | None]) -> None:
        """Fill the summary, the charts and both tables."""
        view, now, retention = data
        self._show_summary(view)
        self._show_llm_spend(view)
        self._show_charts(view)
        self.query_one("#routes", LiveTable).replace_rows(
            (
                f"{r.service}|{r.route}",
                (
                    r.service,
                    r.route if r.role == "request" else Text(f"{r.route} ({r.role})", style="dim"),
                    fmt.rate(r.rate_per_s),
                    fmt.count(r.requests),
                    fmt.percent(r.error_rate),
                    fmt.duration(r.p50_ms),
                    fmt.duration(r.p95_ms),
                    fmt.duration(r.p99_ms),
                ),
            )
            for r in view.routes
        )
        self.query_one("#recent-errors", LiveTable).replace_rows(
            (
                e.fingerprint,
                (
                    Text(e.exception_type.rsplit(".", 1)[-1], style="red"),
                    f"×{e.count}",
                    fmt.ago(e.last_seen, now),
                    e.location,
                    ", ".join(e.routes),
                ),
            )
            for e in view.errors
        )
        self.query_one("#health", Static).update(_health_line(view, retention))

    def _show_summary(self, view: Overview) -> None:
        services = ", ".join(s.service for s in view.services) or "no services yet"
        errors = view.errors_total
        line = Text.assemble(
            (f"{fmt.count(view.requests)} requests", "bold"),
            "  ",
            (f"{fmt.count(errors)} failed", "bold red" if errors else "dim"),
            "  ",
            fmt.percent(errors / view.requests if view.requests else 0.0),
            "  services: ",
            (services, "cyan"),
        )
        if not view.routes:
            line.append("   — nothing in this window yet; `w` widens it", style="dim")
        self.query_one("#summary", Static).update(line)

    def _show_llm_spend(self, view: Overview) -> None:
        line = self.query_one("#llm-spend", Static)
        line.set_class(bool(view.llm.calls), "-shown")
        if view.llm.calls:
            line.update(spend_line(view.llm, view.llm_burn, self.dashboard.budget_per_day))

    def _show_charts(self, view: Overview) -> None:
        series = view.series
        bucket = fmt.duration(series.buckets.width_s * 1000)
        # windows over 2 h are read from the per-minute rollup: its percentiles (here and in the routes) are ±5 %
        approximate = " ±5%" if view.approximate else ""
        # short: at 80 columns a chart's label has 24 ("requests per 7.0m: max 11.6k" showed as "... max 1")
        for chart_id, values, label in (
            ("requests", series.requests, f"req/{bucket} max {fmt.count(max(series.requests, default=0))}"),
            ("errors", series.errors, f"errors/{bucket} max {fmt.count(max(series.errors, default=0))}"),
            ("p95", series.p95_ms, f"p95{approximate} max {fmt.duration(max(series.p95_ms, default=0))}"),
        ):
            self.query_one(f"#{chart_id}-chart", Sparkline).data = values
            self.query_one(f"#{chart_id}-label", Label).update(label)

    def on_data_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        """Enter on a route shows its traces; on an error, its example trace."""
        key = str(event.row_key.value)
        if event.data_table.id == "routes":
            route = key.split("|", 1)[1]
            self.dashboard.show_traces(route)
        elif event.data_table.id == "recent-errors":
            self.dashboard.show_error(key)


def _health_line(view: Overview, retention: dict[str, Any] | None = None) -> Text:
    """What was lost or left out first (at 80 columns the line is cut after two rows), then segments stored and
    what is kept; drops are live (the processes' `stats` records)."""
    health = view.health
    parts: list[tuple[str, str]] = []
    if health.bad_lines:
        parts.append((f"{health.bad_lines} bad lines skipped", "yellow"))
    parts += [(f"{n} dropped ({reason})", "yellow") for reason, n in sorted(health.dropped.items())]
    if health.internal_errors:
        parts.append((f"{health.internal_errors} internal errors", "red"))
    if health.not_instrumented:
        names = ", ".join(f"{lib} ({why})" for lib, why in sorted(health.not_instrumented.items()))
        parts.append((f"not instrumented: {names}", "dim"))
    if health.redactions:
        parts.append((f"{sum(health.redactions.values())} secrets redacted", "dim"))
    parts.append((f"stored from {health.segments} spool segments", "dim"))
    if retention:
        parts.append((describe(retention), "yellow" if retention.get("note") else "dim"))
    line = Text()
    for n, (text, style) in enumerate(parts):
        line.append(" · " if n else "", style="dim")
        line.append(text, style=style)
    return line


def spend_line(totals: SpendGroup, burn: BurnRate, budget: float | None) -> Text:
    """`LLM  37 calls  $0.42 in this window  ≈ $10.08/day  1 unpriced`, red over the budget (7: the LLM view)."""
    over = burn.over(budget)
    line = Text.assemble(("LLM ", "bold magenta"), f" {fmt.count(totals.calls)} calls  ")
    if totals.priced:
        line.append(f"{fmt.money(totals.cost_usd)} in this window", "bold")
        line.append(f"  ≈ {fmt.money(burn.per_day_usd)}/day", "bold red" if over else "")
        if over:
            line.append(f" > budget {fmt.money(budget)}", "bold red")
    else:
        line.append("unpriced" if totals.unpriced else "no usage reported", "yellow")
    if totals.priced and totals.unpriced:
        line.append(f"  {totals.unpriced} unpriced", "yellow")
    if totals.no_usage:
        line.append(f"  {totals.no_usage} no usage", "yellow")
    return line
