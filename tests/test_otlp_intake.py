"""OTLP in: `obsdash serve --otlp` receives OTLP/HTTP and the records land in the store (issue 7, S4).

Senders are the official OpenTelemetry exporters in a small app configured as users configure it (environment
variables; plain SDK set-up and `opentelemetry-instrument`, with and without gzip), and hand-written OTLP/JSON
per the specification. The S4 tests send what a hostile or broken client would: bodies over the cap, a 1 GiB
gzip bomb, malformed protobuf and JSON, a batch with one bad record, and check the listener's address.
The no-flag case (no listener at all) is tests/security/test_network.py's.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from obsdash.otlp.decode import JSON, PROTOBUF
from tests.conftest import APPS, child_env, free_port, obsdash_cmd, query, run, scalar, wait_for_port

MIB = 1024 * 1024
APP = str(APPS / "otlp_app.py")
SECRET = "sk-proj-otlpSECRETotlpSECRETotlpSECRET0123"  # the app's; must never reach the store


@dataclass
class Served:
    """A running `obsdash serve --otlp`."""

    proc: subprocess.Popen[str]
    data_dir: Path
    port: int

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


def start_serve(data_dir: Path, port: int | None = None) -> Served:
    port = port or free_port()
    cmd = obsdash_cmd("serve", "--otlp", "--otlp-port", str(port), "--data-dir", str(data_dir))
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=child_env())
    wait_for_port(port)
    return Served(proc, data_dir, port)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One intake for the tests that only send to it (each uses its own service names)."""
    server = start_serve(tmp_path_factory.mktemp("otlp") / "data")
    yield server
    server.stop()


def post(
    port: int, path: str, body: bytes, content_type: str = PROTOBUF, **headers: str
) -> tuple[int, str, bytes]:
    """One POST on a fresh connection: status, content type, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, body, {"Content-Type": content_type, **headers})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def spans_request(service: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    """An OTLP/JSON traces request, as the specification's example has it."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{"scope": {"name": "hand.written", "version": "1"}, "spans": spans}],
            }
        ]
    }


def json_span(name: str, trace_id: str, span_id: str, **extra: Any) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 2,
        "startTimeUnixNano": str(now - 5_000_000),
        "endTimeUnixNano": str(now),
        **extra,
    }


def send_spans(port: int, service: str, names: list[str]) -> None:
    """A good JSON request with one span per name (random ids)."""
    spans = [json_span(name, os.urandom(16).hex(), os.urandom(8).hex()) for name in names]
    status, _, body = post(port, "/v1/traces", json.dumps(spans_request(service, spans)).encode(), JSON)
    assert (status, body) == (200, b"{}")


