"""The top line of every screen: which view you are on, the time window, and whether updates are live."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class NavBar(Static):
    """`obsdash  1 Overview  2 Traces ...   1h  ● live  12ms`, redrawn by the app when anything in it changes."""

    def show_state(
        self,
        views: list[tuple[str, str, str]],
        *,
        current: str,
        window: str,
        paused: bool,
        host: bool,
        load_ms: float | None,
    ) -> None:
        """Redraw with the views (key, title, short title), the current one, the window and the live state.

        Nine titles do not fit 80 columns beside the window and the live state: the other views then show their
        short titles, and on narrower terminals only their keys; the current view always shows its title."""
        state = Text("  ")
        state.append(f" {window} ", style="bold on dark_blue")
        state.append(" ⏸ paused" if paused else " ● live", style="yellow" if paused else "green")
        if load_ms is not None:
            state.append(f" {load_ms:.0f}ms", style="dim")
        state.append("" if host else " (joined)", style="dim")
        width = self.size.width or 10_000
        for form in (
            1,
            2,
            0,
        ):  # the index of what a view other than the current one shows: title, short, none
            line = Text()
            for key, *titles in views:
                if titles[0].lower() == current:
                    line.append(f" {key} {titles[0]} ", style="reverse bold")
                else:
                    # short titles go without the trailing space: nine views then fit 80 columns with the state
                    line.append({1: f" {key} {titles[0]} ", 2: f" {key} {titles[1]}", 0: f" {key} "}[form])
            if len(line) + len(state) <= width:
                break
        line += state
        # the name goes first when there is room for it
        brand = Text("obsdash ", style="bold")
        if len(brand) + len(line) <= width:
            line = brand + line
        self.update(line)
