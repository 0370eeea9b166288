"""The dashboard driven with Textual's pilot over a real store (spool segments ingested by the real hub): each
view's content, the keys of every flow, pause, live updates and a second reader process.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Sparkline, Static

from obsdash.datadir import DataDir
from obsdash.hub.client import Store, open_store
from obsdash.store.queries.window import utc_now
from obsdash.tui.format import money
from obsdash.tui.screens.errors import ErrorsScreen
from obsdash.tui.screens.help import HelpScreen
from obsdash.tui.screens.llm import LlmScreen
from obsdash.tui.screens.logs import LogsScreen
from obsdash.tui.screens.metrics import MetricsScreen
from obsdash.tui.screens.overview import OverviewScreen
from obsdash.tui.screens.sql import SqlScreen
from obsdash.tui.screens.trace import TraceScreen
from obsdash.tui.screens.traces import TracesScreen
from obsdash.tui.widgets.filter import FilterInput
from obsdash.tui.widgets.navbar import NavBar
from obsdash.tui.widgets.table import LiveTable
from tests.conftest import obsdash_cmd
from tests.conftest import run as run_command
from tests.tui.conftest import (
    POLL_S,
    column,
    dashboard,
    keys,
    plain,
    press_and_reload,
    rows,
    run,
    view,
    wait_loaded,
    wait_until,
)
from tests.tui.store import (
    FIXTURE_LLM_CALLS,
    LIVE_CHECKOUT,
    LLM_CALLS,
    NOW_NS,
    SCHEDULE,
    S,
    add_request,
    llm_cost,
    request_records,
    span_id,
    trace_id,
    write_segment,
)

WEATHER = 7  # the /weather request at 11:40 (SCHEDULE index)
LATEST_FAILURE = 10  # the /checkout that failed at 11:55
FAILURES = [n for n, (kind, _) in enumerate(SCHEDULE) if kind == "checkout_fail"]


def root(n: int) -> str:
    """The Traces row key of request n's root span."""
    return f"{trace_id(n)}/{span_id(n, 'server')}"


def text(widget: Static) -> str:
    """What a Static shows, as plain text."""
    return str(widget.content)


async def started(pilot: Pilot[Any]) -> OverviewScreen:
    """The first view, loaded."""
    screen = await wait_loaded(pilot, pilot.app.screen)
    assert isinstance(screen, OverviewScreen)
    return screen


async def open_row(pilot: Pilot[Any], table: LiveTable, key: str) -> None:
    """Highlight the row with `key` and press Enter on it."""
    table.focus()
    table.move_cursor(row=table.get_row_index(key))
    await pilot.pause()
    await pilot.press("enter")


async def open_trace_screen(pilot: Pilot[Any]) -> TraceScreen:
    """Wait for the waterfall pushed by the last key, loaded."""
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TraceScreen))
    screen = await wait_loaded(pilot, pilot.app.screen)
    assert isinstance(screen, TraceScreen)
    return screen


