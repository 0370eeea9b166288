"""The error users see: one line saying what is wrong and what to do, then a non-zero exit status."""

from __future__ import annotations


class ObsdashError(Exception):
    """An error with a message for the user and an optional hint; the CLI prints it on one line."""

    def __init__(self, message: str, hint: str | None = None, status: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status

    def one_line(self) -> str:
        """`obsdash: <message> (<hint>)`."""
        return f"obsdash: {self.message}" + (f" ({self.hint})" if self.hint else "")


class StoreError(ObsdashError):
    """The store cannot be opened or used."""


class QueryRefused(ObsdashError):
    """A query that `obsdash query` will not run (it writes, attaches, reads files...)."""
