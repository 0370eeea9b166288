"""A deterministic store for the dashboard tests: fixed ids, fixed times before a fixed NOW, written as real
spool segments and ingested by the real hub.

What it holds (times are minutes before NOW = 2026-11-24 12:00:00 UTC):

- service `shop`: 5 × GET /items (each with a sqlite SELECT), 2 × GET /weather (sqlite SELECT, an INTERNAL
  `fetch_forecast` holding a CLIENT `GET` to the stand-in, sqlite INSERT), 5 × POST /checkout of which 2 fail
  with a ValueError raised in an ERROR `validate_order` span (exception events on it and on the ERROR server
  span, plus an ERROR log on it carrying the exception), and one background job `cleanup_carts` (a root INTERNAL span);
- LLM calls (LLM_CALLS) inside the cleanup job and the three good checkouts: openai gpt-4o and gpt-4o-mini (one
  streamed with usage, one without), anthropic claude-3-5-haiku and claude-sonnet-4 (each with the SDK's own span
  nested under the instrumentor's), and acme-large-2, a model genai-prices does not know;
- service `upstream` (the stand-in, wrapped too): GET /forecast, a SERVER span whose remote parent is the shop's
  CLIENT span, so each /weather trace crosses two services;
- logs at INFO/WARN/ERROR, most inside a request; two metrics (a histogram and a sum) every 5 minutes;
- the shop run's start and end records: 3 records dropped (queue_full) and django skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from obsdash.datadir import DataDir
from obsdash.hub.client import Store, open_store
from tests import genai

NOW = datetime(2026, 11, 24, 12, 0, 0)
"""The fixed end of the time window (naive UTC, as the store keeps times)."""
NOW_NS = int((NOW - datetime(1970, 1, 1)).total_seconds()) * 1_000_000_000
RUN_ID = "20261124-105500-c0de"
PID = 4242
UPSTREAM_PID = 4243
MS = 1_000_000
S = 1_000 * MS

VALUE_ERROR = "invalid literal for int() with base 10: 'abc'"
STACKTRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/shop/.venv/lib/python3.11/site-packages/flask/app.py", line 1511, in wsgi_app\n'
    "    response = self.full_dispatch_request()\n"
    '  File "/srv/shop/shop.py", line 42, in checkout\n'
    '    qty = int(request.args["qty"])\n'
    f"ValueError: {VALUE_ERROR}\n"
)
EXCEPTION = {
    "exception.type": "ValueError",
    "exception.message": VALUE_ERROR,
    "exception.stacktrace": STACKTRACE,
    "obsdash.exception.location": "shop.py:checkout",
}

# (kind of request, seconds before NOW), oldest first.
SCHEDULE: list[tuple[str, int]] = [
    ("items", 3000),
    ("cleanup", 2900),
    ("weather", 2700),
    ("checkout", 2400),
    ("items", 2100),
    ("checkout_fail", 1800),
    ("items", 1500),
    ("weather", 1200),
    ("checkout", 900),
    ("items", 600),
    ("checkout_fail", 300),
    ("checkout", 120),
    ("items", 60),
]


def hex_id(label: str, digits: int) -> str:
    """A fixed id made from a label (the same on every run)."""
    return hashlib.md5(label.encode()).hexdigest()[:digits]


def trace_id(n: int) -> str:
    """The trace id of the n-th request of SCHEDULE (or of a request added later)."""
    return hex_id(f"trace-{n}", 32)


def span_id(n: int, name: str) -> str:
    """The id of span `name` in request n."""
    return hex_id(f"span-{n}-{name}", 16)


def _resource(service: str, pid: int) -> dict[str, Any]:
    return {
        "service.name": service,
        "obsdash.run_id": RUN_ID,
        "process.pid": pid,
        "host.name": "testhost",
        "process.runtime.name": "cpython",
        "process.runtime.version": "3.11.7",
    }


def _stamp(record: dict[str, Any], service: str = "shop", pid: int = PID) -> dict[str, Any]:
    record.update(service_name=service, run_id=RUN_ID, pid=pid, resource=_resource(service, pid))
    return record


def _span(
    n: int,
    name: str,
    *,
    display: str,
    kind: str,
    start: int,
    ms: float,
    parent: str | None = None,
    attributes: dict[str, Any] | None = None,
    status: str = "UNSET",
    message: str | None = None,
    events: list[dict[str, Any]] | None = None,
    scope: str = "opentelemetry.instrumentation.flask",
    service: str = "shop",
    remote: bool = False,
) -> dict[str, Any]:
    parent_id = span_id(n, parent) if parent else None
    return _stamp(
        {
            "trace_id": trace_id(n),
            "span_id": span_id(n, name),
            "parent_span_id": parent_id,
            "parent_remote": remote if parent_id else None,
            "name": display,
            "kind": kind,
            "start_ns": start,
            "end_ns": start + int(ms * MS),
            "status_code": status,
            "status_message": message,
            "attributes": attributes or {},
            "events": events or [],
            "scope": scope,
        },
        service,
        UPSTREAM_PID if service == "upstream" else PID,
    )


def _server(n: int, request: str, code: int, start: int, ms: float, **kw: Any) -> dict[str, Any]:
    method, route = request.split(" ", 1)
    attributes = {"http.method": method, "http.route": route, "http.target": route, "http.status_code": code}
    return _span(n, "server", display=request, kind="SERVER", start=start, ms=ms, attributes=attributes, **kw)


def _sqlite(n: int, name: str, statement: str, start: int, ms: float) -> dict[str, Any]:
    verb = statement.split(maxsplit=1)[0]
    return _span(
        n,
        name,
        display=verb,
        kind="CLIENT",
        start=start,
        ms=ms,
        parent="server",
        attributes={"db.system": "sqlite", "db.statement": statement},
        scope="opentelemetry.instrumentation.sqlite3",
    )


LEVELS = {"INFO": 9, "WARN": 13, "ERROR": 17}


def _log(
    at: int,
    level: str,
    body: str,
    n: int | None = None,
    *,
    span: str = "server",
    attributes: dict[str, Any] | None = None,
    scope: str = "shop",
) -> dict[str, Any]:
    return _stamp(
        {
            "time_ns": at,
            "severity_text": level,
            "severity_number": LEVELS[level],
            "body": body,
            "trace_id": trace_id(n) if n is not None else None,
            "span_id": span_id(n, span) if n is not None else None,
            "attributes": attributes or {},
            "scope": scope,
        }
    )


LIVE_CHECKOUT = 300
"""A checkout the live-update tests add while the dashboard runs (not in the fixture)."""


@dataclass(frozen=True)
class LlmCall:
    """One LLM call made inside request n (the stand-in answers in about a millisecond)."""

    provider: str
    model: str
    input_tokens: int | None
    output_tokens: int | None
    cache_read: int | None = None
    cache_write: int | None = None
    stream: bool = False
    nested: bool = False
    """The anthropic SDK's own span under the instrumentor's, with the same usage (one call, two spans)."""


LLM_CALLS: dict[int, list[LlmCall]] = {
    1: [LlmCall("anthropic", "claude-3-5-haiku-20241022", 1800, 120, cache_read=1500, nested=True)],
    3: [LlmCall("openai", "gpt-4o", 1200, 80, cache_read=1024)],
    8: [
        LlmCall("anthropic", "claude-sonnet-4-20250514", 1500, 200, cache_write=1200, nested=True),
        LlmCall("openai", "gpt-4o-mini", None, None, stream=True),  # streamed without include_usage
    ],
    11: [
        LlmCall("openai", "acme-large-2", 600, 40),  # an OpenAI-compatible endpoint's model: unpriced
        LlmCall("openai", "gpt-4o-mini", 800, 60, stream=True),
    ],
    LIVE_CHECKOUT: [LlmCall("openai", "gpt-4o", 4000, 500)],
}
"""Request number → its LLM calls: the cleanup job summarises abandoned carts, checkouts write confirmations."""


def llm_spans(n: int, start: float) -> list[dict[str, Any]]:
    """The spans of request n's LLM calls, one after the other from `start` (ns), each 1 ms."""
    spans = []
    for i, call in enumerate(LLM_CALLS.get(n, [])):
        at = int(start) + i * 13 * MS // 10
        name = f"llm{i}"
        tokens = genai.usage(call.input_tokens, call.output_tokens, call.cache_read, call.cache_write)
        attributes = genai.instrumentor(call.provider, call.model, tokens, stream=call.stream)
        scope = genai.INSTRUMENTOR_SCOPES[call.provider]
        spans.append(
            _span(
                n,
                name,
                display=f"chat {call.model}",
                kind="CLIENT",
                start=at,
                ms=1.0,
                parent="server",
                attributes=attributes,
                scope=scope,
            )
        )
        if call.nested:
            sdk = genai.anthropic_sdk(call.model, tokens, stream=call.stream)
            spans.append(
                _span(
                    n,
                    f"{name}-sdk",
                    display="anthropic.messages.create",
                    kind="CLIENT",
                    start=at + MS // 10,
                    ms=0.8,
                    parent=name,
                    attributes=sdk,
                    scope=genai.ANTHROPIC_SDK_SCOPE,
                )
            )
    return spans


