"""The records of a selection, page by page, as SDK objects: sent through the official OTLP/HTTP exporter
(`obsdash export --otlp-endpoint URL`) or written as OTLP/JSON lines (`--format otlp-json`).

Sending: one exporter per signal at URL/v1/traces, /v1/logs, /v1/metrics (URL is a base, as in
OTEL_EXPORTER_OTLP_ENDPOINT; headers, timeout, compression and certificates come from the standard
OTEL_EXPORTER_OTLP_* variables, which the exporter reads). A page is one request. The exporter retries what OTLP
says to retry (429, 502-504, connection errors) for up to its timeout (10 s); a batch it gives up on is counted as
failed, and the replay stops when the first request fails or after STOP_AFTER failures in a row, rather than
waiting out every batch against an endpoint that is down. The exporter's own log lines are kept off the terminal;
the last one is quoted in the summary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from obsdash_instrumenters.otlp_records import Resources

from obsdash.export import records
from obsdash.store.queries import Reader
from obsdash.store.queries.export import Selection, level_series, page

SIGNALS = ("spans", "logs", "metric_points")
PATHS = {"spans": "v1/traces", "logs": "v1/logs", "metric_points": "v1/metrics"}
STOP_AFTER = 3
MESSAGE_CHARS = 300


@dataclass
class Batch:
    """One page of one table: how many records (metric points count one each) and the SDK objects."""

    table: str
    records: int
    payload: Any


def batches(reader: Reader, selection: Selection) -> Iterator[Batch]:
    """Every selected span, log and metric point, page by page, as SDK objects."""
    resources = Resources()
    for table in SIGNALS:
        levels = level_series(reader, selection) if table == "metric_points" else set()
        after = -1
        while rows := page(reader, table, selection, after):
            after = int(rows[-1]["row_id"])
            if table == "spans":
                yield Batch(table, len(rows), records.spans(rows, resources))
            elif table == "logs":
                yield Batch(table, len(rows), records.logs(rows, resources))
            else:
                yield Batch(table, len(rows), records.metrics(rows, levels))


def encode(batch: Batch) -> Any:
    """The OTLP export request (protobuf message) of a batch."""
    if batch.table == "spans":
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        return encode_spans(batch.payload)
    if batch.table == "logs":
        from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

        return encode_logs(batch.payload)
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

    return encode_metrics(batch.payload)


class _FirstMessage(logging.Handler):
    """Keeps the exporter's first warning since the last success (the cause, e.g. "Connection refused"; the last
    is "due to timeout, max retries or shutdown"), instead of printing it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.message is not None:
            return
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        self.message = message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 1] + "…"


@dataclass
class Sender:
    """The three exporters and what they achieved."""

    endpoint: str
    sent: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    failures_in_a_row: int = 0
    _exporters: dict[str, Any] = field(default_factory=dict)
    _log: _FirstMessage = field(default_factory=_FirstMessage)

    def __post_init__(self) -> None:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        base = self.endpoint.rstrip("/")
        kinds = {"spans": OTLPSpanExporter, "logs": OTLPLogExporter, "metric_points": OTLPMetricExporter}
        self._exporters = {table: kind(endpoint=f"{base}/{PATHS[table]}") for table, kind in kinds.items()}
        exporter_log = logging.getLogger("opentelemetry.exporter")
        exporter_log.addHandler(self._log)
        exporter_log.propagate = False  # this is our own process: the summary says what went wrong

    @property
    def last_error(self) -> str | None:
        """What the exporter said went wrong first since the last batch it sent, if anything."""
        return self._log.message

    def send(self, batch: Batch) -> bool:
        """Export one batch; True when the endpoint took it."""
        exporter = self._exporters[batch.table]
        try:
            result = exporter.export(batch.payload)
            ok = getattr(result, "name", "") == "SUCCESS"
        except (
            Exception
        ) as exc:  # the exporters return FAILURE rather than raise; anything else is a failure too
            self._log.message = f"{type(exc).__name__}: {exc}"
            ok = False
        if ok:
            self._log.message = None
        counts = self.sent if ok else self.failed
        counts[batch.table] = counts.get(batch.table, 0) + batch.records
        self.failures_in_a_row = 0 if ok else self.failures_in_a_row + 1
        return ok

    def should_stop(self) -> bool:
        """The endpoint refused the first request, or STOP_AFTER in a row."""
        return self.failures_in_a_row >= STOP_AFTER or (bool(self.failed) and not self.sent)

    def close(self) -> None:
        """Shut the exporters down (their connection pools)."""
        for exporter in self._exporters.values():
            exporter.shutdown()
