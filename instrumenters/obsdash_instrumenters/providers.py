"""The OpenTelemetry SDK providers, built only when the app first needs them.

Importing the SDK costs 60–90 ms here (`-X importtime`), more than the whole P1 budget, so nothing in this module
is imported at start-up: bootstrap's `_LazyProviders.ensure()` builds them just before the first instrumentor
loads. Spans are encoded on the thread that ended them and queued in the spool writer (`logging` records take
their own path, logcapture.py; the LoggerProvider serves apps using the OpenTelemetry logs API); metrics are
collected every 5 s by the SDK's periodic reader, with delta temporality so a window sum is a plain SUM.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from obsdash_instrumenters import otlp_config
from obsdash_instrumenters.context import RecordContext
from obsdash_instrumenters.encode import RecordDropped, encode_log, encode_metrics, encode_span
from obsdash_instrumenters.safety import fault, internal_error
from obsdash_instrumenters.spool import SpoolWriter

METRIC_INTERVAL_MS = 5000
HTTP_METER_SCOPES = frozenset(
    f"opentelemetry.instrumentation.{name}"
    for name in (
        "asgi", "django", "fastapi", "flask", "starlette", "wsgi", "tornado", "falcon", "pyramid",
        "aiohttp_server", "aiohttp_client", "httpx", "requests", "urllib", "urllib3",
    )
)  # fmt: skip
"""The HTTP instrumentors' meters: request duration, sizes, active requests (see SpanFirstMeterProvider)."""


class SpanFirstMeterProvider(MeterProvider):
    """A MeterProvider that gives the HTTP instrumentors a no-op meter.

    Each request through Flask costs three measurements (active requests +1 and -1, the duration histogram), and
    with a reader the SDK aggregates each one: ~15-20 µs per request, the largest cost obsdash added on top of the
    instrumentation (P2, docs/benchmarks.md), for figures the request's span already holds exactly — the dashboard's
    rates and percentiles come from spans, not from bucketed histograms. Other meters (GenAI token usage, the app's
    own) are real. With OTLP out, or OBSDASH_HTTP_METRICS=1, the HTTP metrics are kept: an APM's dashboards may be
    built on them.
    """

    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in HTTP_METER_SCOPES:
            return metrics.NoOpMeter(name)
        return super().get_meter(name, *args, **kwargs)


