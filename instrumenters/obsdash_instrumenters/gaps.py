"""Small fills for gaps in the contrib instrumentors, applied right after the instrumentor they extend.

sqlite3: the dbapi instrumentation traces cursors, but `connection.execute(...)` — the shortcut most small apps
use — makes its cursor inside C and goes untraced. We give the traced connection proxy the same shortcuts,
built on its traced cursor, exactly as sqlite3 defines them (a new cursor, then execute on it).
"""

from __future__ import annotations

from typing import Any


def add_sqlite_shortcuts() -> None:
    """Trace `Connection.execute/executemany/executescript` of instrumented sqlite3 connections."""
    import sqlite3

    from opentelemetry.instrumentation import dbapi

    proxy_class: Any = dbapi.TracedConnectionProxy
    if getattr(proxy_class, "_obsdash_sqlite_shortcuts", False):
        return

    def shortcut(name: str) -> Any:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            wrapped = self.__wrapped__
            if not isinstance(wrapped, sqlite3.Connection):
                return getattr(wrapped, name)(*args, **kwargs)
            cursor = self.cursor()
            getattr(cursor, name)(*args, **kwargs)
            return cursor

        method.__name__ = name
        return method

    for name in ("execute", "executemany", "executescript"):
        setattr(proxy_class, name, shortcut(name))
    proxy_class._obsdash_sqlite_shortcuts = True
