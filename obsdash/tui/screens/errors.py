"""Errors: exceptions grouped by fingerprint (type + place in the app's own code), newest first.

The highlighted group's message and stack trace show below; Enter opens its latest trace.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from obsdash.store.queries.errors import ErrorGroup, error_groups
from obsdash.store.queries.window import Window
from obsdash.tui import format as fmt
from obsdash.tui.live import LiveScreen
from obsdash.tui.widgets.navbar import NavBar
from obsdash.tui.widgets.table import LiveTable

if TYPE_CHECKING:
    from obsdash.hub.client import Store


class ErrorsScreen(LiveScreen):
    """Error groups with counts, first/last seen, routes; the stack trace of the highlighted one."""

    AUTO_FOCUS = "#errors"

    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[str, ErrorGroup] = {}
        self.now: datetime | None = None
        self.pending_fingerprint: str | None = None

    def compose(self) -> ComposeResult:
        """The groups, then the highlighted group's detail."""
        yield NavBar(id="nav")
        yield LiveTable(["error", "count", "first", "last", "where", "routes", "message"], id="errors")
        with VerticalScroll(id="error-detail"):
            yield Static(id="error-detail-text")
        yield Footer()

    def load(self, store: Store, window: Window, now: datetime) -> tuple[list[ErrorGroup], datetime]:
        """Groups in the window."""
        return error_groups(store, window.start(now)), now

    def show(self, data: tuple[list[ErrorGroup], datetime]) -> None:
        """Fill the table; keep the highlighted group."""
        groups, self.now = data
        self.groups = {g.fingerprint: g for g in groups}
        table = self.query_one("#errors", LiveTable)
        table.replace_rows(
            (
                g.fingerprint,
                (
                    Text(g.exception_type.rsplit(".", 1)[-1], style="bold red"),
                    f"×{g.count}",
                    fmt.ago(g.first_seen, self.now),
                    fmt.ago(g.last_seen, self.now),
                    g.location or "-",
                    ", ".join(g.routes) or "-",
                    fmt.one_line(g.message, 80),
                ),
            )
            for g in groups
        )
        if self.pending_fingerprint in self.groups:
            table.move_cursor(row=table.get_row_index(self.pending_fingerprint))
            self.pending_fingerprint = None
        self._show_detail(table.selected_key())

    def select(self, fingerprint: str) -> None:
        """Highlight a group (used by the Overview's recent errors)."""
        self.pending_fingerprint = fingerprint
        if self.is_mounted:  # else this is the view's first visit, whose first load selects it
            self.request_refresh()

    def on_data_table_row_highlighted(self, event: LiveTable.RowHighlighted) -> None:
        """Show the highlighted group's detail."""
        self._show_detail(str(event.row_key.value))

    def on_data_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        """Enter: open the latest trace of the group."""
        group = self.groups.get(str(event.row_key.value))
        if group is None or not group.example_trace_id:
            self.notify("this error was not recorded inside a trace")
            return
        self.dashboard.open_trace(group.example_trace_id)

    def _show_detail(self, fingerprint: str | None) -> None:
        group = self.groups.get(fingerprint or "")
        detail = self.query_one("#error-detail-text", Static)
        if group is None:
            detail.update(Text("no errors in this window", style="green") if not self.groups else "")
            return
        now = self.now or group.last_seen
        detail.update(
            Text.assemble(
                (f"{group.exception_type}: ", "bold red"),
                (group.message, "red"),
                f"\n×{group.count}  first {_when(group.first_seen, now)}  last {_when(group.last_seen, now)}",
                f"\nat {group.location or '?'}  routes {', '.join(group.routes) or '-'}"
                f"  services {', '.join(group.services)}",
                f"\nfingerprint {group.fingerprint}  latest trace {group.example_trace_id or '-'}",
                "  (Enter opens it)\n\n",
                (group.stacktrace, ""),
            )
        )


def _when(time: datetime, now: datetime) -> str:
    return f"{fmt.local_time(time, True)} ({fmt.ago(time, now)} ago)"
