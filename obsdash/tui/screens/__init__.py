"""The dashboard's views, in Tab order. A new view (the LLM screen, say) is one module and one line here."""

from __future__ import annotations

from dataclasses import dataclass

from obsdash.tui.live import LiveScreen
from obsdash.tui.screens.errors import ErrorsScreen
from obsdash.tui.screens.llm import LlmScreen
from obsdash.tui.screens.logs import LogsScreen
from obsdash.tui.screens.metrics import MetricsScreen
from obsdash.tui.screens.overview import OverviewScreen
from obsdash.tui.screens.report import ReportScreen
from obsdash.tui.screens.runs import RunsScreen
from obsdash.tui.screens.sql import SqlScreen
from obsdash.tui.screens.traces import TracesScreen


@dataclass(frozen=True)
class View:
    """One top-level view: its mode name, the key that opens it, its title, a short title for narrow
    terminals, its screen class and a line of help."""

    name: str
    key: str
    title: str
    short: str
    screen: type[LiveScreen]
    help: str


VIEWS: list[View] = [
    View("overview", "1", "Overview", "Ovw", OverviewScreen, "routes, rates, errors and latency at a glance"),
    View("traces", "2", "Traces", "Trc", TracesScreen, "every request; Enter opens its waterfall"),
    View("errors", "3", "Errors", "Err", ErrorsScreen, "exceptions grouped by type and place in your code"),
    View("logs", "4", "Logs", "Log", LogsScreen, "live log tail, linked to traces"),
    View("metrics", "5", "Metrics", "Met", MetricsScreen, "any captured metric as a chart"),
    View("sql", "6", "SQL", "SQL", SqlScreen, "read-only SQL over the store"),
    View("llm", "7", "LLM", "LLM", LlmScreen, "LLM calls: tokens, spend, projection and budget"),
    View("report", "8", "Report", "Rpt", ReportScreen, "production-readiness findings, as `obsdash report`"),
    View("runs", "9", "Runs", "Run", RunsScreen, "runs, each compared with the one before (`obsdash diff`)"),
]