def run_app(port: int, service: str, *, auto: bool, gzip_on: bool) -> dict[str, Any]:
    """tests/apps/otlp_app.py as a user runs it, configured by OTEL_* variables only; what it printed."""
    env = child_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME=service,
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test",
        OTEL_EXPERIMENTAL_RESOURCE_DETECTORS="otel,process",
    )
    env.pop("OBSDASH_STRICT")
    if gzip_on:
        env["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip"
    if auto:
        env.update(
            OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true", OTEL_METRIC_EXPORT_INTERVAL="3600000"
        )
        instrument = str(Path(sys.executable).parent / "opentelemetry-instrument")
        cmd = [instrument, sys.executable, APP]
    else:
        cmd = [sys.executable, APP, "--sdk"]
    result = run(cmd, env=env)
    assert result.returncode == 0, result.stderr
    assert "Failed to export" not in result.stderr, result.stderr
    made: dict[str, Any] = json.loads(result.stdout)
    return made


def rows(served: Served, sql: str) -> list[dict[str, Any]]:
    return query(served.data_dir, sql)


# -- the official exporter, as users configure it --------------------------------------------------------------
@pytest.mark.parametrize(
    ("service", "auto", "gzip_on"), [("shop-sdk", False, False), ("shop-auto-gzip", True, True)]
)
def test_official_exporter_lands_in_the_store(
    served: Served, service: str, auto: bool, gzip_on: bool
) -> None:
    made = run_app(served.port, service, auto=auto, gzip_on=gzip_on)
    stored = {
        r["name"]: r
        for r in rows(
            served,
            "SELECT name, trace_id, span_id, parent_span_id, kind, status_code, is_root, scope, pid, run_id, "
            "http_route, http_method, attributes, resource "
            f"FROM spans WHERE service_name = '{service}'",
        )
    }
    assert set(stored) == set(made["spans"])  # six spans, no more, no fewer
    for name, ids in made["spans"].items():
        assert (stored[name]["trace_id"], stored[name]["span_id"]) == (ids["trace_id"], ids["span_id"])
    server, client, render = stored["GET /items/{id}"], stored["SELECT shop.items"], stored["render"]
    assert server["parent_span_id"] is None and server["is_root"]
    assert client["parent_span_id"] == render["parent_span_id"] == server["span_id"]
    assert not client["is_root"] and not render["is_root"]
    consumer = stored["orders process"]
    assert consumer["parent_span_id"] == stored["orders publish"]["span_id"]
    assert consumer["is_root"]  # its parent came through a propagated (remote) context: the span flags say so
    assert {n: r["kind"] for n, r in stored.items()} == {
        "GET /items/{id}": "SERVER",
        "SELECT shop.items": "CLIENT",
        "render": "INTERNAL",
        "POST /checkout": "SERVER",
        "orders publish": "PRODUCER",
        "orders process": "CONSUMER",
    }
    assert stored["POST /checkout"]["status_code"] == "ERROR"
    assert (server["http_route"], server["http_method"], server["scope"]) == (
        "/items/{id}",
        "GET",
        "shop.handlers",
    )
    attributes = json.loads(server["attributes"])
    assert attributes["shop.tags"] == ["new", "sale"] and attributes["shop.ratio"] == 0.25
    assert attributes["shop.cached"] is True and attributes["http.response.status_code"] == 200
    assert "[REDACTED" in attributes["url.full"]  # scrubbed like an in-app span
    resource = json.loads(server["resource"])
    assert resource["service.name"] == service and resource["deployment.environment"] == "test"
    assert {r["pid"] for r in stored.values()} == {made["pid"]}  # from the process.pid resource attribute
    run_id = server["run_id"]
    assert run_id == f"otlp-{service}-{time.strftime('%Y%m%d')}"

    error = rows(served, f"SELECT exception_type, message, trace_id FROM errors WHERE run_id = '{run_id}'")
    checkout_trace = made["spans"]["POST /checkout"]["trace_id"]
    assert {"exception_type": "ValueError", "message": "card declined", "trace_id": checkout_trace} in error

    logs = rows(
        served,
        f"SELECT body, severity_text, trace_id, span_id, exception_type FROM logs WHERE run_id = '{run_id}' "
        "AND scope = 'shop' ORDER BY time",
    )
    render_ids = made["spans"]["render"]
    assert logs == [
        {
            "body": "stock low for item 7",
            "severity_text": "WARN",
            "trace_id": render_ids["trace_id"],
            "span_id": render_ids["span_id"],
            "exception_type": None,
        },
        {
            "body": "checkout failed for order 42",
            "severity_text": "ERROR",
            "trace_id": None,
            "span_id": None,
            "exception_type": "ValueError",
        },
        {
            "body": "outside any span",
            "severity_text": "INFO",
            "trace_id": None,
            "span_id": None,
            "exception_type": None,
        },
    ]

    # The SDK exports cumulative points (2, then 5, then 5 again at exit): stored as deltas, a SUM is the total.
    metrics = {
        r["name"]: r
        for r in rows(
            served,
            "SELECT name, any_value(kind) AS kind, sum(value) AS total, sum(count) AS n, sum(sum) AS s, "
            "arg_max(value, time) AS last "
            f"FROM metric_points WHERE run_id = '{run_id}' GROUP BY name",
        )
    }
    assert metrics["shop.orders"]["total"] == 5
    assert (metrics["shop.latency"]["kind"], metrics["shop.latency"]["n"], metrics["shop.latency"]["s"]) == (
        "histogram",
        3,
        60,
    )
    assert metrics["shop.active"]["last"] == 3  # an up-down counter is a level: kept as sent

    runs = rows(served, f"SELECT command, processes, service_name FROM runs WHERE run_id = '{run_id}'")
    assert runs == [{"command": f"(OTLP) {service}", "processes": 1, "service_name": service}]
    assert (
        scalar(served.data_dir, f"SELECT count(*) FROM spans WHERE attributes::VARCHAR LIKE '%{SECRET}%'")
        == 0
    )


# -- OTLP/JSON by hand, per the specification ------------------------------------------------------------------
def test_hand_written_otlp_json(served: Served) -> None:
    trace_id, parent_id, child_id = "5B8EFFF798038103D269B633813FC60C", "eee19b7ec3c1b174", "eee19b7ec3c1b173"
    now = time.time_ns()
    parent = json_span(
        "GET /json",
        trace_id,
        parent_id,
        attributes=[
            {"key": "http.route", "value": {"stringValue": "/json"}},
            {"key": "big", "value": {"intValue": "9007199254740993"}},  # int64 as a string, beyond a double
            {"key": "raw", "value": {"bytesValue": base64.b64encode(b"\x00\xff").decode()}},
            {
                "key": "nested",
                "value": {"kvlistValue": {"values": [{"key": "a", "value": {"boolValue": True}}]}},
            },
        ],
        status={"code": 2, "message": "boom"},
        events=[{"timeUnixNano": str(now), "name": "retry", "attributes": []}],
        aFieldFromTheFuture={"x": 1},  # unknown fields are ignored, as the specification asks
    )
    child = json_span("SELECT 1", trace_id, child_id, parentSpanId=parent_id, kind=3)
    body = json.dumps(spans_request("json-svc", [parent, child])).encode()
    status, content_type, answer = post(served.port, "/v1/traces", body, JSON)
    assert (status, content_type, json.loads(answer)) == (200, JSON, {})

    status, _, answer = post(
        served.port,
        "/v1/traces",
        gzip.compress(body.replace(b"json-svc", b"json-gz")),
        JSON,
        **{"Content-Encoding": "gzip"},
    )
    assert status == 200, answer

    logs = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeLogs": [
                    {
                        "scope": {"name": "json.logger"},
                        "logRecords": [
                            {
                                "timeUnixNano": str(now),
                                "severityNumber": 17,
                                "severityText": "ERROR",
                                "body": {
                                    "kvlistValue": {"values": [{"key": "k", "value": {"intValue": "1"}}]}
                                },
                                "traceId": trace_id.lower(),
                                "spanId": parent_id,
                                "eventName": "shop.audit",
                            }
                        ],
                    }
                ],
            }
        ]
    }
    assert post(served.port, "/v1/logs", json.dumps(logs).encode(), JSON)[0] == 200

    # A cumulative counter whose series started before this intake: its first point is a baseline (the
    # increments before it were never sent here), the second is stored as the difference.
    hour_ago = now - 3600 * 10**9

    def counter(value: int, at: int) -> bytes:
        return json.dumps(
            {
                "resourceMetrics": [
                    {
                        "resource": {
                            "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]
                        },
                        "scopeMetrics": [
                            {
                                "metrics": [
                                    {
                                        "name": "jobs.done",
                                        "unit": "1",
                                        "sum": {
                                            "aggregationTemporality": 2,
                                            "isMonotonic": True,
                                            "dataPoints": [
                                                {
                                                    "startTimeUnixNano": str(hour_ago),
                                                    "timeUnixNano": str(at),
                                                    "asInt": str(value),
                                                }
                                            ],
                                        },
                                    }
                                ]
                            }
                        ],
                    }
                ]
            }
        ).encode()

    assert post(served.port, "/v1/metrics", counter(10, now), JSON)[0] == 200
    assert post(served.port, "/v1/metrics", counter(15, now + 10**9), JSON)[0] == 200

    spans = {
        r["span_id"]: r
        for r in rows(
            served,
            "SELECT trace_id, span_id, parent_span_id, kind, status_code, status_message, attributes "
            "FROM spans WHERE service_name = 'json-svc'",
        )
    }
    assert set(spans) == {parent_id, child_id}  # hex ids kept as sent (lower-cased), not read as base64
    assert spans[child_id]["trace_id"] == trace_id.lower()
    assert spans[child_id]["parent_span_id"] == parent_id and spans[child_id]["kind"] == "CLIENT"
    assert (spans[parent_id]["status_code"], spans[parent_id]["status_message"]) == ("ERROR", "boom")
    attributes = json.loads(spans[parent_id]["attributes"])
    assert attributes["big"] == 9007199254740993
    assert (
        attributes["raw"] == base64.b64encode(b"\x00\xff").decode()
    )  # bytes: base64, as OTLP/JSON shows them
    assert attributes["nested"] == {"a": True}
    assert scalar(served.data_dir, "SELECT count(*) FROM spans WHERE service_name = 'json-gz'") == 2
    log = rows(served, "SELECT body, trace_id, span_id, attributes FROM logs WHERE service_name = 'json-svc'")
    assert log == [
        {
            "body": '{"k":1}',
            "trace_id": trace_id.lower(),
            "span_id": parent_id,
            "attributes": '{"event.name":"shop.audit"}',
        }
    ]
    assert rows(served, "SELECT value FROM metric_points WHERE name = 'jobs.done'") == [{"value": 5}]