class SpoolSpanProcessor(SpanProcessor):
    """Encodes each finished span and queues it; no thread of its own (the spool writer has one)."""

    def __init__(self, writer: SpoolWriter, ctx: RecordContext) -> None:
        self._writer = writer
        self._ctx = ctx

    def on_end(self, span: ReadableSpan) -> None:
        try:
            fault("exporter")  # R2: tests/reliability/test_faults.py
            self._writer.put("spans", encode_span(span, self._ctx))
        except RecordDropped:
            pass  # the scrubber failed on it: dropped and counted already (scrub_error)
        except BaseException as exc:
            self._writer.count_dropped("export_error")  # the span is lost: count it
            internal_error("span.encode", exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self._writer.flush()
        return True


class SpoolLogExporter(LogRecordExporter):
    """Queues SDK log records as spool lines."""

    def __init__(self, writer: SpoolWriter, ctx: RecordContext) -> None:
        self._writer = writer
        self._ctx = ctx

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        for log in batch:
            try:
                self._writer.put("logs", encode_log(log, self._ctx))
            except BaseException as exc:
                internal_error("log.encode", exc)
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        """Nothing to release."""


class SpoolMetricExporter(MetricExporter):
    """Queues metric data points as spool lines."""

    def __init__(self, writer: SpoolWriter, ctx: RecordContext) -> None:
        delta = AggregationTemporality.DELTA
        super().__init__(preferred_temporality={Counter: delta, Histogram: delta, ObservableCounter: delta})
        self._writer = writer
        self._ctx = ctx

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            for line in encode_metrics(metrics_data, self._ctx):
                self._writer.put("metrics", line)
        except BaseException as exc:
            internal_error("metric.encode", exc)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Nothing to release."""


class Providers:
    """The three SDK providers of this process, built once."""

    def __init__(self, writer: SpoolWriter, ctx: RecordContext) -> None:
        self.resource = Resource.create(ctx.resource())
        ctx.set_resource(self.resource.attributes)
        self.tracer_provider: TracerProvider | None = None
        self.logger_provider: LoggerProvider | None = None
        self.meter_provider: MeterProvider | None = None
        self.otlp: Any = self._otlp(writer, ctx)
        # Each signal on its own: a failure in one never takes the others down.
        for build in (self._build_traces, self._build_logs, self._build_metrics):
            try:
                build(writer, ctx)
            except BaseException as exc:
                internal_error(f"providers.{build.__name__}", exc)

    @staticmethod
    def _otlp(writer: SpoolWriter, ctx: RecordContext) -> Any:
        """OTLP out when an OTEL_EXPORTER_OTLP_*ENDPOINT is set (otlp.py); else None and nothing of it imported."""
        signals = otlp_config.configured(os.environ)
        if not signals:
            return None
        try:
            from obsdash_instrumenters.otlp import OtlpExport

            export = OtlpExport(signals, ctx)
            export.tap(writer)
            return export
        except BaseException as exc:
            internal_error("providers.otlp", exc)
            return None

    def _build_traces(self, writer: SpoolWriter, ctx: RecordContext) -> None:
        provider = TracerProvider(resource=self.resource, shutdown_on_exit=False)
        provider.add_span_processor(SpoolSpanProcessor(writer, ctx))
        trace.set_tracer_provider(provider)
        self.tracer_provider = provider

    def _build_logs(self, writer: SpoolWriter, ctx: RecordContext) -> None:
        provider = LoggerProvider(resource=self.resource, shutdown_on_exit=False)
        provider.add_log_record_processor(SimpleLogRecordProcessor(SpoolLogExporter(writer, ctx)))
        set_logger_provider(provider)
        self.logger_provider = (
            provider  # for apps that use the OpenTelemetry logs API; `logging` is logcapture's
        )

    def _build_metrics(self, writer: SpoolWriter, ctx: RecordContext) -> None:
        # Registered before the reader exists, so it runs before the reader's own at-fork hook restarts its
        # collection thread in the child: that thread must never see the parent's storage.
        os.register_at_fork(after_in_child=self._reset_metrics_in_child)
        reader = PeriodicExportingMetricReader(
            SpoolMetricExporter(writer, ctx), export_interval_millis=METRIC_INTERVAL_MS
        )
        readers = [reader, *(self.otlp.metric_readers() if self.otlp is not None else ())]  # spool's first
        keep_http = self.otlp is not None or os.environ.get("OBSDASH_HTTP_METRICS") == "1"
        provider_class = MeterProvider if keep_http else SpanFirstMeterProvider
        provider = provider_class(resource=self.resource, metric_readers=readers, shutdown_on_exit=False)
        metrics.set_meter_provider(provider)
        self.meter_provider = provider

    def _reset_metrics_in_child(self) -> None:
        """A forked child starts with empty metric storage and unheld locks.

        The SDK (1.45) does not reset its metric storage at fork (open-telemetry/opentelemetry-python#4345, fix
        proposed in PR #4767): a lock an aggregation or the reader held in another thread at fork time stays held
        in the child, whose next `counter.add()` then waits forever (tests/apps/fork_storm.py: 13 hung children
        in 120 forks, 0 with this reset). The copied storage also holds the parent's not yet exported deltas, which the
        child would export a second time. So the child gets fresh storage (fresh locks inside) and a fresh
        export lock, as PR #4767 does.
        """
        provider = self.meter_provider
        if provider is None:
            return
        try:
            from opentelemetry.sdk.metrics._internal.metric_reader_storage import MetricReaderStorage

            consumer = provider._measurement_consumer
            consumer._lock = threading.Lock()
            consumer._reader_storages = {
                reader: MetricReaderStorage(
                    consumer._sdk_config,
                    reader._instrument_class_temporality,  # type: ignore[arg-type]  # the SDK's own types differ
                    reader._instrument_class_aggregation,  # type: ignore[arg-type]
                )
                for reader in consumer._reader_storages
            }
            for reader in consumer._reader_storages:
                if hasattr(reader, "_export_lock"):
                    reader._export_lock = threading.Lock()
        except BaseException as exc:
            internal_error("providers.fork", exc)

    def shutdown(self, timeout_s: float) -> None:
        """Final metric collection and provider shutdown, and OTLP's last batches beside them, within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        workers = [threading.Thread(target=self._shutdown, name="obsdash-providers-shutdown", daemon=True)]
        if self.otlp is not None:
            workers.append(threading.Thread(target=self.otlp.shutdown, args=(deadline,), daemon=True))
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def _shutdown(self) -> None:
        for provider in (self.meter_provider, self.tracer_provider, self.logger_provider):
            try:
                if provider is not None:
                    provider.shutdown()
            except BaseException as exc:
                internal_error("providers.shutdown", exc)
