"""The dashboard's promise, end to end: the sample app running under wrap with traffic, `obsdash tail --follow`
and the dashboard open on the same store at once.

What a new user must see: routes and counts that move on the first screen; a /weather trace whose SQLite and
third-party spans are nested under the request with their stored durations; the crashing endpoint as one group in
Errors whose count grows; a log line opening its trace. Real parts throughout: Flask, requests, sqlite3, the
stand-in server, the hub, DuckDB and Textual's pilot.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from obsdash.datadir import DataDir
from obsdash.hub.client import Store, open_store
from obsdash.tui.app import DashboardApp, make_app
from obsdash.tui.live import LiveScreen
from obsdash.tui.screens.errors import ErrorsScreen
from obsdash.tui.screens.logs import LogsScreen
from obsdash.tui.screens.overview import OverviewScreen
from obsdash.tui.screens.trace import TraceScreen
from obsdash.tui.screens.traces import TracesScreen
from obsdash.tui.widgets.table import LiveTable
from sample_app.traffic import run_traffic
from tests.conftest import child_env, free_port, wait_for_port, wrapped
from tests.test_tail import following

TIMEOUT_S = 20.0


@pytest.fixture
def shop(tmp_path: Path, data_dir: Path) -> Iterator[str]:
    """The sample shop under `obsdash wrap`, with its weather stand-in; yields the shop's URL."""
    standin_port, shop_port = free_port(), free_port()
    standin = subprocess.Popen(
        [sys.executable, "-m", "sample_app.standin", "--port", str(standin_port), "--fail-rate", "0.3"],
        env=child_env(),
    )
    app_args = ["--port", str(shop_port), "--upstream", f"http://127.0.0.1:{standin_port}"]
    command = [sys.executable, "-m", "sample_app.app", *app_args, "--db", str(tmp_path / "shop.db")]
    shop_proc = subprocess.Popen(
        wrapped(data_dir, *command, service="shop"),
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(standin_port)
        wait_for_port(shop_port)
        yield f"http://127.0.0.1:{shop_port}"
    finally:
        for proc in (shop_proc, standin):
            proc.terminate()
            proc.wait(timeout=15)


async def _until(pilot: Pilot[None], condition: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.1)


def _column(table: LiveTable, index: int) -> list[str]:
    return [str(table.get_row_at(row)[index]) for row in range(table.row_count)]


def _wait_for_hub(data_dir: DataDir) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not data_dir.socket.exists():
        assert time.monotonic() < deadline, "tail did not start the hub"
        time.sleep(0.05)


def _traffic(url: str, seconds: float) -> threading.Thread:
    thread = threading.Thread(target=run_traffic, args=(url,), kwargs={"duration": seconds, "concurrency": 2})
    thread.start()
    return thread


async def _overview_moves(app: DashboardApp, pilot: Pilot[None]) -> None:
    screen = app.screen
    assert isinstance(screen, OverviewScreen)
    routes = screen.query_one("#routes", LiveTable)
    await _until(pilot, lambda: {"/items", "/weather", "/checkout"} <= set(_column(routes, 1)), "the routes")
    first = sum(int(n) for n in _column(routes, 3) if n.isdigit())
    await _until(
        pilot,
        lambda: sum(int(n) for n in _column(routes, 3) if n.isdigit()) > first,
        "request counts to grow",
    )


async def _weather_waterfall(app: DashboardApp, pilot: Pilot[None], store: Store) -> None:
    await pilot.press("2")
    traces = app.screen
    assert isinstance(traces, TracesScreen)
    traces.set_filter("/weather")
    table = traces.query_one("#traces", LiveTable)
    await _until(pilot, lambda: table.row_count and set(_column(table, 2)) == {"/weather"}, "/weather traces")
    table.move_cursor(row=0)
    trace_id = str(table.selected_key()).partition("/")[0]  # rows are keyed trace_id/root span_id
    await pilot.press("enter")
    waterfall = app.screen
    assert isinstance(waterfall, TraceScreen) and waterfall.trace_id == trace_id
    await _until(pilot, lambda: waterfall.rows, "the waterfall")
    root, *children = waterfall.rows
    assert root.depth == 0 and root.span.kind == "SERVER"
    kinds = {(row.depth, row.span.kind, "db.statement" in row.span.attributes) for row in children}
    assert (1, "CLIENT", True) in kinds, kinds  # the SQLite insert, under the request
    assert (1, "CLIENT", False) in kinds, kinds  # the call to the stand-in, under the request
    stored = store.query("SELECT span_id, duration_ms FROM spans WHERE trace_id = ?", [trace_id], sync=False)
    assert {row.span.span_id: row.span.duration_ms for row in waterfall.rows} == dict(stored.rows)
    assert all(child.span.duration_ms <= root.span.duration_ms for child in children)
    await pilot.press("escape")


async def _errors_grow(app: DashboardApp, pilot: Pilot[None]) -> None:
    await pilot.press("3")
    errors = app.screen
    assert isinstance(errors, ErrorsScreen)

    def value_error_counts() -> list[int]:
        return [g.count for g in errors.groups.values() if g.exception_type.endswith("ValueError")]

    await _until(pilot, lambda: len(value_error_counts()) == 1, "one ValueError group")
    first = value_error_counts()[0]
    await _until(pilot, lambda: value_error_counts() and value_error_counts()[0] > first, "its count to grow")
    assert len(value_error_counts()) == 1  # still one group, however many crashes


async def _log_opens_trace(app: DashboardApp, pilot: Pilot[None]) -> None:
    await pilot.press("4")
    logs = app.screen
    assert isinstance(logs, LogsScreen)
    await _until(
        pilot, lambda: any(line.trace_id for line in logs.lines.values()), "log lines with trace ids"
    )
    table = logs.query_one("#logs", LiveTable)
    keys = list(logs.lines)
    row = next(i for i, key in enumerate(keys) if logs.lines[key].trace_id)
    table.move_cursor(row=row)
    await pilot.press("enter")
    opened = app.screen
    assert isinstance(opened, TraceScreen) and opened.trace_id == logs.lines[keys[row]].trace_id


def test_dashboard_and_tail_side_by_side_while_the_app_writes(shop: str, data_dir: Path) -> None:
    with following(data_dir, "--errors") as tail:  # tail hosts the hub; the dashboard joins it
        _wait_for_hub(DataDir(data_dir))
        traffic = _traffic(shop, 12.0)
        store = open_store(DataDir(data_dir))
        assert not store.is_host

        async def scenario() -> None:
            app = make_app(store, "15m", poll_interval_s=0.1)
            async with app.run_test(size=(100, 30)) as pilot:
                await _overview_moves(app, pilot)
                await _weather_waterfall(app, pilot, store)
                await _errors_grow(app, pilot)
                await _log_opens_trace(app, pilot)
                assert isinstance(app.screen, LiveScreen)

        try:
            asyncio.run(scenario())
        finally:
            traffic.join()
            store.close()
        lines = tail.wait_for(lambda seen: any("ValueError" in line for line in seen))
        assert any("/checkout" in line for line in lines if "ValueError" in line)
        tail.interrupt()
