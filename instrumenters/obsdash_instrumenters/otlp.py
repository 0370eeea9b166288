"""OTLP out: what the spool gets is also sent to a collector or APM through the official OTLP exporter.

Loaded only when an OTLP endpoint is configured (otlp_config.py, checked by providers.py); without one neither
this module nor the exporter is imported. With one, importing the exporter costs ~150-300 ms (requests, protobuf),
paid once when the SDK is built, as `opentelemetry-instrument` pays it.

Spans and logs: every path that records one (span end, SDK logs, `logging` capture, unhandled exceptions) ends in
`SpoolWriter.put` with the scrubbed JSON line. `OtlpExport.tap` wraps that method of the one writer, so a copy of
each span and log line also goes to a bounded queue, which a daemon thread turns back into SDK objects
(otlp_records.py) and hands to OTLPSpanExporter / OTLPLogExporter in batches. So the collector gets the records
the local store gets, scrubbed once, with the redactions counted once; the app's thread pays a queue append.
Metrics: a second PeriodicExportingMetricReader with the OTLP exporter's own temporality (cumulative unless
OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE says otherwise; the spool's reader is delta), the points'
attributes scrubbed as the spool's are (each distinct attribute set once) and the resource the scrubbed one.

Nothing reaches the app: export failures (collector down, 4xx) are counted in `counters`; log records the
exporter, requests or urllib3 make while we export are dropped before any handler, the app's or ours, sees them
(else the app's stderr would change and our own capture would send them round again); instrumentation is
suppressed while we export (no spans of our own HTTP calls); shutdown is bounded by the exit budget.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, set_value
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from obsdash_instrumenters import otlp_records
from obsdash_instrumenters.otlp_config import exporter_path
from obsdash_instrumenters.safety import fault, internal_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from obsdash_instrumenters.context import RecordContext
    from obsdash_instrumenters.spool import SpoolWriter

counters: dict[str, int] = {}
"""`<signal>_sent`, `<signal>_failed` (records in batches the endpoint did not take), `<signal>_dropped` (queue
full). Cumulative for this process."""

MAX_QUEUED = 20_000
"""Lines waiting per signal; beyond this they are dropped and counted (a collector down for minutes must not grow
the app's memory: ~1 kB a line, so ~20 MB at most)."""
BATCH = 512
"""Records per export request, the SDK's batch size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE overrides it for spans,
OTEL_BLRP_MAX_EXPORT_BATCH_SIZE for logs)."""
DELAY_S = 1.0
"""Longest wait before queued records go out: 1 s keeps a collector about as fresh as the dashboard (the SDK's
span default is 5 s; OTEL_BSP_SCHEDULE_DELAY / OTEL_BLRP_SCHEDULE_DELAY, in ms, override it)."""
_QUIET_LOGGERS = ("opentelemetry", "urllib3", "requests", "charset_normalizer", "grpc")

_exporting = threading.local()


class _Quiet(logging.Filter):
    """Drops records made on a thread while it exports for us."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_exporting, "active", False)


_QUIET = _Quiet()


def quiet_loggers() -> None:
    """Put the filter on every logger of the exporter's libraries that exists now (a logger filter applies at the
    logger that made the record, before any handler)."""
    for name, logger in list(logging.root.manager.loggerDict.items()):
        top = name.partition(".")[0]
        if top in _QUIET_LOGGERS and isinstance(logger, logging.Logger) and _QUIET not in logger.filters:
            logger.addFilter(_QUIET)


def _count(key: str, n: int) -> None:
    counters[key] = counters.get(key, 0) + n


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def new_exporter(signal: str, protocol: str) -> Any:
    """The official exporter of `signal` (it reads endpoint, headers, timeout... from the OTEL_* variables)."""
    module, name = exporter_path(signal, protocol)
    exporter = getattr(importlib.import_module(module), name)()
    quiet_loggers()  # the loggers its modules just made
    return exporter


class LineQueue:
    """Spool lines of one signal, sent in batches by a daemon thread through an OTLP exporter."""

    def __init__(
        self, signal: str, protocol: str, convert: Callable[[Any, otlp_records.Resources], Any]
    ) -> None:
        self.signal = signal
        self._protocol = protocol
        self._convert = convert
        prefix = "OTEL_BSP" if signal == "traces" else "OTEL_BLRP"
        self._batch = int(_env_number(f"{prefix}_MAX_EXPORT_BATCH_SIZE", BATCH))
        self._delay_s = _env_number(f"{prefix}_SCHEDULE_DELAY", DELAY_S * 1000) / 1000
        self._exporter: Any = new_exporter(signal, protocol)  # imported now, on the thread building the SDK
        self._reset()
        os.register_at_fork(after_in_child=self._after_fork_in_child)

    def _reset(self) -> None:
        self._lines: deque[bytes] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._deadline: float | None = None
        self._resources = otlp_records.Resources()

    def _after_fork_in_child(self) -> None:
        # the parent's thread is gone and its exporter's connection pool is the parent's: start afresh
        self._reset()
        self._exporter = None

    def offer(self, line: bytes) -> None:
        """Queue one line (called on the app's thread: an append, or a count when full)."""
        if len(self._lines) >= MAX_QUEUED or self._deadline is not None:
            _count(f"{self.signal}_dropped", 1)
            return
        self._lines.append(line + b"\n")  # an exact-size copy: orjson's bytes hold a 4-8 kB buffer (spool.py)
        if self._thread is None:
            self._start()
        if len(self._lines) >= self._batch:
            self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"obsdash-otlp-{self.signal}", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        _exporting.active = True
        attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))  # this thread only: no spans of our HTTP calls
        while self._deadline is None:
            self._wake.wait(self._delay_s)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        while self._lines and (self._deadline is None or time.monotonic() < self._deadline):
            batch = [self._lines.popleft() for _ in range(min(self._batch, len(self._lines)))]
            self._send(batch)

    def _send(self, lines: list[bytes]) -> None:
        try:
            fault("otlp")  # R2: tests/test_otlp_out.py
            if self._exporter is None:
                self._exporter = new_exporter(self.signal, self._protocol)
            items = [self._convert(orjson.loads(line), self._resources) for line in lines]
            ok = self._exporter.export(items).name == "SUCCESS"
            _count(f"{self.signal}_sent" if ok else f"{self.signal}_failed", len(items))
            quiet_loggers()  # loggers the first request created (urllib3's connection pool...)
        except BaseException as exc:
            _count(f"{self.signal}_failed", len(lines))
            internal_error(f"otlp.{self.signal}", exc)

    def stop(self, deadline: float) -> None:
        """Send what is queued until `deadline`, then stop taking lines."""
        self._deadline = deadline
        self._wake.set()

    def join(self, deadline: float) -> None:
        """Wait for the last batches until `deadline`, then close the exporter (which aborts its retries)."""
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        left = len(self._lines)
        if left:
            _count(f"{self.signal}_dropped", left)
        if self._exporter is not None:
            self._exporter.shutdown()


