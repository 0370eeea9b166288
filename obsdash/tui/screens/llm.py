"""LLM: what the app's model calls cost over the window, where the money goes, and where it is heading.

Totals (calls, tokens, $, unpriced and no-usage counts, cache savings), the burn rate projected to a day and a
month — red, with a notification when it crosses `--budget-per-day` — cost over time, a breakdown that `g` moves
between model, provider, route and service, and the most expensive calls (Enter opens the trace). A call whose
model genai-prices does not know says "unpriced" and one that reported no usage says so; neither shows as $0.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Label, Sparkline, Static

from obsdash.store.queries.llm import DIMENSIONS, BurnRate, LlmCall, LlmSpend, SpendGroup, llm_spend
from obsdash.store.queries.window import Window
from obsdash.tui import format as fmt
from obsdash.tui.live import LiveScreen
from obsdash.tui.widgets.navbar import NavBar
from obsdash.tui.widgets.table import LiveTable

if TYPE_CHECKING:
    from obsdash.hub.client import Store

GROUP_COLUMNS = ["calls", "in", "out", "cached", "cost", "not priced"]
CALL_COLUMNS = ["ago", "model", "route", "in", "out", "cost", "trace"]
# Routes and models are cut to so many characters that the trace id stays on an 80-column screen.
ROUTE_WIDTH = 15
MODEL_WIDTH = 18
KEY_WIDTH = 22


class LlmScreen(LiveScreen):
    """Spend totals and projection, cost over time, spend per model/provider/route/service, costliest calls."""

    AUTO_FOCUS = "#llm-calls"
    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: the tables' own `g` (top) would take it first
        Binding(
            "g",
            "next_breakdown",
            "Group by",
            tooltip="spend by model → provider → route → service",
            priority=True,
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.breakdown = DIMENSIONS[0]
        """What the breakdown table groups by."""
        self.spend: LlmSpend | None = None
        self.over_budget = False
        """Whether the last projection was over the budget (a notification is raised only on crossing it)."""

    def compose(self) -> ComposeResult:
        """Totals, projection, cost chart, the breakdown, then the costliest calls."""
        yield NavBar(id="nav")
        yield Static(id="llm-totals")
        yield Static(id="llm-burn")
        yield Label("", id="llm-cost-label", classes="chart-label")
        yield Sparkline([], id="llm-cost-chart")
        yield LiveTable([self.breakdown, *GROUP_COLUMNS], id="llm-groups")
        yield LiveTable(CALL_COLUMNS, id="llm-calls")
        yield Footer()

    def load(self, store: Store, window: Window, now: datetime) -> tuple[LlmSpend, datetime]:
        """Every figure of the window."""
        return llm_spend(store, window, now), now

    def show(self, data: tuple[LlmSpend, datetime]) -> None:
        """Fill the lines, the chart and both tables."""
        self.spend, now = data
        spend = self.spend
        self.query_one("#llm-totals", Static).update(totals_line(spend.totals))
        self._show_burn(spend)
        bucket = fmt.duration(spend.buckets.width_s * 1000)
        self.query_one("#llm-cost-chart", Sparkline).data = spend.cost_series
        self.query_one("#llm-cost-label", Label).update(
            f"cost per {bucket}: max {fmt.money(max(spend.cost_series, default=0.0))}"
            if spend.totals.priced
            else "cost over time: nothing priced in this window"
        )
        self._show_groups()
        self.query_one("#llm-calls", LiveTable).replace_rows(
            (f"{c.trace_id}/{c.span_id}", call_cells(c, now)) for c in spend.top_calls
        )

    def _show_burn(self, spend: LlmSpend) -> None:
        budget = self.dashboard.budget_per_day
        over = spend.burn.over(budget)
        self.query_one("#llm-burn", Static).update(burn_line(spend.totals, spend.burn, budget))
        if over and not self.over_budget:
            self.notify(
                f"LLM spend is heading for {fmt.money(spend.burn.per_day_usd)}/day, over the budget of "
                f"{fmt.money(budget)}/day",
                title="over budget",
                severity="error",
                timeout=10,
            )
        self.over_budget = over

    def _show_groups(self) -> None:
        table = self.query_one("#llm-groups", LiveTable)
        label = str(table.ordered_columns[0].label) if table.ordered_columns else ""
        if label != self.breakdown:
            table.clear(columns=True)
            table.add_columns(self.breakdown, *GROUP_COLUMNS)
        groups = self.spend.groups.get(self.breakdown, []) if self.spend else []
        table.replace_rows((str(g.key), group_cells(g, self.breakdown)) for g in groups)

    def action_next_breakdown(self) -> None:
        """g: break the spend down by the next dimension."""
        self.breakdown = DIMENSIONS[(DIMENSIONS.index(self.breakdown) + 1) % len(DIMENSIONS)]
        self._show_groups()

    def on_data_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        """Enter on a call: its trace's waterfall, on the call's span."""
        if event.data_table.id == "llm-calls":
            trace_id, span_id = str(event.row_key.value).split("/", 1)
            self.dashboard.open_trace(trace_id, span_id)


def cost_text(group: SpendGroup) -> Text:
    """A group's cost, or why it has none: never $0 for what was not priced."""
    if group.priced:
        return Text(fmt.money(group.cost_usd))
    return Text("no usage" if group.no_usage == group.calls else "unpriced", style="yellow")