# -- partial success ------------------------------------------------------------------------------------------
def test_one_bad_record_is_rejected_and_the_rest_kept(served: Served) -> None:
    good = [json_span(f"good {i}", os.urandom(16).hex(), os.urandom(8).hex()) for i in range(2)]
    deep = _nested(40)
    bad = [
        json_span("bad id", "not-hex-at-all", os.urandom(8).hex()),
        json_span("bad time", os.urandom(16).hex(), os.urandom(8).hex(), startTimeUnixNano="soon"),
        json_span(
            "too deep", os.urandom(16).hex(), os.urandom(8).hex(), attributes=[{"key": "d", "value": deep}]
        ),
        json_span("ends first", os.urandom(16).hex(), os.urandom(8).hex(), endTimeUnixNano="1"),
    ]
    body = json.dumps(spans_request("partial-json", [good[0], *bad, good[1]])).encode()
    status, _, answer = post(served.port, "/v1/traces", body, JSON)
    assert status == 200
    partial = json.loads(answer)["partialSuccess"]
    assert partial["rejectedSpans"] == "4" and "traceId is not hex" in partial["errorMessage"]

    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    request.resource_spans[0].resource.attributes.add(key="service.name").value.string_value = "partial-pb"
    now = time.time_ns()
    for i, span_id in enumerate([os.urandom(8), b"\x01" * 5, os.urandom(8)]):  # a 5-byte span id
        scope.spans.add(
            trace_id=os.urandom(16),
            span_id=span_id,
            name=f"pb {i}",
            start_time_unix_nano=now - 1000,
            end_time_unix_nano=now,
        )
    status, content_type, answer = post(served.port, "/v1/traces", request.SerializeToString())
    assert (status, content_type) == (200, PROTOBUF)
    response = ExportTraceServiceResponse.FromString(answer)
    assert response.partial_success.rejected_spans == 1

    metrics = ExportMetricsServiceRequest()
    resource_metrics = metrics.resource_metrics.add()
    resource_metrics.resource.attributes.add(key="service.name").value.string_value = "partial-pb"
    histogram = resource_metrics.scope_metrics.add().metrics.add(name="latency").histogram
    histogram.aggregation_temporality = 1
    histogram.data_points.add(time_unix_nano=now, count=2, bucket_counts=[1, 1], explicit_bounds=[5.0])
    histogram.data_points.add(time_unix_nano=now, count=2, bucket_counts=[1, 1, 0, 0], explicit_bounds=[5.0])
    status, _, answer = post(served.port, "/v1/metrics", metrics.SerializeToString())
    assert status == 200
    assert ExportMetricsServiceResponse.FromString(answer).partial_success.rejected_data_points == 1

    logs = ExportLogsServiceRequest()
    resource_logs = logs.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name").value.string_value = "partial-pb"
    records = resource_logs.scope_logs.add().log_records
    records.add(time_unix_nano=now, trace_id=b"\x02" * 3).body.string_value = "bad trace id"
    records.add(time_unix_nano=now).body.string_value = "kept"
    status, _, answer = post(served.port, "/v1/logs", logs.SerializeToString())
    assert status == 200
    assert ExportLogsServiceResponse.FromString(answer).partial_success.rejected_log_records == 1

    kept = rows(
        served,
        "SELECT (SELECT list(name ORDER BY name) FROM spans WHERE service_name IN ('partial-json', 'partial-pb')) AS spans, "
        "(SELECT count(*) FROM metric_points WHERE service_name = 'partial-pb') AS points, "
        "(SELECT list(body) FROM logs WHERE service_name = 'partial-pb') AS logs",
    )
    assert kept == [{"spans": ["good 0", "good 1", "pb 0", "pb 2"], "points": 1, "logs": ["kept"]}]


