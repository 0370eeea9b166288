"""`?`: every key that works on the screen underneath, from the bindings' own descriptions."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

INTRO = (
    "Tab / Shift+Tab or 1–7: switch view · Enter: open · j/k ↑/↓: move · g/G: top/bottom · "
    "Ctrl+P: command palette · Esc: back"
)


class HelpScreen(ModalScreen[None]):
    """A list of the keys of the screen it was opened on; any of Esc, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "app.pop_screen", "Close"),
    ]

    def __init__(self, under: Screen[Any]) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        """The key table."""
        table = Table(title="obsdash keys", caption=INTRO, expand=True, show_edge=False)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("does")
        seen: set[str] = set()
        # The view's and the app's own keys first, then the generic ones of the focused widget.
        ordered = sorted(
            self.under.active_bindings.items(), key=lambda item: not isinstance(item[1].node, (Screen, App))
        )
        for key, active in ordered:
            binding = active.binding
            if binding.description and binding.action not in seen:
                seen.add(binding.action)
                table.add_row(binding.key_display or key, binding.tooltip or binding.description)
        with VerticalScroll(id="help"):
            yield Static(table)
