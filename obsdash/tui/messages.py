"""Messages between the store poller, the workers and the screens (past tense: they say what happened)."""

from __future__ import annotations

from textual.message import Message


class StoreChanged(Message):
    """The hub ingested something new since the last poll."""

    def can_replace(self, message: Message) -> bool:
        """A burst of changes collapses into one refresh."""
        return isinstance(message, StoreChanged)


class WindowChanged(Message):
    """The user picked another time window."""
