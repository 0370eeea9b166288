"""Logs: a live tail of the newest 500 lines in the window, filtered by level (`l`), service (`s`) and text (`/`).

Newest first, so new lines appear at the top while the highlighted line stays put; Enter opens a line's trace.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from obsdash.store.queries.logs import LEVELS, LogLine, log_services, recent_logs
from obsdash.store.queries.window import Window
from obsdash.tui import format as fmt
from obsdash.tui.filtered import FilteredScreen
from obsdash.tui.widgets.filter import FilterInput
from obsdash.tui.widgets.navbar import NavBar
from obsdash.tui.widgets.table import LiveTable

if TYPE_CHECKING:
    from obsdash.hub.client import Store


class LogsScreen(FilteredScreen):
    """The log tail and the highlighted line in full."""

    AUTO_FOCUS = "#logs"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "level", "Level"),
        Binding("s", "service", "Service"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.level = "all"
        self.service: str | None = None
        self.services: list[str] = []
        self.lines: dict[str, LogLine] = {}

    def compose(self) -> ComposeResult:
        """Filter line, status, the tail, the highlighted line."""
        yield NavBar(id="nav")
        yield FilterInput("filter: text in the message, logger, exception or trace id", id="filter")
        yield Static(id="logs-status")
        yield LiveTable(["time", "level", "service", "message", "trace"], id="logs")
        with VerticalScroll(id="log-detail"):
            yield Static(id="log-detail-text")
        yield Footer()

    def load(self, store: Store, window: Window, now: datetime) -> tuple[list[LogLine], list[str]]:
        """The newest lines passing the filters, and the services that logged."""
        since = window.start(now)
        lines = recent_logs(
            store, since, min_severity=LEVELS[self.level], service=self.service, text=self.filter_text
        )
        return lines, log_services(store, since)

    def show(self, data: tuple[list[LogLine], list[str]]) -> None:
        """Fill the tail."""
        lines, self.services = data
        self.lines = _keyed(lines)
        self.query_one("#logs", LiveTable).replace_rows(
            (
                key,
                (
                    fmt.local_time(line.time),
                    fmt.level(line.severity_text),
                    line.service,
                    _message(line),
                    fmt.short_id(line.trace_id),
                ),
            )
            for key, line in self.lines.items()
        )
        status = f"{len(lines)} newest lines · level ≥ {self.level} · service {self.service or 'all'}"
        if self.filter_text:
            status += f" · matching “{self.filter_text}”"
        # Text, not markup: it quotes the filter and a service name (`[/]` crashed the dashboard, R7 fuzzing)
        self.query_one("#logs-status", Static).update(Text(status))
        self._show_detail(self.query_one("#logs", LiveTable).selected_key())

    def on_data_table_row_highlighted(self, event: LiveTable.RowHighlighted) -> None:
        """Show the highlighted line in full."""
        self._show_detail(str(event.row_key.value))

    def on_data_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        """Enter: open the line's trace, on its span."""
        line = self.lines.get(str(event.row_key.value))
        if line is None or not line.trace_id:
            self.notify("this line was logged outside any trace")
            return
        self.dashboard.open_trace(line.trace_id, line.span_id)

    def action_level(self) -> None:
        """Cycle the minimum level: all, debug, info, warn, error."""
        names = list(LEVELS)
        self.level = names[(names.index(self.level) + 1) % len(names)]
        self.request_refresh()

    def action_service(self) -> None:
        """Cycle through the services that logged (then all again)."""
        choices: list[str | None] = [None, *self.services]
        index = choices.index(self.service) if self.service in choices else 0
        self.service = choices[(index + 1) % len(choices)]
        self.request_refresh()

    def _show_detail(self, key: str | None) -> None:
        line = self.lines.get(key or "")
        detail = self.query_one("#log-detail-text", Static)
        if line is None:
            detail.update("")
            return
        text = Text.assemble(
            f"{fmt.local_time(line.time, True)} ",
            fmt.level(line.severity_text),
            f" {line.service} {line.logger}",
            f"  trace {line.trace_id} (Enter opens it)" if line.trace_id else "  (no trace)",
            "\n",
            (line.body, "bold"),
        )
        if line.stacktrace:
            text.append(f"\n{line.stacktrace}", style="red")
        detail.update(text)


def _keyed(lines: list[LogLine]) -> dict[str, LogLine]:
    # Lines have no id: time + span + text keeps the cursor on its line across refreshes; a counter separates
    # the rare exact repeats.
    keyed: dict[str, LogLine] = {}
    for line in lines:
        base = f"{line.time.isoformat()}|{line.span_id}|{hash(line.body)}"
        key, n = base, 1
        while key in keyed:
            key, n = f"{base}|{n}", n + 1
        keyed[key] = line
    return keyed


def _message(line: LogLine) -> Text:
    text = Text(fmt.one_line(line.body, 120))
    if line.exception_type:
        text.append(f"  {line.exception_type.rsplit('.', 1)[-1]}", style="bold red")
    return text
