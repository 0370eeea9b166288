"""Traces: every request in the window (root spans), filtered with `/`, sorted with `s`, 500 rows a page."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static

from obsdash.store.queries.traces import PAGE_ROWS, SORTS, TraceSummary, list_traces
from obsdash.store.queries.window import Window
from obsdash.tui import format as fmt
from obsdash.tui.filtered import FilteredScreen
from obsdash.tui.widgets.filter import FilterInput
from obsdash.tui.widgets.navbar import NavBar
from obsdash.tui.widgets.table import LiveTable

if TYPE_CHECKING:
    from obsdash.hub.client import Store


class TracesScreen(FilteredScreen):
    """The request list; Enter opens the waterfall."""

    AUTO_FOCUS = "#traces"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sort", "Sort"),
        Binding("e", "errors_only", "Errors only"),
        Binding("right_square_bracket", "page(1)", "Older", key_display="]"),
        Binding("left_square_bracket", "page(-1)", "Newer", key_display="[", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort = "time"
        self.errors_only = False
        self.page = 0

    def compose(self) -> ComposeResult:
        """Filter line, status line, the list."""
        yield NavBar(id="nav")
        yield FilterInput(
            "filter: route, name, service, status or trace id — Enter applies",
            id="filter",
            value=self.filter_text,
        )
        yield Static(id="traces-status")
        yield LiveTable(["time", "service", "request", "status", "duration", "spans"], id="traces")
        yield Footer()

    def load(self, store: Store, window: Window, now: datetime) -> list[TraceSummary]:
        """One page of root spans."""
        return list_traces(
            store,
            window.start(now),
            text=self.filter_text,
            sort=self.sort,
            errors_only=self.errors_only,
            offset=self.page * PAGE_ROWS,
        )

    def show(self, data: list[TraceSummary]) -> None:
        """Fill the list and say what it shows."""
        # Keyed by root span, not trace: a trace crossing two wrapped services has two roots (two rows), and a
        # duplicate row key would abort the refresh half way.
        self.query_one("#traces", LiveTable).replace_rows(
            (
                f"{t.trace_id}/{t.span_id}",
                (
                    fmt.local_time(t.start_time),
                    t.service,
                    t.name,
                    fmt.status(t.status_code, t.http_status),
                    fmt.duration(t.duration_ms),
                    str(t.span_count),
                ),
            )
            for t in data
        )
        first = self.page * PAGE_ROWS
        parts = [f"{first + 1 if data else first}–{first + len(data)} by {self.sort}"]
        if self.filter_text:
            parts.append(f"matching “{self.filter_text}”")
        if self.errors_only:
            parts.append("errors only")
        if len(data) == PAGE_ROWS:
            parts.append("] for older")
        # Text, not markup: it quotes the filter (`[/]` typed there crashed the dashboard, R7 fuzzing)
        self.query_one("#traces-status", Static).update(Text("  ·  ".join(parts)))

    def set_filter(self, text: str) -> None:
        """Show the requests matching `text` (used by the Overview's routes)."""
        self.filter_text = text
        self.page = 0
        if self.is_mounted:
            self.query_one("#filter", FilterInput).value = text
            self.request_refresh()
        # else this is the view's first visit: compose() shows the text and the first load applies it

    def filter_applied(self) -> None:
        """A new filter starts from the first page."""
        self.page = 0
        self.request_refresh()

    def on_data_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        """Enter: open the trace, on the row's root span."""
        trace_id, _, span_id = str(event.row_key.value).partition("/")
        self.dashboard.open_trace(trace_id, span_id or None)

    def action_sort(self) -> None:
        """Cycle the order: newest, slowest, errors first."""
        names = list(SORTS)
        self.sort = names[(names.index(self.sort) + 1) % len(names)]
        self.page = 0
        self.request_refresh()

    def action_errors_only(self) -> None:
        """Show only failed requests, or all again."""
        self.errors_only = not self.errors_only
        self.page = 0
        self.request_refresh()

    def action_page(self, step: int) -> None:
        """Older or newer page of 500."""
        self.page = max(self.page + step, 0)
        self.request_refresh()