def traces_for_equivalence(now: int) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    group = request.resource_spans.add()
    group.resource.attributes.add(key="service.name").value.string_value = "same"
    group.resource.attributes.add(key="process.pid").value.int_value = 4242
    scope = group.scope_spans.add()
    scope.scope.name = "equivalence"
    for kind in range(6):
        span = scope.spans.add(
            trace_id=os.urandom(16),
            span_id=os.urandom(8),
            parent_span_id=os.urandom(8) if kind % 2 else b"",
            name=f"span {kind}",
            kind=kind,
            flags=0x300 if kind == 3 else 0,
            start_time_unix_nano=now - 10**6,
            end_time_unix_nano=now,
        )
        span.status.code = kind % 3
        span.status.message = "bad" if kind % 3 == 2 else ""
        values = span.attributes
        values.add(key="s").value.string_value = "text ✓"
        values.add(key="i").value.int_value = -(2**62)
        values.add(key="d").value.double_value = 1.5
        values.add(key="b").value.bool_value = False
        values.add(key="raw").value.bytes_value = b"\x00\x01\xfe"
        array = values.add(key="a").value.array_value.values
        array.add().string_value = "x"
        array.add().int_value = 3
        inner = values.add(key="kv").value.kvlist_value.values.add(key="inner").value
        inner.array_value.values.add().bool_value = True
        values.add(key="empty")
        event = span.events.add(name="exception", time_unix_nano=now - 10)
        event.attributes.add(key="exception.type").value.string_value = "KeyError"
    return request


def logs_for_equivalence(now: int) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    group = request.resource_logs.add()
    group.resource.attributes.add(key="service.name").value.string_value = "same"
    records = group.scope_logs.add().log_records
    records.add(
        time_unix_nano=now,
        severity_number=13,
        severity_text="WARN",
        trace_id=os.urandom(16),
        span_id=os.urandom(8),
    ).body.string_value = "plain"
    records.add(observed_time_unix_nano=now, event_name="audit").body.kvlist_value.values.add(
        key="k"
    ).value.double_value = 0.5
    records.add(time_unix_nano=now).body.array_value.values.add().bytes_value = b"\xff"
    records.add(time_unix_nano=now)  # no body
    return request