def request_records(n: int, kind: str, start: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The spans and logs of one request (request number n, of `kind`, starting at `start` ns)."""
    spans: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    if kind == "items":
        ms = 3.0 + (n % 5) * 0.4
        spans.append(_server(n, "GET /items", 200, start, ms))
        spans.append(_sqlite(n, "select", "SELECT id, name, price FROM items", start + MS // 2, 0.8))
        logs.append(_log(start + 2 * MS, "INFO", "listed 12 items", n))
    elif kind == "weather":
        spans.append(_server(n, "GET /weather", 200, start, 45.0))
        spans.append(_sqlite(n, "cache", "SELECT body FROM forecast_cache WHERE city = ?", start + MS, 0.5))
        spans.append(
            _span(
                n,
                "fetch",
                display="fetch_forecast",
                kind="INTERNAL",
                start=start + 2 * MS,
                ms=38.0,
                parent="server",
                scope="shop",
            )
        )
        spans.append(
            _span(
                n,
                "client",
                display="GET",
                kind="CLIENT",
                start=start + 3 * MS,
                ms=36.0,
                parent="fetch",
                attributes={
                    "http.method": "GET",
                    "http.url": "http://127.0.0.1:8081/forecast?city=Paris",
                    "http.status_code": 200,
                    "net.peer.name": "127.0.0.1",
                },
                scope="opentelemetry.instrumentation.requests",
            )
        )
        spans.append(
            _span(
                n,
                "upstream",
                display="GET /forecast",
                kind="SERVER",
                start=start + 5 * MS,
                ms=32.0,
                parent="client",
                remote=True,
                attributes={"http.method": "GET", "http.route": "/forecast", "http.status_code": 200},
                service="upstream",
            )
        )
        spans.append(_sqlite(n, "store", "INSERT INTO forecast_cache VALUES (?, ?)", start + 41 * MS, 1.0))
        logs.append(_log(start + 2 * MS, "WARN", "forecast cache miss for Paris", n, span="fetch"))
    elif kind in ("checkout", "checkout_fail"):
        failed = kind == "checkout_fail"
        if failed:
            # The handler looks the item up, then validate_order raises; Flask records the exception on both.
            error = {"status": "ERROR", "message": f"ValueError: {VALUE_ERROR}"}
            raised = {
                "name": "exception",
                "time_ns": start + 1 * MS,
                "attributes": {**EXCEPTION, "exception.escaped": "True"},
            }
            seen = {
                "name": "exception",
                "time_ns": start + 2 * MS,
                "attributes": {**EXCEPTION, "exception.escaped": "False"},
            }
            spans.append(_server(n, "POST /checkout", 500, start, 2.1, events=[seen], **error))
            spans.append(_sqlite(n, "select", "SELECT price FROM items WHERE id = ?", start + MS // 4, 0.4))
            spans.append(
                _span(
                    n,
                    "validate",
                    display="validate_order",
                    kind="INTERNAL",
                    start=start + MS,
                    ms=0.6,
                    parent="server",
                    events=[raised],
                    scope="shop",
                    **error,
                )
            )
            logs.append(
                _log(start + 1 * MS, "ERROR", "checkout failed", n, span="validate", attributes=EXCEPTION)
            )
        else:
            spans.append(_server(n, "POST /checkout", 201, start, 5.5 + n * 0.1))
            spans.append(
                _sqlite(n, "insert", "INSERT INTO orders (item, qty) VALUES (?, ?)", start + MS, 1.2)
            )
            logs.append(_log(start + 3 * MS, "INFO", f"order {n} placed", n))
            spans += llm_spans(n, start + 2.5 * MS)
    elif kind == "cleanup":
        spans.append(
            _span(n, "server", display="cleanup_carts", kind="INTERNAL", start=start, ms=12.0, scope="shop")
        )
        spans.append(_sqlite(n, "delete", "DELETE FROM carts WHERE updated < ?", start + MS, 9.0))
        spans += llm_spans(n, start + 10.2 * MS)
    else:
        raise ValueError(kind)
    return spans, logs


def _metrics() -> list[dict[str, Any]]:
    points = []
    bounds = [0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0]
    for i in range(12):
        end = NOW_NS - (3330 - i * 300) * S
        count = 3 + i % 3
        points.append(
            _stamp(
                {
                    "time_ns": end,
                    "start_ns": end - 300 * S,
                    "name": "http.server.duration",
                    "unit": "ms",
                    "kind": "histogram",
                    "attributes": {"http.method": "GET", "http.status_code": 200},
                    "count": count,
                    "sum": count * (4.0 + i),
                    "min": 2.0,
                    "max": 8.0 + i,
                    "bucket_counts": [0, count - 1, 1, 0, 0, 0, 0, 0],
                    "explicit_bounds": bounds,
                }
            )
        )
        points.append(
            _stamp(
                {
                    "time_ns": end,
                    "start_ns": end - 300 * S,
                    "name": "shop.orders",
                    "unit": "{order}",
                    "kind": "sum",
                    "attributes": {},
                    "value": float(1 + i % 4),
                }
            )
        )
    return points


def _runs() -> list[dict[str, Any]]:
    start = {
        "event": "start",
        "time_ns": NOW_NS - 3300 * S,
        "host": "testhost",
        "command": "python shop.py",
        "argv": ["shop.py"],
        "root": True,
        "parent_pid": 1,
        "startup_ms": 0.2,
    }
    end = {
        "event": "end",
        "time_ns": NOW_NS - 30 * S,
        "host": "testhost",
        "root": True,
        "exit_code": 0,
        "duration_ms": 3270000.0,
        "instrumentation": {
            "flask": "instrumented",
            "sqlite3": "instrumented",
            "requests": "instrumented",
            "django": "skipped: DJANGO_SETTINGS_MODULE is not set",
        },
        "instrumentation_ms": {"flask": 40.1, "sqlite3": 1.2, "requests": 8.0},
        "dropped": {"queue_full": 3},
        "written": {"spans": 40, "logs": 14, "metrics": 24},
        "internal_errors": {},
    }
    return [_stamp(start), _stamp(end)]


def fixture_records() -> dict[str, list[dict[str, Any]]]:
    """Every record of the fixture store, by spool kind."""
    spans: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = [
        _log(NOW_NS - 3290 * S, "INFO", "shop listening on 127.0.0.1:8080", scope="werkzeug"),
        _log(NOW_NS - 1000 * S, "WARN", "disk 91% full", scope="shop.health"),
    ]
    for n, (kind, seconds) in enumerate(SCHEDULE):
        more_spans, more_logs = request_records(n, kind, NOW_NS - seconds * S)
        spans += more_spans
        logs += more_logs
    return {"spans": spans, "logs": logs, "metrics": _metrics(), "runs": _runs()}


def write_segment(spool: Path, kind: str, records: list[dict[str, Any]], seq: int) -> Path:
    """Write one segment as the in-app side does (hidden temp file, then rename), with a fixed name."""
    spool.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{kind}-{NOW_NS + seq:020d}-{PID}-{seq:06d}.jsonl"
    temp = spool / f".{name}.tmp"
    temp.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    temp.rename(spool / name)
    return spool / name


def write_fixture_spool(data_dir: Path) -> None:
    """Write the whole fixture as spool segments into `data_dir` (not ingested yet)."""
    spool = DataDir(data_dir).spool
    for seq, (kind, records) in enumerate(fixture_records().items(), start=1):
        write_segment(spool, kind, records, seq)


def build_store(data_dir: Path) -> Store:
    """Write the fixture spool and open the store on it (hosting the hub), everything ingested."""
    write_fixture_spool(data_dir)
    store = open_store(DataDir(data_dir))
    store.sync()
    return store


def add_request(store: Store, n: int, kind: str, start_ns: int, *, seq: int, sync: bool = True) -> str:
    """Write one more request (number n) into the spool as new segments, and ingest them unless sync=False
    (then the hub's watcher does); returns its trace id."""
    spans, logs = request_records(n, kind, start_ns)
    spool = store.data_dir.spool
    if logs:
        write_segment(spool, "logs", logs, seq + 1)
    write_segment(spool, "spans", spans, seq)
    if sync:
        store.sync()
    return trace_id(n)


def llm_cost(calls: list[LlmCall]) -> float:
    """What genai-prices charges for `calls` (unknown models and calls without usage add nothing)."""
    from genai_prices import Usage, calc_price

    total = 0.0
    for call in calls:
        if call.input_tokens is None:
            continue
        usage = Usage(
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            cache_read_tokens=call.cache_read,
            cache_write_tokens=call.cache_write,
        )
        try:
            total += float(calc_price(usage, model_ref=call.model, provider_id=call.provider).total_price)
        except LookupError:
            pass
    return total


FIXTURE_LLM_CALLS = [call for n, calls in LLM_CALLS.items() if n < len(SCHEDULE) for call in calls]
"""The LLM calls in the fixture store."""
