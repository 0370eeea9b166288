"""Fixtures and helpers for the dashboard tests: a deterministic store (tests/tui/store.py) behind the real hub,
the app over it with a pinned clock, local time pinned to UTC, and waits on the screens' own load counters
instead of sleeps.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable

from obsdash.hub.client import Store
from obsdash.tui.app import DashboardApp, make_app
from obsdash.tui.live import LiveScreen
from tests.tui.store import NOW, build_store

POLL_S = 0.1
"""The app's watermark poll in these tests (250 ms in use): keeps the live-update tests short."""
TIMEOUT_S = 10.0


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Local time is UTC, so the times on screen do not depend on the machine's zone."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "UTC")
        time.tzset()
        yield
    time.tzset()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The fixture store, ingested by a hub this process hosts."""
    opened = build_store(tmp_path / "data")
    yield opened
    opened.close()


def dashboard(store: Store, window: str = "1h", **kwargs: Any) -> DashboardApp:
    """The app over `store`, its clock stopped at NOW unless a clock is given."""
    kwargs.setdefault("clock", lambda: NOW)
    kwargs.setdefault("poll_interval_s", POLL_S)
    return make_app(store, window, **kwargs)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run an async pilot scenario from a plain test (no async test plugin needed)."""
    asyncio.run(scenario())


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {condition}")
        await pilot.pause(0.05)


async def wait_loaded(pilot: Pilot[Any], screen: Screen[Any], min_loads: int = 1) -> LiveScreen:
    """Wait until `screen` has finished `min_loads` loads and has none running or pending."""
    assert isinstance(screen, LiveScreen), screen
    # `_loading` stays true while a coalesced reload is pending, so a stale result is never taken for the last.
    await wait_until(pilot, lambda: screen.loads >= min_loads and not screen._loading)
    await pilot.pause()  # let the table repaint
    return screen


async def press_and_reload(pilot: Pilot[Any], *keys: str) -> LiveScreen:
    """Press `keys` on the current screen and wait for the reload they cause."""
    screen = pilot.app.screen
    assert isinstance(screen, LiveScreen), screen
    before = screen.loads
    await pilot.press(*keys)
    return await wait_loaded(pilot, screen, before + 1)


async def view(pilot: Pilot[Any], key: str, min_loads: int = 1) -> LiveScreen:
    """Press a view's key and wait until that view is on screen and loaded."""
    old = pilot.app.screen
    await pilot.press(key)
    await wait_until(pilot, lambda: pilot.app.screen is not old)
    await pilot.pause()  # the new screen's resume handler starts its load
    return await wait_loaded(pilot, pilot.app.screen, min_loads)


def keys(table: DataTable[Any]) -> list[str]:
    """The row keys of a table, top to bottom."""
    return [str(row.key.value) for row in table.ordered_rows]


def rows(table: DataTable[Any]) -> list[list[str]]:
    """The cells of a table as plain text, top to bottom."""
    return [[str(cell) for cell in table.get_row(row.key)] for row in table.ordered_rows]


def column(table: DataTable[Any], index: int) -> list[str]:
    """One column of a table as plain text."""
    return [row[index] for row in rows(table)]


def plain(renderable: Any, width: int = 200) -> str:
    """What a Rich renderable (a Text, a Table) reads as, without styles."""
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()
