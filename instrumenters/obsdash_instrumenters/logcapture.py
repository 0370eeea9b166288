"""Capture the app's `logging` records as spool lines, tied to the current trace.

A plain logging.Handler on the root logger, installed when the app first imports `logging`. It does not go
through the OpenTelemetry logs SDK: building the SDK while `logging` is being imported by another module
(`concurrent.futures`, `asyncio`...) hits circular imports, and a script that only logs should not pay the SDK's
60–90 ms. Records carry the same fields and exception attributes as the OpenTelemetry logging handler's.

Transparency: with no handler configured Python prints WARNING and above to stderr (logging.lastResort), which
our handler would silence, so we call the last resort ourselves when ours is the only handler on the record's
path; and `basicConfig()` does nothing when the root logger has a handler, so we step aside while it runs.
"""

from __future__ import annotations

import functools
import logging
import sys

from obsdash_instrumenters.safety import internal_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from obsdash_instrumenters.context import RecordContext
    from obsdash_instrumenters.spool import SpoolWriter

# The attributes every LogRecord has; anything else was passed by the app in `extra=` and is kept.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}


def severity_number(levelno: int) -> int:
    """The OpenTelemetry severity number of a Python log level (DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21)."""
    for limit, number in ((10, 1), (20, 5), (30, 9), (40, 13), (50, 17)):
        if levelno < limit:
            return number + min(3, max(0, levelno - (limit - 10)) // 3)
    return 21


def record_attributes(record: logging.LogRecord) -> dict[str, Any]:
    """`extra=` fields, code location, thread, and the exception attributes when the record has exc_info."""
    attributes: dict[str, Any] = {k: v for k, v in vars(record).items() if k not in _RESERVED}
    attributes["code.file.path"] = record.pathname
    attributes["code.function.name"] = record.funcName
    attributes["code.line.number"] = record.lineno
    attributes["thread.name"] = record.threadName
    if record.exc_info and record.exc_info[0] is not None:
        from obsdash_instrumenters.unhandled import exception_attributes

        attributes.update(exception_attributes(*record.exc_info))
    return attributes


class CaptureHandler(logging.Handler):
    """Queues every record that reaches the root logger; never raises, never prints."""

    def __init__(self, writer: SpoolWriter, ctx: RecordContext) -> None:
        super().__init__(logging.NOTSET)
        self._writer = writer
        self._ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # Imported on first use, not at `import logging`: the encoder brings orjson (~14 ms).
            from obsdash_instrumenters.encode import encode_plain_log  # cached after the first record

            try:
                body = record.getMessage()
            except Exception:
                body = str(record.msg)
            text = _SEVERITY_TEXT.get(record.levelname, record.levelname)
            line = encode_plain_log(
                text,
                severity_number(record.levelno),
                body,
                record_attributes(record),
                self._ctx,
                time_ns=int(record.created * 1e9),
                scope=record.name,
            )
            if line is not None:  # None: the scrubber failed on it, dropped and counted
                self._writer.put("logs", line)
        except BaseException as exc:
            internal_error("log.capture", exc)
        last_resort = logging.lastResort
        if last_resort is not None and record.levelno >= last_resort.level and _only_us(self, record):
            last_resort.handle(record)


def _only_us(ours: logging.Handler, record: logging.LogRecord) -> bool:
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(handler is not ours for handler in logger.handlers):
            return False
        logger = logger.parent if logger.propagate else None
    return True


def _stepping_aside(handler: logging.Handler, configure: Any) -> Any:
    """Wrap a logging configuration function so it runs as if our handler were not there."""

    @functools.wraps(configure)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        root = logging.getLogger()
        ours = handler in root.handlers
        if ours:
            root.removeHandler(handler)
        try:
            return configure(*args, **kwargs)
        finally:
            if ours and handler not in root.handlers:
                root.addHandler(handler)

    return wrapper


def install(writer: SpoolWriter, ctx: RecordContext) -> CaptureHandler:
    """Attach the handler to the root logger and keep it out of basicConfig's way."""
    handler = CaptureHandler(writer, ctx)
    logging.getLogger().addHandler(handler)
    logging.basicConfig = _stepping_aside(handler, logging.basicConfig)  # type: ignore[assignment]
    return handler


def wrap_logging_config(handler: logging.Handler) -> None:
    """dictConfig/fileConfig replace the root's handlers: keep ours through them (called on `logging.config` import)."""
    config = sys.modules.get("logging.config")
    if config is not None:
        for name in ("dictConfig", "fileConfig"):
            setattr(config, name, _stepping_aside(handler, getattr(config, name)))