def metrics_for_equivalence(now: int) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    group = request.resource_metrics.add()
    group.resource.attributes.add(key="service.name").value.string_value = "same"
    metrics = group.scope_metrics.add().metrics
    gauge = metrics.add(name="g", unit="1").gauge.data_points.add(time_unix_nano=now, as_double=0.25)
    gauge.attributes.add(key="host").value.string_value = "a"
    total = metrics.add(name="c").sum
    total.aggregation_temporality, total.is_monotonic = 1, True
    total.data_points.add(start_time_unix_nano=now - 10, time_unix_nano=now, as_int=2**40)
    histogram = metrics.add(name="h", unit="ms").histogram
    histogram.aggregation_temporality = 1
    histogram.data_points.add(
        time_unix_nano=now,
        count=3,
        sum=6.0,
        min=1.0,
        max=3.0,
        bucket_counts=[1, 2, 0],
        explicit_bounds=[1.5, 5],
    )
    exponential = metrics.add(name="e").exponential_histogram
    exponential.aggregation_temporality = 1
    exponential.data_points.add(time_unix_nano=now, count=4, sum=8.0, scale=2, zero_count=1)
    summary = metrics.add(name="s").summary.data_points.add(time_unix_nano=now, count=5, sum=9.5)
    summary.quantile_values.add(quantile=0.5, value=2)
    return request


@pytest.mark.parametrize(
    ("signal", "make", "expected"),
    [
        ("traces", traces_for_equivalence, 6),
        ("logs", logs_for_equivalence, 4),
        ("metrics", metrics_for_equivalence, 5),
    ],
)
def test_json_and_protobuf_make_the_same_records(signal: str, make: Any, expected: int) -> None:
    """The OTLP/JSON reader (jsonview.py) against the generated protobuf classes, on requests with every kind of
    value: the same request in either encoding becomes the same spool lines."""
    from google.protobuf import json_format

    from obsdash.otlp import decode
    from obsdash.otlp.records import Converter

    request = make(time.time_ns())
    as_json = json_format.MessageToDict(request)  # proto3 JSON: ids in base64 ...
    stack: list[Any] = [as_json]
    while stack:  # ... which OTLP/JSON writes as hex
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId"):
                    node[key] = base64.b64decode(value).hex()
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    json_body = json.dumps(as_json).encode()

    from_protobuf = Converter().convert(signal, decode.parse(signal, request.SerializeToString(), PROTOBUF))
    from_json = Converter().convert(signal, decode.parse(signal, json_body, JSON))
    assert from_protobuf.rejected == from_json.rejected == 0
    assert len(from_protobuf.lines) == expected
    assert from_json.lines == from_protobuf.lines


def test_cumulative_to_delta_rules() -> None:
    """delta.py on a counter's life: first point after the intake started, increments, a retry, a restart of the
    sender (new start time), a count that went down, and a series forgotten at the cap."""
    from obsdash.otlp.delta import DeltaConverter

    convert = DeltaConverter(started_ns=100, max_series=2).convert

    def point(value: int, at: int, start: int = 150) -> dict[str, Any]:
        return {"time_ns": at, "start_ns": start, "value": value}

    assert convert(b"a", point(4, 200)) == point(4, 200)  # began after the intake: all of it is new
    assert convert(b"a", point(10, 300)) == {"time_ns": 300, "start_ns": 200, "value": 6}
    assert convert(b"a", point(10, 300)) is None  # a retry of the same export
    assert convert(b"a", point(3, 400, start=350)) == point(3, 400, start=350)  # the sender restarted
    assert convert(b"a", point(1, 500, start=350)) == point(1, 500, start=350)  # went down: a reset too
    assert convert(b"old", point(50, 200, start=10)) is None  # began before the intake: a baseline only
    assert convert(b"old", point(70, 300, start=10))["value"] == 20
    convert(b"c", point(1, 200))  # a third series: "a" (least recently updated) is forgotten
    assert convert(b"a", point(9, 600, start=50)) is None  # seen anew, and began before the intake
    histogram = {"time_ns": 200, "start_ns": 150, "count": 2, "sum": 3.0, "min": 1.0, "max": 2.0}
    histogram |= {"bucket_counts": [1, 1], "explicit_bounds": [1.5]}
    assert convert(b"h", histogram) == histogram
    later = histogram | {"time_ns": 300, "count": 5, "sum": 10.0, "max": 4.0, "bucket_counts": [2, 3]}
    assert convert(b"h", later) == later | {
        "start_ns": 200,
        "count": 3,
        "sum": 7.0,
        "min": None,
        "max": None,
        "bucket_counts": [1, 2],
    }


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "bottom"}
    for _ in range(depth):
        value = {"arrayValue": {"values": [value]}}
    return value


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),  # JSON has neither
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
_LEAF = st.one_of(
    st.builds(lambda v: {"stringValue": v}, st.text(max_size=20)),
    st.builds(lambda v: {"intValue": str(v)}, st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    st.builds(
        lambda v: {"doubleValue": v},
        st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.just("NaN")),
    ),
    st.builds(lambda v: {"boolValue": v}, st.booleans()),
    st.builds(lambda v: {"bytesValue": base64.b64encode(v).decode()}, st.binary(max_size=8)),
)
_ANY_VALUE = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.builds(lambda vs: {"arrayValue": {"values": vs}}, st.lists(inner, max_size=3)),
        st.builds(
            lambda vs: {"kvlistValue": {"values": [{"key": f"k{i}", "value": v} for i, v in enumerate(vs)]}},
            st.lists(inner, max_size=3),
        ),
    ),
    max_leaves=8,
)