class ScrubbingMetricExporter(MetricExporter):
    """Hands metrics to the OTLP exporter with the scrubbed resource and point attributes scrubbed as the spool's."""

    def __init__(self, inner: Any, ctx: RecordContext) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,  # what the SDK's own reader reads from it
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner
        self._ctx = ctx
        self._resource: tuple[int, Resource] | None = None
        self._scrubbed: dict[Any, dict[str, Any]] = {}

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        _exporting.active = True
        try:
            fault("otlp")
            data = self._scrub(metrics_data)
            result = self._inner.export(data, timeout_millis=timeout_millis)
            ok = result == MetricExportResult.SUCCESS
            _count("metrics_sent" if ok else "metrics_failed", 1)
            quiet_loggers()
        except BaseException as exc:
            _count("metrics_failed", 1)
            internal_error("otlp.metrics", exc)
        finally:
            _exporting.active = False
        return MetricExportResult.SUCCESS  # a failure is ours to count; the SDK would only log it

    def _scrub(self, data: MetricsData) -> MetricsData:
        from dataclasses import replace

        resource = self._resource_now()
        return MetricsData(
            resource_metrics=[
                replace(
                    rm,
                    resource=resource,
                    scope_metrics=[
                        replace(sm, metrics=[self._metric(m) for m in sm.metrics]) for sm in rm.scope_metrics
                    ],
                )
                for rm in data.resource_metrics
            ]
        )

    def _metric(self, metric: Any) -> Any:
        from dataclasses import replace

        points = [replace(p, attributes=self._attributes(p.attributes)) for p in metric.data.data_points]
        return replace(metric, data=replace(metric.data, data_points=points))

    def _attributes(self, attributes: Any) -> dict[str, Any]:
        """Scrubbed once per distinct attribute set: a series' attributes repeat at every collection."""
        from obsdash_instrumenters import scrub

        raw = dict(attributes or {})
        try:
            key: Any = frozenset(raw.items())
        except TypeError:  # a list value: not hashable, scrub it every time
            key = None
        found = self._scrubbed.get(key) if key is not None else None
        if found is None:
            found = scrub.attributes(dict(raw))  # fail closed: raising drops this export, never sends it raw
            if key is not None:
                if len(self._scrubbed) >= 4096:
                    self._scrubbed.clear()
                self._scrubbed[key] = found
        return found

    def _resource_now(self) -> Resource:
        pid = os.getpid()  # the resource names the process: a forked child has its own
        if self._resource is None or self._resource[0] != pid:
            self._resource = (pid, Resource(self._ctx.resource()))
        return self._resource[1]

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        try:
            self._inner.shutdown()
        except BaseException as exc:
            internal_error("otlp.metrics.shutdown", exc)


