"""Report: `obsdash report`'s production-readiness findings for the window, worst first, live.

The highlighted finding's detail and example traces show below; Enter opens its first example trace. The budget is
the dashboard's `--budget-per-day`; thresholds are the report's defaults.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from obsdash.report.findings import Finding, Thresholds, build
from obsdash.store.queries.findings import Scope
from obsdash.store.queries.window import Window
from obsdash.tui import format as fmt
from obsdash.tui.live import LiveScreen
from obsdash.tui.widgets.navbar import NavBar
from obsdash.tui.widgets.table import LiveTable

if TYPE_CHECKING:
    from obsdash.hub.client import Store

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
WHERE_WIDTH = 24
"""Routes and `route → model` are cut so the finding itself stays readable at 80 columns (the detail has all)."""


class ReportScreen(LiveScreen):
    """Findings with severity, where, what and how often; the highlighted one's detail and traces."""

    AUTO_FOCUS = "#findings"

    def __init__(self) -> None:
        super().__init__()
        self.findings: dict[str, Finding] = {}

    def compose(self) -> ComposeResult:
        """The findings, then the highlighted finding's detail."""
        yield NavBar(id="nav")
        yield LiveTable(["severity", "count", "where", "finding"], id="findings")
        with VerticalScroll(id="finding-detail"):
            yield Static(id="finding-detail-text")
        yield Footer()

    def load(self, store: Store, window: Window, now: datetime) -> list[Finding]:
        """Every finding in the window."""
        return build(
            store, Scope(window.start(now)), Thresholds(budget_per_day=self.dashboard.budget_per_day), now
        )

    def show(self, data: list[Finding]) -> None:
        """Fill the table; keep the highlighted finding."""
        self.findings = {f"{f.kind}|{f.where}|{f.title}": f for f in data}
        table = self.query_one("#findings", LiveTable)
        table.replace_rows(
            (
                key,
                (
                    Text(f.severity, style=SEVERITY_STYLE[f.severity]),
                    f"×{f.count}",
                    fmt.one_line(f.where, WHERE_WIDTH),
                    f.title,
                ),
            )
            for key, f in self.findings.items()
        )
        self._show_detail(table.selected_key())

    def on_data_table_row_highlighted(self, event: LiveTable.RowHighlighted) -> None:
        """Show the highlighted finding's detail."""
        self._show_detail(str(event.row_key.value))

    def on_data_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        """Enter: open the finding's first example trace."""
        finding = self.findings.get(str(event.row_key.value))
        if finding is None or not finding.examples:
            self.notify("this finding has no example trace")
            return
        self.dashboard.open_trace(finding.examples[0])

    def _show_detail(self, key: str | None) -> None:
        finding = self.findings.get(key or "")
        detail = self.query_one("#finding-detail-text", Static)
        if finding is None:
            detail.update(
                Text("nothing to report in this window", style="green") if not self.findings else ""
            )
            return
        traces = "  ".join(finding.examples) or "-"
        detail.update(
            Text.assemble(
                (f"{finding.severity.upper()} ", SEVERITY_STYLE[finding.severity]),
                (f"{finding.where}: {finding.title}", "bold"),
                f"\n{finding.detail}" if finding.detail else "",
                f"\nexample traces: {traces}" + ("  (Enter opens the first)" if finding.examples else ""),
                (f"\n{finding.kind}", "dim"),
            )
        )
