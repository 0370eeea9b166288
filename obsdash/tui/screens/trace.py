"""One trace as a waterfall: nested spans on a time axis, errors marked, events and logs on their spans.

Pushed on top of whichever view opened it (Traces, Errors, Logs, Overview); Escape goes back.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from obsdash.store.queries.traces import Trace, get_trace
from obsdash.store.queries.window import Window
from obsdash.tui import format as fmt
from obsdash.tui.live import LiveScreen
from obsdash.tui.waterfall import (
    BAR_WIDTH,
    WaterfallRow,
    bar,
    layout,
    next_error,
    span_detail_hint,
    total_ms,
)
from obsdash.tui.widgets.navbar import NavBar
from obsdash.tui.widgets.table import LiveTable

if TYPE_CHECKING:
    from obsdash.hub.client import Store

MAX_ATTRIBUTE_CHARS = 300


class TraceScreen(LiveScreen):
    """The waterfall of one trace and the details of the highlighted span."""

    AUTO_FOCUS = "#waterfall"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("n", "next_error(1)", "Next error"),
        Binding("N", "next_error(-1)", "Prev error", show=False),
    ]

    def __init__(self, trace_id: str, span_id: str | None = None) -> None:
        super().__init__()
        self.trace_id = trace_id
        self.focus_span_id = span_id
        self.trace: Trace | None = None
        self.rows: list[WaterfallRow] = []
        self.near: tuple[datetime, datetime] | None = None
        """The trace's time once a load found its root: every later refresh looks only near it (a lookup by id
        alone reads the whole spans table, 82-89 ms at 3M spans; near its time 5.7 ms)."""

    def compose(self) -> ComposeResult:
        """Title line, waterfall, span details."""
        yield NavBar(id="nav")
        yield Static(f"trace {self.trace_id} — loading", id="trace-title")
        yield LiveTable(["span", "service", "duration", "timeline", ""], id="waterfall")
        with VerticalScroll(id="span-detail"):
            yield Static(id="span-detail-text")
        yield Footer()

    def load(self, store: Store, window: Window, now: datetime) -> Trace | None:
        """The whole trace (the time window does not apply to an opened trace)."""
        trace = get_trace(store, self.trace_id, self.near)
        if trace is not None:
            self.near = trace.time_range()
        return trace

    def show(self, data: Trace | None) -> None:
        """Draw the waterfall; keep the highlighted span."""
        title = self.query_one("#trace-title", Static)
        if data is None:
            title.update(Text(f"trace {self.trace_id}: not in the store (yet)", style="yellow"))
            return
        self.trace = data
        self.rows = layout(data)
        total = total_ms(self.rows)
        errors = sum(r.is_error for r in self.rows)
        root = self.rows[0].span if self.rows else None
        title.update(
            Text.assemble(
                (_cut(root.name, 200) if root else "?", "bold"),
                f"  {fmt.duration(total)}  {len(self.rows)} spans  ",
                (f"{errors} errors" if errors else "no errors", "bold red" if errors else "green"),
                f"  trace {fmt.short_id(data.trace_id)}…"
                + ("  (first 2000 spans)" if data.truncated else ""),
            )
        )
        table = self.query_one("#waterfall", LiveTable)
        table.replace_rows((r.span.span_id, _cells(r, total)) for r in self.rows)
        if self.focus_span_id is not None:
            self._highlight(self.focus_span_id)
            self.focus_span_id = None
        self._show_detail(table.selected_key())

    def _highlight(self, span_id: str) -> None:
        table = self.query_one("#waterfall", LiveTable)
        for index, row in enumerate(self.rows):
            if row.span.span_id == span_id:
                table.move_cursor(row=index)
                return

    def on_data_table_row_highlighted(self, event: LiveTable.RowHighlighted) -> None:
        """Show the highlighted span's attributes, events and logs."""
        self._show_detail(str(event.row_key.value) if event.row_key.value is not None else None)

    def action_next_error(self, step: int) -> None:
        """Jump to the next (or previous) span that failed."""
        table = self.query_one("#waterfall", LiveTable)
        index = next_error(self.rows, table.cursor_row, step) if self.rows else None
        if index is None:
            self.notify("no errors in this trace")
        else:
            table.move_cursor(row=index)

    def _show_detail(self, span_id: str | None) -> None:
        detail = self.query_one("#span-detail-text", Static)
        row = next((r for r in self.rows if r.span.span_id == span_id), None)
        if row is None or self.trace is None:
            detail.update("")
            return
        detail.update(span_detail(row, self.trace))


