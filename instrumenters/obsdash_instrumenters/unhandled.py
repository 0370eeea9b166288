"""Record exceptions nobody caught: the main thread (sys.excepthook) and other threads (threading.excepthook).

Unhandled exceptions in asyncio tasks reach the `asyncio` logger and arrive through log capture. The previous
hooks always run afterwards, so the app prints and exits exactly as it would have.
"""

from __future__ import annotations

import sys
import threading

from obsdash_instrumenters.safety import internal_error

TYPE_CHECKING = False  # `typing` costs ~10 ms at start-up; mypy still reads the block below
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Any

    from obsdash_instrumenters.context import RecordContext
    from obsdash_instrumenters.spool import SpoolWriter

SEVERITY_ERROR = 17
SEVERITY_FATAL = 21


def exception_attributes(exc_type: type[BaseException], exc: BaseException | None, tb: Any) -> dict[str, Any]:
    """The OpenTelemetry exception attributes of one exception."""
    import traceback

    return {
        "exception.type": exc_type.__qualname__,
        "exception.message": str(exc) if exc is not None else "",
        "exception.stacktrace": "".join(traceback.format_exception(exc_type, exc, tb)),
    }


def install(writer: SpoolWriter, ctx: RecordContext, on_main_crash: Callable[[int], None]) -> None:
    """Chain our recording in front of the current exception hooks."""
    previous_hook = sys.excepthook

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        try:
            on_main_crash(-2 if issubclass(exc_type, KeyboardInterrupt) else 1)
            if not issubclass(exc_type, KeyboardInterrupt):
                attributes = exception_attributes(exc_type, exc, tb)
                attributes["thread.name"] = "MainThread"
                body = f"Unhandled {exc_type.__qualname__} in the main thread: {exc}"
                from obsdash_instrumenters.encode import encode_plain_log

                line = encode_plain_log("FATAL", SEVERITY_FATAL, body, attributes, ctx)
                if line is not None:  # None: the scrubber failed on it, dropped and counted
                    writer.put("logs", line)
        except BaseException as error:
            internal_error("unhandled.main", error)
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook
    previous_thread_hook = threading.excepthook

    def thread_excepthook(args: Any) -> None:
        try:
            if args.exc_type is not SystemExit:
                attributes = exception_attributes(args.exc_type, args.exc_value, args.exc_traceback)
                name = args.thread.name if args.thread is not None else "?"
                attributes["thread.name"] = name
                body = f"Unhandled {args.exc_type.__qualname__} in thread {name}: {args.exc_value}"
                from obsdash_instrumenters.encode import encode_plain_log

                line = encode_plain_log("ERROR", SEVERITY_ERROR, body, attributes, ctx)
                if line is not None:  # None: the scrubber failed on it, dropped and counted
                    writer.put("logs", line)
        except BaseException as error:
            internal_error("unhandled.thread", error)
        previous_thread_hook(args)

    threading.excepthook = thread_excepthook
