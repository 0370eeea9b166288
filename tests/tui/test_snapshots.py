"""SVG snapshots of every view at 80x24 over the deterministic store (pytest-textual-snapshot).

Everything on screen is pinned: the store's ids and times, the clock (NOW), the time zone (UTC), no watermark
polls while the screenshot is taken, no cursor blink. After a deliberate change to what a view shows, review the
new pictures and accept them with `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from obsdash.hub.client import Store
from obsdash.tui.app import DashboardApp
from obsdash.tui.live import LiveScreen
from obsdash.tui.screens.help import HelpScreen
from obsdash.tui.screens.sql import SqlScreen
from obsdash.tui.screens.trace import TraceScreen
from obsdash.tui.widgets.table import LiveTable
from tests.tui.conftest import dashboard, view, wait_loaded, wait_until
from tests.tui.store import span_id, trace_id

SnapCompare = Callable[..., bool]
NO_POLLS = 3600.0
"""Watermark poll interval for snapshots: nothing reloads while the picture is taken."""


def snapshot(
    snap_compare: SnapCompare, store: Store, steps: Callable[[Pilot[Any]], Awaitable[None]], **options: Any
) -> None:
    """Start the app over the fixture store, wait for the first view, run `steps`, compare the screen."""
    app = dashboard(store, poll_interval_s=NO_POLLS, **options)

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_loaded(pilot, pilot.app.screen)
        await steps(pilot)
        pin_load_time(app)
        for prompt in pilot.app.screen.query(Input):
            prompt.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def pin_load_time(app: DashboardApp) -> None:
    """The navigation bar shows how long the last load took (hidden past 80 columns, but not by design)."""
    if isinstance(app.screen, LiveScreen):
        app.screen.last_load_ms = 0.0
        app.refresh_status()


def test_overview(snap_compare: SnapCompare, store: Store) -> None:
    async def steps(pilot: Pilot[Any]) -> None:
        pass

    snapshot(snap_compare, store, steps)


def test_traces(snap_compare: SnapCompare, store: Store) -> None:
    async def steps(pilot: Pilot[Any]) -> None:
        await view(pilot, "2")

    snapshot(snap_compare, store, steps)


def test_trace_waterfall(snap_compare: SnapCompare, store: Store) -> None:
    """The /weather trace at 11:40: a sqlite call, fetch_forecast holding the HTTP call into the stand-in's
    server span, another sqlite call."""

    async def steps(pilot: Pilot[Any]) -> None:
        traces = await view(pilot, "2")
        table = traces.query_one("#traces", LiveTable)
        table.move_cursor(row=table.get_row_index(f"{trace_id(7)}/{span_id(7, 'server')}"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, TraceScreen))
        await wait_loaded(pilot, pilot.app.screen)
        await pilot.press("j", "j")  # fetch_forecast: the detail pane shows its log line

    snapshot(snap_compare, store, steps)


def test_errors(snap_compare: SnapCompare, store: Store) -> None:
    async def steps(pilot: Pilot[Any]) -> None:
        await view(pilot, "3")

    snapshot(snap_compare, store, steps)


def test_logs(snap_compare: SnapCompare, store: Store) -> None:
    async def steps(pilot: Pilot[Any]) -> None:
        await view(pilot, "4")

    snapshot(snap_compare, store, steps)


def test_metrics(snap_compare: SnapCompare, store: Store) -> None:
    async def steps(pilot: Pilot[Any]) -> None:
        await view(pilot, "5")

    snapshot(snap_compare, store, steps)


def test_sql_with_a_result(snap_compare: SnapCompare, store: Store) -> None:
    async def steps(pilot: Pilot[Any]) -> None:
        await pilot.press("6")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SqlScreen))
        screen = pilot.app.screen
        prompt = screen.query_one("#sql-input", Input)
        prompt.value = "SELECT service_name, http_route, count(*) AS n FROM spans WHERE is_root GROUP BY ALL ORDER BY ALL"
        await pilot.press("enter")
        await wait_loaded(pilot, screen)
        # the status line says how long the query took: show the result again with that pinned
        screen.last_load_ms = 0.0
        screen.show((screen.sql, store.query(screen.sql)))

    snapshot(snap_compare, store, steps)


def test_help_on_traces(snap_compare: SnapCompare, store: Store) -> None:
    async def steps(pilot: Pilot[Any]) -> None:
        await view(pilot, "2")
        pin_load_time(pilot.app)  # the Traces view stays visible around the help
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    snapshot(snap_compare, store, steps)


def test_llm(snap_compare: SnapCompare, store: Store) -> None:
    """Spend, projection and cost chart, the breakdown by model, the costliest calls; unpriced and no-usage calls
    say so."""

    async def steps(pilot: Pilot[Any]) -> None:
        await view(pilot, "7")

    snapshot(snap_compare, store, steps)


def test_llm_over_budget_by_route(snap_compare: SnapCompare, store: Store) -> None:
    """The projection in red past --budget-per-day (its notification cleared for the picture), spend by route."""

    async def steps(pilot: Pilot[Any]) -> None:
        await view(pilot, "7")
        await pilot.press("g", "g")
        pilot.app.clear_notifications()

    snapshot(snap_compare, store, steps, budget_per_day=0.05)


def test_report(snap_compare: SnapCompare, store: Store) -> None:
    """Findings worst first: the crashing checkout, spend over the budget, the dropped records, django skipped."""

    async def steps(pilot: Pilot[Any]) -> None:
        await view(pilot, "8")
        pilot.app.clear_notifications()

    snapshot(snap_compare, store, steps, budget_per_day=0.05)