class OtlpExport:
    """OTLP out of this process: the line queues, the metric reader, and their bounded shutdown."""

    def __init__(self, signals: dict[str, str], ctx: RecordContext) -> None:
        self.signals = signals
        self.ctx = ctx
        self.queues: dict[str, LineQueue] = {}
        converters = {"traces": ("spans", otlp_records.span), "logs": ("logs", otlp_records.log)}
        for signal, (kind, convert) in converters.items():
            if signal in signals:
                try:  # each signal on its own: one exporter failing to load leaves the others
                    self.queues[kind] = LineQueue(signal, signals[signal], convert)
                except BaseException as exc:
                    internal_error(f"otlp.{signal}.start", exc)
        self.reader: PeriodicExportingMetricReader | None = None
        quiet_loggers()

    def tap(self, writer: SpoolWriter) -> None:
        """Send a copy of every span and log line the writer queues (see the module docstring)."""
        if not self.queues:
            return
        put = writer.put
        spans = self.queues.get("spans")
        logs = self.queues.get("logs")

        def put_and_send(kind: str, line: bytes | dict[str, Any]) -> None:
            put(kind, line)
            try:
                if type(line) is bytes:
                    if kind == "spans" and spans is not None:
                        spans.offer(line)
                    elif kind == "logs" and logs is not None:
                        logs.offer(line)
            except BaseException as exc:
                internal_error("otlp.offer", exc)

        writer.put = put_and_send  # type: ignore[method-assign]

    def metric_readers(self) -> Sequence[PeriodicExportingMetricReader]:
        """The second reader of the meter provider (none when metrics are not sent)."""
        protocol = self.signals.get("metrics")
        if protocol is None:
            return []
        try:  # a failure here must not cost the spool its metrics (they share the meter provider)
            exporter = ScrubbingMetricExporter(new_exporter("metrics", protocol), self.ctx)
            self.reader = PeriodicExportingMetricReader(exporter)  # OTEL_METRIC_EXPORT_INTERVAL, default 60 s
        except BaseException as exc:
            internal_error("otlp.metrics.start", exc)
            return []
        return [self.reader]

    def shutdown(self, deadline: float) -> None:
        """Send what is queued, all signals at once, until `deadline` (time.monotonic()); never raises."""
        try:
            for queue in self.queues.values():
                queue.stop(deadline)
            for queue in self.queues.values():
                queue.join(deadline)
        except BaseException as exc:
            internal_error("otlp.shutdown", exc)
