"""Small fills for gaps in the contrib instrumentors, applied right after the instrumentor they extend.

openai / anthropic: the GenAI conventions record no timeout, yet a call left on the SDK's 600 s default is what
hangs a request in production; we record the timeout each call actually ran with.

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


LLM_TIMEOUT = "obsdash.llm.timeout_s"
"""The read timeout an LLM call ran with, in seconds; -1 for none at all. The GenAI conventions have no such
attribute, and a call left on the SDK default waits up to 600 s: `obsdash report` flags those."""


def add_llm_timeouts(package: str) -> None:
    """Record each openai/anthropic call's effective timeout on the span current during the request (the
    instrumentor's call span, or the SDK's own span inside it)."""
    import importlib
    import inspect

    from opentelemetry import trace

    base: Any = importlib.import_module(f"{package}._base_client")
    not_given: Any = importlib.import_module(f"{package}._types").NotGiven

    def record(client: Any, options: Any) -> None:
        try:
            timeout = client.timeout if isinstance(options.timeout, not_given) else options.timeout
            seconds = getattr(timeout, "read", timeout)
            span = trace.get_current_span()
            if span.is_recording():
                span.set_attribute(LLM_TIMEOUT, -1.0 if seconds is None else float(seconds))
        except Exception:
            pass  # best effort: an SDK that changed shape leaves the attribute out

    for name in ("SyncAPIClient", "AsyncAPIClient"):
        client_class: Any = getattr(base, name)
        if getattr(client_class, "_obsdash_timeouts", False):
            continue
        request = client_class.request
        if inspect.iscoroutinefunction(request):

            async def async_request(
                self: Any, cast_to: Any, options: Any, *a: Any, _r: Any = request, **k: Any
            ) -> Any:
                record(self, options)
                return await _r(self, cast_to, options, *a, **k)

            client_class.request = async_request
        else:

            def sync_request(
                self: Any, cast_to: Any, options: Any, *a: Any, _r: Any = request, **k: Any
            ) -> Any:
                record(self, options)
                return _r(self, cast_to, options, *a, **k)

            client_class.request = sync_request
        client_class._obsdash_timeouts = True