def _cells(row: WaterfallRow, total: float) -> tuple[Any, ...]:
    span = row.span
    name = Text(row.prefix, style="dim")
    name.append(span.name, style="bold red" if row.is_error else "")
    hint = span_detail_hint(span)
    if hint and hint != span.name:
        name.append(f" {hint}", style="dim")
    start, length = bar(row, total)
    timeline = Text(" " * start, style="")
    timeline.append("█" * length, style="red" if row.is_error else _kind_colour(span.kind))
    timeline.append(" " * (BAR_WIDTH - start - length))
    marks = Text()
    if row.is_error:
        marks.append("✖", style="bold red")
    if row.events:
        marks.append("◆", style="magenta")
    if row.logs:
        marks.append("≡", style="cyan")
    return name, span.service, fmt.duration(span.duration_ms), timeline, marks


def _kind_colour(kind: str) -> str:
    return {"SERVER": "green", "CLIENT": "blue", "PRODUCER": "yellow", "CONSUMER": "yellow"}.get(kind, "cyan")


def span_detail(row: WaterfallRow, trace: Trace) -> Text:
    """Everything about one span: status, timing, attributes, events, logs, resource."""
    span = row.span
    text = Text.assemble(
        (_cut(span.name), "bold"),
        f"  {span.kind.lower()}  {_cut(span.service, 200)}  ",
        (span.status_code, "bold red" if row.is_error else "green"),
        f"  {fmt.duration(span.duration_ms)}  +{fmt.duration(row.offset_ms)}  at {fmt.local_time(span.start_time)}",
        f"\ntrace {span.trace_id}  span {span.span_id}  parent {span.parent_span_id or '-'}\n",
    )
    if span.status_message:
        text.append(f"{_cut(span.status_message)}\n", style="red")
    _section(text, "attributes", span.attributes)
    for event in (e for e in trace.events if e.span_id == span.span_id):
        text.append(f"\n◆ {fmt.local_time(event.time)} {event.name}", style="magenta")
        if event.exception_type:
            text.append(
                f"  {event.exception_type}: {_cut(event.exception_message or '')}\n", style="bold red"
            )
            text.append(_cut(event.stacktrace or ""), style="red")
        else:
            text.append(f"  {_compact(event.attributes)}\n")
    for line in (log for log in trace.logs if log.span_id == span.span_id):
        text.append(f"\n≡ {fmt.local_time(line.time)} ")
        text.append_text(fmt.level(line.severity_text))
        text.append(f" {line.logger}: {_cut(line.body)}")
        if line.stacktrace:
            text.append(f"\n{_cut(line.stacktrace)}", style="red")
    text.append("\n")
    _section(text, "resource", span.resource)
    return text


def _section(text: Text, title: str, values: dict[str, Any]) -> None:
    text.append(f"\n{title}\n", style="bold underline")
    for key in sorted(values):
        value = values[key]
        try:
            shown = value if isinstance(value, str) else json.dumps(value)
        except RecursionError:  # nested ~1,000 deep (R7 fuzzing)
            shown = "(nested too deeply to show)"
        if len(shown) > MAX_ATTRIBUTE_CHARS:
            shown = shown[:MAX_ATTRIBUTE_CHARS] + "…"
        text.append(f"  {key}", style="cyan")
        text.append(f" = {shown}\n")


MAX_DETAIL_CHARS = 20_000
"""Of one text in the detail pane: a 1 MB exception message took 6 s to lay out (R7 fuzzing)."""


def _cut(value: str, limit: int = MAX_DETAIL_CHARS) -> str:
    return value if len(value) <= limit else value[:limit] + f"… ({len(value):,} characters)"


def _compact(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(values.items()))[:MAX_ATTRIBUTE_CHARS]
