"""Start obsdash inside the app: called by the injected sitecustomize, before the app's code runs.

Start-up does only cheap things — read settings, create the spool writer, install the import hook and the
exception, exit, signal and fork handlers. The OpenTelemetry SDK is built on the first import of an instrumented
library (or of `logging`), keeping `obsdash wrap python -c pass` close to bare Python (P1).
"""

from __future__ import annotations

import os
import sys
import time

from obsdash_instrumenters import instrumentations, settings, unhandled
from obsdash_instrumenters.context import RecordContext
from obsdash_instrumenters.import_hook import PostImportFinder
from obsdash_instrumenters.lifecycle import Lifecycle
from obsdash_instrumenters.safety import internal_error
from obsdash_instrumenters.spool import SpoolWriter

TYPE_CHECKING = False  # `typing` costs ~10 ms at start-up; mypy still reads the block below
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

_started = False


class _LazyProviders:
    """Builds the SDK providers the first time they are needed, once per process."""

    def __init__(self, writer: SpoolWriter, ctx: RecordContext) -> None:
        self._writer = writer
        self._ctx = ctx
        self.providers: Any = None
        self._failed = False
        self._building = False
        self.pending = False
        self.on_built: Any = None  # lifecycle: the SDK's fork hooks now exist

    def ensure(self, trigger: str | None = None) -> None:
        # Re-entered while building: the SDK's own imports (logging, ...) trigger import hooks.
        if self.providers is not None or self._failed or self._building:
            return
        if _import_in_progress(trigger):
            self.pending = True  # retried after the next watched import completes
            return
        self.pending = False
        self._building = True
        try:
            from obsdash_instrumenters.providers import Providers

            self.providers = Providers(self._writer, self._ctx)
            if self.on_built is not None:
                self.on_built()
        except BaseException as exc:
            self._failed = True
            internal_error("providers.create", exc)
        finally:
            self._building = False

    def retry_pending(self, module: ModuleType) -> None:
        """After any watched import completes: build the providers if an earlier attempt had to wait."""
        if self.pending:
            self.ensure(module.__name__)

    def shutdown(self, timeout_s: float) -> None:
        if self.providers is not None:
            self.providers.shutdown(timeout_s)


# Modules the SDK itself imports: if one of them is half imported, building the SDK now is a circular import
# (seen: `concurrent.futures` importing `logging`, whose hook built the SDK, which needs concurrent.futures).
_SDK_DEPENDENCIES = frozenset(("opentelemetry", "wrapt", "importlib_metadata", "typing_extensions", "zipp"))


def _import_in_progress(trigger: str | None) -> bool:
    """True while a module the SDK needs is half imported. (`trigger`, whose import just finished, is still
    flagged as initializing while its import hooks run.)"""
    stdlib = sys.stdlib_module_names
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if name == trigger or (top not in stdlib and top not in _SDK_DEPENDENCIES):
            continue
        if getattr(getattr(module, "__spec__", None), "_initializing", False):
            return True
    return False


def start() -> None:
    """Install obsdash in this process; a no-op when not run under `obsdash wrap` or when already started."""
    global _started
    if _started:
        return
    _started = True
    began = time.perf_counter()
    config = settings.load()
    if config is None:
        return
    try:
        os.makedirs(config.spool_dir, mode=0o700, exist_ok=True)
    except OSError:
        pass  # the writer counts what it cannot write; the app runs on regardless
    writer = SpoolWriter(config.spool_dir, config.batch_delay_s, config.max_queued_records)
    ctx = RecordContext(config.service_name, config.run_id, writer)
    providers = _LazyProviders(writer, ctx)
    lifecycle = Lifecycle(config, writer, ctx, providers.shutdown)
    providers.on_built = lifecycle.unblock_sigterm_later

    finder = PostImportFinder(after_each=providers.retry_pending)
    sys.meta_path.insert(0, finder)
    instrumentations.install(finder, config.disabled, providers.ensure)

    def on_logging_import(_module: ModuleType) -> None:
        from obsdash_instrumenters import logcapture

        handler = logcapture.install(writer, ctx)
        finder.watch("logging.config", lambda _config: logcapture.wrap_logging_config(handler))

    if "logging" not in config.disabled:
        finder.watch("logging", on_logging_import)
    # An app that uses the OpenTelemetry API itself gets real providers behind it.
    for api in ("opentelemetry.trace", "opentelemetry.metrics", "opentelemetry._logs"):
        finder.watch(api, lambda module: providers.ensure(module.__name__))
    unhandled.install(writer, ctx, lifecycle.set_exit_code)
    lifecycle.install(startup_ms=(time.perf_counter() - began) * 1000)
