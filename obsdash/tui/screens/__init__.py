"""The dashboard's views, in Tab order. A new view (the LLM screen, say) is one module and one line here."""

from __future__ import annotations

from dataclasses import dataclass

from obsdash.tui.live import LiveScreen
from obsdash.tui.screens.errors import ErrorsScreen
from obsdash.tui.screens.llm import LlmScreen
from obsdash.tui.screens.logs import LogsScreen
from obsdash.tui.screens.metrics import MetricsScreen
from obsdash.tui.screens.overview import OverviewScreen
from obsdash.tui.screens.sql import SqlScreen
from obsdash.tui.screens.traces import TracesScreen


@dataclass(frozen=True)
class View:
    """One top-level view: its mode name, the key that opens it, its title and screen class."""

    name: str
    key: str
    title: str
    screen: type[LiveScreen]
    help: str


VIEWS: list[View] = [
    View("overview", "1", "Overview", OverviewScreen, "routes, rates, errors and latency at a glance"),
    View("traces", "2", "Traces", TracesScreen, "every request; Enter opens its waterfall"),
    View("errors", "3", "Errors", ErrorsScreen, "exceptions grouped by type and place in your code"),
    View("logs", "4", "Logs", LogsScreen, "live log tail, linked to traces"),
    View("metrics", "5", "Metrics", MetricsScreen, "any captured metric as a chart"),
    View("sql", "6", "SQL", SqlScreen, "read-only SQL over the store"),
    View("llm", "7", "LLM", LlmScreen, "LLM calls: tokens, spend, projection and budget"),
]
