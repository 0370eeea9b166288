"""The MCP tools' traces: find requests, and show one trace as an indented span tree with its exceptions and logs.

A trace is named by its id or a prefix of it (a model copies ids from other answers and may shorten them). The
tree keeps the attributes that say what a span did — HTTP route and status, database statement, GenAI model and
tokens — and leaves the rest to the SQL tool. It is walked without recursion, so a 10,000-deep trace costs no
stack, and is bounded by MAX_TREE_SPANS and MAX_LOGS with a note when cut.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from obsdash.errors import ObsdashError
from obsdash.mcp.text import bounded, clip, ms, stack_tail, table, when
from obsdash.mcp.tools import describe
from obsdash.store.queries import Reader
from obsdash.store.queries.catalog import trace_ids_with_prefix
from obsdash.store.queries.traces import SORTS, Span, SpanEvent, Trace, get_trace, list_traces
from obsdash.store.queries.window import utc_now, window_named

MAX_TREE_SPANS = 150
MAX_LOGS = 40
MAX_INDENT = 20
MIN_PREFIX = 4
TRACE_ID = re.compile(rf"[0-9a-f]{{{MIN_PREFIX},32}}")
# What a span did, in the order shown; the first present key of each group wins (old and new semconv names).
KEY_ATTRIBUTES: tuple[tuple[str, ...], ...] = (
    ("http.request.method", "http.method"),
    ("http.route",),
    ("url.full", "http.url", "http.target"),
    ("http.response.status_code", "http.status_code"),
    ("server.address", "net.peer.name"),
    ("db.system.name", "db.system"),
    ("db.query.text", "db.statement"),
    ("gen_ai.provider.name", "gen_ai.system"),
    ("gen_ai.request.model",),
    ("gen_ai.response.model",),
    ("gen_ai.usage.input_tokens",),
    ("gen_ai.usage.output_tokens",),
    ("gen_ai.usage.cache_read.input_tokens",),
    ("error.type",),
)


def resolve_trace_id(reader: Reader, ref: str) -> str:
    """The full trace id that `ref` (an id or a prefix of at least MIN_PREFIX hex digits) names."""
    prefix = ref.strip().lower()
    if not TRACE_ID.fullmatch(prefix):
        raise ObsdashError(
            f"{clip(ref, 60)!r} is not a trace id", hint=f"give {MIN_PREFIX} to 32 hex digits of one"
        )
    found = trace_ids_with_prefix(reader, prefix)
    if not found:
        raise ObsdashError(f"no trace id starts with {prefix!r} in the store")
    if len(found) > 1:
        raise ObsdashError(
            f"{prefix!r} starts several trace ids ({', '.join(sorted(found))})", hint="give more"
        )
    return found[0]


def key_attributes(span: Span) -> str:
    """`key=value` pairs of the attributes that say what the span did."""
    pairs = []
    for group in KEY_ATTRIBUTES:
        key = next((k for k in group if span.attributes.get(k) is not None), None)
        if key is not None:
            pairs.append(f"{key}={clip(span.attributes[key], 200)}")
    return " ".join(pairs)


def walk(spans: list[Span]) -> Iterator[tuple[int, Span]]:
    """(depth, span) in tree order: parents before their children, siblings by start time. A span whose parent
    is not in the store (another service's, or lost) starts a tree of its own."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = {}
    for span in spans:  # already in start order
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children.setdefault(parent, []).append(span)
    stack = [(0, s) for s in reversed(children.get(None, []))]
    seen: set[int] = set()
    while stack:
        depth, span = stack.pop()
        seen.add(id(span))
        yield depth, span
        stack += [(depth + 1, c) for c in reversed(children.pop(span.span_id, []))]
    # a parent cycle (bad input) is reachable from no root: show its spans rather than hide them
    yield from ((0, s) for s in spans if id(s) not in seen)


def _span_line(depth: int, span: Span, start: float) -> str:
    indent = "  " * min(depth, MAX_INDENT) + (f"[depth {depth}] " if depth > MAX_INDENT else "")
    offset = (span.start_time.timestamp() - start) * 1000
    status = span.status_code + (f" ({clip(span.status_message, 120)})" if span.status_message else "")
    head = f"{indent}{clip(span.name, 120)} · {span.kind} · {ms(span.duration_ms)} · at +{offset:.1f} ms · {status}"
    attributes = key_attributes(span)
    return head + (f" · {attributes}" if attributes else "")


def _event_line(depth: int, event: SpanEvent) -> str:
    indent = "  " * (min(depth, MAX_INDENT) + 1)
    if event.exception_type:
        return f"{indent}! exception {clip(event.exception_type, 80)}: {clip(event.exception_message or '', 300)}"
    return f"{indent}• event {clip(event.name, 120)}"


def show_trace(reader: Reader, trace_id: str) -> str:
    """One trace as an indented span tree with durations, status and key attributes, then its logs."""
    ref = trace_id.strip().lower()
    # a full id needs no resolving: the lookup by prefix is a scan of its own (113 of 203 ms at 10M spans)
    trace = get_trace(reader, ref) if len(ref) == 32 and TRACE_ID.fullmatch(ref) else None
    if trace is None:
        full_id = resolve_trace_id(reader, trace_id)
        trace = get_trace(reader, full_id)
        if trace is None:
            raise ObsdashError(f"trace {full_id} is no longer in the store")
    return bounded(_trace_lines(trace))


def _trace_lines(trace: Trace) -> list[str]:
    start = min(s.start_time for s in trace.spans)
    end = max(s.end_time for s in trace.spans)
    failed = sum(s.status_code == "ERROR" for s in trace.spans)
    services = ", ".join(sorted({s.service for s in trace.spans}))
    count = f"{len(trace.spans)}{'+' if trace.truncated else ''} span{'s' if len(trace.spans) != 1 else ''}"
    lines = [
        f"trace {trace.trace_id} · {count} · service {services} · started {when(start)} · "
        f"{ms((end - start).total_seconds() * 1000)} end to end · {failed} span(s) with status ERROR",
        "span tree (name · kind · duration · start offset · status · key attributes):",
    ]
    events: dict[str, list[SpanEvent]] = {}
    for event in trace.events:
        events.setdefault(event.span_id, []).append(event)
    origin = start.timestamp()
    for shown, (depth, span) in enumerate(walk(trace.spans)):
        if shown == MAX_TREE_SPANS:
            lines.append(f"[{len(trace.spans) - shown} more spans not shown; query them with run_sql]")
            break
        lines.append(_span_line(depth, span, origin))
        lines += [_event_line(depth, e) for e in events.get(span.span_id, [])]
    if trace.truncated:
        lines.append("[the trace has more spans than obsdash reads for one trace; query them with run_sql]")
    worst = max(trace.events, key=lambda e: len(e.stacktrace or ""), default=None)
    if worst is not None and worst.stacktrace:
        lines += [f"stack of {clip(worst.exception_type or 'the exception', 80)} (innermost last):"]
        lines += stack_tail(worst.stacktrace)
    lines.append(f"logs ({len(trace.logs)}):" if trace.logs else "logs: none in this trace")
    for line in trace.logs[:MAX_LOGS]:
        offset = (line.time.timestamp() - origin) * 1000
        error = f" [{line.exception_type}]" if line.exception_type else ""
        lines.append(
            f"  +{offset:.1f} ms {line.severity_text or '-'} {line.logger}: {clip(line.body, 300)}{error}"
        )
    if len(trace.logs) > MAX_LOGS:
        lines.append(f"  [{len(trace.logs) - MAX_LOGS} more log lines not shown]")
    return lines


def search_traces(
    reader: Reader,
    *,
    text: str = "",
    window: str = "1h",
    sort: str = "time",
    errors_only: bool = False,
    limit: int = 20,
) -> str:
    """Requests (root spans) over `window` matching `text`, as a table with their trace ids."""
    span = window_named(window)
    found = list_traces(
        reader,
        span.start(utc_now()),
        text=text,
        sort=sort if sort in SORTS else "time",
        errors_only=errors_only,
        limit=max(1, limit),
    )
    if not found:
        return f"No matching requests in {describe(span)}." + (
            "" if span.seconds is None else " Try window='all'."
        )
    rows = [
        [
            when(t.start_time),
            t.trace_id,
            t.service,
            t.name,
            t.status_code,
            t.http_status if t.http_status is not None else "-",
            ms(t.duration_ms),
            t.span_count,
        ]
        for t in found
    ]
    headers = ["start (UTC)", "trace_id", "service", "route", "status", "http", "duration", "spans"]
    return bounded([f"Requests in {describe(span)} by {sort}:", *table(headers, rows)])