def totals_line(totals: SpendGroup) -> Text:
    """`12 calls  in 258k (2.3k cached)  out 1.4k  $0.0521  unpriced 1  no usage 1`."""
    if not totals.calls:
        return Text("no LLM calls in this window; `w` widens it", style="dim")
    cost = cost_text(totals)
    cost.stylize("bold")
    line = Text.assemble(
        (f"{fmt.count(totals.calls)} calls", "bold"),
        f"  in {fmt.count(totals.input_tokens)}",
        (f" ({fmt.count(totals.cache_read_tokens)} cached)" if totals.cache_read_tokens else "", "dim"),
        f"  out {fmt.count(totals.output_tokens)}  ",
        cost,
    )
    if totals.priced and totals.unpriced:
        line.append(f"  unpriced {totals.unpriced}", style="yellow")
    if totals.no_usage:
        line.append(f"  no usage {totals.no_usage}", style="yellow")
    if totals.failed:
        line.append(f"  failed {totals.failed}", style="red")
    return line


def burn_line(totals: SpendGroup, burn: BurnRate, budget: float | None) -> Text:
    """`≈ $1.50/day · $45.00/month  budget $2.00/day  from 12m  cache saved $0.0036`; red over the budget."""
    if not totals.priced:
        return Text("no projection: nothing priced in this window", style="dim")
    over = burn.over(budget)
    line = Text(
        f"≈ {fmt.money(burn.per_day_usd)}/day · {fmt.money(burn.per_month_usd)}/month",
        style="bold red" if over else "bold",
    )
    if budget is not None:
        line.append(
            f"  {'over ' if over else ''}budget {fmt.money(budget)}/day", "bold red" if over else "dim"
        )
    line.append(f"  from {fmt.span(burn.seconds)}", "dim")
    saved = totals.cache_savings_usd
    if saved:
        line.append(
            f"  cache {'saved' if saved > 0 else 'cost'} {fmt.money(abs(saved))}",
            "green" if saved > 0 else "",
        )
    return line


def group_cells(group: SpendGroup, breakdown: str) -> tuple[object, ...]:
    """A breakdown row: key, calls, tokens, cost, and what was not priced."""
    missing = [
        f"{group.unpriced} unpriced" if group.unpriced else "",
        f"{group.no_usage} no usage" if group.no_usage else "",
    ]
    key = group.key or ("(no route)" if breakdown == "route" else "?")
    silent = group.no_usage == group.calls  # nothing to count: "-", not 0
    return (
        fmt.short_model(key) if breakdown == "model" else fmt.middle(key, KEY_WIDTH),
        fmt.count(group.calls),
        *(
            "-" if silent else fmt.count(n)
            for n in (group.input_tokens, group.output_tokens, group.cache_read_tokens)
        ),
        cost_text(group),
        Text(", ".join(m for m in missing if m), style="yellow"),
    )


def call_cells(call: LlmCall, now: datetime) -> tuple[object, ...]:
    """A costliest-calls row."""
    if call.cost_usd is not None:
        cost = Text(fmt.money(call.cost_usd))
    else:
        cost = Text("unpriced" if call.usage_reported else "no usage", style="yellow")
    return (
        fmt.ago(call.time, now),
        fmt.short_model(call.model or "?", MODEL_WIDTH) + (" ⇣" if call.streamed else ""),
        fmt.middle(call.route or "-", ROUTE_WIDTH),
        "-" if call.input_tokens is None else fmt.count(call.input_tokens),
        "-" if call.output_tokens is None else fmt.count(call.output_tokens),
        cost,
        fmt.short_id(call.trace_id),
    )
