"""The waterfall's layout as plain data: spans in tree order with depth, bar position and marks.

Pure functions (no Textual), so the layout is tested directly: children sorted by start under their parent,
orphans (parent not in the store, e.g. a remote caller) shown at depth 0, and cycles impossible to loop on.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsdash.store.queries.traces import Span, Trace

BAR_WIDTH = 24
"""Cells of the time axis: with the name, service and duration it fits an 80-column terminal."""


@dataclass(frozen=True)
class WaterfallRow:
    """One span as the waterfall draws it."""

    span: Span
    depth: int
    offset_ms: float
    """Start relative to the trace's first span."""
    events: int
    logs: int
    is_error: bool
    prefix: str = ""
    """Tree lines drawn before the name: "│ ├─ "."""


def layout(trace: Trace) -> list[WaterfallRow]:
    """The spans of `trace` in depth-first order, each with its depth, offset and marks."""
    by_id = {s.span_id: s for s in trace.spans}
    children: dict[str | None, list[Span]] = {}
    for span in trace.spans:
        parent = span.parent_span_id if span.parent_span_id in by_id else None
        children.setdefault(parent, []).append(span)
    for spans in children.values():
        spans.sort(key=lambda s: (s.start_time, -s.duration_ms))
    origin = min((s.start_time for s in trace.spans), default=None)
    events = _count_by_span([e.span_id for e in trace.events])
    logs = _count_by_span([line.span_id for line in trace.logs])
    rows: list[WaterfallRow] = []
    seen: set[str] = set()

    def visit(span: Span, depth: int, prefix: str, last: bool) -> None:
        if span.span_id in seen:
            return
        seen.add(span.span_id)
        branch = "" if depth == 0 else prefix + ("└─" if last else "├─")
        offset = (span.start_time - origin).total_seconds() * 1000 if origin else 0.0
        rows.append(
            WaterfallRow(
                span,
                depth,
                offset,
                events.get(span.span_id, 0),
                logs.get(span.span_id, 0),
                span.status_code == "ERROR",
                branch,
            )
        )
        kids = children.get(span.span_id, [])
        child_prefix = "" if depth == 0 else prefix + ("  " if last else "│ ")
        for i, child in enumerate(kids):
            visit(child, depth + 1, child_prefix, i == len(kids) - 1)

    for root in children.get(None, []):
        visit(root, 0, "", True)
    return rows


def total_ms(rows: list[WaterfallRow]) -> float:
    """From the first span's start to the last span's end."""
    return max((r.offset_ms + r.span.duration_ms for r in rows), default=0.0)


def bar(row: WaterfallRow, total: float, width: int = BAR_WIDTH) -> tuple[int, int]:
    """(start cell, length in cells) of a span's bar on a time axis `width` cells wide; at least one cell."""
    if total <= 0:
        return 0, width
    start = min(int(row.offset_ms / total * width), width - 1)
    length = max(round(row.span.duration_ms / total * width), 1)
    return start, min(length, width - start)


def next_error(rows: list[WaterfallRow], current: int, step: int = 1) -> int | None:
    """The index of the next (or previous, step=-1) error row after `current`, wrapping around."""
    n = len(rows)
    for i in range(1, n + 1):
        index = (current + step * i) % n
        if rows[index].is_error:
            return index
    return None


def _count_by_span(span_ids: list[str | None]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for span_id in span_ids:
        if span_id:
            counts[span_id] = counts.get(span_id, 0) + 1
    return counts


def span_detail_hint(span: Span, width: int = 18) -> str:
    """What a span did, in a few words: the SQL of a database call, the host and path of an outgoing request."""
    attributes = span.attributes
    sql = attributes.get("db.statement") or attributes.get("db.query.text")
    url = attributes.get("url.full") or attributes.get("http.url")
    if sql:
        hint = " ".join(str(sql).split())
        if hint.upper().startswith(span.name.upper()):
            hint = hint[len(span.name) :].strip()  # "INSERT" + "INSERT INTO t" says INSERT twice
    elif url:
        hint = str(url).split("://", 1)[-1].split("?", 1)[0]
    else:
        return ""
    return hint if len(hint) <= width else hint[: width - 1] + "…"
