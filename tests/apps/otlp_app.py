"""A small app already set up for OpenTelemetry with the official OTLP/HTTP exporters — not under obsdash wrap.

Configured the way users configure it, by the standard variables (OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES...), in
one of two ways:

    python otlp_app.py --sdk                       # the app builds the SDK providers and exporters itself
    opentelemetry-instrument python otlp_app.py    # the distro builds them (OTEL_*_EXPORTER=otlp)

The app itself uses only the OpenTelemetry API and `logging`. It makes a request-shaped trace (SERVER → CLIENT,
INTERNAL), a failing request (ERROR, exception event), a producer → consumer pair across a propagated context,
logs inside and outside spans, and metrics exported twice (cumulative, as the SDK exports by default). It prints
one JSON object: what it made, for the test to compare with the store.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

SECRET = "sk-proj-otlpSECRETotlpSECRETotlpSECRET0123"


def build_sdk() -> None:
    """What an app does without `opentelemetry-instrument`: providers with the OTLP/HTTP exporters."""
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and the configured detectors
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=3_600_000)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    set_logger_provider(logger_provider)
    logging.getLogger().addHandler(LoggingHandler(logger_provider=logger_provider))


def main() -> None:
    if "--sdk" in sys.argv:
        build_sdk()
    log = logging.getLogger("shop")
    log.setLevel(logging.INFO)
    tracer = trace.get_tracer("shop.handlers", "1.0")
    meter = metrics.get_meter("shop.metrics")
    orders = meter.create_counter("shop.orders", unit="{order}")
    latency = meter.create_histogram("shop.latency", unit="ms")
    active = meter.create_up_down_counter("shop.active")
    made: dict[str, dict[str, str]] = {}

    def note(name: str, span: trace.Span) -> None:
        ctx = span.get_span_context()
        made[name] = {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}

    with tracer.start_as_current_span(
        "GET /items/{id}",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "http.route": "/items/{id}",
            "http.response.status_code": 200,
            "url.full": f"http://shop.local/items/7?api_key={SECRET}",
            "shop.tags": ["new", "sale"],
            "shop.ratio": 0.25,
            "shop.cached": True,
        },
    ) as server:
        note("GET /items/{id}", server)
        with tracer.start_as_current_span(
            "SELECT shop.items",
            kind=SpanKind.CLIENT,
            attributes={"db.system": "sqlite", "db.statement": "SELECT * FROM items WHERE id = ?"},
        ) as client:
            note("SELECT shop.items", client)
        with tracer.start_as_current_span("render") as internal:
            note("render", internal)
            log.warning("stock low for item %s", 7, extra={"shop.item": 7})

    try:
        with tracer.start_as_current_span(
            "POST /checkout",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "POST", "http.route": "/checkout"},
        ) as failing:
            note("POST /checkout", failing)
            failing.set_status(Status(StatusCode.ERROR, "checkout failed"))
            raise ValueError("card declined")
    except ValueError:
        log.exception("checkout failed for order %s", 42)

    carrier: dict[str, str] = {}
    with tracer.start_as_current_span("orders publish", kind=SpanKind.PRODUCER) as producer:
        note("orders publish", producer)
        propagate.inject(carrier)
    with tracer.start_as_current_span(
        "orders process", context=propagate.extract(carrier), kind=SpanKind.CONSUMER
    ) as consumer:
        note("orders process", consumer)

    log.info("outside any span")

    orders.add(2, {"route": "/checkout"})
    latency.record(10, {"route": "/items"})
    latency.record(20, {"route": "/items"})
    active.add(4)
    metrics.get_meter_provider().force_flush()  # type: ignore[attr-defined]  # 1st export: orders 2
    orders.add(3, {"route": "/checkout"})
    latency.record(30, {"route": "/items"})
    active.add(-1)
    metrics.get_meter_provider().force_flush()  # type: ignore[attr-defined]  # 2nd export: orders 5 (cumulative)

    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    from opentelemetry._logs import get_logger_provider

    get_logger_provider().force_flush()  # type: ignore[attr-defined]
    print(json.dumps({"pid": os.getpid(), "spans": made}), flush=True)
    # At exit the providers shut down (their atexit hooks): one more metric export, cumulative again.


if __name__ == "__main__":
    main()
