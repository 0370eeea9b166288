"""The top line of every screen: which view you are on, the time window, and whether updates are live."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class NavBar(Static):
    """`obsdash  1 Overview  2 Traces ...   1h  ● live  12ms`, redrawn by the app when anything in it changes."""

    def show_state(
        self,
        views: list[tuple[str, str]],
        *,
        current: str,
        window: str,
        paused: bool,
        host: bool,
        load_ms: float | None,
    ) -> None:
        """Redraw with the views (key, title), the current one, the window and the live state."""
        line = Text()
        for key, title in views:
            style = "reverse bold" if title.lower() == current else ""
            line.append(f" {key} {title} ", style=style)
        line.append("  ")
        line.append(f" {window} ", style="bold on dark_blue")
        line.append(" ⏸ paused" if paused else " ● live", style="yellow" if paused else "green")
        if load_ms is not None:
            line.append(f" {load_ms:.0f}ms", style="dim")
        line.append("" if host else " (joined)", style="dim")
        # at 80 columns the views, the window and the live state fit only without the name
        brand = Text("obsdash ", style="bold")
        if not self.size.width or len(brand) + len(line) <= self.size.width:
            line = brand + line
        self.update(line)