@st.composite
def _valid_span(draw: Any) -> dict[str, Any]:
    start = draw(st.integers(min_value=1, max_value=2**62))
    return {
        "traceId": draw(st.binary(min_size=16, max_size=16).filter(any)).hex(),
        "spanId": draw(st.binary(min_size=8, max_size=8).filter(any)).hex(),
        "parentSpanId": draw(st.sampled_from(["", os.urandom(8).hex()])),
        "name": draw(st.text(max_size=10)),
        "kind": draw(st.integers(min_value=0, max_value=6)),
        "flags": draw(st.sampled_from([0, 0x100, 0x300])),
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + draw(st.integers(min_value=0, max_value=10**12))),
        "attributes": draw(
            st.lists(st.fixed_dictionaries({"key": st.text(max_size=8), "value": _ANY_VALUE}), max_size=4)
        ),
        "status": {"code": draw(st.integers(min_value=0, max_value=3)), "message": draw(st.text(max_size=5))},
        "events": [{"name": "e", "timeUnixNano": str(start)}],
    }


_FIELDS = [
    "traceId",
    "spanId",
    "parentSpanId",
    "name",
    "kind",
    "flags",
    "startTimeUnixNano",
    "endTimeUnixNano",
]
_FIELDS += ["attributes", "status", "events"]
_BROKEN = st.one_of(
    _JUNK,
    st.binary(max_size=20).map(bytes.hex),  # ids of the wrong length
    st.integers(min_value=2**63, max_value=2**64).map(str),  # times beyond what the store holds
    st.just([{"key": "deep", "value": _nested(40)}]),  # deeper than the 32 levels kept
)
# A valid span with up to two fields replaced by something odd: most spans stay good, the rest test rejection.
_SPAN = st.tuples(_valid_span(), st.dictionaries(st.sampled_from(_FIELDS), _BROKEN, max_size=2)).map(
    lambda pair: {**pair[0], **pair[1]}
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spans=st.lists(_SPAN, min_size=1, max_size=5))
def test_any_json_span_is_stored_whole_or_rejected_alone(spans: list[dict[str, Any]]) -> None:
    """Odd OTLP/JSON (wrong types, out-of-range numbers, bad ids, deep values): every span becomes one line the
    store's ingest accepts (the salvage check, obsdash/store/segments.py) or one rejection; nothing else raises."""
    from obsdash.otlp import decode
    from obsdash.otlp.records import Converter
    from obsdash.store.segments import is_valid_record

    body = json.dumps(spans_request("fuzz", spans)).encode()
    batch = Converter().convert("traces", decode.parse("traces", body, JSON))
    assert len(batch.lines) + batch.rejected == len(spans)
    event("some spans stored" if batch.lines else "all rejected")
    for line in [*batch.lines, *batch.runs]:
        record = json.loads(line)
        kind = "runs" if "event" in record else "spans"
        assert is_valid_record(kind, record), line


# -- S4: caps and bad input -----------------------------------------------------------------------------------
def test_body_over_the_cap_is_refused_unread_and_others_still_land(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        # Headers only: the intake must answer from Content-Length, without reading (or buffering) 17 MiB.
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            + f"Content-Length: {17 * MIB}\r\n\r\n".encode()
        )
        send_spans(served.port, "beside-oversize", ["while the big one waits"])  # another client meanwhile
        answer = sock.makefile("rb").read()  # the intake closes the connection after answering
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in answer
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        # curl's way: Expect: 100-continue, and the body only after a "100 Continue" that must not come
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            + f"Expect: 100-continue\r\nContent-Length: {17 * MIB}\r\n\r\n".encode()
        )
        answer = sock.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in answer
    # A real 17 MiB body sent in full gets the same answer (or a reset once the intake closes).
    try:
        status, _, _ = post(served.port, "/v1/traces", os.urandom(17 * MIB))
        assert status == 413
    except (ConnectionResetError, BrokenPipeError):
        pass
    send_spans(served.port, "beside-oversize", ["after"])
    assert rows(
        served, "SELECT name FROM spans WHERE service_name = 'beside-oversize' ORDER BY start_time"
    ) == [
        {"name": "while the big one waits"},
        {"name": "after"},
    ]


