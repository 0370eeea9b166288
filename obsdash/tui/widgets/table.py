"""A DataTable with vim keys that keeps the cursor on the same row across refreshes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from obsdash.output import printable


class LiveTable(DataTable[Any]):
    """Rows are replaced on every refresh; the highlighted row follows its key, not its position."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
        Binding("ctrl+d", "page_down", "Page down", show=False),
        Binding("ctrl+u", "page_up", "Page up", show=False),
    ]

    def __init__(self, columns: Sequence[str], **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._column_labels = list(columns)

    def on_mount(self) -> None:
        """Columns are fixed; rows come with each refresh."""
        self.add_columns(*self._column_labels)

    def add_row(self, *cells: Any, **kwargs: Any) -> Any:
        """Stored text is shown as text, cut, its control characters escaped (R7 fuzzing): DataTable reads a str
        cell as Rich markup (a span named `[/]` crashed the dashboard, `[@click=app.quit]` in a log line would
        be a live action), and a 1 MB span name made a column 350,000 cells wide (the view never finished)."""
        return super().add_row(*(_text(c) if isinstance(c, str) else _cut(c) for c in cells), **kwargs)

    def replace_rows(self, rows: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """Show `rows` (key, cells), keeping the cursor on the row it was on when that row is still there."""
        selected = self.selected_key()
        # Clearing and refilling moves the cursor; those moves are not the user's, so they post no RowHighlighted
        # (the Metrics view reloads on a highlight: each refresh used to trigger the next, forever).
        with self.prevent(DataTable.RowHighlighted):
            self.clear()
            for key, cells in rows:
                # a key seen twice (the same span stored twice: a segment duplicated on disk) raised half way
                # through, and the view stopped refreshing without a word (R7 fuzzing): the first row stays
                if key not in self.rows:
                    self.add_row(*cells, key=key)
            if selected is not None:
                try:
                    self.move_cursor(row=self.get_row_index(selected), scroll=False)
                except Exception:  # the row left the window
                    pass

    def selected_key(self) -> str | None:
        """The key of the highlighted row, if any."""
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return str(key.value) if key.value is not None else None

    def action_scroll_top(self) -> None:
        """First row."""
        self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        """Last row."""
        self.move_cursor(row=max(self.row_count - 1, 0))


MAX_CELL = 500
"""Characters shown of one cell: the detail panes show whole values."""


def _text(value: str) -> Text:
    return Text(printable(value[:MAX_CELL]) + ("…" if len(value) > MAX_CELL else ""))


def _cut(cell: Any) -> Any:
    return cell[:MAX_CELL] + "…" if isinstance(cell, Text) and len(cell) > MAX_CELL else cell
