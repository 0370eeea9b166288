"""The `/` filter line shared by the list views: hidden until asked for, applied on Enter, cleared on Escape."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input


class FilterInput(Input):
    """An Input that reports the text to filter by."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "clear", "Clear filter")]

    class Applied(Message):
        """The user pressed Enter (or Escape, with an empty text)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, placeholder: str, **kwargs: object) -> None:
        super().__init__(placeholder=placeholder, **kwargs)  # type: ignore[arg-type]
        self.can_focus = False  # hidden until `/`: keys go to the table meanwhile

    def open(self) -> None:
        """Show the line and type into it."""
        self.add_class("-active")
        self.can_focus = True
        self.focus()

    def _close(self) -> None:
        self.remove_class("-active")
        self.can_focus = False
        self.screen.focus_next()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter applies the filter and hands the keys back to the table."""
        event.stop()
        self.post_message(self.Applied(self.value))
        self._close()

    def action_clear(self) -> None:
        """Escape clears the filter."""
        self.value = ""
        self.post_message(self.Applied(""))
        self._close()