def test_open_connections_are_capped(served: Served) -> None:
    """At most 32 connections (a thread each): idle ones beyond that are closed by the intake at once."""
    idle = [socket.create_connection(("127.0.0.1", served.port), timeout=30) for _ in range(40)]
    try:
        closed: set[int] = set()
        deadline = time.monotonic() + 20
        while len(closed) < 8 and time.monotonic() < deadline:
            readable, _, _ = select.select(idle, [], [], 0.2)
            closed.update(i for i, sock in enumerate(idle) if sock in readable and sock.recv(1) == b"")
        assert len(closed) >= 8  # 40 opened, at most 32 kept
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 30
    while True:  # the kept ones are released as their threads see the close
        try:
            send_spans(served.port, "after-connection-cap", ["served again"])
            break
        except (ConnectionError, http.client.RemoteDisconnected):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert (
        scalar(served.data_dir, "SELECT count(*) FROM spans WHERE service_name = 'after-connection-cap'") == 1
    )


def gzip_bomb(size: int) -> bytes:
    """`size` bytes of zeros as one gzip member of ~1 KiB per MiB, made without compressing `size` bytes: after a
    full flush deflate's window is empty, so every further MiB of zeros compresses to the same bytes."""
    chunk = bytes(MIB)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    repeat = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size // MIB):
        crc = zlib.crc32(chunk, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + first + repeat * (size // MIB - 1) + deflate.flush() + trailer


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def test_gzip_bomb_is_cut_off_while_inflating(served: Served) -> None:
    bomb = gzip_bomb(1024 * MIB)
    assert len(bomb) < 1.1 * MIB
    assert len(zlib.decompressobj(31).decompress(bomb, 4 * MIB)) == 4 * MIB  # a real gzip stream of zeros
    before = peak_rss_mb(served.proc.pid)
    status, content_type, answer = post(served.port, "/v1/logs", bomb, **{"Content-Encoding": "gzip"})
    assert (status, content_type) == (413, PROTOBUF)
    assert b"inflates to more than" in answer  # a google.rpc.Status saying why
    # Inflating it would take 1 GiB; the cut-off is at 32 MiB (plus one 1 MiB step).
    assert peak_rss_mb(served.proc.pid) - before < 100
    # JSON is cut at 16 MiB inflated (it costs ~9x its size as Python objects)
    padded = b'{"resourceSpans": [], "padding": "' + b"x" * (17 * MIB) + b'"}'
    status, content_type, _ = post(
        served.port, "/v1/traces", gzip.compress(padded), JSON, **{"Content-Encoding": "gzip"}
    )
    assert (status, content_type) == (413, JSON)
    send_spans(served.port, "after-bomb", ["still serving"])
    assert scalar(served.data_dir, "SELECT count(*) FROM spans WHERE service_name = 'after-bomb'") == 1


BAD_REQUESTS = [
    ("/v1/traces", PROTOBUF, {}, b"\xff\xff\xff\xff garbage", 400),
    ("/v1/traces", JSON, {}, b'{"resourceSpans": [ {', 400),
    ("/v1/traces", JSON, {}, b"[1, 2]", 400),
    ("/v1/logs", JSON, {}, b'{"resourceLogs": 5}', 400),
    ("/v1/metrics", PROTOBUF, {"Content-Encoding": "gzip"}, b"not gzip at all", 400),
    (
        "/v1/metrics",
        PROTOBUF,
        {"Content-Encoding": "gzip"},
        gzip.compress(os.urandom(1000))[:500],
        400,
    ),  # truncated,
    ("/v1/traces", "text/plain", {}, b"hello", 415),
    ("/v1/traces", PROTOBUF, {"Content-Encoding": "br"}, b"", 415),
    ("/v1/profiles", PROTOBUF, {}, b"", 404),
]


def test_malformed_requests_are_refused_and_nothing_else_is_lost(served: Served) -> None:
    send_spans(served.port, "around-bad-input", ["before"])
    for path, content_type, headers, body, expected in BAD_REQUESTS:
        status, _, answer = post(served.port, path, body, content_type, **headers)
        assert status == expected, (path, content_type, headers, body[:20], answer)
        assert answer  # a Status saying why
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    conn.request("GET", "/v1/traces")
    assert conn.getresponse().status == 405
    conn.close()
    send_spans(served.port, "around-bad-input", ["after"])
    assert scalar(served.data_dir, "SELECT count(*) FROM spans WHERE service_name = 'around-bad-input'") == 2


def listening_addresses(port: int) -> set[str]:
    """The local addresses of every socket listening on `port` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_listens_on_127_0_0_1_only(served: Served) -> None:
    assert listening_addresses(served.port) == {"0100007F"}  # 127.0.0.1, and no IPv6 socket
    others = ["127.0.0.2"]  # also loopback on Linux, but not the address bound
    try:
        others += [
            info[4][0]
            for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
            if not info[4][0].startswith("127.")
        ]
    except OSError:
        pass
    for address in others:
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.settimeout(10)
            sock.connect((address, served.port))


# -- obsdash serve ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_cleanly_on_signal(data_dir: Path, sig: int) -> None:
    server = start_serve(data_dir)
    spans = [json_span(name, os.urandom(16).hex(), os.urandom(8).hex()) for name in ("one", "two")]
    spans.append(json_span("bad", os.urandom(16).hex(), "xyz"))
    body = gzip.compress(json.dumps(spans_request("signal-test", spans)).encode())
    assert post(server.port, "/v1/traces", body, JSON, **{"Content-Encoding": "gzip"})[0] == 200
    status, err = server.stop(sig)
    assert status == 0, err
    assert "Traceback" not in err
    # the sender's exporter may ignore partial_success: serve says it
    assert "OTLP intake: 1 records rejected so far; latest: spanId is not hex: 'xyz'" in err
    assert (
        "OTLP intake: 1 requests (1×200; 1 gzip); records stored: 2 spans; 1 rejected "
        "(latest: spanId is not hex: 'xyz')\n"
    ) in err
    assert scalar(data_dir, "SELECT count(*) FROM spans WHERE service_name = 'signal-test'") == 2


def test_port_in_use_is_one_line(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in ("serve", "tui"):
            result = run(
                obsdash_cmd(command, "--otlp", "--otlp-port", str(port), "--data-dir", str(data_dir))
            )
            assert result.returncode != 0
            assert result.stderr.count("\n") == 1, result.stderr
            assert f"127.0.0.1:{port}" in result.stderr and "in use" in result.stderr


def test_tui_hosts_the_intake_while_it_runs(data_dir: Path) -> None:
    """`obsdash tui --otlp` in a terminal (a pty): what arrives meanwhile is stored, and quitting closes the port."""
    import pty

    port = free_port()
    main, child = pty.openpty()
    tui = subprocess.Popen(
        obsdash_cmd("tui", "--otlp", "--otlp-port", str(port), "--data-dir", str(data_dir)),
        stdin=child,
        stdout=child,
        stderr=child,
        env=child_env(TERM="xterm-256color", COLUMNS="100", LINES="30"),
        close_fds=True,
    )
    os.close(child)
    try:
        wait_for_port(port)
        send_spans(port, "beside-the-tui", ["seen"])
        assert scalar(data_dir, "SELECT count(*) FROM spans WHERE service_name = 'beside-the-tui'") == 1
        os.write(main, b"q")
        deadline = time.monotonic() + 30
        while tui.poll() is None and time.monotonic() < deadline:
            if select.select([main], [], [], 0.2)[0]:
                try:  # keep the terminal drained so the TUI never blocks on a full pty
                    os.read(main, 65536)
                except OSError:
                    break
        assert tui.wait(timeout=30) == 0
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
    finally:
        if tui.poll() is None:
            tui.kill()
            tui.wait()
        os.close(main)


HOST = (
    "import sys, time\n"
    "from obsdash.datadir import resolve\n"
    "from obsdash.hub.client import open_store\n"
    "store = open_store(resolve(sys.argv[1]))\n"
    "print('hosting' if store.is_host else 'client', flush=True)\n"
    "time.sleep(120)\n"
)


def test_intake_runs_beside_a_hub_hosted_elsewhere(data_dir: Path) -> None:
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(data_dir)], stdout=subprocess.PIPE, text=True, env=child_env()
    )
    try:
        assert host.stdout is not None and host.stdout.readline() == "hosting\n"
        server = start_serve(data_dir)
        send_spans(server.port, "beside-host", ["a", "b", "c"])
        assert scalar(data_dir, "SELECT count(*) FROM spans WHERE service_name = 'beside-host'") == 3
        host.kill()  # the hub's host dies: serve, checking every second, takes the hub over
        host.wait()
        send_spans(server.port, "beside-host", ["d"])
        deadline = time.monotonic() + 30
        while list((data_dir / "spool").glob("*.jsonl")):  # ingested by serve itself: nobody else runs
            assert time.monotonic() < deadline, "serve did not take the hub over"
            time.sleep(0.1)
        status, err = server.stop()
        assert status == 0 and "joined the running hub" in err, err
        assert scalar(data_dir, "SELECT count(*) FROM spans WHERE service_name = 'beside-host'") == 4
    finally:
        host.kill()
        host.wait()
