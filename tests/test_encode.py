"""The span encoder reads the SDK span's internals for speed (P3); it must write what the public API says.

Each case encodes a real SDK span and compares the line with one built from the public properties only
(`span.attributes`, `span.events`, `.name` of the enums), so an SDK that changes its internals is caught here.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from obsdash_instrumenters.context import RecordContext
from obsdash_instrumenters.encode import encode_span
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode


class Keep(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def finished_spans() -> list[ReadableSpan]:
    kept = Keep()
    provider = TracerProvider()
    provider.add_span_processor(kept)
    tracer = provider.get_tracer("tests.encode")
    attrs: dict[str, Any] = {
        "http.route": "/items/<id>",
        "http.response.status_code": 500,
        "flags": [1, 2],
        "ok": True,
    }
    with tracer.start_as_current_span("GET /items/<id>", kind=SpanKind.SERVER, attributes=attrs) as root:
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "sqlite")
        try:
            raise ValueError("bad qty")
        except ValueError as exc:
            root.record_exception(exc)
            root.add_event("retry", {"attempt": 2})
            root.set_status(Status(StatusCode.ERROR, "bad qty"))
    with tracer.start_as_current_span("plain"):
        pass
    # a span built by hand, as another SDK component might: plain dict attributes, a list of events
    context = SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=False)
    kept.spans.append(
        ReadableSpan(name="hand-made", context=context, attributes={"k": "v"}, kind=SpanKind.INTERNAL)
    )
    return kept.spans


def by_public_api(span: ReadableSpan) -> dict[str, Any]:
    return {
        "name": span.name,
        "kind": span.kind.name,
        "status_code": span.status.status_code.name,
        "status_message": span.status.description,
        "attributes": {k: list(v) if isinstance(v, tuple) else v for k, v in (span.attributes or {}).items()},
        "events": [(e.name, e.timestamp, sorted(e.attributes or {})) for e in span.events],
    }


@pytest.mark.parametrize("index", range(4))
def test_encoded_span_matches_the_public_api(index: int) -> None:
    span = finished_spans()[index]
    line = orjson.loads(encode_span(span, RecordContext("svc", "run-1")))
    expected = by_public_api(span)
    assert {key: line[key] for key in ("name", "kind", "status_code", "status_message")} == {
        key: expected[key] for key in ("name", "kind", "status_code", "status_message")
    }
    assert line["attributes"] == expected["attributes"]
    events = [
        (e["name"], e["time_ns"], sorted(set(e["attributes"]) - {"obsdash.exception.location"}))
        for e in line["events"]
    ]
    assert events == expected["events"]
    context = span.context
    if context is not None:
        assert line["trace_id"] == format(context.trace_id, "032x")
        assert line["span_id"] == format(context.span_id, "016x")


def test_encoding_leaves_the_sdk_span_untouched() -> None:
    span = finished_spans()[1]  # the root, with an exception event the encoder adds a location to
    before = (dict(span.attributes or {}), [dict(e.attributes or {}) for e in span.events])
    encode_span(span, RecordContext("svc", "run-1"))
    assert (dict(span.attributes or {}), [dict(e.attributes or {}) for e in span.events]) == before
