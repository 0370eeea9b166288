"""A live screen with a `/` text filter (Traces, Logs): the key, the text, and a reload when it is applied."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from obsdash.tui.live import LiveScreen
from obsdash.tui.widgets.filter import FilterInput


class FilteredScreen(LiveScreen):
    """Compose a `FilterInput(id="filter")`; `filter_text` holds what the next load filters by."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("slash", "filter", "Filter", key_display="/")]

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""

    def filter_applied(self) -> None:
        """The filter text changed: reload (a screen with pages also goes back to the first)."""
        self.request_refresh()

    def on_filter_input_applied(self, event: FilterInput.Applied) -> None:
        """Enter (or Escape) in the filter line."""
        self.filter_text = event.text
        self.filter_applied()

    def action_filter(self) -> None:
        """Open the filter line."""
        self.query_one("#filter", FilterInput).open()