def test_overview_shows_routes_errors_and_capture_health(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await started(pilot)
            routes = screen.query_one("#routes", LiveTable)
            by_route = {row[1]: row for row in rows(routes)}
            # requests first (most first), then the background job
            assert keys(routes) == [
                "shop|/checkout",
                "shop|/items",
                "upstream|/forecast",
                "shop|/weather",
                "shop|cleanup_carts",
            ]
            assert {route: row[3] for route, row in by_route.items()} == {
                "/checkout": "5",
                "/items": "5",
                "/forecast": "2",
                "/weather": "2",
                "cleanup_carts (internal)": "1",
            }
            assert by_route["/checkout"][4] == "40.0%"
            assert by_route["/items"][4] == "0%"
            assert by_route["/weather"][5] == "45ms"  # p50

            summary = text(screen.query_one("#summary", Static))
            assert "14 requests" in summary and "2 failed" in summary and "shop, upstream" in summary

            errors = screen.query_one("#recent-errors", LiveTable)
            assert [row[:5] for row in rows(errors)] == [
                ["ValueError", "×2", "4m", "shop.py:checkout", "/checkout"]
            ]
            health = text(screen.query_one("#health", Static))
            assert "3 dropped (queue_full)" in health
            assert "not instrumented: django (skipped: DJANGO_SETTINGS_MODULE is not set)" in health
            assert "4 spool segments" in health

            requests_chart = screen.query_one("#requests-chart", Sparkline)
            assert requests_chart.data is not None and sum(requests_chart.data) == 14

    run(scenario)


def test_overview_rows_lead_to_traces_and_errors(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await started(pilot)
            await open_row(pilot, screen.query_one("#routes", LiveTable), "shop|/weather")
            await wait_until(pilot, lambda: app.current_mode == "traces")
            traces = await wait_loaded(pilot, app.screen)
            await wait_until(pilot, lambda: traces.query_one("#traces", LiveTable).row_count == 2)
            assert set(column(traces.query_one("#traces", LiveTable), 2)) == {"/weather"}
            assert traces.query_one("#filter", FilterInput).value == "/weather"

            overview = await view(pilot, "1")
            fingerprint = keys(overview.query_one("#recent-errors", LiveTable))[0]
            await open_row(pilot, overview.query_one("#recent-errors", LiveTable), fingerprint)
            await wait_until(pilot, lambda: app.current_mode == "errors")
            errors = await wait_loaded(pilot, app.screen)
            assert errors.query_one("#errors", LiveTable).selected_key() == fingerprint

    run(scenario)


def test_number_keys_and_tab_switch_views(store: Store) -> None:
    app = dashboard(store)
    expected = {
        "2": ("traces", TracesScreen),
        "3": ("errors", ErrorsScreen),
        "4": ("logs", LogsScreen),
        "5": ("metrics", MetricsScreen),
        "1": ("overview", OverviewScreen),
    }

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            for key, (mode, screen_type) in expected.items():
                await view(pilot, key)
                assert app.current_mode == mode
                assert isinstance(app.screen, screen_type)
                nav = text(app.screen.query_one(NavBar))
                assert "● live" in nav and "1h" in nav
                assert app.screen.query_one(LiveTable).region.height > 3  # laid out, not just mounted
            await pilot.press("6")
            await wait_until(pilot, lambda: isinstance(app.screen, SqlScreen))
            assert app.current_mode == "sql"
            await wait_until(pilot, lambda: app.screen.query_one("#sql-results").region.height > 3)
            for key, mode in [
                ("tab", "llm"),
                ("tab", "report"),
                ("tab", "runs"),
                ("tab", "overview"),
                ("tab", "traces"),
                ("shift+tab", "overview"),
            ]:
                await pilot.press(key)
                await wait_until(pilot, lambda mode=mode: app.current_mode == mode)
            await pilot.press("shift+tab")  # wraps around to the last view
            await wait_until(pilot, lambda: app.current_mode == "runs")
            nav = text(app.screen.query_one(NavBar))  # nine views in 80 columns: the others by short title
            assert "9 Runs" in nav and "1 Ovw" in nav and "8 Rpt" in nav and "● live" in nav

    run(scenario)


def test_traces_filter_errors_only_and_sort(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            screen = await view(pilot, "2")
            table = screen.query_one("#traces", LiveTable)
            # a row per root span, newest first: the /weather traces have two (shop and the upstream stand-in)
            assert table.row_count == len(SCHEDULE) + 2
            assert keys(table)[:3] == [root(12), root(11), root(10)]
            assert rows(table)[2][1:5] == ["shop", "/checkout", "500", "2.1ms"]
            assert rows(table)[0][5] == "2"  # spans in the trace

            filter_input = screen.query_one("#filter", FilterInput)
            await pilot.press("slash")
            assert filter_input.has_focus and filter_input.has_class("-active")
            await pilot.press(*"weather")
            await press_and_reload(pilot, "enter")
            assert column(table, 2) == ["/weather", "/weather"]
            assert keys(table) == [root(7), root(2)]
            assert "matching “weather”" in text(screen.query_one("#traces-status", Static))
            assert table.has_focus and not filter_input.has_class("-active")

            await pilot.press("slash")
            await press_and_reload(pilot, "escape")  # Escape clears the filter
            assert table.row_count == len(SCHEDULE) + 2

            await press_and_reload(pilot, "e")
            assert keys(table) == [root(n) for n in reversed(FAILURES)]
            assert column(table, 3) == ["500", "500"]
            assert "errors only" in text(screen.query_one("#traces-status", Static))
            await press_and_reload(pilot, "e")

            await press_and_reload(pilot, "s")
            assert "by duration" in text(screen.query_one("#traces-status", Static))
            assert column(table, 2)[:2] == ["/weather", "/weather"]  # 45 ms, the slowest
            durations = column(table, 4)
            assert durations[-1] == "2.1ms"
            await press_and_reload(pilot, "s")
            assert "by errors" in text(screen.query_one("#traces-status", Static))
            assert keys(table)[:2] == [root(n) for n in reversed(FAILURES)]
            await press_and_reload(pilot, "s")
            assert "by time" in text(screen.query_one("#traces-status", Static))

    run(scenario)


def test_waterfall_nests_spans_and_jumps_to_errors(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            traces = await view(pilot, "2")
            await open_row(pilot, traces.query_one("#traces", LiveTable), root(WEATHER))
            trace = await open_trace_screen(pilot)
            assert trace.trace_id == trace_id(WEATHER)
            waterfall = trace.query_one("#waterfall", LiveTable)
            names = ["server", "cache", "fetch", "client", "upstream", "store"]
            assert keys(waterfall) == [span_id(WEATHER, name) for name in names]
            assert [row.depth for row in trace.rows] == [0, 1, 1, 2, 3, 1]
            assert [row.span.kind for row in trace.rows] == [
                "SERVER",
                "CLIENT",
                "INTERNAL",
                "CLIENT",
                "SERVER",
                "CLIENT",
            ]
            assert trace.rows[4].span.service == "upstream"  # the stand-in's side, under the shop's call
            title = text(trace.query_one("#trace-title", Static))
            assert "GET /weather" in title and "6 spans" in title and "no errors" in title
            assert waterfall.selected_key() == span_id(WEATHER, "server")
            assert "http.route = /weather" in text(trace.query_one("#span-detail-text", Static))

            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen is traces)

            await open_row(pilot, traces.query_one("#traces", LiveTable), root(LATEST_FAILURE))
            trace = await open_trace_screen(pilot)
            waterfall = trace.query_one("#waterfall", LiveTable)
            assert keys(waterfall) == [span_id(LATEST_FAILURE, s) for s in ("server", "select", "validate")]
            assert [row.is_error for row in trace.rows] == [True, False, True]
            assert "2 errors" in text(trace.query_one("#trace-title", Static))
            assert waterfall.cursor_row == 0
            await pilot.press("n")
            assert waterfall.cursor_row == 2
            await pilot.pause()
            detail = text(trace.query_one("#span-detail-text", Static))
            assert "validate_order" in detail and "ValueError: invalid literal" in detail
            await pilot.press("n")  # wraps around
            assert waterfall.cursor_row == 0
            await pilot.press("N")
            assert waterfall.cursor_row == 2

            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen is traces)
            assert app.current_mode == "traces"

    run(scenario)


def test_errors_group_and_its_example_trace(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            screen = await view(pilot, "3")
            table = screen.query_one("#errors", LiveTable)
            assert table.row_count == 1
            assert rows(table)[0][:6] == ["ValueError", "×2", "29m", "4m", "shop.py:checkout", "/checkout"]
            detail = text(screen.query_one("#error-detail-text", Static))
            assert "ValueError: invalid literal for int() with base 10: 'abc'" in detail
            assert f"latest trace {trace_id(LATEST_FAILURE)}" in detail
            assert 'File "/srv/shop/shop.py", line 42, in checkout' in detail

            await pilot.press("enter")
            trace = await open_trace_screen(pilot)
            assert trace.trace_id == trace_id(LATEST_FAILURE)
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen is screen)

    run(scenario)


def test_logs_level_filter_and_link_to_the_span(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            screen = await view(pilot, "4")
            table = screen.query_one("#logs", LiveTable)
            assert table.row_count == 14
            assert set(column(table, 1)) == {"INFO", "WARN", "ERROR"}
            assert rows(table)[0][3] == "listed 12 items"
            assert rows(table)[0][4] == trace_id(12)[:8]

            for level in ("debug", "info", "warn", "error"):
                await press_and_reload(pilot, "l")
                assert f"level ≥ {level}" in text(screen.query_one("#logs-status", Static))
            assert column(table, 1) == ["ERROR", "ERROR"]
            assert column(table, 3) == ["checkout failed  ValueError"] * 2

            await pilot.press("enter")  # the newest error line: logged inside validate_order
            trace = await open_trace_screen(pilot)
            assert trace.trace_id == trace_id(LATEST_FAILURE)
            waterfall = trace.query_one("#waterfall", LiveTable)
            assert waterfall.selected_key() == span_id(LATEST_FAILURE, "validate")
            assert waterfall.cursor_row == 2

            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen is screen)
            await pilot.press("slash", *"cache", "enter")
            await wait_until(pilot, lambda: "matching" in text(screen.query_one("#logs-status", Static)))
            await wait_loaded(pilot, screen)
            assert table.row_count == 0  # still at level ≥ error: no warning passes
            await press_and_reload(pilot, "l")  # back to all levels
            assert column(table, 3) == ["forecast cache miss for Paris"] * 2

    run(scenario)


def test_metrics_list_and_chart(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            screen = await view(pilot, "5")
            table = screen.query_one("#metrics", LiveTable)
            assert keys(table) == ["http.server.duration", "shop.orders"]
            assert rows(table) == [
                ["http.server.duration", "histogram", "ms", "12", "shop"],
                ["shop.orders", "sum", "{order}", "12", "shop"],
            ]
            chart = screen.query_one("#metric-chart", Sparkline)
            assert chart.data is not None and len(chart.data) == 60
            assert sum(1 for v in chart.data if v > 0) == 12 and max(chart.data) == 15.0
            assert str(screen.query_one("#metric-title").render()).startswith("http.server.duration (ms)")

            await pilot.press("j")
            await wait_until(pilot, lambda: screen.selected == "shop.orders")
            await wait_loaded(pilot, screen)
            assert "shop.orders" in str(screen.query_one("#metric-title").render())
            loads = screen.loads
            await pilot.pause(0.5)
            assert screen.loads == loads  # showing the chart does not ask for another load
            assert chart.data is not None and sum(chart.data) == sum(1 + i % 4 for i in range(12))

    run(scenario)


def test_sql_runs_reads_and_refuses_writes(store: Store) -> None:
    app = dashboard(store)

    async def submit(pilot: Pilot[Any], screen: SqlScreen, sql: str, typed: str = "") -> str:
        """Put `sql` in the prompt, type `typed` after it (keys are slow in the pilot), press Enter."""
        prompt = screen.query_one("#sql-input", Input)
        prompt.value = sql
        prompt.cursor_position = len(sql)
        before = screen.loads
        await pilot.press(*typed, "enter")
        await wait_loaded(pilot, screen, before + 1)
        assert prompt.value == sql + typed  # the statement stays in the prompt, to edit
        return text(screen.query_one("#sql-status", Static))

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            await pilot.press("6")
            await wait_until(pilot, lambda: isinstance(app.screen, SqlScreen))
            screen = app.screen
            assert isinstance(screen, SqlScreen)
            await wait_until(pilot, lambda: screen.query_one("#sql-input", Input).has_focus)
            results = screen.query_one("#sql-results", DataTable)

            status = await submit(
                pilot,
                screen,
                "SELECT http_route, count(*) AS n FROM spans WHERE is_root GROUP BY 1 ORDER BY 1",
            )
            assert status.startswith("5 rows")
            assert [str(c.label) for c in results.columns.values()] == ["http_route", "n"]
            assert rows(results) == [
                ["/checkout", "5"],
                ["/forecast", "2"],
                ["/items", "5"],
                ["/weather", "2"],
                ["NULL", "1"],
            ]

            add_request(store, 100, "items", NOW_NS - 30 * S, seq=100)  # new telemetry does not rerun it
            loads = screen.loads
            await pilot.pause(10 * POLL_S)
            assert screen.loads == loads and results.row_count == 5
            spans = store.query("SELECT count(*) FROM spans").rows[0][0]

            status = await submit(pilot, screen, "", "DELETE FROM spans")
            assert "DELETE statements are not allowed" in status and "read-only" in status
            assert results.row_count == 5  # the last result stays
            assert store.query("SELECT count(*) FROM spans").rows[0][0] == spans

            status = await submit(pilot, screen, "", "SELEC 1")
            assert status.startswith("obsdash: SQL error: Parser Error")
            assert "\n" not in status

    run(scenario)


def test_window_key_cycles_and_reloads(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await started(pilot)
            routes = screen.query_one("#routes", LiveTable)
            for label in ("6h", "24h", "all", "5m"):
                await press_and_reload(pilot, "w")
                assert app.window.label == label
                assert f" {label} " in text(screen.query_one(NavBar))
            # 11:55 to 12:00: the failed and the good checkout, and one /items
            assert {row[1]: row[3] for row in rows(routes)} == {"/checkout": "2", "/items": "1"}
            assert "3 requests" in text(screen.query_one("#summary", Static))

            traces = await view(pilot, "2")  # another view shows the same window
            assert traces.query_one("#traces", LiveTable).row_count == 3
            await press_and_reload(pilot, "w")
            assert app.window.label == "15m"
            assert traces.query_one("#traces", LiveTable).row_count == 5

    run(scenario)


def test_pause_freezes_the_view_until_resumed(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            screen = await view(pilot, "2")
            table = screen.query_one("#traces", LiveTable)
            shown = keys(table)

            await pilot.press("space")
            assert app.paused
            assert "⏸ paused" in text(screen.query_one(NavBar))
            loads = screen.loads
            new = add_request(store, 100, "items", NOW_NS - 30 * S, seq=100)
            assert store.query("SELECT count(*) FROM spans WHERE trace_id = ?", [new]).rows[0][0] == 2
            await pilot.pause(10 * POLL_S)  # many polls go by
            assert keys(table) == shown and screen.loads == loads

            await pilot.press("space")
            assert not app.paused
            await wait_until(pilot, lambda: root(100) in keys(table))
            assert keys(table)[0] == root(100)
            assert "● live" in text(screen.query_one(NavBar))

    run(scenario)


def test_help_lists_the_keys_of_the_view(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            traces = await view(pilot, "2")
            await pilot.press("question_mark")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
            listed = plain(app.screen.query_one("#help Static", Static).content)
            for entry in (
                "Filter",
                "Sort",
                "Errors only",
                "Older",
                "Next view",
                "cycle the time window",
                "Quit",
            ):
                assert entry in listed, entry
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen is traces)

            logs = await view(pilot, "4")
            await pilot.press("question_mark")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
            listed = plain(app.screen.query_one("#help Static", Static).content)
            assert "Level" in listed and "Service" in listed and "Errors only" not in listed
            await pilot.press("question_mark")  # ? closes it too
            await wait_until(pilot, lambda: app.screen is logs)

    run(scenario)


def test_q_quits_cleanly(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            await view(pilot, "2")
            await pilot.press("q")
            await wait_until(pilot, lambda: app.return_code is not None)

    run(scenario)
    assert app.return_code == 0
    assert store.query("SELECT count(*) FROM spans").rows[0][0] > 0  # the store outlives the app


def test_larger_terminal_shows_more(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot)
            nav = text(app.screen.query_one(NavBar))
            assert nav.endswith("ms")  # the load time, after "● live"
            traces = await view(pilot, "2")
            table = traces.query_one("#traces", LiveTable)
            assert table.row_count == 15
            assert table.size.height >= 15 + 1  # every row and the header fit
            await open_row(pilot, table, root(LATEST_FAILURE))
            trace = await open_trace_screen(pilot)
            await pilot.press("n")
            await pilot.pause()
            detail = text(trace.query_one("#span-detail-text", Static))
            assert "ValueError: invalid literal" in detail and 'shop.py", line 42, in checkout' in detail
            assert "≡" in detail and "checkout failed" in detail  # the log line, on its span

    run(scenario)


def test_new_telemetry_appears_without_a_key(store: Store) -> None:
    """P5: a request written to the spool while the dashboard runs shows up on its own (hub watcher → watermark
    → poll → reload)."""
    app = dashboard(store, "5m", clock=utc_now)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            screen = await view(pilot, "2")
            table = screen.query_one("#traces", LiveTable)
            assert root(200) not in keys(table)
            add_request(store, 200, "weather", time.time_ns() - 50 * 1_000_000, seq=200, sync=False)
            await wait_until(pilot, lambda: root(200) in keys(table), timeout=15)
            assert rows(table)[keys(table).index(root(200))][2] == "/weather"
            assert keys(table)[0] == root(200) or keys(table)[1] == root(200)  # the stand-in's root may lead

    run(scenario)


def test_another_process_reads_while_the_app_hosts_the_hub(store: Store, tmp_path: Path) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await started(pilot)
            assert store.is_host
            command = obsdash_cmd(
                "query",
                "--data-dir",
                str(tmp_path / "data"),
                "--format",
                "json",
                "SELECT count(*) AS n FROM spans WHERE is_root",
            )
            result = await asyncio.to_thread(run_command, command)
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout) == [{"n": len(SCHEDULE) + 2}]
            await press_and_reload(pilot, "r")  # the app still reads after serving the other process
            assert screen.query_one("#routes", LiveTable).row_count == 5

    run(scenario)


def test_llm_view_spend_breakdowns_and_costliest_calls(store: Store) -> None:
    app = dashboard(store)
    spent = llm_cost(FIXTURE_LLM_CALLS)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            screen = await view(pilot, "7")
            assert isinstance(screen, LlmScreen) and app.current_mode == "llm"
            totals = text(screen.query_one("#llm-totals", Static))
            assert totals.startswith("6 calls") and f"  {money(spent)}" in totals
            assert "unpriced 1" in totals and "no usage 1" in totals
            burn = text(screen.query_one("#llm-burn", Static))
            # the window's spend over the 48m20s since its first call (the cleanup job's), projected
            per_day = spent / (2900 - 0.0102) * 86_400
            assert burn.startswith(f"≈ {money(per_day)}/day · {money(per_day * 30)}/month")
            assert "from 48m" in burn and "cache saved $" in burn and "budget" not in burn
            assert screen.spend is not None and sum(screen.spend.cost_series) == pytest.approx(spent)

            groups = screen.query_one("#llm-groups", LiveTable)
            assert str(groups.ordered_columns[0].label) == "model"
            assert keys(groups) == [
                "claude-sonnet-4-20250514",
                "gpt-4o",
                "claude-3-5-haiku-20241022",
                "gpt-4o-mini",
                "acme-large-2",
            ]
            by_model = {row[0]: row for row in rows(groups)}
            assert by_model["acme-large-2"][5] == "unpriced" and by_model["acme-large-2"][6] == "1 unpriced"
            assert by_model["gpt-4o-mini"][1] == "2" and by_model["gpt-4o-mini"][6] == "1 no usage"
            assert "$0" not in column(groups, 5)
            for dimension, expected in [
                ("provider", ["anthropic", "openai"]),
                ("route", ["/checkout", "cleanup_carts"]),
                ("service", ["shop"]),
                ("model", keys(groups)),
            ]:
                await pilot.press("g")
                assert str(groups.ordered_columns[0].label) == dimension
                assert keys(groups) == expected, dimension

            calls = screen.query_one("#llm-calls", LiveTable)
            assert calls.has_focus
            assert [row[1] for row in rows(calls)] == [
                "claude-sonnet-4",
                "gpt-4o",
                "claude-3-5-haiku",
                "gpt-4o-mini ⇣",
                "acme-large-2",
                "gpt-4o-mini ⇣",
            ]
            assert [row[5] for row in rows(calls)][-2:] == ["unpriced", "no usage"]
            assert rows(calls)[0][2] == "/checkout" and rows(calls)[2][2] == "cleanup_carts"
            await pilot.press(
                "enter"
            )  # the costliest call: claude-sonnet-4 in checkout 8, with the SDK's span
            trace = await open_trace_screen(pilot)
            assert trace.trace_id == trace_id(8)
            waterfall = trace.query_one("#waterfall", LiveTable)
            assert waterfall.selected_key() == span_id(8, "llm0")
            assert span_id(8, "llm0-sdk") in keys(waterfall)
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen is screen)

    run(scenario)


def test_llm_budget_turns_the_projection_red_and_notifies_once(store: Store) -> None:
    app = dashboard(store, budget_per_day=0.05)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            overview = await started(pilot)
            spend = overview.query_one("#llm-spend", Static)
            assert spend.display and "over budget" not in text(spend)
            per_day = llm_cost(FIXTURE_LLM_CALLS) / (2900 - 0.0102) * 86_400
            assert text(spend).startswith(
                f"LLM  6 calls  $0.012 in this window  ≈ {money(per_day)}/day > budget $0.050"
            )
            screen = await view(pilot, "7")
            assert isinstance(screen, LlmScreen) and screen.over_budget
            burn = screen.query_one("#llm-burn", Static)
            assert "over budget $0.050/day" in text(burn)
            assert any(span.style == "bold red" for span in burn.content.spans)
            notes = [n for n in app._notifications if n.title == "over budget"]
            assert len(notes) == 1 and "$0.050/day" in notes[0].message
            await press_and_reload(pilot, "r")  # still over: no second notification
            assert len([n for n in app._notifications if n.title == "over budget"]) == 1

    run(scenario)


def test_llm_spend_moves_live(store: Store) -> None:
    app = dashboard(store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            screen = await view(pilot, "7")
            assert isinstance(screen, LlmScreen) and screen.spend is not None
            before = screen.spend.totals.cost_usd
            add_request(store, LIVE_CHECKOUT, "checkout", NOW_NS - 30 * S, seq=300, sync=False)
            await wait_until(pilot, lambda: screen.spend is not None and screen.spend.calls == 7)
            added = llm_cost(LLM_CALLS[LIVE_CHECKOUT])
            assert screen.spend.totals.cost_usd == pytest.approx(before + added)
            assert text(screen.query_one("#llm-totals", Static)).startswith("7 calls")
            assert keys(screen.query_one("#llm-calls", LiveTable))[0].startswith(trace_id(LIVE_CHECKOUT))

    run(scenario)


def test_overview_has_no_spend_line_without_llm_calls(tmp_path: Path) -> None:
    data_dir = tmp_path / "plain"
    spool = DataDir(data_dir).spool
    spans, _ = request_records(0, "items", NOW_NS - 60 * S)
    write_segment(spool, "spans", spans, 1)
    plain_store = open_store(DataDir(data_dir))
    plain_store.sync()
    app = dashboard(plain_store)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            overview = await started(pilot)
            assert not overview.query_one("#llm-spend", Static).display
            screen = await view(pilot, "7")
            assert text(screen.query_one("#llm-totals", Static)).startswith("no LLM calls in this window")
            assert "nothing priced" in text(screen.query_one("#llm-burn", Static))

    try:
        run(scenario)
    finally:
        plain_store.close()
